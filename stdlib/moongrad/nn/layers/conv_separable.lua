-- moongrad.nn.layers.conv_separable: Keras 3's DepthwiseConv2D and
-- SeparableConv2D on NHWC images, over mg.depthwise_conv2d / mg.separable_conv2d.
-- Weights as Keras lays them out: depthwise_kernel (kh, kw, channels,
-- depth_multiplier), pointwise_kernel (1, 1, channels * depth_multiplier,
-- filters); output channel c*M + m comes from depthwise filter (:, :, c, m).
-- The shared option rules and output arithmetic live here once for both.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local activations = require("moongrad.nn.activations")
local initializers = require("moongrad.nn.initializers")
local regularizers = require("moongrad.nn.regularizers")
local options = require("moongrad.options")

local M = {}
local R = util.rules

local COMMON = { kernel_size = R.pair, strides = R.pair, padding = R.padding, data_format = R.channels_last,
  dilation_rate = R.pair, depth_multiplier = R.positive_int, activation = R.activation, use_bias = "boolean",
  depthwise_initializer = R.initializer, bias_initializer = R.initializer, depthwise_regularizer = R.regularizer,
  bias_regularizer = R.regularizer }

local function setup(self, positional, more, ...)
  local name = self.class_name
  local cfg = self:_parse(positional, more and options.extend(COMMON, more) or COMMON, ...)
  if cfg.kernel_size == nil then util.raise(name .. ": kernel_size is missing") end
  self.kernel_size = util.pair(cfg.kernel_size, "kernel_size", name)
  self.strides = util.pair(cfg.strides or 1, "strides", name)
  self.padding = (cfg.padding or "valid"):lower()
  self.dilation_rate = util.pair(cfg.dilation_rate or 1, "dilation_rate", name)
  self.depth_multiplier = cfg.depth_multiplier or 1
  self.activation = activations.get(cfg.activation)
  self.use_bias = cfg.use_bias ~= false
  self.depthwise_initializer = initializers.get(cfg.depthwise_initializer or "glorot_uniform")
  self.bias_initializer = initializers.get(cfg.bias_initializer or "zeros")
  self.depthwise_regularizer = regularizers.get(cfg.depthwise_regularizer)
  self.bias_regularizer = regularizers.get(cfg.bias_regularizer)
  return cfg
end

local function channels(s)
  if #s ~= 4 then
    error(string.format("expected a 4-d NHWC input (batch, height, width, channels), got shape %s",
      util.shape_str(s)), 0)
  end
  if s[4] == -1 then error("the channel dimension of the input must be known, got " .. util.shape_str(s), 0) end
  return s[4]
end

local function build_depthwise(self, s, bias_size)
  local c = channels(s)
  self.depthwise_kernel = self:add_weight { name = "depthwise_kernel",
    shape = { self.kernel_size[1], self.kernel_size[2], c, self.depth_multiplier },
    initializer = self.depthwise_initializer, regularizer = self.depthwise_regularizer }
  self._opts = { strides = self.strides, padding = self.padding, dilation = self.dilation_rate }
  return c
end

local function add_bias(self, n)
  if self.use_bias then
    self.bias = self:add_weight { name = "bias", shape = { n }, initializer = self.bias_initializer,
      regularizer = self.bias_regularizer }
  end
end

local function output_shape(self, s, out_channels)
  local c = channels(s)
  if c ~= self.depthwise_kernel.shape[3] then
    error(string.format("expected an input with %d channels, got shape %s", self.depthwise_kernel.shape[3],
      util.shape_str(s)), 0)
  end
  local out = { s[1] }
  for i = 1, 2 do
    local n, k, st, d = s[i + 1], self.kernel_size[i], self.strides[i], self.dilation_rate[i]
    if n == -1 then out[i + 1] = -1
    elseif self.padding == "same" then out[i + 1] = math.floor((n + st - 1) / st)
    else
      local keff = d * (k - 1) + 1
      if n < keff then
        error(string.format("the input %s is smaller than the kernel %dx%d with padding \"valid\"",
          util.shape_str(s), self.kernel_size[1], self.kernel_size[2]), 0)
      end
      out[i + 1] = math.floor((n - keff) / st) + 1
    end
  end
  out[4] = out_channels
  return out
end

