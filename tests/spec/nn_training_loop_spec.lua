-- nn_training_loop_spec.lua — the training loop's contract, after Keras 3:
-- the loss reported is the mean over samples (not over batches); a
-- train_step/test_step override receives data = {x, y, sample_weight} and
-- its returned logs reach the history and callbacks; sample_weight and
-- class_weight; several outputs with per-output losses, loss weights,
-- metrics and weighted_metrics, keyed by output name, and inputs keyed by
-- Input name. Every case runs staged (the default) and with run_eagerly,
-- which must agree. The Keras numbers come from Keras 3.15.1 (JAX backend)
-- running the same models, weights and data (the data are formulas, so the
-- script and this file build them alike); the scripts printed with repr().
local mg = require "moongrad"
local nn = mg.nn
local h = require "tests.spec.nn_helpers"
local near, fails = h.near, h.fails

local function sorted_keys(t)
  local k = {}
  for name in pairs(t) do k[#k + 1] = name end
  table.sort(k)
  return k
end

-- x[i] = ((3i, 3i+1, 3i+2) / 50 - 1), y[i] = 2 sin(i), w[i] = i % 3, i = 0..39
local function data40()
  local xs, ys, ws = {}, {}, {}
  for i = 0, 39 do
    xs[i + 1] = { (3 * i) / 50 - 1, (3 * i + 1) / 50 - 1, (3 * i + 2) / 50 - 1 }
    ys[i + 1] = { math.sin(i) * 2 }
    ws[i + 1] = i % 3
  end
  return mg.tensor(xs, "float32"), mg.tensor(ys, "float32"), mg.tensor(ws, "float32")
end

local function fixed_linear(eager, metrics)
  local m = nn.Sequential { nn.Input { shape = { 3 } }, nn.Dense(1, { kernel_initializer = "ones" }) }
  m:compile { optimizer = mg.optim.SGD { learning_rate = 0 }, loss = "mse", metrics = metrics, run_eagerly = eager }
  return m
end

describe("the loss of an epoch", function()
  it("is the mean over samples, not over batches (40 samples, batches of 32 and 8)", function()
    local x, y = data40()
    for _, eager in ipairs({ false, true }) do
      local m = fixed_linear(eager, { "mse" })
      local true_mse = mg.mean(mg.square(m(x) - y)):item()
      local hist = m:fit(x, y, { batch_size = 32, epochs = 1, verbose = 0, shuffle = false })
      near(hist.history.loss[1], true_mse, 1e-5)
      near(hist.history.loss[1], 6.783561706542969, 1e-5)   -- Keras 3
      near(hist.history.mse[1], true_mse, 1e-5)
      near(m:evaluate(x, y, { batch_size = 32, verbose = 0 }), true_mse, 1e-5)
      near((m:evaluate(x, y, { batch_size = 7, verbose = 0 })), true_mse, 1e-5)
    end
  end)

  it("is what EarlyStopping and ReduceLROnPlateau read", function()
    local x, y = data40()
    local m = fixed_linear(false)
    local seen = {}
    local cb = mg.callbacks.LambdaCallback { on_epoch_end = function(_, logs) seen[#seen + 1] = logs.loss end }
    local es = mg.callbacks.EarlyStopping { monitor = "loss", patience = 5 }
    local rl = mg.callbacks.ReduceLROnPlateau { monitor = "loss", patience = 5 }
    m:fit(x, y, { batch_size = 32, epochs = 2, verbose = 0, shuffle = false, callbacks = { cb, es, rl } })
    near(seen, { 6.783561706542969, 6.783561706542969 }, 1e-5)
    near(es.best, 6.783561706542969, 1e-5)
    near(rl.best, 6.783561706542969, 1e-5)
  end)
end)

describe("sample_weight and class_weight", function()
  it("weigh the loss as Keras does; plain metrics ignore them", function()
    local x, y, w = data40()
    for _, eager in ipairs({ false, true }) do
      local m = fixed_linear(eager, { "mse" })
      local hist = m:fit(x, y, { batch_size = 32, epochs = 1, verbose = 0, shuffle = false, sample_weight = w })
      near(hist.history.loss[1], 6.843514442443848, 1e-5)   -- Keras 3
      near(hist.history.mse[1], 6.783561706542969, 1e-5)
      local d = m:evaluate(x, y, { batch_size = 32, verbose = 0, sample_weight = w, return_dict = true })
      near(d.loss, 6.843514442443848, 1e-5)
      local se = mg.square(m(x) - y):reshape { -1 }
      near(d.loss, mg.mean(se * w):item(), 1e-5)
      local tl = m:train_on_batch(x, y, { sample_weight = w })
      near(tl, mg.mean(se * w):item(), 1e-5)
    end
  end)

  it("class_weight becomes per-sample weights (classes from 1; Keras's {0: 1, 1: 2, 2: 0.5})", function()
    local xs, ys = {}, {}
    for i = 0, 39 do
      xs[i + 1] = { math.sin(i), math.sin(i + 1), math.sin(i + 2) }
      ys[i + 1] = i % 3 + 1
    end
    local x, y = mg.tensor(xs, "float32"), mg.tensor(ys, "int64")
    for _, eager in ipairs({ false, true }) do
      local a = nn.Input { shape = { 3 }, name = "a" }
      local m = nn.Model { inputs = a, outputs = nn.Dense(3, { activation = "softmax", name = "c" })(a) }
      local k = {}
      for r = 0, 2 do
        k[r + 1] = {}
        for c = 0, 2 do k[r + 1][c + 1] = ((r * 3 + c) * 5 % 7) / 10 - 0.3 end
      end
      m:get_layer("c"):set_weights { mg.tensor(k, "float32"), mg.tensor({ 0.0, 0.1, -0.1 }, "float32") }
      m:compile { optimizer = mg.optim.SGD { learning_rate = 0.1 }, loss = "sparse_categorical_crossentropy",
        metrics = { "accuracy" }, run_eagerly = eager }
      local hist = m:fit(x, y, { class_weight = { 1.0, 2.0, 0.5 }, batch_size = 16, epochs = 2, shuffle = false,
        verbose = 0 })
      near(hist.history.loss, { 1.276909589767456, 1.2490131855010986 }, 1e-5)      -- Keras 3
      near(hist.history.accuracy, { 0.2750000059604645, 0.2750000059604645 }, 1e-6)
      near(m:get_layer("c").kernel:reshape { -1 }, { -0.25318530201911926, 0.14619798958301544, 0.006987275555729866,
        -0.15164244174957275, 0.2736867070198059, 0.07795577496290207, -0.09455932676792145, -0.2746323049068451,
        0.1691916137933731 }, 1e-5)
      near(m:get_layer("c").bias, { -0.011070807464420795, 0.20737189054489136, -0.19630107283592224 }, 1e-5)
    end
  end)

  it("come from (x, y, sample_weight) elements of a Dataset", function()
    local x, y, w = data40()
    local ds = mg.data.Dataset.from_tensor_slices(x, y, w):batch(32)
    local m = fixed_linear(false, { "mse" })
    local hist = m:fit(ds, { epochs = 1, verbose = 0 })
    near(hist.history.loss[1], 6.843514442443848, 1e-5)
    near(hist.history.mse[1], 6.783561706542969, 1e-5)
  end)
end)

-- Two inputs (fed by name), two outputs (a regression and a 3-class softmax).
local function two_heads()
  local a, b = nn.Input { shape = { 3 }, name = "a" }, nn.Input { shape = { 2 }, name = "b" }
  local hcat = nn.Concatenate() { a, b }
  local reg = nn.Dense(1, { name = "reg" })(hcat)
  local cls = nn.Dense(3, { activation = "softmax", name = "cls" })(hcat)
  local m = nn.Model { inputs = { a, b }, outputs = { reg, cls } }
  local k, kc = {}, {}
  for j = 0, 4 do k[j + 1] = { j / 10 - 0.2 } end
  for r = 0, 4 do
    kc[r + 1] = {}
    for c = 0, 2 do kc[r + 1][c + 1] = ((r * 3 + c) * 7 % 11) / 10 - 0.5 end
  end
  m:get_layer("reg"):set_weights { mg.tensor(k, "float32"), mg.tensor({ 0.1 }, "float32") }
  m:get_layer("cls"):set_weights { mg.tensor(kc, "float32"), mg.tensor({ 0.1, -0.1, 0 }, "float32") }
  return m
end

local function heads_data()
  local xa, xb, yr, yc, sw = {}, {}, {}, {}, {}
  for i = 0, 39 do
    xa[i + 1] = { math.sin(i), math.sin(i + 1), math.sin(i + 2) }
    xb[i + 1] = { math.cos(2 * i), math.cos(2 * i + 1) }
    yr[i + 1] = { (i % 5) / 2 }
    yc[i + 1] = i % 3 + 1
    sw[i + 1] = 1 + (i % 4) / 2
  end
  return { a = mg.tensor(xa, "float32"), b = mg.tensor(xb, "float32") }, mg.tensor(yr, "float32"),
    mg.tensor(yc, "int64"), mg.tensor(sw, "float32")
end

describe("several outputs", function()
  local function compiled(lr, eager)
    local m = two_heads()
    m:compile { optimizer = mg.optim.SGD { learning_rate = lr }, run_eagerly = eager,
      loss = { reg = "mse", cls = "sparse_categorical_crossentropy" }, loss_weights = { reg = 1.0, cls = 0.5 },
      metrics = { reg = { "mae" }, cls = { "accuracy" } }, weighted_metrics = { cls = { "accuracy" } } }
    return m
  end

  it("report <output>_loss and <output>_<metric>, each metric on its own output (Keras's numbers)", function()
    local x, yr, yc, sw = heads_data()
    for _, eager in ipairs({ false, true }) do
      local m = compiled(0.1, eager)
      assert.same({ "loss", "reg_loss", "cls_loss", "reg_mae", "cls_accuracy", "cls_weighted_accuracy" },
        m.metrics_names)
      local hist = m:fit(x, { yr, yc }, { sample_weight = sw, batch_size = 16, epochs = 2, shuffle = false,
        verbose = 0 })
      local H = hist.history
      assert.same({ "cls_accuracy", "cls_loss", "cls_weighted_accuracy", "loss", "reg_loss", "reg_mae" }, sorted_keys(H))
      -- Keras 3, the same model, weights, data and compile settings (y as a list, x as a dict):
      near(H.loss, { 3.043252944946289, 1.9996970891952515 }, 1e-5)
      near(H.reg_loss, { 1.9126819372177124, 0.9068042635917664 }, 1e-5)
      near(H.cls_loss, { 2.2611422538757324, 2.1857857704162598 }, 1e-5)
      near(H.reg_mae, { 0.8379599452018738, 0.6224278211593628 }, 1e-5)
      near(H.cls_accuracy, { 0.30000001192092896, 0.3499999940395355 }, 1e-6)
      near(H.cls_weighted_accuracy, { 0.30000001192092896, 0.33571428060531616 }, 1e-6)
      near(m:get_layer("reg").kernel:reshape { -1 }, { 0.19531342387199402, 0.18441955745220184, -0.0879683569073677,
        -0.05097968876361847, 0.03616209328174591 }, 1e-5)
      near(m:get_layer("reg").bias, { 1.0128885507583618 }, 1e-5)
      near(m:get_layer("cls").bias, { 0.09153220802545547, -0.09375270456075668, 0.002220489550381899 }, 1e-5)
      -- targets keyed by output name; the per-output losses are unweighted by loss_weights
      local d = m:evaluate(x, { reg = yr, cls = yc }, { batch_size = 16, verbose = 0, return_dict = true })
      near(d.loss, 1.114379644393921, 1e-5)
      near(d.reg_loss, 0.5144840478897095, 1e-5)
      near(d.cls_loss, 1.1997913122177124, 1e-5)
      near(d.reg_loss + 0.5 * d.cls_loss, d.loss, 1e-5)
      near(d.reg_mae, 0.6151705980300903, 1e-5)
      near(d.cls_accuracy, 0.3499999940395355, 1e-6)
    end
  end)

  it("take losses, weights and metrics as lists in output order", function()
    local x, yr, yc = heads_data()
    local m = two_heads()
    m:compile { optimizer = mg.optim.SGD { learning_rate = 0 }, loss = { "mse", "sparse_categorical_crossentropy" },
      loss_weights = { 1.0, 0.5 }, metrics = { "mae", { "accuracy" } } }
    assert.same({ "loss", "reg_loss", "cls_loss", "reg_mae", "cls_accuracy" }, m.metrics_names)
    local d = m:evaluate(x, { yr, yc }, { batch_size = 16, verbose = 0, return_dict = true })
    near(d.loss, 2.083766460418701, 1e-5)   -- Keras 3 (lr 0: the initial weights)
    near(d.cls_accuracy, 0.30000001192092896, 1e-6)
    -- one loss for every output; a loss for one output only
    local m2 = two_heads()
    m2:compile { optimizer = "sgd", loss = { reg = "mse" } }
    assert.same({ "loss" }, m2.metrics_names)
    near((m2:evaluate(x, { reg = yr }, { verbose = 0 })), d.reg_loss, 1e-5)
  end)

  it("reject settings that do not match the outputs", function()
    local m = two_heads()
    fails(function() m:compile { optimizer = "sgd", loss = "mse", metrics = { "accuracy" } } end,
      "compile: metrics is a list of 1 entries but the model has 2 outputs (reg, cls)")
    fails(function() m:compile { optimizer = "sgd", loss = { regg = "mse" } } end,
      "compile: loss has an entry for 'regg', which is not an output of the model (outputs: reg, cls)")
    fails(function() m:compile { optimizer = "sgd", loss = { "mse" } } end, "loss is a list of 1 entries")
    fails(function() m:compile { optimizer = "sgd", loss = "mse", loss_weights = 2 } end,
      "loss_weights for a model with 2 outputs must be a list")
    local x, yr, yc = heads_data()
    m:compile { optimizer = "sgd", loss = "mse" }
    fails(function() m:fit(x, { yr }, { verbose = 0 }) end, "y is a list of 1 entries but the model has 2 outputs")
    fails(function() m:fit(x, { reg = yr, cl = yc }, { verbose = 0 }) end, "y has an entry for 'cl'")
    fails(function() m:fit(x, { reg = yr }, { verbose = 0 }) end, "no target (y) for output cls")
    fails(function() m:fit(x, { yr, yc }, { class_weight = { 1, 2 }, verbose = 0 }) end,
      "class_weight is only supported for models with a single output")
  end)

  it("keep their compile settings through model:save / nn.load_model", function()
    local x, yr, yc, sw = heads_data()
    local m = compiled(0.1, false)
    m:fit(x, { yr, yc }, { sample_weight = sw, batch_size = 16, epochs = 1, shuffle = false, verbose = 0 })
    local dir = h.tmpname("-heads")
    m:save(dir)
    local m2 = nn.load_model(dir)
    os.execute("rm -r '" .. dir .. "'")
    assert.same(m.metrics_names, m2.metrics_names)
    local a = m:evaluate(x, { yr, yc }, { sample_weight = sw, verbose = 0, return_dict = true })
    local b = m2:evaluate(x, { yr, yc }, { sample_weight = sw, verbose = 0, return_dict = true })
    for _, k in ipairs(sorted_keys(a)) do near(b[k], a[k], 1e-6, k) end
  end)

  it("take inputs keyed by Input name, and say which name is wrong", function()
    local m = two_heads()
    local x = heads_data()
    near(m(x)[1], m { x.a, x.b }[1], 0)
    fails(function() m { a = x.a, c = x.b } end, "has no input named 'c' (inputs: a, b)")
    fails(function() m { a = x.a } end, "no value for input 'b'")
    near(m:predict(x)[2], m:predict { x.a, x.b }[2], 0)
  end)
end)

describe("train_step(data) and test_step(data) overrides", function()
  local function custom_class()
    local Custom = nn.Model:extend("SpecCustomStep")
    function Custom:init()
      self.d = nn.Dense(1)
      self.loss_tracker = mg.metrics.Mean { name = "my_loss" }
      self.mae = mg.metrics.MeanAbsoluteError { name = "my_mae" }
    end
    function Custom:call(t) return self.d(t) end
    function Custom:train_step(data)
      local x, y = nn.utils.unpack_x_y_sample_weight(data)
      local tape = mg.GradientTape()
      local pred = self(x, true)
      local loss = mg.mean(mg.square(pred - y))
      tape:stop()
      local vars = self.trainable_weights
      self.optimizer:apply_gradients(tape:gradient(loss, vars), vars)
      self.loss_tracker:update_state(loss)
      self.mae:update_state(y, pred)
      return { my_loss = self.loss_tracker:result(), my_mae = self.mae:result() }
    end
    function Custom:test_step(data)
      local x, y = data[1], data[2]
      local pred = self(x, false)
      self.mae:update_state(y, pred)
      return { my_mae = self.mae:result() }
    end
    return Custom
  end

  it("get data = {x, y} and their logs reach the history and callbacks, staged and eager alike", function()
    local Custom = custom_class()
    local x, y = data40()
    local runs = {}
    for _, eager in ipairs({ false, true }) do
      mg.random.seed(5)
      local m = Custom()
      m:compile { optimizer = mg.optim.SGD { learning_rate = 0.05 }, run_eagerly = eager }
      local batches = {}
      local cb = mg.callbacks.LambdaCallback { on_batch_end = function(_, logs) batches[#batches + 1] = logs.my_loss end }
      local hist = m:fit(x, y, { epochs = 3, batch_size = 16, verbose = 0, shuffle = false, callbacks = { cb } })
      assert.same({ "my_loss", "my_mae" }, sorted_keys(hist.history))
      assert.equal(3, #hist.history.my_loss)
      assert.is_true(hist.history.my_loss[3] < hist.history.my_loss[1])
      assert.equal(9, #batches)
      assert.is_number(batches[1])
      -- the trackers on fields are the model's metrics: reset each epoch
      near(hist.history.my_loss[3], batches[9], 1e-6)
      local d = m:evaluate(x, y, { verbose = 0, return_dict = true })
      assert.same({ "my_mae" }, sorted_keys(d))
      near(d.my_mae, mg.mean(mg.abs(m(x) - y)):item(), 1e-5)
      runs[#runs + 1] = { hist.history, m.d.kernel }
    end
    near(runs[1][1].my_loss, runs[2][1].my_loss, 1e-5)
    near(runs[1][2], runs[2][2], 1e-5)
  end)

  it("may log Lua numbers, and a bare loss is logged as loss", function()
    local M = nn.Model:extend("SpecNumberLogs")
    function M:init() self.d = nn.Dense(1) end
    function M:call(t) return self.d(t) end
    function M:train_step(data)
      local x, y = data[1], data[2]
      local tape = mg.GradientTape()
      local loss = mg.mean(mg.square(self(x, true) - y))
      tape:stop()
      self.optimizer:apply_gradients(tape:gradient(loss, self.trainable_weights), self.trainable_weights)
      return { loss = loss, stage = 7 }
    end
    function M:test_step(data) return mg.mean(mg.square(self(data[1]) - data[2])) end
    local x, y = data40()
    for _, eager in ipairs({ false, true }) do
      local m = M()
      m:compile { optimizer = mg.optim.SGD { learning_rate = 0.01 }, run_eagerly = eager }
      local hist = m:fit(x, y, { epochs = 2, batch_size = 40, verbose = 0 })
      near(hist.history.stage, { 7, 7 }, 0)
      assert.is_true(hist.history.loss[2] < hist.history.loss[1])
      near(m:evaluate(x, y, { verbose = 0, batch_size = 40 }), mg.mean(mg.square(m(x) - y)):item(), 1e-5)
    end
  end)

  it("may train without targets (fit(x) for an autoencoder)", function()
    local AE = nn.Model:extend("SpecAutoencoder")
    function AE:init() self.d = nn.Dense(3) end
    function AE:call(t) return self.d(t) end
    function AE:train_step(data)
      local x = nn.utils.unpack_x_y_sample_weight(data)
      local tape = mg.GradientTape()
      local loss = mg.mean(mg.square(self(x, true) - x))
      tape:stop()
      self.optimizer:apply_gradients(tape:gradient(loss, self.trainable_weights), self.trainable_weights)
      return { reconstruction = loss }
    end
    local x = data40()
    local m = AE()
    m:compile { optimizer = mg.optim.Adam { learning_rate = 0.05 } }
    local hist = m:fit(x, nil, { epochs = 4, verbose = 0 })
    assert.equal(4, #hist.history.reconstruction)
    assert.is_true(hist.history.reconstruction[4] < hist.history.reconstruction[1])
    -- the default step still needs y
    local plain = fixed_linear(false)
    fails(function() plain:fit(x, nil, { verbose = 0 }) end, "fit: y (the targets) is missing")
  end)
end)

describe("fit's options", function()
  it("reject values that would hang, train nothing or be ignored", function()
    local x, y = data40()
    local m = fixed_linear(false)
    fails(function() m:fit(x, y, { batch_size = 0 }) end, "fit: option 'batch_size' must be in [1, inf), got 0")
    fails(function() m:fit(x, y, { batch_size = -1 }) end, "option 'batch_size' must be in [1, inf), got -1")
    fails(function() m:fit(x, y, { validation_split = -0.5 }) end, "option 'validation_split' must be in [0, 1)")
    fails(function() m:fit(mg.zeros { 0, 3 }, mg.zeros { 0, 1 }) end, "fit: x has no samples")
    fails(function() m:fit(x, y, { epochs = 2.5 }) end, "'epochs' must be an integer")
    fails(function() m:fit(x, y, { verbose = 5 }) end, "'verbose' must be 0, 1, 2 or \"auto\"")
    fails(function() m:fit(x, y, { bacth_size = 8 }) end, "unknown option 'bacth_size' (did you mean 'batch_size'?)")
    fails(function() m:fit(x, y, { sample_weight = mg.ones { 5 } }) end, "x has 40 samples but sample_weight has 5")
    fails(function() m:fit(x, y, { sample_weight = mg.ones { 40 }, class_weight = { 1 } }) end,
      "give sample_weight or class_weight, not both")
    fails(function() m:fit(x, y, { class_weight = { [0] = 1 } }) end, "class_weight keys must be class indices")
    fails(function() m:evaluate(x, y, { batch_size = 0 }) end, "evaluate: option 'batch_size'")
    fails(function() m:evaluate(x, y, { class_weight = { 1 } }) end, "evaluate: unknown option 'class_weight'")
    fails(function() m:predict(x, { steps = 0 }) end, "predict: option 'steps'")
    fails(function() m:compile { optimizer = "sgd", loss = "mse", metric = { "mae" } } end,
      "compile: unknown option 'metric' (did you mean 'metrics'?)")
    fails(function() m:train_on_batch(x, y, { sample_weights = mg.ones { 40 } }) end,
      "train_on_batch: unknown option 'sample_weights'")
  end)

  it("validation_data may carry sample weights", function()
    local x, y, w = data40()
    local m = fixed_linear(false)
    local hist = m:fit(x, y, { epochs = 1, verbose = 0, validation_data = { x, y, w } })
    near(hist.history.val_loss[1], 6.843514442443848, 1e-5)
  end)
end)
