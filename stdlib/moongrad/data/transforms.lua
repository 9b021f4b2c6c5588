-- moongrad.data.transforms: map, filter, take, skip, repeat_, zip,
-- concatenate and cache (methods of Dataset).
--
-- map and filter stage their function with mg.func by default (one trace
-- per element signature, then a C graph per element). When tracing fails
-- (the function needs tensor values in Lua, or an element has non-tensor
-- leaves such as CSV strings) the function runs eagerly instead, and keeps
-- running eagerly for that iteration; {stage=false} asks for eager from
-- the start. The mode used is readable as ds.mode ("staged" or "eager")
-- after the first element. Portable Lua.
local core = require("moongrad.core")
local Dataset = require("moongrad.data.dataset")
local structure = require("moongrad.data.structure")
local options = require("moongrad.options")

local unpack = table.unpack or unpack
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local INF, UNK = Dataset.INFINITE, Dataset.UNKNOWN

local function all_tensors(e)
  for _, v in ipairs(structure.flatten(e)) do if not core.is_tensor(v) then return false end end
  return true
end

-- A caller of fn on an element (tuple unpacked) that stages fn when it can.
local function make_caller(node, fn, stage, method)
  local staged = stage and require("moongrad.func").func(fn, { name = "Dataset:" .. method, autograph = false }) or nil
  return function(e)
    local mode = node.mode
    if staged and mode ~= "eager" and all_tensors(e) then
      local res = pack(pcall(staged, structure.unpacked(e)))
      if res[1] then node.mode = "staged"; return unpack(res, 2, res.n) end
      if mode == "staged" then
        error(options.user_where() .. string.format("Dataset:%s: fn raised: %s", method, tostring(res[2])), 0)
      end
    end
    node.mode = "eager"
    local res = pack(pcall(fn, structure.unpacked(e)))
    if not res[1] then
      error(options.user_where() .. string.format("Dataset:%s: fn raised: %s", method, tostring(res[2])), 0)
    end
    return unpack(res, 2, res.n)
  end
end

