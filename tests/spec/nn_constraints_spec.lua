-- mg.nn.constraints (MaxNorm, MinMaxNorm, NonNeg, UnitNorm) against values Keras 3 computed
-- (tests/fixtures/nn_constraints_keras.py; Keras's axes count from 0, ours from 1), a Dense with
-- kernel/bias constraints trained by fit (eagerly and staged) against Keras's weights after the
-- same two SGD steps, the layers that take *_constraint options, configs and save/load round
-- trips, and the errors. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local nn = mg.nn
local h = require("tests.spec.helpers")
local nh = require("tests.spec.nn_helpers")
local K = require("tests.spec.nn_constraints_keras_data")
local C = nn.constraints

describe("nn.constraints against Keras 3", function()
  local w = mg.tensor(K.w, "float32")
  it("MaxNorm, MinMaxNorm, NonNeg and UnitNorm give Keras's projections", function()
    h.near(C.MaxNorm { max_value = 1.5, axis = 1 }(w), K.max_norm, 1e-5)
    h.near(C.MaxNorm { max_value = 2, axis = { 1, 2 } }(w), K.max_norm_axes, 1e-5)
    h.near(C.MinMaxNorm { min_value = 0.5, max_value = 1.5, rate = 0.7, axis = 3 }(w), K.min_max_norm, 1e-5)
    h.near(C.NonNeg()(w), K.non_neg, 0)
    h.near(C.UnitNorm { axis = 2 }(w), K.unit_norm, 1e-5)
    -- negative axes count from the end
    h.near(C.MinMaxNorm { min_value = 0.5, max_value = 1.5, rate = 0.7, axis = -1 }(w), K.min_max_norm, 1e-5)
  end)

  for _, eager in ipairs({ true, false }) do
    it("a Dense's kernel and bias constraints hold after each update, as Keras's (" ..
      (eager and "eager" or "staged") .. ")", function()
      local d = nn.Dense(2, { kernel_constraint = C.MaxNorm(0.4), bias_constraint = "non_neg" })
      local m = nn.Sequential { nn.Input { shape = { 3 } }, d }
      d:set_weights({ K.dense.kernel0, K.dense.bias0 })
      m:compile { optimizer = mg.optim.SGD { learning_rate = 0.5 }, loss = "mse", run_eagerly = eager }
      local x, y = mg.tensor(K.dense.x, "float32"), mg.tensor(K.dense.y, "float32")
      m:train_on_batch(x, y)
      m:train_on_batch(x, y)
      h.near(d.kernel, K.dense.kernel, 1e-5)
      h.near(d.bias, K.dense.bias, 1e-6)
    end)
  end
end)

describe("layers with *_constraint options", function()
  it("round trip through get_config/from_config and model save/load", function()
    local m = nn.Sequential {
      nn.Input { shape = { 4 } },
      nn.Dense(3, { kernel_constraint = C.MaxNorm { max_value = 3, axis = { 1 } }, bias_constraint = "non_neg" }),
      nn.BatchNormalization { gamma_constraint = C.UnitNorm(), beta_constraint = C.NonNeg() },
      nn.LayerNormalization { gamma_constraint = C.MinMaxNorm { min_value = 0.1, max_value = 2, rate = 0.5 } },
      nn.PReLU { alpha_constraint = "non_neg" },
      nn.Reshape { 3, 1 },
      nn.GroupNormalization { groups = 1, gamma_constraint = "unit_norm" },
    }
    local cfg = m.layers[1]:get_config()
    assert.are.same({ class_name = "MaxNorm", config = { max_value = 3, axis = { 1 } } }, cfg.kernel_constraint)
    assert.are.same({ class_name = "NonNeg", config = {} }, cfg.bias_constraint)
    local d2 = nn.Dense:from_config(cfg)
    assert.are.same(cfg.kernel_constraint, d2:get_config().kernel_constraint)
    local dir = nh.tmpname("-mgcons")
    assert(os.execute("mkdir -p '" .. dir .. "'"))
    m:compile { optimizer = "sgd", loss = "mse" }
    m:save(dir .. "/m")
    local m2 = nn.load_model(dir .. "/m")
    for i, l in ipairs(m.layers) do
      assert.are.same(l:get_config(), m2.layers[i]:get_config(), "layer " .. i)
    end
    -- the constraints act after loading: a step keeps the kernel's columns within norm 3
    m2:fit(mg.uniform({ 16, 4 }, -5, 5, "float32", 1), mg.uniform({ 16, 3, 1 }, -5, 5, "float32", 2),
      { epochs = 1, verbose = 0, batch_size = 4 })
    local k = m2.layers[1].kernel
    assert.is_true(mg.max(mg.sqrt(mg.sum(mg.square(k), 1))):item() <= 3 + 1e-4)
    assert.is_true(mg.min(m2.layers[1].bias):item() >= 0)
  end)

  it("a Lua function is a constraint too (not serialisable)", function()
    local v = mg.Variable(mg.tensor { 1.0, -2.0, 3.0 })
    local clipped = function(t) return mg.clip(t, -1, 1) end
    local d = nn.Dense(1, { kernel_constraint = clipped })
    d(mg.ones { 1, 3 })
    local opt = mg.optim.SGD { learning_rate = 10 }
    opt:apply_gradients({ mg.ones { 3, 1 } }, { d.kernel })
    assert.is_true(mg.min(d.kernel):item() >= -1)
    assert.are.equal("<function>", d:get_config().kernel_constraint)
    assert.is_nil(C.of(v))
  end)
end)

-- Every layer that takes a <w>_regularizer takes <w>_constraint (one mechanism, layer.lua): each
-- case gives every such option NonNeg, builds the layer, checks that each constrained weight has it
-- and that one big SGD step leaves those weights non-negative, eagerly and staged.
local function all(prefixes, more)
  local o = more or {}
  for _, p in ipairs(prefixes) do o[p .. "_constraint"] = "non_neg" end
  return o
end
local KB = { "kernel", "bias" }
local LAYER_CASES = {
  { "Dense", function() return nn.Dense(3, all(KB)) end, { 2, 4 } },
  { "Conv1D", function() return nn.Conv1D(2, 3, all(KB)) end, { 2, 5, 2 } },
  { "Conv2D", function() return nn.Conv2D(2, 2, all(KB)) end, { 2, 4, 4, 1 } },
  { "Conv3D", function() return nn.Conv3D(2, 2, all(KB)) end, { 1, 3, 3, 3, 1 } },
  { "Conv1DTranspose", function() return nn.Conv1DTranspose(2, 3, all(KB)) end, { 2, 4, 2 } },
  { "Conv2DTranspose", function() return nn.Conv2DTranspose(2, 2, all(KB)) end, { 2, 3, 3, 1 } },
  { "Conv3DTranspose", function() return nn.Conv3DTranspose(2, 2, all(KB)) end, { 1, 2, 2, 2, 1 } },
  { "DepthwiseConv1D", function() return nn.DepthwiseConv1D(2, all({ "depthwise", "bias" })) end, { 2, 5, 2 } },
  { "DepthwiseConv2D", function() return nn.DepthwiseConv2D(2, all({ "depthwise", "bias" })) end, { 2, 4, 4, 2 } },
  { "SeparableConv1D", function() return nn.SeparableConv1D(3, 2, all({ "depthwise", "pointwise", "bias" })) end,
    { 2, 5, 2 } },
  { "SeparableConv2D", function() return nn.SeparableConv2D(3, 2, all({ "depthwise", "pointwise", "bias" })) end,
    { 2, 4, 4, 2 } },
  { "SimpleRNN", function() return nn.SimpleRNN(3, all({ "kernel", "recurrent", "bias" })) end, { 2, 4, 2 } },
  { "LSTM", function() return nn.LSTM(3, all({ "kernel", "recurrent", "bias" })) end, { 2, 4, 2 } },
  { "GRU", function() return nn.GRU(3, all({ "kernel", "recurrent", "bias" })) end, { 2, 4, 2 } },
  { "RNN(LSTMCell)", function() return nn.RNN(nn.LSTMCell(3, all({ "kernel", "recurrent", "bias" }))) end,
    { 2, 4, 2 } },
  { "Bidirectional(GRU)", function() return nn.Bidirectional(nn.GRU(2, all({ "kernel", "recurrent", "bias" }))) end,
    { 2, 4, 2 } },
  { "ConvLSTM2D", function() return nn.ConvLSTM2D(2, 2, all({ "kernel", "recurrent", "bias" })) end,
    { 1, 2, 4, 4, 1 } },
  { "BatchNormalization", function() return nn.BatchNormalization(all({ "gamma", "beta" })) end, { 4, 3 } },
  { "LayerNormalization", function() return nn.LayerNormalization(all({ "gamma", "beta" })) end, { 4, 3 } },
  { "GroupNormalization", function() return nn.GroupNormalization(all({ "gamma", "beta" }, { groups = 1 })) end,
    { 4, 3 } },
  { "PReLU", function() return nn.PReLU(all({ "alpha" })) end, { 2, 3 } },
  { "MultiHeadAttention", function() return nn.MultiHeadAttention(all(KB, { num_heads = 2, key_dim = 2 })) end,
    { 2, 3, 4 } },
}

describe("every layer with *_regularizer options takes *_constraint", function()
  for _, case in ipairs(LAYER_CASES) do
    for _, staged in ipairs({ false, true }) do
      it(case[1] .. (staged and ", staged step" or ", eager step"), function()
        local layer = case[2]()
        local x = mg.uniform(case[3], -1, 1, "float32", 7)
        local function out(t)
          local y
          if case[1] == "MultiHeadAttention" then y = layer(t, t, true) else y = layer(t, true) end
          if type(y) == "table" and not mg.is_tensor(y) then y = y[1] end
          return mg.sum(mg.square(y))
        end
        out(x)
        local cons = {}
        for _, w in ipairs(layer.trainable_weights) do
          if C.of(w) then cons[#cons + 1] = w end
        end
        assert.is_true(#cons >= 1, "no weight of " .. case[1] .. " has a constraint")
        -- every trainable kernel/bias-like weight is constrained (the attention layers' too)
        for _, w in ipairs(layer.trainable_weights) do
          assert.is_not_nil(C.of(w), case[1] .. ": weight " .. tostring(w.name) .. " has no constraint")
        end
        local opt = mg.optim.SGD { learning_rate = 100 }
        local step = function(t)
          local vars = layer.trainable_weights
          local tape = mg.GradientTape()
          local loss = out(t)
          tape:stop()
          opt:apply_gradients(tape:gradient(loss, vars), vars)
          return loss
        end
        if staged then
          opt:build(layer.trainable_weights)
          step = mg.func(step)
        end
        step(x)
        for _, w in ipairs(cons) do
          assert.is_true(mg.min(w):item() >= 0, case[1] .. ": " .. tostring(w.name) .. " went negative")
        end
      end)
    end
  end

  it("a constraint no weight takes is an error when the layer is built", function()
    h.fails(function() nn.Dense(2, { use_bias = false, bias_constraint = "non_neg" })(mg.ones { 1, 2 }) end,
      "bias_constraint was given, but the layer has no bias weight")
  end)
end)

describe("constraint errors", function()
  it("bad options and values raise, naming the constraint", function()
    h.fails(function() C.MaxNorm { max_value = -1 } end, "MaxNorm", "max_value")
    h.fails(function() C.MaxNorm { max_vale = 1 } end, "MaxNorm", "max_vale")
    h.fails(function() C.UnitNorm { axis = 0 } end, "UnitNorm", "axis")
    h.fails(function() C.MinMaxNorm { min_value = 2, max_value = 1 } end, "MinMaxNorm", "min_value (2) is above")
    h.fails(function() C.MinMaxNorm { rate = 2 } end, "MinMaxNorm", "rate")
    h.fails(function() nn.Dense(2, { kernel_constraint = "max_nrm" }) end, "unknown constraint 'max_nrm'")
    h.fails(function() nn.Dense(2, { kernel_constraint = 3 }) end, "kernel_constraint")
    h.fails(function() C.MaxNorm { axis = 4 }(mg.ones { 2, 2 }) end, "axis 4 is out of range", "(2, 2)")
  end)
end)
