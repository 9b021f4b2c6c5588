-- moongrad.nn.layers.embedding: Embedding, a lookup table of input_dim
-- vectors of size output_dim. Indices count from 1, like every index in
-- moongrad (Keras counts from 0); the gradient goes through the engine's
-- take_grad, which touches only the rows looked up.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local initializers = require("moongrad.nn.initializers")
local regularizers = require("moongrad.nn.regularizers")

local Embedding = Layer:extend("Embedding")

function Embedding:__init(...)
  local cfg = self:_parse({ "input_dim", "output_dim" }, { "embeddings_initializer", "embeddings_regularizer",
    "input_length", "mask_zero" }, ...)
  for _, k in ipairs({ "input_dim", "output_dim" }) do
    local v = cfg[k]
    if type(v) ~= "number" or v < 1 or v ~= math.floor(v) then
      util.raise(string.format("Embedding: %s must be a positive integer, got %s", k, tostring(v)))
    end
  end
  if cfg.mask_zero then util.raise("Embedding: mask_zero is not supported (masking is not implemented)") end
  self.input_dim = cfg.input_dim
  self.output_dim = cfg.output_dim
  self.input_length = cfg.input_length
  self.embeddings_initializer = initializers.get(cfg.embeddings_initializer or
    { class_name = "RandomUniform", config = { minval = -0.05, maxval = 0.05 } })
  self.embeddings_regularizer = regularizers.get(cfg.embeddings_regularizer)
end

function Embedding:build()
  self.embeddings = self:add_weight { name = "embeddings", shape = { self.input_dim, self.output_dim },
    initializer = self.embeddings_initializer, regularizer = self.embeddings_regularizer }
end

function Embedding:call(ids)
  local d = ids.dtype
  if d ~= "int64" and d ~= "int32" then ids = mg.cast(ids, "int64") end
  return mg.take(self.embeddings, ids, 1)
end

function Embedding:compute_output_shape(s)
  local out = util.copy(s)
  out[#out + 1] = self.output_dim
  return out, self.dtype
end

function Embedding:get_config()
  local cfg = Layer.get_config(self)
  cfg.input_dim = self.input_dim
  cfg.output_dim = self.output_dim
  cfg.input_length = self.input_length
  cfg.embeddings_initializer = initializers.serialize(self.embeddings_initializer)
  cfg.embeddings_regularizer = regularizers.serialize(self.embeddings_regularizer)
  return cfg
end

return Embedding
