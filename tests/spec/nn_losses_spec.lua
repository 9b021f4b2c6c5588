-- nn_losses_spec.lua — mg.losses, mg.metrics and mg.optim against Keras's
-- documented examples and hand-computed single steps: loss values and
-- reductions, the stable cross-entropy paths (from_logits, and a softmax
-- output's remembered logits), metric states (also inside staged
-- functions), optimizer updates, clipping and learning-rate schedules.
local mg = require "moongrad"
local nn = mg.nn
local h = require "tests.spec.nn_helpers"
local near, fails = h.near, h.fails
-- float tensors from Lua numbers whatever their look (under LuaJIT 1.0 is an integer)
local function F(t) return mg.tensor(t, mg.float32) end

describe("losses", function()
  local L = mg.losses

  it("MSE, MAE and Huber (Keras's examples)", function()
    local t, p = mg.tensor { { 0.0, 1.0 }, { 1.0, 1.0 } }, mg.tensor { { 0.0, 0.0 }, { 1.0, 0.0 } }
    near(L.MeanSquaredError()(t, p), 0.5)
    near(L.mean_squared_error(t, p), { 0.5, 0.5 })
    near(L.MeanAbsoluteError()(t, p), 0.5)
    near(L.get("mse")(t, p, mg.tensor { 0.7, 0.3 }), 0.25)
    near(L.MeanSquaredError { reduction = "sum" }(t, p), 1.0)
    near(L.MeanSquaredError { reduction = "none" }(t, p), { 0.5, 0.5 })
    local ht, hp = mg.tensor { { 0.0, 1.0 }, { 0.0, 0.0 } }, mg.tensor { { 0.6, 0.4 }, { 0.4, 0.6 } }
    near(L.Huber()(ht, hp), 0.155)
    near(L.Huber { delta = 0.1 }(mg.tensor { { 0.0 } }, mg.tensor { { 1.0 } }), 0.1 * (1 - 0.05))
  end)

  it("aligns (N,) targets with (N, 1) predictions", function()
    near(L.MeanSquaredError()(mg.tensor { 1.0, 2.0 }, mg.tensor { { 1.0 }, { 4.0 } }), 2.0)
    near(L.MeanSquaredError()(mg.tensor { 1, 2 }, mg.tensor { { 1.0 }, { 4.0 } }), 2.0)
  end)

  it("binary cross-entropy from probabilities and from logits", function()
    local t, p = mg.tensor { { 0.0, 1.0 }, { 0.0, 0.0 } }, mg.tensor { { 0.6, 0.4 }, { 0.4, 0.6 } }
    near(L.BinaryCrossentropy()(t, p), 0.815, 1e-3)
    local lt, lp = mg.tensor { 0.0, 1.0, 0.0, 0.0 }, mg.tensor { -18.6, 0.51, 2.94, -12.8 }
    near(L.BinaryCrossentropy { from_logits = true }(lt, lp), 0.865, 1e-3)
    -- a sigmoid output remembers its logits: same value, no clipping
    local s = nn.activations.sigmoid(mg.tensor { { 40.0 } })
    near(L.BinaryCrossentropy()(mg.tensor { { 0.0 } }, s), 40, 1e-5)
  end)

  it("categorical and sparse categorical cross-entropy", function()
    local p = mg.tensor { { 0.05, 0.95, 0.0 }, { 0.1, 0.8, 0.1 } }
    near(L.CategoricalCrossentropy()(mg.tensor { { 0.0, 1.0, 0.0 }, { 0.0, 0.0, 1.0 } }, p), 1.177, 1e-3)
    near(L.SparseCategoricalCrossentropy()(mg.tensor { 2, 3 }, p), 1.177, 1e-3)
    near(L.SparseCategoricalCrossentropy()(mg.tensor { { 2 }, { 3 } }, p), 1.177, 1e-3)
    near(L.SparseCategoricalCrossentropy()(mg.tensor { 2.0, 3.0 }, p), 1.177, 1e-3)
    local logits = F { { 1.0, 2.0, 3.0 }, { 1.0, -1.0, 0.0 } }
    local lse1 = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    local lse2 = math.log(math.exp(1) + math.exp(-1) + 1)
    local want = ((lse1 - 3) + (lse2 - 1)) / 2
    near(L.SparseCategoricalCrossentropy { from_logits = true }(mg.tensor { 3, 1 }, logits), want)
    near(L.CategoricalCrossentropy { from_logits = true }(mg.tensor { { 0.0, 0.0, 1.0 }, { 1.0, 0.0, 0.0 } }, logits),
      want)
    near(L.CategoricalCrossentropy { label_smoothing = 0.3 }(mg.tensor { { 0.0, 1.0 } }, mg.tensor { { 0.5, 0.5 } }),
      math.log(2))
  end)

  it("uses a softmax layer's logits, staying finite where log(p) would not", function()
    local out = nn.Activation("softmax")(mg.tensor { { 100.0, -100.0 } })
    near(L.SparseCategoricalCrossentropy()(mg.tensor { 2 }, out), 200, 1e-5)
    near(L.CategoricalCrossentropy()(mg.tensor { { 0.0, 1.0 } }, out), 200, 1e-5)
    -- probabilities that did not come from a softmax are clipped instead
    near(L.SparseCategoricalCrossentropy()(mg.tensor { 2 }, F { { 1.0, 0.0 } }), -math.log(1e-7), 1e-4)
  end)

  it("gives gradients through the fused op", function()
    local logits = F { { 1.0, 2.0, 3.0 } }
    local tape = mg.GradientTape()
    tape:watch(logits)
    local loss = L.SparseCategoricalCrossentropy { from_logits = true }(mg.tensor { 3 }, logits)
    tape:stop()
    local e = { math.exp(1), math.exp(2), math.exp(3) }
    local s = e[1] + e[2] + e[3]
    near(tape:gradient(loss, logits), { { e[1] / s, e[2] / s, e[3] / s - 1 } })
  end)

  it("are found by name and reject unknown ones", function()
    assert.equal("SparseCategoricalCrossentropy", L.get("sparse_categorical_crossentropy").class_name)
    assert.equal("MeanAbsoluteError", L.get("mae").class_name)
    local custom = L.get(function(t, p) return mg.mean(p - t, -1) end)
    near(custom(mg.tensor { { 1.0 } }, mg.tensor { { 3.0 } }), 2)
    fails(function() L.get("nope") end, "unknown loss 'nope'")
  end)
end)

