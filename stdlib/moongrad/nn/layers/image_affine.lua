-- moongrad.nn.layers.image_affine: the pieces the image augmentation layers
-- share — Keras 3's affine_transform as tensor ops, the per-layer seeded
-- uniform draws, and the factor rules.
--
-- affine_transform follows keras.ops.image.affine_transform on the JAX backend
-- (jax.scipy.ndimage.map_coordinates, order 0 or 1): output pixel (y, x) reads
-- the input at x' = a0*x + a1*y + a2, y' = b0*x + b1*y + b2 (0-based pixel
-- indices, one transform per image). Bilinear takes the four neighbours
-- floor(c), floor(c)+1 with weights 1 - frac, frac; nearest rounds halves
-- away from zero. Out-of-range neighbour indices are mapped by the fill mode:
-- reflect (d c b a | a b c d | d c b a, period 2n), wrap (period n), nearest
-- (clamped), constant (the neighbour contributes fill_value). The whole
-- sampling grid is computed at once and read with one mg.take per neighbour
-- from the images flattened to (batch*height*width, channels), so there is
-- no per-pixel Lua loop and the graph stages (the batch may be unknown: its
-- offsets come from a cumsum of ones).
--
-- The random draws come from the engine's seeded dropout op, as Dropout's
-- mask does: a per-layer int64 seed Variable read and advanced on every
-- training call, so a staged step draws afresh without retracing and seed=
-- (or mg.random.seed) replays the sequence. A uniform number in [0, 1) is 24
-- fair bits (dropout of ones at rate 1/2) summed with weights 2^-k.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local util = require("moongrad.nn.util")

local M = {}

-- ---- fill modes ---------------------------------------------------------------------

M.FILL_MODES = { "reflect", "wrap", "constant", "nearest" }
M.INTERPOLATIONS = { "bilinear", "nearest" }

-- Integer-valued float index tensor i mapped into [0, n) by the fill mode (constant clamps;
-- its validity mask is taken separately).
local function fix_index(i, n, mode)
  if mode == "wrap" then return mg.mod(i, n) end
  if mode == "reflect" then
    local r = mg.mod(i, 2 * n)
    return mg.where(mg.greater_equal(r, n), (2 * n - 1) - r, r)
  end
  return mg.clip(i, 0, n - 1)
end

-- jax's round for order 0: halves away from zero (mg.round rounds them to even).
local function round_away(c) return mg.sign(c) * mg.floor(mg.abs(c) + 0.5) end

--- affine_transform(x, t, interpolation, fill_mode, fill_value): Keras 3's affine_transform of NHWC
--- images x (float), t a list of six (batch, 1, 1) tensors {a0, a1, a2, b0, b1, b2}: output pixel
--- (y, x) samples the input at (b0*x + b1*y + b2, a0*x + a1*y + a2).
function M.affine_transform(x, t, interpolation, fill_mode, fill_value)
  local s = x.shape
  local H, W, C = s[2], s[3], s[4]
  local dt = x.dtype
  local xs = mg.reshape(mg.arange(0, W, 1, dt), { 1, 1, W })
  local ys = mg.reshape(mg.arange(0, H, 1, dt), { 1, H, 1 })
  local cx = t[1] * xs + t[2] * ys + t[3]   -- (batch, H, W)
  local cy = t[4] * xs + t[5] * ys + t[6]
  -- 1-based row of image b's pixel (0, 0) in the flattened images
  local base = (mg.cumsum(mg.ones({ s[1], 1, 1 }, "int64"), 1) - 1) * (H * W) + 1
  local flat = mg.reshape(x, { -1, C })
  local constant = fill_mode == "constant"
  local function tap(iy, ix)
    local fy, fx = fix_index(iy, H, fill_mode), fix_index(ix, W, fill_mode)
    local idx = base + mg.cast(fy, "int64") * W + mg.cast(fx, "int64")
    local v = mg.reshape(mg.take(flat, mg.reshape(idx, { -1 }), 1), { -1, H, W, C })
    if constant then
      local ok = mg.logical_and(mg.logical_and(mg.greater_equal(iy, 0), mg.less_equal(iy, H - 1)),
        mg.logical_and(mg.greater_equal(ix, 0), mg.less_equal(ix, W - 1)))
      v = mg.where(mg.unsqueeze(ok, 4), v, mg.tensor(fill_value, dt))
    end
    return v
  end
  if interpolation == "nearest" then return tap(round_away(cy), round_away(cx)) end
  local y0, x0 = mg.floor(cy), mg.floor(cx)
  local wy1, wx1 = mg.unsqueeze(cy - y0, 4), mg.unsqueeze(cx - x0, 4)
  local wy0, wx0 = 1 - wy1, 1 - wx1
  local y1, x1 = y0 + 1, x0 + 1
  return wy0 * (wx0 * tap(y0, x0) + wx1 * tap(y0, x1)) + wy1 * (wx0 * tap(y1, x0) + wx1 * tap(y1, x1))
