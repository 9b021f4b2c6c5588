-- moongrad.data.combinators: datasets made of other datasets or of one value
-- (TF's tf.data): Dataset.from_tensors, ds:interleave, ds:flat_map,
-- ds:enumerate, ds:scan, ds:reduce, ds:shard and
-- Dataset.sample_from_datasets.
--
-- Each follows tf.data's element order exactly (interleave is TF's
-- InterleaveDataset loop: a cycle of open iterators read block_length
-- elements at a time, a finished one replaced by the next input element's
-- dataset in the same slot). Everything runs in the Lua thread, one element
-- at a time, so the order is deterministic whatever `deterministic` says.
-- Indices are 1-based as everywhere in moongrad (DESIGN.md): enumerate
-- counts from 1 and shard's index is in 1..num_shards. User functions run
-- eagerly (not staged by mg.func): they return datasets, states or keys, not
-- only tensors. Portable Lua.
local core = require("moongrad.core")
local Dataset = require("moongrad.data.dataset")
local structure = require("moongrad.data.structure")
local rng = require("moongrad.data.rng")
local options = require("moongrad.options")

local M = {}
local unpack = table.unpack or unpack
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local INF, UNK = Dataset.INFINITE, Dataset.UNKNOWN

-- fn(...) with its error re-raised as "<what>: <name> raised: ..." at the user's line.
function M.call(what, name, fn, ...)
  local res = pack(pcall(fn, ...))
  if not res[1] then
    error(options.user_where() .. string.format("%s: %s raised: %s", what, name, tostring(res[2])), 0)
  end
  return unpack(res, 2, res.n)
end

-- Raises at the user's line (construction-time errors).
local function raise(fmt, ...) options.raise(string.format(fmt, ...)) end
M.raise = raise

-- An error while iterating: the user's line is the loop that pulls elements.
local function fail(fmt, ...) error(options.user_where() .. string.format(fmt, ...), 0) end
M.fail = fail

local function check_fn(what, name, fn)
  if type(fn) ~= "function" then raise("%s: %s must be a function, got %s", what, name, options.show(fn)) end
end
M.check_fn = check_fn

-- A Lua integer from a number or a one-element numeric tensor (keys, lengths), else nil.
function M.to_integer(v)
  if core.is_tensor(v) then
    local n = 1
    for _, d in ipairs(v.shape) do n = n * d end
    if n ~= 1 or v.dtype == "bool" then return nil end
    v = v:item()
  end
  if type(v) ~= "number" or v ~= math.floor(v) then return nil end
  return v
end

