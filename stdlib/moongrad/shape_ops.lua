-- moongrad.shape_ops: the shape ops of issue 17 ("Shape and indexing", first half) that are
-- compositions of the op table's movement ops: mg.tril/triu, mg.roll, mg.diag, mg.diag_part,
-- mg.trace, mg.meshgrid, mg.repeat, mg.sequence_mask, mg.outer (mg.einsum and mg.tensordot are
-- in moongrad/einsum.lua).
--
-- Design: each is a few views (slice with a step, reshape, expand, permute) and at most one
-- pass of an existing kernel (where, concat, take, pad, mul), so a fused kernel would save
-- little; they are differentiable through those ops' gradient rules (any order) and staged by
-- mg.func like any other op. diag builds its matrix with pad + reshape (the vector spread n + 1
-- apart), not v * eye, so an inf or NaN on the diagonal does not turn the zeros around it into
-- NaN. Axes are 1-based (negative from the end); options go in a trailing table checked with
-- moongrad.options. Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local options = require("moongrad.options")
local einsum = require("moongrad.einsum")

local M = {}
local raise = options.raise
local shape_str = einsum.shape_str
local BIG = 2 ^ 53   -- a slice end past any axis (slice clamps it): the whole axis, known size or not

local function unknown(v) return core.is_unknown_size(v) end

local function need_tensor(fname, what, x)
  if core.is_tensor(x) then return x end
  if type(x) == "table" or type(x) == "number" or type(x) == "boolean" then return core.tensor(x) end
  raise(("%s: %s must be a tensor, got %s"):format(fname, what, type(x)))
end

local function is_int(v) return type(v) == "number" and v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 end

local function norm_axis(fname, what, axis, nd, shape)
  if not is_int(axis) then raise(("%s: %s must be an integer, got %s"):format(fname, what, tostring(axis))) end
  local ax = axis < 0 and nd + axis + 1 or axis
  if ax < 1 or ax > nd then
    raise(("%s: %s %d is out of range for a tensor of shape %s (axes 1 to %d, or -1 to -%d)"):format(
      fname, what, axis, shape_str(shape), nd, nd, nd))
  end
  return ax
end

local function known(fname, what, n)
  if unknown(n) then raise(("%s: %s has an unknown size while tracing; give it a known size"):format(fname, what)) end
  return n
end

-- x sliced along axis ax (1-based) to the 0-based half-open range [b, e) with step st
local function slice_axis(x, ax, b, e, st)
  local begins, ends, steps = {}, {}, {}
  for i = 1, #x.shape do begins[i] = 0; ends[i] = BIG; steps[i] = 1 end
  begins[ax], ends[ax], steps[ax] = b, e, st or 1
  return core.slice(x, begins, ends, steps)
end

local k_spec = { k = "integer" }
local function k_of(fname, opts)
  if type(opts) == "number" then
    if not is_int(opts) then raise(fname .. ": k must be an integer, got " .. tostring(opts)) end
    return opts
  end
  options.check(fname, opts, k_spec)
  return opts and opts.k or 0
end

