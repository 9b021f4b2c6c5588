-- movement_spec.lua — views (reshape, permute, transpose, squeeze, unsqueeze,
-- expand, slice, select, contiguous) and copying movement (concat, gather,
-- take, scatter_add, one_hot, pad, tile, flip) as Lua sees them: 1-based
-- axes and index values, which results alias their input (writing through
-- t[i] = v shows it), non-contiguous inputs, and the error messages.

local mg = require "moongrad"

-- fn() must fail with a message containing every one of ... (plain text).
local function fails(fn, ...)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error, the call succeeded")
  err = tostring(err)
  for _, want in ipairs({...}) do
    assert(err:find(want, 1, true), ("message %q does not mention %q"):format(err, want))
  end
  return err
end

-- 1, 2, 3, ... as an int64 tensor of the given shape.
local function iota(shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  return mg.arange(1, n + 1):reshape(shape)
end

local function m23() return mg.tensor{{1, 2, 3}, {4, 5, 6}} end

describe("reshape", function()
  it("is a view of a contiguous tensor and infers one -1", function()
    local t = m23()
    local r = t:reshape{3, -1}
    assert.same({3, 2}, r.shape)
    assert.same({{1, 2}, {3, 4}, {5, 6}}, r:totable())
    assert.is_true(r:shares_storage(t))
    r[2] = mg.tensor{30, 40}           -- writes through to t
    assert.same({{1, 2, 30}, {40, 5, 6}}, t:totable())
  end)
  it("keeps the dtype and accepts a 0-d target for one element", function()
    local t = mg.tensor({{2.5}}, mg.float64)
    local s = t:reshape{}
    assert.equal(0, s.ndim)
    assert.equal("float64", s.dtype)
    assert.equal(2.5, s:item())
    assert.same({1, 1, 1}, s:reshape{1, 1, -1}.shape)
  end)
  it("copies a transposed tensor (the layout does not allow a view)", function()
    local t = m23()
    local r = t:transpose():reshape{6}
    assert.same({1, 4, 2, 5, 3, 6}, r:totable())
    assert.is_false(r:shares_storage(t))
    r[1] = 100
    assert.equal(1, t[1][1]:item())      -- the copy is independent
  end)
  it("stays a view when only size-1 axes are added to a transposed tensor", function()
    local t = m23()
    local r = t:transpose():reshape{3, 1, 2}
    assert.is_true(r:shares_storage(t))
    assert.same({{{1, 4}}, {{2, 5}}, {{3, 6}}}, r:totable())
  end)
  it("views a non-contiguous tensor whose merged axes stay contiguous", function()
    local t = iota{2, 3, 4}
    local p = t:permute{2, 1, 3}          -- (3, 2, 4): the last axis stays contiguous
    local r = p:reshape{3, 2, 2, 2}
    assert.is_true(r:shares_storage(t))
    assert.same({{{1, 2}, {3, 4}}, {{13, 14}, {15, 16}}}, r[1]:totable())
    local flat = p:reshape{24}            -- merging axes 1 and 2 needs a copy
    assert.is_false(flat:shares_storage(t))
    assert.same({1, 2, 3, 4, 13, 14, 15, 16, 5}, {flat[1]:item(), flat[2]:item(), flat[3]:item(),
      flat[4]:item(), flat[5]:item(), flat[6]:item(), flat[7]:item(), flat[8]:item(), flat[9]:item()})
  end)
  it("handles empty tensors", function()
    local e = mg.zeros{0, 3}
    assert.same({3, 0}, e:reshape{3, 0}.shape)
    assert.same({0, 5}, e:reshape{0, 5}.shape)
  end)
  it("reports element counts that do not match", function()
    fails(function() return m23():reshape{4, -1} end, "reshape", "(2,3)", "6 elements", "(4,-1)")
    fails(function() return m23():reshape{7} end, "reshape", "(7)")
    fails(function() return m23():reshape{-1, -1} end, "reshape", "-1")
    fails(function() return mg.zeros{0, 3}:reshape{-1, 0} end, "reshape")
    fails(function() return m23():reshape{2, -3} end, "reshape", "-3")
  end)
end)

describe("permute and transpose", function()
  it("permute reorders axes as a view", function()
    local t = iota{2, 3, 4}
    local p = t:permute{3, 1, 2}
    assert.same({4, 2, 3}, p.shape)
    assert.is_true(p:shares_storage(t))
    -- p[k][i][j] == t[i][j][k] == (i-1)*12 + (j-1)*4 + k
    assert.equal(19, p[3][2][2]:item())
    assert.same({{1, 5, 9}, {13, 17, 21}}, p[1]:totable())
    assert.same({4, 2, 3}, t:permute{-1, 1, -2}.shape)
  end)
  it("permute without axes reverses them (like numpy.transpose)", function()
    assert.same({4, 3, 2}, iota{2, 3, 4}:permute().shape)
  end)
  it("transpose swaps the last two axes by default", function()
    local t = m23()
    local tt = t:transpose()
    assert.same({{1, 4}, {2, 5}, {3, 6}}, tt:totable())
    assert.same({1, 3}, tt:strides())
    assert.is_false(tt:is_contiguous())
    assert.same({4, 3, 2}, iota{2, 3, 4}:transpose(1, 3).shape)
  end)
  it("transpose returns 1-d and 0-d tensors as they are", function()
    assert.same({1, 2, 3}, mg.tensor{1, 2, 3}:transpose():totable())
    assert.equal(5, mg.tensor(5):transpose():item())
  end)
  it("rejects axes that are not a permutation", function()
    fails(function() return iota{2, 3, 4}:permute{1, 1, 2} end, "permute", "twice")
    fails(function() return iota{2, 3, 4}:permute{1, 2} end, "permute", "(2,3,4)")
    fails(function() return iota{2, 3, 4}:permute{1, 2, 4} end, "permute", "4")
    fails(function() return m23():transpose(1, 3) end, "transpose", "3")
  end)
end)

describe("squeeze and unsqueeze", function()
  it("squeeze drops every size-1 axis, or the named ones", function()
    local t = mg.zeros{1, 3, 1, 2}
    assert.same({3, 2}, t:squeeze().shape)
    assert.same({3, 1, 2}, t:squeeze(1).shape)
    assert.same({1, 3, 2}, t:squeeze{axis = -2}.shape)
    assert.same({3, 2}, t:squeeze{axis = {1, 3}}.shape)
    assert.is_true(t:squeeze():shares_storage(t))
    assert.equal(0, mg.zeros{1, 1}:squeeze().ndim)
  end)
  it("an empty axis list names no axis: x comes back as it is (NumPy's axis=())", function()
    local t = mg.zeros{1, 3, 1}
    assert.same({1, 3, 1}, t:squeeze{axis = {}}.shape)
    assert.same({1, 3, 1}, mg.squeeze(t, {}).shape)
    assert.same({3}, t:squeeze().shape)                     -- no axis option: every size-1 axis
  end)
  it("squeeze of an axis that is not of size 1 fails", function()
    fails(function() return mg.zeros{1, 3}:squeeze(2) end, "squeeze", "size 3", "(1,3)")
    fails(function() return mg.zeros{1, 3}:squeeze(3) end, "squeeze", "3")
  end)
  it("unsqueeze counts its axis against the result", function()
    local t = m23()
    assert.same({1, 2, 3}, t:unsqueeze(1).shape)
    assert.same({2, 1, 3}, t:unsqueeze(2).shape)
    assert.same({2, 3, 1}, t:unsqueeze(3).shape)
    assert.same({2, 3, 1}, t:unsqueeze(-1).shape)
    assert.same({2, 1, 3}, t:unsqueeze(-2).shape)
    assert.same({{{1, 2, 3}}, {{4, 5, 6}}}, t:unsqueeze(2):totable())
    assert.same({1}, mg.tensor(7):unsqueeze(1).shape)
    fails(function() return t:unsqueeze(4) end, "unsqueeze", "4")
    fails(function() return mg.zeros{1, 1, 1, 1, 1, 1, 1, 1}:unsqueeze(1) end, "unsqueeze", "9")
  end)
end)

describe("expand", function()
  it("broadcasts size-1 and new leading axes with stride 0", function()
    local t = mg.tensor{{1, 2, 3}}
    local e = t:expand{2, 2, 3}
    assert.same({{{1, 2, 3}, {1, 2, 3}}, {{1, 2, 3}, {1, 2, 3}}}, e:totable())
    assert.same({0, 0, 1}, e:strides())
    assert.is_true(e:shares_storage(t))
    assert.same({4, 3}, t:expand{4, -1}.shape)
    assert.same({{2, 4, 6}, {2, 4, 6}}, (t:expand{2, 3} * 2):totable())
  end)
  it("expanding then reshaping copies", function()
    local e = mg.tensor{{1}, {2}}:expand{2, 3}
    local r = e:reshape{6}
    assert.same({1, 1, 1, 2, 2, 2}, r:totable())
  end)
  it("refuses sizes that are not 1", function()
    fails(function() return mg.ones{3}:expand{2, 4} end, "expand", "(3)", "(2,4)")
    fails(function() return mg.ones{3}:expand{3, 3, 3}:expand{2} end, "expand")
    fails(function() return mg.ones{3}:expand{-1, 3} end, "expand", "(-1,3)")
  end)
end)

describe("slice", function()
  it("takes inclusive 1-based ranges with steps as a view", function()
    local t = iota{4, 5}
    local s = t:slice{{2, 3}, {1, -1, 2}}
    assert.same({{6, 8, 10}, {11, 13, 15}}, s:totable())
    assert.is_true(s:shares_storage(t))
    assert.same({5, 2}, s:strides())
    s[1] = mg.tensor{-1, -2, -3}          -- writes through the strided view
    assert.same({-1, 7, -2, 9, -3}, t[2]:totable())
  end)
  it("keeps an axis of size 1 for a single position and allows empty ranges", function()
    local t = iota{4, 5}
    assert.same({{8}, {13}}, t:slice{{2, 3}, 3}:totable())
    assert.same({0, 5}, t:slice{{3, 2}}.shape)
    assert.same({4, 5}, t:slice{}.shape)
    assert.same({{20}}, t:slice{-1, -1}:totable())
  end)
  it("negative steps walk backwards and copy (no negative strides)", function()
    local t = mg.arange(1, 11)
    assert.same({10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, t:slice{{-1, 1, -1}}:totable())
    assert.same({9, 7, 5, 3, 1}, t:slice{{9, 1, -2}}:totable())
    assert.same({10, 7, 4, 1}, t:slice{{nil, nil, -3}}:totable())
    local r = t:slice{{3, 1, -1}}
    assert.is_false(r:shares_storage(t))
    local m = iota{3, 4}
    assert.same({{12, 10}, {8, 6}, {4, 2}}, m:slice{{-1, 1, -1}, {-1, 1, -2}}:totable())
  end)
  it("chains with transposes (non-contiguous inputs)", function()
    local t = iota{3, 4}:transpose()        -- (4,3)
    local s = t:slice{{2, 4, 2}, {3, 1, -1}}
    assert.same({{10, 6, 2}, {12, 8, 4}}, s:totable())
    local v = t:slice{{1, 2}}
    assert.same({{1, 5, 9}, {2, 6, 10}}, v:totable())
    assert.same({1, 5, 9, 2, 6, 10}, v:reshape{6}:totable())
  end)
  it("rejects bad ranges", function()
    fails(function() return mg.arange(3):slice{{1, 3, 0}} end, "step", "0")
    fails(function() return mg.arange(3):slice{{1, 2}, {1, 2}} end, "slice", "2")
  end)
end)

describe("select and indexing", function()
  it("t[i] selects along the first axis as a view, negative from the end", function()
    local t = m23()
    assert.same({4, 5, 6}, t[2]:totable())
    assert.same({4, 5, 6}, t[-1]:totable())
    assert.equal(3, t[1][3]:item())
    assert.is_true(t[2]:shares_storage(t))
    t[1] = mg.tensor{7, 8, 9}
    assert.same({{7, 8, 9}, {4, 5, 6}}, t:totable())
    t[2] = 0                                -- a broadcast scalar
    assert.same({0, 0, 0}, t[2]:totable())
  end)
  it("mg.select picks along any axis", function()
    local t = m23()
    assert.same({2, 5}, mg.select(t, 2, 2):totable())
    assert.same({3, 6}, t:select(-1, -1):totable())
    assert.same({1, 2, 3}, t:select{axis = 1, index = 1}:totable())
  end)
  it("an index out of range names the op, the axis and the size", function()
    local t = m23()
    fails(function() return t[3] end, "select", "index 3", "axis 1", "size 2", "1..2")
    fails(function() return t[0] end, "select", "index 0")
    fails(function() return mg.select(t, 2, -4) end, "select", "-4", "size 3")
    fails(function() return mg.tensor(1)[1] end, "0-d")
  end)
end)

describe("contiguous", function()
  it("returns a view when already contiguous, a copy otherwise", function()
    local t = m23()
    assert.is_true(t:contiguous():shares_storage(t))
    local c = t:transpose():contiguous()
    assert.is_false(c:shares_storage(t))
    assert.is_true(c:is_contiguous())
    assert.same({2, 1}, c:strides())
    assert.same({{1, 4}, {2, 5}, {3, 6}}, c:totable())
    local e = mg.tensor{1, 2}:expand{2, 2}:contiguous()
    assert.same({{1, 2}, {1, 2}}, e:totable())
  end)
end)

describe("concat", function()
  it("joins along an axis (the first by default)", function()
    local a, b = m23(), mg.tensor{{7, 8, 9}}
    assert.same({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}, mg.concat({a, b}):totable())
    assert.same({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}, mg.concat({a, b}, 1):totable())
    assert.same({{1, 2, 3, 1, 2}, {4, 5, 6, 4, 5}},
      mg.concat({a, mg.tensor{{1, 4}, {2, 5}}:transpose()}, 2):totable())
    assert.same({{1, 2, 3, 1}, {4, 5, 6, 2}}, mg.concat({a, mg.tensor{{1}, {2}}}, -1):totable())
  end)
  it("accepts non-contiguous and empty inputs", function()
    local a = mg.tensor{{1, 2}, {3, 4}}:transpose()
    assert.same({{1, 3}, {2, 4}, {5, 6}}, mg.concat({a, mg.zeros({0, 2}, mg.int64), mg.tensor{{5, 6}}}):totable())
    local parts = {}
    for i = 1, 10 do parts[i] = mg.tensor{i} end
    assert.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, mg.concat(parts):totable())
  end)
  it("promotes dtypes", function()
    local i = mg.tensor{1, 2}
    local f = mg.tensor{0.5}
    local r = mg.concat({i, f})
    assert.equal("float32", r.dtype)
    assert.same({1, 2, 0.5}, r:totable())
    assert.equal("int64", mg.concat({mg.tensor({1}, mg.int32), i}).dtype)
    assert.equal("int32", mg.concat({mg.tensor({1}, mg.int32), mg.tensor({true}, mg.bool)}).dtype)
  end)
  it("reports mismatched shapes and bad axes", function()
    fails(function() return mg.concat({mg.zeros{2, 3}, mg.zeros{2, 4}}) end, "concat", "(2,3)", "(2,4)")
    fails(function() return mg.concat({mg.zeros{2, 3}, mg.zeros{3}}) end, "concat", "(3)")
    fails(function() return mg.concat({m23(), m23()}, 3) end, "concat", "3")
    fails(function() return mg.concat({m23(), m23()}, 0) end, "concat", "0")
    fails(function() return mg.concat({mg.tensor(1), mg.tensor(2)}) end, "concat", "0-d")
  end)
end)

describe("gather", function()
  it("picks along an axis with 1-based indices (torch.gather)", function()
    local t = m23()
    local idx = mg.tensor{{3, 1}, {2, 2}}
    assert.same({{3, 1}, {5, 5}}, mg.gather(t, idx, 2):totable())
    assert.same({{3, 1}, {5, 5}}, t:gather(idx, -1):totable())
    assert.same({{4, 2, 3}}, mg.gather(t, mg.tensor{{2, 1, 1}}, 1):totable())
  end)
  it("takes int32 and uint8 indices, float values, strided inputs", function()
    local x = mg.tensor{{0.5, 1.5}, {2.5, 3.5}}
    assert.same({{1.5}, {2.5}}, mg.gather(x, mg.tensor({{2}, {1}}, mg.int32), 2):totable())
    assert.same({{1.5}, {2.5}}, mg.gather(x, mg.tensor({{2}, {1}}, mg.uint8), 2):totable())
    local xt = x:transpose()                -- {{0.5, 2.5}, {1.5, 3.5}}
    assert.same({{2.5, 0.5}, {3.5, 3.5}}, mg.gather(xt, mg.tensor{{2, 1}, {2, 2}}:transpose():transpose(), 2):totable())
  end)
  it("reports indices out of range with their position", function()
    local t = m23()
    fails(function() return mg.gather(t, mg.tensor{{1}, {4}}, 2) end, "gather", "index 4", "position (2,1)", "1..3")
    fails(function() return mg.gather(t, mg.tensor{{0}, {1}}, 2) end, "gather", "index 0", "position (1,1)")
    fails(function() return mg.gather(t, mg.tensor{{-1}, {1}}, 2) end, "gather", "-1")
    fails(function() return mg.gather(t, mg.ones{2, 1}, 2) end, "gather", "float32")
    fails(function() return mg.gather(t, mg.tensor{1, 2}, 2) end, "gather", "(2)", "(2,3)")
    fails(function() return mg.gather(t, mg.tensor{{1}, {1}, {1}}, 2) end, "gather", "(3,1)")
  end)
end)

describe("take", function()
  it("is an embedding lookup along the first axis by default", function()
    local w = mg.tensor{{0, 0}, {1, 1}, {2, 2}, {3, 3}}
    local e = mg.take(w, mg.tensor{{4, 1}, {2, 2}})
    assert.same({2, 2, 2}, e.shape)
    assert.same({{{3, 3}, {0, 0}}, {{1, 1}, {1, 1}}}, e:totable())
    assert.same({2, 2}, w:take(mg.tensor(3)):totable())   -- a 0-d index drops the axis
  end)
  it("takes along any axis, from strided tensors, with a plain number index", function()
    local t = m23()
    assert.same({{3, 1, 3}, {6, 4, 6}}, mg.take(t, mg.tensor{3, 1, 3}, 2):totable())
    assert.same({{2, 1}, {5, 4}, {8, 7}}, mg.take(iota{3, 3}, mg.tensor{2, 1}, -1):totable())
    assert.same({{4, 1}, {5, 2}, {6, 3}}, mg.take(t:transpose(), mg.tensor{2, 1}, 2):totable())
    assert.same({4, 5, 6}, mg.take(t, 2):totable())
  end)
  it("handles large lookups (parallel path) correctly", function()
    local w = iota{1000, 64}
    local idx = mg.arange(1000, 0, -1)     -- 1000 .. 1
    local e = mg.take(w, idx)
    assert.same({1000, 64}, e.shape)
    assert.equal(999 * 64 + 1, e[1][1]:item())
    assert.equal(64, e[-1][-1]:item())
  end)
  it("reports indices out of range", function()
    fails(function() return mg.take(m23(), mg.tensor{1, 3}) end, "take", "index 3", "position (2)", "1..2")
    fails(function() return mg.take(m23(), mg.tensor{1.5}) end, "take", "float32")
  end)
end)

describe("scatter_add", function()
  it("adds src at the indexed positions, duplicates summed", function()
    local x = mg.zeros{2, 3}
    local idx = mg.tensor{{1, 1}, {3, 2}}
    local src = mg.tensor{{1.5, 2}, {3, 4}}
    local r = mg.scatter_add(x, idx, src, 2)
    assert.same({{3.5, 0, 0}, {0, 4, 3}}, r:totable())
    assert.same({{0, 0, 0}, {0, 0, 0}}, x:totable())  -- x is unchanged
  end)
  it("inverts gather along axis 1 and accepts a scalar src", function()
    local r = mg.scatter_add(mg.zeros({3}, mg.int64), mg.tensor{1, 3, 3, 3}, 1, 1)
    assert.same({1, 0, 3}, r:totable())
    assert.equal("int64", r.dtype)
    local g = mg.scatter_add(mg.zeros{3, 2}, mg.tensor{{3, 1}}, mg.tensor{{5, 6}}, 1)
    assert.same({{0, 6}, {0, 0}, {5, 0}}, g:totable())
  end)
  it("reports bad indices and shapes", function()
    fails(function() return mg.scatter_add(mg.zeros{3}, mg.tensor{4}, mg.ones{1}, 1) end,
      "scatter_add", "index 4", "1..3")
    fails(function() return mg.scatter_add(m23(), mg.tensor{{1, 2}, {1, 2}}, mg.ones{3, 3}, 2) end,
      "scatter_add", "(3,3)", "(2,2)")
  end)
end)

describe("one_hot", function()
  it("adds a last axis with 1 at each 1-based index", function()
    local r = mg.one_hot(mg.tensor{1, 3, 2}, 3)
    assert.equal("float32", r.dtype)
    assert.same({{1, 0, 0}, {0, 0, 1}, {0, 1, 0}}, r:totable())
    local m = mg.one_hot(mg.tensor{{2}, {1}}, 2, mg.int32)
    assert.equal("int32", m.dtype)
    assert.same({{{0, 1}}, {{1, 0}}}, m:totable())
  end)
  it("gives a zero row for indices outside the range with outside = \"zero\" (as TF); by default it raises", function()
    assert.same({{0, 0}, {0, 0}, {0, 0}, {0, 1}}, mg.one_hot(mg.tensor{0, 3, -1, 2}, 2, {outside = "zero"}):totable())
    fails(function() return mg.one_hot(mg.tensor{3, 1}, 2) end, "one_hot: index 3 (element 1) is outside 1..2")
    fails(function() return mg.one_hot(mg.tensor{1, -1}, 2) end, "one_hot: index -1 (element 2) is outside 1..2")
    assert.same({3, 0}, mg.one_hot(mg.tensor{1, 2, 3}, 0).shape)   -- depth 0: no row to fill, nothing refused
  end)
  it("refuses float indices and negative depths", function()
    fails(function() return mg.one_hot(mg.tensor{1.0, 2.5}, 3) end, "one_hot", "float32")
    fails(function() return mg.one_hot(mg.tensor{1}, -1) end, "one_hot", "depth")
  end)
end)

describe("pad", function()
  it("pads with a constant", function()
    local t = mg.tensor{{1, 2}, {3, 4}}
    assert.same({{0, 0, 0, 0}, {0, 1, 2, 0}, {0, 3, 4, 0}},
      t:pad{1, 0, 1, 1}:totable())
    assert.same({{9, 1, 2}, {9, 3, 4}}, t:pad({0, 0, 1, 0}, 9):totable())
    assert.same({{1, 2}, {3, 4}}, t:pad{0, 0, 0, 0}:totable())
  end)
  it("reflects without repeating the edge and replicates the edge", function()
    local t = mg.tensor{{1, 2, 3}, {4, 5, 6}}
    assert.same({{3, 2, 1, 2, 3, 2}, {6, 5, 4, 5, 6, 5}}, t:pad({0, 0, 2, 1}, 0, "reflect"):totable())
    assert.same({{4, 5, 6}, {1, 2, 3}, {4, 5, 6}, {1, 2, 3}}, t:pad({1, 1, 0, 0}, 0, "reflect"):totable())
    assert.same({{1, 1, 2, 3, 3}, {1, 1, 2, 3, 3}, {4, 4, 5, 6, 6}},
      t:pad({1, 0, 1, 1}, 0, "replicate"):totable())
    assert.same({{1, 1, 4}, {2, 2, 5}, {3, 3, 6}}, t:transpose():pad({0, 0, 1, 0}, 0, "replicate"):totable())
  end)
  it("pads float tensors with fractional values", function()
    assert.same({-0.5, 1, -0.5}, mg.tensor({1}, mg.float32):pad({1, 1}, -0.5):totable())
  end)
  it("reports bad paddings", function()
    fails(function() return m23():pad{1, 1, 1} end, "pad", "3", "4")
    fails(function() return m23():pad{0, 0, -1, 0} end, "pad", "negative")
    fails(function() return m23():pad({0, 0, 3, 0}, 0, "reflect") end, "pad", "reflect", "3")
    fails(function() return m23():pad({0, 0, 1, 0}, 0, "wrap") end, "pad", "wrap")
    fails(function() return mg.tensor({1}, mg.uint8):pad({1, 0}, 300) end, "pad", "300", "uint8")
  end)
end)

describe("tile", function()
  it("repeats along each axis", function()
    assert.same({1, 2, 1, 2, 1, 2}, mg.tensor{1, 2}:tile{3}:totable())
    assert.same({{1, 2}, {3, 4}, {1, 2}, {3, 4}}, mg.tensor{{1, 2}, {3, 4}}:tile{2, 1}:totable())
    assert.same({{1, 2, 1, 2}, {1, 2, 1, 2}}, mg.tensor{1, 2}:tile{2, 2}:totable())
    assert.same({{1, 3, 1, 3}, {2, 4, 2, 4}}, mg.tensor{{1, 2}, {3, 4}}:transpose():tile{2}:totable())
    assert.same({2, 0}, m23():tile{1, 0}.shape)
  end)
  it("refuses negative reps", function()
    fails(function() return m23():tile{-1, 1} end, "tile", "-1")
  end)

  -- The gradient of sum(tile(x, reps) * w) at x[j] is the sum of w over the copies of x[j]:
  -- the output positions i with i mod size == j on every axis (reps aligned at the right, as
  -- numpy.tile). Results of up to MG_MAX_DIMS (8) axes (the rule refused more than 4).
  local function tile_grad_oracle(xshape, reps, w)
    local n = math.max(#xshape, #reps)
    local size, outs = {}, w.shape
    for d = 1, n do size[d] = xshape[d - (n - #xshape)] or 1 end
    local wf = w:reshape{ w:numel() }:totable()
    local xn = 1
    for _, s in ipairs(xshape) do xn = xn * s end
    local g = {}
    for j = 1, xn do g[j] = 0.0 end
    for flat = 0, #wf - 1 do
      local rest, j, stride = flat, 0, 1
      local idx = {}
      for d = n, 1, -1 do idx[d] = rest % outs[d]; rest = (rest - idx[d]) / outs[d] end
      for d = n, 1, -1 do j = j + (idx[d] % size[d]) * stride; stride = stride * size[d] end
      g[j + 1] = g[j + 1] + wf[flat + 1]
    end
    return g
  end
  local tile_cases = {
    { { 2, 3 }, { 2, 1 } },
    { { 1, 1, 1, 1, 2 }, { 2, 1, 1, 1, 2 } },            -- 5-d (the issue's case)
    { { 2, 1, 2, 1, 2 }, { 1, 3, 1, 2, 1 } },
    { { 2, 2 }, { 2, 1, 1, 2, 1 } },                      -- reps longer than x: new leading axes
    { { 1, 2, 1, 2, 1, 1, 2, 1 }, { 2, 1, 2, 1, 1, 2, 1, 2 } },  -- 8-d, MG_MAX_DIMS
    { { 2, 2, 2 }, { 1, 0, 2 } },                         -- a zero rep: no copies, zero gradient
  }
  for i, c in ipairs(tile_cases) do
    it(("gradient of a %d-d tile (case %d) sums the copies"):format(math.max(#c[1], #c[2]), i), function()
      local x = mg.random.uniform(c[1], -1, 1, mg.float64, i)
      local y = mg.tile(x, c[2])
      local w = mg.random.uniform(y.shape, -1, 1, mg.float64, 100 + i)
      local g = mg.grad(function(v) return mg.sum(mg.tile(v, c[2]) * w) end)(x)
      assert.same(c[1], g.shape)
      local want, got = tile_grad_oracle(c[1], c[2], w), g:reshape{ g:numel() }:totable()
      for j = 1, #want do assert.is_true(math.abs(got[j] - want[j]) < 1e-12, ("element %d: %g vs %g"):format(j, got[j], want[j])) end
      local staged = mg.func(function(v)
        local tape = mg.GradientTape()
        tape:watch(v)
        local l = mg.sum(mg.tile(v, c[2]) * w)
        tape:stop()
        return tape:gradient(l, v)
      end)
      local sg = staged(x):reshape{ g:numel() }:totable()
      for j = 1, #want do assert.is_true(math.abs(sg[j] - want[j]) < 1e-12, ("staged element %d"):format(j)) end
    end)
  end
end)

describe("flip", function()
  it("reverses all axes or the named ones", function()
    local t = m23()
    assert.same({{6, 5, 4}, {3, 2, 1}}, t:flip():totable())
    assert.same({{4, 5, 6}, {1, 2, 3}}, t:flip(1):totable())
    assert.same({{3, 2, 1}, {6, 5, 4}}, t:flip{axis = -1}:totable())
    assert.same({{4, 1}, {5, 2}, {6, 3}}, t:transpose():flip(2):totable())
    assert.is_false(t:flip():shares_storage(t))
  end)
  it("an empty axis list names no axis: x unchanged (it flipped every axis)", function()
    local t = m23()
    assert.same({{1, 2, 3}, {4, 5, 6}}, t:flip{axis = {}}:totable())
    assert.same({{1, 2, 3}, {4, 5, 6}}, mg.flip(t, {}):totable())
    assert.same({1, 2, 3}, mg.flip(mg.tensor{1, 2, 3}, {axis = {}}):totable())
    assert.same({{6, 5, 4}, {3, 2, 1}}, t:flip():totable())  -- no axis option: every axis
    local w = mg.tensor({1, 2}, mg.float32)
    local g = mg.grad(function(v) return mg.sum(mg.flip(v, {axis = {}}) * w) end)(mg.tensor({5, 7}, mg.float32))
    assert.same({1, 2}, g:totable())
  end)
  it("refuses an axis named twice", function()
    fails(function() return m23():flip{1, 1} end, "flip", "twice")
  end)
end)

describe("large tensors", function()
  it("copies transposed layouts correctly on every thread", function()
    local n = 300
    local t = mg.arange(n * n):reshape{n, n}
    local r = t:transpose():reshape{n * n}
    for _, k in ipairs({0, 1, 299, 300, 12345, 89999}) do
      local i, j = k % n, math.floor(k / n)  -- r[k] = t[i][j] (0-based)
      assert.equal(i * n + j, r[k + 1]:item())
    end
    local f = t:flip()
    assert.equal(n * n - 1, f[1][1]:item())
    assert.equal(0, f[-1][-1]:item())
    local p = t:pad({1, 1, 1, 1}, -1)
    assert.same({302, 302}, p.shape)
    assert.equal(-1, p[1][1]:item())
    assert.equal(0, p[2][2]:item())
  end)
end)
