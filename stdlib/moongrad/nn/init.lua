-- moongrad.nn (mg.nn): the Keras layer of moongrad.
--
--   local nn = mg.nn
--   local model = nn.Sequential{ nn.Dense(64, {activation="relu"}), nn.Dense(10) }
--   model:compile{optimizer="adam", loss=mg.losses.SparseCategoricalCrossentropy{from_logits=true},
--                 metrics={"accuracy"}}
--   model:fit(x, y, {epochs=5, batch_size=32})
--
-- Layers (nn.Dense, nn.Conv2D, ... also under nn.layers), the three model
-- styles (nn.Sequential, nn.Model{inputs=, outputs=}, nn.Model:extend),
-- model configs and files (model_from_json, clone_model, load_model,
-- plot_model), initializers, activations and regularizers. Optimizers,
-- losses, metrics and callbacks are mg.optim, mg.losses, mg.metrics and
-- mg.callbacks (also reachable here). Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local util = require("moongrad.nn.util")

local M = {}

M.Layer = require("moongrad.nn.layer")
M.mixed_precision = require("moongrad.nn.mixed_precision")  -- dtype policies (dtypes section)
M.Model = require("moongrad.nn.model")
M.Functional = require("moongrad.nn.functional")
M.Sequential = require("moongrad.nn.sequential")
require("moongrad.nn.training")
require("moongrad.nn.summary")
local saving = require("moongrad.nn.saving")
local plot = require("moongrad.nn.plot")
local node = require("moongrad.nn.node")

local layers = { Layer = M.Layer }
local function add(t)
  for k, v in pairs(t) do
    if type(v) == "table" and k:match("^%u") then layers[k] = v end
  end
end
local core_layers = require("moongrad.nn.layers.core")
add(core_layers)
layers.Dense = require("moongrad.nn.layers.dense")
layers.Embedding = require("moongrad.nn.layers.embedding")
add(require("moongrad.nn.layers.conv"))
add(require("moongrad.nn.layers.pooling"))
add(require("moongrad.nn.layers.conv_nd"))
add(require("moongrad.nn.layers.conv_separable"))
add(require("moongrad.nn.layers.spatial"))
add(require("moongrad.nn.layers.reshaping"))
add(require("moongrad.nn.layers.normalization"))
add(require("moongrad.nn.layers.merging"))
add(require("moongrad.nn.layers.recurrent"))
add(require("moongrad.nn.layers.wrappers"))
add(require("moongrad.nn.layers.conv_lstm"))
add(require("moongrad.nn.layers.preprocessing"))
add(require("moongrad.nn.layers.lookup"))
add(require("moongrad.nn.layers.activation_layers"))
add(require("moongrad.nn.layers.noise"))
add(require("moongrad.nn.layers.image_preprocessing"))
add(require("moongrad.nn.layers.attention"))
layers.RNNBase = nil
M.layers = layers
for k, v in pairs(layers) do M[k] = v end
M.Input = core_layers.Input
layers.Input = core_layers.Input
M.KerasTensor = node.KerasTensor

-- mg.nn.get_mask(t): the mask a layer attached to t (masking.lua), or nil
M.get_mask = require("moongrad.nn.masking").get

M.initializers = require("moongrad.nn.initializers")
M.activations = require("moongrad.nn.activations")
M.regularizers = require("moongrad.nn.regularizers")
M.constraints = require("moongrad.nn.constraints")

M.model_from_json = saving.model_from_json
M.model_from_config = saving.model_from_config
M.clone_model = saving.clone_model
M.load_model = saving.load_model
M.register_layer = saving.register_layer
M.serialize = saving.serialize
M.deserialize = saving.deserialize
M.plot_model = plot.plot_model
M.model_to_dot = plot.model_to_dot
M.clear_session = util.clear_session
M.Progbar = require("moongrad.nn.progress").Progbar

-- The sibling modules, for Keras-style access (nn.optimizers.Adam, nn.losses...).
M.optimizers = require("moongrad.optim")
M.losses = require("moongrad.losses")
M.metrics = require("moongrad.metrics")
M.callbacks = require("moongrad.callbacks")

M.utils = {}
-- The data tuple a train_step/test_step receives: {x, y, sample_weight}.
local adapter = require("moongrad.nn.data_adapter")
M.utils.unpack_x_y_sample_weight = adapter.unpack
M.utils.pack_x_y_sample_weight = adapter.pack
-- to_categorical(y, num_classes): one-hot rows for class indices counted from 1.
function M.utils.to_categorical(y, num_classes, dtype)
  if not mg.is_tensor(y) then y = mg.tensor(y) end
  if y.dtype ~= "int64" and y.dtype ~= "int32" then y = mg.cast(y, "int64") end
  if not num_classes then num_classes = mg.max(y):item() end
  return mg.one_hot(y, num_classes, dtype or "float32")
end

return M
