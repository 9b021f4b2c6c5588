-- moongrad.nn.layers.conv_separable: Keras 3's DepthwiseConv1D/2D and
-- SeparableConv1D/2D, channels_last. The 2-d layers run mg.depthwise_conv2d /
-- mg.separable_conv2d; the 1-d ones run mg.conv1d with groups = channels on the
-- depthwise kernel reshaped to (k, 1, C*M) (the same grouped convolution the
-- 2-d composition is), then a pointwise conv1d. Weights as Keras lays them out:
-- depthwise_kernel (k..., channels, depth_multiplier), pointwise_kernel (1...,
-- channels * depth_multiplier, filters); output channel c*M + m comes from
-- depthwise filter (..., c, m). One factory per kind takes the number of
-- spatial axes (`rank`), so option rules, output arithmetic and configs are
-- shared by the 1-d and 2-d layers. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local activations = require("moongrad.nn.activations")
local initializers = require("moongrad.nn.initializers")
local regularizers = require("moongrad.nn.regularizers")
local options = require("moongrad.options")

local M = {}
local R = util.rules

local function is_pos_int(v) return type(v) == "number" and v >= 1 and v == math.floor(v) end

-- n | {n} for the 1-d layers (Keras accepts a 1-tuple), n | {h, w} for the 2-d ones.
local single = { "integer|table", check = function(v)
  if type(v) == "number" then
    if not is_pos_int(v) then return "must be a positive integer, got " .. tostring(v) end
  elseif #v ~= 1 or not is_pos_int(v[1]) then
    return "must be a positive integer or a list {n} of one, got " .. util.shape_str(v)
  end
end }
local TUPLE = { [1] = single, [2] = R.pair }

local function tuple(v, rank, what, name)
  if rank == 2 then return util.pair(v, what, name) end
  return { type(v) == "number" and v or v[1] }
end

local function common(rank)
  local T = TUPLE[rank]
  return { kernel_size = T, strides = T, padding = R.padding, data_format = R.channels_last,
    dilation_rate = T, depth_multiplier = R.positive_int, activation = R.activation, use_bias = "boolean",
    depthwise_initializer = R.initializer, bias_initializer = R.initializer, depthwise_regularizer = R.regularizer,
    bias_regularizer = R.regularizer }
end
local COMMON = { common(1), common(2) }

local function setup(self, rank, positional, more, ...)
  local name = self.class_name
  local cfg = self:_parse(positional, more and options.extend(COMMON[rank], more) or COMMON[rank], ...)
  if cfg.kernel_size == nil then util.raise(name .. ": kernel_size is missing") end
  self.kernel_size = tuple(cfg.kernel_size, rank, "kernel_size", name)
  self.strides = tuple(cfg.strides or 1, rank, "strides", name)
  self.padding = (cfg.padding or "valid"):lower()
  self.dilation_rate = tuple(cfg.dilation_rate or 1, rank, "dilation_rate", name)
  self.depth_multiplier = cfg.depth_multiplier or 1
  self.activation = activations.get(cfg.activation)
  self.use_bias = cfg.use_bias ~= false
  self.depthwise_initializer = initializers.get(cfg.depthwise_initializer or "glorot_uniform")
  self.bias_initializer = initializers.get(cfg.bias_initializer or "zeros")
  self.depthwise_regularizer = regularizers.get(cfg.depthwise_regularizer)
  self.bias_regularizer = regularizers.get(cfg.bias_regularizer)
  for i = 1, rank do
    if self.strides[i] > 1 and self.dilation_rate[i] > 1 then
      util.raise(string.format("%s: strides > 1 with dilation_rate > 1 is not supported (Keras forbids it too), "
        .. "got strides=%s, dilation_rate=%s", name, util.shape_str(self.strides), util.shape_str(self.dilation_rate)))
    end
  end
  return cfg
end

local LAYOUT = { [1] = "a 3-d NWC input (batch, steps, channels)", [2] = "a 4-d NHWC input (batch, height, width, channels)" }

