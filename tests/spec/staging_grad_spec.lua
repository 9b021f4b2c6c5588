-- staging_grad_spec.lua — a GradientTape inside a staged function (mg.func)
-- differentiates staged mg.cond / mg.while_loop nodes. Each case compares the
-- staged gradient with (a) the same code run eagerly under a tape and (b)
-- central finite differences in float64.
local mg = require("moongrad")
local nn = require("moongrad.nn")
local H = require("tests.spec.helpers")
local near, fails = H.near, H.fails

local function f64(data) return mg.tensor(data, mg.float64) end

-- Central differences of the scalar fn() with respect to every element of
-- the float64 tensor or Variable x (perturbed in place through `set`).
local function numeric(fn, x, set)
  local flat = mg.reshape(x, { -1 }):totable()
  local g = {}
  local eps = 1e-6
  for i = 1, #flat do
    local orig = flat[i]
    flat[i] = orig + eps
    set(mg.reshape(f64(flat), x.shape))
    local up = fn():item()
    flat[i] = orig - eps
    set(mg.reshape(f64(flat), x.shape))
    local down = fn():item()
    flat[i] = orig
    g[i] = (up - down) / (2 * eps)
  end
  set(mg.reshape(f64(flat), x.shape))
  return mg.reshape(f64(g), x.shape)
end

local function flat(t) return mg.reshape(t, { -1 }):totable() end
local unpack = table.unpack or unpack

-- near() on the flattened values (any shape).
local function close(a, e, tol)
  if mg.is_tensor(e) then e = flat(e) end
  near(flat(a), e, tol)
end

local W = mg.Variable(f64{ { 0.5, -0.3 }, { 0.2, 0.4 } }, { name = "W" })
local function setW(v) W:assign(v) end

-- The computation under test: loss(x) and its gradients for x and W, run as
-- given (staged or eager); `fn(x, ...)` returns the scalar loss.
local function with_tape(fn)
  return function(x, ...)
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = fn(x, ...)
    tape:stop()
    local g = tape:gradient(y, { x, W }, { unconnected_gradients = "zero" })
    return y, g[1], g[2]
  end
end

-- Checks staged vs eager vs finite differences for fn at x (extra args passed
-- on). "Eager" runs the AutoGraph-converted code without staging (eager=true),
-- so Lua loops over tensors work there too.
local function check(fn, x, ...)
  local args = { ... }
  local staged = mg.func(with_tape(fn))
  local y, gx, gw = staged(x, unpack(args))
  local ey, egx, egw = mg.func(with_tape(fn), { eager = true })(x, unpack(args))
  fn = mg.func(fn, { eager = true })
  close(y, ey, 1e-9)
  close(gx, egx, 1e-9)
  close(gw, egw, 1e-9)
  local cur = x
  local function loss() return fn(cur, unpack(args)) end
  close(gx, numeric(loss, x, function(v) cur = v end), 1e-5)
  close(gw, numeric(loss, W, setW), 1e-5)
  return staged
end

