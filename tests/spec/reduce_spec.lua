-- reduce_spec.lua — reductions (sum, mean, prod, max, min, argmax, argmin,
-- all, any, logsumexp, variance) and softmax / log_softmax: values against a
-- plain-Lua oracle, axes (several, negative, keepdims), every dtype, strided
-- views (transpose, stepped slices, expand), NaN and empty-axis rules,
-- numerical stability and accuracy, and error messages.

local mg = require "moongrad"

local nan, inf = 0 / 0, math.huge

local h = require "tests.spec.helpers"
local check, err_of, grid = h.check, h.err_of, h.grid

-- Row sums / column sums of a Lua matrix with `op` (a two-argument fold).
local function fold_rows(m, op, init)
  local out = {}
  for i = 1, #m do
    local acc = init
    for j = 1, #m[i] do acc = op(acc, m[i][j]) end
    out[i] = acc
  end
  return out
end
local function fold_cols(m, op, init)
  local out = {}
  for j = 1, #m[1] do
    local acc = init
    for i = 1, #m do acc = op(acc, m[i][j]) end
    out[j] = acc
  end
  return out
end
local function add(a, b) return a + b end

describe("sum", function()
  local x = mg.arange(24):reshape{2, 3, 4}

  it("reduces all axes, one axis, several and negative axes", function()
    check(mg.sum(x), 276)
    check(x:sum{axis = 1}, {{12, 14, 16, 18}, {20, 22, 24, 26}, {28, 30, 32, 34}})
    check(mg.sum(x, 2), {{12, 15, 18, 21}, {48, 51, 54, 57}})
    check(mg.sum(x, {axis = -1}), {{6, 22, 38}, {54, 70, 86}})
    check(mg.sum(x, {axis = {3, 1}}), {60, 92, 124})
    check(mg.sum(x, {axis = {-1, -2, 1}}), 276)
  end)

  it("keeps reduced axes as size 1 with keepdims", function()
    local s = mg.sum(x, {axis = 2, keepdims = true})
    check(s.shape, {2, 1, 4})
    check(s, {{{12, 15, 18, 21}}, {{48, 51, 54, 57}}})
    check(mg.sum(x, nil, true).shape, {1, 1, 1})
    check(mg.sum(x, {axis = {1, 3}, keepdims = true}).shape, {1, 3, 1})
  end)

  it("gives int64 for integers and bools, keeps float dtypes", function()
    check(mg.sum(mg.tensor({1, 2, 250}, mg.uint8)), 253)
    assert.equal(mg.int64, mg.sum(mg.tensor({1, 2}, mg.uint8)).dtype)
    assert.equal(mg.int64, mg.sum(mg.tensor({1, 2}, mg.int32)).dtype)
    check(mg.sum(mg.tensor({true, false, true})), 2)
    assert.equal(mg.int64, mg.sum(mg.tensor({true})).dtype)
    assert.equal(mg.float32, mg.sum(mg.tensor({1.5, 2})).dtype)
    local d = mg.sum(mg.tensor({0.1, 0.2}, mg.float64))
    assert.equal(mg.float64, d.dtype)
    check(d, 0.1 + 0.2, 0)
  end)

  it("wraps int64 overflow instead of failing", function()
    -- int64 max made in the engine (2^62 - 1 + 2^62), so that LuaJIT's doubles can spell it too
    local imax = mg.tensor({2 ^ 62}, mg.int64) - 1 + mg.tensor({2 ^ 62}, mg.int64)
    check(mg.sum(mg.concat({imax, mg.tensor({1})}, 1)), math.mininteger)
  end)

  it("reads transposed, stepped and expanded views", function()
    local m = grid(30, 40, function(i, j) return (i * 7 + j * 3) % 11 - 5 end)
    local t = mg.tensor(m)
    check(mg.sum(t:transpose(), 2), fold_cols(m, add, 0))
    check(mg.sum(t:transpose(), 1), fold_rows(m, add, 0))
    local odd = {}
    for i = 1, 30, 3 do
      local acc = 0
      for j = 2, 40, 2 do acc = acc + m[i][j] end
      odd[#odd + 1] = acc
    end
    check(mg.sum(t:slice{{1, -1, 3}, {2, -1, 2}}, 2), odd)
    check(mg.sum(mg.expand(mg.tensor{1, 2, 3}, {5, 3}), 1), {5, 10, 15})
    check(mg.sum(mg.expand(mg.tensor{1.5, 2, 3}, {5, 3})), 32.5)
  end)

  it("sums rows, columns and 3-d middles of larger float tensors (threads)", function()
    local m = grid(300, 400, function(i, j) return ((i * 13 + j * 7) % 17) * 0.25 end)
    local t = mg.tensor(m, mg.float64)
    check(mg.sum(t, 1), fold_cols(m, add, 0), 1e-12)
    check(mg.sum(t, 2), fold_rows(m, add, 0), 1e-12)
    local t32 = mg.tensor(m)
    check(mg.sum(t32, 1), fold_cols(m, add, 0), 1e-6)
    check(mg.sum(t32), 0.25 * mg.sum(mg.tensor(grid(300, 400, function(i, j) return (i * 13 + j * 7) % 17 end))):item(), 1e-7)
    local c = mg.arange(2 * 300 * 5):reshape{2, 300, 5}
    local want = {}
    for a = 0, 1 do
      want[a + 1] = {}
      for k = 0, 4 do
        local acc = 0
        for b = 0, 299 do acc = acc + a * 1500 + b * 5 + k end
        want[a + 1][k + 1] = acc
      end
    end
    check(mg.sum(c, 2), want)
  end)

  it("is exact for 1e7 float32 ones", function()
    local s = mg.sum(mg.ones{10000000})
    assert.equal(mg.float32, s.dtype)
    check(s, 10000000.0, 0)
    check(mg.mean(mg.full({10000000}, 0.1)), 0.1, 1e-6)
  end)

  it("gives 0 over an empty axis", function()
    check(mg.sum(mg.zeros{0, 3}, 1), {0.0, 0.0, 0.0})
    check(mg.sum(mg.zeros({3, 0}, mg.int32), 2), {0, 0, 0})
    check(mg.sum(mg.zeros{0}), 0.0)
  end)

  it("accepts a Lua number (a 0-d tensor)", function()
    check(mg.sum(5), 5)
    check(mg.sum(2.5), 2.5)
  end)
end)

describe("mean", function()
  it("averages over axes; integers give float32", function()
    local x = mg.tensor{{1, 2}, {3, 5}}
    local m = mg.mean(x)
    assert.equal(mg.float32, m.dtype)
    check(m, 2.75)
    check(mg.mean(x, 1), {2.0, 3.5})
    check(mg.mean(x, {axis = 2, keepdims = true}), {{1.5}, {4.0}})
    check(mg.mean(mg.tensor({1, 2}, mg.uint8)), 1.5)
    local d = mg.mean(mg.tensor({1, 2, 4}, mg.float64))
    assert.equal(mg.float64, d.dtype)
    check(d, 7 / 3, 1e-15)
  end)

  it("keeps large int64 values exact enough (read as float64)", function()
    check(mg.mean(mg.tensor{100000001, 100000003}), 100000002.0)
  end)

  it("is nan over an empty axis", function()
    check(mg.mean(mg.zeros{0, 2}, 1), {nan, nan})
  end)
end)

describe("prod", function()
  it("multiplies over axes, ints to int64, empty gives 1", function()
    local x = mg.tensor{{1, 2, 3}, {4, 5, 6}}
    check(mg.prod(x), 720)
    check(mg.prod(x, 1), {4, 10, 18})
    check(mg.prod(x, 2, true), {{6}, {120}})
    check(mg.prod(mg.tensor({2, 3}, mg.int32)), 6)
    check(mg.prod(mg.tensor{0.5, 4, -1.5}), -3.0)
    check(mg.prod(mg.zeros{0}), 1.0)
    check(mg.prod(mg.tensor{{1, 2}, {3, 4}}:transpose(), 2), {3, 8})
  end)

  -- The gradient at x_j is the product of the other elements (TF's rule: the exclusive
  -- products before and after x_j), so exact zeros give exact values, where out / x gave NaN:
  -- with one zero, the zero's gradient is the product of the rest and every other one is 0;
  -- with two or more zeros all are 0.
  local function prod_grad(x, opts)
    return mg.grad(function(v) return mg.sum(mg.prod(v, opts) * 1) end)(x)
  end
  it("has an exact gradient at zeros: one zero, several, none; axis and keepdims", function()
    local x = mg.tensor({{0, 2, 3}, {0, 0, 5}, {2, 3, 4}}, mg.float32)
    check(prod_grad(x, {axis = 2}), {{6.0, 0.0, 0.0}, {0.0, 0.0, 0.0}, {12.0, 8.0, 6.0}})
    check(prod_grad(x, {axis = 2, keepdims = true}), {{6.0, 0.0, 0.0}, {0.0, 0.0, 0.0}, {12.0, 8.0, 6.0}})
    check(prod_grad(x, {axis = 1}), {{0.0, 0.0, 20.0}, {0.0, 6.0, 12.0}, {0.0, 0.0, 15.0}})
    check(prod_grad(mg.tensor({0, 2, 3}, mg.float32)), {6.0, 0.0, 0.0})
    check(prod_grad(mg.tensor({0, 2, 0}, mg.float32)), {0.0, 0.0, 0.0})
    check(prod_grad(mg.tensor({{1, 2}, {0, 4}}, mg.float64), {axis = {1, 2}}), {{0.0, 0.0}, {8.0, 0.0}})
    check(prod_grad(mg.tensor({7}, mg.float32)), {1.0})
    assert.same({2, 0}, prod_grad(mg.zeros{2, 0}, {axis = 2}).shape)
  end)
  it("has an exact gradient at zeros staged, also with sizes unknown while tracing", function()
    local function staged(sig, opts)
      return mg.func(function(x)
        local tape = mg.GradientTape()
        tape:watch(x)
        local l = mg.sum(mg.prod(x, opts))
        tape:stop()
        return tape:gradient(l, x)
      end, sig and { input_signature = { mg.TensorSpec(sig) } } or nil)
    end
    local x = mg.tensor({{0, 2, 3}, {0, 0, 5}}, mg.float32)
    local want = {{6.0, 0.0, 0.0}, {0.0, 0.0, 0.0}}
    check(staged(nil, {axis = 2})(x), want)
    -- a reduced size unknown while tracing: the gradient counts the zeros instead of scanning
    check(staged({shape = {2, -1}, dtype = mg.float32}, {axis = 2})(x), want)
    check(staged({shape = {2, -1}, dtype = mg.float32}, {axis = 2})(mg.tensor({{1, 2, 3, 4}, {0, 1, 5, 1}}, mg.float32)),
      {{24.0, 12.0, 8.0, 6.0}, {5.0, 0.0, 0.0, 0.0}})
    -- a kept size unknown: the scan runs down the known reduced axis
    check(staged({shape = {3, -1}, dtype = mg.float32}, {axis = 1})(mg.tensor({{0, 2}, {0, 4}, {3, 5}}, mg.float32)),
      {{0.0, 20.0}, {0.0, 10.0}, {0.0, 8.0}})
  end)
  it("has exact second derivatives at zeros (the Hessian of a product)", function()
    -- d2 prod / dx_i dx_j = the product of the elements other than x_i and x_j
    local x = mg.tensor({0, 2, 3}, mg.float64)
    local h = mg.hessian(function(v) return mg.prod(v) end)(x)
    check(h, {{0.0, 3.0, 2.0}, {3.0, 0.0, 0.0}, {2.0, 0.0, 0.0}})
    check(mg.hessian(function(v) return mg.prod(v) end)(mg.tensor({0, 0, 3}, mg.float64)),
      {{0.0, 3.0, 0.0}, {3.0, 0.0, 0.0}, {0.0, 0.0, 0.0}})
  end)
end)

describe("max and min", function()
  local x = mg.tensor{{3, -1, 7}, {2, 9, -4}}

  it("find the extremes over axes and keep the dtype", function()
    check(mg.max(x), 9)
    check(mg.min(x), -4)
    check(mg.max(x, 1), {3, 9, 7})
    check(mg.min(x, -1), {-1, -4})
    check(mg.max(x, {axis = 2, keepdims = true}), {{7}, {9}})
    for _, d in ipairs{mg.int32, mg.float32, mg.float64} do
      local r = mg.max(mg.tensor({{1, 5}, {-2, 3}}, d), 1)
      assert.equal(d, r.dtype)
      check(r:totable()[2] == 5, true)
    end
    local u = mg.max(mg.tensor({4, 250, 9}, mg.uint8))
    assert.equal(mg.uint8, u.dtype)
    check(u, 250)
    check(mg.max(mg.tensor{false, true}), true)
    check(mg.min(mg.tensor{false, true}), false)
  end)

  it("handle infinities and propagate NaN", function()
    check(mg.max(mg.tensor{-inf, -inf}), -inf)
    check(mg.min(mg.tensor{inf, 1.5}), 1.5)
    check(mg.max(mg.tensor{1.0, nan, 3.0}), nan)
    check(mg.min(mg.tensor{{1.0, 2.0}, {nan, 0.0}}, 2), {1.0, nan})
    check(mg.max(mg.tensor{{1.0, 2.0}, {nan, 0.0}}, 1), {nan, 2.0})
  end)

  it("read strided views", function()
    local m = grid(20, 50, function(i, j) return (i * 31 + j * 17) % 101 end)
    local t = mg.tensor(m)
    check(mg.max(t:transpose(), 1), fold_rows(m, math.max, -math.huge))
    check(mg.min(t:transpose(), 2), fold_rows(grid(50, 20, function(j, i) return m[i][j] end), math.min, math.huge))
  end)

  it("refuse an empty axis, naming the op and the shape", function()
    assert.matches("max: cannot reduce over an empty axis %(input shape %(0,3%)%)", err_of(function() mg.max(mg.zeros{0, 3}, 1) end))
    assert.matches("min: cannot reduce over an empty axis", err_of(function() mg.min(mg.zeros{0}) end))
    check(mg.max(mg.zeros{0, 3}, 2).shape, {0})  -- nothing to compute: fine
  end)
end)

describe("argmax and argmin", function()
  it("give 1-based int64 indices, flattened or along an axis", function()
    local x = mg.tensor{{3, 8, 1}, {9, 2, 9}}
    local a = mg.argmax(x)
    assert.equal(mg.int64, a.dtype)
    check(a, 4)
    check(mg.argmin(x), 3)
    check(mg.argmax(x, 1), {2, 1, 2})
    check(mg.argmax(x, 2), {2, 1})        -- ties: the first
    check(mg.argmin(x, -1), {3, 2})
    check(mg.argmax(x, {axis = 2, keepdims = true}), {{2}, {1}})
    check(mg.argmax(x, nil, true).shape, {1, 1})
  end)

  it("work for every dtype and strided views", function()
    for _, d in ipairs{mg.int32, mg.int64, mg.uint8, mg.float32, mg.float64} do
      check(mg.argmax(mg.tensor({1, 7, 7, 2}, d)), 2)
      check(mg.argmin(mg.tensor({5, 1, 7, 1}, d)), 2)
    end
    check(mg.argmax(mg.tensor{false, true, true}), 2)
    local t = mg.tensor{{1, 9}, {7, 3}, {8, 2}}
    check(mg.argmax(t:transpose(), 2), {3, 1})
    check(mg.argmax(t:transpose()), 4)     -- flattened in the view's own order: {1, 7, 8, 9, 3, 2}
    check(mg.argmin(t:transpose()), 1)
  end)

  it("pick the first NaN", function()
    check(mg.argmax(mg.tensor{1.0, nan, 5.0, nan}), 2)
    check(mg.argmin(mg.tensor{1.0, -2.0, nan}), 3)
    check(mg.argmax(mg.tensor{{1.0, nan}, {nan, 0.0}}, 1), {2, 1})
  end)

  it("find the first maximum in long rows and columns", function()
    local n = 100000
    local v = mg.arange(n):cast(mg.float32)
    check(mg.argmax(v), n)
    check(mg.argmin(v), 1)
    local m = mg.zeros{300, 200}
    local c = mg.argmax(m, 1)
    check(c:totable()[200], 1)
    local r = mg.argmax(mg.arange(60000):reshape{3, 20000}:cast(mg.float64), 2)
    check(r, {20000, 20000, 20000})
  end)

  it("refuse empty input", function()
    assert.matches("argmax: cannot reduce over an empty axis", err_of(function() mg.argmax(mg.zeros{0}) end))
    assert.matches("argmin: cannot reduce over an empty axis", err_of(function() mg.argmin(mg.zeros{2, 0}, 2) end))
    assert.matches("argmax: axis 3 is out of range", err_of(function() mg.argmax(mg.zeros{2, 2}, 3) end))
  end)
end)

describe("all and any", function()
  it("test for nonzero values and give bools", function()
    local x = mg.tensor{{1, 0, 2}, {3, 4, 5}}
    local a = mg.all(x)
    assert.equal(mg.bool, a.dtype)
    check(a, false)
    check(mg.any(x), true)
    check(mg.all(x, 2), {false, true})
    check(mg.any(mg.tensor{{0, 0}, {0, 1}}, 1), {false, true})
    check(mg.all(mg.tensor{nan, 1.0}), true)         -- NaN is nonzero
    check(mg.any(mg.tensor({0.0, -0.0}, mg.float64)), false)
    check(mg.all(mg.tensor{true, true}), true)
    check(mg.all(x:transpose(), 2), {true, false, true})
  end)

  it("give the identities over an empty axis", function()
    check(mg.all(mg.zeros{0}), true)
    check(mg.any(mg.zeros{0}), false)
  end)
end)

describe("logsumexp", function()
  local function lse(t)
    local m = -math.huge
    for _, v in ipairs(t) do m = math.max(m, v) end
    local s = 0
    for _, v in ipairs(t) do s = s + math.exp(v - m) end
    return m + math.log(s)
  end

  it("matches log(sum(exp(x))) and stays finite for large inputs", function()
    check(mg.logsumexp(mg.tensor{1.0, 2.0, 3.0}), lse{1, 2, 3}, 1e-6)
    check(mg.logsumexp(mg.tensor{1000.0, 1000.0}), 1000 + math.log(2), 1e-6)
    check(mg.logsumexp(mg.tensor{-1000.0, -1000.0}), -1000 + math.log(2), 1e-6)
    local x = mg.tensor({{1, 2, 3}, {1000, 1001, 1002}}, mg.float64)
    check(mg.logsumexp(x, 2), {lse{1, 2, 3}, lse{1000, 1001, 1002}}, 1e-14)
    check(mg.logsumexp(x, 1, true), {{lse{1, 1000}, lse{2, 1001}, lse{3, 1002}}}, 1e-14)
  end)

  it("handles infinities and integer inputs", function()
    check(mg.logsumexp(mg.tensor{-inf, -inf}), -inf)
    check(mg.logsumexp(mg.tensor{inf, 1.0}), inf)
    check(mg.logsumexp(mg.tensor{nan, 1.0}), nan)
    local i = mg.logsumexp(mg.tensor{0, 0})
    assert.equal(mg.float32, i.dtype)
    check(i, math.log(2))
    check(mg.logsumexp(mg.zeros{0}), -inf)
  end)

  it("reduces columns and long rows", function()
    local m = grid(50, 300, function(i, j) return ((i + j) % 7) * 0.5 end)
    local want = {}
    for j = 1, 300 do
      local col = {}
      for i = 1, 50 do col[i] = m[i][j] end
      want[j] = lse(col)
    end
    check(mg.logsumexp(mg.tensor(m), 1), want, 1e-6)
    check(mg.logsumexp(mg.zeros{100000}), math.log(100000), 1e-6)
  end)
end)

describe("variance", function()
  it("divides by N - correction", function()
    local x = mg.tensor({1, 2, 3, 4}, mg.float64)
    check(mg.variance(x), 1.25, 1e-15)
    check(mg.variance(x, {correction = 1}), 5 / 3, 1e-15)
    local m = mg.tensor{{1.0, 2.0}, {3.0, 6.0}}
    check(mg.variance(m, 1), {1.0, 4.0})
    check(mg.variance(m, {axis = 2, keepdims = true, correction = 1}), {{0.5}, {4.5}})
    check(mg.variance(m:transpose(), 2), {1.0, 4.0})
  end)

  it("is stable for a large offset (two-pass)", function()
    check(mg.variance(mg.tensor({1e9 + 1, 1e9 + 2, 1e9 + 3}, mg.float64)), 2 / 3, 1e-9)
    check(mg.variance(mg.tensor{10000.5, 10001.5}), 0.25, 1e-6)
  end)

  it("gives float32 for integers and, with no degrees of freedom left, inf or NaN as NumPy", function()
    local v = mg.variance(mg.tensor{1, 3})
    assert.equal(mg.float32, v.dtype)
    check(v, 1.0)
    -- NumPy divides by max(N - ddof, 0): a nonzero sum of squares gives inf, 0 / 0 NaN
    check(mg.variance(mg.tensor{1.0, 2.0}, {correction = 2}), math.huge)
    check(mg.variance(mg.tensor{1.0, 2.0, 4.0}, {correction = 5}), math.huge)
    check(mg.variance(mg.tensor{5.0}, {correction = 1}), nan)
    check(mg.variance(mg.tensor{2.0, 2.0}, {correction = 3}), nan)
    check(mg.std(mg.tensor{1.0, 2.0}, {correction = 2}), math.huge)
    check(mg.variance(mg.tensor({{1, 2}, {3, 3}}, mg.float64), {axis = 2, correction = 2}), {math.huge, nan})
    assert.matches("variance: correction must be >= 0", err_of(function() mg.variance(mg.tensor{1.0}, {correction = -1}) end))
  end)
end)

describe("softmax and log_softmax", function()
  local function row_sums(t)
    local out = {}
    for i, row in ipairs(t:totable()) do
      local s = 0
      for _, v in ipairs(row) do s = s + v end
      out[i] = s
    end
    return out
  end

  it("give rows that sum to 1, matching exp(x) / sum(exp(x))", function()
    local x = mg.tensor{{1.0, 2.0, 3.0}, {-1.0, 0.0, 1.0}}
    local s = mg.softmax(x)
    local e = {math.exp(1), math.exp(2), math.exp(3)}
    local z = e[1] + e[2] + e[3]
    check(s, {{e[1] / z, e[2] / z, e[3] / z}, {e[1] / z, e[2] / z, e[3] / z}}, 1e-6)
    check(row_sums(s), {1.0, 1.0}, 1e-6)
    local lz = math.log(z)  -- row 2 is row 1 shifted: the same result
    check(mg.log_softmax(x), {{1 - lz, 2 - lz, 3 - lz}, {1 - lz, 2 - lz, 3 - lz}}, 1e-6)
  end)

  it("are stable for large inputs", function()
    local s = mg.softmax(mg.tensor{1000.0, 1000.0, 999.0})
    local z = 2 + math.exp(-1)
    check(s, {1 / z, 1 / z, math.exp(-1) / z}, 1e-6)
    check(mg.log_softmax(mg.tensor{1000.0, 0.0}), {0.0, -1000.0}, 1e-6)
    check(mg.softmax(mg.tensor({-1000.0, -1000.0}, mg.float64)), {0.5, 0.5}, 1e-15)
  end)

  it("work along any axis and on strided views", function()
    local x = mg.tensor{{1.0, 5.0}, {3.0, 2.0}, {0.0, 0.0}}
    local col = mg.softmax(x, 1)
    local t = mg.softmax(x:transpose(), 2):transpose()
    check(col, t:totable(), 1e-7)
    local z1 = math.exp(1) + math.exp(3) + 1
    check(col:totable()[2][1], math.exp(3) / z1, 1e-6)
    check(mg.softmax(x, {axis = 2}), mg.softmax(x):totable(), 0)
    check(mg.log_softmax(x, 1), mg.softmax(x, 1):log():totable(), 1e-6)
    local big = mg.tensor(grid(40, 300, function(i, j) return ((i * 3 + j) % 13) * 0.7 end))
    local ones = {}
    for j = 1, 300 do ones[j] = 1.0 end
    local cs = mg.sum(mg.softmax(big, 1), 1)
    check(cs, ones, 1e-5)
    check(mg.sum(mg.softmax(big:transpose(), 2), 2), ones, 1e-5)
  end)

  it("keep float64, give float32 for integers, and pass NaN through", function()
    assert.equal(mg.float64, mg.softmax(mg.tensor({1, 2}, mg.float64)).dtype)
    local i = mg.softmax(mg.tensor{1, 1})
    assert.equal(mg.float32, i.dtype)
    check(i, {0.5, 0.5})
    check(mg.softmax(mg.tensor{{1.0, nan}, {1.0, 1.0}}), {{nan, nan}, {0.5, 0.5}})
    check(mg.softmax(mg.tensor{{2.0}}), {{1.0}})
  end)

  it("handle long rows (threads)", function()
    local s = mg.softmax(mg.zeros{4, 100000})
    check(mg.sum(s, 2), {1.0, 1.0, 1.0, 1.0}, 1e-5)
    check(s:totable()[1][1], 1e-5, 1e-6)
  end)

  it("reject a bad axis", function()
    assert.matches("softmax: axis 3 is out of range", err_of(function() mg.softmax(mg.zeros{2, 2}, 3) end))
  end)
end)

-- An empty axis list names no axis: NumPy's np.sum(x, axis=()) reduces nothing and returns x
-- (in the reduction's dtype), and so does every reduction here; a missing axis option still
-- means every axis (issue 14: axis = {} reduced everything, as flip reversed everything).
describe("an empty axis list", function()
  it("reduces nothing, in every reduction", function()
    local x = mg.tensor{{1, 2}, {3, 4}}
    local xf = mg.tensor({{1, -2}, {3, 4}}, mg.float64)
    check(mg.sum(x, {axis = {}}), {{1, 2}, {3, 4}})
    check(mg.sum(mg.tensor({{1, 2}}, mg.int32), {axis = {}}).dtype, "int64")
    check(mg.sum(x, {}), {{1, 2}, {3, 4}})                  -- the positional form
    check(mg.sum(x, {axis = {}, keepdims = true}), {{1, 2}, {3, 4}})
    check(mg.mean(x, {axis = {}}), {{1.0, 2.0}, {3.0, 4.0}})
    check(mg.prod(x, {axis = {}}), {{1, 2}, {3, 4}})
    check(mg.max(x, {axis = {}}), {{1, 2}, {3, 4}})
    check(mg.min(x, {axis = {}}), {{1, 2}, {3, 4}})
    check(mg.all(x, {axis = {}}), {{true, true}, {true, true}})
    check(mg.any(mg.tensor{0, 1}, {axis = {}}), {false, true})
    check(mg.logsumexp(xf, {axis = {}}), {{1.0, -2.0}, {3.0, 4.0}}, 1e-12)
    check(mg.variance(xf, {axis = {}}), {{0.0, 0.0}, {0.0, 0.0}})
    check(mg.std(xf, {axis = {}}), {{0.0, 0.0}, {0.0, 0.0}})
    check(mg.sum(x), 10)                                       -- no option: every axis
    check(mg.sum(x, {keepdims = true}), {{10}})
  end)
  it("gradients pass straight through", function()
    local x = mg.tensor({{1, 2}, {3, 4}}, mg.float64)
    check(mg.grad(function(v) return mg.sum(mg.sum(v, {axis = {}}) * v) end)(x), {{2.0, 4.0}, {6.0, 8.0}})
    check(mg.grad(function(v) return mg.sum(mg.mean(v, {axis = {}}) * 3) end)(x), {{3.0, 3.0}, {3.0, 3.0}})
    check(mg.grad(function(v) return mg.sum(mg.prod(v, {axis = {}})) end)(x), {{1.0, 1.0}, {1.0, 1.0}})
    check(mg.grad(function(v) return mg.sum(mg.variance(v, {axis = {}})) end)(x), {{0.0, 0.0}, {0.0, 0.0}})
  end)
  it("reduces nothing staged as well", function()
    local f = mg.func(function(v) return mg.sum(v, {axis = {}}) + mg.max(v, {axis = {}}) end)
    check(f(mg.tensor{{1, 2}, {3, 4}}), {{2, 4}, {6, 8}})
  end)
end)

describe("reduction errors", function()
  it("name the op and the axis", function()
    assert.matches("sum: axis %-2 is given twice", err_of(function() mg.sum(mg.zeros{2, 2}, {axis = {1, -2}}) end))
    assert.matches("mean: axis 3 is out of range for a 2%-d tensor", err_of(function() mg.mean(mg.zeros{2, 2}, 3) end))
    assert.matches("prod: axis %-3 is out of range", err_of(function() mg.prod(mg.zeros{2, 2}, -3) end))
  end)
end)
