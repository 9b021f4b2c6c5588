-- nn_training_spec.lua — compile/fit/evaluate/predict/train_on_batch:
-- convergence on tiny problems (regression and classification), the staged
-- step against run_eagerly, the three model styles training alike,
-- validation, history and callbacks (EarlyStopping, ModelCheckpoint,
-- CSVLogger, LearningRateScheduler, ReduceLROnPlateau, LambdaCallback),
-- custom loops with apply_gradients, and the progress output.
local mg = require "moongrad"
local nn = mg.nn
local h = require "tests.spec.nn_helpers"
local near, fails, shape = h.near, h.fails, h.shape

-- y = 2 x1 - 3 x2 + 1
local function regression_data(n)
  mg.random.seed(1)
  local x = mg.random.normal { n, 2 }
  local y = mg.matmul(x, mg.tensor { { 2.0 }, { -3.0 } }) + 1
  return x, y
end

-- two classes split by x1 + x2 > 0 (labels 1 and 2)
local function class_data(n)
  mg.random.seed(2)
  local x = mg.random.normal { n, 2 }
  local y = mg.cast(mg.greater(mg.sum(x, 2), 0), mg.int64) + 1
  return x, y
end

local function capture(fn)
  local old = io.stdout
  local path = h.tmpname(".out")
  local f = assert(io.open(path, "w"))
  io.stdout = f
  local ok, err = pcall(fn)
  io.stdout = old
  f:close()
  f = assert(io.open(path))
  local text = f:read("a")
  f:close()
  os.remove(path)
  if not ok then error(err, 0) end
  return text
end

