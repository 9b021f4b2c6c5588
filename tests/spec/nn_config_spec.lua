-- nn_config_spec.lua — saving and restoring models: get_config/from_config
-- round trips for every layer, to_json/model_from_json for Sequential and
-- functional models (shared layers, several inputs/outputs, nesting),
-- clone_model, weight files (safetensors) and model files, and the errors
-- for subclassed models. Also the Fashion-MNIST reader (IDX files).
local mg = require "moongrad"
local nn = mg.nn
local h = require "tests.spec.nn_helpers"
local near, fails = h.near, h.fails
local json = require "moongrad.nn.json"

local function copy_weights(from, to)
  to:set_weights(from:get_weights())
end

describe("layer configs", function()
  local layers = {
    function() return nn.Dense(3, { activation = "tanh", use_bias = false, kernel_initializer = "he_normal" }) end,
    function() return nn.Dense(2, { kernel_regularizer = nn.regularizers.L2(0.1) }) end,
    function() return nn.Conv2D(4, { 3, 2 }, { strides = 2, padding = "same", activation = "relu" }) end,
    function() return nn.Conv2DTranspose(2, 3, { strides = 2, output_padding = 1 }) end,
    function() return nn.MaxPooling2D(3, 2, "same") end,
    function() return nn.AveragePooling2D(2) end,
    function() return nn.GlobalAveragePooling2D { keepdims = true } end,
    function() return nn.Flatten() end,
    function() return nn.Reshape { 2, -1 } end,
    function() return nn.Dropout(0.25, { seed = 5 }) end,
    function() return nn.BatchNormalization { momentum = 0.9, epsilon = 0.01 } end,
    function() return nn.LayerNormalization { axis = -1 } end,
    function() return nn.Embedding(10, 3) end,
    function() return nn.Activation("gelu") end,
    function() return nn.Rescaling(1 / 255, { offset = -0.5 }) end,
    function() return nn.Add() end,
    function() return nn.Concatenate { axis = 1 } end,
    function() return nn.SimpleRNN(4, { return_sequences = true }) end,
    function() return nn.LSTM(4, { go_backwards = true }) end,
    function() return nn.GRU(4, { reset_after = false }) end,
  }

  it("round-trip through from_config and JSON", function()
    for _, make in ipairs(layers) do
      local l = make()
      local cfg = l:get_config()
      local cls = getmetatable(l)
      local again = cls.from_config(cls, json.decode(json.encode(cfg)))
      assert.equal(json.encode(cfg), json.encode(again:get_config()), l.class_name)
      assert.equal(l.class_name, again.class_name)
    end
  end)

  it("JSON text is deterministic and readable by cjson", function()
    local text = json.encode({ b = { 1, 2.5, {} }, a = "x\"y\n", c = true })
    assert.equal('{"a":"x\\"y\\n","b":[1,2.5,[]],"c":true}', text)
    local back = json.decode(text)
    assert.same({ 1, 2.5, {} }, back.b)
    assert.equal(math.type and "integer" or "number", math.type and math.type(back.b[1]) or "number")
  end)
end)

