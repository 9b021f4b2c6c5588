-- moongrad.data.persist: ds:save(path) and Dataset.load(path) (TF's
-- Dataset.save / Dataset.load), in a documented data-only format.
--
-- A saved dataset is a directory:
--   dataset_spec.json        {"format": "moongrad-dataset", "version": 1,
--                             "element": <structure>, "cardinality": N,
--                             "shards": [{"file": "shard-00001.safetensors", "count": n}, ...]}
--   shard-00001.safetensors  elements 1..n of the shard: component j of
--                            element i is the tensor named "<i>/<j>"
-- <structure> is {"tensor": dtype} | {"string": true} | {"number": true} |
-- {"boolean": true} for a component, {"tuple": [...]} or {"dict": {name:
-- ...}} around them; components are numbered in the order
-- moongrad.data.structure flattens an element (array index, then sorted
-- names). A string is stored as a 1-D uint8 tensor of its bytes, a Lua number
-- as a 0-d int64 tensor (a Lua 5.4 integer) or float64 one, a boolean as a bool one. Nothing in it is code:
-- load parses JSON (the engine's cJSON) and safetensors (core's strict
-- parser) only.
--
-- The write is atomic as model:save's (nn/saving.lua): everything goes into
-- "<path>.tmp-p<pid>-<id>", each file written atomically, the spec last;
-- then the old directory is moved aside, the new one renamed in and the old
-- one removed. Killed at any point, path holds the old dataset or the new
-- one, and load falls back to a "<path>.old-*" left between the two renames.
-- Files go through mg.save / mg.load / mg.io (the sandbox's path policy).
-- Portable Lua.
local core = require("moongrad.core")
local Dataset = require("moongrad.data.dataset")
local structure = require("moongrad.data.structure")
local options = require("moongrad.options")
local C = require("moongrad.data.combinators")

local M = {}
local raise, fail = C.raise, C.fail
local SPEC = "dataset_spec.json"
local CHUNK = 4096   -- string.byte/char arguments at a time (LuaJIT's stack limit)

local function mg() return require("moongrad") end
local function json() return require("moongrad.nn.json") end
local function bare(err) return (tostring(err):gsub("^[^:\n]*:%d+: ", "")) end

-- A Lua integer (Lua 5.4's integer subtype; under LuaJIT every number is a double).
local function is_int(v) return math.type ~= nil and math.type(v) == "integer" end

local function string_to_tensor(s)
  local bytes = {}
  for i = 1, #s, CHUNK do
    local part = { s:byte(i, math.min(#s, i + CHUNK - 1)) }
    for _, b in ipairs(part) do bytes[#bytes + 1] = b end
  end
  return core.tensor(bytes, "uint8")
end

local function tensor_to_string(t)
  local bytes, parts = t:totable(), {}
  local unpack = table.unpack or unpack
  for i = 1, #bytes, CHUNK do parts[#parts + 1] = string.char(unpack(bytes, i, math.min(#bytes, i + CHUNK - 1))) end
  return table.concat(parts)
end

-- The JSON structure of an element, or nil and why it cannot be saved.
local function describe(e)
  local k = structure.kind(e, "Dataset:save")
  if k == "leaf" then
    if core.is_tensor(e) then return { tensor = e.dtype } end
    if type(e) == "string" then return { string = true } end
    if type(e) == "number" then return { number = true } end
    if type(e) == "boolean" then return { boolean = true } end
    return nil, "a component is a " .. type(e) .. " (tensors, strings, numbers and booleans can be saved)"
  end
  if k == "tuple" then
    local t = {}
    for i = 1, #e do
      local d, why = describe(e[i])
      if not d then return nil, why end
      t[i] = d
    end
    return { tuple = t }
  end
  local t, any = {}, false
  for key, v in pairs(e) do
    if type(key) ~= "string" then return nil, "a dict element has the key " .. tostring(key) .. " (names must be strings)" end
    local d, why = describe(v)
    if not d then return nil, why end
    t[key], any = d, true
  end
  if not any then return nil, "an element is an empty table" end
  return { dict = t }
end

-- The leaf kinds of a structure, in flatten order.
local function leaf_kinds(s, out)
  out = out or {}
  if s.tuple then for _, v in ipairs(s.tuple) do leaf_kinds(v, out) end
  elseif s.dict then for _, k in ipairs(structure.sorted_keys(s.dict)) do leaf_kinds(s.dict[k], out) end
  else out[#out + 1] = s end
  return out
end

-- The template (structure.template's form) of a structure.
local function template_of(s)
  if s.tuple then
    local t = {}
    for i, v in ipairs(s.tuple) do t[i] = template_of(v) end
    return t
  elseif s.dict then
    local t = {}
    for k, v in pairs(s.dict) do t[k] = template_of(v) end
    return t
  end
  return true
end

local function same(a, b) return json().encode(a) == json().encode(b) end

local SAVE_OPTS = { shard_size = { "integer", min = 1 } }

--- ds:save(path, {shard_size=1000})
--- Writes the dataset's elements to the directory path (replacing a dataset saved there) in
--- moongrad's data-only format: safetensors shards of shard_size elements plus a JSON spec
--- (doc/data.md, "Saving and loading datasets"). Atomic: killed at any point, path holds the
--- old dataset or the new one. Elements may be tensors, strings, numbers, booleans and
--- tables of them; their structure and dtypes must be the same throughout.
--- Example:
---   mg.data.Dataset.range(5):save("/tmp/mg_saved_ds")
---   print(mg.data.Dataset.load("/tmp/mg_saved_ds"):cardinality())   --> 5
function Dataset:save(path, opts)
  Dataset._check_self(self, "save")
  if type(path) ~= "string" or path == "" then raise("Dataset:save: path must be a non-empty string, got %s", options.show(path)) end
  opts = options.check("Dataset:save", opts, SAVE_OPTS)
  if self.card == Dataset.INFINITE then raise("Dataset:save: the dataset is infinite; take(n) a finite part first") end
  local shard_size = opts.shard_size or 1000
  local saving = require("moongrad.nn.saving")
  path = path:gsub("/+$", "")
  if saving.exists(path) and not saving.is_dir(path) then
    raise("Dataset:save: %s exists and is not a directory", path)
  end
  -- the swap below removes what was at path: only ever a dataset saved before (or nothing)
  if saving.is_dir(path) and #saving.list_dir(path) > 0 and not saving.exists(path .. "/" .. SPEC) then
    raise("Dataset:save: %s is a directory that holds no saved dataset (no %s); saving there would replace it "
      .. "whole: remove it or choose another path", path, SPEC)
  end
  local tmp = path .. ".tmp-p" .. core.process_id() .. "-" .. saving.unique_suffix()
  local okm, errm = pcall(saving.mkdir, tmp, "Dataset:save")
  if not okm then raise("%s", bare(errm)) end
  local ok, err = pcall(function()
    local spec, shards, count, buf, n = nil, {}, 0, {}, 0
    local function flush()
      if n == 0 then return end
      local file = string.format("shard-%05d.safetensors", #shards + 1)
      mg().save(tmp .. "/" .. file, buf, { format = "moongrad-dataset-shard", count = tostring(n) })
      shards[#shards + 1] = { file = file, count = n }
      buf, n = {}, 0
    end
    local nxt = self:_iter()
    while true do
      local e = nxt()
      if e == nil then break end
      count = count + 1
      local d, why = describe(e)
      if not d then error("element " .. count .. ": " .. why, 0) end
      if spec == nil then spec = d
      elseif not same(d, spec) then
        error(string.format("element %d has the structure %s, element 1 has %s", count, json().encode(d),
          json().encode(spec)), 0)
      end
      n = n + 1
      for j, v in ipairs(structure.flatten(e)) do
        if type(v) == "string" then v = string_to_tensor(v)
        elseif type(v) == "number" then v = core.tensor(v, is_int(v) and "int64" or "float64")
        elseif type(v) == "boolean" then v = core.tensor(v) end
        buf[n .. "/" .. j] = v
      end
      if n >= shard_size then flush() end
    end
    flush()
    mg().io.write_file_atomic(tmp .. "/" .. SPEC, json().encode({ format = "moongrad-dataset", version = 1,
      element = spec or { empty = true }, cardinality = count, shards = shards }, "  ") .. "\n")
  end)
  if not ok then
    saving.remove_dir(tmp)
    raise("Dataset:save: %s", bare(err))
  end
  local old
  if saving.is_dir(path) then
    old = path .. ".old-" .. saving.unique_suffix()
    local okr, e = pcall(mg().io.rename, path, old)
    if not okr then saving.remove_dir(tmp); raise("Dataset:save: cannot move the previous %s aside: %s", path, bare(e)) end
  end
  local okr, e = pcall(mg().io.rename, tmp, path)
  if not okr then
    if old then pcall(mg().io.rename, old, path) end
    saving.remove_dir(tmp)
    raise("Dataset:save: cannot rename %s to %s: %s", tmp, path, bare(e))
  end
  if old then saving.remove_dir(old) end
end

-- The "<path>.old-*" a save killed between its renames left, or nil.
local function old_copy(path)
  local parent, base = path:match("^(.*)/([^/]+)$")
  if not parent then parent, base = ".", path end
  if parent == "" then parent = "/" end
  local ok, names = pcall(core.listdir, parent)
  if not ok then return nil end
  for _, name in ipairs(names) do
    if name:sub(1, #base + 5) == base .. ".old-" then return parent .. "/" .. name end
  end
  return nil
end

local function read_spec(path)
  local okd, isdir = pcall(core.path_isdir, path)
  if not okd then raise("Dataset.load: %s", bare(isdir)) end
  if not isdir then
    local old = old_copy(path)
    if not old then raise("Dataset.load: no saved dataset at %s", path) end
    path = old
  end
  local okr, text = pcall(mg().io.read_file, path .. "/" .. SPEC)
  if not okr then raise("Dataset.load: %s is not a saved dataset (%s)", path, bare(text)) end
  local okj, spec = pcall(json().decode, text)
  if not okj or type(spec) ~= "table" or spec.format ~= "moongrad-dataset" then
    raise("Dataset.load: %s/%s is not a moongrad dataset spec", path, SPEC)
  end
  if spec.version ~= 1 then raise("Dataset.load: %s was saved in format version %s; this moongrad reads version 1", path, tostring(spec.version)) end
  if type(spec.shards) ~= "table" or type(spec.cardinality) ~= "number" or type(spec.element) ~= "table" then
    raise("Dataset.load: %s/%s lacks shards, cardinality or element", path, SPEC)
  end
  return path, spec
end

-- The value of leaf j of element i of a shard, as saved.
local function leaf_value(t, kind, where)
  if t == nil then fail("Dataset.load: %s is missing", where) end
  if kind.string then
    if t.dtype ~= "uint8" or t.ndim ~= 1 then fail("Dataset.load: %s should be a 1-D uint8 tensor (a string)", where) end
    return tensor_to_string(t)
  elseif kind.number then return t:item()
  elseif kind.boolean then return t:item() == true
  elseif t.dtype ~= kind.tensor then
    fail("Dataset.load: %s is %s, the spec says %s", where, t.dtype, tostring(kind.tensor))
  end
  return t
end

--- Dataset.load(path)
--- The dataset ds:save(path) wrote: its elements in order, with their structure, dtypes and
--- cardinality; the shards are read as the iteration reaches them.
--- Example:
---   mg.data.Dataset.from_tensor_slices(mg.arange(4)):save("/tmp/mg_saved_ds2")
---   local back = mg.data.Dataset.load("/tmp/mg_saved_ds2")
function M.load(path, opts)
  if type(path) ~= "string" or path == "" then raise("Dataset.load: path must be a non-empty string, got %s", options.show(path)) end
  options.check("Dataset.load", opts, {})
  path = path:gsub("/+$", "")
  local dir, spec = read_spec(path)
  if spec.element.empty then return C.from_list({}, "load") end
  local kinds, template = leaf_kinds(spec.element), template_of(spec.element)
  local shards = spec.shards
  return Dataset._new("load", nil, spec.cardinality, function()
    local s, i, tensors, count = 0, 0, nil, 0
    return function()
      while tensors == nil or i >= count do
        s = s + 1
        if s > #shards then return nil end
        local sh = shards[s]
        if type(sh) ~= "table" or type(sh.file) ~= "string" or not sh.file:match("^[%w%-_.]+$") or sh.file:match("^%.") then
          fail("Dataset.load: %s/%s: shard %d has a bad file name", dir, SPEC, s)
        end
        local ok, t = pcall(mg().load, dir .. "/" .. sh.file)
        if not ok then fail("Dataset.load: %s", bare(t)) end
        tensors, i, count = t, 0, tonumber(sh.count) or 0
      end
      i = i + 1
      local leaves = {}
      for j, kind in ipairs(kinds) do
        local name = i .. "/" .. j
        leaves[j] = leaf_value(tensors[name], kind, string.format("%s/%s tensor %s", dir, shards[s].file, name))
      end
      return (structure.unflatten(template, leaves))
    end
  end)
end

return M
