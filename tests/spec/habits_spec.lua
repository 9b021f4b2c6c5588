-- habits_spec.lua — the habits a TensorFlow, PyTorch or Torch7 user brings to moongrad give a
-- teaching error at the user's own line, never a silent wrong result (issue 16): methods called
-- with a dot, 0-based slices, shapes given as separate numbers, labels counted from 0, the wrong
-- cross-entropy for the labels, inputs of the wrong shape, ipairs over a tensor, Precision on
-- softmax outputs, summary() of an unbuilt model. Each test asserts the message text and that
-- its first line names this file.
local mg = require "moongrad"
local nn = mg.nn

-- fn() must fail at this file's line with a message containing every plain string given.
local function fails_here(fn, ...)
  local ok, e = pcall(fn)
  assert.is_false(ok, "expected an error")
  e = tostring(e)
  assert.truthy(e:find("^[^\n]*habits_spec%.lua:%d+:"), "not at the user's line: " .. e)
  for _, want in ipairs({ ... }) do
    assert.truthy(e:find(want, 1, true), "missing «" .. want .. "» in: " .. e)
  end
  return e
end

describe("a method called with a dot", function()
  it("model.compile{...} and model.fit(x, y) name the colon form", function()
    local model = nn.Sequential { nn.Input { 2 }, nn.Dense(3) }
    fails_here(function() model.compile { optimizer = "adam", loss = "mse" } end,
      "Model.compile was called with a dot", "call it as model:compile{...} (with a colon)")
    fails_here(function() model.fit(mg.ones { 4, 2 }, mg.ones { 4, 3 }) end,
      "first argument (a tensor)", "call it as model:fit(...) (with a colon)")
    fails_here(function() model.summary() end, "call it as model:summary(...) (with a colon)")
    model:compile { optimizer = "adam", loss = "mse" }   -- the colon form still works
    model:fit(mg.ones { 4, 2 }, mg.ones { 4, 3 }, { epochs = 1, verbose = 0 })
  end)

  it("covers layers, optimizers, metrics, callbacks, datasets, tapes and user subclasses", function()
    local layer = nn.Dense(3)
    fails_here(function() layer.build({ 2, 4 }) end, "call it as layer:build{...} (with a colon)")
    local opt = mg.optim.Adam()
    fails_here(function() opt.apply_gradients({}) end, "call it as optimizer:apply_gradients{...}")
    local m = mg.metrics.Mean()
    fails_here(function() m.update_state(mg.ones { 3 }) end, "call it as metric:update_state(...)")
    local cb = mg.callbacks.EarlyStopping()
    fails_here(function() cb.on_epoch_end(1, {}) end, "call it as callback:on_epoch_end(...)")
    local ds = mg.data.Dataset.from_tensor_slices(mg.ones { 4, 2 })
    fails_here(function() ds.map(function(x) return x end) end, "call it as ds:map(...) (with a colon)")
    fails_here(function() ds.batch(2) end, "Dataset.batch was called with a dot", "ds:batch(...)")
    local tape = mg.GradientTape()
    fails_here(function() tape.gradient(mg.ones { 2 }, {}) end, "call it as tape:gradient(...) (with a colon)")
    tape:stop()
    local My = nn.Layer:extend("MyHabitLayer")
    function My:scale(x) return x * 2 end
    local l = My()
    fails_here(function() l.scale(mg.ones { 2 }) end, "MyHabitLayer.scale was called with a dot", "layer:scale(...)")
    assert.are.same({ 2, 2 }, l:scale(mg.ones { 2 }):totable())
    -- static functions (no self) stay callable with a dot
    assert.truthy(mg.data.Dataset.range(3))
  end)
end)

