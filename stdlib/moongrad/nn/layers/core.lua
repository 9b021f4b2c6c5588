-- moongrad.nn.layers.core: the small layers: InputLayer (and nn.Input),
-- Activation, Dropout, Lambda.
--
-- Dropout draws its mask from the engine's seeded dropout op. The seed is a
-- per-layer int64 Variable read and advanced on every training call, so a
-- staged train step gets a new mask each step without retracing, and
-- mg.random.seed makes runs reproducible. The Variable is the layer's state,
-- not a weight (it has no parameters, as in Keras).
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local node = require("moongrad.nn.node")
local activations = require("moongrad.nn.activations")

local M = {}

-- ---- InputLayer / Input -----------------------------------------------------------------

--- mg.nn.InputLayer{shape=, batch_size=, dtype="float32", name=}: the layer mg.nn.Input{...} makes; its
--- output is the model's symbolic input.
local InputLayer = Layer:extend("InputLayer")
InputLayer.list_argument = true   -- InputLayer{28, 28, 1} is one shape
-- an input may hold any dtype (int64 ids for an Embedding, uint8 images)
InputLayer.base_options = require("moongrad.options").extend(Layer.base_options,
  { dtype = { "string", one_of = { "float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64",
    "uint8", "bool" } } })
M.InputLayer = InputLayer
InputLayer.default_name = "input"

function InputLayer:__init(...)
  local cfg = self:_parse({ "shape" }, { shape = util.rules.shape, sparse = util.unsupported(false),
    ragged = util.unsupported(false) }, ...)
  local shape = cfg.batch_input_shape
  if not shape then
    local s = cfg.shape or cfg.input_shape
    if type(s) == "number" then s = { s } end
    if type(s) ~= "table" then
      util.raise("Input: shape must be a list of sizes without the batch axis (-1 for unknown), got " .. tostring(s))
    end
    shape = { cfg.batch_size or -1 }
    for i, d in ipairs(s) do
      if type(d) ~= "number" or (d < 0 and d ~= -1) then
        util.raise(string.format("Input: shape entry %d must be a size or -1, got %s", i, tostring(d)))
      end
      shape[i + 1] = d
    end
  end
  rawset(self, "_batch_input_shape", util.copy(shape))
  rawset(self, "built", true)
  -- the data's dtype, not a policy's: float32 unless given, even under a mixed global policy
  local dt = cfg.dtype or "float32"
  rawset(self, "dtype_policy", nil)
  rawset(self, "dtype", dt)
  rawset(self, "variable_dtype", dt)
  rawset(self, "compute_dtype", dt)
  local kt = node.KerasTensor(util.copy(shape), self.dtype, nil, 1, self.name)
  local n = node.Node(self, {}, true, {})
  n.outputs = { kt }
  n.single_output = true
  kt.node = n
  local nodes = rawget(self, "_inbound_nodes")
  nodes[1] = n
end

function InputLayer:call(x) return x end
function InputLayer:compute_output_shape(s) return s end

function InputLayer:get_config()
  return { name = self.name, dtype = self.dtype, batch_input_shape = util.copy(rawget(self, "_batch_input_shape")) }
end

-- nn.Input{shape={784}, dtype=, name=, batch_size=}: a Keras tensor to
-- start a functional model from.
function M.Input(...)
  local layer = InputLayer(...)
  return layer.output
end

-- ---- Activation --------------------------------------------------------------------------

--- mg.nn.Activation(activation): applies an activation ("relu", "softmax", a function, ...) to its input.
local Activation = Layer:extend("Activation")
M.Activation = Activation
Activation.supports_masking = true

function Activation:__init(...)
  local cfg = self:_parse({ "activation" }, { activation = util.rules.activation }, ...)
  self.activation = activations.get(cfg.activation)
end

function Activation:call(x) return self.activation(util.float_input(x, self.compute_dtype)) end
function Activation:compute_output_shape(s) return util.copy(s) end

function Activation:get_config()
  local cfg = Layer.get_config(self)
  cfg.activation = activations.serialize(self.activation)
  return cfg
end

-- ---- Dropout ----------------------------------------------------------------------------------

--- mg.nn.Dropout{rate, seed=}: zeroes a fraction rate of the inputs in training (scaling the
--- rest by 1 / (1 - rate)); the identity in inference.
local Dropout = Layer:extend("Dropout")
M.Dropout = Dropout
Dropout.passthrough_dtype = true
Dropout.supports_masking = true   -- and so the SpatialDropouts, which extend it (as in Keras)

function Dropout:__init(...)
  local cfg = self:_parse({ "rate" }, { rate = { "number", min = 0, below = 1 }, seed = "integer",
    noise_shape = util.unsupported(nil) }, ...)
  local rate = cfg.rate
  if rate == nil then util.raise("Dropout: rate is required (a number in [0, 1))") end
  self.rate = rate
  self.seed = cfg.seed
end

local seed_counter = 0

function Dropout:build()
  -- from mg.random (so mg.random.seed applies); while tracing no value can
  -- be drawn, so a layer first built inside mg.func counts instead
  seed_counter = seed_counter + 1
  local s = self.seed
  if not s then
    s = core.tracing() and (7919 * seed_counter) or mg.random.integers({ 1 }, 1, 2147483646):item()
  end
  rawset(self, "_seed_var", self:_add_state("seed",
    mg.Variable(mg.tensor(s, "int64"), { name = self.name .. "/seed", trainable = false })))
