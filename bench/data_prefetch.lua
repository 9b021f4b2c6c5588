-- data_prefetch.lua — batches per second of the demo's input pipeline
-- (Fashion-MNIST's 60,000 28x28 uint8 images + labels, shuffle with a full
-- buffer, batch 32), read with and without the C prefetch thread, alone and
-- while the consumer works on each batch (a float conversion and matmuls, a
-- few ms, standing in for a train step), plus fit's own tensor path (a
-- permutation and one mg.take per batch) for comparison.
--
--   moongrad bench/data_prefetch.lua [--batches N] [--work N] [--threads T] [--synthetic]
--
-- --batches: batches per measurement (default 1875, one epoch); --work:
-- matmuls of 256x256 per batch (default 8); --threads: the engine's threads
-- (1 gives steadier figures on a busy machine); --synthetic: random images.
-- Each figure is the median of 3 runs.
local mg = require "moongrad"

local nbatch, work, synthetic = 1875, 8, false
local i = 1
while arg and arg[i] do
  if arg[i] == "--batches" then nbatch = tonumber(arg[i + 1]); i = i + 1
  elseif arg[i] == "--work" then work = tonumber(arg[i + 1]); i = i + 1
  elseif arg[i] == "--threads" then mg.config.set_num_threads(tonumber(arg[i + 1])); i = i + 1
  elseif arg[i] == "--synthetic" then synthetic = true
  else error("data_prefetch: unknown argument " .. arg[i]) end
  i = i + 1
end

mg.random.seed(1)
local x, y
if synthetic then
  x = mg.random.integers({ 60000, 28, 28 }, 0, 255, mg.uint8)
  y = mg.random.integers({ 60000 }, 1, 10)
else
  local train = mg.datasets.fashion_mnist.load_data()
  x, y = train.x, train.y
end
local w = mg.random.normal({ 256, 256 })

local function consume(xb)
  if work == 0 then return end
  local a = xb:reshape { -1, 28 * 28 }:slice { {}, { 1, 256 } }:astype("float32")
  local pad = mg.zeros { 256 - a.shape[1], 256 }
  local m = mg.concat({ a, pad }, 1)
  for _ = 1, work do m = mg.matmul(m, w) * 0.001 end
  m:sum():item()   -- waits for the result
end

local function dataset(thread)
  return mg.data.Dataset.from_tensor_slices(x, y):shuffle(60000, { seed = 1 }):batch(32)
    :prefetch(4, { thread = thread })
end

local function run_dataset(thread)
  local ds = dataset(thread)
  local k, t0 = 0, mg.clock()
  for xb in ds:iter() do
    consume(xb)
    k = k + 1
    if k >= nbatch then break end
  end
  return k / (mg.clock() - t0)
end

local function run_tensors()
  local n = x.shape[1]
  local u = mg.random.uniform({ n }, 0, 1, "float64"):totable()
  local p = {}
  for j = 1, n do p[j] = j end
  for j = n, 2, -1 do   -- Fisher-Yates, as fit does
    local r = math.floor(u[j] * j) + 1
    p[j], p[r] = p[r], p[j]
  end
  local perm = mg.tensor(p, "int64")
  local k, t0 = 0, mg.clock()
  for s = 1, math.min(nbatch, math.ceil(n / 32)) do
    local idx = perm:slice { { (s - 1) * 32 + 1, math.min(s * 32, n) } }
    local xb = mg.take(x, idx, 1)
    mg.take(y, idx, 1)
    consume(xb)
    k = k + 1
  end
  return k / (mg.clock() - t0)
end

local function median3(f)
  local r = { f(), f(), f() }
  table.sort(r)
  return r[2]
end

print(string.format("data_prefetch: %d batches of 32 per run, consumer work = %d matmuls of 256x256, %d threads",
  nbatch, work, mg.config.get_num_threads()))
local saved = work
for _, wk in ipairs({ 0, saved }) do
  work = wk
  local lua = median3(function() return run_dataset(false) end)
  local c = median3(function() return run_dataset(true) end)
  local t = median3(run_tensors)
  print(string.format("  work %2d: Lua path %7.0f batches/s | C prefetch thread %7.0f batches/s (x%.2f) | fit's tensor path %7.0f batches/s",
    wk, lua, c, c / lua, t))
end
