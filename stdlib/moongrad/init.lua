-- moongrad: the `mg` namespace.
--
-- Every op of the engine's op table (moongrad.core) is exported here as
-- mg.<name> and as a tensor method (the backward-pass internals as mg.raw.<name>),
-- in one loop over core.ops(); this file
-- adds what Lua users expect around them: creation helpers with dtype
-- inference, inclusive 1-based slicing, stack/split, help(), configuration.
-- Portable Lua (5.4 and LuaJIT): no integer division, bitwise ops or attributes.
local core = require("moongrad.core")
local options = require("moongrad.options")   -- (it also tells the binding which chunks are moongrad's own)

local M = {}
M.core = core
M.version = core.version

M.float32, M.float64 = "float32", "float64"
M.int32, M.int64, M.uint8, M.bool = "int32", "int64", "uint8", "bool"
M.float16, M.bfloat16, M.int8, M.int16 = "float16", "bfloat16", "int8", "int16"  -- storage dtypes (doc/dtypes.md)
M.dtypes = { "float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool" }

local methods = core.methods
local docs = {}        -- function -> help text (mg.document)
local op_of = {}       -- function -> its op table row (help formats its text)
M._docs, M._ops = docs, op_of   -- read by moongrad.help
local math_type = math.type or function(x)  -- LuaJIT has no math.type
  if type(x) ~= "number" then return nil end    -- the FFI binding's rule (doc/luajit.md): no fraction, in int64's range
  return (x == math.floor(x) and x >= -2^63 and x < 2^63) and "integer" or "float"
end

-- mg.raw: the backward-pass and optimizer internals of the op table (moongrad/raw.lua says
-- which), reachable as mg.raw.NAME but neither mg.NAME nor tensor methods.
local is_raw = require("moongrad.raw").is_raw
M.raw = {}
for _, op in ipairs(core.ops()) do
  local f = core[op.name]
  if is_raw(op.name) then
    M.raw[op.name] = f
  else
    M[op.name] = f
    if not op.create then methods[op.name] = f end
  end
  op_of[f] = op
end

-- Registers help text for a function (stdlib modules use it too).
function M.document(f, text) docs[f] = text; return f end

-- help(x): the help text of a function, class, module, method or tensor (a string, or nil),
-- read from the op table and the stdlib's doc comments when asked (moongrad/help.lua).
function M.help(x) return require("moongrad.help").text(x) end

-- ---- creation ---------------------------------------------------------------

local function shape_of(shape, fname)
  if type(shape) == "number" or core.is_unknown_size(shape) then return { shape } end
  if type(shape) ~= "table" then
    error(fname .. ": shape must be a table of sizes, got " .. type(shape), 0)
  end
  return shape
end

-- th's torch.zeros(3, 3) and torch.randn(100, 100) give the shape as separate numbers. Here a
-- number is a 1-d shape and the next argument is the dtype (zeros) or a parameter (normal's mean),
-- so mg.random.normal(100, 100) would silently be 100 values of mean 100 and mg.zeros(3, 3) would
-- complain about a dtype: a bare-number shape followed by a number is refused, naming the table
-- form. `at` is the argument that may not be a number after such a shape (2 for most, 3 for full,
-- whose second argument is the value).
local function check_shape_args(fname, at, shape, ...)
  if type(shape) ~= "number" then return end
  local nxt = select(at - 1, ...)
  if type(nxt) ~= "number" then return end
  local nums = { shape }
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) ~= "number" then break end
    nums[#nums + 1] = v
  end
  local sizes = table.concat(nums, ", ")
  local rest = table.concat(nums, ", ", 2)
  local good, hint
  if at == 3 then   -- full(2, 3, 7): the shape {2, 3} and the value 7
    good = string.format("mg.%s({%s}, %s)", fname, table.concat(nums, ", ", 1, #nums - 1), tostring(nums[#nums]))
    hint = ""
  else
    good = string.format("mg.%s{%s}", fname, sizes)
    hint = at == 2 and fname ~= "zeros" and fname ~= "ones"
      and string.format(" (or, for a 1-d shape of %s with %s as the parameters after it, mg.%s({%s}, %s))",
        tostring(shape), rest, fname, tostring(shape), rest) or ""
  end
  options.raise(string.format("%s: the shape is a table: %s, not mg.%s(%s)%s", fname, good, fname, sizes, hint))
end

local function value_dtype(v)
  if type(v) == "boolean" then return "bool" end
  return math_type(v) == "integer" and "int64" or "float32"
end

M.tensor = core.tensor
M.frombytes = core.frombytes
M.is_tensor = core.is_tensor

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

-- Wraps a Lua-side helper so that its errors point at the user's line and
-- name the helper (zeros), not the op it is built on (full).
local function user_facing(name, op, f)
  return function(...)
    local r = pack(pcall(f, ...))
    if r[1] then return unpack(r, 2, r.n) end
    local msg = tostring(r[2]):gsub("^[^:]*:%d+: ", ""):gsub("^" .. op .. ":", name .. ":")
    error(msg, 2)
  end
end

local full_impl = user_facing("full", "full", function(shape, value, dtype)
  if type(value) == "boolean" then value = value and 1 or 0; dtype = dtype or "bool" end
  return core.full(shape_of(shape, "full"), value, dtype or value_dtype(value))
end)
local zeros_impl = user_facing("zeros", "full", function(shape, dtype) return core.full(shape_of(shape, "zeros"), 0, dtype or "float32") end)
local ones_impl = user_facing("ones", "full", function(shape, dtype) return core.full(shape_of(shape, "ones"), 1, dtype or "float32") end)
function M.full(shape, ...) check_shape_args("full", 3, shape, ...) return full_impl(shape, ...) end
function M.zeros(shape, ...) check_shape_args("zeros", 2, shape, ...) return zeros_impl(shape, ...) end
function M.ones(shape, ...) check_shape_args("ones", 2, shape, ...) return ones_impl(shape, ...) end
M.zeros_like = user_facing("zeros_like", "full", function(t, dtype) return core.full(t.shape, 0, dtype or t.dtype) end)
M.ones_like = user_facing("ones_like", "full", function(t, dtype) return core.full(t.shape, 1, dtype or t.dtype) end)
-- mg.shape(x): x's sizes as an int64 tensor, computed when the graph runs for a
-- size unknown while tracing (x.shape[i] is no number then): the count of a
-- vector of that many ones.
function M.shape(x)
  if not core.is_tensor(x) then error("shape: argument #1 must be a tensor, got " .. type(x), 2) end
  local parts, unknown = {}, false
  for d, n in ipairs(x.shape) do
    if core.is_unknown_size(n) then
      unknown = true
      parts[d] = core.reshape(core.sum(core.full({ n }, 1, "int64")), { 1 })
    else
      parts[d] = n
    end
  end
  if not unknown then return core.tensor(parts, "int64") end
  for d, n in ipairs(parts) do
    if not core.is_tensor(n) then parts[d] = core.full({ 1 }, n, "int64") end
  end
  return core.concat(parts)
end
M.full_like = user_facing("full_like", "full", function(t, value, dtype) return core.full(t.shape, value, dtype or t.dtype) end)

-- arange(stop) | arange(start, stop [, step] [, dtype]) | arange{start=, stop=, step= (or delta=), dtype=}:
-- NumPy's and TF's forms (a trailing options table may also complete positional numbers; step may
-- be nil: arange(1, 6, nil, "float32")). Only stop given as start (tf.range(start=5)) is a stop.
-- int64 when start, stop and step are all integers and no dtype is given, else float32.
local arange_spec = { start = "number", stop = "number", step = "number", delta = "number", dtype = "string" }
M.arange = user_facing("arange", "arange", function(...)
  local n, args = select("#", ...), { ... }
  local opts = {}
  if n > 0 and type(args[n]) == "table" and not core.is_tensor(args[n]) then
    opts = options.check("arange", args[n], arange_spec)
    n = n - 1
  end
  local dtype = opts.dtype
  if n > 0 and type(args[n]) == "string" then
    if dtype then options.raise("arange: dtype given twice (as an argument and as option 'dtype')") end
    dtype, n = args[n], n - 1
  end
  if n > 3 then options.raise(string.format("arange: too many arguments (%d numbers; start, stop, step)", n)) end
  for i = 1, n do
    if args[i] ~= nil and type(args[i]) ~= "number" then
      options.raise(string.format("arange: argument #%d must be a number, got %s", i, options.show(args[i])))
    end
  end
  for i = n + 1, 3 do args[i] = nil end   -- the dtype and options are read
  local pos = {}
  if n == 1 and opts.stop == nil then pos.stop = args[1]   -- arange(stop); arange(1, {stop = 4}) starts at 1
  else pos.start, pos.stop, pos.step = args[1], args[2], args[3] end
  if opts.step ~= nil and opts.delta ~= nil then options.raise("arange: give step or delta, not both") end
  local named = { start = opts.start, stop = opts.stop, step = opts.step ~= nil and opts.step or opts.delta }
  for _, k in ipairs({ "start", "stop", "step" }) do
    if pos[k] ~= nil and named[k] ~= nil then options.raise("arange: " .. k .. " given twice (as an argument and as an option)") end
    if named[k] == nil then named[k] = pos[k] end
  end
  local start, stop, step = named.start, named.stop, named.step
  if stop == nil then start, stop = 0, start end   -- arange{start = 5} is TF's range(5)
  if stop == nil then options.raise("arange: stop is required") end
  start, step = start or 0, step or 1
  if not dtype then
    local int = math_type(start) == "integer" and math_type(stop) == "integer" and math_type(step) == "integer"
    dtype = int and "int64" or "float32"
  end
  return core.arange(start, stop, step, dtype)
end)

M.linspace = user_facing("linspace", "linspace", function(start, stop, num, dtype)
  return core.linspace(start, stop, num, dtype)
end)
M.eye = user_facing("eye", "eye", function(n, m, dtype)
  if type(m) == "string" then m, dtype = nil, m end
  return core.eye(n, m or -1, dtype)
end)

-- ---- random -----------------------------------------------------------------
M.random = { seed = core.seed }
-- The random creation ops, with the shape check above; mg.normal and the other top-level names
-- of these ops are the same checked functions.
for name, op in pairs({ uniform = "uniform", normal = "normal", truncated_normal = "truncated_normal",
  bernoulli = "bernoulli", integers = "randint" }) do
  -- one function for both homes (mg.normal is mg.random.normal), named by its home in errors,
  -- with the op's help
  local f, fname = core[op], "random." .. name
  local checked = function(shape, ...)
    check_shape_args(fname, 2, shape, ...)
    return f(shape, ...)
  end
  M.random[name], M[op] = checked, checked
  docs[checked], op_of[checked] = docs[f], op_of[f]
end
-- get_state() -> {seed=, counter=}; set_state(s): the global generator's
-- state, saved with checkpoints so a resumed run draws the same numbers.
function M.random.get_state()
  local seed, counter = core.rng_state()
  return { seed = seed, counter = counter }
end
function M.random.set_state(s)
  if type(s) ~= "table" or type(s.seed) ~= "number" or type(s.counter) ~= "number" then
    error("random.set_state: expected {seed=, counter=} (from random.get_state), got " .. type(s), 2)
  end
  core.set_rng_state(s.seed, s.counter)
end

-- ---- movement helpers written with the table's ops ---------------------------

-- Positions of a slice must name elements: 1..n or -n..-1. Python's t[0:5] written as {{0, 5}},
-- or {11} on 10 rows, would otherwise clamp to an empty or shorter tensor without a word (the
-- core op keeps Python's clamping for the library's own use). The one empty range allowed is
-- {k, k - 1} (split's empty parts, k up to n + 1).
local AXIS_WORDS = { "rows", "columns" }
local function check_range(axis, n, r, given)
  local first, last = r[1], r[2]
  if first ~= nil and last ~= nil and first >= 1 and last == first - 1 and first <= n + 1 then return end
  local bad
  for _, p in ipairs({ first or 1, last or 1 }) do
    if type(p) ~= "number" or p ~= math.floor(p) then
      options.raise(string.format("slice: range %d has a position that is not an integer (%s)", axis, tostring(p)))
    end
    if p == 0 or p > n or p < -n then bad = p end
  end
  if bad == nil then return end
  local shown = type(given) == "number" and tostring(given)
    or "{" .. table.concat({ tostring(first or ""), tostring(last or ""), r[3] and tostring(r[3]) or nil }, ", ") .. "}"
  local words = AXIS_WORDS[axis] or ("positions of axis " .. axis)
  options.raise(string.format("slice: range %d %s has position %d, outside axis %d of size %d: slices count from 1: "
    .. "{1, 5} are %s 1 to 5 (both ends included), valid positions are 1..%d or -%d..-1 (-1 is the last)",
    axis, shown, bad, axis, n, words, n, n))
end

-- t:slice{{first, last, step}, {}, n}: inclusive 1-based ranges like
-- string.sub; negative positions count from the end; {} is the whole axis;
-- a bare number n keeps just that position (the axis stays, of size 1).
function M.slice(t, spec)
  local shape = t.shape
  if type(spec) ~= "table" then error("slice: expected a table of ranges, got " .. type(spec), 2) end
  if #spec > #shape then
    error(string.format("slice: %d ranges given for a %d-d tensor", #spec, #shape), 2)
  end
  local begins, ends, steps = {}, {}, {}
  for axis = 1, #shape do
    local n, r = shape[axis], spec[axis]
    if r == nil then r = {} elseif type(r) == "number" then r = { r, r } end
    if type(r) ~= "table" then
      error(string.format("slice: range %d must be a table {first, last, step} or a number, got %s",
        axis, type(r)), 2)
    end
    local step = r[3] or 1
    if step == 0 then error(string.format("slice: step of axis %d is 0", axis), 2) end
    if type(n) == "number" then check_range(axis, n, r, spec[axis]) end
    local function pos(i) if i < 0 then return n + i + 1 end return i end
    local first = r[1] and pos(r[1]) or (step > 0 and 1 or n)
    local last = r[2] and pos(r[2]) or (step > 0 and n or 1)
    local b, e = first - 1, last
    if step < 0 then
      e = last - 2
      if e < 0 then e = -(n + 1) end   -- before the first element
    end
    begins[axis], ends[axis], steps[axis] = b, e, step
  end
  return core.slice(t, begins, ends, steps)
end
methods.slice = M.slice

function M.stack(tensors, axis)
  axis = axis or 1
  local parts = {}
  for i, t in ipairs(tensors) do
    if not core.is_tensor(t) then t = core.tensor(t) end
    parts[i] = core.unsqueeze(t, axis)
  end
  return core.concat(parts, axis)
end

-- split(t, n | {sizes}, axis): n equal parts, or parts of the given sizes.
function M.split(t, sizes, axis)
  axis = axis or 1
  local shape = t.shape
  local ax = axis < 0 and #shape + axis + 1 or axis
  local n = shape[ax]
  if not n then error(string.format("split: axis %d is out of range for a %d-d tensor", axis, #shape), 2) end
  if type(sizes) == "number" then
    if sizes <= 0 or n % sizes ~= 0 then
      error(string.format("split: axis %d of size %d cannot be split into %s equal parts", axis, n, tostring(sizes)), 2)
    end
    local part, list = n / sizes, {}
    for i = 1, sizes do list[i] = part end
    sizes = list
  end
  local total = 0
  for _, s in ipairs(sizes) do total = total + s end
  if total ~= n then
    error(string.format("split: sizes add up to %d but axis %d has size %d", total, axis, n), 2)
  end
  local out, at = {}, 1
  for i, s in ipairs(sizes) do
    local spec = {}
    for d = 1, #shape do spec[d] = {} end
    spec[ax] = { at, at + s - 1 }
    if s == 0 then spec[ax] = { at, at - 1 } end
    out[i] = M.slice(t, spec)
    at = at + s
  end
  return out
end
methods.split = M.split

-- std: sqrt(variance), its gradient 0 where the variance is 0 (a constant input), as PyTorch's
-- std_backward masks it: sqrt's gradient there is inf and 0 * inf is NaN. Both where branches are
-- differentiated, so the square root is taken of 1 where it is not used.
function M.std(t, opts)
  local v = core.variance(t, opts)
  local nonzero = core.not_equal(v, 0)
  return core.where(nonzero, core.sqrt(core.where(nonzero, v, 1)), 0)
end
M.var = core.variance

-- ---- compositions of elementwise ops (issue 17) ----------------------------------------------
-- Each is a few elementwise kernels: a fused op would save little, and these stay differentiable
-- (lerp) and staged through the ops they are made of.
local function tensor_or_number(fname, what, v)
  if type(v) ~= "number" and type(v) ~= "boolean" and not core.is_tensor(v) then
    options.raise(string.format("%s: %s must be a tensor or a number, got %s", fname, what, type(v)))
  end
end

-- lerp(a, b, w): a + w (b - a), elementwise with broadcasting (torch.lerp); differentiable in all three.
function M.lerp(a, b, w)
  tensor_or_number("lerp", "a", a); tensor_or_number("lerp", "b", b); tensor_or_number("lerp", "w", w)
  return core.add(a, core.mul(w, core.sub(b, a)))
end

local isclose_spec = { rtol = { "number", min = 0 }, atol = { "number", min = 0 }, equal_nan = "boolean" }
-- The float tensor NumPy compares in: floats as they are, integers and bools as float64.
local function as_float(v)
  if core.is_tensor(v) then
    if v.dtype ~= "float32" and v.dtype ~= "float64" then return core.cast(v, "float64") end
    return v
  end
  return core.tensor(v, "float64")
end

-- isclose(a, b, {rtol=1e-5, atol=1e-8, equal_nan=false}): NumPy's rule, |a - b| <= atol + rtol |b|
-- (not symmetric: b is the reference), exact equality for infinities, NaN never close unless equal_nan.
function M.isclose(a, b, opts)
  tensor_or_number("isclose", "a", a); tensor_or_number("isclose", "b", b)
  options.check("isclose", opts, isclose_spec)
  opts = opts or {}
  local rtol, atol = opts.rtol or 1e-5, opts.atol or 1e-8
  local fa, fb = as_float(a), as_float(b)
  local within = core.less_equal(core.abs(core.sub(fa, fb)), core.add(core.mul(core.abs(fb), rtol), atol))
  local close = core.logical_or(core.equal(fa, fb), core.logical_and(within, core.isfinite(fb)))
  if opts.equal_nan then close = core.logical_or(close, core.logical_and(core.isnan(fa), core.isnan(fb))) end
  return close
end

-- allclose(a, b, opts): whether isclose holds everywhere, as a Lua boolean (NumPy's allclose; in a
-- staged function use mg.all(mg.isclose(a, b, opts)), a tensor).
function M.allclose(a, b, opts)
  tensor_or_number("allclose", "a", a); tensor_or_number("allclose", "b", b)
  options.check("allclose", opts, isclose_spec)
  local close = M.isclose(a, b, opts)
  if core.is_symbolic(close) then
    options.raise("allclose: returns a Lua boolean, which a staged function cannot have while tracing; use mg.all(mg.isclose(a, b, opts))")
  end
  return core.all(close):item()
end

-- unique / unique_with_counts (TF's order: values as they first occur): a stable argsort,
-- the starts of runs of equal sorted values (top_k_indices of the 0/1 "new value" marks
-- gives their positions in order), then the runs reordered by their first position. The
-- number of values is read from the data, so these run eagerly only.
local function unique_impl(fname, x, with_counts)
  if not core.is_tensor(x) then options.raise(fname .. ": x must be a tensor, got " .. type(x)) end
  if #x.shape ~= 1 then
    options.raise(("%s: x must be 1-d (as TF's unique), got shape (%s)"):format(fname, table.concat(x.shape, ",")))
  end
  local ok, n = pcall(function() return core.full({ 1 }, x:numel(), "int64"):item() end)
  if not ok then
    options.raise(fname .. ": the number of unique values depends on the data, which a staged function cannot "
      .. "read while tracing; call it eagerly")
  end
  if n == 0 then
    local e = core.full({ 0 }, 0, "int64")
    if with_counts then return x, e, e end
    return x, e
  end
  local order = core.argsort(x)                                    -- stable: runs keep input order
  local s = core.take(x, order, 1)
  local new = core.full({ 1 }, 1, "int64")
  if n > 1 then
    local differ = core.cast(core.not_equal(M.slice(s, { { 2, n } }), M.slice(s, { { 1, n - 1 } })), "int64")
    new = core.concat({ new, differ }, 1)
  end
  local ok2, nu = pcall(function() return core.sum(new):item() end)
  if not ok2 then
    options.raise(fname .. ": the number of unique values depends on the data, which a staged function cannot "
      .. "read while tracing; call it eagerly")
  end
  local starts = core.top_k_indices(new, nu)                      -- run starts, in increasing order
  local rank = core.argsort(core.take(order, starts, 1))           -- runs by first occurrence
  local y = core.take(core.take(s, starts, 1), rank, 1)
  local inv = core.argsort(rank)                                   -- run -> its output position
  local idx_sorted = core.take(inv, core.cumsum(new), 1)
  local idx = core.scatter_add(core.full({ n }, 0, "int64"), order, idx_sorted, 1)
  if not with_counts then return y, idx end
  local ends = core.concat({ M.slice(starts, { { 2, nu } }), core.full({ 1 }, n + 1, "int64") }, 1)
  return y, idx, core.take(ends - starts, rank, 1)
end
function M.unique(x) return unique_impl("unique", x, false) end
function M.unique_with_counts(x) return unique_impl("unique_with_counts", x, true) end
M.document(M.unique, "mg.unique(x) -> values, indices\n"
  .. "  The distinct values of the 1-d tensor x in the order they first occur (TF's tf.unique), and for\n"
  .. "  each element of x the (1-based) position of its value in them: values[indices] is x. NaN never\n"
  .. "  equals itself, so each NaN is its own value. Eager only (the output size depends on the data).\n"
  .. "  Example:\n"
  .. "    local v, i = mg.unique(mg.tensor{4, 1, 4, 2})\n"
  .. "    print(v, i)   -- tensor([4, 1, 2], dtype=int64)  tensor([1, 2, 1, 3], dtype=int64)")
M.document(M.unique_with_counts, "mg.unique_with_counts(x) -> values, indices, counts\n"
  .. "  mg.unique's values and indices, and how many times each value occurs (int64).\n"
  .. "  Example:\n"
  .. "    local v, i, c = mg.unique_with_counts(mg.tensor{4, 1, 4})\n"
  .. "    print(c)   -- tensor([2, 1], dtype=int64)")

-- bincount: a scatter_add of ones (or the weights) into zeros of the output size, so the
-- weights' gradient is a gather; no op of its own. The size comes from the data
-- (max(x) + 1, at least minlength, at most maxlength) eagerly; a staged function cannot
-- read data while tracing and must give length=, as jax.numpy.bincount under jit.
-- Values at or past the size (maxlength, length) are dropped, as TF's maxlength does.
local bincount_spec = {
  weights = "tensor", minlength = { "integer", min = 0 }, maxlength = { "integer", min = 0 },
  length = { "integer", min = 0 }, dtype = "string|table",
}
function M.bincount(x, opts)
  if opts ~= nil then options.check("bincount", opts, bincount_spec) end
  opts = opts or {}
  if not core.is_tensor(x) then options.raise("bincount: x must be an integer tensor, got " .. type(x)) end
  local d = x.dtype
  if d ~= "int32" and d ~= "int64" and d ~= "uint8" and d ~= "int8" and d ~= "int16" then
    options.raise("bincount: x must be an integer tensor (int8, int16, int32, int64 or uint8), got " .. d)
  end
  local w = opts.weights
  if w ~= nil then
    local same = #w.shape == #x.shape
    for d = 1, #x.shape do same = same and w.shape[d] == x.shape[d] end
    if not same then
      options.raise(("bincount: weights (%s) must have the shape of x (%s)"):format(
        table.concat(w.shape, ","), table.concat(x.shape, ",")))
    end
  end
  local flat = core.reshape(x, { -1 })
  -- the extremes of x when they can be read (eager); nil while tracing
  local ok, lo, hi = pcall(function()
    if flat:numel() == 0 then return 0, -1 end
    return core.min(flat):item(), core.max(flat):item()
  end)
  if ok and lo < 0 then options.raise("bincount: x must be non-negative, got the value " .. lo) end
  local size = opts.length
  if size == nil then
    if not ok then
      options.raise("bincount: the output size depends on the values of x, which a staged function cannot read "
        .. "while tracing; give length= (the number of bins)")
    end
    size = hi + 1
    if opts.minlength and size < opts.minlength then size = opts.minlength end
    if opts.maxlength and size > opts.maxlength then size = opts.maxlength end
  end
  local dtype = opts.dtype or (w and w.dtype) or "int64"
  local inside = core.less(flat, size)
  local idx = core.where(inside, flat, 0) + 1          -- 1-based positions for scatter_add
  local src = w and core.reshape(core.cast(w, dtype), { -1 }) or core.full(flat.shape, 1, dtype)
  src = core.where(inside, src, 0)
  return core.scatter_add(core.full({ size }, 0, dtype), idx, src, 1)
end
M.document(M.bincount, "mg.bincount(x, {weights=, minlength=, maxlength=, length=, dtype=}) -> tensor\n"
  .. "  Counts of each value of the non-negative integer tensor x: element i (1-based) counts the\n"
  .. "  value i - 1 (or sums its weights), over max(x) + 1 bins, at least minlength, at most maxlength\n"
  .. "  (values past it are dropped, as TF). A staged function must give length= (the number of bins).\n"
  .. "  int64 counts, or the weights' dtype; the weights' gradient flows back.\n"
  .. "  Example:\n"
  .. "    print(mg.bincount(mg.tensor{0, 1, 1, 3}))   -- tensor([1, 2, 0, 1], dtype=int64)")

-- top_k: the indices from the op top_k_indices and the values gathered at them, so that the
-- values' gradient goes back to the chosen elements through gather's (one op table row
-- holds one output; the gather reads only k elements per row).
-- Its errors name top_k, at the user's line, not the op it is built on (user_facing).
local top_k_spec = { k = { "integer", min = 0 }, sorted = "boolean" }
M.top_k = user_facing("top_k", "top_k_indices", function(x, k, opts)
  if type(k) == "table" and opts == nil then opts, k = k, nil end
  if opts ~= nil then options.check("top_k", opts, top_k_spec) end
  if k == nil then k = opts and opts.k or 1 end
  local idx = core.top_k_indices(x, k)
  return core.gather(x, idx, -1), idx
end)
M.document(M.top_k, "mg.top_k(x, k=1, {sorted=true}) -> values, indices\n"
  .. "  The k largest elements along the last axis, largest first, and their indices (1-based, int64;\n"
  .. "  the lower index first among ties, as TF). The values' gradient goes back to the chosen\n"
  .. "  elements. sorted=false is accepted (TF's option); the result is sorted either way.\n"
  .. "  Example:\n"
  .. "    local v, i = mg.top_k(mg.tensor{1.0, 5.0, 3.0}, 2)\n"
  .. "    print(v, i)   -- tensor([5., 3.], dtype=float32)  tensor([2, 3], dtype=int64)")
M.broadcast_to = core.expand
M.take_along_axis = core.gather
-- issue 17 shape ops (tril/triu, roll, diag, diag_part, trace, meshgrid, repeat, sequence_mask, outer, tensordot, einsum)
for k, f in pairs(require("moongrad.shape_ops")) do M[k] = f end; M.einsum, M.tensordot = require("moongrad.einsum").einsum, require("moongrad.einsum").tensordot
methods.std, methods.var, methods.broadcast_to = M.std, M.var, M.broadcast_to
function methods.clone(t) return core.tensor(t) end
function methods.astype(t, dtype) return core.cast(t, dtype) end
-- The fields the binding serves before it looks in __fields (shape, dtype, ndim), listed there
-- too so that the REPL's completion (t.<Tab>), which reads __fields' keys, offers them.
methods.__fields = methods.__fields or {}
for _, k in ipairs({ "shape", "dtype", "ndim" }) do
  methods.__fields[k] = function(t) return t[k] end
end
methods.eq, methods.ne = core.equal, core.not_equal
methods.lt, methods.le = core.less, core.less_equal
methods.gt, methods.ge = core.greater, core.greater_equal

-- ---- configuration -------------------------------------------------------------
M.config = {}
-- mg.config.info(): the engine's configuration as a table (BLIS kernel family, threads, FTZ...).
function M.config.info()
  local info = {}
  for k, v in string.gmatch(core.config_info(), "([%w_]+)=([^\n]*)") do
    info[k] = tonumber(v) or v
  end
  return info
end
M.config.set_num_threads = core.set_num_threads
-- mg.clock(): monotonic wall-clock seconds, for timing (os.clock counts CPU time of all threads).
M.clock = core.clock
M.config.get_num_threads = core.get_num_threads
-- mg.config.max_threads(): the most set_num_threads accepts (the processors this process may use).
M.config.max_threads = core.max_threads

-- ---- files: tensors in safetensors, atomic writes (doc/saving.md) ---------------------
local safetensors = require("moongrad.safetensors")
M.save, M.load = safetensors.save, safetensors.load
M.io = M.io or {}
M.io.write_file_atomic, M.io.read_file = safetensors.write_file_atomic, safetensors.read_file
-- mg.io.exists/isdir/mkdir/listdir/remove/remove_tree/rename: paths and directories (stdlib/moongrad/fs.lua).
for name, f in pairs(require("moongrad.fs")) do M.io[name] = f end
-- mg.io.read_csv(path, opts): a table of column tensors (stdlib/moongrad/data/csv.lua, loaded on use).
function M.io.read_csv(...) return require("moongrad.data.csv").read_csv(...) end
M.document(M.save, "mg.save(path, {name = tensor, ...} [, metadata])\n  Writes the tensors (and a table of string metadata) to path, atomically, in the safetensors format.")
M.document(M.load, "mg.load(path) -> tensors, metadata, names\n  Reads a safetensors file: tensors by name, its metadata table, the names in file order.")

-- ---- autodiff -------------------------------------------------------------------
local autodiff = require("moongrad.autodiff")
for _, name in ipairs({ "GradientTape", "Variable", "custom_gradient", "grad", "value_and_grad",
  "hessian", "jvp" }) do
  M[name] = autodiff[name]
end

-- ---- staging ----------------------------------------------------------------------
-- mg.TensorArray{dtype=, size=, dynamic_size=, element_shape=}: tensors a staged loop accumulates.
M.TensorArray = require("moongrad.tensor_array").new
require("moongrad.conv").install(M)   -- conv1d/2d/3d, pooling with {before, after} padding, depthwise/separable (issue 17)
local func = require("moongrad.func")
for _, name in ipairs({ "func", "TensorSpec", "cond", "while_loop", "lua_function", "print",
  "executing_eagerly" }) do
  M[name] = func[name]
end
-- TF1's explicit graph and session (graph_mode.lua), on the same tracing and executor
local graph_mode = require("moongrad.graph_mode")
for _, name in ipairs({ "Graph", "Session", "placeholder", "constant", "gradients", "global_variables_initializer",
  "group" }) do
  M[name] = graph_mode[name]
end

-- mg.export / mg.load_graph: graph files a C host runs without Lua (doc/deploy.md)
do
  local gf = require("moongrad.graph_file")
  M.export, M.load_graph, M.load_graph_string = gf.export, gf.load_graph, gf.load_graph_string
end
-- AutoGraph (autograph/): mg.func converts each function's control flow over tensors
-- by default. Loaded on first use (mg.func, mg.range, mg.autograph), to keep start-up
-- fast. The module is "autograph" (installed, embedded) or, with the repository root on
-- package.path as $ROOT/?.lua, "autograph/init.lua": a last searcher maps one to the other.
do
  local searchers = package.searchers or package.loaders
  searchers[#searchers + 1] = function(name)
    if name ~= "autograph" then return nil end
    if not package.searchpath("autograph.init", package.path) then return "\n\tno file 'autograph/init.lua'" end
    return function() return require("autograph.init") end
  end
end
local function autograph() return M.autograph end   -- through the lazy loader below
func.convert = function(fn, opts) return autograph().convert(fn, opts) end
function M.range(...) return autograph().range(...) end
-- mg.config.run_functions_eagerly(true): staged functions run their Lua body eagerly (debugging).
function M.config.run_functions_eagerly(flag) func.run_functions_eagerly = flag and true or false end
-- mg.config.staged_backward(false): a tape around a staged call records the graph's ops one
-- by one instead of running the forward/backward graph pair built once per concrete function
-- (true, the default; doc/staging.md, Gradients).
function M.config.staged_backward(flag) func.staged_backward = flag and true or false end

M.document(M.zeros, "mg.zeros(shape, dtype)\n  A tensor of zeros (float32 unless dtype is given).")
M.document(M.ones, "mg.ones(shape, dtype)\n  A tensor of ones (float32 unless dtype is given).")
M.document(M.full, "mg.full(shape, value, dtype)\n  A tensor filled with value (int64 for integer values, float32 for floats).")
M.document(M.arange, "mg.arange([start,] stop [, step] [, dtype]) or mg.arange{start=, stop=, step=|delta=, dtype=}\n  start, start+step, ... below stop; int64 when all arguments are integers and no dtype is given, else float32.")
M.document(M.shape, "mg.shape(x)\n  x's shape as a 1-d int64 tensor; inside a staged function also right for a size unknown while tracing (a -1 of the input signature), which x.shape gives as an unknown-size object.")
M.document(M.tensor, "mg.tensor(data, dtype)\n  A tensor from nested Lua tables (integers give int64, floats float32, booleans bool), a number, or a copy of a tensor.")
M.document(M.slice, "t:slice{{first, last, step}, {}, ...}\n  A view of inclusive 1-based ranges per axis (negative positions count from the end).")
M.document(M.stack, "mg.stack({t1, t2, ...}, axis)\n  Tensors of one shape joined along a new axis (default 1).")
M.document(M.split, "mg.split(t, n | {sizes}, axis)\n  A list of views: n equal parts or parts of the given sizes along axis (default 1).")

-- Help of the functions made in C or by closures here (moongrad/help.lua reads the rest from doc comments).
M.document(M.eye, "mg.eye(n, m, dtype)\n  An n-by-m (m defaults to n) float32 (or dtype) matrix with ones on the diagonal.\n  Example: mg.eye(2)   -- tensor([[1., 0.], [0., 1.]], dtype=float32)")
M.document(M.linspace, "mg.linspace(start, stop, num, dtype)\n  num evenly spaced values from start to stop, both included (float32 unless dtype is given).")
M.document(M.zeros_like, "mg.zeros_like(t, dtype)\n  Zeros of t's shape (and dtype unless dtype is given).")
M.document(M.ones_like, "mg.ones_like(t, dtype)\n  Ones of t's shape (and dtype unless dtype is given).")
M.document(M.full_like, "mg.full_like(t, value, dtype)\n  A tensor of t's shape filled with value (t's dtype unless dtype is given).")
M.document(M.is_tensor, "mg.is_tensor(x) -> boolean\n  Whether x is a tensor (a Variable is one too).")
M.document(M.frombytes, "mg.frombytes(bytes, shape, dtype)\n  A tensor of the given shape and dtype over a copy of a string of raw little-endian bytes (t:tobytes() is the inverse).")
M.document(M.clock, "mg.clock() -> seconds\n  Monotonic wall-clock time, for timing (os.clock counts the CPU time of all threads).")
M.document(M.config.set_num_threads, "mg.config.set_num_threads(n)\n  The threads the CPU kernels use (default: MG_NUM_THREADS, else the processors available; at most mg.config.max_threads()).")
M.document(M.config.get_num_threads, "mg.config.get_num_threads() -> n\n  The threads the CPU kernels use.")
M.document(M.config.max_threads, "mg.config.max_threads() -> n\n  The most set_num_threads accepts (the processors this process may use).")
M.document(M.random.seed, "mg.random.seed(n)\n  Seeds the global generator: the random ops and initializers then draw the same numbers every run.\n  Example: mg.random.seed(42); print(mg.random.uniform({2}))")
M.document(M.random.get_state, "mg.random.get_state() -> {seed=, counter=}\n  The global generator's state (saved with checkpoints).")
M.document(M.random.set_state, "mg.random.set_state(state)\n  Restores a state from mg.random.get_state(): the draws that follow repeat.")
M.document(M.random.integers, "mg.random.integers(shape, low, high, dtype, seed)\n  Uniform integers from low to high, both included (the op randint).")
M.document(M.lerp, "mg.lerp(a, b, w)\n  a + w * (b - a) elementwise, with broadcasting (torch.lerp); differentiable in a, b and w.\n  Example: mg.lerp(mg.tensor{0, 10}, mg.tensor{10, 20}, 0.25)   -- tensor([ 2.5, 12.5], dtype=float32)")
M.document(M.isclose, "mg.isclose(a, b, {rtol=1e-5, atol=1e-8, equal_nan=false})\n  A bool tensor: |a - b| <= atol + rtol * |b| elementwise (NumPy's rule and defaults; b is the reference), infinities close only to themselves, NaN only with equal_nan. Integers compare as float64.")
M.document(M.allclose, "mg.allclose(a, b, {rtol=1e-5, atol=1e-8, equal_nan=false}) -> boolean\n  Whether mg.isclose(a, b, opts) holds for every element, as a Lua boolean (staged: mg.all(mg.isclose(...))).")
M.document(M.range, "mg.range(start, stop, step)\n  In a staged function, `for i in mg.range(n)` becomes one graph while loop (AutoGraph); eagerly it iterates like a numeric for.")

-- The tensor methods that are not ops (help names them t:NAME).
local method_docs = {
  numel = "t:numel() -> n\n  The number of elements (the product of the shape).",
  totable = "t:totable() -> table\n  The values as nested Lua tables (a number for a 0-d tensor).",
  item = "t:item() -> number\n  The value of a one-element tensor as a Lua number (or boolean).",
  free = "t:free()\n  Releases the tensor's buffer now rather than at garbage collection; using t afterwards is an error.",
  is_freed = "t:is_freed() -> boolean\n  Whether t:free() released the buffer.",
  strides = "t:strides() -> {strides}\n  The stride of each axis, in elements.",
  is_contiguous = "t:is_contiguous() -> boolean\n  Whether the elements are dense in row-major order (not a strided view).",
  tobytes = "t:tobytes() -> string\n  The raw little-endian bytes of the elements (mg.frombytes reads them back).",
  shares_storage = "t:shares_storage(u) -> boolean\n  Whether t and u are views of one buffer.",
  clone = "t:clone() -> tensor\n  A copy of t with its own buffer.",
  astype = "t:astype(dtype) -> tensor\n  t cast to dtype (mg.cast).\n  Example: mg.tensor{1.7}:astype(\"int32\")   -- tensor([1], dtype=int32)",
  std = "t:std{axis=, keepdims=false, correction=0} -> tensor\n  The standard deviation over the axes (mg.std).",
  assign = "v:assign(x) -> v\n  The Variable's values replaced by x's (recorded as a graph effect when staged).",
  assign_add = "v:assign_add(x) -> v\n  v = v + x in place (a Variable only).",
  assign_sub = "v:assign_sub(x) -> v\n  v = v - x in place (a Variable only).",
  read = "v:read() -> tensor\n  The Variable's current value as a plain tensor (a read node when tracing).",
  is_variable = "t:is_variable() -> boolean\n  Whether t is a Variable (mg.Variable).",
}
for name, text in pairs(method_docs) do
  if methods[name] and not docs[methods[name]] and not op_of[methods[name]] then M.document(methods[name], text) end
end

local tape_docs = {
  start = "tape:start()\n  Records again after tape:stop() (a tape records from its creation).",
  stop = "tape:stop()\n  Stops recording: ops after it are not on the tape (the end of a <close> scope does it too).",
  recording = "tape:recording() -> boolean\n  Whether the tape is recording now.",
}
for name, text in pairs(tape_docs) do
  local f = core.tape_methods[name]
  if f and not docs[f] then M.document(f, text) end
end

-- Boolean masks, tensor indices (x[mask], x[idx]), where(cond), segments (stdlib/moongrad/indexing.lua).
do local ix = require("moongrad.indexing"); for k, f in pairs(ix) do if k ~= "docs" then M[k] = M.document(f, ix.docs[k]) end end end
require("moongrad.attn_ops").install(M)   -- issue 17: attention, image.resize, more random draws
-- mg.linalg and the norms and clipping functions (moongrad/linalg.lua).
for k, v in pairs(require("moongrad.linalg")(M)) do M[k] = v end

-- ---- libraries loaded on first use (mg.nn, mg.optim, ...) -------------------------
-- Lazily, so that `require "moongrad"` (and the REPL's start) stays fast.
local lazy = { nn = "moongrad.nn", optim = "moongrad.optim", losses = "moongrad.losses",
  metrics = "moongrad.metrics", callbacks = "moongrad.callbacks", datasets = "moongrad.datasets" }
lazy.autograph = "autograph"
lazy.data = "moongrad.data"   -- input pipelines (stdlib/moongrad/data)
lazy.train = "moongrad.train"
-- (__members lists their names for the REPL's completion, which loads nothing: mg.n<Tab> offers
-- mg.nn; its values are `true`, so completion goes no deeper than the name.)
local lazy_names = {}
for k in pairs(lazy) do lazy_names[k] = true end
setmetatable(M, { __members = lazy_names, __index = function(t, k)
  local name = lazy[k]
  if not name then return nil end
  local mod = require(name)
  rawset(t, k, mod)
  return mod
end })

return M
