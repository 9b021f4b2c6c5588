-- while, repeat-until, numeric for with tensor bounds, mg.range, break, goto continue, return in loops.
local mg = require("moongrad")

return {
  { name = "gcd", stages = { "while" }, inputs = { { 48, 18 }, { 17, 5 }, { 100, 75 } },
    fn = function(a, b)
      while b ~= 0 do a, b = b, a % b end
      return a
    end },
  { name = "sum to n", stages = { "while" }, inputs = { { 0 }, { 10 }, { 100 } },
    fn = function(n)
      local s, i = 0, 1
      while i <= n do
        s = s + i
        i = i + 1
      end
      return s
    end },
  { name = "newton sqrt (20 unrolled steps)", inputs = { { 2.0 }, { 9.0 } },
    fn = function(x)
      local g = x
      for _ = 1, 20 do g = 0.5 * (g + x / g) end
      return g
    end },
  { name = "iterate until converged", stages = { "while" }, inputs = { { 2.0 }, { 10.0 } },
    fn = function(x)
      local g, prev = x, x + 1
      local n = 0
      while (g - prev) * (g - prev) > 1e-20 do
        prev = g
        g = 0.5 * (g + x / g)
        n = n + 1
      end
      return g, n
    end },
  { name = "repeat with a body local in until", stages = { "while" }, inputs = { { 5 }, { 1 } },
    fn = function(n)
      local s = 0
      repeat
        local m = n - 1
        s = s + n
        n = m
      until m <= 0
      return s
    end },
  { name = "fibonacci", stages = { "while" }, inputs = { { 0 }, { 1 }, { 20 } },
    fn = function(n)
      local a, b = 0, 1
      local i = 0
      while i < n do
        a, b = b, a + b
        i = i + 1
      end
      return a
    end },
  { name = "while true with break", stages = { "while" }, inputs = { { 10 }, { 0 }, { 99 } },
    fn = function(n)
      local i = 0
      while true do
        i = i + 1
        if i * i > n then break end
      end
      return i
    end },
  { name = "break in the middle", stages = { "while" }, inputs = { { 10 }, { 1000 }, { -1 } },
    fn = function(n)
      local s, i = 0, 0
      while i < 100 do
        i = i + 1
        if s > n then break end
        s = s + i
      end
      return s, i
    end },
  { name = "is prime (return inside a loop)", stages = { "while" },
    inputs = { { 1 }, { 2 }, { 9 }, { 13 }, { 91 }, { 97 } },
    fn = function(n)
      if n < 2 then return 0 end
      local d = 2
      while d * d <= n do
        if n % d == 0 then return 0 end
        d = d + 1
      end
      return 1
    end },
  { name = "while with goto continue", stages = { "while" }, inputs = { { 10 }, { 7 } },
    fn = function(n)
      local s, i = 0, 0
      while i < n do
        i = i + 1
        if i % 2 == 0 then goto continue end
        s = s + i
        ::continue::
      end
      return s
    end },
  { name = "bisection", stages = { "while", "cond" }, inputs = { { 2.0 }, { 10.0 } },
    fn = function(x)
      local lo, hi = 0.0, x + 1
      local k = 0
      while k < 40 + x * 0 do
        local mid = (lo + hi) / 2
        if mid * mid < x then lo = mid else hi = mid end
        k = k + 1
      end
      return lo
    end },
  { name = "for with a tensor bound", stages = { "while" }, inputs = { { 0 }, { 5 }, { 50 } },
    fn = function(n)
      local s = 0
      for i = 1, n do s = s + i end
      return s
    end },
  { name = "for with a negative step", stages = { "while" }, inputs = { { 10 }, { 3 } },
    fn = function(n)
      local s = 0
      for i = n, 1, -2 do s = s + i end
      return s
    end },
  { name = "for with a tensor step", stages = { "while" }, inputs = { { 10, 3 }, { 10, -3 }, { -10, -4 } },
    fn = function(n, step)
      local s = 0
      for i = 0, n, step do s = s + i end
      return s
    end },
  { name = "for with Lua bounds unrolls", inputs = { { 1 }, { -2 } },
    fn = function(x)
      for i = 1, 5 do x = x * 2 + i end
      return x
    end },
  { name = "mg.range with a tensor count", stages = { "while" }, inputs = { { 2.0, 4 }, { 1.5, 0 } },
    fn = function(x, n)
      local s = 0.0
      for i in mg.range(n) do s = s + i * x end
      return s
    end },
  { name = "mg.range with a Lua count stages", stages = { "while" }, inputs = { { 3.0 }, { -1.0 } },
    fn = function(x)
      for _ in mg.range(10) do x = x * 0.5 + 1 end
      return x
    end },
  { name = "mg.range(a, b, step)", stages = { "while" }, inputs = { { 1 }, { 2 } },
    fn = function(x)
      local s = 0
      for i in mg.range(10, 1, -3) do s = s + i * x end
      return s
    end },
  { name = "for with break", stages = { "while" }, inputs = { { 3 }, { 20 } },
    fn = function(n)
      local s = 0
      for i = 1, n do
        if i * i > 50 then break end
        s = s + i
      end
      return s
    end },
  { name = "for with goto continue", stages = { "while" }, inputs = { { 10 }, { 2 } },
    fn = function(n)
      local s = 0
      for i = 1, n do
        if i % 3 == 0 then goto continue end
        s = s + i
        ::continue::
      end
      return s
    end },
  { name = "for with return", stages = { "while" }, inputs = { { 10, 3 }, { 3, 3 }, { 10, 30 } },
    fn = function(n, k)
      for i = 1, n do
        if i * k > 20 then return i end
      end
      return 0
    end },
  { name = "nested for (triangle)", stages = { "while" }, inputs = { { 0 }, { 4 }, { 6 } },
    fn = function(n)
      local s = 0
      for i = 1, n do
        for j = 1, i do s = s + j end
      end
      return s
    end },
  { name = "break inside nested loops", stages = { "while" }, inputs = { { 3 }, { 5 } },
    fn = function(n)
      local s = 0
      for i = 1, n do
        for j = 1, n do
          if j > i then break end
          s = s + 1
        end
      end
      return s
    end },
  { name = "while in if in for", stages = { "while", "cond" }, inputs = { { 5 }, { 8 } },
    fn = function(n)
      local s = 0
      for i = 1, n do
        if i % 2 == 1 then
          local j = i
          while j > 0 do
            s = s + 1
            j = j - 2
          end
        end
      end
      return s
    end },
  { name = "repeat with break", stages = { "while" }, inputs = { { 3 }, { 100 } },
    fn = function(n)
      local s, i = 0, 0
      repeat
        i = i + 1
        if i > n then break end
        s = s + i
      until s > 20
      return s, i
    end },
  { name = "return from nested loops", stages = { "while" }, inputs = { { 12 }, { 7 }, { 100 } },
    fn = function(target)
      for a = 1, 10 do
        for b = 1, 10 do
          if a * b == target then return a, b end
        end
      end
      return 0, 0
    end },
  { name = "loop variable dtype from the body", stages = { "while" }, inputs = { { 4 }, { 0 } },
    fn = function(n)
      local s = 0
      for i = 1, n do s = s + 0.5 * i end
      return s
    end },
  { name = "a loop that does not run", stages = { "while" }, inputs = { { 0 }, { -3 } },
    fn = function(n)
      local s = 7
      while n > 0 do
        s = s + n
        n = n - 1
      end
      return s
    end },
}
