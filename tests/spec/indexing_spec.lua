-- indexing_spec.lua — issue 17's indexing: gather_nd, scatter_nd and tensor_scatter_nd_*,
-- segment_* and unsorted_segment_*, argwhere and mg.where(cond), boolean_mask, and x[mask] /
-- x[idx] read and write on tensors and Variables. Values against plain-Lua oracles (small and
-- multi-threaded sizes, strided inputs), gradients where finite differences cannot look (ties,
-- zeros), in-place writes against the tape's version check, staging, and error messages at the
-- user's line. The op oracle (tests/oracle) checks the ops against JAX/NumPy as well.

local mg = require "moongrad"
local h = require "tests.spec.helpers"
local fails, f32 = h.fails, h.f32
-- Float results within tol (expected written as plain numbers), the rest exactly (h.check).
local function check(actual, expected, tol)
  if mg.is_tensor(actual) and (actual.dtype == "float32" or actual.dtype == "float64") then
    return h.near(actual, expected, tol or 1e-6)
  end
  return h.check(actual, expected, tol)
end

-- A pseudo-random Lua list (a fixed LCG, so both Luas see the same values).
local function lcg_list(n, seed, mod)
  local t, s = {}, seed
  for i = 1, n do
    s = (s * 1103515245 + 12345) % 2147483648
    t[i] = mod and (s % mod) or math.floor((s / 2147483648 - 0.5) * 1000) / 8
  end
  return t
end

-- Plain-Lua reference of a 2-d table's element.
local function rows_of(n, m, f)
  local t = {}
  for i = 1, n do
    t[i] = {}
    for j = 1, m do t[i][j] = f(i, j) end
  end
  return t
end

describe("gather_nd", function()
  it("gathers elements and slices by 1-based coordinates (TF's shape rule)", function()
    local x = mg.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
    check(mg.gather_nd(x, mg.tensor { { 2, 3 }, { 1, 1 } }), { 6, 1 })
    check(mg.gather_nd(x, mg.tensor { { 2 }, { 1 } }), { { 4, 5, 6 }, { 1, 2, 3 } })
    check(mg.gather_nd(x, mg.tensor { { { 1, 2 } }, { { 2, 2 } } }), { { 2 }, { 5 } })
    check(mg.gather_nd(x, mg.tensor({ 2, 1 }, mg.int32)), 4)   -- one index: a 0-d result
    local e = mg.gather_nd(x, mg.tensor({}, mg.int64):reshape { 0, 2 })
    assert.same({ 0 }, e.shape)
  end)

  it("reads strided inputs and large outputs (several threads) exactly", function()
    local n, m = 300, 200
    local vals = lcg_list(n * m, 7)
    local x = mg.tensor(vals, mg.float64):reshape { n, m }:transpose()   -- strided (m, n)
    local ids = lcg_list(2 * 500, 3, 200)
    local idx, want = {}, {}
    for r = 1, 500 do
      local i = ids[r] % m + 1
      idx[r] = { i }
      want[r] = {}
      for j = 1, n do want[r][j] = vals[(j - 1) * m + i] end
    end
    check(mg.gather_nd(x, mg.tensor(idx)), want, 0)
  end)

  it("refuses indices out of range, naming op, index, position and shape", function()
    local x = mg.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
    fails(function() return mg.gather_nd(x, mg.tensor { { 1, 1 }, { 3, 1 } }) end,
      "gather_nd: index (3,1) at position (2) of indices is out of range for x of shape (2,3)", "valid 1..2")
    fails(function() return mg.gather_nd(x, mg.tensor { { 0, 1 } }) end, "indices count from 1")
    fails(function() return mg.gather_nd(x, mg.tensor { { 1, 4 } }) end, "axis 2 has size 3")
    fails(function() return mg.gather_nd(x, mg.tensor { { 1, 1, 1 } }) end, "give 3 coordinates", "only 2 axes")
    fails(function() return mg.gather_nd(x, mg.tensor { 1.5 }) end, "gather_nd: indices must be an integer tensor", "float32")
    fails(function() return mg.gather_nd(x, mg.tensor(1)) end, "gather_nd: indices must have at least one dimension")
  end)
end)

