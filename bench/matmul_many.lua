-- matmul_many.lua — the TensorFlow 2 blog's tf.function example: 100 chained
-- matmuls of a 2x2 tensor, eager versus staged.
--
--   moongrad bench/matmul_many.lua [calls]
--
-- Two forms of the same computation, y = x @ x @ ... @ x (101 factors):
--   unrolled    a Lua for loop of 100 mg.matmul calls; staged, it is traced
--               into 100 matmul nodes;
--   while_loop  mg.while_loop over (i, y); eagerly each iteration runs the
--               condition and body as Lua, staged it is one while node whose
--               condition and body the C runtime runs.
-- Each is timed eagerly (the plain Lua function) and staged (mg.func of it):
-- a warm-up (which also traces), then REPS timed runs of N calls; prints the
-- median microseconds per call and the ratio staged / eager. For reference,
-- the TF 2 blog ("tf.function and AutoGraph") reported 1.97 ms per call for
-- its tf.function'd loop version. Timed with mg.clock() (monotonic wall time).

local mg = require "moongrad"

local N = tonumber(arg and arg[1]) or 2000
local REPS = 7
local TF_BLOG_US = 1970

local x = mg.tensor({{1.0, 0.0}, {0.0, 1.0}}, mg.float32)
local matmul, less = mg.matmul, mg.less

local function unrolled(t)
  local y = t
  for _ = 1, 100 do y = matmul(y, t) end
  return y
end

local zero = mg.tensor(0)
local function looped(t)
  return mg.while_loop(function(i, _) return less(i, 100) end,
    function(i, y) return i + 1, matmul(y, t) end, { zero, t })[2]
end

local function median(xs)
  table.sort(xs)
  return xs[math.floor((#xs + 1) / 2)]
end

-- median microseconds per call of f(x), n calls per run
local function time(f, n)
  for _ = 1, math.max(10, n // 10) do f(x) end   -- warm-up (traces a staged function)
  local times = {}
  for r = 1, REPS do
    local t0 = mg.clock()
    for _ = 1, n do f(x) end
    times[r] = (mg.clock() - t0) / n * 1e6
  end
  return median(times)
end

-- The eager forms are timed first, before any staged function exists: making
-- one (AutoGraph's conversion) leaves state behind in the Lua heap that the
-- garbage collector then walks, and that should not be charged to eager ops.
print(("matmul_many: 100 chained 2x2 float32 matmuls, %d calls per run, %d runs, median, %d thread(s)")
  :format(N, REPS, mg.config.get_num_threads()))
local eager_unrolled = time(unrolled, N)
local eager_looped = time(looped, math.max(1, N // 10))  -- Lua per iteration: fewer calls

-- the staged results must equal the eager ones (checked on a rotation, whose
-- powers stay bounded and differ from step to step)
local su, sl = mg.func(unrolled), mg.func(looped)
local rot = mg.tensor({{0.6, -0.8}, {0.8, 0.6}}, mg.float32)
local ref = unrolled(rot):totable()
for _, y in ipairs({ looped(rot), su(rot), sl(rot) }) do
  local t = y:totable()
  for i = 1, 2 do
    for j = 1, 2 do assert(math.abs(t[i][j] - ref[i][j]) < 1e-4, "staged result differs from eager") end
  end
end

local rows = {
  { "unrolled", eager_unrolled, time(su, N) },
  { "while_loop", eager_looped, time(sl, N) },
}
for _, row in ipairs(rows) do
  local name, eager, staged = row[1], row[2], row[3]
  print(("  %-11s eager %9.2f us/call   staged %8.2f us/call   staged/eager %.3f (%.1fx faster)")
    :format(name, eager, staged, staged / eager, eager / staged))
end
print(("  (TF 2 blog, tf.function loop version: %.0f us/call = 1.97 ms)"):format(TF_BLOG_US))
