-- moongrad.indexing: boolean masks, tensor indices and the wrappers of the N-d indexing ops
-- (issue 17), merged into the mg namespace by init.lua.
--
-- The kernels are ops of the table (core/kernels/index_nd.c): gather_nd, tensor_scatter_nd_*,
-- the segment reductions and argwhere. What lives here is what needs Lua around them:
--   * counts read from the data: argwhere, mg.where(cond), boolean_mask and x[mask] have a
--     size that depends on the values, so they count the true elements first (one reduction)
--     from a concrete mask (eager, or a constant in a staged function); a mask computed inside a
--     staged function gets an error naming the op and what to use instead;
--   * x[key] and x[key] = v with a tensor key (the bindings' __index/__newindex call
--     __getitem/__setitem below, Lua 5.4 and LuaJIT alike): a bool mask selects like
--     boolean_mask, an integer tensor picks rows (take along the first axis, 1-based);
--   * a write computes the new value functionally (where for a scalar under a mask,
--     tensor_scatter_nd_update otherwise) and stores it the way t[i] = v does: a Variable is
--     assigned (copy on write eagerly, an assign node when staged), a plain tensor is written in
--     place through t[i] = v's own path (mg_tensor_set_index: its storage version is bumped, so a
--     tape that saved the old value refuses to use it), a symbolic plain tensor is an error.
-- Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local options = require("moongrad.options")

local M = {}
local raise = options.raise

local function shape_str(s)
  local t = {}
  for i = 1, #s do t[i] = tostring(s[i]) end
  return "(" .. table.concat(t, ",") .. ")"   -- as the engine writes shapes
end

local function need_tensor(fname, arg, x)
  if not core.is_tensor(x) then raise(("%s: %s must be a tensor, got %s"):format(fname, arg, type(x))) end
end

local function is_int_dtype(dt) return dt == "int32" or dt == "int64" or dt == "uint8" end

-- The number of true elements of m, read eagerly; a staged function cannot know it.
local function count_true(fname, m, what)
  if core.is_symbolic(m) then
    raise(("%s: the size of the result depends on the values of %s, which a staged function (mg.func) "
      .. "cannot read while tracing; call it eagerly, or keep the shape fixed with mg.where(cond, x, y)"):format(fname, what))
  end
  if m:numel() == 0 then return 0 end
  if m.dtype ~= "bool" then m = core.cast(m, "bool") end   -- nonzero is true
  return core.sum(m):item()                                 -- (a bool sum counts, in int64)
end

-- argwhere(x): the 1-based coordinates of the nonzero elements, (n, rank) int64.
local function argwhere(fname, x)
  need_tensor(fname, "x", x)
  return core.argwhere(x, count_true(fname, x, "x"))
end
function M.argwhere(x) return argwhere("argwhere", x) end

-- where(cond) with one argument is argwhere (tf.where); with three, the elementwise select.
function M.where(cond, a, b, ...)
  if a == nil and b == nil and select("#", ...) == 0 then return argwhere("where", cond) end
  return core.where(cond, a, b, ...)
end

-- The mask's shape must be x's from axis `axis` on (1-based) for k = #mask.shape axes.
local function check_mask(fname, x, mask, axis)
  if mask.dtype ~= "bool" then raise(("%s: mask must be a bool tensor, got %s"):format(fname, mask.dtype)) end
  local xs, ms = x.shape, mask.shape
  if #ms == 0 then raise(fname .. ": mask must have at least one dimension, got a 0-d tensor") end
  local ok = axis + #ms - 1 <= #xs
  for j = 1, #ms do ok = ok and xs[axis + j - 1] == ms[j] end
  if not ok then
    raise(("%s: mask of shape %s does not match x of shape %s at axis %d (the mask's shape must be x's "
      .. "from that axis on)"):format(fname, shape_str(ms), shape_str(xs), axis))
  end
end

