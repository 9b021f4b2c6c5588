-- moongrad.io_args: the argument checks shared by the file functions
-- (moongrad.fs: mg.io's paths and directories; moongrad.safetensors: mg.save,
-- mg.load, mg.io.read_file and write_file_atomic), so that every one words its
-- errors alike, "<function>: ...", and raises them at the user's call. Level 3
-- there counts the helper, the public function that called it (never as a
-- tail call, which would drop that frame) and the user's line.
-- Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")

local M = {}

function M.typename(v)
  if core.is_tensor(v) then return "tensor" end
  return type(v)
end

-- Raises msg at the user's call.
function M.fail(msg) error(msg, 3) end

-- fname ("mg.io.mkdir") names the function; what the argument ("path" unless given).
function M.check_string(v, fname, what)
  if type(v) ~= "string" then
    error(fname .. ": " .. (what or "path") .. " must be a string, got " .. M.typename(v), 3)
  end
end

-- Calls a core function. Core messages carry their own "<function>:" prefix;
-- strip a "file:line:" a Lua-side binding may have put in front, and re-raise
-- at the user's line.
function M.call(f, ...)
  local ok, a, b, c, d = pcall(f, ...)
  if ok then return a, b, c, d end
  error((tostring(a):gsub("^[^:\n]*:%d+: ", "")), 3)
end

return M
