-- moongrad.nn.layers.image_preprocessing: Keras 3's image preprocessing and
-- augmentation layers on channels_last images (a 4-d batch or one 3-d image):
-- Resizing and CenterCrop, and RandomFlip, RandomRotation, RandomZoom,
-- RandomTranslation, RandomContrast and RandomCrop.
--
-- Resizing runs mg.image.resize (TF/JAX's half-pixel scale_and_translate),
-- after a centred crop (crop_to_aspect_ratio) or constant padding
-- (pad_to_aspect_ratio) to the target's aspect ratio, with Keras's integer
-- arithmetic for the box. CenterCrop crops when the image is large enough and
-- otherwise resizes the largest centred window of the target's aspect ratio
-- (Keras's smart_resize), as does RandomCrop at inference.
--
-- The augmentation layers act only in training (layer(x, true), or inside
-- fit) and are the identity otherwise (RandomCrop: the centred window). Each
-- image in a batch draws its own parameters (RandomCrop draws one window for
-- the batch, as Keras 3). Rotation, zoom and translation build the per-image
-- affine matrix Keras builds and share image_affine.affine_transform; the
-- draws come from image_affine.uniform (a seeded Variable per layer, so
-- seed= replays them and staged steps draw afresh). data_format
-- "channels_first" is refused. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local affine = require("moongrad.nn.layers.image_affine")

local M = {}
local R = util.rules

-- 1-based positions from+1 .. from+n as an int64 index tensor (a window along one axis).
local function window(from, n)
  local t = {}
  for i = 1, n do t[i] = from + i end
  return mg.tensor(t, "int64")
end

-- x (4-d) cropped to the (h, w) window starting at 0-based (h0, w0).
local function crop(x, h0, w0, h, w)
  local s = x.shape
  if h0 ~= 0 or h ~= s[2] then x = mg.take(x, window(h0, h), 2) end
  if w0 ~= 0 or w ~= s[3] then x = mg.take(x, window(w0, w), 3) end
  return x
end

local function known_hw(name, s)
  if type(s[2]) ~= "number" or type(s[3]) ~= "number" or s[2] < 0 or s[3] < 0 then
    util.raise(string.format("%s: the height and width of the images must be known, got shape %s", name,
      util.shape_str(s)))
  end
end

-- Keras's box of the target's aspect ratio inside an H x W image: {h0, w0, ch, cw}.
local function aspect_box(H, W, h, w)
  local ch = math.max(math.min(H, math.floor(W * h / w)), 1)
  local cw = math.max(math.min(W, math.floor(H * w / h)), 1)
  return math.floor((H - ch) / 2), math.floor((W - cw) / 2), ch, cw
end

local function resize(x, h, w, method, antialias)
  local s = x.shape
  if s[2] == h and s[3] == w and not antialias then
    if method == "bilinear" or method == "bicubic" or method == "nearest" then return x end
  end
  return mg.image.resize(x, { h, w }, { method = method, antialias = antialias or false })
end

-- Keras's smart_resize: the centred window of the target's aspect ratio, resized bilinearly.
local function smart_resize(x, h, w)
  local h0, w0, ch, cw = aspect_box(x.shape[2], x.shape[3], h, w)
  return resize(crop(x, h0, w0, ch, cw), h, w, "bilinear")
end

local function sized_shape(name, s, h, w)
  if #s ~= 3 and #s ~= 4 then
    util.raise(string.format("%s: expected images of rank 4 (batch, height, width, channels) or 3, got shape %s",
      name, util.shape_str(s)))
  end
  local out = util.copy(s)
  local o = #s == 4 and 1 or 0
  out[o + 1], out[o + 2] = h, w
  return out
end

local function same_shape(_, s) return util.copy(s) end

-- A factor for the config: a number as it is, a pair copied (nil stays nil).
local function factor_copy(v) return type(v) == "table" and util.copy(v) or v end

-- height: a positive integer, or (Resizing{4, 6} reads as one list) the pair {height, width}.
local HEIGHT = { "integer|table", check = function(v)
  local function ok(n) return type(n) == "number" and n >= 1 and n == math.floor(n) end
  if type(v) == "number" and not ok(v) then return "must be a positive integer, got " .. tostring(v) end
  if type(v) == "table" and (#v ~= 2 or not ok(v[1]) or not ok(v[2])) then
    return "must be a positive integer, got " .. util.shape_str(v)
  end
end }

-- The {height, width} of a sized layer's parsed options (the pair form unpacked).
local function target_size(name, cfg)
  local h, w = cfg.height, cfg.width
  if type(h) == "table" then
    if w ~= nil then util.raise(name .. ": height is a pair {height, width} and width is given too") end
    h, w = h[1], h[2]
  end
  if h == nil or w == nil then util.raise(name .. ": height and width are required (positive integers)") end
  return h, w
end

-- ---- Resizing -----------------------------------------------------------------------------

--- mg.nn.Resizing{height, width, interpolation="bilinear", crop_to_aspect_ratio=false, pad_to_aspect_ratio=false, fill_mode="constant", fill_value=0, antialias=false}
--- Resizes NHWC images to height x width (mg.image.resize: "bilinear", "nearest" or "bicubic").
--- crop_to_aspect_ratio first crops the largest centred window of the target's aspect ratio;
--- pad_to_aspect_ratio pads with fill_value instead.
--- Example:
---   local r = mg.nn.Resizing{4, 6, crop_to_aspect_ratio = true}
---   print(r(mg.rand{2, 8, 8, 3}).shape)   -- {2, 4, 6, 3}
local Resizing = Layer:extend("Resizing")
M.Resizing = Resizing

function Resizing:__init(...)
  local cfg = self:_parse({ "height", "width" }, { height = HEIGHT, width = R.positive_int,
    interpolation = { "string", one_of = { "bilinear", "nearest", "bicubic" } },
    crop_to_aspect_ratio = "boolean", pad_to_aspect_ratio = "boolean",
    fill_mode = { "string", one_of = { "constant" } }, fill_value = "number", antialias = "boolean",
    data_format = R.channels_last }, ...)
  if cfg.crop_to_aspect_ratio and cfg.pad_to_aspect_ratio then
    util.raise("Resizing: only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be true")
  end
  self.height, self.width = target_size(self.class_name, cfg)
  self.interpolation = cfg.interpolation or "bilinear"
  self.crop_to_aspect_ratio = cfg.crop_to_aspect_ratio or false
  self.pad_to_aspect_ratio = cfg.pad_to_aspect_ratio or false
  self.fill_mode = cfg.fill_mode or "constant"
  self.fill_value = cfg.fill_value or 0
  self.antialias = cfg.antialias or false
end

function Resizing:call(x)
  local x4, single = affine.images("Resizing", x, self.compute_dtype)
  local s = x4.shape
  known_hw("Resizing", s)
  local H, W, h, w = s[2], s[3], self.height, self.width
  if self.crop_to_aspect_ratio then
    local h0, w0, ch, cw = aspect_box(H, W, h, w)
    x4 = crop(x4, h0, w0, ch, cw)
  elseif self.pad_to_aspect_ratio then
    -- Keras pads the same amount on both sides of one axis: top/bottom first, else left/right
    local ph = math.floor((math.max(H, math.floor(W * h / w)) - H) / 2)
    local pw = math.floor((math.max(W, math.floor(H * w / h)) - W) / 2)
    if ph > 0 then x4 = mg.pad(x4, { 0, 0, ph, ph, 0, 0, 0, 0 }, self.fill_value)
    elseif pw > 0 then x4 = mg.pad(x4, { 0, 0, 0, 0, pw, pw, 0, 0 }, self.fill_value) end
  end
  return affine.unbatch(resize(x4, h, w, self.interpolation, self.antialias), single)
end

function Resizing:compute_output_shape(s) return sized_shape("Resizing", s, self.height, self.width) end

function Resizing:get_config()
  local cfg = Layer.get_config(self)
  cfg.height, cfg.width = self.height, self.width
  cfg.interpolation = self.interpolation
  cfg.crop_to_aspect_ratio = self.crop_to_aspect_ratio
  cfg.pad_to_aspect_ratio = self.pad_to_aspect_ratio
  cfg.fill_mode, cfg.fill_value = self.fill_mode, self.fill_value
  cfg.antialias = self.antialias
  cfg.data_format = "channels_last"
  return cfg
end

-- ---- CenterCrop ---------------------------------------------------------------------------

--- mg.nn.CenterCrop{height, width}: the centred height x width window of NHWC images; an image
--- smaller than that on either axis is resized instead (its largest centred window of the target's
--- aspect ratio, bilinearly: Keras 3's smart_resize).
--- Example:
---   print(mg.nn.CenterCrop{2, 2}(mg.rand{1, 4, 5, 3}).shape)   -- {1, 2, 2, 3}
local CenterCrop = Layer:extend("CenterCrop")
M.CenterCrop = CenterCrop

function CenterCrop:__init(...)
  local cfg = self:_parse({ "height", "width" }, { height = HEIGHT, width = R.positive_int,
    data_format = R.channels_last }, ...)
  self.height, self.width = target_size(self.class_name, cfg)
end

function CenterCrop:call(x)
  local x4, single = affine.images("CenterCrop", x, self.compute_dtype)
  local s = x4.shape
  known_hw("CenterCrop", s)
  local H, W, h, w = s[2], s[3], self.height, self.width
  local y
  if H >= h and W >= w then y = crop(x4, math.floor((H - h) / 2), math.floor((W - w) / 2), h, w)
  else y = smart_resize(x4, h, w) end
  return affine.unbatch(y, single)
end

function CenterCrop:compute_output_shape(s) return sized_shape("CenterCrop", s, self.height, self.width) end

function CenterCrop:get_config()
  local cfg = Layer.get_config(self)
  cfg.height, cfg.width = self.height, self.width
  cfg.data_format = "channels_last"
  return cfg
end

-- ---- the augmentation layers ------------------------------------------------------------

-- A random layer class: the seed Variable at build, seed= in the config.
local function random_layer(name)
  local cls = Layer:extend(name)
  M[name] = cls
  function cls:build() affine.add_seed(self) end
  return cls
end

local FILL = { "string", one_of = affine.FILL_MODES }
local INTERP = { "string", one_of = affine.INTERPOLATIONS }

-- The options of the three affine layers.
local function affine_options(self, cfg)
  self.fill_mode = cfg.fill_mode or "reflect"
  self.interpolation = cfg.interpolation or "bilinear"
  self.fill_value = cfg.fill_value or 0
  self.seed = cfg.seed
end
local function affine_config(self, cfg)
  cfg.fill_mode, cfg.interpolation, cfg.fill_value, cfg.seed = self.fill_mode, self.interpolation,
    self.fill_value, self.seed
  cfg.data_format = "channels_last"
  return cfg
end

-- Runs the affine layer's transform: matrix(self, n, H, W) returns the six (n, 1, 1) entries.
local function affine_call(self, x, training, matrix)
  local name = self.class_name
  if not training then return util.float_input(x, self.compute_dtype) end
  local x4, single = affine.images(name, x, self.compute_dtype)
  local s = x4.shape
  known_hw(name, s)
  local t = matrix(self, s[1], s[2], s[3])
  for i = 1, 6 do
    if type(t[i]) == "number" then t[i] = mg.tensor(t[i], x4.dtype)
    elseif t[i].dtype ~= x4.dtype then t[i] = mg.cast(t[i], x4.dtype) end
  end
  return affine.unbatch(affine.affine_transform(x4, t, self.interpolation, self.fill_mode, self.fill_value), single)
end

-- (n, 1) draws -> (n, 1, 1).
local function draw(self, n, low, high) return mg.unsqueeze(affine.uniform(self, n, 1, low, high), 3) end

--- mg.nn.RandomRotation{factor, fill_mode="reflect", interpolation="bilinear", seed=nil, fill_value=0}
--- In training rotates each image by its own random angle in [lower, upper] * 360 degrees about
--- its centre (factor: a number f for [-f, f] or a pair {lower, upper}, fractions of a full turn;
--- positive is counter-clockwise); the identity at inference.
--- Example:
---   local rot = mg.nn.RandomRotation{0.1, seed = 1}
---   print(rot(mg.rand{2, 8, 8, 3}, true).shape)   -- {2, 8, 8, 3}
local RandomRotation = random_layer("RandomRotation")

function RandomRotation:__init(...)
  local cfg = self:_parse({ "factor" }, { factor = affine.factor_rule, fill_mode = FILL, interpolation = INTERP,
    seed = "integer", fill_value = "number", data_format = R.channels_last,
    value_range = util.unsupported(nil, "Keras 3's RandomRotation has none") }, ...)
  if cfg.factor == nil then util.raise("RandomRotation: factor is required (a number or a pair {low, high})") end
  self.factor = cfg.factor
  self._range = affine.factor_range("RandomRotation", "factor", cfg.factor, -1, 1)
  affine_options(self, cfg)
end

local function rotation_matrix(self, n, H, W)
  local lo, hi = self._range[1], self._range[2]
  local angle = draw(self, n, lo * 2 * math.pi, hi * 2 * math.pi)   -- radians
  local c, s = mg.cos(angle), mg.sin(angle)
  local cx, cy = 0.5 * (W - 1), 0.5 * (H - 1)
  return { c, -s, cx - cx * c + cy * s, s, c, cy - cx * s - cy * c }
end

function RandomRotation:call(x, training) return affine_call(self, x, training, rotation_matrix) end
RandomRotation.compute_output_shape = same_shape
function RandomRotation:get_config()
  local cfg = Layer.get_config(self)
  cfg.factor = factor_copy(self.factor)
  return affine_config(self, cfg)
end

--- mg.nn.RandomZoom{height_factor, width_factor=nil, fill_mode="reflect", interpolation="bilinear", seed=nil, fill_value=0}
--- In training zooms each image about its centre: each axis samples the input at 1 + a draw from
--- the factor's range (a number f for [-f, f] or a pair, each > -1 and <= 1): negative zooms in,
--- positive out. Without width_factor both axes use the height draw (the aspect ratio kept).
local RandomZoom = random_layer("RandomZoom")

function RandomZoom:__init(...)
  local cfg = self:_parse({ "height_factor", "width_factor" }, { height_factor = affine.factor_rule,
    width_factor = affine.factor_rule, fill_mode = FILL, interpolation = INTERP, seed = "integer",
    fill_value = "number", data_format = R.channels_last }, ...)
  if cfg.height_factor == nil then
    util.raise("RandomZoom: height_factor is required (a number or a pair {low, high})")
  end
  self.height_factor, self.width_factor = cfg.height_factor, cfg.width_factor
  self._h = affine.factor_range("RandomZoom", "height_factor", cfg.height_factor, -1, 1, true)
  if cfg.width_factor ~= nil then
    self._w = affine.factor_range("RandomZoom", "width_factor", cfg.width_factor, -1, 1, true)
  end
  affine_options(self, cfg)
end

local function zoom_matrix(self, n, H, W)
  local hz = draw(self, n, 1 + self._h[1], 1 + self._h[2])
  local wz = self._w and draw(self, n, 1 + self._w[1], 1 + self._w[2]) or hz
  return { wz, 0, (W - 1) / 2 * (1 - wz), 0, hz, (H - 1) / 2 * (1 - hz) }
end

function RandomZoom:call(x, training) return affine_call(self, x, training, zoom_matrix) end
RandomZoom.compute_output_shape = same_shape
function RandomZoom:get_config()
  local cfg = Layer.get_config(self)
  cfg.height_factor, cfg.width_factor = factor_copy(self.height_factor), factor_copy(self.width_factor)
  return affine_config(self, cfg)
end

--- mg.nn.RandomTranslation{height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=nil, fill_value=0}
--- In training shifts each image by a draw from height_factor times its height and width_factor
--- times its width (each a number f for [-f, f] or a pair within [-1, 1]; positive moves down/right).
local RandomTranslation = random_layer("RandomTranslation")

function RandomTranslation:__init(...)
  local cfg = self:_parse({ "height_factor", "width_factor" }, { height_factor = affine.factor_rule,
    width_factor = affine.factor_rule, fill_mode = FILL, interpolation = INTERP, seed = "integer",
    fill_value = "number", data_format = R.channels_last }, ...)
  if cfg.height_factor == nil or cfg.width_factor == nil then
    util.raise("RandomTranslation: height_factor and width_factor are required (numbers or pairs {low, high})")
  end
  self.height_factor, self.width_factor = cfg.height_factor, cfg.width_factor
  self._h = affine.factor_range("RandomTranslation", "height_factor", cfg.height_factor, -1, 1)
  self._w = affine.factor_range("RandomTranslation", "width_factor", cfg.width_factor, -1, 1)
  affine_options(self, cfg)
end

local function translation_matrix(self, n, H, W)
  local dy = draw(self, n, self._h[1], self._h[2]) * H
  local dx = draw(self, n, self._w[1], self._w[2]) * W
  return { 1, 0, -dx, 0, 1, -dy }
end

function RandomTranslation:call(x, training) return affine_call(self, x, training, translation_matrix) end
RandomTranslation.compute_output_shape = same_shape
function RandomTranslation:get_config()
  local cfg = Layer.get_config(self)
  cfg.height_factor, cfg.width_factor = factor_copy(self.height_factor), factor_copy(self.width_factor)
  return affine_config(self, cfg)
end

-- ---- RandomFlip ---------------------------------------------------------------------------

--- mg.nn.RandomFlip{mode="horizontal_and_vertical", seed=nil}
--- In training each image is flipped with probability 1/2: left-right ("horizontal"), top-bottom
--- ("vertical"), or both at once ("horizontal_and_vertical", one draw for both, as Keras 3).
local RandomFlip = random_layer("RandomFlip")

function RandomFlip:__init(...)
  local cfg = self:_parse({ "mode" }, { mode = { "string", one_of = { "horizontal", "vertical",
    "horizontal_and_vertical" } }, seed = "integer", data_format = R.channels_last }, ...)
  self.mode = cfg.mode or "horizontal_and_vertical"
  self.seed = cfg.seed
end

function RandomFlip:call(x, training)
  if not training then return util.float_input(x, self.compute_dtype) end
  local x4, single = affine.images("RandomFlip", x, self.compute_dtype)
  local axes = ({ horizontal = { 3 }, vertical = { 2 }, horizontal_and_vertical = { 2, 3 } })[self.mode]
  local flip = mg.less_equal(affine.uniform(self, x4.shape[1], 1, 0, 1), 0.5)   -- (n, 1)
  local y = mg.where(mg.reshape(flip, { -1, 1, 1, 1 }), mg.flip(x4, { axis = axes }), x4)
  return affine.unbatch(y, single)
end
RandomFlip.compute_output_shape = same_shape
function RandomFlip:get_config()
  local cfg = Layer.get_config(self)
  cfg.mode, cfg.seed = self.mode, self.seed
  cfg.data_format = "channels_last"
  return cfg
end

-- ---- RandomContrast -----------------------------------------------------------------------

local value_range_rule = { "table", check = function(v)
  if #v ~= 2 or type(v[1]) ~= "number" or type(v[2]) ~= "number" or v[1] >= v[2] then
    return "must be a pair {low, high} of numbers with low < high"
  end
end }

--- mg.nn.RandomContrast{factor, value_range={0, 255}, seed=nil}
--- In training scales each image's deviation from its per-channel mean by a draw from
--- [1 - lower, 1 + upper] (factor: a number f in [0, 1] for [1, 1 + f], or a pair), then clips to
--- value_range, as Keras 3.
local RandomContrast = random_layer("RandomContrast")

function RandomContrast:__init(...)
  local cfg = self:_parse({ "factor" }, { factor = affine.factor_rule, value_range = value_range_rule,
    seed = "integer", data_format = R.channels_last }, ...)
  if cfg.factor == nil then util.raise("RandomContrast: factor is required (a number or a pair {low, high})") end
  self.factor = cfg.factor
  self._range = affine.factor_range("RandomContrast", "factor", cfg.factor, 0, 1)
  self.value_range = cfg.value_range and { cfg.value_range[1], cfg.value_range[2] } or { 0, 255 }
  self.seed = cfg.seed
end

--- layer:adjust(x, f): the contrast change by the factors f (a number or an (n, 1, 1, 1) tensor),
--- clipped to value_range: what a training call applies with its drawn factors.
function RandomContrast:adjust(x4, f)
  local mean = mg.mean(x4, { axis = { 2, 3 }, keepdims = true })
  return mg.clip((x4 - mean) * f + mean, self.value_range[1], self.value_range[2])
end

function RandomContrast:call(x, training)
  if not training then return util.float_input(x, self.compute_dtype) end
  local x4, single = affine.images("RandomContrast", x, self.compute_dtype)
  local f = affine.uniform(self, x4.shape[1], 1, 1 - self._range[1], 1 + self._range[2])
  f = mg.reshape(mg.cast(f, x4.dtype), { -1, 1, 1, 1 })
  return affine.unbatch(self:adjust(x4, f), single)
end
RandomContrast.compute_output_shape = same_shape
function RandomContrast:get_config()
  local cfg = Layer.get_config(self)
  cfg.factor = factor_copy(self.factor)
  cfg.value_range = util.copy(self.value_range)
  cfg.seed = self.seed
  return cfg
end

-- ---- RandomCrop ---------------------------------------------------------------------------

--- mg.nn.RandomCrop{height, width, seed=nil}
--- In training a random height x width window of the images (one window for the batch, as Keras 3);
--- at inference, or when an image is not larger on both axes, its largest centred window of the
--- target's aspect ratio resized to height x width.
local RandomCrop = random_layer("RandomCrop")

function RandomCrop:__init(...)
  local cfg = self:_parse({ "height", "width" }, { height = HEIGHT, width = R.positive_int, seed = "integer",
    data_format = R.channels_last }, ...)
  self.height, self.width = target_size(self.class_name, cfg)
  self.seed = cfg.seed
end

function RandomCrop:call(x, training)
  local x4, single = affine.images("RandomCrop", x, self.compute_dtype)
  local s = x4.shape
  known_hw("RandomCrop", s)
  local H, W, h, w = s[2], s[3], self.height, self.width
  if not (training and H > h and W > w) then return affine.unbatch(smart_resize(x4, h, w), single) end
  -- offsets uniform on 0..H-h and 0..W-w: floor of a draw in [0, H-h+1)
  local u = affine.uniform(self, 1, 2, 0, 1)
  local off = mg.cast(mg.floor(u * mg.tensor({ { H - h + 1, W - w + 1 } }, "float32")), "int64")
  local rows = mg.reshape(mg.take(off, mg.tensor({ 1 }, "int64"), 2), { 1 }) + window(0, h)
  local cols = mg.reshape(mg.take(off, mg.tensor({ 2 }, "int64"), 2), { 1 }) + window(0, w)
  return affine.unbatch(mg.take(mg.take(x4, rows, 2), cols, 3), single)
end
function RandomCrop:compute_output_shape(s) return sized_shape("RandomCrop", s, self.height, self.width) end
function RandomCrop:get_config()
  local cfg = Layer.get_config(self)
  cfg.height, cfg.width, cfg.seed = self.height, self.width, self.seed
  cfg.data_format = "channels_last"
  return cfg
end

return M
