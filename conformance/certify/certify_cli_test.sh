#!/usr/bin/env bash
# certify as a user runs it (bazel run sets BUILD_WORKSPACE_DIRECTORY), over a fake workspace in
# which one test ran in a debug and an optimised build: it refuses the mixture, certifies the
# build asked for and says which configuration and binary that is, and refuses records of
# another build and records of a binary rebuilt since.
set -uo pipefail
certify="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"  # Absolute: runs elsewhere.
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
ws="$tmp/ws"
failures=0
version=$("$certify" --version)

# $1: config dir (k8-opt), $2: compilation mode in the record ("" for none), $3: binary bytes.
plant() {
  local dir="$ws/bazel-out/$1" build=""
  mkdir -p "$dir/testlogs/pkg/t/test.outputs" "$dir/bin/pkg"
  printf '%s' "$3" > "$dir/bin/pkg/plugin"
  local sha
  sha=$(sha256sum "$dir/bin/pkg/plugin" | cut -c1-64)
  [ -n "$2" ] && build=",\"build\":{\"compilation_mode\":\"$2\",\"target_cpu\":\"k8\"}"
  cat > "$dir/testlogs/pkg/t/test.outputs/conformance_record.json" <<R
{"format":"bulwark-conformance-record/1","suite_version":"$version","mode":"launch",
 "plugin":{"path":"pkg/plugin","sha256":"$sha","args":[]}$build,
 "manifest":{"name":"fake","type":"secret"},"manifest_sha256":"00","seed":1,"finished":true,
 "expected_failures":[],"shard":{"index":0,"total":1},
 "requirements":[{"id":"Handshake.A","profile":"handshake","level":"MUST","required":true}],
 "tests":[{"id":"Handshake.A","result":"passed"}]}
R
}

# $1: expected exit code, $2: description, $3...: texts the output must contain.
run() {
  local want="$1" what="$2" status=0
  shift 2
  out=$(cd "$tmp" && BUILD_WORKSPACE_DIRECTORY="$ws" "$certify" "${args[@]}" 2>&1) || status=$?
  local ok=1
  [ "$status" -eq "$want" ] || ok=0
  for text in "$@"; do grep -qF -- "$text" <<<"$out" || ok=0; done
  if [ $ok -eq 1 ]; then
    echo "ok: $what"
  else
    echo "FAIL: $what: expected exit $want and the texts: $*"
    echo "got exit $status:"; echo "$out"
    failures=$((failures + 1))
  fi
}

rm -rf "$ws"
plant k8-fastbuild fastbuild "debug binary"
plant k8-opt opt "optimised binary"
opt_sha=$(sha256sum "$ws/bazel-out/k8-opt/bin/pkg/plugin" | cut -c1-64)

