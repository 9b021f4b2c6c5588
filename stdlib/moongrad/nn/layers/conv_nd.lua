-- moongrad.nn.layers.conv_nd: the 1-d and 3-d convolutions and poolings of
-- Keras 3 (Conv1D, Conv3D, MaxPooling1D/3D, AveragePooling1D/3D and the
-- global poolings over steps or over depth, height and width), channels_last,
-- over the engine's conv1d / conv3d / max_pool1d / ... ops. One factory per
-- kind builds the class for a given number of spatial axes (`rank`), so the
-- option rules, output-shape arithmetic and configs are shared; Conv2D and the
-- 2-d poolings stay in conv.lua / pooling.lua. Kernels are laid out as Keras
-- does: (k, in/groups, filters) for Conv1D, (kd, kh, kw, in/groups, filters)
-- for Conv3D. Conv1D's padding="causal" pads dilation*(k-1) zeros on the
-- left only (an explicit {before, after} padding of the op), so output step t
-- sees inputs up to t. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local activations = require("moongrad.nn.activations")
local weight_options = require("moongrad.nn.weight_options")

local M = {}

local AXES = { [1] = "{width}", [2] = "{height, width}", [3] = "{depth, height, width}" }
local LAYOUT = { [1] = "NWC (batch, steps, channels)", [3] = "NDHWC (batch, depth, height, width, channels)" }

local function is_pos_int(v) return type(v) == "number" and v >= 1 and v == math.floor(v) end

-- The rule for n | {n1, ..., n_rank}: a positive integer or one per spatial axis.
local function tuple_rule(rank)
  return { "integer|table", check = function(v)
    if type(v) == "number" then
      if not is_pos_int(v) then return "must be a positive integer, got " .. tostring(v) end
      return nil
    end
    local ok = #v == rank
    for i = 1, rank do ok = ok and is_pos_int(v[i]) end
    if not ok then
      return string.format("must be a positive integer or a list %s of them, got %s", AXES[rank], util.shape_str(v))
    end
  end }
end

-- n | {..} -> a list of rank numbers (the rule above has checked the values).
local function tuple(v, rank)
  local out = {}
  for i = 1, rank do out[i] = type(v) == "number" and v or v[i] end
  return out
end

local function padding_rule(causal)
  return { "string", check = function(v)
    local l = v:lower()
    if l == "valid" or l == "same" or (causal and l == "causal") then return nil end
    if causal then return string.format("must be \"valid\", \"same\" or \"causal\", got %q", v) end
    return string.format("must be \"valid\" or \"same\", got %q", v)
  end }
end

-- The input's shape checked for rank+2 axes; returns its channel count.
local function check_input(s, rank)
  if #s ~= rank + 2 then
    error(string.format("expected a %d-d %s input, got shape %s", rank + 2, LAYOUT[rank], util.shape_str(s)), 0)
  end
  return s[rank + 2]
end

