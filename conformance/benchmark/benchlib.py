"""Benchmark records and verdicts for plugin_benchmark (docs/benchmarking.md).

A record (format bulwark-benchmark-record/1) holds, per metric, the raw observations of every
round (a round is one fresh plugin process): latency samples in microseconds, or one value per
round for throughput, memory and start-up. `summarize` adds each metric's summary;
`compare` gives, per metric and statistic, the ratio candidate/baseline with a bootstrap
confidence interval and a verdict.

The bootstrap is hierarchical: it resamples rounds, then observations within each chosen round,
so the interval carries the process-to-process spread and not only the spread within one
process. A verdict other than "no significant change" needs the whole interval beyond a minimum
effect (default 3%): noise that moves a median by a percent never flips a verdict, and a metric
measured in fewer than MIN_ROUNDS rounds per side is never called for single-valued metrics,
nor a tail quantile estimated from fewer than ten observations beyond it (min_samples).
"""
import math

import numpy as np

RECORD_FORMAT = "bulwark-benchmark-record/1"
COMPARISON_FORMAT = "bulwark-benchmark-comparison/1"

# What each kind of metric measures, which way is better, and the statistics compared.
KINDS = {
    "latency": {"better": "lower", "stats": ["p50", "p99", "p99.9"]},
    "duration": {"better": "lower", "stats": ["median"]},
    "throughput": {"better": "higher", "stats": ["median"]},
    "memory": {"better": "lower", "stats": ["median"]},
}
QUANTILES = {"p50": 0.5, "p99": 0.99, "p99.9": 0.999}
DEFAULT_MIN_EFFECT = 0.03
DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 1000
# Single-valued metrics (one observation per round) need this many rounds on each side.
MIN_ROUNDS = 3

FASTER, SLOWER, SMALLER, LARGER = "faster", "slower", "smaller", "larger"
NO_CHANGE = "no significant change"


class RecordError(ValueError):
    """A record that is not in the format, or two records that cannot be compared."""


def quantile(values, q):
    """Nearest-rank quantile (the smallest observation with at least q of them at or below)."""
    values = np.sort(np.asarray(values, dtype=float))
    if values.size == 0:
        return float("nan")
    rank = max(1, math.ceil(q * values.size))
    return float(values[rank - 1])


def metric_key(metric):
    return metric["name"]


def check_record(record, what="record"):
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise RecordError(f"{what} is not a benchmark record (format {RECORD_FORMAT})")
    for m in record.get("metrics", []):
        if m.get("kind") not in KINDS:
            raise RecordError(f"{what}: metric {m.get('name')!r} has unknown kind {m.get('kind')!r}")
        rounds = m.get("rounds")
        if not isinstance(rounds, list) or not all(isinstance(r, list) for r in rounds):
            raise RecordError(f"{what}: metric {m.get('name')!r} has no list of rounds")


def summarize_metric(metric):
    """The summary of one metric's observations (all rounds pooled for latency)."""
    pooled = [v for r in metric["rounds"] for v in r]
    summary = {"n": len(pooled), "rounds": len(metric["rounds"])}
    if not pooled:
        return summary
    if metric["kind"] == "latency":
        for stat, q in QUANTILES.items():
            summary[stat] = quantile(pooled, q)
        summary["mean"] = float(np.mean(pooled))
    else:
        summary["median"] = quantile(pooled, 0.5)
        summary["min"] = float(min(pooled))
        summary["max"] = float(max(pooled))
    return summary


def summarize(record):
    """Adds "summary" to every metric of `record` (in place) and returns it."""
    check_record(record)
    for m in record.get("metrics", []):
        m["summary"] = summarize_metric(m)
    return record


def _statistic(values, stat):
    return quantile(values, 0.5 if stat == "median" else QUANTILES[stat])


