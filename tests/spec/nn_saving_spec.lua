-- nn_saving_spec.lua — keeping models: weight files keyed by layer paths
-- (save_weights/load_weights and their errors), whole-model directories
-- (model:save / nn.load_model: architecture, weights, compile settings,
-- optimizer state, random generator) and the exact-resume property
-- (2 epochs == 1 epoch + save + load + 1 epoch, with Dropout, shuffling,
-- Adam and a schedule), the atomic directory swap, subclassed models,
-- register_layer, mg.train.Checkpoint / CheckpointManager (numbering,
-- max_to_keep, a writer killed mid-save) and the ModelCheckpoint callback.
local mg = require "moongrad"
local nn = mg.nn
local h = require "tests.spec.nn_helpers"
local near, fails = h.near, h.fails
local saving = require "moongrad.nn.saving"

local function tmpdir()
  local p = h.tmpname("-mgsave")
  assert(os.execute("mkdir -p '" .. p .. "'"))
  return p
end
local function rmrf(p) os.execute("rm -rf '" .. p .. "'") end
local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

local function names_of(model)
  local out = {}
  for i, e in ipairs(saving.named_variables(model)) do out[i] = e[1] end
  return out
end

local function max_diff(a, b)
  local m = 0
  for i = 1, #a do m = math.max(m, mg.max(mg.abs(mg.cast(a[i], "float64") - mg.cast(b[i], "float64"))):item()) end
  return m
end

describe("mg.random.get_state / set_state", function()
  it("put the generator back exactly", function()
    mg.random.seed(42)
    mg.random.uniform { 5 }
    local s = mg.random.get_state()
    assert.equal(42, s.seed)
    local a = mg.random.normal { 7 }
    mg.random.uniform { 3 }
    mg.random.set_state(s)
    near(mg.random.normal { 7 }, a, 0)
    fails(function() mg.random.set_state(3) end, "random.set_state", "{seed=, counter=}")
  end)
end)

describe("weight paths", function()
  it("are class-based and stable across instances (Sequential, nested, subclassed)", function()
    local function make()
      return nn.Sequential { nn.Input { shape = { 3 } }, nn.Dense(4), nn.BatchNormalization(), nn.Dropout(0.1),
        nn.Dense(2) }
    end
    local a = make()
    local _ = make()
    local b = make()   -- its layers are named dense_4, ... but its paths are a's
    local want = { "sequential/dense/kernel", "sequential/dense/bias", "sequential/batch_normalization/gamma",
      "sequential/batch_normalization/beta", "sequential/dense_1/kernel", "sequential/dense_1/bias",
      "sequential/batch_normalization/moving_mean", "sequential/batch_normalization/moving_variance",
      "sequential/dropout/seed" }
    local got = names_of(a)
    table.sort(want)
    table.sort(got)
    assert.same(want, got)
    assert.same(names_of(a), names_of(b))

    local Net = nn.Model:extend("SavingPathNet")
    function Net:init()
      self.encoder = nn.Sequential { nn.Dense(3), nn.Dense(3) }
      self.heads = { nn.Dense(1), nn.Dense(2) }
      self.scale = mg.Variable(mg.ones { 1 })
    end
    function Net:call(x) return self.heads[2](self.encoder(x) * self.scale) end
    local m = Net()
    m:build { -1, 2 }
    local n = names_of(m)
    assert.equal("saving_path_net/scale", n[1])
    assert.truthy(table.concat(n, " "):find("saving_path_net/encoder/dense_1/kernel", 1, true))
    assert.truthy(table.concat(n, " "):find("saving_path_net/heads/2/bias", 1, true))
  end)
end)

