-- staging_backward_spec.lua — a GradientTape around a call of a staged
-- function: the call runs a forward graph that also returns what the
-- gradient needs, and is one step on the tape whose backward is a backward
-- graph; the pair is traced once per concrete function and set of tracked
-- sources (higher order uses a rematerialising backward function). Each case compares
-- the gradients with (a) the function run eagerly under the tape and (b) the
-- node-by-node path (every op of the graph recorded; func.staged_backward =
-- false), and counts the traces.
local mg = require("moongrad")
local func = require("moongrad.func")
local H = require("tests.spec.helpers")
local near, fails = H.near, H.fails
local unpack = table.unpack or unpack

local function flat(t) return mg.reshape(t, { -1 }):totable() end

-- Gradients of run(call) with respect to sources, where call is fn staged
-- (mode "graph": the backward graph; "nodes": node by node) or fn itself
-- ("eager"). run(call, tape) returns the targets; watch: tensors to watch.
local function grads(mode, fn, staged, run, sources, watch)
  local call = fn
  if mode ~= "eager" then call = staged end
  local prev = func.staged_backward
  func.staged_backward = mode ~= "nodes"
  local ok, res = pcall(function()
    local tape = mg.GradientTape()
    for _, w in ipairs(watch or {}) do tape:watch(w) end
    local targets = run(call, tape)
    tape:stop()
    return tape:gradient(targets, sources)
  end)
  func.staged_backward = prev
  if not ok then error(res, 0) end
  return res
end

-- Checks that the three ways give the same gradients (nil where eager has
-- nil); returns the staged function's gradients.
local function same_three(fn, run, sources, watch, tol)
  local staged = mg.func(fn)
  local e = grads("eager", fn, staged, run, sources, watch)
  local n = grads("nodes", fn, staged, run, sources, watch)
  local g = grads("graph", fn, staged, run, sources, watch)
  for i = 1, #sources do
    if e[i] == nil then
      assert.is_nil(n[i], "node by node: source " .. i)
      assert.is_nil(g[i], "backward graph: source " .. i)
    else
      near(flat(n[i]), flat(e[i]), tol or 1e-5, "node by node: source " .. i)
      near(flat(g[i]), flat(e[i]), tol or 1e-5, "backward graph: source " .. i)
    end
  end
  return g, staged
end

local function normal(shape, seed) return mg.normal(shape, 0, 1, nil, seed) end

