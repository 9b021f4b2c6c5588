-- autograph.passes.logical: and / or / not, and Lua's `c and a or b` idiom.
--
--   a and b      -> ag__.and_(a, function() return b end)   (b stays lazy)
--   a or b       -> ag__.or_(a, function() return b end)
--   not a        -> ag__.not_(a)
--   c and a or b -> ag__.if_exp(c, function() return a end, function() return b end)
-- The idiom becomes one conditional expression (a cond node when c is a
-- symbolic tensor), not an and_ and an or_ of tensors. Portable Lua.
local ast = require("autograph.ast")
local util = require("autograph.passes.util")

local M = {}
M.name = "logical"

local function thunk(e)
  local line = e.line
  return ast.func({}, ast.block({ ast.return_({ e }, line) }, line), line, nil)
end

local function unparen(e)
  while e.tag == "Paren" do e = e.expr end
  return e
end

function M.run(fn, ctx)
  -- mark the idiom before the post-order rewrite reaches its inner `and`
  util.visit(fn, function(n)
    if n.tag == "Binop" and n.op == "or" then
      local l = unparen(n.left)
      if l.tag == "Binop" and l.op == "and" then
        n.idiom, l.in_idiom = true, true
      end
    end
  end)
  util.rewrite(fn, function(n)
    if n.tag == "Binop" and (n.op == "and" or n.op == "or") then
      if n.in_idiom then return nil end
      ctx.changed = true
      if n.idiom then
        local l = unparen(n.left)
        return util.rt_call("if_exp", { l.left, thunk(l.right), thunk(n.right) }, n.line)
      end
      return util.rt_call(n.op == "and" and "and_" or "or_", { n.left, thunk(n.right) }, n.line)
    elseif n.tag == "Unop" and n.op == "not" then
      ctx.changed = true
      return util.rt_call("not_", { n.operand }, n.line)
    end
  end)
end

return M
