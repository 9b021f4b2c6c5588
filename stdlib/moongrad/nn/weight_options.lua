-- moongrad.nn.weight_options: the `<w>_initializer` and `<w>_regularizer` options of a layer's
-- weights (kernel and bias for Dense and the convolutions), read in the constructor and written
-- back by get_config, in one place rather than four lines per weight in every layer. (The
-- `<w>_constraint` options need no code in the layers: Layer:_parse handles them.)
-- Portable Lua (5.4 and LuaJIT).
local initializers = require("moongrad.nn.initializers")
local regularizers = require("moongrad.nn.regularizers")

local M = {}

-- Kernel and bias with Keras's default initializers.
M.KERNEL_BIAS = { { "kernel", "glorot_uniform" }, { "bias", "zeros" } }

-- Sets self.<w>_initializer (the option, or the weight's default) and self.<w>_regularizer for
-- each {w, default_initializer} of `weights` from the parsed options cfg.
function M.read(self, cfg, weights)
  for _, w in ipairs(weights) do
    local p = w[1]
    self[p .. "_initializer"] = initializers.get(cfg[p .. "_initializer"] or w[2])
    self[p .. "_regularizer"] = regularizers.get(cfg[p .. "_regularizer"])
  end
end

-- Writes them into a config table (get_config); returns cfg.
function M.write(self, cfg, weights)
  for _, w in ipairs(weights) do
    local p = w[1]
    cfg[p .. "_initializer"] = initializers.serialize(self[p .. "_initializer"])
    cfg[p .. "_regularizer"] = regularizers.serialize(self[p .. "_regularizer"])
  end
  return cfg
end

return M
