-- autograph.passes.desugar: puts the function in the shape the other passes expect.
--
--   if a then A elseif b then B else C end  ->  if a then A else if b then B else C end end
--   `...` in a vararg function              ->  ag__.unpack(vararg__), with
--                                               local vararg__ = ag__.pack(...) first
-- (branches and loop bodies become closures, which cannot see the enclosing
-- function's `...`). Portable Lua.
local ast = require("autograph.ast")
local util = require("autograph.passes.util")

local M = {}
M.name = "desugar"

local function split_elseif(s)
  if #s.clauses <= 1 then return end
  local clauses = s.clauses
  -- build from the last clause inwards
  local inner_else, inner_elseline = s.orelse, s.elseline
  for i = #clauses, 2, -1 do
    local c = clauses[i]
    local n = ast.node("If", c.line, { clauses = { c }, orelse = inner_else, elseline = inner_elseline,
      endline = s.endline, col = c.col })
    inner_else = ast.block({ n }, c.line)
    inner_elseline = c.line
  end
  s.clauses = { clauses[1] }
  s.orelse, s.elseline = inner_else, inner_elseline
end

function M.run(fn, ctx)
  util.visit(fn, function(n)
    if n.tag == "If" then split_elseif(n) end
  end)
  if not fn.is_vararg then return end
  local used = false
  util.visit(fn, function(n) if n.tag == "Dots" then used = true end end)
  if not used then return end
  util.rewrite(fn, function(n)
    if n.tag == "Dots" then
      local c = util.rt_call("unpack", { ast.id("vararg__", n.line) }, n.line)
      c.from_dots = true
      return c
    end
  end)
  local line = fn.paren_line or fn.line
  local pack = ast.local_({ "vararg__" }, { util.rt_call("pack", { ast.node("Dots", line) }, line) }, line)
  table.insert(fn.body.body, 1, pack)
  ctx.changed = true
end

return M
