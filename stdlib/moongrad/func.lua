-- moongrad.func: staged functions (mg.func, TF's tf.function) and the
-- functional control flow they stage (mg.cond, mg.while_loop), plus
-- mg.lua_function and mg.print.
--
-- Calling a staged function with a signature not seen before traces it: the
-- Lua function runs once on symbolic tensors (placeholders), every op adds a
-- node, and the graph that results (a concrete function) runs in C on later
-- calls with that signature. A signature is the dtype and shape of every
-- tensor argument (nested tables included) and the value of every other
-- argument. Upvalues and globals of plain types that the trace read are
-- guards: when one changes, the function retraces instead of silently using
-- the stale value. Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local options = require("moongrad.options")
local autodiff = require("moongrad.autodiff")
local options = require("moongrad.options")

local M = {}
local unpack = table.unpack or unpack
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local is_tensor, is_symbolic = core.is_tensor, core.is_symbolic

-- ---- TensorSpec ------------------------------------------------------------------

local Spec = {}
Spec.__index = Spec
Spec.__tostring = function(s)
  return string.format("TensorSpec{shape={%s}, dtype=%s}", table.concat(s.shape, ","), s.dtype)
end

-- mg.TensorSpec{shape={-1, 784}, dtype=mg.float32, name=}: -1 is an unknown size.
function M.TensorSpec(t)
  if type(t) ~= "table" or type(t.shape) ~= "table" then
    error("TensorSpec: expected {shape={...}, dtype=...}", 2)
  end
  for i, d in ipairs(t.shape) do
    if type(d) ~= "number" or d < -1 or d ~= math.floor(d) then
      error(string.format("TensorSpec: shape entry %d must be a size or -1 (unknown), got %s", i, tostring(d)), 2)
    end
  end
  return setmetatable({ shape = t.shape, dtype = t.dtype or "float32", name = t.name }, Spec)
end
local function is_spec(x) return getmetatable(x) == Spec end

-- ---- signatures -------------------------------------------------------------------

local function shape_str(shape) return "(" .. table.concat(shape, ",") .. ")" end

-- Variables are keyed by identity: a number per Variable (tostring shows
-- the value, not the address), weak so the table never keeps one alive.
local variable_ids, nvariable_ids = setmetatable({}, { __mode = "k" }), 0
local function variable_id(v)
  local id = variable_ids[v]
  if not id then
    nvariable_ids = nvariable_ids + 1
    id = nvariable_ids
    variable_ids[v] = id
  end
  return id
end

-- A table's keys in a fixed order (describe and rebuild must agree on the
-- order of the tensors; pairs() has none).
local function key_before(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end
local function sorted_keys(v)
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, key_before)
  return keys
end

