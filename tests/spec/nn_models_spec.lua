-- nn_models_spec.lua — the three model styles of mg.nn and how they mix:
-- Sequential (list, add/pop, input from nn.Input / input_shape / first
-- call), functional models (several inputs and outputs, shared layers,
-- intermediate outputs as new models, graph errors), subclassed models
-- (field tracking, the training flag, build), nesting each in the others,
-- summary() and plot_model's DOT.
local mg = require "moongrad"
local nn = mg.nn
local h = require "tests.spec.nn_helpers"
local near, fails, shape = h.near, h.fails, h.shape

describe("Sequential", function()
  it("chains its layers and knows output shapes once the input is known", function()
    local m = nn.Sequential { nn.Input { shape = { 4 } }, nn.Dense(8, { activation = "relu" }), nn.Dense(2) }
    assert.equal(2, #m.layers)
    assert.same({ -1, 2 }, m.outputs[1].shape)
    assert.same({ -1, 8 }, m.layers[1].output.shape)
    assert.equal(4, #m.weights)
    assert.equal("3,2", shape(m(mg.ones { 3, 4 })))
  end)

  it("takes input_shape on the first layer, or builds on the first call", function()
    local a = nn.Sequential { nn.Dense(3, { input_shape = { 5 } }) }
    assert.is_true(a.built)
    assert.same({ -1, 3 }, a.outputs[1].shape)
    local b = nn.Sequential()
    b:add(nn.Dense(3))
    b:add(nn.Dense(1))
    assert.equal(0, #b.weights)
    assert.equal("2,1", shape(b(mg.ones { 2, 7 })))
    assert.equal(4, #b.weights)
    assert.same({ -1, 3 }, b.layers[1].output.shape)
    local c = nn.Sequential { nn.Dense(3) }
    c:build { -1, 6 }
    assert.same({ 6, 3 }, c.layers[1].kernel.shape)
  end)

  it("add and pop", function()
    local m = nn.Sequential { nn.Input { shape = { 2 } } }
    m:add(nn.Dense(4))
    m:add(nn.Dense(5))
    assert.same({ -1, 5 }, m.outputs[1].shape)
    m:pop()
    assert.equal(1, #m.layers)
    assert.same({ -1, 4 }, m.outputs[1].shape)
  end)

  it("raises shape errors when a layer is added, naming it", function()
    local m = nn.Sequential { nn.Input { shape = { 8 } }, nn.Dense(4) }
    fails(function() m:add(nn.Reshape({ 3, 3 }, { name = "bad" })) end, "layer bad (Reshape)", "(None, 4)")
    fails(function() m:add("dense") end, "add expects a layer")
    fails(function() m:add(nn.Dense(2, { name = m.layers[1].name })) end, "already in the model")
  end)
end)

describe("functional models", function()
  it("support several inputs and outputs and shared layers", function()
    local a, b = nn.Input { shape = { 3 }, name = "a" }, nn.Input { shape = { 3 }, name = "b" }
    local shared = nn.Dense(2, { name = "shared", kernel_initializer = "ones" })
    local ha, hb = shared(a), shared(b)
    local sum = nn.Add { name = "sum" } { ha, hb }
    local cat = nn.Concatenate { name = "cat" } { ha, hb }
    local m = nn.Model { inputs = { a, b }, outputs = { sum, cat }, name = "two" }
    assert.equal("two", m.name)
    assert.same({ "a", "b" }, m.input_names)
    assert.same({ "sum", "cat" }, m.output_names)
    assert.equal(2, #m.weights)   -- the shared layer counts once
    local out = m { mg.tensor { { 1.0, 1.0, 1.0 } }, mg.tensor { { 2.0, 0.0, 0.0 } } }
    near(out[1], { { 5, 5 } })
    near(out[2], { { 3, 3, 2, 2 } })
    assert.equal(2, #m:_model_nodes(shared))
  end)

  it("build new models from intermediate outputs", function()
    local x = nn.Input { shape = { 4 } }
    local y = nn.Dense(3, { name = "hidden" })(x)
    local z = nn.Dense(1, { name = "head" })(y)
    local m = nn.Model { inputs = x, outputs = z }
    local features = nn.Model { inputs = m.inputs, outputs = m:get_layer("hidden").output }
    assert.equal(2, #features.layers)
    local t = mg.ones { 2, 4 }
    near(features(t), m:get_layer("hidden")(t))
    assert.equal(m:get_layer("hidden"), features:get_layer("hidden"))
    assert.equal(m:get_layer(2), m:get_layer("hidden"))
    fails(function() m:get_layer("nope") end, "no layer named 'nope'", "hidden")
  end)

  it("report graph errors at definition", function()
    local a, b = nn.Input { shape = { 2 }, name = "ia" }, nn.Input { shape = { 2 }, name = "ib" }
    local s = nn.Add { name = "ab" } { a, b }
    fails(function() nn.Model { inputs = a, outputs = s } end, "graph disconnected", "ib", "ab")
    fails(function() nn.Model { inputs = a, outputs = "x" } end, "must be a Keras tensor")
    local d = nn.Dense(1)
    fails(function() nn.Model { inputs = d(a), outputs = a } end, "not an nn.Input")
  end)

  it("check inputs when called", function()
    local x = nn.Input { shape = { 4 }, name = "img" }
    local m = nn.Model { inputs = x, outputs = nn.Dense(1)(x), name = "chk" }
    fails(function() m(mg.ones { 2, 5 }) end, "model chk", "expects input of shape (None, 4)", "got (2, 5)", "the data has 5 features")
    assert.equal("2,1", shape(m(mg.ones({ 2, 4 }, mg.int64))))
  end)

  it("Keras tensors add merge layers for + - *", function()
    local x = nn.Input { shape = { 2 } }
    local m = nn.Model { inputs = x, outputs = (x + x) * x - x }
    near(m(mg.tensor { { 1.0, 2.0 } }), { { 1, 6 } })
  end)
end)

describe("subclassed models", function()
  local MLP = nn.Model:extend("SpecMLP")
  function MLP:init(units)
    self.hidden = nn.Dense(units, { activation = "relu" })
    self.drop = nn.Dropout(0.5)
    self.out = nn.Dense(2)
  end
  function MLP:call(x, training)
    return self.out(self.drop(self.hidden(x), training))
  end

  it("track layers on fields in assignment order", function()
    local m = MLP(8)
    assert.equal("spec_mlp", m.name:match("^spec_mlp") and "spec_mlp")
    assert.equal(0, #m.weights)
    m(mg.ones { 3, 5 })
    local ws = m.weights
    assert.equal(4, #ws)
    assert.same({ 5, 8 }, ws[1].shape)
    assert.same({ 8, 2 }, ws[3].shape)
    assert.equal(m.hidden, m.layers[1])
    assert.equal(3, #m.layers)
  end)

  it("pass the training flag down (explicitly and inherited)", function()
    local m = MLP(64)
    local x = mg.ones { 4, 3 }
    near(m(x), m(x, false))
    local saw = {}
    local Probe = nn.Layer:extend("SpecProbe")
    function Probe:call(t, training) saw[#saw + 1] = training; return t end
    local Outer = nn.Model:extend("SpecOuter")
    function Outer:init() self.p = Probe() end
    function Outer:call(t) return self.p(t) end   -- no flag given: inherited
    local o = Outer()
    o(x, true)
    o(x)
    assert.same({ true, false }, saw)
  end)

  it("build from a shape and track Variables assigned directly", function()
    local Scale = nn.Layer:extend("SpecScale")
    function Scale:build(s) self.w = mg.Variable(mg.ones { s[#s] }) end
    function Scale:call(t) return t * self.w end
    local m = nn.Sequential { Scale() }
    m:build { -1, 3 }
    assert.equal(1, #m.weights)
    local M2 = nn.Model:extend("SpecBuildable")
    function M2:init() self.d = nn.Dense(2) end
    function M2:call(t) return self.d(t) end
    local b = M2()
    b:build { -1, 6 }
    assert.same({ 6, 2 }, b.weights[1].shape)
  end)

  it("freeze with trainable = false", function()
    local m = MLP(4)
    m(mg.ones { 1, 2 })
    m.hidden.trainable = false
    assert.equal(2, #m.trainable_weights)
    assert.equal(2, #m.non_trainable_weights)
    m.trainable = false
    assert.equal(0, #m.trainable_weights)
  end)
end)

describe("nesting", function()
  it("Sequential and functional models inside a subclassed one, and the reverse", function()
    local x = nn.Input { shape = { 5 } }
    local func = nn.Model { inputs = x, outputs = nn.Dense(2)(x) }
    local Both = nn.Model:extend("SpecBoth")
    function Both:init()
      self.seq = nn.Sequential { nn.Dense(4), nn.Dense(2) }
      self.fn = func
    end
    function Both:call(t) return self.seq(t) + self.fn(t) end
    local b = Both()
    assert.equal("3,2", shape(b(mg.ones { 3, 5 })))
    assert.equal(6, #b.weights)
    -- a subclassed model as a layer of a functional model and of a Sequential
    local i = nn.Input { shape = { 5 } }
    local o = b(i)
    assert.same({ -1, 2 }, o.shape)
    local outer = nn.Model { inputs = i, outputs = nn.Dense(1)(o) }
    assert.equal("3,1", shape(outer(mg.ones { 3, 5 })))
    local seq = nn.Sequential { nn.Input { shape = { 5 } }, b, nn.Dense(3) }
    assert.same({ -1, 3 }, seq.outputs[1].shape)
    assert.equal(8, #seq.weights)
    -- a Sequential inside a functional model
    local s2 = nn.Sequential { nn.Dense(3), nn.Dense(3) }
    local j = nn.Input { shape = { 2 } }
    local f2 = nn.Model { inputs = j, outputs = s2(j) }
    assert.same({ -1, 3 }, f2.outputs[1].shape)
    assert.equal("1,3", shape(f2(mg.ones { 1, 2 })))
  end)
end)

describe("summary and plot_model", function()
  it("print a Keras-like table with parameter counts", function()
    nn.clear_session()
    local m = nn.Sequential({ nn.Input { shape = { 784 } }, nn.Dense(64, { activation = "relu" }), nn.Dense(10) },
      { name = "mlp" })
    local lines, text = h.summary_lines(m)
    assert.equal('Model: "mlp"', lines[1])
    assert.truthy(text:find("dense (Dense)", 1, true))
    assert.truthy(text:find("(None, 64)", 1, true))
    assert.truthy(text:find("50,240", 1, true))
    assert.truthy(text:find("Total params: 50,890", 1, true))
    assert.truthy(text:find("Non-trainable params: 0", 1, true))
  end)

  it("list connections for functional models and non-trainable counts", function()
    local a = nn.Input { shape = { 3 }, name = "in_a" }
    local d = nn.Dense(2, { name = "d" })(a)
    local bn = nn.BatchNormalization { name = "bn" }(d)
    local m = nn.Model { inputs = a, outputs = bn }
    local _, text = h.summary_lines(m)
    assert.truthy(text:find("Connected to", 1, true))
    assert.truthy(text:find("in_a[1][1]", 1, true))
    assert.truthy(text:find("Non-trainable params: 4", 1, true))
  end)

  it("plot_model writes Graphviz DOT (and images with dot)", function()
    local a = nn.Input { shape = { 3 }, name = "pa" }
    local m = nn.Model { inputs = a, outputs = nn.Dense(2, { name = "pd" })(a) }
    local path = h.tmpname(".dot")
    local text = nn.plot_model(m, path, { show_shapes = true })
    local f = assert(io.open(path))
    assert.equal(text, f:read("a"))
    f:close()
    os.remove(path)
    assert.truthy(text:find("digraph", 1, true))
    assert.truthy(text:find("pd (Dense)", 1, true))
    assert.truthy(text:find("L1 -> L2", 1, true))
    assert.truthy(text:find("(None, 2)", 1, true))
    local has_dot = os.execute("command -v dot >/dev/null 2>&1")
    if has_dot == true or has_dot == 0 then
      local png = h.tmpname(".png")
      nn.plot_model(m, png)
      local p = assert(io.open(png, "rb"))
      assert.equal("\137PNG", p:read(4))
      p:close()
      os.remove(png)
    end
  end)
end)
