"""jax_peer.py — JAX's side of the side-by-side benchmarks (see common.py).

Best configuration on this machine: the CPU backend with XLA's intra-op pool
at 2 threads (XLA_FLAGS from run.py), jax.jit as the staged form, results
waited for with block_until_ready. XLA's CPU runtime runs its compiled code
with denormals flushed. "Eager" JAX is op-by-op dispatch (and jax.grad
without jit traces the function on every call: that is JAX's eager autodiff).
The CNN is written by hand (lax.conv_general_dilated, reduce_window, Adam in
a few lines): the same model as the others, jitted whole train step.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

jax.config.update("jax_platforms", "cpu")


def info():
    import jaxlib
    return {"version": jax.__version__, "jaxlib": getattr(jaxlib, "__version__", "?"),
            "devices": [str(d) for d in jax.devices()], "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}


def _ready(x):
    return jax.block_until_ready(x)


def add(quick):
    a = jnp.array([[1., 2.], [3., 4.]], jnp.float32)
    b = jnp.array([[5., 6.], [7., 8.]], jnp.float32)
    n = 10000 if quick else 100000

    def fn():
        c = None
        for _ in range(n):
            c = a + b
        _ready(c)
    return [("eager", "us", fn, n, 1)]


def _mm_chain(x, m):
    for _ in range(100):
        x = x @ m
    return x


def matmul_many_eager(quick):
    x, m = jnp.eye(2, dtype=jnp.float32), jnp.array(common.rot2x2(), jnp.float32)
    return [("eager", "us", lambda: _ready(_mm_chain(x, m)), 1, 0)]


def matmul_many_staged(quick):
    x, m = jnp.eye(2, dtype=jnp.float32), jnp.array(common.rot2x2(), jnp.float32)
    f = jax.jit(_mm_chain)
    return [("jax.jit", "us", lambda: _ready(f(x, m)), 1, 0)]


def _sgemm(n):
    def setup(quick):
        k1, k2 = jax.random.split(jax.random.PRNGKey(0))
        a = jax.random.uniform(k1, (n, n), jnp.float32)
        b = jax.random.uniform(k2, (n, n), jnp.float32)
        f = jax.jit(jnp.matmul)
        return [("jit(matmul)", "GFLOP/s", lambda: _ready(f(a, b)), 2 * n ** 3 / 1e9, 0)]
    return setup


def bf16_matmul_2048(quick):
    n = 2048
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.uniform(k1, (n, n), jnp.float32).astype(jnp.bfloat16)
    b = jax.random.uniform(k2, (n, n), jnp.float32).astype(jnp.bfloat16)
    f = jax.jit(lambda x, y: jnp.matmul(x, y, preferred_element_type=jnp.float32).astype(jnp.bfloat16))
    return [("jit(matmul) (bfloat16)", "GFLOP/s", lambda: _ready(f(a, b)), 2 * n ** 3 / 1e9, 0)]


def linalg_solve_512(quick):
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.uniform(k1, (512, 512), jnp.float32) + 512 * jnp.eye(512, dtype=jnp.float32)
    b = jax.random.uniform(k2, (512, 1), jnp.float32)
    f = jax.jit(jnp.linalg.solve)
    return [("jit(linalg.solve)", "ms", lambda: _ready(f(a, b)), 1, 0)]


def _conv2d(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _conv(cin, cout, hw):
    def setup(quick):
        k1, k2 = jax.random.split(jax.random.PRNGKey(0))
        x = jax.random.uniform(k1, (32, hw, hw, cin), jnp.float32)
        w = jax.random.uniform(k2, (5, 5, cin, cout), jnp.float32) * 0.1
        g = jax.jit(jax.grad(lambda x, w: _conv2d(x, w).sum(), argnums=(0, 1)))
        return [("jit(grad) NHWC", "ms", lambda: _ready(g(x, w)), 1, 0)]
    return setup


def _mlp_setup():
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    x = jax.random.uniform(k[0], (32, 784), jnp.float32)
    y = jax.random.randint(k[1], (32,), 0, 10)
    ps = [(jax.random.uniform(k[2], (784, 128), jnp.float32) - 0.5) * 0.15, jnp.zeros(128, jnp.float32),
          (jax.random.uniform(k[3], (128, 10), jnp.float32) - 0.5) * 0.4, jnp.zeros(10, jnp.float32)]
    return x, y, ps


def _xent(logits, y):
    return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0])


def _mlp_loss(ps, x, y):
    w1, b1, w2, b2 = ps
    return _xent(jax.nn.relu(x @ w1 + b1) @ w2 + b2, y)


def _mlp_step(ps, x, y):
    loss, gs = jax.value_and_grad(_mlp_loss)(ps, x, y)
    return [p - 0.01 * g for p, g in zip(ps, gs)], loss


def mlp_eager(quick):
    x, y, ps = _mlp_setup()
    state = {"ps": ps}

    def step():
        state["ps"], loss = _mlp_step(state["ps"], x, y)
        _ready(loss)
    return [("eager (value_and_grad, no jit)", "us", step, 1, 0)]


def mlp_staged(quick):
    x, y, ps = _mlp_setup()
    f = jax.jit(_mlp_step, donate_argnums=0)
    state = {"ps": ps}

    def step():
        state["ps"], loss = f(state["ps"], x, y)
        _ready(loss)
    return [("jax.jit", "us", step, 1, 0)]


def mlp_tape_staged(quick):
    x, y, ps = _mlp_setup()
    g = jax.value_and_grad(jax.jit(_mlp_loss))   # the transformation around a jitted call, not jitted itself
    return [("value_and_grad(jit(loss)), no outer jit", "us", lambda: _ready(g(ps, x, y)), 1, 0)]


@jax.jit
def _loop(v, n):
    def body(s):
        i, v = s
        return i + 1, v * 0.5 + 1.0
    return lax.while_loop(lambda s: s[0] < n, body, (jnp.zeros((), n.dtype), v))[1]


def while_staged(quick):
    v, n = jnp.ones((2, 2), jnp.float32), jnp.array(1000)
    return [("jit(lax.while_loop)", "us", lambda: _ready(_loop(v, n)), 1, 0)]


def tape(quick):
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    x = jax.random.uniform(k1, (4, 4), jnp.float32, -1, 1)
    c = jax.random.uniform(k2, (4, 4), jnp.float32, 0.5, 1.5)

    def chain(h):
        for _ in range(4):
            h = jax.nn.sigmoid(jnp.sin(jnp.tanh(h * c + 0.5)))
        return h.sum()
    g = jax.grad(chain)
    return [("jax.grad, no jit", "us", lambda: _ready(g(x)), 1, 0)]


def _cnn_init(key):
    ks = jax.random.split(key, 4)

    def glorot(k, shape, fan_in, fan_out):
        lim = (6.0 / (fan_in + fan_out)) ** 0.5
        return jax.random.uniform(k, shape, jnp.float32, -lim, lim)
    return {"c1": glorot(ks[0], (5, 5, 1, 32), 25, 800), "b1": jnp.zeros(32),
            "c2": glorot(ks[1], (5, 5, 32, 64), 800, 1600), "b2": jnp.zeros(64),
            "d1": glorot(ks[2], (3136, 1024), 3136, 1024), "b3": jnp.zeros(1024),
            "d2": glorot(ks[3], (1024, 10), 1024, 10), "b4": jnp.zeros(10)}


def _pool(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def _cnn_loss(p, x, y, key):
    h = _pool(jax.nn.relu(_conv2d(x[..., None], p["c1"]) + p["b1"]))
    h = _pool(jax.nn.relu(_conv2d(h, p["c2"]) + p["b2"]))
    h = jax.nn.relu(h.reshape(h.shape[0], -1) @ p["d1"] + p["b3"])
    keep = jax.random.bernoulli(key, 0.7, h.shape)
    h = jnp.where(keep, h / 0.7, 0.0)
    return _xent(h @ p["d2"] + p["b4"], y)


@jax.jit
def _cnn_step(p, m, v, t, x, y, key):
    loss, g = jax.value_and_grad(_cnn_loss)(p, x, y, key)
    b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-7
    t = t + 1
    m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
    v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
    a = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    p = jax.tree_util.tree_map(lambda p, m, v: p - a * m / (jnp.sqrt(v) + eps), p, m, v)
    return p, m, v, t, loss


def cnn(quick):
    warm, timed, bs = common.cnn_batches(quick)
    xs, ys = common.load_fashion((warm + timed) * bs)
    p = _cnn_init(jax.random.PRNGKey(0))
    m = jax.tree_util.tree_map(jnp.zeros_like, p)
    v = jax.tree_util.tree_map(jnp.zeros_like, p)
    t = jnp.zeros((), jnp.float32)
    batches = [(jnp.asarray(xs[i * bs:(i + 1) * bs]), jnp.asarray(ys[i * bs:(i + 1) * bs]))
               for i in range(warm + timed)]
    keys = list(jax.random.split(jax.random.PRNGKey(1), warm + timed))
    for i in range(warm):
        p, m, v, t, loss = _cnn_step(p, m, v, t, *batches[i], keys[i])
    _ready(loss)
    t0 = time.perf_counter()
    for i in range(warm, warm + timed):
        p, m, v, t, loss = _cnn_step(p, m, v, t, *batches[i], keys[i])
    loss = float(loss)
    dt = time.perf_counter() - t0
    return {"samples_per_s": timed * bs / dt, "seconds": dt, "peak_rss_mb": common.peak_rss_mb(),
            "final_loss": loss, "config": "hand-written model NHWC, jit(whole train step), hand-written Adam"}


def _uniform(*shape):
    return jax.random.uniform(jax.random.PRNGKey(0), shape, jnp.float32)


def sort_1m(quick):
    x, f = _uniform(1000000), jax.jit(jnp.sort)
    return [("jit(sort)", "ms", lambda: _ready(f(x)), 1, 0)]


def top_k_1m(quick):
    x, f = _uniform(1000000), jax.jit(lambda v: lax.top_k(v, 100))
    return [("jit(lax.top_k)", "ms", lambda: _ready(f(x)), 1, 0)]


def cumsum_rows(quick):
    x, f = _uniform(1000, 1000), jax.jit(lambda v: jnp.cumsum(v, axis=1))
    return [("jit(cumsum)", "ms", lambda: _ready(f(x)), 1, 0)]


def einsum_attention(quick):
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    q = jax.random.uniform(k1, (8, 8, 512, 64), jnp.float32)
    k = jax.random.uniform(k2, (8, 8, 512, 64), jnp.float32)
    f = jax.jit(lambda a, b: jnp.einsum("bhqd,bhkd->bhqk", a, b))
    return [("jit(einsum)", "ms", lambda: _ready(f(q, k)), 1, 0)]


def dot_product_attention(quick):
    ks = jax.random.split(jax.random.PRNGKey(0), 4)
    q, k, v, w = [jax.random.normal(kk, (8, 512, 8, 64), jnp.float32) for kk in ks]
    g = jax.jit(jax.grad(lambda q, k, v: (jax.nn.dot_product_attention(q, k, v) * w).sum(), argnums=(0, 1, 2)))
    return [("jit(grad(jax.nn.dot_product_attention)) (B, T, H, D)", "ms", lambda: _ready(g(q, k, v)), 1, 0)]


BENCHES = {
    "einsum_attention": einsum_attention,
    "add": add, "matmul_many_eager": matmul_many_eager, "matmul_many_staged": matmul_many_staged,
    "sgemm_1024": _sgemm(1024), "sgemm_2048": _sgemm(2048), "bf16_matmul_2048": bf16_matmul_2048, "linalg_solve_512": linalg_solve_512,
    "conv1_fwd_bwd": _conv(1, 32, 28), "conv2_fwd_bwd": _conv(32, 64, 14),
    "mlp_eager": mlp_eager, "mlp_staged": mlp_staged, "mlp_tape_staged": mlp_tape_staged,
    "while_staged": while_staged, "tape": tape,
    "sort_1m": sort_1m, "top_k_1m": top_k_1m, "cumsum_rows": cumsum_rows,
    "dot_product_attention": dot_product_attention,
}

if __name__ == "__main__":
    common.main(BENCHES, "jax", info, {"cnn": cnn})
