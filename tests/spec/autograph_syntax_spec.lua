-- autograph_syntax_spec.lua — AutoGraph's lexer, parser and code generator:
-- tokens (numerals, every string escape, long brackets, comments), the whole
-- Lua 5.4 grammar (goto/labels, <const>/<close>, //, bitwise operators,
-- operator priorities), syntax errors in Lua's own format, line-preserving
-- printing, and the round trip parse -> print -> parse giving the same AST
-- (positions aside) for every .lua file of this repository and of
-- /usr/share/lua.

local lexer = require "autograph.lexer"
local parser = require "autograph.parser"
local codegen = require "autograph.codegen"
local ast = require "autograph.ast"

local ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/tests/spec/") or ".")

local POS = { line = true, col = true, endline = true, elseline = true, opline = true, paren_line = true }

-- Compares two ASTs, ignoring positions; returns nil or the path of the first difference.
local function diff(a, b, path)
  if type(a) ~= type(b) then return path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) ~= "table" then
    if a ~= b or (math.type and math.type(a) ~= math.type(b)) then
      return path .. ": " .. tostring(a) .. " vs " .. tostring(b)
    end
    return nil
  end
  for k, v in pairs(a) do
    if not POS[k] then
      local d = diff(v, b[k], path .. "." .. tostring(k))
      if d then return d end
    end
  end
  for k in pairs(b) do
    if not POS[k] and a[k] == nil then return path .. "." .. tostring(k) .. " is extra" end
  end
  return nil
end

local function tokens(src)
  local t = lexer.tokenize(src, "=t")
  local out = {}
  for i = 1, t.n - 1 do out[i] = { t.types[i], t.values[i], t.lines[i] } end
  return out
end

local function expr(src) return parser.parse("return " .. src, "=e").body[1].exprs[1] end

local function syntax_error(src)
  local ok, err = pcall(parser.parse, src, "=chunk")
  assert(not ok, "expected a syntax error")
  assert(type(err) == "table" and err.autograph_syntax, "the error is structured")
  return err.msg
end

