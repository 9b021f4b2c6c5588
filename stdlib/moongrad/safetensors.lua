-- moongrad.safetensors: mg.save / mg.load (tensor files in the safetensors
-- format) and mg.io.write_file_atomic / mg.io.read_file.
--
-- The engine does the work (core/safetensors.c: a strict parser that checks
-- every byte of a hostile file, and an atomic writer); this module checks the
-- Lua arguments and turns tables into the lists moongrad.core takes, so that
-- both bindings (Lua 5.4's C module and LuaJIT's FFI) share the checks and
-- their messages. Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local args = require("moongrad.io_args")

local M = {}

local typename, fail, call, check_string = args.typename, args.fail, args.call, args.check_string

-- mg.save(path, {name = tensor, ...} [, metadata]): writes the tensors (and a
-- table of string metadata) to path atomically, in the safetensors format.
function M.save(path, tensors, metadata)
  check_string(path, "mg.save")
  if type(tensors) ~= "table" or core.is_tensor(tensors) then
    fail("mg.save: expected a table of {name = tensor}, got " .. typename(tensors))
  end
  local names, list = {}, {}
  for k, v in pairs(tensors) do
    if type(k) ~= "string" then
      fail("mg.save: tensor names must be strings, got the " .. type(k) .. " key " .. tostring(k))
    end
    if not core.is_tensor(v) then
      fail("mg.save: the value of '" .. k .. "' must be a tensor, got " .. typename(v))
    end
    names[#names + 1] = k
  end
  table.sort(names)
  for i, k in ipairs(names) do list[i] = tensors[k] end
  local keys, vals = {}, {}
  if metadata ~= nil then
    if type(metadata) ~= "table" then fail("mg.save: metadata must be a table of strings, got " .. typename(metadata)) end
    for k, v in pairs(metadata) do
      if type(k) ~= "string" then fail("mg.save: metadata keys must be strings, got the " .. type(k) .. " key " .. tostring(k)) end
      if type(v) ~= "string" then
        fail("mg.save: metadata '" .. k .. "' must be a string, got " .. typename(v) .. " (use tostring)")
      end
      keys[#keys + 1] = k
    end
    table.sort(keys)
    for i, k in ipairs(keys) do vals[i] = metadata[k] end
  end
  call(core.safetensors_save, path, names, list, keys, vals)
end

-- mg.load(path [, opts]) -> tensors, metadata, names: the tensors by name,
-- the metadata table ({} when the file has none) and the names in file order
-- (by data offset). F16/BF16/I8/I16 tensors come back as float16/bfloat16/int8/int16.
function M.load(path, opts)
  check_string(path, "mg.load")
  if opts ~= nil and type(opts) ~= "table" then fail("mg.load: options must be a table, got " .. typename(opts)) end
  local names, list, metadata = call(core.safetensors_load, path)
  local tensors = {}
  for i, k in ipairs(names) do tensors[k] = list[i] end
  return tensors, metadata, names
end

-- mg.io.write_file_atomic(path, bytes): path holds exactly bytes afterwards,
-- or (on error) what it held before.
function M.write_file_atomic(path, bytes)
  check_string(path, "mg.io.write_file_atomic")
  check_string(bytes, "mg.io.write_file_atomic", "contents")
  call(core.write_file_atomic, path, bytes)
end

-- mg.io.read_file(path) -> the whole file as a string.
function M.read_file(path)
  check_string(path, "mg.io.read_file")
  return (call(core.read_file, path))
end

return M
