-- moongrad.nn.data_adapter: what fit, evaluate and predict feed their step
-- functions, after Keras's data adapters.
--
-- A step receives one `data` table per batch: {x, y, sample_weight}, the
-- Keras tuple (y and sample_weight left out when absent). x, y and the
-- sample weights are each a tensor or a table of tensors (a list in the
-- model's input/output order, or keyed by Input/output names); the
-- structures are walked here, so batching, shuffling and splitting work on
-- any of them. Tensors become batches through a "source" (tensor_source for
-- arrays, dataset_source for an mg.data Dataset): {probe = a first data
-- table, steps = batches a pass (nil when unknown), pass(epoch) -> an
-- iterator of data tables}. class_weight turns into sample weights here,
-- as Keras does, before a step sees the batch. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local options = require("moongrad.options")

local M = {}

local raise, show = options.raise, options.show

-- ---- structures ----------------------------------------------------------------------

local function is_plain(v) return type(v) == "table" and getmetatable(v) == nil and not mg.is_tensor(v) end
M.is_plain = is_plain

-- A plain table's keys in a fixed order: the array part, then the other keys sorted.
local function ordered_keys(t)
  local keys, n = {}, #t
  for i = 1, n do keys[i] = i end
  local rest = {}
  for k in pairs(t) do
    if not (type(k) == "number" and k >= 1 and k <= n and k == math.floor(k)) then rest[#rest + 1] = k end
  end
  table.sort(rest, function(a, b)
    if type(a) ~= type(b) then return type(a) < type(b) end
    return a < b
  end)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return keys
end
M.ordered_keys = ordered_keys

-- The same structure with f applied to every tensor (in no particular order:
-- f slices or gathers, once per batch, so no keys are sorted here).
function M.map(x, f)
  if is_plain(x) then
    local out = {}
    for k, v in pairs(x) do out[k] = M.map(v, f) end
    return out
  end
  if x == nil then return nil end
  return f(x)
end

-- The tensors of a structure, in order; anything else in it is an error
-- naming `what` (x, y, sample_weight) and where in it the value sits.
function M.flatten(x, what, out, path)
  out = out or {}
  if is_plain(x) then
    for _, k in ipairs(ordered_keys(x)) do
      local key = type(k) == "string" and ("%q"):format(k) or tostring(k)
      M.flatten(x[k], what, out, (path or what or "data") .. "[" .. key .. "]")
    end
  elseif mg.is_tensor(x) then
    out[#out + 1] = x
  elseif x ~= nil then
    raise(string.format("%s must be a tensor or a table of tensors, got %s", path or what or "data", show(x)))
  end
  return out
end

-- The number of samples: the first axis, which every tensor of x (and of
-- the other structures given) must share.
function M.num_samples(fname, parts)
  local n, first
  for _, p in ipairs(parts) do
    local what, v = p[1], p[2]
    for _, t in ipairs(M.flatten(v, what)) do
      if t.ndim == 0 then raise(string.format("%s: %s must have a batch axis, got a scalar", fname, what)) end
      if n == nil then
        n, first = t.shape[1], what
      elseif t.shape[1] ~= n then
        raise(string.format("%s: %s has %d samples but %s has %d", fname, first, n, what, t.shape[1]))
      end
    end
  end
  if n == nil then raise(fname .. ": x must be a tensor or a table of tensors") end
  return n
end

-- The batch size of a structure: its first tensor's first axis (a count
-- made with ops when the size is unknown while tracing).
function M.batch_size(x)
  local t = M.flatten(x)[1]
  if not t then return 0 end
  local n = t.shape[1]
  if core.is_unknown_size(n) then return mg.sum(mg.ones({ n }, "float32")) end
  return n
end

function M.rows(x, i, j) return M.map(x, function(t) return t:slice { { i, j } } end) end
function M.take_rows(x, idx) return M.map(x, function(t) return mg.take(t, idx, 1) end) end

-- ---- the Keras data tuple ---------------------------------------------------------------

-- {x, y, sample_weight} (Keras's pack_x_y_sample_weight).
function M.pack(x, y, sw) return { x, y, sw } end

-- x, y, sample_weight from a data table; anything that is not a data
-- tuple is x alone (Keras's unpack_x_y_sample_weight).
function M.unpack(data)
  if is_plain(data) and (data[1] ~= nil or data[2] ~= nil or data[3] ~= nil) then
    return data[1], data[2], data[3]
  end
  return data, nil, nil
end

-- ---- class weights -------------------------------------------------------------------------

-- class_weight {[class] = weight} (classes from 1, Lua lists work): checked
-- once; the largest class named.
function M.check_class_weight(fname, cw)
  local top = 0
  for k, v in pairs(cw) do
    if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then
      raise(string.format("%s: class_weight keys must be class indices (integers from 1), got %s", fname, show(k)))
    end
    if type(v) ~= "number" or v ~= v or v < 0 then
      raise(string.format("%s: class_weight[%d] must be a number >= 0, got %s", fname, k, show(v)))
    end
    if k > top then top = k end
  end
  return top
end

-- The sample weights class_weight gives the targets y (Keras's
-- class_weight_to_sample_weights): the class of a sample is its label
-- (rounded), or the argmax of a one-hot row; classes the table does not
-- name weigh 1.
function M.class_sample_weights(fname, y, cw)
  if is_plain(y) then
    local list = M.flatten(y, "y")
    if #list ~= 1 then
      raise(fname .. ": class_weight is only supported for models with a single output (use sample_weight)")
    end
    y = list[1]
  end
  local top = M.check_class_weight(fname, cw)
  local labels = y
  if y.ndim == 2 then
    labels = y.shape[2] == 1 and mg.squeeze(y, { axis = -1 }) or mg.argmax(y, -1)
  elseif y.ndim ~= 1 then
    raise(string.format("%s: class_weight needs targets of shape (n,) or (n, classes), got %s", fname,
      "(" .. table.concat(y.shape, ", ") .. ")"))
  end
  if labels.dtype ~= "int64" then labels = mg.cast(mg.round(mg.cast(labels, "float64")), "int64") end
  if top == 0 then return mg.ones(labels.shape, "float32") end
  local lut = {}
  for c = 1, top do lut[c] = cw[c] or 1 end
  local known = mg.logical_and(mg.greater_equal(labels, 1), mg.less_equal(labels, top))
  local w = mg.take(mg.tensor(lut, "float32"), mg.clip(labels, 1, top), 1)
  return mg.where(known, w, 1.0)
end

-- ---- batch sources -----------------------------------------------------------------------

-- A random permutation of 1..n (Fisher-Yates on mg.random draws).
local function permutation(n)
  local u = mg.random.uniform({ n }, 0, 1, "float64"):totable()
  local p = {}
  for i = 1, n do p[i] = i end
  for i = n, 2, -1 do
    local j = math.floor(u[i] * i) + 1
    if j > i then j = i end
    p[i], p[j] = p[j], p[i]
  end
  return mg.tensor(p, "int64")
end

-- Batches of `batch` of the n rows of `data` (a data table): views in
-- order, or with shuffle one `take` of rows permuted afresh each pass.
function M.tensor_source(data, n, batch, max_steps, shuffle)
  local steps = math.ceil(n / batch)
  if max_steps then steps = math.min(steps, max_steps) end
  local function pass()
    local perm = shuffle and permutation(n) or nil
    local step = 0
    return function()
      if step >= steps then return nil end
      step = step + 1
      local i, j = (step - 1) * batch + 1, math.min(step * batch, n)
      if perm then return M.take_rows(data, perm:slice { { i, j } }) end
      return M.rows(data, i, j)
    end
  end
  return { probe = M.rows(data, 1, math.min(n, 2)), steps = steps, pass = pass }
end

local function is_dataset(x) return type(x) == "table" and type(x._iter) == "function" and x.card ~= nil end
M.is_dataset = is_dataset

-- A Dataset element as a data table: a list of 2 or 3 (x, y[, sample_weight]),
-- else x alone. `need_y`: the step computes a loss against y.
local function element_data(e, what, need_y, class_weight)
  local data
  if is_plain(e) and #e >= 2 then
    if #e > 3 then
      error(string.format("%s: the dataset's elements have %d components; expected (x, y) or (x, y, sample_weight)",
        what, #e), 0)
    end
    data = { e[1], e[2], e[3] }
  else
    data = { e }
  end
  if need_y and data[2] == nil then
    error(what .. ": the dataset's elements must be (x, y) pairs, e.g. Dataset.from_tensor_slices(x, y):batch(32)", 0)
  end
  if class_weight then
    if data[3] ~= nil then
      error(what .. ": class_weight cannot be combined with sample weights from the dataset", 0)
    end
    if data[2] ~= nil then data[3] = M.class_sample_weights(what, data[2], class_weight) end
  end
  return data
end

-- Steps of one pass over ds (nil when unknown); an infinite ds needs `given`.
local function dataset_steps(ds, given, what, optname)
  local c = ds.card
  if given then return (c >= 0) and math.min(c, given) or given end
  if c == -1 then
    raise(string.format("%s: the dataset is infinite (repeat_ with no count); give %s", what, optname))
  end
  if c >= 0 then return c end
  return nil
end

-- The elements of ds, at most `limit` a pass (given as option `optname`). The
-- element read here builds the model and starts the first pass. Each later
-- pass iterates ds afresh (so a shuffle in it reshuffles), or, with a limit,
-- continues one iterator kept across passes (a new one once it has run out:
-- a pass then ends early).
function M.dataset_source(ds, what, need_y, limit, optname, class_weight)
  local steps = dataset_steps(ds, limit, what, optname)
  local it = ds:_iter()
  local pending = it()
  if pending == nil then raise(what .. ": the dataset is empty") end
  local function pass(epoch)
    if not pending and (not limit or it == nil) then it = ds:_iter() end
    local step = 0
    return function()
      if limit and step >= limit then return nil end
      local e = pending or it()
      pending = nil
      if e == nil then
        it = nil
        if step == 0 then
          error(string.format("%s: epoch %s had no batches (the dataset ran out)", what, tostring(epoch)), 0)
        end
        return nil
      end
      step = step + 1
      return element_data(e, what, need_y, class_weight)
    end
  end
  return { probe = element_data(pending, what, need_y, class_weight), steps = steps, pass = pass }
end

return M
