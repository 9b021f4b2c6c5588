-- moongrad.data.batching: ds:batch, ds:padded_batch and ds:unbatch.
--
-- A batch stacks each component of n consecutive elements along a new
-- first axis (mg.stack); a component that is not a tensor (a CSV string
-- column) becomes a Lua list. padded_batch first pads every tensor
-- component to a common shape (the largest in the batch, or the given
-- padded_shapes) with mg.pad. The last batch is smaller unless
-- drop_remainder is true. Portable Lua.
local core = require("moongrad.core")
local Dataset = require("moongrad.data.dataset")
local structure = require("moongrad.data.structure")

local INF, UNK = Dataset.INFINITE, Dataset.UNKNOWN

local function shape_str(s) return "(" .. table.concat(s, ",") .. ")" end

local function batch_card(c, n, drop)
  if c == INF or c == UNK then return c end
  if drop then return math.floor(c / n) end
  return math.ceil(c / n)
end

local function stack_column(col, j, method)
  local first = col[1]
  if not core.is_tensor(first) then
    if type(first) == "number" or type(first) == "boolean" then return core.tensor(col) end
    return col
  end
  local s1 = first.shape
  for i = 2, #col do
    local s = col[i].shape
    local same = #s == #s1
    for d = 1, #s1 do if same and s[d] ~= s1[d] then same = false end end
    if not same then
      error(string.format("Dataset:%s: component %d has shape %s in element %d of a batch but %s in element 1%s",
        method, j, shape_str(s), i, shape_str(s1), method == "batch" and "; padded_batch pads them to one shape" or ""), 0)
    end
  end
  return require("moongrad").stack(col, 1)
end

local function check_batch_args(method, n, opts)
  if type(n) ~= "number" or n ~= math.floor(n) or n < 1 then
    error(string.format("Dataset:%s: batch_size must be a positive integer, got %s", method, tostring(n)), 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(string.format("Dataset:%s: opts must be a table like {drop_remainder=true}, got %s", method, type(opts)), 3)
  end
  return opts or {}
end

local function batcher(node, n, drop, combine)
  local up = node.input:_iter()
  return function()
    local elems = {}
    while #elems < n do
      local e = up()
      if e == nil then break end
      elems[#elems + 1] = e
    end
    if #elems == 0 or (drop and #elems < n) then return nil end
    return combine(elems)
  end
end

--- ds:batch(batch_size, {drop_remainder=false})
--- A Dataset of batches: batch_size consecutive elements stacked along a new first axis (the
--- last batch smaller unless drop_remainder).
--- Example:
---   for xb in mg.data.Dataset.range(5):batch(2):iter() do print(xb) end
function Dataset:batch(n, opts)
  Dataset._check_self(self, "batch")
  opts = check_batch_args("batch", n, opts)
  local drop = opts.drop_remainder and true or false
  return Dataset._new("batch", self, batch_card(self.card, n, drop), function(node)
    return batcher(node, n, drop, function(elems)
      return structure.map_list(elems, function(col, j) return stack_column(col, j, "batch") end, "Dataset:batch")
    end)
  end, { batch_size = n, drop_remainder = drop })
end

-- The per-component lists of padded_shapes / padding_values (a structure like
-- the element, or one value for all components).
local function per_component(v, ncomp, default)
  if v == nil then
    local out = {}
    for i = 1, ncomp do out[i] = default end
    return out
  end
  if type(v) == "number" then
    local out = {}
    for i = 1, ncomp do out[i] = v end
    return out
  end
  return nil
end

-- ds:padded_batch(batch_size, {padded_shapes=, padding_values=0, drop_remainder=false}):
-- padded_shapes is a structure like the element holding a shape per component
-- (-1: the largest in the batch); padding_values a number or a structure of numbers.
function Dataset:padded_batch(n, opts)
  Dataset._check_self(self, "padded_batch")
  opts = check_batch_args("padded_batch", n, opts)
  local drop = opts.drop_remainder and true or false
  return Dataset._new("padded_batch", self, batch_card(self.card, n, drop), function(node)
    return batcher(node, n, drop, function(elems)
      local ncomp = #structure.flatten(elems[1])
      local shapes = opts.padded_shapes
      if shapes ~= nil then
        -- a structure whose leaves are shape tables: flatten to the shape list
        if structure.kind(elems[1]) == "leaf" then shapes = { shapes }
        else
          local flat = {}
          local function walk(s, e)
            local k = structure.kind(e)
            if k == "leaf" then flat[#flat + 1] = s; return end
            if type(s) ~= "table" then error("Dataset:padded_batch: padded_shapes must have the element's structure", 0) end
            if k == "tuple" then for i = 1, #e do walk(s[i], e[i]) end
            else for _, key in ipairs(structure.sorted_keys(e)) do walk(s[key], e[key]) end end
          end
          walk(shapes, elems[1])
          shapes = flat
        end
      else shapes = per_component(nil, ncomp, false) end
      local values = per_component(opts.padding_values, ncomp, 0)
      if values == nil then values = structure.flatten(opts.padding_values) end
      return structure.map_list(elems, function(col, j)
        if not core.is_tensor(col[1]) then return stack_column(col, j, "padded_batch") end
        local ndim = #col[1].shape
        local target = {}
        for d = 1, ndim do
          local m = 0
          for _, t in ipairs(col) do
            if #t.shape ~= ndim then
              error(string.format("Dataset:padded_batch: component %d has rank %d and %d in one batch", j, ndim, #t.shape), 0)
            end
            if t.shape[d] > m then m = t.shape[d] end
          end
          local want = shapes[j] and shapes[j][d] or nil
          if want ~= nil and want ~= -1 then
            if want < m then
              error(string.format("Dataset:padded_batch: component %d has size %d on axis %d, more than padded_shapes' %d",
                j, m, d, want), 0)
            end
            m = want
          end
          target[d] = m
        end
        local padded = {}
        for i, t in ipairs(col) do
          local pads, need = {}, false
          for d = 1, ndim do
            pads[2 * d - 1], pads[2 * d] = 0, target[d] - t.shape[d]
            if target[d] ~= t.shape[d] then need = true end
          end
          padded[i] = need and core.pad(t, pads, values[j] or 0) or t
        end
        return stack_column(padded, j, "padded_batch")
      end, "Dataset:padded_batch")
    end)
  end, { batch_size = n, drop_remainder = drop })
end

-- ds:unbatch(): the rows of each element's components, one element per row.
function Dataset:unbatch()
  Dataset._check_self(self, "unbatch")
  return Dataset._new("unbatch", self, self.card == INF and INF or UNK, function(node)
    local up, cur, template, i, rows = node.input:_iter(), nil, nil, 0, 0
    return function()
      while cur == nil or i >= rows do
        local e = up()
        if e == nil then return nil end
        cur, template, i = structure.flatten(e), structure.template(e), 0
        rows = nil
        for j, t in ipairs(cur) do
          local r = core.is_tensor(t) and (t.shape[1] or error("Dataset:unbatch: component " .. j .. " is a scalar", 0)) or #t
          if rows == nil then rows = r
          elseif r ~= rows then error(string.format("Dataset:unbatch: components have %d and %d rows", rows, r), 0) end
        end
      end
      i = i + 1
      local row = {}
      for j, t in ipairs(cur) do row[j] = t[i] end
      return (structure.unflatten(template, row))
    end
  end)
end

return Dataset