describe("a tape around a call of a staged function", function()
  -- the backward graph is the default (mg.config.staged_backward(false) turns it off)
  before_each(function() func.staged_backward = nil end)
  after_each(function() func.staged_backward = nil end)
  it("differentiates an MLP with captured Variables, tracing the backward once", function()
    local W1, b1 = mg.Variable(normal({ 6, 5 }, 1) * 0.5), mg.Variable(mg.full({ 5 }, 0.1))
    local W2, b2 = mg.Variable(normal({ 5, 3 }, 2) * 0.5), mg.Variable(mg.full({ 3 }, -0.2))
    local function mlp(x)
      local h = mg.relu(mg.matmul(x, W1) + b1)
      return mg.mean(mg.tanh(mg.matmul(h, W2) + b2))
    end
    local x = normal({ 4, 6 }, 3)
    local _, staged = same_three(mlp, function(f) return f(x) end, { x, W1, b1, W2, b2 }, { x })
    local cf = staged:concrete(x)
    assert.are.equal(1, cf:backward_trace_count())
    for i = 1, 10 do  -- gradients for the Variables only: one more backward function, traced once  -- steady state: no retracing of either function
      local xi = normal({ 4, 6 }, 10 + i)
      local tape = mg.GradientTape()
      local y = staged(xi)
      tape:stop()
      local g = tape:gradient(y, { W1, W2 })
      local t2 = mg.GradientTape()
      local y2 = mlp(xi)
      t2:stop()
      local e = t2:gradient(y2, { W1, W2 })
      near(flat(g[1]), flat(e[1]), 1e-5)
      near(flat(g[2]), flat(e[2]), 1e-5)
    end
    assert.are.equal(1, staged:trace_count())
    assert.are.equal(2, cf:backward_trace_count())
    -- the backward graph does not recompute the forward: no relu, tanh or forward matmul in it;
    -- it reads what the forward graph saved (tanh's output, relu's mask, the Variables' values)
    local pairs_ = cf:gradient_graphs()
    assert.are.equal(2, #pairs_)
    for _, p in ipairs(pairs_) do
      local ops = {}
      for _, n in ipairs(p.backward:nodes()) do ops[n.op] = (ops[n.op] or 0) + 1 end
      assert.is_nil(ops.relu, p.sources)
      assert.is_nil(ops.tanh, p.sources)
      assert.is_nil(ops.read, p.sources)
      local fops = {}
      for _, n in ipairs(p.forward:nodes()) do fops[n.op] = (fops[n.op] or 0) + 1 end
      assert.are.equal(2, fops.matmul, p.sources)
      assert.are.equal(1, fops.tanh, p.sources)
    end
  end)

  it("differentiates at the Variables' values of the call when they change before tape:gradient", function()
    local V = mg.Variable(H.f32({ 1, 2, 3 }))
    local function f(x) return mg.sum(x * V * V) end
    local staged = mg.func(f)
    local x = H.f32({ 1, 1, 2 })
    for _, mode in ipairs({ "eager", "nodes", "graph" }) do
      V:assign(H.f32({ 1, 2, 3 }))
      func.staged_backward = mode ~= "nodes"
      local tape = mg.GradientTape()
      tape:watch(x)
      local y = (mode == "eager" and f or staged)(x)
      tape:stop()
      V:assign(H.f32({ 10, 10, 10 }))   -- after the call, before the gradient
      local g = tape:gradient(y, { x, V })
      func.staged_backward = nil
      near(flat(g[1]), { 1, 4, 9 }, 1e-6, mode .. ": d/dx = V*V at the call")
      near(flat(g[2]), { 2, 4, 12 }, 1e-6, mode .. ": d/dV = 2*x*V at the call")
    end
  end)

  it("handles several inputs and outputs, with gradients for some outputs only", function()
    local function f(a, b)
      return a * b, mg.sum(mg.exp(a)) + mg.sum(b * b), mg.argmax(a, 1)
    end
    local a, b = normal({ 3, 2 }, 4), normal({ 3, 2 }, 5)
    same_three(f, function(g)
      local p, s = g(a, b)
      return { p, s }
    end, { a, b }, { a, b })
    -- only the second output reaches the target: the first gets a zero upstream
    same_three(f, function(g)
      local _, s = g(a, b)
      return s * 2
    end, { a, b }, { a, b })
  end)

  it("differentiates through staged cond and while_loop inside", function()
    local W = mg.Variable(normal({ 3, 3 }, 6) * 0.3)
    local function f(x, n)
      local y = mg.cond(mg.greater(mg.sum(x), 0), function() return x * 2 end, function() return mg.sin(x) end)
      local r = mg.while_loop(function(i) return mg.less(i, n) end, function(i, acc)
        return i + 1, mg.tanh(mg.matmul(acc, W))
      end, { mg.tensor(0, "int64"), y })
      return mg.sum(r[2])
    end
    local n = mg.tensor(3, "int64")
    for _, seed in ipairs({ 7, 8 }) do
      local x = normal({ 2, 3 }, seed)
      same_three(f, function(g) return g(x, n) end, { x, W }, { x }, 1e-4)
    end
  end)

  it("gives nil for unconnected inputs and none for int inputs", function()
    local function f(x, unused, idx)
      return mg.sum(mg.take(x, idx, 1) * 3)
    end
    local x, u = normal({ 4, 2 }, 9), normal({ 2 }, 10)
    local idx = mg.tensor({ 1, 3, 3 }, "int64")
    local g, staged = same_three(f, function(s) return s(x, u, idx) end, { x, u }, { x, u })
    assert.is_nil(g[2])
    near(flat(g[1]), { 3, 3, 0, 0, 6, 6, 0, 0 })
    assert.are.equal(1, staged:concrete(x, u, idx):backward_trace_count())
  end)

  it("serves a persistent tape's gradient called twice", function()
    local V = mg.Variable(normal({ 3 }, 11))
    local staged = mg.func(function(x) return mg.sum(x * x * V), mg.sum(V) end)
    local x = normal({ 3 }, 12)
    local tape = mg.GradientTape({ persistent = true })
    tape:watch(x)
    local y, z = staged(x)
    tape:stop()
    local g1 = tape:gradient(y, { x, V })
    local g2 = tape:gradient(z, { x, V })
    local g3 = tape:gradient(y, x)
    near(flat(g1[1]), flat(x * V * 2))
    near(flat(g1[2]), flat(x * x))
    assert.is_nil(g2[1])
    near(flat(g2[2]), { 1, 1, 1 })
    near(flat(g3), flat(x * V * 2))
    -- one forward/backward pair for the sources the tape tracked at the call ({x, V}) serves every
    -- gradient of it, {x} alone included (the call saved what they need)
    assert.are.equal(1, staged:concrete(x):backward_trace_count())
    tape:gradient(y, { x, V })
    assert.are.equal(1, staged:concrete(x):backward_trace_count())
  end)

  it("gives second-order gradients (a tape around a tape around the call)", function()
    local function f(x) return mg.sum(x * x * x) end
    local x = H.f32({ 1, -2, 0.5 })
    for _, mode in ipairs({ "eager", "nodes", "graph" }) do
      local staged = mg.func(f)
      func.staged_backward = mode ~= "nodes"
      local call = mode == "eager" and f or staged
      local ok, err = pcall(function()
        for _ = 1, 3 do
          local outer = mg.GradientTape()
          outer:watch(x)
          local inner = mg.GradientTape()
          inner:watch(x)
          local y = call(x)
          inner:stop()
          local g = inner:gradient(y, x)
          local s = mg.sum(g)
          outer:stop()
          near(flat(g), { 3, 12, 0.75 }, 1e-5, mode .. " first order")
          near(flat(outer:gradient(s, x)), { 6, -12, 3 }, 1e-5, mode .. " second order")
        end
      end)
      func.staged_backward = true
      assert(ok, err)
      if mode == "graph" then
        -- the forward/backward pair, and (the outer tape tracks x while the inner one takes its
        -- gradient) the rematerialising backward function, each traced once
        local cf = staged:concrete(x)
        assert.are.equal(2, cf:backward_trace_count())
        local _, bwd = next(cf.bwd)
        assert.are.equal(1, bwd:concrete(x, H.f32(1)):backward_trace_count())  -- the backward's backward
        assert.are.equal(3, staged:backward_trace_count())  -- at every order
      end
    end
  end)

  it("refuses a higher-order gradient when a Variable changed after the call (it would re-read it)", function()
    local V = mg.Variable(H.f32({ 1, 2 }), { name = "scale" })
    local staged = mg.func(function(x) return mg.sum(x * x * V) end)
    local x = H.f32({ 1, 1 })
    for _, change in ipairs({ false, true }) do
      V:assign(H.f32({ 1, 2 }))
      local outer = mg.GradientTape()
      outer:watch(x)
      local inner = mg.GradientTape()
      inner:watch(x)
      local y = staged(x)
      inner:stop()
      if change then V:assign(H.f32({ 5, 5 })) end
      local ok, g = pcall(function() return inner:gradient(y, x) end)
      local s = ok and mg.sum(g)
      outer:stop()
      if change then
        assert.is_false(ok)
        assert.truthy(tostring(g):find("a Variable it reads (float32 (2)) was assigned after the call and before this gradient", 1, true),
          tostring(g))
      else
        assert(ok, g)
        near(flat(g), { 2, 4 })
        near(flat(outer:gradient(s, x)), { 2, 4 })
      end
    end
  end)

  it("serves mg.hessian and tape:jacobian (the backward called with many seeds)", function()
    local function f(x) return mg.sum(x * x * x) end
    local function h(x) return mg.sin(x) * 2 end
    local x = H.f32({ 1, -2, 0.5 })
    local sf, sh = mg.func(f), mg.func(h)
    near(flat(mg.hessian(sf)(x)), flat(mg.hessian(f)(x)), 1e-5)
    local tape = mg.GradientTape({ persistent = true })
    tape:watch(x)
    local y = sh(x)
    tape:stop()
    near(flat(tape:jacobian(y, x)), flat(mg.eye(3) * mg.unsqueeze(mg.cos(x) * 2, 1)), 1e-5)
    assert.are.equal(1, sh:backward_trace_count())
    assert.is_true(sf:backward_trace_count() >= 1)
  end)

  it("takes nested argument tables and Lua values", function()
    local function f(p, scale) return mg.sum(p.w * p.list[1]) * scale end
    local w, v = normal({ 2 }, 13), normal({ 2 }, 14)
    local g, staged = same_three(f, function(s) return s({ w = w, list = { v } }, 2.5) end, { w, v }, { w, v })
    near(flat(g[1]), flat(v * 2.5))
    assert.are.equal(1, staged:trace_count())
  end)

  it("falls back to recording node by node when the function has effects", function()
    local counter = mg.Variable(mg.tensor(0, "float32"))
    local calls = 0
    local cases = {
      assign = function(x) counter:assign_add(1); return mg.sum(x * x) end,
      random = function(x) return mg.sum(x * x + mg.uniform({ 3 }, 0, 1e-9, nil, 1) * 0) end,
      lua = function(x)
        local c = mg.lua_function(function(t) calls = calls + 1; return t end, { x }, { { dtype = "float32", shape = { 3 } } })
        return mg.sum(x * x) + mg.sum(mg.stop_gradient(c)) * 0
      end,
    }
    local x = H.f32({ 1, 2, 3 })
    for name, fn in pairs(cases) do
      local staged = mg.func(fn)
      for _ = 1, 2 do
        local tape = mg.GradientTape()
        tape:watch(x)
        local y = staged(x)
        tape:stop()
        near(flat(tape:gradient(y, x)), { 2, 4, 6 }, 1e-5, name)
      end
      assert.are.equal(0, staged:concrete(x):backward_trace_count(), name)
    end
    near(counter:item(), 2)   -- each call assigned once: nothing ran again for the gradient
    assert.are.equal(2, calls)
  end)

  it("records node by node a function returning an argument as is or one tensor twice", function()
    local function f(x, y) return x, mg.sum(x * 2), y, y end
    local x, y = H.f32({ 1, 2 }), H.f32({ 3, 4 })
    local g, staged = same_three(f, function(s)
      local a, b, c, d = s(x, y)
      return { mg.sum(a * 3) + b + mg.sum(c), d }
    end, { x, y }, { x, y })
    near(flat(g[1]), { 5, 5 })
    near(flat(g[2]), { 2, 2 })
    -- the forward/backward pair is traced, then the outputs are found not to be fresh
    assert.are.equal(1, staged:concrete(x, y):backward_trace_count())
    local gg = staged:concrete(x, y):gradient_graphs()
    assert.are.equal(1, #gg)
    assert.is_nil(gg[1].forward)
    assert.truthy(gg[1].why:find("an output is an argument", 1, true))
  end)

  it("runs a call the tape does not track the plain way", function()
    local staged = mg.func(function(x) return mg.sum(x * 2) end)
    local x, other = H.f32({ 1, 2 }), H.f32({ 3 })
    local tape = mg.GradientTape()
    tape:watch(other)
    local y = staged(x)
    tape:stop()
    assert.is_nil(tape:gradient(y, { other })[1])
    assert.are.equal(0, staged:concrete(x):backward_trace_count())
  end)

  it("reports errors of the backward with the function's name", function()
    local staged = mg.func(function(x) return x * 2 end, { name = "double" })
    local tape = mg.GradientTape()
    local x = H.f32({ 1, 2 })
    tape:watch(x)
    local y = staged(x)
    tape:stop()
    fails(function() tape:gradient(y, x, H.f32({ 1, 2, 3 })) end, "double", "output 1", "(3)", "(2)")
  end)
end)
