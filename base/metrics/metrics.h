// Counters, gauges and histograms for the core, rendered in Prometheus' text exposition format
// (version 0.0.4). Single-threaded like the rest of the core: update from the event loop.
// Label values are caller-chosen names (mount paths, plugin names), never request data.
#ifndef BULWARK_BASE_METRICS_METRICS_H_
#define BULWARK_BASE_METRICS_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace bulwark::metrics {

// Most label combinations one family keeps; further ones are folded into one series with every
// label "overflow", so a hostile stream of names cannot grow memory without bound.
inline constexpr size_t kSeriesPerFamilyMax = 4096;

using Labels = std::vector<std::pair<std::string, std::string>>;

class Registry;

// One metric family (name, help, type) with a series per label set.
class Family {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  // Adds `delta` to the counter or gauge series `labels` (created at 0).
  void Add(const Labels& labels, double delta);
  // Sets the gauge series.
  void Set(const Labels& labels, double value);
  // Records one observation in the histogram series.
  void Observe(const Labels& labels, double value);

  // The value of a counter/gauge series, or the count of a histogram series (0 if absent).
  double Value(const Labels& labels) const;
  // Sum of the values (or counts) of every series.
  double Total() const;

  const std::string& name() const { return name_; }

 private:
  friend class Registry;
  struct Series {
    double value = 0;               // Counter/gauge value, or histogram sum.
    uint64_t count = 0;             // Histogram observations.
    std::vector<uint64_t> buckets;  // Histogram: observations <= bounds_[i] (not cumulative).
  };
  Family(std::string name, std::string help, Type type, std::vector<double> bounds);
  Series& Get(const Labels& labels);
  void Render(std::string& out) const;

  std::string name_;
  std::string help_;
  Type type_;
  std::vector<double> bounds_;
  std::map<Labels, Series> series_;
};

// One series as it stands, for renderings other than Prometheus' (the server's JSON metrics).
struct SeriesSnapshot {
  std::string name;
  Family::Type type = Family::Type::kCounter;
  Labels labels;
  double value = 0;    // Counter/gauge value, or histogram sum.
  uint64_t count = 0;  // Histogram observations (0 for counters and gauges).
};

class Registry {
 public:
  // Families are created once and live as long as the registry; the returned pointer is stable.
  // Names must match [a-zA-Z_:][a-zA-Z0-9_:]* (checked: a bad name is a programmer error).
  Family* Counter(absl::string_view name, absl::string_view help);
  Family* Gauge(absl::string_view name, absl::string_view help);
  // `bounds` are the upper bounds of the buckets, ascending; +Inf is implicit.
  Family* Histogram(absl::string_view name, absl::string_view help, std::vector<double> bounds);

  // Every family, sorted by name, in Prometheus text format.
  std::string RenderPrometheus() const;
  // Every series of every family, sorted by family name and then by labels.
  std::vector<SeriesSnapshot> Snapshot() const;

 private:
  Family* Make(absl::string_view name, absl::string_view help, Family::Type type,
               std::vector<double> bounds);
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_;
};

// Default latency buckets in seconds: 100 µs to 30 s.
std::vector<double> LatencyBucketsSeconds();

}  // namespace bulwark::metrics

#endif  // BULWARK_BASE_METRICS_METRICS_H_
