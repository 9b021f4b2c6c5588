-- Nadam, Adamax, Adadelta, Ftrl, Lion, Adafactor, use_ema and the schedules PolynomialDecay and
-- CosineDecayRestarts against Keras 3's update formulas written out here in plain Lua numbers
-- (element by element, no moongrad op), over several steps, eagerly and staged (mg.func), in
-- float32 and float64; each optimizer trains a model through compile/fit; configs round trip;
-- unknown and out-of-range options raise. (Keras itself was not installed on this machine, so the
-- reference is the formula of its source, transcribed independently of the implementation.)
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local h = require("tests.spec.helpers")

local R, C = 2, 3
local STEPS = 5

-- the parameter's start and the gradient of step t, as Lua numbers (row-major (R, C))
local function w0()
  local w = {}
  for i = 1, R * C do w[i] = 0.3 * math.sin(i) + 0.05 * i end
  return w
end
local function grad(t)
  local g = {}
  for i = 1, R * C do g[i] = math.cos(1.7 * i + t) * (1 + 0.1 * t) end
  return g
end
local function as_rows(v)
  local out = {}
  for i = 1, R do
    out[i] = {}
    for j = 1, C do out[i][j] = v[(i - 1) * C + j] end
  end
  return out
end
local function sign(x) return x > 0 and 1 or (x < 0 and -1 or 0) end
local function rms(v)
  local s = 0
  for i = 1, #v do s = s + v[i] * v[i] end
  return math.sqrt(s / #v)
end

-- ---- the reference updates: ref[name](state, w, g, t, lr, o) updates w in place ----------------

local ref = {}

function ref.Nadam(s, w, g, t, lr, o)
  local b1, b2, eps = o.beta_1 or 0.9, o.beta_2 or 0.999, o.epsilon or 1e-7
  s.m = s.m or {}; s.v = s.v or {}; s.up = s.up or 1
  local u_t = b1 * (1 - 0.5 * 0.96 ^ t)
  local u_t1 = b1 * (1 - 0.5 * 0.96 ^ (t + 1))
  s.up = s.up * u_t
  local up1 = s.up * u_t1
  for i = 1, #w do
    local m = (s.m[i] or 0); local v = (s.v[i] or 0)
    m = m + (g[i] - m) * (1 - b1)
    v = v + (g[i] ^ 2 - v) * (1 - b2)
    s.m[i], s.v[i] = m, v
    local m_hat = u_t1 * m / (1 - up1) + (1 - u_t) * g[i] / (1 - s.up)
    local v_hat = v / (1 - b2 ^ t)
    w[i] = w[i] - m_hat * lr / (math.sqrt(v_hat) + eps)
  end
end

function ref.Adamax(s, w, g, t, lr, o)
  local b1, b2, eps = o.beta_1 or 0.9, o.beta_2 or 0.999, o.epsilon or 1e-7
  s.m = s.m or {}; s.u = s.u or {}
  for i = 1, #w do
    local m = s.m[i] or 0
    m = m + (g[i] - m) * (1 - b1)
    local u = math.max(b2 * (s.u[i] or 0), math.abs(g[i]))
    s.m[i], s.u[i] = m, u
    w[i] = w[i] - lr * m / ((1 - b1 ^ t) * (u + eps))
  end
end

function ref.Adadelta(s, w, g, _, lr, o)
  local rho, eps = o.rho or 0.95, o.epsilon or 1e-7
  s.ag = s.ag or {}; s.ad = s.ad or {}
  for i = 1, #w do
    local ag = rho * (s.ag[i] or 0) + (1 - rho) * g[i] ^ 2
    local delta = -math.sqrt((s.ad[i] or 0) + eps) * g[i] / math.sqrt(ag + eps)
    s.ag[i] = ag
    s.ad[i] = rho * (s.ad[i] or 0) + (1 - rho) * delta ^ 2
    w[i] = w[i] + lr * delta
  end
end

function ref.Ftrl(s, w, g, _, lr, o)
  local p = -(o.learning_rate_power or -0.5)
  local l1, l2 = o.l1_regularization_strength or 0, o.l2_regularization_strength or 0
  local l2s, beta = o.l2_shrinkage_regularization_strength or 0, o.beta or 0
  s.acc = s.acc or {}; s.lin = s.lin or {}
  local l2r = l2 + beta / (2 * lr)
  for i = 1, #w do
    local acc = s.acc[i] or (o.initial_accumulator_value or 0.1)
    local lin = s.lin[i] or 0
    local gs = g[i] + 2 * l2s * w[i]
    local acc1 = acc + g[i] ^ 2
    lin = lin + gs - (acc1 ^ p - acc ^ p) / lr * w[i]
    local quad = acc1 ^ p / lr + 2 * l2r
    local clipped = math.max(-l1, math.min(l1, lin))
    w[i] = (clipped - lin) / quad
    s.acc[i], s.lin[i] = acc1, lin
  end
end

function ref.Lion(s, w, g, _, lr, o)
  local b1, b2 = o.beta_1 or 0.9, o.beta_2 or 0.99
  s.m = s.m or {}
  for i = 1, #w do
    local m = s.m[i] or 0
    w[i] = w[i] - lr * sign(m * b1 + g[i] * (1 - b1))
    s.m[i] = m * b2 + g[i] * (1 - b2)
  end
end

-- Adafactor on the (R, C) parameter: factored second moment (r over rows, c over columns).
function ref.Adafactor(s, w, g, t, lr, o)
  local d, e1, e2, clipt = o.beta_2_decay or -0.8, o.epsilon_1 or 1e-30, o.epsilon_2 or 1e-3, o.clip_threshold or 1
  s.r = s.r or { 0, 0 }; s.c = s.c or { 0, 0, 0 }
  local rho = math.min(lr, 1 / math.sqrt(t))
  local alpha = math.max(e2, rms(w)) * rho
  local b2 = 1 - t ^ d
  local g2 = {}
  for i = 1, #g do g2[i] = g[i] ^ 2 + e1 end
  for i = 1, R do
    local m = 0
    for j = 1, C do m = m + g2[(i - 1) * C + j] end
    s.r[i] = b2 * s.r[i] + (1 - b2) * m / C
  end
  for j = 1, C do
    local m = 0
    for i = 1, R do m = m + g2[(i - 1) * C + j] end
    s.c[j] = b2 * s.c[j] + (1 - b2) * m / R
  end
  local rmean = 0
  for i = 1, R do rmean = rmean + s.r[i] / R end
  local u = {}
  for i = 1, R do
    for j = 1, C do
      local k = (i - 1) * C + j
      u[k] = g[k] / math.sqrt(s.r[i] / rmean * s.c[j])
    end
  end
  local denom = math.max(1, rms(u) / clipt)
  for k = 1, #w do w[k] = w[k] - alpha * u[k] / denom end
end

-- Adafactor on a vector: the full velocity.
local function adafactor_vec(s, w, g, t, lr)
  local rho = math.min(lr, 1 / math.sqrt(t))
  local alpha = math.max(1e-3, rms(w)) * rho
  local b2 = 1 - t ^ -0.8
  s.v = s.v or {}
  local u = {}
  for i = 1, #w do
    s.v[i] = b2 * (s.v[i] or 0) + (1 - b2) * (g[i] ^ 2 + 1e-30)
    u[i] = g[i] / math.sqrt(s.v[i])
  end
  local denom = math.max(1, rms(u))
  for i = 1, #w do w[i] = w[i] - alpha * u[i] / denom end
end

local cases = {
  { "Nadam", { learning_rate = 0.01 } },
  { "Nadam", { learning_rate = 0.05, beta_1 = 0.8, beta_2 = 0.9, epsilon = 1e-5 } },
  { "Adamax", { learning_rate = 0.01 } },
  { "Adamax", { learning_rate = 0.02, beta_1 = 0.5, beta_2 = 0.7 } },
  { "Adadelta", { learning_rate = 1.0 } },
  { "Adadelta", { learning_rate = 0.5, rho = 0.8, epsilon = 1e-4 } },
  { "Ftrl", { learning_rate = 0.1 } },
  { "Ftrl", { learning_rate = 0.2, l1_regularization_strength = 0.05, l2_regularization_strength = 0.1,
    l2_shrinkage_regularization_strength = 0.02, beta = 0.3, learning_rate_power = -0.7,
    initial_accumulator_value = 0.5 } },
  { "Lion", { learning_rate = 0.01 } },
  { "Lion", { learning_rate = 0.02, beta_1 = 0.5, beta_2 = 0.9 } },
  { "Adafactor", { learning_rate = 0.1 } },
  { "Adafactor", { learning_rate = 0.5, clip_threshold = 0.3, epsilon_2 = 0.01, beta_2_decay = -0.5 } },
}

local function options_text(o)
  local keys = {}
  for k in pairs(o) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = k .. "=" .. tostring(o[k]) end
  return "{" .. table.concat(keys, ", ") .. "}"
end

-- The base class keeps the learning rate in a float32 Variable, as Keras does, so the reference
-- takes the rate rounded to float32; every other per-step scalar (bias corrections, Nadam's momentum
-- product) is computed in float64, so float64 parameters match to float64's precision.
local TOL = { float32 = 2e-5, float64 = 1e-12 }
local function f32(x) return mg.tensor(x, "float32"):item() end

describe("optimizers against Keras 3's formulas in plain Lua", function()
  for _, case in ipairs(cases) do
    local name, o = case[1], case[2]
    for _, dtype in ipairs({ "float32", "float64" }) do
      for _, mode in ipairs({ "eager", "staged" }) do
        it(string.format("%s %s, %s, %s", name, options_text(o), dtype, mode), function()
          local opt = mg.optim[name](o)
          local wv = w0()
          local w = mg.Variable(mg.tensor(as_rows(wv), dtype))
          local s = {}
          local step = function(g) opt:apply_gradients({ g }, { w }) end
          if mode == "staged" then
            opt:build { w }
            step = mg.func(step)
          end
          for t = 1, STEPS do
            local g = grad(t)
            step(mg.tensor(as_rows(g), dtype))
            ref[name](s, wv, g, t, f32(o.learning_rate), o)
            h.near(w, as_rows(wv), TOL[dtype], string.format("%s step %d", name, t))
          end
          assert.are.equal(STEPS, opt.iterations:item())
        end)
      end
    end
  end

  it("Adafactor on a vector keeps a full velocity", function()
    local opt = mg.optim.Adafactor { learning_rate = 0.3 }
    local wv = { 0.5, -0.2, 0.9, 0.01 }
    local w = mg.Variable(mg.tensor(wv, "float64"))
    local s = {}
    for t = 1, 4 do
      local g = { math.sin(t), math.cos(t), 0.1 * t, -0.5 }
      opt:apply_gradients({ mg.tensor(g, "float64") }, { w })
      adafactor_vec(s, wv, g, t, 0.3)
      h.near(w, wv, 1e-6, "step " .. t)
    end
    assert.is_nil(opt:slot(w, "r"))
    assert.are.same({ 4 }, opt:slot(w, "velocity").shape)
  end)

  it("a learning-rate schedule drives the new optimizers (staged, no retrace)", function()
    local sched = mg.optim.PolynomialDecay { initial_learning_rate = 0.1, decay_steps = 4, end_learning_rate = 0.01 }
    local opt = mg.optim.Lion { learning_rate = sched }
    local wv = w0()
    local w = mg.Variable(mg.tensor(as_rows(wv), "float64"))
    opt:build { w }
    local step = mg.func(function(g) opt:apply_gradients({ g }, { w }) end)
    local s = {}
    for t = 1, 6 do
      local g = grad(t)
      step(mg.tensor(as_rows(g), "float64"))
      local p = math.min(t - 1, 4) / 4
      ref.Lion(s, wv, g, t, (0.1 - 0.01) * (1 - p) + 0.01, {})
      h.near(w, as_rows(wv), 1e-6, "step " .. t)
    end
  end)
end)

describe("use_ema", function()
  -- Keras 3: after the update, average = m * average + (1 - m) * var (m = 0 on the first step);
  -- every ema_overwrite_frequency steps the weights become the averages; finalize swaps them in.
  local function run(mode, freq)
    local opt = mg.optim.SGD { learning_rate = 0.1, use_ema = true, ema_momentum = 0.9, ema_overwrite_frequency = freq }
    local w = mg.Variable(mg.tensor({ 1.0, -2.0 }, "float64"))
    local step = function(g) opt:apply_gradients({ g }, { w }) end
    if mode == "staged" then
      opt:build { w }
      step = mg.func(step)
    end
    local wv, avg = { 1.0, -2.0 }, { 0, 0 }
    for t = 1, 5 do
      local g = { 0.5 * t, -0.3 }
      step(mg.tensor(g, "float64"))
      local m = t == 1 and 0 or 0.9
      for i = 1, 2 do
        wv[i] = wv[i] - 0.1 * g[i]
        avg[i] = m * avg[i] + (1 - m) * wv[i]
      end
      if freq and t % freq == 0 then wv = { avg[1], avg[2] } end
      h.near(w, wv, 1e-7, mode .. " weights, step " .. t)
      h.near(opt:slot(w, "average"), avg, 1e-7, mode .. " average, step " .. t)
    end
    local a = opt:slot(w, "average"):totable()
    opt:finalize_variable_values { w }
    h.near(w, a, 0, "finalized")
  end
  for _, mode in ipairs({ "eager", "staged" }) do
    it(mode .. ": the average follows Keras's rule and finalize swaps it in", function() run(mode) end)
    it(mode .. ": ema_overwrite_frequency overwrites the weights", function() run(mode, 2) end)
  end

  it("with every optimizer, fit leaves the averages in the weights", function()
    for _, name in ipairs({ "SGD", "Adam", "RMSprop", "Nadam", "Adamax", "Adadelta", "Ftrl", "Lion", "Adafactor" }) do
      mg.random.seed(3)
      local model = mg.nn.Sequential { mg.nn.Input { shape = { 3 } }, mg.nn.Dense { units = 2 } }
      local opt = mg.optim[name] { learning_rate = 0.01, use_ema = true }
      model:compile { optimizer = opt, loss = "mse" }
      local x, y = mg.uniform({ 16, 3 }, -1, 1, "float32", 1), mg.uniform({ 16, 2 }, -1, 1, "float32", 2)
      model:fit(x, y, { epochs = 2, batch_size = 8, verbose = 0 })
      for _, v in ipairs(model.trainable_weights) do
        h.near(v, opt:slot(v, "average"), 0, name .. " " .. tostring(v.name))
      end
      assert.are.equal(4, opt.iterations:item())
    end
  end)

  it("the averages are saved and restored with the optimizer's state", function()
    local opt = mg.optim.Adam { use_ema = true }
    local w = mg.Variable(mg.tensor({ 1.0, 2.0 }, "float32"))
    opt:apply_gradients({ mg.tensor({ 0.1, 0.2 }, "float32") }, { w })
    local state = opt:get_state()
    assert.is_not_nil(state["var_1/average"])
    local opt2 = mg.optim.Adam { use_ema = true }
    opt2:set_state(state, { w })
    h.near(opt2:slot(w, "average"), opt:slot(w, "average"), 0)
  end)

  it("options are checked", function()
    h.fails(function() mg.optim.Adam { ema_momentum = 1.5, use_ema = true } end, "Adam", "ema_momentum")
    h.fails(function() mg.optim.Adam { ema_momentum = 0.5 } end, "need use_ema = true")
    h.fails(function() mg.optim.Lion { use_ema = true, ema_overwrite_frequency = 0 } end, "ema_overwrite_frequency")
  end)
end)

describe("the new optimizers' options, names and configs", function()
  it("errors point at the caller's line", function()
    for _, f in ipairs({ function() mg.optim.Nadam { beta1 = 0.9 } end,
      function() mg.optim.PolynomialDecay { initial_learning_rate = 0.1 } end,
      function() mg.optim.Lion { ema_momentum = 0.5 } end }) do
      local e = h.fails(f)
      assert(e:find("nn_kit_optim_spec.lua:%d+:"), e)
    end
  end)

  it("unknown and out-of-range options raise, naming the optimizer", function()
    h.fails(function() mg.optim.Nadam { beta1 = 0.9 } end, "Nadam", "beta1")
    h.fails(function() mg.optim.Adamax { beta_2 = 1.0 } end, "Adamax", "beta_2")
    h.fails(function() mg.optim.Adadelta { rho = -1 } end, "Adadelta", "rho")
    h.fails(function() mg.optim.Ftrl { learning_rate_power = 0.5 } end, "Ftrl", "learning_rate_power")
    h.fails(function() mg.optim.Ftrl { l1_regularization_strength = -1 } end, "Ftrl", "l1_regularization_strength")
    h.fails(function() mg.optim.Lion { beta_1 = 0 } end, "Lion", "beta_1")
    h.fails(function() mg.optim.Adafactor { clip_threshold = 0 } end, "Adafactor", "clip_threshold")
    h.fails(function() mg.optim.Adafactor { relative = true } end, "Adafactor", "relative")
  end)

  it("Keras's defaults, get_config/from_config and compile by name", function()
    local defaults = {
      Nadam = { learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7 },
      Adamax = { learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7 },
      Adadelta = { learning_rate = 0.001, rho = 0.95, epsilon = 1e-7 },
      Ftrl = { learning_rate = 0.001, learning_rate_power = -0.5, initial_accumulator_value = 0.1,
        l1_regularization_strength = 0, l2_regularization_strength = 0, l2_shrinkage_regularization_strength = 0,
        beta = 0 },
      Lion = { learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.99 },
      Adafactor = { learning_rate = 0.001, beta_2_decay = -0.8, epsilon_1 = 1e-30, epsilon_2 = 1e-3,
        clip_threshold = 1, relative_step = true },
    }
    local saving = require("moongrad.nn.saving")
    for name, d in pairs(defaults) do
      local opt = mg.optim[name]()
      local c = opt:get_config()
      for k, v in pairs(d) do assert.are.equal(v, c[k], name .. "." .. k) end
      local back = saving.optimizer_from_config { class_name = name, config = c }
      assert.are.equal(name, back.class_name)
      assert.are.same(c, back:get_config())
      assert.are.equal(name, mg.optim.get(name:lower()).class_name)
    end
    local sched = mg.optim.CosineDecayRestarts { initial_learning_rate = 0.1, first_decay_steps = 5 }
    local o = mg.optim.Nadam { learning_rate = sched, use_ema = true, ema_momentum = 0.5 }
    local back = saving.optimizer_from_config { class_name = "Nadam", config = o:get_config() }
    assert.are.equal("CosineDecayRestarts", back:get_config().learning_rate.class_name)
    assert.are.equal(0.5, back.ema_momentum)
    assert.is_true(back.use_ema)
  end)

  it("Nadam's momentum product is part of the saved state", function()
    local opt = mg.optim.Nadam()
    local w = mg.Variable(mg.tensor({ 1.0 }, "float32"))
    opt:apply_gradients({ mg.tensor({ 0.5 }, "float32") }, { w })
    opt:apply_gradients({ mg.tensor({ 0.5 }, "float32") }, { w })
    local st = opt:get_state()
    local u1 = 0.9 * (1 - 0.5 * 0.96)
    local u2 = 0.9 * (1 - 0.5 * 0.96 ^ 2)
    h.near(st.u_product, u1 * u2, 1e-6)
    local opt2 = mg.optim.Nadam()
    opt2:set_state(st, { w })
    h.near(opt2:get_state().u_product, u1 * u2, 1e-6)
  end)

  it("every new optimizer trains a model staged in fit and lowers the loss", function()
    for _, name in ipairs({ "Nadam", "Adamax", "Adadelta", "Ftrl", "Lion", "Adafactor" }) do
      mg.random.seed(7)
      local model = mg.nn.Sequential { mg.nn.Input { shape = { 4 } }, mg.nn.Dense { units = 8, activation = "relu" },
        mg.nn.Dense { units = 1 } }
      local lr = ({ Adadelta = 1.0, Ftrl = 0.5, Lion = 0.003, Adafactor = 0.05 })[name] or 0.02
      model:compile { optimizer = mg.optim[name] { learning_rate = lr }, loss = "mse" }
      local x = mg.uniform({ 64, 4 }, -1, 1, "float32", 11)
      local y = mg.sum(x, { axis = -1, keepdims = true })
      local before = model:evaluate(x, y, { verbose = 0 })
      model:fit(x, y, { epochs = 15, batch_size = 16, verbose = 0 })
      local after = model:evaluate(x, y, { verbose = 0 })
      assert(after < before * 0.8, string.format("%s: loss %.4g -> %.4g", name, before, after))
    end
  end)
end)

describe("PolynomialDecay and CosineDecayRestarts", function()
  local function poly(step, c)
    local ds = c.decay_steps
    if c.cycle then
      local mult = step == 0 and 1 or math.ceil(step / ds)
      ds = ds * mult
    else
      step = math.min(step, ds)
    end
    local e = c.end_learning_rate or 0.0001
    return (c.initial_learning_rate - e) * (1 - step / ds) ^ (c.power or 1) + e
  end
  local function sgdr(step, c)
    local t_mul, m_mul, alpha = c.t_mul or 2, c.m_mul or 1, c.alpha or 0
    local frac = step / c.first_decay_steps
    local i
    if t_mul == 1 then
      i = math.floor(frac); frac = frac - i
    else
      i = math.floor(math.log(1 - frac * (1 - t_mul)) / math.log(t_mul))
      local sum_r = (1 - t_mul ^ i) / (1 - t_mul)
      frac = (frac - sum_r) / t_mul ^ i
    end
    local cosine = 0.5 * m_mul ^ i * (1 + math.cos(math.pi * frac))
    return c.initial_learning_rate * ((1 - alpha) * cosine + alpha)
  end

  local pcases = {
    { initial_learning_rate = 0.1, decay_steps = 10 },
    { initial_learning_rate = 0.1, decay_steps = 10, end_learning_rate = 0.01, power = 2 },
    { initial_learning_rate = 1.0, decay_steps = 4, end_learning_rate = 0.1, power = 0.5, cycle = true },
  }
  local scases = {
    { initial_learning_rate = 0.1, first_decay_steps = 5 },
    { initial_learning_rate = 1.0, first_decay_steps = 4, t_mul = 1, m_mul = 0.5, alpha = 0.1 },
    { initial_learning_rate = 2.0, first_decay_steps = 3, t_mul = 3, m_mul = 0.8, alpha = 0.05 },
  }
  it("PolynomialDecay follows Keras's formula (numbers and tensors)", function()
    for k, c in ipairs(pcases) do
      local s = mg.optim.PolynomialDecay(c)
      for step = 0, 25 do
        h.near(s(step), poly(step, c), 1e-9, string.format("case %d step %d", k, step))
        h.near(s(mg.tensor(step, "float32")), poly(step, c), 1e-5, string.format("case %d step %d (f32)", k, step))
      end
    end
  end)
  it("CosineDecayRestarts follows Keras's formula", function()
    for k, c in ipairs(scases) do
      local s = mg.optim.CosineDecayRestarts(c)
      for step = 0, 40 do
        h.near(s(step), sgdr(step, c), 1e-9, string.format("case %d step %d", k, step))
      end
    end
    local s = mg.optim.CosineDecayRestarts { initial_learning_rate = 1.0, first_decay_steps = 10 }
    h.near(s(10), 1.0, 1e-12)   -- the restart
    h.near(s(20), 0.5, 1e-12)   -- halfway through the second period, twice as long
  end)
  it("options are checked and configs round trip", function()
    h.fails(function() mg.optim.PolynomialDecay { initial_learning_rate = 0.1 } end, "PolynomialDecay", "decay_steps")
    h.fails(function() mg.optim.PolynomialDecay { initial_learning_rate = 0.1, decay_steps = 3, cycles = true } end,
      "PolynomialDecay", "cycles")
    h.fails(function() mg.optim.CosineDecayRestarts { initial_learning_rate = 0.1, first_decay_steps = 3, t_mul = 0 } end,
      "CosineDecayRestarts", "t_mul")
    for _, name in ipairs({ "PolynomialDecay", "CosineDecayRestarts" }) do
      local c = name == "PolynomialDecay" and pcases[3] or scases[3]
      local s = mg.optim.schedules[name](c)
      local back = mg.optim.schedules[name](s:get_config())
      for step = 0, 12 do h.near(back(step), s(step), 0) end
    end
  end)
end)
