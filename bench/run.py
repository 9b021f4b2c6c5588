#!/usr/bin/env python3
"""run.py — the side-by-side benchmark driver: moongrad against PyTorch,
TensorFlow and JAX (and NumPy for the 2x2 add), written to bench/RESULTS.md.

    python3 bench/run.py [--quick] [--only a,b] [--out bench/RESULTS.md] [--python bench/.venv/bin/python]

Every system runs as one long-lived worker (bench/peers/moongrad.lua under
build/bin/moongrad, bench/peers/<peer>_peer.py under the venv's Python), so
staged functions are compiled once. For each benchmark the driver asks every
worker for one repetition in turn, round after round, rotating which system
goes first: the systems alternate, so a change in machine load during the run
(other processes) hits them all alike. The first request for a benchmark
builds, warms up and calibrates it (about 0.3 s per repetition). The CNN
training run and the start-up figures use fresh processes (peak RSS and
start-up are per-process figures). BLIS called from C (build/bench/sgemm_blis)
is the sgemm ceiling, run with BLIS's own kernel choice and with
BLIS_ARCH_TYPE=skx. This script only needs the standard library; it runs
under any python3 and starts the peers with the venv's interpreter.

Anything that cannot run is reported, never dropped: a peer that is not
installed, a moongrad op not there yet ("not yet"), a worker that crashed or
timed out.
"""
import argparse
import datetime
import json
import os
import platform
import selectors
import shutil
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
THREADS = 2

# name, title, kind ("time": lower is better, "rate": higher is better), target
# (speed-up of moongrad over the best peer; None: no target), note
BENCHES = [
    ("add", "1. eager 2x2 float32 `a + b`", "time", 3.0,
     "per op; target also <= 0.2 us/op absolute; NumPy (no autodiff) is a reference, not a peer"),
    ("matmul_many_eager", "2a. matmul_many eager: 100 chained 2x2 matmuls", "time", None, "per call"),
    ("matmul_many_staged", "2b. matmul_many staged (tf.function, TorchScript/torch.compile, jax.jit, mg.func)",
     "time", 10.0, "per call"),
    ("sgemm_1024", "3a. sgemm 1024x1024 float32", "rate", 0.95, "target: >= 0.95x BLIS called directly, best setting"),
    ("sgemm_2048", "3b. sgemm 2048x2048 float32", "rate", 0.95, "target: >= 0.95x BLIS called directly, best setting"),
    ("conv1_fwd_bwd", "4a. conv2d fwd+bwd, CNN layer 1: x 32x28x28x1, w 5x5x1x32, same", "time", None,
     "y = conv(x, w); gradients of sum(y) w.r.t. x and w"),
    ("conv2_fwd_bwd", "4b. conv2d fwd+bwd, CNN layer 2: x 32x14x14x32, w 5x5x32x64, same", "time", None,
     "y = conv(x, w); gradients of sum(y) w.r.t. x and w"),
    ("mlp_eager", "6a. MLP 784-128-10 train step, batch 32, eager", "time", None,
     "relu, mean softmax cross-entropy, SGD 0.01; per step"),
    ("mlp_staged", "6b. MLP 784-128-10 train step, batch 32, staged", "time", 2.5, "per step"),
    ("mlp_tape_staged", "6c. MLP 784-128-10 loss staged, tape + gradient around its call, batch 32", "time", None,
     "the forward is a staged function; the tape (or autograd) is outside; gradients of the 4 parameters, "
     "no update; per step"),
    ("while_staged", "7. data-dependent while loop, staged: 1,000 iterations of v = v*0.5 + 1 on 2x2 while i < n",
     "time", None, "per call (n is a tensor argument)"),
    ("linalg_solve_512", "10. linalg.solve 512: float32 A 512x512, b 512x1", "time", 1.0,
     "LU with partial pivoting (LAPACK getrf+getrs or the peer's own); A uniform + 512 I, per call"),
    ("tape", "9. tape overhead: 20-op chain fwd+bwd on 4x4 float32", "time", None,
     "(mul, add, tanh, sin, sigmoid) x4, sum, gradient w.r.t. x; per step"),
    ("sort_1m", "10a. sort of 1M float32 (uniform)", "time", 1.0,
     "ascending values; torch.sort also returns the positions (it has no values-only sort)"),
    ("top_k_1m", "10b. top_k of 1M float32, k = 100", "time", 1.0, "values and indices, sorted"),
    ("cumsum_rows", "10c. cumsum over the rows of a 1000x1000 float32", "time", 1.0, "along the last axis"),
    ("einsum_attention", "10d. einsum of a batched attention contraction: \"bhqd,bhkd->bhqk\", b=8 h=8 q=k=512 d=64, "
     "float32", "time", 1.0, "per call, eager (2.1 GFLOP; issue 17's target: no slower than the best peer)"),
    ("bf16_matmul_2048", "11. bfloat16 matmul 2048", "rate", None,
     "bfloat16 inputs and result, float32 accumulation (moongrad: converted to float32, BLIS sgemm, rounded once)"),
    ("dot_product_attention", "10e. dot_product_attention fwd+bwd: batch 8, 8 heads, sequence 512, head size 64, "
     "float32", "time", 1.0, "inputs q, k, v (8, 512, 8, 64) (torch: (8, 8, 512, 64)); gradients of sum(out * w) w.r.t. q, "
     "k, v; per call"),
]
# moongrad's row for the summary's speed-up where it reports several variants
# and the fastest is not the one to compare (default: the fastest variant)
MOONGRAD_MAIN = {"mlp_tape_staged": "mg.func (default: staged backward)"}
PEERS = ["torch", "tensorflow", "jax"]
REFERENCES = ["numpy"]


