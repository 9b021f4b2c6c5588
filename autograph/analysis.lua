-- autograph.analysis: scopes, assignments and liveness of the function being
-- converted, to find each control statement's state.
--
-- Scopes: every Id is resolved to a binding (a local or parameter of the
-- function or of a function nested in it, an upvalue of the function, or
-- nil for a global, i.e. a field of _ENV). Bindings carry a serial number in
-- declaration order, so "declared outside statement S" is "serial below S's".
--
-- State: for each if/while/repeat/for statement S of the function itself
-- (not of nested functions), S.assigned is the set of bindings declared
-- outside S and assigned inside it (nested closures included), and
-- S.state lists those that must flow through the statement when it is
-- staged: for an if, the ones live after it; for a loop, the ones live at
-- its head (read by the condition or by the body before being written) or
-- after it. S.scratch lists the others (assigned inside, dead after): they
-- are not outputs, but a staged statement traces its branches (or its body)
-- one after the other, so it saves them before and restores them between and
-- after the traces, or one branch's trace would see the other's values.
-- Liveness is a backward dataflow over the structured AST (loops
-- iterate to a fixpoint); it runs after break/continue/return have been
-- lowered to flags, so control only leaves a statement at its end. Upvalues
-- and locals captured by nested functions are treated as always live (a
-- closure may read them at any time). Portable Lua.
local ast = require("autograph.ast")

local M = {}
M.name = "analysis"

-- ---- scopes -------------------------------------------------------------------------

local Scopes = {}
Scopes.__index = Scopes

