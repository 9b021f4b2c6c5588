-- moongrad.data.windowing: ds:window, ds:group_by_window and
-- ds:bucket_by_sequence_length (TF's tf.data).
--
-- window follows TF's WindowDataset: a buffer of (size-1)*stride+1 input
-- elements gives one window (every stride-th of them, up to size), then the
-- buffer drops its first `shift` elements; after the input ends the buffer
-- keeps shrinking, so the last windows are partial unless drop_remainder.
-- A window is, as in TF, the element's structure with a Dataset in place of
-- each component (a single-tensor element: one Dataset), so
-- ds:window(n):flat_map(function(w) return w:batch(n) end) batches windows.
--
-- group_by_window collects elements per key (key_func) until a key's window
-- is full (window_size, or window_size_func(key)), hands it to
-- reduce_func(key, window_dataset) and emits that dataset's elements; at the
-- end of the input the partial windows are flushed in ascending key order
-- (TF keeps them in a std::map). bucket_by_sequence_length is TF's: the
-- bucket of an element is the first i with boundary[i-1] <= length <
-- boundary[i], its batch size bucket_batch_sizes[i], and each full bucket is
-- padded_batch'ed. Portable Lua.
local core = require("moongrad.core")
local Dataset = require("moongrad.data.dataset")
local structure = require("moongrad.data.structure")
local options = require("moongrad.options")
local C = require("moongrad.data.combinators")

local INF, UNK = Dataset.INFINITE, Dataset.UNKNOWN
local raise, fail = C.raise, C.fail

-- The window of a list of elements: per component, a dataset of its values.
local function make_window(elems)
  local template = structure.template(elems[1])
  local columns = {}
  for i, e in ipairs(elems) do
    local leaves = structure.flatten(e)
    if i == 1 then for j = 1, #leaves do columns[j] = {} end end
    if #leaves ~= #columns then
      fail("Dataset:window: element %d of a window has %d components, element 1 has %d", i, #leaves, #columns)
    end
    for j, v in ipairs(leaves) do columns[j][i] = v end
  end
  local sets = {}
  for j, col in ipairs(columns) do sets[j] = C.from_list(col, "window") end
  return (structure.unflatten(template, sets))
end

local function window_card(c, size, shift, stride, drop)
  if c == INF or c == UNK then return c end
  if not drop then return math.ceil(c / shift) end
  local target = (size - 1) * stride + 1
  if c < target then return 0 end
  return math.floor((c - target) / shift) + 1
end

local WINDOW_OPTS = { shift = { "integer", min = 1 }, stride = { "integer", min = 1 }, drop_remainder = "boolean" }

--- ds:window(size, {shift=size, stride=1, drop_remainder=false})
--- Windows of size elements, a new one every shift elements, taking every stride-th element
--- (TF's window). Each window is the element's structure with a Dataset for each component (a
--- single-tensor element gives one Dataset); the last windows are partial unless drop_remainder.
--- Turn windows into tensors with flat_map and batch.
--- Example:
---   local ds = mg.data.Dataset.range(7):window(3, {shift = 2})
---     :flat_map(function(w) return w:batch(3) end)   -- {0,1,2} {2,3,4} {4,5,6} {6}
function Dataset:window(size, opts)
  Dataset._check_self(self, "window")
  if size == nil then raise("Dataset:window: size is required (a positive integer)") end
  options.value("Dataset:window", "size", size, { "integer", min = 1 })
  opts = options.check("Dataset:window", opts, WINDOW_OPTS)
  local shift, stride, drop = opts.shift or size, opts.stride or 1, opts.drop_remainder or false
  local target = (size - 1) * stride + 1
  return Dataset._new("window", self, window_card(self.card, size, shift, stride, drop), function(node)
    local up, buf, done, skip = node.input:_iter(), {}, false, 0
    return function()
      while skip > 0 and not done do   -- shift beyond the buffer: drop input elements unseen
        if up() == nil then done = true end
        skip = skip - 1
      end
      while not done and #buf < target do
        local e = up()
        if e == nil then done = true else buf[#buf + 1] = e end
      end
      if #buf == 0 or (drop and #buf < target) then return nil end
      local elems = {}
      for i = 1, #buf, stride do
        if #elems == size then break end
        elems[#elems + 1] = buf[i]
      end
      local w = make_window(elems)
      if shift <= #buf then
        local rest = {}
        for i = shift + 1, #buf do rest[#rest + 1] = buf[i] end
        buf = rest
      else
        skip, buf = shift - #buf, {}
      end
      return w
    end
  end, { size = size, shift = shift, stride = stride, drop_remainder = drop })
end

-- The key of an element from key_func (an integer: a Lua number or a one-element tensor).
local function key_of(what, key_func, e)
  local k = C.call(what, "key_func", key_func, structure.unpacked(e))
  local key = C.to_integer(k)
  if key == nil then fail("%s: key_func must return an integer (a number or an int64 scalar), got %s", what, options.show(k)) end
  return key
end

local GROUP_OPTS = { window_size = { "integer", min = 1 }, window_size_func = "function" }

-- The grouping loop shared by group_by_window and bucket_by_sequence_length:
-- key(e) -> integer, size(key) -> window size, reduce(key, list) -> dataset.
local function grouped(input, what, key, size, reduce)
  return Dataset._new(what:match(":(.*)$"), input, input.card == INF and INF or UNK, function(node)
    local up, groups, input_done, inner = node.input:_iter(), {}, false, nil
    local function flush_one()
      local keys = {}
      for k in pairs(groups) do keys[#keys + 1] = k end
      if #keys == 0 then return nil end
      table.sort(keys)
      local list = groups[keys[1]]
      groups[keys[1]] = nil
      return keys[1], list
    end
    local function open(k, list)
      local d = reduce(k, list)
      if not Dataset.is_dataset(d) then fail("%s: reduce_func must return a Dataset, got %s", what, options.show(d)) end
      inner = d:_iter()
    end
    return function()
      while true do
        if inner then
          local e = inner()
          if e ~= nil then return e end
          inner = nil
        end
        if not input_done then
          local e = up()
          if e == nil then input_done = true
          else
            local k = key(e)
            local list = groups[k] or {}
            groups[k] = list
            list[#list + 1] = e
            local n = size(k)
            if #list >= n then groups[k] = nil; open(k, list) end
          end
        else
          local k, list = flush_one()
          if k == nil then return nil end
          open(k, list)
        end
      end
    end
  end)
end

--- ds:group_by_window(key_func, reduce_func, {window_size=, window_size_func=})
--- Groups elements by key_func(x, y) (an integer) into windows of window_size elements (or
--- window_size_func(key) for each key; give one of the two); each full window goes to
--- reduce_func(key, window) — window a Dataset of the grouped elements — which returns a
--- Dataset whose elements are emitted. When the input ends, the partial windows are reduced
--- in ascending key order.
--- Example:
---   local ds = mg.data.Dataset.range(10):group_by_window(function(x) return x % 2 end,
---     function(key, w) return w:batch(5) end, {window_size = 5})   -- evens, then odds
function Dataset:group_by_window(key_func, reduce_func, opts)
  Dataset._check_self(self, "group_by_window")
  C.check_fn("Dataset:group_by_window", "key_func", key_func)
  C.check_fn("Dataset:group_by_window", "reduce_func", reduce_func)
  opts = options.check("Dataset:group_by_window", opts, GROUP_OPTS)
  if (opts.window_size == nil) == (opts.window_size_func == nil) then
    raise("Dataset:group_by_window: give exactly one of window_size and window_size_func")
  end
  local what = "Dataset:group_by_window"
  local size
  if opts.window_size then
    size = function() return opts.window_size end
  else
    local f = opts.window_size_func
    size = function(k)
      local n = C.to_integer(C.call(what, "window_size_func", f, core.tensor(k, "int64")))
      if n == nil or n < 1 then fail("%s: window_size_func must return a positive integer for key %d", what, k) end
      return n
    end
  end
  return grouped(self, what, function(e) return key_of(what, key_func, e) end, size, function(k, list)
    return C.call(what, "reduce_func", reduce_func, core.tensor(k, "int64"), C.from_list(list, "window"))
  end)
end

local BUCKET_OPTS = {
  padded_shapes = "table", padding_values = "number|table", pad_to_bucket_boundary = "boolean",
  no_padding = "boolean", drop_remainder = "boolean",
}

local function check_int_list(what, name, t, min)
  if type(t) ~= "table" or core.is_tensor(t) then raise("%s: %s must be a list of integers, got %s", what, name, options.show(t)) end
  for i, v in ipairs(t) do
    if type(v) ~= "number" or v ~= math.floor(v) or v < min then
      raise("%s: %s[%d] must be an integer >= %d, got %s", what, name, i, min, options.show(v))
    end
  end
end

-- padded_shapes for a bucket: the given structure with -1 (TF's None) replaced by filler, or,
-- without one, axis 1 of the one tensor component of rank >= 1 set to filler (the sequence axis).
local function bucket_shapes(given, first, filler)
  if given then
    if filler == nil then return given end
    local function fill(s)
      if type(s) ~= "table" then return s end
      local out, is_shape = {}, true
      for _, v in pairs(s) do if type(v) ~= "number" then is_shape = false end end
      for k, v in pairs(s) do
        if is_shape and v == -1 then out[k] = filler else out[k] = fill(v) end
      end
      return out
    end
    return fill(given)
  end
  if filler == nil then return nil end
  local shapes, seqs = {}, 0
  for j, v in ipairs(structure.flatten(first)) do
    local s = {}
    if core.is_tensor(v) then for d = 1, v.ndim do s[d] = d == 1 and filler or -1 end end
    if #s > 0 then seqs = seqs + 1 end
    shapes[j] = s
  end
  -- which axes are sequence axes is not knowable from values (TF reads it from static shapes)
  if seqs > 1 then
    fail("Dataset:bucket_by_sequence_length: pad_to_bucket_boundary with %d components of rank >= 1: give "
      .. "padded_shapes, with -1 on the axes to pad to the bucket boundary", seqs)
  end
  if structure.kind(first) == "leaf" then return shapes[1] end
  return (structure.unflatten(structure.template(first), shapes))
end

--- ds:bucket_by_sequence_length(element_length_func, bucket_boundaries, bucket_batch_sizes, {padded_shapes=, padding_values=0, pad_to_bucket_boundary=false, no_padding=false, drop_remainder=false})
--- TF's bucketing of variable-length elements: element_length_func(x, y) gives a length; an
--- element goes to bucket i when boundaries[i-1] <= length < boundaries[i] (the first bucket
--- from 0, the last unbounded), and a bucket is emitted as a padded batch when it holds
--- bucket_batch_sizes[i] elements (one more size than boundaries); the rest are flushed at the
--- end. padded_shapes/padding_values are padded_batch's; pad_to_bucket_boundary pads to the
--- bucket's boundary - 1 instead of the batch's longest (the -1 entries of padded_shapes, or
--- without them axis 1 of the one component of rank >= 1); no_padding batches without padding.
--- Example:
---   local seqs = {{1}, {2, 2}, {3, 3, 3}, {4}, {5, 5}}
---   local ds = mg.data.Dataset.from_generator(function()
---     local i = 0
---     return function() i = i + 1; return seqs[i] and mg.tensor(seqs[i], "int64") end
---   end):bucket_by_sequence_length(function(x) return x.shape[1] end, {2}, {2, 2})
function Dataset:bucket_by_sequence_length(length_func, boundaries, batch_sizes, opts)
  Dataset._check_self(self, "bucket_by_sequence_length")
  local what = "Dataset:bucket_by_sequence_length"
  C.check_fn(what, "element_length_func", length_func)
  check_int_list(what, "bucket_boundaries", boundaries, 1)
  for i = 2, #boundaries do
    if boundaries[i] <= boundaries[i - 1] then
      raise("%s: bucket_boundaries must increase, got %d after %d", what, boundaries[i], boundaries[i - 1])
    end
  end
  check_int_list(what, "bucket_batch_sizes", batch_sizes, 1)
  if #batch_sizes ~= #boundaries + 1 then
    raise("%s: bucket_batch_sizes must have len(bucket_boundaries) + 1 = %d entries, got %d", what, #boundaries + 1, #batch_sizes)
  end
  opts = options.check(what, opts, BUCKET_OPTS)
  if opts.no_padding and (opts.padded_shapes or opts.padding_values or opts.pad_to_bucket_boundary) then
    raise("%s: no_padding cannot be combined with padded_shapes, padding_values or pad_to_bucket_boundary", what)
  end
  local drop = opts.drop_remainder or false
  local function bucket(e)
    local len = C.to_integer(C.call(what, "element_length_func", length_func, structure.unpacked(e)))
    if len == nil or len < 0 then fail("%s: element_length_func must return a non-negative integer", what) end
    local b = 1
    while b <= #boundaries and len >= boundaries[b] do b = b + 1 end
    if opts.pad_to_bucket_boundary and b > #boundaries then
      fail("%s: when pad_to_bucket_boundary=true, elements must have length < max(bucket_boundaries) = %d, got %d",
        what, boundaries[#boundaries], len)
    end
    return b
  end
  return grouped(self, what, bucket, function(b) return batch_sizes[b] end, function(b, list)
    local ds = C.from_list(list, "window")
    if opts.no_padding then return ds:batch(batch_sizes[b], { drop_remainder = drop }) end
    local filler = opts.pad_to_bucket_boundary and boundaries[b] - 1 or nil
    return ds:padded_batch(batch_sizes[b], { padded_shapes = bucket_shapes(opts.padded_shapes, list[1], filler),
      padding_values = opts.padding_values, drop_remainder = drop })
  end)
end

return Dataset
