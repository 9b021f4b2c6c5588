"""tf_peer.py — TensorFlow's side of the side-by-side benchmarks (see common.py).

Best configuration on this machine: 2 intra-op threads, 1 inter-op thread
(TF_NUM_INTRAOP_THREADS/TF_NUM_INTEROP_THREADS from run.py and the
tf.config.threading calls below), oneDNN on (TF's default on x86). TF flushes
denormals itself inside its kernels' thread pools (there is no user switch).
Staged forms: tf.function, and tf.function(jit_compile=True) (XLA) where it
applies. The CNN is the Keras model with a tf.function train step (the same
pre-made batches every system gets, no input pipeline in the timing).
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import NotYet  # noqa: E402

import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(common.THREADS)
tf.config.threading.set_inter_op_parallelism_threads(1)


def info():
    return {"version": tf.__version__, "keras": getattr(tf.keras, "__version__", "?"),
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")}


def add(quick):
    a = tf.constant([[1., 2.], [3., 4.]])
    b = tf.constant([[5., 6.], [7., 8.]])
    n = 10000 if quick else 100000

    def fn():
        for _ in range(n):
            a + b
    return [("eager", "us", fn, n, 1)]


def _mm_chain(x, m):
    for _ in range(100):
        x = tf.matmul(x, m)
    return x


def matmul_many_eager(quick):
    x, m = tf.eye(2), tf.constant(common.rot2x2())
    return [("eager", "us", lambda: _mm_chain(x, m), 1, 0)]


def matmul_many_staged(quick):
    x, m = tf.eye(2), tf.constant(common.rot2x2())
    f = tf.function(_mm_chain)
    out = [("tf.function", "us", lambda: f(x, m).numpy(), 1, 0)]
    if not quick:
        fx = tf.function(_mm_chain, jit_compile=True)
        out.append(("tf.function(jit_compile)", "us", lambda: fx(x, m).numpy(), 1, 0))
    return out


def _sgemm(n):
    def setup(quick):
        a = tf.random.uniform((n, n), seed=1)
        b = tf.random.uniform((n, n), seed=2)
        return [("tf.matmul", "GFLOP/s", lambda: tf.matmul(a, b).numpy(), 2 * n ** 3 / 1e9, 0)]
    return setup


def bf16_matmul_2048(quick):
    n = 2048
    a = tf.cast(tf.random.uniform((n, n), seed=1), tf.bfloat16)
    b = tf.cast(tf.random.uniform((n, n), seed=2), tf.bfloat16)
    return [("tf.matmul (bfloat16)", "GFLOP/s", lambda: tf.matmul(a, b).numpy(), 2 * n ** 3 / 1e9, 0)]


def linalg_solve_512(quick):
    a = tf.random.uniform((512, 512), seed=1) + 512 * tf.eye(512)
    b = tf.random.uniform((512, 1), seed=2)
    return [("tf.linalg.solve", "ms", lambda: tf.linalg.solve(a, b).numpy(), 1, 0)]


def _conv(cin, cout, hw):
    def setup(quick):
        x = tf.random.uniform((32, hw, hw, cin), seed=1)
        w = tf.random.uniform((5, 5, cin, cout), seed=2) * 0.1

        def grads(x, w):
            with tf.GradientTape() as t:
                t.watch([x, w])
                y = tf.nn.conv2d(x, w, 1, "SAME")
            return t.gradient(y, [x, w])
        eager = grads
        staged = tf.function(grads)
        return [("eager NHWC", "ms", lambda: [g.numpy() for g in eager(x, w)], 1, 0),
                ("tf.function NHWC", "ms", lambda: [g.numpy() for g in staged(x, w)], 1, 0)]
    return setup


def _mlp_setup():
    g = tf.random.Generator.from_seed(0)
    x = g.uniform((32, 784))
    y = g.uniform((32,), 0, 10, dtype=tf.int64)
    ps = [tf.Variable((g.uniform((784, 128)) - 0.5) * 0.15), tf.Variable(tf.zeros(128)),
          tf.Variable((g.uniform((128, 10)) - 0.5) * 0.4), tf.Variable(tf.zeros(10))]
    return x, y, ps


def _mlp_step(x, y, ps):
    w1, b1, w2, b2 = ps
    with tf.GradientTape() as t:
        h = tf.nn.relu(x @ w1 + b1)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, h @ w2 + b2))
    gs = t.gradient(loss, ps)
    for p, gr in zip(ps, gs):
        p.assign_sub(0.01 * gr)
    return loss


def mlp_eager(quick):
    x, y, ps = _mlp_setup()
    return [("eager", "us", lambda: _mlp_step(x, y, ps), 1, 0)]


def mlp_staged(quick):
    x, y, ps = _mlp_setup()
    f = tf.function(lambda x, y: _mlp_step(x, y, ps))
    out = [("tf.function", "us", lambda: f(x, y).numpy(), 1, 0)]
    if not quick:
        fx = tf.function(lambda x, y: _mlp_step(x, y, ps), jit_compile=True)
        out.append(("tf.function(jit_compile)", "us", lambda: fx(x, y).numpy(), 1, 0))
    return out


def _mlp_loss(x, y, ps):
    w1, b1, w2, b2 = ps
    h = tf.nn.relu(x @ w1 + b1)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, h @ w2 + b2))


def mlp_tape_staged(quick):
    x, y, ps = _mlp_setup()

    def grads(f):
        def fn():
            with tf.GradientTape() as t:       # the Variables are watched automatically
                loss = f(x, y)
            return [g.numpy() for g in t.gradient(loss, ps)]
        return fn
    out = [("tf.function under GradientTape", "us", grads(tf.function(lambda x, y: _mlp_loss(x, y, ps))), 1, 0)]
    if not quick:
        fx = tf.function(lambda x, y: _mlp_loss(x, y, ps), jit_compile=True)
        out.append(("tf.function(jit_compile) under GradientTape", "us", grads(fx), 1, 0))
    return out


@tf.function
def _loop(v, n):
    i = tf.constant(0, tf.int64)
    while i < n:                       # AutoGraph: a tf.while_loop
        v = v * 0.5 + 1.0
        i += 1
    return v


def while_staged(quick):
    v, n = tf.ones((2, 2)), tf.constant(1000, tf.int64)
    return [("tf.function+AutoGraph", "us", lambda: _loop(v, n).numpy(), 1, 0)]


def tape(quick):
    x = tf.random.uniform((4, 4), -1, 1, seed=1)
    c = tf.random.uniform((4, 4), 0.5, 1.5, seed=2)

    def fn():
        with tf.GradientTape() as t:
            t.watch(x)
            h = x
            for _ in range(4):
                h = tf.sigmoid(tf.sin(tf.tanh(h * c + 0.5)))
            y = tf.reduce_sum(h)
        t.gradient(y, x)
    return [("GradientTape", "us", fn, 1, 0)]


def cnn(quick):
    warm, timed, bs = common.cnn_batches(quick)
    xs, ys = common.load_fashion((warm + timed) * bs)
    keras = tf.keras
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28)), keras.layers.Reshape((28, 28, 1)),
        keras.layers.Conv2D(32, 5, padding="same", activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 5, padding="same", activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(), keras.layers.Dense(1024, activation="relu"), keras.layers.Dropout(0.3),
        keras.layers.Dense(10)])
    opt = keras.optimizers.Adam(1e-3)
    lossf = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    batches = [(tf.constant(xs[i * bs:(i + 1) * bs]), tf.constant(ys[i * bs:(i + 1) * bs]))
               for i in range(warm + timed)]

    @tf.function
    def step(xb, yb):
        with tf.GradientTape() as t:
            loss = lossf(yb, model(xb, training=True))
        opt.apply_gradients(zip(t.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss
    for xb, yb in batches[:warm]:
        step(xb, yb)
    t0 = time.perf_counter()
    for xb, yb in batches[warm:]:
        loss = step(xb, yb)
    loss = float(loss)
    dt = time.perf_counter() - t0
    return {"samples_per_s": timed * bs / dt, "seconds": dt, "peak_rss_mb": common.peak_rss_mb(),
            "final_loss": loss, "config": "Keras Sequential NHWC, tf.function train step, Keras Adam"}


def sort_1m(quick):
    x = tf.random.uniform((1000000,), seed=1)
    return [("tf.sort", "ms", lambda: tf.sort(x), 1, 0)]


def top_k_1m(quick):
    x = tf.random.uniform((1000000,), seed=1)
    return [("tf.math.top_k", "ms", lambda: tf.math.top_k(x, 100), 1, 0)]


def cumsum_rows(quick):
    x = tf.random.uniform((1000, 1000), seed=1)
    return [("tf.math.cumsum", "ms", lambda: tf.math.cumsum(x, axis=1), 1, 0)]


def einsum_attention(quick):
    q = tf.random.uniform((8, 8, 512, 64), seed=1)
    k = tf.random.uniform((8, 8, 512, 64), seed=2)
    return [("tf.einsum", "ms", lambda: tf.einsum("bhqd,bhkd->bhqk", q, k).numpy(), 1, 0)]


def dot_product_attention(quick):
    try:
        import keras  # noqa: PLC0415
        if not keras.__version__.startswith("3"):
            raise ImportError(keras.__version__)
        attention = keras.ops.dot_product_attention
    except Exception as e:  # noqa: BLE001
        raise NotYet("keras 3 (keras.ops.dot_product_attention) is not installed: %s" % e) from e
    g = tf.random.Generator.from_seed(0)
    q, k, v, w = [g.normal((8, 512, 8, 64)) for _ in range(4)]

    def grads(q, k, v):
        with tf.GradientTape() as t:
            t.watch([q, k, v])
            y = tf.reduce_sum(attention(q, k, v) * w)
        return t.gradient(y, [q, k, v])
    staged = tf.function(grads)
    return [("eager keras.ops.dot_product_attention", "ms", lambda: [x.numpy() for x in grads(q, k, v)], 1, 0),
            ("tf.function", "ms", lambda: [x.numpy() for x in staged(q, k, v)], 1, 0)]


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
    common.main(BENCHES, "tensorflow", info, {"cnn": cnn})
