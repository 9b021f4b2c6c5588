"""refs.py — the op oracle's references: what each op of core/ops.def must compute.

Each reference is written once against an array module `xp`: NumPy for the forward
values (fast, exact integer arithmetic) and jax.numpy for the gradients (jax.vjp in
float64). Convolutions and pooling use jax.lax in both (lax.conv_general_dilated and
lax.reduce_window are the independent implementations there). Attributes arrive in
moongrad's own conventions (1-based axes and indices, negative ones counting from the
end), as gen.lua recorded them.

Where moongrad deliberately follows TensorFlow (or PyTorch) rather than JAX, the
reference is written to the documented convention and says so:
  - maximum/minimum at ties: the whole gradient goes to the first input (TF's x >= y
    mask); JAX and PyTorch split it.
  - clip at its bounds: the gradient passes (TF, PyTorch: min <= x <= max); JAX splits.
  - abs at 0: gradient sign(0) = 0 (TF); JAX gives 1.
  - pow's gradient for the exponent takes log(a) as 0 where a <= 0 (TF).
  - floordiv and mod take the floor (Lua's // and %, the sign of the divisor); integer
    division and modulo by zero give 0 (documented; NumPy warns and gives 0, C traps).
  - integer pow with a negative exponent gives 0 unless the base is 1 or -1 (documented).
  - indices (gather, take, scatter_add, index_add, one_hot, argmax, sparse labels) are
    1-based; one_hot gives a zero row for an index outside 1..depth (TF) with
    outside = "zero" (its default raises).
  - linspace to an integer dtype truncates toward zero (PyTorch; NumPy 2 floors).
  - float -> integer casts truncate toward zero (values in range; moongrad saturates
    outside the range, where C and NumPy are undefined).
  - type promotion is PyTorch's: categories bool < int < float, the wider within a
    category, uint8 with a signed int gives at least int32, and a Lua number is a weak
    scalar (int64 or float32 only when its category is higher than the tensor's).
    Integer inputs of float functions (exp, div, mean, ...) give float32.
"""
import math

import numpy as np

FLOATS = ("float32", "float64")
INTS = ("int32", "int64", "uint8")


def is_float(dt):
    return dt in FLOATS


def category(dt):
    return 0 if dt == "bool" else (2 if dt in FLOATS else 1)


def promote2(a, b):
    if a == b:
        return a
    ca, cb = category(a), category(b)
    if ca != cb:
        return a if ca > cb else b
    if ca == 2:
        return "float64"
    if "int64" in (a, b):
        return "int64"
    return "int32"


def promote(inputs):
    """PyTorch's result type over inputs: dicts with 'dtype' (tensors) or 'scalar'."""
    strong, weak_cat = None, -1
    for x in inputs:
        if "scalar" in x:
            cat = 2 if x["scalar_type"] == "float" else 1
            weak_cat = max(weak_cat, cat)
        else:
            strong = x["dtype"] if strong is None else promote2(strong, x["dtype"])
    if strong is None:
        return "float32" if weak_cat == 2 else "int64"
    if weak_cat > category(strong):
        return "float32" if weak_cat == 2 else "int64"
    return strong


# ---- helpers shared by the references -----------------------------------------------
def axis0(a, ndim):
    """One 1-based (or negative) axis as a 0-based one."""
    a = int(a)
    return a - 1 if a > 0 else a + ndim


def axes0(a, ndim):
    """An axes attribute (absent: all) as a sorted tuple of 0-based axes."""
    if a is None:
        return tuple(range(ndim))
    if isinstance(a, (int, float)):
        a = [a]
    return tuple(sorted(axis0(v, ndim) for v in a))


def is_np(xp):
    return xp is np


def erf(xp, x):
    if is_np(xp):
        return np.vectorize(math.erf, otypes=[np.float64])(x) if x.size else x.astype(np.float64)
    import jax.scipy.special
    return jax.scipy.special.erf(x)


def index_add_at(xp, x, idx, vals):
    """x with vals added at the (advanced) index idx, repeated positions adding up."""
    if is_np(xp):
        out = np.array(x, copy=True)
        np.add.at(out, idx, vals)
        return out
    return x.at[idx].add(vals)


def jnp_of(xp):
    import jax.numpy as jnp
    return jnp


def to_xp(xp, v):
    return np.asarray(v) if is_np(xp) else v


# ---- elementwise ---------------------------------------------------------------------
def r_abs(xp, a, x):
    if x.dtype == np.bool_:
        return x
    # TF: d|x|/dx = sign(x), 0 at 0 (written as a where so that JAX's derivative agrees)
    return xp.where(x > 0, x, xp.where(x < 0, -x, x * 0))


def r_sign(xp, a, x):
    if x.dtype == np.bool_:
        return x
    return xp.sign(x)


def r_relu(xp, a, x):
    if x.dtype == np.bool_:
        return x
    # max(x, 0): NaN stays NaN (maximum's rule: NaN wins), gradient 0 at 0
    return xp.where(x > 0, x, xp.where(xp.isnan(x), x, xp.zeros_like(x)))


def r_unary_same(fn):
    def r(xp, a, x):
        if x.dtype == np.bool_:
            return x
        return fn(xp)(x)
    return r


def r_round(xp, a, x):
    if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer):
        return x
    return xp.round(x)  # halves to even, as NumPy


def r_rsqrt(xp, a, x):
    return 1 / xp.sqrt(x)


def r_sigmoid(xp, a, x):
    # stable on both sides
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def r_softplus(xp, a, x):
    # log(1 + e^x); for large x it is x (the exp of the other branch kept finite)
    return xp.where(x > 30, x, xp.log1p(xp.exp(xp.minimum(x, 30))))


# ---- issue 17 -------------------------------------------------------------------------
def r_log_sigmoid(xp, a, x):
    return -r_softplus(xp, a, -x)


def r_elu(xp, a, x):
    al = a.get("alpha", 1.0)
    return xp.where(x > 0, x, al * xp.expm1(xp.minimum(x, 0)))


def r_celu(xp, a, x):
    al = a.get("alpha", 1.0)
    return xp.where(x > 0, x, al * xp.expm1(xp.minimum(x, 0) / al))


def r_leaky_relu(xp, a, x):
    return xp.where(x > 0, x, a.get("alpha", 0.2) * x)


def r_gelu(xp, a, x):
    # x Phi(x); where Phi is 0 the value is 0 (gelu(-inf) = 0, its limit, not -inf * 0)
    if a.get("approximate", False):
        c = 0.5 * (1 + xp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    else:
        c = 0.5 * (1 + erf(xp, x / math.sqrt(2)))
    return xp.where(c == 0, xp.zeros_like(x), x * c)


def r_hard_sigmoid(xp, a, x):
    # relu6(x + 3) / 6 (Keras 3, PyTorch)
    return xp.minimum(xp.maximum(x + 3, 0), 6) / 6


def r_hard_swish(xp, a, x):
    # x relu6(x + 3) / 6, with its limits at +-inf (0 below -3, x above 3)
    return xp.where(x <= -3, xp.zeros_like(x), xp.where(x >= 3, x, x * (x / 6 + 0.5)))


def r_fmod(xp, a, x, y):
    if np.issubdtype(np.result_type(x.dtype), np.integer):
        safe = xp.where(y == 0, 1, y)
        return xp.where(y == 0, 0, xp.fmod(x, safe))
    return xp.fmod(x, y)


def r_float_test(name, for_ints):
    def r(xp, a, x):
        if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer):
            return np.full(x.shape, for_ints)
        return getattr(xp, name)(x)
    return r


def r_cast(xp, a, x):
    dt = a["dtype"]
    if not is_np(xp) and dt in FLOATS:
        return x   # the gradient of a float-to-float cast passes through (computed in float64)
    if dt == "bool":
        return x != 0
    if dt in INTS and np.issubdtype(x.dtype, np.floating):
        return xp.trunc(x).astype(dt)
    return x.astype(dt)


def r_floordiv(xp, a, x, y):
    if np.issubdtype(np.result_type(x.dtype), np.integer):
        safe = xp.where(y == 0, 1, y)
        return xp.where(y == 0, 0, xp.floor_divide(x, safe))
    with np.errstate(all="ignore"):
        return xp.floor(x / y)


