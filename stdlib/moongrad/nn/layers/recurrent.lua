-- moongrad.nn.layers.recurrent: mg.nn.RNN(cell) and SimpleRNN, LSTM and GRU
-- over (batch, time, features) inputs, with Keras's weights, gate order and
-- defaults (LSTM gates i, f, c, o with unit_forget_bias; GRU gates z, r, h
-- with reset_after=true and a (2, 3*units) bias). The cells and the step
-- arithmetic are in rnn_cells.lua; SimpleRNN/LSTM/GRU keep their weights on
-- the layer itself (saved models name them lstm/kernel, as before).
--
-- The input projection x @ kernel + bias is one matmul over all time steps;
-- the recurrence then runs per step. Eagerly (and with unroll=true) it is a
-- Lua loop; inside a staged function it is one mg.while_loop node whose
-- body reads step t with `take` and writes the output sequence with
-- `scatter_add`, so the graph does not grow with the sequence length;
-- staged training differentiates that node (a tape inside a staged function
-- records it: the forward keeps each step's state, the backward is a
-- reverse while loop, see doc/staging.md). RNN(cell) with a built-in cell
-- takes the same paths; a stack of cells or a user cell (any layer with
-- state_size and call(inputs, states, training)) steps through its own call,
-- in the Lua loop eagerly and in the while_loop when staged. ConvLSTM2D's
-- image states take the Lua loop also when staged.
--
-- Masks (Keras's backend rnn): at a step whose mask is false the states keep
-- their previous values and the output is the previous step's output (zeros
-- before the first), or zeros with zero_output_for_mask. Dropout masks are
-- drawn once per call, only in training, and fixed across the time steps.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local Layer = require("moongrad.nn.layer")
local util = require("moongrad.nn.util")
local activations = require("moongrad.nn.activations")
local options = require("moongrad.options")
local cells = require("moongrad.nn.layers.rnn_cells")

local M = {}
for k, v in pairs(cells) do
  if type(v) == "table" and k:match("^%u") and rawget(v, "class_name") then M[k] = v end
end

