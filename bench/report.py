"""report.py — turns bench/run.py's results (bench/out/results.json) into
bench/RESULTS.md: the summary against the targets of issue 9, then one table
per benchmark with every system's median and min–max.

    python3 bench/report.py [bench/out/results.json] [bench/RESULTS.md]   re-render

Ratios are ratios of medians, written as moongrad's speed-up over the best peer
(best: the fastest variant of torch, tensorflow or jax; NumPy and BLIS are
references, not peers): above 1 moongrad is faster. A target "≥ 3×" is met
when the speed-up is at least 3; when it is missed the table says by what
factor moongrad still has to improve.
"""
import json
import os
import statistics
import sys

TIME_UNITS = {"us", "ms", "s"}


def fmt(x):
    if x is None:
        return "—"
    ax = abs(x)
    if ax >= 1000:
        return "{:,.0f}".format(x)
    if ax >= 100:
        return "%.0f" % x
    if ax >= 10:
        return "%.1f" % x
    if ax >= 1:
        return "%.2f" % x
    return "%.3g" % x


def med(xs):
    return statistics.median(xs) if xs else None


def tfmt(t):
    return "%g" % t


def ufmt(unit):
    return "µs" if unit == "us" else unit


def lower_better(unit):
    return unit in TIME_UNITS


def best_of(runs, systems, only=None):
    """(median, system, variant, unit) of the best variant among `systems`
    (of the variant named `only` when given and present)."""
    best = None
    for s in systems:
        run = runs.get(s)
        if not run or run.get("status") != "ok":
            continue
        for v, vals in run["results"].items():
            if only and only in run["results"] and v != only:
                continue
            m, unit = med(vals), run["units"][v]
            if m is None:
                continue
            if best is None or (m < best[0] if lower_better(unit) else m > best[0]):
                best = (m, s, v, unit)
    return best


def speedup(mg, peer, unit):
    if not mg or not peer or mg[0] <= 0 or peer[0] <= 0:
        return None
    return peer[0] / mg[0] if lower_better(unit) else mg[0] / peer[0]


def verdict(x, target):
    if target is None:
        return "no target"
    if x is None:
        return "not measured"
    if x >= target:
        return "**met** (%s× ≥ %s×)" % (fmt(x), tfmt(target))
    return "**missed** by %s× (%s× of %s×)" % (fmt(target / x), fmt(x), tfmt(target))


def mg_status(runs):
    run = runs.get("moongrad")
    if run is None:
        return "not run"
    if run.get("status") == "notyet":
        return "not yet (%s)" % run.get("msg")
    if run.get("status") != "ok":
        return "error (%s)" % run.get("msg")
    return None


