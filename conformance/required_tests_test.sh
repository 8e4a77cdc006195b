#!/usr/bin/env bash
# Fails when conformance/required_tests.md is not what the suite generates, so the published
# list of required tests always matches the suite that runs.
set -euo pipefail
suite="$1"
checked_in="$2"
if ! diff -u "$checked_in" <("$suite" --list_requirements); then
  echo "conformance/required_tests.md is stale; regenerate it with:" >&2
  echo "  bazel run //conformance:suite -- --list_requirements > conformance/required_tests.md" >&2
  exit 1
fi
