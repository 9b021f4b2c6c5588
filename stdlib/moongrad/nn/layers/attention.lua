-- moongrad.nn.layers.attention: Keras 3's attention layers, MultiHeadAttention, Attention (Luong)
-- and AdditiveAttention (Bahdanau), with Keras's options, defaults and weight layouts so that Keras
-- weights load as they are and give Keras's outputs.
--
-- MultiHeadAttention keeps Keras's EinsumDense weights as its own, in Keras's order: query, key,
-- value kernels (d, heads, key_dim) and biases (heads, key_dim), then the output kernel (heads,
-- value_dim, out...) and bias (out...). A projection is one matmul over the last axis with the
-- kernel viewed as a matrix. The attention itself goes to the fused op mg.dot_product_attention
-- when Keras takes its fused path too (rank-3 inputs, no scores asked for, no dropout at work);
-- otherwise the probabilities are formed explicitly, as Keras's einsums do: the projected tensors
-- are permuted to (batch dims..., attention axes..., channels) with the attention axes flattened
-- into one, so any attention_axes reduce to one batched matmul. Masks combine as in Keras's
-- _compute_attention_mask (query, value and key padding masks, attention_mask, causal), with the
-- inputs' masks (nn.masking, opts.mask of Layer.__call) standing in for the ones not given.
--
-- Keras's call takes (query, value, key, **options); moongrad's Layer.__call takes (inputs,
-- options), so MultiHeadAttention's __call repacks mha(q, v [, k] [, {opts}]) into the list form
-- {q, v [, k]} that Layer.__call, functional nodes and model configs carry. Options of a call on
-- Keras tensors (nn.Input) are kept on the node (functional.lua replays them).
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local node = require("moongrad.nn.node")
local options = require("moongrad.options")
local masking = require("moongrad.nn.masking")
local initializers = require("moongrad.nn.initializers")
local regularizers = require("moongrad.nn.regularizers")
local Dropout = require("moongrad.nn.layers.core").Dropout

local M = {}
local R = util.rules
local shape_str = util.shape_str

-- ---- helpers ----------------------------------------------------------------------------------

local function is_plain(v) return type(v) == "table" and getmetatable(v) == nil end
local function known(n) return type(n) == "number" and n >= 0 end

-- A size or "unknown" (-1, or an unknown size while staging) compared leniently.
local function same_size(a, b) return not known(a) or not known(b) or a == b end

