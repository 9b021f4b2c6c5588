-- compat.lua — busted --helper for running the specs under LuaJIT (tests/run.sh).
--
-- The specs are Lua 5.4 programs; the parts of the 5.4 standard library they
-- use that LuaJIT lacks (math.type, math.tointeger, math.maxinteger,
-- table.pack/unpack/move) are given to the spec files only, by exporting a
-- `math` and a `table` that add them into busted's test environment. They
-- must not become globals: the stdlib takes the presence of math.type to mean
-- Lua 5.4 integers, so a global math.type would change what it does. The
-- added math.type follows LuaJIT's convention for its single number type, the
-- one the FFI binding follows: a number with no fraction counts as an integer.
--
-- Syntax cannot be filled in: what needs //, <close> or other 5.4 syntax is
-- in spec files of its own (tests/spec/*lua54_spec.lua), which
-- tests/luajit/skip.lua skips as a whole, as it does the few single tests
-- that need int64 values beyond 2^53 (all counted, with their reasons).

if not rawget(_G, "jit") then return end

local mathx = setmetatable({}, { __index = math })
mathx.type = function(x)
  if type(x) ~= "number" then return nil end
  return (x == math.floor(x) and x >= -2 ^ 63 and x < 2 ^ 63) and "integer" or "float"
end
mathx.tointeger = function(x)
  if mathx.type(x) == "integer" then return x end
  return nil
end
mathx.maxinteger = 2 ^ 63 - 1   -- 2^63 as a double: LuaJIT has no exact int64 number
mathx.mininteger = -2 ^ 63

local tablex = setmetatable({}, { __index = table })
tablex.pack = function(...) return { n = select("#", ...), ... } end
tablex.unpack = unpack
tablex.move = function(a1, f, e, t, a2)
  a2 = a2 or a1
  if e >= f then
    if t > f or t > e or a1 ~= a2 then
      for i = 0, e - f do a2[t + i] = a1[f + i] end
    else
      for i = e - f, 0, -1 do a2[t + i] = a1[f + i] end
    end
  end
  return a2
end

-- busted's helper loader calls us with its instance in a local named `busted`.
local instance
for level = 2, 12 do
  for i = 1, 20 do
    local name, value = debug.getlocal(level, i)
    if not name then break end
    if name == "busted" and type(value) == "table" and type(value.export) == "function" then instance = value end
  end
  if instance then break end
end
assert(instance, "tests/luajit/compat.lua: busted's instance not found (run it as busted --helper)")
instance.export("math", mathx)
instance.export("table", tablex)
