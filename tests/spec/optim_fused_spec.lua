-- The fused optimizer steps (sgd_update, adam_update, rmsprop_update,
-- adagrad_update) against the composed formulas they replace, step after
-- step, eager and staged, float32 and float64; the optimizers built on them
-- (SGD, Adam, AdamW, RMSprop, Adagrad) against the same formulas; the
-- variable model (a snapshot or a tape record keeps the old value, a staged
-- read before the step sees the old value and one after it the new one);
-- and the errors. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local h = require("tests.spec.helpers")

local SHAPE = { 3, 5 }
local STEPS = 4

local function rand(seed, dtype, lo, hi)
  return mg.uniform(SHAPE, lo or -1, hi or 1, dtype, seed)
end

local function copy(t) return t * 1 end

-- Largest relative difference between two tensors (relative to max(|b|, 1)).
local function rel_err(a, b)
  local d = mg.max(mg.abs(a - b)):item()
  local s = math.max(mg.max(mg.abs(b)):item(), 1)
  return d / s
end

local function assert_close(a, b, tol, what)
  local e = rel_err(a, b)
  assert(e <= tol, string.format("%s: relative error %.3g > %.3g", what, e, tol))
end

-- ---- the composed formulas (plain tensors, functional) -----------------------------------

local ref = {}

function ref.sgd(s, g, lr, o)
  if (o.momentum or 0) == 0 then
    s.var = s.var - g * lr
    return
  end
  local mn = s.momentum * o.momentum - g * lr
  s.momentum = mn
  if o.nesterov then s.var = s.var + (mn * o.momentum - g * lr) else s.var = s.var + mn end
end

function ref.adam(s, g, alpha, decay, o)
  local b1, b2 = o.beta_1 or 0.9, o.beta_2 or 0.999
  local mn = s.m + (g - s.m) * (1 - b1)
  local vn = s.v + (mg.square(g) - s.v) * (1 - b2)
  s.m, s.v = mn, vn
  if o.amsgrad then
    vn = mg.maximum(s.vhat, vn)
    s.vhat = vn
  end
  s.var = (s.var - s.var * decay) - mn * alpha / (mg.sqrt(vn) + (o.epsilon or 1e-7))
end

function ref.rmsprop(s, g, lr, o)
  local rho, eps = o.rho or 0.9, o.epsilon or 1e-7
  local vn = s.velocity * rho + mg.square(g) * (1 - rho)
  s.velocity = vn
  local denom
  if o.centered then
    local an = s.average_gradient * rho + g * (1 - rho)
    s.average_gradient = an
    denom = vn - mg.square(an) + eps
  else
    denom = vn + eps
  end
  local inc = g * lr / mg.sqrt(denom)
  if (o.momentum or 0) ~= 0 then
    local mn = s.momentum * o.momentum + inc
    s.momentum = mn
    s.var = s.var - mn
  else
    s.var = s.var - inc
  end
end

function ref.adagrad(s, g, lr, o)
  local an = s.accumulator + mg.square(g)
  s.accumulator = an
  s.var = s.var - g * lr / mg.sqrt(an + (o.epsilon or 1e-7))
end

-- ---- op level -----------------------------------------------------------------------------

-- Each case: the op, the state names (in input order), its options, and
-- how to call the op / the reference with the step's numbers.
local op_cases = {
  { name = "sgd plain", op = "sgd_update", state = { "var" }, opts = {} },
  { name = "sgd momentum", op = "sgd_update", state = { "var", "momentum" }, opts = { momentum = 0.9 } },
  { name = "sgd nesterov", op = "sgd_update", state = { "var", "momentum" }, opts = { momentum = 0.8, nesterov = true } },
  { name = "adam", op = "adam_update", state = { "var", "m", "v" }, opts = { beta_1 = 0.8, beta_2 = 0.95, epsilon = 1e-6 } },
  { name = "adam amsgrad", op = "adam_update", state = { "var", "m", "v", "vhat" }, opts = { amsgrad = true } },
  { name = "adam decay", op = "adam_update", state = { "var", "m", "v" }, opts = {}, decay = 0.01 },
  { name = "adam amsgrad decay", op = "adam_update", state = { "var", "m", "v", "vhat" }, opts = { amsgrad = true },
    decay = 0.02 },
  { name = "rmsprop", op = "rmsprop_update", state = { "var", "velocity" }, opts = { rho = 0.8 } },
  { name = "rmsprop momentum", op = "rmsprop_update", state = { "var", "velocity", "momentum" }, opts = { momentum = 0.5 } },
  { name = "rmsprop centered", op = "rmsprop_update", state = { "var", "velocity", "average_gradient" },
    opts = { centered = true } },
  { name = "rmsprop centered momentum", op = "rmsprop_update",
    state = { "var", "velocity", "momentum", "average_gradient" }, opts = { centered = true, momentum = 0.7 } },
  { name = "adagrad", op = "adagrad_update", state = { "var", "accumulator" }, opts = { epsilon = 1e-5 } },
}

