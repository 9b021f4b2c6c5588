#!/bin/sh
# run.sh — the documentation's examples must run.
#
# Extracts every ```lua block of doc/*.md and README.md and runs each one in a
# fresh `moongrad` process (where `mg` is predefined); blocks opened with
# ```lua no-run are skipped (shown, not run: REPL sessions, host set-up). A
# block passes when it exits 0 and, if any of its lines carries a `--> text`
# comment, when its output is exactly those texts in order (tabs read as
# spaces, trailing blanks ignored). Each block is then pasted into the REPL
# (`moongrad -i` reading it from stdin: the prompt's own loop, which reads a
# line at a time as from a terminal, keeps top-level locals and joins a
# paste's continuation lines): it passes when no error reaches the prompt
# and the `--> text` lines appear in order in what it prints (among the
# values the prompt echoes). A block that cannot run at a prompt says why on
# its fence, "```lua no-repl: reason"; it still runs as a script. It also
# regenerates doc/ops.md from
# core/ops.def and fails if the checked-in file differs or an op lacks an
# example, and regenerates doc/api.md from the help texts the same way.
# Prints "ok"/"not ok" lines for failures only, then
# "N passed, N failed".

ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
MOONGRAD=${MOONGRAD:-$BUILD/bin/moongrad}
cd "$ROOT" || exit 1
TMPD=$(mktemp -d) || exit 1
trap 'rm -rf "$TMPD"' EXIT INT TERM
# The blocks run in $TMPD (what they write stays out of the tree), where tests/ reads as the
# repository's, so an example may load a committed fixture by the path a reader at the
# repository root would type (doc/onnx.md: tests/fixtures/onnx/torch_mlp.onnx).
ln -s "$ROOT/tests" "$TMPD/tests" || exit 1
passed=0 failed=0

# Writes block N of every file as $TMPD/N.lua (+ N.where, N.expected).
awk -v dir="$TMPD" '
  FNR == 1 { inblock = 0 }
  /^```lua([ \t]+no-repl:.*)?[ \t]*$/ && !inblock {
                                 inblock = 1; n++; id = sprintf("%04d", n); file = dir "/" id ".lua"
                                 print FILENAME ":" FNR + 1 > (dir "/" id ".where")
                                 if ($0 ~ /no-repl:/) print "" > (dir "/" id ".norepl")
                                 printf "" > file; next }
  /^```/ && inblock { inblock = 0; close(file); next }
  inblock {
    print > file
    if ((i = index($0, "--> ")) > 0) print substr($0, i + 4) > (dir "/" id ".expected")
  }
' doc/*.md README.md 2>/dev/null

# normalise: tabs as spaces, no trailing blanks
norm() { sed -e 's/\t/ /g' -e 's/[ ]*$//' "$1"; }

for f in "$TMPD"/*.lua; do
  [ -f "$f" ] || continue
  n=${f%.lua}
  where=$(cat "$n.where")
  out=$(cd "$TMPD" && timeout 60 "$MOONGRAD" "$f" 2>&1)
  rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "not ok $where (exit $rc)"
    echo "$out" | tail -n 15 | sed 's/^/    /'
    failed=$((failed + 1))
  elif [ -f "$n.expected" ]; then
    printf '%s\n' "$out" > "$n.out"
    norm "$n.expected" > "$n.exp"
    if norm "$n.out" | cmp -s "$n.exp" -; then
      passed=$((passed + 1))
    else
      echo "not ok $where: the output differs from the --> comments (- expected, + got)"
      norm "$n.out" | diff -U0 "$n.exp" - | sed -e '1,2d' -e 's/^/    /'
      failed=$((failed + 1))
    fi
  else
    passed=$((passed + 1))
  fi
  # pasted into the REPL
  [ "$rc" -eq 0 ] && [ ! -f "$n.norepl" ] || continue
  rout=$(cd "$TMPD" && timeout 60 "$MOONGRAD" -i < "$f" 2>&1)
  rrc=$?
  if [ "$rrc" -ne 0 ] || printf '%s\n' "$rout" | grep -q '^stack traceback:'; then
    echo "not ok $where pasted into the REPL (exit $rrc)"
    printf '%s\n' "$rout" | grep -B2 -A6 '^stack traceback:' | head -n 15 | sed 's/^/    /'
    failed=$((failed + 1))
  elif [ -f "$n.expected" ] && ! printf '%s\n' "$rout" | sed -e 's/\t/ /g' -e 's/[ ]*$//' |
       awk 'NR == FNR { want[++w] = $0; next } i < w && $0 == want[i + 1] { i++ } END { exit i < w }' "$n.exp" -; then
    echo "not ok $where pasted into the REPL: the --> lines do not all appear, in order"
    printf '%s\n' "$rout" | head -n 15 | sed 's/^/    /'
    failed=$((failed + 1))
  else
    passed=$((passed + 1))
  fi
done

# doc/ops.md is generated from the op table
if lua5.4 scripts/gen_ops_doc.lua core/ops.def > "$TMPD/ops.md" 2> "$TMPD/gen.err" &&
   cmp -s "$TMPD/ops.md" doc/ops.md; then
  passed=$((passed + 1))
else
  echo "not ok doc/ops.md is out of date: run lua5.4 scripts/gen_ops_doc.lua > doc/ops.md"
  cat "$TMPD/gen.err"
  diff doc/ops.md "$TMPD/ops.md" 2>&1 | head -n 20 | sed 's/^/    /'
  failed=$((failed + 1))
fi

# doc/api.md is generated from the help texts (the stdlib's doc comments)
if (cd "$TMPD" && "$MOONGRAD" "$ROOT/scripts/gen_api_doc.lua") > "$TMPD/api.md" 2> "$TMPD/api.err" &&
   cmp -s "$TMPD/api.md" doc/api.md; then
  passed=$((passed + 1))
else
  echo "not ok doc/api.md is out of date: run build/bin/moongrad scripts/gen_api_doc.lua > doc/api.md"
  cat "$TMPD/api.err"
  diff doc/api.md "$TMPD/api.md" 2>&1 | head -n 20 | sed 's/^/    /'
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
