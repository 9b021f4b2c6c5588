-- staging_state_spec.lua — Lua state and staging (issue 14, items 2, 3, 4 and 9, and the
-- differential fuzzer's findings F1-F4): every Lua value a trace reads is guarded, transitively
-- through helpers; a staged if/loop saves and restores every variable it assigns around each
-- trace; Lua tables written in a staged branch or body are errors; mg.cond's non-tensor results
-- must agree; a zero or nil for-step raises as in Lua; errors name the user's line. Each case
-- compares the staged result with plain Lua or eager, the way the bug was found.
local mg = require "moongrad"
local h = require "tests.spec.helpers"
local fails, near = h.fails, h.near
local f32 = h.f32

local THIS = debug.getinfo(1, "S").short_src

describe("guards cover every Lua function a trace runs", function()
  it("a helper's upvalue (issue: 2 instead of 101 with one trace)", function()
    local k = 1
    local function helper(x) return x + k end
    local f = mg.func(function(x) return helper(x) end)
    near(f(f32(1)), 2)
    k = 100
    near(f(f32(1)), 101)
    assert.equal(2, f:trace_count())
    near(f(f32(1)), 101)
    assert.equal(2, f:trace_count())   -- unchanged: no retrace
  end)

  it("a helper of a helper, and a function stored in a table (reached by AutoGraph's calls)", function()
    local scale = 2
    local function inner(x) return x * scale end
    local function outer(x) return inner(x) + 1 end
    local M = {}
    local shift = 10
    function M.apply(x) return x + shift end
    local f = mg.func(function(x) return M.apply(outer(x)) end)
    near(f(f32(1)), 13)
    scale = 3
    near(f(f32(1)), 14)
    shift = 20
    near(f(f32(1)), 24)
  end)

  it("a global read only by a helper, with no global read by the staged function itself", function()
    rawset(_G, "MG_SPEC_GLOBAL", 1)
    local function helper(x) return x + MG_SPEC_GLOBAL end
    local f = mg.func(function(x) return helper(x) end)
    near(f(f32(1)), 2)
    rawset(_G, "MG_SPEC_GLOBAL", 10)
    near(f(f32(1)), 11)
    rawset(_G, "MG_SPEC_GLOBAL", nil)
  end)

  it("a global function's own upvalues", function()
    local k = 5
    rawset(_G, "mg_spec_global_fn", function(x) return x * k end)
    local f = mg.func(function(x) return mg_spec_global_fn(x) end)
    near(f(f32(2)), 10)
    k = 7
    near(f(f32(2)), 14)
    rawset(_G, "mg_spec_global_fn", nil)
  end)

  it("the retrace message names the helper and the value that changed", function()
    local k = 1
    local function helper(x) return x + k end
    local helper_line = debug.getinfo(helper, "S").linedefined
    local f = mg.func(function(x) return helper(x) end, { max_traces = 1, on_retrace = "error" })
    f(f32(1))
    k = 2
    fails(function() return f(f32(1)) end, "retracing beyond max_traces=1", "upvalue 'k' of the function at "
      .. THIS .. ":" .. helper_line, "was 1, now 2")
  end)

  it("the chunk's environment is the same table after many traces (Lua 5.4: its _ENV cell)", function()
    local function reads_global() return tostring end   -- has the chunk's _ENV (5.4) / environment (LuaJIT)
    local function env_of(fn)
      local getfenv = rawget(_G, "getfenv")
      if getfenv then return getfenv(fn) end
      for i = 1, 60 do
        local name, v = debug.getupvalue(fn, i)
        if not name then return nil end
        if name == "_ENV" then return v end
      end
    end
    local before = env_of(reads_global)
    for _ = 1, 3 do
      local f = mg.func(function(x) return reads_global() and x * 2 end)
      near(f(f32(1)), 2)
      assert.equal(before, env_of(reads_global))
    end
  end)

  it("environments are restored after the trace, also when it fails", function()
    local function helper(x) error("boom") end
    local getfenv = rawget(_G, "getfenv")
    local env_before = getfenv and getfenv(helper)
    local f = mg.func(function(x) return helper(x) end)
    fails(function() return f(f32(1)) end, "boom")
    if getfenv then assert.equal(env_before, getfenv(helper)) end   -- LuaJIT: each function's environment
    rawset(_G, "MG_SPEC_PROBE", 3)
    assert.equal(3, MG_SPEC_PROBE)   -- globals still read the real table
    rawset(_G, "MG_SPEC_PROBE", nil)
  end)
end)

describe("a staged if/loop saves and restores every variable it assigns", function()
  -- the issue's program: i is dead after the if, yet the else branch reads it
  local function body(n)
    local s, i = 0, 0
    if i < n then s = s * 10 + i; i = i + 1 else s = s * 11 + i; i = i + 2 end
    i = 0
    return s + i
  end
  local function body2(n)
    local s, i = 1, 3
    if i < n then s = s * 10 + i; i = i + 1 else s = s * 11 + i; i = i + 2 end
    i = 0
    return s + i
  end

  it("the else branch's trace does not see the then branch's values", function()
    local f, f2 = mg.func(body), mg.func(body2)
    for _, n in ipairs({ 5, -5 }) do
      near(f(mg.tensor(n)), body(n))
      near(f2(mg.tensor(n)), body2(n))
    end
  end)

  it("in elseif chains and in loops, with a scratch variable read by a later branch", function()
    local function g(n)
      local t, acc = 0, 0
      for k = 1, 3 do
        if n > k then t = k * 2; acc = acc + t elseif n < 0 then t = -1; acc = acc + t * 3 else acc = acc + t end
      end
      return acc
    end
    local f = mg.func(g)
    for _, n in ipairs({ 5, 2, -1, 0 }) do near(f(mg.tensor(n)), g(n)) end
  end)
end)

describe("Lua state written inside staged control flow", function()
  it("a Lua table written in a staged loop body is an error at the user's line", function()
    local f = mg.func(function(n)
      local acc = {}
      local i = mg.tensor(0)
      while i < n do acc[#acc + 1] = i; i = i + 1 end
      return #acc
    end)
    local e = fails(function() return f(mg.tensor(5)) end, "the body of a loop writes into a Lua table made outside it",
      "mg.TensorArray")
    assert.truthy(e:find(THIS .. ":%d+:"), e)
  end)

  it("table.insert, rawset and a field written in both branches of a tensor if", function()
    local t = {}
    fails(function() return mg.func(function(x) if x > 0 then t.v = 1 else t.v = 2 end return x end)(f32(1)) end,
      "the then branch of an if writes into a Lua table")
    local list = {}
    fails(function()
      return mg.func(function(n) for k = 1, n do table.insert(list, k) end return n end)(mg.tensor(3))
    end, "table.insert")
    fails(function()
      return mg.func(function(x) if x > 0 then rawset(t, "w", 1) end return x end)(f32(1))
    end, "rawset")
  end)

  it("tables made inside the branch or body, and writes outside staged control flow, are fine", function()
    local seen = {}
    local f = mg.func(function(x)
      seen.traced = true                          -- not inside staged control flow
      local y = x
      if x > 0 then
        local tmp = { a = 1 }
        tmp.b = x * 2                             -- a table made in this branch
        y = tmp.b
      end
      return y
    end)
    near(f(f32(2)), 4)
    near(f(f32(-2)), -2)
    assert.is_true(seen.traced)
  end)

  it("autograph=\"warn\" warns once instead", function()
    local acc = {}
    local f = mg.func(function(n)
      local i = mg.tensor(0)
      while i < n do acc[1] = i; i = i + 1 end
      return i
    end, { autograph = "warn" })
    near(f(mg.tensor(3)), 3)
  end)

  it("staged mg.cond whose branches return different Lua values is an error", function()
    local c = mg.func(function(x) return mg.cond(x > 0, function() return "a" end, function() return "b" end) end)
    fails(function() return c(f32(-1)) end, 'cond: result 1 is "a" in the true branch and "b" in the false branch')
    local d = mg.func(function(x)
      return mg.cond(x > 0, function() return { v = x, k = 1 } end, function() return { v = -x, k = 2 } end)
    end)
    fails(function() return d(f32(1)) end, 'result 1["k"] is 1 in the true branch and 2 in the false branch')
    local ok = mg.func(function(x)
      return mg.cond(x > 0, function() return { v = x, k = "same" } end, function() return { v = -x, k = "same" } end)
    end)
    local r = ok(f32(-3))
    near(r.v, 3)
    assert.equal("same", r.k)
  end)

  it("a staged numeric for with a zero or nil step raises Lua's error", function()
    fails(function() return mg.func(function(x, n) for i = 1, n, 0 do x = x + 1 end return x end)(f32(0), mg.tensor(3)) end,
      "'for' step is zero")
    fails(function() return mg.func(function(x, n, s) for i = 1, n, s do x = x + 1 end return x end)(f32(0), mg.tensor(3), nil) end,
      "'for' step must be a number")
    local f = mg.func(function(x, s) for i = 1, 3, s do x = x + i end return x end)
    near(f(mg.tensor(0), mg.tensor(2)), 4)
    fails(function() return f(mg.tensor(0), mg.tensor(0)) end, "'for' step is zero")   -- known when the graph runs
  end)
end)

describe("errors keep the user's line", function()
  it("calling a nil function or method while tracing", function()
    local f = mg.func(function(x) local t = mg_spec_no_such_function(x); return t end)
    local e = fails(function() return f(f32(1)) end, "attempt to call a nil value")
    assert.truthy(e:find(THIS .. ":%d+:"), e)
    local g = mg.func(function(x) local r = x:no_such_method(); return r end)   -- (a tail call leaves no frame of its own)
    e = fails(function() return g(f32(1)) end, "attempt to call a nil value (method 'no_such_method')")
    assert.truthy(e:find(THIS .. ":%d+:"), e)
  end)

  it("x:item() while tracing", function()
    local f = mg.func(function(x) if x:item() > 0 then return x end return -x end)
    local e = fails(function() return f(f32(1)) end, "item: a symbolic tensor has no value")
    assert.truthy(e:find(THIS .. ":%d+:"), e)
  end)

  it("a run-time error of a staged graph names the node's line and the function", function()
    local step = mg.func(function(x, i)
      local y = x * 2
      local z = mg.take(y, i)
      return z
    end, { name = "step" })
    local line = debug.getinfo(1, "l").currentline - 3
    local e = fails(function() return step(f32 { 1, 2, 3 }, mg.tensor { 5 }) end, "take: index 5",
      "in staged function 'step'")
    if rawget(_G, "jit") == nil then   -- the node positions come from the C module's where hook
      assert.truthy(e:find(THIS .. ":" .. line .. ", in staged function 'step'", 1, true), e)
    end
  end)
end)

describe("the differential fuzzer's findings", function()
  it("F1: a Variable on one path of a staged if is a clear error asking for v:read(); the value works", function()
    local V = mg.Variable(mg.tensor(0.25, "float64"))
    -- eagerly `r` would be the Variable object, whose later assignment it shows; a staged if can only
    -- select its value at the if (tf.cond's rule), so the two would silently differ: an error
    local bad = mg.func(function(x, y) local r = y; if x >= 0 then r = V end; V:assign_add(1); return r end)
    local e = fails(function() return bad(mg.tensor(1.5, "float64"), mg.tensor(1.5, "float64")) end,
      "'r' is a float64 () Variable in the then branch", "v:read()")
    assert.truthy(e:find(THIS .. ":%d+:"), e)
    local f1 = mg.func(function(x, y) return (x >= V) and y or V:read() end)
    near(f1(mg.tensor(-1.5, "float64"), mg.tensor(1.5, "float64")), 0.25)
    near(f1(mg.tensor(1.5, "float64"), mg.tensor(3.5, "float64")), 3.5)
    local f2 = mg.func(function(x, y) local r = y; if x >= 0 then r = V:read() end; return r end)
    near(f2(mg.tensor(-1.5, "float64"), mg.tensor(1.5, "float64")), 1.5)
    near(f2(mg.tensor(1.5, "float64"), mg.tensor(1.5, "float64")), 0.25)
    local same = mg.func(function(x) local r = V; if x > 0 then r = V end; return r * 2 end)   -- the same one: fine
    near(same(f32(1)), 0.5)
  end)

  it("F2: a number that starts a staged loop takes a float dtype given under a cond in the body", function()
    local function f(x1)
      local s = 0
      local i = 0
      while (i < 1) and (s <= x1) do
        i = i + 1
        if i < -3 then return x1 end
        s = mg.tensor(0.5, "float64")
      end
      return s
    end
    near(mg.func(f)(mg.tensor(1.0, "float64")), 0.5)
  end)

  it("F3: a tape inside a staged function past a staged if whose state the target does not use", function()
    local g = mg.func(function(x)
      local tape = mg.GradientTape()
      tape:watch(x)
      local y = x
      if x < 0.5 then y = x * 3 end
      local out = x * 2
      tape:stop()
      return tape:gradient(out, x)
    end)
    near(g(mg.tensor(1.0, "float64")), 2)
    near(g(mg.tensor(0.0, "float64")), 2)
  end)

  it("F5: repeat-until with a one-element (shape (1)) condition and a break", function()
    local function r1(n)
      local i = 0
      repeat
        i = i + 1
        if n ~= n then break end
      until (i >= 3) or (mg.tensor({ 1 }) >= 2)
      return i
    end
    near(mg.func(r1)(mg.tensor(4)), 3)
  end)

  it("a break/until flag that is a (1) condition on one path and a () one on the other (fuzzer seed 5002924)", function()
    local function main(x1)
      local i1 = 0
      repeat
        i1 = i1 + 1
        if (x1 > mg.tensor({ 0.5 }, "float32")) then break end
      until (i1 >= 1) or (mg.tensor({ 0.5 }, "float32") > x1)
      return mg.tensor({ 0.5, 0.5, 0.5 }, "float32") * i1
    end
    local f = mg.func(main)
    for _, v in ipairs({ 0.137, -1.86, 2 }) do near(f(f32 { v }), main(f32 { v })) end
  end)

  it("a Variable returned from inside a staged loop is a clear error, not zeros (fuzzer seed 6000971)", function()
    local V = mg.Variable(mg.tensor({ { -0.75, 1.25 } }, "float64"))
    local function main(x)
      for _, _ in ipairs(mg.where(mg.greater(x, 0), V, mg.tensor({ { 0.5 } }, "float64"))) do
        return V
      end
      return mg.tensor({ { 0.5, 0.5 } }, "float64")
    end
    local ok, err = pcall(mg.func(main), mg.tensor({ 1.0, -1.0 }, "float64"))
    assert.is_false(ok)
    assert.truthy(tostring(err):find("return value 1 (a return inside it) has no value before this for loop", 1, true))
    assert.truthy(tostring(err):find("v:read()", 1, true))
    local function main_read(x)
      for _, _ in ipairs(mg.where(mg.greater(x, 0), V, mg.tensor({ { 0.5 } }, "float64"))) do
        return V:read()
      end
      return mg.tensor({ { 0.5, 0.5 } }, "float64")
    end
    near(mg.func(main_read)(mg.tensor({ 1.0, -1.0 }, "float64")), { { -0.75, 1.25 } })
    -- a table first set in the body is refused too (it would stay unset after the loop)
    local function main_table(x)
      local t
      local i = 0
      while x > i do
        i = i + 1
        t = { i }
      end
      return t
    end
    ok, err = pcall(mg.func(main_table), mg.tensor(2))
    assert.is_false(ok)
    assert.truthy(tostring(err):find("'t' is nil before this while loop", 1, true))
  end)

  it("a staged loop that makes a tensor variable a Variable asks for v:read() (fuzzer seed 9001913)", function()
    local V = mg.Variable(mg.tensor(1.25, "float32"))
    local function main(x)
      local v = x
      local i = 0
      while (i < 1) and (1.75 >= v) do
        i = i + 1
        v = V
      end
      return v
    end
    local ok, err = pcall(mg.func(main), mg.tensor(-0.75, "float32"))
    assert.is_false(ok)
    assert.truthy(tostring(err):find("loop variable 'v' is a float32 () tensor before this while loop and the body "
      .. "makes it a float32 () Variable; a staged loop carries only tensors and numbers out of its body: write its "
      .. "value, v:read()", 1, true))
  end)

  it("numbers on both paths of a staged if stay numbers for the next if (fuzzer seed 8100953)", function()
    -- 0 and 2 are integers: the first if's output must not make 0.5 an int64 at the second
    local function main(x)
      local r = 0
      if x > 0 then r = 2 end
      if x > 1 then r = 0.5 end
      return r
    end
    local f = mg.func(main)
    near(f(mg.tensor(3.0)), 0.5)
    near(f(mg.tensor(0.5)), 2)
    near(f(mg.tensor(-1.0)), 0)
    -- the same after a staged loop
    local function after_loop(x, n)
      local r = 0
      local i = 0
      while i < n do i = i + 1; r = 2 end
      if x > 1 then r = 0.5 end
      return r
    end
    local g = mg.func(after_loop)
    near(g(mg.tensor(3.0), mg.tensor(2)), 0.5)
    near(g(mg.tensor(0.0), mg.tensor(2)), 2)
    -- a fraction meeting an integer tensor is an error at the if, naming the variable
    local function int_and_fraction(x)
      local r = mg.tensor(0)
      if x > 1 then r = 0.5 end
      return r
    end
    fails(function() mg.func(int_and_fraction)(mg.tensor(3.0)) end,
      "'r' is a int64 () tensor in one branch and the number 0.5 in the other, which an int64 tensor cannot hold")
  end)

  it("math.* on a number a staged loop made a tensor: the elementwise op (fuzzer seed 9004001)", function()
    local function main(n)
      local v, s, i = 2, 0.0, 0
      while i < n do
        i = i + 1
        s = s + math.sqrt(v) + math.floor(v * 1.5) + math.abs(-v) + math.max(v, 1.5, i) + math.log(v, 2)
          + math.min(v, 3) + math.exp(0) + math.ceil(v / 4) + math.sin(0) + math.cos(0)
        v = v + 1
      end
      return s
    end
    near(mg.func(main)(mg.tensor(3)), main(3))
    -- the plain Lua functions stay for numbers (math.floor of a number is Lua's integer)
    local g = mg.func(function(x) return x * math.floor(2.5) end)
    near(g(mg.tensor(1.0)), 2)
    -- a local named math is the user's own
    local calls = 0
    local function user_math(x)
      local math = { floor = function(y) calls = calls + 1; return y end }
      return math.floor(x)
    end
    mg.func(user_math)(mg.tensor(1.5))
    assert.are.equal(1, calls)
  end)

  it("F6: a branch's dead state is not seen by an elseif condition's trace", function()
    local function main(x1, x2, x3)
      local v1 = x1 * 0 + 1
      if x1 >= x3 then
        v1 = 0 - v1
      elseif -1.125 < x2 then
        v1 = v1 + 0
      end
      return x3
    end
    local FT = "float64"
    near(mg.func(main)(mg.tensor(0.75, FT), mg.tensor(-1.25, FT), mg.tensor(0.5, FT)), 0.5)
  end)

  it("F7/F8: several `if ... return` in sequence keep their gradients (tape inside and around)", function()
    local FT = "float64"
    local g = mg.func(function(x1, x2, x3)
      local tape = mg.GradientTape()
      tape:watch(x1); tape:watch(x2); tape:watch(x3)
      local o = (function()
        if 0.5 < x3 then return x1 end
        if 0.625 <= x1 then else return x3 end
        return x2
      end)()
      tape:stop()
      local gr = tape:gradient(o, { x1, x2, x3 }, { unconnected_gradients = "zero" })
      return o, gr[1], gr[2], gr[3]
    end)
    local o, g1, g2, g3 = g(mg.tensor(1.5, FT), mg.tensor(1.25, FT), mg.tensor(-1.25, FT))
    near(o, 1.25); near(g1, 0); near(g2, 1); near(g3, 0)
    local f = mg.func(function(x1)
      if x1 <= 0.5 then return x1 end
      if x1 < -5 then return x1 end
      if x1 > 1 then return x1 * 3 end
      return x1 * 0
    end)
    local x = mg.tensor(1.75, FT)
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = f(x)
    tape:stop()
    near(y, 5.25)
    near(tape:gradient(y, x), 3)
  end)

  it("F11: a gradient re-runs a branch with the values the trace saw (x = c and a or x; a local read, then reassigned)", function()
    local FT = "float64"
    local function grad_of(f, v)
      local x = mg.tensor(v, FT)
      local tape = mg.GradientTape()
      tape:watch(x)
      local y = f(x)
      tape:stop()
      return y, tape:gradient(y, x)
    end
    local f = mg.func(function(x)
      x = (x > 0.5) and mg.tensor(0.5, FT) or x
      return x * 2
    end)
    local y, g = grad_of(f, -0.25)
    near(y, -0.5); near(g, 2)
    local f2 = mg.func(function(x)
      local k = x * 3
      local y2 = x
      if x < 0.5 then y2 = k * x end     -- reads k ...
      k = x * 100                         -- ... which is reassigned after the if
      return y2 + k * 0
    end)
    local y2, g2 = grad_of(f2, 0.25)      -- y2 = 3x^2: 0.1875; d/dx = 6x = 1.5
    near(y2, 0.1875); near(g2, 1.5)
    local f3 = mg.func(function(x)       -- the same in a loop body
      local k = x * 2
      local s = x * 0
      local i = mg.tensor(0)
      while i < 2 do s = s + k; i = i + 1 end
      k = x * 100
      return s + k * 0
    end)
    local y3, g3 = grad_of(f3, 0.5)       -- s = 4x
    near(y3, 2); near(g3, 4)
  end)

  it("F4: nested tapes around the first call of a staged function reading a Variable", function()
    -- the Variable's version was read from an uninitialised (pooled) tensor header
    for _ = 1, 20 do
      local V = mg.Variable(mg.tensor({ 1.0, 2.0 }, "float64"))
      assert.is_true(mg.core.variable_version(V) <= mg.core.variable_writes())   -- never "written since"
      local f = mg.func(function(x) return mg.sum(mg.sin(x) * V) end)
      local x = mg.tensor({ 0.5, 0.25 }, "float64")
      local outer = mg.GradientTape()
      outer:watch(x)
      local inner = mg.GradientTape()
      inner:watch(x)
      local y = f(x)
      local g = inner:gradient(y, { x, V })
      near(g[1], { math.cos(0.5), 2 * math.cos(0.25) })
      outer:stop()
    end
  end)
end)
