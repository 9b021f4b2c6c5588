-- moongrad.nn.training: compile, fit, evaluate, predict and the *_on_batch
-- methods of nn.Model.
--
-- The train step (forward with training=true, loss, tape gradient,
-- optimizer update, metric updates) is one function; by default it is
-- staged with mg.func, so after the first batch each step is one call of a
-- C graph (the optimizer's elementwise updates fused, the metric state in
-- Variables, nothing read back to Lua). compile{run_eagerly=true} runs the
-- same function eagerly, for debugging. Everything the step creates
-- (weights, optimizer slots, Dropout seeds, metric state) is created before
-- the first trace. Batches are views (unshuffled) or one `take` of shuffled
-- rows; the permutation comes from mg.random, so mg.random.seed makes a
-- run reproducible. fit/evaluate/predict also take an mg.data Dataset of
-- (x, y) batches (see dataset_source). Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local Model = require("moongrad.nn.model")
local util = require("moongrad.nn.util")
local losses = require("moongrad.losses")
local metrics_mod = require("moongrad.metrics")
local callbacks = require("moongrad.callbacks")
local progress = require("moongrad.nn.progress")

local unpack = table.unpack or unpack

-- ---- data ----------------------------------------------------------------------------

local function is_list(x) return type(x) == "table" and getmetatable(x) == nil end

local function map(x, f)
  if is_list(x) then
    local out = {}
    for i, t in ipairs(x) do out[i] = f(t) end
    return out
  end
  return f(x)
end

local function first(x) if is_list(x) then return x[1] end return x end

local function num_samples(x, what)
  local t = first(x)
  if not mg.is_tensor(t) then
    error(string.format("%s must be a tensor or a list of tensors, got %s", what, type(t)), 4)
  end
  if t.ndim == 0 then error(what .. " must have a batch axis, got a scalar", 4) end
  return t.shape[1]
end

local function check_same_count(x, y)
  local n = num_samples(x, "x")
  if y ~= nil then
    local ny = num_samples(y, "y")
    if ny ~= n then error(string.format("x has %d samples but y has %d", n, ny), 4) end
  end
  return n
end

local function rows(x, i, j) return map(x, function(t) return t:slice { { i, j } } end) end
local function take_rows(x, idx) return map(x, function(t) return mg.take(t, idx, 1) end) end

-- ---- datasets (mg.data) ------------------------------------------------------------------------
-- A Dataset's elements are (x, y) batches (a tuple {x, y}; x may itself be a
-- list for several inputs); predict also takes x-only elements. Checked
-- without loading mg.data: a dataset is a table with the method _iter.

local function is_dataset(x) return type(x) == "table" and type(x._iter) == "function" and x.card ~= nil end

