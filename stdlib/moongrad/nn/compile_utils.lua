-- moongrad.nn.compile_utils: what compile{loss=, loss_weights=, metrics=,
-- weighted_metrics=} means for a model's outputs, after Keras 3's
-- CompileLoss and CompileMetrics.
--
-- The settings are checked when compile is called and resolved against the
-- outputs once their number and names are known (at compile for functional
-- and built Sequential models, on the first batch for subclassed ones):
--   loss          one loss for every output, a list in output order, or a
--                 table keyed by output name (outputs left out have none);
--   loss_weights  a number (one output), a list, or a table by output name;
--   metrics       for one output a list of metrics; for several, a list
--                 with one entry per output (a metric or a list of them) or
--                 a table keyed by output name; weighted_metrics alike.
-- With several losses each output's loss is also tracked, as
-- "<output>_loss" (unweighted by loss_weights, as Keras records it);
-- metrics of an output are reported as "<output>_<name>" when the model has
-- several outputs. `metrics` ignore sample weights, `weighted_metrics` use
-- them (Keras's split); a weighted metric whose name is taken becomes
-- "weighted_<name>". Targets and sample weights come as a tensor (one
-- output; a sample-weight tensor applies to every output), a list in output
-- order or a table keyed by output name. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local class = require("moongrad.nn.class")
local options = require("moongrad.options")
local losses = require("moongrad.losses")
local metrics_mod = require("moongrad.metrics")

local M = {}

local raise, show = options.raise, options.show

local function is_plain(v) return type(v) == "table" and getmetatable(v) == nil and not mg.is_tensor(v) end

-- a loss or metric given as one value (a name, an object, a function or a {class_name=} table)
local function is_single(v) return not is_plain(v) or v.class_name ~= nil end

local function has_string_keys(t)
  for k in pairs(t) do if type(k) ~= "number" then return true end end
  return false
end

local State = class.Object:extend("CompileState")
M.State = State

-- State(args): compile's loss/metric settings, not yet tied to outputs.
function State:__init(args)
  self.args = args
  self.built = false
  for _, k in ipairs({ "metrics", "weighted_metrics" }) do
    local v = args[k]
    if v ~= nil and not is_plain(v) and type(v) ~= "string" and type(v) ~= "function"
        and not class.isinstance(v, metrics_mod.Metric) then
      raise(string.format("compile: %s must be a metric, a list of metrics or a table keyed by output name, got %s",
        k, show(v)))
    end
  end
  local lw = args.loss_weights
  if lw ~= nil and type(lw) ~= "number" and not is_plain(lw) then
    raise("compile: loss_weights must be a number, a list or a table keyed by output name, got " .. show(lw))
  end
end

-- Spreads a setting over the outputs: `per_output(v)` returns a list of
-- length n (nil entries where an output gets nothing). `single` says
-- whether v is one value (then `broadcast` decides: all outputs, or only
-- allowed with one output).
local function spread(what, v, n, names, single, broadcast)
  local out = {}
  if v == nil then return out end
  if single then
    if n > 1 and not broadcast then
      raise(string.format("compile: %s for a model with %d outputs must be a list with one entry per output or a "
        .. "table keyed by output name (%s), got %s", what, n, table.concat(names, ", "), show(v)))
    end
    for i = 1, n do out[i] = v end
    return out
  end
  if has_string_keys(v) then
    local index = {}
    for i, name in ipairs(names) do index[name] = i end
    for k, item in pairs(v) do
      if type(k) ~= "string" or not index[k] then
        raise(string.format("compile: %s has an entry for %s, which is not an output of the model (outputs: %s)",
          what, type(k) == "string" and ("'" .. k .. "'") or show(k), table.concat(names, ", ")))
      end
      out[index[k]] = item
    end
    return out
  end
  if #v ~= n then
    raise(string.format("compile: %s is a list of %d entries but the model has %d output%s (%s); give one entry per "
      .. "output, or a table keyed by output name", what, #v, n, n == 1 and "" or "s", table.concat(names, ", ")))
  end
  for i = 1, n do out[i] = v[i] end
  return out
end

-- Ties the settings to n outputs named `names` (a list).
function State:build(n, names)
  local args = self.args
  self.n, self.names = n, names
  local idx = {}
  for i, name in ipairs(names) do idx[name] = i end
  self.index = idx
  -- losses
  local loss_specs = spread("loss", args.loss, n, names, args.loss == nil or is_single(args.loss), true)
  self.losses, self.nlosses = {}, 0
  for i = 1, n do
    if loss_specs[i] ~= nil and loss_specs[i] ~= false then
      local ok, l = pcall(losses.get, loss_specs[i])
      if not ok then raise("compile: " .. tostring(l):gsub("^[^:\n]*:%d+: ", "")) end
      self.losses[i] = l
      self.nlosses = self.nlosses + 1
    end
  end
  local lw = args.loss_weights
  self.loss_weights = spread("loss_weights", lw, n, names, type(lw) == "number", false)
  for i = 1, n do
    local w = self.loss_weights[i]
    if w ~= nil and (type(w) ~= "number" or w ~= w) then
      raise(string.format("compile: loss_weights for output %s must be a number, got %s", names[i], show(w)))
    end
  end
  -- per-output loss trackers
  self.trackers = {}
  if self.nlosses > 1 then
    for i = 1, n do
      if self.losses[i] then self.trackers[i] = metrics_mod.Mean { name = names[i] .. "_loss" } end
    end
  end
  -- metrics
  self.entries = {}
  local taken, used = { loss = true }, {}
  for i = 1, n do if self.trackers[i] then taken[names[i] .. "_loss"] = true end end
  for _, kind in ipairs({ "metrics", "weighted_metrics" }) do
    local v = args[kind]
    local per
    if v == nil then
      per = {}
    elseif n == 1 then
      -- one output: every metric given applies to it (a table keyed by its name too)
      local list = {}
      if is_single(v) then
        list = { v }
      elseif has_string_keys(v) then
        for k, item in pairs(v) do
          if k ~= names[1] then
            raise(string.format("compile: %s has an entry for '%s', which is not an output of the model (output: %s)",
              kind, tostring(k), names[1]))
          end
          if is_single(item) then list[#list + 1] = item else for _, m in ipairs(item) do list[#list + 1] = m end end
        end
      else
        list = v
      end
      per = { list }
    else
      per = spread(kind, v, n, names, is_single(v), false)
    end
    for o = 1, n do
      local specs = per[o]
      if specs == false then specs = nil end
      if specs ~= nil and is_single(specs) then specs = { specs } end
      for _, spec in ipairs(specs or {}) do
        local ok, m = pcall(metrics_mod.get, spec, self.losses[o])
        if not ok then raise("compile: " .. tostring(m):gsub("^[^:\n]*:%d+: ", "")) end
        if used[m] then
          raise(string.format("compile: the metric object %s is given twice; give each output (and metrics and "
            .. "weighted_metrics) its own", m.name))
        end
        used[m] = true
        local base = type(spec) == "string" and spec or m.name
        local key = n > 1 and (names[o] .. "_" .. base) or base
        if taken[key] then
          if kind == "weighted_metrics" then
            key = n > 1 and (names[o] .. "_weighted_" .. base) or ("weighted_" .. base)
          end
          local k, try = 1, key
          while taken[try] do try = key .. "_" .. k; k = k + 1 end
          key = try
        end
        taken[key] = true
        self.entries[#self.entries + 1] = { metric = m, output = o, key = key, weighted = kind == "weighted_metrics" }
      end
    end
  end
  self.built = true
  return self
end

-- The metric objects the state owns (per-output loss trackers, then the
-- compiled metrics) and, for each, the name its result is reported under.
function State:metric_list()
  local list, keys = {}, {}
  if not self.built then return list, keys end
  for i = 1, self.n do
    local t = self.trackers[i]
    if t then list[#list + 1] = t; keys[t] = t.name end
  end
  for _, e in ipairs(self.entries) do list[#list + 1] = e.metric; keys[e.metric] = e.key end
  return list, keys
end

-- A structure given per output (targets, predictions, sample weights) as
-- a list of n entries. `shared_tensor`: one tensor applies to every output
-- (sample weights); otherwise one tensor is the single output's.
function State:per_output(v, what, shared_tensor)
  local n, out = self.n, {}
  if v == nil then return out end
  if not is_plain(v) then
    if n == 1 or shared_tensor then
      for i = 1, n do out[i] = v end
      return out
    end
    raise(string.format("%s must be a list with one entry per output or a table keyed by output name (%s) for a "
      .. "model with %d outputs, got %s", what, table.concat(self.names, ", "), n, show(v)))
  end
  if has_string_keys(v) then
    for k, item in pairs(v) do
      local i = type(k) == "string" and self.index[k]
      if not i then
        raise(string.format("%s has an entry for %s, which is not an output of the model (outputs: %s)", what,
          type(k) == "string" and ("'" .. k .. "'") or show(k), table.concat(self.names, ", ")))
      end
      out[i] = item
    end
    return out
  end
  if #v ~= n then
    raise(string.format("%s is a list of %d entries but the model has %d output%s (%s)", what, #v, n,
      n == 1 and "" or "s", table.concat(self.names, ", ")))
  end
  for i = 1, n do out[i] = v[i] end
  return out
end

local function batch_of(t)
  local b = t.shape[1]
  if require("moongrad.core").is_unknown_size(b) then return mg.sum(mg.ones({ b }, "float32")) end
  return b
end

-- The compiled loss of a batch: the sum over outputs of loss_weight *
-- loss(y_true, y_pred, sample_weight); each output's unweighted loss goes
-- to its tracker. nil when no output has a loss.
function State:loss(y, y_pred, sample_weight)
  if self.nlosses == 0 then return nil end
  local ys = self:per_output(y, "y")
  local ps = self:per_output(y_pred, "the model's output")
  local ws = self:per_output(sample_weight, "sample_weight", true)
  local total
  for i = 1, self.n do
    local fn = self.losses[i]
    if fn then
      if ys[i] == nil then
        raise(string.format("no target (y) for output %s, which has a loss", self.names[i]))
      end
      local value = fn(ys[i], ps[i], ws[i])
      if self.trackers[i] then self.trackers[i]:update_state(value, batch_of(ps[i])) end
      local w = self.loss_weights[i]
      if w ~= nil then value = value * w end
      total = total and total + value or value
    end
  end
  return total
end

-- Updates the compiled metrics (weighted ones with the sample weights).
function State:update_metrics(y, y_pred, sample_weight)
  if #self.entries == 0 then return end
  local ys = self:per_output(y, "y")
  local ps = self:per_output(y_pred, "the model's output")
  local ws = self:per_output(sample_weight, "sample_weight", true)
  for _, e in ipairs(self.entries) do
    local o = e.output
    if ys[o] == nil then
      raise(string.format("no target (y) for output %s, which has the metric %s", self.names[o], e.key))
    end
    if e.weighted then
      e.metric:update_state(ys[o], ps[o], ws[o])
    else
      e.metric:update_state(ys[o], ps[o])
    end
  end
end

return M