def bootstrap(rounds, stats, rng, resamples):
    """Resampled values of each statistic: an array of shape (len(stats), resamples)."""
    rounds = [np.asarray(r, dtype=float) for r in rounds if len(r) > 0]
    out = np.empty((len(stats), resamples))
    qs = [0.5 if s == "median" else QUANTILES[s] for s in stats]
    sizes = {r.size for r in rounds}
    if len(sizes) == 1:
        # Rounds of equal size (the runner's): resample in blocks, vectorised.
        data, n, count = np.stack(rounds), sizes.pop(), len(rounds)
        ranks = [max(1, math.ceil(q * n * count)) - 1 for q in qs]
        block = max(1, 4_000_000 // (n * count))
        for start in range(0, resamples, block):
            b = min(block, resamples - start)
            chosen = rng.integers(count, size=(b, count, 1))
            idx = rng.integers(n, size=(b, count, n))
            pooled = data[chosen, idx].reshape(b, count * n)
            part = np.partition(pooled, ranks, axis=1)
            for j, rank in enumerate(ranks):
                out[j, start:start + b] = part[:, rank]
        return out
    for b in range(resamples):
        chosen = rng.integers(len(rounds), size=len(rounds))
        parts = [rounds[i][rng.integers(rounds[i].size, size=rounds[i].size)] for i in chosen]
        pooled = np.sort(np.concatenate(parts))
        for j, q in enumerate(qs):
            out[j, b] = pooled[max(1, math.ceil(q * pooled.size)) - 1]
    return out


def min_samples(stat):
    """Calls a side needs before a tail quantile gets a verdict: ten beyond the quantile (p99:
    1000, p99.9: 10000), so that no verdict rests on a handful of stalls."""
    return math.ceil(10 / (1 - QUANTILES[stat]) - 1e-9)


def verdict_of(kind, low, high, min_effect):
    """The verdict for a ratio candidate/baseline whose interval is [low, high]."""
    worse_if_above = KINDS[kind]["better"] == "lower"
    above = low > 1 + min_effect
    below = high < 1 / (1 + min_effect)
    if not (above or below):
        return NO_CHANGE
    worse = above if worse_if_above else below
    if kind == "memory":
        return LARGER if worse else SMALLER
    return SLOWER if worse else FASTER


def is_regression(verdict):
    return verdict in (SLOWER, LARGER)


def compare(candidate, baseline, min_effect=DEFAULT_MIN_EFFECT, confidence=DEFAULT_CONFIDENCE,
            resamples=DEFAULT_RESAMPLES, seed=1):
    """Per metric present in both records and per statistic of its kind: the ratio
    candidate/baseline, its bootstrap interval and the verdict. Deterministic for a seed."""
    check_record(candidate, "the candidate record")
    check_record(baseline, "the baseline record")
    rng = np.random.default_rng(seed)
    base_by_name = {metric_key(m): m for m in baseline.get("metrics", [])}
    rows = []
    alpha = (1 - confidence) / 2
    for m in candidate.get("metrics", []):
        b = base_by_name.get(metric_key(m))
        if b is None or b["kind"] != m["kind"]:
            continue
        stats = KINDS[m["kind"]]["stats"]
        cand_rounds = [r for r in m["rounds"] if r]
        base_rounds = [r for r in b["rounds"] if r]
        if not cand_rounds or not base_rounds:
            continue
        single = all(len(r) == 1 for r in cand_rounds + base_rounds)
        cand_pooled = [v for r in cand_rounds for v in r]
        base_pooled = [v for r in base_rounds for v in r]
        cand_boot = bootstrap(cand_rounds, stats, rng, resamples)
        base_boot = bootstrap(base_rounds, stats, rng, resamples)
        for j, stat in enumerate(stats):
            c, bv = _statistic(cand_pooled, stat), _statistic(base_pooled, stat)
            row = {"metric": m["name"], "kind": m["kind"], "unit": m.get("unit", ""),
                   "statistic": stat, "candidate": c, "baseline": bv}
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = cand_boot[j] / base_boot[j]
            ratios = ratios[np.isfinite(ratios)]
            if bv <= 0 or not np.isfinite(c / bv) or ratios.size == 0:
                row.update({"ratio": None, "low": None, "high": None, "verdict": NO_CHANGE,
                            "note": "baseline is zero: no ratio"})
            else:
                low = float(np.quantile(ratios, alpha))
                high = float(np.quantile(ratios, 1 - alpha))
                row.update({"ratio": c / bv, "low": low, "high": high,
                            "verdict": verdict_of(m["kind"], low, high, min_effect)})
                if single and min(len(cand_rounds), len(base_rounds)) < MIN_ROUNDS:
                    row["verdict"] = NO_CHANGE
                    row["note"] = (f"one value per round and fewer than {MIN_ROUNDS} rounds on a "
                                   "side: too few to decide")
                elif stat in QUANTILES and min(len(cand_pooled), len(base_pooled)) < \
                        min_samples(stat):
                    row["verdict"] = NO_CHANGE
                    row["note"] = (f"fewer than {min_samples(stat)} calls on a side: too few to "
                                   f"decide a {stat}")
            rows.append(row)
    return {
        "format": COMPARISON_FORMAT,
        "candidate": _identity(candidate),
        "baseline": _identity(baseline),
        "confidence": confidence,
        "min_effect": min_effect,
        "resamples": resamples,
        "rows": rows,
    }


def _identity(record):
    return {key: record.get(key) for key in
            ("label", "plugin", "build", "machine", "run_mode", "rounds", "started")
            if key in record}


def regressions(comparison, fail_pct):
    """Rows that regressed by more than fail_pct percent with confidence: the interval's nearer
    end lies beyond 1 + fail_pct/100 in the worse direction."""
    out = []
    limit = 1 + fail_pct / 100.0
    for row in comparison["rows"]:
        if not is_regression(row["verdict"]) or row["ratio"] is None:
            continue
        worse_is_above = KINDS[row["kind"]]["better"] == "lower"
        nearer = row["low"] if worse_is_above else 1 / row["high"]
        if nearer > limit:
            out.append(row)
    return out


def format_ratio(row):
    if row["ratio"] is None:
        return "-"
    return f"{row['ratio']:.3f}x [{row['low']:.3f}, {row['high']:.3f}]"
