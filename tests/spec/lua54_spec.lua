-- lua54_spec.lua — what only Lua 5.4 can say: the // operator on tensors
-- (its oracle is Lua's own // and %), and <close> on tensors and tapes.
-- LuaJIT cannot parse this file, so tests/luajit/skip.lua skips it there;
-- the ops themselves (mg.floordiv, mg.mod, t:free(), tape:stop()) are tested
-- portably in the other specs.

local mg = require "moongrad"
local h = require "tests.spec.helpers"
local check, near = h.check, h.near

local nan, inf = 0 / 0, math.huge
local imin = math.mininteger
local float_types = { mg.float32, mg.float64 }
local function is_negzero(x) return x == 0 and 1 / x < 0 end

describe("the // and % operators (moved from elementwise_spec.lua)", function()
  it("floordiv and mod of floats agree with Lua's // and %", function()
    local as = { 7.5, -7.5, 7.5, -7.5, 5.5, 0.0, -1.0, 1.0, 3.0, inf, nan, 1e300 }
    local bs = { 2.0, 2.0, -2.0, -2.0, -2.0, 3.0, inf, -inf, 0.0, 2.0, 1.0, 1e-300 }
    for _, d in ipairs(float_types) do
      local fa, fb = mg.tensor(as, d):totable(), mg.tensor(bs, d):totable()
      local wd, wm = {}, {}
      for i = 1, #fa do wd[i], wm[i] = fa[i] // fb[i], fa[i] % fb[i] end
      check(mg.tensor(fa, d) // mg.tensor(fb, d), wd)
      check(mg.tensor(fa, d) % mg.tensor(fb, d), wm)
      assert.equal(d, mg.floordiv(mg.tensor(fa, d), mg.tensor(fb, d)).dtype)
    end
    assert.is_true(is_negzero((mg.tensor({ -2.0 }, mg.float64) % 2):totable()[1]))  -- as Lua: -2.0 % 2 == -0.0
  end)

  it("floordiv and mod of integers agree with Lua, and define x // 0 and x % 0 as 0", function()
    local as, bs = {}, {}
    for a = -7, 7 do for _, b in ipairs({ -3, -2, -1, 1, 2, 3, 5 }) do as[#as + 1], bs[#bs + 1] = a, b end end
    for _, d in ipairs({ mg.int32, mg.int64 }) do
      local wd, wm = {}, {}
      for i = 1, #as do wd[i], wm[i] = as[i] // bs[i], as[i] % bs[i] end
      check(mg.tensor(as, d) // mg.tensor(bs, d), wd)
      check(mg.tensor(as, d) % mg.tensor(bs, d), wm)
    end
    check(mg.tensor({ 5, -5, 0 }) // 0, { 0, 0, 0 })
    check(mg.tensor({ 5, -5, 0 }) % 0, { 0, 0, 0 })
    check(mg.tensor({ imin }) // -1, { imin })  -- wraps, as Lua does
    check(mg.tensor({ imin }) % -1, { 0 })
    check(mg.tensor({ -2147483648 }, mg.int32) // mg.tensor({ -1 }, mg.int32), { -2147483648 })
    check(mg.tensor({ 7, 200 }, mg.uint8) // mg.tensor({ 2, 0 }, mg.uint8), { 3, 0 })
    check(mg.tensor({ 7, 200 }, mg.uint8) % mg.tensor({ 4, 0 }, mg.uint8), { 3, 0 })
  end)

end)

describe("<close> (moved from bad_input_spec.lua)", function()
  it("a tensor closed by <close> cannot be used after its block", function()
    local keep
    do
      local t <close> = mg.ones{2}
      keep = t
    end
    h.fails(function() return keep * 2 end, "mul", "freed")
  end)
end)

describe("<close> on a GradientTape (moved from autodiff_spec.lua)", function()
  it("<close>: recording starts at creation and ends with the scope (Lua 5.4)", function()
    local chunk = assert(load([[
      local mg = ...
      local x = mg.tensor({1.0, 2.0})
      local tape, y
      do
        local t <close> = mg.GradientTape()
        tape = t
        t:watch(x)
        assert(t:recording())
        y = mg.sum(x * x)
      end
      local still = tape:recording()
      return tape:gradient(y, x), still
    ]], "close_chunk", "t"))
    local g, still = chunk(mg)
    assert.is_false(still)
    near(g, { 2, 4 })
    -- the gradient can be taken inside the scope too, and an error in the
    -- scope still stops the tape
    local tape2
    local ok, err = pcall(assert(load([[
      local mg, keep = ...
      local t <close> = mg.GradientTape()
      keep(t)
      error("inside the scope")
    ]], "close_chunk2", "t")), mg, function(t) tape2 = t end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("inside the scope", 1, true))
    assert.is_false(tape2:recording())
  end)
end)

describe("the bitwise operators & | ~ << >> on tensors (issue 17)", function()
  it("agree with Lua's own integer operators (>> on non-negative values: Lua's is logical)", function()
    local as = { 0, 1, 5, 12, 255, 1000, -7, -1024, imin }
    local bs = { 3, 6, 1, 10, 15, 7, 2, 5, -1 }
    local a, b = mg.tensor(as, mg.int64), mg.tensor(bs, mg.int64)
    local wand, wor, wxor, wnot = {}, {}, {}, {}
    for i = 1, #as do wand[i], wor[i], wxor[i], wnot[i] = as[i] & bs[i], as[i] | bs[i], as[i] ~ bs[i], ~as[i] end
    check(a & b, wand)
    check(a | b, wor)
    check(a ~ b, wxor)
    check(~a, wnot)
    check(a & 6, (function() local r = {} for i = 1, #as do r[i] = as[i] & 6 end return r end)())
    check(3 | a, (function() local r = {} for i = 1, #as do r[i] = 3 | as[i] end return r end)())
    local sh = mg.tensor({ 0, 1, 5, 31, 62, 63 }, mg.int64)
    local ws, wr = {}, {}
    for i, s in ipairs({ 0, 1, 5, 31, 62, 63 }) do ws[i], wr[i] = 3 << s, 1000 >> s end
    check(mg.tensor(3, mg.int64) << sh, ws)
    check(mg.tensor(1000, mg.int64) >> sh, wr)
    -- >> is arithmetic on signed tensors (NumPy, TF): -8 >> 1 is -4, where Lua's own gives a huge positive
    check(mg.tensor({ -8 }, mg.int64) >> 1, { -4 })
    assert.equal(mg.int32, (mg.tensor({ 1 }, mg.int32) << 2).dtype)
  end)

  it("refuse float tensors, naming the op", function()
    h.fails(function() return mg.tensor { 1.5 } & 1 end, "bitwise_and", "float32")
    h.fails(function() return ~mg.tensor { 1.5 } end, "bitwise_not", "float32")
    h.fails(function() return mg.tensor { 1 } << 0.5 end, "left_shift")
  end)
end)
