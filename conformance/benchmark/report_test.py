#!/usr/bin/python3
"""report.py as plugin_benchmark runs it: plots produced and non-empty, the report and the
comparison written, --fail-on-regression's exit status, bad records refused by name."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPORT = os.path.join(HERE, "report.py")
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def raw_record(seed, shift=1.0):
    """A raw record with the runner's layout: probe and storage workloads at two sizes and
    three caller counts, memory against mounts."""
    rng = np.random.default_rng(seed)
    metrics = []
    for workload in ("probe_read", "storage_write"):
        for size in (64, 4096):
            for callers in (1, 8, 32):
                base = 80 * (1 + size / 8192) * (1 + callers / 16)
                attrs = {"workload": workload, "size_bytes": size, "callers": callers}
                name = f"{workload}/{size} B/{callers} callers"
                metrics.append(dict(attrs, name=name, kind="latency", unit="us", rounds=[
                    list(rng.lognormal(np.log(base * shift), 0.2, 300)) for _ in range(3)]))
                metrics.append(dict(attrs, name=name + "/calls/s", kind="throughput",
                                    unit="calls/s", rounds=[
                                        [1e6 * callers / base / shift * (1 + rng.normal(0, .005))]
                                        for _ in range(3)]))
    for mounts in (1, 100, 1000):
        for kind in ("uss", "pss", "rss"):
            metrics.append({"workload": "mux", "mounts": mounts, "memory": kind,
                            "name": f"mux/{mounts} mounts/{kind.upper()}", "kind": "memory",
                            "unit": "KiB",
                            "rounds": [[(4000 + 10 * mounts) * shift] for _ in range(3)]})
    return {"format": benchlib.RECORD_FORMAT, "plugin": {"path": "notes", "sha256": "cd" * 32},
            "build": {"compilation_mode": "opt", "target_cpu": "k8"},
            "machine": {"cpu_model": "test", "cores": 2, "load_average": [0, 0, 0]},
            "manifest": {"name": "notes", "type": "secret"}, "rounds": 3, "run_mode": "full",
            "metrics": metrics}


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))

    def write(self, name, record):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(record, f)
        return path

    def run_report(self, *args):
        return subprocess.run(["/usr/bin/python3", REPORT, *args], capture_output=True,
                              text=True)

    def test_plots_report_and_record_are_written(self):
        out = os.path.join(self.dir, "out")
        base = self.write("base.json", raw_record(2))
        r = self.run_report("--record=" + self.write("rec.json", raw_record(1)),
                            "--baseline=" + base, "--out=" + out)
        self.assertEqual(r.returncode, 0, r.stderr)
        for png in ("probe_read_latency_cdf.png", "storage_write_latency_cdf.png",
                    "throughput_vs_callers.png", "memory_vs_mounts.png"):
            path = os.path.join(out, png)
            self.assertTrue(os.path.exists(path), png)
            with open(path, "rb") as f:
                data = f.read()
            self.assertTrue(data.startswith(PNG_MAGIC), png)
            self.assertGreater(len(data), 5000, png)  # Axes, lines and text, not a blank file.
        with open(os.path.join(out, "report.md")) as f:
            report = f.read()
        self.assertIn("## Against the baseline", report)
        self.assertIn("![memory_vs_mounts.png](memory_vs_mounts.png)", report)
        with open(os.path.join(out, "record.json")) as f:
            record = json.load(f)
        self.assertIn("p99.9", record["metrics"][0]["summary"])
        with open(os.path.join(out, "comparison.json")) as f:
            self.assertEqual(json.load(f)["format"], benchlib.COMPARISON_FORMAT)

    def test_fail_on_regression(self):
        base = self.write("base.json", raw_record(2))
        slower = self.write("slower.json", raw_record(1, shift=1.2))
        out = os.path.join(self.dir, "out")
        r = self.run_report("--record=" + slower, "--baseline=" + base, "--out=" + out,
                            "--no-plots", "--fail-on-regression=5")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("regressed by more than 5%", r.stderr)
        r = self.run_report("--record=" + slower, "--baseline=" + base, "--out=" + out,
                            "--no-plots", "--fail-on-regression=50")
        self.assertEqual(r.returncode, 0, r.stderr)
        # The same binary's samples drawn again: nothing to fail on, even at 0%.
        again = self.write("again.json", raw_record(3))
        r = self.run_report("--record=" + again, "--baseline=" + base, "--out=" + out,
                            "--no-plots", "--fail-on-regression=0")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("| slower |", r.stdout)
        self.assertNotIn("| faster |", r.stdout)

    def test_bad_input_is_named(self):
        out = os.path.join(self.dir, "out")
        bad = os.path.join(self.dir, "bad.json")
        with open(bad, "w") as f:
            f.write("{not json")
        r = self.run_report("--record=" + bad, "--out=" + out)
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.json is not JSON", r.stderr)
        r = self.run_report("--record=" + self.write("x.json", {"format": "other"}),
                            "--out=" + out)
        self.assertEqual(r.returncode, 2)
        self.assertIn("is not a benchmark record", r.stderr)
        r = self.run_report("--record=" + self.write("y.json", raw_record(1)), "--out=" + out,
                            "--fail-on-regression=5")
        self.assertEqual(r.returncode, 2)
        self.assertIn("needs a baseline", r.stderr)


if __name__ == "__main__":
    unittest.main()
