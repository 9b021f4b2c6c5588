-- moongrad.nn.saving: model configs (get_config/from_config, to_json,
-- model_from_json, clone_model) and weight files.
--
-- Weights are written in the safetensors format (an 8-byte little-endian
-- header length, a JSON header naming each tensor's dtype, shape and byte
-- range, then the raw bytes), so other tools can read them. Keys are the
-- weights' names in `model.weights` order (made unique); loading matches by
-- name, or by position when the names differ (a clone), checking shapes.
-- model:save(path) adds the model's JSON config to the header's metadata;
-- nn.load_model(path) rebuilds the model from it and loads the weights.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local util = require("moongrad.nn.util")
local json = require("moongrad.nn.json")
local Layer = require("moongrad.nn.layer")
local Model = require("moongrad.nn.model")

local M = {}

-- ---- configs ----------------------------------------------------------------------------

-- {class_name=, config=} for a layer or model.
function M.serialize(layer)
  return { class_name = layer.class_name, config = layer:get_config() }
end

-- A layer or model from {class_name=, config=} (classes registered by Layer:extend).
function M.deserialize(spec)
  if type(spec) ~= "table" or type(spec.class_name) ~= "string" then
    error("deserialize: expected {class_name=, config=}", 2)
  end
  local cls = util.registry[spec.class_name]
  if not cls then
    error(string.format("deserialize: unknown layer class '%s' (define it with nn.Layer:extend(\"%s\") before "
      .. "loading)", spec.class_name, spec.class_name), 2)
  end
  return cls.from_config(cls, spec.config or {}, M.deserialize)
end

function Model:to_json(indent)
  local ok, cfg = pcall(self.get_config, self)
  if not ok then error(tostring(cfg):gsub("^[^:\n]*:%d+: ", ""), 2) end
  return json.encode({ class_name = self.class_name, config = cfg, backend = "moongrad",
    moongrad_version = mg.version }, indent)
end

function M.model_from_json(s)
  local spec = json.decode(s)
  return M.deserialize(spec)
end

function M.model_from_config(spec) return M.deserialize(util.deep_copy(spec)) end

-- clone_model(model): the same architecture with new weights (freshly
-- initialised), for Sequential and functional models.
function M.clone_model(model)
  local ok, cfg = pcall(model.get_config, model)
  if not ok or (model.class_name ~= "Sequential" and model.class_name ~= "Functional") then
    error(string.format("clone_model: model %s is a subclassed model (%s); only Sequential and functional models "
      .. "can be cloned (their layers are known); build a new instance of the class instead", model.name,
      model.class_name), 2)
  end
  return M.deserialize({ class_name = model.class_name, config = cfg })
end

-- ---- safetensors -------------------------------------------------------------------------

local CODES = { float32 = "F32", float64 = "F64", int32 = "I32", int64 = "I64", uint8 = "U8", bool = "BOOL" }
local DTYPES = {}
for k, v in pairs(CODES) do DTYPES[v] = k end

