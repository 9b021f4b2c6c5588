-- autodiff_spec.lua — the GradientTape and everything around it, as a Lua
-- user sees it: watch, gradient with nested sources, output_gradients,
-- unconnected_gradients, persistence, jacobian / batch_jacobian,
-- stop_recording, record(fn), start/stop, <close>, nested tapes, Variables
-- (assign, copy-on-write, trainable, watch_accessed_variables),
-- stop_gradient, custom_gradient, grad / value_and_grad, hessian, jvp, and
-- the error messages. TF 2's documented examples are checked with TF's
-- numbers; the rest against hand-computed values (noted next to each).
--
-- Portable Lua: the one 5.4-only construct (<close>) sits in a load() string,
-- so the file parses under LuaJIT too.

local mg = require "moongrad"
local unpack = table.unpack or unpack

local h = require "tests.spec.helpers"
local fails, near = h.fails, h.near

local f32 = h.f32

describe("GradientTape: TF 2's examples", function()
  it("watches a constant: d(x*x)/dx at 3 is 6", function()
    local x = f32(3.0)
    local g = mg.GradientTape()
    g:watch(x)
    local y = x * x
    g:stop()
    local dy_dx = g:gradient(y, x)
    assert.equal("float32", dy_dx.dtype)
    assert.same({}, dy_dx.shape)
    near(dy_dx, 6)
  end)

  it("watches a Variable automatically: d(x^2)/dx at 3 is 6", function()
    local x = mg.Variable(3.0)
    local tape = mg.GradientTape()
    local y = x ^ 2
    near(tape:gradient(y, x), 6)
  end)

  it("gives the gradient of a dense layer's loss for w and b", function()
    -- y = x @ w + b, loss = mean(y^2): dloss/dy = y (two elements), so
    -- dloss/dw[i][j] = x[i] * y[j] and dloss/db = y.
    local w = mg.Variable(f32{{0.1, -0.2}, {0.3, 0.4}, {-0.5, 0.6}}, {name = "w"})
    local b = mg.Variable(mg.zeros{2}, {name = "b"})
    local x = f32{{1, 2, 3}}
    local tape = mg.GradientTape{persistent = true}
    local y = mg.matmul(x, w) + b
    local loss = mg.mean(y ^ 2)
    tape:stop()
    local yv = { 1 * 0.1 + 2 * 0.3 + 3 * -0.5, 1 * -0.2 + 2 * 0.4 + 3 * 0.6 }  -- -0.8, 2.4
    local dl_dw, dl_db = unpack(tape:gradient(loss, { w, b }))
    near(dl_dw, { { yv[1], yv[2] }, { 2 * yv[1], 2 * yv[2] }, { 3 * yv[1], 3 * yv[2] } })
    near(dl_db, yv)
    -- the same with a dictionary of variables: the same keys come back
    local grad = tape:gradient(loss, { w = w, b = b })
    near(grad.b, yv)
    near(grad.w, dl_dw:totable())
  end)

  it("persistent tape: several gradients of one recording", function()
    local x = f32{1, 3}
    local tape = mg.GradientTape{persistent = true}
    tape:watch(x)
    local y = x * x
    local z = y * y
    tape:stop()
    near(tape:gradient(z, x), { 4, 108 })    -- 4 x^3
    near(tape:gradient(y, x), { 2, 6 })      -- 2 x
    near(tape:gradient(z, x), { 4, 108 })    -- again
  end)

  it("sums a non-scalar target: d(x * [3, 4])/dx = 7", function()
    local x = mg.Variable(2.0)
    local tape = mg.GradientTape()
    local y = x * f32{3, 4}
    near(tape:gradient(y, x), 7)
  end)

  it("sums the targets of a table: y0 = x^2, y1 = 1/x at 2 gives 3.75", function()
    local x = mg.Variable(2.0)
    local tape = mg.GradientTape()
    local y0 = x ^ 2
    local y1 = 1 / x
    near(tape:gradient({ y0 = y0, y1 = y1 }, x), 3.75)
  end)

  it("non-scalar target with a vector source: d sum(x^2) = 2x", function()
    local x = f32{{1, -2}, {3, 0.5}}
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = x * x
    near(tape:gradient(y, x), { { 2, -4 }, { 6, 1 } })
  end)

  it("unconnected_gradients='zero' gives zeros shaped like the source", function()
    local x = mg.Variable(f32{2, 2})
    local y = mg.Variable(3.0)
    local tape = mg.GradientTape{persistent = true}
    local z = y ^ 2
    tape:stop()
    local g = tape:gradient(z, x, { unconnected_gradients = "zero" })
    assert.same({ 2 }, g.shape)
    assert.equal("float32", g.dtype)
    near(g, { 0, 0 })
    assert.is_nil(tape:gradient(z, x))                       -- "none", the default
    assert.is_nil(tape:gradient(z, x, { unconnected_gradients = "none" }))
    near(tape:gradient(z, x, nil, "zero"), { 0, 0 })         -- the positional form
  end)

  it("jacobian of x*x at [1, 2] is [[2, 0], [0, 4]]", function()
    local g = mg.GradientTape()
    local x = f32{1, 2}
    g:watch(x)
    local y = x * x
    g:stop()
    local j = g:jacobian(y, x)
    assert.same({ 2, 2 }, j.shape)
    near(j, { { 2, 0 }, { 0, 4 } })
  end)

  it("batch_jacobian of x*x at [[1, 2], [3, 4]]", function()
    local g = mg.GradientTape()
    local x = f32{{1, 2}, {3, 4}}
    g:watch(x)
    local y = x * x
    g:stop()
    local bj = g:batch_jacobian(y, x)
    assert.same({ 2, 2, 2 }, bj.shape)
    near(bj, { { { 2, 0 }, { 0, 4 } }, { { 6, 0 }, { 0, 8 } } })
  end)

  it("nested tapes: second derivative of x*x is 2 (both watch x)", function()
    local x = f32(3.0)
    local g = mg.GradientTape()
    g:watch(x)
    local gg = mg.GradientTape()
    gg:watch(x)
    local y = x * x
    gg:stop()
    local dy_dx = gg:gradient(y, x)      -- computed while g records
    g:stop()
    near(dy_dx, 6)
    near(g:gradient(dy_dx, x), 2)
  end)

  it("nested tapes with a Variable and no watch calls", function()
    local x = mg.Variable(3.0)
    local g = mg.GradientTape()
    local gg = mg.GradientTape()
    local y = x * x
    local dy_dx = gg:gradient(y, x)      -- gg stops on its own (non-persistent)
    g:stop()
    near(dy_dx, 6)
    near(g:gradient(dy_dx, x), 2)
  end)

  it("third derivative with three tapes: x^3 at 2 gives 12, 12, 6", function()
    local x = f32(2.0)
    local t1, t2, t3 = mg.GradientTape(), mg.GradientTape(), mg.GradientTape()
    t1:watch(x); t2:watch(x); t3:watch(x)
    local y = x * x * x
    local d1 = t3:gradient(y, x)
    local d2 = t2:gradient(d1, x)
    t1:stop()
    local d3 = t1:gradient(d2, x)
    near(d1, 12); near(d2, 12); near(d3, 6)
  end)
end)

