-- Fashion-MNIST with a small CNN, the Sequential way (the model of
-- TensorFlow 2's launch blog post): 1 epoch of Adam on the 60,000 training
-- images, then the accuracy on the 10,000 test images (about 0.89).
--
--   moongrad examples/fashion_mnist_cnn.lua            the full run (`make demo`)
--   moongrad examples/fashion_mnist_cnn.lua --quick    a 4,000-image subset (also MG_QUICK=1)
--
-- Needs the Debian package dataset-fashion-mnist. The same model written
-- the functional and the subclassing way: fashion_mnist_functional.lua,
-- fashion_mnist_subclass.lua.
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

-- The images stay uint8 (47 MB, not 188 MB as float32): the blog's x / 255
-- happens in the model, batch by batch, in a Rescaling layer.
local model = nn.Sequential {
  nn.Rescaling(1 / 255, { input_shape = { 28, 28 } }),
  nn.Reshape { 28, 28, 1 },
  nn.Conv2D(32, 5, { padding = "same", activation = "relu" }),
  nn.MaxPooling2D(2),
  nn.Conv2D(64, 5, { padding = "same", activation = "relu" }),
  nn.MaxPooling2D(2),
  nn.Flatten(),
  nn.Dense(1024, { activation = "relu" }),
  nn.Dropout(0.3),
  nn.Dense(10, { activation = "softmax" }),
}
model:summary()

model:compile {
  optimizer = mg.optim.Adam(),
  loss = "sparse_categorical_crossentropy",
  metrics = { "accuracy" },
}

-- The training data as an input pipeline (doc/data.md): the rows shuffled
-- through a buffer as large as the data set, batches of 32, gathered ahead
-- by a C thread (prefetch) while the model trains on the previous ones.
local train_ds = mg.data.Dataset.from_tensor_slices(x_train, y_train)
  :shuffle(x_train.shape[1], { seed = 1 })
  :batch(32)
  :prefetch(4)

local t0 = mg.clock()
model:fit(train_ds, { epochs = 1 })
local seconds = mg.clock() - t0
print(string.format("trained on %d images in %.1f s (%.0f samples/s)", x_train.shape[1], seconds,
  x_train.shape[1] / seconds))

local loss, accuracy = model:evaluate(x_test, y_test, { verbose = 0 })
print(string.format("test loss %.4f, test accuracy %.4f (%d images)", loss, accuracy, x_test.shape[1]))
if quick then
  assert(accuracy > 0.6, "quick mode: the model did not learn")
else
  assert(accuracy > 0.85, "the model reached less than 0.85")
end
