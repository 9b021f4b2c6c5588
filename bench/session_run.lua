-- session_run.lua — TF1-style sess:run (stdlib/moongrad/graph_mode.lua) against mg.func.
--
--   moongrad bench/session_run.lua [steps]
--
-- Two workloads. (1) A tiny graph (c = a * b on scalars): the per-call overhead of sess:run
-- with a cached compiled graph against a call of the staged mg.func of the same function, and
-- the first sess:run (prune + optimise + compile) against a cached one. (2) One SGD step of a
-- 784-128-10 MLP on a batch of 32 fed through placeholders: sess:run(train_op, feeds) against
-- the same step as mg.func (tape + assign_sub), both one graph run in C. Median microseconds
-- per call over REPS runs of N calls. MG_NUM_THREADS=1 on a busy machine.

local mg = require "moongrad"

local N = tonumber(arg and arg[1]) or 300
local REPS = 5
local BATCH, IN, HIDDEN, OUT, LR = 32, 784, 128, 10, 0.05

local function median(xs)
  table.sort(xs)
  return xs[math.floor((#xs + 1) / 2)]
end
local function time(fn, n)
  for _ = 1, 20 do fn() end
  local times = {}
  for r = 1, REPS do
    local t0 = mg.clock()
    for _ = 1, n do fn() end
    times[r] = (mg.clock() - t0) / n * 1e6
  end
  return median(times)
end

-- (1) the tiny graph
local g = mg.Graph()
local a, b, c
g:as_default(function()
  a = mg.placeholder("float32", {}); b = mg.placeholder("float32", {})
  c = a * b
end)
local av, bv = mg.tensor(5.0, "float32"), mg.tensor(6.0, "float32")
local feeds = { [a] = av, [b] = bv }
local first = mg.clock()
local sess = mg.Session { graph = g }
sess:run(c, feeds)
first = (mg.clock() - first) * 1e6
local staged = mg.func(function(x, y) return x * y end)
local t_sess = time(function() return sess:run(c, feeds) end, N * 10)
local t_func = time(function() return staged(av, bv) end, N * 10)
print(string.format("tiny graph: first sess:run %.0f us, cached sess:run %.1f us, mg.func call %.1f us (%.1fx)",
  first, t_sess, t_func, t_sess / t_func))

-- (2) the MLP step
local function params()
  return {
    w1 = mg.Variable(mg.random.normal({ IN, HIDDEN }, 0, 0.05, mg.float32, 1)),
    b1 = mg.Variable(mg.zeros { HIDDEN }),
    w2 = mg.Variable(mg.random.normal({ HIDDEN, OUT }, 0, 0.05, mg.float32, 2)),
    b2 = mg.Variable(mg.zeros { OUT }),
  }
end
local xb = mg.random.uniform({ BATCH, IN }, 0, 1, mg.float32, 3)
local onehot = mg.cast(mg.one_hot(mg.randint({ BATCH }, 1, OUT, mg.int64, 4), OUT), "float32")
local function loss_of(p, x, y)
  local h = mg.relu(mg.matmul(x, p.w1) + p.b1)
  return -mg.mean(mg.sum(y * mg.log_softmax(mg.matmul(h, p.w2) + p.b2, { axis = -1 }), { axis = -1 }))
end

local p1 = params()
local vars = { p1.w1, p1.b1, p1.w2, p1.b2 }
local step = mg.func(function(x, y)
  local tape = mg.GradientTape()
  local loss = loss_of(p1, x, y)
  tape:stop()
  local gr = tape:gradient(loss, vars)
  for i, v in ipairs(vars) do v:assign_sub(gr[i] * LR) end
  return loss
end)

local p2 = params()
local g2 = mg.Graph()
local x, y, train
g2:as_default(function()
  x = mg.placeholder("float32", { -1, IN }); y = mg.placeholder("float32", { -1, OUT })
  train = mg.optim.SGD { learning_rate = LR }:minimize(loss_of(p2, x, y), { p2.w1, p2.b1, p2.w2, p2.b2 })
end)
local sess2 = mg.Session { graph = g2 }
local f2 = { [x] = xb, [y] = onehot }
local t_step_sess = time(function() return sess2:run(train, f2) end, N)
local t_step_func = time(function() return step(xb, onehot) end, N)
print(string.format("MLP SGD step: sess:run(train_op) %.1f us, mg.func step %.1f us (%.2fx); %d compiled graph(s)",
  t_step_sess, t_step_func, t_step_sess / t_step_func, sess2.ncompiled))
