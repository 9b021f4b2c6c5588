-- moongrad.optim.sgd: SGD with optional (Nesterov) momentum, Keras 3's
-- update: m = momentum*m - lr*g; var += m (Nesterov: var += momentum*m - lr*g).
-- Portable Lua (5.4 and LuaJIT).
local Optimizer = require("moongrad.optim.optimizer")

local SGD = Optimizer:extend("SGD")

function SGD:__init(cfg)
  local c = self:_configure(cfg, { learning_rate = 0.01, momentum = 0.0, nesterov = false })
  if c.momentum < 0 or c.momentum > 1 then error("SGD: momentum must be in [0, 1], got " .. tostring(c.momentum), 3) end
  self.momentum, self.nesterov = c.momentum, c.nesterov and true or false
end

function SGD:_create_slots(v)
  if self.momentum ~= 0 then self:add_slot(v, "momentum") end
end

function SGD:_update(v, g, lr)
  if self.momentum == 0 then
    v:assign_sub(g * lr)
    return
  end
  local m = self:slot(v, "momentum")
  local mn = m * self.momentum - g * lr
  m:assign(mn)
  if self.nesterov then
    v:assign_add(mn * self.momentum - g * lr)
  else
    v:assign_add(mn)
  end
end

return SGD