-- The output length of one spatial axis (Keras's conv_output_length); -1 stays unknown.
local function out_length(n, k, s, d, padding, in_shape, what)
  if n == -1 then return -1 end
  if padding == "same" or padding == "causal" then return math.floor((n + s - 1) / s) end
  local keff = d * (k - 1) + 1
  if n < keff then
    error(string.format("the input %s is smaller than the %s %d (dilated) with padding \"valid\"",
      util.shape_str(in_shape), what, keff), 0)
  end
  return math.floor((n - keff) / s) + 1
end

-- ---- Conv1D, Conv3D -------------------------------------------------------------------

-- The config both convolution factories write (the plain one adds groups, the transposed one
-- output_padding).
local function conv_config(self)
  local cfg = Layer.get_config(self)
  cfg.filters = self.filters
  cfg.kernel_size = util.copy(self.kernel_size)
  cfg.strides = util.copy(self.strides)
  cfg.padding = self.padding
  cfg.data_format = "channels_last"
  cfg.dilation_rate = util.copy(self.dilation_rate)
  cfg.activation = activations.serialize(self.activation)
  cfg.use_bias = self.use_bias
  return weight_options.write(self, cfg, weight_options.KERNEL_BIAS)
end

local function conv_layer(name, rank, op)
  local cls = Layer:extend(name)
  local T = tuple_rule(rank)
  local R = util.rules
  local spec = { filters = R.positive_int, kernel_size = T, strides = T, padding = padding_rule(rank == 1),
    data_format = R.channels_last, dilation_rate = T, groups = R.positive_int, activation = R.activation,
    use_bias = "boolean", kernel_initializer = R.initializer, bias_initializer = R.initializer,
    kernel_regularizer = R.regularizer, bias_regularizer = R.regularizer }

  function cls:__init(...)
    local cfg = self:_parse({ "filters", "kernel_size" }, spec, ...)
    if cfg.filters == nil then util.raise(name .. ": filters is required (a positive integer)") end
    if cfg.kernel_size == nil then util.raise(name .. ": kernel_size is missing") end
    self.filters = cfg.filters
    self.kernel_size = tuple(cfg.kernel_size, rank)
    self.strides = tuple(cfg.strides or 1, rank)
    self.padding = (cfg.padding or "valid"):lower()
    self.dilation_rate = tuple(cfg.dilation_rate or 1, rank)
    self.groups = cfg.groups or 1
    self.activation = activations.get(cfg.activation)
    self.use_bias = cfg.use_bias ~= false
    weight_options.read(self, cfg, weight_options.KERNEL_BIAS)
    if self.filters % self.groups ~= 0 then
      util.raise(string.format("%s: filters (%d) must be divisible by groups (%d)", name, self.filters, self.groups))
    end
    for i = 1, rank do
      if self.strides[i] > 1 and self.dilation_rate[i] > 1 then
        util.raise(string.format("%s: strides > 1 with dilation_rate > 1 is not supported (Keras forbids it too), "
          .. "got strides=%s, dilation_rate=%s", name, util.shape_str(self.strides), util.shape_str(self.dilation_rate)))
      end
    end
  end

  function cls:build(s)
    local c = check_input(s, rank)
    if c == -1 then error("the channel dimension of the input must be known, got " .. util.shape_str(s), 0) end
    if c % self.groups ~= 0 then
      error(string.format("the input's %d channels are not divisible by groups=%d", c, self.groups), 0)
    end
    local kshape = util.copy(self.kernel_size)
    kshape[rank + 1], kshape[rank + 2] = c / self.groups, self.filters
    self.kernel = self:add_weight { name = "kernel", shape = kshape, initializer = self.kernel_initializer,
      regularizer = self.kernel_regularizer }
    if self.use_bias then
      self.bias = self:add_weight { name = "bias", shape = { self.filters }, initializer = self.bias_initializer,
        regularizer = self.bias_regularizer }
    end
    local padding = self.padding
    if padding == "causal" then
      padding = { { self.dilation_rate[1] * (self.kernel_size[1] - 1), 0 } }
    end
    self._conv_opts = { strides = self.strides, padding = padding, dilation = self.dilation_rate,
      groups = self.groups }
  end

  function cls:call(x)
    local y = op(util.float_input(x, self.compute_dtype), self.kernel, self._conv_opts)
    if self.use_bias then y = y + self.bias end
    return self.activation(y)
  end

  function cls:compute_output_shape(s)
    local c = check_input(s, rank)
    local want = self.kernel.shape[rank + 1] * self.groups
    if c ~= want then
      error(string.format("expected an input with %d channels, got shape %s", want, util.shape_str(s)), 0)
    end
    local out = { s[1] }
    for i = 1, rank do
      out[i + 1] = out_length(s[i + 1], self.kernel_size[i], self.strides[i], self.dilation_rate[i], self.padding, s,
        "kernel")
    end
    out[rank + 2] = self.filters
    return out
  end

  function cls:get_config()
    local cfg = conv_config(self)
    cfg.groups = self.groups
    return cfg
  end
  M[name] = cls
  return cls
end

--- mg.nn.Conv1D{filters, kernel_size, strides=1, padding="valid", dilation_rate=1, groups=1, activation=nil, use_bias=true, kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=nil, bias_regularizer=nil}
--- A 1-d convolution over NWC sequences (batch, steps, channels): filters output
--- channels, a kernel_size window; padding "valid", "same" or "causal" (zeros on the
--- left only, so step t sees inputs up to t). Kernel (kernel_size, channels/groups, filters).
--- Example:
---   local conv = mg.nn.Conv1D{filters = 8, kernel_size = 3, padding = "causal"}
---   print(conv(mg.ones{2, 10, 4}).shape)   -- {2, 10, 8}
conv_layer("Conv1D", 1, mg.conv1d)
--- mg.nn.Conv3D{filters, kernel_size, strides=1, padding="valid", dilation_rate=1, groups=1, activation=nil, use_bias=true, kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=nil, bias_regularizer=nil}
--- A 3-d convolution over NDHWC volumes (batch, depth, height, width, channels);
--- kernel_size, strides and dilation_rate are a number or {d, h, w}; padding "valid" or
--- "same". Kernel (kd, kh, kw, channels/groups, filters).
conv_layer("Conv3D", 3, mg.conv3d)
M.Convolution1D, M.Convolution3D = M.Conv1D, M.Conv3D

-- ---- Conv1DTranspose, Conv3DTranspose ---------------------------------------------------

-- The transposed convolutions over the conv1d_transpose / conv3d_transpose ops; kernels
-- (k..., filters, in_channels) as Keras, output lengths from conv.lua's deconv_length (the
-- one Conv2DTranspose uses).
local deconv_length = require("moongrad.nn.layers.conv").deconv_length

