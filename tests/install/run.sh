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
if command -v luajit >/dev/null 2>&1; then
  check "luajit requires the installed moongrad (the FFI binding)" sh -c \
    "LUA_PATH='$prefix/share/lua/5.1/?.lua;$prefix/share/lua/5.1/?/init.lua;;' luajit -e 'local mg = require(\"moongrad\"); assert(type(mg.ones{1}) == \"cdata\"); print(mg.ones{2,2})' | grep -q 'tensor(\[\[1., 1.\]'"
fi
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
# An embedding host: the runtime, the built-in stdlib (no .lua files needed: LUA_PATH is unset and
# the host runs from outside the tree), a tensor in and out.
cat > "$prefix/embed_host.c" <<'C'
#include <moongrad/moongrad.h>
#include <stdio.h>
int main(void) {
  mg_runtime *rt = mg_runtime_new(NULL);
  if (!rt) { puts(mg_last_error()); return 1; }
  if (mg_run_string(rt, "function f(x) return (x * 10):sum():item(), mg.version end", "=host")) {
    puts(mg_runtime_errmsg(rt)); return 1;
  }
  int64_t shape[1] = {3};
  float d[3] = {1, 2, 3};
  mg_tensor *x;
  if (mg_tensor_from_data(MG_FLOAT32, 1, shape, d, &x)) return 1;
  mg_value a = mg_vtensor(x), r[2];
  if (mg_invoke(rt, "f", &a, 1, r, 2)) { puts(mg_runtime_errmsg(rt)); return 1; }
  printf("%g %s\n", mg_value_number(&r[0], NULL), r[1].u.str.s);
  mg_tensor_release(x);
  mg_runtime_free(rt);
  return 0;
}
C
cat > "$prefix/embed_host.cpp" <<'CPP'
#include <moongrad/moongrad.hpp>
#include <cstdio>
int main() {
  moongrad::Runtime rt;
  rt.def("host_scale", [](const moongrad::Values &a) -> moongrad::Values { return {a.at(0).number() * 3}; });
  std::printf("%g\n", rt.eval("return mg.ones{2, 2}:sum():item() + host_scale(2)")[0].number());
}
CPP
check "a C embedding host builds with pkg-config and runs a script" sh -c \
  "cd / && cc -o '$prefix/embed_host' '$prefix/embed_host.c' \$(pkg-config --cflags --libs moongrad) -Wl,-rpath,'$prefix/lib' && env -u LUA_PATH -u LUA_CPATH '$prefix/embed_host' | grep -qx '60 [0-9.]*'"
check "a C++ host builds with pkg-config and uses moongrad.hpp" sh -c \
  "cd / && c++ -std=c++17 -o '$prefix/embed_host_cxx' '$prefix/embed_host.cpp' \$(pkg-config --cflags --libs moongrad) -Wl,-rpath,'$prefix/lib' && '$prefix/embed_host_cxx' | grep -qx 10"
check "a static embedding host builds with pkg-config --static" sh -c \
  "cd / && cc -o '$prefix/embed_static' '$prefix/embed_host.c' -I'$prefix/include' '$prefix/lib/libmoongrad_embed.a' '$prefix/lib/libmoongrad.a' \$(pkg-config --static --libs-only-l moongrad | sed 's/-lmoongrad_embed -lmoongrad//') && '$prefix/embed_static' | grep -q '^60 '"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
