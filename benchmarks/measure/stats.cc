#include "benchmarks/measure/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace bulwark::measure {

double Median(std::vector<double> values) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

LatencySummary SummarizeLatency(std::vector<double> samples) {
  LatencySummary s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double p) {
    const int64_t i = static_cast<int64_t>(std::ceil(p * static_cast<double>(samples.size()))) - 1;
    return samples[static_cast<size_t>(std::max<int64_t>(i, 0))];
  };
  s.n = samples.size();
  s.min = samples.front();
  s.p50 = at(0.5);
  s.p90 = at(0.9);
  s.p99 = at(0.99);
  s.max = samples.back();
  return s;
}

RangeSummary SummarizeRange(const std::vector<double>& values) {
  std::vector<double> finite;
  for (double v : values) {
    if (std::isfinite(v)) finite.push_back(v);
  }
  RangeSummary r;
  if (finite.empty()) {
    r.median = r.min = r.max = NAN;
    return r;
  }
  r.n = finite.size();
  r.median = Median(finite);
  r.min = *std::min_element(finite.begin(), finite.end());
  r.max = *std::max_element(finite.begin(), finite.end());
  return r;
}

RangeSummary SummarizeRatios(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> ratios;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (std::isfinite(a[i]) && std::isfinite(b[i]) && b[i] != 0) ratios.push_back(a[i] / b[i]);
  }
  return SummarizeRange(ratios);
}

}  // namespace bulwark::measure
