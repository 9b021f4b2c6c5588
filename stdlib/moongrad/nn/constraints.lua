-- moongrad.nn.constraints: Keras's weight constraints (kernel_constraint=, bias_constraint=,
-- ... of layers): MaxNorm, MinMaxNorm, NonNeg, UnitNorm, by object or by name ("max_norm",
-- "min_max_norm", "non_neg", "unit_norm"), or any function w -> w.
--
-- A constraint is a projection applied to a weight after each optimizer update, as Keras 3's
-- optimizer does (`variable.assign(variable.constraint(variable))`): add_weight{constraint=}
-- records it against the Variable here (a weak-keyed table, like the masks of masking.lua), and
-- Optimizer:apply_gradients projects every updated Variable that has one. It is tensor ops, so a
-- staged train step does it inside the graph. Axes count from 1 like every axis in moongrad
-- (Keras's axis=0, the default, is axis=1 here); negative axes count from the end.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local class = require("moongrad.nn.class")
local options = require("moongrad.options")

local M = {}

local EPS = 1e-7   -- Keras's backend.epsilon()

--- mg.nn.constraints.Constraint: the base class; constraint(w) returns the projected weight.
local Constraint = class.Object:extend("Constraint")
class.set_noun(Constraint, "constraint")
M.Constraint = Constraint

function Constraint:__call(w) return w end
--- constraint:get_config() -> the table of options that rebuilds the constraint (saving, from_config).
function Constraint:get_config() return {} end

local AXIS = { "integer|table", check = function(v)
  local list = type(v) == "table" and v or { v }
  if #list == 0 then return "must be an axis or a non-empty list of axes" end
  for _, a in ipairs(list) do
    if type(a) ~= "number" or a == 0 or a ~= math.floor(a) then
      return "must be axes counted from 1 (or negative from the end), got " .. options.show(v)
    end
  end
end }

-- The norms of w over `axis` (1-based or negative), kept as size-1 axes for broadcasting.
local function norms(w, axis)
  local nd = #w.shape
  local list = type(axis) == "table" and axis or { axis }
  local axes = {}
  for i, a in ipairs(list) do
    local ax = a < 0 and nd + a + 1 or a
    if ax < 1 or ax > nd then
      options.raise(string.format("constraint: axis %d is out of range for a weight of shape (%s)", a,
        table.concat(w.shape, ", ")))
    end
    axes[i] = ax
  end
  return mg.sqrt(mg.sum(mg.square(w), axes, true))
end

local function axis_config(a)
  if type(a) == "table" then
    local c = {}
    for i, v in ipairs(a) do c[i] = v end
    return c
  end
  return a
end

--- mg.nn.constraints.MaxNorm{max_value=2, axis=1}: rescales each slice along axis whose norm exceeds max_value down to it.
local MaxNorm = Constraint:extend("MaxNorm")
M.MaxNorm = MaxNorm

function MaxNorm:__init(cfg)
  if type(cfg) == "number" then cfg = { max_value = cfg } end
  cfg = options.check("MaxNorm", cfg, { max_value = { "number", min = 0 }, axis = AXIS })
  self.max_value = cfg.max_value or 2
  self.axis = cfg.axis or 1
end

function MaxNorm:__call(w)
  local n = norms(w, self.axis)
  local desired = mg.clip(n, 0, self.max_value)
  return w * (desired / (n + EPS))
end

--- constraint:get_config() -> {max_value=, axis=} (its options).
function MaxNorm:get_config() return { max_value = self.max_value, axis = axis_config(self.axis) } end

--- mg.nn.constraints.MinMaxNorm{min_value=0, max_value=1, rate=1, axis=1}: moves each slice's norm into [min_value, max_value] (rate 1: all the way).
local MinMaxNorm = Constraint:extend("MinMaxNorm")
M.MinMaxNorm = MinMaxNorm

function MinMaxNorm:__init(cfg)
  cfg = options.check("MinMaxNorm", cfg, { min_value = { "number", min = 0 }, max_value = { "number", min = 0 },
    rate = { "number", min = 0, max = 1 }, axis = AXIS })
  self.min_value = cfg.min_value or 0
  self.max_value = cfg.max_value or 1
  self.rate = cfg.rate or 1
  self.axis = cfg.axis or 1
  if self.min_value > self.max_value then
    options.raise(string.format("MinMaxNorm: min_value (%g) is above max_value (%g)", self.min_value, self.max_value))
  end
end

function MinMaxNorm:__call(w)
  local n = norms(w, self.axis)
  local desired = mg.clip(n, self.min_value, self.max_value) * self.rate + n * (1 - self.rate)
  return w * (desired / (n + EPS))
end

--- constraint:get_config() -> {min_value=, max_value=, rate=, axis=} (its options).
function MinMaxNorm:get_config()
  return { min_value = self.min_value, max_value = self.max_value, rate = self.rate, axis = axis_config(self.axis) }
end

--- mg.nn.constraints.NonNeg(): sets the negative entries of the weight to 0.
local NonNeg = Constraint:extend("NonNeg")
M.NonNeg = NonNeg

function NonNeg:__init(cfg) options.check("NonNeg", cfg, {}) end

function NonNeg:__call(w) return w * mg.cast(mg.greater_equal(w, 0), w.dtype) end

--- mg.nn.constraints.UnitNorm{axis=1}: scales each slice along axis to norm 1.
local UnitNorm = Constraint:extend("UnitNorm")
M.UnitNorm = UnitNorm

function UnitNorm:__init(cfg)
  cfg = options.check("UnitNorm", cfg, { axis = AXIS })
  self.axis = cfg and cfg.axis or 1
end

function UnitNorm:__call(w) return w / (norms(w, self.axis) + EPS) end

--- constraint:get_config() -> {axis=} (its options).
function UnitNorm:get_config() return { axis = axis_config(self.axis) } end

M.max_norm, M.min_max_norm, M.non_neg, M.unit_norm = MaxNorm, MinMaxNorm, NonNeg, UnitNorm

local BY_NAME = { max_norm = MaxNorm, min_max_norm = MinMaxNorm, non_neg = NonNeg, unit_norm = UnitNorm,
  MaxNorm = MaxNorm, MinMaxNorm = MinMaxNorm, NonNeg = NonNeg, UnitNorm = UnitNorm }

--- mg.nn.constraints.get(id) -> a constraint from a name ("max_norm", "non_neg", ...), a config table, a constraint or a function.
function M.get(id)
  if id == nil then return nil end
  if id == "<function>" then
    error("a constraint that was a Lua function cannot be rebuilt from a config (use nn.constraints.MaxNorm/..., "
      .. "or set it again after loading)", 3)
  end
  if type(id) == "string" then
    local cls = BY_NAME[id]
    if not cls then error("unknown constraint '" .. id .. "' (max_norm, min_max_norm, non_neg, unit_norm)", 3) end
    return cls()
  end
  if type(id) == "function" or class.isinstance(id, Constraint) then return id end
  if type(id) == "table" and id.class_name then
    local cls = BY_NAME[id.class_name]
    if not cls then error("unknown constraint class '" .. tostring(id.class_name) .. "'", 3) end
    return cls(id.config)
  end
  error("a constraint must be a name, a constraint or a function, got " .. type(id), 3)
end

--- mg.nn.constraints.serialize(c) -> the {class_name=, config=} table of a constraint.
function M.serialize(c)
  if c == nil then return nil end
  if class.isinstance(c, Constraint) then return { class_name = c.class_name, config = c:get_config() } end
  return "<function>"
end

-- ---- the Variable -> constraint record (add_weight and the optimizer) -----------------------------

local of_var = setmetatable({}, { __mode = "k" })

-- Records constraint c for Variable v (add_weight{constraint=}).
function M.attach(v, c) if c ~= nil then of_var[v] = c end end

--- mg.nn.constraints.of(v) -> the constraint of Variable v, or nil.
function M.of(v) return of_var[v] end

-- Projects v onto its constraint after an update (Optimizer:apply_gradients).
function M.apply(v)
  local c = of_var[v]
  if c == nil then return end
  local w = c(v)
  if not core.is_tensor(w) then
    options.raise(string.format("the constraint of %s returned a %s, not a tensor", tostring(v.name), type(w)))
  end
  if w.dtype ~= v.dtype then w = mg.cast(w, v.dtype) end
  v:assign(w)
end

return M