def log(*a):
    print("[bench]", *a, flush=True)


# ---- environment ----------------------------------------------------------------

def child_env(quick):
    env = dict(os.environ)
    env.update({
        "OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS), "OPENBLAS_NUM_THREADS": str(THREADS),
        "BLIS_NUM_THREADS": str(THREADS), "TF_NUM_INTRAOP_THREADS": str(THREADS), "TF_NUM_INTEROP_THREADS": "1",
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=%d" % THREADS,
        "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore", "PYTHONDONTWRITEBYTECODE": "1", "BENCH_THREADS": str(THREADS),
        "BENCH_QUICK": "1" if quick else "0", "JAX_PLATFORMS": "cpu",
        "LUA_PATH": "%s/stdlib/?.lua;%s/stdlib/?/init.lua;%s/?.lua;;" % (ROOT, ROOT, ROOT),
    })
    return env


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


def machine_info():
    lscpu = sh("lscpu")
    fields = {}
    for line in lscpu.splitlines():
        k, _, v = line.partition(":")
        fields[k.strip()] = v.strip()
    flags = fields.get("Flags", "").split()
    return {
        "cpu": fields.get("Model name", platform.processor()),
        "vendor": fields.get("Vendor ID", "?"),
        "family_model": "family %s model %s" % (fields.get("CPU family", "?"), fields.get("Model", "?")),
        "cpus": fields.get("CPU(s)", "?"), "hypervisor": fields.get("Hypervisor vendor", "none"),
        "avx512": "avx512f" in flags, "avx2": "avx2" in flags,
        "l2": fields.get("L2 cache", "?"), "l3": fields.get("L3 cache", "?"),
        "kernel": platform.release(), "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
        "mem": sh("free -g | awk '/Mem:/{print $2\" GiB\"}'"),
        "commit": sh("git -C %s rev-parse --short HEAD" % ROOT) + (" (+ uncommitted changes)"
                                                                   if sh("git -C %s status --porcelain" % ROOT) else ""),
    }


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


# ---- workers --------------------------------------------------------------------

class Worker:
    """One system's long-lived worker process and its line protocol."""

    def __init__(self, system, argv, env, logdir, timeout):
        self.system, self.argv, self.timeout = system, argv, timeout
        self.info, self.dead, self.buf = None, None, b""
        self.errlog = open(os.path.join(logdir, "%s.stderr.log" % system), "wb")
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errlog,
                                         env=env, cwd=ROOT)
        except OSError as e:
            self.dead = "could not start %s: %s" % (argv[0], e)
            return
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        line = self._readline("READY", 180)
        if line is not None:
            self.info = json.loads(line)["info"]

    def _readline(self, tag, timeout):
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace")
                if text.startswith(tag + " "):
                    return text[len(tag) + 1:]
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill("timed out after %d s waiting for %s" % (timeout, tag))
                return None
            if not self.sel.select(left):
                continue
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                self.proc.wait()
                self.kill("exited with status %s (see bench/out/%s.stderr.log)" % (self.proc.returncode, self.system))
                return None
            self.buf += chunk

    def kill(self, why):
        self.dead = why
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def request(self, bench, reps=1):
        if self.dead:
            return {"status": "error", "msg": self.dead}
        try:
            self.proc.stdin.write(("%s %d\n" % (bench, reps)).encode())
            self.proc.stdin.flush()
        except OSError as e:
            self.kill("pipe closed: %s" % e)
            return {"status": "error", "msg": self.dead}
        line = self._readline("RESULT", self.timeout)
        if line is None:
            msg = self.dead
            return {"status": "error", "msg": msg}
        return json.loads(line)

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.errlog.close()


