-- linalg_spec.lua — issue 17's mg.linalg (through LAPACK) and the norms and clipping functions.
-- Values against hand-computed results and against invariants that do not depend on the sign
-- LAPACK picks for the vectors of qr/svd/eigh (A = Q R with Q^T Q = I, A = U S V^T, A V = V diag(e)),
-- on non-symmetric matrices (a transposed layout would be caught), float32 and float64, batched;
-- gradients against closed forms; errors naming the op and the batch element; staging in mg.func.
-- tests/spec/gradcheck_spec.lua checks every gradient rule by finite differences and the op oracle
-- (tests/oracle) compares with NumPy.

local mg = require "moongrad"
local h = require "tests.spec.helpers"
local fails, near = h.fails, h.near

local A = { { 4.0, 7.0, 1.0 }, { 2.0, 6.0, 3.0 }, { 5.0, 1.0, 8.0 } }   -- not symmetric, det = 103... (checked below)

-- plain-Lua matrix helpers (the independent computations)
local function matmul(a, b)
  local r = {}
  for i = 1, #a do
    r[i] = {}
    for j = 1, #b[1] do
      local s = 0
      for k = 1, #b do s = s + a[i][k] * b[k][j] end
      r[i][j] = s
    end
  end
  return r
end
local function transpose(a)
  local r = {}
  for j = 1, #a[1] do
    r[j] = {}
    for i = 1, #a do r[j][i] = a[i][j] end
  end
  return r
end
local function eye(n)
  local r = {}
  for i = 1, n do
    r[i] = {}
    for j = 1, n do r[i][j] = i == j and 1 or 0 end
  end
  return r
end
local function det3(m)
  return m[1][1] * (m[2][2] * m[3][3] - m[2][3] * m[3][2]) - m[1][2] * (m[2][1] * m[3][3] - m[2][3] * m[3][1])
    + m[1][3] * (m[2][1] * m[3][2] - m[2][2] * m[3][1])
end
local function T(x) return mg.transpose(x) end

