-- data_spec.lua — mg.data: datasets, transforms, the C prefetch thread, CSV, fit on a Dataset.
local mg = require("moongrad")
local h = require("tests.spec.helpers")
local D = mg.data.Dataset
local INF, UNK = D.INFINITE, D.UNKNOWN
local unpack = table.unpack or unpack

-- The elements of ds as plain Lua values (tensors -> tables), for comparisons.
local function values(ds, n)
  local out = {}
  for _, e in ipairs(ds:as_table(n)) do
    local function plain(v)
      if mg.is_tensor(v) then return v:totable() end
      if type(v) == "table" then
        local t = {}
        for k, x in pairs(v) do t[k] = plain(x) end
        return t
      end
      return v
    end
    out[#out + 1] = plain(e)
  end
  return out
end

local function range_list(a, b)
  local t = {}
  for i = a, b do t[#t + 1] = i end
  return t
end

local function tmpfile(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

describe("Dataset sources", function()
  it("from_tensor_slices slices one tensor, a tuple and a dict", function()
    local x = mg.arange(6):reshape { 3, 2 }
    assert.same({ { 0, 1 }, { 2, 3 }, { 4, 5 } }, values(D.from_tensor_slices(x)))
    local y = mg.tensor { 7, 8, 9 }
    assert.same({ { { 0, 1 }, 7 }, { { 2, 3 }, 8 }, { { 4, 5 }, 9 } }, values(D.from_tensor_slices(x, y)))
    assert.same(values(D.from_tensor_slices(x, y)), values(D.from_tensor_slices { x, y }))
    local d = values(D.from_tensor_slices { image = x, label = y })
    assert.same({ image = { 2, 3 }, label = 8 }, d[2])
    assert.equal(3, D.from_tensor_slices(x):cardinality())
  end)

  it("for x, y in ds:iter() unpacks tuples; {packed=true} does not", function()
    local ds = D.from_tensor_slices(mg.tensor { 1, 2 }, mg.tensor { 3, 4 })
    local got = {}
    for a, b in ds:iter() do got[#got + 1] = a:item() * 10 + b:item() end
    assert.same({ 13, 24 }, got)
    for e in ds:iter { packed = true } do assert.equal(2, #e) end
  end)

  it("from_tensor_slices checks its inputs", function()
    h.fails(function() D.from_tensor_slices(mg.zeros { 3, 2 }, mg.zeros { 4 }) end,
      "from_tensor_slices", "first dimensions differ", "argument 1", "(3,2)", "argument 2", "(4)")
    h.fails(function() D.from_tensor_slices { a = mg.zeros { 3 }, b = mg.zeros { 2 } } end, ".a", ".b", "(3)", "(2)")
    h.fails(function() D.from_tensor_slices(mg.tensor(1)) end, "scalar")
    h.fails(function() D.from_tensor_slices({ 1, 2 }) end, "must be a tensor", "number")
    h.fails(function() D.from_tensor_slices() end, "from_tensor_slices")
  end)

  it("an empty dataset iterates nothing and batches to nothing", function()
    local ds = D.from_tensor_slices(mg.zeros { 0, 3 })
    assert.equal(0, ds:cardinality())
    assert.same({}, values(ds))
    assert.same({}, values(ds:batch(4)))
    assert.same({}, values(ds:shuffle(3, { seed = 1 }):repeat_()))
    assert.equal(0, ds:repeat_():cardinality())
  end)

  it("range follows mg.arange", function()
    assert.same({ 0, 1, 2 }, values(D.range(3)))
    assert.same({ 2, 5, 8 }, values(D.range(2, 10, 3)))
    assert.same({ 5, 3 }, values(D.range(5, 1, -2)))
    assert.equal(0, D.range(3, 1):cardinality())
    assert.equal("float32", D.range(2, "float32"):as_table()[1].dtype)
    h.fails(function() D.range(1, 2, 0) end, "range", "step")
  end)

  it("from_generator takes a coroutine, an iterator or a factory", function()
    local co = coroutine.create(function()
      for i = 1, 3 do coroutine.yield(mg.tensor { i, i }, i * 10) end
    end)
    local ds = D.from_generator(co)
    assert.equal(UNK, ds:cardinality())
    assert.same({ { { 1, 1 }, 10 }, { { 2, 2 }, 20 }, { { 3, 3 }, 30 } }, values(ds))
    h.fails(function() ds:as_table() end, "from_generator", "coroutine is dead")
    local i = 0
    local iter = D.from_generator(function() i = i + 1; if i <= 2 then return i end end)
    assert.same({ 1, 2 }, values(iter))
    h.fails(function() iter:as_table() end, "used up")
    local factory = D.from_generator(function()
      return coroutine.wrap(function() for k = 1, 2 do coroutine.yield(k) end end)
    end)
    assert.same({ 1, 2 }, values(factory))
    assert.same({ 1, 2 }, values(factory))   -- a fresh generator each time
    assert.same({ { 1, 2 } }, values(factory:batch(2)))
  end)

  it("from_generator converts and checks with an output_signature", function()
    local sig = { mg.TensorSpec { shape = { 2 }, dtype = "float32" }, mg.TensorSpec { shape = {}, dtype = "int64" } }
    local co = coroutine.wrap(function() coroutine.yield({ 1, 2 }, 3); coroutine.yield({ 1, 2, 3 }, 4) end)
    local it = D.from_generator(function() return co end, { output_signature = sig }):iter()
    local a, b = it()
    assert.equal("float32", a.dtype)
    assert.equal("int64", b.dtype)
    h.fails(function() it() end, "from_generator", "component 1 of element 2", "shape (3)", "(2)")
    local bad = coroutine.create(function() error("boom") end)
    h.fails(function() D.from_generator(bad):as_table() end, "from_generator", "boom")
    h.fails(function() D.from_generator(42) end, "from_generator", "number")
  end)
end)

describe("Dataset transforms", function()
  local ds = D.range(10)

  it("take and skip, also beyond the end", function()
    assert.same({ 0, 1, 2 }, values(ds:take(3)))
    assert.same(range_list(0, 9), values(ds:take(50)))
    assert.same(range_list(0, 9), values(ds:take(-1)))
    assert.same({}, values(ds:take(0)))
    assert.same({ 8, 9 }, values(ds:skip(8)))
    assert.same({}, values(ds:skip(50)))
    assert.same({}, values(ds:skip(-1)))
    h.fails(function() ds:take(1.5) end, "Dataset:take", "n", "1.5")
    h.fails(function() ds:skip("a") end, "Dataset:skip", "n")
  end)

  it("repeat_ of finite, empty and infinite datasets", function()
    assert.same({ 0, 1, 0, 1, 0, 1 }, values(D.range(2):repeat_(3)))
    assert.same({}, values(D.range(2):repeat_(0)))
    assert.same({ 0, 1, 0, 1, 0 }, values(D.range(2):repeat_(), 5))
    assert.same({ 0, 1, 0 }, values(D.range(2):repeat_():take(3)))
    assert.same({}, values(D.range(0):repeat_()))   -- no endless loop over nothing
    assert.same({ 0, 1, 0 }, values(D.range(2)["repeat"](D.range(2), 2):take(3)))
    h.fails(function() D.range(2):repeat_():as_table() end, "as_table", "infinite")
  end)

  it("map stages fn and falls back to eager when it cannot", function()
    local m = ds:map(function(x) return x * 2, x + 1 end):take(2)
    assert.same({ { 0, 1 }, { 2, 2 } }, values(m))
    assert.equal("staged", m.input.mode)
    local lua_only = ds:map(function(x)
      if x:item() > 4 then return x end   -- needs a value: cannot be traced
      return x * 0
    end)
    assert.same({ 0, 0, 0, 0, 0, 5, 6, 7, 8, 9 }, values(lua_only))
    assert.equal("eager", lua_only.mode)
    local eager = ds:map(function(x) return x + 1 end, { stage = false }):take(1)
    assert.same({ 1 }, values(eager))
    assert.equal("eager", eager.input.mode)
    h.fails(function() ds:map(function() error("nope") end):as_table() end, "Dataset:map", "nope")
    h.fails(function() ds:map(3) end, "Dataset:map", "fn", "number")
  end)

  it("filter with a staged predicate", function()
    local f = ds:filter(function(x) return mg.equal(x % 3, 0) end)
    assert.same({ 0, 3, 6, 9 }, values(f))
    assert.equal("staged", f.mode)
    assert.same({ 1, 2 }, values(ds:filter(function(x) return x:item() == 1 or x:item() == 2 end)))
    h.fails(function() ds:filter(function(x) return mg.stack { x, x } end):as_table() end, "filter", "one-element", "(2)")
    h.fails(function() ds:filter(function() return "yes" end, { stage = false }):as_table() end, "filter", "boolean", "string")
  end)

  it("zip stops at the shortest; concatenate appends", function()
    assert.same({ { 0, 5 }, { 1, 6 } }, values(D.zip { D.range(2), D.range(5, 9) }))
    assert.same({ { 0, 5 }, { 1, 6 } }, values(D.range(3):zip(D.range(5, 7))))
    assert.same({ a = 1, b = 6 }, values(D.zip { a = D.range(3), b = D.range(5, 9) })[2])
    assert.same({ 0, 1, 5, 6 }, values(D.range(2):concatenate(D.range(5, 7))))
    h.fails(function() D.zip { D.range(2), 3 } end, "Dataset.zip", "entry 2")
    h.fails(function() D.range(2):concatenate(D.zip { D.range(1), D.range(1) }):as_table() end, "concatenate", "differ")
  end)

  it("cache replays the first complete iteration", function()
    local calls = 0
    local c = D.range(3):map(function(x) calls = calls + 1; return x end, { stage = false }):cache()
    assert.same({ 0, 1, 2 }, values(c))
    assert.same({ 0, 1, 2 }, values(c))
    assert.equal(3, calls)
    h.fails(function() D.range(1):repeat_():cache() end, "cache", "infinite")
  end)

  it("cardinality through each transform", function()
    local r = D.range(10)
    assert.equal(10, r:map(function(x) return x end):cardinality())
    assert.equal(UNK, r:filter(function() return true end):cardinality())
    assert.equal(4, r:batch(3):cardinality())
    assert.equal(3, r:batch(3, { drop_remainder = true }):cardinality())
    assert.equal(INF, r:repeat_():cardinality())
    assert.equal(30, r:repeat_(3):cardinality())
    assert.equal(5, r:repeat_():take(5):cardinality())
    assert.equal(INF, r:repeat_():skip(5):cardinality())
    assert.equal(7, r:skip(3):cardinality())
    assert.equal(10, r:shuffle(4):cardinality())
    assert.equal(10, r:prefetch(2):cardinality())
    assert.equal(10, r:cache():cardinality())
    assert.equal(3, D.zip { r, D.range(3), r:repeat_() }:cardinality())
    assert.equal(INF, r:concatenate(r:repeat_()):cardinality())
    assert.equal(UNK, D.from_generator(function() return nil end):take(3):cardinality())
    assert.equal(UNK, r:batch(2):unbatch():cardinality())
    assert.equal(-1, mg.data.INFINITE_CARDINALITY)
    assert.equal(-2, mg.data.UNKNOWN_CARDINALITY)
  end)
end)

describe("Dataset batching", function()
  it("batch stacks components; drop_remainder drops the short batch", function()
    local ds = D.from_tensor_slices(mg.arange(10):reshape { 5, 2 }, mg.arange(5))
    local b = values(ds:batch(2))
    assert.equal(3, #b)
    assert.same({ { { 0, 1 }, { 2, 3 } }, { 0, 1 } }, b[1])
    assert.same({ { { 8, 9 } }, { 4 } }, b[3])
    assert.equal(2, #values(ds:batch(2, { drop_remainder = true })))
    assert.same({}, values(ds:batch(9, { drop_remainder = true })))
    h.fails(function() ds:batch(0) end, "Dataset:batch", "batch_size")
    local ragged = D.from_generator(coroutine.wrap(function()
      coroutine.yield(mg.zeros { 2 }); coroutine.yield(mg.zeros { 3 })
    end))
    h.fails(function() ragged:batch(2):as_table() end, "Dataset:batch", "component 1", "(3)", "(2)", "padded_batch")
  end)

  it("padded_batch pads to the longest or to padded_shapes", function()
    local function gen()
      return coroutine.wrap(function()
        for n = 1, 3 do coroutine.yield(mg.full({ n }, n), n) end
      end)
    end
    local b = values(D.from_generator(gen):padded_batch(3))
    assert.same({ { { 1, 0, 0 }, { 2, 2, 0 }, { 3, 3, 3 } }, { 1, 2, 3 } }, b[1])
    local p = values(D.from_generator(gen):padded_batch(2, { padded_shapes = { { 4 }, {} }, padding_values = -1 }))
    assert.same({ { 1, -1, -1, -1 }, { 2, 2, -1, -1 } }, p[1][1])
    assert.same({ { 3, 3, 3, -1 } }, p[2][1])
    h.fails(function() D.from_generator(gen):padded_batch(3, { padded_shapes = { { 2 }, {} } }):as_table() end,
      "padded_batch", "size 3", "padded_shapes")
  end)

  it("unbatch undoes batch", function()
    local ds = D.from_tensor_slices(mg.arange(5), mg.arange(5) * 2)
    assert.same(values(ds), values(ds:batch(2):unbatch()))
  end)
end)

describe("Dataset shuffle", function()
  local ds = D.range(20)
  local function order(d) return values(d) end

  it("is deterministic for a seed and a permutation", function()
    local a = order(ds:shuffle(5, { seed = 42 }))
    assert.same(a, order(ds:shuffle(5, { seed = 42 })))
    assert.are_not.same(a, order(ds:shuffle(5, { seed = 43 })))
    local sorted = {}
    for i, v in ipairs(a) do sorted[i] = v end
    table.sort(sorted)
    assert.same(range_list(0, 19), sorted)
    assert.are_not.same(range_list(0, 19), a)
  end)

  it("a buffer of 1 keeps the order; a small buffer only moves elements forward by its size", function()
    assert.same(range_list(0, 19), order(ds:shuffle(1, { seed = 1 })))
    for i, v in ipairs(order(ds:shuffle(3, { seed = 7 }))) do assert.is_true(v <= i + 1) end
  end)

  it("reshuffles each iteration (and each repeat) unless told not to", function()
    local s = ds:shuffle(20, { seed = 5 })
    local first, second = order(s), order(s)
    assert.are_not.same(first, second)
    local rep = order(ds:shuffle(20, { seed = 5 }):repeat_(2))
    assert.same(first, { unpack(rep, 1, 20) })
    assert.same(second, { unpack(rep, 21, 40) })
    local fixed = ds:shuffle(20, { seed = 5, reshuffle_each_iteration = false })
    assert.same(order(fixed), order(fixed))
  end)

  it("without a seed follows mg.random.seed", function()
    mg.random.seed(3)
    local a = order(ds:shuffle(20))
    mg.random.seed(3)
    assert.same(a, order(ds:shuffle(20)))
  end)

  it("checks its arguments", function()
    h.fails(function() ds:shuffle(0) end, "Dataset:shuffle", "buffer_size")
    h.fails(function() ds:shuffle(4, { seed = -1 }) end, "Dataset:shuffle", "seed")
  end)

  it("the generator matches core/prefetch.c's (known draws)", function()
    local rng = require("moongrad.data.rng")
    local g = rng.new(42, 0)
    local draws = {}
    for i = 1, 3 do draws[i] = rng.next(g) end
    local g2 = rng.new(42, 0)
    assert.equal(draws[1], rng.next(g2))
    for _, d in ipairs(draws) do assert.is_true(d >= 1 and d <= 2147483562) end
  end)
end)

describe("Dataset prefetch", function()
  local threaded = package.loaded["moongrad.prefetch"] ~= nil   -- the C module (not under LuaJIT)
  local x = mg.arange(0, 700 * 6):reshape { 700, 2, 3 }:astype("uint8")
  local y = mg.arange(700)

  local function pipelines()
    local base = D.from_tensor_slices(x, y)
    return {
      base:shuffle(100, { seed = 9 }):batch(32),
      base:shuffle(700, { seed = 1 }):batch(64, { drop_remainder = true }):repeat_(3),
      base:skip(5):take(600):shuffle(50, { seed = 2 }):repeat_(2):batch(100):take(11),
      base:shuffle(30, { seed = 3 }):shuffle(10, { seed = 4, reshuffle_each_iteration = false }):repeat_(2),
      base:repeat_(2):batch(7):skip(3):repeat_(2),
      D.from_tensor_slices { a = x, b = y }:batch(300),
      base:take(0):repeat_():batch(3),
    }
  end

  it("the C thread yields exactly the Lua path's elements, also on the next iterations", function()
    local lua_p, c_p = pipelines(), pipelines()
    for i = 1, #lua_p do
      local c = c_p[i]:prefetch(3)
      local l = lua_p[i]:prefetch(3, { thread = false })
      assert.equal(threaded, c:prefetch_is_threaded())
      assert.is_false(l:prefetch_is_threaded())
      for _ = 1, 2 do   -- a second epoch: the shuffle counters stayed in step
        local a, b = values(l), values(c)
        assert.equal(#a, #b)
        assert.same(a, b)
        local ea, eb = l:as_table(1)[1], c:as_table(1)[1]
        if ea and mg.is_tensor(ea[1]) then
          assert.equal(ea[1].dtype, eb[1].dtype)
          assert.same(ea[1].shape, eb[1].shape)
        end
      end
    end
  end)

  it("pipelines with Lua parts prefetch synchronously, same elements", function()
    local p = D.range(10):map(function(v) return v + 1 end):prefetch(4)
    assert.is_false(p:prefetch_is_threaded())
    assert.same(range_list(1, 10), values(p))
    assert.same(range_list(0, 9), values(D.range(10):prefetch(mg.data.AUTOTUNE)))
    h.fails(function() D.range(3):prefetch(0) end, "Dataset:prefetch", "buffer_size")
  end)

  it("an abandoned iterator stops its thread when collected", function()
    local before = mg.core.bytes_live()
    for _ = 1, 20 do
      local it = D.from_tensor_slices(x, y):shuffle(700, { seed = 1 }):repeat_():batch(64):prefetch(4):iter()
      it()
    end
    collectgarbage(); collectgarbage()
    assert.is_true(mg.core.bytes_live() - before < 64 * 1024)
  end)
end)

describe("CSV", function()
  it("read_csv parses quotes, CRLF, missing values and infers dtypes", function()
    local path = tmpfile('id,score,name,flag\r\n1,2.5,"a, b",1\r\n2,,"say ""hi""\nbye",0\r\n\r\n3,-1e3,plain,1\r\n')
    local cols, names = mg.io.read_csv(path)
    assert.same({ "id", "score", "name", "flag" }, names)
    assert.equal("int64", cols.id.dtype)
    assert.same({ 1, 2, 3 }, cols.id:totable())
    assert.equal("float32", cols.score.dtype)
    local s = cols.score:totable()
    assert.equal(2.5, s[1]); assert.is_true(s[2] ~= s[2]); assert.equal(-1000, s[3])
    assert.same({ "a, b", 'say "hi"\nbye', "plain" }, cols.name)
    local sel = mg.io.read_csv(path, { columns = { "flag" }, dtypes = { flag = "bool" }, defaults = { score = 0 } })
    assert.same({ true, false, true }, sel.flag:totable())
    assert.is_nil(sel.id)
    os.remove(path)
  end)

  it("read_csv options: no header, another delimiter, na_value", function()
    local path = tmpfile("1;NA\n2;4\n")
    local cols = mg.io.read_csv(path, { header = false, delimiter = ";", na_value = "NA", defaults = { [2] = -1 } })
    assert.same({ 1, 2 }, cols[1]:totable())
    assert.same({ -1, 4 }, cols[2]:totable())
    os.remove(path)
  end)

  it("read_csv errors name the line and the column", function()
    local ragged = tmpfile("a,b\n1,2\n3\n")
    h.fails(function() mg.io.read_csv(ragged) end, "read_csv", "line 3 has 1 fields", "header has 2")
    local unclosed = tmpfile('a,b\n1,"x\n')
    h.fails(function() mg.io.read_csv(unclosed) end, "read_csv", "line 2, column 2", "never closed")
    local bad = tmpfile("a,b\n1,x\n")
    h.fails(function() mg.io.read_csv(bad, { dtypes = { b = "float32" } }) end, "line 2, column 'b'", "'x'", "float32")
    h.fails(function() mg.io.read_csv(bad, { columns = { "c" } }) end, "no column 'c'", "a, b")
    local missing = tmpfile("a\n1\n\n,\n")
    h.fails(function() mg.io.read_csv(missing) end, "line 4 has 2 fields")
    local int_missing = tmpfile("a,b\n1,2\n,3\n")
    h.fails(function() mg.io.read_csv(int_missing, { dtypes = { a = "int64" } }) end, "line 3, column 'a'", "missing", "defaults")
    h.fails(function() mg.io.read_csv("/nonexistent/x.csv") end, "read_csv", "cannot open")
    h.fails(function() mg.io.read_csv(bad, { delimiter = "::" }) end, "delimiter")
    h.fails(function() mg.io.read_csv(bad, { bogus = 1 }) end, "unknown option 'bogus'")
    for _, p in ipairs({ ragged, unclosed, bad, missing, int_missing }) do os.remove(p) end
  end)

  it("make_csv_dataset batches (features, label)", function()
    local path = tmpfile("x1,x2,label,tag\n1,2,0,a\n3,4,1,b\n5,6,0,c\n")
    local ds = mg.data.experimental.make_csv_dataset(path, { batch_size = 2, label_name = "label", num_epochs = 1,
      shuffle = false })
    assert.equal(2, ds:cardinality())
    local b = ds:as_table()
    assert.same({ 1, 3 }, b[1][1].x1:totable())
    assert.same({ "a", "b" }, b[1][1].tag)
    assert.same({ 0, 1 }, b[1][2]:totable())
    assert.is_nil(b[1][1].label)
    local forever = mg.data.experimental.make_csv_dataset(path, { batch_size = 2, select_columns = { "x1", "label" },
      label_name = "label", shuffle_seed = 1 })
    assert.equal(INF, forever:cardinality())
    assert.equal(5, #forever:as_table(5))
    h.fails(function() mg.data.experimental.make_csv_dataset(path, { batch_size = 2, label_name = "nope" }) end,
      "label_name 'nope'")
    h.fails(function() mg.data.experimental.make_csv_dataset(path, {}) end, "batch_size")
    os.remove(path)
  end)
end)

describe("fit, evaluate and predict on a Dataset", function()
  local nn = mg.nn
  local function model_and_data()
    mg.random.seed(4)
    local x = mg.random.normal({ 128, 3 })
    local y = mg.cast(mg.greater(mg.sum(x, { axis = 2 }), 0), "int64") + 1
    local m = nn.Sequential { nn.Dense(8, { activation = "relu", input_shape = { 3 } }), nn.Dense(2, { activation = "softmax" }) }
    m:compile { optimizer = mg.optim.Adam(0.05), loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
    return m, x, y
  end

  it("trains from a Dataset of (x, y) batches like from tensors", function()
    local m, x, y = model_and_data()
    local ds = D.from_tensor_slices(x, y):shuffle(128, { seed = 1 }):batch(16):prefetch(2)
    local hist = m:fit(ds, { epochs = 4, verbose = 0, validation_data = D.from_tensor_slices(x, y):batch(64) })
    assert.equal(4, #hist.history.loss)
    assert.is_true(hist.history.loss[4] < hist.history.loss[1])
    assert.is_true(hist.history.val_accuracy[4] > 0.8)
    local loss, acc = m:evaluate(D.from_tensor_slices(x, y):batch(50), { verbose = 0 })
    local loss2, acc2 = m:evaluate(x, y, { verbose = 0, batch_size = 50 })
    h.near(loss, loss2, 1e-5)
    h.near(acc, acc2, 1e-6)
    local p = m:predict(D.from_tensor_slices(x):batch(50))
    assert.same({ 128, 2 }, p.shape)
    h.near(p, m:predict(x):totable(), 1e-5)
  end)

  it("needs steps_per_epoch for an infinite dataset and refuses batch_size", function()
    local m, x, y = model_and_data()
    local inf = D.from_tensor_slices(x, y):repeat_():batch(16)
    h.fails(function() m:fit(inf, { verbose = 0 }) end, "fit", "infinite", "steps_per_epoch")
    local hist = m:fit(inf, { epochs = 2, steps_per_epoch = 3, verbose = 0 })
    assert.equal(2, #hist.history.loss)
    h.fails(function() m:fit(D.from_tensor_slices(x, y):batch(4), { batch_size = 8, verbose = 0 }) end,
      "fit", "batch_size", "ds:batch")
    h.fails(function() m:fit(D.from_tensor_slices(x):batch(4), { verbose = 0 }) end, "fit", "(x, y) pairs")
    h.fails(function() m:evaluate(inf, { verbose = 0 }) end, "evaluate", "infinite", "steps")
    local l = m:evaluate(inf, { steps = 2, verbose = 0 })
    assert.is_number(l)
    h.fails(function() m:fit(D.range(0), { verbose = 0 }) end, "fit", "empty")
  end)
end)