local function channels(s, rank)
  if #s ~= rank + 2 then
    error(string.format("expected %s, got shape %s", LAYOUT[rank], util.shape_str(s)), 0)
  end
  if s[rank + 2] == -1 then error("the channel dimension of the input must be known, got " .. util.shape_str(s), 0) end
  return s[rank + 2]
end

local function build_depthwise(self, rank, s)
  local c = channels(s, rank)
  local kshape = util.copy(self.kernel_size)
  kshape[rank + 1], kshape[rank + 2] = c, self.depth_multiplier
  self.depthwise_kernel = self:add_weight { name = "depthwise_kernel", shape = kshape,
    initializer = self.depthwise_initializer, regularizer = self.depthwise_regularizer }
  if rank == 1 then
    self._opts = { strides = self.strides, padding = self.padding, dilation = self.dilation_rate, groups = c }
  else
    self._opts = { strides = self.strides, padding = self.padding, dilation = self.dilation_rate }
  end
  return c
end

local function add_bias(self, n)
  if self.use_bias then
    self.bias = self:add_weight { name = "bias", shape = { n }, initializer = self.bias_initializer,
      regularizer = self.bias_regularizer }
  end
end

-- The depthwise step: 2-d through mg.depthwise_conv2d, 1-d a grouped conv1d on the (k, 1, C*M) kernel.
local function depthwise(self, rank, x)
  local w = self.depthwise_kernel
  if rank == 2 then return mg.depthwise_conv2d(x, w, self._opts) end
  return mg.conv1d(x, mg.reshape(w, { w.shape[1], 1, w.shape[2] * w.shape[3] }), self._opts)
end

local function output_shape(self, rank, s, out_channels)
  local c = channels(s, rank)
  local want = self.depthwise_kernel.shape[rank + 1]
  if c ~= want then
    error(string.format("expected an input with %d channels, got shape %s", want, util.shape_str(s)), 0)
  end
  local out = { s[1] }
  for i = 1, rank do
    local n, k, st, d = s[i + 1], self.kernel_size[i], self.strides[i], self.dilation_rate[i]
    if n == -1 then out[i + 1] = -1
    elseif self.padding == "same" then out[i + 1] = math.floor((n + st - 1) / st)
    else
      local keff = d * (k - 1) + 1
      if n < keff then
        error(string.format("the input %s is smaller than the kernel %s with padding \"valid\"",
          util.shape_str(s), table.concat(self.kernel_size, "x")), 0)
      end
      out[i + 1] = math.floor((n - keff) / st) + 1
    end
  end
  out[rank + 2] = out_channels
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

local function depthwise_layer(name, rank)
  local cls = Layer:extend(name)
  M[name] = cls
  function cls:__init(...) setup(self, rank, { "kernel_size" }, nil, ...) end
  function cls:build(s)
    local c = build_depthwise(self, rank, s)
    add_bias(self, c * self.depth_multiplier)
  end
  function cls:call(x)
    local y = depthwise(self, rank, util.float_input(x, self.compute_dtype))
    if self.use_bias then y = y + self.bias end
    return self.activation(y)
  end
  function cls:compute_output_shape(s)
    return output_shape(self, rank, s, self.depthwise_kernel.shape[rank + 1] * self.depth_multiplier)
  end
  function cls:get_config() return base_config(self) end
  return cls
end

