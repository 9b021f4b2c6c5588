-- fuzz_diff/findings.lua: names the known finding a mismatch belongs to, and the features a
-- program exercises.
--
-- classify(m, ctx) maps a mismatch to a finding id of /work/wt/fuzz-findings.md (the report
-- of the fuzzer's first runs, kept in the branch's notes) or of issue 14's items, by its
-- kind, mode, message and the program's features; "new" when it matches none. fuzz.sh and
-- the suite's expected list use the ids, so a long run can say which mismatches are new.
-- features(prog, ctx, result) lists what a program exercises (statement kinds, ops, loop
-- kinds with tensor bounds, modes run...) for choosing the suite's seeds (main.lua --pick).
-- Portable Lua.
local gen = require("fuzz_diff.gen")

local M = {}

local reads_earlier_arm   -- below

-- a function parameter assigned a conditional expression (finding F11)
local function reassigns_param_by_ifexp(prog)
  local found = false
  for _, fn in ipairs(gen.functions(prog)) do
    local params = {}
    for _, p in ipairs(fn.params) do params[p.name] = true end
    gen.walk_block(fn.body, function(st)
      if st.tag == "assign" and params[st.name] and st.e.tag == "ifexp" then found = true end
    end, function() end)
  end
  return found
end

-- {id, test(m, ctx)}; first match wins
M.rules = {
  { "F1", function(m)
    local d = m.detail or ""
    return (d:find("only tensors and numbers can depend on a tensor condition") ~= nil
      or d:find("only tensors and numbers can change in a staged loop") ~= nil) and not d:find("undefined in")
  end },
  { "F1", function(m)
    local d = m.detail or ""
    return d:find("retval__%d+' is a [%w]+ %b() tensor in the then branch and undefined") ~= nil
      or d:find("retval__%d+' is undefined in the then branch and a [%w]+ %b() tensor") ~= nil
  end },
  { "F1", function(m)
    local d = m.detail or ""
    local a, b = d:match("loop variable '[^']+' is a (%w+ %b()) tensor before this while loop and the body makes it a (%w+ %b()) tensor")
    return a ~= nil and a == b
  end },
  { "F2", function(m) return (m.detail or ""):find("int64 %(%) tensor in the else branch; a variable assigned under") ~= nil end },
  { "I4", function(m, ctx) return ctx and ctx.prog.acc ~= nil and (m.kind == "value" or m.kind == "grad" or m.kind == "hvp") end },
  { "F11", function(m, ctx) return ctx and (m.kind == "grad" or m.kind == "hvp")
    and reassigns_param_by_ifexp(ctx.prog) end },
  { "F7/F8", function(m) return m.kind == "hvp" and (m.mode == "h_inside" or m.mode == "h_staged") end },
  { "F7/F8", function(m) return m.kind == "grad" and (m.mode == "g_inside" or m.mode == "g_staged"
    or m.mode == "g_staged_noopt") end },
  { "F3", function(m) return (m.detail or ""):find("has no gradient record") ~= nil end },
  { "F4", function(m) return (m.detail or ""):find("was assigned after the call and before this gradient") ~= nil end },
  { "F5", function(m) return (m.detail or ""):find("'until__%d+' is a bool") ~= nil end },
  { "I1", function(m) return (m.detail or ""):find("a tensor was freed") ~= nil end },
  { "I3", function(m) return (m.detail or ""):find("escaped its trace") ~= nil end },
  { "I2", function(m, ctx) return ctx and m.kind == "value" and (m.mode == "staged" or m.mode == "staged_noopt")
    and m.call == 2 and ctx.prog.K[2] ~= nil end },
  { "I3", function(m, ctx) return ctx and m.kind == "value" and (m.mode == "staged" or m.mode == "staged_noopt")
    and reads_earlier_arm(ctx.prog) end },
  { "I7", function(m) return (m.detail or ""):find("unsqueeze: axis %-2 is out of range for a 1%-d tensor") ~= nil end },
}

