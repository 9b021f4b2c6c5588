-- moongrad.data.structure: the shape of a dataset element.
--
-- An element is a tensor (or a plain Lua number/string/boolean, from range,
-- from_generator or a CSV string column), an array table of elements (a
-- "tuple": {x, y}) or a name -> element table (a "dict": {image=, label=}).
-- These helpers walk that structure: flatten it to its leaves in a fixed
-- order (array index, then sorted names), rebuild it from leaves, and map a
-- function over leaves. Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")

local M = {}
local unpack = table.unpack or unpack

-- "tuple", "dict" or "leaf". A table with both array and name keys is an error.
function M.kind(e, what)
  if type(e) ~= "table" or getmetatable(e) ~= nil then return "leaf" end
  local n, named = #e, false
  for k in pairs(e) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= math.floor(k) then named = true; break end
  end
  if named and n > 0 then
    error((what or "dataset") .. ": an element mixes array entries and named entries", 3)
  end
  return named and "dict" or (n > 0 and "tuple" or "dict")
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end
M.sorted_keys = sorted_keys

-- The leaves of e in order, appended to out.
function M.flatten(e, out)
  out = out or {}
  local k = M.kind(e)
  if k == "leaf" then out[#out + 1] = e
  elseif k == "tuple" then for i = 1, #e do M.flatten(e[i], out) end
  else for _, key in ipairs(sorted_keys(e)) do M.flatten(e[key], out) end end
  return out
end

-- A template (the structure with leaves replaced by true) and the leaves.
function M.template(e)
  local k = M.kind(e)
  if k == "leaf" then return true end
  local t = {}
  if k == "tuple" then for i = 1, #e do t[i] = M.template(e[i]) end
  else for key, v in pairs(e) do t[key] = M.template(v) end end
  return t
end

-- The template of a signature (a structure whose leaves are TensorSpecs,
-- tables with a metatable); the specs are appended to specs when given.
function M.template_like(sig, specs)
  if type(sig) ~= "table" or getmetatable(sig) ~= nil then
    if specs then specs[#specs + 1] = sig end
    return true
  end
  local t = {}
  if #sig > 0 then for i = 1, #sig do t[i] = M.template_like(sig[i], specs) end
  else for _, k in ipairs(sorted_keys(sig)) do t[k] = M.template_like(sig[k], specs) end end
  return t
end

-- Rebuilds a structure like template from leaves (consumed from pos).
function M.unflatten(template, leaves, pos)
  pos = pos or 1
  if template == true then return leaves[pos], pos + 1 end
  local out = {}
  if #template > 0 then
    for i = 1, #template do out[i], pos = M.unflatten(template[i], leaves, pos) end
  else
    for _, key in ipairs(sorted_keys(template)) do out[key], pos = M.unflatten(template[key], leaves, pos) end
  end
  return out, pos
end

-- f applied to every leaf (a new structure).
function M.map(e, f)
  local k = M.kind(e)
  if k == "leaf" then return f(e) end
  local out = {}
  for key, v in pairs(e) do out[key] = M.map(v, f) end
  return out
end

-- Applies f leaf-wise over a list of structures of one template:
-- f({leaf of elems[1], leaf of elems[2], ...}) -> new leaf.
function M.map_list(elems, f, what)
  local template = M.template(elems[1])
  local columns = {}
  for i, e in ipairs(elems) do
    local leaves = M.flatten(e)
    if i == 1 then for j = 1, #leaves do columns[j] = {} end end
    if #leaves ~= #columns then
      error(string.format("%s: element %d has %d components, element 1 has %d", what, i, #leaves, #columns), 3)
    end
    for j, v in ipairs(leaves) do columns[j][i] = v end
  end
  local out = {}
  for j, col in ipairs(columns) do out[j] = f(col, j) end
  return (M.unflatten(template, out))
end

-- The values an iterator hands out for an element: a tuple unpacked, else the element.
function M.unpacked(e)
  if e ~= nil and M.kind(e) == "tuple" then return unpack(e, 1, #e) end
  return e
end

-- A description of a leaf or structure for error messages and printing.
function M.describe(e)
  local k = M.kind(e)
  if k == "leaf" then
    if core.is_tensor(e) then return string.format("%s(%s)", e.dtype, table.concat(e.shape, ",")) end
    return type(e)
  end
  local parts = {}
  if k == "tuple" then for i = 1, #e do parts[i] = M.describe(e[i]) end
  else for _, key in ipairs(sorted_keys(e)) do parts[#parts + 1] = tostring(key) .. "=" .. M.describe(e[key]) end end
  return "{" .. table.concat(parts, ", ") .. "}"
end

return M
