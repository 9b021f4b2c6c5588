#!/usr/bin/env python3
"""check.py — the comparing half of the op oracle (issue 14).

    python check.py OUTDIR        (OUTDIR as written by tests/oracle/gen.lua)

Reads moongrad's results for every case (OUTDIR/manifest.json and
OUTDIR/cases.safetensors, read here with NumPy: the format is a length, a JSON header
and the raw bytes) and recomputes each with an independent implementation: the
forward value with NumPy (refs.py, with jax.lax for convolutions and pooling), the
gradient with jax.vjp in float64. It checks the result's dtype and shape, its values
(exactly for integer and bool results; for floats |got - ref| <= tol * (1 + |ref|) with
tol 5e-6 for float32 and 1e-11 for float64, NaN where the reference has NaN, infinities
of the same sign) and each input gradient (its dtype and shape are those of the input),
for the eager run and for the staged one (mg.func) alike.
moongrad meets 1e-6 and 1e-13 on all but a few float32 sums: the tolerances leave room
for a change of summation order, not for a lost digit.

Cases named in expected_failures.py (known defects being fixed elsewhere) are reported
as "xfail" and counted as skipped while they still fail; one that passes is reported
as a failure ("now passes: delete its entry"), so the list cannot go stale. Prints a
line per failure and closes with "oracle: N passed, N failed[, N skipped]".
"""
import json
import math
import os
import struct
import sys
import time
import warnings

import numpy as np

import refs
from expected_failures import EXPECTED_FAILURES

TOL = {"float32": 5e-6, "float64": 1e-11}   # see the header

ST_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "U8": np.uint8,
             "BOOL": np.bool_, "F16": np.float16, "I8": np.int8, "I16": np.int16}
try:   # bfloat16 comes with JAX (ml_dtypes)
    import ml_dtypes
    ST_DTYPES["BF16"] = ml_dtypes.bfloat16
except ImportError:
    pass


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[base + b:base + e], dtype=ST_DTYPES[info["dtype"]])
        out[name] = arr.reshape(info["shape"])
    return out


class Failure(Exception):
    pass


# ---- comparing -------------------------------------------------------------------------
def compare(what, got, ref, dtype, tol=None):
    """Raises Failure unless got (moongrad's, of dtype) matches ref."""
    ref = np.asarray(ref)
    if tuple(got.shape) != tuple(ref.shape):
        raise Failure(f"{what}: shape {tuple(got.shape)}, expected {tuple(ref.shape)}")
    if str(got.dtype) != dtype:
        raise Failure(f"{what}: dtype {got.dtype}, expected {dtype}")
    if got.size == 0:
        return
    if dtype not in refs.FLOATS or tol == 0:   # exact: integers, bools, and floats asked to be identical
        r = ref.astype(dtype)
        if dtype in refs.FLOATS:
            bad = ~((got == r) | (np.isnan(got) & np.isnan(r)))
        else:
            bad = got != r
        if bad.any():
            i = np.unravel_index(np.argmax(bad), bad.shape)
            raise Failure(f"{what}: {int(bad.sum())} of {bad.size} differ; at {tuple(int(v) for v in i)}: "
                          f"got {got[i]!r}, expected {r[i]!r}")
        return
    g = got.astype(np.float64)
    r = ref.astype(np.float64)
    t = tol if tol is not None else TOL[dtype]
    finite = np.isfinite(r)
    scale = 1.0   # |got - ref| <= tol * (1 + |ref|): relative, absolute for values near 0
    with np.errstate(all="ignore"):
        err = np.where(finite, np.abs(g - r) / (t * scale + t * np.abs(r)), 0.0)
        err = np.where(np.isnan(err), np.inf, err)
    bad = (finite & (err > 1)) | (np.isnan(r) != np.isnan(g)) | (np.isinf(r) & (g != r))
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, np.where(np.isfinite(err), err, 1e300), -1)), bad.shape)
        maxerr = float(np.max(np.abs(g - r)[finite & bad])) if (finite & bad).any() else float("nan")
        raise Failure(f"{what}: {int(bad.sum())} of {bad.size} differ (max abs error {maxerr:.3g}, "
                      f"tolerance {t:g} x {scale:.3g}); at {tuple(int(v) for v in i)}: got {g[i]!r}, expected {r[i]!r}")


# ---- dtypes ------------------------------------------------------------------------------
DEFAULT_DTYPE = {"full": "float32", "arange": "int64", "linspace": "float32", "eye": "float32"}


