-- moongrad.optim.optimizer: the Optimizer base class.
--
-- Keras's interface: apply_gradients(grads, vars) (or a list of {grad, var}
-- pairs), `iterations`, `learning_rate` (a number or a schedule) and
-- clipnorm / clipvalue / global_clipnorm / weight_decay. The step count and
-- a constant learning rate live in Variables, so changing the rate
-- (callbacks) or stepping never retraces a staged train step, and each
-- update is a handful of elementwise ops per parameter that the graph
-- optimiser fuses. Slots (momenta) are Variables made on the first update,
-- keyed by the parameter. Subclasses define _create_slots(var) and
-- _update(var, grad, lr, step_values). Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local class = require("moongrad.nn.class")
local constraints = require("moongrad.nn.constraints")
local schedules = require("moongrad.optim.schedules")
local options = require("moongrad.options")

--- mg.optim.Optimizer: the base class of optimizers (Keras 3's).
--- opt:apply_gradients{{grad, var}, ...} updates the Variables; opt:minimize(loss_fn, vars)
--- computes the gradients and applies them. Options common to all: learning_rate (a
--- number or a schedule), weight_decay, clipnorm, clipvalue, global_clipnorm, name, and
--- use_ema=false with ema_momentum=0.99 and ema_overwrite_frequency (a moving average of the
--- weights, which fit or finalize_variable_values swaps in).
--- Example:
---   local w = mg.Variable(mg.tensor{3.0})
---   local opt = mg.optim.SGD{learning_rate = 0.1}
---   opt:minimize(function() return (w * w):sum() end, {w})
local Optimizer = class.Object:extend("Optimizer")
class.set_noun(Optimizer, "optimizer")

-- The learning rate: a number >= 0 or a schedule.
local function lr_check(v)
  if type(v) == "number" then
    if v ~= v or v < 0 then return "must be a number >= 0 or a schedule, got " .. tostring(v) end
    return nil
  end
  if not schedules.is_schedule(v) then return "must be a number >= 0 or a schedule, got " .. options.show(v) end
end
Optimizer.lr_rule = { "number|table", check = lr_check }

-- The options every optimizer takes (Keras's base optimizer arguments).
local BASE = {
  learning_rate = Optimizer.lr_rule,
  clipnorm = { "number", above = 0 },
  clipvalue = { "number", above = 0 },
  global_clipnorm = { "number", above = 0 },
  weight_decay = { "number", min = 0 },
  name = "string",
  use_ema = "boolean",
  ema_momentum = { "number", min = 0, max = 1 },
  ema_overwrite_frequency = { "integer", min = 1 },
}

-- Checks cfg against the base options and `spec` (a subclass's own), then
-- merges it over defaults.
function Optimizer:_configure(cfg, defaults, spec)
  if type(cfg) == "number" then cfg = { learning_rate = cfg } end
  cfg = options.check(self.class_name, cfg, options.extend(BASE, spec))
  local nclip = (cfg.clipnorm and 1 or 0) + (cfg.clipvalue and 1 or 0) + (cfg.global_clipnorm and 1 or 0)
  if nclip > 1 then
    options.raise(self.class_name .. ": only one of clipnorm, clipvalue and global_clipnorm can be set")
  end
  local c = {}
  for k, v in pairs(defaults) do c[k] = v end
  for k, v in pairs(cfg) do c[k] = v end
  self.config = c
  self.name = c.name or self.class_name
  self.clipnorm, self.clipvalue, self.global_clipnorm = c.clipnorm, c.clipvalue, c.global_clipnorm
  self.weight_decay = c.weight_decay
  self.use_ema = c.use_ema and true or false
  self.ema_momentum = c.ema_momentum or 0.99
  self.ema_overwrite_frequency = c.ema_overwrite_frequency
  if not self.use_ema and (c.ema_momentum ~= nil or c.ema_overwrite_frequency ~= nil) then
    options.raise(self.class_name .. ": ema_momentum and ema_overwrite_frequency need use_ema = true")
  end
  local lr = c.learning_rate or 0.001
  rawset(self, "iterations", mg.Variable(mg.tensor(0, "int64"), { name = self.name .. "/iterations", trainable = false }))
  if schedules.is_schedule(lr) then
    rawset(self, "_schedule", lr)
  else
    rawset(self, "_lr", mg.Variable(mg.tensor(lr, "float32"), { name = self.name .. "/learning_rate", trainable = false }))
  end
  rawset(self, "_slots", {})
  rawset(self, "_slot_list", {})
  rawset(self, "_extra_state", {})
  return c
end

-- add_state(key, init): an optimizer-wide state Variable (not per parameter, such as Nadam's
-- running product of momentum factors), saved and restored under `key` with the slots.
function Optimizer:add_state(key, init)
  local v = mg.Variable(init, { name = self.name .. "/" .. key, trainable = false })
  local list = rawget(self, "_extra_state")
  list[#list + 1] = { key, v }
  return v
end

-- optimizer.learning_rate: the current rate as a number; assigning a number sets it.
Optimizer.getters.learning_rate = function(self)
  local s = rawget(self, "_schedule")
  if s then return s(self.iterations:item()) end
  return rawget(self, "_lr"):item()
end
Optimizer.setters.learning_rate = function(self, v)
  if schedules.is_schedule(v) then
    rawset(self, "_schedule", v)
    return
  end
  if rawget(self, "_schedule") then
    error(self.class_name .. ": the learning rate is a schedule; it cannot be set to a number", 2)
  end
  options.value(self.class_name, "learning_rate", v, Optimizer.lr_rule)
  rawget(self, "_lr"):assign(mg.tensor(v, "float32"))
end
Optimizer.getters.lr = Optimizer.getters.learning_rate
Optimizer.setters.lr = Optimizer.setters.learning_rate

-- The rate for this step as a tensor (a graph value when staged).
function Optimizer:_lr_tensor()
  local s = rawget(self, "_schedule")
  if s then return s(mg.cast(self.iterations, "float32")) end
  local v = rawget(self, "_lr")
  return core.tracing() and v:read() or v
end

-- slot(var, name): the optimizer's state for a parameter.
function Optimizer:slot(var, name)
  local s = rawget(self, "_slots")[var]
  return s and s[name]
end

--- optimizer:add_slot(var, name, init) -> Variable: per-parameter state (Adam's m and v), zeros unless init is given.
function Optimizer:add_slot(var, name, init)
  local slots = rawget(self, "_slots")
  local s = slots[var]
  if not s then s = {}; slots[var] = s end
  local v = mg.Variable(init or mg.zeros(var.shape, var.dtype), { name = self.name .. "/" .. name, trainable = false })
  s[name] = v
  local list = rawget(self, "_slot_list")
  list[#list + 1] = v
  return v
end

-- optimizer.variables: iterations and every slot.
Optimizer.getters.variables = function(self)
  local out = { self.iterations }
  for _, p in ipairs(rawget(self, "_extra_state")) do out[#out + 1] = p[2] end
  for _, v in ipairs(rawget(self, "_slot_list")) do out[#out + 1] = v end
  return out
end

-- build(vars): makes the slots of parameters not seen yet (do this before
-- staging a train step; apply_gradients also does it on first use).
function Optimizer:build(vars)
  local slots = rawget(self, "_slots")
  for _, v in ipairs(vars) do
    if not slots[v] then
      slots[v] = {}
      self:_create_slots(v)
      -- the moving average starts at zero; the first step sets it to the weight (Keras's)
      if self.use_ema then self:add_slot(v, "average") end
    end
  end
end

function Optimizer:_create_slots() end
function Optimizer:_prepare() return {} end

local function clip(self, pairs_)
  if self.clipvalue then
    local c = self.clipvalue
    for _, p in ipairs(pairs_) do p[1] = mg.clip(p[1], -c, c) end
  end
  if self.clipnorm then
    local c = self.clipnorm
    for _, p in ipairs(pairs_) do
      local n = mg.sqrt(mg.sum(mg.square(p[1])))
      p[1] = p[1] * (c / mg.maximum(n, c))
    end
  end
  if self.global_clipnorm then
    local c = self.global_clipnorm
    local total
    for _, p in ipairs(pairs_) do
      local s = mg.sum(mg.square(p[1]))
      total = total and total + s or s
    end
    if total then
      local scale = c / mg.maximum(mg.sqrt(total), c)
      for _, p in ipairs(pairs_) do p[1] = p[1] * scale end
    end
  end
end

-- apply_gradients(grads, vars) or apply_gradients({{grad, var}, ...}):
-- one update of every parameter whose gradient is not nil. Returns iterations.
function Optimizer:apply_gradients(grads, vars)
  local pairs_ = {}
  if vars == nil then
    for i, p in ipairs(grads) do
      if type(p) ~= "table" or core.is_tensor(p) then
        error(string.format("apply_gradients: entry %d must be a {gradient, variable} pair (or pass grads, vars)", i), 2)
      end
      if p[1] ~= nil then pairs_[#pairs_ + 1] = { p[1], p[2] } end
    end
  else
    for i, v in ipairs(vars) do
      if grads[i] ~= nil then pairs_[#pairs_ + 1] = { grads[i], v } end
    end
  end
  for i, p in ipairs(pairs_) do
    if not (core.is_tensor(p[2]) and core.is_variable(p[2])) then
      error(string.format("apply_gradients: parameter %d is not a Variable", i), 2)
    end
    local gs, vs = core.is_tensor(p[1]) and p[1].shape, p[2].shape
    local same = gs and #gs == #vs
    for d = 1, same and #gs or 0 do
      if type(gs[d]) == "number" and type(vs[d]) == "number" and gs[d] ~= vs[d] then same = false end
    end
    if not same then
      options.raise(string.format("apply_gradients: gradient %d %s does not match its variable %s of shape (%s) "
        .. "(are the gradients in the order of the variables?)", i,
        gs and ("of shape (" .. table.concat(gs, ", ") .. ")") or ("is a " .. type(p[1])),
        tostring(p[2].name or "?"), table.concat(vs, ", ")))
    end
  end
  clip(self, pairs_)
  local vlist = {}
  for i, p in ipairs(pairs_) do vlist[i] = p[2] end
  self:build(vlist)
  local lr = self:_lr_tensor()
  local step = self:_prepare(lr)
  local wd = self.weight_decay
  for _, p in ipairs(pairs_) do
    local g, v = p[1], p[2]
    if g.dtype ~= v.dtype then g = mg.cast(g, v.dtype) end
    if wd and wd ~= 0 and self.decoupled_weight_decay ~= false and not self._fused_weight_decay then
      v:assign_sub(v * (lr * wd))  -- (Adam folds it into its one-pass update)
    end
    self:_update(v, g, lr, step)
  end
  -- weight constraints (kernel_constraint=, ...; nn/constraints.lua) project after the update, as Keras 3
  for _, v in ipairs(vlist) do constraints.apply(v) end
  if self.use_ema then self:_update_ema(vlist) end
  self.iterations:assign_add(1)
  return self.iterations
end

-- Keras 3's use_ema: after each update average = m * average + (1 - m) * var with m =
-- ema_momentum, except on the first step (m = 0: the average starts at the weights); every
-- ema_overwrite_frequency steps the weights are replaced by their averages. Tensor ops only (the
-- step count is a Variable), so a staged train step does it without retracing.
function Optimizer:_update_ema(vlist)
  local it = mg.cast(self.iterations, "float64")
  local m = mg.cast(mg.not_equal(it, 0), "float32") * self.ema_momentum
  local overwrite
  if self.ema_overwrite_frequency then
    local f = self.ema_overwrite_frequency
    local n = it + 1
    overwrite = mg.equal(n - mg.floor(n / f) * f, 0)
  end
  for _, v in ipairs(vlist) do
    local avg = self:slot(v, "average")
    local mv = m
    if v.dtype ~= "float32" then mv = mg.cast(m, v.dtype) end
    local new = avg * mv + v * (1 - mv)
    avg:assign(new)
    if overwrite then v:assign(mg.where(overwrite, new, v)) end
  end
end

--- optimizer:finalize_variable_values(vars): with use_ema, sets each variable to its moving
--- average (Keras 3's; fit does it when training ends). Nothing otherwise, or before the first step.
function Optimizer:finalize_variable_values(vars)
  if not self.use_ema or self.iterations:item() == 0 then return end
  for _, v in ipairs(vars) do
    local avg = self:slot(v, "average")
    if avg then v:assign(avg) end
  end
end

-- minimize(loss_fn, vars): one step on the gradient of loss_fn() (eager or staged).
function Optimizer:minimize(loss_fn, vars)
  if core.is_tensor(loss_fn) then   -- TF1: a graph's loss tensor; the step is an op to run (graph_mode.lua)
    return require("moongrad.graph_mode").minimize(self, loss_fn, vars)
  end
  local tape = mg.GradientTape()
  local loss = loss_fn()
  tape:stop()
  self:apply_gradients(tape:gradient(loss, vars), vars)
  return loss
end

-- ---- state (saving and checkpoints) ---------------------------------------------------

-- The state as {key, variable} pairs, in a stable order: "iterations", the
-- "learning_rate" Variable (when not a schedule), then every slot as
-- "<parameter name>/<slot>", the parameter named by `names[var]` (a model's
-- weight paths); a parameter without a name is "var_<k>", k counting
-- parameters in the order their slots were made.
function Optimizer:_state_pairs(names)
  names = names or {}
  local out = { { "iterations", self.iterations } }
  local lr = rawget(self, "_lr")
  if lr and not rawget(self, "_schedule") then out[2] = { "learning_rate", lr } end
  for _, p in ipairs(rawget(self, "_extra_state")) do out[#out + 1] = p end
  local owner = {}
  for var, s in pairs(rawget(self, "_slots")) do
    for slot, sv in pairs(s) do owner[sv] = { var = var, slot = slot } end
  end
  local var_keys, k = {}, 0
  for _, sv in ipairs(rawget(self, "_slot_list")) do
    local o = owner[sv]
    if o then
      if not var_keys[o.var] then
        k = k + 1
        var_keys[o.var] = names[o.var] or ("var_" .. k)
      end
      out[#out + 1] = { var_keys[o.var] .. "/" .. o.slot, sv }
    end
  end
  return out
end

-- get_state(names) -> {key = tensor}: a copy of the state (see _state_pairs).
function Optimizer:get_state(names)
  local out = {}
  for _, p in ipairs(self:_state_pairs(names)) do out[p[1]] = mg.tensor(p[2]) end
  return out
end

-- set_state(tensors, vars, names [, where]): makes the slots of `vars` (the
-- parameters it will update) and assigns every key found in `tensors`,
-- checking shapes first, so a bad file changes nothing. A state saved
-- before any update holds no slots; the slots then stay zero.
function Optimizer:set_state(tensors, vars, names, where)
  where = where or "optimizer state"
  self:build(vars or {})
  local pairs_ = self:_state_pairs(names)
  local has_slots = false
  for key in pairs(tensors) do
    if key:find("/", 1, true) then has_slots = true end
  end
  local todo, missing = {}, {}
  for _, p in ipairs(pairs_) do
    local key, var = p[1], p[2]
    local t = tensors[key]
    if t == nil then
      if key == "iterations" or (key ~= "learning_rate" and has_slots) then missing[#missing + 1] = key end
    else
      local same = #t.shape == #var.shape
      for d = 1, #var.shape do same = same and t.shape[d] == var.shape[d] end
      if not same then
        error(string.format("%s: optimizer %s's %s has shape (%s) but the saved value has (%s)", where, self.name, key,
          table.concat(var.shape, ", "), table.concat(t.shape, ", ")), 0)
      end
      todo[#todo + 1] = { var, t }
    end
  end
  if #missing > 0 then
    error(string.format("%s: no saved value for optimizer %s's %s (was it saved from the same model and optimizer "
      .. "class?)", where, self.name, table.concat(missing, ", ", 1, math.min(#missing, 5))), 0)
  end
  for _, p in ipairs(todo) do p[1]:assign(p[2].dtype == p[1].dtype and p[2] or mg.cast(p[2], p[1].dtype)) end
end

-- An optimizer prints its class, learning rate and step count: <Adam learning_rate=0.001, iterations=0>.
function Optimizer:__tostring()
  local ok, v = pcall(function() return self.learning_rate end)   -- a schedule's current rate
  local lr = ok and (type(v) == "number" and string.format("%.4g", v) or tostring(v)) or "?"
  local it = rawget(self, "iterations")
  local n = it and it:item() or 0
  return string.format("<%s learning_rate=%s, iterations=%d>", tostring(self.class_name), lr, n)
end

--- optimizer:get_config() -> a table of the constructor options (learning_rate, ...).
function Optimizer:get_config()
  local c = {}
  for k, v in pairs(self.config) do c[k] = v end
  local s = rawget(self, "_schedule")
  if s then c.learning_rate = { class_name = s.class_name, config = s:get_config() } end
  return c
end

return Optimizer
