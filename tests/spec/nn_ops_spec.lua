-- nn_ops_spec.lua — the neural-network ops of core (issue 6): conv2d and its
-- gradients, conv2d_transpose, max/avg pooling and their gradients,
-- batch_norm (and batch/layer normalisation composed from it), dropout,
-- take_grad (the embedding gradient) and the fused softmax cross-entropies.
-- Forward values are compared with plain-Lua loop implementations on small
-- NHWC tensors, on both sides of the plain-loop/BLIS threshold, in float32
-- and float64, with non-contiguous inputs; gradients with the adjoint
-- identities and with finite differences of composite losses; plus the
-- error messages. (Single-op gradient checks live in gradcheck_spec.lua.)

local mg = require "moongrad"

-- ---- helpers ----------------------------------------------------------------

local function maxdiff(a, b, path)
  path = path or "value"
  if type(b) == "number" then
    assert(type(a) == "number", path .. ": expected a number")
    if a ~= a and b ~= b then return 0 end
    if a == b then return 0 end
    return math.abs(a - b) / math.max(1, math.abs(b))
  end
  assert(type(a) == "table", path .. ": expected a table")
  assert(#a == #b, ("%s: length %d, expected %d"):format(path, #a, #b))
  local m = 0
  for i = 1, #b do m = math.max(m, maxdiff(a[i], b[i], path .. "[" .. i .. "]")) end
  return m
end

local function close(actual, expected, tol)
  if mg.is_tensor(actual) then actual = actual:totable() end
  if mg.is_tensor(expected) then expected = expected:totable() end
  local d = maxdiff(actual, expected)
  assert(d <= (tol or 1e-5), ("max relative difference %.3g > %.3g"):format(d, tol or 1e-5))
end

local function err_of(fn)
  local ok, e = pcall(fn)
  assert(not ok, "expected an error")
  return tostring(e)
end

local function nd(shape, f)  -- a nested table of `shape` filled by f(i1, i2, ...)
  local function build(d, idx)
    if d > #shape then return f(table.unpack(idx)) end
    local t = {}
    for i = 1, shape[d] do
      idx[d] = i
      t[i] = build(d + 1, idx)
    end
    idx[d] = nil
    return t
  end
  return build(1, {})
end

local seed = 100
local function U(shape, dt, lo, hi)
  seed = seed + 1
  return mg.uniform(shape, lo or -1, hi or 1, dt or mg.float32, seed)
end

local function sum_all(t) return mg.sum(t):item() end

-- Output size and leading padding of one axis (TF).
-- floor division of integers, spelt so that LuaJIT parses it too (math.floor gives an integer under 5.4)
local function idiv(a, b) return math.floor(a / b) end

local function out_axis(n, k, s, d, pad)
  local keff = (k - 1) * d + 1
  if pad == "same" then
    local o = idiv(n + s - 1, s)
    return o, idiv(math.max((o - 1) * s + keff - n, 0), 2)
  end
  return idiv(n - keff, s) + 1, 0
end

-- conv2d on nested tables (x: N,H,W,C; w: KH,KW,C/groups,CO).
local function conv_ref(x, w, o)
  local N, H, W = #x, #x[1], #x[1][1]
  local KH, KW, CIG, CO = #w, #w[1], #w[1][1], #w[1][1][1]
  local sh, sw, dh, dw = o.sh or 1, o.sw or 1, o.dh or 1, o.dw or 1
  local groups, pad = o.groups or 1, o.padding or "valid"
  local OH, pt = out_axis(H, KH, sh, dh, pad)
  local OW, pl = out_axis(W, KW, sw, dw, pad)
  local cog = idiv(CO, groups)
  return nd({ N, OH, OW, CO }, function(n, oh, ow, co)
    local g, s = idiv(co - 1, cog), 0.0
    for kh = 1, KH do
      for kw = 1, KW do
        local ih = (oh - 1) * sh - pt + (kh - 1) * dh + 1
        local iw = (ow - 1) * sw - pl + (kw - 1) * dw + 1
        if ih >= 1 and ih <= H and iw >= 1 and iw <= W then
          for ci = 1, CIG do s = s + x[n][ih][iw][g * CIG + ci] * w[kh][kw][ci][co] end
        end
      end
    end
    return s
  end)
end

-- The transposed convolution: each input pixel scatters w times its value.
-- w: KH,KW,CO,CI; the output (N, OH, OW, CO) with top/left padding pt, pl.
local function conv_transpose_ref(x, w, OH, OW, s, pt, pl)
  local N, H, W, CI = #x, #x[1], #x[1][1], #x[1][1][1]
  local KH, KW, CO = #w, #w[1], #w[1][1]
  local out = nd({ N, OH, OW, CO }, function() return 0.0 end)
  for n = 1, N do
    for i = 1, H do
      for j = 1, W do
        for kh = 1, KH do
          for kw = 1, KW do
            local oh, ow = (i - 1) * s - pt + kh, (j - 1) * s - pl + kw
            if oh >= 1 and oh <= OH and ow >= 1 and ow <= OW then
              for co = 1, CO do
                local acc = out[n][oh][ow][co]
                for ci = 1, CI do acc = acc + x[n][i][j][ci] * w[kh][kw][co][ci] end
                out[n][oh][ow][co] = acc
              end
            end
          end
        end
      end
    end
  end
  return out
end

-- Pooling on nested tables; kind "max" or "avg"; windows clipped to x.
local function pool_ref(x, kind, k, s, pad)
  local N, H, W, C = #x, #x[1], #x[1][1], #x[1][1][1]
  local OH, pt = out_axis(H, k, s, 1, pad)
  local OW, pl = out_axis(W, k, s, 1, pad)
  return nd({ N, OH, OW, C }, function(n, oh, ow, c)
    local best, sum, cnt = nil, 0.0, 0
    for kh = 1, k do
      for kw = 1, k do
        local ih, iw = (oh - 1) * s - pt + kh, (ow - 1) * s - pl + kw
        if ih >= 1 and ih <= H and iw >= 1 and iw <= W then
          local v = x[n][ih][iw][c]
          if best == nil or v > best then best = v end
          sum, cnt = sum + v, cnt + 1
        end
      end
    end
    if kind == "max" then return best end
    return sum / cnt
  end)
end

-- ---- conv2d -----------------------------------------------------------------

describe("conv2d", function()
  local configs = {
    { shape = { 2, 7, 6, 3 }, k = { 3, 2 }, co = 4, o = { padding = "same" } },
    { shape = { 2, 7, 6, 3 }, k = { 3, 3 }, co = 4, o = { padding = "same", sh = 2, sw = 2 } },
    { shape = { 1, 8, 7, 2 }, k = { 3, 3 }, co = 3, o = { padding = "valid", sh = 2, sw = 1 } },
    { shape = { 1, 9, 9, 2 }, k = { 3, 3 }, co = 4, o = { padding = "same", dh = 2, dw = 2 } },
    { shape = { 2, 7, 6, 4 }, k = { 3, 3 }, co = 6, o = { padding = "valid", sw = 2, dh = 2, groups = 2 } },
    { shape = { 2, 5, 5, 6 }, k = { 1, 1 }, co = 6, o = { groups = 3 } },
    { shape = { 2, 5, 4, 3 }, k = { 1, 1 }, co = 5, o = {} },                     -- 1x1: no im2col
    { shape = { 3, 12, 12, 1 }, k = { 5, 5 }, co = 32, o = { padding = "same" } }, -- BLIS sizes
    { shape = { 2, 7, 7, 32 }, k = { 5, 5 }, co = 64, o = { padding = "same" } },
  }
  for i, cfg in ipairs(configs) do
    for _, dt in ipairs { mg.float32, mg.float64 } do
      it(("matches the loop reference: config %d, %s"):format(i, dt), function()
        local o = cfg.o
        local x = U(cfg.shape, dt)
        local w = U({ cfg.k[1], cfg.k[2], idiv(cfg.shape[4], o.groups or 1), cfg.co }, dt)
        local y = mg.conv2d(x, w, { strides = { o.sh or 1, o.sw or 1 }, padding = o.padding,
                                    dilation = { o.dh or 1, o.dw or 1 }, groups = o.groups })
        assert.are.equal(dt, y.dtype)
        close(y, conv_ref(x:totable(), w:totable(), o), dt == mg.float32 and 2e-5 or 1e-12)
      end)
    end
  end

  it("reads non-contiguous inputs (permuted and sliced views)", function()
    local base = U { 3, 2, 6, 5 }                  -- (C, N, H, W) -> NHWC by permute
    local x = base:permute { 2, 3, 4, 1 }
    local w = U({ 3, 2, 3, 4 }):slice { {}, {}, {}, { 1, 4 } }
    local y = mg.conv2d(x, w, { padding = "same" })
    close(y, conv_ref(x:totable(), w:totable(), { padding = "same" }), 2e-5)
  end)

  it("defaults: stride 1, valid padding, no dilation, one group", function()
    local x, w = U { 1, 5, 5, 2 }, U { 3, 3, 2, 2 }
    assert.are.same({ 1, 3, 3, 2 }, mg.conv2d(x, w).shape)
    assert.are.same({ 1, 5, 5, 2 }, mg.conv2d(x, w, { padding = "same" }).shape)
    assert.are.same({ 1, 3, 3, 2 }, mg.conv2d(x, w, { padding = "same", strides = 2 }).shape)
  end)

  it("handles empty batches and zero output channels", function()
    assert.are.same({ 0, 4, 4, 3 }, mg.conv2d(U { 0, 4, 4, 2 }, U { 3, 3, 2, 3 }, { padding = "same" }).shape)
    assert.are.same({ 1, 2, 2, 0 }, mg.conv2d(U { 1, 4, 4, 2 }, U { 3, 3, 2, 0 }).shape)
  end)

  it("promotes float32 with float64", function()
    local y = mg.conv2d(U { 1, 3, 3, 1 }, U({ 2, 2, 1, 1 }, mg.float64))
    assert.are.equal("float64", y.dtype)
  end)

  it("rejects bad input with messages naming the op, argument and shapes", function()
    local x, w = U { 1, 5, 5, 2 }, U { 3, 3, 2, 4 }
    assert.matches("conv2d: x must be 4%-d", err_of(function() mg.conv2d(U { 5, 5, 2 }, w) end))
    assert.matches("conv2d: w must be 4%-d", err_of(function() mg.conv2d(x, U { 3, 3, 2 }) end))
    assert.matches("filter %(3,3,3,4%) does not fit x %(1,5,5,2%)",
      err_of(function() mg.conv2d(x, U { 3, 3, 3, 4 }) end))
    assert.matches("groups=2", err_of(function() mg.conv2d(x, U { 3, 3, 1, 3 }, { groups = 2 }) end))
    assert.matches("x has height 5, smaller than the %(dilated%) window's 7",
      err_of(function() mg.conv2d(x, U { 4, 3, 2, 4 }, { dilation = 2 }) end))
    assert.matches("strides must be at least 1", err_of(function() mg.conv2d(x, w, { strides = 0 }) end))
    assert.matches("strides takes one value or two", err_of(function() mg.conv2d(x, w, { strides = { 1, 1, 1 } }) end))
    assert.matches("floating%-point.*int64 and int64",
      err_of(function() mg.conv2d(mg.ones({ 1, 3, 3, 1 }, mg.int64), mg.ones({ 1, 1, 1, 1 }, mg.int64)) end))
    assert.matches("padding' must be one of valid, same", err_of(function() mg.conv2d(x, w, { padding = "full" }) end))
  end)
end)

-- ---- convolution gradients ----------------------------------------------------

describe("conv2d gradients", function()
  -- <conv(x, w), dy> = <x, backprop_input(dy, w)> = <w, backprop_filter(x, dy)>
  local configs = {
    { x = { 2, 6, 5, 3 }, w = { 3, 2, 3, 4 }, o = { padding = "same" } },
    { x = { 2, 7, 6, 2 }, w = { 3, 3, 2, 3 }, o = { padding = "same", strides = 2 } },
    { x = { 1, 9, 8, 4 }, w = { 3, 3, 2, 6 }, o = { padding = "valid", strides = { 1, 2 }, dilation = { 2, 1 }, groups = 2 } },
    { x = { 2, 5, 5, 4 }, w = { 1, 1, 4, 3 }, o = {} },
    { x = { 4, 14, 14, 32 }, w = { 5, 5, 32, 64 }, o = { padding = "same" } },  -- the demo's second layer
    { x = { 4, 28, 28, 1 }, w = { 5, 5, 1, 32 }, o = { padding = "same" } },    -- and its first
  }
  for i, c in ipairs(configs) do
    it(("backprop_input and backprop_filter are conv2d's adjoints: config %d"):format(i), function()
      local x, w = U(c.x, mg.float64), U(c.w, mg.float64)
      local y = mg.conv2d(x, w, c.o)
      local dy = U(y.shape, mg.float64)
      local o = {}
      for k, v in pairs(c.o) do o[k] = v end
      local dx = mg.raw.conv2d_backprop_input(dy, w, x.shape, o)
      local dw = mg.raw.conv2d_backprop_filter(x, dy, w.shape, o)
      assert.are.same(x.shape, dx.shape)
      assert.are.same(w.shape, dw.shape)
      local lhs = sum_all(y * dy)
      assert.is_true(math.abs(lhs - sum_all(x * dx)) <= 1e-9 * math.max(1, math.abs(lhs)))
      assert.is_true(math.abs(lhs - sum_all(w * dw)) <= 1e-9 * math.max(1, math.abs(lhs)))
    end)
  end

  -- float32 convolutions may take the direct (no im2col) kernels, float64
  -- ones take im2col + GEMM: the two must agree on every pass and shape.
  local f32configs = {
    { x = { 2, 9, 8, 3 }, w = { 3, 3, 3, 5 }, o = { padding = "same" } },
    { x = { 1, 11, 10, 17 }, w = { 3, 2, 17, 33 }, o = { padding = "same", strides = 2 } },
    { x = { 3, 10, 9, 20 }, w = { 2, 3, 20, 70 }, o = { padding = "valid", strides = { 2, 1 } } },
    { x = { 2, 12, 12, 16 }, w = { 3, 3, 16, 24 }, o = { padding = "same", dilation = { 2, 1 } } },
    { x = { 1, 20, 20, 32 }, w = { 5, 5, 32, 64 }, o = { padding = "same" } },
    { x = { 2, 7, 7, 48 }, w = { 1, 1, 48, 16 }, o = {} },
    { x = { 2, 9, 9, 16 }, w = { 4, 4, 16, 8 }, o = { padding = "valid", strides = 1 } },
    { x = { 5, 6, 6, 1 }, w = { 3, 3, 1, 32 }, o = { padding = "same" } },
  }
  for i, c in ipairs(f32configs) do
    it(("float32 (direct kernels) agrees with float64 (GEMM) on all three passes: config %d"):format(i), function()
      local x, w = U(c.x, mg.float64), U(c.w, mg.float64)
      local y = mg.conv2d(x, w, c.o)
      local dy = U(y.shape, mg.float64)
      local f = function(t) return mg.cast(t, mg.float32) end
      close(mg.conv2d(f(x), f(w), c.o), y, 1e-4)
      close(mg.raw.conv2d_backprop_input(f(dy), f(w), x.shape, c.o), mg.raw.conv2d_backprop_input(dy, w, x.shape, c.o), 1e-4)
      close(mg.raw.conv2d_backprop_filter(f(x), f(dy), w.shape, c.o), mg.raw.conv2d_backprop_filter(x, dy, w.shape, c.o), 1e-4)
    end)
  end

  it("float32 gradients agree with float64 ones on the demo's layer", function()
    local x, w = U({ 3, 14, 14, 32 }, mg.float64), U({ 5, 5, 32, 64 }, mg.float64)
    local dy = U({ 3, 14, 14, 64 }, mg.float64)
    local f = function(t) return mg.cast(t, mg.float32) end
    local o = { padding = "same" }
    close(mg.raw.conv2d_backprop_input(f(dy), f(w), x.shape, o), mg.raw.conv2d_backprop_input(dy, w, x.shape, o), 1e-4)
    close(mg.raw.conv2d_backprop_filter(f(x), f(dy), w.shape, o), mg.raw.conv2d_backprop_filter(x, dy, w.shape, o), 1e-4)
  end)

  it("the tape uses them: gradient of sum(conv2d(x, w) * dy)", function()
    local x, w = mg.Variable(U({ 2, 5, 5, 3 }, mg.float64)), mg.Variable(U({ 3, 3, 3, 2 }, mg.float64))
    local dy = U({ 2, 3, 3, 2 }, mg.float64)
    local tape = mg.GradientTape()
    local l = mg.sum(mg.conv2d(x, w, { strides = 2, padding = "same" }) * dy)
    tape:stop()
    local g = tape:gradient(l, { x, w })
    close(g[1], mg.raw.conv2d_backprop_input(dy, w, x.shape, { strides = 2, padding = "same" }), 1e-12)
    close(g[2], mg.raw.conv2d_backprop_filter(x, dy, w.shape, { strides = 2, padding = "same" }), 1e-12)
  end)

  it("checks dy against the convolution's output shape", function()
    assert.matches("conv2d_backprop_input: dy has shape %(1,4,4,2%) but the convolution's output has shape %(1,3,3,2%)",
      err_of(function() mg.raw.conv2d_backprop_input(U { 1, 4, 4, 2 }, U { 3, 3, 2, 2 }, { 1, 5, 5, 2 }) end))
    assert.matches("conv2d_backprop_filter: dy has shape",
      err_of(function() mg.raw.conv2d_backprop_filter(U { 1, 5, 5, 2 }, U { 1, 5, 5, 2 }, { 3, 3, 2, 2 }) end))
    assert.matches("input_shape must have 4 values",
      err_of(function() mg.raw.conv2d_backprop_input(U { 1, 3, 3, 2 }, U { 3, 3, 2, 2 }, { 5, 5, 2 }) end))
    assert.matches("the 'filter_shape' argument is required",
      err_of(function() mg.raw.conv2d_backprop_filter(U { 1, 5, 5, 2 }, U { 1, 3, 3, 2 }) end))
  end)
end)

-- ---- conv2d_transpose -----------------------------------------------------------

describe("conv2d_transpose", function()
  -- Keras: Conv2DTranspose output sizes.
  local sizes = {
    { hw = 3, k = 3, s = 2, pad = "same", want = 6 },
    { hw = 3, k = 3, s = 2, pad = "valid", want = 7 },
    { hw = 3, k = 2, s = 2, pad = "valid", want = 6 },
    { hw = 4, k = 3, s = 1, pad = "valid", want = 6 },
    { hw = 3, k = 3, s = 2, pad = "same", op = 1, want = 6 },
    { hw = 3, k = 3, s = 2, pad = "valid", op = 1, want = 8 },
    { hw = 3, k = 4, s = 3, pad = "same", op = 2, want = 8 },
  }
  for i, c in ipairs(sizes) do
    it(("has Keras's output size and the scatter reference's values: case %d"):format(i), function()
      local x, w = U({ 2, c.hw, c.hw, 3 }, mg.float64), U({ c.k, c.k, 2, 3 }, mg.float64)
      local y = mg.conv2d_transpose(x, w, { strides = c.s, padding = c.pad, output_padding = c.op })
      assert.are.same({ 2, c.want, c.want, 2 }, y.shape)
      local _, pt = out_axis(c.want, c.k, c.s, 1, c.pad)
      close(y, conv_transpose_ref(x:totable(), w:totable(), c.want, c.want, c.s, pt, pt), 1e-12)
    end)
  end

  it("is conv2d_backprop_input of the convolution back to x", function()
    local x, w = U { 1, 4, 3, 3 }, U { 3, 3, 2, 3 }
    local y = mg.conv2d_transpose(x, w, { strides = 2, padding = "same" })
    close(y, mg.raw.conv2d_backprop_input(x, w, y.shape, { strides = 2, padding = "same" }), 1e-6)
  end)

  it("rejects output_padding >= strides and mismatched channels", function()
    assert.matches("output_padding %(2, 2%) must be smaller than strides %(2, 2%)",
      err_of(function() mg.conv2d_transpose(U { 1, 3, 3, 2 }, U { 3, 3, 1, 2 }, { strides = 2, output_padding = 2 }) end))
    assert.matches("in_channels = x's channels",
      err_of(function() mg.conv2d_transpose(U { 1, 3, 3, 2 }, U { 3, 3, 2, 3 }) end))
  end)
end)

-- ---- pooling -------------------------------------------------------------------------

describe("pooling", function()
  local configs = {
    { shape = { 2, 6, 6, 3 }, k = 2, s = 2, pad = "valid" },
    { shape = { 2, 5, 5, 3 }, k = 2, s = 2, pad = "valid" },
    { shape = { 1, 5, 7, 2 }, k = 3, s = 2, pad = "same" },
    { shape = { 1, 4, 4, 5 }, k = 3, s = 1, pad = "same" },
    { shape = { 2, 28, 28, 32 }, k = 2, s = 2, pad = "valid" },
  }
  for i, c in ipairs(configs) do
    for _, dt in ipairs { mg.float32, mg.float64 } do
      it(("max_pool2d and avg_pool2d match the loop reference: config %d, %s"):format(i, dt), function()
        local x = U(c.shape, dt)
        local o = { ksize = c.k, strides = c.s, padding = c.pad }
        close(mg.max_pool2d(x, o), pool_ref(x:totable(), "max", c.k, c.s, c.pad), 0)
        close(mg.avg_pool2d(x, o), pool_ref(x:totable(), "avg", c.k, c.s, c.pad), dt == mg.float32 and 1e-6 or 1e-14)
      end)
    end
  end

  -- TF's max_pool takes integer tensors (issue 14: refused); avg_pool stays float only, as TF's.
  for i, c in ipairs(configs) do
    for _, dt in ipairs { mg.int32, mg.int64, mg.uint8 } do
      it(("max_pool2d of %s matches the loop reference: config %d"):format(dt, i), function()
        local x = mg.cast(mg.random.integers(c.shape, dt == mg.uint8 and 0 or -100, dt == mg.uint8 and 255 or 100,
          mg.int64, i), dt)
        local o = { ksize = c.k, strides = c.s, padding = c.pad }
        local y = mg.max_pool2d(x, o)
        assert.equal(dt, y.dtype)
        close(mg.cast(y, mg.float64), pool_ref(mg.cast(x, mg.float64):totable(), "max", c.k, c.s, c.pad), 0)
      end)
    end
  end

  it("max_pool2d of integers: extreme values and padded windows never read the padding", function()
    local x = mg.tensor({ -2147483648, -2147483647, -5, -2147483648 }, mg.int32):reshape { 1, 2, 2, 1 }
    assert.are.same({ -5 }, mg.max_pool2d(x):reshape { 1 }:totable())
    local u = mg.tensor({ 0, 0, 0, 0 }, mg.uint8):reshape { 1, 2, 2, 1 }
    assert.are.same({ 0, 0, 0, 0 }, mg.max_pool2d(u, { ksize = 2, strides = 1, padding = "same" }):reshape { 4 }:totable())
    local staged = mg.func(function(v) return mg.max_pool2d(v) end)
    assert.are.same({ 9 }, staged(mg.tensor({ 1, 9, 3, 4 }, mg.int64):reshape { 1, 2, 2, 1 }):reshape { 1 }:totable())
  end)

  it("defaults to 2x2 windows with stride 2 (Keras)", function()
    local x = mg.arange(1, 17, 1, mg.float32):reshape { 1, 4, 4, 1 }
    assert.are.same({ { 6, 8 }, { 14, 16 } }, mg.max_pool2d(x):reshape { 2, 2 }:totable())
    assert.are.same({ { 3.5, 5.5 }, { 11.5, 13.5 } }, mg.avg_pool2d(x):reshape { 2, 2 }:totable())
  end)

  it("lets NaN win a max window, and its gradient go there", function()
    local x = mg.tensor({ 1.0, 0 / 0, 3, 2 }):reshape { 1, 2, 2, 1 }
    assert.is_true(mg.max_pool2d(x):item() ~= mg.max_pool2d(x):item())
    assert.are.same({ 0, 1, 0, 0 }, mg.raw.max_pool2d_grad(x, mg.ones { 1, 1, 1, 1 }):reshape { 4 }:totable())
  end)

  it("sends each window's gradient to its first maximum; max_pool2d_grad_grad reads it back", function()
    local x = mg.tensor({ { 1.0, 5, 5 }, { 2, 0, 4 }, { 7, 7, 1 } }, mg.float32):reshape { 1, 3, 3, 1 }
    local dy = mg.tensor({ { 10.0, 20 }, { 30, 40 } }, mg.float32):reshape { 1, 2, 2, 1 }
    local o = { ksize = 2, strides = 1 }
    local dx = mg.raw.max_pool2d_grad(x, dy, o):reshape { 3, 3 }:totable()
    assert.are.same({ { 0, 30, 0 }, { 0, 0, 0 }, { 30, 40, 0 } }, dx)
    local gx = mg.arange(1, 10, 1, mg.float32):reshape { 1, 3, 3, 1 }
    assert.are.same({ { 2, 2 }, { 7, 8 } }, mg.raw.max_pool2d_grad_grad(x, gx, o):reshape { 2, 2 }:totable())
  end)

  for i, c in ipairs { { { 2, 7, 7, 20 }, 2, 2, "valid" }, { { 1, 8, 7, 35 }, 3, 3, "same" }, { { 2, 6, 6, 16 }, 2, 2, "same" } } do
    it(("float32 max pooling and its gradient agree with float64 (non-overlapping windows %d)"):format(i), function()
      local x32 = U(c[1])
      local o = { ksize = c[2], strides = c[3], padding = c[4] }
      local y32 = mg.max_pool2d(x32, o)
      local dy32 = U(y32.shape)
      local x64, dy64 = mg.cast(x32, mg.float64), mg.cast(dy32, mg.float64)
      close(y32, mg.max_pool2d(x64, o), 0)
      close(mg.raw.max_pool2d_grad(x32, dy32, o), mg.raw.max_pool2d_grad(x64, dy64, o), 0)
    end)
  end

  it("avg_pool2d_grad shares the gradient over the positions inside x", function()
    local dx = mg.raw.avg_pool2d_grad(mg.ones { 1, 2, 2, 1 }, { 1, 3, 3, 1 }, { ksize = 2, padding = "same" })
    -- windows: (1..2)x(1..2) 4 cells, (1..2)x3 2 cells, 3x(1..2) 2 cells, 3x3 1 cell
    close(dx:reshape { 3, 3 }, { { 0.25, 0.25, 0.5 }, { 0.25, 0.25, 0.5 }, { 0.5, 0.5, 1 } }, 1e-7)
  end)

  it("adjoint identities hold on overlapping windows", function()
    local x = U({ 2, 7, 6, 3 }, mg.float64)
    local o = { ksize = 3, strides = 2, padding = "same" }
    local y = mg.avg_pool2d(x, o)
    local dy = U(y.shape, mg.float64)
    local dx = mg.raw.avg_pool2d_grad(dy, x.shape, o)
    assert.is_true(math.abs(sum_all(y * dy) - sum_all(x * dx)) < 1e-10)
    local gx = U(x.shape, mg.float64)
    local a = sum_all(mg.raw.max_pool2d_grad(x, dy, o) * gx)
    local b = sum_all(dy * mg.raw.max_pool2d_grad_grad(x, gx, o))
    assert.is_true(math.abs(a - b) < 1e-10)
  end)

  it("rejects bad input", function()
    assert.matches("max_pool2d: x must be 4%-d", err_of(function() mg.max_pool2d(U { 4, 4, 1 }) end))
    assert.matches("avg_pool2d: needs floating%-point inputs %(float32 or float64%), got int32; average pooling is float only, as in TF",
      err_of(function() mg.avg_pool2d(mg.ones({ 1, 2, 2, 1 }, mg.int32)) end))
    assert.matches("max_pool2d: x is bool", err_of(function() mg.max_pool2d(mg.ones({ 1, 2, 2, 1 }, mg.bool)) end))
    assert.matches("x has height 2, smaller than the window's 3",
      err_of(function() mg.max_pool2d(U { 1, 2, 4, 1 }, { ksize = 3 }) end))
    assert.matches("ksize must be at least 1", err_of(function() mg.max_pool2d(U { 1, 2, 2, 1 }, { ksize = 0 }) end))
    assert.matches("max_pool2d_grad: dy has shape %(1,2,2,1%) but the pooled output has shape %(1,1,1,1%)",
      err_of(function() mg.raw.max_pool2d_grad(U { 1, 3, 3, 1 }, U { 1, 2, 2, 1 }) end))
  end)
end)

-- ---- batch normalisation --------------------------------------------------------------

describe("batch_norm", function()
  it("computes (x - mean) / sqrt(variance + eps) * scale + offset with broadcasting", function()
    local x = U({ 3, 2, 4 }, mg.float64)
    local m, v, off, sc = U({ 4 }, mg.float64), U({ 2, 1 }, mg.float64, 0.5, 2), U({ 1, 4 }, mg.float64), U({}, mg.float64)
    local want = (x - m) / mg.sqrt(v + 0.01) * sc + off
    close(mg.batch_norm(x, m, v, off, sc, 0.01), want, 1e-12)
    close(mg.batch_norm(x:transpose(1, 3), m:reshape { 4, 1, 1 }, 1, 0, 2), (x:transpose(1, 3) - m:reshape { 4, 1, 1 }) / math.sqrt(1.001) * 2, 1e-12)
  end)

  it("keeps large means exact (no x*a + b cancellation)", function()
    local x = mg.tensor { 10000.5, 10001.5 }
    local y = mg.batch_norm(x, 10001, 0.25, 0, 1, 0)
    assert.are.same({ -1, 1 }, y:totable())
  end)

  local function fd_check(f, xs)  -- finite differences of f (a scalar) w.r.t. each tensor in xs
    local tape = mg.GradientTape()
    for _, x in ipairs(xs) do tape:watch(x) end
    local l = f(table.unpack(xs))
    tape:stop()
    local grads = tape:gradient(l, xs)
    for i, x in ipairs(xs) do
      local g = grads[i]:reshape { x:numel() }:totable()
      for j = 1, x:numel() do
        local e = mg.one_hot(mg.tensor { j }, x:numel(), mg.float64):reshape(x.shape) * 1e-6
        local plus, minus = {}, {}
        for q, y in ipairs(xs) do plus[q], minus[q] = y, y end
        plus[i], minus[i] = x + e, x - e
        local num = (f(table.unpack(plus)):item() - f(table.unpack(minus)):item()) / 2e-6
        assert(math.abs(num - g[j]) <= 1e-6 + 1e-5 * math.abs(num),
          ("input %d element %d: analytic %.10g vs numeric %.10g"):format(i, j, g[j], num))
      end
    end
  end

  it("composes batch normalisation in training mode with correct gradients", function()
    local w = U({ 4, 3 }, mg.float64)
    fd_check(function(x, gamma, beta)
      local mean, var = mg.mean(x, { axis = 1 }), mg.variance(x, { axis = 1 })
      return mg.sum(mg.batch_norm(x, mean, var, beta, gamma, 0.001) * w)
    end, { U({ 4, 3 }, mg.float64), U({ 3 }, mg.float64, 0.5, 1.5), U({ 3 }, mg.float64) })
  end)

  it("composes layer normalisation with correct gradients", function()
    local w = U({ 3, 5 }, mg.float64)
    fd_check(function(x, gamma, beta)
      local mean = mg.mean(x, { axis = -1, keepdims = true })
      local var = mg.variance(x, { axis = -1, keepdims = true })
      return mg.sum(mg.batch_norm(x, mean, var, beta, gamma, 0.001) * w)
    end, { U({ 3, 5 }, mg.float64), U({ 5 }, mg.float64, 0.5, 1.5), U({ 5 }, mg.float64) })
  end)

  it("rejects parameters that do not broadcast to x", function()
    assert.matches("batch_norm: variance of shape %(3%) does not broadcast to x's shape %(2,4%)",
      err_of(function() mg.batch_norm(U { 2, 4 }, 0, U { 3 }, 0, 1) end))
    assert.matches("batch_norm: mean of shape %(1,2,4%) does not broadcast",
      err_of(function() mg.batch_norm(U { 2, 4 }, U { 1, 2, 4 }, 1, 0, 1) end))
    assert.matches("epsilon must be >= 0", err_of(function() mg.batch_norm(U { 2 }, 0, 1, 0, 1, -1) end))
  end)
end)

-- ---- dropout -----------------------------------------------------------------------------

describe("dropout", function()
  it("zeroes about `rate` of the elements and scales the rest by 1 / (1 - rate)", function()
    local x = mg.ones { 200000 }
    local y = mg.dropout(x, 123, 0.3)
    local kept = mg.sum(mg.not_equal(y, 0)):item()
    assert.is_true(math.abs(kept / 200000 - 0.7) < 0.005)
    assert.is_true(math.abs(mg.max(y):item() - 1 / 0.7) < 1e-6)
    assert.is_true(math.abs(mg.min(mg.where(mg.greater(y, 0), y, 100)):item() - 1 / 0.7) < 1e-6)  -- all kept alike
  end)

  it("is a function of seed and position: same seed, same mask; other seed, other mask", function()
    local x = U({ 64, 33 }, mg.float64)
    local a, b, c = mg.dropout(x, 5, 0.5), mg.dropout(x, 5, 0.5), mg.dropout(x, 6, 0.5)
    assert.are.same(a:totable(), b:totable())
    assert.are.same(a:totable(), mg.dropout(x, mg.tensor { 5 }, { rate = 0.5 }):totable())
    assert.is_true(sum_all(mg.not_equal(a, c)) > 100)
    assert.are.same(x:totable(), mg.dropout(x, 1, 0):totable())
    -- float32 and float64 share the mask; so does a non-contiguous x
    local m32 = mg.not_equal(mg.dropout(mg.ones { 64, 33 }, 9, 0.4), 0)
    local m64 = mg.not_equal(mg.dropout(mg.ones({ 33, 64 }, mg.float64):transpose(), 9, 0.4), 0)
    assert.are.same(m32:totable(), m64:totable())
  end)

  it("the gradient uses the forward mask", function()
    local x = mg.Variable(U({ 10, 10 }, mg.float64))
    local tape = mg.GradientTape()
    local y = mg.dropout(x, 77, 0.5)
    local l = mg.sum(y)
    tape:stop()
    local g = tape:gradient(l, x)
    assert.are.same(mg.where(mg.not_equal(y, 0), 2.0, 0.0):totable(), g:totable())
  end)

  it("rejects bad arguments", function()
    assert.matches("dropout: rate must be in %[0, 1%), got 1", err_of(function() mg.dropout(U { 3 }, 1, 1) end))
    assert.matches("the 'rate' argument is required", err_of(function() mg.dropout(U { 3 }, 1) end))
    assert.matches("seed must be one integer", err_of(function() mg.dropout(U { 3 }, mg.tensor { 1, 2 }, 0.5) end))
    assert.matches("x must be float32 or float64, got int64", err_of(function() mg.dropout(mg.tensor { 1 }, 1, 0.5) end))
  end)
end)

-- ---- embedding gradient ------------------------------------------------------------------

describe("take_grad (the embedding gradient)", function()
  it("adds each slice of g at its row, repeated indices summing", function()
    local g = mg.tensor({ { 1.0, 2 }, { 3, 4 }, { 5, 6 } }, mg.float32)
    assert.are.same({ { 3, 4 }, { 0, 0 }, { 6, 8 }, { 0, 0 } }, mg.raw.take_grad(g, mg.tensor { 3, 1, 3 }, { size = 4 }):totable())
  end)

  it("works along another axis and with a 2-d index (a batch of sequences)", function()
    local x = U({ 3, 5, 2 }, mg.float64)
    local idx = mg.tensor { { 5, 1 }, { 2, 5 } }
    local y = mg.take(x, idx, 2)                  -- (3, 2, 2, 2)
    local dy = U(y.shape, mg.float64)
    local dx = mg.raw.take_grad(dy, idx, 2, 5)
    assert.are.same(x.shape, dx.shape)
    assert.is_true(math.abs(sum_all(y * dy) - sum_all(x * dx)) < 1e-12)
  end)

  it("is what the tape gives take (an embedding lookup)", function()
    local tab = mg.Variable(U { 10, 4 })
    local idx = mg.tensor { { 1, 3, 3 }, { 10, 1, 2 } }
    local tape = mg.GradientTape()
    local l = mg.sum(mg.take(tab, idx))
    tape:stop()
    local g = tape:gradient(l, tab)
    local counts = { 2, 1, 2, 0, 0, 0, 0, 0, 0, 1 }
    assert.are.same(nd({ 10, 4 }, function(i) return counts[i] end), g:totable())
  end)

  it("rejects indices out of range", function()
    assert.matches("take_grad: index 5 %(element 2%) is out of range %(valid: 1..4%)",
      err_of(function() mg.raw.take_grad(mg.ones { 2, 3 }, mg.tensor { 1, 5 }, { size = 4 }) end))
    assert.matches("the 'size' argument is required", err_of(function() mg.raw.take_grad(mg.ones { 2, 3 }, mg.tensor { 1, 2 }) end))
  end)
end)

-- ---- softmax cross-entropy ----------------------------------------------------------------

describe("softmax cross-entropy", function()
  local function lse(row)
    local m = -math.huge
    for _, v in ipairs(row) do m = math.max(m, v) end
    local s = 0
    for _, v in ipairs(row) do s = s + math.exp(v - m) end
    return m + math.log(s)
  end

  for _, dt in ipairs { mg.float32, mg.float64 } do
    it("matches -sum(labels * log_softmax) row by row, " .. dt, function()
      local logits, labels = U({ 5, 7 }, dt, -3, 3), U({ 5, 7 }, dt, 0, 1)
      local lt, yt = logits:totable(), labels:totable()
      local want = {}
      for r = 1, 5 do
        local l = lse(lt[r])
        want[r] = 0
        for q = 1, 7 do want[r] = want[r] + yt[r][q] * (l - lt[r][q]) end
      end
      local tol = dt == mg.float32 and 1e-5 or 1e-12
      close(mg.softmax_cross_entropy_with_logits(logits, labels), want, tol)
      local lab = mg.tensor { 7, 1, 4, 4, 2 }
      local sw = {}
      for r = 1, 5 do sw[r] = lse(lt[r]) - lt[r][lab:totable()[r]] end
      close(mg.sparse_softmax_cross_entropy_with_logits(logits, lab), sw, tol)
    end)
  end

  it("is stable for huge logits and keeps batch dimensions", function()
    local logits = mg.tensor({ { { 1000.0, -1000, 0 } }, { { -1000.0, 1000, 999 } } }, mg.float32)   -- (2, 1, 3)
    local loss = mg.sparse_softmax_cross_entropy_with_logits(logits, mg.tensor { { 1 }, { 3 } })
    assert.are.same({ 2, 1 }, loss.shape)
    close(loss, { { 0 }, { math.log(1 + math.exp(-1)) + 1 } }, 1e-4)  -- float32 carries lse = 1000.31
    local dense = mg.softmax_cross_entropy_with_logits(logits, mg.one_hot(mg.tensor { { 1 }, { 3 } }, 3))
    close(dense, loss, 1e-6)
  end)

  it("the gradients are (softmax - onehot) * g, fused, and match the tape", function()
    local logits = mg.Variable(U({ 4, 5 }, mg.float64))
    local lab = mg.tensor { 2, 5, 1, 1 }
    local tape = mg.GradientTape()
    local l = mg.sum(mg.sparse_softmax_cross_entropy_with_logits(logits, lab) * mg.tensor { 1.0, 2, 3, 4 })
    tape:stop()
    local g = tape:gradient(l, logits)
    local want = (mg.softmax(logits) - mg.one_hot(lab, 5, mg.float64)) * mg.tensor({ 1.0, 2, 3, 4 }):reshape { 4, 1 }
    close(g, want, 1e-12)
    local labels = mg.softmax(U({ 4, 5 }, mg.float64))
    close(mg.raw.softmax_cross_entropy_with_logits_grad(logits, labels, mg.ones({ 4 }, mg.float64)),
      mg.softmax(logits) - labels, 1e-12)
  end)

  it("rejects bad labels", function()
    local logits = U { 2, 3 }
    assert.matches("sparse_softmax_cross_entropy_with_logits: labels count from 1 %(got 0%); shift them with y %+ 1 "
      .. "%(element 2; valid: 1..3%)",
      err_of(function() mg.sparse_softmax_cross_entropy_with_logits(logits, mg.tensor { 1, 0 }) end))
    assert.matches("sparse_softmax_cross_entropy_with_logits: label 4 %(element 2%) is out of range %(valid: 1..3%)",
      err_of(function() mg.sparse_softmax_cross_entropy_with_logits(logits, mg.tensor { 1, 4 }) end))
    assert.matches("labels has shape %(3%) but logits without the class axis has shape %(2%)",
      err_of(function() mg.sparse_softmax_cross_entropy_with_logits(logits, mg.tensor { 1, 2, 3 }) end))
    assert.matches("labels must be an integer tensor",
      err_of(function() mg.sparse_softmax_cross_entropy_with_logits(logits, U { 2 }) end))
    assert.matches("labels has shape %(2,2%) but logits has shape %(2,3%)",
      err_of(function() mg.softmax_cross_entropy_with_logits(logits, U { 2, 2 }) end))
    assert.matches("logits must have at least one dimension",
      err_of(function() mg.softmax_cross_entropy_with_logits(mg.tensor(1.0), mg.tensor(1.0)) end))
  end)
end)