def dtypes_of(family, c, descs):
    """(the output dtype, the dtype each input is computed in (None: as it is))."""
    a = c["attrs"] if isinstance(c["attrs"], dict) else {}
    n = len(descs)
    p = refs.promote(descs) if descs else None
    if family == "num":
        return p, [p] * n
    if family == "float":
        q = p if refs.is_float(p) else "float32"
        return q, [q] * n
    if family == "cmp":
        q = p
        if q in refs.INTS:   # a weak integer the dtype cannot hold compares in int64 (the true answer)
            lim = {"uint8": (0, 255), "int32": (-2 ** 31, 2 ** 31 - 1)}.get(q)
            for d in descs:
                if "scalar" in d and d["scalar_type"] == "integer" and lim and not lim[0] <= d["scalar"] <= lim[1]:
                    q = "int64"
        return "bool", [q] * n
    if family == "logical":
        return "bool", ["bool"] * n
    if family == "where":
        q = refs.promote(descs[1:])
        return q, ["bool", q, q]
    if family == "same":
        return descs[0]["dtype"], [None] * n
    if family == "reduce_sum":
        d = descs[0]["dtype"]
        return (d if refs.is_float(d) else "int64"), [None]
    if family == "reduce_float":
        d = descs[0]["dtype"]
        return (d if refs.is_float(d) else "float32"), [d if refs.is_float(d) else "float32"]
    if family == "arg":
        return "int64", [None]
    if family == "search":   # searchsorted: int64 positions, both inputs in their promoted dtype
        return "int64", [p] * n
    if family == "reduce_bool":
        return "bool", [None]
    if family == "create":
        return a.get("dtype", DEFAULT_DTYPE[c["op"]]), []
    if family == "cast":
        return a["dtype"], [None]
    if family == "one_hot":
        return a.get("dtype", "float32"), [None]
    raise AssertionError(family)


def prepare(c, T, compute, out_dtype):
    """The inputs as NumPy values: cast to their compute dtype, floats in float64 when the
    result is a float (the reference is computed in float64)."""
    xs = []
    for d, cd in zip(c["inputs"], compute):
        v = np.asarray(d["scalar"]) if "scalar" in d else T[d["name"]]
        if cd is not None:
            v = v.astype(cd)
        if refs.is_float(out_dtype) and np.issubdtype(v.dtype, np.floating):
            v = v.astype(np.float64)
        xs.append(v)
    return xs


# ---- the general case -------------------------------------------------------------------------
JAX = None


def jax_modules():
    global JAX
    if JAX is None:
        import jax
        import jax.numpy as jnp
        JAX = (jax, jnp)
    return JAX


def check_op(c, T):
    op, a = c["op"], (c["attrs"] if isinstance(c["attrs"], dict) else {})
    family, fn = refs.REFS[op]
    descs = c["inputs"]
    out_dtype, compute = dtypes_of(family, c, descs)
    xs = prepare(c, T, compute, out_dtype)
    grads = c.get("grads") or []
    diff = [g["input"] - 1 for g in grads]
    rg = None
    if grads and op in refs.JAX_FORWARD:
        # the reference is JAX's either way: its value comes with the gradient (one compilation)
        ref, rg = reference_gradient(op, fn, a, xs, diff, T[c["gy"]])
    else:
        with np.errstate(all="ignore"):
            ref = fn(np, a, *xs)
    if grads and rg is None:
        if op in refs.ELEMENTWISE:
            rg = elementwise_gradient(op, fn, a, xs, diff, T[c["gy"]])
        else:
            _, rg = reference_gradient(op, fn, a, xs, diff, T[c["gy"]])
    tol = c.get("tol")
    # eager, then the same op staged (mg.func under the tape), against the same reference
    for run, what in ((c, ""), (c.get("staged"), "staged: ")):
        if run is None:
            continue
        if run.get("error"):
            raise Failure(what + "moongrad raised: " + run["error"])
        compare(what + "value", T[run["outputs"][0]], ref, out_dtype, tol)
        if run.get("grad_error"):
            raise Failure(what + "gradient raised: " + run["grad_error"])
        if len(run.get("grads") or []) != len(grads):
            raise Failure(what + f"{len(run.get('grads') or [])} gradients, expected {len(grads)}")
        for g, r in zip(run.get("grads") or [], rg or []):
            d = descs[g["input"] - 1]
            compare(what + f"gradient of input {g['input']}", T[g["name"]], r, d["dtype"], tol)


JITTED = {}


def reference_gradient(op, fn, a, xs, diff, gy):
    """jax.vjp of the reference in float64 with respect to the inputs diff, at gy.

    One jitted function per signature (op, attributes, the differentiated inputs' shapes,
    the other inputs' values), so that cases with the same shapes share one compilation
    (a float32 case and its float64 twin do, as the reference runs in float64)."""
    jax, jnp = jax_modules()
    consts = [None if k in diff else x for k, x in enumerate(xs)]
    key = (op, json.dumps(a, sort_keys=True), tuple(diff),
           tuple((x.shape, str(x.dtype)) for x in xs),
           tuple((x.tobytes() if x is not None else None) for x in consts))
    g = JITTED.get(key)
    if g is None:
        def g(ds, gy):
            def f(*ds):
                full = list(consts)
                for k, dv in zip(diff, ds):
                    full[k] = dv
                return fn(jnp, a, *full)
            y, vjp = jax.vjp(f, *ds)
            return y, vjp(gy.astype(y.dtype))
        g = JITTED[key] = jax.jit(g)
    y, out = g([xs[k].astype(np.float64) for k in diff], gy.astype(np.float64))
    return np.asarray(y), [np.asarray(r) for r in out]