local function split_element(e, what, need_y)
  local x, y
  if type(e) == "table" and getmetatable(e) == nil and #e >= 2 then x, y = e[1], e[2]
  else x = e end
  if type(e) == "table" and getmetatable(e) == nil and #e > 2 then
    error(string.format("%s: the dataset's elements have %d components; expected (x, y) (sample weights are not supported)",
      what, #e), 0)
  end
  if need_y and y == nil then
    error(what .. ": the dataset's elements must be (x, y) pairs, e.g. Dataset.from_tensor_slices(x, y):batch(32)", 0)
  end
  return x, y
end

local function check_dataset_opts(what, y, opts)
  if y ~= nil then
    error(what .. ": y must not be given when x is a Dataset (its elements are (x, y) batches)", 3)
  end
  if opts.batch_size ~= nil then
    error(what .. ": batch_size must not be given with a Dataset; batch the dataset itself: ds:batch(n)", 3)
  end
  if opts.validation_split ~= nil and opts.validation_split ~= 0 then
    error(what .. ": validation_split is not supported with a Dataset; give validation_data (a Dataset)", 3)
  end
end

-- Steps of one pass over ds (nil when unknown); an infinite ds needs `given`.
local function dataset_steps(ds, given, what, optname)
  local c = ds.card
  if given then return (c >= 0) and math.min(c, given) or given end
  if c == -1 then
    error(string.format("%s: the dataset is infinite (repeat_ with no count); give %s", what, optname), 3)
  end
  if c >= 0 then return c end
  return nil
end

-- A random permutation of 1..n (Fisher-Yates on mg.random draws).
local function permutation(n)
  local u = mg.random.uniform({ n }, 0, 1, "float64"):totable()
  local p = {}
  for i = 1, n do p[i] = i end
  for i = n, 2, -1 do
    local j = math.floor(u[i] * i) + 1
    if j > i then j = i end
    p[i], p[j] = p[j], p[i]
  end
  return mg.tensor(p, "int64")
end

-- ---- compile ------------------------------------------------------------------------------

-- model:compile{optimizer=, loss=, metrics={...}, loss_weights=, run_eagerly=false}
function Model:compile(opts)
  opts = opts or {}
  rawset(self, "_compile_args", opts)   -- kept for model:save (nn/saving.lua)
  local optim = require("moongrad.optim")
  rawset(self, "optimizer", optim.get(opts.optimizer or "rmsprop"))
  local noutputs = self.outputs and #self.outputs or 1
  local loss_fns = {}
  if is_list(opts.loss) and not opts.loss.class_name then
    for i = 1, noutputs do loss_fns[i] = losses.get(opts.loss[i]) end
  elseif opts.loss ~= nil then
    local l = losses.get(opts.loss)
    for i = 1, noutputs do loss_fns[i] = l end
  end
  rawset(self, "_loss_fns", loss_fns)
  rawset(self, "_loss_weights", opts.loss_weights)
  rawset(self, "loss", opts.loss)
  local ms = {}
  local specs = opts.metrics or {}
  if not is_list(specs) or specs.class_name then specs = { specs } end
  local out_names = noutputs > 1 and self.output_names or nil
  for o = 1, noutputs do
    for _, spec in ipairs(specs) do
      local m = metrics_mod.get(spec, loss_fns[o])
      local name = m.name
      if out_names then
        name = out_names[o] .. "_" .. name
        if o > 1 then m = metrics_mod.get(spec, loss_fns[o]) end
      end
      ms[#ms + 1] = { metric = m, output = o, name = name }
    end
  end
  rawset(self, "_metrics", ms)
  rawset(self, "_loss_tracker", metrics_mod.Mean { name = "loss" })
  rawset(self, "run_eagerly", opts.run_eagerly and true or false)
  rawset(self, "_train_fn", nil)
  rawset(self, "_test_fn", nil)
  rawset(self, "_predict_fn", nil)
  rawset(self, "compiled", true)
end

-- model.metrics_names: "loss" then the compiled metrics' names.
Model.getters.metrics_names = function(self)
  local names = { "loss" }
  for _, m in ipairs(rawget(self, "_metrics") or {}) do names[#names + 1] = m.name end
  return names
end

-- model.metrics: the loss tracker and the compiled metrics.
Model.getters.metrics = function(self)
  local out = {}
  local lt = rawget(self, "_loss_tracker")
  if lt then out[1] = lt end
  for _, m in ipairs(rawget(self, "_metrics") or {}) do out[#out + 1] = m.metric end
  return out
end

local function check_compiled(self, what)
  if not rawget(self, "compiled") then
    error(string.format("%s: model %s is not compiled; call model:compile{optimizer=, loss=} first", what, self.name), 3)
  end
end

-- ---- the steps -------------------------------------------------------------------------------

-- The training loss: compiled losses (weighted per output) plus the layers' regularization.
function Model:compute_loss(y, y_pred)
  local fns = rawget(self, "_loss_fns")
  if not fns or not fns[1] then
    error("model " .. self.name .. ": no loss was given to compile", 0)
  end
  local total
  local multi = #fns > 1
  local weights = rawget(self, "_loss_weights")
  for i, fn in ipairs(fns) do
    local yt = multi and y[i] or y
    local yp = multi and y_pred[i] or y_pred
    local l = fn(yt, yp)
    if weights and weights[i] then l = l * weights[i] end
    total = total and total + l or l
  end
  for _, r in ipairs(self.losses) do total = total + r end
  return total
end

local function update_metrics(self, y, y_pred, loss)
  rawget(self, "_loss_tracker"):update_state(loss)
  local multi = #rawget(self, "_loss_fns") > 1
  for _, m in ipairs(rawget(self, "_metrics")) do
    local o = m.output
    m.metric:update_state(multi and y[o] or y, multi and y_pred[o] or y_pred)
  end
end

function Model:train_step(x, y)
  local vars = rawget(self, "_train_vars")
  local tape = mg.GradientTape()
  local y_pred = self(x, true)
  local loss = self:compute_loss(y, y_pred)
  tape:stop()
  local grads = tape:gradient(loss, vars)
  self.optimizer:apply_gradients(grads, vars)
  update_metrics(self, y, y_pred, loss)
  return loss
end

function Model:test_step(x, y)
  local y_pred = self(x, false)
  local loss = self:compute_loss(y, y_pred)
  update_metrics(self, y, y_pred, loss)
  return loss
end

function Model:predict_step(x) return self(x, false) end

-- The step as a staged function; an error while tracing it gets a hint
-- (Lua code that needs tensor values cannot be staged).
local function stage(self, kind, fn)
  if rawget(self, "run_eagerly") then return fn end
  local staged = mg.func(fn, { name = self.name .. "." .. kind, autograph = false })
  return function(...)
    local ok, a = pcall(staged, ...)
    if ok then return a end
    local msg = tostring(a)
    if msg:find("symbolic", 1, true) or msg:find("staged", 1, true) or msg:find("trac", 1, true) then
      msg = msg .. "\n(model " .. self.name .. ": the " .. kind .. " runs staged with mg.func; "
        .. "compile{run_eagerly=true} runs it eagerly, for debugging)"
    end
    error(msg, 0)
  end, staged
end

-- Builds the model (one eager forward pass on a couple of rows when needed)
-- and the optimizer's slots, before anything is staged.
local function ensure_built(self, x)
  if not rawget(self, "_called") then
    local n = num_samples(x, "x")
    local probe = rows(x, 1, math.min(n, 2))
    local prev = util.context.training
    util.context.training = false
    self(probe, false)
    util.context.training = prev
    rawset(self, "_called", true)
  end
end

local function same_list(a, b)
  if not a or #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

function Model:make_train_function()
  local vars = self.trainable_weights
  if not same_list(rawget(self, "_train_vars"), vars) or not rawget(self, "_train_fn") then
    rawset(self, "_train_vars", vars)
    self.optimizer:build(vars)
    local fn, staged = stage(self, "train_step", function(x, y) return self:train_step(x, y) end)
    rawset(self, "_train_fn", fn)
    rawset(self, "train_function", staged)
  end
  return rawget(self, "_train_fn")
end

function Model:make_test_function()
  if not rawget(self, "_test_fn") then
    local fn, staged = stage(self, "test_step", function(x, y) return self:test_step(x, y) end)
    rawset(self, "_test_fn", fn)
    rawset(self, "test_function", staged)
  end
  return rawget(self, "_test_fn")
end

function Model:make_predict_function()
  if not rawget(self, "_predict_fn") then
    local fn, staged = stage(self, "predict_step", function(x) return self:predict_step(x) end)
    rawset(self, "_predict_fn", fn)
    rawset(self, "predict_function", staged)
  end
  return rawget(self, "_predict_fn")
end

-- ---- metric values ----------------------------------------------------------------------------

function Model:reset_metrics()
  for _, m in ipairs(self.metrics) do m:reset_state() end
end

-- {loss=, accuracy=, ...} as Lua numbers.
function Model:get_metrics_result()
  local out = {}
  local lt = rawget(self, "_loss_tracker")
  if lt then out.loss = lt:result():item() end
  for _, m in ipairs(rawget(self, "_metrics") or {}) do out[m.name] = m.metric:result():item() end
  return out
end

-- Logs computed on first access (progress bars read them only when they draw).
local function lazy_logs(self)
  local cache
  return setmetatable({}, { __index = function(_, k)
    cache = cache or self:get_metrics_result()
    return cache[k]
  end })
end

local function results(self, logs, return_dict)
  if return_dict then return logs end
  local out = {}
  for i, name in ipairs(self.metrics_names) do out[i] = logs[name] end
  return unpack(out, 1, #out)
end

-- ---- batch sources ------------------------------------------------------------------------------
-- fit, evaluate and predict each run one loop over a batch source, whether
-- the data are tensors or an mg.data Dataset: {probe = an x to build the model
-- with, steps = batches a pass (nil when unknown), pass(epoch) -> an iterator
-- of (x, y) batches for one pass}.

-- Batches of `batch` of the n rows of x (and y, when given): views in order,
-- or with shuffle one `take` of rows permuted afresh each pass.
local function tensor_source(x, y, n, batch, max_steps, shuffle)
  local steps = math.ceil(n / batch)
  if max_steps then steps = math.min(steps, max_steps) end
  local function pass()
    local perm = shuffle and permutation(n) or nil
    local step = 0
    return function()
      if step >= steps then return nil end
      step = step + 1
      local i, j = (step - 1) * batch + 1, math.min(step * batch, n)
      if perm then
        local idx = perm:slice { { i, j } }
        return take_rows(x, idx), y and take_rows(y, idx)
      end
      return rows(x, i, j), y and rows(y, i, j)
    end
  end
  return { probe = x, steps = steps, pass = pass }
end

-- The elements of ds, at most `limit` a pass (given as option `optname`). The
-- element read here builds the model and starts the first pass. Each later
-- pass iterates ds afresh (so a shuffle in it reshuffles), or, with a limit,
-- continues one iterator kept across passes (a new one once it has run out:
-- a pass then ends early).
local function dataset_source(ds, what, need_y, limit, optname)
  local steps = dataset_steps(ds, limit, what, optname)
  local it = ds:_iter()
  local pending = it()
  if pending == nil then error(what .. ": the dataset is empty", 3) end
  local function pass(epoch)
    if not pending and (not limit or it == nil) then it = ds:_iter() end
    local step = 0
    return function()
      if limit and step >= limit then return nil end
      local e = pending or it()
      pending = nil
      if e == nil then
        it = nil
        if step == 0 then
          error(string.format("%s: epoch %s had no batches (the dataset ran out)", what, tostring(epoch)), 0)
        end
        return nil
      end
      step = step + 1
      return split_element(e, what, need_y)
    end
  end
  return { probe = (split_element(pending, what, need_y)), steps = steps, pass = pass }
end

local function verbosity(opts)
  local v = opts.verbose
  if v == nil or v == "auto" then return 1 end
  return v
end

-- ---- fit ---------------------------------------------------------------------------------------

local FIT_OPTIONS = util.set { "x", "y", "epochs", "batch_size", "verbose", "callbacks", "validation_split",
  "validation_data", "shuffle", "initial_epoch", "steps_per_epoch", "validation_batch_size", "validation_freq" }

local function parse_call(x, y, opts, allowed, what)
  if is_dataset(x) and is_list(y) and opts == nil and (next(y) == nil or not mg.is_tensor(y[1])) then
    opts, y = y, nil   -- fit(ds, {epochs=2})
  end
  if is_list(x) and (x.x ~= nil or x.epochs ~= nil or x.batch_size ~= nil) and y == nil and opts == nil then
    opts = x
    x, y = opts.x, opts.y
  end
  opts = opts or {}
  for k in pairs(opts) do
    if not allowed[k] then
      local names = {}
      for a in pairs(allowed) do names[#names + 1] = a end
      table.sort(names)
      error(string.format("%s: unknown option '%s' (expected one of: %s)", what, tostring(k),
        table.concat(names, ", ")), 3)
    end
  end
  return x, y, opts
end

-- The loop of fit over a batch source; val (a Dataset or {x, y}) is evaluated
-- every validation_freq epochs.
local function fit_loop(self, src, val, opts)
  local epochs = opts.epochs or 1
  local verbose = verbosity(opts)
  ensure_built(self, src.probe)
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
    local step = 0
    for xb, yb in src.pass(epoch) do
      step = step + 1
      cbs:on_train_batch_begin(step, {})
      train_fn(xb, yb)
      cbs:on_train_batch_end(step, lazy_logs(self))
      if self.stop_training then break end
    end
    epoch_logs = self:get_metrics_result()
    if val ~= nil and epoch % (opts.validation_freq or 1) == 0 then
      local vopts = { verbose = 0, return_dict = true }
      local vl
      if is_dataset(val) then
        vl = self:evaluate(val, nil, vopts)
      else
        vopts.batch_size = opts.validation_batch_size or opts.batch_size or 32
        vl = self:evaluate(val[1] or val.x, val[2] or val.y, vopts)
      end
      for k, v in pairs(vl) do epoch_logs["val_" .. k] = v end
    end
    cbs:on_epoch_end(epoch, epoch_logs)
    if self.stop_training then break end
  end
  cbs:on_train_end(epoch_logs)
  return history
end

-- model:fit(x, y, {epochs=1, batch_size=32, verbose=1, shuffle=true,
-- validation_split=, validation_data={x, y} or a Dataset, callbacks={...}, initial_epoch=0})
-- -> a History (history.history.loss[epoch], ...).
-- model:fit(ds, {epochs=, steps_per_epoch=, validation_data=, ...}) trains on a
-- Dataset of (x, y) batches (see dataset_source for how epochs iterate it).
function Model:fit(x, y, opts)
  x, y, opts = parse_call(x, y, opts, FIT_OPTIONS, "fit")
  check_compiled(self, "fit")
  if is_dataset(x) then
    check_dataset_opts("fit", y, opts)
    local src = dataset_source(x, "fit", true, opts.steps_per_epoch, "steps_per_epoch")
    return fit_loop(self, src, opts.validation_data, opts)
  end
  if y == nil then error("fit: y (the targets) is missing", 2) end
  local n = check_same_count(x, y)
  local val = opts.validation_data
  if val == nil and opts.validation_split and opts.validation_split > 0 then
    local nv = math.floor(n * opts.validation_split)
    if nv < 1 or nv >= n then
      error(string.format("fit: validation_split=%s leaves no training or no validation samples out of %d",
        tostring(opts.validation_split), n), 2)
    end
    val = { rows(x, n - nv + 1, n), rows(y, n - nv + 1, n) }
    x, y = rows(x, 1, n - nv), rows(y, 1, n - nv)
    n = n - nv
  end
  local src = tensor_source(x, y, n, opts.batch_size or 32, opts.steps_per_epoch, opts.shuffle ~= false)
  return fit_loop(self, src, val, opts)
end

-- ---- evaluate / predict ------------------------------------------------------------------------------

local EVAL_OPTIONS = util.set { "x", "y", "batch_size", "verbose", "return_dict", "callbacks", "steps" }

-- model:evaluate(x, y, {batch_size=32, verbose=1, return_dict=false}) ->
-- loss, metric... (or a table by name with return_dict).
-- model:evaluate(ds, {steps=, verbose=, return_dict=}): the metrics over a
-- Dataset (or its first `steps` batches).
function Model:evaluate(x, y, opts)
  x, y, opts = parse_call(x, y, opts, EVAL_OPTIONS, "evaluate")
  check_compiled(self, "evaluate")
  local src
  if is_dataset(x) then
    check_dataset_opts("evaluate", y, opts)
    src = dataset_source(x, "evaluate", true, opts.steps, "steps")
  else
    if y == nil then error("evaluate: y (the targets) is missing", 2) end
    src = tensor_source(x, y, check_same_count(x, y), opts.batch_size or 32, opts.steps, false)
  end
  local verbose = verbosity(opts)
  ensure_built(self, src.probe)
  local fn = self:make_test_function()
  self:reset_metrics()
  local bar = verbose ~= 0 and progress.Progbar(src.steps, { verbose = verbose }) or nil
  local cbs = callbacks.CallbackList(opts.callbacks or {}, self, { steps = src.steps, verbose = verbose })
  cbs:on_test_begin({})
  local step = 0
  for xb, yb in src.pass() do
    step = step + 1
    cbs:on_test_batch_begin(step, {})
    fn(xb, yb)
    cbs:on_test_batch_end(step, lazy_logs(self))
    if bar and bar:wants(step) then
      bar:update(step, callbacks._ordered_logs(self, self:get_metrics_result(), false))
    end
  end
  local logs = self:get_metrics_result()
  cbs:on_test_end(logs)
  return results(self, logs, opts.return_dict)
end

local PREDICT_OPTIONS = util.set { "x", "batch_size", "verbose", "callbacks", "steps" }

local function concat_outputs(parts)
  local f = parts[1]
  if mg.is_tensor(f) then
    if #parts == 1 then return f end
    return mg.concat(parts, 1)
  end
  local out = {}
  for k = 1, #f do
    local list = {}
    for i, p in ipairs(parts) do list[i] = p[k] end
    out[k] = #list == 1 and list[1] or mg.concat(list, 1)
  end
  return out
end

-- model:predict(x, {batch_size=32, verbose=0}): the outputs for every sample.
-- model:predict(ds, {steps=}): the outputs for every element's x (elements may be x or (x, y)).
function Model:predict(x, opts)
  if is_list(x) and x.x ~= nil and opts == nil then opts = x; x = opts.x end
  opts = opts or {}
  for k in pairs(opts) do
    if not PREDICT_OPTIONS[k] then error("predict: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local src
  if is_dataset(x) then
    if opts.batch_size ~= nil then
      error("predict: batch_size must not be given with a Dataset; batch the dataset itself: ds:batch(n)", 2)
    end
    src = dataset_source(x, "predict", false, opts.steps, "steps")
  else
    src = tensor_source(x, nil, num_samples(x, "x"), opts.batch_size or 32, opts.steps, false)
  end
  ensure_built(self, src.probe)
  local fn = self:make_predict_function()
  local verbose = opts.verbose or 0
  local bar = verbose ~= 0 and progress.Progbar(src.steps, { verbose = verbose }) or nil
  local parts = {}
  for xb in src.pass() do
    parts[#parts + 1] = fn(xb)
    if bar and bar:wants(#parts) then bar:update(#parts, {}) end
  end
  return concat_outputs(parts)
end

-- ---- single batches ------------------------------------------------------------------------------------

-- model:train_on_batch(x, y, {reset_metrics=true, return_dict=false}) -> loss, metric...
function Model:train_on_batch(x, y, opts)
  check_compiled(self, "train_on_batch")
  opts = opts or {}
  check_same_count(x, y)
  ensure_built(self, x)
  local fn = self:make_train_function()
  if opts.reset_metrics ~= false then self:reset_metrics() end
  fn(x, y)
  return results(self, self:get_metrics_result(), opts.return_dict)
end

function Model:test_on_batch(x, y, opts)
  check_compiled(self, "test_on_batch")
  opts = opts or {}
  check_same_count(x, y)
  ensure_built(self, x)
  local fn = self:make_test_function()
  if opts.reset_metrics ~= false then self:reset_metrics() end
  fn(x, y)
  return results(self, self:get_metrics_result(), opts.return_dict)
end

function Model:predict_on_batch(x)
  ensure_built(self, x)
  return self:make_predict_function()(x)
end

return Model
