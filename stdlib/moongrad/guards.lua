-- moongrad.guards: the Lua state a staged function's trace read, checked at every call.
--
-- A trace runs Lua code once; the graph keeps what the plain-typed (number, string, boolean)
-- upvalues and globals it read were. Those become guards, checked at every call: a changed one
-- retraces. They cover every user function that runs during the trace, transitively: the staged
-- function, the Lua functions reachable through its upvalues (helpers), the functions its code
-- reads from globals, and those AutoGraph's converted calls reach (methods, functions in tables;
-- note_call). For each: its plain upvalues (one guard per upvalue cell), and the globals it reads
-- through its environment, which is swapped for a recording proxy while the trace runs: Lua 5.4's
-- _ENV upvalue cell (shared by the functions of a chunk), under LuaJIT each function's own
-- environment (setfenv). moongrad's own files and installed libraries are not user code.
-- Portable Lua (5.4 and LuaJIT).
local options = require("moongrad.options")

local M = {}
local pack = table.pack or function(...) return { n = select("#", ...), ... } end

local plain = { number = true, string = true, boolean = true }
local getfenv, setfenv = rawget(_G, "getfenv"), rawget(_G, "setfenv")
local MAX_GUARDED_FUNCTIONS = 512

local user_fn = setmetatable({}, { __mode = "k" })   -- function -> is_user_function's answer
local function is_user_function(f)
  if type(f) ~= "function" then return false end
  local known = user_fn[f]
  if known ~= nil then return known end
  local info = debug.getinfo(f, "S")
  local src = info.source
  local yes = info.what == "Lua" and
    not (options.is_own_source(src) or src:find("/share/lua/", 1, true) or src:find("/lib/lua/", 1, true))
  user_fn[f] = yes
  return yes
end

local Collector = {}
Collector.__index = Collector
local collector = nil   -- the innermost trace's, while it runs

local function new_collector()
  return setmetatable({ guards = {}, fns = {}, nfns = 0, cells = {}, proxies = {}, is_proxy = {}, restore = {},
    active = true }, Collector)
end

