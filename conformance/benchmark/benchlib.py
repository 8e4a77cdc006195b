"""Benchmark records and verdicts for plugin_benchmark (docs/benchmarking.md).

A record (format bulwark-benchmark-record/1) holds, per metric, the raw observations of every
round (a round is one fresh plugin process): latency samples in microseconds, or one value per
round for throughput, memory and start-up. `summarize` adds each metric's summary;
`compare` gives, per metric and statistic, the ratio candidate/baseline with a confidence
interval and a verdict.

The unit of replication is the round: calls within one process share its placement, heap and
the machine's load of that minute, so they are not independent of each other, and the rounds
are few. With at least MIN_ROUNDS rounds on each side, the interval comes from the statistic
computed round by round (each round's p50, p99, p99.9, or its one value): a Welch t interval on
the logarithms (or, when both sides ran in the same invocation with their rounds interleaved, a
paired t interval on the per-round log ratios, in which the load both sides of a round met
cancels), so it carries the whole round-to-round spread (a round whose tail caught a stall
counts once, not a thousand times) with the small-sample t quantile, not a normal or bootstrap
one, which with five rounds would be too narrow. It is centred on the logarithm of the pooled
ratio, the ratio the row shows. With fewer rounds (quick runs) a latency statistic falls back to
a hierarchical bootstrap (rounds, then calls within each round), and a single-valued metric gets
no verdict. A verdict other than "no significant change" needs the whole interval beyond a
minimum effect (default 3%), and a tail quantile estimated from fewer than ten observations
beyond it (min_samples) gets none. All the rows of a comparison are judged as one family
(compare), so that "no significant change on every metric" is wrong with at most 5% chance.
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
# Tail quantiles: judged as one family (see compare).
TAILS = ("p99", "p99.9")
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


def _t_cdf_upper_area(t, df):
    """The area of Student's t density with df degrees of freedom between 0 and t >= 0."""
    x = np.linspace(0.0, t, 4001)
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    y = c * (1 + x * x / df) ** (-(df + 1) / 2)
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)


_T_QUANTILES = {}


def t_quantile(p, df):
    """The p quantile (p > 0.5) of Student's t with df (> 0, possibly fractional) degrees of
    freedom, by bisection on its CDF (no scipy on Debian's base python)."""
    key = (round(p, 6), round(df, 3))
    if key not in _T_QUANTILES:
        lo, hi = 0.0, 1000.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if 0.5 + _t_cdf_upper_area(mid, df) < p:
                lo = mid
            else:
                hi = mid
        _T_QUANTILES[key] = (lo + hi) / 2
    return _T_QUANTILES[key]


def round_interval(center, cand_values, base_values, confidence):
    """The interval of a ratio whose logarithm is `center`, from per-round values of a statistic
    on each side: Welch's t on the logarithms (the round-to-round variances of both sides, the
    Welch-Satterthwaite degrees of freedom). None when a value is not positive."""
    c = np.log(np.asarray(cand_values, dtype=float))
    b = np.log(np.asarray(base_values, dtype=float))
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(b))):
        return None
    vc, vb = np.var(c, ddof=1) / c.size, np.var(b, ddof=1) / b.size
    se = math.sqrt(vc + vb)
    if se == 0:
        return math.exp(center), math.exp(center)
    df = (vc + vb) ** 2 / (vc ** 2 / (c.size - 1) + vb ** 2 / (b.size - 1))
    half = t_quantile(1 - (1 - confidence) / 2, df) * se
    return math.exp(center - half), math.exp(center + half)