local function u64le(n)
  local b = {}
  for i = 1, 8 do
    b[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(b)
end

local function read_u64le(s)
  local n = 0
  for i = 8, 1, -1 do n = n * 256 + s:byte(i) end
  return n
end

-- Writes {name = tensor} (names in `order`) with string metadata.
function M.write_safetensors(path, order, tensors, metadata)
  local header, blobs, offset = {}, {}, 0
  for i, name in ipairs(order) do
    local t = tensors[name]
    local bytes = t:tobytes()
    header[name] = { dtype = CODES[t.dtype], shape = t.shape, data_offsets = { offset, offset + #bytes } }
    offset = offset + #bytes
    blobs[i] = bytes
  end
  if metadata then header.__metadata__ = metadata end
  local text = json.encode(header)
  text = text .. string.rep(" ", (8 - #text % 8) % 8)   -- keeps the data 8-byte aligned
  local f, err = io.open(path, "wb")
  if not f then error("save: cannot open " .. path .. ": " .. tostring(err), 3) end
  f:write(u64le(#text), text)
  for _, b in ipairs(blobs) do f:write(b) end
  f:close()
end

-- Reads a safetensors file: {name = tensor}, the names in file order, metadata.
function M.read_safetensors(path)
  local f, err = io.open(path, "rb")
  if not f then error("load: cannot open " .. path .. ": " .. tostring(err), 3) end
  local data = f:read("a")
  f:close()
  if #data < 8 then error("load: " .. path .. " is not a safetensors file (too short)", 3) end
  local n = read_u64le(data)
  if n > #data - 8 then error("load: " .. path .. " is not a safetensors file (bad header length)", 3) end
  local header = json.decode(data:sub(9, 8 + n))
  local base = 8 + n
  local out, names = {}, {}
  for name, info in pairs(header) do
    if name ~= "__metadata__" then
      local dt = DTYPES[info.dtype]
      if not dt then error("load: " .. path .. ": unsupported dtype " .. tostring(info.dtype), 3) end
      local b, e = info.data_offsets[1], info.data_offsets[2]
      out[name] = mg.frombytes(data:sub(base + b + 1, base + e), dt, info.shape or {})
      names[#names + 1] = { name = name, at = b }
    end
  end
  table.sort(names, function(a, c) return a.at < c.at end)
  local order = {}
  for i, x in ipairs(names) do order[i] = x.name end
  return out, order, header.__metadata__ or {}
end

local function weight_names(ws)
  local names, used = {}, {}
  for i, v in ipairs(ws) do
    local n = v.name or ("weight_" .. i)
    if used[n] then n = n .. "_" .. i end
    used[n] = true
    names[i] = n
  end
  return names
end

local function write_weights(model, path, metadata)
  local ws = model.weights
  local names = weight_names(ws)
  local tensors = {}
  for i, v in ipairs(ws) do tensors[names[i]] = mg.tensor(v) end
  M.write_safetensors(path, names, tensors, metadata)
end

-- model:save_weights(path): every weight, in safetensors format.
function Layer:save_weights(path)
  write_weights(self, path, { format = "moongrad", moongrad_version = mg.version })
end

-- model:load_weights(path): by name, or by position when the names differ.
function Layer:load_weights(path)
  local tensors, order = M.read_safetensors(path)
  local ws = self.weights
  local names = weight_names(ws)
  local by_name = true
  for _, n in ipairs(names) do if not tensors[n] then by_name = false end end
  if not by_name and #order ~= #ws then
    error(string.format("load_weights: %s holds %d tensors whose names do not match, and model %s has %d weights",
      path, #order, self.name, #ws), 2)
  end
  for i, v in ipairs(ws) do
    local t = by_name and tensors[names[i]] or tensors[order[i]]
    local ok = #t.shape == #v.shape
    for d = 1, #v.shape do ok = ok and t.shape[d] == v.shape[d] end
    if not ok then
      error(string.format("load_weights: weight %s has shape %s but the file's %s has %s", names[i],
        util.shape_str(v.shape), by_name and names[i] or order[i], util.shape_str(t.shape)), 2)
    end
    v:assign(t.dtype == v.dtype and t or mg.cast(t, v.dtype))
  end
end

-- model:save(path): the config and the weights in one safetensors file.
function Model:save(path)
  local config = self:to_json()
  write_weights(self, path, { format = "moongrad", moongrad_version = mg.version, model_config = config })
end

-- nn.load_model(path): the model model:save wrote, weights loaded.
function M.load_model(path)
  local _, _, meta = M.read_safetensors(path)
  if not meta.model_config then
    error("load_model: " .. path .. " holds weights only (save_weights); build the model and call load_weights", 2)
  end
  local model = M.model_from_json(meta.model_config)
  model:load_weights(path)
  return model
end

return M