describe("gradients of staged cond/while for a tape inside mg.func", function()
  it("cond on a tensor predicate, both ways, with captured tensors and a Variable", function()
    local function fn(x)
      local h = x * 2                      -- an outer tensor the branches capture
      local y = mg.cond(mg.greater(mg.sum(x), 0),
        function() return mg.sum(mg.tanh(mg.matmul(h, W)) * x) end,
        function() return mg.sum(h * h * x) end)
      return y
    end
    local staged = check(fn, f64{ { 0.3, 0.7 } })
    check(fn, f64{ { -0.3, -0.2 } })
    local _, _, gw = staged(f64{ { -0.3, -0.2 } })
    close(gw, { 0, 0, 0, 0 })             -- the else branch does not use W
  end)

  it("cond with several outputs, one of them an int", function()
    check(function(x)
      local a, k, b = mg.cond(mg.less(x[1][1], 0.5),
        function() return mg.sin(x), mg.tensor(1), mg.matmul(x, W) end,
        function() return x * 3, mg.tensor(2), mg.exp(x) end)
      return mg.sum(a * b) + mg.sum(b)
    end, f64{ { 0.3, 0.7 } })
  end)

  it("while with a counter and a tensor state: x = tanh(x @ W), trip count from an input", function()
    local function fn(x, n)
      local r = mg.while_loop(function(i) return mg.less(i, n) end,
        function(i, h) return i + 1, mg.tanh(mg.matmul(h, W)) end, { mg.tensor(0), x })
      return mg.sum(r[2] * r[2])
    end
    local x = f64{ { 0.9, -0.4 } }
    local staged
    for _, n in ipairs({ 0, 1, 4 }) do staged = check(fn, x, mg.tensor(n)) end
    assert.equal(1, staged:trace_count())
  end)

  it("while with a data-dependent trip count", function()
    check(function(x)
      local r = mg.while_loop(function(h) return mg.less(mg.sum(mg.abs(h)), 10) end,
        function(h) return h * 1.7 + mg.matmul(h, W) end, { x })
      return mg.sum(r[1])
    end, f64{ { 0.3, 0.45 } })
  end)

  it("maximum_iterations is respected by the gradient", function()
    local function fn(x)
      local r = mg.while_loop(function() return mg.tensor(true) end,
        function(h) return mg.sin(mg.matmul(h, W)) + h end, { x }, { maximum_iterations = 3 })
      return mg.sum(r[1])
    end
    check(fn, f64{ { 0.3, 0.45 } })
  end)

  it("a tracked tensor only the loop condition reads gets a zero gradient, not an error", function()
    local f = mg.func(function(x, h0)
      local tape = mg.GradientTape()
      tape:watch(x)
      tape:watch(h0)
      local r = mg.while_loop(function(h) return mg.less(mg.sum(h * x), 20) end,
        function(h) return h * 2 end, { h0 })
      local y = mg.sum(r[1])
      tape:stop()
      local g = tape:gradient(y, { x, h0 }, { unconnected_gradients = "zero" })
      return y, g[1], g[2]
    end)
    local y, gx, gh = f(f64{ 1, 1 }, f64{ 1, 2 })
    close(y, { 24 })         -- (1,2) -> (2,4) -> (4,8) -> (8,16): sum 24 >= 20
    close(gx, { 0, 0 })
    close(gh, { 8, 8 })
  end)

  it("captured tensors and Variables accumulate gradients across iterations", function()
    local b = mg.Variable(f64{ 0.1, -0.2 })
    local f = mg.func(function(x)
      local tape = mg.GradientTape()
      local scale = mg.sum(x)              -- captured by the body
      local r = mg.while_loop(function(i) return mg.less(i, 3) end,
        function(i, h) return i + 1, mg.tanh(mg.matmul(h, W) + b) * scale end, { mg.tensor(0), x })
      local y = mg.sum(r[2])
      tape:stop()
      local g = tape:gradient(y, { W, b })
      return g[1], g[2]
    end)
    local x = f64{ { 0.5, 0.25 } }
    local gw, gb = f(x)
    local tape = mg.GradientTape()
    local scale, h = mg.sum(x), x
    for _ = 1, 3 do h = mg.tanh(mg.matmul(h, W) + b) * scale end
    local y = mg.sum(h)
    tape:stop()
    local g = tape:gradient(y, { W, b })
    close(gw, g[1], 1e-9)
    close(gb, g[2], 1e-9)
  end)

  it("nested: a cond inside a while, and a while inside a while", function()
    check(function(x)
      local r = mg.while_loop(function(i) return mg.less(i, 3) end, function(i, h)
        local nh = mg.cond(mg.greater(mg.sum(h), 0), function() return mg.tanh(mg.matmul(h, W)) end,
          function() return h * 0.5 + 0.1 end)
        return i + 1, nh
      end, { mg.tensor(0), x })
      return mg.sum(r[2])
    end, f64{ { 0.5, -0.2 } })
    check(function(x)
      local r = mg.while_loop(function(i) return mg.less(i, 2) end, function(i, h)
        local inner = mg.while_loop(function(j) return mg.less(j, i + 2) end,
          function(j, g) return j + 1, mg.sin(mg.matmul(g, W)) + g * 0.5 end, { mg.tensor(0), h })
        return i + 1, inner[2]
      end, { mg.tensor(0), x })
      return mg.sum(r[2] * r[2])
    end, f64{ { 0.5, -0.2 } })
  end)

  it("gradients of gradients: a persistent outer tape sees the backward cond", function()
    local f = mg.func(function(x)
      local outer = mg.GradientTape()
      outer:watch(x)
      local inner = mg.GradientTape()
      inner:watch(x)
      local y = mg.cond(mg.greater(mg.sum(x), 0), function() return mg.sum(x * x * x) end,
        function() return mg.sum(x) end)
      local g = inner:gradient(y, x)
      local s = mg.sum(g)
      outer:stop()
      return outer:gradient(s, x)
    end)
    near(f(f64{ 1, 2 }), { 6, 12 })   -- d/dx sum(3x^2) = 6x
    near(f(f64{ -1, -2 }), { 0, 0 })
  end)

  it("a branch or body with effects is refused when differentiated", function()
    local v = mg.Variable(mg.tensor(0.0, mg.float32))
    local f = mg.func(function(x)
      local tape = mg.GradientTape()
      tape:watch(x)
      local y = mg.cond(mg.greater(x, 0), function() v:assign_add(1); return x * 2 end, function() return x end)
      tape:stop()
      return tape:gradient(y, x)
    end)
    fails(function() return f(mg.tensor(1.0, mg.float32)) end, "cond gradient", "assigns a Variable")
    local g = mg.func(function(x)
      local tape = mg.GradientTape()
      tape:watch(x)
      local r = mg.while_loop(function(i) return mg.less(i, 2) end,
        function(i, h) return i + 1, h * mg.uniform({}) end, { mg.tensor(0), x })
      tape:stop()
      return tape:gradient(r[2], x)
    end)
    fails(function() return g(mg.tensor(1.0, mg.float32)) end, "while_loop gradient", "random")
  end)

  it("a cond node built without a gradient record is a clear error, not a silent nil", function()
    local core = require("moongrad.core")
    local f = mg.func(function(x)
      local tape = mg.GradientTape()
      tape:watch(x)
      local gt = core.trace_begin("then")
      core.trace_end(gt, { x * 2 })
      local ge = core.trace_begin("else")
      core.trace_end(ge, { x * 3 })
      local y = core.trace_cond(mg.greater(x, 0), gt, ge)[1] * 1
      tape:stop()
      return tape:gradient(y, x)
    end)
    fails(function() return f(mg.tensor(1.0, mg.float32)) end, "gradient", "no gradient record",
      "core.trace_cond")
  end)

  it("a tape around the call still differentiates the plain nodes", function()
    local f = mg.func(function(x)
      return mg.while_loop(function(i) return mg.less(i, 3) end,
        function(i, h) return i + 1, mg.tanh(mg.matmul(h, W)) end, { mg.tensor(0), x })[2]
    end)
    local x = f64{ { 0.9, -0.4 } }
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = mg.sum(f(x))
    tape:stop()
    local g = tape:gradient(y, { x, W })
    local cur = x
    close(g[1], numeric(function() return mg.sum(f(cur)) end, x, function(v) cur = v end), 1e-5)
  end)
end)

