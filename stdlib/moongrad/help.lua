-- moongrad.help: the text help(x) prints, for every public function, class,
-- module and method reachable from `mg`, and the REPL's help() itself.
--
-- One source of truth with the code: the ops' text comes from the op table
-- (as doc/ops.md does), the rest from doc comments in the stdlib, read from
-- the source file at help time (never at module load, so `require "moongrad"`
-- stays fast). The doc comment format (doc/repl.md, "Writing help"):
--
--   --- mg.nn.Dense{units, activation=nil, use_bias=true}
--   --- What it does, in a sentence or a few lines.
--   ---   units       the output size (required)
--   --- Example:
--   ---   local d = mg.nn.Dense{units = 4}
--   function Dense:__init(...)
--
-- a block of `---` lines directly above the definition of a function (its
-- first line the signature), or above `X:extend("Name")` for a class (else
-- above its __init). Where a function has no `---` block, the plain `--`
-- comment block right above its definition is the help, and the signature is
-- made from its parameter names. mg.document(f, text) gives a C function (or
-- anything else) its text. A module's help is its file's header comment and a
-- listing of its functions, classes and modules wrapped to the terminal.
--
-- Names: the index of every reachable value is built on the first help() by a
-- walk of mg (the lazy modules loaded), breadth first, so the shortest path
-- names a value; a path in one of PREFER wins (mg.random.normal, not the op's
-- alias mg.normal); class methods are Class:method. Portable Lua.
local M = {}

