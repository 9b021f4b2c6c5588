-- moongrad.nn.training: compile, fit, evaluate, predict and the *_on_batch
-- methods of nn.Model, after Keras 3's Trainer.
--
-- fit/evaluate/predict feed one step function a `data` table per batch,
-- {x, y, sample_weight} (Keras's tuple; see data_adapter.lua), and the
-- step returns a table of logs (name -> value) that goes to the progress
-- bar, the callbacks and the history. The default train_step is forward
-- with training=true, compute_loss, a tape gradient, the optimizer update
-- and compute_metrics, whose logs are every metric's result; a subclass may
-- override train_step(data) / test_step(data) / predict_step(data) and
-- return logs of its own (Keras's contract). An epoch's logs are its last
-- step's (the default step's are the metrics' results, accumulated over the
-- epoch). The loss is a Mean over samples: each
-- batch's loss counts with the batch's size, so an epoch's loss is the mean
-- over its samples however the batches fall. Losses and metrics per output
-- are compile_utils.lua's.
--
-- By default the step is staged with mg.func, so after the first batch
-- each step is one call of a C graph (the optimizer's elementwise updates
-- fused, the metric state in Variables); compile{run_eagerly=true} runs the
-- same function eagerly, for debugging. Everything the step creates
-- (weights, optimizer slots, Dropout seeds, metric state) is created before
-- the first trace, from one eager forward pass on the first rows. Batches
-- are views (unshuffled) or one `take` of shuffled rows; the permutation
-- comes from mg.random, so mg.random.seed makes a run reproducible.
-- Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local Model = require("moongrad.nn.model")
local util = require("moongrad.nn.util")
local class = require("moongrad.nn.class")
local options = require("moongrad.options")
local metrics_mod = require("moongrad.metrics")
local callbacks = require("moongrad.callbacks")
local progress = require("moongrad.nn.progress")
local adapter = require("moongrad.nn.data_adapter")
local masking = require("moongrad.nn.masking")
local compile_utils = require("moongrad.nn.compile_utils")

local unpack = table.unpack or unpack
local is_plain, is_dataset = adapter.is_plain, adapter.is_dataset
local raise = options.raise

-- ---- compile ------------------------------------------------------------------------------

local VERBOSE = { "integer|string", check = function(v)
  if v ~= 0 and v ~= 1 and v ~= 2 and v ~= "auto" then
    return "must be 0, 1, 2 or \"auto\", got " .. options.show(v)
  end
end }

local COMPILE_OPTIONS = { optimizer = "string|table", loss = "any", metrics = "any", weighted_metrics = "any",
  loss_weights = "number|table", run_eagerly = "boolean" }

-- model.output_names: the names of the layers that make the outputs (of a
-- functional or built Sequential model); nil for a subclassed model.
Model.getters.output_names = function(self)
  local outs = rawget(self, "outputs")
  if not outs then return nil end
  local names = {}
  for i, t in ipairs(outs) do names[i] = t.node.layer.name end
  return names
end

-- The compile state tied to the model's outputs: the output names of a
-- functional or Sequential model, else those of y_pred (a subclassed model's
-- outputs are known once it has run): output_1, output_2, ... or a table's keys.
local function build_state(self, state, y_pred)
  local names = self.output_names
  if not names then
    if mg.is_tensor(y_pred) or y_pred == nil then
      names = { "output_1" }
    elseif is_plain(y_pred) and #y_pred == 0 then
      names = adapter.ordered_keys(y_pred)
    else
      names = {}
      for i = 1, #y_pred do names[i] = "output_" .. i end
    end
  end
  state:build(#names, names)
end

-- model:compile{optimizer="rmsprop", loss=, metrics=, weighted_metrics=, loss_weights=, run_eagerly=false}
-- (loss/metric forms per output: compile_utils.lua).
function Model:compile(opts)
  opts = options.check("compile", opts, COMPILE_OPTIONS)
  local optim = require("moongrad.optim")
  local ok, opt = pcall(optim.get, opts.optimizer or "rmsprop")
  if not ok then raise("compile: " .. tostring(opt):gsub("^[^:\n]*:%d+: ", "")) end
  local state = compile_utils.State(opts)
  if rawget(self, "outputs") then build_state(self, state) end
  rawset(self, "_compile_args", opts)   -- kept for model:save (nn/saving.lua)
  rawset(self, "optimizer", opt)
  rawset(self, "loss", opts.loss)
  rawset(self, "_compile_state", state)
  rawset(self, "_loss_tracker", metrics_mod.Mean { name = "loss" })
  rawset(self, "run_eagerly", opts.run_eagerly and true or false)
  rawset(self, "_train_fn", nil)
  rawset(self, "_test_fn", nil)
  rawset(self, "_predict_fn", nil)
  rawset(self, "compiled", true)
end

-- Metric objects assigned to a model's fields (self.tracker = mg.metrics.Mean{...}),
-- in field-name order: Keras tracks them as the model's metrics.
local function field_metrics(self)
  local keys = {}
  for k, v in pairs(self) do
    if type(k) == "string" and k:sub(1, 1) ~= "_" and class.isinstance(v, metrics_mod.Metric) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do out[i] = rawget(self, k) end
  return out
end

-- model.metrics: the loss tracker, each output's loss tracker, the compiled
-- metrics, then metrics on the model's fields (Keras's order). A subclass
-- may define its own getter (Model.getters.metrics) to say which to reset
-- each epoch and report.
Model.getters.metrics = function(self)
  local out = {}
  local lt = rawget(self, "_loss_tracker")
  if lt then out[1] = lt end
  local state = rawget(self, "_compile_state")
  if state then
    for _, m in ipairs((state:metric_list())) do out[#out + 1] = m end
  end
  for _, m in ipairs(field_metrics(self)) do out[#out + 1] = m end
  return out
end

-- {metric, name it reports under} for model.metrics, each metric once.
local function metric_keys(self)
  local state = rawget(self, "_compile_state")
  local keys = {}
  if state then keys = select(2, state:metric_list()) end
  local out, seen = {}, {}
  for _, m in ipairs(self.metrics) do
    if not seen[m] then
      seen[m] = true
      out[#out + 1] = { m, keys[m] or m.name }
    end
  end
  return out
end

-- model.metrics_names: the names the logs use, in model.metrics's order.
Model.getters.metrics_names = function(self)
  local names = {}
  for i, e in ipairs(metric_keys(self)) do names[i] = e[2] end
  return names
end

local function check_compiled(self, what)
  if not rawget(self, "compiled") then
    raise(string.format("%s: model %s is not compiled; call model:compile{optimizer=, loss=} first", what, self.name))
  end
end

-- ---- the steps -------------------------------------------------------------------------------

-- Predictions in a half type (a mixed precision model's) as float32: losses
-- and metrics compute in float32, as Keras's do.
local function float32_preds(y_pred)
  if core.is_tensor(y_pred) then
    local d = y_pred.dtype
    if d ~= "float16" and d ~= "bfloat16" then return y_pred end
    local out = core.cast(y_pred, "float32")
    masking.set(out, masking.get(y_pred))   -- the losses and metrics read the prediction's mask
    return out
  end
  if type(y_pred) == "table" and getmetatable(y_pred) == nil then
    local out = {}
    for k, v in pairs(y_pred) do out[k] = float32_preds(v) end
    return out
  end
  return y_pred
end

-- compute_loss(x, y, y_pred, sample_weight, training): the compiled losses
-- (weighted per output, each output's loss tracked) plus the layers'
-- regularization (Keras 3's Trainer.compute_loss).
function Model:compute_loss(x, y, y_pred, sample_weight, training)
  local state = rawget(self, "_compile_state")
  local total
  y_pred = float32_preds(y_pred)
  if state then
    if not state.built then build_state(self, state, y_pred) end
    total = state:loss(y, y_pred, sample_weight)
  end
  for _, r in ipairs(self.losses) do total = total and total + r or r end
  if total == nil then
    error("model " .. self.name .. ": no loss to compute; give a loss to compile (compile{loss=...})", 0)
  end
  return total
end

-- Each metric's result as a tensor, by the name it reports under (a staged
-- step returns these: no value is read back inside the step).
function Model:_metric_results()
  local out = {}
  for _, e in ipairs(metric_keys(self)) do out[e[2]] = e[1]:result() end
  return out
end

-- compute_metrics(x, y, y_pred, sample_weight): updates the compiled
-- metrics and returns every metric's result (the step's logs).
function Model:compute_metrics(x, y, y_pred, sample_weight)
  local state = rawget(self, "_compile_state")
  y_pred = float32_preds(y_pred)
  if state then
    if not state.built then build_state(self, state, y_pred) end
    state:update_metrics(y, y_pred, sample_weight)
  end
  return self:_metric_results()
end

-- train_step(data): one optimizer step on a batch; data is {x, y,
-- sample_weight} (nn.utils.unpack_x_y_sample_weight). Returns the logs.
function Model:train_step(data)
  local x, y, sw = adapter.unpack(data)
  local vars = self.trainable_weights
  local tape = mg.GradientTape()
  local y_pred = self(x, true)
  local loss = self:compute_loss(x, y, y_pred, sw, true)
  -- a LossScaleOptimizer scales the loss here and unscales the gradients in apply_gradients
  local scaled = self.optimizer.scale_loss and self.optimizer:scale_loss(loss) or loss
  tape:stop()
  rawget(self, "_loss_tracker"):update_state(loss, adapter.batch_size(x))
  self.optimizer:apply_gradients(tape:gradient(scaled, vars), vars)
  return self:compute_metrics(x, y, y_pred, sw)
end

-- test_step(data): the loss and metrics of a batch, no update.
function Model:test_step(data)
  local x, y, sw = adapter.unpack(data)
  local y_pred = self(x, false)
  local loss = self:compute_loss(x, y, y_pred, sw, false)
  rawget(self, "_loss_tracker"):update_state(loss, adapter.batch_size(x))
  return self:compute_metrics(x, y, y_pred, sw)
end

-- predict_step(data): the outputs for a batch.
function Model:predict_step(data)
  local x = adapter.unpack(data)
  return self(x, false)
end

-- A step's logs as sorted names and values (tables of logs merged, a bare
-- value named "loss", numbers made tensors), for the staged call.
local function flatten_logs(logs, kind)
  if not is_plain(logs) then logs = { loss = logs } end
  local merged = {}
  local function add(t)
    for k, v in pairs(t) do
      if is_plain(v) then add(v) else merged[k] = v end
    end
  end
  add(logs)
  local names = {}
  for k in pairs(merged) do
    if type(k) ~= "string" then
      error(string.format("%s: the logs must be a table keyed by name, got the key %s", kind, tostring(k)), 0)
    end
    names[#names + 1] = k
  end
  table.sort(names)
  local values = {}
  for i, k in ipairs(names) do
    local v = merged[k]
    if type(v) == "number" then v = mg.tensor(v, "float32") end
    if not mg.is_tensor(v) then
      error(string.format("%s: log '%s' must be a tensor or a number, got %s", kind, k, type(v)), 0)
    end
    values[i] = v
  end
  return names, values
end

local function same_names(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- The step as a function of a data table, staged with mg.func unless
-- run_eagerly; an error while tracing it gets a hint (Lua code that needs
-- tensor values cannot be staged). The staged function takes x, y and
-- sample_weight positionally and returns tensors only, the logs' values in
-- name order (`logs`: the step returns logs), the names kept aside from
-- the trace: tensors in and tensors out is mg.func's fastest call, one C
-- call with no walk of tables.
local function stage(self, kind, step, logs)
  if rawget(self, "run_eagerly") then return step end
  local names
  local fn = function(...)
    local out = step(adapter.pack(...))
    if not logs then return out end
    local n, values = flatten_logs(out, kind)
    if names and not same_names(names, n) then
      error(string.format("%s returned logs named %s in one trace and %s in another; return the same names every "
        .. "step", kind, table.concat(names, ", "), table.concat(n, ", ")), 0)
    end
    names = n
    return unpack(values, 1, #n)
  end
  -- reduce_retracing: a batch of another shape (the last, smaller batch; padded
  -- sequences of another length) traces once more with the sizes that changed
  -- unknown (-1), and that trace serves every later size, as TF's
  -- reduce_retracing does, instead of one trace (and a warning) per shape.
  local staged = mg.func(fn, { name = self.name .. "." .. kind, autograph = false, reduce_retracing = true })
  local function finish(ok, ...)
    if not ok then
      local msg = tostring((...))
      if msg:find("symbolic", 1, true) or msg:find("staged", 1, true) or msg:find("trac", 1, true) then
        msg = msg .. "\n(model " .. self.name .. ": the " .. kind .. " runs staged with mg.func; "
          .. "compile{run_eagerly=true} runs it eagerly, for debugging)"
      end
      error(msg, 0)
    end
    if not logs then return (...) end
    local values, out = { ... }, {}
    for i, k in ipairs(names) do out[k] = values[i] end
    return out
  end
  return function(data)
    local n = data[3] ~= nil and 3 or (data[2] ~= nil and 2 or 1)   -- no trailing nils: they cost the fast path
    return finish(pcall(staged, unpack(data, 1, n)))
  end, staged
end

-- Before anything is staged: builds the model (one eager forward pass on
-- the probe's x, a couple of rows) and ties the compile state to the
-- outputs it returns.
local function prepare(self, probe)
  local state = rawget(self, "_compile_state")
  local need_state = state and not state.built
  if rawget(self, "_called") and not need_state then return end
  local x = adapter.unpack(probe)
  local prev = util.context.training
  util.context.training = false
  util.context.probing = true   -- shapes in errors show the batch as None, not the probe's rows
  local ok, y_pred = pcall(self, x, false)
  util.context.training, util.context.probing = prev, nil
  if not ok then error(y_pred, 0) end
  rawset(self, "_called", true)
  if need_state then build_state(self, state, y_pred) end
end

local function same_list(a, b)
  if not a or #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

--- model:make_train_function() -> the staged function fit runs per batch (built once per compile; override train_step to change it).
function Model:make_train_function()
  local vars = self.trainable_weights
  if not same_list(rawget(self, "_train_vars"), vars) or not rawget(self, "_train_fn") then
    rawset(self, "_train_vars", vars)
    self.optimizer:build(vars)
    local fn, staged = stage(self, "train_step", function(data) return self:train_step(data) end, true)
    rawset(self, "_train_fn", fn)
    rawset(self, "train_function", staged)
  end
  return rawget(self, "_train_fn")
end

--- model:make_test_function() -> the staged function evaluate runs per batch.
function Model:make_test_function()
  if not rawget(self, "_test_fn") then
    local fn, staged = stage(self, "test_step", function(data) return self:test_step(data) end, true)
    rawset(self, "_test_fn", fn)
    rawset(self, "test_function", staged)
  end
  return rawget(self, "_test_fn")
end

--- model:make_predict_function() -> the staged function predict runs per batch.
function Model:make_predict_function()
  if not rawget(self, "_predict_fn") then
    local fn, staged = stage(self, "predict_step", function(data) return self:predict_step(data) end)
    rawset(self, "_predict_fn", fn)
    rawset(self, "predict_function", staged)
  end
  return rawget(self, "_predict_fn")
end

-- ---- logs ------------------------------------------------------------------------------------

--- model:reset_metrics(): resets the state of the compiled loss tracker and metrics.
function Model:reset_metrics()
  for _, m in ipairs(self.metrics) do m:reset_state() end
end

local function value_of(v)
  if mg.is_tensor(v) and v:numel() == 1 then return v:item() end
  return v
end

-- {loss=, accuracy=, ...}: every metric's result as a Lua number.
function Model:get_metrics_result()
  local out = {}
  for _, e in ipairs(metric_keys(self)) do out[e[2]] = value_of(e[1]:result()) end
  return out
end

-- A step's returned logs as a plain table: one-element tensors become
-- numbers, tables of logs are merged (Keras's pythonify_logs); a bare
-- value (a step that returns its loss) is {loss = value}.
local function logs_of(v)
  if v == nil then return {} end
  if not is_plain(v) then return { loss = value_of(v) } end
  local out = {}
  local function add(t)
    for k, x in pairs(t) do
      if is_plain(x) then add(x) else out[k] = value_of(x) end
    end
  end
  add(v)
  return out
end

-- The logs at the end of an epoch or evaluation: the last step's. The
-- default step's logs are the metrics' results, which accumulate over the
-- epoch; a custom step's are what it returned. (Keras reads the metrics
-- instead when the names agree, which reports 0 for a "loss" a custom step
-- returns without updating the compiled loss tracker.)
local function final_logs(logs)
  local out = {}
  for k, v in pairs(logs) do out[k] = v end
  return out
end

-- evaluate's values without return_dict: in metrics_names order, then any
-- other logs by name (one value alone when there is one).
local function results(self, logs, return_dict)
  if return_dict then return logs end
  local out, seen = {}, {}
  for _, name in ipairs(self.metrics_names) do
    if logs[name] ~= nil then out[#out + 1] = logs[name]; seen[name] = true end
  end
  local rest = {}
  for k in pairs(logs) do if not seen[k] then rest[#rest + 1] = k end end
  table.sort(rest, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(rest) do out[#out + 1] = logs[k] end
  return unpack(out, 1, #out)
end

local function verbosity(opts)
  local v = opts.verbose
  if v == nil or v == "auto" then return 1 end
  return v
end

-- ---- arguments ---------------------------------------------------------------------------------

-- model:fit{x=, y=, epochs=...}: one table holding the data and the options
-- (not a table of inputs keyed by Input names: those are tensors, and a
-- model with an Input named "x" takes them as inputs).
local function option_form(self, t, spec)
  if not is_plain(t) or t.x == nil then return false end
  for k in pairs(t) do if spec[k] == nil then return false end end
  for _, name in ipairs(rawget(self, "inputs") and (self.input_names or {}) or {}) do
    if name == "x" then return false end
  end
  return true
end

local function parse_call(self, x, y, opts, spec, what)
  if is_dataset(x) and is_plain(y) and opts == nil and (next(y) == nil or not mg.is_tensor(y[1])) then
    opts, y = y, nil   -- fit(ds, {epochs=2})
  end
  if y == nil and opts == nil and option_form(self, x, spec) then
    opts = x
    x, y = opts.x, opts.y
  end
  opts = options.check(what, opts, spec)
  return x, y, opts
end

-- The default step computes its loss against y; an overriding one may not need y.
local function needs_y(self, step)
  return self[step] == Model[step]
end

local function check_dataset_opts(what, y, opts)
  if y ~= nil then
    raise(what .. ": y must not be given when x is a Dataset (its elements are (x, y) batches)")
  end
  if opts.batch_size ~= nil then
    raise(what .. ": batch_size must not be given with a Dataset; batch the dataset itself: ds:batch(n)")
  end
  if opts.validation_split ~= nil and opts.validation_split ~= 0 then
    raise(what .. ": validation_split is not supported with a Dataset; give validation_data (a Dataset)")
  end
  if opts.sample_weight ~= nil then
    raise(what .. ": sample_weight must not be given with a Dataset; yield (x, y, sample_weight) elements")
  end
end

-- The data table of arrays x, y, sample_weight (and its sample count),
-- every structure checked. class_weight adds the sample weights.
local function array_data(self, what, x, y, sw, opts, step)
  if y == nil and needs_y(self, step) then raise(what .. ": y (the targets) is missing") end
  if sw ~= nil and y == nil then raise(what .. ": sample_weight needs targets y") end
  local n = adapter.num_samples(what, { { "x", x }, { "y", y }, { "sample_weight", sw } })
  if n == 0 then raise(what .. ": x has no samples") end
  if opts.class_weight ~= nil then
    if sw ~= nil then raise(what .. ": give sample_weight or class_weight, not both") end
    if y == nil then raise(what .. ": class_weight needs targets y") end
    sw = adapter.class_sample_weights(what, y, opts.class_weight)
  end
  return adapter.pack(x, y, sw), n
end

-- ---- fit ---------------------------------------------------------------------------------------

local FIT_OPTIONS = { x = "any", y = "any", batch_size = { "integer", min = 1 }, epochs = { "integer", min = 0 },
  verbose = VERBOSE, callbacks = "table", validation_split = { "number", min = 0, below = 1 },
  validation_data = "table", shuffle = "boolean", class_weight = "table", sample_weight = "tensor|table",
  initial_epoch = { "integer", min = 0 }, steps_per_epoch = { "integer", min = 1 },
  validation_steps = { "integer", min = 1 }, validation_batch_size = { "integer", min = 1 },
  validation_freq = { "integer", min = 1 } }

-- The validation data: a Dataset, or {x, y [, sample_weight]} / {x=, y=, sample_weight=}.
local function validate(self, val, opts)
  local vopts = { verbose = 0, return_dict = true }
  if is_dataset(val) then
    vopts.steps = opts.validation_steps
    return self:evaluate(val, nil, vopts)
  end
  local vx, vy, vsw = val[1], val[2], val[3]
  if vx == nil then vx, vy, vsw = val.x, val.y, val.sample_weight end
  vopts.batch_size = opts.validation_batch_size or opts.batch_size or 32
  vopts.sample_weight = vsw
  vopts.steps = opts.validation_steps
  return self:evaluate(vx, vy, vopts)
end

-- The loop of fit over a batch source; val (a Dataset or {x, y}) is evaluated
-- every validation_freq epochs.
local function fit_loop(self, src, val, opts)
  local epochs = opts.epochs or 1
  local verbose = verbosity(opts)
  prepare(self, src.probe)
  local train_fn = self:make_train_function()
  -- user callbacks first (they may add to the logs), then History and the progress bar (Keras's order)
  local history = callbacks.History()
  local list = {}
  for _, cb in ipairs(opts.callbacks or {}) do list[#list + 1] = cb end
  list[#list + 1] = history
  if verbose ~= 0 then list[#list + 1] = callbacks.ProgbarLogger() end
  local cbs = callbacks.CallbackList(list, self, { epochs = epochs, steps = src.steps, verbose = verbose })
  rawset(self, "stop_training", false)
  cbs:on_train_begin({})
  local epoch_logs = {}
  for epoch = (opts.initial_epoch or 0) + 1, epochs do
    self:reset_metrics()
    cbs:on_epoch_begin(epoch, {})
    local step, logs = 0, {}
    for data in src.pass(epoch) do
      step = step + 1
      cbs:on_train_batch_begin(step, {})
      logs = logs_of(train_fn(data))
      cbs:on_train_batch_end(step, logs)
      if self.stop_training then break end
    end
    epoch_logs = final_logs(logs)
    if val ~= nil and epoch % (opts.validation_freq or 1) == 0 then
      for k, v in pairs(validate(self, val, opts)) do epoch_logs["val_" .. k] = v end
    end
    cbs:on_epoch_end(epoch, epoch_logs)
    if self.stop_training then break end
  end
  -- an optimizer with use_ema leaves the moving averages in the weights (Keras 3's fit)
  self.optimizer:finalize_variable_values(self.trainable_weights)
  cbs:on_train_end(epoch_logs)
  return history
end

-- model:fit(x, y, {epochs=1, batch_size=32, verbose=1, shuffle=true,
-- validation_split=, validation_data={x, y [, sample_weight]} or a Dataset,
-- sample_weight=, class_weight=, callbacks={...}, initial_epoch=0, ...})
-- -> a History (history.history.loss[epoch], ...).
-- model:fit(ds, {epochs=, steps_per_epoch=, validation_data=, ...}) trains on a
-- Dataset of (x, y[, sample_weight]) batches (see data_adapter.dataset_source).
function Model:fit(x, y, opts)
  x, y, opts = parse_call(self, x, y, opts, FIT_OPTIONS, "fit")
  check_compiled(self, "fit")
  if is_dataset(x) then
    check_dataset_opts("fit", y, opts)
    local src = adapter.dataset_source(x, "fit", needs_y(self, "train_step"), opts.steps_per_epoch,
      "steps_per_epoch", opts.class_weight)
    return fit_loop(self, src, opts.validation_data, opts)
  end
  local sw = opts.sample_weight
  local data, n = array_data(self, "fit", x, y, sw, {}, "train_step")
  local val = opts.validation_data
  if val == nil and opts.validation_split and opts.validation_split > 0 then
    local nv = math.floor(n * opts.validation_split)
    if nv < 1 or nv >= n then
      raise(string.format("fit: validation_split=%s leaves no training or no validation samples out of %d",
        tostring(opts.validation_split), n))
    end
    val = adapter.rows(data, n - nv + 1, n)
    x, y, sw = adapter.unpack(adapter.rows(data, 1, n - nv))
    n = n - nv
  end
  data = array_data(self, "fit", x, y, sw, opts, "train_step")
  local src = adapter.tensor_source(data, n, opts.batch_size or 32, opts.steps_per_epoch, opts.shuffle ~= false)
  return fit_loop(self, src, val, opts)
end

-- ---- evaluate / predict ------------------------------------------------------------------------------

local EVAL_OPTIONS = { x = "any", y = "any", batch_size = { "integer", min = 1 }, verbose = VERBOSE,
  sample_weight = "tensor|table", steps = { "integer", min = 1 }, callbacks = "table", return_dict = "boolean" }

-- model:evaluate(x, y, {batch_size=32, verbose=1, sample_weight=, return_dict=false}) ->
-- loss, metric... (or a table by name with return_dict).
-- model:evaluate(ds, {steps=, verbose=, return_dict=}): the metrics over a
-- Dataset (or its first `steps` batches).
function Model:evaluate(x, y, opts)
  x, y, opts = parse_call(self, x, y, opts, EVAL_OPTIONS, "evaluate")
  check_compiled(self, "evaluate")
  local src
  if is_dataset(x) then
    check_dataset_opts("evaluate", y, opts)
    src = adapter.dataset_source(x, "evaluate", needs_y(self, "test_step"), opts.steps, "steps")
  else
    local data, n = array_data(self, "evaluate", x, y, opts.sample_weight, {}, "test_step")
    src = adapter.tensor_source(data, n, opts.batch_size or 32, opts.steps, false)
  end
  local verbose = verbosity(opts)
  prepare(self, src.probe)
  local fn = self:make_test_function()
  self:reset_metrics()
  local bar = verbose ~= 0 and progress.Progbar(src.steps, { verbose = verbose }) or nil
  local cbs = callbacks.CallbackList(opts.callbacks or {}, self, { steps = src.steps, verbose = verbose })
  cbs:on_test_begin({})
  local step, logs = 0, {}
  for data in src.pass() do
    step = step + 1
    cbs:on_test_batch_begin(step, {})
    logs = logs_of(fn(data))
    cbs:on_test_batch_end(step, logs)
    if bar and bar:wants(step) then bar:update(step, callbacks._ordered_logs(self, logs, false)) end
  end
  logs = final_logs(logs)
  cbs:on_test_end(logs)
  return results(self, logs, opts.return_dict)
end

local PREDICT_OPTIONS = { x = "any", batch_size = { "integer", min = 1 }, verbose = VERBOSE, callbacks = "table",
  steps = { "integer", min = 1 } }

local function concat_outputs(parts)
  local f = parts[1]
  if mg.is_tensor(f) then
    if #parts == 1 then return f end
    return mg.concat(parts, 1)
  end
  local out = {}
  for _, k in ipairs(adapter.ordered_keys(f)) do
    local list = {}
    for i, p in ipairs(parts) do list[i] = p[k] end
    out[k] = #list == 1 and list[1] or mg.concat(list, 1)
  end
  return out
end

-- model:predict(x, {batch_size=32, verbose=0}): the outputs for every sample.
-- model:predict(ds, {steps=}): the outputs for every element's x (elements may be x or (x, y)).
function Model:predict(x, opts)
  if opts == nil and option_form(self, x, PREDICT_OPTIONS) then opts = x; x = opts.x end
  opts = options.check("predict", opts, PREDICT_OPTIONS)
  local src
  if is_dataset(x) then
    if opts.batch_size ~= nil then
      raise("predict: batch_size must not be given with a Dataset; batch the dataset itself: ds:batch(n)")
    end
    src = adapter.dataset_source(x, "predict", false, opts.steps, "steps")
  else
    local n = adapter.num_samples("predict", { { "x", x } })
    if n == 0 then raise("predict: x has no samples") end
    src = adapter.tensor_source(adapter.pack(x), n, opts.batch_size or 32, opts.steps, false)
  end
  prepare(self, src.probe)
  local fn = self:make_predict_function()
  local verbose = opts.verbose or 0
  if verbose == "auto" then verbose = 1 end
  local bar = verbose ~= 0 and progress.Progbar(src.steps, { verbose = verbose }) or nil
  local cbs = callbacks.CallbackList(opts.callbacks or {}, self, { steps = src.steps, verbose = verbose })
  cbs:on_predict_begin({})
  local parts = {}
  for data in src.pass() do
    cbs:on_predict_batch_begin(#parts + 1, {})
    parts[#parts + 1] = fn(data)
    cbs:on_predict_batch_end(#parts, { outputs = parts[#parts] })
    if bar and bar:wants(#parts) then bar:update(#parts, {}) end
  end
  cbs:on_predict_end({})
  return concat_outputs(parts)
end

-- ---- single batches ------------------------------------------------------------------------------------

local TRAIN_BATCH_OPTIONS = { sample_weight = "tensor|table", class_weight = "table", reset_metrics = "boolean",
  return_dict = "boolean" }
local TEST_BATCH_OPTIONS = { sample_weight = "tensor|table", reset_metrics = "boolean", return_dict = "boolean" }

-- model:train_on_batch(x, y, {sample_weight=, class_weight=, reset_metrics=true, return_dict=false}) -> loss, metric...
function Model:train_on_batch(x, y, opts)
  opts = options.check("train_on_batch", opts, TRAIN_BATCH_OPTIONS)
  check_compiled(self, "train_on_batch")
  local data, n = array_data(self, "train_on_batch", x, y, opts.sample_weight, opts, "train_step")
  prepare(self, adapter.rows(data, 1, math.min(n, 2)))
  local fn = self:make_train_function()
  if opts.reset_metrics ~= false then self:reset_metrics() end
  return results(self, final_logs(logs_of(fn(data))), opts.return_dict)
end

-- model:test_on_batch(x, y, {sample_weight=, reset_metrics=true, return_dict=false}) -> loss, metric...
function Model:test_on_batch(x, y, opts)
  opts = options.check("test_on_batch", opts, TEST_BATCH_OPTIONS)
  check_compiled(self, "test_on_batch")
  local data, n = array_data(self, "test_on_batch", x, y, opts.sample_weight, {}, "test_step")
  prepare(self, adapter.rows(data, 1, math.min(n, 2)))
  local fn = self:make_test_function()
  if opts.reset_metrics ~= false then self:reset_metrics() end
  return results(self, final_logs(logs_of(fn(data))), opts.return_dict)
end

--- model:predict_on_batch(x) -> the model's outputs for one batch x (inference mode).
function Model:predict_on_batch(x)
  local data = adapter.pack(x)
  prepare(self, data)
  return self:make_predict_function()(data)
end

return Model
