#!/usr/bin/python3
"""Generates docs/performance.md's tables from committed benchmark records, so that no figure in
the docs can drift from what was measured.

  perf_tables.py --doc=docs/performance.md RECORD.json...           print what the doc would hold
  perf_tables.py --doc=docs/performance.md --write RECORD.json...   rewrite the doc in place
  perf_tables.py --doc=docs/performance.md --check RECORD.json...   exit 1 when stale

A generated block in the doc is two lines and what lies between them:

    <!-- generated from NAME.json -->
    <!-- end generated -->

NAME.json is the base name of one of the RECORD.json files given (the committed ones live in
docs/benchmarks/; the test passes them all). To add a table: commit the record there, put the two
marker lines where the table belongs and run --write. A record is one of

  bulwark-benchmark-comparison/1  plugin_benchmark's comparison.json (ratios, intervals, verdicts)
  bulwark-benchmark-record/1      plugin_benchmark's record.json (summaries of one plugin's run)
  bulwark-benchmark-table/1       a benchmark binary's --record=FILE (benchmarks/measure/record.h):
                                  its command, machine, build and the table it printed

Every other Markdown table in the doc must be announced by a line starting with
`Hand-recorded` just above it (blank lines between allowed), saying why it is not generated
(measured on code that has since changed, or a benchmark that emits no record yet): --check
fails on a table that is neither generated nor so announced.
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

TABLE_FORMAT = "bulwark-benchmark-table/1"
BEGIN = re.compile(r"^<!-- generated from (\S+) -->$")
END = "<!-- end generated -->"
HAND = "Hand-recorded"


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _rows(header, rows):
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _machine(machine):
    machine = machine or {}
    load = machine.get("load_average")
    load_text = ", ".join(f"{x:g}" for x in load) if isinstance(load, list) else "?"
    return (f"{machine.get('cpu_model', '?')} ({machine.get('cores', '?')} cores, load average "
            f"{load_text} at the start)")


def _side(identity):
    build = identity.get("build") or {}
    plugin = identity.get("plugin") or {}
    return (f"{identity.get('label', '?')} (`{plugin.get('path', '?')}`, "
            f"{build.get('compilation_mode', 'unknown')})")


_fmt = benchlib.format_value


def _took(identity):
    return f", took {identity['elapsed_s']:.0f} s" if "elapsed_s" in identity else ""


def _interval_text(comparison):
    rows = comparison["rows"]
    if any(r.get("interval") in ("rounds", "paired") for r in rows) and "family_rows" in comparison:
        how = ("paired t on the rounds' log ratios" if any(r.get("interval") == "paired"
                                                           for r in rows)
               else "Welch t on logarithms")
        return (f"{comparison['confidence']:.0%} interval from the spread between rounds ({how}), all {comparison['family_rows']} decidable rows judged as one "
                f"family at {comparison['confidence']:.0%} (Bonferroni); \"detectable\" is the "
                "smallest change each row's spread could have shown")
    if any(r.get("interval") == "rounds" for r in rows):
        tails = comparison.get("tail_rows", 0)
        return (f"{comparison['confidence']:.0%} interval from the spread between rounds (Welch t "
                f"on logarithms), the {tails} decidable tail rows judged as one family at "
                f"{comparison['confidence']:.0%}")
    return f"{comparison['confidence']:.0%} bootstrap interval"


def comparison_table(comparison):
    cand, base = comparison["candidate"], comparison["baseline"]
    together = cand.get("interleaved_with") == base.get("label")
    lines = [
        f"Candidate {_side(cand)} against baseline {_side(base)}; "
        f"{cand.get('run_mode', '?')} run, {cand.get('rounds', '?')} rounds, started "
        f"{cand.get('started', '?')} on {_machine(cand.get('machine'))}{_took(cand)}; "
        + ("rounds interleaved with the baseline's in the same run" if together else
           f"baseline run started {base.get('started', '?')}{_took(base)}")
        + f". Ratio = candidate / baseline, {_interval_text(comparison)}; a verdict needs the "
        f"interval {comparison['min_effect']:.0%} beyond 1.",
        "",
    ]
    detectable = any("detectable" in r for r in comparison["rows"])
    rows = [[r["metric"], r["statistic"], _fmt(r["candidate"], r["unit"]),
             _fmt(r["baseline"], r["unit"]), benchlib.format_ratio(r)]
            + ([benchlib.format_detectable(r)] if detectable else []) + [r["verdict"]]
            for r in comparison["rows"]]
    lines += _rows(["metric", "statistic", "candidate", "baseline", "ratio [interval]"]
                   + (["detectable"] if detectable else []) + ["verdict"], rows)
    counts = {}
    for r in comparison["rows"]:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    lines += ["", f"{len(comparison['rows'])} rows: " + ", ".join(
        f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1])) + "."]
    return lines


def record_table(record):
    lines = [
        f"Plugin {_side(record)}; {record.get('run_mode', '?')} run, "
        f"{record.get('rounds', '?')} rounds, started {record.get('started', '?')} on "
        f"{_machine(record.get('machine'))}{_took(record)}. Latencies: all rounds' calls pooled.",
        "",
    ]
    rows = []
    for m in record.get("metrics", []):
        s = m.get("summary") or benchlib.summarize_metric(m)
        unit = m.get("unit", "")
        if m["kind"] == "latency":
            rows.append([m["name"], s.get("n", 0), _fmt(s.get("p50"), unit),
                         _fmt(s.get("p99"), unit), _fmt(s.get("p99.9"), unit)])
        else:
            rows.append([m["name"], s.get("n", 0), _fmt(s.get("median"), unit) + " (median)",
                         _fmt(s.get("min"), unit) + " (min)", _fmt(s.get("max"), unit) + " (max)"])
    lines += _rows(["metric", "n", "p50", "p99", "p99.9"], rows)
    for note in record.get("notes", []):
        lines += ["", f"Note: {note}"]
    return lines


def table_table(record):
    build = record.get("build") or {}
    lines = [
        f"`{record.get('command', '?')}`, {build.get('compilation_mode', 'unknown')} build, "
        f"started {record.get('started', '?')} on {_machine(record.get('machine'))}.",
        "",
    ]
    lines += _rows(record["columns"], record["rows"])
    for note in record.get("notes", []):
        lines += ["", f"Note: {note}"]
    return lines


def render(record, path):
    fmt = record.get("format") if isinstance(record, dict) else None
    if fmt == benchlib.COMPARISON_FORMAT:
        return comparison_table(record)
    if fmt == benchlib.RECORD_FORMAT:
        return record_table(record)
    if fmt == TABLE_FORMAT:
        if not isinstance(record.get("columns"), list) or not isinstance(record.get("rows"), list):
            raise ValueError(f"{path}: a {TABLE_FORMAT} record needs columns and rows")
        return table_table(record)
    raise ValueError(f"{path} is not a benchmark record, comparison or table "
                     f"(format {fmt!r})")


def regenerate(doc, records):
    """The doc with every generated block rewritten from `records` (base name -> record), and
    the problems found (a block naming no given record, an unterminated block)."""
    out, problems = [], []
    lines = doc.split("\n")
    i = 0
    while i < len(lines):
        m = BEGIN.match(lines[i])
        out.append(lines[i])
        i += 1
        if not m:
            continue
        name = m.group(1)
        end = i
        while end < len(lines) and lines[end] != END and not BEGIN.match(lines[end]):
            end += 1
        if end == len(lines) or lines[end] != END:
            problems.append(f"`{m.group(0)}` has no `{END}` after it")
            continue
        if name not in records:
            problems.append(f"`{m.group(0)}` names no record given (commit it under "
                            "docs/benchmarks/)")
            out += lines[i:end]
        else:
            out += records[name]
        i = end
    return "\n".join(out), problems


def unannounced_tables(doc):
    """Line numbers of Markdown tables outside generated blocks not announced by a
    `Hand-recorded` line above them."""
    found = []
    inside = False
    previous_text = ""  # The last non-blank line before the current position.
    in_table = False
    for n, line in enumerate(doc.split("\n"), 1):
        if BEGIN.match(line):
            inside = True
        elif line == END:
            inside = False
        is_row = line.startswith("|")
        if is_row and not in_table and not inside and not previous_text.startswith(HAND):
            found.append(n)
        in_table = is_row
        if line.strip() and not is_row:
            previous_text = line
    return found


def main(argv):
    parser = argparse.ArgumentParser(prog="perf_tables.py")
    parser.add_argument("--doc", required=True)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("records", nargs="+")
    args = parser.parse_args(argv)
    with open(args.doc) as f:
        doc = f.read()
    rendered = {}
    for path in args.records:
        try:
            with open(path) as f:
                rendered[os.path.basename(path)] = render(json.load(f), path)
        except (OSError, ValueError) as e:
            print(f"perf_tables: {e}", file=sys.stderr)
            return 2
    new_doc, problems = regenerate(doc, rendered)
    for problem in problems:
        print(f"perf_tables: {args.doc}: {problem}", file=sys.stderr)
    if problems:
        return 2
    if args.check:
        status = 0
        if new_doc != doc:
            print(f"perf_tables: {args.doc} is stale: regenerate with conformance/benchmark/"
                  "perf_tables.py --doc=docs/performance.md --write docs/benchmarks/*.json",
                  file=sys.stderr)
            status = 1
        for n in unannounced_tables(doc):
            print(f"perf_tables: {args.doc}:{n}: a table neither generated from a record "
                  f"(`<!-- generated from NAME.json -->`) nor announced by a `{HAND} ...` line "
                  "saying why it cannot be", file=sys.stderr)
            status = 1
        return status
    if args.write:
        if new_doc != doc:
            with open(args.doc, "w") as f:
                f.write(new_doc)
        return 0
    sys.stdout.write(new_doc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