local function transpose_layer(name, rank, op)
  local cls = Layer:extend(name)
  local T = tuple_rule(rank)
  local R = util.rules
  local P = { "integer|table", check = function(v)
    local function ok1(n) return type(n) == "number" and n >= 0 and n == math.floor(n) end
    local ok = ok1(v)
    if type(v) == "table" then
      ok = #v == rank
      for i = 1, rank do ok = ok and ok1(v[i]) end
    end
    if not ok then return string.format("must be a non-negative integer or a list %s of them", AXES[rank]) end
  end }
  local spec = { filters = R.positive_int, kernel_size = T, strides = T, padding = padding_rule(false),
    output_padding = P, data_format = R.channels_last, dilation_rate = T, activation = R.activation,
    use_bias = "boolean", kernel_initializer = R.initializer, bias_initializer = R.initializer,
    kernel_regularizer = R.regularizer, bias_regularizer = R.regularizer }

  function cls:__init(...)
    local cfg = self:_parse({ "filters", "kernel_size" }, spec, ...)
    if cfg.filters == nil then util.raise(name .. ": filters is required (a positive integer)") end
    if cfg.kernel_size == nil then util.raise(name .. ": kernel_size is missing") end
    self.filters = cfg.filters
    self.kernel_size = tuple(cfg.kernel_size, rank)
    self.strides = tuple(cfg.strides or 1, rank)
    self.padding = (cfg.padding or "valid"):lower()
    self.dilation_rate = tuple(cfg.dilation_rate or 1, rank)
    if cfg.output_padding ~= nil then
      self.output_padding = tuple(cfg.output_padding, rank)
      for i = 1, rank do
        if self.output_padding[i] >= self.strides[i] then
          util.raise(string.format("%s: output_padding %s must be smaller than strides %s on every axis", name,
            util.shape_str(self.output_padding), util.shape_str(self.strides)))
        end
      end
    end
    self.activation = activations.get(cfg.activation)
    self.use_bias = cfg.use_bias ~= false
    weight_options.read(self, cfg, weight_options.KERNEL_BIAS)
  end

  function cls:build(s)
    local c = check_input(s, rank)
    if c == -1 then error("the channel dimension of the input must be known, got " .. util.shape_str(s), 0) end
    local kshape = util.copy(self.kernel_size)
    kshape[rank + 1], kshape[rank + 2] = self.filters, c
    self.kernel = self:add_weight { name = "kernel", shape = kshape, initializer = self.kernel_initializer,
      regularizer = self.kernel_regularizer }
    if self.use_bias then
      self.bias = self:add_weight { name = "bias", shape = { self.filters }, initializer = self.bias_initializer,
        regularizer = self.bias_regularizer }
    end
    self._conv_opts = { strides = self.strides, padding = self.padding, dilation = self.dilation_rate,
      output_padding = self.output_padding }
  end

  function cls:call(x)
    local y = op(util.float_input(x, self.compute_dtype), self.kernel, self._conv_opts)
    if self.use_bias then y = y + self.bias end
    return self.activation(y)
  end

  function cls:compute_output_shape(s)
    local c = check_input(s, rank)
    local want = self.kernel.shape[rank + 2]
    if c ~= want then
      error(string.format("expected an input with %d channels, got shape %s", want, util.shape_str(s)), 0)
    end
    local out = { s[1] }
    for i = 1, rank do
      out[i + 1] = deconv_length(s[i + 1], self.kernel_size[i], self.strides[i], self.dilation_rate[i], self.padding,
        self.output_padding and self.output_padding[i])
    end
    out[rank + 2] = self.filters
    return out
  end

  function cls:get_config()
    local cfg = conv_config(self)
    cfg.output_padding = self.output_padding and util.copy(self.output_padding) or nil
    return cfg
  end
  M[name] = cls
  return cls
