-- moongrad.data.sources: the datasets that start a pipeline.
--
-- from_tensor_slices (rows of tensors: element i is row i of every
-- component), range (like mg.arange), from_generator (a Lua iterator
-- function, a coroutine, or a function making either on each iteration).
-- Portable Lua.
local core = require("moongrad.core")
local Dataset = require("moongrad.data.dataset")
local structure = require("moongrad.data.structure")

local M = {}
local unpack = table.unpack or unpack

local function shape_str(t) return "(" .. table.concat(t.shape, ",") .. ")" end

-- The leaves of a from_tensor_slices argument with a name for each (for errors).
local function named_leaves(e, path, names, leaves)
  local k = structure.kind(e, "Dataset.from_tensor_slices")
  if k == "leaf" then
    if not core.is_tensor(e) then
      error(string.format("Dataset.from_tensor_slices: %s must be a tensor, got %s", path, type(e)), 4)
    end
    leaves[#leaves + 1], names[#names + 1] = e, path
  elseif k == "tuple" then
    for i = 1, #e do named_leaves(e[i], path .. "[" .. i .. "]", names, leaves) end
  else
    for _, key in ipairs(structure.sorted_keys(e)) do named_leaves(e[key], path .. "." .. tostring(key), names, leaves) end
  end
end

-- Dataset.from_tensor_slices(x) | (x, y, ...) | ({x, y}) | ({image=x, label=y}).
function M.from_tensor_slices(...)
  local n = select("#", ...)
  if n == 0 then error("Dataset.from_tensor_slices: expected a tensor or a table of tensors, got nothing", 2) end
  local value = n == 1 and (...) or { ... }
  local names, leaves = {}, {}
  if n == 1 then named_leaves(value, "the argument", names, leaves)
  else for i = 1, n do named_leaves(value[i], "argument " .. i, names, leaves) end end
  if #leaves == 0 then error("Dataset.from_tensor_slices: the table holds no tensors", 2) end
  local rows
  for i, t in ipairs(leaves) do
    if t.ndim == 0 then
      error(string.format("Dataset.from_tensor_slices: %s is a scalar (shape ()); it needs a first axis to slice", names[i]), 2)
    end
    if rows == nil then rows = t.shape[1]
    elseif t.shape[1] ~= rows then
      error(string.format("Dataset.from_tensor_slices: first dimensions differ: %s has shape %s, %s has shape %s",
        names[1], shape_str(leaves[1]), names[i], shape_str(t)), 2)
    end
  end
  local template = structure.template(value)
  return Dataset._new("from_tensor_slices", nil, rows, function(self)
    local i = 0
    return function()
      if i >= rows then return nil end
      i = i + 1
      local row = {}
      for j, t in ipairs(leaves) do row[j] = t[i] end
      return (structure.unflatten(template, row))
    end
  end, { sources = leaves, template = template })
end

-- Dataset.range([start,] stop [, step] [, dtype]): start, start+step, ... below stop
-- as 0-d int64 tensors (like mg.arange; start defaults to 0).
function M.range(...)
  local args = { ... }
  local dtype = "int64"
  if type(args[#args]) == "string" then dtype = table.remove(args) end
  local start, stop, step
  if #args == 1 then start, stop, step = 0, args[1], 1
  elseif #args == 2 or #args == 3 then start, stop, step = args[1], args[2], args[3] or 1
  else error("Dataset.range: expected ([start,] stop [, step] [, dtype])", 2) end
  for _, v in ipairs({ start, stop, step }) do
    if type(v) ~= "number" then error("Dataset.range: start, stop and step must be numbers, got " .. type(v), 2) end
  end
  if step == 0 then error("Dataset.range: step must not be 0", 2) end
  local count = math.max(0, math.ceil((stop - start) / step))
  return Dataset._new("range", nil, count, function()
    local k = 0
    return function()
      if k >= count then return nil end
      k = k + 1
      return core.tensor(start + (k - 1) * step, dtype)
    end
  end)
end

local function to_leaf(v, spec, where)
  if spec == nil then
    if type(v) == "number" or type(v) == "boolean" then return core.tensor(v) end
    return v
  end
  local t = core.is_tensor(v) and v or (type(v) == "table" or type(v) == "number" or type(v) == "boolean") and core.tensor(v, spec.dtype) or nil
  if t == nil then error(string.format("Dataset.from_generator: %s is a %s, the output_signature wants a tensor", where, type(v)), 0) end
  if t.dtype ~= spec.dtype then t = core.cast(t, spec.dtype) end
  local ok = #t.shape == #spec.shape
  for i = 1, #spec.shape do if ok and spec.shape[i] ~= -1 and spec.shape[i] ~= t.shape[i] then ok = false end end
  if not ok then
    error(string.format("Dataset.from_generator: %s has shape (%s), the output_signature says (%s)", where,
      table.concat(t.shape, ","), table.concat(spec.shape, ",")), 0)
  end
  return t
end

-- The values of e at the leaves of the signature's structure (a TensorSpec is a leaf).
local function flatten_like(sig, e, count, out)
  out = out or {}
  if getmetatable(sig) ~= nil then out[#out + 1] = e; return out end
  if type(e) ~= "table" or getmetatable(e) ~= nil then
    error(string.format("Dataset.from_generator: element %d does not have the output_signature's structure", count), 0)
  end
  if #sig > 0 then for i = 1, #sig do flatten_like(sig[i], e[i], count, out) end
  else for _, k in ipairs(structure.sorted_keys(sig)) do flatten_like(sig[k], e[k], count, out) end end
  return out
end

-- Packs the values of one call/resume into an element; nil at the end.
local function element(n, ...)
  if n == 0 or (...) == nil then return nil end
  if n == 1 then return (...) end
  return { ... }
end

-- Dataset.from_generator(src, {output_signature=}): src is a coroutine (its
-- yields are the elements), an iterator function (called until it returns
-- nil), or a function returning a fresh iterator function or coroutine on
-- each call (then the dataset can be iterated more than once). Several
-- values yielded/returned at once make a tuple element. output_signature
-- (a structure of mg.TensorSpec) converts and checks each element.
function M.from_generator(src, opts)
  opts = opts or {}
  if type(src) ~= "function" and type(src) ~= "thread" then
    error("Dataset.from_generator: expected a coroutine or a function, got " .. type(src), 2)
  end
  local sig = opts.output_signature
  local sig_leaves = nil
  if sig then sig_leaves = {}; structure.template_like(sig, sig_leaves) end
  local used = false
  return Dataset._new("from_generator", nil, Dataset.UNKNOWN, function()
    local pull, first
    local function from(s)
      if type(s) == "thread" then
        if coroutine.status(s) == "dead" then
          error("Dataset.from_generator: the coroutine is dead (already iterated to its end); "
            .. "pass a function that returns a fresh coroutine to iterate the dataset again", 0)
        end
        return function()
          if coroutine.status(s) == "dead" then return nil end
          local res = { coroutine.resume(s) }
          if not res[1] then error("Dataset.from_generator: the coroutine raised: " .. tostring(res[2]), 0) end
          return element(#res - 1, select(2, unpack(res)))
        end
      end
      return function() local v = { s() }; return element(#v, unpack(v)) end
    end
    if type(src) == "thread" then pull = from(src)
    else
      -- A factory returns an iterator or a coroutine; an iterator returns an element (never a function).
      local r = { src() }
      if type(r[1]) == "function" then
        local f = r[1]
        pull = function() local v = { f() }; return element(#v, unpack(v)) end
      elseif type(r[1]) == "thread" then pull = from(r[1])
      else
        if used then
          error("Dataset.from_generator: the iterator function was used up by an earlier iteration; "
            .. "pass a function that returns a fresh iterator (or coroutine) to iterate again", 0)
        end
        used = true
        first = { element(#r, unpack(r)) }
        pull = function() local v = { src() }; return element(#v, unpack(v)) end
      end
    end
    local count, template, ended = 0, nil, false
    return function()
      if ended then return nil end   -- a finished coroutine.wrap must not be called again
      local e
      if first then e = first[1]; first = nil else e = pull() end
      if e == nil then ended = true; return nil end
      count = count + 1
      local leaves
      if sig then leaves = flatten_like(sig, e, count) else leaves = structure.flatten(e) end
      if template == nil then template = sig and structure.template_like(sig) or structure.template(e)
      elseif #leaves ~= #structure.flatten(template) then
        error(string.format("Dataset.from_generator: element %d has %d components, the first had %d",
          count, #leaves, #structure.flatten(template)), 0)
      end
      if sig_leaves and #leaves ~= #sig_leaves then
        error(string.format("Dataset.from_generator: element %d has %d components, the output_signature %d",
          count, #leaves, #sig_leaves), 0)
      end
      for i, v in ipairs(leaves) do
        leaves[i] = to_leaf(v, sig_leaves and sig_leaves[i], string.format("component %d of element %d", i, count))
      end
      return (structure.unflatten(template, leaves))
    end
  end)
end

return M
