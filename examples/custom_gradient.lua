-- custom_gradient.lua — replacing an op's gradient with your own rule.
--
--   moongrad examples/custom_gradient.lua          (MG_QUICK=1: fewer steps)
--
-- mg.custom_gradient(fn) wraps fn(...) -> value, backward: the forward pass
-- inside fn is not recorded; on the way back the tape calls backward(dy) and
-- takes its result as the gradient of each tensor argument. Three uses:
--   1. numerical stability: log(1 + e^x) whose naive gradient is NaN for big x
--   2. gradient clipping: the identity forward, a clipped gradient backward
--   3. a straight-through estimator: round() forward, identity backward, so a
--      quantised model can still be trained

local mg = require "moongrad"

local QUICK = os.getenv("MG_QUICK") == "1"

-- 1. log1pexp (TF's documentation example) --------------------------------------
local log1pexp = mg.custom_gradient(function(x)
  local e = mg.exp(x)
  local function backward(dy) return dy * (1 - 1 / (1 + e)) end
  return mg.log(1 + e), backward
end)

local x = mg.tensor{0.0, 10.0, 100.0}
local naive = mg.grad(function(t) return mg.log(1 + mg.exp(t)) end)(x)
local stable = mg.grad(log1pexp)(x)
print("x                     ", x)
print("naive gradient        ", naive)    -- NaN at 100: inf / inf
print("custom gradient       ", stable)   -- sigmoid(x): 0.5, ~1, 1
assert(stable:totable()[3] == 1)

-- 2. gradient clipping -------------------------------------------------------------
local clip_gradient = mg.custom_gradient(function(t)
  return t, function(dy) return mg.clip(dy, -1, 1) end
end)

local v = mg.Variable(mg.tensor{1.0, -2.0, 3.0}, {name = "v"})
local tape = mg.GradientTape()
local loss = mg.sum(clip_gradient(v) * mg.tensor{0.5, 20.0, -20.0})
print("clipped gradient      ", tape:gradient(loss, v))   -- [0.5, 1, -1]

-- 3. straight-through rounding: fit w so that round(4 w) / 4 hits 0.75 --------
local round_ste = mg.custom_gradient(function(t)
  return mg.round(t), function(dy) return dy end    -- pretend round is the identity
end)

local w = mg.Variable(0.0, {name = "w"})
local target = 0.75
local steps = QUICK and 20 or 100
local q, l
for _ = 1, steps do
  local t = mg.GradientTape()
  q = round_ste(w * 4) / 4                -- w quantised to quarters
  l = mg.square(q - target)
  local g = t:gradient(l, w)              -- would be nil with plain mg.round: no gradient
  w:assign_sub(g * 0.1)
end
print(("quantised fit after %d steps: w = %.3f, round(4w)/4 = %.2f, loss %.3g"):format(
  steps, w:item(), q:item(), l:item()))
assert(q:item() == target and l:item() == 0, "the straight-through fit did not reach the target")
