-- The gradient check: every differentiable op of the op table, in float64,
-- against central finite differences, including broadcasting shapes; and
-- second-order checks (gradient of the gradient) for the elementwise ops and
-- matmul. The list of ops comes from the table itself (mg.core.ops()), so an
-- op added without a case here fails this spec.
--
-- Loss: L = sum(f(inputs) * w) with a fixed random weight w, so the output
-- gradient is not all ones. Finite differences: eps = 1e-6, tolerance
-- |analytic - numeric| <= 1e-6 + 1e-5 * |numeric| (float64 throughout).
local mg = require("moongrad")
local core = mg.core

local EPS, ATOL, RTOL = 1e-6, 1e-6, 1e-5

local seed = 0
-- A float64 tensor of `shape` uniform in [lo, hi].
local function U(shape, lo, hi)
  seed = seed + 1
  return core.uniform(shape, lo or -1, hi or 1, "float64", seed)
end
-- Values away from integers and from 0 (for floor/abs/relu-like kinks).
local function OFFGRID(shape)
  return U(shape, 0.1, 0.4) + core.cast(core.randint(shape, -3, 3, "int64", 99), "float64")
end
local function DISTINCT(shape)  -- no ties (max/min/maximum)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  local perm = core.cast(core.reshape(core.arange(0, n, 1, "int64"), shape), "float64")
  return perm * 0.37 - 1 + U(shape, 0, 0.01)
