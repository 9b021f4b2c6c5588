-- moongrad.data: input pipelines (TF's tf.data), loaded on first use of mg.data.
--
--   local ds = mg.data.Dataset.from_tensor_slices(x, y):shuffle(1000, {seed=1}):batch(32):prefetch(2)
--   for xb, yb in ds:iter() do ... end
--
-- Modules: dataset (the class), sources, transforms, shuffle, batching,
-- prefetch (the C thread), structure (elements), rng, csv, combinators
-- (interleave, scan, shard, ...), windowing (window, group_by_window,
-- bucketing), files (text_line, list_files), persist (save/load). doc/data.md is the guide.
local Dataset = require("moongrad.data.dataset")
local sources = require("moongrad.data.sources")
require("moongrad.data.transforms")
require("moongrad.data.shuffle")
require("moongrad.data.batching")
require("moongrad.data.prefetch")
local combinators = require("moongrad.data.combinators")
require("moongrad.data.windowing")
local files = require("moongrad.data.files")
local persist = require("moongrad.data.persist")
-- ds.map(f) with a dot passes f as the dataset: every method checks its receiver (nn/class.lua).
require("moongrad.nn.class").guard_methods(Dataset, "Dataset", "ds", Dataset.is_dataset)

Dataset.from_tensor_slices = sources.from_tensor_slices
Dataset.range = sources.range
Dataset.from_generator = sources.from_generator
Dataset.from_tensors = combinators.from_tensors
Dataset.sample_from_datasets = combinators.sample_from_datasets
Dataset.text_line = files.text_line
Dataset.list_files = files.list_files
Dataset.load = persist.load

local M = {
  Dataset = Dataset,
  INFINITE_CARDINALITY = Dataset.INFINITE,
  UNKNOWN_CARDINALITY = Dataset.UNKNOWN,
  AUTOTUNE = Dataset.AUTOTUNE,
  is_dataset = Dataset.is_dataset,
}
M.experimental = {
--- mg.data.experimental.make_csv_dataset(path, {batch_size=, label_name=, ...}) -> a Dataset of batches read from a CSV file (doc/data.md).
  make_csv_dataset = function(...) return require("moongrad.data.csv").make_csv_dataset(...) end,
}
--- mg.data.read_csv(path, {header=true, delimiter=",", columns=, dtypes=}) -> a table of column tensors (also mg.io.read_csv).
M.read_csv = function(...) return require("moongrad.data.csv").read_csv(...) end

return M
