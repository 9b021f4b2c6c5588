-- moongrad.nn.layers.wrappers: Keras's layer wrappers, Bidirectional and
-- TimeDistributed.
--
-- Bidirectional copies the recurrent layer it is given from its config (as
-- Keras does: the forward layer is a fresh layer named forward_<name>) and
-- makes the backward one the same way with go_backwards flipped, unless a
-- backward_layer is given. Its weights are the forward layer's then the
-- backward one's (Keras's order, so weights move between the two). The
-- backward output sequence is flipped back to the input's time order before
-- the merge. TimeDistributed folds the time axis into the batch, calls the
-- inner layer once, and unfolds it again.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local options = require("moongrad.options")

local M = {}

local function deserialize(spec) return require("moongrad.nn.saving").deserialize(spec) end
local function serialize(layer) return { class_name = layer.class_name, config = layer:get_config() } end

-- ---- Bidirectional ------------------------------------------------------------------------------

local MERGE = { "concat", "sum", "mul", "ave", "none" }

--- mg.nn.Bidirectional(layer, {merge_mode="concat", backward_layer=nil, weights=nil})
--- Runs a recurrent layer forwards and a copy backwards over the time axis and merges the two
--- outputs: merge_mode "concat" (the default), "sum", "mul", "ave", or false (Keras's None: a list
--- {forward, backward}). With return_state the states follow: forward ones, then backward ones.
--- Example:
---   local bi = mg.nn.Bidirectional(mg.nn.LSTM(4, {return_sequences = true}))
---   print(bi(mg.ones{2, 5, 3}).shape)   -- {2, 5, 8}
local Bidirectional = Layer:extend("Bidirectional")
M.Bidirectional = Bidirectional
Bidirectional.supports_masking = true
Bidirectional.call_options = options.extend(Layer.call_options, { initial_state = "tensor|table" })

local function is_rnn(l)
  return Layer.is_layer(l) and type(l.go_backwards) == "boolean" and type(l.return_sequences) == "boolean"
end

function Bidirectional:__init(...)
  local cfg = self:_parse({ "layer", "merge_mode" }, { layer = "table", merge_mode = "string|boolean",
    backward_layer = "table", weights = "table" }, ...)
  local layer, bw = cfg.layer, cfg.backward_layer
  if not is_rnn(layer) then
    util.raise("Bidirectional: layer must be a recurrent layer (RNN, LSTM, GRU, SimpleRNN, ...), got "
      .. (Layer.is_layer(layer) and layer.class_name or type(layer)))
  end
  local mm = cfg.merge_mode
  if mm == nil or mm == true then mm = "concat" end
  if mm == false then mm = "none" end
  local known = false
  for _, m in ipairs(MERGE) do if mm == m then known = true end end
  if not known then
    util.raise(string.format("Bidirectional: merge_mode must be \"concat\", \"sum\", \"mul\", \"ave\" or false "
      .. "(no merge), got %s", options.show(cfg.merge_mode)))
  end
  self.merge_mode = mm
  local spec = serialize(layer)
  spec.config.name = "forward_" .. (layer.name:gsub("^forward_", ""))
  self.forward_layer = deserialize(util.deep_copy(spec))
  if bw == nil then
    spec.config.name = "backward_" .. (layer.name:gsub("^backward_", ""))
    spec.config.go_backwards = not spec.config.go_backwards
    bw = deserialize(spec)
  else
    if not is_rnn(bw) then util.raise("Bidirectional: backward_layer must be a recurrent layer") end
    if bw.go_backwards == layer.go_backwards then
      util.raise("Bidirectional: backward_layer.go_backwards must differ from layer.go_backwards")
    end
    for _, k in ipairs({ "return_sequences", "return_state" }) do
      if bw[k] ~= layer[k] then
        util.raise(string.format("Bidirectional: backward_layer.%s must equal layer.%s", k, k))
      end
    end
  end
  self.backward_layer = bw
  -- Keras: a masked step of a returned sequence gives zeros in both directions
  rawset(self.forward_layer, "zero_output_for_mask", self.forward_layer.return_sequences)
  rawset(bw, "zero_output_for_mask", bw.return_sequences)
  self.return_sequences = layer.return_sequences
  self.return_state = layer.return_state
  rawset(self, "_initial_weights", cfg.weights)
end

function Bidirectional:build(s)
  self.forward_layer:_maybe_build(s)
  self.backward_layer:_maybe_build(s)
  local w = rawget(self, "_initial_weights")
  if w then
    self:set_weights(w)
    rawset(self, "_initial_weights", nil)
  end
end

function Bidirectional:_merge(y, yr)
  local m = self.merge_mode
  if m == "concat" then return mg.concat({ y, yr }, -1) end
  if m == "sum" then return y + yr end
  if m == "mul" then return y * yr end
  if m == "ave" then return (y + yr) * 0.5 end
  return { y, yr }
end