end

--- mg.nn.Conv1DTranspose{filters, kernel_size, strides=1, padding="valid", output_padding=nil, dilation_rate=1, activation=nil, use_bias=true, kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=nil, bias_regularizer=nil}
--- The transpose of Conv1D over NWC sequences (also Convolution1DTranspose): upsamples the
--- steps by strides. Kernel (kernel_size, filters, in_channels), as Keras.
--- Example:
---   local up = mg.nn.Conv1DTranspose{filters = 4, kernel_size = 3, strides = 2, padding = "same"}
---   print(up(mg.ones{2, 5, 3}).shape)   -- {2, 10, 4}
transpose_layer("Conv1DTranspose", 1, mg.conv1d_transpose)
--- mg.nn.Conv3DTranspose{filters, kernel_size, strides=1, padding="valid", output_padding=nil, dilation_rate=1, activation=nil, use_bias=true, kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=nil, bias_regularizer=nil}
--- The transpose of Conv3D over NDHWC volumes (also Convolution3DTranspose); kernel_size,
--- strides, output_padding a number or {d, h, w}. Kernel (kd, kh, kw, filters, in_channels).
transpose_layer("Conv3DTranspose", 3, mg.conv3d_transpose)
M.Convolution1DTranspose, M.Convolution3DTranspose = M.Conv1DTranspose, M.Conv3DTranspose

-- ---- MaxPooling1D/3D, AveragePooling1D/3D ----------------------------------------------

local function pool_layer(name, rank, op)
  local cls = Layer:extend(name)
  cls.passthrough_dtype = true
  local T = tuple_rule(rank)
  function cls:__init(...)
    local cfg = self:_parse({ "pool_size", "strides", "padding" }, { pool_size = T, strides = T,
      padding = padding_rule(false), data_format = util.rules.channels_last }, ...)
    self.pool_size = tuple(cfg.pool_size or 2, rank)
    self.strides = tuple(cfg.strides or self.pool_size, rank)
    self.padding = (cfg.padding or "valid"):lower()
    self._opts = { ksize = self.pool_size, strides = self.strides, padding = self.padding }
  end
  function cls:call(x) return op(x, self._opts) end
  function cls:compute_output_shape(s)
    local c = check_input(s, rank)
    local out = { s[1] }
    for i = 1, rank do
      out[i + 1] = out_length(s[i + 1], self.pool_size[i], self.strides[i], 1, self.padding, s, "pool size")
    end
    out[rank + 2] = c
    return out
  end
  function cls:get_config()
    local cfg = Layer.get_config(self)
    cfg.pool_size = util.copy(self.pool_size)
    cfg.strides = util.copy(self.strides)
    cfg.padding = self.padding
    cfg.data_format = "channels_last"
    return cfg
  end
  M[name] = cls
  return cls
end

local function avg(op) return function(x, o) return op(util.float_input(x), o) end end