local function stage_opt(method, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error(string.format("Dataset:%s: opts must be a table like {stage=false}, got %s", method, type(opts)), 3)
  end
  return not (opts and opts.stage == false)
end

-- ds:map(fn, {stage=true}): fn(x, y) of each element -> the new element
-- (several results make a tuple).
function Dataset:map(fn, opts)
  Dataset._check_self(self, "map")
  if type(fn) ~= "function" then error("Dataset:map: fn must be a function, got " .. type(fn), 2) end
  local stage = stage_opt("map", opts)
  local node
  node = Dataset._new("map", self, self.card, function(n)
    local call = make_caller(node, fn, stage, "map")
    local up = n.input:_iter()
    return function()
      local e = up()
      if e == nil then return nil end
      local res = { call(e) }
      if #res == 0 or res[1] == nil then error("Dataset:map: fn returned nothing for an element", 0) end
      if #res == 1 then return res[1] end
      return res
    end
  end)
  return node
end

local function truthy(v)
  if core.is_tensor(v) then
    local numel = 1
    for _, d in ipairs(v.shape) do numel = numel * d end
    if numel ~= 1 then
      error("Dataset:filter: pred must return a boolean or a one-element tensor, got shape ("
        .. table.concat(v.shape, ",") .. ")", 0)
    end
    local x = v:item()
    return x ~= false and x ~= 0
  end
  if type(v) ~= "boolean" then error("Dataset:filter: pred must return a boolean or a bool tensor, got " .. type(v), 0) end
  return v
end

-- ds:filter(pred, {stage=true}): keeps the elements for which pred(x, y) is true.
function Dataset:filter(pred, opts)
  Dataset._check_self(self, "filter")
  if type(pred) ~= "function" then error("Dataset:filter: pred must be a function, got " .. type(pred), 2) end
  local stage = stage_opt("filter", opts)
  local node
  node = Dataset._new("filter", self, self.card == INF and INF or UNK, function(n)
    local call = make_caller(node, pred, stage, "filter")
    local up = n.input:_iter()
    return function()
      while true do
        local e = up()
        if e == nil then return nil end
        if truthy(call(e)) then return e end
      end
    end
  end)
  return node
end

-- ds:take(n): the first n elements (-1: all).
function Dataset:take(n)
  Dataset._check_self(self, "take")
  Dataset._check_count("take", "n", n, false, true)
  local c = self.card
  local card = n == -1 and c or (c == INF and n) or (c == UNK and UNK) or math.min(n, c)
  return Dataset._new("take", self, card, function(node)
    local up, k = node.input:_iter(), 0
    return function()
      if n ~= -1 and k >= n then return nil end
      local e = up()
      if e ~= nil then k = k + 1 end
      return e
    end
  end, { count = n })
end

-- ds:skip(n): all but the first n elements (-1: skips all).
function Dataset:skip(n)
  Dataset._check_self(self, "skip")
  Dataset._check_count("skip", "n", n, false, true)
  local c = self.card
  local card = (c == INF or c == UNK) and c or (n == -1 and 0) or math.max(0, c - n)
  return Dataset._new("skip", self, card, function(node)
    local up, skipped = node.input:_iter(), false
    return function()
      if not skipped then
        skipped = true
        local k = 0
        while n == -1 or k < n do
          if up() == nil then return nil end
          k = k + 1
        end
      end
      return up()
    end
  end, { count = n })
end

-- ds:repeat_(n): the dataset n times (nil or -1: forever). Each repetition
-- iterates the input afresh (a shuffle below reshuffles). An input with no
-- elements ends the repetition (no endless empty loop).
function Dataset:repeat_(n)
  Dataset._check_self(self, "repeat_")
  Dataset._check_count("repeat_", "n", n, true, true)
  if n == -1 then n = nil end
  local c = self.card
  local card
  if n == 0 or c == 0 then card = 0
  elseif n == nil or c == INF then card = INF
  elseif c == UNK then card = UNK
  else card = c * n end
  return Dataset._new("repeat", self, card, function(node)
    local up, done, got = node.input:_iter(), 0, false
    return function()
      while true do
        if n ~= nil and done >= n then return nil end
        local e = up()
        if e ~= nil then got = true; return e end
        done = done + 1
        if not got or (n ~= nil and done >= n) then done = math.huge; return nil end
        got = false
        up = node.input:_iter()
      end
    end
  end, { count = n or -1 })
end
Dataset["repeat"] = Dataset.repeat_   -- ds["repeat"](ds, n): `repeat` is a Lua keyword

-- Dataset.zip{a, b} (tuple elements) or Dataset.zip{name=a, ...} (dict
-- elements); ds:zip(other, ...) = Dataset.zip{ds, other, ...}. Stops at the
-- shortest input.
function Dataset.zip(a, ...)
  local datasets
  if Dataset.is_dataset(a) then datasets = { a, ... }
  else datasets = a end
  if type(datasets) ~= "table" then error("Dataset.zip: expected a table of datasets, got " .. type(datasets), 2) end
  local keys = {}
  for k, d in pairs(datasets) do
    if not Dataset.is_dataset(d) then
      error(string.format("Dataset.zip: entry %s is a %s, not a dataset", tostring(k), type(d)), 2)
    end
    keys[#keys + 1] = k
  end
  if #keys == 0 then error("Dataset.zip: needs at least one dataset", 2) end
  local card, unknown = INF, false
  for _, k in ipairs(keys) do
    local c = datasets[k].card
    if c == UNK then unknown = true elseif c ~= INF and (card == INF or c < card) then card = c end
  end
  if unknown then card = UNK end
  return Dataset._new("zip", nil, card, function()
    local its = {}
    for _, k in ipairs(keys) do its[k] = datasets[k]:_iter() end
    return function()
      local out = {}
      for _, k in ipairs(keys) do
        local e = its[k]()
        if e == nil then return nil end
        out[k] = e
      end
      return out
    end
  end, { inputs = datasets })
end

-- ds:concatenate(other): the elements of ds, then those of other (same structure).
function Dataset:concatenate(other)
  Dataset._check_self(self, "concatenate")
  if not Dataset.is_dataset(other) then error("Dataset:concatenate: other must be a dataset, got " .. type(other), 2) end
  local a, b = self.card, other.card
  local card = (a == INF or b == INF) and INF or (a == UNK or b == UNK) and UNK or a + b
  return Dataset._new("concatenate", self, card, function(node)
    local up, second, ncomp = node.input:_iter(), false, nil
    return function()
      while true do
        local e = up()
        if e ~= nil then
          local n = #structure.flatten(e)
          if ncomp == nil then ncomp = n
          elseif n ~= ncomp then
            error(string.format("Dataset:concatenate: the datasets' elements differ: %d components and %d", ncomp, n), 0)
          end
          return e
        end
        if second then return nil end
        second, up = true, other:_iter()
      end
    end
  end)
end

-- ds:cache(): the first complete iteration is kept in memory; later ones replay it.
function Dataset:cache(filename)
  Dataset._check_self(self, "cache")
  if filename ~= nil then error("Dataset:cache: only the in-memory cache exists (no filename argument)", 2) end
  if self.card == INF then error("Dataset:cache: the dataset is infinite; cache a finite one and repeat it", 2) end
  local stored
  return Dataset._new("cache", self, self.card, function(node)
    if stored then
      local i = 0
      return function() i = i + 1; return stored[i] end
    end
    local up, list = node.input:_iter(), {}
    return function()
      local e = up()
      if e == nil then
        stored = stored or list   -- complete: later iterations replay it
        return nil
      end
      list[#list + 1] = e
      return e
    end
  end)
end

return Dataset
