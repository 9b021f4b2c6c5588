-- moongrad.fs: the path and directory functions of mg.io (exists, isdir,
-- mkdir, listdir, remove, remove_tree, rename).
--
-- The engine does the work with POSIX calls (core/fs.c: no shell, any path
-- works, remove_tree never follows a link); this module checks the Lua
-- arguments so that both bindings (Lua 5.4's C module and LuaJIT's FFI) give
-- the same messages, "mg.io.<function>: ...", raised at the user's call.
-- Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local args = require("moongrad.io_args")

local M = {}

local typename, fail, call, check_string = args.typename, args.fail, args.call, args.check_string

-- mg.io.exists(path) -> true when something is at path (links followed).
function M.exists(path)
  check_string(path, "mg.io.exists")
  return core.path_exists(path)
end

-- mg.io.isdir(path) -> true when path is a directory (links followed).
function M.isdir(path)
  check_string(path, "mg.io.isdir")
  return core.path_isdir(path)
end

-- mg.io.mkdir(path [, {parents=true}]): creates a directory; an existing
-- directory is fine, anything else at path is an error.
function M.mkdir(path, opts)
  check_string(path, "mg.io.mkdir")
  if opts ~= nil and type(opts) ~= "table" then
    fail("mg.io.mkdir: options must be a table such as {parents = true}, got " .. typename(opts))
  end
  local parents = false
  for k, v in pairs(opts or {}) do
    if k ~= "parents" then fail("mg.io.mkdir: unknown option '" .. tostring(k) .. "' (the option is parents)") end
    if type(v) ~= "boolean" then fail("mg.io.mkdir: parents must be a boolean, got " .. typename(v)) end
    parents = v
  end
  call(core.mkdir, path, parents)
end

-- mg.io.listdir(path) -> the names in the directory, sorted, without "." and "..".
function M.listdir(path)
  check_string(path, "mg.io.listdir")
  return (call(core.listdir, path))
end

-- mg.io.remove(path): removes a file (or a link) or an empty directory.
function M.remove(path)
  check_string(path, "mg.io.remove")
  call(core.remove, path)
end

-- mg.io.remove_tree(path): removes a file or a directory with everything in
-- it; links are removed, never followed. Refuses "", "/", "." and "..".
function M.remove_tree(path)
  check_string(path, "mg.io.remove_tree")
  call(core.remove_tree, path)
end

-- mg.io.rename(from, to): rename(2), atomic within a file system (replaces a
-- file, or an empty directory, at to), made durable with an fsync of the
-- directories.
function M.rename(from, to)
  check_string(from, "mg.io.rename", "the source path")
  check_string(to, "mg.io.rename", "the target path")
  call(core.rename, from, to)
end

return M
