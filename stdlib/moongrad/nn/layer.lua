-- moongrad.nn.layer: the Layer base class.
--
-- A layer holds weights (mg.Variables made by add_weight), builds them
-- lazily from the shape of its first input (`build(input_shape)`), and
-- computes `call(inputs, training)`. Calling a layer does one of two
-- things: on Keras tensors (nn.Input and what layers made of them) it adds
-- a node to the symbolic graph (node.lua), computing output shapes in Lua;
-- on tensors (eager, or symbolic inside mg.func) it runs `call`. Errors
-- raised inside a call are prefixed with the layer's name and class.
--
-- Sublayers and Variables assigned to fields (`self.dense = nn.Dense(4)`,
-- also lists of layers) are tracked in assignment order by the class's
-- __newindex hook, so `weights` has a stable order for saving and for
-- optimizers. Subclass with `nn.Layer:extend("Name")` and define
-- `init(...)`, `build(input_shape)` and `call(x, training)`.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local class = require("moongrad.nn.class")
local util = require("moongrad.nn.util")
local node = require("moongrad.nn.node")
local initializers = require("moongrad.nn.initializers")
local options = require("moongrad.options")
local mixed_precision = require("moongrad.nn.mixed_precision")
local masking = require("moongrad.nn.masking")
local constraints = require("moongrad.nn.constraints")
local warnings = require("moongrad.warnings")
local autodiff = require("moongrad.autodiff")

