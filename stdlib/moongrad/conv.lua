-- moongrad.conv: the user-facing convolutions and pooling of issue 17 (mg.conv1d/2d/3d, their
-- transposes, mg.max_pool1d/2d/3d, mg.avg_pool1d/2d/3d, mg.depthwise_conv2d,
-- mg.separable_conv2d).
--
-- The ops themselves are rows of the op table that share one window geometry (core/infer_nn.c,
-- kernels/conv.c, kernels/pool.c). What this module adds is the one thing an op attribute
-- cannot spell: padding given as a list of {before, after} pairs, one per spatial axis
-- (padding = {{1, 1}, {2, 2}}), which becomes the ops' padding = "explicit" with the pairs
-- flattened into explicit_padding (TF's EXPLICIT padding). Every other option goes to the op
-- unchanged, which checks it (unknown options, ranges, shapes) and names itself.
--
-- depthwise_conv2d and separable_conv2d are compositions: a depthwise convolution is conv2d
-- with groups = in_channels and the filter (kh, kw, C, M) read as (kh, kw, 1, C*M) (a free
-- reshape; output channel c*M + m as TF), and a separable one is that followed by a 1x1
-- conv2d. Their gradients are conv2d's. Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local options = require("moongrad.options")

local M = {}

local axes_names = { "width", "height, width", "depth, height, width" }

local function is_int(v)
  return type(v) == "number" and v == math.floor(v)
end

-- opts with a table padding turned into padding = "explicit" and explicit_padding (a copy;
-- the caller's table is left alone). nsp: the op's spatial axes.
local function explicit(fname, nsp, opts)
  if type(opts) ~= "table" or type(opts.padding) ~= "table" then return opts end
  if opts.explicit_padding ~= nil then
    options.raise(fname .. ": give padding as {before, after} pairs or explicit_padding, not both")
  end
  local pads = opts.padding
  local want = string.format("%s: padding must be \"valid\", \"same\" or %d {before, after} pair%s, one per "
    .. "spatial axis (%s), such as %s", fname, nsp, nsp == 1 and "" or "s", axes_names[nsp],
    nsp == 1 and "{{1, 1}}" or nsp == 2 and "{{1, 1}, {2, 2}}" or "{{1, 1}, {1, 1}, {2, 2}}")
  if #pads ~= nsp then options.raise(want .. string.format("; got %d entries", #pads)) end
  local flat = {}
  for i = 1, nsp do
    local p = pads[i]
    if type(p) ~= "table" or #p ~= 2 or not is_int(p[1]) or not is_int(p[2]) or p[1] < 0 or p[2] < 0 then
      options.raise(want .. string.format("; entry %d is not two sizes >= 0", i))
    end
    flat[#flat + 1], flat[#flat + 2] = p[1], p[2]
  end
  local out = {}
  for k, v in pairs(opts) do out[k] = v end
  out.padding, out.explicit_padding = "explicit", flat
  return out
end

local function install_op(mg, name, nsp, ninputs)
  local op = core[name]
  local f
  if ninputs == 2 then
    f = function(x, w, opts) return op(x, w, explicit(name, nsp, opts)) end
  else
    f = function(x, opts) return op(x, explicit(name, nsp, opts)) end
  end
  mg[name] = f
  if core.methods[name] == op then core.methods[name] = f end   -- x:conv2d(w, {padding = {...}}) too
  mg._ops[f] = mg._ops[op]   -- help(mg.conv2d) shows the op's text
end

-- Rank and channel checks of the compositions, naming them (the conv2d they are built on would
-- name itself and the reshaped filter).
local function shape_text(t) return "(" .. table.concat(t.shape, ", ") .. ")" end

local function check_depthwise(fname, x, w)
  if not core.is_tensor(x) then options.raise(fname .. ": x must be a tensor, got " .. type(x)) end
  if not core.is_tensor(w) then options.raise(fname .. ": depthwise_filter must be a tensor, got " .. type(w)) end
  if #x.shape ~= 4 then
    options.raise(fname .. ": x must be 4-d (batch, height, width, channels), got shape " .. shape_text(x))
  end
  if #w.shape ~= 4 or w.shape[3] ~= x.shape[4] then
    options.raise(string.format("%s: depthwise_filter %s does not fit x %s (the filter must be (height, width, "
      .. "in_channels, channel_multiplier) with in_channels = x's %d channels)", fname, shape_text(w),
      shape_text(x), x.shape[4]))
  end
end

local depthwise_spec = { strides = "number|table", padding = "string|table", dilation = "number|table" }

-- Renames the errors of the conv2d a composition runs to the composition (at the user's line:
-- the engine already places them there).
local function as(fname, f, ...)
  local ok, res = pcall(f, ...)
  if ok then return res end
  local msg = tostring(res):gsub("conv2d:", fname .. ":", 1)
  error(msg, 0)
end

local function depthwise(fname, x, w, opts)
  check_depthwise(fname, x, w)
  options.check(fname, opts, depthwise_spec)
  opts = explicit(fname, 2, opts) or {}
  local c, m = w.shape[3], w.shape[4]
  local flat = core.reshape(w, { w.shape[1], w.shape[2], 1, c * m })
  local o = { strides = opts.strides, padding = opts.padding, dilation = opts.dilation,
              explicit_padding = opts.explicit_padding, groups = c }
  return as(fname, core.conv2d, x, flat, o)
end

function M.install(mg)
  for _, d in ipairs({ 1, 2, 3 }) do
    install_op(mg, "conv" .. d .. "d", d, 2)
    install_op(mg, "conv" .. d .. "d_transpose", d, 2)
    install_op(mg, "max_pool" .. d .. "d", d, 1)
    install_op(mg, "avg_pool" .. d .. "d", d, 1)
  end

  -- depthwise_conv2d(x, w, {strides=, padding=, dilation=}): TF's tf.nn.depthwise_conv2d.
  mg.depthwise_conv2d = function(x, w, opts) return depthwise("depthwise_conv2d", x, w, opts) end
  mg.document(mg.depthwise_conv2d, "mg.depthwise_conv2d(x, depthwise_filter, {strides=1, padding=\"valid\", dilation=1})\n"
    .. "  Each of x's C channels (NHWC) convolved with its own M filters: depthwise_filter is (height, width, C, M)\n"
    .. "  and the output has C*M channels, channel c*M + m from filter (:, :, c, m) (TF's depthwise_conv2d).\n"
    .. "  padding: \"valid\", \"same\" or {{top, bottom}, {left, right}}. conv2d with groups = C underneath,\n"
    .. "  so gradients flow to x and the filter.")

  -- separable_conv2d(x, dw, pw, opts): the depthwise convolution, then a 1x1 conv2d mixing channels.
  local sep_spec = depthwise_spec
  mg.separable_conv2d = function(x, dw, pw, opts)
    local fname = "separable_conv2d"
    check_depthwise(fname, x, dw)
    if not core.is_tensor(pw) then options.raise(fname .. ": pointwise_filter must be a tensor, got " .. type(pw)) end
    local cm = dw.shape[3] * dw.shape[4]
    if #pw.shape ~= 4 or pw.shape[1] ~= 1 or pw.shape[2] ~= 1 or pw.shape[3] ~= cm then
      options.raise(string.format("%s: pointwise_filter %s does not fit: it must be (1, 1, %d, out_channels) for a "
        .. "depthwise_filter %s (in_channels * channel_multiplier = %d)", fname, shape_text(pw), cm, shape_text(dw), cm))
    end
    options.check(fname, opts, sep_spec)
    local y = depthwise(fname, x, dw, opts)
    return as(fname, core.conv2d, y, pw)
  end
  mg.document(mg.separable_conv2d, "mg.separable_conv2d(x, depthwise_filter, pointwise_filter, {strides=1, padding=\"valid\", dilation=1})\n"
    .. "  TF's separable_conv2d: mg.depthwise_conv2d(x, depthwise_filter, opts) followed by a 1x1 conv2d with\n"
    .. "  pointwise_filter (1, 1, C*M, out_channels). Differentiable in all three tensors.")
end

return M