end
local function fixed(t) return { fixed = t } end
-- Square matrices (batch..., n, n) far from singular: uniform plus 3 on the diagonal.
local function WELL(shape)
  local n = shape[#shape]
  local full = {}
  for i, d in ipairs(shape) do full[i] = d end
  full[#full + 1] = n
  return U(full) + core.eye(n, -1, "float64") * 3
end
-- Symmetric positive-definite matrices (batch..., n, n): B B^T + n I.
local function SPD(shape)
  local b = WELL(shape)
  local n = shape[#shape]
  return core.matmul(b, core.transpose(b)) + core.eye(n, -1, "float64") * n
end

-- case: { inputs = {tensor | fixed(tensor)}, args = {attribute args...} }
local cases = {
  neg = { { inputs = { U { 2, 3 } } } },
  abs = { { inputs = { OFFGRID { 2, 3 } } } },
  sign = { { inputs = { OFFGRID { 4 } } } },
  exp = { { inputs = { U { 2, 3 } } } },
  expm1 = { { inputs = { U { 5 } } } },
  log = { { inputs = { U({ 2, 3 }, 0.5, 2) } } },
  log1p = { { inputs = { U({ 4 }, -0.5, 2) } } },
  sqrt = { { inputs = { U({ 2, 2 }, 0.5, 2) } } },
  rsqrt = { { inputs = { U({ 3 }, 0.5, 2) } } },
  square = { { inputs = { U { 2, 3 } } } },
  sin = { { inputs = { U { 3 } } } },
  cos = { { inputs = { U { 3 } } } },
  tanh = { { inputs = { U { 2, 2 } } } },
  sigmoid = { { inputs = { U({ 4 }, -3, 3) } } },
  relu = { { inputs = { OFFGRID { 2, 3 } } } },
  softplus = { { inputs = { U({ 4 }, -3, 3) } } },
  erf = { { inputs = { U { 4 } } } },
  floor = { { inputs = { OFFGRID { 3 } } } },
  ceil = { { inputs = { OFFGRID { 3 } } } },
  round = { { inputs = { OFFGRID { 3 } } } },
  cast = { { inputs = { U { 3 } }, args = { "float64" } } },
  tan = { { inputs = { U { 2, 3 } } } },
  asin = { { inputs = { U({ 2, 3 }, -0.8, 0.8) } } },
  acos = { { inputs = { U({ 2, 3 }, -0.8, 0.8) } } },
  atan = { { inputs = { U({ 2, 3 }, -3, 3) } } },
  sinh = { { inputs = { U { 2, 3 } } } },
  cosh = { { inputs = { U { 2, 3 } } } },
  asinh = { { inputs = { U({ 2, 3 }, -3, 3) } } },
  acosh = { { inputs = { U({ 2, 3 }, 1.2, 3) } } },
  atanh = { { inputs = { U({ 2, 3 }, -0.8, 0.8) } } },
  log2 = { { inputs = { U({ 2, 3 }, 0.5, 2) } } },
  log10 = { { inputs = { U({ 2, 3 }, 0.5, 2) } } },
  exp2 = { { inputs = { U { 2, 3 } } } },
  reciprocal = { { inputs = { U({ 2, 3 }, 0.5, 2) } }, { inputs = { U({ 3 }, -2, -0.5) } } },
  log_sigmoid = { { inputs = { U({ 4 }, -3, 3) } } },
  trunc = { { inputs = { OFFGRID { 3 } } } },
  elu = { { inputs = { OFFGRID { 2, 3 } } }, { inputs = { OFFGRID { 4 } }, args = { 0.5 } } },
  celu = { { inputs = { OFFGRID { 2, 3 } } }, { inputs = { OFFGRID { 4 } }, args = { 2.5 } } },
  leaky_relu = { { inputs = { OFFGRID { 2, 3 } } }, { inputs = { OFFGRID { 4 } }, args = { 0.01 } } },
  gelu = { { inputs = { U({ 2, 3 }, -3, 3) } }, { inputs = { U({ 5 }, -3, 3) }, args = { true } } },
  hard_sigmoid = { { inputs = { OFFGRID { 2, 3 } } } },
  hard_swish = { { inputs = { OFFGRID { 2, 3 } } } },
  copysign = { { inputs = { OFFGRID { 2, 3 }, fixed(mg.tensor({ 1, -1, 2 }, "float64")) } } },
  logaddexp = { { inputs = { U { 2, 3 }, U { 3 } } }, { inputs = { U({ 3 }, -30, 30), U({ 3 }, -30, 30) } } },
  fmod = { { inputs = { OFFGRID { 3 }, U({ 3 }, 1.5, 1.7) } }, { inputs = { OFFGRID { 3 }, U({ 3 }, -1.7, -1.5) } } },
  add = { { inputs = { U { 2, 3 }, U { 3 } } }, { inputs = { U { 2, 1 }, U { 1, 3 } } } },
  sub = { { inputs = { U { 2, 3 }, U { 2, 1 } } } },
  mul = { { inputs = { U { 2, 3 }, U { 3 } } }, { inputs = { U { 3 }, U {} } } },
  div = { { inputs = { U { 2, 3 }, U({ 3 }, 0.5, 2) } } },
  floordiv = { { inputs = { OFFGRID { 3 }, U({ 3 }, 1.5, 1.7) } } },
  mod = { { inputs = { U({ 3 }, 0.2, 0.9), U({ 3 }, 1.1, 1.5) } } },
  pow = { { inputs = { U({ 2, 3 }, 0.5, 2), U({ 3 }, -1, 2) } },
    -- x = 0 with integer exponents 0..3 (fixed: d/dy is not differentiable at x = 0): the
    -- x-gradient y x^(y-1) is taken as 0 where y == 0 (x^0 is the constant 1), as PyTorch
    { inputs = { mg.tensor({ { 0, 0, 0, 0 }, { 0.7, 1.3, -0.4, 2 } }, "float64"), fixed(mg.tensor({ 0, 1, 2, 3 }, "float64")) } } },
  maximum = { { inputs = { DISTINCT { 2, 3 }, DISTINCT { 3 } * 1.1 } } },
  minimum = { { inputs = { DISTINCT { 2, 3 }, DISTINCT { 3 } * 1.1 } } },
  atan2 = { { inputs = { U { 2, 3 }, U({ 3 }, 0.5, 2) } } },
  where = { { inputs = { fixed(mg.tensor { { true, false, true }, { false, true, false } }), U { 2, 3 }, U { 3 } } } },
  clip = { { inputs = { OFFGRID { 2, 3 } }, args = { -1.95, 1.95 } } },
  sum = { { inputs = { U { 2, 3 } } }, { inputs = { U { 2, 3, 2 } }, args = { { axis = { 1, 3 }, keepdims = true } } } },
  mean = { { inputs = { U { 2, 3 } }, args = { { axis = 2 } } } },
  prod = { { inputs = { U({ 2, 3 }, 0.5, 1.5) }, args = { { axis = 1 } } },
    -- exact zeros: rows with one zero, two zeros and none (the rule multiplies the products
    -- before and after each element; out / x was NaN there)
    { inputs = { mg.tensor({ { 0, 0.7, -1.2 }, { 0, 0, 0.9 }, { 1.1, 0.5, 0.8 } }, "float64") }, args = { { axis = 2 } } },
    { inputs = { mg.tensor({ { 0, 0.7, -1.2 }, { 0, 0, 0.9 }, { 1.1, 0.5, 0.8 } }, "float64") }, args = { { axis = 1, keepdims = true } } },
    { inputs = { mg.tensor({ { 1.3, 0.7 }, { 0, -0.9 } }, "float64") } },
    { inputs = { mg.tensor({ { 1.3, 0 }, { 0, -0.9 } }, "float64") } },
    { inputs = { mg.tensor({ { { 0, 1.2 }, { 0.6, 0.9 }, { 1.4, 0 } }, { { 0.8, 1.1 }, { 0, 0 }, { 0.5, -1.3 } } }, "float64") },
      args = { { axis = { 1, 3 } } } },
  },
  max = { { inputs = { DISTINCT { 2, 3 } }, args = { { axis = 2 } } }, { inputs = { DISTINCT { 2, 3 } } } },
  min = { { inputs = { DISTINCT { 2, 3 } }, args = { { axis = -1, keepdims = true } } } },
  logsumexp = { { inputs = { U { 2, 3 } }, args = { { axis = 2 } } } },
  variance = { { inputs = { U { 2, 4 } }, args = { { axis = 2, correction = 1 } } } },
  softmax = { { inputs = { U { 2, 3 } } }, { inputs = { U { 2, 3 } }, args = { 1 } } },
  log_softmax = { { inputs = { U { 2, 3 } } } },
  matmul = {
    { inputs = { U { 2, 3 }, U { 3, 4 } } },
    { inputs = { U { 2, 2, 3 }, U { 3, 2 } } },
    { inputs = { U { 3 }, U { 3, 2 } } },
    { inputs = { U { 2, 3 }, U { 3 } } },
    { inputs = { U { 3 }, U { 3 } } },                    -- vector . vector: a 0-d product
    { inputs = { U { 2, 2, 3 }, U { 3 } } },
    { inputs = { U { 3 }, U { 2, 3, 2 } } },
  },
  reshape = { { inputs = { U { 2, 3 } }, args = { { 3, 2 } } } },
  permute = { { inputs = { U { 2, 3, 2 } }, args = { { 3, 1, 2 } } } },
  transpose = { { inputs = { U { 2, 3 } } } },
  squeeze = { { inputs = { U { 2, 1, 3 } } } },
  unsqueeze = { { inputs = { U { 2, 3 } }, args = { 2 } } },
  expand = { { inputs = { U { 2, 1 } }, args = { { 2, 3 } } } },
  slice = { { inputs = { U { 4, 3 } }, args = { { 1, 0 }, { 4, 3 }, { 2, 1 } } },
    { inputs = { U { 5 } }, args = { { 4 }, { -6 }, { -2 } } } },
  select = { { inputs = { U { 3, 2 } }, args = { 1, 2 } } },
  contiguous = { { inputs = { U { 2, 3 } } } },
  concat = { { inputs = { U { 2, 3 }, U { 1, 3 } }, args = { 1 }, variadic = true },
    -- no axis: the first (each input its own slice of the gradient, not the first rows)
    { inputs = { U { 2, 3 }, U { 1, 3 } }, variadic = true },
    { inputs = { U { 2 }, U { 3 }, U { 1 } }, variadic = true } },
  gather = { { inputs = { U { 2, 3 }, fixed(mg.tensor { { 1, 3 }, { 2, 2 } }) }, args = { 2 } } },
  take = { { inputs = { U { 3, 2 }, fixed(mg.tensor { 3, 1, 3 }) }, args = { 1 } } },
  scatter_add = { { inputs = { U { 2, 3 }, fixed(mg.tensor { { 1, 3 }, { 2, 2 } }), U { 2, 2 } }, args = { 2 } } },
  pad = {
    { inputs = { U { 2, 3 } }, args = { { 1, 0, 2, 1 } } },
    { inputs = { U { 2, 4 } }, args = { { 1, 1, 2, 1 }, 0, "reflect" } },
    { inputs = { U { 2, 3 } }, args = { { 0, 2, 1, 1 }, 0, "replicate" } },
  },
  tile = { { inputs = { U { 2, 3 } }, args = { { 2, 1 } } },
    { inputs = { U { 1, 2, 1, 1, 2 } }, args = { { 2, 1, 3, 1, 2 } } },   -- 5-d
    { inputs = { U { 2, 1 } }, args = { { 1, 2, 1, 1, 1, 1, 2, 2 } } } },  -- 8-d (MG_MAX_DIMS)
  flip = { { inputs = { U { 2, 3 } }, args = { { axis = 2 } } } },
  slice_grad = { { inputs = { U { 2, 3 } }, args = { { 0, 0 }, { 4, 3 }, { 2, 1 }, { 4, 3 } } } },
  pad_grad = { { inputs = { U { 4, 6 } }, args = { { 1, 1, 2, 1 }, "reflect" } } },
  -- neural-network ops (NHWC; filters (kh, kw, cin/groups, cout))
  conv2d = {
    { inputs = { U { 2, 5, 4, 3 }, U { 3, 2, 3, 4 } }, args = { { padding = "same" } } },
    { inputs = { U { 1, 6, 5, 2 }, U { 3, 3, 2, 3 } }, args = { { strides = 2 } } },
    { inputs = { U { 1, 7, 6, 2 }, U { 2, 3, 2, 2 } }, args = { { strides = { 2, 1 }, padding = "same", dilation = { 1, 2 } } } },
    { inputs = { U { 2, 4, 4, 4 }, U { 2, 2, 2, 6 } }, args = { { groups = 2, padding = "same" } } },
    { inputs = { U { 1, 6, 6, 1 }, U { 2, 2, 1, 2 } }, args = { { dilation = 2 } } },
  },
  conv2d_backprop_input = {
    { inputs = { U { 2, 5, 4, 4 }, U { 3, 2, 3, 4 } }, args = { { 2, 5, 4, 3 }, { padding = "same" } } },
    { inputs = { U { 1, 3, 3, 3 }, U { 3, 3, 2, 3 } }, args = { { 1, 5, 6, 2 }, { strides = 2, padding = "same" } } },
    { inputs = { U { 1, 2, 2, 6 }, U { 2, 2, 2, 6 } }, args = { { 1, 4, 4, 4 }, { groups = 2, dilation = 2 } } },
  },
  conv2d_backprop_filter = {
    { inputs = { U { 2, 5, 4, 3 }, U { 2, 5, 4, 4 } }, args = { { 3, 2, 3, 4 }, { padding = "same" } } },
    { inputs = { U { 1, 5, 6, 2 }, U { 1, 3, 3, 3 } }, args = { { 3, 3, 2, 3 }, { strides = 2, padding = "same" } } },
    { inputs = { U { 1, 4, 4, 4 }, U { 1, 3, 3, 6 } }, args = { { 2, 2, 2, 6 }, { groups = 2 } } },
  },
  conv2d_transpose = {
    { inputs = { U { 1, 3, 3, 2 }, U { 3, 3, 4, 2 } }, args = { { strides = 2, padding = "same" } } },
    { inputs = { U { 2, 3, 2, 2 }, U { 3, 2, 3, 2 } }, args = { { strides = 2 } } },
    { inputs = { U { 1, 3, 3, 2 }, U { 3, 3, 2, 2 } }, args = { { strides = 2, padding = "same", output_padding = 1 } } },
  },
  max_pool2d = {
    { inputs = { DISTINCT { 2, 5, 5, 2 } } },
    { inputs = { DISTINCT { 1, 5, 6, 3 } }, args = { { ksize = 3, strides = 2, padding = "same" } } },
  },
  max_pool2d_grad = { { inputs = { DISTINCT { 1, 4, 4, 2 }, U { 1, 2, 2, 2 } } },
    { inputs = { DISTINCT { 1, 5, 5, 2 }, U { 1, 3, 3, 2 } }, args = { { ksize = 3, strides = 2, padding = "same" } } } },
  max_pool2d_grad_grad = { { inputs = { DISTINCT { 1, 4, 4, 2 }, U { 1, 4, 4, 2 } } } },
  avg_pool2d = {
    { inputs = { U { 2, 4, 4, 2 } } },
    { inputs = { U { 1, 5, 5, 2 } }, args = { { ksize = 3, strides = 2, padding = "same" } } },
  },
  avg_pool2d_grad = { { inputs = { U { 1, 3, 3, 2 } }, args = { { 1, 5, 5, 2 }, { ksize = 3, strides = 2, padding = "same" } } } },
  batch_norm = {
    { inputs = { U { 3, 4 }, U { 4 }, U({ 4 }, 0.5, 1.5), U { 4 }, U { 4 } } },
    { inputs = { U { 3, 4 }, U { 3, 1 }, U({ 3, 1 }, 0.5, 1.5), U { 4 }, U { 4 } }, args = { 0.01 } },
  },
  dropout = { { inputs = { U { 4, 5 }, fixed(mg.tensor(7)) }, args = { 0.4 } } },
  take_grad = { { inputs = { U { 3, 2 }, fixed(mg.tensor { 3, 1, 3 }) }, args = { 1, 4 } } },
  index_add = { { inputs = { U { 4, 2 }, fixed(mg.tensor { 3, 1, 3 }), U { 3, 2 } }, args = { 1 } },
    { inputs = { U { 2, 3 }, fixed(mg.tensor { { 2 }, { 3 } }), U { 2, 2, 1 } }, args = { 2 } } },
  softmax_cross_entropy_with_logits = { { inputs = { U { 3, 4 }, U({ 3, 4 }, 0, 1) } } },
  softmax_cross_entropy_with_logits_grad = { { inputs = { U { 3, 4 }, U({ 3, 4 }, 0, 1), U { 3 } } } },
  sparse_softmax_cross_entropy_with_logits = { { inputs = { U { 3, 4 }, fixed(mg.tensor { 2, 4, 1 }) } } },
  sparse_softmax_cross_entropy_with_logits_grad = { { inputs = { U { 3, 4 }, fixed(mg.tensor { 2, 4, 1 }), U { 3 } } } },
  -- issue 17: scans and sorting
  cumsum = { { inputs = { U { 3, 4 } } }, { inputs = { U { 2, 4 } }, args = { { axis = 2, exclusive = true, reverse = true } } },
    { inputs = { U { 2, 3, 2 } }, args = { { axis = 2, reverse = true } } } },
  cumprod = { { inputs = { U { 3, 4 } } }, { inputs = { U { 2, 4 } }, args = { { axis = 2, exclusive = true, reverse = true } } },
    -- exact at zeros: finite differences of a polynomial are exact there too
    { inputs = { core.cast(mg.tensor { { 2, 0, 3, 0.5 }, { 0, 0, 1.5, 2 } }, "float64") }, args = { { axis = 2 } } },
    { inputs = { core.cast(mg.tensor { { 2, 0, 3, 0.5 }, { 0.7, 0, 1.5, 2 } }, "float64") }, args = { { axis = -1, exclusive = true } } } },
  cumulative_logsumexp = { { inputs = { U { 3, 4 } } },
    { inputs = { U { 2, 4 } }, args = { { axis = 2, reverse = true } } },  -- (exclusive: scan_spec; its -inf breaks this loss)
    { inputs = { U({ 2, 3 }, -30, 30) }, args = { { axis = 2 } } } },
  cummax = { { inputs = { DISTINCT { 3, 4 } } }, { inputs = { DISTINCT { 2, 5 } }, args = { { axis = 2, reverse = true } } } },
  cummin = { { inputs = { DISTINCT { 3, 4 } } }, { inputs = { DISTINCT { 2, 5 } }, args = { { axis = 2, reverse = true } } } },
  sort = { { inputs = { DISTINCT { 3, 4 } } }, { inputs = { DISTINCT { 3, 4 } }, args = { { axis = 1, direction = "DESCENDING" } } } },
  -- shape and indexing (issue 17): 1-based indices, repeated ones too
  gather_nd = { { inputs = { U { 3, 4 }, fixed(mg.tensor { { 2, 3 }, { 1, 1 }, { 2, 3 } }) } },
    { inputs = { U { 3, 2, 2 }, fixed(mg.tensor { { { 3 }, { 1 } }, { { 3 }, { 2 } } }) } } },
  tensor_scatter_nd_update = { { inputs = { U { 3, 4 }, fixed(mg.tensor { { 2, 3 }, { 1, 1 } }), U { 2 } } },
    { inputs = { U { 4, 2 }, fixed(mg.tensor { { 4 }, { 2 } }), U { 2, 2 } } } },
  tensor_scatter_nd_add = { { inputs = { U { 3, 4 }, fixed(mg.tensor { { 2, 3 }, { 2, 3 }, { 1, 4 } }), U { 3 } } } },
  tensor_scatter_nd_sub = { { inputs = { U { 4, 2 }, fixed(mg.tensor { { 4 }, { 2 }, { 4 } }), U { 3, 2 } } } },
  tensor_scatter_nd_max = { { inputs = { DISTINCT { 3, 4 }, fixed(mg.tensor { { 2, 3 }, { 1, 1 }, { 3, 2 } }), DISTINCT { 3 } } } },
  tensor_scatter_nd_min = { { inputs = { DISTINCT { 4, 2 }, fixed(mg.tensor { { 4 }, { 2 } }), DISTINCT { 2, 2 } } } },
  segment_sum = { { inputs = { U { 5, 2 }, fixed(mg.tensor { 1, 1, 2, 4, 4 }) }, args = { 4 } } },
  segment_prod = { { inputs = { U({ 5, 2 }, 0.5, 1.5), fixed(mg.tensor { 1, 1, 2, 4, 4 }) }, args = { 4 } },
    -- exact at zeros: one zero in a segment (the product of the others), two (zero)
    { inputs = { core.cast(mg.tensor { 2, 0, 3, 0, 0, 1.5 }, "float64"), fixed(mg.tensor { 1, 1, 2, 3, 3, 3 }) }, args = { 3 } } },
  segment_max = { { inputs = { DISTINCT { 5, 2 }, fixed(mg.tensor { 1, 1, 2, 4, 4 }) }, args = { 4 } } },
  segment_min = { { inputs = { DISTINCT { 5, 2 }, fixed(mg.tensor { 1, 1, 2, 4, 4 }) }, args = { 4 } } },
  unsorted_segment_sum = { { inputs = { U { 2, 3, 2 }, fixed(mg.tensor { { 3, 1, 3 }, { 1, 2, 3 } }) }, args = { 3 } } },
  unsorted_segment_prod = { { inputs = { U({ 5 }, 0.5, 1.5), fixed(mg.tensor { 3, 1, 3, 1, 2 }) }, args = { 3 } } },
  unsorted_segment_max = { { inputs = { DISTINCT { 5, 2 }, fixed(mg.tensor { 3, 1, 3, 1, 2 }) }, args = { 3 } } },
  unsorted_segment_min = { { inputs = { DISTINCT { 5, 2 }, fixed(mg.tensor { 3, 1, 3, 1, 2 }) }, args = { 3 } } },
  -- issue 17: convolutions and pooling over 1 and 3 spatial axes; explicit padding, pooling dilation
  conv1d = {
    { inputs = { U { 2, 6, 3 }, U { 3, 3, 4 } }, args = { { padding = "same", strides = 2 } } },
    { inputs = { U { 1, 7, 4 }, U { 2, 2, 4 } }, args = { { groups = 2, dilation = 2, padding = "explicit", explicit_padding = { 2, 1 } } } },
  },
  conv1d_backprop_input = { { inputs = { U { 2, 3, 4 }, U { 3, 3, 4 } }, args = { { 2, 6, 3 }, { padding = "same", strides = 2 } } } },
  conv1d_backprop_filter = { { inputs = { U { 2, 6, 3 }, U { 2, 3, 4 } }, args = { { 3, 3, 4 }, { padding = "same", strides = 2 } } } },
  conv1d_transpose = { { inputs = { U { 1, 3, 2 }, U { 3, 2, 2 } }, args = { { strides = 2, padding = "explicit", explicit_padding = { 1, 0 } } } } },
  conv3d = {
    { inputs = { U { 1, 3, 4, 3, 2 }, U { 2, 2, 2, 2, 3 } }, args = { { padding = "same" } } },
    { inputs = { U { 1, 4, 3, 3, 2 }, U { 2, 1, 2, 2, 2 } }, args = { { strides = { 2, 1, 1 }, padding = "explicit", explicit_padding = { 1, 0, 0, 1, 1, 1 } } } },
  },
  conv3d_backprop_input = { { inputs = { U { 1, 2, 2, 2, 3 }, U { 2, 2, 2, 2, 3 } }, args = { { 1, 3, 4, 3, 2 }, { strides = 2, padding = "same" } } } },
  conv3d_backprop_filter = { { inputs = { U { 1, 3, 4, 3, 2 }, U { 1, 2, 2, 2, 3 } }, args = { { 2, 2, 2, 2, 3 }, { strides = 2, padding = "same" } } } },
  conv3d_transpose = { { inputs = { U { 1, 2, 2, 1, 2 }, U { 2, 2, 2, 3, 2 } }, args = { { strides = 2 } } } },
  max_pool1d = { { inputs = { DISTINCT { 2, 7, 2 } }, args = { { ksize = 3, strides = 2, padding = "same" } } },
    { inputs = { DISTINCT { 1, 9, 2 } }, args = { { ksize = 3, strides = 1, dilation = 2 } } } },
  max_pool1d_grad = { { inputs = { DISTINCT { 1, 8, 2 }, U { 1, 4, 2 } }, args = { { ksize = 3, strides = 2, padding = "same" } } } },
  max_pool1d_grad_grad = { { inputs = { DISTINCT { 1, 8, 2 }, U { 1, 8, 2 } }, args = { { ksize = 3, strides = 2, padding = "same" } } } },
  max_pool3d = { { inputs = { DISTINCT { 1, 4, 4, 3, 2 } } },
    { inputs = { DISTINCT { 1, 3, 4, 4, 1 } }, args = { { ksize = 2, strides = 2, padding = "explicit", explicit_padding = { 1, 0, 1, 1, 0, 1 } } } } },
  max_pool3d_grad = { { inputs = { DISTINCT { 1, 4, 4, 4, 1 }, U { 1, 2, 2, 2, 1 } } } },
  max_pool3d_grad_grad = { { inputs = { DISTINCT { 1, 4, 4, 4, 1 }, U { 1, 4, 4, 4, 1 } } } },
  avg_pool1d = { { inputs = { U { 2, 7, 2 } }, args = { { ksize = 3, strides = 2, padding = "same", count_include_pad = true } } },
    { inputs = { U { 1, 9, 2 } }, args = { { ksize = 3, strides = 1, dilation = 2, padding = "explicit", explicit_padding = { 2, 1 } } } } },
  avg_pool1d_grad = { { inputs = { U { 1, 4, 2 } }, args = { { 1, 8, 2 }, { ksize = 3, strides = 2, padding = "same", count_include_pad = true } } } },
  avg_pool3d = { { inputs = { U { 1, 3, 4, 4, 1 } }, args = { { ksize = 2, strides = 2, padding = "explicit", explicit_padding = { 1, 0, 1, 1, 0, 1 } } } } },
  avg_pool3d_grad = { { inputs = { U { 1, 2, 3, 2, 1 } }, args = { { 1, 3, 4, 4, 1 }, { ksize = 2, strides = 2, padding = "explicit", explicit_padding = { 1, 0, 1, 1, 0, 1 } } } } },
  -- issue 17: attention (the packed result: output and logsumexp column, both differentiated)
  dot_product_attention = {
    { variadic = true, inputs = { U { 2, 3, 2, 2 }, U { 2, 4, 2, 2 }, U { 2, 4, 2, 3 } } },
    { variadic = true, inputs = { U { 1, 5, 2, 3 }, U { 1, 5, 1, 3 }, U { 1, 5, 1, 3 } }, args = { { causal = true, scale = 0.8 } } },
    { variadic = true, inputs = { U { 1, 3, 2, 2 }, U { 1, 4, 2, 2 }, U { 1, 4, 2, 2 },
      fixed(mg.tensor { { true, false, true, true }, { false, false, true, false }, { true, true, false, true } }) } },
  },
  -- issue 17: linear algebra (float64; well-conditioned, non-symmetric matrices except where the op
  -- needs a symmetric one; cholesky and eigh read the lower triangle, so finite differences of
  -- the upper elements are 0 and their rules give 0 there too)
  linalg_inv = { { inputs = { WELL { 3 } } }, { inputs = { WELL { 2, 3 } } } },
  linalg_solve = { { inputs = { WELL { 3 }, U { 3, 2 } } },
    { inputs = { WELL { 2, 3 }, U { 2, 3, 2 } }, args = { { adjoint = true } } } },
  linalg_triangular_solve = { { inputs = { WELL { 3 }, U { 3, 2 } } },
    { inputs = { WELL { 2, 3 }, U { 2, 3, 1 } }, args = { { lower = false, adjoint = true } } },
    { inputs = { WELL { 3 }, U { 3, 2 } }, args = { { lower = true, adjoint = true } } } },
  linalg_det = { { inputs = { WELL { 3 } } }, { inputs = { WELL { 2, 3 } } } },
  linalg_slogdet = { { inputs = { WELL { 3 } } }, { inputs = { core.mul(WELL { 2, 3 }, -1) } } },
  linalg_cholesky = { { inputs = { SPD { 3 } } }, { inputs = { SPD { 2, 3 } } } },
  linalg_qr_q = { { inputs = { U { 4, 3 } } }, { inputs = { U { 3, 3 } }, args = { { mode = "complete" } } },
    { inputs = { U { 2, 4 } } }, { inputs = { U { 2, 3, 2 } } } },
  linalg_svd = { { inputs = { U { 4, 3 } } }, { inputs = { U { 2, 4 } } }, { inputs = { U { 2, 3, 3 } } },
    { inputs = { U { 3, 3 } }, args = { { compute_uv = false } } }, { inputs = { U { 3, 3 } }, args = { { full_matrices = true } } } },
  linalg_eigh = { { inputs = { U { 3, 3 } } }, { inputs = { U { 2, 4, 4 } } } },
  linalg_band_part = { { inputs = { U { 3, 4 } }, args = { { num_lower = 1, num_upper = 0 } } },
    { inputs = { U { 2, 3, 3 } }, args = { { num_lower = 0, num_upper = -1 } } } },
}

-- Differentiable ops whose own gradient is documented as not implemented: differentiating them
-- must raise a clear error (never a silent zero).
local no_gradient = {
  cumprod_grad = { inputs = { U { 2, 3 }, U { 2, 3 } }, args = { { axis = 2 } } },
  dot_product_attention_grad = { variadic = true, inputs = { U { 1, 2, 1, 2 }, U { 1, 2, 1, 2 }, U { 1, 2, 1, 2 },
    U { 1, 2, 1, 3 }, U { 1, 2, 1, 3 } }, args = { { part = 0 } } },
}

-- Second-order checks run on these (gradient of the gradient): the first case of each, every
-- case of those in second_order_all.
local second_order = {
  "neg", "abs", "exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "square", "sin", "cos", "tanh",
  "sigmoid", "relu", "softplus", "erf", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
  "atanh", "log2", "log10", "exp2", "reciprocal", "log_sigmoid", "elu", "celu", "leaky_relu", "gelu",
  "hard_sigmoid", "hard_swish", "copysign", "logaddexp", "fmod", "add", "sub", "mul", "div", "pow", "maximum", "minimum",
  "atan2", "where", "clip", "matmul",
  "conv2d", "conv2d_backprop_input", "conv2d_backprop_filter", "conv2d_transpose", "max_pool2d",
  "max_pool2d_grad", "avg_pool2d", "avg_pool2d_grad", "batch_norm", "dropout", "take_grad", "take",
  "softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits_grad",
  "sparse_softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits_grad",
  "cumsum", "cumulative_logsumexp", "cummax", "cummin", "sort",
  "gather_nd", "tensor_scatter_nd_update", "tensor_scatter_nd_add", "tensor_scatter_nd_sub", "segment_sum",
  "unsorted_segment_sum", "segment_max",
  "conv1d", "conv1d_backprop_input", "conv1d_transpose", "conv3d", "conv3d_backprop_filter", "max_pool1d",
  "avg_pool1d", "avg_pool3d_grad",
  "linalg_inv", "linalg_solve", "linalg_cholesky",   -- (the other linalg rules are built from these)
}

local second_order_all = { matmul = true, prod = true, tile = true, pow = true, gelu = true, elu = true }
local second_order_cases = {}
for _, name in ipairs(second_order) do
  for k, case in ipairs(cases[name]) do
    if k == 1 or second_order_all[name] then second_order_cases[#second_order_cases + 1] = { name, k, case } end
  end
end
for name in pairs(second_order_all) do
  local listed = false
  for _, n in ipairs(second_order) do listed = listed or n == name end
  if not listed then
    for k, case in ipairs(cases[name]) do second_order_cases[#second_order_cases + 1] = { name, k, case } end
  end
end

local function flat_values(t) return core.reshape(t, { t:numel() }):totable() end

local function call(name, case, inputs)
  local args = case.args or {}
  if case.variadic then return core[name](inputs, table.unpack(args)) end
  local all = {}
  for i, x in ipairs(inputs) do all[i] = x end
  for _, a in ipairs(args) do all[#all + 1] = a end
  return core[name](table.unpack(all, 1, #inputs + #args))
end

local function values_of(case)
  local xs, diff = {}, {}
  for i, x in ipairs(case.inputs) do
    if type(x) == "table" and x.fixed then xs[i], diff[i] = x.fixed, false
    else xs[i], diff[i] = x, true end
  end
  return xs, diff
end

-- Basis vector i (1-based) shaped like x, scaled by eps.
local function bump(x, i, eps)
  local e = core.one_hot(mg.tensor { i }, x:numel(), "float64")
  return x + core.reshape(e, x.shape) * eps
end

local function loss(name, case, xs, w)
  return core.sum(call(name, case, xs) * w)
end

local function check_close(label, analytic, numeric)
  for i = 1, #numeric do
    local a, n = analytic[i], numeric[i]
    if not (math.abs(a - n) <= ATOL + RTOL * math.abs(n)) then   -- written so that a NaN fails too
      error(string.format("%s: element %d: analytic %.10g vs numeric %.10g", label, i, a, n), 2)
    end
  end
end

describe("gradient check (float64, central differences)", function()
  for _, op in ipairs(core.ops()) do
    local differentiable = not (op.nograd or op.create or op.random)
    if differentiable and no_gradient[op.name] then
      it(op.name .. ": differentiating it raises a clear error", function()
        local case = no_gradient[op.name]
        local xs = values_of(case)
        local tape = mg.GradientTape()
        tape:watch(xs[1])
        local l = loss(op.name, case, xs, U(call(op.name, case, xs).shape, 0.5, 1.5))
        tape:stop()
        local ok, err = pcall(tape.gradient, tape, l, xs[1])
        assert.is_false(ok)
        assert.matches(op.name .. ": the second derivative of", tostring(err), 1, true)
      end)
    elseif differentiable then
      it(op.name .. " has a gradient-check case", function()
        assert.is_truthy(cases[op.name], "no gradient-check case for differentiable op " .. op.name)
      end)
      for k, case in ipairs(cases[op.name] or {}) do
        it(string.format("%s case %d matches finite differences", op.name, k), function()
          local xs, diff = values_of(case)
          local out = call(op.name, case, xs)
          local w = U(out.shape, 0.5, 1.5)
          local tape = mg.GradientTape()
          for i, x in ipairs(xs) do if diff[i] then tape:watch(x) end end
          local l = loss(op.name, case, xs, w)
          tape:stop()
          local sources = {}
          for i, x in ipairs(xs) do if diff[i] then sources[#sources + 1] = x end end
          local grads = tape:gradient(l, sources, { unconnected_gradients = "zero" })
          local s = 0
          for i, x in ipairs(xs) do
            if diff[i] then
              s = s + 1
              assert.are.same(x.shape, grads[s].shape)
              assert.are.equal("float64", grads[s].dtype)
              local numeric = {}
              for j = 1, x:numel() do
                local plus, minus = {}, {}
                for q, y in ipairs(xs) do plus[q], minus[q] = y, y end
                plus[i], minus[i] = bump(x, j, EPS), bump(x, j, -EPS)
                numeric[j] = (loss(op.name, case, plus, w):item() - loss(op.name, case, minus, w):item()) / (2 * EPS)
              end
              check_close(op.name .. " input " .. i, flat_values(grads[s]), numeric)
            end
          end
        end)
      end
    else
      it(op.name .. " is marked non-differentiable", function()
        assert.is_true(op.nograd or op.create or op.random)
      end)
    end
  end
end)

describe("second-order gradient check", function()
  for _, entry in ipairs(second_order_cases) do
    local name, k, case = entry[1], entry[2], entry[3]
    it(("%s case %d: gradient of the gradient matches finite differences of the gradient"):format(name, k), function()
      local xs, diff = values_of(case)
      local out = call(name, case, xs)
      local w = U(out.shape, 0.5, 1.5)
      -- g(xs) = d loss / d x_first (the first differentiable input); check d <g, v> / d xs.
      local first
      for i = 1, #xs do if diff[i] then first = i; break end end
      local v = U(xs[first].shape, 0.5, 1.5)
      local function gv(inputs)
        local t = mg.GradientTape()
        t:watch(inputs[first])
        local l = loss(name, case, inputs, w)
        t:stop()
        local g = t:gradient(l, inputs[first], { unconnected_gradients = "zero" })
        return core.sum(g * v)
      end
      local outer = mg.GradientTape { persistent = true }
      for i, x in ipairs(xs) do if diff[i] then outer:watch(x) end end
      local inner = mg.GradientTape()
      for i, x in ipairs(xs) do if diff[i] then inner:watch(x) end end
      local l = loss(name, case, xs, w)
      inner:stop()
      local g = inner:gradient(l, xs[first], { unconnected_gradients = "zero" })
      local gvv = core.sum(g * v)
      outer:stop()
      for i, x in ipairs(xs) do
        if diff[i] then
          local h = outer:gradient(gvv, x, { unconnected_gradients = "zero" })
          local numeric = {}
          for j = 1, x:numel() do
            local plus, minus = {}, {}
            for q, y in ipairs(xs) do plus[q], minus[q] = y, y end
            plus[i], minus[i] = bump(x, j, EPS), bump(x, j, -EPS)
            numeric[j] = (gv(plus):item() - gv(minus):item()) / (2 * EPS)
          end
          check_close(name .. " second order, input " .. i, flat_values(h), numeric)
        end
      end
    end)
  end
end)

-- ---- issue 17, shape ops: stdlib compositions (not rows of the table), checked the same way ----
-- Each entry: a name, f(inputs...) -> tensor, the inputs (all differentiated); second = true also
-- checks the gradient of the gradient.
local shape_cases = {
  { "tril", function(x) return mg.tril(x, { k = -1 }) end, { U { 2, 3, 4 } } },
  { "triu", function(x) return mg.triu(x, { k = 1 }) end, { U { 3, 4 } } },
  { "roll", function(x) return mg.roll(x, { 1, -2 }, { axis = { 1, 2 } }) end, { U { 3, 4 } } },
  { "roll flat", function(x) return mg.roll(x, 5) end, { U { 2, 3 } } },
  { "diag", function(v) return mg.diag(v, { k = 1 }) end, { U { 2, 3 } } },
  { "diag k<0", function(v) return mg.diag(v, { k = -2 }) end, { U { 3 } } },
  { "diag_part", function(x) return mg.diag_part(x, { k = -1 }) end, { U { 2, 4, 3 } } },
  { "trace", function(x) return mg.trace(x) end, { U { 2, 3, 3 } }, second = true },
  { "meshgrid", function(a, b) local X, Y = mg.meshgrid(a, b); return X * 2 + Y * Y end, { U { 3 }, U { 2 } } },
  { "repeat", function(x) return mg["repeat"](x, 2, { axis = 2 }) end, { U { 2, 3 } } },
  { "repeat counts", function(x) return mg["repeat"](x, { 2, 0, 3 }, { axis = 1 }) end, { U { 3, 2 } } },
  { "outer", function(a, b) return mg.outer(a, b) end, { U { 3 }, U { 2, 2 } }, second = true },
  { "tensordot", function(a, b) return mg.tensordot(a, b, { { 2, 3 }, { 2, 1 } }) end, { U { 2, 3, 4 }, U { 4, 3, 2 } }, second = true },
  { "einsum matmul", function(a, b) return mg.einsum("ij,jk->ik", a, b) end, { U { 2, 3 }, U { 3, 4 } }, second = true },
  { "einsum attention", function(q, k) return mg.einsum("bhqd,bhkd->bhqk", q, k) end, { U { 2, 2, 3, 4 }, U { 2, 2, 2, 4 } }, second = true },
  { "einsum diagonal", function(a) return mg.einsum("iij->ji", a) end, { U { 3, 3, 2 } } },
  { "einsum three operands", function(a, b, c) return mg.einsum("ij,jk,kl", a, b, c) end,
    { U { 2, 3 }, U { 3, 4 }, U { 4, 2 } }, second = true },
  { "einsum broadcast", function(a, b) return mg.einsum("...ij,...jk->...ik", a, b) end, { U { 2, 1, 2, 3 }, U { 3, 3, 2 } } },
  { "einsum sums and repeats", function(a, b) return mg.einsum("iab,bic->c", a, b) end, { U { 2, 3, 4 }, U { 4, 2, 3 } } },
}

describe("gradient check of the issue 17 shape compositions (float64)", function()
  local function sumw(f, xs, w) return core.sum(f(table.unpack(xs)) * w) end
  for _, c in ipairs(shape_cases) do
    local name, f, xs = c[1], c[2], c[3]
    it(name .. " matches finite differences", function()
      local w = U(f(table.unpack(xs)).shape, 0.5, 1.5)
      local tape = mg.GradientTape()
      for _, x in ipairs(xs) do tape:watch(x) end
      local l = sumw(f, xs, w)
      tape:stop()
      local grads = tape:gradient(l, xs, { unconnected_gradients = "zero" })
      for i, x in ipairs(xs) do
        assert.are.same(x.shape, grads[i].shape)
        local numeric = {}
        for j = 1, x:numel() do
          local plus, minus = {}, {}
          for q, y in ipairs(xs) do plus[q], minus[q] = y, y end
          plus[i], minus[i] = bump(x, j, EPS), bump(x, j, -EPS)
          numeric[j] = (sumw(f, plus, w):item() - sumw(f, minus, w):item()) / (2 * EPS)
        end
        check_close(name .. " input " .. i, flat_values(grads[i]), numeric)
      end
    end)
    if c.second then
      it(name .. ": gradient of the gradient matches finite differences", function()
        local w = U(f(table.unpack(xs)).shape, 0.5, 1.5)
        local v = U(xs[1].shape, 0.5, 1.5)
        local function gv(inputs)
          local t = mg.GradientTape()
          t:watch(inputs[1])
          local l = sumw(f, inputs, w)
          t:stop()
          return core.sum(t:gradient(l, inputs[1]) * v)
        end
        local outer = mg.GradientTape { persistent = true }
        for _, x in ipairs(xs) do outer:watch(x) end
        local g = gv(xs)
        outer:stop()
        for i, x in ipairs(xs) do
          local h = outer:gradient(g, x, { unconnected_gradients = "zero" })
          local numeric = {}
          for j = 1, x:numel() do
            local plus, minus = {}, {}
            for q, y in ipairs(xs) do plus[q], minus[q] = y, y end
            plus[i], minus[i] = bump(x, j, EPS), bump(x, j, -EPS)
            numeric[j] = (gv(plus):item() - gv(minus):item()) / (2 * EPS)
          end
          check_close(name .. " second order, input " .. i, flat_values(h), numeric)
        end
      end)
    end
  end
end)
