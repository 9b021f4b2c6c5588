-- moongrad.nn.regularizers: weight penalties added to the training loss
-- (kernel_regularizer=, bias_regularizer= of layers): L1, L2, L1L2, by
-- object or by name ("l1", "l2", "l1_l2" with Keras's default 0.01).
-- A regularizer is callable on a weight and returns a scalar tensor.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local class = require("moongrad.nn.class")
local options = require("moongrad.options")

local M = {}

--- mg.nn.regularizers.Regularizer: the base class of regularizers; regularizer(w) is the penalty added to the loss.
local Regularizer = class.Object:extend("Regularizer")
class.set_noun(Regularizer, "regularizer")
M.Regularizer = Regularizer

--- mg.nn.regularizers.L1L2{l1=0, l2=0}: the penalty l1 * sum(|w|) + l2 * sum(w^2).
local L1L2 = Regularizer:extend("L1L2")
M.L1L2 = L1L2

local FACTOR = { "number", min = 0 }

function L1L2:__init(cfg)
  cfg = options.check("L1L2", cfg, { l1 = FACTOR, l2 = FACTOR })
  self.l1 = cfg.l1 or 0
  self.l2 = cfg.l2 or 0
end

function L1L2:__call(w)
  local r
  if self.l1 ~= 0 then r = mg.sum(mg.abs(w)) * self.l1 end
  if self.l2 ~= 0 then
    local t = mg.sum(mg.square(w)) * self.l2
    r = r and r + t or t
  end
  return r or mg.tensor(0.0)
end

--- regularizer:get_config() -> {l1=, l2=}, the two factors.
function L1L2:get_config() return { l1 = self.l1, l2 = self.l2 } end

-- mg.nn.regularizers.L1(0.01), .L2(0.01): shorthands (a number or {l1=}/{l2=}).
function M.L1(v)
  if type(v) == "table" then v = options.check("L1", v, { l1 = FACTOR }).l1 end
  options.value("L1", "l1", v, FACTOR)
  local r = L1L2({ l1 = v or 0.01 })
  r.kind = "L1"
  return r
end
--- mg.nn.regularizers.L2(factor=0.01) -> an L2 regularizer, factor * sum(w^2) (a number or {l2=}).
function M.L2(v)
  if type(v) == "table" then v = options.check("L2", v, { l2 = FACTOR }).l2 end
  options.value("L2", "l2", v, FACTOR)
  local r = L1L2({ l2 = v or 0.01 })
  r.kind = "L2"
  return r
end
M.l1, M.l2 = M.L1, M.L2
--- mg.nn.regularizers.l1_l2{l1=0.01, l2=0.01} -> an L1L2 regularizer.
function M.l1_l2(cfg)
  options.check("l1_l2", cfg, { l1 = FACTOR, l2 = FACTOR })
  return L1L2({ l1 = cfg and cfg.l1 or 0.01, l2 = cfg and cfg.l2 or 0.01 }) end

--- mg.nn.regularizers.get(id) -> a regularizer from a name ("l1", "l2", "l1_l2"), a config table or a regularizer.
function M.get(id)
  if id == nil then return nil end
  if id == "<function>" then
    error("a regularizer that was a Lua function cannot be rebuilt from a config (use nn.regularizers.L1/L2/L1L2, "
      .. "or set it again after loading)", 3)
  end
  if type(id) == "string" then
    local f = ({ l1 = M.L1, l2 = M.L2, l1_l2 = M.l1_l2 })[id]
    if not f then error("unknown regularizer '" .. id .. "' (l1, l2, l1_l2)", 3) end
    return f()
  end
  if type(id) == "function" or class.isinstance(id, Regularizer) then return id end
  if type(id) == "table" and id.class_name then return L1L2(id.config) end
  error("a regularizer must be a name, a regularizer or a function, got " .. type(id), 3)
end

--- mg.nn.regularizers.serialize(r) -> the {class_name=, config=} table of a regularizer.
function M.serialize(r)
  if r == nil then return nil end
  if class.isinstance(r, L1L2) then return { class_name = "L1L2", config = r:get_config() } end
  return "<function>"
end

return M
