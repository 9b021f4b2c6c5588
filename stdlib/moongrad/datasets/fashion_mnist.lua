-- moongrad.datasets.fashion_mnist: Zalando's Fashion-MNIST (60,000 training
-- and 10,000 test images of 28x28 grey pixels, 10 classes), read from the
-- Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist,
-- or $MG_FASHION_MNIST_DIR, or load_data{path=}).
--
--   local train, test = mg.datasets.fashion_mnist.load_data()
--   local x, y = table.unpack(train)     -- also train.x, train.y
--
-- x is uint8 (n, 28, 28); y is int64 (n) with class indices 1..10 (moongrad
-- counts from 1; the file's label k is class k + 1): see class_names.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local idx = require("moongrad.datasets.idx")

local M = {}

M.default_dir = "/usr/share/datasets/fashion-mnist"
M.class_names = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
  "Ankle boot" }

local FILES = {
  train_x = "train-images-idx3-ubyte", train_y = "train-labels-idx1-ubyte",
  test_x = "t10k-images-idx3-ubyte", test_y = "t10k-labels-idx1-ubyte",
}

local function locate(dir, base)
  for _, name in ipairs({ base .. ".gz", base }) do
    local p = dir .. "/" .. name
    if idx.file_exists(p) then return p end
  end
  return nil
end

local function pair(x, y) return { x, y, x = x, y = y } end

-- load_data{path=dir}: train, test as {x, y}.
function M.load_data(opts)
  opts = opts or {}
  local dir = opts.path or (os.getenv and os.getenv("MG_FASHION_MNIST_DIR")) or M.default_dir
  local paths = {}
  for k, base in pairs(FILES) do
    paths[k] = locate(dir, base)
    if not paths[k] then
      error(string.format("fashion_mnist: %s/%s(.gz) is missing; install the Debian package dataset-fashion-mnist "
        .. "(apt-get install dataset-fashion-mnist) or pass load_data{path=DIR}", dir, base), 2)
    end
  end
  local function labels(p)
    local y = idx.read(p)
    return mg.cast(y, "int64") + 1
  end
  local train = pair(idx.read(paths.train_x), labels(paths.train_y))
  local test = pair(idx.read(paths.test_x), labels(paths.test_y))
  collectgarbage()   -- the file contents (~50 MB of strings) are garbage now
  return train, test
end

return M
