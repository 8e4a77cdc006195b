// A benchmark's table as a record (format bulwark-benchmark-table/1): the command that produced
// it, when, on which machine and build, and the rows it printed. Benchmark binaries write one
// with --record=FILE; conformance/benchmark/perf_tables.py turns committed records into the
// tables of docs/performance.md, so no figure there is typed by hand.
#ifndef BULWARK_BENCHMARKS_MEASURE_RECORD_H_
#define BULWARK_BENCHMARKS_MEASURE_RECORD_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace bulwark::measure {

inline constexpr char kTableRecordFormat[] = "bulwark-benchmark-table/1";

struct TableRecord {
  std::string benchmark;  // e.g. "executor_benchmark".
  std::string command;    // How to run it again, e.g. "bazel run -c opt //benchmarks:x --".
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;
};

// The machine as a record describes it: CPU model, cores, load average now, kernel.
nlohmann::json MachineDescription();

// The build of this binary: {"compilation_mode": "opt" | "not optimised", "optimised": bool}
// (from the compiler's __OPTIMIZE__ and NDEBUG, as Bazel's -c opt sets both).
nlohmann::json BuildDescription();

// The time now as a record keeps it (UTC, "2026-12-07T02:10:00Z").
std::string UtcNow();

// `record` with its format, the time, machine and build, as JSON.
nlohmann::json TableRecordJson(const TableRecord& record);

// Writes TableRecordJson(record) to `path` (replacing it whole: written to a temporary file
// next to it, then renamed); an error names the path.
absl::Status WriteTableRecord(const std::string& path, const TableRecord& record);

// A figure with `digits` significant digits and thousands separators ("2,470", "1.55").
std::string Significant(double value, int digits = 3);

}  // namespace bulwark::measure

#endif  // BULWARK_BENCHMARKS_MEASURE_RECORD_H_
