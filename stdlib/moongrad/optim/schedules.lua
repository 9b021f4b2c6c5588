-- moongrad.optim.schedules: learning-rate schedules (Keras's
-- ExponentialDecay, CosineDecay, PiecewiseConstantDecay, InverseTimeDecay).
--
-- A schedule is called with the optimizer's step (a float tensor, inside a
-- staged train step a graph value) and returns the learning rate as a
-- tensor, so a schedule costs no retracing. Called with a Lua number it
-- returns a Lua number. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local class = require("moongrad.nn.class")
local options = require("moongrad.options")

local M = {}

--- mg.optim.schedules.LearningRateSchedule: the base class of schedules; schedule(step) is the learning rate at step.
local Schedule = class.Object:extend("LearningRateSchedule")
class.set_noun(Schedule, "schedule")
M.LearningRateSchedule = Schedule

--- schedule:compute(step) -> the learning rate at step (a float tensor), what calling the
--- schedule, schedule(step), returns. A custom schedule (LearningRateSchedule:extend("Mine")) defines it.
function Schedule:compute(step)
  error(tostring(self.class_name) .. ": a schedule must define compute(step) (step " .. tostring(step) .. ")", 2)
end

function Schedule:__call(step)
  if type(step) == "number" then
    return self:compute(mg.tensor(step, "float64")):item()
  end
  if step.dtype ~= "float32" and step.dtype ~= "float64" then step = mg.cast(step, "float32") end
  return self:compute(step)
end

--- schedule:get_config() -> a table of the constructor options.
function Schedule:get_config() return self.config end

-- A schedule class: its options' rules (moongrad.options), the required
-- ones, and `validate(c)` for what relates several options.
local function define(name, defaults, required, spec, compute, validate)
  local cls = Schedule:extend(name)
  spec.name = "string"
  function cls:__init(cfg)
    cfg = options.check(name, cfg, spec)
    local c = {}
    for k, v in pairs(defaults) do c[k] = v end
    for k, v in pairs(cfg) do c[k] = v end
    for _, k in ipairs(required) do
      if c[k] == nil then options.raise(name .. ": " .. k .. " is required") end
    end
    if validate then
      local why = validate(c)
      if why then options.raise(name .. ": " .. why) end
    end
    self.config = c
  end
  cls.compute = compute
  M[name] = cls
  return cls
end

local LR = { "number", min = 0 }
local STEPS = { "number", above = 0 }

-- initial_learning_rate * decay_rate ^ (step / decay_steps)
define("ExponentialDecay", { staircase = false }, { "initial_learning_rate", "decay_steps", "decay_rate" },
  { initial_learning_rate = LR, decay_steps = STEPS, decay_rate = { "number", above = 0 }, staircase = "boolean" },
  function(self, step)
    local c = self.config
    local p = step / c.decay_steps
    if c.staircase then p = mg.floor(p) end
    return mg.pow(mg.full({}, c.decay_rate, step.dtype), p) * c.initial_learning_rate
  end)

-- initial_learning_rate / (1 + decay_rate * step / decay_steps)
define("InverseTimeDecay", { staircase = false }, { "initial_learning_rate", "decay_steps", "decay_rate" },
  { initial_learning_rate = LR, decay_steps = STEPS, decay_rate = { "number", min = 0 }, staircase = "boolean" },
  function(self, step)
    local c = self.config
    local p = step / c.decay_steps
    if c.staircase then p = mg.floor(p) end
    return c.initial_learning_rate / (p * c.decay_rate + 1)
  end)

