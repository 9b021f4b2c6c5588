#!/bin/sh
# isa_compare.sh — the portable default build beside a native one (issue 15).
#
#   BUILD=build sh bench/isa_compare.sh [--quick]
#
# The default build targets the baseline x86-64 and picks its AVX2 or AVX-512
# kernels at run time (core/isa.c); the native build (MARCH=-march=native, made
# here into build-native/) is compiled for this machine alone. Both run
# bench/isa_compare.lua in alternating rounds (and the default build once more
# with MG_ISA=baseline, for what the run-time choice buys); each figure is the
# best over the rounds. The table goes to stdout and into bench/RESULTS.md
# between the "isa-compare" markers (replaced, or appended).
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
NATIVE="$ROOT/build-native"
QUICK=""
rounds=${ROUNDS:-5}
[ "${1:-}" = "--quick" ] && QUICK=--quick && rounds=1
# One thread by default: the figure is the kernels' code, and on a shared
# 2-core machine a second thread mostly measures the neighbours' load.
MG_NUM_THREADS=${MG_NUM_THREADS:-1}
export MG_NUM_THREADS
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "isa_compare: building the native build ($NATIVE, MARCH=-march=native)"
make -s -C "$ROOT" BUILD="$NATIVE" MARCH=-march=native "$NATIVE/bin/moongrad" >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log"; exit 1; }

for r in $(seq 1 $rounds); do
  "$BUILD/bin/moongrad" "$ROOT/bench/isa_compare.lua" $QUICK >>"$tmp/dispatched" || exit 1
  "$NATIVE/bin/moongrad" "$ROOT/bench/isa_compare.lua" $QUICK >>"$tmp/native" || exit 1
  MG_ISA=baseline "$BUILD/bin/moongrad" "$ROOT/bench/isa_compare.lua" $QUICK >>"$tmp/baseline" || exit 1
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
march=$(gcc -march=native -Q --help=target 2>/dev/null | awk '$1 == "-march=" {print $2}')
isa=$(awk -F'\t' '$1 == "isa" {print $2; exit}' "$tmp/dispatched")
{
  echo "<!-- isa-compare:begin (bench/isa_compare.sh writes this section) -->"
  echo "## The portable build beside a native one"
  echo
  echo "The default build is compiled for the baseline x86-64 and chooses its kernel copy at run time"
  echo "(here: **$isa**); the native build is \`make MARCH=-march=native\` (here -march=$march), for this"
  echo "machine alone. $MG_NUM_THREADS thread(s); best of $rounds alternating rounds, each the best of its repetitions; ratio ="
  echo "dispatched / native time (goal: within 2%, i.e. at most 1.02). The baseline column is the same"
  echo "default build with MG_ISA=baseline (SSE2 kernels: what a run-time choice buys). $(date -u +%Y-%m-%d),"
  echo "$cpu, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| figure | dispatched ($isa) ms | native ms | ratio | baseline (SSE2) ms | what |"
  echo "|---|---:|---:|---:|---:|---|"
  awk -F'\t' '
    FILENAME ~ /dispatched$/ && $1 != "isa" { if (!($1 in d) || $2 < d[$1]) d[$1] = $2; what[$1] = $3; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
    FILENAME ~ /native$/ && $1 != "isa" { if (!($1 in nv) || $2 < nv[$1]) nv[$1] = $2 }
    FILENAME ~ /baseline$/ && $1 != "isa" { if (!($1 in b) || $2 < b[$1]) b[$1] = $2 }
    END { for (i = 1; i <= n; i++) { k = order[i]
            printf "| %s | %.2f | %.2f | %.3f | %.2f | %s |\n", k, d[k], nv[k], d[k] / nv[k], b[k], what[k] } }' \
    "$tmp/dispatched" "$tmp/native" "$tmp/baseline"
  echo "<!-- isa-compare:end -->"
} >"$tmp/section"
cat "$tmp/section"

results="$ROOT/bench/RESULTS.md"
if [ -f "$results" ] && grep -q 'isa-compare:begin' "$results"; then
  awk -v sect="$tmp/section" '/isa-compare:begin/ { while ((getline l < sect) > 0) print l; skip = 1; next }
       /isa-compare:end/ { skip = 0; next } !skip' "$results" >"$tmp/new" && cat "$tmp/new" >"$results"
else
  { echo; cat "$tmp/section"; } >>"$results"
fi