describe("tensor_scatter_nd_* and scatter_nd", function()
  local x = mg.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
  it("update, add, sub, max, min elements and slices (TF)", function()
    check(mg.tensor_scatter_nd_update(x, mg.tensor { { 2, 3 }, { 1, 1 } }, mg.tensor { 10, 20 }), { { 20, 2, 3 }, { 4, 5, 10 } })
    check(mg.tensor_scatter_nd_add(x, mg.tensor { { 2, 3 }, { 2, 3 } }, mg.tensor { 10, 20 }), { { 1, 2, 3 }, { 4, 5, 36 } })
    check(mg.tensor_scatter_nd_sub(x, mg.tensor { { 1 } }, mg.tensor { { 1, 1, 1 } }), { { 0, 1, 2 }, { 4, 5, 6 } })
    check(mg.tensor_scatter_nd_max(x, mg.tensor { { 1 }, { 1 } }, mg.tensor { { 0, 9, 0 }, { 5, 0, 0 } }), { { 5, 9, 3 }, { 4, 5, 6 } })
    check(mg.tensor_scatter_nd_min(x, mg.tensor { { 2, 1 }, { 2, 1 } }, mg.tensor { 3, 2 }), { { 1, 2, 3 }, { 2, 5, 6 } })
    -- a repeated index keeps its last update; x itself is untouched
    check(mg.tensor_scatter_nd_update(x, mg.tensor { { 1, 2 }, { 1, 2 } }, mg.tensor { 7, 8 }), { { 1, 8, 3 }, { 4, 5, 6 } })
    check(x, { { 1, 2, 3 }, { 4, 5, 6 } })
    -- dtypes promote as arithmetic does
    check(mg.tensor_scatter_nd_add(x, mg.tensor { { 1, 1 } }, f32 { 0.5 }), { { 1.5, 2, 3 }, { 4, 5, 6 } })
  end)

  it("combine repeated indices in index order on every thread count", function()
    local n, m = 64, 600   -- wide slices: the columns are split across threads
    local base = mg.zeros({ n, m }, mg.float64)
    local ids = lcg_list(200, 11, n)
    local idx, upd, want = {}, {}, rows_of(n, m, function() return 0 end)
    for r = 1, 200 do
      idx[r] = { ids[r] + 1 }
      upd[r] = {}
      for j = 1, m do
        upd[r][j] = (r * 7 + j) % 13 - 6
        want[ids[r] + 1][j] = want[ids[r] + 1][j] + upd[r][j]
      end
    end
    check(mg.tensor_scatter_nd_add(base, mg.tensor(idx), mg.tensor(upd, mg.float64)), want, 0)
    local last = rows_of(n, m, function() return 0 end)
    for r = 1, 200 do last[ids[r] + 1] = upd[r] end
    check(mg.tensor_scatter_nd_update(base, mg.tensor(idx), mg.tensor(upd, mg.float64)), last, 0)
  end)

  it("scatter_nd adds updates into zeros of a shape", function()
    check(mg.scatter_nd(mg.tensor { { 2 }, { 4 }, { 2 } }, f32 { 5, 7, 1 }, { 4 }), { 0, 6, 0, 7 })
    check(mg.scatter_nd(mg.tensor { { 2, 1 } }, mg.tensor { 3 }, { 2, 2 }), { { 0, 0 }, { 3, 0 } })
  end)

  it("never write out of range: an error naming op, index and shape", function()
    fails(function() return mg.tensor_scatter_nd_update(x, mg.tensor { { 1, 1 }, { 2, 4 } }, mg.tensor { 1, 2 }) end,
      "tensor_scatter_nd_update: index (2,4) at position (2) of indices is out of range for tensor of shape (2,3)",
      "axis 2 has size 3: valid 1..3")
    fails(function() return mg.tensor_scatter_nd_add(x, mg.tensor { { -1 } }, mg.tensor { { 1, 1, 1 } }) end,
      "tensor_scatter_nd_add: index (-1)")
    fails(function() return mg.tensor_scatter_nd_update(x, mg.tensor { { 1 } }, mg.tensor { 1, 2 }) end,
      "updates have shape (2)", "need updates of shape (1,3)")
    fails(function() return mg.scatter_nd(mg.tensor { { 5 } }, f32 { 1 }, { 4 }) end, "index (5)", "shape (4)")
    fails(function() return mg.tensor_scatter_nd_sub(mg.tensor { true }, mg.tensor { { 1 } }, mg.tensor { true }) end,
      "tensor_scatter_nd_sub: not defined for bool")
  end)

  it("differentiate through updates and the tensor (max/min share ties evenly, as TF)", function()
    local t, u = f32 { 1, 5, 3 }, f32 { 5, 2 }
    local gs = mg.grad(function(a, b)
      return mg.sum(mg.tensor_scatter_nd_max(a, mg.tensor { { 2 }, { 3 } }, b) * f32 { 1, 10, 100 })
    end, { argnums = { 1, 2 } })(t, u)
    local gt, gu = gs[1], gs[2]
    check(gt, { 1, 5, 100 })   -- a tie at 2: half to the tensor, half to the update
    check(gu, { 5, 0 })
    local g2 = mg.grad(function(a)
      return mg.sum(mg.tensor_scatter_nd_update(a, mg.tensor { { 2 } }, f32 { 0 }) * f32 { 1, 10, 100 })
    end)(t)
    check(g2, { 1, 0, 100 })   -- the overwritten element gets nothing
  end)
end)