local function base_config(self)
  local cfg = Layer.get_config(self)
  cfg.kernel_size = util.copy(self.kernel_size)
  cfg.strides = util.copy(self.strides)
  cfg.padding = self.padding
  cfg.data_format = "channels_last"
  cfg.dilation_rate = util.copy(self.dilation_rate)
  cfg.depth_multiplier = self.depth_multiplier
  cfg.activation = activations.serialize(self.activation)
  cfg.use_bias = self.use_bias
  cfg.depthwise_initializer = initializers.serialize(self.depthwise_initializer)
  cfg.bias_initializer = initializers.serialize(self.bias_initializer)
  cfg.depthwise_regularizer = regularizers.serialize(self.depthwise_regularizer)
  cfg.bias_regularizer = regularizers.serialize(self.bias_regularizer)
  return cfg
end

--- mg.nn.DepthwiseConv2D{kernel_size, strides=1, padding="valid", depth_multiplier=1, dilation_rate=1, activation=nil, use_bias=true, depthwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=nil, bias_regularizer=nil}
--- Each channel of NHWC input convolved with its own depth_multiplier filters: C*M output
--- channels. Weights depthwise_kernel (kh, kw, C, depth_multiplier) and bias (C*M), as Keras.
--- Example:
---   local dw = mg.nn.DepthwiseConv2D{kernel_size = 3, depth_multiplier = 2, padding = "same"}
---   print(dw(mg.ones{1, 8, 8, 3}).shape)   -- {1, 8, 8, 6}
local DepthwiseConv2D = Layer:extend("DepthwiseConv2D")
M.DepthwiseConv2D = DepthwiseConv2D

function DepthwiseConv2D:__init(...) setup(self, { "kernel_size" }, nil, ...) end

function DepthwiseConv2D:build(s)
  local c = build_depthwise(self, s)
  add_bias(self, c * self.depth_multiplier)
end

function DepthwiseConv2D:call(x)
  local y = mg.depthwise_conv2d(util.float_input(x, self.compute_dtype), self.depthwise_kernel, self._opts)
  if self.use_bias then y = y + self.bias end
  return self.activation(y)
end

function DepthwiseConv2D:compute_output_shape(s)
  return output_shape(self, s, self.depthwise_kernel.shape[3] * self.depth_multiplier)
end

function DepthwiseConv2D:get_config() return base_config(self) end

--- mg.nn.SeparableConv2D{filters, kernel_size, strides=1, padding="valid", depth_multiplier=1, dilation_rate=1, activation=nil, use_bias=true, depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=nil, pointwise_regularizer=nil, bias_regularizer=nil}
--- A depthwise convolution (each channel its own depth_multiplier filters) followed by a 1x1
--- convolution mixing the C*M channels into filters outputs (also SeparableConvolution2D).
--- Weights depthwise_kernel (kh, kw, C, M), pointwise_kernel (1, 1, C*M, filters), bias (filters).
local SeparableConv2D = Layer:extend("SeparableConv2D")
M.SeparableConv2D = SeparableConv2D
M.SeparableConvolution2D = SeparableConv2D

function SeparableConv2D:__init(...)
  local cfg = setup(self, { "filters", "kernel_size" }, { filters = R.positive_int,
    pointwise_initializer = R.initializer, pointwise_regularizer = R.regularizer }, ...)
  if cfg.filters == nil then util.raise("SeparableConv2D: filters is required (a positive integer)") end
  self.filters = cfg.filters
  self.pointwise_initializer = initializers.get(cfg.pointwise_initializer or "glorot_uniform")
  self.pointwise_regularizer = regularizers.get(cfg.pointwise_regularizer)
end

function SeparableConv2D:build(s)
  local c = build_depthwise(self, s)
  self.pointwise_kernel = self:add_weight { name = "pointwise_kernel",
    shape = { 1, 1, c * self.depth_multiplier, self.filters },
    initializer = self.pointwise_initializer, regularizer = self.pointwise_regularizer }
  add_bias(self, self.filters)
end

function SeparableConv2D:call(x)
  local y = mg.separable_conv2d(util.float_input(x, self.compute_dtype), self.depthwise_kernel,
    self.pointwise_kernel, self._opts)
  if self.use_bias then y = y + self.bias end
  return self.activation(y)
end

function SeparableConv2D:compute_output_shape(s) return output_shape(self, s, self.filters) end

function SeparableConv2D:get_config()
  local cfg = base_config(self)
  cfg.filters = self.filters
  cfg.pointwise_initializer = initializers.serialize(self.pointwise_initializer)
  cfg.pointwise_regularizer = regularizers.serialize(self.pointwise_regularizer)
  return cfg
end

return M
