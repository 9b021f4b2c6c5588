-- nn_config_spec.lua — saving and restoring models: get_config/from_config
-- round trips for every layer, to_json/model_from_json for Sequential and
-- functional models (shared layers, several inputs/outputs, nesting),
-- clone_model and the errors for subclassed models; every built-in layer
-- class round-trips in a model with the same outputs once the weights are
-- copied. Also the Fashion-MNIST reader (IDX files).
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
    function() return nn.Embedding(10, 3, { mask_zero = true }) end,
    function() return nn.Masking { mask_value = -1 } end,
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

  -- every built-in layer class: {make, input shape(s) without the batch axis [, input dtype]}
  local cases = {
    Dense = { function() return nn.Dense(3, { activation = "tanh", use_bias = false, kernel_initializer = "he_normal",
      kernel_regularizer = nn.regularizers.L1L2 { l1 = 0.01, l2 = 0.02 } }) end, { 4 } },
    Conv2D = { function() return nn.Conv2D(4, { 3, 2 }, { strides = 2, padding = "same", activation = "relu",
      dilation_rate = 1, bias_initializer = "ones", kernel_initializer = nn.initializers.RandomNormal { stddev = 0.3 } })
      end, { 6, 6, 2 } },
    Conv2DTranspose = { function() return nn.Conv2DTranspose(2, 3, { strides = 2, output_padding = 1 }) end,
      { 4, 4, 3 } },
    MaxPooling2D = { function() return nn.MaxPooling2D(3, 2, "same") end, { 6, 6, 2 } },
    AveragePooling2D = { function() return nn.AveragePooling2D(2) end, { 4, 4, 2 } },
    GlobalAveragePooling2D = { function() return nn.GlobalAveragePooling2D { keepdims = true } end, { 4, 4, 2 } },
    GlobalMaxPooling2D = { function() return nn.GlobalMaxPooling2D() end, { 4, 4, 2 } },
    ZeroPadding1D = { function() return nn.ZeroPadding1D { 2, 1 } end, { 3, 2 } },
    ZeroPadding2D = { function() return nn.ZeroPadding2D { { 1, 0 }, { 2, 1 } } end, { 3, 3, 2 } },
    ZeroPadding3D = { function() return nn.ZeroPadding3D(1) end, { 2, 2, 2, 1 } },
    Cropping1D = { function() return nn.Cropping1D { 1, 2 } end, { 5, 2 } },
    Cropping2D = { function() return nn.Cropping2D { cropping = { 1, 2 } } end, { 4, 6, 2 } },
    Cropping3D = { function() return nn.Cropping3D() end, { 3, 4, 3, 1 } },
    UpSampling1D = { function() return nn.UpSampling1D(3) end, { 3, 2 } },
    UpSampling2D = { function() return nn.UpSampling2D { size = { 2, 1 }, interpolation = "nearest" } end, { 2, 3, 2 } },
    UpSampling3D = { function() return nn.UpSampling3D { 1, 2, 2 } end, { 2, 2, 2, 1 } },
    DepthwiseConv2D = { function() return nn.DepthwiseConv2D(3, { depth_multiplier = 2, padding = "same",
      depthwise_regularizer = nn.regularizers.L2(0.1), bias_initializer = "ones" }) end, { 5, 5, 2 } },
    SeparableConv2D = { function() return nn.SeparableConv2D(4, { 3, 2 }, { strides = 2, activation = "relu",
      pointwise_initializer = "he_normal", pointwise_regularizer = nn.regularizers.L1(0.01) }) end, { 6, 6, 2 } },
    Conv1D = { function() return nn.Conv1D(4, 3, { padding = "causal", dilation_rate = 2, activation = "relu",
      bias_initializer = "ones", kernel_regularizer = nn.regularizers.L2(0.1) }) end, { 7, 2 } },
    Conv3D = { function() return nn.Conv3D(4, { 2, 3, 2 }, { strides = { 1, 2, 1 }, padding = "same", groups = 2,
      use_bias = false }) end, { 3, 4, 3, 2 } },
    MaxPooling1D = { function() return nn.MaxPooling1D(3, 2, "same") end, { 7, 2 } },
    AveragePooling1D = { function() return nn.AveragePooling1D { pool_size = 2, strides = 1 } end, { 5, 2 } },
    MaxPooling3D = { function() return nn.MaxPooling3D { pool_size = { 1, 2, 2 } } end, { 2, 4, 4, 2 } },
    AveragePooling3D = { function() return nn.AveragePooling3D(2, 1, "same") end, { 3, 3, 3, 1 } },
    GlobalMaxPooling1D = { function() return nn.GlobalMaxPooling1D { keepdims = true } end, { 5, 3 } },
    GlobalAveragePooling1D = { function() return nn.GlobalAveragePooling1D() end, { 5, 3 } },
    GlobalMaxPooling3D = { function() return nn.GlobalMaxPooling3D() end, { 2, 3, 2, 3 } },
    GlobalAveragePooling3D = { function() return nn.GlobalAveragePooling3D { keepdims = true } end, { 2, 3, 2, 3 } },
    Flatten = { function() return nn.Flatten() end, { 2, 3 } },
    Reshape = { function() return nn.Reshape { 3, -1 } end, { 6 } },
    Dropout = { function() return nn.Dropout(0.25, { seed = 5 }) end, { 4 } },
    BatchNormalization = { function() return nn.BatchNormalization { momentum = 0.9, epsilon = 0.01,
      gamma_regularizer = nn.regularizers.L2(0.1), center = false } end, { 4 } },
    LayerNormalization = { function() return nn.LayerNormalization { axis = -1, epsilon = 1e-4,
      beta_regularizer = nn.regularizers.L1(0.1) } end, { 4 } },
    Embedding = { function() return nn.Embedding(10, 3, { embeddings_initializer = "random_uniform" }) end, { 5 }, "int64" },
    Masking = { function() return nn.Masking { mask_value = 0.5 } end, { 3, 4 } },
    Activation = { function() return nn.Activation("gelu") end, { 4 } },
    Rescaling = { function() return nn.Rescaling(1 / 255, { offset = -0.5 }) end, { 4 } },
    Add = { function() return nn.Add() end, { { 3 }, { 3 } } },
    Subtract = { function() return nn.Subtract() end, { { 3 }, { 3 } } },
    Multiply = { function() return nn.Multiply() end, { { 3 }, { 3 } } },
    Average = { function() return nn.Average() end, { { 3 }, { 3 } } },
    Maximum = { function() return nn.Maximum() end, { { 3 }, { 3 } } },
    Minimum = { function() return nn.Minimum() end, { { 3 }, { 3 } } },
    Concatenate = { function() return nn.Concatenate { axis = 2 } end, { { 3 }, { 2 } } },
    SimpleRNN = { function() return nn.SimpleRNN(4, { return_sequences = true, activation = "relu" }) end, { 5, 2 } },
    LSTM = { function() return nn.LSTM(4, { go_backwards = true, unit_forget_bias = false,
      recurrent_regularizer = nn.regularizers.L2(0.01) }) end, { 5, 2 } },
    GRU = { function() return nn.GRU(4, { reset_after = false, recurrent_activation = "hard_sigmoid" }) end, { 5, 2 } },
    RNN = { function() return nn.RNN(nn.GRUCell(3, { dropout = 0.1 }), { return_sequences = true }) end, { 5, 2 } },
    Bidirectional = { function() return nn.Bidirectional(nn.LSTM(3), { merge_mode = "mul" }) end, { 5, 2 } },
    TimeDistributed = { function() return nn.TimeDistributed(nn.Dense(3)) end, { 5, 2 } },
    ConvLSTM2D = { function() return nn.ConvLSTM2D(2, 3, { padding = "same", return_sequences = true }) end, { 3, 4, 4, 2 } },
    Normalization = { function() return nn.Normalization { axis = -1 } end, { 4 } },
    Discretization = { function() return nn.Discretization { bin_boundaries = { -0.5, 0, 0.5 },
      output_mode = "count" } end, { 4 } },
    CategoryEncoding = { function() return nn.CategoryEncoding { num_tokens = 10, output_mode = "count" } end, { 5 },
      "int64" },
    Hashing = { function() return nn.Hashing { num_bins = 5, salt = 3, output_mode = "multi_hot" } end, { 5 }, "int64" },
    IntegerLookup = { function() return nn.IntegerLookup { vocabulary = { 2, 4, 6 }, output_mode = "multi_hot" } end,
      { 5 }, "int64" },
    GroupNormalization = { function() return nn.GroupNormalization { groups = 2, epsilon = 0.01,
      gamma_initializer = "random_normal", beta_regularizer = nn.regularizers.L2(0.1) } end, { 3, 4 } },
    UnitNormalization = { function() return nn.UnitNormalization { axis = { 2, 3 } } end, { 3, 4 } },
    ReLU = { function() return nn.ReLU { max_value = 2, negative_slope = 0.1, threshold = 0.3 } end, { 4 } },
    LeakyReLU = { function() return nn.LeakyReLU { negative_slope = 0.05 } end, { 4 } },
    PReLU = { function() return nn.PReLU { alpha_initializer = "random_uniform", shared_axes = { 1 } } end, { 3, 4 } },
    ELU = { function() return nn.ELU { alpha = 0.5 } end, { 4 } },
    Softmax = { function() return nn.Softmax { axis = { 2, 3 } } end, { 3, 4 } },
    RepeatVector = { function() return nn.RepeatVector(3) end, { 4 } },
    Permute = { function() return nn.Permute { 2, 1 } end, { 3, 4 } },
    GaussianNoise = { function() return nn.GaussianNoise(0.2) end, { 4 } },
    GaussianDropout = { function() return nn.GaussianDropout(0.2) end, { 4 } },
    SpatialDropout1D = { function() return nn.SpatialDropout1D(0.2, { seed = 3 }) end, { 3, 4 } },
    SpatialDropout2D = { function() return nn.SpatialDropout2D(0.2, { data_format = "channels_first" }) end, { 2, 3, 4 } },
    SpatialDropout3D = { function() return nn.SpatialDropout3D(0.2) end, { 2, 2, 3, 4 } },
    ActivityRegularization = { function() return nn.ActivityRegularization { l1 = 0.01, l2 = 0.1 } end, { 4 } },
    SeparableConv1D = { function() return nn.SeparableConv1D(3, 2, { depth_multiplier = 2, padding = "same" }) end,
      { 5, 2 } },
    DepthwiseConv1D = { function() return nn.DepthwiseConv1D(3, { strides = 2, activation = "relu" }) end, { 5, 2 } },
    Conv1DTranspose = { function() return nn.Conv1DTranspose(2, 3, { strides = 2, output_padding = 1 }) end, { 4, 2 } },
    Conv3DTranspose = { function() return nn.Conv3DTranspose(2, { 1, 2, 2 }, { padding = "same" }) end,
      { 2, 3, 3, 1 } },
    Resizing = { function() return nn.Resizing { 3, 5, crop_to_aspect_ratio = true, interpolation = "bicubic" } end,
      { 4, 4, 2 } },
    CenterCrop = { function() return nn.CenterCrop(2, 3) end, { 4, 4, 2 } },
    RandomFlip = { function() return nn.RandomFlip { mode = "horizontal", seed = 2 } end, { 4, 4, 2 } },
    RandomRotation = { function() return nn.RandomRotation { { -0.2, 0.1 }, fill_mode = "wrap", seed = 1 } end,
      { 4, 4, 2 } },
    RandomZoom = { function() return nn.RandomZoom { 0.2, { -0.1, 0.3 }, fill_mode = "constant" } end, { 4, 4, 2 } },
    RandomTranslation = { function() return nn.RandomTranslation { 0.1, 0.2, interpolation = "nearest" } end,
      { 4, 4, 2 } },
    RandomContrast = { function() return nn.RandomContrast { 0.4, value_range = { -1, 1 } } end, { 4, 4, 2 } },
    RandomCrop = { function() return nn.RandomCrop { 3, 3, seed = 5 } end, { 4, 4, 2 } },
    MultiHeadAttention = { function() return nn.MultiHeadAttention { num_heads = 2, key_dim = 3, value_dim = 2,
      output_shape = 5, kernel_regularizer = nn.regularizers.L2(0.01) } end, { { 4, 6 }, { 3, 5 } } },
    Attention = { function() return nn.Attention { use_scale = true, score_mode = "concat" } end, { { 3, 4 }, { 5, 4 } } },
    AdditiveAttention = { function() return nn.AdditiveAttention { use_scale = true } end, { { 3, 4 }, { 5, 4 } } },
  }
  -- aliases, the base class and layers without a config of their own; StringLookup and
  -- TextVectorization take Lua tables of strings, which no nn.Input carries (their round trips
  -- are in nn_preprocessing_spec)
  local not_cases = { Layer = true, Input = true, InputLayer = true, Lambda = true, AvgPool2D = true,
    MaxPool2D = true, GlobalAvgPool2D = true, GlobalMaxPool2D = true,
    Convolution1D = true, Convolution3D = true, MaxPool1D = true, AvgPool1D = true, MaxPool3D = true, AvgPool3D = true,
    GlobalAvgPool1D = true, GlobalMaxPool1D = true, GlobalAvgPool3D = true, GlobalMaxPool3D = true, SeparableConvolution2D = true,
    SeparableConvolution1D = true, Convolution1DTranspose = true, Convolution3DTranspose = true, StringLookup = true, TextVectorization = true,
    -- cells step one (batch, features) input with states: their round trips are in nn_recurrent_more_spec
    SimpleRNNCell = true, LSTMCell = true, GRUCell = true, StackedRNNCells = true }

  it("cover every built-in layer class: config, JSON and outputs round-trip in a model", function()
    for name in pairs(nn.layers) do
      assert.truthy(cases[name] or not_cases[name], "layer class " .. name .. " has no config round-trip case")
    end
    for name, case in pairs(cases) do
      local layer = case[1]()
      assert.equal(name, layer.class_name)
      local cls = getmetatable(layer)
      local cfg = layer:get_config()
      local again = cls.from_config(cls, json.decode(json.encode(cfg)))
      assert.equal(json.encode(cfg), json.encode(again:get_config()), name)
      local shapes = case[2]
      local multi = type(shapes[1]) == "table"
      local ins, xs = {}, {}
      for i, s in ipairs(multi and shapes or { shapes }) do
        ins[i] = nn.Input { shape = s, dtype = case[3] }
        local full = { 2 }
        for _, d in ipairs(s) do full[#full + 1] = d end
        xs[i] = case[3] and mg.random.integers(full, 1, 9) or mg.random.normal(full)
      end
      local m = nn.Model { inputs = multi and ins or ins[1], outputs = layer(multi and ins or ins[1]) }
      local m2 = nn.model_from_json(m:to_json())
      assert.equal(m:to_json(), m2:to_json(), name)
      m2:set_weights(m:get_weights())
      local x = multi and xs or xs[1]
      near(m2(x), m(x), 1e-6, name)
      local fresh = nn.clone_model(m)
      assert.equal(#m.weights, #fresh.weights, name)
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

-- weight files, saved models and checkpoints: tests/spec/nn_saving_spec.lua

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
