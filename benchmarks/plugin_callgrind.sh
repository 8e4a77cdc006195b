#!/bin/bash
# Instructions per call, host and plugin, counted by callgrind: a CPU-cost figure that does not
# move with the machine's load (docs/performance.md, "Measurement, memory and start-up", and
# "Host-side hand-offs").
#
#   bazel run -c opt //benchmarks:plugin_callgrind [-- --calls=100 --ops=echo64,echo64k,write64]
#       [--record=FILE]   (the table also as a record for docs/performance.md)
#
# For each operation the benchmark binary runs once under `valgrind --tool=callgrind`, with the kv
# plugin it launches also under callgrind (--plugin_wrapper). After the warm-up calls the host
# zeroes both processes' counters and after the N timed calls dumps them (--callgrind_marks: it
# runs `vgdb --pid=PID zero|dump` on each), so each dump holds the N calls and nothing else:
# start-up, Setup and shutdown are not in it, and background work counts only while the calls
# run. Instructions per call = dump total / N. Output: one table row per operation.
set -euo pipefail
bench="$1"
kv="$2"
go_host="$3"
go_plugin="$4"
shift 4
calls=100
ops="echo64,echo64k,write64"
keep_dir=""
record=""
table_record=""
bench_extra=()
for arg in "$@"; do
  case "$arg" in
    --calls=*) calls="${arg#--calls=}" ;;
    --ops=*) ops="${arg#--ops=}" ;;
    # The kv plugin with a broker dial deadline that survives two processes under callgrind.
    --many_mounts_plugin=*) kv="${arg#--many_mounts_plugin=}" ;;
    # Another build of the kv plugin (for before/after counts of plugin-side changes).
    --plugin=*) kv="${arg#--plugin=}" ;;
    # Keep the marked dumps (OP/host.out.1, OP/plugin.out.1) for callgrind_annotate.
    --keep_dir=*) keep_dir="${arg#--keep_dir=}" ;;
    # Also write the table as a record (bulwark-benchmark-table/1) for docs/performance.md.
    --record=*) record="${arg#--record=}" ;;
    --table_record=*) table_record="${arg#--table_record=}" ;;  # The BUILD passes it.
    # The host's loop drains gRPC's completions itself (1) or takes them posted (0).
    --loop_cq=0 | --loop_cq=1) bench_extra+=("$arg") ;;
    *)
      echo "usage: plugin_callgrind.sh BENCH KV GO_HOST GO_PLUGIN [--calls=N] [--ops=a,b] [--plugin=PATH] [--keep_dir=DIR] [--loop_cq=0|1] [--record=FILE]" >&2
      exit 2
      ;;
  esac
done
[[ "$calls" =~ ^[1-9][0-9]*$ ]] || { echo "--calls must be a positive integer" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is not installed (tools/setup)" >&2; exit 2; }
[ -x /usr/bin/vgdb ] || { echo "/usr/bin/vgdb is missing (Debian package valgrind)" >&2; exit 2; }
# The ELF binary, not Debian's /usr/bin/valgrind shell wrapper: a plugin is exec'd from an open
# descriptor, which a script cannot be.
valgrind_bin=/usr/bin/valgrind.bin
[ -x "$valgrind_bin" ] || valgrind_bin="$(command -v valgrind)"
work="$(mktemp -d /tmp/bwcgXXXXXX)"
trap 'rm -rf "$work"' EXIT

# The total instruction count (Ir) of a callgrind output file.
instructions() {
  local n
  n="$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$1")"
  [ -n "$n" ] || n="$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$1")"
  [ -n "$n" ] || { echo "no instruction total in $1" >&2; exit 1; }
  echo "$n"
}

# Runs N marked calls of op $1; writes "HOST_IR PLUGIN_IR" (the marked dumps, *.out.1) to
# $work/$1/counts. The host launches the plugin with --execve_launcher (valgrind 3.19 emulates
# neither pidfd_open nor execveat on a descriptor, which the production launcher uses).
count() {
  local op="$1" dir="$work/$1" attempt
  # Under callgrind everything runs 20-50 times slower; on a loaded machine a plugin's dial back
  # to the host's broker can miss its deadline. A failed run is retried (its counts are not used).
  for attempt in 1 2 3; do
    rm -rf "$dir"
    mkdir -p "$dir"
    if valgrind --tool=callgrind -q --vgdb-prefix="$dir/vgdb" --callgrind-out-file="$dir/host.out" \
      "$bench" "$kv" "$go_host" "$go_plugin" --calls="$calls" --op="$op" --warmup=20 \
      --execve_launcher --callgrind_marks ${bench_extra[@]+"${bench_extra[@]}"} \
      --plugin_wrapper="$valgrind_bin,--tool=callgrind,-q,--vgdb-prefix=$dir/vgdb,--callgrind-out-file=$dir/plugin.out" \
      >"$dir/stdout" && [ -f "$dir/host.out.1" ] && [ -f "$dir/plugin.out.1" ]; then
      echo "$(instructions "$dir/host.out.1") $(instructions "$dir/plugin.out.1")" >"$dir/counts"
      return 0
    fi
    echo "the run of $calls $op calls failed (attempt $attempt of 3)" >&2
  done
  exit 1
}

table="$work/table.md"
printf '| operation | calls N | host Ir per call | plugin Ir per call | host + plugin |\n' | tee "$table"
printf '| --- | --- | --- | --- | --- |\n' | tee -a "$table"
IFS=',' read -r -a op_list <<<"$ops"
for op in "${op_list[@]}"; do
  count "$op"
  read -r h p <"$work/$op/counts"
  host=$((h / calls))
  plugin=$((p / calls))
  printf '| %s | %d | %d | %d | %d |\n' "$op" "$calls" "$host" "$plugin" "$((host + plugin))" |
    tee -a "$table"
  if [ -n "$keep_dir" ]; then
    mkdir -p "$keep_dir/$op"
    cp "$work/$op/host.out.1" "$work/$op/plugin.out.1" "$keep_dir/$op/"
  fi
done
if [ -n "$record" ]; then
  /usr/bin/python3 "$table_record" --out="$record" --benchmark=plugin_callgrind --build=opt \
    --command="bazel run -c opt //benchmarks:plugin_callgrind -- --calls=$calls --ops=$ops" \
    --note="instructions (callgrind Ir) per call: marked dumps of the N timed calls, host and plugin each under callgrind" \
    <"$table"
fi