describe("metrics", function()
  local M = mg.metrics

  it("Mean accumulates and resets", function()
    local m = M.Mean()
    m:update_state(mg.tensor { 1.0, 2.0, 3.0, 4.0 })
    near(m:result(), 2.5)
    m:update_state(mg.tensor { 10.0 })
    near(m:result(), 4)
    m:reset_state()
    near(m:result(), 0)
    m:update_state(mg.tensor { 1.0, 3.0 }, mg.tensor { 1.0, 0.0 })
    near(m:result(), 1)
  end)

  it("accuracies", function()
    near(M.SparseCategoricalAccuracy()(mg.tensor { 1, 2, 3 },
      mg.tensor { { 0.9, 0.1, 0.0 }, { 0.2, 0.7, 0.1 }, { 0.5, 0.2, 0.3 } }), 2 / 3)
    near(M.BinaryAccuracy()(mg.tensor { { 1.0 }, { 1.0 }, { 0.0 }, { 0.0 } },
      mg.tensor { { 0.98 }, { 1.0 }, { 0.0 }, { 0.6 } }), 0.75)
    near(M.CategoricalAccuracy()(mg.tensor { { 0.0, 0.0, 1.0 }, { 0.0, 1.0, 0.0 } },
      mg.tensor { { 0.1, 0.9, 0.8 }, { 0.05, 0.95, 0.0 } }), 0.5)
    near(M.Accuracy()(mg.tensor { 1, 2, 3, 4 }, mg.tensor { 0, 2, 3, 4 }), 0.75)
  end)

  it("Precision, Recall and AUC", function()
    local t, p = mg.tensor { 0, 1, 1, 1 }, mg.tensor { 1.0, 0.0, 1.0, 1.0 }
    near(M.Precision()(t, p), 2 / 3)
    near(M.Recall()(t, p), 2 / 3)
    local auc3 = M.AUC { num_thresholds = 3 }
    near(auc3(mg.tensor { 0, 0, 1, 1 }, mg.tensor { 0.0, 0.5, 0.3, 0.9 }), 0.75)
    near(M.AUC()(mg.tensor { 0, 0, 1, 1 }, mg.tensor { 0.0, 0.5, 0.3, 0.9 }), 0.75)
    near(M.AUC()(mg.tensor { 0, 1, 0, 1 }, mg.tensor { 0.1, 0.8, 0.2, 0.95 }), 1.0)
    local pr = M.AUC { curve = "PR" }
    near(pr(mg.tensor { 0, 1, 0, 1 }, mg.tensor { 0.1, 0.8, 0.2, 0.95 }), 1.0, 0.02)
    near(M.Precision()(mg.tensor { 0 }, mg.tensor { 0.0 }), 0)
  end)

  it("update inside staged functions", function()
    local acc = M.SparseCategoricalAccuracy()
    local f = mg.func(function(t, p) acc:update_state(t, p) end)
    f(mg.tensor { 1, 2 }, mg.tensor { { 0.9, 0.1 }, { 0.8, 0.2 } })
    f(mg.tensor { 1, 2 }, mg.tensor { { 0.9, 0.1 }, { 0.1, 0.9 } })
    near(acc:result(), 0.75)
  end)

  it("'accuracy' follows the loss, as in Keras", function()
    assert.equal("SparseCategoricalAccuracy",
      M.get("accuracy", mg.losses.get("sparse_categorical_crossentropy")).class_name)
    assert.equal("CategoricalAccuracy", M.get("accuracy", mg.losses.get("categorical_crossentropy")).class_name)
    assert.equal("BinaryAccuracy", M.get("accuracy", mg.losses.get("binary_crossentropy")).class_name)
    assert.equal("accuracy", M.get("accuracy", mg.losses.get("binary_crossentropy")).name)
    fails(function() M.get("nope") end, "unknown metric 'nope'")
  end)
end)

