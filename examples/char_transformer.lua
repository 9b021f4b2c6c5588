-- A character-level decoder-only transformer (a miniature GPT) trained on the
-- quotations of the Debian package fortunes, Keras style: two custom layers
-- (token + position embedding; a transformer block of causal
-- MultiHeadAttention, LayerNormalization and a feed-forward block, each with
-- a residual connection) in a functional model, trained with model:fit on
-- next-character prediction. Prints the validation perplexity after each
-- epoch and a text sampled from a seed string.
--
--   moongrad examples/char_transformer.lua           the full run (minutes)
--   moongrad examples/char_transformer.lua --quick   a small model on a small slice (also MG_QUICK=1)
--
-- Needs the Debian package fortunes (/usr/share/games/fortunes). The
-- quotations (records of the cookie files, separated by "%" lines) are split
-- 9 to 1 into training and validation text, every tenth record to the
-- validation side; the text is cut into windows of seq_len + 1 characters
-- (input: the first seq_len, target: the last seq_len). bench/peers/moongrad_char_transformer.lua
-- trains the same model beside Keras (bench/peers/keras_char_transformer.py).
local mg = require("moongrad")
local nn = mg.nn

local quick = os.getenv("MG_QUICK") == "1"
for _, a in ipairs(arg or {}) do if a == "--quick" then quick = true end end

-- The hyperparameters (the bench runs the same ones in Keras).
local H = quick and {
  files = { "computers", "science" }, max_chars = 60000, seq_len = 32, embed_dim = 32, num_heads = 2,
  ff_dim = 64, num_layers = 2, batch_size = 32, epochs = 2, learning_rate = 3e-3, sample_len = 80,
} or {
  files = { "computers", "science", "people", "wisdom", "work", "literature" },
  max_chars = 600000, seq_len = 64, embed_dim = 128, num_heads = 4, ff_dim = 512, num_layers = 3,
  batch_size = 64, epochs = 5, learning_rate = 2e-3, sample_len = 300,
}

mg.random.seed(1)
math.randomseed(1)

-- ---- the data ---------------------------------------------------------------------------------