describe("tape:gradient sources and results", function()
  it("returns a nested table of the same structure as the sources", function()
    local w = mg.Variable(f32{{1, 2}})
    local a, b = mg.Variable(2.0), mg.Variable(3.0)
    local tape = mg.GradientTape()
    local l = mg.sum(w) * a * b          -- sum(w) = 3
    local g = tape:gradient(l, { w = w, layers = { a, b } })
    near(g.w, { { 6, 6 } })
    near(g.layers[1], 9)
    near(g.layers[2], 6)
    assert.is_nil(g[1])
  end)

  it("a single tensor source gives a tensor, a list gives a list", function()
    local x, y = f32{1, 2}, f32(5.0)
    local tape = mg.GradientTape{persistent = true}
    tape:watch({ x, { y } })             -- watch takes structures too
    local l = mg.sum(x) * y
    tape:stop()
    assert.is_true(mg.is_tensor(tape:gradient(l, x)))
    local g = tape:gradient(l, { x, y })
    near(g[1], { 5, 5 })
    near(g[2], 3)
  end)

  it("a source never used is nil (or zeros when asked)", function()
    local x, z = f32(1.0), f32{5, 6}
    local tape = mg.GradientTape{persistent = true}
    tape:watch(x)
    tape:watch(z)
    local y = x * 2
    tape:stop()
    assert.is_nil(tape:gradient(y, z))
    local g = tape:gradient(y, { x, z })
    near(g[1], 2)
    assert.is_nil(g[2])
    near(tape:gradient(y, { x, z }, { unconnected_gradients = "zero" })[2], { 0, 0 })
  end)

  it("a tensor that was never watched gives nil, even as an input of a recorded op (TF)", function()
    local x, c = f32(2.0), f32(5.0)
    local tape = mg.GradientTape{persistent = true}
    tape:watch(x)
    local y = x * c
    tape:stop()
    near(tape:gradient(y, x), 5)
    assert.is_nil(tape:gradient(y, c))
  end)

  it("output_gradients weight the target (positional and named)", function()
    local x = f32{1, 2}
    local tape = mg.GradientTape{persistent = true}
    tape:watch(x)
    local y = x * x
    local s = mg.sum(y)
    tape:stop()
    near(tape:gradient(y, x, { output_gradients = f32{10, 100} }), { 20, 400 })
    near(tape:gradient(y, x, f32{10, 100}), { 20, 400 })
    -- one weight per target when the target is a list
    local g = tape:gradient({ y, s }, x, { output_gradients = { f32{1, 0}, mg.tensor(0.5) } })
    near(g, { 2 + 1, 0 + 2 })
  end)

  it("gradient of the target with respect to itself is the output gradient", function()
    local x = f32{1, 2}
    local tape = mg.GradientTape{persistent = true}
    tape:watch(x)
    local y = x * 3
    tape:stop()
    near(tape:gradient(y, y), { 1, 1 })
    near(tape:gradient(y, y, f32{4, 5}), { 4, 5 })
  end)

  it("float64 stays float64 and broadcasting is summed back to the source's shape", function()
    local x = mg.tensor({ { 1 }, { 2 } }, mg.float64)   -- (2, 1)
    local b = mg.tensor({ 10, 20, 30 }, mg.float64)     -- (3)
    local tape = mg.GradientTape()
    tape:watch({ x, b })
    local y = x * b                                      -- (2, 3)
    local g = tape:gradient(y, { x, b })
    assert.equal("float64", g[1].dtype)
    assert.same({ 2, 1 }, g[1].shape)
    near(g[1], { { 60 }, { 60 } })
    assert.same({ 3 }, g[2].shape)
    near(g[2], { 3, 3, 3 })
  end)

  it("a non-contiguous (transposed) watched tensor", function()
    local base = f32{{1, 2, 3}, {4, 5, 6}}
    local x = base:transpose()                           -- (3, 2) view
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = mg.sum(x * x * f32{1, 10})
    local g = tape:gradient(y, x)
    near(g, { { 2, 80 }, { 4, 100 }, { 6, 120 } })
  end)

  it("gradients of integer outputs are nil: no gradient flows through ints", function()
    local x = f32{1.5, 2.5}
    local tape = mg.GradientTape{persistent = true}
    tape:watch(x)
    local yi = mg.cast(x, mg.int64)
    local am = mg.argmax(x)
    local cmp = mg.greater(x, 2)
    tape:stop()
    assert.equal("int64", yi.dtype)
    assert.is_nil(tape:gradient(yi, x))
    assert.is_nil(tape:gradient(am, x))
    assert.is_nil(tape:gradient(cmp, x))
    near(tape:gradient(mg.sum(yi), x, { unconnected_gradients = "zero" }), { 0, 0 })
    -- an int step in the middle cuts the path
    tape = mg.GradientTape()
    tape:watch(x)
    local back = mg.cast(mg.cast(x, mg.int32), mg.float32) * x
    near(tape:gradient(back, x), { 1, 2 })               -- only the direct path: trunc(x)
  end)

  it("stop_gradient makes a constant for the tape", function()
    local x = f32{1, 2}
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = mg.sum(x * mg.stop_gradient(x))
    near(tape:gradient(y, x), { 1, 2 })                  -- not 2x
    local z = mg.stop_gradient(x)
    near(z, { 1, 2 })
  end)
end)

