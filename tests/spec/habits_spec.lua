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
