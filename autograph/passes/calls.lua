-- autograph.passes.calls: calls of user functions are converted too.
--
--   f(x)      -> ag__.call(f, x)          o:m(x) -> ag__.invoke(o, "m", x)
-- The runtime converts a Lua function with source on its first call (and
-- caches it); C functions, the stdlib, installed Lua libraries and
-- functions marked with mg.autograph.do_not_convert run as they are. Calls
-- that can only reach those are left as they are here, for readable code:
-- Lua's standard globals and libraries (math.floor, string.format, ...) and
-- mg.* (the moongrad namespace). Portable Lua.
local ast = require("autograph.ast")
local util = require("autograph.passes.util")

local M = {}
M.name = "calls"

local std_globals = {}
for w in ([[assert error pairs next select type tostring tonumber rawget rawset rawequal rawlen
  setmetatable getmetatable pcall xpcall require unpack collectgarbage]]):gmatch("%S+") do std_globals[w] = true end
local std_libs = {}
for w in ([[math string table io os debug coroutine utf8 package]]):gmatch("%S+") do std_libs[w] = true end

local function plain_callee(f)
  if f.tag == "Id" then return f.binding == nil and std_globals[f.name] end
  if f.tag == "Index" and f.obj.tag == "Id" then
    local base = f.obj
    if base.name == "mg" or base.name == util.RT then return true end
    return base.binding == nil and std_libs[base.name]
  end
  return false
end

function M.run(fn, ctx)
  util.rewrite(fn, function(n)
    if n.tag == "Call" then
      if n.generated or util.is_rt_call(n) or plain_callee(n.func) then return nil end
      ctx.changed = true
      local args = { n.func }
      for _, a in ipairs(n.args) do args[#args + 1] = a end
      return util.rt_call("call", args, n.line)
    elseif n.tag == "Invoke" then
      ctx.changed = true
      local args = { n.obj, ast.str(n.method, n.line) }
      for _, a in ipairs(n.args) do args[#args + 1] = a end
      return util.rt_call("invoke", args, n.line)
    end
  end)
end

return M
