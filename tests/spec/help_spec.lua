-- help(): every public name reachable from mg has help text (stdlib doc comments, the op table,
-- mg.document), names itself by its canonical path, and help(mg) is a grouped listing that fits
-- the terminal. Also: the backward-pass ops live in mg.raw only (stdlib/moongrad/raw.lua).
local mg = require("moongrad")
local help = require("moongrad.help")

local function lines(s)
  local out = {}
  for l in (s .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = l end
  return out
end

-- Whether a help text says more than a signature: words beyond the call on its first line
-- ("f(a, b) -> n: what it is") or on the lines after it (other than "(also ...)").
local function described(text)
  local body = {}
  for i, l in ipairs(lines(text)) do
    if i == 1 then
      l = l:gsub("^[%w_.:]+%s*", "", 1):gsub("^%b()", "", 1):gsub("^%b{}", "", 1)
    end
    if not l:match("^%s*%(also ") then body[#body + 1] = l end
  end
  return table.concat(body, " "):find("%a%a") ~= nil
end

describe("help", function()
  it("has a text for every public function, class, module and method reachable from mg", function()
    local names = help.every_public_name()
    local count, missing, anonymous = 0, {}, {}
    for name, v in pairs(names) do
      count = count + 1
      local text = mg.help(v)
      if type(text) ~= "string" or not described(text) then
        missing[#missing + 1] = name
      else
        local last = name:match("([%w_]+)$")
        if not text:find(last, 1, true) then anonymous[#anonymous + 1] = name end
      end
    end
    table.sort(missing)
    table.sort(anonymous)
    assert.is_true(count > 500, "expected the walk of mg to find hundreds of names, found " .. count)
    assert.are.same({}, missing, "names without help")
    assert.are.same({}, anonymous, "help texts that do not name what they describe")
  end)

  it("covers the names the first hour meets", function()
    local model = mg.nn.Sequential{ mg.nn.Dense(2) }
    for _, case in ipairs({
      { mg.nn.Dense, "^mg%.nn%.Dense{units", "Example:", "use_bias" },
      { mg.GradientTape, "^mg%.GradientTape{persistent=false", "tape:gradient" },
      { mg.func, "^mg%.func%(fn, {input_signature=", "Example:" },
      { mg.optim.Adam, "^mg%.optim%.Adam{learning_rate=0%.001", "Example:" },
      { model.fit, "fit%(", "epochs" },
      { mg.data.Dataset.map, "^ds:map%(fn", "element" },
      { mg.nn, "^mg%.nn   %(module%)", "Classes:", "Dense" },
      { mg.optim.Adam, "%(class, subclass of Optimizer%)" },
      { mg.matmul, "^mg%.matmul%(a, b%)", "matrix product" },
    }) do
      local text = mg.help(case[1])
      assert.is_string(text)
      for i = 2, #case do
        assert.truthy(text:find(case[i]), ("help text lacks %q:\n%s"):format(case[i], text))
      end
    end
  end)

  it("describes the main classes in their own words (not only their method lists)", function()
    local main = { mg.nn.Layer, mg.nn.Model, mg.nn.Sequential, mg.nn.Dense, mg.nn.Conv2D, mg.nn.Flatten,
      mg.nn.Dropout, mg.nn.Embedding, mg.nn.BatchNormalization, mg.nn.LSTM, mg.optim.Optimizer, mg.optim.SGD,
      mg.optim.Adam, mg.optim.AdamW, mg.optim.RMSprop, mg.optim.Adagrad, mg.losses.Loss,
      mg.losses.MeanSquaredError, mg.losses.CategoricalCrossentropy, mg.losses.SparseCategoricalCrossentropy,
      mg.losses.BinaryCrossentropy, mg.metrics.Metric, mg.metrics.Mean, mg.metrics.Accuracy,
      mg.metrics.SparseCategoricalAccuracy, mg.callbacks.Callback, mg.callbacks.EarlyStopping,
      mg.callbacks.ModelCheckpoint, mg.data.Dataset }
    for _, cls in ipairs(main) do
      local text = mg.help(cls)
      local said = false
      for i, l in ipairs(lines(text)) do
        if i == 1 and l:find("[%({]") and l:find("%a[%w_]*%s*=") then said = true end   -- a signature with options
        if i > 1 and l:match("^  %S") and not l:match("^  Methods:") and not l:match("^  Properties:")
          and not l:match("^  Inherits from") and not l:match("^  %(also ") then said = true end
      end
      assert.is_true(said, "no description in:\n" .. text)
    end
  end)

  it("names a function by its home: mg.random.normal, not the alias mg.normal", function()
    local text = mg.help(mg.random.normal)
    assert.truthy(text:find("^mg%.random%.normal%(shape, mean, stddev, dtype, seed%)"), text)
    assert.truthy(text:find("also mg.normal", 1, true), text)
    assert.are.equal("mg.random.normal", (help.name_of(mg.random.normal)))
    assert.truthy(mg.help(mg.raw.slice_grad):find("^mg%.raw%.slice_grad%("))
  end)

  it("inherits the text of the method an undocumented override replaces", function()
    local text = mg.help(mg.nn.Dense.call)
    assert.truthy(text:find("^layer:call%(inputs"), text)
    assert.truthy(text:find("mg.nn.Dense:call overrides it", 1, true), text)
  end)

  it("lists mg grouped and wrapped to the terminal width", function()
    local text = mg.help(mg)
    local width = help.width()
    for _, l in ipairs(lines(text)) do
      assert.is_true(#l <= width, ("line longer than %d columns: %s"):format(width, l))
    end
    for _, group in ipairs({ "\nModules:\n", "\nFunctions:\n", "\nOps (" }) do
      assert.truthy(text:find(group, 1, true), "no group " .. group)
    end
    assert.truthy(text:find("nn", 1, true) and text:find("GradientTape", 1, true))
  end)

  it("finds names given as strings and describes tensors and Variables", function()
    assert.are.equal(mg.help(mg.nn.Dense), mg.help("nn.Dense"))
    assert.are.equal(mg.help(mg.matmul), mg.help("matmul"))
    assert.is_nil(mg.help(42))
    assert.truthy(mg.help(mg.tensor{1, 2}):find("^a tensor of shape %(2%) and dtype int64"))
    assert.truthy(mg.help(mg.Variable(mg.zeros{2}, {name = "w"})):find("^Variable w of shape %(2%)"))
    local tape = mg.GradientTape()
    assert.truthy(mg.help(tape):find("^a GradientTape"))
    assert.truthy(mg.help(tape.gradient):find("^tape:gradient%(target, sources"))
    tape:stop()
  end)
end)

describe("mg.raw", function()
  it("holds the backward-pass and optimizer internals, out of mg and the tensor methods", function()
    local t = mg.ones{2}
    local raw = require("moongrad.raw")
    local n = 0
    for _, op in ipairs(mg.core.ops()) do
      if raw.is_raw(op.name) then
        n = n + 1
        assert.is_function(mg.raw[op.name], op.name)
        assert.is_nil(rawget(mg, op.name), "mg." .. op.name .. " is still public")
        assert.is_nil(t[op.name], "t:" .. op.name .. " is still a method")
      else
        assert.is_nil(mg.raw[op.name], op.name .. " is public, not raw")
      end
    end
    for _, name in ipairs({ "slice_grad", "max_pool2d_grad_grad", "take_grad", "conv2d_backprop_filter",
      "adam_update", "sparse_softmax_cross_entropy_with_logits_grad" }) do
      assert.is_function(mg.raw[name], name)
    end
    assert.is_true(n >= 14)
    assert.is_function(mg.index_add)   -- torch.index_add: public
    assert.is_function(mg.conv2d)
  end)
end)
