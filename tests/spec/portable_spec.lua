-- portable_spec.lua — what must behave the same under Lua 5.4 and LuaJIT,
-- where the two differ underneath (doc/luajit.md):
--   * globals a staged function reads are guarded: Lua 5.4 reaches them
--     through the function's _ENV upvalue, LuaJIT (Lua 5.1 rules) through
--     its environment, getfenv(f); either way a changed global retraces,
--     also for a function loaded with its own environment table;
--   * the dtype of a tensor made from Lua numbers: Lua 5.4 has integers and
--     floats, LuaJIT one number type, where a number with no fraction counts
--     as an integer (int64), as mg.tensor, weak scalars, staged loop/cond
--     values and AutoGraph all count it; a Variable made from a bare number
--     is float32 there (it is usually a trainable parameter).
-- tests/luajit/run.lua runs this file under LuaJIT too.

local mg = require "moongrad"
local h = require "tests.spec.helpers"
local near, f32 = h.near, h.f32

local LUAJIT = rawget(_G, "jit") ~= nil

describe("staged functions guard the globals they read", function()
  it("a changed global of the spec file retraces and its new value is used", function()
    PORTABLE_SPEC_SCALE = 2
    local f = mg.func(function(x) return x * PORTABLE_SPEC_SCALE end)
    near(f(f32{1, 2}), { 2, 4 })
    near(f(f32{1, 2}), { 2, 4 })
    assert.equal(1, f:trace_count())
    PORTABLE_SPEC_SCALE = 5
    near(f(f32{1, 2}), { 5, 10 })
    assert.equal(2, f:trace_count())
    PORTABLE_SPEC_SCALE = nil
  end)

  it("a function loaded with its own environment: changes in that table retrace", function()
    local env = { mg = mg, offset = 100 }
    local f = load("return function(x) return x + offset end", "=portable", "t", env)()
    local sf = mg.func(f, { autograph = false })
    near(sf(f32{1}), { 101 })
    env.offset = 7
    near(sf(f32{1}), { 8 })
    assert.equal(2, sf:trace_count())
    near(sf(f32{1}), { 8 })
    assert.equal(2, sf:trace_count())     -- unchanged: the trace is reused
  end)

  it("the same with AutoGraph: the converted function reads the original's environment", function()
    local env = { mg = mg, limit = 0 }
    local f = load([[return function(x)
      if mg.sum(x) > limit then return x * 2 end
      return x
    end]], nil, "t", env)()   -- no chunk name: AutoGraph reads the source from the string
    local sf = mg.func(f)
    near(sf(f32{1}), { 2 })
    env.limit = 10
    near(sf(f32{1}), { 1 })
    assert.equal(2, sf:trace_count())
  end)

  it("a global the trace itself writes is state, not a guard", function()
    local env = { mg = mg, traced = 0 }
    local f = load("return function(x) traced = traced + 1; return x + 1 end", "=portable_state", "t", env)()
    local sf = mg.func(f, { autograph = false })
    sf(f32{1}); sf(f32{1}); sf(f32{1})
    assert.equal(1, sf:trace_count())
    assert.equal(1, env.traced)
  end)

  it("tensors and tables in globals are not guarded (they are read when the graph runs or by reference)", function()
    local env = { mg = mg, w = f32{1} }
    local f = load("return function(x) return x + w end", "=portable_tensor", "t", env)()
    local sf = mg.func(f, { autograph = false })
    near(sf(f32{1}), { 2 })
    env.w = f32{5}
    sf(f32{1})
    assert.equal(1, sf:trace_count())
  end)

  it("the environment is restored after the trace, also when it fails", function()
    local env = { mg = mg, k = 1 }
    local f = load("return function(x) if k == 2 then error('boom') end return x * k end", "=portable_err", "t", env)()
    local sf = mg.func(f, { autograph = false })
    near(sf(f32{3}), { 3 })
    env.k = 2
    assert.has_error(function() sf(f32{3}) end)
    env.k = 4
    near(sf(f32{3}), { 12 })
    assert.equal(16, f(4))                   -- plain calls still read env
    if LUAJIT then assert.equal(env, getfenv(f)) end
  end)
end)

