-- moongrad.optim.schedules: learning-rate schedules (Keras's
-- ExponentialDecay, CosineDecay, PiecewiseConstantDecay, InverseTimeDecay).
--
-- A schedule is called with the optimizer's step (a float tensor, inside a
-- staged train step a graph value) and returns the learning rate as a
-- tensor, so a schedule costs no retracing. Called with a Lua number it
-- returns a Lua number. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local class = require("moongrad.nn.class")

local M = {}

local Schedule = class.Object:extend("LearningRateSchedule")
M.LearningRateSchedule = Schedule

function Schedule:__call(step)
  if type(step) == "number" then
    return self:compute(mg.tensor(step, "float64")):item()
  end
  if step.dtype ~= "float32" and step.dtype ~= "float64" then step = mg.cast(step, "float32") end
  return self:compute(step)
end

function Schedule:get_config() return self.config end

local function define(name, defaults, required, compute)
  local cls = Schedule:extend(name)
  function cls:__init(cfg)
    cfg = cfg or {}
    local c = {}
    for k, v in pairs(defaults) do c[k] = v end
    for k, v in pairs(cfg) do c[k] = v end
    for _, k in ipairs(required) do
      if c[k] == nil then error(name .. ": " .. k .. " is required", 3) end
    end
    self.config = c
  end
  cls.compute = compute
  M[name] = cls
  return cls
end

-- initial_learning_rate * decay_rate ^ (step / decay_steps)
define("ExponentialDecay", { staircase = false }, { "initial_learning_rate", "decay_steps", "decay_rate" },
  function(self, step)
    local c = self.config
    local p = step / c.decay_steps
    if c.staircase then p = mg.floor(p) end
    return mg.pow(mg.full({}, c.decay_rate, step.dtype), p) * c.initial_learning_rate
  end)

-- initial_learning_rate / (1 + decay_rate * step / decay_steps)
define("InverseTimeDecay", { staircase = false }, { "initial_learning_rate", "decay_steps", "decay_rate" },
  function(self, step)
    local c = self.config
    local p = step / c.decay_steps
    if c.staircase then p = mg.floor(p) end
    return c.initial_learning_rate / (p * c.decay_rate + 1)
  end)

-- cosine from initial_learning_rate down to alpha * initial over decay_steps,
-- after an optional linear warmup to warmup_target over warmup_steps.
define("CosineDecay", { alpha = 0, warmup_steps = 0 }, { "initial_learning_rate", "decay_steps" },
  function(self, step)
    local c = self.config
    local lr0 = c.warmup_target or c.initial_learning_rate
    local s = mg.clip(step - c.warmup_steps, 0, c.decay_steps)
    local cosine = (mg.cos(s * (math.pi / c.decay_steps)) + 1) * 0.5
    local decayed = (cosine * (1 - c.alpha) + c.alpha) * lr0
    if c.warmup_target and c.warmup_steps > 0 then
      local warm = step * ((c.warmup_target - c.initial_learning_rate) / c.warmup_steps) + c.initial_learning_rate
      return mg.where(mg.less(step, c.warmup_steps), warm, decayed)
    end
    return decayed
  end)

-- values[1] while step <= boundaries[1], values[2] up to boundaries[2], ...
define("PiecewiseConstantDecay", {}, { "boundaries", "values" }, function(self, step)
  local b, v = self.config.boundaries, self.config.values
  if #v ~= #b + 1 then error("PiecewiseConstantDecay: values needs one more entry than boundaries", 3) end
  local out = mg.full({}, v[#v], step.dtype)
  for i = #b, 1, -1 do
    out = mg.where(mg.less_equal(step, b[i]), v[i], out)
  end
  return out
end)

M.is_schedule = function(x) return class.isinstance(x, Schedule) end

return M
