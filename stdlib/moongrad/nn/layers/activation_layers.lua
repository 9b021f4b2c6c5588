-- moongrad.nn.layers.activation_layers: the activation layers (ReLU, LeakyReLU,
-- PReLU, ELU, Softmax), UnitNormalization, GroupNormalization, RepeatVector
-- and Permute, with Keras 3's options, defaults and weight layouts.
--
-- Each is a composition of existing ops, written as Keras 3 writes it so the
-- numbers agree (ReLU's threshold/negative_slope/max_value combination,
-- Softmax's mask as a large negative before and zeros after, UnitNormalization's
-- x * min(rsqrt(sum x^2), 1e12), GroupNormalization reshaping the channel axis
-- into (groups, channels/groups) and normalising each group). Axes are
-- moongrad's: 1-based, the batch axis 1, negatives from the end; Permute's dims
-- are Keras's (1-based, counted after the batch axis). Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local initializers = require("moongrad.nn.initializers")
local regularizers = require("moongrad.nn.regularizers")
local options = require("moongrad.options")

local M = {}
local R = util.rules
local function same(_, s) return util.copy(s) end

-- an axis (1-based, negatives from the end) of an ndim-d input, checked
local function axis_of(what, a, ndim)
  local ax = a < 0 and ndim + a + 1 or a
  if ax < 1 or ax > ndim then
    error(string.format("%s: axis %d is out of range for a %d-d input", what, a, ndim), 0)
  end
  return ax
end

-- ---- ReLU ----------------------------------------------------------------------------

