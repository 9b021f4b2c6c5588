-- moongrad.nn.initializers: weight initializers with Keras's names and
-- formulas (fan-in/fan-out of dense and convolution kernels, variance
-- scaling, truncated normals cut at two standard deviations).
--
-- An initializer is a callable object `init(shape, dtype)` returning a new
-- tensor, with get_config(); `get` accepts a name ("glorot_uniform"), a
-- {class_name=, config=} table, an initializer, or a plain function. Random
-- ones draw from mg.random, so mg.random.seed makes them reproducible.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local class = require("moongrad.nn.class")
local options = require("moongrad.options")

local M = {}

--- mg.nn.initializers.Initializer{seed=}: the base class of initializers; initializer(shape, dtype) draws a tensor.
local Initializer = class.Object:extend("Initializer")
class.set_noun(Initializer, "initializer")
M.Initializer = Initializer

function Initializer:__init(cfg) self.config = cfg or {} end

-- An initializer given a seed draws the same values every call (Keras 3's
-- integer seed): the global generator is seeded for the draw and restored.
function Initializer:__call(shape, dtype)
  local seed = self.config and self.config.seed
  if seed == nil then return self:generate(shape, dtype or "float32") end
  local prev = mg.random.get_state()
  mg.random.seed(seed)
  local ok, v = pcall(self.generate, self, shape, dtype or "float32")
  mg.random.set_state(prev)
  if not ok then error(v, 0) end
  return v
end
--- initializer:generate(shape, dtype) -> a new tensor of that shape and dtype drawn from the
--- initializer's distribution (initializer(shape, dtype) calls it, seeded by the seed option).
--- A custom initializer (Initializer:extend("Mine")) defines it.
function Initializer:generate(shape, dtype)
  error(string.format("%s: an initializer must define generate(shape, dtype) (shape %s, dtype %s)",
    tostring(self.class_name), table.concat(shape or {}, "x"), tostring(dtype)), 2)
end

--- initializer:get_config() -> a table of the constructor options.
function Initializer:get_config() return self.config end

local classes = {}

local SEED = { seed = "integer" }

local function define(name, key, defaults, generate, spec)
  local cls = Initializer:extend(name)
  cls.__init = function(self, cfg)
    options.check(name, cfg, spec or {})
    local c = {}
    for k, v in pairs(defaults) do c[k] = v end
    for k, v in pairs(cfg or {}) do c[k] = v end
    self.config = c
  end
  cls.generate = generate
  cls.key = key
  M[name] = cls
  classes[name] = cls
  classes[key] = cls
  return cls
end

-- Keras's fans: dense (in, out); convolution kernels (h, w, in, out) scale by h*w.
function M.compute_fans(shape)
  local n = #shape
  if n == 0 then return 1, 1 end
  if n == 1 then return shape[1], shape[1] end
  if n == 2 then return shape[1], shape[2] end
  local receptive = 1
  for i = 1, n - 2 do receptive = receptive * shape[i] end
  return shape[n - 1] * receptive, shape[n] * receptive
end

--- mg.nn.initializers.Zeros{}: zeros.
define("Zeros", "zeros", {}, function(_, shape, dtype) return mg.zeros(shape, dtype) end)
--- mg.nn.initializers.Ones{}: ones.
define("Ones", "ones", {}, function(_, shape, dtype) return mg.ones(shape, dtype) end)
--- mg.nn.initializers.Constant{value=0}: every element value.
define("Constant", "constant", { value = 0 }, function(self, shape, dtype)
  return mg.full(shape, self.config.value, dtype)
end, { value = "number" })
--- mg.nn.initializers.RandomUniform{minval=-0.05, maxval=0.05, seed=}: uniform values.
local uniform = define("RandomUniform", "random_uniform", { minval = -0.05, maxval = 0.05 },
  function(self, shape, dtype)
  return mg.random.uniform(shape, self.config.minval, self.config.maxval, dtype)
end, { minval = "number", maxval = "number", seed = "integer" })
local normal_spec = { mean = "number", stddev = { "number", min = 0 }, seed = "integer" }
--- mg.nn.initializers.RandomNormal{mean=0, stddev=0.05, seed=}: normal values.
define("RandomNormal", "random_normal", { mean = 0, stddev = 0.05 }, function(self, shape, dtype)
  return mg.random.normal(shape, self.config.mean, self.config.stddev, dtype)
end, normal_spec)
--- mg.nn.initializers.TruncatedNormal{mean=0, stddev=0.05, seed=}: normal values redrawn beyond two stddevs.
define("TruncatedNormal", "truncated_normal", { mean = 0, stddev = 0.05 }, function(self, shape, dtype)
  return mg.random.truncated_normal(shape, self.config.mean, self.config.stddev, dtype)
end, normal_spec)
local uniform_init = uniform.__init
uniform.__init = function(self, cfg)
  uniform_init(self, cfg)
  if self.config.minval > self.config.maxval then
    options.raise(string.format("RandomUniform: minval (%s) must not exceed maxval (%s)", tostring(self.config.minval),
      tostring(self.config.maxval)))
  end
end

local function variance_scaling(self, shape, dtype)
  local c = self.config
  local fan_in, fan_out = M.compute_fans(shape)
  local n = (c.mode == "fan_in" and fan_in) or (c.mode == "fan_out" and fan_out) or (fan_in + fan_out) / 2
  local scale = c.scale / math.max(1, n)
  if c.distribution == "uniform" then
    local limit = math.sqrt(3 * scale)
    return mg.random.uniform(shape, -limit, limit, dtype)
  elseif c.distribution == "untruncated_normal" or c.distribution == "normal" then
    return mg.random.normal(shape, 0, math.sqrt(scale), dtype)
  end
  -- the stddev of a unit normal truncated at +-2 is 0.8796...: undo it
  return mg.random.truncated_normal(shape, 0, math.sqrt(scale) / 0.87962566103423978, dtype)
