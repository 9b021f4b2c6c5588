-- cnn_train.lua — training throughput of the demo CNN (examples/fashion_mnist_cnn.lua):
-- Rescaling (uint8 images to [0, 1]), Reshape, Conv2D 32 5x5, MaxPool, Conv2D 64 5x5, MaxPool, Flatten, Dense 1024,
-- Dropout 0.3, Dense 10 softmax; Adam; sparse categorical cross-entropy;
-- batch 32; model:fit with its staged train step.
--
--   moongrad bench/cnn_train.lua [--steps N] [--eager] [--synthetic] [--parts] [--threads T] [--composed]
--
-- Prints the time of the first step (tracing and graph optimisation
-- included), the steady-state time per step and samples/s (first step
-- excluded), the epoch time (all steps, as fit reports it) and the process's
-- peak RSS (VmHWM). Without --steps it runs the whole epoch of 60,000
-- images (1,875 steps). --synthetic uses random images (no data set
-- needed). --parts also times the forward pass, forward+backward, and the
-- optimizer update alone, each staged, to show where a step's time goes.
-- --composed runs Adam as composed elementwise ops and assigns (the update
-- before the fused one-pass mg.raw.adam_update), to compare the two.
local mg = require "moongrad"
local nn = mg.nn

local steps, eager, synthetic, parts, composed = nil, false, false, false, false
local i = 1
while arg and arg[i] do
  local a = arg[i]
  if a == "--steps" then steps = tonumber(arg[i + 1]); i = i + 1
  elseif a == "--eager" then eager = true
  elseif a == "--synthetic" then synthetic = true
  elseif a == "--parts" then parts = true
  elseif a == "--composed" then composed = true
  elseif a == "--threads" then mg.config.set_num_threads(tonumber(arg[i + 1])); i = i + 1
  else error("cnn_train: unknown argument " .. a) end
  i = i + 1
end

local function peak_rss_mb()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local kb = text:match("VmHWM:%s*(%d+)")
  return kb and tonumber(kb) / 1024
end

mg.random.seed(1)
local x, y
if synthetic then
  local n = (steps or 1875) * 32
  x = mg.random.integers({ n, 28, 28 }, 0, 255, mg.uint8)
  y = mg.random.integers({ n }, 1, 10)
else
  local train = mg.datasets.fashion_mnist.load_data()
  x, y = train.x, train.y
end
local n = steps and math.min(steps * 32, x.shape[1]) or x.shape[1]
if n < x.shape[1] then x, y = x:slice { { 1, n } }, y:slice { { 1, n } } end

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
  nn.Dense(10, { activation = "softmax" }),
}
-- Adam as composed ops: m, v and var each an elementwise expression and an assign.
local function composed_adam()
  local A = mg.optim.Adam:extend("ComposedAdam")
  A._fused_weight_decay = false
  function A:_prepare(lr)
    local t = mg.cast(self.iterations + 1, "float32")
    return { alpha = lr * mg.sqrt(1 - mg.pow(self.beta_2, t)) / (1 - mg.pow(self.beta_1, t)) }
  end
  function A:_update(var, g, _, step)
    local m, v = self:slot(var, "m"), self:slot(var, "v")
    local mn = m + (g - m) * (1 - self.beta_1)
    local vn = v + (mg.square(g) - v) * (1 - self.beta_2)
    m:assign(mn)
    v:assign(vn)
    var:assign_sub(mn * step.alpha / (mg.sqrt(vn) + self.epsilon))
  end
  return A()
end

model:compile { optimizer = composed and composed_adam() or mg.optim.Adam(), loss = "sparse_categorical_crossentropy", metrics = { "accuracy" },
  run_eagerly = eager }

-- step times, through a callback (fit's own loop, untouched)
local times = {}
local t_begin
local timer = mg.callbacks.LambdaCallback {
  on_batch_begin = function() t_begin = mg.clock() end,
  on_batch_end = function(b) times[b] = mg.clock() - t_begin end,
}
local t0, c0 = mg.clock(), os.clock()
local cpu_after_first
local first_cpu = mg.callbacks.LambdaCallback { on_batch_end = function(b)
  if b == 1 then cpu_after_first = os.clock() end
end }
local hist = model:fit(x, y, { epochs = 1, batch_size = 32, verbose = 0, callbacks = { timer, first_cpu } })
local epoch, cpu = mg.clock() - t0, os.clock() - c0
local rest = 0
for k = 2, #times do rest = rest + times[k] end
local per_step = rest / math.max(#times - 1, 1)
local sorted = {}
for k = 2, #times do sorted[#sorted + 1] = times[k] end
table.sort(sorted)
local median = sorted[math.floor((#sorted + 1) / 2)] or per_step

print(string.format("cnn_train: %d steps of batch 32 (%s%s%s), %d threads", #times, eager and "eager" or "staged",
  synthetic and ", synthetic data" or "", composed and ", composed Adam" or "", mg.config.get_num_threads()))
print(string.format("  first step (trace + optimise + run): %.3f s", times[1]))
local function pct(q) return (sorted[math.max(1, math.floor(#sorted * q + 0.5))] or 0) * 1e3 end
print(string.format("  steady step: mean %.2f ms, median %.2f ms (p10 %.2f, p90 %.2f, p99 %.2f)", per_step * 1e3,
  median * 1e3, pct(0.1), pct(0.9), pct(0.99)))
print(string.format("  throughput: %.0f samples/s (steady, mean), %.0f samples/s (median step)", 32 / per_step,
  32 / median))
print(string.format("  epoch time: %.1f s for %d samples (%.0f samples/s including the first step)", epoch, n,
  n / epoch))
-- process CPU time (all threads): on a busy machine, with --threads 1, a
-- steadier estimate of the step's cost than wall time
local steady_cpu = (os.clock() - (cpu_after_first or c0)) / math.max(#times - 1, 1)
print(string.format("  CPU time per steady step (all threads): %.2f ms; whole fit %.1f s", steady_cpu * 1e3, cpu))
print(string.format("  train loss %.4f, accuracy %.4f", hist.history.loss[1], hist.history.accuracy[1]))

if parts then
  local xb, yb = x:slice { { 1, 32 } }, y:slice { { 1, 32 } }
  local vars = model.trainable_weights
  local loss_fn = mg.losses.get("sparse_categorical_crossentropy")
  local function time(name, f, reps)
    f()
    local s = mg.clock()
    for _ = 1, reps do f() end
    local dt = (mg.clock() - s) / reps
    print(string.format("  %-34s %7.2f ms", name, dt * 1e3))
    return dt
  end
  local fwd = mg.func(function(a, b) return loss_fn(b, model(a, true)) end)
  local fwdbwd = mg.func(function(a, b)
    local tape = mg.GradientTape()
    local l = loss_fn(b, model(a, true))
    tape:stop()
    return tape:gradient(l, vars)
  end)
  local grads = fwdbwd(xb, yb)
  local opt = model.optimizer
  local upd = mg.func(function(...) opt:apply_gradients({ ... }, vars) end)
  print("  parts (staged, 200 repetitions each):")
  time("forward + loss (training mode)", function() return fwd(xb, yb) end, 200)
  time("forward + backward", function() return fwdbwd(xb, yb) end, 200)
  time("Adam update of all parameters", function() return upd(table.unpack(grads)) end, 200)
end
local rss = peak_rss_mb()
if rss then print(string.format("  peak RSS: %.0f MB", rss)) end
