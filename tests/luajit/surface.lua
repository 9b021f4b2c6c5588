-- surface.lua — prints the moongrad.core surface (module functions and fields,
-- tensor methods, tape methods) one "name:type" per line, sorted. tests/run.sh
-- runs it under lua5.4 (the C module) and luajit (the FFI binding) and diffs
-- the two: a function added to lua/capi and not to lua/ffi fails the suite.
local core = require "moongrad.core"
local lines = {}
local function list(prefix, t)
  for k, v in pairs(t) do lines[#lines + 1] = prefix .. tostring(k) .. ":" .. type(v) end
end
list("core.", core)
list("methods.", core.methods)
list("tape_methods.", core.tape_methods)
table.sort(lines)
print(table.concat(lines, "\n"))
