#!/bin/sh
# venv.sh — the op oracle's Python: a virtualenv with JAX (CPU) and NumPy from PyPI.
#
#   sh tests/oracle/venv.sh          prints the python to use on its last line, or fails
#
# Reuses, in order: $MG_ORACLE_PYTHON (a python that already has jax and numpy);
# bench/.venv when it has them (the benchmarks' peers include JAX); the oracle's own
# venv, $MG_ORACLE_VENV (default build/oracle-venv in the checkout, whatever BUILD is,
# so that `make test` and `make asan` share it; `make clean` removes it). Otherwise it
# creates that venv and installs the pinned versions below (about 100 MB of wheels,
# under a minute), falling back to the newest ones if the pins have no wheel for this
# Python. A stamp file makes the next run a no-op. Exit status 1 with the reason on
# stderr when no Python or no PyPI is to be had: the oracle is then skipped.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${MG_ORACLE_VENV:-$ROOT/build/oracle-venv}
PINS="jax==0.10.2 jaxlib==0.10.2 numpy==2.4.6"
ORT_PIN="onnxruntime==1.32.0"

has_peers() { "$1" -c 'import jax, numpy' >/dev/null 2>&1; }

if [ -n "${MG_ORACLE_PYTHON:-}" ]; then
  if has_peers "$MG_ORACLE_PYTHON"; then echo "$MG_ORACLE_PYTHON"; exit 0; fi
  echo "venv.sh: MG_ORACLE_PYTHON=$MG_ORACLE_PYTHON cannot import jax and numpy" >&2
  exit 1
fi
if [ -f "$VENV/.oracle-ready" ] && has_peers "$VENV/bin/python"; then echo "$VENV/bin/python"; exit 0; fi
if [ -x "$ROOT/bench/.venv/bin/python" ] && has_peers "$ROOT/bench/.venv/bin/python"; then
  echo "$ROOT/bench/.venv/bin/python"
  exit 0
fi

PY=""
for p in python3 python3.12 python3.11; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import venv, ensurepip' >/dev/null 2>&1; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
  echo "venv.sh: no python3 with the venv and ensurepip modules" >&2
  exit 1
fi
mkdir -p "$(dirname "$VENV")"
if [ ! -x "$VENV/bin/python" ] && ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
  echo "venv.sh: '$PY -m venv $VENV' failed" >&2
  exit 1
fi
LOG="$VENV/install.log"
echo "venv.sh: installing $PINS into $VENV (log: $LOG)" >&2
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check $PINS >"$LOG" 2>&1; then
  echo "venv.sh: the pinned versions did not install; trying the newest jax and numpy" >&2
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check jax numpy >>"$LOG" 2>&1; then
    echo "venv.sh: pip could not install jax and numpy (no PyPI?): $(tail -n 1 "$LOG")" >&2
    exit 1
  fi
fi
if ! has_peers "$VENV/bin/python"; then
  echo "venv.sh: jax and numpy installed but do not import: $("$VENV/bin/python" -c 'import jax' 2>&1 | tail -n 1)" >&2
  exit 1
fi
# onnxruntime (about 20 MB) for tests/spec/onnx_spec.lua, which runs the ONNX files moongrad writes;
# optional: that spec skips with a reason when it does not import.
"$VENV/bin/python" -m pip install --disable-pip-version-check $ORT_PIN >>"$LOG" 2>&1 ||
  "$VENV/bin/python" -m pip install --disable-pip-version-check onnxruntime >>"$LOG" 2>&1 ||
  echo "venv.sh: onnxruntime did not install (the ONNX spec will skip its onnxruntime checks)" >&2
"$VENV/bin/python" -c 'import jax, numpy; print("jax", jax.__version__, "numpy", numpy.__version__)' >"$VENV/.oracle-ready"
echo "$VENV/bin/python"
