-- fuzz_diff/ref.lua: the helpers the "ref" and "lua" dialects call (render.lua).
--
-- R is the reference semantics of converted code (doc/autograph.md), written without the
-- autograph runtime: a comparison with a tensor operand is the elementwise op, `and`/`or`/
-- `not` with a bool tensor on the left are logical_and/or/not, a condition is a one-element
-- bool tensor read with item() or a Lua boolean, `c and a or b` picks a branch for a scalar
-- c and is a `where` for a mask, loops run in Lua. Being eager, R also sees values, so it
-- records the margin of every comparison and kink (relu, abs, floor, round, sign, maximum,
-- max reductions, float-to-int casts): how far the inputs were from flipping the outcome,
-- relative to their size. The runner skips programs whose margin is too small, where the
-- float32 rounding of a fused kernel or a finite-difference step could flip a branch and
-- make two correct modes disagree.
--
-- L is the same program on Lua numbers: math.* and the few functions Lua lacks (tanh,
-- sigmoid, round half to even like the tensor kernel, truncating casts), and L.Var, a Lua
-- stand-in for mg.Variable. Portable Lua.
local mg = require("moongrad")

local M = {}

-- ---- R: reference semantics with margins ------------------------------------------------

local R = { margin = math.huge }
M.R = R

local is_tensor = mg.is_tensor

local function f64(x)
  if is_tensor(x) then return mg.cast(x, "float64") end
  if type(x) == "boolean" then return mg.tensor(x and 1.0 or 0.0, "float64") end
  return mg.tensor(x + 0.0, "float64")
end

-- a float operand (an integral Lua number is not: integer comparisons do not flip)
local function isfloat(x)
  if is_tensor(x) then return x.dtype == "float32" or x.dtype == "float64" end
  return type(x) == "number" and x ~= math.floor(x)
end

-- the relative distance between a and b (elementwise min), recorded as a margin
local function note(a, b, what)
  local d = mg.abs(f64(a) - f64(b)) / (mg.abs(f64(a)) + mg.abs(f64(b)) + 1)
  local m = mg.min(d):item()
  if m < R.margin then R.margin, R.margin_at = m, what end
end
R.note = note

local CMP = { ["<"] = "less", ["<="] = "less_equal", [">"] = "greater", [">="] = "greater_equal",
  ["=="] = "equal", ["~="] = "not_equal" }
local LUACMP = {
  ["<"] = function(a, b) return a < b end, ["<="] = function(a, b) return a <= b end,
  [">"] = function(a, b) return a > b end, [">="] = function(a, b) return a >= b end,
  ["=="] = function(a, b) return a == b end, ["~="] = function(a, b) return a ~= b end,
}

function R.cmp(op, a, b)
  if (isfloat(a) or isfloat(b)) and not rawequal(a, b) then note(a, b, op) end
  if is_tensor(a) or is_tensor(b) then return mg[CMP[op]](a, b) end
  return LUACMP[op](a, b)
end

local function is_bool_tensor(x) return is_tensor(x) and x.dtype == "bool" end
local function as_bool_tensor(x)
  if is_tensor(x) then return x end
  return mg.tensor(x and true or false)
end

-- b is a thunk: Lua's `and`/`or` are lazy, and so is converted code unless the left
-- operand is a bool tensor (then both sides run, elementwise)
function R.and_(a, b)
  if is_bool_tensor(a) then return mg.logical_and(a, as_bool_tensor(b())) end
  return a and b()
end
function R.or_(a, b)
  if is_bool_tensor(a) then return mg.logical_or(a, as_bool_tensor(b())) end
  return a or b()
end
function R.not_(a)
  if is_bool_tensor(a) then return mg.logical_not(a) end
  return not a
end

-- a condition: a one-element bool tensor or a Lua value
function R.truth(c)
  if is_tensor(c) then
    assert(c.dtype == "bool" and c:numel() == 1, "ref: a condition must be a one-element bool tensor")
    return c:item()
  end
  return c and true or false
end

-- a and b are thunks: only the chosen one runs, except for a mask (a `where` of both)
function R.ifexp(c, a, b)
  if is_tensor(c) and c:numel() > 1 then return mg.where(c, a(), b()) end
  if R.truth(c) then return a() end
  return b()
end

function R.num(x)
  if is_tensor(x) then return x:item() end
  return x
end

