-- moongrad.nn.masking: Keras's masks, carried beside the tensors they describe.
--
-- Keras attaches a mask (a bool tensor, usually (batch, time): true where a
-- step is real, false where it is padding) to a layer's output tensor as
-- `_keras_mask`; the next layer's call reads it from its input. moongrad's
-- tensors are engine objects with no room for Lua fields, so the masks live
-- in one weak-keyed table here: a mask lives exactly as long as its tensor,
-- eagerly and inside staged functions (traced tensors are objects too), and
-- nothing else about a tensor changes. Only layer calls read and write masks
-- (Layer.__call, layer.lua), as in Keras: an op applied to a masked tensor
-- outside a layer gives an unmasked result.
-- Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")

local M = {}

local masks = setmetatable({}, { __mode = "k" })

--- mg.nn.get_mask(t) -> the mask a layer attached to tensor t (a bool tensor), or nil.
function M.get(t)
  if core.is_tensor(t) then return masks[t] end
  return nil
end

-- Attaches mask m (a bool tensor, or nil to clear) to tensor t.
function M.set(t, m)
  if core.is_tensor(t) then masks[t] = m end
end

-- The masks of a call's inputs: a tensor's mask, or for a list of tensors a
-- list with `false` where an input has none (so the list has no holes);
-- nil when no input has a mask.
function M.of_inputs(inputs)
  if core.is_tensor(inputs) then return masks[inputs] end
  if type(inputs) == "table" and getmetatable(inputs) == nil then
    local out, any = {}, false
    for i = 1, #inputs do
      local m = M.get(inputs[i])
      out[i] = m or false
      if m then any = true end
    end
    if any then return out end
  end
  return nil
end

-- True when `mask` (as of_inputs returns it) holds at least one mask.
function M.any(mask)
  if mask == nil or mask == false then return false end
  if core.is_tensor(mask) then return true end
  for i = 1, #mask do if mask[i] then return true end end
  return false
end

-- Attaches the output masks `omask` (a tensor or a list matching a list of
-- outputs) to the outputs that have none yet (a layer's call may have set
-- its outputs' masks itself).
function M.attach(outputs, omask)
  if omask == nil or omask == false then return end
  if core.is_tensor(outputs) then
    if masks[outputs] == nil and core.is_tensor(omask) then masks[outputs] = omask end
    return
  end
  if type(outputs) == "table" and type(omask) == "table" and not core.is_tensor(omask) then
    for i = 1, #outputs do
      local o, m = outputs[i], omask[i]
      if core.is_tensor(o) and m and masks[o] == nil then masks[o] = m end
    end
  end
end

return M