end

function Dropout:call(x, training)
  if not training or self.rate == 0 then return x end
  local sv = rawget(self, "_seed_var")
  local s = core.tracing() and sv:read() or mg.tensor(sv)
  sv:assign(s + 1)
  return mg.dropout(x, s, self.rate)
end

function Dropout:compute_output_shape(s) return util.copy(s) end

function Dropout:get_config()
  local cfg = Layer.get_config(self)
  cfg.rate = self.rate
  cfg.seed = self.seed
  return cfg
end

-- ---- Rescaling ----------------------------------------------------------------------------------

-- Rescaling{scale=1/255, offset=0}: x * scale + offset, in float (images kept
-- as uint8 until they reach the model).
local Rescaling = Layer:extend("Rescaling")
M.Rescaling = Rescaling
Rescaling.supports_masking = true

function Rescaling:__init(...)
  local cfg = self:_parse({ "scale", "offset" }, { scale = "number", offset = "number" }, ...)
  if type(cfg.scale) ~= "number" then util.raise("Rescaling: scale must be a number, got " .. tostring(cfg.scale)) end
  self.scale = cfg.scale
  self.offset = cfg.offset or 0
end

function Rescaling:call(x)
  local y = util.float_input(x, self.compute_dtype) * self.scale
  if self.offset ~= 0 then y = y + self.offset end
  return y
end

function Rescaling:compute_output_shape(s) return util.copy(s) end

function Rescaling:get_config()
  local cfg = Layer.get_config(self)
  cfg.scale = self.scale
  cfg.offset = self.offset
  return cfg
end

-- ---- Lambda -----------------------------------------------------------------------------------

--- mg.nn.Lambda(fn, {output_shape=, mask=}): a layer whose call is fn(x) (no weights). mask
--- (Keras's) gives its output's mask: a function(inputs, input_mask) -> mask, or a bool tensor;
--- without it the layer takes no mask (a masked input warns and the mask is dropped).
--- Example:
---   print(mg.nn.Lambda(function(x) return x * 2 end)(mg.ones{1}))
local Lambda = Layer:extend("Lambda")
M.Lambda = Lambda
Lambda.supports_masking = false   -- though it defines compute_mask: only with mask= (below)

function Lambda:__init(...)
  local cfg = self:_parse({ "function" }, { ["function"] = "function", output_shape = "table|function",
    arguments = "any", mask = "function|tensor" }, ...)
  if type(cfg["function"]) ~= "function" then
    util.raise("Lambda: expected a function, got " .. type(cfg["function"]))
  end
  self.fn = cfg["function"]
  self.arguments = cfg.arguments
  self.fixed_output_shape = cfg.output_shape
  self.mask = cfg.mask
  -- Keras: a Lambda supports masking only when told what its output's mask is
  if cfg.mask ~= nil then rawset(self, "supports_masking", true) end
end

function Lambda:compute_mask(inputs, mask)
  if type(self.mask) == "function" then return self.mask(inputs, mask or nil) end
  return self.mask
end

function Lambda:call(x)
  if self.arguments then return self.fn(x, self.arguments) end
  return self.fn(x)
end

function Lambda:compute_output_shape(s, dt)
  local fixed = self.fixed_output_shape
  if type(fixed) == "function" then return fixed(s) end
  if type(fixed) == "table" then
    local out = { type(s[1]) == "table" and s[1][1] or s[1] }
    for i, d in ipairs(fixed) do out[i + 1] = d end
    return out
  end
  return Layer.compute_output_shape(self, s, dt)
end

-- ---- Masking ----------------------------------------------------------------------------------

--- mg.nn.Masking{mask_value=0.0}: marks the time steps to skip: a step (a vector along the
--- last axis) whose values all equal mask_value is masked. The output is the input with the
--- masked steps set to 0 and carries the mask (true where a step is real), which the layers
--- after it read (RNNs skip those steps, GlobalAveragePooling1D leaves them out of the mean,
--- losses and metrics leave them out of the average).
--- Example:
---   local x = mg.tensor{{{1.0, 2.0}, {0.0, 0.0}, {3.0, 0.0}}}
---   local y = mg.nn.Masking()(x)
---   print(mg.nn.get_mask(y))   -- tensor([[ true, false,  true]], dtype=bool)
local Masking = Layer:extend("Masking")
M.Masking = Masking
Masking.supports_masking = true
Masking.passthrough_dtype = true

function Masking:__init(...)
  local cfg = self:_parse({ "mask_value" }, { mask_value = "number" }, ...)
  self.mask_value = cfg.mask_value or 0.0
end

function Masking:compute_mask(x)
  return mg.any(mg.not_equal(x, self.mask_value), { axis = -1 })
end

function Masking:call(x)
  local keep = mg.any(mg.not_equal(x, self.mask_value), { axis = -1, keepdims = true })
  return mg.where(keep, x, mg.zeros({}, x.dtype))
end

function Masking:compute_output_shape(s) return util.copy(s) end

function Masking:get_config()
  local cfg = Layer.get_config(self)
  cfg.mask_value = self.mask_value
  return cfg
end

function Lambda:get_config()
  util.raise(string.format("Lambda layer %s: its Lua function cannot be serialized; define a Layer subclass instead",
    self.name))
end

return M
