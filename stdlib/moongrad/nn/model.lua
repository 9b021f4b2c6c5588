-- moongrad.nn.model: the Model base class: a Layer that can be trained
-- (compile/fit/evaluate/predict, training.lua), summarised (summary.lua),
-- saved (saving.lua) and looked into (layers, get_layer).
--
-- Three ways to make one, all interoperable (each nests in the others):
--   nn.Sequential{...}                      sequential.lua
--   nn.Model{inputs=, outputs=}             functional.lua (a Functional)
--   local M = nn.Model:extend("M")          subclassing: M:init(...), M:call(x, training)
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")

local Model = Layer:extend("Model")
require("moongrad.nn.class").set_noun(Model, "model")
-- its layers carry the masks (masking.lua): the model's outputs keep the ones its last layers attached
Model.propagates_masks = true

--- mg.nn.Model{inputs=, outputs=, name=} -> a functional model (Model.new); a subclass
--- (mg.nn.Model:extend("Mine")) constructs through its __init instead.
--- Example:
---   local x = mg.nn.Input{4}
---   local model = mg.nn.Model{inputs = x, outputs = mg.nn.Dense(2)(x)}
function Model.new(cls, ...)
  if cls == Model then
    local cfg = ...
    if type(cfg) == "table" and (cfg.inputs ~= nil or cfg.outputs ~= nil) then
      return require("moongrad.nn.functional")(...)
    end
    util.raise("nn.Model{inputs=, outputs=} makes a functional model; to subclass use nn.Model:extend(\"Name\")")
  end
  return Layer.new(cls, ...)
end

function Model:_setup(cfg)
  Layer._setup(self, cfg)
  rawset(self, "stop_training", false)
  rawset(self, "compiled", false)
end

-- A subclassed model is built as it runs: its sublayers build lazily.
function Model:_maybe_build(shape)
  if self.built then return end
  rawset(self, "built", true)
  rawset(self, "_build_input_shape", shape)
end

-- model:build(input_shape): creates the weights of a subclassed model by
-- calling it once on zeros of that shape (-1 sizes taken as 1).
function Model:build(shape)
  if self.built and self.weights[1] then return end
  rawset(self, "built", true)
  rawset(self, "_build_input_shape", shape)
  if type(shape) ~= "table" then return end
  local function zeros(s)
    if type(s[1]) == "table" then
      local out = {}
      for i, x in ipairs(s) do out[i] = zeros(x) end
      return out
    end
    local z = {}
    for i, d in ipairs(s) do z[i] = d == -1 and 1 or d end
    return mg.zeros(z)
  end
  local prev = util.context.training
  util.context.training = false
  local ok, err = pcall(self.call, self, zeros(shape), false)
  util.context.training = prev
  if not ok then util.raise(Layer._annotate(self, err)) end
end

-- A subclass must say what the model computes: without a call method it
-- would return its input (Layer's identity) and train to nothing.
function Model:call()
  error(string.format("model %s (%s) has no call method: define %s:call(inputs, training)", self.name,
    self.class_name, self.class_name), 0)
end

-- model.layers: the layers a model is made of (for a subclassed model, the
-- ones assigned to its fields, in assignment order).
Model.getters.layers = function(self) return self:_sublayers() end

--- model:get_layer(name | index)
--- The layer with that name, or the index-th layer (counted from 1); an error names the layers there are.
function Model:get_layer(key)
  local layers = self.layers
  if type(key) == "number" then
    local l = layers[key]
    if not l then util.raise(string.format("get_layer: index %d is out of range (the model has %d layers)", key, #layers)) end
    return l
  end
  for _, l in ipairs(layers) do
    if l.name == key then return l end
  end
  local names = {}
  for i, l in ipairs(layers) do names[i] = l.name end
  util.raise(string.format("get_layer: no layer named '%s' in model %s (layers: %s)", tostring(key), self.name,
    table.concat(names, ", ")))
end

function Model:get_config()
  util.raise(string.format("model %s (%s) is subclassed: its get_config is not defined, so it cannot be serialized or "
    .. "cloned (define %s:get_config() and %s.from_config, or use a Sequential/functional model)", self.name,
    self.class_name, self.class_name, self.class_name))
end

return Model
