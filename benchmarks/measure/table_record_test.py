#!/usr/bin/python3
"""table_record.py: a printed Markdown table becomes a record that perf_tables.py renders as the
same table; stdin without a table, or with a ragged row, is refused naming the problem."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "table_record.py")
SIM = os.path.join(HERE, "sim_record.py")
sys.path.insert(0, os.path.join(HERE, "..", "..", "conformance", "benchmark"))
import perf_tables  # noqa: E402

PRINTED = """summary: median [min-max] over 3 round(s)
| workload | requests/s | p99 (ms) |
| --- | --- | --- |
| nginx | 38,700 [24,500-50,100] | 5.51 [1.54-70.9] |
| kv \\| read | 17,600 [13,700-24,200] | 4.92 [2.55-8.66] |

goal kv-read >= 0.3x nginx: met
"""


def run(stdin, *args):
    return subprocess.run(["/usr/bin/python3", TOOL, *args], input=stdin, text=True,
                          capture_output=True, env={k: v for k, v in os.environ.items()
                                                    if k != "BUILD_WORKING_DIRECTORY"})


class TableRecordTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.out = os.path.join(self.dir, "t.json")

    def test_a_printed_table_is_recorded_and_renders_as_itself(self):
        r = run(PRINTED, f"--out={self.out}", "--benchmark=b", "--command=bazel run //x",
                "--build=opt", "--note=first", "--notes-from-text")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.out) as f:
            record = json.load(f)
        self.assertEqual(record["format"], "bulwark-benchmark-table/1")
        self.assertEqual(record["columns"], ["workload", "requests/s", "p99 (ms)"])
        self.assertEqual(record["rows"][1], ["kv | read", "17,600 [13,700-24,200]",
                                             "4.92 [2.55-8.66]"])
        self.assertEqual(record["notes"], ["first", "summary: median [min-max] over 3 round(s)",
                                           "goal kv-read >= 0.3x nginx: met"])
        self.assertTrue(record["build"]["optimised"])
        lines = perf_tables.render(record, self.out)
        self.assertIn("| kv \\| read | 17,600 [13,700-24,200] | 4.92 [2.55-8.66] |", lines)
        self.assertIn("Note: goal kv-read >= 0.3x nginx: met", lines)

    def test_no_table_is_refused(self):
        r = run("just text\n", f"--out={self.out}", "--benchmark=b", "--command=c")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no Markdown table", r.stderr)
        self.assertFalse(os.path.exists(self.out))

    def test_a_ragged_row_is_refused(self):
        r = run("| a | b |\n| --- | --- |\n| 1 | 2 | 3 |\n", f"--out={self.out}",
                "--benchmark=b", "--command=c")
        self.assertEqual(r.returncode, 2)
        self.assertIn("3 cells, the header 2", r.stderr)


class SimRecordTest(unittest.TestCase):
    REPORT = {"scenario": "default", "first_seed": 1, "last_seed": 200, "runs": 200,
              "sim_time_seconds": 36360.0, "wall_seconds": 36.1, "cpu_seconds": 35.5,
              "sim_to_wall_ratio": 1007.2, "seeds_per_cpu_hour": 20281.7,
              "determinism_checked": 200, "determinism_same": 200, "failed": 0,
              "shrunk_lengths": [1, 1, 3]}

    def test_a_sim_report_becomes_a_row(self):
        d = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        report, out = os.path.join(d, "r.json"), os.path.join(d, "sim.json")
        with open(report, "w") as f:
            json.dump(self.REPORT, f)
        r = subprocess.run(["/usr/bin/python3", SIM, f"--out={out}", "--command=bazel run //sim",
                            report], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            record = json.load(f)
        self.assertEqual(record["rows"], [["default", "1..200 (200 runs)", "10 h 06 min in 36.1 s",
                                           "1,007x", "20,282 (35.5 s CPU)", "200 of 200", "0",
                                           "1 (max 3)"]])

    def test_a_node_count_given_is_named(self):
        d = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        report, out = os.path.join(d, "r.json"), os.path.join(d, "sim.json")
        with open(report, "w") as f:
            json.dump(dict(self.REPORT, nodes=3), f)
        r = subprocess.run(["/usr/bin/python3", SIM, f"--out={out}", "--command=bazel run //sim",
                            report], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            self.assertEqual(json.load(f)["rows"][0][0], "default, --nodes 3")

    def test_not_a_sim_report_is_refused(self):
        d = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        report = os.path.join(d, "r.json")
        with open(report, "w") as f:
            json.dump({"scenario": "x"}, f)
        r = subprocess.run(["/usr/bin/python3", SIM, f"--out={d}/o.json", "--command=c", report],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("is not a `sim --json` report", r.stderr)


if __name__ == "__main__":
    unittest.main()
