-- moongrad.repl_session: what one session of the `moongrad` prompt remembers
-- between inputs (lua/repl.c drives it; doc/repl.md).
--
-- Each input is its own chunk, so a real `local` would be gone on the next
-- input. Instead every input runs with an environment of the session, and a
-- top-level `local` of an input is rewritten (on its own line, so line numbers
-- stay the user's) into a declaration in that environment:
--     local a, b <const> = f()   ->   _ENV["\0decl"]("nc", "a", "b") a, b = f()
--     local function g() ... end ->   _ENV["\0decl"]("f", "g") function g() ... end
-- The environment's raw fields are the session's locals with a non-nil value;
-- a miss goes to __index (declared locals that are nil or const, then the
-- globals) and a store of a missing key to __newindex (a declared local, or a
-- global: the globals of scripts never see a REPL local). A plain `local x = e`
-- declares x only when it is assigned, after e was evaluated, so
-- `local x = x + 1` reads the old x as Lua does; `local function` declares
-- first, so the function sees itself. `<const>` locals refuse a later store.
-- A `<close>` local's scope is the session, as a script's top level is the
-- script: its value is closed when the session ends (session.close), last
-- declared first. `local _ENV` stays a real local of its input. Locals inside
-- blocks and functions are
-- untouched. Every input gets its own chunk name ("=stdin[N]") and its text is
-- registered with AutoGraph, so functions typed at the prompt convert.
-- It loads under Lua 5.4 and LuaJIT, but the rewritten code names _ENV, so a
-- session works under Lua 5.4 only: the `moongrad` program's.
local lexer = require("autograph.lexer")

local M = {}

local DECL = "\0decl"

-- Byte offsets of the line starts of text, with Lua's newline rules (\r\n is one).
local function line_starts(text)
  local starts, i, n = { 1 }, 1, #text
  while i <= n do
    local a = text:find("[\n\r]", i)
    if not a then break end
    local c, d = text:byte(a), text:byte(a + 1)
    i = (d and d ~= c and (d == 10 or d == 13)) and a + 2 or a + 1
    starts[#starts + 1] = i
  end
  return starts
end

local OPEN = { ["function"] = true, ["do"] = true, ["if"] = true, ["repeat"] = true }
local CLOSE = { ["end"] = true, ["until"] = true }

-- The text of an input with its top-level locals made session locals; the
-- text itself when it has none (or does not tokenize: then load reports it).
function M.rewrite(text)
  if not text:find("local", 1, true) then return text end
  local ok, tk = pcall(lexer.tokenize, text, "=stdin")
  if not ok then return text end
  local types, lines, cols, raws = tk.types, tk.lines, tk.cols, tk.raws
  local starts = line_starts(text)
  local function pos(i) return starts[lines[i]] + cols[i] - 1 end
  local edits = {}                               -- {from, to, replacement}, in order
  local depth, i = 0, 1
  while i <= tk.n do
    local t = types[i]
    if OPEN[t] then depth = depth + 1
    elseif CLOSE[t] then depth = depth - 1
    elseif t == "local" and depth == 0 then
      if types[i + 1] == "function" and types[i + 2] == "<name>" then
        local name = raws[i + 2]
        if name ~= "_ENV" then
          edits[#edits + 1] = { pos(i), pos(i) + 4, string.format('_ENV["\\0decl"]("f", %q)', name) }
        end
      else
        local names, kinds, j, keep = {}, {}, i + 1, false
        while types[j] == "<name>" do
          local name, kind = raws[j], "n"
          j = j + 1
          if types[j] == "<" and types[j + 1] == "<name>" and types[j + 2] == ">" then
            local attrib = raws[j + 1]
            if attrib == "const" then kind = "c" elseif attrib == "close" then kind = "x" else keep = true end
            j = j + 3
          end
          if name == "_ENV" then keep = true end
          names[#names + 1], kinds[#kinds + 1] = name, kind
          if types[j] ~= "," then break end
          j = j + 1
        end
        local last = j - 1                        -- the last token of the name list
        if #names > 0 and not keep then
          local quoted = {}
          for k, n in ipairs(names) do quoted[k] = string.format("%q", n) end
          local rep = string.format('_ENV["\\0decl"]("%s", %s) %s', table.concat(kinds),
            table.concat(quoted, ", "), table.concat(names, ", "))
          if types[j] ~= "=" then rep = rep .. " = nil" end
          edits[#edits + 1] = { pos(i), pos(last) + #raws[last] - 1, rep }
        end
        i = last
      end
    end
    i = i + 1
  end
  if #edits == 0 then return text end
  local out, at = {}, 1
  for _, e in ipairs(edits) do
    out[#out + 1] = text:sub(at, e[1] - 1)
    out[#out + 1] = e[3]
    at = e[2] + 1
  end
  out[#out + 1] = text:sub(at)
  return table.concat(out)
end

-- v's __close, as Lua finds it (the raw field of its real metatable).
local function closer(v)
  local mt = debug.getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__close") or nil
end

-- A new session whose globals are G: {env =, load = function(text) ...}.
function M.new(G)
  local declared, isconst, consts = {}, {}, {}  -- name -> true; const names; their values
  local pending, old = {}, {}                   -- declared on their next store; values they shadow
  local toclose = {}                            -- <close> values, in declaration order
  local env, mt = {}, {}
  local count = 0

  -- _ENV["\0decl"](kinds, names...): "n" plain, "c" const, "x" close (declared
  -- when next stored), "f" local function (declared now).
  local function decl(kinds, ...)
    for k = 1, select("#", ...) do
      local name, kind = select(k, ...), kinds:sub(k, k)
      if kind == "f" then
        pending[name], old[name], isconst[name], consts[name] = nil, nil, nil, nil
        declared[name] = true
        rawset(env, name, nil)
      else
        if declared[name] and not pending[name] then
          if isconst[name] then old[name] = consts[name] else old[name] = rawget(env, name) end
        end
        pending[name] = kind
        rawset(env, name, nil)
      end
    end
  end

  -- After an input failed between a declaration and its store: the shadowed
  -- locals come back (the new ones were never declared).
  local function settle()
    for name in pairs(pending) do
      if declared[name] and not isconst[name] then rawset(env, name, old[name]) end
      pending[name], old[name] = nil, nil
    end
  end

  mt.__index = function(_, k)
    if k == DECL then return decl end
    if pending[k] then
      if declared[k] then return old[k] end
      return G[k]
    end
    if declared[k] then return consts[k] end
    return G[k]
  end
  mt.__newindex = function(t, k, v)
    local kind = pending[k]
    if kind then
      pending[k], old[k] = nil, nil
      declared[k] = true
      if kind == "x" then
        if v ~= nil and v ~= false and not closer(v) then
          isconst[k], consts[k] = true, nil
          error("variable '" .. tostring(k) .. "' got a non-closable value", 2)
        end
        toclose[#toclose + 1] = v
      end
      if kind == "c" or kind == "x" then
        isconst[k], consts[k] = true, v
      else
        isconst[k], consts[k] = nil, nil
        rawset(t, k, v)
      end
    elseif isconst[k] then
      error("attempt to assign to const variable '" .. tostring(k) .. "'", 2)
    elseif declared[k] then
      rawset(t, k, v)
    else
      G[k] = v
    end
  end
  -- raw fields of the metatable, for the prompt's completion (which runs no Lua code): the
  -- declared names and the const values
  mt.declared, mt.consts = declared, consts
  setmetatable(env, mt)

  local session = { env = env }

  -- Closes the session's <close> values, the last declared first; returns the
  -- messages of the errors that raised.
  function session.close()
    local errs = {}
    for i = #toclose, 1, -1 do
      local v = toclose[i]
      toclose[i] = nil
      if v then
        local ok, err = pcall(closer(v), v, nil)
        if not ok then errs[#errs + 1] = tostring(err) end
      end
    end
    return errs
  end

  -- The names of the session's locals (for completion and tests).
  function session.locals()
    local out = {}
    for name in pairs(declared) do if not pending[name] then out[#out + 1] = name end end
    table.sort(out)
    return out
  end

  -- The compiled input (an expression's "return" form first), or nil and
  -- Lua's message (ending in "<eof>" when the input is incomplete). `line`
  -- (default 1) is where the input starts in a paste: the inputs of one paste
  -- are one chunk, "stdin[N]", whose line numbers count from the paste's first
  -- line, and whose text AutoGraph gets as one (each input in a do block on
  -- its own lines, so the whole parses as a chunk).
  local group, group_lines, group_open = {}, 0, false   -- the paste's texts so far, their lines, an open do
  local function lines_of(t) return select(2, t:gsub("\n", "")) + 1 end
  function session.load(text, line)
    settle()
    line = line or 1
    if line <= 1 then
      count = count + 1
    end
    if line <= 1 or group_lines > line - 1 then group, group_lines, group_open = {}, 0, false end
    while group_lines < line - 1 do             -- lines of the paste no input was compiled from
      group[#group + 1], group_lines = "", group_lines + 1
    end
    local name = "=stdin[" .. count .. "]"
    local pad = string.rep("\n", line - 1)
    local code = "return " .. text .. ";"
    local fn, err = load(pad .. code, name, "t", env)
    if not fn then
      code = text
      fn, err = load(pad .. code, name, "t", env)   -- the user's own text, for the user's errors
      if fn then
        code = M.rewrite(text)
        if code ~= text then fn, err = load(pad .. code, name, "t", env) end
      end
    end
    -- keep the paste's lines aligned: a failed input holds its lines with blanks
    -- each input in a do block, closed on the next one's first line (its own last line may
    -- end in a comment); a failed input holds its lines with blanks
    if fn then
      group[#group + 1] = (group_open and "end do " or "do ") .. code
      group_open = true
    else
      group[#group + 1] = (text:gsub("[^\n]+", ""))
    end
    group_lines = group_lines + lines_of(text)
    -- AutoGraph re-reads the text of the functions it converts: keep it (the
    -- rewritten text, whose lines are the compiled ones)
    if fn and code:find("function", 1, true) then
      require("moongrad").autograph.register_source(name, table.concat(group, "\n") .. "\nend")
    end
    if not fn then return nil, err end
    return fn
  end

  return session
end

return M
