#!/bin/sh
# fuzz.sh — `make fuzz-diff SECONDS=N`: the differential program fuzzer for N seconds.
#
#   sh tests/fuzz_diff/fuzz.sh SECONDS [START_SEED] [LUA]
#   FUZZ_AVOID=F1,I4 ...    steer around known defects (main.lua --avoid)
#
# Runs tests/fuzz_diff/main.lua in worker processes of at most two minutes of fuzzing each,
# over consecutive seeds from START_SEED (default: drawn from the clock, so each run explores
# new programs and any seed it names can be rerun with `main.lua --seeds N --shrink`). A
# worker that hangs (a staged loop that never ends) or crashes is killed by `timeout`; the
# seed it had begun is reported and the next worker starts after it. Mismatches are shrunk
# (the first two of each kind, across workers) and their reports appended to
# $BUILD/fuzz_diff/report.txt. Prints the totals; exits non-zero when anything disagreed.
# POSIX sh.
set -u
TOTAL=${1:-60}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
START=${2:-$(( $(date +%s) % 100000 * 10000 ))}
LUA=${3:-lua5.4}
LUA_PATH="$ROOT/lua/ffi/?.lua;$BUILD/luajit/?.lua;$ROOT/stdlib/?.lua;$ROOT/stdlib/?/init.lua;$ROOT/?.lua;;"
LUA_CPATH="$BUILD/lua/?.so;;"
export LUA_PATH LUA_CPATH
OUT=${FUZZ_OUT:-$BUILD/fuzz_diff}
mkdir -p "$OUT"
REPORT="$OUT/report.txt"
SEEN="$OUT/seen.txt"
: >"$REPORT"
: >"$SEEN"
LOG="$OUT/worker.log"
echo "fuzz_diff: $TOTAL s from seed $START ($LUA); reports in $REPORT"

t0=$(date +%s)
seed=$START
programs=0 mismatches=0 skipped=0 invalid=0 crashed=0 hangs=0
while :; do
  now=$(date +%s)
  left=$((TOTAL - (now - t0)))
  [ "$left" -le 0 ] && break
  chunk=$left
  [ "$chunk" -gt 120 ] && chunk=120
  # the worker stops starting programs after $chunk s; shrinking may take a while longer
  timeout -k 10 $((chunk + 300)) "$LUA" tests/fuzz_diff/main.lua --seconds "$chunk" --start "$seed" \
    --report "$REPORT" --seen "$SEEN" ${FUZZ_AVOID:+--avoid "$FUZZ_AVOID"} >"$LOG" 2>&1
  rc=$?
  grep -E '^(mismatch|invalid|crash) seed' "$LOG"
  summary=$(grep -E '^fuzz_diff: [0-9]+ programs' "$LOG" | tail -n 1)
  if [ -n "$summary" ]; then
    # shellcheck disable=SC2046
    set -- $(echo "$summary" | sed -E 's/^fuzz_diff: ([0-9]+) programs in [0-9]+ s: [0-9]+ agree, ([0-9]+) mismatch, ([0-9]+) skipped \(margins\), ([0-9]+) invalid, ([0-9]+) crashed$/\1 \2 \3 \4 \5/')
    programs=$((programs + $1)) mismatches=$((mismatches + $2)) skipped=$((skipped + $3))
    invalid=$((invalid + $4)) crashed=$((crashed + $5))
    last=$(grep -E '^# done ' "$LOG" | tail -n 1 | sed 's/^# done //')
    seed=$((last + 1))
  else
    last=$(grep -E '^# begin ' "$LOG" | tail -n 1 | sed 's/^# begin //')
    [ -z "$last" ] && { echo "fuzz_diff: the worker failed before its first program (exit $rc):"; tail -n 20 "$LOG"; exit 1; }
    n=$(grep -cE '^# begin ' "$LOG")
    programs=$((programs + n))
    hangs=$((hangs + 1))
    msg="== fuzz_diff: seed $last: the worker hung or crashed (exit $rc) running it; rerun: lua5.4 tests/fuzz_diff/main.lua --show $last"
    echo "$msg"
    echo "$msg" >>"$REPORT"
    tail -n 5 "$LOG" >>"$REPORT"
    seed=$((last + 1))
  fi
done
echo "fuzz_diff: $programs programs in $(( $(date +%s) - t0 )) s (seeds $START..$((seed - 1))): $mismatches mismatch, $skipped skipped (margins), $invalid invalid, $crashed crashed, $hangs hung"
if [ -s "$SEEN" ]; then
  echo "fuzz_diff: kinds of mismatch (shrunk reports in $REPORT):"
  sort "$SEEN" | uniq -c | sort -rn
fi
[ $((mismatches + invalid + crashed + hangs)) -eq 0 ]
