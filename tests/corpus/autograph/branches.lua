-- if / elseif / else, and / or / not, `c and a or b`, comparisons, early returns.
local threshold = 2.5

local mg = require("moongrad")

return {
  { name = "abs", stages = { "cond" }, inputs = { { -3 }, { 4 }, { 0 } },
    fn = function(x)
      if x < 0 then return -x end
      return x
    end },
  { name = "sign", stages = { "cond" }, inputs = { { -2.5 }, { 0.0 }, { 7.0 } },
    fn = function(x)
      if x > 0 then
        return 1
      elseif x < 0 then
        return -1
      else
        return 0
      end
    end },
  { name = "clamp", stages = { "cond" }, inputs = { { -5, 0, 10 }, { 5, 0, 10 }, { 15, 0, 10 } },
    fn = function(x, lo, hi)
      if x < lo then
        x = lo
      elseif x > hi then
        x = hi
      end
      return x
    end },
  { name = "max3", stages = { "cond" }, inputs = { { 1, 2, 3 }, { 3, 2, 1 }, { 2, 3, 1 } },
    fn = function(a, b, c)
      local m = a
      if b > m then m = b end
      if c > m then m = c end
      return m
    end },
  { name = "piecewise", stages = { "cond" }, inputs = { { -2.0 }, { 0.5 }, { 3.0 } },
    fn = function(x)
      local y
      if x < 0 then
        y = x * x
      elseif x < 1 then
        y = x
      else
        y = 2 - x
      end
      return y
    end },
  { name = "ternary idiom", stages = { "cond" }, inputs = { { 3.0 }, { -3.0 } },
    fn = function(x)
      return x > 0 and x * 2 or x / 2
    end },
  { name = "c and a or b with boolean a is Lua's (c and a) or b", stages = { "cond" },
    inputs = { { 3 }, { 7 }, { -7 }, { -3 } },
    fn = function(x)
      local r = x > 0 and x > 5 or x < -5
      return r
    end },
  { name = "ternary into a local", stages = { "cond" }, inputs = { { 3 }, { -4 } },
    fn = function(x)
      local s = x >= 0 and 1 or -1
      return s * x
    end },
  { name = "nested ifs with returns", stages = { "cond" },
    inputs = { { 1, 1 }, { 1, -1 }, { -1, 1 }, { -1, -1 } },
    fn = function(a, b)
      if a > 0 then
        if b > 0 then return 1 else return 2 end
      else
        if b > 0 then return 3 end
      end
      return 4
    end },
  { name = "not", stages = { "cond" }, inputs = { { 1, 2 }, { 5, 2 } },
    fn = function(a, b)
      if not (a > b) then return a end
      return b
    end },
  { name = "and/or in a condition", stages = { "cond" },
    inputs = { { 1, 1 }, { -1, -1 }, { 1, -1 }, { -1, 1 } },
    fn = function(a, b)
      if (a > 0 and b > 0) or (a < 0 and b < 0) then return 1 end
      return -1
    end },
  { name = "swap (two state variables)", stages = { "cond" }, inputs = { { 3, 1 }, { 1, 3 } },
    fn = function(a, b)
      if a > b then a, b = b, a end
      return a, b
    end },
  { name = "upvalue threshold", stages = { "cond" }, inputs = { { 1.0 }, { 4.0 } },
    fn = function(x)
      if x > threshold then return x - threshold end
      return 0.0
    end },
  { name = "lo <= x and x <= hi", stages = { "cond" }, inputs = { { 5, 1, 9 }, { 0, 1, 9 }, { 10, 1, 9 } },
    fn = function(x, lo, hi)
      local inside = 0
      if lo <= x and x <= hi then inside = 1 end
      return inside
    end },
  { name = "== and ~=", stages = { "cond" }, inputs = { { 2, 2 }, { 2, 3 } },
    fn = function(a, b)
      local r = 0
      if a == b then r = r + 1 end
      if a ~= b then r = r + 10 end
      if not (a == b) then r = r + 100 end
      return r
    end },
  { name = "nil checks stay Lua", stages = { "cond" }, inputs = { { 3 }, { -3 } },
    fn = function(x, y)
      if y == nil then y = 10 end
      local z = y or 5
      if x > 0 then return x + y + z end
      return x - y
    end },
  { name = "assigned in both branches only", stages = { "cond" }, inputs = { { 2.0 }, { -2.0 } },
    fn = function(x)
      local a, b
      if x > 0 then
        a = x; b = x * 3
      else
        a = -x; b = 1.0
      end
      return a + b
    end },
  { name = "branch-local temporaries", stages = { "cond" }, inputs = { { 4 }, { -4 } },
    fn = function(x)
      local out = 0
      if x > 0 then
        local t = x * x
        local u = t + 1
        out = u
      else
        local t = x - 1
        out = t * 2
      end
      return out
    end },
  { name = "else-if chain with shared accumulator", stages = { "cond" },
    inputs = { { 1 }, { 2 }, { 3 }, { 4 } },
    fn = function(n)
      local acc = 100
      if n == 1 then acc = acc + 1
      elseif n == 2 then acc = acc + 2
      elseif n == 3 then acc = acc * 3
      else acc = 0 end
      return acc
    end },
}
