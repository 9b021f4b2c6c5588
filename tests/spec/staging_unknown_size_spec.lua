-- staging_unknown_size_spec.lua — a -1 size of an input signature, read
-- while tracing (x.shape[i], #x, x:numel()), is an unknown-size object, not
-- the placeholder number behind it: Lua arithmetic, ordering and
-- concatenation on it raise an error naming the traced function (they used
-- to bake the placeholder into the graph: a silent wrong answer), while
-- every op taking a shape or an integer accepts it and uses the call's real
-- size. The stdlib (metrics, layers, losses) keeps working staged with a -1
-- batch size and gives the eager results.
local mg = require "moongrad"
local core = require "moongrad.core"
local helpers = require "tests.spec.helpers"
local fails, near = helpers.fails, helpers.near
local nn = mg.nn

local function spec(shape, dtype) return mg.TensorSpec { shape = shape, dtype = dtype } end

-- Stages fn(x) over x of shape {-1, 3} and calls it with a batch of two.
local function traced(fn, name)
  local f = mg.func(fn, { input_signature = { spec({ -1, 3 }) }, name = name or "trap" })
  return f(mg.ones({ 2, 3 }))
end

local TEXT = "shape[1] of a traced tensor is unknown while tracing 'trap' (a -1 size of its input signature)"

describe("an unknown size while tracing", function()
  it("refuses Lua arithmetic, naming the traced function and what to use instead", function()
    for op, f in pairs({
      ["'*'"] = function(n) return n * 2 end,
      ["'/'"] = function(n) return 1 / n end,
      ["'-'"] = function(n) return n - 1 end,
      ["'+'"] = function(n) return 1 + n end,
      ["'%'"] = function(n) return n % 2 end,
      ["'^'"] = function(n) return n ^ 2 end,
    }) do
      fails(function() traced(function(x) return x + f(x.shape[1]) end) end, TEXT,
        "Lua arithmetic " .. op .. " on it would bake a placeholder into the graph",
        "use ops (mg.shape(x), mg.mean, reshape's -1, mg.sum(mg.ones_like(x)))")
    end
    fails(function() traced(function(x) return x + (-x.shape[1]) end) end, TEXT, "Lua arithmetic '-' on it")
  end)

  it("refuses ordering comparisons and concatenation, with a number on either side", function()
    fails(function() traced(function(x) if x.shape[1] < 8 then return x end return x end) end, TEXT,
      "a Lua comparison '<' of it")
    fails(function() traced(function(x) if 8 <= x.shape[1] then return x end return x end) end, TEXT,
      "a Lua comparison '<=' of it")
    fails(function() traced(function(x) if x.shape[1] > 8 then return x end return x end) end, TEXT,
      "a Lua comparison '<' of it")
    fails(function() traced(function(x) error("batch " .. x.shape[1]) end) end, TEXT,
      "Lua concatenation '..' of it")
  end)

  it("refuses to become a value: a tensor operand or tensor data", function()
    fails(function() traced(function(x) return x * x.shape[1] end) end, TEXT,
      "using it as argument #2 of 'mul' would bake a placeholder")
    fails(function() traced(function(x) return mg.tensor({ x.shape[1] }) end) end, TEXT,
      "putting it in a tensor's data")
  end)

  it("#x and x:numel() are unknown too; the error points at the user's line", function()
    local function f(x) return #x * x end
    local line = debug.getinfo(f, "S").linedefined
    fails(function() traced(f) end, "staging_unknown_size_spec.lua:" .. line .. ":",
      "#t (size 1 of a traced tensor) is unknown while tracing 'trap'", "Lua arithmetic '*' on it")
    fails(function() traced(function(x) return x:numel() / 2 end) end,
      "t:numel() of a traced tensor with an unknown size is unknown while tracing 'trap'", "Lua arithmetic '/'")
    fails(function() traced(function(x) return mg.sum(x) / x:numel() end) end,
      "t:numel() of a traced tensor with an unknown size", "using it as argument #2 of 'div'")
    -- numel of an unknown shape is no size: it cannot stand in a shape either
    fails(function() traced(function(x) return mg.zeros({ x:numel() }) end) end, "zeros: t:numel() of a traced tensor",
      "using it as option 'shape' of")
  end)

  it("prints as ?, equals the same unknown size and no number, and is recognisable", function()
    local seen = {}
    traced(function(x)
      local n = x.shape[1]
      seen.str = tostring(n)
      seen.same = (n == x.shape[1]) and (#x == n)
      seen.number = (n == 2) or (n == 16777213)
      seen.known = x.shape[2]
      seen.unknown = core.is_unknown_size(n) and mg.core.is_unknown_size(#x)
      seen.not_unknown = core.is_unknown_size(x.shape[2]) or core.is_unknown_size(3) or core.is_unknown_size(nil)
      return x
    end)
    assert.equal("?", seen.str)
    assert.is_true(seen.same)
    assert.is_false(seen.number)
    assert.equal(3, seen.known)
    assert.is_true(seen.unknown)
    assert.is_false(seen.not_unknown)
    -- two different unknown sizes are not equal
    local f = mg.func(function(a, b)
      seen.diff = a.shape[1] == b.shape[1]
      return a
    end, { input_signature = { spec({ -1 }), spec({ -1 }) } })
    f(mg.ones({ 2 }), mg.ones({ 3 }))
    assert.is_false(seen.diff)
  end)

  it("is a real size to ops that take a shape: each call uses its own batch size", function()
    local f = mg.func(function(x)
      local n = x.shape[1]
      local z = mg.zeros({ n, 2 })                      -- creation ops
      local o = mg.ones({ n })
      local v = mg.full({ n, 1 }, 7)
      local r = mg.reshape(x, { n, -1 })                -- reshape with the size and a -1
      local r2 = x:reshape({ #x, 3 })
      local b = mg.broadcast_to(mg.reshape(mg.sum(x, 2), { n, 1 }), { n, 4 })
      local s = mg.shape(x)                             -- the runtime shape still works
      return z, o, v, r, r2, b, s
    end, { input_signature = { spec({ -1, 3 }) } })
    for _, batch in ipairs({ 2, 5 }) do
      local x = mg.reshape(mg.arange(batch * 3), { batch, 3 })
      local z, o, v, r, r2, b, s = f(mg.cast(x, mg.float32))
      assert.same({ batch, 2 }, z.shape)
      assert.same({ batch }, o.shape)
      assert.same({ batch, 1 }, v.shape)
      near(mg.sum(v), 7 * batch)
      assert.same({ batch, 3 }, r.shape)
      assert.same({ batch, 3 }, r2.shape)
      assert.same({ batch, 4 }, b.shape)
      assert.same({ batch, 3 }, s:totable())
    end
  end)

  it("mean by hand with ops gives the call's answer", function()
    local f = mg.func(function(x) return mg.sum(x) / mg.sum(mg.ones_like(x)) end,
      { input_signature = { spec({ -1 }) } })
    near(f(mg.tensor({ 1, 2, 3 }, mg.float32)), 2)
    near(f(mg.tensor({ 4, 6 }, mg.float32)), 5)
  end)

  it("is an integer outside tracing, and known sizes stay integers while tracing", function()
    local x = mg.ones({ 4, 3 })
    assert.equal(8, x.shape[1] * 2)
    assert.equal(4, #x)
    assert.equal(12, x:numel())
    local known
    mg.func(function(t) known = t.shape[1] * t.shape[2] + #t; return t end)(x)
    assert.equal(16, known)
  end)

  it("also comes from reduce_retracing's generalised sizes", function()
    local seen
    local f = mg.func(function(x)
      seen = x.shape[1]
      return mg.reshape(x, { x.shape[1], 1 })
    end, { reduce_retracing = true, name = "rr" })
    f(mg.ones({ 2 }))
    assert.equal(2, seen)
    local out = f(mg.ones({ 3 }))
    assert.is_true(core.is_unknown_size(seen))
    assert.same({ 3, 1 }, out.shape)
    assert.same({ 4, 1 }, f(mg.ones({ 4 })).shape)
    fails(function()
      mg.func(function(x) return x * (x.shape[1] - 1) end, { reduce_retracing = true, name = "rr2" })(mg.ones({ 2 }))
      local g = mg.func(function(x) return x * (x.shape[1] - 1) end, { reduce_retracing = true, name = "rr3" })
      g(mg.ones({ 2 }))
      g(mg.ones({ 3 }))
    end, "shape[1] of a traced tensor is unknown while tracing 'rr3'")
  end)
end)

describe("the stdlib staged with a -1 batch size", function()
  -- One training step: the loss before the update, the metric states after.
  local function make_step(model, opt, loss_fn, acc, mean)
    return function(x, y)
      local tape = mg.GradientTape()
      local logits = model(x, true)
      local loss = loss_fn(y, logits)
      local grads = tape:gradient(loss, model.trainable_weights)
      opt:apply_gradients(grads, model.trainable_weights)
      acc:update_state(y, logits)
      mean:update_state(mg.sum(logits * logits, 2))
      return loss
    end
  end

  local function build()
    mg.random.seed(7)
    local model = nn.Sequential { nn.Input { shape = { 4 } }, nn.Dense(6, { activation = "relu" }),
      nn.Reshape { 2, 3 }, nn.Flatten(), nn.Dense(3) }
    local opt = mg.optim.SGD { learning_rate = 0.1 }
    local loss_fn = mg.losses.SparseCategoricalCrossentropy { from_logits = true }
    local acc, mean = mg.metrics.SparseCategoricalAccuracy(), mg.metrics.Mean()
    return model, opt, loss_fn, acc, mean
  end

  local function batches()
    mg.random.seed(11)
    local out = {}
    for i, n in ipairs({ 5, 3, 5, 2 }) do     -- ragged batch sizes: one trace must serve them all
      out[i] = { mg.random.normal({ n, 4 }), mg.cast(mg.random.uniform({ n }, 0, 3), mg.int64) + 1 }
    end
    return out
  end

  it("trains a Keras-style model to the same losses and metrics as eager", function()
    local data = batches()
    local m1, o1, l1, a1, s1 = build()
    local eager = make_step(m1, o1, l1, a1, s1)
    local m2, o2, l2, a2, s2 = build()
    local staged = mg.func(make_step(m2, o2, l2, a2, s2), { name = "train_step",
      input_signature = { spec({ -1, 4 }), spec({ -1 }, mg.int64) } })
    for _, b in ipairs(data) do
      near(staged(b[1], b[2]), eager(b[1], b[2]):item(), 1e-5)
    end
    assert.equal(1, staged:trace_count())
    near(a2:result(), a1:result():item(), 1e-6)
    near(s2:result(), s1:result():item(), 1e-4)
    near(s2.count, 15)                            -- 5 + 3 + 5 + 2 samples, not a placeholder count
    near(m2.layers[#m2.layers].kernel, m1.layers[#m1.layers].kernel, 1e-5)
    -- and evaluation with the trained model, staged, matches eager too
    local evaluate = mg.func(function(x, y) return l2(y, m2(x, false)) end,
      { input_signature = { spec({ -1, 4 }), spec({ -1 }, mg.int64) } })
    for _, b in ipairs(data) do near(evaluate(b[1], b[2]), l1(b[2], m1(b[1], false)):item(), 1e-5) end
  end)

  it("runs recurrent layers over an unknown batch and time axis (the loop bound is counted at run time)", function()
    mg.random.seed(5)
    local lstm, rnn, flat = nn.LSTM(4, { return_sequences = true }), nn.SimpleRNN(3), nn.Flatten()
    local x1, x2 = mg.random.normal({ 2, 5, 3 }), mg.random.normal({ 3, 2, 3 })
    local want1, want2 = flat(lstm(x1)), flat(lstm(x2))     -- eager first: builds the weights
    local r1, r2 = rnn(x1), rnn(x2)
    local f = mg.func(function(x) return flat(lstm(x)), rnn(x) end,
      { input_signature = { spec({ -1, -1, 3 }) }, name = "rnn_step" })
    local got1, g1 = f(x1)
    local got2, g2 = f(x2)
    assert.same({ 2, 20 }, got1.shape)
    assert.same({ 3, 8 }, got2.shape)
    near(got1, want1, 1e-5)
    near(got2, want2, 1e-5)
    near(g1, r1, 1e-5)
    near(g2, r2, 1e-5)
    local unrolled = nn.SimpleRNN(2, { unroll = true })
    unrolled(x1)
    fails(function()
      mg.func(function(x) return unrolled(x) end, { input_signature = { spec({ -1, -1, 3 }) } })(x1)
    end, "unroll = true needs a known number of time steps")
  end)

  it("takes batch Jacobians with an unknown batch size", function()
    local function jac(x)
      local tape = mg.GradientTape()
      tape:watch(x)
      local y = x * x
      tape:stop()
      return tape:batch_jacobian(y, x)
    end
    local x = mg.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, mg.float32)
    local staged = mg.func(jac, { input_signature = { spec({ -1, 2 }) } })
    near(staged(x), jac(x))
    near(staged(mg.tensor({ { 7, 8 } }, mg.float32)), { { { 14, 0 }, { 0, 16 } } })
  end)
end)
