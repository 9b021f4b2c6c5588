-- tape_overhead.lua — the cost of recording and differentiating small ops.
--
--   moongrad bench/tape_overhead.lua [steps]
--
-- One step is a chain of 20 elementwise ops on 4x4 float32 tensors (mul, add,
-- tanh, sin, sigmoid, four times over, each feeding the next), reduced to a
-- scalar. Timed three ways: the chain alone (no tape); the chain on a
-- recording tape that is then dropped (its records wait for the collector);
-- the full training-style step, tape forward + tape:gradient with respect to
-- the input (a non-persistent tape releases its records at once). A warm-up
-- run, then REPS timed runs; prints the median microseconds per step and per
-- forward op (21 with the sum). os.clock() is process CPU time, which equals
-- wall time here: tiny ops never start OpenMP workers.

local mg = require "moongrad"

local N = tonumber(arg and arg[1]) or 5000
local REPS = 7
local CHAIN = 20

local x = mg.random.uniform({4, 4}, -1, 1, mg.float32, 1)
local c = mg.random.uniform({4, 4}, 0.5, 1.5, mg.float32, 2)
local mul, add, tanh, sin, sigmoid = mg.mul, mg.add, mg.tanh, mg.sin, mg.sigmoid
local sum = mg.sum

-- 20 ops: 4 rounds of (mul, add, tanh, sin, sigmoid) = 20, then a sum
local function chain(h)
  for _ = 1, CHAIN / 5 do
    h = mul(h, c)
    h = add(h, 0.5)
    h = tanh(h)
    h = sin(h)
    h = sigmoid(h)
  end
  return sum(h)
end

local cases = {
  { "forward, no tape", function()
      local y
      for _ = 1, N do y = chain(x) end
      return y
    end },
  { "forward, recording", function()
      local y
      for _ = 1, N do
        local tape = mg.GradientTape()
        tape:watch(x)
        y = chain(x)
        tape:stop()
      end
      return y
    end },
  { "forward + gradient", function()
      local g
      for _ = 1, N do
        local tape = mg.GradientTape()
        tape:watch(x)
        local y = chain(x)
        tape:stop()
        g = tape:gradient(y, x)
      end
      return g
    end },
}

local function median(xs)
  table.sort(xs)
  return xs[math.floor((#xs + 1) / 2)]
end

print(("tape overhead: %d-op chain on 4x4 float32, %d steps per run, %d runs, median"):format(CHAIN, N, REPS))
for _, case in ipairs(cases) do
  local name, fn = case[1], case[2]
  fn()                                       -- warm-up
  local times = {}
  for r = 1, REPS do
    local t0 = os.clock()
    fn()
    times[r] = (os.clock() - t0) / N * 1e6
  end
  local us = median(times)
  print(("  %-22s %8.2f us/step  %6.3f us/op"):format(name, us, us / (CHAIN + 1)))
end
