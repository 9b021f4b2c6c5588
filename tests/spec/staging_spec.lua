-- staging_spec.lua — staged functions (mg.func) as a Lua user sees them.
--
-- The core of it is a corpus of functions run twice, eagerly (the plain Lua
-- function) and staged (mg.func of the same function), on the same inputs:
-- the results must agree (dtype, shape, values within a relative 1e-5), and
-- the Lua body must have run only while tracing (once per trace, not once per
-- call), so the later calls really ran the graph. The corpus covers math,
-- matmul chains, cond and while (nested both ways), Variables (read/assign
-- order), gradients with a tape around a staged call (also through cond and
-- while), staged train steps with a tape inside, mg.lua_function and
-- mg.print. Then the rules around it: TF 2's polymorphism and Variable
-- examples, the signature cache and retracing, guards, input_signature with
-- -1 sizes, reduce_retracing, the retracing warning, max_traces, escaped
-- symbolic tensors, executing_eagerly, Variable creation, graph
-- introspection, control-flow errors and run_functions_eagerly.
--
-- Portable Lua (runs under Lua 5.4 and LuaJIT).

local mg = require "moongrad"
local unpack = table.unpack or unpack
local pack = table.pack or function(...) return { n = select("#", ...), ... } end

local h = require "tests.spec.helpers"
local fails, near = h.fails, h.near

-- Staged value == eager value: tensors by dtype, shape and values; tables
-- key by key; anything else by ==.
local function same(staged, eager, tol, path)
  path = path or "result"
  if mg.is_tensor(eager) then
    assert(mg.is_tensor(staged), ("%s: staged gave %s, eager a tensor"):format(path, tostring(staged)))
    assert.equal(eager.dtype, staged.dtype, path .. ": dtype")
    assert.same(eager.shape, staged.shape, path .. ": shape")
    near(staged:totable(), eager:totable(), tol, path)
  elseif type(eager) == "table" then
    assert(type(staged) == "table", ("%s: staged gave %s, eager a table"):format(path, tostring(staged)))
    for k, v in pairs(eager) do same(staged[k], v, tol, path .. "." .. tostring(k)) end
    for k in pairs(staged) do assert(eager[k] ~= nil, path .. ": extra key " .. tostring(k)) end
  else
    assert(staged == eager, ("%s: staged %s, eager %s"):format(path, tostring(staged), tostring(eager)))
  end
end

local f32 = h.f32
local function f64(data) return mg.tensor(data, mg.float64) end

