-- moongrad.nn.layers.rnn_cells: Keras's recurrent cells (SimpleRNNCell,
-- LSTMCell, GRUCell, StackedRNNCells), one time step each, for mg.nn.RNN.
--
-- The step arithmetic lives here once, as functions of an object holding
-- Keras's fields (kernel, recurrent_kernel, bias, units, activation, ...):
-- the cells and the SimpleRNN/LSTM/GRU layers (recurrent.lua, which keep
-- their own weights for saved-model compatibility) both call them. A
-- built-in cell splits a step in two, `_project` (x @ kernel + input bias,
-- which the RNN does for all time steps in one matmul) and `_step` (the
-- recurrence on the projected input), so RNN(LSTMCell(4)) runs the same
-- fast paths as LSTM(4). Dropout masks (Keras's DropoutRNNCell) are drawn
-- once per RNN call by recurrent.lua and kept on the cell for that call
-- (`_dp_mask`, `_rdp_mask`), so `call` applies the same ones at every step.
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
local RATE = { "number", min = 0, below = 1 }
-- the options every built-in cell (and SimpleRNN/LSTM/GRU) takes
M.CELL_OPTIONS = { units = R.positive_int, activation = R.activation, use_bias = "boolean",
  kernel_initializer = R.initializer, recurrent_initializer = R.initializer, bias_initializer = R.initializer,
  kernel_regularizer = R.regularizer, recurrent_regularizer = R.regularizer, bias_regularizer = R.regularizer,
  dropout = RATE, recurrent_dropout = RATE, seed = "integer",
  implementation = { "integer", one_of = { 1, 2 } } }
M.GATED = { recurrent_activation = R.activation }

-- ---- the step arithmetic (shared with recurrent.lua) ----------------------------------

-- Each takes the projected input xt (batch, gates*units), the states and the
-- recurrent dropout mask (nil: none); returns the output and the new states.
function M.simple_step(c, xt, st, rdm)
  local h0 = rdm and st[1] * rdm or st[1]
  local h = c.activation(xt + mg.matmul(h0, c.recurrent_kernel))
  return h, { h }
end

function M.lstm_step(c, xt, st, rdm)
  local h0 = rdm and st[1] * rdm or st[1]
  local z = xt + mg.matmul(h0, c.recurrent_kernel)
  local parts = mg.split(z, 4, -1)
  local ra, a = c.recurrent_activation, c.activation
  local i, f, o = ra(parts[1]), ra(parts[2]), ra(parts[4])
  local cs = f * st[2] + i * a(parts[3])
  local h = o * a(cs)
  return h, { h, cs }
end

-- GRU: recurrent dropout masks h in the recurrent products only (the update
-- mixes the unmasked h), as Keras's implementation 1 does.
function M.gru_step(c, xt, st, rdm)
  local h = st[1]
  local hr = rdm and h * rdm or h
  local u = c.units
  local xp = mg.split(xt, 3, -1)
  local ra, a = c.recurrent_activation, c.activation
  if c.reset_after then
    local r = mg.matmul(hr, c.recurrent_kernel)
    if c.use_bias then r = r + c.bias[2] end
    local rp = mg.split(r, 3, -1)
    local z = ra(xp[1] + rp[1])
    local rr = ra(xp[2] + rp[2])
    local hh = a(xp[3] + rr * rp[3])
    local hn = z * h + (1 - z) * hh
    return hn, { hn }
  end
  local rk = c.recurrent_kernel
  local rzr = mg.matmul(hr, rk:slice { {}, { 1, 2 * u } })
  local rp = mg.split(rzr, 2, -1)
  local z = ra(xp[1] + rp[1])
  local rr = ra(xp[2] + rp[2])
  local hh = a(xp[3] + mg.matmul(rr * hr, rk:slice { {}, { 2 * u + 1, 3 * u } }))
  local hn = z * h + (1 - z) * hh
  return hn, { hn }
end

-- ---- the shared set-up of cells and layers -----------------------------------------------

-- Reads the common options into obj's fields.
function M.setup(obj, cfg)
  local name = obj.class_name
  if cfg.units == nil then util.raise(name .. ": units is required (a positive integer)") end
  obj.units = cfg.units
  obj.activation = activations.get(cfg.activation or "tanh")
  obj.recurrent_activation = activations.get(cfg.recurrent_activation or "sigmoid")
  obj.use_bias = cfg.use_bias ~= false
  obj.kernel_initializer = initializers.get(cfg.kernel_initializer or "glorot_uniform")
  obj.recurrent_initializer = initializers.get(cfg.recurrent_initializer or "orthogonal")
  obj.bias_initializer = initializers.get(cfg.bias_initializer or "zeros")
  obj.kernel_regularizer = regularizers.get(cfg.kernel_regularizer)
  obj.recurrent_regularizer = regularizers.get(cfg.recurrent_regularizer)
  obj.bias_regularizer = regularizers.get(cfg.bias_regularizer)
  obj.dropout = cfg.dropout or 0
  obj.recurrent_dropout = cfg.recurrent_dropout or 0
  obj.seed = cfg.seed
  obj.implementation = cfg.implementation or 2
end

-- The weights, Keras's shapes; `gates` 1 (SimpleRNN), 4 (LSTM) or 3 (GRU).
function M.build_weights(obj, f, gates)
  local u = obj.units
  obj.kernel = obj:add_weight { name = "kernel", shape = { f, gates * u }, initializer = obj.kernel_initializer,
    regularizer = obj.kernel_regularizer }
  obj.recurrent_kernel = obj:add_weight { name = "recurrent_kernel", shape = { u, gates * u },
    initializer = obj.recurrent_initializer, regularizer = obj.recurrent_regularizer }
  if obj.use_bias then
    obj.bias = obj:add_weight { name = "bias", shape = obj:_bias_shape(), initializer = obj:_bias_init(),
      regularizer = obj.bias_regularizer }
  end
  M.build_seed(obj)
end

local seed_counter = 0

-- A dropout seed Variable (layer state, as Dropout's in core.lua), only
-- when the object drops something: a model without dropout saves as before.
function M.build_seed(obj)
  if (obj.dropout or 0) == 0 and (obj.recurrent_dropout or 0) == 0 then return end
  seed_counter = seed_counter + 1
  local s = obj.seed
  if not s then
    s = core.tracing() and (7919 * seed_counter) or mg.random.integers({ 1 }, 1, 2147483646):item()
  end
  rawset(obj, "_seed_var", obj:_add_state("seed",
    mg.Variable(mg.tensor(s, "int64"), { name = obj.name .. "/seed", trainable = false })))
end

-- Draws obj's dropout masks for one call (Keras: ones dropped at the rate and
-- scaled by 1 / (1 - rate)): for a step input of shape `ishape` ({batch,
-- features}) and a state of shape `sshape` ({batch, units}). Returns nil, nil
-- outside training.
function M.draw_masks(obj, ishape, sshape, dtype, training)
  local sv = rawget(obj, "_seed_var")
  if not training or not sv then return nil, nil end
  local s = core.tracing() and sv:read() or mg.tensor(sv)
  sv:assign(s + 2)
  local dm, rm
  if obj.dropout > 0 then dm = mg.dropout(mg.ones(ishape, dtype), s, obj.dropout) end
  if obj.recurrent_dropout > 0 then rm = mg.dropout(mg.ones(sshape, dtype), s + 1, obj.recurrent_dropout) end
  return dm, rm
end

function M.config(obj, cfg)
  cfg.units = obj.units
  cfg.activation = activations.serialize(obj.activation)
  cfg.use_bias = obj.use_bias
  cfg.kernel_initializer = initializers.serialize(obj.kernel_initializer)
  cfg.recurrent_initializer = initializers.serialize(obj.recurrent_initializer)
  cfg.bias_initializer = initializers.serialize(obj.bias_initializer)
  cfg.kernel_regularizer = regularizers.serialize(obj.kernel_regularizer)
  cfg.recurrent_regularizer = regularizers.serialize(obj.recurrent_regularizer)
  cfg.bias_regularizer = regularizers.serialize(obj.bias_regularizer)
  cfg.dropout = obj.dropout
  cfg.recurrent_dropout = obj.recurrent_dropout
  cfg.seed = obj.seed
  return cfg
end

-- The (batch, features) step input's feature count, checked.
local function step_features(obj, s)
  if type(s) ~= "table" or #s ~= 2 or type(s[2]) ~= "number" or s[2] < 0 then
    error(string.format("%s: expected a (batch, features) step input, got shape %s", obj.class_name,
      type(s) == "table" and util.shape_str(s) or tostring(s)), 0)
  end
  return s[2]
end

-- ---- the cell classes -------------------------------------------------------------------------

local Cell = Layer:extend("RNNCellBase")
M._Cell = Cell

function Cell:build(s) M.build_weights(self, step_features(self, s), self.gates) end
function Cell:_bias_shape() return { self.gates * self.units } end
function Cell:_bias_init() return self.bias_initializer end
function Cell:_input_bias() return self.bias end
function Cell:_nstates() return 1 end

-- x @ kernel + input bias, for a (batch, f) step or a (batch, time, f) sequence.
function Cell:_project(x)
  local xs = mg.matmul(x, self.kernel)
  local ib = self.use_bias and self:_input_bias()
  if ib then xs = xs + ib end
  return xs
end

--- cell:call(inputs, states, training) -> output, new_states: one time step (Keras's cell API).
--- Inside an RNN call, the dropout masks of that call apply (training only).
function Cell:call(x, states, training)
  if core.is_tensor(states) then states = { states } end
  local dm, rm = rawget(self, "_dp_mask"), rawget(self, "_rdp_mask")
  if training and dm then x = x * dm end
  return self:_step(self:_project(x), states, training and rm or nil)
end

--- cell:get_initial_state(batch_size) -> the list of zero states.
function Cell:get_initial_state(batch_size)
  local out = {}
  for i = 1, self:_nstates() do out[i] = mg.zeros({ batch_size, self.units }, self.compute_dtype or "float32") end
  return out
end

function Cell:get_config() return M.config(self, Layer.get_config(self)) end

Cell.getters.state_size = function(self)
  if self:_nstates() == 1 then return self.units end
  return { self.units, self.units }
end
Cell.getters.output_size = function(self) return self.units end

--- mg.nn.SimpleRNNCell{units, activation="tanh", use_bias=true, dropout=0, recurrent_dropout=0, seed=, ...}
--- The cell of SimpleRNN: one step output = activation(x @ kernel + bias + h @ recurrent_kernel), for mg.nn.RNN.
local SimpleRNNCell = Cell:extend("SimpleRNNCell")
M.SimpleRNNCell = SimpleRNNCell
SimpleRNNCell.gates = 1

function SimpleRNNCell:__init(...)
  local cfg = self:_parse({ "units" }, M.CELL_OPTIONS, ...)
  M.setup(self, cfg)
end

function SimpleRNNCell:_step(xt, st, rdm) return M.simple_step(self, xt, st, rdm) end

--- mg.nn.LSTMCell{units, activation="tanh", recurrent_activation="sigmoid", unit_forget_bias=true, dropout=0, recurrent_dropout=0, ...}
--- The cell of LSTM (gates i, f, c, o; states {h, c}), for mg.nn.RNN.
local LSTMCell = Cell:extend("LSTMCell")
M.LSTMCell = LSTMCell
LSTMCell.gates = 4

function LSTMCell:__init(...)
  local cfg = self:_parse({ "units" }, options.extend(M.CELL_OPTIONS, options.extend(M.GATED,
    { unit_forget_bias = "boolean" })), ...)
  M.setup(self, cfg)
  self.unit_forget_bias = cfg.unit_forget_bias ~= false
end

function LSTMCell:_nstates() return 2 end

-- unit_forget_bias: the forget gate's bias starts at 1 (Keras).
function M.lstm_bias_init(obj)
  if not obj.unit_forget_bias then return obj.bias_initializer end
  local base, u = obj.bias_initializer, obj.units
  return function(_, dtype)
    return mg.concat({ base({ u }, dtype), mg.ones({ u }, dtype), base({ 2 * u }, dtype) }, 1)
  end
end
LSTMCell._bias_init = M.lstm_bias_init

function LSTMCell:_step(xt, st, rdm) return M.lstm_step(self, xt, st, rdm) end

function LSTMCell:get_config()
  local cfg = Cell.get_config(self)
  cfg.recurrent_activation = activations.serialize(self.recurrent_activation)
  cfg.unit_forget_bias = self.unit_forget_bias
  return cfg
end

--- mg.nn.GRUCell{units, activation="tanh", recurrent_activation="sigmoid", reset_after=true, dropout=0, ...}
--- The cell of GRU (gates z, r, h; with reset_after a (2, 3*units) bias), for mg.nn.RNN.
local GRUCell = Cell:extend("GRUCell")
M.GRUCell = GRUCell
GRUCell.gates = 3

function GRUCell:__init(...)
  local cfg = self:_parse({ "units" }, options.extend(M.CELL_OPTIONS, options.extend(M.GATED,
    { reset_after = "boolean" })), ...)
  M.setup(self, cfg)
  self.reset_after = cfg.reset_after ~= false
end

function M.gru_bias_shape(obj)
  if obj.reset_after then return { 2, 3 * obj.units } end
  return { 3 * obj.units }
end
function M.gru_input_bias(obj)
  if obj.reset_after then return obj.bias[1] end
  return obj.bias
end
GRUCell._bias_shape = M.gru_bias_shape
GRUCell._input_bias = M.gru_input_bias

function GRUCell:_step(xt, st, rdm) return M.gru_step(self, xt, st, rdm) end

function GRUCell:get_config()
  local cfg = Cell.get_config(self)
  cfg.recurrent_activation = activations.serialize(self.recurrent_activation)
  cfg.reset_after = self.reset_after
  return cfg
end

-- ---- StackedRNNCells --------------------------------------------------------------------------

--- mg.nn.StackedRNNCells{cells}: a list of cells run as one (each cell's output is the next one's
--- input); its states are the cells' states in order, flattened into one list.
local Stacked = Layer:extend("StackedRNNCells")
M.StackedRNNCells = Stacked

function Stacked:__init(...)
  local cfg = self:_parse({ "cells" }, { cells = "table" }, ...)
  local cells = cfg.cells
  if type(cells) ~= "table" or #cells == 0 then util.raise("StackedRNNCells: cells must be a non-empty list of cells") end
  for i, c in ipairs(cells) do
    if not Layer.is_layer(c) then
      util.raise(string.format("StackedRNNCells: cell %d is not a layer (got %s)", i, type(c)))
    end
  end
  self.cells = cells
end

-- The number of state tensors of a cell (its state_size a number or a list).
function M.state_sizes(cell)
  local s = cell.state_size
  if type(s) == "number" then return { s } end
  if type(s) == "table" then
    local out = {}
    for i, v in ipairs(s) do
      if type(v) ~= "number" then error("state_size entries must be integers, got " .. tostring(v), 0) end
      out[i] = v
    end
    return out
  end
  error(string.format("cell %s has no state_size (a number, or a list of them, one per state tensor)",
    tostring(cell.name or cell)), 0)
end

Stacked.getters.state_size = function(self)
  local out = {}
  for _, c in ipairs(self.cells) do
    for _, s in ipairs(M.state_sizes(c)) do out[#out + 1] = s end
  end
  return out
end
Stacked.getters.output_size = function(self)
  local last = self.cells[#self.cells]
  return last.output_size or M.state_sizes(last)[1]
end

-- Each cell's output size (what the next one's input has).
local function out_size(c) return c.output_size or M.state_sizes(c)[1] end

function Stacked:build(s)
  local f = step_features(self, s)
  for _, c in ipairs(self.cells) do
    if not c.built then c:_maybe_build({ s[1], f }) end
    f = out_size(c)
  end
end

function Stacked:call(x, states, training)
  if core.is_tensor(states) then states = { states } end
  local new, k = {}, 0
  for _, c in ipairs(self.cells) do
    local n = #M.state_sizes(c)
    local st = {}
    for j = 1, n do st[j] = states[k + j] end
    local out, ns = c:call(x, st, training)
    if core.is_tensor(ns) then ns = { ns } end
    for j = 1, n do new[k + j] = ns[j] end
    k = k + n
    x = out
  end
  return x, new
end

--- stacked:get_initial_state(batch_size) -> the cells' initial states, in order, in one list.
function Stacked:get_initial_state(batch_size)
  local out = {}
  for _, c in ipairs(self.cells) do
    local st
    if c.get_initial_state then st = c:get_initial_state(batch_size) end
    if core.is_tensor(st) then st = { st } end
    if not st then
      st = {}
      for i, s in ipairs(M.state_sizes(c)) do st[i] = mg.zeros({ batch_size, s }) end
    end
    for _, t in ipairs(st) do out[#out + 1] = t end
  end
  return out
end

function Stacked:get_config()
  local cfg = Layer.get_config(self)
  local cells = {}
  for i, c in ipairs(self.cells) do cells[i] = { class_name = c.class_name, config = c:get_config() } end
  cfg.cells = cells
  return cfg
end

function Stacked.from_config(cls, cfg, deserialize)
  cfg = util.deep_copy(cfg)
  local cells = {}
  for i, c in ipairs(cfg.cells or {}) do cells[i] = deserialize(c) end
  cfg.cells = cells
  return cls(cfg)
end

return M
