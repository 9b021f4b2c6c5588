-- moongrad.metrics (mg.metrics): Keras's stateful metrics.
--
-- A metric keeps its running state in non-trainable Variables:
-- update_state(y_true, y_pred) only assigns to them (so it can run inside a
-- staged train step, adding graph nodes and no host round trip), result()
-- reads them, reset_state() zeroes them. Mean-based metrics (accuracy and
-- its kinds, losses as metrics) keep a total and a count; Precision/Recall
-- keep confusion counts at a threshold; AUC keeps the confusion counts at
-- num_thresholds thresholds and integrates the ROC (or PR) curve with the
-- trapezoid rule. Class indices count from 1. The top-k accuracies, RootMeanSquaredError, the
-- confusion counts, PrecisionAtRecall/RecallAtPrecision, MeanIoU, F1/FBeta and R2Score are in
-- metrics_more.lua, installed here. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local class = require("moongrad.nn.class")
local losses = require("moongrad.losses")
local options = require("moongrad.options")
local masking = require("moongrad.nn.masking")

local unpack = table.unpack or unpack

local M = {}

--- mg.metrics.Metric{name=, dtype="float32"}: the base class of metrics (Keras's).
--- metric:update_state(...) adds a batch, metric:result() reads the value,
--- metric:reset_state() starts over; metric(...) updates and returns the result.
local Metric = class.Object:extend("Metric")
class.set_noun(Metric, "metric")
M.Metric = Metric

-- Every metric takes these; classes add their own (`options` on the class).
Metric.options = { name = "string", dtype = { "string", one_of = { "float32", "float64" } } }

function Metric:__init(cfg)
  cfg = options.check(self.class_name, cfg, self.options)
  self.name = cfg.name or self.default_name or "metric"
  self.dtype = cfg.dtype or "float32"
  self._vars = {}
end

-- Inside a staged step (a metric whose state is shaped by its first batch, F1Score's, made on
-- fit's first trace) mg.zeros would be a graph value: the zeros are then built from Lua data.
local function concrete_zeros(shape, dtype)
  local function level(d)
    if d > #shape then return 0 end
    local t = {}
    for i = 1, shape[d] do t[i] = level(d + 1) end
    return t
  end
  return mg.tensor(level(1), dtype)
end

-- add_variable(shape, name): a zero-initialised state Variable.
function Metric:add_variable(shape, name, dtype)
  local init = core.tracing() and concrete_zeros(shape, dtype or self.dtype) or mg.zeros(shape, dtype or self.dtype)
  local v = mg.Variable(init, { name = self.name .. "/" .. name, trainable = false })
  self._vars[#self._vars + 1] = v
  return v
end

Metric.getters.variables = function(self) return self._vars end

--- metric:reset_state(): sets the accumulated state back to its start (fit does it each epoch).
function Metric:reset_state()
  for _, v in ipairs(self._vars) do v:assign(mg.zeros_like(v)) end
end
Metric.reset_states = Metric.reset_state

-- metric(y_true, y_pred): update, then the result (Keras's __call__).
function Metric:__call(...)
  self:update_state(...)
  return self:result()
end

--- metric:get_config() -> a table of the constructor options (name, dtype, ...).
function Metric:get_config()
  local c = { name = self.name, dtype = self.dtype }
  for k, v in pairs(self.config or {}) do if type(k) == "string" then c[k] = v end end
  return c
end

-- ---- Mean and friends ----------------------------------------------------------------

--- mg.metrics.Mean{name=, dtype="float32"}: the (weighted) mean of the values given to update_state.
--- Example:
---   local m = mg.metrics.Mean()
---   m:update_state(mg.tensor{1.0, 3.0})
---   print(m:result())   -- tensor(2., dtype=float32)
local Mean = Metric:extend("Mean")
M.Mean = Mean
Mean.default_name = "mean"

function Mean:__init(cfg)
  Metric.__init(self, cfg)
  self.total = self:add_variable({}, "total")
  self.count = self:add_variable({}, "count")
end

--- metric:update_state(values [, sample_weight])
--- Adds a batch of values (weighted by sample_weight) to the running mean.
function Mean:update_state(values, sample_weight)
  if not mg.is_tensor(values) then values = mg.tensor(values, self.dtype) end
  if values.dtype ~= self.dtype then values = mg.cast(values, self.dtype) end
  if sample_weight ~= nil then
    local w = mg.broadcast_to(losses.weights_for(values, sample_weight), values.shape)
    self.total:assign_add(mg.sum(values * w))
    self.count:assign_add(mg.sum(w))
  else
    self.total:assign_add(mg.sum(values))
    local n = values:numel()   -- while tracing with a -1 batch size, unknown: count with an op
    if core.is_unknown_size(n) then n = mg.sum(mg.ones_like(values)) end
    self.count:assign_add(n)
  end
end

--- metric:result() -> the metric's value from the state accumulated so far (a scalar tensor).
function Mean:result()
  local c = self.count
  return mg.where(mg.greater(c, 0), self.total / mg.maximum(c, 1e-30), 0.0)
end

-- Mean of fn(y_true, y_pred) per sample.
local Wrapper = Mean:extend("MeanMetricWrapper")
M.MeanMetricWrapper = Wrapper

function Wrapper:__init(fn, cfg)
  Mean.__init(self, cfg)
  self.fn = fn
end

--- metric:update_state(y_true, y_pred [, sample_weight])
--- Adds fn(y_true, y_pred) of a batch (weighted by sample_weight) to the running mean; as in
--- Keras 3's MeanMetricWrapper, the steps masked in y_pred (a layer's mask, mg.nn.get_mask)
--- weigh 0, so the mean is over the real ones.
function Wrapper:update_state(y_true, y_pred, sample_weight)
  local mask = masking.get(y_pred)
  local values = self.fn(y_true, y_pred)
  if mask then sample_weight = losses.apply_mask(sample_weight, mask, self.dtype, "sum") end
  return Mean.update_state(self, values, sample_weight)
end

-- ---- accuracy functions (per sample, 1.0 or 0.0) --------------------------------------------

local function labels_of(y_true, y_pred)
  if not mg.is_tensor(y_true) then y_true = mg.tensor(y_true) end
  if y_true.ndim == y_pred.ndim and y_true.shape[y_true.ndim] == 1 then
    y_true = mg.squeeze(y_true, { axis = -1 })
  end
  if y_true.dtype ~= "int64" then y_true = mg.cast(y_true, "int64") end
  return y_true
end

-- The labels go through one_hot, which checks their range when the graph runs: a label from 0
-- would otherwise never match argmax and give a silently low accuracy.
local sparse_accuracy

--- mg.metrics.sparse_categorical_accuracy(y_true, y_pred) -> per sample 1.0 where argmax(y_pred) is the class index y_true (counted from 1), else 0.0.
function M.sparse_categorical_accuracy(y_true, y_pred)
  return losses._naming_labels("sparse_categorical_accuracy", sparse_accuracy, y_true, y_pred)
end
function sparse_accuracy(y_true, y_pred)
  losses._check_label_kind("sparse_categorical_accuracy", y_true, y_pred, "sparse")
  local labels = labels_of(y_true, y_pred)
  local k = y_pred.shape[y_pred.ndim]
  if type(k) == "number" then
    return mg.cast(mg.sum(mg.one_hot(labels, k, "int64") * mg.one_hot(mg.argmax(y_pred, -1), k, "int64"), -1), "float32")
  end
  return mg.cast(mg.equal(mg.argmax(y_pred, -1), labels), "float32")
end

--- mg.metrics.categorical_accuracy(y_true, y_pred) -> per sample 1.0 where argmax(y_pred) == argmax(y_true) (one-hot labels), else 0.0.
function M.categorical_accuracy(y_true, y_pred)
  losses._check_label_kind("categorical_accuracy", y_true, y_pred, "one_hot")
  return mg.cast(mg.equal(mg.argmax(y_pred, -1), mg.argmax(y_true, -1)), "float32")
end

--- mg.metrics.binary_accuracy(y_true, y_pred, threshold=0.5) -> per sample 1.0 where (y_pred > threshold) equals y_true, else 0.0.
function M.binary_accuracy(y_true, y_pred, threshold)
  if not mg.is_tensor(y_true) then y_true = mg.tensor(y_true, y_pred.dtype) end
  if y_true.ndim == y_pred.ndim - 1 then y_true = mg.unsqueeze(y_true, -1) end
  local pred = mg.greater(y_pred, threshold or 0.5)
  local truth = mg.greater(y_true, 0.5)
  return mg.mean(mg.cast(mg.equal(pred, truth), "float32"), -1)
end

--- mg.metrics.accuracy(y_true, y_pred) -> per sample 1.0 where y_pred equals y_true exactly, else 0.0.
function M.accuracy(y_true, y_pred)
  if not mg.is_tensor(y_true) then y_true = mg.tensor(y_true) end
  return mg.cast(mg.equal(y_true, y_pred), "float32")
end

-- A metric class that is the mean of fn(y_true, y_pred, ...) per sample;
-- `spec` holds the rules of its own options, passed to fn after y_pred in
-- the order of `args` (BinaryAccuracy's threshold, the cross-entropies'
-- from_logits and label_smoothing).
local function wrapper_class(class_name, key, fn, spec, args, defaults)
  local cls = Wrapper:extend(class_name)
  cls.default_name = key
  cls.options = options.extend(Metric.options, spec)
  function cls:__init(cfg)
    Wrapper.__init(self, fn, cfg)
    if args and (cfg or defaults) then
      local c, extra = {}, {}
      for i, k in ipairs(args) do
        local v = cfg and cfg[k]
        if v == nil and defaults then v = defaults[k] end
        c[k] = v; extra[i] = v
      end
      self.config = c
      self.fn = function(a, b) return fn(a, b, unpack(extra, 1, #args)) end
    end
  end
  M[class_name] = cls
  return cls
end

local SMOOTHING = { "number", min = 0, max = 1 }
--- mg.metrics.Accuracy{name=}: how often y_pred equals y_true exactly (the mean of mg.metrics.accuracy).
wrapper_class("Accuracy", "accuracy", M.accuracy)
--- mg.metrics.SparseCategoricalAccuracy{name=}: how often argmax(y_pred) is the class index y_true (counted from 1).
wrapper_class("SparseCategoricalAccuracy", "sparse_categorical_accuracy", M.sparse_categorical_accuracy)
--- mg.metrics.CategoricalAccuracy{name=}: how often argmax(y_pred) equals argmax(y_true) (one-hot labels).
wrapper_class("CategoricalAccuracy", "categorical_accuracy", M.categorical_accuracy)
--- mg.metrics.BinaryAccuracy{threshold=0.5, name=}: how often (y_pred > threshold) equals y_true.
wrapper_class("BinaryAccuracy", "binary_accuracy", M.binary_accuracy, { threshold = { "number", min = 0, max = 1 } },
  { "threshold" })
--- mg.metrics.MeanSquaredError{name=}: the mean of (y_pred - y_true)^2 over the samples seen.
wrapper_class("MeanSquaredError", "mean_squared_error", losses.mean_squared_error)
--- mg.metrics.MeanAbsoluteError{name=}: the mean of |y_pred - y_true| over the samples seen.
wrapper_class("MeanAbsoluteError", "mean_absolute_error", losses.mean_absolute_error)
--- mg.metrics.SparseCategoricalCrossentropy{from_logits=false, name=}: the mean cross-entropy of class-index labels.
wrapper_class("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
  losses.sparse_categorical_crossentropy, { from_logits = "boolean" }, { "from_logits" })
--- mg.metrics.CategoricalCrossentropy{from_logits=false, label_smoothing=0, name=}: the mean cross-entropy of one-hot labels.
wrapper_class("CategoricalCrossentropy", "categorical_crossentropy", losses.categorical_crossentropy,
  { from_logits = "boolean", label_smoothing = SMOOTHING }, { "from_logits", "label_smoothing" })
--- mg.metrics.BinaryCrossentropy{from_logits=false, label_smoothing=0, name=}: the mean binary cross-entropy.
wrapper_class("BinaryCrossentropy", "binary_crossentropy", losses.binary_crossentropy,
  { from_logits = "boolean", label_smoothing = SMOOTHING }, { "from_logits", "label_smoothing" })

-- Keras 3's choice of accuracy for "accuracy" from the shapes, made at the
-- first update: binary when y_pred has one column, sparse categorical when
-- y_true has fewer axes (or one column against several), else categorical.
local function accuracy_for(y_true, y_pred)
  if not mg.is_tensor(y_true) then y_true = mg.tensor(y_true) end
  local tp, pp = y_true.shape, y_pred.shape
  if pp[#pp] == 1 then return M.binary_accuracy end
  if #tp < #pp or (tp[#tp] == 1 and pp[#pp] > 1) then return M.sparse_categorical_accuracy end
  return M.categorical_accuracy
end

local function auto_accuracy(name)
  local chosen
  local m = Wrapper(function(y_true, y_pred)
    chosen = chosen or accuracy_for(y_true, y_pred)
    return chosen(y_true, y_pred)
  end, { name = name })
  return m
end

-- ---- confusion-count metrics ---------------------------------------------------------------

-- y_true as booleans (> 0.5) and y_pred, both flattened, and the sample
-- weights broadcast to y_pred's shape and flattened (ones without them).
local function flat_pair(y_true, y_pred, sample_weight, dtype)
  if not mg.is_tensor(y_true) then y_true = mg.tensor(y_true, y_pred.dtype) end
  local p = mg.reshape(y_pred, { -1 })
  local t = mg.greater(mg.reshape(mg.cast(y_true, y_pred.dtype), { -1 }), 0.5)
  local w
  if sample_weight ~= nil then
    w = mg.reshape(mg.broadcast_to(losses.weights_for(mg.cast(y_pred, dtype), sample_weight), y_pred.shape), { -1 })
  end
  return t, p, w
end

local function util_shape(t)
  local s = {}
  for i, n in ipairs(t.shape) do s[i] = type(n) == "number" and tostring(n) or "None" end
  return "(" .. table.concat(s, ", ") .. ")"
end

local function safe_div(a, b)
  return mg.where(mg.greater(b, 0), a / mg.maximum(b, 1e-30), 0.0)
end

-- sum of the (weighted) cases where both a and b hold, over axis 1
local function count(a, b, w, dtype)
  local c = mg.cast(mg.logical_and(a, b), dtype)
  if w then c = c * w end
  return mg.sum(c, 1)
end

--- mg.metrics.Precision{thresholds=0.5, name=}: true positives / predicted positives, for binary labels and
--- probabilities (y_pred > thresholds counts as positive).
local Precision = Metric:extend("Precision")
M.Precision = Precision
Precision.default_name = "precision"
Precision.options = options.extend(Metric.options, { thresholds = { "number", min = 0, max = 1 },
  class_id = { "integer", min = 1 }, top_k = { "integer", min = 1 } })

function Precision:__init(cfg)
  Metric.__init(self, cfg)
  self.threshold = cfg and cfg.thresholds
  self.class_id = cfg and cfg.class_id
  self.top_k = cfg and cfg.top_k
  -- Keras: with top_k and no thresholds, every prediction in the top k is a positive
  if self.threshold == nil and self.top_k == nil then self.threshold = 0.5 end
  self.tp = self:add_variable({}, "true_positives")
  self.fp = self:add_variable({}, "false_positives")
  self.fn = self:add_variable({}, "false_negatives")
end

-- Multi-class outputs (Keras's rules): class indices (N,) against (N, K) scores become one-hot rows
-- (one_hot checks they count from 1); top_k keeps each row's k highest scores as the only
-- candidates; class_id (from 1) keeps that class's column. Without either, every column counts:
-- precision over all classes at the threshold.
local function class_pair(self, y_true, y_pred)
  if not mg.is_tensor(y_true) then y_true = mg.tensor(y_true) end
  local np = y_pred.ndim
  local k = np >= 2 and y_pred.shape[np] or nil
  if type(k) == "number" and k > 1 and (y_true.ndim == np - 1 or (y_true.ndim == np and y_true.shape[np] == 1)) then
    local labels = y_true.ndim == np and mg.squeeze(y_true, { axis = -1 }) or y_true
    if labels.dtype ~= "int64" then labels = mg.cast(labels, "int64") end
    y_true = mg.one_hot(labels, k, y_pred.dtype)
  end
  if type(k) == "number" and k > 1 and y_true.ndim ~= np then
    options.raise(string.format("%s: y_true %s and y_pred %s need the same shape (one column per class, or "
      .. "class indices for a multi-class y_pred)", self.class_name, util_shape(y_true), util_shape(y_pred)))
  end
  local in_top
  if self.top_k then
    -- exactly k per row, as Keras's top_k filter picks them: a score is in when fewer than k
    -- scores of its row rank before it, greater ones and equal ones in earlier columns (ties go
    -- to the lower index)
    local before = mg.greater(mg.unsqueeze(y_pred, -2), mg.unsqueeze(y_pred, -1))   -- [.., j, l]: p_l > p_j
    if type(k) == "number" then
      local earlier = {}
      for j = 1, k do
        earlier[j] = {}
        for l = 1, k do earlier[j][l] = l < j end
      end
      local ties = mg.logical_and(mg.equal(mg.unsqueeze(y_pred, -2), mg.unsqueeze(y_pred, -1)), mg.tensor(earlier, "bool"))
      before = mg.logical_or(before, ties)
    end
    in_top = mg.less(mg.sum(mg.cast(before, "int64"), -1), self.top_k)
  end
  if self.class_id then
    if type(k) ~= "number" or self.class_id > k then
      options.raise(string.format("%s: class_id %d is outside the %s classes of y_pred %s (class ids count from 1)",
        self.class_name, self.class_id, tostring(k), util_shape(y_pred)))
    end
    local spec = {}
    for d = 1, np - 1 do spec[d] = {} end
    spec[np] = self.class_id
    y_true, y_pred = mg.slice(y_true, spec), mg.slice(y_pred, spec)
    if in_top then in_top = mg.slice(in_top, spec) end
  end
  return y_true, y_pred, in_top
end

--- metric:update_state(y_true, y_pred, sample_weight): adds one batch to the metric's state.
function Precision:update_state(y_true, y_pred, sample_weight)
  local in_top
  y_true, y_pred, in_top = losses._naming_labels(self.class_name, class_pair, self, y_true, y_pred)
  local t, p, w = flat_pair(y_true, y_pred, sample_weight, self.dtype)
  local pos = self.threshold and mg.greater(p, self.threshold) or nil
  if in_top then
    in_top = mg.reshape(in_top, { -1 })
    pos = pos and mg.logical_and(pos, in_top) or in_top
  end
  self.tp:assign_add(count(pos, t, w, self.dtype))
  self.fp:assign_add(count(pos, mg.logical_not(t), w, self.dtype))
  self.fn:assign_add(count(mg.logical_not(pos), t, w, self.dtype))
end

--- precision:result() -> true positives / (true positives + false positives) so far.
function Precision:result() return safe_div(self.tp, self.tp + self.fp) end

function Precision:get_config()
  local c = Metric.get_config(self)
  c.thresholds, c.class_id, c.top_k = self.threshold, self.class_id, self.top_k
  return c
end

--- mg.metrics.Recall{thresholds=0.5, name=}: true positives / actual positives, for binary labels and probabilities.
local Recall = Precision:extend("Recall")
M.Recall = Recall
Recall.default_name = "recall"
--- recall:result() -> true positives / (true positives + false negatives) so far.
function Recall:result() return safe_div(self.tp, self.tp + self.fn) end

--- mg.metrics.AUC{num_thresholds=200, curve="ROC", name=}: the area under the ROC (or PR) curve of binary
--- labels and probabilities, from confusion counts at num_thresholds thresholds.
local AUC = Metric:extend("AUC")
M.AUC = AUC
AUC.default_name = "auc"
AUC.options = options.extend(Metric.options, { num_thresholds = { "integer", min = 2 },
  curve = { "string", one_of = { "ROC", "PR" } } })

function AUC:__init(cfg)
  Metric.__init(self, cfg)
  cfg = cfg or {}
  local n = cfg.num_thresholds or 200
  self.num_thresholds = n
  self.curve = cfg.curve or "ROC"
  -- Keras's thresholds: just below 0, evenly spaced inside, just above 1
  local th = { -1e-7 }
  for i = 1, n - 2 do th[#th + 1] = i / (n - 1) end
  th[#th + 1] = 1 + 1e-7
  self.thresholds = mg.reshape(mg.tensor(th, "float32"), { 1, n })
  self.tp = self:add_variable({ n }, "true_positives")
  self.fp = self:add_variable({ n }, "false_positives")
  self.tn = self:add_variable({ n }, "true_negatives")
  self.fn = self:add_variable({ n }, "false_negatives")
end

--- auc:update_state(y_true, y_pred, sample_weight): adds one batch to the thresholded confusion counts.
function AUC:update_state(y_true, y_pred, sample_weight)
  local t, p, w = flat_pair(y_true, y_pred, sample_weight, self.dtype)
  local pos = mg.greater(mg.unsqueeze(mg.cast(p, "float32"), 2), self.thresholds)   -- (m, n)
  local lab = mg.unsqueeze(t, 2)
  if w then w = mg.unsqueeze(w, 2) end
  local nlab, npos = mg.logical_not(lab), mg.logical_not(pos)
  self.tp:assign_add(count(pos, lab, w, self.dtype))
  self.fp:assign_add(count(pos, nlab, w, self.dtype))
  self.tn:assign_add(count(npos, nlab, w, self.dtype))
  self.fn:assign_add(count(npos, lab, w, self.dtype))
end

-- The trapezoid rule over the curve's points, with tensor ops (so it runs
-- inside a staged step too): x falls as the threshold rises.
function AUC:result()
  local tp, fp, tn, fn = self.tp, self.fp, self.tn, self.fn
  local tpr = safe_div(tp, tp + fn)
  local xs, ys
  if self.curve == "ROC" then
    xs, ys = safe_div(fp, fp + tn), tpr
  else
    local d = tp + fp
    xs, ys = tpr, mg.where(mg.greater(d, 0), tp / mg.maximum(d, 1e-30), 1.0)
  end
  local n = self.num_thresholds
  local x0, x1 = xs:slice { { 1, n - 1 } }, xs:slice { { 2, n } }
  local y0, y1 = ys:slice { { 1, n - 1 } }, ys:slice { { 2, n } }
  return mg.sum((x0 - x1) * (y0 + y1) * 0.5)
end

function AUC:get_config()
  local c = Metric.get_config(self)
  c.num_thresholds, c.curve = self.num_thresholds, self.curve
  return c
end

-- TopK accuracies, RootMeanSquaredError, the confusion counts, PrecisionAtRecall,
-- RecallAtPrecision, MeanIoU, F1Score/FBetaScore, R2Score (and their names for get)
local more_names = require("moongrad.metrics_more")(M, { Metric = Metric, Mean = Mean,
  wrapper_class = wrapper_class, flat_pair = flat_pair, safe_div = safe_div, count = count,
  class_pair = class_pair })

-- ---- lookup --------------------------------------------------------------------------------

local names = {
  accuracy = "Accuracy", acc = "Accuracy",
  sparse_categorical_accuracy = "SparseCategoricalAccuracy", categorical_accuracy = "CategoricalAccuracy",
  binary_accuracy = "BinaryAccuracy", mse = "MeanSquaredError", mean_squared_error = "MeanSquaredError",
  mae = "MeanAbsoluteError", mean_absolute_error = "MeanAbsoluteError", precision = "Precision",
  recall = "Recall", auc = "AUC", AUC = "AUC", mean = "Mean",
  sparse_categorical_crossentropy = "SparseCategoricalCrossentropy",
  categorical_crossentropy = "CategoricalCrossentropy", binary_crossentropy = "BinaryCrossentropy",
}
for k, v in pairs(more_names) do names[k] = v end

-- get(id, loss): a metric from a name, a Metric, or a function (y_true,
-- y_pred) -> per-sample values. "accuracy" picks the kind matching the loss
-- (sparse categorical, categorical or binary), as Keras does.
function M.get(id, loss)
  if class.isinstance(id, Metric) then return id end
  if type(id) == "function" then return Wrapper(id, { name = "metric" }) end
  if type(id) ~= "string" then error("a metric must be a name, a Metric or a function, got " .. type(id), 3) end
  local cls_name = names[id] or (M[id] and id)
  if not cls_name or type(M[cls_name]) ~= "table" then
    local list = {}
    for k in pairs(names) do list[#list + 1] = k end
    table.sort(list)
    error(string.format("unknown metric '%s' (one of: %s)", id, table.concat(list, ", ")), 3)
  end
  if cls_name == "Accuracy" and (id == "accuracy" or id == "acc") then
    local kind = losses.kind(loss)
    if kind == "sparse_categorical_crossentropy" then cls_name = "SparseCategoricalAccuracy"
    elseif kind == "categorical_crossentropy" then cls_name = "CategoricalAccuracy"
    elseif kind == "binary_crossentropy" then cls_name = "BinaryAccuracy"
    else return auto_accuracy(id) end
  end
  return M[cls_name]({ name = id })
end

return M
