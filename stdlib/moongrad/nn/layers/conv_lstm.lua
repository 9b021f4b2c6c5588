-- moongrad.nn.layers.conv_lstm: ConvLSTM2D, an LSTM whose input and
-- recurrent transforms are 2-d convolutions (Keras 3's layout: kernel
-- (kh, kw, in, 4*filters), recurrent_kernel (kh, kw, filters, 4*filters),
-- bias (4*filters), gates i, f, c, o; channels_last).
--
-- It is an RNN (recurrent.lua) that is its own cell, like LSTM: the input
-- convolution runs once over all time steps (the batch and time axes folded
-- together), the recurrent one ("same" padding, stride 1, as Keras) per
-- step, in a Lua loop eagerly and when staged (the staged graph holds one
-- copy of the step per time step). Masks, dropout (one mask per sample, the
-- same at every step, only in training), go_backwards, return_sequences and
-- return_state behave as for LSTM.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local activations = require("moongrad.nn.activations")
local options = require("moongrad.options")
local cells = require("moongrad.nn.layers.rnn_cells")
local recurrent = require("moongrad.nn.layers.recurrent")

local M = {}

local R = util.rules
local OPTIONS = options.extend(cells.CELL_OPTIONS, options.extend(cells.GATED, {
  filters = R.positive_int, kernel_size = R.pair, strides = R.pair, padding = R.padding,
  dilation_rate = R.pair, data_format = R.channels_last, unit_forget_bias = "boolean",
  return_sequences = "boolean", return_state = "boolean", go_backwards = "boolean", unroll = "boolean",
  zero_output_for_mask = "boolean", stateful = util.unsupported(false),
  activity_regularizer = util.unsupported(nil) }))
OPTIONS.units = nil
OPTIONS.implementation = nil

--- mg.nn.ConvLSTM2D{filters, kernel_size, strides=1, padding="valid", dilation_rate=1, activation="tanh", recurrent_activation="sigmoid", return_sequences=false, return_state=false, go_backwards=false, dropout=0, recurrent_dropout=0, ...}
--- A convolutional LSTM over (batch, time, height, width, channels) input; its states are
--- (batch, height', width', filters) images.
--- Example:
---   local cl = mg.nn.ConvLSTM2D(4, 3, {padding = "same", return_sequences = true})
---   print(cl(mg.ones{2, 5, 8, 8, 3}).shape)   -- {2, 5, 8, 8, 4}
local ConvLSTM2D = recurrent.RNNBase:extend("ConvLSTM2D")
M.ConvLSTM2D = ConvLSTM2D

function ConvLSTM2D:__init(...)
  local cfg = self:_parse({ "filters", "kernel_size" }, OPTIONS, ...)
  if cfg.filters == nil then util.raise("ConvLSTM2D: filters is required (a positive integer)") end
  if cfg.kernel_size == nil then util.raise("ConvLSTM2D: kernel_size is required (a number or {h, w})") end
  cfg.units = cfg.filters
  cells.setup(self, cfg)
  self.filters = cfg.filters
  self.kernel_size = util.pair(cfg.kernel_size, "kernel_size", "ConvLSTM2D")
  self.strides = util.pair(cfg.strides or 1, "strides", "ConvLSTM2D")
  self.dilation_rate = util.pair(cfg.dilation_rate or 1, "dilation_rate", "ConvLSTM2D")
  self.padding = (cfg.padding or "valid"):lower()
  self.unit_forget_bias = cfg.unit_forget_bias ~= false
  self.gates = 4
  self:_setup_flags(cfg)
end

function ConvLSTM2D:_nstates() return 2 end
ConvLSTM2D._bias_init = cells.lstm_bias_init

function ConvLSTM2D:_features(s)
  if #s ~= 5 then
    error(string.format("expected a 5-d input (batch, time, height, width, channels), got shape %s",
      util.shape_str(s)), 0)
  end
  if s[5] == -1 then error("the channel dimension must be known, got " .. util.shape_str(s), 0) end
  return s[5]
end

