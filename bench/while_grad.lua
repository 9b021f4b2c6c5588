-- bench/while_grad.lua — time per staged training step through a
-- differentiated while loop (the RNN layers' recurrence, a toy loop with a
-- large passthrough variable). One case per process, so the process's peak
-- RSS (measure with /usr/bin/time -f %M) is that case's:
--   build/bin/moongrad bench/while_grad.lua CASE [T] [reps]
-- CASE: rnn | lstm | rnn2 (two stacked SimpleRNNs: the second's input
-- sequence needs a gradient, sliced per step) | passthrough (a 2048x512
-- float32 loop variable the body hands back, reading one row per step; its
-- gradient is asked for) | passthrough_ng (the same, no gradient for it).
-- Prints the median wall time (mg.clock) and CPU time (os.clock) per step.
local mg = require("moongrad")
local nn = require("moongrad.nn")

local case, T, reps = arg[1] or "rnn", tonumber(arg[2] or 200), tonumber(arg[3] or 9)
if os.getenv("MG_QUICK") then T, reps = 20, 3 end
local B, F, U = 4, 32, 64
mg.random.seed(1)

local step, input
if case == "passthrough" or case == "passthrough_ng" then
  local want = case == "passthrough"
  local R, C = 2048, 512
  local W = mg.Variable(mg.normal({ C, C }, { stddev = 0.02 }))
  local big = mg.normal({ R, C }, { stddev = 0.1 })
  local f = mg.func(function(h0, seq0)
    local tape = mg.GradientTape()
    if want then tape:watch(seq0) end
    local r = mg.while_loop(function(i) return mg.less_equal(i, T) end, function(i, h, seq)
      local row = mg.reshape(mg.take(seq, mg.reshape(i, { 1 }), 1), { 1, C })
      return i + 1, mg.tanh(mg.matmul(h, W) + row), seq
    end, { mg.tensor(1, "int64"), h0, seq0 })
    local loss = mg.sum(r[2] * r[2])
    tape:stop()
    local g = tape:gradient(loss, want and { W, seq0 } or { W })
    W:assign_sub(g[1] * 0.01)
    return loss, g[2]
  end)
  local h0 = mg.normal({ 1, C })
  step = function() return f(h0, big) end
else
  local layers
  if case == "rnn" then layers = { nn.SimpleRNN(U) }
  elseif case == "lstm" then layers = { nn.LSTM(U) }
  elseif case == "rnn2" then layers = { nn.SimpleRNN(U, { return_sequences = true }), nn.SimpleRNN(U) }
  else error("unknown case " .. case) end
  local model = nn.Sequential(layers)
  input = mg.normal({ B, T, F })
  model(input)
  local opt = require("moongrad.optim").SGD({ learning_rate = 0.01 })
  local vars = model.trainable_variables
  step = mg.func(function(x)
    local tape = mg.GradientTape()
    local y = model(x, { training = true })
    local loss = mg.mean(y * y)
    tape:stop()
    opt:apply_gradients(tape:gradient(loss, vars), vars)
    return loss
  end)
end

step(input)  -- trace and first run
local wall, cpu = {}, {}
for k = 1, reps do
  local w0, c0 = mg.clock(), os.clock()
  step(input):item()
  wall[k], cpu[k] = (mg.clock() - w0) * 1e3, (os.clock() - c0) * 1e3
end
table.sort(wall)
table.sort(cpu)
local mid = math.floor((reps + 1) / 2)
print(string.format("%s T=%d: median %.1f ms/step wall, %.1f ms cpu (%d steps)", case, T, wall[mid], cpu[mid], reps))
