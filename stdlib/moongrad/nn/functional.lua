-- moongrad.nn.functional: Functional models, the DAG of layer calls made on
-- Keras tensors: `nn.Model{inputs=x, outputs=y}` (lists for several).
--
-- Construction walks back from the outputs through the nodes (depth-first,
-- post-order, which is a topological order), checks that every path ends
-- at one of the given inputs ("graph disconnected" otherwise, naming the
-- layer), and keeps the node list. Calling the model runs that list on
-- tensors; it works eagerly and inside mg.func alike. Layers may be shared
-- (one layer, several nodes), intermediate outputs can start new models
-- (`nn.Model{inputs=m.inputs, outputs=m:get_layer("d1").output}`), and a
-- functional model is itself a layer to call on Keras tensors.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Model = require("moongrad.nn.model")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local node = require("moongrad.nn.node")
local options = require("moongrad.options")
local masking = require("moongrad.nn.masking")

--- mg.nn.Functional{inputs=, outputs=, name=}: the model mg.nn.Model{inputs=, outputs=} builds: a graph of
--- layers from Input tensors to outputs.
local Functional = Model:extend("Functional")
Functional.default_name = "model"

local function kt_list(v, what)
  local list, single = node.flatten(v)
  if #list == 0 then util.raise("Model: " .. what .. " is empty") end
  for i, t in ipairs(list) do
    if not node.is_keras_tensor(t) then
      util.raise(string.format("Model: %s %d must be a Keras tensor (from nn.Input or a layer called on one), got %s",
        what, i, type(t) == "table" and tostring(t) or type(t)))
    end
  end
  return list, single
end

local function is_input_node(n) return n.layer.class_name == "InputLayer" end