args=(//pkg:t --out="$tmp/out")
run 2 "a debug and an optimised run without --compilation_mode are refused" \
  "records of more than one build configuration: bazel-out/k8-fastbuild/testlogs/pkg/t (fastbuild (k8)) and bazel-out/k8-opt/testlogs/pkg/t (opt (k8))" \
  "--compilation_mode=fastbuild or --compilation_mode=opt"

args=(--compilation_mode=opt //pkg:t --out="$tmp/out")
run 0 "--compilation_mode=opt certifies the optimised run and says what it read" \
  "not reading bazel-out/k8-fastbuild/testlogs/pkg/t (fastbuild (k8)): not compilation_mode=opt" \
  "read bazel-out/k8-opt/testlogs/pkg/t/test.outputs/conformance_record.json" \
  "build configuration: opt (k8), 1 record" \
  "plugin binary: bazel-out/k8-opt/bin/pkg/plugin, SHA-256 $opt_sha (the file on disk still has it)" \
  "CERTIFIED"
if ! grep -q '"compilation_mode": "opt"' "$tmp/out/certificate.json"; then
  echo "FAIL: certificate.json does not name the opt build"; failures=$((failures + 1))
fi

args=(--compilation_mode=dbg //pkg:t --out="$tmp/out")
run 2 "a configuration that never ran is refused" "no records of a compilation_mode=dbg build"

plant k8-opt fastbuild "optimised binary"
args=(--compilation_mode=opt //pkg:t --out="$tmp/out")
run 2 "a record of another build in the opt tree is refused" \
  "is of compilation_mode=fastbuild"

plant k8-opt "" "optimised binary"
run 2 "a record that names no build is refused when a build is asked for" \
  "is of compilation_mode=unknown (it names none"

plant k8-opt opt "optimised binary"
printf 'rebuilt since' > "$ws/bazel-out/k8-opt/bin/pkg/plugin"
run 2 "records of a binary rebuilt after the test are refused" \
  "bazel-out/k8-opt/bin/pkg/plugin was rebuilt after the test ran" "$opt_sha"

rm -rf "$ws/bazel-out/k8-fastbuild"
plant k8-opt opt "optimised binary"
args=(//pkg:t --out="$tmp/out")
run 0 "one configuration needs no flag" "build configuration: opt (k8)" "CERTIFIED"

# Performance in the certificate: a benchmark record of the certified binary is summarised, one
# of another binary is refused, one of a non-optimised build is marked as such.
# $1: file, $2: sha256, $3: compilation mode.
bench_record() {
  cat > "$1" <<R
{"format":"bulwark-benchmark-record/1","plugin":{"path":"pkg/plugin","sha256":"$2"},
 "build":{"compilation_mode":"$3","target_cpu":"k8"},"machine":{"cpu_model":"cpu","cores":2},
 "run_mode":"full","rounds":5,
 "metrics":[{"name":"probe_read/64 B/1 caller","kind":"latency","unit":"us","rounds":[[100,120]],
             "summary":{"n":2,"rounds":1,"p50":100,"p99":120,"p99.9":120}}]}
R
}
bench_record "$tmp/bench_opt.json" "$opt_sha" opt
args=(--compilation_mode=opt --benchmark="$tmp/bench_opt.json" //pkg:t --out="$tmp/out")
run 0 "a benchmark record of the certified binary goes into the certificate" \
  "certify: performance from $tmp/bench_opt.json (same binary; build opt)" "## Performance" \
  "| probe_read/64 B/1 caller | us | 100.0 | 120.0 | 120.0 |"
if ! grep -q '"optimised": true' "$tmp/out/certificate.json"; then
  echo "FAIL: certificate.json has no optimised performance section"; failures=$((failures + 1))
fi
bench_record "$tmp/bench_other.json" "$(printf other | sha256sum | cut -c1-64)" opt
args=(--compilation_mode=opt --benchmark="$tmp/bench_other.json" //pkg:t --out="$tmp/out")
run 2 "a benchmark record of another binary is refused" \
  "measured another plugin binary" "than the one certified (SHA-256 $opt_sha)"
bench_record "$tmp/bench_dbg.json" "$opt_sha" fastbuild
args=(--compilation_mode=opt --benchmark="$tmp/bench_dbg.json" //pkg:t --out="$tmp/out")
run 0 "a benchmark record of a non-optimised build is marked" \
  "measured in a compilation_mode=fastbuild build, not an optimised one" "NOT optimised"
if ! grep -q '"optimised": false' "$tmp/out/certificate.json"; then
  echo "FAIL: certificate.json does not mark the non-optimised benchmark"
  failures=$((failures + 1))
fi
printf '{"format":"bulwark-benchmark-record/1","plugin":{"sha256":"%s"},"metrics":[{"name":"m","kind":"latency","rounds":[[1]]}]}' \
  "$opt_sha" > "$tmp/bench_raw.json"
args=(--compilation_mode=opt --benchmark="$tmp/bench_raw.json" //pkg:t --out="$tmp/out")
run 2 "a raw runner record (no summaries) is refused" "has a metric without a summary (m)"

args=(--compilation_mode=fast //pkg:t)
run 2 "an unknown compilation mode is a usage error" "is fastbuild, dbg or opt"

if [ $failures -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
