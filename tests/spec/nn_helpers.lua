-- nn_helpers.lua — assertions shared by the nn_*_spec.lua files (not a spec
-- itself: run.sh runs *_spec.lua only). Portable Lua.
local H = require "tests.spec.helpers"

local M = {}

-- fails(fn, ...) and near(actual, expected, tol, path): the shared ones.
M.fails, M.near = H.fails, H.near

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
