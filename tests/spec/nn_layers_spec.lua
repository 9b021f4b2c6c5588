-- nn_layers_spec.lua — mg.nn layers: constructor forms, lazy building,
-- weights, output shapes (symbolic and concrete agree), values against
-- hand-computed small cases, training/inference behaviour, configs and the
-- errors raised while a model is defined. Recurrent layers are checked
-- against a scalar Lua reference of Keras's equations, eagerly and staged.
local mg = require "moongrad"
local nn = mg.nn
local h = require "tests.spec.nn_helpers"
local near, fails, shape = h.near, h.fails, h.shape

local function tanh(x) local e = math.exp(2 * x); return (e - 1) / (e + 1) end
local function sigmoid(x) return 1 / (1 + math.exp(-x)) end

describe("nn layer constructors", function()
  it("take a table, leading positionals, or both", function()
    local a = nn.Dense { units = 4, activation = "relu" }
    local b = nn.Dense(4, { activation = "relu" })
    local c = nn.Dense { 4, activation = "relu" }
    for _, l in ipairs({ a, b, c }) do
      assert.equal(4, l.units)
      assert.equal("relu", l:get_config().activation)
    end
    local conv = nn.Conv2D(32, 5, { padding = "same" })
    assert.same({ 5, 5 }, conv.kernel_size)
    assert.same({ 1, 1 }, conv.strides)
    assert.equal("same", conv.padding)
    assert.same({ 28, 28, 1 }, nn.Reshape { 28, 28, 1 }.target_shape)
    assert.same({ 7, 7, 64 }, nn.Reshape({ 7, 7, 64 }, { name = "r" }).target_shape)
  end)

  it("give Keras-style unique names", function()
    nn.clear_session()
    assert.equal("dense", nn.Dense(1).name)
    assert.equal("dense_1", nn.Dense(1).name)
    assert.equal("max_pooling2d", nn.MaxPooling2D().name)
    assert.equal("simple_rnn", nn.SimpleRNN(2).name)
    assert.equal("mine", nn.Dense(1, { name = "mine" }).name)
  end)

  it("reject unknown options and bad values", function()
    fails(function() nn.Dense(4, { activaton = "relu" }) end, "Dense", "unknown option 'activaton'")
    fails(function() nn.Dense(0) end, "Dense: option 'units' must be in [1, inf), got 0")
    fails(function() nn.Dense(1, 2) end, "positional arguments")
    fails(function() nn.Conv2D(8, 3, { padding = "full" }) end, "option 'padding' must be")
    fails(function() nn.Dropout(1.5) end, "option 'rate' must be in [0, 1), got 1.5")
    fails(function() nn.Dense(4, { activation = "nope" }) end, "unknown activation 'nope'")
    fails(function() nn.Dense(4, { kernel_initializer = "nope" }) end, "unknown initializer 'nope'")
  end)
end)