describe("tape lifetime and recording control", function()
  it("a non-persistent tape answers once, then says why not", function()
    local x = f32(2.0)
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = x * x
    tape:stop()
    near(tape:gradient(y, x), 4)
    fails(function() return tape:gradient(y, x) end, "non-persistent", "only once", "persistent=true")
    fails(function() return tape:jacobian(y, x) end, "only once")
    fails(function() tape:watch(x) end, "non-persistent tape was used")
    fails(function() tape:start() end, "non-persistent", "make a new one")
  end)

  it("a non-persistent tape called while recording stops recording", function()
    local x = mg.Variable(2.0)
    local tape = mg.GradientTape()
    local y = x * x
    assert.is_true(tape:recording())
    near(tape:gradient(y, x), 4)
    assert.is_false(tape:recording())
  end)

  it("a persistent tape keeps recording across gradient calls", function()
    local x = f32(2.0)
    local tape = mg.GradientTape{persistent = true}
    tape:watch(x)
    local y = x * x
    near(tape:gradient(y, x), 4)
    assert.is_true(tape:recording())
    local z = y * x                                      -- still recorded
    tape:stop()
    near(tape:gradient(z, x), 12)
  end)

  it("records from creation; stop() and start() pause and resume", function()
    local x = f32(3.0)
    local tape = mg.GradientTape{persistent = true}
    assert.is_true(tape:recording())
    tape:watch(x)
    local a = x * x
    tape:stop()
    assert.is_false(tape:recording())
    local b = x * x                                      -- not recorded
    tape:start()
    local c = x * x * x
    tape:stop()
    near(tape:gradient(a, x), 6)
    assert.is_nil(tape:gradient(b, x))
    near(tape:gradient(c, x), 27)
  end)

  it("stop_recording(fn) returns fn's results and records nothing in it", function()
    local x = f32(2.0)
    local tape = mg.GradientTape()
    tape:watch(x)
    local b, extra = tape:stop_recording(function()
      assert.is_false(tape:recording())
      return x * x, "extra"
    end)
    assert.equal("extra", extra)
    assert.is_true(tape:recording())                    -- resumed
    local c = x * b                                      -- b = 4 is a constant
    tape:stop()
    near(tape:gradient(c, x), 4)
  end)

  it("stop_recording: a constant-only result has no gradient (TF's example)", function()
    local x = f32(3.0)
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = tape:stop_recording(function() return x * x end)
    tape:stop()
    assert.is_nil(tape:gradient(y, x))
  end)

  it("stop_recording pauses only this tape", function()
    local x = f32(3.0)
    local outer = mg.GradientTape()
    outer:watch(x)
    local inner = mg.GradientTape{persistent = true}
    inner:watch(x)
    local y = inner:stop_recording(function() return x * x end)
    inner:stop()
    outer:stop()
    assert.is_nil(inner:gradient(y, x))
    near(outer:gradient(y, x), 6)
  end)

  it("stop_recording and record pass errors on and leave the state as it was", function()
    local tape = mg.GradientTape()
    fails(function() tape:stop_recording(function() error("boom in fn") end) end, "boom in fn")
    assert.is_true(tape:recording())
    tape:stop()
    fails(function() tape:stop_recording(function() error("again") end) end, "again")
    assert.is_false(tape:recording())
    fails(function() tape:record(function() error("boom2") end) end, "boom2")
    assert.is_false(tape:recording())
  end)

  it("record(fn) records while fn runs and returns fn's results", function()
    local x = f32(2.0)
    local tape = mg.GradientTape{ record = false }
    assert.is_false(tape:recording())
    local y, n, s = tape:record(function(t)
      assert.equal(tape, t)
      assert.is_true(t:recording())
      t:watch(x)
      return x * x * x, 5, "s"
    end)
    assert.equal(5, n)
    assert.equal("s", s)
    assert.is_false(tape:recording())
    local after = x * x                                  -- not recorded
    near(tape:gradient(y, x), 12)
    assert.is_not_nil(after)
  end)
  -- <close> on a tape: in lua54_spec.lua (LuaJIT has no <close>)
end)