local by_file = mg.datasets.fortunes.load_data { files = H.files }
local train_parts, val_parts = {}, {}
for _, name in ipairs(H.files) do
  for i, rec in ipairs(by_file[name]) do
    local side = (i % 10 == 0) and val_parts or train_parts
    side[#side + 1] = rec .. "\n\n"   -- a blank line ends each quotation
  end
end
local train_text = table.concat(train_parts):sub(1, H.max_chars)
local val_text = table.concat(val_parts):sub(1, math.floor(H.max_chars / 9))

-- The vocabulary: newline and printable ASCII; any other byte (UTF-8 accents, tabs) is one "~".
local chars = { "\n" }
for b = 32, 126 do chars[#chars + 1] = string.char(b) end
local id_of = {}
for i, c in ipairs(chars) do id_of[c:byte()] = i end
local unknown = id_of[("~"):byte()]
local vocab_size = #chars
-- byte -> id as a 256-entry table, applied to a whole text by one take (ids count from 1).
local lut = {}
for b = 0, 255 do lut[b + 1] = id_of[b] or unknown end
lut = mg.tensor(lut, "int64")
local function encode(text)
  local bytes = mg.cast(mg.frombytes(text, mg.uint8, { #text }), "int64") + 1
  return mg.take(lut, bytes, 1)
end

-- Windows of seq_len + 1 characters, no overlap: x the first seq_len, y the next-character targets.
local function windows(text)
  local ids = encode(text)
  local m = math.floor((#text - 1) / H.seq_len)
  local x = mg.reshape(ids:slice { { 1, m * H.seq_len } }, { m, H.seq_len })
  local y = mg.reshape(ids:slice { { 2, m * H.seq_len + 1 } }, { m, H.seq_len })
  return x, y
end
local x_train, y_train = windows(train_text)
local x_val, y_val = windows(val_text)
print(string.format("fortunes (%s): %d training characters (%d windows), %d validation characters; "
  .. "vocabulary %d", table.concat(H.files, ", "), #train_text, x_train.shape[1], #val_text, vocab_size))

-- ---- the model --------------------------------------------------------------------------------

-- Token and position embedding: (batch, seq_len) ids -> (batch, seq_len, embed_dim), two tables
-- of weights looked up with take (ids and positions count from 1).
local TokenAndPosition = nn.Layer:extend("TokenAndPosition")
function TokenAndPosition:init(maxlen, vocab, dim)
  self.maxlen, self.vocab, self.dim = maxlen, vocab, dim
end
function TokenAndPosition:build()
  self.token_embeddings = self:add_weight { name = "token_embeddings", shape = { self.vocab, self.dim },
    initializer = "random_uniform" }
  self.position_embeddings = self:add_weight { name = "position_embeddings", shape = { self.maxlen, self.dim },
    initializer = "random_uniform" }
end
-- (declared, so a functional model does not try a call on zeros: id 0 is not a row)
function TokenAndPosition:compute_output_shape(s) return { s[1], s[2], self.dim } end
function TokenAndPosition:call(x)
  local positions = mg.arange(1, x.shape[2] + 1, 1, "int64")   -- 1..seq_len
  return mg.take(self.token_embeddings, x, 1) + mg.take(self.position_embeddings, positions, 1)
end
function TokenAndPosition:get_config()
  local cfg = nn.Layer.get_config(self)
  cfg.maxlen, cfg.vocab, cfg.dim = self.maxlen, self.vocab, self.dim
  return cfg
end

-- A pre-norm transformer block: x + attention(norm(x)), then x + feed_forward(norm(x)).
local TransformerBlock = nn.Layer:extend("TransformerBlock")
function TransformerBlock:init(dim, heads, ff_dim, rate)
  self.dim, self.heads, self.ff_dim, self.rate = dim, heads, ff_dim, rate
  self.norm1 = nn.LayerNormalization { epsilon = 1e-6 }
  self.att = nn.MultiHeadAttention { num_heads = heads, key_dim = dim / heads }
  self.drop1 = nn.Dropout(rate)
  self.norm2 = nn.LayerNormalization { epsilon = 1e-6 }
  self.ff1 = nn.Dense(ff_dim, { activation = "gelu" })
  self.ff2 = nn.Dense(dim)
  self.drop2 = nn.Dropout(rate)
end
function TransformerBlock:call(x, training)
  local h = self.norm1(x)
  x = x + self.drop1(self.att(h, h, { use_causal_mask = true }), training)
  h = self.ff2(self.ff1(self.norm2(x)))
  return x + self.drop2(h, training)
end
function TransformerBlock:get_config()
  local cfg = nn.Layer.get_config(self)
  cfg.dim, cfg.heads, cfg.ff_dim, cfg.rate = self.dim, self.heads, self.ff_dim, self.rate
  return cfg
end

local inputs = nn.Input { shape = { H.seq_len }, dtype = "int64" }
local h = TokenAndPosition(H.seq_len, vocab_size, H.embed_dim)(inputs)
for _ = 1, H.num_layers do h = TransformerBlock(H.embed_dim, H.num_heads, H.ff_dim, 0.1)(h) end
h = nn.LayerNormalization { epsilon = 1e-6 }(h)
local logits = nn.Dense(vocab_size)(h)   -- (batch, seq_len, vocab): the next character's logits
local model = nn.Model { inputs = inputs, outputs = logits, name = "char_transformer" }
model:summary()

model:compile {
  optimizer = mg.optim.Adam { learning_rate = H.learning_rate },
  loss = mg.losses.SparseCategoricalCrossentropy { from_logits = true },
}

-- ---- training ---------------------------------------------------------------------------------

local t0 = mg.clock()
local history = model:fit(x_train, y_train, {
  epochs = H.epochs, batch_size = H.batch_size, validation_data = { x_val, y_val }, verbose = quick and 0 or 1,
  callbacks = { mg.callbacks.LambdaCallback { on_epoch_end = function(epoch, logs)
    print(string.format("epoch %d: loss %.4f, validation loss %.4f, validation perplexity %.2f (per character)",
      epoch, logs.loss, logs.val_loss, math.exp(logs.val_loss)))
  end } },
})
local seconds = mg.clock() - t0
local tokens = H.epochs * x_train.shape[1] * H.seq_len
print(string.format("trained %d epochs in %.1f s (%.0f tokens/s, validation included)", H.epochs, seconds,
  tokens / seconds))

-- ---- sampling ---------------------------------------------------------------------------------

-- The next character from the last position's logits: greedy (temperature 0) or sampled.
local function next_char(context, temperature)
  local ids = {}
  local pad = H.seq_len - #context
  for i = 1, H.seq_len do
    local b = i <= pad and 32 or context:byte(i - pad)   -- left-padded with spaces
    ids[i] = id_of[b] or unknown
  end
  local out = model(mg.tensor({ ids }, "int64"))
  local row = out:slice { { 1, 1 }, { H.seq_len, H.seq_len } }:reshape { vocab_size }
  if temperature == 0 then return chars[mg.argmax(row):item()] end
  local p = mg.softmax(row / temperature):totable()
  local u, acc = math.random(), 0
  for i = 1, vocab_size do
    acc = acc + p[i]
    if u <= acc then return chars[i] end
  end
  return chars[vocab_size]
end

local function generate(seed, n, temperature)
  local text = seed
  for _ = 1, n do
    text = text .. next_char(text:sub(-H.seq_len), temperature)
  end
  return text
end

local seed = "The computer "
print("greedy sample:\n" .. generate(seed, H.sample_len / 2, 0))
print("sample at temperature 0.8:\n" .. generate(seed, H.sample_len, 0.8))

-- ---- checks -----------------------------------------------------------------------------------

local losses = history.history.loss
local val_ppl = math.exp(history.history.val_loss[#history.history.val_loss])
print(string.format("final validation perplexity %.2f (a uniform guess: %d)", val_ppl, vocab_size))
assert(losses[#losses] < losses[1], "the training loss did not decrease")
if quick then
  assert(val_ppl < 0.5 * vocab_size, "quick mode: the model did not learn")
else
  assert(val_ppl < 10, "the validation perplexity stayed above 10")
end
