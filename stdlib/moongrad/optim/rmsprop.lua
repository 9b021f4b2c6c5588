-- moongrad.optim.rmsprop: RMSprop and Adagrad (Keras 3's updates).
-- RMSprop: v = rho*v + (1-rho)*g^2; var -= lr*g / sqrt(v + eps) (centered
-- subtracts the squared running mean of g; momentum accumulates the step).
-- Adagrad: acc += g^2; var -= lr*g / sqrt(acc + eps).
-- Each parameter's step is one mg.raw.rmsprop_update / mg.raw.adagrad_update (one
-- pass, in place). Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Optimizer = require("moongrad.optim.optimizer")

local M = {}

--- mg.optim.RMSprop{learning_rate=0.001, rho=0.9, momentum=0, epsilon=1e-7, centered=false}
--- RMSprop: each step divided by a running root mean square of the gradients.
--- Example:
---   local opt = mg.optim.RMSprop{learning_rate = 1e-3}
local RMSprop = Optimizer:extend("RMSprop")
M.RMSprop = RMSprop

function RMSprop:__init(cfg)
  local c = self:_configure(cfg, { learning_rate = 0.001, rho = 0.9, momentum = 0.0, epsilon = 1e-7,
    centered = false }, { rho = { "number", min = 0, max = 1 }, momentum = { "number", min = 0, max = 1 },
    epsilon = { "number", min = 0 }, centered = "boolean" })
  self.rho, self.momentum, self.epsilon, self.centered = c.rho, c.momentum, c.epsilon, c.centered
end

function RMSprop:_create_slots(v)
  self:add_slot(v, "velocity")
  if self.momentum ~= 0 then self:add_slot(v, "momentum") end
  if self.centered then self:add_slot(v, "average_gradient") end
end

function RMSprop:_update(var, g, lr)
  local inputs = { var, self:slot(var, "velocity") }
  if self.momentum ~= 0 then inputs[#inputs + 1] = self:slot(var, "momentum") end
  if self.centered then inputs[#inputs + 1] = self:slot(var, "average_gradient") end
  inputs[#inputs + 1] = g
  inputs[#inputs + 1] = lr
  mg.raw.rmsprop_update(inputs, { rho = self.rho, momentum = self.momentum, epsilon = self.epsilon,
    centered = self.centered and true or false })
end

--- mg.optim.Adagrad{learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7}
--- Adagrad: each parameter's step divided by the root of its summed squared gradients.
local Adagrad = Optimizer:extend("Adagrad")
M.Adagrad = Adagrad

function Adagrad:__init(cfg)
  local c = self:_configure(cfg, { learning_rate = 0.001, initial_accumulator_value = 0.1, epsilon = 1e-7 },
    { initial_accumulator_value = { "number", min = 0 }, epsilon = { "number", min = 0 } })
  self.initial_accumulator_value, self.epsilon = c.initial_accumulator_value, c.epsilon
end

function Adagrad:_create_slots(v)
  self:add_slot(v, "accumulator", mg.full(v.shape, self.initial_accumulator_value, v.dtype))
end

function Adagrad:_update(var, g, lr)
  mg.raw.adagrad_update(var, self:slot(var, "accumulator"), g, lr, { epsilon = self.epsilon })
end

return M
