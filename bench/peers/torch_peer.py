"""torch_peer.py — PyTorch's side of the side-by-side benchmarks (see common.py).

Best configuration on this machine: torch.set_num_threads(2) (and the
OMP/MKL variables set by run.py), flush-to-zero on (torch.set_flush_denormal),
autograd where the benchmark differentiates, TorchScript and torch.compile as
the staged forms (torch.compile is skipped in quick mode: its compile time
alone would use the budget). NCHW layout, PyTorch's native one.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import NotYet  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(common.THREADS)
FTZ = torch.set_flush_denormal(True)


def info():
    return {"version": torch.__version__, "threads": torch.get_num_threads(), "flush_denormal": FTZ,
            "mkldnn": torch.backends.mkldnn.is_available(),
            "config": torch.__config__.parallel_info().splitlines()[0:6]}


def add(quick):
    a = torch.tensor([[1., 2.], [3., 4.]])
    b = torch.tensor([[5., 6.], [7., 8.]])
    n = 10000 if quick else 100000

    def fn():
        for _ in range(n):
            a + b
    return [("eager", "us", fn, n, 1)]


def _mm_chain(x, m):
    for _ in range(100):
        x = torch.matmul(x, m)
    return x


def matmul_many_eager(quick):
    x, m = torch.eye(2), torch.tensor(common.rot2x2())
    return [("eager", "us", lambda: _mm_chain(x, m), 1, 0)]


def matmul_many_staged(quick):
    x, m = torch.eye(2), torch.tensor(common.rot2x2())
    out = []
    with torch.no_grad():
        try:
            ts = torch.jit.trace(_mm_chain, (x, m))
            ts = torch.jit.freeze(ts) if isinstance(ts, torch.jit.ScriptModule) else ts
            out.append(("TorchScript", "us", lambda: ts(x, m), 1, 0))
        except Exception as e:  # noqa: BLE001
            sys.stderr.write("torch.jit.trace unavailable: %s\n" % e)
    if not quick:
        comp = torch.compile(_mm_chain)
        out.append(("torch.compile", "us", lambda: comp(x, m), 1, 0))
    if not out:
        raise NotYet("no staged form available")
    return out


def _sgemm(n):
    def setup(quick):
        g = torch.Generator().manual_seed(0)
        a = torch.rand(n, n, generator=g)
        b = torch.rand(n, n, generator=g)
        c = torch.empty(n, n)
        return [("torch.mm", "GFLOP/s", lambda: torch.mm(a, b, out=c), 2 * n ** 3 / 1e9, 0)]
    return setup


def bf16_matmul_2048(quick):
    n = 2048
    g = torch.Generator().manual_seed(0)
    a = torch.rand(n, n, generator=g).to(torch.bfloat16)
    b = torch.rand(n, n, generator=g).to(torch.bfloat16)
    return [("torch.mm (bfloat16)", "GFLOP/s", lambda: torch.mm(a, b), 2 * n ** 3 / 1e9, 0)]


def linalg_solve_512(quick):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(512, 512, generator=g) + 512 * torch.eye(512)
    b = torch.rand(512, 1, generator=g)
    return [("torch.linalg.solve", "ms", lambda: torch.linalg.solve(a, b), 1, 0)]


def _conv(cin, cout, hw):
    def setup(quick):
        g = torch.Generator().manual_seed(0)
        x = torch.rand(32, cin, hw, hw, generator=g).requires_grad_()
        w = (torch.rand(cout, cin, 5, 5, generator=g) * 0.1).requires_grad_()

        def fn():
            y = F.conv2d(x, w, padding=2)
            torch.autograd.grad(y, (x, w), grad_outputs=torch.ones_like(y))
        return [("NCHW", "ms", fn, 1, 0)]
    return setup


def dot_product_attention(quick):
    g = torch.Generator().manual_seed(0)
    q, k, v = [torch.randn(8, 8, 512, 64, generator=g).requires_grad_() for _ in range(3)]
    w = torch.randn(8, 8, 512, 64, generator=g)

    def fn():
        y = F.scaled_dot_product_attention(q, k, v)
        torch.autograd.grad(y, (q, k, v), grad_outputs=w)
    return [("F.scaled_dot_product_attention (B, H, T, D)", "ms", fn, 1, 0)]


def _mlp_setup():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 784, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    w1 = ((torch.rand(784, 128, generator=g) - 0.5) * 0.15).requires_grad_()
    b1 = torch.zeros(128, requires_grad=True)
    w2 = ((torch.rand(128, 10, generator=g) - 0.5) * 0.4).requires_grad_()
    b2 = torch.zeros(10, requires_grad=True)
    return x, y, [w1, b1, w2, b2]


def _mlp_loss(x, y, w1, b1, w2, b2):
    h = torch.relu(x @ w1 + b1)
    return F.cross_entropy(h @ w2 + b2, y)


def _sgd(params, lr=0.01):
    with torch.no_grad():
        for p in params:
            p.sub_(p.grad, alpha=lr)
            p.grad = None


def mlp_eager(quick):
    x, y, ps = _mlp_setup()

    def step():
        _mlp_loss(x, y, *ps).backward()
        _sgd(ps)
    return [("eager", "us", step, 1, 0)]


def mlp_staged(quick):
    if quick:
        raise NotYet("torch.compile skipped in quick mode (compile time)")
    x, y, ps = _mlp_setup()
    comp = torch.compile(_mlp_loss)

    def step():
        comp(x, y, *ps).backward()
        _sgd(ps)
    return [("torch.compile fwd+bwd, eager SGD", "us", step, 1, 0)]


def mlp_tape_staged(quick):
    if quick:
        raise NotYet("torch.compile skipped in quick mode (compile time)")
    x, y, ps = _mlp_setup()
    comp = torch.compile(_mlp_loss)
    return [("torch.compile fwd, autograd.grad", "us", lambda: torch.autograd.grad(comp(x, y, *ps), ps), 1, 0)]


def _loop(v, n):
    i = torch.zeros((), dtype=torch.int64)
    while bool(i < n):
        v = v * 0.5 + 1.0
        i = i + 1
    return v


def while_staged(quick):
    v, n = torch.ones(2, 2), torch.tensor(1000)
    out = [("eager Python loop", "us", lambda: _loop(v, n), 1, 0)]
    try:
        sc = torch.jit.script(_loop)
        out.append(("TorchScript", "us", lambda: sc(v, n), 1, 0))
    except Exception as e:  # noqa: BLE001
        sys.stderr.write("torch.jit.script unavailable: %s\n" % e)
    return out


def tape(quick):
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(4, 4, generator=g) * 2 - 1).requires_grad_()
    c = torch.rand(4, 4, generator=g) + 0.5

    def fn():
        h = x
        for _ in range(4):
            h = torch.sigmoid(torch.sin(torch.tanh(h * c + 0.5)))
        torch.autograd.grad(h.sum(), x)
    return [("autograd", "us", fn, 1, 0)]


class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 32, 5, padding=2)
        self.c2 = torch.nn.Conv2d(32, 64, 5, padding=2)
        self.d1 = torch.nn.Linear(7 * 7 * 64, 1024)
        self.d2 = torch.nn.Linear(1024, 10)
        self.drop = torch.nn.Dropout(0.3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = self.drop(F.relu(self.d1(x.flatten(1))))
        return self.d2(x)


def cnn(quick):
    warm, timed, bs = common.cnn_batches(quick)
    xs, ys = common.load_fashion((warm + timed) * bs)
    torch.manual_seed(0)
    model = CNN()
    try:
        opt, adam = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True), "Adam(fused=True)"
    except Exception:  # noqa: BLE001
        opt, adam = torch.optim.Adam(model.parameters(), lr=1e-3), "Adam(foreach)"
    batches = [(torch.from_numpy(xs[i * bs:(i + 1) * bs]).reshape(bs, 1, 28, 28),
                torch.from_numpy(ys[i * bs:(i + 1) * bs])) for i in range(warm + timed)]

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        return loss
    for xb, yb in batches[:warm]:
        step(xb, yb)
    t0 = time.perf_counter()
    for xb, yb in batches[warm:]:
        loss = step(xb, yb)
    loss = float(loss)
    dt = time.perf_counter() - t0
    return {"samples_per_s": timed * bs / dt, "seconds": dt, "peak_rss_mb": common.peak_rss_mb(),
            "final_loss": loss, "config": "nn.Module NCHW, " + adam}


def _uniform(*shape):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0))


def sort_1m(quick):
    x = _uniform(1000000)
    return [("torch.sort", "ms", lambda: torch.sort(x), 1, 0)]


def top_k_1m(quick):
    x = _uniform(1000000)
    return [("torch.topk", "ms", lambda: torch.topk(x, 100), 1, 0)]


def cumsum_rows(quick):
    x = _uniform(1000, 1000)
    return [("torch.cumsum", "ms", lambda: torch.cumsum(x, 1), 1, 0)]


def einsum_attention(quick):
    g = torch.Generator().manual_seed(0)
    q = torch.rand(8, 8, 512, 64, generator=g)
    k = torch.rand(8, 8, 512, 64, generator=g)
    return [("torch.einsum", "ms", lambda: torch.einsum("bhqd,bhkd->bhqk", q, k), 1, 0)]


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
    common.main(BENCHES, "torch", info, {"cnn": cnn})
