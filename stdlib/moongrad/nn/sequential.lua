-- moongrad.nn.sequential: Sequential, a plain stack of layers.
--
-- `nn.Sequential{layer, layer, ..., name=}` or `model:add(layer)`. Once the
-- input shape is known (an nn.Input as the first entry, `input_shape=` on
-- the first layer, model:build(shape), or the first call) the stack is also
-- a chain of Keras-tensor nodes, so each add() checks shapes at once
-- (errors name the layer), and the model has inputs/outputs, output shapes
-- for summary() and layers whose .output can start functional models.
-- Portable Lua (5.4 and LuaJIT).
local Model = require("moongrad.nn.model")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local node = require("moongrad.nn.node")
local core_layers = require("moongrad.nn.layers.core")
local options = require("moongrad.options")
local core = require("moongrad.core")
local masking = require("moongrad.nn.masking")

--- mg.nn.Sequential{layer, ...} or mg.nn.Sequential{layers = {...}, name=}
--- A model that is a stack of layers, each one's output the next one's input;
--- model:add(layer) appends, model:pop() removes the last. Give an mg.nn.Input{...}
--- first (or call the model once) to build it.
--- Example:
---   local model = mg.nn.Sequential{mg.nn.Input{4}, mg.nn.Dense(8, {activation = "relu"}), mg.nn.Dense(2)}
---   model:compile{optimizer = "adam", loss = "mse"}
---   model:fit(mg.ones{16, 4}, mg.zeros{16, 2}, {epochs = 2, verbose = 0})
local Sequential = Model:extend("Sequential")

function Sequential:__init(layers, opts)
  local cfg = {}
  if type(layers) == "table" and getmetatable(layers) == nil then
    for k, v in pairs(layers) do if type(k) ~= "number" then cfg[k] = v end end
  elseif layers ~= nil then
    util.raise("Sequential: expected a list of layers {layer, ...}, got " .. type(layers))
  end
  for k, v in pairs(opts or {}) do cfg[k] = v end
  options.check("Sequential", cfg, { name = "string", trainable = "boolean" })
  self:_setup { name = cfg.name, trainable = cfg.trainable }
  rawset(self, "_layers_list", {})
  rawset(self, "_outputs_kt", {})
  if layers then
    for i = 1, #layers do self:add(layers[i]) end
  end
end

Sequential.getters.layers = function(self)
  local out = {}
  for i, l in ipairs(rawget(self, "_layers_list")) do out[i] = l end
  return out
end

function Sequential:_sublayers() return self.layers end

local function class_is_input(v)
  return type(v) == "table" and getmetatable(v) == core_layers.InputLayer
end

local function set_input(self, kt)
  rawset(self, "_input_kt", kt)
  rawset(self, "inputs", { kt })
  rawset(self, "_single_input", true)
  rawset(self, "_single_output", true)
end

