-- autograph.passes.builtins: #t, ipairs, print and math.*.
--
--   #t          -> ag__.len(t)        (a tensor's first dimension, else Lua's #)
--   ipairs(t)   -> ag__.ipairs(t)     (a tensor's rows, else Lua's ipairs)
--   print(...)  -> ag__.print(...)    (mg.print while tracing: it prints when the graph runs)
--   math.f(...) -> ag__.math("f", ...) (mg's op when an argument is a tensor, else Lua's math.f)
-- A Lua number a staged loop or if assigns becomes a tensor in the graph, so
-- math.floor(v) on it would fail where the eager code ran (as Python's
-- math.floor works on TF tensors through __floor__). Only the globals
-- ipairs, print and math are rewritten (a local of that name is the user's
-- own). Portable Lua.
local ast = require("autograph.ast")
local util = require("autograph.passes.util")

local M = {}
M.name = "builtins"

local globals = { ipairs = "ipairs", print = "print" }
-- the math functions that have an elementwise op of the same meaning (runtime.lua's R.math)
local math_fns = {}
for w in ("floor ceil abs sqrt exp log sin cos max min"):gmatch("%S+") do math_fns[w] = true end

function M.run(fn, ctx)
  util.rewrite(fn, function(n)
    if n.tag == "Unop" and n.op == "#" then
      ctx.changed = true
      return util.rt_call("len", { n.operand }, n.line)
    end
    local f = n.tag == "Call" and n.func
    if f and f.tag == "Index" and f.obj.tag == "Id" and f.obj.name == "math" and f.obj.binding == nil
        and f.key.tag == "String" and math_fns[f.key.value] then
      ctx.changed = true
      local args = { ast.str(f.key.value, n.line) }
      for _, a in ipairs(n.args) do args[#args + 1] = a end
      local c = util.rt_call("math", args, n.line)
      c.builtin = true
      return c
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
