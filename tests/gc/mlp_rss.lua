-- mlp_rss.lua — a long training loop must not leak: tape records, gradients
-- and Variable buffers have to be given back step after step.
--
--   moongrad tests/gc/mlp_rss.lua [steps]
--
-- Trains a 16-32-1 MLP (tanh hidden layer, mean squared error) on fixed random
-- data with a fresh GradientTape per step and plain SGD through assign_sub,
-- never calling collectgarbage(). The resident set (VmRSS) is read after step
-- 1000 and after the last step: the growth must stay under 20 MB. A leak of
-- one small record or buffer per step (10,000 steps x a few KB) shows up well
-- above that; the Lua collector's own slack does not.
-- Prints "rss_kb_1000=A rss_kb_end=B growth_kb=C loss_first=L0 loss_last=L1"
-- and exits non-zero when the growth is 20 MB or more or the loss did not fall.

local mg = require "moongrad"

local steps = tonumber(arg and arg[1]) or 10000
local LIMIT_KB = 20 * 1024

local function rss_kb()
  local fh = assert(io.open("/proc/self/status"))
  local s = fh:read("a")
  fh:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- data: y = sin(sum of the first 4 features) + a little noise
local X = mg.random.normal({64, 16}, 0, 1, mg.float32, 1)
local Y = mg.sin(mg.sum(X:slice{{}, {1, 4}}, {axis = 2, keepdims = true}))
        + mg.random.normal({64, 1}, 0, 0.01, mg.float32, 2)

local W1 = mg.Variable(mg.random.normal({16, 32}, 0, 0.25, mg.float32, 3), {name = "W1"})
local b1 = mg.Variable(mg.zeros{32}, {name = "b1"})
local W2 = mg.Variable(mg.random.normal({32, 1}, 0, 0.25, mg.float32, 4), {name = "W2"})
local b2 = mg.Variable(mg.zeros{1}, {name = "b2"})
local params = {W1, b1, W2, b2}
local LR = 0.05

local function step()
  local tape = mg.GradientTape()
  local h = mg.tanh(mg.matmul(X, W1) + b1)
  local out = mg.matmul(h, W2) + b2
  local loss = mg.mean(mg.square(out - Y))
  tape:stop()
  local grads = tape:gradient(loss, params)
  for i, p in ipairs(params) do p:assign_sub(grads[i] * LR) end
  return loss
end

local loss_first = step():item()
local rss_1000
for i = 2, steps do
  local loss = step()
  if i == math.min(1000, steps) then rss_1000 = rss_kb() end
  if i == steps then
    local loss_last = loss:item()
    local rss_end = rss_kb()
    local growth = rss_end - rss_1000
    print(("rss_kb_1000=%d rss_kb_end=%d growth_kb=%d loss_first=%.6f loss_last=%.6f steps=%d"):format(
      rss_1000, rss_end, growth, loss_first, loss_last, steps))
    if growth >= LIMIT_KB then
      io.stderr:write(("mlp_rss: RSS grew by %d KB between step 1000 and step %d (limit %d KB)\n"):format(
        growth, steps, LIMIT_KB))
      os.exit(1)
    end
    if not (loss_last < loss_first) then
      io.stderr:write(("mlp_rss: the loss did not fall (%.4f -> %.4f)\n"):format(loss_first, loss_last))
      os.exit(1)
    end
  end
end
