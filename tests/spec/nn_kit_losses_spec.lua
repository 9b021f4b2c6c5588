-- The losses of losses_more.lua (KLDivergence ... CTC) against Keras 3's formulas written out in
-- plain Lua numbers: values per sample (function form) and reduced (class form, with
-- sample_weight and every reduction), gradients against central differences of the same plain
-- Lua formulas, CTC against a brute-force sum over every alignment, configs, names (get), the
-- errors, and a model trained staged with each. (Keras itself was not installed here.)
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local h = require("tests.spec.helpers")

local EPS = 1e-7
local function clip(x, lo, hi) return math.max(lo, math.min(hi, x)) end
local function mean(t) local s = 0; for i = 1, #t do s = s + t[i] end; return s / #t end
local function sigmoid(x) return 1 / (1 + math.exp(-x)) end

-- per-sample references: f(t_row, p_row, o) -> number
local ref = {}
function ref.kl_divergence(t, p)
  local s = 0
  for i = 1, #t do local a, b = clip(t[i], EPS, 1), clip(p[i], EPS, 1); s = s + a * math.log(a / b) end
  return s
end
function ref.poisson(t, p)
  local v = {}
  for i = 1, #t do v[i] = p[i] - t[i] * math.log(p[i] + EPS) end
  return mean(v)
end
function ref.log_cosh(t, p)
  local v = {}
  for i = 1, #t do local x = p[i] - t[i]; v[i] = math.log((math.exp(x) + math.exp(-x)) / 2) end
  return mean(v)
end
local function hinge_t(t)
  local binary = true
  for i = 1, #t do if t[i] ~= 0 and t[i] ~= 1 then binary = false end end
  local out = {}
  for i = 1, #t do out[i] = binary and 2 * t[i] - 1 or t[i] end
  return out
end
function ref.hinge(t, p)
  t = hinge_t(t)
  local v = {}
  for i = 1, #t do v[i] = math.max(1 - t[i] * p[i], 0) end
  return mean(v)
end
function ref.squared_hinge(t, p)
  t = hinge_t(t)
  local v = {}
  for i = 1, #t do v[i] = math.max(1 - t[i] * p[i], 0) ^ 2 end
  return mean(v)
end
function ref.categorical_hinge(t, p)
  local pos, neg = 0, -math.huge
  for i = 1, #t do pos = pos + t[i] * p[i]; neg = math.max(neg, (1 - t[i]) * p[i]) end
  return math.max(neg - pos + 1, 0)
end
function ref.cosine_similarity(t, p)
  local tt, pp, tp = 0, 0, 0
  for i = 1, #t do tt = tt + t[i] ^ 2; pp = pp + p[i] ^ 2; tp = tp + t[i] * p[i] end
  return -tp / (math.sqrt(tt) * math.sqrt(pp))
end
function ref.mean_squared_logarithmic_error(t, p)
  local v = {}
  for i = 1, #t do v[i] = (math.log(math.max(p[i], EPS) + 1) - math.log(math.max(t[i], EPS) + 1)) ^ 2 end
  return mean(v)
end
function ref.mean_absolute_percentage_error(t, p)
  local v = {}
  for i = 1, #t do v[i] = math.abs(t[i] - p[i]) / math.max(math.abs(t[i]), EPS) end
  return 100 * mean(v)
end
function ref.binary_focal_crossentropy(t, p, o)
  o = o or {}
  local alpha, gamma, ls = o.alpha or 0.25, o.gamma or 2, o.label_smoothing or 0
  local v = {}
  for i = 1, #t do
    local y = t[i] * (1 - ls) + 0.5 * ls
    local q = o.from_logits and sigmoid(p[i]) or p[i]
    local qc = clip(q, EPS, 1 - EPS)
    local bce = o.from_logits and -(y * math.log(q) + (1 - y) * math.log(1 - q))
      or -(y * math.log(qc) + (1 - y) * math.log(1 - qc))
    local pt = y * q + (1 - y) * (1 - q)
    local f = (1 - pt) ^ gamma * bce
    if o.apply_class_balancing then f = (y * alpha + (1 - y) * (1 - alpha)) * f end
    v[i] = f
  end
  return mean(v)
