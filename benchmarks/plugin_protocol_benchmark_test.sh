#!/bin/bash
# Runs //benchmarks:plugin_protocol_benchmark --quick and checks what it prints: both placements,
# every row of the goals table with a value for each pair (the benchmark exits non-zero when a row
# is empty or a pair ran outside its placement). No timing is judged.
set -euo pipefail
bench="$1"
kv="$2"
go_host="$3"
go_plugin="$4"
many_mounts="$5"  # --many_mounts_plugin=PATH
out="$TEST_TMPDIR/out.txt"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

"$bench" "$kv" "$go_host" "$go_plugin" --quick --record="$TEST_TMPDIR/record.json" >"$out" ||
  { cat "$out"; fail "--quick exited non-zero"; }
cat "$out"
# --record: the same rows as a table record for docs/performance.md (one per metric and placement).
grep -q '"format": "bulwark-benchmark-table/1"' "$TEST_TMPDIR/record.json" || fail "no table record"
grep -q '"command": "bazel run -c opt //benchmarks:plugin_protocol_benchmark -- --quick"' \
  "$TEST_TMPDIR/record.json" || fail "the record does not name its command"
[ "$(grep -c '"split-cpus",$' "$TEST_TMPDIR/record.json")" -gt 5 ] || fail "no split-cpus rows in the record"
for placement in same-cpu split-cpus; do
  grep -q "^placement $placement:" "$out" || fail "no table for placement $placement"
done
for row in "launch -> first call, AutoMTLS, SHA-256 check" "echo 64 B p50" "echo 64 KiB p50" \
  "storage write 64 B p50" "storage read 64 KiB p50" "calls/s, echo 64 B, 8 callers" \
  "plugin USS idle" "host CPU per call, 8 callers"; do
  n=$(grep -c "^| $row" "$out" || true)
  [ "$n" = 2 ] || fail "row '$row' printed $n times, want once per placement"
done
# Every goal row carries a ratio and a verdict.
if grep -E '^\| (echo|storage|launch|calls|plugin USS)' "$out" | grep -E '\| -  +\|'; then
  fail "a row without a value"
fi

# The modes the callgrind script and the multiplexing run use: a fixed number of calls through
# the launcher valgrind can run, and one plugin process serving 70 mounts.
"$bench" "$kv" "$go_host" "$go_plugin" --calls=3 --warmup=1 --op=write64 --execve_launcher \
  >"$TEST_TMPDIR/calls.txt" || fail "--calls with --execve_launcher failed"
grep -q "^3 write64 calls, p50" "$TEST_TMPDIR/calls.txt" || fail "no --calls summary"
# A write reaches the host's loop twice from gRPC's threads (the plugin's brokered storage call,
# then the reply): each post either found the loop awake or woke it.
awk '/^host loop per call:/ { gsub(",", ""); for (i = 1; i <= NF; ++i) {
       if ($i == "wake-ups") w = $(i + 1); if ($i == "awake") a = $(i + 1) }
     found = 1 }
     END { exit !(found && w + a >= 1.99) }' "$TEST_TMPDIR/calls.txt" ||
  fail "hand-off counts missing or short: $(cat "$TEST_TMPDIR/calls.txt")"
# With the loop draining gRPC's completions (--loop_cq=1) the reply to a write is taken by the
# loop itself: only the brokered storage call is still posted, so fewer than two posts per write.
"$bench" "$kv" "$go_host" "$go_plugin" --calls=3 --warmup=1 --op=write64 --loop_cq=1 \
  >"$TEST_TMPDIR/loop_cq.txt" || fail "--loop_cq=1 failed"
grep -q "^3 write64 calls, p50" "$TEST_TMPDIR/loop_cq.txt" || fail "no --loop_cq=1 summary"
awk '/^host loop per call:/ { gsub(",", ""); for (i = 1; i <= NF; ++i) {
       if ($i == "wake-ups") w = $(i + 1); if ($i == "awake") a = $(i + 1) }
     found = 1 }
     END { exit !(found && w + a >= 0.99 && w + a < 1.99) }' "$TEST_TMPDIR/loop_cq.txt" ||
  fail "with --loop_cq=1 a write should be posted once: $(cat "$TEST_TMPDIR/loop_cq.txt")"
# The spin before park runs (its figures are for the benchmark, not judged here).
"$bench" "$kv" "$go_host" "$go_plugin" --calls=3 --warmup=1 --op=echo64 --loop_spin_us=50 \
  >"$TEST_TMPDIR/spin.txt" || fail "--loop_spin_us failed"
grep -q "^host loop per call: .* spins [0-9.]*" "$TEST_TMPDIR/spin.txt" || fail "no spin counts"
if "$bench" "$kv" "$go_host" "$go_plugin" --calls=3 --loop_spin_us=-1 2>"$TEST_TMPDIR/err.txt"; then
  fail "a negative spin was accepted"
fi
"$bench" "$kv" "$go_host" "$go_plugin" "$many_mounts" --mounts=1,70 --rounds=1 --warmup=1 --samples=4 \
  >"$TEST_TMPDIR/mounts.txt" || fail "--mounts failed"
cat "$TEST_TMPDIR/mounts.txt"
# 70 is past the SDK's default cap of 64 instances: this plugin raises it.
grep -q "^| 70 | [0-9]" "$TEST_TMPDIR/mounts.txt" || fail "no row for 70 mounts"

# The start-up breakdown: every step's row in both placements, with the CPU figures and the
# per-round ratio to go-plugin's launches (the run fails when a step mark is missing).
"$bench" "$kv" "$go_host" "$go_plugin" --launch_steps --quick >"$TEST_TMPDIR/steps.txt" ||
  { cat "$TEST_TMPDIR/steps.txt"; fail "--launch_steps failed"; }
cat "$TEST_TMPDIR/steps.txt"
for row in "open + SHA-256 of the artifact" "exec -> handshake line read" \
  "connect + mutual TLS + health check" "whole launch -> first call" "plugin: exec -> handshake line"; do
  n=$(grep -c "^| $row.* | [0-9.]* |" "$TEST_TMPDIR/steps.txt" || true)
  [ "$n" = 2 ] || fail "--launch_steps row '$row' printed $n times, want once per placement"
done
[ "$(grep -c '^launch p50 per round: .* ratio median [0-9.]*x' "$TEST_TMPDIR/steps.txt")" = 2 ] ||
  fail "--launch_steps printed no ratio to go-plugin per placement"

# A missing plugin is refused by name before anything runs.
if "$bench" /nonexistent/kv_plugin "$go_host" "$go_plugin" --quick 2>"$TEST_TMPDIR/err.txt"; then
  fail "a missing plugin was accepted"
fi
grep -q "/nonexistent/kv_plugin: not an executable file" "$TEST_TMPDIR/err.txt" ||
  fail "the error does not name the missing plugin: $(cat "$TEST_TMPDIR/err.txt")"
echo PASS
