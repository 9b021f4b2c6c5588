-- moongrad.optim.loss_scale: LossScaleOptimizer, dynamic loss scaling for
-- float16 training (Keras 3's keras.optimizers.LossScaleOptimizer).
--
-- float16 has a narrow range: small gradients of a float16 computation
-- underflow to 0. The loss is multiplied by a large scale before the
-- gradient (scale_loss; fit's train step calls it), and apply_gradients
-- divides the gradients by it again. When any gradient is not finite the
-- step is skipped and the scale halved; after `dynamic_growth_steps` finite
-- steps in a row it doubles. The scale and the step counter live in
-- Variables and the decision is an mg.cond, so a staged train step never
-- retraces and never reads a value back. bfloat16 has float32's range and
-- needs no scaling. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local class = require("moongrad.nn.class")
local options = require("moongrad.options")
local Optimizer = require("moongrad.optim.optimizer")

--- mg.optim.LossScaleOptimizer(inner_optimizer, {initial_scale=32768, dynamic_growth_steps=2000, name=})
--- Dynamic loss scaling around an optimizer (Keras 3's): scale_loss(loss) multiplies the loss
--- by the current scale, apply_gradients unscales the gradients and applies them only when all
--- are finite (else it halves the scale); after dynamic_growth_steps finite steps the scale
--- doubles. model:fit uses scale_loss by itself.
--- Example:
---   local w = mg.Variable(mg.tensor({2}, mg.float32))
---   local opt = mg.optim.LossScaleOptimizer(mg.optim.SGD{learning_rate = 0.1}, {initial_scale = 1024})
---   local tape = mg.GradientTape()
---   local loss = (w * w):sum()
---   local scaled = opt:scale_loss(loss)
---   tape:stop()
---   opt:apply_gradients(tape:gradient(scaled, {w}), {w})
---   print(w:item(), opt.dynamic_scale:item())   --> 1.6 1024
local LossScaleOptimizer = Optimizer:extend("LossScaleOptimizer")

local SPEC = {
  initial_scale = { "number", above = 0 },
  dynamic_growth_steps = { "integer", min = 1 },
  name = "string",
  dynamic = { "boolean", check = function(v)
    if v == false then return "must be true: only dynamic loss scaling is supported (Keras 3 has no fixed scale)" end
  end },
}

function LossScaleOptimizer:__init(inner, opts)
  -- from a saved config (get_config's table, as model:save writes it): {inner_optimizer = {class_name=, config=}, ...}
  if opts == nil and type(inner) == "table" and getmetatable(inner) == nil and inner.inner_optimizer then
    local cfg = {}
    for k, v in pairs(inner) do if k ~= "inner_optimizer" then cfg[k] = v end end
    inner, opts = require("moongrad.optim").get(inner.inner_optimizer), cfg
  end
  if not class.isinstance(inner, Optimizer) or class.isinstance(inner, LossScaleOptimizer) then
    options.raise("LossScaleOptimizer: inner_optimizer must be an optimizer (not a LossScaleOptimizer), got "
      .. options.show(inner))
  end
  opts = options.check("LossScaleOptimizer", opts, SPEC)
  rawset(self, "inner_optimizer", inner)
  rawset(self, "name", opts.name or "loss_scale_optimizer")
  rawset(self, "initial_scale", opts.initial_scale or 32768)
  rawset(self, "dynamic_growth_steps", opts.dynamic_growth_steps or 2000)
  rawset(self, "dynamic_scale", mg.Variable(mg.tensor(self.initial_scale, "float32"),
    { name = self.name .. "/dynamic_scale", trainable = false }))
  rawset(self, "step_counter", mg.Variable(mg.tensor(0, "int64"), { name = self.name .. "/step_counter",
    trainable = false }))
  rawset(self, "config", { initial_scale = self.initial_scale, dynamic_growth_steps = self.dynamic_growth_steps,
    name = self.name })
end

-- The inner optimizer's state and settings, seen through the wrapper.
LossScaleOptimizer.getters.iterations = function(self) return self.inner_optimizer.iterations end
LossScaleOptimizer.getters.learning_rate = function(self) return self.inner_optimizer.learning_rate end
LossScaleOptimizer.setters.learning_rate = function(self, v) self.inner_optimizer.learning_rate = v end
LossScaleOptimizer.getters.lr = LossScaleOptimizer.getters.learning_rate
LossScaleOptimizer.setters.lr = LossScaleOptimizer.setters.learning_rate
LossScaleOptimizer.getters.variables = function(self)
  local out = { self.dynamic_scale, self.step_counter }
  for _, v in ipairs(self.inner_optimizer.variables) do out[#out + 1] = v end
  return out
end

--- opt:scale_loss(loss) -> loss times the current scale (in the loss's dtype).
function LossScaleOptimizer:scale_loss(loss)
  local s = core.tracing() and self.dynamic_scale:read() or self.dynamic_scale
  if loss.dtype ~= "float32" then s = core.cast(s, loss.dtype) end
  return loss * s
end

function LossScaleOptimizer:build(vars) self.inner_optimizer:build(vars) end

-- apply_gradients(grads, vars): unscaled, applied when all are finite; the scale updated.
function LossScaleOptimizer:apply_gradients(grads, vars)
  local gl, vl = {}, {}
  if vars == nil then
    for i, p in ipairs(grads) do gl[i], vl[i] = p[1], p[2] end
  else
    for i, v in ipairs(vars) do gl[i], vl[i] = grads[i], v end
  end
  self.inner_optimizer:build(vl)   -- slots made eagerly, not inside a branch
  local scale = core.tracing() and self.dynamic_scale:read() or self.dynamic_scale
  local inv = 1 / scale
  local finite
  local ug = {}
  for i, v in ipairs(vl) do
    local g = gl[i]
    if g ~= nil then
      if g.dtype ~= v.dtype then g = mg.cast(g, v.dtype) end
      g = g * mg.cast(inv, g.dtype)
      local ok = mg.all(mg.isfinite(g))
      finite = finite and mg.logical_and(finite, ok) or ok
    end
    ug[i] = g
  end
  if finite == nil then return self.iterations end
  local growth = self.dynamic_growth_steps
  mg.cond(finite, function()
    self.inner_optimizer:apply_gradients(ug, vl)
    local c = (core.tracing() and self.step_counter:read() or self.step_counter) + 1
    local grow = mg.greater_equal(c, growth)
    self.step_counter:assign(mg.where(grow, mg.zeros_like(c), c))
    self.dynamic_scale:assign(mg.where(grow, scale * 2, scale))
    return mg.tensor(0, "int64")
  end, function()
    self.step_counter:assign(mg.tensor(0, "int64"))
    self.dynamic_scale:assign(scale * 0.5)
    return mg.tensor(0, "int64")
  end)
  return self.iterations
end

-- The state for saving (optimizer.lua's get_state/set_state): the inner optimizer's, then the
-- scale and the step counter.
function LossScaleOptimizer:_state_pairs(names)
  local out = self.inner_optimizer:_state_pairs(names)
  out[#out + 1] = { "loss_scale/dynamic_scale", self.dynamic_scale }
  out[#out + 1] = { "loss_scale/step_counter", self.step_counter }
  return out
end

function LossScaleOptimizer:get_config()
  return { initial_scale = self.initial_scale, dynamic_growth_steps = self.dynamic_growth_steps, name = self.name,
    inner_optimizer = { class_name = self.inner_optimizer.class_name,
      config = self.inner_optimizer:get_config() } }
end

function LossScaleOptimizer:__tostring()
  return string.format("<LossScaleOptimizer of %s>", tostring(self.inner_optimizer))
end

return LossScaleOptimizer
