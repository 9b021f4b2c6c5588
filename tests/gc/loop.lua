-- loop.lua — allocates many 1 MB tensors with no collectgarbage() call and
-- reports the process's peak resident memory, so tests/gc/run.sh can check
-- that the binding tells Lua's collector about tensor buffers.
--
--   moongrad tests/gc/loop.lua N KIND
--   KIND: zeros (mg.zeros), ones (mg.ones), op (results of a + 1),
--         view (a view of a fresh tensor outlives its base), free (t:free())
-- Prints "peak_kb=K seconds=S live_bytes=B".

local mg = require "moongrad"

local n = tonumber(arg and arg[1]) or 20000
local kind = arg and arg[2] or "zeros"
local SIZE = 262144                       -- float32: 1 MiB per tensor

local base = mg.ones{SIZE}
local make = {
  zeros = function() return mg.zeros{SIZE} end,
  ones = function() return mg.ones({SIZE}, mg.float32) end,
  op = function() return base + 1 end,
  view = function() return mg.zeros{SIZE}:reshape{512, 512} end,
  free = function() local t = mg.zeros{SIZE}; t:free(); return t end,
}
local f = assert(make[kind], "unknown kind " .. tostring(kind))

local function peak_kb()
  local fh = assert(io.open("/proc/self/status"))
  local s = fh:read("a")
  fh:close()
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end

local keep                                 -- the last tensor stays alive
local t0 = os.clock()
local w0 = os.time()
for _ = 1, n do keep = f() end
local cpu = os.clock() - t0
assert(keep)
print(("peak_kb=%d seconds=%.2f wall=%d live_bytes=%d"):format(
  peak_kb(), cpu, os.time() - w0, mg.core and mg.core.bytes_live and mg.core.bytes_live() or -1))
