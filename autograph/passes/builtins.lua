-- autograph.passes.builtins: #t, ipairs and print.
--
--   #t         -> ag__.len(t)      (a tensor's first dimension, else Lua's #)
--   ipairs(t)  -> ag__.ipairs(t)   (a tensor's rows, else Lua's ipairs)
--   print(...) -> ag__.print(...)  (mg.print while tracing: it prints when the graph runs)
-- Only the globals ipairs and print are rewritten (a local of that name is
-- the user's own function). Portable Lua.
local util = require("autograph.passes.util")

local M = {}
M.name = "builtins"

local globals = { ipairs = "ipairs", print = "print" }

function M.run(fn, ctx)
  util.rewrite(fn, function(n)
    if n.tag == "Unop" and n.op == "#" then
      ctx.changed = true
      return util.rt_call("len", { n.operand }, n.line)
    end
    if n.tag == "Call" and n.func.tag == "Id" and n.func.binding == nil and globals[n.func.name] then
      ctx.changed = true
      local c = util.rt_call(globals[n.func.name], n.args, n.line)
      c.builtin = true
      return c
    end
  end)
end

return M
