-- nn_keras_layout_spec.lua — every layer type with weights loads weights in
-- Keras 3's layout (shapes and order, from Keras's documentation) and
-- computes what Keras computes with them.
--
-- Each case builds a layer, checks its weights' names, shapes and order
-- against Keras's (Dense kernel (in, units); Conv2D kernel (kh, kw, in,
-- filters); Conv2DTranspose kernel (kh, kw, filters, in); Embedding
-- (input_dim, output_dim); BatchNormalization gamma, beta, moving_mean,
-- moving_variance; LayerNormalization gamma/beta shaped like the normalised
-- axes; SimpleRNN/LSTM/GRU kernel (in, gates*units), recurrent_kernel
-- (units, gates*units), bias, LSTM gates i, f, c, o, GRU gates z, r, h with
-- reset_after's (2, 3*units) bias), loads deterministic weights with
-- set_weights and compares the output with (a) a plain-Lua computation in
-- this file and (b) Keras 3.15.1's output for the same weights and input
-- (JAX backend; /tmp/k3.py-style script: layer.set_weights(...) then
-- layer(x), values printed with %.7g), pasted below. Indices count from 1
-- here (Embedding ids are Keras's + 1).
local mg = require "moongrad"
local nn = mg.nn
local h = require "tests.spec.nn_helpers"
local near = h.near

-- ---- deterministic values, row-major (NumPy's C order) -------------------------------

local function numel(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end

-- weights: sin(seed + 0.37 k) / 2; inputs: cos(seed + 0.7 k), k = 0, 1, ...
local function gen(shape, seed)
  local v = {}
  for k = 0, numel(shape) - 1 do v[k + 1] = math.sin(seed + 0.37 * k) * 0.5 end
  return v
end
local function inp(shape, seed)
  local v = {}
  for k = 0, numel(shape) - 1 do v[k + 1] = math.cos(seed + 0.7 * k) end
  return v
end

-- A flat list as a float32 tensor of `shape`.
local function T(flat, shape)
  return mg.reshape(mg.tensor(flat, "float32"), shape)
end

-- The flat (1-based) position of 1-based indices in a row-major `shape`.
local function at(shape, ...)
  local idx, pos = { ... }, 0
  for i, d in ipairs(shape) do pos = pos * d + (idx[i] - 1) end
  return pos + 1
end

local function sigmoid(v) return 1 / (1 + math.exp(-v)) end
local function tanh(v)
  local e = math.exp(2 * v)
  return (e - 1) / (e + 1)
end

-- The layer's weights: names (after "layer/") and shapes, in order.
local function layout(layer)
  local names, shapes = {}, {}
  for i, w in ipairs(layer.weights) do
    names[i] = w.name:match("[^/]+$")
    shapes[i] = table.concat(w.shape, ",")
  end
  return names, shapes
end

local function flat_of(t) return mg.reshape(t, { -1 }):totable() end

-- ---- plain-Lua layers --------------------------------------------------------------

local function ref_dense(x, B, I, K, b, U)
  local y = {}
  for n = 1, B do
    for u = 1, U do
      local s = b[u]
      for i = 1, I do s = s + x[(n - 1) * I + i] * K[(i - 1) * U + u] end
      y[#y + 1] = s
    end
  end
  return y
end

-- NHWC convolution, Keras's "same" padding (the extra row/column at the bottom/right).
local function ref_conv(x, xs, K, ks, b, stride, padding)
  local N, H, W, C = xs[1], xs[2], xs[3], xs[4]
  local kh, kw, F = ks[1], ks[2], ks[4]
  local oh, ow, pt, pl
  if padding == "same" then
    oh, ow = math.ceil(H / stride), math.ceil(W / stride)
    pt = math.floor(math.max((oh - 1) * stride + kh - H, 0) / 2)
    pl = math.floor(math.max((ow - 1) * stride + kw - W, 0) / 2)
  else
    oh, ow, pt, pl = math.floor((H - kh) / stride) + 1, math.floor((W - kw) / stride) + 1, 0, 0
  end
  local y = {}
  for n = 1, N do
    for r = 1, oh do
      for c = 1, ow do
        for f = 1, F do
          local s = b[f]
          for i = 1, kh do
            for j = 1, kw do
              local hr, wc = (r - 1) * stride + i - pt, (c - 1) * stride + j - pl
              if hr >= 1 and hr <= H and wc >= 1 and wc <= W then
                for ch = 1, C do s = s + x[at(xs, n, hr, wc, ch)] * K[at(ks, i, j, ch, f)] end
              end
            end
          end
          y[#y + 1] = s
        end
      end
    end
  end
  return y, { N, oh, ow, F }
end

-- Transposed convolution: every input pixel scatters kernel * value into
-- the full output ((H-1)*s + kh rows), which "same" then crops to H*s.
local function ref_conv_transpose(x, xs, K, ks, b, stride, padding)
  local N, H, W, C = xs[1], xs[2], xs[3], xs[4]
  local kh, kw, F = ks[1], ks[2], ks[3]
  local fh, fw = (H - 1) * stride + kh, (W - 1) * stride + kw
  local oh, ow, pt, pl
  if padding == "same" then
    oh, ow = H * stride, W * stride
    pt, pl = math.floor(math.max(fh - oh, 0) / 2), math.floor(math.max(fw - ow, 0) / 2)
  else
    oh, ow, pt, pl = H * stride + math.max(kh - stride, 0), W * stride + math.max(kw - stride, 0), 0, 0
  end
  local full = {}
  local fs = { N, math.max(fh, oh + pt), math.max(fw, ow + pl), F }
  for k = 1, numel(fs) do full[k] = 0 end
  for n = 1, N do
    for r = 1, H do
      for c = 1, W do
        for ch = 1, C do
          local v = x[at(xs, n, r, c, ch)]
          for i = 1, kh do
            for j = 1, kw do
              for f = 1, F do
                local p = at(fs, n, (r - 1) * stride + i, (c - 1) * stride + j, f)
                full[p] = full[p] + v * K[at(ks, i, j, f, ch)]
              end
            end
          end
        end
      end
    end
  end
  local y = {}
  for n = 1, N do
    for r = 1, oh do
      for c = 1, ow do
        for f = 1, F do y[#y + 1] = full[at(fs, n, r + pt, c + pl, f)] + b[f] end
      end
    end
  end
  return y, { N, oh, ow, F }
end

-- Normalises x over the axes in `set` (mean and biased variance per
-- position of the other axes), then gamma/beta indexed by the normalised
-- axes' positions.
local function ref_layer_norm(x, xs, set, gamma, beta, eps)
  local groups = {}
  local n = numel(xs)
  local idx = {}
  for k = 1, n do
    local rem, key, pkey = k - 1, {}, 0
    for d = #xs, 1, -1 do
      idx[d] = rem % xs[d] + 1
      rem = math.floor(rem / xs[d])
    end
    for d = 1, #xs do
      if set[d] then pkey = pkey * xs[d] + (idx[d] - 1) else key[#key + 1] = idx[d] end
    end
    local g = table.concat(key, ",")
    groups[g] = groups[g] or {}
    table.insert(groups[g], { k, pkey + 1 })
  end
  local y = {}
  for _, list in pairs(groups) do
    local mean, var = 0, 0
    for _, e in ipairs(list) do mean = mean + x[e[1]] end
    mean = mean / #list
    for _, e in ipairs(list) do var = var + (x[e[1]] - mean) ^ 2 end
    var = var / #list
    for _, e in ipairs(list) do
      y[e[1]] = (x[e[1]] - mean) / math.sqrt(var + eps) * gamma[e[2]] + beta[e[2]]
    end
  end
  return y
end

-- z = x @ kernel + h @ recurrent_kernel (+ biases) for one step, as a row of gates*U values.
local function affine(xt, F, K, h, U, R, G, b, boff)
  local z = {}
  for g = 1, G * U do
    local s = b and b[(boff or 0) + g] or 0
    for i = 1, F do s = s + xt[i] * K[(i - 1) * G * U + g] end
    if h then for i = 1, U do s = s + h[i] * R[(i - 1) * G * U + g] end end
    z[g] = s
  end
  return z
end

-- Runs `step(xt, state) -> h, state` over (B, T, F) inputs; the output
-- sequence (B, T, U), flat.
local function ref_rnn(x, B, Tn, F, U, step, nstate)
  local y = {}
  for n = 1, B do
    local state = {}
    for s = 1, nstate do
      state[s] = {}
      for u = 1, U do state[s][u] = 0 end
    end
    for t = 1, Tn do
      local xt = {}
      for i = 1, F do xt[i] = x[((n - 1) * Tn + (t - 1)) * F + i] end
      local hh
      hh, state = step(xt, state)
      for u = 1, U do y[#y + 1] = hh[u] end
    end
  end
  return y
end

-- ---- the cases -------------------------------------------------------------------------

describe("layers load Keras-layout weights and compute Keras's outputs", function()
  it("Dense: kernel (in, units), bias (units)", function()
    local x, K, b = inp({ 2, 4 }, 1), gen({ 4, 3 }, 1), gen({ 3 }, 2)
    local d = nn.Dense(3)
    d(T(x, { 2, 4 }))
    local names, shapes = layout(d)
    assert.same({ "kernel", "bias" }, names)
    assert.same({ "4,3", "3" }, shapes)
    d:set_weights { T(K, { 4, 3 }), T(b, { 3 }) }
    local y = flat_of(d(T(x, { 2, 4 })))
    near(y, ref_dense(x, 2, 4, K, b, 3), 1e-5)
    near(y, { 1.119057, 1.233153, 1.180349, -0.4171781, -0.6689146, -0.8301166 }, 1e-5)   -- Keras 3
  end)

  it("Conv2D: kernel (kh, kw, in, filters), valid and same padding, strides", function()
    local x, K, b = inp({ 1, 3, 4, 2 }, 2), gen({ 2, 3, 2, 2 }, 3), gen({ 2 }, 4)
    local c = nn.Conv2D(2, { 2, 3 })
    c(T(x, { 1, 3, 4, 2 }))
    local names, shapes = layout(c)
    assert.same({ "kernel", "bias" }, names)
    assert.same({ "2,3,2,2", "2" }, shapes)
    c:set_weights { T(K, { 2, 3, 2, 2 }), T(b, { 2 }) }
    local y = flat_of(c(T(x, { 1, 3, 4, 2 })))
    near(y, (ref_conv(x, { 1, 3, 4, 2 }, K, { 2, 3, 2, 2 }, b, 1, "valid")), 1e-5)
    near(y, { 0.6811547, 1.264598, -2.442679, -1.759471, 1.881068, 1.889435, -1.07589, -0.2182116 }, 1e-5)

    local x2, K2, b2 = inp({ 1, 4, 5, 2 }, 3), gen({ 3, 3, 2, 2 }, 5), gen({ 2 }, 6)
    local c2 = nn.Conv2D(2, 3, { strides = 2, padding = "same" })
    c2(T(x2, { 1, 4, 5, 2 }))
    c2:set_weights { T(K2, { 3, 3, 2, 2 }), T(b2, { 2 }) }
    local out = c2(T(x2, { 1, 4, 5, 2 }))
    assert.equal("1,2,3,2", table.concat(out.shape, ","))
    near(flat_of(out), (ref_conv(x2, { 1, 4, 5, 2 }, K2, { 3, 3, 2, 2 }, b2, 2, "same")), 1e-5)
    near(flat_of(out), { -0.8581564, -0.7921019, 1.239119, 1.25115, -0.6973076, -0.4217063, 0.2723467, 0.6277487,
      -1.486566, -1.401798, 0.5036519, 0.6190806 }, 1e-5)
  end)

  it("Conv2DTranspose: kernel (kh, kw, filters, in)", function()
    local x, K, b = inp({ 1, 2, 2, 3 }, 4), gen({ 2, 2, 2, 3 }, 7), gen({ 2 }, 8)
    local c = nn.Conv2DTranspose(2, 2, { strides = 2 })
    c(T(x, { 1, 2, 2, 3 }))
    local names, shapes = layout(c)
    assert.same({ "kernel", "bias" }, names)
    assert.same({ "2,2,2,3", "2" }, shapes)
    c:set_weights { T(K, { 2, 2, 2, 3 }), T(b, { 2 }) }
    local y = flat_of(c(T(x, { 1, 2, 2, 3 })))
    near(y, (ref_conv_transpose(x, { 1, 2, 2, 3 }, K, { 2, 2, 2, 3 }, b, 2, "valid")), 1e-5)
    near(y, { 0.5897659, 0.2862312, 0.2673819, 0.3814188, 1.374642, 1.356994, 0.4347598, -0.5404915, 0.6744184,
      0.6482182, 0.5046527, 0.2304423, -0.3128355, 0.6921408, 1.530968, 1.099246, -0.4888998, -0.3474768, 0.7824764,
      1.473212, 0.6078277, 0.3027513, 0.2640118, 0.3619016, 1.130281, -0.03816622, -0.5616274, -0.03144073, 0.6604314,
      0.6552964, 0.5249346, 0.2414011 }, 1e-5)

    local x2, K2 = inp({ 1, 2, 3, 1 }, 4), gen({ 3, 3, 2, 1 }, 7)
    local c2 = nn.Conv2DTranspose(2, 3, { strides = 2, padding = "same" })
    c2(T(x2, { 1, 2, 3, 1 }))
    c2:set_weights { T(K2, { 3, 3, 2, 1 }), T(b, { 2 }) }
    local out = c2(T(x2, { 1, 2, 3, 1 }))
    assert.equal("1,4,6,2", table.concat(out.shape, ","))
    near(flat_of(out), (ref_conv_transpose(x2, { 1, 2, 3, 1 }, K2, { 3, 3, 2, 1 }, b, 2, "same")), 1e-5)
    local fo = flat_of(out)
    near({ fo[1], fo[2], fo[3], fo[24], fo[25], fo[47], fo[48] },
      { 0.2799616, 0.1456093, 0.169978, 0.1852826, 1.11275, 0.4062816, 0.2985702 }, 1e-5)
  end)

  it("Embedding: embeddings (input_dim, output_dim)", function()
    local E = gen({ 5, 3 }, 9)
    local e = nn.Embedding(5, 3)
    local ids = mg.tensor { { 1, 5, 3 }, { 2, 2, 4 } }   -- Keras's {{0, 4, 2}, {1, 1, 3}}
    e(ids)
    local names, shapes = layout(e)
    assert.same({ "embeddings" }, names)
    assert.same({ "5,3" }, shapes)
    e:set_weights { T(E, { 5, 3 }) }
    local want = {}
    for _, id in ipairs({ 1, 5, 3, 2, 2, 4 }) do
      for j = 1, 3 do want[#want + 1] = E[(id - 1) * 3 + j] end
    end
    local y = flat_of(e(ids))
    near(y, want, 1e-7)
    near(y, { 0.2060592, 0.02737528, -0.1550138, 0.3833321, 0.4734783, 0.4995414, -0.487461, -0.4142351, -0.2849444,
      -0.3164225, -0.4350049, -0.4947114, -0.3164225, -0.4350049, -0.4947114, -0.1170879, 0.06661602, 0.2413037 }, 1e-6)
  end)

  it("BatchNormalization: gamma, beta, moving_mean, moving_variance", function()
    local x = inp({ 2, 3 }, 5)
    local g, be, mm = gen({ 3 }, 10), gen({ 3 }, 11), gen({ 3 }, 12)
    local mv = {}
    for i, v in ipairs(gen({ 3 }, 13)) do mv[i] = 0.5 + v * v end
    local bn = nn.BatchNormalization()
    bn(T(x, { 2, 3 }))
    local names, shapes = layout(bn)
    assert.same({ "gamma", "beta", "moving_mean", "moving_variance" }, names)
    assert.same({ "3", "3", "3", "3" }, shapes)
    bn:set_weights { T(g, { 3 }), T(be, { 3 }), T(mm, { 3 }), T(mv, { 3 }) }
    local y = flat_of(bn(T(x, { 2, 3 }), false))
    local want = {}
    for n = 0, 1 do
      for c = 1, 3 do want[#want + 1] = (x[n * 3 + c] - mm[c]) / math.sqrt(mv[c] + 1e-3) * g[c] + be[c] end
    end
    near(y, want, 1e-5)
    near(y, { -0.7033396, -0.9412087, -0.8870376, -0.8510302, -0.5426934, 0.02648127 }, 1e-5)
  end)

  it("LayerNormalization: gamma/beta shaped like the normalised axes (trailing or not)", function()
    local cases = {
      { axis = nil, shape = { 2, 4 }, pshape = { 4 }, set = { [2] = true }, seed = 6, gs = 14,
        keras = { 0.7768531, 0.5635902, -0.08289796, -0.6368033, 0.09692895, -0.324734, -0.08845145, 0.2673515 } },
      { axis = -2, shape = { 2, 3, 4 }, pshape = { 3 }, set = { [2] = true }, seed = 7, gs = 16,
        keras = { -0.5611327, -0.4845046, -0.2787704, -0.3414152, -0.06651574, -0.118241, -0.7445905, -0.9206902,
          -0.8103217, -0.9665535, -0.7053454, -0.2726884, -0.3425455, -0.3816391, -0.4300037, -0.6052006, -0.921443,
          -0.9322872, -0.916222, -0.6600872, -0.2682672, -0.1365732, -0.01481235, 0.1498708 } },
      { axis = { -3, -1 }, shape = { 2, 3, 4, 5 }, pshape = { 3, 5 }, set = { [2] = true, [4] = true }, seed = 8,
        gs = 18, keras_head = { 0.1322957, 0.4839687, 0.4641812, 0.338856, 0.4333892, -0.2118147 },
        keras_tail = { -0.4473857, -0.3147542, 0.09843728, 0.4060108 } },
    }
    for _, c in ipairs(cases) do
      local x = inp(c.shape, c.seed)
      local g, b = gen(c.pshape, c.gs), gen(c.pshape, c.gs + 1)
      local ln = nn.LayerNormalization { axis = c.axis }
      ln(T(x, c.shape))
      local names, shapes = layout(ln)
      local ps = table.concat(c.pshape, ",")
      assert.same({ "gamma", "beta" }, names)
      assert.same({ ps, ps }, shapes)
      ln:set_weights { T(g, c.pshape), T(b, c.pshape) }
      local y = flat_of(ln(T(x, c.shape)))
      near(y, ref_layer_norm(x, c.shape, c.set, g, b, 1e-3), 1e-5, "axis " .. tostring(c.axis))
      if c.keras then near(y, c.keras, 1e-5) end
      if c.keras_head then
        near({ y[1], y[2], y[3], y[4], y[5], y[6] }, c.keras_head, 1e-5)
        near({ y[#y - 3], y[#y - 2], y[#y - 1], y[#y] }, c.keras_tail, 1e-5)
      end
    end
  end)

  it("SimpleRNN: kernel (in, units), recurrent_kernel (units, units), bias (units)", function()
    local x, K, R, b = inp({ 2, 4, 2 }, 9), gen({ 2, 3 }, 20), gen({ 3, 3 }, 21), gen({ 3 }, 22)
    local l = nn.SimpleRNN(3, { return_sequences = true })
    l(T(x, { 2, 4, 2 }))
    local names, shapes = layout(l)
    assert.same({ "kernel", "recurrent_kernel", "bias" }, names)
    assert.same({ "2,3", "3,3", "3" }, shapes)
    l:set_weights { T(K, { 2, 3 }), T(R, { 3, 3 }), T(b, { 3 }) }
    local y = flat_of(l(T(x, { 2, 4, 2 })))
    local want = ref_rnn(x, 2, 4, 2, 3, function(xt, st)
      local z = affine(xt, 2, K, st[1], 3, R, 1, b)
      for u = 1, 3 do z[u] = tanh(z[u]) end
      return z, { z }
    end, 1)
    near(y, want, 1e-5)
    near(y, { -0.659286, -0.7040565, -0.6861166, -0.1304056, -0.1225513, -0.09820057, 0.6096026, 0.4291014, 0.1461509,
      0.5474943, 0.2715658, -0.0951016, -0.5096908, -0.5597044, -0.5489665, -0.5182953, -0.4925728, -0.4068956,
      0.3249673, 0.2191059, 0.07794043, 0.6882902, 0.471994, 0.1107281 }, 1e-5)
  end)

  it("LSTM: kernel (in, 4 units) in gate order i, f, c, o", function()
    local x, K, R, b = inp({ 2, 3, 2 }, 10), gen({ 2, 8 }, 23), gen({ 2, 8 }, 24), gen({ 8 }, 25)
    local l = nn.LSTM(2, { return_sequences = true })
    l(T(x, { 2, 3, 2 }))
    local names, shapes = layout(l)
    assert.same({ "kernel", "recurrent_kernel", "bias" }, names)
    assert.same({ "2,8", "2,8", "8" }, shapes)
    l:set_weights { T(K, { 2, 8 }), T(R, { 2, 8 }), T(b, { 8 }) }
    local y = flat_of(l(T(x, { 2, 3, 2 })))
    local want = ref_rnn(x, 2, 3, 2, 2, function(xt, st)
      local z = affine(xt, 2, K, st[1], 2, R, 4, b)
      local hn, cn = {}, {}
      for u = 1, 2 do
        local i, f, g, o = sigmoid(z[u]), sigmoid(z[2 + u]), tanh(z[4 + u]), sigmoid(z[6 + u])
        cn[u] = f * st[2][u] + i * g
        hn[u] = o * tanh(cn[u])
      end
      return hn, { hn, cn }
    end, 2)
    near(y, want, 1e-5)
    near(y, { 0.176565, 0.1567119, 0.2961856, 0.2801192, 0.2671189, 0.3011044, 0.06253847, 0.0908227, 0.1675815,
      0.173464, 0.3003912, 0.2813546 }, 1e-5)
  end)

  it("GRU: gates z, r, h; reset_after's bias (2, 3 units), and the (3 units) bias without it", function()
    local x, K, R, b = inp({ 2, 3, 2 }, 11), gen({ 2, 6 }, 26), gen({ 2, 6 }, 27), gen({ 2, 6 }, 28)
    local l = nn.GRU(2, { return_sequences = true })
    l(T(x, { 2, 3, 2 }))
    local names, shapes = layout(l)
    assert.same({ "kernel", "recurrent_kernel", "bias" }, names)
    assert.same({ "2,6", "2,6", "2,6" }, shapes)
    l:set_weights { T(K, { 2, 6 }), T(R, { 2, 6 }), T(b, { 2, 6 }) }
    local y = flat_of(l(T(x, { 2, 3, 2 })))
    local want = ref_rnn(x, 2, 3, 2, 2, function(xt, st)
      local xz = affine(xt, 2, K, nil, 2, nil, 3, b, 0)      -- input bias: row 1
      local hz = affine({ 0, 0 }, 2, K, st[1], 2, R, 3, b, 6) -- recurrent bias: row 2
      local hn = {}
      for u = 1, 2 do
        local z, r = sigmoid(xz[u] + hz[u]), sigmoid(xz[2 + u] + hz[2 + u])
        local hh = tanh(xz[4 + u] + r * hz[4 + u])
        hn[u] = z * st[1][u] + (1 - z) * hh
      end
      return hn, { hn }
    end, 1)
    near(y, want, 1e-5)
    near(y, { -0.3622298, -0.3834078, -0.3705693, -0.4257529, -0.1754611, -0.2052425, -0.1583483, -0.05188357,
      -0.4260907, -0.3421151, -0.4846304, -0.4742794 }, 1e-5)

    local x2, K2, R2, b2 = inp({ 2, 3, 2 }, 12), gen({ 2, 6 }, 29), gen({ 2, 6 }, 30), gen({ 6 }, 31)
    local l2 = nn.GRU(2, { return_sequences = true, reset_after = false })
    l2(T(x2, { 2, 3, 2 }))
    local _, shapes2 = layout(l2)
    assert.same({ "2,6", "2,6", "6" }, shapes2)
    l2:set_weights { T(K2, { 2, 6 }), T(R2, { 2, 6 }), T(b2, { 6 }) }
    local y2 = flat_of(l2(T(x2, { 2, 3, 2 })))
    local want2 = ref_rnn(x2, 2, 3, 2, 2, function(xt, st)
      local xz = affine(xt, 2, K2, nil, 2, nil, 3, b2)
      local hp = st[1]
      local hn, z, r = {}, {}, {}
      for u = 1, 2 do
        local sz, sr = xz[u], xz[2 + u]
        for i = 1, 2 do sz = sz + hp[i] * R2[(i - 1) * 6 + u]; sr = sr + hp[i] * R2[(i - 1) * 6 + 2 + u] end
        z[u], r[u] = sigmoid(sz), sigmoid(sr)
      end
      for u = 1, 2 do
        local s = xz[4 + u]
        for i = 1, 2 do s = s + r[i] * hp[i] * R2[(i - 1) * 6 + 4 + u] end
        hn[u] = z[u] * hp[u] + (1 - z[u]) * tanh(s)
      end
      return hn, { hn }
    end, 1)
    near(y2, want2, 1e-5)
    near(y2, { 0.3315021, 0.3711832, 0.2866984, 0.3827419, 0.2916888, 0.3257332, 0.2564181, 0.2076812, 0.4954118,
      0.4744798, 0.4544273, 0.541257 }, 1e-5)
  end)

  it("set_weights refuses a non-Keras shape (the old (3, 1) LayerNormalization gamma)", function()
    local ln = nn.LayerNormalization { axis = -2 }
    ln(mg.ones { 2, 3, 4 })
    h.fails(function() ln:set_weights { mg.ones { 3, 1 }, mg.zeros { 3, 1 } } end, "has shape (3,)", "(3, 1)")
  end)
end)
