-- moongrad.autodiff: GradientTape, Variable and the functional forms
-- (grad, value_and_grad, jacobian, hessian, jvp, custom_gradient).
--
-- The tape itself lives in the C engine (core/tape.c); this module gives it
-- TF 2's surface: sources may be a tensor, a Variable or a nested table of
-- them and the gradient comes back in the same structure. hessian and jvp
-- use double reverse mode (nested tapes), no separate forward mode.
-- Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local options = require("moongrad.options")

local M = {}
local unpack = table.unpack or unpack
local pack = table.pack or function(...) return { n = select("#", ...), ... } end

-- ---- nested structures ------------------------------------------------------

-- Flattens a tensor or nested table of tensors into a list; returns the list
-- and a function that rebuilds the structure from a list of the same length.
-- A tensor and a plain list of tensors (the usual sources) take a short path:
-- a tape step of small ops costs a few microseconds, and building the error
-- paths of the general walk cost about as much.
local is_tensor = core.is_tensor
local function first(list) return list[1] end
local function as_list(list)
  local out = {}
  for i = 1, list.n or #list do out[i] = list[i] end
  return out
end
local function flatten_list(x)
  local n, count = #x, 0
  for _ in pairs(x) do count = count + 1 end
  if count ~= n then return nil end
  local flat = {}
  for i = 1, n do
    if not is_tensor(x[i]) then return nil end
    flat[i] = x[i]
  end
  return flat
end

local function flatten(x, what)
  if is_tensor(x) then return { x }, first end
  local flat = type(x) == "table" and flatten_list(x)
  if flat then return flat, as_list end
  return M._flatten_nested(x, what)
end

function M._flatten_nested(x, what)
  local flat = {}
  local function walk(v, path)
    if core.is_tensor(v) then
      flat[#flat + 1] = v
      return #flat
    elseif type(v) == "table" then
      local shape = {}
      for k, item in pairs(v) do shape[k] = walk(item, path .. "." .. tostring(k)) end
      return shape
    end
    error(string.format("gradient: %s%s must be a tensor, a Variable or a table of them, got %s",
      what, path, type(v)), 4)
  end
  local shape = walk(x, "")
  local function rebuild(list)
    local function build(s)
      if type(s) == "number" then return list[s] end
      local out = {}
      for k, item in pairs(s) do out[k] = build(item) end
      return out
    end
    return build(shape)
  end
  return flat, rebuild
end

-- ---- GradientTape -------------------------------------------------------------

local Tape = core.tape_methods

-- mg.GradientTape{persistent=false, watch_accessed_variables=true}: a tape that
-- records from its creation until tape:stop() or the end of its <close> scope.
local TAPE_OPTIONS = { persistent = "boolean", watch_accessed_variables = "boolean", record = "boolean" }
--- mg.GradientTape{persistent=false, watch_accessed_variables=true}
--- A tape that records the ops run on watched tensors (and every trainable
--- Variable) from its creation until tape:stop() or the end of its <close> scope;
--- tape:gradient(target, sources) is d target / d sources (several sources: a list).
---   persistent                 allow more than one gradient() call (default false)
---   watch_accessed_variables   watch trainable Variables automatically (default true)
--- Example:
---   local x = mg.tensor{1.0, 2.0}
---   local tape = mg.GradientTape()
---   tape:watch(x)
---   local y = (x * x):sum()
---   tape:stop()
---   print(tape:gradient(y, x))   -- tensor([2., 4.], dtype=float32)
function M.GradientTape(opts)
  opts = options.check("GradientTape", opts, TAPE_OPTIONS)
  local tape = core.tape_new(opts.persistent and true or false, opts.watch_accessed_variables ~= false)
  if opts.record ~= false then tape:start() end
  return tape
end

local c_watch = Tape.watch
-- tape:watch(x): records the ops on x (a tensor or a table of tensors) from now on, so that
-- tape:gradient(target, x) can differentiate with respect to it (Variables are watched by default).
function Tape:watch(x)
  local flat = flatten(x, "watch")
  for _, t in ipairs(flat) do c_watch(self, t) end
end

-- tape:record(fn): records while fn runs, returns fn's results.
function Tape:record(fn)
  self:start()
  local res = pack(pcall(fn, self))
  self:stop()
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, res.n)
end

