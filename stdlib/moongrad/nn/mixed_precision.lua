-- moongrad.nn.mixed_precision (mg.nn.mixed_precision): dtype policies, as
-- Keras's keras.mixed_precision.
--
-- A policy names two dtypes: the one a layer's variables are stored in and
-- the one it computes in. "float32" (the default), "float64", "float16" and
-- "bfloat16" use one dtype for both; "mixed_float16" and "mixed_bfloat16"
-- keep variables in float32 and compute in the half type. A layer takes its
-- policy from its dtype= option, else from the global policy current when it
-- was made (set_global_policy). In a half-compute layer, Layer:__call casts
-- floating inputs to the compute dtype and the layer's own float32 weights
-- to the compute dtype for the call (Keras's autocast), so the layer's
-- outputs are in the compute dtype, while the gradients reach the float32
-- variables through the casts (in float32: a cast's gradient is cast back).
-- Gradients inside the half-typed part of the computation flow in the half
-- type, as in TensorFlow. Portable Lua (5.4 and LuaJIT).
local class = require("moongrad.nn.class")
local options = require("moongrad.options")

local M = {}

local PLAIN = { float32 = true, float64 = true, float16 = true, bfloat16 = true }
local MIXED = { mixed_float16 = "float16", mixed_bfloat16 = "bfloat16" }

--- mg.nn.mixed_precision.DTypePolicy(name): a dtype policy: name, compute_dtype, variable_dtype.
--- Example:
---   local p = mg.nn.mixed_precision.DTypePolicy("mixed_bfloat16")
---   print(p.compute_dtype, p.variable_dtype)   --> bfloat16 float32
local DTypePolicy = class.Object:extend("DTypePolicy")
M.DTypePolicy = DTypePolicy
M.Policy = DTypePolicy  -- Keras 2's name

-- A policy name's dtypes, or nil, message.
local function parse(name)
  if type(name) ~= "string" then return nil, "must be a policy name or a DTypePolicy, got " .. options.show(name) end
  if PLAIN[name] then return name, name end
  if MIXED[name] then return MIXED[name], "float32" end
  return nil, string.format('must be one of "float32", "float64", "float16", "bfloat16", "mixed_float16", '
    .. '"mixed_bfloat16" (a dtype policy name) or a DTypePolicy, got %s', options.show(name))
end

function DTypePolicy:__init(name)
  local compute, variable = parse(name)
  if not compute then options.raise("DTypePolicy: name " .. variable) end
  rawset(self, "name", name)
  rawset(self, "compute_dtype", compute)
  rawset(self, "variable_dtype", variable)
end

function DTypePolicy:__tostring() return string.format('<DTypePolicy "%s">', self.name) end

--- mg.nn.mixed_precision.is_policy(v) -> whether v is a DTypePolicy.
function M.is_policy(v) return class.isinstance(v, DTypePolicy) end

-- The option rule for a layer's dtype=: a policy name or a policy.
M._rule = { "string|table", check = function(v)
  if M.is_policy(v) then return nil end
  local ok, why = parse(v)
  if not ok then return why end
end }

-- policy(v): v as a DTypePolicy (v a name or a policy; nil: the global one).
function M._policy(v)
  if v == nil then return M.global_policy() end
  if M.is_policy(v) then return v end
  return DTypePolicy(v)
end

local global = DTypePolicy("float32")

--- mg.nn.mixed_precision.set_global_policy(policy): the policy of layers made from now on without dtype= ("float32", "mixed_bfloat16", "mixed_float16", ... or a DTypePolicy).
--- Example:
---   mg.nn.mixed_precision.set_global_policy("mixed_bfloat16")
---   print(mg.nn.layers.Dense(2).compute_dtype)   --> bfloat16
---   mg.nn.mixed_precision.set_global_policy("float32")
function M.set_global_policy(p)
  options.value("set_global_policy", "policy", p, M._rule)
  global = M._policy(p)
end

--- mg.nn.mixed_precision.global_policy() -> the global DTypePolicy.
function M.global_policy() return global end

-- Whether a dtype is a half type (the ones autocast concerns).
local HALF = { float16 = true, bfloat16 = true }
function M._is_half(dt) return HALF[dt] == true end

return M