-- model:add(layer): appends a layer (or sets the input, for an nn.Input tensor).
function Sequential:add(layer)
  local list = rawget(self, "_layers_list")
  if node.is_keras_tensor(layer) then
    if #list > 0 or rawget(self, "_input_kt") then
      util.raise("Sequential: an nn.Input must come first")
    end
    set_input(self, layer)
    return
  end
  if class_is_input(layer) then return self:add(layer.output) end
  if not Layer.is_layer(layer) then
    util.raise(string.format("Sequential: add expects a layer, got %s", type(layer) == "table" and tostring(layer) or
      type(layer)))
  end
  for _, l in ipairs(list) do
    if l.name == layer.name then
      util.raise(string.format("Sequential: a layer named '%s' is already in the model; names must be unique",
        layer.name))
    end
  end
  local outs = rawget(self, "_outputs_kt")
  if not rawget(self, "_input_kt") and #list == 0 and rawget(layer, "_batch_input_shape") then
    set_input(self, core_layers.Input { batch_input_shape = rawget(layer, "_batch_input_shape") })
  end
  local input = rawget(self, "_input_kt")
  if input then
    local prev = outs[#outs] or input
    local ok, out = pcall(layer, prev)
    if not ok then error(tostring(out), 0) end
    if node.is_keras_tensor(out) == false and type(out) == "table" then
      util.raise(string.format("Sequential: layer %s returns %d outputs; a Sequential model needs single-output layers "
        .. "(use a functional model)", layer.name, #out))
    end
    outs[#outs + 1] = out
    rawset(self, "outputs", { out })
    rawset(self, "built", true)
  end
  list[#list + 1] = layer
end

-- model:pop(): removes the last layer.
function Sequential:pop()
  local list = rawget(self, "_layers_list")
  if #list == 0 then util.raise("Sequential: pop on an empty model") end
  local l = table.remove(list)
  local outs = rawget(self, "_outputs_kt")
  if #outs > #list then table.remove(outs) end
  if rawget(self, "_input_kt") then rawset(self, "outputs", { outs[#outs] or rawget(self, "_input_kt") }) end
  return l
end

-- model:build(input_shape): fixes the input shape (the batch size may be -1)
-- and builds every layer.
function Sequential:build(shape)
  if rawget(self, "_input_kt") then return end
  if type(shape) ~= "table" or type(shape[1]) == "table" then
    util.raise("Sequential: build expects one input shape {batch, ...}")
  end
  local list = rawget(self, "_layers_list")
  rawset(self, "_layers_list", {})
  rawset(self, "_outputs_kt", {})
  set_input(self, core_layers.Input { batch_input_shape = util.batchless(shape) })
  for _, l in ipairs(list) do self:add(l) end
  rawset(self, "built", true)
  rawset(self, "_build_input_shape", shape)
end

-- Built by its first call on data (no nn.Input, input_shape or build()): the layers are built
-- for that batch's shape, but later batches may differ in any size but the rank (a sequence's
-- length, an image's size), as in Keras 3; eagerly and staged alike.
function Sequential:_maybe_build(shape)
  if not rawget(self, "_input_kt") then
    self:build(shape)
    rawset(self, "_input_from_data", true)
  end
end

-- A model with a known input shape checks what it is given, as a functional model does: an
-- (N, 784) batch given to nn.Input{28, 28} + Flatten would otherwise run and mean nothing.
-- A model built from its first batch checks the rank only (its layers check their own axes: a
-- Dense the feature count; an Embedding's last axis is the time axis, free to change).
local function check_input(self, x)
  local kt = rawget(self, "_input_kt")
  if not kt or not util.is_tensor(x) then return end
  local want, got = kt.shape, x.shape
  local bad = #want ~= #got
  local last = (rawget(self, "_input_from_data") or bad) and 0 or #got
  for d = 2, last do
    if type(want[d]) == "number" and want[d] ~= -1 and type(got[d]) == "number" and want[d] ~= got[d] then bad = true end
  end
  if bad then error(util.input_mismatch(nil, want, got), 0) end
end

function Sequential:call(x, training, opts)
  check_input(self, x)
  -- model(x, {mask=}): the input's mask (Keras's call(mask=)), read by the first layer
  if opts and core.is_tensor(opts.mask) then masking.set(x, opts.mask) end
  for _, l in ipairs(rawget(self, "_layers_list")) do x = l(x, training) end
  return x
end

function Sequential:compute_output_shape(s)
  if not rawget(self, "_input_kt") then self:build(s) end
  local want = rawget(self, "_input_kt").shape
  if not util.compatible(want, s) then
    error(string.format("expects input shape %s, got %s", util.shape_str(want), util.shape_str(s)), 0)
  end
  local outs = rawget(self, "_outputs_kt")
  local last = outs[#outs] or rawget(self, "_input_kt")
  local o = util.copy(last.shape)
  if #o > 0 and o[1] == -1 then o[1] = s[1] end
  return o, last.dtype
end

function Sequential:_model_nodes(layer)
  local outs = rawget(self, "_outputs_kt")
  for i, l in ipairs(rawget(self, "_layers_list")) do
    if l == layer and outs[i] then return { outs[i].node } end
  end
  return {}
end

function Sequential:get_config()
  local layers = {}
  local input = rawget(self, "_input_kt")
  if input then
    layers[1] = { class_name = "InputLayer", config = input.node.layer:get_config() }
  end
  for _, l in ipairs(rawget(self, "_layers_list")) do
    layers[#layers + 1] = { class_name = l.class_name, config = l:get_config() }
  end
  return { name = self.name, trainable = self.trainable, layers = layers }
end

function Sequential.from_config(cls, cfg, deserialize)
  deserialize = deserialize or require("moongrad.nn.saving").deserialize
  local model = cls { name = cfg.name, trainable = cfg.trainable }
  for _, lc in ipairs(cfg.layers) do
    if lc.class_name == "InputLayer" then
      model:add(core_layers.Input(util.deep_copy(lc.config)))
    else
      model:add(deserialize(lc))
    end
  end
  return model
end

return Sequential
