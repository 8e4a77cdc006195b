#!/usr/bin/env bash
# Proves tools/check_guide can fail: a small tree whose guide shows its example workspace passes,
# and each kind of drift planted into a copy of it fails with a line naming the file.
set -euo pipefail
checker="$(dirname "$0")/check_guide"
[ -x "$checker" ] || checker="$TEST_SRCDIR/$TEST_WORKSPACE/tools/check_guide"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0

make_good_tree() {  # $1: directory
  local ws="$1/examples/conformance_workspace"
  mkdir -p "$1/docs" "$ws"
  printf 'int main() {\n  return 0;\n}\n' > "$ws/main.cc"
  printf 'cc_binary(name = "p", srcs = ["main.cc"])\n' > "$ws/BUILD"
  printf 'line one\nline two\nline three\nline four\n' > "$ws/notes.txt"
  echo "# Explains the example; never shown." > "$ws/README.md"
  cat > "$1/docs/writing-a-plugin.md" <<'G'
# Guide

The program:

<!-- file: examples/conformance_workspace/main.cc -->
```cpp
int main() {
  return 0;
}
```

<!-- file: examples/conformance_workspace/BUILD -->

```python
cc_binary(name = "p", srcs = ["main.cc"])
```

Two lines of the notes:

<!-- excerpt: examples/conformance_workspace/notes.txt -->
```
line two
line three
```
G
}

expect() {  # $1: pass|fail, $2: description, $3: expected text in the output (fail only)
  local out status=0
  out=$("$checker" "$tmp/tree" 2>&1) || status=$?
  if [ "$1" = pass ] && [ $status -ne 0 ]; then
    echo "FAIL: $2: expected a pass, got:"; echo "$out"; failures=$((failures + 1))
  elif [ "$1" = fail ] && { [ $status -eq 0 ] || ! grep -qF -- "$3" <<<"$out"; }; then
    echo "FAIL: $2: expected a problem naming '$3', got (status $status):"; echo "$out"
    failures=$((failures + 1))
  else
    echo "ok: $2"
  fi
}

fresh() { rm -rf "$tmp/tree"; make_good_tree "$tmp/tree"; }
guide="$tmp/tree/docs/writing-a-plugin.md"
ws="$tmp/tree/examples/conformance_workspace"

fresh
expect pass "a guide that shows every file as it is"

fresh
sed -i 's/return 0;/return 1;/' "$ws/main.cc"
expect fail "a file changed after the guide was written" \
  "main.cc differs from the file at its line 2: guide '  return 0;', file '  return 1;'"

fresh
printf '// one more line\n' >> "$ws/main.cc"
expect fail "a line added at the end of a file" "main.cc differs from the file at its line 4"

fresh
printf 'int helper();\n' > "$ws/helper.h"
expect fail "a file the guide does not show" \
  "examples/conformance_workspace/helper.h is in the example workspace but the guide does not show it"

fresh
sed -i 's/^line two$/line 2/' "$ws/notes.txt"
expect fail "an excerpt that is no longer in the file" "excerpt of examples/conformance_workspace/notes.txt"

fresh
rm "$ws/BUILD"
expect fail "a marker naming a file that is gone" "examples/conformance_workspace/BUILD does not exist"

fresh
printf '\n<!-- file: examples/conformance_workspace/notes.txt -->\nno block here\n' >> "$guide"
expect fail "a marker without a code block" "is not followed by a code block"

fresh
printf '\n<!-- file: docs/other.md -->\n```\nx\n```\n' >> "$guide"
expect fail "a marker outside the example workspace" "docs/other.md is not a file of"

if [ $failures -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
