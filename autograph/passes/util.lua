-- autograph.passes.util: helpers shared by the transforms (not a pass).
--
-- rewrite(fn, cb) maps every node of the function being converted but
-- leaves the functions nested in it alone (those are converted on their own
-- when called); rt(name) is a reference to a runtime operator (`ag__.name`);
-- guard() is the flag lowering that break, continue and return share: after
-- a statement that may jump, the rest of the block runs under
-- `if not flag then ... end`, as TF's AutoGraph does. Portable Lua.
local ast = require("autograph.ast")

local M = {}

M.RT = "ag__"
local RT = M.RT

-- ag__.name, marked as generated.
function M.rt(name, line)
  local n = ast.index(ast.id(RT, line), name, line)
  n.generated = true
  return n
end

-- ag__.name(args...)
function M.rt_call(name, args, line)
  local c = ast.call(M.rt(name, line), args, line)
  c.generated = true
  return c
end

function M.is_rt_call(e)
  return e.tag == "Call" and e.func.tag == "Index" and e.func.obj.tag == "Id" and e.func.obj.name == RT
end

local function user_function(n, root)
  return n.tag == "Function" and n ~= root and not n.generated
end
M.user_function = user_function

-- Post-order rewrite of the converted function `root` (nested user functions skipped).
-- cb(node) returns a replacement, {many = {...}} for a statement, or nil.
function M.rewrite(root, cb)
  return ast.map(root, function(n, enter)
    if enter then
      if user_function(n, root) then return "skip" end
      return nil
    end
    return cb(n)
  end)
end

-- Visits every node of root before its children (nested user functions skipped);
-- visit(node) may return false to skip the node's children.
function M.visit(root, visit)
  local function go(n)
    if user_function(n, root) then return end
    if visit(n) == false then return end
    ast.each_child(n, go)
  end
  go(root)
end

-- Whether pred(node) holds for a node of s, not entering nested user
-- functions nor (when into_loops is false) nested loops.
local loops = { While = true, Repeat = true, Fornum = true, Forin = true }
M.loops = loops
function M.contains(s, pred, into_loops)
  if loops[s.tag] and not into_loops then return false end
  local found = false
  local function go(n)
    if found then return end
    if n.tag == "Function" and not n.generated then return end
    if pred(n) then found = true; return end
    if loops[n.tag] and not into_loops then return end
    ast.each_child(n, go)
  end
  ast.each_child(s, go)
  if not found and pred(s) then found = true end
  return found
end

-- The statement blocks directly inside s (for the flag lowering).
function M.child_blocks(s, into_loops)
  local t = s.tag
  if t == "If" then
    local list = {}
    for _, c in ipairs(s.clauses) do list[#list + 1] = c.body end
    if s.orelse then list[#list + 1] = s.orelse end
    return list
  elseif t == "Do" then
    return { s.body }
  elseif loops[t] and into_loops then
    return { s.body }
  end
  return {}
end

-- Lowers the jumps of a statement list to a flag:
--   spec.is_jump(s)   the jump statement itself
--   spec.replace(s)   the statements that replace it (set the flag)
--   spec.contains(s)  whether s holds a jump below it
--   spec.descend(s)   lowers the blocks inside s (called for each s that contains a jump)
-- The statements after a jump are dropped (unreachable); the statements after
-- a statement that contains one run under `if not <flag> then ... end`.
function M.guard(stmts, flag, spec)
  local out = {}
  for i, s in ipairs(stmts) do
    if spec.is_jump(s) then
      for _, r in ipairs(spec.replace(s)) do out[#out + 1] = r end
      return out
    end
    if spec.contains(s) then
      spec.descend(s)
      out[#out + 1] = s
      if i < #stmts then
        local rest = {}
        for j = i + 1, #stmts do rest[#rest + 1] = stmts[j] end
        local line = rest[1].line
        local body = ast.block(M.guard(rest, flag, spec), line)
        local g = ast.if_(ast.unop("not", ast.id(flag, line), line), body, nil, line)
        g.generated, g.guard = true, true
        out[#out + 1] = g
      end
      return out
    end
    out[#out + 1] = s
  end
  return out
end

-- `not flag and cond`, with the generated marks.
function M.and_not(flag, cond, line)
  local n = ast.unop("not", ast.id(flag, line), line)
  if not cond then return n end
  return ast.binop("and", n, cond, line)
end

-- The get_state/set_state closures and the names table for a statement's
-- state (a list of variable names) and scratch variables (assigned inside,
-- dead after: saved and restored around the traces, never outputs), placed
-- on `line`. The scratch names come last: {"s", "i", scratch = 1}.
function M.state_args(names, line, scratch)
  local all = {}
  for i, n in ipairs(names) do all[i] = n end
  for _, n in ipairs(scratch or {}) do all[#all + 1] = n end
  if #all == 0 then return { ast.nil_(line), ast.nil_(line), ast.nil_(line) } end
  local ids, ids2, strs = {}, {}, {}
  for i, n in ipairs(all) do
    ids[i] = ast.id(n, line)
    ids2[i] = ast.id(n, line)
    strs[i] = ast.str(n, line)
  end
  local get = ast.func({}, ast.block({ ast.return_(ids, line) }, line), line, nil)
  local set = ast.func({}, ast.block({ ast.set(ids2, { ast.node("Dots", line) }, line) }, line), line, nil, true)
  local tbl = ast.table_(strs, line)
  if scratch and #scratch > 0 then
    tbl.items[#tbl.items + 1] = { kind = "named", key = ast.str("scratch"), value = ast.num(#scratch, line) }
  end
  return { get, set, tbl }
end

-- Drops trailing nil arguments.
function M.trim(args)
  while #args > 0 and args[#args].tag == "Nil" do args[#args] = nil end
  return args
end

return M
