-- moongrad.nn.plot: nn.plot_model(model, "m.dot" | "m.png" | "m.svg",
-- {show_shapes=false, show_layer_names=true, rankdir="TB", expand_nested=false})
-- writes the layer graph as Graphviz DOT; for .png/.svg/.pdf it runs `dot`
-- (Debian's graphviz) on it, with a clear error when it is missing.
-- Returns the DOT text. Portable Lua (5.4 and LuaJIT).
local util = require("moongrad.nn.util")

local M = {}

local function esc(s) return (tostring(s):gsub('[\\"]', "\\%0")) end

local function node_label(l, model, opts)
  local parts = {}
  if opts.show_layer_names ~= false then parts[#parts + 1] = l.name .. " (" .. l.class_name .. ")" else
    parts[#parts + 1] = l.class_name end
  if opts.show_shapes then
    local nodes = model._model_nodes and model:_model_nodes(l) or {}
    local ins, outs = {}, {}
    for _, n in ipairs(nodes) do
      for _, t in ipairs(n.inputs) do ins[#ins + 1] = util.shape_str(t.shape) end
      for _, t in ipairs(n.outputs) do outs[#outs + 1] = util.shape_str(t.shape) end
    end
    if l.class_name == "InputLayer" then ins = outs end
    parts[#parts + 1] = "input: " .. table.concat(ins, ", ")
    parts[#parts + 1] = "output: " .. table.concat(outs, ", ")
  end
  return table.concat(parts, "\\n")
end

-- The DOT text of a model's layer graph.
function M.model_to_dot(model, opts)
  opts = opts or {}
  local lines = { string.format('digraph "%s" {', esc(model.name)),
    string.format('  rankdir=%s;', opts.rankdir or "TB"),
    '  node [shape=record, fontname="Helvetica", fontsize=10];' }
  local ids = {}
  for i, l in ipairs(model.layers) do
    ids[l] = "L" .. i
    lines[#lines + 1] = string.format('  L%d [label="%s"];', i, esc(node_label(l, model, opts)))
  end
  local edges = {}
  if model.class_name == "Functional" then
    for _, l in ipairs(model.layers) do
      for _, n in ipairs(model:_model_nodes(l)) do
        for _, t in ipairs(n.inputs) do
          local from = ids[t.node.layer]
          if from then edges[#edges + 1] = string.format("  %s -> %s;", from, ids[l]) end
        end
      end
    end
  else
    local prev
    for i, l in ipairs(model.layers) do
      if prev then edges[#edges + 1] = string.format("  L%d -> L%d;", i - 1, i) end
      prev = l
    end
  end
  local seen = {}
  for _, e in ipairs(edges) do
    if not seen[e] then seen[e] = true; lines[#lines + 1] = e end
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

function M.plot_model(model, path, opts)
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
