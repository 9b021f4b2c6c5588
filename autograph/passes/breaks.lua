-- autograph.passes.breaks: `break` -> a flag, as TF's AutoGraph does.
--
--   while c do A; if x then break end; B end
-- becomes
--   local break__1 = false
--   while not break__1 and c do A; if x then break__1 = true end; if not break__1 then B end end
-- A numeric or generic for gets the flag as its extra condition (`extra`,
-- checked before each iteration by the runtime). In a repeat-until the
-- until expression moves into the body first (`until__N = c` as its last
-- statement), because guarding the rest of the body would take its locals
-- out of the until expression's scope. Portable Lua.
local ast = require("autograph.ast")
local util = require("autograph.passes.util")

local M = {}
M.name = "breaks"

-- repeat B until c  ->  local until__N = false; repeat B; until__N = c until until__N
-- Returns the Local to put before the loop.
function M.hoist_until(loop, ctx)
  if loop.until_flag then return nil end
  local flag = ctx.gensym("until")
  local line = loop.endline or loop.line
  local body = loop.body.body
  body[#body + 1] = ast.set({ ast.id(flag, line) }, { loop.cond }, line)
  loop.cond = ast.id(flag, line)
  loop.until_flag = flag
  return ast.local_({ flag }, { ast.false_(loop.line) }, loop.line)
end

-- Adds `not flag` to a loop's condition (for `break` and `return` flags).
function M.add_exit(loop, flag)
  local line = loop.line
  if loop.tag == "While" then
    loop.cond = util.and_not(flag, loop.cond, line)
  elseif loop.tag == "Repeat" then
    loop.cond = ast.binop("or", ast.id(flag, line), loop.cond, line)
  else
    loop.extra = util.and_not(flag, loop.extra, line)
  end
end

local function is_break(s) return s.tag == "Break" end

local function lower(loop, ctx)
  local flag = ctx.gensym("break")
  local before = { ast.local_({ flag }, { ast.false_(loop.line) }, loop.line) }
  if loop.tag == "Repeat" then before[#before + 1] = M.hoist_until(loop, ctx) end
  local spec
  spec = {
    is_jump = is_break,
    replace = function(s) return { ast.set({ ast.id(flag, s.line) }, { ast.true_(s.line) }, s.line) } end,
    contains = function(s) return util.contains(s, is_break, false) end,
    descend = function(s)
      for _, b in ipairs(util.child_blocks(s, false)) do b.body = util.guard(b.body, flag, spec) end
    end,
  }
  loop.body.body = util.guard(loop.body.body, flag, spec)
  M.add_exit(loop, flag)
  ctx.changed = true
  before[#before + 1] = loop
  return { many = before }
end

function M.run(fn, ctx)
  util.rewrite(fn, function(n)
    if util.loops[n.tag] and util.contains(n.body, is_break, false) then return lower(n, ctx) end
  end)
end

return M