def r_mod(xp, a, x, y):
    if np.issubdtype(np.result_type(x.dtype), np.integer):
        safe = xp.where(y == 0, 1, y)
        return xp.where(y == 0, 0, xp.mod(x, safe))
    with np.errstate(all="ignore"):
        # a - floor(a/b) b, as documented (Lua's %): d/da = 1, d/db = -floor(a/b)
        return x - xp.floor(x / y) * y


def r_pow(xp, a, x, y):
    if np.issubdtype(np.result_type(x.dtype), np.integer):
        # integer powers stay integer; negative exponents give 0 unless the base is +-1
        neg = y < 0
        odd = (xp.abs(y) % 2) == 1
        special = xp.where(x == 1, 1, xp.where(x == -1, xp.where(odd, -1, 1), 0)).astype(x.dtype)
        return xp.where(neg, special, xp.power(x, xp.where(neg, 0, y)))
    if is_np(xp):
        with np.errstate(all="ignore"):
            return np.power(x, y)
    # TF's gradient: d/db = a^b log(a) with log(a) taken as 0 where a <= 0 (so a NaN a^b,
    # a negative base with a fractional exponent, still gives NaN); d/da = b a^(b-1), and 0
    # where b = 0 (x^0 is the constant 1, also at x = 0: issue 14 item 7)
    import jax
    sg = jax.lax.stop_gradient
    pos = x > 0
    b0 = sg(y) == 0
    safe = xp.where(pos, x, 1.0)
    base = xp.where(b0, 1.0, x)   # no 0 * inf at 0^(0 - 1) in the unused branch
    other = xp.where(b0, xp.ones_like(x), xp.power(base, sg(y))) + sg(xp.power(x, y)) * 0 * (y - sg(y))
    return xp.where(pos, xp.power(safe, y), other)


def r_maximum(xp, a, x, y):
    if x.dtype == np.bool_:
        return x | y
    # NaN wins; ties give the whole gradient to the first input (TF's x >= y)
    nan = xp.isnan(x) | xp.isnan(y) if np.issubdtype(x.dtype, np.floating) else None
    r = xp.where(x >= y, x, y)
    return r if nan is None else xp.where(nan, x + y, r)


def r_minimum(xp, a, x, y):
    if x.dtype == np.bool_:
        return x & y
    nan = xp.isnan(x) | xp.isnan(y) if np.issubdtype(x.dtype, np.floating) else None
    r = xp.where(x <= y, x, y)
    return r if nan is None else xp.where(nan, x + y, r)


def r_add(xp, a, x, y):
    return (x | y) if x.dtype == np.bool_ else x + y


def r_mul(xp, a, x, y):
    return (x & y) if x.dtype == np.bool_ else x * y


def r_where(xp, a, c, x, y):
    return xp.where(c, x, y)


def r_clip(xp, a, x):
    lo, hi = a.get("min"), a.get("max")
    if np.issubdtype(x.dtype, np.integer):
        # integer x keeps its dtype: the bounds act as the integers inside them
        r = x
        if lo is not None:
            r = xp.maximum(r, math.ceil(lo))
        if hi is not None:
            r = xp.minimum(r, math.floor(hi))
        return r.astype(x.dtype)
    inside = xp.ones(x.shape, dtype=bool)
    r = x
    if lo is not None:
        inside = inside & (x >= lo)
        r = xp.maximum(r, lo)
    if hi is not None:
        inside = inside & (x <= hi)
        r = xp.minimum(r, hi)
    # TF: the gradient passes where min <= x <= max, bounds included
    return xp.where(inside, x, r)


# ---- reductions ----------------------------------------------------------------------
def _red(fn):
    def r(xp, a, x):
        ax = axes0(a.get("axis"), x.ndim)
        return fn(xp, x, ax, bool(a.get("keepdims", False)))
    return r


def _sum(xp, x, ax, kd):
    if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.int64)
    return xp.sum(x, axis=ax, keepdims=kd)


def _prod(xp, x, ax, kd):
    if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.int64)
    return xp.prod(x, axis=ax, keepdims=kd)


def _mean(xp, x, ax, kd):
    with np.errstate(all="ignore"):
        return xp.mean(x, axis=ax, keepdims=kd)


def _max(xp, x, ax, kd):
    return xp.max(x, axis=ax, keepdims=kd)


def _min(xp, x, ax, kd):
    return xp.min(x, axis=ax, keepdims=kd)


def _all(xp, x, ax, kd):
    return xp.all(x != 0, axis=ax, keepdims=kd)


def _any(xp, x, ax, kd):
    return xp.any(x != 0, axis=ax, keepdims=kd)


def _logsumexp(xp, x, ax, kd):
    n = 1
    for d in ax:
        n *= x.shape[d]
    if n == 0:
        shape = tuple(1 if (d in ax) else s for d, s in enumerate(x.shape)) if kd else \
            tuple(s for d, s in enumerate(x.shape) if d not in ax)
        return xp.full(shape, -np.inf)
    m = xp.max(x, axis=ax, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)   # all -inf gives -inf, +inf gives +inf (TF, JAX)
    if not is_np(xp):
        import jax
        m = jax.lax.stop_gradient(m)
    r = xp.log(xp.sum(xp.exp(x - m), axis=ax, keepdims=True)) + m
    if not kd:
        r = xp.squeeze(r, axis=ax)
    return r


def r_variance(xp, a, x):
    ax = axes0(a.get("axis"), x.ndim)
    kd = bool(a.get("keepdims", False))
    corr = int(a.get("correction", 0))
    n = 1
    for d in ax:
        n *= x.shape[d]
    with np.errstate(all="ignore"):
        m = xp.mean(x, axis=ax, keepdims=True)
        ss = xp.sum((x - m) ** 2, axis=ax, keepdims=kd)
        # NumPy's rule: divided by max(N - correction, 0), so correction >= N gives inf (0/0: NaN)
        return ss / max(n - corr, 0)


def r_arg(which):
    def r(xp, a, x):
        ax = a.get("axis")
        kd = bool(a.get("keepdims", False))
        f = np.argmax if which == "max" else np.argmin
        if ax is None:
            i = f(x.reshape(-1))
            r = np.asarray(i + 1, dtype=np.int64)   # 1-based, the first extreme
            return r.reshape((1,) * x.ndim) if kd else r
        d = axis0(ax, x.ndim)
        return (f(x, axis=d, keepdims=kd) + 1).astype(np.int64)
    return r


def r_softmax(log):
    def r(xp, a, x):
        d = axis0(a.get("axis", -1), x.ndim)
        if x.shape[d] == 0 or x.size == 0:
            return x
        m = xp.max(x, axis=d, keepdims=True)
        if not is_np(xp):
            import jax
            m = jax.lax.stop_gradient(m)
        z = x - m
        lse = xp.log(xp.sum(xp.exp(z), axis=d, keepdims=True))
        return z - lse if log else xp.exp(z - lse)
    return r


# ---- matmul --------------------------------------------------------------------------
def r_matmul(xp, a, x, y):
    if is_np(xp) and np.issubdtype(x.dtype, np.integer):
        # NumPy's integer matmul wraps like moongrad's (C arithmetic in the dtype)
        return np.matmul(x, y).astype(x.dtype)
    return xp.matmul(x, y)


# ---- movement -------------------------------------------------------------------------
def r_reshape(xp, a, x):
    return xp.reshape(x, tuple(int(s) for s in a["shape"]))


def r_permute(xp, a, x):
    return xp.transpose(x, tuple(axis0(v, x.ndim) for v in a["axes"]))


def r_transpose(xp, a, x):
    if x.ndim < 2:
        return x
    i, j = axis0(a.get("axis0", -2), x.ndim), axis0(a.get("axis1", -1), x.ndim)
    return xp.swapaxes(x, i, j)


def r_squeeze(xp, a, x):
    if a.get("axis") is None:
        return xp.squeeze(x)
    return xp.squeeze(x, axis=axes0(a["axis"], x.ndim))


