-- moongrad.callbacks (mg.callbacks): hooks into model:fit/evaluate/predict,
-- after Keras: History, ProgbarLogger, EarlyStopping, ModelCheckpoint,
-- CSVLogger, LearningRateScheduler, ReduceLROnPlateau, TerminateOnNaN and
-- LambdaCallback (any hook as a Lua function).
--
-- Epochs and batches are numbered from 1 in every hook (Keras counts from
-- 0). `logs` are tables of numbers keyed by metric name (loss, accuracy,
-- val_loss, ...). A callback stops training with `self.model.stop_training
-- = true`. Portable Lua (5.4 and LuaJIT).
local class = require("moongrad.nn.class")
local progress = require("moongrad.nn.progress")
local options = require("moongrad.options")

local M = {}

--- mg.callbacks.Callback: the base class of callbacks; fit, evaluate and predict call
--- its hooks (on_epoch_end(epoch, logs), ...: help(mg.callbacks.Callback.on_epoch_end)).
--- Example:
---   local Printer = mg.callbacks.Callback:extend("Printer")
---   function Printer:on_epoch_end(epoch, logs) print(epoch, logs.loss) end
---   -- model:fit(x, y, {callbacks = {Printer()}})
local Callback = class.Object:extend("Callback")
class.set_noun(Callback, "callback")
M.Callback = Callback

-- A subclass's own constructor options: Callback:extend("Mine") takes any
-- table (its config); the built-in ones check theirs.
function Callback:__init(cfg) self.config = cfg or {} end
--- callback:set_model(model): the model this callback watches (fit sets it; self.model).
function Callback:set_model(model) self.model = model end
--- callback:set_params(params): fit's parameters {epochs=, steps=, verbose=} (self.params).
function Callback:set_params(params) self.params = params end

local HOOKS = { "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
  "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
  "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end" }
M.HOOKS = HOOKS
--- A hook that fit, evaluate and predict call on each callback: on_train_begin(logs),
--- on_epoch_begin(epoch, logs), on_train_batch_end(batch, logs), ... (the Keras
--- hooks); the base class's do nothing. Override the ones you need.
--- Example:
---   local Printer = mg.callbacks.Callback:extend("Printer")
---   function Printer:on_epoch_end(epoch, logs) print(epoch, logs.loss) end
for _, h in ipairs(HOOKS) do Callback[h] = function() end end

-- ---- CallbackList -------------------------------------------------------------------------

--- mg.callbacks.CallbackList(callbacks, model, params): the callbacks of one fit/evaluate/predict
--- call; each hook calls the same hook of every callback in order.
local CallbackList = class.Object:extend("CallbackList")
M.CallbackList = CallbackList

function CallbackList:__init(list, model, params)
  self.callbacks = {}
  for i, cb in ipairs(list or {}) do
    if not class.isinstance(cb, Callback) then
      error(string.format("callbacks[%d] is not a Callback (got %s)", i, type(cb)), 3)
    end
    self.callbacks[i] = cb
    cb:set_model(model)
    cb:set_params(params or {})
  end
end

for _, h in ipairs(HOOKS) do
--- CallbackList's hooks call the same hook of each of its callbacks, in order.
  CallbackList[h] = function(self, a, b)
    for _, cb in ipairs(self.callbacks) do cb[h](cb, a, b) end
  end
end

-- ---- History ----------------------------------------------------------------------------

--- mg.callbacks.History{}: what fit returns: history.history[metric] is the list of each epoch's value
--- (history.epoch the epochs); prints as <History n epochs: loss=...>.
local History = Callback:extend("History")
M.History = History
function History:__init(cfg) self.config = options.check("History", cfg, {}) end

function History:on_train_begin()
  self.history = self.history or {}
  self.epoch = self.epoch or {}
end