local function separable_layer(name, rank)
  local cls = Layer:extend(name)
  M[name] = cls
  function cls:__init(...)
    local cfg = setup(self, rank, { "filters", "kernel_size" }, { filters = R.positive_int,
      pointwise_initializer = R.initializer, pointwise_regularizer = R.regularizer }, ...)
    if cfg.filters == nil then util.raise(name .. ": filters is required (a positive integer)") end
    self.filters = cfg.filters
    self.pointwise_initializer = initializers.get(cfg.pointwise_initializer or "glorot_uniform")
    self.pointwise_regularizer = regularizers.get(cfg.pointwise_regularizer)
  end
  function cls:build(s)
    local c = build_depthwise(self, rank, s)
    local pshape = {}
    for i = 1, rank do pshape[i] = 1 end
    pshape[rank + 1], pshape[rank + 2] = c * self.depth_multiplier, self.filters
    self.pointwise_kernel = self:add_weight { name = "pointwise_kernel", shape = pshape,
      initializer = self.pointwise_initializer, regularizer = self.pointwise_regularizer }
    add_bias(self, self.filters)
  end
  function cls:call(x)
    x = util.float_input(x, self.compute_dtype)
    local y
    if rank == 2 then
      y = mg.separable_conv2d(x, self.depthwise_kernel, self.pointwise_kernel, self._opts)
    else
      y = mg.conv1d(depthwise(self, rank, x), self.pointwise_kernel)
    end
    if self.use_bias then y = y + self.bias end
    return self.activation(y)
  end
  function cls:compute_output_shape(s) return output_shape(self, rank, s, self.filters) end
  function cls:get_config()
    local cfg = base_config(self)
    cfg.filters = self.filters
    cfg.pointwise_initializer = initializers.serialize(self.pointwise_initializer)
    cfg.pointwise_regularizer = regularizers.serialize(self.pointwise_regularizer)
    return cfg
  end
  return cls
end

--- mg.nn.DepthwiseConv2D{kernel_size, strides=1, padding="valid", depth_multiplier=1, dilation_rate=1, activation=nil, use_bias=true, depthwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=nil, bias_regularizer=nil}
--- Each channel of NHWC input convolved with its own depth_multiplier filters: C*M output
--- channels. Weights depthwise_kernel (kh, kw, C, depth_multiplier) and bias (C*M), as Keras.
--- Example:
---   local dw = mg.nn.DepthwiseConv2D{kernel_size = 3, depth_multiplier = 2, padding = "same"}
---   print(dw(mg.ones{1, 8, 8, 3}).shape)   -- {1, 8, 8, 6}
depthwise_layer("DepthwiseConv2D", 2)
--- mg.nn.DepthwiseConv1D{kernel_size, strides=1, padding="valid", depth_multiplier=1, dilation_rate=1, activation=nil, use_bias=true, depthwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=nil, bias_regularizer=nil}
--- Each channel of NWC sequences (batch, steps, channels) convolved with its own
--- depth_multiplier filters: C*M output channels. Weights depthwise_kernel (k, C, M) and bias (C*M).
--- Example:
---   local dw = mg.nn.DepthwiseConv1D{kernel_size = 3, depth_multiplier = 2}
---   print(dw(mg.ones{1, 10, 4}).shape)   -- {1, 8, 8}
depthwise_layer("DepthwiseConv1D", 1)

--- mg.nn.SeparableConv2D{filters, kernel_size, strides=1, padding="valid", depth_multiplier=1, dilation_rate=1, activation=nil, use_bias=true, depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=nil, pointwise_regularizer=nil, bias_regularizer=nil}
--- A depthwise convolution (each channel its own depth_multiplier filters) followed by a 1x1
--- convolution mixing the C*M channels into filters outputs (also SeparableConvolution2D).
--- Weights depthwise_kernel (kh, kw, C, M), pointwise_kernel (1, 1, C*M, filters), bias (filters).
separable_layer("SeparableConv2D", 2)
--- mg.nn.SeparableConv1D{filters, kernel_size, strides=1, padding="valid", depth_multiplier=1, dilation_rate=1, activation=nil, use_bias=true, depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=nil, pointwise_regularizer=nil, bias_regularizer=nil}
--- The 1-d SeparableConv2D over NWC sequences (also SeparableConvolution1D): weights
--- depthwise_kernel (k, C, M), pointwise_kernel (1, C*M, filters), bias (filters).
separable_layer("SeparableConv1D", 1)
M.SeparableConvolution2D = M.SeparableConv2D
M.SeparableConvolution1D = M.SeparableConv1D

return M