def r_unsqueeze(xp, a, x):
    return xp.expand_dims(x, axis0(a["axis"], x.ndim + 1))


def r_expand(xp, a, x):
    shape = [int(s) for s in a["shape"]]
    lead = len(shape) - x.ndim
    shape = [x.shape[d - lead] if (s == -1 and d >= lead) else s for d, s in enumerate(shape)]
    return xp.broadcast_to(x, tuple(shape))


def _slices(a, shape):
    out = []
    for d, (b, e, s) in enumerate(zip(a["begin"], a["end"], a["step"])):
        n = shape[d]
        b, e, s = int(b), int(e), int(s)
        # 0-based begin, exclusive end, negative values counting from the end; Python's
        # slice rules clamp them the same way (a negative end below -n means "before 0").
        if s < 0 and e < -n:
            e = None
        out.append(slice(b, e, s))
    return tuple(out)


def r_slice(xp, a, x):
    return x[_slices(a, x.shape)]


def r_select(xp, a, x):
    d = axis0(a["axis"], x.ndim)
    i = int(a["index"])
    i = i - 1 if i > 0 else i + x.shape[d]
    return xp.take(x, i, axis=d)


def r_contiguous(xp, a, x):
    return x


def r_concat(xp, a, *xs):
    return xp.concatenate(xs, axis=axis0(a.get("axis", 1), xs[0].ndim))


def r_gather(xp, a, x, idx):
    d = axis0(a["axis"], x.ndim)
    return xp.take_along_axis(x, (idx - 1).astype(np.int64), axis=d)


def r_take(xp, a, x, idx):
    d = axis0(a.get("axis", 1), x.ndim)
    return xp.take(x, (idx - 1).astype(np.int64), axis=d)


def _along(idx, d, ndim):
    """The advanced index that puts idx at axis d (shape of idx, others by position)."""
    grids = list(np.indices(idx.shape, sparse=True))
    grids[d] = (idx - 1).astype(np.int64)
    return tuple(grids)


def r_scatter_add(xp, a, x, idx, src):
    d = axis0(a["axis"], x.ndim)
    return index_add_at(xp, x, _along(np.asarray(idx), d, x.ndim), src)


def r_index_add(xp, a, x, idx, src):
    d = axis0(a.get("axis", 1), x.ndim)
    idx = np.asarray(idx).astype(np.int64) - 1
    k = idx.ndim
    # src has the shape take(x, index, d) has: x.shape[:d] + idx.shape + x.shape[d+1:];
    # with x's axis d and src's index axes in front, it is one add at idx along axis 0
    xm = xp.moveaxis(x, d, 0)
    sm = xp.moveaxis(src, tuple(range(d, d + k)), tuple(range(k)))
    sm = xp.reshape(sm, (idx.size,) + xm.shape[1:])
    return xp.moveaxis(index_add_at(xp, xm, idx.reshape(-1), sm), 0, d)


def r_take_grad(xp, a, g, idx):
    d = axis0(a.get("axis", 1), g.ndim)
    idx = np.asarray(idx)
    shape = g.shape[:d] + (int(a["size"]),) + g.shape[d + idx.ndim:]
    return r_index_add(xp, {"axis": d + 1}, xp.zeros(shape, dtype=g.dtype), idx, g)


def r_one_hot(xp, a, idx):
    depth = int(a["depth"])
    i = np.asarray(idx).astype(np.int64)
    r = (i[..., None] == np.arange(1, depth + 1))   # 1-based; outside 1..depth: a zero row (TF)
    return r


def r_pad(xp, a, x):
    p = [int(v) for v in a["paddings"]]
    width = [(p[2 * d], p[2 * d + 1]) for d in range(x.ndim)]
    mode = a.get("mode", "constant")
    if mode == "constant":
        return xp.pad(x, width, mode="constant", constant_values=np.asarray(a.get("value", 0)).astype(x.dtype))
    return xp.pad(x, width, mode="reflect" if mode == "reflect" else "edge")


def r_tile(xp, a, x):
    return xp.tile(x, tuple(int(r) for r in a["reps"]))


def r_flip(xp, a, x):
    ax = a.get("axis")
    return xp.flip(x, axis=axes0(ax, x.ndim))


def r_stop_gradient(xp, a, x):
    if is_np(xp):
        return x
    import jax
    return jax.lax.stop_gradient(x)


def r_slice_grad(xp, a, g):
    import jax
    jnp = jnp_of(xp)
    shape = tuple(int(s) for s in a["shape"])
    z = jnp.zeros(shape, dtype=g.dtype)
    _, vjp = jax.vjp(lambda t: t[_slices(a, shape)], z)
    return to_xp(xp, vjp(jnp.asarray(g))[0])


def r_pad_grad(xp, a, g):
    import jax
    jnp = jnp_of(xp)
    p = [int(v) for v in a["paddings"]]
    shape = tuple(g.shape[d] - p[2 * d] - p[2 * d + 1] for d in range(g.ndim))
    z = jnp.zeros(shape, dtype=g.dtype)
    _, vjp = jax.vjp(lambda t: r_pad(jnp, {"paddings": p, "mode": a.get("mode", "constant")}, t), z)
    return to_xp(xp, vjp(jnp.asarray(g))[0])


# ---- neural-network ops (NHWC) -----------------------------------------------------------
def _pair(v, default):
    if v is None:
        return (default, default)
    if isinstance(v, (int, float)):
        return (int(v), int(v))
    return (int(v[0]), int(v[1])) if len(v) == 2 else (int(v[0]), int(v[0]))


