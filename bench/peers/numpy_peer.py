"""numpy_peer.py — NumPy as a reference for the eager small-op benchmark only.

NumPy has no autodiff, so it is not a "peer with autodiff" for the targets;
its 2x2 add is the floor the issue asks moongrad to beat (≤ 0.2 us/op).
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


if __name__ == "__main__":
    common.main({"add": add}, "numpy", info, {})