end

--- mg.nn.initializers.VarianceScaling{scale=1, mode="fan_in", distribution="truncated_normal", seed=}
--- Values whose variance is scale / n, n the fan in, fan out or their mean (mode).
define("VarianceScaling", "variance_scaling", { scale = 1, mode = "fan_in", distribution = "truncated_normal" },
  variance_scaling, { scale = { "number", above = 0 }, mode = { "string", one_of = { "fan_in", "fan_out", "fan_avg" } },
    distribution = { "string", one_of = { "truncated_normal", "untruncated_normal", "normal", "uniform" } },
    seed = "integer" })

local function preset(name, key, scale, mode, distribution)
  local cls = define(name, key, {}, variance_scaling)
  cls.__init = function(self, cfg)
    options.check(name, cfg, SEED)
    self.config = { seed = cfg and cfg.seed }
    self.scale, self.mode, self.distribution = scale, mode, distribution
  end
  cls.generate = function(self, shape, dtype)
    return variance_scaling({ config = { scale = self.scale, mode = self.mode, distribution = self.distribution } },
      shape, dtype)
  end
end
--- mg.nn.initializers.GlorotUniform{seed=}: uniform with variance 1 / mean(fan_in, fan_out) (the default kernel initializer).
preset("GlorotUniform", "glorot_uniform", 1, "fan_avg", "uniform")
--- mg.nn.initializers.GlorotNormal{seed=}: truncated normal with variance 1 / mean(fan_in, fan_out).
preset("GlorotNormal", "glorot_normal", 1, "fan_avg", "truncated_normal")
--- mg.nn.initializers.HeUniform{seed=}: uniform with variance 2 / fan_in (for relu layers).
preset("HeUniform", "he_uniform", 2, "fan_in", "uniform")
--- mg.nn.initializers.HeNormal{seed=}: truncated normal with variance 2 / fan_in (for relu layers).
preset("HeNormal", "he_normal", 2, "fan_in", "truncated_normal")
--- mg.nn.initializers.LecunUniform{seed=}: uniform with variance 1 / fan_in.
preset("LecunUniform", "lecun_uniform", 1, "fan_in", "uniform")
--- mg.nn.initializers.LecunNormal{seed=}: truncated normal with variance 1 / fan_in.
preset("LecunNormal", "lecun_normal", 1, "fan_in", "truncated_normal")

-- A matrix with orthonormal rows or columns (the smaller side), times gain:
-- Gram-Schmidt over the rows of a normal sample, in float64.
--- mg.nn.initializers.Orthogonal{gain=1, seed=}: a random orthogonal matrix times gain.
define("Orthogonal", "orthogonal", { gain = 1 }, function(self, shape, dtype)
  if #shape < 2 then error("Orthogonal: needs a shape of at least 2 dimensions, got " .. #shape .. "", 3) end
  local cols = shape[#shape]
  local rows = 1
  for i = 1, #shape - 1 do rows = rows * shape[i] end
  local flip = rows > cols
  local r, c = rows, cols
  if flip then r, c = cols, rows end
  local a = mg.random.normal({ r, c }, 0, 1, "float64")
  local q
  for i = 1, r do
    local v = a[i]
    if q then v = v - mg.matmul(mg.matmul(q, v), q) end
    v = v / mg.sqrt(mg.sum(v * v))
    v = mg.unsqueeze(v, 1)
    q = q and mg.concat({ q, v }, 1) or v
  end
  if flip then q = mg.transpose(q) end
  return mg.cast(mg.reshape(q * self.config.gain, shape), dtype)
end, { gain = "number", seed = "integer" })

--- mg.nn.initializers.Identity{gain=1}: gain times the identity matrix (2-d shapes).
define("Identity", "identity", { gain = 1 }, function(self, shape, dtype)
  if #shape ~= 2 then error("Identity: needs a 2-d shape", 3) end
  return mg.eye(shape[1], shape[2], dtype) * self.config.gain
end, { gain = "number" })

-- Keras's short names beside the snake_case ones ("uniform" is RandomUniform, ...).
classes.uniform, classes.normal, classes.one, classes.zero = classes.random_uniform, classes.random_normal,
  classes.ones, classes.zeros

-- get(identifier): an initializer from a name, a config table, an
-- initializer or a function (shape, dtype) -> tensor.
function M.get(id)
  if id == nil then return nil end
  if type(id) == "string" then
    local cls = classes[id]
    if not cls then
      local names = {}
      for k, c in pairs(classes) do if k == c.key then names[#names + 1] = k end end
      table.sort(names)
      error(string.format("unknown initializer '%s' (one of: %s)", id, table.concat(names, ", ")), 3)
    end
    return cls({})
  end
  if type(id) == "function" then return id end
  if class.isinstance(id, Initializer) then return id end
  if type(id) == "table" and id.class_name then
    local cls = classes[id.class_name]
    if not cls then error("unknown initializer class '" .. tostring(id.class_name) .. "'", 3) end
    return cls(id.config or {})
  end
  error("an initializer must be a name, an initializer or a function, got " .. type(id), 3)
end

-- The config form of an initializer: its name when it has no settings.
function M.serialize(init)
  if type(init) == "function" then return "<function>" end
  local cfg = init:get_config()
  if next(cfg) == nil then return init.key end
  return { class_name = init.class_name, config = cfg }
end

return M
