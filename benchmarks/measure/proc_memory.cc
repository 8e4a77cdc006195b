#include "benchmarks/measure/proc_memory.h"

#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/status/status_macros.h"

namespace bulwark::measure {
namespace {

// The value of a "Key:   N kB" line.
absl::StatusOr<int64_t> Field(absl::string_view text, absl::string_view key,
                              absl::string_view file) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, key) || !absl::ConsumePrefix(&line, ":")) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, "kB");
    int64_t kib = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kib)) return kib;
    return absl::InvalidArgumentError(absl::StrCat(file, ": unreadable ", key, " line"));
  }
  return absl::NotFoundError(absl::StrCat(file, ": no ", key, " line"));
}

absl::StatusOr<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

absl::StatusOr<ProcessMemory> ParseProcessMemory(absl::string_view status,
                                                 absl::string_view smaps_rollup) {
  ProcessMemory m;
  ASSIGN_OR_RETURN(m.vm_rss_kib, Field(status, "VmRSS", "status"));
  ASSIGN_OR_RETURN(m.rss_anon_kib, Field(status, "RssAnon", "status"));
  ASSIGN_OR_RETURN(m.rss_file_kib, Field(status, "RssFile", "status"));
  ASSIGN_OR_RETURN(m.pss_kib, Field(smaps_rollup, "Pss", "smaps_rollup"));
  ASSIGN_OR_RETURN(m.private_clean_kib, Field(smaps_rollup, "Private_Clean", "smaps_rollup"));
  ASSIGN_OR_RETURN(m.private_dirty_kib, Field(smaps_rollup, "Private_Dirty", "smaps_rollup"));
  return m;
}

absl::StatusOr<ProcessMemory> ReadProcessMemory(pid_t pid) {
  ASSIGN_OR_RETURN(std::string status, ReadAll(absl::StrCat("/proc/", pid, "/status")));
  ASSIGN_OR_RETURN(std::string rollup, ReadAll(absl::StrCat("/proc/", pid, "/smaps_rollup")));
  return ParseProcessMemory(status, rollup);
}

absl::StatusOr<double> ProcessCpuMicros(pid_t pid) {
  ASSIGN_OR_RETURN(std::string stat, ReadAll(absl::StrCat("/proc/", pid, "/stat")));
  // Fields after the command name (which may hold spaces) start at state, field 3.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 > stat.size()) {
    return absl::InvalidArgumentError(absl::StrCat("/proc/", pid, "/stat: no command name"));
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(stat).substr(paren + 2), ' ', absl::SkipEmpty());
  // utime and stime are fields 14 and 15, i.e. indexes 11 and 12 after the state.
  double utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtod(fields[11], &utime) ||
      !absl::SimpleAtod(fields[12], &stime)) {
    return absl::InvalidArgumentError(absl::StrCat("/proc/", pid, "/stat: no CPU times"));
  }
  return (utime + stime) * 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace bulwark::measure
