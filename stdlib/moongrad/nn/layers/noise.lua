-- moongrad.nn.layers.noise: the regularization layers that act only in
-- training — GaussianNoise, GaussianDropout, SpatialDropout1D/2D/3D — and
-- ActivityRegularization, which adds a penalty on its input to layer.losses.
--
-- SpatialDropout draws a (batch, 1, ..., channels) keep mask from the same
-- seeded dropout op and per-layer seed Variable as Dropout (it extends
-- Dropout), so a whole channel is kept or dropped and the kept ones scaled by
-- 1 / (1 - rate). The Gaussian layers draw from mg.random.normal, which a
-- staged step draws afresh each call and mg.random.seed makes reproducible.
-- ActivityRegularization keeps the penalty of its latest call, as Keras's
-- add_loss: (l1 * sum|x| + l2 * sum x^2) / batch size (Keras 3 divides by the
-- batch). Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local Dropout = require("moongrad.nn.layers.core").Dropout

local M = {}
local function same(_, s) return util.copy(s) end
local NO_SEED = util.unsupported(nil, "the noise follows mg.random.seed")

--- mg.nn.GaussianNoise{stddev}: adds N(0, stddev^2) noise in training; the identity in inference.
local GaussianNoise = Layer:extend("GaussianNoise")
GaussianNoise.supports_masking = true
M.GaussianNoise = GaussianNoise

function GaussianNoise:__init(...)
  local cfg = self:_parse({ "stddev" }, { stddev = { "number", min = 0 }, seed = NO_SEED }, ...)
  if cfg.stddev == nil then util.raise("GaussianNoise: stddev is required (a number >= 0)") end
  self.stddev = cfg.stddev
end
function GaussianNoise:call(x, training)
  x = util.float_input(x, self.dtype)
  if not training or self.stddev == 0 then return x end
  return x + mg.random.normal(x.shape, 0, self.stddev, x.dtype)
end
GaussianNoise.compute_output_shape = same
function GaussianNoise:get_config()
  local cfg = Layer.get_config(self)
  cfg.stddev = self.stddev
  return cfg
end

--- mg.nn.GaussianDropout{rate}: multiplies by N(1, rate / (1 - rate)) noise in training; the identity in inference.
local GaussianDropout = Layer:extend("GaussianDropout")
GaussianDropout.supports_masking = true
M.GaussianDropout = GaussianDropout

function GaussianDropout:__init(...)
  local cfg = self:_parse({ "rate" }, { rate = { "number", min = 0, below = 1 }, seed = NO_SEED }, ...)
  if cfg.rate == nil then util.raise("GaussianDropout: rate is required (a number in [0, 1))") end
  self.rate = cfg.rate
end
function GaussianDropout:call(x, training)
  x = util.float_input(x, self.dtype)
  if not training or self.rate == 0 then return x end
  return x * mg.random.normal(x.shape, 1, math.sqrt(self.rate / (1 - self.rate)), x.dtype)
end
GaussianDropout.compute_output_shape = same
function GaussianDropout:get_config()
  local cfg = Layer.get_config(self)
  cfg.rate = self.rate
  return cfg
end

-- SpatialDropout{1,2,3}D{rate, data_format="channels_last", seed=}: drops whole channels.
local function spatial(name, ndim)
  local S = Dropout:extend(name)
  M[name] = S
  function S:__init(...)
    local cfg = self:_parse({ "rate" }, { rate = { "number", min = 0, below = 1 }, seed = "integer",
      data_format = ndim > 3 and { "string", one_of = { "channels_last", "channels_first" } } or nil }, ...)
    if cfg.rate == nil then util.raise(name .. ": rate is required (a number in [0, 1))") end
    self.rate = cfg.rate
    self.seed = cfg.seed
    self.data_format = cfg.data_format or "channels_last"
  end
  function S:call(x, training)
    local s = x.shape
    if #s ~= ndim then
      error(string.format("%s expects a %d-d input, got %s", name, ndim, util.shape_str(s)), 0)
    end
    if not training or self.rate == 0 then return x end
    local ns = {}
    for i = 1, ndim do ns[i] = 1 end
    ns[1] = s[1]
    local c = (self.data_format == "channels_first") and 2 or ndim
    ns[c] = s[c]
    local sv = rawget(self, "_seed_var")
    local seed = core.tracing() and sv:read() or mg.tensor(sv)
    sv:assign(seed + 1)
    return x * mg.dropout(mg.ones(ns, x.dtype), seed, self.rate)
  end
  function S:get_config()
    local cfg = Dropout.get_config(self)
    if ndim > 3 then cfg.data_format = self.data_format end
    return cfg
  end
  return S
end
spatial("SpatialDropout1D", 3)
spatial("SpatialDropout2D", 4)
spatial("SpatialDropout3D", 5)

--- mg.nn.ActivityRegularization{l1=0, l2=0}: the identity, adding (l1 * sum|x| + l2 * sum x^2) / batch
--- to layer.losses (and so to the model's training loss) on each call.
local AR = Layer:extend("ActivityRegularization")
AR.supports_masking = true
M.ActivityRegularization = AR
AR.passthrough_dtype = true

function AR:__init(...)
  local cfg = self:_parse({}, { l1 = { "number", min = 0 }, l2 = { "number", min = 0 } }, ...)
  self.l1 = cfg.l1 or 0
  self.l2 = cfg.l2 or 0
end
function AR:call(x)
  local xf = util.float_input(x, self.dtype)
  local r = mg.tensor(0.0)
  if self.l1 ~= 0 then r = r + mg.sum(mg.abs(xf)) * self.l1 end
  if self.l2 ~= 0 then r = r + mg.sum(mg.square(xf)) * self.l2 end
  if #xf.shape > 0 then r = r / xf.shape[1] end
  -- the latest call's penalty, and whether it was made while tracing: a
  -- staged step's symbolic penalty is never read back by eager code
  rawset(self, "_activity_losses", { r })
  rawset(self, "_activity_traced", core.tracing() and true or false)
  return x
end
AR.compute_output_shape = same
function AR:get_config()
  local cfg = Layer.get_config(self)
  cfg.l1, cfg.l2 = self.l1, self.l2
  return cfg
end

return M
