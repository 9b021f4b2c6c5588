-- The metrics of metrics_more.lua and Precision/Recall's class_id and top_k against Keras 3's
-- definitions computed here in plain Lua over two batches (state accumulates), with
-- sample_weight; reset_state; configs; names; errors; and all of them in compile{metrics=} and a
-- staged fit. (Keras itself was not installed here.) Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local h = require("tests.spec.helpers")

local KEPS = 1e-7

-- two batches of 4 samples, 3 classes: scores, one-hot labels, class indices, weights
local P = { { { 0.1, 0.6, 0.3 }, { 0.5, 0.2, 0.3 }, { 0.2, 0.2, 0.6 }, { 0.05, 0.9, 0.05 } },
  { { 0.4, 0.35, 0.25 }, { 0.3, 0.3, 0.4 }, { 0.7, 0.1, 0.2 }, { 0.2, 0.45, 0.35 } } }
local Y = { { 2, 1, 2, 2 }, { 2, 3, 1, 3 } }
local W = { { 1.0, 0.5, 2.0, 0.0 }, { 1.5, 1.0, 1.0, 0.25 } }
local function onehot(labels)
  local out = {}
  for i, l in ipairs(labels) do out[i] = { 0, 0, 0 }; out[i][l] = 1 end
  return out
end
local function f32(x) return mg.tensor(x, "float32") end
local function i64(x) return mg.tensor(x, "int64") end

-- feeds both batches; `weighted` passes W
local function feed(m, kind, weighted)
  for b = 1, 2 do
    local yt = kind == "sparse" and i64(Y[b]) or f32(onehot(Y[b]))
    m:update_state(yt, f32(P[b]), weighted and f32(W[b]) or nil)
  end
end

local function each(fn)
  for b = 1, 2 do for i = 1, 4 do fn(P[b][i], Y[b][i], W[b][i]) end end
end

local function topk_ref(k, weighted)
  local s, n = 0, 0
  each(function(p, y, w)
    local greater = 0
    for j = 1, 3 do if p[j] > p[y] then greater = greater + 1 end end
    w = weighted and w or 1
    s = s + (greater < k and 1 or 0) * w
    n = n + w
  end)
  return s / n
end

describe("top-k accuracies", function()
  it("TopKCategoricalAccuracy and SparseTopKCategoricalAccuracy count the label among the k best", function()
    for _, k in ipairs({ 1, 2, 3 }) do
      for _, weighted in ipairs({ false, true }) do
        local m = mg.metrics.TopKCategoricalAccuracy { k = k }
        feed(m, "onehot", weighted)
        h.near(m:result(), topk_ref(k, weighted), 1e-6, "top " .. k)
        local s = mg.metrics.SparseTopKCategoricalAccuracy { k = k }
        feed(s, "sparse", weighted)
        h.near(s:result(), topk_ref(k, weighted), 1e-6, "sparse top " .. k)
      end
    end
    -- Keras's default k is 5: every one of 3 classes is in the top 5
    local m = mg.metrics.SparseTopKCategoricalAccuracy()
    feed(m, "sparse")
    h.near(m:result(), 1.0, 0)
    assert.are.equal(5, m:get_config().k)
  end)
  it("from_sorted_ids reads y_pred as class ids, best first", function()
    local m = mg.metrics.SparseTopKCategoricalAccuracy { k = 2, from_sorted_ids = true }
    m:update_state(i64 { 3, 1, 2 }, i64 { { 1, 3, 2 }, { 2, 3, 1 }, { 2, 1, 3 } })
    h.near(m:result(), 2 / 3, 1e-6)
  end)
  it("labels from 0 raise, naming the metric", function()
    h.fails(function() mg.metrics.sparse_top_k_categorical_accuracy(i64 { 0 }, f32 { { 0.1, 0.9 } }, 1) end,
      "sparse_top_k_categorical_accuracy")
  end)
end)