describe("watching", function()
  it("watch_accessed_variables=false: only explicit watches count", function()
    local a = mg.Variable(2.0)
    local tape = mg.GradientTape{watch_accessed_variables = false}
    local y = a * a
    tape:stop()
    assert.is_nil(tape:gradient(y, a))
    local t2 = mg.GradientTape{watch_accessed_variables = false}
    t2:watch(a)
    local z = a * a
    near(t2:gradient(z, a), 4)
  end)

  it("trainable=false variables are not watched", function()
    local b = mg.Variable(3.0, {trainable = false})
    assert.is_false(b.trainable)
    local tape = mg.GradientTape{persistent = true}
    local y = b * b
    tape:stop()
    assert.is_nil(tape:gradient(y, b))
    -- watched by hand they do get a gradient
    local t2 = mg.GradientTape()
    t2:watch(b)
    local z = b * b
    near(t2:gradient(z, b), 6)
  end)

  it("a trainable=false variable next to a trainable one stays without a gradient (TF)", function()
    local a = mg.Variable(2.0)
    local b = mg.Variable(3.0, {trainable = false})
    local tape = mg.GradientTape()
    local y = a * b
    local g = tape:gradient(y, { a, b })
    near(g[1], 3)
    assert.is_nil(g[2])
  end)

  it("watching an integer tensor is an error that says what to do", function()
    local tape = mg.GradientTape()
    fails(function() tape:watch(mg.tensor{1, 2}) end, "watch", "only float tensors", "int64", "cast")
    fails(function() tape:watch(mg.tensor({true}, mg.bool)) end, "watch", "bool")
    fails(function() tape:watch("x") end, "watch", "string")
    tape:stop()
  end)
end)

describe("errors of gradient()", function()
  it("an integer source", function()
    local x = f32(2.0)
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = x * x
    tape:stop()
    fails(function() return tape:gradient(y, mg.tensor{1, 2}) end,
      "gradient", "source 1", "int64", "only float tensors")
  end)

  it("a bad unconnected_gradients value", function()
    local x = f32(2.0)
    local tape = mg.GradientTape{persistent = true}
    tape:watch(x)
    local y = x * x
    tape:stop()
    fails(function() return tape:gradient(y, x, { unconnected_gradients = "zeros" }) end,
      "unconnected_gradients", '"none", "zero"', "zeros")
    fails(function() return tape:gradient(y, x, nil, "ZERO") end, "unconnected_gradients", "ZERO")
    near(tape:gradient(y, x), 4)                         -- the tape is still usable
  end)

  it("missing or malformed sources, mismatched output_gradients", function()
    local x = f32(2.0)
    local tape = mg.GradientTape{persistent = true}
    tape:watch(x)
    local y = x * x
    tape:stop()
    fails(function() return tape:gradient(y) end, "sources are missing")
    fails(function() return tape:gradient(y, { x, "a" }) end, "source.2", "string")
    fails(function() return tape:gradient(y, x, { output_gradients = { f32(1.0), f32(2.0) } }) end,
      "2 output_gradients for 1 targets")
  end)

  it("batch_jacobian needs a shared batch dimension", function()
    local x = f32{{1, 2}, {3, 4}}
    local tape = mg.GradientTape{persistent = true}
    tape:watch(x)
    local y = mg.sum(x)
    tape:stop()
    fails(function() return tape:batch_jacobian(y, x) end, "batch_jacobian", "batch")
  end)
end)

