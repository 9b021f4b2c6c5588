-- autograph.passes.continue: `goto continue` -> a flag.
--
-- Lua has no `continue`; its idiom is a forward goto to a label at the end
-- of the loop body. Such a goto becomes `continue__N = true` (the flag is
-- declared false at the top of the body, so every iteration starts clear)
-- and the statements after it run under `if not continue__N then ... end`.
-- Every other goto is refused with its position: into or out of a branch,
-- backwards, or out of an inner loop (which would also have to break it).
-- Portable Lua.
local ast = require("autograph.ast")
local util = require("autograph.passes.util")

local M = {}
M.name = "continue"

-- The names of the labels that end a block (trailing labels).
local function trailing_labels(block)
  local set, k = {}, #block.body
  while k >= 1 and block.body[k].tag == "Label" do
    set[block.body[k].name] = true
    k = k - 1
  end
  return set, k
end

local function lower(loop, ctx)
  local flag = ctx.gensym("continue")
  local _, k = trailing_labels(loop.body)
  local stmts = {}
  for i = 1, k do stmts[i] = loop.body.body[i] end
  local function is_jump(s) return s.tag == "Goto" and s.continue_of == loop end
  local spec
  spec = {
    is_jump = is_jump,
    replace = function(s) return { ast.set({ ast.id(flag, s.line) }, { ast.true_(s.line) }, s.line) } end,
    contains = function(s) return util.contains(s, is_jump, false) end,
    descend = function(s)
      for _, b in ipairs(util.child_blocks(s, false)) do b.body = util.guard(b.body, flag, spec) end
    end,
  }
  local body = util.guard(stmts, flag, spec)
  local line = (stmts[1] and stmts[1].line) or loop.line
  table.insert(body, 1, ast.local_({ flag }, { ast.false_(line) }, line))
  loop.body.body = body
  ctx.changed = true
end

function M.run(fn, ctx)
  local targeted = {}
  local function go(n, loops)
    if util.user_function(n, fn) then return end
    if n.tag == "Goto" then
      local inner = loops[#loops]
      if inner and inner.cont_labels[n.label] then
        n.continue_of = inner
        targeted[#targeted + 1] = inner
      else
        local outer = false
        for i = 1, #loops - 1 do if loops[i].cont_labels[n.label] then outer = true end end
        if outer then
          ctx.error(n, "'goto " .. n.label .. "' jumps out of an inner loop to the end of an outer loop's "
            .. "body; only a goto to the end of the innermost loop's body (a continue) can be converted: "
            .. "set a flag and break the inner loop instead")
        else
          ctx.error(n, "'goto " .. n.label .. "' cannot be converted: only a forward goto to a label at the "
            .. "end of the enclosing loop's body (`goto continue`) is; use if/else or break")
        end
      end
      return
    end
    if util.loops[n.tag] then
      n.cont_labels = trailing_labels(n.body)
      loops[#loops + 1] = n
      ast.each_child(n, function(c) go(c, loops) end)
      loops[#loops] = nil
      return
    end
    ast.each_child(n, function(c) go(c, loops) end)
  end
  go(fn, {})
  local done = {}
  for _, loop in ipairs(targeted) do
    if not done[loop] then
      done[loop] = true
      lower(loop, ctx)
    end
  end
end

return M