-- A proxy of env that records the plain globals read through it (and collects the functions).
function Collector:proxy(env)
  local p = self.proxies[env]
  if p then return p end
  local seen, me = {}, self
  p = setmetatable({}, {
    __index = function(_, k)
      local v = env[k]
      if me.active and not seen[k] then
        if plain[type(v)] then
          seen[k] = true
          me.guards[#me.guards + 1] = { kind = "global", env = env, name = k, value = v }
        elseif type(v) == "function" then
          seen[k] = true
          me:add(v)
        end
      end
      return v
    end,
    __newindex = env,
    __pairs = function() return next, env, nil end,
  })
  self.proxies[env] = p
  self.is_proxy[p] = true   -- (a function sharing an already swapped cell sees the proxy)
  return p
end

-- Adds f and the user functions reachable through its upvalues.
function Collector:add(f)
  local stack = { f }
  while #stack > 0 do
    local g = stack[#stack]
    stack[#stack] = nil
    if not self.fns[g] and self.nfns < MAX_GUARDED_FUNCTIONS and is_user_function(g) then
      self.fns[g] = true
      self.nfns = self.nfns + 1
      local i = 1
      while true do
        local name, v = debug.getupvalue(g, i)
        if not name then break end
        local id = debug.upvalueid(g, i)
        if not self.cells[id] then
          self.cells[id] = true
          if name == "_ENV" and type(v) == "table" and not self.is_proxy[v] then
            local index = i   -- (i moves on: the restore needs this upvalue's)
            debug.setupvalue(g, index, self:proxy(v))
            self.restore[#self.restore + 1] = function() debug.setupvalue(g, index, v) end
          elseif plain[type(v)] then
            self.guards[#self.guards + 1] = { kind = "upvalue", fn = g, index = i, name = name, value = v }
          elseif type(v) == "function" then
            stack[#stack + 1] = v
          end
        end
        i = i + 1
      end
      if setfenv then   -- LuaJIT: each function's own environment
        local env = getfenv(g)
        if type(env) == "table" and not self.is_proxy[env] then
          setfenv(g, self:proxy(env))
          self.restore[#self.restore + 1] = function() setfenv(g, env) end
        end
      end
    end
  end
end

function Collector:finish()
  self.active = false
  for i = #self.restore, 1, -1 do self.restore[i]() end
end

-- AutoGraph's converted calls report the Lua functions they call (methods, functions found in
-- tables): their state is guarded too.
function M.note_call(f)
  if collector and type(f) == "function" and not collector.fns[f] then collector:add(f) end
end

local host_fns = nil  -- while tracing: the functions given to mg.lua_function

-- mg.lua_function reports its Lua function: the upvalues it shares are state, not guards.
function M.note_host(fn)
  if host_fns and type(fn) == "function" then host_fns[#host_fns + 1] = fn end
end

-- A guard's value now. Guards hold plain values of user functions only, and M.hold is public
-- (a sandboxed script can call it with guards of its own making): an upvalue of anything else is
-- never read, and a value that is no longer plain comes back as its type's name, so no table or
-- function of the library's is ever handed out.
local NOT_PLAIN = setmetatable({}, { __tostring = function() return "a value of another type" end,
  __metatable = false })
local function guard_now(gd)
  local v
  if gd.kind == "upvalue" then
    if not is_user_function(gd.fn) or type(gd.index) ~= "number" then return NOT_PLAIN end
    v = select(2, debug.getupvalue(gd.fn, gd.index))
  else
    v = gd.env[gd.name]
  end
  if plain[type(v)] or v == nil then return v end
  return NOT_PLAIN
end

-- The guards that are state rather than inputs: values the trace itself
-- changed (a Lua counter of traces) and upvalues shared with a function the
-- graph calls (a counter bumped by mg.lua_function at run time). Guarding
-- those would retrace on every call.
local function drop_state_guards(guards, hosts)
  local shared = {}
  for _, h in ipairs(hosts) do
    local j = 1
    while debug.getupvalue(h, j) do
      shared[debug.upvalueid(h, j)] = true
      j = j + 1
    end
  end
  local kept = {}
  for _, gd in ipairs(guards) do
    if guard_now(gd) == gd.value and not (gd.kind == "upvalue" and shared[debug.upvalueid(gd.fn, gd.index)]) then
      kept[#kept + 1] = gd
    end
  end
  return kept
end

-- Runs fn(...) collecting the guards; returns pcall's results and the guards.
function M.run(fn, ...)
  local saved_hosts, saved_collector = host_fns, collector
  host_fns = {}
  local c = new_collector()
  collector = c
  local ok, err = pcall(c.add, c, fn)
  local res
  if ok then res = pack(pcall(fn, ...)) else res = pack(false, err) end
  c:finish()
  collector = saved_collector
  local hosts = host_fns
  host_fns = saved_hosts
  if saved_hosts then  -- an enclosing trace also owns these host calls
    for _, h in ipairs(hosts) do saved_hosts[#saved_hosts + 1] = h end
  end
  if saved_collector then  -- and guards what this trace read (its functions ran in it)
    for _, gd in ipairs(c.guards) do saved_collector.guards[#saved_collector.guards + 1] = gd end
  end
  return res, drop_state_guards(c.guards, hosts)
end

function M.hold(guards)
  for _, gd in ipairs(guards) do
    local now = guard_now(gd)
    if now ~= gd.value then return false, gd, now end
  end
  return true
end

-- "upvalue 'k' of the function at helpers.lua:3 (was 1, now 100)", for retrace messages.
function M.describe(gd, now, traced)
  local what = string.format("%s '%s'", gd.kind, tostring(gd.name))
  -- a local of the REPL session (moongrad.repl_session), read through the environment
  local mt = gd.kind == "global" and debug.getmetatable(gd.env)
  local declared = type(mt) == "table" and rawget(mt, "declared")
  if type(declared) == "table" and declared[gd.name] then
    what = string.format("local '%s' of the prompt", tostring(gd.name))
  end
  if gd.kind == "upvalue" and gd.fn ~= traced then
    local info = debug.getinfo(gd.fn, "S")
    what = what .. string.format(" of the function at %s:%d", info.short_src, info.linedefined)
  end
  return string.format("%s (was %s, now %s)", what, tostring(gd.value), tostring(now))
end

return M
