-- onnx_spec.lua — mg.onnx: export to ONNX and load ONNX models (core/onnx_export.c, core/onnx_import.c).
--
-- PyTorch side: models exported by torch.onnx.export, both exporters (tests/fixtures/onnx/, made by
-- tests/fixtures/onnx_torch.py)
-- load and agree with what PyTorch computed (tests/spec/onnx_torch_data.lua). moongrad side: an MLP, the demo CNN
-- made small, an AutoGraph loop (with a branch) and an LSTM model are exported; the files always load back into
-- moongrad and agree exactly with the staged function, and when a Python with onnxruntime is found ($MG_ONNX_PYTHON,
-- build/oracle-venv, bench/.venv) onnxruntime runs them (tests/fixtures/onnx_ort_run.py) and agrees too; otherwise
-- that part is skipped with the reason printed.

local mg = require "moongrad"
local h = require "tests.spec.helpers"
local nn = mg.nn

local FIX = "tests/fixtures/onnx/"
local data = dofile("tests/spec/onnx_torch_data.lua")

local unpack = table.unpack or unpack

local function tmp(name) return os.tmpname() .. "_" .. name end

-- The Python that imports onnxruntime, or nil and why not.
local ort_python, ort_reason
do
  -- (not a table constructor with getenv first: an unset variable would end the list at once)
  local cands = { "build/oracle-venv/bin/python", "bench/.venv/bin/python" }
  local env = os.getenv("MG_ONNX_PYTHON")
  if env and env ~= "" then table.insert(cands, 1, env) end
  for _, py in ipairs(cands) do
    local ok = os.execute(py .. " -c 'import onnxruntime, numpy' >/dev/null 2>&1")
    if ok == true or ok == 0 then ort_python = py; break end
  end
  if not ort_python then
    ort_reason = "no Python with onnxruntime ($MG_ONNX_PYTHON, build/oracle-venv, bench/.venv): onnxruntime checks skipped"
    io.stderr:write("onnx_spec: " .. ort_reason .. "\n")
  end
end

