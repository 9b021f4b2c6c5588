#!/bin/sh
# run.sh — the op oracle (issue 14): every op of core/ops.def, its value and its
# gradient, against NumPy and JAX.
#
#   BUILD=build sh tests/oracle/run.sh       (`make oracle`; `make test` runs it too)
#
# venv.sh finds or creates the Python (JAX, NumPy); gen.lua runs the cases through
# moongrad (the build's `moongrad` program, so a sanitizer build is checked too) into
# $BUILD/oracle/; check.py compares and closes with "oracle: N passed, N failed[, N
# skipped]" (known defects listed in expected_failures.py count as skipped). Without a
# Python or PyPI the oracle is one skipped test, with the reason printed. JAX's
# compilations are cached in the venv (jax-cache/), which makes later runs faster.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
LUA_PATH="$ROOT/stdlib/?.lua;$ROOT/stdlib/?/init.lua;$ROOT/?.lua;;"
LUA_CPATH="$BUILD/lua/?.so;;"
export LUA_PATH LUA_CPATH

t0=$(date +%s)
if ! PY=$(sh "$ROOT/tests/oracle/venv.sh" | tail -n 1) || [ -z "$PY" ]; then
  echo "oracle: skipped (no Python with JAX and NumPy: see the venv.sh line above)"
  echo "oracle: 0 passed, 0 failed, 1 skipped"
  exit 0
fi
OUT="$BUILD/oracle"
rm -rf "$OUT" && mkdir -p "$OUT" || exit 1
"$BUILD/bin/moongrad" "$ROOT/tests/oracle/gen.lua" "$OUT" || {
  echo "oracle: gen.lua failed"
  echo "oracle: 0 passed, 1 failed"
  exit 1
}
MG_ORACLE_CACHE="$(dirname "$(dirname "$PY")")/jax-cache" "$PY" "$ROOT/tests/oracle/check.py" "$OUT" >"$OUT/check.log" 2>&1
rc=$?
cat "$OUT/check.log"
echo "oracle: $(($(date +%s) - t0)) s in all (python: $PY)"
exit $rc
