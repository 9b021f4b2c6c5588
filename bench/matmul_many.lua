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
-- Each is timed eagerly (the plain Lua function) and staged (mg.func of it),
-- in turns: a warm-up (which also traces), then REPS rounds of one run of N
-- calls each way; prints the median microseconds per call and the median of
-- the rounds' eager / staged ratios. For reference,
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

-- microseconds per call of f(x) over one run of n calls
local function run_once(f, n)
  local t0 = mg.clock()
  for _ = 1, n do f(x) end
  return (mg.clock() - t0) / n * 1e6
end

-- Eager and staged forms timed in turns, REPS rounds after a warm-up (which
-- also traces), in one process: the machine's other load hits both alike.
-- Reports the medians and the median of the rounds' ratios.
local function compare(eager, staged, n)
  for _ = 1, math.max(10, math.floor(n / 10)) do eager(x); staged(x) end
  local te, ts, ratio = {}, {}, {}
  for r = 1, REPS do
    te[r] = run_once(eager, n)
    ts[r] = run_once(staged, n)
    ratio[r] = te[r] / ts[r]
  end
  return median(te), median(ts), median(ratio)
end

print(("matmul_many: 100 chained 2x2 float32 matmuls, %d calls per run, %d runs in turns, median, %d thread(s)")
  :format(N, REPS, mg.config.get_num_threads()))

-- the staged results must equal the eager ones (checked on a rotation, whose
-- powers stay bounded and differ from step to step)
-- (no AutoGraph: both use tensor ops and mg.while_loop as they are, and
-- AutoGraph's compiler, once loaded, leaves state that slows eager ops down)
local su, sl = mg.func(unrolled, { autograph = false }), mg.func(looped, { autograph = false })
local rot = mg.tensor({{0.6, -0.8}, {0.8, 0.6}}, mg.float32)
local ref = unrolled(rot):totable()
for _, y in ipairs({ looped(rot), su(rot), sl(rot), su(rot), sl(rot) }) do
  local t = y:totable()
  for i = 1, 2 do
    for j = 1, 2 do assert(math.abs(t[i][j] - ref[i][j]) < 1e-4, "staged result differs from eager") end
  end
end
collectgarbage()

local rows = {
  { "unrolled", compare(unrolled, su, N) },
  { "while_loop", compare(looped, sl, math.max(1, math.floor(N / 10))) },  -- Lua per iteration eagerly: fewer calls
}
for _, row in ipairs(rows) do
  local name, eager, staged, ratio = row[1], row[2], row[3], row[4]
  print(("  %-11s eager %9.2f us/call   staged %8.2f us/call   %.1fx faster (median of the runs' ratios)")
    :format(name, eager, staged, ratio))
end
print(("  (TF 2 blog, tf.function loop version: %.0f us/call = 1.97 ms)"):format(TF_BLOG_US))
