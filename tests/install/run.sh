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
  # The binding's sibling files (lua/ffi/moongrad/core_*.lua): staging, gradients, safetensors files.
  check "luajit runs a staged gradient and a safetensors round trip installed" sh -c \
    "cd '$prefix' && LUA_PATH='$prefix/share/lua/5.1/?.lua;$prefix/share/lua/5.1/?/init.lua;;' luajit -e 'local mg = require(\"moongrad\")
local f = mg.func(function(x) return mg.sum(x * x) end)
local x = mg.Variable(mg.tensor{1.5, 2.5})
local tape = mg.GradientTape(); tape:start(); local y = f(x); tape:stop()
mg.save(\"t.safetensors\", {g = tape:gradient(y, {x})[1]})
print(mg.load(\"t.safetensors\").g:totable()[2])' | grep -qx 5"
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
# ---- packaging: versioned libraries, licence, CMake package, the docs' build lines, LuaRocks ----
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
case "$BUILD" in /*) ABSBUILD=$BUILD ;; *) ABSBUILD="$ROOT/$BUILD" ;; esac
VERSION=$(sed -n 's/^#define MG_VERSION "\(.*\)"/\1/p' "$ROOT/core/mg.h")
check "the shared libraries are versioned: libmoongrad.so.$VERSION with SONAME libmoongrad.so.0" sh -c \
  "readelf -d '$prefix/lib/libmoongrad.so.$VERSION' | grep -q 'SONAME.*\[libmoongrad.so.0\]' &&
   readelf -d '$prefix/lib/libmoongrad_embed.so.$VERSION' | grep -q 'SONAME.*\[libmoongrad_embed.so.0\]' &&
   [ \"\$(readlink '$prefix/lib/libmoongrad.so')\" = libmoongrad.so.0 ] &&
   [ \"\$(readlink '$prefix/lib/libmoongrad.so.0')\" = libmoongrad.so.$VERSION ] &&
   readelf -d '$prefix/embed_host' | grep -q 'NEEDED.*\[libmoongrad_embed.so.0\]'"
check "the MIT licence is in the tree and installed" sh -c \
  "grep -q '^MIT License' '$ROOT/LICENSE' && cmp -s '$ROOT/LICENSE' '$prefix/share/doc/moongrad/LICENSE'"

# The build lines of the docs, run as written: the ```sh blocks' cc/c++ lines (with their
# continuation lines) in a directory holding host.c (doc/embedding.md's host program),
# tool.cpp, and links to the source tree's lua/, core/ and build/; pkg-config finds the
# installed tree. The ```cmake block is built as a project against the installed tree.
docdir="$prefix/doc-build"
mkdir -p "$docdir"
awk '/<!-- test: host.c -->/ {want = 1; next} want && /^```c/ {inb = 1; next} inb && /^```/ {exit} inb {print}' \
  "$ROOT/doc/embedding.md" >"$docdir/host.c"
cp "$prefix/embed_host.cpp" "$docdir/tool.cpp"
ln -s "$ROOT/lua" "$docdir/lua"; ln -s "$ROOT/core" "$docdir/core"; ln -s "$ABSBUILD" "$docdir/build"
awk 'FNR == 1 { inb = 0 }
     /^```sh/ { inb = 1; next } inb && /^```/ { inb = 0; next }
     inb && (cont || /^(cc|c\+\+|gcc|g\+\+|clang) /) { line = line $0 "\n"; cont = /\\$/; if (!cont) { printf "%s", line; print "#END " FILENAME; line = "" } }' \
  "$ROOT"/doc/*.md "$ROOT/README.md" >"$docdir/lines"
n=0 cmd=""
while IFS= read -r l; do
  case "$l" in
    "#END "*)
      n=$((n + 1))
      printf '%s' "$cmd" >"$docdir/line$n.sh"
      check "doc build line $n (${l#\#END $ROOT/}) compiles: $(head -n 1 "$docdir/line$n.sh")" sh -c \
        "cd '$docdir' && rm -f host tool a.out && PKG_CONFIG_PATH='$prefix/lib/pkgconfig' sh line$n.sh &&
         for b in host tool a.out; do [ -x \$b ] && LD_LIBRARY_PATH='$prefix/lib' ./\$b >/dev/null || true; done; ls host tool a.out 2>/dev/null | grep -q ."
      cmd="" ;;
    *) cmd="$cmd$l
" ;;
  esac
done <"$docdir/lines"
[ "$n" -ge 3 ] || { fail=$((fail + 1)); echo "not ok - the docs' build lines were found ($n)"; }

if command -v cmake >/dev/null 2>&1; then
  mkdir -p "$docdir/cmake"
  awk '/^```cmake/ {inb = 1; next} inb && /^```/ {exit} inb {print}' "$ROOT/doc/embedding.md" >"$docdir/cmake/CMakeLists.txt"
  cp "$docdir/host.c" "$docdir/cmake/host.c"
  check "find_package(moongrad): doc/embedding.md's CMake project builds both ways and runs" sh -c \
    "cd '$docdir/cmake' && cmake -S . -B out -DCMAKE_PREFIX_PATH='$prefix' >log 2>&1 && cmake --build out >>log 2>&1 &&
     readelf -d out/host | grep -q 'NEEDED.*libmoongrad_embed.so.0' && ! readelf -d out/host_static | grep -q libmoongrad &&
     out/host_static >/dev/null && LD_LIBRARY_PATH='$prefix/lib' out/host >/dev/null || { cat log; exit 1; }"
else
  echo "skip - find_package(moongrad) (cmake is not installed)"
fi

# The rockspec, built as LuaRocks' "make" backend does: its build target with its
# build variables, then its install target into a rock tree; stock lua5.4 loads it.
rock="$ROOT/moongrad-$VERSION-1.rockspec"
check "moongrad-$VERSION-1.rockspec builds (make backend, system BLIS) and installs a working rock" sh -c "
  lua5.4 -e '
    local env = {}
    assert(loadfile(\"$rock\", \"t\", env))()
    assert(env.package == \"moongrad\" and env.version == \"$VERSION-1\", \"package/version\")
    assert(env.description.license == \"MIT\" and env.build.type == \"make\")
    assert(env.external_dependencies.BLIS.library == \"blis\")
    local function vars(t) local o = {} for k, v in pairs(t or {}) do
      v = v:gsub(\"%$%(LUA_INCDIR%)\", \"/usr/include/lua5.4\"):gsub(\"%$%(BLIS_LIBDIR%)\", \"/usr/lib\")
        :gsub(\"%$%(LUADIR%)\", \"$prefix/rock/share\"):gsub(\"%$%(LIBDIR%)\", \"$prefix/rock/lib\")
      o[#o + 1] = k .. \"=\" .. v end return table.concat(o, \" \") end
    local f = io.open(\"$prefix/rock.sh\", \"w\")
    f:write(\"set -e; cd $ROOT; make -s \", env.build.build_target, \" BUILD=$ABSBUILD \", vars(env.build.build_variables), \"\\n\",
      \"make -s \", env.build.install_target, \" BUILD=$ABSBUILD \", vars(env.build.install_variables), \"\\n\")
    f:close()' &&
  sh '$prefix/rock.sh' >/dev/null &&
  env LUA_PATH='$prefix/rock/share/?.lua;$prefix/rock/share/?/init.lua' LUA_CPATH='$prefix/rock/lib/?.so' \
    lua5.4 -e 'local mg = require \"moongrad\"; assert(mg.ones{2, 2}:sum():item() == 4); print(package.searchpath(\"moongrad.core\", package.cpath))' |
    grep -q '$prefix/rock/lib/moongrad/core.so'"

# Plain `make` needs the build packages only: on a machine (a fake dpkg-query) with just
# those, `make all`'s check passes, while `make test`'s asks for the test tools, and
# `make demo` for the data set. (Before, every tool of the tests was a build requirement.)
mkdir -p "$prefix/fakebin"
build_pkgs=$(sed -n '/^BUILD_PACKAGES="/,/"$/p' "$ROOT/scripts/setup.sh" | tr -d '"' | sed 's/^BUILD_PACKAGES=//' | tr '\n' ' ')
cat >"$prefix/fakebin/dpkg-query" <<Q
#!/bin/sh
for p in $build_pkgs; do [ "\$3" = "\$p" ] && { printf 'install ok installed'; exit 0; }; done
exit 1
Q
chmod +x "$prefix/fakebin/dpkg-query"
check "plain make needs no test-only tools (hyperfine, expect, tmux, the data set)" sh -c "
  for t in hyperfine expect tmux dataset-fashion-mnist lua-busted; do
    case ' $build_pkgs ' in *\" \$t \"*) echo \"\$t is a build package\"; exit 1 ;; esac; done
  PATH='$prefix/fakebin':\$PATH sh '$ROOT/scripts/setup.sh' --check build &&
  ! PATH='$prefix/fakebin':\$PATH sh '$ROOT/scripts/setup.sh' --check build test 2>'$prefix/miss' &&
  grep -q expect '$prefix/miss' && grep -q tmux '$prefix/miss' &&
  ! PATH='$prefix/fakebin':\$PATH sh '$ROOT/scripts/setup.sh' --check build demo 2>'$prefix/miss' &&
  grep -q dataset-fashion-mnist '$prefix/miss' &&
  make -s -n -C '$ROOT' check-deps | grep -q 'setup.sh --check build\$\|setup.sh --check build ||' &&
  make -s -n -C '$ROOT' test-deps | grep -q 'check build test'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
