-- fuzz_diff/shrink.lua: shrinks a mismatching program and prints it as a regression case.
--
-- Greedy delta debugging on the AST: a list of candidate edits (delete a statement; splice
-- an if arm or a loop body in place of the statement; drop an elseif arm, an else, a
-- helper, a Variable, a parameter or a returned value; replace an expression by one of its
-- sub-expressions of the same type or by a constant; round input values) is tried in
-- order, biggest first, each on a copy; an edit is kept when the copy still shows the same
-- mismatch (same kind and mode, and for errors the same normalised message) and the
-- reference still runs cleanly, and the scan continues where it was. Passes repeat until
-- one changes nothing or the budget of runs is spent. Edits need not keep the program
-- well typed: a broken candidate fails in the reference run and is rejected, which is
-- simpler and safer than re-checking types. Only the target mode is run per candidate.
--
-- report() prints the seed, the modes that disagree and their values, the program, its
-- inputs, and a self-contained Lua script (repro) that shows the disagreement with plain
-- moongrad calls, ready to become a busted regression spec. Portable Lua.
local gen = require("fuzz_diff.gen")
local run = require("fuzz_diff.run")
local render = require("fuzz_diff.render")

local M = {}
local unpack = table.unpack or unpack

-- ---- matching ----------------------------------------------------------------------------

local function matches(m, target)
  if m.kind ~= target.kind or m.mode ~= target.mode then return false end
  if m.kind == "error" then return m.errclass == target.errclass end
  return true
end
M.matches = matches

local function run_opts(target)
  local mode = target.mode
  local o = { only = { [mode] = true } }
  if not mode:find("^[gh]_") and not mode:find("^fd") then o.values_only = true end
  if not mode:find("^h_") and mode ~= "fd2" then o.no_hvp = true end
  if mode:find("^h_") or mode == "fd2" then o.hvp_only = true end
  return o
end

local function reproduces(prog, target)
  local ok, r = pcall(run.check, prog, run_opts(target))
  if not ok or r.status ~= "mismatch" then return false end
  for _, m in ipairs(r.mismatches) do
    if matches(m, target) then return true, m end
  end
  return false
end
M.reproduces = reproduces

-- ---- edit sites --------------------------------------------------------------------------

local function follow(root, path)
  local x = root
  for _, k in ipairs(path) do x = x[k] end
  return x
end

