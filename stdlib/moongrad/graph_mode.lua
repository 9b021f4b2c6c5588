-- moongrad.graph_mode: TensorFlow 1's explicit graph and session (mg.Graph, mg.Session,
-- mg.placeholder, mg.constant, mg.gradients, mg.global_variables_initializer, mg.group).
--
-- Design: one IR, one executor. A Graph owns one graph of the tracing machinery (core/graph.c)
-- that stays open for additions: g:as_default(fn) re-enters it as the trace (mg_trace_resume),
-- so fn's ops add nodes and the tensors it makes are ordinary symbolic tensors that remember
-- their node; mg.executing_eagerly() is false there, mg.cond/mg.while_loop build cond/while
-- nodes as in mg.func. A Session runs a graph TF1's way: for each distinct (fetches, feed set) it
-- cuts the graph down to what the fetches need with the fed tensors as inputs (mg_graph_prune:
-- an assign runs only when fetched or needed), optimises that copy and caches it, so a repeated
-- sess:run is one executor call (mg_graph_run) plus Lua for the feeds. Gradients are TF1's
-- symbolic ones: each Graph keeps two persistent tapes that record while as_default runs (the
-- placeholders and constants it makes are watched, Variables are watched as always), and
-- mg.gradients(ys, xs) adds the gradient's nodes to the graph: the inner tape differentiates
-- what the graph computes, the outer one also what the inner one's gradients compute (so a
-- gradient of a gradient works, as in TF1, to second order). Ops (assigns, optimizer steps,
-- initializers) are Operation values: a set of the graph's node indices a run keeps.
--
-- Variables made inside as_default are real Variables (shared with eager code, values persist
-- across runs): initialised at creation when the initial value is concrete; every graph
-- Variable also gets an initializer op, so sess:run(mg.global_variables_initializer()) sets
-- (or resets) them all, and is needed for an initial value computed by graph ops (random).
--
-- A loaded graph file (mg.load_graph, a later step) joins through Graph.from_graph(obj, opts):
-- a finished graph with named inputs and outputs runs through the same Session (by name).
-- Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local options = require("moongrad.options")
local autodiff = require("moongrad.autodiff")

local M = {}
local unpack = table.unpack or unpack
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local is_tensor, is_symbolic, is_variable = core.is_tensor, core.is_symbolic, core.is_variable
local tensor_key = core.tensor_key

local building = nil      -- the Graph whose as_default is running
local default = nil       -- the last Graph entered: TF1's default graph outside as_default
local ngraphs = 0

local function is_float(dt) return dt == "float32" or dt == "float64" or dt == "float16" or dt == "bfloat16" end
local function shape_str(s)
  local p = {}
  for i, d in ipairs(s) do p[i] = tostring(d) end
  return "(" .. table.concat(p, ",") .. ")"
end

-- ---- Operation ---------------------------------------------------------------------------------

