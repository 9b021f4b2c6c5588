-- Cases that use Lua 5.4's // (moved from loops.lua and functions.lua so that
-- the rest of the corpus parses under LuaJIT); run by
-- tests/spec/autograph_corpus_lua54_spec.lua, under Lua 5.4 only.
return {
  { name = "collatz steps", stages = { "while" }, inputs = { { 6 }, { 27 }, { 1 } },
    fn = function(n)
      local steps = 0
      while n ~= 1 do
        if n % 2 == 0 then n = n // 2 else n = 3 * n + 1 end
        steps = steps + 1
      end
      return steps
    end },
  { name = "power by squaring", stages = { "while", "cond" }, inputs = { { 3, 5 }, { 2, 10 }, { 7, 0 } },
    fn = function(b, e)
      local r = 1
      while e > 0 do
        if e % 2 == 1 then r = r * b end
        b = b * b
        e = e // 2
      end
      return r
    end },
  { name = "digits (repeat-until)", stages = { "while" }, inputs = { { 0 }, { 7 }, { 12345 } },
    fn = function(n)
      local c = 0
      repeat
        n = n // 10
        c = c + 1
      until n == 0
      return c
    end },
  { name = "local function recursion with a tensor base case", stages = { "cond" }, inputs = { { 3 }, { 12 } },
    fn = function(x)
      local function halve(v, depth)
        if depth == 0 then return v end
        if v > 4 then v = v // 2 end
        return halve(v, depth - 1)
      end
      return halve(x, 3)
    end },
}
