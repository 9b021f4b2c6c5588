#!/bin/sh
# run.sh — the body of `make test`: runs every suite and sums them.
#
#   BUILD=build sh tests/run.sh      (the Makefile passes BUILD; build-asan for `make asan`)
#
# Suites, in order: the C unit tests (tests/core), the busted specs
# (tests/spec/*_spec.lua, one busted process per file so that a crash costs one
# file, not the run), the same specs under LuaJIT (tests/luajit/run.lua), the op oracle
# (tests/oracle/run.sh), the REPL tests (tests/repl/run.sh), every example in its
# quick mode (examples/*.lua with MG_QUICK=1), the GC-visibility test
# (tests/gc/run.sh), the documentation examples (tests/doc/run.sh), the
# embedding suite (tests/embed/run.sh: C/C++ host API tests and the host
# examples), the exported-symbols check (tests/symbols/run.sh) and the installed-tree check (tests/install/run.sh). Each
# suite that prints an "N passed, N failed" line is counted by it; a suite that
# prints none counts as one test decided by its exit status. Passing tests stay
# quiet; failures print their details. The last line is the sum:
# "N passed, N failed" (", N skipped" when some were), and the exit status is
# non-zero when anything failed.
#
# Under an ASan build (its core.so needs libasan) the specs run in the
# instrumented moongrad program (lua.c-compatible, so busted runs in it): in
# stock lua5.4 with the ASan runtime preloaded, LeakSanitizer crashes reading
# the dynamic TLS of BLIS's threads in the dlopen'ed module. Leaks of
# third-party code only are suppressed by tests/asan.supp.
#
# POSIX sh: `make test` runs it with /bin/sh.

set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
export BUILD ROOT
TIMEOUT=${MG_TEST_TIMEOUT:-600}    # seconds per test process: CI must never hang

PASSED=0 FAILED=0 SKIPPED=0
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

# The paths stock lua5.4 needs to find moongrad (same as `make print-luapath`).
LUA_PATH="$ROOT/stdlib/?.lua;$ROOT/stdlib/?/init.lua;$ROOT/?.lua;;"
LUA_CPATH="$BUILD/lua/?.so;;"
export LUA_PATH LUA_CPATH
MOONGRAD="$BUILD/bin/moongrad"
export MOONGRAD

# ---- sanitizers --------------------------------------------------------------
PRELOAD=""
if [ -f "$BUILD/lua/moongrad/core.so" ] &&
   readelf -d "$BUILD/lua/moongrad/core.so" 2>/dev/null | grep -q 'NEEDED.*libasan'; then
  PRELOAD=$(${CC:-gcc} -print-file-name=libasan.so)
  ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1"  # not detect_stack_use_after_return: its fake stacks break 64-byte-aligned AVX-512 locals
  LSAN_OPTIONS="suppressions=$ROOT/tests/asan.supp:print_suppressions=0"
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  MG_ASAN=1
  export ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS MG_ASAN
  echo "run.sh: sanitizer build ($BUILD): lua5.4 runs with LD_PRELOAD=$PRELOAD"
fi

