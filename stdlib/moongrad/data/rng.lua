-- moongrad.data.rng: the shuffle buffer's random generator.
--
-- L'Ecuyer's combined multiplicative generator (CACM 1988): two Lehmer
-- streams mod 2147483563 and 2147483399 whose products stay below 2^53, so
-- the same numbers come out of Lua 5.4 integers, LuaJIT doubles and the C
-- prefetch worker (core/prefetch.c implements the same three functions; a
-- spec checks the two agree). Not for cryptography; period about 2.3e18.
local M = {}

local M1, M2 = 2147483563, 2147483399

-- A generator for (seed, stream): stream is the shuffle's iteration number.
function M.new(seed, stream)
  local s1 = seed % (M1 - 1) + 1
  local s2 = (math.floor(seed / (M1 - 1)) + stream * 1000003) % (M2 - 1) + 1
  local g = { math.floor(s1), math.floor(s2) }
  for _ = 1, 8 do M.next(g) end   -- nearby seeds give unrelated first draws
  return g
end

-- The next draw, an integer in 1 .. M1 - 1.
function M.next(g)
  g[1] = (40014 * g[1]) % M1
  g[2] = (40692 * g[2]) % M2
  local z = g[1] - g[2]
  if z < 1 then z = z + M1 - 1 end
  return z
end

-- A draw in 0 .. n - 1.
function M.index(g, n) return (M.next(g) - 1) % n end

-- A seed in 0 .. 2^31 - 1 drawn from mg.random (so mg.random.seed fixes it).
function M.fresh_seed()
  local core = require("moongrad.core")
  local u = core.uniform({ 1 }, 0, 1, "float64"):totable()[1]
  return math.floor(u * 2147483647)
end

M.MAX_SEED = 9007199254740991  -- 2^53 - 1: exact in every number type

return M
