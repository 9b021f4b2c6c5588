-- conv_pool_spec.lua — issue 17's convolutions and pooling: mg.conv1d, mg.conv3d, their
-- transposes, mg.depthwise_conv2d, mg.separable_conv2d, explicit {before, after} padding for
-- every convolution and pooling op, dilation for pooling, mg.max_pool1d/3d, mg.avg_pool1d/3d
-- and count_include_pad.
--
-- Forward values are compared with a plain-Lua N-d loop implementation (one for every rank,
-- written from the definition: out[n, o..., co] = sum over taps of x[n, o*s - pad + k*d, ci]
-- w[k..., ci, co], positions outside x reading 0), in float32 and float64; gradients with
-- respect to the input and the filter with finite differences of a weighted sum, eagerly and
-- staged in mg.func; plus the error messages (op, argument, shapes, the caller's line).
-- (Single-op gradient checks: gradcheck_spec.lua; JAX: tests/oracle.)

local mg = require "moongrad"
local unpack = table.unpack or unpack

local function flat(t) return mg.reshape(t, { t:numel() }):totable() end

local function close(actual, expected, tol, what)
  local a = mg.is_tensor(actual) and flat(actual) or actual
  local b = mg.is_tensor(expected) and flat(expected) or expected
  assert(#a == #b, ("%s: %d values, expected %d"):format(what or "value", #a, #b))
  for i = 1, #b do
    local d = math.abs(a[i] - b[i]) / math.max(1, math.abs(b[i]))
    assert(d <= (tol or 1e-9), ("%s[%d]: %.10g, expected %.10g"):format(what or "value", i, a[i], b[i]))
  end
end

local function err_of(fn)
  local ok, e = pcall(fn)
  assert(not ok, "expected an error")
  return tostring(e)
end

local seed = 1
-- A tensor of values in [-1, 1) and the values (a Lua list).
local function rndv(shape, dtype)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  local v = {}
  for i = 1, n do
    seed = (seed * 1103515245 + 12345) % 2147483648
    v[i] = seed / 2147483648 * 2 - 1
  end
  return mg.reshape(mg.tensor(v, dtype or "float64"), shape), v
end
local function rnd(shape, dtype) return (rndv(shape, dtype)) end

-- ---- the plain-Lua reference -------------------------------------------------------------

-- shape (nsp + 2 values) as 3-d spatial sizes {d, h, w} with leading 1s.
local function sp3(shape, first, nsp)
  local s = { 1, 1, 1 }
  for i = 1, nsp do s[3 - nsp + i] = shape[first + i - 1] end
  return s
end

local function per_axis(v, nsp, def)
  local out = { def, def, def }
  if v == nil then return out end
  if type(v) == "number" then v = { v } end
  for i = 1, nsp do out[3 - nsp + i] = #v == 1 and v[1] or v[i] end
  if type(def) == "number" and def == 1 then for i = 1, 3 - nsp do out[i] = 1 end end
  return out
end

-- {before} per 3-d axis and the output sizes, from TF's rules or explicit pairs.
local function geometry(nsp, insz, k, s, d, padding)
  local out, before = { 1, 1, 1 }, { 0, 0, 0 }
  for i = 3 - nsp + 1, 3 do
    local keff = (k[i] - 1) * d[i] + 1
    if padding == "same" then
      out[i] = math.ceil(insz[i] / s[i])
      local total = math.max((out[i] - 1) * s[i] + keff - insz[i], 0)
      before[i] = math.floor(total / 2)
    elseif type(padding) == "table" then
      local p = padding[i - (3 - nsp)]
      before[i] = p[1]
      out[i] = math.floor((insz[i] + p[1] + p[2] - keff) / s[i]) + 1
    else
      out[i] = math.floor((insz[i] - keff) / s[i]) + 1
    end
  end
  return out, before
end

local function ref_conv(nsp, x, xs, w, ws, opts)
  opts = opts or {}
  local groups = opts.groups or 1
  local n, ci, co = xs[1], xs[nsp + 2], ws[nsp + 2]
  local cig, cog = ci / groups, co / groups
  local insz, k = sp3(xs, 2, nsp), sp3(ws, 1, nsp)
  local s, d = per_axis(opts.strides, nsp, 1), per_axis(opts.dilation, nsp, 1)
  local out, before = geometry(nsp, insz, k, s, d, opts.padding)
  local y = {}
  for b = 0, n - 1 do
    for o1 = 0, out[1] - 1 do for o2 = 0, out[2] - 1 do for o3 = 0, out[3] - 1 do
      for c = 0, co - 1 do
        local g, acc = math.floor(c / cog), 0
        for k1 = 0, k[1] - 1 do for k2 = 0, k[2] - 1 do for k3 = 0, k[3] - 1 do
          local p1 = o1 * s[1] - before[1] + k1 * d[1]
          local p2 = o2 * s[2] - before[2] + k2 * d[2]
          local p3 = o3 * s[3] - before[3] + k3 * d[3]
          if p1 >= 0 and p1 < insz[1] and p2 >= 0 and p2 < insz[2] and p3 >= 0 and p3 < insz[3] then
            for q = 0, cig - 1 do
              local xi = (((b * insz[1] + p1) * insz[2] + p2) * insz[3] + p3) * ci + g * cig + q
              local wi = (((k1 * k[2] + k2) * k[3] + k3) * cig + q) * co + c
              acc = acc + x[xi + 1] * w[wi + 1]
            end
          end
        end end end
        y[#y + 1] = acc
      end
    end end end
  end
  local shape = { n }
  for i = 1, nsp do shape[#shape + 1] = out[3 - nsp + i] end
  shape[#shape + 1] = co
  return y, shape
end

local function ref_pool(nsp, kind, x, xs, opts)
  opts = opts or {}
  local n, ch = xs[1], xs[nsp + 2]
  local insz = sp3(xs, 2, nsp)
  local k = per_axis(opts.ksize or 2, nsp, 1)
  local s = opts.strides and per_axis(opts.strides, nsp, 1) or k
  local d = per_axis(opts.dilation, nsp, 1)
  local out, before = geometry(nsp, insz, k, s, d, opts.padding)
  local y = {}
  for b = 0, n - 1 do
    for o1 = 0, out[1] - 1 do for o2 = 0, out[2] - 1 do for o3 = 0, out[3] - 1 do
      for c = 0, ch - 1 do
        local best, sum, cnt = -math.huge, 0, 0
        for k1 = 0, k[1] - 1 do for k2 = 0, k[2] - 1 do for k3 = 0, k[3] - 1 do
          local p1 = o1 * s[1] - before[1] + k1 * d[1]
          local p2 = o2 * s[2] - before[2] + k2 * d[2]
          local p3 = o3 * s[3] - before[3] + k3 * d[3]
          if p1 >= 0 and p1 < insz[1] and p2 >= 0 and p2 < insz[2] and p3 >= 0 and p3 < insz[3] then
            local v = x[(((b * insz[1] + p1) * insz[2] + p2) * insz[3] + p3) * ch + c + 1]
            best = math.max(best, v)
            sum, cnt = sum + v, cnt + 1
          end
        end end end
        if kind == "max" then y[#y + 1] = best
        else y[#y + 1] = sum / (opts.count_include_pad and k[1] * k[2] * k[3] or cnt) end
      end
    end end end
  end
  return y
end

-- mg's options for a reference's (a table padding stays a table: mg.* takes it so)
local function gradients(f, inputs)
  local tape = mg.GradientTape()
  for _, t in ipairs(inputs) do tape:watch(t) end
  local y = f(unpack(inputs))
  local wts = rnd(y.shape)
  local l = mg.sum(y * wts)
  tape:stop()
  return tape:gradient(l, inputs), wts
end

-- Central differences of sum(f(inputs) * wts) with respect to input i.
local function numeric(f, inputs, i, wts)
  local base = flat(inputs[i])
  local num = {}
  for j = 1, #base do
    local function at(delta)
      local v = {}
      for q = 1, #base do v[q] = base[q] end
      v[j] = v[j] + delta
      local args = {}
      for q, t in ipairs(inputs) do args[q] = t end
      args[i] = mg.reshape(mg.tensor(v, "float64"), inputs[i].shape)
      return mg.sum(f(unpack(args)) * wts):item()
    end
    num[j] = (at(1e-6) - at(-1e-6)) / 2e-6
  end
  return num
end

local function check_grads(f, inputs)
  local g, wts = gradients(f, inputs)
  for i = 1, #inputs do close(g[i], numeric(f, inputs, i, wts), 1e-6, "gradient " .. i) end
  -- staged: the same gradients from inside mg.func
  local function grads_of(args)
    local tape = mg.GradientTape()
    for _, t in ipairs(args) do tape:watch(t) end
    local l = mg.sum(f(unpack(args)) * wts)
    tape:stop()
    return unpack(tape:gradient(l, args))
  end
  local staged = ({
    mg.func(function(a) return grads_of({ a }) end),
    mg.func(function(a, b) return grads_of({ a, b }) end),
    mg.func(function(a, b, c) return grads_of({ a, b, c }) end),
  })[#inputs]
  local sg = { staged(unpack(inputs)) }
  for i = 1, #inputs do close(sg[i], g[i], 1e-12, "staged gradient " .. i) end
end

-- ---- values ------------------------------------------------------------------------------

describe("conv1d/conv2d/conv3d", function()
  local cases = {
    { 1, { 2, 7, 3 }, { 3, 3, 4 }, { padding = "same" } },
    { 1, { 1, 9, 4 }, { 2, 2, 6 }, { strides = 2, dilation = 3, groups = 2 } },
    { 1, { 2, 5, 2 }, { 3, 2, 3 }, { padding = { { 4, 1 } }, strides = 2 } },
    { 2, { 1, 5, 6, 2 }, { 3, 2, 2, 3 }, { padding = { { 1, 2 }, { 0, 3 } } } },
    { 2, { 2, 4, 5, 3 }, { 2, 3, 3, 2 }, { padding = { { 3, 0 }, { 1, 4 } }, strides = { 2, 1 }, dilation = { 1, 2 } } },
    { 3, { 1, 4, 5, 3, 2 }, { 2, 3, 2, 2, 3 }, { padding = "same" } },
    { 3, { 2, 5, 4, 4, 2 }, { 3, 2, 2, 2, 2 }, { strides = { 2, 1, 2 }, dilation = { 1, 2, 1 } } },
    { 3, { 1, 3, 4, 4, 4 }, { 2, 2, 2, 2, 4 }, { groups = 2, padding = { { 1, 0 }, { 0, 2 }, { 1, 1 } } } },
  }
  for k, c in ipairs(cases) do
    for _, dt in ipairs({ "float32", "float64" }) do
      it(("case %d (%dd, %s) matches the loop reference"):format(k, c[1], dt), function()
        local x, xv = rndv(c[2], dt)
        local w, wv = rndv(c[3], dt)
        local y = mg["conv" .. c[1] .. "d"](x, w, c[4])
        local want, shape = ref_conv(c[1], xv, c[2], wv, c[3], c[4])
        assert.same(shape, y.shape)
        assert.equal(dt, y.dtype)
        close(y, want, dt == "float32" and 1e-5 or 1e-12)
      end)
    end
  end

  it("conv1d is conv2d over a unit height axis, and a 3-d unit depth is conv2d", function()
    local x, w = rnd({ 2, 9, 3 }), rnd({ 3, 3, 4 })
    local opts = { strides = 2, padding = { { 2, 1 } } }
    local y2 = mg.conv2d(mg.reshape(x, { 2, 1, 9, 3 }), mg.reshape(w, { 1, 3, 3, 4 }),
      { strides = 2, padding = { { 0, 0 }, { 2, 1 } } })
    close(mg.conv1d(x, w, opts), y2, 1e-12)
    local x3, w3 = rnd({ 1, 5, 6, 2 }), rnd({ 3, 3, 2, 3 })
    close(mg.conv3d(mg.reshape(x3, { 1, 1, 5, 6, 2 }), mg.reshape(w3, { 1, 3, 3, 2, 3 }), { padding = "same" }),
      mg.conv2d(x3, w3, { padding = "same" }), 1e-12)
  end)

  it("the tensor methods take {before, after} pairs too", function()
    local x, w = rnd({ 1, 6, 2 }), rnd({ 3, 2, 2 })
    close(x:conv1d(w, { padding = { { 2, 0 } } }), mg.conv1d(x, w, { padding = { { 2, 0 } } }), 0)
    assert.same({ 1, 4, 2 }, x:max_pool1d({ padding = { { 1, 1 } } }).shape)
  end)

  it("explicit padding equals padding x with zeros first", function()
    local x, w = rnd({ 1, 4, 5, 2 }), rnd({ 2, 3, 2, 3 })
    local y = mg.conv2d(x, w, { padding = { { 1, 2 }, { 3, 0 } } })
    local padded = mg.pad(x, { 0, 0, 1, 2, 3, 0, 0, 0 })
    close(y, mg.conv2d(padded, w), 1e-12)
  end)

  it("gradients with respect to x and w, eagerly and staged", function()
    check_grads(function(x, w) return mg.conv1d(x, w, { strides = 2, padding = { { 2, 1 } } }) end,
      { rnd({ 2, 6, 2 }), rnd({ 3, 2, 3 }) })
    check_grads(function(x, w) return mg.conv3d(x, w, { padding = { { 1, 0 }, { 0, 1 }, { 1, 1 } }, strides = { 1, 2, 1 } }) end,
      { rnd({ 1, 3, 4, 3, 2 }), rnd({ 2, 2, 2, 2, 2 }) })
    check_grads(function(x, w) return mg.conv2d(x, w, { padding = { { 3, 0 }, { 0, 2 } }, dilation = 2 }) end,
      { rnd({ 1, 4, 4, 2 }), rnd({ 2, 2, 2, 2 }) })
  end)

  it("runs staged in mg.func with the same values", function()
    local x, w = rnd({ 1, 3, 4, 4, 2 }), rnd({ 2, 2, 3, 2, 3 })
    local f = mg.func(function(a, b) return mg.conv3d(a, b, { padding = { { 1, 0 }, { 1, 1 }, { 0, 2 } } }) end)
    close(f(x, w), mg.conv3d(x, w, { padding = { { 1, 0 }, { 1, 1 }, { 0, 2 } } }), 1e-12)
  end)
end)

describe("conv1d_transpose/conv3d_transpose", function()
  -- The transposed convolution is the adjoint of the convolution: <conv(z, w), x> = <z, convT(x, w)>.
  local cases = {
    { 1, { 2, 3, 2 }, { 3, 4, 2 }, { strides = 2, padding = "same" } },
    { 1, { 1, 4, 2 }, { 3, 3, 2 }, { strides = 2, padding = { { 1, 0 } } } },
    { 1, { 1, 4, 3 }, { 2, 2, 3 }, { strides = 3, output_padding = 2, dilation = 2 } },
    { 2, { 1, 3, 3, 2 }, { 3, 3, 2, 2 }, { strides = 2, padding = { { 1, 1 }, { 0, 2 } }, output_padding = 1 } },
    { 3, { 1, 2, 3, 2, 2 }, { 2, 3, 2, 3, 2 }, { strides = { 2, 1, 2 } } },
    { 3, { 1, 2, 2, 2, 2 }, { 3, 3, 3, 2, 2 }, { strides = 2, padding = "same" } },
  }
  for k, c in ipairs(cases) do
    it(("case %d (%dd) is the adjoint of conv%dd"):format(k, c[1], c[1]), function()
      local nsp = c[1]
      local x, w = rnd(c[2]), rnd(c[3])
      local y = mg["conv" .. nsp .. "d_transpose"](x, w, c[4])
      local z = rnd(y.shape)
      local copts = { strides = c[4].strides, padding = c[4].padding, dilation = c[4].dilation }
      local fwd = mg["conv" .. nsp .. "d"](z, w, copts)
      assert.same(x.shape, fwd.shape)
      close({ mg.sum(fwd * x):item() }, { mg.sum(z * y):item() }, 1e-12)
    end)
  end

  it("output sizes follow Keras (and in*stride - before - after + ... for explicit pairs)", function()
    assert.same({ 1, 6, 2 }, mg.conv1d_transpose(rnd({ 1, 3, 2 }), rnd({ 3, 2, 2 }), { strides = 2, padding = "same" }).shape)
    assert.same({ 1, 7, 2 }, mg.conv1d_transpose(rnd({ 1, 3, 2 }), rnd({ 3, 2, 2 }), { strides = 2 }).shape)
    assert.same({ 1, 6, 2 }, mg.conv1d_transpose(rnd({ 1, 3, 2 }), rnd({ 3, 2, 2 }), { strides = 2, padding = { { 1, 0 } } }).shape)
    assert.same({ 1, 4, 6, 4, 5 }, mg.conv3d_transpose(rnd({ 1, 2, 3, 2, 2 }), rnd({ 2, 1, 2, 5, 2 }), { strides = 2, padding = "same" }).shape)
  end)

  it("gradients with respect to x and w, eagerly and staged", function()
    check_grads(function(x, w) return mg.conv1d_transpose(x, w, { strides = 2, padding = { { 1, 0 } } }) end,
      { rnd({ 1, 3, 2 }), rnd({ 3, 2, 2 }) })
    check_grads(function(x, w) return mg.conv3d_transpose(x, w, { strides = 2 }) end,
      { rnd({ 1, 2, 1, 2, 2 }), rnd({ 2, 2, 2, 2, 2 }) })
  end)
end)

describe("depthwise_conv2d/separable_conv2d", function()
  it("each channel convolved with its own filters, output channel c*M + m (TF)", function()
    local x, xv = rndv({ 2, 5, 6, 3 })
    local w, wv = rndv({ 3, 2, 3, 2 })
    local y = mg.depthwise_conv2d(x, w, { padding = { { 1, 1 }, { 0, 1 } }, strides = { 1, 2 } })
    assert.same({ 2, 5, 3, 6 }, y.shape)
    -- reference from the definition: y[b, i, j, c*M + m] = sum over taps of x[b, ., ., c] w[., ., c, m]
    local got, hs, ws = flat(y), { 1, 1 }, { 1, 2 }
    local p = 0
    for b = 0, 1 do for i = 0, 4 do for j = 0, 2 do for c = 0, 2 do for m = 0, 1 do
      local acc = 0
      for k1 = 0, 2 do for k2 = 0, 1 do
        local r, q = i * hs[1] - 1 + k1, j * ws[2] - 0 + k2
        if r >= 0 and r < 5 and q >= 0 and q < 6 then
          acc = acc + xv[((b * 5 + r) * 6 + q) * 3 + c + 1] * wv[((k1 * 2 + k2) * 3 + c) * 2 + m + 1]
        end
      end end
      p = p + 1
      assert(math.abs(got[p] - acc) < 1e-12, ("value %d: %g, expected %g"):format(p, got[p], acc))
    end end end end end
  end)

  it("separable_conv2d is the depthwise convolution then a 1x1 convolution", function()
    local x, dw, pw = rnd({ 1, 5, 5, 2 }), rnd({ 3, 3, 2, 2 }), rnd({ 1, 1, 4, 3 })
    local y = mg.separable_conv2d(x, dw, pw, { padding = "same", dilation = 2 })
    close(y, mg.conv2d(mg.depthwise_conv2d(x, dw, { padding = "same", dilation = 2 }), pw), 1e-12)
  end)

  it("gradients with respect to x and the filters, eagerly and staged", function()
    check_grads(function(x, w) return mg.depthwise_conv2d(x, w, { padding = "same", strides = 2 }) end,
      { rnd({ 1, 4, 4, 2 }), rnd({ 2, 2, 2, 2 }) })
    check_grads(function(x, dw, pw) return mg.separable_conv2d(x, dw, pw, { padding = { { 1, 0 }, { 0, 1 } } }) end,
      { rnd({ 1, 3, 4, 2 }), rnd({ 2, 2, 2, 1 }), rnd({ 1, 1, 2, 3 }) })
  end)
end)

describe("max_pool1d/2d/3d and avg_pool1d/2d/3d", function()
  local cases = {
    { 1, { 2, 7, 3 }, {} },
    { 1, { 1, 8, 2 }, { ksize = 3, strides = 2, padding = "same" } },
    { 1, { 1, 9, 2 }, { ksize = 3, strides = 1, dilation = 2 } },
    { 1, { 2, 6, 2 }, { ksize = 3, strides = 2, padding = { { 1, 2 } } } },
    { 2, { 1, 6, 7, 2 }, { ksize = { 2, 3 }, strides = 1, dilation = { 2, 2 }, padding = "same" } },
    { 2, { 1, 5, 5, 2 }, { ksize = 3, strides = 2, padding = { { 1, 1 }, { 2, 0 } } } },
    { 3, { 1, 4, 4, 4, 2 }, {} },
    { 3, { 2, 5, 4, 3, 1 }, { ksize = { 3, 2, 2 }, strides = { 2, 1, 1 }, padding = "same" } },
    { 3, { 1, 5, 5, 5, 1 }, { ksize = 2, strides = 1, dilation = { 2, 1, 3 } } },
    { 3, { 1, 3, 4, 4, 2 }, { ksize = 2, strides = 2, padding = { { 1, 0 }, { 1, 1 }, { 0, 1 } } } },
  }
  for k, c in ipairs(cases) do
    for _, dt in ipairs({ "float32", "float64" }) do
      it(("case %d (%dd, %s) matches the loop reference"):format(k, c[1], dt), function()
        local x, xv = rndv(c[2], dt)
        close(mg["max_pool" .. c[1] .. "d"](x, c[3]), ref_pool(c[1], "max", xv, c[2], c[3]), 1e-6, "max")
        close(mg["avg_pool" .. c[1] .. "d"](x, c[3]), ref_pool(c[1], "avg", xv, c[2], c[3]), 1e-6, "avg")
        local incl = {}
        for key, v in pairs(c[3]) do incl[key] = v end
        incl.count_include_pad = true
        close(mg["avg_pool" .. c[1] .. "d"](x, incl), ref_pool(c[1], "avg", xv, c[2], incl), 1e-6, "avg incl")
      end)
    end
  end

  it("max_pool1d takes integers (as TF), avg_pool does not", function()
    local x = mg.tensor({ { { 3 }, { 9 }, { 1 }, { 4 } } }, "int32")
    assert.same({ { { 9 }, { 4 } } }, mg.max_pool1d(x):totable())
    assert.matches("avg_pool1d: needs floating%-point inputs", err_of(function() mg.avg_pool1d(x) end))
  end)

  it("count_include_pad divides by the whole window", function()
    local x = mg.tensor({ { { 1 }, { 2 }, { 3 } } }, "float64")
    close(mg.avg_pool1d(x, { ksize = 2, strides = 2, padding = { { 1, 0 } } }), { 1, 2.5 })
    close(mg.avg_pool1d(x, { ksize = 2, strides = 2, padding = { { 1, 0 } }, count_include_pad = true }), { 0.5, 2.5 })
  end)

  it("gradients with respect to x, eagerly and staged", function()
    local function distinct(shape)
      local t = rnd(shape)
      return t + mg.reshape(mg.arange(0, t:numel(), 1, "float64"), shape) * 0.01
    end
    check_grads(function(x) return mg.max_pool1d(x, { ksize = 3, strides = 1, dilation = 2, padding = { { 2, 1 } } }) end,
      { distinct({ 1, 7, 2 }) })
    check_grads(function(x) return mg.max_pool3d(x, { padding = "same", ksize = { 2, 3, 2 } }) end, { distinct({ 1, 3, 3, 4, 1 }) })
    check_grads(function(x) return mg.avg_pool3d(x, { ksize = 2, strides = 1, dilation = { 1, 2, 1 } }) end, { rnd({ 1, 3, 4, 3, 1 }) })
    check_grads(function(x) return mg.avg_pool2d(x, { ksize = 3, strides = 2, padding = { { 1, 1 }, { 2, 0 } }, count_include_pad = true }) end,
      { rnd({ 1, 5, 5, 1 }) })
    -- second order through max pooling: max_pool -> max_pool_grad -> max_pool_grad_grad
    local x = distinct({ 1, 6, 1 })
    local outer = mg.GradientTape()
    outer:watch(x)
    local inner = mg.GradientTape()
    inner:watch(x)
    local y = mg.sum(mg.max_pool1d(x * x, { ksize = 3, strides = 1, padding = "same" }))
    inner:stop()
    local g = inner:gradient(y, x)
    local sg = mg.sum(g)
    outer:stop()
    local h = outer:gradient(sg, x)   -- d/dx sum(2x * [x is a window max] * count) = 2 * count
    local gv, hv = flat(g), flat(h)
    for i = 1, 6 do close({ hv[i] }, { gv[i] / flat(x)[i] }, 1e-9) end
  end)
end)

-- ---- errors -----------------------------------------------------------------------------

describe("conv/pool errors", function()
  local this = "conv_pool_spec.lua:%d+: "
  it("mismatched channels name the op, the filter and x with their shapes", function()
    local e = err_of(function() mg.conv1d(mg.zeros { 1, 5, 3 }, mg.zeros { 2, 4, 2 }) end)
    assert.matches(this .. "conv1d: filter %(2,4,2%) does not fit x %(1,5,3%) with groups=1 %(the filter must be "
      .. "%(width, in_channels/groups, out_channels%)", e)
    e = err_of(function() mg.conv3d(mg.zeros { 1, 3, 3, 3, 2 }, mg.zeros { 2, 2, 2, 3, 4 }) end)
    assert.matches(this .. "conv3d: filter %(2,2,2,3,4%) does not fit x %(1,3,3,3,2%)", e)
    e = err_of(function() mg.conv3d_transpose(mg.zeros { 1, 3, 3, 3, 2 }, mg.zeros { 2, 2, 2, 3, 4 }) end)
    assert.matches(this .. "conv3d_transpose: filter %(2,2,2,3,4%) does not fit x %(1,3,3,3,2%)", e)
    e = err_of(function() mg.depthwise_conv2d(mg.zeros { 1, 5, 5, 3 }, mg.zeros { 3, 3, 2, 2 }) end)
    assert.matches(this .. "depthwise_conv2d: depthwise_filter %(3, 3, 2, 2%) does not fit x %(1, 5, 5, 3%)", e)
    e = err_of(function() mg.separable_conv2d(mg.zeros { 1, 5, 5, 3 }, mg.zeros { 3, 3, 3, 2 }, mg.zeros { 1, 1, 5, 4 }) end)
    assert.matches(this .. "separable_conv2d: pointwise_filter %(1, 1, 5, 4%) does not fit: it must be %(1, 1, 6, out_channels%)", e)
  end)

  it("wrong ranks name the layout", function()
    assert.matches(this .. "conv1d: x must be 3%-d %(batch, width, channels%), got shape %(1,5,5,3%)",
      err_of(function() mg.conv1d(mg.zeros { 1, 5, 5, 3 }, mg.zeros { 2, 3, 2 }) end))
    assert.matches(this .. "max_pool3d: x must be 5%-d %(batch, depth, height, width, channels%), got shape %(1,4,4,1%)",
      err_of(function() mg.max_pool3d(mg.zeros { 1, 4, 4, 1 }) end))
    assert.matches(this .. "depthwise_conv2d: x must be 4%-d",
      err_of(function() mg.depthwise_conv2d(mg.zeros { 1, 4, 1 }, mg.zeros { 3, 3, 1, 1 }) end))
  end)

  it("bad padding lists: count, pairs, negatives, both forms, explicit_padding without 'explicit'", function()
    local x, w = mg.zeros { 1, 5, 5, 2 }, mg.zeros { 3, 3, 2, 4 }
    assert.matches(this .. "conv2d: padding must be \"valid\", \"same\" or 2 {before, after} pairs, one per spatial "
      .. "axis %(height, width%), such as {{1, 1}, {2, 2}}; got 3 entries",
      err_of(function() mg.conv2d(x, w, { padding = { { 1, 1 }, { 1, 1 }, { 1, 1 } } }) end))
    assert.matches(this .. "conv3d: padding must be .* 3 {before, after} pairs.*; entry 2 is not two sizes >= 0",
      err_of(function() mg.conv3d(mg.zeros { 1, 3, 3, 3, 1 }, mg.zeros { 1, 1, 1, 1, 1 }, { padding = { { 0, 0 }, { -1, 0 }, { 0, 0 } } }) end))
    assert.matches(this .. "max_pool1d: padding must be .* 1 {before, after} pair, one per spatial axis %(width%).*entry 1",
      err_of(function() mg.max_pool1d(mg.zeros { 1, 5, 1 }, { padding = { { 1 } } }) end))
    assert.matches(this .. "conv2d: option 'padding' must be one of valid, same, explicit, got full",
      err_of(function() mg.conv2d(x, w, { padding = "full" }) end))
    assert.matches(this .. "conv2d: explicit_padding is given but padding is \"same\"",
      err_of(function() mg.conv2d(x, w, { padding = "same", explicit_padding = { 1, 1, 1, 1 } }) end))
    assert.matches(this .. "conv2d: padding needs one {before, after} pair per spatial axis %(height, width%): 4 values, got 2",
      err_of(function() mg.conv2d(x, w, { padding = "explicit", explicit_padding = { 1, 1 } }) end))
    assert.matches(this .. "avg_pool2d: give padding as {before, after} pairs or explicit_padding, not both",
      err_of(function() mg.avg_pool2d(x, { padding = { { 1, 1 }, { 1, 1 } }, explicit_padding = { 1, 1, 1, 1 } }) end))
  end)

  it("a window larger than the padded input names the axis and sizes", function()
    assert.matches(this .. "conv2d: x has height 2, padded to 3, smaller than the window's 4",
      err_of(function() mg.conv2d(mg.zeros { 1, 2, 8, 1 }, mg.zeros { 4, 1, 1, 1 }, { padding = { { 1, 0 }, { 0, 0 } } }) end))
    assert.matches(this .. "conv3d: x has depth 2, smaller than the %(dilated%) window's 3 %(padding \"valid\"%)",
      err_of(function() mg.conv3d(mg.zeros { 1, 2, 4, 4, 1 }, mg.zeros { 2, 1, 1, 1, 1 }, { dilation = 2 }) end))
    assert.matches(this .. "max_pool1d: x has width 3, smaller than the %(dilated%) window's 5",
      err_of(function() mg.max_pool1d(mg.zeros { 1, 3, 1 }, { ksize = 3, dilation = 2 }) end))
    assert.matches(this .. "max_pool2d: window 1 along the height axis lies wholly in the padding %(x has height 4, "
      .. "padding {2, 0}, window 2, dilation 1%)",
      err_of(function() mg.max_pool2d(mg.zeros { 1, 4, 4, 1 }, { padding = { { 2, 0 }, { 0, 0 } } }) end))
  end)

  it("per-axis options with the wrong count or range", function()
    assert.matches(this .. "conv3d: strides takes one value or three %(depth, height, width%), got 2",
      err_of(function() mg.conv3d(mg.zeros { 1, 3, 3, 3, 1 }, mg.zeros { 1, 1, 1, 1, 1 }, { strides = { 1, 2 } }) end))
    assert.matches(this .. "conv1d: dilation takes one value %(width%), got 2",
      err_of(function() mg.conv1d(mg.zeros { 1, 3, 1 }, mg.zeros { 1, 1, 1 }, { dilation = { 1, 2 } }) end))
    assert.matches(this .. "avg_pool3d: ksize must be at least 1, got %(2, 0, 2%)",
      err_of(function() mg.avg_pool3d(mg.zeros { 1, 3, 3, 3, 1 }, { ksize = { 2, 0, 2 } }) end))
    assert.matches(this .. "conv1d_transpose: output_padding %(2%) must be smaller than strides %(2%)",
      err_of(function() mg.conv1d_transpose(mg.zeros { 1, 3, 1 }, mg.zeros { 2, 1, 1 }, { strides = 2, output_padding = 2 }) end))
    assert.matches(this .. "max_pool1d: unknown option 'count_include_pad'",
      err_of(function() mg.max_pool1d(mg.zeros { 1, 3, 1 }, { count_include_pad = true }) end))
    assert.matches(this .. "depthwise_conv2d: unknown option 'groups'",
      err_of(function() mg.depthwise_conv2d(mg.zeros { 1, 3, 3, 1 }, mg.zeros { 1, 1, 1, 1 }, { groups = 2 }) end))
  end)

  it("errors inside mg.func name the op too", function()
    local f = mg.func(function(x, w) return mg.conv1d(x, w, { padding = { { 1 } } }) end)
    assert.matches("conv1d: padding must be", err_of(function() f(mg.zeros { 1, 4, 1 }, mg.zeros { 2, 1, 1 }) end))
  end)
end)
