-- moongrad.nn.layers.embedding: Embedding, a lookup table of input_dim
-- vectors of size output_dim. Indices count from 1, like every index in
-- moongrad (Keras counts from 0): id k picks row k. With mask_zero=true the
-- ids count from 0 as in Keras instead, and id 0 is padding: id k picks row
-- k + 1 (Keras's row k), so the ids of TextVectorization and StringLookup
-- (0 padding, 1 out of vocabulary, 2.. the vocabulary) go straight in,
-- weights copied from Keras give Keras's outputs, and the output carries the
-- mask ids ~= 0 for the layers after it (masking.lua). The gradient goes
-- through the engine's take_grad, which touches only the rows looked up.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local initializers = require("moongrad.nn.initializers")
local regularizers = require("moongrad.nn.regularizers")

--- mg.nn.Embedding{input_dim, output_dim, embeddings_initializer="uniform", mask_zero=false}
--- A lookup table: each integer index of the input becomes its row of an (input_dim,
--- output_dim) weight. Indices count from 1 (id k is row k), as everywhere in moongrad.
--- mask_zero=true takes Keras's ids instead: they count from 0, 0 is padding (id k is row
--- k + 1, Keras's row k; input_dim counts the padding row, as in Keras), and the output
--- carries the mask ids ~= 0, so the layers after it skip the padded steps (see Masking in
--- doc/nn.md). Ids from TextVectorization / StringLookup / IntegerLookup go straight in.
--- Example:
---   local emb = mg.nn.Embedding{input_dim = 5, output_dim = 2, mask_zero = true}
---   local y = emb(mg.tensor({{3, 1, 0}}, "int64"))
---   print(mg.nn.get_mask(y))   -- tensor([[ true,  true, false]], dtype=bool)
local Embedding = Layer:extend("Embedding")

function Embedding:__init(...)
  local R = util.rules
  local cfg = self:_parse({ "input_dim", "output_dim" }, { input_dim = R.positive_int, output_dim = R.positive_int,
    embeddings_initializer = R.initializer, embeddings_regularizer = R.regularizer, input_length = R.positive_int,
    mask_zero = "boolean" }, ...)
  for _, k in ipairs({ "input_dim", "output_dim" }) do
    if cfg[k] == nil then util.raise(string.format("Embedding: %s is required (a positive integer)", k)) end
  end
  self.input_dim = cfg.input_dim
  self.output_dim = cfg.output_dim
  self.input_length = cfg.input_length
  self.mask_zero = cfg.mask_zero and true or false
  -- Keras: only a mask_zero embedding makes (and passes on) a mask
  rawset(self, "supports_masking", self.mask_zero)
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
  if self.mask_zero then ids = ids + 1 end   -- Keras's ids, from 0: id k is row k + 1
  return mg.take(self.embeddings, ids, 1)
end

--- layer:compute_mask(ids) -> ids ~= 0 with mask_zero=true (the real steps), else nil.
function Embedding:compute_mask(ids)
  if not self.mask_zero then return nil end
  return mg.not_equal(ids, 0)
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
  cfg.mask_zero = self.mask_zero
  cfg.embeddings_initializer = initializers.serialize(self.embeddings_initializer)
  cfg.embeddings_regularizer = regularizers.serialize(self.embeddings_regularizer)
  return cfg
end

return Embedding
