#!/bin/sh
# Installs into a temporary prefix and checks what an installed moongrad must do:
# stock lua5.4 can require it, the program runs, and a C host builds with pkg-config.
# Prints "ok"/"not ok" lines and a closing "N passed, N failed".
set -u
BUILD=${BUILD:-build}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
pass=0 fail=0
check() {  # check NAME COMMAND...
  name=$1; shift
  if out=$("$@" 2>&1); then pass=$((pass + 1)); echo "ok - $name"
  else fail=$((fail + 1)); echo "not ok - $name"; echo "$out" | sed 's/^/    /' | head -20; fi
}
make -s install BUILD="$BUILD" PREFIX="$prefix" >/dev/null 2>&1 || { echo "not ok - make install"; echo "0 passed, 1 failed"; exit 1; }
export LUA_PATH="$prefix/share/lua/5.4/?.lua;$prefix/share/lua/5.4/?/init.lua;;"
export LUA_CPATH="$prefix/lib/lua/5.4/?.so;;"
check "stock lua5.4 requires the installed moongrad" sh -c \
  "lua5.4 -e 'print(require(\"moongrad\").ones{2,2})' | grep -q 'tensor(\[\[1., 1.\]'"
check "installed moongrad program runs a one-liner" sh -c \
  "env -u LUA_PATH -u LUA_CPATH '$prefix/bin/moongrad' -e 'print(mg.matmul(mg.tensor{{2,3},{4,1}}, mg.tensor{{1,5},{2,1}}):totable()[2][2])' | grep -qx 21"
cat > "$prefix/host.c" <<'C'
#include <moongrad/mg.h>
#include <stdio.h>
int main(void) {
  mg_ctx *ctx = mg_ctx_new();
  int64_t shape[2] = {2, 2};
  float a[4] = {1, 2, 3, 4};
  mg_tensor *x, *y;
  if (mg_tensor_from_data(MG_FLOAT32, 2, shape, a, &x)) return 1;
  if (mg_apply(ctx, MG_OP_MATMUL, (mg_tensor *[]){x, x}, 2, NULL, &y)) { puts(mg_last_error()); return 1; }
  float out[4];
  mg_tensor_copy_to(y, out, sizeof out);
  printf("%g %g %g %g\n", out[0], out[1], out[2], out[3]);
  mg_tensor_release(x); mg_tensor_release(y); mg_ctx_free(ctx);
  return 0;
}
C
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
check "a C host builds with pkg-config and runs" sh -c \
  "cc -o '$prefix/host' '$prefix/host.c' \$(pkg-config --cflags --libs moongrad) -Wl,-rpath,'$prefix/lib' && '$prefix/host' | grep -qx '7 10 15 22'"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