def render(res, benches, peers):
    L = []
    w = L.append
    m = res["machine"]
    w("# moongrad beside PyTorch, TensorFlow and JAX")
    w("")
    w("Written by bench/run.py (`make bench%s`) on %s, commit %s, in %.0f s. %s" % (
        " QUICK=1" if res["quick"] else "", res["date"], m["commit"], res["elapsed_s"],
        "QUICK mode: fewer repetitions and shorter runs; the figures only show that the harness works."
        if res["quick"] else ""))
    w("How to run it and what the figures mean: doc/performance.md.")
    w("")
    w("## Machine, load and settings")
    w("")
    w("- CPU: **%s** (%s, %s), %s vCPUs, hypervisor %s, AVX2 %s, AVX-512 %s, L2 %s, L3 %s; %s; kernel %s; %s RAM." % (
        m["cpu"], m["vendor"], m["family_model"], m["cpus"], m["hypervisor"], "yes" if m["avx2"] else "no",
        "yes" if m["avx512"] else "no", m["l2"], m["l3"], m["os"], m["kernel"], m["mem"]))
    if m["vendor"] == "AuthenticAMD":
        w("- **Not the machine shared/NOTES.md describes** (a 2-vCPU Xeon with AVX-512 at ~4.15 GHz): this is an "
          "AMD EPYC VM. Its figures (and the targets' reference numbers, taken there) do not carry over one to one.")
    w("- Load average before the run: %s; after: %s (`uptime`: %s). %s" % (
        res["load_before"], res["load_after"], res.get("uptime_after", "?"),
        "**Other processes were competing for the 2 CPUs during this run**, so absolute figures are low and "
        "noisy — above all the 2-thread ones (a thread descheduled at an OpenMP barrier stalls the others); "
        "the systems alternate repetition by repetition, so the ratios are fairer than the absolute numbers. "
        "Rerun on a quiet machine for reference figures."
        if float(res["load_before"].split()[0]) > 1.0 or float(res["load_after"].split()[0]) > 1.0 else ""))
    w("- Threads: 2 for every system — OMP_NUM_THREADS=MKL_NUM_THREADS=OPENBLAS_NUM_THREADS=BLIS_NUM_THREADS=2, "
      "TF_NUM_INTRAOP_THREADS=2 (inter-op 1, also set through tf.config.threading), "
      "XLA_FLAGS='--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=2', torch.set_num_threads(2), "
      "moongrad's default (2 on this machine). OMP_WAIT_POLICY: %s (moongrad and torch use GNU OpenMP; "
      "on a loaded machine PASSIVE avoids threads spinning against other processes)." % res.get("omp_wait_policy", "?"))
    w("- Flush-to-zero: moongrad sets FTZ/DAZ itself (mg.config.info()); torch.set_flush_denormal(True); "
      "TensorFlow and XLA flush denormals inside their own thread pools (no user switch exists); NumPy does not.")
    w("- Each benchmark: %d rounds; in each round every system runs one repetition (about 0.3 s of calls, "
      "calibrated after a warm-up), the order rotating from round to round. CNN training and start-up run in fresh "
      "processes." % res["rounds"])
    w("- Peers run in their best configuration here: staged forms where they have them (several variants shown), "
      "%s in bench/.venv." % res.get("python", "?"))
    w("")
    w("| system | available | version and configuration |")
    w("|---|---|---|")
    for s, e in res["systems"].items():
        info = e.get("info") or {}
        if s == "moongrad":
            desc = ", ".join("%s=%s" % (k, info[k]) for k in sorted(info)) if info else ""
        else:
            desc = ", ".join("%s=%s" % (k, v) for k, v in sorted(info.items()) if k != "config")
        w("| %s | %s | %s |" % (s, "yes" if e["available"] and info else "**NO** — " + (e.get("why") or "?"), desc))
    w("")

    # ---- summary
    w("## Summary against the targets (issue 9)")
    w("")
    w("Speed-up = best peer's median / moongrad's median (for rates the inverse): above 1, moongrad is faster.")
    w("")
    w("| benchmark | moongrad (best variant) | best peer | speed-up | target | verdict |")
    w("|---|---|---|---|---|---|")
    for name, title, kind, target, note in benches:
        b = res["benches"].get(name)
        if b is None:
            continue
        runs = b["runs"]
        st = mg_status(runs)
        mg = best_of(runs, ["moongrad"], (res.get("moongrad_main") or {}).get(name))
        pb = best_of(runs, peers)
        x = speedup(mg, pb, pb[3] if pb else None)
        tcol = "—"
        if name.startswith("sgemm_") and target:
            bl = res["blis"].get(name, {})
            ceil = max(((med(e["gflops"]), a, e.get("arch")) for a, e in bl.items() if e["gflops"]), default=None)
            x_blis = mg[0] / ceil[0] if mg and ceil else None
            w("| %s | %s | BLIS direct (%s → %s): %s GFLOP/s | %s | ≥ 0.95× BLIS | %s |" % (
                title, st or "%s GFLOP/s" % fmt(mg[0]), ceil[1] if ceil else "?", ceil[2] if ceil else "?",
                fmt(ceil[0]) if ceil else "—", fmt(x_blis) + "×" if x_blis else "—",
                verdict(x_blis, target) if not st else "not yet"))
            w("| %s (vs peers) | | %s | %s | — | vs best peer |" % (
                title, "%s %s: %s GFLOP/s" % (pb[1], pb[2], fmt(pb[0])) if pb else "—", fmt(x) + "×" if x else "—"))
            continue
        if target:
            tcol = "≥ %s×" % tfmt(target)
        mgcol = st or "%s %s (%s)" % (fmt(mg[0]), ufmt(mg[3]), mg[2])
        pcol = "%s %s (%s %s)" % (fmt(pb[0]), ufmt(pb[3]), pb[1], pb[2]) if pb else "no peer ran"
        ver = verdict(x, target) if not st else ("not yet" if st.startswith("not yet") else st)
        if name == "add" and mg and not st:
            ver += "; absolute %s µs/op vs ≤ 0.2: %s" % (fmt(mg[0]), "**met**" if mg[0] <= 0.2 else "**missed** by %s×"
                                                          % fmt(mg[0] / 0.2))
            nb = best_of(runs, ["numpy"])
            if nb:
                pcol += "; NumPy %s µs" % fmt(nb[0])
        w("| %s | %s | %s | %s | %s | %s |" % (title, mgcol, pcol, fmt(x) + "×" if x else "—", tcol, ver))
    # CNN
    cnn = res.get("cnn") or {}
    if cnn:
        def cnn_med(s, key):
            vals = [r[key] for r in cnn.get(s, []) if r.get("status") == "ok" and r.get(key)]
            return med(vals)
        mg_sps, mg_rss = cnn_med("moongrad", "samples_per_s"), cnn_med("moongrad", "peak_rss_mb")
        best_sps = max(((cnn_med(s, "samples_per_s"), s) for s in peers if cnn_med(s, "samples_per_s")), default=None)
        best_rss = min(((cnn_med(s, "peak_rss_mb"), s) for s in peers if cnn_med(s, "peak_rss_mb")), default=None)
        mgst = [r for r in cnn.get("moongrad", []) if r.get("status") != "ok"]
        notyet = mgst and ("not yet (%s)" % mgst[0].get("msg") if mgst[0].get("status") == "notyet"
                           else "error (%s)" % mgst[0].get("msg"))
        x = mg_sps / best_sps[0] if mg_sps and best_sps else None
        w("| 5a. Fashion-MNIST CNN training, 300 batches of 32 | %s | %s | %s | ≥ 1.3× | %s |" % (
            notyet or "%s samples/s" % fmt(mg_sps), "%s samples/s (%s)" % (fmt(best_sps[0]), best_sps[1])
            if best_sps else "—", fmt(x) + "×" if x else "—", verdict(x, 1.3) if not notyet else "not yet"))
        r = mg_rss / best_rss[0] if mg_rss and best_rss else None
        w("| 5b. CNN training peak RSS | %s | %s MB (%s) | %s× of it | ≤ 0.5× | %s |" % (
            notyet or "%s MB" % fmt(mg_rss), fmt(best_rss[0]) if best_rss else "—", best_rss[1] if best_rss else "",
            fmt(r) if r else "—", "not yet" if notyet else ("**met**" if r and r <= 0.5 else
                                                             "**missed** by %s× (%s× of the best peer's, target ≤ 0.5×)" % (fmt(r / 0.5), fmt(r))
                                                             if r else "not measured")))
    ct = res.get("char_transformer") or {}
    ct_ok = {s: r[-1] for s, r in ct.items() if r and r[-1].get("status") == "ok"}
    if ct:
        best = max(((r["tokens_per_s"], s) for s, r in ct_ok.items() if s != "moongrad"), default=None)
        mgr = ct_ok.get("moongrad")
        x = mgr["tokens_per_s"] / best[0] if mgr and best else None
        w("| 12. character transformer training (examples/char_transformer.lua), tokens/s | %s | %s | %s | — | %s |" % (
            "%s tokens/s (final loss %s)" % (fmt(mgr["tokens_per_s"]), fmt(mgr["final_loss"])) if mgr else
            "error (%s)" % (ct.get("moongrad") or [{}])[-1].get("msg"),
            "%s tokens/s (%s, final loss %s)" % (fmt(best[0]), best[1], fmt(ct_ok[best[1]]["final_loss"])) if best
            else "no peer ran", fmt(x) + "×" if x else "—", "no target"))
    su = res.get("startup") or {}
    if su:
        mgfr = med(su.get("moongrad: first result", {}).get("ms", []))
        best = min(((med(su["%s: first result" % s]["ms"]), s) for s in peers
                    if su.get("%s: first result" % s, {}).get("ms")), default=None)
        x = best[0] / mgfr if mgfr and best else None
        w("| 8. start-up: time to the first result of a one-line script | %s | %s ms (%s) | %s | ≥ 50× | %s |" % (
            "%s ms" % fmt(mgfr) if mgfr else "not measured", fmt(best[0]) if best else "—", best[1] if best else "",
            fmt(x) + "×" if x else "—", verdict(x, 50)))
    w("")

    # ---- details
    w("## Every benchmark, every system")
    w("")
    w("Median and min–max over the repetitions; n = calls per repetition (calibrated to about 0.3 s; "
      "for the 2x2 add one call is the whole loop of 100,000 ops).")
    w("")
    for name, title, kind, target, note in benches:
        b = res["benches"].get(name)
        if b is None:
            continue
        w("### %s" % title)
        w("")
        w((note[0].upper() + note[1:] + ".") if note else "")
        w("")
        w("| system | variant | median | min–max | unit | n |")
        w("|---|---|---|---|---|---|")
        for s in ["moongrad"] + peers + ["numpy"]:
            run = b["runs"].get(s)
            if run is None:
                if s != "numpy" and not res["systems"].get(s, {}).get("available"):
                    w("| %s | — | not installed | | | |" % s)
                continue
            if run.get("status") != "ok":
                label = "not yet" if run.get("status") == "notyet" else "error"
                if s == "numpy" and run.get("status") == "notyet":
                    continue
                w("| %s | — | **%s** | %s | | |" % (s, label, (run.get("msg") or "").replace("|", "/")[:200]))
                continue
            for v, vals in run["results"].items():
                w("| %s | %s | %s | %s–%s | %s | %s |" % (s, v, fmt(med(vals)), fmt(min(vals)), fmt(max(vals)),
                                                         ufmt(run["units"][v]), run["n"].get(v, "")))
        for arch, e in (res["blis"].get(name) or {}).items():
            if e["gflops"]:
                w("| BLIS direct (C) | BLIS_ARCH_TYPE %s → %s | %s | %s–%s | GFLOP/s | 1 |" % (
                    arch, e["arch"], fmt(med(e["gflops"])), fmt(min(e["gflops"])), fmt(max(e["gflops"]))))
            else:
                w("| BLIS direct (C) | %s | **error** | %s | | |" % (arch, e.get("msg")))
        w("")

    if cnn:
        w("### 5. Fashion-MNIST CNN training (the demo's model), batch 32, Adam 1e-3")
        w("")
        w("Conv 5×5×32 same relu, max-pool 2, conv 5×5×64 same relu, max-pool 2, dense 1024 relu, dropout 0.3, "
          "dense 10, mean sparse softmax cross-entropy. The first Fashion-MNIST training images, pre-made batches, "
          "warm-up batches first (compilation), then the timed batches; a fresh process per run, peak RSS of that "
          "process (VmHWM / ru_maxrss).")
        w("")
        w("| system | samples/s median | min–max | peak RSS MB | final loss | configuration |")
        w("|---|---|---|---|---|---|")
        for s in ["moongrad"] + peers:
            runs = cnn.get(s)
            if not runs:
                if not res["systems"].get(s, {}).get("available"):
                    w("| %s | not installed | | | | |" % s)
                continue
            ok = [r for r in runs if r.get("status") == "ok"]
            if not ok:
                r = runs[0]
                w("| %s | **%s** | | | | %s |" % (s, "not yet" if r.get("status") == "notyet" else "error",
                                                 (r.get("msg") or "").replace("|", "/")[:200]))
                continue
            sps = [r["samples_per_s"] for r in ok]
            w("| %s | %s | %s–%s | %s | %s | %s |" % (s, fmt(med(sps)), fmt(min(sps)), fmt(max(sps)),
                                                    fmt(med([r["peak_rss_mb"] for r in ok])),
                                                    fmt(ok[-1].get("final_loss")), ok[-1].get("config", "")))
        w("")
    if ct:
        w("### 12. Character transformer training: moongrad beside Keras 3")
        w("")
        w("The model of examples/char_transformer.lua (token + position embedding, pre-norm blocks of causal "
          "MultiHeadAttention and a gelu feed-forward, LayerNormalization, Dense logits over 96 characters) trained "
          "by model.fit on the same fortune text with the same hyperparameters (bench/peers/char_transformer.json), "
          "a fresh process per system. Tokens/s: training tokens over the epochs after the first (the first "
          "traces and compiles), from each epoch's first batch to its last (validation excluded); 'whole fit': "
          "every epoch, compilation and validation included. Losses are the last epoch's (per character, nats).")
        w("")
        w("| system | tokens/s | whole fit tokens/s | first epoch s | final loss | validation loss | "
          "validation perplexity | params | peak RSS MB | configuration |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for s, runs in ct.items():
            r = runs[-1]
            if r.get("status") != "ok":
                w("| %s | **%s** | | | | | | | | %s |" % (s, "not yet" if r.get("status") == "notyet" else "error",
                                                         (r.get("msg") or "").replace("|", "/")[:200]))
                continue
            w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                s, fmt(r["tokens_per_s"]), fmt(r["tokens_per_s_fit"]), fmt(r["first_epoch_s"]), fmt(r["final_loss"]),
                fmt(r["val_loss"]), fmt(r["val_perplexity"]), fmt(r.get("params")), fmt(r.get("peak_rss_mb")),
                r.get("config", "")))
        w("")
    if su:
        w("### 8. Start-up")
        w("")
        w("Wall time of a fresh process, from fork to exit. 'first result' runs a one-line script that "
          "imports the framework and prints (x + 1):sum() of a 2-element tensor; 'import only' loads it.")
        w("")
        w("| command | median ms | min–max |")
        w("|---|---|---|")
        for key, e in su.items():
            if e["ms"]:
                w("| %s | %s | %s–%s |" % (key, fmt(med(e["ms"])), fmt(min(e["ms"])), fmt(max(e["ms"]))))
            else:
                w("| %s | **error** | %s |" % (key, e.get("msg")))
        w("")
    if res.get("overshoot_md"):
        w(res["overshoot_md"].rstrip("\n"))
        w("")
    if res.get("graph_frame"):
        w("## A policy call from a graph file, without Lua")
        w("")
        w("bench/graph_frame.c: the MLP 8-64-64-4 policy of the embedding bench, exported by `mg.export`, loaded "
          "by `mg_graph_load` into a context of its own and run by `mg_graph_run_into`, beside the same staged "
          "function called through the embedding (`mg_call_into`); median per call, C heap allocations per call.")
        w("")
        for l in res["graph_frame"]:
            w("    " + l)
        w("")
    missing = [s for s, e in res["systems"].items() if not e["available"] or not e.get("info")]
    w("## What could not run")
    w("")
    if missing:
        for s in missing:
            w("- %s: %s" % (s, res["systems"][s].get("why")))
    nots = []
    for name, title, *_ in benches:
        b = res["benches"].get(name)
        st = b and mg_status(b["runs"])
        if st:
            nots.append("- moongrad, %s: %s" % (title, st))
    nots += ["- moongrad, CNN training: %s" % r.get("msg") for r in (cnn.get("moongrad") or [])[:1]
             if r.get("status") != "ok"]
    for s in peers:
        for name, title, *_ in benches:
            b = res["benches"].get(name)
            run = b and b["runs"].get(s)
            if run and run.get("status") not in (None, "ok"):
                nots.append("- %s, %s: %s" % (s, title, run.get("msg")))
    nots += ["- %s, character transformer training: %s" % (s, r[-1].get("msg")) for s, r in ct.items()
             if r and r[-1].get("status") != "ok"]
    if res.get("overshoot_msg"):
        nots.append("- moongrad, budget overshoot: %s" % res["overshoot_msg"])
    if res.get("graph_frame_msg"):
        nots.append("- moongrad, graph file policy call: %s" % res["graph_frame_msg"])
    if not missing and not nots:
        w("Everything ran.")
    for n in nots:
        w(n)
    w("")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "out", "results.json")
    dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "RESULTS.md")
    sys.path.insert(0, here)
    sys.dont_write_bytecode = True
    import run as runmod
    with open(src) as f:
        res = json.load(f)
    with open(dst, "w") as f:
        f.write(render(res, runmod.BENCHES, runmod.PEERS))
