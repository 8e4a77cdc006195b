#include "benchmarks/measure/record.h"

#include <sys/utsname.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace bulwark::measure {

nlohmann::json MachineDescription() {
  nlohmann::json machine = nlohmann::json::object();
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (absl::StartsWith(line, "model name")) {
      machine["cpu_model"] =
          std::string(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)));
      break;
    }
  }
  machine["cores"] = std::thread::hardware_concurrency();
  double load[3] = {0, 0, 0};
  std::ifstream loadavg("/proc/loadavg");
  loadavg >> load[0] >> load[1] >> load[2];
  machine["load_average"] = {load[0], load[1], load[2]};
  struct utsname u;
  if (uname(&u) == 0) machine["kernel"] = absl::StrCat(u.sysname, " ", u.release);
  return machine;
}

nlohmann::json BuildDescription() {
#if defined(__OPTIMIZE__) && defined(NDEBUG)
  return {{"compilation_mode", "opt"}, {"optimised", true}};
#elif defined(__OPTIMIZE__)
  return {{"compilation_mode", "optimised, assertions on"}, {"optimised", true}};
#else
  return {{"compilation_mode", "not optimised"}, {"optimised", false}};
#endif
}

std::string UtcNow() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
}

namespace {

// The time and the machine (its load average) as the process started, so that a record names
// when its run began and the load it began under, not when it was written at the end.
struct ProcessStart {
  std::string time = UtcNow();
  nlohmann::json machine = MachineDescription();
};
const ProcessStart& Started() {
  static const ProcessStart* const start = new ProcessStart();
  return *start;
}
// Taken during static initialisation, before main runs the benchmark.
[[maybe_unused]] const ProcessStart& kTakenAtLoad = Started();

}  // namespace

nlohmann::json TableRecordJson(const TableRecord& record) {
  return {
      {"format", kTableRecordFormat}, {"benchmark", record.benchmark},
      {"command", record.command},    {"started", Started().time},
      {"machine", Started().machine}, {"build", BuildDescription()},
      {"columns", record.columns},    {"rows", record.rows},
      {"notes", record.notes},
  };
}

absl::Status WriteTableRecord(const std::string& path, const TableRecord& record) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << TableRecordJson(record).dump(1) << "\n";
    out.close();
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write the record ", temporary));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot rename ", temporary, " to ", path));
  }
  return absl::OkStatus();
}

std::string Significant(double value, int digits) {
  if (!std::isfinite(value)) return "-";
  if (value == 0) return "0";
  const int magnitude = static_cast<int>(std::floor(std::log10(std::fabs(value))));
  const int decimals = std::max(0, digits - 1 - magnitude);
  std::string text = absl::StrFormat("%.*f", decimals, value);
  // Thousands separators in the integer part.
  size_t end = text.find('.');
  if (end == std::string::npos) end = text.size();
  const size_t start = text[0] == '-' ? 1 : 0;
  for (size_t i = end; i > start + 3; i -= 3) text.insert(i - 3, ",");
  return text;
}

}  // namespace bulwark::measure