def sum_to_shape(g, shape):
    """The adjoint of broadcasting g's shape from `shape`: sums over the added and the
    stretched axes."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(d for d, n in enumerate(shape) if n == 1 and g.shape[d] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def elementwise_gradient(op, fn, a, xs, diff, gy):
    """The gradient of an elementwise op: its elementwise partial derivatives (jax.vjp of
    the reference on the inputs broadcast and flattened, padded to a power of two so that
    cases of any shape share a few compilations), summed back to each input's shape."""
    tensors = [k for k, x in enumerate(xs) if x.ndim > 0 or k in diff]
    shape = np.broadcast_shapes(*[x.shape for x in xs])
    n = int(np.prod(shape))
    if n == 0:
        return [np.zeros(xs[k].shape) for k in diff]
    size = max(16, 1 << (n - 1).bit_length())

    def flat(v):
        v = np.broadcast_to(v, shape).reshape(-1)
        return np.concatenate([v, np.repeat(v[:1], size - n)])

    consts = {k: x for k, x in enumerate(xs) if k not in tensors}
    args = [flat(xs[k]) for k in tensors]
    key = ("ew", op, json.dumps(a, sort_keys=True), tuple(diff), size, tuple(str(v.dtype) for v in args),
           tuple((k, v.tobytes(), str(v.dtype)) for k, v in consts.items()))
    g = JITTED.get(key)
    if g is None:
        jax, jnp = jax_modules()

        def g(args, gy):
            def f(*ds):
                full = [None] * len(xs)
                for k, v in consts.items():
                    full[k] = v
                for k, v in zip(tensors, args):
                    full[k] = v
                for k, dv in zip(diff, ds):
                    full[k] = dv
                return fn(jnp, a, *full)
            y, vjp = jax.vjp(f, *[args[tensors.index(k)] for k in diff])
            return vjp(gy.astype(y.dtype))
        g = JITTED[key] = jax.jit(g)
    gyf = np.concatenate([gy.astype(np.float64).reshape(-1), np.zeros(size - n)])
    out = g([v.astype(np.float64) if np.issubdtype(v.dtype, np.floating) else v for v in args], gyf)
    return [sum_to_shape(np.asarray(r)[:n].reshape(shape), xs[k].shape) for k, r in zip(diff, out)]


# ---- checkers for cases with a procedure of their own ------------------------------------------
def normal_cdf(z):
    return 0.5 * (1 + np.vectorize(math.erf, otypes=[np.float64])(z / math.sqrt(2)))


def check_random(c, T):
    a = c["attrs"]
    op, dt = c["op"], a["dtype"]
    x, again, other, empty = (T[n] for n in c["outputs"])
    compare("seed repeat", again, x, dt, 0.0) if refs.is_float(dt) else compare("seed repeat", again, x, dt)
    if x.size and np.array_equal(other, x) and not (op == "randint" and a["low"] == a["high"]):
        raise Failure("another seed gave the same values")
    if tuple(empty.shape) != (0, 3) or str(empty.dtype) != dt:
        raise Failure(f"shape (0,3): got {tuple(empty.shape)} {empty.dtype}")
    if str(x.dtype) != dt:
        raise Failure(f"dtype {x.dtype}, expected {dt}")
    v = np.sort(x.astype(np.float64))
    n = v.size
    ks_limit = 1.95 / math.sqrt(n)   # Kolmogorov-Smirnov at the 0.1% level
    if op in ("uniform", "normal", "truncated_normal"):
        if op == "uniform":
            lo, hi = a["low"], a["high"]
            if v[0] < lo or v[-1] >= hi:
                raise Failure(f"values outside [{lo}, {hi}): {v[0]} .. {v[-1]}")
            cdf = (v - lo) / (hi - lo)
        elif op == "normal":
            cdf = normal_cdf((v - a["mean"]) / a["stddev"])
        else:
            mu, sd = a["mean"], a["stddev"]
            if v[0] < mu - 2 * sd or v[-1] > mu + 2 * sd:
                raise Failure(f"values outside mean +- 2 stddev: {v[0]} .. {v[-1]}")
            lo, hi = normal_cdf(np.array([-2.0]))[0], normal_cdf(np.array([2.0]))[0]
            cdf = (normal_cdf((v - mu) / sd) - lo) / (hi - lo)
        emp_hi = np.arange(1, n + 1) / n
        emp_lo = np.arange(0, n) / n
        d = max(np.max(emp_hi - cdf), np.max(cdf - emp_lo))
        if d > ks_limit:
            raise Failure(f"Kolmogorov-Smirnov distance {d:.4f} > {ks_limit:.4f}")
    elif op == "bernoulli":
        if not np.all((v == 0) | (v == 1)):
            raise Failure("values other than 0 and 1")
        p = a["p"]
        freq = v.mean()
        if abs(freq - p) > 4 * math.sqrt(p * (1 - p) / n):
            raise Failure(f"frequency of 1 is {freq:.4f}, p = {p}")
    elif op == "randint":
        lo, hi = a["low"], a["high"]
        if v[0] < lo or v[-1] > hi:
            raise Failure(f"values outside [{lo}, {hi}] (both included): {v[0]} .. {v[-1]}")
        k = hi - lo + 1
        counts = np.bincount((v - lo).astype(np.int64), minlength=k)
        if (counts == 0).any():
            raise Failure(f"value {lo + int(np.argmin(counts))} never drawn")
        if k > 1:
            e = n / k
            chi2 = float(((counts - e) ** 2 / e).sum())
            df = k - 1
            if chi2 > df + 6 * math.sqrt(2 * df):
                raise Failure(f"chi-square {chi2:.1f} with {df} degrees of freedom")