-- onnxruntime's outputs for the model at path on the inputs (tensors), as tensors.
local function ort_run(path, inputs)
  local inp = tmp("in.txt")
  local f = assert(io.open(inp, "w"))
  f:write(#inputs, "\n")
  for _, t in ipairs(inputs) do
    f:write(t.dtype, " ", #t.shape, " ", table.concat(t.shape, " "), "\n")
    local vals = {}
    for i, v in ipairs(t:reshape({ -1 }):totable()) do vals[i] = string.format("%.17g", v) end
    f:write(table.concat(vals, " "), "\n")
  end
  f:close()
  local p = assert(io.popen(ort_python .. " tests/fixtures/onnx_ort_run.py " .. path .. " " .. inp .. " 2>&1"))
  local text = p:read("*a")
  p:close()
  os.remove(inp)
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  local n = tonumber(lines[1])
  assert(n, "onnxruntime failed:\n" .. text)
  local outs = {}
  for i = 1, n do
    local head, shape = {}, {}
    for w in lines[2 * i]:gmatch("%S+") do head[#head + 1] = w end
    for k = 3, 2 + tonumber(head[2]) do shape[#shape + 1] = tonumber(head[k]) end
    local vals = {}
    for w in lines[2 * i + 1]:gmatch("%S+") do vals[#vals + 1] = tonumber(w) end
    local dt = head[1]
    if dt == "bool" then
      for k, v in ipairs(vals) do vals[k] = v ~= 0 end
    end
    outs[i] = mg.tensor(vals, dt):reshape(shape)
  end
  return outs
end

-- f's results on args against the exported file's: reloaded into moongrad (exactly), and onnxruntime (tol).
local function round_trip(f, args, path, tol)
  local want = { f(unpack(args)) }
  local m = mg.onnx.load(path)
  local got = { m(unpack(args)) }
  assert.are.equal(#want, #got)
  for i = 1, #want do
    assert.are.same(want[i].shape, got[i].shape)
    assert.are.equal(want[i].dtype, got[i].dtype)
    assert.are.same(want[i]:totable(), got[i]:totable())
  end
  if ort_python then
    local outs = ort_run(path, args)
    assert.are.equal(#want, #outs)
    for i = 1, #want do
      assert.are.same(want[i].shape, outs[i].shape)
      h.near(outs[i], want[i], tol or 1e-5)
    end
  end
  return m
end

describe("mg.onnx.load: models exported by torch.onnx.export", function()
  for _, name in ipairs({ "mlp", "cnn", "transformer", "lstm", "mlp_dynamo", "cnn_dynamo", "lstm_dynamo" }) do
    it(name .. " agrees with PyTorch", function()
      local d = data[name]
      local m = mg.onnx.load(FIX .. d.file)
      local x = mg.tensor(d.x, mg.float32):reshape(d.x_shape)
      local y = m(x)
      assert.are.same(d.y_shape, y.shape)
      h.near(y:reshape({ -1 }), d.y, 1e-5)
      assert.are.equal(1, m:signature().inputs and #m:signature().inputs)
    end)
  end

  it("runs a loaded model again with other values", function()
    local d = data.mlp
    local m = mg.onnx.load(FIX .. d.file)
    local x = mg.tensor(d.x, mg.float32):reshape(d.x_shape)
    local a = m(x):totable()
    local b = m(x * 2):totable()
    assert.are_not.same(a, b)
    assert.are.same(a, m(x):totable())
  end)

  it("lists every operator it cannot run in one error", function()
    local e = h.fails(function() mg.onnx.load(FIX .. "unsupported.onnx") end, "Hardmax", "Einsum")
    assert.is_nil(e:find("Relu", 1, true))
  end)

  it("refuses a node that reads an undefined value", function()
    h.fails(function() mg.onnx.load(FIX .. "badref.onnx") end, "nowhere", "no earlier node or input defines")
  end)

  it("fails cleanly on an op that does not fit, inside a branch, and moongrad goes on", function()
    h.fails(function() mg.onnx.load(FIX .. "badshape.onnx") end, "MatMul node", "matmul")
    assert.is_true(mg.executing_eagerly())
    local f = mg.func(function(v) return v * 2 end)
    assert.are.same({ 2, 4 }, f(mg.tensor({ 1, 2 }, mg.float32)):totable())
    local m = mg.onnx.load(FIX .. data.mlp.file)   -- and loads the next file
    assert.are.same(data.mlp.y_shape, m(mg.zeros(data.mlp.x_shape)).shape)
  end)

  it("refuses files that are not ONNX models", function()
    local p = tmp("bad.onnx")
    local f = assert(io.open(p, "wb"))
    f:write("\255\255\255\255 this is not a protobuf")
    f:close()
    h.fails(function() mg.onnx.load(p) end, "not an ONNX model")
    f = assert(io.open(p, "wb"))
    f:close()   -- empty: parses as a model with no graph
    h.fails(function() mg.onnx.load(p) end, "no graph")
    os.remove(p)
    h.fails(function() mg.onnx.load(p) end, "cannot open")
    h.fails(function() mg.onnx.load(42) end, "path must be a string")
  end)

  it("checks the number of inputs of a call", function()
    local m = mg.onnx.load(FIX .. data.mlp.file)
    h.fails(function() m() end, "takes 1 inputs, got 0")
  end)
end)

describe("mg.onnx.export", function()
  if not ort_python then
    pending("onnxruntime checks: " .. ort_reason)
  end

  it("an MLP model round-trips (and agrees with onnxruntime)", function()
    mg.random.seed(3)
    local model = nn.Sequential { nn.Input { shape = { 6 } }, nn.Dense(16, { activation = "relu" }),
      nn.Dense(8, { activation = "tanh" }), nn.Dense(4, { activation = "softmax" }) }
    local x = mg.random.normal({ 3, 6 })
    local p = tmp("mlp.onnx")
    assert.are.equal(p, mg.onnx.export(model, p, { args = { x } }))
    round_trip(function(v) return model(v, false) end, { x }, p)
    os.remove(p)
  end)

  it("the demo CNN, small (rescaling, NHWC conv and pooling, flatten, dropout)", function()
    mg.random.seed(4)
    local model = nn.Sequential {
      nn.Rescaling(1 / 255, { input_shape = { 12, 12 } }),
      nn.Reshape { 12, 12, 1 },
      nn.Conv2D(4, 5, { padding = "same", activation = "relu" }),
      nn.MaxPooling2D(2),
      nn.Conv2D(6, 3, { padding = "same", activation = "relu" }),
      nn.MaxPooling2D(2),
      nn.Flatten(),
      nn.Dense(16, { activation = "relu" }),
      nn.Dropout(0.3),
      nn.Dense(10, { activation = "softmax" }),
    }
    local x = mg.random.uniform({ 2, 12, 12 }, 0, 255)
    local p = tmp("cnn.onnx")
    mg.onnx.export(model, p, { args = { x } })
    round_trip(function(v) return model(v, false) end, { x }, p)
    os.remove(p)
  end)

  it("an AutoGraph loop and branch become Loop and If", function()
    local f = mg.func(function(x)
      local s, n = x, mg.tensor(0)
      while mg.sum(s) < 100 do
        s = s * 2 + 1
        n = n + 1
      end
      if mg.max(s) > 50 then s = s - 50 else s = -s end
      return s, n
    end)
    local x = mg.tensor({ 1, 2, 3 }, mg.float32)
    local p = tmp("loop.onnx")
    mg.onnx.export(f, p, { args = { x } })
    local m = round_trip(f, { x }, p)
    -- another input takes other trips through the loop and the other branch
    local y = mg.tensor({ 10, 20, 30 }, mg.float32)
    local a, b = m(y)
    local c, d = f(y)
    assert.are.same(c:totable(), a:totable())
    assert.are.same(d:totable(), b:totable())
    if ort_python then h.near(ort_run(p, { y })[1], c) end
    os.remove(p)
  end)

  it("an LSTM model", function()
    mg.random.seed(5)
    local model = nn.Sequential { nn.Input { shape = { 5, 3 } }, nn.LSTM(4), nn.Dense(2) }
    local x = mg.random.normal({ 2, 5, 3 })
    local p = tmp("lstm.onnx")
    mg.onnx.export(model, p, { args = { x } })
    round_trip(function(v) return model(v, false) end, { x }, p)
    os.remove(p)
  end)

  it("a transformer encoder block (MultiHeadAttention, LayerNormalization, causal attention)", function()
    mg.random.seed(7)
    local inp = nn.Input { shape = { 5, 8 } }
    local a = nn.MultiHeadAttention(2, 4)(inp, inp, { use_causal_mask = true })
    local y = nn.LayerNormalization()(a + inp)
    local z = nn.LayerNormalization()(nn.Dense(8)(nn.Dense(16, { activation = "gelu" })(y)) + y)
    local model = nn.Model { inputs = inp, outputs = z }
    local x = mg.random.normal({ 2, 5, 8 })
    local p = tmp("enc.onnx")
    mg.onnx.export(model, p, { args = { x } })
    local want = model(x, false)
    -- attention is written as its formula, not the fused kernel: close, not bit-exact
    h.near(mg.onnx.load(p)(x), want, 1e-5)
    if ort_python then h.near(ort_run(p, { x })[1], want, 1e-5) end
    os.remove(p)
  end)

  it("more layers: Embedding and GRU sequences, Conv1D, DepthwiseConv2D, Bidirectional SimpleRNN", function()
    mg.random.seed(8)
    local cases = {
      { nn.Sequential { nn.Input { shape = { 6 }, dtype = "int64" }, nn.Embedding(10, 4),
          nn.GRU(5, { return_sequences = true }), nn.GlobalAveragePooling1D(), nn.BatchNormalization(), nn.Dense(3) },
        mg.tensor({ { 1, 2, 3, 4, 5, 6 }, { 9, 8, 7, 10, 1, 2 } }, mg.int64) },
      { nn.Sequential { nn.Input { shape = { 10, 3 } }, nn.Conv1D(4, 3, { strides = 2, padding = "same" }),
          nn.AveragePooling1D(2), nn.Flatten(), nn.Dense(2, { activation = "elu" }) }, mg.random.normal({ 2, 10, 3 }) },
      { nn.Sequential { nn.Input { shape = { 8, 8, 2 } }, nn.DepthwiseConv2D(3, { padding = "same" }), nn.Conv2D(3, 1),
          nn.GlobalMaxPooling2D(), nn.LeakyReLU() }, mg.random.normal({ 2, 8, 8, 2 }) },
      { nn.Sequential { nn.Input { shape = { 4, 3 } }, nn.Bidirectional(nn.SimpleRNN(3)), nn.Dense(2) },
        mg.random.normal({ 2, 4, 3 }) },
    }
    for i, c in ipairs(cases) do
      local model, x = c[1], c[2]
      local p = tmp("more" .. i .. ".onnx")
      mg.onnx.export(model, p, { args = { x } })
      local want = model(x, false)
      h.near(mg.onnx.load(p)(x), want, 1e-6)
      if ort_python then h.near(ort_run(p, { x })[1], want, 1e-5) end
      os.remove(p)
    end
  end)

  it("converts 1-based axes and indices (take, argmax, sum, concat, cumsum, softmax)", function()
    local f = mg.func(function(x, idx)
      local t = mg.take(x, idx, 2)
      local a = mg.argmax(x, 2)
      local s = mg.sum(x, 1)
      local c = mg.concat({ x, x * 2 }, 2)
      return t, a, s, mg.cumsum(c, 2), mg.softmax(x, 1), x:transpose(1, 2)
    end)
    local x = mg.tensor({ { 1, 5, 2, 0 }, { 7, 3, 9, 4 }, { 0, 8, 6, 2 } }, mg.float32)
    local idx = mg.tensor({ 4, 1, 1 }, mg.int64)
    local p = tmp("idx.onnx")
    mg.onnx.export(f, p, { args = { x, idx } })
    round_trip(f, { x, idx }, p)
    os.remove(p)
  end)

  it("an op zoo: elementwise, reductions, movement, casts (reloaded and in onnxruntime)", function()
    local f = mg.func(function(x, y)
      local ax = mg.abs(x) + 0.5
      return mg.exp(x), mg.log1p(ax), mg.sqrt(ax), mg.rsqrt(ax), mg.square(x), mg.sin(x), mg.tanh(x), mg.sigmoid(x),
        mg.softplus(x), mg.erf(x), mg.floor(x), mg.ceil(x), mg.round(x), mg.clip(x, -0.5, 0.7), mg.clip(x, nil, 0.2),
        mg.maximum(x, y), mg.minimum(x, y), mg.pow(ax, y), mg.where(x > 0, x, y), mg.mod(x, ax), mg.fmod(x, ax),
        mg.floordiv(x, ax), mg.expm1(x), mg.log2(ax), mg.log10(ax), mg.exp2(x), mg.log_sigmoid(x), mg.elu(x),
        mg.celu(x, { alpha = 0.5 }), mg.leaky_relu(x, { alpha = 0.1 }), mg.gelu(x), mg.gelu(x, { approximate = true }),
        mg.hard_sigmoid(x), mg.hard_swish(x), mg.isnan(x), mg.logical_and(x > 0, y > 0), mg.not_equal(x, y),
        mg.cast(x * 3, mg.int32), mg.mean(x, { axis = 2, keepdims = true }), mg.max(x, 1), mg.min(x, 2), mg.prod(ax, 2),
        mg.logsumexp(x, 2), mg.variance(x, { axis = 1, correction = 1 }), mg.argmin(x, 1), mg.log_softmax(x, 1),
        mg.reshape(x, { 4, 3 }), mg.permute(x, { 2, 1 }), mg.unsqueeze(x, 2):squeeze(2),
        mg.expand(mg.unsqueeze(x, 1), { 2, 3, 4 }), x:slice({ { 3, 1, -1 }, { 1, 4, 2 } }), mg.select(x, 2, 3),
        mg.pad(x, { 1, 0, 2, 1 }, 0.5), mg.pad(x, { 1, 1, 2, 2 }, 0, "reflect"), mg.tile(x, { 2, 1 }), mg.flip(x),
        mg.flip(x, { axis = { 2 } }), mg.cumsum(x, 1), mg.all(x > -5, 2), mg.any(x > 1, 1), mg.isfinite(x / y),
        mg.trunc(x * 2), mg.sign(x), mg.reciprocal(ax), mg.atan(x), mg.one_hot(mg.argmax(x, 2), 4)
    end)
    local x = mg.tensor({ { 0.3, -1.2, 2.5, 0.0 }, { -0.7, 1.9, -2.2, 0.4 }, { 1.1, -0.1, 0.8, -1.6 } }, mg.float32)
    local y = mg.tensor({ { 0.5, 1.2, -0.4, 2.0 }, { 1.0, -0.3, 0.9, 0.0 }, { -1.5, 0.6, 0.2, 1.3 } }, mg.float32)
    local p = tmp("zoo.onnx")
    mg.onnx.export(f, p, { args = { x, y } })
    local want, got = { f(x, y) }, { mg.onnx.load(p)(x, y) }
    assert.are.equal(66, #want)
    assert.are.equal(#want, #got)
    local function num(t) return mg.cast(t, mg.float64) end
    for i = 1, #want do
      assert.are.equal(want[i].dtype, got[i].dtype)
      h.near(num(got[i]), num(want[i]), 1e-5, "output " .. i)
    end
    if ort_python then
      local outs = ort_run(p, { x, y })
      for i = 1, #want do h.near(num(outs[i]), num(want[i]), 1e-5, "onnxruntime output " .. i) end
    end
    os.remove(p)
  end)

  it("keeps an unknown batch size symbolic (MLP, CNN, LSTM: shapes and initial states read at run time)", function()
    mg.random.seed(6)
    local models = {
      { nn.Sequential { nn.Input { shape = { 4 } }, nn.Dense(3, { activation = "sigmoid" }) }, { 4 } },
      { nn.Sequential { nn.Rescaling(1 / 255, { input_shape = { 12, 12 } }), nn.Reshape { 12, 12, 1 },
          nn.Conv2D(4, 5, { padding = "same", activation = "relu" }), nn.MaxPooling2D(2), nn.Flatten(),
          nn.Dense(10, { activation = "softmax" }) }, { 12, 12 } },
      { nn.Sequential { nn.Input { shape = { 5, 3 } }, nn.LSTM(4), nn.Dense(2) }, { 5, 3 } },
    }
    for i, c in ipairs(models) do
      local model, inner = c[1], c[2]
      local spec = { -1 }
      for _, d in ipairs(inner) do spec[#spec + 1] = d end
      local p = tmp("dyn" .. i .. ".onnx")
      mg.onnx.export(model, p, { input_signature = { { shape = spec, dtype = "float32" } } })
      local m = mg.onnx.load(p)
      for _, n in ipairs({ 1, 3 }) do
        local shape = { n }
        for _, d in ipairs(inner) do shape[#shape + 1] = d end
        local x = mg.random.uniform(shape, 0, 1)
        local want = model(x, false)
        assert.are.same(want:totable(), m(x):totable())
        if ort_python then h.near(ort_run(p, { x })[1], want) end
      end
      os.remove(p)
    end
  end)

  it("names every op with no ONNX form", function()
    local f = mg.func(function(x) return mg.linalg.inv(x) + mg.linalg.det(x) end)
    local x = mg.tensor({ { 2, 1 }, { 1, 3 } }, mg.float32)
    local p = tmp("bad.onnx")
    h.fails(function() mg.onnx.export(f, p, { args = { x } }) end, "no ONNX form", "linalg_inv", "linalg_det")
  end)

  it("checks its arguments", function()
    local f = mg.func(function(x) return x + 1 end)
    local x = mg.tensor({ 1 }, mg.float32)
    h.fails(function() mg.onnx.export(f, "x.onnx", { args = { x }, opset = 9 }) end, "option 'opset' must be in [13, 21], got 9")
    h.fails(function() mg.onnx.export(f, "x.onnx", { args = { x }, optset = 17 }) end, "unknown option 'optset'")
    h.fails(function() mg.onnx.export(f, "x.onnx") end, "give args=")
    h.fails(function() mg.onnx.export(42, "x.onnx") end, "expected a concrete function")
    h.fails(function() mg.onnx.export(f, "/nonexistent/dir/x.onnx", { args = { x } }) end, "cannot open")
  end)
end)
