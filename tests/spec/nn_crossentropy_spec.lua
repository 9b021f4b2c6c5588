-- nn_crossentropy_spec.lua — probability-input losses and metrics against
-- Keras 3: sparse categorical cross-entropy normalises each row by its sum
-- (as categorical does), in the value and in the gradient; sample weights
-- in losses (every reduction) and in metrics (Mean-based, Precision, AUC).
-- Expected values are worked out by hand here; the Keras 3.15.1 (JAX)
-- outputs for the same calls are noted beside them.
local mg = require "moongrad"
local h = require "tests.spec.nn_helpers"
local near = h.near

local L = mg.losses

-- rows that do not sum to 1; labels 1 and 3 (Keras's 0 and 2)
local function probs() return mg.tensor { { 0.2, 0.2, 0.2 }, { 0.5, 0.3, 0.1 } } end
local labels = mg.tensor { 1, 3 }
local r1, r2 = -math.log(0.2 / 0.6), -math.log(0.1 / 0.9)   -- 1.0986, 2.1972 (Keras: [1.0986123, 2.1972246])

describe("sparse categorical cross-entropy on probabilities", function()
  it("normalises each row by its sum (Keras: 1.0986 for {0.2, 0.2, 0.2})", function()
    near(L.SparseCategoricalCrossentropy()(mg.tensor { 1 }, mg.tensor { { 0.2, 0.2, 0.2 } }), -math.log(1 / 3), 1e-6)
    near(L.SparseCategoricalCrossentropy { reduction = "none" }(labels, probs()), { r1, r2 }, 1e-5)
    near(L.sparse_categorical_crossentropy(labels, probs()), { r1, r2 }, 1e-5)
    near(L.SparseCategoricalCrossentropy()(labels, probs()), (r1 + r2) / 2, 1e-5)   -- Keras 1.6479185
    -- the same numbers as the categorical loss on one-hot targets
    near(L.CategoricalCrossentropy()(mg.tensor { { 1, 0, 0 }, { 0, 0, 1 } }, probs()), (r1 + r2) / 2, 1e-5)
  end)

  it("has the gradient of -log(p_y / sum p) (Keras: [[-1, 1, 1]] for {0.5, 0.3, 0.2}, label 1)", function()
    local q = mg.tensor { { 0.5, 0.3, 0.2 } }
    local tape = mg.GradientTape()
    tape:watch(q)
    local l = L.SparseCategoricalCrossentropy()(mg.tensor { 1 }, q)
    tape:stop()
    near(tape:gradient(l, q), { { -1, 1, 1 } }, 1e-5)
    -- two rows, the mean over the batch: d/dp_j = (1/S - [j = y]/p_y) / 2
    local p = probs()
    tape = mg.GradientTape()
    tape:watch(p)
    l = L.SparseCategoricalCrossentropy()(labels, p)
    tape:stop()
    local s1, s2 = 0.6, 0.9
    near(tape:gradient(l, p), { { (1 / s1 - 1 / 0.2) / 2, 1 / s1 / 2, 1 / s1 / 2 },
      { 1 / s2 / 2, 1 / s2 / 2, (1 / s2 - 1 / 0.1) / 2 } }, 1e-4)   -- Keras [[-1.6667, .8333, .8333], [.5556, .5556, -4.4444]]
  end)

  it("gives the same value as a metric", function()
    local m = mg.metrics.SparseCategoricalCrossentropy()
    m:update_state(labels, probs())
    near(m:result(), (r1 + r2) / 2, 1e-5)
    local c = mg.metrics.CategoricalCrossentropy()
    c:update_state(mg.tensor { { 1, 0, 0 }, { 0, 0, 1 } }, probs())
    near(c:result(), (r1 + r2) / 2, 1e-5)
  end)

  it("honours from_logits and label_smoothing as metrics (they were ignored)", function()
    local logits = mg.tensor({ { 2.0, 0.0, -1.0 } }, "float32")
    local m = mg.metrics.SparseCategoricalCrossentropy { from_logits = true }
    m:update_state(mg.tensor { 1 }, logits)
    local lse = math.log(math.exp(2) + 1 + math.exp(-1))
    near(m:result(), lse - 2, 1e-5)
    local c = mg.metrics.CategoricalCrossentropy { from_logits = true, label_smoothing = 0.3 }
    c:update_state(mg.tensor { { 1, 0, 0 } }, logits)
    local t = { 0.7 + 0.1, 0.1, 0.1 }
    near(c:result(), -(t[1] * (2 - lse) + t[2] * (0 - lse) + t[3] * (-1 - lse)), 1e-5)
  end)
end)

describe("sample weights", function()
  local sw = mg.tensor { 1.0, 3.0 }
  it("weigh losses: sum(w * l) / n, or / sum(w) with mean_with_sample_weight (Keras 3.8451, 1.9226)", function()
    near(L.SparseCategoricalCrossentropy()(labels, probs(), sw), (r1 + 3 * r2) / 2, 1e-5)
    near(L.SparseCategoricalCrossentropy { reduction = "mean_with_sample_weight" }(labels, probs(), sw),
      (r1 + 3 * r2) / 4, 1e-5)
    near(L.SparseCategoricalCrossentropy { reduction = "sum" }(labels, probs(), sw), r1 + 3 * r2, 1e-5)
    near(L.SparseCategoricalCrossentropy { reduction = "none" }(labels, probs(), sw), { r1, 3 * r2 }, 1e-5)
    -- (n, 1) weights match (n,) losses; (n,) weights reach every value of (n, t) losses
    near(L.SparseCategoricalCrossentropy()(labels, probs(), mg.tensor { { 1.0 }, { 3.0 } }), (r1 + 3 * r2) / 2, 1e-5)
    local yt, yp = mg.zeros { 2, 3, 1 }, mg.reshape(mg.arange(1, 7, 1, "float32"), { 2, 3, 1 })
    near(L.MeanSquaredError()(yt, yp, sw), (1 + 4 + 9 + 3 * (16 + 25 + 36)) / 6, 1e-4)
  end)

  it("weigh metrics: Mean-based, Precision and AUC (Keras 1.9226, 0.3333, 0.5556)", function()
    local m = mg.metrics.SparseCategoricalCrossentropy()
    m:update_state(labels, probs(), sw)
    near(m:result(), (r1 + 3 * r2) / 4, 1e-5)
    local p = mg.metrics.Precision()
    p:update_state(mg.tensor { 0, 1, 1, 0 }, mg.tensor { 0.8, 0.6, 0.3, 0.2 }, mg.tensor { 2, 1, 1, 1 })
    near(p:result(), 1 / 3, 1e-6)   -- weighted true positives 1, false positives 2
    local a = mg.metrics.AUC { num_thresholds = 5 }
    a:update_state(mg.tensor { 0, 0, 1, 1 }, mg.tensor { 0.1, 0.6, 0.4, 0.8 }, mg.tensor { 1, 2, 1, 0.5 })
    near(a:result(), 0.5555556, 1e-6)
  end)

  it("AUC's result is tensor ops: it runs inside a staged function", function()
    local a = mg.metrics.AUC { num_thresholds = 3 }
    local f = mg.func(function(t, p)
      a:update_state(t, p)
      return a:result()
    end)
    near(f(mg.tensor { 0, 0, 1, 1 }, mg.tensor { 0.0, 0.5, 0.3, 0.9 }), 0.75, 1e-6)
  end)
end)