def _tf_pads(size, k, s, d, padding):
    """TF's padding of one spatial axis: (before, after)."""
    keff = (k - 1) * d + 1
    if padding == "same":
        out = -(-size // s)
        total = max((out - 1) * s + keff - size, 0)
        return (total // 2, total - total // 2)
    return (0, 0)


def _conv(jnp, x, w, a):
    import jax
    sh, sw = _pair(a.get("strides"), 1)
    dh, dw = _pair(a.get("dilation"), 1)
    pad = a.get("padding", "valid")
    pads = [_tf_pads(x.shape[1], w.shape[0], sh, dh, pad), _tf_pads(x.shape[2], w.shape[1], sw, dw, pad)]
    return jax.lax.conv_general_dilated(x, w, (sh, sw), pads, rhs_dilation=(dh, dw),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        feature_group_count=int(a.get("groups", 1)),
                                        precision=jax.lax.Precision.HIGHEST)


def r_conv2d(xp, a, x, w):
    jnp = jnp_of(xp)
    return to_xp(xp, _conv(jnp, jnp.asarray(x), jnp.asarray(w), a))


def r_conv2d_backprop_input(xp, a, dy, w):
    import jax
    jnp = jnp_of(xp)
    z = jnp.zeros(tuple(int(s) for s in a["input_shape"]), dtype=dy.dtype)
    w = jnp.asarray(w)
    _, vjp = jax.vjp(lambda t: _conv(jnp, t, w, a), z)
    return to_xp(xp, vjp(jnp.asarray(dy))[0])


def r_conv2d_backprop_filter(xp, a, x, dy):
    import jax
    jnp = jnp_of(xp)
    z = jnp.zeros(tuple(int(s) for s in a["filter_shape"]), dtype=dy.dtype)
    x = jnp.asarray(x)
    _, vjp = jax.vjp(lambda t: _conv(jnp, x, t, a), z)
    return to_xp(xp, vjp(jnp.asarray(dy))[0])


def r_conv2d_transpose(xp, a, x, w):
    """Keras's Conv2DTranspose: the adjoint of conv2d(z, w) for z of the documented size."""
    import jax
    jnp = jnp_of(xp)
    st = _pair(a.get("strides"), 1)
    dl = _pair(a.get("dilation"), 1)
    pad = a.get("padding", "valid")
    op = a.get("output_padding")
    out = []
    for i in range(2):
        n, k = x.shape[1 + i], w.shape[i]
        keff = (k - 1) * dl[i] + 1
        if op is None:
            out.append(n * st[i] if pad == "same" else n * st[i] + max(keff - st[i], 0))
        else:
            o = _pair(op, 0)[i]
            out.append((n - 1) * st[i] + keff - (2 * (keff // 2) if pad == "same" else 0) + o)
    z = jnp.zeros((x.shape[0], out[0], out[1], w.shape[2]), dtype=x.dtype)
    w = jnp.asarray(w)
    ca = {"strides": list(st), "dilation": list(dl), "padding": pad}
    _, vjp = jax.vjp(lambda t: _conv(jnp, t, w, ca), z)
    return to_xp(xp, vjp(jnp.asarray(x))[0])


def _pool_geom(a, shape):
    kh, kw = _pair(a.get("ksize"), 2)
    sh, sw = _pair(a.get("strides"), None) if a.get("strides") is not None else (kh, kw)
    pad = a.get("padding", "valid")
    pads = [(0, 0), _tf_pads(shape[1], kh, sh, 1, pad), _tf_pads(shape[2], kw, sw, 1, pad), (0, 0)]
    return (1, kh, kw, 1), (1, sh, sw, 1), pads


def _max_pool(jnp, x, a):
    import jax
    dims, strides, pads = _pool_geom(a, x.shape)
    # a concrete init (not a traced one), so that JAX knows the monoid and can differentiate
    init = np.array(-np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min, dtype=x.dtype)
    return jax.lax.reduce_window(x, init, jax.lax.max, dims, strides, pads)


def _avg_pool(jnp, x, a):
    import jax
    dims, strides, pads = _pool_geom(a, x.shape)
    zero = np.array(0, dtype=x.dtype)
    s = jax.lax.reduce_window(x, zero, jax.lax.add, dims, strides, pads)
    # TF's "same": the mean over the window's positions inside x
    ones = np.ones((1,) + x.shape[1:3] + (1,), dtype=x.dtype)
    n = jax.lax.reduce_window(ones, zero, jax.lax.add, dims, strides, pads)
    return s / n


def r_max_pool2d(xp, a, x):
    jnp = jnp_of(xp)
    return to_xp(xp, _max_pool(jnp, jnp.asarray(x), a))


def r_avg_pool2d(xp, a, x):
    jnp = jnp_of(xp)
    return to_xp(xp, _avg_pool(jnp, jnp.asarray(x), a))


def r_max_pool2d_grad(xp, a, x, dy):
    import jax
    jnp = jnp_of(xp)
    _, vjp = jax.vjp(lambda t: _max_pool(jnp, t, a), jnp.asarray(x))
    return to_xp(xp, vjp(jnp.asarray(dy))[0])


def r_max_pool2d_grad_grad(xp, a, x, gx):
    import jax
    jnp = jnp_of(xp)
    _, t = jax.jvp(lambda u: _max_pool(jnp, u, a), (jnp.asarray(x),), (jnp.asarray(gx),))
    return to_xp(xp, t)


def r_avg_pool2d_grad(xp, a, dy):
    import jax
    jnp = jnp_of(xp)
    z = jnp.zeros(tuple(int(s) for s in a["input_shape"]), dtype=dy.dtype)
    _, vjp = jax.vjp(lambda t: _avg_pool(jnp, t, a), z)
    return to_xp(xp, vjp(jnp.asarray(dy))[0])


def r_batch_norm(xp, a, x, mean, var, offset, scale):
    eps = a.get("epsilon", 0.001)
    return (x - mean) / xp.sqrt(var + eps) * scale + offset


def _log_softmax_last(xp, x):
    m = xp.max(x, axis=-1, keepdims=True) if x.size else x
    if not is_np(xp) and x.size:
        import jax
        m = jax.lax.stop_gradient(m)
    z = x - m
    return z - xp.log(xp.sum(xp.exp(z), axis=-1, keepdims=True))


def r_softmax_xent(xp, a, logits, labels):
    return -xp.sum(labels * _log_softmax_last(xp, logits), axis=-1)


def r_softmax_xent_grad(xp, a, logits, labels, g):
    p = xp.exp(_log_softmax_last(xp, logits))
    return (p * xp.sum(labels, axis=-1, keepdims=True) - labels) * g[..., None]


def r_sparse_xent(xp, a, logits, labels):
    lab = (np.asarray(labels).astype(np.int64) - 1)[..., None]
    return -xp.take_along_axis(_log_softmax_last(xp, logits), lab, axis=-1)[..., 0]


def r_sparse_xent_grad(xp, a, logits, labels, g):
    p = xp.exp(_log_softmax_last(xp, logits))
    oh = (np.asarray(labels).astype(np.int64)[..., None] == np.arange(1, logits.shape[-1] + 1))
    return (p - oh.astype(np.float64)) * g[..., None]


# ---- creation ------------------------------------------------------------------------
def _to_dtype(v, dt):
    v = np.asarray(v, dtype=np.float64)
    if dt == "bool":
        return v != 0
    if dt in INTS:
        return np.trunc(v).astype(dt)
    return v


def r_full(xp, a):
    return _to_dtype(np.full(tuple(int(s) for s in a["shape"]), a.get("value", 0)), a.get("dtype", "float32"))


def r_arange(xp, a):
    start, stop, step = a.get("start", 0), a["stop"], a.get("step", 1)
    n = max(int(math.ceil((stop - start) / step)), 0)
    return _to_dtype(start + np.arange(n) * step, a.get("dtype", "int64"))


def r_linspace(xp, a):
    start, stop, num = a["start"], a["stop"], int(a["num"])
    v = np.linspace(start, stop, num, dtype=np.float64)
    return _to_dtype(v, a.get("dtype", "float32"))   # to ints: truncation toward 0 (PyTorch)


def r_eye(xp, a):
    n = int(a["n"])
    m = int(a.get("m", -1))
    return _to_dtype(np.eye(n, n if m < 0 else m), a.get("dtype", "float32"))


# The ops whose gradient is elementwise (with broadcasting): check.py computes their
# reference gradients on flattened inputs.
ELEMENTWISE = {
    "neg", "abs", "sign", "exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "square", "sin", "cos", "tanh",
    "sigmoid", "relu", "softplus", "erf", "floor", "ceil", "round", "cast", "add", "sub", "mul", "div",
    "floordiv", "mod", "pow", "maximum", "minimum", "atan2", "where", "clip", "batch_norm",
    "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log2", "log10", "exp2",
    "reciprocal", "log_sigmoid", "trunc", "elu", "celu", "leaky_relu", "gelu", "hard_sigmoid", "hard_swish",
    "copysign", "logaddexp", "fmod",
}

# The ops whose reference is JAX's anyway (lax convolutions and pooling, vjps): check.py
# takes their value from the same compiled function as their gradient.
JAX_FORWARD = {
    "conv2d", "conv2d_backprop_input", "conv2d_backprop_filter", "conv2d_transpose", "max_pool2d",
    "max_pool2d_grad", "max_pool2d_grad_grad", "avg_pool2d", "avg_pool2d_grad", "slice_grad", "pad_grad",
}

# ---- the table: op -> (dtype family, reference) ---------------------------------------
# ---- scans, sorting, selection (issue 17) -----------------------------------------------
# Scans run along the first axis when no axis is given (TF's axis=0); a 0-d input is one
# element. Exclusive scans shift the inclusive one by one step in the scan direction,
# starting from the identity. JAX's lax.cumsum/cumprod/cummax/cummin/cumlogsumexp give
# the gradients (cumprod's through an associative scan: exact at zeros).
def _scan_axis(a, x):
    ax = a.get("axis")
    return 0 if ax is None else axis0(ax, max(x.ndim, 1))


_SCAN_ID = {"sum": 0.0, "prod": 1.0, "lse": -np.inf}


def _scan_incl(xp, kind, x, d):
    if is_np(xp):
        f = {"sum": np.cumsum, "prod": np.cumprod, "max": np.maximum.accumulate,
             "min": np.minimum.accumulate, "lse": np.logaddexp.accumulate}[kind]
        return f(x, axis=d)
    from jax import lax
    f = {"sum": lax.cumsum, "prod": lax.cumprod, "max": lax.cummax, "min": lax.cummin,
         "lse": lax.cumlogsumexp}[kind]
    return f(x, axis=d)


def r_cum(kind):
    def r(xp, a, x):
        shape0 = x.shape
        if x.ndim == 0:
            x = x.reshape(1)
        if kind in ("sum", "prod") and not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.int64)
        d = _scan_axis(a, x)
        rev, excl = bool(a.get("reverse", False)), bool(a.get("exclusive", False))
        if rev:
            x = xp.flip(x, axis=d)
        y = _scan_incl(xp, kind, x, d) if x.size else x
        if excl and x.size:
            first = xp.full_like(xp.take(y, xp.arange(0, 1), axis=d), _SCAN_ID[kind])
            y = xp.concatenate([first, xp.take(y, xp.arange(0, y.shape[d] - 1), axis=d)], axis=d)
        if rev:
            y = xp.flip(y, axis=d)
        return y.reshape(shape0)
    return r


def r_cumarg(which):
    def r(xp, a, x):
        shape0 = x.shape
        x = np.asarray(x).reshape(x.shape if x.ndim else (1,))
        d = _scan_axis(a, x)
        rev = bool(a.get("reverse", False))
        xm = np.moveaxis(x, d, -1)
        out = np.zeros(xm.shape, dtype=np.int64)
        L = xm.shape[-1]
        for idx in np.ndindex(*xm.shape[:-1]):
            best, at, nan = None, 0, False
            for s in range(L):
                l = L - 1 - s if rev else s
                v = xm[idx + (l,)]
                isnan = v != v
                better = best is None or isnan or (v > best if which == "max" else v < best)
                if not nan and better:
                    best, at, nan = v, l, bool(isnan)
                out[idx + (l,)] = at + 1
        return np.moveaxis(out, -1, d).reshape(shape0)
    return r


def r_cumprod_grad(xp, a, x, g):
    shape0 = x.shape
    x = np.asarray(x, dtype=np.float64).reshape(x.shape if x.ndim else (1,))
    g = np.asarray(g, dtype=np.float64).reshape(x.shape)
    d = _scan_axis(a, x)
    rev, excl = bool(a.get("reverse", False)), bool(a.get("exclusive", False))
    xm, gm = np.moveaxis(x, d, -1), np.moveaxis(g, d, -1)
    if rev:
        xm, gm = xm[..., ::-1], gm[..., ::-1]
    out = np.zeros(xm.shape)
    L = xm.shape[-1]
    for idx in np.ndindex(*xm.shape[:-1]):
        for i in range(L):
            t = 0.0
            for q in range(L):     # output q is the product of x[k], k <= q (k < q exclusive)
                S = range(q) if excl else range(q + 1)
                if i in S:
                    t += gm[idx + (q,)] * np.prod([xm[idx + (k,)] for k in S if k != i])
            out[idx + (i,)] = t
    if rev:
        out = out[..., ::-1]
    return np.moveaxis(out, -1, d).reshape(shape0)


def _argsort(xp, x, d, desc):
    if is_np(xp):
        if not desc:
            return np.argsort(x, axis=d, kind="stable")
        # stable descending: ties keep their order, NaN (the largest) first
        L = x.shape[d]
        return L - 1 - np.flip(np.argsort(np.flip(x, axis=d), axis=d, kind="stable"), axis=d)
    return xp.argsort(x, axis=d, stable=True, descending=desc)


def r_sort(arg):
    def r(xp, a, x):
        if x.ndim == 0:
            return np.asarray(1, dtype=np.int64) if arg else x
        d = axis0(a.get("axis", -1), x.ndim)
        idx = _argsort(xp, x, d, a.get("direction", "ASCENDING") == "DESCENDING")
        if arg:
            return (np.asarray(idx) + 1).astype(np.int64)
        return xp.take_along_axis(x, idx, axis=d)
    return r


def r_top_k_indices(xp, a, x):
    k = int(a.get("k", 1))
    idx = _argsort(np, np.asarray(x), x.ndim - 1, True)
    return (idx[..., :k] + 1).astype(np.int64)


def r_searchsorted(xp, a, s, v):
    side = a.get("side", "left")
    s, v = np.asarray(s), np.asarray(v)
    if s.ndim == 1:
        return (np.searchsorted(s, v, side=side) + 1).astype(np.int64)
    out = np.zeros(v.shape, dtype=np.int64)
    for idx in np.ndindex(*s.shape[:-1]):
        out[idx] = np.searchsorted(s[idx], v[idx], side=side) + 1
    return out


# Families (see check.py's out_dtype): num (the promoted dtype), float (promoted, ints
# and bool -> float32), cmp (bool out, computed in the promoted dtype), logical (bool),
# same (the first input's dtype), where, search (int64, inputs promoted), reduce_sum (ints/bool -> int64), reduce_float,
# reduce_same, arg (int64), reduce_bool, create (the dtype attribute), one_hot.
def _u(name):
    return lambda xp: getattr(xp, name)


REFS = {
    "full": ("create", r_full), "arange": ("create", r_arange), "linspace": ("create", r_linspace),
    "eye": ("create", r_eye),
    "neg": ("num", lambda xp, a, x: -x), "abs": ("num", r_abs), "sign": ("num", r_sign),
    "exp": ("float", lambda xp, a, x: xp.exp(x)), "expm1": ("float", lambda xp, a, x: xp.expm1(x)),
    "log": ("float", lambda xp, a, x: xp.log(x)), "log1p": ("float", lambda xp, a, x: xp.log1p(x)),
    "sqrt": ("float", lambda xp, a, x: xp.sqrt(x)), "rsqrt": ("float", r_rsqrt),
    "square": ("num", lambda xp, a, x: x if x.dtype == np.bool_ else x * x),
    "sin": ("float", lambda xp, a, x: xp.sin(x)), "cos": ("float", lambda xp, a, x: xp.cos(x)),
    "tanh": ("float", lambda xp, a, x: xp.tanh(x)), "sigmoid": ("float", r_sigmoid),
    "relu": ("num", r_relu), "softplus": ("float", r_softplus), "erf": ("float", lambda xp, a, x: erf(xp, x)),
    "floor": ("num", r_unary_same(_u("floor"))), "ceil": ("num", r_unary_same(_u("ceil"))),
    "round": ("num", r_round),
    "logical_not": ("logical", lambda xp, a, x: ~x), "cast": ("cast", r_cast),
    "add": ("num", r_add), "sub": ("num", lambda xp, a, x, y: x - y), "mul": ("num", r_mul),
    "div": ("float", lambda xp, a, x, y: x / y), "floordiv": ("num", r_floordiv), "mod": ("num", r_mod),
    "pow": ("num", r_pow), "maximum": ("num", r_maximum), "minimum": ("num", r_minimum),
    "atan2": ("float", lambda xp, a, y, x: xp.arctan2(y, x)),
    "tan": ("float", lambda xp, a, x: xp.tan(x)), "asin": ("float", lambda xp, a, x: xp.arcsin(x)),
    "acos": ("float", lambda xp, a, x: xp.arccos(x)), "atan": ("float", lambda xp, a, x: xp.arctan(x)),
    "sinh": ("float", lambda xp, a, x: xp.sinh(x)), "cosh": ("float", lambda xp, a, x: xp.cosh(x)),
    "asinh": ("float", lambda xp, a, x: xp.arcsinh(x)), "acosh": ("float", lambda xp, a, x: xp.arccosh(x)),
    "atanh": ("float", lambda xp, a, x: xp.arctanh(x)), "log2": ("float", lambda xp, a, x: xp.log2(x)),
    "log10": ("float", lambda xp, a, x: xp.log10(x)), "exp2": ("float", lambda xp, a, x: xp.exp2(x)),
    "reciprocal": ("float", lambda xp, a, x: 1 / x), "log_sigmoid": ("float", r_log_sigmoid),
    "trunc": ("num", r_unary_same(_u("trunc"))),
    "elu": ("float", r_elu), "celu": ("float", r_celu), "leaky_relu": ("float", r_leaky_relu),
    "gelu": ("float", r_gelu), "hard_sigmoid": ("float", r_hard_sigmoid), "hard_swish": ("float", r_hard_swish),
    "isnan": ("cmp", r_float_test("isnan", False)), "isinf": ("cmp", r_float_test("isinf", False)),
    "isfinite": ("cmp", r_float_test("isfinite", True)),
    "copysign": ("float", lambda xp, a, x, y: xp.copysign(x, y)),
    "logaddexp": ("float", lambda xp, a, x, y: xp.logaddexp(x, y)), "fmod": ("num", r_fmod),
    "bitwise_and": ("num", lambda xp, a, x, y: x & y), "bitwise_or": ("num", lambda xp, a, x, y: x | y),
    "bitwise_xor": ("num", lambda xp, a, x, y: x ^ y), "bitwise_not": ("num", lambda xp, a, x: ~x),
    "left_shift": ("num", lambda xp, a, x, y: np.left_shift(x, y)),
    "right_shift": ("num", lambda xp, a, x, y: np.right_shift(x, y)),
    "equal": ("cmp", lambda xp, a, x, y: x == y), "not_equal": ("cmp", lambda xp, a, x, y: x != y),
    "less": ("cmp", lambda xp, a, x, y: x < y), "less_equal": ("cmp", lambda xp, a, x, y: x <= y),
    "greater": ("cmp", lambda xp, a, x, y: x > y), "greater_equal": ("cmp", lambda xp, a, x, y: x >= y),
    "logical_and": ("logical", lambda xp, a, x, y: x & y), "logical_or": ("logical", lambda xp, a, x, y: x | y),
    "logical_xor": ("logical", lambda xp, a, x, y: x ^ y),
    "where": ("where", r_where), "clip": ("num", r_clip),
    "sum": ("reduce_sum", _red(_sum)), "mean": ("reduce_float", _red(_mean)), "prod": ("reduce_sum", _red(_prod)),
    "max": ("same", _red(_max)), "min": ("same", _red(_min)),
    "argmax": ("arg", r_arg("max")), "argmin": ("arg", r_arg("min")),
    "all": ("reduce_bool", _red(_all)), "any": ("reduce_bool", _red(_any)),
    "logsumexp": ("reduce_float", _red(_logsumexp)), "variance": ("reduce_float", r_variance),
    "softmax": ("reduce_float", r_softmax(False)), "log_softmax": ("reduce_float", r_softmax(True)),
    "matmul": ("num", r_matmul),
    "cumsum": ("reduce_sum", r_cum("sum")), "cumprod": ("reduce_sum", r_cum("prod")),
    "cumulative_logsumexp": ("reduce_float", r_cum("lse")),
    "cummax": ("same", r_cum("max")), "cummin": ("same", r_cum("min")),
    "cumargmax": ("arg", r_cumarg("max")), "cumargmin": ("arg", r_cumarg("min")),
    "cumprod_grad": ("float", r_cumprod_grad),
    "sort": ("same", r_sort(False)), "argsort": ("arg", r_sort(True)),
    "top_k_indices": ("arg", r_top_k_indices), "searchsorted": ("search", r_searchsorted),
    "reshape": ("same", r_reshape), "permute": ("same", r_permute), "transpose": ("same", r_transpose),
    "squeeze": ("same", r_squeeze), "unsqueeze": ("same", r_unsqueeze), "expand": ("same", r_expand),
    "slice": ("same", r_slice), "select": ("same", r_select), "contiguous": ("same", r_contiguous),
    "concat": ("num", r_concat), "gather": ("same", r_gather), "take": ("same", r_take),
    "scatter_add": ("same", r_scatter_add), "one_hot": ("one_hot", r_one_hot),
    "pad": ("same", r_pad), "tile": ("same", r_tile), "flip": ("same", r_flip),
    "stop_gradient": ("same", r_stop_gradient), "slice_grad": ("same", r_slice_grad),
    "pad_grad": ("same", r_pad_grad),
    "conv2d": ("num", r_conv2d), "conv2d_backprop_input": ("num", r_conv2d_backprop_input),
    "conv2d_backprop_filter": ("num", r_conv2d_backprop_filter), "conv2d_transpose": ("num", r_conv2d_transpose),
    "max_pool2d": ("same", r_max_pool2d), "max_pool2d_grad": ("num", r_max_pool2d_grad),
    "max_pool2d_grad_grad": ("num", r_max_pool2d_grad_grad), "avg_pool2d": ("same", r_avg_pool2d),
    "avg_pool2d_grad": ("same", r_avg_pool2d_grad), "batch_norm": ("num", r_batch_norm),
    "take_grad": ("same", r_take_grad), "index_add": ("same", r_index_add),
    "softmax_cross_entropy_with_logits": ("num", r_softmax_xent),
    "softmax_cross_entropy_with_logits_grad": ("num", r_softmax_xent_grad),
    "sparse_softmax_cross_entropy_with_logits": ("same", r_sparse_xent),
    "sparse_softmax_cross_entropy_with_logits_grad": ("same", r_sparse_xent_grad),
}


# ---- shape and indexing (issue 17) -------------------------------------------------------
def _nd_index(idx):
    """The advanced index of the rows of an (..., K) 1-based index tensor."""
    i = np.asarray(idx).astype(np.int64) - 1
    return tuple(np.moveaxis(i, -1, 0))


def r_gather_nd(xp, a, x, idx):
    return x[_nd_index(idx)]


def r_tensor_scatter(mode):
    """TF's tensor_scatter_nd_*: rows applied in index order (update: the last one wins)."""
    def f(xp, a, x, idx, u):
        i = np.asarray(idx).astype(np.int64) - 1
        k = i.shape[-1]
        rows = i.reshape(-1, k)
        u = xp.reshape(u, (rows.shape[0],) + tuple(x.shape[k:]))
        if not is_np(xp):
            ix = tuple(rows.T)
            at = x.at[ix]
            return {"update": at.set, "add": at.add, "sub": lambda v: at.add(-v), "max": at.max,
                    "min": at.min}[mode](u)
        out = np.array(x, copy=True)
        for r in range(rows.shape[0]):
            t = tuple(rows[r])
            cur = out[t]
            if mode == "update":
                out[t] = u[r]
            elif mode == "add":
                out[t] = cur + u[r]
            elif mode == "sub":
                out[t] = cur - u[r]
            elif mode == "max":
                out[t] = np.maximum(cur, u[r])
            else:
                out[t] = np.minimum(cur, u[r])
        return out
    return f


def r_segment(kind, sorted_ids):
    """TF's segment reductions, 1-based ids shaped like data's leading axes, computed densely
    (a segments x rows mask) so that jax differentiates prod exactly at zeros. Empty segments:
    0 (sum, and the sorted max/min), 1 (prod), the dtype's lowest/highest (unsorted max/min)."""
    def f(xp, a, data, ids):
        n = int(a["num_segments"])
        i = np.asarray(ids).astype(np.int64).reshape(-1) - 1
        rest = tuple(data.shape[np.asarray(ids).ndim:])
        d = xp.reshape(data, (i.size,) + rest)
        dt = np.dtype(data.dtype)
        mask = (i[None, :] == np.arange(n)[:, None]).reshape((n, i.size) + (1,) * len(rest))
        if dt.kind == "f":
            lo, hi = -np.inf, np.inf
            elo, ehi = np.finfo(dt).min, np.finfo(dt).max
        else:
            lo, hi = np.iinfo(dt).min, np.iinfo(dt).max
            elo, ehi = lo, hi
        if kind == "sum":
            out = xp.sum(xp.where(mask, d[None], 0), axis=1).astype(dt)
        elif kind == "prod":
            out = xp.prod(xp.where(mask, d[None], 1), axis=1).astype(dt)
        elif kind == "max":
            out = xp.max(xp.where(mask, d[None], lo), axis=1)
        else:
            out = xp.min(xp.where(mask, d[None], hi), axis=1)
        if kind in ("max", "min"):
            empty = (np.bincount(i, minlength=n) == 0).reshape((n,) + (1,) * len(rest))
            fill = 0 if sorted_ids else (elo if kind == "max" else ehi)
            out = xp.where(empty, np.array(fill, dtype=dt), out)
        return out
    return f


def r_argwhere(xp, a, x):
    return (np.argwhere(np.asarray(x) != 0) + 1).astype(np.int64)


REFS.update({
    "gather_nd": ("same", r_gather_nd),
    "tensor_scatter_nd_update": ("same", r_tensor_scatter("update")),
    "tensor_scatter_nd_add": ("same", r_tensor_scatter("add")),
    "tensor_scatter_nd_sub": ("same", r_tensor_scatter("sub")),
    "tensor_scatter_nd_max": ("same", r_tensor_scatter("max")),
    "tensor_scatter_nd_min": ("same", r_tensor_scatter("min")),
    "segment_sum": ("same", r_segment("sum", True)), "segment_prod": ("same", r_segment("prod", True)),
    "segment_max": ("same", r_segment("max", True)), "segment_min": ("same", r_segment("min", True)),
    "unsorted_segment_sum": ("same", r_segment("sum", False)),
    "unsorted_segment_prod": ("same", r_segment("prod", False)),
    "unsorted_segment_max": ("same", r_segment("max", False)),
    "unsorted_segment_min": ("same", r_segment("min", False)),
    "argwhere": ("arg", r_argwhere),
})


# ---- convolutions and pooling over 1, 2 and 3 spatial axes (issue 17) ------------------------
# One N-d reference for conv1d/2d/3d, their gradients and transposes, and max/avg pooling, with
# TF's "valid"/"same" padding or explicit {before, after} pairs (padding = "explicit",
# explicit_padding flat), dilation (also for pooling: reduce_window's window_dilation) and
# count_include_pad. It replaces the 2-d references above for the 2-d ops too, so the same
# code checks every rank. jax.lax.conv_general_dilated and reduce_window; gradients by vjp.
_LAYOUTS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}


def _ntuple(v, n, default):
    if v is None:
        return (default,) * n
    if isinstance(v, (int, float)):
        return (int(v),) * n
    v = [int(t) for t in v]
    return tuple(v) if len(v) == n else (v[0],) * n


def _pads_nd(a, sizes, ks, st, dl):
    pad = a.get("padding", "valid")
    if pad == "explicit":
        e = [int(t) for t in a["explicit_padding"]]
        return [(e[2 * i], e[2 * i + 1]) for i in range(len(sizes))]
    return [_tf_pads(sizes[i], ks[i], st[i], dl[i], pad) for i in range(len(sizes))]


def _convn(nsp, x, w, a):
    import jax
    st = _ntuple(a.get("strides"), nsp, 1)
    dl = _ntuple(a.get("dilation"), nsp, 1)
    pads = _pads_nd(a, x.shape[1:1 + nsp], w.shape[:nsp], st, dl)
    return jax.lax.conv_general_dilated(x, w, st, pads, rhs_dilation=dl, dimension_numbers=_LAYOUTS[nsp],
                                        feature_group_count=int(a.get("groups", 1)),
                                        precision=jax.lax.Precision.HIGHEST)


def _mk_conv(nsp):
    def r(xp, a, x, w):
        jnp = jnp_of(xp)
        return to_xp(xp, _convn(nsp, jnp.asarray(x), jnp.asarray(w), a))
    return r


def _mk_conv_bin(nsp):
    def r(xp, a, dy, w):
        import jax
        jnp = jnp_of(xp)
        z = jnp.zeros(tuple(int(s) for s in a["input_shape"]), dtype=dy.dtype)
        w = jnp.asarray(w)
        _, vjp = jax.vjp(lambda t: _convn(nsp, t, w, a), z)
        return to_xp(xp, vjp(jnp.asarray(dy))[0])
    return r


def _mk_conv_bfil(nsp):
    def r(xp, a, x, dy):
        import jax
        jnp = jnp_of(xp)
        z = jnp.zeros(tuple(int(s) for s in a["filter_shape"]), dtype=dy.dtype)
        x = jnp.asarray(x)
        _, vjp = jax.vjp(lambda t: _convn(nsp, x, t, a), z)
        return to_xp(xp, vjp(jnp.asarray(dy))[0])
    return r


def _mk_conv_transpose(nsp):
    """Keras's ConvNDTranspose (PyTorch's rule with explicit pairs): the adjoint of conv(z, w)
    for z of the documented size."""
    def r(xp, a, x, w):
        import jax
        jnp = jnp_of(xp)
        st = _ntuple(a.get("strides"), nsp, 1)
        dl = _ntuple(a.get("dilation"), nsp, 1)
        pad = a.get("padding", "valid")
        op = a.get("output_padding")
        e = [int(t) for t in a.get("explicit_padding") or []]
        out = []
        for i in range(nsp):
            n, k = x.shape[1 + i], w.shape[i]
            keff = (k - 1) * dl[i] + 1
            o = 0 if op is None else _ntuple(op, nsp, 0)[i]
            if pad == "explicit":
                out.append((n - 1) * st[i] + keff - e[2 * i] - e[2 * i + 1] + o)
            elif op is None:
                out.append(n * st[i] if pad == "same" else n * st[i] + max(keff - st[i], 0))
            else:
                out.append((n - 1) * st[i] + keff - (2 * (keff // 2) if pad == "same" else 0) + o)
        z = jnp.zeros((x.shape[0],) + tuple(out) + (w.shape[nsp],), dtype=x.dtype)
        w = jnp.asarray(w)
        ca = {"strides": list(st), "dilation": list(dl), "padding": pad, "explicit_padding": e}
        _, vjp = jax.vjp(lambda t: _convn(nsp, t, w, ca), z)
        return to_xp(xp, vjp(jnp.asarray(x))[0])
    return r


def _pool_nd(nsp, a, shape):
    ks = _ntuple(a.get("ksize"), nsp, 2)
    st = _ntuple(a.get("strides"), nsp, 1) if a.get("strides") is not None else ks
    dl = _ntuple(a.get("dilation"), nsp, 1)
    pads = _pads_nd(a, shape[1:1 + nsp], ks, st, dl)
    one = (1,)
    return one + ks + one, one + st + one, one + dl + one, [(0, 0)] + pads + [(0, 0)], ks


def _max_pool_nd(nsp, x, a):
    import itertools
    import jax
    import jax.numpy as jnp
    dims, strides, wd, pads, ks = _pool_nd(nsp, a, x.shape)
    init = np.array(-np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min, dtype=x.dtype)
    if all(d == 1 for d in wd):
        return jax.lax.reduce_window(x, init, jax.lax.max, dims, strides, pads)
    # JAX has no VJP for a dilated max reduce_window: the maximum over the window's taps, each
    # a strided slice of x padded with the identity (differentiable; the cases' values are distinct).
    xpad = jnp.pad(x, pads, constant_values=init)
    st, dl = strides[1:-1], wd[1:-1]
    outs = [(xpad.shape[1 + i] - ((ks[i] - 1) * dl[i] + 1)) // st[i] + 1 for i in range(nsp)]
    res = None
    for taps in itertools.product(*[range(k) for k in ks]):
        sl = (slice(None),) + tuple(slice(t * dl[i], t * dl[i] + (outs[i] - 1) * st[i] + 1, st[i])
                                    for i, t in enumerate(taps)) + (slice(None),)
        v = xpad[sl]
        res = v if res is None else jnp.maximum(res, v)
    return res


def _avg_pool_nd(nsp, x, a):
    import jax
    dims, strides, wd, pads, ks = _pool_nd(nsp, a, x.shape)
    zero = np.array(0, dtype=x.dtype)
    s = jax.lax.reduce_window(x, zero, jax.lax.add, dims, strides, pads, window_dilation=wd)
    if a.get("count_include_pad"):
        return s / float(np.prod(ks))
    ones = np.ones((1,) + tuple(x.shape[1:1 + nsp]) + (1,), dtype=x.dtype)
    n = jax.lax.reduce_window(ones, zero, jax.lax.add, dims, strides, pads, window_dilation=wd)
    return s / n


def _mk_pool(nsp, kind):
    fwd = _max_pool_nd if kind == "max" else _avg_pool_nd

    def r(xp, a, x):
        jnp = jnp_of(xp)
        return to_xp(xp, fwd(nsp, jnp.asarray(x), a))

    def r_grad(xp, a, x, dy):
        import jax
        jnp = jnp_of(xp)
        _, vjp = jax.vjp(lambda t: fwd(nsp, t, a), jnp.asarray(x))
        return to_xp(xp, vjp(jnp.asarray(dy))[0])

    def r_grad_grad(xp, a, x, gx):
        import jax
        jnp = jnp_of(xp)
        _, t = jax.jvp(lambda u: fwd(nsp, u, a), (jnp.asarray(x),), (jnp.asarray(gx),))
        return to_xp(xp, t)

    def r_avg_grad(xp, a, dy):
        import jax
        jnp = jnp_of(xp)
        z = jnp.zeros(tuple(int(s) for s in a["input_shape"]), dtype=dy.dtype)
        _, vjp = jax.vjp(lambda t: fwd(nsp, t, a), z)
        return to_xp(xp, vjp(jnp.asarray(dy))[0])
    return r, r_grad, r_grad_grad, r_avg_grad


for _d in (1, 2, 3):
    _n = f"{_d}d"
    _mx, _mxg, _mxgg, _ = _mk_pool(_d, "max")
    _av, _, _, _avg = _mk_pool(_d, "avg")
    REFS.update({
        f"conv{_n}": ("num", _mk_conv(_d)), f"conv{_n}_backprop_input": ("num", _mk_conv_bin(_d)),
        f"conv{_n}_backprop_filter": ("num", _mk_conv_bfil(_d)), f"conv{_n}_transpose": ("num", _mk_conv_transpose(_d)),
        f"max_pool{_n}": ("same", _mx), f"max_pool{_n}_grad": ("num", _mxg), f"max_pool{_n}_grad_grad": ("num", _mxgg),
        f"avg_pool{_n}": ("same", _av), f"avg_pool{_n}_grad": ("same", _avg),
    })
    JAX_FORWARD |= {f"conv{_n}", f"conv{_n}_backprop_input", f"conv{_n}_backprop_filter", f"conv{_n}_transpose",
                    f"max_pool{_n}", f"max_pool{_n}_grad", f"max_pool{_n}_grad_grad", f"avg_pool{_n}",
                    f"avg_pool{_n}_grad"}


# ---- attention, random draws, resizing (issue 17) -------------------------------------------
# dot_product_attention's packed result: JAX's jax.nn.dot_product_attention output with the
# row's logsumexp of the masked, scaled logits appended as a last column (masked logits are
# Keras's -0.7 * float32 max, as the kernel). The gradient op is the vjp of that reference.
ATT_NEG = -0.7 * float(np.finfo(np.float32).max)


def _attention_packed(jnp, a, q, k, v, mask=None):
    import jax
    B, T, H, D = q.shape
    S, K = k.shape[1], k.shape[2]
    scale = a.get("scale") or 1.0 / math.sqrt(D)
    causal = bool(a.get("causal", False))
    m = None if mask is None else jnp.asarray(mask) != 0
    kk, vv = jnp.repeat(k, H // K, axis=2), jnp.repeat(v, H // K, axis=2)
    logits = jnp.einsum("bthd,bshd->bhts", q, kk) * scale
    keep = jnp.ones((B, H, T, S), dtype=bool)
    if m is not None:
        keep = keep & jnp.broadcast_to(m.reshape((1,) * (4 - m.ndim) + m.shape), keep.shape)
    if causal:
        keep = keep & jnp.tril(jnp.ones((T, S), dtype=bool))
    logits = jnp.where(keep, logits, ATT_NEG)
    lse = jax.nn.logsumexp(logits, axis=-1)
    # softmax, not exp(logits - lse): in a row with every key masked NEG + log(S) rounds to NEG
    out = jnp.einsum("bhts,bshd->bthd", jax.nn.softmax(logits, axis=-1), vv)
    if not isinstance(q, jax.core.Tracer) and q.shape[-1] == v.shape[-1]:
        # this formulation is JAX's own op (which computes its softmax in float32, hence the tolerance)
        ref = jax.nn.dot_product_attention(q, k, v, mask=m, scale=scale, is_causal=causal)
        assert np.allclose(np.asarray(ref), np.asarray(out), atol=1e-5), "reference disagrees with jax.nn"
    return jnp.concatenate([out, jnp.transpose(lse, (0, 2, 1))[..., None]], axis=-1)


def r_dot_product_attention(xp, a, q, k, v, mask=None):
    jnp = jnp_of(xp)
    return to_xp(xp, _attention_packed(jnp, a, *(jnp.asarray(t) for t in (q, k, v)), mask))


def r_dot_product_attention_grad(xp, a, q, k, v, packed, g, mask=None):
    import jax
    jnp = jnp_of(xp)
    q, k, v = (jnp.asarray(t) for t in (q, k, v))
    _attention_packed(jnp, a, q, k, v, mask)   # (its check against jax.nn.dot_product_attention)
    _, vjp = jax.vjp(lambda q, k, v: _attention_packed(jnp, a, q, k, v, mask), q, k, v)
    dq, dk, dv = vjp(jnp.asarray(g))
    part = a.get("part", 3)
    res = jnp.stack([dq, dk, dv]) if part == 3 else (dq, dk, dv)[part]
    return to_xp(xp, res)


JAX_FORWARD |= {"dot_product_attention", "dot_product_attention_grad"}
REFS.update({
    "dot_product_attention": ("float", r_dot_product_attention),
    "dot_product_attention_grad": ("float", r_dot_product_attention_grad),
})


# ---- linear algebra (issue 17) ----------------------------------------------------------------
# NumPy's linalg for values, the same functions under jax.numpy (differentiated by jax.vjp) for
# gradients. triangular_solve reads one triangle of a; cholesky and eigh read the lower one.
def _mT(xp, x):
    return xp.swapaxes(x, -1, -2)


def r_linalg_solve(xp, a, m, b):
    return xp.linalg.solve(_mT(xp, m) if a.get("adjoint") else m, b)


def r_linalg_triangular_solve(xp, a, m, b):
    t = xp.tril(m) if a.get("lower", True) else xp.triu(m)
    return xp.linalg.solve(_mT(xp, t) if a.get("adjoint") else t, b)


def r_linalg_slogdet(xp, a, x):
    s, l = xp.linalg.slogdet(x)
    return xp.stack([s, l], -1)


def r_linalg_cholesky(xp, a, x):
    low = xp.tril(x)
    return xp.linalg.cholesky(low + _mT(xp, xp.tril(x, -1)))


def r_linalg_eigh(xp, a, x):
    low = xp.tril(x)
    w, v = xp.linalg.eigh(low + _mT(xp, xp.tril(x, -1)))
    # moongrad's canonical signs: each eigenvector's largest-magnitude component positive
    big = xp.take_along_axis(v, xp.argmax(xp.abs(v), axis=-2)[..., None, :], axis=-2)
    v = v * xp.where(big < 0, -1.0, 1.0).astype(v.dtype)
    return xp.concatenate([w[..., None, :], v], -2)


def r_linalg_band_part(xp, a, x):
    m, n = x.shape[-2], x.shape[-1]
    lo, up = int(a.get("num_lower", -1)), int(a.get("num_upper", -1))
    i, j = np.arange(m)[:, None], np.arange(n)[None, :]
    keep = ((lo < 0) | (i - j <= lo)) & ((up < 0) | (j - i <= up))
    return xp.where(keep, x, xp.zeros_like(x))


REFS.update({
    "linalg_inv": ("float", lambda xp, a, x: xp.linalg.inv(x)),
    "linalg_solve": ("float", r_linalg_solve),
    "linalg_triangular_solve": ("float", r_linalg_triangular_solve),
    "linalg_det": ("float", lambda xp, a, x: xp.linalg.det(x)),
    "linalg_slogdet": ("float", r_linalg_slogdet),
    "linalg_cholesky": ("float", r_linalg_cholesky),
    "linalg_qr_q": ("float", lambda xp, a, x: xp.linalg.qr(x, mode=a.get("mode", "reduced"))[0]),
    "linalg_svd": ("float", lambda xp, a, x: xp.linalg.svd(x, compute_uv=False)),
    "linalg_eigh": ("float", r_linalg_eigh),
    "linalg_band_part": ("num", r_linalg_band_part),
})