describe("jacobian and batch_jacobian", function()
  it("jacobian of a matrix-vector product is the matrix; shape y.shape .. x.shape", function()
    local A = f32{{1, 2, 3}, {4, 5, 6}}
    local x = f32{1, 1, 1}
    local tape = mg.GradientTape{persistent = true}
    tape:watch(x)
    local y = mg.matmul(A, x)
    local Y = mg.reshape(mg.matmul(A, x * x), {1, 2})   -- (1, 2) target, dY/dx = A * 2x
    tape:stop()
    near(tape:jacobian(y, x), A:totable())
    local J = tape:jacobian(Y, x)
    assert.same({ 1, 2, 3 }, J.shape)
    near(J, { { { 2, 4, 6 }, { 8, 10, 12 } } })
  end)

  it("jacobian for a table of sources gives a table of jacobians", function()
    local a, b = f32{1, 2}, f32(3.0)
    local tape = mg.GradientTape()
    tape:watch({ a, b })
    local y = a * b
    tape:stop()
    local J = tape:jacobian(y, { a = a, b = b })
    near(J.a, { { 3, 0 }, { 0, 3 } })
    near(J.b, { 1, 2 })
  end)

  it("jacobian of an unconnected source is zeros of shape y.shape .. x.shape", function()
    local x, z = f32{1, 2}, f32{1, 2, 3}
    local tape = mg.GradientTape()
    tape:watch({ x, z })
    local y = x * 2
    tape:stop()
    local J = tape:jacobian(y, z)
    assert.same({ 2, 3 }, J.shape)
    near(J, { { 0, 0, 0 }, { 0, 0, 0 } })
  end)

  it("batch_jacobian of a per-row layer: y[b] = (x[b]^2) @ W", function()
    -- dy[b,i]/dx[b,j] = 2 x[b,j] W[j,i]
    local x = f32{{1, 2}, {3, 4}, {5, 6}}
    local W = f32{{1, 2, 3}, {4, 5, 6}}
    local tape = mg.GradientTape{persistent = true}
    tape:watch(x)
    local y = mg.matmul(x * x, W)
    tape:stop()
    local bj = tape:batch_jacobian(y, x)
    assert.same({ 3, 3, 2 }, bj.shape)
    local want = {}
    local xv, Wv = x:totable(), W:totable()
    for b = 1, 3 do
      want[b] = {}
      for i = 1, 3 do want[b][i] = { 2 * xv[b][1] * Wv[1][i], 2 * xv[b][2] * Wv[2][i] } end
    end
    near(bj, want)
    -- the full jacobian's diagonal blocks are the batch jacobian
    local J = tape:jacobian(y, x)
    assert.same({ 3, 3, 3, 2 }, J.shape)
    near(J[2][3][2], want[2][3])
    near(J[2][3][1], { 0, 0 })
  end)
end)

describe("Variables", function()
  it("have a name, trainable flag and dtype; names are unique by default", function()
    local v = mg.Variable(f32{1, 2}, {name = "weights"})
    assert.equal("weights", v.name)
    assert.is_true(v.trainable)
    assert.equal("float32", v.dtype)
    assert.is_true(v:is_variable())
    local a, b = mg.Variable(1.0), mg.Variable(1.0)
    assert.is_string(a.name)
    assert.are_not.equal(a.name, b.name)
    assert.equal("float64", mg.Variable({1, 2}, {dtype = mg.float64}).dtype)
    assert.equal("float32", mg.Variable(1.5).dtype)
    -- LuaJIT cannot tell 3 from 3.0: there a Variable made from a bare number is float32 (doc/luajit.md)
    assert.equal(jit and "float32" or "int64", mg.Variable(3).dtype)
    assert.is_false(f32(1.0):is_variable())
  end)

  it("assign, assign_add, assign_sub and read", function()
    local v = mg.Variable(f32{1, 2})
    assert.equal(v, v:assign(f32{3, 4}))                 -- returns the variable
    near(v, { 3, 4 })
    v:assign_add(f32{1, 1})
    near(v, { 4, 5 })
    v:assign_sub(0.5)
    near(v, { 3.5, 4.5 })
    local r = v:read()
    assert.is_false(r:is_variable())
    near(r, { 3.5, 4.5 })
    v:assign(f32{0, 0})
    near(r, { 3.5, 4.5 })                                -- a read keeps its value (copy on write)
    near(v, { 0, 0 })
    v:assign(mg.tensor{7, 8})                            -- cast to the variable's dtype
    assert.equal("float32", v.dtype)
    near(v, { 7, 8 })
  end)

  it("work in every op like tensors", function()
    local v = mg.Variable(f32{{1, 2}, {3, 4}})
    near(v + 1, { { 2, 3 }, { 4, 5 } })
    near(mg.matmul(v, v), { { 7, 10 }, { 15, 22 } })
    near(v:sum(), 10)
    near(mg.exp(mg.Variable(0.0)), 1)
    near(v[2], { 3, 4 })
    near(v:transpose(), { { 1, 3 }, { 2, 4 } })
  end)

  it("assign errors: shape mismatch and non-variables", function()
    local v = mg.Variable(f32{1, 2})
    fails(function() v:assign(f32{1, 2, 3}) end, "assign", "(3)", "(2)")
    fails(function() mg.core.assign(f32{1, 2}, f32{1, 2}) end, "assign", "not a Variable")
  end)

  it("an assign after recording still gives the gradient at the recorded value", function()
    local v = mg.Variable(f32{1, 2})
    local tape = mg.GradientTape()
    local y = mg.sum(v * v)
    v:assign(f32{10, 20})                                -- copy-on-write: the record keeps [1, 2]
    near(tape:gradient(y, v), { 2, 4 })
    near(v, { 10, 20 })
  end)

  it("assign_add between two recorded uses: each use sees its own value", function()
    -- l = v0^2 + v1^2 with v1 = v0 + 1; assign is not differentiable (TF),
    -- so dl/dv = 2 v0 + 2 v1 = 2 + 4 at v0 = 1.
    local v = mg.Variable(1.0)
    local tape = mg.GradientTape()
    local l0 = v * v
    v:assign_add(1)
    local l1 = v * v
    near(tape:gradient(l0 + l1, v), 6)
    near(v, 2)
  end)

  it("a linear regression trained with a tape and hand-written SGD finds the solution", function()
    -- y = X @ [2, -3.4, 1.5] + 4.2 exactly; full-batch SGD on the MSE.
    local X = mg.random.normal({100, 3}, 0, 1, mg.float32, 7)
    local w_true = f32{{2}, {-3.4}, {1.5}}
    local y = mg.matmul(X, w_true) + 4.2
    local w = mg.Variable(mg.zeros{3, 1}, {name = "w"})
    local b = mg.Variable(0.0, {name = "b"})
    local loss
    for _ = 1, 300 do
      local tape = mg.GradientTape()
      loss = mg.mean(mg.square(mg.matmul(X, w) + b - y))
      local g = tape:gradient(loss, { w = w, b = b })
      w:assign_sub(g.w * 0.1)
      b:assign_sub(g.b * 0.1)
    end
    near(w, { { 2 }, { -3.4 }, { 1.5 } }, 1e-3)
    near(b, 4.2, 1e-3)
    assert.is_true(loss:item() < 1e-6)
  end)
end)

