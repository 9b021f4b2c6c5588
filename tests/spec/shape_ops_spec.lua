-- shape_ops_spec.lua — issue 17's shape ops (first half of "Shape and indexing"): tril/triu,
-- roll, diag, diag_part, trace, meshgrid, repeat, sequence_mask, outer, tensordot, einsum.
-- Values against plain-Lua loops (einsum against a brute-force sum over every assignment of its
-- indices), the contraction order einsum picks, staging in mg.func (known and unknown sizes),
-- gradients under a tape and inside a staged function, and error messages. Finite-difference
-- gradient checks are in gradcheck_spec.lua; NumPy/JAX references in tests/oracle.

local mg = require "moongrad"
local h = require "tests.spec.helpers"
local fails, near = h.fails, h.near
local einsum_mod = require "moongrad.einsum"

-- A deterministic float64 tensor of the shape (a fixed LCG: the same on both Luas).
local state = 7
local function R(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  local vals = {}
  for i = 1, n do
    state = (state * 16807) % 2147483647
    vals[i] = (state / 2147483647) * 2 - 1
  end
  return mg.reshape(mg.tensor(vals, mg.float64), shape)
end

-- flat values and shape of a tensor
local function flat(t) return mg.reshape(t, { -1 }):totable() end
local function strides(shape)
  local s, acc = {}, 1
  for i = #shape, 1, -1 do s[i] = acc; acc = acc * shape[i] end
  return s
end

-- Brute-force einsum over letters only (explicit output): every assignment of the indices.
local function naive_einsum(eq, ...)
  local xs = { ... }
  local lhs, rhs = eq:match("^(.*)%->(.*)$")
  local terms = {}
  for t in (lhs .. ","):gmatch("([^,]*),") do terms[#terms + 1] = t end
  local size, letters = {}, {}
  for k, t in ipairs(terms) do
    for i = 1, #t do
      local l = t:sub(i, i)
      if not size[l] then letters[#letters + 1] = l end
      size[l] = xs[k].shape[i]
    end
  end
  local out_shape = {}
  for i = 1, #rhs do out_shape[i] = size[rhs:sub(i, i)] end
  local n_out = 1
  for _, s in ipairs(out_shape) do n_out = n_out * s end
  local out = {}
  for i = 1, n_out do out[i] = 0 end
  local data, st = {}, {}
  for k, x in ipairs(xs) do data[k] = flat(x); st[k] = strides(x.shape) end
  local ost = strides(out_shape)
  local val = {}
  for _, l in ipairs(letters) do val[l] = 0 end
  local function rec(d)
    if d > #letters then
      local p = 1
      for k, t in ipairs(terms) do
        local off = 0
        for i = 1, #t do off = off + val[t:sub(i, i)] * st[k][i] end
        p = p * data[k][off + 1]
      end
      local o = 0
      for i = 1, #rhs do o = o + val[rhs:sub(i, i)] * ost[i] end
      out[o + 1] = out[o + 1] + p
      return
    end
    local l = letters[d]
    for v = 0, size[l] - 1 do val[l] = v; rec(d + 1) end
  end
  rec(1)
  return out, out_shape
end

local function same_shape(t, shape)
  assert.are.same(shape, t.shape)
end

local function check_flat(t, want, tol)
  local got = flat(t)
  assert.are.equal(#want, #got)
  for i = 1, #want do near(got[i], want[i], tol or 1e-9, "element " .. i) end
end

describe("tril and triu", function()
  it("keep the band of each matrix of a batch, for every k", function()
    local x = R { 2, 3, 4 }
    for _, k in ipairs({ -3, -1, 0, 1, 2, 5 }) do
      local lo, up = mg.tril(x, { k = k }), mg.triu(x, { k = k })
      same_shape(lo, { 2, 3, 4 })
      local xv, lv, uv = x:totable(), lo:totable(), up:totable()
      for b = 1, 2 do for i = 1, 3 do for j = 1, 4 do
        assert.are.equal(j - i <= k and xv[b][i][j] or 0, lv[b][i][j])
        assert.are.equal(j - i >= k and xv[b][i][j] or 0, uv[b][i][j])
      end end end
    end
  end)
  it("keep the dtype, take k as a number too, and keep an inf off the band from making NaN", function()
    local t = mg.tril(mg.tensor { { 1, 2 }, { 3, 4 } }, 0)
    assert.are.equal("int64", t.dtype)
    h.check(t, { { 1, 0 }, { 3, 4 } })
    local u = mg.triu(mg.tensor { { 1, math.huge }, { -math.huge, 4 } })
    h.check(u, { { 1.0, math.huge }, { 0.0, 4.0 } })
  end)
  it("refuse vectors and bad options", function()
    fails(function() return mg.tril(mg.tensor { 1, 2 }) end, "tril: x must have at least 2 axes", "(2)")
    fails(function() return mg.triu(mg.ones { 2, 2 }, { diagonal = 1 }) end, "triu", "unknown option 'diagonal'")
    fails(function() return mg.triu(mg.ones { 2, 2 }, { k = 0.5 }) end, "triu", "k")
  end)
end)

describe("roll", function()
  it("rolls one axis, several axes (shifts summed per axis) and the flattened tensor", function()
    local x = mg.reshape(mg.arange(0, 12), { 3, 4 })
    local function ref(shift0, shift1)
      local out = {}
      for i = 0, 2 do
        out[i + 1] = {}
        for j = 0, 3 do
          local si, sj = (i - shift0) % 3, (j - shift1) % 4
          out[i + 1][j + 1] = si * 4 + sj
        end
      end
      return out
    end
    h.check(mg.roll(x, 1, { axis = 1 }), ref(1, 0))
    h.check(mg.roll(x, -5, { axis = -1 }), ref(0, -5))
    h.check(mg.roll(x, { 2, -1 }, { axis = { 1, 2 } }), ref(2, -1))
    h.check(mg.roll(x, { 1, 1 }, { axis = { 2, 2 } }), ref(0, 2))
    local f = {}
    for i = 0, 11 do f[i + 1] = (i - 5) % 12 end
    h.check(mg.reshape(mg.roll(x, 5), { -1 }), f)
    h.check(mg.roll(x, 0, { axis = 1 }), x:totable())
    assert.are.same({ 0 }, mg.roll(mg.tensor({}, mg.float32), 3).shape)
  end)
  it("refuses mismatched shifts and axes, an axis out of range, a fractional shift", function()
    local x = mg.ones { 2, 3 }
    fails(function() return mg.roll(x, { 1, 2 }, { axis = 1 }) end, "roll: 2 shifts for 1 axis")
    fails(function() return mg.roll(x, { 1, 2 }) end, "roll: 2 shifts need axis=")
    fails(function() return mg.roll(x, 1, { axis = 3 }) end, "roll: axis 3 is out of range", "(2,3)")
    fails(function() return mg.roll(x, 1.5, { axis = 1 }) end, "roll: shift 1 must be an integer")
    fails(function() return mg.roll(x, 1, { axes = 1 }) end, "roll", "unknown option 'axes'")
  end)
end)

describe("diag, diag_part and trace", function()
  it("diag puts a batch of vectors on diagonal k; diag_part takes it back", function()
    local v = R { 2, 3 }
    for _, k in ipairs({ -2, -1, 0, 1, 3 }) do
      local m = mg.diag(v, { k = k })
      local N = 3 + math.abs(k)
      same_shape(m, { 2, N, N })
      local mv, vv = m:totable(), v:totable()
      for b = 1, 2 do for i = 1, N do for j = 1, N do
        local want = 0
        if j - i == k then want = vv[b][k >= 0 and i or j] end
        assert.are.equal(want, mv[b][i][j])
      end end end
      h.check(mg.diag_part(m, { k = k }), vv)
    end
  end)
  it("diag keeps inf and NaN on the diagonal only", function()
    local m = mg.diag(mg.tensor { math.huge, 0 / 0 }):totable()
    assert.are.equal(math.huge, m[1][1]); assert.is_true(m[2][2] ~= m[2][2])
    assert.are.equal(0, m[1][2]); assert.are.equal(0, m[2][1])
  end)
  it("diag_part of non-square matrices, every k, and trace", function()
    local x = R { 2, 3, 5 }
    local xv = x:totable()
    for k = -4, 6 do
      local d = mg.diag_part(x, { k = k })
      local want = {}
      for b = 1, 2 do
        want[b] = {}
        for i = 1, 3 do
          local j = i + k
          if j >= 1 and j <= 5 then want[b][#want[b] + 1] = xv[b][i][j] end
        end
      end
      assert.are.equal(#want[1], d.shape[2])
      if #want[1] > 0 then h.check(d, want) end
    end
    local t = mg.trace(x):totable()
    for b = 1, 2 do near(t[b], xv[b][1][1] + xv[b][2][2] + xv[b][3][3], 1e-12) end
    assert.are.equal(5, mg.trace(mg.tensor { { 1, 2 }, { 3, 4 } }):item())
  end)
  it("refuse scalars and vectors where matrices are needed", function()
    fails(function() return mg.diag(mg.tensor(1)) end, "diag: v must have at least 1 axis")
    fails(function() return mg.diag_part(mg.ones { 3 }) end, "diag_part: x must have at least 2 axes", "(3)")
    fails(function() return mg.trace(mg.ones { 3 }) end, "trace: x must have at least 2 axes")
    fails(function() return mg.diag(mg.ones { 3 }, { offset = 1 }) end, "diag", "unknown option 'offset'")
  end)
end)

describe("meshgrid", function()
  it("xy (default) and ij grids of 2 and 3 inputs", function()
    local a, b, c = mg.tensor { 1, 2, 3 }, mg.tensor { 10, 20 }, mg.tensor { 100, 200, 300, 400 }
    local X, Y = mg.meshgrid(a, b)
    same_shape(X, { 2, 3 }); same_shape(Y, { 2, 3 })
    h.check(X, { { 1, 2, 3 }, { 1, 2, 3 } }); h.check(Y, { { 10, 10, 10 }, { 20, 20, 20 } })
    local I, J = mg.meshgrid(a, b, { indexing = "ij" })
    h.check(I, { { 1, 1 }, { 2, 2 }, { 3, 3 } }); h.check(J, { { 10, 20 }, { 10, 20 }, { 10, 20 } })
    local P, Q, S = mg.meshgrid(a, b, c)
    same_shape(P, { 2, 3, 4 })
    local pv, qv, sv = P:totable(), Q:totable(), S:totable()
    for i = 1, 2 do for j = 1, 3 do for k = 1, 4 do
      assert.are.equal(j, pv[i][j][k]); assert.are.equal(10 * i, qv[i][j][k]); assert.are.equal(100 * k, sv[i][j][k])
    end end end
    local single = mg.meshgrid(a)
    h.check(single, { 1, 2, 3 })
  end)
  it("refuses an unknown indexing", function()
    fails(function() return mg.meshgrid(mg.ones { 2 }, { indexing = "xyz" }) end, "meshgrid", "indexing", '"xy", "ij"')
  end)
end)

describe("repeat", function()
  local rep = mg["repeat"]
  it("repeats by a number, per-element counts (list or tensor), along an axis or flattened", function()
    local x = mg.tensor { { 1, 2 }, { 3, 4 } }
    h.check(rep(x, 2), { 1, 1, 2, 2, 3, 3, 4, 4 })
    h.check(rep(x, 2, { axis = 1 }), { { 1, 2 }, { 1, 2 }, { 3, 4 }, { 3, 4 } })
    h.check(rep(x, 3, { axis = -1 }), { { 1, 1, 1, 2, 2, 2 }, { 3, 3, 3, 4, 4, 4 } })
    h.check(rep(x, { 1, 2 }, { axis = 2 }), { { 1, 2, 2 }, { 3, 4, 4 } })
    h.check(rep(x, mg.tensor { 0, 3 }, { axis = 1 }), { { 3, 4 }, { 3, 4 }, { 3, 4 } })
    h.check(rep(x, { 1, 0, 2, 1 }), { 1, 3, 3, 4 })
    same_shape(rep(x, 0, { axis = 1 }), { 0, 2 })
    h.check(rep(mg.tensor(5), 3), { 5, 5, 5 })
  end)
  it("refuses bad counts, naming what is wrong", function()
    local x = mg.ones { 2, 3 }
    fails(function() return rep(x, { 1, 2 }, { axis = 2 }) end, "repeat: 2 counts given for axis 2 of size 3", "(2,3)")
    fails(function() return rep(x, -1) end, "repeat: repeats must be a non-negative integer")
    fails(function() return rep(x, { 1, -1 }, { axis = 1 }) end, "repeat: count 2 must be a non-negative integer")
    fails(function() return rep(x, mg.tensor { 1.5, 1 }, { axis = 1 }) end, "repeat: repeats must be integers", "float32")
    fails(function() return rep(x, 2, { axis = 3 }) end, "repeat: axis 3 is out of range")
    fails(function() return rep(x, { axis = 1 }) end, "repeat: repeats is required")
  end)
end)

describe("sequence_mask and outer", function()
  it("sequence_mask marks the first length positions of each row", function()
    h.check(mg.sequence_mask(mg.tensor { 1, 3, 0 }, 4),
      { { true, false, false, false }, { true, true, true, false }, { false, false, false, false } })
    local m = mg.sequence_mask(mg.tensor { { 2 }, { 1 } })   -- maxlen from the data; batched lengths
    same_shape(m, { 2, 1, 2 })
    local f = mg.sequence_mask(mg.tensor { 2, 1 }, 3, { dtype = "float32" })
    assert.are.equal("float32", f.dtype)
    h.check(f, { { 1.0, 1.0, 0.0 }, { 1.0, 0.0, 0.0 } })
    fails(function() return mg.sequence_mask(mg.tensor { 1.5 }, 2) end, "sequence_mask: lengths must be integers", "float32")
    fails(function() return mg.sequence_mask(mg.tensor { 1 }, -2) end, "sequence_mask: maxlen must be a non-negative integer")
    fails(function() return mg.sequence_mask(mg.tensor { 1 }, 2, { dtyp = "bool" }) end, "unknown option 'dtyp'")
  end)
  it("outer flattens both and multiplies every pair", function()
    h.check(mg.outer(mg.tensor { 1, 2 }, mg.tensor { { 3, 4 }, { 5, 6 } }), { { 3, 4, 5, 6 }, { 6, 8, 10, 12 } })
  end)
end)

describe("tensordot", function()
  it("contracts the last n of a with the first n of b, or listed axis pairs", function()
    local a, b = R { 2, 3, 4 }, R { 3, 4, 5 }
    local want, wshape = naive_einsum("ijk,jkl->il", a, b)
    local y = mg.tensordot(a, b, 2)
    same_shape(y, wshape); check_flat(y, want)
    local c = R { 4, 3, 2 }
    want, wshape = naive_einsum("ijk,kli->jl", a, c)
    y = mg.tensordot(a, c, { { 3, 1 }, { 1, -1 } })
    same_shape(y, wshape); check_flat(y, want)
    want, wshape = naive_einsum("ijk,ljm->iklm", a, c)
    y = mg.tensordot(a, c, { 2, 2 })
    same_shape(y, wshape); check_flat(y, want)
    y = mg.tensordot(R { 2 }, R { 3 }, 0)           -- the outer product
    same_shape(y, { 2, 3 })
  end)
  it("refuses mismatched sizes and bad axes", function()
    local a, b = mg.ones { 2, 3 }, mg.ones { 4, 5 }
    fails(function() return mg.tensordot(a, b, 1) end, "tensordot: axis 2 of a (2,3) has size 3 but axis 1 of b (4,5) has size 4")
    fails(function() return mg.tensordot(a, b, 3) end, "tensordot: axes = 3 must be an integer from 0 to 2")
    fails(function() return mg.tensordot(a, mg.ones { 2, 2 }, { { 1, 1 }, { 1, 2 } }) end, "axis 1 of a is listed twice")
    fails(function() return mg.tensordot(a, b, { 3, 1 }) end, "tensordot: axis 3 is out of range for a")
    fails(function() return mg.tensordot(a, b, "ij") end, "tensordot: axes must be")
  end)
end)

describe("einsum", function()
  it("matches a brute-force sum over the indices, for many equations", function()
    local cases = {
      { "ij,jk->ik", { { 2, 3 }, { 3, 4 } } },
      { "ij->ji", { { 2, 3 } } },
      { "ii->i", { { 3, 3 } } },
      { "ii->", { { 3, 3 } } },
      { "iij->j", { { 2, 2, 3 } } },
      { "iji->ij", { { 2, 3, 2 } } },
      { "ij->", { { 2, 3 } } },
      { "i,i->", { { 4 }, { 4 } } },
      { "i,j->ij", { { 2 }, { 3 } } },
      { "bij,bjk->bik", { { 2, 2, 3 }, { 2, 3, 2 } } },
      { "bhqd,bhkd->bhqk", { { 2, 2, 3, 4 }, { 2, 2, 2, 4 } } },
      { "bhqk,bhkd->bqhd", { { 2, 2, 3, 2 }, { 2, 2, 2, 4 } } },
      { "ij,jk,kl->il", { { 2, 3 }, { 3, 4 }, { 4, 2 } } },
      { "ij,jk,kl,lm->mi", { { 2, 3 }, { 3, 2 }, { 2, 4 }, { 4, 2 } } },
      { "abc,cd,a->bd", { { 2, 3, 4 }, { 4, 2 }, { 2 } } },
      { "ij,ij,ij->i", { { 2, 3 }, { 2, 3 }, { 2, 3 } } },
      { "iab,bic->c", { { 2, 3, 4 }, { 4, 2, 3 } } },
      { "ijk,jil->kl", { { 2, 3, 2 }, { 3, 2, 2 } } },
      { "ii,jj->ij", { { 2, 2 }, { 3, 3 } } },
      { "i,jk,k->ij", { { 2 }, { 3, 4 }, { 4 } } },
      { "ab,bc,cd,de,ea->", { { 2, 3 }, { 3, 2 }, { 2, 2 }, { 2, 3 }, { 3, 2 } } },
      { "ab,bc,cd,de,ef,fg,gh->ah", { { 2, 2 }, { 2, 3 }, { 3, 2 }, { 2, 2 }, { 2, 3 }, { 3, 2 }, { 2, 2 } } },
    }
    for _, c in ipairs(cases) do
      local xs = {}
      for k, s in ipairs(c[2]) do xs[k] = R(s) end
      local want, wshape = naive_einsum(c[1], table.unpack(xs))
      local y = mg.einsum(c[1], table.unpack(xs))
      assert.are.same(wshape, y.shape, c[1])
      local got = flat(y)
      for i = 1, #want do near(got[i], want[i], 1e-9, c[1] .. " element " .. i) end
    end
  end)

  it("implicit output: the indices that occur once, in byte order (upper case first); '...' first", function()
    local a, b = R { 2, 3 }, R { 3, 4 }
    check_flat(mg.einsum("ij,jk", a, b), (naive_einsum("ij,jk->ik", a, b)))
    check_flat(mg.einsum("ba", a), (naive_einsum("ba->ab", a)))
    same_shape(mg.einsum("Ba,aC", a, b), { 2, 4 })
    same_shape(mg.einsum("cA,Ab", a, b), { 4, 2 })   -- b before c, whatever the operands' order
    check_flat(mg.einsum("ii", mg.tensor { { 1, 2 }, { 3, 4 } }), { 5 })
    same_shape(mg.einsum("...ij,...jk", R { 2, 1, 2, 3 }, R { 5, 3, 2 }), { 2, 5, 2, 2 })
  end)

  it("broadcasts '...' as NumPy (right-aligned, size 1 against n)", function()
    local a, b = R { 3, 1, 2, 3 }, R { 4, 3, 2 }
    local y = mg.einsum("...ij,...jk->...ik", a, b)
    same_shape(y, { 3, 4, 2, 2 })
    local mm = mg.matmul(a, b)   -- matmul broadcasts the same way
    check_flat(y, flat(mm))
    local p, r = R { 2, 3 }, R { 3 }
    check_flat(mg.einsum("...i,...i->...", p, r), flat(mg.sum(p * r, -1)))
  end)

  it("picks the cheapest order: a matrix-vector chain is not done as a matrix product", function()
    local A, B, v = R { 30, 30 }, R { 30, 30 }, R { 30 }
    local y = mg.einsum("ij,jk,k->i", A, B, v)
    -- (B v) first, then A (B v): operands 2 and 3 (v) are contracted first
    assert.are.same({ 2, 3 }, einsum_mod.last_plan[1])
    check_flat(y, flat(mg.matmul(A, mg.matmul(B, v))), 1e-9)
    mg.einsum("ij,jk,kl->il", R { 2, 30 }, R { 30, 30 }, R { 30, 30 })
    assert.are.same({ 1, 2 }, einsum_mod.last_plan[1])   -- the thin one first
    mg.einsum("ij,jk,kl->il", R { 30, 30 }, R { 30, 30 }, R { 30, 2 })
    assert.are.same({ 2, 3 }, einsum_mod.last_plan[1])
  end)

  it("works in float32 and on integers, on strided views", function()
    local a = mg.reshape(mg.arange(1, 7), { 2, 3 })
    h.check(mg.einsum("ij,kj->ik", a, a), { { 14, 32 }, { 32, 77 } })
    local t, u = mg.transpose(R { 3, 4 }, 1, 2), R { 3, 2 }
    check_flat(mg.einsum("ij,jk->ik", t, u), flat(mg.matmul(mg.contiguous(t), u)))
  end)

  it("batched products large enough to run the batches across threads give each batch's own product", function()
    -- 4 products of 128 x 256 x 128 (4.2M multiply-adds each, 16.8M in all): on 2 or 4 threads the
    -- batches run in parallel, one single-threaded BLIS call each; a broadcast batch and a
    -- transposed view too
    local a, b = mg.cast(R { 4, 128, 256 }, mg.float32), mg.cast(R { 256, 4, 128 }, mg.float32)
    local bt = mg.permute(b, { 2, 1, 3 })
    local y = mg.einsum("bij,jbk->bik", a, b)
    local one = mg.cast(R { 1, 128, 256 }, mg.float32)
    local yb = mg.matmul(one, bt)
    for i = 1, 4 do
      local want = mg.matmul(a[i], mg.contiguous(bt[i]))
      assert.is_true(mg.allclose(y[i], want, { rtol = 1e-5, atol = 1e-4 }), "batch " .. i)
      assert.is_true(mg.allclose(yb[i], mg.matmul(one[1], mg.contiguous(bt[i])), { rtol = 1e-5, atol = 1e-4 }))
    end
  end)

  it("gives gradients under a tape (the batched-attention form)", function()
    local q, k = R { 2, 2, 3, 4 }, R { 2, 2, 5, 4 }
    local g = mg.grad(function(a, b) return mg.sum(mg.einsum("bhqd,bhkd->bhqk", a, b) ^ 2) end, { argnums = { 1, 2 } })(q, k)
    local gq, gk = g[1], g[2]
    local s = mg.matmul(q, mg.transpose(k, -2, -1))
    check_flat(gq, flat(mg.matmul(s * 2, k)), 1e-9)
    check_flat(gk, flat(mg.matmul(mg.transpose(s * 2, -2, -1), q)), 1e-9)
  end)

  it("refuses malformed equations and mismatched operands, naming them", function()
    local a, b = mg.ones { 2, 3 }, mg.ones { 4, 5 }
    fails(function() return mg.einsum("ij,jk->ik", a, b) end, "einsum: index 'j' has size 3 in operand 1 (2,3) but 4 in operand 2 (4,5)")
    fails(function() return mg.einsum("ij,jk->ik", a) end, "einsum: \"ij,jk->ik\" names 2 operands but 1 was given")
    fails(function() return mg.einsum("ijk", a) end, "einsum: operand 1 has shape (2,3) (2 axes) but its term 'ijk'")
    fails(function() return mg.einsum("ij->ii", a) end, "einsum: index 'i' appears twice in the output")
    fails(function() return mg.einsum("ij->k", a) end, "einsum: output index 'k'", "is not in any operand")
    fails(function() return mg.einsum("i2->i", a) end, "einsum: invalid character '2'")
    fails(function() return mg.einsum("i.j", a) end, "'.' that is not part of '...'")
    fails(function() return mg.einsum("...ij->ij", mg.ones { 2, 2, 3 }) end, "has no '...' to put them in")
    fails(function() return mg.einsum("ii", a) end, "einsum: index 'i' is repeated in one operand over axes of sizes 2 and 3 (operand 1, shape (2,3))")
    fails(function() return mg.einsum(a, a) end, "einsum: the first argument must be the equation")
    fails(function() return mg.einsum("ij", 3) end, "einsum: operand 1 must be a tensor, got number")
    fails(function() return mg.einsum("...i,...i", mg.ones { 2, 3 }, mg.ones { 4, 3 }) end, "'...' axes", "do not broadcast")
    fails(function() return mg.einsum("ij->j->i", a) end, "'->' appears twice")
  end)

  it("reports errors at the caller's line", function()
    local err = fails(function() local y = mg.einsum("ij,jk", mg.ones { 2, 3 }, mg.ones { 4, 5 }); return y end, "einsum")
    assert.truthy(err:find("shape_ops_spec.lua:", 1, true), err)
  end)
end)

describe("staged in mg.func", function()
  it("every op gives what it gives eagerly", function()
    local x, v = R { 3, 4 }, R { 3 }
    local function all(t, u)
      local X, Y = mg.meshgrid(u, u)
      return mg.tril(t, { k = 1 }), mg.triu(t), mg.roll(t, { 1, 2 }, { axis = { 1, 2 } }), mg.diag(u, { k = -1 }),
        mg.diag_part(t, { k = 1 }), mg.trace(t), X + Y, mg["repeat"](t, { 2, 0, 1 }, { axis = 1 }),
        mg.sequence_mask(mg.tensor { 1, 3 }, 4), mg.outer(u, t), mg.tensordot(t, t, { { 1 }, { 1 } }),
        mg.einsum("ij,kj,i->k", t, t, u), mg.einsum("ii->i", mg.matmul(t, mg.transpose(t, 1, 2)))
    end
    local staged = mg.func(all)
    local e, s = table.pack(all(x, v)), table.pack(staged(x, v))
    assert.are.equal(e.n, s.n)
    for i = 1, e.n do
      assert.are.same(e[i].shape, s[i].shape)
      if e[i].dtype == "bool" then h.check(s[i], e[i]:totable()) else check_flat(s[i], flat(e[i]), 1e-12) end
    end
  end)

  it("takes gradients through einsum and diag inside the staged function", function()
    local f = mg.func(function(a, b)
      return mg.grad(function(p, q) return mg.sum(mg.einsum("bij,bjk->bik", p, q) * mg.trace(mg.diag(mg.diag_part(p)))) end,
        { argnums = { 1, 2 } })(a, b)
    end)
    local a, b = R { 2, 2, 3 }, R { 2, 3, 2 }
    local g = f(a, b)
    local ga, gb = g[1], g[2]
    local e = mg.grad(function(p, q) return mg.sum(mg.einsum("bij,bjk->bik", p, q) * mg.trace(mg.diag(mg.diag_part(p)))) end,
      { argnums = { 1, 2 } })(a, b)
    check_flat(ga, flat(e[1]), 1e-12); check_flat(gb, flat(e[2]), 1e-12)
  end)

  it("einsum and tensordot with an unknown batch size", function()
    local spec = mg.TensorSpec { shape = { -1, 3, 4 }, dtype = mg.float64 }
    local f = mg.func(function(q, k)
      return mg.einsum("bqd,bkd->bqk", q, k), mg.tensordot(q, k, { { 2, 3 }, { 2, 3 } })
    end, { input_signature = { spec, spec } })
    for _, n in ipairs({ 2, 5 }) do
      local q, k = R { n, 3, 4 }, R { n, 3, 4 }
      local y, z = f(q, k)
      check_flat(y, (naive_einsum("bqd,bkd->bqk", q, k)))
      check_flat(z, (naive_einsum("bqd,cqd->bc", q, k)))
    end
  end)

  it("ops that need a size as a number say so when it is unknown while tracing", function()
    local spec = mg.TensorSpec { shape = { 2, -1 }, dtype = mg.float32 }
    local f = mg.func(function(x) return mg.tril(x) end, { input_signature = { spec } })
    fails(function() return f(mg.ones { 2, 3 }) end, "tril: the columns axis of x has an unknown size while tracing")
    local g = mg.func(function(x) return mg.roll(x, 1, { axis = 2 }) end, { input_signature = { spec } })
    fails(function() return g(mg.ones { 2, 3 }) end, "roll: the rolled axis has an unknown size")
    -- what needs no number works: a batch axis of unknown size, rolled along a known one
    local h2 = mg.func(function(x) return mg.roll(mg.tril(x), 1, { axis = 2 }), mg["repeat"](x, 2, { axis = 1 }) end,
      { input_signature = { mg.TensorSpec { shape = { -1, 2, 2 }, dtype = mg.float32 } } })
    local x = R { 3, 2, 2 }
    local y, r = h2(mg.cast(x, mg.float32))
    check_flat(y, flat(mg.roll(mg.tril(mg.cast(x, mg.float32)), 1, { axis = 2 })), 1e-6)
    assert.are.same({ 6, 2, 2 }, r.shape)
  end)

  it("repeat by a tensor and sequence_mask without maxlen say to use Lua values", function()
    local f = mg.func(function(x, r) return mg["repeat"](x, r, { axis = 1 }) end)
    fails(function() return f(mg.ones { 2 }, mg.tensor { 1, 2 }) end, "repeat", "give repeats as a Lua number or list")
    local g = mg.func(function(l) return mg.sequence_mask(l) end)
    fails(function() return g(mg.tensor { 1, 2 }) end, "sequence_mask", "give maxlen")
  end)
end)
