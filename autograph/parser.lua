-- autograph.parser: the token list of autograph.lexer -> an AST (autograph.ast).
--
-- Recursive descent after lparser.c, for all of Lua 5.4's syntax (goto and
-- labels, <const>/<close> attributes, integer division, bitwise operators).
-- Statements dispatch through a table keyed by their first token; binary
-- expressions climb an operator priority table, as lparser's subexpr does.
-- Each parse function carries its grammar rule as a comment. Nodes record
-- the line and column of their first token, and the lines of the tokens
-- that close them (`endline`), which the code generator uses to keep every
-- piece on its source line. Syntax errors are raised as
-- {autograph_syntax=true, msg="chunk:line: ... near 'tok'", line=}.
-- Portable Lua (5.4 and LuaJIT).
local lexer = require("autograph.lexer")

local M = {}

local P = {}
P.__index = P

local function new_parser(toks, chunk)
  return setmetatable({ t = toks.types, v = toks.values, l = toks.lines, c = toks.cols,
    r = toks.raws, i = 1, chunk = chunk }, P)
end

function P:type() return self.t[self.i] end
function P:peek_type(k) return self.t[self.i + (k or 1)] end
function P:line() return self.l[self.i] end
function P:col() return self.c[self.i] end
function P:advance() self.i = self.i + 1 end

function P:error(msg, at)
  at = at or self.i
  local near = self.r[at]
  if self.t[at] == "<eof>" then near = "<eof>" end
  lexer.error({ chunk = self.chunk }, msg, self.l[at], near)
end

function P:accept(tt)
  if self.t[self.i] == tt then self.i = self.i + 1; return true end
  return false
end

function P:expect(tt, what)
  if self.t[self.i] ~= tt then self:error("'" .. tt .. "' expected" .. (what or "")) end
  self.i = self.i + 1
end