describe("segments", function()
  local d = f32 { 1, 2, 3, 4, 5 }
  local ids = mg.tensor { 1, 1, 2, 4, 4 }
  it("reduce sorted segments (TF; empty segments 0, prod 1)", function()
    check(mg.segment_sum(d, ids), { 3, 3, 0, 9 })
    check(mg.segment_prod(d, ids), { 2, 3, 1, 20 })
    check(mg.segment_max(d, ids), { 2, 3, 0, 5 })
    check(mg.segment_min(d, ids), { 1, 3, 0, 4 })
    check(mg.segment_mean(d, ids), { 1.5, 3, 0, 4.5 })
    check(mg.segment_sum(mg.tensor { { 1, 2 }, { 3, 4 }, { 5, 6 } }, mg.tensor { 1, 2, 2 }), { { 1, 2 }, { 8, 10 } })
    check(mg.segment_sum(d, ids, { num_segments = 6 }), { 3, 3, 0, 9, 0, 0 })
  end)

  it("reduce unsorted segments with ids shaped like data's leading axes", function()
    local u = mg.tensor { 3, 1, 3, 1, 2 }
    check(mg.unsorted_segment_sum(d, u, 4), { 6, 5, 4, 0 })
    check(mg.unsorted_segment_prod(d, u, 4), { 8, 5, 3, 1 })
    -- an empty segment: the dtype's lowest (max) or highest (min) value, as TF
    local lo = mg.full({}, -2 ^ 62, mg.int64) * 2   -- int64's extremes, exact under both Luas
    local hi = lo - 1                                -- (wraps)
    local umax = mg.unsorted_segment_max(mg.tensor { 1, 5, 2 }, mg.tensor { 2, 2, 1 }, 3)
    local umin = mg.unsorted_segment_min(mg.tensor { 1, 5, 2 }, mg.tensor { 2, 2, 1 }, 3)
    check(umax:slice { { 1, 2 } }, { 2, 5 })
    check(umin:slice { { 1, 2 } }, { 2, 1 })
    assert.is_true(mg.equal(umax[3], lo):item() and mg.equal(umin[3], hi):item())
    check(mg.unsorted_segment_max(f32 { 1 }, mg.tensor { 1 }, 2), { 1, -3.4028234663852886e38 })
    check(mg.unsorted_segment_sum(mg.tensor { { 1, 2 }, { 3, 4 } }, mg.tensor { { 2, 1 }, { 1, 1 } }, 2), { 9, 1 })
  end)

  it("match a Lua reference on large inputs (several threads)", function()
    local n, m, S = 500, 130, 37
    local vals = lcg_list(n * m, 5)
    local sid = lcg_list(n, 9, S)
    local want, mx = rows_of(S, m, function() return 0 end), rows_of(S, m, function() return -math.huge end)
    local rows = {}
    for r = 1, n do
      rows[r] = {}
      for j = 1, m do
        local v = vals[(r - 1) * m + j]
        rows[r][j] = v
        want[sid[r] + 1][j] = want[sid[r] + 1][j] + v
        if v > mx[sid[r] + 1][j] then mx[sid[r] + 1][j] = v end
      end
      sid[r] = sid[r] + 1
    end
    local data, ids1 = mg.tensor(rows, mg.float64), mg.tensor(sid)
    check(mg.unsorted_segment_sum(data, ids1, S), want, 1e-12)
    check(mg.unsorted_segment_max(data, ids1, S), mx, 0)
    local order = mg.argsort(ids1)
    check(mg.segment_sum(mg.take(data, order, 1), mg.take(ids1, order, 1)), want, 1e-12)
  end)

  it("refuse unsorted ids, ids out of range and mis-shaped ids", function()
    fails(function() return mg.segment_sum(d, mg.tensor { 2, 1, 2, 4, 4 }) end,
      "segment_sum: segment_ids must be sorted: id 1 at position 2 follows 2", "unsorted_segment_sum")
    fails(function() return mg.unsorted_segment_sum(d, mg.tensor { 2, 1, 2, 4, 5 }, 4) end,
      "unsorted_segment_sum: segment id 5 at position (5) is out of range for 4 segments (valid: 1..4)")
    fails(function() return mg.segment_max(d, mg.tensor { 0, 1, 1, 1, 1 }, { num_segments = 2 }) end,
      "segment ids count from 1")
    fails(function() return mg.segment_sum(d, mg.tensor { 1, 1 }) end, "segment_ids of shape (2) do not fit data of shape (5)")
    fails(function() return mg.segment_sum(d, ids, { num_segment = 3 }) end, "unknown option 'num_segment'")
    fails(function() return mg.segment_mean(mg.tensor { 1, 2 }, mg.tensor { 1, 1 }) end, "segment_mean: data must be float32")
    fails(function() return mg.unsorted_segment_sum(mg.tensor { true }, mg.tensor { 1 }, 1) end, "data is bool")
  end)

  it("differentiate: sum reads g back per row, max/min share ties, prod is exact at zeros", function()
    check(mg.grad(function(x) return mg.sum(mg.segment_sum(x, ids) * f32 { 1, 10, 100, 1000 }) end)(d),
      { 1, 1, 10, 1000, 1000 })
    check(mg.grad(function(x) return mg.sum(mg.segment_max(x, mg.tensor { 1, 1, 1 })) end)(f32 { 2, 2, 1 }),
      { 0.5, 0.5, 0 })
    check(mg.grad(function(x) return mg.sum(mg.segment_prod(x, mg.tensor { 1, 1, 1, 2, 2 })) end)(f32 { 2, 0, 3, 0, 0 }),
      { 0, 6, 0, 0, 0 })
  end)

  it("stage with num_segments, and say to give it otherwise", function()
    local f = mg.func(function(x, i) return mg.segment_sum(x, i, { num_segments = 4 }) + mg.unsorted_segment_sum(x, i, 4) end)
    check(f(d, ids), { 6, 6, 0, 18 })
    local g = mg.func(function(x, i) return mg.segment_sum(x, i) end)
    fails(function() return g(d, ids) end, "segment_sum: the number of segments is the last segment id", "num_segments = n")
  end)
end)

