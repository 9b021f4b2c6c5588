-- autograph.lexer: Lua 5.4 source text -> a token list.
--
-- The whole chunk is scanned at once into parallel arrays (type, value, line,
-- column, raw text), which the parser walks by index: cheaper than a token
-- table per token. Token types are the keyword or operator text itself
-- ("while", "==", "...") or one of "<name>", "<number>", "<string>", "<eof>".
-- Every token keeps its exact source text (raw), so the code generator can
-- print numbers and strings (long brackets included) as the user wrote them,
-- which keeps generated lines equal to source lines. Scanning dispatches on
-- the first character through a table of scanner functions, after llex.c.
-- Portable Lua (5.4 and LuaJIT): no integer division, no bitwise operators.
local M = {}

local find, sub, byte, char = string.find, string.sub, string.byte, string.char
local concat = table.concat

M.keywords = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do M.keywords[w] = true end

-- A chunk name as Lua shows it (luaO_chunkid): "=name" and "@file" lose their
-- first character, a source string becomes [string "first line..."].
function M.chunkid(chunk)
  local c = chunk:sub(1, 1)
  if c == "=" or c == "@" then return chunk:sub(2) end
  local first = chunk:match("^[^\n\r]*")
  if #first < #chunk or #first > 40 then first = first:sub(1, 40) .. "..." end
  return '[string "' .. first .. '"]'
end

-- Raises a syntax error in Lua's own format: "chunk:line: msg near 'tok'".
local function lex_error(st, msg, line, near)
  local where = M.chunkid(st.chunk) .. ":" .. line .. ": " .. msg
  if near then where = where .. " near '" .. near .. "'" end
  error({ autograph_syntax = true, msg = where, line = line }, 0)
end
M.error = lex_error

local function push(st, ttype, value, line, col, raw)
  local n = st.n + 1
  st.n = n
  st.types[n], st.values[n], st.lines[n], st.cols[n], st.raws[n] = ttype, value, line, col, raw
end

-- Counts the newlines of s (\n, \r, \r\n and \n\r each count once, as in Lua).
local function count_newlines(s)
  local n, i = 0, 1
  while true do
    local a = find(s, "[\n\r]", i)
    if not a then return n end
    n = n + 1
    local c, d = byte(s, a), byte(s, a + 1)
    if d and d ~= c and (d == 10 or d == 13) then i = a + 2 else i = a + 1 end
  end
end
M.count_newlines = count_newlines

