#!/usr/bin/env bash
# Runs the conformance suite binary (first argument) with the remaining arguments; with a
# wrapper (plugin_conformance_test's `wrapper`), the first argument is the wrapper, which runs
# the suite itself. Bazel's test
# environment (XML_OUTPUT_FILE, TEST_UNDECLARED_OUTPUTS_DIR, GTEST_SHARD_*, TESTBRIDGE_TEST_ONLY,
# TEST_RANDOM_SEED) reaches the suite unchanged; gtest and the suite read it themselves.
set -euo pipefail
suite="$1"
shift
exec "$suite" "$@"
