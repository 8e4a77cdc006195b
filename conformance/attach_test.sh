#!/usr/bin/env bash
# Attach mode end to end: start the kv plugin as another host would (our own certificate in
# PLUGIN_CLIENT_CERT), hand the suite its handshake line and that certificate, and check that
# the tests which can run against a running plugin pass, the ones that must launch it skip,
# and the record says "attach" (which never certifies).
set -euo pipefail
suite="$PWD/$1"
plugin="$PWD/$2"
manifest="$PWD/$3"
dir=$(mktemp -d /tmp/bwat.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

# A go-plugin-profile host certificate (P-256, CN and SAN localhost, CA, both usages).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -keyout "$dir/host.key" -out "$dir/host.crt" -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -addext extendedKeyUsage=clientAuth,serverAuth \
  -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,digitalSignature,keyEncipherment,keyAgreement,keyCertSign \
  2>"$dir/openssl.err"

# The output files exist before the plugin starts: the background job's redirection may run
# after the first poll below, and a missing file must not end the script under `set -e`.
: >"$dir/stdout"
: >"$dir/stderr"
env -i VAULT_BACKEND_PLUGIN=6669da05-b1c8-4f49-97d9-c8e5bed98e20 PLUGIN_PROTOCOL_VERSIONS=5 \
  PLUGIN_UNIX_SOCKET_DIR="$dir" PLUGIN_CLIENT_CERT="$(cat "$dir/host.crt")" \
  "$plugin" >"$dir/stdout" 2>"$dir/stderr" &
pid=$!

# The handshake line: the plugin prints it within milliseconds; give up after 30 s.
line=""
for _ in $(seq 1 600); do
  line=$(head -n 1 "$dir/stdout")
  if [ -n "$line" ] && [ "$(wc -l <"$dir/stdout")" -ge 1 ]; then break; fi
  kill -0 "$pid" 2>/dev/null || { echo "plugin exited before its handshake"; cat "$dir/stderr"; exit 1; }
  sleep 0.05
done
[ -n "$line" ] || { echo "no handshake line within 30 s"; exit 1; }

"$suite" --attach_handshake="$line" --attach_client_cert="$dir/host.crt" \
  --attach_client_key="$dir/host.key" --manifest="$manifest" --record="$dir/record.json"

grep -q '"mode": "attach"' "$dir/record.json" || { echo "record does not say attach mode"; exit 1; }
passed=$(grep -c '"result": "passed"' "$dir/record.json" || true)
skipped=$(grep -c '"result": "skipped"' "$dir/record.json" || true)
echo "attach mode: $passed passed, $skipped skipped"
[ "$passed" -ge 30 ] || { echo "expected at least 30 tests to run against the attached plugin"; exit 1; }
[ "$skipped" -ge 1 ] || { echo "expected the launch-only tests to skip"; exit 1; }
