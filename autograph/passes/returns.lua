-- autograph.passes.returns: `return` inside branches and loops -> flags.
--
-- When a return is not the function's last statement, every return becomes
--   do_return__ = true; retval__1, ... = values
-- the statements after one that may return run under `if not do_return__`,
-- each loop that holds a return gets `not do_return__` in its condition,
-- and the function ends with `return ag__.retval(retval__1, ...)`. The
-- values start as ag__.UNDEF (TF's UndefinedReturnValue): a staged branch
-- that does not return takes the other branch's dtype and shape for them.
-- `return ...` of a vararg cannot be converted (its count is unknown).
-- Portable Lua.
local ast = require("autograph.ast")
local util = require("autograph.passes.util")
local breaks = require("autograph.passes.breaks")

local M = {}
M.name = "returns"

local FLAG = "do_return__"
local function is_return(s) return s.tag == "Return" end

function M.run(fn, ctx)
  local body = fn.body.body
  local needed = false
  for i, s in ipairs(body) do
    if i < #body or s.tag ~= "Return" then
      if util.contains(s, is_return, true) then needed = true end
    end
  end
  if not needed then return end
  -- how many values
  local k = 0
  util.visit(fn, function(n)
    if n.tag == "Return" then
      local last = n.exprs[#n.exprs]
      if last and last.from_dots then
        ctx.error(n, "'return ...' inside a branch or loop cannot be converted (the number of values is "
          .. "not known); return a fixed number of values")
      end
      if #n.exprs > k then k = #n.exprs end
    end
  end)
  local vals = {}
  for i = 1, k do vals[i] = "retval__" .. i end
  local spec
  spec = {
    is_jump = is_return,
    replace = function(s)
      local line = s.line
      local targets, exprs = { ast.id(FLAG, line) }, { ast.true_(line) }
      for i = 1, k do
        targets[#targets + 1] = ast.id(vals[i], line)
        local e = s.exprs[i]
        if e then exprs[#exprs + 1] = e
        elseif not (s.exprs[#s.exprs] and (s.exprs[#s.exprs].tag == "Call" or s.exprs[#s.exprs].tag == "Invoke")) then
          exprs[#exprs + 1] = util.rt("UNDEF", line)
        end
      end
      return { ast.set(targets, exprs, line) }
    end,
    contains = function(s) return util.contains(s, is_return, true) end,
  }
  local hoisted = {}
  spec.descend = function(s)
    if util.loops[s.tag] then
      if s.tag == "Repeat" then
        local l = breaks.hoist_until(s, ctx)
        if l then hoisted[s] = l end
      end
      breaks.add_exit(s, FLAG)
    end
    for _, b in ipairs(util.child_blocks(s, true)) do b.body = util.guard(b.body, FLAG, spec) end
  end
  local new = util.guard(body, FLAG, spec)
  fn.body.body = new
  -- the until flags of repeat loops go right before their loops
  if next(hoisted) then
    util.visit(fn, function(n)
      if n.tag == "Block" then
        local out, changed = {}, false
        for _, s in ipairs(n.body) do
          if hoisted[s] then out[#out + 1] = hoisted[s]; changed = true end
          out[#out + 1] = s
        end
        if changed then n.body = out end
      end
    end)
    new = fn.body.body
  end
  local line = fn.paren_line or fn.line
  local init_names, init_vals = { FLAG }, { ast.false_(line) }
  for i = 1, k do
    init_names[#init_names + 1] = vals[i]
    init_vals[#init_vals + 1] = util.rt("UNDEF", line)
  end
  table.insert(new, 1, ast.local_(init_names, init_vals, line))
  local rets = {}
  local eline = fn.endline
  for i = 1, k do rets[i] = ast.id(vals[i], eline) end
  new[#new + 1] = ast.return_({ util.rt_call("retval", rets, eline) }, eline)
  fn.body.body = new
  ctx.changed = true
end

return M