describe("save_weights / load_weights", function()
  local function model(units)
    return nn.Sequential { nn.Input { shape = { 3 } }, nn.Dense(4), nn.BatchNormalization(), nn.Dense(units or 2) }
  end

  it("round-trip every weight exactly, in safetensors keyed by path", function()
    local a, b = model(), model()
    a:get_layer(2).moving_mean:assign(mg.tensor { 1, 2, 3, 4 })
    local path = h.tmpname(".weights.safetensors")
    a:save_weights(path)
    assert.same({}, b:load_weights(path))
    assert.equal(0, max_diff(a.weights, b.weights))
    local tensors, meta = mg.load(path)
    assert.equal("moongrad-weights", meta.format)
    assert.same({ 3, 4 }, tensors["sequential/dense/kernel"].shape)
    assert.equal("float32", tensors["sequential/batch_normalization/moving_mean"].dtype)
    os.remove(path)
  end)

  it("name the weight, its layer and both shapes on a mismatch; missing and extra names are errors", function()
    local a = model(2)
    local path = h.tmpname(".weights.safetensors")
    a:save_weights(path)
    local wide = model(5)
    local before = wide:get_weights()
    local err = fails(function() wide:load_weights(path) end, "load_weights", "sequential/dense_1/kernel",
      "(4, 5)", "(4, 2)")
    assert.truthy(err:find(wide.layers[3].name, 1, true), err)
    assert.equal(0, max_diff(before, wide:get_weights()))   -- nothing was assigned
    local skipped = wide:load_weights(path, { skip_mismatch = true })
    assert.same({ "sequential/dense_1/kernel", "sequential/dense_1/bias" }, skipped)
    near(wide.weights[1], a.weights[1], 0)

    local small = nn.Sequential { nn.Input { shape = { 3 } }, nn.Dense(4) }
    fails(function() small:load_weights(path) end, "model " .. small.name .. " does not have",
      "sequential/batch_normalization/beta")
    local big = nn.Sequential { nn.Input { shape = { 3 } }, nn.Dense(4), nn.BatchNormalization(), nn.Dense(2),
      nn.Dense(1) }
    fails(function() big:load_weights(path) end, "no value for 2", "sequential/dense_2/kernel")
    fails(function() big:load_weights("/nonexistent/w.safetensors") end, "load_weights", "/nonexistent/w.safetensors")
    os.remove(path)
  end)

  it("work for subclassed models, which model:save refuses with a pointer to save_weights", function()
    local Net = nn.Model:extend("SavingSubNet")
    function Net:init() self.d1 = nn.Dense(4, { activation = "relu" }); self.d2 = nn.Dense(1) end
    function Net:call(x) return self.d2(self.d1(x)) end
    local a, b = Net(), Net()
    fails(function() a:save_weights(h.tmpname()) end, "no weights yet")
    a:build { -1, 3 }
    b:build { -1, 3 }
    local path = h.tmpname(".weights.safetensors")
    a:save_weights(path)
    b:load_weights(path)
    local x = mg.random.normal { 2, 3 }
    near(b(x), a(x), 0)
    fails(function() a:save(h.tmpname()) end, "subclassed", "save_weights")
    os.remove(path)
  end)
end)

-- The resume property: 2 epochs == 1 epoch, save, load (fresh objects,
-- the generator disturbed), 1 more epoch.
local function data()
  mg.random.seed(99)
  return mg.random.normal { 48, 6 }, mg.random.integers({ 48 }, 1, 3)
end

local function sequential()
  return nn.Sequential { nn.Input { shape = { 6 } }, nn.Dense(16, { activation = "relu" }), nn.Dropout(0.3),
    nn.BatchNormalization(), nn.Dense(3) }
end

local function functional()
  local a = nn.Input { shape = { 6 }, name = "feat" }
  local h1 = nn.Dropout(0.2)(nn.Dense(8, { activation = "tanh" })(a))
  local h2 = nn.Dense(8, { activation = "relu" })(a)
  return nn.Model { inputs = a, outputs = nn.Dense(3)(nn.Concatenate() { h1, h2 }) }
end

