-- moongrad.graph_file: mg.export and mg.load_graph, graphs outside the process.
--
-- mg.export traces a function (an mg.func, a plain Lua function or a model)
-- once on placeholders made from its signature, optimises the graph and has
-- the engine write it (core/graphfile.c: a safetensors file whose metadata
-- holds the graph as JSON, ops by name; the Variables' values are frozen as
-- constants, so the file is a pure function of its inputs, and nothing
-- executable is written). mg.load_graph reads one back into a callable that
-- runs wholly in C; a C host loads the same file with mg_graph_load and no
-- Lua at all (doc/deploy.md). Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local options = require("moongrad.options")
local func = require("moongrad.func")
local autodiff = require("moongrad.autodiff")

local M = {}
local unpack = table.unpack or unpack
local pack = table.pack or function(...) return { n = select("#", ...), ... } end

local EXPORT_OPTIONS = {
  signature = "table",
  name = "string",
  metadata = "table",
  input_names = "table",
  output_names = "table",
}

local function fail(msg) error(msg, 3) end

-- The Lua function to trace and its default signature, for an mg.func, a
-- model (called with training=false) or a plain function.
local function resolve(f)
  if type(f) == "function" then
    return func.convert and func.convert(f, {}) or f, nil, nil
  end
  if type(f) == "table" and type(f.traced_fn) == "function" and f.cache then  -- an mg.func
    return f.traced_fn, f.signature_specs, f.name
  end
  if type(f) == "table" and f.predict_step then  -- a model: its inference call
    return function(...)
      if select("#", ...) == 1 then return f(..., false) end
      return f({ ... }, false)
    end, nil, f.name
  end
  return nil
end