--- mg.nn.ReLU{max_value=nil, negative_slope=0, threshold=0}: x for x > threshold, else
--- negative_slope * (x - threshold); clipped at max_value (Keras 3's ReLU layer).
local ReLU = Layer:extend("ReLU")
ReLU.supports_masking = true
M.ReLU = ReLU

function ReLU:__init(...)
  local cfg = self:_parse({}, { max_value = { "number", min = 0 }, negative_slope = { "number", min = 0 },
    threshold = { "number", min = 0 } }, ...)
  self.max_value = cfg.max_value
  self.negative_slope = cfg.negative_slope or 0
  self.threshold = cfg.threshold or 0
end

function ReLU:call(x)
  x = util.float_input(x, self.dtype)
  local ns, thr, mx = self.negative_slope, self.threshold, self.max_value
  if ns ~= 0 and mx == nil and thr == 0 then return mg.leaky_relu(x, ns) end
  local neg
  if ns ~= 0 then neg = mg.relu(thr - x) end
  local y
  if thr ~= 0 then y = mg.where(mg.greater(x, thr), x, mg.zeros_like(x)) else y = mg.relu(x) end
  if mx then y = mg.clip(y, 0, mx) end
  if neg then y = y - neg * ns end
  return y
end
ReLU.compute_output_shape = same

function ReLU:get_config()
  local cfg = Layer.get_config(self)
  cfg.max_value, cfg.negative_slope, cfg.threshold = self.max_value, self.negative_slope, self.threshold
  return cfg
end

-- ---- LeakyReLU, ELU --------------------------------------------------------------------

--- mg.nn.LeakyReLU{negative_slope=0.3}: x for x >= 0, negative_slope * x below (Keras 3's default 0.3).
local LeakyReLU = Layer:extend("LeakyReLU")
LeakyReLU.supports_masking = true
M.LeakyReLU = LeakyReLU

function LeakyReLU:__init(...)
  local cfg = self:_parse({ "negative_slope" }, { negative_slope = { "number", min = 0 } }, ...)
  self.negative_slope = cfg.negative_slope or 0.3
end
function LeakyReLU:call(x) return mg.leaky_relu(util.float_input(x, self.dtype), self.negative_slope) end
LeakyReLU.compute_output_shape = same
function LeakyReLU:get_config()
  local cfg = Layer.get_config(self)
  cfg.negative_slope = self.negative_slope
  return cfg
end

--- mg.nn.ELU{alpha=1}: x for x > 0, alpha * (exp(x) - 1) below.
local ELU = Layer:extend("ELU")
ELU.supports_masking = true
M.ELU = ELU

function ELU:__init(...)
  local cfg = self:_parse({ "alpha" }, { alpha = "number" }, ...)
  self.alpha = cfg.alpha or 1.0
end
function ELU:call(x)
  x = util.float_input(x, self.dtype)
  if self.alpha == 1 then return mg.elu(x) end
  return mg.where(mg.greater(x, 0), x, (mg.exp(mg.minimum(x, 0)) - 1) * self.alpha)
end
ELU.compute_output_shape = same
function ELU:get_config()
  local cfg = Layer.get_config(self)
  cfg.alpha = self.alpha
  return cfg
end

-- ---- PReLU -------------------------------------------------------------------------------

--- mg.nn.PReLU{alpha_initializer="zeros", alpha_regularizer=nil, shared_axes=nil}: relu(x) - alpha * relu(-x)
--- with a learned alpha of shape (input shape without the batch axis), size 1 on shared_axes (counted
--- after the batch axis, from 1, as Keras's).
local PReLU = Layer:extend("PReLU")
PReLU.supports_masking = true
M.PReLU = PReLU

function PReLU:__init(...)
  local cfg = self:_parse({}, { alpha_initializer = R.initializer, alpha_regularizer = R.regularizer,
    shared_axes = { "integer|table" } }, ...)
  self.alpha_initializer = initializers.get(cfg.alpha_initializer or "zeros")
  self.alpha_regularizer = regularizers.get(cfg.alpha_regularizer)
  local sa = cfg.shared_axes
  if type(sa) == "number" then sa = { sa } end
  self.shared_axes = sa and util.copy(sa) or nil
end

function PReLU:build(s)
  local p = {}
  for i = 2, #s do
    if s[i] == -1 then error("PReLU needs known sizes after the batch axis, got " .. util.shape_str(s), 0) end
    p[i - 1] = s[i]
  end
  for _, a in ipairs(self.shared_axes or {}) do
    if a < 1 or a > #p then
      error(string.format("PReLU: shared axis %d is out of range for input shape %s (axes 1..%d after the batch)",
        a, util.shape_str(s), #p), 0)
    end
    p[a] = 1
  end
  self.alpha = self:add_weight { name = "alpha", shape = p, initializer = self.alpha_initializer,
    regularizer = self.alpha_regularizer }
end

function PReLU:call(x)
  x = util.float_input(x, self.dtype)
  return mg.relu(x) - self.alpha * mg.relu(-x)
end
PReLU.compute_output_shape = same

function PReLU:get_config()
  local cfg = Layer.get_config(self)
  cfg.alpha_initializer = initializers.serialize(self.alpha_initializer)
  cfg.alpha_regularizer = regularizers.serialize(self.alpha_regularizer)
  cfg.shared_axes = self.shared_axes and util.copy(self.shared_axes) or nil
  return cfg
end

-- ---- Softmax -------------------------------------------------------------------------------

--- mg.nn.Softmax{axis=-1}: softmax over axis (a list: over those axes together). Called as
--- layer(x, {mask = m}), positions where m is false (or <= 0.5) get -1e9 before and 0 after.
local Softmax = Layer:extend("Softmax")
Softmax.supports_masking = true
M.Softmax = Softmax
Softmax.call_options = options.extend(Layer.call_options, { mask = "any" })

function Softmax:__init(...)
  local cfg = self:_parse({ "axis" }, { axis = R.axes }, ...)
  self.axis = cfg.axis or -1
end

function Softmax:call(x, _, opts)
  x = util.float_input(x, self.dtype)
  local nd = #x.shape
  local m = opts and opts.mask
  if m ~= nil then
    if not mg.is_tensor(m) then m = mg.tensor(m) end
    if #m.shape > nd then
      error(string.format("Softmax: the mask (shape %s) has more axes than the input %s", util.shape_str(m.shape),
        util.shape_str(x.shape)), 0)
    end
    if m.dtype ~= "bool" then m = mg.greater(mg.cast(m, "float32"), 0.5) end
    m = mg.broadcast_to(m, x.shape)
    x = mg.where(m, x, mg.full(x.shape, -1e9, x.dtype))
  end
  local axes = type(self.axis) == "table" and self.axis or { self.axis }
  local y
  if #axes == 1 then
    y = mg.softmax(x, axis_of("Softmax", axes[1], nd))
  else
    local list = {}
    for i, a in ipairs(axes) do list[i] = axis_of("Softmax", a, nd) end
    local mx = mg.stop_gradient(mg.max(x, { axis = list, keepdims = true }))
    local e = mg.exp(x - mx)
    y = e / mg.sum(e, { axis = list, keepdims = true })
  end
  if m ~= nil then y = mg.where(m, y, mg.zeros_like(y)) end
  return y
end
Softmax.compute_output_shape = same

function Softmax:get_config()
  local cfg = Layer.get_config(self)
  cfg.axis = type(self.axis) == "table" and util.copy(self.axis) or self.axis
  return cfg
end

-- ---- UnitNormalization ------------------------------------------------------------------------

--- mg.nn.UnitNormalization{axis=-1}: x / ||x|| over axis (a list: those axes); a zero vector stays zero.
local Unit = Layer:extend("UnitNormalization")
Unit.supports_masking = true
M.UnitNormalization = Unit

function Unit:__init(...)
  local cfg = self:_parse({ "axis" }, { axis = R.axes }, ...)
  self.axis = cfg.axis or -1
end

function Unit:call(x)
  x = util.float_input(x, self.dtype)
  local axes = type(self.axis) == "table" and self.axis or { self.axis }
  local list = {}
  for i, a in ipairs(axes) do list[i] = axis_of("UnitNormalization", a, #x.shape) end
  local ss = mg.sum(mg.square(x), { axis = list, keepdims = true })
  -- Keras: x * min(rsqrt(sum x^2), 1 / 1e-12)
  return x * mg.minimum(1 / mg.sqrt(ss), 1e12)
end
Unit.compute_output_shape = same

function Unit:get_config()
  local cfg = Layer.get_config(self)
  cfg.axis = type(self.axis) == "table" and util.copy(self.axis) or self.axis
  return cfg
end

-- ---- GroupNormalization -----------------------------------------------------------------------

--- mg.nn.GroupNormalization{groups=32, axis=-1, epsilon=0.001, center=true, scale=true}: splits the
--- channels of axis into groups and normalises each sample's group by its mean and variance; gamma and
--- beta have one value per channel. groups=-1 is instance normalisation (a group per channel).
local Group = Layer:extend("GroupNormalization")
Group.supports_masking = true
M.GroupNormalization = Group

function Group:__init(...)
  local cfg = self:_parse({}, { groups = { "integer", check = function(v)
    if v ~= -1 and v < 1 then return "must be a positive integer or -1 (instance normalization), got " .. v end
  end }, axis = "integer", epsilon = { "number", above = 0 }, center = "boolean", scale = "boolean",
    beta_initializer = R.initializer, gamma_initializer = R.initializer, beta_regularizer = R.regularizer,
    gamma_regularizer = R.regularizer }, ...)
  self.groups = cfg.groups or 32
  self.axis = cfg.axis or -1
  self.epsilon = cfg.epsilon or 1e-3
  self.center = cfg.center ~= false
  self.scale = cfg.scale ~= false
  self.beta_initializer = initializers.get(cfg.beta_initializer or "zeros")
  self.gamma_initializer = initializers.get(cfg.gamma_initializer or "ones")
  self.beta_regularizer = regularizers.get(cfg.beta_regularizer)
  self.gamma_regularizer = regularizers.get(cfg.gamma_regularizer)
end

function Group:build(s)
  local ax = axis_of("GroupNormalization", self.axis, #s)
  if ax == 1 then error("GroupNormalization: the batch axis 1 cannot be the channel axis", 0) end
  local dim = s[ax]
  if dim == -1 then error("GroupNormalization: the channel axis must have a known size, got " .. util.shape_str(s), 0) end
  local g = self.groups == -1 and dim or self.groups
  if dim < g or dim % g ~= 0 then
    error(string.format("GroupNormalization: groups (%d) must divide the number of channels (%d) of input %s", g,
      dim, util.shape_str(s)), 0)
  end
  self._g, self._ax, self._ndim = g, ax, #s
  if self.scale then
    self.gamma = self:add_weight { name = "gamma", shape = { dim }, initializer = self.gamma_initializer,
      regularizer = self.gamma_regularizer }
  end
  if self.center then
    self.beta = self:add_weight { name = "beta", shape = { dim }, initializer = self.beta_initializer,
      regularizer = self.beta_regularizer }
  end
end

function Group:call(x)
  x = util.float_input(x, self.dtype)
  local s = x.shape
  local ax, g = self._ax, self._g
  local dim = s[ax]
  -- (…, C, …) -> (…, G, C/G, …): reduce over every axis but the batch and the group one
  local gs, bs, red = {}, {}, {}
  for i = 1, #s do
    if i == ax then
      gs[#gs + 1] = g; bs[#bs + 1] = g
      gs[#gs + 1] = dim / g; bs[#bs + 1] = dim / g
      red[#red + 1] = #gs
    else
      gs[#gs + 1] = s[i]; bs[#bs + 1] = 1
      if i > 1 then red[#red + 1] = #gs end
    end
  end
  if math.tointeger then
    for i = 1, #gs do gs[i] = math.tointeger(gs[i]) or gs[i]; bs[i] = math.tointeger(bs[i]) or bs[i] end
  end
  local xr = mg.reshape(x, gs)
  local mean = mg.mean(xr, { axis = red, keepdims = true })
  local var = mg.variance(xr, { axis = red, keepdims = true })
  local inv = 1 / mg.sqrt(var + self.epsilon)
  if self.gamma then inv = inv * mg.reshape(self.gamma, bs) end
  local res = -mean * inv
  if self.beta then res = res + mg.reshape(self.beta, bs) end
  return mg.reshape(xr * inv + res, s)
end
Group.compute_output_shape = same

function Group:get_config()
  local cfg = Layer.get_config(self)
  cfg.groups, cfg.axis, cfg.epsilon, cfg.center, cfg.scale = self.groups, self.axis, self.epsilon, self.center,
    self.scale
  cfg.beta_initializer = initializers.serialize(self.beta_initializer)
  cfg.gamma_initializer = initializers.serialize(self.gamma_initializer)
  cfg.beta_regularizer = regularizers.serialize(self.beta_regularizer)
  cfg.gamma_regularizer = regularizers.serialize(self.gamma_regularizer)
  return cfg
end

-- ---- RepeatVector, Permute --------------------------------------------------------------------

--- mg.nn.RepeatVector(n): (batch, features) -> (batch, n, features).
local RepeatVector = Layer:extend("RepeatVector")
M.RepeatVector = RepeatVector
RepeatVector.passthrough_dtype = true

function RepeatVector:__init(...)
  local cfg = self:_parse({ "n" }, { n = R.positive_int }, ...)
  if cfg.n == nil then util.raise("RepeatVector: n is required (a positive integer)") end
  self.n = cfg.n
end
function RepeatVector:call(x)
  local s = x.shape
  if #s ~= 2 then error("RepeatVector expects a 2-d input (batch, features), got " .. util.shape_str(s), 0) end
  return mg.broadcast_to(mg.unsqueeze(x, 2), { s[1], self.n, s[2] }) + 0
end
function RepeatVector:compute_output_shape(s)
  if #s ~= 2 then error("RepeatVector expects a 2-d input (batch, features), got " .. util.shape_str(s), 0) end
  return { s[1], self.n, s[2] }
end
function RepeatVector:get_config()
  local cfg = Layer.get_config(self)
  cfg.n = self.n
  return cfg
end

--- mg.nn.Permute(dims): permutes the axes after the batch axis; dims are Keras's, numbered from 1
--- after the batch (Permute{2, 1} swaps the two axes of a (batch, a, b) input).
local Permute = Layer:extend("Permute")
M.Permute = Permute
Permute.list_argument = true
Permute.passthrough_dtype = true

function Permute:__init(...)
  local cfg = self:_parse({ "dims" }, { dims = "table" }, ...)
  local d = cfg.dims
  if type(d) ~= "table" or #d == 0 then util.raise("Permute: dims must be a list such as {2, 1}") end
  local seen = {}
  for i, v in ipairs(d) do
    if type(v) ~= "number" or v < 1 or v > #d or v ~= math.floor(v) or seen[v] then
      util.raise(string.format("Permute: dims must be a permutation of 1..%d, got %s (entry %d)", #d,
        util.shape_str(d), i))
    end
    seen[v] = true
  end
  self.dims = util.copy(d)
end
function Permute:call(x)
  if #x.shape ~= #self.dims + 1 then
    error(string.format("Permute with dims %s expects a %d-d input, got %s", util.shape_str(self.dims),
      #self.dims + 1, util.shape_str(x.shape)), 0)
  end
  local perm = { 1 }
  for i, v in ipairs(self.dims) do perm[i + 1] = v + 1 end
  return mg.permute(x, perm)
end
function Permute:compute_output_shape(s)
  if #s ~= #self.dims + 1 then
    error(string.format("Permute with dims %s expects a %d-d input, got %s", util.shape_str(self.dims),
      #self.dims + 1, util.shape_str(s)), 0)
  end
  local out = { s[1] }
  for i, v in ipairs(self.dims) do out[i + 1] = s[v + 1] end
  return out
end
function Permute:get_config()
  local cfg = Layer.get_config(self)
  cfg.dims = util.copy(self.dims)
  return cfg
end

return M