describe("RootMeanSquaredError", function()
  it("is the root of the weighted mean squared error over both batches", function()
    local m = mg.metrics.RootMeanSquaredError()
    local s, n, sw, nw = 0, 0, 0, 0
    for b = 1, 2 do
      local yt = onehot(Y[b])
      m:update_state(f32(yt), f32(P[b]))
      for i = 1, 4 do
        for j = 1, 3 do
          local e = (P[b][i][j] - yt[i][j]) ^ 2
          s, n = s + e, n + 1
          sw, nw = sw + e * W[b][i], nw + W[b][i]
        end
      end
    end
    h.near(m:result(), math.sqrt(s / n), 1e-6)
    local mw = mg.metrics.RootMeanSquaredError()
    for b = 1, 2 do mw:update_state(f32(onehot(Y[b])), f32(P[b]), f32(W[b])) end
    h.near(mw:result(), math.sqrt(sw / nw), 1e-6)
    mw:reset_state()
    h.near(mw:result(), 0, 0)
  end)
end)

-- binary labels: column 2 of the one-hot labels against column 2 of the scores, flattened over all
local function binary_counts(th, weighted, col)
  local c = { tp = 0, fp = 0, tn = 0, fn = 0 }
  each(function(p, y, w)
    w = weighted and w or 1
    for j = 1, 3 do
      if col == nil or j == col then
        local pos, lab = p[j] > th, y == j
        local key = pos and (lab and "tp" or "fp") or (lab and "fn" or "tn")
        c[key] = c[key] + w
      end
    end
  end)
  return c
end

describe("TruePositives, FalsePositives, TrueNegatives, FalseNegatives", function()
  it("count at one threshold (a scalar) and at several (a vector), weighted", function()
    local keys = { TruePositives = "tp", FalsePositives = "fp", TrueNegatives = "tn", FalseNegatives = "fn" }
    for cls, key in pairs(keys) do
      for _, weighted in ipairs({ false, true }) do
        local m = mg.metrics[cls]()
        feed(m, "onehot", weighted)
        assert.are.equal(0, m:result().ndim)
        h.near(m:result(), binary_counts(0.5, weighted)[key], 1e-6, cls)
        local ths = { 0.0, 0.25, 0.5, 0.8 }
        local mv = mg.metrics[cls] { thresholds = ths }
        feed(mv, "onehot", weighted)
        local want = {}
        for i, th in ipairs(ths) do want[i] = binary_counts(th, weighted)[key] end
        h.near(mv:result(), want, 1e-6, cls .. " thresholds")
        assert.are.same(ths, mv:get_config().thresholds)
      end
    end
  end)
  it("bad thresholds raise", function()
    h.fails(function() mg.metrics.TruePositives { thresholds = 1.5 } end, "TruePositives", "thresholds")
    h.fails(function() mg.metrics.FalseNegatives { thresholds = { 0.2, "x" } } end, "FalseNegatives", "thresholds")
    h.fails(function() mg.metrics.TrueNegatives { threshold = 0.5 } end, "TrueNegatives", "threshold")
  end)
end)

describe("PrecisionAtRecall and RecallAtPrecision", function()
  local function ref(kind, value, n, col, weighted)
    local best = 0
    for i = 0, n - 1 do
      local th = (i == 0) and 0.0 or (i == n - 1 and 1.0 or i / (n - 1))
      local c = binary_counts(th, weighted, col)
      local rec = c.tp + c.fn > 0 and c.tp / (c.tp + c.fn) or 0
      local prec = c.tp + c.fp > 0 and c.tp / (c.tp + c.fp) or 0
      if kind == "PrecisionAtRecall" and rec >= value then best = math.max(best, prec) end
      if kind == "RecallAtPrecision" and prec >= value then best = math.max(best, rec) end
    end
    return best
  end
  it("take the best value over thresholds meeting the constraint (Keras's thresholds)", function()
    for _, kind in ipairs({ "PrecisionAtRecall", "RecallAtPrecision" }) do
      local target = kind == "PrecisionAtRecall" and "recall" or "precision"
      for _, v in ipairs({ 0.3, 0.6, 0.9, 1.0 }) do
        for _, n in ipairs({ 5, 200 }) do
          for _, weighted in ipairs({ false, true }) do
            local m = mg.metrics[kind] { [target] = v, num_thresholds = n }
            feed(m, "onehot", weighted)
            h.near(m:result(), ref(kind, v, n, nil, weighted), 1e-5, string.format("%s %g n=%d", kind, v, n))
          end
        end
        local mc = mg.metrics[kind] { [target] = v, class_id = 2, num_thresholds = 11 }
        feed(mc, "onehot")
        h.near(mc:result(), ref(kind, v, 11, 2), 1e-5, kind .. " class_id 2")
      end
    end
  end)
  it("the target is required and checked", function()
    h.fails(function() mg.metrics.PrecisionAtRecall() end, "PrecisionAtRecall", "recall is required")
    h.fails(function() mg.metrics.RecallAtPrecision { precision = 2 } end, "RecallAtPrecision", "precision")
    local c = mg.metrics.RecallAtPrecision { precision = 0.8, class_id = 1 }:get_config()
    assert.are.equal(0.8, c.precision)
    assert.are.equal(200, c.num_thresholds)
    assert.are.equal(1, mg.metrics.RecallAtPrecision(c).class_id)
  end)
end)

