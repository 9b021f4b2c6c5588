-- limits_spec.lua — no crash or hang on any shape or setting (issue 15).
--
-- Element counts and byte sizes: every shape a tensor can take is checked
-- once (core/shape.c, mg_shape_size) so that a count that would overflow is
-- an error naming the op and the shape, never a count that wrapped to 0 or
-- went negative (which crashed sum, hung tostring and made mg.save write a
-- file mg.load rejects). Threads: mg.config.set_num_threads refuses counts
-- above the processors available instead of crashing or hanging in OpenMP.
--
-- Each hazard first runs in a child interpreter under a watchdog (the same
-- interpreter as this spec: luajit with the FFI binding, else the moongrad
-- program), so a crash or a hang fails one test instead of the suite; then
-- the error itself is checked in process. Portable Lua (5.4 and LuaJIT).
local mg = require "moongrad"
local h = require "tests.spec.helpers"
local fails = h.fails

local INTERP = rawget(_G, "jit") and "luajit" or (os.getenv("MOONGRAD") or "build/bin/moongrad")

-- Runs Lua source `src` in a child interpreter with a 60 s watchdog; returns
-- its output and whether it exited with status 0.
local function child(src)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(src)
  f:close()
  local p = assert(io.popen("timeout -k 5 60 '" .. INTERP .. "' '" .. file .. "' 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  os.remove(file)
  local rc = tonumber(out:match("exit=(%d+)%s*$"))
  return out, rc == 0
end

-- src (a chunk that raises) must raise in a child, cleanly: the child prints
-- the message and exits 0; a crash, a hang or no error fails.
local function raises_in_child(src, ...)
  local out, ok = child("local mg = require 'moongrad'\nlocal ok, e = pcall(function()\n" .. src
    .. "\nend)\nprint(ok and 'NO ERROR' or ('ERROR: ' .. tostring(e)))\n")
  assert(ok, "the child crashed or hung: " .. out)
  assert(out:find("ERROR: ", 1, true) and not out:find("NO ERROR", 1, true), "no error: " .. out)
  for _, want in ipairs({ ... }) do
    assert(out:find(want, 1, true), ("message %q does not mention %q"):format(out, want))
  end
end

describe("element counts and byte sizes", function()
  it("expand to 2^64 elements, then reshape and sum: an error naming expand and the shape", function()
    raises_in_child("return mg.ones{1,1}:expand{2^32, 2^32}:reshape{-1}:sum()",
      "expand", "(4294967296,4294967296)", "too large")
    raises_in_child("return mg.ones{1,1}:expand{2^32, 2^32}:transpose():sum()", "expand", "too large")
    fails(function() return mg.ones { 1, 1 }:expand { 2 ^ 32, 2 ^ 32 } end, "expand", "(4294967296,4294967296)",
      "float32", "too large")
  end)

  it("expand{2^62, 3}: no hang in tostring or sum", function()
    raises_in_child("return tostring(mg.ones{1,1}:expand{2^62, 3})", "expand", "(4611686018427387904,3)")
    raises_in_child("return mg.ones{1,1}:expand{2^62, 3}:sum()", "expand", "(4611686018427387904,3)")
  end)

  it("numel never goes negative or wraps: a view whose bytes pass 2^59 is refused", function()
    raises_in_child("return mg.ones{1,1}:expand{2^31, 2^31}:numel()", "expand", "(2147483648,2147483648)",
      "at most 2^59 bytes")
    -- the largest views that fit are fine, and count right
    local v = mg.ones({ 1, 1 }, mg.uint8):expand { 2 ^ 29, 2 ^ 30 }
    assert.equal(2 ^ 59, v:numel())
    -- an empty tensor's other sizes are bounded too (kernels multiply subsets of the axes)
    assert.equal(0, mg.zeros { 0, 4 }:reshape { 0, 2 ^ 20, 2 ^ 20 }:numel())
    fails(function() return mg.zeros { 0, 4 }:reshape { 0, 2 ^ 62, 2 ^ 62 } end, "reshape",
      "(0,4611686018427387904,4611686018427387904)", "without its zero sizes")
    fails(function() return mg.zeros { 0, 2 ^ 62, 2 ^ 62 } end, "without its zero sizes")
  end)

  it("every op's result is checked, not expand's only", function()
    local col = mg.ones { 1, 1 }:expand { 2 ^ 31, 1 }
    fails(function() return col:matmul(col:transpose()) end, "matmul", "(2147483648,2147483648)", "too large")
    fails(function() return mg.zeros { 2 ^ 40, 2 ^ 40 } end, "(1099511627776,1099511627776)", "too large")
    local big = mg.ones({ 1 }, mg.uint8):expand { 2 ^ 58 }
    fails(function() return mg.concat({ big, big, big }) end, "concat", "(864691128455135232)", "too large")
    fails(function() return mg.ones { 1 }:expand { 2 ^ 60 } + 1 end, "too large")
  end)

  it("a staged function refuses the shape when it is traced", function()
    local f = mg.func(function(x) return x:expand { 2 ^ 32, 2 ^ 32 }:sum() end)
    fails(function() return f(mg.ones { 1, 1 }) end, "expand", "(4294967296,4294967296)", "too large")
  end)

  it("what mg.save writes, mg.load reads back (a broadcast view saves its elements)", function()
    local path = os.tmpname()
    local v = mg.tensor({ { 1, 2, 3 } }, mg.float32):expand { 1000, 3 }
    mg.save(path, { v = v })
    local t = mg.load(path)
    assert.same({ 1000, 3 }, t.v.shape)
    assert.equal(6000, t.v:sum():item())
    os.remove(path)
  end)
end)

describe("mg.config.set_num_threads", function()
  it("refuses counts above the processors available: no crash or hang in OpenMP", function()
    local max = mg.config.max_threads()
    assert.is_true(max >= 1)
    for _, n in ipairs({ "100000", "1e9", "1000", tostring(max + 1), "-1" }) do
      raises_in_child("mg.config.set_num_threads(" .. n .. ")", "set_num_threads", "out of range",
        "1 to " .. max)
    end
    local before = mg.config.get_num_threads()
    fails(function() mg.config.set_num_threads(max + 1) end, "set_num_threads", tostring(max + 1), "1 to " .. max)
    fails(function() mg.config.set_num_threads(2 ^ 32 + 2) end, "set_num_threads", "out of range")
    fails(function() mg.config.set_num_threads(1.5) end, "set_num_threads")
    assert.equal(before, mg.config.get_num_threads())   -- a refused call changes nothing
  end)

  it("accepts 1 .. max, and 0 for one per processor", function()
    local saved, max = mg.config.get_num_threads(), mg.config.max_threads()
    mg.config.set_num_threads(1)
    assert.equal(1, mg.config.get_num_threads())
    assert.equal(6, (mg.ones { 2, 3 } * 1):sum():item())
    mg.config.set_num_threads(0)
    assert.equal(max, mg.config.get_num_threads())
    mg.config.set_num_threads(saved)
  end)
end)
