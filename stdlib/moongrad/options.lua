-- moongrad.options: the one checker for option tables, used by every function of the library
-- that takes one (GradientTape, Variable, mg.func, layers, optimizers, schedules, losses, fit).
--
-- A function declares what it accepts once, as a spec, and calls check(): an unknown name (a
-- typo such as `persistant`), a value of the wrong type or one outside its range raises an error
-- that names the function, the option and what is valid, at the user's own line (the first
-- caller outside moongrad's Lua files), never a silently ignored option or a model trained to
-- garbage. A spec maps each option name to a rule:
--
--   "boolean"                          a type: number, integer, boolean, string, table,
--                                      function, tensor, any; alternatives with "|":
--                                      "number|tensor"
--   { "number", min = 0, max = 1 }     closed bounds; `above`/`below` for open ones
--   { "integer", min = 1 }             integers (a float with no fraction is accepted)
--   { "string", one_of = {"a", "b"} }  a fixed set of values
--   { "number", check = fn }           fn(v) returns nil when v is fine, else what is wrong
--
-- nil (the option left out) is always accepted: defaults stay with the caller, where they are
-- documented. Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")

local M = {}

-- ---- raising at the user's line ---------------------------------------------------------------

-- Frames whose chunk lives under these prefixes are moongrad's own ("@.../stdlib/moongrad/",
-- "@.../autograph/"; in the embedding library "@stdlib/moongrad/" and "@autograph/").
local own_prefix = debug.getinfo(1, "S").source:gsub("options%.lua$", "")
local autograph_prefix = own_prefix:gsub("stdlib/moongrad/$", "autograph/")
local function is_own(source)
  return source:sub(1, #own_prefix) == own_prefix or source:sub(1, #autograph_prefix) == autograph_prefix
end
M.is_own_source = is_own
M.own_prefixes = { own_prefix, autograph_prefix }
-- The binding raises engine errors and places graph nodes and tape records at the first frame
-- outside these files too.
core.set_own_sources(own_prefix, autograph_prefix)

-- The level (as debug.getinfo counts from the caller of this function) of the first frame outside
-- moongrad's Lua files, or nil. The library's own pcalls are looked through (a C frame called from
-- moongrad's files: fit's staged step, a layer's call); Lua's own rule stays for the user's: reached
-- through a C function the user called (pcall(f, ...)), an error has no position.
local function user_level()
  local level = 3
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return nil end
    if info.what == "C" then
      local caller = debug.getinfo(level + 1, "S")
      if not caller or caller.what == "C" or not is_own(caller.source) then return nil end
    elseif not is_own(info.source) then
      return level - 1
    end
    level = level + 1
  end
end

-- error(msg) at the first caller outside moongrad's Lua files (no position when there is none).
function M.raise(msg)
  local level = user_level()
  if level == nil then error(msg, 0) end
  local info = type(msg) == "string" and debug.getinfo(level, "Sl")
  if info and info.currentline > 0 then   -- a message that already names this line keeps one position
    local where = info.short_src .. ":" .. info.currentline .. ": "
    if msg:sub(1, #where) == where then error(msg, 0) end
  end
  error(msg, level)
end

-- "file:line: " of the first caller outside moongrad's Lua files, for a message caught with pcall
-- and raised again. The library's own pcalls are looked through (a C frame called from moongrad's
-- files); one the user called (pcall(mg.f, ...)) keeps Lua's rule: no position, "".
function M.user_where()
  local level = user_level()
  local info = level and debug.getinfo(level, "Sl")
  if not info or info.currentline <= 0 then return "" end
  return info.short_src .. ":" .. info.currentline .. ": "
end

-- ---- values -----------------------------------------------------------------------------------

local function is_integer(v) return type(v) == "number" and v == math.floor(v) and v - v == 0 end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if core.is_tensor(v) then return "a " .. v.dtype .. " tensor" end
  if type(v) == "number" or type(v) == "boolean" or v == nil then return tostring(v) end
  return "a " .. type(v)
end
M.show = show

local type_tests = {
  number = function(v) return type(v) == "number" end,
  integer = is_integer,
  boolean = function(v) return type(v) == "boolean" end,
  string = function(v) return type(v) == "string" end,
  table = function(v) return type(v) == "table" and not core.is_tensor(v) end,
  ["function"] = function(v) return type(v) == "function" end,
  tensor = function(v) return core.is_tensor(v) end,
  any = function() return true end,
}

local function type_ok(kinds, v)
  for kind in kinds:gmatch("[^|]+") do
    local test = type_tests[kind]
    if not test then error("options: unknown kind '" .. kind .. "' in a spec", 3) end
    if test(v) then return true end
  end
  return false
end

local function range_text(rule)
  local lo = rule.min ~= nil and ("[" .. tostring(rule.min)) or rule.above ~= nil and ("(" .. tostring(rule.above)) or "(-inf"
  local hi = rule.max ~= nil and (tostring(rule.max) .. "]") or rule.below ~= nil and (tostring(rule.below) .. ")") or "inf)"
  return lo .. ", " .. hi
end

-- nil when v satisfies rule, else a sentence saying what is wrong ("must be ..., got ...").
local function violation(rule, v)
  if type(rule) == "string" then rule = { rule } end
  local kinds = rule[1] or "any"
  if not type_ok(kinds, v) then
    return "must be " .. (kinds == "integer" and "an integer" or kinds:gsub("|", " or ")) .. ", got " .. show(v)
  end
  if type(v) == "number" then
    local bad = v ~= v or (rule.min ~= nil and v < rule.min) or (rule.max ~= nil and v > rule.max)
      or (rule.above ~= nil and v <= rule.above) or (rule.below ~= nil and v >= rule.below)
    if bad then return "must be in " .. range_text(rule) .. ", got " .. (v ~= v and "nan" or tostring(v)) end
  end
  if rule.one_of then
    for _, ok in ipairs(rule.one_of) do if v == ok then return nil end end
    local names = {}
    for i, ok in ipairs(rule.one_of) do names[i] = show(ok) end
    return "must be one of " .. table.concat(names, ", ") .. ", got " .. show(v)
  end
  if rule.check then return rule.check(v) end
  return nil
end
M.violation = violation

-- ---- names ------------------------------------------------------------------------------------

-- Levenshtein distance, for "did you mean" (option names are short).
local function distance(a, b)
  local prev, cur = {}, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    cur[0] = i
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[#b]
end

local function sorted_names(spec)
  local names = {}
  for k in pairs(spec) do names[#names + 1] = k end
  table.sort(names)
  return names
end

local function unknown_message(fname, key, spec)
  local names = sorted_names(spec)
  local best, best_d = nil, 3
  if type(key) == "string" then
    for _, n in ipairs(names) do
      local d = distance(key, n)
      if d < best_d then best, best_d = n, d end
    end
  end
  local msg = string.format("%s: unknown option %s", fname, type(key) == "string" and ("'" .. key .. "'") or
    ("[" .. show(key) .. "] (options are named, not positional)"))
  if best then msg = msg .. " (did you mean '" .. best .. "'?)" end
  if #names == 0 then return msg .. "; it takes no options" end
  return msg .. "; valid options: " .. table.concat(names, ", ")
end

-- ---- the checker ------------------------------------------------------------------------------

-- Checks opts (a table or nil) against spec and returns it ({} for nil). Raises at the user's line.
function M.check(fname, opts, spec)
  if opts == nil then return {} end
  if type(opts) ~= "table" or core.is_tensor(opts) then
    M.raise(string.format("%s: options must be a table, got %s", fname, show(opts)))
  end
  for k, v in pairs(opts) do
    local rule = spec[k]
    if rule == nil then M.raise(unknown_message(fname, k, spec)) end
    local why = violation(rule, v)
    if why then M.raise(string.format("%s: option '%s' %s", fname, tostring(k), why)) end
  end
  return opts
end

-- Checks one value that is not in an options table (a positional argument, a config field).
function M.value(fname, name, v, rule)
  if v == nil then return v end
  local why = violation(rule, v)
  if why then M.raise(string.format("%s: %s %s", fname, name, why)) end
  return v
end

-- A spec extended by more rules (subclass options over a base class's).
function M.extend(base, more)
  local s = {}
  for k, v in pairs(base) do s[k] = v end
  for k, v in pairs(more or {}) do s[k] = v end
  return s
end

return M