def paired_interval(center, cand_values, base_values, confidence):
    """The interval of a ratio whose logarithm is `center`, from per-round values of a statistic
    measured in the same rounds on both sides (an interleaved run: both processes side by side in
    each round): Student's t on the per-round differences of the logarithms, n - 1 degrees of
    freedom. What the two sides of a round share (that minute's load) cancels in the difference.
    None when a value is not positive."""
    d = np.log(np.asarray(cand_values, dtype=float)) - np.log(np.asarray(base_values, dtype=float))
    if not np.all(np.isfinite(d)) or d.size < 2:
        return None
    se = float(np.std(d, ddof=1)) / math.sqrt(d.size)
    if se == 0:
        return math.exp(center), math.exp(center)
    half = t_quantile(1 - (1 - confidence) / 2, d.size - 1) * se
    return math.exp(center - half), math.exp(center + half)


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
    candidate/baseline, its interval and the verdict. Deterministic for a seed.

    Every row that can get a verdict belongs to one family: each row's interval is at
    1 - (1 - confidence) / k, k being the number of rows that can get a verdict (Bonferroni), so
    that the chance of any verdict of the comparison being wrong is at most 1 - confidence. A
    comparison of a full run holds ~90 rows; at `confidence` each, two runs of one binary would
    flag two or three of them by chance alone, and "no metric changed" is a claim about all of
    them at once. (Until 2026-12-07 only the tail rows, p99 and p99.9, formed the family.)

    Each row also gets `detectable`: the smallest ratio (above 1, or its inverse below) whose
    interval, with this row's spread, would lie wholly beyond the minimum effect: the change the
    row could have detected."""
    check_record(candidate, "the candidate record")
    check_record(baseline, "the baseline record")
    rng = np.random.default_rng(seed)
    base_by_name = {metric_key(m): m for m in baseline.get("metrics", [])}
    # Measured in the same invocation, rounds interleaved: round k of one side ran beside round k
    # of the other, so the rounds pair up.
    interleaved = (candidate.get("interleaved_with") is not None
                   and candidate.get("interleaved_with") == baseline.get("label")
                   and baseline.get("interleaved_with") == candidate.get("label"))
    pending = []  # (row, how to compute its interval)
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
        by_rounds = min(len(cand_rounds), len(base_rounds)) >= MIN_ROUNDS
        cand_pooled = [v for r in cand_rounds for v in r]
        base_pooled = [v for r in base_rounds for v in r]
        boot = None
        if not by_rounds:
            boot = (bootstrap(cand_rounds, stats, rng, resamples),
                    bootstrap(base_rounds, stats, rng, resamples))
        for j, stat in enumerate(stats):
            c, bv = _statistic(cand_pooled, stat), _statistic(base_pooled, stat)
            row = {"metric": m["name"], "kind": m["kind"], "unit": m.get("unit", ""),
                   "statistic": stat, "candidate": c, "baseline": bv}
            decidable = True
            if single and not by_rounds:
                decidable = False
                row["note"] = (f"one value per round and fewer than {MIN_ROUNDS} rounds on a "
                               "side: too few to decide")
            elif stat in QUANTILES and min(len(cand_pooled), len(base_pooled)) < \
                    min_samples(stat):
                decidable = False
                row["note"] = (f"fewer than {min_samples(stat)} calls on a side: too few to "
                               f"decide a {stat}")
            paired = (interleaved and by_rounds and len(m["rounds"]) == len(b["rounds"])
                      and all(m["rounds"]) and all(b["rounds"]))
            if by_rounds:
                how = ("paired" if paired else "rounds",
                       [_statistic(r, stat) for r in cand_rounds],
                       [_statistic(r, stat) for r in base_rounds])
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratios = boot[0][j] / boot[1][j]
                how = ("bootstrap", ratios[np.isfinite(ratios)], None)
            pending.append((row, how, decidable))
    tails = sum(1 for row, _, decidable in pending if decidable and row["statistic"] in TAILS)
    family = sum(1 for _, _, decidable in pending if decidable)
    rows = []
    for row, (method, a, b), decidable in pending:
        level = confidence
        if family > 1:
            level = 1 - (1 - confidence) / family
        c, bv = row["candidate"], row["baseline"]
        interval = None
        if bv > 0 and c > 0 and np.isfinite(c / bv):
            if method == "rounds":
                interval = round_interval(math.log(c / bv), a, b, level)
            elif method == "paired":
                interval = paired_interval(math.log(c / bv), a, b, level)
            elif a.size:
                alpha = (1 - level) / 2
                interval = (float(np.quantile(a, alpha)), float(np.quantile(a, 1 - alpha)))
        if interval is None:
            row.update({"ratio": None, "low": None, "high": None, "verdict": NO_CHANGE,
                        "note": "a value is zero: no ratio"})
        else:
            half = (math.log(interval[1]) - math.log(interval[0])) / 2
            row.update({"ratio": c / bv, "low": interval[0], "high": interval[1],
                        "interval": method, "confidence": level,
                        "detectable": (1 + min_effect) * math.exp(half),
                        "verdict": verdict_of(row["kind"], interval[0], interval[1], min_effect)
                        if decidable else NO_CHANGE})
        rows.append(row)
    return {
        "format": COMPARISON_FORMAT,
        "candidate": _identity(candidate),
        "baseline": _identity(baseline),
        "confidence": confidence,
        "tail_rows": tails,
        "family_rows": family,
        "min_effect": min_effect,
        "resamples": resamples,
        "rows": rows,
    }


def _identity(record):
    return {key: record.get(key) for key in
            ("label", "plugin", "build", "machine", "run_mode", "rounds", "plan", "started",
             "elapsed_s", "interleaved_with")
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


def format_value(value, unit):
    """A figure with its unit as the reports print it: one decimal for times, none otherwise."""
    if value is None:
        return "-"
    if unit in ("us", "ms"):
        return f"{value:,.1f} {unit}"
    return f"{value:,.0f} {unit}"


def format_ratio(row):
    if row["ratio"] is None:
        return "-"
    return f"{row['ratio']:.3f}x [{row['low']:.3f}, {row['high']:.3f}]"


def format_detectable(row):
    """The smallest change a row could have detected, as a ratio either way ("±12%" style is
    ambiguous for ratios): "1.12x" means 1.12x slower or 1/1.12 faster."""
    if row.get("detectable") is None:
        return "-"
    return f"{row['detectable']:.2f}x"
