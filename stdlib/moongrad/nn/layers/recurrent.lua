-- moongrad.nn.layers.recurrent: SimpleRNN, LSTM and GRU over (batch, time,
-- features) inputs, with Keras's weights, gate order and defaults
-- (LSTM gates i, f, c, o with unit_forget_bias; GRU gates z, r, h with
-- reset_after=true and a (2, 3*units) bias).
--
-- The input projection x @ kernel + bias is one matmul over all time steps;
-- the recurrence then runs per step. Eagerly (and with unroll=true) it is a
-- Lua loop; inside a staged function it is one mg.while_loop node whose
-- body reads step t with `take` and writes the output sequence with
-- `scatter_add`, so the graph does not grow with the sequence length;
-- staged training differentiates that node (a tape inside a staged function
-- records it: the forward keeps each step's state, the backward is a
-- reverse while loop, see doc/staging.md).
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local activations = require("moongrad.nn.activations")
local initializers = require("moongrad.nn.initializers")
local regularizers = require("moongrad.nn.regularizers")
local options = require("moongrad.options")

local M = {}

local R = util.rules
local OPTIONS = { units = R.positive_int, activation = R.activation, use_bias = "boolean",
  kernel_initializer = R.initializer, recurrent_initializer = R.initializer, bias_initializer = R.initializer,
  return_sequences = "boolean", return_state = "boolean", go_backwards = "boolean", unroll = "boolean",
  kernel_regularizer = R.regularizer, recurrent_regularizer = R.regularizer, bias_regularizer = R.regularizer,
  stateful = util.unsupported(false), time_major = util.unsupported(false),
  dropout = util.unsupported(0, "add a Dropout layer instead"),
  recurrent_dropout = util.unsupported(0, "add a Dropout layer instead") }
-- the gated cells' own options
local GATED = { recurrent_activation = R.activation }

local RNNBase = Layer:extend("RNNBase")

-- initial_state: a tensor (SimpleRNN, GRU) or a list of state tensors (LSTM: {h, c})
RNNBase.call_options = options.extend(Layer.call_options, { initial_state = "tensor|table" })

function RNNBase:_setup_rnn(gates, more, ...)
  local cfg = self:_parse({ "units" }, more and options.extend(OPTIONS, more) or OPTIONS, ...)
  local name = self.class_name
  if cfg.units == nil then util.raise(name .. ": units is required (a positive integer)") end
  self.units = cfg.units
  self.gates = gates
  self.activation = activations.get(cfg.activation or "tanh")
  self.recurrent_activation = activations.get(cfg.recurrent_activation or "sigmoid")
  self.use_bias = cfg.use_bias ~= false
  self.kernel_initializer = initializers.get(cfg.kernel_initializer or "glorot_uniform")
  self.recurrent_initializer = initializers.get(cfg.recurrent_initializer or "orthogonal")
  self.bias_initializer = initializers.get(cfg.bias_initializer or "zeros")
  self.kernel_regularizer = regularizers.get(cfg.kernel_regularizer)
  self.recurrent_regularizer = regularizers.get(cfg.recurrent_regularizer)
  self.bias_regularizer = regularizers.get(cfg.bias_regularizer)
  self.return_sequences = cfg.return_sequences and true or false
  self.return_state = cfg.return_state and true or false
  self.go_backwards = cfg.go_backwards and true or false
  self.unroll = cfg.unroll and true or false
  return cfg
end

function RNNBase:_features(s)
  if #s ~= 3 then
    error(string.format("expected a 3-d input (batch, time, features), got shape %s", util.shape_str(s)), 0)
  end
  if s[3] == -1 then error("the feature dimension must be known, got " .. util.shape_str(s), 0) end
  return s[3]
end

function RNNBase:build(s)
  local f = self:_features(s)
  local u, g = self.units, self.gates
  self.kernel = self:add_weight { name = "kernel", shape = { f, g * u }, initializer = self.kernel_initializer,
    regularizer = self.kernel_regularizer }
  self.recurrent_kernel = self:add_weight { name = "recurrent_kernel", shape = { u, g * u },
    initializer = self.recurrent_initializer, regularizer = self.recurrent_regularizer }
  if self.use_bias then
    self.bias = self:add_weight { name = "bias", shape = self:_bias_shape(), initializer = self:_bias_init(),
      regularizer = self.bias_regularizer }
  end
end

function RNNBase:_bias_shape() return { self.gates * self.units } end
function RNNBase:_bias_init() return self.bias_initializer end
function RNNBase:_input_bias() return self.bias end
function RNNBase:_nstates() return 1 end

