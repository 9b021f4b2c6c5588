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

--- mg.nn.Embedding{input_dim, output_dim, embeddings_initializer="uniform"}
--- A lookup table: each integer index (counted from 1) of the input becomes its row of
--- an (input_dim, output_dim) weight.
local Embedding = Layer:extend("Embedding")

function Embedding:__init(...)
  local R = util.rules
  local cfg = self:_parse({ "input_dim", "output_dim" }, { input_dim = R.positive_int, output_dim = R.positive_int,
    embeddings_initializer = R.initializer, embeddings_regularizer = R.regularizer, input_length = R.positive_int,
    mask_zero = util.unsupported(false, "moongrad has no masking yet") }, ...)
  for _, k in ipairs({ "input_dim", "output_dim" }) do
    if cfg[k] == nil then util.raise(string.format("Embedding: %s is required (a positive integer)", k)) end
  end
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
  return out, self.compute_dtype
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
