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

-- ---- image.resize ---------------------------------------------------------------------------

-- The kernels of TF's scale_and_translate: the triangle (bilinear) and Keys's cubic with a = -0.5
-- (bicubic), as functions of the distance in input pixels.
local function triangle(x)
  x = math.abs(x)
  return x < 1 and 1 - x or 0
end
local function keys_cubic(x)
  x = math.abs(x)
  if x >= 2 then return 0 end
  if x >= 1 then return ((-0.5 * x + 2.5) * x - 4) * x + 2 end
  return (1.5 * x - 2.5) * x * x + 1
end
local KERNELS = { bilinear = { triangle, 1 }, bicubic = { keys_cubic, 2 } }

-- The (out x size) weight matrix of one axis as nested rows: output i samples the input at
-- (i + 1/2) * size / out - 1/2 (half-pixel centres); downsampling with antialias widens the
-- kernel by the scale; taps outside [0, size) are dropped and each row normalised to sum 1.
local function weight_rows(method, size, out, antialias)
  local k, radius = KERNELS[method][1], KERNELS[method][2]
  local inv = size / out
  local ks = (antialias and inv > 1) and inv or 1
  local rows = {}
  for i = 0, out - 1 do
    local f = (i + 0.5) * inv - 0.5
    local row, total = {}, 0
    for j = 1, size do row[j] = 0 end
    for j = math.max(0, math.ceil(f - radius * ks)), math.min(size - 1, math.floor(f + radius * ks)) do
      local w = k((j - f) / ks)
      row[j + 1] = w
      total = total + w
    end
    if math.abs(total) > 1e-300 then
      for j = 1, size do row[j] = row[j] / total end
    end
    rows[i + 1] = row
  end
  return rows
end

