-- moongrad.nn.json: JSON for model configs and weight-file headers.
--
-- Encoding is done here (sorted keys, so the same model always gives the
-- same text; whole numbers without a fraction; an empty table is an empty
-- array, the only empty value configs hold). Decoding uses the engine's
-- cJSON (core.json_decode: no Lua JSON module needed, so it works from the
-- static embedding library too), and turns the floats it returns for whole
-- numbers back into integers. Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")

local M = {}

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
  ["\t"] = "\\t" }

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function encode_number(v)
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
  for _, f in ipairs({ "%.15g", "%.16g" }) do   -- the shortest text that reads back the same
    local s = string.format(f, v)
    if tonumber(s) == v then return s end
  end
  return string.format("%.17g", v)
end

local function is_array(t)
  local n = #t
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function encode(v, out, indent, level)
  local tv = type(v)
  if tv == "nil" then out[#out + 1] = "null"
  elseif tv == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then out[#out + 1] = encode_number(v)
  elseif tv == "string" then out[#out + 1] = encode_string(v)
  elseif tv == "table" then
    local nl = indent and ("\n" .. string.rep(indent, level + 1)) or ""
    local close = indent and ("\n" .. string.rep(indent, level)) or ""
    if is_array(v) then
      if #v == 0 then out[#out + 1] = "[]"; return end
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = nl
        encode(v[i], out, indent, level + 1)
      end
      out[#out + 1] = close .. "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" and type(k) ~= "number" then
          error("json: cannot encode a table key of type " .. type(k), 0)
        end
        keys[#keys + 1] = tostring(k)
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = nl .. encode_string(k) .. (indent and ": " or ":")
        local item = v[k]
        if item == nil then item = v[tonumber(k)] end
        encode(item, out, indent, level + 1)
      end
      out[#out + 1] = close .. "}"
    end
  else
    error("json: cannot encode a " .. tv, 0)
  end
end

-- encode(value [, indent]): JSON text; indent (e.g. "  ") pretty-prints.
function M.encode(v, indent)
  local out = {}
  encode(v, out, indent, 0)
  return table.concat(out)
end

local function fix(v)
  if type(v) == "number" then
    if math.tointeger and v == math.floor(v) and math.abs(v) < 2 ^ 53 then return math.tointeger(v) end
    return v
  elseif type(v) == "table" then
    for k, x in pairs(v) do v[k] = fix(x) end
  end
  return v
end

-- decode(text): the Lua value (a JSON null reads as nil).
function M.decode(s)
  if type(s) ~= "string" then error("json: decode expects a string, got " .. type(s), 2) end
  local ok, v = pcall(core.json_decode, s)
  if not ok then error("json: " .. tostring(v):gsub("^[^\n]-:%d+: ", ""):gsub("^json: ", ""), 2) end
  return fix(v)
end

return M