-- Expects the closing token of a construct opened at `line` (lparser's check_match).
function P:expect_match(tt, opener, line)
  if self.t[self.i] ~= tt then
    if line == self.l[self.i] then self:error("'" .. tt .. "' expected") end
    self:error(string.format("'%s' expected (to close '%s' at line %d)", tt, opener, line))
  end
  self.i = self.i + 1
end

function P:name()
  if self.t[self.i] ~= "<name>" then self:error("<name> expected") end
  local n = { tag = "Id", name = self.v[self.i], line = self.l[self.i], col = self.c[self.i] }
  self.i = self.i + 1
  return n
end

local function node(self, tag, line, col)
  return { tag = tag, line = line or self.l[self.i], col = col or self.c[self.i] }
end

-- ---- blocks -------------------------------------------------------------------------

local block_end = { ["return"] = true, ["<eof>"] = true, ["end"] = true, ["else"] = true,
  ["elseif"] = true, ["until"] = true }

local statements = {}

-- block ::= {stat} [retstat]
function P:block()
  local b = node(self, "Block")
  local body = {}
  while not block_end[self:type()] do
    if self:type() == ";" then
      self:advance()
    else
      body[#body + 1] = self:statement()
    end
  end
  if self:type() == "return" then body[#body + 1] = self:retstat() end
  b.body = body
  return b
end

-- retstat ::= return [explist] [';']
function P:retstat()
  local n = node(self, "Return")
  self:advance()
  if block_end[self:type()] or self:type() == ";" then n.exprs = {} else n.exprs = self:explist() end
  self:accept(";")
  return n
end

function P:statement()
  local f = statements[self:type()]
  if f then return f(self) end
  return self:exprstat()
end

-- stat ::= if exp then block {elseif exp then block} [else block] end
statements["if"] = function(self)
  local n = node(self, "If")
  local clauses = {}
  repeat
    local line = self:line()
    self:advance()  -- if / elseif
    local cond = self:expr()
    self:expect("then")
    clauses[#clauses + 1] = { cond = cond, body = self:block(), line = line }
  until self:type() ~= "elseif"
  n.clauses = clauses
  if self:type() == "else" then
    n.elseline = self:line()
    self:advance()
    n.orelse = self:block()
  end
  n.endline = self:line()
  self:expect_match("end", "if", n.line)
  return n
end

-- stat ::= while exp do block end
statements["while"] = function(self)
  local n = node(self, "While")
  self:advance()
  n.cond = self:expr()
  self:expect("do")
  n.body = self:block()
  n.endline = self:line()
  self:expect_match("end", "while", n.line)
  return n
end

-- stat ::= do block end
statements["do"] = function(self)
  local n = node(self, "Do")
  self:advance()
  n.body = self:block()
  n.endline = self:line()
  self:expect_match("end", "do", n.line)
  return n
end

-- stat ::= repeat block until exp
statements["repeat"] = function(self)
  local n = node(self, "Repeat")
  self:advance()
  n.body = self:block()
  n.endline = self:line()
  self:expect_match("until", "repeat", n.line)
  n.cond = self:expr()
  return n
end

-- stat ::= for Name '=' exp ',' exp [',' exp] do block end
--        | for namelist in explist do block end
statements["for"] = function(self)
  local line, col = self:line(), self:col()
  self:advance()
  local first = self:name()
  local n
  if self:type() == "=" then
    n = node(self, "Fornum", line, col)
    self:advance()
    n.var = first
    n.start = self:expr()
    self:expect(",")
    n.stop = self:expr()
    if self:accept(",") then n.step = self:expr() end
  elseif self:type() == "," or self:type() == "in" then
    n = node(self, "Forin", line, col)
    local names = { first }
    while self:accept(",") do names[#names + 1] = self:name() end
    self:expect("in")
    n.names = names
    n.exprs = self:explist()
  else
    self:error("'=' or 'in' expected")
  end
  self:expect("do")
  n.body = self:block()
  n.endline = self:line()
  self:expect_match("end", "for", line)
  return n
end

-- stat ::= function funcname funcbody;  funcname ::= Name {'.' Name} [':' Name]
statements["function"] = function(self)
  local n = node(self, "FunctionStat")
  local fline = self:line()
  self:advance()
  local target = self:name()
  while self:type() == "." do
    local l, c = self:line(), self:col()
    self:advance()
    local key = self:name()
    target = { tag = "Index", obj = target, key = { tag = "String", value = key.name, line = key.line,
      col = key.col }, dot = true, line = l, col = c }
  end
  if self:type() == ":" then
    local l, c = self:line(), self:col()
    self:advance()
    local key = self:name()
    target = { tag = "Index", obj = target, key = { tag = "String", value = key.name, line = key.line,
      col = key.col }, dot = true, line = l, col = c }
    n.is_method = true
  end
  n.target = target
  n.func = self:funcbody(fline, n.is_method)
  return n
end

-- stat ::= local function Name funcbody | local attnamelist ['=' explist]
-- attnamelist ::= Name attrib {',' Name attrib};  attrib ::= ['<' Name '>']
statements["local"] = function(self)
  local line, col = self:line(), self:col()
  self:advance()
  if self:type() == "function" then
    local n = node(self, "LocalFunction", line, col)
    local fline = self:line()
    self:advance()
    n.name = self:name()
    n.func = self:funcbody(fline, false)
    return n
  end
  local n = node(self, "Local", line, col)
  local names = {}
  repeat
    local id = self:name()
    if self:type() == "<" then
      self:advance()
      local a = self:name().name
      if a ~= "const" and a ~= "close" then self:error("unknown attribute '" .. a .. "'", self.i - 1) end
      id.attrib = a
      self:expect(">")
    end
    names[#names + 1] = id
  until not self:accept(",")
  n.names = names
  if self:accept("=") then n.exprs = self:explist() else n.exprs = {} end
  return n
end

-- stat ::= '::' Name '::'
statements["::"] = function(self)
  local n = node(self, "Label")
  self:advance()
  n.name = self:name().name
  self:expect("::")
  return n
end

-- stat ::= break
statements["break"] = function(self)
  local n = node(self, "Break")
  self:advance()
  return n
end

-- stat ::= goto Name
statements["goto"] = function(self)
  local n = node(self, "Goto")
  self:advance()
  n.label = self:name().name
  return n
end

-- stat ::= varlist '=' explist | functioncall
function P:exprstat()
  local line, col = self:line(), self:col()
  local e = self:suffixedexp()
  if self:type() == "=" or self:type() == "," then
    local targets = { e }
    while self:accept(",") do targets[#targets + 1] = self:suffixedexp() end
    for _, t in ipairs(targets) do
      if t.tag ~= "Id" and t.tag ~= "Index" then self:error("syntax error") end
    end
    self:expect("=")
    local n = node(self, "Set", line, col)
    n.targets = targets
    n.exprs = self:explist()
    return n
  end
  if e.tag ~= "Call" and e.tag ~= "Invoke" then self:error("syntax error") end
  local n = node(self, "CallStat", line, col)
  n.call = e
  return n
end

-- ---- functions ----------------------------------------------------------------------

-- funcbody ::= '(' [parlist] ')' block end;  parlist ::= namelist [',' '...'] | '...'
-- `line` is the line of the `function` keyword; a method gets `self` as its first parameter.
function P:funcbody(line, is_method)
  local n = node(self, "Function", line)
  n.paren_line = self:line()
  self:expect("(")
  local params = {}
  if is_method then
    params[1] = { tag = "Id", name = "self", line = self:line(), col = self:col(), implicit = true }
    n.is_method = true
  end
  n.is_vararg = false
  if self:type() ~= ")" then
    repeat
      if self:type() == "..." then
        self:advance()
        n.is_vararg = true
        break
      end
      params[#params + 1] = self:name()
    until not self:accept(",")
  end
  self:expect(")")
  n.params = params
  n.body = self:block()
  n.endline = self:line()
  self:expect_match("end", "function", line)
  return n
end

-- ---- expressions --------------------------------------------------------------------

-- operator priorities (left, right), as lparser.c's priority table
local binary_priority = {
  ["or"] = { 1, 1 }, ["and"] = { 2, 2 },
  ["<"] = { 3, 3 }, [">"] = { 3, 3 }, ["<="] = { 3, 3 }, [">="] = { 3, 3 }, ["~="] = { 3, 3 }, ["=="] = { 3, 3 },
  ["|"] = { 4, 4 }, ["~"] = { 5, 5 }, ["&"] = { 6, 6 }, ["<<"] = { 7, 7 }, [">>"] = { 7, 7 },
  [".."] = { 9, 8 }, ["+"] = { 10, 10 }, ["-"] = { 10, 10 },
  ["*"] = { 11, 11 }, ["/"] = { 11, 11 }, ["//"] = { 11, 11 }, ["%"] = { 11, 11 },
  ["^"] = { 14, 13 },
}
local unary_ops = { ["not"] = true, ["-"] = true, ["#"] = true, ["~"] = true }
local UNARY_PRIORITY = 12
M.binary_priority = binary_priority
M.UNARY_PRIORITY = UNARY_PRIORITY

-- explist ::= exp {',' exp}
function P:explist()
  local list = { self:expr() }
  while self:accept(",") do list[#list + 1] = self:expr() end
  return list
end

function P:expr() return self:subexpr(0) end

-- subexpr ::= (simpleexp | unop subexpr) {binop subexpr}, binop priority > limit
function P:subexpr(limit)
  local e
  local tt = self:type()
  if unary_ops[tt] then
    local n = node(self, "Unop")
    self:advance()
    n.op = tt
    n.operand = self:subexpr(UNARY_PRIORITY)
    e = n
  else
    e = self:simpleexp()
  end
  while true do
    local op = self:type()
    local prio = binary_priority[op]
    if not prio or prio[1] <= limit then break end
    local opline = self:line()
    self:advance()
    local right = self:subexpr(prio[2])
    e = { tag = "Binop", op = op, left = e, right = right, line = e.line, col = e.col, opline = opline }
  end
  return e
end

local simple = {}
simple["nil"] = function(self) local n = node(self, "Nil"); self:advance(); return n end
simple["true"] = function(self) local n = node(self, "True"); self:advance(); return n end
simple["false"] = function(self) local n = node(self, "False"); self:advance(); return n end
simple["..."] = function(self) local n = node(self, "Dots"); self:advance(); return n end
simple["<number>"] = function(self)
  local n = node(self, "Number")
  n.value, n.raw = self.v[self.i], self.r[self.i]
  self:advance()
  return n
end
simple["<string>"] = function(self)
  local n = node(self, "String")
  n.value, n.raw = self.v[self.i], self.r[self.i]
  self:advance()
  return n
end
simple["{"] = function(self) return self:table() end
simple["function"] = function(self)
  local line = self:line()
  self:advance()
  return self:funcbody(line, false)
end

-- simpleexp ::= nil | false | true | Numeral | LiteralString | '...' | functiondef
--             | tableconstructor | suffixedexp
function P:simpleexp()
  local f = simple[self:type()]
  if f then return f(self) end
  return self:suffixedexp()
end

-- primaryexp ::= Name | '(' exp ')'
function P:primaryexp()
  local tt = self:type()
  if tt == "<name>" then return self:name() end
  if tt == "(" then
    local n = node(self, "Paren")
    local line = self:line()
    self:advance()
    n.expr = self:expr()
    self:expect_match(")", "(", line)
    return n
  end
  self:error("unexpected symbol")
end

-- suffixedexp ::= primaryexp { '.' Name | '[' exp ']' | ':' Name args | args }
function P:suffixedexp()
  local e = self:primaryexp()
  while true do
    local tt = self:type()
    if tt == "." then
      local n = node(self, "Index", e.line, e.col)
      self:advance()
      local key = self:name()
      n.obj, n.key, n.dot = e, { tag = "String", value = key.name, line = key.line, col = key.col }, true
      e = n
    elseif tt == "[" then
      local n = node(self, "Index", e.line, e.col)
      local line = self:line()
      self:advance()
      n.obj, n.key = e, self:expr()
      self:expect_match("]", "[", line)
      e = n
    elseif tt == ":" then
      local n = node(self, "Invoke", e.line, e.col)
      self:advance()
      n.obj, n.method = e, self:name().name
      n.args = self:callargs()
      e = n
    elseif tt == "(" or tt == "<string>" or tt == "{" then
      local n = node(self, "Call", e.line, e.col)
      n.func = e
      n.args = self:callargs()
      e = n
    else
      return e
    end
  end
end

-- args ::= '(' [explist] ')' | tableconstructor | LiteralString
function P:callargs()
  local tt = self:type()
  if tt == "<string>" then return { simple["<string>"](self) } end
  if tt == "{" then return { self:table() } end
  if tt ~= "(" then self:error("function arguments expected") end
  local line = self:line()
  self:advance()
  if self:type() == ")" then self:advance(); return {} end
  local args = self:explist()
  self:expect_match(")", "(", line)
  return args
end

-- tableconstructor ::= '{' [field {fieldsep field} [fieldsep]] '}'
-- field ::= '[' exp ']' '=' exp | Name '=' exp | exp;  fieldsep ::= ',' | ';'
function P:table()
  local n = node(self, "Table")
  local line = self:line()
  self:expect("{")
  local items = {}
  while self:type() ~= "}" do
    local tt = self:type()
    if tt == "[" then
      local l = self:line()
      self:advance()
      local key = self:expr()
      self:expect_match("]", "[", l)
      self:expect("=")
      items[#items + 1] = { kind = "keyed", key = key, value = self:expr() }
    elseif tt == "<name>" and self:peek_type() == "=" then
      local key = self:name()
      self:advance()
      items[#items + 1] = { kind = "named", key = { tag = "String", value = key.name, line = key.line,
        col = key.col }, value = self:expr() }
    else
      items[#items + 1] = { kind = "list", value = self:expr() }
    end
    if not (self:accept(",") or self:accept(";")) then break end
  end
  n.endline = self:line()
  self:expect_match("}", "{", line)
  n.items = items
  return n
end

-- M.parse(src, chunkname, opts) -> the chunk's Block (a syntax error is
-- raised as {autograph_syntax=true, msg=, line=}). opts.shebang skips a
-- first line starting with '#'.
function M.parse(src, chunkname, opts)
  local toks = lexer.tokenize(src, chunkname, opts)
  local ps = new_parser(toks, chunkname or "?")
  local b = ps:block()
  if ps:type() ~= "<eof>" then ps:error("'<eof>' expected") end
  b.endline = ps:line()
  return b
end

-- Like M.parse, but returns nil, message instead of raising.
function M.try_parse(src, chunkname, opts)
  local ok, res = pcall(M.parse, src, chunkname, opts)
  if ok then return res end
  if type(res) == "table" and res.autograph_syntax then return nil, res.msg end
  error(res, 0)
end

return M
