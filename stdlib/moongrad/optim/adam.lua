-- moongrad.optim.adam: Adam and AdamW (decoupled weight decay), Keras's
-- form: alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) once per step,
-- then per parameter m += (g - m)(1 - beta_1), v += (g^2 - v)(1 - beta_2),
-- var -= alpha * m / (sqrt(v) + epsilon) (amsgrad keeps the running max of v).
-- Each parameter's step is one mg.raw.adam_update: a single pass that updates the
-- parameter and its slots in place, with AdamW's decoupled decay folded in
-- (var -= lr * weight_decay * var, from the old var). Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Optimizer = require("moongrad.optim.optimizer")

local M = {}

--- mg.optim.Adam{learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=false, weight_decay=nil, clipnorm=nil, clipvalue=nil}
--- Adam (Kingma and Ba), Keras's form; learning_rate may be a schedule
--- (mg.optim.schedules). Each parameter's step is one fused pass.
--- Example:
---   local opt = mg.optim.Adam{learning_rate = 1e-2}
---   local w = mg.Variable(mg.ones{2})
---   opt:apply_gradients{{mg.tensor{1.0, 1.0}, w}}
local Adam = Optimizer:extend("Adam")
M.Adam = Adam

local DEFAULTS = { learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7, amsgrad = false }
local SPEC = { beta_1 = { "number", min = 0, below = 1 }, beta_2 = { "number", min = 0, below = 1 },
  epsilon = { "number", min = 0 }, amsgrad = "boolean" }

function Adam:__init(cfg)
  local c = self:_configure(cfg, DEFAULTS, SPEC)
  self.beta_1, self.beta_2, self.epsilon, self.amsgrad = c.beta_1, c.beta_2, c.epsilon, c.amsgrad
end

function Adam:_create_slots(v)
  self:add_slot(v, "m")
  self:add_slot(v, "v")
  if self.amsgrad then self:add_slot(v, "vhat") end
end

-- The base class leaves the decoupled weight decay to _update (see decay below).
Adam._fused_weight_decay = true

function Adam:_prepare(lr)
  local t = mg.cast(self.iterations + 1, "float64")
  local b1 = 1 - mg.pow(self.beta_1, t)
  local b2 = 1 - mg.pow(self.beta_2, t)
  local wd = self.weight_decay
  local decay = 0
  if wd and wd ~= 0 and self.decoupled_weight_decay ~= false then decay = lr * wd end
  return { alpha = lr * mg.sqrt(b2) / b1, decay = decay,
    opts = { beta_1 = self.beta_1, beta_2 = self.beta_2, epsilon = self.epsilon, amsgrad = self.amsgrad and true or false } }
end

function Adam:_update(var, g, _, step)
  local m, v = self:slot(var, "m"), self:slot(var, "v")
  if self.amsgrad then
    mg.raw.adam_update({ var, m, v, self:slot(var, "vhat"), g, step.alpha, step.decay }, step.opts)
  else
    mg.raw.adam_update({ var, m, v, g, step.alpha, step.decay }, step.opts)
  end
end

--- mg.optim.AdamW{learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=false}
--- Adam with decoupled weight decay (var -= lr * weight_decay * var each step).
local AdamW = Adam:extend("AdamW")
M.AdamW = AdamW

function AdamW:__init(cfg)
  local d = {}
  for k, v in pairs(DEFAULTS) do d[k] = v end
  d.weight_decay = 0.004
  local c = self:_configure(cfg, d, SPEC)
  self.beta_1, self.beta_2, self.epsilon, self.amsgrad = c.beta_1, c.beta_2, c.epsilon, c.amsgrad
end

return M
