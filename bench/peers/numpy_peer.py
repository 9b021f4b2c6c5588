"""numpy_peer.py — NumPy as a reference for the eager small-op benchmark, sort and cumsum.

NumPy has no autodiff, so it is not a "peer with autodiff" for the targets;
its 2x2 add is the floor the issue asks moongrad to beat (≤ 0.2 us/op), and its
sort and cumsum show what a tuned library without autodiff reaches.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import numpy as np  # noqa: E402


def info():
    return {"version": np.__version__}


def add(quick):
    a = np.array([[1., 2.], [3., 4.]], np.float32)
    b = np.array([[5., 6.], [7., 8.]], np.float32)
    n = 10000 if quick else 100000

    def fn():
        for _ in range(n):
            a + b
    return [("a + b", "us", fn, n, 1)]


def _uniform(*shape):
    return np.random.default_rng(0).random(shape, np.float32)


def sort_1m(quick):
    x = _uniform(1000000)
    return [("np.sort", "ms", lambda: np.sort(x), 1, 0)]


def cumsum_rows(quick):
    x = _uniform(1000, 1000)
    return [("np.cumsum", "ms", lambda: np.cumsum(x, axis=1), 1, 0)]


if __name__ == "__main__":
    common.main({"add": add, "sort_1m": sort_1m, "cumsum_rows": cumsum_rows}, "numpy", info, {})
