#!/bin/sh
# setup.sh — installs the Debian packages moongrad needs, by purpose.
#
#   sh scripts/setup.sh [--check] [GROUP...]
#
#   GROUP     build (the default: what plain `make` needs), test (`make test`,
#             `make asan`, `make fuzz`), demo (`make demo`, `make examples`:
#             the data sets), bench (`make bench`), ci (what only CI runs: the
#             aarch64 cross compiler of `make cross-aarch64`), all (every group).
#   --check   exit 0 silently when every package of the groups is present,
#             else print the missing ones and exit 1 (no apt: it only asks
#             dpkg, so `make` can call it each time)
#   without --check: install what is missing: apt-get as root, else print
#             the sudo command to run and exit 1
#
# These lists are the one record of moongrad's Debian dependencies (README.md
# points here); keep them in step with the Makefile. Plain `make` needs the build
# group only, so a machine without the test tools (expect, tmux, hyperfine)
# or the data set builds; `make test`, `make demo` and `make bench` ask for
# theirs. POSIX sh on purpose: it runs before anything else is there.

# liblapack-dev: mg.linalg's factorizations (reference LAPACK; its BLAS calls go to BLIS).
# protobuf-c-compiler + libprotobuf-c-dev: ONNX files (mg.onnx; core/onnx_subset.proto).
BUILD_PACKAGES="build-essential pkg-config
liblua5.4-dev lua5.4
libblis-dev libblis4-openmp liblapack-dev
libedit-dev libcjson-dev zlib1g-dev
protobuf-c-compiler libprotobuf-c-dev"
# luajit: the FFI binding's specs; clang + libclang-rt-14-dev: `make fuzz`;
# graphviz: plot_model's specs; tmux and expect drive the REPL tests.
# dataset-fashion-mnist and fortunes: the data of examples/*.lua, which `make test`
# runs in their quick mode (fortunes: the text corpus of char_transformer.lua and
# text_classifier.lua, /usr/share/games/fortunes).
TEST_PACKAGES="luajit lua-busted graphviz tmux expect clang libclang-rt-14-dev dataset-fashion-mnist fortunes"
DEMO_PACKAGES="dataset-fashion-mnist fortunes"
BENCH_PACKAGES="hyperfine dataset-fashion-mnist fortunes"
# Only where apt can install them (CI runs as root on Debian).
CI_PACKAGES="gcc-aarch64-linux-gnu libc6-dev-arm64-cross"

check=0
groups=""
for a in "$@"; do
  case "$a" in
    --check) check=1 ;;
    build|test|demo|bench|ci) groups="$groups $a" ;;
    all) groups="build test demo bench ci" ;;
    *) echo "setup.sh: unknown argument '$a' (groups: build test demo bench ci all; option --check)" >&2; exit 2 ;;
  esac
done
[ -z "$groups" ] && groups="build"

PACKAGES=""
for g in $groups; do
  case "$g" in
    build) PACKAGES="$PACKAGES $BUILD_PACKAGES" ;;
    test) PACKAGES="$PACKAGES $TEST_PACKAGES" ;;
    demo) PACKAGES="$PACKAGES $DEMO_PACKAGES" ;;
    bench) PACKAGES="$PACKAGES $BENCH_PACKAGES" ;;
    ci) PACKAGES="$PACKAGES $CI_PACKAGES" ;;
  esac
done

setup_missing() {
  missing=""
  for p in $PACKAGES; do
    case " $missing " in *" $p "*) continue ;; esac
    # "install ok installed" is the only state that means usable.
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
    case "$st" in
      *" installed") ;;
      *) missing="$missing $p" ;;
    esac
  done
  echo "${missing# }"
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup.sh: dpkg-query not found: moongrad's set-up expects Debian 12 (bookworm) or later" >&2
  exit 1
fi

missing=$(setup_missing)

if [ "$check" -eq 1 ]; then
  [ -z "$missing" ] && exit 0
  echo "setup.sh: missing Debian packages for '${groups# }': $missing" >&2
  exit 1
fi

if [ -z "$missing" ]; then
  echo "setup.sh: all packages present (${groups# })"
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup.sh: missing Debian packages for '${groups# }': $missing" >&2
  echo "setup.sh: run as root, or:" >&2
  echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing" >&2
  exit 1
fi

echo "setup.sh: installing $missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q || exit 1
# shellcheck disable=SC2086  # word splitting of the package list is wanted
apt-get install -y -q --no-install-recommends $missing || exit 1

missing=$(setup_missing)
if [ -n "$missing" ]; then
  echo "setup.sh: still missing after apt-get: $missing" >&2
  exit 1
fi
echo "setup.sh: done"