describe("argwhere and where(cond)", function()
  it("give the 1-based coordinates of the true elements, row-major, int64 (tf.where)", function()
    local w = mg.where(mg.tensor { { true, false }, { false, true } })
    assert.equal("int64", w.dtype)
    check(w, { { 1, 1 }, { 2, 2 } })
    check(mg.where(mg.tensor { 0, 3, 0, 1 }), { { 2 }, { 4 } })           -- nonzero numbers count as true
    check(mg.argwhere(f32 { 0 / 0, 0 }), { { 1 } })                         -- NaN is nonzero
    assert.same({ 0, 2 }, mg.where(mg.zeros({ 2, 3 }, mg.bool)).shape)
    assert.same({ 1, 0 }, mg.where(mg.tensor(true)).shape)
  end)

  it("keep the three-argument select", function()
    check(mg.where(mg.tensor { true, false }, mg.tensor { 1, 2 }, mg.tensor { 3, 4 }), { 1, 4 })
    check(mg.where(mg.tensor { true, false }, 1, 0), { 1, 0 })
  end)

  it("count across threads in order (large, strided)", function()
    local n, m = 300, 250
    local vals = lcg_list(n * m, 17, 7)
    local x = mg.tensor(vals):reshape { n, m }:transpose()
    local want = {}
    for i = 1, m do
      for j = 1, n do
        if vals[(j - 1) * m + i] == 0 then want[#want + 1] = { i, j } end
      end
    end
    check(mg.where(mg.equal(x, 0)), want)
  end)

  it("refuse staging, naming the op and the fixed-shape alternative", function()
    local f = mg.func(function(x) return mg.where(x) end)
    fails(function() return f(mg.tensor { 1, 0 }) end, "where: the size of the result depends on the values", "mg.where(cond, x, y)")
  end)
end)

describe("boolean_mask and x[mask], x[idx]", function()
  local x = mg.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
  it("select by mask on leading axes or from an axis (tf.boolean_mask)", function()
    check(mg.boolean_mask(x, mg.tensor { false, true }), { { 4, 5, 6 } })
    check(mg.boolean_mask(x, mg.tensor { false, true, true }, { axis = 2 }), { { 2, 3 }, { 5, 6 } })
    check(mg.boolean_mask(x, mg.tensor { { true, false, true }, { false, false, true } }), { 1, 3, 6 })
    check(x[mg.greater(x, 2)], { 3, 4, 5, 6 })
    check(x[mg.tensor { true, false }], { { 1, 2, 3 } })
    assert.same({ 0, 3 }, x[mg.tensor { false, false }].shape)
  end)

  it("pick rows by an integer tensor (take along the first axis, 1-based)", function()
    check(x[mg.tensor { 2, 1, 2 }], { { 4, 5, 6 }, { 1, 2, 3 }, { 4, 5, 6 } })
    check(x[mg.tensor({ { 2 } }, mg.int32)], { { { 4, 5, 6 } } })
    fails(function() return x[mg.tensor { 3 }] end, "take: index 3", "out of range")
  end)

  it("pass gradients back to x", function()
    check(mg.grad(function(t) return mg.sum(t[mg.greater(t, 0)] * 2) end)(f32 { 1, -1, 2 }), { 2, 0, 2 })
    check(mg.grad(function(t) return mg.sum(t[mg.tensor { 1, 1, 3 }]) end)(f32 { 1, -1, 2 }), { 2, 0, 1 })
    check(mg.grad(function(t) return mg.sum(mg.boolean_mask(t, mg.tensor { true, false }, { axis = 2 })) end)(
      f32 { { 1, 2 }, { 3, 4 } }), { { 1, 0 }, { 1, 0 } })
  end)

  it("stage x[idx]; x[mask] is eager only and says so", function()
    local g = mg.func(function(t) return t[mg.tensor { 2, 1 }] end)
    check(g(x), { { 4, 5, 6 }, { 1, 2, 3 } })
    local f = mg.func(function(t) return t[mg.greater(t, 1)] end)
    fails(function() return f(x) end, "index: the size of the result depends on the values of the mask")
    local const = mg.tensor { true, false, true }   -- a constant mask: its size is known while tracing
    local c = mg.func(function(t) return t[const] * 2, mg.boolean_mask(t, const) end)
    local a, b = c(f32 { 1, 2, 3 })
    check(a, { 2, 6 })
    check(b, { 1, 3 })
  end)

  it("refuse bad masks and keys at the user's line", function()
    local err = fails(function() return x[mg.tensor { true }] end, "index: mask of shape (1) does not match x of shape (2,3)")
    assert.truthy(err:find("indexing_spec.lua:%d+:"), err)
    err = fails(function() return x[f32 { 1 }] end, "index: a float32 tensor cannot index a tensor")
    assert.truthy(err:find("indexing_spec.lua:%d+:"), err)
    fails(function() return mg.boolean_mask(x, mg.tensor { 1, 0 }) end, "boolean_mask: mask must be a bool tensor, got int64")
    fails(function() return mg.boolean_mask(x, mg.tensor { true }, { axis = 3 }) end, "boolean_mask: axis 3 is out of range")
    fails(function() return mg.boolean_mask(x, mg.tensor { true }, { axes = 1 }) end, "unknown option 'axes'")
    fails(function() return mg.tensor(1)[mg.tensor { true }] end, "cannot index a 0-d tensor")
  end)
end)

describe("x[mask] = v and x[idx] = v", function()
  it("write scalars and tensors of the selected count in place", function()
    local x = mg.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
    x[mg.greater(x, 4)] = 0
    check(x, { { 1, 2, 3 }, { 4, 0, 0 } })
    x[mg.tensor { true, false }] = mg.tensor { 7, 8, 9 }   -- broadcast over the selected rows
    check(x, { { 7, 8, 9 }, { 4, 0, 0 } })
    x[mg.equal(x, 0)] = mg.tensor { 10, 11 }                -- one value per selected element
    check(x, { { 7, 8, 9 }, { 4, 10, 11 } })
    x[mg.tensor { 2 }] = -1
    check(x, { { 7, 8, 9 }, { -1, -1, -1 } })
    x[mg.tensor { 2, 1 }] = mg.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
    check(x, { { 4, 5, 6 }, { 1, 2, 3 } })
    local y = f32 { 1, 2, 3 }
    y[mg.tensor { 3, 1 }] = f32 { 30, 10 }
    check(y, { 10, 2, 30 })
  end)

  it("write through views into their base", function()
    local base = mg.tensor { { 1, 2 }, { 3, 4 } }
    local row = base[2]
    row[mg.tensor { false, true }] = 40
    check(base, { { 1, 2 }, { 3, 40 } })
    local col = base:transpose()[1]   -- a strided view
    col[mg.tensor { 2 }] = 30
    check(base, { { 1, 2 }, { 30, 40 } })
  end)

  it("bump the storage version: a tape that saved the old value refuses it", function()
    local x = f32 { 1, 2, 3 }
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = mg.sum(x * x)
    x[mg.tensor { true, false, true }] = 0
    fails(function() return tape:gradient(y, x) end, "modified by an in-place operation")
  end)

  it("assign Variables (copy on write: a tape's snapshot keeps the old value)", function()
    local v = mg.Variable(f32 { 1, -2, 3 })
    local tape = mg.GradientTape()
    local y = mg.sum(v * v)
    v[mg.less(v, 0)] = 0
    check(v, { 1, 0, 3 })
    check(tape:gradient(y, v), { 2, -4, 6 })
  end)

  it("update Variables functionally in a staged function", function()
    local v = mg.Variable(f32 { 1, -2, 3, -4 })
    local f = mg.func(function(m)
      v[m] = 0
      v[mg.tensor { 1 }] = 9
      return v:read()
    end)
    check(f(mg.less(v, 0)), { 9, 0, 3, 0 })
    check(v, { 9, 0, 3, 0 })
    v:assign(f32 { -1, 1, -1, 1 })
    check(f(mg.less(v, 0)), { 9, 1, 0, 1 })
    local const = mg.tensor { true, false, true, false }
    local g = mg.func(function(u) v[const] = u; return v:read() end)
    check(g(f32 { 10, 30 }), { 10, 1, 30, 1 })
  end)

  it("refuse bad values, symbolic targets and out-of-range rows", function()
    local x = mg.tensor { 1, 2, 3 }
    fails(function() x[mg.tensor { true, false, true }] = 2.5 end, "index assignment: 2.5 does not fit a tensor of dtype int64")
    fails(function() x[mg.tensor { true, false, true }] = mg.tensor { 1, 2, 3 } end,
      "index assignment: a value of shape (3) does not fit the selection of shape (2)")
    fails(function() x[mg.tensor { 4 }] = 1 end, "tensor_scatter_nd_update: index (4)", "shape (3)")
    check(x, { 1, 2, 3 })   -- nothing written
    local k = mg.func(function(t) t[mg.greater(t, 1)] = 0; return t end)
    fails(function() return k(mg.tensor { 1, 2 }) end, "index assignment: this tensor is a value of a staged function")
  end)
end)

describe("staged (mg.func) with unknown sizes", function()
  it("gather_nd, scatters and segments give eager's values and gradients", function()
    local S = { input_signature = { mg.TensorSpec { shape = { -1, 2 }, dtype = mg.float32 },
      mg.TensorSpec { shape = { -1 }, dtype = mg.int64 } } }
    local bodies = {
      function(u, i) return mg.sum(mg.unsorted_segment_sum(u, i, 3) * f32 { { 1, 2 }, { 3, 4 }, { 5, 6 } }) end,
      function(u, i) return mg.sum(mg.gather_nd(u, mg.reshape(i, { -1, 1 })) * 2) end,
      function(u, i) return mg.sum(mg.tensor_scatter_nd_max(u, mg.reshape(i, { -1, 1 }), u * 0.5 + 2)) end,
      function(u, i) return mg.sum(mg.segment_prod(u, mg.sort(i), { num_segments = 3 })) end,
    }
    local x, i = f32 { { 1, 2 }, { 3, 4 }, { 5, 6 }, { 7, 8 } }, mg.tensor { 3, 1, 1, 2 }
    for _, b in ipairs(bodies) do
      local f = mg.func(function(u, ii) return b(u, ii), mg.grad(b)(u, ii) end, S)
      local v, g = f(x, i)
      check(v, b(x, i):item(), 1e-6)
      check(g, mg.grad(b)(x, i):totable(), 1e-6)
    end
  end)
end)
