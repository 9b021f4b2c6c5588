-- scan_sort_spec.lua — issue 17's scans, sorting and selection: cumsum, cumprod,
-- cumulative_logsumexp, cummax/cummin (and cumargmax/cumargmin), sort, argsort,
-- top_k, searchsorted. Values against plain-Lua oracles (axes, exclusive,
-- reverse, strided inputs, the multi-threaded sizes and the radix-sort path),
-- stability and NaN order, gradients where the finite-difference check cannot
-- look (zeros, -inf outputs), staging with unknown sizes, and error messages.
-- The op oracle (tests/oracle) checks every op against JAX/NumPy as well.

local mg = require "moongrad"
local h = require "tests.spec.helpers"
local fails, near = h.fails, h.near
-- Integer results exactly (and as integers); float results within tol (written as plain numbers).
local function close(a, e, tol, path)
  if type(e) == "table" then
    assert(type(a) == "table" and #a == #e, path .. ": shape differs")
    for i = 1, #e do close(a[i], e[i], tol, path .. "[" .. i .. "]") end
  elseif e == math.huge or e == -math.huge then
    assert(a == e, ("%s: got %s, expected %s"):format(path, tostring(a), tostring(e)))
  else
    near(a, e, tol, path)
  end
end
local function check(actual, expected, tol)
  if mg.is_tensor(actual) and (actual.dtype == "float32" or actual.dtype == "float64") then
    return close(actual:totable(), expected, tol or 1e-6, "value")
  end
  return h.check(actual, expected, tol)
end

local nan, inf = 0 / 0, math.huge

-- A pseudo-random Lua list (a fixed LCG, so both Luas see the same values).
local function lcg_list(n, seed, mod)
  local t, s = {}, seed
  for i = 1, n do
    s = (s * 1103515245 + 12345) % 2147483648
    t[i] = mod and (s % mod) or (s / 2147483648 - 0.5)
  end
  return t
end

describe("cumsum and cumprod", function()
  it("scan the first axis by default, any axis when asked (1-based, negative)", function()
    local x = mg.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
    check(mg.cumsum(x), { { 1, 2, 3 }, { 5, 7, 9 } })
    check(mg.cumsum(x, { axis = 2 }), { { 1, 3, 6 }, { 4, 9, 15 } })
    check(mg.cumsum(x, { axis = -1 }), { { 1, 3, 6 }, { 4, 9, 15 } })
    check(mg.cumprod(x, 2), { { 1, 2, 6 }, { 4, 20, 120 } })   -- positional axis
  end)

  it("exclusive leaves each element out, reverse runs from the end, both together", function()
    local x = mg.tensor { 1, 2, 3, 4 }
    check(mg.cumsum(x, { exclusive = true }), { 0, 1, 3, 6 })
    check(mg.cumsum(x, { reverse = true }), { 10, 9, 7, 4 })
    check(mg.cumsum(x, { exclusive = true, reverse = true }), { 9, 7, 4, 0 })
    check(mg.cumprod(x, { exclusive = true }), { 1, 1, 2, 6 })
    check(mg.cumprod(x, { exclusive = true, reverse = true }), { 24, 12, 4, 1 })
  end)

  it("keep float dtypes, accumulate integers and bools into int64", function()
    assert.equal("float64", mg.cumsum(mg.tensor({ 1, 2 }, mg.float64)).dtype)
    assert.equal("int64", mg.cumsum(mg.tensor({ 1, 2 }, mg.int32)).dtype)
    check(mg.cumsum(mg.tensor({ 200, 100 }, mg.uint8)), { 200, 300 })   -- no uint8 wrap
    check(mg.cumsum(mg.tensor { true, false, true }), { 1, 1, 2 })
  end)

  it("accumulate float32 in double (a long row of 0.1 stays accurate)", function()
    local y = mg.cumsum(mg.full({ 1000000 }, 0.1, mg.float32))
    near(y[1000000]:item(), 100000, 1e-6)
  end)

  it("match a Lua scan on strided views and on sizes that use several threads", function()
    local base = mg.tensor(lcg_list(300 * 200, 7), mg.float64):reshape { 300, 200 }
    for _, case in ipairs({ { base, 1 }, { base, 2 }, { base:transpose(), 1 }, { base:transpose(), 2 },
      { base:slice { { 1, 300, 3 }, {} }, 2 } }) do
      local x, ax = case[1], case[2]
      local xt, y = x:totable(), mg.cumsum(x, { axis = ax, reverse = true }):totable()
      local r, c = #xt, #xt[1]
      for i = 1, r, 37 do
        for j = 1, c, 29 do
          local s = 0
          if ax == 1 then for k = i, r do s = s + xt[k][j] end else for k = j, c do s = s + xt[i][k] end end
          near(y[i][j], s, 1e-12)
        end
      end
    end
  end)

  it("cumprod's gradient is exact at zeros (no division by x)", function()
    local x = mg.tensor({ 2, 0, 3, 0.5 }, mg.float64)
    local w = mg.tensor({ 1, 2, 3, 4 }, mg.float64)
    local g = mg.grad(function(v) return mg.sum(mg.cumprod(v) * w) end)(x)
    -- d/dx_i sum_q w_q prod_{k<=q} x_k
    check(g, { 1 + 0, 2 * 2 + 3 * 2 * 3 + 4 * 2 * 3 * 0.5, 0, 0 })
    local g2 = mg.grad(function(v) return mg.sum(mg.cumprod(v, { exclusive = true, reverse = true }) * w) end)(x)
    -- out = {0*3*0.5, 3*0.5, 0.5, 1}
    check(g2, { 0, 1 * 3 * 0.5, 1 * 0 * 0.5 + 2 * 0.5, 1 * 0 * 3 + 2 * 3 + 3 * 1 })
  end)

  it("differentiating cumprod twice is an error that says so", function()
    local x = mg.tensor({ 1, 2, 3 }, mg.float64)
    fails(function()
      return mg.grad(function(v) return mg.sum(mg.grad(function(u) return mg.sum(mg.cumprod(u)) end)(v)) end)(x)
    end, "cumprod_grad", "second derivative of cumprod is not implemented")
  end)

  it("cumsum's gradient is the reverse cumsum", function()
    local x = mg.tensor({ 1, 2, 3 }, mg.float64)
    check(mg.grad(function(v) return mg.sum(mg.cumsum(v) * mg.tensor { 1.0, 10, 100 }) end)(x), { 111, 110, 100 })
    check(mg.grad(function(v) return mg.sum(mg.cumsum(v, { exclusive = true }) * mg.tensor { 1.0, 10, 100 }) end)(x),
      { 110, 100, 0 })
  end)
end)

describe("cumulative_logsumexp", function()
  it("is log(cumsum(exp(x))), stable for large values, -inf first when exclusive", function()
    near(mg.cumulative_logsumexp(mg.tensor { 0.0, 0.0, 0.0 }), { 0, math.log(2), math.log(3) })
    near(mg.cumulative_logsumexp(mg.tensor({ 1000, 1000 }, mg.float64)), { 1000, 1000 + math.log(2) }, 1e-12)
    check(mg.cumulative_logsumexp(mg.tensor { 1.0, 2.0 }, { exclusive = true })[1]:item(), -inf)
    check(mg.cumulative_logsumexp(mg.tensor { -inf, -inf }), { -inf, -inf })
    check(mg.cumulative_logsumexp(mg.tensor { 1, nan, 2 }):totable()[3], nan)
    assert.equal("float32", mg.cumulative_logsumexp(mg.tensor { 1, 2 }).dtype)
  end)

  it("has the gradient sum_q g_q exp(x_i - out_q), exclusive too (where out has -inf)", function()
    local xv = { 0.3, -0.2, 0.7 }
    local x = mg.tensor(xv, mg.float64)
    local wv = { 0.5, -1.5, 2.0 }
    local w = mg.tensor(wv, mg.float64)
    local function expect(excl)
      local out, acc = {}, -inf
      for q = 1, 3 do
        if excl then out[q] = acc end
        acc = acc == -inf and xv[q] or math.log(math.exp(acc) + math.exp(xv[q]))
        if not excl then out[q] = acc end
      end
      local g = {}
      for i = 1, 3 do
        g[i] = 0
        for q = 1, 3 do
          if (excl and q > i) or (not excl and q >= i) then g[i] = g[i] + wv[q] * math.exp(xv[i] - out[q]) end
        end
      end
      return g
    end
    near(mg.grad(function(v) return mg.sum(mg.cumulative_logsumexp(v) * w) end)(x), expect(false), 1e-12)
    -- the exclusive output's first element is -inf: weight it 0 so the loss stays finite
    local w0 = mg.tensor({ 0, -1.5, 2.0 }, mg.float64)
    wv[1] = 0
    near(mg.grad(function(v) return mg.sum(mg.cumulative_logsumexp(v, { exclusive = true }) * w0) end)(x),
      expect(true), 1e-12)
  end)
end)

describe("cummax, cummin and their positions", function()
  it("carry the running extreme, NaN from the first NaN on", function()
    check(mg.cummax(mg.tensor { 1, 3, 2, 5, 4 }), { 1, 3, 3, 5, 5 })
    check(mg.cummin(mg.tensor { 3, 1, 2, 0 }, { reverse = true }), { 0, 0, 0, 0 })
    check(mg.cummax(mg.tensor { 1, nan, 5 }), { 1, nan, nan })
    check(mg.cumargmax(mg.tensor { 1, 3, 3, 5 }), { 1, 2, 2, 4 })    -- ties: the first
    check(mg.cumargmin(mg.tensor { { 3, 1 }, { 0, 2 } }), { { 1, 1 }, { 2, 1 } })
    assert.equal("int32", mg.cummax(mg.tensor({ 1, 2 }, mg.int32)).dtype)
    check(mg.cummin(mg.tensor { true, false, true }), { true, false, false })
  end)

  it("send the gradient to the element holding each running extreme", function()
    local x = mg.tensor({ 1, 3, 2, 5 }, mg.float64)
    check(mg.grad(function(v) return mg.sum(mg.cummax(v) * mg.tensor { 1.0, 10, 100, 1000 }) end)(x), { 1, 110, 0, 1000 })
  end)
end)

describe("sort and argsort", function()
  it("sort ascending by default, descending on request, along any axis", function()
    local x = mg.tensor { { 3, 1, 2 }, { 0, 5, 4 } }
    check(mg.sort(x), { { 1, 2, 3 }, { 0, 4, 5 } })
    check(mg.sort(x, { direction = "DESCENDING" }), { { 3, 2, 1 }, { 5, 4, 0 } })
    check(mg.sort(x, { axis = 1 }), { { 0, 1, 2 }, { 3, 5, 4 } })
    check(mg.argsort(x, { axis = 1, direction = "DESCENDING" }), { { 1, 2, 2 }, { 2, 1, 1 } })
  end)

  it("are stable in both directions and put NaN above +inf", function()
    check(mg.argsort(mg.tensor { 2, 1, 2, 1 }), { 2, 4, 1, 3 })
    check(mg.argsort(mg.tensor { 2, 1, 2, 1 }, { direction = "DESCENDING" }), { 1, 3, 2, 4 })
    check(mg.sort(mg.tensor { 1, nan, -inf, inf }), { -inf, 1, inf, nan })
    check(mg.argsort(mg.tensor { 0.0, -0.0, 0.0 }), { 1, 2, 3 })   -- -0 ties with 0
  end)

  it("match Lua's sort on long rows (the radix path) of every dtype, and in threads", function()
    for _, dt in ipairs({ mg.float32, mg.float64, mg.int32, mg.int64, mg.uint8 }) do
      local vals = lcg_list(5000, 11, dt == mg.uint8 and 256 or nil)
      if dt == mg.int32 or dt == mg.int64 then
        for i = 1, #vals do vals[i] = math.floor(vals[i] * 2e6) end
      end
      local x = mg.tensor(vals, dt)
      local got = mg.sort(x):totable()
      local want = x:totable()
      table.sort(want)
      check(got, want, 0)
      local idx, xv = mg.argsort(x, { direction = "DESCENDING" }):totable(), x:totable()
      for i = 2, #idx do   -- descending, ties by position
        local xa, xb = xv[idx[i - 1]], xv[idx[i]]
        assert(xa > xb or (xa == xb and idx[i - 1] < idx[i]), "descending stable order broken at " .. i)
      end
    end
    local long = mg.tensor(lcg_list(20000, 9), mg.float32)   -- a long row: 11-bit digits
    local lt = long:totable()
    table.sort(lt)
    check(mg.sort(long), lt, 0)
    local big = mg.tensor(lcg_list(64 * 1000, 3), mg.float32):reshape { 64, 1000 }   -- 64k: threads
    local s = mg.sort(big, { axis = 1 }):transpose():totable()
    for r = 1, 1000, 97 do
      for i = 2, 64 do assert(s[r][i - 1] <= s[r][i]) end
    end
  end)

  it("sorts float32/int32 values bit for bit (the keys-only path): NaN above +inf, -0, infinities", function()
    -- every length class: insertion (< 32), 8-bit digits, 11-bit digits (>= 16384); strided rows too
    for _, n in ipairs({ 5, 31, 32, 1000, 20001 }) do
      local vals = lcg_list(n, 7)
      for i = 1, n, 13 do vals[i] = -vals[i] * 1e30 end
      vals[1], vals[math.max(2, math.floor(n / 2))], vals[n] = nan, -0.0, -inf
      vals[3], vals[4] = inf, 0.0
      local x = mg.tensor(vals, mg.float32)
      for _, dir in ipairs({ "ASCENDING", "DESCENDING" }) do
        local want = x:totable()   -- NaN is the largest: last ascending, first descending
        table.sort(want, function(a, b)
          if a ~= a or b ~= b then
            if dir == "ASCENDING" then return b ~= b and a == a else return a ~= a and b == b end
          end
          if dir == "ASCENDING" then return a < b else return a > b end
        end)
        local got = mg.sort(x, { direction = dir }):totable()
        local col = mg.sort(mg.stack({ x, x }, { axis = 2 }), { axis = 1, direction = dir }):totable()
        for i = 1, n do
          local a, c, b = got[i], col[i][2], want[i]
          assert((a ~= a and b ~= b) or a == b, ("n=%d %s at %d: got %s, want %s"):format(n, dir, i, a, b))
          assert((c ~= c and b ~= b) or c == b, ("strided n=%d %s at %d: got %s, want %s"):format(n, dir, i, c, b))
        end
      end
      local ints = {}
      for i = 1, n do ints[i] = ((i * 2654435761) % 4294967296) - 2147483648 end
      ints[1], ints[n] = -2147483648, 2147483647
      local ti = mg.tensor(ints, mg.int32)
      local wi = ti:totable()
      table.sort(wi)
      check(mg.sort(ti), wi, 0)
    end
    -- NaN with and without its sign bit (0/0 sets it on x86; negation flips it): last either way
    local z = mg.tensor({ 1, 0 / 0, -1 }, mg.float32)
    for _, t in ipairs({ z, -z }) do
      local got = mg.sort(t):totable()
      assert(got[1] == -1 and got[2] == 1 and got[3] ~= got[3], "a NaN must sort last whatever its sign bit")
    end
  end)

  it("sort's gradient goes back through the positions", function()
    local x = mg.tensor({ 3, 1, 2 }, mg.float64)
    check(mg.grad(function(v) return mg.sum(mg.sort(v) * mg.tensor { 1.0, 10, 100 }) end)(x), { 100, 1, 10 })
  end)
end)

describe("top_k", function()
  it("returns the k largest along the last axis, largest first, and their 1-based indices", function()
    local v, i = mg.top_k(mg.tensor { { 1, 5, 3, 5 }, { 9, 8, 7, 6 } }, 2)
    check(v, { { 5, 5 }, { 9, 8 } })
    check(i, { { 2, 4 }, { 1, 2 } })   -- ties: the lower index first (TF)
    local v1 = mg.top_k(mg.tensor { 1.0, 2 })
    check(v1, { 2 })                     -- k defaults to 1
    local v2 = mg.top_k(mg.tensor { 1.0, 2, 3 }, { k = 2, sorted = true })
    check(v2, { 3, 2 })
  end)

  it("selects a few of many (the heap path) exactly as a full descending argsort would", function()
    for _, dt in ipairs({ mg.float32, mg.float64, mg.int32, mg.uint8 }) do
      local mod = nil   -- integers: many ties
      if dt ~= mg.float32 and dt ~= mg.float64 then mod = 50 end
      local x = mg.tensor(lcg_list(3 * 2000, 5, mod), dt):reshape { 3, 2000 }
      local _, i = mg.top_k(x, 7)
      local full = mg.argsort(x, { direction = "DESCENDING" }):slice { {}, { 1, 7 } }
      h.check(i, full:totable())
    end
    -- one long row (>= 2^16) is split across threads, one heap per chunk, then merged:
    -- ties across chunks still go to the lower position
    local saved = mg.config.get_num_threads()
    mg.config.set_num_threads(math.min(2, mg.config.max_threads()))
    for _, mod in ipairs({ false, 50 }) do
      local x = mg.tensor(lcg_list(100001, 17, mod or nil), mod and mg.int32 or mg.float32)
      for _, k in ipairs({ 1, 100, 1500 }) do
        local v, i = mg.top_k(x, k)
        local full = mg.argsort(x, { direction = "DESCENDING" }):slice { { 1, k } }
        h.check(i, full:totable())
        h.check(v, mg.take(x, full, 1):totable())
      end
    end
    mg.config.set_num_threads(saved)
  end)

  it("differentiates through the values", function()
    local x = mg.tensor({ 1, 5, 3 }, mg.float64)
    check(mg.grad(function(t) local v = mg.top_k(t, 2); return mg.sum(v * mg.tensor { 1.0, 10 }) end)(x), { 0, 1, 10 })
  end)

  it("refuses bad k and options", function()
    local err = fails(function() local v = mg.top_k(mg.tensor { 1.0, 2 }, 3); return v end, "k = 3 is larger than the last axis", "(2)")
    -- named after the function the user called, at the user's line (not the op top_k is built on)
    assert.truthy(err:find("^[^\n]*scan_sort_spec%.lua:%d+: top_k: "), err)
    fails(function() return mg.top_k(mg.tensor { 1.0, 2 }, -1) end, "k must be >= 0")
    fails(function() return mg.top_k(mg.tensor(1.0), 1) end, "at least 1 dimension")
    fails(function() return mg.top_k(mg.tensor { 1.0 }, 1, { sortd = true }) end, "unknown option 'sortd'")
  end)
end)

describe("searchsorted", function()
  it("gives 1-based insertion points, left or right of equal elements", function()
    local s = mg.tensor { 1, 2, 2, 3 }
    check(mg.searchsorted(s, mg.tensor { 0, 2, 4 }), { 1, 2, 5 })
    check(mg.searchsorted(s, mg.tensor { 0, 2, 4 }, { side = "right" }), { 1, 4, 5 })
    check(mg.searchsorted(s, 2.5), 4)
    check(mg.searchsorted(mg.tensor { 1.0, 2, nan }, mg.tensor { nan, 5 }), { 3, 3 })
  end)

  it("searches each row of a batched sorted sequence", function()
    local s = mg.tensor { { 1, 3, 5 }, { 2, 4, 6 } }
    check(mg.searchsorted(s, mg.tensor { { 3, 6 }, { 3, 7 } }), { { 2, 4 }, { 2, 4 } })
  end)

  it("refuses shapes that do not line up", function()
    fails(function() return mg.searchsorted(mg.tensor { { 1, 2 } }, mg.tensor { { 1 }, { 2 } }) end,
      "searchsorted", "(1,2)", "(2,1)", "same leading dimensions")
    fails(function() return mg.searchsorted(mg.tensor(1), mg.tensor { 1 }) end, "at least 1 dimension")
  end)
end)

describe("bincount", function()
  it("counts each value (element i counts i - 1), with weights, minlength and maxlength", function()
    check(mg.bincount(mg.tensor { 0, 1, 1, 3 }), { 1, 2, 0, 1 })
    check(mg.bincount(mg.tensor { { 0, 1 }, { 1, 3 } }, { weights = mg.tensor { { 0.5, 1 }, { 2, 3 } }, minlength = 6 }),
      { 0.5, 3, 0, 3, 0, 0 })
    check(mg.bincount(mg.tensor { 0, 1, 1, 3 }, { maxlength = 2 }), { 1, 2 })   -- values past it dropped (TF)
    check(mg.bincount(mg.tensor({ 2, 2 }, mg.uint8), { length = 2 }), { 0, 0 })
    assert.same({ 0 }, mg.bincount(mg.tensor({}, mg.int64)).shape)
  end)

  it("passes the weights' gradient back", function()
    check(mg.grad(function(w) return mg.sum(mg.bincount(mg.tensor { 0, 1, 1 }, { weights = w }) * mg.tensor { 1.0, 10 }) end)(
      mg.tensor({ 1, 2, 3 }, mg.float32)), { 1, 10, 10 })
  end)

  it("works staged with length=, and says to give it otherwise", function()
    local f = mg.func(function(x) return mg.bincount(x, { length = 5 }) end)
    check(f(mg.tensor { 0, 4, 4, 9 }), { 1, 0, 0, 0, 2 })
    local g = mg.func(function(x) return mg.bincount(x) end)
    fails(function() return g(mg.tensor { 0, 4 }) end, "bincount", "give length=")
  end)

  it("refuses non-integer, negative and mis-shaped input", function()
    fails(function() return mg.bincount(mg.tensor { 0.5 }) end, "bincount: x must be an integer tensor", "float32")
    fails(function() return mg.bincount(mg.tensor { -1, 2 }) end, "bincount: x must be non-negative", "-1")
    fails(function() return mg.bincount(mg.tensor { 1, 2 }, { weights = mg.tensor { 1.0 } }) end, "weights (1)", "x (2)")
    fails(function() return mg.bincount(mg.tensor { 1 }, { minlen = 2 }) end, "unknown option 'minlen'")
  end)
end)

describe("unique and unique_with_counts", function()
  it("give the values in first-occurrence order (TF), each element's position in them, the counts", function()
    local v, i = mg.unique(mg.tensor { 4, 1, 4, 2 })
    check(v, { 4, 1, 2 })
    check(i, { 1, 2, 1, 3 })
    local v2, i2, c2 = mg.unique_with_counts(mg.tensor { 1, 1, 2, 4, 4, 4, 7, 8, 8 })
    check(v2, { 1, 2, 4, 7, 8 })
    check(i2, { 1, 1, 2, 3, 3, 3, 4, 5, 5 })
    check(c2, { 2, 1, 3, 1, 2 })
    local x = mg.tensor(lcg_list(3000, 13, 97), mg.int32)   -- long: the radix and heap paths
    local v3, i3, c3 = mg.unique_with_counts(x)
    check(mg.take(v3, i3, 1), x:totable())
    assert.equal(3000, mg.sum(c3):item())
    assert.equal(97, v3.shape[1])
  end)

  it("handle empty and one-element input, NaN as its own value", function()
    local v, i = mg.unique(mg.tensor({}, mg.float32))
    assert.same({ 0 }, v.shape)
    assert.same({ 0 }, i.shape)
    local _, _, c = mg.unique_with_counts(mg.tensor { nan, 1, nan })
    check(c, { 1, 1, 1 })
  end)

  it("refuse non-1-d input and staging, saying why", function()
    fails(function() return mg.unique(mg.tensor { { 1 } }) end, "unique: x must be 1-d", "(1,1)")
    local f = mg.func(function(x) return mg.unique(x) end)
    fails(function() return f(mg.tensor { 1, 2 }) end, "unique", "call it eagerly")
  end)
end)

describe("bad options", function()
  it("name the op and the option", function()
    fails(function() return mg.cumsum(mg.tensor { 1 }, { axis = 2 }) end, "cumsum: axis 2 is out of range for a 1-d tensor")
    fails(function() return mg.cumsum(mg.tensor { 1 }, { exclusiv = true }) end, "cumsum", "unknown option 'exclusiv'")
    fails(function() return mg.sort(mg.tensor { 1 }, { direction = "up" }) end, "sort", "direction", "ASCENDING, DESCENDING")
    fails(function() return mg.searchsorted(mg.tensor { 1 }, mg.tensor { 1 }, { side = "middle" }) end, "side", "left, right")
    fails(function() return mg.cummax(mg.tensor { 1 }, { exclusive = true }) end, "cummax", "unknown option 'exclusive'")
  end)
end)

describe("staged (mg.func) with unknown sizes", function()
  local function spec(shape) return mg.TensorSpec { shape = shape, dtype = mg.float32 } end
  it("scans, sorts and selects, values and gradients as eager", function()
    local f = mg.func(function(x)
      local v = mg.top_k(x, 2)
      return mg.cumsum(x, { axis = 2 }) + mg.sort(x) + mg.cummax(x, { axis = 2 }), v,
        mg.searchsorted(mg.tensor { 0.0, 0.5, 1.0 }, x)
    end, { input_signature = { spec({ -1, -1 }) } })
    local x = mg.tensor { { 0.2, 0.9, 0.4 }, { 0.7, 0.1, 0.3 } }
    local a, v, s = f(x)
    check(a, (mg.cumsum(x, { axis = 2 }) + mg.sort(x) + mg.cummax(x, { axis = 2 })):totable(), 1e-6)
    check(v, { { 0.9, 0.4 }, { 0.7, 0.3 } }, 1e-6)
    check(s, { { 2, 3, 2 }, { 3, 2, 2 } })
    local g = mg.func(function(t)
      return mg.grad(function(u) return mg.sum(mg.cumprod(u, { axis = 2 }) + mg.cumulative_logsumexp(u, { axis = 2 })) end)(t)
    end, { input_signature = { spec({ -1, 3 }) } })
    local want = mg.grad(function(u) return mg.sum(mg.cumprod(u, { axis = 2 }) + mg.cumulative_logsumexp(u, { axis = 2 })) end)(x)
    check(g(x), want:totable(), 1e-6)
  end)
end)
