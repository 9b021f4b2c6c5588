-- moongrad.raw: which ops of the op table are internals of the backward pass
-- and of the optimizers, kept out of the public `mg` namespace and the tensor
-- methods (TensorFlow keeps its equivalents under tf.raw_ops).
--
-- They are the adjoints the gradient rules are built from (slice_grad,
-- max_pool2d_grad_grad, conv2d_backprop_filter, take_grad, the fused
-- cross-entropy gradients) and the fused optimizer steps (adam_update, ...):
-- an op whose name ends in "_grad" or "_update" or holds "_backprop_", and the
-- linear-algebra rows linalg_* (the public functions are mg.linalg.*, which
-- unpack the packed results of svd/eigh/slogdet: moongrad/linalg.lua). init.lua
-- installs them as mg.raw.NAME only; scripts/gen_ops_doc.lua reads the same
-- rule to name them so in doc/ops.md. A plain function of a name, so that the
-- doc generator can load this file without the engine. Portable Lua.
local M = {}

-- Public ops whose names happen to match the rule (TF's own names).
local public = { tensor_scatter_nd_update = true }

function M.is_raw(name)
  if public[name] then return false end
  return name:find("_grad$") ~= nil or name:find("_update$") ~= nil or name:find("_backprop_", 1, true) ~= nil
    or name:find("^linalg_") ~= nil
end

return M
