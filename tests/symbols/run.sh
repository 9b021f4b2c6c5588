#!/bin/sh
# run.sh — the libraries export exactly the API (issue 15).
#
#   BUILD=build sh tests/symbols/run.sh      (tests/run.sh calls it)
#
# 1. Every function a public header declares (core/mg.h, lua/include/moongrad.h)
#    is marked MG_API, the one export macro.
# 2. `nm -D --defined-only` of libmoongrad.so is exactly mg.h's MG_API
#    functions; of libmoongrad_embed.so, moongrad.h's plus luaopen_moongrad_core.
#    The static archives' global symbols are the same lists (scripts/localize.sh).
# 3. On x86-64, AVX instructions appear only in the ISA copies of the kernels.
# 4. A host that defines moongrad's internal names (tests/symbols/collide_host.c)
#    links statically and dynamically, and both run right.
# Prints "ok"/"not ok" lines and "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
CC=${CC:-cc}
cd "$ROOT" || exit 1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
notok() { fail=$((fail + 1)); echo "not ok - $1"; [ -n "${2:-}" ] && sed 's/^/    /' "$2" | head -30; }

# Function declarations at the start of a line (the headers' style), with the
# name before "(": "MG_API mg_status mg_apply(" -> mg_apply.
declared() {  # declared HEADER: every declared function name
  grep -E '^[A-Za-z_][A-Za-z0-9_ *]*[ *]([a-z][A-Za-z0-9_]*)\(' "$1" |
    grep -vE '^(typedef|static|#)' | sed -E 's/^[^(]*[ *]([A-Za-z_][A-Za-z0-9_]*)\(.*/\1/' | sort -u
}
exported_decl() {  # exported_decl HEADER: the MG_API ones
  grep -E '^MG_API ' "$1" | sed -E 's/^[^(]*[ *]([A-Za-z_][A-Za-z0-9_]*)\(.*/\1/' | sort -u
}

for h in core/mg.h lua/include/moongrad.h; do
  declared "$h" >"$tmp/all"
  exported_decl "$h" >"$tmp/api"
  comm -23 "$tmp/all" "$tmp/api" >"$tmp/unmarked"
  if [ -s "$tmp/unmarked" ] || [ ! -s "$tmp/api" ]; then notok "$h: every declared function is MG_API" "$tmp/unmarked"
  else ok "$h: all $(wc -l <"$tmp/api") declared functions are MG_API"; fi
done

exported_decl core/mg.h >"$tmp/core.want"
{ exported_decl lua/include/moongrad.h; echo luaopen_moongrad_core; } | sort -u >"$tmp/embed.want"

# compare NAME WANT GOT: the two lists must be equal.
compare() {
  if cmp -s "$2" "$3"; then ok "$1 ($(wc -l <"$3") symbols)"
  else
    { echo "exported but not in the headers:"; comm -13 "$2" "$3"; echo "in the headers but not exported:"; comm -23 "$2" "$3"; } >"$tmp/diff"
    notok "$1" "$tmp/diff"
  fi
}
dyn() { nm -D --defined-only "$1" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' | sed 's/@.*//' | sort -u; }
sta() { nm -g --defined-only "$1" 2>/dev/null | awk 'NF == 3 && $2 ~ /^[TDBRVWiu]$/ {print $3}' | sort -u; }

dyn "$BUILD/lib/libmoongrad.so" >"$tmp/got"
compare "nm -D libmoongrad.so == the MG_API functions of mg.h" "$tmp/core.want" "$tmp/got"
dyn "$BUILD/lib/libmoongrad_embed.so" >"$tmp/got"
compare "nm -D libmoongrad_embed.so == moongrad.h's MG_API functions + luaopen_moongrad_core" "$tmp/embed.want" "$tmp/got"
sta "$BUILD/lib/libmoongrad.a" >"$tmp/got"
compare "libmoongrad.a: its global symbols are mg.h's MG_API functions" "$tmp/core.want" "$tmp/got"
sta "$BUILD/lib/libmoongrad_embed.a" >"$tmp/got"
compare "libmoongrad_embed.a: its global symbols are moongrad.h's + luaopen_moongrad_core" "$tmp/embed.want" "$tmp/got"

# Portable code: the library runs on any x86-64. Every function that uses an
# AVX register (%ymm, %zmm) must belong to an ISA copy of the kernels (core/isa.c:
# names ending in __avx2 or __avx512), and %zmm only to the AVX-512 one.
if [ "$(uname -m)" = x86_64 ]; then
  objdump -d --no-show-raw-insn "$BUILD/lib/libmoongrad.so" |
    awk '/^[0-9a-f]+ <.*>:$/ { fn = $2; next }
         /%ymm/ && fn !~ /__avx(2|512)>:$/ { print "ymm in " fn }
         /%zmm/ && fn !~ /__avx512>:$/ { print "zmm in " fn }' | sort -u >"$tmp/wide"
  if [ -s "$tmp/wide" ]; then notok "libmoongrad.so: AVX instructions only in the run-time-chosen kernel copies" "$tmp/wide"
  else ok "libmoongrad.so: AVX instructions only in the run-time-chosen kernel copies"; fi
fi

# Licences a studio can ship: the REPL's line editor is libedit (BSD), not GNU
# readline (GPL); no library or program of ours links readline.
if command -v ldd >/dev/null 2>&1; then
  ldd "$BUILD/bin/moongrad" "$BUILD/lib/libmoongrad.so" "$BUILD/lib/libmoongrad_embed.so" >"$tmp/ldd" 2>&1
  if grep -q 'libreadline' "$tmp/ldd" || ! grep -q 'libedit' "$tmp/ldd"; then
    notok "the moongrad program links libedit, and nothing links GNU readline" "$tmp/ldd"
  else ok "the moongrad program links libedit, and nothing links GNU readline"; fi
fi

# The host with colliding names, linked both ways.
LIBS="-llua5.4 -llapack -lblis -lcjson -lz -lm -lpthread -lprotobuf-c -fopenmp"
if $CC -std=c11 -Ilua/include -Icore -o "$tmp/host_static" tests/symbols/collide_host.c \
     "$BUILD/lib/libmoongrad_embed.a" "$BUILD/lib/libmoongrad.a" $LIBS >"$tmp/log" 2>&1 &&
   "$tmp/host_static" >>"$tmp/log" 2>&1; then ok "a host defining map_get, k_add, ... links statically and runs right"
else notok "a host defining map_get, k_add, ... links statically and runs right" "$tmp/log"; fi
if $CC -std=c11 -Ilua/include -Icore -o "$tmp/host_dynamic" tests/symbols/collide_host.c \
     -L"$BUILD/lib" -lmoongrad_embed -lmoongrad -Wl,-rpath,"$BUILD/lib" >"$tmp/log" 2>&1 &&
   "$tmp/host_dynamic" >>"$tmp/log" 2>&1; then ok "a host defining map_get, k_add, ... links dynamically and runs right"
else notok "a host defining map_get, k_add, ... links dynamically and runs right" "$tmp/log"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
