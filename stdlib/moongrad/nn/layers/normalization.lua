-- moongrad.nn.layers.normalization: BatchNormalization and
-- LayerNormalization over the engine's fused batch_norm op
-- ((x - mean) / sqrt(var + eps) * gamma + beta in one pass).
--
-- BatchNormalization normalises with the batch's statistics while training
-- and updates the moving mean/variance (non-trainable Variables, assigned
-- in place: inside a staged train step the assignments are graph nodes);
-- in inference it uses the moving statistics. Keras's weight order: gamma,
-- beta, moving_mean, moving_variance. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local initializers = require("moongrad.nn.initializers")
local regularizers = require("moongrad.nn.regularizers")
local options = require("moongrad.options")

local M = {}

local function norm_axes(axis, ndim, what)
  local list = type(axis) == "table" and axis or { axis }
  local out, set = {}, {}
  for i, a in ipairs(list) do
    local ax = a < 0 and ndim + a + 1 or a
    if ax < 2 or ax > ndim then
      error(string.format("%s: axis %d is out of range for a %d-d input (the batch axis 1 cannot be normalised)",
        what, a, ndim), 0)
    end
    out[i] = ax
    set[ax] = true
  end
  return out, set
end

local R = util.rules
local AFFINE_OPTIONS = { axis = R.axes, epsilon = { "number", above = 0 }, center = "boolean", scale = "boolean",
  beta_initializer = R.initializer, gamma_initializer = R.initializer, beta_regularizer = R.regularizer,
  gamma_regularizer = R.regularizer }

-- The affine part both layers share: center/scale flags, gamma/beta
-- initializers and regularizers, their weights, their config entries.
local function init_affine(self, cfg)
  self.epsilon = cfg.epsilon or 1e-3
  self.center = cfg.center ~= false
  self.scale = cfg.scale ~= false
  self.beta_initializer = initializers.get(cfg.beta_initializer or "zeros")
  self.gamma_initializer = initializers.get(cfg.gamma_initializer or "ones")
  self.beta_regularizer = regularizers.get(cfg.beta_regularizer)
  self.gamma_regularizer = regularizers.get(cfg.gamma_regularizer)
end

local function build_affine(self, pshape)
  if self.scale then
    self.gamma = self:add_weight { name = "gamma", shape = pshape, initializer = self.gamma_initializer,
      regularizer = self.gamma_regularizer }
  end
  if self.center then
    self.beta = self:add_weight { name = "beta", shape = pshape, initializer = self.beta_initializer,
      regularizer = self.beta_regularizer }
  end
end

local function affine_config(self, cfg)
  cfg.axis = self.axis
  cfg.epsilon = self.epsilon
  cfg.center = self.center
  cfg.scale = self.scale
  cfg.beta_initializer = initializers.serialize(self.beta_initializer)
  cfg.gamma_initializer = initializers.serialize(self.gamma_initializer)
  cfg.beta_regularizer = regularizers.serialize(self.beta_regularizer)
  cfg.gamma_regularizer = regularizers.serialize(self.gamma_regularizer)
  return cfg
end

local function same_shape(self, s)
  if #s ~= self._ndim then
    error(string.format("expected a %d-d input, got shape %s", self._ndim, util.shape_str(s)), 0)
  end
  return util.copy(s)
end

-- ---- BatchNormalization ----------------------------------------------------------------

--- mg.nn.BatchNormalization{axis=-1, momentum=0.99, epsilon=0.001, center=true, scale=true}
--- Normalises each feature by the batch's mean and variance in training, by their
--- moving averages in inference.
local BN = Layer:extend("BatchNormalization")
BN.supports_masking = true
M.BatchNormalization = BN

function BN:__init(...)
  local cfg = self:_parse({}, options.extend(AFFINE_OPTIONS, { momentum = { "number", min = 0, max = 1 },
    moving_mean_initializer = R.initializer, moving_variance_initializer = R.initializer }), ...)
  self.axis = cfg.axis or -1
  self.momentum = cfg.momentum or 0.99
  init_affine(self, cfg)
  self.moving_mean_initializer = initializers.get(cfg.moving_mean_initializer or "zeros")
  self.moving_variance_initializer = initializers.get(cfg.moving_variance_initializer or "ones")
end

