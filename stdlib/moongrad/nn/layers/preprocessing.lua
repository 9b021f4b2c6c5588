-- moongrad.nn.layers.preprocessing: Keras 3's numeric preprocessing layers:
-- Normalization, Discretization, CategoryEncoding and Hashing, plus the
-- helpers the lookup layers share (adapt data, categorical encoding, the
-- stable string hash).
--
-- Ids are values, not positions. Keras numbers buckets, categories and
-- vocabulary entries from 0 (0 = padding/mask, 1 = OOV in a lookup), and
-- these layers keep Keras's numbers: a Discretization bucket, a Hashing bin
-- or a StringLookup id is the same integer as in Keras, so a pipeline's ids
-- and its saved vocabulary agree with Keras (id 0 the padding Keras's
-- mask_zero masks); moongrad's Embedding takes them as they are with
-- mask_zero=true (ids from 0, 0 masked), else as ids + 1 (doc/nn.md). The encoded vectors (one_hot, multi_hot, count) are the
-- same vectors, id k in the (k+1)-th column. This differs from moongrad's
-- index base (positions count from 1, as mg.one_hot and to_categorical do).
--
-- adapt(data) takes a tensor, a Lua table of numbers or a mg.data Dataset
-- (its elements are batches). Adapted statistics are non-trainable weights
-- (saved with the model), as in Keras. Portable Lua (5.4 and LuaJIT): the
-- hash uses arithmetic only (no bit operators), so both give the same bins.
local mg = require("moongrad")
local core = require("moongrad.core")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local options = require("moongrad.options")

local M = {}

-- ---- shared helpers ------------------------------------------------------------------------

-- The batches of adapt's data: a tensor or a table is one batch; a Dataset gives its elements.
function M.batches(data, what, steps)
  local Dataset = require("moongrad.data.dataset")
  if Dataset.is_dataset(data) then
    local nxt, n = data:iter { packed = true }, 0
    return function()
      if steps and n >= steps then return nil end
      n = n + 1
      return nxt()
    end
  end
  if data == nil then options.raise(what .. ".adapt: expected data (a tensor, a table or a Dataset), got nil") end
  local done = false
  return function()
    if done then return nil end
    done = true
    return data
  end
end

local function as_float(x, what)
  if core.is_tensor(x) then return util.float_input(x, "float32") end
  if type(x) == "number" or type(x) == "table" then
    local ok, t = pcall(mg.tensor, x, "float32")
    if ok then return t end
    options.raise(string.format("%s: expected numbers (a tensor or a table of numbers): %s", what,
      tostring(t):gsub("^[^:\n]*:%d+: ", "")))
  end
  options.raise(string.format("%s: expected a tensor or a table of numbers, got %s", what, options.show(x)))
end
M.as_float = as_float

local function as_int(x, what)
  if core.is_tensor(x) then
    if x.dtype == "int64" then return x end
    if x.dtype == "float32" or x.dtype == "float64" then
      local bad = mg.any(mg.not_equal(mg.floor(x), x)):item()
      if bad then options.raise(what .. ": expected integer ids, got a " .. x.dtype .. " tensor with fractions") end
    end
    return mg.cast(x, "int64")
  end
  if type(x) == "number" or type(x) == "table" then return mg.tensor(x, "int64") end
  options.raise(string.format("%s: expected integer ids (a tensor or a table), got %s", what, options.show(x)))
end
M.as_int = as_int

local ENCODE_MODES = { "one_hot", "multi_hot", "count" }