--- mg.nn.MaxPooling1D{pool_size=2, strides=pool_size, padding="valid"}: the maximum of each window of NWC sequences (also MaxPool1D).
pool_layer("MaxPooling1D", 1, mg.max_pool1d)
--- mg.nn.AveragePooling1D{pool_size=2, strides=pool_size, padding="valid"}: the mean of each window of NWC sequences (also AvgPool1D); "same" windows average only their positions inside the input.
pool_layer("AveragePooling1D", 1, avg(mg.avg_pool1d))
--- mg.nn.MaxPooling3D{pool_size=2, strides=pool_size, padding="valid"}: the maximum of each window of NDHWC volumes (also MaxPool3D).
pool_layer("MaxPooling3D", 3, mg.max_pool3d)
--- mg.nn.AveragePooling3D{pool_size=2, strides=pool_size, padding="valid"}: the mean of each window of NDHWC volumes (also AvgPool3D).
pool_layer("AveragePooling3D", 3, avg(mg.avg_pool3d))
M.MaxPool1D, M.AvgPool1D, M.MaxPool3D, M.AvgPool3D = M.MaxPooling1D, M.AveragePooling1D, M.MaxPooling3D,
  M.AveragePooling3D

-- ---- the global poolings --------------------------------------------------------------

local function global_layer(name, rank, reduce)
  local cls = Layer:extend(name)
  cls.passthrough_dtype = true
  local axes = {}
  for i = 1, rank do axes[i] = i + 1 end
  function cls:__init(...)
    local cfg = self:_parse({}, { data_format = util.rules.channels_last, keepdims = "boolean" }, ...)
    self.keepdims = cfg.keepdims and true or false
  end
  function cls:call(x, _, opts)
    local o = { axis = axes, keepdims = self.keepdims }
    local mask = opts and opts.mask
    if mask and self.masked_mean then return self.masked_mean(x, mask, o) end
    return reduce(x, o)
  end
  function cls:compute_output_shape(s)
    local c = check_input(s, rank)
    if not self.keepdims then return { s[1], c } end
    local out = { s[1] }
    for i = 1, rank do out[i + 1] = 1 end
    out[rank + 2] = c
    return out
  end
  function cls:get_config()
    local cfg = Layer.get_config(self)
    cfg.keepdims = self.keepdims
    cfg.data_format = "channels_last"
    return cfg
  end
  M[name] = cls
end

local function mean(x, o) return mg.mean(util.float_input(x), o) end

-- GlobalAveragePooling1D with a (batch, steps) mask: the mean of the real
-- steps (Keras's sum of the kept steps over their count; a sequence with no
-- real step divides 0 by 0, as in Keras). Its output has no mask.
local function masked_mean(x, mask, o)
  x = util.float_input(x)
  local keep = mg.unsqueeze(mask, -1)
  if keep.dtype ~= "bool" then keep = mg.cast(keep, "bool") end
  local kept = mg.where(keep, x, mg.zeros({}, x.dtype))
  return mg.sum(kept, o) / mg.sum(mg.cast(keep, x.dtype), o)
end

--- mg.nn.GlobalAveragePooling1D{keepdims=false}: the mean over the steps of NWC sequences, (batch, channels) (also GlobalAvgPool1D).
global_layer("GlobalAveragePooling1D", 1, mean)
-- Keras 3: GlobalAveragePooling1D alone of the global poolings takes a mask
M.GlobalAveragePooling1D.supports_masking = true
M.GlobalAveragePooling1D.masked_mean = masked_mean
function M.GlobalAveragePooling1D.compute_mask() return nil end
--- mg.nn.GlobalMaxPooling1D{keepdims=false}: the maximum over the steps of NWC sequences, (batch, channels) (also GlobalMaxPool1D).
global_layer("GlobalMaxPooling1D", 1, mg.max)
--- mg.nn.GlobalAveragePooling3D{keepdims=false}: the mean over depth, height and width of NDHWC volumes (also GlobalAvgPool3D).
global_layer("GlobalAveragePooling3D", 3, mean)
--- mg.nn.GlobalMaxPooling3D{keepdims=false}: the maximum over depth, height and width of NDHWC volumes (also GlobalMaxPool3D).
global_layer("GlobalMaxPooling3D", 3, mg.max)
M.GlobalAvgPool1D, M.GlobalMaxPool1D = M.GlobalAveragePooling1D, M.GlobalMaxPooling1D
M.GlobalAvgPool3D, M.GlobalMaxPool3D = M.GlobalAveragePooling3D, M.GlobalMaxPooling3D

return M
