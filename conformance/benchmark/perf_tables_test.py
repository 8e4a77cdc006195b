#!/usr/bin/python3
"""perf_tables.py on fixtures: what --check must refuse (a stale table, a table neither generated
nor announced, a marker naming no record, a file that is no record) and how each record format
is rendered."""
import io
import json
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stderr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import perf_tables  # noqa: E402

MACHINE = {"cpu_model": "Test CPU", "cores": 2, "load_average": [1.5, 1.0, 0.5]}
TABLE = {
    "format": perf_tables.TABLE_FORMAT,
    "benchmark": "x_benchmark",
    "command": "bazel run -c opt //benchmarks:x_benchmark",
    "started": "2026-12-07T02:00:00Z",
    "machine": MACHINE,
    "build": {"compilation_mode": "opt", "optimised": True},
    "columns": ["benchmark", "wall time"],
    "rows": [["BM_A", "1.00 ms"], ["BM_B|pipe", "2.00 ms"]],
    "notes": [],
}


def record(values):
    return benchlib.summarize({
        "format": benchlib.RECORD_FORMAT, "label": "kv", "plugin": {"path": "kv", "sha256": "ab"},
        "build": {"compilation_mode": "opt"}, "machine": MACHINE, "run_mode": "full",
        "rounds": 1, "started": "2026-12-07T02:00:00Z",
        "metrics": [{"name": "probe_read/64 B/1 caller", "kind": "latency", "unit": "us",
                     "rounds": [values]},
                    {"name": "memory/idle/USS", "kind": "memory", "unit": "KiB",
                     "rounds": [[100.0]]}]})


class PerfTablesTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.table = self.write("x_benchmark.json", TABLE)

    def write(self, name, content):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))
        return path

    def run_tool(self, doc_text, *args, records=None):
        doc = self.write("performance.md", doc_text)
        err = io.StringIO()
        with redirect_stderr(err):
            status = perf_tables.main([f"--doc={doc}", *args, *(records or [self.table])])
        with open(doc) as f:
            return status, f.read(), err.getvalue()

    def test_write_fills_a_block_and_check_then_passes(self):
        doc = "# T\n\n<!-- generated from x_benchmark.json -->\n<!-- end generated -->\n"
        status, text, _ = self.run_tool(doc, "--write")
        self.assertEqual(status, 0)
        self.assertIn("| BM_A | 1.00 ms |", text)
        self.assertIn("BM_B\\|pipe", text)  # A cell's pipe cannot break the table.
        self.assertIn("`bazel run -c opt //benchmarks:x_benchmark`, opt build", text)
        status, _, err = self.run_tool(text, "--check")
        self.assertEqual(status, 0, err)

    def test_check_refuses_a_stale_table(self):
        doc = "<!-- generated from x_benchmark.json -->\n| old | figure |\n<!-- end generated -->\n"
        status, text, err = self.run_tool(doc, "--check")
        self.assertEqual(status, 1)
        self.assertIn("is stale", err)
        self.assertEqual(text, doc)  # --check never writes.

    def test_check_refuses_a_hand_typed_table_unless_announced(self):
        doc = "Some text.\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n"
        status, _, err = self.run_tool(doc, "--check")
        self.assertEqual(status, 1)
        self.assertIn(":3: a table neither generated", err)
        announced = "Hand-recorded: measured on an old build.\n\n" + doc.split("\n\n", 1)[1]
        status, _, err = self.run_tool(announced, "--check")
        self.assertEqual(status, 0, err)

    def test_a_marker_naming_no_record_and_an_open_block_are_errors(self):
        status, _, err = self.run_tool(
            "<!-- generated from missing.json -->\n<!-- end generated -->\n", "--check")
        self.assertEqual(status, 2)
        self.assertIn("names no record given", err)
        status, _, err = self.run_tool("<!-- generated from x_benchmark.json -->\n", "--check")
        self.assertEqual(status, 2)
        self.assertIn("has no `<!-- end generated -->`", err)

    def test_a_file_that_is_no_record_is_refused_by_name(self):
        bad = self.write("bad.json", {"format": "something-else"})
        status, _, err = self.run_tool("", "--check", records=[bad])
        self.assertEqual(status, 2)
        self.assertIn("bad.json is not a benchmark record", err)

    def test_plugin_record_and_comparison_render(self):
        a = record([100.0 + i % 7 for i in range(2000)])
        b = record([105.0 + i % 7 for i in range(2000)])
        lines = perf_tables.render(a, "a.json")
        self.assertIn("| probe_read/64 B/1 caller | 2000 | 103.0 us | 106.0 us | 106.0 us |",
                      lines)
        cmp = benchlib.compare(a, b, resamples=200)
        text = "\n".join(perf_tables.render(cmp, "c.json"))
        self.assertIn("| probe_read/64 B/1 caller | p50 | 103.0 us | 108.0 us |", text)
        self.assertRegex(text, r"rows: \d+ ")


if __name__ == "__main__":
    unittest.main()
