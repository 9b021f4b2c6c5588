-- nn_helpers.lua — assertions shared by the nn_*_spec.lua files (not a spec
-- itself: run.sh runs *_spec.lua only). Portable Lua.
local mg = require "moongrad"

local M = {}

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

-- Compares a tensor (or number) with a nested Lua table (or number) within tol.
function M.near(actual, expected, tol, path)
  tol = tol or 1e-5
  path = path or "value"
  if mg.is_tensor(actual) then actual = actual:totable() end
  if mg.is_tensor(expected) then expected = expected:totable() end
  if type(expected) == "table" then
    assert(type(actual) == "table", path .. ": expected a table, got " .. tostring(actual))
    assert(#actual == #expected, ("%s: length %d, expected %d"):format(path, #actual, #expected))
    for i = 1, #expected do M.near(actual[i], expected[i], tol, path .. "[" .. i .. "]") end
    return
  end
  if type(actual) == "boolean" then
    assert(actual == expected, ("%s: %s, expected %s"):format(path, tostring(actual), tostring(expected)))
    return
  end
  local scale = math.max(1, math.abs(expected))
  assert(math.abs(actual - expected) <= tol * scale,
    ("%s: %.9g, expected %.9g (tol %g)"):format(path, actual, expected, tol))
end

function M.shape(t) return table.concat(t.shape, ",") end

-- The lines model:summary() prints.
function M.summary_lines(model)
  local lines = {}
  model:summary { print_fn = function(l) lines[#lines + 1] = l end }
  return lines, table.concat(lines, "\n")
end

-- A temporary file name (removed by the caller).
function M.tmpname(ext)
  local n = os.tmpname()
  os.remove(n)
  return n .. (ext or "")
end

return M
