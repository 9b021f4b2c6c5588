#!/bin/sh
# localize.sh — makes a static archive that exports only the API.
#
#   sh scripts/localize.sh OUT.a OBJ...
#
# A static archive keeps every global symbol of its objects global, whatever
# their visibility: a host that defines its own map_get or k_add would fail to
# link beside libmoongrad.a. So the objects are linked into one relocatable
# object (cc -r: the references between them are resolved there), every
# symbol of hidden visibility (all but the MG_API functions: the sources are
# compiled with -fvisibility=hidden) is made local with objcopy, and that one
# object is the archive. A host pulls the whole engine in, as it would have
# anyway (the op table references every kernel).
set -eu
out=$1
shift
obj="${out%.a}.o"
${CC:-cc} -r -nostdlib -o "$obj" "$@"
${OBJCOPY:-objcopy} --localize-hidden "$obj"
rm -f "$out"
${AR:-ar} rcs "$out" "$obj"
rm -f "$obj"
