-- Checkpoint and resume: a training run that crashes part-way and is
-- resumed from its last checkpoint ends with exactly the weights of a run
-- that never stopped.
--
--   moongrad examples/checkpoint_resume.lua            40 epochs, crash after epoch 15
--   moongrad examples/checkpoint_resume.lua --quick    4 epochs, crash after epoch 2 (also MG_QUICK=1)
--
-- The task: classify points of three interleaved spirals with an MLP that
-- uses Dropout and BatchNormalization, trained by fit with Adam, a decaying
-- learning rate and shuffled batches: everything a resumed run has to get
-- back (weights, moving statistics, Adam's moments and step, the schedule's
-- position, the Dropout seeds, the shuffling generator). The run is started
-- as a child process that saves a model:save directory after every epoch
-- (mg.callbacks.ModelCheckpoint) and dies after epoch CRASH; this process
-- then loads the directory with nn.load_model, which recompiles the model
-- and restores the optimizer and the random generator, and continues with
-- fit{initial_epoch = CRASH}. The same run without the crash is the
-- reference. See doc/saving.md.
local mg = require("moongrad")
local nn = mg.nn

local quick = os.getenv("MG_QUICK") == "1"
local child_dir
for i, a in ipairs(arg or {}) do
  if a == "--quick" then quick = true end
  if a == "--child" then child_dir = arg[i + 1] end
end
local EPOCHS, CRASH = 40, 15
if quick then EPOCHS, CRASH = 4, 2 end

-- Three spirals, 300 points each, with noise; labels 1..3.
local function spirals(n)
  mg.random.seed(2024)
  local t = mg.random.uniform({ n, 1 }, 0.25, 1)
  local cls = mg.random.integers({ n }, 1, 3)
  local angle = t * (3 * math.pi) + mg.cast(mg.reshape(cls, { n, 1 }), "float32") * (2 * math.pi / 3)
  local x = mg.concat({ t * mg.cos(angle), t * mg.sin(angle) }, 2) + mg.random.normal({ n, 2 }, 0, 0.03)
  return x, cls
end

local function build()
  local model = nn.Sequential {
    nn.Input { shape = { 2 } },
    nn.Dense(64, { activation = "relu" }),
    nn.BatchNormalization(),
    nn.Dropout(0.1),
    nn.Dense(64, { activation = "relu" }),
    nn.Dense(3),
  }
  model:compile {
    optimizer = mg.optim.Adam { learning_rate = mg.optim.ExponentialDecay {
      initial_learning_rate = 0.01, decay_steps = 50, decay_rate = 0.8 } },
    loss = mg.losses.SparseCategoricalCrossentropy { from_logits = true },
    metrics = { "accuracy" },
  }
  return model
end

local x, y = spirals(900)
local fit_opts = { batch_size = 32, verbose = 0 }
local function fit(model, from, to, callbacks)
  local o = { epochs = to, initial_epoch = from, callbacks = callbacks }
  for k, v in pairs(fit_opts) do o[k] = v end
  return model:fit(x, y, o)
end

-- A callback that kills the run (exit without cleanup) after an epoch.
local Crash = mg.callbacks.Callback:extend("Crash")
function Crash:on_epoch_end(epoch)
  if epoch == self.config.at then
    io.stdout:write(string.format("  child: crashing after epoch %d\n", epoch))
    io.stdout:flush()
    os.exit(3, false)
  end
end

if child_dir then
  -- the run that crashes: a checkpoint after every epoch, then death after epoch CRASH
  mg.random.seed(7)
  local model = build()
  fit(model, 0, EPOCHS, {
    mg.callbacks.ModelCheckpoint { filepath = child_dir .. "/last" },
    Crash { at = CRASH },
  })
  os.exit(0)   -- not reached
end

-- 1. the reference: EPOCHS epochs in one go
mg.random.seed(7)
local reference = build()
local t0 = mg.clock()
fit(reference, 0, EPOCHS)
local _, ref_acc = reference:evaluate(x, y, { verbose = 0 })
print(string.format("uninterrupted: %d epochs, accuracy %.3f (%.1f s)", EPOCHS, ref_acc, mg.clock() - t0))

-- 2. the crashing run, in a child process (the interpreter running this script)
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir '" .. dir .. "'"))
local interp, i = "moongrad", -1
while arg and arg[i] do interp = arg[i]; i = i - 1 end
local cmd = string.format("'%s' '%s' --child '%s'%s", interp, arg[0], dir, quick and " --quick" or "")
local ok, how, code = os.execute(cmd)
if type(ok) == "number" then code = ok end   -- LuaJIT returns the status alone
print(string.format("crashed run: exit status %s, checkpoint %s", tostring(code), dir .. "/last"))
assert(code ~= 0 and how ~= nil, "the child run was expected to crash")

-- 3. resume: load the last checkpoint (in a process that has drawn other random numbers) and go on
mg.random.seed(123456)
local resumed = nn.load_model(dir .. "/last")
print(string.format("restored: optimizer step %d, learning rate %.5f", resumed.optimizer.iterations:item(),
  resumed.optimizer.learning_rate))
fit(resumed, CRASH, EPOCHS)
local _, res_acc = resumed:evaluate(x, y, { verbose = 0 })

local diff = 0.0
for k, w in ipairs(reference.weights) do
  diff = math.max(diff, mg.max(mg.abs(w - resumed.weights[k])):item())
end
print(string.format("resumed: epochs %d-%d, accuracy %.3f; largest weight difference to the uninterrupted run: %g",
  CRASH + 1, EPOCHS, res_acc, diff))
os.execute("rm -r '" .. dir .. "'")
assert(diff <= 1e-6, "the resumed run differs from the uninterrupted one")
assert(math.abs(res_acc - ref_acc) < 1e-6)
print("identical")
