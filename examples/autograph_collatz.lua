-- autograph_collatz.lua — a data-dependent loop staged by AutoGraph.
--
--   moongrad examples/autograph_collatz.lua        (MG_QUICK=1: fewer numbers)
--
-- The number of Collatz steps of n is a loop whose length depends on the
-- value of n. Written as plain Lua, mg.func stages it: AutoGraph turns the
-- `while` into one graph while node and the `if` inside it into a cond node,
-- so a single graph answers for every n (one trace), where an unconverted
-- Lua loop could only have been unrolled for one particular value.
-- Checks every answer against plain Lua on Lua numbers.

local mg = require "moongrad"
local QUICK = os.getenv("MG_QUICK") == "1"

local function collatz_steps(n)
  local steps = 0
  while n ~= 1 do
    if n % 2 == 0 then
      n = n // 2
    else
      n = 3 * n + 1
    end
    steps = steps + 1
  end
  return steps
end

local staged = mg.func(collatz_steps)

print("what AutoGraph makes of it:")
print(mg.autograph.to_code(collatz_steps))

print("what staging decided:")
print(mg.autograph.explain(collatz_steps, mg.tensor(27)))
print()

local numbers = QUICK and { 1, 6, 7, 27 } or { 1, 2, 3, 6, 7, 9, 27, 97, 871, 6171, 77031, 837799 }
for _, n in ipairs(numbers) do
  local want = collatz_steps(n)                 -- plain Lua on a Lua number
  local got = staged(mg.tensor(n)):item()       -- the staged graph on a tensor
  assert(got == want, ("collatz(%d): staged %d, plain Lua %d"):format(n, got, want))
  print(("collatz(%d) = %d steps"):format(n, got))
end
assert(staged:trace_count() == 1, "one trace serves every n")

-- the graph: one while node whose body holds the cond
local cf = staged:concrete(mg.tensor(27))
local kinds = {}
for _, node in ipairs(cf:graph()) do kinds[#kinds + 1] = node.kind end
print("\ntop-level graph nodes: " .. table.concat(kinds, ", "))
assert(cf:pretty():find("= while(", 1, true) and cf:pretty():find("= cond(", 1, true))

-- staged vs the converted function run eagerly (every op dispatched from Lua)
local eager = mg.func(collatz_steps, { eager = true })
local n = mg.tensor(QUICK and 27 or 837799)
local reps = QUICK and 3 or 20
local t0 = mg.clock()
for _ = 1, reps do eager(n) end
local t1 = mg.clock()
for _ = 1, reps do staged(n) end
local t2 = mg.clock()
print(("collatz(%d): eager %.2f ms, staged %.2f ms per call"):format(n:item(), (t1 - t0) / reps * 1e3,
  (t2 - t1) / reps * 1e3))
