-- nn_options_spec.lua — every option table of nn, optim, losses, metrics,
-- callbacks and mg.train goes through the shared checker (moongrad.options):
-- unknown names and out-of-range values raise an error that names the
-- function, the option and what is valid, at the caller's line, instead of
-- being ignored or training to garbage. Options moongrad does not implement
-- (RNN dropout, Dropout's noise_shape) raise rather than being accepted and
-- ignored, and so does an option a layer's call does not understand.
local mg = require "moongrad"
local nn = mg.nn
local h = require "tests.spec.nn_helpers"
local fails, near = h.fails, h.near

-- the error is raised at this file's line, not inside moongrad
local function fails_here(fn, ...)
  local e = fails(fn, ...)
  assert.truthy(e:find("nn_options_spec.lua:%d+:"), e)
  return e
end

describe("layer constructor options", function()
  it("check ranges", function()
    fails_here(function() nn.BatchNormalization { momentum = 2 } end,
      "BatchNormalization: option 'momentum' must be in [0, 1], got 2")
    fails_here(function() nn.BatchNormalization { epsilon = 0 } end, "option 'epsilon' must be in (0, inf), got 0")
    fails_here(function() nn.LayerNormalization { epsilon = -1 } end, "LayerNormalization: option 'epsilon'")
    fails_here(function() nn.LayerNormalization { axis = 1.5 } end, "option 'axis' must be integer or table, got 1.5")
    fails_here(function() nn.Dense(0) end, "Dense: option 'units' must be in [1, inf), got 0")
    fails_here(function() nn.Dense(2.5) end, "Dense: option 'units' must be an integer, got 2.5")
    fails_here(function() nn.Conv2D(4, 0) end, "Conv2D: option 'kernel_size' must be a positive integer")
    fails_here(function() nn.Conv2D(4, 3, { strides = { 1, 0 } }) end, "option 'strides' must be a positive integer")
    fails_here(function() nn.Conv2D(4, 3, { padding = "full" }) end, "option 'padding' must be \"valid\" or \"same\"")
    fails_here(function() nn.Conv2D(4, 3, { data_format = "channels_first" }) end, "option 'data_format'")
    fails_here(function() nn.MaxPooling2D { pool_size = -2 } end, "MaxPooling2D: option 'pool_size'")
    fails_here(function() nn.Dropout(1) end, "Dropout: option 'rate' must be in [0, 1), got 1")
    fails_here(function() nn.Embedding(0, 3) end, "Embedding: option 'input_dim' must be in [1, inf)")
    fails_here(function() nn.LSTM(0) end, "LSTM: option 'units' must be in [1, inf)")
    fails_here(function() nn.Dense(2, { use_bias = "no" }) end, "option 'use_bias' must be boolean")
    fails_here(function() nn.Dense(2, { dtype = "int64" }) end, "option 'dtype' must be one of \"float32\", \"float64\"")
    fails_here(function() nn.Input { shape = { 3, -2 } } end, "InputLayer: option 'shape' entry 2 must be a size or -1")
    local L = nn.Layer:extend("SpecWeighted")
    function L:build() self.w = self:add_weight { name = "w", shape = { 2 }, initialiser = "ones" } end
    fails(function() L()(mg.ones { 1, 2 }) end, "add_weight: unknown option 'initialiser' (did you mean 'initializer'?)")
  end)

  it("reject unknown names, and options of other layers", function()
    fails_here(function() nn.Dense(2, { activaton = "relu" }) end,
      "Dense: unknown option 'activaton' (did you mean 'activation'?)")
    fails_here(function() nn.SimpleRNN(2, { recurrent_activation = "sigmoid" }) end,
      "SimpleRNN: unknown option 'recurrent_activation'")
    fails_here(function() nn.LSTM(2, { reset_after = true }) end, "LSTM: unknown option 'reset_after'")
    fails_here(function() nn.Conv2D(2, 3, { output_padding = 1 }) end, "Conv2D: unknown option 'output_padding'")
    fails_here(function() nn.Model { inputs = nn.Input { shape = { 1 } }, outputs = {}, nmae = "m" } end,
      "Model: unknown option 'nmae' (did you mean 'name'?)")
    fails_here(function() nn.Sequential({}, { trainabel = false }) end, "Sequential: unknown option 'trainabel'")
  end)

  it("reject what moongrad does not implement instead of ignoring it", function()
    fails_here(function() nn.LSTM(2, { time_major = true }) end, "LSTM: option 'time_major' is not supported")
    fails_here(function() nn.GRU(2, { stateful = true }) end, "GRU: option 'stateful' is not supported")
    fails_here(function() nn.Dropout(0.5, { noise_shape = { 1, 4 } }) end, "Dropout: option 'noise_shape' is not supported")
    fails_here(function() nn.Embedding(5, 2, { mask_zero = 1 }) end, "option 'mask_zero'")
    fails_here(function() nn.Input { shape = { 3 }, sparse = true } end, "option 'sparse' is not supported")
    fails_here(function() nn.Conv2DTranspose(2, 3, { groups = 2 }) end, "option 'groups' is not supported")
    -- the neutral values stay accepted (configs written by Keras carry them)
    assert.equal(2, nn.LSTM(2, { dropout = 0, stateful = false }).units)
  end)

  it("check initializers' and regularizers' options; a seeded initializer repeats its values", function()
    fails_here(function() nn.initializers.RandomNormal { stddev = -1 } end, "RandomNormal: option 'stddev'")
    fails_here(function() nn.initializers.RandomUniform { minval = 1, maxval = 0 } end, "minval (1) must not exceed")
    fails_here(function() nn.initializers.VarianceScaling { mode = "fan" } end, "option 'mode' must be one of")
    fails_here(function() nn.initializers.GlorotUniform { sed = 1 } end, "GlorotUniform: unknown option 'sed'")
    fails_here(function() nn.regularizers.L2(-0.1) end, "L2: l2 must be in [0, inf)")
    fails_here(function() nn.regularizers.L1L2 { l3 = 1 } end, "L1L2: unknown option 'l3'")
    local init = nn.initializers.RandomNormal { seed = 7 }
    mg.random.seed(1)
    local a = init({ 4 })
    local b = init({ 4 })
    near(a, b, 0)
    local d1 = nn.Dense(3, { kernel_initializer = nn.initializers.GlorotUniform { seed = 3 } })
    local d2 = nn.Dense(3, { kernel_initializer = nn.initializers.GlorotUniform { seed = 3 } })
    near(d1(mg.ones { 1, 2 }), d2(mg.ones { 1, 2 }), 0)
  end)
end)

describe("layer call options", function()
  it("a mask is a call option (masking); an unknown option raises instead of being ignored", function()
    local m = mg.tensor { { true, false } }
    local y = nn.Dense(2)(mg.ones { 1, 2, 3 }, { mask = m })
    assert.same(m:totable(), nn.get_mask(y):totable())
    fails_here(function() nn.Dense(2)(mg.ones { 2, 3 }, { mask = 1 }) end, "option 'mask'")
    fails_here(function() nn.Dense(2)(mg.ones { 2, 3 }, { maks = mg.ones { 2 } }) end,
      "unknown option 'maks' (did you mean 'mask'?)")
    fails_here(function() nn.LSTM { units = 3 }(mg.ones { 2, 4, 3 }, { mask = mg.ones { 2, 5 } }) end,
      "layer lstm", "(LSTM): the mask must have shape (batch, time) = (2, 4), got (2, 5)")
    fails_here(function() nn.Dense(2)(mg.ones { 2, 3 }, { trainig = true }) end,
      "unknown option 'trainig' (did you mean 'training'?)")
    fails_here(function() nn.Dense(2)(mg.ones { 2, 3 }, "yes") end, "the second argument is `training`")
    local i = nn.Input { shape = { 4, 3 } }
    fails_here(function() nn.GRU(2)(i, { initial_state = mg.zeros { 1, 2 } }) end,
      "call option 'initial_state' is not supported on Keras tensors")
  end)

  it("initial_state is checked (an LSTM needs {h, c})", function()
    local x = mg.ones { 2, 4, 3 }
    local l = nn.LSTM(2)
    fails(function() l(x, { initial_state = mg.zeros { 2, 2 } }) end, "initial_state must be 2 state tensor(s) ({h, c}), got 1")
    fails(function() l(x, { initial_state = { mg.zeros { 2, 3 }, mg.zeros { 2, 2 } } }) end,
      "initial_state 1 must be a (batch, 2) tensor, got (2, 3)")
    local g = nn.GRU(2)
    local a = g(x, { initial_state = mg.zeros { 2, 2 } })
    local b = g(x)
    near(a, b, 0)   -- zeros are the default initial state
    assert.is_false(mg.max(mg.abs(g(x, { initial_state = mg.ones { 2, 2 } }) - b)):item() == 0)
  end)

  it("a subclassed Model without call raises instead of returning its input", function()
    local NoCall = nn.Model:extend("SpecNoCall")
    function NoCall:init() self.d = nn.Dense(2) end
    fails(function() NoCall()(mg.ones { 1, 2 }) end, "has no call method: define SpecNoCall:call(inputs, training)")
  end)
end)

describe("optimizer and schedule options", function()
  it("check ranges and reject two clip options", function()
    fails_here(function() mg.optim.SGD { clipnorm = -1 } end, "SGD: option 'clipnorm' must be in (0, inf), got -1")
    fails_here(function() mg.optim.SGD { momentum = 1.5 } end, "SGD: option 'momentum' must be in [0, 1]")
    fails_here(function() mg.optim.Adam { beta_1 = 1 } end, "Adam: option 'beta_1' must be in [0, 1), got 1")
    fails_here(function() mg.optim.Adam { learning_rate = -0.1 } end, "option 'learning_rate' must be a number >= 0")
    fails_here(function() mg.optim.RMSprop { rho = 2 } end, "RMSprop: option 'rho'")
    fails_here(function() mg.optim.Adagrad { initial_accumulator_value = -1 } end, "Adagrad: option")
    fails_here(function() mg.optim.Adam { clipnorm = 1, clipvalue = 1 } end,
      "only one of clipnorm, clipvalue and global_clipnorm can be set")
    fails_here(function() mg.optim.Adam { learning_rat = 0.1 } end,
      "Adam: unknown option 'learning_rat' (did you mean 'learning_rate'?)")
    local opt = mg.optim.SGD()
    fails_here(function() opt.learning_rate = -1 end, "SGD: learning_rate must be a number >= 0")
  end)

  it("check schedules (decay_steps = 0 made NaN)", function()
    local S = mg.optim.schedules
    fails_here(function() S.ExponentialDecay { initial_learning_rate = 0.1, decay_steps = 0, decay_rate = 0.5 } end,
      "ExponentialDecay: option 'decay_steps' must be in (0, inf), got 0")
    fails_here(function() S.ExponentialDecay { initial_learning_rate = 0.1, decay_rate = 0.5 } end,
      "ExponentialDecay: decay_steps is required")
    fails_here(function() S.CosineDecay { initial_learning_rate = 1, decay_steps = 10, alpha = 2 } end,
      "CosineDecay: option 'alpha'")
    fails_here(function() S.PiecewiseConstantDecay { boundaries = { 10, 5 }, values = { 1, 2, 3 } } end,
      "boundaries must be increasing")
    fails_here(function() S.PiecewiseConstantDecay { boundaries = { 10 }, values = { 1 } } end,
      "values needs one more entry than boundaries")
    fails_here(function() S.InverseTimeDecay { initial_learning_rate = 1, decay_steps = 1, decay_rate = 1, staircse = true } end,
      "unknown option 'staircse' (did you mean 'staircase'?)")
  end)
end)

describe("loss and metric options", function()
  it("check ranges (label_smoothing = 5 gave a negative loss)", function()
    fails_here(function() mg.losses.CategoricalCrossentropy { label_smoothing = 5 } end,
      "CategoricalCrossentropy: option 'label_smoothing' must be in [0, 1], got 5")
    fails_here(function() mg.losses.categorical_crossentropy(mg.ones { 1, 2 }, mg.ones { 1, 2 }, false, 5) end,
      "label_smoothing must be in [0, 1]")
    fails_here(function() mg.losses.Huber { delta = 0 } end, "Huber: option 'delta'")
    fails_here(function() mg.losses.MeanSquaredError { reduction = "avg" } end, "option 'reduction' must be one of")
    fails_here(function() mg.losses.MeanSquaredError { from_logits = true } end,
      "MeanSquaredError: unknown option 'from_logits'")
    fails_here(function() mg.metrics.AUC { num_thresholds = 1 } end, "AUC: option 'num_thresholds' must be in [2, inf)")
    fails_here(function() mg.metrics.AUC { curve = "ROCC" } end, "AUC: option 'curve' must be one of")
    fails_here(function() mg.metrics.BinaryAccuracy { threshold = 2 } end, "BinaryAccuracy: option 'threshold'")
    fails_here(function() mg.metrics.Precision { top_k = 0 } end, "Precision: option 'top_k' must be in [1, inf)")
    fails_here(function() mg.metrics.Precision { topk = 1 } end, "Precision: unknown option 'topk'")
    fails_here(function() mg.metrics.Mean { dtype = "int64" } end, "Mean: option 'dtype'")
  end)
end)

describe("callback and checkpoint options", function()
  it("check ranges and names", function()
    local C = mg.callbacks
    fails_here(function() C.EarlyStopping { patience = -1 } end, "EarlyStopping: option 'patience' must be in [0, inf)")
    fails_here(function() C.EarlyStopping { monitr = "loss" } end, "unknown option 'monitr' (did you mean 'monitor'?)")
    fails_here(function() C.EarlyStopping { mode = "maximum" } end, "option 'mode' must be one of")
    fails_here(function() C.ReduceLROnPlateau { factor = 1 } end, "ReduceLROnPlateau: option 'factor' must be in (0, 1)")
    fails_here(function() C.ModelCheckpoint { filepath = "x", save_freq = 0 } end, "option 'save_freq' must be")
    fails_here(function() C.CSVLogger { filename = "x", sep = ";" } end, "CSVLogger: unknown option 'sep'")
    fails_here(function() C.LambdaCallback { on_epoch_end = 3 } end, "option 'on_epoch_end' must be function")
    fails_here(function() C.History { x = 1 } end, "History: unknown option 'x'; it takes no options")
    local ckpt = mg.train.Checkpoint { step = mg.Variable(mg.tensor(0)) }
    fails_here(function() mg.train.CheckpointManager(ckpt, os.tmpname() .. ".d", { max_to_keep = 0 }) end,
      "option 'max_to_keep' must be a positive integer")
    fails_here(function() mg.train.CheckpointManager(ckpt, os.tmpname() .. ".d", { keep = 2 }) end,
      "CheckpointManager: unknown option 'keep'")
  end)

  it("ModelCheckpoint's save_freq = n saves every n batches (it was accepted and ignored)", function()
    local x, y = mg.random.normal { 40, 2 }, mg.random.normal { 40, 1 }
    local m = nn.Sequential { nn.Input { shape = { 2 } }, nn.Dense(1) }
    m:compile { optimizer = "sgd", loss = "mse" }
    local base = h.tmpname("")
    local cb = mg.callbacks.ModelCheckpoint { filepath = base .. "-{epoch}-{loss:.3f}.safetensors", save_freq = 3,
      save_weights_only = true }
    local saved = 0
    local orig = cb._save
    cb._save = function(self, path)
      saved = saved + 1
      orig(self, path)
      os.remove(path)
    end
    m:fit(x, y, { epochs = 1, batch_size = 5, verbose = 0, callbacks = { cb } })
    assert.equal(2, saved)   -- 8 batches: after the 3rd and the 6th (not once, at the epoch's end)
  end)
end)
