-- staged_train_step.lua — a classifier trained with a staged train step.
--
--   moongrad examples/staged_train_step.lua        (MG_QUICK=1: fewer steps)
--
-- Three Gaussian blobs in the plane, a 2-32-3 MLP. The train step (forward,
-- GradientTape, SGD updates of the Variables) is wrapped in mg.func: its first
-- call traces it into a graph and every later call runs that graph in C. The
-- points to notice:
--   * every batch has the same shape, so the step is traced once;
--   * the learning rate is a Variable, so the schedule changes it without a
--     retrace (a Lua number would be baked into the graph: a new trace per
--     value, with a warning);
--   * the tape inside the staged function: its backward pass becomes part of
--     the graph;
--   * an evaluation function staged with an input_signature whose batch size
--     is -1: one graph serves the whole data set and single batches;
--   * the same step run eagerly, for a timing comparison.

local mg = require "moongrad"

local QUICK = os.getenv("MG_QUICK") == "1"
local EPOCHS = QUICK and 6 or 30
local BATCH = 51
local N_PER_CLASS = 170            -- 510 points: 10 batches of 51

-- ---- data: three blobs --------------------------------------------------------------------
local centers = { { 0, 2 }, { -2, -1 }, { 2, -1 } }
local xs, ys = {}, {}
for c = 1, 3 do
  local pts = mg.random.normal({ N_PER_CLASS, 2 }, 0, 0.7, mg.float32, c) + mg.tensor(centers[c])
  xs[c] = pts
  ys[c] = mg.full({ N_PER_CLASS }, c, mg.int64)
end
local X, Y = mg.concat(xs, 1), mg.concat(ys, 1)
local N = X.shape[1]

-- ---- the model: Variables made once, outside the staged functions ---------------------------
local params = {
  w1 = mg.Variable(mg.random.normal({ 2, 32 }, 0, 0.5, mg.float32, 10), { name = "w1" }),
  b1 = mg.Variable(mg.zeros{ 32 }, { name = "b1" }),
  w2 = mg.Variable(mg.random.normal({ 32, 3 }, 0, 0.5, mg.float32, 11), { name = "w2" }),
  b2 = mg.Variable(mg.zeros{ 3 }, { name = "b2" }),
}
local lr = mg.Variable(0.5, { name = "lr", trainable = false })

local function logits_of(x)
  local h = mg.tanh(mg.matmul(x, params.w1) + params.b1)
  return mg.matmul(h, params.w2) + params.b2
end

local function cross_entropy(logits, labels)
  return -mg.mean(mg.sum(mg.one_hot(labels, 3) * mg.log_softmax(logits, { axis = -1 }), { axis = -1 }))
end

local function train_step(x, labels)
  local tape = mg.GradientTape()
  local loss = cross_entropy(logits_of(x), labels)
  tape:stop()
  local g = tape:gradient(loss, params)        -- same keys as params
  for k, v in pairs(params) do v:assign_sub(g[k] * lr) end
  return loss
end

local staged_step = mg.func(train_step, { name = "train_step" })

local signature = {
  mg.TensorSpec{ shape = { -1, 2 }, dtype = mg.float32 },
  mg.TensorSpec{ shape = { -1 }, dtype = mg.int64 },
}
local accuracy = mg.func(function(x, labels)
  local predicted = mg.argmax(logits_of(x), { axis = -1 })
  return mg.mean(mg.cast(mg.equal(predicted, labels), mg.float32))
end, { input_signature = signature, name = "accuracy" })

-- ---- training -------------------------------------------------------------------------------
local t0 = mg.clock()
local steps = 0
for epoch = 1, EPOCHS do
  lr:assign(0.5 / (1 + 0.1 * (epoch - 1)))          -- the schedule: no retrace
  local order = mg.random.integers({ N }, 1, N, mg.int64, 100 + epoch)   -- N draws (with replacement)
  local total, batches = 0, 0
  for first = 1, N, BATCH do
    local last = math.min(first + BATCH - 1, N)
    local idx = order:slice{ { first, last } }
    local loss = staged_step(mg.take(X, idx, 1), mg.take(Y, idx, 1))
    total, batches, steps = total + loss:item(), batches + 1, steps + 1
  end
  if epoch == 1 or epoch % math.max(1, EPOCHS // 5) == 0 then
    print(("epoch %3d  lr %.3f  mean loss %.4f  accuracy %.3f"):format(epoch, lr:item(), total / batches,
      accuracy(X, Y):item()))
  end
end
local staged_us = (mg.clock() - t0) / steps * 1e6

-- one graph per function; the accuracy graph also serves a single batch
accuracy(X:slice{ { 1, BATCH } }, Y:slice{ { 1, BATCH } })
print(("train_step traced %d time(s), accuracy %d time(s), %d steps"):format(
  staged_step:trace_count(), accuracy:trace_count(), steps))
assert(staged_step:trace_count() == 1 and accuracy:trace_count() == 1, "unexpected retracing")
local acc = accuracy(X, Y):item()
assert(acc > 0.9, ("the classifier did not learn: accuracy %.3f"):format(acc))

-- ---- the same step, eagerly, for comparison -------------------------------------------------
local xb, yb = X:slice{ { 1, BATCH } }, Y:slice{ { 1, BATCH } }
local reps = QUICK and 50 or 500
local function per_step(f)
  f(xb, yb)
  local t = mg.clock()
  for _ = 1, reps do f(xb, yb) end
  return (mg.clock() - t) / reps * 1e6
end
print(("per step: eager %.1f us, staged %.1f us (the training loop above: %.1f us incl. batching)")
  :format(per_step(train_step), per_step(staged_step), staged_us))
print(staged_step:concrete(xb, yb):pretty():match("^[^\n]*"))   -- the graph's signature line