describe("slices count from 1", function()
  local t = mg.arange(10)
  it("refuses 0 and positions past the end, naming the 1-based rule", function()
    local rule = "slices count from 1: {1, 5} are rows 1 to 5"
    fails_here(function() t:slice { { 0, 5 } } end, "slice: range 1 {0, 5} has position 0", rule)
    fails_here(function() t:slice { 11 } end, "position 11, outside axis 1 of size 10", rule)
    fails_here(function() t:slice { { 5, 11 } } end, "position 11", "valid positions are 1..10 or -10..-1")
    fails_here(function() t:slice { { -11, -1 } } end, "position -11")
    local m = mg.zeros { 3, 4 }
    fails_here(function() m:slice { {}, { 0, 2 } } end, "{1, 5} are columns 1 to 5")
    fails_here(function() m:slice { 4 } end, "position 4, outside axis 1 of size 3")
  end)
  it("keeps every valid form, the empty {k, k - 1} and t[i]'s own range check", function()
    assert.are.same({ 0, 1, 2, 3, 4 }, t:slice { { 1, 5 } }:totable())
    assert.are.same({ 7, 8, 9 }, t:slice { { -3 } }:totable())
    assert.are.same({ 9 }, t:slice { 10 }:totable())
    assert.are.same({ 9, 7 }, t:slice { { 10, 7, -2 } }:totable())
    assert.are.same({}, t:slice { { 11, 10 } }:totable())
    assert.are.same({ 10, 0 }, { #mg.split(t, { 10, 0 })[1], #mg.split(t, { 10, 0 })[2] })
    fails_here(function() local _ = t[0] end, "index 0 is out of range for axis 1 of size 10 (valid: 1..10 or -10..-1)",
      "indices count from 1, t[1] is the first and t[-1] the last")
    fails_here(function() t[0] = 1 end, "index 0 is out of range", "indices count from 1")
    fails_here(function() local _ = t[11] end, "index 11 is out of range")
  end)
end)

describe("a shape given as separate numbers", function()
  it("raises 'the shape is a table' for every creation function", function()
    fails_here(function() mg.zeros(3, 3) end, "zeros: the shape is a table: mg.zeros{3, 3}")
    fails_here(function() mg.ones(2, 3, 4) end, "ones: the shape is a table: mg.ones{2, 3, 4}")
    fails_here(function() mg.full(2, 3, 7) end, "full: the shape is a table: mg.full({2, 3}, 7)")
    fails_here(function() mg.random.normal(100, 100) end,
      "random.normal: the shape is a table: mg.random.normal{100, 100}", "mg.random.normal({100}, 100)")
    fails_here(function() mg.normal(100, 100) end, "random.normal: the shape is a table: mg.random.normal{100, 100}")
    fails_here(function() mg.random.uniform(4, 4) end, "mg.random.uniform{4, 4}")
    fails_here(function() mg.random.truncated_normal(4, 4) end, "mg.random.truncated_normal{4, 4}")
    fails_here(function() mg.random.bernoulli(4, 4) end, "mg.random.bernoulli{4, 4}")
    fails_here(function() mg.random.integers(3, 1, 6) end, "mg.random.integers{3, 1, 6}", "mg.random.integers({3}, 1, 6)")
  end)
  it("keeps the table forms and a lone number as a 1-d shape", function()
    assert.are.same({ 3, 3 }, mg.zeros { 3, 3 }.shape)
    assert.are.same({ 3 }, mg.ones(3).shape)
    assert.are.same({ 3 }, mg.ones(3, "float64").shape)
    assert.are.same({ 7, 7, 7 }, mg.full(3, 7):totable())
    assert.are.same({ 100, 100 }, mg.random.normal { 100, 100 }.shape)
    local n = mg.random.normal({ 1000 }, 100)
    assert.is_true(math.abs(n:mean():item() - 100) < 1)
  end)
end)

describe("rows: #t, t[i] and ipairs(t)", function()
  local m = mg.tensor { { 1, 2 }, { 3, 4 }, { 5, 6 } }
  it("ipairs walks rows 1 to #t and stops", function()
    local seen = {}
    for i, row in ipairs(m) do seen[i] = row:totable() end
    assert.are.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, seen)
    assert.are.equal(3, #m)
    fails_here(function() local _ = m[4] end, "index 4 is out of range")   -- only ipairs reads past the end
  end)
  it("for row in t refuses, naming ipairs", function()
    fails_here(function() for _ in m do end end, "a tensor is not an iterator",
      "`for i, row in ipairs(t)` (rows 1 to #t)")
  end)
  it("ipairs in a staged function: known sizes unroll, an unknown size refuses", function()
    local f = mg.func(function(x)
      local s = x[1]
      for i, row in ipairs(x) do if i > 1 then s = s + row end end
      return s
    end, { autograph = false })
    assert.are.same({ 9, 12 }, f(m):totable())
    local g = mg.func(function(x)
      for _, row in ipairs(x) do x = x + row end
      return x
    end, { input_signature = { mg.TensorSpec { shape = { -1, 2 }, dtype = "int64" } }, autograph = false })
    fails_here(function() g(m) end, "ipairs: the number of rows of a traced tensor is unknown while tracing")
  end)
end)

describe("labels count from 1", function()
  local y0 = mg.tensor({ 0, 1, 2 }, "int64")
  local function probs() return mg.softmax(mg.random.normal { 3, 3 }) end
  local RULE = "labels count from 1 (got 0); shift them with y + 1"
  it("losses and metrics taking class indices raise outside fit, naming themselves", function()
    fails_here(function() mg.losses.sparse_categorical_crossentropy(y0, probs()) end,
      "sparse_categorical_crossentropy: " .. RULE)
    fails_here(function() mg.losses.sparse_categorical_crossentropy(y0, mg.random.normal { 3, 3 }, true) end,
      "sparse_categorical_crossentropy: " .. RULE)
    fails_here(function() mg.losses.SparseCategoricalCrossentropy()(y0, probs()) end, RULE)
    fails_here(function() mg.metrics.sparse_categorical_accuracy(y0, probs()) end,
      "sparse_categorical_accuracy: " .. RULE)
    fails_here(function() mg.metrics.SparseCategoricalAccuracy():update_state(y0, probs()) end, RULE)
    -- shifted, the same calls work
    assert.are.same({ 3 }, mg.losses.sparse_categorical_crossentropy(y0 + 1, probs()).shape)
  end)
  it("inside fit (a staged train step) too", function()
    local model = nn.Sequential { nn.Input { 4 }, nn.Dense(3, { activation = "softmax" }) }
    model:compile { optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
    local ok, e = pcall(function() model:fit(mg.ones { 3, 4 }, y0, { epochs = 1, verbose = 0 }) end)
    assert.is_false(ok)
    assert.truthy(tostring(e):find(RULE, 1, true), e)
    model:fit(mg.ones { 3, 4 }, y0 + 1, { epochs = 1, verbose = 0 })
  end)
  it("in a staged function the check is the graph's (no Lua read of a symbolic value)", function()
    local f = mg.func(function(y, p) return mg.losses.sparse_categorical_crossentropy(y, p) end)
    local p = probs()
    assert.are.same({ 3 }, f(y0 + 1, p).shape)
    local ok, e = pcall(f, y0, p)
    assert.is_false(ok)
    assert.truthy(tostring(e):find(RULE, 1, true), e)
  end)
  it("one_hot raises outside 1..depth unless asked for TensorFlow's zero rows", function()
    fails_here(function() mg.one_hot(y0, 3) end, "one_hot: " .. RULE)
    fails_here(function() mg.one_hot(mg.tensor({ 4 }, "int64"), 3) end, "one_hot: index 4 (element 1) is outside 1..3")
    assert.are.same({ { 0, 0, 0 }, { 1, 0, 0 } }, mg.one_hot(mg.tensor({ 0, 1 }, "int64"), 3, { outside = "zero" }):totable())
    assert.are.same({ { 0, 0, 1 } }, mg.one_hot(mg.tensor({ 3 }, "int64"), 3):totable())
    fails_here(function() nn.utils.to_categorical(y0, 3) end, RULE)
  end)
end)

describe("the wrong cross-entropy for the labels", function()
  local p = mg.softmax(mg.random.normal { 3, 3 })
  it("class indices to categorical_crossentropy name it and the sparse form", function()
    fails_here(function() mg.losses.categorical_crossentropy(mg.tensor({ 1, 2, 3 }, "int64"), p) end,
      "categorical_crossentropy: y_true (3) holds class indices but y_pred is (3, 3)",
      "for class indices use sparse_categorical_crossentropy")
    fails_here(function() mg.losses.CategoricalCrossentropy()(mg.tensor({ { 1 }, { 2 }, { 3 } }, "int64"), p) end,
      "categorical_crossentropy: y_true (3, 1) holds class indices")
    fails_here(function() mg.metrics.categorical_accuracy(mg.tensor({ 1, 2, 3 }, "int64"), p) end,
      "categorical_accuracy: y_true (3) holds class indices", "use sparse_categorical_accuracy")
  end)
  it("one-hot rows to sparse_categorical_crossentropy name it and the one-hot form", function()
    local oh = mg.one_hot(mg.tensor({ 1, 2, 3 }, "int64"), 3)
    fails_here(function() mg.losses.sparse_categorical_crossentropy(oh, p) end,
      "sparse_categorical_crossentropy: y_true (3, 3) holds one-hot rows", "takes class indices of shape (3)",
      "for one-hot labels use categorical_crossentropy")
    local model = nn.Sequential { nn.Input { 4 }, nn.Dense(3, { activation = "softmax" }) }
    model:compile { optimizer = "sgd", loss = "sparse_categorical_crossentropy" }
    local ok, e = pcall(function() model:fit(mg.ones { 3, 4 }, oh, { epochs = 1, verbose = 0 }) end)
    assert.is_false(ok)
    assert.truthy(tostring(e):find("sparse_categorical_crossentropy: y_true (3, 3) holds one-hot rows", 1, true), e)
  end)
end)

describe("an error's first line names the user's file:line", function()
  it("an op's error names the line of the op call, not its caller's (both bindings)", function()
    local function inner()
      local r = mg.take(mg.ones { 3 }, mg.tensor({ 0 }, "int64")); return r   -- LINE_OF_TAKE
    end
    local ok, e = pcall(function()
      inner()
    end)
    assert.is_false(ok)
    local src = io.open("tests/spec/habits_spec.lua"):read("a")
    local line = 0
    for l in src:gmatch("[^\n]*\n") do
      line = line + 1
      if l:find("LINE_OF_TAKE", 1, true) and not l:find("find", 1, true) then break end
    end
    assert.truthy(tostring(e):find("habits_spec.lua:" .. line .. ":", 1, true), e)
  end)
  it("so do arithmetic operators' errors in a nested function (both bindings)", function()
    local function line_of(mark)
      local n = 0
      for l in io.lines("tests/spec/habits_spec.lua") do
        n = n + 1
        if l:find(mark, 1, true) and not l:find("line_of", 1, true) then return n end
      end
    end
    local function bad_shapes(x) local y = x + mg.ones { 5 }; return y end   -- MARK_SHAPES
    local function bad_operand(x) local y = x + "a"; return y end            -- MARK_OPERAND
    local ok1, e1 = pcall(function() bad_shapes(mg.ones { 2, 3 }) end)
    local ok2, e2 = pcall(function() bad_operand(mg.ones { 2, 3 }) end)
    assert.is_false(ok1 or ok2)
    assert.truthy(tostring(e1):find("habits_spec.lua:" .. line_of("MARK_SHAPES") .. ": add: shapes", 1, true), e1)
    assert.truthy(tostring(e2):find("habits_spec.lua:" .. line_of("MARK_OPERAND") .. ": add: argument #2", 1, true), e2)
  end)
end)

describe("an input of the wrong shape", function()
  local FLATTEN = "each sample's 28 x 28 = 784 values need an nn.Flatten() before it"
  it("a Dense built for 784 features called on (32, 28, 28) names the layer, shapes and the missing Flatten", function()
    local model = nn.Sequential { nn.Input { 784 }, nn.Dense(10) }
    fails_here(function() model(mg.ones { 32, 28, 28 }) end,
      "layer sequential", "(Sequential): expects input of shape (None, 784), got (32, 28, 28)", FLATTEN)
    fails_here(function() model:predict(mg.ones { 32, 28, 28 }) end, "got (None, 28, 28)", FLATTEN)
    local d = nn.Dense(10)
    d(mg.ones { 2, 784 })
    fails_here(function() d(mg.ones { 32, 28, 28 }) end, "expects input of shape (None, 784), got (32, 28, 28)", FLATTEN)
    local x = nn.Input { 784 }
    local fm = nn.Model { inputs = x, outputs = nn.Dense(3)(x) }
    fails_here(function() fm(mg.ones { 32, 28, 28 }) end, "expects input of shape (None, 784), got (32, 28, 28)", FLATTEN)
  end)
  it("fit with 5 features on an Input{4} model shows the user's shape, never the probe's rows", function()
    local m = nn.Sequential { nn.Input { 4 }, nn.Dense(3) }
    m:compile { optimizer = "sgd", loss = "mse" }
    local e = fails_here(function() m:fit(mg.ones { 8, 5 }, mg.ones { 8, 3 }, { epochs = 1, verbose = 0 }) end,
      "expects input of shape (None, 4), got (None, 5)", "the data has 5 features on the last axis where 4 were expected")
    assert.falsy(e:find("(2, 5)", 1, true), e)
  end)
end)

describe("Precision and Recall on a multi-class softmax", function()
  local probs = mg.tensor { { 0.1, 0.7, 0.2 }, { 0.6, 0.3, 0.1 }, { 0.2, 0.2, 0.6 }, { 0.5, 0.4, 0.1 } }
  local labels = mg.tensor({ 2, 1, 2, 2 }, "int64")
  local function result(m, y) m:update_state(y or labels, probs); return m:result():item() end
  local function near(a, b) assert.is_true(math.abs(a - b) < 1e-6, a .. " vs " .. b) end
  it("support Keras's class_id and top_k, with class indices or one-hot labels", function()
    near(result(mg.metrics.Precision()), 2 / 3)             -- every column at 0.5: 2 TP, 1 FP
    near(result(mg.metrics.Precision { class_id = 2 }), 1)
    near(result(mg.metrics.Recall { class_id = 2 }), 1 / 3)
    near(result(mg.metrics.Precision { top_k = 1 }), 0.5)    -- argmax right in rows 1 and 2
    -- exactly k per row as Keras's top_k picks them, ties to the lower column: row 3's (0.2, 0.2, 0.6)
    -- keeps columns 3 and 1, so its label 2 is missed (nn_kit_keras_spec checks this against Keras)
    near(result(mg.metrics.Recall { top_k = 2 }), 0.75)
    near(result(mg.metrics.Recall { class_id = 2 }, mg.one_hot(labels, 3)), 1 / 3)
    near(result(mg.metrics.Precision { top_k = 1, thresholds = 0.65 }), 1)
    -- binary outputs keep working: (N,) labels against (N, 1) scores
    local m = mg.metrics.Precision()
    m:update_state(mg.tensor { 1, 0, 1 }, mg.tensor { { 0.9 }, { 0.8 }, { 0.2 } })
    near(m:result():item(), 0.5)
  end)
  it("say what they need", function()
    fails_here(function() mg.metrics.Precision { class_id = 4 }:update_state(labels, probs) end,
      "Precision: class_id 4 is outside the 3 classes of y_pred (4, 3) (class ids count from 1)")
    fails_here(function() mg.metrics.Recall():update_state(labels - 1, probs) end,
      "Recall: labels count from 1 (got 0); shift them with y + 1")
  end)
  it("work in fit", function()
    local model = nn.Sequential { nn.Input { 4 }, nn.Dense(3, { activation = "softmax" }) }
    model:compile { optimizer = "sgd", loss = "sparse_categorical_crossentropy",
      metrics = { mg.metrics.Precision { top_k = 1 }, mg.metrics.Recall { class_id = 2 } } }
    local h = model:fit(mg.random.normal { 8, 4 }, mg.tensor({ 1, 2, 3, 1, 2, 3, 1, 2 }, "int64"),
      { epochs = 1, verbose = 0 })
    assert.truthy(h.history.precision and h.history.recall)
  end)
end)

describe("summary() of an unbuilt model", function()
  it("raises, as Keras does, naming how to give the input shape", function()
    local m = nn.Sequential { nn.Dense(3) }
    fails_here(function() m:summary() end, "summary: model sequential", "has not been built yet",
      "nn.Input{...} as the first layer")
    m:build { -1, 4 }
    local lines = {}
    m:summary { print_fn = function(l) lines[#lines + 1] = l end }
    assert.truthy(table.concat(lines, "\n"):find("(None, 3)", 1, true))
  end)
end)

describe("library errors at the user's line (common mistakes)", function()
  local function compiled(units)
    local m = nn.Sequential { nn.Input { 4 }, nn.Dense(units or 3) }
    m:compile { optimizer = "adam", loss = "mse" }
    return m
  end
  it("a loss given labels of the wrong width names the loss, inside fit", function()
    fails_here(function() compiled():fit(mg.ones { 4, 4 }, mg.ones { 4, 2 }, { epochs = 1, verbose = 0 }) end,
      "mean_squared_error: y_true (4, 2) and y_pred (4, 3) do not match")
    fails_here(function() mg.losses.mse(mg.ones { 4, 2 }, mg.ones { 4, 3 }) end, "mean_squared_error: y_true (4, 2)")
  end)
  it("a layer given a non-tensor names the layer once", function()
    local e = fails_here(function() nn.Flatten()(5) end, "(Flatten): expected a tensor or a list of tensors, got number")
    local _, n = e:gsub("habits_spec%.lua:%d+:", "")
    assert.are.equal(1, n, e)
  end)
  it("a Sequential model with an nn.Input checks its input like a functional one", function()
    local m = nn.Sequential { nn.Input { 28, 28 }, nn.Flatten(), nn.Dense(3) }
    fails_here(function() m(mg.ones { 2, 784 }) end, "expects input of shape (None, 28, 28), got (2, 784)")
    assert.are.same({ 2, 3 }, m(mg.ones { 2, 28, 28 }).shape)
  end)
  it("apply_gradients with a gradient of the wrong shape names the pair", function()
    local o = mg.optim.Adam()
    fails_here(function() o:apply_gradients { { mg.ones { 2 }, mg.Variable(mg.ones { 3 }) } } end,
      "apply_gradients: gradient 1 of shape (2) does not match its variable")
  end)
  it("a dataset function that raises is reported at the loop's line", function()
    local ds = mg.data.Dataset.range(3):map(function(x) return x + "a" end)
    fails_here(function() for _ in ds:iter() do end end, "Dataset:map: fn raised")
  end)
end)

describe("errors inside a subclassed model's call", function()
  it("name the line of the user's call method, with the layer", function()
    local Sub = nn.Model:extend("HabitSub")
    function Sub:init() self.d = nn.Dense(3) end
    function Sub:call(x) return self.d(x) + mg.ones { 5 } end   -- BAD_ADD
    local m = Sub()
    local ok, e = pcall(function() m(mg.ones { 2, 4 }) end)
    assert.is_false(ok)
    assert.truthy(tostring(e):find("^[^\n]*habits_spec%.lua:%d+: layer habit_sub %(HabitSub%): add: shapes"), e)
    local line = tonumber(tostring(e):match("habits_spec%.lua:(%d+):"))
    local n = 0
    for l in io.lines("tests/spec/habits_spec.lua") do
      n = n + 1
      if n == line then assert.truthy(l:find("BAD_ADD", 1, true), l) end
    end
  end)
end)
