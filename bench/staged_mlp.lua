-- staged_mlp.lua — one training step of a 784-128-10 MLP, eager versus staged.
--
--   moongrad bench/staged_mlp.lua [steps]
--
-- The step: a GradientTape records relu(x @ w1 + b1) @ w2 + b2 and the mean
-- softmax cross entropy of a batch of 32 (random inputs, random labels), then
-- plain SGD moves the four Variables with assign_sub. Eager runs the Lua
-- function; staged is mg.func of the same function, so the forward pass, the
-- backward pass the tape builds and the updates are all one graph run in C.
-- A warm-up (which also traces), then REPS timed runs of N steps; prints the
-- median microseconds per step and the ratio. mg.clock() is wall time. On a
-- machine busy with other work, 2-thread figures are erratic (a descheduled
-- OpenMP thread stalls the other at each barrier): MG_NUM_THREADS=1 then.

local mg = require "moongrad"

local N = tonumber(arg and arg[1]) or 300
local REPS = 5
local BATCH, IN, HIDDEN, OUT, LR = 32, 784, 128, 10, 0.05

local function params()
  return {
    w1 = mg.Variable(mg.random.normal({ IN, HIDDEN }, 0, 0.05, mg.float32, 1)),
    b1 = mg.Variable(mg.zeros{ HIDDEN }),
    w2 = mg.Variable(mg.random.normal({ HIDDEN, OUT }, 0, 0.05, mg.float32, 2)),
    b2 = mg.Variable(mg.zeros{ OUT }),
  }
end

local x = mg.random.uniform({ BATCH, IN }, 0, 1, mg.float32, 3)
local labels = mg.randint({ BATCH }, 1, OUT, mg.int64, 4)   -- both ends included
local onehot = mg.one_hot(labels, OUT)

local xent = mg.sparse_softmax_cross_entropy_with_logits
local function loss_of(logits)
  if xent then return mg.mean(xent(logits, labels)) end
  return -mg.mean(mg.sum(onehot * mg.log_softmax(logits, { axis = -1 }), { axis = -1 }))
end

local function make_step(p)
  local vars = { p.w1, p.b1, p.w2, p.b2 }
  return function(xb)
    local tape = mg.GradientTape()
    local h = mg.relu(mg.matmul(xb, p.w1) + p.b1)
    local loss = loss_of(mg.matmul(h, p.w2) + p.b2)
    tape:stop()
    local g = tape:gradient(loss, vars)
    for i, v in ipairs(vars) do v:assign_sub(g[i] * LR) end
    return loss
  end
end

local function median(xs)
  table.sort(xs)
  return xs[math.floor((#xs + 1) / 2)]
end

local function time(step)
  for _ = 1, 20 do step(x) end            -- warm-up (traces the staged step)
  local times = {}
  for r = 1, REPS do
    local t0 = mg.clock()
    for _ = 1, N do step(x) end
    times[r] = (mg.clock() - t0) / N * 1e6
  end
  return median(times)
end

print(("staged_mlp: %d-%d-%d MLP, batch %d, tape + SGD on 4 Variables, %d steps per run, %d runs, median, %d thread(s)")
  :format(IN, HIDDEN, OUT, BATCH, N, REPS, mg.config.get_num_threads()))
-- eager first, before any staged function exists (see bench/matmul_many.lua)
local eager = time(make_step(params()))

-- both forms must compute the same steps
local pe, ps = params(), params()
local eager_step, staged_step = make_step(pe), mg.func(make_step(ps))
for _ = 1, 3 do
  local le, ls = eager_step(x):item(), staged_step(x):item()
  assert(math.abs(le - ls) <= 1e-4 * math.max(1, math.abs(le)), ("loss: eager %g, staged %g"):format(le, ls))
end
local staged = time(staged_step)
print(("  eager  %9.1f us/step"):format(eager))
print(("  staged %9.1f us/step   staged/eager %.3f (%.2fx faster)"):format(staged, staged / eager, eager / staged))
print(("  (staged step traced %d time(s); final loss %.4f)"):format(staged_step:trace_count(), staged_step(x):item()))
