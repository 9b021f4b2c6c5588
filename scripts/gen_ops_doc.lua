-- gen_ops_doc.lua — writes doc/ops.md from core/ops.def, the one op table.
--
--   lua5.4 scripts/gen_ops_doc.lua [ops.def] > doc/ops.md
--
-- Each MG_OP row gives the op's name, arity, flags, attribute schema and its
-- help paragraph; the sections follow the table's "/* ---- name ---- */"
-- comments. The tiny example of each op lives below in EXAMPLES (keyed by op
-- name), since the table has no room for one: tests/doc/run.sh regenerates
-- this file and diffs it with doc/ops.md (so the doc stays in sync with the
-- table), runs every example and compares its output with the `-->` comments,
-- and fails when an op has no example. Plain Lua, runs on lua5.4 and LuaJIT.

local EXAMPLES = {
  full = [=[print(mg.full({2, 2}, 7))                 --> tensor([[7, 7], [7, 7]], dtype=int64)]=],
  arange = [=[print(mg.arange(1, 10, 3))                --> tensor([1, 4, 7], dtype=int64)
print(mg.arange{stop = 3, dtype = "float32"})  --> tensor([0., 1., 2.], dtype=float32)]=],
  linspace = [=[print(mg.linspace(0, 1, 5))               --> tensor([0.  , 0.25, 0.5 , 0.75, 1.  ], dtype=float32)]=],
  eye = [=[print(mg.eye(2))                          --> tensor([[1., 0.], [0., 1.]], dtype=float32)]=],
  uniform = [=[local u = mg.uniform({1000}, -1, 1, nil, 7)
print(u:min():item() >= -1, u:max():item() < 1)   --> true	true]=],
  normal = [=[local x = mg.normal({10000}, 5, 2, mg.float64, 7)
print(math.abs(x:mean():item() - 5) < 0.1)  --> true]=],
  truncated_normal = [=[local x = mg.truncated_normal({1000}, 0, 1, nil, 7)
print(x:abs():max():item() <= 2)           --> true]=],
  bernoulli = [=[local b = mg.bernoulli({1000}, 0.25, nil, 7)
print(b.dtype, math.abs(b:mean():item() - 0.25) < 0.05)  --> float32	true]=],
  randint = [=[local d = mg.randint({1000}, 1, 6, nil, 7)  -- dice
print(d:min():item(), d:max():item())       --> 1	6]=],
  neg = [=[print(mg.neg(mg.tensor{1, -2}))           --> tensor([-1,  2], dtype=int64)]=],
  abs = [=[print(mg.abs(mg.tensor{-1.5, 2}))         --> tensor([1.5, 2. ], dtype=float32)]=],
  sign = [=[print(mg.sign(mg.tensor{-3, 0, 2}))        --> tensor([-1,  0,  1], dtype=int64)]=],
  exp = [=[print(mg.exp(mg.tensor{0, 1}))            --> tensor([1.    , 2.7183], dtype=float32)]=],
  expm1 = [=[print(mg.expm1(mg.tensor{0.0}))           --> tensor([0.], dtype=float32)]=],
  log = [=[print(mg.log(mg.tensor{1, 0}))            --> tensor([  0., -inf], dtype=float32)]=],
  log1p = [=[print(mg.log1p(mg.tensor{0.0}))           --> tensor([0.], dtype=float32)]=],
  sqrt = [=[print(mg.sqrt(mg.tensor{4, 9}))           --> tensor([2., 3.], dtype=float32)]=],
  rsqrt = [=[print(mg.rsqrt(mg.tensor{4, 16}))         --> tensor([0.5 , 0.25], dtype=float32)]=],
  square = [=[print(mg.square(mg.tensor{-3, 2}))        --> tensor([9, 4], dtype=int64)]=],
  sin = [=[print(mg.sin(mg.tensor{0.0}))             --> tensor([0.], dtype=float32)]=],
  cos = [=[print(mg.cos(mg.tensor{0.0}))             --> tensor([1.], dtype=float32)]=],
  tanh = [=[print(mg.tanh(mg.tensor{0.0}))            --> tensor([0.], dtype=float32)]=],
  sigmoid = [=[print(mg.sigmoid(mg.tensor{0.0}))         --> tensor([0.5], dtype=float32)]=],
  relu = [=[print(mg.relu(mg.tensor{-1, 2}))          --> tensor([0, 2], dtype=int64)]=],
  softplus = [=[print(mg.softplus(mg.tensor{0.0}):item() == math.log(2.0) or "close")  --> close]=],
  erf = [=[print(mg.erf(mg.tensor{0.0}))             --> tensor([0.], dtype=float32)]=],
  floor = [=[print(mg.floor(mg.tensor{-1.5, 1.5}))     --> tensor([-2.,  1.], dtype=float32)]=],
  ceil = [=[print(mg.ceil(mg.tensor{-1.5, 1.5}))      --> tensor([-1.,  2.], dtype=float32)]=],
  round = [=[print(mg.round(mg.tensor{0.5, 1.5, 2.5}))  --> tensor([0., 2., 2.], dtype=float32)]=],
  logical_not = [=[print(mg.logical_not(mg.tensor{0, 3}))   --> tensor([ true, false], dtype=bool)]=],
  cast = [=[print(mg.cast(mg.tensor{1.7, -1.7}, mg.int32))  --> tensor([ 1, -1], dtype=int32)]=],
  add = [=[print(mg.add(mg.tensor{1, 2}, 10))        --> tensor([11, 12], dtype=int64)]=],
  sub = [=[print(mg.tensor{{1}, {2}} - mg.tensor{10, 20})  --> tensor([[ -9, -19], [ -8, -18]], dtype=int64)]=],
  mul = [=[print(mg.mul(mg.tensor{1, 2}, 0.5))       --> tensor([0.5, 1. ], dtype=float32)]=],
  div = [=[print(mg.div(mg.tensor{1, 2}, 4))         --> tensor([0.25, 0.5 ], dtype=float32)]=],
  floordiv = [=[print(mg.floordiv(mg.tensor{7, -7}, 2))  --> tensor([ 3, -4], dtype=int64)]=],
  mod = [=[print(mg.mod(mg.tensor{7, -7}, 3))        --> tensor([1, 2], dtype=int64)]=],
  pow = [=[print(mg.pow(mg.tensor{2, 3}, 2))         --> tensor([4, 9], dtype=int64)]=],
  maximum = [=[print(mg.maximum(mg.tensor{1, 5}, 3))     --> tensor([3, 5], dtype=int64)]=],
  minimum = [=[print(mg.minimum(mg.tensor{1, 5}, 3))     --> tensor([1, 3], dtype=int64)]=],
  atan2 = [=[print(mg.atan2(mg.tensor{0.0}, 1))        --> tensor([0.], dtype=float32)]=],
  tan = [=[print(mg.tan(mg.tensor{0.0, 1.0}))  --> tensor([0.    , 1.5574], dtype=float32)]=],
  asin = [=[print(mg.asin(mg.tensor{0.0, 1.0}))  --> tensor([0.    , 1.5708], dtype=float32)]=],
  acos = [=[print(mg.acos(mg.tensor{1.0, 0.0}))  --> tensor([0.    , 1.5708], dtype=float32)]=],
  atan = [=[print(mg.atan(mg.tensor{0.0, 1.0}))  --> tensor([0.    , 0.7854], dtype=float32)]=],
  sinh = [=[print(mg.sinh(mg.tensor{0.0, 1.0}))  --> tensor([0.    , 1.1752], dtype=float32)]=],
  cosh = [=[print(mg.cosh(mg.tensor{0.0, 1.0}))  --> tensor([1.    , 1.5431], dtype=float32)]=],
  asinh = [=[print(mg.asinh(mg.tensor{0.0, 1.0}))  --> tensor([0.    , 0.8814], dtype=float32)]=],
  acosh = [=[print(mg.acosh(mg.tensor{1.0, 2.0}))  --> tensor([0.   , 1.317], dtype=float32)]=],
  atanh = [=[print(mg.atanh(mg.tensor{0.0, 0.5, 1.0}))  --> tensor([0.    , 0.5493,    inf], dtype=float32)]=],
  log2 = [=[print(mg.log2(mg.tensor{1, 8, 0.5}))  --> tensor([ 0.,  3., -1.], dtype=float32)]=],
  log10 = [=[print(mg.log10(mg.tensor{1, 1000}))  --> tensor([0., 3.], dtype=float32)]=],
  exp2 = [=[print(mg.exp2(mg.tensor{0, 3, -1}))  --> tensor([1. , 8. , 0.5], dtype=float32)]=],
  reciprocal = [=[print(mg.reciprocal(mg.tensor{2, 4, 0}))  --> tensor([0.5 , 0.25,  inf], dtype=float32)]=],
  log_sigmoid = [=[print(mg.log_sigmoid(mg.tensor{0.0, -1000.0}))  --> tensor([-6.9315e-01, -1.0000e+03], dtype=float32)]=],
  trunc = [=[print(mg.trunc(mg.tensor{-1.7, 1.7}))  --> tensor([-1.,  1.], dtype=float32)]=],
  elu = [=[print(mg.elu(mg.tensor{-1.0, 2.0}))  --> tensor([-0.6321,  2.    ], dtype=float32)
print(mg.elu(mg.tensor{-1.0, 2.0}, {alpha = 2}))  --> tensor([-1.2642,  2.    ], dtype=float32)]=],
  celu = [=[print(mg.celu(mg.tensor{-1.0, 2.0}, {alpha = 0.5}))  --> tensor([-0.4323,  2.    ], dtype=float32)]=],
  leaky_relu = [=[print(mg.leaky_relu(mg.tensor{-1.0, 2.0}))  --> tensor([-0.2,  2. ], dtype=float32)
print(mg.leaky_relu(mg.tensor{-1.0, 2.0}, {alpha = 0.01}))  --> tensor([-0.01,  2.  ], dtype=float32)]=],
  gelu = [=[print(mg.gelu(mg.tensor{-1.0, 0.0, 1.0}))  --> tensor([-0.1587,  0.    ,  0.8413], dtype=float32)
print(mg.gelu(mg.tensor{-1.0, 0.0, 1.0}, {approximate = true}))  --> tensor([-0.1588,  0.    ,  0.8412], dtype=float32)]=],
  hard_sigmoid = [=[print(mg.hard_sigmoid(mg.tensor{-4.0, 0.0, 1.5, 4.0}))  --> tensor([0.  , 0.5 , 0.75, 1.  ], dtype=float32)]=],
  hard_swish = [=[print(mg.hard_swish(mg.tensor{-4.0, 0.0, 1.5, 4.0}))  --> tensor([0.   , 0.   , 1.125, 4.   ], dtype=float32)]=],
  isnan = [=[print(mg.isnan(mg.tensor{1, 0/0, math.huge}))  --> tensor([false,  true, false], dtype=bool)]=],
  isinf = [=[print(mg.isinf(mg.tensor{1, 0/0, -math.huge}))  --> tensor([false, false,  true], dtype=bool)]=],
  isfinite = [=[print(mg.isfinite(mg.tensor{1, 0/0, math.huge}))  --> tensor([ true, false, false], dtype=bool)]=],
  bitwise_not = [=[print(mg.bitwise_not(mg.tensor({0, 5}, mg.int32)))  --> tensor([-1, -6], dtype=int32)]=],
  copysign = [=[print(mg.copysign(mg.tensor{1.5, -2.0}, -1))  --> tensor([-1.5, -2. ], dtype=float32)]=],
  logaddexp = [=[print(mg.logaddexp(mg.tensor{0.0, 1000.0}, mg.tensor{0.0, 1000.0}))  --> tensor([6.9315e-01, 1.0007e+03], dtype=float32)]=],
  fmod = [=[print(mg.fmod(mg.tensor{7, -7}, 3), mg.mod(mg.tensor{7, -7}, 3))  --> tensor([ 1, -1], dtype=int64)	tensor([1, 2], dtype=int64)]=],
  bitwise_and = [=[print(mg.bitwise_and(mg.tensor{12, 10}, 6))  --> tensor([4, 2], dtype=int64)]=],
  bitwise_or = [=[print(mg.bitwise_or(mg.tensor{12, 10}, 1))  --> tensor([13, 11], dtype=int64)]=],
  bitwise_xor = [=[print(mg.bitwise_xor(mg.tensor{12, 10}, 6))  --> tensor([10, 12], dtype=int64)]=],
  left_shift = [=[print(mg.left_shift(mg.tensor{1, 3}, 4))  --> tensor([16, 48], dtype=int64)]=],
  right_shift = [=[print(mg.right_shift(mg.tensor{16, -16}, 2))  --> tensor([ 4, -4], dtype=int64)]=],
  equal = [=[print(mg.equal(mg.tensor{1, 2}, 2))       --> tensor([false,  true], dtype=bool)]=],
  not_equal = [=[print(mg.not_equal(mg.tensor{1, 2}, 2))   --> tensor([ true, false], dtype=bool)]=],
  less = [=[print(mg.less(mg.tensor{1, 2}, 2))        --> tensor([ true, false], dtype=bool)]=],
  less_equal = [=[print(mg.less_equal(mg.tensor{1, 2}, 2))  --> tensor([true, true], dtype=bool)]=],
  greater = [=[print(mg.greater(mg.tensor{1, 2}, 1))     --> tensor([false,  true], dtype=bool)]=],
  greater_equal = [=[print(mg.greater_equal(mg.tensor{1, 2}, 2))  --> tensor([false,  true], dtype=bool)]=],
  logical_and = [=[print(mg.logical_and(mg.tensor{true, true}, mg.tensor{true, false}))  --> tensor([ true, false], dtype=bool)]=],
  logical_or = [=[print(mg.logical_or(mg.tensor{true, false}, mg.tensor{false, false}))  --> tensor([ true, false], dtype=bool)]=],
  logical_xor = [=[print(mg.logical_xor(mg.tensor{true, false}, mg.tensor{true, true}))  --> tensor([false,  true], dtype=bool)]=],
  where = [=[print(mg.where(mg.tensor{true, false}, 1, mg.tensor{8, 9}))  --> tensor([1, 9], dtype=int64)]=],
  clip = [=[print(mg.clip(mg.tensor{-2, 0.5, 3}, 0, 1))  --> tensor([0. , 0.5, 1. ], dtype=float32)]=],
  sum = [=[local t = mg.tensor{{1, 2}, {3, 4}}
print(t:sum(), t:sum{axis = 1})             --> tensor(10, dtype=int64)	tensor([4, 6], dtype=int64)
print(t:sum{axis = {}})                     --> tensor([[1, 2], [3, 4]], dtype=int64)]=],
  mean = [=[print(mg.tensor{{1, 2}, {3, 4}}:mean{axis = 2})  --> tensor([1.5, 3.5], dtype=float32)]=],
  prod = [=[print(mg.tensor{1, 2, 3, 4}:prod())        --> tensor(24, dtype=int64)
print(mg.grad(mg.prod)(mg.tensor{0.0, 2, 3}))  --> tensor([6., 0., 0.], dtype=float32)]=],
  max = [=[print(mg.tensor{{1, 5}, {7, 2}}:max{axis = 1})  --> tensor([7, 5], dtype=int64)]=],
  min = [=[print(mg.tensor{{1, 5}, {7, 2}}:min{axis = 2, keepdims = true})  --> tensor([[1], [2]], dtype=int64)]=],
  argmax = [=[print(mg.tensor{3, 9, 9, 1}:argmax())      --> tensor(2, dtype=int64)]=],
  argmin = [=[print(mg.tensor{{3, 1}, {0, 5}}:argmin{axis = 2})  --> tensor([2, 1], dtype=int64)]=],
  all = [=[print(mg.tensor{{1, 0}, {1, 1}}:all{axis = 2})  --> tensor([false,  true], dtype=bool)]=],
  any = [=[print(mg.tensor{{1, 0}, {0, 0}}:any{axis = 2})  --> tensor([ true, false], dtype=bool)]=],
  logsumexp = [=[print(mg.tensor{0.0, 0.0}:logsumexp():item() == math.log(2.0) or "close")  --> close]=],
  variance = [=[print(mg.tensor{1.0, 2, 3, 4}:variance())  --> tensor(1.25, dtype=float32)
print(mg.tensor{1.0, 2}:variance{correction = 2})  --> tensor(inf, dtype=float32)]=],
  softmax = [=[print(mg.softmax(mg.tensor{0.0, 0.0}))      --> tensor([0.5, 0.5], dtype=float32)]=],
  cumsum = [=[print(mg.cumsum(mg.tensor{1, 2, 3}))              --> tensor([1, 3, 6], dtype=int64)
print(mg.cumsum(mg.tensor{{1, 2}, {3, 4}}, {axis = 2, exclusive = true}))  --> tensor([[0, 1], [0, 3]], dtype=int64)
print(mg.cumsum(mg.tensor{1, 2, 3}, {reverse = true}))  --> tensor([6, 5, 3], dtype=int64)]=],
  cumprod = [=[print(mg.cumprod(mg.tensor{1.0, 2, 3, 4}))         --> tensor([ 1.,  2.,  6., 24.], dtype=float32)
print(mg.cumprod(mg.tensor{2, 3, 4}, {exclusive = true}))  --> tensor([1, 2, 6], dtype=int64)]=],
  cumprod_grad = [=[-- d/dx of sum(cumprod(x)) at x = {2, 0, 3}: exact at the zero
print(mg.raw.cumprod_grad(mg.tensor{2.0, 0, 3}, mg.ones{3}))  --> tensor([1., 8., 0.], dtype=float32)]=],
  cumulative_logsumexp = [=[print(mg.cumulative_logsumexp(mg.tensor{0.0, 0.0, 0.0}))  --> tensor([0.    , 0.6931, 1.0986], dtype=float32)]=],
  cummax = [=[print(mg.cummax(mg.tensor{1, 3, 2, 5, 4}))       --> tensor([1, 3, 3, 5, 5], dtype=int64)]=],
  cummin = [=[print(mg.cummin(mg.tensor{3, 1, 2, 0}, {reverse = true}))  --> tensor([0, 0, 0, 0], dtype=int64)]=],
  cumargmax = [=[print(mg.cumargmax(mg.tensor{1, 3, 2, 5, 4}))    --> tensor([1, 2, 2, 4, 4], dtype=int64)]=],
  cumargmin = [=[print(mg.cumargmin(mg.tensor{3, 1, 2, 0}))       --> tensor([1, 2, 2, 4], dtype=int64)]=],
  sort = [=[print(mg.sort(mg.tensor{3.0, 1, 2}))               --> tensor([1., 2., 3.], dtype=float32)
print(mg.sort(mg.tensor{{3, 1, 2}}, {direction = "DESCENDING"}))  --> tensor([[3, 2, 1]], dtype=int64)]=],
  argsort = [=[print(mg.argsort(mg.tensor{3, 1, 2, 1}))         --> tensor([2, 4, 3, 1], dtype=int64)]=],
  top_k_indices = [=[print(mg.top_k_indices(mg.tensor{1.0, 5, 3, 5}, 2))  --> tensor([2, 4], dtype=int64)
local v, i = mg.top_k(mg.tensor{1.0, 5, 3}, 2)
print(v, i)  --> tensor([5., 3.], dtype=float32)	tensor([2, 3], dtype=int64)]=],
  searchsorted = [=[print(mg.searchsorted(mg.tensor{1, 3, 5}, mg.tensor{0, 3, 6}))  --> tensor([1, 2, 4], dtype=int64)
print(mg.searchsorted(mg.tensor{1, 3, 5}, mg.tensor{3}, {side = "right"}))  --> tensor([3], dtype=int64)]=],
  log_softmax = [=[print(mg.log_softmax(mg.tensor{0.0, 0.0}):exp())  --> tensor([0.5, 0.5], dtype=float32)]=],
  matmul = [=[local a = mg.tensor{{1, 2}, {3, 4}}
print(mg.matmul(a, a))                      --> tensor([[ 7, 10], [15, 22]], dtype=int64)]=],
  reshape = [=[print(mg.arange(6):reshape{2, -1})        --> tensor([[0, 1, 2], [3, 4, 5]], dtype=int64)]=],
  permute = [=[print(mg.zeros{2, 3, 4}:permute{3, 1, 2}.shape[1])  --> 4]=],
  transpose = [=[print(mg.tensor{{1, 2}, {3, 4}}:transpose())  --> tensor([[1, 3], [2, 4]], dtype=int64)]=],
  squeeze = [=[print(#mg.zeros{1, 3, 1}:squeeze().shape)  --> 1]=],
  unsqueeze = [=[print(mg.tensor{1, 2}:unsqueeze(1))        --> tensor([[1, 2]], dtype=int64)]=],
  expand = [=[print(mg.tensor{1, 2}:expand{2, 2})         --> tensor([[1, 2], [1, 2]], dtype=int64)]=],
  slice = [=[print(mg.arange(10):slice{{2, 8, 3}})     --> tensor([1, 4, 7], dtype=int64)]=],
  select = [=[print(mg.tensor{{1, 2}, {3, 4}}[2])        --> tensor([3, 4], dtype=int64)]=],
  contiguous = [=[local t = mg.tensor{{1, 2}, {3, 4}}:transpose():contiguous()
print(t)                                    --> tensor([[1, 3], [2, 4]], dtype=int64)]=],
  concat = [=[print(mg.concat({mg.tensor{1, 2}, mg.tensor{3}}))  --> tensor([1, 2, 3], dtype=int64)]=],
  gather = [=[local x = mg.tensor{{10, 20}, {30, 40}}
print(mg.gather(x, mg.tensor{{2}, {1}}, 2))  --> tensor([[20], [30]], dtype=int64)]=],
  take = [=[print(mg.take(mg.tensor{10, 20, 30}, mg.tensor{3, 1}))  --> tensor([30, 10], dtype=int64)]=],
  scatter_add = [=[print(mg.scatter_add(mg.zeros{3}, mg.tensor{1, 3, 1}, mg.ones{3}, 1))  --> tensor([2., 0., 1.], dtype=float32)]=],
  one_hot = [=[print(mg.one_hot(mg.tensor{1, 3}, 3))      --> tensor([[1., 0., 0.], [0., 0., 1.]], dtype=float32)]=],
  pad = [=[print(mg.pad(mg.tensor{1, 2}, {1, 2}))      --> tensor([0, 1, 2, 0, 0], dtype=int64)]=],
  tile = [=[print(mg.tile(mg.tensor{1, 2}, {2}))       --> tensor([1, 2, 1, 2], dtype=int64)]=],
  flip = [=[print(mg.flip(mg.tensor{1, 2, 3}))         --> tensor([3, 2, 1], dtype=int64)
print(mg.flip(mg.tensor{1, 2, 3}, {axis = {}}))  --> tensor([1, 2, 3], dtype=int64)]=],
  stop_gradient = [=[print(mg.stop_gradient(mg.tensor{1.0, 2}))   --> tensor([1., 2.], dtype=float32)]=],
  slice_grad = [=[-- begin/end/step are 0-based, end exclusive, as in the C-level slice op
print(mg.raw.slice_grad(mg.tensor{1.0, 2}, {1}, {3}, {1}, {4}))  --> tensor([0., 1., 2., 0.], dtype=float32)]=],
  pad_grad = [=[print(mg.raw.pad_grad(mg.tensor{9.0, 1, 2, 9, 9}, {1, 2}))  --> tensor([1., 2.], dtype=float32)]=],
  conv2d = [=[local x = mg.arange(1, 10, 1, mg.float32):reshape{1, 3, 3, 1}  -- NHWC
print(mg.conv2d(x, mg.ones{2, 2, 1, 1}):reshape{2, 2})  --> tensor([[12., 16.], [24., 28.]], dtype=float32)
print(mg.conv2d(x, mg.ones{3, 3, 1, 2}, {padding = "same"}).shape[4])  --> 2]=],
  conv2d_backprop_input = [=[local dx = mg.raw.conv2d_backprop_input(mg.ones{1, 2, 2, 1}, mg.ones{2, 2, 1, 1}, {1, 3, 3, 1})
print(dx:reshape{3, 3})  --> tensor([[1., 2., 1.], [2., 4., 2.], [1., 2., 1.]], dtype=float32)]=],
  conv2d_backprop_filter = [=[local x = mg.arange(1, 10, 1, mg.float32):reshape{1, 3, 3, 1}
print(mg.raw.conv2d_backprop_filter(x, mg.ones{1, 2, 2, 1}, {2, 2, 1, 1}):reshape{2, 2})  --> tensor([[12., 16.], [24., 28.]], dtype=float32)]=],
  conv2d_transpose = [=[local y = mg.conv2d_transpose(mg.ones{1, 2, 2, 1}, mg.ones{3, 3, 1, 1}, {strides = 2, padding = "same"})
print(table.concat(y.shape, "x"))           --> 1x4x4x1]=],
  max_pool2d = [=[local x = mg.arange(1, 10, 1, mg.float32):reshape{1, 3, 3, 1}
print(mg.max_pool2d(x, {ksize = 2, strides = 1}):reshape{2, 2})  --> tensor([[5., 6.], [8., 9.]], dtype=float32)
print(mg.max_pool2d(mg.cast(x, mg.uint8)):reshape{1})  --> tensor([5], dtype=uint8)]=],
  max_pool2d_grad = [=[local x = mg.arange(1, 10, 1, mg.float32):reshape{1, 3, 3, 1}
print(mg.raw.max_pool2d_grad(x, mg.ones{1, 1, 1, 1}):reshape{3, 3})  --> tensor([[0., 0., 0.], [0., 1., 0.], [0., 0., 0.]], dtype=float32)]=],
  max_pool2d_grad_grad = [=[local x = mg.arange(1, 10, 1, mg.float32):reshape{1, 3, 3, 1}
print(mg.raw.max_pool2d_grad_grad(x, x * 10):reshape{1})  --> tensor([50.], dtype=float32)]=],
  avg_pool2d = [=[local x = mg.arange(1, 10, 1, mg.float32):reshape{1, 3, 3, 1}
print(mg.avg_pool2d(x, {ksize = 2, strides = 1}):reshape{2, 2})  --> tensor([[3., 4.], [6., 7.]], dtype=float32)]=],
  avg_pool2d_grad = [=[print(mg.raw.avg_pool2d_grad(mg.ones{1, 1, 1, 1}, {1, 2, 2, 1}):reshape{2, 2})  --> tensor([[0.25, 0.25], [0.25, 0.25]], dtype=float32)]=],
  batch_norm = [=[local b = mg.tensor{{1.0, 10}, {3, 30}}  -- batch statistics per column
print(mg.batch_norm(b, b:mean{axis = 1}, b:variance{axis = 1}, 0, 1, 0))  --> tensor([[-1., -1.], [ 1.,  1.]], dtype=float32)]=],
  dropout = [=[print(mg.dropout(mg.ones{8}, 42, 0.5))   --> tensor([0., 2., 2., 2., 0., 2., 0., 2.], dtype=float32)]=],
  take_grad = [=[print(mg.raw.take_grad(mg.ones{3, 2}, mg.tensor{3, 1, 3}, {size = 4}))  --> tensor([[1., 1.], [0., 0.], [2., 2.], [0., 0.]], dtype=float32)]=],
  index_add = [=[print(mg.index_add(mg.ones{4, 2}, mg.tensor{3, 1, 3}, mg.ones{3, 2}, 1))  --> tensor([[2., 2.], [1., 1.], [3., 3.], [1., 1.]], dtype=float32)]=],
  softmax_cross_entropy_with_logits = [=[local logits = mg.tensor{{2.0, 0, 0}}
print(mg.softmax_cross_entropy_with_logits(logits, mg.tensor{{1.0, 0, 0}}))  --> tensor([0.2395], dtype=float32)]=],
  softmax_cross_entropy_with_logits_grad = [=[local g = mg.raw.softmax_cross_entropy_with_logits_grad(mg.tensor{{0.0, 0}}, mg.tensor{{1.0, 0}}, mg.tensor{1.0})
print(g)                                    --> tensor([[-0.5,  0.5]], dtype=float32)]=],
  sparse_softmax_cross_entropy_with_logits = [=[local logits = mg.tensor{{2.0, 0, 0}}
print(mg.sparse_softmax_cross_entropy_with_logits(logits, mg.tensor{1}))  --> tensor([0.2395], dtype=float32)]=],
  sparse_softmax_cross_entropy_with_logits_grad = [=[local g = mg.raw.sparse_softmax_cross_entropy_with_logits_grad(mg.tensor{{0.0, 0}}, mg.tensor{2}, mg.tensor{1.0})
print(g)                                    --> tensor([[ 0.5, -0.5]], dtype=float32)]=],
  sgd_update = [=[local w = mg.Variable(mg.tensor{1.0, 2.0})
mg.raw.sgd_update({w, mg.tensor{1.0, -1.0}, 0.5})  -- var -= lr * g, in place
print(w)                                   --> tensor([0.5, 2.5], dtype=float32)]=],
  adam_update = [=[local w = mg.Variable(mg.tensor{1.0, 2.0})
local m, v = mg.Variable(mg.zeros{2}), mg.Variable(mg.zeros{2})
print(mg.raw.adam_update({w, m, v, mg.tensor{0.5, -0.5}, 0.1, 0}))  --> tensor(2, dtype=int64)
print(w, m)                                --> tensor([0.6838, 2.3162], dtype=float32)	tensor([ 0.05, -0.05], dtype=float32)]=],
  rmsprop_update = [=[local w, vel = mg.Variable(mg.tensor{1.0, 2.0}), mg.Variable(mg.zeros{2})
mg.raw.rmsprop_update({w, vel, mg.tensor{1.0, -1.0}, 0.1}, {rho = 0.75})
print(w, vel)                              --> tensor([0.8, 2.2], dtype=float32)	tensor([0.25, 0.25], dtype=float32)]=],
  adagrad_update = [=[local w, acc = mg.Variable(mg.tensor{1.0, 2.0}), mg.Variable(mg.zeros{2})
mg.raw.adagrad_update(w, acc, mg.tensor{2.0, -2.0}, 0.1, {epsilon = 0})
print(w, acc)                              --> tensor([0.9, 2.1], dtype=float32)	tensor([4., 4.], dtype=float32)]=],
  -- shape and indexing (issue 17)
  gather_nd = [=[local x = mg.tensor{{1, 2, 3}, {4, 5, 6}}
print(mg.gather_nd(x, mg.tensor{{2, 3}, {1, 1}}))  --> tensor([6, 1], dtype=int64)
print(mg.gather_nd(x, mg.tensor{{2}}))           --> tensor([[4, 5, 6]], dtype=int64)]=],
  tensor_scatter_nd_update = [=[local x = mg.zeros({2, 2}, mg.int64)
print(mg.tensor_scatter_nd_update(x, mg.tensor{{1, 2}, {2, 1}}, mg.tensor{7, 8}))  --> tensor([[0, 7], [8, 0]], dtype=int64)]=],
  tensor_scatter_nd_add = [=[print(mg.tensor_scatter_nd_add(mg.tensor{1, 1, 1}, mg.tensor{{3}, {3}}, mg.tensor{5, 5}))  --> tensor([ 1,  1, 11], dtype=int64)]=],
  tensor_scatter_nd_sub = [=[print(mg.tensor_scatter_nd_sub(mg.tensor{1, 1, 1}, mg.tensor{{2}}, mg.tensor{5}))  --> tensor([ 1, -4,  1], dtype=int64)]=],
  tensor_scatter_nd_max = [=[print(mg.tensor_scatter_nd_max(mg.tensor{1, 9, 1}, mg.tensor{{1}, {2}}, mg.tensor{5, 5}))  --> tensor([5, 9, 1], dtype=int64)]=],
  tensor_scatter_nd_min = [=[print(mg.tensor_scatter_nd_min(mg.tensor{1, 9, 1}, mg.tensor{{1}, {2}}, mg.tensor{5, 5}))  --> tensor([1, 5, 1], dtype=int64)]=],
  segment_sum = [=[print(mg.segment_sum(mg.tensor{1, 2, 3, 4}, mg.tensor{1, 1, 2, 3}))  --> tensor([3, 3, 4], dtype=int64)]=],
  segment_prod = [=[print(mg.segment_prod(mg.tensor{1, 2, 3, 4}, mg.tensor{1, 1, 3, 3}))  --> tensor([ 2,  1, 12], dtype=int64)]=],
  segment_max = [=[print(mg.segment_max(mg.tensor{1, 2, 3, 4}, mg.tensor{1, 1, 3, 3}))  --> tensor([2, 0, 4], dtype=int64)]=],
  segment_min = [=[print(mg.segment_min(mg.tensor{1, 2, 3, 4}, mg.tensor{1, 1, 3, 3}))  --> tensor([1, 0, 3], dtype=int64)]=],
  unsorted_segment_sum = [=[print(mg.unsorted_segment_sum(mg.tensor{1, 2, 3, 4}, mg.tensor{2, 1, 2, 1}, 3))  --> tensor([6, 4, 0], dtype=int64)]=],
  unsorted_segment_prod = [=[print(mg.unsorted_segment_prod(mg.tensor{1, 2, 3, 4}, mg.tensor{2, 1, 2, 1}, 2))  --> tensor([8, 3], dtype=int64)]=],
  unsorted_segment_max = [=[print(mg.unsorted_segment_max(mg.tensor{1, 2, 3, 4}, mg.tensor{2, 1, 2, 1}, 2))  --> tensor([4, 3], dtype=int64)]=],
  unsorted_segment_min = [=[print(mg.unsorted_segment_min(mg.tensor{1, 2, 3, 4}, mg.tensor{2, 1, 2, 1}, 2))  --> tensor([2, 1], dtype=int64)]=],
  argwhere = [=[print(mg.argwhere(mg.tensor{{0, 3}, {5, 0}}))  --> tensor([[1, 2], [2, 1]], dtype=int64)
print(mg.where(mg.tensor{false, true, true}))   --> tensor([[2], [3]], dtype=int64)]=],
  -- issue 17: convolutions and pooling over 1 and 3 spatial axes
  conv1d = [=[local x = mg.arange(1, 6, 1, mg.float32):reshape{1, 5, 1}  -- NWC
print(mg.conv1d(x, mg.ones{2, 1, 1}):reshape{4})  --> tensor([3., 5., 7., 9.], dtype=float32)
print(mg.conv1d(x, mg.ones{3, 1, 1}, {padding = {{2, 0}}}):reshape{5})  --> tensor([ 1.,  3.,  6.,  9., 12.], dtype=float32)]=],
  conv1d_backprop_input = [=[print(mg.raw.conv1d_backprop_input(mg.ones{1, 2, 1}, mg.ones{2, 1, 1}, {1, 3, 1}):reshape{3})  --> tensor([1., 2., 1.], dtype=float32)]=],
  conv1d_backprop_filter = [=[local x = mg.arange(1, 6, 1, mg.float32):reshape{1, 5, 1}
print(mg.raw.conv1d_backprop_filter(x, mg.ones{1, 4, 1}, {2, 1, 1}):reshape{2})  --> tensor([10., 14.], dtype=float32)]=],
  conv1d_transpose = [=[print(mg.conv1d_transpose(mg.ones{1, 2, 1}, mg.ones{3, 1, 1}, {strides = 2}):reshape{5})  --> tensor([1., 1., 2., 1., 1.], dtype=float32)]=],
  conv3d = [=[local v = mg.ones{1, 2, 3, 3, 1}  -- NDHWC
print(mg.conv3d(v, mg.ones{2, 2, 2, 1, 1}):reshape{4})  --> tensor([8., 8., 8., 8.], dtype=float32)
print(mg.conv3d(v, mg.ones{1, 3, 3, 1, 4}, {padding = "same"}).shape[5])  --> 4]=],
  conv3d_backprop_input = [=[print(mg.raw.conv3d_backprop_input(mg.ones{1, 1, 1, 1, 1}, mg.ones{2, 2, 2, 1, 1}, {1, 2, 2, 2, 1}):sum())  --> tensor(8., dtype=float32)]=],
  conv3d_backprop_filter = [=[local v = mg.ones{1, 2, 3, 3, 1}
print(mg.raw.conv3d_backprop_filter(v, mg.ones{1, 1, 2, 2, 1}, {2, 2, 2, 1, 1}):reshape{8})  --> tensor([4., 4., 4., 4., 4., 4., 4., 4.], dtype=float32)]=],
  conv3d_transpose = [=[local y = mg.conv3d_transpose(mg.ones{1, 2, 2, 2, 3}, mg.ones{3, 3, 3, 5, 3}, {strides = 2, padding = "same"})
print(table.concat(y.shape, ","))  --> 1,4,4,4,5]=],
  max_pool1d = [=[local x = mg.arange(1, 6, 1, mg.float32):reshape{1, 5, 1}
print(mg.max_pool1d(x):reshape{2})  --> tensor([2., 4.], dtype=float32)
print(mg.max_pool1d(x, {ksize = 2, strides = 1, dilation = 3}):reshape{2})  --> tensor([4., 5.], dtype=float32)]=],
  max_pool1d_grad = [=[local x = mg.arange(1, 6, 1, mg.float32):reshape{1, 5, 1}
print(mg.raw.max_pool1d_grad(x, mg.ones{1, 2, 1}):reshape{5})  --> tensor([0., 1., 0., 1., 0.], dtype=float32)]=],
  max_pool1d_grad_grad = [=[local x = mg.arange(1, 6, 1, mg.float32):reshape{1, 5, 1}
print(mg.raw.max_pool1d_grad_grad(x, x * 10):reshape{2})  --> tensor([20., 40.], dtype=float32)]=],
  avg_pool1d = [=[local x = mg.arange(1, 6, 1, mg.float32):reshape{1, 5, 1}
print(mg.avg_pool1d(x, {ksize = 2, padding = {{1, 0}}}):reshape{3})  --> tensor([1. , 2.5, 4.5], dtype=float32)
print(mg.avg_pool1d(x, {ksize = 2, padding = {{1, 0}}, count_include_pad = true}):reshape{3})  --> tensor([0.5, 2.5, 4.5], dtype=float32)]=],
  avg_pool1d_grad = [=[print(mg.raw.avg_pool1d_grad(mg.ones{1, 2, 1}, {1, 4, 1}):reshape{4})  --> tensor([0.5, 0.5, 0.5, 0.5], dtype=float32)]=],
  max_pool3d = [=[local c = mg.arange(1, 9, 1, mg.float32):reshape{1, 2, 2, 2, 1}
print(mg.max_pool3d(c):reshape{1})  --> tensor([8.], dtype=float32)]=],
  max_pool3d_grad = [=[local c = mg.arange(1, 9, 1, mg.float32):reshape{1, 2, 2, 2, 1}
print(mg.raw.max_pool3d_grad(c, mg.ones{1, 1, 1, 1, 1}):reshape{8})  --> tensor([0., 0., 0., 0., 0., 0., 0., 1.], dtype=float32)]=],
  max_pool3d_grad_grad = [=[local c = mg.arange(1, 9, 1, mg.float32):reshape{1, 2, 2, 2, 1}
print(mg.raw.max_pool3d_grad_grad(c, c * 10):reshape{1})  --> tensor([80.], dtype=float32)]=],
  avg_pool3d = [=[local c = mg.arange(1, 9, 1, mg.float32):reshape{1, 2, 2, 2, 1}
print(mg.avg_pool3d(c):reshape{1})  --> tensor([4.5], dtype=float32)]=],
  avg_pool3d_grad = [=[print(mg.raw.avg_pool3d_grad(mg.ones{1, 1, 1, 1, 1}, {1, 2, 2, 2, 1}):reshape{8})  --> tensor([0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125], dtype=float32)]=],
  -- dtypes section
  bitcast = [=[print(mg.bitcast(mg.tensor({1, 1/3}, mg.bfloat16), mg.int16))  --> tensor([16256, 16043], dtype=int16)
print(mg.bitcast(mg.tensor({1.0}, mg.float32), mg.int16))   --> tensor([[    0, 16256]], dtype=int16)]=],
  -- issue 17: attention, random draws
  dot_product_attention = [=[-- the op's packed result: the output and each row's logsumexp (mg.dot_product_attention slices)
local q = mg.zeros({1, 2, 1, 2})
local v = mg.tensor({{{{1.0, 2.0}}, {{3.0, 4.0}}}})
print(mg.core.dot_product_attention({q, q, v}):reshape({2, 3}))  --> tensor([[2.    , 3.    , 0.6931], [2.    , 3.    , 0.6931]], dtype=float32)
print(mg.dot_product_attention(q, q, v, {is_causal = true}):reshape({2, 2}))  --> tensor([[1., 2.], [2., 3.]], dtype=float32)]=],
  dot_product_attention_grad = [=[local q = mg.zeros({1, 2, 1, 2})
local v = mg.tensor({{{{1.0, 2.0}}, {{3.0, 4.0}}}})
local packed = mg.core.dot_product_attention({q, q, v})
local g = mg.raw.dot_product_attention_grad({q, q, v, packed, mg.ones({1, 2, 1, 3})}, {part = 2})
print(g:reshape({2, 2}))  --> tensor([[1., 1.], [1., 1.]], dtype=float32)]=],
  random_gamma = [=[local g = mg.random.gamma({10000}, 4, {beta = 2, seed = 1})
print(math.abs(g:mean():item() - 2) < 0.05)  --> true]=],
  random_poisson = [=[local n = mg.random.poisson({10000}, 3, {dtype = "int64", seed = 1})
print(math.abs(n:mean():item() - 3) < 0.1, mg.min(n):item() >= 0)  --> true	true]=],
  random_categorical = [=[local c = mg.random.categorical(mg.tensor{{-1/0, 0.0, -1/0}}, 4)
print(c)  --> tensor([[2, 2, 2, 2]], dtype=int64)]=],
  random_permutation = [=[local p = mg.random_permutation(mg.zeros{5}, 3):sort()
print(p)  --> tensor([1, 2, 3, 4, 5], dtype=int64)]=],
  -- issue 17: linear algebra (LAPACK); mg.linalg.* unpack the packed results
  linalg_inv = [=[print(mg.raw.linalg_inv(mg.tensor{{4.0, 7.0}, {2.0, 6.0}}))  --> tensor([[ 0.6, -0.7], [-0.2,  0.4]], dtype=float32)]=],
  linalg_solve = [=[print(mg.raw.linalg_solve(mg.tensor{{3.0, 1.0}, {1.0, 2.0}}, mg.tensor{{9.0}, {8.0}}))  --> tensor([[2.], [3.]], dtype=float32)]=],
  linalg_triangular_solve = [=[print(mg.raw.linalg_triangular_solve(mg.tensor{{2.0, 0.0}, {1.0, 1.0}}, mg.tensor{{4.0}, {3.0}}))  --> tensor([[2.], [1.]], dtype=float32)]=],
  linalg_det = [=[print(mg.raw.linalg_det(mg.tensor{{4.0, 7.0}, {2.0, 6.0}}))  --> tensor(10., dtype=float32)]=],
  linalg_slogdet = [=[print(mg.raw.linalg_slogdet(mg.tensor{{-2.0, 0.0}, {0.0, 3.0}}))  --> tensor([-1.    ,  1.7918], dtype=float32)]=],
  linalg_cholesky = [=[print(mg.raw.linalg_cholesky(mg.tensor{{4.0, 2.0}, {2.0, 5.0}}))  --> tensor([[2., 0.], [1., 2.]], dtype=float32)]=],
  linalg_qr_q = [=[print(mg.raw.linalg_qr_q(mg.tensor{{3.0, 0.0}, {4.0, 5.0}}))  --> tensor([[-0.6, -0.8], [-0.8,  0.6]], dtype=float32)]=],
  linalg_svd = [=[print(mg.raw.linalg_svd(mg.tensor{{3.0, 0.0}, {0.0, -2.0}}, {compute_uv = false}))  --> tensor([3., 2.], dtype=float32)]=],
  linalg_eigh = [=[print(mg.raw.linalg_eigh(mg.tensor{{2.0, 0.0}, {0.0, 1.0}}))  --> tensor([[1., 2.], [0., 1.], [1., 0.]], dtype=float32)]=],
  linalg_band_part = [=[print(mg.raw.linalg_band_part(mg.ones{3, 3}, {num_lower = 0, num_upper = 1}))  --> tensor([[1., 1., 0.], [0., 1., 1.], [0., 0., 1.]], dtype=float32)]=],
}

-- Splits the argument list of one MG_OP( ... ) call at top-level commas.
local function split_args(s)
  local args, depth, cur, i, n = {}, 0, {}, 1, #s
  while i <= n do
    local ch = s:sub(i, i)
    if ch == '"' then                      -- a C string literal, escapes kept
      local j = i + 1
      while j <= n and s:sub(j, j) ~= '"' do
        if s:sub(j, j) == "\\" then j = j + 1 end
        j = j + 1
      end
      cur[#cur + 1] = s:sub(i, j)
      i = j
    elseif ch == "(" then depth = depth + 1; cur[#cur + 1] = ch
    elseif ch == ")" then depth = depth - 1; cur[#cur + 1] = ch
    elseif ch == "," and depth == 0 then
      args[#args + 1] = table.concat(cur):match("^%s*(.-)%s*$")
      cur = {}
    else cur[#cur + 1] = ch end
    i = i + 1
  end
  args[#args + 1] = table.concat(cur):match("^%s*(.-)%s*$")
  return args
end

-- A C string literal (or several, juxtaposed) as a Lua string.
local function unquote(s)
  local parts = {}
  for lit in s:gmatch('"(.-[^\\]?)"') do parts[#parts + 1] = lit:gsub('\\"', '"') end
  return table.concat(parts)
end

-- The rows of ops.def in order, with the section each belongs to.
local function parse(text)
  text = text:gsub("^/%*.-%*/", "")          -- the header comment documents the macro itself
  local rows, section, pos = {}, nil, 1
  while true do
    local s_start, _, title = text:find("/%*%s*%-%-%-%-%s*(.-)%s*%-+%s*%*/", pos)
    local o_start = text:find("MG_OP%(", pos)
    if not o_start and not s_start then break end
    if s_start and (not o_start or s_start < o_start) then
      section = title
      pos = s_start + 1
    else
      local i, depth, instr = o_start + 6, 1, false
      while depth > 0 do                     -- find the closing parenthesis
        local ch = text:sub(i, i)
        if ch == "" then error("ops.def: unterminated MG_OP row") end
        if instr then
          if ch == "\\" then i = i + 1 elseif ch == '"' then instr = false end
        elseif ch == '"' then instr = true
        elseif ch == "(" then depth = depth + 1
        elseif ch == ")" then depth = depth - 1 end
        i = i + 1
      end
      local a = split_args(text:sub(o_start + 6, i - 2))
      rows[#rows + 1] = { id = a[1], name = unquote(a[2]), nin = tonumber(a[3]), flags = a[4],
                          schema = unquote(a[5]), doc = unquote(a[9]), section = section }
      pos = i
    end
  end
  return rows
end

-- "axis:axes keepdims:bool=false" as a Markdown list of attributes.
local function attr_lines(schema)
  local out = {}
  for item in schema:gmatch("%S+") do
    local name, kind, def = item:match("^([%w_]+):([^=]+)=?(.*)$")
    if name then
      local d = def ~= "" and (", default `" .. def .. "`") or ""
      out[#out + 1] = ("`%s` (%s%s)"):format(name, kind, d)
    end
  end
  return #out > 0 and table.concat(out, "; ") or "none"
end

local function flag_words(flags)
  local words = {}
  local names = { MG_EW = "elementwise", MG_BCAST = "broadcasts", MG_VIEW = "may return a view",
                  MG_NOGRAD = "no gradient", MG_RANDOM = "random", MG_VARIADIC = "any number of inputs",
                  MG_STATE = "updates its Variable inputs in place",
                  MG_ACCUM = "may add into its first input's buffer in a staged run",
                  MG_STORAGE = "handles float16/bfloat16/int8/int16 itself" }
  for f in flags:gmatch("MG_[%u_]+") do
    if names[f] then words[#words + 1] = names[f] end
  end
  return table.concat(words, ", ")
end

-- The backward-pass and optimizer internals live in mg.raw (stdlib/moongrad/raw.lua holds the rule).
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local is_raw = dofile(script_dir .. "/../stdlib/moongrad/raw.lua").is_raw

local function generate(rows)
  local out = {
    "# Ops reference",
    "",
    "<!-- Generated by scripts/gen_ops_doc.lua from core/ops.def: do not edit by hand;",
    "     edit the table or the script's EXAMPLES, then run",
    "     `lua5.4 scripts/gen_ops_doc.lua > doc/ops.md` (tests/doc/run.sh checks it). -->",
    "",
    "Every op of the engine is one row of `core/ops.def`. Each is a function `mg.<name>` and (except",
    "the creation and random ops) a tensor method `t:<name>(...)`. Tensor inputs come first; Lua",
    "numbers are accepted wherever a tensor is (weak scalars). Attributes follow, positionally in the",
    "order listed, or as one trailing table by name: `mg.sum(t, 1, true)` is `t:sum{axis = 1, keepdims = true}`.",
    "Axes and index values are 1-based; negative axes count from the end. See [tensors](tensors.md)",
    "for dtypes, promotion and broadcasting, and [errors](errors.md) for what bad calls raise.",
    "",
    "The internals of the backward pass and of the optimizers (the `*_grad` adjoints, the",
    "`conv2d_backprop_*` ops, the fused `*_update` steps) are neither `mg.<name>` nor methods: they",
    "live in `mg.raw` (as TensorFlow's `tf.raw_ops`), `mg.raw.slice_grad(...)`, and are marked so below.",
    "",
    "Functions the stdlib builds from these ops (differentiable and staged through them) are in",
    "[the API reference](api.md): among them `mg.einsum`, `mg.tensordot`, `mg.outer`, `mg.tril`/`triu`,",
    "`mg.roll`, `mg.diag`, `mg.diag_part`, `mg.trace`, `mg.meshgrid`, `mg[\"repeat\"]`, `mg.sequence_mask`,",
    "`mg.top_k`, `mg.unique`, `mg.bincount`.",
    "",
    "In the examples, `-->` shows what the line prints (the documentation test checks it).",
    "",
  }
  local section
  for _, r in ipairs(rows) do
    if r.section ~= section then
      section = r.section
      out[#out + 1] = "## " .. section:sub(1, 1):upper() .. section:sub(2)
      out[#out + 1] = ""
    end
    out[#out + 1] = "### " .. r.name
    out[#out + 1] = ""
    out[#out + 1] = r.doc
    out[#out + 1] = ""
    if is_raw(r.name) then
      out[#out + 1] = "Reached as `mg.raw." .. r.name .. "` (an internal of the backward pass or of an optimizer)."
      out[#out + 1] = ""
    end
    local flags = flag_words(r.flags)
    local inputs = r.nin < 0 and "a list of tensors" or r.nin == 0 and "none" or tostring(r.nin)
    out[#out + 1] = ("Inputs: %s. Attributes: %s.%s"):format(inputs, attr_lines(r.schema),
      flags ~= "" and (" Flags: " .. flags .. ".") or "")
    out[#out + 1] = ""
    out[#out + 1] = "```lua"
    out[#out + 1] = EXAMPLES[r.name] or ("-- no example for " .. r.name .. " yet")
    out[#out + 1] = "```"
    out[#out + 1] = ""
  end
  return table.concat(out, "\n")
end

local path = arg and arg[1] or "core/ops.def"
local fh = assert(io.open(path, "r"))
local rows = parse(fh:read("*a"))
fh:close()
local missing = {}
for _, r in ipairs(rows) do
  if not EXAMPLES[r.name] then missing[#missing + 1] = r.name end
end
io.write(generate(rows))
if #missing > 0 then
  io.stderr:write("gen_ops_doc: no example for: " .. table.concat(missing, ", ") .. "\n")
  os.exit(2)
end
