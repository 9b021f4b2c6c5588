-- graph_file_spec.lua — mg.export and mg.load_graph (graph files, core/graphfile.c).
--
-- Round trips: an MLP policy, a small CNN, an LSTM layer (its while node) and
-- an AutoGraph loop (while and cond) are exported, loaded back and run; the
-- results must be the staged function's, bit for bit. Then what a file
-- keeps (names, metadata, unknown sizes, Variables frozen at export) and
-- what is refused (Lua calls, assigns, hostile or corrupt files). The C side
-- (no Lua) is tests/core/test_graph_file.c. Portable Lua (5.4 and LuaJIT).

local mg = require "moongrad"
local cases = require "tests.fixtures.graph_cases"
local unpack = table.unpack or unpack

local function tmp() return os.tmpname() end

local function same(a, b)
  if a.dtype ~= b.dtype or #a.shape ~= #b.shape then return false end
  for d = 1, #a.shape do if a.shape[d] ~= b.shape[d] then return false end end
  return mg.all(mg.equal(a, b)):item()
end

-- The staged function of a case: the mg.func itself, or a model's inference call staged.
local function staged(c)
  if type(c.f) == "table" and c.f.predict_step then
    local m = c.f
    return mg.func(function(x) return m(x, false) end)
  end
  return c.f
end

