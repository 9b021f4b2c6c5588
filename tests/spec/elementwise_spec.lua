-- elementwise_spec.lua — the elementwise ops: values for every op and dtype,
-- type promotion (weak Lua scalars included), broadcasting, non-contiguous
-- inputs, NaN/inf and integer edge cases, and error messages.
--
-- Expected values are computed by hand or by Lua itself. The tests of the
-- // operator, whose oracle is Lua 5.4's own // and %, are in
-- elementwise_lua54_spec.lua (LuaJIT has no //).

local mg = require "moongrad"

local nan, inf = 0 / 0, math.huge
local imin, imax = math.mininteger, math.maxinteger

-- Walks actual (a tensor or a Lua value) against expected; floats within a
-- relative tolerance `tol` (default 1e-6), NaN equal to NaN, everything else
-- exactly (so integer results must have math.type "integer"). Under LuaJIT
-- (one number type) a number with no fraction may be either kind: there the
-- tensor's dtype says which it is, and an integral expected value matches both.
local function check(actual, expected, tol, path, kind)
  tol = tol or 1e-6
  path = path or "value"
  if mg.is_tensor(actual) then
    kind = (actual.dtype == "float32" or actual.dtype == "float64") and "float" or "integer"
    actual = actual:totable()
  end
  local want = math.type(expected)
  if jit and want == "integer" and kind then want = kind end
  local got = math.type(actual)
  if jit and got and kind then got = kind end
  if type(expected) == "table" then
    assert(type(actual) == "table", path .. ": expected a table, got " .. tostring(actual))
    assert(#actual == #expected, ("%s: length %d, expected %d"):format(path, #actual, #expected))
    for i = 1, #expected do check(actual[i], expected[i], tol, path .. "[" .. i .. "]", kind) end
  elseif type(expected) == "number" and expected ~= expected then
    assert(actual ~= actual, ("%s: expected nan, got %s"):format(path, tostring(actual)))
  elseif want == "float" then
    assert(got == "float" or (jit and not kind and got), ("%s: expected a float, got %s"):format(path, tostring(actual)))
    local err = math.abs(actual - expected)
    assert(actual == expected or (tol > 0 and expected == expected and math.abs(expected) < inf
        and err <= tol * math.max(1, math.abs(expected))),
      ("%s: expected %.9g, got %.9g"):format(path, expected, actual))
  else
    assert(actual == expected and got == want,
      ("%s: expected %s (%s), got %s (%s)"):format(path, tostring(expected), want or type(expected),
        tostring(actual), got or type(actual)))
  end
end

local function dt(t) return t.dtype end

local function is_negzero(x) return x == 0 and 1 / x < 0 end

-- The error message of fn() (which must fail).
local function err_of(fn)
  local ok, e = pcall(fn)
  assert(not ok, "expected an error")
  return tostring(e)
end

local float_types = { mg.float32, mg.float64 }
local int_types = { mg.int32, mg.int64, mg.uint8 }

describe("unary float ops", function()
  it("compute exp, log, sqrt, sin, cos, tanh, erf ... in float32 and float64", function()
    for _, d in ipairs(float_types) do
      local x = mg.tensor({ 0.5, 1, 2, 4 }, d)
      local tol = d == mg.float32 and 2e-7 or 1e-15
      local function each(f) local r = {} for i, v in ipairs({ 0.5, 1, 2, 4 }) do r[i] = f(v) end return r end
      check(mg.exp(x), each(math.exp), tol)
      check(mg.log(x), each(math.log), tol)
      check(mg.sqrt(x), each(math.sqrt), tol)
      check(mg.rsqrt(x), each(function(v) return 1 / math.sqrt(v) end), tol)
      check(mg.sin(x), each(math.sin), tol)
      check(mg.cos(x), each(math.cos), tol)
      check(mg.tanh(x), each(function(v) return (math.exp(2 * v) - 1) / (math.exp(2 * v) + 1) end), 4 * tol)
      check(mg.sigmoid(x), each(function(v) return 1 / (1 + math.exp(-v)) end), tol)
      check(mg.softplus(x), each(function(v) return math.log(1 + math.exp(v)) end), tol)
      check(mg.expm1(x), each(function(v) return math.exp(v) - 1 end), 4 * tol)
      check(mg.log1p(x), each(function(v) return math.log(1 + v) end), tol)
      check(mg.erf(mg.tensor({ 0, 0.5, 1, -2 }, d)), { 0.0, 0.5204998778130465, 0.8427007929497149, -0.9953222650189527 }, tol)
      for _, op in ipairs({ "exp", "log", "sqrt", "sin", "tanh", "sigmoid", "erf" }) do
        assert.equal(d, dt(mg[op](x)))
      end
    end
  end)

  it("give float32 for int and bool inputs", function()
    for _, d in ipairs({ mg.int32, mg.int64, mg.uint8, mg.bool }) do
      local x = mg.cast(mg.tensor({ 0, 1 }), d)
      local y = mg.exp(x)
      assert.equal("float32", y.dtype)
      check(y, { 1.0, math.exp(1) }, 2e-7)
      assert.equal("float32", mg.sqrt(x).dtype)
      assert.equal("float32", mg.sigmoid(x).dtype)
    end
    assert.equal("float32", mg.exp(1).dtype)  -- a lone Lua number is a float32 scalar
    check(mg.exp(0), 1.0)
  end)

  it("float32 exp is accurate over its whole range", function()
    local xs = {}
    for i = 0, 2000 do xs[#xs + 1] = -87 + i * (175.5 / 2000) end
    local got = mg.exp(mg.tensor(xs, mg.float32)):totable()
    local xs32 = mg.tensor(xs, mg.float32):totable()  -- the float32 inputs
    for i, v in ipairs(xs32) do
      local want = math.exp(v)
      assert(math.abs(got[i] - want) <= 3e-7 * want, ("exp(%.9g) = %.9g, want %.9g"):format(v, got[i], want))
    end
  end)

  it("handle infinities, NaN and the edges of the domains", function()
    for _, d in ipairs(float_types) do
      check(mg.exp(mg.tensor({ inf, -inf, nan, 100, -200 }, d)),
        { inf, 0.0, nan, d == mg.float32 and inf or math.exp(100), d == mg.float32 and 0.0 or math.exp(-200) }, 1e-12)
      check(mg.log(mg.tensor({ 0, -1, inf, nan }, d)), { -inf, nan, inf, nan })
      check(mg.sqrt(mg.tensor({ -1, 0, inf }, d)), { nan, 0.0, inf })
      check(mg.rsqrt(mg.tensor({ 0, inf }, d)), { inf, 0.0 })
      check(mg.tanh(mg.tensor({ inf, -inf, 50, -50 }, d)), { 1.0, -1.0, 1.0, -1.0 })
      check(mg.erf(mg.tensor({ inf, -inf }, d)), { 1.0, -1.0 })
      check(mg.sin(mg.tensor({ inf, nan }, d)), { nan, nan })
    end
  end)

  it("sigmoid and softplus are stable for large |x|", function()
    local s = mg.sigmoid(mg.tensor({ -1000, -100, 0, 100, 1000, nan }, mg.float64)):totable()
    check(s, { 0.0, 3.720075976020836e-44, 0.5, 1.0, 1.0, nan }, 1e-12)
    local s32 = mg.sigmoid(mg.tensor({ -1000, -30, 30, 1000, inf, -inf }, mg.float32)):totable()
    check(s32, { 0.0, 9.357622968840175e-14, 1.0, 1.0, 1.0, 0.0 }, 1e-6)
    check(mg.softplus(mg.tensor({ -1000, -100, 0, 100, 1000, inf, -inf }, mg.float64)),
      { 0.0, 3.720075976020836e-44, math.log(2), 100.0, 1000.0, inf, 0.0 }, 1e-12)
    check(mg.softplus(mg.tensor({ 1000, -1000, 20 }, mg.float32)), { 1000.0, 0.0, 20.000000002 }, 1e-6)
  end)

  it("expm1 and log1p keep their accuracy near 0", function()
    check(mg.expm1(mg.tensor({ 1e-10, -1e-12 }, mg.float64)), { 1.00000000005e-10, -9.999999999995e-13 }, 1e-12)
    check(mg.log1p(mg.tensor({ 1e-10, -1 }, mg.float64)), { 9.9999999995e-11, -inf }, 1e-12)
    check(mg.expm1(mg.tensor({ 1e-6 }, mg.float32)), { 1.0000005e-6 }, 1e-6)
  end)
end)

describe("unary numeric ops", function()
  it("neg, abs, sign, square, relu on floats", function()
    for _, d in ipairs(float_types) do
      local x = mg.tensor({ -2.5, 0, 3, nan, -inf }, d)
      check(mg.neg(x), { 2.5, 0.0, -3.0, nan, inf })
      check(-x, { 2.5, 0.0, -3.0, nan, inf })
      check(mg.abs(x), { 2.5, 0.0, 3.0, nan, inf })
      check(mg.sign(x), { -1.0, 0.0, 1.0, nan, -1.0 })
      check(mg.square(x), { 6.25, 0.0, 9.0, nan, inf })
      check(mg.relu(x), { 0.0, 0.0, 3.0, nan, 0.0 })
      assert.equal(d, mg.relu(x).dtype)
    end
  end)

  it("neg, abs, sign, square, relu on integers keep the dtype and wrap", function()
    local x = mg.tensor({ -3, 0, 5 })
    check(mg.neg(x), { 3, 0, -5 })
    check(mg.abs(x), { 3, 0, 5 })
    check(mg.sign(x), { -1, 0, 1 })
    check(mg.square(x), { 9, 0, 25 })
    check(mg.relu(x), { 0, 0, 5 })
    assert.equal("int64", mg.square(x).dtype)
    check(mg.neg(mg.tensor({ imin })), { imin })          -- wraps, as in C and PyTorch
    check(mg.abs(mg.tensor({ imin })), { imin })
    check(mg.square(mg.tensor({ math.tointeger(2 ^ 32) })), { 0 }) -- 2^64 wraps to 0
    local i32 = mg.tensor({ -2147483648, -7, 46341 }, mg.int32)
    check(mg.abs(i32), { -2147483648, 7, 46341 })
    check(mg.square(i32), { 0, 49, -2147479015 })           -- 46341^2 wraps in int32
    assert.equal("int32", mg.abs(i32).dtype)
    local u8 = mg.tensor({ 0, 1, 200 }, mg.uint8)
    check(mg.neg(u8), { 0, 255, 56 })
    check(mg.abs(u8), { 0, 1, 200 })
    check(mg.sign(u8), { 0, 1, 1 })
    check(mg.square(u8), { 0, 1, 64 })                      -- 40000 mod 256
    check(mg.relu(u8), { 0, 1, 200 })
    assert.equal("uint8", mg.square(u8).dtype)
  end)

  it("abs, sign, square, relu, floor, ceil, round of a bool are the identity", function()
    local b = mg.tensor({ true, false })
    for _, op in ipairs({ "abs", "sign", "square", "relu", "floor", "ceil", "round" }) do
      local r = mg[op](b)
      assert.equal("bool", r.dtype)
      check(r, { true, false })
    end
  end)

  it("neg of a bool is an error pointing at logical_not", function()
    local msg = err_of(function() return -mg.tensor({ true }) end)
    assert.matches("neg: .*bool.*logical_not", msg)
  end)

  it("floor, ceil, round on floats (halves to even) and signed zeros", function()
    for _, d in ipairs(float_types) do
      local x = mg.tensor({ -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.7, -2.7, -0.3, inf, nan }, d)
      check(mg.round(x), { -2.0, -2.0, -0.0, 0.0, 2.0, 2.0, 3.0, -3.0, -0.0, inf, nan })
      check(mg.floor(x), { -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 2.0, -3.0, -1.0, inf, nan })
      check(mg.ceil(x), { -2.0, -1.0, -0.0, 1.0, 2.0, 3.0, 3.0, -2.0, -0.0, inf, nan })
      local c = mg.ceil(mg.tensor({ -0.5, -0.0 }, d)):totable()
      assert.is_true(is_negzero(c[1]) and is_negzero(c[2]))
      local f = mg.floor(mg.tensor({ -0.0, 0.3 }, d)):totable()
      assert.is_true(is_negzero(f[1]) and not is_negzero(f[2]))
      assert.is_true(is_negzero(mg.round(mg.tensor({ -0.4 }, d)):totable()[1]))
    end
    -- large values are integers already
    check(mg.floor(mg.tensor({ 16777217.0, -1e300 }, mg.float64)), { 16777217.0, -1e300 })
    check(mg.floor(mg.tensor({ 8388607.5, -8388607.5 }, mg.float32)), { 8388607.0, -8388608.0 })
  end)

  it("floor, ceil, round leave integers unchanged", function()
    for _, d in ipairs(int_types) do
      local x = mg.tensor({ 0, 3, 100 }, d)
      for _, op in ipairs({ "floor", "ceil", "round" }) do
        local r = mg[op](x)
        assert.equal(d, r.dtype)
        check(r, { 0, 3, 100 })
      end
    end
  end)
end)

describe("cast", function()
  it("converts floats to ints by truncation, saturating, NaN to 0", function()
    local x = mg.tensor({ nan, inf, -inf, 3e9, -3e9, -3.7, 3.7, 255.9, -0.5 }, mg.float32)
    check(mg.cast(x, mg.int32), { 0, 2147483647, -2147483648, 2147483647, -2147483648, -3, 3, 255, 0 })
    check(mg.cast(x, mg.int64), { 0, imax, imin, 3000000000, -3000000000, -3, 3, 255, 0 })
    check(mg.cast(x, mg.uint8), { 0, 255, 0, 255, 0, 0, 3, 255, 0 })
    local big = mg.tensor({ 1e19, -1e19, 9.2233720368547748e18 }, mg.float64)
    check(mg.cast(big, mg.int64), { imax, imin, 9223372036854774784 })
  end)

  it("converts ints to ints by wrapping and to floats by rounding", function()
    local x = mg.tensor({ 300, -1, math.tointeger(2 ^ 40), 5 })
    check(mg.cast(x, mg.uint8), { 44, 255, 0, 5 })
    check(mg.cast(x, mg.int32), { 300, -1, 0, 5 })
    check(mg.cast(mg.tensor({ 16777217 }), mg.float32), { 16777216.0 })
    check(mg.cast(mg.tensor({ 255, 0 }, mg.uint8), mg.int64), { 255, 0 })
    check(mg.cast(mg.tensor({ 200 }, mg.uint8), mg.float64), { 200.0 })
  end)

  it("casts to bool as nonzero and from bool as 0/1", function()
    check(mg.cast(mg.tensor({ 0, 0.5, nan, -1, -0.0 }), mg.bool), { false, true, true, true, false })
    check(mg.cast(mg.tensor({ 0, 7, -1 }), mg.bool), { false, true, true })
    check(mg.cast(mg.tensor({ 0, 2 }, mg.uint8), mg.bool), { false, true })
    local b = mg.tensor({ true, false })
    check(mg.cast(b, mg.float32), { 1.0, 0.0 })
    check(mg.cast(b, mg.float64), { 1.0, 0.0 })
    check(mg.cast(b, mg.int32), { 1, 0 })
    check(mg.cast(b, mg.int64), { 1, 0 })
    check(mg.cast(b, mg.uint8), { 1, 0 })
    check(mg.cast(b, mg.bool), { true, false })
  end)

  it("float64 to float32 rounds and overflows to inf", function()
    check(mg.cast(mg.tensor({ 0.1, 1e300, -1e300 }, mg.float64), mg.float32), { 0.10000000149011612, inf, -inf }, 0)
  end)

  it("every dtype pair round-trips small integers", function()
    for _, from in ipairs(mg.dtypes) do
      for _, to in ipairs(mg.dtypes) do
        local x = mg.cast(mg.tensor({ 0, 1 }), from)
        local y = mg.cast(x, to)
        assert.equal(to, y.dtype)
        check(mg.cast(y, mg.int64), { 0, 1 })
      end
    end
  end)

  it("needs a dtype", function()
    assert.matches("cast: the dtype argument is required", err_of(function() return mg.cast(mg.ones{2}) end))
    assert.matches("cast", err_of(function() return mg.cast(mg.ones{2}, "float8_e4m3") end))
  end)
end)

describe("binary arithmetic", function()
  it("add, sub, mul, div on every numeric dtype", function()
    for _, d in ipairs({ mg.float32, mg.float64, mg.int32, mg.int64, mg.uint8 }) do
      local a, b = mg.tensor({ 6, 9, 20 }, d), mg.tensor({ 3, 2, 4 }, d)
      local f = (d == mg.float32 or d == mg.float64)
      local function v(t) local r = {} for i, x in ipairs(t) do r[i] = f and x + 0.0 or x end return r end
      check(a + b, v({ 9, 11, 24 }))
      check(a - b, v({ 3, 7, 16 }))
      check(a * b, v({ 18, 18, 80 }))
      check(a / b, { 2.0, 4.5, 5.0 })
      assert.equal(d, (a + b).dtype)
      assert.equal(d == mg.float64 and "float64" or "float32", (a / b).dtype)
    end
  end)

  it("int64 arithmetic wraps around", function()
    check(mg.tensor({ imax }) + 1, { imin })
    check(mg.tensor({ imin }) - 1, { imax })
    check(mg.tensor({ imax }) * 2, { -2 })
  end)

  it("int32 and uint8 arithmetic wraps around", function()
    check(mg.tensor({ 2147483647 }, mg.int32) + 1, { -2147483648 })
    check(mg.tensor({ -2147483648 }, mg.int32) - mg.tensor({ 1 }, mg.int32), { 2147483647 })
    check(mg.tensor({ 65536 }, mg.int32) * mg.tensor({ 65536 }, mg.int32), { 0 })
    check(mg.tensor({ 250, 3 }, mg.uint8) + 10, { 4, 13 })
    check(mg.tensor({ 3 }, mg.uint8) - 5, { 254 })
    check(mg.tensor({ 16 }, mg.uint8) * 17, { 16 })
  end)

  it("int64 values beyond 2^53 stay exact", function()
    check(mg.tensor({ math.tointeger(2 ^ 62) }) + 1, { 4611686018427387905 })
    check(mg.tensor({ 9007199254740993 }) * 3, { 27021597764222979 })
  end)

  it("true division of integers gives float32, with inf and nan at zero", function()
    local r = mg.tensor({ 7, -7, 1, -1, 0 }) / mg.tensor({ 2, 2, 0, 0, 0 })
    assert.equal("float32", r.dtype)
    check(r, { 3.5, -3.5, inf, -inf, nan })
    assert.equal("float32", (mg.tensor({ true }) / mg.tensor({ true })).dtype)
  end)

  it("pow of integers stays integer, wraps, and gives 0 for negative exponents", function()
    check(mg.tensor({ 2, -2, 0, 7 }) ^ mg.tensor({ 10, 3, 0, 0 }), { 1024, -8, 1, 1 })
    check(mg.tensor({ 2, 1, -1, -1, 0, 5 }) ^ mg.tensor({ -1, -5, -3, -4, -1, -2 }), { 0, 1, -1, 1, 0, 0 })
    assert.equal("int64", (mg.tensor({ 2 }) ^ 3).dtype)
    check(mg.tensor({ 3 }, mg.int32) ^ mg.tensor({ 21 }, mg.int32), { 1870418611 })  -- 3^21 mod 2^32
    check(mg.tensor({ 3 }, mg.int32) ^ mg.tensor({ 20 }, mg.int32), { -808182895 })   -- 3^20 wraps negative
    check(mg.tensor({ 3, 2 }, mg.uint8) ^ mg.tensor({ 5, 8 }, mg.uint8), { 243, 0 })
    check(mg.tensor({ imin }) ^ 2, { 0 })
  end)

  it("pow of int64 wraps as Lua's integer multiplication does", function()
    local function lua_pow(a, b) local r = 1 for _ = 1, b do r = r * a end return r end  -- wraps like int64
    check(mg.tensor({ 3 }) ^ mg.tensor({ 40 }), { lua_pow(3, 40) })
  end)

  it("pow of floats, with x^2 exact", function()
    for _, d in ipairs(float_types) do
      check(mg.tensor({ 2, 4, -8, 0 }, d) ^ mg.tensor({ 0.5, -0.5, 1 / 3, -1 }, d), { math.sqrt(2), 0.5, nan, inf }, 1e-6)
      check(mg.tensor({ -3, 1.5, nan, -inf }, d) ^ 2, { 9.0, 2.25, nan, inf })
      check(mg.pow(mg.tensor({ 3 }, d), mg.tensor({ 2, 3 }, d)), { 9.0, 27.0 })
    end
    local x = mg.tensor({ 1.1 }, mg.float32)
    check(x ^ 2, mg.square(x):totable(), 0)
    assert.equal("float32", (mg.tensor({ 2 }) ^ 0.5).dtype)  -- a float exponent makes it float
  end)

  it("maximum and minimum propagate NaN from either side", function()
    for _, d in ipairs(float_types) do
      local a, b = mg.tensor({ 1, nan, 3, -inf }, d), mg.tensor({ 2, 0, nan, 5 }, d)
      check(mg.maximum(a, b), { 2.0, nan, nan, 5.0 })
      check(mg.minimum(a, b), { 1.0, nan, nan, -inf })
    end
    for _, d in ipairs(int_types) do
      check(mg.maximum(mg.tensor({ 1, 9 }, d), mg.tensor({ 5, 2 }, d)), { 5, 9 })
      check(mg.minimum(mg.tensor({ 1, 9 }, d), mg.tensor({ 5, 2 }, d)), { 1, 2 })
    end
    check(mg.maximum(mg.tensor({ -5, 5 }), 0), { 0, 5 })
  end)

  it("atan2 in radians; integer inputs give float32", function()
    check(mg.atan2(mg.tensor({ 1, 0, -1, 0 }, mg.float64), mg.tensor({ 1, -1, 0, 0 }, mg.float64)),
      { math.pi / 4, math.pi, -math.pi / 2, 0.0 }, 1e-15)
    local r = mg.atan2(mg.tensor({ 1 }), mg.tensor({ 1 }))
    assert.equal("float32", r.dtype)
    check(r, { math.pi / 4 }, 1e-7)
  end)
end)

describe("bool arithmetic", function()
  local t, f = mg.tensor({ true, true, false, false }), mg.tensor({ true, false, true, false })
  it("add and maximum are logical or, mul and minimum logical and (bool results)", function()
    check(t + f, { true, true, true, false })
    check(mg.maximum(t, f), { true, true, true, false })
    check(t * f, { true, false, false, false })
    check(mg.minimum(t, f), { true, false, false, false })
    assert.equal("bool", (t + f).dtype)
  end)
  it("a bool meeting a number promotes to the number", function()
    local r = t + 1
    assert.equal("int64", r.dtype)
    check(r, { 2, 2, 1, 1 })
    assert.equal("float32", (t * 0.5).dtype)
    assert.equal("uint8", (mg.tensor({ true }) + mg.tensor({ 3 }, mg.uint8)).dtype)
    check(mg.tensor({ true, false }) - 1, { 0, -1 })
  end)
  it("sub, floordiv, mod, pow of two bools are errors", function()
    assert.matches("sub: .*bool.*logical_xor", err_of(function() return t - f end))
    for _, op in ipairs({ "floordiv", "mod", "pow" }) do
      assert.matches(op .. ": .*bool", err_of(function() return mg[op](t, f) end))
    end
  end)
end)

describe("type promotion", function()
  local function p(a, b) return mg.add(a, b).dtype end
  local i32, i64, u8 = mg.ones({ 2 }, mg.int32), mg.ones({ 2 }, mg.int64), mg.ones({ 2 }, mg.uint8)
  local f32, f64, b = mg.ones({ 2 }, mg.float32), mg.ones({ 2 }, mg.float64), mg.ones({ 2 }, mg.bool)
  it("between tensors follows NumPy/PyTorch", function()
    assert.equal("int64", p(i32, i64))
    assert.equal("float64", p(f32, f64))
    assert.equal("int32", p(u8, i32))
    assert.equal("int64", p(u8, i64))
    assert.equal("float32", p(i64, f32))
    assert.equal("float32", p(u8, f32))
    assert.equal("float64", p(i32, f64))
    assert.equal("uint8", p(u8, b))
    assert.equal("float32", p(b, f32))
    assert.equal("bool", p(b, b))
  end)
  it("weak Lua scalars only lift the category", function()
    assert.equal("float32", (i64 * 0.5).dtype)
    check(mg.tensor({ 3 }) * 0.5, { 1.5 })
    assert.equal("float32", (f32 * 2).dtype)
    assert.equal("float64", (f64 * 0.1).dtype)
    assert.equal("uint8", (u8 + 1).dtype)
    assert.equal("int32", (i32 + 1).dtype)
    assert.equal("float32", (i32 * 2.5).dtype)
    assert.equal("int64", (b + 1).dtype)
    assert.equal("int64", (1 + i64).dtype)
    assert.equal("float32", (0.5 - i64).dtype)
    assert.equal("float32", mg.add(1, 0.5).dtype)
    assert.equal("int64", mg.add(1, 2).dtype)
    check(mg.add(1, 2), 3)
  end)
  it("promote the same way for every arithmetic op", function()
    for _, op in ipairs({ "add", "sub", "mul", "maximum", "minimum", "pow", "floordiv", "mod" }) do
      assert.equal("int64", mg[op](i32, i64).dtype)
      assert.equal("float64", mg[op](f32, f64).dtype)
      assert.equal("float32", mg[op](i64, 0.5).dtype)
      assert.equal("uint8", mg[op](u8, 1).dtype)
    end
    assert.equal("float64", mg.div(i32, f64).dtype)
    assert.equal("float32", mg.div(i32, i64).dtype)
    assert.equal("float64", mg.atan2(f64, 1).dtype)
  end)
  it("a float32 tensor meets a weak float at float32 precision", function()
    check(mg.tensor({ 0.1 }, mg.float32) - 0.1, { 0.0 }, 0)
    assert.is_true(mg.equal(mg.tensor({ 0.1 }, mg.float32), 0.1):item())
  end)
end)

-- A Lua number is weakly typed (DESIGN.md): uint8_tensor + 1 stays uint8. When the number is
-- not a value of that integer dtype it is an error, as NumPy 2 raises OverflowError ("Python
-- integer 300 out of bounds for uint8"), instead of wrapping (250 + 300 gave 38). The check is
-- where a weak scalar is cast to the op's dtype (core/apply.c), so it covers every op, either
-- side, eager and staged; comparisons instead compare by value (above).
describe("a Lua number that does not fit the tensor's integer dtype", function()
  local big = math.tointeger(2 ^ 40)
  it("is an error in every arithmetic op, on either side", function()
    local u = mg.tensor({ 250 }, mg.uint8)
    for _, op in ipairs({ "add", "sub", "mul", "maximum", "minimum", "pow", "floordiv", "mod" }) do
      assert.matches(op .. ": the Lua number 300 is out of bounds for uint8 %(0%.%.255%)",
        err_of(function() return mg[op](u, 300) end))
      assert.matches(op .. ": the Lua number %-1 is out of bounds for uint8", err_of(function() return mg[op](-1, u) end))
      assert.matches(op .. ": the Lua number 1099511627776 is out of bounds for int32 %(%-2147483648%.%.2147483647%)",
        err_of(function() return mg[op](mg.tensor({ 1 }, mg.int32), big) end))
    end
    assert.matches("add: the Lua number 300", err_of(function() return u + 300 end))
    assert.matches("where: the Lua number 300 is out of bounds for uint8",
      err_of(function() return mg.where(mg.tensor({ true }), u, 300) end))
    assert.matches("where: the Lua number 256", err_of(function() return mg.where(mg.tensor({ true }), 256, u) end))
  end)
  it("keeps numbers that fit, and the promotions", function()
    local u = mg.tensor({ 250 }, mg.uint8)
    check(u + 5, { 255 })
    check(u - 250, { 0 })
    check(mg.tensor({ 2147483647 }, mg.int32) - 2147483647, { 0 })
    assert.equal("float32", (u + 300.5).dtype)                   -- a float lifts the category: no limit
    check(mg.tensor({ 2 }, mg.int32) * (2 ^ 40 + 0.5), { 2 ^ 41 + 1 })   -- a float: float32, no limit
    assert.equal("int64", (mg.tensor({ true }) + 300).dtype)    -- bool + int is int64
    check(u + mg.tensor({ 10 }, mg.uint8), { 4 })                -- tensor arithmetic wraps, as NumPy's
  end)
  it("is an error staged too, when the function is traced", function()
    local f = mg.func(function(x) return x * 300 end)
    assert.matches("mul: the Lua number 300 is out of bounds for uint8", err_of(function() return f(mg.tensor({ 1 }, mg.uint8)) end))
    check(f(mg.tensor({ 1 }, mg.int32)), { 300 })
  end)
  it("is an error when assigned into a tensor or a Variable", function()
    local t = mg.tensor({ 1, 2 }, mg.uint8)
    assert.matches("assign: the Lua number 300 is out of bounds for uint8", err_of(function() t[1] = 300 end))
    assert.matches("assign: the Lua number %-1 is out of bounds for uint8", err_of(function() t:slice{ { 1, 2 } }[2] = -1 end))
    local i = mg.tensor({ 1, 2 }, mg.int32)
    assert.matches("assign: the Lua number 1%.5 has a fraction; an int32 element must be an integer",
      err_of(function() i[2] = 1.5 end))
    i[2] = 7
    t[1] = 255
    check(i, { 1, 7 })
    check(t, { 255, 2 })
    local v = mg.Variable(mg.tensor(3, mg.uint8))
    assert.matches("assign: the Lua number 256 is out of bounds for uint8", err_of(function() v:assign(256) end))
    check(v:read(), 3)
  end)
  it("cast of a Lua number: out of range is an error, a fraction is dropped (an explicit conversion)", function()
    assert.matches("cast: the Lua number 300 is out of bounds for uint8", err_of(function() return mg.cast(300, mg.uint8) end))
    assert.matches("cast: cannot convert the Lua number inf to int64", err_of(function() return mg.cast(inf, mg.int64) end))
    check(mg.cast(2.7, mg.int32), 2)
    check(mg.cast(-2.7, mg.int32), -2)
  end)
end)

describe("comparisons", function()
  local ops = {
    equal = function(a, b) return a == b end, not_equal = function(a, b) return a ~= b end,
    less = function(a, b) return a < b end, less_equal = function(a, b) return a <= b end,
    greater = function(a, b) return a > b end, greater_equal = function(a, b) return a >= b end,
  }
  it("compare every dtype elementwise into bool, NaN unequal to everything", function()
    local as, bs = { 1, 2, 3, nan, nan, -inf }, { 2, 2, 1, 1, nan, -inf }
    for name, f in pairs(ops) do
      for _, d in ipairs(mg.dtypes) do
        local n = (d == mg.float32 or d == mg.float64) and 6 or 3
        local a = mg.cast(mg.tensor({ table.unpack(as, 1, n) }, mg.float64), d)
        local bb = mg.cast(mg.tensor({ table.unpack(bs, 1, n) }, mg.float64), d)
        local av, bv = mg.cast(a, mg.float64):totable(), mg.cast(bb, mg.float64):totable()
        local want = {}
        for i = 1, n do want[i] = f(av[i], bv[i]) end
        local r = mg[name](a, bb)
        assert.equal("bool", r.dtype)
        check(r, want)
      end
    end
  end)
  it("methods and mixed dtypes", function()
    local a = mg.tensor({ 1, 2, 3 })
    check(a:eq(2), { false, true, false })
    check(a:lt(2.5), { true, true, false })
    check(mg.less(a, mg.tensor({ 1.5, 1.5, 1.5 }, mg.float64)), { true, false, false })
    check(mg.greater_equal(mg.tensor({ 1, 2 }, mg.int32), mg.tensor({ 2, 2 })), { false, true })
  end)
  it("a weak integer out of the tensor's range compares by value", function()
    local u = mg.tensor({ 0, 255 }, mg.uint8)
    check(mg.less(u, -1), { false, false })
    check(mg.greater(u, -1), { true, true })
    check(mg.equal(u, 256), { false, false })
    check(mg.equal(u, 255), { false, true })
    check(mg.less(mg.tensor({ 5 }, mg.int32), math.tointeger(2 ^ 40)), { true })
  end)
end)

describe("logical ops", function()
  it("and, or, xor, not on bools and on numbers (nonzero is true)", function()
    local a, b = mg.tensor({ true, true, false, false }), mg.tensor({ true, false, true, false })
    check(mg.logical_and(a, b), { true, false, false, false })
    check(mg.logical_or(a, b), { true, true, true, false })
    check(mg.logical_xor(a, b), { false, true, true, false })
    check(mg.logical_not(a), { false, false, true, true })
    local x = mg.tensor({ 0, 2, nan, -0.0 })
    check(mg.logical_not(x), { true, false, false, true })
    check(mg.logical_and(x, mg.tensor({ 1, 1, 1, 1 })), { false, true, true, false })
    check(mg.logical_or(mg.tensor({ 0, 0 }, mg.uint8), mg.tensor({ 0, 3 }, mg.int32)), { false, true })
    assert.equal("bool", mg.logical_xor(x, 1).dtype)
  end)
  it("broadcast", function()
    check(mg.logical_and(mg.tensor({ { true }, { false } }), mg.tensor({ true, false })),
      { { true, false }, { false, false } })
  end)
end)

describe("where", function()
  it("picks from a or b, broadcasting all three", function()
    local c = mg.tensor({ { true }, { false } })            -- (2,1)
    local a = mg.tensor({ { 1, 2, 3 } })                     -- (1,3)
    local r = mg.where(c, a, 0)
    assert.same({ 2, 3 }, r.shape)
    check(r, { { 1, 2, 3 }, { 0, 0, 0 } })
    check(mg.where(mg.tensor({ true, false, true }), 1, mg.tensor({ 7, 8, 9 })), { 1, 8, 1 })
  end)
  it("promotes a and b, casts cond to bool", function()
    local r = mg.where(mg.tensor({ 1, 0 }), mg.tensor({ 1, 2 }), mg.tensor({ 0.5, 0.5 }))
    assert.equal("float32", r.dtype)
    check(r, { 1.0, 0.5 })
    assert.equal("int64", mg.where(mg.tensor({ true }), 1, 0).dtype)
    assert.equal("float32", mg.where(mg.tensor({ true }), 1.5, 0).dtype)
    assert.equal("float64", mg.where(mg.tensor({ true }), mg.ones({ 1 }, mg.float64), 0).dtype)
    check(mg.where(mg.tensor({ nan, 0 }), 1, 2), { 1, 2 })
    for _, d in ipairs(mg.dtypes) do
      local x = mg.cast(mg.tensor({ 1, 0 }), d)
      check(mg.cast(mg.where(mg.tensor({ false, true }), x, mg.cast(mg.tensor({ 0, 1 }), d)), mg.int64), { 0, 0 })
    end
  end)
  it("reports shapes that do not broadcast", function()
    local msg = err_of(function() return mg.where(mg.ones({ 3 }, mg.bool), mg.ones{ 2 }, mg.ones{ 2 }) end)
    assert.matches("where:", msg)
    assert.truthy(msg:find("(3)", 1, true) and msg:find("(2)", 1, true))
  end)
end)

describe("clip", function()
  it("limits floats to [min, max]; NaN stays NaN", function()
    for _, d in ipairs(float_types) do
      local x = mg.tensor({ -5, 0.5, 5, nan, inf, -inf }, d)
      local r = mg.clip(x, 0, 1)
      assert.equal(d, r.dtype)
      check(r, { 0.0, 0.5, 1.0, nan, 1.0, 0.0 })
      check(mg.clip(x, { min = 0 }), { 0.0, 0.5, 5.0, nan, inf, 0.0 })
      check(mg.clip(x, nil, 1), { -5.0, 0.5, 1.0, nan, 1.0, -inf })
      check(x:clip{ max = 1 }, { -5.0, 0.5, 1.0, nan, 1.0, -inf })
      check(mg.clip(x), { -5.0, 0.5, 5.0, nan, inf, -inf })
      check(mg.clip(x, 2, 2), { 2.0, 2.0, 2.0, nan, 2.0, 2.0 })
    end
  end)
  it("keeps integer dtypes, using the integers inside fractional bounds", function()
    local x = mg.tensor({ -3, 0, 1, 2, 3, 9 })
    local r = mg.clip(x, 0.5, 2.5)
    assert.equal("int64", r.dtype)
    check(r, { 1, 1, 1, 2, 2, 2 })
    check(mg.clip(x, -1, 3), { -1, 0, 1, 2, 3, 3 })
    check(mg.clip(x, -1e30, 1e30), { -3, 0, 1, 2, 3, 9 })
    check(mg.clip(mg.tensor({ 0, 100, 255 }, mg.uint8), -5, 99), { 0, 99, 99 })
    check(mg.clip(mg.tensor({ 7, -7 }, mg.int32), { max = 0 }), { 0, -7 })
    check(mg.clip(x, 0.2, 0.8), { 0, 0, 0, 0, 0, 0 })  -- no integer inside: all become max, as in NumPy
  end)
  it("a bound past an integer dtype's range: exact on the side that changes nothing, else an error", function()
    local u = mg.tensor({ 0, 100, 255 }, mg.uint8)
    check(mg.clip(u, 0, 300), { 0, 100, 255 })       -- max 300: no uint8 is above it
    check(mg.clip(u, -5, 99), { 0, 99, 99 })
    assert.matches("clip: min 300 is out of bounds for uint8 %(0%.%.255%)", err_of(function() return mg.clip(u, 300, 400) end))
    assert.matches("clip: max %-1 is out of bounds for uint8", err_of(function() return mg.clip(u, { max = -1 }) end))
    assert.matches("clip: min 3000000000 is out of bounds for int32",
      err_of(function() return mg.clip(mg.tensor({ 1 }, mg.int32), 3e9) end))
  end)
  it("refuses bools, min > max and NaN bounds", function()
    assert.matches("clip: .*bool", err_of(function() return mg.clip(mg.tensor({ true }), 0, 1) end))
    assert.matches("clip: min %(2%) is greater than max %(1%)", err_of(function() return mg.clip(mg.ones{ 2 }, 2, 1) end))
    assert.matches("clip: min is NaN", err_of(function() return mg.clip(mg.ones{ 2 }, nan, 1) end))
  end)
end)

describe("broadcasting", function()
  it("matches shapes from the right", function()
    local a = mg.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
    check(a + mg.tensor({ 10, 20, 30 }), { { 11, 22, 33 }, { 14, 25, 36 } })
    check(a * mg.tensor({ { 1 }, { 2 } }), { { 1, 2, 3 }, { 8, 10, 12 } })
    check(mg.tensor({ { 1 }, { 2 } }) - mg.tensor({ 1, 2, 3 }), { { 0, -1, -2 }, { 1, 0, -1 } })
    check(a + mg.tensor(100), { { 101, 102, 103 }, { 104, 105, 106 } })
    check(mg.tensor(2) * mg.tensor(3), 6)
    assert.same({ 2, 3 }, (a + 1).shape)
  end)
  it("keeps zero-size dimensions", function()
    local r = mg.zeros{ 0, 3 } + mg.ones{ 3 }
    assert.same({ 0, 3 }, r.shape)
    assert.same({ 0, 3 }, mg.exp(mg.zeros{ 0, 3 }).shape)
    assert.same({ 2, 0 }, mg.where(mg.ones({ 2, 1 }, mg.bool), mg.zeros{ 0 }, 1).shape)
  end)
  it("names the op and both shapes when they do not fit", function()
    local msg = err_of(function() return mg.mul(mg.zeros{ 2, 3 }, mg.zeros{ 3, 2 }) end)
    assert.truthy(msg:find("mul", 1, true) and msg:find("(2,3)", 1, true) and msg:find("(3,2)", 1, true))
    msg = err_of(function() return mg.less(mg.ones{ 2, 2 }, mg.ones{ 3 }) end)
    assert.truthy(msg:find("less", 1, true) and msg:find("(2,2)", 1, true) and msg:find("(3)", 1, true))
  end)
end)

describe("non-contiguous inputs", function()
  local base = mg.arange(12):reshape{ 3, 4 }
  local function plain(t) return mg.tensor(t:totable(), t.dtype) end  -- a contiguous copy

  it("transposed, sliced and expanded views give the same values as copies", function()
    local tr = base:transpose()                     -- (4,3), strides (1,4)
    local sl = base:slice{ {}, { 1, -1, 2 } }       -- (3,2), every other column
    local ex = mg.broadcast_to(mg.tensor({ 1, 2, 3 }), { 4, 3 })
    assert.is_false(tr:is_contiguous())
    for _, op in ipairs({ "add", "sub", "mul", "maximum", "less", "floordiv" }) do
      check(mg[op](tr, ex), mg[op](plain(tr), plain(ex)):totable())
      check(mg[op](ex, tr), mg[op](plain(ex), plain(tr)):totable())
    end
    check(mg.neg(sl), mg.neg(plain(sl)):totable())
    check(mg.exp(sl), mg.exp(plain(sl)):totable())
    check(mg.cast(tr, mg.float64), mg.cast(plain(tr), mg.float64):totable())
    check(mg.where(mg.greater(tr, 5), tr, ex), mg.where(mg.greater(plain(tr), 5), plain(tr), plain(ex)):totable())
    check(mg.clip(sl, 2, 9), mg.clip(plain(sl), 2, 9):totable())
    check(sl + sl:transpose():transpose(), (plain(sl) * 2):totable())
  end)

  it("large views run through the threaded iterator correctly", function()
    local n, m = 300, 257                            -- 77100 elements: past the threading threshold
    local x = mg.arange(n * m):reshape{ n, m }
    local xt = x:transpose()                         -- (257,300)
    local y = xt + mg.arange(n)                      -- broadcast a row over the transpose
    assert.same({ m, n }, y.shape)
    local yt = y:totable()
    for _, ij in ipairs({ { 1, 1 }, { 1, n }, { m, 1 }, { m, n }, { 100, 200 } }) do
      local i, j = ij[1], ij[2]
      assert.equal((j - 1) * m + (i - 1) + (j - 1), yt[i][j])
    end
    local e = mg.exp(mg.cast(xt, mg.float32) * 1e-5):totable()
    check(e[m][n], math.exp(((n - 1) * m + (m - 1)) * 1e-5), 1e-6)
    local s = mg.sigmoid(mg.cast(x, mg.float64)):slice{ { 1, 2 }, { 1, 2 } }
    check(s, { { 0.5, 1 / (1 + math.exp(-1)) }, { 1 / (1 + math.exp(-m)), 1 / (1 + math.exp(-m - 1)) } }, 1e-12)
  end)
end)

describe("copy into a tensor (assignment)", function()
  it("converts dtype and broadcasts the value", function()
    local t = mg.zeros({ 2, 3 }, mg.int32)
    t[1] = mg.tensor({ 1.9, -2.9, 300.5 })          -- float32 -> int32 truncates
    t[2] = 7
    check(t, { { 1, -2, 300 }, { 7, 7, 7 } })
    local u = mg.zeros({ 2, 2 }, mg.uint8)
    u[1] = mg.tensor({ 300, -1 })
    check(u, { { 44, 255 }, { 0, 0 } })
  end)
  it("writes into a strided view", function()
    local t = mg.zeros({ 3, 3 })
    local col = t:transpose()
    col[2] = mg.tensor({ 1, 2, 3 })                  -- column 2 of t
    check(t, { { 0.0, 1.0, 0.0 }, { 0.0, 2.0, 0.0 }, { 0.0, 3.0, 0.0 } })
  end)
  it("handles a source overlapping the target", function()
    local t = mg.tensor({ { 1, 2 }, { 3, 4 } })
    local flat = t:reshape{ 4 }
    assert.is_true(flat:shares_storage(t))
    t[2] = flat:slice{ { 2, 3 } }                     -- elements 2,3 into elements 3,4
    check(t, { { 1, 2 }, { 2, 3 } })
  end)
end)
