-- moongrad.nn.layers.merging: layers that join a list of inputs: Add,
-- Subtract, Multiply, Average, Maximum, Minimum (elementwise, broadcasting
-- as the ops do) and Concatenate (along an axis). Called on a list:
-- `nn.Add(){a, b}`. Arithmetic on Keras tensors (`a + b`) adds these too.
-- Masks as Keras 3 merges them: the elementwise layers' output mask is the
-- OR of their inputs' masks (none when an input has none); Concatenate's
-- is each input's mask (all true for an unmasked input) spread over the
-- input's shape, joined along the axis and reduced with any over the last.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local node = require("moongrad.nn.node")

local M = {}

local function check_list(self, s)
  if type(s[1]) ~= "table" or #s < 2 then
    error("expected a list of at least 2 inputs", 0)
  end
end

-- Broadcast of two shapes, or nil.
local function broadcast(a, b)
  local n = math.max(#a, #b)
  local out = {}
  for i = 1, n do
    local x = a[#a - n + i] or 1
    local y = b[#b - n + i] or 1
    if x == y then out[i] = x
    elseif x == 1 then out[i] = y
    elseif y == 1 then out[i] = x
    elseif x == -1 or y == -1 then out[i] = x == -1 and y or x
    else return nil end
  end
  return out
end

local function shapes_text(s)
  local parts = {}
  for i, x in ipairs(s) do parts[i] = util.shape_str(x) end
  return table.concat(parts, ", ")
end

-- The checks Keras makes of a list of masks (mask is as masking.of_inputs gives it).
local function mask_list(inputs, mask)
  if mask == nil or mask == false then return nil end
  if type(mask) ~= "table" or mg.is_tensor(mask) then error("the mask of a merge must be a list of masks", 0) end
  if type(inputs) ~= "table" or #mask ~= #inputs then
    error(string.format("the list of masks has %d entries for %d inputs", #mask,
      type(inputs) == "table" and #inputs or 1), 0)
  end
  return mask
end

-- Keras's merge mask: the OR of the masks, none when an input has none.
local function or_masks(inputs, mask)
  mask = mask_list(inputs, mask)
  if not mask then return nil end
  for i = 1, #mask do if not mask[i] then return nil end end
  local out = mask[1]
  for i = 2, #mask do out = mg.logical_or(out, mask[i]) end
  return out
end

local function elementwise(name, combine, arity)
  local cls = Layer:extend(name)
  cls.passthrough_dtype = true
  cls.supports_masking = true
  cls.compute_mask = function(_, inputs, mask) return or_masks(inputs, mask) end
  function cls:__init(...) self:_parse({}, {}, ...) end
  function cls:call(xs)
    if type(xs) ~= "table" or #xs < 2 then error("expected a list of at least 2 tensors", 0) end
    if arity and #xs ~= arity then error(string.format("expected exactly %d inputs, got %d", arity, #xs), 0) end
    return combine(xs)
  end
  function cls:compute_output_shape(s)
    check_list(self, s)
    if arity and #s ~= arity then error(string.format("expected exactly %d inputs, got %d", arity, #s), 0) end
    local out = s[1]
    for i = 2, #s do
      out = broadcast(out, s[i])
      if not out then error("inputs have incompatible shapes: " .. shapes_text(s), 0) end
    end
    return out
  end
  M[name] = cls
  return cls
end

local function fold(op)
  return function(xs)
    local y = xs[1]
    for i = 2, #xs do y = op(y, xs[i]) end
    return y
  end
end

--- mg.nn.Add(){a, b, ...}: the elementwise sum of its inputs (broadcasting).
elementwise("Add", fold(mg.add))
--- mg.nn.Subtract(){a, b}: a - b elementwise.
elementwise("Subtract", function(xs) return xs[1] - xs[2] end, 2)
--- mg.nn.Multiply(){a, b, ...}: the elementwise product of its inputs.
elementwise("Multiply", fold(mg.mul))
--- mg.nn.Average(){a, b, ...}: the elementwise mean of its inputs.
elementwise("Average", function(xs) return fold(mg.add)(xs) * (1 / #xs) end)
--- mg.nn.Maximum(){a, b, ...}: the elementwise maximum of its inputs.
elementwise("Maximum", fold(mg.maximum))
--- mg.nn.Minimum(){a, b, ...}: the elementwise minimum of its inputs.
elementwise("Minimum", fold(mg.minimum))

--- mg.nn.Concatenate{axis=-1}{a, b, ...}: its inputs joined along axis.
local Concatenate = Layer:extend("Concatenate")
M.Concatenate = Concatenate
Concatenate.passthrough_dtype = true
Concatenate.supports_masking = true

function Concatenate:__init(...)
  local cfg = self:_parse({ "axis" }, { axis = "integer" }, ...)
  self.axis = cfg.axis or -1
end

function Concatenate:call(xs)
  if type(xs) ~= "table" or #xs < 1 then error("expected a list of tensors", 0) end
  return mg.concat(xs, self.axis)
end

-- Keras's rule: each input's mask over its whole shape (all true where it
-- has none, a (batch, time) mask repeated along the features), the lot
-- joined along the axis, then any over the last axis.
function Concatenate:compute_mask(inputs, mask)
  mask = mask_list(inputs, mask)
  if not mask then return nil end
  local full = {}
  for i, x in ipairs(inputs) do
    local m = mask[i]
    if not m then
      full[i] = mg.cast(mg.ones_like(x), "bool")   -- like x, so a staged batch size of -1 works too
    elseif m.ndim < x.ndim then
      full[i] = mg.logical_or(mg.unsqueeze(m, -1), mg.cast(mg.zeros_like(x), "bool"))
    else
      full[i] = m
    end
  end
  return mg.any(mg.concat(full, self.axis), { axis = -1 })
end

function Concatenate:compute_output_shape(s)
  check_list(self, s)
  local n = #s[1]
  local ax = self.axis < 0 and n + self.axis + 1 or self.axis
  if ax < 1 or ax > n then
    error(string.format("axis %d is out of range for %d-d inputs", self.axis, n), 0)
  end
  local out = util.copy(s[1])
  for i = 2, #s do
    local t = s[i]
    local ok = #t == n
    for d = 1, n do
      if ok and d ~= ax and t[d] ~= out[d] and t[d] ~= -1 and out[d] ~= -1 then ok = false end
    end
    if not ok then
      error(string.format("inputs must have the same shape except along axis %d, got %s", self.axis, shapes_text(s)), 0)
    end
    for d = 1, n do if d ~= ax and out[d] == -1 then out[d] = t[d] end end
    out[ax] = (out[ax] == -1 or t[ax] == -1) and -1 or out[ax] + t[ax]
  end
  return out
end

function Concatenate:get_config()
  local cfg = Layer.get_config(self)
  cfg.axis = self.axis
  return cfg
end

-- a + b, a - b, a * b on Keras tensors
node.operators.add = function(a, b) return M.Add()({ a, b }) end
node.operators.sub = function(a, b) return M.Subtract()({ a, b }) end
node.operators.mul = function(a, b) return M.Multiply()({ a, b }) end

return M