-- cosine from initial_learning_rate down to alpha * initial over decay_steps,
-- after an optional linear warmup to warmup_target over warmup_steps.
define("CosineDecay", { alpha = 0, warmup_steps = 0 }, { "initial_learning_rate", "decay_steps" },
  { initial_learning_rate = LR, decay_steps = STEPS, alpha = { "number", min = 0, max = 1 }, warmup_target = LR,
    warmup_steps = { "number", min = 0 } },
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
local function numbers(v, what)
  for i, x in ipairs(v) do
    if type(x) ~= "number" or x ~= x then return string.format("%s[%d] must be a number, got %s", what, i,
      options.show(x)) end
  end
end
--- mg.optim.PiecewiseConstantDecay{boundaries={...}, values={...}}: values[i] up to boundaries[i], the last value after.
define("PiecewiseConstantDecay", {}, { "boundaries", "values" }, { boundaries = "table", values = "table" },
  function(self, step)
  local b, v = self.config.boundaries, self.config.values
  local out = mg.full({}, v[#v], step.dtype)
  for i = #b, 1, -1 do
    out = mg.where(mg.less_equal(step, b[i]), v[i], out)
  end
  return out
end, function(c)
  local b, v = c.boundaries, c.values
  local why = numbers(b, "boundaries") or numbers(v, "values")
  if why then return why end
  if #v ~= #b + 1 then
    return string.format("values needs one more entry than boundaries, got %d values and %d boundaries", #v, #b)
  end
  for i = 2, #b do
    if b[i] <= b[i - 1] then return "boundaries must be increasing, got " .. b[i - 1] .. " then " .. b[i] end
  end
end)

-- (initial - end) * (1 - p)^power + end, p = min(step, decay_steps) / decay_steps; with cycle,
-- decay_steps grows to the first multiple of itself at or above step (Keras 3's).
--- mg.optim.PolynomialDecay{initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1, cycle=false}
--- A polynomial from initial_learning_rate down to end_learning_rate over decay_steps (cycle: restart
--- with decay_steps doubled, tripled, ... instead of staying at the end rate).
--- Example:
---   local s = mg.optim.PolynomialDecay{initial_learning_rate = 0.1, decay_steps = 10, end_learning_rate = 0.01}
---   print(s(5))   --> 0.055
define("PolynomialDecay", { end_learning_rate = 0.0001, power = 1.0, cycle = false },
  { "initial_learning_rate", "decay_steps" },
  { initial_learning_rate = LR, decay_steps = STEPS, end_learning_rate = LR, power = { "number", min = 0 },
    cycle = "boolean" },
  function(self, step)
    local c = self.config
    local steps = mg.full({}, c.decay_steps, step.dtype)
    if c.cycle then
      local mult = mg.where(mg.equal(step, 0), 1.0, mg.ceil(step / c.decay_steps))
      steps = steps * mult
    else
      step = mg.minimum(step, c.decay_steps)
    end
    local p = step / steps
    return mg.pow(1 - p, c.power) * (c.initial_learning_rate - c.end_learning_rate) + c.end_learning_rate
  end)

-- SGDR (Loshchilov and Hutter): cosine decays restarting after first_decay_steps, each period t_mul
-- times the last and its peak m_mul times the last; alpha is the floor as a fraction (Keras 3's).
--- mg.optim.CosineDecayRestarts{initial_learning_rate, first_decay_steps, t_mul=2, m_mul=1, alpha=0}
--- Cosine decay with warm restarts: the rate falls along a cosine over first_decay_steps, jumps back
--- (to m_mul times the last peak) and falls again over a period t_mul times longer.
--- Example:
---   local s = mg.optim.CosineDecayRestarts{initial_learning_rate = 1.0, first_decay_steps = 10}
---   print(s(5), s(10))   --> 0.5	1.0
define("CosineDecayRestarts", { t_mul = 2.0, m_mul = 1.0, alpha = 0.0 }, { "initial_learning_rate", "first_decay_steps" },
  { initial_learning_rate = LR, first_decay_steps = STEPS, t_mul = { "number", above = 0 },
    m_mul = { "number", min = 0 }, alpha = { "number", min = 0, max = 1 } },
  function(self, step)
    local c = self.config
    local frac = step / c.first_decay_steps
    local i_restart
    if c.t_mul == 1 then
      i_restart = mg.floor(frac)
      frac = frac - i_restart
    else
      -- the period index from the geometric series sum_{k<i} t_mul^k <= frac
      i_restart = mg.floor(mg.log(1 - frac * (1 - c.t_mul)) / math.log(c.t_mul))
      local tm = mg.full({}, c.t_mul, step.dtype)
      local sum_r = (1 - mg.pow(tm, i_restart)) / (1 - c.t_mul)
      frac = (frac - sum_r) / mg.pow(tm, i_restart)
    end
    local m_fac = mg.pow(mg.full({}, c.m_mul, step.dtype), i_restart)
    local cosine = m_fac * (mg.cos(frac * math.pi) + 1) * 0.5
    return (cosine * (1 - c.alpha) + c.alpha) * c.initial_learning_rate
  end)

--- mg.optim.schedules.is_schedule(x) -> whether x is a LearningRateSchedule.
M.is_schedule = function(x) return class.isinstance(x, Schedule) end

return M
