-- moongrad.warnings: where the library's warnings and notes go.
--
-- One message per call, "moongrad: warning: ..." or "moongrad: note: ...", handed to
-- moongrad.core's warn: stderr, or the host's print callback when a host embedding set one
-- (lua/embed_sandbox.c), in a sandbox too. Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")

local M = {}

function M.warning(msg) core.warn("moongrad: warning: " .. msg) end

function M.note(msg) core.warn("moongrad: note: " .. msg) end

return M