function Bidirectional:call(x, training, opts)
  local fo, bo = { training = training }, { training = training }
  if opts and opts.mask ~= nil then fo.mask, bo.mask = opts.mask, opts.mask end
  local init = opts and opts.initial_state
  if init then
    if core.is_tensor(init) or #init % 2 ~= 0 then
      error("initial_state must be a list of the forward layer's states then the backward layer's", 0)
    end
    local h = #init / 2
    local f, b = {}, {}
    for i = 1, h do f[i] = init[i]; b[i] = init[h + i] end
    fo.initial_state, bo.initial_state = f, b
  end
  local y, yr = self.forward_layer(x, fo), self.backward_layer(x, bo)
  local fs, bs = {}, {}
  if self.return_state then
    for i = 2, #y do fs[#fs + 1] = y[i] end
    for i = 2, #yr do bs[#bs + 1] = yr[i] end
    y, yr = y[1], yr[1]
  end
  if self.return_sequences then yr = mg.flip(yr, 2) end
  local out = self:_merge(y, yr)
  if not self.return_state then return out end
  local r = core.is_tensor(out) and { out } or out
  for _, t in ipairs(fs) do r[#r + 1] = t end
  for _, t in ipairs(bs) do r[#r + 1] = t end
  return r
end

function Bidirectional:compute_mask(_, mask)
  if type(mask) == "table" and not core.is_tensor(mask) then mask = mask[1] end
  if mask == false then mask = nil end
  local om = self.return_sequences and mask or nil
  local list
  if self.merge_mode == "none" then list = { om or false, om or false } end
  if not self.return_state then return list or om end
  list = list or { om or false }
  return list   -- the states carry no mask
end

function Bidirectional:compute_output_shape(s)
  local fs = self.forward_layer:compute_output_shape(s)
  local bs = self.backward_layer:compute_output_shape(s)
  local y = self.return_state and fs[1] or fs
  local yb = self.return_state and bs[1] or bs
  local out
  if self.merge_mode == "concat" then
    out = util.copy(y)
    out[#out] = y[#y] + yb[#yb]
  elseif self.merge_mode == "none" then
    out = { util.copy(y), util.copy(yb) }
  else
    out = util.copy(y)
  end
  if not self.return_state then return out end
  local r = self.merge_mode == "none" and out or { out }
  for i = 2, #fs do r[#r + 1] = fs[i] end
  for i = 2, #bs do r[#r + 1] = bs[i] end
  return r
end

function Bidirectional:get_config()
  local cfg = Layer.get_config(self)
  cfg.merge_mode = self.merge_mode ~= "none" and self.merge_mode or false
  cfg.layer = serialize(self.forward_layer)
  cfg.backward_layer = serialize(self.backward_layer)
  return cfg
end

function Bidirectional.from_config(cls, cfg, deser)
  cfg = util.deep_copy(cfg)
  deser = deser or deserialize
  cfg.layer = deser(cfg.layer)
  if cfg.backward_layer then cfg.backward_layer = deser(cfg.backward_layer) end
  return cls(cfg)
end

-- ---- TimeDistributed ------------------------------------------------------------------------------

--- mg.nn.TimeDistributed(layer): applies `layer` to every time step (axis 2) of its input.
--- Example:
---   local td = mg.nn.TimeDistributed(mg.nn.Dense(2))
---   print(td(mg.ones{4, 3, 5}).shape)   -- {4, 3, 2}
local TimeDistributed = Layer:extend("TimeDistributed")
M.TimeDistributed = TimeDistributed
TimeDistributed.supports_masking = true

function TimeDistributed:__init(...)
  local cfg = self:_parse({ "layer" }, { layer = "any" }, ...)
  if not Layer.is_layer(cfg.layer) then
    util.raise("TimeDistributed: layer must be a layer, got " .. type(cfg.layer))
  end
  self.layer = cfg.layer
end

local function inner_shape(s)
  if #s < 3 then
    error(string.format("expected an input of rank 3 or more (batch, time, ...), got shape %s", util.shape_str(s)), 0)
  end
  local out = { s[1] }
  for i = 3, #s do out[#out + 1] = s[i] end
  return out
end

function TimeDistributed:build(s) self.layer:_maybe_build(inner_shape(s)) end

function TimeDistributed:call(x, training)
  local s = x.shape
  local folded = inner_shape(s)
  folded[1] = -1
  local y = self.layer(mg.reshape(x, folded), training)
  if not core.is_tensor(y) then error("the inner layer must return one tensor", 0) end
  local ys = { -1, s[2] }
  if type(s[1]) == "number" and s[1] >= 0 then ys[1] = s[1] end
  for i = 2, #y.shape do ys[#ys + 1] = y.shape[i] end
  return mg.reshape(y, ys)
end

function TimeDistributed:compute_output_shape(s)
  local inner = self.layer:compute_output_shape(inner_shape(s))
  local out = { s[1], s[2] }
  for i = 2, #inner do out[#out + 1] = inner[i] end
  return out
end

function TimeDistributed:get_config()
  local cfg = Layer.get_config(self)
  cfg.layer = serialize(self.layer)
  return cfg
end

function TimeDistributed.from_config(cls, cfg, deser)
  cfg = util.deep_copy(cfg)
  cfg.layer = (deser or deserialize)(cfg.layer)
  return cls(cfg)
end

return M
