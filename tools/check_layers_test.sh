#!/usr/bin/env bash
# Proves tools/check_layers can fail: a small tree that obeys the floors passes, and each kind of
# forbidden edge planted into a copy of it fails with a line naming the file and the rule.
set -euo pipefail
checker="$(dirname "$0")/check_layers"
[ -x "$checker" ] || checker="$TEST_SRCDIR/$TEST_WORKSPACE/tools/check_layers"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0

make_good_tree() {  # $1: directory
  mkdir -p "$1"/{base/status,base/env/posix,faultinject,protocol,core/node,core/rpc,sdk,sim}
  echo '#include "base/status/check.h"' > "$1/faultinject/registry.cc"
  echo '#include "base/status/check.h"' > "$1/protocol/handshake.cc"
  printf '#include "protocol/handshake.h"\n#include "faultinject/failpoint.h"\n' \
    > "$1/core/node/node.cc"
  echo '#include "base/env/posix/posix_env.h"' > "$1/core/node/node_test.cc"
  echo '#include "protocol/handshake.h"' > "$1/sdk/serve.cc"
  printf '#include "core/node/node.h"\n#include "sdk/serve.h"\n#include "base/env/posix/posix_env.h"\n' \
    > "$1/sim/main.cc"
  cat > "$1/core/node/BUILD" <<'B'
bw_cc_library(
    name = "node",
    deps = ["//protocol:handshake", "//faultinject"],
    visibility = ["//sim:__pkg__"],
)

bw_cc_test(
    name = "node_test",
    deps = [":node", "//base/env/posix:posix_env"],
)
B
}

expect() {  # $1: pass|fail, $2: description, $3: expected text in the output (fail only)
  local out status=0
  out=$("$checker" "$tmp/tree" 2>&1) || status=$?
  if [ "$1" = pass ] && [ $status -ne 0 ]; then
    echo "FAIL: $2: expected a pass, got:"; echo "$out"; failures=$((failures + 1))
  elif [ "$1" = fail ] && { [ $status -eq 0 ] || ! grep -qF -- "$3" <<<"$out"; }; then
    echo "FAIL: $2: expected a violation naming '$3', got (status $status):"; echo "$out"
    failures=$((failures + 1))
  else
    echo "ok: $2"
  fi
}

plant() {  # $1: description, $2: file, $3: line to append, $4: expected text
  rm -rf "$tmp/tree"; make_good_tree "$tmp/tree"
  echo "$3" >> "$tmp/tree/$2"
  expect fail "$1" "$4"
}

rm -rf "$tmp/tree"; make_good_tree "$tmp/tree"
expect pass "a tree that obeys the floors"

plant "core includes the SDK" core/node/node.cc '#include "sdk/backend.h"' \
  'core/node/node.cc:3: #include "sdk/backend.h": core may not use sdk'
plant "the SDK includes core" sdk/serve.cc '#include "core/node/node.h"' \
  'sdk may not use core'
plant "core includes the simulator" core/node/node.cc '#include "sim/cluster.h"' \
  'core may not use top'
plant "faultinject includes core" faultinject/registry.cc '#include "core/node/node.h"' \
  'faultinject may not use core'
plant "ground includes faultinject" base/status/check.h '#include "faultinject/failpoint.h"' \
  'ground may not use faultinject'
plant "protocol includes core" protocol/handshake.cc '#include "core/rpc/plugin_client.h"' \
  'protocol may not use core'
plant "a core library includes the posix Env" core/node/node.cc \
  '#include "base/env/posix/posix_env.h"' 'only composition roots'
plant "a core library includes the gRPC transport" core/node/node.cc \
  '#include "core/rpc/grpc_transport.h"' 'only composition roots'
plant "a core BUILD depends on examples" core/node/BUILD \
  "$(printf 'bw_cc_library(\n    name = "x",\n    data = ["//examples/kv:kv_plugin"],\n)')" \
  '"//examples/kv:kv_plugin": core may not use top'
plant "a core library depends on the posix Env" core/node/BUILD \
  "$(printf 'bw_cc_library(\n    name = "y",\n    deps = ["//base/env/posix:posix_env"],\n)')" \
  'only composition roots'

[ $failures -eq 0 ] && echo "PASS" || { echo "$failures case(s) failed"; exit 1; }
