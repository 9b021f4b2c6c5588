-- autograph.ast: AST node constructors and a visitor keyed by tag.
--
-- A node is a table with `tag` and, when it comes from source, `line` and
-- `col` (its first token). Statements: Local{names={Id}, exprs} (Id.attrib
-- = "const"/"close"), Set{targets, exprs}, CallStat{call}, Do{body},
-- While{cond, body}, Repeat{body, cond}, If{clauses={{cond, body}},
-- orelse}, Fornum{var, start, stop, step, body}, Forin{names, exprs, body},
-- FunctionStat{target, is_method, func}, LocalFunction{name, func},
-- Return{exprs}, Break, Goto{label}, Label{name}. Expressions: Nil, True,
-- False, Dots, Number{value, raw}, String{value, raw}, Function{params,
-- is_vararg, body}, Table{items={{kind="list"|"named"|"keyed", key, value}}},
-- Binop{op, left, right}, Unop{op, operand}, Paren{expr}, Id{name},
-- Index{obj, key, dot}, Call{func, args}, Invoke{obj, method, args}.
-- A Block is {tag="Block", body={statements}}. Nodes that close on a later
-- line keep it as `endline` (the `end`, `until` or `else` token), so code
-- generation can put each piece back on its line. Nodes built by the passes
-- carry `generated = true`.
local M = {}

local function node(tag, line, fields)
  fields = fields or {}
  fields.tag = tag
  fields.line = line
  return fields
end
M.node = node

function M.id(name, line) return node("Id", line, { name = name }) end
function M.str(s, line) return node("String", line, { value = s }) end
function M.num(v, line) return node("Number", line, { value = v }) end
function M.nil_(line) return node("Nil", line) end
function M.true_(line) return node("True", line) end
function M.false_(line) return node("False", line) end
function M.block(stmts, line, endline) return node("Block", line, { body = stmts or {}, endline = endline }) end
function M.index(obj, key, line)
  return node("Index", line, { obj = obj, key = M.str(key), dot = true })
end
function M.call(func, args, line) return node("Call", line, { func = func, args = args or {} }) end
function M.callstat(func, args, line)
  return node("CallStat", line, { call = M.call(func, args, line) })
end
function M.unop(op, e, line) return node("Unop", line, { op = op, operand = e }) end
function M.binop(op, a, b, line) return node("Binop", line, { op = op, left = a, right = b }) end
function M.local_(names, exprs, line)
  local ids = {}
  for i, n in ipairs(names) do ids[i] = type(n) == "string" and M.id(n, line) or n end
  return node("Local", line, { names = ids, exprs = exprs or {} })
end
function M.set(targets, exprs, line) return node("Set", line, { targets = targets, exprs = exprs }) end
function M.if_(cond, body, orelse, line)
  return node("If", line, { clauses = { { cond = cond, body = body, line = line } }, orelse = orelse })
end
function M.return_(exprs, line) return node("Return", line, { exprs = exprs or {} }) end
-- A function built by a pass: function(params...) body end, from line to endline.
function M.func(params, body, line, endline, is_vararg)
  local ps = {}
  for i, p in ipairs(params or {}) do ps[i] = type(p) == "string" and M.id(p, line) or p end
  return node("Function", line, { params = ps, is_vararg = is_vararg or false, body = body,
    endline = endline, generated = true })
end
function M.table_(list, line)
  local items = {}
  for i, v in ipairs(list) do items[i] = { kind = "list", value = v } end
  return node("Table", line, { items = items, generated = true })
end

-- Expression children of each tag, in evaluation order (for walking).
local children = {
  Local = function(n, f) for _, e in ipairs(n.exprs) do f(e) end end,
  Set = function(n, f)
    for _, t in ipairs(n.targets) do f(t) end
    for _, e in ipairs(n.exprs) do f(e) end
  end,
  CallStat = function(n, f) f(n.call) end,
  Do = function(n, f) f(n.body) end,
  While = function(n, f) f(n.cond); f(n.body) end,
  Repeat = function(n, f) f(n.body); f(n.cond) end,
  If = function(n, f)
    for _, c in ipairs(n.clauses) do f(c.cond); f(c.body) end
    if n.orelse then f(n.orelse) end
  end,
  Fornum = function(n, f)
    f(n.var); f(n.start); f(n.stop)
    if n.step then f(n.step) end
    f(n.body)
  end,
  Forin = function(n, f)
    for _, e in ipairs(n.exprs) do f(e) end
    for _, id in ipairs(n.names) do f(id) end
    f(n.body)
  end,
  FunctionStat = function(n, f) f(n.target); f(n.func) end,
  LocalFunction = function(n, f) f(n.name); f(n.func) end,
  Return = function(n, f) for _, e in ipairs(n.exprs) do f(e) end end,
  Block = function(n, f) for _, s in ipairs(n.body) do f(s) end end,
  Function = function(n, f)
    for _, p in ipairs(n.params) do f(p) end
    f(n.body)
  end,
  Table = function(n, f)
    for _, it in ipairs(n.items) do
      if it.kind == "keyed" then f(it.key) end
      f(it.value)
    end
  end,
  Binop = function(n, f) f(n.left); f(n.right) end,
  Unop = function(n, f) f(n.operand) end,
  Paren = function(n, f) f(n.expr) end,
  Index = function(n, f) f(n.obj); f(n.key) end,
  Call = function(n, f)
    f(n.func)
    for _, a in ipairs(n.args) do f(a) end
  end,
  Invoke = function(n, f)
    f(n.obj)
    for _, a in ipairs(n.args) do f(a) end
  end,
}
M.children = children