local PREFER = { "mg.random.", "mg.raw." }         -- homes that beat a shorter alias
local MAXDEPTH = 4
-- Modules whose functions are internals (the operators AutoGraph's generated code calls): their
-- module help lists them, but they are not walked into the index of public names.
local INTERNAL = { ["mg.autograph.runtime"] = true }

local function mgmod() return require("moongrad") end

-- ---- the source files, read on demand -----------------------------------------------------
local files = {}   -- source -> list of lines (false: unreadable)

-- package.loaded, or an empty table where a sandbox has no package library.
local function loaded()
  return type(package) == "table" and type(package.loaded) == "table" and package.loaded or {}
end

-- The text of a built-in chunk of an embedded runtime (by chunk or module name), or nil.
local function embedded_source(name)
  local ok, embedded = pcall(require, "moongrad.embedded")
  return ok and type(embedded) == "table" and embedded.source(name) or nil
end

local function lines_of(source)
  if files[source] ~= nil then return files[source] or nil end
  local text
  if source:sub(1, 1) == "@" then
    local f = type(io) == "table" and io.open and io.open(source:sub(2), "r")   -- (no io in a sandbox)
    if f then text = f:read("*a"); f:close() end
    if not text then text = embedded_source(source) end   -- a built-in chunk: its text is in the binary
  elseif source:sub(1, 1) ~= "=" then
    text = source                                  -- a chunk loaded from a string: its text
  end
  if not text then files[source] = false; return nil end
  local out = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = line end
  files[source] = out
  return out
end

local function embedded_lines(modname)
  local text = embedded_source(modname)
  if not text then return nil end
  return lines_of(text)
end

-- The comment block ending on the line before `at`: its `---` lines (doc
-- comments) if there are any, else its `--` lines. Returns the text lines
-- (comment markers stripped) and whether they were `---` lines.
local function block_above(lines, at)
  local doc, plain = {}, {}
  local i = at - 1
  while i >= 1 do
    local l = lines[i]
    local d = l:match("^%s*%-%-%-%s?(.*)$")
    if d and not l:match("^%s*%-%-%-%-") then table.insert(doc, 1, d)
    else
      local p = l:match("^%s*%-%-%s?(.*)$")
      if not p or #doc > 0 then break end
      table.insert(plain, 1, p)
    end
    i = i - 1
  end
  if #doc > 0 then return doc, true end
  if #plain > 0 then return plain, false end
  return nil
end

-- The definition's line, or the first line of the `local NAME_OPTIONS = {...}` table that the
-- stdlib's convention puts between a function's comment and the function.
local function definition_start(lines, at)
  local i = at - 1
  while i >= 1 and i > at - 40 do
    local l = lines[i]
    if l:match("^%s*$") or l:match("^%s*%-%-") then break end
    if l:match("^local [%u_][%u%d_]*%s*=") then return i end
    i = i - 1
  end
  return at
end

-- A method guarded against dot calls (nn/class.lua) is a wrapper: its text and parameters are
-- the original's.
local function unwrap(f)
  local ok, class = pcall(require, "moongrad.nn.class")
  if ok and type(class) == "table" and class.unwrap then return class.unwrap(f) end
  return f
end

local function func_comment(f)
  if type(f) ~= "function" then return nil end
  f = unwrap(f)
  local info = debug.getinfo(f, "S")
  if not info or info.what ~= "Lua" or not info.linedefined or info.linedefined < 1 then return nil end
  local lines = lines_of(info.source)
  if not lines then return nil end
  return block_above(lines, definition_start(lines, info.linedefined))
end

-- The parameter names of a Lua function, "(a, b, ...)".
local function params(f, method)
  f = unwrap(f)
  local info = debug.getinfo(f, "u")
  if not info or not info.nparams then return "(...)" end
  local names = {}
  for i = 1, info.nparams do
    local n = debug.getlocal(f, i)
    if n and not (method and i == 1 and n == "self") then names[#names + 1] = n end
  end
  if info.isvararg then names[#names + 1] = "..." end
  return "(" .. table.concat(names, ", ") .. ")"
end

-- ---- names ----------------------------------------------------------------------------------
local index        -- value -> { paths }
local classes      -- class table -> its path
local modules      -- module table -> its path

local function is_class(v)
  return type(v) == "table" and (rawget(v, "class_name") ~= nil or rawget(v, "__index") == v)
end

local function identifier(k) return type(k) == "string" and k:match("^[%a_][%w_]*$") and k:sub(1, 1) ~= "_" end

-- A module: a table require returned, or a table of functions, classes or modules (a list of
-- names, mg.dtypes, is data).
local function is_module(t)
  for _, v in pairs(loaded()) do
    if v == t then return true end
  end
  for k, v in pairs(t) do
    if type(k) == "string" and (type(v) == "function" or type(v) == "table") then return true end
  end
  return false
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do if identifier(k) then keys[#keys + 1] = k end end
  table.sort(keys)
  return keys
end

-- Loads the lazy members of a module (those its metatable lists in __members: mg.nn, ...).
local function load_lazy(t)
  local mt = getmetatable(t)
  local members = type(mt) == "table" and rawget(mt, "__members")
  if type(members) ~= "table" or rawget(mt, "class_name") then return end
  for k in pairs(members) do
    if type(k) == "string" and rawget(t, k) == nil then pcall(function() return t[k] end) end
  end
end

local function build_index()
  local mg = mgmod()
  load_lazy(mg)
  index, classes, modules = {}, {}, {}
  local function add(v, path)
    local list = index[v]
    if not list then list = {}; index[v] = list end
    list[#list + 1] = path
  end
  local queue, seen = { { mg, "mg", 0 } }, { [mg] = true }
  modules[mg] = "mg"
  local head = 1
  while queue[head] do
    local t, path, depth = queue[head][1], queue[head][2], queue[head][3]
    head = head + 1
    local class = is_class(t)
    if not class then load_lazy(t) end
    for _, k in ipairs(sorted_keys(t)) do
      local v = rawget(t, k)
      if v ~= nil and k ~= "super" and k ~= "core" then
        local p = path .. (class and type(v) == "function" and ":" or ".") .. k
        if type(v) == "function" then add(v, p)
        elseif type(v) == "table" and not seen[v] and depth < MAXDEPTH and (not class or is_class(v))
          and (is_class(v) or is_module(v)) then
          seen[v] = true
          add(v, p)
          if is_class(v) then classes[v] = p else modules[v] = p end
          if not INTERNAL[p] then queue[#queue + 1] = { v, p, depth + 1 } end
        end
      end
    end
  end
  for _, k in ipairs(sorted_keys(mg.core.tape_methods)) do   -- a GradientTape's methods: tape:NAME
    local v = rawget(mg.core.tape_methods, k)
    if type(v) == "function" then add(v, "tape:" .. k) end
  end
  for _, k in ipairs(sorted_keys(mg.core.methods)) do   -- the tensor methods: t:NAME
    local v = rawget(mg.core.methods, k)
    if type(v) == "function" then add(v, "t:" .. k) end
  end
end

local function preferred(p)
  for i, pre in ipairs(PREFER) do
    if p:sub(1, #pre) == pre then return i end
  end
  return #PREFER + 1
end

-- name_of(x): the canonical name of x and its other names (nil if unreachable from mg).
function M.name_of(x)
  if not index then build_index() end
  local list = index[x]
  if not list then return nil end
  local best = list[1]
  for _, p in ipairs(list) do
    if preferred(p) < preferred(best) then best = p end
  end
  local others = {}
  for _, p in ipairs(list) do   -- (an op's method form t:NAME goes without saying)
    if p ~= best and p:sub(1, 2) ~= "t:" then others[#others + 1] = p end
  end
  return best, others
end

-- ---- wrapping ------------------------------------------------------------------------------
M.columns = nil     -- a fixed width (scripts/gen_api_doc.lua), else COLUMNS, else 80

local function width()
  if M.columns then return M.columns end
  local c = tonumber(type(os) == "table" and os.getenv and os.getenv("COLUMNS") or "")
  if c and c >= 20 then return c end
  return 80
end
M.width = width

-- words joined with sep, wrapped at w columns, each line starting with indent.
local function wrap(words, indent, w, sep)
  sep = sep or ", "
  local out, line = {}, indent
  for i, word in ipairs(words) do
    local piece = word .. (i < #words and sep:gsub("%s+$", "") or "")
    if #line > #indent and #line + 1 + #piece > w then
      out[#out + 1] = line
      line = indent
    end
    line = line .. (#line > #indent and " " or "") .. piece
  end
  if #line > #indent then out[#out + 1] = line end
  return table.concat(out, "\n")
end
M.wrap = wrap

-- A sentence wrapped at w columns.
local function para(text, w)
  local words = {}
  for word in text:gmatch("%S+") do words[#words + 1] = word end
  return wrap(words, "", w, " ")
end

-- ---- the texts --------------------------------------------------------------------------------
local function first_sentence(lines)
  if not lines then return "" end
  local s = lines[1] or ""
  return s
end

local function op_signature(op, name)
  local parts = {}
  if op.variadic then parts[1] = "{tensors}"
  else for i = 1, op.nin do parts[#parts + 1] = op.nin == 1 and "x" or string.char(96 + i) end end
  for _, a in ipairs(op.attrs) do parts[#parts + 1] = a.name end
  return name .. "(" .. table.concat(parts, ", ") .. ")"
end

local function names_line(name, others)
  if others and #others > 0 then return "  (also " .. table.concat(others, ", ") .. ")\n" end
  return ""
end

local function indent(lines, pre)
  local out = {}
  for _, l in ipairs(lines) do out[#out + 1] = (l == "" and "" or pre .. l) end
  return table.concat(out, "\n")
end

-- A doc block whose first line reads as a signature ("name(...)", "name{...}", "obj:m(...)").
local function looks_like_signature(l)
  return l and (l:match("^[%w_.:]+%s*[%({]") or l:match("^[%w_.:]+%s*%->")) ~= nil
end

local function_text
function function_text(f, name, others)
  local mg = mgmod()
  local doc = rawget(mg, "_docs")[f]
  local op = rawget(mg, "_ops")[f]
  if op then
    return op_signature(op, name or ("mg." .. op.name)) .. "\n" .. names_line(name, others) .. "  " .. op.doc
  end
  if doc then
    if name then   -- the registered text names one of its homes; name this one
      local first = doc:match("^[^\n]*")
      local rest = doc:sub(#first + 1)
      local call = first:match("^[%w_.:]+(.*)$")
      if call and (call:sub(1, 1) == "(" or call:sub(1, 1) == "{" or call == "") then
        doc = name .. call .. "\n" .. names_line(name, others) .. rest:gsub("^\n", "")
      end
    end
    return doc
  end
  local block, is_doc = func_comment(f)
  local method = name and name:find(":", 1, true)
  local cname, m
  if method then cname, m = name:match("^(.*):([%w_]+)$") end
  -- a method written inline in a class's defining call (define("Zeros", ..., function ... end))
  -- finds the class's block: not its own doc
  if block and m and not table.concat(block, "\n"):find(m, 1, true) then
    local short = cname:match("([%w_]+)$")
    if block[1]:find(short .. "[{(]") then block = nil end
  end
  if not block and method then   -- an override without its own doc: the documented method it overrides
    local c = index and cname and nil
    for cls, p in pairs(classes or {}) do if p == cname then c = cls end end
    c = c and rawget(c, "super")
    while c do
      local g = rawget(c, m)
      if type(g) == "function" and g ~= f then
        local t = function_text(g, classes[c] and (classes[c] .. ":" .. m) or nil)
        if t then return t .. "\n  (" .. name .. " overrides it)" end
      end
      c = rawget(c, "super")
    end
  end
  local sig = (name or "function") .. (type(f) == "function" and debug.getinfo(unwrap(f), "S").what == "Lua" and params(f, method) or "(...)")
  if block and (is_doc or #block > 0) then
    if looks_like_signature(block[1]) then
      sig = block[1]
      table.remove(block, 1)
    end
    local body = indent(block, "  ")
    return sig .. (((names_line(name, others) .. body) ~= "") and ("\n" .. names_line(name, others) .. body) or "")
  end
  return nil
end

-- The doc block of a class: above `extend("Name")` in the file of its __init, else above __init.
local function class_block(cls, name)
  local init = unwrap(rawget(cls, "__init") or rawget(cls, "new"))
  local own_init = type(init) == "function"
  local cname = rawget(cls, "class_name") or (name and name:match("([%w_]+)$"))
  if type(init) ~= "function" then   -- made by a helper (define("Name", ...)): any own function's file
    for _, k in ipairs(sorted_keys(cls)) do
      local f = unwrap(rawget(cls, k))
      if type(f) == "function" and debug.getinfo(f, "S").what == "Lua" then init = f; break end
    end
    if type(init) ~= "function" then init = rawget(cls, "__init") end
  end
  if type(init) == "function" then
    local info = debug.getinfo(init, "S")
    local lines = info and info.what == "Lua" and lines_of(info.source)
    if lines and cname then   -- X:extend("Name"), define("Name", ...), wrapper_class("Name", ...)
      for i, l in ipairs(lines) do
        if l:find('%(%s*"' .. cname .. '"%s*[,)]') or l:find("^local%s+" .. cname .. "%s*=") then
          local b, d = block_above(lines, i)
          if b then return b, d end
        end
      end
    end
    if own_init then return func_comment(init) end
  end
  return nil
end

local function members(cls)
  local own, getters = {}, {}
  for _, k in ipairs(sorted_keys(cls)) do
    if type(rawget(cls, k)) == "function" and k ~= "new" and k ~= "extend" then own[#own + 1] = k end
  end
  local g = rawget(cls, "getters")
  if type(g) == "table" then getters = sorted_keys(g) end
  return own, getters
end

local function class_text(cls, name, others)
  local w = width()
  local block, _ = class_block(cls, name)
  local registered = rawget(mgmod(), "_docs")[cls]    -- mg.document(Class, text)
  if registered then
    block = {}
    for l in (registered .. "\n"):gmatch("([^\n]*)\n") do block[#block + 1] = (l:gsub("^  ", "")) end
  end
  local out = {}
  local head = name or tostring(cls)
  if block and looks_like_signature(block[1]) then head = table.remove(block, 1) end
  local parent = rawget(cls, "super") and rawget(rawget(cls, "super"), "class_name")
  local marker = "(class" .. (parent and parent ~= "Object" and (", subclass of " .. parent) or "") .. ")"
  if #head + 3 + #marker <= w then out[#out + 1] = head .. "   " .. marker
  else out[#out + 1] = head .. "\n  " .. marker end
  local also = names_line(name, others)
  if also ~= "" then out[#out + 1] = also:gsub("\n$", "") end
  if block and #block > 0 then out[#out + 1] = indent(block, "  ") end
  local own, getters = members(cls)
  if #own > 0 then out[#out + 1] = "  Methods:\n" .. wrap(own, "    ", w) end
  if #getters > 0 then out[#out + 1] = "  Properties:\n" .. wrap(getters, "    ", w) end
  local parents, c = {}, rawget(cls, "super")
  while c do
    if rawget(c, "class_name") then parents[#parents + 1] = rawget(c, "class_name") end
    c = rawget(c, "super")
  end
  if #parents > 0 then
    out[#out + 1] = "  Inherits from " .. table.concat(parents, " < ") .. " (help(" .. (name or "Class") ..
      ".super) for its methods)"
  end
  return table.concat(out, "\n")
end

-- The header comment of the file a module table was loaded from.
local function module_header(t)
  for modname, v in pairs(loaded()) do
    if v == t and type(modname) == "string" then
      local search = type(package) == "table" and package.searchpath
      local path = search and search(modname, package.path)
      if not path and search and modname == "autograph" then path = search("autograph.init", package.path) end
      local lines = path and lines_of("@" .. path) or embedded_lines(modname)
      if lines then
        local out = {}
        for _, l in ipairs(lines) do
          local c = l:match("^%-%-+%s?(.*)$")
          if not c then break end
          out[#out + 1] = c
        end
        return out
      end
    end
  end
  return nil
end

local function module_text(t, name)
  local w = width()
  local fns, cls, mods, values = {}, {}, {}, {}
  for _, k in ipairs(sorted_keys(t)) do
    local v = rawget(t, k)
    if type(v) == "function" then fns[#fns + 1] = k
    elseif is_class(v) then cls[#cls + 1] = k
    elseif type(v) == "table" and is_module(v) then mods[#mods + 1] = k
    else values[#values + 1] = k end
  end
  local mt = getmetatable(t)      -- the lazy modules not loaded yet are names too
  local lazy = type(mt) == "table" and not is_class(t) and rawget(mt, "__members")
  if type(lazy) == "table" then
    for k in pairs(lazy) do
      if type(k) == "string" and rawget(t, k) == nil then mods[#mods + 1] = k end
    end
    table.sort(mods)
  end
  local out = {}
  local header = module_header(t)
  if t == mgmod() then
    out[#out + 1] = "mg: moongrad " .. tostring(rawget(t, "version")) .. "\n" ..
      para("help(mg.NAME) for one of these, help(mg.nn) for a module.", w)
  else
    out[#out + 1] = (name or "module") .. "   (module)"
    if header then out[#out + 1] = indent(header, "  ") end
  end
  if #mods > 0 then out[#out + 1] = "Modules:\n" .. wrap(mods, "  ", w) end
  if #cls > 0 then out[#out + 1] = "Classes:\n" .. wrap(cls, "  ", w) end
  if #fns > 0 then
    if t == mgmod() then     -- the ops apart from the Lua-side helpers
      local ops, other = {}, {}
      local optab = rawget(t, "_ops")
      for _, k in ipairs(fns) do
        if optab[rawget(t, k)] then ops[#ops + 1] = k else other[#other + 1] = k end
      end
      out[#out + 1] = "Functions:\n" .. wrap(other, "  ", w)
      out[#out + 1] = para("Ops (most are also tensor methods, t:NAME; doc/ops.md):", w) .. "\n" .. wrap(ops, "  ", w)
    else
      out[#out + 1] = "Functions:\n" .. wrap(fns, "  ", w)
    end
  end
  if #values > 0 then out[#out + 1] = "Values:\n" .. wrap(values, "  ", w) end
  return table.concat(out, "\n")
end

-- text(x): the help text of x, or nil.
function M.text(x)
  local mg = mgmod()
  local core = mg.core
  if type(x) == "string" then           -- help("matmul"), help("mg.nn.Dense"), help("nn.Dense")
    local v = x:gsub("^mg%.", "")
    local t = mg
    for part in v:gmatch("[^.:]+") do
      if type(t) ~= "table" then t = nil break end
      t = t[part]
    end
    if t ~= nil and t ~= x then return M.text(t) end
    return nil
  end
  if core.is_tensor(x) then
    local kind = x.name and ("Variable " .. tostring(x.name)) or "a tensor"
    return string.format("%s of shape (%s) and dtype %s; its methods are the ops (help(mg) lists them), " ..
      "its fields shape, dtype, ndim", kind, table.concat(x.shape, ","), x.dtype)
  end
  local ok, g = pcall(function() return x.gradient end)   -- a GradientTape (userdata or cdata)
  if ok and g ~= nil and g == rawget(core.tape_methods, "gradient") then
    return "a GradientTape (help(mg.GradientTape)); its methods:\n" .. wrap(sorted_keys(core.tape_methods), "  ", width()) ..
      "\n(help(tape.gradient) for one of them)"
  end
  local name, others = M.name_of(x)
  if type(x) == "function" then return function_text(x, name, others) end
  if type(x) == "table" then
    if is_class(x) then return class_text(x, name, others) end
    if modules[x] or x == mg then return module_text(x, name) end
    local cls = getmetatable(x)
    if is_class(cls) then          -- an instance: its class's help
      return "an instance of " .. (classes[cls] or tostring(rawget(cls, "class_name"))) .. "\n" ..
        class_text(cls, classes[cls], nil)
    end
  end
  return nil
end

-- every_public_name(): {name = value} of every function, class and module reachable from mg
-- and of the tensor methods (what the help spec checks and doc/api.md lists).
function M.every_public_name()
  if not index then build_index() end
  local out = {}
  for v in pairs(index) do
    local name = M.name_of(v)
    out[name] = v
  end
  return out
end

return M
