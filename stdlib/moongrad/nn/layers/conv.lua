-- moongrad.nn.layers.conv: Conv2D and Conv2DTranspose on NHWC images
-- (Keras's channels_last), over the engine's conv2d / conv2d_transpose ops.
-- Kernels are (height, width, in_channels/groups, filters) for Conv2D and
-- (height, width, filters, in_channels) for Conv2DTranspose, as in Keras.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local activations = require("moongrad.nn.activations")
local weight_options = require("moongrad.nn.weight_options")

local M = {}

local R = util.rules
local OPTIONS = { filters = R.positive_int, kernel_size = R.pair, strides = R.pair, padding = R.padding,
  data_format = R.channels_last, dilation_rate = R.pair, groups = R.positive_int, activation = R.activation,
  use_bias = "boolean", kernel_initializer = R.initializer, bias_initializer = R.initializer,
  kernel_regularizer = R.regularizer, bias_regularizer = R.regularizer }

-- The common arguments of both layers (`more`: the rules of a layer's own options).
local function setup(self, more, ...)
  local spec = OPTIONS
  if more then spec = require("moongrad.options").extend(OPTIONS, more) end
  local cfg = self:_parse({ "filters", "kernel_size" }, spec, ...)
  local name = self.class_name
  if cfg.filters == nil then util.raise(name .. ": filters is required (a positive integer)") end
  if cfg.kernel_size == nil then util.raise(name .. ": kernel_size is missing") end
  local padding = (cfg.padding or "valid"):lower()
  self.filters = cfg.filters
  self.kernel_size = util.pair(cfg.kernel_size, "kernel_size", name)
  self.strides = util.pair(cfg.strides or 1, "strides", name)
  self.padding = padding
  self.dilation_rate = util.pair(cfg.dilation_rate or 1, "dilation_rate", name)
  self.groups = cfg.groups or 1
  self.activation = activations.get(cfg.activation)
  self.use_bias = cfg.use_bias ~= false
  weight_options.read(self, cfg, weight_options.KERNEL_BIAS)
  return cfg
end

local function channels(self, s)
  if #s ~= 4 then
    error(string.format("expected a 4-d NHWC input (batch, height, width, channels), got shape %s",
      util.shape_str(s)), 0)
  end
  if s[4] == -1 then error("the channel dimension of the input must be known, got " .. util.shape_str(s), 0) end
  return s[4]
end

local function add_bias(self)
  if self.use_bias then
    self.bias = self:add_weight { name = "bias", shape = { self.filters }, initializer = self.bias_initializer,
      regularizer = self.bias_regularizer }
  end
end

local function base_config(self)
  local cfg = Layer.get_config(self)
  cfg.filters = self.filters
  cfg.kernel_size = util.copy(self.kernel_size)
  cfg.strides = util.copy(self.strides)
  cfg.padding = self.padding
  cfg.data_format = "channels_last"
  cfg.dilation_rate = util.copy(self.dilation_rate)
  cfg.activation = activations.serialize(self.activation)
  cfg.use_bias = self.use_bias
  weight_options.write(self, cfg, weight_options.KERNEL_BIAS)
  return cfg
end

local function check_channels(self, s, expected)
  local c = channels(self, s)
  if c ~= expected then
    error(string.format("expected an input with %d channels, got shape %s", expected, util.shape_str(s)), 0)
  end
end

-- ---- Conv2D --------------------------------------------------------------------------

--- mg.nn.Conv2D{filters, kernel_size, strides=1, padding="valid", dilation_rate=1, groups=1, activation=nil, use_bias=true, kernel_initializer="glorot_uniform", bias_initializer="zeros"}
--- A 2-d convolution over NHWC input (batch, height, width, channels): filters
--- output channels, a kernel_size window (a number or {h, w}); padding "valid" or "same".
--- Example:
---   local conv = mg.nn.Conv2D{filters = 8, kernel_size = 3, padding = "same"}
---   print(conv(mg.ones{1, 28, 28, 1}).shape)   -- {1, 28, 28, 8}
local Conv2D = Layer:extend("Conv2D")
M.Conv2D = Conv2D

function Conv2D:__init(...)
  setup(self, nil, ...)
  if self.filters % self.groups ~= 0 then
    util.raise(string.format("Conv2D: filters (%d) must be divisible by groups (%d)", self.filters, self.groups))
  end
end

function Conv2D:build(s)
  local c = channels(self, s)
  if c % self.groups ~= 0 then
    error(string.format("the input's %d channels are not divisible by groups=%d", c, self.groups), 0)
  end
  self.kernel = self:add_weight { name = "kernel",
    shape = { self.kernel_size[1], self.kernel_size[2], c / self.groups, self.filters },
    initializer = self.kernel_initializer, regularizer = self.kernel_regularizer }
  add_bias(self)
  self._conv_opts = { strides = self.strides, padding = self.padding, dilation = self.dilation_rate,
    groups = self.groups }
end

function Conv2D:call(x)
  local y = mg.conv2d(util.float_input(x, self.compute_dtype), self.kernel, self._conv_opts)
  if self.use_bias then y = y + self.bias end
  return self.activation(y)
end

local function conv_length(n, k, s, d, padding, in_shape, ks)
  if n == -1 then return -1 end
  if padding == "same" then return math.floor((n + s - 1) / s) end
  local keff = d * (k - 1) + 1
  if n < keff then
    error(string.format("the input %s is smaller than the kernel %dx%d with padding \"valid\"",
      util.shape_str(in_shape), ks[1], ks[2]), 0)
  end
  return math.floor((n - keff) / s) + 1
end

function Conv2D:compute_output_shape(s)
  check_channels(self, s, self.kernel.shape[3] * self.groups)
  local out = { s[1] }
  for i = 1, 2 do
    out[i + 1] = conv_length(s[i + 1], self.kernel_size[i], self.strides[i], self.dilation_rate[i], self.padding, s,
      self.kernel_size)
  end
  out[4] = self.filters
  return out
end

function Conv2D:get_config()
  local cfg = base_config(self)
  cfg.groups = self.groups
  return cfg
end

-- ---- Conv2DTranspose ---------------------------------------------------------------------

--- mg.nn.Conv2DTranspose{filters, kernel_size, strides=1, padding="valid", activation=nil, use_bias=true, ...}
--- The transpose of Conv2D (a "deconvolution"): upsamples NHWC input by strides.
local Conv2DTranspose = Layer:extend("Conv2DTranspose")
M.Conv2DTranspose = Conv2DTranspose

function Conv2DTranspose:__init(...)
  local cfg = setup(self, { groups = util.unsupported(1), output_padding = { "integer|table",
    check = function(v)
      local ok = type(v) == "number" and v >= 0 and v == math.floor(v)
      if type(v) == "table" then
        ok = #v == 2
        for i = 1, 2 do ok = ok and type(v[i]) == "number" and v[i] >= 0 and v[i] == math.floor(v[i]) end
      end
      if not ok then return "must be a non-negative integer or a pair of them" end
    end } }, ...)
  if cfg.output_padding ~= nil then
    self.output_padding = util.pair(cfg.output_padding, "output_padding", "Conv2DTranspose")
  end
end

function Conv2DTranspose:build(s)
  local c = channels(self, s)
  self.kernel = self:add_weight { name = "kernel",
    shape = { self.kernel_size[1], self.kernel_size[2], self.filters, c },
    initializer = self.kernel_initializer, regularizer = self.kernel_regularizer }
  add_bias(self)
  self._conv_opts = { strides = self.strides, padding = self.padding, dilation = self.dilation_rate,
    output_padding = self.output_padding }
end

function Conv2DTranspose:call(x)
  local y = mg.conv2d_transpose(util.float_input(x, self.compute_dtype), self.kernel, self._conv_opts)
  if self.use_bias then y = y + self.bias end
  return self.activation(y)
end

-- Keras's deconv_output_length.
local function deconv_length(n, k, s, d, padding, output_padding)
  if n == -1 then return -1 end
  k = k + (k - 1) * (d - 1)
  if output_padding == nil then
    if padding == "valid" then return n * s + math.max(k - s, 0) end
    return n * s
  end
  local pad = padding == "same" and math.floor(k / 2) or 0
  return (n - 1) * s + k - 2 * pad + output_padding
end
M.deconv_length = deconv_length   -- shared with conv_nd's Conv1DTranspose / Conv3DTranspose

function Conv2DTranspose:compute_output_shape(s)
  check_channels(self, s, self.kernel.shape[4])
  local out = { s[1] }
  for i = 1, 2 do
    out[i + 1] = deconv_length(s[i + 1], self.kernel_size[i], self.strides[i], self.dilation_rate[i], self.padding,
      self.output_padding and self.output_padding[i])
  end
  out[4] = self.filters
  return out
end

function Conv2DTranspose:get_config()
  local cfg = base_config(self)
  cfg.output_padding = self.output_padding and util.copy(self.output_padding) or nil
  return cfg
end

return M