-- Keras's encode_categorical_inputs: ids (int64, values 0..depth-1; `depth` marks an id to
-- drop, a lookup's mask in a counting mode) -> float32 vectors. one_hot adds an axis (replacing
-- a last axis of size 1); multi_hot/count/tf_idf reduce the last axis (a 1-d input is one sample).
function M.encode(ids, depth, mode, weights, what)
  local lo, hi = mg.min(ids):item(), mg.max(ids):item()
  if ids:numel() > 0 and (lo < 0 or hi > depth) then
    options.raise(string.format("%s: ids must be in [0, %d) (num_tokens=%d), got values from %d to %d", what,
      depth, depth, lo, hi))
  end
  local s = ids.shape
  if mode == "one_hot" then
    if #s > 1 and s[#s] == 1 then ids = mg.squeeze(ids, { axis = #s }) end
    return mg.one_hot(ids + 1, depth, "float32", "zero")
  end
  if #s > 2 then
    options.raise(string.format("%s: output_mode %q takes inputs of rank 1 or 2 (a sample, or a batch of "
      .. "them), got shape %s", what, mode, util.shape_str(s)))
  end
  if #s == 0 then ids = mg.reshape(ids, { 1 }); s = { 1 } end
  local oh = mg.one_hot(ids + 1, depth, "float32", "zero")
  local axis = #s   -- the sample axis (the last axis of ids)
  if mode == "multi_hot" then return mg.max(oh, { axis = axis }) end
  if weights ~= nil then
    oh = oh * mg.unsqueeze(weights, #s + 1)
  end
  return mg.sum(oh, { axis = axis })
end

local function encoded_shape(s, depth, mode)
  local out = util.copy(s)
  if mode == "int" then return out end
  if mode == "one_hot" then
    if #out > 1 and out[#out] == 1 then out[#out] = depth else out[#out + 1] = depth end
    return out
  end
  if #out == 0 then return { depth } end
  out[#out] = depth
  return out
end
M.encoded_shape = encoded_shape

-- FNV-1a (32-bit) of a string, with arithmetic only so that Lua 5.4 and LuaJIT agree: the
-- xor of the low byte through a table, the product by the FNV prime 2^24 + 403 split so no
-- intermediate passes 2^53.
local XOR = {}
for a = 0, 255 do
  local row = {}
  for b = 0, 255 do
    local r, x, y, bit = 0, a, b, 1
    for _ = 1, 8 do
      local xa, yb = x % 2, y % 2
      if xa ~= yb then r = r + bit end
      x, y, bit = (x - xa) / 2, (y - yb) / 2, bit * 2
    end
    row[b] = r
  end
  XOR[a] = row
end

local TWO32 = 4294967296
function M.fnv1a(s, h)
  h = h or 2166136261
  for i = 1, #s do
    local lo = h % 256
    h = h - lo + XOR[lo][s:byte(i)]
    h = ((h % 256) * 16777216 + h * 403) % TWO32
  end
  return h
end

-- The text Keras hashes for a value: strings as they are, integers in decimal (tf.as_string).
local function key_text(v)
  if type(v) == "string" then return v end
  if v == math.floor(v) and math.abs(v) < 2 ^ 63 then return string.format("%d", v) end
  return tostring(v)
end
M.key_text = key_text

-- The bucket in [0, n) of value v, the salt (nil, an integer or a pair) hashed first.
function M.hash_bucket(v, n, salt)
  local h = 2166136261
  if salt ~= nil then
    local st = type(salt) == "table" and (key_text(salt[1]) .. "," .. key_text(salt[2])) or key_text(salt)
    h = M.fnv1a(st .. "\0", h)
  end
  return M.fnv1a(key_text(v), h) % n
end

-- A flat list of the leaves of a string table (nested lists for batches) and its shape.
function M.string_leaves(x, what)
  if type(x) == "string" then return { x }, {} end
  if type(x) ~= "table" or core.is_tensor(x) then
    options.raise(string.format("%s: expected a string or a table of strings (nested for a batch), got %s", what,
      options.show(x)))
  end
  local shape, flat = {}, {}
  local function walk(t, depth)
    if type(t) == "string" then
      if depth ~= #shape + 1 then options.raise(what .. ": the nested tables of strings are ragged") end
      flat[#flat + 1] = t
      return
    end
    if type(t) ~= "table" then
      options.raise(string.format("%s: expected strings in the table, got %s", what, options.show(t)))
    end
    if shape[depth] == nil then
      if #flat > 0 then options.raise(what .. ": the nested tables of strings are ragged") end
      shape[depth] = #t
    elseif shape[depth] ~= #t then
      options.raise(string.format("%s: the nested tables of strings are ragged (%d and %d entries)", what,
        shape[depth], #t))
    end
    for i = 1, #t do walk(t[i], depth + 1) end
  end
  walk(x, 1)
  return flat, shape
end

-- Reshapes a flat Lua list to nested tables of `shape`.
function M.nest(flat, shape)
  if #shape == 0 then return flat[1] end
  local pos = 0
  local function build(d)
    local out = {}
    for i = 1, shape[d] do
      if d == #shape then pos = pos + 1; out[i] = flat[pos] else out[i] = build(d + 1) end
    end
    return out
  end
  return build(1)
end

-- A list of numbers as an int64 tensor of `shape`.
function M.int_tensor(flat, shape)
  if #flat == 0 then return mg.zeros(shape, "int64") end
  return mg.reshape(mg.tensor(flat, "int64"), shape)
end

local function list_copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for i, x in ipairs(v) do out[i] = list_copy(x) end
  return out
end
M.list_copy = list_copy

-- Preprocessing layers compute in their own dtype (ints, strings): the base `dtype` option
-- accepts the names Keras configs hold.
local BASE = options.extend(Layer.base_options, { dtype = "string", sparse = util.unsupported(false,
  "moongrad has no sparse tensors") })
M.base_options = BASE

-- ---- Normalization -----------------------------------------------------------------------------

--- mg.nn.Normalization{axis=-1, mean=nil, variance=nil, invert=false}
--- Shifts and scales each feature to mean 0 and variance 1: (x - mean) / max(sqrt(variance), 1e-7)
--- (invert=true undoes it: mean + x * max(sqrt(variance), 1e-7)). mean and variance are given, or
--- learned with layer:adapt(data) over every axis but `axis` (1-based like moongrad's axes, or
--- negative; nil: one scalar mean). The learned values are non-trainable weights.
--- Example:
---   local norm = mg.nn.Normalization()
---   norm:adapt(mg.tensor{{1, 10}, {3, 30}})
---   print(norm(mg.tensor{{2, 20}}))   -- tensor([[0., 0.]], dtype=float32)
local Normalization = Layer:extend("Normalization")
Normalization.supports_masking = true
M.Normalization = Normalization

function Normalization:__init(...)
  local cfg = self:_parse({ "axis" }, { axis = { "integer|table|boolean", check = function(v)
      if v == true then return "must be an axis, a list of axes or false/nil" end
    end }, mean = "number|table|tensor", variance = "number|table|tensor", invert = "boolean" }, ...)
  local axis = cfg.axis
  if axis == nil then axis = -1 elseif axis == false then axis = nil end
  self.axis = type(axis) == "table" and list_copy(axis) or axis
  self.invert = cfg.invert == true
  if (cfg.mean == nil) ~= (cfg.variance == nil) then
    util.raise("Normalization: give both mean and variance, or neither (then adapt() learns them)")
  end
  local function plain(v) return core.is_tensor(v) and v:totable() or list_copy(v) end
  rawset(self, "input_mean", plain(cfg.mean))
  rawset(self, "input_variance", plain(cfg.variance))
end

-- Normalization{axis=nil}: Lua drops a nil field, so `axis = false` also means "no axis";
-- from_config keeps the distinction through `axis_none`.
function Normalization.from_config(cls, cfg)
  cfg = util.deep_copy(cfg)
  if cfg.axis == nil then cfg.axis = false end
  return cls(cfg)
end

-- A Lua table of numbers is data too (the base class would read it as a list of tensors).
function Normalization:__call(x, ...)
  if type(x) == "table" and getmetatable(x) == nil and (type(x[1]) == "number" or
      (type(x[1]) == "table" and getmetatable(x[1]) == nil)) then
    x = as_float(x, "Normalization")
  end
  return Layer.__call(self, x, ...)
end

function Normalization:build(s)
  local nd = #s
  local axes = self.axis == nil and {} or (type(self.axis) == "table" and self.axis or { self.axis })
  local keep, set = {}, {}
  for _, a in ipairs(axes) do
    local ax = a < 0 and nd + a + 1 or a
    if ax < 1 or ax > nd then
      error(string.format("axis %d is out of range for a %d-d input %s", a, nd, util.shape_str(s)), 0)
    end
    if not set[ax] then set[ax] = true; keep[#keep + 1] = ax end
  end
  table.sort(keep)
  local reduce, bshape, mshape = {}, {}, {}
  for i = 1, nd do
    if set[i] then
      if s[i] == -1 then error("the axes kept must have known sizes, got " .. util.shape_str(s), 0) end
      bshape[i] = s[i]
      mshape[#mshape + 1] = s[i]
    else
      bshape[i] = 1
      reduce[#reduce + 1] = i
    end
  end
  rawset(self, "_reduce", reduce)
  rawset(self, "_bshape", bshape)
  rawset(self, "_ndim", nd)
  if self.input_mean ~= nil then
    local function fixed(v)
      return mg.contiguous(mg.expand(mg.reshape(mg.tensor(v, "float32"), (type(v) == "table") and
        (#mshape > 0 and bshape or { 1 }) or {}), bshape))
    end
    local ok, m = pcall(fixed, self.input_mean)
    local ok2, v = pcall(fixed, self.input_variance)
    if not ok or not ok2 then
      error(string.format("mean and variance must broadcast to %s (the sizes of the kept axes), got %s",
        util.shape_str(mshape), tostring(ok and v or m):gsub("^[^:\n]*:%d+: ", "")), 0)
    end
    rawset(self, "_mean", m)
    rawset(self, "_var", v)
  else
    self.adapt_mean = self:add_weight { name = "mean", shape = mshape, initializer = "zeros", trainable = false }
    self.adapt_variance = self:add_weight { name = "variance", shape = mshape, initializer = "ones",
      trainable = false }
  end
end

local function stat(self, w, fixed)
  local v = rawget(self, fixed)
  if v then return v end
  return mg.reshape(w, self._bshape)
end

function Normalization:call(x)
  x = as_float(x, "Normalization")
  if #x.shape ~= self._ndim then
    error(string.format("expected a %d-d input (as when built), got shape %s", self._ndim,
      util.shape_str(x.shape)), 0)
  end
  local mean, var = stat(self, self.adapt_mean, "_mean"), stat(self, self.adapt_variance, "_var")
  local scale = mg.maximum(mg.sqrt(var), 1e-7)
  if self.invert then return mean + x * scale end
  return (x - mean) / scale
end

--- layer:adapt(data, {steps=}): learns the layer's state (a Normalization's mean and variance,
--- a Discretization's bin boundaries, a lookup's vocabulary) from a tensor, a table or a
--- mg.data Dataset of batches (at most `steps` of them).
function Normalization:adapt(data, opts)
  opts = options.check("Normalization:adapt", opts, { steps = { "integer", min = 1 } })
  if self.input_mean ~= nil then
    options.raise("Normalization:adapt: this layer was given mean and variance; adapt learns them only when "
      .. "neither is given")
  end
  local total_mean, total_var, total = nil, nil, 0
  for batch in M.batches(data, "Normalization", opts.steps) do
    local x = as_float(batch, "Normalization:adapt")
    if not self.built then
      local ok, err = pcall(self._maybe_build, self, x.shape)
      if not ok then options.raise(err) end
    end
    if #x.shape ~= self._ndim then
      options.raise(string.format("Normalization:adapt: a batch has shape %s, the layer takes %d-d inputs",
        util.shape_str(x.shape), self._ndim))
    end
    local n = 1
    for _, a in ipairs(self._reduce) do n = n * x.shape[a] end
    local bm = mg.mean(x, { axis = self._reduce })
    local bv = mg.variance(x, { axis = self._reduce })
    if total_mean == nil then
      total_mean, total_var, total = bm, bv, n
    elseif n > 0 then
      -- Keras's running combination of batch moments (population variance)
      total = total + n
      local bw = n / total
      local ew = 1 - bw
      local new_mean = total_mean * ew + bm * bw
      total_var = (total_var + mg.square(total_mean - new_mean)) * ew + (bv + mg.square(bm - new_mean)) * bw
      total_mean = new_mean
    end
  end
  if total_mean == nil then options.raise("Normalization:adapt: the data holds no batch") end
  self.adapt_mean:assign(mg.reshape(total_mean, self.adapt_mean.shape))
  self.adapt_variance:assign(mg.reshape(total_var, self.adapt_variance.shape))
end

function Normalization:compute_output_shape(s) return util.copy(s), "float32" end

function Normalization:get_config()
  local cfg = Layer.get_config(self)
  cfg.axis = type(self.axis) == "table" and list_copy(self.axis) or self.axis
  cfg.invert = self.invert
  cfg.mean = list_copy(self.input_mean)
  cfg.variance = list_copy(self.input_variance)
  return cfg
end

-- ---- Discretization ----------------------------------------------------------------------------

local function float32(v)
  return mg.tensor(v, "float32"):item()
end

-- Keras's approximate quantile summary (discretization.py): a sorted sample of the values,
-- each standing for `step` of them; merged summaries are compressed by interpolation.
local function summarize(values, epsilon)
  table.sort(values)
  local n = #values
  local step = math.max(n / (1 / epsilon), 1)
  local b, w = {}, {}
  for i = math.floor(step - 1) + 1, n, math.floor(step) do b[#b + 1] = values[i]; w[#w + 1] = float32(step) end
  return { b, w }
end

local function interp(x, xp, fp)
  local n = #xp
  if x <= xp[1] then return fp[1] end
  if x >= xp[n] then return fp[n] end
  local lo, hi = 1, n
  while hi - lo > 1 do
    local mid = math.floor((lo + hi) / 2)
    if xp[mid] <= x then lo = mid else hi = mid end
  end
  if xp[hi] == xp[lo] then return fp[hi] end
  return fp[lo] + (x - xp[lo]) * (fp[hi] - fp[lo]) / (xp[hi] - xp[lo])
end

local function compress(summary, epsilon)
  local b, w = summary[1], summary[2]
  if #b * epsilon < 1 then return summary end
  local percents = {}
  local p = 0
  while p < 1 do percents[#percents + 1] = p + epsilon; p = (#percents) * epsilon end
  local cum, c = {}, 0
  for i = 1, #w do c = c + w[i]; cum[i] = c end
  local pct = {}
  for i = 1, #cum do pct[i] = cum[i] / cum[#cum] end
  local nb, ncw, nw = {}, {}, {}
  for i, q in ipairs(percents) do
    nb[i] = float32(interp(q, pct, b))
    ncw[i] = interp(q, pct, cum)
  end
  for i = 1, #ncw do nw[i] = float32(ncw[i] - (ncw[i - 1] or 0)) end
  return { nb, nw }
end

local function merge(a, b, epsilon)
  a = a or { {}, {} }
  local idx = {}
  local vals, ws = {}, {}
  for i = 1, #b[1] do vals[#vals + 1] = b[1][i]; ws[#ws + 1] = b[2][i] end   -- Keras: the new batch first
  for i = 1, #a[1] do vals[#vals + 1] = a[1][i]; ws[#ws + 1] = a[2][i] end
  for i = 1, #vals do idx[i] = i end
  table.sort(idx, function(i, j) if vals[i] ~= vals[j] then return vals[i] < vals[j] end return i < j end)
  local sb, sw = {}, {}
  for k, i in ipairs(idx) do sb[k] = vals[i]; sw[k] = ws[i] end
  return compress({ sb, sw }, epsilon)
end

--- mg.nn.Discretization{bin_boundaries=nil, num_bins=nil, epsilon=0.01, output_mode="int"}
--- Buckets numbers: with boundaries b1 < b2 < ... < bn, x goes to bucket i (0..n, Keras's ids)
--- where b_i <= x < b_(i+1). num_bins with layer:adapt(data) learns boundaries at approximate
--- quantiles (Keras's algorithm). output_mode "int" gives the bucket ids (int64); "one_hot",
--- "multi_hot" and "count" encode them as CategoryEncoding does.
--- Example:
---   local d = mg.nn.Discretization{bin_boundaries = {0, 1, 2}}
---   print(d(mg.tensor{-1.5, 0, 1.5, 5}))   -- tensor([0, 1, 2, 3], dtype=int64)
local Discretization = Layer:extend("Discretization")
M.Discretization = Discretization

function Discretization:__init(...)
  local cfg = self:_parse({}, { bin_boundaries = "table|tensor", num_bins = { "integer", min = 1 },
    epsilon = { "number", above = 0, below = 1 },
    output_mode = { "string", one_of = { "int", "one_hot", "multi_hot", "count" } } }, ...)
  if cfg.bin_boundaries ~= nil and cfg.num_bins ~= nil then
    util.raise("Discretization: give bin_boundaries or num_bins (then adapt), not both")
  end
  if cfg.bin_boundaries == nil and cfg.num_bins == nil then
    util.raise("Discretization: bin_boundaries (a sorted list) or num_bins (learned by adapt) is required")
  end
  local bb = cfg.bin_boundaries
  if core.is_tensor(bb) then bb = bb:totable() end
  if bb then
    for i = 2, #bb do
      if not (bb[i] > bb[i - 1]) then
        util.raise(string.format("Discretization: bin_boundaries must increase, got %s then %s at entries %d, %d",
          tostring(bb[i - 1]), tostring(bb[i]), i - 1, i))
      end
    end
  end
  self.input_bin_boundaries = list_copy(bb)
  self.bin_boundaries = list_copy(bb) or {}
  self.num_bins = cfg.num_bins
  self.epsilon = cfg.epsilon or 0.01
  self.output_mode = cfg.output_mode or "int"
  rawset(self, "built", true)
end
Discretization.base_options = BASE

-- A config with both (Keras writes num_bins next to the boundaries adapt learned): the boundaries win.
function Discretization.from_config(cls, cfg)
  cfg = util.deep_copy(cfg)
  if cfg.bin_boundaries ~= nil then cfg.num_bins = nil end
  return cls(cfg)
end

--- layer:adapt(data, {steps=}): learns num_bins - 1 boundaries at approximate quantiles of the
--- values (a tensor, a table or a Dataset of batches), with Keras's summary algorithm (epsilon).
function Discretization:adapt(data, opts)
  opts = options.check("Discretization:adapt", opts, { steps = { "integer", min = 1 } })
  if self.input_bin_boundaries ~= nil then
    options.raise("Discretization:adapt: this layer was given bin_boundaries; adapt learns them from num_bins")
  end
  local summary
  for batch in M.batches(data, "Discretization", opts.steps) do
    local vals = mg.reshape(as_float(batch, "Discretization:adapt"), { -1 }):totable()
    summary = merge(summary, summarize(vals, self.epsilon), self.epsilon)
  end
  if summary == nil or #summary[1] == 0 then options.raise("Discretization:adapt: the data holds no values") end
  local bins = compress(summary, 1 / self.num_bins)[1]
  local out = {}
  for i = 1, #bins - 1 do out[i] = bins[i] end
  self.bin_boundaries = out
end

function Discretization:call(x)
  x = as_float(x, "Discretization")
  local bb = self.bin_boundaries
  local ids
  if #bb == 0 then
    ids = mg.zeros(x.shape, "int64")
  else
    local flat = mg.reshape(x, { -1 })
    ids = mg.reshape(mg.searchsorted(mg.tensor(bb, "float32"), flat, { side = "right" }) - 1, x.shape)
  end
  if self.output_mode == "int" then return ids end
  return M.encode(ids, #bb + 1, self.output_mode, nil, "Discretization")
end

function Discretization:compute_output_shape(s)
  return encoded_shape(s, #self.bin_boundaries + 1, self.output_mode),
    self.output_mode == "int" and "int64" or "float32"
end

function Discretization:get_config()
  local cfg = Layer.get_config(self)
  cfg.bin_boundaries = list_copy(self.bin_boundaries)
  if #cfg.bin_boundaries == 0 then cfg.bin_boundaries = nil end
  cfg.num_bins = self.num_bins
  if cfg.bin_boundaries then cfg.num_bins = nil end
  cfg.epsilon = self.epsilon
  cfg.output_mode = self.output_mode
  return cfg
end

-- ---- CategoryEncoding ----------------------------------------------------------------------------

--- mg.nn.CategoryEncoding{num_tokens, output_mode="multi_hot"}
--- Encodes integer ids in [0, num_tokens) (Keras's ids, counted from 0) as float vectors of size
--- num_tokens: "one_hot" (one vector per id), "multi_hot" (1 where an id occurs in the sample, the
--- last axis), "count" (how often; call with {count_weights = w} to sum weights instead).
--- Example:
---   local enc = mg.nn.CategoryEncoding{num_tokens = 4, output_mode = "count"}
---   print(enc(mg.tensor{{0, 1, 1}, {3, 3, 2}}))
local CategoryEncoding = Layer:extend("CategoryEncoding")
M.CategoryEncoding = CategoryEncoding
CategoryEncoding.base_options = BASE
CategoryEncoding.call_options = options.extend(Layer.call_options, { count_weights = "tensor|table" })

function CategoryEncoding:__init(...)
  local cfg = self:_parse({ "num_tokens" }, { num_tokens = { "integer", min = 1 },
    output_mode = { "string", one_of = ENCODE_MODES } }, ...)
  if cfg.num_tokens == nil then util.raise("CategoryEncoding: num_tokens is required (a positive integer)") end
  self.num_tokens = cfg.num_tokens
  self.output_mode = cfg.output_mode or "multi_hot"
  rawset(self, "built", true)
end

function CategoryEncoding:call(x, _, opts)
  local ids = as_int(x, "CategoryEncoding")
  local w = opts and opts.count_weights
  if w ~= nil then
    if self.output_mode ~= "count" then
      error("count_weights is only used with output_mode \"count\", not " .. self.output_mode, 0)
    end
    w = as_float(w, "CategoryEncoding count_weights")
    if not util.compatible(w.shape, ids.shape) or #w.shape ~= #ids.shape then
      error(string.format("count_weights has shape %s, the inputs %s", util.shape_str(w.shape),
        util.shape_str(ids.shape)), 0)
    end
  end
  local lo = ids:numel() > 0 and mg.max(ids):item() or 0
  if lo >= self.num_tokens then
    error(string.format("ids must be in [0, %d) (num_tokens=%d), got %d", self.num_tokens, self.num_tokens, lo), 0)
  end
  return M.encode(ids, self.num_tokens, self.output_mode, w, "CategoryEncoding")
end

function CategoryEncoding:compute_output_shape(s)
  return encoded_shape(s, self.num_tokens, self.output_mode), "float32"
end

function CategoryEncoding:get_config()
  local cfg = Layer.get_config(self)
  cfg.num_tokens = self.num_tokens
  cfg.output_mode = self.output_mode
  return cfg
end

-- ---- Hashing ------------------------------------------------------------------------------------

--- mg.nn.Hashing{num_bins, mask_value=nil, salt=nil, output_mode="int"}
--- Hashes strings or integers into num_bins bins (int64 ids 0..num_bins-1, Keras's ids); with
--- mask_value, that value goes to 0 and the others to 1..num_bins-1. Integers hash as their
--- decimal text, as in Keras. The hash is FNV-1a (32-bit) of the text, the salt's text hashed
--- first: stable across runs and platforms, but NOT Keras's FarmHash/SipHash, so the bin of a
--- given value differs from Keras's. Input: a tensor of integers, a string, or a table of strings
--- (nested for a batch). output_mode "one_hot"/"multi_hot"/"count" encode the bins.
--- Example:
---   local h = mg.nn.Hashing{num_bins = 3}
---   print(h{"apple", "pear", "apple"})
local Hashing = Layer:extend("Hashing")
M.Hashing = Hashing
Hashing.base_options = BASE

function Hashing:__init(...)
  local cfg = self:_parse({ "num_bins" }, { num_bins = { "integer", min = 1 }, mask_value = "string|integer",
    salt = { "integer|table", check = function(v)
      if type(v) == "table" and (#v ~= 2 or type(v[1]) ~= "number" or type(v[2]) ~= "number") then
        return "must be an integer or a pair of integers"
      end
    end }, output_mode = { "string", one_of = { "int", "one_hot", "multi_hot", "count" } } }, ...)
  if cfg.num_bins == nil then util.raise("Hashing: num_bins is required (a positive integer)") end
  if cfg.mask_value ~= nil and cfg.num_bins < 2 then
    util.raise("Hashing: with mask_value, num_bins must be at least 2 (bin 0 is the mask's)")
  end
  self.num_bins = cfg.num_bins
  self.mask_value = cfg.mask_value
  self.salt = list_copy(cfg.salt)
  self.output_mode = cfg.output_mode or "int"
  rawset(self, "built", true)
end

function Hashing:call(x)
  local flat, shape
  if core.is_tensor(x) then
    local xi = as_int(x, "Hashing")
    shape = util.copy(xi.shape)
    flat = mg.reshape(xi, { -1 }):totable()
  else
    flat, shape = M.string_leaves(x, "Hashing")
  end
  local n, mask, salt = self.num_bins, self.mask_value, self.salt
  local out = {}
  for i, v in ipairs(flat) do
    if mask ~= nil and v == mask then out[i] = 0
    elseif mask ~= nil then out[i] = 1 + M.hash_bucket(v, n - 1, salt)
    else out[i] = M.hash_bucket(v, n, salt) end
  end
  local ids = M.int_tensor(out, shape)
  if self.output_mode == "int" then return ids end
  return M.encode(ids, n, self.output_mode, nil, "Hashing")
end

function Hashing:compute_output_shape(s)
  return encoded_shape(s, self.num_bins, self.output_mode), self.output_mode == "int" and "int64" or "float32"
end

function Hashing:get_config()
  local cfg = Layer.get_config(self)
  cfg.num_bins = self.num_bins
  cfg.mask_value = self.mask_value
  cfg.salt = list_copy(self.salt)
  cfg.output_mode = self.output_mode
  return cfg
end

return M
