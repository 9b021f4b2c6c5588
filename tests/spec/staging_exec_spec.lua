-- staging_exec_spec.lua — the executor's compiled programs (core/exec.c).
--
-- A static graph that has run once is compiled into a flat list of kernel
-- calls whose intermediates share buffers. These specs check what a user
-- could notice if that went wrong: every later call computes from its own
-- inputs, results the caller still holds are never overwritten, Variables
-- are read at each call, a tape around the call still sees every op, inputs
-- laid out differently from the trace (a transposed view into a fused node)
-- still give the right answer, constants cast once stay right, loops run
-- their bodies through programs, and a chain of 100 matmuls keeps a few
-- buffers alive, not 100.
--
-- Portable Lua (runs under Lua 5.4 and LuaJIT).

local mg = require "moongrad"
local core = require "moongrad.core"
local h = require "tests.spec.helpers"
local near = h.near

local function chain(x, w)
  local y = x
  for _ = 1, 10 do y = mg.tanh(mg.matmul(y, w)) * 0.5 + y end
  return y:sum(), y
end

local function rnd(r, c, seed)
  local t = {}
  for i = 1, r do
    t[i] = {}
    for j = 1, c do t[i][j] = math.sin(i * 7 + j * 3 + seed) end
  end
  return mg.tensor(t, mg.float32)
end

describe("compiled programs of static graphs", function()
  it("compute every call from that call's inputs", function()
    local f = mg.func(chain)
    local w = rnd(4, 4, 1)
    for k = 1, 6 do  -- the first call traces and primes, the second compiles, the rest run the program
      local x = rnd(3, 4, k)
      local s, y = f(x, w)
      local es, ey = chain(x, w)
      near(s, es:item(), 1e-5)
      near(y, ey:totable(), 1e-5)
    end
    assert.equal(1, f:trace_count())
  end)

  it("never overwrite a result the caller still holds", function()
    local f = mg.func(function(x) return mg.exp(x) * 2 + 1 end)
    local held = {}
    for k = 1, 5 do held[k] = f(mg.tensor({ k, -k }, mg.float32)) end
    for k = 1, 5 do near(held[k], { 2 * math.exp(k) + 1, 2 * math.exp(-k) + 1 }, 1e-5) end
  end)

  it("read Variables at each call", function()
    local v = mg.Variable(mg.tensor({ 1, 2 }, mg.float32))
    local f = mg.func(function(x) return x * v + v end)
    local x = mg.tensor({ 3, 4 }, mg.float32)
    near(f(x), { 4, 10 })
    near(f(x), { 4, 10 })
    v:assign(mg.tensor({ 10, 20 }, mg.float32))
    near(f(x), { 40, 100 })
    v:assign_add(mg.tensor({ 1, 1 }, mg.float32))
    near(f(x), { 44, 105 })
  end)

  it("let a tape around the call see every op", function()
    local f = mg.func(function(x) return mg.sum(mg.tanh(x) * x) end)
    local x = mg.tensor({ 0.5, -1 }, mg.float32)
    for _ = 1, 3 do f(x) end  -- compiled by now
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = f(x)
    tape:stop()
    local g = tape:gradient(y, x)
    local function d(a) local t = math.tanh(a) return t + a * (1 - t * t) end
    near(g, { d(0.5), d(-1) }, 1e-5)
  end)

  it("fall back for inputs not laid out as traced (a transposed view into a fused chain)", function()
    local f = mg.func(function(x) return mg.relu(x * 3 - 1) end)
    local a = mg.tensor({ { 1, 2 }, { 3, 4 } }, mg.float32)
    for _ = 1, 3 do near(f(a), { { 2, 5 }, { 8, 11 } }) end
    local t = mg.tensor({ { 1, 3 }, { 2, 4 } }, mg.float32):transpose()
    assert.is_false(t:is_contiguous())
    near(f(t), { { 2, 5 }, { 8, 11 } })
    near(f(a * 0), { { 0, 0 }, { 0, 0 } })
  end)

  it("cast constants once and keep them right", function()
    local one = mg.tensor(1)  -- int64, met by float32
    local f = mg.func(function(x) return (x + one) * 0.5 end)
    for k = 1, 4 do near(f(mg.tensor({ k }, mg.float32)), { (k + 1) * 0.5 }) end
  end)

  it("run loop bodies through programs", function()
    local w = mg.tensor({ { 0.6, -0.8 }, { 0.8, 0.6 } }, mg.float32)
    local f = mg.func(function(x)
      return mg.while_loop(function(i, _) return mg.less(i, 50) end,
        function(i, y) return i + 1, mg.matmul(y, w) end, { mg.tensor(0), x })[2]
    end)
    local x = mg.tensor({ { 1, 0 } }, mg.float32)
    local ey = x
    for _ = 1, 50 do ey = mg.matmul(ey, w) end
    for _ = 1, 3 do near(f(x), ey:totable(), 1e-4) end
  end)

  it("share buffers between intermediates: 100 chained matmuls keep a few alive", function()
    local w = mg.eye(64, mg.float32) * 0.5
    local f = mg.func(function(x)
      local y = x
      for _ = 1, 100 do y = mg.matmul(y, w) * 2 end
      return y
    end)
    local x = mg.ones({ 64, 64 }, mg.float32)
    collectgarbage()
    local base = core.bytes_live()
    for _ = 1, 3 do near(f(x):sum(), 64 * 64, 1e-4) end
    collectgarbage()
    collectgarbage()
    local kept = core.bytes_live() - base
    local one = 64 * 64 * 4
    -- 200 intermediates of one buffer each without sharing; with it: two
    -- shared ones, the output and its spare, and the casts of constants
    assert.is_true(kept <= 8 * one, ("%d bytes kept (%d buffers)"):format(kept, kept / one))
  end)
end)