-- Captures what fn writes with io.write (mg.print's output).
local function capture_stdout(fn)
  local out, saved = {}, io.write
  io.write = function(...)
    for _, s in ipairs({ ... }) do out[#out + 1] = tostring(s) end
  end
  local ok, err = pcall(fn)
  io.write = saved
  assert(ok, err)
  return table.concat(out)
end

-- Captures what fn writes to io.stderr (the retracing warning).
local function capture_stderr(fn)
  local out, saved = {}, io.stderr
  io.stderr = { write = function(self, ...)
    for _, s in ipairs({ ... }) do out[#out + 1] = tostring(s) end
    return self
  end }
  local ok, err = pcall(fn)
  io.stderr = saved
  assert(ok, err)
  return table.concat(out)
end

-- ---- the corpus ---------------------------------------------------------------------------
--
-- Each case is {name, run = function(F) ... end}: run builds its functions
-- with F (the identity for the eager run, mg.func for the staged run), calls
-- them and returns what to compare. Simple cases give {name, fn, calls} and
-- get run = F(fn) applied to each argument list of `calls` (several calls
-- with the same signature reuse one concrete function, with new values).

local corpus = {}
local function case(t) corpus[#corpus + 1] = t end

local A = f32{{0.5, -1.0, 2.0}, {1.5, 0.25, -0.75}}
local B = f32{{1.0, 2.0, -1.0}, {0.0, -0.5, 3.0}}
local M3 = f32{{0.5, 0.1, 0.0}, {-0.2, 0.6, 0.1}, {0.0, 0.3, 0.4}}
local W1 = mg.random.normal({4, 8}, 0, 0.5, mg.float32, 11)
local W2 = mg.random.normal({8, 3}, 0, 0.5, mg.float32, 12)
local X4 = mg.random.normal({5, 4}, 0, 1, mg.float32, 13)

-- math --------------------------------------------------------------------------------------
case { "polynomial x^3 - 2x + 1", function(x) return x ^ 3 - 2 * x + 1 end,
  { { f32{-2, -0.5, 0, 1, 3} }, { f32{4, 5, 6, 7, 8} } } }
case { "elementwise mix", function(x)
  return mg.exp(-x) + mg.log1p(mg.abs(x)) * mg.tanh(x) - mg.sigmoid(x) + mg.clip(x, -0.5, 0.5)
end, { { A }, { B } } }
case { "reductions", function(x)
  return mg.sum(x, { axis = 1 }), mg.mean(x, { axis = -1, keepdims = true }), mg.max(x),
    mg.logsumexp(x, { axis = 2 }), mg.prod(x, { axis = 1 })
end, { { A }, { B } } }
case { "softmax cross entropy by hand", function(logits, labels)
  local logp = mg.log_softmax(logits, { axis = -1 })
  return -mg.mean(mg.sum(labels * logp, { axis = -1 })), mg.softmax(logits, { axis = -1 })
end, { { A, f32{{0, 1, 0}, {1, 0, 0}} }, { B, f32{{0, 0, 1}, {0, 1, 0}} } } }
case { "broadcasting row and column", function(x, row, col) return x + row * col end,
  { { A, f32{1, 2, 3}, f32{{10}, {-1}} }, { B, f32{0, 1, 0}, f32{{2}, {3}} } } }
case { "integer floordiv and mod", function(x) return mg.floordiv(x, 3), x % 3, x * 2 - 7 end,
  { { mg.tensor{-7, -1, 0, 5, 9} }, { mg.tensor{1, 2, 3, 4, 100} } } }
case { "promotion and casts", function(i, x)
  return i * 0.5, mg.cast(x, mg.float64) * 2, mg.cast(i, mg.int32) + 1, mg.cast(x, mg.int64)
end, { { mg.tensor{1, 2, 3}, f32{1.5, -2.5, 3.25} }, { mg.tensor{4, 5, 6}, f32{0.5, 7.75, -1} } } }
case { "comparisons and where", function(x)
  return mg.where(mg.greater(x, 0), x, x * 0.1), mg.less_equal(x, 0.25), mg.logical_and(mg.greater(x, -1), mg.less(x, 1))
end, { { A }, { B } } }
case { "movement: transpose, reshape, slice, concat", function(x)
  local t = mg.transpose(x)
  return mg.concat({ mg.reshape(t, { 1, 6 }), mg.reshape(x, { 1, 6 }) }, 1), x:slice{ {}, { 2, 3 } }, t[2]
end, { { A }, { B } } }
case { "index ops: argmax, one_hot, take", function(x, idx)
  return mg.argmax(x, { axis = 2 }), mg.one_hot(idx, 4), mg.take(x, idx, 2)
end, { { A, mg.tensor{3, 1} }, { B, mg.tensor{2, 2} } } }
case { "several results and a nested table", function(x)
  return x + 1, "label", 42, { double = x * 2, list = { mg.sum(x), x:neg() } }
end, { { A }, { B } } }
case { "a table argument: a dense layer", function(p, x) return mg.matmul(x, p.w) + p.b end,
  { { { w = f32{{1, 2}, {3, 4}, {5, 6}}, b = f32{0.5, -0.5} }, A },
    { { w = f32{{0, 1}, {1, 0}, {1, 1}}, b = f32{1, 1} }, B } } }
case { "non-contiguous inputs (views)", function(x, y) return x * 2 + y end,
  { { mg.transpose(A), mg.transpose(B) }, { B:slice{ {}, { 1, 3, 2 } }, A:slice{ {}, { 2, 3 } } } } }
case { "float64 math", function(x) return mg.sqrt(x * x + 1), mg.sum(x) / 3 end,
  { { f64{1, 2, 3} }, { f64{0.1, 0.2, 0.3} } } }
case { "number and boolean arguments", function(x, k, flip)
  if flip then return -x * k end
  return x * k
end, { { A, 3, false }, { A, 3, true }, { B, 0.5, false } } }

-- matmul chains -----------------------------------------------------------------------------
case { "matmul chain of 10", function(m)
  local y = m
  for _ = 1, 10 do y = mg.matmul(y, m) end
  return y
end, { { M3 }, { mg.transpose(M3) } } }
case { "two-layer MLP forward", function(x)
  return mg.softmax(mg.matmul(mg.relu(mg.matmul(x, W1)), W2), { axis = -1 })
end, { { X4 }, { X4 * 2 } } }
case { "matmul_many unrolled (100 x 2x2)", function(t)
  local y = t
  for _ = 1, 100 do y = mg.matmul(y, t) end
  return y
end, { { f32{{1, 0}, {0, 1}} }, { f32{{0.5, 0.5}, {0.25, 0.75}} } } }

-- control flow ------------------------------------------------------------------------------
case { "cond on the sign of a sum", function(x)
  return mg.cond(mg.greater(mg.sum(x), 0), function() return x * 2 end, function() return -x end)
end, { { f32{1, 2} }, { f32{-1, -2} } } }
case { "cond with two results and a captured tensor", function(x, y)
  return mg.cond(mg.less(mg.max(x), mg.max(y)),
    function() return y - x, mg.sum(y) end,
    function() return x - y, mg.sum(x) end)
end, { { A, B }, { B, A } } }
case { "nested cond: three ways", function(x)
  return mg.cond(mg.less(x, 0), function() return x * -1 end, function()
    return mg.cond(mg.less(x, 10), function() return x * x end, function() return x + 1000 end)
  end)
end, { { f32(-3) }, { f32(4) }, { f32(12) } } }
case { "while: sum of 0..n-1", function(n)
  return mg.while_loop(function(i, s) return mg.less(i, n) end,
    function(i, s) return i + 1, s + i end, { mg.tensor(0), mg.tensor(0) })[2]
end, { { mg.tensor(10) }, { mg.tensor(0) }, { mg.tensor(100) } } }
case { "while: matmul_many (100 x 2x2)", function(t)
  return mg.while_loop(function(i, y) return mg.less(i, 100) end,
    function(i, y) return i + 1, mg.matmul(y, t) end, { mg.tensor(0), t })[2]
end, { { f32{{1, 0}, {0, 1}} }, { f32{{0.5, 0.5}, {0.25, 0.75}} } } }
case { "while with maximum_iterations", function(x)
  return mg.while_loop(function(i, y) return mg.less(i, 1000) end,
    function(i, y) return i + 1, y * 1.5 end, { mg.tensor(0), x }, { maximum_iterations = 7 })
end, { { f32{1, 2} }, { f32{-1, 0.5} } } }
case { "while with a shape invariant (doubling)", function(x)
  return mg.while_loop(function(i, y) return mg.less(i, 3) end,
    function(i, y) return i + 1, mg.concat({ y, y + 1 }, 1) end, { mg.tensor(0), x },
    { shape_invariants = { {}, { -1 } } })[2]
end, { { f32{1} }, { f32{5} } } }
case { "nested while", function(x)
  return mg.while_loop(function(i, s) return mg.less(i, 3) end, function(i, s)
    local r = mg.while_loop(function(j, t) return mg.less(j, i + 2) end,
      function(j, t) return j + 1, t + x end, { mg.tensor(0), s })
    return i + 1, r[2]
  end, { mg.tensor(0), mg.zeros_like(x) })[2]
end, { { f32{1, 2} }, { f32{-0.5, 3} } } }
case { "cond inside while (Collatz steps)", function(n)
  local r = mg.while_loop(function(k, steps) return mg.greater(k, 1) end, function(k, steps)
    local nk = mg.cond(mg.equal(k % 2, 0), function() return mg.floordiv(k, 2) end, function() return 3 * k + 1 end)
    return nk, steps + 1
  end, { n, mg.tensor(0) })
  return r[2]
end, { { mg.tensor(6) }, { mg.tensor(27) }, { mg.tensor(1) } } }
case { "while inside cond", function(x, n)
  return mg.cond(mg.greater(n, 0), function()
    return mg.while_loop(function(i, y) return mg.less(i, n) end,
      function(i, y) return i + 1, y * 2 end, { mg.tensor(0), x })[2]
  end, function() return -x end)
end, { { f32(1.5), mg.tensor(3) }, { f32(1.5), mg.tensor(-1) }, { f32(-2), mg.tensor(5) } } }
case { "while with Lua-number loop variables and a tensor condition", function(n)
  -- eagerly the result is a Lua number, staged a tensor: compare as tensors
  return mg.tensor(0) + mg.while_loop(function(i, s) return mg.less(i, n) end,
    function(i, s) return i + 1, s + 2 * i end, { 0, 0 })[2]
end, { { mg.tensor(4) }, { mg.tensor(9) } } }
case { "Lua loop and Lua if at trace time (unrolled)", function(x, n)
  local y = x
  for i = 1, n do
    if i % 2 == 0 then y = y * 2 else y = y + 1 end
  end
  return y
end, { { f32{1, 2}, 5 }, { f32{3, 4}, 5 }, { f32{1, 2}, 2 } } }

-- Variables: reads and assigns in program order ---------------------------------------------
-- (stateful cases build fresh Variables in each run and return their final values too)
case { "TF 2's Variable example", run = function(F)
  local a, b = mg.Variable(1.0), mg.Variable(1.0)
  local f = F(function(x, y)
    a:assign(y * b)
    b:assign_add(x * a)
    return a + b
  end)
  local r1 = f(f32(1.0), f32(2.0))
  local r2 = f(f32(0.5), f32(-1.0))
  return { r1, r2, a:read(), b:read() }
end }
case { "read, assign, read again", run = function(F)
  local v = mg.Variable(f32{1, 2})
  local f = F(function(x)
    local before = v * 1
    v:assign(x)
    local mid = v + 0
    v:assign_add(mid * 2)
    return before, mid, v * 1
  end)
  local out = { pack(f(f32{10, 20})), pack(f(f32{-1, 1})) }
  out[3] = v:read()
  return out
end }
case { "a counter Variable in a while loop", run = function(F)
  local acc = mg.Variable(0.0)
  local f = F(function(n)
    mg.while_loop(function(i) return mg.less(i, n) end, function(i)
      acc:assign_add(mg.cast(i, mg.float32))
      return i + 1
    end, { mg.tensor(0) })
    return acc * 1
  end)
  return { f(mg.tensor(5)), f(mg.tensor(3)), acc:read() }
end }
case { "cond assigning Variables in its branches", run = function(F)
  local pos, neg = mg.Variable(0.0), mg.Variable(0.0)
  local f = F(function(x)
    mg.cond(mg.greater(x, 0), function() pos:assign_add(x) end, function() neg:assign_add(x) end)
    return pos + neg
  end)
  return { f(f32(2)), f(f32(-3)), f(f32(5)), pos:read(), neg:read() }
end }
case { "a Variable passed as an argument", run = function(F)
  local v1, v2 = mg.Variable(f32{1, 2}), mg.Variable(f32{10, 20})
  local f = F(function(v, x) v:assign_add(x); return v * 2 end)
  return { f(v1, f32{1, 1}), f(v2, f32{1, 1}), f(v1, f32{5, 5}), v1:read(), v2:read() }
end }

-- gradients with a tape around a staged call ------------------------------------------------
local function grad_around(F, fn, x, sources)
  local f = F(fn)
  local tape = mg.GradientTape()
  tape:watch(x)
  local y = f(x)
  tape:stop()
  return { y, tape:gradient(y, sources or x) }
end
case { "gradient of sum(sin(x) * x)", run = function(F)
  local fn = function(x) return mg.sum(mg.sin(x) * x) end
  return { grad_around(F, fn, f32{1, 2}), grad_around(F, fn, f32{-0.5, 3}) }
end }
case { "gradient through cond (both branches)", run = function(F)
  local fn = function(x)
    return mg.cond(mg.greater(mg.sum(x), 0), function() return mg.sum(x * x) end,
      function() return mg.sum(mg.sin(x)) end)
  end
  return { grad_around(F, fn, f32{1, 2}), grad_around(F, fn, f32{-1, -2}) }
end }
case { "gradient through while: x^(2^3)", run = function(F)
  local fn = function(x)
    return mg.while_loop(function(i, v) return mg.less(i, 3) end,
      function(i, v) return i + 1, v * v end, { mg.tensor(0), x })[2]
  end
  return { grad_around(F, fn, f32(1.5)), grad_around(F, fn, f32(-0.75)) }
end }
case { "gradient for a Variable through while", run = function(F)
  local w = mg.Variable(f32{2, 0.5})
  local fn = function(x)
    return mg.while_loop(function(i, y) return mg.less(i, 3) end,
      function(i, y) return i + 1, y * w end, { mg.tensor(0), x })[2]
  end
  return grad_around(F, fn, f32{1, 4}, { x = f32{0, 0}, w = w })  -- x here is unconnected: nil
end }
case { "gradient through cond inside while", run = function(F)
  local fn = function(x)
    return mg.while_loop(function(i, y) return mg.less(i, 5) end, function(i, y)
      return i + 1, mg.cond(mg.equal(i % 2, 0), function() return y + 1 end, function() return y * y end)
    end, { mg.tensor(0), x })[2]
  end
  return { grad_around(F, fn, f32(0.7)), grad_around(F, fn, f32(-0.3)) }
end }
case { "second-order gradient through a staged call", run = function(F)
  local cube = F(function(x) return x * x * x end)
  local x = f32(2.0)
  local outer = mg.GradientTape()
  outer:watch(x)
  local inner = mg.GradientTape()
  inner:watch(x)
  local y = cube(x)
  inner:stop()
  local dy = inner:gradient(y, x)
  outer:stop()
  return { y, dy, outer:gradient(dy, x) }
end }
case { "mg.grad of a staged function", run = function(F)
  local f = F(function(x) return mg.sum(mg.exp(x) * x) end)
  return { mg.grad(f)(f32{0, 1, -1}), mg.value_and_grad(f)(f32{2, 0.5}) }
end }

-- staged train steps: a tape inside the staged function ---------------------------------------
case { "linear regression train step", run = function(F)
  local w, b = mg.Variable(mg.zeros{3, 1}), mg.Variable(0.0)
  local X = mg.random.normal({16, 3}, 0, 1, mg.float32, 21)
  local Y = mg.matmul(X, f32{{1}, {-2}, {0.5}}) + 0.3
  local step = F(function(x, y)
    local tape = mg.GradientTape()
    local loss = mg.mean(mg.square(mg.matmul(x, w) + b - y))
    tape:stop()
    local g = tape:gradient(loss, { w, b })
    w:assign_sub(g[1] * 0.1)
    b:assign_sub(g[2] * 0.1)
    return loss
  end)
  local losses = {}
  for i = 1, 20 do losses[i] = step(X, Y) end
  return { losses, w:read(), b:read() }
end }
case { "MLP train step with softmax cross entropy", run = function(F)
  local w1 = mg.Variable(mg.random.normal({4, 8}, 0, 0.5, mg.float32, 31))
  local w2 = mg.Variable(mg.random.normal({8, 3}, 0, 0.5, mg.float32, 32))
  local b1 = mg.Variable(mg.zeros{8})
  local labels = mg.one_hot(mg.tensor{1, 3, 2, 1, 3}, 3)
  local step = F(function(x, y, lr)
    local tape = mg.GradientTape()
    local h = mg.relu(mg.matmul(x, w1) + b1)
    local logits = mg.matmul(h, w2)
    local loss = -mg.mean(mg.sum(y * mg.log_softmax(logits, { axis = -1 }), { axis = -1 }))
    tape:stop()
    local g = tape:gradient(loss, { w1 = w1, b1 = b1, w2 = w2 })
    w1:assign_sub(g.w1 * lr)
    b1:assign_sub(g.b1 * lr)
    w2:assign_sub(g.w2 * lr)
    return loss
  end)
  local losses = {}
  for i = 1, 10 do losses[i] = step(X4, labels, 0.2) end
  return { losses, w1:read(), b1:read(), w2:read() }
end }
case { "train step with a Lua-side schedule argument", run = function(F)
  local v = mg.Variable(f32{3, -2})
  local step = F(function(lr)
    local tape = mg.GradientTape()
    local loss = mg.sum(v * v)
    tape:stop()
    v:assign_sub(tape:gradient(loss, v) * lr)
    return loss
  end)
  return { step(0.1), step(0.1), step(0.25), step(0.1), v:read() }
end }

-- lua_function and print ----------------------------------------------------------------------
case { "lua_function in the middle of a graph", run = function(F)
  local seen = {}
  local f = F(function(x)
    local y = mg.lua_function(function(a)
      seen[#seen + 1] = a:sum():item()
      return a * 10
    end, { x }, { { dtype = mg.float32, shape = { 2 } } })
    return y + 1
  end)
  return { f(f32{1, 2}), f(f32{3, 4}), f(f32{5, 6}), seen }
end }
case { "lua_function with two results of other dtypes", run = function(F)
  local f = F(function(x)
    local idx, big = mg.lua_function(function(a)
      return mg.argmax(a), mg.greater(a, 1)
    end, { x * 2 }, { mg.int64, { dtype = mg.bool, shape = { 3 } } })
    return idx + 1, mg.logical_not(big)
  end)
  return { pack(f(f32{0.1, 2, 0.3})), pack(f(f32{3, 0, 0})) }
end }
case { "mg.print prints on every call", run = function(F)
  local f = F(function(x, tag)
    mg.print(tag, x * 2, "end")
    return x + 1
  end)
  local printed = capture_stdout(function()
    f(mg.tensor{1, 2}, "first")
    f(mg.tensor{3, 4}, "first")
    f(mg.tensor{5, 6}, "second")
  end)
  return { printed }
end }

-- Runs the corpus: the eager run with F = identity, the staged run with F =
-- mg.func wrapping each function so that the Lua body's runs are counted.
local function run_case(c, F)
  if c.run then return c.run(F) end
  local f = F(c[2])
  local out = {}
  for i, args in ipairs(c[3]) do out[i] = pack(f(unpack(args, 1, #args))) end
  return out
end

describe("staged == eager: a corpus of functions", function()
  it("has at least 30 functions", function()
    assert.is_true(#corpus >= 30, "corpus has " .. #corpus)
  end)
  for _, c in ipairs(corpus) do
    it(c[1], function()
      local eager = run_case(c, function(fn) return fn end)
      local staged_fns = {}
      local staged = run_case(c, function(fn, opts)
        local entry = { runs = 0 }
        entry.f = mg.func(function(...)
          entry.runs = entry.runs + 1
          assert.is_false(mg.executing_eagerly(), "the body ran eagerly")
          return fn(...)
        end, opts)
        staged_fns[#staged_fns + 1] = entry
        return entry.f
      end)
      same(staged, eager)
      assert.is_true(#staged_fns > 0)
      for _, e in ipairs(staged_fns) do
        assert.is_true(e.f:trace_count() >= 1, "never traced")
        assert.equal(e.f:trace_count() + e.f:backward_trace_count(), e.runs, "the Lua body ran outside tracing")
      end
    end)
  end
end)

-- ---- TF 2's examples -------------------------------------------------------------------------

describe("TF 2's examples", function()
  it("polymorphism: float32 and uint8 calls make two concrete functions", function()
    local add = mg.func(function(x) return x + x end)
    local a = add(mg.ones{2, 2})
    local b = add(mg.ones({2, 2}, mg.uint8))
    assert.equal("float32", a.dtype)
    assert.equal("uint8", b.dtype)
    near(a, { { 2, 2 }, { 2, 2 } })
    near(b, { { 2, 2 }, { 2, 2 } })
    assert.equal(2, add:trace_count())
    local cf1, cf2 = add:concrete(mg.ones{2, 2}), add:concrete(mg.ones({2, 2}, mg.uint8))
    assert.are_not.equal(cf1, cf2)
    assert.equal(cf1, add:concrete(mg.zeros{2, 2}))  -- same signature, same concrete function
    assert.equal(2, add:trace_count())
    near(cf2(mg.full({2, 2}, 3, mg.uint8)), { { 6, 6 }, { 6, 6 } })
  end)

  it("Variables: a=1, b=1; f(1, 2) = 5, a = 2, b = 3", function()
    local a, b = mg.Variable(1.0), mg.Variable(1.0)
    local f = mg.func(function(x, y)
      a:assign(y * b)
      b:assign_add(x * a)
      return a + b
    end)
    local r = f(1.0, 2.0)
    near(r, 5)
    near(a, 2)
    near(b, 3)
    assert.equal(1, f:trace_count())
    near(f(1.0, 2.0), 2 * 3 + (3 + 6))   -- a = 2*3 = 6, b = 3 + 6 = 9: 15
    near(a, 6)
    near(b, 9)
  end)
end)

-- ---- the signature cache and retracing ---------------------------------------------------------

describe("retracing rules", function()
  it("the same signature never retraces", function()
    local f = mg.func(function(x) return x * 2 end)
    for i = 1, 5 do near(f(f32{i, i}), { 2 * i, 2 * i }) end
    assert.equal(1, f:trace_count())
  end)

  it("a new dtype or shape retraces; old ones stay cached", function()
    local f = mg.func(function(x) return x + 1 end)
    f(f32{1, 2})
    f(f64{1, 2})
    f(f32{1, 2, 3})
    f(f32{{1, 2}})
    assert.equal(4, f:trace_count())
    f(f32{5, 6}); f(f64{0, 0}); f(f32{0, 0, 0})
    assert.equal(4, f:trace_count())
  end)

  it("non-tensor arguments retrace by value", function()
    local f = mg.func(function(x, k, s, b)
      local y = x * k
      if s == "neg" then y = -y end
      if b then y = y + 100 end
      return y
    end)
    local x = f32{1, 2}
    near(f(x, 2, "pos", false), { 2, 4 })
    near(f(x, 3, "pos", false), { 3, 6 })
    near(f(x, 2, "neg", false), { -2, -4 })
    near(f(x, 2, "pos", true), { 102, 104 })
    assert.equal(4, f:trace_count())
    near(f(f32{5, 5}, 3, "pos", false), { 15, 15 })
    assert.equal(4, f:trace_count())
  end)

  it("tables retrace by structure (keys and tensor types), not by tensor values", function()
    local f = mg.func(function(p) return p.a + (p.b or 0) end)
    near(f({ a = f32{1}, b = f32{2} }), { 3 })
    near(f({ a = f32{5}, b = f32{-2} }), { 3 })
    assert.equal(1, f:trace_count())
    near(f({ a = f32{5} }), { 5 })                -- other keys
    assert.equal(2, f:trace_count())
    near(f({ a = f32{5}, b = 1 }), { 6 })         -- a number in a table: by value
    near(f({ a = f32{5}, b = 2 }), { 7 })
    assert.equal(4, f:trace_count())
    near(f({ a = f32{1, 2}, b = f32{2} }), { 3, 4 })  -- a tensor's shape
    assert.equal(5, f:trace_count())
  end)

  it("tables with cycles and shared parts: one description, the same shape inside", function()
    local model = { w = f32{1, 1}, layers = {} }
    model.layers[1] = { parent = model, b = f32{3, 3} }
    model.shared = model.layers[1]
    local f = mg.func(function(m, x)
      assert(m.layers[1].parent == m and m.shared == m.layers[1], "structure lost")
      return x * m.w + m.layers[1].b
    end)
    near(f(model, f32{1, 1}), { 4, 4 })
    model.w = f32{10, 10}              -- a new tensor of the same type: no retrace
    near(f(model, f32{1, 1}), { 13, 13 })
    assert.equal(1, f:trace_count())
  end)

  it("Variables as arguments are keyed by identity", function()
    local v1, v2 = mg.Variable(1.0), mg.Variable(10.0)
    local f = mg.func(function(v) v:assign_add(1); return v * 1 end)
    near(f(v1), 2)
    near(f(v2), 11)
    near(f(v1), 3)
    assert.equal(2, f:trace_count())
  end)

  it("a staged function called while tracing another is inlined", function()
    local inner = mg.func(function(x) return x + 1 end)
    local outer = mg.func(function(x) return inner(x) * 2 end)
    near(outer(f32{1, 2}), { 4, 6 })
    assert.equal(1, outer:trace_count())
    assert.equal(0, inner:trace_count())
  end)
end)

describe("input_signature", function()
  local sig = { mg.TensorSpec{ shape = { -1, 3 }, dtype = mg.float32 } }

  it("one trace with a -1 size serves every batch size", function()
    local W = f32{{1, 0}, {0, 1}, {1, 1}}
    local f = mg.func(function(x) return mg.matmul(x, W), mg.mean(x, { axis = 1 }) end, { input_signature = sig })
    for _, n in ipairs({ 2, 5, 1, 7 }) do
      local x = mg.random.normal({ n, 3 }, 0, 1, mg.float32, n)
      local y, m = f(x)
      assert.same({ n, 2 }, y.shape)
      same(y, mg.matmul(x, W))
      same(m, mg.mean(x, { axis = 1 }))
    end
    assert.equal(1, f:trace_count())
    local s = f:concrete(mg.ones{4, 3}):signature()
    assert.same({ -1, 3 }, s.inputs[1].shape)
    assert.equal("float32", s.inputs[1].dtype)
  end)

  it("-1 sizes reach creation ops and reshape", function()
    local f = mg.func(function(x)
      return mg.reshape(x, { x.shape[1], 3, 1 }), mg.zeros{ x.shape[1] } + 1, mg.ones_like(x) * 2
    end, { input_signature = sig })
    local a, b, c = f(mg.ones{4, 3})
    assert.same({ 4, 3, 1 }, a.shape)
    near(b, { 1, 1, 1, 1 })
    assert.same({ 4, 3 }, c.shape)
    a, b = f(mg.ones{2, 3})
    assert.same({ 2, 3, 1 }, a.shape)
    near(b, { 1, 1 })
    assert.equal(1, f:trace_count())
  end)

  it("-1 sizes that are equal in the traced call are one size to the graph", function()
    local sig2 = { mg.TensorSpec{ shape = { -1, 3 } }, mg.TensorSpec{ shape = { -1 } } }
    local f = mg.func(function(x, y) return mg.sum(x, { axis = 2 }) * y end, { input_signature = sig2 })
    near(f(mg.ones{4, 3}, f32{1, 2, 3, 4}), { 3, 6, 9, 12 })
    near(f(mg.ones{2, 3}, f32{-1, 1}), { -3, 3 })
    assert.equal(1, f:trace_count())
    -- sizes that differ in a later call: a new trace, where they are two sizes
    fails(function() return f(mg.ones{2, 3}, mg.ones{5}) end, "mul", "cannot be broadcast")
    local g = mg.func(function(x, y) return mg.concat({ mg.sum(x, { axis = 2 }), y }, 1) end, { input_signature = sig2 })
    near(g(mg.ones{2, 3}, f32{7, 8}), { 3, 3, 7, 8 })
    near(g(mg.ones{1, 3}, f32{7, 8, 9}), { 3, 7, 8, 9 })
    near(g(mg.ones{3, 3}, f32{1, 1, 1}), { 3, 3, 3, 1, 1, 1 })
    assert.equal(2, g:trace_count())
  end)

  it("a tape inside a function with a -1 size: the gradient of a mean", function()
    local f = mg.func(function(x)
      local tape = mg.GradientTape()
      tape:watch(x)
      local y = mg.mean(x)
      tape:stop()
      return tape:gradient(y, x)
    end, { input_signature = { mg.TensorSpec{ shape = { -1 } } } })
    near(f(mg.ones{4}), { 0.25, 0.25, 0.25, 0.25 })
  end)

  it("a call that does not match is a clear error", function()
    local f = mg.func(function(x) return x end, { input_signature = sig, name = "sigfn" })
    fails(function() return f(mg.ones{2, 4}) end, "sigfn", "argument tensor 1", "float32 (2,4)",
      "does not match its input_signature", "TensorSpec{shape={-1,3}, dtype=float32}")
    fails(function() return f(mg.ones({2, 3}, mg.float64)) end, "sigfn", "float64 (2,3)", "input_signature")
    fails(function() return f(mg.ones{3}) end, "sigfn", "(3)", "does not match")
    fails(function() return f(mg.ones{2, 3}, mg.ones{2, 3}) end, "sigfn", "called with 2 tensors", "has 1")
    assert.equal(0, f:trace_count())
  end)

  it("TensorSpec checks its fields", function()
    fails(function() return mg.TensorSpec{ shape = { -2 } } end, "TensorSpec", "-1 (unknown)")
    fails(function() return mg.TensorSpec{ dtype = mg.float32 } end, "TensorSpec", "shape=")
    fails(function() return mg.func(function() end, { input_signature = { { shape = { 1 } } } }) end,
      "input_signature entry 1 is not a TensorSpec")
    local s = mg.TensorSpec{ shape = { -1, 784 } }
    assert.equal("float32", s.dtype)
    assert.equal("TensorSpec{shape={-1,784}, dtype=float32}", tostring(s))
  end)
end)

describe("reduce_retracing", function()
  it("generalises a changing size to -1: the third size needs no trace", function()
    local f = mg.func(function(x) return mg.sum(x * 2, { axis = 2 }) end, { reduce_retracing = true })
    near(f(mg.ones{2, 3}), { 6, 6 })
    assert.equal(1, f:trace_count())
    near(f(mg.ones{4, 3}), { 6, 6, 6, 6 })
    assert.equal(2, f:trace_count())
    near(f(mg.ones{7, 3}), { 6, 6, 6, 6, 6, 6, 6 })
    near(f(mg.ones{1, 3}), { 6 })
    assert.equal(2, f:trace_count())
    local s = f:concrete(mg.ones{9, 3}):signature()
    assert.same({ -1, 3 }, s.inputs[1].shape)
    f(mg.ones{2, 5})          -- the second size changes too: generalised again
    f(mg.ones{3, 6})
    assert.equal(3, f:trace_count())
  end)

  it("without it every size is a trace", function()
    local f = mg.func(function(x) return x * 2 end)
    for n = 1, 4 do f(mg.ones{n}) end
    assert.equal(4, f:trace_count())
  end)
end)

describe("retracing is never silent", function()
  it("warns when more than 5 of the last 10 calls retraced, naming the function and argument", function()
    local f = mg.func(function(x, n) return x + n end, { name = "retracer" })
    local err = capture_stderr(function()
      for i = 1, 10 do f(f32{1}, i) end
    end)
    assert.truthy(err:find("retracer", 1, true), err)
    assert.truthy(err:find("argument 2", 1, true), err)
    assert.truthy(err:find("number 5", 1, true) and err:find("number 6", 1, true), err)  -- old and new
    assert.truthy(err:find("6 of the last 6 calls", 1, true), err)
    local _, count = err:gsub("warning", "")
    assert.equal(1, count)           -- once, not on every later retrace
  end)

  it("does not warn when retracing is occasional", function()
    local f = mg.func(function(x, n) return x + n end, { name = "calm" })
    local err = capture_stderr(function()
      for i = 1, 20 do f(f32{1}, i % 3) end
    end)
    assert.equal("", err)
    assert.equal(3, f:trace_count())
  end)

  it("names a changed guard in the warning", function()
    local scale = 1
    local f = mg.func(function(x) return x * scale end, { name = "guarded" })
    local err = capture_stderr(function()
      for i = 1, 8 do scale = i; f(f32{1}) end
    end)
    assert.truthy(err:find("guarded", 1, true), err)
    assert.truthy(err:find("upvalue 'scale'", 1, true), err)
  end)

  it("max_traces with on_retrace='error' stops the next trace", function()
    local f = mg.func(function(x) return x end, { max_traces = 2, on_retrace = "error", name = "capped" })
    f(mg.ones{1})
    f(mg.ones{2})
    fails(function() return f(mg.ones{3}) end, "capped", "max_traces=2", "argument 1",
      "float32(2)", "float32(3)")
    near(f(mg.ones{2}), { 1, 1 })   -- the cached ones still run
    assert.equal(2, f:trace_count())
  end)

  it("max_traces with on_retrace='warn' warns and goes on", function()
    local f = mg.func(function(x) return x end, { max_traces = 1, name = "soft" })
    local err = capture_stderr(function()
      f(mg.ones{1})
      near(f(mg.ones{2}), { 1, 1 })
    end)
    assert.truthy(err:find("soft: retracing beyond max_traces=1", 1, true), err)
    assert.equal(2, f:trace_count())
  end)
end)

-- ---- guards -----------------------------------------------------------------------------------

GUARD_SPEC_GLOBAL = 2

describe("guards", function()
  it("a changed upvalue retraces and its new value is used", function()
    local scale = 2
    local f = mg.func(function(x) return x * scale end)
    near(f(f32{1}), { 2 })
    scale = 5
    near(f(f32{1}), { 5 })
    assert.equal(2, f:trace_count())
    scale = 2
    near(f(f32{1}), { 2 })         -- the first concrete function fits again
    assert.equal(2, f:trace_count())
  end)

  it("a changed global retraces and its new value is used", function()
    local f = mg.func(function(x) return x + GUARD_SPEC_GLOBAL end)
    near(f(f32{1}), { 3 })
    GUARD_SPEC_GLOBAL = 10
    near(f(f32{1}), { 11 })
    assert.equal(2, f:trace_count())
    GUARD_SPEC_GLOBAL = 2
  end)

  it("strings and booleans are guarded too", function()
    local mode, training = "sum", true
    local f = mg.func(function(x)
      local y = mode == "sum" and mg.sum(x) or mg.max(x)
      if training then y = y * 10 end
      return y
    end)
    near(f(f32{1, 2}), 30)
    mode = "max"
    near(f(f32{1, 2}), 20)
    training = false
    near(f(f32{1, 2}), 2)
    assert.equal(3, f:trace_count())
  end)

  it("unchanged guards do not retrace (also on the fast path)", function()
    local k = 3
    local f = mg.func(function(x) return x * k end)
    for _ = 1, 5 do near(f(f32{1}), { 3 }) end
    assert.equal(1, f:trace_count())
  end)

  it("a counter the trace itself increments is state, not a guard", function()
    local traces = 0
    local f = mg.func(function(x) traces = traces + 1; return x * 2 end)
    for _ = 1, 4 do f(f32{1}) end
    assert.equal(1, traces)
    assert.equal(1, f:trace_count())
  end)

  it("a counter a lua_function bumps at run time is not a guard", function()
    local calls = 0
    local f = mg.func(function(x)
      return mg.lua_function(function(a) calls = calls + 1; return a + calls end, { x }, { mg.float32 })
    end)
    near(f(f32(0)), 1)
    near(f(f32(0)), 2)
    near(f(f32(0)), 3)
    assert.equal(3, calls)
    assert.equal(1, f:trace_count())
  end)
end)

-- ---- lua_function checks what the function returns ----------------------------------------------
--
-- Issue 14: a declared {2000} and a returned {1} went through unchecked (the graph then ran
-- kernels planned for the wrong size). Every run checks each result against its declared dtype
-- and shape (-1 matches any size; a dtype alone declares a 0-d result) and the number of
-- results, eagerly and staged, in loops and branches, the tape's node-by-node path included;
-- the error names the Lua function by where it was defined.

describe("lua_function checks each result against its declaration", function()
  local spec2000 = mg.TensorSpec { shape = { 2000 }, dtype = mg.float32 }
  local function defined(fn)
    local d = debug.getinfo(fn, "S")
    return ("the Lua function defined at %s:%d"):format(d.short_src, d.linedefined)
  end
  local function one(v) return mg.tensor({ 1 }, mg.float32) end

  it("the issue's repro: staged, a declared (2000) and a returned (1) is an error", function()
    local f = mg.func(function(x)
      return mg.lua_function(one, { x }, { spec2000 })
    end)
    fails(function() return f(f32 { 1 }) end, "lua_function: result 1 of " .. defined(one),
      "is float32 (1), but it was declared float32 (2000)")
  end)

  it("eagerly as well, at the caller's line", function()
    local err = fails(function()
      local r = mg.lua_function(one, { f32 { 1 } }, { spec2000 })  -- not a tail call: this line is named
      return r
    end,
      "lua_function: result 1 of " .. defined(one), "float32 (2000)")
    assert.matches("^[^:]*staging_spec%.lua:%d+: lua_function", err)
  end)

  it("a dtype that differs, and a dtype alone declaring a 0-d result", function()
    local function ints(a) return mg.cast(a, mg.int64) end
    local f = mg.func(function(x)
      return mg.lua_function(ints, { x }, { { dtype = mg.float32, shape = { 2 } } })
    end)
    fails(function() return f(f32 { 1, 2 }) end, defined(ints), "is int64 (2), but it was declared float32 (2)")
    local function same(a) return a end
    fails(function() return mg.lua_function(same, { f32 { 1, 2, 3 } }, { mg.float32 }) end, defined(same),
      "is float32 (3), but it was declared float32 ()")
  end)

  it("the number of results", function()
    local function two(a) return a, a end
    fails(function() return mg.lua_function(two, { f32 { 1 } }, { { dtype = mg.float32, shape = { 1 } } }) end,
      "lua_function: " .. defined(two) .. " returned 2 values, but 1 was declared (out_types)")
    local function none() end
    local f = mg.func(function(x)
      return mg.lua_function(none, { x }, { mg.float32, mg.float32 })
    end)
    fails(function() return f(f32(1)) end, defined(none) .. " returned 0 values, but 2 were declared")
  end)

  it("-1 matches any size, and the size it had is the graph's from then on", function()
    local function first_n(a) return a:slice { { 1, a[1]:item() } } end
    local f = mg.func(function(x)
      local y = mg.lua_function(first_n, { x }, { { dtype = mg.float32, shape = { -1 } } })
      return mg.sum(y), y * 2, mg.reshape(y, { 1, -1 })
    end)
    local s, y2, r = f(f32 { 2, 5, 7, 9 })
    near(s, 7)
    near(y2, { 4, 10 })
    assert.same({ 1, 2 }, r.shape)
    s, y2 = f(f32 { 3, 5, 7, 9 })
    near(s, 15)
    near(y2, { 6, 10, 14 })
    assert.equal(1, f:trace_count())
    local g = mg.func(function(x)
      return mg.lua_function(first_n, { x }, { { dtype = mg.float32, shape = { 2 } } })
    end)
    near(g(f32 { 2, 5, 7 }), { 2, 5 })
    fails(function() return g(f32 { 3, 5, 7 }) end, "is float32 (3), but it was declared float32 (2)")
  end)

  it("in every graph path: a loop body, a branch, unoptimised, under a tape", function()
    local function grow(a) return mg.concat { a, a } end
    local looped = mg.func(function(x)
      local i = mg.tensor(0)
      while i < 2 do
        x = mg.lua_function(grow, { x }, { { dtype = mg.float32, shape = { 2 } } })
        i = i + 1
      end
      return x
    end)
    -- the first iteration makes (2) as declared; the second (4)
    fails(function() return looped(f32 { 1 }) end, defined(grow), "is float32 (4), but it was declared float32 (2)")
    local branch = mg.func(function(x, flag)
      if flag > 0 then
        x = mg.lua_function(grow, { x }, { { dtype = mg.float32, shape = { 1 } } })
      end
      return x
    end)
    near(branch(f32 { 1 }, mg.tensor(0)), { 1 })
    fails(function() return branch(f32 { 1 }, mg.tensor(1)) end, defined(grow), "is float32 (2), but it was declared float32 (1)")
    local plain = mg.func(function(x)
      return mg.lua_function(grow, { x }, { { dtype = mg.float32, shape = { 3 } } }) * 1
    end, { optimize = false })
    fails(function() return plain(f32 { 1 }) end, "is float32 (2), but it was declared float32 (3)")
    local taped = mg.func(function(x)
      return mg.sum(x * x) + mg.sum(mg.stop_gradient(mg.lua_function(grow, { x }, { { dtype = mg.float32, shape = { 3 } } })))
    end)
    fails(function()
      local tape = mg.GradientTape()
      local x = f32 { 1 }
      tape:watch(x)
      taped(x)
      tape:stop()
    end, "is float32 (2), but it was declared float32 (3)")
  end)

  it("a Lua number result takes the declared dtype when it fits it", function()
    local function count(a) return a:numel() end
    local f = mg.func(function(x)
      return mg.lua_function(count, { x }, { mg.float32 }) + 0.5
    end)
    near(f(f32 { 1, 2, 3 }), 3.5)
    assert.equal("float32", f(f32 { 1 }).dtype)
    local function big() return 300 end
    fails(function() return mg.lua_function(big, {}, { mg.uint8 }) end,
      "lua_function: the Lua number 300 is out of bounds for uint8")
  end)
end)

-- ---- tracing semantics -------------------------------------------------------------------------

describe("tracing", function()
  it("Lua side effects run at trace time only; mg.print runs every call", function()
    local lua_prints = 0
    local f = mg.func(function(x)
      lua_prints = lua_prints + 1
      mg.print("value:", x)
      return x
    end)
    local out = capture_stdout(function()
      f(mg.tensor(1)); f(mg.tensor(2)); f(mg.tensor(3))
    end)
    assert.equal(1, lua_prints)
    assert.equal("value:\ttensor(1, dtype=int64)\nvalue:\ttensor(2, dtype=int64)\nvalue:\ttensor(3, dtype=int64)\n", out)
  end)

  it("mg.print outside a staged function prints at once", function()
    local out = capture_stdout(function() mg.print("eager", mg.tensor{1.5, 2}, 3) end)
    assert.equal("eager\ttensor([1.5, 2. ], dtype=float32)\t3\n", out)
  end)

  it("executing_eagerly is false while tracing, true outside", function()
    local inside
    local f = mg.func(function(x) inside = mg.executing_eagerly(); return x end)
    assert.is_true(mg.executing_eagerly())
    f(f32{1})
    assert.is_false(inside)
    assert.is_true(mg.executing_eagerly())
  end)

  it("a symbolic tensor that escapes its trace names where it was created", function()
    local escaped
    local f = mg.func(function(x)
      escaped = x * 2
      return x
    end, { name = "leaky" })
    f(f32{1, 2})
    local err = fails(function() return escaped + 1 end, "escaped its trace", "leaky", "staging_spec.lua:")
    -- created at the line of `escaped = x * 2`, used here
    assert.truthy(err:find("created at [^)]*staging_spec%.lua:%d+"), err)
    fails(function() return escaped:totable() end, "symbolic tensor")
  end)

  it("a Variable may be created on the first trace only", function()
    local f = mg.func(function(x)
      local v = mg.Variable(f32{1, 1})
      return x + v
    end)
    near(f(f32{1, 2}), { 2, 3 })
    near(f(f32{5, 6}), { 6, 7 })
    fails(function() return f(f32{1, 2, 3}) end, "Variable", "retracing", "first call")
    fails(function() return mg.func(function(x) return mg.Variable(x) end)(f32{1}) end,
      "Variable", "initial value depends on the staged function's arguments")
  end)

  it("Lua comparisons (without AutoGraph) and item() on symbolic tensors are clear errors", function()
    local f = mg.func(function(x) if x < 0 then return -x end return x end, { autograph = false })
    fails(function() return f(f32(1)) end, "'<' on a symbolic tensor", "mg.less")
    local g = mg.func(function(x) return x:item() end, { autograph = false })
    fails(function() return g(f32(1)) end, "item", "symbolic tensor", "mg.print")
    -- the function stays usable: a failed trace leaves no graph behind
    assert.equal(0, f:trace_count())
    assert.is_true(mg.executing_eagerly())
  end)

  it("mg.config.run_functions_eagerly(true) runs the Lua body on every call", function()
    local runs, eager = 0, nil
    local f = mg.func(function(x) runs = runs + 1; eager = mg.executing_eagerly(); return x * 2 end)
    mg.config.run_functions_eagerly(true)
    local ok, err = pcall(function()
      near(f(f32{1}), { 2 })
      near(f(f32{2}), { 4 })
    end)
    mg.config.run_functions_eagerly(false)
    assert(ok, err)
    assert.equal(2, runs)
    assert.is_true(eager)
    assert.equal(0, f:trace_count())
    near(f(f32{3}), { 6 })
    assert.equal(3, runs)
    assert.is_false(eager)
    assert.equal(1, f:trace_count())
  end)

  it("mg.func checks its argument", function()
    fails(function() return mg.func(42) end, "func: expected a function, got number")
  end)
end)

describe("graph introspection", function()
  local W = f32{{1, 2}, {3, 4}}
  local f = mg.func(function(x) return mg.relu(mg.matmul(x, W)) + 1 end, { name = "layer", optimize = false })
  local cf = f:concrete(mg.ones{3, 2})

  it("f:concrete traces once and returns a callable concrete function", function()
    assert.equal(1, f:trace_count())
    assert.equal(cf, f:concrete(mg.zeros{3, 2}))
    near(cf(f32{{1, 0}, {0, 1}, {-1, -1}}), { { 2, 3 }, { 4, 5 }, { 1, 1 } })
    fails(function() return cf(mg.ones{4, 2}) end, "input 1", "float32 (4,2)", "(3,2)")
  end)

  it("cf:graph() lists the nodes", function()
    local nodes = cf:graph()
    local ops, kinds = {}, {}
    for _, n in ipairs(nodes) do
      kinds[n.kind] = (kinds[n.kind] or 0) + 1
      if n.kind == "op" then ops[#ops + 1] = n.op end
      assert.is_table(n.inputs)
      assert.is_table(n.outputs)
    end
    assert.equal(1, kinds.input)
    assert.same({ "matmul", "relu", "add" }, ops)
  end)

  it("cf:pretty() and cf:to_dot() print it", function()
    local text = cf:pretty()
    assert.truthy(text:find("graph layer", 1, true), text)
    assert.truthy(text:find("matmul", 1, true), text)
    assert.truthy(text:find("float32[3,2]", 1, true), text)
    local dot = cf:to_dot()
    assert.truthy(dot:find("digraph", 1, true), dot)
    assert.truthy(dot:find("matmul", 1, true), dot)
  end)

  it("cond and while nodes own subgraphs", function()
    local g = mg.func(function(x)
      return mg.while_loop(function(i, y) return mg.less(i, 3) end,
        function(i, y) return i + 1, mg.cond(mg.greater(y, 0), function() return y * 2 end, function() return y end) end,
        { mg.tensor(0), x })[2]
    end)
    local text = g:concrete(f32(1)):pretty()
    for _, w in ipairs({ "while(", "cond {", "body {", "cond(" }) do
      assert.truthy(text:find(w, 1, true), ("%q not in\n%s"):format(w, text))
    end
  end)
end)

-- ---- control flow: eager use and errors -------------------------------------------------------

describe("mg.cond and mg.while_loop", function()
  it("run as plain Lua outside staged functions", function()
    near(mg.cond(mg.tensor(true), function() return 1 end, function() return 2 end), 1)
    near(mg.cond(f32(0), function() return 1 end, function() return 2 end), 2)
    local r = mg.while_loop(function(i, s) return mg.less(i, 5) end, function(i, s) return i + 1, s + i end,
      { mg.tensor(0), mg.tensor(0) })
    near(r[1], 5)
    near(r[2], 10)
    r = mg.while_loop(function(i) return i < 100 end, function(i) return i + 1 end, { 0 }, { maximum_iterations = 4 })
    assert.equal(4, r[1])
  end)

  it("a loop variable changing dtype names the variable (staged and eager)", function()
    local body = function(i, y) return mg.cast(i + 1, mg.float32), y end
    local f = mg.func(function(x) return mg.while_loop(function(i) return mg.less(i, 3) end, body, { mg.tensor(0), x }) end)
    fails(function() return f(f32(1)) end, "while_loop", "loop variable 1", "int64", "float32")
    fails(function() return mg.while_loop(function(i) return mg.less(i, 3) end, body, { mg.tensor(0), f32(1) }) end,
      "while_loop", "loop variable 1", "int64 ()", "float32 ()")
  end)

  it("a loop variable changing shape names the variable; shape_invariants allows it", function()
    local body = function(i, y) return i + 1, mg.concat({ y, y }, 1) end
    local cond = function(i) return mg.less(i, 3) end
    local f = mg.func(function(x) return mg.while_loop(cond, body, { mg.tensor(0), x })[2] end)
    fails(function() return f(f32{1}) end, "loop variable 2", "float32 (1)", "float32 (2)", "shape_invariants")
    fails(function() return mg.while_loop(cond, body, { mg.tensor(0), f32{1} }) end, "loop variable 2", "shape_invariants")
    local g = mg.func(function(x) return mg.while_loop(cond, body, { mg.tensor(0), x }, { shape_invariants = { {}, { -1 } } })[2] end)
    near(g(f32{1}), { 1, 1, 1, 1, 1, 1, 1, 1 })
    near(mg.while_loop(cond, body, { mg.tensor(0), f32{1} }, { shape_invariants = { {}, { -1 } } })[2],
      { 1, 1, 1, 1, 1, 1, 1, 1 })
    fails(function() return mg.func(function(x)
      return mg.while_loop(cond, body, { mg.tensor(0), x }, { shape_invariants = { {}, { -1, -1 } } })
    end)(f32{1}) end, "shape_invariants[2] has 2 dimensions", "loop variable 2 has 1")
  end)

  it("maximum_iterations caps a staged loop; 0 runs no iteration", function()
    local f = mg.func(function(x, cap)
      return mg.while_loop(function(i) return mg.less(i, 100) end, function(i) return i + 1 end, { x },
        { maximum_iterations = cap })[1]
    end)
    near(f(mg.tensor(0), 7), 7)
    near(f(mg.tensor(95), 7), 100)
    near(f(mg.tensor(0), 0), 0)
  end)

  it("the body must return one value per loop variable", function()
    local f = mg.func(function(x)
      return mg.while_loop(function(i, y) return mg.less(i, 3) end, function(i, y) return i + 1 end, { mg.tensor(0), x })
    end)
    fails(function() return f(f32(1)) end, "while_loop: the body returns 1 values for 2 loop variables")
  end)

  it("cond branches returning different dtypes, shapes or counts are clear errors", function()
    local pick = function(a, b) return mg.func(function(x) return mg.cond(mg.greater(x, 0), a(x), b(x)) end) end
    fails(function() return pick(function(x) return function() return x end end,
      function(x) return function() return mg.cast(x, mg.int32) end end)(f32(1)) end,
      "cond", "value 1", "float32 ()", "int32 ()")
    fails(function() return pick(function(x) return function() return x end end,
      function() return function() return mg.ones{3} end end)(f32(1)) end,
      "cond", "value 1", "float32 (3)")
    fails(function() return pick(function(x) return function() return x, x end end,
      function(x) return function() return x end end)(f32(1)) end,
      "cond: the true branch returns 2 values and the false branch 1")
  end)

  it("a condition must have one element", function()
    local f = mg.func(function(x) return mg.cond(mg.greater(x, 0), function() return x end, function() return -x end) end)
    fails(function() return f(f32{1, 2}) end, "cond", "one element")
    fails(function() return mg.cond(f32{1, 2}, function() end, function() end) end, "one element", "mg.all")
  end)

  it("branch errors abort the trace cleanly", function()
    local f = mg.func(function(x)
      return mg.cond(mg.greater(x, 0), function() error("boom in branch") end, function() return x end)
    end)
    fails(function() return f(f32(1)) end, "boom in branch")
    assert.is_true(mg.executing_eagerly())
    assert.equal(0, f:trace_count())
    near(mg.func(function(x) return x + 1 end)(f32(1)), 2)  -- tracing still works
  end)
end)

describe("gradients inside staged functions", function()
  it("a tape inside gets gradients of plain ops (a staged train step)", function()
    local w = mg.Variable(f32{1, -1})
    local step = mg.func(function(x)
      local tape = mg.GradientTape()
      local loss = mg.sum(w * w * x)
      tape:stop()
      local g = tape:gradient(loss, w)
      w:assign_sub(g * 0.25)
      return loss, g
    end)
    local loss, g = step(f32{1, 2})
    near(loss, 3)
    near(g, { 2, -4 })          -- 2 w x
    near(w, { 0.5, 0 })
    loss, g = step(f32{1, 2})
    near(loss, 0.25)
    near(g, { 1, 0 })
    assert.equal(1, step:trace_count())
  end)

  it("a tape inside gets gradients through cond and while", function()
    local w = mg.Variable(2.0)
    local f = mg.func(function(x)
      local tape = mg.GradientTape()
      local a = mg.cond(mg.greater(x, 0), function() return x * w end, function() return x end)
      local b = mg.while_loop(function(i, y) return mg.less(i, 3) end, function(i, y) return i + 1, y * w end,
        { mg.tensor(0), x })[2]
      local y = a + b   -- recorded (TF: an op after the tape stops is not)
      tape:stop()
      return tape:gradient(y, w)
    end)
    near(f(f32(1)), 1 + 3 * 4)   -- d(x w)/dw + d(x w^3)/dw at x = 1, w = 2
    near(f(f32(-1)), -3 * 4)     -- the else branch does not use w
  end)
end)