function ConvLSTM2D:build(s)
  local c = self:_features(s)
  local kh, kw, f = self.kernel_size[1], self.kernel_size[2], self.filters
  self.kernel = self:add_weight { name = "kernel", shape = { kh, kw, c, 4 * f },
    initializer = self.kernel_initializer, regularizer = self.kernel_regularizer }
  self.recurrent_kernel = self:add_weight { name = "recurrent_kernel", shape = { kh, kw, f, 4 * f },
    initializer = self.recurrent_initializer, regularizer = self.recurrent_regularizer }
  if self.use_bias then
    self.bias = self:add_weight { name = "bias", shape = { 4 * f }, initializer = self:_bias_init(),
      regularizer = self.bias_regularizer }
  end
  cells.build_seed(self)
  self._conv_opts = { strides = self.strides, padding = self.padding, dilation = self.dilation_rate }
  self._rec_opts = { strides = { 1, 1 }, padding = "same" }
end

local function out_len(n, k, s, d, padding)
  if type(n) ~= "number" or n == -1 then return -1 end
  if padding == "same" then return math.floor((n + s - 1) / s) end
  local keff = d * (k - 1) + 1
  if n < keff then error(string.format("the input's %d positions are fewer than the kernel's %d", n, keff), 0) end
  return math.floor((n - keff) / s) + 1
end

function ConvLSTM2D:_spatial(s)
  local ks, st, dl = self.kernel_size, self.strides, self.dilation_rate
  return out_len(s[3], ks[1], st[1], dl[1], self.padding), out_len(s[4], ks[2], st[2], dl[2], self.padding)
end

function ConvLSTM2D:_state_shape(x)
  local h, w = self:_spatial(x.shape)
  return { x.shape[1], h, w, self.filters }
end

function ConvLSTM2D:_initial_states(_, dtype, x)
  local shape = self:_state_shape(x)
  return { mg.zeros(shape, dtype), mg.zeros(shape, dtype) }
end

-- The input convolution of every time step at once (batch and time folded).
function ConvLSTM2D:_project(x)
  local s = x.shape
  local folded = mg.reshape(x, { -1, s[3], s[4], s[5] })
  local y = mg.conv2d(folded, self.kernel, self._conv_opts)
  if self.use_bias then y = y + self.bias end
  local ys = y.shape
  return mg.reshape(y, { s[1], s[2], ys[2], ys[3], ys[4] })
end

function ConvLSTM2D:_step(xt, st, rdm)
  local h0 = rdm and st[1] * rdm or st[1]
  local z = xt + mg.conv2d(h0, self.recurrent_kernel, self._rec_opts)
  local parts = mg.split(z, 4, -1)
  local ra, a = self.recurrent_activation, self.activation
  local i, f, o = ra(parts[1]), ra(parts[2]), ra(parts[4])
  local c = f * st[2] + i * a(parts[3])
  local h = o * a(c)
  return h, { h, c }
end

function ConvLSTM2D:compute_output_shape(s)
  local c = self:_features(s)
  if self.kernel and c ~= self.kernel.shape[3] then
    error(string.format("expected %d channels, got shape %s", self.kernel.shape[3], util.shape_str(s)), 0)
  end
  local h, w = self:_spatial(s)
  local out = self.return_sequences and { s[1], s[2], h, w, self.filters } or { s[1], h, w, self.filters }
  if self.return_state then
    return { out, { s[1], h, w, self.filters }, { s[1], h, w, self.filters } }
  end
  return out
end

function ConvLSTM2D:get_config()
  local cfg = cells.config(self, Layer.get_config(self))
  cfg.units = nil
  cfg.filters = self.filters
  cfg.kernel_size = util.copy(self.kernel_size)
  cfg.strides = util.copy(self.strides)
  cfg.padding = self.padding
  cfg.data_format = "channels_last"
  cfg.dilation_rate = util.copy(self.dilation_rate)
  cfg.recurrent_activation = activations.serialize(self.recurrent_activation)
  cfg.unit_forget_bias = self.unit_forget_bias
  return self:_flags_config(cfg)
end

return M
