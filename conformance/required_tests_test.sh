#!/usr/bin/env bash
# Fails when conformance/required_tests.md is not what the suite generates, so the published
# list of required tests always matches the suite that runs; and when a requirement cites a
# section of docs/conformance.md (conformance.md "Heading") that the document does not have, so
# every cited rule can be found where it is cited.
set -euo pipefail
suite="$1"
checked_in="$2"
conformance_md="$3"
if ! diff -u "$checked_in" <("$suite" --list_requirements); then
  echo "conformance/required_tests.md is stale; regenerate it with:" >&2
  echo "  bazel run //conformance:suite -- --list_requirements > conformance/required_tests.md" >&2
  exit 1
fi
status=0
# The section is the third column of the (now verified) table.
while IFS= read -r section; do
  case "$section" in
    *'conformance.md "'*)
      heading="${section#*conformance.md \"}"
      heading="${heading%%\"*}"
      if ! grep -qE "^#+ ${heading}\$" "$conformance_md"; then
        echo "a requirement cites conformance.md \"$heading\", which docs/conformance.md has no heading for" >&2
        status=1
      fi
      ;;
    *conformance.md*)
      echo "a requirement cites conformance.md without a quoted heading: $section" >&2
      status=1
      ;;
  esac
done < <(awk -F' [|] ' '/^[|] `/ {print $3}' "$checked_in")
exit "$status"
