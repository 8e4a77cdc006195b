#!/usr/bin/env bash
# Guide step 6 (docs/writing-a-plugin.md, "Run it under a host") as written, from the author
# example workspace: build the notes plugin and the bulwark server there, start
# `bulwark server -dev -dev-plugin-dir=plugins`, and drive notes/ with bulwark's CLI (write,
# read, list). .ci/run counts it as one case. Everything lives in a fresh temporary directory;
# the server is stopped on exit. Exit 0 when the read answers what was written.
#
#   tools/ci_dev_plugin_dir.sh        (from the bulwark checkout)
set -euo pipefail
cd "$(dirname "$0")/../examples/conformance_workspace"

# Hang guard only: how long the server may take to print its banner on a busy machine.
readonly BANNER_WAIT_SECONDS=300

bazel build -c opt //:notes @bulwark//server:bulwark
bin="$(bazel info -c opt bazel-bin)"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/plugins"
cp -f "$bin/notes" "$work/plugins/"
bulwark="$bin/external/bulwark/server/bulwark"
"$bulwark" server -dev -dev-root-token-id=root -dev-listen-address=127.0.0.1:0 \
  -dev-plugin-dir="$work/plugins" > "$work/server.log" 2>&1 &
server_pid=$!

addr=""
for _ in $(seq 1 "$BANNER_WAIT_SECONDS"); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "ci_dev_plugin_dir: the server exited:" >&2; cat "$work/server.log" >&2; exit 1
  fi
  if grep -q "The following dev plugins are mounted" "$work/server.log"; then
    addr="$(sed -n 's/^ *Api Address: *//p' "$work/server.log" | head -n 1)"
    [[ -n "$addr" ]] && break
  fi
  sleep 1
done
if [[ -z "$addr" ]]; then
  echo "ci_dev_plugin_dir: no banner with the mounted plugins within ${BANNER_WAIT_SECONDS}s:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
grep -q -- "- notes/ (secret plugin notes)" "$work/server.log" || {
  echo "ci_dev_plugin_dir: notes/ is not mounted:" >&2; cat "$work/server.log" >&2; exit 1; }

export VAULT_ADDR="$addr" VAULT_TOKEN=root
"$bulwark" write notes/shopping value=milk
read_out="$("$bulwark" read notes/shopping)"
list_out="$("$bulwark" list notes/)"
echo "$read_out"
echo "$list_out"
grep -q "milk" <<< "$read_out" || { echo "ci_dev_plugin_dir: read did not answer milk" >&2; exit 1; }
grep -q "shopping" <<< "$list_out" || { echo "ci_dev_plugin_dir: list did not show shopping" >&2; exit 1; }
echo "ci_dev_plugin_dir: guide step 6 works: notes/ written, read and listed through the dev server"
