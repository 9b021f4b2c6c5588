-- moongrad.core for LuaJIT, continued: gradient tapes and staged graphs (as lua/capi/autodiff.c
-- and lua/capi/graph.c), over the internals of lua/ffi/moongrad/core.lua.
--
-- The tape, Variables, custom and group gradients, tracing, graph calls and control flow, and Lua
-- functions inside graphs: the part of the binding whose C calls run Lua callbacks. It is a file of
-- its own so that core.lua keeps to the eager path (boxes and the collector, tables to tensors, op
-- application, the tensor metatype) and each file stays one subsystem of readable size. This file
-- returns a function: core.lua calls it once, last, with its module table M and `shared`, the
-- internals it hands over (the library and context, boxes, error raisers, scratch buffers). Each is
-- copied into a local here before any function is made, so the functions below reach them as
-- upvalues that are never reassigned, exactly as they did inside core.lua: no table lookup per call.
--
-- LuaJIT's rules from core.lua's header hold here: a C call that may run a Lua callback (a custom
-- backward, a Lua function inside a graph, the release of a graph that holds one) is made from a
-- function kept out of the JIT (nojit), and every callback body runs under pcall, so that no Lua
-- error unwinds through engine frames.

return function(M, shared)
  local ffi, bit, lib, ctx, D = shared.ffi, shared.bit, shared.lib, shared.ctx, shared.D
  local type, select, tostring = type, select, tostring
  local format = string.format
  local istype, new, fstring = ffi.istype, ffi.new, ffi.string
  local nojit, is_int, last_error, uerror, raise = shared.nojit, shared.is_int, shared.last_error, shared.uerror,
    shared.raise
  local push, testtensor, checktensor, typename = shared.push, shared.testtensor, shared.checktensor,
    shared.typename
  local totensor, tosize = shared.totensor, shared.tosize
  local MAX_DIMS, dtype_ids, dtype_names = shared.MAX_DIMS, shared.dtype_ids, shared.dtype_names
  local shape_buf, outp = shared.shape_buf, shared.outp   -- core.lua's scratch buffers, shared as before

  -- ---- autodiff (lua/capi/autodiff.c) -------------------------------------------------------------

  local tape_methods = {}
  M.tape_methods = tape_methods
  local Tape = ffi.metatype("mgjit_tape", {
    __index = tape_methods,
    __gc = nojit(function(b)
      local t = b.t_
      if t ~= nil then
        b.t_ = nil
        lib.mg_tape_free(t)
      end
    end),
  })

  local function check_tape(x)
    if not istype(Tape, x) then
      uerror(format("bad argument #1 to 'GradientTape method' (mg.Tape expected, got %s)", typename(x)), 3)
    end
    if x.t_ == nil then uerror("GradientTape: the tape was released", 3) end
    return x.t_
  end

  function M.tape_new(persistent, watch)
    if watch == nil then watch = true end
    local t = lib.mg_tape_new(ctx, persistent and 1 or 0, watch and 1 or 0)
    if t == nil then uerror(last_error(), 2) end
    return Tape(t)
  end

  function tape_methods.start(x)
    if lib.mg_tape_start(check_tape(x)) ~= 0 then uerror(last_error(), 2) end
  end
  function tape_methods.stop(x) lib.mg_tape_stop(check_tape(x)) end
  function tape_methods.recording(x) return lib.mg_tape_recording(check_tape(x)) ~= 0 end
  function tape_methods.watch(x, v)
    local t = check_tape(x)
    local h = testtensor(v)
    if not h then uerror(format("watch: expected a tensor or Variable, got %s", typename(v)), 2) end
    if lib.mg_tape_watch(t, h) ~= 0 then uerror(last_error(), 2) end
  end

  -- A flat Lua list of tensors as a C array (NULL for holes when allow_nil).
  local function read_list(list, allow_nil, what)
    local n = #list
    local v = new("mg_tensor *[?]", n > 0 and n or 1)
    for i = 1, n do
      local h = testtensor(list[i])
      if not h and not (allow_nil and list[i] == nil) then
        uerror(format("gradient: %s %d must be a tensor or Variable, got %s", what, i, typename(list[i])), 3)
      end
      v[i - 1] = h
    end
    return v, n
  end

  -- tape:_gradient(targets, output_grads|nil, sources, unconnected_zero [, keep])
  tape_methods._gradient = nojit(function(x, targets, ograds, sources, zero, keep)
    local tape = check_tape(x)
    if type(targets) ~= "table" then uerror("bad argument #2 to '_gradient' (table expected)", 2) end
    if type(sources) ~= "table" then uerror("bad argument #4 to '_gradient' (table expected)", 2) end
    local tv, nt = read_list(targets, false, "target")
    local gv, ng = nil, 0
    if ograds ~= nil then gv, ng = read_list(ograds, true, "output gradient") end
    local sv, ns = read_list(sources, false, "source")
    if gv and ng ~= nt then uerror(format("gradient: %d output_gradients for %d targets", ng, nt), 2) end
    local grads = new("mg_tensor *[?]", ns > 0 and ns or 1)
    local was = keep and lib.mg_tape_set_persistent(tape, 1) or -1
    local st = lib.mg_tape_gradient(tape, nt, tv, gv, ns, sv, zero and 1 or 0, grads)
    if was >= 0 then lib.mg_tape_set_persistent(tape, was) end
    if st ~= 0 then raise(2) end
    local out = { n = ns }
    for i = 0, ns - 1 do
      if grads[i] ~= nil then out[i + 1] = push(grads[i], true) end
    end
    return out
  end)

  -- Lua functions called from C (custom backward, graph host functions) live
  -- in `callbacks` under an integer id passed as the C side's ud.
  local callbacks, next_id = {}, 0
  local function keep_callback(fn)
    next_id = next_id + 1
    callbacks[next_id] = fn
    return next_id
  end
  local kept_of = {}   -- id -> the values kept for a group record (lua/capi: an mg.Kept box)
  local host_labels = {}   -- id -> a lua_function's name in errors
  local free_cb = ffi.cast("void (*)(void *)", function(ud)
    local id = tonumber(ffi.cast("intptr_t", ud))
    callbacks[id] = nil
    host_labels[id] = nil
    local kept = kept_of[id]
    if kept then   -- let go of them with the record (their boxes wait for the collector)
      kept_of[id] = nil
      for i = 1, kept.n do kept[i] = nil end
      kept.released = true
    end
  end)

  local function pcall_results(ok, ...)
    return ok, select("#", ...), { ... }
  end

  -- mg_backward_fn: calls backward(grad_output) -> grads (one per input, or a list).
  local backward_cb = ffi.cast("mg_backward_fn", function(ud, gout, nin, gin)
    local fn = callbacks[tonumber(ffi.cast("intptr_t", ud))]
    lib.mg_tensor_retain(gout)
    local ok, nres, res = pcall_results(pcall(fn, push(gout, false)))
    if not ok then
      lib.mg_seterror(1, "%s", tostring(res[1]))
      return 1
    end
    if nres == 1 and type(res[1]) == "table" and not testtensor(res[1]) then
      local list = res[1]
      res, nres = {}, #list
      for i = 1, nres do res[i] = list[i] end
    end
    for i = 1, nin do
      if i <= nres and res[i] ~= nil then
        local t, err = totensor(res[i], "custom_gradient", i)
        if not t then
          for j = 0, i - 2 do
            if gin[j] ~= nil then lib.mg_tensor_release(gin[j]); gin[j] = nil end
          end
          lib.mg_seterror(1, "%s", "custom_gradient: the backward function's result " .. i .. ": " .. err)
          return 1
        end
        gin[i - 1] = t
      end
    end
    return 0
  end)

  -- core.record_custom({inputs}, output, backward)
  M.record_custom = nojit(function(list, output, backward)
    if type(list) ~= "table" then uerror("bad argument #1 to 'record_custom' (table expected)", 2) end
    local iv, nin = read_list(list, false, "input")
    local out = checktensor(output, 2, "record_custom")
    if type(backward) ~= "function" then uerror("bad argument #3 to 'record_custom' (function expected)", 2) end
    local id = keep_callback(backward)
    if lib.mg_tape_record_custom(ctx, nin, iv, out, backward_cb, ffi.cast("void *", id), free_cb) ~= 0 then
      uerror(last_error(), 2)
    end
  end)

  -- mg_backward_group_fn: calls backward({grad_outputs, n=}, {need...}) -> a
  -- list of gradients, one per input (nil where none or not needed).
  local group_cb = ffi.cast("mg_backward_group_fn", function(ud, nout, gouts, nin, need, gin)
    local fn = callbacks[tonumber(ffi.cast("intptr_t", ud))]
    local list, needs = { n = nout }, {}
    for k = 0, nout - 1 do
      if gouts[k] ~= nil then
        lib.mg_tensor_retain(gouts[k])
        list[k + 1] = push(gouts[k], false)
      end
    end
    for i = 0, nin - 1 do needs[i + 1] = need[i] ~= 0 end
    local ok, res = pcall(fn, list, needs)
    if ok and type(res) ~= "table" then
      ok, res = false, "gradient: a cond/while backward returned " .. typename(res) .. ", not a list"
    end
    if ok then
      for i = 1, nin do
        local v = res[i]
        if v ~= nil and need[i - 1] ~= 0 then
          local t, err = totensor(v, "gradient", i)
          if not t then ok, res = false, "gradient: a cond/while backward's result " .. i .. ": " .. tostring(err); break end
          gin[i - 1] = t
        end
      end
    end
    if not ok then
      for i = 0, nin - 1 do
        if gin[i] ~= nil then lib.mg_tensor_release(gin[i]); gin[i] = nil end
      end
      lib.mg_seterror(1, "%s", tostring(res))
      return 1
    end
    return 0
  end)

  -- core.record_group({inputs}, {outputs}, backward [, kept])
  M.record_group = nojit(function(ins, outs, backward, kept)
    if type(ins) ~= "table" then uerror("bad argument #1 to 'record_group' (table expected, got " .. typename(ins) .. ")", 2) end
    if type(outs) ~= "table" then uerror("bad argument #2 to 'record_group' (table expected, got " .. typename(outs) .. ")", 2) end
    if type(backward) ~= "function" then
      uerror("bad argument #3 to 'record_group' (function expected, got " .. typename(backward) .. ")", 2)
    end
    local iv, nin = read_list(ins, false, "input")
    local ov, nout = read_list(outs, false, "output")
    local id = keep_callback(backward)
    kept_of[id] = kept
    if lib.mg_tape_record_group(ctx, nin, iv, nout, ov, group_cb, ffi.cast("void *", id), free_cb) ~= 0 then
      uerror(last_error(), 2)
    end
  end)

  function M.variable(init, trainable)
    local t, err = totensor(init, "Variable", 1)
    if not t then uerror(err, 2) end
    local st = lib.mg_variable_new(ctx, t, (trainable == nil or trainable) and 1 or 0, outp)
    lib.mg_tensor_release(t)
    if st ~= 0 then uerror(last_error(), 2) end
    return push(outp[0], true)
  end

  function M.assign(v, x)
    local h = checktensor(v, 1, "assign")
    if lib.mg_tensor_is_variable(h) == 0 then uerror("assign: the target is not a Variable", 2) end
    local t, err = totensor(x, "assign", 2)
    if not t then uerror(err, 2) end
    local st = lib.mg_variable_assign(ctx, h, t)
    lib.mg_tensor_release(t)
    if st ~= 0 then uerror(last_error(), 2) end
    return v
  end

  function M.variable_read(v)
    local h = checktensor(v, 1, "variable_read")
    if lib.mg_variable_read(h, outp) ~= 0 then uerror(last_error(), 2) end
    return push(outp[0], false)
  end

  function M.variable_writes() return tonumber(lib.mg_variable_writes()) end

  function M.variable_version(v)
    local h = checktensor(v, 1, "variable_version")
    if lib.mg_tensor_is_variable(h) == 0 then uerror("variable_version: not a Variable", 2) end
    return tonumber(lib.mg_variable_version(h))
  end

  function M.is_variable(x)
    local h = testtensor(x)
    return h ~= nil and lib.mg_tensor_is_variable(h) ~= 0
  end

  function M.is_trainable(x)
    local h = checktensor(x, 1, "is_trainable")
    return lib.mg_tensor_is_variable(h) ~= 0 and lib.mg_variable_trainable(h) ~= 0
  end

  function M.pause_tapes(on) lib.mg_ctx_pause_tapes(ctx, on and 1 or 0) end

  -- core.tensor_key(t) -> a value equal for the Lua handles of one engine tensor.
  function M.tensor_key(t)
    local p = testtensor(t)
    if p == nil then uerror("bad argument #1 to 'tensor_key' (tensor expected, got " .. typename(t) .. ")", 2) end
    return tonumber(ffi.cast("intptr_t", p))
  end

  -- core.tapes_track({tensors}, ...) -> whether a tape recording at this trace
  -- depth tracks one of the list's or the other arguments' tensors.
  local track_one = new("mg_tensor *[1]")
  function M.tapes_track(list, ...)
    if type(list) == "table" then
      for j = 1, #list do
        track_one[0] = testtensor(list[j])
        if track_one[0] ~= nil and lib.mg_tapes_track_any(ctx, 1, track_one) ~= 0 then return true end
      end
    end
    for i = 1, select("#", ...) do
      track_one[0] = testtensor((select(i, ...)))
      if track_one[0] ~= nil and lib.mg_tapes_track_any(ctx, 1, track_one) ~= 0 then return true end
    end
    return false
  end

  -- ---- staging (lua/capi/graph.c) -------------------------------------------------------------------

  local graph_methods = {}
  local Graph = ffi.metatype("mgjit_graph", {
    __index = graph_methods,
    __gc = nojit(function(b)
      local g = b.g_
      if g ~= nil then
        b.g_ = nil
        lib.mg_graph_release(g)
      end
    end),
  })

  local function check_graph(x, argn)
    if not istype(Graph, x) then
      uerror(format("bad argument #%d (mg.Graph expected, got %s)", argn or 1, typename(x)), 3)
    end
    if x.g_ == nil then uerror("graph: released", 3) end
    return x.g_
  end

  local function tensor_list(list, what)
    if type(list) ~= "table" then uerror(format("%s: expected a table of tensors, got %s", what, typename(list)), 3) end
    local n = #list
    local v = new("mg_tensor *[?]", n > 0 and n or 1)
    for i = 1, n do
      local h = testtensor(list[i])
      if not h then uerror(format("%s: value %d must be a tensor, got %s", what, i, typename(list[i])), 3) end
      v[i - 1] = h
    end
    return v, n
  end

  local function push_list(v, n, fresh)
    local out = { n = n }
    for i = 0, n - 1 do out[i + 1] = push(v[i], fresh) end
    return out
  end

  local gout = new("mg_graph *[1]")
  function M.trace_begin(name)
    if lib.mg_trace_begin(ctx, name or "function", gout) ~= 0 then uerror(last_error(), 2) end
    return Graph(gout[0])
  end
  M.trace_end = nojit(function(g, outs)
    local h = check_graph(g, 1)
    local v, n = tensor_list(outs, "trace")
    if lib.mg_trace_end(ctx, h, n, v) ~= 0 then uerror(last_error(), 2) end
  end)
  M.trace_abort = nojit(function() lib.mg_trace_abort(ctx) end)
  function M.tracing() return lib.mg_tracing(ctx) ~= 0 end
  function M.is_symbolic(x)
    local h = testtensor(x)
    return h ~= nil and lib.mg_tensor_is_symbolic(h) ~= 0
  end

  local function read_shape(s, buf)
    if type(s) ~= "table" then uerror(format("shape: expected a table, got %s", typename(s)), 3) end
    local n = #s
    if n > MAX_DIMS then uerror(format("shape: at most %d dimensions", MAX_DIMS), 3) end
    for d = 1, n do
      local v = tosize(s[d])   -- an unknown size passes its probe
      if not v or v < -1 then
        uerror(format("shape: entry %d must be a size or -1 (unknown)", d), 3)
      end
      buf[d - 1] = v
    end
    return n
  end

  local function check_dtype(v)
    local id = type(v) == "string" and dtype_ids[v]
    if not id then uerror(format("unknown dtype '%s'", tostring(v)), 3) end
    return id
  end

  function M.placeholder(dtype, shape)
    local dt = check_dtype(dtype)
    local n = read_shape(shape, shape_buf)
    if lib.mg_trace_placeholder(ctx, dt, n, shape_buf, outp) ~= 0 then uerror(last_error(), 2) end
    return push(outp[0], false)
  end

  M.graph_run = nojit(function(g, ins)
    local h = check_graph(g, 1)
    local nout = lib.mg_graph_noutputs(h)
    local v, n = tensor_list(ins, "call")
    local out = new("mg_tensor *[?]", nout > 0 and nout or 1)
    if lib.mg_graph_run(ctx, h, n, v, nout, out) ~= 0 then uerror(last_error(), 2) end
    return push_list(out, nout, true)
  end)

  -- core.graph_call(graph, t1, t2, ...) -> o1, o2, ...: mg.func's fast path.
  M.graph_call = nojit(function(g, ...)
    local h = check_graph(g, 1)
    local n, nout = select("#", ...), lib.mg_graph_noutputs(h)
    local ins, outs = new("mg_tensor *[?]", n > 0 and n or 1), new("mg_tensor *[?]", nout > 0 and nout or 1)
    for i = 1, n do
      local v = select(i, ...)
      local t = testtensor(v)
      if not t then uerror(format("call: argument %d must be a tensor, got %s", i, typename(v)), 2) end
      ins[i - 1] = t
    end
    local st = lib.mg_graph_run(ctx, h, n, ins, nout, outs)   -- fresh arrays: Lua nodes may call graphs
    if st ~= 0 then uerror(last_error(), 2) end
    local res = {}
    for k = 0, nout - 1 do res[k + 1] = push(outs[k], true) end
    return unpack(res, 1, nout)
  end)

  -- core.graph_call_keep(graph, nret, {src}, t1, ...) -> o1 .. o_nret, kept and
  -- core.graph_call_kept(graph, kept, t1, ...) -> outputs (lua/capi/graph.c):
  -- kept is a list here, emptied when the tape drops the record.
  function M.graph_call_keep(g, nret, src, ...)
    local n = select("#", ...)
    local outs = { M.graph_call(g, ...) }
    local kept = { n = #src }
    for k, j in ipairs(src) do
      if j <= n then kept[k] = (select(j, ...)) else kept[k] = outs[j - n] end
      if kept[k] == nil then uerror(format("call: kept value %d names %d, out of range", k, j), 2) end
    end
    outs[nret + 1] = kept
    return unpack(outs, 1, nret + 1)
  end
  function M.graph_call_kept(g, kept, ...)
    if kept.released then uerror("call: the values kept for this gradient were released", 2) end
    local args = { unpack(kept, 1, kept.n) }
    local n = select("#", ...)
    for i = 1, n do args[kept.n + i] = (select(i, ...)) end
    return M.graph_call(g, unpack(args, 1, kept.n + n))
  end

  -- core.graph_select(graph, {k, ...}) -> graph (lua/capi/graph.c).
  local select_out = new("mg_graph *[1]")
  M.graph_select = nojit(function(g, which)
    local h = check_graph(g, 1)
    local n = #which
    local w = new("int[?]", n > 0 and n or 1)
    for k = 1, n do w[k - 1] = which[k] - 1 end
    if lib.mg_graph_select_outputs(h, n, w, select_out) ~= 0 then uerror(last_error(), 2) end
    return Graph(select_out[0])
  end)

  -- core.trace_resume, core.graph_owns, core.graph_nnodes, core.graph_prune (lua/capi/graph.c):
  -- a TF1-style graph (stdlib/moongrad/graph_mode.lua) entered again and cut to a Session's fetches.
  M.trace_resume = nojit(function(g)
    if lib.mg_trace_resume(ctx, check_graph(g, 1)) ~= 0 then uerror(last_error(), 2) end
  end)
  function M.graph_owns(g, x)
    local t = testtensor(x)
    return t ~= nil and lib.mg_tensor_graph_value(t, check_graph(g, 1)) >= 0
  end
  function M.graph_nnodes(g) return lib.mg_graph_nnodes(check_graph(g, 1)) end
  local prune_out, prune_missing = new("mg_graph *[1]"), new("int[1]")
  local function value_ids(h, list, what)
    local n = #list
    local v = new("int[?]", n > 0 and n or 1)
    for i = 1, n do
      local t = testtensor(list[i])
      v[i - 1] = t ~= nil and lib.mg_tensor_graph_value(t, h) or -1
      if v[i - 1] < 0 then uerror(format("prune: %s %d is not a tensor of this graph", what, i), 3) end
    end
    return v, n
  end
  M.graph_prune = nojit(function(g, feeds, fetches, keep)
    local h = check_graph(g, 1)
    local fin, nin = value_ids(h, feeds, "feed")
    local fout, nout = value_ids(h, fetches, "fetch")
    local nkeep = #keep
    local k = new("int[?]", nkeep > 0 and nkeep or 1)
    for i = 1, nkeep do k[i - 1] = keep[i] end
    if lib.mg_graph_prune(h, nin, fin, nout, fout, nkeep, k, prune_out, prune_missing) ~= 0 then
      if prune_missing[0] < 0 then uerror(last_error(), 2) end
      return nil, prune_missing[0] + 1
    end
    return Graph(prune_out[0])
  end)

  -- core.graph_accepts(graph, t1, ...) -> whether the tensors fit the placeholders.
  local meta_dt, meta_nd, meta_shape = new("mg_dtype[1]"), new("int[1]"), new("int64_t[?]", MAX_DIMS)
  function M.graph_accepts(g, ...)
    local h = check_graph(g, 1)
    local n = select("#", ...)
    if n ~= lib.mg_graph_ninputs(h) then return false end
    for i = 1, n do
      local t = testtensor((select(i, ...)))
      lib.mg_graph_input_meta(h, i - 1, meta_dt, meta_nd, meta_shape)
      local nd = meta_nd[0]
      if not t or lib.mg_tensor_is_symbolic(t) ~= 0 or lib.mg_tensor_dtype(t) ~= tonumber(meta_dt[0]) or
         lib.mg_tensor_ndim(t) ~= nd then
        return false
      end
      local shape = lib.mg_tensor_shape(t)
      for d = 0, nd - 1 do
        if meta_shape[d] >= 0 and meta_shape[d] ~= shape[d] then return false end
      end
    end
    return true
  end

  -- core.graph_call_or(graph, fallback, self, t1, ...): graph_call when the
  -- tensors fit the placeholders and no tape records, else fallback(self, t1,
  -- ...) (a staged function's usual call).
  function M.graph_call_or(g, fallback, self, ...)
    if lib.mg_tapes_active(ctx) == 0 and M.graph_accepts(g, ...) then return M.graph_call(g, ...) end
    return fallback(self, ...)
  end

  -- core.graph_split(graph, nfwd_in, nfwd_out) -> forward, backward, {src}
  -- (lua/capi/graph.c).
  local split_f, split_b, split_n, split_src = new("mg_graph *[1]"), new("mg_graph *[1]"), new("int[1]"), new("int *[1]")
  M.graph_split = nojit(function(g, nin, nout)
    local h = check_graph(g, 1)
    if lib.mg_graph_split(h, nin, nout, split_f, split_b, split_n, split_src) ~= 0 then uerror(last_error(), 2) end
    local src = {}
    for k = 0, split_n[0] - 1 do src[k + 1] = split_src[0][k] + 1 end
    lib.mg_free(split_src[0])
    return Graph(split_f[0]), Graph(split_b[0]), src
  end)

  -- core.graph_externals({extra} | nil, g, ...) -> {tensors}, tracked, effect:
  -- the outer tensors the finished subgraphs use (captures, Variables read),
  -- each once; whether a tape recording at this trace depth tracks one of them
  -- or of `extra`; what the subgraphs do besides computing (or nil).
  function M.graph_externals(extra, ...)
    local all, seen, effect = {}, {}, nil
    for i = 1, select("#", ...) do
      local h = check_graph((select(i, ...)), i + 1)
      if not effect then
        local e = lib.mg_graph_effect(h)
        if e ~= nil then effect = ffi.string(e) end
      end
      local k = lib.mg_graph_externals(h, 0, nil)
      if k > 0 then
        local part = new("mg_tensor *[?]", k)
        k = lib.mg_graph_externals(h, k, part)  -- the sizing call counted repeats
        for j = 0, k - 1 do
          local key = tonumber(ffi.cast("intptr_t", part[j]))
          if not seen[key] then seen[key] = true; all[#all + 1] = part[j] end
        end
      end
    end
    local m = #all
    local arr, res = new("mg_tensor *[?]", m > 0 and m or 1), { n = m }
    for j = 1, m do
      arr[j - 1] = all[j]
      lib.mg_tensor_retain(all[j])
      res[j] = push(all[j], false)
    end
    local any = lib.mg_tapes_track_any(ctx, m, arr) ~= 0
    if type(extra) == "table" then
      local one = new("mg_tensor *[1]")
      for j = 1, #extra do
        if any then break end
        one[0] = testtensor(extra[j])
        if one[0] ~= nil then any = lib.mg_tapes_track_any(ctx, 1, one) ~= 0 end
      end
    end
    return res, any, effect
  end

  -- core.pass_names() -> {"constfold", "cse", ...}: the optimisation passes, in order.
  function M.pass_names()
    local out = {}
    for i = 0, D.MG_NPASSES - 1 do out[i + 1] = fstring(lib.mg_pass_name(i)) end
    return out
  end

  -- core.graph_optimize(graph [, passes]) -> {constfold=n, cse=n, ...}: passes
  -- is an integer mask, or a table switching passes off ({fuse=false}).
  M.graph_optimize = nojit(function(g, passes)
    local h = check_graph(g, 1)
    local npasses = D.MG_NPASSES
    local mask = D.MG_PASS_ALL
    if type(passes) == "number" and is_int(passes) then
      mask = passes
    elseif type(passes) == "table" then
      for i = 0, npasses - 1 do
        if passes[fstring(lib.mg_pass_name(i))] == false then mask = bit.band(mask, bit.bnot(bit.lshift(1, i))) end
      end
    elseif passes ~= nil then
      uerror("optimize: passes must be nil, an integer or a table like {fuse=false}", 2)
    end
    local counts = new("int[?]", npasses)
    if lib.mg_graph_optimize_counts(ctx, h, mask, counts) ~= 0 then uerror(last_error(), 2) end
    local out = {}
    for i = 0, npasses - 1 do out[fstring(lib.mg_pass_name(i))] = counts[i] end
    return out
  end)

  M.trace_cond = nojit(function(pred, a, b)
    local p = checktensor(pred, 1, "trace_cond")
    local ga, gb = check_graph(a, 2), check_graph(b, 3)
    local nout = lib.mg_graph_noutputs(ga)
    local out = new("mg_tensor *[?]", nout > 0 and nout or 1)
    if lib.mg_trace_cond(ctx, p, ga, gb, nout, out) ~= 0 then uerror(last_error(), 2) end
    return push_list(out, nout, false)
  end)

  -- core.trace_while(cond_graph, body_graph, {init}, max_iterations [, save]) -> {outputs}
  -- save: also the per-iteration stacks and the trip count, for the gradient
  -- (2n+1 outputs, mg_trace_while_save).
  M.trace_while = nojit(function(c, b, init, max_iter, save)
    local gc, gb = check_graph(c, 1), check_graph(b, 2)
    local v, n = tensor_list(init, "while_loop")
    local nout = save and 2 * n + 1 or n
    local out = new("mg_tensor *[?]", nout > 0 and nout or 1)
    local run = save and lib.mg_trace_while_save or lib.mg_trace_while
    if run(ctx, gc, gb, n, v, max_iter or -1, out) ~= 0 then uerror(last_error(), 2) end
    return push_list(out, nout, false)
  end)

  -- mg_host_fn: a Lua function inside a graph; results become new tensors.
  local host_cb = ffi.cast("mg_host_fn", function(ud, nin, ins, nout, outs)
    local fn = callbacks[tonumber(ffi.cast("intptr_t", ud))]
    local args = {}
    for i = 0, nin - 1 do
      lib.mg_tensor_retain(ins[i])
      args[i + 1] = push(ins[i], false)
    end
    local ok, nres, res = pcall_results(pcall(fn, unpack(args, 1, nin)))
    if ok and nres ~= nout then   -- as lua/capi/graph.c words it
      ok, res = false, { format("lua_function: %s returned %d value%s, but %d %s declared (out_types)",
        host_labels[tonumber(ffi.cast("intptr_t", ud))], nres, nres == 1 and "" or "s", nout,
        nout == 1 and "was" or "were") }
    end
    if ok then
      for k = 1, nout do
        local t, err = totensor(res[k], "lua_function", k)
        if not t then
          ok, res = false, { "lua_function: result " .. k .. ": " .. err }
          break
        end
        outs[k - 1] = t
      end
    end
    if not ok then
      for k = 0, nout - 1 do
        if outs[k] ~= nil then lib.mg_tensor_release(outs[k]); outs[k] = nil end
      end
      lib.mg_seterror(1, "%s", tostring(res[1]))
      return 1
    end
    return 0
  end)

  -- core.call_host(fn, {inputs}, {{dtype=, shape=} | dtype ...} [, label]) -> {outputs}: label names
  -- fn in the errors of its results' checks.
  M.call_host = nojit(function(fn, ins, specs, label)
    if type(fn) ~= "function" then uerror("bad argument #1 to 'call_host' (function expected)", 2) end
    local v, nin = tensor_list(ins, "lua_function")
    if type(specs) ~= "table" then uerror("bad argument #3 to 'call_host' (table expected)", 2) end
    local nout = #specs
    if nout > 64 then uerror("lua_function: at most 64 results", 2) end
    local dts, ndims = new("mg_dtype[?]", 64), new("int[?]", 64)
    local shapes = new("int64_t[64][" .. MAX_DIMS .. "]")
    for k = 1, nout do
      local spec = specs[k]
      if type(spec) == "string" then
        dts[k - 1], ndims[k - 1] = check_dtype(spec), 0
      else
        if type(spec) ~= "table" then uerror(format("lua_function: result spec %d must be a table", k), 2) end
        dts[k - 1] = check_dtype(spec.dtype)
        ndims[k - 1] = spec.shape == nil and 0 or read_shape(spec.shape, shapes[k - 1])
      end
    end
    if label ~= nil and type(label) ~= "string" then
      uerror(format("bad argument #4 to 'call_host' (string expected, got %s)", typename(label)), 2)
    end
    label = label and label:sub(1, 255) or "the Lua function"
    local id = keep_callback(fn)
    host_labels[id] = label
    local out = new("mg_tensor *[?]", nout > 0 and nout or 1)
    local st = lib.mg_call_host(ctx, label, host_cb, ffi.cast("void *", id), free_cb, nin, v, nout, dts, ndims,
      ffi.cast("const int64_t (*)[" .. MAX_DIMS .. "]", shapes), out)
    if st ~= 0 then uerror(last_error(), 2) end
    return push_list(out, nout, true)
  end)

  function M.read_variable(v)
    local h = checktensor(v, 1, "read_variable")
    if lib.mg_tensor_is_variable(h) == 0 then uerror("read: not a Variable", 2) end
    if lib.mg_trace_read_variable(ctx, h, outp) ~= 0 then uerror(last_error(), 2) end
    return push(outp[0], false)
  end

  local function meta_table(dt, nd, shape)
    local s = {}
    for d = 0, nd - 1 do s[d + 1] = tonumber(shape[d]) end
    return { dtype = dtype_names[dt], shape = s }
  end

  -- ---- graph files (lua/capi/graph.c) ------------------------------------------------------------

  local function string_list(list, n, what)
    if list == nil then return nil end
    if type(list) ~= "table" then uerror(format("%s: expected a list of strings, got %s", what, typename(list)), 3) end
    local v = new("const char *[?]", n > 0 and n or 1)
    for i = 1, n do
      if type(list[i]) ~= "string" then uerror(format("%s: entry %d must be a string", what, i), 3) end
      v[i - 1] = list[i]
    end
    return v
  end

  M.graph_export = nojit(function(g, path, ins, outs, keys, vals)
    local h = check_graph(g, 1)
    if type(path) ~= "string" then uerror(format("bad argument #2 to 'graph_export' (string expected, got %s)", typename(path)), 2) end
    local nm = type(keys) == "table" and #keys or 0
    local a = string_list(ins, lib.mg_graph_ninputs(h), "export")
    local b = string_list(outs, lib.mg_graph_noutputs(h), "export")
    local k, v = string_list(keys, nm, "export"), string_list(vals, nm, "export")
    if lib.mg_graph_export(ctx, h, path, a, b, nm, k, v) ~= 0 then uerror(last_error(), 2) end
  end)

  M.graph_load = nojit(function(path)
    if type(path) ~= "string" then uerror(format("bad argument #1 to 'graph_load' (string expected, got %s)", typename(path)), 2) end
    if lib.mg_graph_load(ctx, path, gout) ~= 0 then uerror(last_error(), 2) end
    return Graph(gout[0])
  end)

  M.graph_load_string = nojit(function(s, what)
    if type(s) ~= "string" then uerror(format("bad argument #1 to 'graph_load_string' (string expected, got %s)", typename(s)), 2) end
    if lib.mg_graph_load_buffer(ctx, s, #s, what or "<string>", gout) ~= 0 then uerror(last_error(), 2) end
    return Graph(gout[0])
  end)

  function graph_methods.names(g)
    local h = check_graph(g, 1)
    local nin, nout = lib.mg_graph_ninputs(h), lib.mg_graph_noutputs(h)
    local probe = nin > 0 and lib.mg_graph_input_name(h, 0) or (nout > 0 and lib.mg_graph_output_name(h, 0) or nil)
    if probe == nil then return nil end
    local r = { inputs = {}, outputs = {}, metadata = {} }
    for k = 0, nin - 1 do r.inputs[k + 1] = fstring(lib.mg_graph_input_name(h, k)) end
    for k = 0, nout - 1 do r.outputs[k + 1] = fstring(lib.mg_graph_output_name(h, k)) end
    for k = 0, lib.mg_graph_nmetadata(h) - 1 do
      local key = lib.mg_graph_metadata_key(h, k)
      r.metadata[fstring(key)] = fstring(lib.mg_graph_metadata(h, key))
    end
    return r
  end

  function graph_methods.signature(g)
    local h = check_graph(g, 1)
    local dt, nd, shape = new("mg_dtype[1]"), new("int[1]"), new("int64_t[?]", MAX_DIMS)
    local sig = { inputs = {}, outputs = {} }
    for k = 0, lib.mg_graph_ninputs(h) - 1 do
      lib.mg_graph_input_meta(h, k, dt, nd, shape)
      sig.inputs[k + 1] = meta_table(tonumber(dt[0]), nd[0], shape)
    end
    for k = 0, lib.mg_graph_noutputs(h) - 1 do
      lib.mg_graph_output_meta(h, k, dt, nd, shape)
      sig.outputs[k + 1] = meta_table(tonumber(dt[0]), nd[0], shape)
    end
    return sig
  end

  function graph_methods.nodes(g)
    local h = check_graph(g, 1)
    local info = new("mg_node_info")
    local out = {}
    for i = 0, lib.mg_graph_nnodes(h) - 1 do
      if lib.mg_graph_node(h, i, info) ~= 0 and fstring(info.kind) ~= "dead" then
        local node = { kind = fstring(info.kind), op = fstring(info.op), inputs = {}, outputs = {} }
        for j = 0, info.nin - 1 do node.inputs[j + 1] = info["in"][j] end
        for j = 0, info.nout - 1 do node.outputs[j + 1] = info.out0 + j end
        out[#out + 1] = node
      end
    end
    return out
  end

  local function text(s)
    if s == nil then uerror("graph: out of memory", 3) end
    local r = fstring(s)
    lib.mg_free(s)
    return r
  end
  function graph_methods.pretty(g) return text(lib.mg_graph_pretty(check_graph(g, 1))) end
  function graph_methods.to_dot(g, name) return text(lib.mg_graph_to_dot(check_graph(g, 1), name)) end
end
