#!/usr/bin/python3
"""The verdict logic on synthetic samples: identical records, a 5% shift (central and, with
enough calls, tail statistics), heavy-tailed noise, rounds with different shares of stalls, and
records re-drawn from the same distribution (two runs of the same binary)."""
import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


def compare(candidate, baseline):
    # Fewer resamples than a report's 1000 keep the test quick; the verdicts are the same.
    return benchlib.compare(candidate, baseline, resamples=300)


def synthetic(seed, shift=1.0, heavy=False, rounds=5, samples=1000, round_noise=0.005):
    """A record like the runner's: per round a process-level factor (its placement, its heap),
    latency samples around 100 us (lognormal, or with a Pareto tail), one throughput and one
    memory value per round. `shift` multiplies every latency and memory value and divides the
    throughput."""
    rng = np.random.default_rng(seed)
    lat, tput, mem = [], [], []
    for _ in range(rounds):
        factor = shift * (1 + rng.normal(0, round_noise))
        if heavy:
            base = 100 + 20 * rng.pareto(1.5, samples)
        else:
            base = rng.lognormal(np.log(100), 0.2, samples)
        lat.append(list(base * factor))
        tput.append([10000 / factor])
        mem.append([8192 * factor])
    return benchlib.summarize({
        "format": benchlib.RECORD_FORMAT,
        "plugin": {"sha256": "ab" * 32},
        "metrics": [
            {"name": "probe_read 64B x1", "kind": "latency", "unit": "us", "rounds": lat},
            {"name": "probe_read 64B x1 calls/s", "kind": "throughput", "unit": "calls/s",
             "rounds": tput},
            {"name": "idle uss", "kind": "memory", "unit": "KiB", "rounds": mem},
        ],
    })


