-- autograph_passes_spec.lua — each AutoGraph transform on its own
-- (mg.autograph.transform runs a chosen subset of the passes on the first
-- function of a text): the exact code it produces for small inputs, that
-- this code loads, that the full pipeline keeps plain-Lua behaviour, and the
-- analysis that finds each statement's state (assigned and live after,
-- loop-carried, upvalues and captured locals always live).

local mg = require "moongrad"
local ag = mg.autograph
local runtime = ag.runtime

local function T(src, passes) return (ag.transform(src, { passes = passes })) end

-- The converted function of `src` (all passes), loaded with the runtime and env.
local function build(src, env)
  local code = T(src)
  env = setmetatable(env or {}, { __index = _G })
  local chunk = assert(load("local ag__ = ...; return " .. code, "=built", "t", env))
  return chunk(runtime.instance("strict")), code
end

-- The original function of `src`.
local function original(src, env)
  env = setmetatable(env or {}, { __index = _G })
  return assert(load("return " .. src:gsub("^return ", ""), "=orig", "t", env))()
end

local function same_behaviour(src, inputs, env)
  local f, code = build(src, env)
  local g = original(src, env)
  for _, args in ipairs(inputs) do
    local a = table.pack(g(table.unpack(args)))
    local b = table.pack(f(table.unpack(args)))
    local shown = {}
    for i = 1, #args do shown[i] = tostring(args[i]) end
    assert.same(a, b, "for the inputs " .. table.concat(shown, ", ") .. " of\n" .. code)
  end
end

local function fails(fn, ...)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error")
  err = tostring(type(err) == "table" and err.msg or err)
  for _, want in ipairs({ ... }) do
    assert(err:find(want, 1, true), ("message %q does not mention %q"):format(err, want))
  end
  return err
end

describe("pass desugar", function()
  it("nests elseif chains", function()
    assert.equal("function(a)\n  if a then x() else if b then y() else z() end end\nend",
      T("return function(a)\n  if a then x() elseif b then y() else z() end\nend", { "desugar" }))
  end)

  it("packs the varargs of a vararg function once", function()
    assert.equal([[
function(...) local vararg__ = ag__.pack(...)
  if a then return select("#", ag__.unpack(vararg__)) end
  return ag__.unpack(vararg__)
end]], T([[
return function(...)
  if a then return select("#", ...) end
  return ...
end]], { "desugar" }))
    assert.equal("function(x) return x end", T("return function(x) return x end", { "desugar" }))
  end)
end)

describe("pass continue", function()
  it("turns goto continue into a flag and guards the rest of the body", function()
    assert.equal([[
function(n)
  for i = 1, n do
    local continue__1 = false; if i == 2 then continue__1 = true end
    if not continue__1 then f(i) end

  end
end]], T([[
return function(n)
  for i = 1, n do
    if i == 2 then goto continue end
    f(i)
    ::continue::
  end
end]], { "continue" }))
  end)

  it("keeps behaviour for any label name and nested loops", function()
    same_behaviour([[
return function(n)
  local s = 0
  for i = 1, n do
    for j = 1, i do
      if (i + j) % 3 == 0 then goto skip end
      s = s + j
      ::skip::
    end
    if i % 2 == 0 then goto next end
    s = s * 2
    ::next::
  end
  return s
end]], { { 0 }, { 1 }, { 5 }, { 9 } })
  end)

  it("refuses other gotos with their line", function()
    fails(function() return T("return function(x)\n  if x then goto done end\n  x = 1\n  ::done::\nend") end,
      "transform:2: autograph: 'goto done' cannot be converted", "goto continue")
    fails(function() return T("return function(x)\n  ::top::\n  x = x + 1\n  goto top\nend") end,
      "transform:4:", "'goto top'")
    fails(function()
      return T("return function(n)\n for i = 1, n do\n  for j = 1, n do\n   goto continue\n  end\n  ::continue::\n end\nend")
    end, "transform:4:", "jumps out of an inner loop")
  end)
end)

describe("pass breaks", function()
  it("turns break into a flag in the loop condition and guards the rest", function()
    assert.equal([[
function(n)
  local break__1 = false; while not break__1 and n > 0 do
    n = n - 1
    if n == 3 then break__1 = true end
    if not break__1 then f(n) end
  end
end]], T([[
return function(n)
  while n > 0 do
    n = n - 1
    if n == 3 then break end
    f(n)
  end
end]], { "breaks" }))
  end)

  it("moves a repeat's until expression into the body first (its locals stay in scope)", function()
    assert.equal([[
function(n)
  local break__1 = false; local until__2 = false; repeat
    local m = n - 1
    if m == 5 then break__1 = true end
    if not break__1 then n = m
      until__2 = m < 0 end until break__1 or until__2
  return n
end]], T([[
return function(n)
  repeat
    local m = n - 1
    if m == 5 then break end
    n = m
  until m < 0
  return n
end]], { "breaks" }))
  end)

  it("keeps behaviour for while, repeat, numeric and generic for", function()
    same_behaviour([[
return function(n)
  local s, i = 0, 0
  while true do
    i = i + 1
    if i > n then break end
    s = s + i
  end
  repeat
    s = s + 1
    if s > 100 then break end
  until s % 7 == 0
  for k = 1, 10 do
    if k * k > n then break end
    s = s + k
  end
  for _, v in ipairs({ 5, 6, 7, 8 }) do
    if v == n then break end
    s = s + v
  end
  return s
end]], { { 0 }, { 3 }, { 6 }, { 50 } })
  end)
end)