-- The outputs of the traced call as a list of tensors and their names: a
-- tensor, several tensors (returned or in a list) or a table of named tensors.
local function flatten(res)
  local outs, names = {}, {}
  if res.n == 1 and type(res[1]) == "table" and not core.is_tensor(res[1]) then
    local t = res[1]
    if #t > 0 then
      for i = 1, #t do outs[i] = t[i] end
    else
      for k in pairs(t) do
        if type(k) ~= "string" then fail("export: the function returns a table with the key " .. tostring(k)
          .. "; return tensors, a list of tensors or a table of tensors by name") end
        names[#names + 1] = k
      end
      table.sort(names)
      for i, k in ipairs(names) do outs[i] = t[k] end
    end
  else
    for i = 1, res.n do outs[i] = res[i] end
  end
  for i, t in ipairs(outs) do
    if not core.is_tensor(t) then
      fail(string.format("export: output %d of the function is a %s, not a tensor", i, type(t)))
    end
  end
  if #outs == 0 then fail("export: the function returns no tensor") end
  return outs, #names > 0 and names or nil
end

local function string_map(t, what)
  local keys, vals = {}, {}
  for k, v in pairs(t or {}) do
    if type(k) ~= "string" or type(v) ~= "string" then
      fail("export: " .. what .. " must map strings to strings (use tostring)")
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  for i, k in ipairs(keys) do vals[i] = t[k] end
  return keys, vals
end

--- mg.export(f_or_model, path, {signature=, name=, metadata=, input_names=, output_names=})
--- Writes a concrete function of f (an mg.func, a Lua function, or a model's
--- inference call) as a portable graph file: the optimised graph, its constants
--- and the Variables' current values (frozen as constants), the input and output
--- names, and `metadata` (strings). signature: a list of mg.TensorSpec (-1 for an
--- unknown size, an unknown first size being the same batch size in every input;
--- a spec's `name` names the input); an mg.func with an
--- input_signature uses it. Graphs that call Lua (mg.lua_function), assign
--- Variables or step optimizers cannot be exported. Load it with mg.load_graph
--- or, from C without Lua, mg_graph_load. doc/deploy.md.
--- Example:
---   local f = mg.func(function(x) return mg.relu(x) * 2 end)
---   mg.export(f, os.tmpname(), {signature = {mg.TensorSpec{shape = {-1, 3}, dtype = "float32"}}})
function M.export(f, path, opts)
  if type(path) ~= "string" then fail("export: path must be a string, got " .. type(path)) end
  opts = options.check("export", opts, EXPORT_OPTIONS)
  local fn, default_specs, fname = resolve(f)
  if not fn then fail("export: expected an mg.func, a function or a model, got " .. type(f)) end
  local specs = opts.signature or default_specs
  if not specs then
    fail("export: give the input signature: {signature = {mg.TensorSpec{shape = {-1, 784}, dtype = \"float32\"}, ...}}")
  end
  local in_names = {}
  for i, s in ipairs(specs) do
    if type(s) ~= "table" or type(s.shape) ~= "table" then
      fail(string.format("export: signature entry %d is not a TensorSpec", i))
    end
    in_names[i] = (opts.input_names and opts.input_names[i]) or s.name or ("input_" .. i)
  end
  local name = opts.name or (type(fname) == "string" and not fname:find(":") and fname)
    or path:match("([%w_]+)[^/]*$") or "exported"
  local g = core.trace_begin(name)
  local syms = {}
  local ok, err = pcall(function()
    -- an unknown first size is the batch: the same size in every input (so that inputs can meet in
    -- an op, as mg.func's traces assume for equal sizes); other unknown sizes are each their own
    local batch
    for i, s in ipairs(specs) do
      local shape = {}
      for d = 1, #s.shape do shape[d] = s.shape[d] end
      if shape[1] == -1 and batch then shape[1] = batch end
      syms[i] = core.placeholder(s.dtype or "float32", shape)
      if s.shape[1] == -1 and not batch then batch = syms[i].shape[1] end
    end
  end)
  if not ok then core.trace_abort(); fail(err) end
  local saved = autodiff._variables_allowed
  autodiff._variables_allowed = name  -- a model built by this call makes its Variables now
  local res = pack(pcall(fn, unpack(syms, 1, #specs)))
  autodiff._variables_allowed = saved
  if not res[1] then core.trace_abort(); error(res[2], 2) end
  local outs, keys
  ok, err = pcall(function() outs, keys = flatten(pack(unpack(res, 2, res.n))) end)
  if not ok then core.trace_abort(); error(err, 2) end
  core.trace_end(g, outs)
  core.graph_optimize(g, type(f) == "table" and f.passes or nil)
  local out_names = {}
  for i = 1, #outs do out_names[i] = (opts.output_names and opts.output_names[i]) or (keys and keys[i]) or ("output_" .. i) end
  local mk, mv = string_map(opts.metadata, "metadata")
  local okx, errx = pcall(core.graph_export, g, path, in_names, out_names, mk, mv)
  if not okx then error((tostring(errx):gsub("^[^:\n]*:%d+: ", "")), 2) end
end

-- ---- loaded graphs ----------------------------------------------------------------------

local Loaded = {}
Loaded.__index = Loaded

-- g(t1, t2, ...) or g{name = tensor, ...} -> the outputs, in order.
function Loaded:__call(...)
  local a = ...
  if select("#", ...) == 1 and type(a) == "table" and not core.is_tensor(a) then
    local list = {}
    for i, n in ipairs(self.input_names) do
      list[i] = a[n]
      if list[i] == nil then error(string.format("%s: no input named '%s'", self.name, n), 2) end
    end
    for k in pairs(a) do
      if not self.index[k] then error(string.format("%s: it has no input named '%s'", self.name, tostring(k)), 2) end
    end
    return core.graph_call(self.graph_obj, unpack(list, 1, #self.input_names))
  end
  return core.graph_call(self.graph_obj, ...)
end

function Loaded:__tostring()
  return string.format("<graph %s(%s) -> (%s)>", self.name, table.concat(self.input_names, ", "),
    table.concat(self.output_names, ", "))
end

-- g:signature() -> {inputs = {{name=, dtype=, shape=}}, outputs = {...}} (-1: unknown size)
function Loaded:signature()
  local sig = self.graph_obj:signature()
  for i, m in ipairs(sig.inputs) do m.name = self.input_names[i] end
  for i, m in ipairs(sig.outputs) do m.name = self.output_names[i] end
  return sig
end
function Loaded:pretty() return self.graph_obj:pretty() end
function Loaded:graph() return self.graph_obj:nodes() end

local function wrap(g, label)
  local names = g:names()
  label = g:pretty():match("^graph ([^(\n]*)%(") or label  -- the exported function's name
  local self = setmetatable({ graph_obj = g, input_names = names.inputs, output_names = names.outputs,
    metadata = names.metadata, index = {}, name = label }, Loaded)
  for _, n in ipairs(names.inputs) do self.index[n] = true end
  return self
end

--- mg.load_graph(path) -> a callable graph
--- Loads a graph file written by mg.export (validated by the engine; a hostile or
--- corrupt file is an error naming what is wrong). Call it with tensors in
--- order, or a table of tensors by input name; it returns the outputs in order.
--- g.input_names, g.output_names, g.metadata, g:signature(), g:pretty().
--- Example:
---   local path = os.tmpname()
---   mg.export(mg.func(function(x) return x * 2 end), path, {signature = {mg.TensorSpec{shape = {2}}}})
---   print(mg.load_graph(path)(mg.tensor{1.0, 2.0}))   -- tensor([2., 4.], dtype=float32)
function M.load_graph(path)
  if type(path) ~= "string" then fail("load_graph: path must be a string, got " .. type(path)) end
  local ok, g = pcall(core.graph_load, path)
  if not ok then error((tostring(g):gsub("^[^:\n]*:%d+: ", "")), 2) end
  return wrap(g, path:match("([^/]+)$") or path)
end

-- mg.load_graph_string(bytes [, what]): the same from a file's bytes in memory.
function M.load_graph_string(s, what)
  if type(s) ~= "string" then fail("load_graph_string: expected the file's bytes as a string, got " .. type(s)) end
  local ok, g = pcall(core.graph_load_string, s, what)
  if not ok then error((tostring(g):gsub("^[^:\n]*:%d+: ", "")), 2) end
  return wrap(g, what or "graph")
end

return M