local function mask_select(fname, x, mask, axis)
  check_mask(fname, x, mask, axis)
  local n = count_true(fname, mask, "the mask")
  local pos = core.reshape(core.argwhere(core.reshape(mask, { -1 }), n), { n })
  local xs, k, shape = x.shape, #mask.shape, {}
  for d = 1, axis - 1 do shape[#shape + 1] = xs[d] end
  shape[#shape + 1] = mask:numel()
  for d = axis + k, #xs do shape[#shape + 1] = xs[d] end
  return core.take(core.reshape(x, shape), pos, axis)
end

local boolean_mask_spec = { axis = { "integer" } }
function M.boolean_mask(x, mask, opts)
  options.check("boolean_mask", opts, boolean_mask_spec)
  need_tensor("boolean_mask", "x", x)
  need_tensor("boolean_mask", "mask", mask)
  local axis = opts and opts.axis or 1
  local nd = #x.shape
  if axis < 0 then axis = nd + axis + 1 end
  if axis < 1 or axis > nd then
    raise(("boolean_mask: axis %d is out of range for x of shape %s"):format(opts.axis, shape_str(x.shape)))
  end
  return mask_select("boolean_mask", x, mask, axis)
end

-- scatter_nd(indices, updates, shape): zeros of `shape` with updates added at the indices (TF).
function M.scatter_nd(indices, updates, shape)
  need_tensor("scatter_nd", "indices", indices)
  need_tensor("scatter_nd", "updates", updates)
  if core.is_tensor(shape) then shape = shape:totable() end
  if type(shape) ~= "table" then raise("scatter_nd: shape must be a table of sizes, got " .. type(shape)) end
  return core.tensor_scatter_nd_add(core.full(shape, 0, updates.dtype), indices, updates)
end

-- ---- segments ---------------------------------------------------------------------------------

local segment_spec = { num_segments = { "integer", min = 0 } }

-- The number of segments: given, or (sorted ids) the last id, read eagerly.
local function num_segments(fname, ids, opts)
  options.check(fname, opts, segment_spec)
  need_tensor(fname, "segment_ids", ids)
  if opts and opts.num_segments then return opts.num_segments end
  if core.is_symbolic(ids) then
    raise(fname .. ": the number of segments is the last segment id, which a staged function (mg.func) "
      .. "cannot read while tracing; give it: " .. fname .. "(data, ids, {num_segments = n})")
  end
  if ids:numel() == 0 then return 0 end
  local n = core.max(ids):item()
  return n > 0 and n or 0
end

for _, kind in ipairs({ "sum", "prod", "max", "min" }) do
  local fname = "segment_" .. kind
  local op = core[fname]
  M[fname] = function(data, ids, opts) return op(data, ids, num_segments(fname, ids, opts)) end
end

function M.segment_mean(data, ids, opts)
  local n = num_segments("segment_mean", ids, opts)
  need_tensor("segment_mean", "data", data)
  if data.dtype ~= "float32" and data.dtype ~= "float64" then
    raise("segment_mean: data must be float32 or float64, got " .. data.dtype .. " (cast first)")
  end
  local sum = core.segment_sum(data, ids, n)
  local count = core.unsorted_segment_sum(core.full(ids.shape, 1, data.dtype), ids, n)
  local shape = { n }
  for d = 2, #data.shape do shape[d] = 1 end
  return sum / core.reshape(core.maximum(count, 1), shape)
end

-- ---- x[key] and x[key] = v ----------------------------------------------------------------------

-- Errors of the metamethods at the user's line: the first frame past this function,
-- __getitem/__setitem and the binding's __index/__newindex (a C function in Lua 5.4, a Lua one
-- in the FFI binding, which calls without a tail call) that is neither C nor moongrad's own
-- (AutoGraph's runtime calls the metamethods for a converted function's t[k] = v).
local function user_level()   -- as error() in at_user counts (getinfo counts this function too)
  local level = 5
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return 0 end
    local src = info.source
    if info.what ~= "C" and not options.is_own_source(src) and not src:find("moongrad/core[_%w]*%.lua$") then
      return level - 1
    end
    level = level + 1
  end
end
local function at_user(f, ...)
  local ok, a = pcall(f, ...)
  if ok then return a end
  local msg = tostring(a):gsub("^[^\n]-:%d+: ", "", 1)
  error(msg, user_level())
end

local function getitem(t, key)
  if #t.shape == 0 then raise("index: cannot index a 0-d tensor (use t:item())") end
  if key.dtype == "bool" then return mask_select("index", t, key, 1) end
  if is_int_dtype(key.dtype) then return core.take(t, key, 1) end
  raise(("index: a %s tensor cannot index a tensor (use a bool mask or an integer tensor of positions)"):format(key.dtype))
end

-- v broadcast to `shape` (a scalar, or a tensor whose shape broadcasts to it).
local function broadcast_to(v, shape, what)
  if not core.is_tensor(v) then v = core.tensor(v) end
  local vs = v.shape
  local ok = #vs <= #shape
  for j = 1, #vs do
    local d = vs[#vs - j + 1]
    ok = ok and (d == 1 or d == shape[#shape - j + 1])
  end
  if not ok then
    raise(("index assignment: a value of shape %s does not fit %s of shape %s"):format(shape_str(vs), what, shape_str(shape)))
  end
  return core.expand(core.reshape(v, (function()
    local s = {}
    for j = 1, #shape - #vs do s[j] = 1 end
    for j = 1, #vs do s[#s + 1] = vs[j] end
    return s
  end)()), shape)
end

local function store(t, new)
  if t:is_variable() then
    if new.dtype ~= t.dtype and not (is_int_dtype(t.dtype) and (new.dtype == "float32" or new.dtype == "float64")) then
      new = core.cast(new, t.dtype)
    end
    t:assign(new)
  elseif core.is_symbolic(t) then
    raise("index assignment: this tensor is a value of a staged function (a node of its graph, not a buffer), "
      .. "so t[mask] = v cannot write into it; build a new tensor instead (mg.where(mask, v, t), "
      .. "mg.tensor_scatter_nd_update), or keep the state in an mg.Variable (v[mask] = x updates a Variable "
      .. "in a staged function)")
  else
    core.unsqueeze(t, 1)[1] = new   -- t[i] = v's path: written in place, the storage version bumped
  end
end

local function setitem(t, key, v)
  if #t.shape == 0 then raise("index: cannot index a 0-d tensor (use t:item())") end
  local ts = t.shape
  if type(v) == "number" and is_int_dtype(t.dtype) and v ~= math.floor(v) then
    raise(("index assignment: %s does not fit a tensor of dtype %s (it has a fraction)"):format(tostring(v), t.dtype))
  end
  if key.dtype == "bool" then
    check_mask("index", t, key, 1)
    local k = #key.shape
    if not core.is_tensor(v) or #v.shape == 0 then   -- a scalar: a where, fine in a staged function too
      local ms = {}
      for j = 1, #ts do ms[j] = j <= k and ts[j] or 1 end
      local val = core.is_tensor(v) and core.cast(v, t.dtype) or v
      return store(t, core.where(core.reshape(key, ms), val, t))
    end
    local n = count_true("index assignment", key, "the mask")
    local want = { n }
    for d = k + 1, #ts do want[#want + 1] = ts[d] end
    local coords = core.argwhere(key, n)
    return store(t, core.tensor_scatter_nd_update(t, coords, broadcast_to(v, want, "the selection")))
  end
  if not is_int_dtype(key.dtype) then
    raise(("index: a %s tensor cannot index a tensor (use a bool mask or an integer tensor of positions)"):format(key.dtype))
  end
  local m = key:numel()
  local want, rows = {}, { m }
  for j = 1, #key.shape do want[j] = key.shape[j] end
  for d = 2, #ts do want[#want + 1] = ts[d]; rows[#rows + 1] = ts[d] end
  local val = core.reshape(broadcast_to(v, want, "the selected rows"), rows)
  return store(t, core.tensor_scatter_nd_update(t, core.reshape(key, { m, 1 }), val))
end

core.methods.__getitem = function(t, key)
  local r = at_user(getitem, t, key)   -- not a tail call: at_user counts this frame
  return r
end
core.methods.__setitem = function(t, key, v) at_user(setitem, t, key, v) end

-- ---- help ------------------------------------------------------------------------------------

M.docs = {
  argwhere = "mg.argwhere(x) -> tensor\n  The 1-based coordinates of the nonzero elements of x in row-major order, an int64 tensor\n"
    .. "  of shape (n, rank) (numpy.argwhere). n depends on the data: a staged function can take it only of a constant.\n"
    .. "  Example: mg.argwhere(mg.tensor{{true, false}, {false, true}})   -- tensor([[1, 1], [2, 2]], dtype=int64)",
  where = "mg.where(cond, a, b) or mg.where(cond) -> tensor\n  With three arguments: a where cond is true, else b"
    .. " (broadcast). With one: the 1-based\n  coordinates of the true elements, an int64 (n, rank) tensor (tf.where;"
    .. " n depends on the data: staged, cond must be a constant).\n  Example: mg.where(mg.tensor{false, true, true})   -- tensor([[2], [3]], dtype=int64)",
  boolean_mask = "mg.boolean_mask(x, mask, {axis=1}) -> tensor\n  The entries of x where the bool mask is true"
    .. " (tf.boolean_mask): mask's shape is x's from axis on,\n  and those axes become one of the selected entries,"
    .. " in row-major order. x[mask] is the same with axis 1.\n  The size depends on the mask's values: in a staged"
    .. " function the mask must be a constant.\n  Gradients flow to x.\n  Example: mg.boolean_mask(mg.tensor{1, 2, 3}, mg.tensor{true, false, true})   -- tensor([1, 3], dtype=int64)",
  scatter_nd = "mg.scatter_nd(indices, updates, shape) -> tensor\n  Zeros of shape with updates added at the slices"
    .. " the rows of indices name (TF's tf.scatter_nd;\n  1-based indices, repeated ones add up).\n"
    .. "  Example: mg.scatter_nd(mg.tensor{{2}, {4}}, mg.tensor{5.0, 7.0}, {4})   -- tensor([0., 5., 0., 7.], dtype=float32)",
  segment_mean = "mg.segment_mean(data, segment_ids, {num_segments=}) -> tensor\n  The mean of each segment's rows"
    .. " (sorted 1-based ids, as mg.segment_sum); an empty segment gives 0.\n"
    .. "  Example: mg.segment_mean(mg.tensor{1.0, 3.0, 5.0}, mg.tensor{1, 1, 2})   -- tensor([2., 5.], dtype=float32)",
}
for _, kind in ipairs({ "sum", "prod", "max", "min" }) do
  M.docs["segment_" .. kind] = ("mg.segment_%s(data, segment_ids, {num_segments=}) -> tensor\n  The %s of the rows"
    .. " of data with each id: segment_ids is a sorted 1-d integer tensor of\n  data's first size, counted from 1"
    .. " (tf.math.segment_%s); num_segments defaults to the last id\n  (read eagerly: a staged function gives it)."):format(
      kind, kind == "sum" and "sum" or kind == "prod" and "product" or kind == "max" and "maximum" or "minimum", kind)
end

return M
