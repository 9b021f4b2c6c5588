-- rnn_while_grad.lua — a staged RNN training step whose recurrence is one
-- while node differentiated by the tape inside the staged function, against
-- the same step unrolled (unroll=true: one copy of the cell per time step).
--
--   moongrad bench/rnn_while_grad.lua [layer] [units] [seq] [batch] [steps] [sequences]
--   moongrad bench/rnn_while_grad.lua --one while|unroll layer units seq batch steps [sequences]
--
-- `sequences` (the word) makes the layer return_sequences=true (the loss
-- then reads every step's output).
--
-- Each variant runs in a fresh process; prints trace+first-call time, the
-- step time (median process CPU, and mean wall; on a busy machine run it
-- with MG_NUM_THREADS=1: idle OpenMP threads spin), the graph's node count
-- (top level), the tensor bytes the executor keeps between steps (planned
-- buffers) and the process's peak RSS.
local mg = require("moongrad")
local nn = require("moongrad.nn")

local function now()   -- wall clock (a process per reading: ~ms; the CPU column is finer)
  local p = assert(io.popen("date +%s.%N"))
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

local function peak_kb()
  local f = io.open("/proc/self/status")
  if not f then return -1 end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or -1
end

local function one(kind, layer_name, units, seq, batch, steps, sequences)
  mg.random.seed(1)
  local layer = nn[layer_name](units, { unroll = kind == "unroll", return_sequences = sequences })
  local head = nn.Dense(1)
  local x = mg.normal({ batch, seq, 8 })
  local y = mg.normal(sequences and { batch, seq, 1 } or { batch, 1 })
  head(layer(x))
  local vars = {}
  for _, v in ipairs(layer.trainable_variables) do vars[#vars + 1] = v end
  for _, v in ipairs(head.trainable_variables) do vars[#vars + 1] = v end
  local opt = mg.optim.SGD { learning_rate = 0.01 }
  local step = mg.func(function(xb, yb)
    local tape = mg.GradientTape()
    local p = head(layer(xb, { training = true }))
    local loss = mg.mean((p - yb) * (p - yb))
    tape:stop()
    opt:apply_gradients(tape:gradient(loss, vars), vars)
    return loss
  end)
  local t0 = now()
  step(x, y):item()
  local first = now() - t0
  local cpu = {}
  local t = now()
  for i = 1, steps do
    local c = os.clock()
    step(x, y):item()
    cpu[i] = os.clock() - c
  end
  local wall = (now() - t) / steps
  table.sort(cpu)
  local peak = peak_kb()   -- before listing the graph (a Lua table of every node)
  local nodes = step:concrete(x, y):graph()
  local n = type(nodes) == "table" and #nodes or -1
  local mid = math.floor((#cpu + 1) / 2)
  print(string.format("%-7s trace+first=%.3fs step: cpu median %.2fms, wall mean %.2fms; nodes=%d "
    .. "live_between_steps=%dkB peak_rss=%dkB", kind, first, 1000 * cpu[mid], 1000 * wall, n,
    math.floor(require("moongrad.core").bytes_live() / 1024), peak))
end

if arg and arg[1] == "--one" then
  one(arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6]), tonumber(arg[7]), arg[8] == "sequences")
  return
end

local quick = os.getenv("MG_QUICK")
local layer_name = arg and arg[1] or "SimpleRNN"
local units = tonumber(arg and arg[2]) or 32
local seq = tonumber(arg and arg[3]) or (quick and 10 or 50)
local batch = tonumber(arg and arg[4]) or 32
local steps = tonumber(arg and arg[5]) or (quick and 3 or 30)
local sequences = arg and arg[6] == "sequences"
local exe = arg and arg[-1] or "moongrad"
local script = debug.getinfo(1, "S").source:sub(2)
print(string.format("%s(%d%s) seq=%d batch=%d features=8, %d steps", layer_name, units,
  sequences and ", return_sequences" or "", seq, batch, steps))
for _, kind in ipairs({ "while", "unroll" }) do
  local p = assert(io.popen(("%q %q --one %s %s %d %d %d %d %s 2>&1"):format(exe, script, kind, layer_name, units, seq,
    batch, steps, sequences and "sequences" or "")))
  io.write(p:read("a"))
  p:close()
end