describe("fit", function()
  it("solves a linear regression with SGD", function()
    local x, y = regression_data(256)
    local m = nn.Sequential { nn.Input { shape = { 2 } }, nn.Dense(1) }
    m:compile { optimizer = mg.optim.SGD { learning_rate = 0.1 }, loss = "mse" }
    local hist = m:fit(x, y, { epochs = 20, batch_size = 32, verbose = 0 })
    assert.equal(20, #hist.history.loss)
    assert.is_true(hist.history.loss[20] < 1e-4, "final loss " .. hist.history.loss[20])
    near(m.layers[1].kernel, { { 2 }, { -3 } }, 1e-2)
    near(m.layers[1].bias, { 1 }, 1e-2)
    assert.same({ 1, 2, 3 }, { hist.epoch[1], hist.epoch[2], hist.epoch[3] })
  end)

  it("classifies with Adam and reports accuracy", function()
    local x, y = class_data(512)
    local m = nn.Sequential { nn.Input { shape = { 2 } }, nn.Dense(16, { activation = "relu" }),
      nn.Dense(2, { activation = "softmax" }) }
    m:compile { optimizer = mg.optim.Adam { learning_rate = 0.02 }, loss = "sparse_categorical_crossentropy",
      metrics = { "accuracy" } }
    assert.same({ "loss", "accuracy" }, m.metrics_names)
    local hist = m:fit(x, y, { epochs = 8, batch_size = 32, verbose = 0 })
    assert.is_true(hist.history.accuracy[8] > 0.95, "accuracy " .. hist.history.accuracy[8])
    assert.is_true(hist.history.loss[8] < hist.history.loss[1])
    local loss, acc = m:evaluate(x, y, { verbose = 0 })
    assert.is_true(acc > 0.95 and loss < 0.2)
    local d = m:evaluate(x, y, { verbose = 0, return_dict = true })
    near(d.accuracy, acc)
    local p = m:predict(x)
    assert.equal("512,2", shape(p))
    near(mg.mean(mg.cast(mg.equal(mg.argmax(p, -1), y), mg.float32)), acc, 1e-6)
    -- one trace for the 16 full batches (512 / 32)
    assert.equal(1, m.train_function:trace_count())
  end)

  it("gives the same numbers staged and with run_eagerly", function()
    local function run(eager)
      local x, y = class_data(96)
      mg.random.seed(9)
      local m = nn.Sequential { nn.Input { shape = { 2 } }, nn.Dense(8, { activation = "relu" }), nn.Dropout(0.25),
        nn.BatchNormalization(), nn.Dense(2) }
      m:compile { optimizer = "adam", loss = mg.losses.SparseCategoricalCrossentropy { from_logits = true },
        metrics = { "accuracy" }, run_eagerly = eager }
      local hist = m:fit(x, y, { epochs = 2, batch_size = 32, verbose = 0 })
      return hist.history, m:get_weights()
    end
    local hs, ws = run(false)
    local he, we = run(true)
    near(hs.loss, he.loss, 1e-5)
    near(hs.accuracy, he.accuracy, 1e-6)
    for i = 1, #ws do near(ws[i], we[i], 1e-5, "weight " .. i) end
  end)

  it("points at run_eagerly when a model's Lua code cannot be staged", function()
    local Peek = nn.Model:extend("SpecPeek")
    function Peek:init() self.d = nn.Dense(1) end
    function Peek:call(t)
      local y = self.d(t)
      if mg.sum(y):item() > 1e9 then y = y * 0 end   -- needs a value: fine eagerly only
      return y
    end
    local x, y = regression_data(32)
    local m = Peek()
    m:compile { optimizer = "sgd", loss = "mse" }
    fails(function() m:fit(x, y, { verbose = 0 }) end, "run_eagerly=true")
    m:compile { optimizer = "sgd", loss = "mse", run_eagerly = true }
    assert.equal(1, #m:fit(x, y, { verbose = 0 }).history.loss)
  end)

  it("trains functional and subclassed models the same way", function()
    local x, y = regression_data(128)
    local i = nn.Input { shape = { 2 } }
    local f = nn.Model { inputs = i, outputs = nn.Dense(1)(i) }
    local Lin = nn.Model:extend("SpecLin")
    function Lin:init() self.d = nn.Dense(1) end
    function Lin:call(t) return self.d(t) end
    for _, m in ipairs({ f, Lin() }) do
      m:compile { optimizer = mg.optim.SGD { learning_rate = 0.1 }, loss = "mse" }
      local hist = m:fit(x, y, { epochs = 15, batch_size = 16, verbose = 0 })
      assert.is_true(hist.history.loss[15] < 1e-3, m.class_name .. " loss " .. hist.history.loss[15])
    end
  end)

  it("accepts the option table form, validation_split and validation_data", function()
    local x, y = regression_data(100)
    local m = nn.Sequential { nn.Input { shape = { 2 } }, nn.Dense(1) }
    m:compile { optimizer = mg.optim.SGD { learning_rate = 0.05 }, loss = "mse", metrics = { "mae" } }
    local hist = m:fit { x = x, y = y, epochs = 3, batch_size = 10, validation_split = 0.2, verbose = 0 }
    assert.equal(3, #hist.history.val_loss)
    assert.equal(3, #hist.history.val_mae)
    assert.equal(3, #hist.history.mae)
    local h2 = m:fit(x, y, { epochs = 1, validation_data = { x, y }, verbose = 0, shuffle = false })
    near(h2.history.val_loss[1], (m:evaluate(x, y, { verbose = 0 })), 1e-6)
    fails(function() m:fit(x, y, { epoch = 2 }) end, "unknown option 'epoch'")
    fails(function() m:fit(x, y:slice { { 1, 50 } }) end, "x has 100 samples but y has 50")
    fails(function() nn.Sequential { nn.Dense(1) }:fit(x, y) end, "not compiled")
  end)

  it("handles a last partial batch and several inputs and outputs", function()
    local a, b = nn.Input { shape = { 2 } }, nn.Input { shape = { 3 } }
    local c = nn.Concatenate() { a, b }
    local o1, o2 = nn.Dense(1, { name = "reg" })(c), nn.Dense(2, { name = "cls", activation = "softmax" })(c)
    local m = nn.Model { inputs = { a, b }, outputs = { o1, o2 } }
    m:compile { optimizer = "adam", loss = { "mse", "sparse_categorical_crossentropy" }, loss_weights = { 1, 0.5 },
      metrics = { reg = { "mae" }, cls = { "accuracy" } } }
    assert.same({ "loss", "reg_loss", "cls_loss", "reg_mae", "cls_accuracy" }, m.metrics_names)
    mg.random.seed(4)
    local xa, xb = mg.random.normal { 50, 2 }, mg.random.normal { 50, 3 }
    local ya, yb = mg.random.normal { 50, 1 }, mg.random.integers({ 50 }, 1, 2)
    local hist = m:fit({ xa, xb }, { ya, yb }, { epochs = 2, batch_size = 16, verbose = 0 })
    assert.equal(2, #hist.history.cls_accuracy)
    local p = m:predict { xa, xb }
    assert.equal("50,1", shape(p[1]))
    assert.equal("50,2", shape(p[2]))
  end)

  it("train_on_batch, test_on_batch, predict_on_batch", function()
    local x, y = class_data(64)
    local m = nn.Sequential { nn.Input { shape = { 2 } }, nn.Dense(2) }
    m:compile { optimizer = mg.optim.SGD { learning_rate = 0.5 },
      loss = mg.losses.SparseCategoricalCrossentropy { from_logits = true }, metrics = { "accuracy" } }
    local l1 = m:train_on_batch(x, y)
    for _ = 1, 20 do m:train_on_batch(x, y) end
    local l2, acc = m:test_on_batch(x, y)
    assert.is_true(l2 < l1)
    assert.is_true(acc > 0.9)
    assert.equal("64,2", shape(m:predict_on_batch(x)))
    local d = m:train_on_batch(x, y, { return_dict = true })
    assert.is_number(d.loss)
    assert.is_number(d.accuracy)
  end)

  it("trains convolutional and recurrent models (conv transpose, pooling, BN, embedding, GRU)", function()
    mg.random.seed(6)
    local img = mg.random.uniform { 16, 8, 8, 1 }
    local ae = nn.Sequential { nn.Input { shape = { 8, 8, 1 } },
      nn.Conv2D(4, 3, { strides = 2, padding = "same", activation = "relu" }), nn.BatchNormalization(),
      nn.Conv2DTranspose(1, 3, { strides = 2, padding = "same" }) }
    ae:compile { optimizer = mg.optim.Adam { learning_rate = 0.01 }, loss = "mse" }
    local h1 = ae:fit(img, img, { epochs = 15, batch_size = 8, verbose = 0 })
    assert.is_true(h1.history.loss[15] < 0.5 * h1.history.loss[1], "autoencoder loss did not fall")
    -- sequences: is token 3 present? (tokens 1..4, length 6)
    local ids = mg.random.integers({ 64, 6 }, 1, 4)
    local has3 = mg.cast(mg.any(mg.equal(ids, 3), 2), mg.int64) + 1
    local rnn = nn.Sequential { nn.Input { shape = { 6 }, dtype = mg.int64 }, nn.Embedding(4, 8), nn.GRU(8),
      nn.Dense(2) }
    rnn:compile { optimizer = mg.optim.Adam { learning_rate = 0.02 },
      loss = mg.losses.SparseCategoricalCrossentropy { from_logits = true }, metrics = { "accuracy" } }
    local h2 = rnn:fit(ids, has3, { epochs = 25, batch_size = 16, verbose = 0 })
    assert.is_true(h2.history.accuracy[25] > 0.9, "GRU accuracy " .. h2.history.accuracy[25])
  end)

  it("adds regularization losses", function()
    local m = nn.Sequential { nn.Input { shape = { 1 } },
      nn.Dense(1, { kernel_initializer = "ones", use_bias = false, kernel_regularizer = nn.regularizers.L2(0.5) }) }
    m:compile { optimizer = mg.optim.SGD { learning_rate = 0 }, loss = "mse" }
    near(m.losses[1], 0.5)
    local loss = m:test_on_batch(mg.tensor { { 1.0 } }, mg.tensor { { 1.0 } })
    near(loss, 0.5)
  end)
end)

describe("callbacks", function()
  local function model()
    local m = nn.Sequential { nn.Input { shape = { 2 } }, nn.Dense(1) }
    m:compile { optimizer = mg.optim.SGD { learning_rate = 0.05 }, loss = "mse" }
    return m
  end

  it("EarlyStopping stops when the monitored value stops improving", function()
    local x, y = regression_data(64)
    local m = model()
    m.optimizer.learning_rate = 0.0   -- nothing improves
    local es = mg.callbacks.EarlyStopping { monitor = "loss", patience = 2 }
    local hist = m:fit(x, y, { epochs = 20, verbose = 0, callbacks = { es } })
    assert.equal(3, #hist.history.loss)
    assert.equal(3, es.stopped_epoch)
  end)

  it("EarlyStopping restores the best weights", function()
    local x, y = regression_data(64)
    local m = model()
    local best
    local es = mg.callbacks.EarlyStopping { monitor = "loss", patience = 1, restore_best_weights = true }
    local spoil = mg.callbacks.LambdaCallback { on_epoch_end = function(epoch)
      if epoch == 3 then best = m:get_weights() end
      if epoch >= 3 then m.optimizer.learning_rate = 10.0 end   -- diverge from here
    end }
    m:fit(x, y, { epochs = 10, verbose = 0, shuffle = false, callbacks = { spoil, es } })
    assert.is_true(es.stopped_epoch > 0)
    near(m:get_weights()[1], best[1], 1e-6)
  end)

  it("LambdaCallback sees every hook with 1-based epochs and batches", function()
    local x, y = regression_data(40)
    local m = model()
    local log = {}
    local cb = mg.callbacks.LambdaCallback {
      on_train_begin = function() log[#log + 1] = "begin" end,
      on_epoch_begin = function(e) log[#log + 1] = "e" .. e end,
      on_batch_end = function(b, logs) log[#log + 1] = "b" .. b .. (logs.loss and "+" or "-") end,
      on_epoch_end = function(e, logs) log[#log + 1] = "E" .. e .. (logs.loss and "+" or "-") end,
      on_train_end = function() log[#log + 1] = "end" end,
    }
    m:fit(x, y, { epochs = 2, batch_size = 20, verbose = 0, callbacks = { cb } })
    assert.same({ "begin", "e1", "b1+", "b2+", "E1+", "e2", "b1+", "b2+", "E2+", "end" }, log)
  end)

  it("CSVLogger writes one row per epoch", function()
    local x, y = regression_data(32)
    local m = model()
    local path = h.tmpname(".csv")
    m:fit(x, y, { epochs = 3, verbose = 0, validation_split = 0.25, callbacks = { mg.callbacks.CSVLogger(path) } })
    local f = assert(io.open(path))
    local lines = {}
    for l in f:lines() do lines[#lines + 1] = l end
    f:close()
    os.remove(path)
    assert.equal(4, #lines)
    assert.equal("epoch,loss,val_loss", lines[1])
    assert.truthy(lines[4]:match("^3,[%d%.e%-]+,[%d%.e%-]+$"))
  end)

  it("ModelCheckpoint saves weights that load back", function()
    local x, y = regression_data(32)
    local m = model()
    local dir = h.tmpname("")
    local path = dir .. "-{epoch:02d}.safetensors"
    m:fit(x, y, { epochs = 2, verbose = 0, callbacks = {
      mg.callbacks.ModelCheckpoint { filepath = path, save_weights_only = true } } })
    local saved = dir .. "-02.safetensors"
    local m2 = model()
    m2:build { -1, 2 }
    m2:load_weights(saved)
    near(m2:get_weights()[1], m:get_weights()[1], 0)
    os.remove(dir .. "-01.safetensors")
    os.remove(saved)
    local best = h.tmpname("-best")   -- a model:save directory
    local cb = mg.callbacks.ModelCheckpoint { filepath = best, monitor = "loss", save_best_only = true }
    m:fit(x, y, { epochs = 2, verbose = 0, callbacks = { cb } })
    assert.is_number(cb.best)
    local model2 = nn.load_model(best)
    near(model2:predict(x), m:predict(x), 1e-5)
    os.execute("rm -r '" .. best .. "'")
  end)

  it("LearningRateScheduler and ReduceLROnPlateau change the rate", function()
    local x, y = regression_data(32)
    local m = model()
    local seen = {}
    local sched = mg.callbacks.LearningRateScheduler(function(epoch, lr)
      seen[#seen + 1] = lr
      return 0.1 / epoch
    end)
    local hist = m:fit(x, y, { epochs = 3, verbose = 0, callbacks = { sched } })
    near(seen, { 0.05, 0.1, 0.05 })
    near(hist.history.learning_rate, { 0.1, 0.05, 0.1 / 3 })
    local m2 = model()
    m2.optimizer.learning_rate = 0.0
    local r = mg.callbacks.ReduceLROnPlateau { monitor = "loss", patience = 1, factor = 0.5, min_lr = 0 }
    m2.optimizer.learning_rate = 0.0
    m2:fit(x, y, { epochs = 3, verbose = 0, callbacks = { r } })
    near(m2.optimizer.learning_rate, 0.0)
    local m3 = model()
    m3.optimizer.learning_rate = 1e-9
    local r3 = mg.callbacks.ReduceLROnPlateau { monitor = "loss", patience = 1, factor = 0.5, min_delta = 1 }
    m3:fit(x, y, { epochs = 3, verbose = 0, callbacks = { r3 } })
    near(m3.optimizer.learning_rate, 0.25e-9, 1e-3)
  end)
end)

describe("custom training loops", function()
  it("use a tape and optimizer:apply_gradients, eagerly and staged", function()
    local x, y = regression_data(64)
    for _, staged in ipairs({ false, true }) do
      local m = nn.Sequential { nn.Input { shape = { 2 } }, nn.Dense(1) }
      local opt = mg.optim.SGD { learning_rate = 0.1, momentum = 0.5 }
      local loss_fn = mg.losses.MeanSquaredError()
      local function step(xb, yb)
        local tape = mg.GradientTape()
        local loss = loss_fn(yb, m(xb, true))
        tape:stop()
        local grads = tape:gradient(loss, m.trainable_weights)
        opt:apply_gradients(grads, m.trainable_weights)
        return loss
      end
      if staged then
        opt:build(m.trainable_weights)
        step = mg.func(step)
      end
      local loss
      for _ = 1, 60 do loss = step(x, y) end
      assert.is_true(loss:item() < 1e-4, "loss " .. loss:item())
      assert.equal(60, opt.iterations:item())
    end
  end)

  it("apply_gradients takes {grad, var} pairs and skips nil gradients", function()
    local v = mg.Variable(mg.tensor({ 1.0, 2.0 }, mg.float32))
    local w = mg.Variable(mg.tensor({ 5.0 }, mg.float32))
    local opt = mg.optim.SGD { learning_rate = 0.5 }
    opt:apply_gradients { { mg.tensor({ 2.0, 2.0 }, mg.float32), v }, { nil, w } }
    near(v, { 0, 1 })
    near(w, { 5 })
    fails(function() opt:apply_gradients({ mg.ones { 1 } }, { mg.ones { 1 } }) end, "not a Variable")
  end)
end)

describe("progress output", function()
  it("prints one line per epoch when stdout is not a terminal", function()
    local x, y = regression_data(64)
    local m = nn.Sequential { nn.Input { shape = { 2 } }, nn.Dense(1) }
    m:compile { optimizer = "sgd", loss = "mse", metrics = { "mae" } }
    local text = capture(function() m:fit(x, y, { epochs = 2, batch_size = 32, verbose = 1 }) end)
    local lines = {}
    for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(4, #lines)
    assert.equal("Epoch 1/2", lines[1])
    assert.truthy(lines[2]:match("^2/2 %- %d+s %d+[mu]?s/step %- loss: [%d%.e%-]+ %- mae: [%d%.e%-]+$"), lines[2])
    assert.equal("", capture(function() m:fit(x, y, { epochs = 1, verbose = 0 }) end))
  end)

  it("draws a Keras bar on a terminal", function()
    local progress = require "moongrad.nn.progress"
    local bar = progress.Progbar(10, { verbose = 1 })
    bar.dynamic = true
    local line = bar:line(5, { { "loss", 0.5 } }, bar.start + 5)
    assert.equal(" 5/10 [==============>...............] - ETA: 5s - loss: 0.5000", line)
    local done = bar:line(10, { { "loss", 0.25 } }, bar.start + 10)
    assert.equal("10/10 [==============================] - 10s 1s/step - loss: 0.2500", done)
    assert.equal("1.0000e-04", progress.format_value(1e-4))
  end)
end)
