-- moongrad.warnings: where the library's warnings and notes go.
--
-- One message per call, "moongrad: warning: ..." or "moongrad: note: ...": to the host when an
-- embedding takes them (moongrad.core's warn: its print callback, or stderr; lua/embed_sandbox.c,
-- sandbox included), else io.stderr. Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")

local M = {}

local function emit(text)
  if not core.warn(text) then io.stderr:write(text, "\n") end
end

function M.warning(msg) emit("moongrad: warning: " .. msg) end

function M.note(msg) emit("moongrad: note: " .. msg) end

return M
