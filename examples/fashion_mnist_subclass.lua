-- Fashion-MNIST with the CNN of fashion_mnist_cnn.lua, written as a
-- subclassed model (nn.Model:extend: init makes the layers, call runs
-- them), trained both with fit and with a custom loop (a tape and
-- optimizer:apply_gradients in a staged step).
--
--   moongrad examples/fashion_mnist_subclass.lua [--quick]   (MG_QUICK=1 too)
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

local FashionCNN = nn.Model:extend("FashionCNN")

function FashionCNN:init(num_classes)
  self.rescale = nn.Rescaling(1 / 255)   -- uint8 pixels to [0, 1], batch by batch
  self.reshape = nn.Reshape { 28, 28, 1 }
  self.conv1 = nn.Conv2D(32, 5, { padding = "same", activation = "relu" })
  self.pool1 = nn.MaxPooling2D(2)
  self.conv2 = nn.Conv2D(64, 5, { padding = "same", activation = "relu" })
  self.pool2 = nn.MaxPooling2D(2)
  self.flatten = nn.Flatten()
  self.dense = nn.Dense(1024, { activation = "relu" })
  self.dropout = nn.Dropout(0.3)
  self.classifier = nn.Dense(num_classes, { activation = "softmax" })
end

function FashionCNN:call(x, training)
  x = self.pool1(self.conv1(self.reshape(self.rescale(x))))
  x = self.pool2(self.conv2(x))
  x = self.dropout(self.dense(self.flatten(x)), training)
  return self.classifier(x)
end

-- 1. compile and fit, as with the other styles
local model = FashionCNN(10)
model:compile { optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
model:fit(mg.data.Dataset.from_tensor_slices(x_train, y_train):shuffle(x_train.shape[1], { seed = 1 })
  :batch(32):prefetch(4), { epochs = 1 })   -- an mg.data pipeline (doc/data.md)
model:summary()
local _, accuracy = model:evaluate(x_test, y_test, { verbose = 0 })
print(string.format("fit: test accuracy %.4f", accuracy))

-- 2. the same training as a custom loop (a smaller run: the first 8,000 images or the quick subset)
local m2 = FashionCNN(10)
m2:build { -1, 28, 28 }
local opt = mg.optim.Adam()
local loss_fn = mg.losses.SparseCategoricalCrossentropy()
local acc = mg.metrics.SparseCategoricalAccuracy()
opt:build(m2.trainable_weights)
local step = mg.func(function(x, y)
  local tape = mg.GradientTape()
  local pred = m2(x, true)
  local loss = loss_fn(y, pred)
  tape:stop()
  opt:apply_gradients(tape:gradient(loss, m2.trainable_weights), m2.trainable_weights)
  acc:update_state(y, pred)
  return loss
end)
local n = math.min(x_train.shape[1], 8000)
local loss
for i = 1, n - 31, 32 do
  loss = step(x_train:slice { { i, i + 31 } }, y_train:slice { { i, i + 31 } })
end
print(string.format("custom loop over %d images: last loss %.4f, running accuracy %.4f", n, loss:item(),
  acc:result():item()))
assert(accuracy > (quick and 0.6 or 0.85), "the model did not learn")
