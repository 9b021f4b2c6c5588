-- moongrad.datasets.fortunes: the quotations of the Debian package fortunes
-- (the fortune-mod cookie files in /usr/share/games/fortunes, or
-- $MG_FORTUNES_DIR, or load_data{path=}), a small real text corpus for the
-- text examples (examples/char_transformer.lua, text_classifier.lua).
--
--   local by_file = mg.datasets.fortunes.load_data()          -- every file
--   local some = mg.datasets.fortunes.load_data{files = {"love", "science"}}
--   print(#some.love, some.love[1])
--
-- A cookie file is plain text, its records separated by lines holding only
-- "%"; the .dat index and .u8 links beside it are skipped. Records keep their
-- inner newlines and lose the trailing one; empty records are dropped. The
-- result maps each file name to its list of records, in file order (names:
-- the sorted list of the names read). Portable Lua (5.4 and LuaJIT).
local mg = require("moongrad")
local options = require("moongrad.options")

local M = {}

M.default_dir = "/usr/share/games/fortunes"

local function missing(what)
  return string.format("fortunes: %s; install the Debian package fortunes (apt-get install fortunes) "
    .. "or pass load_data{path=DIR}", what)
end

-- The records of one cookie file.
function M.read_file(p)
  local f, err = io.open(p, "rb")
  if not f then error("fortunes: cannot read " .. tostring(err), 2) end
  local text = f:read("a")
  f:close()
  if not text then error("fortunes: cannot read " .. p .. " (not a file)", 2) end
  local out, cur = {}, {}
  local function flush()
    local rec = table.concat(cur, "\n")
    if rec:match("%S") then out[#out + 1] = rec end
    cur = {}
  end
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("\r$", "")
    if line == "%" then flush() else cur[#cur + 1] = line end
  end
  flush()
  return out
end

-- The cookie files of dir: names without a dot (fortune's own rule: .dat and .u8 are not cookies).
local function list_dir(dir)
  local names = {}
  if not mg.io.isdir(dir) then return names end
  for _, name in ipairs(mg.io.listdir(dir)) do
    if not name:find(".", 1, true) and not mg.io.isdir(dir .. "/" .. name) then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

local function readable(p)
  local f = io.open(p, "rb")
  if not f then return false end
  f:close()
  return true
end

--- mg.datasets.fortunes.load_data{path=nil, files=nil} -> by_file, names
--- Reads the fortune cookie files of the Debian package fortunes (/usr/share/games/fortunes, or
--- $MG_FORTUNES_DIR, or path=): a table mapping each file name ("computers", "love", ...) to its
--- list of quotations (strings), and the sorted list of those names. files= reads only the
--- named files. Raises an error naming the package when the files are not there.
function M.load_data(opts)
  opts = options.check("fortunes.load_data", opts, { path = "string", files = "table" })
  local dir = opts.path or (os.getenv and os.getenv("MG_FORTUNES_DIR")) or M.default_dir
  local names
  if opts.files then
    names = {}
    for i, n in ipairs(opts.files) do names[i] = n end
    table.sort(names)
  else
    names = list_dir(dir)
    if #names == 0 then error(missing(dir .. " holds no fortune files"), 2) end
  end
  local by_file = {}
  for _, n in ipairs(names) do
    local p = dir .. "/" .. n
    if not readable(p) then error(missing(p .. " is missing"), 2) end
    by_file[n] = M.read_file(p)
  end
  return by_file, names
end

return M
