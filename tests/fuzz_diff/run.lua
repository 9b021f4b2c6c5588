-- fuzz_diff/run.lua: runs one generated program every way and compares.
--
-- Values (two calls: the second with other inputs and, sometimes, a changed upvalue K, so a
-- staged function must reuse or correctly retrace its first trace; the Variables' values
-- after each call are compared too):
--   ref           the "ref" dialect on eager tensors: the baseline (ref.lua)
--   lua           the "lua" dialect on Lua numbers (scalar programs)
--   eager         the program as written, unconverted, on eager tensors (when its meaning
--                 does not depend on AutoGraph: gen.plain_eligible)
--   eager_ag      converted, run eagerly: mg.func(f, {eager = true})
--   staged        mg.func(f)
--   staged_noopt  mg.func(f, {optimize = false})
-- Gradients of L = sum_j sum(out_j * W_j) over the float outputs, with respect to the float
-- parameters and the Variables the program reads but never assigns (first call only):
--   g_ref, g_eager, g_eager_ag   a tape around the eager call
--   g_staged, g_staged_noopt     a tape around the staged call (g_staged_noopt: persistent,
--                                asked twice, for L and for the first output's term)
--   g_inside                     a tape inside a staged wrapper (render.lua grad_inside)
--   fd                           g_ref in float64 against central finite differences
-- Second order (a Hessian-vector product through nested tapes):
--   h_ref, h_staged (nested tapes around the staged call), h_inside (nested tapes inside a
--   staged wrapper), fd2 (h_ref in float64 against finite differences of g_ref).
-- Every mode is compared with ref (in the program's float dtype, with a float32 tolerance
-- when anything computes in float32), errors included: an error where ref succeeds is a
-- mismatch unless the program uses a feature whose documented staged behaviour is that
-- error (accept_error). A program whose ref run fails is a generator bug ("invalid"); one
-- whose margins are too small is redrawn, then skipped. Portable Lua.
local mg = require("moongrad")
local gen = require("fuzz_diff.gen")
local render = require("fuzz_diff.render")
local refmod = require("fuzz_diff.ref")

local M = {}
local R, L = refmod.R, refmod.L
local unpack = table.unpack or unpack
local pack = table.pack or function(...) return { n = select("#", ...), ... } end

M.MARGIN = 1e-3          -- below this, a comparison or kink could flip between modes
M.VALUE_MODES = { "lua", "eager", "eager_ag", "staged", "staged_noopt" }

-- ---- loading ---------------------------------------------------------------------------

local chunk_id = 0
local function load_chunk(text)
  chunk_id = chunk_id + 1
  local name = "=fuzz_diff/" .. chunk_id
  mg.autograph.register_source(name, text)
  local f, err = load(text, name, "t")
  if not f then error("fuzz_diff: generated code does not load: " .. tostring(err) .. "\n" .. text, 0) end
  return f, name
end

local function is_tensor(x) return mg.is_tensor(x) end

local function flat(v)
  if v:numel() == 0 then return {} end
  local t = mg.reshape(v, { v:numel() }):totable()
  if type(t) ~= "table" then t = { t } end
  for i, x in ipairs(t) do
    if type(x) == "boolean" then t[i] = x and 1 or 0 end
  end
  return t
end

local function snap(v)
  if v == nil then return { absent = true } end
  if is_tensor(v) then
    return { shape = v.shape, vals = flat(v), dtype = v.dtype }
  end
  if type(v) == "number" then return { shape = {}, vals = { v }, dtype = "lua number" } end
  if type(v) == "boolean" then return { shape = {}, vals = { v and 1 or 0 }, dtype = "lua boolean" } end
  if type(v) == "table" and v.v ~= nil then return snap(v.v) end     -- L.Var
  return { other = type(v) }
end
M.snap = snap

local function shape_str(s)
  local p = {}
  for i, d in ipairs(s or {}) do p[i] = tostring(d) end
  return "(" .. table.concat(p, ",") .. ")"
end

function M.show(x)
  if not x then return "nothing" end
  if x.absent then return "nil" end
  if x.other then return "a " .. x.other end
  local p = {}
  for i, v in ipairs(x.vals) do
    if i > 12 then p[#p + 1] = "..."; break end
    p[#p + 1] = string.format("%.7g", v)
  end
  return "[" .. table.concat(p, ", ") .. "] " .. tostring(x.dtype) .. " " .. shape_str(x.shape)
end

-- ---- comparing -------------------------------------------------------------------------

local function close(a, b, atol, rtol)
  if a ~= a and b ~= b then return true end
  if a == b then return true end
  if a ~= a or b ~= b or math.abs(a) == math.huge or math.abs(b) == math.huge then return false end
  return math.abs(a - b) <= atol + rtol * math.max(math.abs(a), math.abs(b))
end

-- nil when x (the reference) and y agree, else a reason
local function differ(x, y, tol)
  if x.absent or y.absent or x.other or y.other then
    if (x.absent and y.absent) or (x.other and x.other == y.other) then return nil end
    return "one is " .. M.show(x) .. ", the other " .. M.show(y)
  end
  if #x.shape ~= #y.shape then return "shapes differ" end
  for i = 1, #x.shape do if x.shape[i] ~= y.shape[i] then return "shapes differ" end end
  local scale = 0
  for _, v in ipairs(x.vals) do if v == v and math.abs(v) ~= math.huge then scale = math.max(scale, math.abs(v)) end end
  local atol = tol * (1 + scale)
  for i = 1, #x.vals do
    if not close(x.vals[i], y.vals[i], atol, tol) then
      return string.format("element %d: %.9g vs %.9g", i, x.vals[i], y.vals[i])
    end
  end
  return nil
end
M.differ = differ

local function errclass(msg)
  msg = tostring(msg)
  msg = msg:gsub("fuzz_diff/%d+:%d+: ", ""):gsub("%[string [^%]]*%]:%d+: ", "")
  msg = msg:gsub("^[^\n]-%.lua:%d+: ", "")
  msg = msg:gsub("\n.*", "")
  msg = msg:gsub("%d+", "N")
  return msg:sub(1, 70)
end
M.errclass = errclass

-- ---- running ---------------------------------------------------------------------------

local function dialect(how)
  if how == "ref" or how == "lua" then return how end
  return "t"
end

M.hooks = {}   -- main.lua --suite's self-test injects faults here (hooks.wrap)

local function wrap0(fn, how)
  if how == "eager_ag" then return mg.func(fn, { eager = true }) end
  if how == "staged" then return mg.func(fn) end
  if how == "staged_noopt" then return mg.func(fn, { optimize = false }) end
  return fn
end
M.wrap = wrap0

local function wrap(fn, how)
  if M.hooks.wrap then return M.hooks.wrap(fn, how) end
  if how == "eager_ag" then return mg.func(fn, { eager = true }) end
  if how == "staged" then return mg.func(fn) end
  if how == "staged_noopt" then return mg.func(fn, { optimize = false }) end
  return fn
end

-- arguments of call `set`; pert[k] (a float64 tensor) is added to source k
local function args_for(ctx, set, D, ft, pert)
  local prog = ctx.prog
  local vals = ctx.inputs[set]
  local out = {}
  for i, p in ipairs(prog.main.params) do
    local v = vals[i]
    if D == "lua" or p.luanum then out[i] = v
    elseif p.int then out[i] = mg.tensor(v)
    else
      out[i] = mg.tensor(v, ft)
    end
  end
  if pert then
    for k, s in ipairs(ctx.sources) do
      if pert[k] and s.kind == "param" then out[s.index] = out[s.index] + mg.cast(pert[k], ft) end
    end
  end
  return out
end

local function vinit(ctx, ft, pert)
  local out = {}
  for i, v in ipairs(ctx.prog.vars) do out[i] = v.init end
  if pert then
    for k, s in ipairs(ctx.sources) do
      if pert[k] and s.kind == "var" then out[s.index] = mg.tensor(out[s.index], ft) + mg.cast(pert[k], ft) end
    end
  end
  return out
end

local function instance(ctx, D, ft, pert)
  return ctx.factory[D](mg, R, L, ft, ctx.prog.K[1], vinit(ctx, ft, pert))
end

local function nparams(ctx) return #ctx.prog.main.params end

-- values of a mode: {calls = {{outs =, vars =}, ...}} or {err =, call =}
function M.run_values(ctx, how, ft)
  ft = ft or ctx.ft
  local D = dialect(how)
  local ok, res = pcall(function()
    local inst = instance(ctx, D, ft)
    local fn = wrap(inst.main, how)
    local res = { calls = {} }
    for set = 1, 2 do
      if set == 2 and ctx.prog.K[2] then inst.setK(ctx.prog.K[2]) end
      if set == 2 and ctx.prog.vbetween then
        -- a Variable assigned outside, between the calls: staged code reads it by reference
        for i, v in ipairs(ctx.prog.vars) do
          if v.name == ctx.prog.vbetween.name then
            local x = ctx.prog.vbetween.value
            inst.vars[i]:assign(D == "lua" and x or mg.tensor(x, ft))
          end
        end
      end
      local args = args_for(ctx, set, D, ft)
      local r = pack(pcall(fn, unpack(args, 1, nparams(ctx))))
      if not r[1] then res.err = r[2]; res.call = set; return res end
      local outs = {}
      for i = 2, math.max(r.n, 1 + #ctx.prog.main.ret) do outs[i - 1] = snap(r[i]) end
      local vars = {}
      for i, v in ipairs(inst.vars) do vars[i] = snap(v) end
      res.calls[set] = { outs = outs, vars = vars }
    end
    return res
  end)
  if not ok then return { err = res, call = 0 } end
  return res
end

-- the loss over the float outputs
local function build_loss(ctx, outs, W)
  local loss
  for i, j in ipairs(ctx.grad.outs) do
    local term = mg.sum(outs[j] * W[i])
    loss = loss and (loss + term) or term
  end
  return loss
end

local function weights(ctx, ft)
  local W = {}
  for i, w in ipairs(ctx.W) do W[i] = mg.tensor(w, ft) end
  return W
end

local function dirs(ctx, ft)
  local D = {}
  for i, d in ipairs(ctx.D) do D[i] = mg.tensor(d, ft) end
  return D
end

local function snap_list(list, n)
  local out = {}
  for i = 1, n do out[i] = snap(list[i]) end
  return out
end

-- gradients of a mode: {loss =, g = {...}, g1 = {...} (persistent)} or {err =}
function M.run_grad(ctx, how, ft, pert)
  ft = ft or ctx.ft
  local D = dialect(how)
  local nsrc = #ctx.sources
  local tape
  local ok, res = pcall(function()
    local inst = instance(ctx, D, ft, pert)
    local args = args_for(ctx, 1, D, ft, pert)
    local srcs = {}
    for k, s in ipairs(ctx.sources) do srcs[k] = s.kind == "param" and args[s.index] or inst.vars[s.index] end
    local W = weights(ctx, ft)
    if how == "inside" then
      local f = mg.func(inst.grad_inside)
      local all = {}
      for _, w in ipairs(W) do all[#all + 1] = w end
      for i = 1, nparams(ctx) do all[#all + 1] = args[i] end
      local r = pack(f(unpack(all, 1, #W + nparams(ctx))))
      local g = {}
      for k = 1, nsrc do g[k] = r[k + 1] end
      return { loss = snap(r[1]), g = snap_list(g, nsrc) }
    end
    local fn = wrap(inst.main, how)
    local persistent = how == "staged_noopt" or how == "ref"
    tape = mg.GradientTape { persistent = persistent }
    for k, s in ipairs(ctx.sources) do if s.kind == "param" then tape:watch(srcs[k]) end end
    local outs = pack(fn(unpack(args, 1, nparams(ctx))))
    local loss = build_loss(ctx, outs, W)
    local loss1 = mg.sum(outs[ctx.grad.outs[1]] * W[1])
    tape:stop()
    local g = tape:gradient(loss, srcs, { unconnected_gradients = "zero" })
    local res = { loss = snap(loss), g = snap_list(g, nsrc) }
    if persistent then
      res.g1 = snap_list(tape:gradient(loss1, srcs, { unconnected_gradients = "zero" }), nsrc)
    end
    return res
  end)
  if tape then pcall(tape.stop, tape) end
  if not ok then return { err = res } end
  return res
end

-- Hessian-vector products: {h = {...}} or {err =}
function M.run_hvp(ctx, how, ft, pert)
  ft = ft or ctx.ft
  local D = dialect(how)
  local nsrc = #ctx.sources
  local tapes = {}
  local ok, res = pcall(function()
    local inst = instance(ctx, D, ft, pert)
    local args = args_for(ctx, 1, D, ft, pert)
    local srcs = {}
    for k, s in ipairs(ctx.sources) do srcs[k] = s.kind == "param" and args[s.index] or inst.vars[s.index] end
    local W, Dv = weights(ctx, ft), dirs(ctx, ft)
    if how == "inside" then
      local f = mg.func(inst.hvp_inside)
      local all = {}
      for _, w in ipairs(W) do all[#all + 1] = w end
      for _, d in ipairs(Dv) do all[#all + 1] = d end
      for i = 1, nparams(ctx) do all[#all + 1] = args[i] end
      local r = pack(f(unpack(all, 1, #W + #Dv + nparams(ctx))))
      local h = {}
      for k = 1, nsrc do h[k] = r[k] end
      return { h = snap_list(h, nsrc) }
    end
    local fn = wrap(inst.main, how)
    local outer = mg.GradientTape()
    tapes[1] = outer
    for k, s in ipairs(ctx.sources) do if s.kind == "param" then outer:watch(srcs[k]) end end
    local inner = mg.GradientTape()
    tapes[2] = inner
    for k, s in ipairs(ctx.sources) do if s.kind == "param" then inner:watch(srcs[k]) end end
    local outs = pack(fn(unpack(args, 1, nparams(ctx))))
    local loss = build_loss(ctx, outs, W)
    local g = inner:gradient(loss, srcs, { unconnected_gradients = "zero" })
    local s
    for k = 1, nsrc do
      local term = mg.sum(g[k] * Dv[k])
      s = s and (s + term) or term
    end
    outer:stop()
    local h = outer:gradient(s, srcs, { unconnected_gradients = "zero" })
    return { h = snap_list(h, nsrc) }
  end)
  for _, t in ipairs(tapes) do pcall(t.stop, t) end
  if not ok then return { err = res } end
  return res
end

-- the loss of the ref dialect in float64 at sources + pert
local function ref_loss64(ctx, pert)
  local inst = instance(ctx, "ref", "float64", pert)
  local args = args_for(ctx, 1, "ref", "float64", pert)
  local outs = pack(inst.main(unpack(args, 1, nparams(ctx))))
  return build_loss(ctx, outs, weights(ctx, "float64")):item()
end

local function basis(shape, e, eps)
  local n = gen.numel(shape)
  local v = mg.reshape(mg.one_hot(mg.tensor { e }, n, "float64"), shape)
  return v * eps
end

-- central finite differences of the float64 loss: one list of flat values per source
function M.fd_grad(ctx, eps)
  local out = {}
  for k, s in ipairs(ctx.sources) do
    local vals = {}
    for e = 1, gen.numel(s.shape) do
      local b = basis(s.shape, e, eps)
      local plus = ref_loss64(ctx, { [k] = b })
      local minus = ref_loss64(ctx, { [k] = -b })
      vals[e] = (plus - minus) / (2 * eps)
    end
    out[k] = { shape = s.shape, vals = vals, dtype = "fd" }
  end
  return out
end

-- finite differences of the float64 gradient along the directions D
function M.fd_hvp(ctx, eps)
  local plus, minus = {}, {}
  for k in ipairs(ctx.sources) do
    plus[k] = mg.tensor(ctx.D[k], "float64") * eps
    minus[k] = -plus[k]
  end
  local gp = M.run_grad(ctx, "ref", "float64", plus)
  local gm = M.run_grad(ctx, "ref", "float64", minus)
  if gp.err or gm.err then return nil, gp.err or gm.err end
  local out = {}
  for k in ipairs(ctx.sources) do
    local vals = {}
    for e, v in ipairs(gp.g[k].vals) do vals[e] = (v - gm.g[k].vals[e]) / (2 * eps) end
    out[k] = { shape = gp.g[k].shape, vals = vals, dtype = "fd" }
  end
  return out
end

-- ---- one program -----------------------------------------------------------------------

-- Errors that are the documented staged behaviour of a feature the program uses.
local function accept_error(ctx, mode, msg)
  msg = tostring(msg)
  local prog = ctx.prog
  if prog.tablewrite_in_region and msg:find("TensorArray") then return true end
  -- a staged if selects values, not Variables: a Variable on one path is the documented error
  if msg:find("a staged if can select a Variable's value", 1, true) then return true end
  -- A Lua number has no dtype, but the tensor it meets decides one: the same number is an int64
  -- tensor on one path and a float on the other (an int tensor's `/` gives float32, a float
  -- literal FT). A staged if needs one dtype per value (TF's rule), so a 0-d dtype disagreement
  -- between the branches is the documented error (seeds 9003701, 9005333); a shape disagreement
  -- is still a finding.
  local da, db = msg:match("is an? (%w+) %(%) tensor in the then branch and an? (%w+) %(%) tensor in the else branch")
  if da and da ~= db then return true end
  -- ... and a staged loop carries values out, not a Variable first set in its body (seed 6000971)
  if msg:find("a staged loop carries only tensors and numbers out of its body", 1, true) then return true end
  -- ... nor a loop variable that starts as a Variable and changes (seed 8102195)
  if msg:find("start it from the Variable's value, v:read()", 1, true) then return true end
  if ctx.assign_in_region and mode:find("^[gh]_") and mode ~= "g_ref" and mode ~= "h_ref"
    and msg:find("assign") then return true end
  -- in-place item writes: a staged write may be a functional update or a clear error, and a
  -- gradient through a tensor written after the tape saved it must be an error (item 1);
  -- "a tensor was freed" is the defect, not the clear error
  if ctx.setitem and not msg:find("freed") and (msg:find("in%-place") or msg:find("inplace")
    or msg:find("modified") or msg:find("version") or msg:find("index assignment: ", 1, true)
    or msg:find("writes into a tensor made outside it", 1, true)) then
    return true   -- (the last two: moongrad's chosen outcomes for t[i] = v in staged code, doc/autodiff.md)
  end
  return false
end

-- Prepares a program for running: chunks, sources, weights, directions.
function M.prepare(prog)
  local ctx = { prog = prog, ft = prog.ft, factory = {}, names = {} }
  ctx.sources = gen.sources(prog)
  ctx.inputs = prog.inputs
  local outs = {}
  for j, ty in ipairs(prog.main.ret) do if gen.is_float(ty) then outs[#outs + 1] = j end end
  ctx.grad = { outs = outs, nret = #prog.main.ret, srcs = ctx.sources }
  ctx.plain = gen.plain_eligible(prog)
  ctx.setitem = false
  local appends, vassigns = false, false
  for _, fn in ipairs(gen.functions(prog)) do
    gen.walk_block(fn.body, function(st)
      if st.tag == "setitem" then ctx.setitem = true end
      if st.tag == "tblappend" then appends = true end
      if st.tag == "vassign" then vassigns = true end
    end, function() end)
  end
  -- A Variable is a reference that a later assign changes (one kept in a table or a local, read
  -- by an op after a helper assigned it); the "lua" dialect's number is a value: that dialect
  -- applies only to programs that assign no Variable.
  ctx.lua_ok = not vassigns
  -- Assignments are not differentiable (doc/autodiff.md): a Variable assigned a value that
  -- depends on a source makes the loss depend on it in a way no gradient sees, so finite
  -- differences only apply to programs that assign nothing but constants (and counters).
  ctx.fd_ok = true
  for _, fn in ipairs(gen.functions(prog)) do
    gen.walk_block(fn.body, function(st)
      if st.tag == "vassign" and st.e.tag ~= "num" and st.e.tag ~= "const" then ctx.fd_ok = false end
    end, function() end)
  end
  ctx.lowprec = prog.ft == "float32" or gen.uses_f32(prog)
  -- Variables assigned in staged control flow: the gradient of such a branch or body is
  -- refused (doc/staging.md). Any assignment may be: in a helper called from a branch, or
  -- after an early `return`, which the return rewrite moves into a cond (finding N2).
  ctx.assign_in_region = false
  for _, fn in ipairs(gen.functions(prog)) do
    gen.walk_block(fn.body, function(st) if st.tag == "vassign" then ctx.assign_in_region = true end end, function() end)
  end
  for _, D in ipairs { "ref", "t", "lua" } do
    if D ~= "lua" or prog.scalar then
      local text = render.chunk(prog, D, ctx.grad)
      local f, name = load_chunk(text)
      ctx.factory[D], ctx.names[#ctx.names + 1] = f, name
      ctx["text_" .. D] = text
    end
  end
  return ctx
end

function M.release(ctx)
  for _, name in ipairs(ctx.names) do mg.autograph.register_source(name, nil) end
end

local function add(list, kind, mode, detail, extra)
  local m = { kind = kind, mode = mode, detail = detail }
  for k, v in pairs(extra or {}) do m[k] = v end
  list[#list + 1] = m
  return m
end

local function compare_values(ctx, base, other, mode, tol, list)
  if other.err then
    if not accept_error(ctx, mode, other.err) then
      add(list, "error", mode, "call " .. tostring(other.call) .. ": " .. tostring(other.err),
        { errclass = errclass(other.err) })
    end
    return
  end
  for c = 1, 2 do
    local a, b = base.calls[c], other.calls[c]
    local n = math.max(#a.outs, #b.outs)
    for i = 1, n do
      local why = differ(a.outs[i] or { absent = true }, b.outs[i] or { absent = true }, tol)
      if why then
        add(list, "value", mode, string.format("call %d, output %d: ref %s; %s %s (%s)", c, i,
          M.show(a.outs[i]), mode, M.show(b.outs[i]), why), { call = c, out = i })
        return
      end
    end
    for i = 1, #a.vars do
      local why = differ(a.vars[i], b.vars[i] or { absent = true }, tol)
      if why then
        add(list, "value", mode, string.format("call %d, Variable %s after the call: ref %s; %s %s (%s)", c,
          ctx.prog.vars[i].name, M.show(a.vars[i]), mode, M.show(b.vars[i]), why), { call = c, var = i })
        return
      end
    end
  end
end

local function compare_grads(ctx, base, other, mode, tol, list, kind, field)
  field = field or "g"
  kind = kind or "grad"
  if other.err then
    if not accept_error(ctx, mode, other.err) then
      add(list, "error", mode, tostring(other.err), { errclass = errclass(other.err) })
    end
    return
  end
  for k in ipairs(ctx.sources) do
    local why = differ(base[field][k], other[field][k], tol)
    if why then
      add(list, kind, mode, string.format("d/d%s%s: %s %s; %s %s (%s)", ctx.sources[k].name,
        field == "g1" and " (of the first output's term, persistent tape)" or "",
        mode:find("^fd") and "finite differences" or "ref", M.show(base[field][k]), mode,
        M.show(other[field][k]), why), { src = k })
      return
    end
  end
end

-- Runs every mode. Returns {status = "ok"|"mismatch"|"skip"|"invalid", mismatches =,
-- reason =, modes = {names run}}.
function M.check(prog, opts)
  opts = opts or {}
  local ctx = M.prepare(prog)
  local result = M.check_ctx(ctx, opts)
  M.release(ctx)
  result.ctx = ctx
  return result
end

function M.check_ctx(ctx, opts)
  local prog = ctx.prog
  local list = {}
  local modes = {}
  local tol = ctx.lowprec and 2e-3 or 1e-6
  -- the reference; its margins decide whether the program is well-conditioned
  local base
  for attempt = 0, 2 do
    if attempt > 0 then
      local rng = gen.rng(prog.seed * 7919 + attempt)
      ctx.inputs = {}
      for set = 1, 2 do
        local vals = {}
        for i, p in ipairs(prog.main.params) do
          if p.int then vals[i] = rng:int(0, 4)
          elseif p.luanum then vals[i] = prog.inputs[set][i]
          else vals[i] = gen.values_for(rng, p.ty.shape, "F") end
        end
        ctx.inputs[set] = vals
      end
    end
    R.margin, R.margin_at = math.huge, nil
    base = M.run_values(ctx, "ref")
    if base.err then
      return { status = "invalid", reason = "ref: " .. tostring(base.err), mismatches = {} }
    end
    if ctx.ft == "float32" then
      -- margins of the float64 run too (the finite differences run there)
      M.run_values(ctx, "ref", "float64")
    end
    ctx.margin = R.margin
    if R.margin >= M.MARGIN then break end
  end
  if ctx.margin < M.MARGIN then
    return { status = "skip", reason = string.format("margin %.3g at %s", ctx.margin, tostring(R.margin_at)),
      mismatches = {} }
  end
  modes[#modes + 1] = "ref"
  for _, how in ipairs(M.VALUE_MODES) do
    local run = true
    if how == "lua" and (not prog.scalar or not ctx.lua_ok) then run = false end
    if how == "eager" and not ctx.plain then run = false end
    if opts.only and not opts.only[how] then run = false end
    if run then
      modes[#modes + 1] = how
      local r = M.run_values(ctx, how)
      -- Lua numbers are float64 even where the program computes in float32
      local t = (how == "lua" and ctx.lowprec) and 5e-3 or tol
      compare_values(ctx, base, r, how, t, list)
    end
  end
  -- gradients
  if #ctx.grad.outs > 0 and #ctx.sources > 0 and not opts.values_only then
    local rng = gen.rng(prog.seed * 31 + 5)
    ctx.W = {}
    for i, j in ipairs(ctx.grad.outs) do ctx.W[i] = gen.values_for(rng, base.calls[1].outs[j].shape or {}, "F") end
    ctx.D = {}
    for k, s in ipairs(ctx.sources) do ctx.D[k] = gen.values_for(rng, s.shape, "F") end
    local g = M.run_grad(ctx, "ref")
    modes[#modes + 1] = "g_ref"
    if g.err then
      add(list, "error", "g_ref", tostring(g.err), { errclass = errclass(g.err) })
    else
      local gtol = ctx.lowprec and 2e-3 or 1e-6
      local modes_g = { { "eager", ctx.plain }, { "eager_ag", true }, { "staged", true },
        { "staged_noopt", true }, { "inside", true } }
      for _, m in ipairs(modes_g) do
        if m[2] and not opts.hvp_only and not (opts.only and not opts.only["g_" .. m[1]]) then
          modes[#modes + 1] = "g_" .. m[1]
          local r = M.run_grad(ctx, m[1])
          compare_grads(ctx, g, r, "g_" .. m[1], gtol, list)
          if m[1] == "staged_noopt" and not r.err and r.g1 then
            compare_grads(ctx, g, r, "g_" .. m[1], gtol, list, "grad", "g1")
          end
        end
      end
      -- finite differences (float64)
      local want_fd = ctx.fd_ok and not opts.hvp_only and not (opts.only and not opts.only.fd)
      local g64 = want_fd and (ctx.ft == "float64" and g or M.run_grad(ctx, "ref", "float64")) or { err = "skipped" }
      if not g64.err then
        local f32 = gen.uses_f32(prog)
        local eps = f32 and 1e-3 or 1e-6
        local ok, fd = pcall(M.fd_grad, ctx, eps)
        modes[#modes + 1] = "fd"
        if ok then
          compare_grads(ctx, { g = fd }, g64, "fd", f32 and 2e-2 or 2e-5, list, "fd")
        else
          add(list, "error", "fd", tostring(fd), { errclass = errclass(fd) })
        end
      end
      -- second order
      if not opts.no_hvp then
        local h = M.run_hvp(ctx, "ref")
        modes[#modes + 1] = "h_ref"
        if h.err then
          add(list, "error", "h_ref", tostring(h.err), { errclass = errclass(h.err) })
        else
          local htol = ctx.lowprec and 5e-3 or 1e-6
          for _, m in ipairs { "staged", "inside" } do
            if not (opts.only and not opts.only["h_" .. m]) then
              modes[#modes + 1] = "h_" .. m
              compare_grads(ctx, h, M.run_hvp(ctx, m), "h_" .. m, htol, list, "hvp", "h")
            end
          end
          local want_fd2 = ctx.fd_ok and not (opts.only and not opts.only.fd2) and not gen.uses_f32(prog)
          local h64 = want_fd2 and (ctx.ft == "float64" and h or M.run_hvp(ctx, "ref", "float64")) or { err = "skipped" }
          if not h64.err then
            local fd2, err = M.fd_hvp(ctx, 1e-5)
            modes[#modes + 1] = "fd2"
            if fd2 then compare_grads(ctx, { h = fd2 }, h64, "fd2", 1e-4, list, "fd2", "h") end
          end
        end
      end
    end
  end
  return { status = #list > 0 and "mismatch" or "ok", mismatches = list, modes = modes, margin = ctx.margin }
end

return M
