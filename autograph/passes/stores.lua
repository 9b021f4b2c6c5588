-- autograph.passes.stores: writes into Lua tables go through the runtime, so a staged branch or
-- loop body that writes into a table made outside it is caught (issue: such a write happens once,
-- at trace time, and the table keeps the trace's value, not one per iteration or the taken branch's).
--
--   t[k] = v            -> ag__.setindex(t, k, v)
--   t.k, x = a, b       -> do local o1__, a1__, a2__ = t, a, b; ag__.setindex(o1__, "k", a1__); x = a2__ end
--   {...}               -> ag__.fresh({...})   (a table made here: writing into it is fine)
--   table.insert(t, v)  -> ag__.table_insert(t, v); also table.remove and rawset
-- The runtime checks only while a staged if/while is being traced (autograph/runtime.lua); plain
-- Lua runs as before. The table and key expressions of a multiple assignment are evaluated before
-- the values, as Lua does. Portable Lua.
local ast = require("autograph.ast")
local util = require("autograph.passes.util")

local M = {}
M.name = "stores"

local table_fns = { insert = "table_insert", remove = "table_remove" }

local function is_index(t) return t.tag == "Index" end

-- One `t[k] = v` as a runtime call on line `line`.
local function setindex(obj, key, value, line)
  return ast.node("CallStat", line, { call = util.rt_call("setindex", { obj, key, value }, line), generated = true })
end

local function rewrite_set(n, ctx)
  local any = false
  for _, t in ipairs(n.targets) do any = any or is_index(t) end
  if not any then return nil end
  ctx.changed = true
  local line = n.line
  if #n.targets == 1 and #n.exprs == 1 then   -- a call's extra results go to setindex's varargs
    local t = n.targets[1]
    return setindex(t.obj, t.key, n.exprs[1], line)
  end
  -- otherwise (several targets or values): the tables and keys first,
  -- then the values, then the stores
  ctx.store_temps = (ctx.store_temps or 0) + 1
  local tag = ctx.store_temps
  local names, exprs, stores = {}, {}, {}
  for i, t in ipairs(n.targets) do
    if is_index(t) then
      local o, k = "o" .. i .. "_" .. tag .. "__", "k" .. i .. "_" .. tag .. "__"
      names[#names + 1], exprs[#exprs + 1] = o, t.obj
      names[#names + 1], exprs[#exprs + 1] = k, t.key
    end
  end
  local firsts = #names
  local values = {}
  for i = 1, #n.targets do values[i] = "a" .. i .. "_" .. tag .. "__" end
  local decl_pre = ast.local_(names, exprs, line)
  local decl_vals = ast.local_(values, n.exprs, line)
  for i, t in ipairs(n.targets) do
    if is_index(t) then
      stores[#stores + 1] = setindex(ast.id("o" .. i .. "_" .. tag .. "__", line), ast.id("k" .. i .. "_" .. tag .. "__", line),
        ast.id(values[i], line), line)
    else
      stores[#stores + 1] = ast.set({ t }, { ast.id(values[i], line) }, line)
    end
  end
  local body = {}
  if firsts > 0 then body[1] = decl_pre end
  body[#body + 1] = decl_vals
  for _, s in ipairs(stores) do body[#body + 1] = s end
  local d = ast.node("Do", line, { body = ast.block(body, line), generated = true })
  return d
end

local function std_table_call(n)
  local f = n.func
  if f.tag == "Index" and f.obj.tag == "Id" and f.obj.name == "table" and f.obj.binding == nil
      and f.key.tag == "String" and table_fns[f.key.value] then
    return table_fns[f.key.value]
  end
  if f.tag == "Id" and f.name == "rawset" and f.binding == nil then return "rawset" end
  return nil
end

function M.run(fn, ctx)
  util.rewrite(fn, function(n)
    if n.tag == "Set" then return rewrite_set(n, ctx) end
    if n.tag == "Table" and not n.generated then
      ctx.changed = true
      local c = util.rt_call("fresh", { n }, n.line)
      n.generated = true   -- (the wrapped constructor is not wrapped again)
      return c
    end
    if n.tag == "Call" and not n.generated then
      local rt = std_table_call(n)
      if rt then
        ctx.changed = true
        return util.rt_call(rt, n.args, n.line)
      end
    end
  end)
end

return M
