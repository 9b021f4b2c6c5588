-- Which fortune file does a quotation come from? A text classifier on the
-- Debian package fortunes, Keras style: TextVectorization (adapted on the
-- training quotations) turns each quotation into word ids (0 = padding, as
-- Keras), an mg.data pipeline pads them into batches of similar lengths
-- (bucket_by_sequence_length), and Embedding{mask_zero=true} ->
-- Bidirectional(LSTM) -> Dense reads them, the mask keeping the padding out
-- of the LSTMs. Reports the accuracy on held-out quotations beside the
-- majority-class baseline (always answering the largest category).
--
--   moongrad examples/text_classifier.lua           the full run (a few minutes)
--   moongrad examples/text_classifier.lua --quick   fewer quotations, one epoch (also MG_QUICK=1)
--
-- Needs the Debian package fortunes (/usr/share/games/fortunes). Every fifth
-- quotation of each file is held out for the test, a tenth of the rest for
-- the validation that early stopping watches.
local mg = require("moongrad")
local nn = mg.nn
local Dataset = mg.data.Dataset

local quick = os.getenv("MG_QUICK") == "1"
for _, a in ipairs(arg or {}) do if a == "--quick" then quick = true end end

local CATEGORIES = { "computers", "food", "love", "politics", "sports" }
local H = quick and { per_file = 150, max_len = 48, max_tokens = 4000, embed_dim = 32, units = 16, epochs = 2 }
  or { per_file = nil, max_len = 96, max_tokens = 20000, embed_dim = 64, units = 32, epochs = 12 }

mg.random.seed(1)

-- ---- the data: (quotation, category) pairs --------------------------------------------------------

local by_file = mg.datasets.fortunes.load_data { files = CATEGORIES }
-- Of each file: every fifth quotation to the test, every tenth of the others (i % 10 == 1) to the
-- validation that early stopping watches, the rest to training.
local train_texts, train_labels, val_texts, val_labels, test_texts, test_labels = {}, {}, {}, {}, {}, {}
for label, name in ipairs(CATEGORIES) do    -- classes count from 1, as every index in moongrad
  local recs = by_file[name]
  for i = 1, math.min(#recs, H.per_file or #recs) do
    local texts, labels = train_texts, train_labels
    if i % 5 == 0 then texts, labels = test_texts, test_labels
    elseif i % 10 == 1 then texts, labels = val_texts, val_labels end
    texts[#texts + 1], labels[#labels + 1] = recs[i], label
  end
end

-- The vocabulary from the training quotations only; ids: 0 padding, 1 unknown, 2.. the words.
local vectorize = nn.TextVectorization { max_tokens = H.max_tokens }
vectorize:adapt(train_texts)
local vocab_size = #vectorize:get_vocabulary()

-- One (ids, label) element per quotation, its ids cut to max_len words; the batches are padded
-- with 0 to their bucket's length (16, 32, ... words), so a batch of short quotations stays short.
local function encode(texts)
  local out = {}
  for i, t in ipairs(texts) do
    local ids = vectorize(t)
    if ids.shape[1] == 0 then ids = mg.zeros({ 1 }, "int64") end   -- no word at all: one padding id
    if ids.shape[1] > H.max_len then ids = ids:slice { { 1, H.max_len } } end
    out[i] = ids
  end
  return out
end
local function dataset(ids, labels, shuffle)
  local ds = Dataset.from_generator(function()
    local i = 0
    return function()
      i = i + 1
      if ids[i] then return ids[i], mg.tensor(labels[i], "int64") end
    end
  end)
  if shuffle then ds = ds:shuffle(#ids, { seed = 1 }) end
  local bounds, sizes = {}, {}
  local b = 17
  while b <= H.max_len do bounds[#bounds + 1] = b; sizes[#sizes + 1] = 32; b = 2 * b - 1 end
  bounds[#bounds + 1] = H.max_len + 1
  sizes[#sizes + 1], sizes[#sizes + 2] = 32, 32
  return ds:bucket_by_sequence_length(function(x) return x.shape[1] end, bounds, sizes,
    { pad_to_bucket_boundary = true })
end
local train_ds = dataset(encode(train_texts), train_labels, true)
local val_ds = dataset(encode(val_texts), val_labels, false)
local test_ds = dataset(encode(test_texts), test_labels, false)
print(string.format("fortunes %s: %d training, %d validation and %d test quotations, vocabulary %d words",
  table.concat(CATEGORIES, ", "), #train_texts, #val_texts, #test_texts, vocab_size))

-- ---- the model --------------------------------------------------------------------------------

local model = nn.Sequential {
  nn.Embedding { input_dim = vocab_size, output_dim = H.embed_dim, mask_zero = true },
  nn.Bidirectional(nn.LSTM { units = H.units }),
  nn.Dropout(0.3),
  nn.Dense(#CATEGORIES, { activation = "softmax" }),
}
model:compile { optimizer = mg.optim.Adam { learning_rate = 3e-3 }, loss = "sparse_categorical_crossentropy",
  metrics = { "accuracy" } }

local t0 = mg.clock()
-- Stops when the validation loss has not improved for 2 epochs, keeping the best epoch's weights.
model:fit(train_ds, { epochs = H.epochs, validation_data = val_ds, verbose = quick and 0 or 1,
  callbacks = { mg.callbacks.EarlyStopping { monitor = "val_loss", patience = 2, restore_best_weights = true } } })
print(string.format("trained in %.1f s", mg.clock() - t0))
model:summary()

-- ---- how good is it ---------------------------------------------------------------------------

local _, accuracy = model:evaluate(test_ds, { verbose = 0 })
local counts = {}
for _, l in ipairs(train_labels) do counts[l] = (counts[l] or 0) + 1 end
local majority = 1
for l, c in pairs(counts) do if c > counts[majority] then majority = l end end
local hits = 0
for _, l in ipairs(test_labels) do if l == majority then hits = hits + 1 end end
local baseline = hits / #test_labels
print(string.format("test accuracy %.4f on %d held-out quotations; majority-class baseline (always \"%s\") %.4f",
  accuracy, #test_labels, CATEGORIES[majority], baseline))

local probe = { "My computer crashed and the program lost all my files.", "I will always love you, my darling.",
  "The senator voted against the tax bill.", "He hit a home run in the ninth inning.", "Eat your vegetables." }
local probs = model(mg.stack((function()
  local rows = {}
  for i, t in ipairs(probe) do
    local ids = vectorize(t)
    rows[i] = mg.concat({ ids, mg.zeros({ 16 - ids.shape[1] }, "int64") }, 1)
  end
  return rows
end)(), 1))
for i, t in ipairs(probe) do
  local row = probs:slice { { i, i } }:reshape { #CATEGORIES }
  print(string.format("  %-58s -> %s", t, CATEGORIES[mg.argmax(row):item()]))
end

if quick then
  assert(accuracy > baseline - 0.05, "quick mode: the classifier did far worse than the majority baseline")
else
  assert(accuracy > baseline + 0.1, "the classifier did not beat the majority baseline by 0.1")
end