describe("optimizers", function()
  local g = F { 0.5, -1.0 }

  local function steps(opt, n, p0, grad)
    local p = mg.Variable(F(p0 or { 1.0, -2.0 }))
    for _ = 1, n do opt:apply_gradients({ grad or g }, { p }) end
    return p
  end

  it("SGD, with momentum and Nesterov", function()
    near(steps(mg.optim.SGD { learning_rate = 0.1 }, 1), { 0.95, -1.9 })
    near(steps(mg.optim.SGD { learning_rate = 0.1, momentum = 0.9 }, 2), { 0.855, -1.71 })
    near(steps(mg.optim.SGD { learning_rate = 0.1, momentum = 0.9, nesterov = true }, 1), { 0.905, -1.81 })
  end)

  it("Adam and AdamW", function()
    local function adam_ref(p, grads, lr, wd)
      local b1, b2, eps = 0.9, 0.999, 1e-7
      local m, v = 0, 0
      for t, gr in ipairs(grads) do
        if wd then p = p - p * lr * wd end
        m = m + (gr - m) * (1 - b1)
        v = v + (gr * gr - v) * (1 - b2)
        local alpha = lr * math.sqrt(1 - b2 ^ t) / (1 - b1 ^ t)
        p = p - alpha * m / (math.sqrt(v) + eps)
      end
      return p
    end
    near(steps(mg.optim.Adam { learning_rate = 0.1 }, 3),
      { adam_ref(1.0, { 0.5, 0.5, 0.5 }, 0.1), adam_ref(-2.0, { -1, -1, -1 }, 0.1) })
    near(steps(mg.optim.AdamW { learning_rate = 0.1, weight_decay = 0.1 }, 2),
      { adam_ref(1.0, { 0.5, 0.5 }, 0.1, 0.1), adam_ref(-2.0, { -1, -1 }, 0.1, 0.1) })
    local amsgrad = mg.optim.Adam { learning_rate = 0.1, amsgrad = true }
    near(steps(amsgrad, 1), { adam_ref(1.0, { 0.5 }, 0.1), adam_ref(-2.0, { -1 }, 0.1) })
  end)

  it("RMSprop and Adagrad", function()
    local v1, v2 = 0.1 * 0.25, 0.1 * 1
    near(steps(mg.optim.RMSprop { learning_rate = 0.1 }, 1),
      { 1 - 0.1 * 0.5 / math.sqrt(v1 + 1e-7), -2 + 0.1 / math.sqrt(v2 + 1e-7) })
    local a1, a2 = 0.1 + 0.25, 0.1 + 1
    near(steps(mg.optim.Adagrad { learning_rate = 0.1 }, 1),
      { 1 - 0.1 * 0.5 / math.sqrt(a1 + 1e-7), -2 + 0.1 / math.sqrt(a2 + 1e-7) })
  end)

  it("clip by norm, value and global norm", function()
    local g34 = F { 3.0, 4.0 }
    near(steps(mg.optim.SGD { learning_rate = 1, clipnorm = 1 }, 1, { 0.0, 0.0 }, g34), { -0.6, -0.8 })
    near(steps(mg.optim.SGD { learning_rate = 1, clipvalue = 3.5 }, 1, { 0.0, 0.0 }, g34), { -3, -3.5 })
    local a, b = mg.Variable(F { 0.0 }), mg.Variable(F { 0.0 })
    mg.optim.SGD { learning_rate = 1, global_clipnorm = 1 }:apply_gradients({ F { 3.0 }, F { 4.0 } },
      { a, b })
    near(a, { -0.6 })
    near(b, { -0.8 })
  end)

  it("learning rates are settable and schedules follow the step", function()
    local opt = mg.optim.SGD { learning_rate = 0.1 }
    near(opt.learning_rate, 0.1)
    opt.learning_rate = 0.5
    near(steps(opt, 1), { 0.75, -1.5 })
    local S = mg.optim.schedules
    local e = S.ExponentialDecay { initial_learning_rate = 0.1, decay_steps = 10, decay_rate = 0.5 }
    near(e(10), 0.05)
    near(e(5), 0.1 * math.sqrt(0.5))
    near(S.ExponentialDecay { initial_learning_rate = 0.1, decay_steps = 10, decay_rate = 0.5, staircase = true }(15),
      0.05)
    local c = S.CosineDecay { initial_learning_rate = 1.0, decay_steps = 10 }
    near(c(0), 1)
    near(c(5), 0.5)
    near(c(20), 0)
    near(S.CosineDecay { initial_learning_rate = 1.0, decay_steps = 10, alpha = 0.1 }(10), 0.1)
    local pw = S.PiecewiseConstantDecay { boundaries = { 10, 20 }, values = { 1.0, 0.5, 0.1 } }
    near({ pw(5), pw(10), pw(11), pw(25) }, { 1, 1, 0.5, 0.1 })
    near(S.InverseTimeDecay { initial_learning_rate = 1, decay_steps = 1, decay_rate = 0.5 }(2), 0.5)
    -- an optimizer with a schedule: the rate at the current step
    local so = mg.optim.SGD { learning_rate = pw }
    local p = mg.Variable(F { 0.0 })
    for _ = 1, 11 do so:apply_gradients({ F { 1.0 } }, { p }) end
    near(p, { -(11 * 1.0) })
    near(so.learning_rate, 0.5)
    so:apply_gradients({ F { 1.0 } }, { p })
    near(p, { -11.5 })
  end)

  it("stage with mg.func without retracing when the rate changes", function()
    local opt = mg.optim.Adam { learning_rate = 0.01 }
    local p = mg.Variable(F { 1.0 })
    opt:build { p }
    local step = mg.func(function(gr) opt:apply_gradients({ gr }, { p }) end)
    step(F { 1.0 })
    opt.learning_rate = 0.001
    step(F { 1.0 })
    assert.equal(1, step:trace_count())
    assert.equal(2, opt.iterations:item())
    fails(function() mg.optim.Adam { learning_rat = 1 } end, "unknown option 'learning_rat'")
    fails(function() mg.optim.get("adamz") end, "unknown optimizer 'adamz'")
  end)
end)
