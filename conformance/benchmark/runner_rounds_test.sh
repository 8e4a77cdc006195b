#!/usr/bin/env bash
# The runner's rounds in fresh runner processes (--only_round, merged by the first process), with
# a baseline plugin interleaved, and its mux workload on bulwark's host (core/rpc): a quick run of
# 2 rounds of the kv plugin against itself must give every metric both rounds on both sides, the
# same metrics as --one_process, and the mux note naming bulwark's host with one process's few
# descriptors (a shared host connection: far fewer than one per mount). Nothing is timed.
#   runner_rounds_test.sh RUNNER KV_PLUGIN MANIFEST
set -euo pipefail
runner="$1" plugin="$2" manifest="$3"
out="${TEST_TMPDIR:-$(mktemp -d)}"
common=(--plugin="$plugin" --manifest="$manifest" --baseline_plugin="$plugin" --quick --rounds=2
  --workloads=startup,probe,mux)
"$runner" "${common[@]}" --out="$out/a.json" --baseline_out="$out/b.json"
"$runner" "${common[@]}" --one_process --out="$out/c.json" --baseline_out="$out/d.json"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
load = lambda n: json.load(open(f"{out}/{n}.json"))
a, b, c = load("a"), load("b"), load("c")
problems = []
for name, rec in (("plugin", a), ("baseline", b), ("one process", c)):
    if rec.get("failure"):
        problems.append(f"{name}: failure {rec['failure']}")
    for m in rec["metrics"]:
        if len(m["rounds"]) != 2 or not all(m["rounds"]):
            problems.append(f"{name}: {m['name']} has rounds {[len(r) for r in m['rounds']]}")
names = lambda r: sorted(m["name"] for m in r["metrics"])
if names(a) != names(c):
    problems.append(f"round processes measured {names(a)}, one process {names(c)}")
if not any(n.startswith("mux/10 mounts/USS") for n in names(a)):
    problems.append(f"no mux/10 mounts metrics: {names(a)}")
notes = [n for n in a["notes"] if n.startswith("mux: measured on bulwark's host")]
if not notes:
    problems.append(f"no note naming bulwark's host: {a['notes']}")
else:
    fds = int(notes[0].split("the plugin had ")[1].split(" ")[0])
    if fds >= 20:  # 10 mounts with a connection each would hold at least 10 more.
        problems.append(f"the plugin held {fds} descriptors at 10 mounts: {notes[0]}")
for p in problems:
    print("FAIL:", p)
sys.exit(1 if problems else 0)
PY
echo "runner_rounds_test: 2 rounds in round processes, both sides, mux on bulwark's host"