describe("custom_gradient", function()
  -- TF's documentation example: log(1 + e^x) with a stable gradient.
  local log1pexp = mg.custom_gradient(function(x)
    local e = mg.exp(x)
    local function grad(upstream) return upstream * (1 - 1 / (1 + e)) end
    return mg.log(1 + e), grad
  end)

  it("log1pexp in a tape: the gradient at 100 is 1 (the naive one is NaN)", function()
    local x = f32(100.0)
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = log1pexp(x)
    near(tape:gradient(y, x), 1)
    -- the same function without the custom rule overflows: inf/inf
    local t2 = mg.GradientTape()
    t2:watch(x)
    local naive = mg.log(1 + mg.exp(x))
    local g = t2:gradient(naive, x):item()
    assert.is_true(g ~= g)                               -- NaN
  end)

  it("log1pexp through mg.grad, with values at 0 and elementwise", function()
    local dlog1pexp = mg.grad(log1pexp)
    near(dlog1pexp(0.0), 0.5)
    near(dlog1pexp(f32(100.0)), 1)
    near(dlog1pexp(f32{0, 2}), { 0.5, 1 / (1 + math.exp(-2)) })
    near(log1pexp(f32(0.0)), math.log(2))
  end)

  it("clips the gradient flowing back (TF's clip_gradients example)", function()
    local clip_grad = mg.custom_gradient(function(y)
      return y, function(dy) return mg.clip(dy, -0.5, 0.5) end
    end)
    local x = f32{1, 2}
    local tape = mg.GradientTape()
    tape:watch(x)
    local z = clip_grad(x) * f32{10, 0.25}
    near(tape:gradient(z, x), { 0.5, 0.25 })
  end)

  it("several inputs: backward returns one gradient each (or a table), nil for none", function()
    local f = mg.custom_gradient(function(a, k, b)
      assert.equal(3, k)                                 -- non-tensor args pass through
      return a * b * k, function(dy) return { dy * b * 100, dy * a } end
    end)
    local a, b = f32(2.0), f32(5.0)
    local tape = mg.GradientTape()
    tape:watch({ a, b })
    local y = f(a, 3, b)
    near(y, 30)
    local g = tape:gradient(y, { a, b })
    near(g[1], 500)                                      -- the custom rule, not 15
    near(g[2], 2)
    local h = mg.custom_gradient(function(a, b) return a + b, function(dy) return nil, dy * 7 end end)
    local t2 = mg.GradientTape{persistent = true}
    t2:watch({ a, b })
    local z = h(a, b)
    t2:stop()
    assert.is_nil(t2:gradient(z, a))
    near(t2:gradient(z, b), 7)
  end)

  it("its forward pass is not recorded, its backward pass is (second order)", function()
    local cube = mg.custom_gradient(function(x)
      return x * x * x, function(dy) return dy * 3 * x * x end
    end)
    near(mg.hessian(function(x) return mg.sum(cube(x)) end)(f32{1, 2}), { { 6, 0 }, { 0, 12 } })
  end)

  it("an error in the backward function surfaces as a Lua error", function()
    local bad = mg.custom_gradient(function(x) return x * 2, function() error("backward exploded") end end)
    local x = f32(1.0)
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = bad(x)
    fails(function() return tape:gradient(y, x) end, "backward exploded")
  end)

  it("a function that does not return a backward function is an error", function()
    local wrong = mg.custom_gradient(function(x) return x end)
    fails(function() return wrong(f32(1.0)) end, "custom_gradient", "backward")
  end)
end)

