#!/bin/sh
# isa_rename.sh — one ISA copy of the kernels as one object (core/isa.c).
#
#   sh scripts/isa_rename.sh OUT.o ISA OBJ...
#
# Links OBJ... (the kernels compiled for ISA) into one relocatable object, so
# that their calls to each other are references to one symbol each, then
# renames every function they define, definitions and references alike, with
# the suffix __ISA (k_add -> k_add__avx2; static helpers and OpenMP's outlined
# bodies too, so tests/symbols can tell every wide instruction's owner). The
# copy then lives beside the baseline kernels and calls only its own helpers;
# what it calls outside (mg_iter, mg_seterror, libc) keeps its name.
set -eu
out=$1 isa=$2
shift 2
${CC:-cc} -r -nostdlib -o "$out.tmp" "$@"
nm --defined-only "$out.tmp" | awk -v s="__$isa" '$2 == "T" || $2 == "t" { print $3, $3 s }' | sort -u >"$out.syms"
${OBJCOPY:-objcopy} --redefine-syms="$out.syms" "$out.tmp" "$out"
rm -f "$out.tmp" "$out.syms"
