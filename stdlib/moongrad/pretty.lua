-- moongrad.pretty: how the REPL shows a value (Torch7's `th` prints tables
-- the same way). The REPL (lua/repl.c) calls pretty.line(...) with the
-- values of an expression and prints the one line of text it returns.
--
-- A plain table prints as a Lua constructor, on one line when it fits the
-- terminal (COLUMNS, else 80 columns), else one entry per line, indented:
-- {2, 3} for t.shape, {loss = {0.5, 0.25}} for a History's history. Its
-- size is bounded so that a huge table never floods the screen: nested
-- tables deeper than MAXDEPTH show as {...}; a list longer than MAXLIST shows
-- its first entries, a count of the rest and its last entry (an epoch list's
-- last value stays visible); a table with more than MAXKEYS other keys shows
-- the first ones by sorted name and a count. A table met twice on the way
-- down shows as <cycle>. A value with __tostring (tensors, layers,
-- optimizers, datasets) prints through it, or inside a table as its short
-- form when its text is long. A Variable shows its name before its values:
-- Variable(w, shape (2), float32) tensor([1., 1.], dtype=float32). Strings at
-- the top print raw (as lua.c's REPL does), quoted inside tables. No Lua code
-- of the value runs other than __tostring. Portable Lua.
local M = {}

M.MAXDEPTH = 3
M.MAXLIST = 12
M.MAXKEYS = 30
M.SHORT = 60        -- the longest __tostring text shown inside a table

local function width()
  local c = tonumber(type(os) == "table" and os.getenv and os.getenv("COLUMNS") or "")
  if c and c >= 20 then return c end
  return 80
end

local core_ok, core = pcall(require, "moongrad.core")
local function is_tensor(v) return core_ok and core.is_tensor(v) end

local function shape_str(t)
  local parts = {}
  for i, n in ipairs(t.shape) do parts[i] = tostring(n) end
  return "(" .. table.concat(parts, ",") .. ")"
end

local function variable_name(v)
  if not (core_ok and core.is_variable and core.is_variable(v)) then return nil end
  local n = v.name
  return n ~= nil and tostring(n) or "?"
end

-- A tensor's text; a Variable's starts with Variable(name, shape, dtype).
function M.tensor(v, short)
  local name = variable_name(v)
  local head = name and string.format("Variable(%s, shape %s, %s)", name, shape_str(v), v.dtype) or nil
  if short then
    local text = tostring(v)
    if #text > M.SHORT or text:find("\n", 1, true) then
      text = string.format("tensor(shape %s, %s)", shape_str(v), v.dtype)
    end
    return head and (head .. " " .. text) or text
  end
  return head and (head .. " " .. tostring(v)) or tostring(v)
end

local function has_tostring(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__tostring") ~= nil
end

local function quote(s)
  return (string.format("%q", s):gsub("\\\n", "\\n"))
end

local function key_text(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return k end
  if type(k) == "string" then return "[" .. quote(k) .. "]" end
  return "[" .. tostring(k) .. "]"
end

local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local show

-- The entries of table t as {text, ...}: its list part, then its other keys sorted.
local function entries(t, depth, seen)
  local out, n = {}, 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  if n > M.MAXLIST then
    local head = M.MAXLIST - 2
    for i = 1, head do out[#out + 1] = show(rawget(t, i), depth + 1, seen) end
    out[#out + 1] = string.format("... %d more ...", n - head - 1)
    out[#out + 1] = show(rawget(t, n), depth + 1, seen)
  else
    for i = 1, n do out[#out + 1] = show(rawget(t, i), depth + 1, seen) end
  end
  local keys = {}
  for k in next, t do
    if not (type(k) == "number" and k >= 1 and k <= n and k == math.floor(k)) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_less)
  for i, k in ipairs(keys) do
    if i > M.MAXKEYS then
      out[#out + 1] = string.format("... %d more keys", #keys - M.MAXKEYS)
      break
    end
    out[#out + 1] = key_text(k) .. " = " .. show(rawget(t, k), depth + 1, seen)
  end
  return out
end

local function indent_lines(s, pre)
  return pre .. s:gsub("\n", "\n" .. pre)
end

-- show(v, depth, seen): the text of v inside a table at depth (0: the top).
function show(v, depth, seen)
  local tv = type(v)
  if tv == "string" then return quote(v) end
  if is_tensor(v) then return M.tensor(v, true) end
  if tv ~= "table" then return tostring(v) end
  if has_tostring(v) then
    local ok, text = pcall(tostring, v)
    text = ok and tostring(text) or "<__tostring failed>"
    if #text > M.SHORT or text:find("\n", 1, true) then text = text:match("^[^\n]*"):sub(1, M.SHORT) .. " ..." end
    return text
  end
  if seen[v] then return "<cycle>" end
  if next(v) == nil then return "{}" end
  if depth >= M.MAXDEPTH then return "{...}" end
  seen[v] = true
  local items = entries(v, depth, seen)
  seen[v] = nil
  local one = "{" .. table.concat(items, ", ") .. "}"
  if #one + depth * 2 <= width() and not one:find("\n", 1, true) then return one end
  local lines = {}
  for i, item in ipairs(items) do lines[i] = indent_lines(item, "  ") .. "," end
  return "{\n" .. table.concat(lines, "\n") .. "\n}"
end

-- text(v): the REPL's text of one value.
function M.text(v)
  if type(v) == "string" then return v end
  if is_tensor(v) then return M.tensor(v, false) end
  if type(v) == "table" and not has_tostring(v) then return show(v, 0, {}) end
  return tostring(v)
end

-- line(...): the REPL's text of an expression's values, tab-separated (as print separates them).
function M.line(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = M.text((select(i, ...))) end
  return table.concat(parts, "\t")
end

return M
