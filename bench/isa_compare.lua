-- isa_compare.lua — the figures that compare builds (bench/isa_compare.sh): the
-- default build, whose kernels are chosen at run time (core/isa.c), beside one
-- compiled with -march=native for this machine. Prints one line per figure,
-- "name<TAB>milliseconds<TAB>what", each the best of its repetitions (the best
-- is the least disturbed by other processes on a shared machine).
--
--   moongrad bench/isa_compare.lua [--quick]
local mg = require("moongrad")
local nn = mg.nn
local quick = arg[1] == "--quick"
local reps = quick and 3 or 15

local function best(fn, inner)
  inner = inner or 1
  fn()  -- warm-up: allocations, traces, BLIS's packing buffers
  local b = math.huge
  for _ = 1, reps do
    local t0 = mg.clock()
    for _ = 1, inner do fn() end
    local dt = (mg.clock() - t0) / inner
    if dt < b then b = dt end
  end
  return b * 1000
end

local function report(name, ms, what) print(string.format("%s\t%.4f\t%s", name, ms, what)) end

mg.random.seed(3)
local info = mg.config.info()
print(string.format("isa\t%s\tthreads=%d blis=%s", info.isa, info.threads, info.blis_arch))

local a, b = mg.random.normal { 1024, 1024 }, mg.random.normal { 1024, 1024 }
report("sgemm_1024", best(function() return mg.matmul(a, b) end), "matmul 1024x1024 float32 (BLIS)")

local x, y = mg.random.normal { 4194304 }, mg.random.normal { 4194304 }
report("elementwise_4M", best(function() return mg.tanh(x) * y + mg.exp(-mg.abs(x)) end),
  "tanh(x)*y + exp(-|x|), 4M float32 (4 kernels)")
report("reduce_4M", best(function() return x:sum(), (x * x):mean() end, 4), "sum and mean of squares, 4M float32")

local cx, cw = mg.random.normal { 32, 14, 14, 32 }, mg.random.normal { 5, 5, 32, 64 } * 0.05
report("conv2d_fwd_bwd", best(function()
  local tape = mg.GradientTape()
  tape:watch(cx)
  tape:watch(cw)
  local out = mg.conv2d(cx, cw, { padding = "same" })
  local loss = (out * out):sum()
  tape:stop()
  return tape:gradient(loss, { cx, cw })
end), "conv2d 32x14x14x32 * 5x5x32x64 same, forward and both gradients")

local model = nn.Sequential {
  nn.Input { shape = { 28, 28, 1 } },
  nn.Conv2D(32, 5, { padding = "same", activation = "relu" }),
  nn.MaxPooling2D(2),
  nn.Conv2D(64, 5, { padding = "same", activation = "relu" }),
  nn.MaxPooling2D(2),
  nn.Flatten(),
  nn.Dense(1024, { activation = "relu" }),
  nn.Dropout(0.3),
  nn.Dense(10, { activation = "softmax" }),
}
model:compile { optimizer = mg.optim.Adam(), loss = "sparse_categorical_crossentropy" }
local xb = mg.random.uniform { 32, 28, 28, 1 }
local yb = mg.random.integers({ 32 }, 1, 10)   -- class labels are 1-based
report("cnn_train_step", best(function() return model:train_on_batch(xb, yb) end, quick and 1 or 3),
  "the demo's CNN, one staged train step, batch 32 (Adam)")
