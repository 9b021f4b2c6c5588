#!/bin/sh
# setup_venv.sh — creates bench/.venv once with the CPU peers from PyPI.
#
#   sh bench/setup_venv.sh            create/complete the venv (idempotent)
#   BENCH_PYTHON=/path/python3 ...    pick the interpreter
#
# Each peer is installed by its own pip call, so one that fails (no wheel for
# this Python, a network error) leaves the others usable; bench/run.py then
# reports the missing peer as "not installed" with the reason kept in
# bench/.venv/install-<peer>.log. A stamp file per peer makes a second run a
# no-op. Python 3.12 is preferred when present: current jax wheels need it.
#
# What gets installed and why:
#   torch           PyPI's only Linux x86_64 torch wheel is the CUDA build
#                   (~540 MB plus ~3 GB of CUDA libraries); there is no
#                   CPU-only torch on PyPI for x86_64, and the CPU wheel index
#                   is not reachable here. It runs on the CPU all the same.
#   tensorflow-cpu  the CPU-only TensorFlow wheel (Keras 3 comes with it).
#   jax[cpu]        jax + jaxlib (CPU).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
VENV="$HERE/.venv"

pick_python() {
  if [ -n "${BENCH_PYTHON:-}" ]; then echo "$BENCH_PYTHON"; return; fi
  for p in python3.12 "$(pyenv root 2>/dev/null)/versions/3.12"*/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import venv, ensurepip' >/dev/null 2>&1; then
      echo "$p"; return
    fi
  done
  echo python3
}

if [ ! -x "$VENV/bin/python" ]; then
  PY=$(pick_python)
  echo "setup_venv: creating $VENV with $PY ($("$PY" --version 2>&1))"
  "$PY" -m venv "$VENV" || { echo "setup_venv: python -m venv failed"; exit 1; }
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
fi

status=0
install() {  # install <peer> <pip args...>
  peer=$1; shift
  if [ -f "$VENV/installed-$peer" ]; then return 0; fi
  echo "setup_venv: installing $peer ($*) — log in $VENV/install-$peer.log"
  if "$VENV/bin/python" -m pip install --disable-pip-version-check "$@" >"$VENV/install-$peer.log" 2>&1; then
    date >"$VENV/installed-$peer"
  else
    echo "setup_venv: $peer FAILED to install (see $VENV/install-$peer.log)"
    status=1
  fi
}

install numpy numpy
install torch torch
install tensorflow tensorflow-cpu
install jax "jax[cpu]"
exit $status