describe("Dense", function()
  it("builds lazily from the first input and computes relu(x @ W + b)", function()
    local d = nn.Dense(3, { activation = "relu" })
    assert.is_false(d.built)
    assert.equal(0, #d.weights)
    local x = mg.tensor { { 1.0, 2.0 }, { 3.0, 4.0 } }
    d(x)
    assert.is_true(d.built)
    assert.equal(2, #d.weights)
    assert.equal("2,3", shape(d.kernel))
    assert.equal("3", shape(d.bias))
    assert.equal(d.name .. "/kernel", d.weights[1].name)
    d:set_weights { mg.tensor { { 1.0, -1.0, 0.0 }, { 0.0, 1.0, 2.0 } }, mg.tensor { 0.5, 0.5, -10.0 } }
    near(d(x), { { 1.5, 1.5, 0 }, { 3.5, 1.5, 0 } })
    assert.equal(9, d:count_params())
  end)

  it("casts integer inputs, applies to the last axis and can drop the bias", function()
    local d = nn.Dense(2, { use_bias = false, kernel_initializer = "ones" })
    near(d(mg.tensor { { 1, 2 } }), { { 3, 3 } })
    assert.equal(1, #d.weights)
    local y = d(mg.ones { 4, 5, 2 })
    assert.equal("4,5,2", shape(y))
  end)

  it("checks the input's last dimension when called on Keras tensors", function()
    local d = nn.Dense(4, { name = "d4" })
    d(mg.ones { 1, 8 })
    fails(function() d(nn.Input { shape = { 3 } }) end, "layer d4 (Dense)", "last dimension is 8", "(None, 3)")
  end)
end)

describe("Conv2D", function()
  local function ones_conv(padding, strides)
    local c = nn.Conv2D(1, 2, { padding = padding, strides = strides, kernel_initializer = "ones" })
    return c(mg.ones { 1, 3, 3, 1 })
  end

  it("computes cross-correlation with 'same' (TF's padding) and 'valid'", function()
    near(mg.reshape(ones_conv("same"), { 3, 3 }), { { 4, 4, 2 }, { 4, 4, 2 }, { 2, 2, 1 } })
    near(mg.reshape(ones_conv("valid"), { 2, 2 }), { { 4, 4 }, { 4, 4 } })
    assert.equal("1,2,2,1", shape(ones_conv("same", 2)))
  end)

  it("has Keras's kernel shape, parameter count and output shapes", function()
    local c = nn.Conv2D(32, 5, { padding = "same", activation = "relu" })
    local out = c(nn.Input { shape = { 28, 28, 1 } })
    assert.same({ -1, 28, 28, 32 }, out.shape)
    assert.same({ 5, 5, 1, 32 }, c.kernel.shape)
    assert.equal(832, c:count_params())
    local v = nn.Conv2D(4, 3, { strides = 2 })
    assert.same({ -1, 2, 2, 4 }, v(nn.Input { shape = { 5, 5, 3 } }).shape)
    assert.equal("2,2,2,4", shape(v(mg.ones { 2, 5, 5, 3 })))
    local d = nn.Conv2D(2, 3, { dilation_rate = 2 })
    assert.same({ -1, 3, 3, 2 }, d(nn.Input { shape = { 7, 7, 1 } }).shape)
    assert.equal("1,3,3,2", shape(d(mg.ones { 1, 7, 7, 1 })))
  end)

  it("supports groups", function()
    local g = nn.Conv2D(4, 1, { groups = 2 })
    local y = g(mg.ones { 1, 2, 2, 6 })
    assert.same({ 1, 1, 3, 4 }, g.kernel.shape)
    assert.equal("1,2,2,4", shape(y))
  end)

  it("names the layer in shape errors at definition", function()
    local x = nn.Input { shape = { 28, 28 } }
    fails(function() nn.Conv2D(8, 3, { name = "c8" })(x) end, "layer c8 (Conv2D)", "4-d NHWC input")
    fails(function() nn.Conv2D(8, 5)(nn.Input { shape = { 3, 3, 1 } }) end, "smaller than the kernel")
  end)
end)

describe("Conv2DTranspose", function()
  it("agrees with the op's output sizes for 'same' and 'valid'", function()
    for _, pad in ipairs({ "same", "valid" }) do
      for _, s in ipairs({ 1, 2 }) do
        local l = nn.Conv2DTranspose(2, 3, { strides = s, padding = pad })
        local sym = l(nn.Input { shape = { 4, 4, 3 } })
        local real = l(mg.ones { 1, 4, 4, 3 })
        assert.same({ 1, sym.shape[2], sym.shape[3], 2 }, real.shape)
        assert.same({ 3, 3, 2, 3 }, l.kernel.shape)
      end
    end
    local l = nn.Conv2DTranspose(1, 3, { strides = 2, padding = "same" })
    assert.same({ -1, 8, 8, 1 }, l(nn.Input { shape = { 4, 4, 1 } }).shape)
  end)

  it("is the adjoint of Conv2D for a ones kernel", function()
    local l = nn.Conv2DTranspose(1, 2, { kernel_initializer = "ones", use_bias = false })
    near(mg.reshape(l(mg.ones { 1, 2, 2, 1 }), { 3, 3 }), { { 1, 2, 1 }, { 2, 4, 2 }, { 1, 2, 1 } })
  end)
end)

describe("pooling", function()
  local x = mg.reshape(mg.arange(16), { 1, 4, 4, 1 }):astype(mg.float32)

  it("max and average over 2x2 windows", function()
    near(mg.reshape(nn.MaxPooling2D(2)(x), { 2, 2 }), { { 5, 7 }, { 13, 15 } })
    near(mg.reshape(nn.AveragePooling2D(2)(x), { 2, 2 }), { { 2.5, 4.5 }, { 10.5, 12.5 } })
    near(mg.reshape(nn.MaxPooling2D(2, 1)(x), { 3, 3 }), { { 5, 6, 7 }, { 9, 10, 11 }, { 13, 14, 15 } })
  end)

  it("computes Keras's output shapes", function()
    local i = nn.Input { shape = { 5, 5, 3 } }
    assert.same({ -1, 2, 2, 3 }, nn.MaxPooling2D(2)(i).shape)
    assert.same({ -1, 3, 3, 3 }, nn.MaxPooling2D(2, { padding = "same" })(i).shape)
    assert.equal("1,3,3,3", shape(nn.AveragePooling2D(2, { padding = "same" })(mg.ones { 1, 5, 5, 3 })))
    assert.same({ -1, 3 }, nn.GlobalAveragePooling2D()(i).shape)
    assert.same({ -1, 1, 1, 3 }, nn.GlobalAveragePooling2D { keepdims = true }(i).shape)
  end)

  it("global average and max pooling", function()
    local t = mg.tensor { { { { 1.0, 10.0 }, { 2.0, 20.0 } }, { { 3.0, 30.0 }, { 6.0, 60.0 } } } }
    near(nn.GlobalAveragePooling2D()(t), { { 3, 30 } })
    near(nn.GlobalMaxPooling2D()(t), { { 6, 60 } })
  end)
end)

describe("Flatten and Reshape", function()
  it("keep the batch axis", function()
    local x = mg.ones { 2, 3, 4 }
    assert.equal("2,12", shape(nn.Flatten()(x)))
    assert.equal("2,4,3", shape(nn.Reshape { 4, 3 }(x)))
    assert.equal("2,6,2", shape(nn.Reshape { -1, 2 }(x)))
    local i = nn.Input { shape = { 3, 4 } }
    assert.same({ -1, 12 }, nn.Flatten()(i).shape)
    assert.same({ -1, 2, 6 }, nn.Reshape { 2, -1 }(i).shape)
    assert.same({ -1, -1 }, nn.Flatten()(nn.Input { shape = { -1, 4 } }).shape)
  end)

  it("reject impossible shapes at definition", function()
    fails(function() nn.Reshape({ 5, 5 }, { name = "rr" })(nn.Input { shape = { 12 } }) end, "layer rr (Reshape)",
      "cannot reshape", "(None, 12)")
    fails(function() nn.Reshape { -1, -1 } end, "at most one entry")
  end)
end)

describe("Dropout", function()
  it("is the identity in inference and masks with scaling in training", function()
    mg.random.seed(7)
    local d = nn.Dropout(0.5)
    local x = mg.ones { 2000 }
    assert.equal(x, d(x))
    assert.equal(x, d(x, false))
    local y = d(x, true)
    local zeros = mg.sum(mg.equal(y, 0)):item()
    local twos = mg.sum(mg.equal(y, 2)):item()
    assert.equal(2000, zeros + twos)
    assert.is_true(zeros > 850 and zeros < 1150, "zeros: " .. zeros)
    local y2 = d(x, { training = true })
    assert.is_true(mg.sum(mg.not_equal(y, y2)):item() > 0, "a new mask each call")
  end)

  it("draws the same masks after the same seed and has no weights", function()
    local function run()
      mg.random.seed(3)
      local d = nn.Dropout(0.3)
      local a = d(mg.ones { 50 }, true)
      return a, d(mg.ones { 50 }, true), d
    end
    local a1, b1, d = run()
    local a2, b2 = run()
    near(a1, a2, 0)
    near(b1, b2, 0)
    assert.equal(0, #d.weights)
  end)

  it("gets new masks on every call of a staged function", function()
    local d = nn.Dropout(0.5)
    local f = mg.func(function(x) return d(x, true) end)
    local x = mg.ones { 200 }
    local a, b = f(x), f(x)
    assert.is_true(mg.sum(mg.not_equal(a, b)):item() > 0)
    assert.equal(1, f:trace_count())
  end)
end)

describe("BatchNormalization", function()
  local x = mg.tensor { { 1.0, 2.0 }, { 3.0, 6.0 } }   -- batch mean {2, 4}, variance {1, 4}

  it("normalises with batch statistics in training and updates the moving ones", function()
    local bn = nn.BatchNormalization()
    local y = bn(x, true)
    local a, b = 1 / math.sqrt(1.001), 2 / math.sqrt(4.001)
    near(y, { { -a, -b }, { a, b } })
    near(bn.moving_mean, { 0.02, 0.04 })
    near(bn.moving_variance, { 1.0, 1.03 })
    local names = {}
    for i, w in ipairs(bn.weights) do names[i] = w.name:match("/(.*)$") end
    assert.same({ "gamma", "beta", "moving_mean", "moving_variance" }, names)
    assert.equal(2, #bn.trainable_weights)
    assert.equal(2, #bn.non_trainable_weights)
  end)

  it("uses the moving statistics in inference", function()
    local bn = nn.BatchNormalization { epsilon = 0.01 }
    bn(x)
    bn:set_weights { mg.tensor { 2.0, 1.0 }, mg.tensor { 0.5, 0.0 }, mg.tensor { 1.0, 2.0 }, mg.tensor { 3.99, 0.99 } }
    near(bn(x, false), { { 0.5, 0 }, { 2.5, 4 } })
    near(bn.moving_mean, { 1, 2 })
  end)

  it("normalises the channels of images (axis -1) and another axis", function()
    local bn = nn.BatchNormalization()
    local img = mg.random.normal({ 4, 3, 3, 2 }) * 3 + 1
    local y = bn(img, true)
    near(mg.mean(y, { axis = { 1, 2, 3 } }), { 0, 0 }, 1e-4)
    local b1 = nn.BatchNormalization { axis = 2 }
    local z = b1(mg.random.normal({ 5, 3, 4 }) + 2, true)
    assert.same({ 3 }, b1.gamma.shape)
    near(mg.mean(z, { axis = { 1, 3 } }), { 0, 0, 0 }, 1e-4)
  end)

  it("learns inside a staged train step", function()
    local model = nn.Sequential { nn.Input { shape = { 2 } }, nn.BatchNormalization { momentum = 0.5 }, nn.Dense(1) }
    model:compile { optimizer = "sgd", loss = "mse" }
    model:train_on_batch(x, mg.ones { 2, 1 })
    near(model.layers[1].moving_mean, { 1, 2 })
  end)
end)

describe("LayerNormalization", function()
  it("normalises each sample over the last axis", function()
    local ln = nn.LayerNormalization()
    local k = 1 / math.sqrt(2 / 3 + 1e-3)
    near(ln(mg.tensor { { 1.0, 2.0, 3.0 }, { 2.0, 2.0, 2.0 } }), { { -k, 0, k }, { 0, 0, 0 } })
    assert.same({ 3 }, ln.gamma.shape)
    local l2 = nn.LayerNormalization { axis = { 2, 3 } }
    local y = l2(mg.random.normal { 2, 3, 4 })
    near(mg.mean(y, { axis = { 2, 3 } }), { 0, 0 }, 1e-5)
    assert.same({ 3, 4 }, l2.gamma.shape)
  end)
end)

describe("Embedding", function()
  it("looks up rows by 1-based index", function()
    local e = nn.Embedding(3, 2)
    e(mg.tensor { 1 })
    e:set_weights { mg.tensor { { 1.0, 1.0 }, { 2.0, 2.0 }, { 3.0, 3.0 } } }
    near(e(mg.tensor { { 3, 1 } }), { { { 3, 3 }, { 1, 1 } } })
    near(e(mg.tensor { { 2.0 } }), { { { 2, 2 } } })
    assert.same({ -1, 5, 2 }, e(nn.Input { shape = { 5 }, dtype = mg.int64 }).shape)
  end)

  it("trains only the rows it looked up", function()
    local e = nn.Embedding(4, 2, { embeddings_initializer = "zeros" })
    local tape = mg.GradientTape()
    local y = mg.sum(e(mg.tensor { 2, 2, 4 }))
    tape:stop()
    near(tape:gradient(y, e.embeddings), { { 0, 0 }, { 2, 2 }, { 0, 0 }, { 1, 1 } })
  end)
end)

describe("Activation, merging layers", function()
  it("Activation applies by name", function()
    near(nn.Activation("relu")(mg.tensor { -1.0, 2.0 }), { 0, 2 })
    near(mg.sum(nn.Activation("softmax")(mg.tensor { { 1.0, 2.0, 3.0 } }), -1), { 1 })
    near(nn.Activation("sigmoid")(mg.tensor { 0.0 }), { 0.5 })
  end)

  it("Rescaling turns uint8 into scaled floats", function()
    local r = nn.Rescaling(1 / 255, { offset = -1 })
    near(r(mg.tensor({ { 0, 255 } }, mg.uint8)), { { -1, 0 } })
    assert.equal("float32", r(mg.tensor({ 1 }, mg.uint8)).dtype)
    assert.same({ -1, 28, 28 }, nn.Rescaling(0.5)(nn.Input { shape = { 28, 28 }, dtype = mg.uint8 }).shape)
  end)

  it("Add, Subtract, Multiply, Average, Maximum, Concatenate", function()
    local a, b = mg.tensor { { 1.0, 5.0 } }, mg.tensor { { 3.0, 2.0 } }
    near(nn.Add() { a, b }, { { 4, 7 } })
    near(nn.Subtract() { a, b }, { { -2, 3 } })
    near(nn.Multiply() { a, b }, { { 3, 10 } })
    near(nn.Average() { a, b }, { { 2, 3.5 } })
    near(nn.Maximum() { a, b }, { { 3, 5 } })
    near(nn.Concatenate() { a, b }, { { 1, 5, 3, 2 } })
    near(nn.Concatenate { axis = 1 } { a, b }, { { 1, 5 }, { 3, 2 } })
  end)

  it("check shapes at definition", function()
    local x, y = nn.Input { shape = { 4 } }, nn.Input { shape = { 3 } }
    fails(function() nn.Add { name = "plus" } { x, y } end, "layer plus (Add)", "incompatible shapes", "(None, 4)")
    assert.same({ -1, 7 }, nn.Concatenate() { x, y }.shape)
    fails(function() nn.Concatenate { axis = 1 } { x, y } end, "same shape except along axis")
    assert.same({ -1, 4 }, (x + x).shape)
  end)
end)

-- ---- recurrent layers against scalar references (units = 1, one feature) ------------------------

local function rnn_ref(xs, k, r, b)
  local h, out = 0, {}
  for t = 1, #xs do
    h = tanh(xs[t] * k + h * r + b)
    out[t] = h
  end
  return out
end

local function lstm_ref(xs, k, r, b)
  local h, c, out = 0, 0, {}
  for t = 1, #xs do
    local z = {}
    for g = 1, 4 do z[g] = xs[t] * k[g] + h * r[g] + b[g] end
    local i, f, o = sigmoid(z[1]), sigmoid(z[2]), sigmoid(z[4])
    c = f * c + i * tanh(z[3])
    h = o * tanh(c)
    out[t] = h
  end
  return out, c
end

local function gru_ref(xs, k, r, bi, br)
  local h, out = 0, {}
  for t = 1, #xs do
    local xz, xr, xh = xs[t] * k[1] + bi[1], xs[t] * k[2] + bi[2], xs[t] * k[3] + bi[3]
    local rz, rr, rh = h * r[1] + br[1], h * r[2] + br[2], h * r[3] + br[3]
    local z, rg = sigmoid(xz + rz), sigmoid(xr + rr)
    local hh = tanh(xh + rg * rh)
    h = z * h + (1 - z) * hh
    out[t] = h
  end
  return out
end

describe("recurrent layers", function()
  local xs = { 1.0, -0.5, 2.0 }
  local x = mg.reshape(mg.tensor(xs), { 1, 3, 1 })

  local function seq(y) local t = mg.reshape(y, { 3 }):totable(); return t end

  it("SimpleRNN follows h = tanh(x k + h r + b)", function()
    local l = nn.SimpleRNN(1, { return_sequences = true })
    l(x)
    l:set_weights { mg.tensor { { 0.5 } }, mg.tensor { { -0.7 } }, mg.tensor { 0.1 } }
    near(seq(l(x)), rnn_ref(xs, 0.5, -0.7, 0.1))
    local last = nn.SimpleRNN(1, { kernel_initializer = "ones", recurrent_initializer = "ones" })
    near(mg.reshape(last(x), { 1 }), { rnn_ref(xs, 1, 1, 0)[3] })
  end)

  it("LSTM follows Keras's gates (i, f, c, o) and unit_forget_bias", function()
    local l = nn.LSTM(1, { return_sequences = true, return_state = true })
    l(x)
    near(l.bias, { 0, 1, 0, 0 })
    local k, r, b = { 0.3, -0.2, 0.5, 0.1 }, { 0.4, 0.2, -0.3, 0.6 }, { 0.1, 1.0, -0.1, 0.2 }
    l:set_weights { mg.tensor { k }, mg.tensor { r }, mg.tensor(b) }
    local out = l(x)
    local ref, c = lstm_ref(xs, k, r, b)
    near(seq(out[1]), ref)
    near(mg.reshape(out[2], { 1 }), { ref[3] })
    near(mg.reshape(out[3], { 1 }), { c })
  end)

  it("GRU follows Keras's reset_after form (z, r, h)", function()
    local l = nn.GRU(1, { return_sequences = true })
    l(x)
    assert.same({ 2, 3 }, l.bias.shape)
    local k, r = { 0.3, -0.2, 0.5 }, { 0.4, 0.2, -0.3 }
    local bi, br = { 0.1, 0.2, -0.1 }, { -0.2, 0.05, 0.3 }
    l:set_weights { mg.tensor { k }, mg.tensor { r }, mg.tensor { bi, br } }
    near(seq(l(x)), gru_ref(xs, k, r, bi, br))
  end)

  it("give the same values and gradients eagerly and staged", function()
    mg.random.seed(5)
    local xr = mg.random.normal { 3, 5, 4 }
    for _, cls in ipairs({ "SimpleRNN", "LSTM", "GRU" }) do
      for _, back in ipairs({ false, true }) do
        local l = nn[cls](3, { return_sequences = true, go_backwards = back })
        local eager = l(xr)
        local f = mg.func(function(t) return l(t) end)
        near(f(xr), eager, 1e-5, cls)
        local function grads(t)
          local tape = mg.GradientTape()
          local y = mg.sum(mg.square(l(t, true)))
          tape:stop()
          return tape:gradient(y, l.weights)
        end
        local ge = grads(xr)
        local gs = mg.func(grads)(xr)
        for i = 1, #ge do near(gs[i], ge[i], 1e-4, cls .. " gradient " .. i) end
      end
    end
  end)

  it("compute output shapes, states included", function()
    local i = nn.Input { shape = { -1, 4 } }
    assert.same({ -1, 6 }, nn.LSTM(6)(i).shape)
    assert.same({ -1, -1, 6 }, nn.GRU(6, { return_sequences = true })(i).shape)
    local outs = nn.LSTM(6, { return_state = true })(i)
    assert.equal(3, #outs)
    assert.same({ -1, 6 }, outs[3].shape)
    fails(function() nn.SimpleRNN(2, { name = "rn" })(nn.Input { shape = { 4 } }) end, "layer rn (SimpleRNN)",
      "3-d input")
  end)

  it("accept an initial state", function()
    local l = nn.SimpleRNN(1, { kernel_initializer = "zeros", recurrent_initializer = "ones" })
    local y = l(mg.zeros { 1, 1, 1 }, { initial_state = mg.tensor { { 0.5 } } })
    near(mg.reshape(y, { 1 }), { tanh(0.5) })
  end)
end)

describe("initializers", function()
  it("follow Keras's formulas", function()
    mg.random.seed(11)
    local init = nn.initializers
    near(init.get("zeros")({ 2 }), { 0, 0 })
    near(init.get("ones")({ 2 }), { 1, 1 })
    near(init.Constant { value = 3 }({ 2 }), { 3, 3 })
    local g = init.get("glorot_uniform")({ 100, 50 })
    local limit = math.sqrt(6 / 150)
    assert.is_true(mg.max(mg.abs(g)):item() <= limit)
    near(mg.std(g):item(), limit / math.sqrt(3), 0.05)
    local he = init.get("he_normal")({ 400, 100 })
    near(mg.std(he):item(), math.sqrt(2 / 400), 0.05)
    assert.equal(400 * 25, select(1, init.compute_fans({ 5, 5, 400, 32 })))
    local q = init.get("orthogonal")({ 4, 8 })
    near(mg.matmul(q, mg.transpose(q)), mg.eye(4), 1e-5)
  end)
end)

-- found by the examples' author: a sublayer a custom build() built by hand was built again, with a
-- second set of weights, by its first call (Keras's build wrapper marks it built)
describe("building by hand", function()
  it("a layer whose build was called directly is built: its first call adds no weights", function()
    local Outer = nn.Layer:extend("HandBuiltOuter")
    function Outer:init() self.inner = nn.Dense(4) end
    function Outer:build(s) self.inner:build(s) end
    function Outer:call(x) return self.inner(x) end
    local o = Outer()
    local y = o(mg.ones { 2, 9 })
    assert.are.same({ 2, 4 }, y.shape)
    assert.equal(40, o:count_params())
    assert.equal(2, #o.weights)
    assert.is_true(o.inner.built)
    local d = nn.Dense(3)
    d:build({ -1, 5 })
    assert.is_true(d.built)
    assert.are.same({ -1, 5 }, d.input_shape)
    d(mg.ones { 1, 5 })
    assert.equal(2, #d.weights)
  end)

  it("Keras's short initializer names: uniform, normal, one, zero", function()
    local init = nn.initializers
    assert.equal("RandomUniform", init.get("uniform").class_name)
    assert.equal("RandomNormal", init.get("normal").class_name)
    near(init.get("one")({ 2 }), { 1, 1 }, 0)
    near(init.get("zero")({ 2 }), { 0, 0 }, 0)
    near(nn.Dense(2, { kernel_initializer = "one" })(mg.ones { 1, 3 }), { { 3, 3 } }, 0)
  end)
end)