describe("pass returns", function()
  it("turns returns in branches and loops into flags and one final return", function()
    local out = T([[
return function(n)
  for i = 1, n do
    if i > 3 then return i, 2 end
  end
  return 0
end]], { "returns" })
    assert.equal([[
function(n) local do_return__, retval__1, retval__2 = false, ag__.UNDEF, ag__.UNDEF
  for i = 1, n do
    if i > 3 then do_return__, retval__1, retval__2 = true, i, 2 end
  end
  if not do_return__ then do_return__, retval__1, retval__2 = true, 0, ag__.UNDEF end
  return ag__.retval(retval__1, retval__2) end]], out)
  end)

  it("leaves a function whose only return is its last statement alone", function()
    assert.equal("function(x)\n  if x then x = 1 end\n  return x\nend",
      T("return function(x)\n  if x then x = 1 end\n  return x\nend", { "returns" }))
  end)

  it("keeps behaviour: early returns, returns in nested loops, no return at all", function()
    same_behaviour([[
return function(a, b)
  if a < 0 then return -1 end
  for i = 1, a do
    local j = 0
    while j < b do
      j = j + 1
      if i * j == 6 then return i, j end
    end
  end
  if a == 0 then return end
  return a + b
end]], { { -3, 1 }, { 0, 2 }, { 2, 3 }, { 3, 2 }, { 1, 1 } })
  end)

  it("keeps behaviour: a repeat with a return, after an early return", function()
    same_behaviour([[
return function(x, y)
  if x > 5 then return 1 end
  repeat
    x = x + 1
    local z = x * 2
    if z == y then return 2, z end
  until z > 12
  return 3
end]], { { 6, 0 }, { 0, 8 }, { 0, 100 }, { 4, 10 } })
  end)

  it("refuses return ... inside a branch", function()
    fails(function() return T("return function(...)\n  if x then\n    return ...\n  end\nend") end,
      "transform:3: autograph: 'return ...' inside a branch or loop cannot be converted")
  end)
end)

describe("analysis", function()
  local analysis = require "autograph.analysis"
  local parser = require "autograph.parser"

  -- the state names of each control statement, in source order
  local function states(src, upvalues)
    local tree = parser.parse(src, "=a")
    local fn
    require("autograph.ast").walk(tree, { Function = function(n) fn = fn or n end })
    local controls = analysis.run(fn, { upvalues = upvalues or {} })
    table.sort(controls, function(a, b) return a.serial < b.serial end)
    local out = {}
    for i, s in ipairs(controls) do out[i] = table.concat(s.state, ",") end
    return out
  end

  it("an if's state: locals assigned in a branch and live after it", function()
    assert.same({ "y" }, states([[
return function(x)
  local y, dead, t = 0, 0, 0
  if x then y = 1; dead = 2; t = 3 else t = 4 end
  t = 5
  return y + t
end]]))
  end)

  it("a loop's state: loop-carried and live-after locals, not per-iteration temporaries", function()
    assert.same({ "s,i" }, states([[
return function(n)
  local s, i, tmp = 0, 0, 0
  while i < n do
    tmp = i * 2
    s = s + tmp
    i = i + 1
  end
  return s
end]]))
  end)

  it("a variable read only by the condition is loop state", function()
    assert.same({ "k" }, states([[
return function(n)
  local k = 0
  repeat k = k + 1 until k > n
end]]))
  end)

  it("upvalues and locals captured by closures are always live", function()
    assert.same({ "count,c" }, states([[
return function(x)
  local c = 0
  local get = function() return c end
  if x then count = 1; c = 2 end
  return get()
end]], { count = true }))
  end)

  it("locals declared inside the statement are not its state", function()
    assert.same({ "", "" }, states([[
return function(n)
  for i = 1, n do
    local a = i
    if a then local b = a; b = 2 end
  end
end]]))
  end)

  it("nested statements each get their own state", function()
    assert.same({ "s", "s" }, states([[
return function(n)
  local s = 0
  for i = 1, n do
    if i % 2 == 0 then s = s + i end
  end
  return s
end]]))
  end)
end)