describe("recurrent layers in a staged training step (a while loop, differentiated)", function()
  for _, cls in ipairs({ "SimpleRNN", "LSTM", "GRU" }) do
    for _, seq in ipairs({ false, true }) do
      it(cls .. (seq and " (return_sequences)" or "") .. ": staged gradients equal the eager ones", function()
        mg.random.seed(7)
        local layer = nn[cls](3, { return_sequences = seq, dtype = mg.float64 })
        local x = mg.normal({ 2, 5, 4 }, { dtype = mg.float64 })
        layer(x)   -- build
        local vars = layer.trainable_variables
        local function step(input)
          local tape = mg.GradientTape()
          local y = layer(input, { training = true })
          local loss = mg.sum(y * y)
          tape:stop()
          return loss, tape:gradient(loss, vars)
        end
        local staged = mg.func(step)
        local sl, sg = staged(x)
        local el, eg = step(x)
        near(sl, el:item(), 1e-9)
        for i = 1, #vars do close(sg[i], eg[i], 1e-8) end
        -- the staged graph has a while node, not T unrolled steps
        local text = staged:concrete(x):pretty()
        assert.truthy(text:find("while"), "expected a while node in the staged train step")
      end)
    end
  end
end)

describe("AutoGraph-converted loops and ifs under a tape inside mg.func", function()
  -- Converted code: plain Lua `while`, numeric `for`, `for ... in ipairs(t)`, `if` on tensors.
  local function loop_fn(x, n)
    local h = x
    local i = 0
    while i < n do
      h = mg.tanh(mg.matmul(h, W))
      i = i + 1
    end
    if mg.sum(h) > 0 then
      h = h * h
    else
      h = -h * 2
    end
    return mg.sum(h)
  end

  it("while and if over tensors: staged = eager = finite differences", function()
    local x = f64{ { 0.6, 1.1 } }
    for _, n in ipairs({ 0, 2, 5 }) do check(loop_fn, x, mg.tensor(n)) end
    check(loop_fn, f64{ { -0.6, -1.1 } }, mg.tensor(1))
  end)

  it("a numeric for over a tensor bound, and a for over a tensor's rows", function()
    check(function(x, n)
      local acc = x * 0
      for k = 1, n do
        acc = acc + mg.sin(mg.matmul(x, W)) * k
      end
      return mg.sum(acc * acc)
    end, f64{ { 0.3, -0.8 } }, mg.tensor(3))
    check(function(x, rows)
      local h = x
      for _, r in ipairs(rows) do
        h = mg.tanh(mg.matmul(h, W) + r)
      end
      return mg.sum(h)
    end, f64{ { 0.3, -0.8 } }, f64{ { 0.1, 0.2 }, { -0.3, 0.4 }, { 0.5, 0.5 } })
  end)

  it("the function's locals keep their values after the gradient re-runs a body", function()
    local f = mg.func(function(x, n)
      local tape = mg.GradientTape()
      tape:watch(x)
      local h = x
      local i = 0
      while i < n do
        h = h * 2
        i = i + 1
      end
      local s = mg.sum(h * h)
      tape:stop()
      local g = tape:gradient(s, x)
      return h + 0, g, i + 0
    end)
    local h, g, i = f(f64{ 1, 3 }, mg.tensor(3))
    close(h, { 8, 24 })
    close(g, { 128, 384 })   -- d sum((8x)^2)/dx = 128 x
    assert.equal(3, i:item())
  end)
end)

