-- moongrad_char_transformer.lua — moongrad's side of the character-transformer benchmark: the model of
-- examples/char_transformer.lua (token + position embedding, pre-norm blocks of causal
-- MultiHeadAttention and a gelu feed-forward, LayerNormalization, Dense logits) trained with
-- model:fit on the fortune text, with the data, model and training of bench/peers/char_transformer.json;
-- bench/peers/keras_char_transformer.py trains the same in Keras 3. bench/run.py runs both in fresh
-- processes and writes the row of bench/RESULTS.md.
--
--   moongrad bench/peers/moongrad_char_transformer.lua [--quick]      (BENCH_QUICK=1 too)
--
-- Prints "RESULT <json>": training tokens/s (the epochs after the first, whose first step traces
-- and compiles; validation excluded), tokens/s over the whole fit, the last epoch's training
-- and validation loss, the validation perplexity, the peak RSS. Needs the Debian package fortunes.
local mg = require("moongrad")
local nn = mg.nn
local json = require("moongrad.nn.json")

local quick = os.getenv("BENCH_QUICK") == "1"
for _, a in ipairs(arg or {}) do if a == "--quick" then quick = true end end

local here = (arg and arg[0] or "bench/peers/moongrad_char_transformer.lua"):match("^(.*)/[^/]*$") or "."
local f = assert(io.open(here .. "/char_transformer.json", "rb"))
local H = json.decode(f:read("a"))[quick and "quick" or "full"]
f:close()

local function peak_rss_mb()
  local s = io.open("/proc/self/status")
  if not s then return nil end
  local text = s:read("a")
  s:close()
  local kb = text:match("VmHWM:%s*(%d+)")
  return kb and tonumber(kb) / 1024
end

mg.random.seed(1)

-- The data, as examples/char_transformer.lua makes it (keras_char_transformer.py does the same in Python).
local by_file = mg.datasets.fortunes.load_data { files = H.files }
local train_parts, val_parts = {}, {}
for _, name in ipairs(H.files) do
  for i, rec in ipairs(by_file[name]) do
    local side = (i % 10 == 0) and val_parts or train_parts
    side[#side + 1] = rec .. "\n\n"
  end
end
local train_text = table.concat(train_parts):sub(1, H.max_chars)
local val_text = table.concat(val_parts):sub(1, math.floor(H.max_chars / 9))
local id_of, vocab_size = { [10] = 1 }, 96
for b = 32, 126 do id_of[b] = b - 30 end
local lut = {}
for b = 0, 255 do lut[b + 1] = id_of[b] or id_of[126] end
lut = mg.tensor(lut, "int64")
local function windows(text)
  local ids = mg.take(lut, mg.cast(mg.frombytes(text, mg.uint8, { #text }), "int64") + 1, 1)
  local m = math.floor((#text - 1) / H.seq_len)
  return mg.reshape(ids:slice { { 1, m * H.seq_len } }, { m, H.seq_len }),
    mg.reshape(ids:slice { { 2, m * H.seq_len + 1 } }, { m, H.seq_len })
end
local x_train, y_train = windows(train_text)
local x_val, y_val = windows(val_text)

-- The model: the two custom layers of examples/char_transformer.lua in a functional model.
local TokenAndPosition = nn.Layer:extend("TokenAndPosition")
function TokenAndPosition:build()
  self.token_embeddings = self:add_weight { name = "token_embeddings", shape = { vocab_size, H.embed_dim },
    initializer = "random_uniform" }
  self.position_embeddings = self:add_weight { name = "position_embeddings", shape = { H.seq_len, H.embed_dim },
    initializer = "random_uniform" }
end
function TokenAndPosition:compute_output_shape(s) return { s[1], s[2], H.embed_dim } end
function TokenAndPosition:call(x)
  return mg.take(self.token_embeddings, x, 1) + mg.take(self.position_embeddings, mg.arange(1, x.shape[2] + 1, 1, "int64"), 1)
end

local TransformerBlock = nn.Layer:extend("TransformerBlock")
function TransformerBlock:init()
  self.norm1 = nn.LayerNormalization { epsilon = 1e-6 }
  self.att = nn.MultiHeadAttention { num_heads = H.num_heads, key_dim = H.embed_dim / H.num_heads }
  self.drop1 = nn.Dropout(H.dropout)
  self.norm2 = nn.LayerNormalization { epsilon = 1e-6 }
  self.ff1 = nn.Dense(H.ff_dim, { activation = "gelu" })
  self.ff2 = nn.Dense(H.embed_dim)
  self.drop2 = nn.Dropout(H.dropout)
end
function TransformerBlock:call(x, training)
  local h = self.norm1(x)
  x = x + self.drop1(self.att(h, h, { use_causal_mask = true }), training)
  return x + self.drop2(self.ff2(self.ff1(self.norm2(x))), training)
end

local inputs = nn.Input { shape = { H.seq_len }, dtype = "int64" }
local x = TokenAndPosition()(inputs)
for _ = 1, H.num_layers do x = TransformerBlock()(x) end
local logits = nn.Dense(vocab_size)(nn.LayerNormalization { epsilon = 1e-6 }(x))
local model = nn.Model { inputs = inputs, outputs = logits }
model:compile { optimizer = mg.optim.Adam { learning_rate = H.learning_rate },
  loss = mg.losses.SparseCategoricalCrossentropy { from_logits = true } }

-- Training time per epoch: from the start of its first batch to the end of its last (no validation).
local epochs, t_first, t_last, nb, first = {}, nil, nil, 0, false
local timer = mg.callbacks.LambdaCallback {
  on_epoch_begin = function() first, nb = true, 0 end,
  on_train_batch_begin = function() if first then t_first, first = mg.clock(), false end end,
  on_train_batch_end = function() t_last, nb = mg.clock(), nb + 1 end,
  on_epoch_end = function() epochs[#epochs + 1] = { seconds = t_last - t_first, batches = nb } end,
}
local t0 = mg.clock()
local hist = model:fit(x_train, y_train, { epochs = H.epochs, batch_size = H.batch_size,
  validation_data = { x_val, y_val }, callbacks = { timer }, verbose = 0 })
local total = mg.clock() - t0

local tokens_per_epoch = x_train.shape[1] * H.seq_len
local steady_s = 0
for e = 2, #epochs do steady_s = steady_s + epochs[e].seconds end
local loss, val = hist.history.loss, hist.history.val_loss
local res = {
  status = "ok", system = "moongrad", bench = "char_transformer",
  tokens_per_s = steady_s > 0 and (#epochs - 1) * tokens_per_epoch / steady_s or tokens_per_epoch / epochs[1].seconds,
  tokens_per_s_fit = H.epochs * tokens_per_epoch / total, fit_seconds = total,
  first_epoch_s = epochs[1].seconds, final_loss = loss[#loss], val_loss = val[#val],
  val_perplexity = math.exp(val[#val]), train_tokens = tokens_per_epoch, params = model:count_params(),
  peak_rss_mb = peak_rss_mb(),
  config = string.format("%d layers, d %d, %d heads, ff %d, seq %d, batch %d, %d epochs; fit (staged train step)",
    H.num_layers, H.embed_dim, H.num_heads, H.ff_dim, H.seq_len, H.batch_size, H.epochs),
}
io.write("RESULT ", json.encode(res), "\n")