end
function ref.categorical_focal_crossentropy(t, p, o)
  o = o or {}
  local alpha, gamma, ls = o.alpha or 0.25, o.gamma or 2, o.label_smoothing or 0
  local q = {}
  if o.from_logits then
    local m, z = -math.huge, 0
    for i = 1, #p do m = math.max(m, p[i]) end
    for i = 1, #p do z = z + math.exp(p[i] - m) end
    for i = 1, #p do q[i] = math.exp(p[i] - m) / z end
  else
    for i = 1, #p do q[i] = p[i] end
  end
  local s = 0
  for i = 1, #q do s = s + q[i] end
  local out = 0
  for i = 1, #q do
    local y = t[i] * (1 - ls) + ls / #t
    local qi = clip(q[i] / s, EPS, 1 - EPS)
    out = out + alpha * (1 - qi) ^ gamma * -y * math.log(qi)
  end
  return out
end

local function rows_apply(f, T, P, o)
  local out = {}
  for r = 1, #T do out[r] = f(T[r], P[r], o) end
  return out
end

-- inputs: probabilities-like predictions and targets of several kinds
local T_prob = { { 0.2, 0.8, 0.0 }, { 0.6, 0.3, 0.1 }, { 0.0, 0.0, 1.0 } }
local P_prob = { { 0.3, 0.6, 0.1 }, { 0.5, 0.25, 0.25 }, { 0.1, 0.2, 0.7 } }
local T_onehot = { { 0, 1, 0 }, { 1, 0, 0 }, { 0, 0, 1 } }
local T_pm = { { -1, 1, 1 }, { 1, -1, -1 }, { 1, 1, -1 } }
local P_real = { { 0.3, -1.2, 2.0 }, { 1.5, 0.25, -0.5 }, { -0.1, 0.9, 0.4 } }
local T_pos = { { 1.0, 2.0, 3.0 }, { 0.5, 4.0, 1.5 }, { 2.0, 0.1, 1.0 } }
local P_pos = { { 1.5, 1.0, 2.5 }, { 0.7, 3.0, 1.1 }, { 2.5, 0.3, 0.6 } }

local cases = {
  { "kl_divergence", "KLDivergence", T_prob, P_prob },
  { "poisson", "Poisson", T_pos, P_pos },
  { "log_cosh", "LogCosh", T_pos, P_real },
  { "hinge", "Hinge", T_pm, P_real },
  { "hinge", "Hinge", T_onehot, P_real, note = "0/1 labels" },
  { "squared_hinge", "SquaredHinge", T_pm, P_real },
  { "squared_hinge", "SquaredHinge", T_onehot, P_real, note = "0/1 labels" },
  { "categorical_hinge", "CategoricalHinge", T_onehot, P_real },
  { "cosine_similarity", "CosineSimilarity", T_pos, P_real },
  { "mean_squared_logarithmic_error", "MeanSquaredLogarithmicError", T_pos, P_pos },
  { "mean_absolute_percentage_error", "MeanAbsolutePercentageError", T_pos, P_real },
  { "binary_focal_crossentropy", "BinaryFocalCrossentropy", T_onehot, P_prob },
  { "binary_focal_crossentropy", "BinaryFocalCrossentropy", T_onehot, P_real,
    o = { from_logits = true, gamma = 1.5, label_smoothing = 0.1, apply_class_balancing = true, alpha = 0.4 } },
  { "categorical_focal_crossentropy", "CategoricalFocalCrossentropy", T_onehot, P_prob },
  { "categorical_focal_crossentropy", "CategoricalFocalCrossentropy", T_onehot, P_real,
    o = { from_logits = true, gamma = 3, alpha = 0.5, label_smoothing = 0.2 } },
}

-- the function form's extra arguments in Keras's order
local function fn_args(name, o)
  o = o or {}
  if name == "binary_focal_crossentropy" then
    return o.apply_class_balancing, o.alpha, o.gamma, o.from_logits, o.label_smoothing
  elseif name == "categorical_focal_crossentropy" then
    return o.alpha, o.gamma, o.from_logits, o.label_smoothing
  end
end

