-- moongrad.nn.summary: model:summary(), Keras's table:
--
--   Model: "sequential"
--   _________________________________________________________________
--    Layer (type)                Output Shape              Param #
--   =================================================================
--    dense (Dense)               (None, 64)                50,240
--   ...
--   Total params: 50,890 (198.79 KB)
--
-- Functional models get a "Connected to" column (layer[node][tensor],
-- counted from 1). Subclassed models list the layers on their fields with
-- the output shape of their last call ("?" before the first).
-- Portable Lua (5.4 and LuaJIT).
local Model = require("moongrad.nn.model")
local util = require("moongrad.nn.util")

local M = {}

local function thousands(n)
  local s = tostring(math.floor(n))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end
M.thousands = thousands

local function bytes_text(n)
  if n >= 1024 * 1024 * 1024 then return string.format("%.2f GB", n / 1024 / 1024 / 1024) end
  if n >= 1024 * 1024 then return string.format("%.2f MB", n / 1024 / 1024) end
  if n >= 1024 then return string.format("%.2f KB", n / 1024) end
  return string.format("%d B", n)
end

local function size_of(ws)
  local count, bytes = 0, 0
  local sizes = { float32 = 4, float64 = 8, int32 = 4, int64 = 8, uint8 = 1, bool = 1 }
  for _, v in ipairs(ws) do
    local n = v:numel()
    count = count + n
    bytes = bytes + n * (sizes[v.dtype] or 4)
  end
  return count, bytes
end

local function pad(s, w)
  if #s >= w then return s .. " " end
  return s .. string.rep(" ", w - #s)
end

local function shape_text(s)
  if s == nil then return "?" end
  if type(s[1]) == "table" then
    local parts = {}
    for i, x in ipairs(s) do parts[i] = util.shape_str(x) end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  return util.shape_str(s)
end

-- The rows: {name_type, shape, params, connections}.
local function rows_of(model)
  local rows = {}
  local functional = model.class_name == "Functional"
  for _, l in ipairs(model.layers) do
    local nodes = model._model_nodes and model:_model_nodes(l) or {}
    local shape
    if #nodes == 1 then
      local o = nodes[1].outputs
      if #o == 1 then shape = o[1].shape else
        shape = {}
        for i, t in ipairs(o) do shape[i] = t.shape end
      end
    elseif #nodes > 1 then
      shape = "multiple"
    else
      shape = rawget(l, "_last_output_shape")
    end
    local conn = {}
    if functional then
      for _, n in ipairs(nodes) do
        for _, t in ipairs(n.inputs) do
          local k = 1
          for j, m in ipairs(model:_model_nodes(t.node.layer)) do if m == t.node then k = j end end
          conn[#conn + 1] = string.format("%s[%d][%d]", t.node.layer.name, k, t.index)
        end
      end
    end
    rows[#rows + 1] = { string.format("%s (%s)", l.name, l.class_name),
      shape == "multiple" and "multiple" or shape_text(shape), thousands(l.built and l:count_params() or 0), conn }
  end
  return rows, functional
end

-- model:summary{line_length=, print_fn=}: prints the table (print_fn gets
-- each line; default print).
function Model:summary(opts)
  opts = require("moongrad.options").check("summary", opts, { line_length = { "integer", min = 1 },
    print_fn = "function" })
  local print_fn = opts.print_fn or print
  -- Keras raises here too: before its input shape is known a model's table is rows of "?" and
  -- zero parameters, which reads as a model with no weights.
  if not rawget(self, "built") then
    util.raise(string.format("summary: model %s has not been built yet, so its shapes and parameter counts are "
      .. "unknown; give it an input shape first: nn.Input{...} as the first layer, input_shape = {...} on the "
      .. "first layer, model:build{-1, ...} (-1: any batch size), or call it on a batch of data", self.name))
  end
  local rows, functional = rows_of(self)
  local w1, w2, w3 = 29, 26, 10
  for _, r in ipairs(rows) do
    w1 = math.max(w1, #r[1] + 3)
    w2 = math.max(w2, #r[2] + 2)
    w3 = math.max(w3, #r[3] + 2)
  end
  local w4 = 0
  if functional then
    w4 = 20
    for _, r in ipairs(rows) do
      for _, c in ipairs(r[4]) do w4 = math.max(w4, #c + 1) end
    end
  end
  local width = opts.line_length or (w1 + w2 + w3 + w4)
  local function line(a, b, c, d)
    local s = " " .. pad(a, w1 - 1) .. pad(b, w2) .. pad(c, w3)
    if functional then s = s .. (d or "") end
    return (s:gsub("%s+$", ""))
  end
  print_fn(string.format('Model: "%s"', self.name))
  print_fn(string.rep("_", width))
  print_fn(line("Layer (type)", "Output Shape", "Param #", "Connected to"))
  print_fn(string.rep("=", width))
  for i, r in ipairs(rows) do
    print_fn(line(r[1], r[2], r[3], r[4][1] or ""))
    for k = 2, #r[4] do print_fn(line("", "", "", r[4][k])) end
    if i < #rows then print_fn("") end
  end
  print_fn(string.rep("=", width))
  local total, tbytes = size_of(self.weights)
  local trainable, trbytes = size_of(self.trainable_weights)
  print_fn(string.format("Total params: %s (%s)", thousands(total), bytes_text(tbytes)))
  print_fn(string.format("Trainable params: %s (%s)", thousands(trainable), bytes_text(trbytes)))
  print_fn(string.format("Non-trainable params: %s (%s)", thousands(total - trainable), bytes_text(tbytes - trbytes)))
  print_fn(string.rep("_", width))
end

return M
