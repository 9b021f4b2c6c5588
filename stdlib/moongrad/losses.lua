-- moongrad.losses (mg.losses): Keras's losses as functions giving one value
-- per sample (the last axis reduced) and as Loss objects that also reduce
-- over the batch (reduction "sum_over_batch_size" = mean, "sum", "none").
--
-- Cross-entropies are computed stably: from_logits uses the engine's fused
-- softmax_cross_entropy_with_logits / sparse_softmax_cross_entropy_with_logits
-- and log1p(exp(-|x|)) for sigmoids; given probabilities that a softmax or
-- sigmoid activation produced (nn.activations remembers their logits, like
-- TF Keras), the logits are used too; other probabilities are clipped to
-- [eps, 1 - eps] before the log. Sparse labels are class indices from 1.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local class = require("moongrad.nn.class")
local activations = require("moongrad.nn.activations")

local M = {}
local EPS = 1e-7

-- ---- shape alignment --------------------------------------------------------------

local function is_float(t) return t.dtype == "float32" or t.dtype == "float64" end

-- y_true as y_pred's dtype and rank: (N,) against (N, 1) gains the axis.
local function align(y_true, y_pred)
  if not mg.is_tensor(y_true) then y_true = mg.tensor(y_true, y_pred.dtype) end
  if y_true.dtype ~= y_pred.dtype then y_true = mg.cast(y_true, y_pred.dtype) end
  local nt, np = y_true.ndim, y_pred.ndim
  if nt == np - 1 and y_pred.shape[np] == 1 then
    y_true = mg.unsqueeze(y_true, -1)
  elseif nt == np + 1 and y_true.shape[nt] == 1 then
    y_true = mg.squeeze(y_true, { axis = -1 })
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

local function logits_for(y_pred, kind)
  local rec = activations.logits_of[y_pred]
  if rec and rec.kind == kind then return rec.logits end
  return nil
end

-- ---- per-sample functions ------------------------------------------------------------

function M.mean_squared_error(y_true, y_pred)
  y_true = align(y_true, y_pred)
  return mg.mean(mg.square(y_pred - y_true), -1)
end

function M.mean_absolute_error(y_true, y_pred)
  y_true = align(y_true, y_pred)
  return mg.mean(mg.abs(y_pred - y_true), -1)
end

function M.huber(y_true, y_pred, delta)
  delta = delta or 1.0
  y_true = align(y_true, y_pred)
  local err = mg.abs(y_pred - y_true)
  local quad = mg.minimum(err, delta)
  local lin = err - quad
  return mg.mean(mg.square(quad) * 0.5 + lin * delta, -1)
end

function M.categorical_crossentropy(y_true, y_pred, from_logits, label_smoothing)
  y_true = align(y_true, y_pred)
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

function M.sparse_categorical_crossentropy(y_true, y_pred, from_logits)
  local labels = sparse_labels(y_true, y_pred)
  local logits = from_logits and y_pred or logits_for(y_pred, "softmax")
  if logits then return mg.sparse_softmax_cross_entropy_with_logits(logits, labels) end
  local p = mg.gather(y_pred, mg.unsqueeze(labels, -1), -1)
  p = mg.squeeze(p, { axis = -1 })
  return -mg.log(mg.clip(p, EPS, 1 - EPS))
end

function M.binary_crossentropy(y_true, y_pred, from_logits, label_smoothing)
  y_true = align(y_true, y_pred)
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

local Loss = class.Object:extend("Loss")
M.Loss = Loss

-- reduce(values): the batch reduction of per-sample values.
local function reduce(values, reduction, sample_weight)
  if sample_weight ~= nil then
    if not mg.is_tensor(sample_weight) then sample_weight = mg.tensor(sample_weight, values.dtype) end
    values = values * mg.cast(sample_weight, values.dtype)
  end
  if reduction == "none" then return values end
  if reduction == "sum" then return mg.sum(values) end
  return mg.mean(values)
end
M.reduce = reduce

function Loss:__init(cfg)
  cfg = cfg or {}
  self.reduction = cfg.reduction or "sum_over_batch_size"
  self.name = cfg.name or self.default_name
  self.from_logits = cfg.from_logits and true or false
  self.label_smoothing = cfg.label_smoothing
  self.delta = cfg.delta
  if self.reduction ~= "sum_over_batch_size" and self.reduction ~= "sum" and self.reduction ~= "none"
      and self.reduction ~= "auto" then
    error("Loss: reduction must be \"sum_over_batch_size\", \"sum\" or \"none\", got " .. tostring(self.reduction), 3)
  end
end

-- loss(y_true, y_pred [, sample_weight]): the reduced loss.
function Loss:__call(y_true, y_pred, sample_weight)
  return reduce(self:call(y_true, y_pred), self.reduction, sample_weight)
end

function Loss:get_config()
  return { name = self.name, reduction = self.reduction, from_logits = self.from_logits or nil,
    label_smoothing = self.label_smoothing, delta = self.delta }
end

local by_name = {}

local function define(class_name, key, fn, aliases)
  local cls = Loss:extend(class_name)
  cls.default_name = key
  cls.key = key
  function cls:call(y_true, y_pred)
    return fn(y_true, y_pred, self)
  end
  M[class_name] = cls
  by_name[key] = cls
  by_name[class_name] = cls
  for _, a in ipairs(aliases or {}) do by_name[a] = cls end
  return cls
end

define("MeanSquaredError", "mean_squared_error", function(t, p) return M.mean_squared_error(t, p) end, { "mse", "MSE" })
define("MeanAbsoluteError", "mean_absolute_error", function(t, p) return M.mean_absolute_error(t, p) end,
  { "mae", "MAE" })
define("Huber", "huber_loss", function(t, p, s) return M.huber(t, p, s.delta) end, { "huber" })
define("CategoricalCrossentropy", "categorical_crossentropy", function(t, p, s)
  return M.categorical_crossentropy(t, p, s.from_logits, s.label_smoothing)
end)
define("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy", function(t, p, s)
  return M.sparse_categorical_crossentropy(t, p, s.from_logits)
end)
define("BinaryCrossentropy", "binary_crossentropy", function(t, p, s)
  return M.binary_crossentropy(t, p, s.from_logits, s.label_smoothing)
end)

-- A plain function f(y_true, y_pred) -> per-sample values, as a Loss.
local Wrapper = Loss:extend("LossFunctionWrapper")
M.LossFunctionWrapper = Wrapper
function Wrapper:__init(fn, cfg)
  Loss.__init(self, cfg)
  self.fn = fn
  self.name = (cfg and cfg.name) or "loss"
end
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
