#!/bin/sh
# run.sh — runs every bench/*.lua with the moongrad program (`make bench`).
#
# Timing targets live here, never in tests. Each script prints its own
# figures. The side-by-side comparison with PyTorch, TensorFlow and JAX on the
# same machine comes in a later issue; for now the peers' figures measured on
# this machine kind are in shared/NOTES.md.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
MOONGRAD="$BUILD/bin/moongrad"
LUA_PATH="$ROOT/stdlib/?.lua;$ROOT/stdlib/?/init.lua;$ROOT/?.lua;;"
LUA_CPATH="$BUILD/lua/?.so;;"
export LUA_PATH LUA_CPATH

status=0
for b in "$ROOT"/bench/*.lua; do
  echo "== bench/$(basename "$b")"
  "$MOONGRAD" "$b" || { echo "bench/$(basename "$b") failed"; status=1; }
done
echo "(comparison against PyTorch/TensorFlow/JAX peers: a later issue; see shared/NOTES.md for their figures)"
exit $status
