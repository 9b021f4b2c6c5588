-- moongrad.losses (mg.losses): Keras's losses as functions giving one value
-- per sample (the last axis reduced) and as Loss objects that also reduce
-- over the batch (reduction "sum_over_batch_size" = mean, "sum", "none").
-- The rest of Keras 3's (KLDivergence, Poisson, LogCosh, the hinges, CosineSimilarity,
-- MSLE, MAPE, the focal cross-entropies, CTC) are in losses_more.lua, installed here.
--
-- Cross-entropies are computed stably: from_logits uses the engine's fused
-- softmax_cross_entropy_with_logits / sparse_softmax_cross_entropy_with_logits
-- and log1p(exp(-|x|)) for sigmoids; given probabilities that a softmax or
-- sigmoid activation produced (nn.activations remembers their logits, like
-- TF Keras), the logits are used too; other probabilities are clipped to
-- [eps, 1 - eps] before the log. Sparse labels are class indices from 1.
-- A Loss object honours the mask a layer attached to y_pred (masking.lua)
-- as Keras 3 does: the masked values weigh 0, and a mean divides by the
-- number of real values (apply_mask); the plain functions ignore masks.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local class = require("moongrad.nn.class")
local activations = require("moongrad.nn.activations")
local options = require("moongrad.options")
local masking = require("moongrad.nn.masking")

local M = {}
local EPS = 1e-7

-- ---- shape alignment --------------------------------------------------------------

local function is_float(t) return t.dtype == "float32" or t.dtype == "float64" end

local shape_text