-- Runs the recurrence; returns the last output, the sequence (or nil) and the final states.
function RNNBase:_run(x, initial, training)
  x = util.float_input(x, self.compute_dtype)
  local s = x.shape
  local B, T, U = s[1], s[2], self.units
  local xs = mg.matmul(x, self.kernel)
  local ib = self.use_bias and self:_input_bias()
  if ib then xs = xs + ib end
  local nst = self:_nstates()
  local states = {}
  for i = 1, nst do
    states[i] = initial and initial[i] or mg.zeros({ B, U }, x.dtype)
  end
  if T == 0 then return states[1], mg.zeros({ B, 0, U }, x.dtype), states end
  local symbolic = core.tracing() and core.is_symbolic(xs)
  if core.is_unknown_size(T) then   -- a -1 time axis while tracing: no Lua number exists for it
    if self.unroll then
      error(string.format("%s: unroll = true needs a known number of time steps, but the input's time axis is "
        .. "unknown while tracing (a -1 size of the input signature)", self.name), 0)
    end
    T = mg.sum(mg.ones({ T }, "int64"))   -- the call's size, counted when the graph runs
  end
  if not symbolic or self.unroll then
    local outs = {}
    local h
    for i = 1, T do
      local t = self.go_backwards and T - i + 1 or i
      h, states = self:_step(mg.select(xs, 2, t), states)
      if self.return_sequences then outs[i] = h end
    end
    local seq = self.return_sequences and mg.stack(outs, 2) or nil
    return h, seq, states
  end
  local K, F = xs.shape[3], s[3]
  local seq = self.return_sequences
  -- Training projects each step's input inside the loop: the gradient of a
  -- tensor the body slices is a full-size tensor per iteration, so slicing
  -- the projected sequence would cost O(T^2) in the backward loop; the
  -- kernel's and bias's gradients are O(1) per step (the input's, when it
  -- has one, still O(T) each: see doc/staging.md).
  local per_step = training and true or false
  local init = { mg.tensor(1, "int64") }   -- an explicit int64 (a Lua 1 is a float under LuaJIT)
  for i = 1, nst do init[#init + 1] = states[i] end
  if seq then init[#init + 1] = mg.zeros({ B, s[2], U }, x.dtype) end
  local res = mg.while_loop(function(i) return mg.less_equal(i, T) end, function(i, ...)
    local vars = { ... }
    local t = self.go_backwards and (T + 1 - i) or i
    local xt
    if per_step then
      xt = mg.matmul(mg.reshape(mg.take(x, mg.reshape(t, { 1 }), 2), { B, F }), self.kernel)
      if ib then xt = xt + ib end
    else
      xt = mg.reshape(mg.take(xs, mg.reshape(t, { 1 }), 2), { B, K })
    end
    local st = {}
    for k = 1, nst do st[k] = vars[k] end
    local h, new = self:_step(xt, st)
    local out = { i + 1 }
    for k = 1, nst do out[#out + 1] = new[k] end
    if seq then
      local idx = mg.expand(mg.reshape(i, { 1, 1, 1 }), { B, 1, U })
      out[#out + 1] = mg.scatter_add(vars[nst + 1], idx, mg.unsqueeze(h, 2), 2)
    end
    return out
  end, init)
  local final = {}
  for k = 1, nst do final[k] = res[k + 1] end
  return final[1], seq and res[nst + 2] or nil, final
end

function RNNBase:call(x, training, opts)
  local initial = opts and opts.initial_state
  if initial and core.is_tensor(initial) then initial = { initial } end
  if initial then
    local n = self:_nstates()
    if #initial ~= n then
      error(string.format("initial_state must be %d state tensor(s) (%s), got %d", n,
        n == 2 and "{h, c}" or "h", #initial), 0)
    end
    for i = 1, n do
      local st = initial[i]
      if not core.is_tensor(st) or #st.shape ~= 2 or st.shape[2] ~= self.units then
        error(string.format("initial_state %d must be a (batch, %d) tensor, got %s", i, self.units,
          core.is_tensor(st) and util.shape_str(st.shape) or type(st)), 0)
      end
    end
  end
  local last, seq, states = self:_run(x, initial, training)
  local out = self.return_sequences and seq or last
  if self.return_state then
    local r = { out }
    for i, st in ipairs(states) do r[i + 1] = st end
    return r
  end
  return out
end

function RNNBase:compute_output_shape(s)
  local f = self:_features(s)
  if f ~= self.kernel.shape[1] then
    error(string.format("expected %d features per step, got shape %s", self.kernel.shape[1], util.shape_str(s)), 0)
  end
  local out = self.return_sequences and { s[1], s[2], self.units } or { s[1], self.units }
  if self.return_state then
    local r = { out }
    for i = 1, self:_nstates() do r[i + 1] = { s[1], self.units } end
    return r
  end
  return out
end

function RNNBase:get_config()
  local cfg = Layer.get_config(self)
  cfg.units = self.units
  cfg.activation = activations.serialize(self.activation)
  cfg.use_bias = self.use_bias
  cfg.kernel_initializer = initializers.serialize(self.kernel_initializer)
  cfg.recurrent_initializer = initializers.serialize(self.recurrent_initializer)
  cfg.bias_initializer = initializers.serialize(self.bias_initializer)
  cfg.kernel_regularizer = regularizers.serialize(self.kernel_regularizer)
  cfg.recurrent_regularizer = regularizers.serialize(self.recurrent_regularizer)
  cfg.bias_regularizer = regularizers.serialize(self.bias_regularizer)
  cfg.return_sequences = self.return_sequences
  cfg.return_state = self.return_state
  cfg.go_backwards = self.go_backwards
  cfg.unroll = self.unroll
  return cfg
end

-- ---- SimpleRNN ----------------------------------------------------------------------------

--- mg.nn.SimpleRNN{units, activation="tanh", return_sequences=false, return_state=false, ...}
--- A fully connected recurrent layer over (batch, time, features) input.
local SimpleRNN = RNNBase:extend("SimpleRNN")
M.SimpleRNN = SimpleRNN

function SimpleRNN:__init(...) self:_setup_rnn(1, nil, ...) end

function SimpleRNN:_step(xt, st)
  local h = self.activation(xt + mg.matmul(st[1], self.recurrent_kernel))
  return h, { h }
end

-- ---- LSTM -----------------------------------------------------------------------------------

--- mg.nn.LSTM{units, activation="tanh", recurrent_activation="sigmoid", return_sequences=false, return_state=false, ...}
--- A long short-term memory layer over (batch, time, features) input.
local LSTM = RNNBase:extend("LSTM")
M.LSTM = LSTM

function LSTM:__init(...)
  local cfg = self:_setup_rnn(4, options.extend(GATED, { unit_forget_bias = "boolean" }), ...)
  self.unit_forget_bias = cfg.unit_forget_bias ~= false
end

function LSTM:_nstates() return 2 end

-- unit_forget_bias: the forget gate's bias starts at 1.
function LSTM:_bias_init()
  if not self.unit_forget_bias then return self.bias_initializer end
  local base, u = self.bias_initializer, self.units
  return function(_, dtype)
    return mg.concat({ base({ u }, dtype), mg.ones({ u }, dtype), base({ 2 * u }, dtype) }, 1)
  end
end

function LSTM:_step(xt, st)
  local z = xt + mg.matmul(st[1], self.recurrent_kernel)
  local parts = mg.split(z, 4, -1)
  local ra, a = self.recurrent_activation, self.activation
  local i, f, o = ra(parts[1]), ra(parts[2]), ra(parts[4])
  local c = f * st[2] + i * a(parts[3])
  local h = o * a(c)
  return h, { h, c }
end

function LSTM:get_config()
  local cfg = RNNBase.get_config(self)
  cfg.recurrent_activation = activations.serialize(self.recurrent_activation)
  cfg.unit_forget_bias = self.unit_forget_bias
  return cfg
end

-- ---- GRU -------------------------------------------------------------------------------------

--- mg.nn.GRU{units, activation="tanh", recurrent_activation="sigmoid", reset_after=true, return_sequences=false, ...}
--- A gated recurrent unit layer over (batch, time, features) input.
local GRU = RNNBase:extend("GRU")
M.GRU = GRU

function GRU:__init(...)
  local cfg = self:_setup_rnn(3, options.extend(GATED, { reset_after = "boolean" }), ...)
  self.reset_after = cfg.reset_after ~= false
end

function GRU:_bias_shape()
  if self.reset_after then return { 2, 3 * self.units } end
  return { 3 * self.units }
end

function GRU:_input_bias()
  if self.reset_after then return self.bias[1] end
  return self.bias
end

function GRU:_step(xt, st)
  local h = st[1]
  local u = self.units
  local xp = mg.split(xt, 3, -1)
  local ra, a = self.recurrent_activation, self.activation
  if self.reset_after then
    local r = mg.matmul(h, self.recurrent_kernel)
    if self.use_bias then r = r + self.bias[2] end
    local rp = mg.split(r, 3, -1)
    local z = ra(xp[1] + rp[1])
    local rr = ra(xp[2] + rp[2])
    local hh = a(xp[3] + rr * rp[3])
    local hn = z * h + (1 - z) * hh
    return hn, { hn }
  end
  local rk = self.recurrent_kernel
  local rzr = mg.matmul(h, rk:slice { {}, { 1, 2 * u } })
  local rp = mg.split(rzr, 2, -1)
  local z = ra(xp[1] + rp[1])
  local rr = ra(xp[2] + rp[2])
  local hh = a(xp[3] + mg.matmul(rr * h, rk:slice { {}, { 2 * u + 1, 3 * u } }))
  local hn = z * h + (1 - z) * hh
  return hn, { hn }
end

function GRU:get_config()
  local cfg = RNNBase.get_config(self)
  cfg.recurrent_activation = activations.serialize(self.recurrent_activation)
  cfg.reset_after = self.reset_after
  return cfg
end

return M
