-- data_more_spec.lua — mg.data's combinators (issue 18): from_tensors, interleave, flat_map,
-- window, enumerate, scan, reduce, shard, group_by_window, bucket_by_sequence_length,
-- sample_from_datasets, text_line, list_files, save/load, and the sequence path end to end
-- (text file -> text_line -> token ids -> buckets -> fit). Expected orders are tf.data's
-- (the examples of its documentation, worked by hand).
local mg = require("moongrad")
local h = require("tests.spec.helpers")
local D = mg.data.Dataset
local INF, UNK = D.INFINITE, D.UNKNOWN

-- An element as plain Lua values (tensors -> numbers or tables).
local function plain(v)
  if mg.is_tensor(v) then return v.ndim == 0 and v:item() or v:totable() end
  if D.is_dataset(v) then return { dataset = true } end
  if type(v) == "table" then
    local t = {}
    for k, x in pairs(v) do t[k] = plain(x) end
    return t
  end
  return v
end

local function values(ds, n)
  local out = {}
  for i, e in ipairs(ds:as_table(n)) do out[i] = plain(e) end
  return out
end

-- The cardinality a dataset reports must be its true count whenever it claims one.
local function check_card(ds)
  local c = ds:cardinality()
  if c >= 0 then assert.equal(c, #ds:as_table()) end
  return c
end

local tmpdir
local function tmp(name)
  if not tmpdir then
    tmpdir = os.tmpname()
    os.remove(tmpdir)
    mg.io.mkdir(tmpdir)
  end
  return tmpdir .. "/" .. name
end

teardown(function() if tmpdir then mg.io.remove_tree(tmpdir) end end)

describe("Dataset.from_tensors", function()
  it("is one element, the value whole, in any structure", function()
    local ds = D.from_tensors(mg.tensor { { 1, 2 }, { 3, 4 } })
    assert.equal(1, check_card(ds))
    assert.same({ { { 1, 2 }, { 3, 4 } } }, values(ds))
    assert.same({ { { 1, 2 }, 7 } }, values(D.from_tensors(mg.tensor { 1, 2 }, 7)))
    local d = D.from_tensors { text = "hi", n = 3 }:as_table()[1]
    assert.equal("hi", d.text)
    assert.is_true(mg.is_tensor(d.n))
    assert.same({ 5, 5, 5 }, values(D.from_tensors(mg.tensor(5)):repeat_(3)))
  end)
  it("refuses nothing and non-values", function()
    h.fails(function() D.from_tensors() end, "Dataset.from_tensors", "got nothing")
    h.fails(function() D.from_tensors { f = print } end, "Dataset.from_tensors", "function")
  end)
end)

describe("Dataset:interleave and flat_map", function()
  local function rep(x) return D.from_tensors(x):repeat_(6) end
  it("follows TF's cycle and block order", function()
    -- tf.data's documented example: range(1, 6).interleave(repeat 6, cycle_length=2, block_length=4)
    local ds = D.range(1, 6):interleave(rep, { cycle_length = 2, block_length = 4 })
    assert.same({ 1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 3, 3, 4, 4, 5, 5, 5, 5, 5, 5 }, values(ds))
    assert.equal(UNK, ds:cardinality())
    -- block_length 1: one from each in turn; a finished one is replaced in its slot
    local lens = D.range(1, 4):interleave(function(x) return D.range(x:item()) end, { cycle_length = 2 })
    assert.same({ 0, 0, 1, 0, 1, 2 }, values(lens))
    assert.same({ 0, 0, 1, 0, 1, 2 }, values(D.range(1, 4):interleave(function(x) return D.range(x:item()) end,
      { cycle_length = 2, num_parallel_calls = mg.data.AUTOTUNE, deterministic = false })))
  end)
  it("defaults cycle_length to AUTOTUNE (4 here) and accepts empty inner datasets", function()
    local ds = D.range(6):interleave(function(x) return D.from_tensors(x):repeat_(2) end)
    assert.same({ 0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 4, 5 }, values(ds))
    assert.same({ 1, 2, 3 }, values(D.range(3):interleave(function(x) return D.range(x:item()):map(function(v) return v + x end) end)))
  end)
  it("flat_map concatenates the datasets made from each element", function()
    local ds = D.from_tensor_slices(mg.tensor { { 1, 2 }, { 3, 4 }, { 5, 6 } })
      :flat_map(function(row) return D.from_tensor_slices(row) end)
    assert.same({ 1, 2, 3, 4, 5, 6 }, values(ds))
    -- tuple elements come unpacked into the function
    local pairs_ = D.from_tensor_slices(mg.tensor { 1, 2 }, mg.tensor { 10, 20 })
      :flat_map(function(a, b) return D.from_tensor_slices(mg.stack({ a, b })) end)
    assert.same({ 1, 10, 2, 20 }, values(pairs_))
  end)
  it("raises for a function that does not return a dataset, and for bad options", function()
    h.fails(function() D.range(3):interleave(function(x) return x end):as_table() end,
      "Dataset:interleave", "map_func must return a Dataset")
    h.fails(function() D.range(3):flat_map(function() error("boom") end):as_table() end, "Dataset:flat_map", "boom")
    h.fails(function() D.range(3):interleave(function() end, { cycle_lenght = 2 }) end, "unknown option 'cycle_lenght'", "cycle_length")
    h.fails(function() D.range(3):interleave(function() end, { block_length = 0 }) end, "block_length")
    h.fails(function() D.range(3):interleave(42) end, "map_func must be a function")
    h.fails(function() D.range(3):flat_map() end, "Dataset:flat_map", "map_func must be a function")
  end)
end)

describe("Dataset:window", function()
  local function batched(ds, n) return ds:flat_map(function(w) return w:batch(n) end) end
  it("gives TF's windows: partial ones at the end unless drop_remainder", function()
    assert.same({ { 0, 1, 2 }, { 2, 3, 4 }, { 4, 5, 6 }, { 6 } }, values(batched(D.range(7):window(3, { shift = 2 }), 3)))
    assert.same({ { 0, 1, 2 }, { 1, 2, 3 }, { 2, 3, 4 }, { 3, 4, 5 }, { 4, 5, 6 } },
      values(batched(D.range(7):window(3, { shift = 1, drop_remainder = true }), 3)))
    assert.same({ { 0, 2, 4 }, { 1, 3, 5 }, { 2, 4, 6 } },
      values(batched(D.range(7):window(3, { shift = 1, stride = 2, drop_remainder = true }), 3)))
    assert.same({ { 0, 1 }, { 2, 3 }, { 4 } }, values(batched(D.range(5):window(2), 2)))
    -- a shift longer than the window skips elements
    assert.same({ { 0, 1 }, { 5, 6 } }, values(batched(D.range(7):window(2, { shift = 5 }), 2)))
  end)
  it("reports the true cardinality for every combination", function()
    for n = 0, 9 do
      for _, size in ipairs({ 1, 2, 3 }) do
        for _, shift in ipairs({ 1, 2, 4 }) do
          for _, stride in ipairs({ 1, 2 }) do
            for _, drop in ipairs({ false, true }) do
              check_card(D.range(n):window(size, { shift = shift, stride = stride, drop_remainder = drop }))
            end
          end
        end
      end
    end
    assert.equal(INF, D.range(3):repeat_():window(2):cardinality())
  end)
  it("makes a window of a tuple a tuple of datasets, of a dict a dict", function()
    local w = D.from_tensor_slices(mg.arange(4), mg.arange(4) * 10):window(2):as_table()[1]
    assert.is_true(D.is_dataset(w[1]) and D.is_dataset(w[2]))
    assert.same({ 0, 1 }, values(w[1]))
    assert.same({ 0, 10 }, values(w[2]))
    local z = D.from_tensor_slices(mg.arange(4), mg.arange(4) * 10):window(2)
      :flat_map(function(a, b) return D.zip(a:batch(2), b:batch(2)) end)
    assert.same({ { { 0, 1 }, { 0, 10 } }, { { 2, 3 }, { 20, 30 } } }, values(z))
    local dw = D.from_tensor_slices { a = mg.arange(3) }:window(3):as_table()[1]
    assert.same({ 0, 1, 2 }, values(dw.a))
  end)
  it("checks its arguments", function()
    h.fails(function() D.range(3):window(0) end, "Dataset:window", "size")
    h.fails(function() D.range(3):window() end, "Dataset:window", "size is required")
    h.fails(function() D.range(3):window(2, { shfit = 1 }) end, "unknown option 'shfit'", "did you mean 'shift'")
    h.fails(function() D.range(3):window(2, { stride = 0 }) end, "stride")
  end)
end)

describe("Dataset:enumerate, scan, reduce and shard", function()
  it("enumerate counts from 1 by default (1-based, as moongrad), from start when given", function()
    local e = D.from_tensor_slices(mg.tensor { 10, 20, 30 }):enumerate()
    assert.same({ { 1, 10 }, { 2, 20 }, { 3, 30 } }, values(e))
    assert.equal(3, check_card(e))
    assert.same({ { 0, 10 }, { 1, 20 } }, values(D.from_tensor_slices(mg.tensor { 10, 20 }):enumerate(0)))
    local got = {}
    for i, xy in D.from_tensor_slices(mg.tensor { 5, 6 }, mg.tensor { 7, 8 }):enumerate():iter() do
      assert.equal("int64", i.dtype)
      got[#got + 1] = { i:item(), plain(xy) }
    end
    assert.same({ { 1, { 5, 7 } }, { 2, { 6, 8 } } }, got)
    h.fails(function() D.range(2):enumerate(1.5) end, "Dataset:enumerate", "start must be an integer")
  end)
  it("scan keeps a running state; reduce folds to one value", function()
    local sums = D.range(1, 6):scan(mg.tensor(0, "int64"), function(s, x) return s + x, s + x end)
    assert.same({ 1, 3, 6, 10, 15 }, values(sums))
    assert.equal(5, sums:cardinality())
    -- a table state and a tuple output; the element is passed whole (TF's scan_func(state, element))
    local ds = D.from_tensor_slices(mg.tensor { 1, 2, 3 }, mg.tensor { 10, 20, 30 })
      :scan({ mg.tensor(0), mg.tensor(1) }, function(st, e)
        local n = { st[1] + e[1], st[2] * e[2] }
        return n, n[1], n[2]
      end)
    assert.same({ { 1, 10 }, { 3, 200 }, { 6, 6000 } }, values(ds))
    assert.equal(15, D.range(1, 6):reduce(mg.tensor(0, "int64"), function(s, x) return s + x end):item())
    local st = D.from_tensor_slices(mg.tensor { 1, 2, 3 }):reduce({ n = mg.tensor(0), s = mg.tensor(0) },
      function(s, x) return { n = s.n + 1, s = s.s + x } end)
    assert.equal(3, st.n:item())
    assert.equal(6, st.s:item())
    assert.equal(7, D.range(0):reduce(mg.tensor(7), function(s) return s end):item())
  end)
  it("scan and reduce refuse a changed state structure, a missing output, an infinite input", function()
    h.fails(function() D.range(3):scan(mg.tensor(0, "int64"), function(s, x) return { s, x }, x end):as_table() end,
      "Dataset:scan", "changed the state's structure")
    h.fails(function() D.range(3):scan(mg.tensor(0, "int64"), function(s) return s end):as_table() end,
      "Dataset:scan", "new state and the output")
    h.fails(function() D.range(3):reduce(mg.tensor(0, "float32"), function(s, x) return mg.cast(s, "int64") + x end) end,
      "Dataset:reduce", "float32()", "int64()")
    h.fails(function() D.range(3):reduce(mg.tensor(0), function() end) end, "Dataset:reduce", "returned nothing")
    h.fails(function() D.range(3):repeat_():reduce(0, function(s) return s end) end, "Dataset:reduce", "infinite")
    h.fails(function() D.range(3):scan(nil, function() end) end, "initial_state is required")
  end)
  it("shard takes every num_shards-th element from the 1-based index", function()
    assert.same({ 0, 3, 6, 9 }, values(D.range(10):shard(3, 1)))
    assert.same({ 1, 4, 7 }, values(D.range(10):shard(3, 2)))
    assert.same({ 2, 5, 8 }, values(D.range(10):shard(3, 3)))
    for n = 0, 7 do for k = 1, 3 do check_card(D.range(n):shard(3, k)) end end
    -- the shards partition the dataset
    local all = {}
    for k = 1, 4 do for _, v in ipairs(values(D.range(11):shard(4, k))) do all[#all + 1] = v end end
    table.sort(all)
    assert.same(values(D.range(11)), all)
    h.fails(function() D.range(10):shard(3, 0) end, "Dataset:shard", "index", "[1, 3]")
    h.fails(function() D.range(10):shard(3, 4) end, "Dataset:shard", "index")
    h.fails(function() D.range(10):shard(0, 1) end, "Dataset:shard", "num_shards")
    h.fails(function() D.range(10):shard(2) end, "index is required")
  end)
end)

describe("Dataset:group_by_window", function()
  it("reduces full windows per key, then the rest in ascending key order", function()
    local ds = D.range(10):group_by_window(function(x) return x % 2 end, function(_, w) return w:batch(5) end,
      { window_size = 5 })
    assert.same({ { 0, 2, 4, 6, 8 }, { 1, 3, 5, 7, 9 } }, values(ds))
    local part = D.range(10):group_by_window(function(x) return x % 3 end, function(_, w) return w:batch(2) end,
      { window_size = 2 })
    assert.same({ { 0, 3 }, { 1, 4 }, { 2, 5 }, { 6, 9 }, { 7 }, { 8 } }, values(part))
    -- window_size_func, and the key handed to reduce_func
    local keyed = D.range(6):group_by_window(function(x) return x % 2 end,
      function(k, w) return w:batch(3):map(function(b) return { k, b } end) end,
      { window_size_func = function(k) return k:item() + 2 end })
    assert.same({ { 0, { 0, 2 } }, { 1, { 1, 3, 5 } }, { 0, { 4 } } }, values(keyed))
  end)
  it("checks its arguments", function()
    local f = function(x) return x end
    h.fails(function() D.range(3):group_by_window(f, f) end, "exactly one of window_size and window_size_func")
    h.fails(function() D.range(3):group_by_window(f, f, { window_size = 2, window_size_func = f }) end, "exactly one")
    h.fails(function() D.range(3):group_by_window(f, f, { windowsize = 2 }) end, "unknown option 'windowsize'")
    h.fails(function() D.range(3):group_by_window(function() return "a" end, f, { window_size = 2 }):as_table() end,
      "key_func must return an integer")
    h.fails(function() D.range(3):group_by_window(f, function() return 1 end, { window_size = 1 }):as_table() end,
      "reduce_func must return a Dataset")
  end)
end)

-- Variable-length int64 sequences as a dataset.
local function seq_ds(seqs)
  return D.from_generator(function()
    local i = 0
    return function()
      i = i + 1
      return seqs[i] and mg.tensor(seqs[i], "int64")
    end
  end)
end

describe("Dataset:bucket_by_sequence_length", function()
  local seqs = { { 1 }, { 2, 2 }, { 3, 3, 3 }, { 4 }, { 5, 5 }, { 6, 6, 6, 6 } }
  local len = function(x) return x.shape[1] end
  it("buckets by length and pads each batch to its longest", function()
    local ds = seq_ds(seqs):bucket_by_sequence_length(len, { 2, 4 }, { 2, 2, 2 })
    assert.same({ { { 2, 2, 0 }, { 3, 3, 3 } }, { { 1 }, { 4 } }, { { 5, 5 } }, { { 6, 6, 6, 6 } } }, values(ds))
  end)
  it("pads to the bucket boundary, drops remainders, or batches without padding", function()
    local ds = seq_ds(seqs):bucket_by_sequence_length(len, { 2, 5 }, { 2, 2, 2 }, { pad_to_bucket_boundary = true })
    assert.same({ { { 2, 2, 0, 0 }, { 3, 3, 3, 0 } }, { { 1 }, { 4 } }, { { 5, 5, 0, 0 }, { 6, 6, 6, 6 } } }, values(ds))
    local dropped = seq_ds(seqs):bucket_by_sequence_length(len, { 2, 4 }, { 2, 2, 2 }, { drop_remainder = true })
    assert.same({ { { 2, 2, 0 }, { 3, 3, 3 } }, { { 1 }, { 4 } } }, values(dropped))
    local same = seq_ds({ { 1, 1 }, { 2 }, { 3, 3 }, { 4 } }):bucket_by_sequence_length(len, { 2 }, { 2, 2 },
      { no_padding = true })
    assert.same({ { { 1, 1 }, { 3, 3 } }, { { 2 }, { 4 } } }, values(same))
    local pv = seq_ds(seqs):bucket_by_sequence_length(len, { 3 }, { 3, 3 }, { padding_values = -1 })
    assert.same({ { { 1, -1 }, { 2, 2 }, { 4, -1 } }, { { 5, 5 } }, { { 3, 3, 3, -1 }, { 6, 6, 6, 6 } } }, values(pv))
  end)
  it("pads tuple elements with padded_shapes; a label is batched", function()
    local ds = seq_ds(seqs):map(function(x) return x, x[1] end)
      :bucket_by_sequence_length(function(x) return x.shape[1] end, { 3, 5 }, { 2, 4, 4 },
        { padded_shapes = { { -1 }, {} }, pad_to_bucket_boundary = true, padding_values = 9 })
    local got = values(ds)
    assert.equal(3, #got)
    assert.same({ { { 1, 9 }, { 2, 2 } }, { 1, 2 } }, got[1])
    assert.same({ { { 4, 9 }, { 5, 5 } }, { 4, 5 } }, got[2])
    assert.same({ { { 3, 3, 3, 9 }, { 6, 6, 6, 6 } }, { 3, 6 } }, got[3])
  end)
  it("checks its arguments", function()
    h.fails(function() seq_ds(seqs):bucket_by_sequence_length(len, { 2, 4 }, { 2, 2 }) end,
      "bucket_batch_sizes must have len(bucket_boundaries) + 1 = 3 entries, got 2")
    h.fails(function() seq_ds(seqs):bucket_by_sequence_length(len, { 4, 2 }, { 2, 2, 2 }) end, "must increase")
    h.fails(function() seq_ds(seqs):bucket_by_sequence_length(len, { 2 }, { 2, 0 }) end, "bucket_batch_sizes[2]")
    h.fails(function() seq_ds(seqs):bucket_by_sequence_length(len, { 2 }, { 2, 2 }, { pad_to_boundary = true }) end,
      "unknown option 'pad_to_boundary'")
    h.fails(function() seq_ds(seqs):bucket_by_sequence_length(len, { 2 }, { 2, 2 }, { pad_to_bucket_boundary = true }):as_table() end,
      "pad_to_bucket_boundary", "length < max(bucket_boundaries) = 2")
    h.fails(function()
      seq_ds(seqs):map(function(x) return x, x end):bucket_by_sequence_length(len, { 9 }, { 2, 2 },
        { pad_to_bucket_boundary = true }):as_table()
    end, "pad_to_bucket_boundary with 2 components of rank >= 1", "give padded_shapes")
    -- one sequence and a scalar label: the sequence axis is padded to the boundary
    local one = seq_ds(seqs):map(function(x) return x, x[1] end):bucket_by_sequence_length(len, { 9 }, { 6, 6 },
      { pad_to_bucket_boundary = true }):as_table()[1]
    assert.same({ 6, 8 }, one[1].shape)
    assert.same({ 6 }, one[2].shape)
    h.fails(function() seq_ds(seqs):bucket_by_sequence_length(len, { 2 }, { 2, 2 }, { no_padding = true, padding_values = 1 }) end,
      "no_padding cannot be combined")
  end)
end)

describe("Dataset.sample_from_datasets", function()
  it("is reproducible under a seed and keeps every element", function()
    local function mix(seed) return D.sample_from_datasets({ D.range(0, 5), D.range(100, 105) }, { seed = seed }) end
    local a = values(mix(7))
    assert.same(a, values(mix(7)))
    assert.equal(10, check_card(mix(7)))
    local sorted = {}
    for i, v in ipairs(a) do sorted[i] = v end
    table.sort(sorted)
    assert.same({ 0, 1, 2, 3, 4, 100, 101, 102, 103, 104 }, sorted)
    -- each input's order is kept
    local lo = {}
    for _, v in ipairs(a) do if v < 100 then lo[#lo + 1] = v end end
    assert.same({ 0, 1, 2, 3, 4 }, lo)
    -- a new iteration repeats the draws unless rerandomize_each_iteration
    local ds = mix(3)
    assert.same(values(ds), values(ds))
    local rr = D.sample_from_datasets({ D.range(0, 50), D.range(100, 150) }, { seed = 3, rerandomize_each_iteration = true })
    assert.are_not.same(values(rr), values(rr))
  end)
  it("draws in proportion to the weights", function()
    local ds = D.sample_from_datasets({ D.from_tensors(mg.tensor(0)):repeat_(), D.from_tensors(mg.tensor(1)):repeat_() },
      { weights = { 0.2, 0.8 }, seed = 11 })
    assert.equal(INF, ds:cardinality())
    local ones = 0
    for _, v in ipairs(values(ds, 4000)) do ones = ones + v end
    assert.is_true(math.abs(ones / 4000 - 0.8) < 0.03, "fraction " .. ones / 4000)
    -- a weight of 0 never draws its dataset
    local z = D.sample_from_datasets({ D.range(5), D.range(100, 103) }, { weights = mg.tensor { 0, 1 }, seed = 1 })
    assert.same({ 100, 101, 102 }, values(z))
  end)
  it("stops at the first empty dataset when asked", function()
    local ds = D.sample_from_datasets({ D.range(2), D.range(100, 200) }, { seed = 5, stop_on_empty_dataset = true })
    local got = values(ds)
    local small = 0
    for _, v in ipairs(got) do if v < 100 then small = small + 1 end end
    assert.equal(2, small)
    assert.is_true(#got < 100)
    assert.equal(UNK, ds:cardinality())
  end)
  it("checks its arguments", function()
    h.fails(function() D.sample_from_datasets({}) end, "Dataset.sample_from_datasets", "non-empty list")
    h.fails(function() D.sample_from_datasets({ D.range(2), 3 }) end, "datasets[2]")
    h.fails(function() D.sample_from_datasets({ D.range(2) }, { weights = { 1, 2 } }) end, "weights has 2 entries for 1")
    h.fails(function() D.sample_from_datasets({ D.range(2), D.range(2) }, { weights = { 1, -1 } }) end, "weight 2")
    h.fails(function() D.sample_from_datasets({ D.range(2), D.range(2) }, { weights = { 0, 0 } }) end, "sum to 0")
    h.fails(function() D.sample_from_datasets({ D.range(2) }, { sed = 1 }) end, "unknown option 'sed'", "seed")
  end)
end)

describe("Dataset.text_line and list_files", function()
  it("reads one string per line, several files in order", function()
    mg.io.write_file_atomic(tmp("a.txt"), "one\r\ntwo\nthree")
    mg.io.write_file_atomic(tmp("b.txt"), "x\n\ny\n")
    mg.io.write_file_atomic(tmp("empty.txt"), "")
    local ds = D.text_line({ tmp("a.txt"), tmp("empty.txt"), tmp("b.txt") })
    assert.same({ "one", "two", "three", "x", "", "y" }, values(ds))
    assert.same(values(ds), values(ds))   -- iterates again
    assert.same({ "one", "x", "two", "", "three", "y" },
      values(D.text_line({ tmp("a.txt"), tmp("b.txt") }, { num_parallel_reads = 2 })))
    assert.same({ "x", "", "y" }, values(D.text_line(tmp("b.txt"))))
    -- strings batch into Lua lists and map eagerly
    assert.same({ { "one", "two" }, { "three" } }, values(D.text_line(tmp("a.txt")):batch(2)))
    assert.same({ 3, 3, 5 }, values(D.text_line(tmp("a.txt")):map(function(s) return #s end)))
    -- lines across the reader's 64 KiB blocks, NUL bytes and a long line kept whole
    local big = {}
    for i = 1, 20000 do big[i] = "line " .. i .. (i % 997 == 0 and "\0x" or "") end
    big[5000] = string.rep("y", 150000)
    mg.io.write_file_atomic(tmp("big.txt"), table.concat(big, "\n"))
    assert.same(big, values(D.text_line(tmp("big.txt"))))
  end)
  it("reads GZIP files in process", function()
    local f = assert(io.open(tmp("plain.txt"), "wb"))
    f:write("alpha\nbeta\n")
    f:close()
    if not os.execute("gzip -c " .. tmp("plain.txt") .. " > " .. tmp("z.txt.gz")) then
      pending("no gzip program to make the test file")
      return
    end
    assert.same({ "alpha", "beta" }, values(D.text_line(tmp("z.txt.gz"), { compression_type = "GZIP" })))
    h.fails(function() D.text_line(tmp("a.txt"), { compression_type = "ZLIB" }) end, "compression_type", "\"GZIP\"")
  end)
  it("lists files by glob, sorted, shuffled reproducibly", function()
    mg.io.mkdir(tmp("g/sub1"), { parents = true })
    mg.io.mkdir(tmp("g/sub2"))
    for _, n in ipairs({ "g/f1.txt", "g/f2.txt", "g/f10.txt", "g/x.csv", "g/sub1/a.txt", "g/sub2/b.txt", "g/sub2/c.dat" }) do
      mg.io.write_file_atomic(tmp(n), n .. "\n")
    end
    local g = tmp("g")
    assert.same({ g .. "/f1.txt", g .. "/f10.txt", g .. "/f2.txt" }, values(D.list_files(g .. "/*.txt", { shuffle = false })))
    assert.same({ g .. "/f1.txt", g .. "/f2.txt" }, values(D.list_files(g .. "/f?.txt", { shuffle = false })))
    assert.same({ g .. "/f2.txt" }, values(D.list_files(g .. "/f[!1].txt", { shuffle = false })))
    assert.same({ g .. "/f1.txt", g .. "/f2.txt" }, values(D.list_files(g .. "/f[0-9].txt", { shuffle = false })))
    assert.same({ g .. "/sub1/a.txt", g .. "/sub2/b.txt" }, values(D.list_files(g .. "/sub*/*.txt", { shuffle = false })))
    assert.same({ g .. "/sub2/c.dat", g .. "/x.csv" },
      values(D.list_files({ g .. "/*.csv", g .. "/sub2/*.dat" }, { shuffle = false })))
    local s1 = values(D.list_files(g .. "/**/*", { seed = 4 }))
    assert.same(s1, values(D.list_files(g .. "/**/*", { seed = 4 })))
    table.sort(s1)
    assert.same(values(D.list_files(g .. "/*/*", { shuffle = false })), s1)
    -- TF's idiom: list_files, then interleave the files' lines
    local lines = values(D.list_files(g .. "/f*.txt", { shuffle = false }):interleave(D.text_line, { cycle_length = 2 }))
    assert.same({ "g/f1.txt", "g/f10.txt", "g/f2.txt" }, lines)
    -- list_files feeds text_line
    assert.same({ "g/f1.txt", "g/f10.txt", "g/f2.txt" }, values(D.text_line(D.list_files(g .. "/f*.txt", { shuffle = false }))))
  end)
  it("raises for missing files, bad patterns and bad options", function()
    h.fails(function() D.text_line(tmp("nope.txt")) end, "Dataset.text_line", "cannot open", "nope.txt")
    h.fails(function() D.text_line({}) end, "Dataset.text_line", "non-empty list")
    -- a directory opens but cannot be read: an error, never an empty dataset
    h.fails(function() D.text_line(tmpdir) end, "Dataset.text_line", "cannot read", "directory")
    h.fails(function() D.text_line(D.from_tensors(tmpdir)):as_table() end, "Dataset.text_line", "cannot read", "directory")
    h.fails(function() D.text_line({ tmp("a.txt"), 3 }) end, "filenames[2] must be a string")
    h.fails(function() D.text_line(D.range(2)):as_table() end, "Dataset.text_line", "not a string")
    h.fails(function() D.text_line(tmp("a.txt"), { buffer = 3 }) end, "unknown option 'buffer'")
    h.fails(function() D.list_files(tmp("none*.txt")) end, "Dataset.list_files", "no files matched")
    h.fails(function() D.list_files(3) end, "Dataset.list_files", "file_pattern")
    h.fails(function() D.list_files(tmp("*"), { shufle = false }) end, "unknown option 'shufle'", "shuffle")
  end)
end)

describe("Dataset:save and Dataset.load", function()
  it("round-trips tensors, strings, numbers, booleans and their structure", function()
    mg.io.write_file_atomic(tmp("s.txt"), "a\n\nccc\xff\0z\n")
    local ds = D.zip(D.from_tensor_slices { x = mg.arange(6):reshape { 3, 2 }, y = mg.tensor({ 1.5, 2.5, 3.5 }) },
      D.text_line(tmp("s.txt")), D.range(3):map(function(i) return i:item() * 0.5, i:item() > 0 end, { stage = false }))
    ds:save(tmp("saved"), { shard_size = 2 })
    local back = D.load(tmp("saved"))
    assert.equal(3, back:cardinality())
    assert.same(values(ds), values(back))
    local e = back:as_table()[3]
    assert.equal("ccc\xff\0z", e[2])
    assert.equal("float32", e[1].y.dtype)
    assert.equal("int64", e[1].x.dtype)
    assert.is_true(e[3][2])
    assert.equal(1.0, e[3][1])
    if math.type then   -- Lua 5.4: an integer comes back an integer, a float a float
      D.from_tensors(3, "x"):map(function(t, s) return t:item(), s, 2.5 end, { stage = false }):save(tmp("ints"))
      local a = D.load(tmp("ints")):as_table()[1]
      assert.equal("integer", math.type(a[1]))
      assert.equal("float", math.type(a[3]))
    end
    local names = mg.io.listdir(tmp("saved"))
    assert.same({ "dataset_spec.json", "shard-00001.safetensors", "shard-00002.safetensors" }, names)
    -- the spec is JSON a reader can use without moongrad
    local spec = mg.io.read_file(tmp("saved/dataset_spec.json"))
    assert.truthy(spec:find('"format": "moongrad-dataset"', 1, true))
    assert.truthy(spec:find('"string": true', 1, true))
  end)
  it("replaces a previous save atomically and composes with the other transforms", function()
    D.range(10):save(tmp("r"))
    D.range(3):map(function(x) return x * 2 end):save(tmp("r"))
    assert.same({ 0, 2, 4 }, values(D.load(tmp("r"))))
    for _, n in ipairs(mg.io.listdir(tmpdir)) do assert.is_nil(n:find("r%.tmp") or n:find("r%.old")) end
    -- a save killed between its renames left only "<path>.old-*": load reads it
    mg.io.rename(tmp("r"), tmp("r.old-123"))
    assert.same({ 0, 2, 4 }, values(D.load(tmp("r"))))
    mg.io.rename(tmp("r.old-123"), tmp("r"))
    local ds = D.load(tmp("r")):shuffle(3, { seed = 1 }):batch(2):prefetch(2):cache()
    assert.equal(2, ds:cardinality())
    local flat = {}
    for _, b in ipairs(values(ds)) do for _, v in ipairs(b) do flat[#flat + 1] = v end end
    table.sort(flat)
    assert.same({ 0, 2, 4 }, flat)
    -- empty datasets and variable shapes
    D.range(0):save(tmp("empty"))
    assert.same({}, values(D.load(tmp("empty"))))
    seq_ds({ { 1 }, { 2, 3 } }):save(tmp("var"))
    assert.same({ { 1 }, { 2, 3 } }, values(D.load(tmp("var"))))
  end)
  it("refuses what it cannot save or load, and leaves no partial directory", function()
    h.fails(function() D.range(3):repeat_():save(tmp("inf")) end, "Dataset:save", "infinite")
    h.fails(function() D.range(3):save(tmp("x"), { shards = 2 }) end, "unknown option 'shards'")
    local mixed = D.from_generator(function()
      local i = 0
      return function()
        i = i + 1
        if i == 1 then return mg.tensor(1) elseif i == 2 then return "two" end
      end
    end)
    h.fails(function() mixed:save(tmp("mixed")) end, "Dataset:save", "element 2 has the structure")
    assert.is_false(mg.io.exists(tmp("mixed")))
    for _, n in ipairs(mg.io.listdir(tmpdir)) do assert.is_nil(n:find("mixed")) end
    local fn = D.from_generator(function()
      local done = false
      return function() if not done then done = true; return { f = print } end end
    end)
    h.fails(function() fn:save(tmp("fn")) end, "Dataset:save", "function")
    h.fails(function() D.load(tmp("nothing_here")) end, "Dataset.load", "no saved dataset")
    -- a directory of other files is never replaced
    mg.io.mkdir(tmp("mine"))
    mg.io.write_file_atomic(tmp("mine/keep.txt"), "keep")
    h.fails(function() D.range(2):save(tmp("mine")) end, "Dataset:save", "holds no saved dataset")
    assert.equal("keep", mg.io.read_file(tmp("mine/keep.txt")))
    mg.io.write_file_atomic(tmp("afile"), "x")
    h.fails(function() D.range(2):save(tmp("afile")) end, "Dataset:save", "not a directory")
    mg.io.mkdir(tmp("bad"))
    mg.io.write_file_atomic(tmp("bad/dataset_spec.json"), "return os.exit()")
    h.fails(function() D.load(tmp("bad")) end, "Dataset.load", "not a moongrad dataset spec")
    mg.io.write_file_atomic(tmp("bad/dataset_spec.json"),
      '{"format":"moongrad-dataset","version":1,"cardinality":1,"element":{"tensor":"float32"},'
      .. '"shards":[{"file":"../../etc/passwd","count":1}]}')
    h.fails(function() D.load(tmp("bad")):as_table() end, "Dataset.load", "bad file name")
    h.fails(function() D.load(tmp("r"), { element_spec = 1 }) end, "unknown option 'element_spec'")
  end)
end)

describe("composition with map, batch, padded_batch, shuffle, prefetch, cache", function()
  it("gives the same elements through every stage, reproducibly", function()
    local function pipeline()
      return D.range(1, 9):interleave(function(x) return D.range(x:item()):map(function(v) return v + x * 10 end) end,
        { cycle_length = 3 }):enumerate():shard(2, 1):map(function(i, v) return v end)
        :shuffle(8, { seed = 2 }):padded_batch(3):prefetch(2)
    end
    local a = values(pipeline())
    assert.same(a, values(pipeline()))
    local n = 0
    for _, b in ipairs(a) do n = n + #b end
    assert.equal(18, n)   -- 36 elements, every other one
    local c = pipeline():cache()
    assert.same(values(c), values(c))
  end)
end)

describe("the sequence path end to end", function()
  it("text file -> text_line -> token ids -> buckets -> fit for one epoch", function()
    -- labelled lines: "pos ..." / "neg ..."; a tiny word tokenizer in Lua (id 1 pads; words from 2)
    local pos = { "good", "great", "fine", "nice", "happy" }
    local neg = { "bad", "awful", "poor", "sad", "ugly" }
    mg.random.seed(3)
    local lines = {}
    for i = 1, 96 do
      local words, label = {}, i % 2 == 0 and "pos" or "neg"
      local pool = label == "pos" and pos or neg
      for k = 1, 1 + (i * 7) % 9 do words[k] = pool[(i + k) % #pool + 1] end
      lines[i] = label .. " " .. table.concat(words, " ")
    end
    mg.io.write_file_atomic(tmp("corpus.txt"), table.concat(lines, "\n") .. "\n")
    local vocab, nextid = {}, 2
    for _, w in ipairs(pos) do vocab[w] = nextid; nextid = nextid + 1 end
    for _, w in ipairs(neg) do vocab[w] = nextid; nextid = nextid + 1 end
    local function encode(line)
      local label, ids = nil, {}
      for w in line:gmatch("%S+") do
        if not label then label = w == "pos" and 2 or 1 else ids[#ids + 1] = vocab[w] end
      end
      return mg.tensor(ids, "int64"), mg.tensor(label, "int64")
    end
    local ds = D.text_line(tmp("corpus.txt")):map(encode)
      :bucket_by_sequence_length(function(ids) return ids.shape[1] end, { 4, 7 }, { 8, 8, 8 }, { padding_values = 1 })
    -- every batch is padded to its own longest sequence with the pad id, labels stacked
    local count = 0
    for ids, y in ds:iter() do
      assert.equal("int64", ids.dtype)
      assert.equal(ids.shape[1], y.shape[1])
      count = count + ids.shape[1]
      local longest = 0
      for _, row in ipairs(ids:totable()) do
        local n = 0
        for _, v in ipairs(row) do if v ~= 1 then n = n + 1 end end
        longest = math.max(longest, n)
      end
      assert.equal(longest, ids.shape[2])
    end
    assert.equal(96, count)
    local nn = mg.nn
    local m = nn.Sequential { nn.Input { shape = { -1 }, dtype = "int64" }, nn.Embedding { input_dim = nextid, output_dim = 8 }, nn.LSTM(8),
      nn.Dense(2, { activation = "softmax" }) }
    m:compile { optimizer = mg.optim.Adam(0.02), loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
    local hist = m:fit(ds:shuffle(16, { seed = 1 }), { epochs = 1, verbose = 0 })
    assert.equal(1, #hist.history.loss)
    local loss = hist.history.loss[1]
    assert.is_true(loss == loss and loss > 0 and loss < 2, "loss " .. tostring(loss))
    -- the padded_batch route trains too, and a few more epochs separate the classes
    local pb = D.text_line(tmp("corpus.txt")):map(encode):shuffle(96, { seed = 2 }):padded_batch(16, { padding_values = 1 })
    local h2 = m:fit(pb, { epochs = 6, verbose = 0 })
    assert.is_true(h2.history.accuracy[6] > 0.9, "accuracy " .. tostring(h2.history.accuracy[6]))
  end)
end)
