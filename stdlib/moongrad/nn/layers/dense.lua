-- moongrad.nn.layers.dense: Dense, the fully connected layer:
-- activation(x @ kernel + bias) over the last axis of x (leading axes are
-- batch axes). Keras's arguments, weights kernel (in, units) and bias (units).
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local activations = require("moongrad.nn.activations")
local weight_options = require("moongrad.nn.weight_options")

--- mg.nn.Dense{units, activation=nil, use_bias=true, kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=nil, bias_regularizer=nil}
--- The fully connected layer: activation(x @ kernel + bias) over the last axis of x
--- (leading axes are batch axes); kernel has shape (in, units), bias (units).
--- Also mg.nn.Dense(units, {options}).
---   units               the output size (required, a positive integer)
---   activation          a name ("relu", "softmax", ...) or a function; nil: none
---   use_bias            add the bias vector (default true)
--- Example:
---   local d = mg.nn.Dense{units = 4, activation = "relu"}
---   print(d(mg.ones{2, 3}).shape)   -- {2, 4}
local Dense = Layer:extend("Dense")
Dense.supports_masking = true

local R = util.rules
local OPTIONS = { units = R.positive_int, activation = R.activation, use_bias = "boolean",
  kernel_initializer = R.initializer, bias_initializer = R.initializer, kernel_regularizer = R.regularizer,
  bias_regularizer = R.regularizer }

function Dense:__init(...)
  local cfg = self:_parse({ "units" }, OPTIONS, ...)
  if cfg.units == nil then util.raise("Dense: units is required (a positive integer)") end
  self.units = cfg.units
  self.activation = activations.get(cfg.activation)
  self.use_bias = cfg.use_bias ~= false
  weight_options.read(self, cfg, weight_options.KERNEL_BIAS)
end

function Dense:build(input_shape)
  local n = input_shape[#input_shape]
  if #input_shape < 1 or n == nil or n == -1 then
    error("Dense needs a known last dimension, got input shape " .. util.shape_str(input_shape), 0)
  end
  self.kernel = self:add_weight { name = "kernel", shape = { n, self.units }, initializer = self.kernel_initializer,
    regularizer = self.kernel_regularizer }
  if self.use_bias then
    self.bias = self:add_weight { name = "bias", shape = { self.units }, initializer = self.bias_initializer,
      regularizer = self.bias_regularizer }
  end
end

function Dense:call(x)
  local shape = x.shape
  local n = self.kernel.shape[1]
  if #shape < 1 or (type(shape[#shape]) == "number" and shape[#shape] ~= n) then
    -- before matmul's "inner dimensions differ": the layer's view, with the likely fix
    error(util.input_mismatch(nil, { -1, n }, shape), 0)
  end
  local y = mg.matmul(util.float_input(x, self.compute_dtype), self.kernel)
  if self.use_bias then y = y + self.bias end
  return self.activation(y)
end

function Dense:compute_output_shape(s)
  local n = self.kernel.shape[1]
  if #s < 1 or (s[#s] ~= -1 and s[#s] ~= n) then
    error(string.format("expected an input whose last dimension is %d, got shape %s", n, util.shape_str(s)), 0)
  end
  local out = util.copy(s)
  out[#out] = self.units
  return out
end

function Dense:get_config()
  local cfg = Layer.get_config(self)
  cfg.units = self.units
  cfg.activation = activations.serialize(self.activation)
  cfg.use_bias = self.use_bias
  weight_options.write(self, cfg, weight_options.KERNEL_BIAS)
  return cfg
end

return Dense
