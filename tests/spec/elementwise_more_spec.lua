-- elementwise_more_spec.lua — issue 17's elementwise ops and activations:
-- values against Lua's math library and hand-computed numbers, the dtypes
-- they give, the errors for bad input, and the ops staged (mg.func). The op
-- oracle (tests/oracle) checks every one against NumPy/JAX over all dtypes
-- and layouts, and gradcheck_spec their gradients; this file is the quick,
-- readable part. Portable (Lua 5.4 and LuaJIT): the Lua 5.4 operators & | ~
-- << >> on tensors are in lua54_spec.lua.
local mg = require "moongrad"
local h = require "tests.spec.helpers"
local near, fails = h.near, h.fails

local nan, inf = 0 / 0, math.huge

local function each(xs, f)
  local r = {}
  for i, v in ipairs(xs) do r[i] = f(v) end
  return r
end

describe("issue 17 float functions", function()
  it("agree with Lua's math in float64 and float32", function()
    local xs = { -0.9, -0.3, 0.2, 0.7 }
    for _, d in ipairs({ mg.float64, mg.float32 }) do
      local tol = d == mg.float64 and 1e-14 or 2e-6
      local x = mg.tensor(xs, d)
      near(mg.tan(x), each(xs, function(v) return math.sin(v) / math.cos(v) end), tol)
      near(mg.asin(x), each(xs, math.asin), tol)
      near(mg.acos(x), each(xs, math.acos), tol)
      near(mg.atan(x), each(xs, math.atan), tol)
      near(mg.sinh(x), each(xs, function(v) return (math.exp(v) - math.exp(-v)) / 2 end), tol)
      near(mg.cosh(x), each(xs, function(v) return (math.exp(v) + math.exp(-v)) / 2 end), tol)
      near(mg.asinh(x), each(xs, function(v) return math.log(v + math.sqrt(v * v + 1)) end), tol)
      near(mg.atanh(x), each(xs, function(v) return 0.5 * math.log((1 + v) / (1 - v)) end), tol)
      near(mg.acosh(x + 2), each(xs, function(v) v = v + 2; return math.log(v + math.sqrt(v * v - 1)) end), tol)
      near(mg.exp2(x), each(xs, function(v) return 2 ^ v end), tol)
      near(mg.log2(x + 1), each(xs, function(v) return math.log(v + 1) / math.log(2) end), tol)
      near(mg.log10(x + 1), each(xs, function(v) return math.log(v + 1) / math.log(10) end), tol)
      near(mg.reciprocal(x), each(xs, function(v) return 1 / v end), tol)
      near(mg.log_sigmoid(x), each(xs, function(v) return -math.log(1 + math.exp(-v)) end), tol)
      near(mg.trunc(mg.tensor({ -2.7, -0.5, 0.5, 2.7 }, d)), { -2, -0.0, 0, 2 }, 0)
      assert.equal(d, mg.tan(x).dtype)
    end
  end)

  it("give float32 for integer and bool inputs, like exp and sin", function()
    for _, op in ipairs({ "tan", "atan", "sinh", "exp2", "log2", "reciprocal", "log_sigmoid", "gelu", "elu" }) do
      assert.equal("float32", mg[op](mg.tensor({ 1, 2 }, mg.int32)).dtype, op)
      assert.equal("float32", mg[op](mg.tensor({ true, false })).dtype, op)
    end
    near(mg.reciprocal(mg.tensor({ 2, 4 })), { 0.5, 0.25 }, 0)
    assert.equal("int32", mg.trunc(mg.tensor({ -3, 3 }, mg.int32)).dtype)  -- the identity on integers
  end)

  it("keep the edges exact: log_sigmoid saturates, atanh(1) is inf, 1/0 is inf", function()
    near(mg.log_sigmoid(mg.tensor({ -1000, 1000 }, mg.float32)), { -1000, 0 }, 0)
    near(mg.atanh(mg.tensor { 1.0, -1.0 }), { inf, -inf }, 0)
    near(mg.reciprocal(mg.tensor { 0.0 }), { inf }, 0)
    near(mg.acosh(mg.tensor { 0.5 }), { nan }, 0)
  end)

  it("copysign, logaddexp and fmod", function()
    near(mg.copysign(mg.tensor { 1.5, -2, 3 }, mg.tensor({ -1, 1, -0.0 }, mg.float32)), { -1.5, 2, -3 }, 0)
    near(mg.logaddexp(mg.tensor { 0.0, 1000, -inf, inf }, mg.tensor { 0.0, 1000, -inf, 1 }),
      { math.log(2), 1000 + math.log(2), -inf, inf }, 1e-7)
    -- fmod takes a's sign (C, NumPy); mod takes b's (Lua's %)
    near(mg.fmod(mg.tensor { 7, -7, 7, -7 }, mg.tensor { 3, 3, -3, -3 }), { 1, -1, 1, -1 }, 0)
    near(mg.mod(mg.tensor { 7, -7, 7, -7 }, mg.tensor { 3, 3, -3, -3 }), { 1, 2, -2, -1 }, 0)
    near(mg.fmod(mg.tensor({ 5.5, -5.5 }, mg.float64), 2), { 1.5, -1.5 }, 0)
    near(mg.fmod(mg.tensor({ 7 }, mg.int32), mg.tensor({ 0 }, mg.int32)), { 0 }, 0)  -- no trap
    assert.equal("int64", mg.fmod(mg.tensor { 7 }, 2).dtype)
    fails(function() return mg.fmod(mg.tensor { true }, mg.tensor { false }) end, "fmod", "bool")
  end)

  it("isnan, isinf, isfinite give bools, for every dtype", function()
    local x = mg.tensor({ 1, nan, inf, -inf, -0.0 }, mg.float64)
    near(mg.isnan(x), { false, true, false, false, false })
    near(mg.isinf(x), { false, false, true, true, false })
    near(mg.isfinite(x), { true, false, false, false, true })
    for _, d in ipairs({ mg.int32, mg.int64, mg.uint8, mg.bool }) do
      local t = mg.tensor({ 1, 0 }, d)
      near(mg.isnan(t), { false, false })
      near(mg.isfinite(t), { true, true })
      assert.equal("bool", mg.isinf(t).dtype)
    end
  end)
end)

describe("activations", function()
  local xs = { -2.5, -0.5, 0.0, 0.5, 2.5 }

  it("elu, celu and leaky_relu take alpha", function()
    local x = mg.tensor(xs, mg.float64)
    near(mg.elu(x), each(xs, function(v) return v > 0 and v or math.exp(v) - 1 end), 1e-15)
    near(mg.elu(x, { alpha = 2 }), each(xs, function(v) return v > 0 and v or 2 * (math.exp(v) - 1) end), 1e-15)
    near(mg.celu(x, { alpha = 0.5 }), each(xs, function(v) return v > 0 and v or 0.5 * (math.exp(v / 0.5) - 1) end), 1e-15)
    near(mg.leaky_relu(x), each(xs, function(v) return v > 0 and v or 0.2 * v end), 1e-15)
    near(mg.leaky_relu(x, { alpha = 0.01 }), each(xs, function(v) return v > 0 and v or 0.01 * v end), 1e-15)
    near(mg.leaky_relu(x, 0.01), mg.leaky_relu(x, { alpha = 0.01 }), 0)   -- positional, as other ops' attributes
  end)

  it("gelu: exact by default, the tanh form with approximate = true", function()
    local x = mg.tensor(xs, mg.float64)
    near(mg.gelu(x), x * (mg.erf(x * (1 / math.sqrt(2))) + 1) * 0.5, 1e-15)   -- x Phi(x)
    local c = math.sqrt(2 / math.pi)
    local function th(v) return (math.exp(2 * v) - 1) / (math.exp(2 * v) + 1) end
    near(mg.gelu(x, { approximate = true }),
      each(xs, function(v) return 0.5 * v * (1 + th(c * (v + 0.044715 * v ^ 3))) end), 1e-14)
    near(mg.gelu(mg.tensor { -inf, inf, -40 }), { 0, inf, 0 }, 0)  -- the limits, not -inf * 0
  end)

  it("hard_sigmoid and hard_swish are relu6(x + 3) / 6 and x times it", function()
    local ys = { -4, -3, -1.5, 0, 1.5, 3, 4 }
    local x = mg.tensor(ys, mg.float64)
    local function hs(v) return math.min(math.max(v + 3, 0), 6) / 6 end
    near(mg.hard_sigmoid(x), each(ys, hs), 1e-15)
    near(mg.hard_swish(x), each(ys, function(v) return v * hs(v) end), 1e-15)
    near(mg.hard_swish(mg.tensor { -inf, inf }), { 0, inf }, 0)
  end)

  it("refuse a bad alpha and unknown options", function()
    local x = mg.tensor { 1.0, -1.0 }
    fails(function() return mg.celu(x, { alpha = 0 }) end, "celu", "alpha must not be 0")
    fails(function() return mg.elu(x, { alpha = nan }) end, "elu", "alpha must be a finite number")
    fails(function() return mg.leaky_relu(x, { alpha = inf }) end, "leaky_relu", "alpha")
    fails(function() return mg.elu(x, { beta = 1 }) end, "elu", "unknown option 'beta'")
    fails(function() return mg.gelu(x, { approximate = "tanh" }) end, "gelu", "approximate")
  end)

  it("differentiate (first order; gradcheck_spec checks them all numerically)", function()
    local x = mg.tensor({ -1.0, 2.0 }, mg.float64)
    local g = mg.grad(function(t) return mg.sum(mg.leaky_relu(t, { alpha = 0.1 })) end)(x)
    near(g, { 0.1, 1 }, 1e-15)
    g = mg.grad(function(t) return mg.sum(mg.elu(t, { alpha = 2 })) end)(x)
    near(g, { 2 * math.exp(-1), 1 }, 1e-15)
  end)

  it("stage into graphs with their attributes", function()
    local f = mg.func(function(t) return mg.gelu(t, { approximate = true }) + mg.celu(t, { alpha = 0.5 }) end)
    local x = mg.tensor { -1.0, 0.5, 2.0 }
    near(f(x), mg.gelu(x, { approximate = true }) + mg.celu(x, { alpha = 0.5 }), 1e-7)
  end)
end)

describe("bitwise ops", function()
  it("compute and, or, xor, not and the shifts on integer tensors", function()
    for _, d in ipairs({ mg.int32, mg.int64 }) do
      local a, b = mg.tensor({ 12, -5, 7, 0 }, d), mg.tensor({ 10, 3, -1, 5 }, d)
      near(mg.bitwise_and(a, b), { 8, 3, 7, 0 }, 0)
      near(mg.bitwise_or(a, b), { 14, -5, -1, 5 }, 0)
      near(mg.bitwise_xor(a, b), { 6, -8, -8, 5 }, 0)
      near(mg.bitwise_not(a), { -13, 4, -8, -1 }, 0)
      near(mg.left_shift(a, 2), { 48, -20, 28, 0 }, 0)
      near(mg.right_shift(a, 1), { 6, -3, 3, 0 }, 0)   -- arithmetic: the sign fills in
      assert.equal(d, mg.bitwise_and(a, 3).dtype)
    end
    -- counts outside [0, width): 0, or -1 for a negative value shifted right (NumPy)
    near(mg.left_shift(mg.tensor({ 1, 1, 1 }, mg.int32), mg.tensor({ 31, 32, -1 }, mg.int32)), { -2 ^ 31, 0, 0 }, 0)
    near(mg.right_shift(mg.tensor({ -8, 8 }, mg.int64), 64), { -1, 0 }, 0)
    near(mg.left_shift(mg.tensor({ 200 }, mg.uint8), 1), { 144 }, 0)   -- bits shifted out are lost
    near(mg.bitwise_not(mg.tensor({ 0, 255 }, mg.uint8)), { 255, 0 }, 0)
  end)

  it("are the logical ops on bools", function()
    local a, b = mg.tensor { true, true, false }, mg.tensor { true, false, false }
    near(mg.bitwise_and(a, b), { true, false, false })
    near(mg.bitwise_or(a, b), { true, true, false })
    near(mg.bitwise_xor(a, b), { false, true, false })
    near(mg.bitwise_not(a), { false, false, true })
  end)

  it("refuse floats (and bools for the shifts), naming the op and the dtypes", function()
    fails(function() return mg.bitwise_and(mg.tensor { 1.5 }, mg.tensor { 1 }) end, "bitwise_and", "float32", "integer")
    fails(function() return mg.bitwise_or(mg.tensor { 1 }, 0.5) end, "bitwise_or", "int64 and the number 0.5")
    fails(function() return mg.bitwise_not(mg.tensor({ 1 }, mg.float64)) end, "bitwise_not", "x is float64")
    fails(function() return mg.left_shift(mg.tensor { true }, mg.tensor { true }) end, "left_shift", "bool")
    fails(function() return mg.bitwise_and(mg.tensor({ 1 }, mg.uint8), 300) end, "300")
  end)
end)

describe("lerp, isclose, allclose (compositions)", function()
  it("lerp is a + w (b - a), broadcasting, differentiable in a, b and w", function()
    near(mg.lerp(mg.tensor { 0, 10 }, mg.tensor { 10, 20 }, 0.25), { 2.5, 12.5 }, 0)
    near(mg.lerp(mg.tensor { { 0 }, { 1 } }, 2, mg.tensor { 0, 0.5, 1 }), { { 0, 1, 2 }, { 1, 1.5, 2 } }, 0)
    local a, b, w = mg.tensor({ 1, 2 }, mg.float64), mg.tensor({ 5, -2 }, mg.float64), mg.tensor({ 0.25, 0.75 }, mg.float64)
    local gs = mg.grad(function(x, y, z) return mg.sum(mg.lerp(x, y, z)) end, { argnums = { 1, 2, 3 } })(a, b, w)
    local ga, gb, gw = gs[1], gs[2], gs[3]
    near(ga, { 0.75, 0.25 }, 1e-15)
    near(gb, { 0.25, 0.75 }, 1e-15)
    near(gw, { 4, -4 }, 1e-15)
    fails(function() return mg.lerp(mg.tensor { 1 }, "x", 0.5) end, "lerp", "b must be a tensor or a number")
  end)

  it("isclose follows NumPy: |a - b| <= atol + rtol |b|, infinities only to themselves, NaN with equal_nan", function()
    local a = mg.tensor({ 1, inf, nan, 1, 1e-9, 1, -inf }, mg.float64)
    local b = mg.tensor({ 1 + 1e-6, inf, nan, inf, 0, 1.1, inf }, mg.float64)
    near(mg.isclose(a, b), { true, true, false, false, true, false, false })
    near(mg.isclose(a, b, { equal_nan = true }), { true, true, true, false, true, false, false })
    near(mg.isclose(a, b, { rtol = 0.2 }), { true, true, false, false, true, true, false })
    near(mg.isclose(mg.tensor { 1e-9 }, 0, { atol = 0 }), { false })
    -- integers compare as float64 (no uint8 wrap-around in a - b)
    near(mg.isclose(mg.tensor({ 250 }, mg.uint8), mg.tensor({ 4 }, mg.uint8)), { false })
    assert.is_true(mg.allclose(mg.tensor { 1, 2 }, mg.tensor { 1, 2.000001 }))
    assert.is_false(mg.allclose(mg.tensor { 1, 2 }, mg.tensor { 1, 3 }))
    assert.is_true(mg.allclose(mg.tensor { 1, 3 }, mg.tensor { 1, 2 }, { atol = 1 }))
  end)

  it("check their options", function()
    fails(function() return mg.isclose(mg.tensor { 1 }, 1, { rtl = 1 }) end, "isclose", "unknown option 'rtl'")
    fails(function() return mg.isclose(mg.tensor { 1 }, 1, { atol = -1 }) end, "isclose", "atol")
    fails(function() return mg.allclose(mg.tensor { 1 }, 1, { equal_nan = 1 }) end, "allclose", "equal_nan")
    local f = mg.func(function(x, y) return mg.allclose(x, y) end)
    fails(function() return f(mg.tensor { 1 }, mg.tensor { 1 }) end, "allclose", "mg.all(mg.isclose(a, b, opts))")
  end)
end)

describe("Lua booleans as op arguments", function()
  it("are bool scalars, as tf.constant(True), in both bindings and staged", function()
    assert.equal("bool", mg.cast(true, mg.bool).dtype)
    assert.equal(1, mg.cast(true, mg.float32):item())
    assert.same({ true, false }, mg.logical_and(true, mg.tensor { true, false }):totable())
    assert.same({ false, false }, mg.logical_and(mg.tensor { true, false }, false):totable())
    assert.same({ 2.5, 3 }, mg.add(mg.tensor { 1.5, 2 }, true):totable())
    local f = mg.func(function(x) return mg.logical_or(x, false) end)
    assert.same({ true, false }, f(mg.tensor { true, false }):totable())
    fails(function() return mg.add(mg.tensor { 1 }, print) end, "add", "argument #2 must be a tensor, a number, a boolean")
  end)
end)
