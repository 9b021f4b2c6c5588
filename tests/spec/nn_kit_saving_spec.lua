-- model:save / nn.load_model with the training kit's new names: an optimizer with use_ema and
-- state beyond its slots (Nadam's momentum product), a schedule, a loss with options and the new
-- metrics come back with their classes, configs and state, and training resumes where it stopped.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local nn = mg.nn
local h = require("tests.spec.nn_helpers")

local function tmpdir()
  local p = h.tmpname("-mgkit")
  assert(os.execute("mkdir -p '" .. p .. "'"))
  return p
end

describe("saving a model compiled with the new optimizers, losses and metrics", function()
  it("rebuilds every one with its config and restores the optimizer's state", function()
    mg.random.seed(4)
    local x = mg.uniform({ 32, 4 }, -1, 1, "float32", 3)
    local y = mg.one_hot(mg.argmax(mg.slice(x, { {}, { 1, 3 } }), -1), 3, "float32")
    local function make()
      local m = nn.Sequential { nn.Input { shape = { 4 } }, nn.Dense { units = 3, activation = "sigmoid" } }
      m:compile {
        optimizer = mg.optim.Nadam { learning_rate = mg.optim.PolynomialDecay { initial_learning_rate = 0.05,
          decay_steps = 20 }, use_ema = true, ema_momentum = 0.9 },
        loss = mg.losses.BinaryFocalCrossentropy { gamma = 3, apply_class_balancing = true },
        metrics = { mg.metrics.F1Score { average = "macro" }, mg.metrics.TopKCategoricalAccuracy { k = 2 },
          mg.metrics.PrecisionAtRecall { recall = 0.5, num_thresholds = 50 }, mg.metrics.MeanIoU { num_classes = 3,
            sparse_y_true = false, sparse_y_pred = false }, mg.metrics.R2Score(),
          mg.metrics.TruePositives { thresholds = { 0.3, 0.7 } }, "rmse" },
      }
      return m
    end
    local m = make()
    m:fit(x, y, { epochs = 2, batch_size = 8, verbose = 0 })
    local dir = tmpdir() .. "/saved"
    m:save(dir)
    local m2 = nn.load_model(dir)
    h.near(m2:predict(x, { verbose = 0 }), m:predict(x, { verbose = 0 }), 0)
    local o1, o2 = m.optimizer, m2.optimizer
    assert.are.equal("Nadam", o2.class_name)
    assert.is_true(o2.use_ema)
    assert.are.equal(0.9, o2.ema_momentum)
    assert.are.equal("PolynomialDecay", o2:get_config().learning_rate.class_name)
    assert.are.equal(o1.iterations:item(), o2.iterations:item())
    local s1, s2 = o1:get_state(), o2:get_state()
    for k, v in pairs(s1) do h.near(s2[k], v, 0, k) end
    h.near(s2.u_product, s1.u_product, 0)
    -- (load_model recompiles with the saved {class_name=, config=}: the loss is made from it)
    local l2 = mg.losses.get(m2.loss)
    assert.are.equal("BinaryFocalCrossentropy", l2.class_name)
    assert.are.same(m.loss:get_config(), l2:get_config())
    assert.are.same(m.metrics_names, m2.metrics_names)
    -- evaluating gives the same numbers; training on from the restored state matches the original
    local e1 = m:evaluate(x, y, { verbose = 0, return_dict = true })
    local e2 = m2:evaluate(x, y, { verbose = 0, return_dict = true })
    for k, v in pairs(e1) do h.near(e2[k], v, 1e-6, k) end
    m:fit(x, y, { epochs = 1, batch_size = 8, verbose = 0, shuffle = false })
    m2:fit(x, y, { epochs = 1, batch_size = 8, verbose = 0, shuffle = false })
    h.near(m2:predict(x, { verbose = 0 }), m:predict(x, { verbose = 0 }), 1e-6)
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