describe("mg.linalg values", function()
  for _, dt in ipairs({ "float32", "float64" }) do
    local tol = dt == "float32" and 1e-4 or 1e-10
    local a = mg.tensor(A, dt)
    it(dt .. ": inv, det, slogdet of a non-symmetric matrix", function()
      local inv = mg.linalg.inv(a)
      assert.are.equal(dt, inv.dtype)
      near(matmul(A, inv:totable()), eye(3), tol)
      near(mg.linalg.det(a), det3(A), tol)
      local s, l = mg.linalg.slogdet(a)
      near(s, det3(A) > 0 and 1 or -1, 0)
      near(l, math.log(math.abs(det3(A))), tol)
      -- a row swap flips the sign
      local sw = mg.tensor({ A[2], A[1], A[3] }, dt)
      near(mg.linalg.det(sw), -det3(A), tol)
      local s2 = mg.linalg.slogdet(sw)
      near(s2, -1, 0)
    end)
    it(dt .. ": solve and its adjoint, matrix and vector right-hand sides", function()
      local b = mg.tensor({ { 1.0, 2.0 }, { 3.0, -1.0 }, { 0.5, 4.0 } }, dt)
      local x = mg.linalg.solve(a, b)
      near(matmul(A, x:totable()), b:totable(), tol)
      local xt = mg.linalg.solve(a, b, { adjoint = true })
      near(matmul(transpose(A), xt:totable()), b:totable(), tol)
      local v = mg.linalg.solve(a, mg.tensor({ 1.0, 2.0, 3.0 }, dt))
      assert.are.same({ 3 }, v.shape)
      near(matmul(A, { { v:totable()[1] }, { v:totable()[2] }, { v:totable()[3] } }), { { 1 }, { 2 }, { 3 } }, tol)
    end)
    it(dt .. ": triangular_solve reads only its triangle", function()
      local b = mg.tensor({ { 1.0 }, { 2.0 }, { 3.0 } }, dt)
      local lo = { { 4, 0, 0 }, { 2, 6, 0 }, { 5, 1, 8 } }
      local up = { { 4, 7, 1 }, { 0, 6, 3 }, { 0, 0, 8 } }
      near(matmul(lo, mg.linalg.triangular_solve(a, b):totable()), b:totable(), tol)
      near(matmul(up, mg.linalg.triangular_solve(a, b, { lower = false }):totable()), b:totable(), tol)
      near(matmul(transpose(lo), mg.linalg.triangular_solve(a, b, { adjoint = true }):totable()), b:totable(), tol)
      near(matmul(transpose(up), mg.linalg.triangular_solve(a, b, { lower = false, adjoint = true }):totable()),
        b:totable(), tol)
    end)
    it(dt .. ": cholesky", function()
      local s = matmul(A, transpose(A))
      local L = mg.linalg.cholesky(mg.tensor(s, dt)):totable()
      near(matmul(L, transpose(L)), s, tol * 100)
      for i = 1, 3 do
        assert.is_true(L[i][i] > 0)
        for j = i + 1, 3 do assert.are.equal(0, L[i][j]) end
      end
    end)
    it(dt .. ": qr, reduced and complete, tall and wide", function()
      for _, m in ipairs({ { { 1.0, 2.0 }, { 3.0, 4.0 }, { 5.0, 7.0 } }, { { 1.0, 2.0, 3.0 }, { 4.0, 5.0, 7.0 } } }) do
        for _, mode in ipairs({ "reduced", "complete" }) do
          local q, r = mg.linalg.qr(mg.tensor(m, dt), { mode = mode })
          local rows, cols = #m, #m[1]
          local k = mode == "complete" and rows or math.min(rows, cols)
          assert.are.same({ rows, k }, q.shape)
          assert.are.same({ k, cols }, r.shape)
          near(matmul(q:totable(), r:totable()), m, tol * 10)
          near(matmul(transpose(q:totable()), q:totable()), eye(k), tol * 10)
          local rt = r:totable()
          for i = 1, k do for j = 1, math.min(i - 1, cols) do assert.are.equal(0, rt[i][j]) end end
        end
      end
    end)
    it(dt .. ": svd (invariants: U S V^T = A, orthonormal U and V, descending s)", function()
      for _, m in ipairs({ A, { { 1.0, 2.0, 3.0 }, { 4.0, 5.0, 7.0 } }, { { 1.0, 2.0 }, { 3.0, 4.0 }, { 5.0, 7.0 } } }) do
        local x = mg.tensor(m, dt)
        local s, u, v = mg.linalg.svd(x)
        local k = math.min(#m, #m[1])
        assert.are.same({ k }, s.shape)
        near(mg.matmul(mg.mul(u, mg.unsqueeze(s, 1)), T(v)), m, tol * 10)
        near(mg.matmul(T(u), u), eye(k), tol * 10)
        near(mg.matmul(T(v), v), eye(k), tol * 10)
        local st = s:totable()
        for i = 2, k do assert.is_true(st[i - 1] >= st[i]) end
        near(mg.linalg.svd(x, { compute_uv = false }), st, tol)
        local s2, uf, vf = mg.linalg.svd(x, { full_matrices = true })
        near(s2, st, tol)
        assert.are.same({ #m, #m }, uf.shape)
        assert.are.same({ #m[1], #m[1] }, vf.shape)
        near(mg.matmul(T(uf), uf), eye(#m), tol * 10)
        near(mg.matmul(T(vf), vf), eye(#m[1]), tol * 10)
      end
      -- the singular values of a known matrix: diag(3, -4) has 4 and 3
      near(mg.linalg.svd(mg.tensor({ { 3.0, 0.0 }, { 0.0, -4.0 } }, dt), { compute_uv = false }), { 4, 3 }, tol)
    end)
    it(dt .. ": eigh (A V = V diag(e), ascending, lower triangle read)", function()
      local s = { { 2.0, 1.0, 0.0 }, { 1.0, 3.0, 1.0 }, { 0.0, 1.0, 4.0 } }
      local e, v = mg.linalg.eigh(mg.tensor(s, dt))
      near(mg.matmul(mg.tensor(s, dt), v), mg.mul(v, mg.unsqueeze(e, 1)), tol * 10)
      near(mg.matmul(T(v), v), eye(3), tol * 10)
      local et = e:totable()
      assert.is_true(et[1] <= et[2] and et[2] <= et[3])
      near(et[1] + et[2] + et[3], 9, tol * 10)   -- the trace
      -- only the lower triangle counts: garbage above the diagonal changes nothing
      local g = { { 2.0, 99.0, -5.0 }, { 1.0, 3.0, 42.0 }, { 0.0, 1.0, 4.0 } }
      near(mg.linalg.eigh(mg.tensor(g, dt)), et, tol)
    end)
  end

  it("batched: every matrix of a (2, 2, 3, 3) batch, with OpenMP over the batch", function()
    local mats = {}
    for i = 1, 4 do
      local m = {}
      for r = 1, 3 do
        m[r] = {}
        for c = 1, 3 do m[r][c] = A[r][c] + (r == c and i or 0) + 0.1 * i * (r - c) end
      end
      mats[i] = m
    end
    local x = mg.tensor({ { mats[1], mats[2] }, { mats[3], mats[4] } }, "float64")
    local inv, det = mg.linalg.inv(x):totable(), mg.linalg.det(x):totable()
    for i = 1, 4 do
      local p, q = math.floor((i - 1) / 2) + 1, (i - 1) % 2 + 1
      near(matmul(mats[i], inv[p][q]), eye(3), 1e-10)
      near(det[p][q], det3(mats[i]), 1e-10)
    end
    -- a large batch of small matrices takes the parallel path
    local big = mg.random.uniform({ 600, 4, 4 }, -1, 1, "float64", 3) + mg.eye(4, -1, "float64") * 4
    local prod = mg.matmul(big, mg.linalg.inv(big))
    near(mg.max(mg.abs(prod - mg.eye(4, -1, "float64"))), 0, 1e-10)
    local s, u, v = mg.linalg.svd(big)
    near(mg.max(mg.abs(mg.matmul(mg.mul(u, mg.unsqueeze(s, -2)), T(v)) - big)), 0, 1e-10)
  end)

  it("integers are computed in float32; a strided (transposed) input is read as it is", function()
    local x = mg.tensor { { 2, 1 }, { 1, 3 } }
    assert.are.equal("float32", mg.linalg.inv(x).dtype)
    near(mg.linalg.det(x), 5, 1e-6)
    local a = mg.tensor(A, "float64")
    near(mg.linalg.inv(T(a)), transpose(mg.linalg.inv(a):totable()), 1e-12)
    near(mg.linalg.det(T(a)), det3(A), 1e-12)
  end)

  it("det and slogdet of a singular matrix: 0 and (0, -inf), as NumPy", function()
    local x = mg.tensor { { 1.0, 2.0 }, { 2.0, 4.0 } }
    near(mg.linalg.det(x), 0, 0)
    local s, l = mg.linalg.slogdet(x)
    near(s, 0, 0)
    assert.are.equal(-math.huge, l:item())
  end)

  it("lstsq (overdetermined and minimum-norm), pinv, matrix_power", function()
    local a = mg.tensor({ { 1.0, 1.0 }, { 1.0, 2.0 }, { 1.0, 3.0 } }, "float64")
    local b = mg.tensor({ 1.0, 2.0, 2.0 }, "float64")
    near(mg.linalg.lstsq(a, b), { 2 / 3, 0.5 }, 1e-12)   -- the line fit by hand
    local w = mg.tensor({ { 1.0, 1.0 } }, "float64")
    near(mg.linalg.lstsq(w, mg.tensor({ 2.0 }, "float64")), { 1, 1 }, 1e-12)
    local p = mg.linalg.pinv(a)
    near(mg.matmul(p, b), { 2 / 3, 0.5 }, 1e-12)
    near(mg.matmul(mg.matmul(a, p), a), a, 1e-12)
    near(mg.linalg.pinv(mg.tensor { { 2.0, 0.0 }, { 0.0, 0.0 } }), { { 0.5, 0 }, { 0, 0 } }, 1e-6)
    local m = mg.tensor({ { 1.0, 1.0 }, { 1.0, 0.0 } }, "float64")
    near(mg.linalg.matrix_power(m, 10), { { 89, 55 }, { 55, 34 } }, 1e-12)   -- Fibonacci
    near(mg.linalg.matrix_power(m, 0), eye(2), 0)
    near(mg.matmul(mg.linalg.matrix_power(m, -3), mg.linalg.matrix_power(m, 3)), eye(2), 1e-12)
    near(mg.linalg.matrix_power(m, 1), m, 0)
  end)
end)

describe("mg.linalg gradients (closed forms)", function()
  local a = mg.tensor(A, "float64")
  it("det: det * inv^T; slogdet: inv^T; inv: -inv^T g inv^T", function()
    local g = mg.grad(function(x) return mg.linalg.det(x) end)(a)
    near(g, (mg.linalg.det(a) * T(mg.linalg.inv(a))):totable(), 1e-10)
    local gl = mg.grad(function(x) local _, l = mg.linalg.slogdet(x); return l end)(a)
    near(gl, T(mg.linalg.inv(a)), 1e-10)
    local gi = mg.grad(function(x) return mg.sum(mg.linalg.inv(x)) end)(a)
    local it = T(mg.linalg.inv(a))
    near(gi, -mg.matmul(mg.matmul(it, mg.ones({ 3, 3 }, "float64")), it), 1e-10)
  end)
  it("the gradient of sum(s) is U V^T; of the eigenvalues V diag(g) V^T (folded onto the lower triangle)", function()
    local _, u, v = mg.linalg.svd(a)
    near(mg.grad(function(x) return mg.sum(mg.linalg.svd(x, { compute_uv = false })) end)(a), mg.matmul(u, T(v)), 1e-10)
    local s = mg.tensor({ { 2.0, 1.0, 0.0 }, { 1.0, 3.0, 1.0 }, { 0.0, 1.0, 4.0 } }, "float64")
    local gw = mg.tensor({ 1.0, 2.0, 3.0 }, "float64")
    local e, vv = mg.linalg.eigh(s)
    local G = mg.matmul(mg.mul(vv, mg.unsqueeze(gw, 1)), T(vv)):totable()
    local got = mg.grad(function(x) local ev = mg.linalg.eigh(x); return mg.sum(ev * gw) end)(s):totable()
    for i = 1, 3 do
      for j = 1, 3 do
        local want = i == j and G[i][i] or (i > j and G[i][j] + G[j][i] or 0)
        near(got[i][j], want, 1e-10, ("[%d][%d]"):format(i, j))
      end
    end
    assert.is_truthy(e)
  end)
  it("through a symmetric input built from B, cholesky's and eigh's gradients match finite differences", function()
    local b = mg.tensor({ { 1.0, 0.2, -0.3 }, { 0.4, 1.5, 0.1 }, { -0.2, 0.3, 2.0 } }, "float64")
    local function f(x)
      local sym = mg.matmul(x, T(x)) + mg.eye(3, -1, "float64")
      local L = mg.linalg.cholesky(sym)
      local e, v = mg.linalg.eigh(sym)
      return mg.sum(L * L * mg.tensor({ 1.0, 2.0, 3.0 }, "float64")) + mg.sum(e * e) + mg.sum(mg.abs(v[1]))
    end
    local g = mg.grad(f)(b):totable()
    local bt = b:totable()
    for i = 1, 3 do
      for j = 1, 3 do
        local p, m = {}, {}
        for r = 1, 3 do p[r], m[r] = { table.unpack(bt[r]) }, { table.unpack(bt[r]) } end
        p[i][j], m[i][j] = bt[i][j] + 1e-6, bt[i][j] - 1e-6
        local num = (f(mg.tensor(p, "float64")):item() - f(mg.tensor(m, "float64")):item()) / 2e-6
        near(g[i][j], num, 1e-6, ("d/dB[%d][%d]"):format(i, j))
      end
    end
  end)
  it("qr's R gradient flows through Q (R = triu(Q^T A)): lstsq's gradient matches finite differences", function()
    local a0 = { { 1.0, 0.5 }, { 0.3, 2.0 }, { 1.5, -1.0 } }
    local b = mg.tensor({ 1.0, 2.0, 0.5 }, "float64")
    local function f(x) return mg.sum(mg.linalg.lstsq(x, b) * mg.tensor({ 1.0, -2.0 }, "float64")) end
    local g = mg.grad(f)(mg.tensor(a0, "float64")):totable()
    for i = 1, 3 do
      for j = 1, 2 do
        local p, m = {}, {}
        for r = 1, 3 do p[r], m[r] = { table.unpack(a0[r]) }, { table.unpack(a0[r]) } end
        p[i][j], m[i][j] = a0[i][j] + 1e-6, a0[i][j] - 1e-6
        local num = (f(mg.tensor(p, "float64")):item() - f(mg.tensor(m, "float64")):item()) / 2e-6
        near(g[i][j], num, 1e-6)
      end
    end
  end)
  it("gradients that are not defined are errors, not wrong numbers", function()
    fails(function()
      return mg.grad(function(x) local q = mg.linalg.qr(x, { mode = "complete" }); return mg.sum(q) end)(mg.tensor({ { 1.0, 2.0 }, { 3.0, 4.0 }, { 5.0, 7.0 } }, "float32"))
    end, "linalg.qr", "complete")
    fails(function()
      return mg.grad(function(x) local _, u = mg.linalg.svd(x, { full_matrices = true }); return mg.sum(u) end)(mg.tensor({ { 1.0, 2.0, 3.0 }, { 3.0, 4.0, 5.0 } }, "float32"))
    end, "linalg.svd", "full_matrices")
    fails(function() return mg.grad(function(x) return mg.linalg.det(x) end)(mg.tensor({ { 1.0, 2.0 }, { 2.0, 4.0 } }, "float32")) end,
      "singular")
  end)
end)

describe("mg.linalg errors", function()
  it("a singular matrix names the op and the batch element", function()
    local x = mg.tensor { { { 1.0, 0.0 }, { 0.0, 1.0 } }, { { 1.0, 2.0 }, { 2.0, 4.0 } } }
    local err = fails(function() local r = mg.linalg.inv(x); return r end,   -- no tail call: keeps the line
      "linalg.inv: the matrix is singular (batch element {2})")
    assert.truthy(err:find("linalg_spec%.lua:%d+: linalg%.inv"), err)
    fails(function() return mg.linalg.solve(x, mg.ones({ 2, 2, 1 })) end, "linalg.solve: the matrix is singular (batch element {2})")
    fails(function() return mg.linalg.inv(mg.tensor { { 0.0, 0.0 }, { 0.0, 0.0 } }) end, "linalg.inv: the matrix is singular:")
    fails(function() return mg.linalg.triangular_solve(mg.tensor { { 1.0, 0.0 }, { 1.0, 0.0 } }, mg.ones { 2, 1 }) end,
      "linalg.triangular_solve", "diagonal element 2 is exactly zero")
  end)
  it("cholesky of a matrix that is not positive-definite names the batch element and the minor", function()
    local x = mg.tensor { { { 4.0, 0.0 }, { 0.0, 1.0 } }, { { 1.0, 2.0 }, { 2.0, 1.0 } } }
    fails(function() return mg.linalg.cholesky(x) end, "linalg.cholesky: the matrix is not positive-definite (batch element {2})",
      "minor of order 2")
  end)
  it("shapes, options and types", function()
    fails(function() return mg.linalg.inv(mg.tensor { 1.0, 2.0 }) end, "linalg.inv: x must be a matrix", "(2)")
    fails(function() return mg.linalg.inv(mg.ones { 2, 3 }) end, "linalg.inv: x must be square", "(2,3)")
    fails(function() return mg.linalg.det(mg.ones { 3, 2 }) end, "linalg.det: x must be square")
    fails(function() return mg.linalg.solve(mg.ones { 3, 3 }, mg.ones { 2, 1 }) end, "linalg.solve: matrix (3,3) and rhs (2,1) do not match")
    fails(function() return mg.linalg.solve(mg.ones { 2, 3, 3 }, mg.ones { 3, 3, 1 }) end, "batch")
    fails(function() return mg.linalg.solve(mg.eye(2), mg.ones { 2 }, { adjiont = true }) end, "unknown option 'adjiont'")
    fails(function() return mg.linalg.qr(mg.eye(2), { mode = "full" }) end, "linalg.qr", "mode")
    fails(function() return mg.linalg.svd(mg.eye(2), { full = true }) end, "unknown option 'full'")
    fails(function() return mg.linalg.inv({ { 1, 2 } }) end, "linalg.inv: x must be a tensor")
    fails(function() return mg.linalg.matrix_power(mg.eye(2), 1.5) end, "matrix_power: n must be an integer")
    fails(function() return mg.linalg.lstsq(mg.ones { 3, 2 }, mg.ones { 2 }) end, "linalg.lstsq: matrix (3,2) and rhs (2) do not match")
    fails(function() return mg.linalg.svd(mg.tensor { 1.0 }) end, "linalg.svd: x must be a matrix")
  end)
end)

describe("norms and clipping", function()
  local v = mg.tensor { 3.0, -4.0, 0.0 }
  local m = mg.tensor { { 1.0, -2.0 }, { 3.0, 4.0 } }
  it("vector norms", function()
    near(mg.norm(v), 5, 1e-6)
    near(mg.norm(v, { ord = 1 }), 7, 1e-6)
    near(mg.norm(v, { ord = math.huge }), 4, 1e-6)
    near(mg.norm(v, { ord = "inf" }), 4, 1e-6)
    near(mg.norm(v, { ord = -math.huge }), 0, 1e-6)
    near(mg.norm(v, { ord = 0 }), 2, 1e-6)
    near(mg.norm(v, { ord = 3 }), (27 + 64) ^ (1 / 3), 1e-6)
    near(mg.norm(m, { axis = 2 }), { math.sqrt(5), 5 }, 1e-6)
    near(mg.norm(m, { axis = 1, keepdims = true }), { { math.sqrt(10), math.sqrt(20) } }, 1e-6)
    near(mg.norm(m), math.sqrt(30), 1e-6)   -- all elements
  end)
  it("matrix norms (as numpy.linalg.norm)", function()
    near(mg.norm(m, { ord = "fro" }), math.sqrt(30), 1e-6)
    near(mg.norm(m, { ord = 1 }), 6, 1e-6)      -- max column sum
    near(mg.norm(m, { ord = -1 }), 4, 1e-6)
    near(mg.norm(m, { ord = math.huge }), 7, 1e-6)   -- max row sum
    near(mg.norm(m, { ord = -math.huge }), 3, 1e-6)
    local s1, s2 = math.sqrt(15 + math.sqrt(125)), math.sqrt(15 - math.sqrt(125))
    near(mg.norm(m, { ord = 2 }), s1, 1e-5)
    near(mg.norm(m, { ord = -2 }), s2, 1e-5)
    near(mg.norm(m, { ord = "nuc" }), s1 + s2, 1e-5)
    -- over axes of a batch, the axes given in the other order, keepdims
    local b = mg.stack({ m, m * 2 })
    near(mg.norm(b, { ord = 1, axis = { 2, 3 } }), { 6, 12 }, 1e-6)
    near(mg.norm(b, { ord = 1, axis = { 3, 2 } }), { 7, 14 }, 1e-6)   -- rows and columns swapped
    near(mg.norm(b, { ord = "nuc", axis = { -2, -1 }, keepdims = true }), { { { s1 + s2 } }, { { 2 * (s1 + s2) } } }, 1e-5)
    near(mg.norm(mg.permute(b, { 2, 1, 3 }), { ord = 2, axis = { 1, 3 } }), { s1, 2 * s1 }, 1e-5)
  end)
  it("norm errors", function()
    fails(function() return mg.norm(m, { ord = "nuc", axis = 1 }) end, "norm: ord=\"nuc\" is a matrix norm")
    fails(function() return mg.norm(m, { ord = 3, axis = { 1, 2 } }) end, "norm: invalid ord 3 for a matrix norm")
    fails(function() return mg.norm(mg.ones { 2, 2, 2 }, { ord = 1 }) end, "needs axis=")
    fails(function() return mg.norm(m, { axis = 3 }) end, "norm: axis 3 is out of range")
    fails(function() return mg.norm(m, { ord = "max" }) end, "norm", "ord")
    fails(function() return mg.norm(m, { keepdim = true }) end, "unknown option 'keepdim'")
  end)
  it("gradients of norms", function()
    near(mg.grad(function(x) return mg.norm(x) end)(mg.tensor({ 3.0, 4.0 }, "float32")), { 0.6, 0.8 }, 1e-6)
    near(mg.grad(function(x) return mg.norm(x, { ord = 1 }) end)(mg.tensor({ 3.0, -4.0 }, "float32")), { 1, -1 }, 1e-6)
    local mm = mg.tensor({ { 1.0, -2.0 }, { 3.0, 4.0 } }, "float64")
    local _, u, vv = mg.linalg.svd(mm)
    near(mg.grad(function(x) return mg.norm(x, { ord = "nuc" }) end)(mm), mg.matmul(u, T(vv)), 1e-10)
  end)
  it("l2_normalize, clip_by_norm, clip_by_global_norm (TF's rules)", function()
    near(mg.l2_normalize(mg.tensor({ 3.0, 4.0 }, "float32")), { 0.6, 0.8 }, 1e-6)
    near(mg.l2_normalize(m, { axis = 2 }), { { 1 / math.sqrt(5), -2 / math.sqrt(5) }, { 0.6, 0.8 } }, 1e-6)
    near(mg.l2_normalize(mg.zeros { 3 }), { 0, 0, 0 }, 0)
    near(mg.grad(function(x) return mg.sum(mg.l2_normalize(x)) end)(mg.zeros { 2 }), { 1e6, 1e6 }, 1e-6)  -- finite
    near(mg.clip_by_norm(mg.tensor { 3.0, 4.0 }, 1), { 0.6, 0.8 }, 1e-6)
    near(mg.clip_by_norm(mg.tensor { 3.0, 4.0 }, 10), { 3, 4 }, 1e-6)
    near(mg.clip_by_norm(m, 1, { axes = 2 }), { { 1 / math.sqrt(5), -2 / math.sqrt(5) }, { 0.6, 0.8 } }, 1e-6)
    near(mg.grad(function(x) return mg.sum(mg.clip_by_norm(x, 1)) end)(mg.zeros { 2 }), { 1, 1 }, 0)
    local c, g = mg.clip_by_global_norm({ mg.tensor { 3.0 }, nil, mg.tensor { 4.0 } }, 1)
    near(g, 5, 1e-6)
    near(c[1], { 0.6 }, 1e-6)
    assert.is_nil(c[2])
    near(c[3], { 0.8 }, 1e-6)
    local c2, g2 = mg.clip_by_global_norm({ mg.tensor { 0.3 }, mg.tensor { 0.4 } }, 1)
    near(g2, 0.5, 1e-6)
    near(c2[1], { 0.3 }, 1e-6)
    fails(function() return mg.clip_by_norm(v, -1) end, "clip_by_norm: clip_norm must be > 0")
    fails(function() return mg.clip_by_global_norm(v, 1) end, "clip_by_global_norm: t_list must be a Lua table")
    fails(function() return mg.clip_by_global_norm({ 1 }, 1) end, "t_list[1] must be a tensor")
    fails(function() return mg.l2_normalize(v, { eps = 1 }) end, "unknown option 'eps'")
  end)
end)

describe("staged (mg.func)", function()
  it("the linalg functions and norms trace and run as eager, gradients included", function()
    local a = mg.tensor(A, "float64")
    local function body(x)
      local q, r = mg.linalg.qr(x)
      local s = mg.linalg.svd(x, { compute_uv = false })
      local e = mg.linalg.eigh(mg.matmul(x, T(x)))
      return mg.linalg.inv(x) + mg.linalg.det(x) + q + r, s, e, mg.norm(x, { ord = "nuc" })
    end
    local f = mg.func(body)
    local p1, s1, e1, n1 = f(a)
    local p2, s2, e2, n2 = body(a)
    near(p1, p2, 1e-12)
    near(s1, s2, 1e-12)
    near(e1, e2, 1e-10)
    near(n1, n2, 1e-12)
    local gf = mg.func(function(x) return mg.grad(function(y) return mg.linalg.det(y) + mg.sum(mg.linalg.solve(y, y * 2)) end)(x) end)
    near(gf(a), mg.grad(function(y) return mg.linalg.det(y) + mg.sum(mg.linalg.solve(y, y * 2)) end)(a), 1e-8)
  end)
  it("errors raised inside a staged function still name the op and the batch element", function()
    local f = mg.func(function(x) return mg.linalg.inv(x) end)
    fails(function() return f(mg.tensor { { { 1.0, 2.0 }, { 2.0, 4.0 } } }) end, "linalg.inv: the matrix is singular (batch element {1})")
  end)
end)
