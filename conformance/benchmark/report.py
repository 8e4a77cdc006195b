#!/usr/bin/python3
"""plugin_benchmark's reporter: turns the runner's raw record into the benchmark record (with
summaries), a Markdown report and plots, and compares it with a baseline record.

  report.py --record=RAW.json --out=DIR [--baseline=RECORD.json] [--fail-on-regression=PCT]
            [--min-effect=PCT] [--no-plots]

Writes DIR/record.json, DIR/report.md, DIR/*.png (latency CDFs per size, throughput against
callers, memory against mounts) and, with a baseline, DIR/comparison.json. Exit status 0; 1 when
--fail-on-regression=PCT is given and some metric is slower (or larger) by more than PCT percent
at the confidence level (the whole interval beyond it); 2 for bad usage or a bad record.
See docs/benchmarking.md.
"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

WORKLOAD_TITLES = {
    "probe_read": "probe path, read",
    "storage_write": "storage-heavy path, write through the broker",
}


def load(path, what):
    try:
        with open(path) as f:
            record = json.load(f)
    except OSError as e:
        raise benchlib.RecordError(f"cannot read {what} {path}: {e.strerror}")
    except json.JSONDecodeError as e:
        raise benchlib.RecordError(f"{what} {path} is not JSON: {e}")
    benchlib.check_record(record, f"{what} {path}")
    return benchlib.summarize(record)


def size_text(size):
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


def metrics_of(record, workload, kind=None):
    return [m for m in record.get("metrics", [])
            if m.get("workload") == workload and (kind is None or m["kind"] == kind)]


fmt = benchlib.format_value


# --- Plots ---------------------------------------------------------------------------------

def plots(record, baseline, out):
    """Draws the figures and returns their file names (relative to out)."""
    os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mpl-"))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    files = []
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    sides = [(record, "-", record.get("label") or "candidate")]
    if baseline is not None:
        sides.append((baseline, "--", baseline.get("label") or "baseline"))

    def axes_style(ax, xlabel, ylabel, title, legend=True, xscale=("log",)):
        ax.set_xscale(*xscale[:1], **({"base": xscale[1]} if len(xscale) > 1 else {}))
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
        if legend:
            ax.legend(fontsize=6)

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=72)
        plt.close(fig)
        files.append(name)

    for workload, title in WORKLOAD_TITLES.items():
        lat = metrics_of(record, workload, "latency")
        if not lat:
            continue
        sizes = sorted({m["size_bytes"] for m in lat})
        callers = sorted({m["callers"] for m in lat})
        fig, axes = plt.subplots(1, len(sizes), figsize=(3.6 * len(sizes), 3.0), squeeze=False)
        for ax, size in zip(axes[0], sizes):
            for rec, style, label in sides:
                for k, c in enumerate(callers):
                    m = [x for x in metrics_of(rec, workload, "latency")
                         if x["size_bytes"] == size and x["callers"] == c]
                    if not m:
                        continue
                    values = np.sort([v for r in m[0]["rounds"] for v in r])
                    if values.size == 0:
                        continue
                    ys = np.arange(1, values.size + 1) / values.size
                    ax.plot(values, ys, style, color=colors[k % len(colors)], linewidth=1.2,
                            label=f"{label}, {c} caller{'s' if c > 1 else ''}")
            axes_style(ax, "latency (us, log)", "fraction of calls", size_text(size), legend=False)
        axes[0][0].legend(fontsize=6)
        fig.suptitle(f"Latency CDF: {title}", fontsize=10)
        save(fig, f"{workload}_latency_cdf.png")

    tput_any = [m for w in WORKLOAD_TITLES for m in metrics_of(record, w, "throughput")]
    if tput_any:
        workloads = [w for w in WORKLOAD_TITLES if metrics_of(record, w, "throughput")]
        fig, axes = plt.subplots(1, len(workloads), figsize=(4.2 * len(workloads), 3.0),
                                 squeeze=False)
        for ax, workload in zip(axes[0], workloads):
            sizes = sorted({m["size_bytes"] for m in metrics_of(record, workload, "throughput")})
            for rec, style, label in sides:
                for k, size in enumerate(sizes):
                    ms = sorted((m for m in metrics_of(rec, workload, "throughput")
                                 if m["size_bytes"] == size), key=lambda m: m["callers"])
                    if not ms:
                        continue
                    xs = [m["callers"] for m in ms]
                    ys = [m["summary"].get("median", 0) for m in ms]
                    ax.plot(xs, ys, style, marker="o", markersize=3,
                            color=colors[k % len(colors)],
                            label=f"{label}, {size_text(size)}")
            axes_style(ax, "concurrent callers", "calls/s (median of rounds)",
                       WORKLOAD_TITLES[workload], xscale=("log", 2))
        save(fig, "throughput_vs_callers.png")

    mux = metrics_of(record, "mux", "memory")
    if mux:
        fig, ax = plt.subplots(figsize=(4.8, 3.0))
        kinds = sorted({m["memory"] for m in mux})
        for rec, style, label in sides:
            for k, kind in enumerate(kinds):
                ms = sorted((m for m in metrics_of(rec, "mux", "memory") if m["memory"] == kind),
                            key=lambda m: m["mounts"])
                if not ms:
                    continue
                ax.plot([m["mounts"] for m in ms], [m["summary"].get("median", 0) / 1024 for m in ms],
                        style, marker="o", markersize=3, color=colors[k % len(colors)],
                        label=f"{label}, {kind.upper()}")
        axes_style(ax, "multiplexed mounts in one process", "plugin memory (MiB)",
                   "Memory against mounts")
        save(fig, "memory_vs_mounts.png")

    db = metrics_of(record, "database", "latency")
    if db:
        fig, ax = plt.subplots(figsize=(4.8, 3.0))
        for rec, style, label in sides:
            for k, m in enumerate(metrics_of(rec, "database", "latency")):
                values = np.sort([v for r in m["rounds"] for v in r])
                if values.size:
                    ax.plot(values, np.arange(1, values.size + 1) / values.size, style,
                            color=colors[k % len(colors)], label=f"{label}, {m['operation']}")
        axes_style(ax, "latency (us, log)", "fraction of calls", "Database plugin: latency CDF")
        save(fig, "database_latency_cdf.png")
    return files


# --- Markdown --------------------------------------------------------------------------------

def markdown(record, baseline, comparison, figures, fail_rows, fail_pct):
    plugin = record.get("plugin", {})
    build = record.get("build", {})
    machine = record.get("machine", {})
    lines = [f"# Benchmark: {record.get('manifest', {}).get('name', plugin.get('path', '?'))}", ""]
    mode = build.get("compilation_mode", "unknown")
    lines += [
        f"- plugin: `{plugin.get('path', '?')}`, SHA-256 `{plugin.get('sha256', '?')}`",
        f"- build: {mode} ({build.get('target_cpu', 'unknown')})"
        + ("" if mode == "opt" else " — NOT an optimised build: these figures say little about "
           "the plugin you ship"),
        f"- machine: {machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores, load "
        f"average {machine.get('load_average', '?')} at the start",
        f"- run: {record.get('run_mode', '?')}, {record.get('rounds', '?')} round(s) "
        f"(fresh plugin and runner processes each), started {record.get('started', '?')}",
    ]
    if record.get("failure"):
        lines.append(f"- FAILED: the plugin failed under measurement, which stopped: "
                     f"{record['failure']}")
    if record.get("notes"):
        lines += [f"- note: {n}" for n in record["notes"]]
    lines += ["", "Timings on a shared machine are noisy; the intervals below say how much.", ""]
    lines += ["## Figures", "", "| metric | unit | p50 / median | p99 | p99.9 | n | rounds |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for m in record.get("metrics", []):
        s, unit = m["summary"], m.get("unit", "")
        if m["kind"] == "latency":
            cells = [fmt(s.get("p50"), unit), fmt(s.get("p99"), unit), fmt(s.get("p99.9"), unit)]
        else:
            cells = [fmt(s.get("median"), unit), "-", "-"]
        lines.append(f"| {m['name']} | {unit} | " + " | ".join(cells)
                     + f" | {s.get('n', 0)} | {s.get('rounds', 0)} |")
    if comparison is not None:
        base_plugin = baseline.get("plugin", {})
        lines += ["", "## Against the baseline", "",
                  f"Baseline: `{base_plugin.get('path', '?')}` (SHA-256 "
                  f"`{base_plugin.get('sha256', '?')[:16]}…`, build "
                  f"{baseline.get('build', {}).get('compilation_mode', 'unknown')}"
                  + (", measured in the same run, rounds interleaved" if
                     baseline.get("interleaved_with") else ", a stored record") + ").",
                  "",
                  f"Ratio = candidate / baseline. Its interval comes from the spread between "
                  "rounds (each round a fresh plugin and host process; Welch t on the logarithms "
                  "of each round's statistic, or for a baseline measured in the same run a "
                  "paired t on the rounds' log ratios), or with fewer than "
                  f"{benchlib.MIN_ROUNDS} rounds from a bootstrap (rounds, then calls). All "
                  f"{comparison.get('family_rows', 0)} rows that can get a verdict are one family: "
                  f"each interval is at 1 - {1 - comparison['confidence']:.2f}/"
                  f"{max(1, comparison.get('family_rows', 0))}, so the chance that any verdict "
                  f"is wrong is at most {1 - comparison['confidence']:.0%}. A verdict needs the "
                  f"whole interval more than {comparison['min_effect']:.0%} away from 1. "
                  "\"Detectable\" is the smallest change (either way) the row's spread could have "
                  "shown.", "",
                  "| metric | statistic | candidate | baseline | ratio [interval] | detectable | "
                  "verdict |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for row in comparison["rows"]:
            verdict = row["verdict"] + (f" ({row['note']})" if row.get("note") else "")
            lines.append(f"| {row['metric']} | {row['statistic']} | "
                         f"{fmt(row['candidate'], row['unit'])} | {fmt(row['baseline'], row['unit'])} "
                         f"| {benchlib.format_ratio(row)} | {benchlib.format_detectable(row)} "
                         f"| {verdict} |")
        counts = {}
        for row in comparison["rows"]:
            counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
        lines += ["", "Verdicts: " + ", ".join(f"{v}: {n}" for v, n in sorted(counts.items()))]
        if fail_pct is not None:
            lines += ["", f"`--fail-on-regression={fail_pct:g}`: "
                      + (f"{len(fail_rows)} regression(s) beyond {fail_pct:g}%: "
                         + "; ".join(f"{r['metric']} {r['statistic']}" for r in fail_rows)
                         if fail_rows else "no regression beyond it")]
    if figures:
        lines += ["", "## Plots", ""]
        lines += [f"![{f}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def main(argv):
    parser = argparse.ArgumentParser(prog="report.py", description=__doc__.split("\n")[0])
    parser.add_argument("--record", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--baseline")
    parser.add_argument("--fail-on-regression", type=float, metavar="PCT")
    parser.add_argument("--min-effect", type=float, metavar="PCT",
                        default=benchlib.DEFAULT_MIN_EFFECT * 100)
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    if args.fail_on_regression is not None and args.fail_on_regression < 0:
        parser.error("--fail-on-regression=PCT needs PCT >= 0")
    try:
        record = load(args.record, "record")
        baseline = load(args.baseline, "baseline record") if args.baseline else None
    except benchlib.RecordError as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    if args.fail_on_regression is not None and baseline is None:
        print("report: --fail-on-regression needs a baseline", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    comparison = None
    fail_rows = []
    if baseline is not None:
        comparison = benchlib.compare(record, baseline, min_effect=args.min_effect / 100)
        if args.fail_on_regression is not None:
            fail_rows = benchlib.regressions(comparison, args.fail_on_regression)
        with open(os.path.join(args.out, "comparison.json"), "w") as f:
            json.dump(comparison, f, indent=1)
    with open(os.path.join(args.out, "record.json"), "w") as f:
        json.dump(record, f, indent=None, separators=(",", ":"))
    figures = [] if args.no_plots else plots(record, baseline, args.out)
    text = markdown(record, baseline, comparison, figures, fail_rows, args.fail_on_regression)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"report: wrote {args.out}/record.json, report.md"
          + (", comparison.json" if comparison else "")
          + "".join(f", {f}" for f in figures))
    if fail_rows:
        print(f"report: FAILED: {len(fail_rows)} metric(s) regressed by more than "
              f"{args.fail_on_regression:g}%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
