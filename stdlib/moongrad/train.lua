-- moongrad.train (mg.train): training checkpoints, after TensorFlow's
-- tf.train.Checkpoint / CheckpointManager.
--
--   local ckpt = mg.train.Checkpoint{model=model, optimizer=opt, step=step_var}
--   local path = ckpt:save("ckpts/ckpt")          -- "ckpts/ckpt-1" (file ckpts/ckpt-1.safetensors)
--   ckpt:restore(mg.train.latest_checkpoint("ckpts"))
--   local manager = mg.train.CheckpointManager(ckpt, "ckpts", {max_to_keep=3})
--
-- A checkpoint is one safetensors file: each model's weights and layer
-- state under "<key>/<weight path>", each optimizer's iterations, learning
-- rate and slots under "<key>/...", slots named after the weight paths of
-- the checkpoint's models, plain Variables under "<key>", the save counter,
-- and the global random generator's state in the metadata. A directory's
-- "checkpoint" file (JSON) lists its checkpoints, newest last. Every file
-- is written atomically, the list after the data, and old checkpoints are
-- deleted only after the list stops naming them, so a process killed at
-- any point leaves a latest checkpoint that loads. Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local core = require("moongrad.core")
local class = require("moongrad.nn.class")
local json = require("moongrad.nn.json")
local saving = require("moongrad.nn.saving")
local fs = require("moongrad.fs")
local Layer = require("moongrad.nn.layer")
local Optimizer = require("moongrad.optim.optimizer")
local options = require("moongrad.options")

local M = {}

local INDEX = "checkpoint"
local EXT = ".safetensors"

local function split_path(p)
  local dir, base = p:match("^(.*)/([^/]*)$")
  if not dir then return ".", p end
  if dir == "" then dir = "/" end
  return dir, base
end