def stalled(seed, rounds=5, samples=1000, metrics=8):
    """Latency metrics whose rounds meet different shares of stalls, as on a loaded machine."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(metrics):
        lat = []
        for _ in range(rounds):
            base = rng.lognormal(np.log(100), 0.2, samples) * (1 + rng.normal(0, 0.01))
            stalls = rng.choice(samples, size=min(samples, rng.poisson(samples * 0.01 *
                                                                       rng.uniform(0, 3))),
                                replace=False)
            base[stalls] *= rng.uniform(5, 40, size=stalls.size)
            lat.append(list(base))
        out.append({"name": f"series {k}", "kind": "latency", "unit": "us", "rounds": lat})
    return benchlib.summarize({"format": benchlib.RECORD_FORMAT, "metrics": out})


def verdicts(comparison):
    return {(r["metric"], r["statistic"]): r["verdict"] for r in comparison["rows"]}


class VerdictTest(unittest.TestCase):
    def test_identical_records_are_no_change_with_ratio_one(self):
        rec = synthetic(1)
        cmp = compare(rec, rec)
        self.assertEqual(len(cmp["rows"]), 5)
        for row in cmp["rows"]:
            self.assertEqual(row["verdict"], benchlib.NO_CHANGE, row)
            self.assertAlmostEqual(row["ratio"], 1.0)
            self.assertLessEqual(row["low"], 1.0)
            self.assertGreaterEqual(row["high"], 1.0)

    def test_five_percent_slower_is_slower_on_central_metrics(self):
        base, cand = synthetic(1), synthetic(2, shift=1.05)
        v = verdicts(compare(cand, base))
        self.assertEqual(v[("probe_read 64B x1", "p50")], benchlib.SLOWER)
        self.assertEqual(v[("probe_read 64B x1 calls/s", "median")], benchlib.SLOWER)
        self.assertEqual(v[("idle uss", "median")], benchlib.LARGER)
        # The other way round it is an improvement.
        v = verdicts(compare(base, cand))
        self.assertEqual(v[("probe_read 64B x1", "p50")], benchlib.FASTER)
        self.assertEqual(v[("probe_read 64B x1 calls/s", "median")], benchlib.FASTER)
        self.assertEqual(v[("idle uss", "median")], benchlib.SMALLER)

    def test_fail_on_regression_threshold(self):
        cmp = compare(synthetic(2, shift=1.05), synthetic(1))
        self.assertTrue(benchlib.regressions(cmp, 1))
        self.assertFalse(benchlib.regressions(cmp, 10))
        # An improvement is never a regression.
        self.assertFalse(benchlib.regressions(compare(synthetic(1), synthetic(2, 1.05)), 0))

    def test_redrawn_samples_are_no_change_on_every_metric(self):
        # Two runs of the same binary: the same distributions, drawn again, with a process-level
        # spread of 2% per round.
        for seed in range(1, 6):
            cmp = compare(synthetic(seed, round_noise=0.02),
                                   synthetic(seed + 100, round_noise=0.02))
            for row in cmp["rows"]:
                self.assertEqual(row["verdict"], benchlib.NO_CHANGE, (seed, row))

    def test_heavy_tailed_noise_redrawn_is_no_change(self):
        for seed in range(1, 6):
            cmp = compare(synthetic(seed, heavy=True), synthetic(seed + 50, heavy=True))
            for row in cmp["rows"]:
                self.assertEqual(row["verdict"], benchlib.NO_CHANGE, (seed, row))

    def test_heavy_tailed_noise_shifted_is_slower_at_the_median(self):
        cmp = compare(synthetic(3, shift=1.05, heavy=True), synthetic(4, heavy=True))
        self.assertEqual(verdicts(cmp)[("probe_read 64B x1", "p50")], benchlib.SLOWER)

    def test_few_rounds_of_single_values_are_never_called(self):
        cmp = compare(synthetic(1, shift=1.5, rounds=2), synthetic(2, rounds=2))
        v = verdicts(cmp)
        self.assertEqual(v[("idle uss", "median")], benchlib.NO_CHANGE)
        self.assertEqual(v[("probe_read 64B x1 calls/s", "median")], benchlib.NO_CHANGE)
        # Latency samples are many per round: still decided.
        self.assertEqual(v[("probe_read 64B x1", "p50")], benchlib.SLOWER)

    def test_tail_quantiles_need_ten_calls_beyond_them(self):
        # 5 rounds of 1000 calls: enough for a p99 verdict (1000), not for a p99.9 (10000).
        cmp = compare(synthetic(2, shift=1.5), synthetic(1))
        v = verdicts(cmp)
        self.assertEqual(v[("probe_read 64B x1", "p99")], benchlib.SLOWER)
        self.assertEqual(v[("probe_read 64B x1", "p99.9")], benchlib.NO_CHANGE)
        row = [r for r in cmp["rows"] if r["statistic"] == "p99.9"][0]
        self.assertIn("fewer than 10000 calls on a side", row["note"])

    def test_redrawn_runs_with_stalls_in_some_rounds_are_no_change(self):
        # A loaded machine: each round's process meets a different share of stalls (0-3% of its
        # calls 5-40x slower), so a round's p99 is either the distribution's or a stall's.
        # Intervals from the rounds' spread, tails judged as a family: no verdict flips.
        for seed in range(1, 6):
            cmp = compare(stalled(seed), stalled(seed + 100))
            for row in cmp["rows"]:
                self.assertEqual(row["verdict"], benchlib.NO_CHANGE, (seed, row))
                self.assertEqual(row["interval"], "rounds")

    def test_a_five_percent_tail_shift_is_detected_with_enough_calls(self):
        # The rounds' spread of a p99 is wider than of a p50: 10 rounds of 5000 calls.
        v = verdicts(compare(synthetic(7, shift=1.05, rounds=10, samples=5000),
                             synthetic(8, rounds=10, samples=5000)))
        self.assertEqual(v[("probe_read 64B x1", "p50")], benchlib.SLOWER)
        self.assertEqual(v[("probe_read 64B x1", "p99")], benchlib.SLOWER)
        # And the same amount of data drawn again without a shift is no change.
        v = verdicts(compare(synthetic(9, rounds=10, samples=5000),
                             synthetic(8, rounds=10, samples=5000)))
        self.assertEqual(set(v.values()), {benchlib.NO_CHANGE})

    def test_all_rows_are_judged_as_one_family(self):
        cmp = compare(stalled(1), stalled(2))
        tails = [r for r in cmp["rows"] if r["statistic"] == "p99"]
        central = [r for r in cmp["rows"] if r["statistic"] == "p50"]
        self.assertEqual(cmp["tail_rows"], len(tails))  # p99.9 rows have too few calls.
        self.assertEqual(cmp["family_rows"], len(tails) + len(central))
        for r in tails + central:
            self.assertAlmostEqual(r["confidence"], 1 - 0.05 / cmp["family_rows"])
        for r in cmp["rows"]:
            if r["statistic"] == "p99.9":  # No verdict: not in the family, interval at 95%.
                self.assertAlmostEqual(r["confidence"], 1 - 0.05 / cmp["family_rows"])

    def test_detectable_effect_is_what_the_interval_could_tell(self):
        cmp = compare(synthetic(2), synthetic(1))
        for r in cmp["rows"]:
            half = (np.log(r["high"]) - np.log(r["low"])) / 2
            self.assertAlmostEqual(r["detectable"], 1.03 * np.exp(half))
            self.assertGreater(r["detectable"], 1.03)

    def test_many_redrawn_metrics_are_no_change_on_every_metric(self):
        # A full run's comparison holds ~90 rows. Judged one by one at 95%, two runs of one
        # binary would flag a few by chance; as one family, none. 30 latency metrics (90 rows,
        # 60 of them decidable), re-drawn with a 20% process-to-process spread per round (a
        # loaded machine's).
        def many(seed):
            rng = np.random.default_rng(seed)
            metrics = []
            for k in range(30):
                lat = [list(rng.lognormal(np.log(100), 0.3, 1000) * (1 + rng.normal(0, 0.2)))
                       for _ in range(5)]
                metrics.append({"name": f"m{k}", "kind": "latency", "unit": "us", "rounds": lat})
            return benchlib.summarize({"format": benchlib.RECORD_FORMAT, "metrics": metrics})
        # Seeds 5 and 7 each flag one p50 when the rows are judged one by one at 95% (the rule
        # before 2026-12-07, under which the kv plugin's two back-to-back runs flagged one p50).
        for seed in (1, 5, 7):
            cmp = compare(many(seed), many(seed + 100))
            self.assertEqual(cmp["family_rows"], 60)
            for row in cmp["rows"]:
                self.assertEqual(row["verdict"], benchlib.NO_CHANGE, (seed, row))

    def test_interleaved_rounds_are_paired(self):
        # Both sides in the same invocation: each round's load (a factor of 0.7-1.6 shared by the
        # two processes of the round) moves both alike. Unpaired, a 10% shift is lost in it;
        # paired, the load cancels and the shift is found, and no shift is no change.
        def pair(seed, shift):
            rng = np.random.default_rng(seed)
            cand, base = [], []
            for _ in range(5):
                load = rng.uniform(0.7, 1.6)
                cand.append(list(rng.lognormal(np.log(100), 0.2, 1000) * load * shift
                                 * (1 + rng.normal(0, 0.01))))
                base.append(list(rng.lognormal(np.log(100), 0.2, 1000) * load
                                 * (1 + rng.normal(0, 0.01))))
            rec = lambda rounds, label, other: benchlib.summarize({
                "format": benchlib.RECORD_FORMAT, "label": label, "interleaved_with": other,
                "metrics": [{"name": "m", "kind": "latency", "unit": "us", "rounds": rounds}]})
            return rec(cand, "a", "b"), rec(base, "b", "a")
        cand, base = pair(3, 1.10)
        row = [r for r in compare(cand, base)["rows"] if r["statistic"] == "p50"][0]
        self.assertEqual(row["interval"], "paired")
        self.assertEqual(row["verdict"], benchlib.SLOWER, row)
        del cand["interleaved_with"]  # The same samples as two separate runs: unpaired.
        row = [r for r in compare(cand, base)["rows"] if r["statistic"] == "p50"][0]
        self.assertEqual(row["interval"], "rounds")
        self.assertEqual(row["verdict"], benchlib.NO_CHANGE, row)
        for seed in range(4, 9):
            cand, base = pair(seed, 1.0)
            for r in compare(cand, base)["rows"]:
                self.assertEqual(r["verdict"], benchlib.NO_CHANGE, (seed, r))

    def test_t_quantiles(self):
        self.assertAlmostEqual(benchlib.t_quantile(0.975, 1), 12.706, places=2)
        self.assertAlmostEqual(benchlib.t_quantile(0.975, 4), 2.776, places=2)
        self.assertAlmostEqual(benchlib.t_quantile(0.975, 1000), 1.962, places=2)
        self.assertAlmostEqual(benchlib.t_quantile(0.995, 8), 3.355, places=2)

    def test_the_verdict_is_deterministic_for_a_seed(self):
        a = compare(synthetic(2, shift=1.02), synthetic(1))
        b = compare(synthetic(2, shift=1.02), synthetic(1))
        self.assertEqual(a, b)

    def test_summaries(self):
        rec = synthetic(1)
        lat = rec["metrics"][0]["summary"]
        self.assertEqual(lat["n"], 5000)
        self.assertLess(lat["p50"], lat["p99"])
        self.assertLessEqual(lat["p99"], lat["p99.9"])
        self.assertEqual(benchlib.quantile([3, 1, 2, 4], 0.5), 2)
        self.assertEqual(benchlib.quantile([5], 0.999), 5)

    def test_bad_records_are_refused_by_name(self):
        with self.assertRaisesRegex(benchlib.RecordError, "not a benchmark record"):
            compare({"format": "x"}, synthetic(1))
        bad = synthetic(1)
        bad["metrics"][0]["kind"] = "speed"
        with self.assertRaisesRegex(benchlib.RecordError, "unknown kind 'speed'"):
            compare(bad, synthetic(1))


if __name__ == "__main__":
    unittest.main()