end

-- ---- seeded draws ---------------------------------------------------------------------

local seed_counter = 0

--- add_seed(layer): the layer's int64 seed Variable (its state, not a weight), from seed= or
--- mg.random (a layer first built while tracing counts instead, as Dropout).
function M.add_seed(layer)
  seed_counter = seed_counter + 1
  local s = layer.seed
  if not s then
    s = core.tracing() and (7919 * seed_counter + 17) or mg.random.integers({ 1 }, 1, 2147483646):item()
  end
  rawset(layer, "_seed_var", layer:_add_state("seed",
    mg.Variable(mg.tensor(s, "int64"), { name = layer.name .. "/seed", trainable = false })))
end

local BIT_WEIGHTS
local function bit_weights()
  if not BIT_WEIGHTS then
    local w = {}
    for k = 1, 24 do w[k] = 0.5 ^ (k + 1) end   -- the kept bits are 2 (dropout scales by 1/(1-1/2))
    BIT_WEIGHTS = mg.tensor(w, "float32")
  end
  return BIT_WEIGHTS
end

--- uniform(layer, n, k, low, high): an (n, k) float32 tensor of uniform draws in [low, high) from the
--- layer's seed Variable (advanced by one); n may be an unknown batch size while staging.
function M.uniform(layer, n, k, low, high)
  local sv = rawget(layer, "_seed_var")
  local seed = core.tracing() and sv:read() or mg.tensor(sv)
  sv:assign(seed + 1)
  local bits = mg.dropout(mg.ones({ n, k, 24 }, "float32"), seed, 0.5)
  local u = mg.sum(bits * bit_weights(), { axis = 3 })
  if low == 0 and high == 1 then return u end
  return u * (high - low) + low
end

-- ---- factors ----------------------------------------------------------------------------

--- factor_rule: a number or a {low, high} pair of numbers.
M.factor_rule = { "number|table", check = function(v)
  if type(v) == "table" and (#v ~= 2 or type(v[1]) ~= "number" or type(v[2]) ~= "number") then
    return "must be a number or a pair {low, high} of numbers, got " .. util.shape_str(v)
  end
end }

--- factor_range(name, what, v, lo, hi, open_low): Keras's factor -> {lower, upper}: a number f gives
--- {max(-|f|, lo), |f|}, a pair is sorted; values outside [lo, hi] raise naming the layer
--- (open_low: lo itself is refused too, as RandomZoom's -1).
function M.factor_range(name, what, v, lo, hi, open_low)
  local function bad()
    util.raise(string.format("%s: %s must be a number or a pair {low, high} in [%s, %s]%s, got %s", name, what,
      tostring(lo), tostring(hi), open_low and " (above " .. tostring(lo) .. ")" or "",
      type(v) == "table" and util.shape_str(v) or tostring(v)))
  end
  local function check(n)
    if n > hi or n < lo or (open_low and n == lo) then bad() end
  end
  if type(v) == "table" then
    check(v[1]); check(v[2])
    return { math.min(v[1], v[2]), math.max(v[1], v[2]) }
  end
  check(v)
  local f = math.abs(v)
  return { math.max(-f, lo), f }
end

-- ---- shapes ------------------------------------------------------------------------------

--- images(name, x): x as a float 4-d NHWC batch and whether it was one 3-d image.
function M.images(name, x, dtype)
  local n = #x.shape
  if n ~= 3 and n ~= 4 then
    util.raise(string.format("%s: expected images of rank 4 (batch, height, width, channels) or 3 (height, "
      .. "width, channels), got shape %s", name, util.shape_str(x.shape)))
  end
  x = util.float_input(x, dtype)
  if n == 3 then return mg.unsqueeze(x, 1), true end
  return x, false
end

function M.unbatch(y, single) return single and mg.squeeze(y, { 1 }) or y end

return M
