-- moongrad.nn.layers.pooling: MaxPooling2D, AveragePooling2D (NHWC windows
-- over the engine's max_pool2d / avg_pool2d) and the global poolings
-- GlobalAveragePooling2D / GlobalMaxPooling2D (a mean or max over height
-- and width). Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")

local M = {}

local function check4(s)
  if #s ~= 4 then
    error(string.format("expected a 4-d NHWC input (batch, height, width, channels), got shape %s",
      util.shape_str(s)), 0)
  end
end

local function pool_layer(name, op)
  local cls = Layer:extend(name)
  cls.passthrough_dtype = true
  function cls:__init(...)
    local R = util.rules
    local cfg = self:_parse({ "pool_size", "strides", "padding" }, { pool_size = R.pair, strides = R.pair,
      padding = R.padding, data_format = R.channels_last }, ...)
    self.pool_size = util.pair(cfg.pool_size or 2, "pool_size", name)
    self.strides = util.pair(cfg.strides or self.pool_size, "strides", name)
    self.padding = (cfg.padding or "valid"):lower()
    self._opts = { ksize = self.pool_size, strides = self.strides, padding = self.padding }
  end
  function cls:call(x) return op(x, self._opts) end
  function cls:compute_output_shape(s)
    check4(s)
    local out = { s[1], 0, 0, s[4] }
    for i = 1, 2 do
      local n, k, st = s[i + 1], self.pool_size[i], self.strides[i]
      if n == -1 then out[i + 1] = -1
      elseif self.padding == "same" then out[i + 1] = math.floor((n + st - 1) / st)
      else
        out[i + 1] = math.floor((n - k) / st) + 1
        if n < k then
          error(string.format("the input %s is smaller than the pool size %dx%d", util.shape_str(s),
            self.pool_size[1], self.pool_size[2]), 0)
        end
      end
    end
    return out
  end
  function cls:get_config()
    local cfg = Layer.get_config(self)
    cfg.pool_size = util.copy(self.pool_size)
    cfg.strides = util.copy(self.strides)
    cfg.padding = self.padding
    cfg.data_format = "channels_last"
    return cfg
  end
  M[name] = cls
  return cls
end

--- mg.nn.MaxPooling2D{pool_size=2, strides=pool_size, padding="valid"}: the maximum of each window of NHWC input (also MaxPool2D).
pool_layer("MaxPooling2D", mg.max_pool2d)
--- mg.nn.AveragePooling2D{pool_size=2, strides=pool_size, padding="valid"}: the mean of each window of NHWC input (also AvgPool2D).
pool_layer("AveragePooling2D", function(x, o) return mg.avg_pool2d(util.float_input(x), o) end)
M.MaxPool2D, M.AvgPool2D = M.MaxPooling2D, M.AveragePooling2D

local function global_layer(name, reduce)
  local cls = Layer:extend(name)
  cls.passthrough_dtype = true
  function cls:__init(...)
    local cfg = self:_parse({}, { data_format = util.rules.channels_last, keepdims = "boolean" }, ...)
    self.keepdims = cfg.keepdims and true or false
  end
  function cls:call(x) return reduce(x, { axis = { 2, 3 }, keepdims = self.keepdims }) end
  function cls:compute_output_shape(s)
    check4(s)
    if self.keepdims then return { s[1], 1, 1, s[4] } end
    return { s[1], s[4] }
  end
  function cls:get_config()
    local cfg = Layer.get_config(self)
    cfg.keepdims = self.keepdims
    cfg.data_format = "channels_last"
    return cfg
  end
  M[name] = cls
end

--- mg.nn.GlobalAveragePooling2D{keepdims=false}: the mean over height and width of NHWC input (also GlobalAvgPool2D).
global_layer("GlobalAveragePooling2D", function(x, o) return mg.mean(util.float_input(x), o) end)
--- mg.nn.GlobalMaxPooling2D{keepdims=false}: the maximum over height and width of NHWC input (also GlobalMaxPool2D).
global_layer("GlobalMaxPooling2D", mg.max)
M.GlobalAvgPool2D, M.GlobalMaxPool2D = M.GlobalAveragePooling2D, M.GlobalMaxPooling2D

return M
