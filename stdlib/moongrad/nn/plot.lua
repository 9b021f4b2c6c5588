-- moongrad.nn.plot: nn.plot_model(model, "m.dot" | "m.png" | "m.svg",
-- {show_shapes=false, show_layer_names=true, show_layer_activations=false, rankdir="TB"})
-- writes the layer graph as Graphviz DOT; for .png/.svg/.pdf it runs `dot`
-- (Debian's graphviz) on it, with a clear error when it is missing.
-- Returns the DOT text. Portable Lua (5.4 and LuaJIT).
local util = require("moongrad.nn.util")

local M = {}

local function esc(s) return (tostring(s):gsub('[\\"]', "\\%0")) end
-- Record-label text: the record syntax characters escaped too.
local function resc(s) return (tostring(s):gsub('[\\"{}|<>]', "\\%0")) end

-- A node's record label: "name (Class)" on top; with show_shapes a row
-- below split into the input and output shapes (Keras's layout).
local function node_label(l, model, opts, nodes)
  local title = opts.show_layer_names ~= false and (l.name .. " (" .. l.class_name .. ")") or l.class_name
  if opts.show_layer_activations and l.activation then
    local act = require("moongrad.nn.activations").serialize(l.activation)
    if act ~= "linear" then title = title .. " " .. act end
  end
  if not opts.show_shapes then return resc(title) end
  local ins, outs = {}, {}
  for _, n in ipairs(nodes) do
    for _, t in ipairs(n.inputs) do ins[#ins + 1] = util.shape_str(t.shape) end
    for _, t in ipairs(n.outputs) do outs[#outs + 1] = util.shape_str(t.shape) end
  end
  if l.class_name == "InputLayer" then ins = outs end
  if #outs == 0 then
    local s = rawget(l, "_last_output_shape")
    outs = { s and util.shape_str(s) or "?" }
    if #ins == 0 then ins = { "?" } end
  end
  return string.format("{%s|{input: %s|output: %s}}", resc(title), resc(table.concat(ins, ", ")),
    resc(table.concat(outs, ", ")))
end

-- The DOT text of a model's layer graph (a Sequential's input shown as its InputLayer).
local PLOT_OPTIONS = { show_shapes = "boolean", show_layer_names = "boolean", show_layer_activations = "boolean",
  rankdir = { "string", one_of = { "TB", "LR" } } }

--- mg.nn.model_to_dot(model, {show_shapes=false, ...}) -> the model's graph as Graphviz dot text.
function M.model_to_dot(model, opts)
  opts = require("moongrad.options").check("model_to_dot", opts, PLOT_OPTIONS)
  local lines = { string.format('digraph "%s" {', esc(model.name)),
    string.format('  rankdir=%s;', opts.rankdir or "TB"),
    '  node [shape=Mrecord, fontname="Helvetica", fontsize=11, style=filled, fillcolor="#f4f6fb", '
      .. 'color="#4a5a7a"];',
    '  edge [color="#4a5a7a", arrowsize=0.7];' }
  local layers, nodes_of = {}, {}
  local input_kt = model.class_name == "Sequential" and rawget(model, "_input_kt") or nil
  if input_kt then
    layers[1] = input_kt.node.layer
    nodes_of[layers[1]] = { input_kt.node }
  end
  for _, l in ipairs(model.layers) do
    layers[#layers + 1] = l
    nodes_of[l] = model._model_nodes and model:_model_nodes(l) or {}
  end
  local ids = {}
  for i, l in ipairs(layers) do
    ids[l] = "L" .. i
    local extra = l.class_name == "InputLayer" and ', fillcolor="#e3ecd9"' or ""
    lines[#lines + 1] = string.format('  L%d [label="%s"%s];', i, node_label(l, model, opts, nodes_of[l]), extra)
  end
  local edges = {}
  if model.class_name == "Functional" then
    for _, l in ipairs(layers) do
      for _, n in ipairs(nodes_of[l]) do
        for _, t in ipairs(n.inputs) do
          local from = ids[t.node.layer]
          if from then edges[#edges + 1] = string.format("  %s -> %s;", from, ids[l]) end
        end
      end
    end
  else
    for i = 2, #layers do edges[#edges + 1] = string.format("  L%d -> L%d;", i - 1, i) end
  end
  local seen = {}
  for _, e in ipairs(edges) do
    if not seen[e] then seen[e] = true; lines[#lines + 1] = e end
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

--- mg.nn.plot_model(model, path, {show_shapes=false, ...}): draws the model's graph into path (.dot, or .png/.svg through Graphviz's dot).
function M.plot_model(model, path, opts)
  require("moongrad.options").check("plot_model", opts, PLOT_OPTIONS)
  path = path or "model.png"
  local text = M.model_to_dot(model, opts)
  local ext = path:match("%.(%w+)$") or "dot"
  local dot_path = ext == "dot" and path or (path .. ".dot")
  local f, err = io.open(dot_path, "w")
  if not f then error("plot_model: cannot write " .. dot_path .. ": " .. tostring(err), 2) end
  f:write(text)
  f:close()
  if ext ~= "dot" and ext ~= "gv" then
    local function quote(s) return "'" .. (s:gsub("'", "'\\''")) .. "'" end
    os.remove(path)
    local p = io.popen(string.format("dot -T%s %s -o %s 2>&1", ext, quote(dot_path), quote(path)))
    local out = p and p:read("a") or ""
    if p then p:close() end
    os.remove(dot_path)
    local made = io.open(path, "rb")
    local ok = made ~= nil and made:read(1) ~= nil
    if made then made:close() end
    if not ok then
      error(string.format("plot_model: `dot` failed or is missing (install Debian's graphviz); the DOT text is "
        .. "returned and model_to_dot gives it too. %s", out), 2)
    end
  end
  return text
end

return M
