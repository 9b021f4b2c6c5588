-- eager_overhead.lua — the fixed cost of one eager op on tiny tensors.
--
--   moongrad bench/eager_overhead.lua [iterations]
--   luajit bench/eager_overhead.lua [iterations]   (the FFI binding; LUA_PATH from `make print-luapath`)
--
-- Times 100,000 `a + b` on 2x2 float32 tensors (the operator, through the
-- metamethod), the same through mg.add(a, b), and 2x2 @ 2x2 matmul: a warm-up
-- run, then REPS timed runs; prints the median microseconds per op. The peers
-- on this machine (shared/NOTES.md): PyTorch 0.71 us, NumPy 0.24 us for the
-- 2x2 add. Timed with mg.clock() (monotonic wall time): os.clock() is process
-- CPU time and would also count idle OpenMP workers spinning on the other core.

local mg = require "moongrad"

local N = tonumber(arg and arg[1]) or 100000
local REPS = 7

local a = mg.tensor({{1, 2}, {3, 4}}, mg.float32)
local b = mg.tensor({{5, 6}, {7, 8}}, mg.float32)
local add, matmul = mg.add, mg.matmul

local cases = {
  { "a + b (metamethod)", function() local c; for _ = 1, N do c = a + b end; return c end },
  { "mg.add(a, b)", function() local c; for _ = 1, N do c = add(a, b) end; return c end },
  { "mg.matmul(a, b) 2x2", function() local c; for _ = 1, N do c = matmul(a, b) end; return c end },
  { "(empty Lua loop)", function() local c; for i = 1, N do c = i end; return c end },
}

local function median(xs)
  table.sort(xs)
  return xs[math.floor((#xs + 1) / 2)]   -- portable: also runs under LuaJIT
end

print(("eager overhead: %d ops per run, %d runs, median"):format(N, REPS))
for _, case in ipairs(cases) do
  local name, fn = case[1], case[2]
  fn()                                      -- warm-up: pools, caches, JIT-free steady state
  local times = {}
  for r = 1, REPS do
    local t0 = mg.clock()
    fn()
    times[r] = (mg.clock() - t0) / N * 1e6
  end
  print(("  %-24s %7.3f us/op"):format(name, median(times)))
end