-- y_true as y_pred's dtype and rank: (N,) against (N, 1) gains the axis. Sizes that differ and
-- are not 1 raise here, naming the loss (fname), rather than inside its subtraction.
local function align(y_true, y_pred, fname)
  if not mg.is_tensor(y_true) then y_true = mg.tensor(y_true, y_pred.dtype) end
  if y_true.dtype ~= y_pred.dtype then y_true = mg.cast(y_true, y_pred.dtype) end
  local nt, np = y_true.ndim, y_pred.ndim
  if nt == np - 1 and y_pred.shape[np] == 1 then
    y_true = mg.unsqueeze(y_true, -1)
  elseif nt == np + 1 and y_true.shape[nt] == 1 then
    y_true = mg.squeeze(y_true, { axis = -1 })
  end
  local ts, ps = y_true.shape, y_pred.shape
  for d = 1, math.min(#ts, #ps) do
    local a, b = ts[#ts - d + 1], ps[#ps - d + 1]
    if type(a) == "number" and type(b) == "number" and a ~= b and a ~= 1 and b ~= 1 then
      options.raise(string.format("%s: y_true %s and y_pred %s do not match (the model gives %d values where the "
        .. "labels have %d)", fname or "loss", shape_text(y_true), shape_text(y_pred), b, a))
    end
  end
  return y_true
end

-- Integer labels of shape y_pred.shape minus the class axis.
local function sparse_labels(y_true, y_pred)
  if not mg.is_tensor(y_true) then y_true = mg.tensor(y_true) end
  if y_true.ndim == y_pred.ndim and y_true.shape[y_true.ndim] == 1 then
    y_true = mg.squeeze(y_true, { axis = -1 })
  end
  if y_true.dtype ~= "int64" and y_true.dtype ~= "int32" then y_true = mg.cast(y_true, "int64") end
  return y_true
end

-- The wrong cross-entropy for the labels: integer class indices given to a one-hot loss
-- broadcast against y_pred into a number that means nothing, and one-hot rows given to a sparse
-- loss fail inside an internal op. Shapes are known while tracing, so the check costs nothing
-- when the graph runs. `want` is "one_hot" or "sparse"; fname is the user's loss or metric.
function shape_text(t)
  local s = {}
  for i, n in ipairs(t.shape) do s[i] = type(n) == "number" and tostring(n) or "None" end
  return "(" .. table.concat(s, ", ") .. ")"
end
local SPARSE_OF = { categorical_crossentropy = "sparse_categorical_crossentropy",
  categorical_accuracy = "sparse_categorical_accuracy" }
local ONE_HOT_OF = { sparse_categorical_crossentropy = "categorical_crossentropy",
  sparse_categorical_accuracy = "categorical_accuracy" }
function M._check_label_kind(fname, y_true, y_pred, want)
  if not mg.is_tensor(y_true) or not mg.is_tensor(y_pred) then return end
  local nt, np = y_true.ndim, y_pred.ndim
  if np < 1 then return end
  local k = y_pred.shape[np]
  if type(k) ~= "number" or k < 2 then return end
  local last = y_true.shape[nt]
  if want == "one_hot" and (nt == np - 1 or (nt == np and last == 1)) then
    options.raise(string.format("%s: y_true %s holds class indices but y_pred is %s, one column per class: "
      .. "%s takes one-hot labels; for class indices use %s (or mg.one_hot(y, %d))", fname, shape_text(y_true),
      shape_text(y_pred), fname, SPARSE_OF[fname] or "the sparse_ form", k))
  elseif want == "sparse" and nt == np and last == k then
    options.raise(string.format("%s: y_true %s holds one-hot rows (like y_pred %s) but %s takes class indices "
      .. "of shape %s; for one-hot labels use %s (or mg.argmax(y, -1) for the indices)", fname,
      shape_text(y_true), shape_text(y_pred), fname, shape_text(y_pred):gsub(", [^,]*%)$", ")"):gsub("^%((.-)%)$", "(%1)"),
      ONE_HOT_OF[fname] or "the non-sparse form"))
  end
end

-- Eagerly, a label error of the op a loss or metric is built on names the function the user
-- called ("sparse_categorical_crossentropy: labels count from 1"), not the op; staged, the op's
-- error comes when the graph runs, with the user's line and the staged function's name.
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack
function M._naming_labels(fname, f, ...)
  local r = pack(pcall(f, ...))
  if r[1] then return unpack(r, 2, r.n) end
  if type(r[2]) ~= "string" then error(r[2], 0) end
  local msg = r[2]:gsub("^[^:\n]+:%d+: ", "", 1)   -- pcall hid the user's line: put it back
  msg = msg:gsub("^[%w_]+: labels count from 1", fname .. ": labels count from 1", 1)
  error(options.user_where() .. msg, 0)
end

local function logits_for(y_pred, kind)
  local rec = activations.logits_of[y_pred]
  if rec and rec.kind == kind then return rec.logits end
  return nil
end

-- ---- per-sample functions ------------------------------------------------------------

--- mg.losses.mean_squared_error(y_true, y_pred) -> mean((y_pred - y_true)^2) over the last axis (also MSE).
function M.mean_squared_error(y_true, y_pred)
  y_true = align(y_true, y_pred, "mean_squared_error")
  return mg.mean(mg.square(y_pred - y_true), -1)
end

--- mg.losses.mean_absolute_error(y_true, y_pred) -> mean(|y_pred - y_true|) over the last axis (also MAE).
function M.mean_absolute_error(y_true, y_pred)
  y_true = align(y_true, y_pred, "mean_absolute_error")
  return mg.mean(mg.abs(y_pred - y_true), -1)
end

local SMOOTHING = { "number", min = 0, max = 1 }

--- mg.losses.huber(y_true, y_pred, delta=1) -> per sample Huber loss: quadratic within delta of the target, linear beyond.
function M.huber(y_true, y_pred, delta)
  delta = options.value("huber", "delta", delta, { "number", above = 0 }) or 1.0
  y_true = align(y_true, y_pred, "huber")
  local err = mg.abs(y_pred - y_true)
  local quad = mg.minimum(err, delta)
  local lin = err - quad
  return mg.mean(mg.square(quad) * 0.5 + lin * delta, -1)
end

--- mg.losses.categorical_crossentropy(y_true, y_pred, from_logits=false, label_smoothing=0) -> per sample cross-entropy of one-hot labels.
function M.categorical_crossentropy(y_true, y_pred, from_logits, label_smoothing)
  options.value("categorical_crossentropy", "label_smoothing", label_smoothing, SMOOTHING)
  M._check_label_kind("categorical_crossentropy", y_true, y_pred, "one_hot")
  y_true = align(y_true, y_pred, "categorical_crossentropy")
  if label_smoothing and label_smoothing > 0 then
    local k = y_pred.shape[y_pred.ndim]
    y_true = y_true * (1 - label_smoothing) + label_smoothing / k
  end
  local logits = from_logits and y_pred or logits_for(y_pred, "softmax")
  if logits then return mg.softmax_cross_entropy_with_logits(logits, y_true) end
  local p = y_pred / mg.sum(y_pred, { axis = -1, keepdims = true })
  p = mg.clip(p, EPS, 1 - EPS)
  return -mg.sum(y_true * mg.log(p), -1)
end

-- The labels pass through an op that checks their range when the graph runs (the fused op, or
-- one_hot), so a label from 0 raises "labels count from 1" eagerly and staged alike.
local sparse_cce

-- Probabilities are normalised per row (each divided by its row's sum)
-- before the log, as Keras does and as categorical_crossentropy does: a row
-- that does not sum to 1 gets the same loss as its normalised self, and the
-- gradient reaches every class through the sum.
function M.sparse_categorical_crossentropy(y_true, y_pred, from_logits)
  return M._naming_labels("sparse_categorical_crossentropy", sparse_cce, y_true, y_pred, from_logits)
end
function sparse_cce(y_true, y_pred, from_logits)
  if mg.is_tensor(y_true) then M._check_label_kind("sparse_categorical_crossentropy", y_true, y_pred, "sparse") end
  local labels = sparse_labels(y_true, y_pred)
  local logits = from_logits and y_pred or logits_for(y_pred, "softmax")
  if logits then return mg.sparse_softmax_cross_entropy_with_logits(logits, labels) end
  local p = y_pred / mg.sum(y_pred, { axis = -1, keepdims = true })
  p = mg.clip(p, EPS, 1 - EPS)
  local k = y_pred.shape[y_pred.ndim]
  if type(k) == "number" then   -- the picked probability through one_hot, which checks the labels
    return -mg.log(mg.sum(p * mg.one_hot(labels, k, p.dtype), -1))
  end
  p = mg.gather(p, mg.unsqueeze(labels, -1), -1)
  return -mg.log(mg.squeeze(p, { axis = -1 }))
end

--- mg.losses.binary_crossentropy(y_true, y_pred, from_logits=false, label_smoothing=0) -> per sample binary cross-entropy (mean over the last axis).
function M.binary_crossentropy(y_true, y_pred, from_logits, label_smoothing)
  options.value("binary_crossentropy", "label_smoothing", label_smoothing, SMOOTHING)
  y_true = align(y_true, y_pred, "binary_crossentropy")
  if label_smoothing and label_smoothing > 0 then
    y_true = y_true * (1 - label_smoothing) + 0.5 * label_smoothing
  end
  local x = from_logits and y_pred or logits_for(y_pred, "sigmoid")
  if x then
    -- max(x, 0) - x*z + log(1 + exp(-|x|))
    return mg.mean(mg.relu(x) - x * y_true + mg.log1p(mg.exp(-mg.abs(x))), -1)
  end
  local p = mg.clip(y_pred, EPS, 1 - EPS)
  return mg.mean(-(y_true * mg.log(p) + (1 - y_true) * mg.log(1 - p)), -1)
end

M.mse, M.mae = M.mean_squared_error, M.mean_absolute_error
M.MSE, M.MAE = M.mean_squared_error, M.mean_absolute_error
M.huber_loss = M.huber

-- ---- Loss objects --------------------------------------------------------------------------

--- mg.losses.Loss{reduction="sum_over_batch_size", name=}: the base class of losses.
--- loss(y_true, y_pred, sample_weight) -> the reduced loss (a scalar tensor); a subclass
--- defines call(y_true, y_pred), the per-sample losses.
--- Example:
---   local mse = mg.losses.MeanSquaredError()
---   print(mse(mg.tensor{{1.0, 2.0}}, mg.tensor{{1.0, 4.0}}))   -- tensor(2., dtype=float32)
local Loss = class.Object:extend("Loss")
M.Loss = Loss

-- sample_weight shaped to multiply `values`: (N,) weights reach every
-- value of their sample ((N, T) losses), (N, 1) ones match (N,) losses
-- (Keras's squeeze_or_expand_to_same_rank, generalised to trailing axes).
local function weights_for(values, w)
  if not mg.is_tensor(w) then w = mg.tensor(w, values.dtype) end
  if w.dtype ~= values.dtype then w = mg.cast(w, values.dtype) end
  if w.ndim == values.ndim + 1 and w.shape[w.ndim] == 1 then w = mg.squeeze(w, { axis = -1 }) end
  while w.ndim < values.ndim and w.ndim > 0 do w = mg.unsqueeze(w, -1) end
  return w
end
M.weights_for = weights_for

-- reduce(values, reduction, sample_weight): the batch reduction of
-- per-sample values, weighted: "sum_over_batch_size" (and "mean", "auto")
-- sum(w * v) / number of values, "mean_with_sample_weight" sum(w * v) /
-- sum(w), "sum", or "none" (the weighted values).
local function reduce(values, reduction, sample_weight)
  local w
  if sample_weight ~= nil then
    w = weights_for(values, sample_weight)
    values = values * w
  end
  if reduction == "none" then return values end
  if reduction == "sum" then return mg.sum(values) end
  if reduction == "mean_with_sample_weight" and w then
    local total = mg.sum(mg.broadcast_to(w, values.shape))
    return mg.where(mg.greater(total, 0), mg.sum(values) / mg.maximum(total, 1e-30), 0.0)
  end
  return mg.mean(values)
end
M.reduce = reduce

--- mg.losses.apply_mask(sample_weight, mask, dtype, reduction) -> the sample weights with a
--- prediction's mask folded in (Keras 3's apply_mask): masked values weigh 0; for a mean
--- ("sum_over_batch_size", "mean", "auto") the real ones weigh total / valid, so the mean over
--- all values is the mean over the real ones; for other reductions they weigh 1. A (batch,)
--- sample_weight reaches every step of a (batch, time) mask. nil mask: sample_weight unchanged.
function M.apply_mask(sample_weight, mask, dtype, reduction)
  if mask == nil or mask == false then return sample_weight end
  dtype = dtype or "float32"
  local fm = mg.cast(mask, dtype)
  if reduction == "sum_over_batch_size" or reduction == "mean" or reduction == "auto" or reduction == nil then
    local total = mask:numel()   -- unknown while tracing with a -1 batch size: counted with an op
    if require("moongrad.core").is_unknown_size(total) then total = mg.sum(mg.ones_like(fm)) end
    local valid = mg.sum(fm)
    -- divide_no_nan: no real value at all gives weights 0 (and a loss of 0), not NaN
    local scale = mg.where(mg.greater(valid, 0), total / mg.maximum(valid, 1e-30), 0.0)
    fm = fm * scale
  end
  if sample_weight ~= nil then
    return weights_for(fm, sample_weight) * fm
  end
  return fm
end

local REDUCTIONS = { "sum_over_batch_size", "sum", "none", "auto", "mean", "mean_with_sample_weight" }
-- Every Loss takes these; classes add their own (see define below).
Loss.options = { reduction = { "string", one_of = REDUCTIONS }, name = "string" }

function Loss:__init(cfg)
  cfg = options.check(self.class_name, cfg, self.options)
  self.reduction = cfg.reduction or "sum_over_batch_size"
  self.name = cfg.name or self.default_name
  self.from_logits = cfg.from_logits and true or false
  self.label_smoothing = cfg.label_smoothing
  self.delta = cfg.delta
  -- the class's own options over its defaults (losses_more's classes read them from here)
  local c = {}
  for k, v in pairs(self.defaults or {}) do c[k] = v end
  for k, v in pairs(cfg) do if k ~= "reduction" and k ~= "name" then c[k] = v end end
  self.config = c
end

-- loss(y_true, y_pred [, sample_weight]): the reduced loss. The masks of
-- y_pred and of the per-sample values (a loss's call may attach one) are
-- ANDed and folded into the sample weights, as Keras 3's Loss.__call__ does.
function Loss:__call(y_true, y_pred, sample_weight)
  local in_mask = masking.get(y_pred)
  local values = self:call(y_true, y_pred)
  local mask, out_mask = in_mask, masking.get(values)
  if out_mask then mask = mask and mg.logical_and(mask, out_mask) or out_mask end
  if mask then sample_weight = M.apply_mask(sample_weight, mask, values.dtype, self.reduction) end
  return reduce(values, self.reduction, sample_weight)
end

--- loss:get_config() -> a table of the constructor options (name, reduction, ...).
function Loss:get_config()
  local c = { name = self.name, reduction = self.reduction, from_logits = self.from_logits or nil,
    label_smoothing = self.label_smoothing, delta = self.delta }
  if self.defaults then for k, v in pairs(self.config) do c[k] = v end end
  return c
end

local by_name = {}

local function define(class_name, key, fn, aliases, spec, defaults)
  local cls = Loss:extend(class_name)
  cls.defaults = defaults
  cls.options = options.extend(Loss.options, spec)
  cls.default_name = key
  cls.key = key
--- loss:call(y_true, y_pred) -> the per-sample losses, before the reduction (calling the loss, loss(y_true, y_pred, sample_weight), reduces them).
  function cls:call(y_true, y_pred)
    return fn(y_true, y_pred, self)
  end
  M[class_name] = cls
  by_name[key] = cls
  by_name[class_name] = cls
  for _, a in ipairs(aliases or {}) do by_name[a] = cls end
  return cls
end

--- mg.losses.MeanSquaredError{reduction=, name=}: mean((y_pred - y_true)^2) over the last axis ("mse").
define("MeanSquaredError", "mean_squared_error", function(t, p) return M.mean_squared_error(t, p) end, { "mse", "MSE" })
--- mg.losses.MeanAbsoluteError{reduction=, name=}: mean(|y_pred - y_true|) over the last axis ("mae").
define("MeanAbsoluteError", "mean_absolute_error", function(t, p) return M.mean_absolute_error(t, p) end,
  { "mae", "MAE" })
--- mg.losses.Huber{delta=1, reduction=, name=}: quadratic within delta of the target, linear beyond.
define("Huber", "huber_loss", function(t, p, s) return M.huber(t, p, s.delta) end, { "huber" },
  { delta = { "number", above = 0 } })
--- mg.losses.CategoricalCrossentropy{from_logits=false, label_smoothing=0, reduction=, name=}
--- Cross-entropy of one-hot (or probability) labels y_true and predictions y_pred.
define("CategoricalCrossentropy", "categorical_crossentropy", function(t, p, s)
  return M.categorical_crossentropy(t, p, s.from_logits, s.label_smoothing)
end, nil, { from_logits = "boolean", label_smoothing = SMOOTHING })
--- mg.losses.SparseCategoricalCrossentropy{from_logits=false, reduction=, name=}
--- Cross-entropy of class-index labels (integers counted from 1) and predictions over the classes.
--- Example:
---   local loss = mg.losses.SparseCategoricalCrossentropy{from_logits = true}
---   print(loss(mg.tensor{2}, mg.tensor{{0.0, 0.0}}))   -- tensor(0.6931, dtype=float32)
define("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy", function(t, p, s)
  return M.sparse_categorical_crossentropy(t, p, s.from_logits)
end, nil, { from_logits = "boolean" })
--- mg.losses.BinaryCrossentropy{from_logits=false, label_smoothing=0, reduction=, name=}
--- Binary cross-entropy of labels in {0, 1} and probabilities (or logits) y_pred.
define("BinaryCrossentropy", "binary_crossentropy", function(t, p, s)
  return M.binary_crossentropy(t, p, s.from_logits, s.label_smoothing)
end, nil, { from_logits = "boolean", label_smoothing = SMOOTHING })

-- KLDivergence, Poisson, LogCosh, the hinges, CosineSimilarity, MSLE, MAPE, the focal
-- cross-entropies and CTC (their functions and classes)
require("moongrad.losses_more")(M, define, align)

-- A plain function f(y_true, y_pred) -> per-sample values, as a Loss.
local Wrapper = Loss:extend("LossFunctionWrapper")
M.LossFunctionWrapper = Wrapper
function Wrapper:__init(fn, cfg)
  Loss.__init(self, cfg)
  self.fn = fn
  self.name = (cfg and cfg.name) or "loss"
end
--- loss:call(y_true, y_pred) -> the wrapped function's per-sample losses, before the reduction.
function Wrapper:call(y_true, y_pred) return self.fn(y_true, y_pred) end

-- get(id): a Loss from a name ("mse", "sparse_categorical_crossentropy"...),
-- a {class_name=, config=} table, a Loss or a function.
function M.get(id)
  if id == nil then return nil end
  if class.isinstance(id, Loss) then return id end
  if type(id) == "string" then
    local cls = by_name[id]
    if not cls then
      local names = {}
      for k, c in pairs(by_name) do if k == c.key then names[#names + 1] = k end end
      table.sort(names)
      error(string.format("unknown loss '%s' (one of: %s)", id, table.concat(names, ", ")), 3)
    end
    return cls()
  end
  if type(id) == "function" then return Wrapper(id) end
  if type(id) == "table" and id.class_name then
    local cls = by_name[id.class_name]
    if not cls then error("unknown loss class '" .. tostring(id.class_name) .. "'", 3) end
    return cls(id.config)
  end
  error("a loss must be a name, a Loss or a function, got " .. type(id), 3)
end

-- The name of a loss (for picking the matching accuracy).
function M.kind(loss)
  if class.isinstance(loss, Loss) then return loss.key or loss.name end
  return nil
end

M._is_float = is_float
return M