-- A dataset over a Lua list of elements (the windows of window/group_by_window, list_files' names).
function M.from_list(list, kind)
  local n = #list
  return Dataset._new(kind or "from_list", nil, n, function()
    local i = 0
    return function()
      if i >= n then return nil end
      i = i + 1
      return list[i]
    end
  end)
end

-- Numbers and booleans become 0-d tensors (TF converts every component to a tensor); strings
-- and tensors stay.
local function convert_leaf(v, path)
  if core.is_tensor(v) or type(v) == "string" then return v end
  if type(v) == "number" or type(v) == "boolean" then return core.tensor(v) end
  raise("Dataset.from_tensors: %s must be a tensor, a number, a boolean or a string, got %s", path, options.show(v))
end

--- Dataset.from_tensors(x) | (x, y, ...) | ({x, y}) | ({image=x, label=y})
--- A Dataset of exactly one element: the value given, whole (from_tensor_slices slices it into
--- rows instead). Numbers and booleans become 0-d tensors; strings stay Lua strings.
--- Example:
---   local ds = mg.data.Dataset.from_tensors(mg.tensor{1, 2, 3})
---   print(ds:cardinality())   --> 1
function M.from_tensors(...)
  local n = select("#", ...)
  if n == 0 then raise("Dataset.from_tensors: expected a value (a tensor, a string or a table of them), got nothing") end
  local value = n == 1 and (...) or { ... }
  local leaves = structure.flatten(value)
  if #leaves == 0 then raise("Dataset.from_tensors: the table holds no values") end
  for i, v in ipairs(leaves) do leaves[i] = convert_leaf(v, "component " .. i) end
  local elem = structure.unflatten(structure.template(value), leaves)
  return Dataset._new("from_tensors", nil, 1, function()
    local done = false
    return function()
      if done then return nil end
      done = true
      return elem
    end
  end)
end

-- The iterator of the dataset fn made for an element (interleave, flat_map).
local function open_inner(what, fn, e)
  local d = M.call(what, "map_func", fn, structure.unpacked(e))
  if not Dataset.is_dataset(d) then
    fail("%s: map_func must return a Dataset, got %s", what, options.show(d))
  end
  return d:_iter()
end

local INTERLEAVE_OPTS = {
  cycle_length = { "integer", check = function(v) if v < 1 and v ~= Dataset.AUTOTUNE then return "must be a positive integer or mg.data.AUTOTUNE, got " .. v end end },
  block_length = { "integer", min = 1 },
  num_parallel_calls = { "integer", check = function(v) if v < 1 and v ~= Dataset.AUTOTUNE then return "must be a positive integer or mg.data.AUTOTUNE, got " .. v end end },
  deterministic = "boolean",
}

--- ds:interleave(map_func, {cycle_length=mg.data.AUTOTUNE, block_length=1, num_parallel_calls=, deterministic=})
--- TF's interleave: map_func(x, y) turns each element into a Dataset; cycle_length of them are
--- read at once, block_length consecutive elements from each in turn; one that ends is replaced
--- (in its slot) by the dataset of the next input element. AUTOTUNE (the default) is 4 here, the
--- same on every machine. num_parallel_calls and deterministic are accepted for TF code: the work
--- runs in the Lua thread, in this order, always.
--- Example:
---   local ds = mg.data.Dataset.range(1, 4):interleave(function(x)
---     return mg.data.Dataset.from_tensors(x):repeat_(2) end, {cycle_length = 2})
---   -- 1, 1, 2, 2 interleaved block by block: 1 2 1 2 3 3
function Dataset:interleave(fn, opts)
  Dataset._check_self(self, "interleave")
  check_fn("Dataset:interleave", "map_func", fn)
  opts = options.check("Dataset:interleave", opts, INTERLEAVE_OPTS)
  local cycle = opts.cycle_length
  if cycle == nil or cycle == Dataset.AUTOTUNE then cycle = 4 end
  local block = opts.block_length or 1
  local card = self.card == 0 and 0 or UNK
  return Dataset._new("interleave", self, card, function(node)
    local up, slots, open, index, in_block, input_done = node.input:_iter(), {}, 0, 1, 0, false
    local function advance() in_block = 0; index = index % cycle + 1 end
    return function()
      while not input_done or open > 0 do
        local it = slots[index]
        if it then
          local e = it()
          if e ~= nil then
            in_block = in_block + 1
            if in_block >= block then advance() end
            return e
          end
          slots[index], open = nil, open - 1
          advance()
        elseif not input_done then
          local e = up()
          if e == nil then input_done = true
          else slots[index], open = open_inner("Dataset:interleave", fn, e), open + 1 end
        else
          advance()
        end
      end
      return nil
    end
  end, { cycle_length = cycle, block_length = block })
end

--- ds:flat_map(map_func)
--- map_func(x, y) turns each element into a Dataset; the result is their elements, one dataset
--- after the other (interleave with cycle_length=1).
--- Example:
---   local ds = mg.data.Dataset.from_tensor_slices(mg.tensor{{1, 2}, {3, 4}})
---     :flat_map(function(row) return mg.data.Dataset.from_tensor_slices(row) end)   -- 1 2 3 4
function Dataset:flat_map(fn)
  Dataset._check_self(self, "flat_map")
  check_fn("Dataset:flat_map", "map_func", fn)
  return Dataset._new("flat_map", self, self.card == 0 and 0 or UNK, function(node)
    local up, inner = node.input:_iter(), nil
    return function()
      while true do
        if inner then
          local e = inner()
          if e ~= nil then return e end
          inner = nil
        end
        local x = up()
        if x == nil then return nil end
        inner = open_inner("Dataset:flat_map", fn, x)
      end
    end
  end)
end

--- ds:enumerate(start=1)
--- Pairs each element with its position: the elements are {i, element} with i a 0-d int64 tensor
--- counting from start (1 by default: moongrad's indices are 1-based; TF counts from 0, so pass
--- 0 for TF's numbering). A tuple element stays one value: for i, xy in ds:enumerate():iter().
--- Example:
---   for i, x in mg.data.Dataset.from_tensor_slices(mg.tensor{10, 20}):enumerate():iter() do print(i:item(), x:item()) end
function Dataset:enumerate(start)
  Dataset._check_self(self, "enumerate")
  if start == nil then start = 1 end
  if type(start) ~= "number" or start ~= math.floor(start) then
    raise("Dataset:enumerate: start must be an integer, got %s", options.show(start))
  end
  return Dataset._new("enumerate", self, self.card, function(node)
    local up, i = node.input:_iter(), start - 1
    return function()
      local e = up()
      if e == nil then return nil end
      i = i + 1
      return { core.tensor(i, "int64"), e }
    end
  end)
end

-- The new state and the output of one call of a scan function.
local function scan_step(fn, state, e)
  local res = pack(M.call("Dataset:scan", "scan_func", fn, state, e))
  if res.n < 2 or res[1] == nil or res[2] == nil then
    fail("Dataset:scan: scan_func must return the new state and the output element, got %d value(s)",
      res[1] == nil and 0 or (res[2] == nil and 1 or res.n))
  end
  local out = res.n == 2 and res[2] or { unpack(res, 2, res.n) }
  return res[1], out
end

-- The number of leaves of a state and their kinds, to check a function keeps its state's structure.
local function state_signature(s)
  local parts = {}
  for i, v in ipairs(structure.flatten(s)) do
    parts[i] = core.is_tensor(v) and (v.dtype .. "(" .. table.concat(v.shape, ",") .. ")") or type(v)
  end
  return table.concat(parts, ", ")
end

local function check_state(what, fname, init_sig, new, count)
  local sig = state_signature(new)
  if sig ~= init_sig then
    fail("%s: %s changed the state's structure at element %d: {%s} became {%s} (keep the dtypes and shapes of "
      .. "initial_state)", what, fname, count, init_sig, sig)
  end
end

--- ds:scan(initial_state, scan_func)
--- TF's scan: a running state. scan_func(state, element) returns the new state and the output
--- element (several outputs make a tuple); the state keeps initial_state's structure, dtypes and
--- shapes. element is the whole element (a tuple as the table {x, y}), as in TF.
--- Example:
---   local sums = mg.data.Dataset.range(1, 5):scan(mg.tensor(0, "int64"), function(s, x)
---     return s + x, s + x end)   -- running sums 1 3 6 10
function Dataset:scan(initial_state, fn)
  Dataset._check_self(self, "scan")
  if initial_state == nil then raise("Dataset:scan: initial_state is required (a tensor or a table of tensors)") end
  check_fn("Dataset:scan", "scan_func", fn)
  local init_sig = state_signature(initial_state)
  return Dataset._new("scan", self, self.card, function(node)
    local up, state, count = node.input:_iter(), initial_state, 0
    return function()
      local e = up()
      if e == nil then return nil end
      count = count + 1
      local new, out = scan_step(fn, state, e)
      check_state("Dataset:scan", "scan_func", init_sig, new, count)
      state = new
      return out
    end
  end)
end

--- ds:reduce(initial_state, reduce_func) -> the final state
--- Folds the dataset into one value: state = reduce_func(state, element) for each element in
--- order, starting from initial_state (whose structure, dtypes and shapes the state keeps).
--- Not a dataset: it iterates now. An infinite dataset is an error.
--- Example:
---   print(mg.data.Dataset.range(1, 5):reduce(mg.tensor(0, "int64"), function(s, x) return s + x end):item())   --> 10
function Dataset:reduce(initial_state, fn)
  Dataset._check_self(self, "reduce")
  if initial_state == nil then raise("Dataset:reduce: initial_state is required (a tensor or a table of tensors)") end
  check_fn("Dataset:reduce", "reduce_func", fn)
  if self.card == INF then raise("Dataset:reduce: the dataset is infinite; take(n) a finite part first") end
  local init_sig = state_signature(initial_state)
  local state, count, nxt = initial_state, 0, self:_iter()
  while true do
    local e = nxt()
    if e == nil then return state end
    count = count + 1
    local new = M.call("Dataset:reduce", "reduce_func", fn, state, e)
    if new == nil then fail("Dataset:reduce: reduce_func returned nothing at element %d (return the new state)", count) end
    check_state("Dataset:reduce", "reduce_func", init_sig, new, count)
    state = new
  end
end

--- ds:shard(num_shards, index)
--- Every num_shards-th element, starting with element index: index is 1-based (1 .. num_shards;
--- TF's index 0 is 1 here). For splitting input between workers; shard before shuffling.
--- Example:
---   local ds = mg.data.Dataset.range(10):shard(3, 1)   -- 0 3 6 9
function Dataset:shard(num_shards, index)
  Dataset._check_self(self, "shard")
  options.value("Dataset:shard", "num_shards", num_shards, { "integer", min = 1 })
  if num_shards == nil then raise("Dataset:shard: num_shards is required (a positive integer)") end
  if index == nil then raise("Dataset:shard: index is required (1 .. num_shards, 1-based)") end
  options.value("Dataset:shard", "index", index, { "integer", min = 1, max = num_shards, check = nil })
  local c = self.card
  local card = c
  if c >= 0 then card = math.floor(c / num_shards) + ((index - 1) < c % num_shards and 1 or 0) end
  return Dataset._new("shard", self, card, function(node)
    local up, first = node.input:_iter(), true
    return function()
      local skip = first and index - 1 or num_shards - 1
      first = false
      for _ = 1, skip do if up() == nil then return nil end end
      return up()
    end
  end, { num_shards = num_shards, index = index })
end

local SAMPLE_OPTS = {
  weights = "table|tensor",
  seed = { "integer", min = 0, max = rng.MAX_SEED },
  stop_on_empty_dataset = "boolean",
  rerandomize_each_iteration = "boolean",
}

local function sample_weights(opts, n)
  local w = opts.weights
  if w == nil then
    w = {}
    for i = 1, n do w[i] = 1 end
    return w
  end
  if core.is_tensor(w) then
    if w.ndim ~= 1 then raise("Dataset.sample_from_datasets: weights must be 1-D, got shape (%s)", table.concat(w.shape, ",")) end
    w = core.cast(w, "float64"):totable()
  end
  if #w ~= n then
    raise("Dataset.sample_from_datasets: weights has %d entries for %d datasets", #w, n)
  end
  local total = 0
  for i = 1, n do
    local v = w[i]
    if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
      raise("Dataset.sample_from_datasets: weight %d must be a finite non-negative number, got %s", i, options.show(v))
    end
    total = total + v
  end
  if total <= 0 then raise("Dataset.sample_from_datasets: the weights sum to 0") end
  return w
end

--- Dataset.sample_from_datasets(datasets, {weights=, seed=, stop_on_empty_dataset=false, rerandomize_each_iteration=false})
--- Each element comes from one of the datasets, drawn at random with probability proportional
--- to weights (a list or 1-D tensor; equal by default). A dataset that ends is dropped and the
--- draw repeats among the rest (the remaining weights renormalised), unless
--- stop_on_empty_dataset, which ends the result there. A weight of 0 never draws its dataset.
--- The draws are reproducible under seed (else one drawn from mg.random when called);
--- rerandomize_each_iteration draws a new sequence on each iteration.
--- Example:
---   local a, b = mg.data.Dataset.range(0, 5), mg.data.Dataset.range(100, 105)
---   local mix = mg.data.Dataset.sample_from_datasets({a, b}, {weights = {0.5, 0.5}, seed = 1})
function M.sample_from_datasets(datasets, opts)
  if type(datasets) ~= "table" or Dataset.is_dataset(datasets) or #datasets == 0 then
    raise("Dataset.sample_from_datasets: datasets must be a non-empty list of datasets, got %s", options.show(datasets))
  end
  for i, d in ipairs(datasets) do
    if not Dataset.is_dataset(d) then
      raise("Dataset.sample_from_datasets: datasets[%d] is %s, not a dataset", i, options.show(d))
    end
  end
  opts = options.check("Dataset.sample_from_datasets", opts, SAMPLE_OPTS)
  local n = #datasets
  local w = sample_weights(opts, n)
  local seed = opts.seed or rng.fresh_seed()
  local stop = opts.stop_on_empty_dataset or false
  local card, all_inf, unknown, sum = UNK, true, false, 0
  for i, d in ipairs(datasets) do
    if w[i] > 0 then
      if d.card ~= INF then all_inf = false end
      if d.card == UNK then unknown = true elseif d.card ~= INF then sum = sum + d.card end
    end
  end
  if all_inf then card = INF elseif not stop and not unknown then
    local any_inf = false
    for i, d in ipairs(datasets) do if w[i] > 0 and d.card == INF then any_inf = true end end
    card = any_inf and INF or sum
  end
  return Dataset._new("sample_from_datasets", nil, card, function(node)
    local k = node.epoch
    if opts.rerandomize_each_iteration then node.epoch = k + 1 end
    local g = rng.new(seed, k)
    local its, live = {}, {}
    for i, d in ipairs(datasets) do its[i] = d:_iter(); live[i] = w[i] > 0 end
    local ended = false
    return function()
      while not ended do
        local total = 0
        for i = 1, n do if live[i] then total = total + w[i] end end
        if total <= 0 then ended = true; break end
        local u = (rng.next(g) - 1) / 2147483562 * total   -- uniform in [0, total)
        local pick
        for i = 1, n do
          if live[i] then
            pick = i
            u = u - w[i]
            if u < 0 then break end
          end
        end
        local e = its[pick]()
        if e ~= nil then return e end
        if stop then ended = true; break end
        live[pick] = false
      end
      return nil
    end
  end, { inputs = datasets, epoch = 0 })
end

return M
