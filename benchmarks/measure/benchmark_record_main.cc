// main() of bulwark's Google Benchmark binaries (bazel/defs.bzl bw_cc_benchmark): Google
// Benchmark's own flags and output, plus --record=FILE, which writes the results as a table
// record (record.h) for docs/performance.md. The record names the command that re-runs it: the
// binary's Bazel target, from where it lies under bazel-out/.../bin/.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "benchmark/benchmark.h"
#include "benchmarks/measure/record.h"

namespace bulwark::measure {
namespace {

const char* UnitName(benchmark::TimeUnit unit) {
  switch (unit) {
    case benchmark::kNanosecond:
      return "ns";
    case benchmark::kMicrosecond:
      return "µs";
    case benchmark::kMillisecond:
      return "ms";
    case benchmark::kSecond:
      return "s";
  }
  return "?";
}

// A counter's value as Google Benchmark prints it: rates with k/M/G and "/s".
std::string CounterText(const benchmark::Counter& counter) {
  double v = counter.value;
  const char* scale = "";
  for (const char* s : {"k", "M", "G"}) {
    if (v < 1000) break;
    v /= 1000;
    scale = s;
  }
  return absl::StrCat(Significant(v), " ", scale,
                      (counter.flags & benchmark::Counter::kIsRate) ? "/s" : "");
}

// The console reporter, also keeping every run's row for the record.
class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) {
        errors_.push_back(absl::StrCat(run.benchmark_name(), ": ", run.error_message));
        continue;
      }
      std::vector<std::string> counters;
      for (const auto& [name, counter] : run.counters) {
        counters.push_back(absl::StrCat(name, " ", CounterText(counter)));
      }
      const char* unit = UnitName(run.time_unit);
      rows_.push_back({run.benchmark_name(), run.report_label,
                       absl::StrCat(Significant(run.GetAdjustedRealTime()), " ", unit),
                       absl::StrCat(Significant(run.GetAdjustedCPUTime()), " ", unit),
                       absl::StrCat(run.iterations), absl::StrJoin(counters, ", ")});
    }
    ConsoleReporter::ReportRuns(runs);
  }

  const std::vector<std::vector<std::string>>& rows() const { return rows_; }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::vector<std::string>> rows_;
  std::vector<std::string> errors_;
};

// "//pkg:name" of this binary when it is a Bazel output (/proc/self/exe under .../bin/), else "".
std::string BazelTarget() {
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return "";
  const std::string path(exe, static_cast<size_t>(n));
  const size_t out = path.find("/bazel-out/");
  const size_t bin = out == std::string::npos ? out : path.find("/bin/", out);
  if (bin == std::string::npos) return "";
  const std::string rel = path.substr(bin + 5);
  const size_t slash = rel.rfind('/');
  if (slash == std::string::npos) return absl::StrCat("//:", rel);
  return absl::StrCat("//", rel.substr(0, slash), ":", rel.substr(slash + 1));
}

int Main(int argc, char** argv) {
  std::string record_path, target;
  std::vector<std::string> passed;  // Google Benchmark flags, for the record's command.
  std::vector<char*> args = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (absl::StartsWith(arg, "--record=")) {
      record_path = arg.substr(9);
      // Under `bazel run` a relative path means the directory bazel was started from.
      const char* user_dir = std::getenv("BUILD_WORKING_DIRECTORY");
      if (!record_path.empty() && record_path[0] != '/' && user_dir != nullptr) {
        record_path = absl::StrCat(user_dir, "/", record_path);
      }
    } else {
      args.push_back(argv[i]);
      passed.push_back(arg);
    }
  }
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  if (record_path.empty()) return 0;
  std::string name = argv[0];
  name = name.substr(name.rfind('/') + 1);
  target = BazelTarget();
  TableRecord record;
  record.benchmark = name;
  record.command = target.empty() ? name : absl::StrCat("bazel run -c opt ", target);
  if (!passed.empty()) absl::StrAppend(&record.command, " -- ", absl::StrJoin(passed, " "));
  record.columns = {"benchmark", "what", "wall time", "CPU time", "iterations", "counters"};
  record.rows = reporter.rows();
  // Columns no row fills (no label set, no counter) are left out.
  for (size_t c = record.columns.size(); c-- > 0;) {
    bool used = false;
    for (const auto& row : record.rows) used = used || !row[c].empty();
    if (used) continue;
    record.columns.erase(record.columns.begin() + static_cast<long>(c));
    for (auto& row : record.rows) row.erase(row.begin() + static_cast<long>(c));
  }
  record.notes = reporter.errors();
  if (absl::Status s = WriteTableRecord(record_path, record); !s.ok()) {
    std::cerr << s.message() << "\n";
    return 1;
  }
  std::cerr << "record written to " << record_path << "\n";
  return reporter.errors().empty() ? 0 : 1;
}

}  // namespace
}  // namespace bulwark::measure

int main(int argc, char** argv) { return bulwark::measure::Main(argc, argv); }
