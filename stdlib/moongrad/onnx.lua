-- mg.onnx: ONNX models out of moongrad and into it (doc/onnx.md).
--
-- Both directions are the C core's (core/onnx_export.c, core/onnx_import.c, through protobuf-c):
-- export writes a concrete function's optimised graph, so this module only finds that graph — a
-- concrete function as it is, a staged function or plain Lua function traced for the `args` or
-- `input_signature` given, a model's inference call (model(x, false)) traced the same way. load
-- traces the ONNX model into a moongrad graph and wraps it as a callable that runs it in the one
-- executor, as a concrete function runs.

local core = require("moongrad.core")
local func = require("moongrad.func")
local options = require("moongrad.options")

local M = {}

local unpack = table.unpack or unpack

local function is_concrete(f) return type(f) == "table" and f.graph_obj ~= nil end
local function is_staged(f) return type(f) == "table" and type(f.concrete) == "function" end
local function is_model(f)
  local mt = getmetatable(f)
  return type(f) == "table" and mt ~= nil and type(f.get_config) == "function" and mt.__call ~= nil
end

-- The arguments to trace with and the input signature, if any: opts.args as given, or opts.input_signature's
-- TensorSpecs (tables {shape=, dtype=} are made TensorSpecs) with zero tensors of their shapes (-1 as 1) to call it.
local function trace_args(opts, what)
  if opts.args ~= nil then
    if type(opts.args) ~= "table" then error(what .. ": args must be a list of example arguments", 3) end
    return opts.args
  end
  if opts.input_signature ~= nil then
    local mg = require("moongrad")
    local specs, args = {}, {}
    for i, s in ipairs(opts.input_signature) do
      specs[i] = getmetatable(s) and s or func.TensorSpec(s)
      local shape = {}
      for d, n in ipairs(specs[i].shape) do shape[d] = n < 0 and 1 or n end
      args[i] = mg.zeros(shape, specs[i].dtype)
    end
    return args, specs
  end
  error(what .. ": give args={...} (example inputs) or input_signature={mg.TensorSpec{...}, ...} to trace with", 3)
end

-- The concrete function of Lua function fn for the options' arguments.
local function concrete_of(fn, name, opts)
  local args, specs = trace_args(opts, "onnx.export")
  local staged = func.func(fn, { name = name, input_signature = specs })
  return staged:concrete(unpack(args))
end

--- mg.onnx.export(f_or_model, path, {opset=17, args=, input_signature=}): writes an ONNX model. f is a concrete
--- function, a staged function (mg.func), a plain Lua function or a model (its inference call, model(x, false)); all
--- but a concrete function are traced for `args` (example inputs) or `input_signature` (TensorSpecs; -1 sizes stay
--- symbolic). Variables are written with their current values; cond and while nodes become If and Loop. An op with
--- no ONNX form is an error naming every such op of the graph.
function M.export(f, path, opts)
  -- unknown names and out-of-range values raise at the caller's line (moongrad.options)
  opts = options.check("onnx.export", opts, { opset = { "integer", min = 13, max = 21 }, args = "table",
    input_signature = "table" })
  if type(path) ~= "string" then error("onnx.export: path must be a string", 2) end
  local opset = opts.opset or 17
  local cf
  if is_concrete(f) then
    cf = f
  elseif is_staged(f) then
    if opts.input_signature and not f.input_signature then
      cf = concrete_of(f.traced_fn, f.name, opts)   -- the same (converted) function, staged with the signature
    else
      cf = f:concrete(unpack((trace_args(opts, "onnx.export"))))
    end
  elseif is_model(f) then
    local model = f
    cf = concrete_of(function(...) return model(..., false) end, (model.name or "model") .. ".serve", opts)
  elseif type(f) == "function" then
    cf = concrete_of(f, nil, opts)
  else
    error("onnx.export: expected a concrete function, a staged function, a Lua function or a model, got "
      .. type(f), 2)
  end
  core.onnx_export(cf.graph_obj, path, opset)
  return path
end

local Loaded = {}
Loaded.__index = Loaded

function Loaded:__call(...)
  local n = select("#", ...)
  if n ~= self.ninputs then
    error(string.format("onnx model %s: takes %d inputs, got %d", self.path, self.ninputs, n), 2)
  end
  return core.graph_call(self.graph_obj, ...)
end

function Loaded:__tostring()
  return string.format("<onnx model %s: %d inputs, %d outputs>", self.path, self.ninputs, self.noutputs)
end

--- The loaded model's graph as text (as a concrete function's pretty()).
function Loaded:pretty() return self.graph_obj:pretty() end
--- The inputs and outputs: {inputs={{dtype=, shape=}, ...}, outputs={...}}.
function Loaded:signature() return self.graph_obj:signature() end

--- mg.onnx.load(path) -> model: an ONNX model traced into a moongrad graph; calling it with tensors (one per graph
--- input, in the file's order) returns its outputs. Operators moongrad cannot run are listed in one error; a file that
--- is not an ONNX model, or refers to values it never defines, is an error saying so.
function M.load(path)
  if type(path) ~= "string" then error("onnx.load: path must be a string", 2) end
  local g = core.onnx_load(path)
  local sig = g:signature()
  return setmetatable({ graph_obj = g, path = path, ninputs = #sig.inputs, noutputs = #sig.outputs }, Loaded)
end

return M