local function band(fname, x, opts, lower)
  x = need_tensor(fname, "x", x)
  local k = k_of(fname, opts)
  local sh = x.shape
  if #sh < 2 then
    raise(("%s: x must have at least 2 axes (a matrix, or a batch of them), got shape %s"):format(fname, shape_str(sh)))
  end
  local m = known(fname, "the rows axis of x", sh[#sh - 1])
  local n = known(fname, "the columns axis of x", sh[#sh])
  local d = core.sub(core.reshape(core.arange(0, n, 1, "int64"), { 1, n }),
                     core.reshape(core.arange(0, m, 1, "int64"), { m, 1 }))   -- column - row
  local keep = lower and core.less_equal(d, k) or core.greater_equal(d, k)
  return core.where(keep, x, core.full({}, 0, x.dtype))
end

--- mg.tril(x, {k=0}) -> tensor
--- The lower triangle of the matrices in the last two axes of x (NumPy's np.tril, batched): the
--- elements on and below diagonal k (k > 0 above the main diagonal, k < 0 below), zeros elsewhere.
--- Example:
---   print(mg.tril(mg.ones{2, 2}))   -- tensor([[1., 0.], [1., 1.]], dtype=float32)
function M.tril(x, opts) return band("tril", x, opts, true) end

--- mg.triu(x, {k=0}) -> tensor
--- The upper triangle of the matrices in the last two axes of x (NumPy's np.triu, batched): the
--- elements on and above diagonal k, zeros elsewhere.
--- Example:
---   print(mg.triu(mg.ones{2, 2}, {k = 1}))   -- tensor([[0., 1.], [0., 0.]], dtype=float32)
function M.triu(x, opts) return band("triu", x, opts, false) end

local roll_spec = { axis = "integer|table" }

--- mg.roll(x, shift, {axis=}) -> tensor
--- Rolls x by shift positions along axis (tf.roll, np.roll): element i goes to i + shift, those
--- pushed off the end come back at the start; a negative shift rolls the other way. shift and axis
--- may be lists of the same length (an axis listed twice rolls by the sum). Without axis x is rolled
--- as if flattened, then given its shape back. Differentiable.
--- Example:
---   print(mg.roll(mg.tensor{1, 2, 3, 4}, 1))   -- tensor([4, 1, 2, 3], dtype=int64)
function M.roll(x, shift, opts)
  x = need_tensor("roll", "x", x)
  if type(shift) == "table" and not core.is_tensor(shift) and opts == nil and shift.axis ~= nil then
    raise("roll: shift is required before the options table: mg.roll(x, shift, {axis=})")
  end
  options.check("roll", opts, roll_spec)
  local axis = opts and opts.axis
  local shifts = type(shift) == "table" and shift or { shift }
  for i, s in ipairs(shifts) do
    if not is_int(s) then raise(("roll: shift %d must be an integer, got %s"):format(i, tostring(s))) end
  end
  if #shifts == 0 then raise("roll: shift is an empty list") end
  if axis == nil then
    if #shifts ~= 1 then raise(("roll: %d shifts need axis= (one axis for each)"):format(#shifts)) end
    local shape = x.shape
    return core.reshape(M.roll(core.reshape(x, { -1 }), shifts[1], { axis = 1 }), shape)
  end
  local axes = type(axis) == "table" and axis or { axis }
  if #axes ~= #shifts then
    raise(("roll: %d shift%s for %d ax%s: give one shift for each axis"):format(#shifts, #shifts == 1 and "" or "s",
      #axes, #axes == 1 and "is" or "es"))
  end
  local sh = x.shape
  local total, order = {}, {}
  for i, a in ipairs(axes) do
    local ax = norm_axis("roll", "axis", a, #sh, sh)
    if total[ax] == nil then order[#order + 1] = ax; total[ax] = 0 end
    total[ax] = total[ax] + shifts[i]
  end
  for _, ax in ipairs(order) do
    local n = known("roll", "the rolled axis", sh[ax])
    if n > 0 then
      local s = total[ax] % n          -- Lua's % is a floor modulo: in [0, n) for negative shifts too
      if s ~= 0 then
        x = core.concat({ slice_axis(x, ax, n - s, n), slice_axis(x, ax, 0, n - s) }, ax)
      end
    end
  end
  return x
end

--- mg.diag(v, {k=0}) -> tensor
--- A matrix with the vector v on diagonal k and zeros elsewhere (tf.linalg.diag, np.diag of a
--- vector), batched: v of shape (..., n) gives (..., n + |k|, n + |k|). k > 0 is above the main
--- diagonal. The inverse of mg.diag_part; differentiable.
--- Example:
---   print(mg.diag(mg.tensor{1, 2}))   -- tensor([[1, 0], [0, 2]], dtype=int64)
function M.diag(v, opts)
  v = need_tensor("diag", "v", v)
  local k = k_of("diag", opts)
  local sh = v.shape
  if #sh < 1 then raise("diag: v must have at least 1 axis (a vector, or a batch of them), got a scalar") end
  local n = known("diag", "the last axis of v", sh[#sh])
  local N = n + math.abs(k)
  local off = k >= 0 and k or -k * N
  -- (..., n) -> (..., n, N + 1) with v in column 1 -> flattened: v[i] at i (N + 1); shifted by
  -- off and cut to N * N it is diagonal k of an N x N matrix
  local batch = {}
  for i = 1, #sh - 1 do batch[i] = sh[i] end
  local pads = {}
  for i = 1, #sh - 1 do pads[#pads + 1] = 0; pads[#pads + 1] = 0 end
  local t = core.unsqueeze(v, -1)
  pads[#pads + 1] = 0; pads[#pads + 1] = 0           -- the axis of v
  pads[#pads + 1] = 0; pads[#pads + 1] = N           -- the new axis: 1 -> N + 1
  t = core.pad(t, pads)
  local flat = {}
  for i = 1, #batch do flat[i] = batch[i] end
  flat[#flat + 1] = n * (N + 1)
  t = core.reshape(t, flat)
  local len = off + n * (N + 1)
  local fp = {}
  for i = 1, #batch do fp[#fp + 1] = 0; fp[#fp + 1] = 0 end
  fp[#fp + 1] = off; fp[#fp + 1] = len < N * N and N * N - len or 0
  if off > 0 or len < N * N then t = core.pad(t, fp) end
  if len > N * N then t = slice_axis(t, #flat, 0, N * N) end
  local out = {}
  for i = 1, #batch do out[i] = batch[i] end
  out[#out + 1] = N; out[#out + 1] = N
  return core.reshape(t, out)
end

--- mg.diag_part(x, {k=0}) -> tensor
--- Diagonal k of the matrices in the last two axes of x (tf.linalg.diag_part, np.diagonal over the
--- last two axes): shape (..., m, n) gives (..., d), d the diagonal's length (0 when k is past the
--- matrix). A strided view of x, differentiable.
--- Example:
---   print(mg.diag_part(mg.tensor{{1, 2}, {3, 4}}))   -- tensor([1, 4], dtype=int64)
function M.diag_part(x, opts)
  x = need_tensor("diag_part", "x", x)
  local k = k_of("diag_part", opts)
  local sh = x.shape
  if #sh < 2 then
    raise(("diag_part: x must have at least 2 axes (a matrix, or a batch of them), got shape %s"):format(shape_str(sh)))
  end
  local m = known("diag_part", "the rows axis of x", sh[#sh - 1])
  local n = known("diag_part", "the columns axis of x", sh[#sh])
  local off, len
  if k >= 0 then off, len = k, math.min(m, n - k) else off, len = -k * n, math.min(m + k, n) end
  if len < 0 then len = 0 end
  local flat = {}
  for i = 1, #sh - 2 do flat[i] = sh[i] end
  flat[#flat + 1] = m * n
  local t = core.reshape(x, flat)
  if len == 0 then return slice_axis(t, #flat, 0, 0) end
  return slice_axis(t, #flat, off, off + (len - 1) * (n + 1) + 1, n + 1)
end

--- mg.trace(x) -> tensor
--- The sum of the main diagonal of the matrices in the last two axes of x (tf.linalg.trace):
--- shape (..., m, n) gives (...). Differentiable.
--- Example:
---   print(mg.trace(mg.tensor{{1, 2}, {3, 4}}):item())   -- 5
function M.trace(x)
  x = need_tensor("trace", "x", x)
  if #x.shape < 2 then
    raise(("trace: x must have at least 2 axes (a matrix, or a batch of them), got shape %s"):format(shape_str(x.shape)))
  end
  return core.sum(M.diag_part(x), -1)
end

local meshgrid_spec = { indexing = { "string", one_of = { "xy", "ij" } } }

--- mg.meshgrid(x1, x2, ..., {indexing="xy"}) -> t1, t2, ...
--- Coordinate grids from 1-d tensors (np.meshgrid, tf.meshgrid): with n inputs of sizes s1..sn each
--- output has shape (s1, ..., sn) for indexing="ij", and (s2, s1, s3, ..., sn) for "xy" (the
--- default, Cartesian), output i repeating input i along its own axis. Broadcast views of the
--- inputs; differentiable.
--- Example:
---   local X, Y = mg.meshgrid(mg.tensor{1, 2, 3}, mg.tensor{10, 20})
---   print(X.shape[1], X.shape[2], Y[2][1]:item())   -- 2  3  20
function M.meshgrid(...)
  local args = { ... }
  local n = select("#", ...)
  local opts
  local last = args[n]
  if n > 0 and type(last) == "table" and not core.is_tensor(last) and last[1] == nil and next(last) ~= nil then
    opts = last; n = n - 1
  end
  options.check("meshgrid", opts, meshgrid_spec)
  local ij = opts and opts.indexing == "ij"
  local xs, sizes = {}, {}
  for i = 1, n do
    local t = need_tensor("meshgrid", "input " .. i, args[i])
    if #t.shape ~= 1 then
      if #t.shape == 0 then t = core.reshape(t, { 1 }) else t = core.reshape(t, { -1 }) end   -- as NumPy: flattened
    end
    xs[i], sizes[i] = t, t.shape[1]
  end
  if n == 0 then return end
  local out_shape = {}
  for i = 1, n do out_shape[i] = sizes[i] end
  if not ij and n >= 2 then out_shape[1], out_shape[2] = sizes[2], sizes[1] end
  local res = {}
  for i = 1, n do
    local pos = i
    if not ij and n >= 2 and i <= 2 then pos = 3 - i end
    local s = {}
    for d = 1, n do s[d] = 1 end
    s[pos] = sizes[i]
    res[i] = core.expand(core.reshape(xs[i], s), out_shape)
  end
  return (table.unpack or unpack)(res, 1, n)
end

local repeat_spec = { axis = "integer" }

--- mg.repeat(x, repeats, {axis=}) -> tensor
--- Repeats each element of x along axis (np.repeat, tf.repeat): repeats a number (every element
--- that many times) or a list or 1-d integer tensor of one count per element of the axis (a count
--- may be 0). Without axis x is flattened first. A number is an expand and a reshape; counts are
--- a take of the repeated positions (so a tensor of counts is read eagerly: in a staged function
--- give them as a Lua list). Differentiable in x.
--- Example:
---   print(mg["repeat"](mg.tensor{1, 2}, 2))           -- tensor([1, 1, 2, 2], dtype=int64)
---   print(mg["repeat"](mg.tensor{1, 2}, {1, 3}))      -- tensor([1, 2, 2, 2], dtype=int64)
M["repeat"] = function(x, repeats, opts)
  x = need_tensor("repeat", "x", x)
  if type(repeats) == "table" and not core.is_tensor(repeats) and repeats.axis ~= nil and opts == nil then
    raise("repeat: repeats is required before the options table: mg.repeat(x, repeats, {axis=})")
  end
  options.check("repeat", opts, repeat_spec)
  local axis = opts and opts.axis
  if axis == nil then x = core.reshape(x, { -1 }); axis = 1 end
  local sh = x.shape
  if #sh == 0 then x = core.reshape(x, { 1 }); sh = x.shape end
  local ax = norm_axis("repeat", "axis", axis, #sh, sh)
  if core.is_tensor(repeats) then
    if repeats.dtype ~= "int32" and repeats.dtype ~= "int64" and repeats.dtype ~= "uint8" then
      raise("repeat: repeats must be integers, got a " .. repeats.dtype .. " tensor")
    end
    if #repeats.shape > 1 then
      raise("repeat: repeats must be a number or a 1-d list of counts, got shape " .. shape_str(repeats.shape))
    end
    if core.is_symbolic(repeats) then
      raise("repeat: the output size depends on the values of the repeats tensor, which a staged function cannot "
        .. "read while tracing; give repeats as a Lua number or list")
    end
    if #repeats.shape == 0 then repeats = repeats:item() else repeats = repeats:totable() end
  end
  local n = sh[ax]
  if type(repeats) == "table" and #repeats == 1 then repeats = repeats[1] end
  if type(repeats) == "number" then
    if not is_int(repeats) or repeats < 0 then
      raise("repeat: repeats must be a non-negative integer, got " .. tostring(repeats))
    end
    -- (..., n, ...) -> (..., n, 1, ...) -> expanded (..., n, r, ...) -> merged (..., n r, ...)
    local t = core.unsqueeze(x, ax + 1)
    local es, rs = {}, {}
    for i = 1, #sh do
      es[#es + 1] = sh[i]
      if i == ax then es[#es + 1] = repeats end
      rs[#rs + 1] = sh[i]
    end
    if unknown(n) then rs[ax] = -1 else rs[ax] = n * repeats end
    return core.reshape(core.expand(t, es), rs)
  end
  if type(repeats) ~= "table" then
    raise("repeat: repeats must be a number, a list of counts or an integer tensor, got " .. type(repeats))
  end
  known("repeat", "the repeated axis", n)
  if #repeats ~= n then
    raise(("repeat: %d counts given for axis %d of size %d (shape %s): give one count per element, or one number")
      :format(#repeats, ax, n, shape_str(sh)))
  end
  local idx = {}
  for i = 1, n do
    local r = repeats[i]
    if not is_int(r) or r < 0 then
      raise(("repeat: count %d must be a non-negative integer, got %s"):format(i, tostring(r)))
    end
    for _ = 1, r do idx[#idx + 1] = i end
  end
  local it = #idx == 0 and core.full({ 0 }, 0, "int64") or core.tensor(idx, "int64")
  return core.take(x, it, ax)
end

local seqmask_spec = { dtype = "string" }

--- mg.sequence_mask(lengths, maxlen, {dtype="bool"}) -> tensor
--- A mask of shape (..., maxlen) from integer lengths of shape (...): element j (1-based) of row i
--- is true when j <= lengths[i] (tf.sequence_mask). maxlen defaults to the largest length (read
--- eagerly: a staged function must give it). dtype casts the mask (e.g. "float32").
--- Example:
---   print(mg.sequence_mask(mg.tensor{1, 3}, 3))
---   -- tensor([[ true, false, false], [ true,  true,  true]], dtype=bool)
function M.sequence_mask(lengths, maxlen, opts)
  lengths = need_tensor("sequence_mask", "lengths", lengths)
  if type(maxlen) == "table" and opts == nil then opts, maxlen = maxlen, nil end
  options.check("sequence_mask", opts, seqmask_spec)
  local dt = lengths.dtype
  if dt ~= "int32" and dt ~= "int64" and dt ~= "uint8" then
    raise("sequence_mask: lengths must be integers (int32, int64 or uint8), got " .. dt)
  end
  if maxlen == nil then
    if core.is_symbolic(lengths) then
      raise("sequence_mask: maxlen depends on the values of lengths, which a staged function cannot read while "
        .. "tracing; give maxlen")
    end
    maxlen = lengths:numel() == 0 and 0 or core.max(lengths):item()
  end
  if core.is_tensor(maxlen) then
    if core.is_symbolic(maxlen) then raise("sequence_mask: maxlen must be a Lua number in a staged function") end
    maxlen = maxlen:item()
  end
  if not is_int(maxlen) or maxlen < 0 then
    raise("sequence_mask: maxlen must be a non-negative integer, got " .. tostring(maxlen))
  end
  local pos = core.arange(0, maxlen, 1, "int64")
  local mask = core.less(pos, core.unsqueeze(core.cast(lengths, "int64"), -1))
  if opts and opts.dtype and opts.dtype ~= "bool" then mask = core.cast(mask, opts.dtype) end
  return mask
end

--- mg.outer(a, b) -> tensor
--- The outer product of a and b, each flattened (np.outer): out[i][j] = a[i] * b[j]. Differentiable.
--- Example:
---   print(mg.outer(mg.tensor{1, 2}, mg.tensor{3, 4}))   -- tensor([[3, 4], [6, 8]], dtype=int64)
function M.outer(a, b)
  a = need_tensor("outer", "a", a)
  b = need_tensor("outer", "b", b)
  return core.mul(core.reshape(a, { -1, 1 }), core.reshape(b, { 1, -1 }))
end

return M
