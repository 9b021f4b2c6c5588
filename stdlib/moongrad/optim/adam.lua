-- moongrad.optim.adam: Adam and AdamW (decoupled weight decay), Keras's
-- form: alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) once per step,
-- then per parameter m += (g - m)(1 - beta_1), v += (g^2 - v)(1 - beta_2),
-- var -= alpha * m / (sqrt(v) + epsilon) (amsgrad keeps the running max of v).
-- Staged, each line is one fused elementwise pass. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Optimizer = require("moongrad.optim.optimizer")

local M = {}

local Adam = Optimizer:extend("Adam")
M.Adam = Adam

local DEFAULTS = { learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7, amsgrad = false }

function Adam:__init(cfg)
  local c = self:_configure(cfg, DEFAULTS)
  self.beta_1, self.beta_2, self.epsilon, self.amsgrad = c.beta_1, c.beta_2, c.epsilon, c.amsgrad
end

function Adam:_create_slots(v)
  self:add_slot(v, "m")
  self:add_slot(v, "v")
  if self.amsgrad then self:add_slot(v, "vhat") end
end

function Adam:_prepare(lr)
  local t = mg.cast(self.iterations + 1, "float32")
  local b1 = 1 - mg.pow(self.beta_1, t)
  local b2 = 1 - mg.pow(self.beta_2, t)
  return { alpha = lr * mg.sqrt(b2) / b1 }
end

function Adam:_update(var, g, _, step)
  local m, v = self:slot(var, "m"), self:slot(var, "v")
  local mn = m + (g - m) * (1 - self.beta_1)
  local vn = v + (mg.square(g) - v) * (1 - self.beta_2)
  m:assign(mn)
  v:assign(vn)
  if self.amsgrad then
    local vh = self:slot(var, "vhat")
    vn = mg.maximum(vh, vn)
    vh:assign(vn)
  end
  var:assign_sub(mn * step.alpha / (mg.sqrt(vn) + self.epsilon))
end

local AdamW = Adam:extend("AdamW")
M.AdamW = AdamW

function AdamW:__init(cfg)
  local d = {}
  for k, v in pairs(DEFAULTS) do d[k] = v end
  d.weight_decay = 0.004
  local c = self:_configure(cfg, d)
  self.beta_1, self.beta_2, self.epsilon, self.amsgrad = c.beta_1, c.beta_2, c.epsilon, c.amsgrad
end

return M
