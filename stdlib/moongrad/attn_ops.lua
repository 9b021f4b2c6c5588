-- moongrad.attn_ops: the issue-17 functions around the ops of the "attention, random draws,
-- resizing" block of the op table: mg.dot_product_attention (Keras 3's op over the fused kernel),
-- mg.image.resize (tf.image.resize), and mg.random.categorical, shuffle, gamma and poisson.
--
-- dot_product_attention slices the output off the op's packed result (the output with each row's
-- logsumexp appended, which the fused backward reads). image.resize is linear in x: it builds
-- each axis's weight matrix the way TF's scale_and_translate (and JAX's resize) do — half-pixel
-- centres, the kernel (triangle for bilinear, Keys cubic with a = -0.5 for bicubic) widened by
-- the scale when antialiasing a downsample, taps outside the image dropped and each row's weights
-- normalised to 1 — and applies them with two matmuls, so the gradient is the transposed
-- products. The random functions follow the other random ops: their draws come from the op
-- kernels' Philox stream (the global seed and counter, or a seed= of their own), so a staged
-- function draws anew each call and mg.random.seed replays the sequence.
-- install(M, document) adds them to the `mg` namespace. Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local options = require("moongrad.options")

local X = {}

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

-- Errors of a function built on ops name the function, at the user's line.
local function user_facing(name, ops, f)
  return function(...)
    local r = pack(pcall(f, ...))
    if r[1] then return unpack(r, 2, r.n) end
    local msg = tostring(r[2]):gsub("^[^:]*:%d+: ", "")
    for _, op in ipairs(ops) do msg = msg:gsub("^" .. op .. ":", name .. ":") end
    options.raise(msg)
  end
end

-- ---- dot_product_attention ----------------------------------------------------------------

local BIG = 4611686018427387904   -- 2^62: "to the end" for slice's end list
local attention_spec = { mask = "tensor", is_causal = "boolean", scale = "number", bias = "any",
  flash_attention = "boolean" }

X.dot_product_attention = user_facing("dot_product_attention", { "dot_product_attention" }, function(q, k, v, opts)
  if opts ~= nil then options.check("dot_product_attention", opts, attention_spec) end
  opts = opts or {}
  if opts.bias ~= nil then
    options.raise("dot_product_attention: bias= is not supported (add it to the logits yourself with a "
      .. "plain softmax, or use mask=)")
  end
  for i, t in ipairs({ q, k, v }) do
    if not core.is_tensor(t) then
      options.raise(string.format("dot_product_attention: %s must be a tensor, got %s",
        ({ "query", "key", "value" })[i], type(t)))
    end
  end
  local ins = { q, k, v }
  if opts.mask ~= nil then ins[4] = opts.mask end
  local packed = core.dot_product_attention(ins, opts.scale, opts.is_causal or false)
  return core.slice(packed, { 0, 0, 0, 0 }, { BIG, BIG, BIG, -1 })
end)

-- Adds the functions to the `mg` namespace M (the raw op stays mg.core.dot_product_attention).
function X.install(M)
  M.dot_product_attention = X.dot_product_attention
  core.methods.dot_product_attention = X.dot_product_attention
  M.document(X.dot_product_attention, X.docs.dot_product_attention)
end

X.docs = {
  dot_product_attention = "mg.dot_product_attention(query, key, value, {mask=, is_causal=false, scale=}) -> tensor\n"
    .. "  Keras 3's keras.ops.dot_product_attention: softmax(scale * q k^T) v per head, over inputs laid out\n"
    .. "  (batch, sequence, heads, head size); key and value may have fewer heads dividing query's (grouped-\n"
    .. "  query attention). mask: bool, broadcast to (batch, heads, Tq, Tk), true = attend (a row with no key\n"
    .. "  left averages all values, as Keras); is_causal keeps key j <= query i; scale defaults to\n"
    .. "  1/sqrt(head size). One fused kernel (flash-attention tiling, online softmax; the backward recomputes\n"
    .. "  blocks from the saved logsumexp): the score matrix is never formed. float32 and float64.\n"
    .. "  Example:\n"
    .. "    local q = mg.random.normal({2, 16, 4, 8})\n"
    .. "    print(mg.dot_product_attention(q, q, q, {is_causal = true}).shape)   -- {2, 16, 4, 8}",
}

return X
