-- autograph.codegen: AST -> readable Lua source that keeps line numbers.
--
-- Like Teal's preserve_newlines: before a node that has a source line, the
-- printer emits newlines until it reaches that line, so every statement of
-- the user's code lands on the line it came from and Lua's own error
-- messages and tracebacks point at the user's lines. Nodes built by the
-- passes carry the line of the construct they replace (or none: they stay
-- on the current line); closing keywords go to the `endline` of their node.
-- When a line has already been passed (generated code can be longer), the
-- text continues on the current line. Numbers and strings are printed from
-- their raw source text when they have one, so long strings keep their
-- lines too. Operators get parentheses only where the priorities need them
-- (parsed trees keep their own Paren nodes). Portable Lua.
local lexer = require("autograph.lexer")
local parser = require("autograph.parser")

local M = {}

local prio, UNARY = parser.binary_priority, parser.UNARY_PRIORITY
local count_newlines = lexer.count_newlines

local G = {}
G.__index = G

local function is_word(c) return c ~= "" and c:find("^[%w_]") ~= nil end

-- Whether two tokens printed side by side would merge into another token.
local function needs_space(last, first)
  if is_word(last) and is_word(first) then return true end
  if last == "-" and first == "-" then return true end
  if last == "[" and (first == "[" or first == "=") then return true end
  if last == "." and first == "." then return true end
  return false
end

