-- tape_around_staged.lua — a GradientTape around a call of a staged function.
--
--   moongrad bench/tape_around_staged.lua [steps]
--
-- Two functions, each called under a tape whose gradient is then taken:
--   mlp:   the loss of a 784-128-10 MLP on a batch of 32 (4 Variables);
--   chain: 20 elementwise ops on a 4x4 tensor (many small ops), gradient
--          with respect to the input.
-- Three ways, timed in turns in one process (medians of REPS runs of N steps):
--   eager:  the Lua function under the tape;
--   nodes:  the staged function, its graph's ops recorded on the tape one by
--           one (mg.config.staged_backward(false));
--   graph:  the staged function's forward graph (which also returns what the
--           gradient needs) and its backward graph, each traced once (the
--           default).
-- On a busy machine run with MG_NUM_THREADS=1.

local mg = require "moongrad"

local N = tonumber(arg and arg[1]) or 300
local REPS = 7
local BATCH, IN, HIDDEN, OUT = 32, 784, 128, 10

local w1 = mg.Variable(mg.random.normal({ IN, HIDDEN }, 0, 0.05, mg.float32, 1))
local b1 = mg.Variable(mg.zeros{ HIDDEN })
local w2 = mg.Variable(mg.random.normal({ HIDDEN, OUT }, 0, 0.05, mg.float32, 2))
local b2 = mg.Variable(mg.zeros{ OUT })
local vars = { w1, b1, w2, b2 }
local x = mg.random.uniform({ BATCH, IN }, 0, 1, mg.float32, 3)
local labels = mg.randint({ BATCH }, 1, OUT, mg.int64, 4)

local function mlp_loss(xb)
  local h = mg.relu(mg.matmul(xb, w1) + b1)
  return mg.mean(mg.sparse_softmax_cross_entropy_with_logits(mg.matmul(h, w2) + b2, labels))
end

local c = mg.random.uniform({ 4, 4 }, 0.5, 1.5, mg.float32, 5)
local small = mg.random.uniform({ 4, 4 }, -1, 1, mg.float32, 6)
local function chain(h)
  for _ = 1, 4 do h = mg.sigmoid(mg.sin(mg.tanh(mg.add(mg.mul(h, c), 0.5)))) end
  return mg.sum(h)
end

local function median(xs)
  table.sort(xs)
  return xs[math.floor((#xs + 1) / 2)]
end

local function step_of(fn, input, sources)
  return function()
    local tape = mg.GradientTape()
    tape:watch(input)
    local y = fn(input)
    tape:stop()
    return tape:gradient(y, sources)
  end
end

local function run(name, n, fn, input, sources)
  local staged = mg.func(fn)
  local ways = {
    { "eager", step_of(fn, input, sources), nil },
    { "nodes", step_of(staged, input, sources), false },
    { "graph", step_of(staged, input, sources), true },
  }
  local times = {}
  for _, w in ipairs(ways) do
    mg.config.staged_backward(w[3] ~= false)
    for _ = 1, 10 do w[2]() end
    times[w[1]] = {}
  end
  for _ = 1, REPS do
    for _, w in ipairs(ways) do
      mg.config.staged_backward(w[3] ~= false)
      local t0 = mg.clock()
      for _ = 1, n do w[2]() end
      local list = times[w[1]]
      list[#list + 1] = (mg.clock() - t0) / n * 1e6
    end
  end
  mg.config.staged_backward(true)
  local e, nd, g = median(times.eager), median(times.nodes), median(times.graph)
  print(("  %-6s eager %8.1f us   nodes %8.1f us   graph %8.1f us   graph/nodes %.2f   graph/eager %.2f")
    :format(name, e, nd, g, g / nd, g / e))
end

print(("tape_around_staged: tape + gradient around a staged call, %d runs, median, %d thread(s)")
  :format(REPS, mg.config.get_num_threads()))
run("mlp", N, mlp_loss, x, vars)
run("chain", N * 10, chain, small, { small })
