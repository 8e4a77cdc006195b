#!/usr/bin/env bash
# plugin_benchmark's entry point (defs.bzl): runs the runner (which plays the host and measures),
# then report.py (record with summaries, verdicts against a baseline, report.md, plots).
#
#   run_benchmark.sh RUNNER REPORT_PY [--name=N] [--out=DIR] [--baseline=RECORD.json]
#       [--baseline_record=RUNFILE] [--fail-on-regression=PCT] [--min-effect=PCT] [--no-plots]
#       [--wrapper=PATH [--wrapper_arg=ARG]...] [--check_outputs] RUNNER_FLAGS...
#
# --out (default: $TEST_UNDECLARED_OUTPUTS_DIR under bazel test, else benchmark-NAME in the
# directory bazel run was started from) and --baseline are relative to that directory;
# --baseline_record (the macro's) to the runfiles. --check_outputs (the quick test) fails unless
# the record, the report and non-empty PNG plots were written. Exit status: the runner's failure
# (1), report.py's (1 for a regression beyond --fail-on-regression, 2 for a bad record), else 0.
set -uo pipefail
runner="$1"
report="$2"
shift 2
here="$PWD"
user_dir="${BUILD_WORKING_DIRECTORY:-$PWD}"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$2/$1" ;; esac; }

name=benchmark out="" check=0 baseline="" wrapper=""
report_args=() runner_args=() wrapper_args=()
for arg in "$@"; do
  case "$arg" in
    --name=*) name="${arg#--name=}" ;;
    --out=*) out="$(abs "${arg#--out=}" "$user_dir")" ;;
    --baseline=*) baseline="$(abs "${arg#--baseline=}" "$user_dir")" ;;
    --baseline_record=*) baseline="$(abs "${arg#--baseline_record=}" "$here")" ;;
    --fail-on-regression=* | --min-effect=* | --no-plots) report_args+=("$arg") ;;
    --wrapper=*) wrapper="$(abs "${arg#--wrapper=}" "$here")" ;;
    --wrapper_arg=*) wrapper_args+=("${arg#--wrapper_arg=}") ;;
    --check_outputs) check=1 ;;
    --help | -h)
      sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) runner_args+=("$arg") ;;
  esac
done
if [ -z "$out" ]; then
  if [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]; then
    out="$TEST_UNDECLARED_OUTPUTS_DIR"
  else
    out="$user_dir/benchmark-$name"
  fi
fi
mkdir -p "$out" || exit 2
raw="$(mktemp -d "${TEST_TMPDIR:-/tmp}/bench-raw.XXXXXX")"
trap 'rm -rf "$raw"' EXIT

has_baseline_plugin=0
for arg in "${runner_args[@]}"; do
  case "$arg" in --baseline_plugin=*) has_baseline_plugin=1 ;; esac
done
if [ "$has_baseline_plugin" -eq 1 ] && [ -n "$baseline" ]; then
  echo "plugin_benchmark: give a baseline plugin or a baseline record, not both" >&2
  exit 2
fi
extra=()
[ "$has_baseline_plugin" -eq 1 ] && extra+=("--baseline_out=$raw/baseline.json")

command=("$runner" "${runner_args[@]}" "${extra[@]}" "--out=$raw/record.json")
[ -n "$wrapper" ] && command=("$wrapper" "${wrapper_args[@]}" "${command[@]}")
"${command[@]}"
runner_status=$?
if [ ! -s "$raw/record.json" ]; then
  echo "plugin_benchmark: the runner wrote no record (exit $runner_status)" >&2
  exit $((runner_status == 0 ? 1 : runner_status))
fi

python=/usr/bin/python3
if [ "$has_baseline_plugin" -eq 1 ]; then
  "$python" "$report" --record="$raw/baseline.json" --out="$out/baseline" --no-plots \
    > /dev/null || exit $?
  baseline="$out/baseline/record.json"
fi
report_command=("$python" "$report" --record="$raw/record.json" --out="$out" "${report_args[@]}")
[ -n "$baseline" ] && report_command+=(--baseline="$baseline")
"${report_command[@]}"
report_status=$?

if [ "$check" -eq 1 ]; then
  problems=0
  for f in record.json report.md; do
    [ -s "$out/$f" ] || { echo "plugin_benchmark: $out/$f was not written" >&2; problems=1; }
  done
  pngs=0
  for png in "$out"/*.png; do
    [ -e "$png" ] || continue
    pngs=$((pngs + 1))
    if [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" != "89504e470d0a1a0a" ] ||
      [ "$(stat -c %s "$png")" -lt 2000 ]; then
      echo "plugin_benchmark: $png is not a non-empty PNG" >&2
      problems=1
    fi
  done
  [ "$pngs" -gt 0 ] || { echo "plugin_benchmark: no plot was drawn" >&2; problems=1; }
  [ "$problems" -eq 0 ] && echo "plugin_benchmark: record, report and $pngs plot(s) written to $out"
  [ "$problems" -eq 0 ] || exit 1
fi
[ "$runner_status" -ne 0 ] && exit "$runner_status"
exit "$report_status"
