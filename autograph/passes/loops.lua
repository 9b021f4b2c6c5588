-- autograph.passes.loops: while / repeat / numeric for / generic for -> runtime calls.
--
--   while c do B end             -> ag__.while_stmt(function() return c end, function() B end, get, set, names)
--   repeat B until c             -> ag__.repeat_stmt(function() B; return c end, get, set, names)
--   for i = a, b, s do B end     -> ag__.for_range(a, b, s, function(i) B end, get, set, names, extra)
--   for k, v in e1, e2 do B end  -> ag__.for_stmt(ag__.pack(e1, e2), function(k, v) B end, get, set, names, extra)
-- get/set are closures over the loop's state (autograph.analysis), names its
-- variable names (for messages); extra is the break/return flag condition.
-- The pieces stay on their source lines: the header on the loop's line, the
-- body on its own lines, the closing arguments on the `end` line. Portable Lua.
local ast = require("autograph.ast")
local util = require("autograph.passes.util")

local M = {}
M.name = "loops"

local function fn_of(body, line, endline, params)
  return ast.func(params or {}, body, line, endline)
end

local function tail(s, args)
  local eline = s.endline
  for _, a in ipairs(util.state_args(s.state or {}, eline, s.scratch)) do args[#args + 1] = a end
  return args
end

local convert = {}

convert.While = function(s)
  local cond_fn = fn_of(ast.block({ ast.return_({ s.cond }, s.cond.line or s.line) }, s.line), s.line, nil)
  local body_fn = fn_of(s.body, s.line, s.endline)
  return util.trim(tail(s, { cond_fn, body_fn }))
end

convert.Repeat = function(s)
  local eline = s.endline
  s.body.body[#s.body.body + 1] = ast.return_({ s.cond }, eline)
  local body_fn = fn_of(s.body, s.line, nil)
  return util.trim(tail(s, { body_fn }))
end

convert.Fornum = function(s)
  local body_fn = fn_of(s.body, s.line, s.endline, { s.var })
  local args = tail(s, { s.start, s.stop, s.step or ast.num(1, s.line), body_fn })   -- an explicit nil step is Lua's error
  if s.extra then args[#args + 1] = ast.func({}, ast.block({ ast.return_({ s.extra }, s.endline) }), s.endline) end
  return util.trim(args)
end

convert.Forin = function(s)
  local body_fn = fn_of(s.body, s.line, s.endline, s.names)
  local args = tail(s, { util.rt_call("pack", s.exprs, s.line), body_fn })
  if s.extra then args[#args + 1] = ast.func({}, ast.block({ ast.return_({ s.extra }, s.endline) }), s.endline) end
  return util.trim(args)
end

local names = { While = "while_stmt", Repeat = "repeat_stmt", Fornum = "for_range", Forin = "for_stmt" }

function M.run(fn, ctx)
  util.rewrite(fn, function(n)
    local f = convert[n.tag]
    if not f then return nil end
    ctx.changed = true
    local call = util.rt_call(names[n.tag], f(n), n.line)
    local st = ast.node("CallStat", n.line, { call = call, generated = true, from = n.tag })
    return st
  end)
end

return M
