-- moongrad.datasets.idx: reads IDX files (the MNIST family's format:
-- a big-endian magic number whose third byte is the element type and
-- fourth the rank, the sizes as big-endian 32-bit integers, then the data),
-- gzip-compressed or not. Bytes become a tensor in one mg.frombytes copy;
-- multi-byte types are byte-swapped from big-endian with tensor ops (no
-- string.unpack, which LuaJIT lacks).
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")

local M = {}

local TYPES = {
  [0x08] = { dtype = "uint8", size = 1 },
  [0x09] = { dtype = "int32", size = 1, signed = true },   -- int8: widened
  [0x0B] = { dtype = "int32", size = 2, signed = true },   -- int16: widened
  [0x0C] = { dtype = "int32", size = 4, signed = true },
  [0x0D] = { dtype = "float32", size = 4, float = true },
  [0x0E] = { dtype = "float64", size = 8, float = true },
}

--- mg.datasets.idx.file_exists(path) -> boolean
--- Whether a file can be opened for reading (the data sets look for their files with it).
local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end
M.file_exists = file_exists

-- The file's bytes; a .gz file is decompressed in process (zlib, through
-- core.read_file_gunzip: no gzip program or shell needed).
function M.read_bytes(path)
  if not file_exists(path) then error("idx: no such file: " .. path, 3) end
  local data
  if path:match("%.gz$") then
    local ok, r = pcall(core.read_file_gunzip, path)
    if not ok then error("idx: " .. tostring(r):gsub("^[^\n]-:%d+: ", ""), 3) end
    data = r
  else
    local f = io.open(path, "rb")
    data = f:read("a")
    f:close()
  end
  return data
end

local function be32(s, at)
  local a, b, c, d = s:byte(at, at + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- Decodes IDX bytes into a tensor.
function M.decode(data, name)
  name = name or "idx data"
  if #data < 4 or data:byte(1) ~= 0 or data:byte(2) ~= 0 then
    error("idx: " .. name .. " is not an IDX file (bad magic number)", 3)
  end
  local ty = TYPES[data:byte(3)]
  if not ty then error(string.format("idx: %s has an unknown element type 0x%02x", name, data:byte(3)), 3) end
  local rank = data:byte(4)
  local shape, count = {}, 1
  for i = 1, rank do
    shape[i] = be32(data, 5 + 4 * (i - 1))
    count = count * shape[i]
  end
  local start = 5 + 4 * rank
  if #data - start + 1 < count * ty.size then
    error(string.format("idx: %s is truncated: %d elements need %d bytes, %d present", name, count,
      count * ty.size, #data - start + 1), 3)
  end
  if ty.dtype == "uint8" and ty.size == 1 then
    -- the whole buffer in one copy, then a view past the header (no substring copy)
    local all = mg.frombytes(data, "uint8")
    return mg.reshape(mg.contiguous(all:slice { { start, start + count - 1 } }), shape)
  end
  -- other types with tensor ops: the bytes as (count, size) uint8, reversed per
  -- element (big- to little-endian), then read as the element type
  local all = mg.frombytes(data, "uint8")
  local bytes = mg.reshape(mg.contiguous(all:slice { { start, start + count * ty.size - 1 } }), { count, ty.size })
  local out
  if ty.size == 1 then   -- int8
    local v = mg.cast(bytes, "int32")
    out = v - mg.cast(mg.greater_equal(v, 128), "int32") * 256
  elseif ty.size == 2 then   -- int16
    local v = mg.cast(bytes, "int32")
    v = v:slice { {}, { 1, 1 } } * 256 + v:slice { {}, { 2, 2 } }
    out = v - mg.cast(mg.greater_equal(v, 32768), "int32") * 65536
  else
    local le = mg.contiguous(mg.flip(bytes, { axis = 2 }))
    out = mg.frombytes(le:tobytes(), ty.dtype, { count })
  end
  return mg.reshape(out, shape)
end

-- read(path): the tensor stored in an IDX file (.gz allowed).
function M.read(path)
  return M.decode(M.read_bytes(path), path)
end

return M
