-- autograph_runtime_spec.lua — the operators converted code calls (ag__):
-- exactly Lua's behaviour on Lua values; eager tensors decide by their value
-- (bool tensors only) and compare elementwise; symbolic tensors (inside a
-- trace) build cond and while nodes, with the state rules (numbers adopt the
-- other side's dtype, undefined return values take the other branch's
-- shape, Lua values must agree) and the error messages users hit.
-- The staged cases call the operators by hand inside mg.func(..., {autograph=false}).

local mg = require "moongrad"
local R = mg.autograph.runtime
local pack, unpack = table.pack, table.unpack

local H = require "tests.spec.helpers"
local fails = H.fails
local function near(a, b) return H.near(a, b, 1e-6) end

local function staged(fn) return mg.func(fn, { autograph = false }) end

-- the node kinds of a staged function's graph for these arguments (subgraphs included)
local function kinds(f, ...)
  return f:concrete(...):pretty()
end

local THIS = debug.getinfo(1, "S").short_src

describe("runtime on Lua values", function()
  it("if_stmt runs one branch", function()
    local seen = {}
    R.if_stmt(true, function() seen[#seen + 1] = "then" end, function() seen[#seen + 1] = "else" end)
    R.if_stmt(0, function() seen[#seen + 1] = "then0" end, function() seen[#seen + 1] = "else0" end)  -- 0 is true
    R.if_stmt(nil, function() seen[#seen + 1] = "then" end, function() seen[#seen + 1] = "else" end)
    R.if_stmt(false, function() seen[#seen + 1] = "never" end)
    assert.same({ "then", "then0", "else" }, seen)
  end)

  it("while_stmt and repeat_stmt loop like Lua", function()
    local i, n = 0, 0
    R.while_stmt(function() return i < 5 end, function() i = i + 1; n = n + 2 end)
    assert.equal(5, i); assert.equal(10, n)
    local k = 10
    R.repeat_stmt(function() k = k + 1; return true end)   -- runs once
    assert.equal(11, k)
    R.repeat_stmt(function() k = k - 3; return k < 0 end)
    assert.equal(-1, k)
  end)

  it("for_range is Lua's numeric for (integers, floats, negative steps, extra condition)", function()
    local got = {}
    R.for_range(1, 3, 1, function(i) got[#got + 1] = i end)
    R.for_range(10, 1, -4, function(i) got[#got + 1] = i end)
    R.for_range(0.5, 1.5, 0.5, function(i) got[#got + 1] = i end)
    assert.same({ 1, 2, 3, 10, 6, 2, 0.5, 1.0, 1.5 }, got)
    assert.equal("integer", math.type(got[1]))
    local n, stop = 0, false
    R.for_range(1, 100, 1, function(i) n = n + 1; if i == 7 then stop = true end end, nil, nil, nil,
      function() return not stop end)
    assert.equal(7, n)
    fails(function() R.for_range(1, 2, 0, function() end) end, "'for' step is zero")
    fails(function() R.for_range(1, 2, nil, function() end) end, "'for' step must be a number")
  end)

  it("for_stmt iterates any iterator, honours the extra condition and calls a closing value", function()
    local keys = {}
    R.for_stmt(pack(pairs({ a = 1, b = 2 })), function(k, v) keys[#keys + 1] = k .. v end)
    table.sort(keys)
    assert.same({ "a1", "b2" }, keys)
    local closed = false
    local closer = setmetatable({}, { __close = function() closed = true end })
    local vals = {}
    local function iter(s, c) if c < s then return c + 1, (c + 1) * 10 end end
    R.for_stmt(pack(iter, 4, 0, closer), function(i, v) vals[#vals + 1] = v end)
    assert.same({ 10, 20, 30, 40 }, vals)
    assert.is_true(closed)
    local count = 0
    R.for_stmt(pack(ipairs({ 1, 2, 3, 4 })), function() count = count + 1 end, nil, nil, nil,
      function() return count < 2 end)
    assert.equal(2, count)
  end)

  it("and_, or_, not_ are Lua's, lazy in their right operand", function()
    local called = 0
    local function b() called = called + 1; return "b" end
    assert.equal(false, R.and_(false, b)); assert.equal(nil, R.and_(nil, b)); assert.equal(0, called)
    assert.equal("b", R.and_(0, b)); assert.equal(1, called)
    assert.equal(1, R.or_(1, b)); assert.equal(1, called)
    assert.equal("b", R.or_(false, b)); assert.equal(2, called)
    assert.is_true(R.not_(nil)); assert.is_false(R.not_(0))
    local t = mg.tensor(3.0)            -- a non-bool tensor is a Lua value here: truthy
    assert.equal(t, R.or_(t, b))
    assert.is_false(R.not_(t))
  end)

  it("if_exp is exactly `c and a or b`", function()
    local function A() return "a" end
    local function B() return "b" end
    assert.equal("a", R.if_exp(true, A, B))
    assert.equal("b", R.if_exp(false, A, B))
    assert.equal("b", R.if_exp(true, function() return false end, B))   -- the idiom's known quirk
    assert.equal("a", R.if_exp(0, A, B))
  end)

  it("comparisons, len, ipairs, retval and mg.range", function()
    assert.is_true(R.lt(1, 2)); assert.is_true(R.le(2, 2)); assert.is_false(R.gt(1, 2)); assert.is_true(R.ge(3, 2))
    assert.is_true(R.lt("a", "b"))
    assert.is_true(R.eq(nil, nil)); assert.is_false(R.eq(1, "1")); assert.is_true(R.ne({}, {}))
    assert.equal(3, R.len({ 1, 2, 3 })); assert.equal(2, R.len("ab"))
    local t = {}
    for i, v in R.ipairs({ "x", "y" }) do t[i] = v end
    assert.same({ "x", "y" }, t)
    assert.same({ 1, nil, n = 2 }, pack(R.retval(1, R.UNDEF, R.UNDEF)) and { 1, nil, n = 2 })
    assert.equal(0, select("#", R.retval(R.UNDEF)))
    assert.equal(2, select("#", R.retval(R.UNDEF, 5)))
    local r = {}
    for i in mg.range(3) do r[#r + 1] = i end
    for i in mg.range(9, 1, -4) do r[#r + 1] = i end
    for i in mg.range(2, 1) do r[#r + 1] = i end
    assert.same({ 1, 2, 3, 9, 5, 1 }, r)
    fails(function() return mg.range(1, 5, 0) end, "range: step is zero")
  end)
end)

describe("runtime on eager tensors", function()
  it("a bool tensor condition decides by its value; other tensors are refused", function()
    local which
    R.if_stmt(mg.tensor(false), function() which = "then" end, function() which = "else" end)
    assert.equal("else", which)
    R.if_stmt(R.lt(mg.tensor(1), 2), function() which = "then" end, function() which = "else" end)
    assert.equal("then", which)
    fails(function() R.if_stmt(mg.tensor(0), function() end) end,
      THIS, "the condition of this if is a int64 () tensor", "must be a bool tensor", "x ~= 0")
    fails(function() R.if_stmt(mg.tensor{ true, false }, function() end) end,
      "bool tensor of shape (2), not one element", "mg.all(c) or mg.any(c)")
  end)

  it("comparisons and logical operators are elementwise on tensors", function()
    local a = mg.tensor{ 1, 5, 3 }
    assert.same({ true, false, false }, R.lt(a, 3):totable())
    assert.same({ false, true, true }, R.ge(3, mg.tensor{ 4, 3, 2 }):totable())
    assert.same({ false, false, true }, R.eq(a, 3):totable())
    assert.same({ true, true, false }, R.ne(a, mg.tensor{ 2, 4, 3 }):totable())
    assert.same({ true, false, false }, R.and_(R.lt(a, 4), function() return R.lt(a, 2) end):totable())
    assert.same({ true, true, true }, R.or_(R.lt(a, 2), function() return true end):totable())
    assert.same({ false, true, false }, R.not_(R.ne(a, 5)):totable())
    assert.same({ 1, 50, 3 }, R.if_exp(R.gt(a, 4), function() return a * 10 end, function() return a end):totable())
    -- with bool values, c and a or b keeps Lua's meaning (c and a) or b
    assert.same({ true, false, true }, R.if_exp(R.gt(a, 2), function() return R.lt(a, 4) end,
      function() return R.lt(a, 2) end):totable())
    assert.is_true(R.if_exp(mg.tensor(true), function() return mg.tensor(false) end,
      function() return mg.tensor(true) end):item())
  end)

  it("loops over eager tensors run in Lua: rows, #t, tensor bounds", function()
    local x = mg.tensor{ { 1, 2 }, { 3, 4 }, { 5, 6 } }
    assert.equal(3, R.len(x))
    local sums = {}
    R.for_stmt(pack(R.ipairs(x)), function(i, row) sums[i] = mg.sum(row):item() end)
    assert.same({ 3, 7, 11 }, sums)
    local rows = 0
    R.for_stmt(pack(x), function(row) rows = rows + 1; assert.same({ 2 }, row.shape) end)
    assert.equal(3, rows)
    local n = 0
    R.for_range(1, mg.tensor(4), 1, function(i) assert.equal("integer", math.type(i)); n = n + 1 end)
    assert.equal(4, n)
    fails(function() R.len(mg.tensor(1)) end, "length of a 0-d tensor")
  end)
end)

describe("runtime on symbolic tensors", function()
  it("if_stmt builds one cond node; numbers adopt the tensor's dtype", function()
    local f = staged(function(x)
      local y = 0
      R.if_stmt(R.gt(x, 0), function() y = x * 2 end, nil, function() return y end, function(v) y = v end, { "y" })
      return y
    end)
    near(f(mg.tensor(3.0, mg.float64)), 6)
    near(f(mg.tensor(-3.0, mg.float64)), 0)
    local cf = f:concrete(mg.tensor(1.0, mg.float64))
    assert.equal("float64", cf:signature().outputs[1].dtype)
    assert.is_truthy(kinds(f, mg.tensor(1.0, mg.float64)):find("= cond(", 1, true))
  end)

  it("a number in the then branch takes the else branch's dtype (the then branch is retraced)", function()
    local f = staged(function(x)
      local y = x
      R.if_stmt(R.lt(x, 0), function() y = 1 end, function() y = x + 0.5 end, function() return y end,
        function(v) y = v end, { "y" })
      return y
    end)
    near(f(mg.tensor(-1.0, mg.float64)), 1)
    near(f(mg.tensor(2.0, mg.float64)), 2.5)
    assert.equal("float64", f:concrete(mg.tensor(1.0, mg.float64)):signature().outputs[1].dtype)
  end)

  it("values equal on both paths stay as they are; undefined return values take the other branch's shape", function()
    local f = staged(function(x)
      local tag, r, n = "kept", R.UNDEF, 5
      R.if_stmt(R.gt(mg.sum(x), 0), function() r = x * 2 end, nil, function() return tag, r, n end,
        function(a, b, c) tag, r, n = a, b, c end, { "tag", "r", "n" })
      assert.equal("kept", tag)
      assert.equal(5, n)
      return r
    end)
    near(f(mg.tensor{ 1.0, 2.0 }), { 2, 4 })
    near(f(mg.tensor{ -1.0, -2.0 }), { 0, 0 })   -- this path set no return value
  end)

  it("if_stmt errors: one-branch nil, different Lua values, dtype/shape mismatch", function()
    fails(function()
      return staged(function(x)
        local y
        R.if_stmt(R.gt(x, 0), function() y = x end, nil, function() return y end, function(v) y = v end, { "y" })
        return y
      end)(mg.tensor(1.0, mg.float32))
    end, THIS, "'y' is a float32 () tensor in the then branch but nil in the else branch", "used after it",
      "give it one before the if, or in both branches")
    fails(function()
      return staged(function(x)
        local s = "a"
        R.if_stmt(R.gt(x, 0), function() s = "b" end, nil, function() return s end, function(v) s = v end, { "s" })
        return x
      end)(mg.tensor(1.0, mg.float32))
    end, "'s' is a string in the then branch and a string in the else branch",
      "only tensors and numbers can depend on a tensor condition")
    fails(function()
      return staged(function(x)
        local y = x
        R.if_stmt(R.gt(x, 0), function() y = mg.cast(x, mg.int64) end, nil, function() return y end,
          function(v) y = v end, { "y" })
        return y
      end)(mg.tensor(1.0, mg.float32))
    end, "'y' is a int64 () tensor in the then branch and a float32 () tensor in the else branch",
      "same dtype and shape in both branches")
    fails(function()
      return staged(function(x)
        local y = x
        R.if_stmt(R.gt(mg.sum(x), 0), function() y = mg.sum(x) end, nil, function() return y end,
          function(v) y = v end, { "y" })
        return y
      end)(mg.tensor({ 1.0, 2.0 }, mg.float32))
    end, "'y' is a float32 () tensor in the then branch and a float32 (2) tensor in the else branch")
  end)

  it("while_stmt builds one while node and carries every state tensor", function()
    local f = staged(function(n)
      local i, s = 0, 0
      R.while_stmt(function() return R.lt(i, n) end, function() i = i + 1; s = s + i end,
        function() return i, s end, function(a, b) i, s = a, b end, { "i", "s" })
      return s
    end)
    near(f(mg.tensor(10)), 55)
    near(f(mg.tensor(0)), 0)
    assert.is_truthy(kinds(f, mg.tensor(3)):find("= while(", 1, true))
    assert.equal(1, f:trace_count())
  end)

  it("a loop whose condition turns symbolic is staged from there", function()
    local f = staged(function(x)
      local v, n = 1000, 0
      R.while_stmt(function() return R.gt(v, 1) end, function() v = v / x; n = n + 1 end,
        function() return v, n end, function(a, b) v, n = a, b end, { "v", "n" })
      return n
    end)
    near(f(mg.tensor(10.0)), 3)
    near(f(mg.tensor(2.0)), 10)
  end)

  it("a number before the loop takes the body's dtype", function()
    local f = staged(function(n)
      local s, i = 0, 0
      R.while_stmt(function() return R.lt(i, n) end, function() i = i + 1; s = s + 0.5 * i end,
        function() return s, i end, function(a, b) s, i = a, b end, { "s", "i" })
      return s
    end)
    near(f(mg.tensor(4)), 5)
  end)

  it("loop errors: dtype or shape changes, nil before the loop, changed Lua values, bad conditions", function()
    fails(function()
      return staged(function(x)
        local s = mg.tensor(0)
        R.while_stmt(function() return R.lt(s, x) end, function() s = s + 0.5 end, function() return s end,
          function(v) s = v end, { "s" })
        return s
      end)(mg.tensor(3))
    end, THIS, "loop variable 's' enters this while loop as int64 () and the body makes it a float32 () tensor",
      "mg.cast(x, mg.float32)")
    fails(function()
      return staged(function(x)
        R.while_stmt(function() return R.lt(mg.sum(x), 100) end, function() x = mg.concat({ x, x }, 1) end,
          function() return x end, function(v) x = v end, { "x" })
        return x
      end)(mg.tensor({ 1.0 }, mg.float32))
    end, "loop variable 'x' enters this while loop with shape (1) and the body makes it a float32 (2) tensor")
    fails(function()
      return staged(function(x)
        local last, i = nil, 0
        R.while_stmt(function() return R.lt(i, x) end, function() last = i; i = i + 1 end,
          function() return last, i end, function(a, b) last, i = a, b end, { "last", "i" })
        return last
      end)(mg.tensor(3))
    end, "'last' is nil before this while loop", "local last = 0")
    fails(function()
      return staged(function(x)
        local name, i = "a", 0
        R.while_stmt(function() return R.lt(i, x) end, function() name = name .. "b"; i = i + 1 end,
          function() return name, i end, function(a, b) name, i = a, b end, { "name", "i" })
        return i
      end)(mg.tensor(3))
    end, "'name' is a string before this while loop and the body changes it to a string")
    fails(function()
      return staged(function(x)
        R.while_stmt(function() return x end, function() x = x - 1 end, function() return x end,
          function(v) x = v end, { "x" })
        return x
      end)(mg.tensor(3))
    end, "the condition of this while loop is a int64 () tensor", "must be a bool tensor")
  end)

  it("for_range with a tensor bound, mg.range with a Lua count and rows of a tensor stage while nodes", function()
    local f = staged(function(n, x)
      local s = x * 0
      R.for_range(1, n, 2, function(i) s = s + i end, function() return s end, function(v) s = v end, { "s" })
      return s
    end)
    near(f(mg.tensor(7), mg.tensor(1)), 16)
    local g = staged(function(x)
      R.for_stmt(pack(mg.range(5)), function(i) x = x * 2 end, function() return x end, function(v) x = v end, { "x" })
      return x
    end)
    near(g(mg.tensor(1.5)), 48)
    assert.is_truthy(kinds(g, mg.tensor(1.5)):find("= while(", 1, true))
    local h = staged(function(m)
      local s = m[1] * 0
      R.for_stmt(pack(R.ipairs(m)), function(i, row) s = s + row * i end, function() return s end,
        function(v) s = v end, { "s" })
      return s
    end)
    near(h(mg.tensor{ { 1, 2 }, { 3, 4 }, { 5, 6 } }), { 22, 28 })
    assert.is_truthy(kinds(h, mg.tensor{ { 1, 2 } }):find("= while(", 1, true))
  end)

  it("a tensor-dependent stop inside an unrolled Lua loop stages the remaining iterations", function()
    local f = staged(function(x)
      local s, stop = 0, false
      R.for_range(1, 10, 1, function(i)
        s = s + i
        R.if_stmt(R.gt(s, x), function() stop = true end, nil, function() return stop end,
          function(v) stop = v end, { "stop" })
      end, function() return s, stop end, function(a, b) s, stop = a, b end, { "s", "stop" },
        function() return R.not_(stop) end)
      return s
    end)
    near(f(mg.tensor(4)), 6)
    near(f(mg.tensor(100)), 55)
    fails(function()
      return staged(function(x)
        local stop = false
        R.for_stmt(pack(pairs({ 1, 2, 3 })), function(_, v)
          R.if_stmt(R.gt(x, v), function() stop = true end, nil, function() return stop end,
            function(b) stop = b end, { "stop" })
        end, function() return stop end, function(b) stop = b end, { "stop" }, function() return R.not_(stop) end)
        return x
      end)(mg.tensor(2))
    end, "cannot stop a loop over a Lua iterator", "mg.range(n)")
  end)

  it("repeat_stmt traces one iteration, then a while node", function()
    local f = staged(function(x)
      local n = 0
      R.repeat_stmt(function() x = mg.floordiv(x, 2); n = n + 1; return R.le(x, 0) end, function() return x, n end,
        function(a, b) x, n = a, b end, { "x", "n" })
      return n
    end)
    near(f(mg.tensor(100)), 7)
    near(f(mg.tensor(0)), 1)
  end)

  it("if_exp with a symbolic scalar is a cond; and_ a logical_and", function()
    local f = staged(function(x)
      return R.if_exp(R.gt(x, 0), function() return x end, function() return 0 end),
        R.and_(R.gt(x, 0), function() return R.lt(x, 10) end)
    end)
    local a, b = f(mg.tensor(5.0))
    near(a, 5); assert.is_true(b:item())
    a, b = f(mg.tensor(-5.0))
    near(a, 0); assert.is_false(b:item())
    local text = kinds(f, mg.tensor(1.0))
    assert.is_truthy(text:find("= cond(", 1, true))
    assert.is_truthy(text:find("logical_and", 1, true))
  end)
end)