-- Whether some `if` under a tensor condition has an arm that reads a local an earlier arm
-- assigns: the shape of issue 14 item 3 (the earlier arm's traced value leaks into the later
-- arm's trace when the local is not live after the `if`).
function reads_earlier_arm(prog)
  local found = false
  local function assigned(block)
    local names = {}
    gen.walk_block(block, function(st) if st.tag == "assign" then names[st.name] = true end end, function() end)
    return names
  end
  local function reads(block, names, cond)
    local hit = false
    local function look(e)
      gen.each_expr(e, function(x) if x.tag == "var" and names[x.name] then hit = true end end)
    end
    if cond then look(cond) end
    gen.walk_block(block, function() end, look)
    return hit
  end
  for _, fn in ipairs(gen.functions(prog)) do
    gen.walk_block(fn.body, function(st)
      if st.tag == "if" and st.tensor ~= false then
        local arms = {}
        for _, arm in ipairs(st.arms) do arms[#arms + 1] = { c = arm.c, body = arm.body } end
        if st.els then arms[#arms + 1] = { body = st.els } end
        for i = 1, #arms do
          local names = assigned(arms[i].body)
          for j = i + 1, #arms do
            if reads(arms[j].body, names, arms[j].c) then found = true end
          end
        end
      end
    end, function() end)
  end
  return found
end

function M.classify(m, ctx)
  for _, r in ipairs(M.rules) do
    if r[2](m, ctx) then return r[1] end
  end
  return "new"
end

local function add(set, k) set[k] = true end

-- the features of a program (a set of strings)
function M.features(prog, ctx, result)
  local f = {}
  add(f, "ft:" .. prog.ft)
  if prog.scalar then add(f, "scalar") end
  if ctx and ctx.plain then add(f, "plain") end
  if prog.acc then add(f, "acc") end
  if prog.K[2] then add(f, "K changes") end
  if prog.vbetween then add(f, "Variable assigned between calls") end
  if #prog.helpers > 0 then add(f, "helpers") end
  for _, v in ipairs(prog.vars) do add(f, v.counter and "counter Variable" or "Variable") end
  for _, p in ipairs(prog.main.params) do
    if p.int then add(f, "int param") elseif p.luanum then add(f, "Lua number param") end
  end
  for _, m in ipairs(result and result.modes or {}) do add(f, "mode:" .. m) end
  for _, fn in ipairs(gen.functions(prog)) do
    local depth = 0
    gen.walk_block(fn.body, function(st)
      local t = st.tag
      add(f, "stmt:" .. t)
      if t == "if" then
        if #st.arms > 1 then add(f, "elseif") end
        if st.els then add(f, "else") end
        if gen.tensory(st.arms[1].c) then add(f, "tensor if") else add(f, "lua if") end
        for _, arm in ipairs(st.arms) do
          local last = arm.body[#arm.body]
          if last and (last.tag == "break" or last.tag == "return") then add(f, "if-" .. last.tag) end
        end
      elseif t == "while" or t == "repeat" then
        add(f, t .. (st.bound.ty.k == "t" and " tensor bound" or " lua bound"))
        if gen.tensory(st.c) then add(f, t .. " tensor cond") end
      elseif t == "fornum" then
        add(f, "fornum" .. ((st.to.ty.k == "t") and " tensor bound" or " lua bound"))
        if st.step then add(f, "fornum step " .. st.step) end
      elseif t == "forrange" then
        add(f, "forrange" .. (st.n.ty.k == "t" and " tensor bound" or " lua bound"))
      elseif t == "foripairs" and st.tname then add(f, "ipairs over a table local")
      elseif t == "vassign" then add(f, "Variable " .. st.method)
      end
    end, function(e)
      gen.each_expr(e, function(x)
        local t = x.tag
        if t == "unary" or t == "call" or t == "reduce" or t == "move" or t == "mathf" then
          add(f, t .. ":" .. (x.fn or "?"))
          if t == "reduce" and x.opts then
            add(f, "reduce axis" .. (x.opts.keepdims and " keepdims" or ""))
          end
        elseif t == "bin" or t == "cmp" then
          add(f, t .. ":" .. x.op)
          if t == "bin" and ((x.a.ty.k == "num") ~= (x.b.ty.k == "num")) then add(f, "Lua number with tensor") end
          if t == "bin" and x.a.ty.k == "t" and x.b.ty.k == "t" and not gen.shape_eq(x.a.ty.shape, x.b.ty.shape) then
            add(f, "broadcast")
          end
        elseif t == "ifexp" then
          add(f, (x.c.ty.k == "t" and gen.numel(x.c.ty.shape) > 1) and "ifexp mask" or "ifexp scalar")
        elseif t == "cast" then add(f, "cast to " .. x.to .. " from " .. tostring(x.a.ty.dt))
        else add(f, t) end
        if x.ty and x.ty.k == "t" then add(f, "dtype:" .. x.ty.dt) end
        if x.ty and x.ty.mn then add(f, "number that becomes a tensor") end
      end)
    end)
  end
  return f
end

return M
