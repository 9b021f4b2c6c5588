-- mixed_precision_cnn.lua — the demo CNN (examples/fashion_mnist_cnn.lua's model) trained for one
-- epoch of Fashion-MNIST under the "float32" and the "mixed_bfloat16" policy (float32 variables,
-- bfloat16 compute, the output layer in float32), one after the other in one process: the median
-- time of a training step (fit's staged step, the first one excluded: it traces and compiles),
-- the epoch's time and the test accuracy after the epoch.
--
--   moongrad bench/mixed_precision_cnn.lua [--steps N] [--quick]     (MG_QUICK=1 / BENCH_QUICK=1: 200 steps)
--
-- Needs the Debian package dataset-fashion-mnist. On a CPU without native bfloat16 arithmetic
-- a bfloat16 op converts to float32 and back, so the mixed policy saves memory traffic, not
-- arithmetic: this measures what it costs or gains here.
local mg = require("moongrad")
local nn = mg.nn

local steps = nil
local i = 1
while arg and arg[i] do
  if arg[i] == "--steps" then steps = tonumber(arg[i + 1]); i = i + 1
  elseif arg[i] == "--quick" then steps = 200
  else error("mixed_precision_cnn: unknown argument " .. arg[i]) end
  i = i + 1
end
if not steps and (os.getenv("MG_QUICK") == "1" or os.getenv("BENCH_QUICK") == "1") then steps = 200 end

local train, test = mg.datasets.fashion_mnist.load_data()
local x, y = train.x, train.y
if steps and steps * 32 < x.shape[1] then x, y = x:slice { { 1, steps * 32 } }, y:slice { { 1, steps * 32 } } end

local function median(t)
  local s = {}
  for k, v in ipairs(t) do s[k] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return 0 / 0 end
  return n % 2 == 1 and s[(n + 1) / 2] or (s[n / 2] + s[n / 2 + 1]) / 2
end

local function run(policy)
  mg.random.seed(1)
  nn.mixed_precision.set_global_policy(policy)
  local model = nn.Sequential {
    nn.Rescaling(1 / 255, { input_shape = { 28, 28 } }),
    nn.Reshape { 28, 28, 1 },
    nn.Conv2D(32, 5, { padding = "same", activation = "relu" }),
    nn.MaxPooling2D(2),
    nn.Conv2D(64, 5, { padding = "same", activation = "relu" }),
    nn.MaxPooling2D(2),
    nn.Flatten(),
    nn.Dense(1024, { activation = "relu" }),
    nn.Dropout(0.3),
    nn.Dense(10, { activation = "softmax", dtype = "float32" }),
  }
  nn.mixed_precision.set_global_policy("float32")
  model:compile { optimizer = mg.optim.Adam(), loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
  local times, last = {}, nil
  local timer = mg.callbacks.LambdaCallback {
    on_train_batch_begin = function() last = mg.clock() end,
    on_train_batch_end = function() times[#times + 1] = mg.clock() - last end,
  }
  local ds = mg.data.Dataset.from_tensor_slices(x, y):shuffle(x.shape[1], { seed = 1 }):batch(32):prefetch(4)
  local t0 = mg.clock()
  model:fit(ds, { epochs = 1, callbacks = { timer }, verbose = 0 })
  local epoch_s = mg.clock() - t0
  local first = table.remove(times, 1)
  local _, acc = model:evaluate(test.x, test.y, { verbose = 0 })
  return { policy = policy, step_ms = median(times) * 1e3, first_ms = first * 1e3, epoch_s = epoch_s,
    steps = #times + 1, accuracy = acc, compute = model.layers[3].compute_dtype }
end

local f = io.open("/proc/loadavg")
local load = f and f:read("l") or "?"
if f then f:close() end
print(string.format("mixed_precision_cnn: the demo CNN, %d training images (%d steps of 32), test on %d; "
  .. "load average before: %s", x.shape[1], math.ceil(x.shape[1] / 32), test.x.shape[1], load))
local rows = { run("float32"), run("mixed_bfloat16") }
print("| policy | conv compute dtype | median step | first step | epoch | test accuracy |")
print("|---|---|---|---|---|---|")
for _, r in ipairs(rows) do
  print(string.format("| %s | %s | %.2f ms | %.0f ms | %.1f s | %.4f |", r.policy, r.compute, r.step_ms, r.first_ms,
    r.epoch_s, r.accuracy))
end
print(string.format("mixed_bfloat16 / float32 step time: %.2fx", rows[2].step_ms / rows[1].step_ms))
