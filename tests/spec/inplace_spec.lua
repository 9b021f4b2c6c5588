-- inplace_spec.lua — in-place writes and the tape (issue 14, item 1). Every write into an
-- existing buffer (t[i] = v, a view's t[i] = v, copy-into) moves the buffer's version; a gradient
-- whose rule reads a value written since the tape saved it is an error naming the op, the line it
-- was recorded at and both versions (PyTorch's "modified by an inplace operation"), never a
-- gradient at the new values. A rule that does not read the value is not disturbed. Variables are
-- values: v[i] = x gives the Variable a fresh buffer when a tape snapshot holds the old one, so the
-- recorded gradient stays right. Inside mg.func, t[i] = x on a symbolic tensor is an error and
-- v[i] = x on a Variable is a functional update (an assign node).
local mg = require "moongrad"
local h = require "tests.spec.helpers"
local fails, near = h.fails, h.near
local f32 = h.f32

local function this_line() return debug.getinfo(2, "l").currentline end
-- The recording line comes from the C module's where hook; the LuaJIT binding has none (a Lua
-- callback per recorded op would keep its traces from compiling), so there the message names
-- the op and the versions only.
local HAS_WHERE = rawget(_G, "jit") == nil

describe("in-place writes under a tape", function()
  it("an item write into a saved input is an error naming the op, the recording line and the versions", function()
    local x = f32 { 1, 2, 3 }
    local tape = mg.GradientTape()
    tape:watch(x)
    local y, line = mg.sum(x * x), this_line()
    tape:stop()
    x[1] = 100
    local e = fails(function() local g = tape:gradient(y, x); return g end, "gradient: input 1 of mul",
      "modified by an in-place operation", "version 1", "saved version 0")
    if HAS_WHERE then assert.truthy(e:find("recorded at [^)]*inplace_spec%.lua:" .. line .. "%)"), e) end
    assert.truthy(e:find("^[^:]*inplace_spec%.lua:%d+: gradient"), e)   -- raised at the user's line
  end)

  it("before the fix the same program gave [200, 4, 6]: the gradient at the written values", function()
    -- the regression the item names: the write must never reach the gradient
    local x = f32 { 1, 2, 3 }
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = mg.sum(x * x)
    tape:stop()
    x[1] = 100
    local ok, g = pcall(function() return tape:gradient(y, x) end)
    assert.is_false(ok, "a gradient came back: " .. tostring(g))
  end)

  it("a write through a view (slice, reshape) is a write into the same buffer", function()
    local x = f32 { { 1, 2 }, { 3, 4 } }
    local tape = mg.GradientTape { persistent = true }
    tape:watch(x)
    local y = mg.sum(x * x)
    local z = mg.sum(x * 3)
    tape:stop()
    x:slice { {}, { 2, 2 } }[2] = 0
    fails(function() return tape:gradient(y, x) end, "input 1 of mul", "in-place")
    x:reshape { 4 }[1] = 7
    fails(function() return tape:gradient(y, x) end, "version 2")
    near(tape:gradient(z, x), { { 3, 3 }, { 3, 3 } })   -- mul by a constant: the rule reads only the constant
  end)

  it("an output a rule reads (exp's, tanh's) written in place is an error too", function()
    local x = f32 { 0.5, 1 }
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = mg.exp(x)
    local s = mg.sum(y)
    tape:stop()
    y[2] = 0
    fails(function() return tape:gradient(s, x) end, "the output of exp", "in-place")
  end)

  it("a rule that never reads the written value gives the right gradient", function()
    local x = f32 { 1, 2, 3 }
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = mg.sum(x + 1) + mg.sum(x:reshape { 3, 1 }) + mg.sum(mg.exp(x))   -- exp's rule reads its output
    local e = mg.exp(f32 { 1, 2, 3 })
    tape:stop()
    x[2] = -5
    near(tape:gradient(y, x), { 2 + e:totable()[1], 2 + e:totable()[2], 2 + e:totable()[3] }, 1e-5)
  end)

  it("writes made before the op was recorded do not count", function()
    local x = f32 { 1, 2, 3 }
    x[1] = 4
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = mg.sum(x * x)
    tape:stop()
    near(tape:gradient(y, x), { 8, 4, 6 })
  end)

  it("a persistent tape checks at every gradient call", function()
    local x = f32 { 1, 2 }
    local tape = mg.GradientTape { persistent = true }
    tape:watch(x)
    local y = mg.sum(x * x)
    tape:stop()
    near(tape:gradient(y, x), { 2, 4 })
    x[2] = 10
    fails(function() return tape:gradient(y, x) end, "in-place")
  end)

  it("a staged call's input written after the call is an error at the gradient", function()
    local f = mg.func(function(a) return mg.sum(a * a) end)
    local x = f32 { 1, 2, 3 }
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = f(x)
    tape:stop()
    x[3] = 0
    fails(function() return tape:gradient(y, x) end, "a staged call", "in-place")
  end)

  it("a second-order gradient sees the check too", function()
    local x = f32 { 1, 2 }
    local outer = mg.GradientTape()
    outer:watch(x)
    local inner = mg.GradientTape()
    inner:watch(x)
    local y = mg.sum(x * x * x)
    inner:stop()
    local g = inner:gradient(y, x)
    outer:stop()
    x[1] = 3
    fails(function() return outer:gradient(g, x) end, "in-place")
  end)
end)

describe("Variables written by index", function()
  it("v[i] = x after recording keeps the recorded gradient (copy-on-write) and updates the Variable", function()
    local w = mg.Variable(f32 { 1, 2, 3 })
    local tape = mg.GradientTape()
    local l = mg.sum(w * w)
    tape:stop()
    local before = mg.variable_version and mg.variable_version(w)
    w[1] = 100
    near(w, { 100, 2, 3 })
    near(tape:gradient(l, w), { 2, 4, 6 })
    if before then assert.is_true(mg.variable_version(w) ~= before) end
  end)

  it("a view taken before the write keeps the old buffer, as after assign", function()
    local w = mg.Variable(f32 { { 1, 2 }, { 3, 4 } })
    local row = w[2]
    w[2] = 0
    near(w, { { 1, 2 }, { 0, 0 } })
    near(row, { 3, 4 })
  end)

  it("a write into a slice view of a Variable under a tape is caught as an in-place write", function()
    local w = mg.Variable(f32 { 1, 2, 3 })
    local tape = mg.GradientTape()
    local l = mg.sum(w * w)
    tape:stop()
    w:slice { { 1, 2 } }[1] = 50
    fails(function() return tape:gradient(l, w) end, "in-place")
  end)
end)

describe("t[i] = x inside mg.func", function()
  it("on a symbolic tensor is an error that says what to do instead", function()
    local f = mg.func(function(z) z[1] = 5; return z * 2 end)
    fails(function() return f(f32 { 1, 2 }) end, "index assignment", "not a buffer", "mg.TensorArray",
      "mg.Variable")
  end)

  it("on a Variable is a functional update run in order, like eager", function()
    local function body(v, a)
      v[2] = a
      v[-1] = v[-1] * 2
      return v:read() + 0
    end
    local ve = mg.Variable(f32 { { 1, 2 }, { 3, 4 } })
    local vs = mg.Variable(f32 { { 1, 2 }, { 3, 4 } })
    local f = mg.func(function(a) return body(vs, a) end)
    local a = f32 { 7, 8 }
    near(body(ve, a), { { 1, 2 }, { 14, 16 } })
    near(f(a), { { 1, 2 }, { 14, 16 } })
    near(vs, ve)
    near(f(f32 { 1, 1 }), { { 1, 2 }, { 2, 2 } })
    fails(function() return mg.func(function() vs[3] = 1; return vs:read() end)() end, "out of range")
    fails(function() return mg.func(function() vs[1] = f32 { 1, 2, 3 }; return vs:read() end)() end,
      "assign", "(3)")
  end)

  it("a staged row write of a Variable cuts the gradient as assign does (TensorFlow's rule), eager and staged", function()
    local v = mg.Variable(f32 { { 1, 2 }, { 3, 4 } })
    local f = mg.func(function(a)
      v[1] = a * 3
      return mg.sum(v:read() * v:read())
    end)
    local a = f32 { 1, 2 }
    local tape = mg.GradientTape()
    tape:watch(a)
    local y = f(a)
    tape:stop()
    near(y, 9 + 36 + 9 + 16)
    assert.is_nil(tape:gradient(y, a))   -- TF: a Variable's value after assign has no gradient to the assigned value
  end)
end)
