-- matmul_spec.lua — mg.matmul: NumPy shape rules (vectors, matrices,
-- batches, broadcast batch dimensions), values against a plain-Lua product
-- on both sides of the small-kernel/BLIS threshold, transposed, stepped and
-- expanded operands, dtypes and promotion, empty dimensions, and errors.

local mg = require "moongrad"

local h = require "tests.spec.helpers"
local check, err_of, grid = h.check, h.err_of, h.grid

-- The plain product of Lua matrices; `float` makes the entries floats.
local function matmul(a, b, float)
  local c = {}
  for i = 1, #a do
    c[i] = {}
    for j = 1, #b[1] do
      local s = float and 0.0 or 0
      for p = 1, #b do s = s + a[i][p] * b[p][j] end
      c[i][j] = s
    end
  end
  return c
end

local function transpose(m)
  return grid(#m[1], #m, function(i, j) return m[j][i] end)
end

describe("matmul", function()
  it("multiplies the done-criterion example", function()
    local c = mg.matmul(mg.tensor{{2, 3}, {4, 1}}, mg.tensor{{1, 5}, {2, 1}})
    check(c, {{8, 13}, {6, 21}})
    assert.equal(mg.int64, c.dtype)
    check(mg.matmul(mg.tensor{{2.0, 3}, {4, 1}}, mg.tensor{{1.0, 5}, {2, 1}}), {{8.0, 13.0}, {6.0, 21.0}})
  end)

  it("treats 1-d operands as vectors (NumPy rules)", function()
    local v, w = mg.tensor{1.0, 2.0, 3.0}, mg.tensor{4.0, 5.0, 6.0}
    local d = mg.matmul(v, w)
    check(d.shape, {})
    check(d, 32.0)
    local m = mg.tensor{{1.0, 0.0, 2.0}, {0.0, 1.0, -1.0}}
    local mv = mg.matmul(m, v)
    check(mv.shape, {2})
    check(mv, {7.0, -1.0})
    local vm = mg.matmul(mg.tensor{1.0, 2.0}, m)
    check(vm.shape, {3})
    check(vm, {1.0, 2.0, 0.0})
  end)

  it("batches and broadcasts batch dimensions", function()
    local a = mg.arange(2 * 2 * 3):reshape{2, 1, 2, 3}
    local b = mg.arange(3 * 3 * 2):reshape{3, 3, 2} - 4
    local c = mg.matmul(a, b)
    check(c.shape, {2, 3, 2, 2})
    local at, bt, ct = a:totable(), b:totable(), c:totable()
    for p = 1, 2 do
      for q = 1, 3 do check(ct[p][q], matmul(at[p][1], bt[q]), 0, "c[" .. p .. "][" .. q .. "]") end
    end
    -- a vector against a batch, and a batch against a vector
    local vb = mg.matmul(mg.tensor{1, 1, 1}, b)
    check(vb.shape, {3, 2})
    check(vb:totable()[2], {6 + 8 + 10 - 12, 7 + 9 + 11 - 12})
    local bv = mg.matmul(a, mg.tensor{1, 0, -1})
    check(bv.shape, {2, 1, 2})
    check(bv, {{{-2, -2}}, {{-2, -2}}})
    -- a matrix broadcast against a batch
    local m = mg.tensor{{1, 0}, {0, 2}}
    check(mg.matmul(b, m):totable()[1], matmul(bt[1], {{1, 0}, {0, 2}}))
  end)

  it("reads transposed, stepped and expanded operands", function()
    local A = grid(5, 7, function(i, j) return (i * 3 + j * 5) % 11 - 5.0 end)
    local B = grid(7, 4, function(i, j) return (i * 7 + j) % 13 - 6.0 end)
    local a, b = mg.tensor(A), mg.tensor(B)
    local want = matmul(A, B, true)
    check(mg.matmul(mg.tensor(transpose(A)):transpose(), b), want)
    check(mg.matmul(a, mg.tensor(transpose(B)):transpose()), want)
    check(mg.matmul(mg.tensor(transpose(A)):transpose(), mg.tensor(transpose(B)):transpose()), want)
    local wide = mg.tensor(grid(5, 14, function(i, j) return A[i][math.floor((j + 1) / 2)] end))
    check(mg.matmul(wide:slice{{}, {1, -1, 2}}, b), want)
    local row = mg.expand(mg.tensor{{1.0, 2.0, 3.0, 4.0}}, {7, 4})   -- stride 0 rows
    check(mg.matmul(a, row), matmul(A, grid(7, 4, function(_, j) return j + 0.0 end), true))
  end)

  it("matches a plain product above the BLIS threshold, for views too", function()
    local A = grid(70, 80, function(i, j) return ((i * 7 + j * 3) % 17 - 8) * 0.25 end)
    local B = grid(80, 65, function(i, j) return ((i * 5 + j * 11) % 19 - 9) * 0.5 end)
    local want = matmul(A, B, true)
    for _, d in ipairs{mg.float32, mg.float64} do
      local a, b = mg.tensor(A, d), mg.tensor(B, d)
      check(mg.matmul(a, b), want, d == mg.float32 and 1e-6 or 0)
      check(mg.matmul(mg.tensor(transpose(A), d):transpose(), mg.tensor(transpose(B), d):transpose()), want,
        d == mg.float32 and 1e-6 or 0)
    end
    -- an expanded operand (row stride 0) is copied before BLIS sees it
    local row = mg.expand(mg.arange(1, 66):cast(mg.float32):reshape{1, 65}, {80, 65})
    local r = mg.matmul(mg.tensor(A), row):totable()
    local s = 0.0
    for p = 1, 80 do s = s + A[3][p] end
    check(r[3][1], s)
    check(r[3][65], 65 * s)
    -- batched, each batch large enough for BLIS, b broadcast over the batch
    local a3 = mg.concat({mg.tensor(A):reshape{1, 70, 80}, (mg.tensor(A) * 2):reshape{1, 70, 80}}, 1)
    local c3 = mg.matmul(a3, mg.tensor(B)):totable()
    check(c3[1], want, 1e-6)
    local twice = grid(70, 65, function(i, j) return 2 * want[i][j] end)
    check(c3[2], twice, 1e-6)
  end)

  it("splits large matrix-vector products across threads", function()
    local A = grid(300, 2000, function(i, j) return (i * 3 + j * 7) % 5 - 2 end)
    local v = {}
    for j = 1, 2000 do v[j] = j % 3 - 1 end
    local want = {}
    for i = 1, 300 do
      local s = 0
      for j = 1, 2000 do s = s + A[i][j] * v[j] end
      want[i] = s + 0.0
    end
    local a = mg.tensor(A, mg.float32)
    check(mg.matmul(a, mg.tensor(v, mg.float32)), want, 0)
    check(mg.matmul(mg.tensor(v, mg.float32), mg.tensor(transpose(A), mg.float32)), want, 0)
    check(mg.matmul(mg.tensor(v, mg.float64), mg.tensor(A, mg.float64):transpose()), want, 0)
    check(mg.matmul(mg.tensor(transpose(A), mg.float32):transpose(), mg.tensor(v, mg.float32)), want, 0)
    check(mg.matmul(mg.tensor(transpose(A), mg.float64):transpose(), mg.tensor(v, mg.float64):reshape{2000, 1}),
      grid(300, 1, function(i) return want[i] end), 0)
    check(mg.matmul(mg.tensor(v):reshape{1, 2000}, mg.tensor(transpose(A))):totable()[1],
      grid(1, 300, function(_, j) return math.tointeger(want[j]) end)[1])
  end)

  it("multiplies integers with wrap-around and promotes mixed dtypes", function()
    for _, d in ipairs{mg.int32, mg.int64, mg.uint8} do
      local c = mg.matmul(mg.tensor({{1, 2}, {3, 4}}, d), mg.tensor({{5, 6}, {7, 8}}, d))
      assert.equal(d, c.dtype)
      check(c, {{19, 22}, {43, 50}})
    end
    check(mg.matmul(mg.tensor({{16}}, mg.uint8), mg.tensor({{17}}, mg.uint8)), {{16 * 17 % 256}})
    -- int64 max made in the engine (2^62 - 1 + 2^62), so that LuaJIT's doubles can spell it too
    local imax = mg.tensor({{2 ^ 62}}, mg.int64) - 1 + mg.tensor({{2 ^ 62}}, mg.int64)
    check(mg.matmul(imax, mg.tensor{{2}}), {{-2}})
    local f = mg.matmul(mg.tensor{{1, 2}}, mg.tensor{{0.5}, {0.25}})
    assert.equal(mg.float32, f.dtype)
    check(f, {{1.0}})
    assert.equal(mg.float64, mg.matmul(mg.tensor({{1.0}}, mg.float64), mg.tensor{{2.0}}).dtype)
    assert.equal(mg.int64, mg.matmul(mg.tensor({{true}}), mg.tensor{{3}}).dtype)
    local big = mg.matmul(mg.ones({3, 300}, mg.int32), mg.ones({300, 2}, mg.int32))
    check(big, {{300, 300}, {300, 300}, {300, 300}})
  end)

  it("computes small square float32 products exactly as the float64 loop (the 2x2/3x3/4x4 fast path)", function()
    for n = 1, 5 do
      local a = mg.random.normal({ n, n }, 0, 1, mg.float32, n)
      local b = mg.random.normal({ n, n }, 0, 1, mg.float32, 10 + n)
      local got, A, B = mg.matmul(a, b):totable(), a:totable(), b:totable()
      for i = 1, n do
        for j = 1, n do
          local want = 0
          for p = 1, n do want = want + A[i][p] * B[p][j] end
          assert.is_true(math.abs(got[i][j] - want) <= 1e-5 * (1 + math.abs(want)), ("n=%d (%d,%d)"):format(n, i, j))
        end
      end
      -- a transposed (non-contiguous) operand takes the general path and agrees
      local t = mg.matmul(a, mg.transpose(mg.transpose(b) + 0)):totable()
      for i = 1, n do for j = 1, n do assert.is_true(math.abs(t[i][j] - got[i][j]) <= 1e-5) end end
    end
  end)

  it("handles empty dimensions", function()
    local z = mg.matmul(mg.ones{2, 0}, mg.ones{0, 3})
    check(z.shape, {2, 3})
    check(z, {{0.0, 0.0, 0.0}, {0.0, 0.0, 0.0}})
    check(mg.matmul(mg.ones{0, 3}, mg.ones{3, 2}).shape, {0, 2})
    check(mg.matmul(mg.ones{4, 0, 3}, mg.ones{3, 2}).shape, {4, 0, 2})
  end)

  it("reports bad shapes and dtypes", function()
    assert.matches("matmul: inner dimensions differ: %(2,3%) @ %(4,5%)",
      err_of(function() mg.matmul(mg.zeros{2, 3}, mg.zeros{4, 5}) end))
    assert.matches("matmul: inner dimensions differ: %(3%) @ %(2%)",
      err_of(function() mg.matmul(mg.zeros{3}, mg.zeros{2}) end))
    assert.matches("matmul: batch dimensions cannot be broadcast: %(2,2,3%) @ %(3,3,4%)",
      err_of(function() mg.matmul(mg.zeros{2, 2, 3}, mg.zeros{3, 3, 4}) end))
    assert.matches("matmul: operand 1 is 0%-d", err_of(function() mg.matmul(2, mg.zeros{2}) end))
    assert.matches("matmul: operand 2 is 0%-d", err_of(function() mg.matmul(mg.zeros{2}, mg.tensor(1.0)) end))
    assert.matches("matmul: bool @ bool is not supported",
      err_of(function() mg.matmul(mg.tensor{{true}}, mg.tensor{{false}}) end))
  end)
end)

-- Gradients with 1-d operands (issue 14): the product drops the vector's axis, so the rule
-- gives the output gradient that axis back before the matrix products (vector . vector had
-- a 0-d gradient and raised "unsqueeze: axis -2 is out of range"). Each case is checked
-- against the same product written with explicit 2-d operands (reshape), to first and
-- second order, eagerly and staged.
describe("matmul gradients with 1-d operands", function()
  local function u(shape, seed) return mg.random.uniform(shape, -1, 1, mg.float64, seed) end
  -- The operands as matrices: a vector on the left is a row, on the right a column.
  local function as_matrices(a, b)
    local a2 = #a.shape == 1 and mg.reshape(a, { 1, a.shape[1] }) or a
    local b2 = #b.shape == 1 and mg.reshape(b, { b.shape[1], 1 }) or b
    return a2, b2
  end
  -- sum(f(a, b) * w) and its gradients with respect to a and b, and the gradient of
  -- sum(ga * va) + sum(gb * vb) (second order), from nested tapes.
  local function grads(f, a, b, w, va, vb)
    local outer = mg.GradientTape { persistent = true }
    outer:watch(a); outer:watch(b)
    local inner = mg.GradientTape { persistent = true }
    inner:watch(a); inner:watch(b)
    local l = mg.sum(mg.reshape(f(a, b), w.shape) * w)
    inner:stop()
    local ga, gb = inner:gradient(l, a), inner:gradient(l, b)
    local s = mg.sum(ga * va) + mg.sum(gb * vb)
    outer:stop()
    return l, ga, gb, outer:gradient(s, a), outer:gradient(s, b)
  end
  local cases = {
    { "vector . vector", { 3 }, { 3 } },
    { "matrix . vector", { 2, 3 }, { 3 } },
    { "vector . matrix", { 3 }, { 3, 4 } },
    { "batch . vector", { 2, 2, 3 }, { 3 } },
    { "vector . batch", { 3 }, { 2, 3, 4 } },
    { "broadcast batch . vector", { 2, 1, 2, 3 }, { 3 } },
  }
  for i, c in ipairs(cases) do
    it(c[1] .. ": first and second order match the 2-d form", function()
      local a, b = u(c[2], 10 * i), u(c[3], 10 * i + 1)
      local out = mg.matmul(a, b)
      local w = u(out.shape, 10 * i + 2)
      local va, vb = u(c[2], 10 * i + 3), u(c[3], 10 * i + 4)
      local got = { grads(mg.matmul, a, b, w, va, vb) }
      local want = { grads(function(x, y)
        local x2, y2 = as_matrices(x, y)
        return mg.matmul(x2, y2)
      end, a, b, w, va, vb) }
      for k = 1, 5 do
        check(got[k].shape, want[k].shape)
        check(got[k], want[k]:totable(), 1e-12, c[1] .. " result " .. k)
      end
    end)
  end

  it("vector . vector: d(a . b)/da = b and d/db = a, staged as well", function()
    local a, b = mg.tensor({ 1, 2, 3 }, mg.float32), mg.tensor({ 4, 5, 6 }, mg.float32)
    local g = mg.grad(function(x, y) return mg.matmul(x, y) end, { argnums = { 1, 2 } })(a, b)
    check(g[1], { 4.0, 5.0, 6.0 })
    check(g[2], { 1.0, 2.0, 3.0 })
    local step = mg.func(function(x, y)
      local tape = mg.GradientTape()
      tape:watch(x)
      local d = mg.matmul(x, y)
      tape:stop()
      return tape:gradient(d, x)
    end)
    check(step(a, b), { 4.0, 5.0, 6.0 })
    check(step(b, a), { 1.0, 2.0, 3.0 })
  end)
end)

