-- moongrad.nn.saving: model configs (get_config/from_config, to_json,
-- model_from_json, clone_model, register_layer), weight files and whole
-- saved models.
--
-- Weight names are paths, stable across processes: the root's class in
-- snake case, then one segment per nesting level (the child's class in
-- snake case, numbered within its parent as Keras 3 does — "dense",
-- "dense_1" — for Sequential and functional models; the field it is
-- assigned to for subclassed ones), then the weight's own name:
-- "sequential/dense_1/kernel", "my_net/encoder/dense/bias". Layer state
-- that is not a weight (a Dropout's seed counter) is saved the same way.
--
-- model:save(dir) writes a directory (config.json, compile.json,
-- model.weights.safetensors, optimizer.safetensors, training_state.json)
-- into "<dir>.tmp-<id>" first, every file written atomically, then swaps
-- it in with renames; killed at any point, either the old directory or the
-- new one is complete (see doc/saving.md). nn.load_model(dir) rebuilds,
-- recompiles and restores the optimizer and the random generator, so
-- training resumes exactly. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local util = require("moongrad.nn.util")
local json = require("moongrad.nn.json")
local class = require("moongrad.nn.class")
local Layer = require("moongrad.nn.layer")
local Model = require("moongrad.nn.model")
local fs = require("moongrad.fs")
local options = require("moongrad.options")

local M = {}

-- ---- configs ----------------------------------------------------------------------------

-- {class_name=, config=} for a layer or model.
function M.serialize(layer)
  return { class_name = layer.class_name, config = layer:get_config() }
end

-- register_layer(name, class): makes a custom layer (or model) class
-- loadable by model_from_json / load_model under `name`.
function M.register_layer(name, cls)
  if type(name) ~= "string" or name == "" then
    error("register_layer: expected a class name (string) first, got " .. type(name), 2)
  end
  local c = type(cls) == "table" and cls or nil
  while c and c ~= Layer do c = rawget(c, "super") end
  if not c then
    error("register_layer: '" .. name .. "' must be a layer class (made with nn.Layer:extend or nn.Model:extend)", 2)
  end
  util.registry[name] = cls
  return cls
end

-- A layer or model from {class_name=, config=}.
function M.deserialize(spec)
  if type(spec) ~= "table" or type(spec.class_name) ~= "string" then
    error("deserialize: expected {class_name=, config=}", 2)
  end
  local cls = util.registry[spec.class_name]
  if not cls then
    error(string.format("deserialize: unknown layer class '%s'; make it loadable with "
      .. "mg.nn.register_layer(\"%s\", TheClass) (or define it with nn.Layer:extend(\"%s\")) before loading",
      spec.class_name, spec.class_name, spec.class_name), 2)
  end
  return cls.from_config(cls, spec.config or {}, M.deserialize)
end

local function config_of(model, what)
  local ok, cfg = pcall(model.get_config, model)
  if not ok then error(what .. ": " .. tostring(cfg):gsub("^[^:\n]*:%d+: ", ""), 0) end
  return cfg
end

--- model:to_json(indent) -> the model's architecture as JSON text (mg.nn.model_from_json rebuilds it).
function Model:to_json(indent)
  local ok, cfg = pcall(self.get_config, self)
  if not ok then error(tostring(cfg):gsub("^[^:\n]*:%d+: ", ""), 2) end
  return json.encode({ class_name = self.class_name, config = cfg, backend = "moongrad",
    moongrad_version = mg.version }, indent)
end

--- mg.nn.model_from_json(text) -> a new (unbuilt-weights) model from model:to_json()'s text.
function M.model_from_json(s)
  if type(s) ~= "string" then error("model_from_json: expected a JSON string, got " .. type(s), 2) end
  local ok, spec = pcall(json.decode, s)
  if not ok then error("model_from_json: the text is not valid JSON (" .. tostring(spec) .. ")", 2) end
  local ok2, model = pcall(M.deserialize, spec)
  if not ok2 then error("model_from_json: " .. tostring(model):gsub("^[^:\n]*:%d+: ", ""), 2) end
  return model
end

--- mg.nn.model_from_config(config) -> a new model from a {class_name=, config=} table (serialize's form).
function M.model_from_config(spec) return M.deserialize(util.deep_copy(spec)) end

-- clone_model(model): the same architecture with new weights (freshly
-- initialised), for Sequential and functional models.
function M.clone_model(model)
  local ok, cfg = pcall(model.get_config, model)
  if not ok or (model.class_name ~= "Sequential" and model.class_name ~= "Functional") then
    error(string.format("clone_model: model %s is a subclassed model (%s); only Sequential and functional models "
      .. "can be cloned (their layers are known); build a new instance of the class instead", model.name,
      model.class_name), 2)
  end
  return M.deserialize({ class_name = model.class_name, config = cfg })
end

-- ---- files ------------------------------------------------------------------------------

-- The tensor files are mg.save / mg.load (safetensors, written atomically);
-- text files go through mg.io.write_file_atomic.
local function save_tensors(path, tensors, meta) return mg.save(path, tensors, meta) end
local function load_tensors(path) return mg.load(path) end
M.save_tensors, M.load_tensors = save_tensors, load_tensors

-- A text file's contents, or nil when nothing is at path (a file that is there
-- but cannot be read is an error naming why, not a missing file).
local function read_text(path)
  if not fs.exists(path) then return nil end
  return mg.io.read_file(path)
end
M.read_text = read_text

local function write_text(path, s) return mg.io.write_file_atomic(path, s) end
M.write_text = write_text

-- Directories go through mg.io (core/fs.c: POSIX calls, no shell).
local function is_dir(path) return fs.isdir(path) end
M.is_dir = is_dir

local function exists(path) return fs.exists(path) end
M.exists = exists

-- Creates one directory (an existing directory is fine); errors start with `what`.
local function mkdir(path, what, parents)
  local ok, err = pcall(fs.mkdir, path, { parents = parents or false })
  if not ok then error(what .. ": " .. tostring(err):gsub("^[^:\n]*:%d+: ", ""), 0) end
end
M.mkdir = mkdir

-- Creates a directory and its missing parents (mkdir -p).
function M.mkdirs(path, what) mkdir(path, what, true) end

-- The entries of a directory (names, sorted), or {} when it cannot be read.
local function list_dir(path)
  local ok, names = pcall(fs.listdir, path)
  return ok and names or {}
end
M.list_dir = list_dir

-- Removes a saved-model directory and everything in it, best effort: it runs
-- after a failure or once a save is complete, when there is nothing better to
-- do about an error than leave the directory for the next save to tidy up.
local function remove_dir(path) pcall(fs.remove_tree, path) end
M.remove_dir = remove_dir

-- rename(2) (atomic), then an fsync of the directory; nil and the message on failure.
local function rename(from, to)
  local ok, err = pcall(fs.rename, from, to)
  if ok then return true end
  return nil, (tostring(err):gsub("^[^:\n]*:%d+: ", ""))
end

-- A suffix no other save in flight uses (the table address differs per call and per process).
local function unique_suffix()
  return string.format("%08x%s", os.time(), (tostring({}):gsub("^table: *0?x?", "")))
end
M.unique_suffix = unique_suffix

-- ---- weight paths -------------------------------------------------------------------------

local function is_container(layer)
  return rawget(layer, "_layers_list") ~= nil or layer.class_name == "Functional" or
    class.isinstance(layer, Layer.Functional or {})
end

-- The children of a layer as {layer, segment}: numbered class names in a
-- Sequential/functional model, field paths in a subclassed one.
local function children(layer)
  local out = {}
  if is_container(layer) then
    local used = {}
    for _, l in ipairs(layer:_sublayers()) do
      local base = util.snake_case(l.class_name)
      local n = used[base]
      used[base] = (n or 0) + 1
      out[#out + 1] = { l, n and (base .. "_" .. n) or base }
    end
    return out
  end
  local seen = {}
  local function walk(v, path, depth)
    if Layer.is_layer(v) then
      if not seen[v] then seen[v] = true; out[#out + 1] = { v, path } end
    elseif depth < 3 and type(v) == "table" and getmetatable(v) == nil then
      for i = 1, #v do walk(v[i], path .. "/" .. i, depth + 1) end
      local keys = {}
      for k in pairs(v) do if type(k) ~= "number" then keys[#keys + 1] = k end end
      table.sort(keys)
      for _, k in ipairs(keys) do walk(v[k], path .. "/" .. k, depth + 1) end
    end
  end
  for _, k in ipairs(rawget(layer, "_tracked_keys") or {}) do walk(rawget(layer, k), k, 0) end
  return out
end

-- var -> path and the state variables' {path, var}, walking the layer tree.
local function walk_paths(root)
  local paths, layer_of, state = {}, {}, {}
  local seen_layer = {}
  local function visit(layer, prefix)
    if seen_layer[layer] then return end
    seen_layer[layer] = true
    local used = {}
    local function add(v, short)
      if paths[v] then return end
      local key = short
      if used[key] then key = key .. "_" .. used[key] end
      used[short] = (used[short] or 0) + 1
      paths[v] = prefix .. "/" .. key
      layer_of[v] = layer
    end
    local lname = layer.name .. "/"
    for _, v in ipairs(rawget(layer, "_own_weights") or {}) do
      local n = v.name or "weight"
      if n:sub(1, #lname) == lname then n = n:sub(#lname + 1) end
      add(v, n)
    end
    for _, k in ipairs(rawget(layer, "_tracked_keys") or {}) do
      local v = rawget(layer, k)
      if core.is_tensor(v) and core.is_variable(v) then add(v, k) end
    end
    for _, s in ipairs(rawget(layer, "_state_vars") or {}) do
      if not paths[s.var] then
        add(s.var, s.name)
        state[#state + 1] = { paths[s.var], s.var }
      end
    end
    for _, c in ipairs(children(layer)) do visit(c[1], prefix .. "/" .. c[2]) end
  end
  visit(root, util.snake_case(root.class_name))
  return paths, layer_of, state
end

-- The saved variables of a model in order, as {path, variable, layer}:
-- its weights (in `weights` order), then its layers' state.
function M.named_variables(model)
  local paths, layer_of, state = walk_paths(model)
  local out, used = {}, {}
  for i, v in ipairs(model.weights) do
    local p = paths[v] or ("weights/" .. i)
    used[p] = true
    out[#out + 1] = { p, v, layer_of[v] }
  end
  for _, s in ipairs(state) do
    if not used[s[1]] then out[#out + 1] = { s[1], s[2], layer_of[s[2]] } end
  end
  return out, paths
end

-- {path -> tensor} of a model's variables (with `prefix` before each path).
function M.weight_tensors(model, prefix, into)
  into = into or {}
  for _, e in ipairs(M.named_variables(model)) do into[(prefix or "") .. e[1]] = mg.tensor(e[2]) end
  return into
end

local function shape_str(s) return util.shape_str(s) end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function list_some(names)
  local n = #names
  local shown = table.concat(names, ", ", 1, math.min(n, 6))
  if n > 6 then shown = shown .. string.format(", ... (%d in all)", n) end
  return shown
end

-- Checks {prefix..path -> tensor} against the model's variables and
-- returns the assignments to make ({variable, tensor} pairs) and the paths
-- skipped. opts.skip_mismatch skips weights whose shape differs or that
-- the file lacks; names the model does not have are an error unless
-- skip_mismatch. Nothing is assigned.
function M.plan_weights(model, tensors, opts, where, prefix)
  opts = opts or {}
  prefix = prefix or ""
  local entries = M.named_variables(model)
  if #entries == 0 then
    error(string.format("%s: model %s has no weights yet; build it first (call it once on data, or "
      .. "model:build(input_shape))", where, model.name), 0)
  end
  local todo, missing, skipped, expected = {}, {}, {}, {}
  for _, e in ipairs(entries) do
    local key, var, layer = prefix .. e[1], e[2], e[3]
    expected[key] = true
    local t = tensors[key]
    if t == nil then
      missing[#missing + 1] = key
    elseif not same_shape(t.shape, var.shape) then
      if not opts.skip_mismatch then
        error(string.format("%s: weight %s (layer %s) has shape %s in the model but %s in the file", where, key,
          layer and layer.name or "?", shape_str(var.shape), shape_str(t.shape)), 0)
      end
      skipped[#skipped + 1] = key
    else
      todo[#todo + 1] = { var, t }
    end
  end
  if #missing > 0 then
    if not opts.skip_mismatch then
      error(string.format("%s: the file has no value for %d of model %s's weights: %s (is it the same "
        .. "architecture? {skip_mismatch=true} loads the others)", where, #missing, model.name, list_some(missing)), 0)
    end
    for _, k in ipairs(missing) do skipped[#skipped + 1] = k end
  end
  local unexpected = {}
  for k in pairs(tensors) do
    if k:sub(1, #prefix) == prefix and not expected[k] then unexpected[#unexpected + 1] = k end
  end
  table.sort(unexpected)
  if #unexpected > 0 and not opts.skip_mismatch then
    error(string.format("%s: the file holds %d weights model %s does not have: %s (is it the same architecture? "
      .. "{skip_mismatch=true} ignores them)", where, #unexpected, model.name, list_some(unexpected)), 0)
  end
  return todo, skipped
end

-- Makes the assignments plan_weights returned.
function M.apply_plan(todo)
  for _, p in ipairs(todo) do
    local var, t = p[1], p[2]
    var:assign(t.dtype == var.dtype and t or mg.cast(t, var.dtype))
  end
end

-- Assigns the model's variables from {prefix..path -> tensor}, every name
-- and shape checked first (see plan_weights); returns the paths skipped.
function M.assign_weights(model, tensors, opts, where, prefix)
  local todo, skipped = M.plan_weights(model, tensors, opts, where, prefix)
  M.apply_plan(todo)
  return skipped
end

-- model:save_weights(path): every weight (and layer state) in one
-- safetensors file, keyed by path; written atomically.
function Layer:save_weights(path)
  if type(path) ~= "string" then error("save_weights: expected a file path, got " .. type(path), 2) end
  local tensors = M.weight_tensors(self)
  if next(tensors) == nil then
    error(string.format("save_weights: model %s has no weights yet; build it first", self.name), 2)
  end
  local ok, err = pcall(save_tensors, path, tensors, { format = "moongrad-weights", moongrad_version = mg.version })
  if not ok then error("save_weights: " .. tostring(err):gsub("^[^:\n]*:%d+: ", ""), 2) end
end

-- model:load_weights(path [, {skip_mismatch=false}]) -> the names skipped.
function Layer:load_weights(path, opts)
  options.check("load_weights", opts, { skip_mismatch = "boolean" })
  if type(path) ~= "string" then error("load_weights: expected a file path, got " .. type(path), 2) end
  if is_dir(path) then path = path .. "/model.weights.safetensors" end
  local ok, tensors = pcall(load_tensors, path)
  if not ok then error("load_weights: " .. tostring(tensors):gsub("^[^:\n]*:%d+: ", ""), 2) end
  local ok2, res = pcall(M.assign_weights, self, tensors, opts, "load_weights(" .. path .. ")")
  if not ok2 then error(res, 2) end
  return res
end

-- ---- compile settings -----------------------------------------------------------------------

local function is_plain(v) return type(v) == "table" and getmetatable(v) == nil end

-- A loss setting as JSON: a name, {class_name=, config=}, or a list/table
-- (keyed by output name) of those; false (no loss for an output) kept.
local function ser_loss(l)
  if l == nil or l == false then return l end
  if type(l) == "string" then return l end
  if is_plain(l) and l.class_name then return l end
  if is_plain(l) then
    local out = {}
    for k, x in pairs(l) do
      local s, why = ser_loss(x)
      if why then return nil, why end
      out[k] = s
    end
    return out
  end
  if type(l) == "function" or (type(l) == "table" and l.class_name == "LossFunctionWrapper") then
    return nil, "the loss is a Lua function"
  end
  if type(l) == "table" and l.get_config then return { class_name = l.class_name, config = l:get_config() } end
  return nil, "the loss is a " .. type(l)
end

-- A metrics setting as JSON: names and {class_name=, config=} in the same
-- nesting (a list, per-output lists, a table keyed by output name).
local function ser_metrics(m)
  if m == nil or m == false or type(m) == "string" then return m end
  if is_plain(m) then
    local out = {}
    for k, x in pairs(m) do
      local s, why = ser_metrics(x)
      if why then return nil, why end
      out[k] = s
    end
    return out
  end
  if type(m) == "table" and m.get_config and m.class_name ~= "MeanMetricWrapper" then
    return { class_name = m.class_name, config = m:get_config() }
  end
  return nil, "a metric is a Lua function or unnamed wrapper"
end

local function deser_metrics(m)
  if not is_plain(m) then return m end
  if m.class_name then
    local metrics_mod = require("moongrad.metrics")
    local cls = metrics_mod[m.class_name]
    if type(cls) ~= "table" then error("unknown metric class '" .. tostring(m.class_name) .. "'", 0) end
    return cls(m.config)
  end
  local out = {}
  for k, x in pairs(m) do out[k] = deser_metrics(x) end
  return out
end

-- The compile settings as JSON-able data (nil, why when they cannot be saved).
local function compile_config(model)
  local args = rawget(model, "_compile_args") or {}
  local opt = model.optimizer
  local cfg = { optimizer = { class_name = opt.class_name, config = opt:get_config() },
    loss_weights = args.loss_weights, run_eagerly = rawget(model, "run_eagerly") or nil }
  local why
  cfg.loss, why = ser_loss(args.loss == nil and rawget(model, "loss") or args.loss)
  if why then return nil, why end
  for _, k in ipairs({ "metrics", "weighted_metrics" }) do
    cfg[k], why = ser_metrics(args[k])
    if why then return nil, why end
  end
  return cfg
end

function M.optimizer_from_config(spec)
  local optim = require("moongrad.optim")
  local cls = type(spec) == "table" and optim[spec.class_name]
  if type(cls) ~= "table" or not class.isinstance(setmetatable({}, cls), optim.Optimizer) then
    error("unknown optimizer class '" .. tostring(type(spec) == "table" and spec.class_name) .. "'", 0)
  end
  local cfg = util.deep_copy(spec.config or {})
  local lr = cfg.learning_rate
  if type(lr) == "table" and lr.class_name then
    local sc = optim.schedules[lr.class_name]
    if not sc then error("unknown learning-rate schedule '" .. tostring(lr.class_name) .. "'", 0) end
    cfg.learning_rate = sc(lr.config)
  end
  return cls(cfg)
end

local function compile_from_config(model, cfg)
  model:compile { optimizer = M.optimizer_from_config(cfg.optimizer), loss = cfg.loss,
    metrics = deser_metrics(cfg.metrics), weighted_metrics = deser_metrics(cfg.weighted_metrics),
    loss_weights = cfg.loss_weights, run_eagerly = cfg.run_eagerly }
end

-- ---- random-generator state ------------------------------------------------------------------

-- As strings: the 64-bit seed and counter do not survive a JSON double.
local function int_text(v)
  if math.type and math.type(v) == "integer" then return string.format("%d", v) end
  return string.format("%.0f", v)
end

function M.rng_state_json()
  local s = mg.random.get_state()
  return { seed = int_text(s.seed), counter = int_text(s.counter) }
end

function M.set_rng_state_json(s)
  if type(s) ~= "table" then return end
  local seed, counter = tonumber(s.seed), tonumber(s.counter)
  if not seed or not counter then error("the saved random-generator state is not {seed=, counter=}", 0) end
  if math.tointeger then seed, counter = math.tointeger(seed) or seed, math.tointeger(counter) or counter end
  mg.random.set_state { seed = seed, counter = counter }
end

-- ---- whole models ------------------------------------------------------------------------------

local SAVED_FILES = { "config.json", "compile.json", "model.weights.safetensors", "optimizer.safetensors",
  "training_state.json" }

-- The previous saves kept aside during a swap ("<dir>.old-<id>"): a save
-- killed between its two renames leaves one.
local function leftovers(dir, kind)
  local parent, base = dir:match("^(.*)/([^/]+)$")
  if not parent then parent, base = ".", dir end
  if parent == "" then parent = "/" end
  local out = {}
  local tag = base .. "." .. kind .. "-"
  for _, name in ipairs(list_dir(parent)) do
    if name:sub(1, #tag) == tag then out[#out + 1] = { parent .. "/" .. name, name:sub(#tag + 1) } end
  end
  return out
end
local function leftovers_old(dir)
  local out = {}
  for i, e in ipairs(leftovers(dir, "old")) do out[i] = e[1] end
  return out
end

-- Removes the "<dir>.tmp-*" directories of saves that were killed: a
-- temporary is named "<dir>.tmp-p<pid>-<id>" after the process writing it,
-- so one whose process is gone is stale whatever its age, and one whose
-- process runs (a save in progress elsewhere, or this process's own) is left
-- alone. Names without a pid (older versions) go when over an hour old.
local function remove_stale_tmps(dir)
  local me, now = core.process_id(), os.time()
  for _, e in ipairs(leftovers(dir, "tmp")) do
    local pid = e[2]:match("^p(%d+)%-")
    if pid then
      pid = tonumber(pid)
      if pid ~= me and core.process_alive(pid) == false then remove_dir(e[1]) end
    else
      local t = tonumber(e[2]:sub(1, 8), 16)
      if t and now - t > 3600 then remove_dir(e[1]) end
    end
  end
end

-- Removes what saves killed mid-way left: "<dir>.old-*" (the swap had
-- finished, so they are stale) and the temporaries of dead savers.
local function remove_leftovers(dir)
  for _, stale in ipairs(leftovers_old(dir)) do remove_dir(stale) end
  remove_stale_tmps(dir)
end

-- model:save(dir): architecture, weights, compile settings, optimizer
-- state and the random generator, as a directory.
function Model:save(dir, opts)
  opts = options.check("save", opts, { include_optimizer = "boolean" })
  if type(dir) ~= "string" or dir == "" then error("save: expected a directory path, got " .. type(dir), 2) end
  dir = dir:gsub("/+$", "")
  local ok, cfg = pcall(self.get_config, self)
  if not ok then
    error(string.format("save: model %s (%s) is subclassed: its architecture cannot be written as a config "
      .. "(define %s:get_config() and %s.from_config to make it savable); save its weights with "
      .. "model:save_weights(path) and rebuild the model in code, or use mg.train.Checkpoint", self.name,
      self.class_name, self.class_name, self.class_name), 2)
  end
  if exists(dir) and not is_dir(dir) then
    error("save: " .. dir .. " exists and is not a directory (model:save writes a directory; "
      .. "model:save_weights writes one file)", 2)
  end
  remove_stale_tmps(dir)   -- before writing: killed saves' space comes back first
  local tmp = dir .. ".tmp-p" .. core.process_id() .. "-" .. unique_suffix()
  local function fail(err)
    remove_dir(tmp)
    error("save: " .. tostring(err):gsub("^[^:\n]*:%d+: ", ""), 3)
  end
  local okm, errm = pcall(mkdir, tmp, "save")
  if not okm then error(errm, 2) end
  local okw, err = pcall(function()
    write_text(tmp .. "/config.json", json.encode({ class_name = self.class_name, config = cfg,
      backend = "moongrad", moongrad_version = mg.version }, "  ") .. "\n")
    save_tensors(tmp .. "/model.weights.safetensors", M.weight_tensors(self),
      { format = "moongrad-weights", moongrad_version = mg.version })
    if rawget(self, "compiled") and opts.include_optimizer ~= false then
      local cc, why = compile_config(self)
      if cc then
        write_text(tmp .. "/compile.json", json.encode(cc, "  ") .. "\n")
      else
        write_text(tmp .. "/compile.json", json.encode({ unsaved = why }, "  ") .. "\n")
      end
      local _, paths = M.named_variables(self)
      save_tensors(tmp .. "/optimizer.safetensors", self.optimizer:get_state(paths),
        { format = "moongrad-optimizer", class_name = self.optimizer.class_name,
          config = json.encode(self.optimizer:get_config()) })
    end
    write_text(tmp .. "/training_state.json", json.encode({ rng_state = M.rng_state_json() }, "  ") .. "\n")
  end)
  if not okw then fail(err) end
  -- the swap: the old directory is moved aside, the new one renamed in, then the old one removed
  local old
  if is_dir(dir) then
    old = dir .. ".old-" .. unique_suffix()
    local r, e = rename(dir, old)
    if not r then fail("cannot move the previous " .. dir .. " aside: " .. tostring(e)) end
  end
  local r, e = rename(tmp, dir)
  if not r then
    if old then rename(old, dir) end
    fail("cannot rename " .. tmp .. " to " .. dir .. ": " .. tostring(e))
  end
  if old then remove_dir(old) end
  remove_leftovers(dir)
end

-- nn.load_model(dir [, {compile=true}]): the model model:save wrote,
-- compiled with its settings, optimizer state and random generator restored.
function M.load_model(dir, opts)
  opts = options.check("load_model", opts, { compile = "boolean", restore_rng = "boolean" })
  if type(dir) ~= "string" then error("load_model: expected a directory path, got " .. type(dir), 2) end
  dir = dir:gsub("/+$", "")
  if not is_dir(dir) then
    local old = leftovers_old(dir)[1]
    if old then
      dir = old   -- a save was killed between its two renames: the previous one is complete
    elseif exists(dir) then
      error("load_model: " .. dir .. " is a file, not a saved-model directory (a weights file? build the model in "
        .. "code and call model:load_weights)", 2)
    else
      error("load_model: no saved model at " .. dir, 2)
    end
  end
  local text = read_text(dir .. "/config.json")
  if not text then
    error("load_model: " .. dir .. " has no config.json (a weights-only save? build the model and call "
      .. "load_weights)", 2)
  end
  local okc, model = pcall(M.model_from_json, text)
  if not okc then error("load_model(" .. dir .. "): " .. tostring(model):gsub("^model_from_json: ", ""), 2) end
  local okw, werr = pcall(function()
    M.assign_weights(model, load_tensors(dir .. "/model.weights.safetensors"), nil, "load_model(" .. dir .. ")")
  end)
  if not okw then error(tostring(werr):gsub("^[^:\n]*:%d+: ", ""), 2) end
  local ctext = read_text(dir .. "/compile.json")
  if ctext and opts.compile ~= false then
    local cc = json.decode(ctext)
    if cc.unsaved then
      error(string.format("load_model(%s): the compile settings could not be saved (%s); load with "
        .. "{compile=false} and compile the model yourself", dir, cc.unsaved), 2)
    end
    local ok, err = pcall(function()
      compile_from_config(model, cc)
      local state = load_tensors(dir .. "/optimizer.safetensors")
      local _, paths = M.named_variables(model)
      model.optimizer:set_state(state, model.trainable_weights, paths, "load_model(" .. dir .. ")")
    end)
    if not ok then error("load_model(" .. dir .. "): " .. tostring(err):gsub("^[^:\n]*:%d+: ", ""), 2) end
  end
  local stext = read_text(dir .. "/training_state.json")
  if stext and opts.restore_rng ~= false then M.set_rng_state_json(json.decode(stext).rng_state) end
  return model
end

M.SAVED_FILES = SAVED_FILES
return M
