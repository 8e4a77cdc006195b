// Summary statistics for benchmarks that compare two implementations round by round: latency
// percentiles over one series, and the median with its min-max range over rounds (of a value,
// or of a per-round ratio between two arms measured in the same round).
#ifndef BULWARK_BENCHMARKS_MEASURE_STATS_H_
#define BULWARK_BENCHMARKS_MEASURE_STATS_H_

#include <cstddef>
#include <vector>

namespace bulwark::measure {

// The median of `values` (mean of the two middle ones for an even count); NaN when empty.
double Median(std::vector<double> values);

// Percentiles of one latency series, by the rule the Go host uses: sorted[ceil(p*n)-1].
struct LatencySummary {
  size_t n = 0;
  double min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
};
LatencySummary SummarizeLatency(std::vector<double> samples);

// The median and the range of one figure over rounds. `n` counts the finite values used; NaN
// entries (a round that did not produce the figure) are left out.
struct RangeSummary {
  size_t n = 0;
  double median = 0, min = 0, max = 0;
};
RangeSummary SummarizeRange(const std::vector<double>& values);

// Per-round ratios a[i] / b[i] (rounds where either is missing, NaN or b is 0 are left out),
// summarised: the figure to report when both arms ran in the same round on the same machine.
RangeSummary SummarizeRatios(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace bulwark::measure

#endif  // BULWARK_BENCHMARKS_MEASURE_STATS_H_
