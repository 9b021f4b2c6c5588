-- Calls into user functions (converted recursively), closures over upvalues,
-- recursion, methods, varargs, multiple results, iteration over lists/tensors.
local function sq(v) return v * v end

local function helper_abs(v)
  if v < 0 then return -v end
  return v
end

local function power(b, e)       -- recursion on a Lua count
  if e == 0 then return 1 end
  return b * power(b, e - 1)
end

local function make_scaler(k)
  return function(x)
    if x > 0 then return x * k end
    return x
  end
end

local calls = 0
local obj = { k = 3 }
function obj:scale(x)
  if x > self.k then return x - self.k end
  return x + self.k
end

local function sum_all(...)
  local s = 0
  for _, v in ipairs({ ... }) do s = s + v end
  return s
end

local function clipped_step(v)
  if v > 10 then return v - 10 end
  return v + 3
end

local mg = require("moongrad")

return {
  { name = "calls a helper", inputs = { { 2 }, { -3 } },
    fn = function(x) return sq(x) + sq(x + 1) end },
  { name = "calls a helper with control flow", stages = { "cond" }, inputs = { { 5, 2 }, { 2, 5 } },
    fn = function(x, y) return helper_abs(x - y) end },
  { name = "recursion on a Lua count", inputs = { { 2 }, { 3 } },
    fn = function(x) return power(x, 4) end },
  { name = "closure over an upvalue", stages = { "cond" }, inputs = { { 2.0 }, { -2.0 } },
    fn = make_scaler(2.5) },
  { name = "counter upvalue is shared", inputs = { { 1 }, { 2 } },
    fn = function(x)
      calls = calls + 1
      local c = calls
      calls = c - 1          -- leave it as it was, so every run sees the same value
      return x + c
    end },
  { name = "method with self", stages = { "cond" }, inputs = { { 5 }, { 1 } },
    fn = function(x) return obj:scale(x) end },
  { name = "varargs", inputs = { { 1, 2, 3 }, { 4, 5, 6 } },
    fn = function(...)
      local n = select("#", ...)
      return sum_all(...) * n
    end },
  { name = "varargs inside a branch", stages = { "cond" }, inputs = { { 1, 2 }, { -1, 2 } },
    fn = function(...)
      local a = ...
      local r = 0
      if a > 0 then r = sum_all(...) end
      return r
    end },
  { name = "multiple results from a branch", stages = { "cond" }, inputs = { { 3, 1 }, { 1, 3 } },
    fn = function(a, b)
      if a > b then return a, b, a - b end
      return b, a, b - a
    end },
  { name = "nested local function called in an unrolled loop", stages = { "cond" }, inputs = { { 1 }, { 9 } },
    fn = function(x)
      local function step(v)
        if v > 10 then return v - 10 end
        return v + 3
      end
      for _ = 1, 5 do x = step(x) end
      return x
    end },
  { name = "helper called in a staged loop", stages = { "while", "cond" }, inputs = { { 1, 6 }, { 9, 2 } },
    fn = function(x, n)
      for _ = 1, n do x = clipped_step(x) end
      return x
    end },
  { name = "ipairs over a list (a tensor when staged)", inputs = { { { 1, 2, 3 } }, { { 5, -1 } } },
    fn = function(xs)
      local s = 0
      for i, v in ipairs(xs) do s = s + v * i end
      return s
    end },
  { name = "#xs and indexing", inputs = { { { 1.5, 2.5, 3.5 } }, { { -1.0 } } },
    fn = function(xs)
      local s = 0.0
      for i = 1, #xs do s = s + xs[i] end
      return s
    end },
  { name = "argmax by a loop over rows", stages = { "cond" }, inputs = { { { 3, 9, 2 } }, { { 7, 1, 7 } } },
    fn = function(xs)
      local best, bi = xs[1], 1
      for i, v in ipairs(xs) do
        if v > best then best, bi = v, i end
      end
      return bi, best
    end },
  { name = "function stored in a table", stages = { "cond" }, inputs = { { 4 }, { -4 } },
    fn = function(x)
      local ops = { f = helper_abs }
      return ops.f(x) + 1
    end },
}
