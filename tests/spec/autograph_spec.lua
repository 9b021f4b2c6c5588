-- autograph_spec.lua — AutoGraph as users meet it through mg.func: conversion
-- by default, to_code (golden outputs), line-preserving loading (errors and
-- tracebacks name the user's file and line), shared upvalues and _ENV,
-- caching, conversion of called functions (and what is left alone),
-- strict/warn modes, functions without source, explain, print, eager
-- debugging, the error message of every case the issue lists, and the TF
-- blog's matmul_many: one while node with mg.range, 100 matmuls with a Lua for.

local mg = require "moongrad"
local ag = mg.autograph

local THIS = debug.getinfo(1, "S").short_src

local H = require "tests.spec.helpers"
local fails = H.fails
local function near(a, b) return H.near(a, b, 1e-5) end

-- Runs fn with io.stderr replaced; returns what was written to it.
local function stderr_of(fn)
  local saved, buf = io.stderr, {}
  io.stderr = { write = function(self, ...) for _, s in ipairs({ ... }) do buf[#buf + 1] = tostring(s) end return self end }
  local ok, err = pcall(fn)
  io.stderr = saved
  if not ok then error(err, 0) end
  return table.concat(buf)
end

-- Runs fn with io.write captured.
local function stdout_of(fn)
  local saved, buf = io.write, {}
  io.write = function(...) for _, s in ipairs({ ... }) do buf[#buf + 1] = tostring(s) end end
  local ok, err = pcall(fn)
  io.write = saved
  if not ok then error(err, 0) end
  return table.concat(buf)
end

local function line_of(f, offset) return debug.getinfo(f, "S").linedefined + offset end

-- ---- functions for the golden to_code tests (their text is the input) -----------------------

local function golden_abs(x)
  if x < 0 then
    x = -x
  end
  return x
end

local function golden_collatz(n)
  local steps = 0
  while n ~= 1 do
    if n % 2 == 0 then n = mg.floordiv(n, 2) else n = 3 * n + 1 end   -- not //: LuaJIT parses this file too
    steps = steps + 1
  end
  return steps
end

local function golden_sum(xs)
  local s = 0
  for i = 1, #xs do
    if xs[i] > 0 and i > 1 then s = s + xs[i] end
  end
  return s
end

local function golden_find(n, k)
  for i = 1, n do
    if i * i > k then return i end
  end
  return -1
end

local function golden_range(x, w)
  for _ in mg.range(100) do
    x = mg.matmul(x, w)
  end
  return x
end

describe("mg.func converts with AutoGraph by default", function()
  it("a comparison on a symbolic tensor works converted and is the known error unconverted", function()
    local f = function(x)
      if x < 0 then return -x end
      return x
    end
    near(mg.func(f)(mg.tensor(-2.0)), 2)
    near(mg.func(f)(mg.tensor(3.0)), 3)
    fails(function() return mg.func(f, { autograph = false })(mg.tensor(1.0)) end, "'<' on a symbolic tensor")
  end)

  it("mg.autograph, mg.range and to_code are wired", function()
    assert.equal("table", type(mg.autograph))
    assert.equal((ag.range(3)), (mg.range(3)))   -- the same iterator
    assert.equal("function", type(mg.autograph.to_code))
    assert.equal(ag, require("moongrad").autograph)
  end)
end)

describe("to_code", function()
  it("golden: if", function()
    assert.equal([[
function(x)
  ag__.if_stmt(ag__.lt(x, 0), function()
    x = -x
  end, nil, function() return x end, function(...) x = ... end, {"x"})
  return x
end
]], ag.to_code(golden_abs))
  end)

  it("golden: while with an if inside", function()
    assert.equal([[
function(n)
  local steps = 0
  ag__.while_stmt(function() return ag__.ne(n, 1) end, function()
    ag__.if_stmt(ag__.eq(n % 2, 0), function() n = mg.floordiv(n, 2) end, function() n = 3 * n + 1 end, function() return n end, function(...) n = ... end, {"n"})
    steps = steps + 1
  end, function() return n, steps end, function(...) n, steps = ... end, {"n", "steps"})
  return steps
end
]], ag.to_code(golden_collatz))
  end)

  it("golden: numeric for, #, and", function()
    assert.equal([[
function(xs)
  local s = 0
  ag__.for_range(1, ag__.len(xs), 1, function(i)
    ag__.if_stmt(ag__.and_(ag__.gt(xs[i], 0), function() return ag__.gt(i, 1) end), function() s = s + xs[i] end, nil, function() return s end, function(...) s = ... end, {"s"})
  end, function() return s end, function(...) s = ... end, {"s"})
  return s
end
]], ag.to_code(golden_sum))
  end)

  it("golden: return inside a loop", function()
    assert.equal([[
function(n, k) local do_return__, retval__1 = false, ag__.UNDEF
  ag__.for_range(1, n, 1, function(i)
    ag__.if_stmt(ag__.gt(i * i, k), function() do_return__, retval__1 = true, i end, nil, function() return do_return__, retval__1 end, function(...) do_return__, retval__1 = ... end, {"do_return__", "retval__1"})
  end, function() return do_return__, retval__1 end, function(...) do_return__, retval__1 = ... end, {"do_return__", "retval__1"}, function() return ag__.not_(do_return__) end)
  ag__.if_stmt(ag__.not_(do_return__), function() do_return__, retval__1 = true, -1 end, nil, function() return retval__1, do_return__ end, function(...) retval__1, do_return__ = ... end, {"retval__1", "do_return__", scratch = 1})
  return ag__.retval(retval__1) end
]], ag.to_code(golden_find))
  end)

  it("golden: mg.range", function()
    assert.equal([[
function(x, w)
  ag__.for_stmt(ag__.pack(mg.range(100)), function(_)
    x = mg.matmul(x, w)
  end, function() return x end, function(...) x = ... end, {"x"})
  return x
end
]], ag.to_code(golden_range))
  end)

  it("accepts a staged function and keeps every line where it was", function()
    local code = ag.to_code(mg.func(golden_collatz))
    local n = 0
    for _ in code:gmatch("\n") do n = n + 1 end
    local info = debug.getinfo(golden_collatz, "S")
    assert.equal(info.lastlinedefined - info.linedefined + 1, n)
  end)
end)

describe("loading the converted function", function()
  it("keeps the chunk name and lines: errors and tracebacks point at the user's lines", function()
    local function bad(x)
      local t = nil
      if x > 0 then
        return t.field       -- line +3
      end
      return x
    end
    local err = fails(function() return mg.func(bad)(mg.tensor(1.0)) end,   -- LuaJIT says "index upvalue 't' (a nil value)"
      THIS .. ":" .. line_of(bad, 3) .. ": attempt to index ", "a nil value")
    local conv = ag.convert(bad)
    assert.is_true(ag.is_converted(conv))
    local info, orig = debug.getinfo(conv, "S"), debug.getinfo(bad, "S")
    assert.equal(orig.source, info.source)
    assert.equal(orig.linedefined, info.linedefined)
    assert.equal(orig.lastlinedefined, info.lastlinedefined)
    local ok, tb = xpcall(conv, debug.traceback, 1)
    assert.is_false(ok)
    assert.is_truthy(tb:find(THIS .. ":" .. line_of(bad, 3) .. ":", 1, true), tb)
    assert.is_truthy(err)
  end)

  it("joins the upvalues: shared state stays shared both ways", function()
    local count, limit = 0, 2
    local function f(x)
      count = count + 1
      if x > limit then x = x - limit end
      return x
    end
    local c = ag.convert(f)
    assert.equal(3, c(5)); assert.equal(1, count)
    limit = 10                           -- a change made outside is seen inside
    assert.equal(5, c(5)); assert.equal(2, count)
    f(1); assert.equal(3, count)         -- the original and the converted share `count`
    local sf = mg.func(f)
    near(sf(mg.tensor(12.0)), 2)
  end)

  it("keeps the function's _ENV", function()
    local env = { offset = 100, mg = mg }
    local f = load("return function(x) if x > 0 then return x + offset end return x - offset end", nil, "t", env)()
    near(mg.func(f)(mg.tensor(1.0)), 101)
    near(mg.func(f)(mg.tensor(-1.0)), -101)
    env.offset = 7
    near(mg.func(f)(mg.tensor(1.0)), 8)
  end)

  it("converts methods (self) and caches per closure", function()
    local obj = { k = 2 }
    function obj:apply(x)
      if x > 0 then return x * self.k end
      return x
    end
    near(mg.func(function(x) return obj:apply(x) end)(mg.tensor(3.0)), 6)
    local c1, c2 = ag.convert(obj.apply), ag.convert(obj.apply)
    assert.equal(c1, c2)
    assert.equal(6, c1(obj, 3))
  end)

  it("converts the functions it calls, once, and leaves C functions and the stdlib alone", function()
    local function helper(v)
      if v > 0 then return v end
      return -v
    end
    local calls_converted
    local f = mg.func(function(x)
      calls_converted = true
      return helper(x) + mg.sum(x) + math.abs(-1)
    end)
    near(f(mg.tensor(-2.0)), 1)
    assert.is_true(calls_converted)
    local code = ag.to_code(f)
    assert.is_truthy(code:find("ag__.call(helper, x)", 1, true))
    assert.is_truthy(code:find("mg.sum(x)", 1, true))
    assert.is_falsy(ag.is_converted(mg.sum))
  end)

  it("converts a file again after it was edited", function()
    local path = os.tmpname()
    local function write(body)
      local f = assert(io.open(path, "w"))
      f:write("return function(x)\n  if x > 0 then return x * " .. body .. " end\n  return x\nend\n")
      f:close()
    end
    write("2")
    near(mg.func(dofile(path))(mg.tensor(3.0)), 6)
    write("10")
    near(mg.func(dofile(path))(mg.tensor(3.0)), 30)
    os.remove(path)
  end)

  it("refuses a function whose source file was edited after it was loaded", function()
    local path = os.tmpname()
    local function write(text)
      local f = assert(io.open(path, "w"))
      f:write(text)
      f:close()
    end
    -- the same lines and parameters, another body: line 2 held code and now holds a comment
    write("return function(x)\n  local y = x * 2\n  if y > 0 then return y end\n  return x\nend\n")
    local f = dofile(path)
    write("return function(x)\n  -- y = x * 2\n  if x > 0 then return x * 3 end\n  return x\nend\n")
    fails(function() return mg.func(f)(mg.tensor(3.0)) end, "does not match the function that was loaded")
    -- a statement on a line the loaded function has no code on
    write("return function(x)\n\n  if x > 0 then return x * 2 end\n  return x\nend\n")
    f = dofile(path)
    write("return function(x)\n  x = x + 1\n  if x > 0 then return x * 2 end\n  return x\nend\n")
    fails(function() return mg.func(f)(mg.tensor(3.0)) end, "line 2 holds a statement the loaded function does not have")
    -- lines moved
    write("-- a new first line\nreturn function(x)\n  if x > 0 then return x * 2 end\n  return x\nend\n")
    fails(function() return mg.func(f)(mg.tensor(3.0)) end, "was the file edited after it was loaded?")
    -- loaded again, it converts
    near(mg.func(dofile(path))(mg.tensor(3.0)), 6)
    os.remove(path)
  end)

  it("do_not_convert keeps a function as it is", function()
    local helper = ag.do_not_convert(function(v)
      if v > 0 then return v end
      return -v
    end)
    fails(function() return mg.func(function(x) return helper(x) end)(mg.tensor(1.0)) end, "on a symbolic tensor")
  end)
end)

describe("strict, warn and functions without source", function()
  local function with_goto(x)
    if x > 0 then goto done end
    x = x + 1
    ::done::
    return x
  end

  it("strict (the default): a construct that cannot be converted is an error at its line", function()
    fails(function() return mg.func(with_goto) end,
      THIS .. ":" .. line_of(with_goto, 1) .. ": autograph: 'goto done' cannot be converted")
  end)

  it("autograph='warn' warns and stages the function unconverted", function()
    local f
    local text = stderr_of(function() f = mg.func(with_goto, { autograph = "warn" }) end)
    assert.is_truthy(text:find("warning", 1, true))
    assert.is_truthy(text:find("'goto done' cannot be converted", 1, true))
    assert.is_truthy(text:find("unconverted", 1, true))
    fails(function() return f(mg.tensor(1.0)) end, "on a symbolic tensor")
  end)

  it("stripped bytecode and C functions stage unconverted with a note, once", function()
    local src = function(x) return x * 2 end
    local stripped = load(string.dump(src, true), "=stripped", "b")
    local f
    local text = stderr_of(function() f = mg.func(stripped); mg.func(stripped) end)
    local _, count = text:gsub("staged without AutoGraph", "")
    assert.equal(1, count)
    near(f(mg.tensor(3.0)), 6)
    text = stderr_of(function() mg.func(print) end)
    assert.is_truthy(text:find("a C function", 1, true))
  end)

  it("register_source cannot replace the source of the library's own chunks", function()
    local src = debug.getinfo(mg.save, "S").source
    fails(function() ag.register_source(src, "return function() return debug end") end,
      "only the source of chunks you loaded yourself")
    fails(function() ag.register_source(debug.getinfo(ag.convert, "S").source, "") end, "moongrad library")
    fails(function() ag.register_source("=x", 5) end, "two strings")
    fails(function() ag.register_source(nil, "return 1") end, "two strings")
    fails(function() ag.register_source(src, nil) end, "only the source of chunks you loaded yourself")
  end)

  it("a chunk without source text can register it", function()
    local text = "return function(x) if x > 1 then return x end return 1 - x end"
    local f = load(text, "=console")()
    assert.is_truthy(stderr_of(function() mg.func(f) end):find("no source text", 1, true))
    ag.register_source("=console", text)
    local g = load(text, "=console")()
    near(mg.func(g)(mg.tensor(0.25)), 0.75)
    ag.register_source("=console", nil)      -- forgotten: a new chunk of that name has no text again
    local h = load(text, "=console")()
    assert.is_truthy(stderr_of(function() mg.func(h) end):find("no source text", 1, true))
  end)
end)

describe("explain", function()
  it("reports what staging did with each statement", function()
    local function f(x)
      for i = 1, 3 do x = x + i end           -- +1
      for _ in mg.range(4) do x = x * 2 end    -- +2
      if x > 0 then x = -x end                 -- +3
      if 1 > 0 then x = x + 1 end              -- +4
      return x
    end
    local report = ag.explain(f, mg.tensor(1.0))
    local l = function(k) return THIS .. ":" .. line_of(f, k) .. ": " end
    assert.is_truthy(report:find(l(1) .. "for: run at trace time as plain Lua, unrolled 3 times", 1, true), report)
    assert.is_truthy(report:find(l(2) .. "for: staged as a graph while [loop variables: x]", 1, true), report)
    assert.is_truthy(report:find(l(3) .. "if: staged as a graph cond [state: x]", 1, true), report)
    assert.is_truthy(report:find(l(4) .. "if: run at trace time as plain Lua", 1, true), report)
  end)
end)

describe("print and eager debugging", function()
  it("print becomes mg.print: it prints on every call of the graph", function()
    local f = mg.func(function(x)
      print("x is", x)
      return x + 1
    end)
    local out
    local note = stderr_of(function()
      out = stdout_of(function() f(mg.tensor(1)); f(mg.tensor(2)) end)
    end)
    assert.equal("x is\ttensor(1, dtype=int64)\nx is\ttensor(2, dtype=int64)\n", out)
    local _, notes = note:gsub("print in a staged function is mg.print", "")
    assert.is_true(notes <= 1)   -- once per process (an earlier test may have shown it)
  end)

  it("run_functions_eagerly runs the converted function on eager tensors, same results", function()
    local seen = {}
    local f = mg.func(function(n)
      local steps = 0
      while n ~= 1 do
        seen[#seen + 1] = mg.executing_eagerly()
        if n % 2 == 0 then n = mg.floordiv(n, 2) else n = 3 * n + 1 end
        steps = steps + 1
      end
      return steps
    end)
    mg.config.run_functions_eagerly(true)
    local ok, r = pcall(f, mg.tensor(6))
    mg.config.run_functions_eagerly(false)
    assert.is_true(ok, r)
    assert.equal(8, #seen)
    assert.is_true(seen[1])
    near(r, 8)
    -- staged, the write into `seen` would happen once, at trace time: an error, not one element
    fails(function() return f(mg.tensor(6)) end, "writes into a Lua table made outside it")
    near(mg.func(f.fn, { eager = true })(mg.tensor(27)), 111)
  end)
end)

describe("error messages point at the user's file and line", function()
  it("a variable defined in only one branch and used after", function()
    local function f(x)
      local y
      if x > 0 then y = x end    -- +2
      return y
    end
    fails(function() return mg.func(f)(mg.tensor(1.0, mg.float32)) end, THIS .. ":" .. line_of(f, 2) .. ":",
      "'y' is a float32 () tensor in the then branch but nil in the else branch")
  end)

  it("a loop variable whose dtype or shape changes", function()
    local function f(x)
      local s = mg.tensor(0)
      while s < x do             -- +2
        s = s + 0.5
      end
      return s
    end
    fails(function() return mg.func(f)(mg.tensor(3)) end, THIS .. ":" .. line_of(f, 2) .. ":",
      "loop variable 's' enters this while loop as int64 ()")
    local function g(x)
      for _ in mg.range(3) do    -- +1
        x = mg.concat({ x, x }, 1)
      end
      return x
    end
    fails(function() return mg.func(g)(mg.tensor{ 1.0 }) end, THIS .. ":" .. line_of(g, 1) .. ":",
      "loop variable 'x' enters this for loop with shape (1)")
  end)

  it("a non-scalar or non-bool tensor as a condition", function()
    local function f(x)
      if x > 0 then x = -x end   -- +1
      return x
    end
    fails(function() return mg.func(f)(mg.tensor{ 1.0, 2.0 }) end, THIS .. ":" .. line_of(f, 1) .. ":",
      "bool tensor of shape (2), not one element", "mg.all(c) or mg.any(c)")
    local function g(x)
      while x do x = x - 1 end   -- +1
      return x
    end
    fails(function() return mg.func(g)(mg.tensor(3)) end, THIS .. ":" .. line_of(g, 1) .. ":",
      "a condition must be a bool tensor")
  end)

  it("break and return forms that cannot be converted", function()
    local function f(...)
      if select("#", ...) > 1 then
        return ...               -- +2
      end
    end
    fails(function() return mg.func(f) end, THIS .. ":" .. line_of(f, 2) .. ": autograph: 'return ...'")
    local function g(n)
      for i = 1, n do
        for j = 1, n do
          if j > i then goto continue end   -- +3
        end
        ::continue::
      end
    end
    fails(function() return mg.func(g) end, THIS .. ":" .. line_of(g, 3) .. ": autograph:", "jumps out of an inner loop")
    local function h(x)
      for _, v in ipairs({ 1, 2, 3 }) do   -- +1
        if x > v then break end
      end
      return x
    end
    fails(function() return mg.func(h)(mg.tensor(2)) end, THIS .. ":" .. line_of(h, 1) .. ":",
      "cannot stop a loop over a Lua iterator")
  end)

  it("#t of a tensor whose first dimension is unknown while tracing", function()
    local function f(x)
      local s = 0
      for i = 1, #x do s = s + x[i] end   -- +2
      return s
    end
    local sf = mg.func(f, { input_signature = { mg.TensorSpec{ shape = { -1 } } } })
    fails(function() return sf(mg.tensor({ 1.0, 2.0 }, mg.float32)) end, THIS .. ":" .. line_of(f, 2) .. ":",
      "length of a tensor whose first dimension is unknown while tracing")
    near(mg.func(f)(mg.tensor{ 1.0, 2.0 }), 3)
  end)

  it("a loop variable that is nil before the loop", function()
    local function f(n)
      local last
      local i = 0
      while i < n do             -- +3
        last = i
        i = i + 1
      end
      return last
    end
    fails(function() return mg.func(f)(mg.tensor(3)) end, THIS .. ":" .. line_of(f, 3) .. ":",
      "'last' is nil before this while loop", "local last = 0")
  end)
end)

describe("matmul_many (the TF blog's example)", function()
  local w = mg.eye(4) * 0.5
  local x = mg.ones{ 1, 4 }

  local function count(nodes, pred)
    local n = 0
    for _, nd in ipairs(nodes) do if pred(nd) then n = n + 1 end end
    return n
  end

  it("for _ in mg.range(100) stages into one while node", function()
    local f = mg.func(function(v)
      for _ in mg.range(100) do v = mg.matmul(v, w) end
      return v
    end)
    local nodes = f:concrete(x):graph()
    assert.equal(1, count(nodes, function(nd) return nd.kind == "while" end))
    assert.equal(0, count(nodes, function(nd) return nd.op == "matmul" end))
    local text = f:concrete(x):pretty()
    local _, matmuls = text:gsub("= matmul%(", "")
    assert.equal(1, matmuls)   -- once, in the loop body
    near(f(x), { { 0.5 ^ 100, 0.5 ^ 100, 0.5 ^ 100, 0.5 ^ 100 } })
  end)

  it("for i = 1, 100 unrolls into 100 matmul nodes", function()
    local f = mg.func(function(v)
      for _ = 1, 100 do v = mg.matmul(v, w) end
      return v
    end)
    local nodes = f:concrete(x):graph()
    assert.equal(100, count(nodes, function(nd) return nd.op == "matmul" end))
    assert.equal(0, count(nodes, function(nd) return nd.kind == "while" end))
  end)
end)