local function copy_range(s, i, j)
  local out = {}
  for k = i, j do out[#out + 1] = s[k] end
  return out
end

local function concat(...)
  local out = {}
  for _, t in ipairs({ ... }) do for _, v in ipairs(t) do out[#out + 1] = v end end
  return out
end

-- The product of sizes, or -1 when one is unknown (reshape infers it).
local function prod(s)
  local p = 1
  for _, d in ipairs(s) do
    if not known(d) then return -1 end
    p = p * d
  end
  return p
end

-- A bool view of a mask given as bool, int or float (Keras casts "defensively").
local function as_bool(m)
  if not core.is_tensor(m) then m = mg.tensor(m) end
  if m.dtype == "bool" then return m end
  return mg.not_equal(m, mg.zeros_like(m))
end

-- x with size-1 axes inserted at 1-based position `pos` of the result until it has `rank` axes.
local function expand_to(x, rank, pos)
  while #x.shape < rank do x = mg.unsqueeze(x, pos(#x.shape)) end
  return x
end

-- The (1, T, S) lower-triangular mask: query i sees key j <= i (Keras's _compute_causal_mask).
local function causal_mask(t, s)
  return mg.reshape(mg.tril(mg.ones({ t, s }, "bool")), { 1, t, s })
end

-- Keras's masked softmax (layers.Softmax with a mask): masked logits become -1e9, and the
-- probabilities are zeroed there afterwards (a row with nothing left is all zeros).
local function masked_softmax(x, m)
  if m == nil then return mg.softmax(x, -1) end
  local y = mg.softmax(mg.where(m, x, mg.full(x.shape, -1e9, x.dtype)), -1)
  return mg.where(m, y, mg.zeros_like(y))
end

-- The seed state of a layer's dropout, as nn.Dropout keeps it (saved with the layer).
local function make_dropout(self, rate, seed)
  if rate > 0 then
    rawset(self, "_dropout_layer", Dropout { rate = rate, seed = seed, name = self.name .. "_dropout" })
  end
end

local function apply_dropout(self, x, training)
  local d = rawget(self, "_dropout_layer")
  if not d or not training then return x end
  if not d.built then d:_maybe_build(x.shape) end
  return d:call(x, true)
end

-- Dropout's state (a seed counter) saved as the layer's own, so save/load and checkpoints keep it.
local function build_dropout(self)
  local d = rawget(self, "_dropout_layer")
  if d and not d.built then
    d:_maybe_build({})
    for _, s in ipairs(rawget(d, "_state_vars") or {}) do self:_add_state("dropout_" .. s.name, s.var) end
  end
end

-- ---- MultiHeadAttention -------------------------------------------------------------------------

--- mg.nn.MultiHeadAttention{num_heads, key_dim, value_dim=nil, dropout=0, use_bias=true, output_shape=nil, attention_axes=nil, kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=nil, bias_regularizer=nil, activity_regularizer=nil, seed=nil}
--- Keras 3's multi-head attention: query, key and value are projected to num_heads heads
--- (key_dim, key_dim and value_dim wide), softmax(q k^T / sqrt(key_dim)) v is taken per head over
--- the attention axes, and the heads are projected back to the query's last size (or to
--- output_shape). Weights as Keras's: query/key/value kernels (d, num_heads, key_dim or value_dim)
--- and biases (num_heads, key_dim), output kernel (num_heads, value_dim, out...) and bias (out...).
--- attention_axes: the query's axes attended over (counted from 1 like all moongrad axes, so Keras's
--- attention_axes={2} is {3}); default all but the batch and the features.
--- Called as mha(query, value [, key] [, {options}]) or mha({query, value [, key]} [, {options}]):
---   query_mask, value_mask, key_mask   bool (batch, T) / (batch, S) padding masks (default: the
---                                      inputs' masks, e.g. from Embedding{mask_zero=true})
---   attention_mask                     bool (batch, T, S): which keys each query may see
---   use_causal_mask                    query i sees keys j <= i only (decoders)
---   return_attention_scores            also return the probabilities (batch, heads, T, S)
---   training                           dropout on the probabilities when dropout > 0
--- The output carries the query's mask.
--- Example:
---   local mha = mg.nn.MultiHeadAttention{num_heads = 2, key_dim = 4}
---   local x = mg.random.normal({2, 5, 8})
---   local y, scores = mha(x, x, {return_attention_scores = true, use_causal_mask = true})
---   print(y.shape[3], scores.shape[2])   -- 8  2
local MHA = Layer:extend("MultiHeadAttention")
M.MultiHeadAttention = MHA
MHA.supports_masking = true

local function axes_rule(v)
  if type(v) == "number" then v = { v } end
  for i, a in ipairs(v) do
    if type(a) ~= "number" or a ~= math.floor(a) then
      return string.format("entry %d must be an integer axis, got %s", i, tostring(a))
    end
  end
  if #v == 0 then return "must name at least one axis, got an empty list" end
end

local MHA_OPTIONS = {
  num_heads = R.positive_int, key_dim = R.positive_int, value_dim = R.positive_int,
  dropout = { "number", min = 0, below = 1 }, use_bias = "boolean",
  output_shape = { "integer|table", check = function(v)
    if type(v) == "number" then v = { v } end
    if #v == 0 then return "must be a size or a list of sizes, got an empty list" end
    for i, d in ipairs(v) do
      if type(d) ~= "number" or d < 1 or d ~= math.floor(d) then
        return string.format("entry %d must be a positive integer, got %s", i, tostring(d))
      end
    end
  end },
  attention_axes = { "integer|table", check = axes_rule },
  flash_attention = "boolean",
  kernel_initializer = R.initializer, bias_initializer = R.initializer,
  kernel_regularizer = R.regularizer, bias_regularizer = R.regularizer, activity_regularizer = R.regularizer,
  sliding_window = util.unsupported(nil), use_gate = util.unsupported(false),
  seed = "integer",
}

MHA.call_options = options.extend(Layer.call_options, {
  query_mask = "tensor|boolean", value_mask = "tensor|boolean", key_mask = "tensor|boolean",
  attention_mask = "tensor|table", return_attention_scores = "boolean", use_causal_mask = "boolean",
})

function MHA:__init(...)
  local cfg = self:_parse({ "num_heads", "key_dim" }, MHA_OPTIONS, ...)
  if cfg.num_heads == nil then util.raise("MultiHeadAttention: num_heads is required (a positive integer)") end
  if cfg.key_dim == nil then util.raise("MultiHeadAttention: key_dim is required (a positive integer)") end
  self.num_heads = cfg.num_heads
  self.key_dim = cfg.key_dim
  self.value_dim = cfg.value_dim or cfg.key_dim
  self.dropout = cfg.dropout or 0
  self.use_bias = cfg.use_bias ~= false
  local os = cfg.output_shape
  self.output_shape_ = type(os) == "number" and { os } or (os and util.copy(os)) or nil
  local ax = cfg.attention_axes
  self.attention_axes = type(ax) == "number" and { ax } or (ax and util.copy(ax)) or nil
  self.flash_attention = cfg.flash_attention
  if cfg.flash_attention and self.dropout > 0 then
    util.raise("MultiHeadAttention: dropout is not supported with flash_attention=true (set dropout = 0)")
  end
  self.kernel_initializer = initializers.get(cfg.kernel_initializer or "glorot_uniform")
  self.bias_initializer = initializers.get(cfg.bias_initializer or "zeros")
  self.kernel_regularizer = regularizers.get(cfg.kernel_regularizer)
  self.bias_regularizer = regularizers.get(cfg.bias_regularizer)
  self.activity_regularizer = regularizers.get(cfg.activity_regularizer)
  self.seed = cfg.seed
  make_dropout(self, self.dropout, self.seed)
end

-- The shapes of a call: query, value, key (value's when absent), each checked.
local function mha_shapes(self, shapes)
  if type(shapes) ~= "table" or type(shapes[1]) ~= "table" or #shapes < 2 then
    error("expects a query and a value (mha(query, value [, key]))", 0)
  end
  local q, v, k = shapes[1], shapes[2], shapes[3] or shapes[2]
  for i, s in ipairs({ q, v, k }) do
    local what = ({ "query", "value", "key" })[i]
    if #s < 3 then
      error(string.format("%s must have at least 3 axes (batch, sequence..., features), got shape %s", what,
        shape_str(s)), 0)
    end
    if not known(s[#s]) then
      error(string.format("%s needs a known last dimension, got shape %s", what, shape_str(s)), 0)
    end
  end
  if #v ~= #k then
    error(string.format("value and key must have the same rank, got value %s and key %s", shape_str(v),
      shape_str(k)), 0)
  end
  for i = 1, #v - 1 do
    if not same_size(v[i], k[i]) then
      error(string.format("all dimensions of value and key, except the last one, must be equal; got value %s and "
        .. "key %s", shape_str(v), shape_str(k)), 0)
    end
  end
  if #q ~= #v then
    error(string.format("query and value must have the same rank, got query %s and value %s", shape_str(q),
      shape_str(v)), 0)
  end
  if not same_size(q[1], v[1]) then
    error(string.format("query and value have different batch sizes: query %s, value %s", shape_str(q),
      shape_str(v)), 0)
  end
  return q, v, k
end

-- The attention axes, given as axes of the query (counted from 1, the batch axis 1; negative from
-- the end, -1 being the features), as 0-based positions of the projected layout (batch, ...,
-- heads, channels), which Keras's einsum equations use: the sequence axes keep their places.
-- Default: every axis but the batch and the features.
local function attention_axes_of(self, rank)
  local given = self.attention_axes
  local out = {}
  if given == nil then
    for a = 1, rank - 2 do out[#out + 1] = a end
    return out
  end
  local seen = {}
  for _, a in ipairs(given) do
    local n = a > 0 and a or rank + 1 + a
    if n < 2 or n > rank - 1 or seen[n] then
      local shown = {}
      for i, x in ipairs(given) do shown[i] = tostring(x) end
      error(string.format("attention_axes={%s} is not valid for a query of rank %d: the axes must be distinct sequence "
        .. "axes, between 2 and %d (or -%d and -2): not the batch axis 1 nor the features", table.concat(shown, ", "), rank,
        rank - 1, rank - 1), 0)
    end
    seen[n] = true
    out[#out + 1] = n - 1
  end
  table.sort(out)
  return out
end

function MHA:build(shapes)
  local q, v, k = mha_shapes(self, shapes)
  local axes = attention_axes_of(self, #q)
  rawset(self, "_axes", axes)
  local H, kd, vd = self.num_heads, self.key_dim, self.value_dim
  local out = self.output_shape_ or { q[#q] }
  local function dense(name, d, size)
    self[name .. "_kernel"] = self:add_weight { name = name .. "/kernel", shape = { d, H, size },
      initializer = self.kernel_initializer, regularizer = self.kernel_regularizer }
    if self.use_bias then
      self[name .. "_bias"] = self:add_weight { name = name .. "/bias", shape = { H, size },
        initializer = self.bias_initializer, regularizer = self.bias_regularizer }
    end
  end
  dense("query", q[#q], kd)
  dense("key", k[#k], kd)
  dense("value", v[#v], vd)
  self.output_kernel = self:add_weight { name = "attention_output/kernel", shape = concat({ H, vd }, out),
    initializer = self.kernel_initializer, regularizer = self.kernel_regularizer }
  if self.use_bias then
    self.output_bias = self:add_weight { name = "attention_output/bias", shape = util.copy(out),
      initializer = self.bias_initializer, regularizer = self.bias_regularizer }
  end
  build_dropout(self)
end

-- x (..., d) projected by kernel (d, rest...) [+ bias (rest...)] to (..., rest...).
local function project(x, kernel, bias)
  local ks = kernel.shape
  local rest = copy_range(ks, 2, #ks)
  local y = mg.matmul(x, mg.reshape(kernel, { ks[1], prod(rest) }))
  if bias then y = y + mg.reshape(bias, { prod(rest) }) end
  return mg.reshape(y, concat(copy_range(x.shape, 1, #x.shape - 1), rest))
end

-- The attention mask of Keras's _compute_attention_mask: nil or bool broadcastable to (B, T, S).
local function compute_attention_mask(query, value, qm, vm, km, am, causal)
  local auto
  local function both(a, b) if a == nil then return b end return mg.logical_and(a, b) end
  if qm then auto = mg.unsqueeze(as_bool(qm), #qm.shape + 1) end
  if vm then auto = both(auto, mg.unsqueeze(as_bool(vm), #vm.shape)) end
  if km then auto = both(auto, mg.unsqueeze(as_bool(km), #km.shape)) end
  if causal then auto = both(auto, causal_mask(query.shape[2], value.shape[2])) end
  if am ~= nil then am = as_bool(am) end
  if auto ~= nil then am = both(am, auto) end
  return am
end

-- A mask of the call: explicit option, else the input's mask (a list entry, false: none).
local function mask_of(opts, key, list, i)
  local m = opts and opts[key]
  if m ~= nil then return m ~= false and m or nil end
  if opts and type(opts.mask) == "table" and not core.is_tensor(opts.mask) then
    return opts.mask[i] or nil
  end
  if i == 1 and opts and core.is_tensor(opts.mask) then return opts.mask end
  return nil
end

-- The explicit attention over projected q (B.., T.., H, kd), k, v: output in q's layout with
-- value_dim channels, and the probabilities (batch dims..., T axes..., S axes...).
local function explicit_attention(self, q, k, v, mask, training)
  local rank = #q.shape
  local axes = rawget(self, "_axes")
  local is_attn = {}
  for _, a in ipairs(axes) do is_attn[a + 1] = true end
  local batch = {}
  for i = 1, rank - 1 do if not is_attn[i] then batch[#batch + 1] = i end end
  local perm = {}
  for _, i in ipairs(batch) do perm[#perm + 1] = i end
  for _, a in ipairs(axes) do perm[#perm + 1] = a + 1 end
  perm[#perm + 1] = rank
  local function flat(x)   -- (batch..., attention axes flattened, channels)
    local p = mg.permute(x, perm)
    if #axes == 1 then return p end
    local s = p.shape
    local nb = #batch
    return mg.reshape(p, concat(copy_range(s, 1, nb), { prod(copy_range(s, nb + 1, nb + #axes)) }, { s[#s] }))
  end
  local qf, kf, vf = flat(q * (1 / math.sqrt(self.key_dim))), flat(k), flat(v)
  local logits = mg.matmul(qf, mg.transpose(kf, -2, -1))
  local bshape = copy_range(logits.shape, 1, #batch)
  local tshape, sshape = {}, {}
  for _, a in ipairs(axes) do tshape[#tshape + 1] = q.shape[a + 1]; sshape[#sshape + 1] = k.shape[a + 1] end
  local full = concat(bshape, tshape, sshape)
  if mask ~= nil then
    -- Keras's _masked_softmax: size-1 axes in front of the query attention axes
    local n = #axes
    mask = expand_to(mask, #full, function(r) return r - 2 * n + 1 end)
    mask = mg.broadcast_to(mask, full)
    if n > 1 then mask = mg.reshape(mask, logits.shape) end
  end
  local probs = masked_softmax(logits, mask)
  local dropped = apply_dropout(self, probs, training)
  local out = mg.matmul(dropped, vf)   -- (batch..., T flattened, vd)
  if #axes > 1 then out = mg.reshape(out, concat(bshape, tshape, { out.shape[#out.shape] })) end
  local inv = {}
  for i, p in ipairs(perm) do inv[p] = i end
  out = mg.permute(out, inv)
  local scores = #axes > 1 and mg.reshape(probs, full) or probs
  return out, scores
end

function MHA:call(inputs, training, opts)
  if not is_plain(inputs) or #inputs < 2 or #inputs > 3 then
    error("expects mha(query, value [, key]) or mha({query, value [, key]})", 0)
  end
  local query, value, key = inputs[1], inputs[2], inputs[3] or inputs[2]
  local dt = self.compute_dtype
  query, value, key = util.float_input(query, dt), util.float_input(value, dt), util.float_input(key, dt)
  mha_shapes(self, { query.shape, value.shape, key.shape })
  local wq = self.query_kernel
  if query.shape[#query.shape] ~= wq.shape[1] or value.shape[#value.shape] ~= self.value_kernel.shape[1] or
      key.shape[#key.shape] ~= self.key_kernel.shape[1] then
    error(string.format("the layer was built for query, value, key last dimensions %d, %d, %d; got query %s, value "
      .. "%s, key %s", wq.shape[1], self.value_kernel.shape[1], self.key_kernel.shape[1], shape_str(query.shape),
      shape_str(value.shape), shape_str(key.shape)), 0)
  end
  opts = opts or {}
  local qm = mask_of(opts, "query_mask", inputs, 1)
  local vm = mask_of(opts, "value_mask", inputs, 2)
  local km = inputs[3] and mask_of(opts, "key_mask", inputs, 3) or (opts.key_mask or nil)
  -- Keras hands a mask that is only causal to the fused kernel's is_causal
  local causal_only = opts.use_causal_mask and not (qm or vm or km or opts.attention_mask)
  local mask = compute_attention_mask(query, value, qm, vm, km, opts.attention_mask, opts.use_causal_mask)
  local q = project(query, wq, self.query_bias)
  local k = project(key, self.key_kernel, self.key_bias)
  local v = project(value, self.value_kernel, self.value_bias)
  local want_scores = opts.return_attention_scores
  if want_scores and self.flash_attention then
    error("return_attention_scores is not supported with flash_attention=true", 0)
  end
  local out, scores
  -- (the fused kernel takes float32 and float64; a half compute dtype goes the explicit way)
  local fused_dtype = q.dtype == "float32" or q.dtype == "float64"
  if not want_scores and self.dropout == 0 and #q.shape == 4 and fused_dtype then
    -- Keras's fused path: mg.dot_product_attention takes (B, T, heads, size) as the projections are
    local m4
    if causal_only then
      mask = nil
    elseif mask ~= nil then
      m4 = expand_to(mask, 4, function(r) return r - 1 end)
      m4 = mg.broadcast_to(m4, { q.shape[1], q.shape[3], q.shape[2], k.shape[2] })
    end
    out = mg.dot_product_attention(q, k, v, { mask = m4, scale = 1 / math.sqrt(self.key_dim),
      is_causal = causal_only or nil })
  else
    out, scores = explicit_attention(self, q, k, v, mask, training)
  end
  -- the output kernel (heads, value_dim, out...) contracts the last two axes
  local os = out.shape
  local ks = self.output_kernel.shape
  local outs = copy_range(ks, 3, #ks)
  local y = mg.matmul(mg.reshape(out, concat(copy_range(os, 1, #os - 2), { ks[1] * ks[2] })),
    mg.reshape(self.output_kernel, { ks[1] * ks[2], prod(outs) }))
  if self.use_bias then y = y + mg.reshape(self.output_bias, { prod(outs) }) end
  y = mg.reshape(y, concat(copy_range(os, 1, #os - 2), outs))
  if self.activity_regularizer then
    local r = self.activity_regularizer
    -- Keras's activity penalties of the four projections, each over the batch size
    local n = query.shape[1]
    rawset(self, "_activity_losses", { r(q) / n, r(k) / n, r(v) / n, r(y) / n })
    rawset(self, "_activity_traced", core.tracing() and true or false)
  end
  if qm then masking.set(y, as_bool(qm)) end
  if want_scores then return { y, scores } end
  return y
end

function MHA:compute_mask(inputs, mask)
  if type(mask) == "table" and not core.is_tensor(mask) then return mask[1] or nil end
  return nil
end

-- Output shapes on Keras tensors: the query's with the last axis (or axes) of output_shape, and
-- the scores (batch dims..., heads, T axes..., S axes...) when asked for.
function MHA:compute_output_shape(shapes)
  local sym = rawget(self, "_sym_opts") or {}
  local list = shapes
  if sym.attention_mask_at then list = copy_range(shapes, 1, sym.attention_mask_at - 1) end
  local q, v = mha_shapes(self, list)
  local out = concat(copy_range(q, 1, #q - 1), self.output_shape_ or { q[#q] })
  if not sym.return_attention_scores then return out end
  local axes = rawget(self, "_axes") or attention_axes_of(self, #q)
  local is_attn = {}
  for _, a in ipairs(axes) do is_attn[a + 1] = true end
  local s = {}
  for i = 1, #q - 1 do if not is_attn[i] then s[#s + 1] = q[i] end end
  s[#s + 1] = self.num_heads
  for _, a in ipairs(axes) do s[#s + 1] = q[a + 1] end
  for _, a in ipairs(axes) do s[#s + 1] = v[a + 1] end
  return { out, s }
end

-- mha(query, value [, key] [, {options} | training]) and mha({query, value [, key]}, options): the
-- list form for Layer.__call. On Keras tensors the options are recorded on the node (a Keras
-- tensor attention_mask becomes one more input of the node).
local function repack(self, a, b, c, d)
  if is_plain(a) then
    if c ~= nil then
      options.raise(string.format("layer %s (MultiHeadAttention): called with a list of inputs and more than one "
        .. "other argument; use mha({query, value [, key]}, {options}) or mha(query, value [, key], {options})",
        self.name))
    end
    return a, b
  end
  if a == nil or b == nil then
    options.raise(string.format("layer %s (MultiHeadAttention): expects a query and a value: mha(query, value "
      .. "[, key] [, {options}]), got %s and %s", self.name, type(a), type(b)))
  end
  local list = { a, b }
  if core.is_tensor(c) or node.is_keras_tensor(c) then
    list[3] = c
    return list, d
  end
  if c ~= nil and d ~= nil then
    options.raise(string.format("layer %s (MultiHeadAttention): the third argument is the key (a tensor), got %s",
      self.name, options.show(c)))
  end
  if c == nil then return list, d end
  return list, c
end

-- A call of an attention layer on its list of inputs: on Keras tensors the options are checked
-- and kept on the node (booleans; MultiHeadAttention's attention_mask, a Keras tensor, becomes one
-- more input of the node, at `_attention_mask_at`); on tensors Layer.__call runs it. Two outputs
-- (return_attention_scores) come back as two values.
local function call_layer(self, inputs, opts)
  if type(opts) == "table" and opts._attention_mask_at then
    -- a functional node's replay: the attention mask travels as an input
    local o = {}
    for key, val in pairs(opts) do o[key] = val end
    local list = copy_range(inputs, 1, opts._attention_mask_at - 1)
    o.attention_mask = inputs[opts._attention_mask_at]
    o._attention_mask_at = nil
    inputs, opts = list, o
  end
  if node.has_keras_tensor(inputs) then
    local who = string.format("layer %s (%s)", self.name, self.class_name)
    local args = { training = type(opts) == "table" and opts.training or (type(opts) == "boolean" and opts or nil) }
    if type(opts) == "table" then
      options.check(who .. " call", opts, self.call_options)
      for key, val in pairs(opts) do
        if key == "attention_mask" then
          if not node.is_keras_tensor(val) then
            options.raise(who .. ": on Keras tensors (nn.Input) attention_mask must be a Keras tensor too")
          end
          local list = util.copy(inputs)
          if #list == 2 then list[3] = list[2] end
          list[#list + 1] = val
          inputs = list
          args._attention_mask_at = #list
        elseif key == "return_attention_scores" or key == "use_causal_mask" then
          args[key] = val
        elseif key ~= "training" then
          options.raise(string.format("%s: call option '%s' is not supported on Keras tensors (nn.Input): the "
            .. "inputs' masks are used", who, tostring(key)))
        end
      end
    end
    rawset(self, "_sym_opts", { return_attention_scores = args.return_attention_scores,
      attention_mask_at = args._attention_mask_at })
    local ok, res = pcall(node.call_symbolic, self, inputs, args)
    rawset(self, "_sym_opts", nil)
    if not ok then error(res, 0) end
    if is_plain(res) then return res[1], res[2] end
    return res
  end
  local res = Layer.__call(self, inputs, opts)
  if is_plain(res) then return res[1], res[2] end
  return res
end

function MHA:__call(a, b, c, d)
  return call_layer(self, repack(self, a, b, c, d))
end

function MHA:get_config()
  local cfg = Layer.get_config(self)
  cfg.num_heads = self.num_heads
  cfg.key_dim = self.key_dim
  cfg.value_dim = self.value_dim
  cfg.dropout = self.dropout
  cfg.use_bias = self.use_bias
  cfg.output_shape = self.output_shape_ and util.copy(self.output_shape_) or nil
  cfg.attention_axes = self.attention_axes and util.copy(self.attention_axes) or nil
  cfg.kernel_initializer = initializers.serialize(self.kernel_initializer)
  cfg.bias_initializer = initializers.serialize(self.bias_initializer)
  cfg.kernel_regularizer = regularizers.serialize(self.kernel_regularizer)
  cfg.bias_regularizer = regularizers.serialize(self.bias_regularizer)
  cfg.activity_regularizer = regularizers.serialize(self.activity_regularizer)
  cfg.seed = self.seed
  return cfg
end

-- ---- Attention and AdditiveAttention --------------------------------------------------------------

--- mg.nn.Attention{use_scale=false, score_mode="dot", dropout=0, seed=nil}
--- Keras 3's dot-product (Luong) attention: scores = q k^T ("dot", times the trainable scalar
--- scale when use_scale) or concat_score_weight * sum(tanh(scale * (q + k))) ("concat"); the
--- softmax over the value steps weights the value. Called on a list {query, value [, key]} of
--- (batch, Tq, dim) and (batch, Tv, dim) tensors, with the options
---   mask                      {query_mask, value_mask}: bool (batch, Tq) and (batch, Tv)
---                             (default: the inputs' masks); masked query steps output zeros
---   use_causal_mask           query i sees value steps j <= i only
---   return_attention_scores   also return the probabilities (batch, Tq, Tv)
---   training                  dropout on the probabilities when dropout > 0
--- Example:
---   local att = mg.nn.Attention{}
---   local q, v = mg.random.normal({2, 3, 4}), mg.random.normal({2, 5, 4})
---   print(att({q, v}).shape)   -- {2, 3, 4}
local Attention = Layer:extend("Attention")
M.Attention = Attention
Attention.supports_masking = true
Attention.call_options = options.extend(Layer.call_options, {
  return_attention_scores = "boolean", use_causal_mask = "boolean",
})

function Attention:__init(...)
  local cfg = self:_parse({}, { use_scale = "boolean", score_mode = { "string", one_of = { "dot", "concat" } },
    dropout = { "number", min = 0, below = 1 }, seed = "integer" }, ...)
  self.use_scale = cfg.use_scale == true
  self.score_mode = cfg.score_mode or "dot"
  self.dropout = cfg.dropout or 0
  self.seed = cfg.seed
  make_dropout(self, self.dropout, self.seed)
end

-- {query, value [, key]} shapes, checked.
local function attention_shapes(self, shapes)
  if type(shapes) ~= "table" or type(shapes[1]) ~= "table" then
    error(string.format("must be called on a list of inputs, namely {query, value} or {query, value, key}; got a "
      .. "single input of shape %s", type(shapes) == "table" and shape_str(shapes) or type(shapes)), 0)
  end
  if #shapes < 2 or #shapes > 3 then
    error(string.format("accepts a list of 2 or 3 inputs, namely {query, value} or {query, value, key}; got %d",
      #shapes), 0)
  end
  local q, v, k = shapes[1], shapes[2], shapes[3] or shapes[2]
  for i, s in ipairs({ q, v, k }) do
    if #s ~= 3 then
      error(string.format("%s must have 3 axes (batch, steps, dim), got shape %s", ({ "query", "value", "key" })[i],
        shape_str(s)), 0)
    end
  end
  if not same_size(q[3], k[3]) then
    error(string.format("query and key must have the same last dimension, got query %s and key %s", shape_str(q),
      shape_str(k)), 0)
  end
  if not same_size(v[2], k[2]) then
    error(string.format("value and key must have the same number of steps, got value %s and key %s", shape_str(v),
      shape_str(k)), 0)
  end
  for _, s in ipairs({ v, k }) do
    if not same_size(q[1], s[1]) then
      error(string.format("the inputs have different batch sizes: query %s, value %s, key %s", shape_str(q),
        shape_str(v), shape_str(k)), 0)
    end
  end
  return q, v, k
end

function Attention:build(shapes)
  attention_shapes(self, shapes)
  if self.use_scale then
    self.scale = self:add_weight { name = "scale", shape = {}, initializer = "ones" }
  end
  if self.score_mode == "concat" then
    self.concat_score_weight = self:add_weight { name = "concat_score_weight", shape = {}, initializer = "ones" }
  end
  build_dropout(self)
end

function Attention:_scores(q, k)
  if self.score_mode == "dot" then
    local s = mg.matmul(q, mg.transpose(k, -2, -1))
    if self.scale then s = s * self.scale end
    return s
  end
  local sum = mg.unsqueeze(q, 3) + mg.unsqueeze(k, 2)   -- (B, Tq, Tv, dim)
  if self.scale then sum = sum * self.scale end
  return mg.sum(mg.tanh(sum), { axis = -1 }) * self.concat_score_weight
end

function Attention:call(inputs, training, opts)
  if not is_plain(inputs) then
    error(string.format("must be called on a list of inputs, namely {query, value} or {query, value, key}; got %s",
      core.is_tensor(inputs) and ("a tensor of shape " .. shape_str(inputs.shape)) or type(inputs)), 0)
  end
  local dt = self.compute_dtype
  local xs = {}
  for i, x in ipairs(inputs) do xs[i] = util.float_input(x, dt) end
  local shapes = {}
  for i, x in ipairs(xs) do shapes[i] = x.shape end
  attention_shapes(self, shapes)
  local q, v = xs[1], xs[2]
  local k = xs[3] or v
  local mask = opts and opts.mask
  if mask ~= nil and mask ~= false then
    local n = 0   -- the largest index: {nil, value_mask} has a hole
    if is_plain(mask) then for i in pairs(mask) do n = type(i) == "number" and math.max(n, i) or 99 end end
    if not is_plain(mask) or n < 1 or n > 3 then
      error(string.format("mask must be a list {query_mask, value_mask} (false or nil for none), got %s",
        core.is_tensor(mask) and ("a tensor of shape " .. shape_str(mask.shape)) or options.show(mask)), 0)
    end
  else
    mask = nil
  end
  local qm = mask and mask[1] or nil
  local vm = mask and mask[2] or nil
  local scores = self:_scores(q, k)
  local smask
  if vm then smask = mg.unsqueeze(as_bool(vm), 2) end   -- (B, 1, Tv)
  if opts and opts.use_causal_mask then
    local c = causal_mask(scores.shape[2], scores.shape[3])
    smask = smask and mg.logical_and(smask, c) or c
  end
  if smask ~= nil then
    -- Keras's _apply_scores: masked steps get -1e9 before the softmax
    scores = scores - mg.cast(mg.logical_not(smask), scores.dtype) * 1e9
  end
  local weights = mg.softmax(scores, -1)
  local out = mg.matmul(apply_dropout(self, weights, training), v)
  if qm then
    out = out * mg.unsqueeze(mg.cast(as_bool(qm), out.dtype), 3)
    masking.set(out, as_bool(qm))
  end
  if opts and opts.return_attention_scores then return { out, weights } end
  return out
end

function Attention:compute_mask(_, mask)
  if is_plain(mask) and mask[1] then return mask[1] end
  return nil
end

function Attention:compute_output_shape(shapes)
  local q, v = attention_shapes(self, shapes)
  local sym = rawget(self, "_sym_opts") or {}
  if sym.return_attention_scores then return { { q[1], q[2], v[3] }, { q[1], q[2], v[2] } } end
  return { q[1], q[2], v[3] }
end

function Attention:__call(inputs, opts)
  return call_layer(self, inputs, opts)
end

function Attention:get_config()
  local cfg = Layer.get_config(self)
  cfg.use_scale = self.use_scale
  cfg.score_mode = self.score_mode
  cfg.dropout = self.dropout
  cfg.seed = self.seed
  return cfg
end

--- mg.nn.AdditiveAttention{use_scale=true, dropout=0, seed=nil}
--- Keras 3's additive (Bahdanau) attention: scores = sum(scale * tanh(q + k)) over the features,
--- with scale a trainable vector (dim,) when use_scale; called like mg.nn.Attention on
--- {query, value [, key]} with the same options.
--- Example:
---   local att = mg.nn.AdditiveAttention{}
---   local q, v = mg.random.normal({2, 3, 4}), mg.random.normal({2, 5, 4})
---   local out, scores = att({q, v}, {return_attention_scores = true})
---   print(scores.shape[3])   -- 5
local Additive = Attention:extend("AdditiveAttention")
M.AdditiveAttention = Additive

function Additive:__init(...)
  local cfg = self:_parse({}, { use_scale = "boolean", dropout = { "number", min = 0, below = 1 },
    seed = "integer" }, ...)
  self.use_scale = cfg.use_scale ~= false
  self.score_mode = "additive"
  self.dropout = cfg.dropout or 0
  self.seed = cfg.seed
  make_dropout(self, self.dropout, self.seed)
end

function Additive:build(shapes)
  local q = attention_shapes(self, shapes)
  if self.use_scale then
    self.scale = self:add_weight { name = "scale", shape = { q[3] }, initializer = "glorot_uniform" }
  end
  build_dropout(self)
end

function Additive:_scores(q, k)
  local t = mg.tanh(mg.unsqueeze(q, 3) + mg.unsqueeze(k, 2))   -- (B, Tq, Tv, dim)
  if self.scale then t = t * self.scale end
  return mg.sum(t, { axis = -1 })
end

function Additive:get_config()
  local cfg = Layer.get_config(self)
  cfg.use_scale = self.use_scale
  cfg.dropout = self.dropout
  cfg.seed = self.seed
  return cfg
end

return M