function G:to_line(line)
  if line and line > self.line then
    local b = self.buf
    repeat
      b[#b + 1] = "\n"
      self.line = self.line + 1
    until self.line >= line
    self.bol = true
  end
end

local keywords = lexer.keywords
local indents = {}
for d = 0, 40 do indents[d] = string.rep("  ", d) end
local no_space_after = { [""] = true, [" "] = true, ["("] = true, ["["] = true, ["{"] = true }
local no_space_before = { [")"] = true, [","] = true, [";"] = true, ["("] = true, ["]"] = true,
  ["}"] = true, ["."] = true, [":"] = true, [" "] = true }

-- Emits token text s (possibly spanning lines), on `line` when given.
function G:tok(s, line)
  if line then self:to_line(line) end
  local b = self.buf
  local first = s:sub(1, 1)
  if self.bol then
    b[#b + 1] = indents[self.depth] or string.rep("  ", self.depth)
    self.bol = false
  elseif self.last ~= " " and needs_space(self.last, first)
      or (keywords[s] and not no_space_after[self.last])
      or (self.last ~= " " and keywords[self.last_tok] and not no_space_before[first]) then
    b[#b + 1] = " "
  end
  b[#b + 1] = s
  self.last_tok = s
  self.last = s:sub(-1)
  if #s > 1 and s:find("[\n\r]") then self.line = self.line + count_newlines(s) end
end

-- ---- literals ------------------------------------------------------------------

local escapes = { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
  ["\a"] = "\\a", ["\b"] = "\\b", ["\f"] = "\\f", ["\v"] = "\\v" }

-- A one-line double-quoted literal for s.
function M.quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\%03d", c:byte())
  end) .. '"'
end

function M.number(v)
  if v ~= v then return "(0/0)" end
  if v == math.huge then return "(1/0)" end
  if v == -math.huge then return "(-1/0)" end
  local mt = math.type and math.type(v)
  if mt == "integer" then return string.format("%d", v) end
  if not mt and v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
  local s = string.format("%.17g", v)
  if tonumber(string.format("%.14g", v)) == v then s = string.format("%.14g", v) end
  if not s:find("[%.eEn]") then s = s .. ".0" end
  return s
end

local function is_name(s)
  return type(s) == "string" and s:find("^[%a_][%w_]*$") ~= nil and not lexer.keywords[s]
end
M.is_name = is_name

-- ---- expressions ------------------------------------------------------------------

local E = {}

function G:expr(e)
  if e.line then self:to_line(e.line) end
  local f = E[e.tag]
  if not f then error("codegen: unknown expression tag " .. tostring(e.tag)) end
  f(self, e)
end

function G:exprlist(list)
  for i, e in ipairs(list) do
    if i > 1 then self:tok(", ") end
    self:expr(e)
  end
end

E.Nil = function(g) g:tok("nil") end
E.True = function(g) g:tok("true") end
E.False = function(g) g:tok("false") end
E.Dots = function(g) g:tok("...") end
E.Number = function(g, e) g:tok(e.raw or M.number(e.value)) end
E.String = function(g, e) g:tok(e.raw or M.quote(e.value)) end
E.Id = function(g, e) g:tok(e.name) end
E.Paren = function(g, e)
  g:tok("(")
  g:expr(e.expr)
  g:tok(")")
end

local prefix_tags = { Id = true, Index = true, Call = true, Invoke = true, Paren = true }

-- A prefix expression (what can be called or indexed); others get parentheses.
function G:prefix(e)
  if prefix_tags[e.tag] then return self:expr(e) end
  self:tok("(")
  self:expr(e)
  self:tok(")")
end

E.Index = function(g, e)
  g:prefix(e.obj)
  if e.dot and e.key.tag == "String" and is_name(e.key.value) then
    g:tok(".")
    if e.key.line then g:to_line(e.key.line) end
    g:tok(e.key.value)
  else
    g:tok("[")
    g:expr(e.key)
    g:tok("]")
  end
end

function G:args(args)
  self:tok("(")
  self:exprlist(args)
  self:tok(")")
end

E.Call = function(g, e)
  g:prefix(e.func)
  g:args(e.args)
end

E.Invoke = function(g, e)
  g:prefix(e.obj)
  g:tok(":")
  g:tok(e.method)
  g:args(e.args)
end

local function left_needs_paren(op, l)
  if l.tag == "Binop" then return prio[op][1] > prio[l.op][2] end
  if l.tag == "Unop" then return prio[op][1] > UNARY end
  return false
end

local function right_needs_paren(op, r)
  if r.tag == "Binop" then return not (prio[r.op][1] > prio[op][2]) end
  return false
end

function G:operand(e, paren)
  if paren then
    self:tok("(")
    self:expr(e)
    self:tok(")")
  else
    self:expr(e)
  end
end

E.Binop = function(g, e)
  g:operand(e.left, left_needs_paren(e.op, e.left))
  if e.opline then g:to_line(e.opline) end
  g:tok(" " .. e.op .. " ")
  g:operand(e.right, right_needs_paren(e.op, e.right))
end

E.Unop = function(g, e)
  g:tok(e.op == "not" and "not " or e.op)
  local o = e.operand
  g:operand(o, o.tag == "Binop" and prio[o.op][1] <= UNARY)
end

function G:params(f)
  self:tok("(")
  local first = true
  for _, p in ipairs(f.params) do
    if not p.implicit then
      if not first then self:tok(", ") end
      self:tok(p.name, p.line)
      first = false
    end
  end
  if f.is_vararg then
    if not first then self:tok(", ") end
    self:tok("...")
  end
  self:tok(")")
end

-- The parameters, body and `end` of a function (after its name).
function G:funcbody(f)
  if f.paren_line then self:to_line(f.paren_line) end
  self:params(f)
  self:block(f.body)
  self:tok("end", f.endline)
end

E.Function = function(g, e)
  g:tok("function")
  g:funcbody(e)
end

E.Table = function(g, e)
  g:tok("{")
  for i, it in ipairs(e.items) do
    if i > 1 then g:tok(", ") end
    if it.kind == "named" then
      if it.key.line then g:to_line(it.key.line) end
      g:tok(it.key.value)
      g:tok(" = ")
    elseif it.kind == "keyed" then
      g:tok("[")
      g:expr(it.key)
      g:tok("] = ")
    end
    g:expr(it.value)
  end
  g:tok("}", e.endline)
end

-- ---- statements ---------------------------------------------------------------------

local S = {}

-- Whether a statement's text starts with "(" (it then needs a ';' before it).
local function starts_with_paren(s)
  local e
  if s.tag == "CallStat" then e = s.call
  elseif s.tag == "Set" then e = s.targets[1]
  else return false end
  while true do
    if e.tag == "Paren" then return true end
    if e.tag == "Call" then e = e.func
    elseif e.tag == "Invoke" or e.tag == "Index" then e = e.obj
    else return false end
  end
end

function G:stat(s)
  if s.line then self:to_line(s.line) end
  if starts_with_paren(s) or (self.stmt_done and not self.bol) then self:tok(";") end
  if not self.bol and self.last ~= " " then
    self.buf[#self.buf + 1] = " "
    self.last = " "
  end
  self.stmt_done = false
  local f = S[s.tag]
  if not f then error("codegen: unknown statement tag " .. tostring(s.tag)) end
  f(self, s)
  self.stmt_done = true
end

function G:block(b)
  self.depth = self.depth + 1
  self.stmt_done = false
  for _, s in ipairs(b.body) do self:stat(s) end
  self.depth = self.depth - 1
  self.stmt_done = false
end

S.Local = function(g, s)
  g:tok("local ")
  for i, id in ipairs(s.names) do
    if i > 1 then g:tok(", ") end
    g:tok(id.name, id.line)
    if id.attrib then g:tok(" <" .. id.attrib .. ">") end
  end
  if #s.exprs > 0 then
    g:tok(" = ")
    g:exprlist(s.exprs)
  end
end

S.Set = function(g, s)
  g:exprlist(s.targets)
  g:tok(" = ")
  g:exprlist(s.exprs)
end

S.CallStat = function(g, s) g:expr(s.call) end

S.Do = function(g, s)
  g:tok("do")
  g:block(s.body)
  g:tok("end", s.endline)
end

S.While = function(g, s)
  g:tok("while ")
  g:expr(s.cond)
  g:tok(" do")
  g:block(s.body)
  g:tok("end", s.endline)
end

S.Repeat = function(g, s)
  g:tok("repeat")
  g:block(s.body)
  g:tok("until ", s.endline)
  g:expr(s.cond)
end

S.If = function(g, s)
  for i, c in ipairs(s.clauses) do
    g:tok(i == 1 and "if " or "elseif ", c.line)
    g:expr(c.cond)
    g:tok(" then")
    g:block(c.body)
  end
  if s.orelse then
    g:tok("else", s.elseline)
    g:block(s.orelse)
  end
  g:tok("end", s.endline)
end

S.Fornum = function(g, s)
  g:tok("for ")
  g:expr(s.var)
  g:tok(" = ")
  g:expr(s.start)
  g:tok(", ")
  g:expr(s.stop)
  if s.step then
    g:tok(", ")
    g:expr(s.step)
  end
  g:tok(" do")
  g:block(s.body)
  g:tok("end", s.endline)
end

S.Forin = function(g, s)
  g:tok("for ")
  g:exprlist(s.names)
  g:tok(" in ")
  g:exprlist(s.exprs)
  g:tok(" do")
  g:block(s.body)
  g:tok("end", s.endline)
end

-- The function name of `function a.b.c:m()`.
function G:funcname(t, is_method)
  if t.tag == "Id" then return self:tok(t.name) end
  self:funcname(t.obj, false)
  self:tok(is_method and ":" or ".")
  self:tok(t.key.value)
end

S.FunctionStat = function(g, s)
  g:tok("function ")
  g:funcname(s.target, s.is_method)
  g:funcbody(s.func)
end

S.LocalFunction = function(g, s)
  g:tok("local function ")
  g:tok(s.name.name)
  g:funcbody(s.func)
end

S.Return = function(g, s)
  g:tok("return")
  if #s.exprs > 0 then
    g:tok(" ")
    g:exprlist(s.exprs)
  end
end

S.Break = function(g) g:tok("break") end
S.Goto = function(g, s) g:tok("goto " .. s.label) end
S.Label = function(g, s) g:tok("::" .. s.name .. "::") end

-- M.generate(node, opts) -> source text. node is a Block (a chunk) or a
-- single statement or expression. opts.line: the line the output starts on
-- (default 1); opts.depth: the starting indentation.
function M.generate(n, opts)
  opts = opts or {}
  local g = setmetatable({ buf = {}, line = opts.line or 1, depth = opts.depth or 0, bol = true,
    last = "", stmt_done = false }, G)
  if n.tag == "Block" then
    g.depth = g.depth - 1
    g:block(n)
    g.depth = g.depth + 1
    if n.endline then g:to_line(n.endline) end
  elseif S[n.tag] then
    g:stat(n)
  else
    g:expr(n)
  end
  local out = table.concat(g.buf)
  return out
end

return M