describe("losses against Keras 3's formulas in plain Lua", function()
  for _, c in ipairs(cases) do
    local fname, cname, T, P, o = c[1], c[2], c[3], c[4], c.o
    local label = cname .. (c.note and (" (" .. c.note .. ")") or "") .. (o and " with options" or "")
    it(label .. ": per-sample values, reductions, sample_weight", function()
      local want = rows_apply(ref[fname], T, P, o)
      for _, dtype in ipairs({ "float32", "float64" }) do
        local tol = dtype == "float32" and 1e-5 or 1e-9
        local yt, yp = mg.tensor(T, dtype), mg.tensor(P, dtype)
        h.near(mg.losses[fname](yt, yp, fn_args(fname, o)), want, tol, fname)
        h.near(mg.losses[cname](o)(yt, yp), mean(want), tol, cname)
        local cfg = { reduction = "sum" }
        for k, v in pairs(o or {}) do cfg[k] = v end
        local w = { 0.5, 2.0, 0.0 }
        h.near(mg.losses[cname](cfg)(yt, yp, mg.tensor(w, dtype)), want[1] * 0.5 + want[2] * 2, tol, "sum, weighted")
        cfg.reduction = "none"
        h.near(mg.losses[cname](cfg)(yt, yp), want, tol, "none")
      end
    end)
    it(label .. ": the gradient matches central differences of the formula", function()
      local yt = mg.tensor(T, "float64")
      local yp = mg.Variable(mg.tensor(P, "float64"))
      local loss = mg.losses[cname](o)
      local tape = mg.GradientTape()
      local v = loss(yt, yp)
      tape:stop()
      local g = tape:gradient(v, { yp })[1]:totable()
      local eps = 1e-6
      for r = 1, #P do
        for k = 1, #P[r] do
          local row = {}
          for j = 1, #P[r] do row[j] = P[r][j] end
          row[k] = P[r][k] + eps
          local up = ref[fname](T[r], row, o)
          row[k] = P[r][k] - eps
          local down = ref[fname](T[r], row, o)
          local fd = (up - down) / (2 * eps) / #P
          assert(math.abs(g[r][k] - fd) <= 1e-5 * math.max(1, math.abs(fd)),
            string.format("%s d/dy_pred[%d][%d]: autodiff %.9g, differences %.9g", cname, r, k, g[r][k], fd))
        end
      end
    end)
  end

  it("CosineSimilarity along another axis", function()
    local yt, yp = mg.tensor(T_pos, "float64"), mg.tensor(P_real, "float64")
    local want = {}
    for j = 1, 3 do
      local a, b = {}, {}
      for i = 1, 3 do a[i], b[i] = T_pos[i][j], P_real[i][j] end
      want[j] = ref.cosine_similarity(a, b)
    end
    h.near(mg.losses.cosine_similarity(yt, yp, 1), want, 1e-12)
    h.near(mg.losses.CosineSimilarity { axis = 1 }(yt, yp), mean(want), 1e-12)
  end)
end)

-- ---- CTC ---------------------------------------------------------------------------------------