local function append(path, ...)
  local p = {}
  for i, k in ipairs(path) do p[i] = k end
  for _, k in ipairs { ... } do p[#p + 1] = k end
  return p
end

local EXPR_KEYS = { "a", "b", "c" }
local STMT_EXPRS = { "e", "c", "bound", "from", "to", "n", "src" }

local function walk_expr(e, path, out)
  if type(e) ~= "table" or not e.tag then return end
  out[#out + 1] = { kind = "expr", path = path, node = e }
  for _, k in ipairs(EXPR_KEYS) do walk_expr(e[k], append(path, k), out) end
  for i, a in ipairs(e.args or {}) do walk_expr(a, append(path, "args", i), out) end
end

local function walk_block(block, path, out, fnlevel)
  for i, st in ipairs(block or {}) do
    local sp = append(path, i)
    if not (fnlevel and i == #block and st.tag == "return") then
      out[#out + 1] = { kind = "stmt", path = path, index = i, st = st }
    end
    for _, k in ipairs(STMT_EXPRS) do walk_expr(st[k], append(sp, k), out) end
    for j, v in ipairs(st.vals or {}) do walk_expr(v, append(sp, "vals", j), out) end
    for j, v in ipairs(st.items or {}) do walk_expr(v, append(sp, "items", j), out) end
    for a, arm in ipairs(st.arms or {}) do
      walk_expr(arm.c, append(sp, "arms", a, "c"), out)
      walk_block(arm.body, append(sp, "arms", a, "body"), out)
    end
    if st.els then walk_block(st.els, append(sp, "els"), out) end
    if st.body then walk_block(st.body, append(sp, "body"), out) end
  end
end

local function is_leaf(e)
  return e.tag == "num" or e.tag == "var" or e.tag == "vread" or e.tag == "const" or e.tag == "len"
end

local function simple_const(ty)
  if ty.k == "num" then
    return { tag = "num", ty = ty, mag = 1, v = ty.int and 1 or 0.5 }
  end
  if ty.k == "t" and ty.dt ~= "b" then
    local function rec(i)
      if i > #ty.shape then return ty.dt == "i64" and 1 or 0.5 end
      local t = {}
      for j = 1, ty.shape[i] do t[j] = rec(i + 1) end
      return t
    end
    return { tag = "const", ty = { k = "t", dt = ty.dt, shape = ty.shape }, mag = 1, value = rec(1) }
  end
  return nil
end

-- candidate edits, each a function(copy) that edits a copy of the program
local function candidates(prog)
  local sites = {}
  for h in ipairs(prog.helpers) do walk_block(prog.helpers[h].body, { "helpers", h, "body" }, sites, true) end
  walk_block(prog.main.body, { "main", "body" }, sites, true)
  local out = {}
  local function add(f) out[#out + 1] = f end
  -- whole helpers, Variables, parameters, returned values
  for h = #prog.helpers, 1, -1 do add(function(p) table.remove(p.helpers, h) end) end
  for v = #prog.vars, 1, -1 do add(function(p) table.remove(p.vars, v) end) end
  for i = #prog.main.params, 1, -1 do
    add(function(p)
      table.remove(p.main.params, i)
      for _, set in ipairs(p.inputs) do table.remove(set, i) end
    end)
  end
  if #prog.main.ret > 1 then
    for j = #prog.main.ret, 1, -1 do
      add(function(p)
        if p.acc and j == #p.main.ret then p.acc, p.main.acc = nil, nil end
        table.remove(p.main.ret, j)
        gen.walk_block(p.main.body, function(st)
          if st.tag == "return" then table.remove(st.vals, j) end
        end, function() end)
      end)
    end
  end
  -- statements: delete, or splice a body in their place
  for _, s in ipairs(sites) do
    if s.kind == "stmt" then
      local path, i = s.path, s.index
      add(function(p) table.remove(follow(p, path), i) end)
      local st = s.st
      local function splice(getbody)
        add(function(p)
          local block = follow(p, path)
          local body = getbody(block[i]) or {}
          table.remove(block, i)
          for k = #body, 1, -1 do table.insert(block, i, body[k]) end
        end)
      end
      if st.tag == "if" then
        for a in ipairs(st.arms) do splice(function(x) return x.arms[a].body end) end
        if st.els then
          splice(function(x) return x.els end)
          add(function(p) follow(p, path)[i].els = nil end)
        end
        if #st.arms > 1 then
          for a in ipairs(st.arms) do add(function(p) table.remove(follow(p, path)[i].arms, a) end) end
        end
      elseif st.body then
        splice(function(x) return x.body end)
        if st.tag == "while" or st.tag == "repeat" then
          add(function(p) follow(p, path)[i].bound = { tag = "num", ty = gen.num(true), mag = 1, v = 1 } end)
        end
      end
    end
  end
  -- expressions: a sub-expression of the same type, or a constant
  for _, s in ipairs(sites) do
    if s.kind == "expr" then
      local e, path = s.node, s.path
      for _, k in ipairs(EXPR_KEYS) do
        local c = e[k]
        if type(c) == "table" and c.ty and gen.type_eq(c.ty, e.ty) then
          add(function(p)
            local parent = follow(p, { unpack(path, 1, #path - 1) })
            parent[path[#path]] = gen.copy(follow(p, append(path, k)))
          end)
        end
      end
      for j, c in ipairs(e.args or {}) do
        if gen.type_eq(c.ty, e.ty) then
          add(function(p)
            local parent = follow(p, { unpack(path, 1, #path - 1) })
            parent[path[#path]] = gen.copy(follow(p, append(path, "args", j)))
          end)
        end
      end
      if not is_leaf(e) or e.tag == "const" then
        local c = simple_const(e.ty)
        if c and not (e.tag == "const" and render.expr(e, "t") == render.expr(c, "t")) then
          add(function(p)
            local parent = follow(p, { unpack(path, 1, #path - 1) })
            parent[path[#path]] = gen.copy(c)
          end)
        end
      end
    end
  end
  -- inputs: rounder values
  local function round_vals(v)
    if type(v) == "table" then
      local t = {}
      for i, x in ipairs(v) do t[i] = round_vals(x) end
      return t
    end
    if type(v) ~= "number" or v == math.floor(v) then return v end
    local r = math.floor(v * 4 + 0.5) / 4
    if r == math.floor(r) then r = r + 0.25 end
    return r
  end
  if prog.vbetween then add(function(p) p.vbetween = nil end) end
  if prog.K[2] then add(function(p) p.K[2] = nil end) end
  add(function(p)
    for _, set in ipairs(p.inputs) do
      for i, v in ipairs(set) do set[i] = round_vals(v) end
    end
    for _, v in ipairs(p.vars) do if not v.counter then v.init = round_vals(v.init) end end
    p.K[1] = round_vals(p.K[1])
    if p.K[2] then p.K[2] = round_vals(p.K[2]) end
  end)
  return out
end

-- what an edit must change: the program text, its inputs and K
local function fingerprint(p)
  local ok, text = pcall(render.program, p)
  if not ok then return nil end
  local parts = { text }
  for _, set in ipairs(p.inputs) do
    for _, v in ipairs(set) do parts[#parts + 1] = render.literal(v) end
  end
  parts[#parts + 1] = tostring(p.K[2]) .. tostring(p.vbetween ~= nil)
  return table.concat(parts, "|")
end

-- Shrinks prog while it shows target; returns the smallest program, its mismatch and the
-- number of runs.
function M.shrink(prog, target, budget)
  budget = budget or 600
  local best = prog
  local ok0, m0 = reproduces(prog, target)
  if not ok0 then return prog, nil, 1 end
  local bestm = m0
  local tries = 1
  local changed = true
  while changed and tries < budget do
    changed = false
    local cands = candidates(best)
    local i = 1
    while i <= #cands and tries < budget do
      local copy = gen.copy(best)
      local okedit = pcall(cands[i], copy)
      if okedit then
        local fp = fingerprint(copy)
        okedit = fp ~= nil and fp ~= fingerprint(best) and gen.well_scoped(copy)
      end
      if okedit then
        tries = tries + 1
        local ok, m = reproduces(copy, target)
        if ok then
          best, bestm, changed = copy, m, true
          cands = candidates(best)   -- positions shift; continue near where we were
        else
          i = i + 1
        end
      else
        i = i + 1
      end
    end
  end
  return best, bestm, tries
end

-- ---- reports -----------------------------------------------------------------------------

local function args_text(prog, inputs, ft)
  local parts = {}
  for i, p in ipairs(prog.main.params) do
    parts[i] = "local " .. p.name .. " = " .. render.arg_source(p, inputs[i], ft)
  end
  return parts
end

local function wrap_text(mode)
  if mode == "staged" or mode == "g_staged" or mode == "h_staged" then return "mg.func(main)" end
  if mode == "staged_noopt" or mode == "g_staged_noopt" then return "mg.func(main, {optimize = false})" end
  if mode == "eager_ag" or mode == "g_eager_ag" or mode == "fd" or mode == "g_ref" or mode == "h_ref"
    or mode == "fd2" then
    return "mg.func(main, {eager = true})"
  end
  return "main"
end

local function names_of(list)
  local t = {}
  for i, x in ipairs(list) do t[i] = x.name end
  return table.concat(t, ", ")
end

-- A self-contained script that shows the mismatch (for a regression spec).
function M.repro(prog, ctx, m)
  local out = {}
  local function l(s) out[#out + 1] = s end
  local ft = prog.ft
  l('local mg = require("moongrad")')
  l('local FT = "' .. ft .. '"')
  local body = render.program(prog)
  l((body:gsub("\n$", "")))
  local params = names_of(prog.main.params)
  local mode = m.mode
  if mode == "lua" then
    l("-- plain Lua on numbers (the \"lua\" dialect): run tests/fuzz_diff/main.lua --show " .. prog.seed)
  end
  if not mode:find("^[gh]_") and not mode:find("^fd") then
    for _, a in ipairs(args_text(prog, ctx.inputs[1], ft)) do l(a) end
    l("local f = " .. wrap_text(mode))
    l("print(f(" .. params .. "))")
    if prog.K[2] then l("K = " .. render.fmtnum(prog.K[2])) end
    if prog.vbetween then
      l(prog.vbetween.name .. ":assign(mg.tensor(" .. render.literal(prog.vbetween.value) .. ", FT))")
    end
    local a2 = args_text(prog, ctx.inputs[2], ft)
    for i, a in ipairs(a2) do a2[i] = a:gsub("^local ", "") end
    l(table.concat(a2, "; "))
    l("print(f(" .. params .. "))")
    if #prog.vars > 0 then l("print(" .. names_of(prog.vars) .. ")") end
    l("-- " .. m.detail:gsub("\n", " "))
    return table.concat(out, "\n") .. "\n"
  end
  for _, a in ipairs(args_text(prog, ctx.inputs[1], ft)) do l(a) end
  local ws, terms = {}, {}
  for i, j in ipairs(ctx.grad.outs) do
    ws[#ws + 1] = "local W" .. i .. " = mg.tensor(" .. render.literal(ctx.W[i]) .. ", FT)"
    terms[#terms + 1] = "mg.sum(o" .. j .. " * W" .. i .. ")"
  end
  for _, w in ipairs(ws) do l(w) end
  local os = {}
  for j = 1, #prog.main.ret do os[j] = "o" .. j end
  local srcs = names_of(ctx.sources)
  local watch = {}
  for _, s in ipairs(ctx.sources) do if s.kind == "param" then watch[#watch + 1] = s.name end end
  if mode == "g_inside" or mode == "h_inside" then
    local wrappers = ctx.text_t:match("(local function grad_inside.-)\nreturn {")
    l(wrappers)
    if mode == "g_inside" then
      l("local r = {mg.func(grad_inside)(" .. (#ws > 0 and "W1" or "") ..
        (function() local t = {} for i = 2, #ws do t[#t + 1] = "W" .. i end return #t > 0 and (", " .. table.concat(t, ", ")) or "" end)()
        .. ", " .. params .. ")}")
      l("print((table.unpack or unpack)(r))")
    else
      for k, d in ipairs(ctx.D) do l("local D" .. k .. " = mg.tensor(" .. render.literal(d) .. ", FT)") end
      local wl, dl = {}, {}
      for i = 1, #ws do wl[i] = "W" .. i end
      for k = 1, #ctx.D do dl[k] = "D" .. k end
      l("print(mg.func(hvp_inside)(" .. table.concat(wl, ", ") .. ", " .. table.concat(dl, ", ") .. ", " .. params .. "))")
    end
  elseif mode:find("^h_") or mode == "fd2" then
    for k, d in ipairs(ctx.D) do l("local D" .. k .. " = mg.tensor(" .. render.literal(d) .. ", FT)") end
    l("local f = " .. wrap_text(mode))
    l("local outer = mg.GradientTape()")
    for _, w in ipairs(watch) do l("outer:watch(" .. w .. ")") end
    l("local inner = mg.GradientTape()")
    for _, w in ipairs(watch) do l("inner:watch(" .. w .. ")") end
    l("local " .. table.concat(os, ", ") .. " = f(" .. params .. ")")
    l("local loss = " .. table.concat(terms, " + "))
    l('local g = inner:gradient(loss, {' .. srcs .. '}, {unconnected_gradients = "zero"})')
    local st = {}
    for k = 1, #ctx.sources do st[k] = "mg.sum(g[" .. k .. "] * D" .. k .. ")" end
    l("local s = " .. table.concat(st, " + "))
    l("outer:stop()")
    l('print((table.unpack or unpack)(outer:gradient(s, {' .. srcs .. '}, {unconnected_gradients = "zero"})))')
  else
    l("local f = " .. wrap_text(mode))
    l("local tape = mg.GradientTape()")
    for _, w in ipairs(watch) do l("tape:watch(" .. w .. ")") end
    l("local " .. table.concat(os, ", ") .. " = f(" .. params .. ")")
    l("local loss = " .. table.concat(terms, " + "))
    l("tape:stop()")
    l('print((table.unpack or unpack)(tape:gradient(loss, {' .. srcs .. '}, {unconnected_gradients = "zero"})))')
  end
  l("-- " .. m.detail:gsub("\n", " "))
  return table.concat(out, "\n") .. "\n"
end

local function inputs_text(prog, ctx)
  local lines = {}
  for set = 1, 2 do
    local parts = {}
    for i, p in ipairs(prog.main.params) do parts[i] = p.name .. " = " .. render.literal(ctx.inputs[set][i]) end
    lines[set] = "--   call " .. set .. ": " .. table.concat(parts, ", ")
  end
  return table.concat(lines, "\n")
end

-- The report of a shrunk mismatch: header, every disagreeing mode, program and repro.
function M.report(seed, original, prog, m, tries, gen_opts)
  local r = run.check(prog)
  local ctx = r.ctx
  local out = {}
  local function l(s) out[#out + 1] = s end
  l(string.format("== fuzz_diff: seed %d%s: %s in %s (shrunk from %d to %d statements in %d runs)", seed,
    gen_opts and gen_opts.lj and " (luajit profile)" or "", m.kind, m.mode, gen.size(original), gen.size(prog), tries))
  l("   " .. m.detail:gsub("\n", "\n   "))
  local others = {}
  for _, x in ipairs(r.mismatches) do
    if not (x.kind == m.kind and x.mode == m.mode) then others[#others + 1] = x.kind .. " in " .. x.mode end
  end
  if #others > 0 then l("   also: " .. table.concat(others, ", ")) end
  local agree = {}
  local bad = {}
  for _, x in ipairs(r.mismatches) do bad[x.mode] = true end
  for _, mode in ipairs(r.modes or {}) do if not bad[mode] then agree[#agree + 1] = mode end end
  l("   agreeing: " .. table.concat(agree, ", "))
  l(string.format("-- FT = %s, K = %s%s", prog.ft, render.fmtnum(prog.K[1]),
    prog.K[2] and (", then K = " .. render.fmtnum(prog.K[2]) .. " before call 2") or ""))
  l(inputs_text(prog, ctx))
  l("-- repro:")
  l(M.repro(prog, ctx, m))
  return table.concat(out, "\n")
end

return M
