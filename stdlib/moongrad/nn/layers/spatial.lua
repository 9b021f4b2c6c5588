-- moongrad.nn.layers.spatial: Keras 3's ZeroPadding1D/2D/3D, Cropping1D/2D/3D
-- and UpSampling1D/2D/3D (nearest; UpSampling2D also bilinear/bicubic through
-- mg.image.resize, as Keras 3) on channels_last input. One factory per
-- kind takes the number of spatial axes (`rank`). Amounts are normalised as
-- Keras does: n -> every side n; {a, b, ...} -> per axis, both sides; {{before,
-- after}, ...} per axis (1-d: {left, right}). Padding is mg.pad with zeros,
-- cropping a view through mg.slice (negative ends count from the end, so an
-- unknown batch stays unknown), upsampling repeats each position `size` times
-- along its axis (a size-1 axis inserted after it, tiled, then merged).
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")

local M = {}

local AXES = { [1] = "{left, right}", [2] = "{{top, bottom}, {left, right}}",
  [3] = "{{front, back}, {top, bottom}, {left, right}}" }
local LAYOUT = { [1] = "(batch, steps, channels)", [2] = "(batch, height, width, channels)",
  [3] = "(batch, depth, height, width, channels)" }

local function is_count(v) return type(v) == "number" and v >= 0 and v == math.floor(v) end

-- n | {a, b, ...} | {{before, after}, ...} -> {{before, after}, ...} (rank pairs), or nil.
local function pairs_of(v, rank)
  if is_count(v) then
    local out = {}
    for i = 1, rank do out[i] = { v, v } end
    return out
  end
  if type(v) ~= "table" then return nil end
  if rank == 1 then
    if #v == 2 and is_count(v[1]) and is_count(v[2]) then return { { v[1], v[2] } } end
    return nil
  end
  if #v ~= rank then return nil end
  local out = {}
  for i = 1, rank do
    local a = v[i]
    if is_count(a) then out[i] = { a, a }
    elseif type(a) == "table" and #a == 2 and is_count(a[1]) and is_count(a[2]) then out[i] = { a[1], a[2] }
    else return nil end
  end
  return out
end

local function amounts_rule(rank)
  return { "integer|table", check = function(v)
    if pairs_of(v, rank) == nil then
      return string.format("must be a non-negative integer, one per axis, or %s, got %s", AXES[rank],
        type(v) == "table" and util.shape_str(v) or tostring(v))
    end
  end }
end

local function check_input(s, rank)
  if #s ~= rank + 2 then
    error(string.format("expected a %d-d input %s, got shape %s", rank + 2, LAYOUT[rank], util.shape_str(s)), 0)
  end
end

-- The config form: 1-d {left, right}, else {{before, after}, ...}.
local function config_form(p, rank)
  if rank == 1 then return { p[1][1], p[1][2] } end
  local out = {}
  for i = 1, rank do out[i] = { p[i][1], p[i][2] } end
  return out
end

-- ---- ZeroPadding ----------------------------------------------------------------------