describe("grad and value_and_grad", function()
  it("grad of a scalar function, numbers become float32", function()
    local df = mg.grad(function(x) return x * x end)
    near(df(3), 6)
    near(df(3.0), 6)
    assert.equal("float32", df(3).dtype)
    near(df(f32{1, -2}), { 2, -4 })                     -- non-scalar result summed
  end)

  it("argnums picks the arguments; a list gives a list", function()
    local f = function(a, b) return a * a * b end
    near(mg.grad(f)(2.0, 3.0), 12)
    near(mg.grad(f, {argnums = 2})(2.0, 3.0), 4)
    local g = mg.grad(f, {argnums = {1, 2}})(2.0, 3.0)
    near(g[1], 12)
    near(g[2], 4)
  end)

  it("value_and_grad returns the value too; unused arguments give zeros", function()
    local v, g = mg.value_and_grad(function(a, b) return mg.sum(mg.exp(a)) end, {argnums = {1, 2}})(
      mg.tensor({0, 1}, mg.float64), f32(4.0))
    near(v, 1 + math.exp(1), 1e-12)
    assert.equal("float64", g[1].dtype)
    near(g[1], { 1, math.exp(1) }, 1e-12)
    near(g[2], 0)
    local v2, g2 = mg.value_and_grad(function(x) return mg.sin(x) end)(0.5)
    near(v2, math.sin(0.5))
    near(g2, math.cos(0.5))
  end)

  it("works on Variables and nests (grad of grad)", function()
    local d2 = mg.grad(mg.grad(function(x) return x * x * x end))
    near(d2(2.0), 12)
    local v = mg.Variable(3.0)
    near(mg.grad(function(x) return x * x end)(v), 6)
  end)

  it("passes errors of f on", function()
    local calls = 0
    local df = mg.grad(function(x)
      calls = calls + 1
      if calls == 1 then error("f failed") end
      return x * x
    end)
    fails(function() return df(1.0) end, "f failed")
    near(df(5.0), 10)                                    -- the next call works
  end)
end)

describe("hessian and jvp", function()
  it("hessian of sum(x^3) is diag(6x)", function()
    local H = mg.hessian(function(x) return mg.sum(x ^ 3) end)(f32{1, 2, 3})
    assert.same({ 3, 3 }, H.shape)
    near(H, { { 6, 0, 0 }, { 0, 12, 0 }, { 0, 0, 18 } })
  end)

  it("hessian of a quadratic form x'Ax is A + A'", function()
    local A = mg.tensor({{1, 2}, {3, 4}}, mg.float64)
    local H = mg.hessian(function(x) return mg.sum(x * mg.matmul(A, x)) end)(mg.tensor({0.5, -1}, mg.float64))
    assert.equal("float64", H.dtype)
    near(H, { { 2, 5 }, { 5, 8 } }, 1e-12)
  end)

  it("hessian of a 2-d input has shape x.shape .. x.shape", function()
    local H = mg.hessian(function(x) return mg.sum(x * x) end)(f32{{1, 2}, {3, 4}})
    assert.same({ 2, 2, 2, 2 }, H.shape)
    near(H[1][2], { { 0, 2 }, { 0, 0 } })
    near(H[2][2], { { 0, 0 }, { 0, 2 } })
  end)

  it("jvp returns f(x) and J v", function()
    local y, jv = mg.jvp(function(x) return x * x end, f32{1, 2, 3}, f32{1, 1, 0.5})
    near(y, { 1, 4, 9 })
    near(jv, { 2, 4, 3 })                                -- 2 x v
    local A = f32{{1, 2}, {3, 4}, {5, 6}}
    local y2, jv2 = mg.jvp(function(x) return mg.matmul(A, x) end, f32{1, 1}, f32{1, 0})
    near(y2, { 3, 7, 11 })
    near(jv2, { 1, 3, 5 })                               -- A v: the first column
    local _, jv3 = mg.jvp(function(x) return mg.sin(x) end, 0.5, 2.0)
    near(jv3, 2 * math.cos(0.5))
  end)
end)

