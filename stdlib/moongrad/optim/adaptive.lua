-- moongrad.optim.adaptive: Nadam, Adamax, Adadelta, Ftrl, Lion and Adafactor, Keras 3's updates
-- with its option names and defaults.
--
-- None of these maps onto the fused kernels of core/kernels/optim.c (Adam's one-pass update
-- has no Nesterov term, no infinity norm, no sign, no factored second moment), so each step is
-- a composition of elementwise ops: eagerly a few passes per parameter; inside a staged train
-- step (mg.func, fit) the graph optimiser fuses the elementwise chain. Every new slot value is
-- computed once and both assigned and reused, so eager and staged runs read the same values.
-- Per-step scalars (bias corrections, Nadam's momentum product) are computed once per step in
-- _prepare from the iterations Variable, so nothing retraces as the step count grows; they are
-- float64 (cast to each parameter's dtype at use), so float64 parameters keep float64 precision.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Optimizer = require("moongrad.optim.optimizer")

local M = {}

-- The step count t = iterations + 1 as a float tensor.
local function local_step(self, plus)
  return mg.cast(self.iterations + (plus or 1), "float64")
end

-- a scalar tensor in the parameter's dtype (float64 parameters stay float64)
local function as(x, v)
  if mg.is_tensor(x) and x.dtype ~= v.dtype then return mg.cast(x, v.dtype) end
  return x
end

local BETA = { "number", min = 0, below = 1 }
local EPSILON = { "number", min = 0 }

-- ---- Nadam ------------------------------------------------------------------------------------

--- mg.optim.Nadam{learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7}
--- Adam with Nesterov momentum (Dozat), Keras 3's form: the momentum factor of step t is
--- u_t = beta_1 * (1 - 0.5 * 0.96^t), and the running product of the u_t corrects the bias.
--- Example:
---   local opt = mg.optim.Nadam{learning_rate = 1e-2}
---   local w = mg.Variable(mg.tensor{1.0})
---   opt:apply_gradients{{mg.tensor{0.5}, w}}
local Nadam = Optimizer:extend("Nadam")
M.Nadam = Nadam

function Nadam:__init(cfg)
  local c = self:_configure(cfg, { learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7 },
    { beta_1 = BETA, beta_2 = BETA, epsilon = EPSILON })
  self.beta_1, self.beta_2, self.epsilon = c.beta_1, c.beta_2, c.epsilon
  -- prod of u_1..u_t, kept across steps (Keras's _u_product)
  rawset(self, "_u_product", self:add_state("u_product", mg.tensor(1.0, "float64")))
end

function Nadam:_create_slots(v)
  self:add_slot(v, "momentum")
  self:add_slot(v, "velocity")
end

function Nadam:_prepare()
  local t, t1 = local_step(self, 1), local_step(self, 2)
  local b1 = self.beta_1
  local u_t = (1 - mg.pow(0.96, t) * 0.5) * b1
  local u_t1 = (1 - mg.pow(0.96, t1) * 0.5) * b1
  local up = rawget(self, "_u_product") * u_t
  rawget(self, "_u_product"):assign(up)
  -- the per-step factors of m_hat = c_m * m + c_g * g and v_hat = v * c_v, once for all parameters
  return { c_m = u_t1 / (1 - up * u_t1), c_g = (1 - u_t) / (1 - up), c_v = 1 / (1 - mg.pow(self.beta_2, t)) }
end

function Nadam:_update(var, g, lr, s)
  local m, v = self:slot(var, "momentum"), self:slot(var, "velocity")
  local m1 = m + (g - m) * (1 - self.beta_1)
  local v1 = v + (mg.square(g) - v) * (1 - self.beta_2)
  m:assign(m1)
  v:assign(v1)
  local m_hat = m1 * as(s.c_m, var) + g * as(s.c_g, var)
  local v_hat = v1 * as(s.c_v, var)
  var:assign_sub(m_hat * as(lr, var) / (mg.sqrt(v_hat) + self.epsilon))
end

-- ---- Adamax -----------------------------------------------------------------------------------

--- mg.optim.Adamax{learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7}
--- Adam's infinity-norm variant: u = max(beta_2 * u, |g|), var -= lr * m / ((1 - beta_1^t) * (u + epsilon)).
--- Example:
---   local opt = mg.optim.Adamax{learning_rate = 1e-2}
local Adamax = Optimizer:extend("Adamax")
M.Adamax = Adamax

function Adamax:__init(cfg)
  local c = self:_configure(cfg, { learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7 },
    { beta_1 = BETA, beta_2 = BETA, epsilon = EPSILON })
  self.beta_1, self.beta_2, self.epsilon = c.beta_1, c.beta_2, c.epsilon
end

function Adamax:_create_slots(v)
  self:add_slot(v, "m")
  self:add_slot(v, "u")
end

function Adamax:_prepare(lr)
  return { alpha = lr / (1 - mg.pow(self.beta_1, local_step(self))) }
end

function Adamax:_update(var, g, _, s)
  local m, u = self:slot(var, "m"), self:slot(var, "u")
  local m1 = m + (g - m) * (1 - self.beta_1)
  local u1 = mg.maximum(u * self.beta_2, mg.abs(g))
  m:assign(m1)
  u:assign(u1)
  var:assign_sub(m1 * as(s.alpha, var) / (u1 + self.epsilon))
end

-- ---- Adadelta ---------------------------------------------------------------------------------

--- mg.optim.Adadelta{learning_rate=0.001, rho=0.95, epsilon=1e-7}
--- Adadelta (Zeiler): the step is g scaled by rms(past steps) / rms(past gradients), times learning_rate.
--- Example:
---   local opt = mg.optim.Adadelta{learning_rate = 1.0}
local Adadelta = Optimizer:extend("Adadelta")
M.Adadelta = Adadelta

function Adadelta:__init(cfg)
  local c = self:_configure(cfg, { learning_rate = 0.001, rho = 0.95, epsilon = 1e-7 },
    { rho = { "number", min = 0, max = 1 }, epsilon = EPSILON })
  self.rho, self.epsilon = c.rho, c.epsilon
end

function Adadelta:_create_slots(v)
  self:add_slot(v, "accumulated_grad")
  self:add_slot(v, "accumulated_delta_var")
end

function Adadelta:_update(var, g, lr)
  local ag, ad = self:slot(var, "accumulated_grad"), self:slot(var, "accumulated_delta_var")
  local rho, eps = self.rho, self.epsilon
  local ag1 = ag * rho + mg.square(g) * (1 - rho)
  local delta = -(mg.sqrt(ad + eps) * g) / mg.sqrt(ag1 + eps)
  ag:assign(ag1)
  ad:assign(ad * rho + mg.square(delta) * (1 - rho))
  var:assign_add(delta * as(lr, var))
end

-- ---- Ftrl -------------------------------------------------------------------------------------

--- mg.optim.Ftrl{learning_rate=0.001, learning_rate_power=-0.5, initial_accumulator_value=0.1, l1_regularization_strength=0, l2_regularization_strength=0, l2_shrinkage_regularization_strength=0, beta=0}
--- Follow The Regularized Leader (McMahan et al.), Keras 3's update: an accumulator of squared
--- gradients and a linear term; the weight is the closed-form minimiser, exactly zero where
--- |linear| <= l1_regularization_strength.
--- Example:
---   local opt = mg.optim.Ftrl{learning_rate = 0.1, l1_regularization_strength = 0.01}
local Ftrl = Optimizer:extend("Ftrl")
M.Ftrl = Ftrl

function Ftrl:__init(cfg)
  local c = self:_configure(cfg, { learning_rate = 0.001, learning_rate_power = -0.5, initial_accumulator_value = 0.1,
    l1_regularization_strength = 0.0, l2_regularization_strength = 0.0, l2_shrinkage_regularization_strength = 0.0,
    beta = 0.0 }, { learning_rate_power = { "number", max = 0 }, initial_accumulator_value = { "number", min = 0 },
    l1_regularization_strength = { "number", min = 0 }, l2_regularization_strength = { "number", min = 0 },
    l2_shrinkage_regularization_strength = { "number", min = 0 }, beta = { "number", min = 0 } })
  self.learning_rate_power, self.initial_accumulator_value = c.learning_rate_power, c.initial_accumulator_value
  self.l1_regularization_strength = c.l1_regularization_strength
  self.l2_regularization_strength = c.l2_regularization_strength
  self.l2_shrinkage_regularization_strength = c.l2_shrinkage_regularization_strength
  self.beta = c.beta
end

function Ftrl:_create_slots(v)
  self:add_slot(v, "accumulator", mg.full(v.shape, self.initial_accumulator_value, v.dtype))
  self:add_slot(v, "linear")
end

function Ftrl:_update(var, g, lr)
  local acc, lin = self:slot(var, "accumulator"), self:slot(var, "linear")
  lr = as(lr, var)
  local p = -self.learning_rate_power
  local l2 = lr * 0 + self.l2_regularization_strength
  if self.beta ~= 0 then l2 = l2 + self.beta / (lr * 2) end
  local g_shrunk = g
  if self.l2_shrinkage_regularization_strength ~= 0 then
    g_shrunk = g + var * (2 * self.l2_shrinkage_regularization_strength)
  end
  local acc1 = acc + mg.square(g)
  local acc1_p = mg.pow(acc1, p)
  local lin1 = lin + g_shrunk - (acc1_p - mg.pow(acc, p)) / lr * var
  local quadratic = acc1_p / lr + l2 * 2
  local l1 = self.l1_regularization_strength
  var:assign((mg.clip(lin1, -l1, l1) - lin1) / quadratic)
  lin:assign(lin1)
  acc:assign(acc1)
end

-- ---- Lion -------------------------------------------------------------------------------------

--- mg.optim.Lion{learning_rate=0.001, beta_1=0.9, beta_2=0.99}
--- Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms"): the step is
--- lr * sign(beta_1 * m + (1 - beta_1) * g), then m = beta_2 * m + (1 - beta_2) * g. Use a
--- learning rate 3-10x smaller than Adam's.
--- Example:
---   local opt = mg.optim.Lion{learning_rate = 1e-4}
local Lion = Optimizer:extend("Lion")
M.Lion = Lion

function Lion:__init(cfg)
  local c = self:_configure(cfg, { learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.99 },
    { beta_1 = { "number", above = 0, max = 1 }, beta_2 = { "number", min = 0, max = 1 } })
  self.beta_1, self.beta_2 = c.beta_1, c.beta_2
end

function Lion:_create_slots(v)
  self:add_slot(v, "momentum")
end

function Lion:_update(var, g, lr)
  local m = self:slot(var, "momentum")
  local b1, b2 = self.beta_1, self.beta_2
  var:assign_sub(mg.sign(m * b1 + g * (1 - b1)) * as(lr, var))
  m:assign(m * b2 + g * (1 - b2))
end

-- ---- Adafactor --------------------------------------------------------------------------------

--- mg.optim.Adafactor{learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=0.001, clip_threshold=1, relative_step=true}
--- Adafactor (Shazeer and Stern): a parameter of rank >= 2 keeps the row and column means of
--- its squared gradients (factored second moment) instead of a full copy; steps are scaled by
--- the parameter's RMS (at least epsilon_2) and clipped to RMS clip_threshold. Keras 3's form:
--- the rate is min(learning_rate, 1/sqrt(t)).
--- Example:
---   local opt = mg.optim.Adafactor{learning_rate = 1e-2}
local Adafactor = Optimizer:extend("Adafactor")
M.Adafactor = Adafactor

function Adafactor:__init(cfg)
  local c = self:_configure(cfg, { learning_rate = 0.001, beta_2_decay = -0.8, epsilon_1 = 1e-30, epsilon_2 = 1e-3,
    clip_threshold = 1.0, relative_step = true }, { beta_2_decay = { "number", max = 0 }, epsilon_1 = EPSILON,
    epsilon_2 = EPSILON, clip_threshold = { "number", above = 0 }, relative_step = "boolean" })
  self.beta_2_decay, self.epsilon_1, self.epsilon_2 = c.beta_2_decay, c.epsilon_1, c.epsilon_2
  self.clip_threshold, self.relative_step = c.clip_threshold, c.relative_step
end

-- Keras's slots: r (shape without the last axis) and c (without the second last) for a
-- parameter of rank >= 2, else a full velocity v. (Keras also makes scalar placeholders and a
-- velocity for every parameter; only the ones the update reads are kept here.)
function Adafactor:_create_slots(v)
  local shape = v.shape
  if #shape >= 2 then
    local r, c = {}, {}
    for i = 1, #shape - 1 do r[i] = shape[i] end
    for i = 1, #shape - 2 do c[i] = shape[i] end
    c[#c + 1] = shape[#shape]
    self:add_slot(v, "r", mg.zeros(r, v.dtype))
    self:add_slot(v, "c", mg.zeros(c, v.dtype))
  end
  self:add_slot(v, "velocity")
end

function Adafactor:_prepare(lr)
  local t = local_step(self)
  return { rho = mg.minimum(lr, mg.rsqrt(t)), beta_2 = 1 - mg.pow(t, self.beta_2_decay) }
end

local function rms(x) return mg.sqrt(mg.mean(mg.square(x))) end

function Adafactor:_update(var, g, _, s)
  local rho, b2 = as(s.rho, var), as(s.beta_2, var)
  local alpha = mg.maximum(rms(var), self.epsilon_2) * rho
  local g2 = mg.square(g) + self.epsilon_1
  local v = self:slot(var, "velocity")
  local v1
  if var.ndim >= 2 then
    local r, c = self:slot(var, "r"), self:slot(var, "c")
    local r1 = r * b2 + mg.mean(g2, -1) * (1 - b2)
    local c1 = c * b2 + mg.mean(g2, -2) * (1 - b2)
    r:assign(r1)
    c:assign(c1)
    v1 = mg.unsqueeze(r1 / mg.mean(r1, { axis = -1, keepdims = true }), -1) * mg.unsqueeze(c1, -2)
  else
    v1 = v * b2 + g2 * (1 - b2)
  end
  v:assign(v1)
  local u = g / mg.sqrt(v1)
  u = u / mg.maximum(rms(u) / self.clip_threshold, 1.0)
  var:assign_sub(u * alpha)
end

return M
