#!/bin/sh
# setup.sh — installs the Debian packages moongrad needs to build and test.
#
#   sh scripts/setup.sh --check   exit 0 silently when every package is present,
#                                 else print the missing ones and exit 1 (no apt:
#                                 it only asks dpkg, so `make` can call it each time)
#   sh scripts/setup.sh           install what is missing: apt-get as root, else
#                                 print the sudo command to run and exit 1
#
# The list is DESIGN.md's "Dependencies", plus the compilers
# and runtimes of the sanitizer/fuzz builds (clang, libclang-rt-14-dev) and the
# tools the REPL tests and benchmarks drive (tmux, expect, hyperfine).
# POSIX sh on purpose: it runs before anything else is there.

PACKAGES="build-essential pkg-config
liblua5.4-dev lua5.4 luajit libluajit-5.1-dev
libblis-dev libblis4-openmp
libreadline-dev lua-busted lua-cjson libcjson-dev
dataset-fashion-mnist graphviz
tmux expect hyperfine
clang libclang-rt-14-dev"

setup_missing() {
  missing=""
  for p in $PACKAGES; do
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

if [ "$1" = "--check" ]; then
  [ -z "$missing" ] && exit 0
  echo "setup.sh: missing Debian packages: $missing" >&2
  exit 1
fi

if [ -z "$missing" ]; then
  echo "setup.sh: all packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: missing Debian packages: $missing" >&2
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
