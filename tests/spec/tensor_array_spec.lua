-- tensor_array_spec.lua — mg.TensorArray (issue 14, item 4): TensorFlow's write/read/stack/
-- unstack/gather/scatter/concat/size with 1-based indices, eager (a list, dynamic size) and staged
-- (a buffer carried by AutoGraph's while and if), the same results both ways, gradients through a
-- staged loop against finite differences, and the errors (dtype, shape, range, a written-to array).
local mg = require "moongrad"
local h = require "tests.spec.helpers"
local fails, near = h.fails, h.near
local f32 = h.f32

-- Runs fn eagerly and staged (mg.func) on the same arguments; both must agree.
local function both(fn, ...)
  local eager = fn(...)
  local staged = mg.func(fn)(...)
  near(staged, eager, 1e-6)
  return eager
end

describe("TensorArray, eager and staged alike", function()
  it("write then stack and read (a while loop over a tensor bound)", function()
    local function fill(n)
      local ta = mg.TensorArray { dtype = mg.float32, size = 4 }
      local i = mg.tensor(1)
      while i <= n do
        ta = ta:write(i, mg.cast(i, mg.float32) * 10)
        i = i + 1
      end
      return ta:stack()
    end
    near(both(fill, mg.tensor(4)), { 10, 20, 30, 40 })
    near(mg.func(fill)(mg.tensor(2)), { 10, 20, 0, 0 })   -- staged: unwritten rows are zeros (XLA's rule)
  end)

  it("reads of earlier elements inside a numeric for, elements of any shape", function()
    local function run(x)
      local ta = mg.TensorArray { dtype = mg.float32, size = 3 }
      ta = ta:write(1, x)
      for i = 2, 3 do ta = ta:write(i, ta:read(i - 1) * 2 + 1) end
      return ta:stack()
    end
    near(both(run, f32 { { 1, 2 } }), { { { 1, 2 } }, { { 3, 5 } }, { { 7, 11 } } })
  end)

  it("a TensorArray written in one branch of a staged if", function()
    local function run(x)
      local ta = mg.TensorArray { dtype = mg.float32, size = 2, element_shape = {} }
      ta = ta:write(1, x)
      if x > 0 then ta = ta:write(2, x * 3) else ta = ta:write(2, -x) end
      return ta:stack()
    end
    near(both(run, f32(2)), { 2, 6 })
    near(both(run, f32(-2)), { -2, 2 })
  end)

  it("unstack, gather, scatter, concat, size", function()
    local function run(x)
      local ta = mg.TensorArray { dtype = mg.float32, size = 3 }
      ta = ta:unstack(x)
      local g = ta:gather({ 3, 1 })
      ta = ta:scatter({ 2 }, f32 { { 9, 9 } })
      return g, ta:concat(), ta:size()
    end
    local x = f32 { { 1, 2 }, { 3, 4 }, { 5, 6 } }
    local g, c, n = run(x)
    near(g, { { 5, 6 }, { 1, 2 } })
    near(c, { 1, 2, 9, 9, 5, 6 })
    assert.equal(3, n)
    local sg, sc = mg.func(function(v) local a, b = run(v); return a, b end)(x)
    near(sg, g)
    near(sc, c)
  end)

  it("the gradient through a staged loop that fills it (against float64 finite differences)", function()
    local function f(x, n)
      local ta = mg.TensorArray { dtype = mg.float64, size = 3 }
      local i = mg.tensor(1)
      local v = x
      while i <= n do v = v * x; ta = ta:write(i, v); i = i + 1 end
      return mg.sum(ta:stack())
    end
    local sf = mg.func(f)
    local x = mg.tensor(1.5, "float64")
    local tape = mg.GradientTape()
    tape:watch(x)
    local y = sf(x, mg.tensor(3))
    tape:stop()
    near(y, 1.5 ^ 2 + 1.5 ^ 3 + 1.5 ^ 4)
    local eps = 1e-6
    local fd = (f(mg.tensor(1.5 + eps, "float64"), mg.tensor(3)):item() - f(mg.tensor(1.5 - eps, "float64"), mg.tensor(3)):item()) / (2 * eps)
    near(tape:gradient(y, x), fd, 1e-6)
    near(fd, 2 * 1.5 + 3 * 1.5 ^ 2 + 4 * 1.5 ^ 3, 1e-6)
  end)

  it("dynamic_size grows eagerly and for indices known while tracing", function()
    local ta = mg.TensorArray { dtype = mg.int64, dynamic_size = true }
    for i = 1, 5 do ta = ta:write(i, i * i) end
    near(ta:stack(), { 1, 4, 9, 16, 25 })
    assert.equal(5, ta:size())
    local f = mg.func(function(x)
      local t = mg.TensorArray { dtype = mg.float32, dynamic_size = true }
      for i = 1, 3 do t = t:write(i, x * i) end
      return t:stack()
    end)
    near(f(f32(2)), { 2, 4, 6 })
  end)
end)

describe("TensorArray errors", function()
  it("options are checked", function()
    fails(function() return mg.TensorArray { size = 2 } end, "TensorArray: dtype is required")
    fails(function() return mg.TensorArray { dtype = "float33" } end, "option 'dtype' must be one of")
    fails(function() return mg.TensorArray { dtype = mg.float32, sise = 2 } end, "unknown option 'sise'", "did you mean 'size'")
    fails(function() return mg.TensorArray { dtype = mg.float32, size = -1 } end, "'size' must be")
    fails(function() return mg.TensorArray { dtype = mg.float32, clear_after_read = true } end, "not supported")
  end)

  it("dtype, shape and range are checked at the write", function()
    local ta = mg.TensorArray { dtype = mg.float32, size = 2 }
    fails(function() return ta:write(1, mg.tensor { 1, 2 }) end, "holds float32, the value is int64")
    local t2 = ta:write(1, f32 { 1, 2 })
    fails(function() return t2:write(2, f32 { 1, 2, 3 }) end, "elements have shape (2), the value has shape (3)")
    fails(function() return t2:write(3, f32 { 1, 2 }) end, "index 3 is out of range for a TensorArray of size 2")
    fails(function() return t2:write(0, f32 { 1, 2 }) end, "indices start at 1")
    fails(function() return t2:read(2) end, "element 2 has not been written")
    fails(function() return t2:stack() end, "element 2 has not been written")
  end)

  it("a TensorArray written to is used up, so a forgotten `ta =` is an error, eagerly and staged", function()
    local function run(x)
      local ta = mg.TensorArray { dtype = mg.float32, size = 1 }
      ta:write(1, x)
      return ta:stack()
    end
    fails(function() return run(f32(1)) end, "stack on a TensorArray that was written to", "ta = ta:write(i, v)")
    fails(function() return mg.func(run)(f32(1)) end, "stack on a TensorArray that was written to")
  end)

  it("a staged write past the size is a run-time error; the loop error suggests TensorArray", function()
    local f = mg.func(function(n)
      local ta = mg.TensorArray { dtype = mg.float32, size = 2 }
      local i = mg.tensor(1)
      while i <= n do ta = ta:write(i, mg.cast(i, mg.float32)); i = i + 1 end
      return ta:stack()
    end)
    near(f(mg.tensor(2)), { 1, 2 })
    fails(function() return f(mg.tensor(3)) end, "index 3", "out of range")
  end)
end)