-- Gradients at the points where a rule divides by an input or an output, or multiplies by
-- something infinite (issue 14). Each gives what PyTorch or TensorFlow gives and, where they
-- differ, the spec says which one moongrad follows and why. A NaN is only ever the honest
-- answer (the function itself is NaN or not differentiable in any sense there).
describe("gradients at the edges of their rules", function()
  local inf = math.huge
  local function vals(t) return t:totable() end
  local function same(got, want, what)
    for i = 1, #want do
      local a, b = got[i], want[i]
      assert(a == b or (a ~= a and b ~= b), ("%s: element %d is %s, expected %s"):format(what, i, tostring(a), tostring(b)))
    end
  end
  local function g1(f, x) return vals(mg.grad(f)(mg.tensor(x, "float64"))) end
  local function g2(f, a, b)
    local r = mg.grad(f, { argnums = { 1, 2 } })(mg.tensor(a, "float64"), mg.tensor(b, "float64"))
    return vals(r[1]), vals(r[2])
  end

  it("pow: d x^y/dx is 0 where y == 0, even at x = 0 (PyTorch; 0 * 0^-1 was NaN)", function()
    same(g1(function(x) return x ^ 0 end, { 0, 3 }), { 0, 0 }, "x^0")
    same(g1(function(x) return x ^ 1 end, { 0 }), { 1 }, "x^1")
    same(g1(function(x) return x ^ 2 end, { 0 }), { 0 }, "x^2")
    same(g1(function(x) return x ^ 0.5 end, { 0 }), { inf }, "x^0.5: the slope is infinite")
    same(g1(function(x) return x ^ -1 end, { 0 }), { -inf }, "x^-1: -1/x^2")
    -- staged and to second order: d2 x^2/dx2 = 2 at 0, d2 x^1/dx2 = 0 (the inner x^0 is masked too)
    local function pow0(v) return mg.sum(v ^ 0) end
    local step = mg.func(function(x)
      return mg.grad(pow0)(x)
    end)
    same(vals(step(mg.tensor({ 0, 2 }, "float64"))), { 0, 0 }, "staged x^0")
    same(vals(mg.hessian(function(v) return mg.sum(v ^ 2) end)(mg.tensor({ 0 }, "float64")))[1], { 2 }, "hessian x^2")
    same(vals(mg.hessian(function(v) return mg.sum(v ^ 1) end)(mg.tensor({ 0 }, "float64")))[1], { 0 }, "hessian x^1")
    same(vals(mg.hessian(function(v) return mg.sum(v ^ 0) end)(mg.tensor({ 0, 1 }, "float64")))[1], { 0, 0 }, "hessian x^0")
    -- the mixed derivative d2 x^y / dx dy = x^(y-1) (1 + y log x) keeps its value 1/x at y = 0 for
    -- x ~= 0 (the rule replaces x only where x and y are both 0, rather than masking the result)
    local outer = mg.GradientTape { persistent = true }
    local x, y = mg.tensor({ 2, 4 }, "float64"), mg.tensor({ 0, 0 }, "float64")
    outer:watch(y)
    local inner = mg.GradientTape()
    inner:watch(x)
    local l = mg.sum(mg.pow(x, y))
    inner:stop()
    local gx = mg.sum(inner:gradient(l, x))
    outer:stop()
    same(vals(outer:gradient(gx, y)), { 0.5, 0.25 }, "d2/dxdy")
  end)

  it("pow: d x^y/dy = x^y log x with log x taken as 0 where x <= 0 (TF)", function()
    -- x = 0, y >= 0: 0 (x^y is 0 or 1 there; PyTorch also gives 0); x = 0, y < 0: x^y is inf and
    -- inf * 0 is NaN (TF too); x < 0 with an integer y: 0 (TF; PyTorch: NaN, log of a negative);
    -- x < 0 with a fractional y: x^y itself is NaN
    local dx, dy = g2(function(x, y) return mg.pow(x, y) end, { 0, 0, 0, -2, -2 }, { 0, 2, -1, 2, 0.5 })
    same(dx, { 0, 0, -inf, -4, 0 / 0 }, "dx")
    same(dy, { 0, 0, 0 / 0, 0, 0 / 0 }, "dy")
  end)

  it("sqrt, rsqrt, log, log1p at their singular point: +-inf, the true slope (PyTorch and TF)", function()
    same(g1(mg.sqrt, { 0 }), { inf }, "sqrt")        -- 0.5 / sqrt(0)
    same(g1(mg.rsqrt, { 0 }), { -inf }, "rsqrt")     -- -0.5 * rsqrt(0)^3
    same(g1(mg.log, { 0 }), { inf }, "log")          -- 1 / 0
    same(g1(mg.log1p, { -1 }), { inf }, "log1p")     -- 1 / (1 + -1)
  end)

  it("div by zero: 1/b is inf; -a/b^2 is -inf, NaN when a is 0 too (a/b itself is NaN)", function()
    local da, db = g2(function(a, b) return a / b end, { 1, 0 }, { 0, 0 })
    same(da, { inf, inf }, "d/da")
    same(db, { -inf, 0 / 0 }, "d/db")
  end)

  it("atan2 at the origin: NaN, as in PyTorch and TF (the angle has no limit there)", function()
    local dy, dx = g2(mg.atan2, { 0 }, { 0 })
    same(dy, { 0 / 0 }, "d/dy")
    same(dx, { 0 / 0 }, "d/dx")
  end)

  it("std of a constant: 0 (PyTorch masks it; TF's sqrt(variance) gives NaN)", function()
    same(g1(mg.std, { 2, 2, 2 }), { 0, 0, 0 }, "std")
    local g = g1(mg.std, { 1, 3 })
    same(g, { -0.5, 0.5 }, "std elsewhere")
  end)

  it("variance with correction >= N: +-inf or NaN, the slope of the forward inf (NumPy's divisor)", function()
    same(g1(function(x) return mg.variance(x, { correction = 2 }) end, { 1, 2 }), { -inf, inf }, "variance")
    same(g1(function(x) return mg.variance(x, { correction = 2 }) end, { 1, 1 }), { 0 / 0, 0 / 0 }, "0 / 0")
  end)

  it("prod at zeros: the product of the other elements, exact (TF's exclusive products)", function()
    same(g1(mg.prod, { 0, 2, 3 }), { 6, 0, 0 }, "one zero")
    same(g1(mg.prod, { 0, 2, 0 }), { 0, 0, 0 }, "two zeros")
  end)

  it("kinks: abs and relu give 0 at 0, maximum's tie goes to the first input (TF)", function()
    same(g1(mg.abs, { 0 }), { 0 }, "abs")
    same(g1(mg.relu, { 0 }), { 0 }, "relu")
    local da, db = g2(mg.maximum, { 1 }, { 1 })
    same(da, { 1 }, "maximum a")
    same(db, { 0 }, "maximum b")
  end)
end)
