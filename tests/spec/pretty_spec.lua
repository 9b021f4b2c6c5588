-- How the REPL shows values (stdlib/moongrad/pretty.lua, called by lua/repl.c for each
-- expression) and the __tostring of the library's objects.
local mg = require("moongrad")
local pretty = require("moongrad.pretty")

describe("pretty.line (the REPL's text of a value)", function()
  it("prints plain tables as Lua constructors, bounded in depth and length", function()
    assert.are.equal("{2, 3}", pretty.line(mg.ones{2, 3}.shape))
    assert.are.equal("{}", pretty.line({}))
    assert.are.equal('{1, "a", {x = 1, y = {z = {...}}}, [10] = true, ["a b"] = 2}',
      pretty.line({ 1, "a", { x = 1, y = { z = { w = { 1 } } } }, [10] = true, ["a b"] = 2 }))
    assert.are.equal("{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... 19 more ..., 29}", pretty.line(mg.arange(30):totable()))
    local cyc = { 1 }
    cyc.self = cyc
    assert.are.equal("{1, self = <cycle>}", pretty.line(cyc))
    local keys = {}
    for i = 1, 40 do keys[string.format("k%02d", i)] = i end
    assert.truthy(pretty.line(keys):find("... 10 more keys", 1, true))
  end)

  it("breaks a table wider than the terminal into one entry per line", function()
    local t = {}
    for i = 1, 8 do t["a_rather_long_key_" .. i] = i end
    local text = pretty.line(t)
    assert.truthy(text:find("^{\n  a_rather_long_key_1 = 1,\n  a_rather_long_key_2 = 2,\n"), text)
    for line in text:gmatch("[^\n]+") do assert.is_true(#line <= 80, line) end
  end)

  it("keeps top-level strings raw and separates values with tabs, as print does", function()
    assert.are.equal("str\t1\tnil", pretty.line("str", 1, nil))
    assert.are.equal('{"str"}', pretty.line({ "str" }))
  end)

  it("names Variables before their values and shortens long tensors inside tables", function()
    local v = mg.Variable(mg.ones{2}, { name = "w" })
    assert.are.equal("Variable(w, shape (2), float32) tensor([1., 1.], dtype=float32)", pretty.line(v))
    assert.are.equal("tensor([1., 1.], dtype=float32)", pretty.line(mg.ones{2}))
    assert.are.equal("{x = tensor(shape (100,100), float32)}", pretty.line({ x = mg.zeros{100, 100} }))
  end)
end)

describe("the library's objects print as values", function()
  it("optimizers, layers, datasets, TensorSpecs, histories, staged and concrete functions", function()
    local opt = mg.optim.Adam{ learning_rate = 0.01 }
    assert.are.equal("<Adam learning_rate=0.01, iterations=0>", tostring(opt))
    assert.are.equal("<SGD learning_rate=0.01, iterations=0>", tostring(mg.optim.SGD{}))
    assert.are.equal("<Dense name=dense_probe, built=false>", tostring(mg.nn.Dense(2, { name = "dense_probe" })))
    assert.are.equal("Dataset<batch, cardinality 2>", tostring(mg.data.Dataset.range(3):batch(2)))
    assert.are.equal("TensorSpec{shape={-1,3}, dtype=float32}", tostring(mg.TensorSpec{ shape = { -1, 3 } }))
    local m = mg.nn.Sequential{ mg.nn.Input{ 3 }, mg.nn.Dense(2) }
    m:compile{ optimizer = "sgd", loss = "mse" }
    local h = m:fit(mg.ones{ 4, 3 }, mg.ones{ 4, 2 }, { epochs = 3, verbose = 0 })
    local last = h.history.loss[3]
    assert.are.equal(string.format("<History 3 epochs: loss=%.4g>", last), tostring(h))
    assert.truthy(pretty.line(h.history):find("^{loss = {"))
    local f = mg.func(function(x) return x * 2 end, { name = "double" })
    assert.are.equal("<staged function double, 0 traces>", tostring(f))
    local cf = f:concrete(mg.ones{ 2, 3 })
    assert.are.equal("<staged function double, 1 trace>", tostring(f))
    assert.are.equal("<concrete function double(float32 (2,3)) -> (float32 (2,3))>", tostring(cf))
  end)
end)