local function initial(case, dtype)
  local s = {}
  for i, name in ipairs(case.state) do
    if name == "var" then s[name] = rand(10 + i, dtype)
    elseif name == "v" or name == "vhat" or name == "velocity" or name == "accumulator" then
      s[name] = rand(10 + i, dtype, 0.05, 0.5)  -- second moments are positive
    elseif name == "average_gradient" then s[name] = rand(10 + i, dtype, -0.1, 0.1)
    else s[name] = rand(10 + i, dtype, -0.3, 0.3) end
  end
  return s
end

-- One call of the op on Variables vars (by state name), gradient g, step k.
local function call_op(case, vars, g, k)
  local inputs = {}
  for i, name in ipairs(case.state) do inputs[i] = vars[name] end
  inputs[#inputs + 1] = g
  local lr = 0.05 * k
  if case.op == "adam_update" then
    inputs[#inputs + 1] = lr
    inputs[#inputs + 1] = case.decay or 0
    return mg.raw.adam_update(inputs, case.opts)
  elseif case.op == "adagrad_update" then
    return mg.raw.adagrad_update(inputs[1], inputs[2], g, lr, case.opts)
  end
  inputs[#inputs + 1] = lr
  return mg.raw[case.op](inputs, case.opts)
end

local function call_ref(case, s, g, k)
  local lr = 0.05 * k
  if case.op == "sgd_update" then ref.sgd(s, g, lr, case.opts)
  elseif case.op == "adam_update" then ref.adam(s, g, lr, case.decay or 0, case.opts)
  elseif case.op == "rmsprop_update" then ref.rmsprop(s, g, lr, case.opts)
  else ref.adagrad(s, g, lr, case.opts) end
end

local TOL = { float32 = 2e-6, float64 = 1e-13 }

describe("fused optimizer ops match the composed formulas", function()
  for _, case in ipairs(op_cases) do
    for _, dtype in ipairs({ "float32", "float64" }) do
      for _, mode in ipairs({ "eager", "staged" }) do
        it(string.format("%s, %s, %s, %d steps", case.name, dtype, mode, STEPS), function()
          local s = initial(case, dtype)
          local vars = {}
          for name, t in pairs(s) do vars[name] = mg.Variable(t) end
          local step = function(g, k) return call_op(case, vars, g, k) end
          if mode == "staged" then step = mg.func(step) end
          for k = 1, STEPS do
            local g = rand(100 + k, dtype)
            if k == 3 then g = mg.transpose(rand(200, dtype):reshape { SHAPE[2], SHAPE[1] }) end  -- non-contiguous
            local n = step(g, k)
            assert.are.equal(SHAPE[1] * SHAPE[2], n:item())
            call_ref(case, s, g, k)
            for name, t in pairs(s) do
              assert.are.equal(dtype, vars[name].dtype)
              assert_close(vars[name], t, TOL[dtype], string.format("step %d, %s", k, name))
            end
          end
        end)
      end
    end
  end
end)

-- ---- the optimizers -----------------------------------------------------------------------

local opt_cases = {
  { name = "SGD", make = function() return mg.optim.SGD { learning_rate = 0.1 } end, kind = "sgd", opts = {} },
  { name = "SGD momentum", make = function() return mg.optim.SGD { learning_rate = 0.1, momentum = 0.9 } end,
    kind = "sgd", opts = { momentum = 0.9 }, slots = { momentum = "momentum" } },
  { name = "SGD nesterov", make = function() return mg.optim.SGD { learning_rate = 0.1, momentum = 0.9, nesterov = true } end,
    kind = "sgd", opts = { momentum = 0.9, nesterov = true }, slots = { momentum = "momentum" } },
  { name = "Adam", make = function() return mg.optim.Adam { learning_rate = 0.01 } end, kind = "adam", opts = {},
    slots = { m = "m", v = "v" } },
  { name = "Adam amsgrad", make = function() return mg.optim.Adam { learning_rate = 0.01, amsgrad = true } end,
    kind = "adam", opts = { amsgrad = true }, slots = { m = "m", v = "v", vhat = "vhat" } },
  { name = "AdamW", make = function() return mg.optim.AdamW { learning_rate = 0.01, weight_decay = 0.1 } end,
    kind = "adam", opts = {}, wd = 0.1, slots = { m = "m", v = "v" } },
  { name = "AdamW amsgrad", make = function() return mg.optim.AdamW { learning_rate = 0.01, amsgrad = true } end,
    kind = "adam", opts = { amsgrad = true }, wd = 0.004, slots = { m = "m", v = "v", vhat = "vhat" } },
  { name = "RMSprop centered momentum",
    make = function() return mg.optim.RMSprop { learning_rate = 0.01, centered = true, momentum = 0.5 } end,
    kind = "rmsprop", opts = { centered = true, momentum = 0.5 },
    slots = { velocity = "velocity", momentum = "momentum", average_gradient = "average_gradient" } },
  { name = "RMSprop", make = function() return mg.optim.RMSprop { learning_rate = 0.01 } end,
    kind = "rmsprop", opts = {}, slots = { velocity = "velocity" } },
  { name = "Adagrad", make = function() return mg.optim.Adagrad { learning_rate = 0.1 } end, kind = "adagrad",
    opts = {}, init = { accumulator = 0.1 }, slots = { accumulator = "accumulator" } },
}

local function opt_ref(case, s, g, t, lr)
  if case.kind == "sgd" then ref.sgd(s, g, lr, case.opts)
  elseif case.kind == "adam" then
    local alpha = lr * math.sqrt(1 - 0.999 ^ t) / (1 - 0.9 ^ t)
    ref.adam(s, g, alpha, lr * (case.wd or 0), case.opts)
  elseif case.kind == "rmsprop" then ref.rmsprop(s, g, lr, case.opts)
  else ref.adagrad(s, g, lr, case.opts) end
end

describe("optimizers built on the fused steps", function()
  for _, case in ipairs(opt_cases) do
    for _, dtype in ipairs({ "float32", "float64" }) do
      for _, mode in ipairs({ "eager", "staged" }) do
        it(string.format("%s, %s, %s: parameters and slots follow the formula", case.name, dtype, mode), function()
          local opt = case.make()
          local lr = opt.learning_rate
          local w1, w2 = mg.Variable(rand(1, dtype)), mg.Variable(mg.uniform({ 4 }, -1, 1, dtype, 2))
          local s1 = { var = copy(w1) }
          for name in pairs(case.slots or {}) do
            s1[name] = mg.full(SHAPE, (case.init or {})[name] or 0, dtype)
          end
          local step = function(g1, g2) opt:apply_gradients({ g1, g2 }, { w1, w2 }) end
          if mode == "staged" then
            opt:build { w1, w2 }
            step = mg.func(step)
          end
          for t = 1, STEPS do
            local g1, g2 = rand(50 + t, dtype), mg.uniform({ 4 }, -1, 1, dtype, 60 + t)
            step(g1, g2)
            opt_ref(case, s1, g1, t, lr)
            assert_close(w1, s1.var, 1e-5, string.format("step %d, var", t))
            for name, slot in pairs(case.slots or {}) do
              assert_close(opt:slot(w1, slot), s1[name], 1e-5, string.format("step %d, %s", t, name))
            end
          end
          assert.are.equal(STEPS, opt.iterations:item())
        end)
      end
    end
  end
end)

-- ---- the variable model --------------------------------------------------------------------

describe("fused steps and the variable model", function()
  it("a snapshot taken before an eager step keeps the old value", function()
    local w = mg.Variable(h.f32 { 1.0, 2.0, 3.0 })
    local snap = w:read()
    mg.raw.sgd_update({ w, h.f32 { 1.0, 1.0, 1.0 }, 0.5 })
    h.near(snap, { 1, 2, 3 }, 1e-7)
    h.near(w, { 0.5, 1.5, 2.5 }, 1e-7)
    mg.raw.sgd_update({ w, h.f32 { 1.0, 1.0, 1.0 }, 0.5 })  -- no snapshot now: in place
    h.near(w, { 0, 1, 2 }, 1e-7)
    h.near(snap, { 1, 2, 3 }, 1e-7)
  end)

  it("a tape that recorded the parameter still differentiates at the old value", function()
    local w = mg.Variable(h.f32 { 1.0, 2.0 })
    local m, v = mg.Variable(mg.zeros { 2 }), mg.Variable(mg.zeros { 2 })
    local tape = mg.GradientTape { persistent = true }
    local loss = mg.sum(mg.square(w))
    tape:stop()
    mg.raw.adam_update({ w, m, v, h.f32 { 1.0, 1.0 }, 0.1, 0 })
    assert.is_true(mg.max(mg.abs(w - h.f32 { 1.0, 2.0 })):item() > 0.05)
    h.near(tape:gradient(loss, { w })[1], { 2, 4 }, 1e-6)
  end)

  it("staged: reads before the step see the old value, reads after it the new one", function()
    local w = mg.Variable(h.f32 { 1.0, 2.0 })
    local f = mg.func(function(g)
      local before = w * 2       -- still needed after the step: the step must not write under it
      mg.raw.sgd_update({ w, g, 1 })
      local after = w * 1
      return before + after, before
    end)
    for k = 1, 3 do
      local both, before = f(h.f32 { 1.0, 1.0 })
      h.near(before, { 2 * (2 - k), 2 * (3 - k) }, 1e-6)
      h.near(both, { 2 * (2 - k) + (1 - k), 2 * (3 - k) + (2 - k) }, 1e-6)
    end
    h.near(w, { -2, -1 }, 1e-6)
  end)

  it("staged: a step is kept even when its result is unused, and runs once per call", function()
    local w = mg.Variable(mg.zeros { 3 })
    local acc = mg.Variable(mg.zeros { 3 })
    local f = mg.func(function(g) mg.raw.adagrad_update(w, acc, g, 1) end)
    f(mg.ones { 3 })
    f(mg.ones { 3 })
    h.near(acc, { 2, 2, 2 }, 1e-6)
  end)

  it("a Variable's result of the step can be read while a slot is shared", function()
    local w, m = mg.Variable(h.f32 { 1.0 }), mg.Variable(h.f32 { 1.0 })
    local held = m:read()  -- the slot's buffer is shared: the step writes a fresh one
    mg.raw.sgd_update({ w, m, h.f32 { 0.0 }, 1 }, { momentum = 0.5 })
    h.near(m, { 0.5 }, 1e-7)
    h.near(w, { 1.5 }, 1e-7)
    h.near(held, { 1 }, 1e-7)
  end)
end)

describe("fused steps reject bad input", function()
  local w = mg.Variable(mg.zeros { 2, 2 })
  local m, v = mg.Variable(mg.zeros { 2, 2 }), mg.Variable(mg.zeros { 2, 2 })
  local g = mg.ones { 2, 2 }

  it("a plain tensor as the parameter", function()
    h.fails(function() mg.raw.sgd_update({ mg.zeros { 2, 2 }, g, 0.1 }) end, "sgd_update", "input 1 (var)",
      "must be a Variable")
  end)
  it("a computed value as the parameter while staging", function()
    local f = mg.func(function(x) mg.raw.sgd_update({ w * 1, x, 0.1 }) end)
    h.fails(function() f(g) end, "sgd_update", "input 1 (var)", "must be a Variable")
  end)
  it("the wrong number of inputs for the options", function()
    h.fails(function() mg.raw.sgd_update({ w, g, 0.1 }, { momentum = 0.9 }) end, "sgd_update", "takes 4 inputs",
      "{var, momentum, g, lr}", "got 3")
    h.fails(function() mg.raw.adam_update({ w, m, v, g, 0.1, 0 }, { amsgrad = true }) end, "adam_update",
      "takes 7 inputs", "vhat")
  end)
  it("shapes and dtypes", function()
    h.fails(function() mg.raw.adam_update({ w, m, v, mg.ones { 4 }, 0.1, 0 }) end, "adam_update", "input 4 (g)",
      "(4)", "(2,2)")
    h.fails(function() mg.raw.adam_update({ w, m, v, mg.ones({ 2, 2 }, "float64"), 0.1, 0 }) end, "adam_update",
      "input 4 (g)", "float64", "float32")
    local wi = mg.Variable(mg.zeros({ 2 }, "int32"))
    h.fails(function() mg.raw.sgd_update({ wi, mg.zeros({ 2 }, "int32"), 1 }) end, "sgd_update", "float32 or float64",
      "int32")
    h.fails(function() mg.raw.adam_update({ w, m, v, g, mg.ones { 2 }, 0 }) end, "adam_update", "input 5 (alpha)",
      "one number")
  end)
  it("the same Variable twice", function()
    h.fails(function() mg.raw.adam_update({ w, m, m, g, 0.1, 0 }) end, "adam_update", "inputs 2 (m) and 3 (v)",
      "same Variable")
  end)
  it("options out of range", function()
    h.fails(function() mg.raw.adam_update({ w, m, v, g, 0.1, 0 }, { beta_1 = 1 }) end, "adam_update", "beta_1")
    h.fails(function() mg.raw.rmsprop_update({ w, m, g, 0.1 }, { epsilon = -1 }) end, "rmsprop_update", "epsilon")
    h.fails(function() mg.raw.sgd_update({ w, m, g, 0.1 }, { momentum = 2 }) end, "sgd_update", "momentum")
  end)
  it("a failed step leaves the Variables as they were", function()
    pcall(mg.raw.adam_update, { w, m, v, mg.ones { 4 }, 0.1, 0 })
    h.near(w, { { 0, 0 }, { 0, 0 } }, 0)
  end)
end)