describe("mg.export / mg.load_graph round trips", function()
  for _, c in ipairs(cases.all(mg)) do
    it(c.name .. " agrees exactly with the staged function", function()
      local path = tmp()
      mg.export(c.f, path, { signature = c.signature, metadata = { case = c.name } })
      local g = mg.load_graph(path)
      os.remove(path)
      local want = { staged(c)(unpack(c.inputs)) }
      local got = { g(unpack(c.inputs)) }
      assert.are.equal(#want, #got)
      for i = 1, #want do assert.is_true(same(got[i], want[i]), c.name .. " output " .. i) end
      assert.are.equal(c.name, g.metadata.case)
      assert.are.equal(c.signature[1].name, g.input_names[1])
      -- inputs by name give the same
      local named = {}
      for i, s in ipairs(c.signature) do named[s.name] = c.inputs[i] end
      local again = { g(named) }
      for i = 1, #want do assert.is_true(same(again[i], want[i])) end
    end)
  end

  -- the demo CNN itself (examples/fashion_mnist_cnn.lua's model, 3.3M weights), not only a small one
  it("the demo CNN (make demo's model) agrees exactly with the staged function", function()
    local nn = mg.nn
    mg.random.seed(7)
    local model = nn.Sequential {
      nn.Rescaling(1 / 255, { input_shape = { 28, 28 } }),
      nn.Reshape { 28, 28, 1 },
      nn.Conv2D(32, 5, { padding = "same", activation = "relu" }),
      nn.MaxPooling2D(2),
      nn.Conv2D(64, 5, { padding = "same", activation = "relu" }),
      nn.MaxPooling2D(2),
      nn.Flatten(),
      nn.Dense(1024, { activation = "relu" }),
      nn.Dropout(0.3),
      nn.Dense(10, { activation = "softmax" }),
    }
    local x = mg.random.uniform({ 4, 28, 28 }, 0, 255)
    local path = tmp()
    mg.export(model, path, { signature = { mg.TensorSpec { shape = { -1, 28, 28 }, dtype = "float32", name = "image" } } })
    local g = mg.load_graph(path)
    os.remove(path)
    local want = mg.func(function(t) return model(t, false) end)(x)
    assert.is_true(same(g(x), want))
    assert.are.same({ 4, 10 }, g(x).shape)
  end)

  it("the LSTM and the loop keep their while nodes", function()
    for _, c in ipairs(cases.all(mg)) do
      if c.name == "lstm" or c.name == "loop" then
        local path = tmp()
        mg.export(c.f, path, { signature = c.signature })
        local g = mg.load_graph(path)
        os.remove(path)
        local kinds = {}
        for _, n in ipairs(g:graph()) do kinds[n.kind] = true end
        assert.is_true(kinds["while"], c.name)
      end
    end
  end)

  it("the committed fixture files load and run (the files the C tests use)", function()
    for _, name in ipairs { "mlp", "cnn", "lstm", "loop" } do
      local g = mg.load_graph("tests/fixtures/graphs/" .. name .. ".mgg")
      local io = mg.load("tests/fixtures/graphs/" .. name .. ".io.safetensors")
      local ins = {}
      for i = 1, #g.input_names do ins[i] = io["input_" .. i] end
      local outs = { g(unpack(ins)) }
      for i, y in ipairs(outs) do
        local want = io["output_" .. i]
        assert.are.equal(want.dtype, y.dtype)
        -- written with the baseline kernels; this machine's AVX copies may differ in the last bit
        assert.is_true(mg.allclose(y, want, { rtol = 1e-5, atol = 1e-6 }), name)
      end
    end
  end)
end)

describe("graph files", function()
  it("an unknown batch size stays unknown", function()
    local W = mg.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, "float32")
    local f = mg.func(function(x) return mg.matmul(x, W) end)
    local path = tmp()
    mg.export(f, path, { signature = { mg.TensorSpec { shape = { -1, 3 }, dtype = "float32", name = "x" } } })
    local g = mg.load_graph(path)
    os.remove(path)
    local sig = g:signature()
    assert.are.same({ -1, 3 }, sig.inputs[1].shape)
    assert.are.equal("x", sig.inputs[1].name)
    for _, n in ipairs { 1, 5 } do
      local x = mg.ones({ n, 3 }, "float32")
      assert.is_true(same(g(x), f(x)))
    end
    assert.has_error(function() g(mg.ones({ 2, 4 }, "float32")) end)
  end)

  it("an unknown first size is one batch size shared by the inputs", function()
    local f = mg.func(function(x, y) return x + y end)
    local path = tmp()
    mg.export(f, path, { signature = { mg.TensorSpec { shape = { -1, 3 } }, mg.TensorSpec { shape = { -1, 3 } } } })
    local g = mg.load_graph(path)
    os.remove(path)
    assert.are.same({ { 2, 2, 2 }, { 2, 2, 2 } }, g(mg.ones({ 2, 3 }, "float32"), mg.ones({ 2, 3 }, "float32")):totable())
    local ok, err = pcall(g, mg.ones({ 2, 3 }, "float32"), mg.ones({ 3, 3 }, "float32"))
    assert.is_false(ok)
    assert.matches("cannot be broadcast", err)
  end)

  it("freezes Variables at their value when exported", function()
    local v = mg.Variable(mg.tensor({ 1, 2 }, "float32"))
    local f = mg.func(function(x) return x * v end)
    local path = tmp()
    mg.export(f, path, { signature = { mg.TensorSpec { shape = { 2 }, dtype = "float32" } } })
    v:assign(mg.tensor({ 10, 20 }, "float32"))
    local g = mg.load_graph(path)
    os.remove(path)
    local y = g(mg.tensor({ 1, 1 }, "float32"))
    assert.are.same({ 1, 2 }, y:totable())
    assert.are.same({ 10, 20 }, f(mg.tensor({ 1, 1 }, "float32")):totable())
  end)

  it("names outputs from a returned table, and by output_names", function()
    local f = mg.func(function(x) return { logits = x * 2, value = mg.sum(x) } end)
    local path = tmp()
    mg.export(f, path, { signature = { mg.TensorSpec { shape = { 3 }, dtype = "float32" } } })
    local g = mg.load_graph(path)
    assert.are.same({ "logits", "value" }, g.output_names)
    assert.are.same({ "input_1" }, g.input_names)
    mg.export(f, path, { signature = { mg.TensorSpec { shape = { 3 }, dtype = "float32" } }, input_names = { "obs" },
      output_names = { "a", "b" } })
    g = mg.load_graph(path)
    assert.are.same({ "a", "b" }, g.output_names)
    assert.are.same({ "obs" }, g.input_names)
    local bytes = assert(io.open(path, "rb")):read("*a")
    os.remove(path)
    local h = mg.load_graph_string(bytes, "policy.mgg")
    local a, b = h(mg.tensor({ 1, 2, 3 }, "float32"))
    assert.are.same({ 2, 4, 6 }, a:totable())
    assert.are.equal(6, b:item())
    assert.matches("^<graph ", tostring(h))
  end)

  it("exports a plain Lua function (AutoGraph converts its control flow)", function()
    local path = tmp()
    mg.export(function(x)
      local s = x
      for _ = 1, 3 do s = s * 2 end
      if mg.sum(s) > 0 then s = s + 1 end
      return s
    end, path, { signature = { mg.TensorSpec { shape = { 2 }, dtype = "float32" } } })
    local g = mg.load_graph(path)
    os.remove(path)
    assert.are.same({ 9, 17 }, g(mg.tensor({ 1, 2 }, "float32")):totable())
    assert.are.same({ -8, -16 }, g(mg.tensor({ -1, -2 }, "float32")):totable())
  end)

  it("refuses graphs that call Lua or change Variables, naming why", function()
    local path = tmp()
    local f = mg.func(function(x)
      return mg.lua_function(function(t) return t end, { x }, { "float32" })
    end)
    local ok, err = pcall(mg.export, f, path, { signature = { mg.TensorSpec { shape = { 2 }, dtype = "float32" } } })
    assert.is_false(ok)
    assert.matches("calls Lua", err)
    local v = mg.Variable(mg.zeros({ 2 }, "float32"))
    local h = mg.func(function(x) v:assign(x); return x end)
    ok, err = pcall(mg.export, h, path, { signature = { mg.TensorSpec { shape = { 2 }, dtype = "float32" } } })
    assert.is_false(ok)
    assert.matches("assigns a Variable", err)
    ok, err = pcall(mg.export, mg.func(function(x) return x end), path)
    assert.is_false(ok)
    assert.matches("signature", err)
    ok, err = pcall(mg.export, f, path, { signature = {}, colour = 1 })
    assert.is_false(ok)
    assert.matches("colour", err)
    assert.is_false(io.open(path, "rb") ~= nil and #assert(io.open(path, "rb")):read("*a") > 0)
    os.remove(path)
  end)

  it("refuses files that are not graph files, or corrupt, with a clear error", function()
    local path = tmp()
    mg.save(path, { w = mg.ones { 2 } })
    local ok, err = pcall(mg.load_graph, path)
    assert.is_false(ok)
    assert.matches("not a moongrad graph file", err)
    local bytes = assert(io.open("tests/fixtures/graphs/loop.mgg", "rb")):read("*a")
    for _, cut in ipairs { 0, 7, 100, #bytes - 1 } do
      ok, err = pcall(mg.load_graph_string, bytes:sub(1, cut))
      assert.is_false(ok)
      assert.matches("load: ", err)
    end
    ok, err = pcall(mg.load_graph_string, (bytes:gsub('op\\":\\"less', 'op\\":\\"lesz')))
    assert.is_false(ok)
    assert.matches("unknown op 'lesz'", err)
    ok, err = pcall(mg.load_graph, "/nonexistent/x.mgg")
    assert.is_false(ok)
    os.remove(path)
  end)

  it("cannot load a graph while a function is traced", function()
    local f = mg.func(function(x)
      mg.load_graph("tests/fixtures/graphs/mlp.mgg")
      return x
    end)
    local ok, err = pcall(f, mg.ones { 2 })
    assert.is_false(ok)
    assert.matches("while a function is traced", err)
  end)
end)
