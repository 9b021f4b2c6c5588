-- tests/oracle/cases.lua — the op oracle's cases: for every op of core/ops.def,
-- the inputs (shapes with size-1 and size-0 axes, broadcasting pairs,
-- non-contiguous views, each dtype the op supports, Lua numbers as weak
-- scalars) and attributes it is run with. gen.lua runs them; check.py holds
-- the reference for each op (its semantics written against JAX and NumPy, and
-- moongrad's documented conventions where they differ from those).
--
-- A case: { op = name, ins = {input...}, attrs = {name = value} (the op's
-- attributes by name, in moongrad's conventions: 1-based axes and indices),
-- grad = false (no gradient check), expect_error = true (moongrad must raise),
-- label = "..." (else one is made from the inputs), check = "..." (a checker
-- of check.py other than the op's reference), run = function(xs) (a procedure
-- of its own: random ops, optimizer steps) }. An input is I(shape, dtype, kind,
-- layout), L(values, dtype, shape) (literal values) or a Lua number (a weak
-- scalar). Value kinds and layouts are described in gen.lua.
local mg = require("moongrad")
local core = mg.core
local json = require("moongrad.nn.json")

local M = { list = {} }

-- Ops of the table with no case here, and why. (None today: random ops are
-- checked by their distributions, optimizer steps against NumPy.)
M.exempt = {}

local F = { "float32", "float64" }
local ALL = { "float32", "float64", "int32", "int64", "uint8", "bool" }
local NUM = { "float32", "float64", "int32", "int64", "uint8" }
local INTS = { "int32", "int64", "uint8" }

local function I(shape, dtype, kind, layout)
  return { shape = shape, dtype = dtype or "float32", kind = kind, layout = layout }
end
local function L(values, dtype, shape)
  return { values = values, dtype = dtype or "float32", shape = shape or { #values } }
end
local function add(op, c)
  c.op = op
  M.list[#M.list + 1] = c
end

-- A label made from the inputs and attributes: "float32(2,3)T, 2.5 {axis=1}".
function M.autolabel(c, entry)
  local parts = {}
  for k, inp in ipairs(entry.inputs) do
    if inp.scalar ~= nil then
      parts[k] = tostring(inp.scalar)
    else
      parts[k] = inp.dtype .. "(" .. table.concat(inp.shape, ",") .. ")" .. (inp.layout or "")
    end
  end
  local s = table.concat(parts, ", ")
  if c.attrs and next(c.attrs) ~= nil then s = s .. " " .. json.encode(c.attrs) end
  return s
end

-- ---- creation -------------------------------------------------------------------
for _, dt in ipairs(ALL) do
  add("full", { attrs = { shape = { 2, 3 }, value = 2, dtype = dt } })
end
add("full", { attrs = { shape = { 0, 3 }, value = 1.5, dtype = "float64" } })
add("full", { attrs = { shape = {}, value = -1.25, dtype = "float32" } })
-- a fraction into an integer dtype is an error (issue 14: TF's tf.fill/constant refuse it too)
add("full", { attrs = { shape = { 3 }, value = 2.7, dtype = "int32" }, expect_error = true, label = "int32 fraction raises" })
add("full", { attrs = { shape = { 3 }, value = -2.7, dtype = "int64" }, expect_error = true, label = "int64 fraction raises" })
add("full", { attrs = { shape = { 3 }, value = -3, dtype = "int64" } })
add("full", { attrs = { shape = { 2 }, value = 0.5, dtype = "bool" } })     -- nonzero is true

for _, a in ipairs({
  { start = 0, stop = 5, step = 1, dtype = "int64" }, { start = 2, stop = 11, step = 3, dtype = "int32" },
  { start = 5, stop = 0, step = -1, dtype = "int64" }, { start = 0, stop = 1, step = 0.1, dtype = "float64" },
  { start = -1, stop = 1, step = 0.25, dtype = "float32" }, { start = 3, stop = 3, step = 1, dtype = "int64" },
  { start = 3, stop = 0, step = 1, dtype = "float32" }, { start = 0, stop = 5, step = 2, dtype = "uint8" },
  { start = 0.5, stop = 4, step = 1, dtype = "float64" },
}) do add("arange", { attrs = a }) end

for _, a in ipairs({
  { start = 0, stop = 1, num = 5, dtype = "float32" }, { start = -2, stop = 3, num = 7, dtype = "float64" },
  { start = 1, stop = 0, num = 4, dtype = "float64" }, { start = 2, stop = 5, num = 1, dtype = "float32" },
  { start = 0, stop = 1, num = 0, dtype = "float32" }, { start = 0, stop = 10, num = 4, dtype = "int32" },
  { start = 0, stop = -10, num = 4, dtype = "int64" },
}) do add("linspace", { attrs = a }) end
-- issue 14 item 7: linspace to bool must raise (a bool range has no meaning).
add("linspace", { attrs = { start = 0, stop = 1, num = 3, dtype = "bool" }, expect_error = true,
  label = "to bool raises" })

for _, a in ipairs({
  { n = 3 }, { n = 2, m = 4, dtype = "float64" }, { n = 4, m = 2, dtype = "int32" }, { n = 0 },
  { n = 3, m = 0, dtype = "bool" }, { n = 1, dtype = "uint8" },
}) do add("eye", { attrs = a }) end

-- ---- random: distribution properties and seeds (check.py's check_random) ----------
-- The values are Philox streams no other library draws, so the oracle checks what the
-- docs promise: the range, the distribution (a Kolmogorov-Smirnov or chi-square test
-- at a fixed seed), the dtype, and that a seed gives the same values again and
-- another seed different ones.
local NR = 20000
local function random_case(op, attrs, label)
  add(op, { check = "random", label = label, attrs = attrs, run = function()
    local a = {}
    for k, v in pairs(attrs) do a[k] = v end
    a.shape = { NR }
    a.seed = 1234
    local x = core[op](a)
    local again = core[op](a)
    a.seed = 1235
    local other = core[op](a)
    a.shape = { 0, 3 }
    local empty = core[op](a)
    return { x, again, other, empty }
  end })
end
random_case("uniform", { low = -1, high = 3, dtype = "float32" })
random_case("uniform", { low = 0, high = 1, dtype = "float64" })
random_case("normal", { mean = 2, stddev = 0.5, dtype = "float32" })
random_case("normal", { mean = -1, stddev = 3, dtype = "float64" })
random_case("truncated_normal", { mean = 1, stddev = 2, dtype = "float32" })
random_case("truncated_normal", { mean = 0, stddev = 1, dtype = "float64" })
random_case("bernoulli", { p = 0.3, dtype = "float32" })
random_case("bernoulli", { p = 0.8, dtype = "bool" })
random_case("bernoulli", { p = 0.5, dtype = "int32" })
random_case("randint", { low = -3, high = 4, dtype = "int64" })
random_case("randint", { low = 0, high = 9, dtype = "uint8" })
random_case("randint", { low = 5, high = 5, dtype = "int32" })

-- ---- unary elementwise ------------------------------------------------------------
-- Float shapes: plain, size-0, size-1, scalar, and three non-contiguous views.
local function float_unary_shapes(kind)
  return {
    I({ 2, 3 }, nil, kind), I({ 0, 3 }, nil, kind), I({ 1 }, nil, kind), I({}, nil, kind),
    I({ 3, 4 }, nil, kind, "T"), I({ 2, 5 }, nil, kind, "step"), I({ 3, 4 }, nil, kind, "bcast"),
  }
end
local function unary_family(op, kind, dtypes)
  for _, dt in ipairs(F) do
    for _, x in ipairs(float_unary_shapes(kind)) do
      x.dtype = dt
      add(op, { ins = { x } })
    end
  end
  for _, dt in ipairs(dtypes) do
    if dt ~= "float32" and dt ~= "float64" then
      add(op, { ins = { I({ 2, 3 }, dt, kind == "offgrid" and "u" or kind) } })
      add(op, { ins = { I({ 3, 2 }, dt, kind == "offgrid" and "u" or kind, "T") } })
    end
  end
end
-- neg, abs, sign, square, relu, floor, ceil, round keep the dtype; neg of bool raises.
for _, op in ipairs({ "neg", "abs", "sign", "square", "relu", "floor", "ceil", "round", "trunc" }) do
  local kind = (op == "neg" or op == "square") and "u" or "offgrid"
  unary_family(op, kind, op == "neg" and NUM or ALL)
end
add("neg", { ins = { I({ 3 }, "bool") }, expect_error = true })
-- The kinks, by moongrad's convention (TensorFlow's): abs'(0) = sign(0) = 0 (JAX: 1),
-- relu'(0) = 0; floor/ceil/round/sign have zero gradients everywhere.
for _, dt in ipairs(F) do
  add("abs", { ins = { L({ -1, 0, 2 }, dt) }, label = dt .. " at 0 (TF: gradient 0)" })
  add("relu", { ins = { L({ -1, 0, 2 }, dt) }, label = dt .. " at 0 (gradient 0)" })
  add("round", { ins = { L({ -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5 }, dt) }, label = dt .. " halves to even" })
  add("sign", { ins = { L({ 0 / 0, -3, 0, 4 }, dt) }, grad = false, label = dt .. " of NaN is NaN" })
end
add("neg", { ins = { L({ 0, 1, 200 }, "uint8") }, label = "uint8 wraps" })

-- The float functions: ints and bools give float32.
local float_unary = {
  exp = "u", expm1 = "u", log = "pos", log1p = "unit", sqrt = "pos", rsqrt = "pos", sin = "u", cos = "u",
  tanh = "u", sigmoid = "u", softplus = "u", erf = "u",
  -- issue 17
  tan = "unit", asin = "unit", acos = "unit", atan = "u", sinh = "u", cosh = "u", asinh = "u", acosh = "gt1",
  atanh = "unit", log2 = "pos", log10 = "pos", exp2 = "u", reciprocal = "pos", log_sigmoid = "u",
  hard_sigmoid = "offgrid", hard_swish = "offgrid",
}
local float_unary_names = {}
for op in pairs(float_unary) do float_unary_names[#float_unary_names + 1] = op end
table.sort(float_unary_names)
for _, op in ipairs(float_unary_names) do
  unary_family(op, float_unary[op], { "int32", "int64", "uint8", "bool" })
end
for _, dt in ipairs(F) do
  add("log", { ins = { L({ 0, -1, 1 }, dt) }, grad = false, label = dt .. " at 0 and -1" })
  add("sqrt", { ins = { L({ 0, -1, 4 }, dt) }, grad = false, label = dt .. " at 0 and -1" })
  add("sigmoid", { ins = { L({ -800, -40, 0, 40, 800 }, dt) }, label = dt .. " saturated" })
  add("softplus", { ins = { L({ -800, -40, 0, 40, 800 }, dt) }, label = dt .. " saturated" })
  add("tanh", { ins = { L({ -30, -1e-8, 0, 20 }, dt) }, label = dt .. " saturated" })
  add("expm1", { ins = { L({ -1e-10, 1e-9, 50 }, dt) }, label = dt .. " near 0" })
  add("log1p", { ins = { L({ -1e-10, 1e-9, 50 }, dt) }, label = dt .. " near 0" })
  add("erf", { ins = { L({ -6, -1e-8, 3 }, dt) }, label = dt .. " tails" })
end

-- IEEE special values: infinities and NaN through every float function
local INF = math.huge
for _, op in ipairs(float_unary_names) do
  for _, dt in ipairs(F) do
    add(op, { ins = { L({ -INF, INF, 0 / 0, -0.0 }, dt) }, grad = false, label = dt .. " inf and NaN" })
  end
end
for _, op in ipairs({ "neg", "abs", "sign", "square", "relu", "floor", "ceil", "round", "trunc" }) do
  add(op, { ins = { L({ -INF, INF, 0 / 0 }, "float32") }, grad = false, label = "float32 inf and NaN" })
end

local shape_pairs_early = { { { 2, 3 }, { 2, 3 } }, { { 2, 1 }, { 1, 3 } }, { { 0, 3 }, { 3 } }, { {}, { 2, 2 } } }

-- ---- issue 17: more float functions, activations with a parameter, float tests -------
for _, dt in ipairs(F) do
  add("trunc", { ins = { L({ -2.7, -0.5, -0.0, 0.5, 2.7 }, dt) }, label = dt .. " toward 0" })
  add("reciprocal", { ins = { L({ -2, -0.5, 0.25, 4 }, dt) }, label = dt .. " negatives" })
  add("reciprocal", { ins = { L({ 0, -0.0 }, dt) }, grad = false, label = dt .. " of +-0 is +-inf" })
  add("log_sigmoid", { ins = { L({ -800, -40, 0, 40, 800 }, dt) }, label = dt .. " saturated" })
  add("atanh", { ins = { L({ -1, 1, 2 }, dt) }, grad = false, label = dt .. " at +-1 and outside" })
  add("acosh", { ins = { L({ 1, 0.5 }, dt) }, grad = false, label = dt .. " at 1 and below" })
  add("asin", { ins = { L({ -1, 1, 1.5 }, dt) }, grad = false, label = dt .. " at +-1 and outside" })
  add("hard_sigmoid", { ins = { L({ -5, -2.9, 0, 2.9, 5 }, dt) }, label = dt .. " pieces" })
  add("hard_swish", { ins = { L({ -5, -2.9, 0, 2.9, 5 }, dt) }, label = dt .. " pieces" })
  for _, x in ipairs(float_unary_shapes("offgrid")) do
    x.dtype = dt
    add("elu", { ins = { x } })
    add("celu", { ins = { x }, attrs = { alpha = 0.7 } })
    add("leaky_relu", { ins = { x } })
    add("gelu", { ins = { x } })
    add("gelu", { ins = { x }, attrs = { approximate = true } })
  end
  add("elu", { ins = { I({ 2, 3 }, dt, "offgrid") }, attrs = { alpha = 2.5 } })
  add("celu", { ins = { I({ 2, 3 }, dt, "offgrid") } })
  add("leaky_relu", { ins = { I({ 2, 3 }, dt, "offgrid") }, attrs = { alpha = 0.01 } })
  add("gelu", { ins = { L({ -10, -3, 0, 3, 10 }, dt) }, label = dt .. " tails" })
  add("gelu", { ins = { L({ -10, -3, 0, 3, 10 }, dt) }, attrs = { approximate = true }, label = dt .. " tails, tanh form" })
  for _, op in ipairs({ "elu", "celu", "leaky_relu", "gelu" }) do
    add(op, { ins = { L({ -INF, INF, 0 / 0, -0.0 }, dt) }, grad = false, label = dt .. " inf and NaN" })
  end
  for _, op in ipairs({ "isnan", "isinf", "isfinite" }) do
    add(op, { ins = { L({ -INF, INF, 0 / 0, -0.0, 1.5 }, dt) } })
    add(op, { ins = { I({ 3, 4 }, dt, "u", "T") } })
  end
end
for _, op in ipairs({ "elu", "celu", "leaky_relu", "gelu" }) do
  for _, dt in ipairs({ "int32", "int64", "uint8", "bool" }) do add(op, { ins = { I({ 2, 3 }, dt, "u") } }) end
end
add("celu", { ins = { I({ 3 }, "float32") }, attrs = { alpha = 0 }, expect_error = true, label = "alpha 0 raises" })
add("elu", { ins = { I({ 3 }, "float32") }, attrs = { alpha = 0 / 0 }, expect_error = true, label = "alpha NaN raises" })
for _, op in ipairs({ "isnan", "isinf", "isfinite" }) do
  for _, dt in ipairs({ "int32", "int64", "uint8", "bool" }) do add(op, { ins = { I({ 2, 3 }, dt, "u") } }) end
  add(op, { ins = { I({ 0, 3 }, "float32") } })
end

-- bitwise ops: integers and bools (shifts: integers); floats raise
local bitwise = { "bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift" }
for _, op in ipairs(bitwise) do
  local shift = op == "left_shift" or op == "right_shift"
  for _, dt in ipairs(shift and INTS or { "int32", "int64", "uint8", "bool" }) do
    local kb = shift and "pos" or "distinct"
    for _, p in ipairs(shape_pairs_early) do
      add(op, { ins = { I(p[1], dt, "distinct"), I(p[2], dt, kb) } })
    end
    add(op, { ins = { I({ 3, 4 }, dt, "distinct", "T"), I({ 3, 4 }, dt, kb, "step") } })
  end
  add(op, { ins = { I({ 2, 3 }, "uint8", "distinct"), I({ 3 }, "int32", "pos") } })
  add(op, { ins = { I({ 2, 3 }, "int32", "distinct"), I({ 3 }, "int64", "pos") } })
  add(op, { ins = { I({ 2, 3 }, "int32", "distinct"), 3 } })
  add(op, { ins = { I({ 2, 3 }, "float32"), I({ 3 }, "int32") }, expect_error = true, label = "float32 raises" })
  add(op, { ins = { I({ 2, 3 }, "int64", "distinct"), 1.5 }, expect_error = true, label = "a float number raises" })
  if shift then
    add(op, { ins = { I({ 3 }, "bool"), I({ 3 }, "bool") }, expect_error = true, label = "bools raise" })
  end
end
for _, dt in ipairs({ "int32", "int64" }) do
  local w = dt == "int32" and 32 or 64
  add("left_shift", { ins = { L({ 1, -3, 5, 7, 1 }, dt), L({ w - 1, 2, w, -1, 0 }, dt) }, label = dt .. " counts at and past the width" })
  add("right_shift", { ins = { L({ -8, -8, 8, -1, 100 }, dt), L({ 1, w, w, -2, 3 }, dt) }, label = dt .. " arithmetic, counts past the width" })
end
add("left_shift", { ins = { L({ 200, 1, 3 }, "uint8"), L({ 1, 8, 7 }, "uint8") }, label = "uint8 bits shifted out" })
add("right_shift", { ins = { L({ 200, 255 }, "uint8"), L({ 3, 9 }, "uint8") }, label = "uint8 past the width" })
for _, dt in ipairs({ "int32", "int64", "uint8", "bool" }) do
  add("bitwise_not", { ins = { I({ 2, 3 }, dt, "distinct") } })
  add("bitwise_not", { ins = { I({ 3, 4 }, dt, "distinct", "T") } })
end
add("bitwise_not", { ins = { I({ 0, 2 }, "int32") } })
add("bitwise_not", { ins = { I({ 3 }, "float64") }, expect_error = true, label = "float64 raises" })

for _, dt in ipairs(ALL) do
  add("logical_not", { ins = { I({ 2, 3 }, dt, "small") } })
end
add("logical_not", { ins = { I({ 0, 2 }, "bool") } })
add("logical_not", { ins = { I({ 3, 2 }, "float64", "small", "T") } })

-- cast: every pair of dtypes; floats to ints truncate toward 0 (values inside the
-- target's range: outside it moongrad saturates, where C and NumPy are undefined).
for _, from in ipairs(ALL) do
  for _, to in ipairs(ALL) do
    local kind = from == "uint8" and "u" or "small"
    if from == "float32" or from == "float64" then kind = to == "uint8" and "pos" or "u" end
    add("cast", { ins = { I({ 2, 3 }, from, kind) }, attrs = { dtype = to } })
  end
end
add("cast", { ins = { I({ 3, 4 }, "float32", "u", "T") }, attrs = { dtype = "float64" } })
add("cast", { ins = { I({ 2, 5 }, "float64", "u", "step") }, attrs = { dtype = "float32" } })
add("cast", { ins = { I({ 0, 2 }, "float32") }, attrs = { dtype = "int32" } })
add("cast", { ins = { L({ 2.9, -2.9, 0.5, -0.5 }, "float64") }, attrs = { dtype = "int64" }, label = "truncates toward 0" })

-- ---- binary elementwise -------------------------------------------------------------
local shape_pairs = {
  { { 2, 3 }, { 2, 3 } }, { { 2, 3 }, { 3 } }, { { 2, 1 }, { 1, 3 } }, { { 3, 1, 4 }, { 2, 4 } },
  { { 0, 3 }, { 3 } }, { { 1 }, { 0 } }, { {}, { 2, 2 } }, { { 1, 1 }, { 4 } },
}
local view_pairs = {
  { I({ 3, 4 }, nil, nil, "T"), I({ 3, 4 }, nil, nil, "step") },
  { I({ 2, 3 }, nil, nil, "bcast"), I({ 4, 2, 3 }, nil, nil, "T") },
}
local mixed = {
  { "float32", "float64" }, { "int32", "float32" }, { "uint8", "int32" }, { "int64", "float64" },
  { "bool", "int64" }, { "bool", "float32" }, { "uint8", "int64" }, { "int32", "int64" },
}
-- domains: the kind of a and of b for each op
local binary = {
  add = { "u", "u" }, sub = { "u", "u" }, mul = { "u", "u" }, div = { "u", "nz" }, floordiv = { "u", "nz" },
  mod = { "u", "nz" }, pow = { "pos", "u" }, maximum = { "u", "u" }, minimum = { "u", "u" },
  atan2 = { "u", "u" }, copysign = { "u", "nz" }, logaddexp = { "u", "u" }, fmod = { "u", "nz" },
}
local no_bool_pair = { sub = true, floordiv = true, mod = true, pow = true, fmod = true }
local binary_names = {}
for op in pairs(binary) do binary_names[#binary_names + 1] = op end
table.sort(binary_names)
for _, op in ipairs(binary_names) do
  local ka, kb = binary[op][1], binary[op][2]
  local int_ka, int_kb = ka, kb
  if op == "pow" then int_ka, int_kb = "small", "pos" end
  for _, dt in ipairs(F) do
    for _, p in ipairs(shape_pairs) do
      add(op, { ins = { I(p[1], dt, ka), I(p[2], dt, kb) } })
    end
    for _, p in ipairs(view_pairs) do
      add(op, { ins = { I(p[1].shape, dt, ka, p[1].layout), I(p[2].shape, dt, kb, p[2].layout) } })
    end
  end
  for _, dt in ipairs({ "int32", "int64", "uint8", "bool" }) do
    if not (dt == "bool" and no_bool_pair[op]) then
      add(op, { ins = { I({ 2, 3 }, dt, int_ka), I({ 3 }, dt, int_kb) } })
      add(op, { ins = { I({ 3, 4 }, dt, int_ka, "T"), I({ 3, 4 }, dt, int_kb, "step") } })
    end
  end
  if no_bool_pair[op] then add(op, { ins = { I({ 3 }, "bool"), I({ 3 }, "bool") }, expect_error = true }) end
  for _, m in ipairs(mixed) do
    local a, b = m[1], m[2]
    if not (op == "pow" and (a == "bool" or b == "bool")) then
      local function k(dt, fk, ik) return (dt == "float32" or dt == "float64") and fk or ik end
      add(op, { ins = { I({ 2, 3 }, a, k(a, ka, int_ka)), I({ 2, 1 }, b, k(b, kb, int_kb)) } })
    end
  end
  -- weak scalars: a Lua number adopts the tensor's dtype unless its kind is wider
  local sa = (op == "pow") and 2 or 3
  add(op, { ins = { I({ 2, 3 }, "float32", ka), sa } })
  add(op, { ins = { I({ 2, 3 }, "float64", ka), 2.5 } })
  add(op, { ins = { I({ 2, 3 }, "int32", int_ka), 0.5 } })
  add(op, { ins = { I({ 2, 3 }, "uint8", int_ka), sa } })
  add(op, { ins = { I({ 2, 3 }, "int64", int_ka), sa } })
  if op ~= "pow" and op ~= "sub" then add(op, { ins = { I({ 2, 3 }, "bool"), 1.5 } }) end
  add(op, { ins = { 1.5, I({ 2, 3 }, "float64", kb) } })
  add(op, { ins = { 2, I({ 3 }, "int64", int_kb) } })
end
-- Conventions.
for _, dt in ipairs(F) do
  -- ties of maximum/minimum: the whole gradient goes to the first input (TF's x >= y
  -- mask); JAX and PyTorch split it in half.
  add("maximum", { ins = { L({ 1, 2, 3 }, dt), L({ 1, 0, 3 }, dt) }, label = dt .. " ties (TF: all to a)" })
  add("minimum", { ins = { L({ 1, 2, 3 }, dt), L({ 1, 5, 3 }, dt) }, label = dt .. " ties (TF: all to a)" })
  add("maximum", { ins = { L({ 0 / 0, 1, 2 }, dt), L({ 1, 0 / 0, 0 }, dt) }, grad = false, label = dt .. " NaN wins" })
  add("minimum", { ins = { L({ 0 / 0, 1, 2 }, dt), L({ 1, 0 / 0, 0 }, dt) }, grad = false, label = dt .. " NaN wins" })
  -- floor division and modulo take the floor (Lua's // and %): the sign of the divisor
  add("floordiv", { ins = { L({ 7, -7, 7, -7, 5.5 }, dt), L({ 2, 2, -2, -2, 0.5 }, dt) }, label = dt .. " signs" })
  add("mod", { ins = { L({ 5.5, -5.5, 5.5, -5.5 }, dt), L({ 2, 2, -2, -2 }, dt) }, label = dt .. " signs" })
  add("floordiv", { ins = { L({ 7, -7, 0 }, dt), L({ 0, 0, 0 }, dt) }, grad = false, label = dt .. " by 0 (IEEE)" })
  add("mod", { ins = { L({ 7, -7, 0 }, dt), L({ 0, 0, 0 }, dt) }, grad = false, label = dt .. " by 0 (NaN)" })
  -- pow: the gradient for the exponent takes log(a) as 0 where a <= 0 (TF)
  add("pow", { ins = { L({ -2, -1.5, 3, 0 }, dt), L({ 2, 3, 2, 2 }, dt) }, label = dt .. " base <= 0 (TF)" })
  -- issue 14 item 7: d/dx x^0 at x = 0 is 0
  add("pow", { ins = { L({ 0, 1, 2 }, dt), L({ 0, 0, 0 }, dt) }, label = dt .. " x^0 at 0" })
  add("atan2", { ins = { L({ 0, 0, -0.0, 1, -1 }, dt), L({ 1, -1, -1, 0, 0 }, dt) }, label = dt .. " axes" })
  -- issue 17
  add("copysign", { ins = { L({ 1, -2, 3, 0, -0.0 }, dt), L({ -0.0, 0, 0 / 0, -1, 1 }, dt) }, grad = false, label = dt .. " signed zeros" })
  add("logaddexp", { ins = { L({ -INF, INF, INF, 0 / 0, 800, -800 }, dt), L({ -INF, INF, -INF, 1, 800, -800 }, dt) }, grad = false, label = dt .. " infinities" })
  add("logaddexp", { ins = { L({ 100, -100, 3 }, dt), L({ -100, 100, 3 }, dt) }, label = dt .. " far apart and equal" })
  add("fmod", { ins = { L({ 5.5, -5.5, 5.5, -5.5 }, dt), L({ 2, 2, -2, -2 }, dt) }, label = dt .. " signs (of a)" })
  add("fmod", { ins = { L({ 7, -7, INF }, dt), L({ 0, INF, 2 }, dt) }, grad = false, label = dt .. " by 0 and inf" })
end
for _, dt in ipairs(INTS) do
  add("fmod", { ins = { L({ 7, 3, 0 }, dt), L({ 0, 0, 0 }, dt) }, label = dt .. " by 0 gives 0" })
end
for _, dt in ipairs({ "int32", "int64" }) do
  add("fmod", { ins = { L({ 7, -7, 7, -7 }, dt), L({ 2, 2, -2, -2 }, dt) }, label = dt .. " signs (of a)" })
end
for _, dt in ipairs(INTS) do
  -- integer division and modulo by zero give 0 (documented: no error, no trap)
  add("floordiv", { ins = { L({ 7, 3, 0 }, dt), L({ 0, 0, 0 }, dt) }, label = dt .. " by 0 gives 0" })
  add("mod", { ins = { L({ 7, 3, 0 }, dt), L({ 0, 0, 0 }, dt) }, label = dt .. " by 0 gives 0" })
end
for _, dt in ipairs({ "int32", "int64" }) do
  add("floordiv", { ins = { L({ 7, -7, 7, -7 }, dt), L({ 2, 2, -2, -2 }, dt) }, label = dt .. " signs" })
  add("mod", { ins = { L({ 7, -7, 7, -7 }, dt), L({ 2, 2, -2, -2 }, dt) }, label = dt .. " signs" })
  -- negative integer exponents give 0 unless the base is 1 or -1 (documented)
  add("pow", { ins = { L({ 2, 1, -1, -1, 0, 3 }, dt), L({ -1, -2, -3, -2, -1, 0 }, dt) }, label = dt .. " negative exponents" })
end
add("add", { ins = { L({ 250, 10 }, "uint8"), L({ 10, 250 }, "uint8") }, label = "uint8 wraps" })
add("sub", { ins = { L({ 3 }, "uint8"), L({ 5 }, "uint8") }, label = "uint8 wraps" })
-- issue 14 item 7: a weak scalar that the tensor's dtype cannot hold raises (NumPy 2)
add("add", { ins = { L({ 250 }, "uint8"), 300 }, expect_error = true, label = "uint8 + 300 raises" })
add("mul", { ins = { L({ 2 }, "int32"), math.tointeger(2 ^ 40) }, expect_error = true, label = "int32 * 2^40 raises" })

-- comparisons and logical ops
local compare = { "equal", "not_equal", "less", "less_equal", "greater", "greater_equal" }
for _, op in ipairs(compare) do
  for _, p in ipairs(shape_pairs) do add(op, { ins = { I(p[1], "float32", "small"), I(p[2], "float32", "small") } }) end
  for _, dt in ipairs(ALL) do
    add(op, { ins = { I({ 3, 4 }, dt, "small", "T"), I({ 3, 4 }, dt, "small", "step") } })
  end
  for _, m in ipairs(mixed) do add(op, { ins = { I({ 2, 3 }, m[1], "small"), I({ 3 }, m[2], "small") } }) end
  add(op, { ins = { I({ 2, 3 }, "float32", "small"), 1 } })
  add(op, { ins = { I({ 2, 3 }, "int32", "small"), 0.5 } })
  add(op, { ins = { I({ 2, 3 }, "uint8", "small"), -1 }, label = "uint8 vs -1 (true answer)" })
  add(op, { ins = { L({ 0 / 0, 1, 0 / 0 }, "float64"), L({ 0 / 0, 1, 2 }, "float64") }, label = "NaN" })
end
for _, op in ipairs({ "logical_and", "logical_or", "logical_xor" }) do
  for _, p in ipairs(shape_pairs) do add(op, { ins = { I(p[1], "bool"), I(p[2], "bool") } }) end
  for _, dt in ipairs(ALL) do add(op, { ins = { I({ 3, 4 }, dt, "small", "T"), I({ 3, 4 }, "bool", nil, "step") } }) end
  add(op, { ins = { I({ 2, 3 }, "float32", "small"), I({ 3 }, "int64", "small") } })
  add(op, { ins = { I({ 2, 3 }, "bool"), 0 } })
end

-- where(cond, a, b)
for _, dt in ipairs(F) do
  add("where", { ins = { I({ 2, 3 }, "bool"), I({ 2, 3 }, dt), I({ 2, 3 }, dt) } })
  add("where", { ins = { I({ 3 }, "bool"), I({ 2, 1 }, dt), I({ 2, 3 }, dt) } })
  add("where", { ins = { I({ 2, 1, 3 }, "bool"), I({ 4, 1 }, dt), I({ 3 }, dt) } })
  add("where", { ins = { I({ 0, 3 }, "bool"), I({ 1, 3 }, dt), I({ 3 }, dt) } })
  add("where", { ins = { I({ 3, 4 }, "bool", nil, "T"), I({ 3, 4 }, dt, nil, "step"), I({ 3, 4 }, dt, nil, "bcast") } })
  add("where", { ins = { I({ 2, 3 }, "bool"), I({ 2, 3 }, dt), 0 } })
end
for _, dt in ipairs({ "int32", "int64", "uint8", "bool" }) do
  add("where", { ins = { I({ 2, 3 }, "bool"), I({ 2, 3 }, dt, "small"), I({ 3 }, dt, "small") } })
end
add("where", { ins = { I({ 2, 3 }, "int32", "small"), I({ 2, 3 }, "float32"), I({ 2, 3 }, "int64") } })
add("where", { ins = { I({ 2, 3 }, "float64", "small"), I({ 2, 3 }, "uint8"), I({ 2, 3 }, "int32") } })

-- clip: either bound may be omitted; integer x keeps its dtype (the bounds act as
-- the integers inside them); at a bound the gradient passes (TF: min <= x <= max;
-- JAX's clip splits it at ties).
for _, dt in ipairs(F) do
  for _, x in ipairs(float_unary_shapes("u")) do
    x.dtype = dt
    add("clip", { ins = { x }, attrs = { min = -0.5, max = 1 } })
  end
  add("clip", { ins = { I({ 2, 3 }, dt) }, attrs = { min = 0 } })
  add("clip", { ins = { I({ 2, 3 }, dt) }, attrs = { max = 0.25 } })
  add("clip", { ins = { I({ 2, 3 }, dt) } })
  add("clip", { ins = { L({ -1, -0.5, 0, 1, 2 }, dt) }, attrs = { min = -0.5, max = 1 }, label = dt .. " at the bounds (TF: passes)" })
end
for _, dt in ipairs(INTS) do
  add("clip", { ins = { I({ 2, 3 }, dt) }, attrs = { min = 0.5, max = 3.7 } })
  add("clip", { ins = { I({ 3, 4 }, dt, nil, "T") }, attrs = { min = 2 } })
end
add("clip", { ins = { I({ 3 }, "bool") }, attrs = { min = 0, max = 1 }, expect_error = true })

-- ---- reductions ------------------------------------------------------------------
local reduce_attrs = {
  {}, { axis = 1 }, { axis = -1, keepdims = true }, { axis = { 1, 3 } }, { axis = { 3, 2 }, keepdims = true },
}
local function reduce_family(op, dtypes, kind, opts)
  opts = opts or {}
  for _, dt in ipairs(F) do
    for _, a in ipairs(reduce_attrs) do add(op, { ins = { I({ 2, 3, 4 }, dt, kind) }, attrs = a }) end
    add(op, { ins = { I({ 3, 4 }, dt, kind, "T") }, attrs = { axis = 1 } })
    add(op, { ins = { I({ 2, 5 }, dt, kind, "step") }, attrs = { axis = 2 } })
    add(op, { ins = { I({ 3, 4 }, dt, kind, "bcast") }, attrs = { axis = 1 } })
    add(op, { ins = { I({ 1, 3, 1 }, dt, kind) }, attrs = { axis = 3 } })
    add(op, { ins = { I({}, dt, kind) } })
    if not opts.no_empty then
      add(op, { ins = { I({ 0, 3 }, dt, kind) }, attrs = { axis = 1 } })
      add(op, { ins = { I({ 0, 3 }, dt, kind) } })
    end
    add(op, { ins = { I({ 0, 3 }, dt, kind) }, attrs = { axis = 2 } })
  end
  for _, dt in ipairs(dtypes) do
    if dt ~= "float32" and dt ~= "float64" then
      add(op, { ins = { I({ 2, 3, 4 }, dt, kind == "distinct" and "distinct" or "small") }, attrs = { axis = 2 } })
      add(op, { ins = { I({ 3, 4 }, dt, "small", "T") } })
    end
  end
end
reduce_family("sum", ALL, "u")
reduce_family("mean", ALL, "u")
reduce_family("prod", ALL, "u")
reduce_family("max", ALL, "distinct", { no_empty = true })
reduce_family("min", ALL, "distinct", { no_empty = true })
reduce_family("logsumexp", { "int32", "int64", "uint8", "bool" }, "u")
reduce_family("all", ALL, "small")
reduce_family("any", ALL, "small")
for _, op in ipairs({ "max", "min" }) do
  add(op, { ins = { I({ 0, 3 }, "float32") }, attrs = { axis = 1 }, expect_error = true, label = "empty axis raises" })
  for _, dt in ipairs(F) do  -- ties: the gradient is shared equally among them (TF and JAX)
    add(op, { ins = { L({ 1, 3, 3, 0, 3, -1 }, dt, { 2, 3 }) }, label = dt .. " ties share" })
    add(op, { ins = { L({ 1, 3, 3, 3, 3, -1 }, dt, { 2, 3 }) }, attrs = { axis = 2 }, label = dt .. " ties share" })
  end
end
-- NaN wins (documented); logsumexp of -inf is -inf (TF and JAX: the maximum is taken as 0
-- where it is not finite), of +inf +inf
for _, op in ipairs({ "max", "min", "sum", "prod", "mean", "logsumexp" }) do
  add(op, { ins = { L({ 1, 0 / 0, 3, 2, 0, -1 }, "float32", { 2, 3 }) }, attrs = { axis = 2 }, grad = false, label = "NaN wins" })
end
add("logsumexp", { ins = { L({ -INF, -INF, 0, -INF, INF, 1 }, "float64", { 3, 2 }) }, attrs = { axis = 2 }, grad = false,
  label = "infinities" })
add("softmax", { ins = { L({ -INF, 0, 1, -INF, 2, -INF }, "float32", { 2, 3 }) }, label = "masked with -inf" })
add("log_softmax", { ins = { L({ -INF, 0, 1, -INF, 2, -INF }, "float64", { 2, 3 }) }, grad = false, label = "masked with -inf" })
add("max_pool2d", { ins = { L({ 1, 0 / 0, 3, 2, 5, 6, 7, 8 }, "float32", { 1, 2, 4, 1 }) }, grad = false, label = "NaN wins" })
add("maximum", { ins = { L({ -INF, INF, 1 }, "float64"), L({ 1, 2, INF }, "float64") }, grad = false, label = "infinities" })

-- issue 14 item 7: prod's gradient at an exact zero is the product of the others (TF)
for _, dt in ipairs(F) do
  add("prod", { ins = { L({ 2, 0, 3, 0, 0, 5 }, dt, { 2, 3 }) }, attrs = { axis = 2 }, label = dt .. " zeros" })
end
-- an empty list of axes names no axis: the reduction is the identity (NumPy, TF)
add("sum", { ins = { I({ 2, 3 }, "float32") }, attrs = { axis = {} }, label = "axis={} names no axis" })
for _, op in ipairs({ "argmax", "argmin" }) do
  for _, dt in ipairs(NUM) do
    add(op, { ins = { I({ 3, 4 }, dt, "distinct") } })
    add(op, { ins = { I({ 3, 4 }, dt, "distinct") }, attrs = { axis = 1 } })
    add(op, { ins = { I({ 2, 3, 4 }, dt, "distinct") }, attrs = { axis = -1, keepdims = true } })
    add(op, { ins = { I({ 3, 4 }, dt, "distinct", "T") }, attrs = { axis = 2 } })
  end
  add(op, { ins = { I({ 3, 4 }, "bool") }, attrs = { axis = 2 } })
  add(op, { ins = { L({ 1, 3, 3, 0, 0, 3 }, "float64", { 2, 3 }) }, attrs = { axis = 2 }, label = "ties: the first" })
  add(op, { ins = { I({ 0, 3 }, "float32") }, attrs = { axis = 2 } })
  add(op, { ins = { I({ 0, 3 }, "float32") }, attrs = { axis = 1 }, expect_error = true, label = "empty axis raises" })
end
-- ---- scans, sorting, selection (issue 17) ------------------------------------------------
for _, op in ipairs({ "cumsum", "cumprod", "cumulative_logsumexp" }) do
  for _, dt in ipairs(F) do
    add(op, { ins = { I({ 3, 4 }, dt) } })
    add(op, { ins = { I({ 2, 3, 4 }, dt) }, attrs = { axis = 2 } })
    add(op, { ins = { I({ 2, 5 }, dt) }, attrs = { axis = -1, exclusive = true } })
    add(op, { ins = { I({ 2, 5 }, dt) }, attrs = { axis = 2, reverse = true } })
    add(op, { ins = { I({ 3, 4 }, dt) }, attrs = { axis = 1, exclusive = true, reverse = true } })
    add(op, { ins = { I({ 3, 4 }, dt, nil, "T") }, attrs = { axis = 2 } })
    add(op, { ins = { I({ 2, 5 }, dt, nil, "step") }, attrs = { axis = 1, reverse = true } })
    add(op, { ins = { I({}, dt) } })
    add(op, { ins = { I({ 0, 3 }, dt) }, attrs = { axis = 1 } })
    add(op, { ins = { I({ 3, 1 }, dt) }, attrs = { axis = 2, exclusive = true } })
  end
  for _, dt in ipairs({ "int32", "int64", "uint8", "bool" }) do
    add(op, { ins = { I({ 3, 4 }, dt, "small") }, attrs = { axis = 2 } })
  end
  add(op, { ins = { I({ 3, 4 }, "float32") }, attrs = { axis = 3 }, expect_error = true, label = "axis out of range" })
end
for _, dt in ipairs(F) do  -- cumprod's gradient at zeros (exact: no division by x)
  add("cumprod", { ins = { L({ 2, 0, 3, 0, 0, 5, 1, 2 }, dt, { 2, 4 }) }, attrs = { axis = 2 }, label = dt .. " zeros" })
  add("cumprod", { ins = { L({ 2, 0, 3, 4, 0, 5, 1, 2 }, dt, { 2, 4 }) }, attrs = { axis = 2, exclusive = true, reverse = true },
    label = dt .. " zeros, exclusive reverse" })
  add("cumprod_grad", { ins = { L({ 2, 0, 3, 0, 0, 5, 1, 2 }, dt, { 2, 4 }), I({ 2, 4 }, dt) }, attrs = { axis = 2 },
    grad = false, label = dt .. " zeros" })
  add("cumprod_grad", { ins = { I({ 3, 4 }, dt), I({ 3, 4 }, dt) }, attrs = { axis = 1, exclusive = true }, grad = false })
  add("cumprod_grad", { ins = { I({ 3, 4 }, dt, nil, "T"), I({ 3, 4 }, dt) }, attrs = { axis = 2, reverse = true }, grad = false })
  add("cumulative_logsumexp", { ins = { L({ -INF, -INF, 0, 1000, -1000, 2 }, dt, { 2, 3 }) }, attrs = { axis = 2 },
    grad = false, label = dt .. " infinities and large values" })
end
add("cumprod_grad", { ins = { I({ 2, 3 }, "float32"), I({ 3, 2 }, "float32") }, expect_error = true, label = "shapes differ" })
add("cumsum", { ins = { L({ 1, 0 / 0, 3, 2, 0, -1 }, "float32", { 2, 3 }) }, attrs = { axis = 2 }, grad = false, label = "NaN" })
for _, op in ipairs({ "cummax", "cummin", "cumargmax", "cumargmin" }) do
  for _, dt in ipairs(NUM) do
    add(op, { ins = { I({ 3, 4 }, dt, "distinct") } })
    add(op, { ins = { I({ 2, 3, 4 }, dt, "distinct") }, attrs = { axis = 3, reverse = true } })
    add(op, { ins = { I({ 3, 4 }, dt, "distinct", "T") }, attrs = { axis = 2 } })
  end
  add(op, { ins = { I({ 3, 4 }, "bool") }, attrs = { axis = 2 } })
  add(op, { ins = { I({ 2, 5 }, "float64", "distinct", "step") }, attrs = { axis = -1 } })
  add(op, { ins = { I({}, "float32") } })
  add(op, { ins = { I({ 0, 3 }, "float32") }, attrs = { axis = 1 } })
  add(op, { ins = { L({ 1, 3, 0 / 0, 5, 2, 0 }, "float32", { 6 }) }, grad = false, label = "NaN from the first NaN on" })
  add(op, { ins = { L({ 1, 3, 3, 0, 3, 5 }, "float64", { 6 }) }, grad = false, label = "ties" })
  add(op, { ins = { I({ 3 }, "float32") }, attrs = { axis = 2 }, expect_error = true, label = "axis out of range" })
end
for _, op in ipairs({ "sort", "argsort" }) do
  for _, dt in ipairs(NUM) do
    add(op, { ins = { I({ 3, 5 }, dt, "distinct") } })
    add(op, { ins = { I({ 3, 5 }, dt, "distinct") }, attrs = { direction = "DESCENDING" } })
    add(op, { ins = { I({ 2, 3, 4 }, dt, "distinct") }, attrs = { axis = 2 } })
  end
  add(op, { ins = { I({ 4, 40 }, "float32", "u") } })                     -- the radix path (rows >= 32)
  add(op, { ins = { I({ 40, 3 }, "float64", "u") }, attrs = { axis = 1, direction = "DESCENDING" } })
  add(op, { ins = { I({ 50 }, "int64", "small") }, label = "radix path, ties" })
  add(op, { ins = { I({ 50 }, "int32", "small") }, attrs = { direction = "DESCENDING" }, label = "radix path, ties, descending" })
  add(op, { ins = { I({ 3, 4 }, "float32", "distinct", "T") }, attrs = { axis = 1 } })
  add(op, { ins = { I({ 2, 6 }, "float64", "distinct", "step") } })
  add(op, { ins = { I({ 3, 4 }, "bool") } })
  add(op, { ins = { I({}, "float32") } })
  add(op, { ins = { I({ 0, 3 }, "float32") }, attrs = { axis = 1 } })
  add(op, { ins = { L({ 1, 0 / 0, -0.0, 0, -INF, INF, 0, 2 }, "float32") }, grad = false, label = "NaN, -0 and infinities" })
  add(op, { ins = { L({ 1, 0 / 0, -0.0, 0, -INF, INF, 0, 2 }, "float64") }, attrs = { direction = "DESCENDING" }, grad = false,
    label = "NaN, -0 and infinities, descending" })
  add(op, { ins = { L({ 1, 3, 3, 0, 3, -1 }, "float64", { 2, 3 }) }, attrs = { direction = "DESCENDING" }, label = "ties stay in order" })
  add(op, { ins = { I({ 3, 4 }, "float32") }, attrs = { axis = 3 }, expect_error = true, label = "axis out of range" })
end
for _, dt in ipairs(NUM) do
  add("top_k_indices", { ins = { I({ 3, 6 }, dt, "distinct") }, attrs = { k = 3 } })
end
add("top_k_indices", { ins = { I({ 2, 3, 40 }, "float32", "u") }, attrs = { k = 5 } })
add("top_k_indices", { ins = { I({ 4, 5 }, "float64", "u", "T") }, attrs = { k = 5 } })
add("top_k_indices", { ins = { L({ 1, 3, 3, 0, 3, -1 }, "float64") }, attrs = { k = 3 }, label = "ties: lower index first" })
add("top_k_indices", { ins = { I({ 3, 4 }, "float32") }, attrs = { k = 0 } })
add("top_k_indices", { ins = { I({ 3, 4 }, "float32") }, attrs = { k = 5 }, expect_error = true, label = "k > size" })
add("top_k_indices", { ins = { I({ 3, 4 }, "float32") }, attrs = { k = -1 }, expect_error = true, label = "k < 0" })
add("top_k_indices", { ins = { I({}, "float32") }, attrs = { k = 1 }, expect_error = true, label = "0-d" })
for _, side in ipairs({ "left", "right" }) do
  add("searchsorted", { ins = { L({ 1, 2, 2, 3, 5 }, "float32"), L({ 0, 1, 2, 2.5, 5, 6, 0 / 0 }, "float32") },
    attrs = { side = side } })
  add("searchsorted", { ins = { L({ 1, 2, 2, 3, 5, 7 }, "int64", { 2, 3 }), L({ 2, 0, 9, 5 }, "int64", { 2, 2 }) },
    attrs = { side = side } })
  add("searchsorted", { ins = { L({ 1, 2, 3 }, "int32"), I({ 2, 3 }, "float64", "small") }, attrs = { side = side } })
  add("searchsorted", { ins = { L({ 1, 2, 3 }, "float64"), 2 }, attrs = { side = side } })
end
add("searchsorted", { ins = { I({ 2, 3 }, "float32"), I({ 3, 2 }, "float32") }, expect_error = true, label = "leading dims differ" })
add("searchsorted", { ins = { I({}, "float32"), I({ 3 }, "float32") }, expect_error = true, label = "0-d sorted" })
-- variance: divided by N - correction
for _, dt in ipairs(F) do
  for _, a in ipairs(reduce_attrs) do add("variance", { ins = { I({ 2, 3, 4 }, dt) }, attrs = a }) end
  add("variance", { ins = { I({ 3, 4 }, dt, nil, "T") }, attrs = { axis = 1, correction = 1 } })
  add("variance", { ins = { I({ 2, 5 }, dt, nil, "step") }, attrs = { axis = 2, correction = 1 } })
  add("variance", { ins = { I({ 1, 3, 1 }, dt) }, attrs = { axis = 2 } })
  add("variance", { ins = { I({ 0, 3 }, dt) }, attrs = { axis = 2 } })
  -- issue 14 item 7: correction >= N gives inf (or NaN for 0/0), as NumPy
  add("variance", { ins = { I({ 2, 3 }, dt) }, attrs = { axis = 2, correction = 3 }, grad = false, label = dt .. " correction = N" })
  add("variance", { ins = { I({ 2, 3 }, dt) }, attrs = { axis = 2, correction = 5 }, grad = false, label = dt .. " correction > N" })
end
for _, dt in ipairs({ "int32", "uint8", "bool" }) do add("variance", { ins = { I({ 3, 4 }, dt, "small") }, attrs = { axis = 1 } }) end
for _, op in ipairs({ "softmax", "log_softmax" }) do
  for _, dt in ipairs(F) do
    add(op, { ins = { I({ 2, 3 }, dt) } })
    add(op, { ins = { I({ 2, 3, 4 }, dt) }, attrs = { axis = 2 } })
    add(op, { ins = { I({ 3, 4 }, dt, nil, "T") }, attrs = { axis = 1 } })
    add(op, { ins = { I({ 2, 5 }, dt, nil, "step") } })
    add(op, { ins = { I({ 0, 3 }, dt) } })
    add(op, { ins = { I({ 3, 1 }, dt) } })
    add(op, { ins = { L({ 1000, 0, -1000, 999 }, dt, { 2, 2 }) }, label = dt .. " large logits" })
  end
  add(op, { ins = { I({ 2, 3 }, "int32", "small") } })
end

-- ---- matmul ---------------------------------------------------------------------
local mm = {
  { { 2, 3 }, { 3, 4 } }, { { 2, 2, 3 }, { 3, 2 } }, { { 1, 2, 3 }, { 4, 3, 2 } }, { { 3 }, { 3, 2 } },
  { { 2, 3 }, { 3 } }, { { 3 }, { 3 } }, { { 2, 0 }, { 0, 3 } }, { { 0, 3 }, { 3, 2 } }, { { 1, 1 }, { 1, 1 } },
  { { 2, 1, 2, 3 }, { 3, 3, 1 } }, { { 4 }, { 2, 4, 3 } },
}
for _, dt in ipairs(F) do
  for _, p in ipairs(mm) do
    local label
    if #p[1] == 1 and #p[2] == 1 then label = dt .. " vector . vector" end
    add("matmul", { ins = { I(p[1], dt), I(p[2], dt) }, label = label })
  end
  add("matmul", { ins = { I({ 2, 3 }, dt, nil, "T"), I({ 3, 4 }, dt, nil, "T") } })
  add("matmul", { ins = { I({ 2, 5 }, dt, nil, "step"), I({ 5, 3 }, dt, nil, "bcast") } })
  add("matmul", { ins = { I({ 17, 33 }, dt), I({ 33, 9 }, dt, nil, "T") } })
end
for _, dt in ipairs(INTS) do
  add("matmul", { ins = { I({ 2, 3 }, dt), I({ 3, 4 }, dt) } })
  add("matmul", { ins = { I({ 2, 2, 3 }, dt, nil, "T"), I({ 3 }, dt) } })
end
add("matmul", { ins = { I({ 2, 3 }, "int32"), I({ 3, 2 }, "float32") } })
add("matmul", { ins = { I({ 2, 3 }, "float32"), I({ 3, 2 }, "float64") } })

-- ---- movement and views ------------------------------------------------------------
local function all_dtypes(op, ins_of, attrs)
  for _, dt in ipairs(ALL) do add(op, { ins = ins_of(dt), attrs = attrs }) end
end
for _, dt in ipairs(F) do
  add("reshape", { ins = { I({ 2, 3 }, dt) }, attrs = { shape = { 3, 2 } } })
  add("reshape", { ins = { I({ 2, 3, 4 }, dt) }, attrs = { shape = { 4, -1 } } })
  add("reshape", { ins = { I({ 3, 4 }, dt, nil, "T") }, attrs = { shape = { 12 } } })
  add("reshape", { ins = { I({ 2, 5 }, dt, nil, "step") }, attrs = { shape = { 5, 1, 2 } } })
  add("reshape", { ins = { I({ 0, 3 }, dt) }, attrs = { shape = { 3, 0 } } })
  add("reshape", { ins = { I({ 1 }, dt) }, attrs = { shape = {} } })
  add("reshape", { ins = { I({}, dt) }, attrs = { shape = { 1, 1 } } })
  add("permute", { ins = { I({ 2, 3, 4 }, dt) }, attrs = { axes = { 3, 1, 2 } } })
  add("permute", { ins = { I({ 3, 4 }, dt, nil, "T") }, attrs = { axes = { 2, 1 } } })
  add("permute", { ins = { I({ 2, 0, 1 }, dt) }, attrs = { axes = { 2, 3, 1 } } })
  add("transpose", { ins = { I({ 2, 3 }, dt) } })
  add("transpose", { ins = { I({ 2, 3, 4 }, dt) }, attrs = { axis0 = 1, axis1 = 3 } })
  add("transpose", { ins = { I({ 4 }, dt) } })
  add("transpose", { ins = { I({ 2, 5 }, dt, nil, "step") }, attrs = { axis0 = -1, axis1 = 1 } })
  add("squeeze", { ins = { I({ 1, 3, 1 }, dt) } })
  add("squeeze", { ins = { I({ 1, 3, 1 }, dt) }, attrs = { axis = 3 } })
  add("squeeze", { ins = { I({ 1, 0, 1 }, dt) }, attrs = { axis = { 1, -1 } } })
  add("squeeze", { ins = { I({ 3, 1 }, dt, nil, "T") } })
  add("unsqueeze", { ins = { I({ 2, 3 }, dt) }, attrs = { axis = 1 } })
  add("unsqueeze", { ins = { I({ 2, 3 }, dt) }, attrs = { axis = -1 } })
  add("unsqueeze", { ins = { I({}, dt) }, attrs = { axis = 1 } })
  add("unsqueeze", { ins = { I({ 3, 4 }, dt, nil, "T") }, attrs = { axis = 2 } })
  add("expand", { ins = { I({ 2, 1 }, dt) }, attrs = { shape = { 2, 3 } } })
  add("expand", { ins = { I({ 2, 1 }, dt) }, attrs = { shape = { 4, -1, 3 } } })
  add("expand", { ins = { I({ 3 }, dt) }, attrs = { shape = { 0, 3 } } })
  add("expand", { ins = { I({}, dt) }, attrs = { shape = { 2, 2 } } })
  add("expand", { ins = { I({ 1, 3 }, dt, nil, "step") }, attrs = { shape = { 2, 3 } } })
  add("slice", { ins = { I({ 4, 3 }, dt) }, attrs = { begin = { 1, 0 }, ["end"] = { 4, 3 }, step = { 2, 1 } } })
  add("slice", { ins = { I({ 5 }, dt) }, attrs = { begin = { 4 }, ["end"] = { -6 }, step = { -2 } } })
  add("slice", { ins = { I({ 3, 4 }, dt) }, attrs = { begin = { 2, 1 }, ["end"] = { 2, 3 }, step = { 1, 1 } } })
  add("slice", { ins = { I({ 3, 4 }, dt, nil, "T") }, attrs = { begin = { 0, 3 }, ["end"] = { 3, 0 }, step = { 1, -1 } } })
  add("slice", { ins = { I({ 0, 4 }, dt) }, attrs = { begin = { 0, 1 }, ["end"] = { 0, 4 }, step = { 1, 2 } } })
  add("select", { ins = { I({ 3, 2 }, dt) }, attrs = { axis = 1, index = 2 } })
  add("select", { ins = { I({ 2, 3, 4 }, dt) }, attrs = { axis = -1, index = -1 } })
  add("select", { ins = { I({ 3, 4 }, dt, nil, "T") }, attrs = { axis = 2, index = 3 } })
  add("select", { ins = { I({ 3 }, dt) }, attrs = { axis = 1, index = 1 } })
  add("contiguous", { ins = { I({ 2, 3 }, dt) } })
  add("contiguous", { ins = { I({ 3, 4 }, dt, nil, "T") } })
  add("contiguous", { ins = { I({ 2, 5 }, dt, nil, "step") } })
  add("contiguous", { ins = { I({ 0, 2 }, dt) } })
  add("concat", { ins = { I({ 2, 3 }, dt), I({ 1, 3 }, dt) }, attrs = { axis = 1 } })
  add("concat", { ins = { I({ 2, 3 }, dt), I({ 2, 0 }, dt), I({ 2, 2 }, dt, nil, "T") }, attrs = { axis = -1 } })
  add("concat", { ins = { I({ 3 }, dt) } })
  add("concat", { ins = { I({ 2, 3 }, dt), I({ 1, 3 }, dt, nil, "T") } })   -- no axis: the first
  add("concat", { ins = { I({ 2, 3 }, dt, nil, "step"), I({ 2, 3 }, dt, nil, "bcast") }, attrs = { axis = 2 } })
  add("tile", { ins = { I({ 2, 3 }, dt) }, attrs = { reps = { 2, 1 } } })
  add("tile", { ins = { I({ 3 }, dt) }, attrs = { reps = { 2, 2 } } })
  add("tile", { ins = { I({ 2, 3 }, dt, nil, "T") }, attrs = { reps = { 1, 0 } } })
  add("tile", { ins = { I({ 1, 2, 1, 2, 1 }, dt) }, attrs = { reps = { 2, 1, 2, 1, 2 } }, label = dt .. " 5-d" })
  add("flip", { ins = { I({ 2, 3 }, dt) }, attrs = { axis = 2 } })
  add("flip", { ins = { I({ 2, 3, 4 }, dt) } })
  add("flip", { ins = { I({ 2, 3, 4 }, dt) }, attrs = { axis = { 1, -1 } } })
  add("flip", { ins = { I({ 3, 4 }, dt, nil, "T") }, attrs = { axis = 1 } })
  add("flip", { ins = { I({ 0, 4 }, dt) }, attrs = { axis = 2 } })
  -- issue 14 item 7: an empty list names no axis; x is returned unchanged
  add("flip", { ins = { I({ 2, 3 }, dt) }, attrs = { axis = {} }, label = dt .. " axis={}" })
  add("pad", { ins = { I({ 2, 3 }, dt) }, attrs = { paddings = { 1, 0, 2, 1 } } })
  add("pad", { ins = { I({ 2, 3 }, dt) }, attrs = { paddings = { 0, 1, 1, 1 }, value = 2.5 } })
  add("pad", { ins = { I({ 2, 4 }, dt) }, attrs = { paddings = { 1, 1, 2, 1 }, mode = "reflect" } })
  add("pad", { ins = { I({ 2, 3 }, dt) }, attrs = { paddings = { 0, 2, 1, 3 }, mode = "replicate" } })
  add("pad", { ins = { I({ 3, 4 }, dt, nil, "T") }, attrs = { paddings = { 1, 2, 0, 1 }, mode = "reflect" } })
  add("pad", { ins = { I({ 0, 3 }, dt) }, attrs = { paddings = { 1, 1, 0, 0 } } })
  add("stop_gradient", { ins = { I({ 2, 3 }, dt) } })
  add("stop_gradient", { ins = { I({ 3, 4 }, dt, nil, "T") } })
end
for _, dt in ipairs({ "int32", "int64", "uint8", "bool" }) do
  add("reshape", { ins = { I({ 3, 4 }, dt, "small", "T") }, attrs = { shape = { 2, 6 } } })
  add("permute", { ins = { I({ 2, 3, 4 }, dt, "small") }, attrs = { axes = { 2, 3, 1 } } })
  add("transpose", { ins = { I({ 2, 5 }, dt, "small", "step") } })
  add("squeeze", { ins = { I({ 1, 3 }, dt, "small") } })
  add("unsqueeze", { ins = { I({ 3 }, dt, "small") }, attrs = { axis = 2 } })
  add("expand", { ins = { I({ 3, 1 }, dt, "small") }, attrs = { shape = { 3, 2 } } })
  add("slice", { ins = { I({ 3, 4 }, dt, "small", "T") }, attrs = { begin = { 2, 0 }, ["end"] = { -4, 4 }, step = { -1, 3 } } })
  add("select", { ins = { I({ 3, 2 }, dt, "small") }, attrs = { axis = 2, index = 1 } })
  add("contiguous", { ins = { I({ 3, 4 }, dt, "small", "T") } })
  add("concat", { ins = { I({ 2, 3 }, dt, "small"), I({ 2, 1 }, dt, "small") }, attrs = { axis = 2 } })
  add("tile", { ins = { I({ 2, 3 }, dt, "small", "T") }, attrs = { reps = { 1, 2, 2 } } })
  add("flip", { ins = { I({ 2, 5 }, dt, "small", "step") }, attrs = { axis = { 1, 2 } } })
  add("pad", { ins = { I({ 2, 3 }, dt, "small") }, attrs = { paddings = { 1, 0, 0, 1 }, value = 1 } })
  add("pad", { ins = { I({ 2, 4 }, dt, "small") }, attrs = { paddings = { 1, 1, 0, 2 }, mode = "reflect" } })
  add("stop_gradient", { ins = { I({ 2, 3 }, dt, "small") } })
end
-- concat promotes dtypes
add("concat", { ins = { I({ 2 }, "int32"), I({ 3 }, "float32"), I({ 1 }, "uint8") } })
add("concat", { ins = { I({ 2, 2 }, "bool"), I({ 1, 2 }, "int64") } })
add("concat", { ins = { I({ 2 }, "float32"), I({ 2 }, "float64") } })

-- gather (take_along_axis), take, scatter_add, one_hot: indices are 1-based
for _, dt in ipairs(ALL) do
  add("gather", { ins = { I({ 2, 3 }, dt, "small"), L({ 1, 3, 2, 2 }, "int64", { 2, 2 }) }, attrs = { axis = 2 } })
  add("take", { ins = { I({ 3, 2 }, dt, "small"), L({ 3, 1, 3 }, "int64") }, attrs = { axis = 1 } })
end
for _, dt in ipairs(F) do
  add("gather", { ins = { I({ 3, 2 }, dt), L({ 3, 1, 1, 2, 2, 3, 1, 1 }, "int32", { 4, 2 }) }, attrs = { axis = 1 } })
  add("gather", { ins = { I({ 3, 4 }, dt, nil, "T"), L({ 4, 1, 2, 4, 3, 3 }, "int64", { 3, 2 }) }, attrs = { axis = -1 } })
  add("gather", { ins = { I({ 2, 3 }, dt), L({}, "int64", { 2, 0 }) }, attrs = { axis = 2 } })
  add("take", { ins = { I({ 2, 3 }, dt), L({ 3, 1, 1, 2 }, "int64", { 2, 2 }) }, attrs = { axis = 2 } })
  add("take", { ins = { I({ 4, 3 }, dt, nil, "T"), L({ 4, 4 }, "int32") } })
  add("take", { ins = { I({ 3, 2 }, dt), L({}, "int64", { 0 }) } })
  add("take", { ins = { I({ 2, 5 }, dt, nil, "step"), L({ 2 }, "int64", {}) }, attrs = { axis = 2 } })
  add("scatter_add", { ins = { I({ 2, 3 }, dt), L({ 1, 3, 2, 2 }, "int64", { 2, 2 }), I({ 2, 2 }, dt) }, attrs = { axis = 2 } })
  add("scatter_add", { ins = { I({ 3, 2 }, dt, nil, "T"), L({ 3, 3, 1, 2 }, "int64", { 2, 2 }), I({ 2, 2 }, dt, nil, "step") }, attrs = { axis = 1 } })
  add("scatter_add", { ins = { I({ 3, 2 }, dt), L({ 2, 2, 2, 2, 2, 2 }, "int32", { 3, 2 }), I({ 3, 2 }, dt) }, attrs = { axis = 1 }, label = dt .. " repeated index" })
  add("index_add", { ins = { I({ 4, 2 }, dt), L({ 3, 1, 3 }, "int64"), I({ 3, 2 }, dt) }, attrs = { axis = 1 } })
  add("index_add", { ins = { I({ 2, 3 }, dt, nil, "T"), L({ 2, 3 }, "int64", { 2, 1 }), I({ 2, 2, 1 }, dt) }, attrs = { axis = 2 } })
  add("index_add", { ins = { I({ 3, 2 }, dt), L({}, "int64", { 0 }), I({ 0, 2 }, dt) }, attrs = { axis = 1 } })
  add("take_grad", { ins = { I({ 3, 2 }, dt), L({ 3, 1, 3 }, "int64") }, attrs = { axis = 1, size = 4 } })
  add("take_grad", { ins = { I({ 2, 2, 2, 3 }, dt), L({ 1, 2, 2, 1 }, "int64", { 2, 2 }) }, attrs = { axis = 2, size = 2 } })
end
for _, dt in ipairs({ "int32", "int64", "uint8" }) do
  add("scatter_add", { ins = { I({ 2, 3 }, dt, "small"), L({ 1, 3, 3, 3 }, "int64", { 2, 2 }), I({ 2, 2 }, dt, "small") }, attrs = { axis = 2 } })
end
for _, dt in ipairs(ALL) do
  add("one_hot", { ins = { L({ 1, 3, 0, 5, -1, 2 }, "int64", { 2, 3 }) }, attrs = { depth = 4, dtype = dt, outside = "zero" },
    label = dt .. " (out-of-range rows are zero with outside = zero, TF)" })
end
add("one_hot", { ins = { L({ 2, 1 }, "uint8") }, attrs = { depth = 3 } })
add("one_hot", { ins = { L({ 2, 1, 3 }, "int32") }, attrs = { depth = 3, dtype = "int32" } })
add("one_hot", { ins = { L({}, "int64", { 0 }) }, attrs = { depth = 3 } })

-- ---- autodiff helpers ---------------------------------------------------------------
for _, dt in ipairs(F) do
  add("slice_grad", { ins = { I({ 2, 3 }, dt) }, attrs = { begin = { 0, 0 }, ["end"] = { 4, 3 }, step = { 2, 1 }, shape = { 4, 3 } } })
  add("slice_grad", { ins = { I({ 3 }, dt, nil, "step") }, attrs = { begin = { 4 }, ["end"] = { -6 }, step = { -2 }, shape = { 5 } } })
  add("pad_grad", { ins = { I({ 4, 6 }, dt) }, attrs = { paddings = { 1, 1, 2, 1 }, mode = "reflect" } })
  add("pad_grad", { ins = { I({ 4, 5 }, dt, nil, "T") }, attrs = { paddings = { 1, 0, 2, 1 } } })
  add("pad_grad", { ins = { I({ 4, 6 }, dt) }, attrs = { paddings = { 0, 2, 1, 2 }, mode = "replicate" } })
end

-- ---- neural-network ops (NHWC; filters (kh, kw, cin/groups, cout)) -----------------
local conv = {
  { { 2, 5, 4, 3 }, { 3, 2, 3, 4 }, { padding = "same" } },
  { { 1, 6, 5, 2 }, { 3, 3, 2, 3 }, { strides = 2 } },
  { { 1, 7, 6, 2 }, { 2, 3, 2, 2 }, { strides = { 2, 1 }, padding = "same", dilation = { 1, 2 } } },
  { { 2, 4, 4, 4 }, { 2, 2, 2, 6 }, { groups = 2, padding = "same" } },
  { { 1, 6, 6, 1 }, { 2, 2, 1, 2 }, { dilation = 2 } },
  { { 1, 1, 1, 3 }, { 1, 1, 3, 2 }, {} },
  { { 0, 4, 4, 2 }, { 3, 3, 2, 2 }, { padding = "same" } },
  { { 1, 8, 8, 3 }, { 3, 3, 3, 5 }, { strides = 2, padding = "same" } },
}
for _, dt in ipairs(F) do
  for _, c in ipairs(conv) do add("conv2d", { ins = { I(c[1], dt), I(c[2], dt) }, attrs = c[3] }) end
  add("conv2d", { ins = { I({ 1, 4, 5, 2 }, dt, nil, "T"), I({ 2, 2, 2, 3 }, dt, nil, "step") } })
  add("conv2d_backprop_input", { ins = { I({ 2, 5, 4, 4 }, dt), I({ 3, 2, 3, 4 }, dt) }, attrs = { input_shape = { 2, 5, 4, 3 }, padding = "same" } })
  add("conv2d_backprop_input", { ins = { I({ 1, 3, 3, 3 }, dt), I({ 3, 3, 2, 3 }, dt) }, attrs = { input_shape = { 1, 5, 6, 2 }, strides = 2, padding = "same" } })
  add("conv2d_backprop_input", { ins = { I({ 1, 2, 2, 6 }, dt), I({ 2, 2, 2, 6 }, dt) }, attrs = { input_shape = { 1, 4, 4, 4 }, groups = 2, dilation = 2 } })
  add("conv2d_backprop_input", { ins = { I({ 1, 2, 2, 3 }, dt), I({ 3, 3, 2, 3 }, dt) }, attrs = { input_shape = { 1, 6, 5, 2 }, strides = 2 } })
  add("conv2d_backprop_filter", { ins = { I({ 2, 5, 4, 3 }, dt), I({ 2, 5, 4, 4 }, dt) }, attrs = { filter_shape = { 3, 2, 3, 4 }, padding = "same" } })
  add("conv2d_backprop_filter", { ins = { I({ 1, 5, 6, 2 }, dt), I({ 1, 3, 3, 3 }, dt) }, attrs = { filter_shape = { 3, 3, 2, 3 }, strides = 2, padding = "same" } })
  add("conv2d_backprop_filter", { ins = { I({ 1, 4, 4, 4 }, dt), I({ 1, 3, 3, 6 }, dt) }, attrs = { filter_shape = { 2, 2, 2, 6 }, groups = 2 } })
  add("conv2d_backprop_filter", { ins = { I({ 1, 6, 6, 1 }, dt), I({ 1, 4, 4, 2 }, dt) }, attrs = { filter_shape = { 2, 2, 1, 2 }, dilation = 2 } })
  add("conv2d_transpose", { ins = { I({ 1, 3, 3, 2 }, dt), I({ 3, 3, 4, 2 }, dt) }, attrs = { strides = 2, padding = "same" } })
  add("conv2d_transpose", { ins = { I({ 2, 3, 2, 2 }, dt), I({ 3, 2, 3, 2 }, dt) }, attrs = { strides = 2 } })
  add("conv2d_transpose", { ins = { I({ 1, 3, 3, 2 }, dt), I({ 3, 3, 2, 2 }, dt) }, attrs = { strides = 2, padding = "same", output_padding = 1 } })
  add("conv2d_transpose", { ins = { I({ 1, 2, 3, 1 }, dt), I({ 2, 2, 3, 1 }, dt) }, attrs = { strides = { 1, 2 } } })
  add("conv2d_transpose", { ins = { I({ 1, 3, 3, 2 }, dt), I({ 2, 2, 1, 2 }, dt) }, attrs = { dilation = 2 } })
  local pools = {
    { { 2, 4, 4, 2 }, {} }, { { 1, 5, 6, 3 }, { ksize = 3, strides = 2, padding = "same" } },
    { { 1, 5, 5, 2 }, { ksize = { 2, 3 }, strides = 1 } }, { { 1, 4, 5, 1 }, { ksize = 2, strides = { 1, 2 }, padding = "same" } },
    { { 0, 4, 4, 1 }, {} }, { { 1, 1, 1, 2 }, { ksize = 1 } },
  }
  for _, p in ipairs(pools) do
    add("max_pool2d", { ins = { I(p[1], dt, "distinct") }, attrs = p[2] })
    add("avg_pool2d", { ins = { I(p[1], dt) }, attrs = p[2] })
  end
  add("max_pool2d", { ins = { I({ 1, 4, 4, 2 }, dt, "distinct", "T") } })
  add("avg_pool2d", { ins = { I({ 1, 4, 6, 2 }, dt, nil, "step") }, attrs = { ksize = 3, padding = "same" } })
  add("max_pool2d_grad", { ins = { I({ 1, 4, 4, 2 }, dt, "distinct"), I({ 1, 2, 2, 2 }, dt) } })
  add("max_pool2d_grad", { ins = { I({ 1, 5, 5, 2 }, dt, "distinct"), I({ 1, 3, 3, 2 }, dt) }, attrs = { ksize = 3, strides = 2, padding = "same" } })
  add("max_pool2d_grad", { ins = { I({ 1, 4, 4, 1 }, dt, "distinct"), I({ 1, 3, 3, 1 }, dt) }, attrs = { ksize = 2, strides = 1 } })
  add("max_pool2d_grad_grad", { ins = { I({ 1, 4, 4, 2 }, dt, "distinct"), I({ 1, 4, 4, 2 }, dt) } })
  add("max_pool2d_grad_grad", { ins = { I({ 1, 5, 5, 2 }, dt, "distinct"), I({ 1, 5, 5, 2 }, dt) }, attrs = { ksize = 3, strides = 2, padding = "same" } })
  add("avg_pool2d_grad", { ins = { I({ 1, 3, 3, 2 }, dt) }, attrs = { input_shape = { 1, 5, 5, 2 }, ksize = 3, strides = 2, padding = "same" } })
  add("avg_pool2d_grad", { ins = { I({ 2, 2, 2, 1 }, dt) }, attrs = { input_shape = { 2, 4, 4, 1 } } })
  add("avg_pool2d_grad", { ins = { I({ 1, 4, 4, 1 }, dt) }, attrs = { input_shape = { 1, 5, 5, 1 }, ksize = 2, strides = 1 } })
  add("batch_norm", { ins = { I({ 3, 4 }, dt), I({ 4 }, dt), I({ 4 }, dt, "pos"), I({ 4 }, dt), I({ 4 }, dt) } })
  add("batch_norm", { ins = { I({ 3, 4 }, dt), I({ 3, 1 }, dt), I({ 3, 1 }, dt, "pos"), I({ 4 }, dt), I({ 4 }, dt) }, attrs = { epsilon = 0.01 } })
  add("batch_norm", { ins = { I({ 2, 3, 3, 2 }, dt, nil, "T"), I({ 2 }, dt), I({ 2 }, dt, "pos"), 0.5, 2 } })
  add("batch_norm", { ins = { I({ 0, 4 }, dt), I({ 4 }, dt), I({ 4 }, dt, "pos"), I({ 4 }, dt), I({ 4 }, dt) } })
  add("softmax_cross_entropy_with_logits", { ins = { I({ 3, 4 }, dt), I({ 3, 4 }, dt, "prob") } })
  add("softmax_cross_entropy_with_logits", { ins = { I({ 2, 3, 5 }, dt, nil, "T"), I({ 2, 3, 5 }, dt, "prob", "step") } })
  add("softmax_cross_entropy_with_logits", { ins = { I({ 0, 4 }, dt), I({ 0, 4 }, dt, "prob") } })
  add("softmax_cross_entropy_with_logits", { ins = { L({ 1000, 0, -1000, 5 }, dt, { 2, 2 }), L({ 0.5, 0.5, 1, 0 }, dt, { 2, 2 }) }, label = dt .. " large logits" })
  add("softmax_cross_entropy_with_logits_grad", { ins = { I({ 3, 4 }, dt), I({ 3, 4 }, dt, "prob"), I({ 3 }, dt) } })
  add("softmax_cross_entropy_with_logits_grad", { ins = { I({ 2, 3, 4 }, dt, nil, "T"), I({ 2, 3, 4 }, dt, "prob"), I({ 2, 3 }, dt) } })
  add("sparse_softmax_cross_entropy_with_logits", { ins = { I({ 3, 4 }, dt), L({ 2, 4, 1 }, "int64") } })
  add("sparse_softmax_cross_entropy_with_logits", { ins = { I({ 2, 2, 5 }, dt, nil, "step"), L({ 5, 1, 3, 3 }, "int32", { 2, 2 }) } })
  add("sparse_softmax_cross_entropy_with_logits", { ins = { L({ 1000, 0, -1000, 5 }, dt, { 2, 2 }), L({ 2, 1 }, "int64") }, label = dt .. " large logits" })
  add("sparse_softmax_cross_entropy_with_logits_grad", { ins = { I({ 3, 4 }, dt), L({ 2, 4, 1 }, "int64"), I({ 3 }, dt) } })
  add("sparse_softmax_cross_entropy_with_logits_grad", { ins = { I({ 4, 3 }, dt, nil, "T"), L({ 3, 3, 1, 2 }, "int64"), I({ 4 }, dt, nil, "step") } })
end
-- issue 14 item 7: max_pool2d takes integer tensors (TF's max_pool does)
for _, dt in ipairs({ "int32", "int64", "uint8" }) do
  add("max_pool2d", { ins = { I({ 1, 4, 4, 2 }, dt, "distinct") }, label = dt .. " max_pool2d of ints" })
end

-- dropout: its mask is a Philox stream of the seed no other library draws; check.py's
-- check_dropout verifies the contract instead: kept values scaled by 1/(1 - rate),
-- about rate of them dropped, the same mask for the same seed, the gradient the same
-- mask applied to the output gradient.
for _, dt in ipairs(F) do
  for _, rate in ipairs({ 0.25, 0.6 }) do
    add("dropout", { check = "dropout", label = dt .. " rate " .. rate, attrs = { rate = rate }, ins = { I({ 100, 50 }, dt, "pos") },
      run = function(xs)
        local x = xs[1]
        local tape = mg.GradientTape()
        tape:watch(x)
        local y = core.dropout(x, 7, { rate = rate })
        tape:stop()
        local gy = core.uniform(y.shape, -1, 1, dt, 3)
        local g = tape:gradient(y, x, { output_gradients = gy })
        local again = core.dropout(x, mg.tensor { 7 }, { rate = rate })
        local other = core.dropout(x, 8, { rate = rate })
        return { y, gy, g, again, other }
      end })
  end
  add("dropout", { ins = { I({ 0, 3 }, dt), 5 }, attrs = { rate = 0.5 }, check = "dropout_trivial", label = dt .. " empty" })
  add("dropout", { ins = { I({ 2, 3 }, dt), 5 }, attrs = { rate = 0 }, check = "dropout_trivial", label = dt .. " rate 0" })
end

-- ---- optimizer steps (check.py's check_optim: Keras 3's rules in NumPy) -----------
-- Two steps from non-zero slots, with a different gradient each step; the Variables
-- are updated in place and the op returns the number of elements updated.
-- The slots start positive ("pos"), a centered RMSprop's average gradient small ("tiny":
-- its square stays below the velocity, as it does in training).
local function optim_case(op, slots, hyper, label, tensors_of)
  add(op, { check = "optim", label = label, attrs = hyper, ins = (function()
    local ins = { I({ 3, 4 }, "float32") }
    for k = 1, slots do
      local avg = hyper.centered and k == slots
      ins[#ins + 1] = I({ 3, 4 }, "float32", avg and "tiny" or "pos")
    end
    ins[#ins + 1] = I({ 3, 4 }, "float32")
    ins[#ins + 1] = I({ 3, 4 }, "float32", nil, "T")
    return ins
  end)(), run = function(xs)
    local vars = {}
    for k = 1, slots + 1 do vars[k] = mg.Variable(core.contiguous(xs[k]) * 1) end
    local g1, g2 = xs[slots + 2], xs[slots + 3]
    local n1 = tensors_of(vars, g1, hyper)
    local n2 = tensors_of(vars, g2, hyper)
    local out = {}
    for k = 1, slots + 1 do out[k] = core.contiguous(vars[k]) * 1 end
    out[#out + 1] = core.tensor({ n1, n2 }, "int64")
    return out
  end })
end
local function count(n) return core.is_tensor(n) and n:item() or n end
local function sgd(opts)
  return function(vars, g, hyper)
    local list = {}
    for _, v in ipairs(vars) do list[#list + 1] = v end
    list[#list + 1] = g
    list[#list + 1] = hyper.lr
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    return count(core.sgd_update(list, o))
  end
end
optim_case("sgd_update", 0, { lr = 0.1 }, "plain", sgd({}))
optim_case("sgd_update", 1, { lr = 0.1, momentum = 0.9 }, "momentum", sgd({ momentum = 0.9 }))
optim_case("sgd_update", 1, { lr = 0.05, momentum = 0.5, nesterov = true }, "nesterov", sgd({ momentum = 0.5, nesterov = true }))
local function adam(opts)
  return function(vars, g, hyper)
    local list = {}
    for _, v in ipairs(vars) do list[#list + 1] = v end
    list[#list + 1] = g
    list[#list + 1] = hyper.alpha
    list[#list + 1] = hyper.decay
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    return count(core.adam_update(list, o))
  end
end
optim_case("adam_update", 2, { alpha = 0.01, decay = 0, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7 }, "adam", adam({}))
optim_case("adam_update", 2, { alpha = 0.02, decay = 0.001, beta_1 = 0.8, beta_2 = 0.99, epsilon = 1e-3 }, "adamw",
  adam({ beta_1 = 0.8, beta_2 = 0.99, epsilon = 1e-3 }))
optim_case("adam_update", 3, { alpha = 0.01, decay = 0, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7, amsgrad = true }, "amsgrad",
  adam({ amsgrad = true }))
local function rmsprop(opts)
  return function(vars, g, hyper)
    local list = {}
    for _, v in ipairs(vars) do list[#list + 1] = v end
    list[#list + 1] = g
    list[#list + 1] = hyper.lr
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    return count(core.rmsprop_update(list, o))
  end
end
optim_case("rmsprop_update", 1, { lr = 0.01, rho = 0.9, momentum = 0, epsilon = 1e-7 }, "plain", rmsprop({}))
optim_case("rmsprop_update", 2, { lr = 0.01, rho = 0.8, momentum = 0.5, epsilon = 1e-7 }, "momentum",
  rmsprop({ rho = 0.8, momentum = 0.5 }))
optim_case("rmsprop_update", 2, { lr = 0.01, rho = 0.9, momentum = 0, epsilon = 1e-3, centered = true }, "centered",
  rmsprop({ epsilon = 1e-3, centered = true }))
optim_case("rmsprop_update", 3, { lr = 0.01, rho = 0.9, momentum = 0.3, epsilon = 1e-7, centered = true }, "centered momentum",
  rmsprop({ momentum = 0.3, centered = true }))
optim_case("adagrad_update", 1, { lr = 0.1, epsilon = 1e-7 }, "plain", function(vars, g, hyper)
  return count(core.adagrad_update(vars[1], vars[2], g, hyper.lr))
end)
optim_case("adagrad_update", 1, { lr = 0.5, epsilon = 0.1 }, "epsilon", function(vars, g, hyper)
  return count(core.adagrad_update(vars[1], vars[2], g, hyper.lr, { epsilon = 0.1 }))
end)

-- ---- the stdlib around the table (issue 14 item 7) ----------------------------------
-- Not ops of the table, but their arguments reach the same kernels: the user-facing
-- helpers whose conventions the issue names.
add("mg.std", { check = "std", ins = { I({ 2, 3 }, "float64") }, attrs = { axis = 2, correction = 3 },
  label = "correction = N gives inf", run = function(xs) return { mg.std(xs[1], { axis = 2, correction = 3 }) } end })
add("mg.std", { check = "std", ins = { I({ 3, 4 }, "float32", nil, "T") }, attrs = { axis = 1, correction = 1 },
  run = function(xs) return { mg.std(xs[1], { axis = 1, correction = 1 }) } end })
-- issue 17: mg.bincount (a scatter_add composition) against np.bincount
add("mg.bincount", { check = "bincount", ins = { L({ 0, 1, 1, 3, 7, 3 }, "int64") }, attrs = {},
  run = function(xs) return { mg.bincount(xs[1]) } end })
add("mg.bincount", { check = "bincount", ins = { I({ 3, 4 }, "int32", "small", "T"), I({ 4, 3 }, "float64") },
  attrs = { minlength = 9 }, label = "weights, minlength, strided x",
  run = function(xs) return { mg.bincount(mg.abs(xs[1]), { weights = xs[2]:transpose(), minlength = 9 }) } end })
-- issue 17: mg.unique_with_counts (a composition of argsort, top_k_indices, take, cumsum, scatter_add)
add("mg.unique_with_counts", { check = "unique", ins = { I({ 40 }, "int32", "small") },
  run = function(xs) return { mg.unique_with_counts(xs[1]) } end })
add("mg.unique_with_counts", { check = "unique", ins = { I({ 5, 8 }, "float64", "small", "T") }, label = "a strided float row",
  run = function(xs) return { mg.unique_with_counts(mg.reshape(mg.contiguous(xs[1]), { -1 })) } end })
add("mg.arange", { check = "arange", attrs = { start = 1, stop = 6, step = 1, dtype = "float32" },
  label = "mg.arange(1, 6, nil, mg.float32)", run = function() return { mg.arange(1, 6, nil, mg.float32) } end })
add("mg.arange", { check = "arange", attrs = { start = 0, stop = 6, step = 1, dtype = "float32" },
  label = "mg.arange{stop=6, dtype='float32'}", run = function() return { mg.arange { stop = 6, dtype = "float32" } } end })
add("mg.arange", { check = "arange", attrs = { start = 2, stop = 7, step = 2, dtype = "int64" },
  label = "mg.arange(2, 7, 2)", run = function() return { mg.arange(2, 7, 2) } end })
add("mg.tensor", { check = "raises", label = "mg.tensor{a = 1, b = 2} raises",
  run = function() return { mg.tensor { a = 1, b = 2 } } end })
add("mg.tensor", { check = "raises", label = "mg.tensor(2^40, mg.int32) raises",
  run = function() return { mg.tensor(2 ^ 40, mg.int32) } end })


-- ---- issue 17: shape ops (stdlib compositions: tril/triu, roll, diag, diag_part, trace, meshgrid,
-- repeat, sequence_mask, outer, tensordot, einsum) against NumPy, gradients against jax.vjp. Each
-- run returns the outputs, the gradient of sum(y * cos(0, 1, 2, ...)) for each float input, then
-- the same again from the procedure staged in mg.func (check "shape17" in check.py).
local function shape17(fn, label, ins, attrs, f)
  attrs.fn = fn
  local function proc(...)
    local xs = { ... }
    local tape = mg.GradientTape()
    for _, x in ipairs(xs) do if x.dtype == "float32" or x.dtype == "float64" then tape:watch(x) end end
    local ys = { f(...) }
    local l
    for _, y in ipairs(ys) do
      if y.dtype == "float32" or y.dtype == "float64" then
        local w = mg.cos(mg.cast(mg.reshape(mg.arange(0, y:numel()), y.shape), y.dtype))
        local part = mg.sum(y * w)
        l = l and l + part or part
      end
    end
    tape:stop()
    local out, src = {}, {}
    for _, y in ipairs(ys) do out[#out + 1] = y end
    for _, x in ipairs(xs) do if x.dtype == "float32" or x.dtype == "float64" then src[#src + 1] = x end end
    if l and #src > 0 then
      for _, g in ipairs(tape:gradient(l, src, { unconnected_gradients = "zero" })) do out[#out + 1] = g end
    end
    return table.unpack(out)
  end
  add("mg." .. fn, { check = "shape17", ins = ins, attrs = attrs, label = label, run = function(xs)
    local eager = { proc(table.unpack(xs)) }
    local staged = { mg.func(proc)(table.unpack(xs)) }
    local res = {}
    for _, t in ipairs(eager) do res[#res + 1] = t end
    for _, t in ipairs(staged) do res[#res + 1] = t end
    return res
  end })
end
for _, k in ipairs({ -2, 0, 1, 3 }) do
  shape17("tril", "k=" .. k, { I({ 2, 3, 4 }, "float64") }, { k = k }, function(x) return mg.tril(x, { k = k }) end)
  shape17("triu", "k=" .. k, { I({ 4, 3 }, "float32", nil, "T") }, { k = k }, function(x) return mg.triu(x, { k = k }) end)
end
shape17("tril", "int32", { I({ 3, 3 }, "int32") }, { k = 0 }, function(x) return mg.tril(x) end)
shape17("roll", "one axis", { I({ 3, 4 }, "float64") }, { shift = { -5 }, axis = { 2 } },
  function(x) return mg.roll(x, -5, { axis = 2 }) end)
shape17("roll", "two axes, one twice", { I({ 3, 4, 2 }, "float32") }, { shift = { 1, 2, 7 }, axis = { 1, 3, 1 } },
  function(x) return mg.roll(x, { 1, 2, 7 }, { axis = { 1, 3, 1 } }) end)
shape17("roll", "flattened", { I({ 3, 4 }, "int64") }, { shift = 5 }, function(x) return mg.roll(x, 5) end)
for _, k in ipairs({ -2, 0, 1 }) do
  shape17("diag", "k=" .. k, { I({ 2, 3 }, "float64") }, { k = k }, function(x) return mg.diag(x, { k = k }) end)
end
for _, k in ipairs({ -2, 0, 1, 4 }) do
  shape17("diag_part", "k=" .. k, { I({ 2, 3, 4 }, "float64") }, { k = k }, function(x) return mg.diag_part(x, { k = k }) end)
end
shape17("trace", "batched", { I({ 2, 3, 3 }, "float32") }, {}, function(x) return mg.trace(x) end)
shape17("trace", "non-square", { I({ 3, 5 }, "float64", nil, "T") }, {}, function(x) return mg.trace(x) end)
for _, ix in ipairs({ "xy", "ij" }) do
  shape17("meshgrid", ix, { I({ 3 }, "float64"), I({ 2 }, "float64"), I({ 4 }, "float64") }, { indexing = ix },
    function(a, b, c) return mg.meshgrid(a, b, c, { indexing = ix }) end)
end
shape17("repeat", "a number along an axis", { I({ 2, 3 }, "float64") }, { repeats = 2, axis = 2 },
  function(x) return mg["repeat"](x, 2, { axis = 2 }) end)
shape17("repeat", "counts along an axis", { I({ 3, 2 }, "float32") }, { repeats = { 2, 0, 3 }, axis = 1 },
  function(x) return mg["repeat"](x, { 2, 0, 3 }, { axis = 1 }) end)
shape17("repeat", "flattened", { I({ 2, 2 }, "int32") }, { repeats = { 1, 2, 0, 3 } },
  function(x) return mg["repeat"](x, { 1, 2, 0, 3 }) end)
shape17("sequence_mask", "maxlen 5", { L({ 0, 2, 5, 3 }, "int64") }, { maxlen = 5 },
  function(x) return mg.sequence_mask(x, 5) end)
shape17("outer", "2-d b flattened", { I({ 3 }, "float64"), I({ 2, 2 }, "float64") }, {}, function(a, b) return mg.outer(a, b) end)
shape17("tensordot", "axes=2", { I({ 2, 3, 4 }, "float64"), I({ 3, 4, 2 }, "float64") }, { axes = 2 },
  function(a, b) return mg.tensordot(a, b, 2) end)
shape17("tensordot", "listed pairs", { I({ 2, 3, 4 }, "float32"), I({ 4, 3, 2 }, "float32") }, { axes = { { 2, 3 }, { 2, 1 } } },
  function(a, b) return mg.tensordot(a, b, { { 2, 3 }, { 2, 1 } }) end)
for _, e in ipairs({
  { "bhqd,bhkd->bhqk", { { 2, 2, 3, 4 }, { 2, 2, 5, 4 } } },
  { "bhqk,bhkd->bhqd", { { 2, 2, 3, 5 }, { 2, 2, 5, 4 } } },
  { "ij,jk,kl->il", { { 2, 3 }, { 3, 4 }, { 4, 2 } } },
  { "ii->i", { { 3, 3 } } },
  { "iij,jk", { { 2, 2, 3 }, { 3, 2 } } },
  { "ij,ij->", { { 3, 4 }, { 3, 4 } } },
  { "...ij,...jk", { { 2, 1, 2, 3 }, { 3, 3, 2 } } },
  { "...i,i...->i...", { { 2, 3, 4 }, { 4, 2, 3 } } },
  { "a,b,c,d->dcba", { { 2 }, { 3 }, { 2 }, { 2 } } },
  { "abc,cda,db->", { { 2, 3, 4 }, { 4, 2, 2 }, { 2, 3 } } },
  { "Ba,aC", { { 2, 3 }, { 3, 4 } } },
}) do
  local ins = {}
  for k, s in ipairs(e[2]) do ins[k] = I(s, "float64") end
  shape17("einsum", e[1], ins, { eq = e[1] }, function(...) return mg.einsum(e[1], ...) end)
end
shape17("einsum", "float32 attention, strided", { I({ 2, 4, 3 }, "float32", nil, "T"), I({ 2, 5, 4 }, "float32") },
  { eq = "bqd,bkd->bqk", transpose_first = true },
  function(a, b) return mg.einsum("bqd,bkd->bqk", mg.transpose(a, -2, -1), b) end)
shape17("einsum", "int64", { I({ 2, 3 }, "int64"), I({ 3, 2 }, "int64") }, { eq = "ij,jk->ik" },
  function(a, b) return mg.einsum("ij,jk->ik", a, b) end)

-- ---- shape and indexing (issue 17): gather_nd, tensor_scatter_nd_*, segments, argwhere ----
-- Indices count from 1; repeated indices combine in index order (update: the last wins).
for _, dt in ipairs(ALL) do
  add("gather_nd", { ins = { I({ 3, 4 }, dt, "small"), L({ 2, 3, 1, 1, 3, 4 }, "int64", { 3, 2 }) } })
end
for _, dt in ipairs(F) do
  add("gather_nd", { ins = { I({ 3, 2, 2 }, dt), L({ 3, 1, 3 }, "int32", { 3, 1 }) }, label = dt .. " slices, a repeated row" })
  add("gather_nd", { ins = { I({ 4, 3 }, dt, nil, "T"), L({ 1, 2, 4, 3, 2, 2, 4, 1 }, "int64", { 2, 2, 2 }) }, label = dt .. " strided x, 3-d indices" })
  add("gather_nd", { ins = { I({ 2, 3 }, dt), L({}, "int64", { 0, 2 }) }, label = dt .. " no indices" })
  add("gather_nd", { ins = { I({ 2, 3 }, dt), L({ 2, 3 }, "int64", { 2 }) }, label = dt .. " one index: 0-d" })
end
add("gather_nd", { ins = { I({ 2, 3 }, "float32"), L({ 3, 1 }, "int64", { 1, 2 }) }, expect_error = true, label = "index out of range" })
add("gather_nd", { ins = { I({ 2, 3 }, "float32"), L({ 0, 1 }, "int64", { 1, 2 }) }, expect_error = true, label = "index 0 (1-based)" })
add("gather_nd", { ins = { I({ 2, 3 }, "float32"), L({ 1, 1, 1 }, "int64", { 1, 3 }) }, expect_error = true, label = "K > rank" })
for _, op in ipairs({ "tensor_scatter_nd_update", "tensor_scatter_nd_add", "tensor_scatter_nd_sub",
  "tensor_scatter_nd_max", "tensor_scatter_nd_min" }) do
  for _, dt in ipairs(NUM) do
    add(op, { ins = { I({ 3, 4 }, dt, "small"), L({ 2, 3, 1, 1, 3, 4 }, "int64", { 3, 2 }), I({ 3 }, dt, "small") } })
  end
  for _, dt in ipairs(F) do
    add(op, { ins = { I({ 4, 3 }, dt, "distinct", "T"), L({ 4, 2 }, "int32", { 2, 1 }), I({ 2, 3 }, dt, "distinct", "step") },
      label = dt .. " slices, strided" })
    add(op, { ins = { I({ 3, 2 }, dt), L({ 2, 2, 3 }, "int64", { 3, 1 }), I({ 3, 2 }, dt) }, grad = op ~= "tensor_scatter_nd_update"
      and op ~= "tensor_scatter_nd_max" and op ~= "tensor_scatter_nd_min", label = dt .. " repeated index" })
  end
  add(op, { ins = { I({ 2, 3 }, "float32"), L({ 1, 4 }, "int64", { 1, 2 }), I({ 1 }, "float32") }, expect_error = true, label = "index out of range" })
  add(op, { ins = { I({ 2, 3 }, "float32"), L({ 1 }, "int64", { 1, 1 }), I({ 2 }, "float32") }, expect_error = true, label = "updates shape" })
end
for _, kind in ipairs({ "sum", "prod", "max", "min" }) do
  for _, dt in ipairs(NUM) do
    add("segment_" .. kind, { ins = { I({ 5, 2 }, dt, "small"), L({ 1, 1, 2, 4, 4 }, "int64") }, attrs = { num_segments = 5 },
      grad = false, label = dt .. " empty segments 3 and 5" })
    -- (an empty unsorted max/min segment is the dtype's lowest/highest value: the reference sees
    -- float32 inputs as float64, so the float cases have none; indexing_spec checks float32's)
    local empty = kind == "sum" or kind == "prod" or not (dt == "float32" or dt == "float64")
    add("unsorted_segment_" .. kind, { ins = { I({ 5, 2 }, dt, "small"), L({ 3, 1, 3, 1, 2 }, "int64") },
      attrs = { num_segments = empty and 4 or 3 }, grad = false, label = dt .. (empty and " empty segment 4" or "") })
  end
  for _, dt in ipairs(F) do
    add("segment_" .. kind, { ins = { I({ 4, 3 }, dt, "distinct", "T"), L({ 1, 2, 2, 2 }, "int32") }, attrs = { num_segments = 2 },
      label = dt .. " strided data" })
    add("unsorted_segment_" .. kind, { ins = { I({ 2, 3, 2 }, dt, "distinct"), L({ 3, 1, 3, 1, 2, 3 }, "int64", { 2, 3 }) },
      attrs = { num_segments = 3 }, label = dt .. " 2-d ids" })
  end
  add("segment_" .. kind, { ins = { I({ 3 }, "float32"), L({ 2, 1, 2 }, "int64") }, attrs = { num_segments = 2 }, expect_error = true, label = "unsorted ids" })
  add("unsorted_segment_" .. kind, { ins = { I({ 3 }, "float32"), L({ 2, 1, 3 }, "int64") }, attrs = { num_segments = 2 }, expect_error = true, label = "id out of range" })
end
for _, dt in ipairs(ALL) do
  add("argwhere", { ins = { L({ 0, 1, 1, 0, 0, 2 }, dt, { 2, 3 }) }, attrs = { count = 3 } })
end
add("argwhere", { ins = { L({ 0, 0, 0, 0 }, "float32", { 2, 1, 2 }) }, attrs = { count = 0 }, label = "none true" })
add("argwhere", { ins = { L({ 0 / 0, 0, -1 }, "float32") }, attrs = { count = 2 }, label = "NaN is nonzero" })
add("argwhere", { ins = { L({ 0, 1, 1 }, "int64") }, attrs = { count = 1 }, expect_error = true, label = "count differs" })
-- the stdlib around them: boolean_mask (argwhere + take), scatter_nd, segment_mean against NumPy
add("mg.boolean_mask", { check = "boolean_mask", ins = { I({ 3, 2, 2 }, "float32"), L({ 1, 0, 1, 1 }, "bool", { 2, 2 }) },
  attrs = { axis = 2 }, run = function(xs) return { mg.boolean_mask(xs[1], xs[2], { axis = 2 }) } end })
add("mg.boolean_mask", { check = "boolean_mask", ins = { I({ 3, 2 }, "int32", "small", "T"), L({ 0, 1, 1 }, "bool") },
  attrs = { axis = 1 }, label = "x[mask] on a strided x", run = function(xs) return { xs[1][xs[2]] } end })
add("mg.segment_mean", { check = "segment_mean", ins = { I({ 5, 2 }, "float64"), L({ 1, 1, 2, 4, 4 }, "int64") },
  attrs = { num_segments = 4 }, run = function(xs) return { mg.segment_mean(xs[1], xs[2]) } end })

-- ---- convolutions and pooling over 1, 2 and 3 spatial axes; explicit padding, pooling dilation,
-- count_include_pad (issue 17). Explicit padding is the ops' padding = "explicit" with the
-- {before, after} pairs flattened (what mg.conv2d(x, w, {padding = {{1, 1}, {2, 2}}}) passes).
for _, dt in ipairs(F) do
  local convs = {
    { "conv1d", { 2, 7, 3 }, { 3, 3, 4 }, { padding = "same" } },
    { "conv1d", { 1, 9, 2 }, { 2, 2, 3 }, { strides = 2, dilation = 2 } },
    { "conv1d", { 2, 6, 4 }, { 3, 2, 6 }, { groups = 2, padding = "explicit", explicit_padding = { 2, 1 } } },
    { "conv1d", { 1, 5, 2 }, { 2, 2, 3 }, { padding = "explicit", explicit_padding = { 3, 0 }, strides = 2 } },
    { "conv2d", { 1, 5, 6, 2 }, { 3, 2, 2, 3 }, { padding = "explicit", explicit_padding = { 1, 2, 0, 3 } } },
    { "conv2d", { 2, 6, 5, 3 }, { 2, 3, 3, 4 }, { padding = "explicit", explicit_padding = { 3, 0, 1, 4 }, strides = { 2, 1 }, dilation = { 1, 2 } } },
    { "conv2d", { 1, 4, 4, 16 }, { 3, 3, 16, 16 }, { padding = "explicit", explicit_padding = { 4, 1, 3, 3 } } },
    { "conv3d", { 1, 4, 5, 3, 2 }, { 2, 3, 2, 2, 3 }, { padding = "same" } },
    { "conv3d", { 2, 5, 4, 4, 2 }, { 3, 2, 2, 2, 2 }, { strides = { 2, 1, 2 }, dilation = { 1, 2, 1 } } },
    { "conv3d", { 1, 3, 4, 4, 4 }, { 2, 2, 2, 2, 4 }, { groups = 2, padding = "explicit", explicit_padding = { 1, 0, 0, 2, 1, 1 } } },
    { "conv3d", { 1, 2, 3, 3, 3 }, { 1, 1, 1, 3, 2 }, {} },
  }
  for _, c in ipairs(convs) do add(c[1], { ins = { I(c[2], dt), I(c[3], dt) }, attrs = c[4] }) end
  add("conv1d_backprop_input", { ins = { I({ 2, 4, 4 }, dt), I({ 3, 3, 4 }, dt) }, attrs = { input_shape = { 2, 8, 3 }, strides = 2, padding = "same" } })
  add("conv1d_backprop_filter", { ins = { I({ 2, 8, 3 }, dt), I({ 2, 4, 4 }, dt) }, attrs = { filter_shape = { 3, 3, 4 }, strides = 2, padding = "same" } })
  add("conv2d_backprop_input", { ins = { I({ 1, 5, 7, 3 }, dt), I({ 3, 2, 2, 3 }, dt) }, attrs = { input_shape = { 1, 5, 6, 2 }, padding = "explicit", explicit_padding = { 1, 1, 0, 2 } } })
  add("conv2d_backprop_filter", { ins = { I({ 1, 5, 6, 2 }, dt), I({ 1, 5, 7, 3 }, dt) }, attrs = { filter_shape = { 3, 2, 2, 3 }, padding = "explicit", explicit_padding = { 1, 1, 0, 2 } } })
  add("conv3d_backprop_input", { ins = { I({ 1, 2, 3, 2, 3 }, dt), I({ 2, 2, 2, 2, 3 }, dt) }, attrs = { input_shape = { 1, 4, 5, 4, 2 }, strides = 2, padding = "same" } })
  add("conv3d_backprop_filter", { ins = { I({ 1, 4, 5, 4, 2 }, dt), I({ 1, 2, 3, 2, 3 }, dt) }, attrs = { filter_shape = { 2, 2, 2, 2, 3 }, strides = 2, padding = "same" } })
  add("conv1d_transpose", { ins = { I({ 2, 3, 2 }, dt), I({ 3, 4, 2 }, dt) }, attrs = { strides = 2, padding = "same" } })
  add("conv1d_transpose", { ins = { I({ 1, 4, 2 }, dt), I({ 3, 3, 2 }, dt) }, attrs = { strides = 2, padding = "explicit", explicit_padding = { 1, 0 } } })
  add("conv2d_transpose", { ins = { I({ 1, 3, 3, 2 }, dt), I({ 3, 3, 2, 2 }, dt) }, attrs = { strides = 2, padding = "explicit", explicit_padding = { 1, 1, 0, 2 }, output_padding = 1 } })
  add("conv3d_transpose", { ins = { I({ 1, 2, 3, 2, 2 }, dt), I({ 2, 3, 2, 3, 2 }, dt) }, attrs = { strides = { 2, 1, 2 } } })
  add("conv3d_transpose", { ins = { I({ 1, 2, 2, 2, 2 }, dt), I({ 3, 3, 3, 2, 2 }, dt) }, attrs = { strides = 2, padding = "same", dilation = 1 } })
  local pools = {
    { 1, { 2, 7, 3 }, {} }, { 1, { 1, 8, 2 }, { ksize = 3, strides = 2, padding = "same" } },
    { 1, { 1, 9, 2 }, { ksize = 3, strides = 1, dilation = 2 } },
    { 1, { 2, 6, 2 }, { ksize = 3, strides = 2, padding = "explicit", explicit_padding = { 1, 2 } } },
    { 2, { 1, 6, 7, 2 }, { ksize = { 2, 3 }, strides = 1, dilation = { 2, 2 }, padding = "same" } },
    { 2, { 1, 5, 5, 2 }, { ksize = 3, strides = 2, padding = "explicit", explicit_padding = { 1, 1, 2, 0 } } },
    { 3, { 1, 4, 4, 4, 2 }, {} }, { 3, { 2, 5, 4, 3, 1 }, { ksize = { 3, 2, 2 }, strides = { 2, 1, 1 }, padding = "same" } },
    { 3, { 1, 5, 5, 5, 1 }, { ksize = 2, strides = 1, dilation = { 2, 1, 3 } } },
    { 3, { 1, 3, 4, 4, 2 }, { ksize = 2, strides = 2, padding = "explicit", explicit_padding = { 1, 0, 1, 1, 0, 1 } } },
  }
  for _, p in ipairs(pools) do
    add("max_pool" .. p[1] .. "d", { ins = { I(p[2], dt, "distinct") }, attrs = p[3] })
    add("avg_pool" .. p[1] .. "d", { ins = { I(p[2], dt) }, attrs = p[3] })
    if p[3].padding then
      local q = {}
      for k, v in pairs(p[3]) do q[k] = v end
      q.count_include_pad = true
      add("avg_pool" .. p[1] .. "d", { ins = { I(p[2], dt) }, attrs = q, label = "count_include_pad" })
    end
  end
  add("max_pool1d_grad", { ins = { I({ 1, 8, 2 }, dt, "distinct"), I({ 1, 4, 2 }, dt) }, attrs = { ksize = 3, strides = 2, padding = "same" } })
  add("max_pool2d_grad", { ins = { I({ 1, 5, 5, 2 }, dt, "distinct"), I({ 1, 3, 2, 2 }, dt) }, attrs = { ksize = 3, strides = 2, padding = "explicit", explicit_padding = { 1, 1, 0, 0 } } })
  add("max_pool2d_grad", { ins = { I({ 1, 6, 6, 1 }, dt, "distinct"), I({ 1, 4, 4, 1 }, dt) }, attrs = { ksize = 2, strides = 1, dilation = 2 } })
  add("max_pool3d_grad", { ins = { I({ 1, 4, 4, 4, 2 }, dt, "distinct"), I({ 1, 2, 2, 2, 2 }, dt) } })
  add("max_pool3d_grad_grad", { ins = { I({ 1, 4, 4, 4, 2 }, dt, "distinct"), I({ 1, 4, 4, 4, 2 }, dt) }, attrs = { ksize = 3, strides = 2, padding = "same" } })
  add("max_pool1d_grad_grad", { ins = { I({ 1, 9, 2 }, dt, "distinct"), I({ 1, 9, 2 }, dt) }, attrs = { ksize = 3, strides = 1, dilation = 2 } })
  add("avg_pool1d_grad", { ins = { I({ 1, 4, 2 }, dt) }, attrs = { input_shape = { 1, 8, 2 }, ksize = 3, strides = 2, padding = "same", count_include_pad = true } })
  add("avg_pool2d_grad", { ins = { I({ 1, 4, 4, 1 }, dt) }, attrs = { input_shape = { 1, 6, 6, 1 }, ksize = 2, strides = 1, dilation = 2 } })
  add("avg_pool3d_grad", { ins = { I({ 1, 2, 3, 2, 1 }, dt) }, attrs = { input_shape = { 1, 3, 4, 4, 1 }, ksize = 2, strides = 2, padding = "explicit", explicit_padding = { 1, 0, 1, 1, 0, 1 } } })
end

-- ---- dtypes (issue 17): float16/bfloat16/int8/int16 inputs against JAX -------------------
-- The inputs are made in float32 and cast here; check.py's "half" casts the same values to
-- jnp.bfloat16 / jnp.float16 (int8/int16) and runs the JAX op. attrs.ulps: how many units in
-- the last place of the half type the result may differ by (0: bit for bit; JAX on CPU also
-- computes a half op in float32 and rounds once, but its exp/tanh are not ours).
local unpack_ = table.unpack or unpack
local HALF_CASES = {
  { "add", 2, function(a, b) return a + b end, 0 },
  { "mul", 2, function(a, b) return a * b end, 0 },
  { "div", 2, function(a, b) return a / b end, 0 },
  { "maximum", 2, function(a, b) return mg.maximum(a, b) end, 0 },
  { "exp", 1, function(a) return mg.exp(a) end, 1 },
  { "tanh", 1, function(a) return mg.tanh(a) end, 1 },
  { "sum", 1, function(a) return mg.sum(a, { axis = 2 }) end, 1 },
  { "mean", 1, function(a) return mg.mean(a, { axis = 1 }) end, 1 },
  { "max", 1, function(a) return mg.max(a, { axis = 2 }) end, 0 },
  { "softmax", 1, function(a) return mg.softmax(a) end, 1 },
  { "matmul", 2, function(a, b) return mg.matmul(a, mg.transpose(b)) end, 1 },
}
for _, dt in ipairs({ "bfloat16", "float16" }) do
  for _, hc in ipairs(HALF_CASES) do
    local name, n, fn, ulps = hc[1], hc[2], hc[3], hc[4]
    local ins = {}
    for k = 1, n do ins[k] = I({ 5, 7 }, "float32", name == "div" and k == 2 and "pos" or nil, k == 1 and "T" or nil) end
    add("half:" .. name, { check = "half", ins = ins, attrs = { dtype = dt, op = name, ulps = ulps },
      label = dt .. " " .. name, run = function(xs)
        local hs = {}
        for k, x in ipairs(xs) do hs[k] = mg.cast(x, dt) end
        return { fn(unpack_(hs, 1, n)) }
      end })
  end
end
add("half:add", { check = "half", ins = { I({ 4, 6 }, "int32", "small"), I({ 4, 6 }, "int32", "small") },
  attrs = { dtype = "int8", op = "add", ulps = 0 }, label = "int8 add (wraps)", run = function(xs)
    return { mg.cast(mg.mul(xs[1], 37), "int8") + mg.cast(mg.mul(xs[2], 53), "int8") }
  end })
add("bitcast", { check = "bitcast", ins = { I({ 3, 4 }, "float32") }, attrs = { dtype = "int16" },
  label = "float32 -> int16 (ndarray.view)", run = function(xs) return { mg.bitcast(xs[1], "int16") } end })
add("bitcast", { check = "bitcast", ins = { I({ 3, 4 }, "float32", nil, "T") }, attrs = { dtype = "bfloat16" },
  label = "strided float32 -> bfloat16", run = function(xs) return { mg.bitcast(xs[1], "bfloat16") } end })

-- ---- attention, random draws, resizing (issue 17) ------------------------------------------
-- dot_product_attention's packed result (output and row logsumexp) against
-- jax.nn.dot_product_attention, gradients through jax.vjp; the gradient op on the forward's own
-- packed result (its run procedure makes it), against the vjp of the reference.
for _, dt in ipairs(F) do
  add("dot_product_attention", { ins = { I({ 2, 5, 2, 3 }, dt), I({ 2, 7, 2, 3 }, dt), I({ 2, 7, 2, 4 }, dt) } })
  add("dot_product_attention", { ins = { I({ 1, 6, 2, 4 }, dt), I({ 1, 6, 2, 4 }, dt), I({ 1, 6, 2, 4 }, dt) },
    attrs = { causal = true, scale = 0.7 } })
  add("dot_product_attention", { ins = { I({ 1, 4, 4, 3 }, dt), I({ 1, 6, 2, 3 }, dt), I({ 1, 6, 2, 3 }, dt) },
    label = "grouped-query: 4 query heads, 2 key/value heads" })
  add("dot_product_attention", { ins = { I({ 2, 5, 2, 3 }, dt), I({ 2, 7, 2, 3 }, dt), I({ 2, 7, 2, 3 }, dt),
    I({ 1, 5, 7 }, "bool") }, attrs = { causal = true }, label = "bool mask (1,5,7) and causal" })
  add("dot_product_attention", { ins = { I({ 1, 3, 1, 2 }, dt), I({ 1, 3, 1, 2 }, dt), I({ 1, 3, 1, 2 }, dt),
    L({ 1, 0, 1, 0, 0, 0, 1, 1, 1 }, "bool", { 3, 3 }) }, label = "a row with every key masked" })
  for part = 0, 3 do
    add("dot_product_attention_grad", { ins = { I({ 1, 5, 2, 3 }, dt), I({ 1, 5, 2, 3 }, dt), I({ 1, 5, 2, 3 }, dt),
      I({ 1, 5, 2, 4 }, dt), I({ 1, 5, 2, 4 }, dt) }, attrs = { part = part, causal = part == 1 }, grad = false,
      label = "part " .. part .. " (the packed input made by the forward op)",
      run = function(xs)
        local p = core.dot_product_attention({ xs[1], xs[2], xs[3] }, { causal = part == 1 })
        return { core.dot_product_attention_grad({ xs[1], xs[2], xs[3], p, xs[5] }, { part = part, causal = part == 1 }) }
      end })
  end
end
add("dot_product_attention", { ins = { I({ 2, 5, 3 }), I({ 2, 5, 3 }), I({ 2, 5, 3 }) }, expect_error = true, label = "3-d inputs" })
add("dot_product_attention", { ins = { I({ 1, 5, 2, 3 }), I({ 1, 5, 2, 4 }), I({ 1, 5, 2, 4 }) }, expect_error = true,
  label = "head sizes of query and key differ" })
add("dot_product_attention", { ins = { I({ 1, 5, 3, 3 }), I({ 1, 5, 2, 3 }), I({ 1, 5, 2, 3 }) }, expect_error = true,
  label = "2 key heads do not divide 3 query heads" })
add("dot_product_attention", { ins = { I({ 1, 5, 2, 3 }), I({ 1, 5, 2, 3 }), I({ 1, 5, 2, 3 }), I({ 5, 5 }) },
  expect_error = true, label = "a float mask" })
add("dot_product_attention", { ins = { I({ 1, 5, 2, 3 }), I({ 1, 6, 2, 3 }), I({ 1, 6, 2, 3 }), I({ 5, 5 }, "bool") },
  expect_error = true, label = "mask (5,5) for 6 keys" })
add("dot_product_attention", { ins = { I({ 1, 5, 2, 3 }, "int32"), I({ 1, 5, 2, 3 }, "int32"), I({ 1, 5, 2, 3 }, "int32") },
  expect_error = true, label = "integer inputs" })

-- issue 17's random ops (check.py's check_random17): a seed repeats and another differs; gamma
-- against scipy's cdf (Kolmogorov-Smirnov), poisson counts, categorical classes and the
-- positions of permutations against their probabilities (chi-square).
local function random17(op, attrs, label)
  add(op, { check = "random17", label = label, attrs = attrs, run = function()
    local a = {}
    for k, v in pairs(attrs) do a[k] = v end
    a.shape, a.seed = { NR }, 77
    local x, again = core[op](a), core[op](a)
    a.seed = 78
    return { x, again, core[op](a) }
  end })
end
random17("random_gamma", { alpha = 2.5, beta = 2, dtype = "float64" })
random17("random_gamma", { alpha = 0.3, beta = 1, dtype = "float32" }, "alpha < 1")
random17("random_gamma", { alpha = 40, beta = 0.5, dtype = "float32" })
random17("random_poisson", { lam = 3, dtype = "int64" })
random17("random_poisson", { lam = 0.2, dtype = "float64" })
random17("random_poisson", { lam = 45.5, dtype = "float32" }, "lam >= 10 (PTRS)")
random17("random_poisson", { lam = 0, dtype = "int32" })
add("random_categorical", { check = "random17", attrs = { num_samples = NR, dtype = "int64" },
  ins = { L({ 0, 1, 2, -1, 0.5, 0.5, 0.5, 0.5, -1 / 0, 3, -1 / 0, 0 }, "float32", { 3, 4 }) },
  run = function(xs) return { core.random_categorical(xs[1], NR, "int64", 5) } end })
add("random_categorical", { check = "random17", attrs = { num_samples = NR, dtype = "int32" },
  ins = { I({ 2, 7 }, "float64") }, label = "float64 logits, int32 samples",
  run = function(xs)
    mg.random.seed(3)
    return { core.random_categorical(xs[1], NR, "int32") }
  end })
add("random_permutation", { check = "random17", attrs = {}, label = "3000 permutations of 6",
  run = function()
    mg.random.seed(11)
    local x, rows = mg.zeros({ 6, 2 }), {}
    for i = 1, 3000 do rows[i] = core.random_permutation(x) end
    return { mg.stack(rows) }
  end })
for _, bad in ipairs({ { alpha = 0 }, { alpha = -1 }, { alpha = 1, beta = 0 }, { alpha = 0 / 0 } }) do
  bad.shape = { 3 }
  add("random_gamma", { attrs = bad, expect_error = true })
end
add("random_poisson", { attrs = { shape = { 3 }, lam = -1 }, expect_error = true })
add("random_poisson", { attrs = { shape = { 3 }, lam = 1, dtype = "bool" }, expect_error = true })
add("random_categorical", { ins = { I({ 4 }) }, attrs = { num_samples = 2 }, expect_error = true, label = "1-d logits (the op)" })
add("random_categorical", { ins = { L({ 0, 0 / 0 }, "float32", { 1, 2 }) }, attrs = { num_samples = 2 }, expect_error = true,
  label = "a NaN logit" })
add("random_permutation", { ins = { I({}) }, expect_error = true, label = "0-d" })

-- mg.image.resize (matmul and take compositions) against jax.image.resize, value and gradient
-- (check.py's check_resize; the second input is the output gradient).
for _, r in ipairs({
  { { 2, 5, 7, 3 }, { 9, 4 }, "bilinear", false }, { { 2, 5, 7, 3 }, { 3, 12 }, "bilinear", true },
  { { 2, 6, 6, 2 }, { 2, 3 }, "bilinear", true }, { { 2, 6, 6, 2 }, { 2, 3 }, "bilinear", false },
  { { 1, 5, 7, 2 }, { 11, 3 }, "bicubic", false }, { { 1, 9, 8, 2 }, { 4, 3 }, "bicubic", true },
  { { 5, 7, 3 }, { 8, 2 }, "nearest", false }, { { 2, 5, 4, 1 }, { 5, 9 }, "bicubic", true },
}) do
  local shape, size, method, aa = r[1], r[2], r[3], r[4]
  for _, dt in ipairs(F) do
    local oshape = #shape == 4 and { shape[1], size[1], size[2], shape[4] } or { size[1], size[2], shape[3] }
    add("mg.image.resize", { check = "check_resize", ins = { I(shape, dt), I(oshape, dt) },
      attrs = { size = size, method = method, antialias = aa },
      run = function(xs)
        local tape = mg.GradientTape()
        tape:watch(xs[1])
        local y = mg.image.resize(xs[1], size, { method = method, antialias = aa })
        local l = mg.sum(y * xs[2])
        tape:stop()
        return { y, tape:gradient(l, xs[1]) }
      end })
  end
end

-- ---- linear algebra (issue 17: LAPACK kernels) against NumPy's/JAX's linalg; gradients by jax.vjp.
-- Fixed, well-conditioned matrices (random ones would make float32 tolerances meaningless); the
-- vector factors of qr/eigh are compared as they are (LAPACK's sign conventions on both sides:
-- geqrf/orgqr, syevd), svd through its singular values (compute_uv = false).
do
  local A3 = { 4, 1, 0.5, 1, 3, -1, 0.5, -1, 5 }                         -- symmetric positive-definite
  local B3 = { 2, -1, 0.5, 1, 3, 1, -0.5, 2, 4 }                          -- not symmetric
  local batch = { 4, 1, 1, 3, 2, -1, 0.5, 5 }                            -- (2, 2, 2)
  local rhs = { 1, -2, 0.5, 3, 1, 2 }                                     -- (3, 2)
  local tall = { 1, 2, 3, -1, 0.5, 4, 2, 2, -3, 1, 0, 1 }                 -- (4, 3)
  for _, dt in ipairs({ "float32", "float64" }) do
    add("linalg_inv", { ins = { L(B3, dt, { 3, 3 }) } })
    add("linalg_inv", { ins = { L(batch, dt, { 2, 2, 2 }) } })
    add("linalg_solve", { ins = { L(B3, dt, { 3, 3 }), L(rhs, dt, { 3, 2 }) } })
    add("linalg_solve", { ins = { L(B3, dt, { 3, 3 }), L(rhs, dt, { 3, 2 }) }, attrs = { adjoint = true } })
    add("linalg_triangular_solve", { ins = { L(B3, dt, { 3, 3 }), L(rhs, dt, { 3, 2 }) } })
    add("linalg_triangular_solve", { ins = { L(B3, dt, { 3, 3 }), L(rhs, dt, { 3, 2 }) }, attrs = { lower = false, adjoint = true } })
    add("linalg_det", { ins = { L(B3, dt, { 3, 3 }) } })
    add("linalg_det", { ins = { L(batch, dt, { 2, 2, 2 }) } })
    add("linalg_slogdet", { ins = { L(B3, dt, { 3, 3 }) } })
    add("linalg_cholesky", { ins = { L(A3, dt, { 3, 3 }) } })
    add("linalg_qr_q", { ins = { L(tall, dt, { 4, 3 }) } })
    add("linalg_qr_q", { ins = { L(B3, dt, { 3, 3 }) }, attrs = { mode = "complete" } })
    add("linalg_svd", { ins = { L(tall, dt, { 4, 3 }) }, attrs = { compute_uv = false } })
    add("linalg_eigh", { ins = { L(A3, dt, { 3, 3 }) } })
    add("linalg_band_part", { ins = { I({ 2, 4, 5 }, dt) }, attrs = { num_lower = 1, num_upper = 0 } })
    add("linalg_band_part", { ins = { I({ 4, 3 }, dt) }, attrs = { num_lower = -1, num_upper = 1 } })
  end
end

return M
