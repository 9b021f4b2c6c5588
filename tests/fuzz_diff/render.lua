-- fuzz_diff/render.lua: prints a generated program as Lua source.
--
-- One AST, three dialects:
--   "t"   what a user writes: plain Lua operators and control flow over tensors (`x < 0`,
--         `a and b`, `c and x or y`, `while`, `for k in mg.range(n)`). This text is what
--         runs unconverted on eager tensors, converted eagerly (mg.func{eager=true}) and
--         staged (mg.func, with and without optimisation).
--   "ref" the reference semantics of doc/autograph.md spelled out: every comparison,
--         `and`/`or`/`not`, condition, conditional expression and loop bound goes through
--         the helpers of ref.lua (R.cmp, R.truth, R.ifexp, ...), which compute with eager
--         ops, run the control flow in Lua, and record how close each comparison and kink
--         came to flipping (margins).
--   "lua" the same program on Lua numbers (scalar programs only): ops become the L helpers
--         of ref.lua (math.*), tensors Lua numbers, Variables small Lua objects; the control
--         flow is Lua's own, so AutoGraph is checked against real Lua semantics.
-- A chunk is a factory: `local mg, R, L, FT, KINIT, VINIT = ...` then the Variables, the
-- helpers and main, returning main, a setter for the upvalue K and the Variables (and, in
-- "t", the staged gradient wrappers). repro() prints a self-contained script for a finding.
-- Portable Lua.
local M = {}

local function fmtnum(v)
  if type(v) == "boolean" then return tostring(v) end
  local s
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then s = string.format("%d", v)
  else s = string.format("%.17g", v) end
  if v < 0 then return "(" .. s .. ")" end
  return s
end
M.fmtnum = fmtnum

local function literal(v)
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = literal(x) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  if type(v) == "number" then
    local s = fmtnum(v)
    return (s:gsub("^%((.*)%)$", "%1"))
  end
  return tostring(v)
end
M.literal = literal

local function shape_lit(s)
  local parts = {}
  for i, d in ipairs(s) do parts[i] = tostring(d) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local DT = { F = "FT", f32 = '"float32"', i64 = '"int64"', b = '"bool"' }
local KINKS = { relu = true, abs = true, floor = true, ceil = true, round = true, sign = true }

local E = {}   -- expression renderers by tag: E[tag](e, D) -> string

local function ex(e, D) return E[e.tag](e, D) end
M.expr = ex

function E.num(e) return fmtnum(e.v) end
function E.var(e) return e.name end
function E.vread(e, D) return D == "lua" and (e.name .. ".v") or e.name end
function E.len(e) return "#" .. e.name end
function E.const(e, D)
  if D == "lua" then
    if e.ty.dt == "b" then return tostring(e.value) end
    return fmtnum(e.value)
  end
  if e.ty.dt == "i64" then return "mg.tensor(" .. literal(e.value) .. ")" end
  return "mg.tensor(" .. literal(e.value) .. ", " .. DT[e.ty.dt] .. ")"
end
function E.bin(e, D) return "(" .. ex(e.a, D) .. " " .. e.op .. " " .. ex(e.b, D) .. ")" end
function E.unary(e, D)
  local a = ex(e.a, D)
  if e.fn == "neg" then return "(-" .. a .. ")" end
  if D == "lua" then return "L." .. e.fn .. "(" .. a .. ")" end
  if e.fn == "sqrt1" then return "mg.sqrt(mg.square(" .. a .. ") + 0.5)" end
  if e.fn == "log1p2" then return "mg.log1p(mg.square(" .. a .. "))" end
  if D == "ref" and KINKS[e.fn] then return "R." .. e.fn .. "(" .. a .. ")" end
  return "mg." .. e.fn .. "(" .. a .. ")"
