-- Issue 17: mg.dot_product_attention (the fused kernel), mg.image.resize, and
-- mg.random.categorical / shuffle / gamma / poisson.
local mg = require("moongrad")
local core = mg.core

local function maxdiff(a, b) return mg.max(mg.abs(mg.cast(a, "float64") - mg.cast(b, "float64"))):item() end
local function here() return debug.getinfo(2, "Sl").short_src .. ":" .. debug.getinfo(2, "l").currentline end

-- ---- dot_product_attention --------------------------------------------------------------
-- The reference: the same computation written with plain ops (matmul, where, softmax), in Keras
-- 3's terms: masked logits are -0.7 * float32 max, the causal mask is tril (key j <= query i).
local function reference(q, k, v, opts)
  opts = opts or {}
  local B, Tq, H, D = q.shape[1], q.shape[2], q.shape[3], q.shape[4]
  local Tk, Hk, Dv = k.shape[2], k.shape[3], v.shape[4]
  local G = H / Hk
  local qt = core.permute(q, { 1, 3, 2, 4 })
  local kt = core.permute(k, { 1, 3, 4, 2 })
  local vt = core.permute(v, { 1, 3, 2, 4 })
  if G > 1 then
    kt = core.reshape(core.expand(core.unsqueeze(kt, 3), { B, Hk, G, D, Tk }), { B, H, D, Tk })
    vt = core.reshape(core.expand(core.unsqueeze(vt, 3), { B, Hk, G, Tk, Dv }), { B, H, Tk, Dv })
  end
  local s = mg.matmul(qt, kt) * (opts.scale or 1 / math.sqrt(D))
  local m = opts.mask
  if opts.is_causal then
    local c = mg.less_equal(core.reshape(mg.arange(0, Tk), { 1, Tk }), core.reshape(mg.arange(0, Tq), { Tq, 1 }))
    m = m and mg.logical_and(m, c) or c
  end
  if m then s = mg.where(m, s, -0.7 * 3.4028234663852886e38) end
  return core.permute(mg.matmul(mg.softmax(s, -1), vt), { 1, 3, 2, 4 })
end

local function inputs(B, Tq, Tk, H, Hk, D, Dv, dt, seed)
  seed = seed or 1
  return core.uniform({ B, Tq, H, D }, -1, 1, dt or "float64", seed),
    core.uniform({ B, Tk, Hk, D }, -1, 1, dt or "float64", seed + 1),
    core.uniform({ B, Tk, Hk, Dv }, -1, 1, dt or "float64", seed + 2)
end

local function grads3(f, q, k, v, w)
  return mg.grad(function(a, b, c) return mg.sum(f(a, b, c) * w) end, { argnums = { 1, 2, 3 } })(q, k, v)
end

