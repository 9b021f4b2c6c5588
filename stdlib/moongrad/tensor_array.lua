-- moongrad.tensor_array: mg.TensorArray, TensorFlow's list of tensors that staged loops can fill.
--
-- A Lua table written inside a staged loop body is written once, at trace time; a TensorArray is
-- a value instead, so the loop carries it: `ta = ta:write(i, v)` in the body, `ta:stack()` after.
-- Its methods follow tf.TensorArray (write, read, stack, unstack, gather, scatter, concat, size),
-- with moongrad's 1-based indices. Like TF's in graph mode, write returns the TensorArray to use
-- from then on; the one written to is used up (any later use is an error, so a forgotten
-- `ta = ` cannot silently drop a write).
--
-- Two representations, one behaviour:
-- - eager (made outside a trace): a Lua list of the element tensors; dynamic_size grows it;
--   reading an element never written is an error, as in TF's eager mode;
-- - staged (made while tracing, or given a symbolic index or value): one buffer tensor of shape
--   (size, element_shape...). A write is where(row == i, v, buffer), so gradients flow through
--   it like any op; an index known only when the graph runs is checked then (index_add). The
--   size is fixed when the buffer is made (TF under XLA has the same rule): a write past it with
--   dynamic_size grows the buffer only for an index known while tracing. Unwritten rows read as
--   zeros (XLA's rule).
-- AutoGraph carries a staged TensorArray through if and while as its buffer (the __mg_state
-- protocol below, used by autograph/runtime.lua). Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local options = require("moongrad.options")

local M = {}

local TA = {}
TA.__index = TA
TA.__name = "TensorArray"

local DTYPES = { "float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool" }
local SPEC = {
  dtype = { "string", one_of = DTYPES },
  size = { "integer|tensor", min = 0, check = function(v)
    if core.is_tensor(v) and (v:numel() ~= 1 or core.is_symbolic(v)) then
      return "must be a Lua integer or a one-element eager tensor (a TensorArray's size is known when it is made)"
    end
  end },
  dynamic_size = "boolean",
  element_shape = "table",
  infer_shape = "boolean",
  clear_after_read = "boolean",
  name = "string",
}

local is_tensor, is_symbolic = core.is_tensor, core.is_symbolic

local function shape_str(s)
  local parts = {}
  for i = 1, #s do parts[i] = tostring(s[i]) end
  return "(" .. table.concat(parts, ",") .. ")"
end

local function copy_list(t)
  if not t then return nil end
  local c = {}
  for i = 1, #t do c[i] = t[i] end
  return c
end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

--- mg.TensorArray{dtype=, size=0, dynamic_size=false, element_shape=, infer_shape=true}
--- A list of tensors a staged loop writes (ta:write(i, x)) and stacks (ta:stack()): one slot per
--- iteration, growing when dynamic_size is true. doc/staging.md.
--- Example:
---   local ta = mg.TensorArray{dtype = mg.float32, size = 2}
---   ta = ta:write(1, mg.ones{3}); ta = ta:write(2, mg.zeros{3})
---   print(ta:stack().shape)   -- {2, 3}
function M.new(opts)
  options.check("TensorArray", opts, SPEC)
  if not opts or not opts.dtype then options.raise("TensorArray: dtype is required (e.g. mg.TensorArray{dtype = mg.float32, size = n})") end
  if opts.clear_after_read then
    options.raise("TensorArray: clear_after_read=true is not supported (an element may be read any number of times)")
  end
  local size = opts.size or 0
  if is_tensor(size) then size = size:item() end
  local eshape = copy_list(opts.element_shape)
  if eshape then
    for i, d in ipairs(eshape) do
      if type(d) ~= "number" or d < 0 or d ~= math.floor(d) then
        options.raise(string.format("TensorArray: element_shape[%d] must be a size, got %s", i, tostring(d)))
      end
    end
  end
  local self = setmetatable({ dtype = opts.dtype, _size = size, _dynamic = opts.dynamic_size or false,
    _eshape = eshape, _infer = opts.infer_shape ~= false }, TA)
  if core.tracing() then self._staged = true else self._list = {} end
  return self
end

-- ---- helpers ------------------------------------------------------------------------------

local function fail(msg) options.raise("TensorArray: " .. msg) end

function TA:_live(what)
  if self._used then
    fail(what .. " on a TensorArray that was written to: use the one write/unstack/scatter returned "
      .. "(ta = ta:write(i, v))")
  end
end

-- The TensorArray that replaces self after a write (self is used up).
function TA:_successor()
  local n = setmetatable({ dtype = self.dtype, _size = self._size, _dynamic = self._dynamic,
    _eshape = self._eshape, _infer = self._infer, _staged = self._staged, _list = self._list, _buf = self._buf }, TA)
  self._used = true
  self._list, self._buf = nil, nil
  return n
end

-- An index as a Lua integer when it is known now (a number or an eager tensor), else nil.
local function static_index(i, what)
  if type(i) == "number" then
    if i ~= math.floor(i) then fail(what .. ": an index must be an integer, got " .. tostring(i)) end
    return i
  end
  if is_tensor(i) then
    if i:numel() ~= 1 then fail(what .. ": an index must have one element, got shape " .. shape_str(i.shape)) end
    if i.dtype ~= "int32" and i.dtype ~= "int64" then fail(what .. ": an index tensor must be int32 or int64, got " .. i.dtype) end
    if not is_symbolic(i) then return i:item() end
    return nil
  end
  fail(what .. ": an index must be an integer or an integer tensor, got " .. type(i))
end

-- The value to store: dtype as the array's (numbers converted), shape checked against the elements'.
function TA:_element(v, what)
  local t = v
  if type(v) == "number" or type(v) == "boolean" or (type(v) == "table" and not is_tensor(v)) then
    t = core.tensor(v, self.dtype)
  elseif not is_tensor(v) then
    fail(what .. ": a value must be a tensor or a number, got " .. type(v))
  elseif v.dtype ~= self.dtype then
    fail(string.format("%s: the TensorArray holds %s, the value is %s (cast it first)", what, self.dtype, v.dtype))
  end
  local s = t.shape
  if self._eshape then
    if not same_shape(s, self._eshape) then
      fail(string.format("%s: the elements have shape %s, the value has shape %s", what, shape_str(self._eshape),
        shape_str(s)))
    end
  end
  return t, s
end

local function zeros(shape, dtype) return core.full(shape, 0, dtype) end

local function buffer_shape(n, eshape)
  local s = { n }
  for i, d in ipairs(eshape) do s[i + 1] = d end
  return s
end

-- hit (a bool per row) shaped to broadcast over rows of `rank`-d elements.
local function row_mask(hit, n, rank)
  local s = { n }
  for k = 1, rank do s[k + 1] = 1 end
  return core.reshape(hit, s)
end

-- Switches self (and its successors) to the staged representation: one buffer tensor.
function TA:_to_buffer(eshape)
  if self._staged and self._buf then return end
  eshape = self._eshape or eshape
  local list = self._list
  self._staged, self._list = true, nil
  if not eshape then return end   -- made when the first element's shape is known
  local rows = {}
  for k = 1, self._size do
    local e = list and list[k] or zeros(eshape, self.dtype)
    rows[k] = core.unsqueeze(e, 1)
  end
  self._buf = #rows > 0 and core.concat(rows, 1) or zeros(buffer_shape(0, eshape), self.dtype)
end

-- ---- the TF methods -----------------------------------------------------------------------------

-- ta:write(i, v) -> the TensorArray with element i set to v.
function TA:write(i, v)
  self:_live("write")
  local t, s = self:_element(v, "write")
  local idx = static_index(i, "write")
  if idx and idx < 1 then fail(string.format("write: index %d is out of range (indices start at 1)", idx)) end
  if idx and idx > self._size and not self._dynamic then   -- (checked before self is used up)
    fail(string.format("write: index %d is out of range for a TensorArray of size %d (dynamic_size=false)", idx, self._size))
  end
  local n = self:_successor()
  if n._infer and not n._eshape then n._eshape = s end
  if not n._staged and idx and not is_symbolic(t) then
    if idx > n._size then n._size = idx end   -- dynamic_size (checked above)
    n._list[idx] = t
    return n
  end
  n:_to_buffer(s)
  if not n._buf then n._buf = zeros(buffer_shape(n._size, n._eshape or s), n.dtype) end
  if idx then
    if idx > n._size then   -- dynamic_size (checked above)
      n._buf = core.concat({ n._buf, zeros(buffer_shape(idx - n._size, n._eshape or s), n.dtype) }, 1)
      n._size = idx
    end
    local rows = core.arange(1, n._size + 1, 1, "int64")
    n._buf = core.where(row_mask(core.equal(rows, idx), n._size, #s), t, n._buf)
    return n
  end
  -- an index known when the graph runs: index_add checks its range then
  local it = core.reshape(core.cast(i, "int64"), { 1 })
  local hit = core.index_add(zeros({ n._size }, "float32"), it, core.full({ 1 }, 1, "float32"))
  n._buf = core.where(row_mask(core.greater(hit, 0), n._size, #s), t, n._buf)
  return n
end

-- ta:read(i) -> element i.
function TA:read(i)
  self:_live("read")
  local idx = static_index(i, "read")
  if idx and (idx < 1 or idx > self._size) then
    fail(string.format("read: index %d is out of range for a TensorArray of size %d", idx, self._size))
  end
  if not self._staged and idx then
    local e = self._list[idx]
    if not e then fail(string.format("read: element %d has not been written", idx)) end
    return e
  end
  self:_to_buffer()
  if not self._buf then fail("read: nothing has been written yet and element_shape is not known") end
  if idx then return self._buf[idx] end
  return core.take(self._buf, core.reshape(core.cast(i, "int64"), {}), 1)
end

-- ta:stack() -> the elements stacked on a new first axis: shape (size, element_shape...).
function TA:stack()
  self:_live("stack")
  if not self._staged then
    if self._size == 0 then
      if not self._eshape then fail("stack: the TensorArray is empty and element_shape is not known") end
      return zeros(buffer_shape(0, self._eshape), self.dtype)
    end
    local rows = {}
    for k = 1, self._size do
      local e = self._list[k]
      if not e then fail(string.format("stack: element %d has not been written", k)) end
      rows[k] = core.unsqueeze(e, 1)
    end
    return core.concat(rows, 1)
  end
  self:_to_buffer()
  if not self._buf then fail("stack: nothing has been written yet and element_shape is not known") end
  return self._buf
end

-- ta:gather(indices) -> the elements at indices (a Lua list or an integer tensor), stacked.
function TA:gather(indices)
  self:_live("gather")
  local idx = indices
  if type(indices) == "table" and not is_tensor(indices) then idx = core.tensor(indices, "int64") end
  if not is_tensor(idx) then fail("gather: indices must be a list or an integer tensor") end
  return core.take(self:stack(), idx, 1)
end

-- ta:unstack(value) -> a TensorArray holding the rows of value (its first axis).
function TA:unstack(value)
  self:_live("unstack")
  if not is_tensor(value) or #value.shape == 0 then fail("unstack: the value must be a tensor with a first axis") end
  if value.dtype ~= self.dtype then
    fail(string.format("unstack: the TensorArray holds %s, the value is %s (cast it first)", self.dtype, value.dtype))
  end
  local rows = value.shape[1]
  local es = {}
  for k = 2, #value.shape do es[k - 1] = value.shape[k] end
  if self._eshape and not same_shape(es, self._eshape) then
    fail(string.format("unstack: the elements have shape %s, the value's rows have shape %s",
      shape_str(self._eshape), shape_str(es)))
  end
  if type(rows) ~= "number" then fail("unstack: the value's first axis has a size unknown while tracing") end
  if rows > self._size and not self._dynamic and self._size > 0 then
    fail(string.format("unstack: %d rows for a TensorArray of size %d (dynamic_size=false)", rows, self._size))
  end
  local n = self:_successor()
  n._eshape = n._eshape or es
  n._size = math.max(n._size, rows)
  if n._staged or is_symbolic(value) then
    n._staged, n._list = true, nil
    if rows < n._size then
      value = core.concat({ value, zeros(buffer_shape(n._size - rows, es), n.dtype) }, 1)
    end
    n._buf = value
  else
    n._list = copy_list(n._list) or {}
    for k = 1, rows do n._list[k] = value[k] end
  end
  return n
end

-- ta:scatter(indices, value) -> the TensorArray with element indices[k] set to value's row k.
function TA:scatter(indices, value)
  self:_live("scatter")
  if type(indices) == "table" and not is_tensor(indices) then indices = core.tensor(indices, "int64") end
  if not is_tensor(indices) or #indices.shape ~= 1 then fail("scatter: indices must be a list or a 1-d integer tensor") end
  if is_symbolic(indices) then
    fail("scatter: indices known only when the graph runs are not supported; write the rows one by one")
  end
  local list = indices:totable()
  if not is_tensor(value) or value.shape[1] ~= #list then
    fail(string.format("scatter: %d indices need a value with %d rows", #list, #list))
  end
  local ta = self
  for k, i in ipairs(list) do ta = ta:write(i, value[k]) end
  if ta == self then   -- no indices: still a successor, as TF returns a new TensorArray
    ta = self:_successor()
  end
  return ta
end

-- ta:concat() -> the elements joined along their first axis.
function TA:concat()
  self:_live("concat")
  if not self._staged then
    local parts = {}
    for k = 1, self._size do
      local e = self._list[k]
      if not e then fail(string.format("concat: element %d has not been written", k)) end
      if #e.shape == 0 then fail("concat: the elements are 0-d (use stack)") end
      parts[k] = e
    end
    if #parts == 0 then fail("concat: the TensorArray is empty") end
    return core.concat(parts, 1)
  end
  local b = self:stack()
  if #b.shape < 2 then fail("concat: the elements are 0-d (use stack)") end
  local s = { b.shape[1] * b.shape[2] }
  for k = 3, #b.shape do s[#s + 1] = b.shape[k] end
  return core.reshape(b, s)
end

-- ta:size() -> the number of elements (a Lua integer).
function TA:size()
  self:_live("size")
  return self._size
end

-- ta:element_shape() -> the elements' shape (a table), or nil while unknown.
function TA:element_shape() return copy_list(self._eshape) end

function TA.__tostring(t)
  return string.format("TensorArray(dtype=%s, size=%d%s%s)", t.dtype, t._size,
    t._eshape and (", element_shape=" .. shape_str(t._eshape)) or "", t._used and ", used up" or "")
end

-- ---- carried by AutoGraph's staged if and while -------------------------------------------------
-- flatten(ta, undef): the tensor that stands for ta in a staged statement's state (its buffer),
-- or undef when it has none yet; rebuild(template, value, undef): a fresh TensorArray like
-- template holding that buffer.
TA.__mg_state = {
  flatten = function(ta, undef)
    ta:_live("use")
    ta:_to_buffer()
    return ta._buf or undef
  end,
  rebuild = function(template, value, undef)
    local n = setmetatable({ dtype = template.dtype, _size = template._size, _dynamic = template._dynamic,
      _eshape = template._eshape, _infer = template._infer, _staged = true }, TA)
    if value ~= undef and value ~= nil then
      n._buf = value
      if is_tensor(value) and #value.shape >= 1 then
        n._size = value.shape[1]
        if not n._eshape then
          local es = {}
          for k = 2, #value.shape do es[k - 1] = value.shape[k] end
          n._eshape = es
        end
      end
    end
    return n
  end,
}

function M.is_tensor_array(v) return getmetatable(v) == TA end

return M