end
function E.mathf(e, D) return "math." .. e.fn .. "(" .. ex(e.a, D) .. ")" end
function E.cmp(e, D)
  if D == "ref" then return 'R.cmp("' .. e.op .. '", ' .. ex(e.a, D) .. ", " .. ex(e.b, D) .. ")" end
  return "(" .. ex(e.a, D) .. " " .. e.op .. " " .. ex(e.b, D) .. ")"
end
E["and"] = function(e, D)
  if D == "ref" then return "R.and_(" .. ex(e.a, D) .. ", function() return " .. ex(e.b, D) .. " end)" end
  return "(" .. ex(e.a, D) .. " and " .. ex(e.b, D) .. ")"
end
E["or"] = function(e, D)
  if D == "ref" then return "R.or_(" .. ex(e.a, D) .. ", function() return " .. ex(e.b, D) .. " end)" end
  return "(" .. ex(e.a, D) .. " or " .. ex(e.b, D) .. ")"
end
E["not"] = function(e, D)
  if D == "ref" then return "R.not_(" .. ex(e.a, D) .. ")" end
  return "(not " .. ex(e.a, D) .. ")"
end
function E.ifexp(e, D)
  if D == "ref" then
    return "R.ifexp(" .. ex(e.c, D) .. ", function() return " .. ex(e.a, D) .. " end, function() return "
      .. ex(e.b, D) .. " end)"
  end
  return "(" .. ex(e.c, D) .. " and " .. ex(e.a, D) .. " or " .. ex(e.b, D) .. ")"
end
function E.call(e, D)
  local args = {}
  for i, a in ipairs(e.args) do args[i] = ex(a, D) end
  local prefix = "mg."
  if D == "lua" then prefix = "L."
  elseif D == "ref" and (e.fn == "maximum" or e.fn == "minimum") then prefix = "R." end
  return prefix .. e.fn .. "(" .. table.concat(args, ", ") .. ")"
