-- Fashion-MNIST with the CNN of fashion_mnist_cnn.lua, two changes:
-- data augmentation layers first (a random horizontal flip and a random
-- shift of up to 10% each way, active in training only: at inference they
-- pass the images through), and mixed precision (the "mixed_bfloat16"
-- policy: float32 variables, bfloat16 compute; the last layer stays float32
-- so the softmax is not computed in 8 bits).
--
--   moongrad examples/augmented_cnn.lua           1 epoch on the 60,000 images
--   moongrad examples/augmented_cnn.lua --quick   a 2,000-image subset (also MG_QUICK=1)
--
-- Needs the Debian package dataset-fashion-mnist. bench/mixed_precision_cnn.lua
-- compares the plain CNN's step time and accuracy in float32 and mixed_bfloat16.
local mg = require("moongrad")
local nn = mg.nn

local quick = os.getenv("MG_QUICK") == "1"
for _, a in ipairs(arg or {}) do if a == "--quick" then quick = true end end

mg.random.seed(1)
local train, test = mg.datasets.fashion_mnist.load_data()
local x_train, y_train = table.unpack(train)
local x_test, y_test = table.unpack(test)
if quick then
  x_train, y_train = x_train:slice { { 1, 2000 } }, y_train:slice { { 1, 2000 } }
  x_test, y_test = x_test:slice { { 1, 1000 } }, y_test:slice { { 1, 1000 } }
end

-- Layers made from here on compute in bfloat16 and keep float32 variables.
nn.mixed_precision.set_global_policy("mixed_bfloat16")
local model = nn.Sequential {
  nn.Rescaling(1 / 255, { input_shape = { 28, 28 } }),
  nn.Reshape { 28, 28, 1 },
  nn.RandomFlip { mode = "horizontal", seed = 1 },                              -- a shirt mirrored is a shirt
  nn.RandomTranslation { height_factor = 0.1, width_factor = 0.1, seed = 2 },   -- and one shifted by 2 pixels
  nn.Conv2D(32, 5, { padding = "same", activation = "relu" }),
  nn.MaxPooling2D(2),
  nn.Conv2D(64, 5, { padding = "same", activation = "relu" }),
  nn.MaxPooling2D(2),
  nn.Flatten(),
  nn.Dense(1024, { activation = "relu" }),
  nn.Dropout(0.3),
  nn.Dense(10, { activation = "softmax", dtype = "float32" }),   -- the output in float32
}
nn.mixed_precision.set_global_policy("float32")
model:summary()
print(string.format("conv compute dtype %s, its kernel %s; output %s", model.layers[5].compute_dtype,
  model.layers[5].kernel.dtype, model.layers[#model.layers].compute_dtype))

model:compile { optimizer = mg.optim.Adam(), loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
local train_ds = mg.data.Dataset.from_tensor_slices(x_train, y_train)
  :shuffle(x_train.shape[1], { seed = 1 })
  :batch(32)
  :prefetch(4)

local t0 = mg.clock()
model:fit(train_ds, { epochs = 1, verbose = quick and 0 or 1 })
local seconds = mg.clock() - t0
print(string.format("trained on %d images in %.1f s (%.0f samples/s)", x_train.shape[1], seconds,
  x_train.shape[1] / seconds))

local loss, accuracy = model:evaluate(x_test, y_test, { verbose = 0 })
print(string.format("test loss %.4f, test accuracy %.4f (%d images)", loss, accuracy, x_test.shape[1]))
if quick then
  assert(accuracy > 0.5, "quick mode: the model did not learn")
else
  assert(accuracy > 0.8, "the model reached less than 0.8")
end
