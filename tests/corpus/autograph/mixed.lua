-- Combinations: state that is only sometimes a tensor, Lua values that must not
-- change, loops whose condition becomes a tensor after a few plain iterations,
-- flags, and numbers mixed with tensors.
local mg = require("moongrad")

return {
  { name = "flag set under a tensor condition", stages = { "cond" }, inputs = { { 3 }, { -3 } },
    fn = function(x)
      local neg = false
      if x < 0 then neg = true end
      if neg then return -x end
      return x
    end },
  { name = "counter of positives", stages = { "cond" }, inputs = { { { 1, -2, 3, -4, 5 } }, { { -1, -1 } } },
    fn = function(xs)
      local c = 0
      for _, v in ipairs(xs) do
        if v > 0 then c = c + 1 end
      end
      return c
    end },
  { name = "condition becomes a tensor later", stages = { "while" }, inputs = { { 100.0 }, { 3.0 } },
    fn = function(x)
      local v = 1000
      local n = 0
      while v > 1 do
        v = v / x
        n = n + 1
      end
      return n
    end },
  { name = "unchanged Lua table through a loop", stages = { "while" }, inputs = { { 4 }, { 1 } },
    fn = function(n)
      local cfg = { scale = 2 }
      local s = 0
      while n > 0 do
        s = s + cfg.scale
        n = n - 1
      end
      return s
    end },
  { name = "string state equal on both paths", stages = { "cond" }, inputs = { { 1 }, { -1 } },
    fn = function(x)
      local tag = "v"
      local y = 0
      if x > 0 then y = x; tag = "v" else y = -x end
      return y + #tag
    end },
  { name = "early exit before a loop", stages = { "while" }, inputs = { { -5 }, { 5 } },
    fn = function(n)
      if n < 0 then return -1 end
      local s = 0
      while n > 0 do s = s + n; n = n - 1 end
      return s
    end },
  { name = "loop with two exits", stages = { "while" }, inputs = { { 10, 3 }, { 10, 100 }, { 0, 1 } },
    fn = function(n, limit)
      local i, s = 0, 0
      while i < n do
        i = i + 1
        if s + i > limit then break end
        if i % 4 == 0 then goto continue end
        s = s + i
        ::continue::
      end
      return s
    end },
  { name = "float accumulation", stages = { "while" }, inputs = { { 0.1, 10 }, { 2.5, 3 } },
    fn = function(x, n)
      local acc = 0.0
      local i = 0
      while i < n do
        acc = acc + x * i
        i = i + 1
      end
      return acc
    end },
  { name = "powers with ^", stages = { "cond" }, inputs = { { 2.0 }, { -3.0 } },
    fn = function(x)
      if x > 0 then return x ^ 2 end
      return x ^ 3
    end },
  { name = "repeat that runs once", stages = { "while" }, inputs = { { 5 }, { -5 } },
    fn = function(x)
      local n = 0
      repeat
        x = x - 1
        n = n + 1
      until x < 10
      return x, n
    end },
}
