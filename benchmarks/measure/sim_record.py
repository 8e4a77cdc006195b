#!/usr/bin/python3
"""A table record (bulwark-benchmark-table/1) from the simulator's JSON reports, for
docs/performance.md's simulator tables (perf_tables.py renders it):

  bazel run //sim -- --seeds=1..200 --json > /tmp/default.json
  bazel run //sim -- --seeds=1..100 --scenario=swarm --check-determinism --json > /tmp/swarm.json
  benchmarks/measure/sim_record.py --out=docs/benchmarks/sim.json \\
      --command='bazel run //sim -- --seeds=1..200 --json; ... --scenario=swarm ...' \\
      /tmp/default.json /tmp/swarm.json

One row per report (a sweep): its scenario and seeds, simulated and wall time, the ratio, seeds
per CPU-hour, determinism double runs (same / checked), failed seeds and the median shrunk
schedule length when some were shrunk. The figures are the simulator's own (`sim --json`'s
sim_time_seconds, wall_seconds, cpu_seconds, sim_to_wall_ratio, seeds_per_cpu_hour,
determinism_checked, determinism_same, failed, shrunk_lengths): this script only lays them out.
Exit status 2, naming the file, for a report that is not the simulator's JSON.
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import table_record  # noqa: E402

FIELDS = ("scenario", "first_seed", "last_seed", "runs", "sim_time_seconds", "wall_seconds",
          "cpu_seconds", "sim_to_wall_ratio", "seeds_per_cpu_hour")


def duration(seconds):
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def row(report):
    shrunk = report.get("shrunk_lengths") or []
    checked = report.get("determinism_checked", 0)
    nodes = report.get("nodes", 0)
    return [
        report["scenario"] + (f", --nodes {nodes}" if nodes else ""),
        f"{report['first_seed']}..{report['last_seed']} ({report['runs']} runs)",
        f"{duration(report['sim_time_seconds'])} in {report['wall_seconds']:.1f} s",
        f"{report['sim_to_wall_ratio']:,.0f}x",
        f"{report['seeds_per_cpu_hour']:,.0f} ({report['cpu_seconds']:.1f} s CPU)",
        f"{report.get('determinism_same', 0)} of {checked}" if checked else "not checked",
        str(report.get("failed", 0)),
        f"{statistics.median(shrunk):g} (max {max(shrunk)})" if shrunk else "-",
    ]


COLUMNS = ["scenario", "seeds", "simulated in wall time", "simulated / wall", "seeds per CPU-hour",
           "double runs, same trace", "failed seeds", "median shrunk schedule (events)"]


def main(argv):
    parser = argparse.ArgumentParser(prog="sim_record.py")
    parser.add_argument("--out", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--build", default="fastbuild")
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("reports", nargs="+")
    args = parser.parse_args(argv)
    reports = []
    for path in args.reports:
        try:
            with open(path) as f:
                report = json.load(f)
        except (OSError, ValueError) as e:
            print(f"sim_record: {path}: {e}", file=sys.stderr)
            return 2
        missing = [k for k in FIELDS if k not in report] if isinstance(report, dict) else FIELDS
        if missing:
            print(f"sim_record: {path} is not a `sim --json` report (no {', '.join(missing)})",
                  file=sys.stderr)
            return 2
        reports.append(report)
    table_record.write(args.out, "sim", args.command, args.build, COLUMNS,
                       [row(r) for r in reports], args.note)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
