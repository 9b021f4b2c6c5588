-- moongrad.nn.layers.reshaping: Flatten and Reshape. Both keep the batch
-- axis and reshape the rest (views when the layout allows).
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")

local M = {}

--- mg.nn.Flatten{}: reshapes (batch, ...) to (batch, product of the rest), e.g. before a Dense.
--- Example:
---   print(mg.nn.Flatten()(mg.ones{2, 28, 28}).shape)   -- {2, 784}
local Flatten = Layer:extend("Flatten")
M.Flatten = Flatten
Flatten.passthrough_dtype = true

function Flatten:__init(...) self:_parse({}, { data_format = util.rules.channels_last }, ...) end

function Flatten:call(x)
  local s = x.shape
  if #s == 2 then return x end
  for i = 2, #s do   -- a size unknown while tracing has no Lua product: let reshape infer it
    if core.is_unknown_size(s[i]) then return mg.reshape(x, { s[1], -1 }) end
  end
  return mg.reshape(x, { s[1], util.product(s, 2) })
end

function Flatten:compute_output_shape(s)
  if #s < 1 then error("Flatten needs an input with a batch axis, got a scalar", 0) end
  local n = 1
  for i = 2, #s do
    if s[i] == -1 then n = -1; break end
    n = n * s[i]
  end
  return { s[1], n }
end

--- mg.nn.Reshape{target_shape}: reshapes each sample (the batch axis stays); -1 infers one size.
local Reshape = Layer:extend("Reshape")
Reshape.list_argument = true   -- Reshape{28, 28, 1} is one shape
M.Reshape = Reshape
Reshape.passthrough_dtype = true

function Reshape:__init(...)
  local cfg = self:_parse({ "target_shape" }, { target_shape = "integer|table" }, ...)
  local t = cfg.target_shape
  if type(t) == "number" then t = { t } end
  if type(t) ~= "table" or #t == 0 then
    util.raise("Reshape: target_shape must be a list of sizes (without the batch axis), got " .. tostring(t))
  end
  local unknown = 0
  for i, d in ipairs(t) do
    if type(d) ~= "number" or (d < 1 and d ~= -1) then
      util.raise(string.format("Reshape: target_shape entry %d must be a positive size or -1, got %s", i, tostring(d)))
    end
    if d == -1 then unknown = unknown + 1 end
  end
  if unknown > 1 then util.raise("Reshape: at most one entry of target_shape may be -1") end
  self.target_shape = util.copy(t)
end

function Reshape:call(x)
  local s = { x.shape[1] }
  for i, d in ipairs(self.target_shape) do s[i + 1] = d end
  return mg.reshape(x, s)
end

function Reshape:compute_output_shape(s)
  local out = { s[1] }
  local known, total, missing = 1, 1, nil
  for i = 2, #s do
    if s[i] == -1 then total = -1 elseif total ~= -1 then total = total * s[i] end
  end
  for i, d in ipairs(self.target_shape) do
    out[i + 1] = d
    if d == -1 then missing = i + 1 else known = known * d end
  end
  if total ~= -1 then
    if missing then
      if total % known ~= 0 then
        error(string.format("cannot reshape an input of shape %s (%d values per sample) into %s", util.shape_str(s),
          total, util.shape_str(self.target_shape)), 0)
      end
      out[missing] = total / known
      if math.tointeger then out[missing] = math.tointeger(out[missing]) end
    elseif known ~= total then
      error(string.format("cannot reshape an input of shape %s (%d values per sample) into %s", util.shape_str(s),
        total, util.shape_str(self.target_shape)), 0)
    end
  end
  return out
end

function Reshape:get_config()
  local cfg = Layer.get_config(self)
  cfg.target_shape = util.copy(self.target_shape)
  return cfg
end

return M
