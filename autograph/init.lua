-- autograph: converts a Lua function's control flow over tensors into graph
-- cond/while nodes when mg.func stages it (DESIGN.md, "AutoGraph").
--
-- convert(fn) re-reads fn's source (debug.getinfo: the file, a registered
-- source, a load()ed string), parses the chunk (cached), finds fn's node by
-- its lines, runs the passes in order on a copy, and prints the result as a
-- chunk whose line N is the user's line N:
--     local ag__, <fn's upvalue names> = ...        (line 1)
--     return function(<params>) ... end            (on fn's own lines)
-- loaded under fn's own chunk name, so error messages and tracebacks name
-- the user's file and line with no source map. The returned closure's
-- upvalues are joined (debug.upvaluejoin) to fn's, so shared state stays
-- shared, and its _ENV is fn's. Compiled chunks are cached per source
-- position, converted closures per closure (weakly). A function with no
-- source (C, stripped bytecode, a REPL line) stages unconverted with a note.
-- Portable Lua (5.4 and LuaJIT).
local parser = require("autograph.parser")
local lexer = require("autograph.lexer")
local options = require("moongrad.options")
local codegen = require("autograph.codegen")
local ast = require("autograph.ast")
local runtime = require("autograph.runtime")

local M = {}

M.passes = {
  require("autograph.passes.desugar"),
  require("autograph.passes.continue"),
  require("autograph.passes.breaks"),
  require("autograph.passes.returns"),
  require("autograph.analysis"),
  require("autograph.passes.loops"),
  require("autograph.passes.ifs"),
  require("autograph.passes.logical"),
  require("autograph.passes.compare"),
  require("autograph.passes.stores"),
  require("autograph.passes.builtins"),
  (require("autograph.passes.calls")),
}

M.runtime = runtime
M.range = runtime.range
M.UNDEF = runtime.UNDEF

local weak_k = { __mode = "k" }
local converted = setmetatable({}, weak_k)     -- fn -> {mode -> converted closure}
local is_converted = setmetatable({}, weak_k)  -- converted closure -> original
local not_converted = setmetatable({}, weak_k) -- do_not_convert marks
local noted = setmetatable({}, weak_k)         -- functions already noted as having no source
local compiled = {}                            -- source position -> {factory, code, ...}
local sources = {}                             -- chunk name -> text
local parsed = setmetatable({}, { __mode = "v" })  -- chunk name -> {text, ast} (while in use)

local own_source = debug.getinfo(1, "S").source
local run_passes
runtime.add_internal_source(own_source)

-- ---- sources ----------------------------------------------------------------------------

local embedded
local function builtin_source(src)
  if embedded == nil then
    local ok, mod = pcall(require, "moongrad.embedded")
    embedded = ok and mod or false
  end
  return embedded and embedded.source(src) or nil
end

local is_library   -- (below: installed libraries and moongrad's own files)

-- Registers the text of a chunk loaded with a name that names no file
-- (a REPL, a host program): register_source("=stdin", text). Only for
-- chunks the caller loaded itself: the chunks of moongrad's library (and
-- installed Lua libraries) keep their own text, since converted code runs
-- with the environment and upvalues of the function it replaces.
-- register_source(chunkname, nil) forgets a registered text (a host or a
-- fuzzer that loads many chunks frees them).
function M.register_source(chunkname, text)
  if type(chunkname) ~= "string" or (type(text) ~= "string" and text ~= nil) then
    options.raise("register_source: expected a chunk name and its text (two strings, or nil to forget "
      .. "it), got " .. type(chunkname) .. " and " .. type(text))
  end
  if options.is_own_source(chunkname) or builtin_source(chunkname) or is_library(chunkname) then
    options.raise("register_source: '" .. chunkname .. "' is a chunk of the moongrad library or an installed "
      .. "library; only the source of chunks you loaded yourself can be registered")
  end
  sources[chunkname] = text
  parsed[chunkname] = nil
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

local function source_of(src)
  if sources[src] then return sources[src] end
  local c = src:sub(1, 1)
  local text
  if c == "@" then
    -- a built-in chunk's text is the one compiled in, never a file that happens to have its name
    text = builtin_source(src) or read_file(src:sub(2))
  elseif c == "=" then
    return nil
  else
    text = src                        -- load(string) without a name: the source is the text
  end
  if text and c ~= "@" then sources[src] = text end   -- files are read again: they may change
  return text
end

local function parse_chunk(src, text)
  local p = parsed[src]
  if p and p.text == text then return p.ast end
  local tree = parser.parse(text, src, { shebang = src:sub(1, 1) == "@" })
  parsed[src] = { text = text, ast = tree }
  return tree
end

-- ---- diagnostics --------------------------------------------------------------------------

local function short_src(info) return info.short_src end

-- One structured error for all the diagnostics of a conversion.
local function raise(ctx)
  local lines = {}
  for _, d in ipairs(ctx.diagnostics) do
    lines[#lines + 1] = string.format("%s:%d: autograph: %s", d.file, d.line, d.msg)
  end
  error({ autograph_error = true, msg = table.concat(lines, "\n"), diagnostics = ctx.diagnostics }, 0)
end

local function new_ctx(info, upvalues)
  local ctx = { file = short_src(info), upvalues = upvalues, diagnostics = {}, changed = false, n = 0 }
  function ctx.error(node, msg)
    ctx.diagnostics[#ctx.diagnostics + 1] = { file = ctx.file, line = node.line or info.linedefined,
      col = node.col, msg = msg }
  end
  function ctx.gensym(prefix)
    ctx.n = ctx.n + 1
    return prefix .. "__" .. ctx.n
  end
  return ctx
end

-- ---- finding the function in its chunk ---------------------------------------------------------

-- The upvalue names each function node of the chunk would get: the locals of
-- enclosing functions it references, plus _ENV when it reads a global.
local function upvalue_sets(tree)
  local sets = {}
  local scopes, fstack = {}, {}
  local function declare(name) scopes[#scopes][name] = #fstack end
  local function reference(name)
    for i = #scopes, 1, -1 do
      local d = scopes[i][name]
      if d then
        for k = d + 1, #fstack do sets[fstack[k]][name] = true end
        return
      end
    end
    for k = 1, #fstack do sets[fstack[k]]["_ENV"] = true end
  end
  local go
  local function block(b, pre)
    scopes[#scopes + 1] = {}
    if pre then pre() end
    for _, st in ipairs(b.body) do go(st) end
    scopes[#scopes] = nil
  end
  function go(n)
    local t = n.tag
    if t == "Id" then reference(n.name)
    elseif t == "Function" then
      sets[n] = {}
      fstack[#fstack + 1] = n
      block(n.body, function() for _, p in ipairs(n.params) do declare(p.name) end end)
      fstack[#fstack] = nil
    elseif t == "Local" then
      for _, e in ipairs(n.exprs) do go(e) end
      for _, id in ipairs(n.names) do declare(id.name) end
    elseif t == "LocalFunction" then
      declare(n.name.name)
      go(n.func)
    elseif t == "Block" or t == "Do" or t == "While" then
      if t == "While" then go(n.cond) end
      block(t == "Block" and n or n.body)
    elseif t == "Repeat" then
      scopes[#scopes + 1] = {}
      for _, st in ipairs(n.body.body) do go(st) end
      go(n.cond)
      scopes[#scopes] = nil
    elseif t == "If" then
      for _, c in ipairs(n.clauses) do go(c.cond); block(c.body) end
      if n.orelse then block(n.orelse) end
    elseif t == "Fornum" or t == "Forin" then
      if t == "Fornum" then go(n.start); go(n.stop); if n.step then go(n.step) end
      else for _, e in ipairs(n.exprs) do go(e) end end
      block(n.body, function()
        if t == "Fornum" then declare(n.var.name) else for _, id in ipairs(n.names) do declare(id.name) end end
      end)
    else
      ast.each_child(n, go)
    end
  end
  scopes[1] = {}
  for _, st in ipairs(tree.body) do go(st) end
  return sets
end

local function same_set(a, b)
  for k in pairs(a) do if not b[k] then return false end end
  for k in pairs(b) do if not a[k] then return false end end
  return true
end

local function find_function(tree, info, upnames)
  local cands = {}
  local function go(n)
    if n.tag == "Function" and n.endline == info.lastlinedefined
        and (n.line == info.linedefined or n.paren_line == info.linedefined) then
      local np = #n.params
      if (info.nparams == nil or np == info.nparams) and (info.isvararg == nil or n.is_vararg == info.isvararg) then
        cands[#cands + 1] = n
      end
    end
    ast.each_child(n, go)
  end
  go(tree)
  if #cands > 1 then   -- several on the same lines: keep those with the same upvalues
    local sets, keep = upvalue_sets(tree), {}
    for _, c in ipairs(cands) do
      if same_set(sets[c] or {}, upnames) then keep[#keep + 1] = c end
    end
    cands = keep
  end
  if #cands == 1 then return cands[1] end
  if #cands == 0 then return nil, "no function of the source has its lines and parameters", true end
  return nil, "several functions are defined on line " .. info.linedefined .. "; put the one to stage on its own lines"
end

-- ---- does the text still describe the loaded function? -----------------------------------------

-- The lines of [a, b] that hold code: a token starts there or a multi-line token spans it.
local function code_lines(text, src, a, b)
  local toks = lexer.tokenize(text, src, { shebang = src:sub(1, 1) == "@" })
  local set = {}
  for i = 1, toks.n do
    local l = toks.lines[i]
    if l > b then break end
    local raw = toks.raws[i] or ""
    local _, nl = raw:gsub("\r\n", "\n"):gsub("\r", "\n"):gsub("\n", "")
    for x = (l > a and l or a), (l + nl < b and l + nl or b) do set[x] = true end
  end
  return set
end

-- The highest line of any node under n, and whether a function is among them.
local function extent(n)
  local top, has_fn = n.line or 0, false
  local function go(c)
    if c.line and c.line > top then top = c.line end
    if c.tag == "Function" then
      has_fn = true
      if c.endline and c.endline > top then top = c.endline end
    end
    ast.each_child(c, go)
  end
  ast.each_child(n, go)
  return top, has_fn
end

-- Statements of node's own body (not of nested functions) that always compile to code on their
-- line: one-line calls, assignments (not `x = x`, which compiles to nothing), locals with values
-- (not <const>) and returns.
local ALWAYS_CODE = { CallStat = true, Set = true, Local = true, Return = true }
local function self_assignment(n)
  if n.tag ~= "Set" or #n.targets ~= #n.exprs then return false end
  for i, t in ipairs(n.targets) do
    local e = n.exprs[i]
    if t.tag ~= "Id" or e.tag ~= "Id" or t.name ~= e.name then return false end
  end
  return true
end
local function code_statements(node)
  local out = {}
  local function go(n)
    if n.tag == "Function" then return end
    if ALWAYS_CODE[n.tag] then
      local plain = true
      if n.tag == "Local" then
        for _, id in ipairs(n.names) do if id.attrib then plain = false end end
        plain = plain and #n.exprs > 0
      end
      local top, has_fn = extent(n)
      if plain and not has_fn and top == n.line and not self_assignment(n) then out[#out + 1] = n.line end
    end
    if not ALWAYS_CODE[n.tag] then ast.each_child(n, go) end
  end
  go(node.body)
  return out
end

-- The text found for fn must be the one it was compiled from: its parameters and lines
-- (find_function), every line the loaded function has code on must hold code in the text, and
-- every one-line statement of the text must have code in the loaded function
-- (debug.getinfo(fn, "L")). Nil, or what disagrees.
local function lines_disagree(fn, info, node, text)
  local ok, li = pcall(debug.getinfo, fn, "L")
  local active = ok and li and li.activelines
  if not active then return nil end
  local code = code_lines(text, info.source, info.linedefined, info.lastlinedefined)
  for line in pairs(active) do
    if not code[line] then return "the loaded function has code on line " .. line .. ", which holds none now" end
  end
  for _, line in ipairs(code_statements(node)) do
    if not active[line] then return "line " .. line .. " holds a statement the loaded function does not have" end
  end
  return nil
end

local function source_changed(info, detail)
  error({ autograph_error = true, msg = string.format("%s:%d: autograph: the source text of this function does "
    .. "not match the function that was loaded (%s): was the file edited after it was loaded? Load it again, "
    .. "or stage it with {autograph = false}", info.short_src, info.linedefined, detail) }, 0)
end

-- ---- compiling -----------------------------------------------------------------------------------

-- Runs the passes on a function node (a copy: the passes rewrite it in place).
run_passes = function(node, ctx, passes)
  if node.params[1] and node.params[1].implicit then node.params[1].implicit = nil end  -- a method's self
  for _, pass in ipairs(passes) do
    pass.run(node, ctx)
    if #ctx.diagnostics > 0 then raise(ctx) end
  end
end

-- The code that the passes make of the first function in `text` (for tests
-- and tools). opts.passes: pass names to run, in the standard order (the
-- analysis runs whenever a later pass needs it); opts.upvalues: names that
-- are upvalues (default: the chunk's locals the function references).
function M.transform(text, opts)
  opts = opts or {}
  local chunk = opts.chunkname or "=transform"
  local tree = parser.parse(text, chunk)
  local node
  local function go(n)
    if node then return end
    if n.tag == "Function" then node = n; return end
    ast.each_child(n, go)
  end
  go(tree)
  if not node then error("transform: no function in the text", 2) end
  local upset = opts.upvalues
  if not upset then
    upset = upvalue_sets(tree)[node]
    upset["_ENV"] = nil
  end
  local passes = M.passes
  if opts.passes then
    local want = {}
    for _, n in ipairs(opts.passes) do want[n] = true end
    passes = {}
    for _, p in ipairs(M.passes) do
      local needs_analysis = want.loops or want.ifs or want.builtins or want.calls
      if want[p.name] or (p.name == "analysis" and needs_analysis) then passes[#passes + 1] = p end
    end
  end
  node = ast.copy(node)
  local ctx = new_ctx({ short_src = opts.file or "transform", linedefined = node.line }, upset)
  run_passes(node, ctx, passes)
  return codegen.generate(node, { line = node.line }), ctx
end

local function upvalue_names(fn, nups)
  local list, set = {}, {}
  for i = 1, nups do
    local name = debug.getupvalue(fn, i)
    if type(name) ~= "string" or not codegen.is_name(name) and name ~= "_ENV" then return nil end
    list[i] = name
    if name ~= "_ENV" then set[name] = true end
  end
  return list, set
end

-- The compiled entry for fn: {factory=, code=, info=} or {unchanged=true},
-- or nil and a reason when fn has no usable source. Raises conversion errors.
local function compile(fn)
  local info = debug.getinfo(fn, "Su")
  if info.what == "C" then return nil, "a C function" end
  if info.what == "main" then return nil, "a main chunk" end
  local upnames, upset = upvalue_names(fn, info.nups)
  if not upnames then return nil, "stripped bytecode" end
  local key = table.concat({ info.source, info.linedefined, info.lastlinedefined, info.nparams or "",
    tostring(info.isvararg), table.concat(upnames, ",") }, "\0")
  local text = source_of(info.source)
  if not text then return nil, "no source text (" .. info.short_src .. ")" end
  local entry = compiled[key]
  if entry and entry.text == text then return entry end   -- a file edited since is converted again
  local ok, tree = pcall(parse_chunk, info.source, text)
  if not ok then
    if type(tree) == "table" and tree.autograph_syntax then return nil, "a source that does not parse: " .. tree.msg end
    error(tree, 0)
  end
  local all = {}
  for _, n in ipairs(upnames) do all[n] = true end
  local node, why, mismatch = find_function(tree, info, all)
  if mismatch then source_changed(info, why) end
  if not node then return nil, why end
  local disagree = lines_disagree(fn, info, node, text)
  if disagree then source_changed(info, disagree) end
  node = ast.copy(node)
  local ctx = new_ctx(info, upset)
  run_passes(node, ctx, M.passes)
  if not ctx.changed then
    entry = { unchanged = true, info = info, text = text }
    compiled[key] = entry
    return entry
  end
  -- the chunk: the prelude on line 1, the function on its own lines
  local names = { "ag__" }
  for _, n in ipairs(upnames) do
    if n ~= "_ENV" and n ~= "ag__" then names[#names + 1] = n end
  end
  local prelude = ast.local_(names, { ast.node("Dots", 1) }, 1)
  local fline = node.line
  local chunk = ast.block({ prelude, ast.return_({ node }, fline) }, 1)
  local code = codegen.generate(chunk)
  -- no environment of its own: the converted function's _ENV is joined to fn's below, so code
  -- made from a function's source only ever runs in that function's environment
  local factory, err = load(code, info.source, "t", {})
  if not factory then
    error("the converted code of " .. info.short_src .. ":" .. info.linedefined
      .. " does not load: " .. tostring(err) .. "\n" .. code, 0)
  end
  entry = { factory = factory, code = code, info = info, upnames = upnames, text = text }
  compiled[key] = entry
  return entry
end

-- A new converted closure for fn from its compiled entry.
local function instantiate(entry, fn, mode)
  local newf = entry.factory(runtime.instance(mode))
  local index = {}
  for i, name in ipairs(entry.upnames) do index[name] = i end
  local j = 1
  while true do
    local name = debug.getupvalue(newf, j)
    if not name then break end
    local i = index[name]
    if i and name ~= "ag__" then debug.upvaluejoin(newf, j, fn, i) end
    j = j + 1
  end
  -- under LuaJIT (no _ENV upvalue) fn's globals are its environment: give newf the same one
  if rawget(_G, "setfenv") then rawget(_G, "setfenv")(newf, rawget(_G, "getfenv")(fn)) end
  is_converted[newf] = fn
  return newf
end

local warn = require("moongrad.warnings").warning

local function message(err)
  if type(err) == "table" and err.autograph_error then return err.msg end
  return "autograph: internal error while converting: " .. tostring(err)
    .. " (stage the function with {autograph = false} and report this)"
end

-- The converted closure (or fn itself when there is nothing to convert);
-- raises conversion errors. Second result: why fn was not converted.
local library_function   -- (below)
local function convert_closure(fn, mode)
  if is_converted[fn] or not_converted[fn] then return fn end
  local per = converted[fn]
  if per and per[mode] then return per[mode] end
  if library_function(fn) then   -- runs as it is (see library_function)
    not_converted[fn] = true
    return fn
  end
  local entry, why = compile(fn)
  local result = fn
  if entry and not entry.unchanged then result = instantiate(entry, fn, mode) end
  if not per then per = {}; converted[fn] = per end
  per[mode] = result
  return result, (not entry) and why or nil
end

-- ---- calls from converted code ---------------------------------------------------------------------

local library_prefixes = {}
local function add_library(src)
  local dir = src:match("^(@.*/)[^/]*$")
  if dir then library_prefixes[#library_prefixes + 1] = dir end
end
add_library(own_source)
add_library(own_source:gsub("/[^/]*$", "") .. "/passes/x.lua")
do
  local ok, func = pcall(require, "moongrad.func")
  if ok then add_library(debug.getinfo(func.func, "S").source) end
  local okc, core = pcall(require, "moongrad.core")   -- the LuaJIT binding is Lua too: never converted
  if okc and type(core.tensor) == "function" then
    local info = debug.getinfo(core.tensor, "S")
    if info.what ~= "C" then add_library(info.source) end
  end
end

function is_library(src)
  if src:find("/share/lua/", 1, true) or src:find("/lib/lua/", 1, true) then return true end
  for _, p in ipairs(library_prefixes) do
    if src:sub(1, #p) == p then return true end
  end
  return false
end

-- Functions of moongrad's library (and of installed Lua libraries) are never converted: they are
-- written to stage as they are, and their converted code would run with the library's
-- environment while routing its calls through hooks a script can replace (runtime.converter).
function library_function(f)
  local info = debug.getinfo(f, "S")
  return info.what ~= "C" and (is_library(info.source) or options.is_own_source(info.source)
    or builtin_source(info.source) ~= nil)
end

-- runtime.converter: what ag__.call does with a Lua function.
runtime.converter = function(f, mode)
  if is_converted[f] or not_converted[f] then return f end
  local per = converted[f]
  if per and per[mode] then return per[mode] end
  if debug.getinfo(f, "S").what == "C" or library_function(f) then
    not_converted[f] = true
    return f
  end
  local ok, res = pcall(convert_closure, f, mode)
  if ok then return res end
  if mode == "warn" then
    warn(message(res) .. "\n  (running it unconverted: mg.func(f, {autograph=\"warn\"}))")
    per = converted[f] or {}
    converted[f] = per
    per[mode] = f
    return f
  end
  error(message(res), 0)
end

-- ---- the API -----------------------------------------------------------------------------------

-- mg.autograph.do_not_convert(f): f runs as it is when converted code calls it.
function M.do_not_convert(f)
  not_converted[f] = true
  return f
end

local function fn_of(f)
  if type(f) == "table" and type(f.fn) == "function" then return f.fn end
  return f
end

-- convert(fn, opts): the converted function, for mg.func. opts.autograph:
-- true/nil (strict: a construct that cannot be converted is an error),
-- "warn" (warn and stage fn unconverted), false (no conversion).
function M.convert(fn, opts)
  local mode = opts and opts.autograph
  if mode == false then return fn end
  mode = (mode == "warn") and "warn" or "strict"
  local ok, res, why = pcall(convert_closure, fn, mode)
  if not ok then
    if mode == "warn" then
      warn(message(res) .. "\n  (staging it unconverted, as autograph=\"warn\" asks)")
      return fn
    end
    error(message(res), 0)
  end
  if why and not noted[fn] then
    noted[fn] = true
    local info = debug.getinfo(fn, "S")
    local what = info.what == "C" and tostring(fn) or (info.short_src .. ":" .. tostring(info.linedefined))
    require("moongrad.warnings").note(string.format("%s is staged without AutoGraph: %s", what, why))
  end
  return res
end

-- to_code(f): the converted source of f (a function or a staged function),
-- its lines numbered as in the user's file (from f's first line).
function M.to_code(f)
  f = fn_of(f)
  if type(f) ~= "function" then error("to_code: expected a function, got " .. type(f), 2) end
  local entry, why = compile(is_converted[f] or f)
  if not entry then error("to_code: cannot convert this function: " .. tostring(why), 2) end
  local info = entry.info
  if entry.unchanged then
    local text = source_of(info.source)
    local out, n = {}, 0
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
      n = n + 1
      if n >= info.linedefined and n <= info.lastlinedefined then out[#out + 1] = line end
    end
    return table.concat(out, "\n") .. "\n"
  end
  local out, n = {}, 0
  for line in (entry.code .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if n >= info.linedefined then
      if n == info.linedefined then line = line:gsub("^.-return function", "function", 1) end
      out[#out + 1] = line
    end
  end
  while out[#out] == "" do out[#out] = nil end
  return table.concat(out, "\n") .. "\n"
end

-- explain(f, ...): traces f with these arguments (as mg.func would) and
-- reports, statement by statement, what staging did with each if and loop.
function M.explain(f, ...)
  local fn = fn_of(f)
  local func = require("moongrad.func")
  local staged = func.func(fn, { name = "explain" })
  local rec = { index = {} }
  local saved = runtime.recorder
  runtime.recorder = rec
  local ok, err = pcall(staged.concrete, staged, ...)
  runtime.recorder = saved
  if not ok then error(err, 0) end
  local out = {}
  for _, e in ipairs(rec) do
    local line = string.format("%s: %s: %s", e.where, e.stmt, e.decision)
    if e.decision:find("unrolled$") then
      line = line .. string.format(" %d time%s", e.iterations, e.iterations == 1 and "" or "s")
    elseif e.iterations > 0 then
      line = line .. string.format(", %d iteration%s", e.iterations, e.iterations == 1 and "" or "s")
    end
    if e.count > 1 then line = line .. string.format(" (reached %d times)", e.count) end
    if e.detail then line = line .. " [" .. e.detail .. "]" end
    out[#out + 1] = line
  end
  if #out == 0 then out[1] = "no if or loop ran while tracing" end
  return table.concat(out, "\n")
end

-- Whether f is a closure made by convert (and its original).
function M.is_converted(f) return is_converted[f] ~= nil, is_converted[f] end

-- one module under both names ("autograph" installed/embedded, "autograph.init" in the build tree)
package.loaded["autograph"] = package.loaded["autograph"] or M
package.loaded["autograph.init"] = package.loaded["autograph.init"] or M
return M