-- the options of RNN itself (SimpleRNN, LSTM and GRU add their cell's)
local RNN_OPTIONS = { return_sequences = "boolean", return_state = "boolean", go_backwards = "boolean",
  unroll = "boolean", zero_output_for_mask = "boolean", stateful = util.unsupported(false),
  time_major = util.unsupported(false), activity_regularizer = util.unsupported(nil),
  use_cudnn = { "string|boolean" } }
local OPTIONS = options.extend(cells.CELL_OPTIONS, RNN_OPTIONS)

--- mg.nn.RNN(cell, {return_sequences=false, return_state=false, go_backwards=false, unroll=false, zero_output_for_mask=false})
--- A recurrent layer running `cell` over the time axis of a (batch, time, features) input: a built-in
--- cell (SimpleRNNCell, LSTMCell, GRUCell), a list of cells (StackedRNNCells), or a layer of your own
--- with `state_size` (a number or a list) and `call(inputs, states, training)` returning output, new_states.
--- Example:
---   local rnn = mg.nn.RNN(mg.nn.LSTMCell(4), {return_sequences = true})
---   print(rnn(mg.ones{2, 5, 3}).shape)   -- {2, 5, 4}
local RNN = Layer:extend("RNN")
M.RNN = RNN
RNN.supports_masking = true

-- initial_state: a tensor (one state) or a list of state tensors (LSTM: {h, c})
RNN.call_options = options.extend(Layer.call_options, { initial_state = "tensor|table" })

function RNN:_setup_flags(cfg)
  self.return_sequences = cfg.return_sequences and true or false
  self.return_state = cfg.return_state and true or false
  self.go_backwards = cfg.go_backwards and true or false
  self.unroll = cfg.unroll and true or false
  self.zero_output_for_mask = cfg.zero_output_for_mask and true or false
end

function RNN:__init(...)
  local cfg = self:_parse({ "cell" }, options.extend(RNN_OPTIONS, { cell = "table" }), ...)
  local cell = cfg.cell
  if cell == nil then util.raise("RNN: cell is required (a cell layer or a list of cells)") end
  if not Layer.is_layer(cell) and type(cell) == "table" then cell = cells.StackedRNNCells(cell) end
  if not Layer.is_layer(cell) then util.raise("RNN: cell must be a layer (a cell) or a list of cells") end
  local ok, err = pcall(cells.state_sizes, cell)
  if not ok then util.raise("RNN: " .. tostring(err)) end
  if type(cell.call) ~= "function" then util.raise("RNN: the cell must have call(inputs, states, training)") end
  self.cell = cell
  self:_setup_flags(cfg)
end

-- The shape of a state for input x ({batch, units}; ConvLSTM2D's is an image).
function RNN:_state_shape(x) return { x.shape[1], self:_state_sizes()[1] } end

-- The object that steps: the cell (RNN) or the layer itself (SimpleRNN, LSTM, GRU).
function RNN:_cell() return self.cell end

-- Whether the cell is a built-in one (not a subclass with its own call)
-- whose step can use the fast paths.
function RNN:_fast()
  local c = self:_cell()
  return c == self or (c._project ~= nil and c._step ~= nil and c.call == cells._Cell.call)
end

function RNN:_state_sizes()
  local c = self:_cell()
  if c == self then
    local out = {}
    for i = 1, self:_nstates() do out[i] = self.units end
    return out
  end
  return cells.state_sizes(c)
end

function RNN:_output_size()
  local c = self:_cell()
  if c == self then return self.units end
  return c.output_size or cells.state_sizes(c)[1]
end

function RNN:_features(s)
  if #s ~= 3 then
    error(string.format("expected a 3-d input (batch, time, features), got shape %s", util.shape_str(s)), 0)
  end
  if s[3] == -1 then error("the feature dimension must be known, got " .. util.shape_str(s), 0) end
  return s[3]
end

function RNN:build(s)
  local f = self:_features(s)
  local c = self.cell
  if not c.built then c:_maybe_build({ s[1], f }) end
end

-- The zero (or the cell's own) initial states (x: the input, for layers whose
-- state shape depends on it).
function RNN:_initial_states(B, dtype, _)
  local c = self:_cell()
  if c ~= self and c.get_initial_state then
    local st = c:get_initial_state(B)
    if core.is_tensor(st) then st = { st } end
    return st
  end
  local out = {}
  for i, n in ipairs(self:_state_sizes()) do out[i] = mg.zeros({ B, n }, dtype) end
  return out
end

-- Draws the dropout masks of the built-in cells inside `c` (one per call);
-- `f` is c's input feature count.
local function set_cell_masks(c, B, f, dtype, training)
  if rawget(c, "cells") and c.class_name == "StackedRNNCells" then
    for _, sub in ipairs(c.cells) do
      set_cell_masks(sub, B, f, dtype, training)
      f = sub.output_size or cells.state_sizes(sub)[1]
    end
  elseif rawget(c, "_seed_var") then
    local dm, rm = cells.draw_masks(c, { B, f }, { B, c.units }, dtype, training)
    rawset(c, "_dp_mask", dm)
    rawset(c, "_rdp_mask", rm)
  end
end

local function clear_cell_masks(c)
  if rawget(c, "cells") and c.class_name == "StackedRNNCells" then
    for _, sub in ipairs(c.cells) do clear_cell_masks(sub) end
  elseif rawget(c, "_seed_var") then
    rawset(c, "_dp_mask", nil)
    rawset(c, "_rdp_mask", nil)
  end
end

-- A (batch,) bool step mask shaped to broadcast over a tensor of rank r.
local function mask_for(mt, B, r)
  local s = { B }
  for i = 2, r do s[i] = 1 end
  return mg.reshape(mt, s)
end

-- The call's mask as a (batch, time) bool tensor, checked.
local function check_mask(mask, B, T)
  if type(mask) == "table" and not core.is_tensor(mask) then mask = mask[1] end
  if mask == nil or mask == false or mask == true then return nil end
  if not core.is_tensor(mask) then error("mask must be a (batch, time) bool tensor, got " .. type(mask), 0) end
  local s = mask.shape
  if #s == 3 and s[3] == 1 then mask = mg.reshape(mask, { s[1], s[2] }); s = mask.shape end
  if #s ~= 2 or (type(s[1]) == "number" and type(B) == "number" and s[1] ~= B and s[1] ~= -1)
      or (type(s[2]) == "number" and type(T) == "number" and s[2] ~= T) then
    error(string.format("the mask must have shape (batch, time) = %s, got %s", util.shape_str({ B, T }),
      util.shape_str(s)), 0)
  end
  if mask.dtype ~= "bool" then mask = mg.not_equal(mask, 0) end
  return mask
end

-- One step of a cell that is not a built-in one: its call(inputs, states, training).
local function user_step(cell, xt, states, training, nst)
  local out, new = cell:call(xt, states, training)
  if core.is_tensor(new) then new = { new } end
  if not core.is_tensor(out) or type(new) ~= "table" or #new ~= nst then
    error(string.format("the cell's call must return output, new_states with %d state tensor(s), got %s, %s",
      nst, core.is_tensor(out) and "a tensor" or type(out), type(new) == "table" and (#new .. " state(s)") or type(new)), 0)
  end
  return out, new
end

-- Runs the recurrence; returns the last output, the sequence (or nil) and the final states.
function RNN:_run(x, initial, training, mask)
  x = util.float_input(x, self.compute_dtype)
  local s = x.shape
  local B, T, F = s[1], s[2], s[3]
  local cell = self:_cell()
  local fast = self:_fast()
  local states = initial or self:_initial_states(B, x.dtype, x)
  local nst = #states
  local U = self:_output_size()
  mask = check_mask(mask, B, T)
  if T == 0 then return states[1], mg.zeros({ B, 0, U }, x.dtype), states end
  local dm, rm
  if fast then
    local sshape = self:_state_shape(x)
    local ishape = util.copy(s)
    table.remove(ishape, 2)
    dm, rm = cells.draw_masks(cell, ishape, sshape, x.dtype, training)
  end
  local xin = dm and x * mg.unsqueeze(dm, 2) or x   -- the input mask is the same at every step
  local xs = fast and cell:_project(xin) or nil
  local symbolic = core.tracing() and (core.is_symbolic(xs or x) or core.is_symbolic(x))
  -- a user cell loops in a while_loop too when its states are (batch, n) matrices
  local flat_states = #s == 3
  for k = 1, nst do flat_states = flat_states and core.is_tensor(states[k]) and #states[k].shape == 2 end
  if core.is_unknown_size(T) then   -- a -1 time axis while tracing: no Lua number exists for it
    if self.unroll or not flat_states then
      error(string.format("%s: %s needs a known number of time steps, but the input's time axis is "
        .. "unknown while tracing (a -1 size of the input signature)", self.name,
        self.unroll and "unroll = true" or "a layer with image states (run as a Lua loop)"), 0)
    end
    T = mg.sum(mg.ones({ T }, "int64"))   -- the call's size, counted when the graph runs
  end
  local zero_out = self.zero_output_for_mask
  if not symbolic or self.unroll or not flat_states then
    if not fast then set_cell_masks(cell, B, F, x.dtype, training) end
    local ok, a, b, c = pcall(function()
      local outs, h, prev = {}, nil, nil
      for i = 1, T do
        local t = self.go_backwards and T - i + 1 or i
        local out, new
        if fast then
          out, new = cell:_step(mg.select(xs, 2, t), states, rm)
        else
          out, new = user_step(cell, mg.select(x, 2, t), states, training, nst)
        end
        if mask then
          local mt = mg.select(mask, 2, t)
          prev = prev or mg.zeros_like(out)
          out = mg.where(mask_for(mt, B, #out.shape), out, zero_out and mg.zeros_like(out) or prev)
          local kept = {}
          for k = 1, nst do kept[k] = mg.where(mask_for(mt, B, #new[k].shape), new[k], states[k]) end
          new = kept
          prev = out
        end
        states, h = new, out
        if self.return_sequences then outs[i] = out end
      end
      return h, self.return_sequences and mg.stack(outs, 2) or nil, states
    end)
    if not fast then clear_cell_masks(cell) end
    if not ok then error(a, 0) end
    return a, b, c
  end
  local K = fast and xs.shape[3]
  local seq = self.return_sequences
  -- Training projects each step's input inside the loop: the gradient of a
  -- tensor the body slices is a full-size tensor per iteration, so slicing
  -- the projected sequence would cost O(T^2) in the backward loop; the
  -- kernel's and bias's gradients are O(1) per step (the input's, when it
  -- has one, still O(T) each: see doc/staging.md).
  local per_step = training and true or false
  local init = { mg.tensor(1, "int64") }   -- an explicit int64 (a Lua 1 is a float under LuaJIT)
  for i = 1, nst do init[#init + 1] = states[i] end
  local iprev, iseq = nil, nil
  -- the last output rides along when it is not the first state (masks, a user cell's own output)
  if mask or not fast then init[#init + 1] = mg.zeros({ B, U }, x.dtype); iprev = #init end
  if seq then init[#init + 1] = mg.zeros({ B, s[2], U }, x.dtype); iseq = #init end
  if not fast then set_cell_masks(cell, B, F, x.dtype, training) end
  -- the body is traced once, inside this call: the cells' dropout masks are cleared after it
  local okw, res = pcall(mg.while_loop, function(i) return mg.less_equal(i, T) end, function(i, ...)
    local vars = { ... }
    local t = self.go_backwards and (T + 1 - i) or i
    local ti = mg.reshape(t, { 1 })
    local xt
    if not fast then
      xt = nil
    elseif per_step then
      local raw = mg.reshape(mg.take(x, ti, 2), { B, F })
      if dm then raw = raw * dm end
      xt = cell:_project(raw)
    else
      xt = mg.reshape(mg.take(xs, ti, 2), { B, K })
    end
    local st = {}
    for k = 1, nst do st[k] = vars[k] end
    local h, new
    if fast then
      h, new = cell:_step(xt, st, rm)
    else
      h, new = user_step(cell, mg.reshape(mg.take(x, ti, 2), { B, F }), st, training, nst)
    end
    local out = { i + 1 }
    if mask then
      local mt = mg.reshape(mg.take(mask, ti, 2), { B, 1 })
      local prev = vars[iprev - 1]
      h = mg.where(mt, h, zero_out and mg.zeros_like(h) or prev)
      for k = 1, nst do out[#out + 1] = mg.where(mt, new[k], st[k]) end
      out[#out + 1] = h
    else
      for k = 1, nst do out[#out + 1] = new[k] end
      if iprev then out[#out + 1] = h end
    end
    if seq then
      local idx = mg.expand(mg.reshape(i, { 1, 1, 1 }), { B, 1, U })
      out[#out + 1] = mg.scatter_add(vars[iseq - 1], idx, mg.unsqueeze(h, 2), 2)
    end
    return out
  end, init)
  if not fast then clear_cell_masks(cell) end
  if not okw then error(res, 0) end
  local final = {}
  for k = 1, nst do final[k] = res[k + 1] end
  local last = iprev and res[iprev] or final[1]
  return last, seq and res[iseq] or nil, final
end

function RNN:call(x, training, opts)
  if not core.is_tensor(x) then error("expected one (batch, time, features) tensor, got " .. type(x), 0) end
  self:_features(x.shape)
  local initial = opts and opts.initial_state
  if initial and core.is_tensor(initial) then initial = { initial } end
  if initial then
    local sizes = self:_state_sizes()
    local n = #sizes
    if #initial ~= n then
      error(string.format("initial_state must be %d state tensor(s)%s, got %d", n,
        n == 2 and " ({h, c})" or "", #initial), 0)
    end
    local want = self:_state_shape(x)
    for i = 1, n do
      local st = initial[i]
      local ok = core.is_tensor(st) and #st.shape == #want
      for d = 2, #want do ok = ok and st.shape[d] == (d == #want and #want == 2 and sizes[i] or want[d]) end
      if not ok then
        local ws = util.copy(want)
        ws[1] = "batch"
        if #want == 2 then ws[2] = sizes[i] end
        for d = 1, #ws do ws[d] = tostring(ws[d]) end
        error(string.format("initial_state %d must be a (%s) tensor, got %s", i, table.concat(ws, ", "),
          core.is_tensor(st) and util.shape_str(st.shape) or type(st)), 0)
      end
    end
  end
  local last, seq, states = self:_run(x, initial, training, opts and opts.mask)
  local out = self.return_sequences and seq or last
  if self.return_state then
    local r = { out }
    for i, st in ipairs(states) do r[i + 1] = st end
    return r
  end
  return out
end

-- The input's mask when the output keeps the time axis, else none; none for the states.
function RNN:compute_mask(_, mask)
  if type(mask) == "table" and not core.is_tensor(mask) then mask = mask[1] end
  if mask == false then mask = nil end
  local om = self.return_sequences and mask or nil
  if self.return_state then
    return { om or false }
  end
  return om
end

function RNN:compute_output_shape(s)
  local f = self:_features(s)
  local c = self:_cell()
  local k = rawget(c, "kernel") or (c == self and self.kernel)
  if k and k.shape and f ~= k.shape[1] then
    error(string.format("expected %d features per step, got shape %s", k.shape[1], util.shape_str(s)), 0)
  end
  local u = self:_output_size()
  local out = self.return_sequences and { s[1], s[2], u } or { s[1], u }
  if self.return_state then
    local r = { out }
    for i, n in ipairs(self:_state_sizes()) do r[i + 1] = { s[1], n } end
    return r
  end
  return out
end

function RNN:_flags_config(cfg)
  cfg.return_sequences = self.return_sequences
  cfg.return_state = self.return_state
  cfg.go_backwards = self.go_backwards
  cfg.unroll = self.unroll
  cfg.zero_output_for_mask = self.zero_output_for_mask
  return cfg
end

function RNN:get_config()
  local cfg = self:_flags_config(Layer.get_config(self))
  cfg.cell = { class_name = self.cell.class_name, config = self.cell:get_config() }
  return cfg
end

function RNN.from_config(cls, cfg, deserialize)
  cfg = util.deep_copy(cfg)
  local c = cfg.cell
  if type(c) == "table" and c.class_name then
    cfg.cell = (deserialize or require("moongrad.nn.saving").deserialize)(c)
  end
  return cls(cfg)
end

-- ---- SimpleRNN, LSTM, GRU: the layer is its own cell ------------------------------------------

local RNNBase = RNN:extend("RNNBase")
M.RNNBase = RNNBase

function RNNBase:_setup_rnn(gates, more, ...)
  local cfg = self:_parse({ "units" }, more and options.extend(OPTIONS, more) or OPTIONS, ...)
  cells.setup(self, cfg)
  self.gates = gates
  self:_setup_flags(cfg)
  return cfg
end

function RNNBase:_cell() return self end
function RNNBase:_fast() return true end

function RNNBase:build(s) cells.build_weights(self, self:_features(s), self.gates) end

function RNNBase:_bias_shape() return { self.gates * self.units } end
function RNNBase:_bias_init() return self.bias_initializer end
function RNNBase:_input_bias() return self.bias end
function RNNBase:_nstates() return 1 end
RNNBase._project = cells._Cell._project

function RNNBase:get_config()
  local cfg = cells.config(self, Layer.get_config(self))
  return self:_flags_config(cfg)
end

RNNBase.from_config = Layer.from_config

-- ---- SimpleRNN ----------------------------------------------------------------------------

--- mg.nn.SimpleRNN{units, activation="tanh", dropout=0, recurrent_dropout=0, return_sequences=false, return_state=false, ...}
--- A fully connected recurrent layer over (batch, time, features) input.
local SimpleRNN = RNNBase:extend("SimpleRNN")
M.SimpleRNN = SimpleRNN

function SimpleRNN:__init(...) self:_setup_rnn(1, nil, ...) end

function SimpleRNN:_step(xt, st, rdm) return cells.simple_step(self, xt, st, rdm) end

-- ---- LSTM -----------------------------------------------------------------------------------

--- mg.nn.LSTM{units, activation="tanh", recurrent_activation="sigmoid", dropout=0, recurrent_dropout=0, return_sequences=false, return_state=false, ...}
--- A long short-term memory layer over (batch, time, features) input.
local LSTM = RNNBase:extend("LSTM")
M.LSTM = LSTM

function LSTM:__init(...)
  local cfg = self:_setup_rnn(4, options.extend(cells.GATED, { unit_forget_bias = "boolean" }), ...)
  self.unit_forget_bias = cfg.unit_forget_bias ~= false
end

function LSTM:_nstates() return 2 end
LSTM._bias_init = cells.lstm_bias_init

function LSTM:_step(xt, st, rdm) return cells.lstm_step(self, xt, st, rdm) end

function LSTM:get_config()
  local cfg = RNNBase.get_config(self)
  cfg.recurrent_activation = activations.serialize(self.recurrent_activation)
  cfg.unit_forget_bias = self.unit_forget_bias
  return cfg
end

-- ---- GRU -------------------------------------------------------------------------------------

--- mg.nn.GRU{units, activation="tanh", recurrent_activation="sigmoid", reset_after=true, dropout=0, recurrent_dropout=0, ...}
--- A gated recurrent unit layer over (batch, time, features) input.
local GRU = RNNBase:extend("GRU")
M.GRU = GRU

function GRU:__init(...)
  local cfg = self:_setup_rnn(3, options.extend(cells.GATED, { reset_after = "boolean" }), ...)
  self.reset_after = cfg.reset_after ~= false
end

GRU._bias_shape = cells.gru_bias_shape
GRU._input_bias = cells.gru_input_bias

function GRU:_step(xt, st, rdm) return cells.gru_step(self, xt, st, rdm) end

function GRU:get_config()
  local cfg = RNNBase.get_config(self)
  cfg.recurrent_activation = activations.serialize(self.recurrent_activation)
  cfg.reset_after = self.reset_after
  return cfg
end

return M
