-- moongrad.nn.layers.lookup: StringLookup, IntegerLookup and
-- TextVectorization, Keras 3's vocabulary layers (its IndexLookup).
--
-- moongrad has no string tensors, so strings travel as Lua tables: a string,
-- a list of strings, nested lists for a batch. The layout of ids is Keras's,
-- ids being values (see preprocessing.lua): with a mask_token in "int" mode id
-- 0 is the mask, then num_oov_indices OOV ids, then the vocabulary in order;
-- without one the OOV ids start at 0. TextVectorization uses mask "" and OOV
-- "[UNK]", so in "int" mode 0 is padding, 1 unknown, 2.. the vocabulary (an
-- Embedding{mask_zero=true} takes them as they are and masks the padding;
-- without mask_zero an Embedding's ids count from 1: it takes ids + 1).
--
-- adapt counts tokens and keeps the most frequent (ties: the larger token
-- first, as Keras's lexsort), up to max_tokens with the special ones. The
-- vocabulary (and tf_idf's idf weights) go in get_config, so a config or a
-- saved model rebuilds the same lookup. Where Keras hashes an OOV string into
-- one of several OOV ids it uses FarmHash; here it is the documented FNV-1a
-- hash of preprocessing.lua, so those ids differ (a single OOV id, the
-- default, is the same). Standardization lower-cases ASCII letters only.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local options = require("moongrad.options")
local P = require("moongrad.nn.layers.preprocessing")

local M = {}
local list_copy = P.list_copy

local MODES = { "int", "one_hot", "multi_hot", "count", "tf_idf" }

-- ---- IndexLookup: the shared machinery ------------------------------------------------------

local function lookup_spec(is_string)
  return {
    max_tokens = { "integer", min = 1 },
    num_oov_indices = { "integer", min = 0 },
    mask_token = is_string and "string" or "integer",
    oov_token = is_string and "string" or "integer",
    vocabulary = "table|tensor",
    idf_weights = "table|tensor",
    invert = "boolean",
    output_mode = { "string", one_of = MODES },
    pad_to_max_tokens = "boolean",
    encoding = is_string and { "string", one_of = { "utf-8" } } or nil,
    vocabulary_dtype = (not is_string) and { "string", one_of = { "int64", "int32" } } or nil,
    -- Keras's configs also hold these: the size is checked against the vocabulary; "farmhash"
    -- (hash integers into the OOV ids, as strings are) uses this module's hash, with the salt
    vocabulary_size = { "integer", min = 0 },
    oov_method = { "string", one_of = { "floormod", "farmhash" } },
    salt = "integer|table",
  }
end

-- Sets up the lookup state from cfg (shared by StringLookup, IntegerLookup, TextVectorization).
local function init_lookup(self, cfg, what, default_oov)
  self.max_tokens = cfg.max_tokens
  self.num_oov_indices = cfg.num_oov_indices or 1
  self.mask_token = cfg.mask_token
  if cfg.oov_token ~= nil then self.oov_token = cfg.oov_token else self.oov_token = default_oov end
  self.invert = cfg.invert == true
  self.output_mode = cfg.output_mode or "int"
  if self.output_mode == "tf-idf" then self.output_mode = "tf_idf" end
  self.pad_to_max_tokens = cfg.pad_to_max_tokens == true
  self.oov_method = cfg.oov_method or "floormod"
  self.salt = list_copy(cfg.salt)
  if self.invert and self.output_mode ~= "int" then
    util.raise(what .. ": invert=true needs output_mode \"int\", got " .. options.show(self.output_mode))
  end
  if self.pad_to_max_tokens and not self.max_tokens then
    util.raise(what .. ": pad_to_max_tokens=true needs max_tokens")
  end
  if self.max_tokens and self.max_tokens <= self:_token_start() then
    util.raise(string.format("%s: max_tokens (%d) must be more than the %d special tokens (mask and OOV)", what,
      self.max_tokens, self:_token_start()))
  end
  if cfg.idf_weights ~= nil and self.output_mode ~= "tf_idf" then
    util.raise(what .. ": idf_weights is only used with output_mode \"tf_idf\"")
  end
  if self.output_mode == "tf_idf" and cfg.vocabulary ~= nil and cfg.idf_weights == nil then
    util.raise(what .. ": with a vocabulary in \"tf_idf\" mode, idf_weights must be given too")
  end
  rawset(self, "_vocab", {})
  rawset(self, "_index", {})
  rawset(self, "_what", what)
  if cfg.vocabulary ~= nil then
    local ok, err = pcall(self.set_vocabulary, self, cfg.vocabulary, cfg.idf_weights)
    if not ok then util.raise(tostring(err):gsub("^[^:\n]*:%d+: ", "")) end
    rawset(self, "_has_input_vocabulary", true)
    if cfg.vocabulary_size and cfg.vocabulary_size ~= self:vocabulary_size() then
      util.raise(string.format("%s: vocabulary_size is %d but the vocabulary gives %d ids", what,
        cfg.vocabulary_size, self:vocabulary_size()))
    end
  end
  rawset(self, "built", true)
end

local Lookup = {}

function Lookup:_oov_start() return (self.mask_token ~= nil and self.output_mode == "int") and 1 or 0 end
function Lookup:_token_start() return self:_oov_start() + self.num_oov_indices end

--- layer:vocabulary_size() -> the number of ids, special tokens (mask, OOV) included.
function Lookup:vocabulary_size() return self:_token_start() + #rawget(self, "_vocab") end

--- layer:get_vocabulary(include_special_tokens=true) -> the tokens, where entry i is the token of id i-1
--- (Keras's ids count from 0): the mask and OOV tokens first unless include_special_tokens is false.
function Lookup:get_vocabulary(include_special_tokens)
  local out = {}
  if include_special_tokens ~= false then
    for _ = 1, self:_oov_start() do out[#out + 1] = self.mask_token end
    for _ = 1, self.num_oov_indices do out[#out + 1] = self.oov_token end
  end
  for _, t in ipairs(rawget(self, "_vocab")) do out[#out + 1] = t end
  return out
end

local function plain_list(v)
  if core.is_tensor(v) then return v:totable() end
  return list_copy(v)
end

--- layer:set_vocabulary(vocabulary, idf_weights=nil): sets the vocabulary (a list of tokens, with or
--- without the special tokens in front) and, in "tf_idf" mode, the idf weights.
function Lookup:set_vocabulary(vocab, idf)
  local what = rawget(self, "_what") or self.class_name
  vocab = plain_list(vocab)
  if type(vocab) ~= "table" or #vocab == 0 then
    options.raise(what .. ": the vocabulary must be a non-empty list of tokens")
  end
  local ts = self:_token_start()
  local specials = {}
  for _ = 1, self:_oov_start() do specials[#specials + 1] = self.mask_token end
  for _ = 1, self.num_oov_indices do specials[#specials + 1] = self.oov_token end
  local found = #vocab >= #specials
  for i = 1, #specials do if vocab[i] ~= specials[i] then found = false end end
  local tokens = {}
  for i = found and #specials + 1 or 1, #vocab do tokens[#tokens + 1] = vocab[i] end
  local index, seen = {}, {}
  for i, t in ipairs(tokens) do
    if self.is_string and type(t) ~= "string" then
      options.raise(string.format("%s: vocabulary entry %d must be a string, got %s", what, i, options.show(t)))
    elseif not self.is_string and (type(t) ~= "number" or t ~= math.floor(t)) then
      options.raise(string.format("%s: vocabulary entry %d must be an integer, got %s", what, i, options.show(t)))
    end
    if seen[t] then
      options.raise(string.format("%s: the vocabulary repeats %s; its tokens must be unique", what, options.show(t)))
    end
    if self.mask_token ~= nil and t == self.mask_token then
      options.raise(string.format("%s: the vocabulary holds the mask token %s at entry %d; give the special "
        .. "tokens only at its start, in order, or leave them out", what, options.show(t), i))
    end
    if self.invert and self.oov_token ~= nil and t == self.oov_token then
      options.raise(string.format("%s: the vocabulary holds the OOV token %s at entry %d", what, options.show(t), i))
    end
    seen[t] = true
    index[t] = ts + i - 1
  end
  if self.max_tokens and ts + #tokens > self.max_tokens then
    options.raise(string.format("%s: the vocabulary has %d entries with the special tokens, more than "
      .. "max_tokens=%d", what, ts + #tokens, self.max_tokens))
  end
  rawset(self, "_vocab", tokens)
  rawset(self, "_index", index)
  if self.output_mode == "tf_idf" then
    if idf == nil then options.raise(what .. ": \"tf_idf\" mode needs idf_weights with the vocabulary") end
    idf = plain_list(idf)
    if #idf ~= #vocab then
      options.raise(string.format("%s: idf_weights has %d entries, the vocabulary %d", what, #idf, #vocab))
    end
    local w = {}
    if not found then
      local s = 0
      for _, x in ipairs(idf) do s = s + x end
      for _ = 1, ts do w[#w + 1] = s / #idf end
    end
    for _, x in ipairs(idf) do w[#w + 1] = x end
    rawset(self, "_idf", w)
  end
end

-- The tokens' counts over the documents of adapt's data (lists of tokens).
function Lookup:_learn(docs_iter)
  if rawget(self, "_has_input_vocabulary") then
    options.raise(string.format("%s:adapt: this layer was given a vocabulary; adapt learns one only when none is",
      rawget(self, "_what")))
  end
  local counts, dcounts, ndocs = {}, {}, 0
  for doc in docs_iter do
    ndocs = ndocs + 1
    local seen = {}
    for _, t in ipairs(doc) do
      counts[t] = (counts[t] or 0) + 1
      if not seen[t] then seen[t] = true; dcounts[t] = (dcounts[t] or 0) + 1 end
    end
  end
  if self.mask_token ~= nil then counts[self.mask_token] = nil end
  if self.oov_token ~= nil then counts[self.oov_token] = nil end
  local tokens = {}
  for t in pairs(counts) do tokens[#tokens + 1] = t end
  table.sort(tokens, function(a, b)
    if counts[a] ~= counts[b] then return counts[a] > counts[b] end
    return a > b
  end)
  local ts = self:_token_start()
  if self.max_tokens then
    for i = #tokens, self.max_tokens - ts + 1, -1 do tokens[i] = nil end
  end
  local index = {}
  for i, t in ipairs(tokens) do index[t] = ts + i - 1 end
  rawset(self, "_vocab", tokens)
  rawset(self, "_index", index)
  if self.output_mode == "tf_idf" then
    local w, s = {}, 0
    for i, t in ipairs(tokens) do
      w[i] = mg.tensor(math.log(1 + ndocs / (1 + dcounts[t])), "float32"):item()
      s = s + w[i]
    end
    local mean = #tokens > 0 and mg.tensor(s / #tokens, "float32"):item() or 0
    local out = {}
    for _ = 1, ts do out[#out + 1] = mean end
    for _, x in ipairs(w) do out[#out + 1] = x end
    if self.pad_to_max_tokens then for _ = #out + 1, self.max_tokens do out[#out + 1] = 0 end end
    rawset(self, "_idf", out)
  end
end

-- The id of each token (a flat list); depth stands for a mask to drop in counting modes.
function Lookup:_ids(flat, depth)
  local index, out = rawget(self, "_index"), {}
  local mask, oov_start, noov = self.mask_token, self:_oov_start(), self.num_oov_indices
  for i, t in ipairs(flat) do
    local id = index[t]
    if mask ~= nil and t == mask then
      id = self.output_mode == "int" and 0 or depth
    elseif id == nil then
      if noov == 0 then
        error(string.format("%s is not in the vocabulary and num_oov_indices is 0", options.show(t)), 0)
      elseif noov == 1 then
        id = oov_start
      elseif self.is_string or self.oov_method == "farmhash" then
        id = oov_start + P.hash_bucket(t, noov, self.salt)
      else
        id = oov_start + t % noov   -- Keras's floormod for integer tokens
      end
    end
    out[i] = id
  end
  return out
end

function Lookup:_depth()
  if self.pad_to_max_tokens then return self.max_tokens end
  return self:vocabulary_size()
end

-- ids (flat list) of shape -> the layer's output for its output_mode.
function Lookup:_output(ids, shape)
  local t = P.int_tensor(ids, shape)
  if self.output_mode == "int" then return t end
  local depth = self:_depth()
  if self.output_mode == "tf_idf" then
    local out = P.encode(t, depth, "count", nil, self.name)
    local w = rawget(self, "_idf") or {}
    local ws = {}
    for i = 1, depth do ws[i] = w[i] or 0 end
    return out * mg.tensor(ws, "float32")
  end
  return P.encode(t, depth, self.output_mode, nil, self.name)
end

-- ids (flat) -> tokens (invert=true).
function Lookup:_tokens(ids)
  local vocab, out = rawget(self, "_vocab"), {}
  local ts = self:_token_start()
  for i, id in ipairs(ids) do
    if self.mask_token ~= nil and id == 0 then out[i] = self.mask_token
    else out[i] = vocab[id - ts + 1] or self.oov_token end
  end
  return out
end

function Lookup:compute_output_shape(s)
  if self.output_mode == "int" then return util.copy(s), self.invert and "int64" or "int64" end
  return P.encoded_shape(s, self:_depth(), self.output_mode == "tf_idf" and "count" or self.output_mode), "float32"
end

local function lookup_config(self, cfg)
  cfg.max_tokens = self.max_tokens
  cfg.num_oov_indices = self.num_oov_indices
  cfg.mask_token = self.mask_token
  cfg.oov_token = self.oov_token
  cfg.invert = self.invert
  cfg.output_mode = self.output_mode
  cfg.pad_to_max_tokens = self.pad_to_max_tokens
  cfg.oov_method = self.oov_method
  cfg.salt = list_copy(self.salt)
  if #rawget(self, "_vocab") > 0 then
    cfg.vocabulary = self:get_vocabulary(true)
    if self.output_mode == "tf_idf" then cfg.idf_weights = list_copy(rawget(self, "_idf")) end
  end
  return cfg
end

local function mixin(cls)
  for k, v in pairs(Lookup) do cls[k] = v end
end

-- ---- StringLookup --------------------------------------------------------------------------

--- mg.nn.StringLookup{max_tokens=nil, num_oov_indices=1, mask_token=nil, oov_token="[UNK]", vocabulary=nil,
---   idf_weights=nil, invert=false, output_mode="int", pad_to_max_tokens=false}
--- Maps strings to integer ids by a vocabulary (given, or learned with layer:adapt(data) from a table
--- of strings or a Dataset of them): Keras's ids, the OOV id(s) first (after the mask's 0 when
--- mask_token is set), then the vocabulary. Input: a string or a table of strings (nested for a
--- batch); output an int64 tensor of that shape, or with output_mode "one_hot"/"multi_hot"/"count"/
--- "tf_idf" float vectors. invert=true maps ids back to strings (a nested table).
--- Example:
---   local lookup = mg.nn.StringLookup{vocabulary = {"a", "b", "c"}}
---   print(lookup{{"a", "c"}, {"d", "b"}})   -- tensor([[1, 3], [0, 2]], dtype=int64)
local StringLookup = Layer:extend("StringLookup")
M.StringLookup = StringLookup
StringLookup.base_options = P.base_options
mixin(StringLookup)
StringLookup.is_string = true

function StringLookup:__init(...)
  local cfg = self:_parse({}, lookup_spec(true), ...)
  init_lookup(self, cfg, "StringLookup", "[UNK]")
end

-- The documents of adapt's data: each string of a list is one (a one-token document, as
-- Keras's rank-1 data); each row of a nested batch is one.
local function string_docs(data, what, steps)
  local batches = P.batches(data, what, steps)
  local pending, pos = {}, 1
  return function()
    while pos > #pending do
      local b = batches()
      if b == nil then return nil end
      local flat, shape = P.string_leaves(b, what .. ":adapt")
      pending, pos = {}, 1
      if #shape <= 1 and data ~= b then
        pending[1] = flat   -- a Dataset element: one document
      elseif #shape <= 1 then
        for i, t in ipairs(flat) do pending[i] = { t } end
      else
        local row = #flat / shape[1]
        for r = 1, shape[1] do
          local d = {}
          for j = 1, row do d[j] = flat[(r - 1) * row + j] end
          pending[r] = d
        end
      end
    end
    pos = pos + 1
    return pending[pos - 1]
  end
end

--- layer:adapt(data, {steps=}): learns the vocabulary (most frequent first, up to max_tokens) from a
--- table of strings (each a document; rows of a nested table are documents) or a Dataset of them.
function StringLookup:adapt(data, opts)
  opts = options.check("StringLookup:adapt", opts, { steps = { "integer", min = 1 } })
  self:_learn(string_docs(data, "StringLookup", opts.steps))
end

function StringLookup:call(x)
  if self.invert then
    local ids = P.as_int(x, "StringLookup")
    return P.nest(self:_tokens(mg.reshape(ids, { -1 }):totable()), ids.shape)
  end
  local flat, shape = P.string_leaves(x, "StringLookup")
  return self:_output(self:_ids(flat, self:_depth()), shape)
end

function StringLookup:get_config()
  local cfg = lookup_config(self, Layer.get_config(self))
  cfg.encoding = "utf-8"
  return cfg
end

-- ---- IntegerLookup --------------------------------------------------------------------------

--- mg.nn.IntegerLookup{max_tokens=nil, num_oov_indices=1, mask_token=nil, oov_token=-1, vocabulary=nil,
---   idf_weights=nil, invert=false, output_mode="int", pad_to_max_tokens=false, vocabulary_dtype="int64"}
--- Maps integer tokens (a tensor or a table) to contiguous ids by a vocabulary (given, or learned
--- with layer:adapt(data)), with StringLookup's id layout and output modes; several OOV ids take
--- token mod num_oov_indices, as Keras. invert=true maps ids back to the tokens.
--- Example:
---   local lookup = mg.nn.IntegerLookup{vocabulary = {12, 36, 1138, 42}}
---   print(lookup(mg.tensor{{12, 1138, 42}, {42, 1000, 36}}))   -- tensor([[1, 3, 4], [4, 0, 2]], dtype=int64)
local IntegerLookup = Layer:extend("IntegerLookup")
M.IntegerLookup = IntegerLookup
IntegerLookup.base_options = P.base_options
mixin(IntegerLookup)
IntegerLookup.is_string = false

function IntegerLookup:__init(...)
  local cfg = self:_parse({}, lookup_spec(false), ...)
  self.vocabulary_dtype = cfg.vocabulary_dtype or "int64"
  init_lookup(self, cfg, "IntegerLookup", -1)
end

--- layer:adapt(data, {steps=}): learns the vocabulary (most frequent first, up to max_tokens) from a
--- tensor or table of integers, or a Dataset of them.
function IntegerLookup:adapt(data, opts)
  opts = options.check("IntegerLookup:adapt", opts, { steps = { "integer", min = 1 } })
  local batches = P.batches(data, "IntegerLookup", opts.steps)
  local pending, pos = {}, 1
  self:_learn(function()
    while pos > #pending do
      local b = batches()
      if b == nil then return nil end
      local t = P.as_int(b, "IntegerLookup:adapt")
      local flat = mg.reshape(t, { -1 }):totable()
      pending, pos = {}, 1
      if #t.shape <= 1 and b ~= data then
        pending[1] = flat
      elseif #t.shape <= 1 then
        for i, v in ipairs(flat) do pending[i] = { v } end
      else
        local row = #flat / t.shape[1]
        for r = 1, t.shape[1] do
          local d = {}
          for j = 1, row do d[j] = flat[(r - 1) * row + j] end
          pending[r] = d
        end
      end
    end
    pos = pos + 1
    return pending[pos - 1]
  end)
end

function IntegerLookup:call(x)
  local ids = P.as_int(x, "IntegerLookup")
  local flat = mg.reshape(ids, { -1 }):totable()
  if self.invert then return P.int_tensor(self:_tokens(flat), ids.shape) end
  return self:_output(self:_ids(flat, self:_depth()), ids.shape)
end

function IntegerLookup:get_config()
  local cfg = lookup_config(self, Layer.get_config(self))
  cfg.vocabulary_dtype = self.vocabulary_dtype
  return cfg
end

-- ---- TextVectorization ------------------------------------------------------------------------

local STANDARDIZE = { "lower_and_strip_punctuation", "lower", "strip_punctuation" }
local SPLIT = { "whitespace", "character" }

local function one_of_or_function(names)
  return { "string|function|boolean", check = function(v)
    if type(v) == "function" or v == false then return nil end
    if v == true then return "must be a name, a function or false" end
    for _, n in ipairs(names) do if v == n then return nil end end
    local q = {}
    for i, n in ipairs(names) do q[i] = string.format("%q", n) end
    return "must be one of " .. table.concat(q, ", ") .. ", a function or false, got " .. options.show(v)
  end }
end

--- mg.nn.TextVectorization{max_tokens=nil, standardize="lower_and_strip_punctuation", split="whitespace",
---   ngrams=nil, output_mode="int", output_sequence_length=nil, pad_to_max_tokens=false, vocabulary=nil,
---   idf_weights=nil}
--- Turns strings into token ids or vectors: standardize ("lower_and_strip_punctuation", "lower",
--- "strip_punctuation", a function string -> string, or false; lower-casing is ASCII only), split
--- ("whitespace", "character" (UTF-8 characters), a function string -> list of tokens, or false),
--- ngrams (n: 1..n-grams; a list: those sizes; joined by a space), then a StringLookup with mask ""
--- and OOV "[UNK]". "int" gives ids (0 padding, 1 unknown, 2.. the vocabulary), padded with 0 to
--- the longest (or cut/padded to output_sequence_length); "multi_hot", "count", "tf_idf" give one
--- vector per string. Input: a string or a list of strings; layer:adapt(data) learns the vocabulary
--- from a table of strings or a Dataset of them (Dataset.text_line, say).
--- Example:
---   local tv = mg.nn.TextVectorization{output_sequence_length = 4}
---   tv:adapt{"the cat sat", "the dog", "The cat!"}
---   print(tv{"the cat", "a dog sat"})   -- tensor([[2, 3, 0, 0], [1, 5, 4, 0]], dtype=int64)
local TextVectorization = Layer:extend("TextVectorization")
M.TextVectorization = TextVectorization
TextVectorization.base_options = P.base_options

function TextVectorization:__init(...)
  local cfg = self:_parse({}, {
    max_tokens = { "integer", min = 1 },
    standardize = one_of_or_function(STANDARDIZE),
    split = one_of_or_function(SPLIT),
    ngrams = { "integer|table", check = function(v)
      if type(v) == "number" then
        if v < 1 then return "must be at least 1" end
        return nil
      end
      for i, n in ipairs(v) do
        if type(n) ~= "number" or n < 1 or n ~= math.floor(n) then
          return string.format("entry %d must be a positive integer", i)
        end
      end
    end },
    output_mode = { "string", one_of = { "int", "multi_hot", "count", "tf_idf" } },
    output_sequence_length = { "integer", min = 1 },
    pad_to_max_tokens = "boolean",
    vocabulary = "table",
    idf_weights = "table",
    encoding = { "string", one_of = { "utf-8" } },
    ragged = util.unsupported(false, "moongrad has no ragged tensors; \"int\" output is padded with 0"),
    vocabulary_size = { "integer", min = 0 },
  }, ...)
  local std = cfg.standardize
  if std == nil then std = "lower_and_strip_punctuation" end
  local split = cfg.split
  if split == nil then split = "whitespace" end
  self.standardize = std
  self.split = split
  self.ngrams = list_copy(cfg.ngrams)
  self.output_mode = cfg.output_mode or "int"
  self.output_sequence_length = cfg.output_sequence_length
  if self.output_sequence_length and self.output_mode ~= "int" then
    util.raise("TextVectorization: output_sequence_length is only used with output_mode \"int\"")
  end
  if split == false and self.ngrams then
    util.raise("TextVectorization: ngrams need a split (split=false gives whole strings)")
  end
  local lk = StringLookup { max_tokens = cfg.max_tokens, mask_token = "", oov_token = "[UNK]",
    vocabulary = cfg.vocabulary, idf_weights = cfg.idf_weights, output_mode = self.output_mode,
    pad_to_max_tokens = cfg.pad_to_max_tokens, vocabulary_size = cfg.vocabulary_size, name = self.name .. "_lookup" }
  rawset(self, "_lookup", lk)
  rawset(self, "built", true)
end

-- The tokens of one string: standardized, split, n-grams.
function TextVectorization:_tokens(s)
  local std = self.standardize
  if std == "lower_and_strip_punctuation" or std == "lower" then s = s:lower() end
  if std == "lower_and_strip_punctuation" or std == "strip_punctuation" then s = s:gsub("%p", "") end
  if type(std) == "function" then
    s = std(s)
    if type(s) ~= "string" then error("the standardize function must return a string, got " .. type(s), 0) end
  end
  local sp, toks = self.split, {}
  if sp == "whitespace" then
    for w in s:gmatch("%S+") do toks[#toks + 1] = w end
  elseif sp == "character" then
    for c in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do toks[#toks + 1] = c end
  elseif type(sp) == "function" then
    toks = sp(s)
    if type(toks) ~= "table" then error("the split function must return a list of strings, got " .. type(toks), 0) end
  else
    toks = { s }
  end
  local ng = self.ngrams
  if ng then
    local widths = {}
    if type(ng) == "number" then for n = 1, ng do widths[n] = n end else widths = ng end
    local out = {}
    for _, n in ipairs(widths) do
      for i = 1, #toks - n + 1 do out[#out + 1] = table.concat(toks, " ", i, i + n - 1) end
    end
    toks = out
  end
  return toks
end

-- A string or a list of strings (a list of one-string lists: Keras's (batch, 1)).
local function string_list(x, what)
  if type(x) == "string" then return { x }, true end
  local flat, shape = P.string_leaves(x, what)
  if #shape == 2 and shape[2] ~= 1 or #shape > 2 then
    options.raise(string.format("%s: expected a string, a list of strings or a (batch, 1) table of them, got "
      .. "nested tables of shape %s", what, util.shape_str(shape)))
  end
  return flat, false
end

--- layer:adapt(data, {steps=}): learns the vocabulary from a list of strings or a Dataset of strings
--- (or of lists of them: Dataset.text_line(path):batch(n)), after standardize, split and ngrams.
function TextVectorization:adapt(data, opts)
  opts = options.check("TextVectorization:adapt", opts, { steps = { "integer", min = 1 } })
  local batches = P.batches(data, "TextVectorization", opts.steps)
  local pending, pos = {}, 1
  local lk = rawget(self, "_lookup")
  if rawget(lk, "_has_input_vocabulary") then
    options.raise("TextVectorization:adapt: this layer was given a vocabulary; adapt learns one only when none is")
  end
  lk:_learn(function()
    while pos > #pending do
      local b = batches()
      if b == nil then return nil end
      local strs = string_list(b, "TextVectorization:adapt")
      pending, pos = {}, 1
      for i, s in ipairs(strs) do pending[i] = self:_tokens(s) end
    end
    pos = pos + 1
    return pending[pos - 1]
  end)
end

function TextVectorization:call(x)
  local strs, single = string_list(x, "TextVectorization")
  local lk = rawget(self, "_lookup")
  if self.output_mode ~= "int" then
    local depth = lk:_depth()
    local rows = {}
    for i, s in ipairs(strs) do
      local toks = self:_tokens(s)
      local ids = lk:_ids(toks, depth)
      local t = #ids > 0 and lk:_output(ids, { #ids }) or mg.zeros({ depth }, "float32")
      rows[i] = mg.reshape(t, { 1, depth })
    end
    if #rows == 0 then return mg.zeros({ 0, depth }, "float32") end
    local out = #rows == 1 and rows[1] or mg.concat(rows, 1)
    if single then return mg.reshape(out, { depth }) end
    return out
  end
  local seqs, longest = {}, 0
  for i, s in ipairs(strs) do
    seqs[i] = lk:_ids(self:_tokens(s), 0)
    if #seqs[i] > longest then longest = #seqs[i] end
  end
  local len = self.output_sequence_length or longest
  local flat = {}
  for _, ids in ipairs(seqs) do
    for j = 1, len do flat[#flat + 1] = ids[j] or 0 end
  end
  if single then return P.int_tensor(flat, { len }) end
  return P.int_tensor(flat, { #strs, len })
end

function TextVectorization:compute_output_shape(s)
  local lk = rawget(self, "_lookup")
  if self.output_mode == "int" then return { s[1], self.output_sequence_length or -1 }, "int64" end
  return { s[1], lk:_depth() }, "float32"
end

--- layer:get_vocabulary(include_special_tokens=true) -> the vocabulary (entry i: the token of id i-1).
function TextVectorization:get_vocabulary(include_special_tokens)
  return rawget(self, "_lookup"):get_vocabulary(include_special_tokens)
end

--- layer:vocabulary_size() -> the number of ids, padding and OOV included.
function TextVectorization:vocabulary_size() return rawget(self, "_lookup"):vocabulary_size() end

--- layer:set_vocabulary(vocabulary, idf_weights=nil): sets the vocabulary (and tf_idf's idf weights).
function TextVectorization:set_vocabulary(vocab, idf)
  local lk = rawget(self, "_lookup")
  local ok, err = pcall(lk.set_vocabulary, lk, vocab, idf)
  if not ok then options.raise((tostring(err):gsub("^[^:\n]*:%d+: ", ""):gsub("StringLookup", "TextVectorization"))) end
end

function TextVectorization:get_config()
  local cfg = Layer.get_config(self)
  for _, k in ipairs({ "standardize", "split" }) do
    if type(self[k]) == "function" then
      util.raise(string.format("TextVectorization %s: its %s is a Lua function, which cannot be serialized",
        self.name, k))
    end
    cfg[k] = self[k]
  end
  local lk = rawget(self, "_lookup")
  cfg.max_tokens = lk.max_tokens
  cfg.ngrams = list_copy(self.ngrams)
  cfg.output_mode = self.output_mode
  cfg.output_sequence_length = self.output_sequence_length
  cfg.pad_to_max_tokens = lk.pad_to_max_tokens
  cfg.encoding = "utf-8"
  if #rawget(lk, "_vocab") > 0 then
    cfg.vocabulary = lk:get_vocabulary(true)
    if self.output_mode == "tf_idf" then cfg.idf_weights = list_copy(rawget(lk, "_idf")) end
  end
  return cfg
end

return M
