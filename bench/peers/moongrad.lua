-- moongrad.lua — moongrad's side of the side-by-side benchmarks (bench/run.py).
--
--   moongrad bench/peers/moongrad.lua serve        the worker loop (stdin requests)
--   moongrad bench/peers/moongrad.lua once cnn     one fresh-process benchmark
--
-- The same protocol and the same computations as bench/peers/*.py (see
-- common.py there): a request "<bench> <reps>" on stdin, one line
-- "RESULT <json>" back. The first request for a benchmark builds and warms it
-- up and calibrates how many calls make one repetition (about TARGET seconds).
-- A benchmark whose op or feature is missing from this build answers
-- "notyet" with the reason instead of failing: every setup runs under pcall,
-- so the harness keeps working while features land. Timed with mg.clock()
-- (monotonic wall time). Portable Lua 5.4.
local mg = require "moongrad"

local QUICK = os.getenv("BENCH_QUICK") == "1"
local TARGET = QUICK and 0.06 or 0.3
local clock = mg.clock

-- ---- tiny JSON writer (numbers, strings, booleans, lists, maps) ----------------

local function json(v)
  local t = type(v)
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return string.format("%.17g", v)
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", c:byte())
    end) .. '"'
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    if #v > 0 or next(v) == nil then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = json(x) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys, parts = {}, {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = json(k) .. ":" .. json(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end

local function peak_rss_mb()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local kb = tonumber(s:match("VmHWM:%s*(%d+)"))
  return kb and kb / 1024
end

-- A missing feature: an error that says "not yet" rather than "broken".
local NOTYET = {}
local function need(...)
  for _, name in ipairs({ ... }) do
    local v = mg
    for part in name:gmatch("[^.]+") do v = type(v) == "table" and v[part] or nil end
    if v == nil then error({ [NOTYET] = "mg." .. name .. " is missing" }) end
  end
end

-- ---- benchmarks: each returns a list of {variant, unit, fn, per_call_units, fixed_n} ----

local function rot2x2()
  local c, s = math.cos(0.1), math.sin(0.1)
  return mg.tensor({ { c, -s }, { s, c } }, mg.float32)
end

local B = {}

function B.add()
  local a = mg.tensor({ { 1, 2 }, { 3, 4 } }, mg.float32)
  local b = mg.tensor({ { 5, 6 }, { 7, 8 } }, mg.float32)
  local n = QUICK and 10000 or 100000
  return { { "a + b", "us", function()
    for _ = 1, n do local _ = a + b end
  end, n, 1 } }
end

local function mm_chain(x, m)
  local matmul = mg.matmul
  for _ = 1, 100 do x = matmul(x, m) end
  return x
end

function B.matmul_many_eager()
  local x, m = mg.eye(2, mg.float32), rot2x2()
  return { { "eager", "us", function() return mm_chain(x, m) end, 1, 0 } }
end

function B.matmul_many_staged()
  need("func")
  local x, m = mg.eye(2, mg.float32), rot2x2()
  local f = mg.func(mm_chain)
  return { { "mg.func", "us", function() return f(x, m) end, 1, 0 } }
end

local function sgemm(n)
  return function()
    local a = mg.random.uniform({ n, n }, 0, 1, mg.float32, 1)
    local b = mg.random.uniform({ n, n }, 0, 1, mg.float32, 2)
    local matmul = mg.matmul
    return { { "mg.matmul", "GFLOP/s", function() return matmul(a, b) end, 2 * n ^ 3 / 1e9, 0 } }
  end
end

local function conv(cin, cout, hw)
  return function()
    need("conv2d", "GradientTape")
    local x = mg.random.uniform({ 32, hw, hw, cin }, 0, 1, mg.float32, 1)
    local w = mg.random.uniform({ 5, 5, cin, cout }, 0, 0.1, mg.float32, 2)
    local function grads(x, w)
      local tape = mg.GradientTape()
      tape:watch({ x, w })
      local y = mg.conv2d(x, w, { padding = "same" })
      tape:stop()
      return tape:gradient(y, { x, w })
    end
    local out = { { "eager tape NHWC", "ms", function() return grads(x, w) end, 1, 0 } }
    if mg.func then
      local f = mg.func(function(x, w) local g = grads(x, w); return g[1], g[2] end)
      if pcall(f, x, w) then
        out[#out + 1] = { "mg.func NHWC", "ms", function() return f(x, w) end, 1, 0 }
      end
    end
    return out
  end
end

-- The MLP 784-128-10, batch 32, softmax cross-entropy, plain SGD (lr 0.01).
local function mlp_setup()
  need("Variable", "GradientTape", "sparse_softmax_cross_entropy_with_logits")
  local x = mg.random.uniform({ 32, 784 }, 0, 1, mg.float32, 1)
  local y = mg.random.integers and mg.random.integers({ 32 }, 1, 10, mg.int64, 2)
    or mg.tensor({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2 })
  local ps = {
    mg.Variable(mg.random.uniform({ 784, 128 }, -0.075, 0.075, mg.float32, 3)),
    mg.Variable(mg.zeros({ 128 }, mg.float32)),
    mg.Variable(mg.random.uniform({ 128, 10 }, -0.2, 0.2, mg.float32, 4)),
    mg.Variable(mg.zeros({ 10 }, mg.float32)),
  }
  local function step(x, y)
    local tape = mg.GradientTape()
    local h = mg.relu(mg.matmul(x, ps[1]) + ps[2])
    local loss = mg.mean(mg.sparse_softmax_cross_entropy_with_logits(mg.matmul(h, ps[3]) + ps[4], y))
    tape:stop()
    local gs = tape:gradient(loss, ps)
    for i = 1, 4 do ps[i]:assign_sub(gs[i] * 0.01) end
    return loss
  end
  return x, y, step, ps
end

function B.mlp_eager()
  local x, y, step = mlp_setup()
  return { { "eager tape", "us", function() return step(x, y) end, 1, 0 } }
end

function B.mlp_staged()
  need("func")
  local x, y, step = mlp_setup()
  local f = mg.func(step)
  return { { "mg.func", "us", function() return f(x, y) end, 1, 0 } }
end

-- A tape outside a staged loss: the first call under a tape traces the
-- forward graph (also returning what the gradient needs) and the backward
-- graph; tape:gradient runs the backward graph. "node by node" records the
-- staged graph's ops on the tape one by one instead
-- (mg.config.staged_backward(false)); only in full runs, and the summary's
-- ratio uses the default mode's row (run.py's MOONGRAD_MAIN).
function B.mlp_tape_staged()
  need("func", "config.staged_backward")
  local x, y, _, ps = mlp_setup()
  local loss = mg.func(function(x, y)
    local h = mg.relu(mg.matmul(x, ps[1]) + ps[2])
    return mg.mean(mg.sparse_softmax_cross_entropy_with_logits(mg.matmul(h, ps[3]) + ps[4], y))
  end)
  local function step()
    local tape = mg.GradientTape()
    local l = loss(x, y)
    tape:stop()
    return tape:gradient(l, ps)
  end
  local out = { { "mg.func (default: staged backward)", "us", step, 1, 0 } }
  if not QUICK then
    out[2] = { "mg.func (node by node)", "us", function()
      mg.config.staged_backward(false)
      local ok, g = pcall(step)
      mg.config.staged_backward(true)
      if not ok then error(g, 0) end
      return g
    end, 1, 0 }
  end
  return out
end

function B.while_staged()
  need("func", "while_loop")
  local v, n = mg.ones({ 2, 2 }, mg.float32), mg.tensor(1000)
  local f = mg.func(function(v, n)
    local r = mg.while_loop(function(i) return mg.less(i, n) end,
      function(i, v) return i + 1, v * 0.5 + 1 end, { mg.tensor(0), v })
    return r[2]
  end)
  local r = f(v, n):totable()
  if math.abs(r[1][1] - 2) > 1e-3 then error("while_staged: wrong result " .. tostring(r[1][1])) end
  return { { "mg.func + mg.while_loop", "us", function() return f(v, n) end, 1, 0 } }
end

function B.tape()
  need("GradientTape")
  local x = mg.random.uniform({ 4, 4 }, -1, 1, mg.float32, 1)
  local c = mg.random.uniform({ 4, 4 }, 0.5, 1.5, mg.float32, 2)
  local mul, add, tanh, sin, sigmoid, sum = mg.mul, mg.add, mg.tanh, mg.sin, mg.sigmoid, mg.sum
  return { { "GradientTape", "us", function()
    local tape = mg.GradientTape()
    tape:watch(x)
    local h = x
    for _ = 1, 4 do h = sigmoid(sin(tanh(add(mul(h, c), 0.5)))) end
    local y = sum(h)
    tape:stop()
    return tape:gradient(y, x)
  end, 1, 0 } }
end

-- issue 17's scans and sorting: 1M uniform floats (sort, top_k) and 1000 rows of 1000 (cumsum)
local function uniform(shape) return mg.random.uniform(shape, 0, 1, mg.float32, 1) end

function B.sort_1m()
  need("sort")
  local x, sort = uniform({ 1000000 }), mg.sort
  return { { "mg.sort", "ms", function() return sort(x) end, 1, 0 } }
end

function B.top_k_1m()
  need("top_k")
  local x, top_k = uniform({ 1000000 }), mg.top_k
  return { { "mg.top_k", "ms", function() return top_k(x, 100) end, 1, 0 } }
end

function B.cumsum_rows()
  need("cumsum")
  local x, cumsum, opts = uniform({ 1000, 1000 }), mg.cumsum, { axis = 2 }
  return { { "mg.cumsum", "ms", function() return cumsum(x, opts) end, 1, 0 } }
end

-- 10. fused attention forward and backward (Keras 3's layout, batch x sequence x heads x size).
function B.dot_product_attention()
  need("dot_product_attention", "GradientTape")
  local shape = { 8, 512, 8, 64 }
  local q = mg.random.normal(shape, 0, 1, mg.float32, 1)
  local k = mg.random.normal(shape, 0, 1, mg.float32, 2)
  local v = mg.random.normal(shape, 0, 1, mg.float32, 3)
  local w = mg.random.normal(shape, 0, 1, mg.float32, 4)
  local function grads(q, k, v)
    local tape = mg.GradientTape()
    tape:watch({ q, k, v })
    local y = mg.sum(mg.dot_product_attention(q, k, v) * w)
    tape:stop()
    return tape:gradient(y, { q, k, v })
  end
  local out = { { "eager tape", "ms", function() return grads(q, k, v) end, 1, 0 } }
  local f = mg.func(function(q, k, v) local g = grads(q, k, v); return g[1], g[2], g[3] end)
  if pcall(f, q, k, v) then
    out[#out + 1] = { "mg.func", "ms", function() return f(q, k, v) end, 1, 0 }
  end
  return out
end

B.sgemm_1024, B.sgemm_2048 = sgemm(1024), sgemm(2048)

-- issue 17: einsum of a batched attention contraction (q k^T per batch and head)
function B.einsum_attention()
  need("einsum")
  local q = mg.random.uniform({ 8, 8, 512, 64 }, 0, 1, mg.float32, 1)
  local k = mg.random.uniform({ 8, 8, 512, 64 }, 0, 1, mg.float32, 2)
  local einsum = mg.einsum
  return { { "mg.einsum", "ms", function() return einsum("bhqd,bhkd->bhqk", q, k) end, 1, 0 } }
end

-- bfloat16 matmul: inputs and result bfloat16, float32 accumulation (apply.c widens, BLIS sgemm, rounds once)
function B.bf16_matmul_2048()
  local n = 2048
  local a = mg.cast(mg.random.uniform({ n, n }, 0, 1, mg.float32, 1), mg.bfloat16)
  local b = mg.cast(mg.random.uniform({ n, n }, 0, 1, mg.float32, 2), mg.bfloat16)
  local matmul = mg.matmul
  return { { "mg.matmul (bfloat16)", "GFLOP/s", function() return matmul(a, b) end, 2 * n ^ 3 / 1e9, 0 } }
end

function B.linalg_solve_512()
  need("linalg.solve")
  local n = 512
  local a = mg.random.uniform({ n, n }, 0, 1, mg.float32, 1) + mg.eye(n, -1, mg.float32) * n
  local b = mg.random.uniform({ n, 1 }, 0, 1, mg.float32, 2)
  local solve = mg.linalg.solve
  local r = mg.matmul(a, solve(a, b)) - b
  if mg.max(mg.abs(r)):item() > 1e-3 then error("linalg_solve_512: wrong result") end
  return { { "mg.linalg.solve", "ms", function() return solve(a, b) end, 1, 0 } }
end
B.conv1_fwd_bwd, B.conv2_fwd_bwd = conv(1, 32, 28), conv(32, 64, 14)

-- ---- the CNN training run (a fresh process: peak RSS is per process) -----------------

local FASHION = os.getenv("FASHION_MNIST_DIR") or "/usr/share/datasets/fashion-mnist"

local function gunzip(name, skip, nbytes)
  local p = assert(io.popen("gzip -dc " .. FASHION .. "/" .. name))
  local s = p:read("a")
  p:close()
  if #s < skip + nbytes then error("fashion-mnist: " .. name .. " is too short") end
  return s:sub(skip + 1, skip + nbytes)
end

-- The demo's model written with the ops (no mg.nn needed): conv 5x5x32 same
-- relu, pool 2, conv 5x5x64 same relu, pool 2, dense 1024 relu, dropout 0.3,
-- dense 10; mean sparse softmax cross-entropy; Adam (lr 1e-3) written out.
local function cnn()
  need("conv2d", "max_pool2d", "dropout", "Variable", "GradientTape", "sparse_softmax_cross_entropy_with_logits")
  local warm, timed, bs = 10, 300, 32
  if QUICK then warm, timed = 2, 5 end
  local n = (warm + timed) * bs
  local xs = mg.cast(mg.frombytes(gunzip("train-images-idx3-ubyte.gz", 16, n * 784), mg.uint8, { n, 28, 28, 1 }),
    mg.float32) / 255
  local ys = mg.cast(mg.frombytes(gunzip("train-labels-idx1-ubyte.gz", 8, n), mg.uint8, { n }), mg.int64) + 1
  local batches = {}
  for i = 1, warm + timed do
    local lo, hi = (i - 1) * bs + 1, i * bs
    batches[i] = { mg.reshape(xs:slice { { lo, hi } }, { bs, 28, 28, 1 }), mg.reshape(ys:slice { { lo, hi } }, { bs }) }
  end
  local function glorot(shape, fan_in, fan_out, seed)
    local lim = math.sqrt(6 / (fan_in + fan_out))
    return mg.Variable(mg.random.uniform(shape, -lim, lim, mg.float32, seed))
  end
  local ps = {
    glorot({ 5, 5, 1, 32 }, 25, 800, 1), mg.Variable(mg.zeros({ 32 }, mg.float32)),
    glorot({ 5, 5, 32, 64 }, 800, 1600, 2), mg.Variable(mg.zeros({ 64 }, mg.float32)),
    glorot({ 3136, 1024 }, 3136, 1024, 3), mg.Variable(mg.zeros({ 1024 }, mg.float32)),
    glorot({ 1024, 10 }, 1024, 10, 4), mg.Variable(mg.zeros({ 10 }, mg.float32)),
  }
  local ms, vs = {}, {}
  for i, p in ipairs(ps) do
    ms[i] = mg.Variable(mg.zeros(p.shape, mg.float32), { trainable = false })
    vs[i] = mg.Variable(mg.zeros(p.shape, mg.float32), { trainable = false })
  end
  local b1, b2, eps = 0.9, 0.999, 1e-7
  local function step(x, y, seed, alpha)
    local tape = mg.GradientTape()
    local h = mg.max_pool2d(mg.relu(mg.conv2d(x, ps[1], { padding = "same" }) + ps[2]))
    h = mg.max_pool2d(mg.relu(mg.conv2d(h, ps[3], { padding = "same" }) + ps[4]))
    h = mg.relu(mg.matmul(mg.reshape(h, { bs, 3136 }), ps[5]) + ps[6])
    h = mg.dropout(h, seed, 0.3)
    local loss = mg.mean(mg.sparse_softmax_cross_entropy_with_logits(mg.matmul(h, ps[7]) + ps[8], y))
    tape:stop()
    local gs = tape:gradient(loss, ps)
    for i = 1, #ps do
      local g = gs[i]
      if mg.raw and mg.raw.adam_update then       -- one fused pass per parameter, as torch's Adam(fused=True)
        mg.raw.adam_update({ ps[i], ms[i], vs[i], g, alpha, 0 }, { beta_1 = b1, beta_2 = b2, epsilon = eps })
      else
        local m = ms[i]:assign(ms[i] * b1 + g * (1 - b1))
        local v = vs[i]:assign(vs[i] * b2 + g * g * (1 - b2))
        ps[i]:assign_sub(alpha * m / (mg.sqrt(v) + eps))
      end
    end
    return loss
  end
  local mode = os.getenv("BENCH_MG_CNN") or "staged"
  local run = step
  if mode == "staged" and mg.func then run = mg.func(step) end
  local t = 0
  local function one(i)
    t = t + 1
    local alpha = mg.tensor(1e-3 * math.sqrt(1 - b2 ^ t) / (1 - b1 ^ t), mg.float32)
    return run(batches[i][1], batches[i][2], mg.tensor(i), alpha)
  end
  local ok, err = pcall(one, 1)
  if not ok and run ~= step then     -- staging failed: say so, measure eager
    io.stderr:write("cnn: mg.func train step failed, running eagerly: " .. tostring(err) .. "\n")
    run, mode = step, "eager (staged failed: " .. tostring(err):sub(1, 120) .. ")"
    one(1)
  elseif not ok then
    error(err, 0)
  end
  if run == step then mode = mode:match("^eager") and mode or "eager" end
  for i = 2, warm do one(i) end
  local t0 = clock()
  local loss
  for i = warm + 1, warm + timed do loss = one(i) end
  loss = loss:item()
  local dt = clock() - t0
  return { samples_per_s = timed * bs / dt, seconds = dt, peak_rss_mb = peak_rss_mb(), final_loss = loss,
    config = "raw ops NHWC, tape, " .. (mg.raw and mg.raw.adam_update and "fused mg.raw.adam_update" or "hand-written Adam") .. ", " .. mode }
end

-- ---- the worker loop ---------------------------------------------------------------------

local function calibrate(fn, fixed)
  fn()
  if fixed > 0 then fn(); return fixed end
  local n = 1
  while true do
    local dt = math.huge           -- the best of 3 trials: a stall must not shrink n
    for _ = 1, 3 do
      local t0 = clock()
      for _ = 1, n do fn() end
      dt = math.min(dt, clock() - t0)
    end
    if dt >= TARGET / 4 or n >= 1 << 22 then return math.max(1, math.floor(n * TARGET / math.max(dt, 1e-9))) end
    n = n * (dt < TARGET / 40 and 4 or 2)
  end
end

local scale = { us = 1e6, ms = 1e3, s = 1 }

local function failure(e)
  if type(e) == "table" and e[NOTYET] then return "notyet", e[NOTYET] end
  local msg = tostring(e)
  -- an op missing from this build shows up as calling a nil field
  if msg:match("attempt to call a nil value %(field '[%w_]+'%)") then return "notyet", msg end
  return "error", msg
end

local function info()
  local i = {}
  for k, v in pairs(mg.config.info()) do i[k] = v end
  i.lua = _VERSION
  return i
end

local function serve()
  local prepared, failed = {}, {}
  io.write("READY ", json({ system = "moongrad", info = info() }), "\n")
  io.flush()
  for line in io.lines() do
    local name, reps = line:match("^(%S+)%s*(%d*)")
    if name then
      reps = tonumber(reps) or 1
      local res = { bench = name, system = "moongrad" }
      local ok, err = pcall(function()
        if failed[name] then error(failed[name]) end
        if not prepared[name] then
          if not B[name] then error({ [NOTYET] = "no such benchmark for moongrad" }) end
          local vs = B[name]()
          for _, v in ipairs(vs) do v.n = calibrate(v[3], v[5]) end
          prepared[name] = vs
        end
        res.results, res.units, res.n = {}, {}, {}
        for _, v in ipairs(prepared[name]) do
          local vals = {}
          for r = 1, reps do
            local t0 = clock()
            for _ = 1, v.n do v[3]() end
            local dt = clock() - t0
            vals[r] = scale[v[2]] and dt * scale[v[2]] / (v.n * v[4]) or v.n * v[4] / dt
          end
          res.results[v[1]], res.units[v[1]], res.n[v[1]] = vals, v[2], v.n
        end
      end)
      if ok then
        res.status = "ok"
      else
        failed[name] = err
        res.status, res.msg = failure(err)
        res.results, res.units, res.n = nil, nil, nil
        if res.status == "error" then io.stderr:write("moongrad ", name, ": ", res.msg, "\n") end
      end
      io.write("RESULT ", json(res), "\n")
      io.flush()
      collectgarbage()
    end
  end
end

local mode = arg and arg[1] or "serve"
if mode == "once" then
  local name = arg[2]
  local res
  local ok, r = pcall(name == "cnn" and cnn or function() error("no such once-benchmark " .. tostring(name)) end)
  if ok then
    res = r
    res.status = "ok"
  else
    res = {}
    res.status, res.msg = failure(r)
    if res.status == "error" then io.stderr:write(debug.traceback(tostring(r)), "\n") end
  end
  res.bench, res.system = name, "moongrad"
  io.write("RESULT ", json(res), "\n")
else
  serve()
end
