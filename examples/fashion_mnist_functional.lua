-- Fashion-MNIST with the CNN of fashion_mnist_cnn.lua, written as a
-- functional model: nn.Input, layers called on Keras tensors, nn.Model.
--
--   moongrad examples/fashion_mnist_functional.lua [--quick]   (MG_QUICK=1 too)
--
-- Needs the Debian package dataset-fashion-mnist.
local mg = require("moongrad")
local nn = mg.nn

local quick = os.getenv("MG_QUICK") == "1"
for _, a in ipairs(arg or {}) do if a == "--quick" then quick = true end end

mg.random.seed(1)
local train, test = mg.datasets.fashion_mnist.load_data()
local x_train, y_train = table.unpack(train)
local x_test, y_test = table.unpack(test)
if quick then
  x_train, y_train = x_train:slice { { 1, 4000 } }, y_train:slice { { 1, 4000 } }
  x_test, y_test = x_test:slice { { 1, 2000 } }, y_test:slice { { 1, 2000 } }
end

local inputs = nn.Input { shape = { 28, 28 }, name = "image" }
local x = nn.Rescaling(1 / 255)(inputs)   -- uint8 pixels to [0, 1], batch by batch
x = nn.Reshape { 28, 28, 1 }(x)
x = nn.Conv2D(32, 5, { padding = "same", activation = "relu" })(x)
x = nn.MaxPooling2D(2)(x)
x = nn.Conv2D(64, 5, { padding = "same", activation = "relu" })(x)
x = nn.MaxPooling2D(2)(x)
x = nn.Flatten()(x)
x = nn.Dense(1024, { activation = "relu", name = "features" })(x)
x = nn.Dropout(0.3)(x)
local outputs = nn.Dense(10, { activation = "softmax", name = "class" })(x)
local model = nn.Model { inputs = inputs, outputs = outputs, name = "fashion_cnn" }
model:summary()

model:compile { optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
-- training data as an mg.data pipeline (doc/data.md); the test set as one too
local train_ds = mg.data.Dataset.from_tensor_slices(x_train, y_train):shuffle(x_train.shape[1], { seed = 1 })
  :batch(32):prefetch(4)
model:fit(train_ds, { epochs = 1 })
local loss, accuracy = model:evaluate(mg.data.Dataset.from_tensor_slices(x_test, y_test):batch(256), { verbose = 0 })
print(string.format("test loss %.4f, test accuracy %.4f (%d images)", loss, accuracy, x_test.shape[1]))

-- the trained layers also make a feature extractor: a new model on an intermediate output
local extractor = nn.Model { inputs = model.inputs, outputs = model:get_layer("features").output }
local features = extractor:predict(x_test:slice { { 1, 8 } })
print(string.format("features of 8 test images: %s", table.concat(features.shape, "x")))
assert(accuracy > (quick and 0.6 or 0.85), "the model did not learn")