local function zero_padding(name, rank, default)
  local cls = Layer:extend(name)
  cls.passthrough_dtype = true
  function cls:__init(...)
    local cfg = self:_parse({ "padding" }, { padding = amounts_rule(rank), data_format = util.rules.channels_last },
      ...)
    self.padding = pairs_of(cfg.padding == nil and default or cfg.padding, rank)
    local flat = { 0, 0 }
    for i = 1, rank do flat[#flat + 1] = self.padding[i][1]; flat[#flat + 1] = self.padding[i][2] end
    flat[#flat + 1], flat[#flat + 2] = 0, 0
    self._flat = flat
  end
  function cls:call(x) return mg.pad(x, self._flat) end
  function cls:compute_output_shape(s)
    check_input(s, rank)
    local out = util.copy(s)
    for i = 1, rank do
      if s[i + 1] ~= -1 then out[i + 1] = s[i + 1] + self.padding[i][1] + self.padding[i][2] end
    end
    return out
  end
  function cls:get_config()
    local cfg = Layer.get_config(self)
    cfg.padding = config_form(self.padding, rank)
    cfg.data_format = "channels_last"
    return cfg
  end
  M[name] = cls
end

--- mg.nn.ZeroPadding1D{padding=1}: zeros added before and after the steps of (batch, steps, channels) input; padding n or {left, right}.
zero_padding("ZeroPadding1D", 1, 1)
--- mg.nn.ZeroPadding2D{padding=1}: zeros around the rows and columns of NHWC images; padding n, {h, w} (both sides) or {{top, bottom}, {left, right}}.
zero_padding("ZeroPadding2D", 2, 1)
--- mg.nn.ZeroPadding3D{padding=1}: zeros around each spatial axis of NDHWC volumes; padding n, {d, h, w} or {{front, back}, {top, bottom}, {left, right}}.
zero_padding("ZeroPadding3D", 3, 1)

-- ---- Cropping -------------------------------------------------------------------------

local function cropping(name, rank, default)
  local cls = Layer:extend(name)
  cls.passthrough_dtype = true
  function cls:__init(...)
    local cfg = self:_parse({ "cropping" }, { cropping = amounts_rule(rank), data_format = util.rules.channels_last },
      ...)
    self.cropping = pairs_of(cfg.cropping == nil and default or cfg.cropping, rank)
    local ranges = { { 1, -1 } }
    for i = 1, rank do ranges[i + 1] = { 1 + self.cropping[i][1], -1 - self.cropping[i][2] } end
    ranges[rank + 2] = { 1, -1 }
    self._ranges = ranges
  end
  function cls:call(x)
    local s = x.shape
    for i = 1, rank do
      local n = s[i + 1]
      if type(n) == "number" and n <= self.cropping[i][1] + self.cropping[i][2] then
        util.raise(string.format("%s: cropping {%d, %d} leaves nothing of axis %d (size %d) of the input %s", name,
          self.cropping[i][1], self.cropping[i][2], i + 1, n, util.shape_str(s)))
      end
    end
    return mg.slice(x, self._ranges)
  end
  function cls:compute_output_shape(s)
    check_input(s, rank)
    local out = util.copy(s)
    for i = 1, rank do
      if s[i + 1] ~= -1 then
        out[i + 1] = s[i + 1] - self.cropping[i][1] - self.cropping[i][2]
        if out[i + 1] <= 0 then
          error(string.format("cropping {%d, %d} leaves nothing of axis %d of the input %s", self.cropping[i][1],
            self.cropping[i][2], i + 1, util.shape_str(s)), 0)
        end
      end
    end
    return out
  end
  function cls:get_config()
    local cfg = Layer.get_config(self)
    cfg.cropping = config_form(self.cropping, rank)
    cfg.data_format = "channels_last"
    return cfg
  end
  M[name] = cls
end

--- mg.nn.Cropping1D{cropping={1, 1}}: drops steps from the start and end of (batch, steps, channels) input; cropping n or {left, right}.
cropping("Cropping1D", 1, 1)
--- mg.nn.Cropping2D{cropping=0}: drops rows and columns from the edges of NHWC images; cropping n, {h, w} (both sides) or {{top, bottom}, {left, right}}.
cropping("Cropping2D", 2, 0)
--- mg.nn.Cropping3D{cropping=1}: drops positions from the edges of each spatial axis of NDHWC volumes; cropping n, {d, h, w} or {{front, back}, {top, bottom}, {left, right}}.
cropping("Cropping3D", 3, 1)

-- ---- UpSampling -----------------------------------------------------------------------

-- x with each position of axis `axis` repeated s times.
local function repeat_axis(x, axis, s)
  if s == 1 then return x end
  local shape = x.shape
  local expanded, reps, merged = {}, {}, {}
  for i = 1, #shape do
    expanded[#expanded + 1] = shape[i]
    reps[#reps + 1] = 1
    if i == axis then
      expanded[#expanded + 1] = 1
      reps[#reps + 1] = s
    end
    merged[i] = i == axis and shape[i] * s or shape[i]
  end
  expanded[1], merged[1] = -1, -1
  return mg.reshape(mg.tile(mg.reshape(x, expanded), reps), merged)
end

local function upsampling(name, rank)
  local cls = Layer:extend(name)
  cls.passthrough_dtype = true
  function cls:__init(...)
    local R = {}
    local spec = { size = { "integer|table", check = function(v)
      local ok = type(v) == "number" and v >= 1 and v == math.floor(v)
      if type(v) == "table" then
        ok = #v == rank
        for i = 1, rank do ok = ok and type(v[i]) == "number" and v[i] >= 1 and v[i] == math.floor(v[i]) end
      end
      if not ok then return "must be a positive integer or one per spatial axis (" .. rank .. " of them)" end
    end }, data_format = util.rules.channels_last }
    if rank == 2 then spec.interpolation = { "string", one_of = { "nearest", "bilinear", "bicubic" } } end
    local cfg = self:_parse({ "size" }, spec, ...)
    local size = cfg.size or 2
    for i = 1, rank do R[i] = type(size) == "number" and size or size[i] end
    self.size = R
    self.interpolation = cfg.interpolation or "nearest"
    -- resizing computes in floats: the output is the compute dtype, not the input's
    if self.interpolation ~= "nearest" then rawset(self, "passthrough_dtype", false) end
  end
  function cls:call(x)
    if rank == 2 and self.interpolation ~= "nearest" then
      -- Keras 3 resizes (ops.image.resize, no antialiasing) for the other methods
      local s = x.shape
      return mg.image.resize(util.float_input(x, self.compute_dtype), { s[2] * self.size[1], s[3] * self.size[2] },
        { method = self.interpolation })
    end
    for i = 1, rank do x = repeat_axis(x, i + 1, self.size[i]) end
    return x
  end
  function cls:compute_output_shape(s)
    check_input(s, rank)
    local out = util.copy(s)
    for i = 1, rank do
      if s[i + 1] ~= -1 then out[i + 1] = s[i + 1] * self.size[i] end
    end
    return out
  end
  function cls:get_config()
    local cfg = Layer.get_config(self)
    cfg.size = rank == 1 and self.size[1] or util.copy(self.size)
    if rank == 2 then cfg.interpolation = self.interpolation end
    cfg.data_format = "channels_last"
    return cfg
  end
  M[name] = cls
end

--- mg.nn.UpSampling1D{size=2}: each step of (batch, steps, channels) input repeated size times.
upsampling("UpSampling1D", 1)
--- mg.nn.UpSampling2D{size=2, interpolation="nearest"}: each row and column of NHWC images repeated size (n or {h, w}) times;
--- interpolation "bilinear" or "bicubic" resizes to size times the height and width instead (Keras 3's ops.image.resize).
upsampling("UpSampling2D", 2)
--- mg.nn.UpSampling3D{size=2}: each position of NDHWC volumes repeated size (n or {d, h, w}) times along each axis.
upsampling("UpSampling3D", 3)

return M