describe("pass loops", function()
  it("while, repeat, numeric and generic for become runtime calls on the same lines", function()
    assert.equal([[
function(n)
  local s = 0
  ag__.while_stmt(function() return n > 0 end, function()
    s = s + n; n = n - 1
  end, function() return n, s end, function(...) n, s = ... end, {"n", "s"})
  ag__.repeat_stmt(function()
    s = s - 1
    return s < 0 end, function() return s end, function(...) s = ... end, {"s"})
  ag__.for_range(1, n, 2, function(i) s = s + i end, function() return s end, function(...) s = ... end, {"s"})
  ag__.for_stmt(ag__.pack(pairs(t)), function(k, v) s = s + v end, function() return s end, function(...) s = ... end, {"s"})
  return s
end]], T([[
return function(n)
  local s = 0
  while n > 0 do
    s = s + n; n = n - 1
  end
  repeat
    s = s - 1
  until s < 0
  for i = 1, n, 2 do s = s + i end
  for k, v in pairs(t) do s = s + v end
  return s
end]], { "loops" }))
  end)

  it("passes the break flag as the for loop's extra condition", function()
    local out = T("return function(n)\n for i = 1, n do\n  if i > 2 then break end\n end\nend",
      { "breaks", "loops" })
    assert.is_truthy(out:find("{\"break__1\"}, function() return not break__1 end)", 1, true), out)
  end)
end)

describe("pass ifs", function()
  it("if/else becomes ag__.if_stmt with closures over the live state, then the scratch state", function()
    assert.equal([[
function(x)
  local y, unused = 0, 0
  ag__.if_stmt(x > 0, function()
    y = x; unused = 1
  end, function()
    y = -x
  end, function() return y, unused end, function(...) y, unused = ... end, {"y", "unused", scratch = 1})
  return y
end]], T([[
return function(x)
  local y, unused = 0, 0
  if x > 0 then
    y = x; unused = 1
  else
    y = -x
  end
  return y
end]], { "ifs" }))
  end)

  it("an if with no state passes no state closures", function()
    assert.equal("function(x) ag__.if_stmt(x, function() f() end) end",
      T("return function(x) if x then f() end end", { "ifs" }))
  end)
end)

describe("pass logical", function()
  it("and/or/not become lazy runtime calls; c and a or b a conditional expression", function()
    assert.equal([[
function(x)
  local a = ag__.if_exp(x, function() return y end, function() return z end)
  return ag__.not_(a), ag__.and_(a, function() return b end), ag__.or_(a, function() return b end)
end]], T([[
return function(x)
  local a = x and y or z
  return not a, a and b, a or b
end]], { "logical" }))
  end)

  it("keeps Lua's semantics on Lua values", function()
    same_behaviour([[
return function(a, b, c)
  local r1 = a and b or c
  local r2 = (a or b) and c
  local r3 = not a and not b
  local calls = 0
  local function side() calls = calls + 1; return true end
  local r4 = (a and side()) or (b and side())
  return r1, r2, r3, r4, calls
end]], { { 1, 2, 3 }, { false, 2, 3 }, { 1, false, 3 }, { false, false, nil }, { nil, 1, false } })
  end)
end)

describe("pass compare", function()
  it("comparisons become runtime calls, except with literal nil and strings", function()
    assert.equal([[
function(x)
  return ag__.lt(x, 1), ag__.le(x, 1), ag__.gt(x, 1), ag__.ge(x, 1), ag__.eq(x, 1), ag__.ne(x, 1), x == nil, x ~= "s"
end]], T([[
return function(x)
  return x < 1, x <= 1, x > 1, x >= 1, x == 1, x ~= 1, x == nil, x ~= "s"
end]], { "compare" }))
  end)
end)

describe("pass builtins", function()
  it("#, the global ipairs and the global print", function()
    assert.equal([[
function(x)
  ag__.print(ag__.len(x))
  for i, v in ag__.ipairs(x) do end
  local print = function() end
  print(x)
end]], T([[
return function(x)
  print(#x)
  for i, v in ipairs(x) do end
  local print = function() end
  print(x)
end]], { "builtins" }))
  end)
end)

describe("pass calls", function()
  it("calls user functions through ag__.call / ag__.invoke, leaves the standard library and mg alone", function()
    assert.equal([[
function(x)
  ag__.call(f, x); ag__.invoke(o, "m", x); math.floor(x); mg.sum(x); tostring(x); local t = require("x")
  local math = {}; ag__.call(math.floor, x)
end]], T([[
return function(x)
  f(x); o:m(x); math.floor(x); mg.sum(x); tostring(x); local t = require("x")
  local math = {}; math.floor(x)
end]], { "calls" }))
  end)
end)

describe("the whole pipeline", function()
  it("produces code that loads and runs like the original on Lua values", function()
    same_behaviour([[
return function(n, m)
  local out = {}
  local s = 0
  for i = 1, n do
    if i % 2 == 0 and i ~= m then
      s = s + i
    elseif not (i < m) or i == 1 then
      s = s - 1
    else
      goto continue
    end
    out[#out + 1] = s
    if s > 20 then break end
    ::continue::
  end
  local k = 0
  while k < #out do
    k = k + 1
    if out[k] == m then return k, s end
  end
  return #out > 2 and out[3] or -1, s
end]], { { 0, 0 }, { 5, 2 }, { 10, 4 }, { 12, 3 }, { 30, 1 } })
  end)
end)