function Scopes:push() self.stack[#self.stack + 1] = {} end
function Scopes:pop() self.stack[#self.stack] = nil end

function Scopes:declare(id, kind)
  self.serial = self.serial + 1
  local b = { name = id.name, serial = self.serial, kind = kind, depth = self.depth, decl = id }
  self.stack[#self.stack][id.name] = b
  id.binding, id.decl = b, true
  return b
end

function Scopes:resolve(id)
  local name = id.name
  for i = #self.stack, 1, -1 do
    local b = self.stack[i][name]
    if b then
      if b.depth < self.depth then b.captured = true end
      id.binding = b
      return b
    end
  end
  if self.upvalues[name] then
    local b = self.outer[name]
    if not b then
      b = { name = name, serial = 0, kind = "upvalue", depth = -1 }
      self.outer[name] = b
    end
    id.binding = b
    return b
  end
  id.binding = nil   -- a global
  return nil
end

-- An assignment to b inside every active control statement declared after it.
function Scopes:assign(b)
  if not b then return end
  for _, s in ipairs(self.active) do
    if b.serial < s.serial then s.assigned[b] = true end
  end
end

local walk_stmt, walk_expr, walk_block

function walk_block(sc, block)
  sc:push()
  for _, s in ipairs(block.body) do walk_stmt(sc, s) end
  sc:pop()
end

local function walk_exprs(sc, list) for _, e in ipairs(list) do walk_expr(sc, e) end end

-- Starts a control statement (only those of the converted function itself).
local function enter(sc, s)
  if sc.depth ~= 0 then return false end
  sc.serial = sc.serial + 1
  s.serial, s.assigned = sc.serial, {}
  sc.active[#sc.active + 1] = s
  sc.controls[#sc.controls + 1] = s
  return true
end
local function leave(sc, entered) if entered then sc.active[#sc.active] = nil end end

local function walk_target(sc, t)
  if t.tag == "Id" then sc:assign(sc:resolve(t))
  else walk_expr(sc, t) end
end

local stmt = {}
stmt.Local = function(sc, s)
  walk_exprs(sc, s.exprs)
  for _, id in ipairs(s.names) do sc:declare(id, "local") end
end
stmt.Set = function(sc, s)
  walk_exprs(sc, s.exprs)
  for _, t in ipairs(s.targets) do walk_target(sc, t) end
end
stmt.CallStat = function(sc, s) walk_expr(sc, s.call) end
stmt.Do = function(sc, s) walk_block(sc, s.body) end
stmt.While = function(sc, s)
  local e = enter(sc, s)
  walk_expr(sc, s.cond)
  walk_block(sc, s.body)
  leave(sc, e)
end
stmt.Repeat = function(sc, s)
  local e = enter(sc, s)
  sc:push()
  for _, x in ipairs(s.body.body) do walk_stmt(sc, x) end
  walk_expr(sc, s.cond)      -- the until expression sees the body's locals
  sc:pop()
  leave(sc, e)
end
stmt.If = function(sc, s)
  local e = enter(sc, s)
  for _, c in ipairs(s.clauses) do
    walk_expr(sc, c.cond)
    walk_block(sc, c.body)
  end
  if s.orelse then walk_block(sc, s.orelse) end
  leave(sc, e)
end
stmt.Fornum = function(sc, s)
  walk_expr(sc, s.start)
  walk_expr(sc, s.stop)
  if s.step then walk_expr(sc, s.step) end
  local e = enter(sc, s)
  if s.extra then walk_expr(sc, s.extra) end
  sc:push()
  sc:declare(s.var, "local")
  walk_block(sc, s.body)
  sc:pop()
  leave(sc, e)
end
stmt.Forin = function(sc, s)
  walk_exprs(sc, s.exprs)
  local e = enter(sc, s)
  if s.extra then walk_expr(sc, s.extra) end
  sc:push()
  for _, id in ipairs(s.names) do sc:declare(id, "local") end
  walk_block(sc, s.body)
  sc:pop()
  leave(sc, e)
end
stmt.FunctionStat = function(sc, s)
  walk_target(sc, s.target)
  walk_expr(sc, s.func)
end
stmt.LocalFunction = function(sc, s)
  sc:declare(s.name, "local")
  walk_expr(sc, s.func)
end
stmt.Return = function(sc, s) walk_exprs(sc, s.exprs) end
stmt.Break = function() end
stmt.Goto = function() end
stmt.Label = function() end

function walk_stmt(sc, s)
  local f = stmt[s.tag]
  if not f then error("analysis: unknown statement " .. tostring(s.tag)) end
  f(sc, s)
end

local function walk_function(sc, f)
  sc.depth = sc.depth + 1
  sc:push()
  for _, p in ipairs(f.params) do sc:declare(p, "param") end
  walk_block(sc, f.body)
  sc:pop()
  sc.depth = sc.depth - 1
end

function walk_expr(sc, e)
  local tag = e.tag
  if tag == "Id" then sc:resolve(e)
  elseif tag == "Function" then walk_function(sc, e)
  else ast.each_child(e, function(c) walk_expr(sc, c) end) end
end

-- ---- liveness --------------------------------------------------------------------------

local function copy(s)
  local c = {}
  for k in pairs(s) do c[k] = true end
  return c
end
local function union(a, b)
  local c = copy(a)
  for k in pairs(b) do c[k] = true end
  return c
end
local function size(s)
  local n = 0
  for _ in pairs(s) do n = n + 1 end
  return n
end

-- Adds the bindings that expression e reads (closures included) to set.
local function uses(e, set)
  if e.tag == "Id" then
    if e.binding and not e.decl then set[e.binding] = true end
    return set
  end
  ast.each_child(e, function(c) uses(c, set) end)
  return set
end

local function uses_list(list, set)
  for _, e in ipairs(list) do uses(e, set) end
  return set
end

local live_block

-- Iterates f(X) = X ∪ step(X) to a fixpoint.
local function fixpoint(x, step)
  while true do
    local nx = union(x, step(x))
    if size(nx) == size(x) then return nx end
    x = nx
  end
end

local live = {}
live.Local = function(s, out)
  local r = copy(out)
  for _, id in ipairs(s.names) do r[id.binding] = nil end
  return uses_list(s.exprs, r)
end
live.Set = function(s, out)
  local r = copy(out)
  for _, t in ipairs(s.targets) do
    if t.tag == "Id" then
      if t.binding then r[t.binding] = nil end
    end
  end
  for _, t in ipairs(s.targets) do
    if t.tag ~= "Id" then uses(t, r) end
  end
  return uses_list(s.exprs, r)
end
live.CallStat = function(s, out) return uses(s.call, copy(out)) end
live.Do = function(s, out) return live_block(s.body, out) end
live.If = function(s, out)
  s.live_out = out
  local r = s.orelse and live_block(s.orelse, out) or copy(out)
  for i = #s.clauses, 1, -1 do
    local c = s.clauses[i]
    r = union(live_block(c.body, out), uses(c.cond, r))
  end
  return r
end
live.While = function(s, out)
  s.live_out = out
  local head = fixpoint(uses(s.cond, copy(out)), function(x) return live_block(s.body, x) end)
  s.live_head = head
  return head
end
live.Repeat = function(s, out)
  s.live_out = out
  local function body_in(x)
    -- the until expression is evaluated at the end of the body, in its scope
    local after = uses(s.cond, union(out, x))
    return live_block(s.body, after)
  end
  local head = fixpoint(body_in(copy(out)), body_in)
  s.live_head = head
  return head
end
local function live_for(s, out, vars)
  s.live_out = out
  local function step(x)
    local r = live_block(s.body, x)
    for _, v in ipairs(vars) do r[v.binding] = nil end
    if s.extra then uses(s.extra, r) end
    return r
  end
  local head = fixpoint(union(out, step(out)), step)
  s.live_head = head
  return head
end
live.Fornum = function(s, out)
  local r = copy(live_for(s, out, { s.var }))
  uses(s.start, r)
  uses(s.stop, r)
  if s.step then uses(s.step, r) end
  return r
end
live.Forin = function(s, out)
  local r = copy(live_for(s, out, s.names))
  return uses_list(s.exprs, r)
end
live.FunctionStat = function(s, out)
  local r = copy(out)
  if s.target.tag == "Id" and s.target.binding then r[s.target.binding] = nil
  elseif s.target.tag ~= "Id" then uses(s.target, r) end
  return uses(s.func, r)
end
live.LocalFunction = function(s, out)
  local r = copy(out)
  r[s.name.binding] = nil
  return uses(s.func, r)
end
live.Return = function(s) return uses_list(s.exprs, {}) end
live.Break = function(_, out) return out end
live.Goto = function(_, out) return out end
live.Label = function(_, out) return out end

function live_block(block, out)
  local r = out
  for i = #block.body, 1, -1 do
    local s = block.body[i]
    r = live[s.tag](s, r)
  end
  return r
end

-- ---- state -------------------------------------------------------------------------------

local function always_live(b) return b.kind == "upvalue" or b.captured end

local function by_serial(a, b) return a.serial < b.serial end

-- The statement's state (live bindings it assigns) and scratch (the other bindings it assigns).
local function state_of(s)
  local list, scratch = {}, {}
  for b in pairs(s.assigned) do
    if not (b.decl and b.decl.attrib) then   -- <const>/<close> are never assigned
      local live = always_live(b) or (s.live_out and s.live_out[b]) or (s.live_head and s.live_head[b])
      if live then list[#list + 1] = b else scratch[#scratch + 1] = b end
    end
  end
  table.sort(list, by_serial)
  table.sort(scratch, by_serial)
  local names, scratch_names = {}, {}
  for i, b in ipairs(list) do names[i] = b.name end
  for i, b in ipairs(scratch) do scratch_names[i] = b.name end
  return names, list, scratch_names
end

-- M.run(fn, ctx): annotates the Function node fn (ctx.upvalues: the set of
-- names that are upvalues of the original closure). Sets on every control
-- statement: assigned, state (names, in declaration order), state_bindings.
function M.run(fn, ctx)
  local sc = setmetatable({ stack = {}, serial = 0, depth = -1, upvalues = ctx.upvalues or {},
    outer = {}, active = {}, controls = {} }, Scopes)
  -- the converted function's parameters and body are depth 0
  sc.depth = 0
  sc:push()
  for _, p in ipairs(fn.params) do sc:declare(p, "param") end
  walk_block(sc, fn.body)
  sc:pop()
  live_block(fn.body, {})
  for _, s in ipairs(sc.controls) do
    s.state, s.state_bindings, s.scratch = state_of(s)
  end
  ctx.outer_bindings = sc.outer
  return sc.controls
end

return M