local Operation = {}
Operation.__index = Operation
Operation.__tostring = function(op)
  return string.format("<Operation %s of graph '%s' (%d nodes)>", op.name, op.graph.name, #op.nodes)
end
local function is_op(x) return getmetatable(x) == Operation end
M.is_operation = is_op

local nops = 0
local function new_op(graph, name, nodes)
  nops = nops + 1
  return setmetatable({ graph = graph, name = name, nodes = nodes, id = nops }, Operation)
end

-- Runs fn (which adds nodes to g's open graph) and returns the top-level nodes it added,
-- leaving out the initializers of Variables it made (an optimizer's slots must not be reset
-- by every step that creates them).
local function nodes_added(g, fn)
  local lo = core.graph_nnodes(g.obj)
  local res = pack(fn())
  local hi, nodes = core.graph_nnodes(g.obj), {}
  for i = lo, hi - 1 do
    if not g.init_nodes[i] then nodes[#nodes + 1] = i end
  end
  return nodes, res
end

-- ---- Graph -----------------------------------------------------------------------------------

local Graph = {}
Graph.__index = Graph
Graph.__tostring = function(g)
  return string.format("<Graph %s: %d nodes, %d placeholders, %d variables>", g.name, core.graph_nnodes(g.obj),
    #g.placeholders, #g.variables)
end
local function is_graph(x) return getmetatable(x) == Graph end

local function new_graph(obj, name)
  return setmetatable({
    obj = obj, name = name,
    placeholders = {},      -- in input order (the graph's inputs)
    info = {},              -- tensor_key -> {name, dtype, shape} of each placeholder
    variables = {},         -- made inside as_default, in order (TF1's global variables)
    init_nodes = {},        -- node index -> true: the initializers' assigns
    init_list = {},         -- those indices, in order
    deps = {},              -- tensor_key -> node indices: an assign's result keeps its assign
    ids = {}, nids = 0,     -- tensor_key -> a number (Session cache keys)
    reads = {},             -- Variable -> a read node's tensor (fetching a Variable)
    handles = setmetatable({}, { __mode = "k" }),   -- handle -> handle_info
    tapes = { core.tape_new(true, true), core.tape_new(true, true) },   -- outer, inner
  }, Graph)
end

--- mg.Graph{name=} -> graph
--- TensorFlow 1's explicit graph: g:as_default(fn) runs fn with ops adding nodes to g
--- (mg.executing_eagerly() is false there); mg.Session{graph = g} runs it.
--- Example:
---   local g = mg.Graph()
---   local c = g:as_default(function() return mg.constant(5.0) * mg.constant(6.0) end)
---   print(mg.Session{graph = g}:run(c))   -- tensor(30., dtype=float32)
function M.Graph(opts)
  opts = options.check("Graph", opts, { name = "string" })
  if core.tracing() then error("Graph: cannot make a graph while a function is being traced", 2) end
  ngraphs = ngraphs + 1
  local name = opts and opts.name or ("graph_" .. ngraphs)
  local obj = core.trace_begin(name)
  core.trace_end(obj, {})
  return new_graph(obj, name)
end

-- Graph.from_graph(obj, {name=, inputs = {names}, outputs = {names}}): a finished graph that
-- was not built here (a graph file that mg.load_graph reads: wt-gfile's work; a concrete
-- function's graph) as a Graph a Session runs, its inputs and outputs named in order:
-- sess:run("y" | {"y", ...} | {k = "y"}, {x = value}) feeds every input by name and fetches
-- outputs by name. It runs whole (it was optimised as one function; nothing to prune).
function Graph.from_graph(obj, opts)
  opts = opts or {}
  local sig = obj:signature()
  local g = new_graph(obj, opts.name or "loaded_graph")
  g.loaded = { inputs = {}, outputs = {}, input_meta = sig.inputs, index = {} }
  for i = 1, #sig.inputs do
    local name = opts.inputs and opts.inputs[i] or ("input_" .. i)
    g.loaded.inputs[i] = name
  end
  for k = 1, #sig.outputs do
    local name = opts.outputs and opts.outputs[k] or ("output_" .. k)
    g.loaded.outputs[k] = name
    g.loaded.index[name] = k
  end
  return g
end

-- What a Session needs to know of a tensor handle it is given (its id, whether it is the
-- graph's, its placeholder info), looked up once per handle: repeated runs make no C calls.
local function handle_info(g, t)
  local h = g.handles[t]
  if h then return h end
  local k = tensor_key(t)
  h = { owned = not is_variable(t) and core.graph_owns(g.obj, t), info = g.info[k] }
  local id = g.ids[k]
  if not id then
    g.nids = g.nids + 1
    id = g.nids
    g.ids[k] = id
  end
  h.id = id
  g.handles[t] = h
  return h
end

--- g:as_default(fn, ...) -> fn's results
--- Runs fn with g as the graph ops add nodes to (TF1's `with g.as_default():`); the tensors fn
--- makes (kept in locals, upvalues or globals) are g's, fetched with a Session.
function Graph:as_default(fn, ...)
  if type(fn) ~= "function" then error("as_default: expected a function to run with the graph as default", 2) end
  if building == self then return fn(...) end
  if building then
    error(string.format("as_default: graph '%s' is being built; graphs do not nest", building.name), 2)
  end
  local ok, err = pcall(core.trace_resume, self.obj)
  if not ok then error("as_default: " .. tostring(err), 2) end
  building, default = self, self
  autodiff._graph_building = true   -- mg.func calls inline, layers may make weights (func.lua, nn/layer.lua)
  local started = 0
  for _, t in ipairs(self.tapes) do
    if not pcall(t.start, t) then break end
    started = started + 1
  end
  local res = pack(pcall(fn, ...))
  for i = started, 1, -1 do self.tapes[i]:stop() end
  building = nil
  autodiff._graph_building = nil
  if not pcall(core.trace_end, self.obj, {}) then
    -- an error left an inner trace open (a cond branch): drop it, then close the graph
    while core.tracing() do core.trace_abort() end
  end
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, res.n)
end

-- g:graph(): the underlying graph object (:nodes(), :pretty(), :to_dot()).
function Graph:graph() return self.obj end
function Graph:pretty() return self.obj:pretty() end
function Graph:get_variables() return { unpack(self.variables) } end

local function current(what)
  if not building then
    error(string.format("%s: only inside a Graph's as_default (mg.Graph():as_default(fn))", what), 3)
  end
  return building
end

-- ---- building blocks -----------------------------------------------------------------------

local DTYPES = { float32 = true, float64 = true, float16 = true, bfloat16 = true, int8 = true, int16 = true,
  int32 = true, int64 = true, uint8 = true, bool = true }

--- mg.placeholder(dtype, shape [, name]) -> tensor
--- TF1's placeholder, inside a Graph's as_default: a graph input fed at each sess:run
--- ({[x] = value}); -1 (or a missing entry) in shape is a size known only when fed.
function M.placeholder(dtype, shape, name)
  local g = current("placeholder")
  if not DTYPES[dtype] then error("placeholder: unknown dtype " .. tostring(dtype), 2) end
  if type(shape) ~= "table" then error("placeholder: expected a shape table such as {-1, 784}", 2) end
  local n = #shape
  for k in pairs(shape) do
    if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then error("placeholder: the shape must be a list", 2) end
    if k > n then n = k end
  end
  local s = {}
  for d = 1, n do
    local v = shape[d]
    if v == nil or v == false then v = -1 end
    if type(v) ~= "number" or v < -1 or v ~= math.floor(v) then
      error(string.format("placeholder: shape entry %d must be a size or -1 (unknown), got %s", d, tostring(v)), 2)
    end
    s[d] = v
  end
  if name ~= nil and type(name) ~= "string" then error("placeholder: the name must be a string", 2) end
  -- An unknown leading size is the batch size, one size for every placeholder (TF1's None
  -- batches meet in one op: pred - labels); other unknown sizes are each their own.
  local traced = s
  if s[1] == -1 and g.batch_probe then
    traced = { g.batch_probe }
    for d = 2, #s do traced[d] = s[d] end
  end
  local t = core.placeholder(dtype, traced)
  if s[1] == -1 and not g.batch_probe then g.batch_probe = t.shape[1] end
  g.placeholders[#g.placeholders + 1] = t
  g.info[tensor_key(t)] = { name = name or ("placeholder_" .. #g.placeholders), dtype = dtype, shape = s,
    index = #g.placeholders, batch = s[1] == -1 }
  if is_float(dtype) then for _, tape in ipairs(g.tapes) do tape:watch(t) end end
  return t
end

--- mg.constant(value [, dtype]) -> tensor
--- A constant: inside a Graph's as_default a node of the graph, eagerly a tensor (mg.tensor).
function M.constant(value, dtype)
  local t = is_tensor(value) and value or core.tensor(value, dtype)
  if dtype and t.dtype ~= dtype then t = core.cast(t, dtype) end
  if not building then return t end
  if is_symbolic(t) then return t end
  -- a creation op always traces, so zeros + value is a node (constant folding makes it one constant)
  local s = core.add(core.full(t.shape, 0, t.dtype), t)
  if is_float(s.dtype) then for _, tape in ipairs(building.tapes) do tape:watch(s) end end
  return s
end

-- Variables made while a graph is built (autodiff.Variable's hook): created at once with a
-- concrete value, plus an initializer assign that global_variables_initializer runs.
autodiff._graph_variable = function(init, opts, make)
  local g = building
  if not g then return nil end
  local sym = is_tensor(init) and is_symbolic(init)
  local v
  if sym then
    for _, d in ipairs(init.shape) do
      if type(d) ~= "number" then
        error("Variable: the initial value's shape must be fully known", 3)
      end
    end
    -- a concrete zeros (creation ops trace: built from a Lua table, reshaped eagerly)
    local n, flat = 1, {}
    for _, d in ipairs(init.shape) do n = n * d end
    for i = 1, n do flat[i] = 0 end
    v = make(core.reshape(core.tensor(flat, opts.dtype or init.dtype), init.shape), opts)
  else
    v = make(init, opts)
  end
  local value = init
  if not sym then   -- a copy of the initial value, as the initializer's constant
    value = is_tensor(init) and init or core.tensor(init, v.dtype)
    if value.dtype ~= v.dtype then value = core.cast(value, v.dtype) end
  end
  local nodes = nodes_added(g, function() core.assign(v, value) end)
  for _, i in ipairs(nodes) do
    g.init_nodes[i] = true
    g.init_list[#g.init_list + 1] = i
  end
  g.variables[#g.variables + 1] = v
  return v
end

-- v:assign(x) / assign_add / assign_sub inside as_default return the Variable's value after
-- the assign (a read node), which keeps the assign when fetched: `inc = v:assign_add(1)` then
-- sess:run(inc) increments v; an assign never fetched (nor needed) does not run.
do
  local methods = core.methods
  for _, name in ipairs({ "assign", "assign_add", "assign_sub" }) do
    local eager = methods[name]
    methods[name] = function(v, x, ...)
      local g = building
      if not g or not is_variable(v) then return eager(v, x, ...) end
      local extra = pack(...)
      local nodes = nodes_added(g, function() eager(v, x, unpack(extra, 1, extra.n)) end)
      if #nodes == 0 then return v end   -- inside a cond/while body: the node is the subgraph's
      local r = core.read_variable(v)
      g.deps[tensor_key(r)] = nodes
      return r
    end
  end
end

--- mg.global_variables_initializer([graph]) -> op
--- An op that sets every Variable made in the graph (default: the one being built, else the
--- last entered) to its initial value: sess:run(mg.global_variables_initializer()).
function M.global_variables_initializer(g)
  g = g or building or default
  if not is_graph(g) then error("global_variables_initializer: no graph (make one with mg.Graph())", 2) end
  local nodes = {}
  for i, n in ipairs(g.init_list) do nodes[i] = n end
  return new_op(g, "init", nodes)
end

--- mg.group(list) -> op
--- One op running every op (and the assigns behind every assign result) in the list.
function M.group(list)
  local g = building or default
  local nodes = {}
  for i, x in ipairs(list) do
    if is_op(x) then
      g = x.graph
      for _, n in ipairs(x.nodes) do nodes[#nodes + 1] = n end
    elseif is_tensor(x) and g and g.deps[tensor_key(x)] then
      for _, n in ipairs(g.deps[tensor_key(x)]) do nodes[#nodes + 1] = n end
    elseif not is_tensor(x) then
      error(string.format("group: entry %d is a %s, not an op or a tensor", i, type(x)), 2)
    end
  end
  if not g then error("group: no graph", 2) end
  return new_op(g, "group", nodes)
end

local function as_list(x)
  if is_tensor(x) then return { x }, true end
  if type(x) ~= "table" then return nil end
  return x, false
end

--- mg.gradients(ys, xs [, grad_ys]) -> list of tensors
--- TF1's symbolic gradients, inside a Graph's as_default: d(sum of ys)/d xs for each x (nil
--- where x does not reach ys), as tensors of the graph to fetch. xs: placeholders, constants,
--- Variables or tensors computed from them.
function M.gradients(ys, xs, grad_ys)
  local g = current("gradients")
  local yl, xl = as_list(ys), as_list(xs)
  if not yl or not xl then error("gradients: ys and xs must be tensors or lists of tensors", 2) end
  local gl = grad_ys and as_list(grad_ys) or nil
  if gl and #gl ~= #yl then error(string.format("gradients: %d grad_ys for %d ys", #gl, #yl), 2) end
  -- the inner tape first; ys it did not record (a gradient) are the outer tape's
  local ok, res
  for i = #g.tapes, 1, -1 do
    local tape = g.tapes[i]
    ok, res = pcall(tape._gradient, tape, yl, gl, xl, false, true)
    if not ok then error("gradients: " .. tostring(res), 2) end
    local any = false
    for k = 1, #xl do any = any or res[k] ~= nil end
    if any then break end
  end
  local out = {}
  for i = 1, #xl do out[i] = res[i] end
  return out
end

-- opt:minimize(loss [, var_list]) in a graph (optimizer.lua sends a tensor loss here): the
-- gradient of loss with respect to var_list (default: the graph's trainable Variables) and
-- one optimizer update, as an op: each sess:run(train_op) applies one step.
function M.minimize(opt, loss, vars)
  local g = building
  if not g then
    error("minimize: a loss tensor is a graph's (inside as_default); eagerly pass a function: "
      .. "opt:minimize(function() return loss end, vars)", 3)
  end
  if vars == nil then
    vars = {}
    for _, v in ipairs(g.variables) do
      if core.is_trainable(v) then vars[#vars + 1] = v end
    end
    if #vars == 0 then error("minimize: the graph has no trainable Variables; pass var_list", 3) end
  end
  local grads = M.gradients(loss, vars)
  local nodes = nodes_added(g, function() opt:apply_gradients(grads, vars) end)
  return new_op(g, "minimize", nodes)
end

-- ---- Session ---------------------------------------------------------------------------------

local Session = {}
Session.__index = Session
Session.__tostring = function(s)
  return string.format("<Session on graph '%s'%s>", s.graph.name, s.closed and ", closed" or "")
end

--- mg.Session{graph = g} -> session
--- Runs a Graph TF1's way: sess:run(fetches [, feeds]). Each distinct set of fetches and fed
--- tensors is cut to what it needs, optimised and cached (sess.ncompiled counts them).
--- sess:close() (or a <close> variable) releases the cached graphs. A graph file loaded by
--- mg.load_graph runs too: mg.Session{graph = mg.load_graph(path)}, fetches and feeds by name.
function M.Session(opts)
  opts = options.check("Session", opts, { graph = "table" })
  local g = opts.graph or default
  -- a loaded graph file (graph_file.lua's callable): its graph, its inputs and outputs by name
  if type(g) == "table" and rawget(g, "graph_obj") and rawget(g, "input_names") then
    g = Graph.from_graph(g.graph_obj, { name = g.name, inputs = g.input_names, outputs = g.output_names })
  end
  if not is_graph(g) then error("Session: no graph (pass {graph = mg.Graph()})", 2) end
  return setmetatable({ graph = g, cache = {}, ncompiled = 0, closed = false }, Session)
end

function Session:close()
  self.closed = true
  self.cache = {}
end
Session.__close = function(s) s:close() end

local function describe_value(x)
  if is_tensor(x) then
    if is_variable(x) then return "a Variable" end
    return is_symbolic(x) and "a symbolic tensor of another graph" or "an eager tensor"
  end
  return "a " .. type(x)
end

-- Flattens fetches into leaves (tensors, ops, Variables) and a template to rebuild their
-- structure; key gets one entry per leaf and table position.
local function flatten_fetches(sess, x, leaves, key, path)
  local g = sess.graph
  if is_op(x) then
    if x.graph ~= g then error(string.format("run: fetch %s is an op of graph '%s', not of this session's graph '%s'",
      path, x.graph.name, g.name), 4) end
    leaves[#leaves + 1] = x
    key[#key + 1] = "o" .. x.id
    return { leaf = #leaves }
  elseif is_tensor(x) then
    local h = handle_info(g, x)
    if is_variable(x) then
      leaves[#leaves + 1] = x
      key[#key + 1] = "v" .. h.id
    elseif h.owned then
      leaves[#leaves + 1] = x
      key[#key + 1] = "t" .. h.id
    else
      error(string.format("run: fetch %s is %s, not a tensor of this session's graph '%s'", path,
        describe_value(x), g.name), 4)
    end
    return { leaf = #leaves }
  elseif type(x) == "table" then
    local keys = {}
    for k in pairs(x) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      if type(a) ~= type(b) then return type(a) < type(b) end
      return a < b
    end)
    local t = {}
    key[#key + 1] = "{"
    for _, k in ipairs(keys) do
      key[#key + 1] = tostring(k) .. "="
      t[k] = flatten_fetches(sess, x[k], leaves, key, path .. "[" .. tostring(k) .. "]")
    end
    key[#key + 1] = "}"
    return { table = t }
  end
  error(string.format("run: fetch %s is %s, not a tensor or op of graph '%s'", path, describe_value(x), g.name), 4)
end

local function rebuild(node, values)
  if node.leaf then return values[node.leaf] end
  local t = {}
  for k, item in pairs(node.table) do t[k] = rebuild(item, values) end
  return t
end

local function by_id(a, b) return a.id < b.id end

-- The fed tensors in a fixed order (by id), each checked against its placeholder.
local function read_feeds(sess, feeds)
  local g, list, batch = sess.graph, {}, nil
  if feeds == nil then return list end
  if type(feeds) ~= "table" or is_tensor(feeds) then error("run: feeds must be a table {[placeholder] = value}", 3) end
  for k, value in pairs(feeds) do
    local h = is_tensor(k) and handle_info(g, k)
    if not (h and h.owned) then
      error(string.format("run: a feed key is %s, not a tensor of graph '%s'", describe_value(k), g.name), 3)
    end
    local info = h.info
    if not info then   -- a fed intermediate: its dtype and shape, read once
      info = { dtype = k.dtype, shape = k.shape, label = "the fed tensor" }
      h.info = info
    end
    local label = info.label
    if not label then
      label = string.format("placeholder '%s'", info.name)
      info.label = label
    end
    local want_dt, want_shape = info.dtype, info.shape
    local ok, t = true, value
    if not is_tensor(value) then ok, t = pcall(core.tensor, value, want_dt) end
    if not ok then error(string.format("run: the value fed to %s: %s", label, tostring(t)), 3) end
    if t.dtype ~= want_dt then
      error(string.format("run: %s is %s %s, fed a %s tensor", label, want_dt, shape_str(want_shape), t.dtype), 3)
    end
    local s = t.shape
    local fits = #s == #want_shape
    for d = 1, #want_shape do   -- (an intermediate's unknown size is not a number: any size)
      local w = want_shape[d]
      if fits and type(w) == "number" and w >= 0 and w ~= s[d] then fits = false end
    end
    if not fits then
      error(string.format("run: %s is %s %s, fed shape %s", label, want_dt, shape_str(want_shape), shape_str(s)), 3)
    end
    list[#list + 1] = { id = h.id, key = k, value = t }
    if info and info.batch then
      if batch and batch.size ~= s[1] then
        error(string.format("run: placeholders '%s' and '%s' have an unknown leading (batch) size, which must be "
          .. "the same in one run: fed %d and %d", batch.name, info.name, batch.size, s[1]), 3)
      end
      batch = batch or { name = info.name, size = s[1] }
    end
  end
  if #list > 1 then table.sort(list, by_id) end
  return list
end

-- The pruned, optimised graph for these leaves and feeds.
local function compile(sess, leaves, feeds)
  local g = sess.graph
  local fetch, keep, pos = {}, {}, {}
  local need_read = false
  for _, x in ipairs(leaves) do
    if is_tensor(x) and is_variable(x) and not g.reads[x] then need_read = true end
  end
  if need_read then   -- a fetched Variable is a read node, added once
    g:as_default(function()
      for _, x in ipairs(leaves) do
        if is_tensor(x) and is_variable(x) and not g.reads[x] then g.reads[x] = core.read_variable(x) end
      end
    end)
  end
  for i, x in ipairs(leaves) do
    if is_op(x) then
      for _, n in ipairs(x.nodes) do keep[#keep + 1] = n end
    else
      local t = is_variable(x) and g.reads[x] or x
      fetch[#fetch + 1] = t
      pos[i] = #fetch
      local d = g.deps[tensor_key(t)]
      for _, n in ipairs(d or {}) do keep[#keep + 1] = n end
    end
  end
  local fed = {}
  for i, f in ipairs(feeds) do fed[i] = f.key end
  local pg, missing = core.graph_prune(g.obj, fed, fetch, keep)
  if not pg then
    local ph = g.placeholders[missing]
    local info = ph and g.info[tensor_key(ph)]
    error(string.format("run: placeholder '%s' (%s %s) is needed by the fetches but not fed", info and info.name or "?",
      info and info.dtype or "?", info and shape_str(info.shape) or "?"), 4)
  end
  core.graph_optimize(pg)
  sess.ncompiled = sess.ncompiled + 1
  return { graph = pg, pos = pos }
end

-- sess:run on a Graph.from_graph graph: fetches and feeds by name, the whole graph run once.
local function run_loaded(sess, fetches, feeds)
  local L = sess.graph.loaded
  local function walk(x, path)
    if type(x) == "string" then
      local k = L.index[x]
      if not k then
        error(string.format("run: fetch %s names no output of graph '%s' (outputs: %s)", path, sess.graph.name,
          table.concat(L.outputs, ", ")), 4)
      end
      return { out = k }
    elseif type(x) == "table" and not is_tensor(x) then
      local t = {}
      for key, item in pairs(x) do t[key] = walk(item, path .. "[" .. tostring(key) .. "]") end
      return { table = t }
    end
    error(string.format("run: fetch %s must be an output name of graph '%s', got %s", path, sess.graph.name,
      describe_value(x)), 4)
  end
  local template = walk(fetches, "1")
  feeds = feeds or {}
  local ins = {}
  for name in pairs(feeds) do
    local known = false
    for _, n in ipairs(L.inputs) do known = known or n == name end
    if not known then
      error(string.format("run: '%s' is not an input of graph '%s' (inputs: %s)", tostring(name), sess.graph.name,
        table.concat(L.inputs, ", ")), 3)
    end
  end
  for i, name in ipairs(L.inputs) do
    local m, v = L.input_meta[i], feeds[name]
    if v == nil then error(string.format("run: input '%s' of graph '%s' is not fed", name, sess.graph.name), 3) end
    if not is_tensor(v) then v = core.tensor(v, m.dtype) end
    local fits = v.dtype == m.dtype and #v.shape == #m.shape
    for d = 1, #m.shape do fits = fits and (m.shape[d] == -1 or m.shape[d] == v.shape[d]) end
    if not fits then
      error(string.format("run: input '%s' is %s %s, fed %s %s", name, m.dtype, shape_str(m.shape), v.dtype,
        shape_str(v.shape)), 3)
    end
    ins[i] = v
  end
  local outs = pack(pcall(core.graph_call, sess.graph.obj, unpack(ins, 1, #L.inputs)))
  if not outs[1] then error("run: " .. tostring(outs[2]), 3) end
  local function build(node)
    if node.out then return outs[node.out + 1] end
    local t = {}
    for k, item in pairs(node.table) do t[k] = build(item) end
    return t
  end
  return build(template)
end

--- sess:run(fetches [, feeds]) -> values
--- fetches: a graph tensor, an op, a Variable, or a (nested) table of them; the result has the
--- same structure (an op gives nil). feeds: {[placeholder] = value}. Runs only what the
--- fetches need; unfed placeholders they need are an error.
function Session:run(fetches, feeds)
  if self.closed then error("run: the session is closed", 2) end
  if self.graph.loaded then return run_loaded(self, fetches, feeds) end
  local leaves, key = {}, {}
  local template = flatten_fetches(self, fetches, leaves, key, "1")
  local fl = read_feeds(self, feeds)
  for _, f in ipairs(fl) do key[#key + 1] = "|" .. f.id end
  key = table.concat(key, " ")
  local c = self.cache[key]
  if not c then
    c = compile(self, leaves, fl)
    self.cache[key] = c
  end
  local ins = {}
  for i, f in ipairs(fl) do ins[i] = f.value end
  local outs = pack(pcall(core.graph_call, c.graph, unpack(ins, 1, #fl)))
  if not outs[1] then error("run: " .. tostring(outs[2]), 2) end
  local values = {}
  for i = 1, #leaves do
    if c.pos[i] then values[i] = outs[c.pos[i] + 1] end
  end
  return rebuild(template, values)
end

M.from_graph = Graph.from_graph
M.Graph_methods = Graph
M.Session_methods = Session
return M