-- Calls fn(child) for each direct child node of n.
function M.each_child(n, fn)
  local c = children[n.tag]
  if c then c(n, fn) end
end

-- M.walk(n, visitor): visitor[tag](node) before the children (return false
-- to skip them), visitor["<tag>_after"] after; visitor.default for other tags.
function M.walk(n, visitor)
  local pre = visitor[n.tag] or visitor.default
  if pre and pre(n) == false then return end
  M.each_child(n, function(c) M.walk(c, visitor) end)
  local post = visitor[n.tag .. "_after"]
  if post then post(n) end
end

-- Rebuilds children bottom-up: fn(node) returns a replacement (or nil to keep).
-- Statement lists may be replaced by lists when fn returns {many = {...}}.
local function map_list(list, fn)
  local out   -- built only once something changes
  for i = 1, #list do
    local item = list[i]
    local r = M.map(item, fn)
    if out == nil and r ~= item then
      out = {}
      for j = 1, i - 1 do out[j] = list[j] end
    end
    if out then
      if type(r) == "table" and r.many then
        for _, x in ipairs(r.many) do out[#out + 1] = x end
      else
        out[#out + 1] = r
      end
    end
  end
  if out then
    for i = #list, 1, -1 do list[i] = nil end
    for i, x in ipairs(out) do list[i] = x end
  end
end

local mappers = {
  Local = function(n, fn) map_list(n.exprs, fn) end,
  Set = function(n, fn) map_list(n.targets, fn); map_list(n.exprs, fn) end,
  CallStat = function(n, fn) n.call = M.map(n.call, fn) end,
  Do = function(n, fn) n.body = M.map(n.body, fn) end,
  While = function(n, fn) n.cond = M.map(n.cond, fn); n.body = M.map(n.body, fn) end,
  Repeat = function(n, fn) n.body = M.map(n.body, fn); n.cond = M.map(n.cond, fn) end,
  If = function(n, fn)
    for _, c in ipairs(n.clauses) do c.cond = M.map(c.cond, fn); c.body = M.map(c.body, fn) end
    if n.orelse then n.orelse = M.map(n.orelse, fn) end
  end,
  Fornum = function(n, fn)
    n.start = M.map(n.start, fn); n.stop = M.map(n.stop, fn)
    if n.step then n.step = M.map(n.step, fn) end
    n.body = M.map(n.body, fn)
  end,
  Forin = function(n, fn) map_list(n.exprs, fn); n.body = M.map(n.body, fn) end,
  FunctionStat = function(n, fn) n.target = M.map(n.target, fn); n.func = M.map(n.func, fn) end,
  LocalFunction = function(n, fn) n.func = M.map(n.func, fn) end,
  Return = function(n, fn) map_list(n.exprs, fn) end,
  Block = function(n, fn) map_list(n.body, fn) end,
  Function = function(n, fn) n.body = M.map(n.body, fn) end,
  Table = function(n, fn)
    for _, it in ipairs(n.items) do
      if it.kind == "keyed" then it.key = M.map(it.key, fn) end
      it.value = M.map(it.value, fn)
    end
  end,
  Binop = function(n, fn) n.left = M.map(n.left, fn); n.right = M.map(n.right, fn) end,
  Unop = function(n, fn) n.operand = M.map(n.operand, fn) end,
  Paren = function(n, fn) n.expr = M.map(n.expr, fn) end,
  Index = function(n, fn) n.obj = M.map(n.obj, fn); n.key = M.map(n.key, fn) end,
  Call = function(n, fn) n.func = M.map(n.func, fn); map_list(n.args, fn) end,
  Invoke = function(n, fn) n.obj = M.map(n.obj, fn); map_list(n.args, fn) end,
}

-- M.map(n, fn): post-order rewrite. fn(node, enter) is first called with
-- enter=true (return "skip" to leave the subtree untouched), then after the
-- children with enter=false, returning a replacement node or nil.
function M.map(n, fn)
  if fn(n, true) == "skip" then return n end
  local m = mappers[n.tag]
  if m then m(n, fn) end
  local r = fn(n, false)
  if r == nil then return n end
  return r
end

-- Deep copy of a subtree.
function M.copy(n)
  if type(n) ~= "table" then return n end
  local c = {}
  for k, v in pairs(n) do
    if k == "binding" then c[k] = v else c[k] = M.copy(v) end
  end
  return c
end

return M