-- tape:stop_recording(fn): runs fn without recording on this tape.
function Tape:stop_recording(fn)
  local was = self:recording()
  self:stop()
  local res = pack(pcall(fn))
  if was then self:start() end
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, res.n)
end

-- gradient's third argument: output_gradients (a tensor or a list of them), or an options table.
local GRADIENT_OPTIONS = { output_gradients = "any", unconnected_gradients = { "string", one_of = { "none", "zero" } } }
local function gradient_options(a, b)
  if type(a) == "table" and not core.is_tensor(a) and next(a) ~= nil and a[1] == nil then   -- named fields
    options.check("gradient", a, GRADIENT_OPTIONS)
    return a.output_gradients, a.unconnected_gradients
  end
  return a, b
end

-- tape:gradient(target, sources [, output_gradients] [, unconnected_gradients])
-- or tape:gradient(target, sources, {output_gradients=, unconnected_gradients="none"|"zero"}).
-- A non-scalar target is summed (TF's rule); sources not connected give nil.
function Tape:gradient(target, sources, output_gradients, unconnected)
  output_gradients, unconnected = gradient_options(output_gradients, unconnected)
  if unconnected ~= nil and unconnected ~= "none" and unconnected ~= "zero" then
    error("gradient: unconnected_gradients must be \"none\" or \"zero\", got " .. tostring(unconnected), 2)
  end
  if sources == nil then error("gradient: sources are missing", 2) end
  local targets = flatten(target, "target")
  local ograds
  if output_gradients ~= nil then
    ograds = flatten(output_gradients, "output_gradients")
    if #ograds ~= #targets then
      error(string.format("gradient: %d output_gradients for %d targets", #ograds, #targets), 2)
    end
  end
  local flat, rebuild = flatten(sources, "source")
  local grads = self:_gradient(targets, ograds, flat, unconnected == "zero", false)
  return rebuild(grads)
end

-- The Jacobian of every element of y with respect to x: shape y.shape .. x.shape.
-- `last`: this is the final pass, so a non-persistent tape may release its records.
local function jacobian_of(tape, y, x, last)
  local n = y:numel()
  local yshape = y.shape
  local shape = {}
  for _, d in ipairs(yshape) do shape[#shape + 1] = d end
  for _, d in ipairs(x.shape) do shape[#shape + 1] = d end
  if n == 0 then return core.full(shape, 0, x.dtype) end
  local rows = {}
  for i = 1, n do
    local seed = core.reshape(core.one_hot(core.tensor({ i }), n, y.dtype), yshape)
    local g = tape:_gradient({ y }, { seed }, { x }, true, not (last and i == n))[1]
    rows[i] = core.unsqueeze(g, 1)
  end
  return core.reshape(core.concat(rows, 1), shape)
end

-- tape:jacobian(y, x): d y[i...] / d x[j...], shape y.shape .. x.shape.
-- x may be a table of tensors (a table of Jacobians comes back).
function Tape:jacobian(y, x)
  local flat, rebuild = flatten(x, "source")
  local out = {}
  for i, xi in ipairs(flat) do out[i] = jacobian_of(self, y, xi, i == #flat) end
  return rebuild(out)
end

-- tape:batch_jacobian(y, x): for y of shape (B, ...) and x of shape (B, ...),
-- d y[b, i...] / d x[b, j...], shape (B, y_rest.., x_rest..). Rows of the batch
-- must not depend on each other (as in TF).
function Tape:batch_jacobian(y, x)
  local yshape, xshape = y.shape, x.shape
  if #yshape < 1 or #xshape < 1 or yshape[1] ~= xshape[1] then
    error(string.format("batch_jacobian: y (%s) and x (%s) need the same first (batch) dimension",
      table.concat(yshape, ","), table.concat(xshape, ",")), 2)
  end
  local b = yshape[1]
  local m = 1   -- the sizes after the batch's (b may be unknown while tracing: no Lua arithmetic on it)
  for i = 2, #yshape do m = m * yshape[i] end
  local y2 = core.reshape(y, { b, m })
  local cols = {}
  for j = 1, m do
    local seed = core.reshape(core.one_hot(core.full({ b }, j, "int64"), m, y.dtype), y2.shape)
    seed = core.reshape(seed, yshape)
    local g = self:_gradient({ y }, { seed }, { x }, true, j < m)[1]
    cols[j] = core.unsqueeze(g, 2)
  end
  local shape = { b }
  for i = 2, #yshape do shape[#shape + 1] = yshape[i] end
  for i = 2, #xshape do shape[#shape + 1] = xshape[i] end
  if m == 0 then return core.full(shape, 0, x.dtype) end
  return core.reshape(core.concat(cols, 2), shape)
end

-- tape.gradient(loss, vars) with a dot passes the loss as the tape: the Lua methods check their
-- receiver (nn/class.lua's guard; the C ones check it themselves).
require("moongrad.nn.class").guard_methods(Tape, "GradientTape", "tape", function(x)
  local t = type(x)
  return (t == "userdata" or t == "cdata") and not core.is_tensor(x)
end)

-- ---- Variables ----------------------------------------------------------------

local names = setmetatable({}, { __mode = "k" })
local counter = 0

local make_variable   -- (below: the part graph_mode's hook also uses)

-- mg.Variable(init, {name=, trainable=true, dtype=}): mutable state usable as a
-- tensor in every op; watched automatically by tapes when trainable.
local VARIABLE_OPTIONS = { dtype = { "string", one_of = { "float32", "float64", "float16", "bfloat16",
  "int8", "int16", "int32", "int64", "uint8", "bool" } },
  trainable = "boolean", name = "string" }
--- mg.Variable(init, {name=, trainable=true, dtype=})
--- Mutable state usable as a tensor in every op (v:assign(x), v:assign_add(x));
--- tapes watch a trainable one automatically. Prints as Variable(name, shape, dtype).
--- Example:
---   local v = mg.Variable(mg.zeros{2}, {name = "w"})
---   v:assign_add(mg.ones{2})
function M.Variable(init, opts)
  opts = options.check("Variable", opts, VARIABLE_OPTIONS)
  -- inside a TF1-style Graph's as_default, graph_mode makes it (and its initializer op)
  if M._graph_variable and core.tracing() then
    local v = M._graph_variable(init, opts, make_variable)
    if v then return v end
  end
  if core.tracing() then
    if M._variables_allowed == false then
      error("Variable: created while retracing a staged function; create Variables outside it or only on "
        .. "its first call (as in TF)", 2)
    end
    if core.is_tensor(init) and core.is_symbolic(init) then
      error("Variable: the initial value depends on the staged function's arguments; give a concrete value", 2)
    end
  end
  return make_variable(init, opts)
end
function make_variable(init, opts)
  if opts.dtype then init = core.tensor(init, opts.dtype)
  elseif type(init) == "number" then init = core.tensor(init, math.type and math.type(init) == "integer" and "int64" or "float32")
  end
  local trainable = opts.trainable ~= false
  local v = core.variable(init, trainable)
  counter = counter + 1
  names[v] = opts.name or ("Variable:" .. counter)
  return v
end

local methods = core.methods
methods.assign = core.assign
function methods.assign_add(v, x) return core.assign(v, core.add(v, x)) end
function methods.assign_sub(v, x) return core.assign(v, core.sub(v, x)) end
methods.read = core.read_variable   -- a read node when tracing
methods.is_variable = core.is_variable
methods.__fields = methods.__fields or {}
methods.__fields.name = function(t) return names[t] end
methods.__fields.trainable = function(t) return core.is_trainable(t) end

-- ---- custom gradients ---------------------------------------------------------

-- mg.custom_gradient(fn): fn(...) returns (value, backward) where backward(dy)
-- returns the gradient of each tensor argument (in order; nil for none). The
-- forward pass inside fn is not recorded; the backward function is.
function M.custom_gradient(fn)
  return function(...)
    local args = pack(...)
    local inputs = {}
    for i = 1, args.n do
      if core.is_tensor(args[i]) then inputs[#inputs + 1] = args[i] end
    end
    core.pause_tapes(true)
    local res = pack(pcall(fn, ...))
    core.pause_tapes(false)
    if not res[1] then error(res[2], 0) end
    local value, backward = res[2], res[3]
    if type(backward) ~= "function" then
      error("custom_gradient: the function must return (value, backward_function), got " .. type(backward), 2)
    end
    if not core.is_tensor(value) then value = core.tensor(value) end
    value = core.stop_gradient(value)   -- a fresh identity for the tape
    core.record_custom(inputs, value, backward)
    return value
  end
end

-- ---- functional forms ------------------------------------------------------------

local function as_float(x)
  if type(x) == "number" then return core.tensor(x, "float32") end
  return x
end

local function argnums_of(opts)
  local a = opts and opts.argnums or 1
  if type(a) == "number" then return { a }, true end
  return a, false
end

-- mg.value_and_grad(f, {argnums=1|{...}}): a function returning f(...) and the
-- gradient of f's (summed) result with respect to the chosen arguments.
local GRAD_OPTIONS = { argnums = { "integer|table", check = function(v)
  if type(v) == "number" then
    if v < 1 then return "must be 1 or more, got " .. v end
    return nil
  end
  for i, a in ipairs(v) do
    if type(a) ~= "number" or a < 1 or a ~= math.floor(a) then
      return string.format("must list argument positions (1 or more), entry %d is %s", i, tostring(a))
    end
  end
end } }
--- mg.value_and_grad(f, {argnums=1}) -> function(...) returning f(...), gradient
--- A function returning f's value and the gradient of its (summed) result with
--- respect to argument argnums (a list of positions gives a list of gradients).
--- Example:
---   local vg = mg.value_and_grad(function(x) return (x * x):sum() end)
---   local y, g = vg(mg.tensor{3.0})   -- tensor(9.), tensor([6.])
function M.value_and_grad(f, opts)
  if type(f) ~= "function" and not (type(f) == "table" and getmetatable(f) and getmetatable(f).__call) then
    options.raise("value_and_grad: f must be a function, got " .. type(f))
  end
  options.check("value_and_grad", opts, GRAD_OPTIONS)
  local nums, single = argnums_of(opts)
  return function(...)
    local args = pack(...)
    for _, i in ipairs(nums) do args[i] = as_float(args[i]) end
    local tape = M.GradientTape()
    for _, i in ipairs(nums) do tape:watch(args[i]) end
    local ok, value = pcall(f, unpack(args, 1, args.n))
    tape:stop()
    if not ok then error(value, 0) end
    local sources = {}
    for k, i in ipairs(nums) do sources[k] = args[i] end
    local grads = tape:gradient(value, sources, { unconnected_gradients = "zero" })
    if single then return value, grads[1] end
    return value, grads
  end
end

-- mg.grad(f, {argnums=}): like value_and_grad, returning only the gradient.
function M.grad(f, opts)
  local vg = M.value_and_grad(f, opts)
  return function(...)
    local _, g = vg(...)
    return g
  end
end

-- mg.hessian(f)(x): the matrix of second derivatives of a scalar f at x,
-- shape x.shape .. x.shape, by reverse over reverse.
function M.hessian(f)
  return function(x)
    x = as_float(x)
    local outer = M.GradientTape({ persistent = true })
    outer:watch(x)
    local inner = M.GradientTape()
    inner:watch(x)
    local ok, y = pcall(f, x)
    inner:stop()
    if not ok then outer:stop(); error(y, 0) end
    local g = inner:gradient(y, x, { unconnected_gradients = "zero" })
    outer:stop()
    return outer:jacobian(g, x)
  end
end

-- mg.jvp(f, x, v): f(x) and the Jacobian-vector product J v, by double
-- reverse mode: J^T u is linear in u, so its gradient in u along v is J v.
function M.jvp(f, x, v)
  x = as_float(x)
  local inner = M.GradientTape()
  inner:watch(x)
  local ok, y = pcall(f, x)
  inner:stop()
  if not ok then error(y, 0) end
  local outer = M.GradientTape()
  local u = core.full(y.shape, 0, y.dtype)
  outer:watch(u)
  local gx = inner:gradient(y, x, { output_gradients = u, unconnected_gradients = "zero" })
  outer:stop()
  local jv = outer:gradient(gx, u, { output_gradients = as_float(v), unconnected_gradients = "zero" })
  return y, jv
end

return M
