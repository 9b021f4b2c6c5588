-- autograph.runtime: the operators that converted code calls (as `ag__`).
--
-- Each operator looks at its operands when it runs. With plain Lua values
-- (and eager tensors) it does exactly what the Lua construct does, so a
-- converted function that is not being traced behaves like the original and
-- a Lua `for i = 1, 100` still unrolls into 100 copies of its body while
-- tracing, as Python's range does in TF. With a symbolic tensor (one being
-- traced by mg.func) it builds a graph node instead: `if` becomes a cond
-- node whose branches are traced as subgraphs, loops become while nodes.
--
-- The state of a statement (the locals it assigns that are live after it,
-- found by autograph.analysis) travels through get_state/set_state closures
-- that the passes generate, so branches and loop bodies are ordinary Lua
-- closures over the user's locals. Staging rules, after TF's AutoGraph:
-- a state value that is a tensor or a Lua number/boolean becomes a node
-- output (numbers adopt the dtype of the tensor on the other side); any
-- other Lua value must be the same on every path; nil on one path only is an
-- error naming the variable. Conditions must be bool tensors with one
-- element (Lua's 0 is true, so numeric tensors are refused, not guessed).
-- Errors point at the user's line: the frame that called the operator.
-- Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local func = require("moongrad.func")
local options = require("moongrad.options")
local warnings = require("moongrad.warnings")

local R = {}
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack
local is_tensor, is_symbolic = core.is_tensor, core.is_symbolic

-- A value for a return slot that no path has set yet (TF's UndefinedReturnValue).
R.UNDEF = setmetatable({}, { __tostring = function() return "<undefined return value>" end })
local UNDEF = R.UNDEF
local SYM = {}  -- test() result for a symbolic condition

function R.pack(...) return pack(...) end
function R.unpack(t) return unpack(t, 1, t.n) end

-- The final values of a converted function: as many as the return that
-- ran gave (the slots it did not set are undefined), undefined ones nil.
function R.retval(...)
  local r = pack(...)
  local n = r.n
  while n > 0 and r[n] == UNDEF do n = n - 1 end
  for i = 1, n do if r[i] == UNDEF then r[i] = nil end end
  return unpack(r, 1, n)
end

-- ---- where the user is ---------------------------------------------------------------

local own_source = debug.getinfo(1, "S").source
local func_source = debug.getinfo(func.cond, "S").source
local internal = { [own_source] = true, [func_source] = true }
function R.add_internal_source(src) internal[src] = true end

-- "file:line" of the innermost frame outside autograph's runtime and the stdlib's func.lua.
local function user_where()
  local level = 2
  while true do
    local info = debug.getinfo(level, "Sl")
    if not info then return "?" end
    if info.what ~= "C" and not internal[info.source] and not options.is_own_source(info.source) then
      return info.short_src .. ":" .. tostring(info.currentline)
    end
    level = level + 1
  end
end
R.where = user_where

local function fail(msg) error(user_where() .. ": " .. msg, 0) end
R.fail = fail

local function shape_str(s)
  local parts = {}
  for i = 1, #s do parts[i] = tostring(s[i]) end   -- an unknown size prints as ?
  return "(" .. table.concat(parts, ",") .. ")"
end
local function describe(v)
  if is_tensor(v) and core.is_variable(v) then return "a " .. v.dtype .. " " .. shape_str(v.shape) .. " Variable" end
  if is_tensor(v) then return "a " .. v.dtype .. " " .. shape_str(v.shape) .. " tensor" end
  if v == nil then return "nil" end
  if v == UNDEF then return "undefined" end
  if type(v) == "number" then return "the number " .. tostring(v) end
  if type(v) == "boolean" then return "the boolean " .. tostring(v) end
  return "a " .. type(v)
end

-- ---- explain(): what each statement did ----------------------------------------------

R.recorder = nil   -- a list while mg.autograph.explain traces

local function record(stmt, decision, detail)
  local rec = R.recorder
  if not rec then return end
  local w = user_where()
  local key = w .. "\0" .. stmt .. "\0" .. decision
  local e = rec.index[key]
  if not e then
    e = { where = w, stmt = stmt, decision = decision, count = 0, iterations = 0, detail = detail }
    rec.index[key] = e
    rec[#rec + 1] = e
  end
  e.count = e.count + 1
  return e
end

-- ---- conditions ----------------------------------------------------------------------

local function is_bool_tensor(v) return is_tensor(v) and v.dtype == "bool" end

-- true/false for a Lua value or an eager bool tensor, SYM for a symbolic one.
local function test(v, what)
  if not is_tensor(v) then return v ~= nil and v ~= false end
  if v.dtype ~= "bool" then
    fail(string.format("the condition of this %s is a %s tensor; a condition must be a bool tensor "
      .. "(in Lua 0 is true, so a number is never tested for zero): compare it, e.g. x ~= 0", what,
      v.dtype .. " " .. shape_str(v.shape)))
  end
  if v:numel() ~= 1 then
    fail(string.format("the condition of this %s is a bool tensor of shape %s, not one element; "
      .. "reduce it with mg.all(c) or mg.any(c)", what, shape_str(v.shape)))
  end
  if is_symbolic(v) then return SYM end
  return v:item() and true or false
end
R.test = test

local function bool_tensor(v)
  if is_tensor(v) then return v end
  return core.tensor(v and true or false)
end

-- ---- converting state values -------------------------------------------------------------

-- The placeholders of a staged loop's variables that entered the loop as Lua numbers: still
-- weakly typed while the body is traced, so an if inside the body that assigns the variable a
-- float tensor makes it float, as the loop itself would (the loop then retraces with that dtype).
local weak_placeholders = setmetatable({}, { __mode = "k" })

-- "tensor" | "weak" (a Lua number or boolean, or a weak placeholder) | "undef" | "value" (anything
-- else, nil included). A Variable is a "value": the same Variable on every path stays the
-- Variable; a different one on another path is an error that asks for its value (v:read()):
-- selecting it would give its value at the if (tf.cond's rule) where eager code keeps the
-- object, whose later assignments it would show, and the two must not silently differ.
local function kind(v)
  if is_tensor(v) then
    if core.is_variable(v) then return "value" end
    return weak_placeholders[v] and "weak" or "tensor"
  end
  local t = type(v)
  if t == "number" or t == "boolean" then return "weak" end
  if v == UNDEF then return "undef" end
  return "value"
end

local function weak_dtype(v)
  if is_tensor(v) then return v.dtype end   -- a weak placeholder
  if type(v) == "boolean" then return "bool" end
  if math.type then return math.type(v) == "integer" and "int64" or "float32" end
  return (v == math.floor(v) and v >= -2 ^ 63 and v < 2 ^ 63) and "int64" or "float32"   -- the FFI binding's rule
end

local function meta_of(v)
  if weak_placeholders[v] then return { dtype = v.dtype, shape = {}, weak = true } end
  if is_tensor(v) then return { dtype = v.dtype, shape = v.shape } end
  if type(v) == "number" or type(v) == "boolean" then return { dtype = weak_dtype(v), shape = {}, weak = true } end
  return nil
end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- A tensor for a weak/undef value, of the hinted dtype (and shape for undef).
local function materialize(v, hint)
  if v == UNDEF then return core.full(hint.shape, 0, hint.dtype) end
  if is_tensor(v) then   -- a weak placeholder
    if hint and hint.dtype ~= v.dtype then return core.cast(v, hint.dtype) end
    return v
  end
  local dt = hint and hint.dtype or weak_dtype(v)
  if type(v) == "boolean" then v = v and 1 or 0 end
  if dt == "bool" and type(v) == "number" then v = (v ~= 0) and 1 or 0 end
  return core.full(hint and hint.shape or {}, v, dt)
end

-- The dtype two weak values agree on, or nil.
local function promote_weak(a, b)
  if a == b then return a end
  if a == "bool" or b == "bool" then return nil end
  return "float32"
end

-- ---- state -------------------------------------------------------------------------------
--
-- A staged statement's get/set closures cover its state (the variables it assigns that are live
-- after it or at a loop's head) followed by its scratch variables (assigned inside, dead after;
-- the names table's `scratch` field counts them). Scratch variables are never outputs, but each
-- trace (the then branch, the else branch, a loop body and its retraces) starts from their values
-- before the statement, and they get those values back after it: one trace never sees another's.

-- State values that are made of tensors (an mg.TensorArray: its metatable's __mg_state) travel as
-- the tensor that stands for them; get/set are wrapped so that every trace and the statement's end
-- see fresh objects rebuilt from those tensors (a trace never uses up the caller's object).
local function state_protocol(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__mg_state") or nil
end

local function with_composites(get, set, names)
  if not get then return get, set end
  local init = pack(get())
  local protos, any = {}, false
  for i = 1, init.n do
    local p = state_protocol(init[i])
    if p then protos[i] = { p = p, template = init[i] }; any = true end
  end
  if not any then return get, set end
  local get2 = function()
    local vals = pack(get())
    for i, pr in pairs(protos) do
      local v = vals[i]
      if state_protocol(v) ~= pr.p then
        fail(string.format("'%s' holds %s before this statement and %s in it; a TensorArray must stay one",
          names and names[i] or ("state " .. i), tostring(pr.template), type(v) == "table" and tostring(v) or type(v)))
      end
      vals[i] = pr.p.flatten(v, UNDEF)
    end
    return unpack(vals, 1, vals.n)
  end
  local set2 = set and function(...)
    local vals = pack(...)
    for i, pr in pairs(protos) do vals[i] = pr.p.rebuild(pr.template, vals[i], UNDEF) end
    set(unpack(vals, 1, vals.n))
  end
  return get2, set2
end

-- The state values before the statement, with `first_scratch`: the index of the first scratch slot.
local function entry_state(get, names)
  local init = get and pack(get()) or { n = 0 }
  init.first_scratch = init.n - (names and names.scratch or 0) + 1
  return init
end

-- ---- Lua tables written inside a staged branch or loop body ---------------------------------
--
-- A staged if traces each branch once and a staged loop its body once: Lua code there runs at
-- trace time, not per iteration or per taken branch. A write into a Lua table made outside the
-- branch or body would keep the trace's value (one element for `acc[#acc + 1] = i`, the else
-- branch's value for `t.v = ...` in both branches): an error at the user's line (a warning under
-- autograph="warn"). Converted code writes tables through setindex/table_insert/table_remove/
-- rawset, and registers the tables it makes (fresh) with the innermost trace, whose own tables
-- are fine to fill.
local frames = {}   -- the staged branches and bodies being traced, innermost last
local weak_keys = { __mode = "k" }
local frame_what = {
  if_then = "the then branch of an if", if_else = "the else branch of an if",
  while_cond = "the condition of a loop", while_body = "the body of a loop",
}

function R.fresh(t)
  local f = frames[#frames]
  if f then f.fresh[t] = true end
  return t
end

local warned_stores = {}
local function check_store(mode, t, how)
  local f = frames[#frames]
  if not f then return end
  if is_tensor(t) then
    -- a Variable is state the graph updates; a symbolic tensor refuses in C; an eager tensor's
    -- buffer would be written once, at trace time, like a Lua table's
    if is_symbolic(t) or core.is_variable(t) then return end
  elseif type(t) ~= "table" or f.fresh[t] then
    return
  end
  local msg = string.format("%s writes into a %s made outside it (%s) while it is staged as graph "
    .. "control flow: it runs once, at trace time, so the table would keep the trace's value, not one per "
    .. "iteration or per taken branch; accumulate tensors in an mg.TensorArray (ta = ta:write(i, v), then "
    .. "ta:stack()) or keep the value in a variable of the loop or if", frame_what[f.name] or "a staged "
    .. "branch or loop body", is_tensor(t) and "tensor" or "Lua table", how)
  if mode == "warn" then
    local w = user_where()
    if not warned_stores[w] then
      warned_stores[w] = true
      warnings.warning(w .. ": " .. msg)
    end
    return
  end
  fail(msg)
end

local function store_ops(inst, mode)
  function inst.setindex(t, k, v)
    check_store(mode, t, "t[k] = v")
    t[k] = v
  end
  function inst.rawset(t, k, v)
    check_store(mode, t, "rawset")
    return rawset(t, k, v)
  end
  function inst.table_insert(t, ...)
    check_store(mode, t, "table.insert")
    return table.insert(t, ...)
  end
  function inst.table_remove(t, ...)
    check_store(mode, t, "table.remove")
    return table.remove(t, ...)
  end
end
store_ops(R, "strict")

-- ---- staged if ---------------------------------------------------------------------------

local function trace_sub(name, nph, specs, fn)
  local g = core.trace_begin(name)
  frames[#frames + 1] = { name = name, fresh = setmetatable({}, weak_keys) }
  local depth = #frames
  local res = pack(pcall(function()
    local ph = {}
    for i = 1, nph do ph[i] = core.placeholder(specs[i].dtype, specs[i].shape) end
    return fn(ph)
  end))
  for i = #frames, depth, -1 do frames[i] = nil end
  if not res[1] then
    core.trace_abort()
    error(res[2], 0)
  end
  local outs = res[2]
  local ok, err = pcall(core.trace_end, g, outs)
  if not ok then error(err, 0) end
  return g, res[3]
end

-- Runs one branch with the state reset to init; returns its outputs, the
-- state values at its end, and which slots it output (with their metas).
local function branch_outputs(fn, get, set, init, hints, slots_fixed)
  local vals, slots, metas
  if set then set(unpack(init, 1, init.n)) end
  if fn then fn() end
  vals = get and pack(get()) or { n = 0 }
  local outs = {}
  slots, metas = {}, {}
  for i = 1, init.first_scratch - 1 do
    local v, h = vals[i], hints[i]
    local k = kind(v)
    local want = slots_fixed == nil and (k == "tensor" or k == "weak" or (k == "undef" and h ~= nil))
      or (slots_fixed ~= nil and slots_fixed[i])
    if want then
      local t = v
      if k == "weak" or k == "undef" then
        t = materialize(v, h)
      elseif k ~= "tensor" then
        t = nil
      elseif h and #h.shape == 0 and #v.shape > 0 and v:numel() == 1 and v.dtype == "bool" then
        t = core.reshape(v, {})   -- a flag's one-element condition (slot_target)
      end
      slots[i] = true
      metas[i] = t and { dtype = t.dtype, shape = t.shape } or nil
      if t then outs[#outs + 1] = t end
    end
  end
  return outs, vals, slots, metas
end

-- The Lua values a staged statement's closures see when it is traced: the upvalues of fns and of
-- the functions they reach through upvalues (the user's locals a branch reads, the thunks of a
-- conditional expression). A gradient re-runs a branch or body later, after the code that
-- follows the statement has run, perhaps assigning those locals (`x = c and a or x` reads x in
-- a branch and then assigns it): the re-run must see the values the trace saw, or the gradient is
-- taken of something else (a silent zero). Returns run(f, ...): f with those values put back in
-- their upvalue cells, and the values of now restored afterwards.
local MAX_FROZEN_FUNCTIONS = 64
local internal_library = options.is_own_source
local function freeze_upvalues(fns)
  local saved, seen, queue, nfns = {}, {}, {}, 0
  for _, f in ipairs(fns) do if type(f) == "function" then queue[#queue + 1] = f end end
  while #queue > 0 and nfns < MAX_FROZEN_FUNCTIONS do
    local f = table.remove(queue)
    local info = not seen[f] and debug.getinfo(f, "S")
    if info and info.what == "Lua" and (info.source == own_source or not internal_library(info.source)) then
      seen[f] = true
      nfns = nfns + 1
      local i = 1
      while true do
        local name, v = debug.getupvalue(f, i)
        if not name then break end
        if name ~= "ag__" and name ~= "_ENV" then
          saved[#saved + 1] = { f, i, v }
          if type(v) == "function" then queue[#queue + 1] = v end
        end
        i = i + 1
      end
    end
  end
  return function(run, ...)
    local now = {}
    for k, s in ipairs(saved) do
      now[k] = select(2, debug.getupvalue(s[1], s[2]))
      debug.setupvalue(s[1], s[2], s[3])
    end
    local res = pack(pcall(run, ...))
    for k = #saved, 1, -1 do debug.setupvalue(saved[k][1], saved[k][2], now[k]) end
    if not res[1] then error(res[2], 0) end
    return unpack(res, 2, res.n)
  end
end

-- Runs fn for a gradient (func.lua re-runs a branch or body under a tape):
-- the user's state is put back afterwards.
local function rerun_keeping_state(get, set, fn, ...)
  local saved = get and pack(get())
  local res = pack(pcall(fn, ...))
  if set then set(unpack(saved, 1, saved.n)) end
  if not res[1] then error(res[2], 0) end
  return res[2]
end

-- Traces one branch (branch_outputs) into a graph; also returns its arguments.
local function trace_branch(name, fn, get, set, init, hints, slots_fixed)
  local vals, slots, metas
  local g = trace_sub(name, 0, {}, function()
    local outs
    outs, vals, slots, metas = branch_outputs(fn, get, set, init, hints, slots_fixed)
    return outs
  end)
  return g, vals, slots, metas, { fn, get, set, init, hints, slots_fixed }
end

-- The dtype/shape a slot must have in both branches, or an error message.
-- The flags the passes make for break, continue, return and until (breaks.lua, continue.lua,
-- returns.lua): only ever tested as conditions, so any one-element bool tensor will do.
-- How an error names a state slot: the returns pass's retval__N are the user's return values.
local function shown_name(name)
  local n = name:match("^retval__(%d+)$")
  if n then return "return value " .. n .. " (a return inside it)" end
  return "'" .. name .. "'"
end

local function is_flag(name)
  return name == "do_return__" or name:match("^until__%d*$") ~= nil or name:match("^break__%d*$") ~= nil
    or name:match("^continue__%d*$") ~= nil
end

-- A flag's value as a () bool when it is a one-element bool tensor of another shape.
local function as_flag(v)
  if is_tensor(v) and v.dtype == "bool" and #v.shape > 0 and v:numel() == 1 then return core.reshape(v, {}) end
  return v
end

local function one_element(shape)
  for _, d in ipairs(shape) do if d ~= 1 then return false end end
  return true
end

local function slot_target(name, a, b)
  local ma, mb = meta_of(a), meta_of(b)
  if a == UNDEF then return mb end
  if b == UNDEF then return ma end
  if not ma.weak and not mb.weak then
    if is_flag(name) and ma.dtype == "bool" and mb.dtype == "bool" and one_element(ma.shape) and one_element(mb.shape) then
      return { dtype = "bool", shape = {} }   -- a (1) and a () condition: one element either way
    end
    if ma.dtype ~= mb.dtype or not same_shape(ma.shape, mb.shape) then
      return nil, string.format("'%s' is %s in the then branch and %s in the else branch", name,
        describe(a), describe(b))
    end
    return ma
  end
  if ma.weak and mb.weak then
    local dt = promote_weak(ma.dtype, mb.dtype)
    if not dt then
      return nil, string.format("'%s' is %s in the then branch and %s in the else branch", name, describe(a), describe(b))
    end
    return { dtype = dt, shape = {} }
  end
  local t, w = ma.weak and mb or ma, ma.weak and a or b
  local one = true   -- a number meets a one-element tensor of any rank (a (1) condition): it takes its shape
  for _, d in ipairs(t.shape) do one = one and d == 1 end
  if not one or (is_tensor(w) and #t.shape ~= 0) then
    return nil, string.format("'%s' is %s in one branch and %s in the other", name,
      describe(ma.weak and b or a), describe(w))
  end
  if type(w) == "boolean" and t.dtype ~= "bool" then
    return nil, string.format("'%s' is %s in one branch and %s in the other", name, describe(ma.weak and b or a), describe(w))
  end
  if type(w) == "number" and (t.dtype == "int64" or t.dtype == "int32" or t.dtype == "uint8"
    or t.dtype == "int16" or t.dtype == "int8") and w ~= math.floor(w) then
    -- the number would have to become an integer tensor: name it here, at the if, not in `full`
    return nil, string.format("'%s' is %s in one branch and the number %s in the other, which an %s tensor "
      .. "cannot hold (cast the tensor to a float dtype before the if)", name, describe(ma.weak and b or a),
      tostring(w), t.dtype)
  end
  return { dtype = t.dtype, shape = t.shape }
end

local function branch_mismatch(msg)
  fail(msg .. "; a variable assigned under a tensor condition must have the same dtype and shape "
    .. "in both branches of the staged if")
end

local function staged_if(cond, then_fn, else_fn, get, set, names)
  local frozen = freeze_upvalues({ then_fn, else_fn, get, set })
  get, set = with_composites(get, set, names)
  local init = entry_state(get, names)
  local nstate = init.first_scratch - 1
  for i = 1, init.n do names[i] = names[i] or ("state " .. i) end
  local gt, tv, tslots, tmetas, targs = trace_branch("if_then", then_fn, get, set, init, {})
  local hints = {}
  for i = 1, nstate do
    if tslots[i] then hints[i] = tmetas[i] end
  end
  -- the else branch outputs the same slots (undef/weak values shaped after the then branch)
  local ge, ev, _, emetas, eargs = trace_branch("if_else", else_fn, get, set, init, hints, tslots)
  -- decide every slot; the then branch is retraced when a slot it did not output is needed
  local targets, retrace_then, retrace_else, slots, same = {}, false, false, {}, {}
  local weak_out = {}   -- slots where neither path has a typed tensor: the output stays weak
  for i = 1, nstate do
    local a, b, name = tv[i], ev[i], names[i]
    local ka, kb = kind(a), kind(b)
    local ta = ka == "tensor" or ka == "weak" or ka == "undef"
    local tb = kb == "tensor" or kb == "weak" or kb == "undef"
    weak_out[i] = (ka == "weak" or ka == "undef") and (kb == "weak" or kb == "undef")
    if rawequal(a, b) then
      -- the same value on both paths: kept as it is (an output the then branch made stays unused)
      if tslots[i] then slots[i] = true; targets[i] = tmetas[i] end
      same[i] = true
    elseif ta and tb and not (ka == "undef" and kb == "undef") then
      local target, err = slot_target(name, a, b)
      if not target then branch_mismatch(err) end
      targets[i] = target
      slots[i] = true
      if not tslots[i] or not (tmetas[i] and tmetas[i].dtype == target.dtype and same_shape(tmetas[i].shape, target.shape)) then
        retrace_then = true
      end
      if not (emetas[i] and emetas[i].dtype == target.dtype and same_shape(emetas[i].shape, target.shape)) then
        retrace_else = true
      end
    elseif ka == "undef" and kb == "undef" then
      if tslots[i] then slots[i] = true; targets[i] = tmetas[i] end
    elseif (a == nil) ~= (b == nil) then
      fail(string.format("'%s' is %s in the then branch but %s in the else branch of this if, and it is "
        .. "used after it; with a tensor condition both branches must give it a value (give it one "
        .. "before the if, or in both branches)", name, a == nil and "nil" or describe(a), b == nil and "nil" or describe(b)))
    elseif (is_tensor(a) and core.is_variable(a)) or (is_tensor(b) and core.is_variable(b)) then
      fail(string.format("'%s' is %s in the then branch and %s in the else branch of this if; a staged if can "
        .. "select a Variable's value, not the Variable (an assignment after the if would show in the object "
        .. "eagerly but not in the selected value): write v:read() for its value now, or keep the same Variable "
        .. "on both paths", name, describe(a), describe(b)))
    else
      fail(string.format("'%s' is %s in the then branch and %s in the else branch of this if; only tensors "
        .. "and numbers can depend on a tensor condition (other Lua values must be the same on both paths)",
        name, describe(a), describe(b)))
    end
  end
  local _
  if retrace_then then gt, tv, _, _, targs = trace_branch("if_then", then_fn, get, set, init, targets, slots) end
  if retrace_else then ge, ev, _, _, eargs = trace_branch("if_else", else_fn, get, set, init, targets, slots) end
  local ext, tracked, effect = core.graph_externals(nil, gt, ge)  -- for a tape inside (func.lua)
  local ok, outs = pcall(core.trace_cond, cond, gt, ge)
  if not ok then fail(tostring(outs):gsub("^[^:]*:%d+: ", "")) end
  if tracked then
    local function rerun(a)
      return function() return frozen(rerun_keeping_state, get, set, branch_outputs, unpack(a, 1, 6)) end
    end
    func._record_cond_grad(cond, { rerun(targs), rerun(eargs) }, effect, ext, outs)
  end
  local final, k = {}, 0
  for i = 1, nstate do
    if slots[i] then k = k + 1 end
    if slots[i] and not same[i] then
      final[i] = outs[k]
      -- numbers on both paths (0 and -0.75) make a number that later meets other values as a
      -- number would: an int64 output must not force -0.75 into int64 at the next if (LuaJIT:
      -- K - K is integral; fuzzer seed 8100953)
      -- (integer outputs only: a float output stays as it was, a float32 that a float64 meets later
      -- promotes anyway, and a weak float output would change the dtype loops widen it to)
      local dt = outs[k].dtype
      if weak_out[i] and #outs[k].shape == 0 and (dt == "int64" or dt == "int32") then weak_placeholders[outs[k]] = true end
    else final[i] = tv[i] end
  end
  for i = init.first_scratch, init.n do final[i] = init[i] end
  if set then set(unpack(final, 1, init.n)) end
end

-- ag__.if_stmt(cond, then_fn, else_fn, get_state, set_state, names)
function R.if_stmt(cond, then_fn, else_fn, get, set, names)
  local c = test(cond, "if")
  if c ~= SYM then
    record("if", core.tracing() and "run at trace time as plain Lua" or "run as plain Lua")
    if c then then_fn() elseif else_fn then else_fn() end
    return
  end
  record("if", "staged as a graph cond", names and #names > 0 and ("state: " .. table.concat(names, ", ")) or nil)
  staged_if(cond, then_fn, else_fn, get, set, names or {})
end

-- ag__.if_exp(c, a_fn, b_fn): Lua's conditional idiom `c and a or b`, which
-- is c ? (a or b) : b. With a bool tensor c: one element decides by value (a
-- cond node when symbolic); a mask selects elementwise (where, or logical ops
-- when a is a bool tensor, as `and`/`or` would give).
function R.if_exp(c, a_fn, b_fn)
  if is_bool_tensor(c) then
    if c:numel() ~= 1 then
      local a, b = a_fn(), b_fn()
      if is_bool_tensor(a) or type(a) == "boolean" then
        return core.logical_or(core.logical_and(c, bool_tensor(a)), bool_tensor(b))
      end
      return core.where(c, a, b)
    end
    local function then_value() return R.or_(a_fn(), b_fn) end
    local t = test(c, "conditional expression")
    if t == SYM then
      local r
      staged_if(c, function() r = then_value() end, function() r = b_fn() end, function() return r end,
        function(v) r = v end, { "(the value of c and a or b)" })
      return r
    end
    if t then return then_value() end
    return b_fn()
  end
  if c then
    local a = a_fn()
    if a then return a end
  end
  return b_fn()
end

-- ---- and, or, not -------------------------------------------------------------------------

-- With a bool tensor on the left: elementwise logical ops (both sides are
-- evaluated); anything else (non-bool tensors included) is Lua's and/or.
function R.and_(a, b_fn)
  if is_bool_tensor(a) then return core.logical_and(a, bool_tensor(b_fn())) end
  if not a then return a end
  return b_fn()
end

function R.or_(a, b_fn)
  if is_bool_tensor(a) then return core.logical_or(a, bool_tensor(b_fn())) end
  if a then return a end
  return b_fn()
end

function R.not_(a)
  if is_bool_tensor(a) then return core.logical_not(a) end
  return not a
end

-- ---- comparisons -----------------------------------------------------------------------------

local function cmp(op, lua)
  return function(a, b)
    if is_tensor(a) or is_tensor(b) then
      if type(a) == "boolean" then a = bool_tensor(a) end
      if type(b) == "boolean" then b = bool_tensor(b) end
      return op(a, b)
    end
    return lua(a, b)
  end
end
R.lt = cmp(core.less, function(a, b) return a < b end)
R.le = cmp(core.less_equal, function(a, b) return a <= b end)
R.gt = cmp(core.greater, function(a, b) return a > b end)
R.ge = cmp(core.greater_equal, function(a, b) return a >= b end)

local function tensorish(v) return is_tensor(v) or type(v) == "number" or type(v) == "boolean" end
local function operand(v)
  if type(v) == "boolean" then return bool_tensor(v) end
  return v
end
-- == and ~= compare elementwise when a tensor meets a tensor, number or boolean; else Lua's.
function R.eq(a, b)
  if (is_tensor(a) or is_tensor(b)) and tensorish(a) and tensorish(b) then
    return core.equal(operand(a), operand(b))
  end
  return a == b
end
function R.ne(a, b)
  if (is_tensor(a) or is_tensor(b)) and tensorish(a) and tensorish(b) then
    return core.not_equal(operand(a), operand(b))
  end
  return a ~= b
end

-- ---- staged loops -----------------------------------------------------------------------------

local function cond_value(c)
  if not is_tensor(c) then return bool_tensor(c) end
  if c.dtype ~= "bool" then
    fail(string.format("the condition of this loop is a %s tensor; a condition must be a bool tensor: "
      .. "compare it, e.g. x ~= 0", c.dtype .. " " .. shape_str(c.shape)))
  end
  if c:numel() ~= 1 then
    fail(string.format("the condition of this loop is a bool tensor of shape %s, not one element; reduce it "
      .. "with mg.all(c) or mg.any(c)", shape_str(c.shape)))
  end
  return c
end

-- while cond_fn() do body_fn() end as one while node. The loop variables are
-- the state values that are tensors or numbers; other values must stay as they are.
local function staged_while(cond_fn, body_fn, get, set, names, what)
  local frozen = freeze_upvalues({ cond_fn, body_fn, get, set })
  get, set = with_composites(get, set, names)
  local init = entry_state(get, names)
  for i = 1, init.first_scratch - 1 do   -- flags carried as () bools (slot_target)
    if names[i] and is_flag(names[i]) then init[i] = as_flag(init[i]) end
  end
  local specs, consts = {}, {}
  for i = 1, init.first_scratch - 1 do
    local v = init[i]
    local k = kind(v)
    if k == "tensor" or k == "weak" then specs[i] = meta_of(v)
    elseif k == "undef" then specs[i] = false          -- found by tracing the body once
    else consts[i] = true end
  end
  -- a Lua float among float64 loop variables starts as float64 (TF would make it float32)
  local widest
  for i = 1, init.n do
    local sp = specs[i]
    if sp and not sp.weak and (sp.dtype == "float64" or (sp.dtype == "float32" and not widest)) then widest = sp.dtype end
  end
  for i = 1, init.n do
    local sp = specs[i]
    if sp and sp.weak and sp.dtype == "float32" and widest then sp.dtype = widest end
  end
  for _ = 1, 4 do
    local slots, nslot = {}, 0
    for i = 1, init.n do
      if specs[i] then nslot = nslot + 1; slots[nslot] = i end
    end
    local ph_specs = {}
    for j, i in ipairs(slots) do ph_specs[j] = specs[i] end
    local function load_state(ph)
      if not set then return end
      local vals = {}
      for i = 1, init.n do vals[i] = init[i] end
      for j, i in ipairs(slots) do
        vals[i] = ph[j]
        if specs[i].weak then weak_placeholders[ph[j]] = true end
      end
      set(unpack(vals, 1, init.n))
    end
    local gc = trace_sub("while_cond", nslot, ph_specs, function(ph)
      load_state(ph)
      return { cond_value(cond_fn()) }
    end)
    local retry = false
    local body_outputs = function(ph)
      load_state(ph)
      body_fn()
      local out = get and pack(get()) or { n = 0 }
      local outs = {}
      for i = 1, init.first_scratch - 1 do
        local v, name, s = out[i], names[i] or ("state " .. i), specs[i]
        if names[i] and is_flag(names[i]) then v = as_flag(v) end
        local k = kind(v)
        if s then
          if k == "tensor" then
            if v.dtype ~= s.dtype then
              if s.weak and (s.dtype ~= "bool") == (v.dtype ~= "bool") then
                s.dtype = v.dtype; retry = true      -- a number before the loop takes the body's dtype
              else
                fail(string.format("loop variable '%s' enters this %s as %s and the body makes it %s; "
                  .. "a staged loop keeps each variable's dtype and shape (cast it before the loop, "
                  .. "e.g. mg.cast(x, mg.%s))", name, what, s.dtype .. " " .. shape_str(s.shape),
                  describe(v), v.dtype))
              end
            elseif not same_shape(v.shape, s.shape) then
              fail(string.format("loop variable '%s' enters this %s with shape %s and the body makes it %s; "
                .. "a staged loop keeps each variable's dtype and shape", name, what, shape_str(s.shape),
                describe(v)))
            end
            outs[#outs + 1] = v
          elseif k == "weak" then
            if s.weak and weak_dtype(v) ~= s.dtype and promote_weak(weak_dtype(v), s.dtype) == "float32"
                and s.dtype ~= "float32" then
              s.dtype = "float32"; retry = true
            end
            outs[#outs + 1] = materialize(v, s)
          elseif k == "undef" then
            outs[#outs + 1] = materialize(v, s)
          else
            -- a Variable is the object, not its value: carrying its value would differ from
            -- eager code once it is assigned (the rule of a staged if; fuzzer seed 9001913)
            fail(string.format("loop variable '%s' is %s before this %s and the body makes it %s%s",
              name, describe(init[i]), what, describe(v),
              (is_tensor(v) and core.is_variable(v)) and "; a staged loop carries only tensors and numbers out of "
                .. "its body: write its value, v:read()" or ""))
          end
        elseif specs[i] == false then
          if k == "tensor" or k == "weak" then specs[i] = meta_of(v); specs[i].weak = nil; retry = true
          elseif v ~= nil and v ~= UNDEF then
            -- a Variable or other Lua value set only when the body runs: the graph cannot carry
            -- it out of the loop (eager code would keep the object; leaving it unset would give
            -- a silently different value after the loop: fuzzer seed 6000971)
            fail(string.format("%s has no value before this %s and the body sets it to %s; a staged "
              .. "loop carries only tensors and numbers out of its body%s", shown_name(name), what, describe(v),
              (is_tensor(v) and core.is_variable(v)) and " (return or keep the Variable's value, v:read())" or ""))
          end
        elseif not rawequal(v, init[i]) then
          if init[i] == nil then
            fail(string.format("'%s' is nil before this %s, which assigns it and uses it after or in the "
              .. "next iteration; a staged loop needs every loop variable defined before the loop "
              .. "(e.g. local %s = 0)", name, what, name))
          end
          fail(string.format("'%s' is %s before this %s and the body changes it to %s; only tensors and "
            .. "numbers can change in a staged loop%s", name, describe(init[i]), what, describe(v),
            (is_tensor(init[i]) and core.is_variable(init[i])) and " (start it from the Variable's value, v:read())" or ""))
        end
      end
      return outs
    end
    local gb = trace_sub("while_body", nslot, ph_specs, body_outputs)
    if not retry then
      local init_t = {}
      for j, i in ipairs(slots) do
        local v = init[i]
        init_t[j] = (kind(v) == "tensor") and v or materialize(v, specs[i])
      end
      local ext, tracked, effect = core.graph_externals(init_t, gc, gb)  -- for a tape inside (func.lua)
      local ok, outs = pcall(core.trace_while, gc, gb, init_t, -1, tracked)
      if not ok then fail(tostring(outs):gsub("^[^:]*:%d+: ", "")) end
      if tracked then
        func._record_while_grad(function(vars) return frozen(rerun_keeping_state, get, set, body_outputs, vars) end,
          ph_specs, effect, init_t, ext, outs)
      end
      local final = {}
      for i = 1, init.n do final[i] = init[i] end
      for j, i in ipairs(slots) do
        final[i] = outs[j]
        -- a number carried through the loop stays a number for what follows (as after an if)
        if specs[i].weak and specs[i].dtype ~= "bool" then weak_placeholders[outs[j]] = true end
      end
      if set then set(unpack(final, 1, init.n)) end
      return
    end
  end
  fail("the loop variables of this " .. what .. " did not settle on fixed dtypes")
end

-- Runs `while cond_fn() do body_fn() end` in Lua until the condition is
-- symbolic, then stages the rest of the loop.
function R.while_stmt(cond_fn, body_fn, get, set, names)
  names = names or {}
  local e, n = nil, 0
  while true do
    local c = test(cond_fn(), "while loop")
    if c == SYM then
      record("while", "staged as a graph while", #names > 0 and ("loop variables: " .. table.concat(names, ", ")) or nil)
      return staged_while(cond_fn, body_fn, get, set, names, "while loop")
    end
    if not c then break end
    body_fn()
    n = n + 1
  end
  e = record("while", core.tracing() and "run at trace time as plain Lua, unrolled" or "run as plain Lua")
  if e then e.iterations = e.iterations + n end
end

-- repeat body until cond: body_fn() runs the body and returns the until value.
function R.repeat_stmt(body_fn, get, set, names)
  names = names or {}
  local n = 0
  while true do
    local cv = body_fn()
    n = n + 1
    local c = test(cv, "repeat-until loop")
    if c == SYM then
      -- the remaining iterations: while not c do c = body() end, c a hidden loop variable
      record("repeat", "staged as a graph while (after one traced iteration)",
        #names > 0 and ("loop variables: " .. table.concat(names, ", ")) or nil)
      local flag = as_flag(cv)   -- (a () bool, whatever one-element shape the until value has)
      local g2 = function() if get then return flag, get() end return flag end
      local s2 = function(f, ...) flag = f; if set then set(...) end end
      local names2 = { "(until condition)", scratch = names.scratch }
      for i, nm in ipairs(names) do names2[i + 1] = nm end
      return staged_while(function() return R.not_(flag) end, function() flag = as_flag(body_fn()) end, g2, s2,
        names2, "repeat-until loop")
    end
    if c then break end
  end
  local e = record("repeat", core.tracing() and "run at trace time as plain Lua, unrolled" or "run as plain Lua")
  if e then e.iterations = e.iterations + n end
end

local function to_number(v, what)
  if is_tensor(v) then
    if v:numel() ~= 1 then fail("the " .. what .. " of this for loop is a tensor of shape " .. shape_str(v.shape) .. ", not a number") end
    return v:item()
  end
  if core.is_unknown_size(v) then   -- #x or x.shape[i] of a -1 size: no Lua number exists for it
    fail("the " .. what .. " of this for loop is an unknown size, like the length of a tensor whose first "
      .. "dimension is unknown while tracing (a -1 size of the input signature): a Lua for loop needs a number; "
      .. "give that dimension a size in the signature, or compute with ops over the whole axis")
  end
  return v
end

-- The staged numeric loop: a hidden counter i from start, by step, while within stop.
local function staged_range(start, stop, step, body_fn, get, set, names, extra, with_index, what)
  if is_tensor(step) and is_symbolic(step) then
    -- a zero step is Lua's error, known only when the graph runs: checked there, once per loop
    if step:numel() ~= 1 then fail("the step of this for loop is a tensor of shape " .. shape_str(step.shape) .. ", not a number") end
    local where = user_where()
    step = func.lua_function(function(s)
      if s:item() == 0 then error(where .. ": 'for' step is zero", 0) end
      return s
    end, { step }, { { dtype = step.dtype, shape = step.shape } })
  end
  local i = is_tensor(start) and start or materialize(start)
  if step ~= nil and is_tensor(step) and step.dtype ~= i.dtype then i = core.add(i, core.full({}, 0, step.dtype)) end
  local function cond()
    local c
    if type(step) == "number" then
      c = step > 0 and core.less_equal(i, stop) or core.greater_equal(i, stop)
      if step == 0 then c = core.tensor(false) end
    else
      local up = core.logical_and(core.greater(step, 0), core.less_equal(i, stop))
      local down = core.logical_and(core.less(step, 0), core.greater_equal(i, stop))
      c = core.logical_or(up, down)
    end
    if extra then c = R.and_(c, extra) end
    return c
  end
  local function body()
    with_index(i)
    i = core.add(i, step)
  end
  local g2 = function() if get then return i, get() end return i end
  local s2 = function(v, ...) i = v; if set then set(...) end end
  local names2 = { "(loop counter)", scratch = names.scratch }
  for k, nm in ipairs(names) do names2[k + 1] = nm end
  staged_while(cond, body, g2, s2, names2, what)
end

-- for i = start, stop, step do body_fn(i) end; extra() (when given) is
-- checked before each iteration (the lowered `break`/`return` flags).
local function for_range(start, stop, step, body_fn, get, set, names, extra, force_staged)
  names = names or {}
  if step == nil then fail("'for' step must be a number") end   -- the pass passes 1 when the step is left out
  if not (is_tensor(step) and is_symbolic(step)) and to_number(step, "step") == 0 then fail("'for' step is zero") end
  local sym = (is_tensor(start) and is_symbolic(start)) or (is_tensor(stop) and is_symbolic(stop))
    or (is_tensor(step) and is_symbolic(step))
  if sym or (force_staged and core.tracing()) then
    record("for", "staged as a graph while", #names > 0 and ("loop variables: " .. table.concat(names, ", ")) or nil)
    return staged_range(start, stop, step, body_fn, get, set, names, extra, body_fn, "for loop")
  end
  local a, b, c = to_number(start, "start"), to_number(stop, "limit"), to_number(step, "step")
  if c == 0 then fail("'for' step is zero") end
  local n = 0
  for i = a, b, c do
    if extra then
      local t = test(extra(), "loop")
      if t == SYM then
        -- a tensor-dependent break/return inside an unrolled loop: stage the remaining iterations
        record("for", "staged as a graph while from iteration " .. (n + 1) .. " (a break depends on a tensor)")
        return staged_range(i, b, c, body_fn, get, set, names, extra, body_fn, "for loop")
      end
      if not t then break end
    end
    body_fn(i)
    n = n + 1
  end
  local e = record("for", core.tracing() and "run at trace time as plain Lua, unrolled" or "run as plain Lua")
  if e then e.iterations = e.iterations + n end
end

-- ag__.for_range(start, stop, step, body_fn, get_state, set_state, names, extra_cond)
function R.for_range(start, stop, step, body_fn, get, set, names, extra)
  return for_range(start, stop, step, body_fn, get, set, names, extra, false)
end

-- A size that is unknown while tracing (a -1 of input_signature or
-- reduce_retracing) reads as an unknown-size object (lua/capi/dim.c).
local unknown_size = core.is_unknown_size

local function first_dim(t, what)
  if #t.shape == 0 then fail(what .. " of a 0-d tensor (use t:item())") end
  local d = t.shape[1]
  if unknown_size(d) then
    fail(what .. " of a tensor whose first dimension is unknown while tracing (-1 in its signature): "
      .. "there is no Lua number for it; give that dimension a size in the signature")
  end
  return d
end

-- ---- mg.range and iteration over tensors ------------------------------------------------------

local range_mt = {}
local function range_iter(r, i)
  i = i + r.step
  if (r.step > 0 and i <= r.stop) or (r.step < 0 and i >= r.stop) then return i end
  return nil
end

-- mg.range(n) | mg.range(start, stop [, step]): 1..n (or start..stop, inclusive, like a
-- numeric for). In plain Lua an iterator; in a converted function being traced, one while node.
function R.range(a, b, step)
  if b == nil then a, b = 1, a end
  step = step or 1
  local r = setmetatable({ start = a, stop = b, step = step }, range_mt)
  if type(a) == "number" and type(step) == "number" then
    if step == 0 then error("range: step is zero", 2) end
    return range_iter, r, a - step
  end
  return range_iter, r, nil
end

local function tensor_ipairs_iter(t, i)
  i = i + 1
  if i <= t.shape[1] then return i, t[i] end
  return nil
end

-- ag__.ipairs(t): the rows of a tensor (with their 1-based index), or Lua's ipairs.
function R.ipairs(t)
  if is_tensor(t) then
    if #t.shape == 0 then fail("ipairs over a 0-d tensor (use t:item())") end
    return tensor_ipairs_iter, t, 0
  end
  return ipairs(t)
end

local function for_rows(t, with_index, body_fn, get, set, names, extra)
  first_dim(t, "iteration over the rows")
  local function body_at(i)
    local row = is_tensor(i) and core.take(t, i, 1) or t[i]
    if with_index then body_fn(i, row) else body_fn(row) end
  end
  if is_symbolic(t) then
    record("for", "staged as a graph while over the rows of a tensor",
      #names > 0 and ("loop variables: " .. table.concat(names, ", ")) or nil)
    return staged_range(1, t.shape[1], 1, nil, get, set, names, extra, body_at, "for loop")
  end
  local n = 0
  for i = 1, t.shape[1] do
    if extra then
      local c = test(extra(), "loop")
      if c == SYM then
        return staged_range(i, t.shape[1], 1, nil, get, set, names, extra, body_at, "for loop")
      end
      if not c then break end
    end
    body_at(i)
    n = n + 1
  end
  local e = record("for", core.tracing() and "run at trace time as plain Lua, unrolled" or "run as plain Lua")
  if e then e.iterations = e.iterations + n end
end

-- ag__.for_stmt(values, body_fn, get_state, set_state, names, extra_cond):
-- values is the packed explist of `for ... in explist`.
function R.for_stmt(values, body_fn, get, set, names, extra)
  names = names or {}
  local f, s, ctl, closing = values[1], values[2], values[3], values[4]
  if f == range_iter and getmetatable(s) == range_mt then
    return for_range(s.start, s.stop, s.step, body_fn, get, set, names, extra, true)
  end
  if f == tensor_ipairs_iter and is_tensor(s) then return for_rows(s, true, body_fn, get, set, names, extra) end
  if is_tensor(f) then return for_rows(f, false, body_fn, get, set, names, extra) end
  local n = 0
  while true do
    if extra then
      local c = test(extra(), "loop")
      if c == SYM then
        fail("a break or return that depends on a tensor cannot stop a loop over a Lua iterator; "
          .. "iterate with mg.range(n) or over a tensor to stage the loop")
      end
      if not c then break end
    end
    local r = pack(f(s, ctl))
    if r[1] == nil then break end
    ctl = r[1]
    body_fn(unpack(r, 1, r.n))
    n = n + 1
  end
  if closing ~= nil then
    local mt = getmetatable(closing)
    if mt and mt.__close then mt.__close(closing, nil) end
  end
  local e = record("for", core.tracing() and "run at trace time as plain Lua, unrolled" or "run as plain Lua")
  if e then e.iterations = e.iterations + n end
end

-- ---- builtins ------------------------------------------------------------------------------------

-- #t: the size of a tensor's first axis (a Lua number, or while tracing
-- perhaps an unknown size, which ops accept and Lua arithmetic refuses), or
-- Lua's length.
function R.len(t)
  if is_tensor(t) then
    if #t.shape == 0 then fail("length of a 0-d tensor (use t:item())") end
    return #t
  end
  return #t
end

-- math.f(...) in converted code (passes/builtins.lua): with a tensor among the arguments, the
-- elementwise op of the same meaning (floor and ceil keep a float dtype, as TF's do; max and min
-- fold maximum/minimum over the arguments; log(x, base) divides); else Lua's own math.f, so
-- plain numbers behave exactly as in Lua.
local MATH_OPS = { floor = "floor", ceil = "ceil", abs = "abs", sqrt = "sqrt", exp = "exp", log = "log",
  sin = "sin", cos = "cos" }
function R.math(name, ...)
  local n, any = select("#", ...), false
  for i = 1, n do if is_tensor((select(i, ...))) then any = true; break end end
  if not any then return math[name](...) end
  if name == "max" or name == "min" then
    local fold = name == "max" and core.maximum or core.minimum
    local acc = ...
    for i = 2, n do acc = fold(acc, (select(i, ...))) end
    return acc
  end
  local x, base = ...
  local y = core[MATH_OPS[name]](x)
  if name == "log" and base ~= nil then y = y / core.log(is_tensor(base) and base or core.tensor(base, x.dtype)) end
  return y
end

-- print(...): inside a trace, mg.print (it prints every time the graph runs,
-- as TF's AutoGraph turns print into tf.print), with a note the first time.
local print_noted = false
function R.print(...)
  if core.tracing() then
    record("print", "converted to mg.print: prints when the graph runs")
    if not print_noted then
      print_noted = true
      warnings.note("print in a staged function is mg.print: it prints every time the "
        .. "graph runs, not while tracing (" .. user_where() .. ")")
    end
    return func.print(...)
  end
  return print(...)
end

-- ---- calls ---------------------------------------------------------------------------------------

R.converter = nil   -- set by autograph: function(f, mode) -> converted f (or f)

-- Lua's "attempt to call" error, at the user's line rather than here (the call happens in the runtime).
local function callable(f)
  if type(f) == "function" or type(f) == "cdata" then return true end   -- (LuaJIT: C functions are cdata)
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end
local function not_callable(f, what)
  fail("attempt to call a " .. type(f) .. " value" .. (what and (" (" .. what .. ")") or ""))
end

-- Returns the operators for one conversion mode ("strict" or "warn"): the
-- same table, with call/invoke converting callees in that mode.
local instances = {}
function R.instance(mode)
  local inst = instances[mode]
  if inst then return inst end
  inst = setmetatable({}, { __index = R })
  store_ops(inst, mode)
  local note_call = func.note_call
  function inst.call(f, ...)
    if type(f) == "function" then
      note_call(f)   -- while tracing, its upvalues and globals are guarded too
      if R.converter then f = R.converter(f, mode); note_call(f) end   -- (LuaJIT: the converted closure's own environment)
    elseif not callable(f) then
      not_callable(f)
    end
    return f(...)
  end
  function inst.invoke(o, name, ...)
    local to = type(o)
    if to == "nil" or to == "boolean" or to == "number" or to == "function" then
      fail("attempt to index a " .. type(o) .. " value (calling method '" .. name .. "')")
    end
    local f = o[name]
    if type(f) == "function" then
      note_call(f)
      if R.converter then f = R.converter(f, mode); note_call(f) end
    elseif not callable(f) then
      not_callable(f, "method '" .. name .. "'")
    end
    return f(o, ...)
  end
  instances[mode] = inst
  return inst
end
R.call = function(f, ...) return R.instance("strict").call(f, ...) end
R.invoke = function(o, name, ...) return R.instance("strict").invoke(o, name, ...) end

return R
