-- moongrad.data.csv: mg.io.read_csv and mg.data.experimental.make_csv_dataset.
--
-- The parser follows RFC 4180: fields separated by one delimiter
-- character, records by LF, CRLF or CR; a field in double quotes may hold
-- delimiters, newlines and doubled quotes (""). Blank lines are skipped. A
-- record with a different number of fields than the header, an unclosed
-- quote, or text after a closing quote is an error naming the line (and
-- the column). Columns become tensors: int64 when every present value is an
-- integer, float32 when every one is a number (missing values are NaN),
-- else a Lua array of strings (a "string" column; give dtypes={col="float32"}
-- to insist on numbers and get an error naming the bad value instead).
-- Portable Lua.
local core = require("moongrad.core")

local M = {}

local DTYPES = { float32 = true, float64 = true, int32 = true, int64 = true, uint8 = true, bool = true, string = true }

local function fail(path, fmt, ...)
  error("read_csv: " .. path .. ": " .. string.format(fmt, ...), 0)
end

-- The records of text: a list of field lists, and the line each starts on.
local function parse(text, delim, path)
  local records, lines = {}, {}
  local pos, len, line = 1, #text, 1
  local special = "[" .. delim:gsub("%p", "%%%0") .. "\"\r\n]"
  while pos <= len do
    local rec, start = {}, line
    while true do
      local c = text:sub(pos, pos)
      if c == '"' then
        local buf, p = {}, pos + 1
        while true do
          local q = text:find('"', p, true)
          if not q then fail(path, "line %d, column %d: a quoted field is never closed", line, #rec + 1) end
          buf[#buf + 1] = text:sub(p, q - 1)
          if text:sub(q + 1, q + 1) == '"' then buf[#buf + 1] = '"'; p = q + 2
          else p = q + 1; break end
        end
        local field = table.concat(buf)
        local fieldline = line
        for _ in field:gmatch("\n") do line = line + 1 end
        rec[#rec + 1], pos = field, p
        c = text:sub(pos, pos)
        if c ~= delim and c ~= "\r" and c ~= "\n" and c ~= "" then
          fail(path, "line %d, column %d: text after the closing quote of a quoted field", fieldline, #rec)
        end
      else
        local q = text:find(special, pos)
        if q and text:sub(q, q) == '"' then
          fail(path, "line %d, column %d: a quote inside an unquoted field (quote the whole field and double the quote)",
            line, #rec + 1)
        end
        rec[#rec + 1] = text:sub(pos, (q or len + 1) - 1)
        pos = q or len + 1
      end
      c = text:sub(pos, pos)
      if c == delim then
        pos = pos + 1
        if pos > len then rec[#rec + 1] = ""; line = line + 1; break end   -- a trailing delimiter: an empty last field
      else
        if c == "\r" then
          pos = pos + 1
          if text:sub(pos, pos) == "\n" then pos = pos + 1 end
        elseif c == "\n" then pos = pos + 1 end
        line = line + 1
        break
      end
    end
    if not (#rec == 1 and rec[1] == "") then
      records[#records + 1], lines[#lines + 1] = rec, start
    end
  end
  return records, lines
end
M._parse = parse

local NUMBER_WORDS = { nan = 0 / 0, inf = math.huge, ["+inf"] = math.huge, ["-inf"] = -math.huge }

local function to_number(s)
  local v = tonumber(s)
  if v then return v end
  return NUMBER_WORDS[s:lower():match("^%s*(.-)%s*$")]
end

local function is_integer(s) return s:match("^%s*[-+]?%d+%s*$") ~= nil end

-- The dtype a column's present values fit: int64, float32 or string.
local function infer(values, missing)
  local kind = "int64"
  local any = false
  for i, v in ipairs(values) do
    if not missing[i] then
      any = true
      if kind == "int64" and not is_integer(v) then kind = "float32" end
      if kind == "float32" and not to_number(v) then return "string" end
    end
  end
  if not any then return "float32" end
  for i in pairs(missing) do if missing[i] and kind == "int64" then return "float32" end end
  return kind
end

local function convert(name, values, missing, dtype, lines, path, default)
  if dtype == "string" then
    local out = {}
    for i, v in ipairs(values) do out[i] = missing[i] and (default or "") or v end
    return out
  end
  local out = {}
  for i, v in ipairs(values) do
    if missing[i] then
      if default ~= nil then out[i] = default
      elseif dtype == "float32" or dtype == "float64" then out[i] = 0 / 0
      else fail(path, "line %d, column '%s': a missing value in a %s column (give defaults={%s=...})", lines[i], name, dtype, name) end
    elseif dtype == "bool" then
      local l = v:lower():match("^%s*(.-)%s*$")
      if l == "true" or l == "1" then out[i] = true
      elseif l == "false" or l == "0" then out[i] = false
      else fail(path, "line %d, column '%s': '%s' is not a boolean (dtype bool)", lines[i], name, v) end
    else
      local n = to_number(v)
      if n == nil or (dtype ~= "float32" and dtype ~= "float64" and not is_integer(v)) then
        fail(path, "line %d, column '%s': '%s' is not %s (dtype %s)", lines[i], name, v,
          (dtype == "float32" or dtype == "float64") and "a number" or "an integer", dtype)
      end
      out[i] = n
    end
  end
  if #out == 0 then return core.full({ 0 }, 0, dtype) end
  return core.tensor(out, dtype)
end

local function check_opts(fname, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(fname .. ": opts must be a table, got " .. type(opts), 3) end
  for k in pairs(opts) do
    if not allowed[k] then error(string.format("%s: unknown option '%s'", fname, tostring(k)), 3) end
  end
  return opts
end

local READ_OPTS = { header = true, delimiter = true, columns = true, dtypes = true, na_value = true, defaults = true }

-- mg.io.read_csv(path, {header=true, delimiter=",", columns={names}, dtypes={name=dtype},
-- na_value="", defaults={name=value}}) -> {name = column}, names (in file order).
-- Without a header the columns are numbered 1..n.
function M.read_csv(path, opts)
  if type(path) ~= "string" then error("read_csv: path must be a string, got " .. type(path), 2) end
  opts = check_opts("read_csv", opts, READ_OPTS)
  local delim = opts.delimiter or ","
  if type(delim) ~= "string" or #delim ~= 1 or delim == '"' or delim == "\n" or delim == "\r" then
    error("read_csv: delimiter must be one character other than a quote or a newline, got " .. tostring(delim), 2)
  end
  local na = opts.na_value or ""
  local f, err = io.open(path, "rb")
  if not f then error("read_csv: cannot open " .. path .. ": " .. tostring(err), 2) end
  local text = f:read("*a")
  f:close()
  if text:sub(1, 3) == "\239\187\191" then text = text:sub(4) end   -- a UTF-8 byte order mark
  local records, lines = parse(text, delim, path)
  local names, first = {}, 1
  if opts.header ~= false then
    if #records == 0 then fail(path, "the file is empty (no header line)") end
    names, first = records[1], 2
    local seen = {}
    for j, n in ipairs(names) do
      if seen[n] then fail(path, "line %d: column %d repeats the name '%s'", lines[1], j, n) end
      seen[n] = true
    end
  else
    for j = 1, records[1] and #records[1] or 0 do names[j] = j end
  end
  local ncol = #names
  for r = first, #records do
    if #records[r] ~= ncol then
      fail(path, "line %d has %d fields, %s has %d", lines[r], #records[r],
        opts.header ~= false and "the header" or "the first line", ncol)
    end
  end
  local index = {}
  for j, n in ipairs(names) do index[n] = j end
  local wanted = names
  if opts.columns then
    wanted = {}
    for _, n in ipairs(opts.columns) do
      if not index[n] then
        local list = {}
        for _, m in ipairs(names) do list[#list + 1] = tostring(m) end
        error(string.format("read_csv: %s: no column '%s' (columns: %s)", path, tostring(n), table.concat(list, ", ")), 2)
      end
      wanted[#wanted + 1] = n
    end
  end
  local dtypes, defaults = opts.dtypes or {}, opts.defaults or {}
  for n, dt in pairs(dtypes) do
    if not index[n] then error(string.format("read_csv: dtypes names a column '%s' the file does not have", tostring(n)), 2) end
    if not DTYPES[dt] then error(string.format("read_csv: dtypes.%s: unknown dtype '%s'", tostring(n), tostring(dt)), 2) end
  end
  local out, rowlines = {}, {}
  for r = first, #records do rowlines[#rowlines + 1] = lines[r] end
  for _, n in ipairs(wanted) do
    local j = index[n]
    local values, missing = {}, {}
    for r = first, #records do
      local v = records[r][j]
      values[#values + 1] = v
      if v == na then missing[#values] = true end
    end
    local dt = dtypes[n] or infer(values, missing)
    out[n] = convert(tostring(n), values, missing, dt, rowlines, path, defaults[n])
  end
  return out, wanted
end

local MAKE_OPTS = { batch_size = true, label_name = true, shuffle = true, shuffle_buffer_size = true,
  shuffle_seed = true, num_epochs = true, select_columns = true, header = true, delimiter = true,
  na_value = true, dtypes = true, defaults = true, drop_remainder = true }

-- mg.data.experimental.make_csv_dataset(path, {batch_size=, label_name=, shuffle=true,
-- shuffle_buffer_size=10000, shuffle_seed=, num_epochs=nil (forever, as TF), select_columns=,
-- header, delimiter, na_value, dtypes, defaults, drop_remainder=false}): batches of
-- (features, label) where features is {column = batch}; without label_name, just features.
function M.make_csv_dataset(path, opts)
  opts = check_opts("make_csv_dataset", opts, MAKE_OPTS)
  local bs = opts.batch_size
  if type(bs) ~= "number" or bs < 1 or bs ~= math.floor(bs) then
    error("make_csv_dataset: batch_size must be a positive integer, got " .. tostring(bs), 2)
  end
  local cols, names = M.read_csv(path, { header = opts.header, delimiter = opts.delimiter, columns = opts.select_columns,
    dtypes = opts.dtypes, na_value = opts.na_value, defaults = opts.defaults })
  local label = opts.label_name
  if label ~= nil and cols[label] == nil then
    error(string.format("make_csv_dataset: label_name '%s' is not a column of %s", tostring(label), path), 2)
  end
  local nrows = 0
  local c1 = cols[names[1]]
  if c1 then nrows = core.is_tensor(c1) and c1.shape[1] or #c1 end
  local Dataset = require("moongrad.data").Dataset
  local ds = Dataset._new("csv", nil, nrows, function()
    local i = 0
    return function()
      if i >= nrows then return nil end
      i = i + 1
      local feats = {}
      for _, n in ipairs(names) do
        if n ~= label then feats[n] = cols[n][i] end
      end
      if label == nil then return feats end
      return { feats, cols[label][i] }
    end
  end)
  if opts.shuffle ~= false then
    ds = ds:shuffle(opts.shuffle_buffer_size or 10000, { seed = opts.shuffle_seed })
  end
  ds = ds:repeat_(opts.num_epochs)
  return ds:batch(bs, { drop_remainder = opts.drop_remainder })
end

return M
