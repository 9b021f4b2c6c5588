-- linear_regression.lua — fitting y = X w + b with a GradientTape and
-- hand-written stochastic gradient descent.
--
--   moongrad examples/linear_regression.lua        (MG_QUICK=1: fewer steps)
--
-- The data come from known weights plus a little noise, so the fit can be
-- checked against them. Each step records the forward pass on a fresh tape,
-- asks it for the gradient of the loss with respect to the Variables (a
-- table in, the same table out) and moves them with assign_sub.

local mg = require "moongrad"

local QUICK = os.getenv("MG_QUICK") == "1"
local STEPS = QUICK and 100 or 400
local BATCH, LR = 32, 0.05

-- synthetic data: 1000 samples, 3 features
local N = 1000
local X = mg.random.normal({N, 3}, 0, 1, mg.float32, 1)
local w_true = mg.tensor{{2.0}, {-3.4}, {1.5}}
local b_true = 4.2
local y = mg.matmul(X, w_true) + b_true + mg.random.normal({N, 1}, 0, 0.01, mg.float32, 2)

-- the model's parameters: Variables, watched by any tape that sees them
local w = mg.Variable(mg.zeros{3, 1}, {name = "w"})
local b = mg.Variable(0.0, {name = "b"})
local function model(x) return mg.matmul(x, w) + b end
local function mse(pred, target) return mg.mean(mg.square(pred - target)) end

for step = 1, STEPS do
  -- a minibatch: BATCH random rows (1-based indices for take)
  local idx = mg.random.integers({BATCH}, 1, N, mg.int64, 100 + step)
  local xb, yb = mg.take(X, idx, 1), mg.take(y, idx, 1)

  local tape = mg.GradientTape()           -- records from here...
  local loss = mse(model(xb), yb)
  local grads = tape:gradient(loss, {w = w, b = b})   -- ...and is released here

  w:assign_sub(grads.w * LR)               -- plain SGD
  b:assign_sub(grads.b * LR)
  if step % math.floor(STEPS / 4) == 0 then
    print(("step %4d  loss %.6f"):format(step, loss:item()))
  end
end

local w_fit = w:totable()
print(("fitted  w = [%.3f, %.3f, %.3f]  b = %.3f"):format(w_fit[1][1], w_fit[2][1], w_fit[3][1], b:item()))
print(("true    w = [%.3f, %.3f, %.3f]  b = %.3f"):format(2.0, -3.4, 1.5, b_true))
print(("full-data loss %.6f"):format(mse(model(X), y):item()))

-- the fit must be close to the weights the data came from
assert(math.abs(w_fit[1][1] - 2.0) < 0.05 and math.abs(w_fit[2][1] + 3.4) < 0.05
   and math.abs(w_fit[3][1] - 1.5) < 0.05 and math.abs(b:item() - b_true) < 0.05,
   "linear regression did not converge")