# ---- counting ------------------------------------------------------------------
# tally NAME LOG RC: adds the suite's closing "N passed, N failed[, N skipped]"
# line (the last one in LOG; "word: " may precede it) to the totals. With no
# such line the suite counts as one test, passed iff RC is 0. A non-zero RC with
# no failure counted (a crash after the summary) adds one failure.
tally() {
  name=$1 log=$2 rc=$3
  line=$(grep -E '^([A-Za-z_./-]+: )?[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    if [ "$rc" -eq 0 ]; then p=1 f=0; else p=0 f=1; fi
    s=0
  else
    # shellcheck disable=SC2046  # splitting into the three counts is the point
    set -- $(echo "$line" | sed -E 's/^([A-Za-z_./-]+: )?([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?$/\2 \3 \5/')
    p=$1 f=$2 s=${3:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      echo "$name: exited with status $rc after its summary"
      f=1
    fi
  fi
  PASSED=$((PASSED + p)) FAILED=$((FAILED + f)) SKIPPED=$((SKIPPED + s))
  echo "$name: $p passed, $f failed$( [ "$s" -gt 0 ] && echo ", $s skipped")"
}

skip() {    # skip NAME REASON: one skipped test, with the reason printed
  echo "$1: skipped ($2)"
  SKIPPED=$((SKIPPED + 1))
}

# run_logged LOG CMD...: runs CMD with the time limit, output to LOG; sets RC.
run_logged() {
  log=$1; shift
  timeout -k 10 "$TIMEOUT" "$@" >"$log" 2>&1
  RC=$?
  [ "$RC" -eq 124 ] && echo "(timed out after ${TIMEOUT}s)" >>"$log"
}

# ---- 1. C unit tests ---------------------------------------------------------
echo "== core (C unit tests)"
if [ -x "$BUILD/tests/core_tests" ]; then
  run_logged "$TMP/core.log" "$BUILD/tests/core_tests"
  [ "$RC" -ne 0 ] && cat "$TMP/core.log"
  tally core "$TMP/core.log" "$RC"
else
  echo "core: $BUILD/tests/core_tests is not built"
  FAILED=$((FAILED + 1))
fi

# ---- 2. busted specs ---------------------------------------------------------
# busted's TAP handler prints "ok N", "ok N - # SKIP", "not ok N" per test and
# "1..N" at the end; a missing plan line means the process died mid-way.
echo "== spec (busted on lua5.4)"
for spec in tests/spec/*_spec.lua; do
  [ -f "$spec" ] || continue
  log="$TMP/spec.log"
  if [ -n "$PRELOAD" ]; then
    run_logged "$log" "$MOONGRAD" /usr/bin/busted -o TAP "$spec"
  else
    run_logged "$log" lua5.4 /usr/bin/busted -o TAP "$spec"
  fi
  p=$(grep -cE '^ok [0-9]+ - ' "$log")
  s=$(grep -cE '^ok [0-9]+ - # SKIP' "$log")
  f=$(grep -cE '^not ok [0-9]+' "$log")
  p=$((p - s))
  if ! grep -qE '^1\.\.[0-9]+$' "$log" || { [ "$RC" -ne 0 ] && [ "$f" -eq 0 ]; }; then
    echo "$spec: busted did not finish (exit $RC):"
    tail -n 30 "$log"
    f=$((f + 1))
  elif [ "$f" -gt 0 ]; then
    # the failing tests and their '#' detail lines
    awk '/^not ok/ {show=1; print; next} /^ok / {show=0} show && /^#/ {print}' "$log"
  fi
  PASSED=$((PASSED + p)) FAILED=$((FAILED + f)) SKIPPED=$((SKIPPED + s))
  echo "$spec: $p passed, $f failed$( [ "$s" -gt 0 ] && echo ", $s skipped")"
done

# ---- 2b. the same specs under LuaJIT (the FFI binding, lua/ffi) ----------------------
# tests/luajit/run.lua checks the binding's surface against the C module's, then
# runs each spec with luajit busted; tests/luajit/skip.lua says which specs or
# tests need Lua 5.4 (syntax, two number types) and why: they are counted as
# skipped. Each busted process has the time limit; the runner gets one per file.
echo "== spec (busted on luajit: the FFI binding)"
if [ -n "$PRELOAD" ]; then
  skip spec-luajit "not run on the sanitizer build (its libmoongrad.so needs libasan in luajit)"
elif ! command -v luajit >/dev/null 2>&1; then
  skip spec-luajit "luajit is not installed"
else
  NSPEC=$(ls tests/spec/*_spec.lua 2>/dev/null | wc -l)
  timeout -k 10 $((TIMEOUT * (NSPEC + 1))) lua5.4 tests/luajit/run.lua "$ROOT" "$BUILD" >"$TMP/luajit.log" 2>&1
  RC=$?
  cat "$TMP/luajit.log"
  tally spec-luajit "$TMP/luajit.log" "$RC"
fi

# ---- 2c. the op oracle (tests/oracle): every op against NumPy and JAX -----------------
# Its own Python venv (tests/oracle/venv.sh: created once, from PyPI); without one it is
# one skipped test with the reason. Known defects (tests/oracle/expected_failures.py) count
# as skipped; their "xfail" lines stay in $BUILD/oracle/check.log, out of this log.
echo "== oracle (every op against NumPy and JAX)"
run_logged "$TMP/oracle.log" env BUILD="$BUILD" sh tests/oracle/run.sh
grep -v '^xfail ' "$TMP/oracle.log"
tally oracle "$TMP/oracle.log" "$RC"

# ---- 2d. the differential program fuzzer on its fixed seeds --------------------------
# tests/fuzz_diff: random programs run as plain Lua, eagerly, staged with and without
# optimisation, under tapes around and inside, against each other and finite differences.
# The seeds and the list of expected mismatches (known defects) are in
# tests/fuzz_diff/suite.lua; `make fuzz-diff SECONDS=N` runs new seeds for longer. Under
# LuaJIT the same runner takes the LuaJIT profile's seeds.
echo "== fuzz_diff (fixed seeds)"
if [ -n "$PRELOAD" ]; then
  run_logged "$TMP/fuzz.log" "$MOONGRAD" tests/fuzz_diff/main.lua --suite
else
  run_logged "$TMP/fuzz.log" lua5.4 tests/fuzz_diff/main.lua --suite
fi
grep -vE '^ok ' "$TMP/fuzz.log"
tally fuzz_diff "$TMP/fuzz.log" "$RC"
if [ -z "$PRELOAD" ] && command -v luajit >/dev/null 2>&1; then
  run_logged "$TMP/fuzzjit.log" env LUA_PATH="$ROOT/lua/ffi/?.lua;$BUILD/luajit/?.lua;$LUA_PATH" \
    LUA_CPATH=";;" luajit tests/fuzz_diff/main.lua --suite
  grep -vE '^ok ' "$TMP/fuzzjit.log"
  tally fuzz_diff-luajit "$TMP/fuzzjit.log" "$RC"
fi

# ---- 3. REPL -----------------------------------------------------------------
echo "== repl"
if [ -f tests/repl/run.sh ]; then
  run_logged "$TMP/repl.log" sh tests/repl/run.sh
  cat "$TMP/repl.log"
  tally repl "$TMP/repl.log" "$RC"
else
  skip repl "tests/repl/run.sh does not exist yet"
fi

# ---- 4. examples in quick mode -------------------------------------------------
echo "== examples (MG_QUICK=1)"
for ex in examples/*.lua; do
  [ -f "$ex" ] || continue
  t0=$(date +%s)
  run_logged "$TMP/ex.log" env MG_QUICK=1 "$MOONGRAD" "$ex"
  t1=$(date +%s)
  if [ "$RC" -eq 0 ]; then
    echo "ok $ex ($((t1 - t0)) s)"
    PASSED=$((PASSED + 1))
  else
    echo "not ok $ex (exit $RC):"
    tail -n 30 "$TMP/ex.log"
    FAILED=$((FAILED + 1))
  fi
done

# ---- 5. GC visibility ------------------------------------------------------------
echo "== gc"
run_logged "$TMP/gc.log" sh tests/gc/run.sh
cat "$TMP/gc.log"
tally gc "$TMP/gc.log" "$RC"

# ---- 6. documentation examples -----------------------------------------------------
echo "== doc"
run_logged "$TMP/doc.log" sh tests/doc/run.sh
cat "$TMP/doc.log"
tally doc "$TMP/doc.log" "$RC"

# ---- 7. embedding: C/C++ API tests, host examples, frame bench smoke run -------------
echo "== embed"
run_logged "$TMP/embed.log" env BUILD="$BUILD" sh tests/embed/run.sh
cat "$TMP/embed.log"
tally embed "$TMP/embed.log" "$RC"

# ---- 7b. exported symbols: only the API, and a host with colliding names links ------------
echo "== symbols"
if [ -n "$PRELOAD" ]; then
  skip symbols "not run on the sanitizer build (its libraries need libasan in the host)"
else
  run_logged "$TMP/symbols.log" env BUILD="$BUILD" sh tests/symbols/run.sh
  cat "$TMP/symbols.log"
  tally symbols "$TMP/symbols.log" "$RC"
fi

# ---- 8. install + pkg-config ---------------------------------------------------------
echo "== install"
if [ ! -f tests/install/run.sh ]; then
  skip install "tests/install/run.sh does not exist yet"
elif [ -n "$PRELOAD" ]; then
  # an instrumented libmoongrad.so cannot link into an uninstrumented C host
  skip install "not run on the sanitizer build"
else
  run_logged "$TMP/install.log" env BUILD="$BUILD" sh tests/install/run.sh
  cat "$TMP/install.log"
  tally install "$TMP/install.log" "$RC"
fi

# ---- total ---------------------------------------------------------------------
line="$PASSED passed, $FAILED failed"
[ "$SKIPPED" -gt 0 ] && line="$line, $SKIPPED skipped"
echo "$line"
[ "$FAILED" -eq 0 ]