def run_once(argv, env, timeout, logpath):
    """A fresh process that prints one RESULT line."""
    try:
        with open(logpath, "ab") as err:
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=err, env=env, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "error", "msg": "timed out after %d s" % timeout}
    except OSError as e:
        return {"status": "error", "msg": str(e)}
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"status": "error", "msg": "no result (exit status %d; see %s)" % (p.returncode, logpath)}


# ---- the run ---------------------------------------------------------------------

def peer_python(args):
    py = args.python or os.path.join(HERE, ".venv", "bin", "python")
    return py if os.path.exists(py) else None


def installed(py, module):
    if not py:
        return False, "bench/.venv is absent (run `make bench` without QUICK=1 once to create it)"
    # find_spec, not import: importing TensorFlow alone takes seconds; a peer
    # that is installed but broken fails when its worker starts, and says so
    r = subprocess.run([py, "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec(%r) is None)" % module],
                       capture_output=True, text=True, timeout=60)
    if r.returncode:
        log_path = os.path.join(HERE, ".venv", "install-%s.log" % module)
        return False, "%s is not installed in bench/.venv%s" % (
            module, " (see bench/.venv/install-%s.log)" % module if os.path.exists(log_path) else "")
    return True, ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None, help="default bench/RESULTS.md; with --only bench/out/RESULTS.only.md")
    ap.add_argument("--python", default=None)
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--only", default=None, help="comma-separated benchmark names (debugging)")
    args = ap.parse_args()
    if args.out is None:   # a partial run must not overwrite the full report
        args.out = os.path.join(HERE, "out", "RESULTS.only.md") if args.only else os.path.join(HERE, "RESULTS.md")
    quick = args.quick
    rounds = 2 if quick else 7
    env = child_env(quick)
    build = args.build if os.path.isabs(args.build) else os.path.join(ROOT, args.build)
    logdir = os.path.join(HERE, "out")
    os.makedirs(logdir, exist_ok=True)
    for f in os.listdir(logdir):
        if f.endswith(".log"):
            os.remove(os.path.join(logdir, f))
    t_start = time.time()
    res = {"quick": quick, "rounds": rounds, "machine": machine_info(), "load_before": loadavg(),
           "uptime_before": sh("uptime"),
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (library default)"), "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
           "systems": {}, "benches": {}, "cnn": {}, "startup": {}, "blis": {}, "moongrad_main": MOONGRAD_MAIN}
    only = set(args.only.split(",")) if args.only else None

    # who can run
    moongrad = os.path.join(build, "bin", "moongrad")
    py = peer_python(args)
    res["python"] = sh("%s --version" % py) if py else "none"
    avail = {}
    avail["moongrad"] = (os.access(moongrad, os.X_OK), "%s is not built (run make)" % moongrad)
    for system, module in [("torch", "torch"), ("tensorflow", "tensorflow"), ("jax", "jax"), ("numpy", "numpy")]:
        avail[system] = installed(py, module)
    systems = [s for s in ["moongrad"] + PEERS + REFERENCES if avail[s][0]]
    for s, (ok, why) in avail.items():
        res["systems"][s] = {"available": ok, "why": why}
        log("%-10s %s" % (s, "ok" if ok else "UNAVAILABLE: " + why))

    timeout = 300 if quick else 900
    workers = {}
    for s in systems:
        argv = [moongrad, os.path.join(HERE, "peers", "moongrad.lua"), "serve"] if s == "moongrad" else \
            [py, os.path.join(HERE, "peers", "%s_peer.py" % ("tf" if s == "tensorflow" else s)), "serve"]
        log("starting", s)
        w = Worker(s, argv, env, logdir, timeout)
        workers[s] = w
        res["systems"][s]["info"] = w.info
        if w.dead:
            res["systems"][s]["why"] = w.dead
            log(s, "failed to start:", w.dead)

    # alternating rounds
    blis = os.path.join(build, "bench", "sgemm_blis")
    order = [s for s in systems]
    for name, title, kind, target, note in BENCHES:
        if only and name not in only:
            continue
        log("==", name)
        b = res["benches"][name] = {"runs": {}}
        for r in range(rounds):
            k = r % len(order)
            for s in order[k:] + order[:k]:
                out = workers[s].request(name)
                run = b["runs"].setdefault(s, {"status": out["status"], "msg": out.get("msg"), "results": {},
                                               "units": {}, "n": {}})
                if out["status"] != "ok":
                    run["status"], run["msg"] = out["status"], out.get("msg")
                    continue
                for v, vals in out["results"].items():
                    run["results"].setdefault(v, []).extend(vals)
                    run["units"][v] = out["units"][v]
                    run["n"][v] = out["n"][v]
            if name.startswith("sgemm_"):
                n = int(name.split("_")[1])
                for arch in ["default", "skx"]:
                    e = dict(env)
                    e.pop("BLIS_ARCH_TYPE", None)
                    if arch == "skx":
                        e["BLIS_ARCH_TYPE"] = "skx"
                    entry = res["blis"].setdefault(name, {}).setdefault(arch, {"gflops": [], "arch": None, "msg": None})
                    if not os.access(blis, os.X_OK):
                        entry["msg"] = "%s is not built" % blis
                        continue
                    try:
                        p = subprocess.run([blis, str(n), "1", str(THREADS)], capture_output=True, text=True,
                                           env=e, timeout=120)
                        j = json.loads(p.stdout)
                        entry["gflops"].extend(j["gflops"])
                        entry["arch"] = j["arch"]
                    except Exception as ex:  # noqa: BLE001
                        entry["msg"] = "sgemm_blis failed: %s" % ex
        for s in order:
            run = b["runs"].get(s)
            if run and run["status"] == "ok":
                log("  %-10s %s" % (s, ", ".join("%s %.4g %s" % (v, statistics.median(x), run["units"][v])
                                                  for v, x in run["results"].items())))
            elif run:
                log("  %-10s %s: %s" % (s, run["status"], run["msg"]))
    for w in workers.values():
        w.close()

    # CNN training, fresh processes, alternating
    if not only or "cnn" in only:
        log("== cnn")
        cnn_rounds = 1 if quick else int(os.environ.get("BENCH_CNN_ROUNDS", "2"))
        for r in range(cnn_rounds):
            for s in [x for x in systems if x != "numpy"]:
                argv = [moongrad, os.path.join(HERE, "peers", "moongrad.lua"), "once", "cnn"] if s == "moongrad" else \
                    [py, os.path.join(HERE, "peers", "%s_peer.py" % ("tf" if s == "tensorflow" else s)), "once", "cnn"]
                out = run_once(argv, env, 600 if not quick else 150, os.path.join(logdir, "%s.cnn.stderr.log" % s))
                res["cnn"].setdefault(s, []).append(out)
                log("  %-10s %s" % (s, out.get("samples_per_s") and "%.0f samples/s, peak RSS %.0f MB" % (
                    out["samples_per_s"], out["peak_rss_mb"]) or "%s: %s" % (out["status"], out.get("msg"))))

    # the character transformer of examples/char_transformer.lua, trained by model.fit in moongrad and in
    # Keras 3 on each backend that is installed (the quick run: TensorFlow's alone), fresh processes
    if not only or "char_transformer" in only:
        log("== char_transformer")
        res["char_transformer"] = char_transformer(moongrad, py, avail, env, quick, logdir)

    # start-up
    if not only or "startup" in only:
        log("== startup")
        cmds = startup_commands(moongrad, py, avail)
        reps = 1 if quick else 5
        for r in range(reps):
            for key, argv in cmds:
                t0 = time.perf_counter()
                try:
                    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd="/tmp")
                    dt = time.perf_counter() - t0
                    ok = p.returncode == 0
                except Exception as e:  # noqa: BLE001
                    ok, dt, p = False, 0, None
                    err = str(e)
                e = res["startup"].setdefault(key, {"ms": [], "msg": None, "argv": argv})
                if ok:
                    e["ms"].append(dt * 1e3)
                else:
                    e["msg"] = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1] if p else err
        for key, e in res["startup"].items():
            log("  %-28s %s" % (key, "%.1f ms" % statistics.median(e["ms"]) if e["ms"] else e["msg"]))

    # how far past its budget an embedded runtime's call runs (issue 15): the program prints its section
    if not only or "overshoot" in only:
        ov = os.path.join(build, "bench", "embed_overshoot")
        if os.access(ov, os.X_OK):
            log("== overshoot")
            try:
                p = subprocess.run([ov, "--markdown"] + (["--quick"] if quick else []), capture_output=True,
                                   text=True, env=env, timeout=1200)
                if p.returncode == 0:
                    res["overshoot_md"] = p.stdout
                else:
                    res["overshoot_msg"] = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1]
            except Exception as ex:  # noqa: BLE001
                res["overshoot_msg"] = "embed_overshoot failed: %s" % ex
        else:
            res["overshoot_msg"] = "%s is not built" % ov

    # a policy call from a graph file with no Lua (issue 19) beside mg_call_into: the program prints both
    if not only or "graph_frame" in only:
        gf = os.path.join(build, "bench", "graph_frame")
        if os.access(gf, os.X_OK):
            log("== graph file policy call")
            try:
                p = subprocess.run([gf] + (["--quick"] if quick else []), capture_output=True, text=True, env=env,
                                   timeout=600)
                if p.returncode == 0:
                    res["graph_frame"] = [l.split("graph_frame: ", 1)[-1] for l in p.stdout.splitlines() if l.strip()]
                    for l in res["graph_frame"]:
                        log("  " + l)
                else:
                    res["graph_frame_msg"] = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1]
            except Exception as ex:  # noqa: BLE001
                res["graph_frame_msg"] = "graph_frame failed: %s" % ex
        else:
            res["graph_frame_msg"] = "%s is not built" % gf

    res["load_after"] = loadavg()
    res["uptime_after"] = sh("uptime")
    res["elapsed_s"] = time.time() - t_start
    with open(os.path.join(logdir, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    import report
    with open(args.out, "w") as f:
        f.write(report.render(res, BENCHES, PEERS))
    log("wrote %s (%.0f s)" % (os.path.relpath(args.out, ROOT), res["elapsed_s"]))


KERAS_BACKENDS = ["tensorflow", "jax", "torch"]


def char_transformer(moongrad, py, avail, env, quick, logdir):
    """{system: [result]} of bench/peers/{moongrad,keras}_char_transformer (same data, model, training)."""
    out = {}
    runs = []
    if avail["moongrad"][0]:
        runs.append(("moongrad", [moongrad, os.path.join(HERE, "peers", "moongrad_char_transformer.lua")], env))
    keras_ok, why = installed(py, "keras")
    for backend in KERAS_BACKENDS[:1] if quick else KERAS_BACKENDS:
        key = "keras/" + backend
        if not keras_ok or not avail[backend][0]:
            out[key] = [{"status": "error", "msg": why or avail[backend][1]}]
            continue
        e = dict(env)
        e["KERAS_BACKEND"] = backend
        runs.append((key, [py, os.path.join(HERE, "peers", "keras_char_transformer.py")], e))
    for key, argv, e in runs:
        r = run_once(argv, e, 600 if quick else 1800, os.path.join(logdir, "%s.char_transformer.stderr.log"
                                                               % key.replace("/", "_")))
        out.setdefault(key, []).append(r)
        log("  %-18s %s" % (key, "%.0f tokens/s, final loss %.3f, validation perplexity %.2f" % (
            r["tokens_per_s"], r["final_loss"], r["val_perplexity"]) if r.get("status") == "ok" else
            "%s: %s" % (r.get("status"), r.get("msg"))))
    return out


def startup_commands(moongrad, py, avail):
    cmds = []
    if avail["moongrad"][0]:
        cmds += [("moongrad: first result", [moongrad, "-e", "print((mg.tensor({1, 2}) + 1):sum():item())"]),
                 ("moongrad: load only", [moongrad, "-e", ""])]
    lua = shutil.which("lua5.4")
    if lua:
        cmds.append(("lua5.4 -e '' (reference)", [lua, "-e", ""]))
    if py:
        cmds.append(("python -c pass (reference)", [py, "-c", "pass"]))
    one = {
        "torch": "import torch; print((torch.tensor([1., 2.]) + 1).sum().item())",
        "tensorflow": "import tensorflow as tf; print(float(tf.reduce_sum(tf.constant([1., 2.]) + 1)))",
        "jax": "import jax.numpy as jnp; print(float((jnp.array([1., 2.]) + 1).sum()))",
    }
    for s in PEERS:
        if avail[s][0]:
            cmds.append(("%s: first result" % s, [py, "-c", one[s]]))
            cmds.append(("%s: import only" % s, [py, "-c", "import %s" % s]))
    return cmds


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