describe("dtypes of tensors made from Lua numbers", function()
  it("integers give int64 and fractions float32, in both interpreters", function()
    assert.equal("int64", mg.tensor(3).dtype)
    assert.equal("int64", mg.tensor({ 1, 2 }).dtype)
    assert.equal("float32", mg.tensor(2.5).dtype)
    assert.equal("float32", mg.tensor({ 1, 2.5 }).dtype)
    assert.equal("int64", mg.full({ 2 }, 7).dtype)
    assert.equal("int64", mg.arange(1, 4).dtype)
    assert.equal("float32", mg.arange(1, 2, 0.5).dtype)
    assert.equal("int64", (mg.tensor({ 1, 2 }, mg.int64) * 3).dtype)   -- a weak integer keeps int64
    assert.equal("float32", (mg.tensor({ 1, 2 }, mg.int64) * 0.5).dtype)
  end)

  it("a number with no fraction: float32 under Lua 5.4 (3.0), int64 under LuaJIT", function()
    assert.equal(LUAJIT and "int64" or "float32", mg.tensor(3.0).dtype)
    assert.equal(LUAJIT and "int64" or "float32", mg.tensor({ 1.0, 2.0 }).dtype)
    assert.equal("float32", mg.tensor(3.0, mg.float32).dtype)          -- the portable spelling
  end)

  it("LuaJIT's integers span int64's range (beyond 2^53: the double's value)", function()
    if LUAJIT then
      assert.equal("int64", mg.tensor(2 ^ 60).dtype)
      assert.equal(2 ^ 60, mg.tensor(2 ^ 60):item())
      assert.equal("int64", mg.full({ 1 }, 2 ^ 60).dtype)            -- mg.full counts as mg.tensor does
      assert.equal("float32", mg.tensor(2 ^ 63).dtype)               -- out of int64's range
    else
      assert.equal("float32", mg.tensor(2 ^ 60).dtype)               -- 2^60 is a float in Lua 5.4
      assert.equal("int64", mg.tensor(math.tointeger(2 ^ 60)).dtype)
    end
  end)

  it("numbers returned by staged cond/while bodies follow the same rule", function()
    local f = mg.func(function(n)
      local r = mg.while_loop(function(i, s) return mg.less(i, n) end, function(i, s) return i + 1, s + i end, { 0, 0 })
      return r[1], r[2]
    end)
    local i, s = f(mg.tensor(4))
    assert.equal("int64", i.dtype)
    assert.equal("int64", s.dtype)
    assert.equal(4, i:item())
    assert.equal(6, s:item())
    local g = mg.func(function(x)
      return mg.cond(mg.sum(x) > 0, function() return 1 end, function() return 2 end)
    end)
    assert.equal("int64", g(f32{1}).dtype)
    assert.equal(2, g(f32{-1}):item())
    local c = mg.func(function(x)
      return mg.cond(mg.sum(x) > 0, function() return 0.5 end, function() return 1.5 end)
    end)
    assert.equal("float32", c(f32{1}).dtype)
  end)

  it("AutoGraph loops: a counter starting at 0 stays int64", function()
    local f = mg.func(function(n)
      local i = 0
      while i < n do i = i + 1 end
      return i
    end)
    local r = f(mg.tensor(5))
    assert.equal("int64", r.dtype)
    assert.equal(5, r:item())
  end)

  it("a Variable from a bare number: int64/float32 by kind under Lua 5.4, float32 under LuaJIT", function()
    assert.equal(LUAJIT and "float32" or "int64", mg.Variable(3).dtype)
    assert.equal("float32", mg.Variable(3.5).dtype)
    assert.equal("int64", mg.Variable(3, { dtype = mg.int64 }).dtype)   -- the portable spelling of a counter
    assert.equal("int64", mg.Variable(mg.tensor(3)).dtype)
  end)
end)
