-- isa_spec.lua — the run-time choice of kernel copies (core/isa.c, issue 15).
--
-- The default build holds the kernels three times (baseline x86-64, AVX2,
-- AVX-512) and runs the best one this CPU supports; MG_ISA asks for a lower
-- one. Every copy must compute the same results: a battery of ops (each
-- kernel family: elementwise, reductions, softmax, matmul, conv and its
-- gradients, pooling, random, optimizer updates, a staged function with a
-- fused node) runs in a child process per available copy, and the results
-- must agree to float32 rounding (the copies differ only in vector width and
-- in fused multiply-adds). Portable Lua (5.4 and LuaJIT).
local mg = require "moongrad"

local INTERP = rawget(_G, "jit") and "luajit" or (os.getenv("MOONGRAD") or "build/bin/moongrad")

local function run(env, src)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(src)
  f:close()
  local p = assert(io.popen(env .. " timeout -k 5 120 '" .. INTERP .. "' '" .. file .. "' 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  os.remove(file)
  return out, tonumber(out:match("exit=(%d+)%s*$")) == 0
end

local BATTERY = [[
local mg = require "moongrad"
mg.random.seed(7)
local x = mg.random.normal{4, 9, 9, 3}
local w = mg.random.normal{3, 3, 3, 16} * 0.2
local out = {}
local function put(name, t) out[#out + 1] = name .. " " .. table.concat(t:reshape{-1}:totable(), " ") end
put("ew", mg.tanh(x) * mg.exp(-mg.abs(x)) + mg.sigmoid(x) - mg.sqrt(mg.abs(x) + 1) / (x * x + 2))
put("sum", x:sum{axis = 2})
put("max", x:max{axis = 4})
put("mean", x:mean{axis = 1})
put("softmax", mg.softmax(x:reshape{-1, 27}))
put("matmul", x:reshape{36, 27}:matmul(x:reshape{36, 27}:transpose()))
local tape = mg.GradientTape()
tape:watch(x)
tape:watch(w)
local y = mg.conv2d(x, w, {padding = "same"})
local loss = (y * y):sum()
tape:stop()
put("conv", y)
local gx, gw = (table.unpack or unpack)(tape:gradient(loss, {x, w}))
put("conv_dx", gx)
put("conv_dw", gw)
put("pool", mg.max_pool2d(x, {ksize = 2}))
put("avgpool", mg.avg_pool2d(x, {ksize = 3}))
put("uniform", mg.random.uniform{1000})
local f = mg.func(function(a, b) return mg.relu(a * b + a) * 0.5 - mg.tanh(b) end)
put("fused", f(x, x * 0.3))
local v = mg.Variable(mg.ones{40})
local opt = mg.optim.Adam{learning_rate = 0.01}
for _ = 1, 3 do opt:apply_gradients({mg.arange(40):cast(mg.float32) * 0.1}, {v}) end
put("adam", v:read())
print("isa=" .. mg.config.info().isa)
for _, line in ipairs(out) do print(line) end
]]

local function parse(out)
  local r = {}
  for name, nums in out:gmatch("\n?([%w_]+) ([%-%d][^\n]*)") do
    local t = {}
    for n in nums:gmatch("%S+") do t[#t + 1] = tonumber(n) end
    r[name] = t
  end
  return r
end

describe("kernel copies chosen at run time", function()
  local info = mg.config.info()
  local avail = {}
  for name in tostring(info.isa_available):gmatch("[^,]+") do avail[#avail + 1] = name end

  it("runs the best copy this CPU supports, and says which", function()
    assert.is_true(#avail >= 1)
    assert.equal("baseline", avail[1])
    assert.equal(avail[#avail], info.isa)
  end)

  it("MG_ISA asks for a lower copy; one the CPU lacks falls back to the best", function()
    local out = run("MG_ISA=baseline", "print(require('moongrad').config.info().isa)")
    assert.equal("baseline", out:match("^(%S+)"))
    out = run("MG_ISA=nonsense", "print(require('moongrad').config.info().isa)")
    assert.equal(info.isa, out:match("^(%S+)"))
    if info.isa ~= "avx512" then
      out = run("MG_ISA=avx512", "print(require('moongrad').config.info().isa)")
      assert.equal(info.isa, out:match("^(%S+)"))
    end
  end)

  it("every available copy computes the same results", function()
    local ref
    for _, isa in ipairs(avail) do
      local out, ok = run("MG_ISA=" .. isa, BATTERY)
      assert(ok, isa .. ": the battery failed: " .. out)
      assert.equal("isa=" .. isa, out:match("isa=%S+"))
      local r = parse(out)
      if not ref then
        ref = r
      else
        for name, want in pairs(ref) do
          local got = r[name]
          assert(got and #got == #want, isa .. ": " .. name .. " has " .. (got and #got or 0) .. " values, want " .. #want)
          for i = 1, #want do
            local tol = 2e-5 * math.max(1, math.abs(want[i]))
            assert(math.abs(got[i] - want[i]) <= tol,
              ("%s: %s[%d] = %.9g, baseline %.9g"):format(isa, name, i, got[i], want[i]))
          end
        end
      end
    end
    assert.is_truthy(ref and ref.conv_dw and #ref.conv_dw == 3 * 3 * 3 * 16)
  end)
end)
