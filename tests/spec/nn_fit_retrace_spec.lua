-- fit/train_on_batch on batches of changing shape (padded sequences of
-- another length, a last smaller batch) must not retrace per shape: the
-- staged step relaxes the sizes that changed to unknown (reduce_retracing).
local mg = require("moongrad")
local nn = mg.nn
local warnings = require("moongrad.warnings")

describe("nn training step with changing batch shapes", function()
  it("traces at most twice and does not warn about retracing", function()
    mg.random.seed(3)
    local model = nn.Sequential {
      nn.Embedding { input_dim = 10, output_dim = 4 },
      nn.SimpleRNN { units = 3 },
      nn.Dense(1),
    }
    model:compile { optimizer = mg.optim.SGD { learning_rate = 0.1 }, loss = "mse" }
    local seen = {}
    local orig = warnings.warning
    warnings.warning = function(msg) seen[#seen + 1] = msg end
    local ok, err = pcall(function()
      local sizes = { { 2, 7 }, { 3, 2 }, { 2, 5 }, { 4, 3 }, { 1, 9 }, { 3, 4 }, { 2, 6 }, { 5, 8 }, { 2, 3 },
        { 3, 3 }, { 4, 7 } }
      for _, bt in ipairs(sizes) do
        local rows = {}
        for r = 1, bt[1] do
          rows[r] = {}
          for c = 1, bt[2] do rows[r][c] = (r * 7 + c * 3) % 10 + 1 end
        end
        local x = mg.tensor(rows, "int64")
        local y = mg.ones({ bt[1], 1 })
        local loss = model:train_on_batch(x, y)
        assert.is_true(loss == loss and loss < 1e6)
      end
    end)
    warnings.warning = orig
    assert(ok, err)
    for _, m in ipairs(seen) do assert.is_nil(m:find("retracing", 1, true), m) end
  end)

  it("gives the same losses as running eagerly", function()
    local function run(eager)
      mg.random.seed(5)
      local model = nn.Sequential {
        nn.Input { shape = { -1 }, dtype = "int64" },
        nn.Embedding { input_dim = 10, output_dim = 3 },
        nn.SimpleRNN { units = 3 },
        nn.Dense(1),
      }
      model:compile { optimizer = mg.optim.SGD { learning_rate = 0.1 }, loss = "mse", run_eagerly = eager }
      local losses = {}
      local xs = { { { 1, 2, 3 }, { 4, 5, 6 } }, { { 1, 2 }, { 3, 4 }, { 5, 6 } }, { { 7, 8, 9, 1 } },
        { { 2, 2 }, { 9, 9 } } }
      for i, rows in ipairs(xs) do
        local x = mg.tensor(rows, "int64")
        losses[i] = model:train_on_batch(x, mg.ones({ #rows, 1 }))
      end
      return losses
    end
    local a, b = run(false), run(true)
    for i = 1, #a do assert.is_true(math.abs(a[i] - b[i]) < 1e-5, i .. ": " .. a[i] .. " vs " .. b[i]) end
  end)

  -- noticed last stop: a Sequential with no nn.Input fixed its time length on the first eager call
  -- while the staged step accepted any; Keras 3 accepts any, in both modes
  it("a Sequential built from its first batch takes other lengths, eagerly and staged alike", function()
    local function run(eager)
      mg.random.seed(3)
      local model = nn.Sequential { nn.Embedding(10, 3), nn.LSTM(3), nn.Dense(2) }
      model:compile { optimizer = "sgd", loss = nn.losses.SparseCategoricalCrossentropy { from_logits = true },
        run_eagerly = eager }
      local a = model:train_on_batch(mg.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, "int64"), mg.tensor({ 1, 2 }, "int64"))
      local b = model:train_on_batch(mg.tensor({ { 1, 2 }, { 4, 5 }, { 3, 3 } }, "int64"),
        mg.tensor({ 1, 2, 1 }, "int64"))
      -- the rank is still checked
      local ok, err = pcall(model.predict, model, mg.ones({ 2, 3, 3 }, "int64"))
      assert.is_false(ok)
      assert.matches("expects input of shape %(None, 3%), got", tostring(err))
      return { a, b }
    end
    local e, s = run(true), run(false)
    for i = 1, 2 do assert.is_true(math.abs(e[i] - s[i]) < 1e-5, i .. ": " .. e[i] .. " vs " .. s[i]) end
  end)
end)