-- -log sum over every path of the (T, K) softmax of `logits` whose collapse (repeats merged,
-- blanks (class 1) dropped) is `label`.
local function ctc_brute(logits, label)
  local T, K = #logits, #logits[1]
  local lp = {}
  for t = 1, T do
    local m, z = -math.huge, 0
    for k = 1, K do m = math.max(m, logits[t][k]) end
    for k = 1, K do z = z + math.exp(logits[t][k] - m) end
    lp[t] = {}
    for k = 1, K do lp[t][k] = logits[t][k] - m - math.log(z) end
  end
  local total = 0
  local path = {}
  local function walk(t)
    if t > T then
      local out, prev = {}, nil
      for i = 1, T do
        if path[i] ~= prev and path[i] ~= 1 then out[#out + 1] = path[i] end
        prev = path[i]
      end
      if #out ~= #label then return end
      for i = 1, #out do if out[i] ~= label[i] then return end end
      local s = 0
      for i = 1, T do s = s + lp[i][path[i]] end
      total = total + math.exp(s)
      return
    end
    for k = 1, K do path[t] = k; walk(t + 1) end
  end
  walk(1)
  return -math.log(total)
end

describe("CTC", function()
  local logits = {}
  for b = 1, 4 do
    logits[b] = {}
    for t = 1, 5 do
      logits[b][t] = {}
      for k = 1, 4 do logits[b][t][k] = math.sin(b * 3.1 + t * 1.7 + k * 0.9) * 1.5 end
    end
  end
  -- repeats (need a blank between), a short label, an empty label, the longest
  local labels = { { 2, 2, 3 }, { 4, 0, 0 }, { 0, 0, 0 }, { 3, 4, 2 } }
  local function unpadded(l)
    local out = {}
    for _, v in ipairs(l) do if v ~= 0 then out[#out + 1] = v end end
    return out
  end

  it("equals the brute-force sum over alignments, function and class, eager and staged", function()
    local want = {}
    for b = 1, 4 do want[b] = ctc_brute(logits[b], unpadded(labels[b])) end
    local yt, yp = mg.tensor(labels, "int64"), mg.tensor(logits, "float64")
    h.near(mg.losses.ctc(yt, yp), want, 1e-9)
    h.near(mg.losses.CTC()(yt, yp), mean(want), 1e-9)
    local staged = mg.func(function(a, b) return mg.losses.ctc(a, b) end)
    h.near(staged(yt, mg.tensor(logits, "float32")), want, 1e-4)
  end)

  it("its gradient matches central differences of the brute force", function()
    local yt = mg.tensor(labels, "int64")
    local yp = mg.Variable(mg.tensor(logits, "float64"))
    local tape = mg.GradientTape()
    local v = mg.sum(mg.losses.ctc(yt, yp))
    tape:stop()
    local g = tape:gradient(v, { yp })[1]:totable()
    for _, b in ipairs({ 1, 4 }) do
      for t = 1, 5, 2 do
        for k = 1, 4 do
          local x = logits[b][t][k]
          logits[b][t][k] = x + 1e-6
          local up = ctc_brute(logits[b], unpadded(labels[b]))
          logits[b][t][k] = x - 1e-6
          local down = ctc_brute(logits[b], unpadded(labels[b]))
          logits[b][t][k] = x
          h.near(g[b][t][k], (up - down) / 2e-6, 1e-5, string.format("d/dlogits[%d][%d][%d]", b, t, k))
        end
      end
    end
  end)

  it("bad shapes raise, naming ctc", function()
    h.fails(function() mg.losses.ctc(mg.tensor({ 1, 2 }, "int64"), mg.zeros { 2, 3, 4 }) end, "ctc", "y_true")
    h.fails(function() mg.losses.ctc(mg.tensor({ { 5 } }, "int64"), mg.zeros { 1, 3, 4 }) end, "ctc", "2..4")
    h.fails(function() mg.losses.ctc(mg.tensor({ { 2, 1 } }, "int64"), mg.zeros { 1, 3, 4 }) end, "ctc", "blank")
    h.fails(function() mg.losses.ctc(mg.tensor({ { -1 } }, "int64"), mg.zeros { 1, 3, 4 }) end, "ctc", "padded with 0")
  end)

  it("a label no alignment fits gives inf, with a finite loss beside it", function()
    -- 2, 2 needs a blank between the repeats: 3 steps; 2 steps cannot hold it
    local v = mg.losses.ctc(mg.tensor({ { 2, 2 }, { 2, 0 } }, "int64"), mg.zeros { 2, 2, 3 })
    assert.are.equal(math.huge, v[1]:item())
    h.near(v[2], -math.log(3 / 9), 1e-6)   -- paths 2-2, 2-blank, blank-2 of 9
  end)
end)

describe("the new losses' configs, names and options", function()
  it("get_config/from_config round trips keep Keras's defaults", function()
    local c = mg.losses.BinaryFocalCrossentropy { gamma = 3 }:get_config()
    assert.are.equal(3, c.gamma)
    assert.are.equal(0.25, c.alpha)
    assert.is_false(c.apply_class_balancing)
    assert.are.equal(-1, c.axis)
    assert.are.equal("binary_focal_crossentropy", c.name)
    for _, name in ipairs({ "KLDivergence", "Poisson", "LogCosh", "Hinge", "SquaredHinge", "CategoricalHinge",
      "CosineSimilarity", "MeanSquaredLogarithmicError", "MeanAbsolutePercentageError", "BinaryFocalCrossentropy",
      "CategoricalFocalCrossentropy", "CTC" }) do
      local l = mg.losses[name] { reduction = "sum" }
      local back = mg.losses.get { class_name = name, config = l:get_config() }
      assert.are.same(l:get_config(), back:get_config())
      assert.are.equal("sum", back.reduction)
    end
  end)

  it("names and aliases reach the classes", function()
    local names = { kld = "KLDivergence", kl_divergence = "KLDivergence", poisson = "Poisson", log_cosh = "LogCosh",
      logcosh = "LogCosh", hinge = "Hinge", squared_hinge = "SquaredHinge", categorical_hinge = "CategoricalHinge",
      cosine_similarity = "CosineSimilarity", msle = "MeanSquaredLogarithmicError",
      mape = "MeanAbsolutePercentageError", binary_focal_crossentropy = "BinaryFocalCrossentropy",
      categorical_focal_crossentropy = "CategoricalFocalCrossentropy", ctc = "CTC" }
    for k, cls in pairs(names) do assert.are.equal(cls, mg.losses.get(k).class_name, k) end
  end)

  it("errors point at the caller's line", function()
    for _, f in ipairs({ function() mg.losses.Poisson { axis = 1 } end,
      function() mg.losses.ctc(mg.tensor({ 1, 2 }, "int64"), mg.zeros { 2, 3, 4 }) end,
      function() mg.losses.ctc(mg.tensor({ { 2, 1 } }, "int64"), mg.zeros { 1, 3, 4 }) end,
      function() mg.losses.hinge(mg.ones { 2, 3 }, mg.ones { 2, 4 }) end }) do
      local e = h.fails(f)
      assert(e:find("nn_kit_losses_spec.lua:%d+:"), e)
    end
  end)

  it("unknown and out-of-range options raise", function()
    h.fails(function() mg.losses.BinaryFocalCrossentropy { gama = 2 } end, "BinaryFocalCrossentropy", "gama")
    h.fails(function() mg.losses.CategoricalFocalCrossentropy { alpha = 2 } end, "CategoricalFocalCrossentropy", "alpha")
    h.fails(function() mg.losses.CosineSimilarity { axis = 0.5 } end, "CosineSimilarity", "axis")
    h.fails(function() mg.losses.KLDivergence { from_logits = true } end, "KLDivergence", "from_logits")
    h.fails(function() mg.losses.binary_focal_crossentropy(mg.ones { 2 }, mg.ones { 2 }, false, 0.25, -1) end,
      "binary_focal_crossentropy", "gamma")
    h.fails(function() mg.losses.categorical_focal_crossentropy(mg.tensor({ 1, 2 }, "int64"), mg.ones { 2, 3 }) end,
      "categorical_focal_crossentropy", "class indices")
  end)

  it("each trains a model staged through compile and fit", function()
    local x = mg.uniform({ 32, 3 }, 0.1, 1, "float32", 5)
    local onehot = mg.one_hot(mg.argmax(x, -1), 3, "float32")
    for _, c in ipairs({ { "kld", "softmax", onehot }, { "poisson", "softplus", x }, { "log_cosh", nil, x },
      { "hinge", "tanh", onehot }, { "squared_hinge", "tanh", onehot }, { "categorical_hinge", nil, onehot },
      { "cosine_similarity", nil, x }, { "msle", "relu", x }, { "mape", nil, x },
      { "binary_focal_crossentropy", "sigmoid", onehot }, { "categorical_focal_crossentropy", "softmax", onehot } }) do
      mg.random.seed(1)
      local model = mg.nn.Sequential { mg.nn.Input { shape = { 3 } }, mg.nn.Dense { units = 3, activation = c[2] } }
      model:compile { optimizer = mg.optim.Adam { learning_rate = 0.05 }, loss = c[1] }
      local before = model:evaluate(x, c[3], { verbose = 0 })
      model:fit(x, c[3], { epochs = 10, batch_size = 8, verbose = 0 })
      local after = model:evaluate(x, c[3], { verbose = 0 })
      assert(after < before, string.format("%s: loss %.5g -> %.5g", c[1], before, after))
    end
  end)
end)