-- Walks the arguments: collects tensors (in order) and describes everything
-- else, so equal keys mean "same trace". `parts` gets one readable entry per
-- argument for retracing warnings. A table met again (shared, or a cycle such
-- as a parent link) is described by its first position, once.
local function describe(v, tensors, out, seen)
  local tv = type(v)
  if is_tensor(v) then
    if core.is_variable(v) then  -- captured by reference: the identity is the key
      out[#out + 1] = "V" .. variable_id(v)
      return
    end
    tensors[#tensors + 1] = v
    out[#out + 1] = "T"
  elseif tv == "table" then
    seen = seen or { n = 0 }
    if seen[v] then
      out[#out + 1] = "@" .. seen[v]
      return
    end
    seen.n = seen.n + 1
    seen[v] = seen.n
    out[#out + 1] = "{"
    for _, k in ipairs(sorted_keys(v)) do
      out[#out + 1] = tostring(k) .. "="
      describe(v[k], tensors, out, seen)
    end
    out[#out + 1] = "}"
  elseif tv == "number" or tv == "string" or tv == "boolean" or tv == "nil" then
    out[#out + 1] = tv:sub(1, 1) .. tostring(v)
  else
    out[#out + 1] = tv .. ":" .. tostring(v)
  end
end

local function tensor_type(t) return t.dtype .. shape_str(t.shape) end

-- Rebuilds `v` with its tensors replaced, in order, from `list` (the
-- order describe collected them in; shared tables stay shared).
local function rebuild(v, list, pos, memo)
  if is_tensor(v) then
    if core.is_variable(v) then return v end
    pos.i = pos.i + 1
    return list[pos.i]
  elseif type(v) == "table" and not is_spec(v) then
    memo = memo or {}
    if memo[v] then return memo[v] end
    local out = {}
    memo[v] = out
    for _, k in ipairs(sorted_keys(v)) do out[k] = rebuild(v[k], list, pos, memo) end
    return setmetatable(out, getmetatable(v))
  end
  return v
end

-- ---- outputs -----------------------------------------------------------------------

-- Flattens a function's results into tensors + a template to rebuild them.
local function flatten_results(res)
  local tensors, template = {}, {}
  local function walk(v)
    if is_tensor(v) then
      tensors[#tensors + 1] = v
      return { tensor = #tensors }
    elseif type(v) == "table" then
      local t = {}
      for k, item in pairs(v) do t[k] = walk(item) end
      return { table = t, mt = getmetatable(v) }
    end
    return { value = v }
  end
  for i = 1, res.n do template[i] = walk(res[i]) end
  template.n = res.n
  return tensors, template
end

-- Where two result templates (flatten_results) differ in anything but their tensors' values:
-- nil when they agree, else a description. A staged cond's branches must agree there (the node
-- selects tensors; a string, a table's shape or a nested number cannot depend on the predicate).
local function template_difference(a, b, path)
  local function show(node)
    if node.tensor then return "a tensor" end
    if node.table then return "a table" end
    local v = node.value
    return type(v) == "string" and string.format("%q", v) or tostring(v)
  end
  if (a.tensor ~= nil) ~= (b.tensor ~= nil) or (a.table ~= nil) ~= (b.table ~= nil) then
    return string.format("%s is %s in the true branch and %s in the false branch", path, show(a), show(b))
  end
  if a.tensor then
    if a.tensor ~= b.tensor then return path .. " is at a different position among the results" end
    return nil
  end
  if a.table then
    if a.mt ~= b.mt then return path .. " has different metatables in the two branches" end
    for k, item in pairs(a.table) do
      local sub = path .. "[" .. (type(k) == "string" and string.format("%q", k) or tostring(k)) .. "]"
      if b.table[k] == nil then return sub .. " is missing in the false branch" end
      local d = template_difference(item, b.table[k], sub)
      if d then return d end
    end
    for k in pairs(b.table) do
      if a.table[k] == nil then return path .. "[" .. tostring(k) .. "] is missing in the true branch" end
    end
    return nil
  end
  if not rawequal(a.value, b.value) and not (a.value ~= a.value and b.value ~= b.value) then
    return string.format("%s is %s in the true branch and %s in the false branch", path, show(a), show(b))
  end
  return nil
end

local function build_results(template, outs)
  local function build(node)
    if node.tensor then return outs[node.tensor] end
    if node.table then
      local t = {}
      for k, item in pairs(node.table) do t[k] = build(item) end
      return setmetatable(t, node.mt)
    end
    return node.value
  end
  local res = {}
  for i = 1, template.n do res[i] = build(template[i]) end
  return unpack(res, 1, template.n)
end

-- ---- guards ------------------------------------------------------------------------------------
-- The Lua state a trace read (stdlib/moongrad/guards.lua): checked at every call.
local guards_mod = require("moongrad.guards")
local run_guarded, guards_hold, describe_guard = guards_mod.run, guards_mod.hold, guards_mod.describe
M.note_call = guards_mod.note_call   -- (AutoGraph's converted calls report what they call)


-- ---- concrete functions --------------------------------------------------------------

local Concrete = {}
Concrete.__index = Concrete

-- Runs a graph; its errors are raised at the caller's caller `level` (the
-- user's line, not this file's).
local function run_graph(level, g, ...)
  local outs = pack(pcall(core.graph_call, g, ...))
  if not outs[1] then error(outs[2], level + 1) end
  return outs
end

function Concrete:__call(...)
  local args = pack(...)
  local tensors, parts = {}, {}
  for i = 1, args.n do describe(args[i], tensors, parts) end
  local outs = run_graph(2, self.graph_obj, unpack(tensors))
  return build_results(self.template, pack(unpack(outs, 2, outs.n)))
end

-- A concrete function prints its name and signature: <concrete function f(float32 (2,3)) -> (float32 (2,3))>.
local function meta_text(m)
  local dims = {}
  for i, n in ipairs(m.shape or {}) do dims[i] = tostring(n) end
  return tostring(m.dtype) .. " (" .. table.concat(dims, ",") .. ")"
end
function Concrete:__tostring()
  local ok, sig = pcall(function() return self.graph_obj:signature() end)
  local ins, outs = {}, {}
  if ok and type(sig) == "table" then
    for i, m in ipairs(sig.inputs or {}) do ins[i] = meta_text(m) end
    for i, m in ipairs(sig.outputs or {}) do outs[i] = meta_text(m) end
  end
  return string.format("<concrete function %s(%s) -> (%s)>", tostring(self.name), table.concat(ins, ", "),
    table.concat(outs, ", "))
end

-- cf:graph(): the node list ({kind, op, inputs, outputs} per node).
function Concrete:graph() return self.graph_obj:nodes() end
-- cf:gradient_graphs(): the forward/backward pairs made for calls under a
-- tape, one per set of tracked sources: {{sources = "0111", forward = graph,
-- backward = graph}, ...} (graphs have :nodes(), :pretty(), :to_dot()); for
-- a set whose calls record their ops one by one instead, {sources =, why =}.
function Concrete:gradient_graphs()
  local out = {}
  for key, sp in pairs(self.split or {}) do
    if sp then out[#out + 1] = { sources = key, forward = sp.fwd, backward = sp.bwd.graph }
    else out[#out + 1] = { sources = key, why = self.split_why[key] } end
  end
  table.sort(out, function(a, b) return a.sources < b.sources end)
  return out
end
function Concrete:pretty() return self.graph_obj:pretty() end
function Concrete:to_dot() return self.graph_obj:to_dot(self.name) end
function Concrete:signature() return self.graph_obj:signature() end

-- ---- mg.func ---------------------------------------------------------------------------

local Func = {}
Func.__index = Func

local trace_depth = 0           -- > 0 while any staged function is being traced
-- A staged function called while tracing is inlined (its Lua code runs again, adding nodes), so
-- one that calls itself recurses for as long as its own Lua code lets it: with a stop that
-- depends on a tensor, forever. Inlined calls of each function are counted (afresh for each
-- outermost trace) and a clear error comes past this depth.
local MAX_INLINE_DEPTH = 50
local inlined = {}

local warn = require("moongrad.warnings").warning

-- The placeholder shapes for this call's tensors: exact, generalised to -1
-- where an earlier trace with the same structure saw other sizes
-- (reduce_retracing), or from the input_signature.
local function trace_shapes(self, key, tensors)
  local shapes = {}
  if self.input_signature then
    for i, spec in ipairs(self.signature_specs) do shapes[i] = spec.shape end
    return shapes
  end
  local prev = self.reduce_retracing and self.last_shapes[key]
  for i, t in ipairs(tensors) do
    local s = t.shape
    if prev and prev[i] and #prev[i] == #s then
      local g = {}
      for d = 1, #s do g[d] = (prev[i][d] == s[d]) and s[d] or -1 end
      s = g
    end
    shapes[i] = s
  end
  return shapes
end

-- Makes the placeholders of a trace. Unknown sizes (-1) become probe sizes
-- (graph.h); -1 sizes that are equal in the call being traced share one
-- probe, so that x of {-1, 784} and labels of {-1} can meet in one
-- elementwise op (the batch sizes are the same size to the graph, as they
-- are in the call). Returns the equalities this assumes, {i, d, j, e}: size d
-- of tensor i equals size e of tensor j, checked before a call reuses it.
local function make_placeholders(tensors, shapes, sym)
  local probe_of, first, constraints = {}, {}, {}
  for i, t in ipairs(tensors) do
    local want, real = shapes[i], t.shape
    local s = {}
    for d = 1, #want do
      s[d] = want[d]
      if want[d] == -1 and probe_of[real[d]] then s[d] = probe_of[real[d]] end
    end
    sym[i] = core.placeholder(t.dtype, s)
    local traced = sym[i].shape
    for d = 1, #want do
      if want[d] == -1 then
        local size = real[d]
        if probe_of[size] then
          constraints[#constraints + 1] = { i, d, first[size][1], first[size][2] }
        else
          probe_of[size], first[size] = traced[d], { i, d }
        end
      end
    end
  end
  return constraints
end

local function constraints_hold(cs, tensors)
  for _, c in ipairs(cs) do
    if tensors[c[1]].shape[c[2]] ~= tensors[c[3]].shape[c[4]] then return false end
  end
  return true
end

local function check_signature(self, args)
  local specs, got = self.signature_specs, {}
  for i = 1, args.n do describe(args[i], got, {}) end
  if #got ~= #specs then
    error(string.format("%s: called with %d tensors, its input_signature has %d", self.name, #got, #specs), 4)
  end
  for i, spec in ipairs(specs) do
    local t = got[i]
    local ok = t.dtype == spec.dtype and #t.shape == #spec.shape
    for d = 1, #spec.shape do ok = ok and (spec.shape[d] == -1 or spec.shape[d] == t.shape[d]) end
    if not ok then
      error(string.format("%s: argument tensor %d is %s %s, which does not match its input_signature %s",
        self.name, i, t.dtype, shape_str(t.shape), tostring(spec)), 4)
    end
  end
end

-- Which argument's trace type differs from the previous trace (for warnings).
local function changed_argument(prev, now, guard)
  if guard then return guard end
  if not prev then return "the arguments" end
  for i = 1, math.max(#prev, #now) do
    if prev[i] ~= now[i] then
      return string.format("argument %d (was %s, now %s)", i, tostring(prev[i]), tostring(now[i]))
    end
  end
  return "a guarded upvalue or global"
end

local function arg_types(args)
  local out = {}
  for i = 1, args.n do
    local v = args[i]
    if is_tensor(v) then out[i] = tensor_type(v)
    elseif type(v) == "table" then
      local t, p = {}, {}
      describe(v, t, p)
      out[i] = "table" .. table.concat(p, "")
    else out[i] = type(v) .. " " .. tostring(v) end
  end
  return out
end

function Func:trace(args, key, tensors)
  if self.max_traces and self.ntraces >= self.max_traces then
    local msg = string.format("%s: retracing beyond max_traces=%d (%s changed)", self.name, self.max_traces,
      changed_argument(self.last_types, arg_types(args), self.guard_change))
    if self.on_retrace == "error" then options.raise(msg) end
    warn(msg)
  end
  local first = self.ntraces == 0
  local g = core.trace_begin(self.name)
  local sym, shapes = {}, trace_shapes(self, key, tensors)
  local constraints
  local ok, err = pcall(function()
    constraints = make_placeholders(tensors, shapes, sym)
  end)
  if not ok then core.trace_abort(); error(err, 0) end
  local pos = { i = 0 }
  local targs = {}
  for i = 1, args.n do targs[i] = rebuild(args[i], sym, pos) end
  if trace_depth == 0 then inlined = setmetatable({}, { __mode = "k" }) end
  trace_depth = trace_depth + 1
  local saved_first = autodiff._variables_allowed
  autodiff._variables_allowed = first and self.name or false
  local res, guards = run_guarded(self.traced_fn, unpack(targs, 1, args.n))
  autodiff._variables_allowed = saved_first
  trace_depth = trace_depth - 1
  if not res[1] then
    core.trace_abort()
    error(res[2], 0)
  end
  local results = pack(unpack(res, 2, res.n))
  local outs, template = flatten_results(results)
  core.trace_end(g, outs)
  local counts = self.optimize and core.graph_optimize(g, self.passes) or nil
  local cf = setmetatable({ graph_obj = g, template = template, guards = guards,
    name = self.name, key = key, constraints = constraints, pass_counts = counts, shapes = shapes }, Concrete)
  -- the Variables it reads and its effects, for calls under a tape (below)
  local vars, _, effect = core.graph_externals(nil, g)
  cf.vars, cf.effect = vars, effect
  cf.ntensors = #tensors
  -- Tracing (and AutoGraph's conversion) leaves megabytes of garbage that the
  -- generational collector would otherwise promote to old objects and walk on
  -- every later collection: eager ops measured 3x slower until a full cycle.
  collectgarbage()
  -- the fast call path: every argument a plain tensor, the results the outputs in order
  local simple = #tensors == args.n
  for i = 1, args.n do simple = simple and is_tensor(args[i]) and not core.is_variable(args[i]) end
  for i = 1, template.n do simple = simple and template[i].tensor == i end
  cf.simple = simple and template.n == #outs
  self.ntraces = self.ntraces + 1
  self.last_types = arg_types(args)
  if self.reduce_retracing then
    local s = {}
    for i, t in ipairs(tensors) do s[i] = shapes[i] end
    self.last_shapes[key] = s
  end
  local list = self.cache[key]
  if not list then list = {}; self.cache[key] = list end
  table.insert(list, 1, cf)
  return cf
end

-- The concrete function for these arguments (tracing when needed).
function Func:concrete(...)
  local args = pack(...)
  return (self:lookup(args))
end

function Func:lookup(args)
  if self.input_signature then check_signature(self, args) end
  self.guard_change = nil  -- set when a guard is why no concrete function fits
  local tensors, parts = {}, {}
  for i = 1, args.n do describe(args[i], tensors, parts) end
  local key = table.concat(parts, "\0")
  local list = self.cache[key]
  if list then
    for _, cf in ipairs(list) do
      if core.graph_accepts(cf.graph_obj, unpack(tensors)) and
          (not cf.constraints[1] or constraints_hold(cf.constraints, tensors)) then
        local ok, gd, now = guards_hold(cf.guards)
        if ok then return cf, tensors, false end
        self.guard_change = self.guard_change or describe_guard(gd, now, self.traced_fn)
      end
    end
  end
  -- the retracing warning: more than 5 traces in the last 10 calls
  return self:trace(args, key, tensors), tensors, true
end

-- core.graph_call_or: graph_call when the tensors fit and no tape records, else the fallback
local graph_call_or = core.graph_call_or
local tapes_track, variable_writes = core.tapes_track, core.variable_writes

-- ---- calls under a recording tape ------------------------------------------------------
--
-- A tape around a call of a staged function records the call as one group
-- step (core.record_group), as TensorFlow does: once per concrete function
-- and set of sources the tapes track, the function is traced again under a
-- tape followed by the tape's gradient, and that graph is cut (C:
-- mg_graph_split) into a forward graph, which returns the results and the
-- intermediates the gradient needs, and a backward graph, which maps those
-- saved values and the upstream gradients to the gradients of the
-- arguments' float tensors and of the Variables the function reads (cf.split).
-- A call runs the forward graph with the tapes paused; the step's backward
-- runs the backward graph on what that call saved, so it neither recomputes
-- the forward nor reads a Variable again. When a tape records the gradient
-- computation itself and tracks the call's inputs (higher order: the saved
-- values would be constants to it), the step's backward instead calls a
-- backward staged function that re-runs the forward under a tape inside its
-- trace (rematerialisation, cf.bwd), so the recorded gradient is a function
-- of the inputs. Calls whose graph has effects a re-run would repeat
-- (Variable assigns, random ops, Lua calls) run node by node with every op
-- recorded, as do calls returning an argument (or one tensor twice), and all
-- calls after mg.config.staged_backward(false).

local SLOT = {}   -- where an argument tensor goes in an argument skeleton
-- The backward functions read no globals: their closures must not share this
-- chunk's _ENV, which tracing swaps for its guard proxy.
local ipairs_, pcall_, error_ = ipairs, pcall, error

-- The arguments with every tensor (not Variable) replaced by SLOT, in
-- describe's order (so fill puts a list of tensors back in place).
local function skeleton(v, memo)
  if is_tensor(v) then return core.is_variable(v) and v or SLOT end
  if type(v) ~= "table" or is_spec(v) then return v end
  memo = memo or {}
  if memo[v] then return memo[v] end
  local out = {}
  memo[v] = out
  for _, k in ipairs(sorted_keys(v)) do out[k] = skeleton(v[k], memo) end
  return setmetatable(out, getmetatable(v))
end

local function fill(v, list, pos, memo)
  if v == SLOT then
    pos.i = pos.i + 1
    return list[pos.i]
  end
  if is_tensor(v) or type(v) ~= "table" or is_spec(v) then return v end
  memo = memo or {}
  if memo[v] then return memo[v] end
  local out = {}
  memo[v] = out
  for _, k in ipairs(sorted_keys(v)) do out[k] = fill(v[k], list, pos, memo) end
  return setmetatable(out, getmetatable(v))
end

local is_float, zeros_like  -- defined with the control flow's gradients below
local backward_for

-- Watches the sources marked in need (inputs[1..nin], then the Variables
-- vars) on tape; returns them and their indices in need.
local function watch_sources(tape, inputs, nin, vars, need)
  local srcs, at = {}, {}
  for i = 1, nin do
    if need[i] then tape:watch(inputs[i]); srcs[#srcs + 1] = inputs[i]; at[#at + 1] = i end
  end
  for k, v in ipairs_(vars) do
    if need[nin + k] then tape:watch(v); srcs[#srcs + 1] = v; at[#at + 1] = nin + k end
  end
  return srcs, at
end

-- Which sources each float output reaches ({[k] = {[source index] =
-- bool}}): an output whose upstream gradient is nil at a call must leave its
-- sources' gradients nil, not zeros. (The graph of these gradients is dead
-- code: the optimiser and the split leave it out.)
local function connections(tape, targets, srcs, at)
  local conn = {}
  for k, o in ipairs_(targets) do
    local gk = tape:_gradient({ o }, nil, srcs, false, true)
    conn[k] = {}
    for j, i in ipairs_(at) do conn[k][i] = gk[j] ~= nil end
  end
  return conn
end

-- The backward staged function of concrete function cf for the sources
-- marked in need (cf.skel: the arguments' structure): bwd(tensors...,
-- upstream...) with one upstream gradient per float output returns the
-- gradient of each argument tensor, then of each Variable in cf.vars (nil:
-- not needed, or unconnected). Sources not needed are left out of the graph
-- (a loss's data arguments cost nothing). Sets cf.conn[key]: for each float
-- output, the sources it reaches.
local function backward_of(self, cf, need)
  local key = {}
  for i = 1, cf.ntensors + #cf.vars do key[i] = need[i] and "1" or "0" end
  key = table.concat(key)
  local bwd = cf.bwd[key]
  if bwd then return bwd, key end
  local skel, nargs, nin, vars, fn = cf.skel, cf.skel.n, cf.ntensors, cf.vars, self.traced_fn
  local nsrc = nin + #vars
  local needed = {}
  for i = 1, nsrc do needed[i] = need[i] and true or false end
  need = needed
  bwd = M.func(function(...)
    local all = pack(...)
    local tape = core.tape_new(false, true)
    tape:start()
    local srcs, at = watch_sources(tape, all, nin, vars, need)
    local pos, targs = { i = 0 }, {}
    for i = 1, nargs do targs[i] = fill(skel[i], all, pos) end
    local res = pack(pcall_(fn, unpack(targs, 1, nargs)))
    tape:stop()
    if not res[1] then error_(res[2], 0) end
    local outs = flatten_results(pack(unpack(res, 2, res.n)))
    local targets, ups, u = {}, {}, nin
    for _, o in ipairs_(outs) do
      if is_float(o) then
        u = u + 1
        targets[#targets + 1] = o; ups[#ups + 1] = all[u]
      end
    end
    local grads = {}
    if #targets > 0 and #srcs > 0 then
      cf.conn[key] = connections(tape, targets, srcs, at)
      local g = tape:_gradient(targets, ups, srcs, false, false)
      for j, i in ipairs_(at) do grads[i] = g[j] end
    end
    return unpack(grads, 1, nsrc)
  end, { name = cf.name .. "_backward", reduce_retracing = self.reduce_retracing or self.input_signature,
    autograph = false })
  cf.bwd[key] = bwd
  return bwd, key
end

-- Whether the outputs of a call (outs[2..]) can be the outputs of one group
-- step: each a tensor of its own, not an argument returned as is, not a
-- captured tensor a tape already tracks, not one output twice (handles are
-- boxes: compared by core.tensor_key).
local function fresh_outputs(tensors, outs)
  local seen, key = {}, core.tensor_key
  for _, t in ipairs(tensors) do seen[key(t)] = true end
  for i = 2, outs.n do
    local k = key(outs[i])
    if seen[k] or tapes_track(nil, outs[i]) then return false end
    seen[k] = true
  end
  return true
end

-- The backward graph of split sp giving only its gradients number sel (a
-- list): a tape asking for fewer sources than the call's tapes tracked
-- (gradients of the Variables of a call whose input is watched too) does not
-- pay for the others. Made once per selection from the unoptimised graph.
function backward_for(self, sp, sel)
  local key = table.concat(sel, ",")
  local b = sp.by_need[key]
  if b then return b end
  b = { graph = core.graph_select(sp.raw, sel), gpos = {} }
  for j, k in ipairs(sel) do b.gpos[j] = sp.gpos[k] end
  if self.optimize then core.graph_optimize(b.graph, self.passes) end
  sp.by_need[key] = b
  return b
end

-- The forward and backward graphs of cf for the sources marked in need
-- (argument tensors, then cf.vars), traced once per key (need as a string);
-- false when the gradient cannot be staged (the call then runs node by node).
local function split_of(self, cf, args, tensors, need, key)
  local sp = cf.split[key]
  if sp ~= nil then return sp end
  cf.split_traces = (cf.split_traces or 0) + 1
  local nin, vars, fn = #tensors, cf.vars, self.traced_fn
  local g = core.trace_begin(cf.name)
  local tape = core.tape_new(false, true)
  trace_depth = trace_depth + 1
  local allowed = autodiff._variables_allowed
  autodiff._variables_allowed = false
  local ok, res = pcall(function()
    local sym = {}
    make_placeholders(tensors, cf.shapes, sym)
    tape:start()
    local srcs, at = watch_sources(tape, sym, nin, vars, need)
    local pos, targs = { i = 0 }, {}
    for i = 1, args.n do targs[i] = rebuild(args[i], sym, pos) end
    local outs = flatten_results(pack(fn(unpack(targs, 1, args.n))))
    tape:stop()
    if #outs ~= #cf.graph_obj:signature().outputs then  -- Lua state the guards do not see changed it
      error(string.format("%s: traced again for the gradient, it returned %d tensors instead of %d", cf.name,
        #outs, #cf.graph_obj:signature().outputs), 0)
    end
    local list, targets, ups = {}, {}, {}
    for k, o in ipairs_(outs) do
      list[k] = o
      if is_float(o) then targets[#targets + 1] = o; ups[#ups + 1] = core.placeholder(o.dtype, o.shape) end
    end
    local conn, gpos = {}, {}
    if #targets > 0 and #srcs > 0 then
      conn = connections(tape, targets, srcs, at)
      local gr = tape:_gradient(targets, ups, srcs, false, false)
      for j, i in ipairs_(at) do
        if gr[j] then list[#list + 1] = gr[j]; gpos[#gpos + 1] = i end
      end
    end
    return { nout = #outs, list = list, conn = conn, gpos = gpos }
  end)
  tape:stop()
  trace_depth = trace_depth - 1
  autodiff._variables_allowed = allowed
  if ok then
    ok, res = pcall(function()
      core.trace_end(g, res.list)
      local fwd, raw, src = core.graph_split(g, nin, res.nout)
      if self.optimize then core.graph_optimize(fwd, self.passes) end
      local all = {}
      for k = 1, #res.gpos do all[k] = k end
      local sp = { fwd = fwd, raw = raw, src = src, nout = res.nout, conn = res.conn, gpos = res.gpos, by_need = {} }
      sp.bwd = backward_for(self, sp, all)
      return sp
    end)
  else
    core.trace_abort()
  end
  sp = ok and res
  cf.split[key] = sp
  if not ok then cf.split_why[key] = tostring(res) end  -- cf:gradient_graphs() shows it
  return sp
end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for d = 1, #a do if a[d] ~= b[d] then return false end end
  return true
end

-- Appends to call the upstream gradient of each float result (zeros where
-- none reached it).
local function upstream_of(self, results, gouts, call)
  for k, o in ipairs(results) do
    local gk = gouts[k]
    if gk and not same_shape(gk.shape, o.shape) then
      error(string.format("gradient of staged function %s: the gradient reaching its output %d has shape %s, "
        .. "the output has shape %s", self.name, k, shape_str(gk.shape), shape_str(o.shape)), 0)
    end
    if is_float(o) then call[#call + 1] = gk or zeros_like(o) end
  end
  return call
end

-- The sources (indices into inputs) that the float results with an upstream
-- gradient reach: an unconnected source's gradient stays nil, not zeros.
local function reached_by(conn, results, gouts)
  local reached, k = {}, 0
  for j, o in ipairs(results) do
    if is_float(o) then
      k = k + 1
      if gouts[j] and conn[k] then for i in pairs(conn[k]) do reached[i] = reached[i] or conn[k][i] end end
    end
  end
  return reached
end

-- The gradients of a taped call by the rematerialising backward function.
-- It re-runs the function, which reads the Variables as they are now: one
-- written since the call (writes: core.variable_writes() at the call; see
-- mg_variable_version) would give the gradient at its new value, so that is
-- an error.
local function remat_grads(self, cf, inputs, results, gouts, need, writes)
  for _, v in ipairs(cf.vars) do
    local since = (core.variable_version(v) - writes) % 4294967296
    if since >= 1 and since < 2147483648 then
      error(string.format("gradient of staged function %s: a Variable it reads (%s%s %s) was assigned after the "
        .. "call and before this gradient, which a tape records (a higher-order gradient re-runs the function "
        .. "and would see the new value); take the gradient before changing the Variable", self.name,
        v.name and (v.name .. ", ") or "", v.dtype, shape_str(v.shape)), 0)
    end
  end
  local nin, call = cf.ntensors, {}
  for i = 1, nin do call[i] = inputs[i] end
  upstream_of(self, results, gouts, call)
  local bwd, key = backward_of(self, cf, need)
  local g = pack(bwd(unpack(call)))
  local grads, reached = {}, reached_by(cf.conn[key] or {}, results, gouts)
  for i = 1, #inputs do if need[i] and reached[i] then grads[i] = g[i] end end
  return grads
end

-- Runs cf on tensors under a recording tape; returns pack(true, outputs...).
function Func:call_taped(cf, args, tensors)
  if M.staged_backward == false or cf.effect then  -- node by node, every op recorded
    return run_graph(3, cf.graph_obj, unpack(tensors))
  end
  local nin = #tensors
  local inputs, need, key, any = {}, {}, {}, false
  for i = 1, nin do inputs[i] = tensors[i] end
  for k, v in ipairs(cf.vars) do inputs[nin + k] = v end
  for i, t in ipairs(inputs) do
    need[i] = is_float(t) and tapes_track(nil, t)
    key[i] = need[i] and "1" or "0"
    any = any or need[i]
  end
  if not cf.split then cf.split, cf.split_why = {}, {} end
  key = table.concat(key)
  local sp = any and split_of(self, cf, args, tensors, need, key)
  if not sp then return run_graph(3, cf.graph_obj, unpack(tensors)) end
  -- the results, then the saved values (the backward graph's first inputs) in
  -- a box C empties when the tape drops the record: they are let go then,
  -- not when the collector gets to them, so the next call reuses their memory
  core.pause_tapes(true)
  local outs = pack(pcall(core.graph_call_keep, sp.fwd, sp.nout, sp.src, unpack(tensors)))
  core.pause_tapes(false)
  if not outs[1] then error(outs[2], 3) end
  local kept = outs[outs.n]
  outs[outs.n], outs.n = nil, outs.n - 1
  local results = {}
  for k = 1, sp.nout do results[k] = outs[1 + k] end
  if not fresh_outputs(tensors, outs) then
    cf.split[key] = false  -- an argument returned as is, say: from now on node by node
    cf.split_why[key] = "an output is an argument, a captured tensor a tape tracks, or one tensor twice"
    return run_graph(3, cf.graph_obj, unpack(tensors))  -- run it again, recording its ops
  end
  if not cf.skel then
    cf.skel, cf.bwd, cf.conn = { n = args.n }, {}, {}
    for i = 1, args.n do cf.skel[i] = skeleton(args[i]) end
  end
  local writes = variable_writes()
  core.record_group(inputs, results, function(gouts, needed)
    if tapes_track(nil, unpack(inputs)) then  -- higher order: the gradient must see the inputs
      return remat_grads(self, cf, inputs, results, gouts, needed, writes)
    end
    local sel = {}
    for k, i in ipairs(sp.gpos) do if needed[i] then sel[#sel + 1] = k end end
    local grads = {}
    if not sel[1] then return grads end
    local b = #sel == #sp.gpos and sp.bwd or backward_for(self, sp, sel)
    local g = pack(core.graph_call_kept(b.graph, kept, unpack(upstream_of(self, results, gouts, {}))))
    local reached = reached_by(sp.conn, results, gouts)
    for k, i in ipairs(b.gpos) do
      if reached[i] then grads[i] = g[k] end
    end
    return grads
  end, kept)
  return outs
end

local function inline_done(self, depth, ...)
  inlined[self] = depth
  return ...
end

-- A call made while tracing: inlined, so it must not recurse without end.
local function inline_call(self, ...)
  local depth = inlined[self] or 0
  if depth >= MAX_INLINE_DEPTH then
    options.raise(string.format("%s: this staged function called itself %d levels deep while being traced; a "
      .. "staged function called while tracing is inlined into the graph, so recursion must stop on a Lua value "
      .. "(such as a number argument), not on a tensor: use mg.while_loop or a loop over a tensor condition",
      self.name, depth))
  end
  inlined[self] = depth + 1
  return inline_done(self, depth, self.traced_fn(...))
end

function Func:__call(...)
  -- called while tracing (or while a TF1 Graph is built, graph_mode.lua): inline it
  if trace_depth > 0 or autodiff._graph_building then return inline_call(self, ...) end
  if self.eager or M.run_functions_eagerly then return self.traced_fn(...) end
  local cf = self.fast
  if cf and cf.plain then  -- no guards or constraints: one C call checks the tensors and runs
    -- (under a recording tape it calls call_plain_taped, which records the call)
    return graph_call_or(cf.graph_obj, self.call_plain_taped, self, ...)
  end
  if cf and select("#", ...) == cf.nargs and core.graph_accepts(cf.graph_obj, ...)
      and (not cf.guards[1] or guards_hold(cf.guards))
      and (not cf.constraints[1] or constraints_hold(cf.constraints, { ... })) then
    -- tensors in, tensors out: no tables (under a recording tape, call_slow records the call)
    return graph_call_or(cf.graph_obj, self.call_slow, self, ...)
  end
  return self:call_slow(...)
end

-- A call of the plain concrete function self.fast (tensors in, its outputs
-- out) that graph_call_or did not run: a tape records, or the tensors do not
-- fit (then the full lookup).
function Func:call_plain_taped(...)
  local cf = self.fast
  if not core.graph_accepts(cf.graph_obj, ...) then return self:call_slow(...) end
  if not tapes_track(cf.vars, ...) then return core.graph_call(cf.graph_obj, ...) end
  local outs = self:call_taped(cf, pack(...), { ... })
  return unpack(outs, 2, outs.n)
end

function Func:call_slow(...)
  local args = pack(...)
  local cf, tensors, traced = self:lookup(args)
  local h = self.history
  h[#h + 1] = traced
  if #h > 10 then table.remove(h, 1) end
  if traced then
    local n = 0
    for _, t in ipairs(h) do if t then n = n + 1 end end
    if n > 5 and not self.warned then
      self.warned = true
      warn(string.format("%s: %d of the last %d calls triggered retracing; %s. Pass tensors instead of "
        .. "changing Lua values, use input_signature or reduce_retracing=true", self.name, n, #h,
        changed_argument(self.prev_types, self.last_types, self.guard_change)))
    end
  end
  self.prev_types = self.last_types
  if cf.simple then
    cf.nargs = args.n
    cf.plain = not cf.guards[1] and not cf.constraints[1]
    self.fast = cf
  end
  local outs
  if tapes_track(cf.vars, unpack(tensors)) then outs = self:call_taped(cf, args, tensors)
  else outs = run_graph(2, cf.graph_obj, unpack(tensors)) end
  return build_results(cf.template, pack(unpack(outs, 2, outs.n)))
end

function Func:trace_count() return self.ntraces end

-- A staged function prints its name and how many times it was traced.
function Func:__tostring()
  return string.format("<staged function %s, %d trace%s>", tostring(self.name), self.ntraces,
    self.ntraces == 1 and "" or "s")
end

-- How many backward functions of its concrete functions were traced, at
-- every order (each trace runs the Lua function once more; see call_taped).
function Func:backward_trace_count()
  local n = 0
  for _, list in pairs(self.cache) do
    for _, cf in ipairs(list) do
      n = n + cf:backward_trace_count()
      for _, bwd in pairs(cf.bwd or {}) do n = n + bwd:backward_trace_count() end
    end
  end
  return n
end

-- How many times the Lua function ran again for the gradient of concrete
-- function cf (a call's concrete function, Func:concrete): 0 before a tape
-- needed it; one forward/backward pair per set of sources the tapes track,
-- and one rematerialising backward function per set of sources a
-- higher-order gradient needed.
function Concrete:backward_trace_count()
  local n = self.split_traces or 0
  for _, bwd in pairs(self.bwd or {}) do n = n + bwd.ntraces end
  return n
end

-- Whether concrete function cf of this function still holds: the values its
-- trace read (guards) are unchanged. For hosts that keep cf's graph and run
-- it directly (moongrad.h's mg_call_into); false means: look it up again.
function Func:guards_hold(cf)
  return (guards_hold(cf.guards))
end

-- mg.func(fn, {input_signature=, reduce_retracing=false, name=, max_traces=,
-- on_retrace="warn"|"error", eager=false, optimize=true}): a staged function.
local PASS_NAMES = {}
for _, name in ipairs(core.pass_names()) do PASS_NAMES[name] = true end
local FUNC_OPTIONS = {
  name = "string",
  input_signature = "table",
  reduce_retracing = "boolean",
  max_traces = { "integer", min = 1 },
  on_retrace = { "string", one_of = { "warn", "error" } },
  eager = "boolean",
  optimize = "boolean",
  autograph = { "boolean|string", check = function(v)
    if v ~= true and v ~= false and v ~= "warn" then return "must be true, false or \"warn\", got " .. options.show(v) end
  end },
  passes = { "table", check = function(v)
    local names = core.pass_names()
    for k, on in pairs(v) do
      if not PASS_NAMES[k] then
        return string.format("names passes to turn off, like {fuse = false}; %s is not a pass (passes: %s)",
          type(k) == "string" and ("'" .. k .. "'") or ("entry [" .. tostring(k) .. "] = " .. options.show(on)),
          table.concat(names, ", "))
      end
      if type(on) ~= "boolean" then return string.format("'%s' must be true or false, got %s", k, options.show(on)) end
    end
  end },
}

--- mg.func(fn, {input_signature=, reduce_retracing=false, name=, max_traces=, on_retrace="warn", eager=false, optimize=true, autograph=true, passes=})
--- Stages fn: traced once per input signature (dtype and shape of each tensor,
--- value of each other argument) into a graph that runs in C; AutoGraph turns its
--- Lua if/while/for over tensors into graph control flow. Returns a callable
--- staged function (f:get_concrete_function(...), f:pretty(...)). doc/staging.md.
--- Example:
---   local f = mg.func(function(x) return mg.relu(x) * 2 end)
---   print(f(mg.tensor{-1.0, 3.0}))   -- tensor([0., 6.], dtype=float32)
function M.func(fn, opts)
  if type(fn) ~= "function" then error("func: expected a function, got " .. type(fn), 2) end
  opts = options.check("func", opts, FUNC_OPTIONS)
  local info = debug.getinfo(fn, "S")
  local self = setmetatable({
    fn = fn,
    traced_fn = M.convert and opts.autograph ~= false and M.convert(fn, opts) or fn,
    name = opts.name or (info.short_src .. ":" .. tostring(info.linedefined)),
    reduce_retracing = opts.reduce_retracing and true or false,
    max_traces = opts.max_traces,
    on_retrace = opts.on_retrace or "warn",
    eager = opts.eager,
    optimize = opts.optimize ~= false,
    passes = opts.passes,
    cache = {}, ntraces = 0, history = {}, last_shapes = {},
  }, Func)
  if opts.input_signature then
    self.input_signature = true
    self.signature_specs = {}
    for i, s in ipairs(opts.input_signature) do
      if not is_spec(s) then error(string.format("func: input_signature entry %d is not a TensorSpec", i), 2) end
      self.signature_specs[i] = s
    end
  end
  return self
end

--- mg.executing_eagerly() -> boolean
--- False while a staged function is being traced (ops then add graph nodes), true otherwise.
function M.executing_eagerly() return not core.tracing() end

-- ---- control flow ----------------------------------------------------------------------

local function truthy(v)
  if is_tensor(v) then
    if v:numel() ~= 1 then
      error(string.format("condition: a tensor condition must have one element, got shape %s; "
        .. "reduce it (mg.all, mg.any)", shape_str(v.shape)), 3)
    end
    local x = v:item()
    return x ~= 0 and x ~= false
  end
  return v and true or false
end

local function as_tensor(v)
  if is_tensor(v) then return v end
  if type(v) == "number" then
    return core.tensor(v)   -- core's dtype rule: int64 for an integer (LuaJIT: no fraction), else float32
  end
  if type(v) == "boolean" then return core.tensor(v) end
  error("expected a tensor or a number, got " .. type(v), 3)
end

-- Traces fn(...) into a subgraph of the current trace; returns it and the result template.
local function trace_branch(name, fn, placeholders_of, ...)
  local g = core.trace_begin(name)
  local args = {}
  local ok, err = pcall(function(...)
    for i, spec in ipairs(placeholders_of or {}) do args[i] = core.placeholder(spec.dtype, spec.shape) end
  end, ...)
  if not ok then core.trace_abort(); error(err, 0) end
  local res = pack(pcall(fn, unpack(args, 1, #(placeholders_of or {}))))
  if not res[1] then core.trace_abort(); error(res[2], 0) end
  local results = pack(unpack(res, 2, res.n))
  local outs, template = flatten_results(results)
  for i, o in ipairs(outs) do outs[i] = o end
  local ok2, err2 = pcall(core.trace_end, g, outs)
  if not ok2 then error(err2, 0) end
  return g, template, args
end

-- ---- gradients of staged cond/while nodes -----------------------------------------------
--
-- A GradientTape recording inside a staged function sees a cond/while node
-- as one step (core.record_group) whose inputs are the loop's initial values
-- and the node's externals: the outer tensors its subgraphs capture and the
-- Variables they read. Its backward is itself staged control flow, built
-- from the same Lua functions with a tape inside (so higher-order and nested
-- gradients need no special case):
-- - cond: a cond on the same predicate whose branches re-run each branch
--   under a tape and return its vector-Jacobian product for the externals;
-- - while: the forward loop keeps each iteration's loop variables (the node's
--   extra outputs, stacked by the executor); a backward loop runs the
--   iterations in reverse, re-running the body from that iteration's saved
--   values under a tape, carrying the loop variables' gradient and summing
--   the externals' gradients. Only the loop-carried state is kept, not every
--   intermediate: memory is trips x state, paid for by one extra body
--   forward per iteration in the backward (TF's while_v2 keeps all
--   intermediates instead).
-- Re-running a branch or body must not repeat effects: one that assigns a
-- Variable, draws random numbers or calls Lua is refused when differentiated.

function is_float(t)
  if not is_tensor(t) then return false end
  local dt = t.dtype
  return dt == "float32" or dt == "float64" or dt == "float16" or dt == "bfloat16"
end

function zeros_like(t)
  for _, d in ipairs(t.shape) do
    -- an unknown size while tracing is a dim object, not a number: compare nothing
    if core.is_unknown_size(d) or d < 0 then return core.mul(core.stop_gradient(t), 0) end
  end
  return core.full(t.shape, 0, t.dtype)
end

-- Runs fn() (which returns the node's outputs as a flat list) under a fresh
-- tape watching srcs; returns the gradients of its float results (weighted
-- by ograds, by position) for each source (zeros when unconnected).
local function vjp_of(fn, srcs, ograds, what)
  local tape = core.tape_new(false, false)
  tape:start()
  for _, x in ipairs(srcs) do tape:watch(x) end
  local ok, outs = pcall(fn)
  tape:stop()
  if not ok then error(outs, 0) end
  local targets, tg = {}, {}
  for k, o in ipairs(outs) do
    if not is_tensor(o) then o = as_tensor(o) end
    if ograds[k] and is_float(o) then targets[#targets + 1] = o; tg[#tg + 1] = ograds[k] end
  end
  if #targets == 0 or #srcs == 0 then
    local z = {}
    for i, x in ipairs(srcs) do z[i] = zeros_like(x) end
    return z
  end
  local ok, g = pcall(tape._gradient, tape, targets, tg, srcs, true, false)
  if not ok then error(what .. ": " .. tostring(g), 0) end
  return g
end

local function effects_check(what, part, effect)
  if effect then
    error(string.format("%s gradient: the %s, which runs again for the gradient, %s; move that out of the "
      .. "staged control flow, or put the tape around the call of the staged function", what, part, effect), 0)
  end
end

-- The gradient outputs of a node: the gradient reaching each output, zeros for none.
local function output_grads(outs, gouts)
  local g = {}
  for k, o in ipairs(outs) do
    if is_float(o) then g[k] = gouts[k] or zeros_like(o) end
  end
  return g
end

-- reruns: the two branches as functions returning the node's outputs (a flat list).
local function record_cond(pred, reruns, effect, ext, outs)
  core.record_group(ext, outs, function(gouts, need)
    effects_check("cond", "branch", effect)
    local srcs, at = {}, {}
    for i, e in ipairs(ext) do
      if need[i] then srcs[#srcs + 1] = e; at[#at + 1] = i end
    end
    local og = output_grads(outs, gouts)
    local function branch(fn)
      return function() return unpack(vjp_of(fn, srcs, og, "cond gradient"), 1, #srcs) end
    end
    local res = pack(M.cond(pred, branch(reruns[1]), branch(reruns[2])))
    local grads = {}
    for j, i in ipairs(at) do grads[i] = res[j] end
    return grads
  end)
end

-- rerun(vars): the body on a list of the n loop variables, returning their
-- new values (a list); init: their initial values; outs: the node's 2n+1
-- outputs (core.trace_while with save); pass (optional): pass[i] is true
-- when the body hands variable i back unchanged (its output is its own
-- placeholder). Such a variable starts every iteration with its final
-- value, so the backward reads outs[i] and not its stack, which then no
-- node reads and the forward does not keep (graph.c; were it read, the
-- executor would still give a broadcast view, not trips copies).
local function record_while(rerun, specs, effect, init, ext, outs, pass)
  local n = #init
  local results = {}
  for i = 1, n do results[i] = outs[i] end
  local inputs = {}
  for i = 1, n do inputs[i] = init[i] end
  for _, e in ipairs(ext) do inputs[#inputs + 1] = e end
  core.record_group(inputs, results, function(gouts, need)
    effects_check("while_loop", "body", effect)
    local fl, srcs_ext, at = {}, {}, {}   -- float loop variables; needed externals
    for i = 1, n do if is_float(init[i]) then fl[#fl + 1] = i end end
    for k, e in ipairs(ext) do
      if need[n + k] then srcs_ext[#srcs_ext + 1] = e; at[#at + 1] = n + k end
    end
    local og = output_grads(results, gouts)
    local nf, ne = #fl, #srcs_ext
    -- backward loop variables: the iteration (counting down), the float
    -- variables' gradients, the externals' summed gradients
    local bvars, inv = { outs[2 * n + 1] }, { {} }
    for j, i in ipairs(fl) do bvars[1 + j] = og[i]; inv[1 + j] = specs[i].shape end
    for k, e in ipairs(srcs_ext) do bvars[1 + nf + k] = zeros_like(e); inv[1 + nf + k] = false end
    local stacks = {}
    for i = 1, n do stacks[i] = outs[n + i] end
    local res = M.while_loop(function(it) return core.greater(it, 0) end, function(it, ...)
      local carried = pack(...)
      local vars = {}
      for i = 1, n do vars[i] = (pass and pass[i]) and outs[i] or core.take(stacks[i], it, 1) end
      local srcs, ograds = {}, {}
      for j, i in ipairs(fl) do srcs[j] = vars[i] end
      for k, e in ipairs(srcs_ext) do srcs[nf + k] = e end
      for j, i in ipairs(fl) do ograds[i] = carried[j] end
      local g = vjp_of(function() return rerun(vars) end, srcs, ograds, "while_loop gradient")
      local new = { core.sub(it, 1) }
      for j = 1, nf do new[1 + j] = g[j] end
      for k = 1, ne do new[1 + nf + k] = core.add(carried[nf + k], g[nf + k]) end
      return unpack(new, 1, 1 + nf + ne)
    end, bvars, { shape_invariants = inv })
    local grads = {}
    for j, i in ipairs(fl) do if need[i] then grads[i] = res[1 + j] end end
    for k, i in ipairs(at) do grads[i] = res[1 + nf + k] end
    return grads
  end)
end

-- For AutoGraph's staged if/while (autograph/runtime.lua), which build their
-- nodes themselves: record their gradient the same way.
M._record_cond_grad = record_cond
M._record_while_grad = record_while

-- mg.cond(pred, true_fn, false_fn): true_fn() if pred else false_fn(). With a
-- symbolic pred (inside a staged function) both branches are traced into a
-- cond node; they must return the same structure, dtypes and shapes.
function M.cond(pred, true_fn, false_fn)
  if not (is_tensor(pred) and is_symbolic(pred)) then
    if truthy(pred) then return true_fn() end
    return false_fn()
  end
  local gt, tt = trace_branch("cond_then", function()
    local r = pack(true_fn())
    for i = 1, r.n do if type(r[i]) == "number" or type(r[i]) == "boolean" then r[i] = as_tensor(r[i]) end end
    return unpack(r, 1, r.n)
  end)
  local ge, te = trace_branch("cond_else", function()
    local r = pack(false_fn())
    for i = 1, r.n do if type(r[i]) == "number" or type(r[i]) == "boolean" then r[i] = as_tensor(r[i]) end end
    return unpack(r, 1, r.n)
  end)
  if tt.n ~= te.n then
    error(string.format("cond: the true branch returns %d values and the false branch %d", tt.n, te.n), 2)
  end
  for i = 1, tt.n do
    local d = template_difference(tt[i], te[i], "result " .. i)
    if d then
      options.raise("cond: " .. d .. "; with a tensor predicate only tensors and numbers can differ between the "
        .. "branches (the graph selects tensors; a Lua value would silently be the true branch's)")
    end
  end
  local ext, tracked, effect = core.graph_externals(nil, gt, ge)  -- before trace_cond: the node lets them go
  local ok, outs = pcall(core.trace_cond, pred, gt, ge)
  if not ok then error(outs, 2) end
  if tracked then
    local function rerun(fn)
      return function()
        local r = pack(fn())
        for i = 1, r.n do if type(r[i]) == "number" or type(r[i]) == "boolean" then r[i] = as_tensor(r[i]) end end
        return (flatten_results(r))
      end
    end
    record_cond(pred, { rerun(true_fn), rerun(false_fn) }, effect, ext, outs)
  end
  return build_results(tt, outs)
end

-- mg.while_loop(cond_fn, body_fn, loop_vars, {maximum_iterations=, shape_invariants=}):
-- while cond_fn(vars...) do vars = body_fn(vars...) end; returns the final
-- loop_vars (a list). Inside a staged function it is one while node.
local WHILE_OPTIONS = { maximum_iterations = { "integer", min = 0 }, shape_invariants = "table" }
--- mg.while_loop(cond_fn, body_fn, loop_vars, {maximum_iterations=, shape_invariants=})
--- while cond_fn(vars...) do vars = body_fn(vars...) end; returns the final
--- loop_vars (a list). Inside a staged function it is one while node.
--- Example:
---   local r = mg.while_loop(function(i) return mg.less(i, 10) end, function(i) return i * 2 end, {mg.tensor(1)})
---   print(r[1])   -- tensor(16, dtype=int64)
function M.while_loop(cond_fn, body_fn, loop_vars, opts)
  opts = options.check("while_loop", opts, WHILE_OPTIONS)
  if type(loop_vars) ~= "table" or is_tensor(loop_vars) then
    error("while_loop: loop_vars must be a list of tensors or numbers", 2)
  end
  local n = #loop_vars
  local max_iter = opts.maximum_iterations
  local function body_list(vars)
    local r = pack(body_fn(unpack(vars, 1, n)))
    if r.n == 1 and type(r[1]) == "table" and not is_tensor(r[1]) then r = r[1]; r.n = #r end
    if r.n ~= n then
      error(string.format("while_loop: the body returns %d values for %d loop variables", r.n, n), 3)
    end
    return r
  end
  local symbolic = false
  local tracing = core.tracing()
  if tracing then
    for i = 1, n do if is_tensor(loop_vars[i]) then symbolic = true end end
  end
  local vars = loop_vars
  if not symbolic then  -- plain Lua (eager, or Lua values during a trace)
    local it = 0
    vars = {}
    for i = 1, n do vars[i] = loop_vars[i] end
    while not max_iter or it < max_iter do
      local c = cond_fn(unpack(vars, 1, n))
      if tracing and is_tensor(c) and is_symbolic(c) then
        -- Lua loop variables, a condition that depends on the staged
        -- function's tensors: the iterations from here on are a while node
        symbolic = true
        if max_iter then max_iter = max_iter - it end
        break
      end
      if not truthy(c) then break end
      local new = body_list(vars)
      for i = 1, n do
        local a, b = vars[i], new[i]
        if is_tensor(a) and is_tensor(b) then
          local inv = opts.shape_invariants and opts.shape_invariants[i]
          local same = a.dtype == b.dtype and #a.shape == #b.shape
          for d = 1, #a.shape do
            same = same and (a.shape[d] == b.shape[d] or (inv and inv[d] == -1))
          end
          if not same then
            error(string.format("while_loop: loop variable %d changes from %s %s to %s %s; keep its dtype "
              .. "and shape or allow it with shape_invariants", i, a.dtype, shape_str(a.shape), b.dtype,
              shape_str(b.shape)), 2)
          end
        end
        vars[i] = new[i]
      end
      it = it + 1
    end
    if not symbolic then return vars end
  end
  local init, specs = {}, {}
  for i = 1, n do
    init[i] = as_tensor(vars[i])
    local shape = init[i].shape
    local inv = opts.shape_invariants and opts.shape_invariants[i]
    if inv then
      if #inv ~= #shape then
        error(string.format("while_loop: shape_invariants[%d] has %d dimensions, loop variable %d has %d",
          i, #inv, i, #shape), 2)
      end
      shape = inv
    end
    specs[i] = { dtype = init[i].dtype, shape = shape }
  end
  local gc = trace_branch("while_cond", function(...)
    local c = cond_fn(...)
    if type(c) == "boolean" or type(c) == "number" then c = as_tensor(c) end
    return c
  end, specs)
  local pass = {}  -- loop variables the body hands back as they came (see record_while)
  local gb = trace_branch("while_body", function(...)
    local ph = pack(...)
    local r = body_list(ph)
    for i = 1, n do
      r[i] = as_tensor(r[i])
      pass[i] = rawequal(r[i], ph[i])
    end
    return unpack(r, 1, n)
  end, specs)
  local ext, tracked, effect = core.graph_externals(init, gc, gb)  -- before trace_while: the node lets them go
  local ok, outs = pcall(core.trace_while, gc, gb, init, max_iter or -1, tracked)
  if not ok then error(outs, 2) end
  if tracked then
    local rerun = function(vars)
      local r = body_list(vars)
      for i = 1, n do r[i] = as_tensor(r[i]) end
      return r
    end
    record_while(rerun, specs, effect, init, ext, outs, pass)
  end
  local res = {}
  for i = 1, n do res[i] = outs[i] end
  return res
end

-- fn's name in the errors of lua_function's result checks: where it was
-- defined (the line that called mg.lua_function is not reliable: a tail
-- call, `return mg.lua_function(...)`, leaves no frame for it).
local function host_label(fn)
  local d = type(fn) == "function" and debug.getinfo(fn, "S")
  if not d or d.what == "C" then return "a C function" end
  return string.format("the Lua function defined at %s:%d", d.short_src, d.linedefined)
end
local own_src = debug.getinfo(1, "S").short_src

-- mg.lua_function(fn, inputs, out_types): calls fn(inputs...) with real
-- tensors every time the graph runs (tf.py_function); out_types lists the
-- dtype (a 0-d result) or {dtype=, shape=} (a TensorSpec; -1 for a size
-- that varies) of each result. fn must return exactly those: each run is
-- checked, eagerly and staged. Returns the results.
function M.lua_function(fn, inputs, out_dtypes)
  guards_mod.note_host(fn)
  local ins = {}
  for i, x in ipairs(inputs or {}) do ins[i] = as_tensor(x) end
  local ok, outs = pcall(core.call_host, fn, ins, out_dtypes or {}, host_label(fn))
  if not ok then   -- eagerly fn ran now: the error belongs at the user's line, not this file's
    local msg = tostring(outs)
    if msg:sub(1, #own_src + 1) == own_src .. ":" then msg = msg:gsub("^[^\n]-:%d+: ", "", 1) end
    options.raise(msg)
  end
  return unpack(outs, 1, outs.n)
end

-- mg.print(...): prints its arguments every time it runs (inside a staged
-- function: every call of the graph, not only while tracing).
function M.print(...)
  local args = pack(...)
  local tensors, slots = {}, {}
  for i = 1, args.n do
    if is_tensor(args[i]) then tensors[#tensors + 1] = args[i]; slots[i] = #tensors end
  end
  local function show(...)
    local vals = pack(...)
    local parts = {}
    for i = 1, args.n do parts[i] = slots[i] and tostring(vals[slots[i]]) or tostring(args[i]) end
    io.write(table.concat(parts, "\t"), "\n")
  end
  if not core.tracing() then show(unpack(tensors)); return end
  core.call_host(show, tensors, {})
end

return M
