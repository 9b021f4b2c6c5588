-- moongrad.optim.sgd: SGD with optional (Nesterov) momentum, Keras 3's
-- update: m = momentum*m - lr*g; var += m (Nesterov: var += momentum*m - lr*g).
-- Each parameter's step is one mg.raw.sgd_update (one pass, in place).
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Optimizer = require("moongrad.optim.optimizer")

--- mg.optim.SGD{learning_rate=0.01, momentum=0, nesterov=false, weight_decay=nil, clipnorm=nil, clipvalue=nil}
--- Stochastic gradient descent, with momentum (and Nesterov's form) when momentum > 0.
--- Example:
---   local opt = mg.optim.SGD{learning_rate = 0.1, momentum = 0.9}
local SGD = Optimizer:extend("SGD")

function SGD:__init(cfg)
  local c = self:_configure(cfg, { learning_rate = 0.01, momentum = 0.0, nesterov = false },
    { momentum = { "number", min = 0, max = 1 }, nesterov = "boolean" })
  self.momentum, self.nesterov = c.momentum, c.nesterov and true or false
end

function SGD:_create_slots(v)
  if self.momentum ~= 0 then self:add_slot(v, "momentum") end
end

function SGD:_update(v, g, lr)
  if self.momentum == 0 then
    mg.raw.sgd_update({ v, g, lr })
    return
  end
  mg.raw.sgd_update({ v, self:slot(v, "momentum"), g, lr }, { momentum = self.momentum, nesterov = self.nesterov })
end

return SGD