function BN:build(s)
  local axes, set = norm_axes(self.axis, #s, "BatchNormalization")
  local pshape, bshape = {}, {}
  for i = 1, #s do
    if set[i] then
      if s[i] == -1 then error("the normalised axis must have a known size, got " .. util.shape_str(s), 0) end
      pshape[#pshape + 1] = s[i]
      bshape[i] = s[i]
    else
      bshape[i] = 1
    end
  end
  local reduce = {}
  for i = 1, #s do if not set[i] then reduce[#reduce + 1] = i end end
  self._reduce = reduce
  self._ndim = #s
  -- the parameters broadcast as they are when the normalised axes are the last ones
  local trailing = true
  for i, ax in ipairs(axes) do if ax ~= #s - #axes + i then trailing = false end end
  self._bshape = (not trailing) and bshape or nil
  self._pshape = pshape
  build_affine(self, pshape)
  self.moving_mean = self:add_weight { name = "moving_mean", shape = pshape,
    initializer = self.moving_mean_initializer, trainable = false }
  self.moving_variance = self:add_weight { name = "moving_variance", shape = pshape,
    initializer = self.moving_variance_initializer, trainable = false }
  rawset(self, "_one", mg.ones(pshape))
  rawset(self, "_zero", mg.zeros(pshape))
end

local function bcast(self, p)
  if self._bshape then return mg.reshape(p, self._bshape) end
  return p
end

-- The batch moments in training; with a mask (one axis fewer than x: the
-- (batch, time) mask of a sequence) only the real steps count, as in Keras
-- 3: sums over the kept entries divided by their count + 1e-7.
local function moments(self, x, mask)
  local r = self._reduce
  if not mask then return mg.mean(x, { axis = r }), mg.variance(x, { axis = r }) end
  if mask.ndim ~= x.ndim - 1 then
    error(string.format("the mask should have one axis fewer than the input, got mask %s for input %s",
      util.shape_str(mask.shape), util.shape_str(x.shape)), 0)
  end
  local keep = mg.logical_or(mg.unsqueeze(mg.cast(mask, "bool"), -1), mg.cast(mg.zeros_like(x), "bool"))
  local zero = mg.zeros({}, x.dtype)
  local count = mg.sum(mg.cast(keep, x.dtype), { axis = r, keepdims = true }) + 1e-7
  local mean_k = mg.sum(mg.where(keep, x, zero), { axis = r, keepdims = true }) / count
  local sq = mg.sum(mg.square(mg.where(keep, x - mean_k, zero)), { axis = r, keepdims = true }) / count
  local reduced, shape = {}, {}
  for _, a in ipairs(r) do reduced[a < 0 and x.ndim + a + 1 or a] = true end
  for d = 1, x.ndim do if not reduced[d] then shape[#shape + 1] = x.shape[d] end end
  return mg.reshape(mean_k, shape), mg.reshape(sq, shape)
end

function BN:call(x, training, opts)
  x = util.float_input(x, self.compute_dtype)
  local gamma = self.gamma or rawget(self, "_one")
  local beta = self.beta or rawget(self, "_zero")
  if training then
    local mean, var = moments(self, x, opts and opts.mask or nil)
    local m = self.momentum
    self.moving_mean:assign(self.moving_mean * m + mg.stop_gradient(mean) * (1 - m))
    self.moving_variance:assign(self.moving_variance * m + mg.stop_gradient(var) * (1 - m))
    return mg.batch_norm(x, bcast(self, mean), bcast(self, var), bcast(self, beta), bcast(self, gamma), self.epsilon)
  end
  return mg.batch_norm(x, bcast(self, self.moving_mean), bcast(self, self.moving_variance), bcast(self, beta),
    bcast(self, gamma), self.epsilon)
end

BN.compute_output_shape = same_shape

function BN:get_config()
  local cfg = affine_config(self, Layer.get_config(self))
  cfg.momentum = self.momentum
  cfg.moving_mean_initializer = initializers.serialize(self.moving_mean_initializer)
  cfg.moving_variance_initializer = initializers.serialize(self.moving_variance_initializer)
  return cfg
end

-- ---- LayerNormalization -------------------------------------------------------------------

--- mg.nn.LayerNormalization{axis=-1, epsilon=0.001, center=true, scale=true}: normalises each sample over axis.
local LN = Layer:extend("LayerNormalization")
LN.supports_masking = true
M.LayerNormalization = LN

function LN:__init(...)
  local cfg = self:_parse({}, AFFINE_OPTIONS, ...)
  self.axis = cfg.axis or -1
  init_affine(self, cfg)
end

-- Keras's layout: gamma and beta hold one value per position of the
-- normalised axes, shape (size of each normalised axis, in axis order):
-- (C,) for axis=-1, (3,) for axis=-2 of (2,3,4), (3,5) for axis={-3,-1} of
-- (2,3,4,5). When the axes are not a trailing block they are reshaped to
-- broadcast (1 on the other axes) for the arithmetic.
function LN:build(s)
  local axes, set = norm_axes(self.axis, #s, "LayerNormalization")
  local sorted = {}
  for i = 1, #s do if set[i] then sorted[#sorted + 1] = i end end
  if #sorted ~= #axes then error("an axis is named twice in " .. util.shape_str(axes), 0) end
  local pshape, bshape = {}, {}
  for i = 1, #s do
    if set[i] then
      if s[i] == -1 then error("the normalised axes must have known sizes, got " .. util.shape_str(s), 0) end
      pshape[#pshape + 1] = s[i]
      bshape[i] = s[i]
    else
      bshape[i] = 1
    end
  end
  local trailing = sorted[1] == #s - #sorted + 1
  self._axes = sorted
  self._ndim = #s
  self._bshape = (not trailing) and bshape or nil
  build_affine(self, pshape)
  rawset(self, "_one", mg.ones(pshape))
  rawset(self, "_zero", mg.zeros(pshape))
end

function LN:call(x)
  x = util.float_input(x, self.compute_dtype)
  local mean = mg.mean(x, { axis = self._axes, keepdims = true })
  local var = mg.variance(x, { axis = self._axes, keepdims = true })
  return mg.batch_norm(x, mean, var, bcast(self, self.beta or rawget(self, "_zero")),
    bcast(self, self.gamma or rawget(self, "_one")), self.epsilon)
end

LN.compute_output_shape = same_shape

function LN:get_config()
  return affine_config(self, Layer.get_config(self))
end

return M