-- Input positions (1-based) of nearest-neighbour resizing: floor((i + 1/2) * size / out), clamped
-- (TF 2's half-pixel rule; exact rational arithmetic, as JAX).
local function nearest_index(size, out)
  local idx = {}
  for i = 0, out - 1 do
    idx[i + 1] = math.min(math.floor((i + 0.5) * size / out), size - 1) + 1
  end
  return idx
end

local resize_spec = { method = { "string", one_of = { "bilinear", "nearest", "bicubic" } }, antialias = "boolean",
  preserve_aspect_ratio = "boolean" }
local function known(n) return type(n) == "number" end   -- an unknown size while staging is a dim object

X.resize = user_facing("image.resize", { "matmul", "take", "reshape" }, function(x, size, opts)
  if opts ~= nil then options.check("image.resize", opts, resize_spec) end
  opts = opts or {}
  if opts.preserve_aspect_ratio then
    options.raise("image.resize: preserve_aspect_ratio= is not supported (compute the size yourself)")
  end
  if not core.is_tensor(x) then options.raise("image.resize: images must be a tensor, got " .. type(x)) end
  if x.ndim ~= 3 and x.ndim ~= 4 then
    options.raise(string.format("image.resize: images must be 4-d (batch, height, width, channels) or 3-d "
      .. "(height, width, channels), got shape (%s)", table.concat(x.shape, ",")))
  end
  if type(size) ~= "table" or #size ~= 2 then
    options.raise("image.resize: size must be a table {height, width}, got " .. (type(size) == "table" and
      #size .. " entries" or type(size)))
  end
  for i = 1, 2 do
    local v = size[i]
    if type(v) ~= "number" or v ~= math.floor(v) or v < 1 then
      options.raise(string.format("image.resize: size[%d] must be a positive integer, got %s", i, tostring(v)))
    end
  end
  local method = opts.method or "bilinear"
  local batched = x.ndim == 4
  local x4 = batched and x or core.unsqueeze(x, 1)
  local H, W, C = x4.shape[2], x4.shape[3], x4.shape[4]
  if not (known(H) and known(W) and known(C)) then
    options.raise("image.resize: the height, width and channels of the images must be known (a staged function "
      .. "needs them in its input signature)")
  end
  if H == 0 or W == 0 then
    options.raise(string.format("image.resize: cannot resize an empty image of shape (%s)", table.concat(x.shape, ",")))
  end
  local h, w = size[1], size[2]
  local y
  if method == "nearest" then
    y = x4
    if h ~= H then y = core.take(y, core.tensor(nearest_index(H, h), "int64"), 2) end
    if w ~= W then y = core.take(y, core.tensor(nearest_index(W, w), "int64"), 3) end
  else
    local dt = (x4.dtype == "float64") and "float64" or "float32"
    y = x4.dtype == dt and x4 or core.cast(x4, dt)
    local aa = opts.antialias or false
    if h ~= H then   -- (h, H) @ (N, H, W*C) -> (N, h, W*C)
      local wh = core.tensor(weight_rows(method, H, h, aa), dt)
      y = core.reshape(core.matmul(wh, core.reshape(y, { -1, H, W * C })), { -1, h, W, C })
    end
    if w ~= W then   -- (w, W) @ (N*h, W, C) -> (N*h, w, C)
      local ww = core.tensor(weight_rows(method, W, w, aa), dt)
      y = core.reshape(core.matmul(ww, core.reshape(y, { -1, W, C })), { -1, h, w, C })
    end
  end
  return batched and y or core.squeeze(y, { 1 })
end)

-- ---- random draws ---------------------------------------------------------------------------

local function shape_arg(fname, shape)
  if type(shape) == "number" then
    options.raise(string.format("%s: the shape is a table: mg.%s({%s}, ...), not a bare number", fname, fname,
      tostring(shape)))
  end
  if type(shape) ~= "table" then
    options.raise(string.format("%s: shape must be a table of sizes, got %s", fname, type(shape)))
  end
  return shape
end

local function number_arg(fname, what, v)
  if type(v) ~= "number" then
    options.raise(string.format("%s: %s must be a number, got %s", fname, what, core.is_tensor(v) and "a tensor" or type(v)))
  end
  return v
end

local seed_rule = { "integer", min = 0 }
local gamma_spec = { beta = "number", dtype = "string", seed = seed_rule }
X.gamma = user_facing("random.gamma", { "random_gamma" }, function(shape, alpha, opts)
  if opts ~= nil then options.check("random.gamma", opts, gamma_spec) end
  opts = opts or {}
  return core.random_gamma(shape_arg("random.gamma", shape), number_arg("random.gamma", "alpha", alpha),
    opts.beta or 1, opts.dtype or "float32", opts.seed or -1)
end)

local poisson_spec = { dtype = "string", seed = seed_rule }
X.poisson = user_facing("random.poisson", { "random_poisson" }, function(shape, lam, opts)
  if opts ~= nil then options.check("random.poisson", opts, poisson_spec) end
  opts = opts or {}
  return core.random_poisson(shape_arg("random.poisson", shape), number_arg("random.poisson", "lam", lam),
    opts.dtype or "float32", opts.seed or -1)
end)

local categorical_spec = { dtype = "string", seed = seed_rule }
X.categorical = user_facing("random.categorical", { "random_categorical" }, function(logits, n, opts)
  if opts ~= nil then options.check("random.categorical", opts, categorical_spec) end
  opts = opts or {}
  if not core.is_tensor(logits) then
    options.raise("random.categorical: logits must be a tensor (batch, classes), got " .. type(logits))
  end
  options.value("random.categorical", "num_samples", n, { "integer", min = 0 })
  if n == nil then options.raise("random.categorical: num_samples is required") end
  local one = logits.ndim == 1
  local r = core.random_categorical(one and core.unsqueeze(logits, 1) or logits, n, opts.dtype or "int64",
    opts.seed or -1)
  return one and core.squeeze(r, { 1 }) or r
end)

local shuffle_spec = { seed = seed_rule }
X.shuffle = user_facing("random.shuffle", { "random_permutation", "take" }, function(x, opts)
  if opts ~= nil then options.check("random.shuffle", opts, shuffle_spec) end
  if not core.is_tensor(x) then options.raise("random.shuffle: x must be a tensor, got " .. type(x)) end
  return core.take(x, core.random_permutation(x, opts and opts.seed or -1), 1)
end)

-- Adds the functions to the `mg` namespace M (the raw op stays mg.core.dot_product_attention).
function X.install(M)
  M.dot_product_attention = X.dot_product_attention
  core.methods.dot_product_attention = X.dot_product_attention
  M.document(X.dot_product_attention, X.docs.dot_product_attention)
  M.image = M.image or {}
  M.image.resize = X.resize
  M.document(X.resize, X.docs.resize)
  for _, name in ipairs({ "gamma", "poisson", "categorical", "shuffle" }) do
    M.random[name] = X[name]
    M.document(X[name], X.docs[name])
  end
end

X.docs = {
  dot_product_attention = "mg.dot_product_attention(query, key, value, {mask=, is_causal=false, scale=}) -> tensor\n"
    .. "  Keras 3's keras.ops.dot_product_attention: softmax(scale * q k^T) v per head, over inputs laid out\n"
    .. "  (batch, sequence, heads, head size); key and value may have fewer heads dividing query's (grouped-\n"
    .. "  query attention). mask: bool, broadcast to (batch, heads, Tq, Tk), true = attend (a row with no key\n"
    .. "  left averages all values, as Keras); is_causal keeps key j <= query i; scale defaults to\n"
    .. "  1/sqrt(head size). One fused kernel (flash-attention tiling, online softmax; the backward recomputes\n"
    .. "  blocks from the saved logsumexp): the score matrix is never formed. float32 and float64.\n"
    .. "  Keras's flash_attention= is accepted (the kernel is always the fused one); bias= is not supported.\n"
    .. "  Example:\n"
    .. "    local q = mg.random.normal({2, 16, 4, 8})\n"
    .. "    print(mg.dot_product_attention(q, q, q, {is_causal = true}).shape)   -- {2, 16, 4, 8}",
  resize = "mg.image.resize(images, {height, width}, {method=\"bilinear\", antialias=false}) -> tensor\n"
    .. "  tf.image.resize for (batch, height, width, channels) or (height, width, channels) images: half-pixel\n"
    .. "  centres; method \"bilinear\", \"bicubic\" (Keys, a = -0.5) or \"nearest\"; antialias widens the filter\n"
    .. "  when downsampling (TF's scale_and_translate). Taps outside the image are dropped and the weights\n"
    .. "  renormalised, as TF. bilinear/bicubic give float32 (float64 stays float64), nearest keeps the dtype.\n"
    .. "  Differentiable: each axis is a matmul with its weight matrix (nearest: a take).\n"
    .. "  Example:\n"
    .. "    local img = mg.reshape(mg.arange(0, 4, 1, \"float32\"), {2, 2, 1})\n"
    .. "    print(mg.image.resize(img, {4, 4}):reshape({4, 4}))",
  gamma = "mg.random.gamma(shape, alpha, {beta=1, dtype=\"float32\", seed=}) -> tensor\n"
    .. "  Gamma-distributed values, shape parameter alpha > 0 and rate beta > 0 (mean alpha/beta; TF's\n"
    .. "  tf.random.gamma with a number alpha). Reproducible under mg.random.seed, or from seed= alone.\n"
    .. "  Example:\n"
    .. "    print(mg.random.gamma({1000}, 2):mean())   -- about 2",
  poisson = "mg.random.poisson(shape, lam, {dtype=\"float32\", seed=}) -> tensor\n"
    .. "  Poisson-distributed counts with rate lam >= 0 (mean and variance lam); dtype float32 (TF's default),\n"
    .. "  float64, int32 or int64.\n"
    .. "  Example:\n"
    .. "    print(mg.random.poisson({1000}, 3, {dtype = \"int64\"}):sum())   -- about 3000",
  categorical = "mg.random.categorical(logits, num_samples, {dtype=\"int64\", seed=}) -> tensor\n"
    .. "  For each row of logits (batch, classes), num_samples class indices (1-based) drawn with\n"
    .. "  probabilities softmax(row) (tf.random.categorical); a 1-d logits gives a 1-d result. A -inf logit\n"
    .. "  is never drawn; a row with a NaN or +inf logit, or no finite one, is an error.\n"
    .. "  Example:\n"
    .. "    print(mg.random.categorical(mg.log(mg.tensor{{0.0, 1.0}}), 3))   -- tensor([[2, 2, 2]], dtype=int64)",
  shuffle = "mg.random.shuffle(x, {seed=}) -> tensor\n"
    .. "  x with its slices along the first axis in a uniformly random order (tf.random.shuffle); the gradient\n"
    .. "  flows back to x (it is a take of a random permutation).\n"
    .. "  Example:\n"
    .. "    print(mg.random.shuffle(mg.arange(1, 6)):sort())   -- tensor([1, 2, 3, 4, 5], dtype=int64)",
}

return X