function Functional:__init(cfg)
  if type(cfg) ~= "table" then util.raise("Model: expected {inputs=, outputs=, name=}") end
  options.check("Model", cfg, { inputs = "any", outputs = "any", name = "string", trainable = "boolean" })
  self:_setup { name = cfg.name, trainable = cfg.trainable }
  local inputs, single_in = kt_list(cfg.inputs, "inputs")
  local outputs, single_out = kt_list(cfg.outputs, "outputs")
  local input_set = {}
  for i, t in ipairs(inputs) do
    if not is_input_node(t.node) then
      util.raise(string.format("Model: inputs %d (%s) is not an nn.Input tensor", i, tostring(t.name)))
    end
    input_set[t] = true
  end
  local order, state = {}, {}
  local function visit(t, from)
    local n = t.node
    if is_input_node(n) then
      if not input_set[t] then
        util.raise(string.format("Model: graph disconnected: the input %s of layer %s is not among the model's inputs "
          .. "(add it to inputs=)", tostring(t.name), from or "(output)"))
      end
      return
    end
    if state[n] == "done" then return end
    if state[n] == "active" then util.raise("Model: the layer graph has a cycle at layer " .. n.layer.name) end
    state[n] = "active"
    for _, u in ipairs(n.inputs) do visit(u, n.layer.name) end
    state[n] = "done"
    order[#order + 1] = n
  end
  for _, t in ipairs(outputs) do visit(t, nil) end
  rawset(self, "inputs", inputs)
  rawset(self, "outputs", outputs)
  rawset(self, "_single_input", single_in)
  rawset(self, "_single_output", single_out)
  rawset(self, "_nodes", order)
  -- layers: the inputs' layers first, then in node order, each once
  local layers, seen = {}, {}
  for _, t in ipairs(inputs) do
    local l = t.node.layer
    if not seen[l] then seen[l] = true; layers[#layers + 1] = l end
  end
  for _, n in ipairs(order) do
    if not seen[n.layer] then seen[n.layer] = true; layers[#layers + 1] = n.layer end
  end
  local names = {}
  for _, l in ipairs(layers) do
    if names[l.name] then
      util.raise(string.format("Model: two different layers are named '%s'; layer names must be unique", l.name))
    end
    names[l.name] = true
  end
  rawset(self, "_layers_list", layers)
  rawset(self, "built", true)
end

Functional.getters.layers = function(self)
  local out = {}
  for i, l in ipairs(rawget(self, "_layers_list")) do out[i] = l end
  return out
end

function Functional:_sublayers() return self.layers end

Functional.getters.input_names = function(self)
  local out = {}
  for i, t in ipairs(self.inputs) do out[i] = t.node.layer.name end
  return out
end
Functional.getters.output_names = function(self)
  local out = {}
  for i, t in ipairs(self.outputs) do out[i] = t.node.layer.name end
  return out
end

-- Each layer's nodes that belong to this model, in the layer's node order
-- (node indices for configs and summaries).
function Functional:_model_nodes(layer)
  local mine = {}
  for _, n in ipairs(rawget(self, "_nodes")) do mine[n] = true end
  for _, t in ipairs(self.inputs) do mine[t.node] = true end
  local out = {}
  for _, n in ipairs(rawget(layer, "_inbound_nodes")) do
    if mine[n] then out[#out + 1] = n end
  end
  return out
end

local function as_input(self, x, t, i)
  if not mg.is_tensor(x) then
    error(string.format("model %s: input %d must be a tensor, got %s", self.name, i, type(x)), 0)
  end
  local s, want = x.shape, t.shape
  local bad = #s ~= #want
  for d = 2, #s do
    if want[d] ~= -1 and want[d] ~= s[d] then bad = true end
  end
  if bad then
    error(util.input_mismatch(string.format("model %s: input %d (%s)", self.name, i, tostring(t.name)), want, s), 0)
  end
  if x.dtype ~= t.dtype then
    local m = masking.get(x)
    x = mg.cast(x, t.dtype)
    masking.set(x, m)   -- the cast input is still the masked one
  end
  return x
end

-- Inputs given in a table keyed by Input names, as a list in input order.
local function by_name(self, inputs)
  local names = self.input_names
  local index = {}
  for i, n in ipairs(names) do index[n] = i end
  local xs = {}
  for k, v in pairs(inputs) do
    local i = type(k) == "string" and index[k]
    if not i then
      error(string.format("model %s has no input named %s (inputs: %s)", self.name,
        type(k) == "string" and ("'" .. k .. "'") or tostring(k), table.concat(names, ", ")), 0)
    end
    xs[i] = v
  end
  for i, n in ipairs(names) do
    if xs[i] == nil then
      error(string.format("model %s: no value for input '%s' (the table gives inputs by name: %s)", self.name, n,
        table.concat(names, ", ")), 0)
    end
  end
  return xs
end

-- A node's call options: training alone, or with the other options the layer kept on the node
-- (MultiHeadAttention's use_causal_mask, return_attention_scores) as a table.
local function node_kwargs(args)
  local out
  for k, v in pairs(args) do
    if k ~= "training" then out = out or {}; out[k] = v end
  end
  return out
end

local function call_args(args, training)
  local kw = node_kwargs(args)
  if not kw then return training end
  kw.training = training
  return kw
end

-- A layer's outputs as the node has them: a layer with several outputs may return them as a list
-- or as several values (MultiHeadAttention's output and scores).
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local function several(n, res)
  if not n.single_output and res.n > 1 then
    local out = {}
    for i = 1, res.n do out[i] = res[i] end
    return out
  end
  return res[1]
end

function Functional:call(inputs, training, opts)
  local ins = self.inputs
  local xs
  if mg.is_tensor(inputs) then xs = { inputs } else xs = inputs end
  if type(xs) == "table" and getmetatable(xs) == nil and next(xs) ~= nil and xs[1] == nil then
    xs = by_name(self, xs)
  end
  if type(xs) ~= "table" or #xs ~= #ins then
    error(string.format("model %s expects %d input tensors, got %s", self.name, #ins,
      type(xs) == "table" and tostring(#xs) or type(xs)), 0)
  end
  local values = {}
  for i, t in ipairs(ins) do values[t] = as_input(self, xs[i], t, i) end
  -- model(x, {mask=}): the masks of the inputs (Keras's call(mask=)), read by the first layers
  local given = opts and opts.mask
  if given ~= nil and given ~= false then
    if mg.is_tensor(given) then given = { given } end
    for i, t in ipairs(ins) do
      if given[i] then masking.set(values[t], given[i]) end   -- as Keras, on the input itself
    end
  end
  for _, n in ipairs(rawget(self, "_nodes")) do
    local args = {}
    for j, t in ipairs(n.inputs) do args[j] = values[t] end
    local tr = n.args.training
    if tr == nil then tr = training end
    local out = several(n, pack(n.layer(n.single_input and args[1] or args, call_args(n.args, tr))))
    if n.single_output then
      values[n.outputs[1]] = out
    else
      for j, t in ipairs(n.outputs) do values[t] = out[j] end
    end
  end
  local outs = {}
  for i, t in ipairs(self.outputs) do outs[i] = values[t] end
  if self._single_output then return outs[1] end
  return outs
end

-- As a layer on Keras tensors: the output shapes for compatible inputs.
function Functional:compute_output_shape(s)
  local shapes = #self.inputs == 1 and type(s[1]) ~= "table" and { s } or s
  if #shapes ~= #self.inputs then
    error(string.format("expects %d inputs, got %d", #self.inputs, #shapes), 0)
  end
  for i, t in ipairs(self.inputs) do
    if not util.compatible(t.shape, shapes[i]) then
      error(string.format("input %d expects shape %s, got %s", i, util.shape_str(t.shape),
        util.shape_str(shapes[i])), 0)
    end
  end
  local batch = shapes[1][1]
  local outs, dts = {}, {}
  for i, t in ipairs(self.outputs) do
    local o = util.copy(t.shape)
    if #o > 0 and o[1] == -1 then o[1] = batch end
    outs[i], dts[i] = o, t.dtype
  end
  if self._single_output then return outs[1], dts[1] end
  return outs, dts
end

-- ---- configuration (Keras's functional format) ------------------------------------------

function Functional:get_config()
  local layers = {}
  local node_index = {}   -- node -> index among its layer's nodes in this model
  for _, l in ipairs(self.layers) do
    for k, n in ipairs(self:_model_nodes(l)) do node_index[n] = k end
  end
  local function ref(t) return { t.node.layer.name, node_index[t.node], t.index } end
  for i, l in ipairs(self.layers) do
    local inbound = {}
    for _, n in ipairs(self:_model_nodes(l)) do
      if #n.inputs > 0 then
        local list = {}
        for j, t in ipairs(n.inputs) do list[j] = ref(t) end
        inbound[#inbound + 1] = { args = list, single = n.single_input, training = n.args.training,
          kwargs = node_kwargs(n.args) }
      end
    end
    layers[i] = { class_name = l.class_name, name = l.name, config = l:get_config(), inbound_nodes = inbound }
  end
  local ins, outs = {}, {}
  for i, t in ipairs(self.inputs) do ins[i] = ref(t) end
  for i, t in ipairs(self.outputs) do outs[i] = ref(t) end
  return { name = self.name, trainable = self.trainable, layers = layers, input_layers = ins, output_layers = outs,
    single_input = self._single_input, single_output = self._single_output }
end

-- Rebuilds the layers, then replays their calls until every node exists
-- (a shared layer's later node may wait for layers listed after it).
function Functional.from_config(cls, cfg, deserialize)
  deserialize = deserialize or require("moongrad.nn.saving").deserialize
  local by_name, pending = {}, {}
  local produced = {}   -- layer name -> node index -> outputs
  for _, lc in ipairs(cfg.layers) do
    local layer = deserialize({ class_name = lc.class_name, config = lc.config })
    by_name[lc.name] = layer
    produced[lc.name] = {}
    if layer.class_name == "InputLayer" then
      produced[lc.name][1] = { layer.output }
    end
    for k, nd in ipairs(lc.inbound_nodes or {}) do pending[#pending + 1] = { name = lc.name, k = k, node = nd } end
  end
  local function lookup(r)
    local outs = produced[r[1]] and produced[r[1]][r[2]]
    return outs and outs[r[3]]
  end
  while #pending > 0 do
    local rest = {}
    for _, p in ipairs(pending) do
      local args, ready = {}, true
      for j, r in ipairs(p.node.args) do
        args[j] = lookup(r)
        if not args[j] then ready = false end
      end
      if ready then
        local layer = by_name[p.name]
        local call_opts = { training = p.node.training }
        for k, v in pairs(p.node.kwargs or {}) do call_opts[k] = v end
        local res = pack(layer(p.node.single and args[1] or args, call_opts))
        local out = res[1]
        if res.n > 1 and node.is_keras_tensor(res[2]) then   -- several outputs as several values
          out = {}
          for i = 1, res.n do out[i] = res[i] end
        end
        produced[p.name][p.k] = node.is_keras_tensor(out) and { out } or out
      else
        rest[#rest + 1] = p
      end
    end
    if #rest == #pending then
      util.raise("model_from_config: the layer graph cannot be rebuilt (a node refers to a layer that never runs: "
        .. rest[1].name .. ")")
    end
    pending = rest
  end
  local ins, outs = {}, {}
  for i, r in ipairs(cfg.input_layers) do ins[i] = lookup(r) end
  for i, r in ipairs(cfg.output_layers) do outs[i] = lookup(r) end
  return cls { name = cfg.name, trainable = cfg.trainable,
    inputs = cfg.single_input ~= false and #ins == 1 and ins[1] or ins,
    outputs = cfg.single_output ~= false and #outs == 1 and outs[1] or outs }
end

util.register(Functional)
Layer.Functional = Functional
return Functional
