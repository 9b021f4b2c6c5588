-- moongrad.metrics_more: the rest of Keras 3's everyday metrics, installed into mg.metrics by
-- metrics.lua: TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, RootMeanSquaredError,
-- TruePositives/FalsePositives/TrueNegatives/FalseNegatives, PrecisionAtRecall,
-- RecallAtPrecision, MeanIoU, FBetaScore, F1Score and R2Score.
--
-- They keep state as the others do: non-trainable Variables that update_state only assigns to
-- (so they run inside fit's staged step) and result() reads with tensor ops. The state whose
-- shape depends on the data (F1's per-class counts, R2's per-output sums) is made at the first
-- update, as Keras builds it; fit's first trace may make Variables. Formulas, epsilons and
-- defaults are Keras 3's (keras/src/metrics/*.py); class indices count from 1 here.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local losses = require("moongrad.losses")
local options = require("moongrad.options")

local KEPS = 1e-7   -- Keras's backend.epsilon()

local function shape_text(t)
  local s = {}
  for i, n in ipairs(t.shape) do s[i] = type(n) == "number" and tostring(n) or "None" end
  return "(" .. table.concat(s, ", ") .. ")"
end

local function as_float(x, dtype)
  if not mg.is_tensor(x) then return mg.tensor(x, dtype) end
  if x.dtype ~= dtype then return mg.cast(x, dtype) end
  return x
end

return function(M, h)
  local Metric, Mean, wrapper_class = h.Metric, h.Mean, h.wrapper_class
  local flat_pair, safe_div, count, class_pair = h.flat_pair, h.safe_div, h.count, h.class_pair

  -- ---- top-k accuracies ----------------------------------------------------------------------

  -- 1.0 where the score of the true class is among the k highest of its row: fewer than k
  -- scores are strictly greater (TF's in_top_k: ties at the boundary count as in).
  local function in_top_k(target_score, y_pred, k)
    local greater = mg.sum(mg.cast(mg.greater(y_pred, mg.unsqueeze(target_score, -1)), "int64"), -1)
    return mg.cast(mg.less(greater, k), "float32")
  end

  --- mg.metrics.top_k_categorical_accuracy(y_true, y_pred, k=5) -> per sample 1.0 where the one-hot label's class is among the k highest scores.
  function M.top_k_categorical_accuracy(y_true, y_pred, k)
    k = options.value("top_k_categorical_accuracy", "k", k, { "integer", min = 1 }) or 5
    losses._check_label_kind("categorical_accuracy", y_true, y_pred, "one_hot")
    y_true = as_float(y_true, y_pred.dtype)
    local kk = y_pred.shape[y_pred.ndim]
    local target = mg.sum(mg.one_hot(mg.argmax(y_true, -1), kk, y_pred.dtype) * y_pred, -1)
    return in_top_k(target, y_pred, k)
  end

  --- mg.metrics.sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=false) -> per sample 1.0 where the class index y_true (from 1) is among the k highest scores (from_sorted_ids: y_pred already holds class ids, best first).
  function M.sparse_top_k_categorical_accuracy(y_true, y_pred, k, from_sorted_ids)
    k = options.value("sparse_top_k_categorical_accuracy", "k", k, { "integer", min = 1 }) or 5
    if not mg.is_tensor(y_true) then y_true = mg.tensor(y_true, "int64") end
    if y_true.ndim == y_pred.ndim and y_true.shape[y_true.ndim] == 1 then y_true = mg.squeeze(y_true, { axis = -1 }) end
    if y_true.dtype ~= "int64" then y_true = mg.cast(y_true, "int64") end
    if from_sorted_ids then
      local n = math.min(k, y_pred.shape[y_pred.ndim])
      local spec = {}
      for d = 1, y_pred.ndim - 1 do spec[d] = {} end
      spec[y_pred.ndim] = { 1, n }
      local ids = mg.slice(y_pred, spec)
      if ids.dtype ~= "int64" then ids = mg.cast(ids, "int64") end
      return mg.cast(mg.any(mg.equal(ids, mg.unsqueeze(y_true, -1)), -1), "float32")
    end
    return losses._naming_labels("sparse_top_k_categorical_accuracy", function()
      local kk = y_pred.shape[y_pred.ndim]
      local target = mg.sum(mg.one_hot(y_true, kk, y_pred.dtype) * y_pred, -1)   -- checks 1 <= label <= K
      return in_top_k(target, y_pred, k)
    end)
  end

  --- mg.metrics.TopKCategoricalAccuracy{k=5, name=}: how often the one-hot label's class is among the k highest scores.
  wrapper_class("TopKCategoricalAccuracy", "top_k_categorical_accuracy", M.top_k_categorical_accuracy,
    { k = { "integer", min = 1 } }, { "k" }, { k = 5 })
  --- mg.metrics.SparseTopKCategoricalAccuracy{k=5, from_sorted_ids=false, name=}: how often the class index y_true (from 1) is among the k highest scores.
  --- Example:
  ---   local m = mg.metrics.SparseTopKCategoricalAccuracy{k = 2}
  ---   m:update_state(mg.tensor({3, 1}, "int64"), mg.tensor{{0.1, 0.5, 0.4}, {0.2, 0.3, 0.5}})
  ---   print(m:result())   -- tensor(0.5, dtype=float32)
  wrapper_class("SparseTopKCategoricalAccuracy", "sparse_top_k_categorical_accuracy",
    M.sparse_top_k_categorical_accuracy, { k = { "integer", min = 1 }, from_sorted_ids = "boolean" },
    { "k", "from_sorted_ids" }, { k = 5, from_sorted_ids = false })

  -- ---- RootMeanSquaredError --------------------------------------------------------------------

  --- mg.metrics.RootMeanSquaredError{name=}: sqrt of the (weighted) mean of (y_pred - y_true)^2 over every value seen.
  local RMSE = Mean:extend("RootMeanSquaredError")
  M.RootMeanSquaredError = RMSE
  RMSE.default_name = "root_mean_squared_error"
  --- rmse:update_state(y_true, y_pred, sample_weight): adds the squared errors of a batch.
  function RMSE:update_state(y_true, y_pred, sample_weight)
    y_true = as_float(y_true, y_pred.dtype)
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[y_pred.ndim] == 1 then y_true = mg.unsqueeze(y_true, -1) end
    if y_pred.ndim == y_true.ndim - 1 and y_true.shape[y_true.ndim] == 1 then y_pred = mg.unsqueeze(y_pred, -1) end
    return Mean.update_state(self, mg.square(y_pred - y_true), sample_weight)
  end
  --- rmse:result() -> the root of the mean squared error so far.
  function RMSE:result() return mg.sqrt(Mean.result(self)) end

  -- ---- confusion counts at thresholds ------------------------------------------------------------

  local THRESHOLDS = { "number|table", check = function(v)
    local list = type(v) == "table" and v or { v }
    if #list == 0 then return "must be a number in [0, 1] or a list of them, got an empty list" end
    for i, x in ipairs(list) do
      if type(x) ~= "number" or x ~= x or x < 0 or x > 1 then
        return string.format("must hold numbers in [0, 1], got %s at %d", options.show(x), i)
      end
    end
  end }

  -- A single count (TruePositives ...) at one threshold (a scalar result) or several (a vector).
  local function confusion_class(class_name, key, which)
    local cls = Metric:extend(class_name)
    M[class_name] = cls
    cls.default_name = key
    cls.options = options.extend(Metric.options, { thresholds = THRESHOLDS })
    function cls:__init(cfg)
      Metric.__init(self, cfg)
      local th = cfg and cfg.thresholds or 0.5
      self.thresholds = th
      local list = type(th) == "table" and th or { th }
      self._th = mg.reshape(mg.tensor(list, "float32"), { 1, #list })
      self.accumulator = self:add_variable({ #list }, "accumulator")
    end
    --- metric:update_state(y_true, y_pred, sample_weight): adds one batch's counts at each threshold.
    function cls:update_state(y_true, y_pred, sample_weight)
      local t, p, w = flat_pair(y_true, y_pred, sample_weight, self.dtype)
      local pos = mg.greater(mg.unsqueeze(mg.cast(p, "float32"), 2), self._th)   -- (m, n)
      local lab = mg.unsqueeze(t, 2)
      if w then w = mg.unsqueeze(w, 2) end
      local a = (which == "tp" or which == "fp") and pos or mg.logical_not(pos)
      local b = (which == "tp" or which == "fn") and lab or mg.logical_not(lab)
      self.accumulator:assign_add(count(a, b, w, self.dtype))
    end
    --- metric:result() -> the count so far (a vector when thresholds is a list).
    function cls:result()
      if type(self.thresholds) == "table" then return self.accumulator * 1 end
      return mg.reshape(self.accumulator, {})
    end
    function cls:get_config()
      local c = Metric.get_config(self)
      c.thresholds = self.thresholds
      return c
    end
    return cls
  end
  --- mg.metrics.TruePositives{thresholds=0.5, name=}: the (weighted) count of positives predicted above the threshold(s).
  confusion_class("TruePositives", "true_positives", "tp")
  --- mg.metrics.FalsePositives{thresholds=0.5, name=}: the (weighted) count of negatives predicted above the threshold(s).
  confusion_class("FalsePositives", "false_positives", "fp")
  --- mg.metrics.TrueNegatives{thresholds=0.5, name=}: the (weighted) count of negatives predicted at or below the threshold(s).
  confusion_class("TrueNegatives", "true_negatives", "tn")
  --- mg.metrics.FalseNegatives{thresholds=0.5, name=}: the (weighted) count of positives predicted at or below the threshold(s).
  confusion_class("FalseNegatives", "false_negatives", "fn")

  -- ---- PrecisionAtRecall, RecallAtPrecision -------------------------------------------------------

  -- Keras's SensitivitySpecificityBase: confusion counts at num_thresholds thresholds (0, evenly
  -- spaced, 1); the result is the best `dependent` over the thresholds whose `constrained`
  -- reaches the target value (0 when none does).
  local function at_class(class_name, key, target, constrained)
    local cls = Metric:extend(class_name)
    M[class_name] = cls
    cls.default_name = key
    cls.options = options.extend(Metric.options, { [target] = { "number", min = 0, max = 1 },
      num_thresholds = { "integer", min = 1 }, class_id = { "integer", min = 1 } })
    function cls:__init(cfg)
      Metric.__init(self, cfg)
      cfg = cfg or {}
      if cfg[target] == nil then options.raise(class_name .. ": " .. target .. " is required (a number in [0, 1])") end
      self.value = cfg[target]
      self.target = target
      self.num_thresholds = cfg.num_thresholds or 200
      self.class_id = cfg.class_id
      local n = self.num_thresholds
      local th
      if n == 1 then th = { 0.5 } else
        th = { 0.0 }
        for i = 1, n - 2 do th[#th + 1] = i / (n - 1) end
        th[#th + 1] = 1.0
      end
      self._th = mg.reshape(mg.tensor(th, "float32"), { 1, n })
      self.tp = self:add_variable({ n }, "true_positives")
      self.fp = self:add_variable({ n }, "false_positives")
      self.tn = self:add_variable({ n }, "true_negatives")
      self.fn = self:add_variable({ n }, "false_negatives")
    end
    --- metric:update_state(y_true, y_pred, sample_weight): adds one batch to the thresholded counts.
    function cls:update_state(y_true, y_pred, sample_weight)
      if self.class_id then
        y_true, y_pred = losses._naming_labels(self.class_name, class_pair, self, y_true, y_pred)
      end
      local t, p, w = flat_pair(y_true, y_pred, sample_weight, self.dtype)
      local pos = mg.greater(mg.unsqueeze(mg.cast(p, "float32"), 2), self._th)
      local lab = mg.unsqueeze(t, 2)
      if w then w = mg.unsqueeze(w, 2) end
      local nlab, npos = mg.logical_not(lab), mg.logical_not(pos)
      self.tp:assign_add(count(pos, lab, w, self.dtype))
      self.fp:assign_add(count(pos, nlab, w, self.dtype))
      self.tn:assign_add(count(npos, nlab, w, self.dtype))
      self.fn:assign_add(count(npos, lab, w, self.dtype))
    end
    --- metric:result() -> the best value of the other quantity among the thresholds that reach the target.
    function cls:result()
      local recalls = safe_div(self.tp, self.tp + self.fn)
      local precisions = safe_div(self.tp, self.tp + self.fp)
      local c, d = recalls, precisions
      if constrained == "precision" then c, d = precisions, recalls end
      return mg.max(mg.where(mg.greater_equal(c, self.value), d, 0.0))
    end
    function cls:get_config()
      local c = Metric.get_config(self)
      c[target], c.num_thresholds, c.class_id = self.value, self.num_thresholds, self.class_id
      return c
    end
    return cls
  end
  --- mg.metrics.PrecisionAtRecall{recall, num_thresholds=200, class_id=nil, name=}: the best precision at a threshold whose recall is >= recall.
  at_class("PrecisionAtRecall", "precision_at_recall", "recall", "recall")
  --- mg.metrics.RecallAtPrecision{precision, num_thresholds=200, class_id=nil, name=}: the best recall at a threshold whose precision is >= precision.
  at_class("RecallAtPrecision", "recall_at_precision", "precision", "precision")

  -- ---- MeanIoU --------------------------------------------------------------------------------------

  --- mg.metrics.MeanIoU{num_classes, ignore_class=nil, sparse_y_true=true, sparse_y_pred=true, axis=-1, name=}
  --- The mean over classes of intersection over union (TP / (TP + FP + FN)), from a confusion
  --- matrix of class indices (from 1) accumulated over batches; classes never seen are left out of
  --- the mean. sparse_y_pred=false takes scores and uses their argmax along axis.
  local MeanIoU = Metric:extend("MeanIoU")
  M.MeanIoU = MeanIoU
  MeanIoU.default_name = "mean_io_u"
  MeanIoU.options = options.extend(Metric.options, { num_classes = { "integer", min = 1 },
    ignore_class = "integer", sparse_y_true = "boolean", sparse_y_pred = "boolean", axis = "integer" })
  function MeanIoU:__init(cfg)
    Metric.__init(self, cfg)
    cfg = cfg or {}
    if not cfg.num_classes then options.raise("MeanIoU: num_classes is required") end
    self.num_classes = cfg.num_classes
    self.ignore_class = cfg.ignore_class
    self.sparse_y_true = cfg.sparse_y_true ~= false
    self.sparse_y_pred = cfg.sparse_y_pred ~= false
    self.axis = cfg.axis or -1
    self.total_cm = self:add_variable({ cfg.num_classes, cfg.num_classes }, "total_confusion_matrix")
  end
  local function mean_iou_update(self, y_true, y_pred, sample_weight)
    if not mg.is_tensor(y_true) then y_true = mg.tensor(y_true, "int64") end
    if not self.sparse_y_true then y_true = mg.argmax(y_true, self.axis) end
    if not self.sparse_y_pred then y_pred = mg.argmax(y_pred, self.axis) end
    local t = mg.reshape(y_true.dtype == "int64" and y_true or mg.cast(y_true, "int64"), { -1 })
    local p = mg.reshape(y_pred.dtype == "int64" and y_pred or mg.cast(y_pred, "int64"), { -1 })
    local w
    if sample_weight ~= nil then
      w = mg.reshape(as_float(sample_weight, self.dtype), { -1 })
      w = mg.broadcast_to(w, t.shape)
    else
      w = mg.ones_like(mg.cast(t, self.dtype))
    end
    if self.ignore_class then
      -- ignored entries weigh nothing (their classes read as 1, a valid index)
      local valid = mg.not_equal(t, self.ignore_class)
      w = w * mg.cast(valid, self.dtype)
      t, p = mg.where(valid, t, 1), mg.where(valid, p, 1)
    end
    local k = self.num_classes
    local cm = mg.matmul(mg.transpose(mg.one_hot(t, k, self.dtype)), mg.one_hot(p, k, self.dtype) * mg.unsqueeze(w, -1))
    self.total_cm:assign_add(cm)
  end
  --- metric:update_state(y_true, y_pred, sample_weight): adds one batch to the confusion matrix.
  function MeanIoU:update_state(y_true, y_pred, sample_weight)
    return losses._naming_labels("MeanIoU", mean_iou_update, self, y_true, y_pred, sample_weight)
  end
  --- metric:result() -> the mean IoU of the classes seen so far.
  function MeanIoU:result()
    local cm = self.total_cm
    local rows, cols = mg.sum(cm, 1), mg.sum(cm, 2)
    local tp = mg.sum(cm * mg.eye(self.num_classes, self.num_classes, self.dtype), 2)
    local denom = rows + cols - tp
    local valid = mg.sum(mg.cast(mg.greater(denom, 1e-9), self.dtype))
    return mg.sum(tp / (denom + KEPS)) / (valid + KEPS)
  end
  function MeanIoU:get_config()
    local c = Metric.get_config(self)
    c.num_classes, c.ignore_class, c.axis = self.num_classes, self.ignore_class, self.axis
    c.sparse_y_true, c.sparse_y_pred = self.sparse_y_true, self.sparse_y_pred
    return c
  end

  -- ---- FBetaScore, F1Score --------------------------------------------------------------------------

  --- mg.metrics.FBetaScore{average=nil, beta=1, threshold=nil, name=}
  --- The F-beta score of multi-label (or one-hot) y_true (batch, classes) and scores y_pred: per
  --- class (average=nil) or averaged "micro" (over all counts), "macro" (mean over classes) or
  --- "weighted" (by each class's support). threshold=nil takes each row's highest score as its prediction.
  local FBeta = Metric:extend("FBetaScore")
  M.FBetaScore = FBeta
  FBeta.default_name = "fbeta_score"
  FBeta.options = options.extend(Metric.options, {
    average = { "string", one_of = { "micro", "macro", "weighted" } },
    beta = { "number", above = 0 }, threshold = { "number", above = 0, max = 1 } })
  function FBeta:__init(cfg)
    Metric.__init(self, cfg)
    cfg = cfg or {}
    self.average, self.beta, self.threshold = cfg.average, cfg.beta or 1.0, cfg.threshold
  end
  function FBeta:_build(y_pred)
    local k = y_pred.shape[y_pred.ndim]
    if y_pred.ndim ~= 2 or type(k) ~= "number" then
      options.raise(string.format("%s: y_pred must be (batch, classes) with a known number of classes, got %s",
        self.class_name, shape_text(y_pred)))
    end
    local shape = self.average == "micro" and {} or { k }
    self.true_positives = self:add_variable(shape, "true_positives")
    self.false_positives = self:add_variable(shape, "false_positives")
    self.false_negatives = self:add_variable(shape, "false_negatives")
    self.intermediate_weights = self:add_variable(shape, "intermediate_weights")
  end
  --- metric:update_state(y_true, y_pred, sample_weight): adds one batch's per-class counts.
  function FBeta:update_state(y_true, y_pred, sample_weight)
    y_pred = as_float(y_pred, self.dtype)
    y_true = as_float(y_true, self.dtype)
    if y_true.ndim ~= y_pred.ndim then
      options.raise(string.format("%s: y_true %s and y_pred %s need the same shape (one column per class)",
        self.class_name, shape_text(y_true), shape_text(y_pred)))
    end
    if not self.true_positives then self:_build(y_pred) end
    local pred
    if self.threshold == nil then
      local top = mg.max(y_pred, { axis = -1, keepdims = true })
      pred = mg.logical_and(mg.greater_equal(y_pred, top), mg.greater(mg.abs(y_pred), 1e-9))
    else
      pred = mg.greater(y_pred, self.threshold)
    end
    pred = mg.cast(pred, self.dtype)
    local w = sample_weight ~= nil and mg.unsqueeze(as_float(sample_weight, self.dtype), -1) or nil
    local micro = self.average == "micro"
    local function wsum(v)
      if w then v = v * w end
      return micro and mg.sum(v) or mg.sum(v, 1)
    end
    self.true_positives:assign_add(wsum(pred * y_true))
    self.false_positives:assign_add(wsum(pred * (1 - y_true)))
    self.false_negatives:assign_add(wsum((1 - pred) * y_true))
    self.intermediate_weights:assign_add(wsum(y_true))
  end
  --- metric:result() -> the score (per class without average).
  function FBeta:result()
    if not self.true_positives then return mg.tensor(0.0, self.dtype) end
    local tp = self.true_positives
    local precision = tp / (tp + self.false_positives + KEPS)
    local recall = tp / (tp + self.false_negatives + KEPS)
    local b2 = self.beta * self.beta
    local f = precision * recall / (precision * b2 + recall + KEPS) * (1 + b2)
    if self.average == "weighted" then
      local iw = self.intermediate_weights
      return mg.sum(f * (iw / (mg.sum(iw) + KEPS)))
    elseif self.average ~= nil then
      return mg.mean(f)
    end
    return f
  end
  function FBeta:get_config()
    local c = Metric.get_config(self)
    c.average, c.beta, c.threshold = self.average, self.beta, self.threshold
    return c
  end

  --- mg.metrics.F1Score{average=nil, threshold=nil, name=}: FBetaScore with beta = 1, the harmonic mean of precision and recall.
  --- Example:
  ---   local f1 = mg.metrics.F1Score{average = "macro"}
  ---   f1:update_state(mg.tensor{{1, 0}, {0, 1}}, mg.tensor{{0.9, 0.1}, {0.6, 0.4}})
  local F1 = FBeta:extend("F1Score")
  M.F1Score = F1
  F1.default_name = "f1_score"
  F1.options = options.extend(Metric.options, {
    average = { "string", one_of = { "micro", "macro", "weighted" } }, threshold = { "number", above = 0, max = 1 } })
  function F1:get_config()
    local c = FBeta.get_config(self)
    c.beta = nil
    return c
  end

  -- ---- R2Score --------------------------------------------------------------------------------------

  --- mg.metrics.R2Score{class_aggregation="uniform_average", num_regressors=0, name=}
  --- The coefficient of determination 1 - SS_res / SS_tot of (batch, outputs) targets: averaged
  --- over the outputs ("uniform_average"), weighted by each output's variance
  --- ("variance_weighted_average") or one per output ("none", Keras's None); num_regressors > 0
  --- gives the adjusted R^2.
  local R2 = Metric:extend("R2Score")
  M.R2Score = R2
  R2.default_name = "r2_score"
  R2.options = options.extend(Metric.options, {
    class_aggregation = { "string", one_of = { "uniform_average", "variance_weighted_average", "none" } },
    num_regressors = { "integer", min = 0 } })
  function R2:__init(cfg)
    Metric.__init(self, cfg)
    cfg = cfg or {}
    self.class_aggregation = cfg.class_aggregation or "uniform_average"
    self.num_regressors = cfg.num_regressors or 0
    self.num_samples = self:add_variable({}, "num_samples")
  end
  --- metric:update_state(y_true, y_pred, sample_weight): adds one batch's sums.
  function R2:update_state(y_true, y_pred, sample_weight)
    y_pred = as_float(y_pred, self.dtype)
    y_true = as_float(y_true, self.dtype)
    if y_true.ndim == 1 and y_pred.ndim == 2 and y_pred.shape[2] == 1 then y_true = mg.unsqueeze(y_true, -1) end
    if y_true.ndim ~= 2 or y_pred.ndim ~= 2 then
      options.raise(string.format("R2Score: expects 2-d inputs (batch, outputs), got y_true %s and y_pred %s",
        shape_text(y_true), shape_text(y_pred)))
    end
    if not self.sum then
      local k = y_pred.shape[2]
      self.squared_sum = self:add_variable({ k }, "squared_sum")
      self.sum = self:add_variable({ k }, "sum")
      self.total_mse = self:add_variable({ k }, "residual")
      self.count = self:add_variable({ k }, "count")
    end
    local w = sample_weight ~= nil and as_float(sample_weight, self.dtype) or mg.ones_like(y_true)
    if w.ndim == 1 then w = mg.unsqueeze(w, -1) end
    w = mg.broadcast_to(w, y_true.shape)
    local wt = y_true * w
    self.sum:assign_add(mg.sum(wt, 1))
    self.squared_sum:assign_add(mg.sum(y_true * wt, 1))
    self.total_mse:assign_add(mg.sum(mg.square(y_true - y_pred) * w, 1))
    self.count:assign_add(mg.sum(w, 1))
    -- Keras counts every value here, not rows (its adjusted R^2 uses this n)
    local n = y_true:numel()
    if core.is_unknown_size(n) then n = mg.sum(mg.ones_like(y_true)) end
    self.num_samples:assign_add(n)
  end
  --- metric:result() -> R^2 (per output with class_aggregation="none").
  function R2:result()
    if not self.sum then return mg.tensor(0.0, self.dtype) end
    local mean = self.sum / self.count
    local total = self.squared_sum - self.sum * mean
    local raw = 1 - self.total_mse / total
    raw = mg.where(mg.isinf(raw), 0.0, raw)
    local r2
    if self.class_aggregation == "uniform_average" then r2 = mg.mean(raw)
    elseif self.class_aggregation == "variance_weighted_average" then r2 = mg.sum(total * raw) / mg.sum(total)
    else r2 = raw end
    if self.num_regressors ~= 0 then
      -- adjusted: 1 - (1 - r2)(n - 1)/(n - p - 1), left as it is where n - 1 <= p (Keras warns there)
      local n, p = self.num_samples, self.num_regressors
      local adj = 1 - (1 - r2) * (n - 1) / mg.maximum(n - p - 1, 1e-30)
      r2 = mg.where(mg.greater(n - 1, p), adj, r2)
    end
    return r2
  end
  function R2:get_config()
    local c = Metric.get_config(self)
    c.class_aggregation, c.num_regressors = self.class_aggregation, self.num_regressors
    return c
  end

  return {
    top_k_categorical_accuracy = "TopKCategoricalAccuracy",
    sparse_top_k_categorical_accuracy = "SparseTopKCategoricalAccuracy",
    root_mean_squared_error = "RootMeanSquaredError", rmse = "RootMeanSquaredError",
    true_positives = "TruePositives", false_positives = "FalsePositives", true_negatives = "TrueNegatives",
    false_negatives = "FalseNegatives", mean_io_u = "MeanIoU", f1_score = "F1Score", fbeta_score = "FBetaScore",
    r2_score = "R2Score",
  }
end
