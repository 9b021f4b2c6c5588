-- autograph_convert.lua — how long AutoGraph takes to convert a function.
--
--   moongrad bench/autograph_convert.lua [copies]
--
-- Writes a 100-line Lua function mixing ifs, while and for loops, mg.range,
-- and/or/not, comparisons, # and calls into several temporary files (each a
-- new chunk, so nothing is cached), then times mg.autograph.convert on each:
-- reading and parsing the file, the passes, code generation and loading.
-- Also times a new closure of an already converted function (the compiled
-- chunk is cached: instantiate and join upvalues) and the phases on their own.
-- Prints medians of CPU time (os.clock), so a busy machine matters less.

local mg = require "moongrad"
local ag = mg.autograph
local parser = require "autograph.parser"
local codegen = require "autograph.codegen"

local COPIES = tonumber(arg and arg[1]) or 20

local function source()
  local out = { "local helper = function(v) return v end", "local function big(x, n)" }
  local i = 0
  while #out < 100 do
    i = i + 1
    local k = i % 5
    if k == 0 then
      out[#out + 1] = ("  if x > %d then x = x - %d elseif x < -%d then x = x + 1 else x = helper(x) end"):format(i, i, i)
    elseif k == 1 then
      out[#out + 1] = "  local s" .. i .. " = 0"
      out[#out + 1] = "  for j = 1, n do"
      out[#out + 1] = ("    if j %% 2 == 0 and x > 0 then s%d = s%d + j else s%d = s%d - 1 end"):format(i, i, i, i)
      out[#out + 1] = "  end"
      out[#out + 1] = ("  x = x + s%d"):format(i)
    elseif k == 2 then
      out[#out + 1] = "  while x > 1000 do x = x / 2 end"
    elseif k == 3 then
      out[#out + 1] = ("  local t%d = (x > 0 and x or -x) + #{1, 2}"):format(i)
      out[#out + 1] = ("  if not (t%d ~= 3) then x = x * 2 end"):format(i)
    else
      out[#out + 1] = "  for _ in mg.range(3) do x = x + 1 end"
    end
  end
  out[#out + 1] = "  return x"
  out[#out + 1] = "end"
  out[#out + 1] = "return big"
  return table.concat(out, "\n") .. "\n", #out - 3
end

local function median(t)
  table.sort(t)
  return t[math.floor((#t + 1) / 2)]
end

local text, nlines = source()
local paths = {}
for i = 1, COPIES do
  paths[i] = os.tmpname()
  local f = assert(io.open(paths[i], "w"))
  f:write(text)
  f:close()
end

local full, again = {}, {}
for i = 1, COPIES do
  local fn = dofile(paths[i])
  local t0 = os.clock()
  ag.convert(fn)
  full[#full + 1] = (os.clock() - t0) * 1e3
  local fn2 = dofile(paths[i])          -- a new closure of the same source
  t0 = os.clock()
  ag.convert(fn2)
  again[#again + 1] = (os.clock() - t0) * 1e3
end
for _, p in ipairs(paths) do os.remove(p) end

local parse, gen = {}, {}
for _ = 1, COPIES do
  local t0 = os.clock()
  local tree = parser.parse(text, "=bench")
  parse[#parse + 1] = (os.clock() - t0) * 1e3
  t0 = os.clock()
  codegen.generate(tree)
  gen[#gen + 1] = (os.clock() - t0) * 1e3
end

print(("autograph: converting a %d-line function: %.1f ms (median of %d; CPU time)"):format(nlines,
  median(full), COPIES))
print(("  of which parsing the file %.1f ms, printing code %.1f ms (separately timed)"):format(median(parse),
  median(gen)))
print(("  a new closure of an already converted function: %.3f ms"):format(median(again)))
