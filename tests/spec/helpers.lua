-- helpers.lua — assertions shared by the spec files (not a spec itself:
-- tests/run.sh runs *_spec.lua only). Portable Lua (5.4 and LuaJIT).
--
--   local h = require "tests.spec.helpers"
--   h.fails(fn, "matmul", "(2,3)")     -- fn must fail; the message mentions each text
--   h.near(t, {{1, 2}}, 1e-6)          -- tensor or number vs nested table or number

local mg = require "moongrad"

local M = {}

-- Lua 5.4's math.type; under LuaJIT (one number type) the convention of
-- tests/luajit/compat.lua: a number with no fraction counts as an integer.
local math_type = math.type or function(x)
  if type(x) ~= "number" then return nil end
  return (x == math.floor(x) and x >= -2 ^ 63 and x < 2 ^ 63) and "integer" or "float"
end

-- fn() must fail with a message containing every one of ... (plain text).
function M.fails(fn, ...)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error, the call succeeded")
  err = tostring(err)
  for _, want in ipairs({ ... }) do
    assert(err:find(want, 1, true), ("message %q does not mention %q"):format(err, want))
  end
  return err
end

-- Compares a tensor (or number, or boolean) with a nested Lua table (or
-- number) within a relative tol; NaN matches NaN, and an infinity itself.
function M.near(actual, expected, tol, path)
  tol = tol or 1e-5
  path = path or "value"
  if mg.is_tensor(actual) then actual = actual:totable() end
  if mg.is_tensor(expected) then expected = expected:totable() end
  if type(expected) == "table" then
    assert(type(actual) == "table", ("%s: expected a table, got %s"):format(path, tostring(actual)))
    assert(#actual == #expected, ("%s: length %d, expected %d"):format(path, #actual, #expected))
    for i = 1, #expected do M.near(actual[i], expected[i], tol, path .. "[" .. i .. "]") end
  elseif type(expected) == "boolean" then
    assert(actual == expected, ("%s: got %s, expected %s"):format(path, tostring(actual), tostring(expected)))
  else
    assert(type(actual) == "number", ("%s: expected a number, got %s"):format(path, tostring(actual)))
    local ok = actual == expected or math.abs(actual - expected) <= tol * math.max(1, math.abs(expected))
      or (actual ~= actual and expected ~= expected)
    assert(ok, ("%s: got %.9g, expected %.9g"):format(path, actual, expected))
  end
end

-- A float32 tensor from Lua data.
function M.f32(data) return mg.tensor(data, mg.float32) end


-- The typed comparisons of the core specs (Lua 5.4: math.type).
-- Walks actual (a tensor or a Lua value) against expected; floats within a
-- relative tolerance `tol` (default 1e-6), NaN equal to NaN, integers exactly
-- (and they must be Lua integers). Under LuaJIT (one number type) a number
-- with no fraction may be either kind: there the tensor's dtype says which
-- the actual values are, and an expected number with no fraction matches both.
function M.check(actual, expected, tol, path, kind)
  tol = tol or 1e-6
  path = path or "value"
  if mg.is_tensor(actual) then
    kind = (actual.dtype == "float32" or actual.dtype == "float64") and "float" or "integer"
    actual = actual:totable()
  end
  local want, got = math_type(expected), math_type(actual)
  if jit and kind then
    if want == "integer" then want = kind end
    if got then got = kind end
  end
  if jit and want == "integer" and got == "float" then want = "float" end   -- 1.0 vs 0.9999999
  if type(expected) == "table" then
    assert(type(actual) == "table", path .. ": expected a table, got " .. tostring(actual))
    assert(#actual == #expected, ("%s: length %d, expected %d"):format(path, #actual, #expected))
    for i = 1, #expected do M.check(actual[i], expected[i], tol, path .. "[" .. i .. "]", kind) end
  elseif type(expected) == "number" and expected ~= expected then
    assert(actual ~= actual, ("%s: expected nan, got %s"):format(path, tostring(actual)))
  elseif want == "float" then
    assert(got == "float" or (jit and not kind and got), ("%s: expected a float, got %s"):format(path, tostring(actual)))
    assert(actual == expected or (math.abs(expected) < math.huge
        and math.abs(actual - expected) <= tol * math.max(1, math.abs(expected))),
      ("%s: expected %.9g, got %.9g"):format(path, expected, actual))
  else
    assert(actual == expected and got == want,
      ("%s: expected %s (%s), got %s (%s)"):format(path, tostring(expected),
        want or type(expected), tostring(actual), got or type(actual)))
  end
end

function M.err_of(fn)
  local ok, e = pcall(fn)
  assert(not ok, "expected an error")
  return tostring(e)
end

-- A (r, c) Lua table with f(i, j) entries.
function M.grid(r, c, f)
  local t = {}
  for i = 1, r do
    t[i] = {}
    for j = 1, c do t[i][j] = f(i, j) end
  end
  return t
end

return M
