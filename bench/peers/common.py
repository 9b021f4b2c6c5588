"""common.py — the worker side of the side-by-side benchmarks (bench/run.py).

Every system (moongrad, torch, tensorflow, jax, numpy) runs as one long-lived
worker process so that compiled/staged functions are built once and the
driver can alternate the systems repetition by repetition. The protocol is
line based: the driver writes "<bench> <reps>" on stdin; the worker answers one
line "RESULT <json>" on stdout with, per variant, the per-unit figure of each
repetition. The first request for a benchmark also builds it and warms it up
(calibrating how many calls make one repetition, so that a repetition lasts
about TARGET seconds whatever the system's speed). "cnn" and the start-up
figures run in fresh processes instead (`worker.py once cnn`), because peak
RSS is a per-process figure.

A peer module defines BENCHES: {name: setup_fn}. setup_fn(quick) returns a
list of (variant, unit, fn, per_call_units, fixed_n) or raises NotYet.
fn() runs one call; the figure of one repetition is
elapsed / (n * per_call_units) in the unit (us, ms) or, for "GFLOP/s" and
"samples/s", units / elapsed.
"""
import json
import os
import resource
import sys
import time
import traceback

QUICK = os.environ.get("BENCH_QUICK") == "1"
TARGET = 0.06 if QUICK else 0.3      # seconds per repetition
THREADS = int(os.environ.get("BENCH_THREADS", "2"))


class NotYet(Exception):
    """The system cannot run this benchmark (feature missing)."""


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _scale(unit):
    return {"us": 1e6, "ms": 1e3, "s": 1.0}.get(unit)


def _calibrate(fn, fixed_n):
    fn()                                   # first call: compile/trace
    if fixed_n:
        fn()
        return fixed_n
    # the best of 3 trials: a stall (other processes, page faults) during
    # calibration must not shrink a repetition to a handful of calls
    n = 1
    while True:
        dt = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            dt = min(dt, time.perf_counter() - t0)
        if dt >= TARGET / 4 or n >= 1 << 22:
            return max(1, int(n * TARGET / max(dt, 1e-9)))
        n *= 4 if dt < TARGET / 40 else 2


def _figure(unit, dt, n, per_call):
    s = _scale(unit)
    if s is not None:
        return dt * s / (n * per_call)
    return n * per_call / dt               # rates: GFLOP/s, samples/s


def serve(benches, system, info):
    """Reads requests from stdin until EOF; see the module comment."""
    prepared = {}
    out = sys.stdout
    out.write("READY " + json.dumps({"system": system, "info": info}) + "\n")
    out.flush()
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        name, reps = parts[0], int(parts[1]) if len(parts) > 1 else 1
        res = {"bench": name, "system": system}
        try:
            if name not in prepared:
                if name not in benches:
                    raise NotYet("no such benchmark for " + system)
                variants = benches[name](QUICK)
                prepared[name] = [(v, u, fn, per, _calibrate(fn, fixed)) for (v, u, fn, per, fixed) in variants]
            res["status"] = "ok"
            res["results"], res["units"], res["n"] = {}, {}, {}
            for (variant, unit, fn, per, n) in prepared[name]:
                vals = []
                for _ in range(reps):
                    t0 = time.perf_counter()
                    for _ in range(n):
                        fn()
                    vals.append(_figure(unit, time.perf_counter() - t0, n, per))
                res["results"][variant] = vals
                res["units"][variant] = unit
                res["n"][variant] = n
        except NotYet as e:
            res["status"], res["msg"] = "notyet", str(e)
            prepared.pop(name, None)
            benches[name] = _raise_notyet(str(e))
        except Exception as e:             # noqa: BLE001 — reported, never fatal
            res["status"], res["msg"] = "error", "%s: %s" % (type(e).__name__, e)
            sys.stderr.write(traceback.format_exc())
            benches[name] = _raise_notyet("failed earlier: " + res["msg"])
            prepared.pop(name, None)
        out.write("RESULT " + json.dumps(res) + "\n")
        out.flush()


def _raise_notyet(msg):
    def f(quick):
        raise NotYet(msg)
    return f


def main(benches, system, info_fn, once_fns):
    """`worker.py serve` or `worker.py once <name>` (prints one RESULT line)."""
    mode = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if mode == "once":
        name = sys.argv[2]
        try:
            res = once_fns[name](QUICK)
            res.update({"bench": name, "system": system, "status": "ok"})
        except NotYet as e:
            res = {"bench": name, "system": system, "status": "notyet", "msg": str(e)}
        except Exception as e:  # noqa: BLE001
            sys.stderr.write(traceback.format_exc())
            res = {"bench": name, "system": system, "status": "error", "msg": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write("RESULT " + json.dumps(res) + "\n")
        return
    serve(benches, system, info_fn())


# ---- shared data and model constants -----------------------------------------------

FASHION = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def load_fashion(n):
    """The first n training images (float32 in [0, 1], shape (n, 28, 28)) and labels (int64)."""
    import gzip
    import numpy as np
    with gzip.open(os.path.join(FASHION, "train-images-idx3-ubyte.gz"), "rb") as f:
        x = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    with gzip.open(os.path.join(FASHION, "train-labels-idx1-ubyte.gz"), "rb") as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, offset=8)[:n]
    return (x.astype(np.float32) / 255.0), y.astype(np.int64)


def cnn_batches(quick):
    """(warm-up batches, timed batches, batch size) of the CNN training benchmark."""
    return (2, 5, 32) if quick else (10, 300, 32)


def rot2x2():
    """A rotation matrix: 100 chained products stay bounded (no overflow, no denormals)."""
    import math
    c, s = math.cos(0.1), math.sin(0.1)
    return [[c, -s], [s, c]]