function History:on_epoch_end(epoch, logs)
  self.epoch[#self.epoch + 1] = epoch
  for k, v in pairs(logs or {}) do
    local list = self.history[k]
    if not list then list = {}; self.history[k] = list end
    list[#list + 1] = v
  end
  self.model.history = self
end

-- A History prints its epochs and each metric's last value: <History 5 epochs: loss=0.1234, accuracy=0.9>.
function History:__tostring()
  local keys, parts = {}, {}
  for k in pairs(self.history or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local list = self.history[k]
    local v = list[#list]
    parts[#parts + 1] = k .. "=" .. (type(v) == "number" and string.format("%.4g", v) or tostring(v))
  end
  local n = #(self.epoch or {})
  return string.format("<History %d epoch%s%s%s>", n, n == 1 and "" or "s", #parts > 0 and ": " or "",
    table.concat(parts, ", "))
end

-- ---- ProgbarLogger ------------------------------------------------------------------------

--- mg.callbacks.ProgbarLogger{}: the progress bar fit prints with verbose=1 (one line per epoch with verbose=2).
local ProgbarLogger = Callback:extend("ProgbarLogger")
M.ProgbarLogger = ProgbarLogger
function ProgbarLogger:__init(cfg) self.config = options.check("ProgbarLogger", cfg, {}) end

-- The numbers of `logs` to show, as {name, value} pairs: the model's
-- metrics in order, then (with_val) their val_ counterparts, then any
-- other numbers by name (the logs of a custom train_step).
local function ordered(model, logs, with_val)
  local out, seen = {}, {}
  for _, name in ipairs(model.metrics_names or {}) do
    if type(logs[name]) == "number" then out[#out + 1] = { name, logs[name] }; seen[name] = true end
  end
  if with_val then
    for _, name in ipairs(model.metrics_names or {}) do
      local k = "val_" .. name
      if type(logs[k]) == "number" then out[#out + 1] = { k, logs[k] }; seen[k] = true end
    end
  end
  local rest = {}
  for k, v in pairs(logs) do
    if not seen[k] and type(k) == "string" and type(v) == "number" and (with_val or k:sub(1, 4) ~= "val_") then
      rest[#rest + 1] = k
    end
  end
  table.sort(rest)
  for _, k in ipairs(rest) do out[#out + 1] = { k, logs[k] } end
  return out
end
M._ordered_logs = ordered

function ProgbarLogger:on_epoch_begin(epoch)
  local p = self.params
  if p.verbose == 0 then return end
  if p.epochs and p.epochs > 0 then io.stdout:write(string.format("Epoch %d/%d\n", epoch, p.epochs)) end
  self.bar = progress.Progbar(p.steps, { verbose = p.verbose })
  self.seen = 0
end

function ProgbarLogger:on_train_batch_end(batch, logs)
  if not self.bar then return end
  self.seen = batch
  if batch < (self.params.steps or math.huge) and self.bar:wants(batch) then
    self.bar:update(batch, ordered(self.model, logs, false))
  end
end

function ProgbarLogger:on_epoch_end(_, logs)
  if not self.bar then return end
  self.bar:update(self.seen, ordered(self.model, logs or {}, true), true)
  self.bar = nil
end

-- ---- monitoring helpers ----------------------------------------------------------------------

local MODE = { "string", one_of = { "auto", "min", "max" } }
local VERBOSE = { "integer", one_of = { 0, 1, 2 } }

local function monitor_mode(monitor, mode)
  if mode == "min" or mode == "max" then return mode end
  if monitor:find("acc") or monitor:find("auc") or monitor:find("precision") or monitor:find("recall") then
    return "max"
  end
  return "min"
end

local function improved(mode, current, best, min_delta)
  if best == nil then return true end
  if mode == "min" then return current < best - min_delta end
  return current > best + min_delta
end

local warn = require("moongrad.warnings").warning

local function available(logs)
  local keys = {}
  for k in pairs(logs or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  return table.concat(keys, ", ")
end

-- ---- EarlyStopping --------------------------------------------------------------------------

--- mg.callbacks.EarlyStopping{monitor="val_loss", min_delta=0, patience=0, mode="auto", restore_best_weights=false, ...}
--- Stops fit when the monitored value has not improved for patience epochs.
local EarlyStopping = Callback:extend("EarlyStopping")
M.EarlyStopping = EarlyStopping

function EarlyStopping:__init(cfg)
  cfg = options.check("EarlyStopping", cfg, { monitor = "string", min_delta = "number",
    patience = { "integer", min = 0 }, verbose = VERBOSE, mode = MODE, baseline = "number",
    restore_best_weights = "boolean", start_from_epoch = { "integer", min = 0 } })
  self.monitor = cfg.monitor or "val_loss"
  self.min_delta = math.abs(cfg.min_delta or 0)
  self.patience = cfg.patience or 0
  self.verbose = cfg.verbose or 0
  self.mode = monitor_mode(self.monitor, cfg.mode)
  self.baseline = cfg.baseline
  self.restore_best_weights = cfg.restore_best_weights and true or false
  self.start_from_epoch = cfg.start_from_epoch or 0
end

function EarlyStopping:on_train_begin()
  self.wait, self.stopped_epoch, self.best_weights, self.best_epoch = 0, 0, nil, 0
  self.best = self.baseline
end

function EarlyStopping:on_epoch_end(epoch, logs)
  local current = logs and logs[self.monitor]
  if current == nil then
    warn(string.format("EarlyStopping: metric '%s' is not in the logs (available: %s)", self.monitor, available(logs)))
    return
  end
  if epoch <= self.start_from_epoch then return end
  self.wait = self.wait + 1
  if improved(self.mode, current, self.best, self.min_delta) then
    self.best, self.best_epoch = current, epoch
    if self.restore_best_weights then self.best_weights = self.model:get_weights() end
    self.wait = 0
    return
  end
  if self.wait >= self.patience and epoch > 1 then
    self.stopped_epoch = epoch
    self.model.stop_training = true
  end
end

function EarlyStopping:on_train_end()
  if self.stopped_epoch > 0 then
    if self.restore_best_weights and self.best_weights then
      self.model:set_weights(self.best_weights)
      if self.verbose > 0 then
        io.stdout:write(string.format("Restoring model weights from the end of the best epoch: %d.\n", self.best_epoch))
      end
    end
    if self.verbose > 0 then io.stdout:write(string.format("Epoch %d: early stopping\n", self.stopped_epoch)) end
  end
end

-- ---- ModelCheckpoint ----------------------------------------------------------------------------

-- Fills "{epoch:02d}" / "{val_loss:.2f}" / "{epoch}" fields like Python's format.
local function format_path(path, epoch, logs)
  return (path:gsub("{([%w_]+):?([^}]*)}", function(key, spec)
    local v = key == "epoch" and epoch or (logs and logs[key])
    if v == nil then return "{" .. key .. "}" end
    if spec ~= "" then return string.format("%" .. spec, v) end
    return tostring(v)
  end))
end
M._format_path = format_path

--- mg.callbacks.ModelCheckpoint{filepath, monitor="val_loss", save_best_only=false, save_weights_only=false, save_freq="epoch", ...}
--- Saves the model (or its weights) to filepath during fit, every epoch or only the best.
local ModelCheckpoint = Callback:extend("ModelCheckpoint")
M.ModelCheckpoint = ModelCheckpoint

function ModelCheckpoint:__init(cfg)
  if type(cfg) == "string" then cfg = { filepath = cfg } end
  cfg = options.check("ModelCheckpoint", cfg, { filepath = "string", monitor = "string", verbose = VERBOSE,
    save_best_only = "boolean", save_weights_only = "boolean", mode = MODE,
    save_freq = { "string|integer", check = function(v)
      if v ~= "epoch" and (type(v) ~= "number" or v < 1) then
        return "must be \"epoch\" or a number of batches >= 1, got " .. options.show(v)
      end
    end }, initial_value_threshold = "number" })
  if type(cfg.filepath) ~= "string" then options.raise("ModelCheckpoint: filepath is required") end
  self.filepath = cfg.filepath
  self.monitor = cfg.monitor or "val_loss"
  self.verbose = cfg.verbose or 0
  self.save_best_only = cfg.save_best_only and true or false
  self.save_weights_only = cfg.save_weights_only and true or false
  self.mode = monitor_mode(self.monitor, cfg.mode)
  self.save_freq = cfg.save_freq or "epoch"
  self.best = cfg.initial_value_threshold
end

-- A whole-model directory (model:save: config, weights, optimizer state,
-- resumable with nn.load_model), or one weights file (save_weights) with
-- save_weights_only, for a path ending in .safetensors, or for a
-- subclassed model (which has no config to save).
function ModelCheckpoint:_save(path)
  local subclassed = not pcall(self.model.get_config, self.model)
  if self.save_weights_only or subclassed or path:match("%.safetensors$") then
    self.model:save_weights(path)
  else
    self.model:save(path)
  end
end

-- save_freq = n: a save after every n batches (counted across epochs), with
-- the latest batch logs; "epoch" saves at each epoch's end.
function ModelCheckpoint:on_train_begin() self._batches = 0 end

function ModelCheckpoint:on_epoch_begin(epoch) self._epoch = epoch end

function ModelCheckpoint:on_train_batch_end(_, logs)
  if self.save_freq == "epoch" then return end
  self._batches = (self._batches or 0) + 1
  if self._batches % self.save_freq == 0 then self:_maybe_save(self._epoch or 1, logs) end
end

function ModelCheckpoint:on_epoch_end(epoch, logs)
  if self.save_freq == "epoch" then self:_maybe_save(epoch, logs) end
end

function ModelCheckpoint:_maybe_save(epoch, logs)
  local path = format_path(self.filepath, epoch, logs)
  if self.save_best_only then
    local current = logs and logs[self.monitor]
    if current == nil then
      warn(string.format("ModelCheckpoint: metric '%s' is not in the logs (available: %s); nothing saved",
        self.monitor, available(logs)))
      return
    end
    if not improved(self.mode, current, self.best, 0) then
      if self.verbose > 0 then
        io.stdout:write(string.format("Epoch %d: %s did not improve from %s\n", epoch, self.monitor,
          progress.format_value(self.best)))
      end
      return
    end
    if self.verbose > 0 then
      io.stdout:write(string.format("Epoch %d: %s improved from %s to %s, saving model to %s\n", epoch, self.monitor,
        self.best and progress.format_value(self.best) or "inf", progress.format_value(current), path))
    end
    self.best = current
  elseif self.verbose > 0 then
    io.stdout:write(string.format("Epoch %d: saving model to %s\n", epoch, path))
  end
  self:_save(path)
end

-- ---- CSVLogger --------------------------------------------------------------------------------

--- mg.callbacks.CSVLogger{filename, separator=",", append=false}: writes each epoch's logs as a row of a CSV file.
local CSVLogger = Callback:extend("CSVLogger")
M.CSVLogger = CSVLogger

function CSVLogger:__init(cfg)
  if type(cfg) == "string" then cfg = { filename = cfg } end
  cfg = options.check("CSVLogger", cfg, { filename = "string", separator = "string", append = "boolean" })
  if type(cfg.filename) ~= "string" then options.raise("CSVLogger: filename is required") end
  self.filename = cfg.filename
  self.separator = cfg.separator or ","
  self.append = cfg.append and true or false
end

function CSVLogger:on_train_begin()
  local exists = false
  if self.append then
    local f = io.open(self.filename, "r")
    if f then exists = f:read(1) ~= nil; f:close() end
  end
  local f, err = io.open(self.filename, self.append and "a" or "w")
  if not f then error("CSVLogger: cannot open " .. self.filename .. ": " .. tostring(err), 0) end
  self.file = f
  self.keys = nil
  self.header_written = exists
end

function CSVLogger:on_epoch_end(epoch, logs)
  if not self.file then return end
  if not self.keys then
    local keys = {}
    for k, v in pairs(logs or {}) do if type(v) == "number" then keys[#keys + 1] = k end end
    table.sort(keys)
    self.keys = keys
    if not self.header_written then
      self.file:write("epoch", self.separator, table.concat(keys, self.separator), "\n")
      self.header_written = true
    end
  end
  local row = { tostring(epoch) }
  for _, k in ipairs(self.keys) do
    local v = logs[k]
    row[#row + 1] = v == nil and "NA" or string.format("%.17g", v)
  end
  self.file:write(table.concat(row, self.separator), "\n")
  self.file:flush()
end

function CSVLogger:on_train_end()
  if self.file then self.file:close(); self.file = nil end
end

-- ---- LearningRateScheduler ------------------------------------------------------------------------

local LearningRateScheduler = Callback:extend("LearningRateScheduler")
M.LearningRateScheduler = LearningRateScheduler

-- LearningRateScheduler(function(epoch, lr) return new_lr end [, {verbose=}])
function LearningRateScheduler:__init(schedule, cfg)
  if type(schedule) == "table" then cfg = schedule; schedule = cfg.schedule end
  options.check("LearningRateScheduler", cfg, { schedule = "function", verbose = VERBOSE })
  if type(schedule) ~= "function" then options.raise("LearningRateScheduler: expected a function(epoch, lr)") end
  self.schedule = schedule
  self.verbose = cfg and cfg.verbose or 0
end

function LearningRateScheduler:on_epoch_begin(epoch)
  local opt = self.model.optimizer
  local lr = self.schedule(epoch, opt.learning_rate)
  if type(lr) ~= "number" then
    error("LearningRateScheduler: the schedule must return a number, got " .. type(lr), 0)
  end
  opt.learning_rate = lr
  if self.verbose > 0 then
    io.stdout:write(string.format("\nEpoch %d: LearningRateScheduler setting learning rate to %s.\n", epoch,
      tostring(lr)))
  end
end

function LearningRateScheduler:on_epoch_end(_, logs)
  if logs then logs.learning_rate = self.model.optimizer.learning_rate end
end

-- ---- ReduceLROnPlateau --------------------------------------------------------------------------------

--- mg.callbacks.ReduceLROnPlateau{monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, min_lr=0, ...}
--- Multiplies the learning rate by factor when the monitored value stops improving.
local ReduceLROnPlateau = Callback:extend("ReduceLROnPlateau")
M.ReduceLROnPlateau = ReduceLROnPlateau

function ReduceLROnPlateau:__init(cfg)
  cfg = options.check("ReduceLROnPlateau", cfg, { monitor = "string", factor = { "number", above = 0, below = 1 },
    patience = { "integer", min = 0 }, verbose = VERBOSE, mode = MODE, min_delta = { "number", min = 0 },
    cooldown = { "integer", min = 0 }, min_lr = { "number", min = 0 } })
  self.monitor = cfg.monitor or "val_loss"
  self.factor = cfg.factor or 0.1
  self.patience = cfg.patience or 10
  self.verbose = cfg.verbose or 0
  self.mode = monitor_mode(self.monitor, cfg.mode)
  self.min_delta = cfg.min_delta or 1e-4
  self.cooldown = cfg.cooldown or 0
  self.min_lr = cfg.min_lr or 0
end

function ReduceLROnPlateau:on_train_begin()
  self.wait, self.cooldown_counter, self.best = 0, 0, nil
end

function ReduceLROnPlateau:on_epoch_end(epoch, logs)
  local opt = self.model.optimizer
  if logs then logs.learning_rate = opt.learning_rate end
  local current = logs and logs[self.monitor]
  if current == nil then
    warn(string.format("ReduceLROnPlateau: metric '%s' is not in the logs (available: %s)", self.monitor,
      available(logs)))
    return
  end
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.wait = 0
  end
  if improved(self.mode, current, self.best, self.min_delta) then
    self.best = current
    self.wait = 0
  elseif self.cooldown_counter <= 0 then
    self.wait = self.wait + 1
    if self.wait >= self.patience then
      local old = opt.learning_rate
      if old > self.min_lr then
        local new = math.max(old * self.factor, self.min_lr)
        opt.learning_rate = new
        if self.verbose > 0 then
          io.stdout:write(string.format("\nEpoch %d: ReduceLROnPlateau reducing learning rate to %s.\n", epoch,
            tostring(new)))
        end
        self.cooldown_counter = self.cooldown
        self.wait = 0
      end
    end
  end
end

-- ---- TerminateOnNaN ------------------------------------------------------------------------------------

--- mg.callbacks.TerminateOnNaN{}: stops fit at the first batch whose loss is NaN or infinite.
local TerminateOnNaN = Callback:extend("TerminateOnNaN")
M.TerminateOnNaN = TerminateOnNaN
function TerminateOnNaN:__init(cfg) self.config = options.check("TerminateOnNaN", cfg, {}) end

function TerminateOnNaN:on_train_batch_end(batch, logs)
  local loss = logs and logs.loss
  if loss and (loss ~= loss or loss == math.huge or loss == -math.huge) then
    io.stdout:write(string.format("Batch %d: invalid loss, terminating training\n", batch))
    self.model.stop_training = true
  end
end

-- ---- LambdaCallback ----------------------------------------------------------------------------------------

local LambdaCallback = Callback:extend("LambdaCallback")
M.LambdaCallback = LambdaCallback

-- LambdaCallback{on_epoch_end=function(epoch, logs) ... end, on_batch_end=, on_train_begin=, ...}
function LambdaCallback:__init(cfg)
  cfg = options.check("LambdaCallback", cfg, { on_train_begin = "function", on_train_end = "function",
    on_epoch_begin = "function", on_epoch_end = "function", on_batch_begin = "function", on_batch_end = "function",
    on_train_batch_begin = "function", on_train_batch_end = "function", on_test_begin = "function",
    on_test_end = "function", on_test_batch_begin = "function", on_test_batch_end = "function",
    on_predict_begin = "function", on_predict_end = "function", on_predict_batch_begin = "function",
    on_predict_batch_end = "function" })
  local alias = { on_batch_begin = "on_train_batch_begin", on_batch_end = "on_train_batch_end" }
  for k, f in pairs(cfg) do
    local hook = alias[k] or k
    if type(f) ~= "function" or Callback[hook] == nil then
      error("LambdaCallback: unknown hook or not a function: " .. tostring(k), 3)
    end
    self[hook] = function(_, a, b) return f(a, b) end
  end
end

return M
