-- moongrad.nn.util: what every layer module shares: the call context (the
-- inherited `training` flag), unique Keras-style names, constructor
-- argument parsing, shape helpers and the class registry used by
-- from_config / model_from_json.
--
-- Constructor arguments: a layer takes one table of Keras keyword
-- arguments, `nn.Dense{units=64}`, or its leading Keras positional
-- arguments followed by that table, `nn.Dense(64, {activation="relu"})`;
-- a table holding both, `nn.Dense{64, activation="relu"}`, works too. A
-- table with only array entries is a positional value (`nn.Reshape{28, 28, 1}`
-- is a target shape). Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local options = require("moongrad.options")

local M = {}

-- ---- call context --------------------------------------------------------------

-- `training` while a model calls its layers: layers called without an
-- explicit flag inherit the caller's (Keras's call context).
M.context = { training = nil, name_counts = {} }

-- A Keras-style unique name: base, base_1, base_2, ...
function M.unique_name(base)
  local counts = M.context.name_counts
  local n = counts[base]
  counts[base] = (n or 0) + 1
  if not n then return base end
  return base .. "_" .. n
end

-- Forgets the names handed out (Keras's clear_session).
function M.clear_session() M.context.name_counts = {} end

-- "MaxPooling2D" -> "max_pooling2d", "SimpleRNN" -> "simple_rnn" (Keras's rule).
function M.snake_case(name)
  local s = name:gsub("(.)(%u%l+)", "%1_%2"):gsub("(%l)(%u)", "%1_%2")
  return s:lower()
end

-- error(msg) raised at the first caller outside moongrad's own Lua files,
-- so constructor errors point at the user's line.
M.raise = options.raise

-- ---- arguments -------------------------------------------------------------------

local function is_array_only(t)
  for k in pairs(t) do
    if type(k) ~= "number" then return false end
  end
  return #t > 0
end

M.is_array_only = is_array_only

local function is_plain_table(v)
  return type(v) == "table" and getmetatable(v) == nil
end

-- Parses a constructor's arguments into one config table, naming the
-- positional values after `positional` (Keras's leading arguments).
function M.parse_args(cls_name, positional, list_first, ...)
  local n = select("#", ...)
  local args = { ... }
  local cfg, pos, npos = {}, {}, 0
  for i = 1, n do
    local a = args[i]
    if i == n and is_plain_table(a) and not is_array_only(a) then
      for k, v in pairs(a) do
        if type(k) ~= "number" then cfg[k] = v end
      end
      if list_first and #a > 0 and npos == 0 then
        -- nn.Reshape{28, 28, 1, name="r"}: the array part is the one list argument
        local list = {}
        for j = 1, #a do list[j] = a[j] end
        npos = 1
        pos[1] = list
      else
        for j = 1, #a do npos = npos + 1; pos[npos] = a[j] end
      end
    else
      npos = npos + 1
      pos[npos] = a
    end
  end
  if npos > #positional then
    M.raise(string.format("%s: %d positional arguments given, it takes at most %d (%s); pass the others in "
      .. "the options table", cls_name, npos, #positional, table.concat(positional, ", ")))
  end
  for i = 1, npos do
    local key, v = positional[i], pos[i]
    if v ~= nil then
      if cfg[key] ~= nil then
        M.raise(string.format("%s: %s given both positionally and by name", cls_name, key))
      end
      cfg[key] = v
    end
  end
  return cfg
end

-- Checks a constructor's options against `spec` (name -> rule, see
-- moongrad.options): unknown names (typos such as `activaton`) and values
-- of the wrong type or out of range raise at the user's line.
function M.check_options(cls_name, cfg, spec)
  options.check(cls_name, cfg, spec)
end

-- ---- option rules shared by the layers ------------------------------------------------

local function is_pos_int(v) return type(v) == "number" and v >= 1 and v == math.floor(v) end

-- n | {a, b}: a positive integer or a pair of them (kernel sizes, strides, pool sizes).
local function pair_check(v)
  if type(v) == "number" then
    if not is_pos_int(v) then return "must be a positive integer or a pair of them, got " .. tostring(v) end
    return nil
  end
  if #v ~= 2 or not is_pos_int(v[1]) or not is_pos_int(v[2]) then
    return "must be a positive integer or a pair {height, width} of them, got " .. M.shape_str(v)
  end
end

-- "valid" | "same", in any case (Keras lower-cases it).
local function padding_check(v)
  local l = v:lower()
  if l ~= "valid" and l ~= "same" then return string.format("must be \"valid\" or \"same\", got %q", v) end
end

-- A list of sizes without the batch axis (-1 for unknown).
local function shape_check(v)
  if type(v) == "number" then v = { v } end
  for i, d in ipairs(v) do
    if type(d) ~= "number" or d ~= math.floor(d) or (d < 0 and d ~= -1) then
      return string.format("entry %d must be a size or -1 (unknown), got %s", i, tostring(d))
    end
  end
end

-- An axis or a list of axes (integers; the layer checks them against the input's rank).
local function axes_check(v)
  if type(v) == "table" then
    if #v == 0 then return "must name at least one axis, got an empty list" end
    for i, a in ipairs(v) do
      if type(a) ~= "number" or a ~= math.floor(a) then
        return string.format("entry %d must be an integer axis, got %s", i, tostring(a))
      end
    end
  elseif v ~= math.floor(v) then
    return "must be an integer axis or a list of them, got " .. tostring(v)
  end
end

-- An option moongrad does not implement: any value other than the neutral one raises.
function M.unsupported(neutral, why)
  return { "any", check = function(v)
    if v == neutral then return nil end
    return "is not supported" .. (why and (" (" .. why .. ")") or "") .. ", got " .. options.show(v)
  end }
end

M.rules = {
  positive_int = { "integer", min = 1 },
  activation = "string|function|table",
  initializer = "string|table|function",
  regularizer = "string|table|function",
  constraint = "string|table|function",
  pair = { "integer|table", check = pair_check },
  padding = { "string", check = padding_check },
  shape = { "integer|table", check = shape_check },
  axes = { "integer|table", check = axes_check },
  float_dtype = { "string", one_of = { "float32", "float64" } },
  channels_last = { "string", one_of = { "channels_last" } },
}

-- A set from a list of names.
function M.set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

-- n | {a, b} -> {a, b} (kernel sizes, strides, pool sizes).
function M.pair(v, what, cls_name)
  if type(v) == "number" then return { v, v } end
  if type(v) == "table" and #v == 2 and type(v[1]) == "number" and type(v[2]) == "number" then
    return { v[1], v[2] }
  end
  M.raise(string.format("%s: %s must be a number or a pair {height, width}, got %s", cls_name, what,
    type(v) == "table" and M.shape_str(v) or tostring(v)))
end

-- ---- shapes ----------------------------------------------------------------------

-- (None, 28, 28, 1): -1 (unknown) prints as None, like Keras; so does a size unknown while
-- tracing (an unknown-size object), never its probe value.
function M.shape_str(shape)
  local parts = {}
  for i, d in ipairs(shape) do parts[i] = (type(d) ~= "number" or d == -1) and "None" or tostring(d) end
  if #parts == 1 then return "(" .. parts[1] .. ",)" end
  return "(" .. table.concat(parts, ", ") .. ")"
end

-- The message for an input of the wrong shape (a Dense built for 784 features given (32, 28, 28),
-- a model for (None, 4) given 5 features): what was expected with None for the batch, what
-- arrived, and the likely fix. `want` and `got` are full shapes (batch first).
function M.input_mismatch(who, want, got)
  if M.context.probing then   -- fit's first pass runs on a couple of rows: never show that count
    got = M.copy(got)
    got[1] = -1
  end
  local msg = string.format("%sexpects input of shape %s, got %s", who and (who .. " ") or "", M.shape_str(want),
    M.shape_str(got))
  local per_sample, known = 1, true
  for d = 2, #got do
    if type(got[d]) ~= "number" or got[d] < 0 then known = false else per_sample = per_sample * got[d] end
  end
  local want_sample = 1
  for d = 2, #want do want_sample = type(want[d]) == "number" and want[d] > 0 and want_sample * want[d] or -1 end
  if known and #got > #want and per_sample == want_sample then
    local dims = {}
    for d = #want, #got do dims[#dims + 1] = tostring(got[d]) end
    return msg .. string.format(": each sample's %s = %d values need an nn.Flatten() before it (a missing Flatten?)",
      table.concat(dims, " x "), per_sample)
  end
  if #got == #want and type(got[#got]) == "number" and type(want[#want]) == "number" then
    return msg .. string.format(": the data has %d features on the last axis where %d were expected (check the "
      .. "data's columns, or the nn.Input / input_shape the model was built for)", got[#got], want[#want])
  end
  return msg
end

function M.copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

function M.deep_copy(t)
  if type(t) ~= "table" or getmetatable(t) ~= nil then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = M.deep_copy(v) end
  return c
end

function M.product(list, from, to)
  local p = 1
  for i = from or 1, to or #list do p = p * list[i] end
  return p
end

-- A shape with its first (batch) size replaced by -1.
function M.batchless(shape)
  local s = M.copy(shape)
  if #s > 0 then s[1] = -1 end
  return s
end

-- Shapes agree where both are known.
function M.compatible(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i] ~= -1 and b[i] ~= -1 and a[i] ~= b[i] then return false end
  end
  return true
end

-- ---- the class registry (from_config, model_from_json) ----------------------------

M.registry = {}

function M.register(cls)
  M.registry[cls.class_name] = cls
  return cls
end

-- Numbers that came back from JSON as floats become integers again where
-- they are whole (Lua 5.4 only distinguishes; LuaJIT has one number type).
function M.fix_numbers(v)
  if type(v) == "number" then
    if math.tointeger and v == math.floor(v) and math.abs(v) < 2 ^ 53 then return math.tointeger(v) end
    return v
  elseif type(v) == "table" then
    for k, x in pairs(v) do v[k] = M.fix_numbers(x) end
  end
  return v
end

M.is_tensor = core.is_tensor

-- Integer and bool inputs of float layers become the layer's dtype (Keras's autocast).
function M.float_input(x, dtype)
  local d = x.dtype
  if d == "float32" or d == "float64" or d == "float16" or d == "bfloat16" then return x end
  return core.cast(x, dtype or "float32")
end

return M