describe("mg.dot_product_attention", function()
  local configs = {
    { "one block", { 2, 5, 7, 2, 2, 3, 4 }, {} },
    { "several query and key blocks, causal", { 1, 130, 300, 2, 1, 8, 8 }, { is_causal = true } },
    { "grouped-query, scale", { 2, 70, 70, 4, 2, 5, 5 }, { scale = 0.3 } },
    { "a broadcast mask over blocks", { 1, 65, 260, 2, 2, 16, 8 }, { mask = "random" } },
    { "rows with every key masked", { 2, 3, 3, 1, 1, 2, 2 }, { mask = "full" } },
    { "mask and causal", { 1, 200, 140, 2, 2, 4, 4 }, { is_causal = true, mask = "random" } },
  }
  for _, cfg in ipairs(configs) do
    local name, dims, o = cfg[1], cfg[2], cfg[3]
    local function opts_for()
      local opts = { scale = o.scale, is_causal = o.is_causal }
      if o.mask == "random" then
        opts.mask = mg.greater(core.uniform({ dims[1], 1, dims[2], dims[3] }, 0, 1, "float64", 7), 0.3)
      elseif o.mask == "full" then
        opts.mask = mg.tensor({ { true, false, true }, { false, false, false }, { true, true, true } })
      end
      return opts
    end

    it(name .. ": values and gradients agree with the composition of plain ops (float64)", function()
      local q, k, v = inputs(dims[1], dims[2], dims[3], dims[4], dims[5], dims[6], dims[7])
      local opts = opts_for()
      local y = mg.dot_product_attention(q, k, v, opts)
      assert.are.same({ dims[1], dims[2], dims[4], dims[7] }, y.shape)
      assert.is_true(maxdiff(y, reference(q, k, v, opts)) < 1e-13)
      local w = core.uniform(y.shape, -1, 1, "float64", 9)
      local g = grads3(function(a, b, c) return mg.dot_product_attention(a, b, c, opts) end, q, k, v, w)
      local r = grads3(function(a, b, c) return reference(a, b, c, opts) end, q, k, v, w)
      for i = 1, 3 do assert.is_true(maxdiff(g[i], r[i]) < 1e-13, "gradient " .. i) end
    end)

    it(name .. ": float32 within float32 rounding", function()
      local q, k, v = inputs(dims[1], dims[2], dims[3], dims[4], dims[5], dims[6], dims[7])
      local opts = opts_for()
      local y = mg.dot_product_attention(mg.cast(q, "float32"), mg.cast(k, "float32"), mg.cast(v, "float32"), opts)
      assert.are.equal("float32", y.dtype)
      assert.is_true(maxdiff(y, reference(q, k, v, opts)) < 1e-5)
    end)
  end

  it("a row with every key masked is the uniform average of the values (Keras, JAX)", function()
    local q, k, v = inputs(1, 2, 4, 1, 1, 2, 3)
    local mask = mg.tensor({ { true, true, false, false }, { false, false, false, false } })
    local y = mg.dot_product_attention(q, k, v, { mask = mask })
    local avg = mg.mean(v, { axis = 2 })   -- (1, 1, 3)
    assert.is_true(maxdiff(y[1][2][1], avg[1][1]) < 1e-15)
    -- and no gradient reaches q or k through that row's (constant) logits
    local w = mg.tensor({ { { { 0, 0, 0 } }, { { 1, 2, 3 } } } }, "float64")
    local g = grads3(function(a, b, c) return mg.dot_product_attention(a, b, c, { mask = mask }) end, q, k, v, w)
    assert.are.equal(0, mg.max(mg.abs(g[1])):item())
    assert.are.equal(0, mg.max(mg.abs(g[2])):item())
    assert.is_true(maxdiff(g[3], mg.broadcast_to(mg.reshape(mg.tensor({ 1, 2, 3 }, "float64") / 4, { 1, 1, 1, 3 }),
      { 1, 4, 1, 3 })) < 1e-15)
  end)

  it("reads strided and broadcast views where they lie", function()
    local q, k, v = inputs(2, 9, 9, 2, 2, 4, 4)
    local qt = core.permute(core.contiguous(core.permute(q, { 1, 3, 2, 4 })), { 1, 3, 2, 4 })  -- strided view
    local kb = mg.broadcast_to(k:slice({ { 1, 1 } }), { 2, 9, 2, 4 })                             -- stride 0 on batch
    local vs = core.contiguous(core.concat({ v, v }, 4)):slice({ {}, {}, {}, { 1, 4 } })           -- a column slice
    local y = mg.dot_product_attention(qt, kb, vs)
    assert.is_true(maxdiff(y, reference(q, core.contiguous(kb), v)) < 1e-13)
  end)

  it("Keras's flash_attention= switch is accepted and changes nothing", function()
    local q, k, v = inputs(1, 6, 6, 2, 2, 4, 4)
    assert.are.equal(0, maxdiff(mg.dot_product_attention(q, k, v, { flash_attention = false }),
      mg.dot_product_attention(q, k, v)))
  end)

  it("gradients of only some inputs use the per-input backward (and agree)", function()
    local q, k, v = inputs(1, 70, 150, 2, 1, 4, 6)
    local w = core.uniform({ 1, 70, 2, 6 }, -1, 1, "float64", 5)
    local all = grads3(function(a, b, c) return mg.dot_product_attention(a, b, c, { is_causal = true }) end, q, k, v, w)
    for i = 1, 3 do
      local gi = mg.grad(function(x)
        local args = { q, k, v }
        args[i] = x
        return mg.sum(mg.dot_product_attention(args[1], args[2], args[3], { is_causal = true }) * w)
      end)(({ q, k, v })[i])
      assert.is_true(maxdiff(gi, all[i]) < 1e-14, "input " .. i)
    end
  end)

  it("staged in mg.func: same values and gradients, sizes unknown included", function()
    local q, k, v = inputs(2, 20, 20, 2, 2, 4, 4)
    local w = core.uniform({ 2, 20, 2, 4 }, -1, 1, "float64", 5)
    local f = mg.func(function(a, b, c)
      local tape = mg.GradientTape()
      tape:watch({ a, b, c })
      local l = mg.sum(mg.dot_product_attention(a, b, c, { is_causal = true }) * w)
      tape:stop()
      local g = tape:gradient(l, { a, b, c })
      return l, g[1], g[2], g[3]
    end)
    local l, g1, g2, g3 = f(q, k, v)
    local r = grads3(function(a, b, c) return reference(a, b, c, { is_causal = true }) end, q, k, v, w)
    assert.is_true(math.abs(l:item() - mg.sum(reference(q, k, v, { is_causal = true }) * w):item()) < 1e-12)
    assert.is_true(maxdiff(g1, r[1]) < 1e-13 and maxdiff(g2, r[2]) < 1e-13 and maxdiff(g3, r[3]) < 1e-13)
    local h = mg.func(function(a, b, c) return mg.dot_product_attention(a, b, c) end,
      { input_signature = { mg.TensorSpec { shape = { -1, -1, 2, 4 }, dtype = "float64" },
        mg.TensorSpec { shape = { -1, -1, 2, 4 }, dtype = "float64" },
        mg.TensorSpec { shape = { -1, -1, 2, 4 }, dtype = "float64" } } })
    local q2, k2, v2 = inputs(3, 11, 17, 2, 2, 4, 4)
    assert.is_true(maxdiff(h(q2, k2, v2), reference(q2, k2, v2)) < 1e-13)
    assert.is_true(maxdiff(h(q, k, v), reference(q, k, v)) < 1e-13)
  end)

  it("errors name the function, the argument and the shapes, at the caller's line", function()
    local q, k, v = inputs(1, 5, 5, 2, 2, 3, 3)
    -- (each call is kept out of tail position, so that the caller's frame exists to be named)
    local cases = {
      { function() local r = mg.dot_product_attention(q[1], k, v); return r end, "dot_product_attention: query must be 4%-d .*%(5,2,3%)" },
      { function() local r = mg.dot_product_attention(q, k:slice({ {}, {}, {}, { 1, 2 } }), v); return r end,
        "dot_product_attention: query and key must have the same head size" },
      { function() local r = mg.dot_product_attention(q, k, v, { mask = mg.ones({ 5, 5 }) }); return r end,
        "dot_product_attention: mask must be a bool tensor .*float32" },
      { function() local r = mg.dot_product_attention(q, k, v, { mask = mg.ones({ 4, 5 }, "bool") }); return r end,
        "dot_product_attention: mask of shape %(4,5%) does not broadcast to .* = %(1,2,5,5%)" },
      { function() local r = mg.dot_product_attention(q, k, v, { causal = true }); return r end,
        "dot_product_attention: unknown option 'causal'" },
      { function() local r = mg.dot_product_attention(q, k, v, { scale = 0 / 0 }); return r end,
        "dot_product_attention: option 'scale' must be in %(%-inf, inf%), got nan" },
      { function() local r = mg.dot_product_attention(q, k, v, { bias = q }); return r end, "dot_product_attention: bias= is not supported" },
      { function() local r = mg.dot_product_attention(mg.cast(q, "int32"), mg.cast(k, "int32"), mg.cast(v, "int32")); return r end,
        "dot_product_attention: query, key and value must be float32 or float64" },
      { function() local r = mg.dot_product_attention(q, k:slice({ {}, {}, { 1, 1 } }), v:slice({ {}, {}, { 1, 1 } })); return r end, nil },
      { function() local r = mg.dot_product_attention(q, mg.concat({ k, k, k }, 3), mg.concat({ v, v, v }, 3)); return r end,
        "the number of key/value heads must divide the number of query heads" },
      { function() local r = mg.dot_product_attention(q, core.slice(k, { 0, 0 }, { 1, 0 }), core.slice(v, { 0, 0 }, { 1, 0 })); return r end, nil },
    }
    for i, c in ipairs(cases) do
      local line = debug.getinfo(c[1], "S").linedefined
      local ok, err = pcall(c[1])
      if c[2] == nil then
        if i == 9 then assert.is_true(ok, tostring(err)) end   -- one key/value head for two query heads
      else
        assert.is_false(ok, "case " .. i)
        assert.matches(c[2], tostring(err))
        assert.matches("attn_ops_spec.lua:" .. line .. ":", tostring(err), 1, true)
      end
    end
    local ok, err = pcall(mg.dot_product_attention, q, core.slice(k, { 0, 0 }, { 1, 0 }), core.slice(v, { 0, 0 }, { 1, 0 }))
    assert.is_false(ok)
    assert.matches("the key sequence is empty", tostring(err))
  end)

  it("a second derivative is an error that says so", function()
    local q, k, v = inputs(1, 3, 3, 1, 1, 2, 2)
    local p = core.dot_product_attention({ q, k, v })
    local tape = mg.GradientTape()
    tape:watch(q)
    local l = mg.sum(core.dot_product_attention_grad({ q, k, v, p, mg.ones_like(p) }, { part = 0 }))
    tape:stop()
    local ok, err = pcall(tape.gradient, tape, l, q)
    assert.is_false(ok)
    assert.matches("second derivative of dot_product_attention is not implemented", tostring(err), 1, true)
    -- through nested tapes too (a gradient of the gradient)
    local gg = function(x)
      return mg.grad(function(y) return mg.sum(mg.dot_product_attention(y, k, v) ^ 2) end)(x)
    end
    ok, err = pcall(mg.grad(function(x) return mg.sum(gg(x)) end), q)
    assert.is_false(ok)
    assert.matches("second derivative of dot_product_attention is not implemented", tostring(err), 1, true)
  end)
end)

-- ---- random: categorical, shuffle, gamma, poisson -------------------------------------------
describe("mg.random.gamma / poisson / categorical / shuffle", function()
  local function moments(x)
    local v = mg.cast(x, "float64")
    return v:mean():item(), mg.variance(v):item()
  end

  it("gamma: mean alpha/beta and variance alpha/beta^2 (alpha above and below 1)", function()
    mg.random.seed(42)
    for _, p in ipairs({ { 2.5, 2 }, { 0.4, 1 }, { 9, 0.5 } }) do
      local a, b = p[1], p[2]
      local m, v = moments(mg.random.gamma({ 100000 }, a, { beta = b, dtype = "float64" }))
      assert.is_true(math.abs(m - a / b) < 4 * math.sqrt(a) / b / math.sqrt(100000), "mean " .. m)
      assert.is_true(math.abs(v / (a / b ^ 2) - 1) < 0.05, "variance " .. v)
    end
    local g = mg.random.gamma({ 1000 }, 0.05)
    assert.is_true(mg.min(g):item() >= 0)
    assert.are.equal("float32", g.dtype)
  end)

  it("poisson: mean and variance lam, small and large rates, integer dtypes", function()
    mg.random.seed(42)
    for _, lam in ipairs({ 0.5, 4, 9.99, 10, 250 }) do
      local x = mg.random.poisson({ 100000 }, lam, { dtype = "int64" })
      assert.are.equal("int64", x.dtype)
      local m, v = moments(x)
      assert.is_true(math.abs(m - lam) < 4 * math.sqrt(lam / 100000), lam .. ": mean " .. m)
      assert.is_true(math.abs(v / lam - 1) < 0.05, lam .. ": variance " .. v)
    end
    assert.are.equal(0, mg.max(mg.random.poisson({ 100 }, 0)):item())
    assert.are.equal("float32", mg.random.poisson({ 2 }, 1).dtype)
  end)

  it("categorical: frequencies follow softmax(logits); -inf never drawn; 1-based; 1-d logits", function()
    mg.random.seed(7)
    local probs = { { 0.1, 0.2, 0.7 }, { 0.5, 0, 0.5 } }
    local c = mg.random.categorical(mg.log(mg.tensor(probs, "float64")), 50000)
    assert.are.same({ 2, 50000 }, c.shape)
    assert.are.equal("int64", c.dtype)
    for r = 1, 2 do
      for k = 1, 3 do
        local f = mg.mean(mg.cast(mg.equal(c[r], k), "float64")):item()
        local p = probs[r][k]
        assert.is_true(math.abs(f - p) <= 4 * math.sqrt(p * (1 - p) / 50000), r .. "," .. k .. ": " .. f)
      end
    end
    local one = mg.random.categorical(mg.tensor({ -1 / 0, 0, -1 / 0 }), 10)
    assert.are.same({ 10 }, one.shape)
    assert.are.same({ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2 }, one:totable())
    assert.are.equal("int32", mg.random.categorical(mg.zeros({ 1, 4 }), 3, { dtype = "int32" }).dtype)
  end)

  it("shuffle: a permutation of the first axis, every order reachable, gradient back to x", function()
    mg.random.seed(3)
    local x = mg.reshape(mg.arange(1, 13, 1, "float64"), { 4, 3 })
    local y = mg.random.shuffle(x)
    assert.are.same({ 4, 3 }, y.shape)
    local firsts = y:slice({ {}, { 1, 1 } }):reshape({ 4 }):totable()
    table.sort(firsts)
    assert.are.same({ 1, 4, 7, 10 }, firsts)
    for i = 1, 4 do   -- rows stay whole
      local r = y[i]:totable()
      assert.are.same({ r[1], r[1] + 1, r[1] + 2 }, r)
    end
    local seen = {}
    for _ = 1, 400 do seen[table.concat(mg.random.shuffle(mg.arange(1, 4)):totable(), ",")] = true end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.are.equal(6, n)
    local w = mg.tensor({ { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 }, { 10, 11, 12 } }, "float64")
    local g = mg.grad(function(t) return mg.sum(mg.random.shuffle(t) ^ 2) end)(w)
    assert.is_true(maxdiff(g, w * 2) == 0)   -- a permutation: each element's own 2x
  end)

  it("reproducible under mg.random.seed, and from seed= alone", function()
    local function draw()
      return { mg.random.gamma({ 5 }, 1.5), mg.random.poisson({ 5 }, 3), mg.random.categorical(mg.zeros({ 2, 5 }), 4),
        mg.random.shuffle(mg.arange(1, 9)) }
    end
    mg.random.seed(123)
    local a = draw()
    mg.random.seed(123)
    local b = draw()
    for i = 1, 4 do assert.are.same(a[i]:totable(), b[i]:totable()) end
    local c = draw()   -- the counter moved on: new values
    assert.are_not.same(a[1]:totable(), c[1]:totable())
    assert.are.same(mg.random.gamma({ 4 }, 2, { seed = 9 }):totable(), mg.random.gamma({ 4 }, 2, { seed = 9 }):totable())
    assert.are.same(mg.random.shuffle(mg.arange(1, 30), { seed = 9 }):totable(),
      mg.random.shuffle(mg.arange(1, 30), { seed = 9 }):totable())
  end)

  it("staged in mg.func: a new draw each call, the same sequence after mg.random.seed", function()
    local f = mg.func(function(x)
      return mg.random.gamma({ 3 }, 2), mg.random.poisson({ 3 }, 4), mg.random.categorical(x, 3), mg.random.shuffle(x)
    end)
    local x = mg.zeros({ 5, 4 })
    mg.random.seed(5)
    local r1 = { f(x) }
    local r2 = { f(x) }
    assert.are_not.same(r1[1]:totable(), r2[1]:totable())
    mg.random.seed(5)
    local r3 = { f(x) }
    for i = 1, 4 do assert.are.same(r1[i]:totable(), r3[i]:totable()) end
    -- and eager draws the same values as staged from the same state
    mg.random.seed(5)
    assert.are.same(r1[1]:totable(), mg.random.gamma({ 3 }, 2):totable())
    -- shuffle of a tensor whose first size is unknown while staging
    local h = mg.func(function(t) return mg.random.shuffle(t) end,
      { input_signature = { mg.TensorSpec { shape = { -1 }, dtype = "int64" } } })
    local s = h(mg.arange(1, 8)):totable()
    table.sort(s)
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7 }, s)
  end)

  it("bad parameters are errors naming the function and the parameter, at the caller's line", function()
    local cases = {
      { function() local r = mg.random.gamma({ 3 }, 0); return r end, "random.gamma: alpha %(the shape parameter%) must be finite and > 0, got 0" },
      { function() local r = mg.random.gamma({ 3 }, -2); return r end, "random.gamma: alpha .* got %-2" },
      { function() local r = mg.random.gamma({ 3 }, 1, { beta = 0 }); return r end, "random.gamma: beta %(the rate, 1/scale%) must be finite and > 0" },
      { function() local r = mg.random.gamma({ 3 }, 1, { dtype = "int64" }); return r end, "random.gamma: dtype must be float32 or float64" },
      { function() local r = mg.random.gamma(3, 1); return r end, "random.gamma: the shape is a table" },
      { function() local r = mg.random.gamma({ 3 }, 1, { scale = 2 }); return r end, "random.gamma: unknown option 'scale'" },
      { function() local r = mg.random.poisson({ 3 }, -1); return r end, "random.poisson: lam %(the rate%) must be finite, >= 0" },
      { function() local r = mg.random.poisson({ 3 }, 0 / 0); return r end, "random.poisson: lam" },
      { function() local r = mg.random.poisson({ 3 }, 1, { dtype = "bool" }); return r end, "random.poisson: dtype must be" },
      { function() local r = mg.random.categorical(mg.zeros({ 2, 3 }), -1); return r end, "random.categorical: num_samples must be" },
      { function() local r = mg.random.categorical(mg.zeros({ 2, 3, 1 }), 2); return r end, "random.categorical: logits must be 2%-d %(batch, classes%), got shape %(2,3,1%)" },
      { function() local r = mg.random.categorical(mg.tensor({ { 0, 0 / 0 } }), 2); return r end, "random.categorical: row 1 of logits has no valid distribution" },
      { function() local r = mg.random.categorical(mg.tensor({ { 0, 0 }, { -1 / 0, -1 / 0 } }), 2); return r end, "row 2 of logits" },
      { function() local r = mg.random.categorical(mg.tensor({ { 1, 2 } }, "int64"), 2); return r end, "random.categorical: logits must be float32 or float64, got int64" },
      { function() local r = mg.random.shuffle(mg.tensor(3)); return r end, "random.shuffle: x must have at least one axis" },
      { function() local r = mg.random.shuffle({ 1, 2 }); return r end, "random.shuffle: x must be a tensor" },
    }
    for i, c in ipairs(cases) do
      local line = debug.getinfo(c[1], "S").linedefined
      local ok, err = pcall(c[1])
      assert.is_false(ok, "case " .. i)
      assert.matches(c[2], tostring(err))
      assert.matches("attn_ops_spec.lua:" .. line .. ":", tostring(err), 1, true)
    end
  end)