def check_dropout(c, T):
    rate = c["attrs"]["rate"]
    x = T[c["inputs"][0]["name"]].astype(np.float64)
    dt = c["inputs"][0]["dtype"]
    y, gy, g, again, other = (T[n] for n in c["outputs"])
    kept = y != 0
    compare("kept values", y, np.where(kept, x / (1 - rate), 0.0), dt)
    frac = 1 - kept.mean()
    if abs(frac - rate) > 4 * math.sqrt(rate * (1 - rate) / x.size):
        raise Failure(f"dropped fraction {frac:.4f}, rate {rate}")
    compare("gradient", g, np.where(kept, gy.astype(np.float64) / (1 - rate), 0.0), dt)
    compare("same seed (number or tensor)", again, y, dt, 0.0)
    if np.array_equal(other, y):
        raise Failure("another seed gave the same mask")


def check_dropout_trivial(c, T):
    x = T[c["inputs"][0]["name"]]
    y = T[c["outputs"][0]]
    dt = c["inputs"][0]["dtype"]
    if c["attrs"]["rate"] == 0:
        compare("value", y, x, dt, 0.0)
    else:
        compare("value", y, np.zeros(x.shape), dt)
    for g in c.get("grads") or []:
        if g["input"] == 1:
            want = T[c["gy"]] if c["attrs"]["rate"] == 0 else np.zeros(x.shape)
            compare("gradient", T[g["name"]], want, dt, 0.0)
    if c.get("grad_error"):
        raise Failure("gradient raised: " + c["grad_error"])


def check_optim(c, T):
    """Two steps of the documented (Keras 3) rules in float64 from the same values."""
    op, h = c["op"], c["attrs"]
    ins = [T[d["name"]].astype(np.float64) for d in c["inputs"]]
    nslots = len(ins) - 3
    var, slots, gs = ins[0].copy(), [s.copy() for s in ins[1:1 + nslots]], ins[1 + nslots:]
    for g in gs:
        if op == "sgd_update":
            if nslots == 0:
                var -= h["lr"] * g
            else:
                m = slots[0]
                m[...] = h["momentum"] * m - h["lr"] * g
                var += (h["momentum"] * m - h["lr"] * g) if h.get("nesterov") else m
        elif op == "adam_update":
            m, v = slots[0], slots[1]
            m += (g - m) * (1 - h["beta_1"])
            v += (g * g - v) * (1 - h["beta_2"])
            vv = v
            if h.get("amsgrad"):
                slots[2][...] = np.maximum(slots[2], v)
                vv = slots[2]
            var[...] = var - h["decay"] * var - h["alpha"] * m / (np.sqrt(vv) + h["epsilon"])
        elif op == "rmsprop_update":
            vel = slots[0]
            k = 1
            mom = None
            if h.get("momentum", 0) != 0:
                mom = slots[k]
                k += 1
            vel[...] = h["rho"] * vel + (1 - h["rho"]) * g * g
            denom = vel
            if h.get("centered"):
                avg = slots[k]
                avg[...] = h["rho"] * avg + (1 - h["rho"]) * g
                denom = vel - avg * avg
            inc = h["lr"] * g / np.sqrt(denom + h["epsilon"])
            if mom is not None:
                mom[...] = h["momentum"] * mom + inc
                var -= mom
            else:
                var -= inc
        elif op == "adagrad_update":
            acc = slots[0]
            acc += g * g
            var -= h["lr"] * g / np.sqrt(acc + h["epsilon"])
        else:
            raise AssertionError(op)
    outs = [T[n] for n in c["outputs"]]
    compare("var", outs[0], var, "float32")
    for k, s in enumerate(slots):
        compare(f"slot {k + 1}", outs[1 + k], s, "float32")
    compare("count", outs[-1], np.array([var.size, var.size]), "int64")