local function compile(m, eager)
  m:compile { optimizer = mg.optim.Adam { learning_rate = mg.optim.ExponentialDecay { initial_learning_rate = 0.02,
    decay_steps = 3, decay_rate = 0.9 } }, loss = mg.losses.SparseCategoricalCrossentropy { from_logits = true },
    metrics = { "accuracy" }, run_eagerly = eager }
end

local function resume(build, eager, load_opts)
  local x, y = data()
  mg.random.seed(7)
  local a = build()
  compile(a, eager)
  a:fit(x, y, { epochs = 2, batch_size = 16, verbose = 0 })
  mg.random.seed(7)
  local b = build()
  compile(b, eager)
  b:fit(x, y, { epochs = 1, batch_size = 16, verbose = 0 })
  local dir = tmpdir() .. "/model"
  b:save(dir)
  mg.random.seed(12345)   -- what a new process would have
  local c = nn.load_model(dir, load_opts)
  c:fit(x, y, { epochs = 2, initial_epoch = 1, batch_size = 16, verbose = 0 })
  rmrf(dir:gsub("/model$", ""))
  return a, c
end

describe("model:save / nn.load_model", function()
  it("write a directory that rebuilds, recompiles and restores the optimizer", function()
    local x, y = data()
    local m = sequential()
    compile(m)
    m:fit(x, y, { epochs = 1, batch_size = 16, verbose = 0 })
    local dir = tmpdir() .. "/saved"
    m:save(dir)
    for _, f in ipairs { "config.json", "compile.json", "model.weights.safetensors", "optimizer.safetensors",
      "training_state.json" } do
      assert.is_true(exists(dir .. "/" .. f), f)
    end
    local m2 = nn.load_model(dir)
    assert.equal("Sequential", m2.class_name)
    near(m2:predict(x), m:predict(x), 0)
    assert.is_true(m2.compiled)
    assert.equal("Adam", m2.optimizer.class_name)
    assert.equal(m.optimizer.iterations:item(), m2.optimizer.iterations:item())
    assert.same(m.metrics_names, m2.metrics_names)
    near(m2.optimizer.learning_rate, m.optimizer.learning_rate, 1e-7)
    local k1, k2 = m.weights[1], m2.weights[1]
    near(m2.optimizer:slot(k2, "m"), m.optimizer:slot(k1, "m"), 0)
    near(m2.optimizer:slot(k2, "v"), m.optimizer:slot(k1, "v"), 0)
    local r1 = m:evaluate(x, y, { verbose = 0, return_dict = true })
    local r2 = m2:evaluate(x, y, { verbose = 0, return_dict = true })
    near(r2.loss, r1.loss, 1e-6)
    -- saving again over it swaps the directory; no temporary is left behind
    m2:save(dir)
    local parent = dir:gsub("/saved$", "")
    assert.same({ "saved" }, saving.list_dir(parent))
    rmrf(parent)
  end)

  it("resume training exactly: 2 epochs == 1 epoch + save + load + 1 epoch (Dropout, shuffle, Adam, schedule)",
    function()
      local a, c = resume(sequential)
      assert.equal(a.optimizer.iterations:item(), c.optimizer.iterations:item())
      assert.is_true(max_diff(a:get_weights(), c:get_weights()) <= 1e-6)
      local f1, f2 = resume(functional)
      assert.is_true(max_diff(f1:get_weights(), f2:get_weights()) <= 1e-6)
      local e1, e2 = resume(sequential, true)
      assert.is_true(max_diff(e1:get_weights(), e2:get_weights()) <= 1e-6)
      -- the property is not vacuous: without the saved generator state the runs differ
      local d1, d2 = resume(sequential, false, { restore_rng = false })
      assert.is_true(max_diff(d1:get_weights(), d2:get_weights()) > 1e-4)
    end)

  it("survive a save killed between its renames, and refuse non-directories", function()
    local m = sequential()
    compile(m)
    local parent = tmpdir()
    local dir = parent .. "/m"
    m:save(dir)
    -- the state a kill between "move the old one aside" and "rename the new one in" leaves
    assert(os.rename(dir, dir .. ".old-dead"))
    assert(os.execute("mkdir '" .. dir .. ".tmp-dead'"))
    local m2 = nn.load_model(dir)
    near(m2:predict(mg.ones { 1, 6 }), m:predict(mg.ones { 1, 6 }), 0)
    m:save(dir)   -- a later save works next to the leftovers, and removes the old one
    assert.is_true(saving.is_dir(dir))
    assert.is_false(saving.exists(dir .. ".old-dead"))
    assert.is_false(saving.exists(dir .. ".tmp-dead"))   -- "dead" reads as a time long past
    fails(function() nn.load_model(parent .. "/none") end, "no saved model")
    local w = parent .. "/w.safetensors"
    m:save_weights(w)
    fails(function() nn.load_model(w) end, "not a saved-model directory", "load_weights")
    fails(function() m:save(w) end, "not a directory", "save_weights")
    rmrf(parent)
  end)

  -- A killed save leaves "<dir>.tmp-*": the next save removes every one whose
  -- writer is gone, however young, and keeps those of writers still running.
  it("a save removes the temporaries of killed saves at once, and keeps a running saver's", function()
    local MOONGRAD = os.getenv("MOONGRAD") or "build/bin/moongrad"
    local parent = tmpdir()
    local dir = parent .. "/m"
    local script, mark = parent .. "/child.lua", parent .. "/saved"
    local f = assert(io.open(script, "w"))
    f:write([[
local mg = require("moongrad")
local nn = mg.nn
local m = nn.Sequential { nn.Input { shape = { 1500 } }, nn.Dense(1500), nn.Dense(1500) }
while true do
  m:save(arg[1])
  if arg[2] then io.open(arg[2], "w"):close(); arg[2] = nil end
end
]])
    f:close()
    local function tmps()
      local out = {}
      for _, n in ipairs(mg.io.listdir(parent)) do
        if n:find("^m%.tmp%-") then out[#out + 1] = n end
      end
      return out
    end
    -- kill the saver mid-save until it leaves a temporary (each save is ~18 MB)
    local left
    for _ = 1, 10 do
      os.remove(mark)
      local p = assert(io.popen("'" .. MOONGRAD .. "' '" .. script .. "' '" .. dir .. "' '" .. mark
        .. "' >/dev/null 2>&1 & pid=$!; n=0; while [ ! -e '" .. mark .. "' ] && [ $n -lt 3000 ]; do "
        .. "sleep 0.01; n=$((n+1)); done; sleep 0.0$((RANDOM % 9)); kill -9 $pid; wait $pid 2>/dev/null"))
      p:read("*a")
      p:close()
      left = tmps()
      if #left > 0 then break end
    end
    assert.is_true(#left > 0, "no kill landed mid-save")
    -- a temporary of a process that still runs (a save going on elsewhere) stays
    local sp = assert(io.popen("echo $$; exec sleep 60"))   -- our child: reaped by sp:close()
    local live = tonumber(sp:read("*l"))
    local running = dir .. ".tmp-p" .. live .. "-0"
    mg.io.mkdir(running)
    local m = sequential()
    m:save(dir)
    assert.same({ "m.tmp-p" .. live .. "-0" }, tmps())   -- the killed saves' are gone, young as they are
    os.execute("kill " .. live)
    sp:close()
    m:save(dir)
    assert.same({}, tmps())
    near(nn.load_model(dir):predict(mg.ones { 1, 6 }), m:predict(mg.ones { 1, 6 }), 0)
    rmrf(parent)
  end)

  it("compile settings that cannot be saved (a Lua loss function) need {compile=false}", function()
    local m = nn.Sequential { nn.Input { shape = { 2 } }, nn.Dense(1) }
    m:compile { optimizer = "sgd", loss = function(t, p) return mg.square(t - p) end }
    local parent = tmpdir()
    m:save(parent .. "/m")
    fails(function() nn.load_model(parent .. "/m") end, "Lua function", "compile=false")
    local m2 = nn.load_model(parent .. "/m", { compile = false })
    assert.is_false(m2.compiled)
    rmrf(parent)
  end)

  it("load custom layers registered with nn.register_layer; unknown classes say how", function()
    local Scale = nn.Layer:extend("SavingSpecScale")
    function Scale:init(cfg) self.factor = cfg and cfg.factor or 2 end
    function Scale:call(x) return x * self.factor end
    function Scale:compute_output_shape(s) return s end
    function Scale:get_config()
      local c = nn.Layer.get_config(self)
      c.factor = self.factor
      return c
    end
    local x = nn.Input { shape = { 2 } }
    local m = nn.Model { inputs = x, outputs = Scale { factor = 3 }(x) }
    local text = m:to_json():gsub("SavingSpecScale", "RenamedScale")
    fails(function() nn.model_from_json(text) end, "unknown layer class 'RenamedScale'",
      'mg.nn.register_layer("RenamedScale"')
    nn.register_layer("RenamedScale", Scale)
    near(nn.model_from_json(text)(mg.tensor { { 1.0, 2.0 } }), { { 3, 6 } })
    fails(function() nn.register_layer("X", {}) end, "layer class")
  end)
end)

-- Runs `body` (Lua source: a loop that keeps saving) in a child process of the
-- interpreter running this spec (lua5.4, moongrad or luajit), with this spec's
-- module paths, and kills it with SIGKILL after 1.5 s.
local function kill_saver_after(parent, body)
  local script = parent .. "/saver.lua"
  local f = assert(io.open(script, "w"))
  f:write(string.format("package.path, package.cpath = %q, %q\n", package.path, package.cpath))
  f:write(body)
  f:close()
  local lua, i = "lua5.4", -1
  while arg and arg[i] do lua = arg[i]; i = i - 1 end
  os.execute(string.format("'%s' '%s' & pid=$!; sleep 1.5; kill -9 $pid; wait $pid 2>/dev/null; true", lua, script))
end

describe("mg.train.Checkpoint", function()
  local Net = nn.Model:extend("CkptSpecNet")
  function Net:init() self.d1 = nn.Dense(8, { activation = "relu" }); self.drop = nn.Dropout(0.2); self.d2 = nn.Dense(1) end
  function Net:call(x, training) return self.d2(self.drop(self.d1(x), training)) end

  local function setup(dir, keep)
    local m = Net()
    m:build { -1, 4 }
    local opt = mg.optim.Adam { learning_rate = 0.01 }
    local step = mg.Variable(mg.tensor(0, "int64"))
    local ckpt = mg.train.Checkpoint { model = m, optimizer = opt, step = step }
    return m, opt, step, ckpt, mg.train.CheckpointManager(ckpt, dir, { max_to_keep = keep })
  end

  it("resume a custom training loop exactly and keep the last N", function()
    local parent = tmpdir()
    local dir = parent .. "/runs/ckpts"   -- made with its parent by the manager"
    mg.random.seed(5)
    local x, y = mg.random.normal { 32, 4 }, mg.random.normal { 32, 1 }
    local function train(m, opt, step, n, manager)
      for _ = 1, n do
        opt:minimize(function() return mg.mean(mg.square(m(x, true) - y)) end, m.trainable_weights)
        step:assign_add(1)
        if manager then manager:save() end
      end
    end
    mg.random.seed(1)
    local m1, o1, s1 = setup(dir, 2)
    train(m1, o1, s1, 5)
    rmrf(dir)
    mg.random.seed(1)
    local m2, o2, s2, _, man2 = setup(dir, 2)
    train(m2, o2, s2, 3, man2)
    assert.same({ dir .. "/ckpt-2", dir .. "/ckpt-3" }, man2.checkpoints)
    assert.is_false(exists(dir .. "/ckpt-1.safetensors"))
    assert.equal(dir .. "/ckpt-3", mg.train.latest_checkpoint(dir))
    mg.random.seed(999)
    local m3, o3, s3, _, man3 = setup(dir, 2)
    assert.equal(dir .. "/ckpt-3", man3:restore_or_initialize())
    assert.equal(3, s3:item())
    assert.equal(3, o3.iterations:item())
    train(m3, o3, s3, 2, man3)
    assert.is_true(max_diff(m1:get_weights(), m3:get_weights()) <= 1e-6)
    assert.equal(dir .. "/ckpt-5", man3.latest_checkpoint)   -- numbering went on after the restore
    rmrf(parent)
  end)

  it("check names and shapes before changing anything", function()
    local parent = tmpdir()
    local m = Net()
    m:build { -1, 4 }
    local path = mg.train.Checkpoint { model = m }:save(parent .. "/c")
    assert.equal(parent .. "/c-1", path)
    local other = nn.Sequential { nn.Input { shape = { 4 } }, nn.Dense(3) }
    local before = other:get_weights()
    fails(function() mg.train.Checkpoint { model = other }:restore(path) end, "Checkpoint:restore", "model/")
    assert.equal(0, max_diff(before, other:get_weights()))
    fails(function() mg.train.Checkpoint { model = m, extra = mg.Variable(mg.zeros { 2 }) }:restore(path) end,
      "no 'extra'")
    fails(function() mg.train.Checkpoint { model = m }:restore(parent .. "/nope") end, "nope")
    fails(function() mg.train.Checkpoint { model = 3 } end, "holds models/layers, optimizers and Variables")
    assert.is_nil(mg.train.latest_checkpoint(parent .. "/empty"))
    rmrf(parent)
  end)

  it("leave a loadable latest checkpoint when the writer is killed mid-save (SIGKILL)", function()
    local parent = tmpdir()
    local dir = parent .. "/ck"
    kill_saver_after(parent, string.format([[
      local mg = require "moongrad"
      local m = mg.nn.Sequential { mg.nn.Input { shape = { 256 } }, mg.nn.Dense(512), mg.nn.Dense(256) }
      local step = mg.Variable(mg.tensor(0, "int64"))
      local man = mg.train.CheckpointManager(mg.train.Checkpoint { model = m, step = step }, %q, { max_to_keep = 2 })
      while true do
        step:assign_add(1)
        for _, w in ipairs(m.weights) do w:assign(mg.full(w.shape, step:item())) end
        man:save()
      end
    ]], dir))
    local latest = mg.train.latest_checkpoint(dir)
    assert.truthy(latest, "the writer saved nothing in 1.5 s")
    local m = nn.Sequential { nn.Input { shape = { 256 } }, nn.Dense(512), nn.Dense(256) }
    local step = mg.Variable(mg.tensor(0, "int64"))
    mg.train.Checkpoint { model = m, step = step }:restore(latest)
    assert.is_true(step:item() >= 1)
    for _, w in ipairs(m.weights) do near(mg.max(w), step:item(), 0) end   -- one consistent save
    rmrf(parent)
  end)
end)

describe("model:save killed mid-save", function()
  it("leaves a directory that loads (SIGKILL in a save loop)", function()
    local parent = tmpdir()
    local dir = parent .. "/m"
    kill_saver_after(parent, string.format([[
      local mg = require "moongrad"
      local m = mg.nn.Sequential { mg.nn.Input { shape = { 256 } }, mg.nn.Dense(512), mg.nn.Dense(256) }
      m:compile { optimizer = "adam", loss = "mse" }
      local k = 0
      while true do
        k = k + 1
        for _, w in ipairs(m.weights) do w:assign(mg.full(w.shape, k)) end
        m:save(%q)
      end
    ]], dir))
    local m = nn.load_model(dir)
    local k = mg.max(m.weights[1]):item()
    assert.is_true(k >= 1, "the saver wrote nothing in 1.5 s")
    for _, w in ipairs(m.weights) do
      near(mg.max(w), k, 0)
      near(mg.min(w), k, 0)   -- one consistent save
    end
    rmrf(parent)
  end)
end)

describe("ModelCheckpoint", function()
  it("writes loadable model directories (or weights files)", function()
    local x, y = data()
    local m = sequential()
    compile(m)
    local parent = tmpdir()
    m:fit(x, y, { epochs = 2, batch_size = 16, verbose = 0, callbacks = {
      mg.callbacks.ModelCheckpoint { filepath = parent .. "/model-{epoch:02d}" },
      mg.callbacks.ModelCheckpoint { filepath = parent .. "/w-{epoch}.weights.safetensors", save_weights_only = true },
    } })
    local m2 = nn.load_model(parent .. "/model-02")
    near(m2:predict(x), m:predict(x), 0)
    local m3 = sequential()
    m3:load_weights(parent .. "/w-2.weights.safetensors")
    near(m3:predict(x), m:predict(x), 0)
    assert.is_true(saving.is_dir(parent .. "/model-01"))
    rmrf(parent)
  end)
end)

describe("plot_model", function()
  it("draws Sequential (with its input) and two-input functional models as DOT, PNG and SVG", function()
    local seq = nn.Sequential { nn.Rescaling(1 / 255, { input_shape = { 28, 28 } }), nn.Reshape { 28, 28, 1 },
      nn.Conv2D(4, 3, { activation = "relu" }), nn.Flatten(), nn.Dense(10, { name = "logits" }) }
    local dot = nn.model_to_dot(seq, { show_shapes = true, show_layer_activations = true })
    assert.truthy(dot:find('L1 [label="{input (InputLayer)|{input: (None, 28, 28)|output: (None, 28, 28)}}"', 1, true)
      or dot:find("InputLayer)|{input: (None, 28, 28)|output: (None, 28, 28)}}", 1, true), dot)
    assert.truthy(dot:find("Conv2D) relu|{input: (None, 28, 28, 1)|output: (None, 26, 26, 4)}}", 1, true), dot)
    assert.truthy(dot:find("L5 -> L6;", 1, true), dot)
    local a, b = nn.Input { shape = { 3 }, name = "left" }, nn.Input { shape = { 2 }, name = "right" }
    local m = nn.Model { inputs = { a, b }, outputs = nn.Dense(1)(nn.Concatenate() { a, b }) }
    local d2 = nn.model_to_dot(m, { show_shapes = true })
    assert.truthy(d2:find("input: (None, 3), (None, 2)|output: (None, 5)", 1, true), d2)
    assert.truthy(d2:find("L1 -> L3;", 1, true) and d2:find("L2 -> L3;", 1, true), d2)
    local dotfile = h.tmpname(".dot")
    assert.equal(d2, nn.plot_model(m, dotfile, { show_shapes = true }))
    local f = assert(io.open(dotfile))
    assert.equal(d2, f:read("a"))
    f:close()
    os.remove(dotfile)
    local has_dot = os.execute("command -v dot >/dev/null 2>&1")
    if has_dot ~= true and has_dot ~= 0 then
      pending("graphviz is not installed")
      return
    end
    local png = h.tmpname(".png")
    nn.plot_model(seq, png, { show_shapes = true })
    f = assert(io.open(png, "rb"))
    assert.equal("\137PNG", f:read(4))
    f:close()
    os.remove(png)
    local svg = h.tmpname(".svg")
    nn.plot_model(m, svg)
    f = assert(io.open(svg, "rb"))
    assert.truthy(f:read("a"):find("<svg", 1, true))
    f:close()
    os.remove(svg)
  end)
end)
