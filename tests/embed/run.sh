#!/bin/sh
# run.sh — the embedding suite: the C and C++ API tests, the host program of
# doc/embedding.md, the two host examples in quick mode, and a smoke run of the
# frame benchmark (no timing is asserted:
# timing targets live in bench/).
#
#   BUILD=build sh tests/embed/run.sh      (tests/run.sh calls it; `make test` builds the programs)
#
# The test programs print their own "N passed, N failed" (added up here); each
# other program counts as one test decided by its exit status. Prints "ok"/"not
# ok" lines and closes with "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
DATA=${MG_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
TIMEOUT=${MG_TEST_TIMEOUT:-600}
pass=0 fail=0 skipped=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# counted NAME PROGRAM...: a program with its own "N passed, N failed" line.
counted() {
  name=$1; shift
  timeout -k 10 "$TIMEOUT" "$@" >"$tmp/log" 2>&1
  rc=$?
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "not ok - $name (exit $rc, no summary)"; tail -n 30 "$tmp/log"; fail=$((fail + 1)); return
  fi
  p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
  [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
  pass=$((pass + p)); fail=$((fail + f))
  if [ "$f" -gt 0 ]; then echo "not ok - $name ($line, exit $rc)"; grep -v '^ok' "$tmp/log" | tail -n 40
  else echo "ok - $name ($line)"; fi
}

# single NAME PROGRAM...: one test, passed iff the program exits 0; its output is shown.
single() {
  name=$1; shift
  timeout -k 10 "$TIMEOUT" "$@" >"$tmp/log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then echo "ok - $name"; pass=$((pass + 1)); sed 's/^/    /' "$tmp/log" | tail -n 8
  else echo "not ok - $name (exit $rc)"; tail -n 30 "$tmp/log"; fail=$((fail + 1)); fi
}

counted "C API (tests/embed/test_embed.c)" "$BUILD/tests/embed_tests"
counted "C++ wrapper (tests/embed/test_cxx.cpp)" "$BUILD/tests/embed_cxx_tests"
counted "C++ wrapper with -fno-exceptions (tests/embed/test_cxx_noexc.cpp)" "$BUILD/tests/embed_cxx_noexc_tests"
single "doc/embedding.md: its host program (host.c)" "$BUILD/tests/embed_doc_host"
single "examples/embed/game.c --quick" env MG_QUICK=1 "$BUILD/examples/game"
single "examples/embed/policy_graph.c --quick (libmoongrad alone, a graph file)" \
  "$BUILD/examples/policy_graph" tests/fixtures/graphs/mlp.mgg --quick
single "bench/graph_frame.c --quick (graph file beside mg_call_into, same actions)" env MG_QUICK=1 "$BUILD/bench/graph_frame"
if [ -f "$DATA/t10k-images-idx3-ubyte.gz" ]; then
  # first run: no weights file, so it trains briefly and saves; second run: loads and classifies
  single "examples/embed/tool.cpp --quick (train, save, classify)" \
    "$BUILD/examples/tool" --quick --weights "$tmp/fashion.mgw" "$DATA/t10k-images-idx3-ubyte.gz"
  single "examples/embed/tool.cpp --quick (load, classify)" sh -c \
    "'$BUILD/examples/tool' --quick --weights '$tmp/fashion.mgw' '$DATA/t10k-images-idx3-ubyte.gz' | tee /dev/stderr | grep -q '^tool: loaded'"
else
  echo "skip - examples/embed/tool.cpp ($DATA has no Fashion-MNIST test file)"; skipped=$((skipped + 1))
fi
single "bench/embed_frame.c --quick (runs; timings not asserted)" "$BUILD/bench/embed_frame" --quick

if [ "$skipped" -gt 0 ]; then echo "$pass passed, $fail failed, $skipped skipped"; else echo "$pass passed, $fail failed"; fi
[ "$fail" -eq 0 ]
