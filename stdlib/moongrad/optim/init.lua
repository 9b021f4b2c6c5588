-- moongrad.optim (mg.optim): optimizers and learning-rate schedules.
--   mg.optim.SGD{learning_rate=0.01, momentum=0.9, nesterov=true}
--   mg.optim.Adam{learning_rate=1e-3}, AdamW, RMSprop, Adagrad, Nadam, Adamax, Adadelta, Ftrl,
--   Lion, Adafactor (every one takes use_ema=true, Keras 3's moving average of the weights)
--   mg.optim.schedules.ExponentialDecay{...}, CosineDecay, PiecewiseConstantDecay, InverseTimeDecay,
--   PolynomialDecay, CosineDecayRestarts
-- get("adam") makes one by name, as compile{optimizer="adam"} does.
-- Portable Lua (5.4 and LuaJIT).
local class = require("moongrad.nn.class")

local M = {}

M.Optimizer = require("moongrad.optim.optimizer")
M.SGD = require("moongrad.optim.sgd")
local adam = require("moongrad.optim.adam")
M.Adam, M.AdamW = adam.Adam, adam.AdamW
local rms = require("moongrad.optim.rmsprop")
M.RMSprop, M.Adagrad = rms.RMSprop, rms.Adagrad
local adaptive = require("moongrad.optim.adaptive")
for _, k in ipairs({ "Nadam", "Adamax", "Adadelta", "Ftrl", "Lion", "Adafactor" }) do M[k] = adaptive[k] end
M.LossScaleOptimizer = require("moongrad.optim.loss_scale")  -- dtypes section: float16 loss scaling
M.schedules = require("moongrad.optim.schedules")
for k, v in pairs(M.schedules) do
  if type(v) == "table" and k ~= "LearningRateSchedule" then M[k] = v end
end

local by_name = { sgd = M.SGD, adam = M.Adam, adamw = M.AdamW, rmsprop = M.RMSprop, adagrad = M.Adagrad,
  nadam = M.Nadam, adamax = M.Adamax, adadelta = M.Adadelta, ftrl = M.Ftrl, lion = M.Lion, adafactor = M.Adafactor,
  lossscaleoptimizer = M.LossScaleOptimizer }

-- get(id): an optimizer from a name ("adam", "sgd", ...), a
-- {class_name=, config=} table, or the optimizer itself.
function M.get(id)
  if class.isinstance(id, M.Optimizer) then return id end
  if type(id) == "string" then
    local cls = by_name[id:lower()]
    if not cls then error("unknown optimizer '" .. id .. "' (sgd, adam, adamw, rmsprop, adagrad, nadam, adamax, adadelta, ftrl, lion, adafactor)", 3) end
    return cls()
  end
  if type(id) == "table" and id.class_name then
    local cls = by_name[id.class_name:lower()]
    if not cls then error("unknown optimizer class '" .. tostring(id.class_name) .. "'", 3) end
    return cls(id.config)
  end
  error("an optimizer must be a name or an optimizer, got " .. type(id), 3)
end

return M
