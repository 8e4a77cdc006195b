#!/usr/bin/env bash
# Runs the go-plugin v1.0.1 host (examples/goplugin/host) against a backend plugin binary with
# AutoMTLS on and off and checks each run's PASS line; for the Go example plugin also pins the
# go-plugin v1.0.1 broker TLS behaviour that the repairs in vaultplugin/brokertls.go exist for.
#
# usage: goplugin_test.sh HOST PLUGIN go|generic
set -euo pipefail

host="$1"
plugin="$2"
kind="$3"

# go-plugin puts every socket (plugin listener, host broker listeners) in $TMPDIR as
# "plugin<digits>"; unix socket paths must stay under 108 bytes, and Bazel's TEST_TMPDIR can be
# longer than that allows.
if [ -n "${TEST_TMPDIR:-}" ] && [ "${#TEST_TMPDIR}" -lt 80 ]; then
  sockdir=$(mktemp -d "$TEST_TMPDIR/s.XXXXXX")
else
  sockdir=$(mktemp -d /tmp/bwgp.XXXXXX)
fi
logdir=$(mktemp -d "${TEST_TMPDIR:-/tmp}/logs.XXXXXX")
trap 'rm -rf "$sockdir" "$logdir"' EXIT
export TMPDIR="$sockdir"

passed=0
failed=0

# What must never show in a run's output: the plugin exiting with a non-zero status (go-plugin
# logs it at debug as `plugin process exited: ... error="exit status N"`), sanitizer reports
# and Go panics or races from either process (plugin stderr is relayed through the host's log).
forbidden='plugin process exited: .*error=|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|^panic: |DATA RACE'

# expect NAME EXIT_CODE OUTPUT_REGEX -- COMMAND...
expect() {
  local name="$1" want_code="$2" want_out="$3"
  shift 4
  local code=0
  "$@" >"$logdir/$name.out" 2>"$logdir/$name.err" || code=$?
  if [ "$code" -eq "$want_code" ] && grep -Eq -- "$want_out" "$logdir/$name.out" "$logdir/$name.err" &&
    { [ "$want_code" -ne 0 ] || ! grep -Eq -- "$forbidden" "$logdir/$name.out" "$logdir/$name.err"; }; then
    passed=$((passed + 1))
    echo "ok   $name: $(head -c 300 "$logdir/$name.out" | head -n 1)"
  else
    failed=$((failed + 1))
    echo "FAIL $name: exit $code (want $want_code); output must match /$want_out/ and, on success, not /$forbidden/"
    echo "---- stdout"; head -c 4000 "$logdir/$name.out"
    echo "---- stderr"; tail -c 8000 "$logdir/$name.err"
    echo "----"
  fi
}

common=(-plugin "$plugin" -plugin-kind "$kind" -log-level debug -start-timeout 30s)

expect automtls_on 0 '^PASS .*automtls=true broker_calls\{plaintext=0 tls_no_client_cert=0 tls_verified=[1-9]' \
  -- "$host" "${common[@]}" -automtls=true
expect automtls_off 0 '^PASS .*automtls=false broker_calls\{plaintext=[1-9][0-9]* tls_no_client_cert=0 tls_verified=0\}' \
  -- "$host" "${common[@]}" -automtls=false
expect bench_smoke 0 '"calls_per_sec"' \
  -- "$host" "${common[@]}" -bench -bench-launches 2 -bench-warmup 2 -bench-samples 20 \
  -bench-duration 100ms -log-level warn

if [ "$kind" = go ]; then
  # Stock go-plugin v1.0.1 on the plugin side cannot verify the host's brokered server under
  # AutoMTLS (no RootCAs, no ServerName: go-plugin#109). If this starts passing, the repair is
  # no longer needed.
  expect v101_plugin_broker_dial_fails 1 'certificate is valid for localhost, not unused' \
    -- env BULWARK_GOPLUGIN_NO_BROKER_TLS_REPAIR=1 "$host" "${common[@]}" -automtls=true
  # Stock go-plugin v1.0.1 on the host side serves brokered connections without asking for a
  # client certificate.
  expect v101_host_broker_no_client_cert 0 '^PASS .*tls_no_client_cert=[1-9][0-9]* tls_verified=0' \
    -- "$host" "${common[@]}" -automtls=true -repair-broker-tls=false
  # Run without the magic cookie, the plugin refuses (go-plugin's message, exit status 1).
  expect no_magic_cookie 1 'This binary is a plugin' -- env -u VAULT_BACKEND_PLUGIN "$plugin"
fi

leftover=$(ls -A "$sockdir")
if [ -n "$leftover" ]; then
  failed=$((failed + 1))
  echo "FAIL sockets_removed: left in $sockdir: $leftover"
else
  passed=$((passed + 1))
  echo "ok   sockets_removed"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
