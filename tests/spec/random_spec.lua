-- random_spec.lua — the random ops (mg.random.*): reproducibility from
-- mg.random.seed and from a per-call seed, independence of calls, ranges,
-- moments of 1e5 samples, the truncation bound, and bad arguments.

local mg = require "moongrad"
local R = mg.random

local function fails(fn, ...)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error, the call succeeded")
  err = tostring(err)
  for _, want in ipairs({...}) do
    assert(err:find(want, 1, true), ("message %q does not mention %q"):format(err, want))
  end
end

-- Mean, standard deviation, min and max of a 1-d tensor's values.
local function stats(t)
  local v = t:totable()
  local s, s2, lo, hi = 0, 0, math.huge, -math.huge
  for i = 1, #v do
    local x = v[i]
    if type(x) == "boolean" then x = x and 1 or 0 end
    s, s2 = s + x, s2 + x * x
    if x < lo then lo = x end
    if x > hi then hi = x end
  end
  local mean = s / #v
  return mean, math.sqrt(s2 / #v - mean * mean), lo, hi
end

local N = 100000

describe("random: seeding", function()
  it("mg.random.seed replays the same sequence", function()
    R.seed(123)
    local a, b = R.uniform{5}, R.normal{2, 3}
    R.seed(123)
    local c, d = R.uniform{5}, R.normal{2, 3}
    assert.same(a:totable(), c:totable())
    assert.same(b:totable(), d:totable())
  end)
  it("consecutive calls and different seeds differ", function()
    R.seed(1)
    local a, b = R.uniform{8}, R.uniform{8}
    assert.are_not.same(a:totable(), b:totable())
    R.seed(2)
    assert.are_not.same(a:totable(), R.uniform{8}:totable())
  end)
  it("a seed argument gives the same tensor on every call", function()
    local a = R.uniform({4}, 0, 1, mg.float32, 7)
    R.uniform{100}                            -- the global stream moves on
    local b = R.uniform({4}, 0, 1, mg.float32, 7)
    assert.same(a:totable(), b:totable())
    assert.are_not.same(a:totable(), R.uniform({4}, 0, 1, mg.float32, 8):totable())
    assert.same(R.integers({6}, 1, 100, mg.int64, 3):totable(), R.integers({6}, 1, 100, mg.int64, 3):totable())
    assert.same(R.normal({6}, 0, 1, mg.float32, 3):totable(), R.normal({6}, {seed = 3}):totable())
  end)
  it("does not depend on the number of threads", function()
    local saved = mg.config.get_num_threads()
    mg.config.set_num_threads(1)
    local a = R.normal({100003}, 0, 1, mg.float32, 11)
    mg.config.set_num_threads(2)
    local b = R.normal({100003}, 0, 1, mg.float32, 11)
    mg.config.set_num_threads(saved)
    assert.equal(a:tobytes(), b:tobytes())
  end)
end)

describe("random: distributions", function()
  it("uniform lies in [low, high) with the right moments", function()
    R.seed(5)
    local mean, sd, lo, hi = stats(R.uniform({N}, -1, 3))
    assert.is_true(lo >= -1 and hi < 3)
    assert.is_true(math.abs(mean - 1) < 0.03)
    assert.is_true(math.abs(sd - 4 / math.sqrt(12)) < 0.02)
    local d = R.uniform({N}, 10, 10.5, mg.float64)
    assert.equal("float64", d.dtype)
    mean, sd, lo, hi = stats(d)
    assert.is_true(lo >= 10 and hi < 10.5)
    assert.is_true(math.abs(mean - 10.25) < 0.005)
  end)
  it("normal has the asked mean and standard deviation", function()
    R.seed(6)
    local mean, sd = stats(R.normal({N}, 2, 3))
    assert.is_true(math.abs(mean - 2) < 0.05)
    assert.is_true(math.abs(sd - 3) < 0.05)
    mean, sd = stats(R.normal({N}, 0, 1, mg.float64))
    assert.is_true(math.abs(mean) < 0.02)
    assert.is_true(math.abs(sd - 1) < 0.02)
    local z = R.normal({3}, 4, 0)             -- stddev 0: the mean itself
    assert.same({4, 4, 4}, z:totable())
  end)
  it("truncated_normal stays within two standard deviations", function()
    R.seed(7)
    local mean, sd, lo, hi = stats(R.truncated_normal({N}, 1, 0.5, mg.float64))
    assert.is_true(lo >= 0 and hi <= 2)
    assert.is_true(math.abs(mean - 1) < 0.01)
    assert.is_true(math.abs(sd - 0.5 * 0.8796) < 0.01)  -- sd of N(0,1) cut at +-2 is 0.8796
    local _, _, flo, fhi = stats(R.truncated_normal({N}))
    assert.is_true(flo >= -2.0000001 and fhi <= 2.0000001)
  end)
  it("bernoulli gives 1 with probability p, in any dtype", function()
    R.seed(8)
    local mean = stats(R.bernoulli({N}, 0.25))
    assert.is_true(math.abs(mean - 0.25) < 0.01)
    local b = R.bernoulli({N}, 0.7, mg.bool)
    assert.equal("bool", b.dtype)
    mean = stats(b)
    assert.is_true(math.abs(mean - 0.7) < 0.01)
    local _, _, lo0, hi0 = stats(R.bernoulli({1000}, 0, mg.int32))
    assert.is_true(lo0 == 0 and hi0 == 0)
    local _, _, lo1, hi1 = stats(R.bernoulli({1000}, 1, mg.uint8))
    assert.is_true(lo1 == 1 and hi1 == 1)
  end)
  it("integers covers low..high inclusive, uniformly", function()
    R.seed(9)
    local t = R.integers({60000}, 1, 6)
    assert.equal("int64", t.dtype)
    local count = {}
    for _, v in ipairs(t:totable()) do count[v] = (count[v] or 0) + 1 end
    for v = 1, 6 do
      assert.is_true(math.abs(count[v] - 10000) < 500, "value " .. v .. " drawn " .. tostring(count[v]) .. " times")
    end
    for v in pairs(count) do assert.is_true(v >= 1 and v <= 6) end
    local c = R.integers({5}, -3, -3, mg.int32)
    assert.same({-3, -3, -3, -3, -3}, c:totable())
    local _, _, lo, hi = stats(R.integers({N}, 0, 255, mg.uint8))
    assert.is_true(lo == 0 and hi == 255)
  end)
  it("makes any shape, empty ones included", function()
    assert.same({2, 3, 4}, R.uniform{2, 3, 4}.shape)
    assert.same({0, 3}, R.normal{0, 3}.shape)
    assert.equal(1, R.bernoulli({}, 1):item())
  end)
end)

describe("random: bad arguments", function()
  it("names the op and the bad value", function()
    fails(function() return R.uniform({3}, 1, 1) end, "uniform", "low < high")
    fails(function() return R.uniform({3}, 0, 1, mg.int32) end, "uniform", "int32")
    fails(function() return R.normal({3}, 0, -1) end, "normal", "stddev")
    fails(function() return R.truncated_normal({3}, 0 / 0, 1) end, "truncated_normal", "mean")
    fails(function() return R.bernoulli({3}, 1.5) end, "bernoulli", "1.5")
    fails(function() return R.integers({3}, 5, 4) end, "randint", "low <= high")
    fails(function() return R.integers({3}, 0, 1, mg.float32) end, "randint", "float32")
    fails(function() return R.integers({3}, 0, 256, mg.uint8) end, "randint", "uint8")
    fails(function() return R.integers({3}) end, "randint", "low")
    fails(function() return R.uniform{-1} end, "uniform", "-1")
  end)
end)