local function strip_ext(p)
  if p:sub(-#EXT) == EXT then return p:sub(1, -#EXT - 1) end
  return p
end

local function read_index(dir)
  local text = saving.read_text(dir .. "/" .. INDEX)
  if not text then return nil end
  local ok, idx = pcall(json.decode, text)
  if not ok or type(idx) ~= "table" or type(idx.all) ~= "table" then return nil end
  return idx
end

local function write_index(dir, all)
  saving.write_text(dir .. "/" .. INDEX, json.encode({ latest = all[#all], all = all }, "  ") .. "\n")
end

-- ---- Checkpoint ---------------------------------------------------------------------------------

local Checkpoint = class.Object:extend("Checkpoint")
M.Checkpoint = Checkpoint

local function kind_of(v)
  if Layer.is_layer(v) then return "layer" end
  if class.isinstance(v, Optimizer) then return "optimizer" end
  if core.is_tensor(v) and core.is_variable(v) then return "variable" end
  return nil
end

-- Checkpoint{name = model | optimizer | Variable, ...}
function Checkpoint:__init(objects)
  if type(objects) ~= "table" or getmetatable(objects) ~= nil then
    error("Checkpoint: expected a table {model=, optimizer=, ...}, got " .. type(objects), 3)
  end
  local keys = {}
  for k, v in pairs(objects) do
    if type(k) ~= "string" then error("Checkpoint: entries must be named (model=..., optimizer=...)", 3) end
    if k == "save_counter" then error("Checkpoint: 'save_counter' is reserved", 3) end
    if not kind_of(v) then
      error(string.format("Checkpoint: entry '%s' is a %s; a checkpoint holds models/layers, optimizers and "
        .. "Variables", k, type(v)), 3)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  rawset(self, "_keys", keys)
  rawset(self, "_objects", objects)
  rawset(self, "save_counter", mg.Variable(mg.tensor(0, "int64"), { name = "save_counter", trainable = false }))
end

-- var -> "<key>/<weight path>" over the checkpoint's layers (names optimizer slots).
function Checkpoint:_var_names()
  local names = {}
  for _, k in ipairs(rawget(self, "_keys")) do
    local obj = rawget(self, "_objects")[k]
    if kind_of(obj) == "layer" then
      for _, e in ipairs(saving.named_variables(obj)) do
        if not names[e[2]] then names[e[2]] = k .. "/" .. e[1] end
      end
    end
  end
  return names
end

-- The tensors to save, by name.
function Checkpoint:_tensors()
  local out = { save_counter = mg.tensor(self.save_counter) }
  local names = self:_var_names()
  for _, k in ipairs(rawget(self, "_keys")) do
    local obj = rawget(self, "_objects")[k]
    local kind = kind_of(obj)
    if kind == "layer" then
      saving.weight_tensors(obj, k .. "/", out)
    elseif kind == "optimizer" then
      for name, t in pairs(obj:get_state(names)) do out[k .. "/" .. name] = t end
    else
      out[k] = mg.tensor(obj)
    end
  end
  return out
end

-- ckpt:write(path): one checkpoint file at exactly `path` (.safetensors
-- added when missing), no numbering, no index. Returns the file name.
function Checkpoint:write(path)
  if type(path) ~= "string" or path == "" then error("Checkpoint:write: expected a path, got " .. type(path), 2) end
  local file = strip_ext(path) .. EXT
  local rng = saving.rng_state_json()
  local ok, err = pcall(saving.save_tensors, file, self:_tensors(), { format = "moongrad-checkpoint",
    moongrad_version = mg.version, rng_seed = rng.seed, rng_counter = rng.counter })
  if not ok then error("Checkpoint: cannot write " .. file .. ": " .. tostring(err):gsub("^[^:\n]*:%d+: ", ""), 2) end
  return file
end

-- ckpt:save(prefix) -> "prefix-N": numbered by the save counter (which is
-- saved too, so numbering goes on after a restore); the directory's
-- "checkpoint" list gets the new one.
function Checkpoint:save(prefix)
  if type(prefix) ~= "string" or prefix == "" then
    error("Checkpoint:save: expected a path prefix such as \"ckpts/ckpt\", got " .. type(prefix), 2)
  end
  local dir = split_path(prefix)
  if not saving.is_dir(dir) then
    error("Checkpoint:save: directory " .. dir .. " does not exist (create it, or use a CheckpointManager)", 2)
  end
  local n = self.save_counter:item() + 1
  self.save_counter:assign(mg.tensor(n, "int64"))
  local path = prefix .. "-" .. string.format("%d", n)
  local ok, err = pcall(self.write, self, path)
  if not ok then
    self.save_counter:assign(mg.tensor(n - 1, "int64"))
    error(err, 2)
  end
  local _, base = split_path(path)
  local idx = read_index(dir)
  local all = {}
  for _, name in ipairs(idx and idx.all or {}) do
    if name ~= base then all[#all + 1] = name end
  end
  all[#all + 1] = base
  write_index(dir, all)
  return path
end

local function strip_prefix(tensors, prefix)
  local out = {}
  for k, t in pairs(tensors) do
    if k:sub(1, #prefix) == prefix then out[k:sub(#prefix + 1)] = t end
  end
  return out
end

-- ckpt:restore(path [, {restore_rng=true}]): every object's values from a
-- checkpoint (path from save, with or without .safetensors). Names and
-- shapes are all checked before anything changes.
function Checkpoint:restore(path, opts)
  opts = options.check("Checkpoint:restore", opts, { restore_rng = "boolean" })
  if type(path) ~= "string" then
    error("Checkpoint:restore: expected a checkpoint path (from save or latest_checkpoint), got " .. type(path), 2)
  end
  local file = strip_ext(path) .. EXT
  local where = "Checkpoint:restore(" .. path .. ")"
  local ok, tensors, meta = pcall(saving.load_tensors, file)
  if not ok then error(where .. ": " .. tostring(tensors):gsub("^[^:\n]*:%d+: ", ""), 2) end
  local okr, err = pcall(function()
    local plans, names = {}, self:_var_names()
    local function check_var(key, var)
      local t = tensors[key]
      if t == nil then error(string.format("%s: the checkpoint has no '%s'", where, key), 0) end
      if #t.shape ~= #var.shape then
        error(string.format("%s: '%s' has %d dimensions in the checkpoint, %d here", where, key, #t.shape,
          #var.shape), 0)
      end
      for d = 1, #var.shape do
        if t.shape[d] ~= var.shape[d] then
          error(string.format("%s: '%s' has shape (%s) in the checkpoint but (%s) here", where, key,
            table.concat(t.shape, ", "), table.concat(var.shape, ", ")), 0)
        end
      end
      plans[#plans + 1] = { var, t }
    end
    check_var("save_counter", self.save_counter)
    local layers, optimizers = {}, {}
    for _, k in ipairs(rawget(self, "_keys")) do
      local obj = rawget(self, "_objects")[k]
      local kind = kind_of(obj)
      if kind == "variable" then check_var(k, obj)
      elseif kind == "layer" then layers[#layers + 1] = { k, obj }
      else optimizers[#optimizers + 1] = { k, obj } end
    end
    -- every model's weights checked (nothing assigned yet)
    local weight_plans = {}
    for _, p in ipairs(layers) do
      local k, obj = p[1], p[2]
      local sub = {}
      for name, t in pairs(tensors) do if name:sub(1, #k + 1) == k .. "/" then sub[name] = t end end
      weight_plans[#weight_plans + 1] = (saving.plan_weights(obj, sub, nil, where, k .. "/"))
    end
    -- the optimizers' state: set_state checks all of it before it assigns
    for _, p in ipairs(optimizers) do
      local k, obj = p[1], p[2]
      local state = strip_prefix(tensors, k .. "/")
      local vars = {}
      for var, name in pairs(names) do
        if core.is_trainable(var) then
          for key in pairs(state) do
            if key:sub(1, #name + 1) == name .. "/" then vars[#vars + 1] = var; break end
          end
        end
      end
      table.sort(vars, function(a, b) return names[a] < names[b] end)   -- slots made in a stable order
      obj:set_state(state, vars, names, where)
    end
    for _, plan in ipairs(weight_plans) do saving.apply_plan(plan) end
    for _, p in ipairs(plans) do p[1]:assign(p[2].dtype == p[1].dtype and p[2] or mg.cast(p[2], p[1].dtype)) end
  end)
  if not okr then error(tostring(err):gsub("^[^:\n]*:%d+: ", ""), 2) end
  if opts.restore_rng ~= false and meta and meta.rng_seed then
    saving.set_rng_state_json({ seed = meta.rng_seed, counter = meta.rng_counter })
  end
  return self
end

-- latest_checkpoint(dir) -> "dir/prefix-N" of the newest complete
-- checkpoint the directory lists, or nil.
function M.latest_checkpoint(dir)
  if type(dir) ~= "string" then error("latest_checkpoint: expected a directory, got " .. type(dir), 2) end
  dir = dir:gsub("/+$", "")
  local idx = read_index(dir)
  if not idx then return nil end
  for i = #idx.all, 1, -1 do
    local p = dir .. "/" .. idx.all[i]
    if saving.exists(p .. EXT) then return p end
  end
  return nil
end

-- ---- CheckpointManager --------------------------------------------------------------------------

local Manager = class.Object:extend("CheckpointManager")
M.CheckpointManager = Manager

-- CheckpointManager(checkpoint, directory, {max_to_keep=5, checkpoint_name="ckpt"})
function Manager:__init(ckpt, directory, opts)
  if not class.isinstance(ckpt, Checkpoint) then
    error("CheckpointManager: the first argument must be an mg.train.Checkpoint", 3)
  end
  if type(directory) ~= "string" or directory == "" then
    error("CheckpointManager: expected a directory (string) second, got " .. type(directory), 3)
  end
  opts = options.check("CheckpointManager", opts, { max_to_keep = { "integer|boolean", check = function(v)
    if v == true or (type(v) == "number" and v < 1) then
      return "must be a positive integer (or false to keep all), got " .. tostring(v)
    end
  end }, checkpoint_name = { "string", check = function(v)
    if v == "" or v:find("/", 1, true) then return "must be a file name prefix (no '/'), got " .. options.show(v) end
  end } })
  local keep = opts.max_to_keep
  if keep == nil then keep = 5 end
  self.checkpoint = ckpt
  self.directory = directory:gsub("/+$", "")
  self.max_to_keep = keep
  self.checkpoint_name = opts.checkpoint_name or "ckpt"
  if not saving.is_dir(self.directory) then
    local ok, err = pcall(saving.mkdirs, self.directory, "CheckpointManager")
    if not ok and not saving.is_dir(self.directory) then error(err, 3) end
  end
end

-- manager.checkpoints: the kept checkpoints, oldest first; manager.latest_checkpoint: the newest (or nil).
Manager.getters.checkpoints = function(self)
  local idx = read_index(self.directory)
  local out = {}
  for _, name in ipairs(idx and idx.all or {}) do
    if saving.exists(self.directory .. "/" .. name .. EXT) then out[#out + 1] = self.directory .. "/" .. name end
  end
  return out
end
Manager.getters.latest_checkpoint = function(self) return M.latest_checkpoint(self.directory) end

-- manager:save() -> the new checkpoint's path; then forgets and deletes
-- the oldest beyond max_to_keep (after the list no longer names them).
function Manager:save()
  local path = self.checkpoint:save(self.directory .. "/" .. self.checkpoint_name)
  if self.max_to_keep then
    local idx = read_index(self.directory)
    local all = idx and idx.all or {}
    if #all > self.max_to_keep then
      local keep, drop = {}, {}
      for i, name in ipairs(all) do
        if i > #all - self.max_to_keep then keep[#keep + 1] = name else drop[#drop + 1] = name end
      end
      write_index(self.directory, keep)
      -- best effort: the list no longer names them, and a file that cannot go now is only disk space
      for _, name in ipairs(drop) do pcall(fs.remove, self.directory .. "/" .. name .. EXT) end
    end
  end
  return path
end

-- manager:restore_or_initialize() -> the path restored, or nil when there is none yet.
function Manager:restore_or_initialize()
  local p = self.latest_checkpoint
  if p then self.checkpoint:restore(p) end
  return p
end

return M