-- UTF-8 bytes of a code point up to 2^31 (Lua 5.4's \u{...} extension).
local function utf8_encode(cp)
  if cp < 0x80 then return char(cp) end
  local bytes, limit = {}, 0x3f
  while cp > limit do
    table.insert(bytes, 1, char(0x80 + cp % 64))
    cp = math.floor(cp / 64)
    limit = math.floor(limit / 2)
  end
  local first = 256 - 2 * (limit + 1) + cp
  table.insert(bytes, 1, char(first))
  return concat(bytes)
end

local simple_escapes = { a = "\a", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", v = "\v",
  ["\\"] = "\\", ['"'] = '"', ["'"] = "'" }

-- The value of a short string: its raw text without quotes, escapes decoded.
local function decode_short(st, s, line)
  if not find(s, "\\", 1, true) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local a = find(s, "\\", i, true)
    if not a then out[#out + 1] = sub(s, i); break end
    out[#out + 1] = sub(s, i, a - 1)
    local c = sub(s, a + 1, a + 1)
    if simple_escapes[c] then
      out[#out + 1] = simple_escapes[c]; i = a + 2
    elseif c == "\n" or c == "\r" then
      out[#out + 1] = "\n"
      local d = sub(s, a + 2, a + 2)
      i = a + 2
      if (d == "\n" or d == "\r") and d ~= c then i = a + 3 end
    elseif c == "x" then
      local h = s:match("^%x%x", a + 2)
      if not h then lex_error(st, "hexadecimal digit expected", line, sub(s, a, a + 3)) end
      out[#out + 1] = char(tonumber(h, 16)); i = a + 4
    elseif c == "z" then
      local _, e = find(s, "^%s*", a + 2)
      i = e + 1
    elseif c == "u" then
      local h = s:match("^{(%x+)}", a + 2)
      if not h then lex_error(st, "missing '{' or '}' in \\u{xxxx}", line, sub(s, a, a + 3)) end
      local cp = tonumber(h, 16)
      if cp >= 2 ^ 31 then lex_error(st, "UTF-8 value too large", line, sub(s, a, a + 3 + #h)) end
      out[#out + 1] = utf8_encode(cp); i = a + 4 + #h
    elseif find(c, "%d") then
      local d = s:match("^%d%d?%d?", a + 1)
      local v = tonumber(d)
      if v > 255 then lex_error(st, "decimal escape too large", line, "\\" .. d) end
      out[#out + 1] = char(v); i = a + 1 + #d
    else
      lex_error(st, "invalid escape sequence", line, "\\" .. c)
    end
  end
  return concat(out)
end

-- ---- scanners, keyed by the first character ---------------------------------------

local scan = {}

local function scan_name(st, pos, line, col)
  local s, e = find(st.src, "^[%a_][%w_]*", pos)
  local w = sub(st.src, s, e)
  if M.keywords[w] then push(st, w, w, line, col, w) else push(st, "<name>", w, line, col, w) end
  return e + 1
end

-- numeral ::= digits with '.', exponents (e/E, or p/P for hex) and signs after them, as llex's read_numeral
local function scan_number(st, pos, line, col)
  local src = st.src
  local expo = "^[eE][%+%-]?"
  local i = pos
  if find(src, "^0[xX]", pos) then expo = "^[pP][%+%-]?"; i = pos + 2 end
  while true do
    local _, e = find(src, expo, i)
    if e then i = e + 1
    else
      local _, e2 = find(src, "^[%x%.]", i)
      if not e2 then break end
      i = e2 + 1
    end
  end
  local _, e3 = find(src, "^[%w_]+", i)   -- a letter glued to a numeral is malformed (3x, 0x1g)
  if e3 then i = e3 + 1 end
  local raw = sub(src, pos, i - 1)
  local v = tonumber(raw)
  if not v then lex_error(st, "malformed number", line, raw) end
  push(st, "<number>", v, line, col, raw)
  return i
end

local function scan_short_string(st, pos, line, col)
  local src, q = st.src, sub(st.src, pos, pos)
  local i = pos + 1
  local pat = q == '"' and '[\\"\n\r]' or "[\\'\n\r]"
  while true do
    local a = find(src, pat, i)
    if not a then lex_error(st, "unfinished string", line, sub(src, pos, pos + 20)) end
    local c = sub(src, a, a)
    if c == q then i = a + 1; break end
    if c == "\n" or c == "\r" then lex_error(st, "unfinished string", line, sub(src, pos, a - 1)) end
    -- a backslash: skip the escaped character (a newline pair counts as one)
    local d = sub(src, a + 1, a + 1)
    if d == "" then lex_error(st, "unfinished string", line, sub(src, pos, a)) end
    if d == "z" then
      local _, e = find(src, "^%s*", a + 2)
      i = e + 1
    elseif (d == "\n" or d == "\r") then
      local e = sub(src, a + 2, a + 2)
      i = ((e == "\n" or e == "\r") and e ~= d) and a + 3 or a + 2
    else
      i = a + 2
    end
  end
  local raw = sub(src, pos, i - 1)
  local value = decode_short(st, sub(raw, 2, -2), line)
  push(st, "<string>", value, line, col, raw)
  return i, count_newlines(raw)
end

-- A long bracket at pos ("[", "=" * level, "["): returns its body, end position, newlines.
local function long_bracket(st, pos, line, what)
  local src = st.src
  local _, e, eqs = find(src, "^%[(=*)%[", pos)
  local close = "]" .. eqs .. "]"
  local a, b = find(src, close, e + 1, true)
  if not a then lex_error(st, "unfinished long " .. what, line, "<eof>") end
  local body = sub(src, e + 1, a - 1)
  return body, b + 1
end

local function normalize_long(body)
  -- the first newline is skipped; newline sequences read as "\n"
  body = body:gsub("^\r\n", ""):gsub("^\n\r", ""):gsub("^[\n\r]", "")
  if find(body, "\r", 1, true) then body = body:gsub("\r\n", "\n"):gsub("\n\r", "\n"):gsub("\r", "\n") end
  return body
end

scan["["] = function(st, pos, line, col)
  if find(st.src, "^%[=*%[", pos) then
    local body, nxt = long_bracket(st, pos, line, "string")
    local raw = sub(st.src, pos, nxt - 1)
    push(st, "<string>", normalize_long(body), line, col, raw)
    return nxt, count_newlines(raw)
  end
  push(st, "[", "[", line, col, "[")
  return pos + 1
end

scan["-"] = function(st, pos, line, col)
  local src = st.src
  if sub(src, pos + 1, pos + 1) ~= "-" then
    push(st, "-", "-", line, col, "-")
    return pos + 1
  end
  if find(src, "^%[=*%[", pos + 2) then          -- long comment
    local _, nxt = long_bracket(st, pos + 2, line, "comment")
    return nxt, count_newlines(sub(src, pos, nxt - 1))
  end
  local a = find(src, "[\n\r]", pos + 2)         -- short comment: up to the end of the line
  return a or #src + 1
end

scan['"'] = scan_short_string
scan["'"] = scan_short_string

-- operators: the longest match among these, by first character
local operators = {
  ["+"] = { "+" }, ["*"] = { "*" }, ["%"] = { "%" }, ["^"] = { "^" }, ["#"] = { "#" },
  ["&"] = { "&" }, ["|"] = { "|" }, ["("] = { "(" }, [")"] = { ")" }, ["{"] = { "{" },
  ["}"] = { "}" }, ["]"] = { "]" }, [";"] = { ";" }, [","] = { "," },
  ["/"] = { "//", "/" }, ["~"] = { "~=", "~" }, ["="] = { "==", "=" },
  ["<"] = { "<=", "<<", "<" }, [">"] = { ">=", ">>", ">" }, [":"] = { "::", ":" },
  ["."] = { "...", "..", "." },
}
for c, list in pairs(operators) do
  scan[c] = function(st, pos, line, col)
    for _, op in ipairs(list) do
      if sub(st.src, pos, pos + #op - 1) == op then
        push(st, op, op, line, col, op)
        return pos + #op
      end
    end
  end
end
local dot = scan["."]
scan["."] = function(st, pos, line, col)
  if find(st.src, "^%.%d", pos) then return scan_number(st, pos, line, col) end
  return dot(st, pos, line, col)
end
for d = 0, 9 do scan[tostring(d)] = scan_number end
for c = byte("a"), byte("z") do scan[char(c)] = scan_name; scan[char(c - 32)] = scan_name end
scan["_"] = scan_name

-- M.tokenize(src, chunkname, {shebang=true}): the token arrays
-- {types, values, lines, cols, raws, n}. A first line starting with '#' is
-- skipped when opts.shebang (as luaL_loadfile does). Errors are tables
-- {autograph_syntax=true, msg=, line=}.
function M.tokenize(src, chunkname, opts)
  local st = { src = src, chunk = chunkname or "?", n = 0,
    types = {}, values = {}, lines = {}, cols = {}, raws = {} }
  local pos, line, linestart = 1, 1, 1
  if opts and opts.shebang and sub(src, 1, 1) == "#" then
    pos = (find(src, "[\n\r]") or #src + 1)
  end
  local len = #src
  while true do
    -- blanks and newlines
    while true do
      local _, e = find(src, "^[ \t\f\v]+", pos)
      if e then pos = e + 1 end
      local c = byte(src, pos)
      if c == 10 or c == 13 then
        local d = byte(src, pos + 1)
        pos = ((d == 10 or d == 13) and d ~= c) and pos + 2 or pos + 1
        line = line + 1
        linestart = pos
      else
        break
      end
    end
    if pos > len then break end
    local c = sub(src, pos, pos)
    local f = scan[c]
    if not f then lex_error(st, "unexpected symbol", line, c) end
    local nxt, nl = f(st, pos, line, pos - linestart + 1)
    if nl and nl > 0 then
      -- a token or comment spanning lines: find where its last line starts
      local seg = sub(src, pos, nxt - 1)
      local last = 0
      for i = #seg, 1, -1 do
        local b = byte(seg, i)
        if b == 10 or b == 13 then last = i; break end
      end
      line = line + nl
      linestart = pos + last
    end
    pos = nxt
  end
  push(st, "<eof>", "<eof>", line, pos - linestart + 1, "")
  st.src = nil
  return st
end

return M