--- mg.nn.Layer{name=, trainable=true, dtype="float32"}
--- The base class of layers (Keras's): a layer owns weights (add_weight in build),
--- computes call(inputs), is built on its first call, and tracks the sublayers and
--- weights assigned to its fields. Subclass it for a layer of your own. dtype is a dtype
--- policy: a name ("float32", "mixed_bfloat16", ...) or an mg.nn.mixed_precision.DTypePolicy.
--- Example:
---   local Scale = mg.nn.Layer:extend("Scale")
---   function Scale:build(shape) self.w = self:add_weight{name = "w", shape = {shape[#shape]}, initializer = "ones"} end
---   function Scale:call(x) return x * self.w end
---   print(Scale()(mg.ones{2, 3}))
local Layer = class.Object:extend("Layer")
class.set_noun(Layer, "layer")
local ctx = util.context
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

--- mg.nn.Layer.is_layer(v) -> whether v is a layer (an instance of Layer or a subclass).
local function is_layer(v) return class.isinstance(v, Layer) end
Layer.is_layer = is_layer

local function contains_trackable(v, depth)
  if is_layer(v) or (core.is_tensor(v) and core.is_variable(v)) then return true end
  if depth < 3 and type(v) == "table" and getmetatable(v) == nil then
    for _, item in pairs(v) do
      if contains_trackable(item, depth + 1) then return true end
    end
  end
  return false
end

-- Records fields holding layers or Variables, in assignment order.
function Layer.__track(obj, k, v)
  local keys = rawget(obj, "_tracked_keys")
  -- plain tables are tracked even when empty: `self.blocks = {}` is filled later
  if keys and type(k) == "string" and k:sub(1, 1) ~= "_" and
      (contains_trackable(v, 0) or (type(v) == "table" and getmetatable(v) == nil)) then
    keys[#keys + 1] = k
  end
end

-- The common state; `cfg` holds the Keras base arguments (name, trainable,
-- dtype, input_shape, batch_size).
function Layer:_setup(cfg)
  cfg = cfg or {}
  rawset(self, "_tracked_keys", {})
  rawset(self, "_own_weights", {})
  rawset(self, "_regularizers", {})
  rawset(self, "_inbound_nodes", {})
  rawset(self, "built", false)
  rawset(self, "name", cfg.name or util.unique_name(self.default_name or util.snake_case(self.class_name)))
  rawset(self, "trainable", cfg.trainable ~= false)
  -- the dtype policy (mixed_precision.lua): dtype is the variables' dtype (Keras), compute_dtype the one
  -- the layer computes in; an InputLayer's dtype is its data's, any dtype
  local policy = (cfg.dtype == nil or mixed_precision._rule.check(cfg.dtype) == nil) and mixed_precision._policy(cfg.dtype)
  rawset(self, "dtype_policy", policy or nil)
  rawset(self, "dtype", policy and policy.variable_dtype or cfg.dtype)
  rawset(self, "variable_dtype", rawget(self, "dtype"))
  rawset(self, "compute_dtype", policy and policy.compute_dtype or cfg.dtype)
  if cfg.input_shape then
    local s = { cfg.batch_size or -1 }
    for _, d in ipairs(cfg.input_shape) do s[#s + 1] = d end
    rawset(self, "_batch_input_shape", s)
  elseif cfg.batch_input_shape then
    rawset(self, "_batch_input_shape", cfg.batch_input_shape)
  end
end

-- nn.Layer:extend("MyLayer") subclasses: the base set-up, then init(...).
function Layer:__init(...)
  local first = ...
  local cfg = {}
  if type(first) == "table" and getmetatable(first) == nil and select("#", ...) == 1 then
    cfg = { name = first.name, trainable = first.trainable, dtype = first.dtype, input_shape = first.input_shape }
  end
  self:_setup(cfg)
  if self.init then self:init(...) end
end

-- The base arguments every layer accepts, with their rules (moongrad.options).
Layer.base_options = {
  name = "string",
  trainable = "boolean",
  dtype = mixed_precision._rule,
  input_shape = util.rules.shape,
  batch_size = { "integer", min = 1 },
  batch_input_shape = "table",
}

-- Parses a built-in layer's constructor: the positional names (Keras's
-- leading arguments) and `spec`, the rules of its own options (positional
-- ones included); unknown names and bad values raise at the user's line.
--
-- Weight constraints, one mechanism for every layer: a layer that takes a
-- `<w>_regularizer` option takes `<w>_constraint` too (Keras pairs them:
-- kernel, bias, recurrent, depthwise, pointwise, embeddings, gamma, beta,
-- alpha), kept in _weight_constraints; add_weight gives a weight named `<w>`
-- (or `<w>_kernel`, or ".../kernel") its constraint, get_config writes it, and
-- a constraint that no weight took is an error when the layer is built.
function Layer:_parse(positional, spec, ...)
  local cfg = util.parse_args(self.class_name, positional, self.list_argument, ...)
  local full = options.extend(self.base_options or Layer.base_options, spec)
  local prefixes, extra = {}, {}
  for k in pairs(full) do
    local p = type(k) == "string" and k:match("^(.+)_regularizer$")
    if p and p ~= "activity" and full[p .. "_constraint"] == nil then
      prefixes[#prefixes + 1] = p
      extra[p .. "_constraint"] = util.rules.constraint
    end
  end
  if prefixes[1] then full = options.extend(full, extra) end
  util.check_options(self.class_name, cfg, full)
  self:_setup(cfg)
  local wc
  for _, p in ipairs(prefixes) do
    local c = cfg[p .. "_constraint"]
    if c ~= nil then
      wc = wc or {}
      wc[p] = constraints.get(c)
    end
  end
  rawset(self, "_weight_constraints", wc)
  return cfg
end

-- The constraint option a weight named `name` answers to (see _parse), or nil.
local function constraint_for(self, name)
  local wc = rawget(self, "_weight_constraints")
  if not wc or not name then return nil end
  local last = name:match("([^/]+)$") or name
  local p = last:match("^(.+)_kernel$")
  if p and wc[p] then return p end
  if wc[last] then return last end
  if last:match("kernel$") and wc.kernel then return "kernel" end
  if last:match("bias$") and wc.bias then return "bias" end
  return nil
end

-- The options a call takes: layer(x, {training = true}). A layer with more
-- (the recurrent layers' initial_state) extends this; an option a layer
-- does not understand raises instead of being ignored. `mask` overrides the
-- mask the input carries (masking.lua): a bool tensor, or for a list of
-- inputs a list of them (false where an input has none).
Layer.call_options = {
  training = "boolean",
  mask = "tensor|table|boolean",
}

-- ---- masking (Keras's mask propagation; masking.lua) ----------------------------------

-- A layer that keeps its input's time steps sets supports_masking = true:
-- its outputs then carry compute_mask(inputs, mask) (by default the input's
-- mask); a layer class that defines compute_mask supports masking unless it
-- sets supports_masking = false (Keras 3). A layer that does not support
-- masking drops a mask it is given, with a warning, as Keras 3 does. A layer
-- that consumes the mask reads it in call as opts.mask.
Layer.supports_masking = false
-- A model runs its own layers, which read and attach the masks themselves:
-- it neither computes an output mask nor warns (model.lua sets it).
Layer.propagates_masks = false

-- Keras's rule: a layer class that overrides compute_mask supports masking
-- unless it (or the instance) sets supports_masking itself.
local function masks_supported(self)
  local sm = self.supports_masking
  if sm or self.compute_mask == Layer.compute_mask then return sm end
  if rawget(self, "supports_masking") ~= nil then return false end
  local c = getmetatable(self)
  while c and c ~= Layer do
    if rawget(c, "supports_masking") ~= nil then return false end
    c = rawget(c, "super")
  end
  return true
end

--- layer:compute_mask(inputs, mask) -> the mask of the layer's outputs (nil: none); by default
--- the input's mask. Override it in a layer that changes or removes the time axis.
function Layer:compute_mask(_, mask)
  if mask == false then return nil end
  return mask
end

-- ---- weights -------------------------------------------------------------------------

-- layer:add_weight{name=, shape=, initializer=, trainable=true, dtype=, regularizer=}
local ADD_WEIGHT = { name = "string", shape = { "table", check = function(v)
  for i, d in ipairs(v) do
    if type(d) ~= "number" or d < 0 or d ~= math.floor(d) then
      return string.format("entry %d must be a size (an integer >= 0), got %s", i, tostring(d))
    end
  end
end }, initializer = util.rules.initializer, trainable = "boolean", dtype = { "string", one_of = mg.dtypes },
  regularizer = util.rules.regularizer, constraint = util.rules.constraint }

--- layer:add_weight{name=, shape=, initializer="glorot_uniform", trainable=true, dtype="float32", regularizer=nil, constraint=nil} -> Variable
--- A new weight of the layer (in build()), tracked in layer.weights in creation order; a constraint
--- (mg.nn.constraints) projects it after each optimizer update.
--- Example:
---   self.kernel = self:add_weight{name = "kernel", shape = {n, self.units}}
function Layer:add_weight(opts)
  opts = options.check("add_weight", opts, ADD_WEIGHT)
  if core.tracing() and not autodiff._graph_building then   -- (a TF1 Graph: graph_mode.lua)
    error("its weights are being created inside a staged function (mg.func), where no initial value can be "
      .. "drawn; build the layer or model first: call it once eagerly, or model:build(input_shape)", 0)
  end
  local shape = opts.shape or {}
  local dtype = opts.dtype or self.dtype
  local init = initializers.get(opts.initializer or "glorot_uniform")
  local value = init(shape, dtype)
  if not core.is_tensor(value) then value = mg.tensor(value, dtype) end
  local trainable = opts.trainable ~= false
  local v = mg.Variable(value, { name = self.name .. "/" .. (opts.name or "weight"), trainable = trainable })
  local list = rawget(self, "_own_weights")
  list[#list + 1] = v
  local constraint = opts.constraint
  if constraint == nil then
    local p = constraint_for(self, opts.name)
    if p then
      constraint = rawget(self, "_weight_constraints")[p]
      local used = rawget(self, "_constraints_used") or {}
      used[p] = true
      rawset(self, "_constraints_used", used)
    end
  end
  if constraint then constraints.attach(v, constraints.get(constraint)) end
  if opts.regularizer then
    local regs = rawget(self, "_regularizers")
    regs[#regs + 1] = { var = v, fn = opts.regularizer }
  end
  return v
end

-- Non-weight state that saving keeps (a Dropout's seed counter): out of
-- `weights` and of the optimizer, but written by save_weights, model:save
-- and checkpoints, so a resumed run draws the same masks.
function Layer:_add_state(name, v)
  local list = rawget(self, "_state_vars")
  if not list then list = {}; rawset(self, "_state_vars", list) end
  list[#list + 1] = { name = name, var = v }
  return v
end

-- The layers tracked on fields, in order (lists of layers flattened).
function Layer:_sublayers()
  local out = {}
  local seen = {}
  local function walk(v, depth)
    if is_layer(v) then
      if not seen[v] then seen[v] = true; out[#out + 1] = v end
    elseif depth < 3 and type(v) == "table" and getmetatable(v) == nil then
      for i = 1, #v do walk(v[i], depth + 1) end
      local keys = {}
      for k in pairs(v) do if type(k) ~= "number" then keys[#keys + 1] = k end end
      table.sort(keys)
      for _, k in ipairs(keys) do walk(v[k], depth + 1) end
    end
  end
  for _, k in ipairs(rawget(self, "_tracked_keys") or {}) do walk(rawget(self, k), 0) end
  return out
end

-- Variables assigned to fields directly (self.w = mg.Variable(...)).
local function field_variables(self)
  local out = {}
  for _, k in ipairs(rawget(self, "_tracked_keys") or {}) do
    local v = rawget(self, k)
    if core.is_tensor(v) and core.is_variable(v) then out[#out + 1] = v end
  end
  return out
end

-- Collects weights: which = "all" | "trainable" | "non_trainable".
function Layer:_collect(which, out, seen, frozen)
  frozen = frozen or not self.trainable
  local function add(v)
    if seen[v] then return end
    seen[v] = true
    local t = (not frozen) and core.is_trainable(v)
    if which == "all" or (which == "trainable" and t) or (which == "non_trainable" and not t) then
      out[#out + 1] = v
    end
  end
  for _, v in ipairs(rawget(self, "_own_weights") or {}) do add(v) end
  for _, v in ipairs(field_variables(self)) do add(v) end
  for _, l in ipairs(self:_sublayers()) do l:_collect(which, out, seen, frozen) end
  return out
end

Layer.getters.weights = function(self) return self:_collect("all", {}, {}) end
Layer.getters.variables = Layer.getters.weights
Layer.getters.trainable_weights = function(self) return self:_collect("trainable", {}, {}) end
Layer.getters.trainable_variables = Layer.getters.trainable_weights
Layer.getters.non_trainable_weights = function(self) return self:_collect("non_trainable", {}, {}) end
Layer.getters.non_trainable_variables = Layer.getters.non_trainable_weights

-- layer.losses: the regularization terms of this layer and its sublayers
-- (recomputed from the current weights; usable inside staged functions).
Layer.getters.losses = function(self)
  local out, seen = {}, {}
  local function walk(l)
    if seen[l] then return end
    seen[l] = true
    for _, r in ipairs(rawget(l, "_regularizers") or {}) do out[#out + 1] = r.fn(r.var) end
    -- penalties a call added (ActivityRegularization), from the latest call in the same mode
    local act = rawget(l, "_activity_losses")
    if act and rawget(l, "_activity_traced") == (core.tracing() and true or false) then
      for _, a in ipairs(act) do out[#out + 1] = a end
    end
    for _, s in ipairs(l:_sublayers()) do walk(s) end
  end
  walk(self)
  return out
end

--- layer:count_params() -> the number of scalars in the layer's weights.
function Layer:count_params()
  local n = 0
  for _, v in ipairs(self.weights) do n = n + v:numel() end
  return n
end

-- get_weights() / set_weights(list): the values as tensors, in `weights` order.
function Layer:get_weights()
  local out = {}
  for i, v in ipairs(self.weights) do out[i] = mg.tensor(v) end
  return out
end

--- layer:set_weights(values): assigns a list of tensors (or nested tables) to the weights, in layer.weights order.
function Layer:set_weights(values)
  local ws = self.weights
  if #values ~= #ws then
    error(string.format("set_weights: layer %s has %d weights, %d values given", self.name, #ws, #values), 2)
  end
  for i, v in ipairs(ws) do
    local x = values[i]
    if not core.is_tensor(x) then x = mg.tensor(x, v.dtype) end
    if not util.compatible(x.shape, v.shape) or #x.shape ~= #v.shape then
      error(string.format("set_weights: weight %s has shape %s, the value given has %s", v.name,
        util.shape_str(v.shape), util.shape_str(x.shape)), 2)
    end
    v:assign(mg.cast(x, v.dtype))
  end
end

-- ---- building -------------------------------------------------------------------------

-- Every build method a Layer class defines marks its layer built when it returns, as Keras's
-- build wrapper does: a custom layer that builds a sublayer by hand (self.inner:build(shape)) must
-- not have it built again, with a second set of weights, by the sublayer's first call.
Layer.__method_hook = function(k, f)
  if k ~= "build" then return f end
  return function(self, shape, ...)
    local r = f(self, shape, ...)
    if type(self) == "table" and rawget(self, "_own_weights") then
      rawset(self, "built", true)
      if rawget(self, "_build_input_shape") == nil then rawset(self, "_build_input_shape", shape) end
    end
    return r
  end
end

--- layer:build(input_shape): creates the weights (add_weight) once the input shape is known;
--- called by the first call of the layer. Override it in a custom layer.
function Layer:build(_) end

-- "layer NAME (Class): msg" at the user's line (the first frame outside the library: the
-- line that called the model or fit); an inner layer's message keeps its own name.
local function annotate(self, msg)
  msg = tostring(msg)
  -- a position the message already has is the user's (a line of their own call method, say)
  -- unless it is one of the library's files
  local pos, rest = msg:match("^([^:\n]*:%d+: )(.*)$")
  if not pos or pos:find("stdlib/moongrad/", 1, true) or pos:find("autograph/", 1, true) then
    pos, rest = nil, (msg:gsub("^[^:\n]*:%d+: ", "", 1))
  end
  if not rest:find("^layer [%w_:/%.%-]+ %(") then
    rest = string.format("layer %s (%s): %s", self.name, self.class_name, rest)
  end
  return (pos or options.user_where()) .. rest
end
Layer._annotate = annotate

local function shapes_of(inputs)
  if core.is_tensor(inputs) or node.is_keras_tensor(inputs) then return inputs.shape end
  if type(inputs) == "table" then
    local out = {}
    for i, t in ipairs(inputs) do out[i] = shapes_of(t) end
    return out
  end
  error("expected a tensor or a list of tensors, got " .. type(inputs), 0)
end
Layer._shapes_of = shapes_of

-- Builds the layer for `input_shape` (once).
function Layer:_maybe_build(input_shape)
  if self.built then return end
  local ok, err = pcall(self.build, self, input_shape)
  if not ok then error(annotate(self, err), 0) end
  -- a constraint option that no weight took would be silently ignored: refuse it
  local wc, used = rawget(self, "_weight_constraints"), rawget(self, "_constraints_used") or {}
  for p in pairs(wc or {}) do
    if not used[p] then
      error(annotate(self, string.format("%s_constraint was given, but the layer has no %s weight (use_bias = "
        .. "false, or a weight it does not make)", p, p)), 0)
    end
  end
  rawset(self, "built", true)
  rawset(self, "_build_input_shape", input_shape)
end

-- ---- calling ---------------------------------------------------------------------------

-- Output shape(s) and dtype(s) for symbolic inputs. Layers define
-- compute_output_shape; others are run once on zeros with unknown sizes
-- taken as 1 (their batch size then reads as unknown again).
function Layer:_symbolic_output(in_shape, in_dtype)
  self:_maybe_build(in_shape)
  local ok, shape, dtype = pcall(self.compute_output_shape, self, in_shape, in_dtype)
  if not ok then error(annotate(self, shape), 0) end
  if dtype == nil then
    dtype = self.passthrough_dtype and in_dtype or self.compute_dtype
    if type(dtype) == "table" then dtype = dtype[1] end
  end
  return shape, dtype
end

local function zeros_for(shape, dtype)
  if type(shape[1]) == "table" then
    local out = {}
    for i, s in ipairs(shape) do out[i] = zeros_for(s, type(dtype) == "table" and dtype[i] or dtype) end
    return out
  end
  local s = {}
  for i, d in ipairs(shape) do s[i] = d == -1 and 1 or d end
  return mg.zeros(s, dtype or "float32")
end

-- The fallback: a dry run on zeros.
--- layer:compute_output_shape(input_shape) -> the output shape for an input of that shape (-1: unknown batch).
function Layer:compute_output_shape(in_shape, in_dtype)
  local x = zeros_for(in_shape, in_dtype)
  local prev = ctx.training
  ctx.training = false
  local ok, out = pcall(self.call, self, x, false)
  ctx.training = prev
  if not ok then error(out, 0) end
  local batch_unknown = (type(in_shape[1]) == "table" and in_shape[1][1] or in_shape[1]) == -1
  local function shape_of(t)
    local s = util.copy(t.shape)
    if batch_unknown and #s > 0 then s[1] = -1 end
    return s
  end
  if core.is_tensor(out) then return shape_of(out), out.dtype end
  local shapes, dtypes = {}, {}
  for i, t in ipairs(out) do shapes[i], dtypes[i] = shape_of(t), t.dtype end
  return shapes, dtypes
end

local function record_output(self, out)
  local t = out
  if not core.is_tensor(t) and type(t) == "table" then t = t[1] end
  if core.is_tensor(t) then rawset(self, "_last_output_shape", util.batchless(t.shape)) end
end

-- layer(inputs [, training | {training=, ...}]): symbolic on Keras
-- tensors, else builds if needed and runs call(inputs, training, opts).
-- The options are checked against the layer's call_options.
-- ---- mixed precision: autocast (mixed_precision.lua) ----------------------------------

-- Float inputs cast to the compute dtype where a half type is involved (a
-- float64 input of a float32 layer stays as it was).
local function autocast(x, compute)
  if core.is_tensor(x) then
    local d = x.dtype
    if d ~= compute and (d == "float32" or d == "float64" or mixed_precision._is_half(d)) and
        (mixed_precision._is_half(d) or mixed_precision._is_half(compute)) then
      return core.cast(x, compute)
    end
    return x
  end
  if type(x) == "table" and getmetatable(x) == nil then
    local out = {}
    for k, v in pairs(x) do out[k] = autocast(v, compute) end
    return out
  end
  return x
end

-- For a half-compute layer whose variables are float32: its own float
-- weight fields replaced by casts to the compute dtype for the call, put
-- back afterwards (the returned list). Gradients reach the Variables through
-- the casts.
local function cast_weights(self, compute)
  local swapped = {}
  local own = {}
  for _, v in ipairs(rawget(self, "_own_weights")) do own[v] = true end
  for _, k in ipairs(rawget(self, "_tracked_keys")) do
    local v = rawget(self, k)
    if own[v] and v.dtype ~= compute and (v.dtype == "float32" or v.dtype == "float64") then
      swapped[#swapped + 1] = { k, v }
      rawset(self, k, core.cast(v, compute))
    end
  end
  return swapped
end

function Layer:__call(inputs, opts, ...)
  local training = opts
  if type(opts) == "table" then
    options.check(string.format("layer %s (%s) call", self.name, self.class_name), opts, self.call_options)
    training = opts.training
  elseif opts ~= nil and type(opts) ~= "boolean" then
    options.raise(string.format("layer %s (%s): the second argument is `training` (a boolean) or a table of call "
      .. "options {training=, ...}, got %s", self.name, self.class_name, options.show(opts)))
  end
  if node.has_keras_tensor(inputs) then
    if type(opts) == "table" then
      for k in pairs(opts) do
        if k ~= "training" then
          options.raise(string.format("layer %s (%s): call option '%s' is not supported on Keras tensors (nn.Input); "
            .. "only training is", self.name, self.class_name, tostring(k)))
        end
      end
    end
    return node.call_symbolic(self, inputs, { training = training })
  end
  if inputs == nil then error(string.format("layer %s (%s): called with no input", self.name, self.class_name), 2) end
  if not self.built then
    local ok, shape = pcall(shapes_of, inputs)
    if not ok then error(annotate(self, shape), 0) end
    self:_maybe_build(shape)
  end
  local prev = ctx.training
  if training == nil then training = prev end
  ctx.training = training or false
  local compute = rawget(self, "compute_dtype")
  local half = rawget(self, "dtype_policy") and mixed_precision._is_half(compute)
  local swapped
  if half or rawget(self, "dtype_policy") then inputs = autocast(inputs, compute) end
  if half then swapped = cast_weights(self, compute) end
  -- the input's mask (or the one given) goes to call as opts.mask
  local mask
  if type(opts) == "table" and opts.mask ~= nil then mask = opts.mask else mask = masking.of_inputs(inputs) end
  if mask == false then mask = nil end
  if mask ~= nil and (type(opts) ~= "table" or opts.mask == nil) then
    local o = {}
    if type(opts) == "table" then for k, v in pairs(opts) do o[k] = v end end
    o.mask = mask
    opts = o
  end
  local res = pack(pcall(self.call, self, inputs, training or false, type(opts) == "table" and opts or nil, ...))
  if swapped then
    for _, kv in ipairs(swapped) do rawset(self, kv[1], kv[2]) end
  end
  if res[1] then
    if masks_supported(self) then
      local ok, omask = pcall(self.compute_mask, self, inputs, mask)
      if not ok then res = { false, omask, n = 2 } else masking.attach(res[2], omask) end
    elseif masking.any(mask) and not self.propagates_masks and not rawget(self, "_warned_mask") then
      rawset(self, "_warned_mask", true)
      warnings.warning(string.format("layer %s (%s) was given an input with a mask, but does not support "
        .. "masking: its outputs carry no mask, so the layers after it will not see one", self.name, self.class_name))
    end
  end
  ctx.training = prev
  if not res[1] then error(annotate(self, res[2]), 0) end
  record_output(self, res[2])
  return unpack(res, 2, res.n)
end

--- layer:call(inputs, {training=}) -> outputs: the layer's computation. Override it in a
--- custom layer; call the layer itself, layer(x), to build it and track it in a model.
--- Example:
---   local Double = mg.nn.Layer:extend("Double")
---   function Double:call(x) return x * 2 end
---   print(Double()(mg.tensor{1.0}))   -- tensor([2.], dtype=float32)
function Layer:call(inputs) return inputs end

-- ---- symbolic accessors (functional models) ------------------------------------------

local function node_at(self, i, what)
  local nodes = rawget(self, "_inbound_nodes")
  local n = nodes[i or 1]
  if not n then
    error(string.format("layer %s has no %s: it has not been called on a Keras tensor (nn.Input)", self.name, what), 3)
  end
  return n
end

Layer.getters.output = function(self)
  local n = node_at(self, 1, "output")
  return n.single_output and n.outputs[1] or n.outputs
end
Layer.getters.input = function(self)
  local n = node_at(self, 1, "input")
  return n.single_input and n.inputs[1] or n.inputs
end
Layer.getters.output_shape = function(self)
  local nodes = rawget(self, "_inbound_nodes")
  if nodes[1] then
    local o = nodes[1].outputs
    if #o == 1 then return o[1].shape end
    local out = {}
    for i, t in ipairs(o) do out[i] = t.shape end
    return out
  end
  return rawget(self, "_last_output_shape")
end
Layer.getters.input_shape = function(self)
  local nodes = rawget(self, "_inbound_nodes")
  if nodes[1] then return nodes[1].inputs[1].shape end
  return rawget(self, "_build_input_shape")
end

--- layer:get_output_at(i): the output of the layer's i-th call in a functional model (a KerasTensor).
function Layer:get_output_at(i)
  local n = node_at(self, i, "output at node " .. tostring(i))
  return n.single_output and n.outputs[1] or n.outputs
end

--- layer:get_input_at(i): the input of the layer's i-th call in a functional model (a KerasTensor).
function Layer:get_input_at(i)
  local n = node_at(self, i, "input at node " .. tostring(i))
  return n.single_input and n.inputs[1] or n.inputs
end

-- ---- configuration -----------------------------------------------------------------------

--- layer:get_config() -> a table of the constructor options that rebuild the layer (saving, clone_model).
function Layer:get_config()
  local p = rawget(self, "dtype_policy")
  local cfg = { name = self.name, trainable = self.trainable, dtype = p and p.name or self.dtype }
  local bis = rawget(self, "_batch_input_shape")
  if bis then cfg.batch_input_shape = util.copy(bis) end
  for p, c in pairs(rawget(self, "_weight_constraints") or {}) do cfg[p .. "_constraint"] = constraints.serialize(c) end
  return cfg
end

-- Class.from_config(cfg): a new layer from get_config's table.
function Layer.from_config(cls, cfg)
  return cls(util.deep_copy(cfg))
end

function Layer:__tostring()
  return string.format("<%s name=%s, built=%s>", self.class_name, self.name, tostring(self.built))
end

-- Layer:extend registers the class for from_config/model_from_json.
local base_extend = class.Object.extend
function Layer.extend(cls, name)
  local sub = base_extend(cls, name)
  util.register(sub)
  return sub
end

util.register(Layer)
return Layer
