-- autograph.passes.compare: < <= > >= == ~= -> ag__.lt ... ag__.ne.
--
-- Lua turns a comparison's result into a boolean and calls __eq only
-- between two userdata, so `n ~= 1` with a tensor n is always true in plain
-- Lua. The runtime operators compare elementwise (a bool tensor) when an
-- operand is a tensor and are Lua's comparison otherwise. A comparison with
-- a literal nil or string stays as it is (identity, never a tensor).
-- Portable Lua.
local util = require("autograph.passes.util")

local M = {}
M.name = "compare"

local ops = { ["<"] = "lt", ["<="] = "le", [">"] = "gt", [">="] = "ge", ["=="] = "eq", ["~="] = "ne" }
local plain = { Nil = true, String = true }

function M.run(fn, ctx)
  util.rewrite(fn, function(n)
    if n.tag ~= "Binop" or not ops[n.op] then return nil end
    if plain[n.left.tag] or plain[n.right.tag] then return nil end
    ctx.changed = true
    return util.rt_call(ops[n.op], { n.left, n.right }, n.line)
  end)
end

return M
