// Prometheus text rendering and the series bookkeeping behind it.
#include "base/metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status/check.h"

namespace bulwark::metrics {
namespace {

bool ValidName(absl::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string EscapeLabelValue(absl::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrCat(static_cast<int64_t>(v));
  return absl::StrFormat("%.9g", v);
}

std::string LabelText(const Labels& labels, absl::string_view extra_key = "",
                      absl::string_view extra_value = "") {
  std::string out;
  for (const auto& [k, v] : labels) {
    absl::StrAppend(&out, out.empty() ? "" : ",", k, "=\"", EscapeLabelValue(v), "\"");
  }
  if (!extra_key.empty()) {
    absl::StrAppend(&out, out.empty() ? "" : ",", extra_key, "=\"", extra_value, "\"");
  }
  return out.empty() ? "" : absl::StrCat("{", out, "}");
}

}  // namespace

Family::Family(std::string name, std::string help, Type type, std::vector<double> bounds)
    : name_(std::move(name)), help_(std::move(help)), type_(type), bounds_(std::move(bounds)) {}

Family::Series& Family::Get(const Labels& labels) {
  auto it = series_.find(labels);
  if (it != series_.end()) return it->second;
  if (series_.size() >= kSeriesPerFamilyMax) {
    Labels overflow;
    for (const auto& [k, v] : labels) overflow.emplace_back(k, "overflow");
    Series& s = series_[overflow];
    s.buckets.resize(bounds_.size());
    return s;
  }
  Series& s = series_[labels];
  s.buckets.resize(bounds_.size());
  return s;
}

void Family::Add(const Labels& labels, double delta) {
  CHECK(type_ != Type::kHistogram) << name_ << " is a histogram";
  CHECK(type_ != Type::kCounter || delta >= 0) << name_ << ": a counter only goes up";
  Get(labels).value += delta;
}

void Family::Set(const Labels& labels, double value) {
  CHECK(type_ == Type::kGauge) << name_ << " is not a gauge";
  Get(labels).value = value;
}

void Family::Observe(const Labels& labels, double value) {
  CHECK(type_ == Type::kHistogram) << name_ << " is not a histogram";
  Series& s = Get(labels);
  s.value += value;
  ++s.count;
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  if (it != bounds_.end()) ++s.buckets[it - bounds_.begin()];
}

double Family::Value(const Labels& labels) const {
  auto it = series_.find(labels);
  if (it == series_.end()) return 0;
  return type_ == Type::kHistogram ? static_cast<double>(it->second.count) : it->second.value;
}

double Family::Total() const {
  double total = 0;
  for (const auto& [labels, s] : series_) {
    total += type_ == Type::kHistogram ? static_cast<double>(s.count) : s.value;
  }
  return total;
}

void Family::Render(std::string& out) const {
  static constexpr absl::string_view kTypeNames[] = {"counter", "gauge", "histogram"};
  absl::StrAppend(&out, "# HELP ", name_, " ", help_, "\n# TYPE ", name_, " ",
                  kTypeNames[static_cast<int>(type_)], "\n");
  for (const auto& [labels, s] : series_) {
    if (type_ != Type::kHistogram) {
      absl::StrAppend(&out, name_, LabelText(labels), " ", FormatValue(s.value), "\n");
      continue;
    }
    uint64_t cumulative = 0;
    for (size_t i = 0; i < bounds_.size(); ++i) {
      cumulative += s.buckets[i];
      absl::StrAppend(&out, name_, "_bucket", LabelText(labels, "le", FormatValue(bounds_[i])), " ",
                      cumulative, "\n");
    }
    absl::StrAppend(&out, name_, "_bucket", LabelText(labels, "le", "+Inf"), " ", s.count, "\n");
    absl::StrAppend(&out, name_, "_sum", LabelText(labels), " ", FormatValue(s.value), "\n");
    absl::StrAppend(&out, name_, "_count", LabelText(labels), " ", s.count, "\n");
  }
}

Family* Registry::Make(absl::string_view name, absl::string_view help, Family::Type type,
                       std::vector<double> bounds) {
  CHECK(ValidName(name)) << "bad metric name " << name;
  CHECK(std::is_sorted(bounds.begin(), bounds.end())) << name << ": bounds must ascend";
  auto it = families_.find(name);
  if (it != families_.end()) {
    CHECK(it->second->type_ == type) << name << " registered twice with different types";
    return it->second.get();
  }
  std::unique_ptr<Family> family(
      new Family(std::string(name), std::string(help), type, std::move(bounds)));
  Family* raw = family.get();
  families_.emplace(std::string(name), std::move(family));
  return raw;
}

Family* Registry::Counter(absl::string_view name, absl::string_view help) {
  return Make(name, help, Family::Type::kCounter, {});
}

Family* Registry::Gauge(absl::string_view name, absl::string_view help) {
  return Make(name, help, Family::Type::kGauge, {});
}

Family* Registry::Histogram(absl::string_view name, absl::string_view help,
                            std::vector<double> bounds) {
  return Make(name, help, Family::Type::kHistogram, std::move(bounds));
}

std::string Registry::RenderPrometheus() const {
  std::string out;
  for (const auto& [name, family] : families_) family->Render(out);
  return out;
}

std::vector<SeriesSnapshot> Registry::Snapshot() const {
  std::vector<SeriesSnapshot> out;
  for (const auto& [name, family] : families_) {
    for (const auto& [labels, s] : family->series_) {
      out.push_back(SeriesSnapshot{name, family->type_, labels, s.value, s.count});
    }
  }
  return out;
}

std::vector<double> LatencyBucketsSeconds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};
}

}  // namespace bulwark::metrics