describe("concat/stack gradients with many inputs", function()
  it("a stack of 60 tensors differentiates (more inputs than a rule's scratch scope)", function()
    local xs = {}
    for i = 1, 60 do xs[i] = mg.tensor({ i, -i }, mg.float32) end
    local tape = mg.GradientTape()
    for i = 1, 60 do tape:watch(xs[i]) end
    local y = mg.sum(mg.stack(xs, 1) * 2)
    tape:stop()
    local g = tape:gradient(y, xs)
    assert.equal(60, #g)
    close(g[60], { 2, 2 })
  end)
end)

describe("while_loop gradient: passthrough loop variables and sliced captured sequences", function()
  local function take_row(seq, i)   -- row i (a symbolic int64 scalar) of a (T, 2) sequence, as (1, 2)
    return mg.reshape(mg.take(seq, mg.reshape(i, { 1 }), 1), { 1, 2 })
  end

  it("a passthrough loop variable that needs a gradient (read by the body and after the loop)", function()
    local function fn(x, n)
      local c = x * 2                       -- a loop variable the body reads and hands back unchanged
      local r = mg.while_loop(function(i) return mg.less(i, n) end,
        function(i, h, cc) return i + 1, mg.tanh(mg.matmul(h, W) + cc), cc end, { mg.tensor(0), x, c })
      return mg.sum(r[2] * r[2]) + mg.sum(r[3] * x)
    end
    local x = f64{ { 0.9, -0.4 } }
    for _, n in ipairs({ 0, 1, 4 }) do check(fn, x, mg.tensor(n)) end
  end)

  it("passthrough loop variables that need no gradient: an int bound and a constant tensor", function()
    local function fn(x)
      local r = mg.while_loop(function(i, n) return mg.less(i, n) end,
        function(i, n, k, h) return i + 1, n, k, mg.sin(mg.matmul(h, W)) * k end,
        { mg.tensor(0), mg.tensor(3), f64{ { 1.5, 0.5 } }, x })
      return mg.sum(r[4])
    end
    check(fn, f64{ { 0.3, 0.45 } })
  end)

  it("a captured sequence sliced per iteration gets its gradient (RNN over a captured input)", function()
    local function fn(x)
      local seq = x * 1.5                   -- (T, 2), captured by the body
      local r = mg.while_loop(function(i) return mg.less_equal(i, 4) end,
        function(i, h) return i + 1, mg.tanh(mg.matmul(h, W) + take_row(seq, i)) end,
        { mg.tensor(1), mg.zeros({ 1, 2 }, mg.float64) })
      return mg.sum(r[2] * r[2]) + mg.sum(seq * seq) * 0.1
    end
    check(fn, f64{ { 0.1, 0.2 }, { -0.3, 0.4 }, { 0.5, -0.6 }, { 0.7, 0.8 } })
  end)

  it("a sequence carried as a passthrough loop variable and sliced per iteration", function()
    local function fn(x)
      local r = mg.while_loop(function(i) return mg.less_equal(i, 4) end,
        function(i, h, seq) return i + 1, mg.tanh(mg.matmul(h, W) + take_row(seq, i)), seq end,
        { mg.tensor(1), mg.zeros({ 1, 2 }, mg.float64), x * x })
      return mg.sum(r[2] * r[2])
    end
    check(fn, f64{ { 0.1, 0.2 }, { -0.3, 0.4 }, { 0.5, -0.6 }, { 0.7, 0.8 } })
  end)

  it("the forward keeps no per-iteration stack for a passthrough variable", function()
    local f = mg.func(function(x)
      local tape = mg.GradientTape()
      tape:watch(x)
      local big = mg.reshape(mg.arange(0, 4000, 1, mg.float64), { 1000, 4 }) * 0.001
      local r = mg.while_loop(function(i) return mg.less_equal(i, 50) end,
        function(i, h, seq) return i + 1, mg.tanh(h * 0.5 + mg.reshape(mg.take(seq, mg.reshape(i, { 1 }), 1), { 4 })), seq end,
        { mg.tensor(1), x, big })
      local y = mg.sum(r[2])
      tape:stop()
      return tape:gradient(y, x)
    end)
    local x = f64{ 0.1, 0.2, 0.3, 0.4 }
    local g = f(x)
    assert.equal(4, #flat(g))
    local nodes = f:concrete(x):graph()
    local read = {}
    for _, nd in ipairs(nodes) do
      for _, v in ipairs(nd.inputs) do read[v] = true end
    end
    local fwd
    for _, nd in ipairs(nodes) do
      if nd.kind == "while" and #nd.outputs == 7 then fwd = nd end   -- 3 variables: 2*3+1 outputs
    end
    assert.is_truthy(fwd, "no while node with the gradient's outputs")
    assert.is_true(read[fwd.outputs[5]] == true)      -- h's stack: the backward reads it
    assert.is_falsy(read[fwd.outputs[6]])             -- seq's stack (1000x4 per iteration): not read
  end)
end)

describe("index_add and the in-place accumulation of a while loop's gradient", function()
  it("index_add adds src's slices at the indexed positions; gradients; clear errors", function()
    close(mg.index_add(f64{ { 1, 1 }, { 1, 1 }, { 1, 1 } }, mg.tensor{ 3, 1, 3 }, f64{ { 1, 2 }, { 3, 4 }, { 5, 6 } }, 1),
      { 4, 5, 1, 1, 7, 9 })
    close(mg.index_add(mg.zeros({ 2, 3 }, mg.float64), mg.tensor{ 2 }, f64{ { 1 }, { 2 } }, 2), { 0, 1, 0, 0, 2, 0 })
    local x, s = f64{ { 1, 2 }, { 3, 4 } }, f64{ { 5, 6 } }
    local tape = mg.GradientTape()
    tape:watch(x)
    tape:watch(s)
    local y = mg.sum(mg.index_add(x, mg.tensor{ 2 }, s, 1) * f64{ { 1, 2 }, { 3, 4 } })
    tape:stop()
    local g = tape:gradient(y, { x, s })
    close(g[1], { 1, 2, 3, 4 })
    close(g[2], { 3, 4 })
    local m = mg.zeros({ 3, 2 })
    fails(function() return mg.index_add(m, mg.tensor{ 1 }, mg.ones{ 2, 2 }, 1) end, "index_add", "(2,2)")
    fails(function() return mg.index_add(m, mg.tensor{ 4 }, mg.ones{ 1, 2 }, 1) end, "index_add", "4")
    fails(function() return mg.index_add(m, mg.tensor({ 1 }, mg.float32), mg.ones{ 1, 2 }, 1) end, "index_add",
      "float32")
    fails(function() return mg.index_add(m, mg.tensor{ 1 }, mg.ones({ 1, 2 }, mg.float64), 1) end, "index_add",
      "float64")
    fails(function() return mg.index_add(mg.tensor({ 1, 2 }, mg.int64), mg.tensor{ 1 }, mg.tensor({ 1 }, mg.int64), 1) end,
      "index_add", "int64")
  end)

  local T, F = 6, 3
  local V = mg.Variable(mg.reshape(mg.arange(1, F * F + 1, 1, mg.float64), { F, F }) * 0.05)
  local function rnn_grad(x)   -- the gradient of an RNN's loss with respect to its captured input sequence
    local tape = mg.GradientTape()
    tape:watch(x)
    local r = mg.while_loop(function(i) return mg.less_equal(i, T) end, function(i, h)
      local xt = mg.reshape(mg.take(x, mg.reshape(i, { 1 }), 1), { 1, F })
      return i + 1, mg.tanh(mg.matmul(h, V) + xt)
    end, { mg.tensor(1), mg.zeros({ 1, F }, mg.float64) })
    local y = mg.sum(r[2] * r[2])
    tape:stop()
    return tape:gradient(y, x)
  end
  local x = mg.reshape(mg.arange(0, T * F, 1, mg.float64), { T, F }) * 0.1 - 0.8

  it("the backward loop adds each step's slice with index_add, in place, and the result is right", function()
    local f = mg.func(rnn_grad)
    local g1 = f(x)
    local want = rnn_grad(x)                       -- eager
    close(g1, want, 1e-12)
    local text = f:concrete(x):pretty()
    assert.truthy(text:find("index_add", 1, true), "expected index_add in the staged gradient")
    assert.falsy(text:find("take_grad", 1, true), "a full-size take_grad per step is left")
    local keep = flat(g1)
    local g2 = f(x)                                -- a second call must not write into the first result
    close(g2, want, 1e-12)
    close(g1, keep, 0)
    close(mg.func(rnn_grad, { optimize = false })(x), want, 1e-12)   -- unoptimised: take_grad + add
  end)

  it("a staged forward loop that scatter_adds into its accumulator leaves the caller's tensors alone", function()
    local f = mg.func(function(seq0, xs)
      local r = mg.while_loop(function(i) return mg.less_equal(i, T) end, function(i, acc)
        local idx = mg.expand(mg.reshape(i, { 1, 1 }), { 1, F })
        return i + 1, mg.scatter_add(acc, idx, mg.reshape(mg.take(xs, mg.reshape(i, { 1 }), 1), { 1, F }) * 2, 1)
      end, { mg.tensor(1), seq0 })
      return r[2]
    end)
    local seq0 = mg.ones({ T, F }, mg.float64)
    local want = flat(seq0 + x * 2)
    local a = f(seq0, x)
    local b = f(seq0, x)
    close(a, want, 1e-12)
    close(b, want, 1e-12)
    close(seq0, flat(mg.ones({ T, F }, mg.float64)), 0)
    local c = f(a, x)                              -- its own earlier result as the initial value
    close(c, flat(seq0 + x * 4), 1e-12)
    close(a, want, 1e-12)
  end)
end)

describe("an AutoGraph loop carrying a sequence unchanged (the executor's passthrough view)", function()
  it("gradients through `seq = seq` in a converted while loop match eager and finite differences", function()
    local function fn(x, n)
      local seq = x * 1.5
      local h = mg.zeros({ 1, 2 }, mg.float64)
      local i = 1
      while i <= n do
        h = mg.tanh(mg.matmul(h, W) + mg.reshape(mg.take(seq, mg.reshape(mg.tensor(i), { 1 }), 1), { 1, 2 }))
        seq = seq                    -- a loop variable whose stack is a view of its final value
        i = i + 1
      end
      return mg.sum(h * h) + mg.sum(seq)
    end
    check(fn, f64{ { 0.1, 0.2 }, { -0.3, 0.4 }, { 0.5, -0.6 }, { 0.7, 0.8 } }, mg.tensor(4))
  end)
end)
