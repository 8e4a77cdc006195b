#!/usr/bin/python3
"""Writes a table record (format bulwark-benchmark-table/1, as benchmarks/measure/record.h does for
C++ benchmarks) from the Markdown table a script printed, for benchmarks that are scripts or that
print text (server_http_benchmark.sh, plugin_callgrind.sh, the simulator's summaries).

  ... | table_record.py --out=FILE --benchmark=NAME --command='bazel run ...' \\
          [--build=opt] [--note=TEXT]... [--notes-from-text]

Reads stdin: the first Markdown table in it (a header row, the `| --- |` row, body rows) becomes
the record's columns and rows; with --notes-from-text, every other non-blank line becomes a note
(a script's ratio and goal lines). The machine (CPU model, cores, load average now, kernel) is
read from /proc as record.h does. A relative --out is relative to $BUILD_WORKING_DIRECTORY when
set (bazel run). Exit status 2, naming the problem, when stdin holds no table or a row's cell
count differs from the header's.
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import time

FORMAT = "bulwark-benchmark-table/1"


def machine():
    out = {"cpu_model": "?", "cores": os.cpu_count() or 0}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    out["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    out["kernel"] = f"{platform.system()} {platform.release()}"
    return out


def cells(line):
    inner = line.strip()[1:]
    if inner.endswith("|"):
        inner = inner[:-1]
    # A cell may hold an escaped pipe (\|), as perf_tables.py writes them.
    parts, cur, i = [], "", 0
    while i < len(inner):
        if inner[i] == "\\" and i + 1 < len(inner) and inner[i + 1] == "|":
            cur += "|"
            i += 2
            continue
        if inner[i] == "|":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += inner[i]
        i += 1
    parts.append(cur.strip())
    return parts


def parse(text):
    """(columns, rows, other lines) of the first Markdown table in `text`."""
    columns, rows, other = None, [], []
    lines = text.split("\n")
    i, done = 0, False
    while i < len(lines):
        line = lines[i]
        if (not done and columns is None and line.lstrip().startswith("|") and i + 1 < len(lines)
                and set(lines[i + 1].replace("|", "").strip()) <= set("-: ")
                and "-" in lines[i + 1]):
            columns = cells(line)
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                row = cells(lines[i])
                if len(row) != len(columns):
                    raise ValueError(f"a table row has {len(row)} cells, the header "
                                     f"{len(columns)}: {lines[i].strip()}")
                rows.append(row)
                i += 1
            done = True
            continue
        if line.strip():
            other.append(line.strip())
        i += 1
    if columns is None:
        raise ValueError("no Markdown table (a header row, then a | --- | row) on stdin")
    return columns, rows, other


def main(argv):
    parser = argparse.ArgumentParser(prog="table_record.py")
    parser.add_argument("--out", required=True)
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--build", default="unknown")
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--notes-from-text", action="store_true")
    args = parser.parse_args(argv)
    # Before stdin: at the head of a pipe this runs as the benchmark starts, so the record names
    # when the run began and the load it began under.
    started, machine_then = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), machine()
    try:
        columns, rows, other = parse(sys.stdin.read())
    except ValueError as e:
        print(f"table_record: {e}", file=sys.stderr)
        return 2
    write(args.out, args.benchmark, args.command, args.build, columns, rows,
          args.note + (other if args.notes_from_text else []), started, machine_then)
    return 0


def write(out, benchmark, command, build, columns, rows, notes, started=None, machine_then=None):
    """Writes the record to `out` (replaced whole: a temporary file renamed over it). `started`
    and `machine_then` are the run's start and the machine then; by default, now."""
    record = {
        "format": FORMAT,
        "benchmark": benchmark,
        "command": command,
        "started": started or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_then or machine(),
        "build": {"compilation_mode": build, "optimised": build == "opt"},
        "columns": columns,
        "rows": rows,
        "notes": notes,
    }
    if not os.path.isabs(out) and os.environ.get("BUILD_WORKING_DIRECTORY"):
        out = os.path.join(os.environ["BUILD_WORKING_DIRECTORY"], out)
    directory = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".table_record.")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, out)
    print(f"table_record: wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
