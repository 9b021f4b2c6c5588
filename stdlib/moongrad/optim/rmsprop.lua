-- moongrad.optim.rmsprop: RMSprop and Adagrad (Keras 3's updates).
-- RMSprop: v = rho*v + (1-rho)*g^2; var -= lr*g / sqrt(v + eps) (centered
-- subtracts the squared running mean of g; momentum accumulates the step).
-- Adagrad: acc += g^2; var -= lr*g / sqrt(acc + eps).
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Optimizer = require("moongrad.optim.optimizer")

local M = {}

local RMSprop = Optimizer:extend("RMSprop")
M.RMSprop = RMSprop

function RMSprop:__init(cfg)
  local c = self:_configure(cfg, { learning_rate = 0.001, rho = 0.9, momentum = 0.0, epsilon = 1e-7,
    centered = false })
  self.rho, self.momentum, self.epsilon, self.centered = c.rho, c.momentum, c.epsilon, c.centered
end

function RMSprop:_create_slots(v)
  self:add_slot(v, "velocity")
  if self.momentum ~= 0 then self:add_slot(v, "momentum") end
  if self.centered then self:add_slot(v, "average_gradient") end
end

function RMSprop:_update(var, g, lr)
  local vel = self:slot(var, "velocity")
  local rho = self.rho
  local vn = vel * rho + mg.square(g) * (1 - rho)
  vel:assign(vn)
  local denom
  if self.centered then
    local ag = self:slot(var, "average_gradient")
    local an = ag * rho + g * (1 - rho)
    ag:assign(an)
    denom = vn - mg.square(an) + self.epsilon
  else
    denom = vn + self.epsilon
  end
  local inc = g * lr / mg.sqrt(denom)
  if self.momentum ~= 0 then
    local m = self:slot(var, "momentum")
    local mn = m * self.momentum + inc
    m:assign(mn)
    var:assign_sub(mn)
  else
    var:assign_sub(inc)
  end
end

local Adagrad = Optimizer:extend("Adagrad")
M.Adagrad = Adagrad

function Adagrad:__init(cfg)
  local c = self:_configure(cfg, { learning_rate = 0.001, initial_accumulator_value = 0.1, epsilon = 1e-7 })
  self.initial_accumulator_value, self.epsilon = c.initial_accumulator_value, c.epsilon
end

function Adagrad:_create_slots(v)
  self:add_slot(v, "accumulator", mg.full(v.shape, self.initial_accumulator_value, v.dtype))
end

function Adagrad:_update(var, g, lr)
  local acc = self:slot(var, "accumulator")
  local an = acc + mg.square(g)
  acc:assign(an)
  var:assign_sub(g * lr / mg.sqrt(an + self.epsilon))
end

return M
