-- moongrad.data.files: datasets read from files, Dataset.text_line (TF's
-- TextLineDataset) and Dataset.list_files.
--
-- Every file is reached through the same checked functions as mg.io and the
-- CSV reader: the library's io.open (in an embedding sandbox a wrapper that
-- asks the file-access policy first, lua/embed_sandbox.c) and the engine's
-- listdir / path_exists / read_file_gunzip (core/fs.c, which call
-- mg_path_check), so a sandboxed script reads nothing outside its allowed
-- directory through them. text_line streams: a file is opened when the
-- iteration reaches it and read a line at a time. list_files matches a glob
-- (*, ?, [...] per path component, as TF's Glob) when it is called, as TF
-- does, and sorts the names before the optional shuffle. Portable Lua.
local core = require("moongrad.core")
local Dataset = require("moongrad.data.dataset")
local options = require("moongrad.options")
local rng = require("moongrad.data.rng")
local C = require("moongrad.data.combinators")

local M = {}
local raise, fail = C.raise, C.fail
local BLOCK = 65536   -- bytes read at a time

-- The message of an error without the "file:line: " a binding put in front.
local function bare(err) return (tostring(err):gsub("^[^:\n]*:%d+: ", "")) end

-- io.open(path, "rb"): the file, or nil and why (a sandbox's refusal included).
local function open(path)
  if type(io) ~= "table" or not io.open then return nil, "no io library here" end
  local ok, f, err = pcall(io.open, path, "rb")
  if not ok then return nil, bare(f) end
  return f, err
end

-- A line iterator over one file (nil at its end); the \n and a \r before it are dropped.
local function file_lines(path, gzip)
  if gzip then
    local ok, text = pcall(core.read_file_gunzip, path)
    if not ok then fail("Dataset.text_line: cannot read %s: %s", path, bare(text)) end
    local pos = 1
    return function()
      if pos > #text then return nil end
      local nl = text:find("\n", pos, true)
      local line = text:sub(pos, (nl or #text + 1) - 1)
      pos = (nl or #text) + 1
      return (line:gsub("\r$", ""))
    end
  end
  local f, err = open(path)
  if not f then fail("Dataset.text_line: cannot open %s: %s", path, tostring(err)) end
  -- read in blocks and split here: LuaJIT's read("*l") stops at a NUL byte
  local buf, pos = "", 1
  return function()
    while true do
      local nl = buf:find("\n", pos, true)
      if nl then
        local line = buf:sub(pos, nl - 1)
        pos = nl + 1
        return (line:gsub("\r$", ""))
      end
      local more, rerr
      if f then more, rerr = f:read(BLOCK) end
      if not more and rerr then   -- a read error (a directory: "Is a directory"), not the end
        f:close(); f = nil
        fail("Dataset.text_line: cannot read %s: %s", path, tostring(rerr))
      end
      if not more then
        if f then f:close(); f = nil end
        if pos > #buf then return nil end
        local line = buf:sub(pos)
        buf, pos = "", 1
        return (line:gsub("\r$", ""))
      end
      buf, pos = buf:sub(pos) .. more, 1
    end
  end
end

-- The dataset of one file's lines.
local function one_file(name, gzip)
  return Dataset._new("text_line_file", nil, Dataset.UNKNOWN, function()
    if type(name) ~= "string" then
      fail("Dataset.text_line: the dataset of file names gave %s, not a string", options.show(name))
    end
    return file_lines(name, gzip)
  end)
end

local TEXT_OPTS = {
  compression_type = { "string", one_of = { "", "GZIP" } },
  num_parallel_reads = { "integer", min = 1 },
}

--- Dataset.text_line(filenames, {compression_type="", num_parallel_reads=})
--- TF's TextLineDataset: one Lua string per line of the files, without the newline (nor a \r
--- before it); a last line without a newline counts, an empty file gives nothing. filenames is
--- a path, a list of paths, or a Dataset of paths (Dataset.list_files). The files are read one
--- after the other, or num_parallel_reads at a time, line by line in turn (interleave). GZIP
--- files are decompressed in process. A file that cannot be opened is an error naming it.
--- Example:
---   mg.io.write_file_atomic("/tmp/mg_lines.txt", "one\ntwo\n")
---   for line in mg.data.Dataset.text_line("/tmp/mg_lines.txt"):iter() do print(line) end
function M.text_line(filenames, opts)
  opts = options.check("Dataset.text_line", opts, TEXT_OPTS)
  local gzip = opts.compression_type == "GZIP"
  local names
  if Dataset.is_dataset(filenames) then
    names = filenames
  else
    local list = type(filenames) == "string" and { filenames } or filenames
    if type(list) ~= "table" or core.is_tensor(list) or #list == 0 then
      raise("Dataset.text_line: filenames must be a path, a non-empty list of paths or a Dataset of paths, got %s",
        options.show(filenames))
    end
    for i, p in ipairs(list) do
      if type(p) ~= "string" then raise("Dataset.text_line: filenames[%d] must be a string, got %s", i, options.show(p)) end
      -- opened now too, so a missing or refused file is an error at this call
      local ok, err
      if gzip then ok, err = pcall(core.read_file_gunzip, p) else ok, err = open(p) end
      if not ok then raise("Dataset.text_line: cannot open %s: %s", p, bare(err)) end
      if not gzip then
        local _, rerr = ok:read(0)   -- a directory opens but cannot be read
        ok:close()
        if rerr then raise("Dataset.text_line: cannot read %s: %s", p, tostring(rerr)) end
      end
    end
    names = C.from_list(list, "file_names")
  end
  local make = function(name) return one_file(name, gzip) end
  local d
  if opts.num_parallel_reads then
    d = names:interleave(make, { cycle_length = opts.num_parallel_reads, block_length = 1 })
  else
    d = names:flat_map(make)
  end
  d.kind = "text_line"
  return d
end

-- A Lua pattern matching one glob path component (anchored).
local function glob_pattern(g)
  local out, i = { "^" }, 1
  while i <= #g do
    local c = g:sub(i, i)
    if c == "*" then out[#out + 1] = ".*"
    elseif c == "?" then out[#out + 1] = "."
    elseif c == "\\" and i < #g then i = i + 1; out[#out + 1] = "%" .. g:sub(i, i)
    elseif c == "[" then
      local close = g:find("]", i + 2, true)
      if not close then out[#out + 1] = "%["
      else
        local body = g:sub(i + 1, close - 1)
        local neg = body:sub(1, 1) == "!" or body:sub(1, 1) == "^"
        if neg then body = body:sub(2) end
        body = body:gsub("[%%%]%^]", "%%%0")
        out[#out + 1] = "[" .. (neg and "^" or "") .. body .. "]"
        i = close
      end
    elseif c:match("%w") then out[#out + 1] = c
    else out[#out + 1] = "%" .. c end
    i = i + 1
  end
  out[#out + 1] = "$"
  return table.concat(out)
end

local function has_magic(s) return s:find("[%*%?%[]") ~= nil end

-- The paths matching one glob pattern, sorted.
local function glob(pattern)
  local absolute = pattern:sub(1, 1) == "/"
  local parts = {}
  for p in pattern:gmatch("[^/]+") do parts[#parts + 1] = p end
  local paths = { absolute and "/" or "" }
  local function join(dir, name)
    if dir == "" then return name end
    if dir:sub(-1) == "/" then return dir .. name end
    return dir .. "/" .. name
  end
  for k, part in ipairs(parts) do
    local last, nextp = k == #parts, {}
    for _, dir in ipairs(paths) do
      if has_magic(part) then
        local where = dir == "" and "." or dir
        local ok, isdir = pcall(core.path_isdir, where)
        if not ok then raise("Dataset.list_files: %s", bare(isdir)) end
        if isdir then
          local okl, names = pcall(core.listdir, where)
          if not okl then raise("Dataset.list_files: %s", bare(names)) end
          local pat = glob_pattern(part)
          for _, name in ipairs(names) do
            if name:match(pat) then
              local p = join(dir, name)
              if last then nextp[#nextp + 1] = p
              else
                local okd, d = pcall(core.path_isdir, p)
                if okd and d then nextp[#nextp + 1] = p end
              end
            end
          end
        end
      else
        -- literal components are joined unchecked (a sandbox may not even look at the parents
        -- of its directory); the directory listed next, or the final path, is checked
        nextp[#nextp + 1] = join(dir, (part:gsub("\\(.)", "%1")))
      end
    end
    paths = nextp
  end
  if #parts == 0 then return {} end
  local out = {}
  for _, p in ipairs(paths) do
    local oke, there = pcall(core.path_exists, p)
    if not oke then raise("Dataset.list_files: %s", bare(there)) end
    if there then out[#out + 1] = p end
  end
  return out
end

local LIST_OPTS = { shuffle = "boolean", seed = { "integer", min = 0, max = rng.MAX_SEED } }

--- Dataset.list_files(file_pattern, {shuffle=true, seed=})
--- The paths matching a glob pattern (or a list of patterns): * and ? within one path component,
--- [abc], [a-z], [!a] character classes, \ escaping the next character; a dataset of Lua
--- strings, sorted, then shuffled (as TF, shuffle defaults to true: give a seed, or
--- {shuffle=false}, for a fixed order). The pattern is matched now; nothing matching is an error.
--- Example:
---   mg.io.write_file_atomic("/tmp/mg_lf_a.txt", "x\n")
---   local files = mg.data.Dataset.list_files("/tmp/mg_lf_*.txt", {shuffle = false})
function M.list_files(pattern, opts)
  opts = options.check("Dataset.list_files", opts, LIST_OPTS)
  local patterns = type(pattern) == "string" and { pattern } or pattern
  if type(patterns) ~= "table" or core.is_tensor(patterns) or #patterns == 0 then
    raise("Dataset.list_files: file_pattern must be a string or a non-empty list of strings, got %s", options.show(pattern))
  end
  local seen, list = {}, {}
  for i, p in ipairs(patterns) do
    if type(p) ~= "string" or p == "" then
      raise("Dataset.list_files: file_pattern[%d] must be a non-empty string, got %s", i, options.show(p))
    end
    for _, path in ipairs(glob(p)) do
      if not seen[path] then seen[path] = true; list[#list + 1] = path end
    end
  end
  if #list == 0 then
    raise("Dataset.list_files: no files matched %s", table.concat(patterns, ", "))
  end
  table.sort(list)
  local d = C.from_list(list, "list_files")
  if opts.shuffle ~= false then d = d:shuffle(#list, { seed = opts.seed }) end
  return d
end

return M
