-- autograph_corpus.lua — the runner of the AutoGraph corpus, shared by
-- autograph_corpus_spec.lua (tests/corpus/autograph, portable) and
-- autograph_corpus_lua54_spec.lua (tests/corpus/autograph_lua54: cases that
-- use 5.4-only syntax). Not a spec itself. Every function runs (1) as plain
-- Lua on Lua numbers, the reference, (2) staged by mg.func with AutoGraph on
-- tensors holding the same values and (3) converted and run eagerly
-- ({eager=true}); all three must agree on every input, and the staged graph
-- must contain the cond/while nodes the case names (so a case cannot pass by
-- running as plain Lua at trace time). The converted function called on the
-- Lua values must also give exactly the plain-Lua results (converted code is
-- plain Lua on plain values).

local mg = require "moongrad"
local unpack = table.unpack or unpack
local pack = table.pack or function(...) return { n = select("#", ...), ... } end

local M = {}
M.ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/tests/spec/") or ".")

-- Under LuaJIT (no math.type: one number type, doubles) every number is a
-- float64 tensor, the mirror of the reference's doubles.
local function is_int(v) return math.type and math.type(v) == "integer" end

local function to_tensor(v)
  if type(v) == "number" then return is_int(v) and mg.tensor(v) or mg.tensor(v, mg.float64) end
  if type(v) == "table" then
    local ints = true
    for _, x in ipairs(v) do if not is_int(x) then ints = false end end
    return ints and mg.tensor(v) or mg.tensor(v, mg.float64)
  end
  return v
end

local function plain(v)
  if mg.is_tensor(v) then
    if #v.shape == 0 then
      local x = v:item()
      if type(x) == "boolean" then return x end
      return x
    end
    return v:totable()
  end
  return v
end

local function same(a, b, path)
  a, b = plain(a), plain(b)
  if type(a) == "number" and type(b) == "number" then
    local tol = 1e-9 * math.max(1, math.abs(a))
    assert(math.abs(a - b) <= tol, ("%s: expected %.17g, got %.17g"):format(path, a, b))
    return
  end
  if type(a) == "table" and type(b) == "table" then
    assert(#a == #b, path .. ": lengths differ")
    for i = 1, #a do same(a[i], b[i], path .. "[" .. i .. "]") end
    return
  end
  assert(a == b, ("%s: expected %s, got %s"):format(path, tostring(a), tostring(b)))
end

local function files(DIR)
  local list = {}
  local p = io.popen('ls "' .. DIR .. '"')
  for name in p:lines() do if name:match("%.lua$") then list[#list + 1] = name end end
  p:close()
  table.sort(list)
  return list
end

-- Registers the busted tests of every case of every *.lua file in DIR;
-- returns how many cases there are. busted's describe, it and assert are the
-- spec file's (its environment), so the spec passes them.
function M.run(DIR, describe, it, assert)
  local total = 0
  for _, file in ipairs(files(DIR)) do
    local cases = assert(loadfile(DIR .. file))()
    total = total + #cases
    describe("corpus " .. file, function()
      for _, case in ipairs(cases) do
        it(case.name, function()
          local staged = mg.func(case.fn)
          local eager = mg.func(case.fn, { eager = true })
          local converted = mg.autograph.convert(case.fn)
          for k, inputs in ipairs(case.inputs) do
            local ref = pack(case.fn(unpack(inputs)))
            -- the converted function on Lua values is plain Lua
            local conv = pack(converted(unpack(inputs)))
            assert.same(ref, conv, ("input %d: the converted function on Lua values"):format(k))
            local targs = {}
            for i, v in ipairs(inputs) do targs[i] = to_tensor(v) end
            local got = pack(staged(unpack(targs, 1, #inputs)))
            local got_eager = pack(eager(unpack(targs, 1, #inputs)))
            local where = ("input %d"):format(k)
            assert(got.n == ref.n, ("%s: %d results staged, %d in plain Lua"):format(where, got.n, ref.n))
            assert(got_eager.n == ref.n, ("%s: %d results eager, %d in plain Lua"):format(where, got_eager.n, ref.n))
            for i = 1, ref.n do
              same(ref[i], got[i], where .. " staged result " .. i)
              same(ref[i], got_eager[i], where .. " eager result " .. i)
            end
            if case.stages then
              local text = staged:concrete(unpack(targs, 1, #inputs)):pretty()
              for _, kind in ipairs(case.stages) do
                assert(text:find("= " .. kind .. "(", 1, true),
                  ("%s: the staged graph has no %s node:\n%s"):format(where, kind, text))
              end
            end
          end
        end)
      end
    end)
  end
  return total
end

return M