describe("model configs", function()
  it("Sequential to_json / model_from_json", function()
    local m = nn.Sequential({ nn.Input { shape = { 4 } }, nn.Dense(8, { activation = "relu" }), nn.Dropout(0.5),
      nn.Dense(2, { activation = "softmax" }) }, { name = "seq_cfg" })
    local text = m:to_json()
    local m2 = nn.model_from_json(text)
    assert.equal("Sequential", m2.class_name)
    assert.equal("seq_cfg", m2.name)
    assert.same({ -1, 2 }, m2.outputs[1].shape)
    assert.equal(#m.weights, #m2.weights)
    copy_weights(m, m2)
    local x = mg.random.normal { 3, 4 }
    near(m2(x), m(x))
    assert.equal(text, m2:to_json())
  end)

  it("functional models with shared layers, several inputs/outputs and a nested Sequential", function()
    local a, b = nn.Input { shape = { 3 }, name = "ca" }, nn.Input { shape = { 3 }, name = "cb" }
    local shared = nn.Dense(4, { name = "cshared", activation = "relu" })
    local inner = nn.Sequential({ nn.Dense(4), nn.Dense(2) }, { name = "cinner" })
    local sa, sb = shared(a), shared(b)
    local o1 = inner(nn.Add() { sa, sb })
    local o2 = nn.Dense(1, { name = "chead" })(nn.Concatenate() { sa, sb })
    local m = nn.Model { inputs = { a, b }, outputs = { o1, o2 }, name = "cfg_fn" }
    local m2 = nn.model_from_json(m:to_json())
    assert.equal("Functional", m2.class_name)
    assert.same({ "ca", "cb" }, m2.input_names)
    assert.equal(#m.layers, #m2.layers)
    assert.equal(2, #m2:_model_nodes(m2:get_layer("cshared")))
    copy_weights(m, m2)
    local xa, xb = mg.random.normal { 2, 3 }, mg.random.normal { 2, 3 }
    local r1, r2 = m { xa, xb }, m2 { xa, xb }
    near(r2[1], r1[1])
    near(r2[2], r1[2])
    assert.equal(m:to_json(), m2:to_json())
  end)

  it("clone_model makes fresh weights with the same architecture", function()
    mg.random.seed(1)
    local x = nn.Input { shape = { 3 } }
    local m = nn.Model { inputs = x, outputs = nn.Dense(2)(nn.Dense(5)(x)) }
    local c = nn.clone_model(m)
    assert.equal(#m.weights, #c.weights)
    assert.is_true(mg.max(mg.abs(c.weights[1] - m.weights[1])):item() > 0)
    assert.same(m.weights[1].shape, c.weights[1].shape)
    local s = nn.Sequential { nn.Input { shape = { 2 } }, nn.Dense(3) }
    assert.same({ -1, 3 }, nn.clone_model(s).outputs[1].shape)
  end)

  it("refuses to serialize or clone subclassed models", function()
    local Sub = nn.Model:extend("SpecSub")
    function Sub:init() self.d = nn.Dense(1) end
    function Sub:call(t) return self.d(t) end
    local m = Sub()
    fails(function() nn.clone_model(m) end, "clone_model", "subclassed")
    fails(function() m:to_json() end, "subclassed", "get_config")
  end)

  it("knows custom layer classes by their extend name", function()
    local Double = nn.Layer:extend("SpecDouble")
    function Double:call(t) return t * 2 end
    function Double:compute_output_shape(s) return s end
    local x = nn.Input { shape = { 2 } }
    local m = nn.Model { inputs = x, outputs = Double()(x) }
    local m2 = nn.model_from_json(m:to_json())
    near(m2(mg.tensor { { 1.0, 2.0 } }), { { 2, 4 } })
    fails(function() nn.model_from_json('{"class_name":"NoSuchLayer","config":{}}') end, "unknown layer class")
  end)
end)

describe("weight files", function()
  local function model()
    return nn.Sequential { nn.Input { shape = { 3 } }, nn.Dense(4), nn.BatchNormalization(), nn.Dense(2) }
  end

  it("save_weights / load_weights in safetensors format", function()
    local a, b = model(), model()
    local path = h.tmpname(".safetensors")
    a:save_weights(path)
    b:load_weights(path)
    for i, w in ipairs(a.weights) do near(b.weights[i], w, 0) end
    -- the header is JSON after an 8-byte little-endian length
    local f = assert(io.open(path, "rb"))
    local data = f:read("a")
    f:close()
    local n = 0
    for i = 8, 1, -1 do n = n * 256 + data:byte(i) end
    local header = json.decode(data:sub(9, 8 + n))
    assert.equal("F32", header[a.weights[1].name].dtype)
    assert.same({ 3, 4 }, header[a.weights[1].name].shape)
    assert.equal("moongrad", header.__metadata__.format)
    local other = nn.Sequential { nn.Input { shape = { 3 } }, nn.Dense(5) }
    fails(function() other:load_weights(path) end, "load_weights")
    os.remove(path)
  end)

  it("model:save / nn.load_model keep the architecture and the weights", function()
    local m = model()
    m:compile { optimizer = "sgd", loss = "mse" }
    m:fit(mg.random.normal { 8, 3 }, mg.random.normal { 8, 2 }, { epochs = 1, verbose = 0 })
    local path = h.tmpname(".safetensors")
    m:save(path)
    local m2 = nn.load_model(path)
    os.remove(path)
    local x = mg.random.normal { 5, 3 }
    near(m2(x), m(x), 1e-6)
    local wpath = h.tmpname(".safetensors")
    m:save_weights(wpath)
    fails(function() nn.load_model(wpath) end, "holds weights only")
    os.remove(wpath)
  end)
end)

describe("datasets", function()
  local idx = require "moongrad.datasets.idx"

  local function write(path, bytes)
    local f = assert(io.open(path, "wb"))
    f:write(bytes)
    f:close()
  end

  it("read IDX files, gzip-compressed or not", function()
    local path = h.tmpname("-images-idx3-ubyte")
    local body = {}
    for i = 0, 11 do body[#body + 1] = string.char(i * 10) end
    write(path, "\0\0\8\3" .. "\0\0\0\2" .. "\0\0\0\2" .. "\0\0\0\3" .. table.concat(body))
    local t = idx.read(path)
    assert.equal("uint8", t.dtype)
    assert.same({ 2, 2, 3 }, t.shape)
    near(t[2][2], { 90, 100, 110 })
    os.execute("gzip -kf '" .. path .. "'")
    local gz = idx.read(path .. ".gz")
    near(gz, t, 0)
    os.remove(path)
    os.remove(path .. ".gz")
    local ipath = h.tmpname("-ints")
    write(ipath, "\0\0\12\1" .. "\0\0\0\2" .. "\0\0\1\0" .. "\255\255\255\254")
    near(idx.read(ipath), { 256, -2 })
    -- the other element types, big-endian: float32, float64, int16, int8
    write(ipath, "\0\0\13\1" .. "\0\0\0\2" .. "\63\192\0\0" .. "\192\0\0\0")
    near(idx.read(ipath), { 1.5, -2 })
    assert.equal("float32", idx.read(ipath).dtype)
    write(ipath, "\0\0\14\1" .. "\0\0\0\1" .. "\63\248\0\0\0\0\0\0")
    near(idx.read(ipath), { 1.5 })
    write(ipath, "\0\0\11\1" .. "\0\0\0\2" .. "\1\2\255\254")
    near(idx.read(ipath), { 258, -2 })
    write(ipath, "\0\0\9\1" .. "\0\0\0\3" .. "\127\128\5")
    near(idx.read(ipath), { 127, -128, 5 })
    os.remove(ipath)
    fails(function() idx.decode("\1\2\3\4", "junk") end, "not an IDX file")
  end)

  it("name the Debian package when Fashion-MNIST is missing", function()
    fails(function() mg.datasets.fashion_mnist.load_data { path = "/nonexistent" } end, "dataset-fashion-mnist",
      "/nonexistent")
  end)

  it("load Fashion-MNIST when installed", function()
    local fm = mg.datasets.fashion_mnist
    if not idx.file_exists(fm.default_dir .. "/t10k-labels-idx1-ubyte.gz") then
      pending("dataset-fashion-mnist is not installed")
      return
    end
    local train, test = fm.load_data()
    local x, y = table.unpack(train)
    assert.equal(train.x, x)
    assert.same({ 60000, 28, 28 }, x.shape)
    assert.same({ 10000, 28, 28 }, test.x.shape)
    assert.equal("uint8", x.dtype)
    assert.equal("int64", y.dtype)
    assert.equal(1, mg.min(y):item())
    assert.equal(10, mg.max(y):item())
    assert.equal(10, y[1]:item())   -- the first training image is an ankle boot
    assert.equal("Ankle boot", fm.class_names[10])
  end)
end)