describe("Precision and Recall with class_id and top_k", function()
  it("match the counts of the chosen class, and of each row's top k", function()
    for _, col in ipairs({ 1, 3 }) do
      local c = binary_counts(0.5, false, col)
      local p = mg.metrics.Precision { class_id = col }
      local r = mg.metrics.Recall { class_id = col }
      feed(p, "onehot"); feed(r, "onehot")
      h.near(p:result(), c.tp / (c.tp + c.fp), 1e-6, "precision class " .. col)
      h.near(r:result(), c.tp / (c.tp + c.fn), 1e-6, "recall class " .. col)
    end
    -- top_k = 1 without thresholds: each row's argmax is its one positive
    local tp, fp, fn = 0, 0, 0
    each(function(p, y)
      local best = 1
      for j = 2, 3 do if p[j] > p[best] then best = j end end
      if best == y then tp = tp + 1 else fp = fp + 1; fn = fn + 1 end
    end)
    local p = mg.metrics.Precision { top_k = 1 }
    local r = mg.metrics.Recall { top_k = 1 }
    feed(p, "onehot"); feed(r, "onehot")
    h.near(p:result(), tp / (tp + fp), 1e-6)
    h.near(r:result(), tp / (tp + fn), 1e-6)
  end)
end)

describe("MeanIoU", function()
  local function ref(k, pairs_, ignore)
    local cm = {}
    for i = 1, k do cm[i] = {}; for j = 1, k do cm[i][j] = 0 end end
    for _, p in ipairs(pairs_) do
      if p[1] ~= ignore then cm[p[1]][p[2]] = cm[p[1]][p[2]] + (p[3] or 1) end
    end
    local s, valid = 0, 0
    for c = 1, k do
      local row, col = 0, 0
      for j = 1, k do row = row + cm[c][j]; col = col + cm[j][c] end
      local denom = row + col - cm[c][c]
      if denom > 1e-9 then valid = valid + 1 end
      s = s + cm[c][c] / (denom + KEPS)
    end
    return s / (valid + KEPS)
  end
  it("averages IoU over the classes seen, sparse and dense, weighted, ignore_class", function()
    local pairs_, wpairs = {}, {}
    each(function(p, y, w)
      local best = 1
      for j = 2, 3 do if p[j] > p[best] then best = j end end
      pairs_[#pairs_ + 1] = { y, best }
      wpairs[#wpairs + 1] = { y, best, w }
    end)
    local m = mg.metrics.MeanIoU { num_classes = 4, sparse_y_pred = false }   -- class 4 never seen
    feed(m, "sparse")
    h.near(m:result(), ref(4, pairs_), 1e-6)
    local mw = mg.metrics.MeanIoU { num_classes = 3, sparse_y_pred = false, sparse_y_true = false }
    feed(mw, "onehot", true)
    h.near(mw:result(), ref(3, wpairs), 1e-6)
    local mi = mg.metrics.MeanIoU { num_classes = 3, ignore_class = 2 }
    local t = { { 1, 2 }, { 3, 3 } }
    local pr = { { 1, 3 }, { 2, 3 } }
    mi:update_state(i64(t), i64(pr))
    h.near(mi:result(), ref(3, { { 1, 1 }, { 2, 3 }, { 3, 2 }, { 3, 3 } }, 2), 1e-6)
  end)
  it("options and labels are checked", function()
    h.fails(function() mg.metrics.MeanIoU() end, "MeanIoU", "num_classes")
    h.fails(function() mg.metrics.MeanIoU { num_classes = 2, sparse = true } end, "MeanIoU", "sparse")
    h.fails(function() mg.metrics.MeanIoU { num_classes = 2 }:update_state(i64 { 0 }, i64 { 1 }) end, "MeanIoU")
    local c = mg.metrics.MeanIoU { num_classes = 3, ignore_class = 1 }:get_config()
    assert.are.equal(3, mg.metrics.MeanIoU(c).num_classes)
    assert.are.equal(1, c.ignore_class)
  end)
end)

describe("FBetaScore and F1Score", function()
  local function ref(beta, average, threshold, weighted)
    local tp, fp, fn, sup = { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 }
    each(function(p, y, w)
      w = weighted and w or 1
      local top = math.max(p[1], p[2], p[3])
      for j = 1, 3 do
        local pred
        if threshold then pred = p[j] > threshold else pred = p[j] >= top and math.abs(p[j]) > 1e-9 end
        local lab = (j == y)
        if pred and lab then tp[j] = tp[j] + w end
        if pred and not lab then fp[j] = fp[j] + w end
        if not pred and lab then fn[j] = fn[j] + w end
        if lab then sup[j] = sup[j] + w end
      end
    end)
    local function f(t, p_, n)
      local prec = t / (t + p_ + KEPS)
      local rec = t / (t + n + KEPS)
      return prec * rec / (beta ^ 2 * prec + rec + KEPS) * (1 + beta ^ 2)
    end
    if average == "micro" then
      return f(tp[1] + tp[2] + tp[3], fp[1] + fp[2] + fp[3], fn[1] + fn[2] + fn[3])
    end
    local out = {}
    for j = 1, 3 do out[j] = f(tp[j], fp[j], fn[j]) end
    if average == "macro" then return (out[1] + out[2] + out[3]) / 3 end
    if average == "weighted" then
      local s = sup[1] + sup[2] + sup[3]
      return out[1] * sup[1] / (s + KEPS) + out[2] * sup[2] / (s + KEPS) + out[3] * sup[3] / (s + KEPS)
    end
    return out
  end
  it("per class and averaged, with and without a threshold, weighted", function()
    for _, average in ipairs({ "none", "micro", "macro", "weighted" }) do
      for _, threshold in ipairs({ false, 0.3 }) do
        for _, weighted in ipairs({ false, true }) do
          for _, beta in ipairs({ 1, 0.5, 2 }) do
            local avg = average ~= "none" and average or nil
            local m = mg.metrics.FBetaScore { average = avg, beta = beta, threshold = threshold or nil }
            feed(m, "onehot", weighted)
            h.near(m:result(), ref(beta, avg, threshold or nil, weighted), 1e-5,
              string.format("FBeta %s %s %s beta %g", average, tostring(threshold), tostring(weighted), beta))
          end
          local f1 = mg.metrics.F1Score { average = average ~= "none" and average or nil, threshold = threshold or nil }
          feed(f1, "onehot", weighted)
          h.near(f1:result(), ref(1, average ~= "none" and average or nil, threshold or nil, weighted), 1e-5, "F1")
        end
      end
    end
  end)
  it("configs and options", function()
    local c = mg.metrics.F1Score { average = "macro" }:get_config()
    assert.is_nil(c.beta)
    assert.are.equal("macro", mg.metrics.F1Score(c).average)
    h.fails(function() mg.metrics.F1Score { beta = 2 } end, "F1Score", "beta")
    h.fails(function() mg.metrics.FBetaScore { average = "samples" } end, "FBetaScore", "average")
    h.fails(function() mg.metrics.FBetaScore { beta = 0 } end, "FBetaScore", "beta")
    h.fails(function() mg.metrics.F1Score():update_state(i64 { 1, 2 }, f32 { { 0.1, 0.9 }, { 1, 0 } }) end,
      "F1Score", "same shape")
  end)
end)

describe("R2Score", function()
  local YT = { { { 1.0, 2.0 }, { 2.0, 1.0 }, { 3.0, 5.0 } }, { { 4.0, 3.0 }, { 0.5, 2.5 } } }
  local YP = { { { 1.1, 2.5 }, { 1.8, 0.5 }, { 3.3, 4.0 } }, { { 3.5, 3.5 }, { 1.0, 2.0 } } }
  local WS = { { 1.0, 2.0, 0.5 }, { 1.0, 3.0 } }
  local function ref(agg, p, weighted)
    local sum, sq, res, cnt, n = { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 }, 0
    for b = 1, 2 do
      for i = 1, #YT[b] do
        local w = weighted and WS[b][i] or 1
        for j = 1, 2 do
          local t, q = YT[b][i][j], YP[b][i][j]
          sum[j] = sum[j] + t * w; sq[j] = sq[j] + t * t * w
          res[j] = res[j] + (t - q) ^ 2 * w; cnt[j] = cnt[j] + w
          n = n + 1
        end
      end
    end
    local raw, tot = {}, {}
    for j = 1, 2 do
      tot[j] = sq[j] - sum[j] * sum[j] / cnt[j]
      raw[j] = 1 - res[j] / tot[j]
    end
    local r2
    if agg == "uniform_average" then r2 = (raw[1] + raw[2]) / 2
    elseif agg == "variance_weighted_average" then r2 = (tot[1] * raw[1] + tot[2] * raw[2]) / (tot[1] + tot[2])
    else return raw end
    if p > 0 and n - 1 > p then r2 = 1 - (1 - r2) * (n - 1) / (n - p - 1) end
    return r2
  end
  it("uniform, variance-weighted and per output, adjusted, weighted", function()
    for _, agg in ipairs({ "uniform_average", "variance_weighted_average", "none" }) do
      for _, p in ipairs({ 0, 2 }) do
        for _, weighted in ipairs({ false, true }) do
          local m = mg.metrics.R2Score { class_aggregation = agg, num_regressors = agg ~= "none" and p or 0 }
          for b = 1, 2 do m:update_state(f32(YT[b]), f32(YP[b]), weighted and f32(WS[b]) or nil) end
          h.near(m:result(), ref(agg, agg ~= "none" and p or 0, weighted), 1e-5, agg .. " p=" .. p)
        end
      end
    end
  end)
  it("needs 2-d inputs; options checked", function()
    h.fails(function() mg.metrics.R2Score():update_state(f32 { { { 1 } } }, f32 { { { 1 } } }) end, "R2Score", "2-d")
    h.fails(function() mg.metrics.R2Score { class_aggregation = "mean" } end, "R2Score", "class_aggregation")
    h.fails(function() mg.metrics.R2Score { num_regressors = -1 } end, "R2Score", "num_regressors")
  end)
end)

describe("errors", function()
  it("point at the caller's line", function()
    for _, f in ipairs({ function() mg.metrics.MeanIoU { num_classes = 2 }:update_state(i64 { 0 }, i64 { 1 }) end,
      function() mg.metrics.F1Score():update_state(i64 { 1, 2 }, f32 { { 0.1, 0.9 }, { 1, 0 } }) end,
      function() mg.metrics.R2Score():update_state(f32 { { { 1 } } }, f32 { { { 1 } } }) end,
      function() mg.metrics.TopKCategoricalAccuracy { k = 0 } end,
      function() mg.metrics.sparse_top_k_categorical_accuracy(i64 { 0 }, f32 { { 0.1, 0.9 } }, 1) end }) do
      local e = h.fails(f)
      assert(e:find("nn_kit_metrics_spec.lua:%d+:"), e)
    end
  end)
end)

describe("the new metrics in compile and fit", function()
  it("every one updates inside the staged train step; evaluate gives what a fresh metric gives", function()
    mg.random.seed(2)
    local x = mg.uniform({ 24, 4 }, -1, 1, "float32", 9)
    local labels = mg.argmax(mg.slice(x, { {}, { 1, 3 } }), -1)
    local y = mg.one_hot(labels, 3, "float32")
    local model = mg.nn.Sequential { mg.nn.Input { shape = { 4 } }, mg.nn.Dense { units = 3, activation = "softmax" } }
    local metrics = { mg.metrics.TopKCategoricalAccuracy { k = 2 }, "top_k_categorical_accuracy", "rmse",
      mg.metrics.TruePositives(), mg.metrics.FalsePositives { thresholds = { 0.3, 0.6 } }, mg.metrics.TrueNegatives(),
      mg.metrics.FalseNegatives(), mg.metrics.PrecisionAtRecall { recall = 0.5 },
      mg.metrics.RecallAtPrecision { precision = 0.5 }, mg.metrics.F1Score { average = "macro" },
      mg.metrics.FBetaScore { beta = 2, average = "micro" }, mg.metrics.R2Score(),
      mg.metrics.MeanIoU { num_classes = 3, sparse_y_true = false, sparse_y_pred = false },
      mg.metrics.Precision { class_id = 2 }, mg.metrics.Recall { top_k = 2 } }
    model:compile { optimizer = "adam", loss = "categorical_crossentropy", metrics = metrics }
    local hist = model:fit(x, y, { epochs = 2, batch_size = 8, verbose = 0 })
    for _, key in ipairs({ "top_k_categorical_accuracy", "rmse", "true_positives",
      "precision_at_recall", "recall_at_precision", "f1_score", "fbeta_score", "r2_score", "mean_io_u" }) do
      assert(hist.history[key], "no " .. key .. " in the history")
    end
    -- the epoch's logged value equals the metric recomputed eagerly over the same epoch's predictions
    -- (the weights after the last step differ, so evaluate against a fresh metric instead)
    local logs = model:evaluate(x, y, { verbose = 0, return_dict = true })
    local m = mg.metrics.F1Score { average = "macro" }
    m:update_state(y, model:predict(x, { verbose = 0 }))
    h.near(logs.f1_score, m:result(), 1e-5)
    local r = mg.metrics.R2Score()
    r:update_state(y, model:predict(x, { verbose = 0 }))
    h.near(logs.r2_score, r:result(), 1e-5)
    local iou = mg.metrics.MeanIoU { num_classes = 3, sparse_y_true = false, sparse_y_pred = false }
    iou:update_state(y, model:predict(x, { verbose = 0 }))
    h.near(logs.mean_io_u, iou:result(), 1e-5)
  end)
  it("get_config/from_config round trips for every new metric", function()
    for _, c in ipairs({ { "TopKCategoricalAccuracy", { k = 3 } }, { "SparseTopKCategoricalAccuracy", { k = 2,
      from_sorted_ids = true } }, { "RootMeanSquaredError", {} }, { "TruePositives", { thresholds = { 0.1, 0.9 } } },
      { "FalsePositives", { thresholds = 0.3 } }, { "TrueNegatives", {} }, { "FalseNegatives", {} },
      { "PrecisionAtRecall", { recall = 0.7, num_thresholds = 20, class_id = 2 } },
      { "RecallAtPrecision", { precision = 0.4 } }, { "MeanIoU", { num_classes = 5, ignore_class = 2,
        sparse_y_pred = false, axis = -1 } }, { "F1Score", { average = "weighted", threshold = 0.4 } },
      { "FBetaScore", { average = "micro", beta = 0.5 } }, { "R2Score", { class_aggregation = "none" } } }) do
      local cfg = c[2]
      cfg.name = "m_" .. c[1]
      local m = mg.metrics[c[1]](cfg)
      local conf = m:get_config()
      for k, v in pairs(cfg) do assert.are.same(v, conf[k], c[1] .. "." .. k) end
      local back = mg.metrics[c[1]](conf)
      assert.are.same(conf, back:get_config(), c[1])
      assert.are.equal("m_" .. c[1], back.name)
    end
  end)

  it("names reach the classes", function()
    for k, cls in pairs({ top_k_categorical_accuracy = "TopKCategoricalAccuracy",
      sparse_top_k_categorical_accuracy = "SparseTopKCategoricalAccuracy", rmse = "RootMeanSquaredError",
      root_mean_squared_error = "RootMeanSquaredError", true_positives = "TruePositives",
      false_negatives = "FalseNegatives", r2_score = "R2Score", RootMeanSquaredError = "RootMeanSquaredError" }) do
      assert.are.equal(cls, mg.metrics.get(k).class_name, k)
    end
  end)
end)