describe("autograph lexer", function()
  it("reads names, keywords and operators by longest match", function()
    local t = tokens("local x<const> = a//b ~= c >> 1 << 2 .. ... :: goto")
    local types = {}
    for i, tk in ipairs(t) do types[i] = tk[1] end
    assert.same({ "local", "<name>", "<", "<name>", ">", "=", "<name>", "//", "<name>", "~=", "<name>", ">>",
      "<number>", "<<", "<number>", "..", "...", "::", "goto" }, types)
  end)

  it("reads every kind of numeral with its value", function()
    local t = tokens("3 3.0 3.1416 314.16e-2 0.31416E1 34e1 0x0.1E 0xA23p-4 0X1.921FB54442D18P+1 0xff .5 5. 1e10")
    local want = { 3, 3.0, 3.1416, 314.16e-2, 0.31416E1, 34e1, 0x0.1E, 0xA23p-4, 0X1.921FB54442D18P+1, 255, .5, 5., 1e10 }
    for i, w in ipairs(want) do
      assert.equal("<number>", t[i][1])
      assert.equal(w, t[i][2])
      assert.equal(math.type(w), math.type(t[i][2]))
    end
    -- hex integers wrap around in Lua 5.4; LuaJIT (one number type) reads 2^63, as its own parser does
    assert.equal(jit and 2 ^ 63 or math.mininteger, tokens("0x8000000000000000")[1][2])
    assert.matches("malformed number near '3x'", syntax_error("return 3x"))
  end)

  it("decodes every string escape", function()
    local t = tokens([['\a\b\f\n\r\t\v\\\"\'' "\x41\65\066\u{48}\u{20AC}\u{7FFFFFFF}" "a\z
        b" "line\
two"]])
    assert.equal("\a\b\f\n\r\t\v\\\"'", t[1][2])
    assert.equal("AAB" .. "H" .. "\xE2\x82\xAC" .. "\xFD\xBF\xBF\xBF\xBF\xBF", t[2][2])   -- UTF-8 of U+20AC, U+7FFFFFFF (spelt in bytes: LuaJIT's \u{} stops at 10FFFF)
    assert.equal("ab", t[3][2])
    assert.equal("line\ntwo", t[4][2])
    assert.equal(2, t[4][3])
    assert.matches("invalid escape sequence near '\\q'", syntax_error([[return "\q"]]))
    assert.matches("decimal escape too large", syntax_error([[return "\256"]]))
    assert.matches("hexadecimal digit expected", syntax_error([[return "\xZZ"]]))
    assert.matches("unfinished string", syntax_error("return 'abc\nd'"))
  end)

  it("reads long strings and comments of any level and counts their lines", function()
    local t = tokens("a = [[\nfirst\nsecond]] --[==[ a\n]] still\n]==] b = [=[x]]y]=] -- c\n d")
    assert.equal("first\nsecond", t[3][2])
    assert.equal("b", t[4][2]); assert.equal(5, t[4][3])
    assert.equal("x]]y", t[6][2])
    assert.equal("d", t[7][2]); assert.equal(6, t[7][3])
    assert.matches("unfinished long string", syntax_error("x = [==[ abc ]=]"))
  end)

  it("counts \\r\\n, \\n\\r, \\r and \\n as one newline each", function()
    local t = tokens("a\r\nb\n\rc\rd\ne")
    for i, name in ipairs({ "a", "b", "c", "d", "e" }) do
      assert.equal(name, t[i][2]); assert.equal(i, t[i][3])
    end
  end)

  it("skips a first line starting with # only when asked", function()
    assert.equal(1, #parser.parse("#!/usr/bin/lua\nx = 1", "@f", { shebang = true }).body)
    assert.matches("unexpected symbol", syntax_error("#!/usr/bin/lua\nx = 1"))
  end)
end)

describe("autograph parser", function()
  it("builds nodes with tag, line and column", function()
    local b = parser.parse("local a = 1\nif a then\n  a = 2\nend", "=x")
    assert.equal("Local", b.body[1].tag)
    assert.equal(1, b.body[1].line)
    local s = b.body[2]
    assert.equal("If", s.tag); assert.equal(2, s.line); assert.equal(4, s.endline)
    assert.equal("Set", s.clauses[1].body.body[1].tag)
    assert.equal(3, s.clauses[1].body.body[1].line); assert.equal(3, s.clauses[1].body.body[1].col)
  end)

  it("follows Lua's operator priorities and associativity", function()
    local function shape(e)
      if e.tag == "Binop" then return "(" .. shape(e.left) .. " " .. e.op .. " " .. shape(e.right) .. ")" end
      if e.tag == "Unop" then return "(" .. e.op .. " " .. shape(e.operand) .. ")" end
      if e.tag == "Paren" then return shape(e.expr) end
      return e.name or tostring(e.value)
    end
    assert.equal("(a + (b * c))", shape(expr("a + b * c")))
    assert.equal("(a .. (b .. c))", shape(expr("a .. b .. c")))
    assert.equal("(a ^ (b ^ c))", shape(expr("a ^ b ^ c")))
    assert.equal("(- (a ^ b))", shape(expr("-a ^ b")))
    assert.equal("((not a) == b)", shape(expr("not a == b")))
    assert.equal("((a or (b and c)) or d)", shape(expr("a or b and c or d")))
    assert.equal("((a | (b ~ (c & (d << e)))) < f)", shape(expr("a | b ~ c & d << e < f")))
    assert.equal("((a // b) % c)", shape(expr("a // b % c")))
    assert.equal("((~ a) + b)", shape(expr("~a + b")))
    assert.equal("((a - b) - c)", shape(expr("a - b - c")))
  end)

  it("parses goto, labels, attributes, methods and every statement", function()
    local src = [[
local x <const>, y <close> = 1, nil
::top:: goto top
for i = 1, 10, 2 do break end
for k, v in pairs(t) do end
repeat local z = 1 until z
while false do end
do end
function a.b.c:m(p, ...) return self, ... end
local function f() end
t[1], t.x = f(), {1, x = 2, [3] = 4; 5}
f "s" ; f {1} ; o:m "s"
if a then elseif b then else end
return]]
    local b = parser.parse(src, "=x")
    local tags = {}
    for i, s in ipairs(b.body) do tags[i] = s.tag end
    assert.same({ "Local", "Label", "Goto", "Fornum", "Forin", "Repeat", "While", "Do", "FunctionStat",
      "LocalFunction", "Set", "CallStat", "CallStat", "CallStat", "If", "Return" }, tags)
    assert.equal("const", b.body[1].names[1].attrib)
    assert.equal("close", b.body[1].names[2].attrib)
    local fs = b.body[9]
    assert.is_true(fs.is_method)
    assert.equal("self", fs.func.params[1].name)
    assert.is_true(fs.func.is_vararg)
  end)

  it("reports syntax errors as Lua does, with the line", function()
    assert.matches("^chunk:2: 'end' expected %(to close 'if' at line 1%) near '<eof>'$",
      syntax_error("if x then\n y = 1"))
    assert.matches("^chunk:1: unexpected symbol near '%)'$", syntax_error("x = )"))
    assert.matches("^chunk:1: syntax error near '='$", syntax_error("f() = 1"))
    assert.matches("unknown attribute 'bogus'", syntax_error("local x <bogus> = 1"))
    assert.matches("'=' or 'in' expected", syntax_error("for x do end"))
    assert.matches("<name> expected", syntax_error("local function () end"))
  end)
end)

describe("autograph code generator", function()
  it("puts every statement back on its source line", function()
    local src = "local a = 1\n\n\n-- comment\nif a then\n\n  a = [[x\ny]]\nend\nreturn a\n"
    local out = codegen.generate(parser.parse(src, "=x"))
    local lines = {}
    for l in (out .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
    assert.equal("local a = 1", lines[1])
    assert.equal("if a then", lines[5])
    assert.equal("  a = [[x", lines[7])
    assert.equal("end", lines[9])
    assert.equal("return a", lines[10])
  end)

  it("adds parentheses only where priorities need them", function()
    local e = ast.binop("*", ast.binop("+", ast.id("a"), ast.id("b")), ast.id("c"))
    assert.equal("(a + b) * c", codegen.generate(e))
    e = ast.binop("-", ast.id("a"), ast.binop("-", ast.id("b"), ast.id("c")))
    assert.equal("a - (b - c)", codegen.generate(e))
    e = ast.binop("..", ast.id("a"), ast.binop("..", ast.id("b"), ast.id("c")))
    assert.equal("a .. b .. c", codegen.generate(e))
    e = ast.unop("-", ast.unop("-", ast.id("a")))
    assert.equal("- -a", codegen.generate(e))
    e = ast.unop("not", ast.binop("==", ast.id("a"), ast.id("b")))
    assert.equal("not (a == b)", codegen.generate(e))
    e = ast.binop("^", ast.unop("-", ast.id("a")), ast.id("b"))
    assert.equal("(-a) ^ b", codegen.generate(e))
  end)

  it("quotes generated strings on one line and prints numbers that read back the same", function()
    local s = "a\nb\0c\"\\\1" .. "9\255"
    local q = codegen.quote(s)
    assert.is_nil(q:find("\n"))
    assert.equal(s, load("return " .. q)())
    for _, v in ipairs({ 1, -3, 0.1, 1 / 3, 1e300, 2 ^ 53, math.maxinteger, math.mininteger + 1, 1.5e-7 }) do
      local text = codegen.number(v)
      local back = load("return " .. text)()
      assert.equal(v, back)
      assert.equal(math.type(v), math.type(back))
    end
    assert.equal(math.huge, load("return " .. codegen.number(math.huge))())
  end)

  it("separates tokens that would merge and statements that start with '('", function()
    local b = parser.parse("local a = t[ [[x]] ] ; (f)() a = - -1 b = 1 .. 2", "=x")
    local out = codegen.generate(b)
    assert.is_truthy(out:find("[ [[x]]]", 1, true))
    assert.is_truthy(out:find("; (f)()", 1, true))
    assert.is_truthy(out:find("- -1", 1, true))
    assert.is_truthy(out:find("1 .. 2", 1, true))
    assert.is_nil(diff(b, parser.parse(out, "=y"), ""))
  end)
end)

describe("autograph round trip", function()
  local function lua_files()
    local list = {}
    local cmd = 'find "' .. ROOT .. '" /usr/share/lua -name "*.lua" -not -path "*/build*" -not -path "*/.git/*" 2>/dev/null'
    local p = io.popen(cmd)
    for path in p:lines() do list[#list + 1] = path end
    p:close()
    table.sort(list)
    return list
  end

  it("parse, print and parse again gives the same AST for every Lua file here and in /usr/share/lua", function()
    local files = lua_files()
    assert.is_true(#files > 100, "found only " .. #files .. " files")
    local failures, lines_off, seen = {}, {}, {}
    for _, path in ipairs(files) do
      local f = assert(io.open(path, "rb"))
      local src = f:read("a")
      f:close()
      if seen[src] then goto next_file end   -- /usr/share/lua/5.x hold many identical copies
      seen[src] = true
      local ok, tree = pcall(parser.parse, src, "@" .. path, { shebang = true })
      if not ok then
        failures[#failures + 1] = path .. ": " .. tostring(type(tree) == "table" and tree.msg or tree)
      else
        local out = codegen.generate(tree)
        local ok2, tree2 = pcall(parser.parse, out, "=printed")
        if not ok2 then
          failures[#failures + 1] = path .. ": the printed code does not parse: " .. tostring(tree2.msg or tree2)
        else
          local d = diff(tree, tree2, "")
          if d then failures[#failures + 1] = path .. ": " .. d end
          -- every statement stays on its line
          local l1, l2 = {}, {}
          ast.walk(tree, { default = function(n) if n.line and n.tag ~= "Block" then l1[#l1 + 1] = n.line end end })
          ast.walk(tree2, { default = function(n) if n.line and n.tag ~= "Block" then l2[#l2 + 1] = n.line end end })
          if table.concat(l1, ",") ~= table.concat(l2, ",") then lines_off[#lines_off + 1] = path end
        end
      end
      ::next_file::
    end
    assert.same({}, failures)
    assert.same({}, lines_off)
  end)
end)