end)

-- ---- image.resize -------------------------------------------------------------------------------
describe("mg.image.resize", function()
  local function close(t, expect, tol)
    local got = t:reshape({ -1 }):totable()
    assert.are.equal(#expect, #got)
    for i = 1, #expect do assert.is_true(math.abs(got[i] - expect[i]) <= (tol or 1e-6), i .. ": " .. got[i]) end
  end
  local img = mg.reshape(mg.tensor({ 0, 1, 2, 3 }, "float32"), { 2, 2, 1 })   -- [[0, 1], [2, 3]]

  it("bilinear upsampling: half-pixel centres, edges clamped (TF's values)", function()
    -- 1-d positions (i + 1/2)/2 - 1/2 = -0.25, 0.25, 0.75, 1.25 -> weights 0, 0.25, 0.75, 1
    local a = { 0, 0.25, 0.75, 1 }
    local expect = {}
    for i = 1, 4 do for j = 1, 4 do expect[#expect + 1] = 2 * a[i] + a[j] end end
    local y = mg.image.resize(img, { 4, 4 })
    assert.are.same({ 4, 4, 1 }, y.shape)
    assert.are.equal("float32", y.dtype)
    close(y, expect)
  end)

  it("nearest: floor((i + 1/2) * in/out), keeps the dtype", function()
    local y = mg.image.resize(mg.cast(img, "int64"), { 4, 3 }, { method = "nearest" })
    assert.are.equal("int64", y.dtype)
    -- rows 0,0,1,1; columns floor((j + .5) * 2/3) = 0, 1, 1
    assert.are.same({ 0, 1, 1, 0, 1, 1, 2, 3, 3, 2, 3, 3 }, y:reshape({ -1 }):totable())
  end)

  it("downsampling: two taps without antialias, the widened triangle with it", function()
    local row = mg.reshape(mg.tensor({ 0, 1, 2, 3 }, "float64"), { 1, 4, 1 })
    close(mg.image.resize(row, { 1, 2 }), { 0.5, 2.5 }, 1e-12)
    -- antialias: centres 0.5 and 2.5, the triangle twice as wide: taps 0..2 weighted 0.75, 0.75, 0.25
    -- and taps 1..3 weighted 0.25, 0.75, 0.75, each normalised by 1.75
    close(mg.image.resize(row, { 1, 2 }, { antialias = true }), { (0.75 * 1 + 0.25 * 2) / 1.75, (0.25 * 1 + 0.75 * 2 + 0.75 * 3) / 1.75 }, 1e-12)
  end)

  it("bicubic: the identity at the same size; Keys's weights (a = -0.5) inside", function()
    local x = core.uniform({ 2, 5, 6, 3 }, -1, 1, "float64", 3)
    assert.is_true(maxdiff(mg.image.resize(x, { 5, 6 }, { method = "bicubic" }), x) == 0)
    -- upsampling 4 -> 8 along one axis: output 3 samples at (3.5)/2 - 0.5 = 1.25
    local row = mg.reshape(mg.tensor({ 1, 4, 9, 16 }, "float64"), { 1, 4, 1 })
    local y = mg.image.resize(row, { 1, 8 }, { method = "bicubic" }):reshape({ -1 }):totable()
    local function k(t)
      t = math.abs(t)
      if t >= 2 then return 0 elseif t >= 1 then return ((-0.5 * t + 2.5) * t - 4) * t + 2 end
      return (1.5 * t - 2.5) * t * t + 1
    end
    local v = { 1, 4, 9, 16 }
    local want = k(1.25) * v[1] + k(0.25) * v[2] + k(0.75) * v[3] + k(1.75) * v[4]
    assert.is_true(math.abs(y[4] - want / (k(1.25) + k(0.25) + k(0.75) + k(1.75))) < 1e-12)
  end)

  it("gradients match finite differences (bilinear antialias, bicubic, nearest)", function()
    for _, o in ipairs({ { method = "bilinear", antialias = true }, { method = "bicubic" }, { method = "nearest" } }) do
      local x = core.uniform({ 1, 4, 5, 2 }, -1, 1, "float64", 11)
      local w = core.uniform({ 1, 3, 7, 2 }, -1, 1, "float64", 12)
      local f = function(t) return mg.sum(mg.image.resize(t, { 3, 7 }, o) * w) end
      local g = mg.grad(f)(x):reshape({ -1 }):totable()
      for i = 1, 40, 3 do
        local e = core.reshape(core.one_hot(mg.tensor({ i }), 40, "float64"), { 1, 4, 5, 2 }) * 1e-6
        local num = (f(x + e):item() - f(x - e):item()) / 2e-6
        assert.is_true(math.abs(num - g[i]) < 1e-7, o.method .. " element " .. i)
      end
    end
  end)

  it("staged in mg.func, with an unknown batch size", function()
    local f = mg.func(function(t) return mg.image.resize(t, { 7, 3 }, { method = "bicubic", antialias = true }) end,
      { input_signature = { mg.TensorSpec { shape = { -1, 5, 6, 2 }, dtype = "float32" } } })
    local x = core.uniform({ 3, 5, 6, 2 }, 0, 1, "float32", 4)
    assert.is_true(maxdiff(f(x), mg.image.resize(x, { 7, 3 }, { method = "bicubic", antialias = true })) < 1e-6)
    local g = mg.func(function(t) return mg.image.resize(t, { 7, 3 }) end,
      { input_signature = { mg.TensorSpec { shape = { 1, -1, 6, 2 }, dtype = "float32" } } })
    local ok, err = pcall(g, x:slice({ { 1, 1 } }))
    assert.is_false(ok)
    assert.matches("image.resize: the height, width and channels of the images must be known", tostring(err), 1, true)
  end)

  it("errors name image.resize and the argument, at the caller's line", function()
    local x = mg.zeros({ 1, 4, 4, 3 })
    local cases = {
      { function() local r = mg.image.resize(x, { 2, 2 }, { method = "area" }); return r end, "image.resize: option 'method'" },
      { function() local r = mg.image.resize(x, { 2 }); return r end, "image.resize: size must be a table {height, width}, got 1 entries" },
      { function() local r = mg.image.resize(x, { 0, 2 }); return r end, "image.resize: size%[1%] must be a positive integer, got 0" },
      { function() local r = mg.image.resize(x, { 2, 2.5 }); return r end, "image.resize: size%[2%] must be a positive integer, got 2.5" },
      { function() local r = mg.image.resize(mg.zeros({ 4, 4 }), { 2, 2 }); return r end, "image.resize: images must be 4%-d .* got shape %(4,4%)" },
      { function() local r = mg.image.resize(x, { 2, 2 }, { antialis = true }); return r end, "image.resize: unknown option 'antialis'" },
      { function() local r = mg.image.resize(x, { 2, 2 }, { preserve_aspect_ratio = true }); return r end, "preserve_aspect_ratio= is not supported" },
      { function() local r = mg.image.resize(mg.zeros({ 1, 0, 4, 3 }), { 2, 2 }); return r end, "image.resize: cannot resize an empty image" },
    }
    for i, c in ipairs(cases) do
      local line = debug.getinfo(c[1], "S").linedefined
      local ok, err = pcall(c[1])
      assert.is_false(ok, "case " .. i)
      assert.matches(c[2], tostring(err))
      assert.matches("attn_ops_spec.lua:" .. line .. ":", tostring(err), 1, true)
    end
  end)
end)