function R.rows(t)
  local n = t.shape[1]
  local i = 0
  return function()
    i = i + 1
    if i <= n then return i, t[i] end
  end
end

-- kinks
function R.relu(x) note(x, 0, "relu"); return mg.relu(x) end
function R.abs(x) note(x, 0, "abs"); return mg.abs(x) end
function R.sign(x) note(x, 0, "sign"); return mg.sign(x) end
local function frac_dist(x, shift, what)
  local v = f64(x) + shift
  local d = mg.abs(v - mg.round(v))
  local m = mg.min(d):item()
  if m < R.margin then R.margin, R.margin_at = m, what end
end
function R.floor(x) frac_dist(x, 0, "floor"); return mg.floor(x) end
function R.ceil(x) frac_dist(x, 0, "ceil"); return mg.ceil(x) end
function R.round(x) frac_dist(x, 0.5, "round"); return mg.round(x) end
function R.cast_int(x) frac_dist(x, 0, "cast"); return mg.cast(x, "int64") end
function R.maximum(a, b) note(a, b, "maximum"); return mg.maximum(a, b) end
function R.minimum(a, b) note(a, b, "minimum"); return mg.minimum(a, b) end
-- max/min reductions: the gap between the two largest (smallest) elements of each group
local function ties(x, o, sign, what)
  if not is_tensor(x) or x:numel() < 2 then return end
  local v = f64(x) * sign
  local shape = x.shape
  local groups = {}
  local axis = o and o.axis
  if axis and axis < 0 then axis = #shape + 1 + axis end
  if not axis or #shape == 1 then
    groups[1] = mg.reshape(v, { x:numel() }):totable()
  elseif axis == 1 then
    local t = mg.transpose(v):totable()
    for i, row in ipairs(t) do groups[i] = row end
  else
    local t = v:totable()
    for i, row in ipairs(t) do groups[i] = row end
  end
  for _, g in ipairs(groups) do
    if #g >= 2 then
      table.sort(g)
      local a, b = g[#g], g[#g - 1]
      local m = math.abs(a - b) / (math.abs(a) + math.abs(b) + 1)
      if m < R.margin then R.margin, R.margin_at = m, what end
    end
  end
end
function R.max(x, o) ties(x, o, 1, "max"); return mg.max(x, o) end
function R.min(x, o) ties(x, o, -1, "min"); return mg.min(x, o) end

-- ---- L: the program on Lua numbers --------------------------------------------------------

local L = {}
M.L = L

L.exp, L.sin, L.cos, L.abs, L.sqrt = math.exp, math.sin, math.cos, math.abs, math.sqrt
function L.tanh(x)
  if x > 20 then return 1.0 elseif x < -20 then return -1.0 end
  local e = math.exp(2 * x)
  return (e - 1) / (e + 1)
end
function L.sigmoid(x) return 1 / (1 + math.exp(-x)) end
function L.relu(x) return x > 0 and x or 0 * x end
function L.square(x) return x * x end
function L.sqrt1(x) return math.sqrt(x * x + 0.5) end
function L.log1p2(x) local y = x * x; return math.log(1 + y) end
function L.floor(x) return math.floor(x) end
function L.ceil(x) return math.ceil(x) end
function L.round(x)
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 then return f + 1 elseif d < 0.5 then return f end
  return (f % 2 == 0) and f or f + 1
end
function L.sign(x) if x > 0 then return 1 elseif x < 0 then return -1 end return 0 end
function L.maximum(a, b) return math.max(a, b) end
function L.minimum(a, b) return math.min(a, b) end
function L.where(c, a, b) if c then return a end return b end
function L.all(x) return x end
function L.any(x) return x end
function L.sum(x) return x end
function L.mean(x) return x end
function L.max(x) return x end
function L.min(x) return x end
function L.toint(x)
  if type(x) == "boolean" then return x and 1 or 0 end
  if x >= 0 then return math.floor(x) end
  return math.ceil(x)
end
function L.tofloat(x)
  if type(x) == "boolean" then return x and 1.0 or 0.0 end
  return x + 0.0
end

local Var = {}
Var.__index = Var
function L.Var(v) return setmetatable({ v = v }, Var) end
function Var:assign(x) self.v = x; return self end
function Var:assign_add(x) self.v = self.v + x; return self end
function Var:assign_sub(x) self.v = self.v - x; return self end

return M