end
local function opts_lit(o)
  if not o then return nil end
  local parts = {}
  if o.axis then parts[#parts + 1] = "axis = " .. tostring(o.axis) end
  if o.keepdims then parts[#parts + 1] = "keepdims = true" end
  return "{" .. table.concat(parts, ", ") .. "}"
end
function E.reduce(e, D)
  local a = ex(e.a, D)
  if D == "lua" then return "L." .. e.fn .. "(" .. a .. ")" end
  local prefix = (D == "ref" and (e.fn == "max" or e.fn == "min")) and "R." or "mg."
  local o = opts_lit(e.opts)
  return prefix .. e.fn .. "(" .. a .. (o and (", " .. o) or "") .. ")"
end
function E.matmul(e, D) return "mg.matmul(" .. ex(e.a, D) .. ", " .. ex(e.b, D) .. ")" end
function E.move(e, D)
  local a = ex(e.a, D)
  if e.fn == "transpose" then return "mg.transpose(" .. a .. ")" end
  if e.fn == "reshape" then return "mg.reshape(" .. a .. ", " .. shape_lit(e.shape) .. ")" end
  if e.fn == "squeeze" then return "mg.squeeze(" .. a .. ", 1)" end
  if e.fn == "concat" then return "mg.concat({" .. a .. ", " .. ex(e.b, D) .. "}, 1)" end
  if e.fn == "index" then return "(" .. a .. ")[" .. fmtnum(e.index) .. "]" end
  if e.fn == "slice" then
    if e.range then return "(" .. a .. "):slice{{" .. e.range[1] .. ", " .. e.range[2] .. "}}" end
    return "(" .. a .. "):slice{{}, {" .. e.range2[1] .. ", " .. e.range2[2] .. "}}"
  end
  error("move " .. tostring(e.fn))
end
function E.cast(e, D)
  local a = ex(e.a, D)
  if D == "lua" then return (e.to == "i64" and "L.toint(" or "L.tofloat(") .. a .. ")" end
  if D == "ref" and e.to == "i64" and (e.a.ty.dt == "F" or e.a.ty.dt == "f32") then
    return "R.cast_int(" .. a .. ")"
  end
  return "mg.cast(" .. a .. ", " .. DT[e.to] .. ")"
end
function E.hcall(e, D)
  local args = {}
  for i, a in ipairs(e.args) do args[i] = ex(a, D) end
  return e.name .. "(" .. table.concat(args, ", ") .. ")"
end
function E.accsum() return "accsum(acc)" end
function E.clone(e, D) return "(" .. ex(e.a, D) .. "):clone()" end

-- ---- statements ----------------------------------------------------------------------

local S = {}
local function block(b, D, ind, out)
  for _, st in ipairs(b or {}) do S[st.tag](st, D, ind, out) end
end
M.block = block
local function line(out, ind, s) out[#out + 1] = string.rep("  ", ind) .. s end

local function cond(c, D)
  if D == "ref" then return "R.truth(" .. ex(c, D) .. ")" end
  return ex(c, D)
end

S["local"] = function(st, D, ind, out) line(out, ind, "local " .. st.name .. " = " .. ex(st.e, D)) end
function S.assign(st, D, ind, out) line(out, ind, st.name .. " = " .. ex(st.e, D)) end
S["if"] = function(st, D, ind, out)
  for i, arm in ipairs(st.arms) do
    line(out, ind, (i == 1 and "if " or "elseif ") .. cond(arm.c, D) .. " then")
    block(arm.body, D, ind + 1, out)
  end
  if st.els then
    line(out, ind, "else")
    block(st.els, D, ind + 1, out)
  end
  line(out, ind, "end")
end
S["while"] = function(st, D, ind, out)
  line(out, ind, "local " .. st.ctr .. " = 0")
  if D == "ref" then
    line(out, ind, "while R.truth(R.and_(R.cmp(\"<\", " .. st.ctr .. ", " .. ex(st.bound, D) .. "), function() return "
      .. ex(st.c, D) .. " end)) do")
  else
    line(out, ind, "while (" .. st.ctr .. " < " .. ex(st.bound, D) .. ") and " .. ex(st.c, D) .. " do")
  end
  line(out, ind + 1, st.ctr .. " = " .. st.ctr .. " + 1")
  block(st.body, D, ind + 1, out)
  line(out, ind, "end")
end
S["repeat"] = function(st, D, ind, out)
  line(out, ind, "local " .. st.ctr .. " = 0")
  line(out, ind, "repeat")
  line(out, ind + 1, st.ctr .. " = " .. st.ctr .. " + 1")
  block(st.body, D, ind + 1, out)
  if D == "ref" then
    line(out, ind, "until R.truth(R.or_(R.cmp(\">=\", " .. st.ctr .. ", " .. ex(st.bound, D) .. "), function() return "
      .. ex(st.c, D) .. " end))")
  else
    line(out, ind, "until (" .. st.ctr .. " >= " .. ex(st.bound, D) .. ") or " .. ex(st.c, D))
  end
end
function S.fornum(st, D, ind, out)
  local from, to = ex(st.from, D), ex(st.to, D)
  if D == "ref" then from, to = "R.num(" .. from .. ")", "R.num(" .. to .. ")" end
  line(out, ind, "for " .. st.var .. " = " .. from .. ", " .. to .. (st.step and (", " .. st.step) or "") .. " do")
  block(st.body, D, ind + 1, out)
  line(out, ind, "end")
end
function S.forrange(st, D, ind, out)
  local n = ex(st.n, D)
  if D == "t" then line(out, ind, "for " .. st.var .. " in mg.range(" .. n .. ") do")
  elseif D == "ref" then line(out, ind, "for " .. st.var .. " = 1, R.num(" .. n .. ") do")
  else line(out, ind, "for " .. st.var .. " = 1, " .. n .. " do") end
  block(st.body, D, ind + 1, out)
  line(out, ind, "end")
end
function S.foripairs(st, D, ind, out)
  local items = {}
  for i, it in ipairs(st.items) do items[i] = ex(it, D) end
  local list = "{" .. table.concat(items, ", ") .. "}"
  if st.tname then
    line(out, ind, "local " .. st.tname .. " = " .. list)
    list = st.tname
  end
  line(out, ind, "for " .. st.ivar .. ", " .. st.vvar .. " in ipairs(" .. list .. ") do")
  block(st.body, D, ind + 1, out)
  line(out, ind, "end")
end
function S.forrows(st, D, ind, out)
  local it = D == "ref" and "R.rows(" or "ipairs("
  line(out, ind, "for " .. st.ivar .. ", " .. st.vvar .. " in " .. it .. ex(st.src, D) .. ") do")
  block(st.body, D, ind + 1, out)
  line(out, ind, "end")
end
S["break"] = function(_, _, ind, out) line(out, ind, "break") end
S["return"] = function(st, D, ind, out)
  local vals = {}
  for i, v in ipairs(st.vals) do vals[i] = ex(v, D) end
  line(out, ind, "return " .. table.concat(vals, ", "))
end
function S.vassign(st, D, ind, out) line(out, ind, st.name .. ":" .. st.method .. "(" .. ex(st.e, D) .. ")") end
function S.setitem(st, D, ind, out) line(out, ind, st.name .. "[" .. fmtnum(st.index) .. "] = " .. ex(st.e, D)) end
function S.tblappend(st, D, ind, out) line(out, ind, st.name .. "[#" .. st.name .. " + 1] = " .. ex(st.e, D)) end

-- ---- functions and chunks --------------------------------------------------------------

local function fn_source(fn, D, out, ind)
  ind = ind or 0
  local ps = {}
  for i, p in ipairs(fn.params) do ps[i] = p.name end
  line(out, ind, "local function " .. fn.name .. "(" .. table.concat(ps, ", ") .. ")")
  if fn.acc then line(out, ind + 1, "local acc = {}") end
  block(fn.body, D, ind + 1, out)
  line(out, ind, "end")
end

local function zero_of(elem, D)
  if D == "lua" then return "0.0" end
  return "mg.zeros(" .. shape_lit(elem.shape) .. ", FT)"
end

-- the declarations before main: K, the Variables, accsum, the helpers
local function prelude(prog, D, out, values)
  line(out, 0, "local K = " .. (values and fmtnum(prog.K[1]) or "KINIT"))
  for i, v in ipairs(prog.vars) do
    local init = values and literal(v.init) or ("VINIT[" .. i .. "]")
    if D == "lua" then
      line(out, 0, "local " .. v.name .. " = L.Var(" .. init .. ")")
    elseif v.counter then
      line(out, 0, "local " .. v.name .. " = mg.Variable(mg.tensor(" .. init .. "), {trainable = false})")
    else
      line(out, 0, "local " .. v.name .. " = mg.Variable(mg.tensor(" .. init .. ", FT))")
    end
  end
  if prog.acc then
    line(out, 0, "local function accsum(t)")
    line(out, 1, "local s = " .. zero_of(prog.acc.elem, D))
    line(out, 1, "for _, e in ipairs(t) do s = s + e end")
    line(out, 1, "return s + #t")
    line(out, 0, "end")
  end
  for _, h in ipairs(prog.helpers) do fn_source(h, D, out) end
end

local function names(list, f)
  local out = {}
  for i, x in ipairs(list) do out[i] = f and f(x, i) or x.name end
  return table.concat(out, ", ")
end

-- The staged gradient wrappers (a tape inside the staged function): grad_inside returns the
-- loss and the gradients; hvp_inside, with nested tapes, the Hessian-vector products.
-- g = {outs = {indices of the float outputs}, nret = #ret, srcs = sources}
local function grad_wrappers(prog, g, out)
  local params = names(prog.main.params)
  local ws, ds = {}, {}
  for i in ipairs(g.outs) do ws[i] = "W" .. i end
  for i in ipairs(g.srcs) do ds[i] = "D" .. i end
  local os = {}
  for i = 1, g.nret do os[i] = "o" .. i end
  local watch, srclist = {}, {}
  for i, s in ipairs(g.srcs) do
    srclist[i] = s.name
    if s.kind == "param" then watch[#watch + 1] = s.name end
  end
  local function loss_expr()
    local terms = {}
    for i, j in ipairs(g.outs) do terms[i] = "mg.sum(o" .. j .. " * W" .. i .. ")" end
    return table.concat(terms, " + ")
  end
  local function gret(v)
    local r = {}
    for i in ipairs(g.srcs) do r[i] = v .. "[" .. i .. "]" end
    return table.concat(r, ", ")
  end
  local zero = '{unconnected_gradients = "zero"}'
  line(out, 0, "local function grad_inside(" .. table.concat(ws, ", ") .. (#ws > 0 and ", " or "") .. params .. ")")
  line(out, 1, "local tape = mg.GradientTape()")
  for _, w in ipairs(watch) do line(out, 1, "tape:watch(" .. w .. ")") end
  line(out, 1, "local " .. table.concat(os, ", ") .. " = main(" .. params .. ")")
  line(out, 1, "local loss = " .. loss_expr())
  line(out, 1, "tape:stop()")
  line(out, 1, "local g = tape:gradient(loss, {" .. table.concat(srclist, ", ") .. "}, " .. zero .. ")")
  line(out, 1, "return loss, " .. gret("g"))
  line(out, 0, "end")
  line(out, 0, "local function hvp_inside(" .. table.concat(ws, ", ") .. ", " .. table.concat(ds, ", ") .. ", " .. params .. ")")
  line(out, 1, "local outer = mg.GradientTape()")
  for _, w in ipairs(watch) do line(out, 1, "outer:watch(" .. w .. ")") end
  line(out, 1, "local inner = mg.GradientTape()")
  for _, w in ipairs(watch) do line(out, 1, "inner:watch(" .. w .. ")") end
  line(out, 1, "local " .. table.concat(os, ", ") .. " = main(" .. params .. ")")
  line(out, 1, "local loss = " .. loss_expr())
  line(out, 1, "local g = inner:gradient(loss, {" .. table.concat(srclist, ", ") .. "}, " .. zero .. ")")
  local terms = {}
  for i in ipairs(g.srcs) do terms[i] = "mg.sum(g[" .. i .. "] * D" .. i .. ")" end
  line(out, 1, "local s = " .. table.concat(terms, " + "))
  line(out, 1, "outer:stop()")
  line(out, 1, "local h = outer:gradient(s, {" .. table.concat(srclist, ", ") .. "}, " .. zero .. ")")
  line(out, 1, "return " .. gret("h"))
  line(out, 0, "end")
end

-- The chunk of a dialect. g: the gradient spec (t dialect: the wrappers are added).
function M.chunk(prog, D, g)
  local out = {}
  line(out, 0, "local mg, R, L, FT, KINIT, VINIT = ...")
  prelude(prog, D, out)
  fn_source(prog.main, D, out)
  if D == "t" and g and #g.outs > 0 and #g.srcs > 0 then grad_wrappers(prog, g, out) end
  line(out, 0, "return { main = main, setK = function(v) K = v end, vars = {" .. names(prog.vars) .. "},")
  line(out, 1, "grad_inside = grad_inside, hvp_inside = hvp_inside }")
  return table.concat(out, "\n") .. "\n"
end

-- Just the program as a user would write it (dialect t), for reports.
function M.program(prog)
  local out = {}
  prelude(prog, "t", out, true)
  fn_source(prog.main, "t", out)
  return table.concat(out, "\n") .. "\n"
end

-- a Lua expression building an argument value
function M.arg_source(p, v, ft)
  if p.luanum then return fmtnum(v) end
  if p.int then return "mg.tensor(" .. fmtnum(v) .. ")" end
  return "mg.tensor(" .. literal(v) .. ', "' .. ft .. '")'
end

return M
