-- moongrad.nn.activations: activation functions by Keras name.
--
-- softmax and sigmoid remember the logits they were computed from (a
-- weak-keyed table from result to input, TF Keras's `_keras_logits`), so a
-- cross-entropy loss given probabilities from a softmax/sigmoid layer can
-- use the fused, numerically stable with-logits form instead of log(p).
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")

local M = {}

-- result tensor -> {logits = x, kind = "softmax"|"sigmoid"}
M.logits_of = setmetatable({}, { __mode = "k" })

local fns = {}

--- mg.nn.activations.linear(x) -> x unchanged.
function fns.linear(x) return x end
fns.relu = mg.relu
--- mg.nn.activations.sigmoid(x) -> 1 / (1 + e^-x) (a loss with from_logits=false sees its logits).
fns.sigmoid = function(x)
  local y = mg.sigmoid(x)
  M.logits_of[y] = { logits = x, kind = "sigmoid" }
  return y
end
fns.tanh = mg.tanh
--- mg.nn.activations.softmax(x) -> exp(x) / sum(exp(x)) over the last axis.
fns.softmax = function(x)
  local y = mg.softmax(x, -1)
  M.logits_of[y] = { logits = x, kind = "softmax" }
  return y
end
--- mg.nn.activations.log_softmax(x) -> x - logsumexp(x) over the last axis.
fns.log_softmax = function(x) return mg.log_softmax(x, -1) end
fns.softplus = mg.softplus
--- mg.nn.activations.softsign(x) -> x / (|x| + 1), a smooth sign.
fns.softsign = function(x) return x / (mg.abs(x) + 1) end
fns.exponential = mg.exp
-- elu, celu, gelu, leaky_relu, hard_sigmoid, hard_swish, log_sigmoid: the engine's one-pass kernels
-- (mg.elu ...) with Keras's defaults (gelu exact, leaky_relu's slope 0.2).
fns.elu = mg.elu
fns.celu = mg.celu
fns.log_sigmoid = mg.log_sigmoid
--- mg.nn.activations.selu(x) -> scale * elu with alpha 1.6733, scale 1.0507 (self-normalising).
fns.selu = function(x)
  local alpha, scale = 1.6732632423543772, 1.0507009873554805
  return mg.where(mg.greater(x, 0), x * scale, mg.expm1(x) * (alpha * scale))
end
fns.gelu = mg.gelu
--- mg.nn.activations.swish(x) -> x * sigmoid(x) (also silu).
fns.swish = function(x) return x * mg.sigmoid(x) end
fns.silu = fns.swish
--- mg.nn.activations.relu6(x) -> min(max(x, 0), 6).
fns.relu6 = function(x) return mg.clip(x, 0, 6) end
fns.leaky_relu = mg.leaky_relu
fns.hard_sigmoid = mg.hard_sigmoid
fns.hard_silu = mg.hard_swish   -- Keras 3's name; hard_swish its alias
fns.hard_swish = mg.hard_swish
--- mg.nn.activations.mish(x) -> x * tanh(softplus(x)).
fns.mish = function(x) return x * mg.tanh(mg.softplus(x)) end

M.functions = fns
for k, f in pairs(fns) do M[k] = f end

local names = setmetatable({}, { __mode = "k" })
for k, f in pairs(fns) do if not names[f] or k < names[f] then names[f] = k end end
names[fns.silu] = "silu"
names[fns.swish] = "swish"

-- get(id): the function for a name (nil and "linear" give identity), or
-- the function itself.
function M.get(id)
  if id == nil then return fns.linear end
  if type(id) == "function" then return id end
  if type(id) == "string" then
    local f = fns[id]
    if not f then
      local list = {}
      for k in pairs(fns) do list[#list + 1] = k end
      table.sort(list)
      error(string.format("unknown activation '%s' (one of: %s)", id, table.concat(list, ", ")), 3)
    end
    return f
  end
  -- a callable object (a layer, say)
  if type(id) == "table" and getmetatable(id) and getmetatable(id).__call then return id end
  error("an activation must be a name or a function, got " .. type(id), 3)
end

-- The name of an activation for configs ("<function>" for user functions).
function M.serialize(f)
  if f == nil then return "linear" end
  return names[f] or "<function>"
end

return M
