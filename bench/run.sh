#!/bin/sh
# run.sh — `make bench`: moongrad beside PyTorch, TensorFlow and JAX.
#
#   sh bench/run.sh            full run: creates bench/.venv once (setup_venv.sh),
#                              runs bench/run.py (writes bench/RESULTS.md), the
#                              portable build beside a native one
#                              (bench/isa_compare.sh, its section of RESULTS.md),
#                              then moongrad's own bench/*.lua scripts
#   QUICK=1 sh bench/run.sh    short run (under 3 minutes): never installs; without
#                              bench/.venv the peers are reported as unavailable
#                              and only moongrad is measured
#
# Timing targets live here and in bench/RESULTS.md, never in tests. See
# doc/performance.md for what each figure means.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
MOONGRAD="$BUILD/bin/moongrad"
LUA_PATH="$ROOT/stdlib/?.lua;$ROOT/stdlib/?/init.lua;$ROOT/?.lua;;"
LUA_CPATH="$BUILD/lua/?.so;;"
export LUA_PATH LUA_CPATH BUILD

status=0
if [ -n "${QUICK:-}" ] && [ "${QUICK:-}" != 0 ]; then
  if [ ! -x "$ROOT/bench/.venv/bin/python" ]; then
    echo "bench: bench/.venv is absent and QUICK mode installs nothing: the peers are skipped" \
         "(run 'make bench' once to create it); measuring moongrad alone"
  fi
  python3 "$ROOT/bench/run.py" --quick --build "$BUILD" || status=1
  # the portable build beside a native one needs a second build: not in the quick run
  echo "bench: quick run: the dispatched-vs-native comparison (bench/isa_compare.sh) is skipped"
  exit $status
fi

sh "$ROOT/bench/setup_venv.sh" || echo "bench: some peers did not install; bench/RESULTS.md says which"
python3 "$ROOT/bench/run.py" --build "$BUILD" || status=1
# after run.py, which rewrites RESULTS.md: the portable build beside a native one
BUILD="$BUILD" sh "$ROOT/bench/isa_compare.sh" || status=1

# moongrad's own benchmark scripts (figures without peers)
for b in "$ROOT"/bench/*.lua; do
  [ -e "$b" ] || continue
  echo "== bench/$(basename "$b")"
  "$MOONGRAD" "$b" || { echo "bench/$(basename "$b") failed"; status=1; }
done
exit $status