def check_std(c, T):
    x = T[c["inputs"][0]["name"]].astype(np.float64)
    dt = c["inputs"][0]["dtype"]
    with np.errstate(all="ignore"):
        ref = np.sqrt(refs.r_variance(np, c["attrs"], x))
    compare("value", T[c["outputs"][0]], ref, dt)


def check_bincount(c, T):
    x = np.abs(T[c["inputs"][0]["name"]]).reshape(-1)
    w = None
    if len(c["inputs"]) > 1:   # the weights were passed transposed (a strided view): the same here
        w = T[c["inputs"][1]["name"]].T.reshape(-1)
    a = c["attrs"] if isinstance(c["attrs"], dict) else {}   # an empty Lua table comes as a list
    ref = np.bincount(x, weights=w, minlength=int(a.get("minlength", 0)))
    compare("value", T[c["outputs"][0]], ref, "float64" if w is not None else "int64")


def check_unique(c, T):
    """TF's unique_with_counts: values in first-occurrence order (NumPy's sorted unique reordered
    by first index), 1-based positions of each element's value, counts."""
    x = T[c["inputs"][0]["name"]].reshape(-1)
    u, first, inv, counts = np.unique(x, return_index=True, return_inverse=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    pos = np.empty_like(order)
    pos[order] = np.arange(len(order))
    compare("values", T[c["outputs"][0]], u[order], str(x.dtype))
    compare("indices", T[c["outputs"][1]], (pos[inv.reshape(-1)] + 1).astype(np.int64), "int64")
    compare("counts", T[c["outputs"][2]], counts[order].astype(np.int64), "int64")


def _shape17_ref(xp, a, xs):
    """The references of issue 17's shape ops (NumPy's or jax.numpy's functions of the same name)."""
    fn = a["fn"]
    if fn in ("tril", "triu"):
        return [getattr(xp, fn)(xs[0], k=a["k"])]
    if fn == "roll":
        if "axis" in a:
            return [xp.roll(xs[0], tuple(a["shift"]), axis=tuple(a2 - 1 for a2 in a["axis"]))]
        return [xp.roll(xs[0], a["shift"])]
    if fn == "diag":
        k, v = a["k"], xs[0]
        return [xp.stack([xp.diag(v[b], k=k) for b in range(v.shape[0])])] if v.ndim == 2 else [xp.diag(v, k=k)]
    if fn == "diag_part":
        return [xp.diagonal(xs[0], offset=a["k"], axis1=-2, axis2=-1)]
    if fn == "trace":
        return [xp.trace(xs[0], axis1=-2, axis2=-1)]
    if fn == "meshgrid":
        return list(xp.meshgrid(*xs, indexing=a["indexing"]))
    if fn == "repeat":
        r = a["repeats"]
        r = xp.asarray(r) if isinstance(r, list) else r
        if "axis" in a:
            return [xp.repeat(xs[0], r, axis=a["axis"] - 1)]
        return [xp.repeat(xs[0].reshape(-1), r)]
    if fn == "sequence_mask":
        return [xp.arange(a["maxlen"])[None, :] < xs[0][..., None]]
    if fn == "outer":
        return [xp.outer(xs[0], xs[1])]
    if fn == "tensordot":
        ax = a["axes"]
        if isinstance(ax, list):
            ax = ([i - 1 for i in ax[0]], [i - 1 for i in ax[1]])
        return [xp.tensordot(xs[0], xs[1], axes=ax)]
    if fn == "einsum":
        ops = list(xs)
        if a.get("transpose_first"):
            ops[0] = xp.swapaxes(ops[0], -1, -2)
        return [xp.einsum(a["eq"], *ops)]
    raise AssertionError(fn)


def check_shape17(c, T):
    """Issue 17's shape compositions: outputs against NumPy, the gradient of sum(y * cos(0, 1, ...))
    for each float input against jax.vjp (float64), for the eager run and the staged one."""
    import jax
    import jax.numpy as jnp
    a = c["attrs"]
    xs = [T[i["name"]] for i in c["inputs"]]
    dts = [i["dtype"] for i in c["inputs"]]
    # the result dtypes are NumPy's on the inputs as they are; the values are computed in float64
    ydt = [str(np.asarray(y).dtype) for y in _shape17_ref(np, a, xs)]
    ys = _shape17_ref(np, a, [x.astype(np.float64) if str(x.dtype) in refs.FLOATS else x for x in xs])
    fl = [k for k, d in enumerate(dts) if d in refs.FLOATS]
    outs = [T[n] for n in c["outputs"]]
    per = len(ys) + (len(fl) if any(str(y.dtype).startswith("float") for y in ys) else 0)
    if len(outs) != 2 * per:
        raise Failure(f"{len(outs)} outputs, expected {2 * per}")
    grads = []
    if per > len(ys):
        def f(*fx):
            full = [jnp.asarray(x) for x in xs]
            for k, v in zip(fl, fx):
                full[k] = v
            return _shape17_ref(jnp, a, full)
        prim = [jnp.asarray(xs[k], dtype=jnp.float64) for k in fl]
        yv, vjp = jax.vjp(f, *prim)
        cot = [jnp.cos(jnp.arange(y.size, dtype=jnp.float64)).reshape(y.shape) if jnp.issubdtype(y.dtype, jnp.floating)
               else np.zeros(y.shape, dtype=jax.dtypes.float0) for y in yv]
        grads = [np.asarray(g) for g in vjp(cot)]
    for run, base in (("eager", 0), ("staged", per)):
        for k, y in enumerate(ys):
            compare(f"{run} output {k + 1}", outs[base + k], y, ydt[k])
        for j, k in enumerate(fl):
            if base + len(ys) + j < base + per:
                compare(f"{run} gradient of input {k + 1}", outs[base + len(ys) + j], grads[j], dts[k])


def check_arange(c, T):
    compare("value", T[c["outputs"][0]], refs.r_arange(np, c["attrs"]), c["attrs"]["dtype"])


def check_half(c, T):
    """issue 17's storage dtypes: the JAX op on the same inputs cast to jnp.bfloat16 / float16 /
    int8, compared in units in the last place of the half type (attrs.ulps; 0: bit for bit).
    softmax: JAX's half softmax rounds its intermediates (exp, the division) to the half type;
    moongrad computes it in float32 and rounds once, so the reference is JAX's float32 softmax
    of the half inputs, rounded once."""
    jax, jnp = jax_modules()
    a = c["attrs"]
    dt = {"bfloat16": jnp.bfloat16, "float16": jnp.float16, "int8": jnp.int8}[a["dtype"]]
    xs = [T[d["name"]] for d in c["inputs"]]
    op = a["op"]
    if a["dtype"] == "int8":
        h = [jnp.asarray(xs[0] * 37).astype(jnp.int8), jnp.asarray(xs[1] * 53).astype(jnp.int8)]
    else:
        h = [jnp.asarray(x).astype(dt) for x in xs]
    fns = {"add": lambda p, q: p + q, "mul": lambda p, q: p * q, "div": lambda p, q: p / q,
           "maximum": jnp.maximum, "exp": jnp.exp, "tanh": jnp.tanh,
           "sum": lambda p: jnp.sum(p, axis=1), "mean": lambda p: jnp.mean(p, axis=0),
           "max": lambda p: jnp.max(p, axis=1), "softmax": lambda p: jax.nn.softmax(p.astype(jnp.float32), axis=-1).astype(p.dtype),
           "matmul": lambda p, q: jnp.matmul(p, q.T, preferred_element_type=jnp.float32).astype(p.dtype)}
    ref = np.asarray(fns[op](*h))
    got = T[c["outputs"][0]]
    if tuple(got.shape) != tuple(ref.shape):
        raise Failure(f"value: shape {tuple(got.shape)}, expected {tuple(ref.shape)}")
    if str(got.dtype) != a["dtype"]:
        raise Failure(f"value: dtype {got.dtype}, expected {a['dtype']}")
    if a["dtype"] == "int8":
        if (got != ref).any():
            raise Failure(f"value: {int((got != ref).sum())} of {got.size} differ")
        return
    g, r = got.astype(np.float64), ref.astype(np.float64)
    bits = 7 if a["dtype"] == "bfloat16" else 10
    with np.errstate(all="ignore"):
        ulp = np.exp2(np.floor(np.log2(np.maximum(np.abs(r), 2.0 ** -14))) - bits)
        bad = ~((np.abs(g - r) <= a["ulps"] * ulp) | (np.isnan(g) & np.isnan(r)))
    if bad.any():
        i = np.unravel_index(np.argmax(bad), bad.shape)
        raise Failure(f"value: {int(bad.sum())} of {bad.size} differ by more than {a['ulps']} ulp; "
                      f"at {tuple(int(v) for v in i)}: got {g[i]!r}, expected {r[i]!r}")


def check_bitcast(c, T):
    """bitcast against NumPy's ndarray.view (a wider dtype to a narrower one adds the ratio axis)."""
    x = np.ascontiguousarray(T[c["inputs"][0]["name"]])
    want = c["attrs"]["dtype"]
    dt = ST_DTYPES["BF16"] if want == "bfloat16" else np.dtype(want)
    ref = x.view(dt).reshape(x.shape + (x.itemsize // np.dtype(dt).itemsize,))
    got = T[c["outputs"][0]]
    if tuple(got.shape) != ref.shape or got.tobytes() != ref.tobytes():
        raise Failure(f"value: shape {tuple(got.shape)} or bytes differ from ndarray.view, shape {ref.shape}")


def check_raises(c, T):
    raise Failure("expected an error, got a result")


def check_boolean_mask(c, T):
    """tf.boolean_mask: the mask's shape is x's from axis on; those axes become one."""
    x = T[c["inputs"][0]["name"]]
    m = T[c["inputs"][1]["name"]].astype(bool)
    d = int(c["attrs"]["axis"]) - 1
    xr = x.reshape(x.shape[:d] + (m.size,) + x.shape[d + m.ndim:])
    ref = np.take(xr, np.flatnonzero(m.reshape(-1)), axis=d)
    compare("value", T[c["outputs"][0]], ref, c["inputs"][0]["dtype"])


def check_segment_mean(c, T):
    x = T[c["inputs"][0]["name"]]
    ids = T[c["inputs"][1]["name"]].astype(np.int64) - 1
    n = int(c["attrs"]["num_segments"])
    ref = np.zeros((n,) + x.shape[1:])
    for s in range(n):
        rows = x[ids == s]
        if len(rows):
            ref[s] = rows.mean(axis=0)
    compare("value", T[c["outputs"][0]], ref, c["inputs"][0]["dtype"])


def check_random17(c, T):
    """issue 17's random ops: a seed repeats, another differs, and the distribution passes a
    Kolmogorov-Smirnov (gamma, against scipy.stats) or chi-square test (poisson, categorical,
    permutation positions) at a fixed seed."""
    from scipy import stats
    a, op = c["attrs"], c["op"]
    outs = [T[n] for n in c["outputs"]]
    x = outs[0]

    def chi2(counts, probs, what):
        e = probs * counts.sum()
        keep = e >= 5
        obs = np.append(counts[keep], counts[~keep].sum())
        exp = np.append(e[keep], e[~keep].sum())
        if exp[-1] == 0:
            obs, exp = obs[:-1], exp[:-1]
        df = len(obs) - 1
        val = float(((obs - exp) ** 2 / exp).sum())
        if df > 0 and val > df + 6 * math.sqrt(2 * df):
            raise Failure(f"{what}: chi-square {val:.1f} with {df} degrees of freedom")

    if op in ("random_gamma", "random_poisson"):
        again, other = outs[1], outs[2]
        if not np.array_equal(again, x):
            raise Failure("the same seed gave other values")
        if x.size and np.array_equal(other, x) and not (op == "random_poisson" and a["lam"] == 0):
            raise Failure("another seed gave the same values")
        if str(x.dtype) != a["dtype"]:
            raise Failure(f"dtype {x.dtype}, expected {a['dtype']}")
        v = np.sort(x.astype(np.float64))
        if op == "random_gamma":
            if v[0] <= 0 and a["alpha"] >= 1:
                raise Failure(f"a value <= 0: {v[0]}")
            d = stats.kstest(v, stats.gamma(a["alpha"], scale=1 / a.get("beta", 1)).cdf).statistic
            if d > 1.95 / math.sqrt(v.size):
                raise Failure(f"Kolmogorov-Smirnov distance {d:.4f}")
        else:
            lam = a["lam"]
            if np.any(v != np.floor(v)) or v[0] < 0:
                raise Failure("values that are not counts")
            if lam == 0:
                if v[-1] != 0:
                    raise Failure("lam = 0 gave a count > 0")
                return
            k = np.arange(0, int(v[-1]) + 1)
            chi2(np.bincount(v.astype(np.int64), minlength=k.size).astype(np.float64), stats.poisson(lam).pmf(k),
                 "counts")
    elif op == "random_categorical":
        logits = T[c["inputs"][0]["name"]].astype(np.float64)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        if x.shape != (logits.shape[0], a["num_samples"]) or str(x.dtype) != a.get("dtype", "int64"):
            raise Failure(f"shape {x.shape} {x.dtype}")
        for r in range(logits.shape[0]):
            if x[r].min() < 1 or x[r].max() > logits.shape[1]:
                raise Failure(f"row {r + 1}: indices outside 1..{logits.shape[1]}")
            counts = np.bincount(x[r] - 1, minlength=logits.shape[1]).astype(np.float64)
            if np.any(counts[p[r] == 0] > 0):
                raise Failure(f"row {r + 1}: a class of probability 0 was drawn")
            chi2(counts[p[r] > 0], p[r][p[r] > 0], f"row {r + 1}")
    elif op == "random_permutation":
        n = x.shape[1]
        if not np.all(np.sort(x, axis=1) == np.arange(1, n + 1)):
            raise Failure("a draw that is not a permutation of 1..n")
        for pos in range(n):
            chi2(np.bincount(x[:, pos] - 1, minlength=n).astype(np.float64), np.full(n, 1.0 / n), f"position {pos + 1}")
        if len({tuple(r) for r in x}) < 100:
            raise Failure("too few distinct permutations")


def check_resize(c, T):
    """mg.image.resize against jax.image.resize (JAX's kernels are TF's: half-pixel centres, Keys
    cubic, antialias by scale_and_translate); the gradient of sum(y * w) against jax.vjp."""
    jax, jnp = jax_modules()
    a = c["attrs"]
    x, w = (T[d["name"]].astype(np.float64) for d in c["inputs"])
    y, gx = (T[n] for n in c["outputs"])
    method = {"bilinear": "linear", "bicubic": "cubic", "nearest": "nearest"}[a.get("method", "bilinear")]
    shape = x.shape[:-3] + tuple(a["size"]) + x.shape[-1:]
    f = lambda t: jax.image.resize(t, shape, method, antialias=bool(a.get("antialias", False)))
    ref, vjp = jax.vjp(f, jnp.asarray(x))
    dt = str(y.dtype)
    if dt != c["inputs"][0]["dtype"] and not (dt == "float32" and method != "nearest"):
        raise Failure(f"dtype {dt}")
    compare("value", y, np.asarray(ref), dt)
    compare("gradient", gx, np.asarray(vjp(jnp.asarray(w))[0]), dt)


CHECKS = {"random": check_random, "check_resize": check_resize, "random17": check_random17, "dropout": check_dropout, "dropout_trivial": check_dropout_trivial,
          "optim": check_optim, "std": check_std, "arange": check_arange, "bincount": check_bincount, "unique": check_unique,
          "shape17": check_shape17, "boolean_mask": check_boolean_mask, "segment_mean": check_segment_mean,
          "half": check_half, "bitcast": check_bitcast, "raises": check_raises}


def run_case(c, T):
    """None when the case passes, else the failure message."""
    try:
        if c.get("expect_error") or c.get("check") == "raises":
            if c.get("error"):
                return None
            raise Failure("expected an error, got a result")
        if c.get("error"):
            raise Failure("moongrad raised: " + c["error"])
        if c.get("check"):
            CHECKS[c["check"]](c, T)
        else:
            check_op(c, T)
        return None
    except Failure as e:
        return str(e)
    except Exception as e:   # a reference that cannot handle the case is a failure too, never a pass
        return f"oracle error: {type(e).__name__}: {e}"


def main():
    outdir = sys.argv[1]
    t0 = time.time()
    warnings.simplefilter("ignore", RuntimeWarning)   # NumPy's about 0/0 and empty means: expected here
    with open(os.path.join(outdir, "manifest.json")) as f:
        m = json.load(f)
    T = read_safetensors(os.path.join(outdir, "cases.safetensors"))
    import jax
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    if os.environ.get("MG_ORACLE_CACHE"):
        jax.config.update("jax_compilation_cache_dir", os.environ["MG_ORACLE_CACHE"])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    passed = failed = skipped = 0
    seen = set()
    ops, ngrad = set(), 0
    for name in m.get("missing") or []:
        print(f"FAIL {name}: the op has no oracle case (add one to tests/oracle/cases.lua, "
              f"or an exemption with its reason)")
        failed += 1
    for c in m["cases"]:
        key = f"{c['op']}: {c['label']}"
        seen.add(key)
        ops.add(c["op"])
        ngrad += 1 if c.get("grads") else 0
        msg = run_case(c, T)
        xfail = EXPECTED_FAILURES.get(key)
        if xfail is not None:
            if msg is None:
                print(f"FAIL {key}: now passes: delete its entry from tests/oracle/expected_failures.py ({xfail})")
                failed += 1
            else:
                print(f"xfail {key}: {msg} [{xfail}]")
                skipped += 1
        elif msg is None:
            passed += 1
        else:
            print(f"FAIL {key}: {msg}")
            failed += 1
    for key in EXPECTED_FAILURES:
        if key not in seen:
            print(f"FAIL {key}: in tests/oracle/expected_failures.py but no such case")
            failed += 1
    for op, why in (m.get("exempt") or {}).items():
        print(f"exempt {op}: {why}")
    print(f"oracle: {len(m['cases'])} cases ({ngrad} with gradients) over {len(ops & set(refs.REFS)) + len(ops - set(refs.REFS))} "
          f"names, {m['nops']} ops in the table; checked in {time.time() - t0:.1f} s")
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print("oracle: " + line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
