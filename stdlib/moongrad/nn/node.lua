-- moongrad.nn.node: symbolic Keras tensors and the nodes that join them.
--
-- `nn.Input{shape={784}}` returns a KerasTensor: a shape (with -1 for the
-- batch and other unknown sizes), a dtype and the node that produced it.
-- Calling a layer on Keras tensors does not touch the engine: the layer is
-- built for the input shapes, computes its output shapes in Lua
-- (compute_output_shape, which validates them, so a bad model fails while
-- it is being defined, naming the layer), and a Node recording (layer,
-- input tensors, call arguments) is added. Functional models are the DAG of
-- these nodes, walked back from their outputs. The engine's tracing
-- (mg.func) is a separate, lower layer: it stages the concrete calls.
-- Portable Lua (5.4 and LuaJIT).
local class = require("moongrad.nn.class")
local util = require("moongrad.nn.util")

local M = {}

--- mg.nn.KerasTensor{shape=, dtype=}: the symbolic tensor an Input and layer calls give while a
--- functional model is defined (shape has -1 for the batch).
local KerasTensor = class.Object:extend("KerasTensor")
M.KerasTensor = KerasTensor

function KerasTensor:__init(shape, dtype, node, index, name)
  self.shape = shape
  self.dtype = dtype or "float32"
  self.node = node
  self.index = index or 1
  self.name = name
end

KerasTensor.getters.ndim = function(self) return #self.shape end

function KerasTensor:__tostring()
  return string.format("<KerasTensor shape=%s, dtype=%s, name=%s>", util.shape_str(self.shape), self.dtype,
    tostring(self.name))
end

local function is_kt(v) return getmetatable(v) == KerasTensor end
M.is_keras_tensor = is_kt

-- Arithmetic on Keras tensors adds the matching merge/lambda layers
-- (installed by the layers module, which owns those classes).
M.operators = {}
local function op(name)
  return function(a, b)
    local f = M.operators[name]
    if not f then error("Keras tensors: operator " .. name .. " is not available", 2) end
    return f(a, b)
  end
end
KerasTensor.__add = op("add")
KerasTensor.__sub = op("sub")
KerasTensor.__mul = op("mul")

-- ---- structures ---------------------------------------------------------------------

-- Flattens a tensor or a list of them; `single` says which it was.
function M.flatten(x)
  if type(x) == "table" and getmetatable(x) == nil then
    local list = {}
    for i, v in ipairs(x) do list[i] = v end
    return list, false
  end
  return { x }, true
end

function M.has_keras_tensor(x)
  if is_kt(x) then return true end
  if type(x) == "table" and getmetatable(x) == nil then
    for _, v in ipairs(x) do if is_kt(v) then return true end end
  end
  return false
end

-- ---- nodes ---------------------------------------------------------------------------

local Node = class.Object:extend("Node")
M.Node = Node

-- A call of `layer` on Keras tensors `inputs` (a list; `single` when the
-- layer got one tensor rather than a list), producing `outputs`.
function Node:__init(layer, inputs, single, args)
  self.layer = layer
  self.inputs = inputs
  self.single_input = single
  self.args = args or {}
  self.outputs = {}
end

-- The layers whose outputs feed this node (in input order).
function Node:parents()
  local out = {}
  for _, t in ipairs(self.inputs) do out[#out + 1] = t.node end
  return out
end

-- The shape of one output, single or list: a shape is a list of numbers.
local function is_shape_list(s)
  return type(s) == "table" and type(s[1]) == "table"
end
M.is_shape_list = is_shape_list

-- layer(keras_tensors): adds a node; returns the output Keras tensor(s).
-- `build` and `infer` are the layer's methods (passed in by layer.lua).
function M.call_symbolic(layer, inputs, args)
  local flat, single = M.flatten(inputs)
  for i, t in ipairs(flat) do
    if not is_kt(t) then
      error(string.format("layer %s: input %d is a %s while others are Keras tensors (nn.Input); a model's "
        .. "inputs must all come from nn.Input", layer.name, i, type(t)), 3)
    end
  end
  local shapes, dtypes = {}, {}
  for i, t in ipairs(flat) do shapes[i], dtypes[i] = t.shape, t.dtype end
  local in_shape = single and shapes[1] or shapes
  local in_dtype = single and dtypes[1] or dtypes
  local out_shape, out_dtype = layer:_symbolic_output(in_shape, in_dtype)
  local node = Node(layer, flat, single, args)
  local outs, list = {}, is_shape_list(out_shape)
  local shapes_out = list and out_shape or { out_shape }
  for i, s in ipairs(shapes_out) do
    local dt = type(out_dtype) == "table" and out_dtype[i] or out_dtype
    local name = layer.name
    if #shapes_out > 1 then name = name .. ":" .. i end
    outs[i] = KerasTensor(s, dt, node, i, name)
  end
  node.outputs = outs
  node.single_output = not list
  local nodes = rawget(layer, "_inbound_nodes")
  nodes[#nodes + 1] = node
  if list then return outs end
  return outs[1]
end

return M
