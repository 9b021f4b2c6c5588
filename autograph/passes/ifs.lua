-- autograph.passes.ifs: if statements -> ag__.if_stmt.
--
--   if c then A else B end -> ag__.if_stmt(c, function() A end, function() B end, get, set, names)
-- (elseif chains were nested by the desugar pass). get/set are closures over
-- the statement's state: the locals assigned in a branch and live after it
-- (autograph.analysis). The then-function ends on the `else` line, the
-- else-function on the `end` line, where the state arguments go too.
-- Portable Lua.
local ast = require("autograph.ast")
local util = require("autograph.passes.util")

local M = {}
M.name = "ifs"

function M.run(fn, ctx)
  util.rewrite(fn, function(n)
    if n.tag ~= "If" then return nil end
    ctx.changed = true
    local c = n.clauses[1]
    local eline = n.endline
    local then_fn = ast.func({}, c.body, n.line, n.orelse and n.elseline or eline)
    local else_fn = n.orelse and ast.func({}, n.orelse, n.elseline, eline) or ast.nil_(eline)
    local args = { c.cond, then_fn, else_fn }
    for _, a in ipairs(util.state_args(n.state or {}, eline, n.scratch)) do args[#args + 1] = a end
    local call = util.rt_call("if_stmt", util.trim(args), n.line)
    return ast.node("CallStat", n.line, { call = call, generated = true, from = "If" })
  end)
end

return M
