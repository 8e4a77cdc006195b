// /proc parsing for PosixProcessSampler.
#include "base/env/posix/posix_process_sampler.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace bulwark {
namespace {

absl::StatusOr<std::string> ReadSmall(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) {
    const int err = errno;
    if (err == ENOENT || err == ESRCH)
      return absl::NotFoundError(absl::StrCat(path, ": no such process"));
    return absl::InternalError(absl::StrCat("open ", path, ": ", std::strerror(err)));
  }
  char buffer[4096];
  const size_t n = std::fread(buffer, 1, sizeof(buffer), f);
  std::fclose(f);
  return std::string(buffer, n);
}

}  // namespace

absl::StatusOr<ProcessSample> ParseProcStat(absl::string_view stat, absl::string_view statm,
                                            long ticks_per_second, long page_bytes) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last
  // ')'. Fields after it, counted from 1 at state: utime is 12, stime 13 (proc(5)'s 14 and 15).
  const size_t close = stat.rfind(')');
  if (close == absl::string_view::npos || close + 2 > stat.size()) {
    return absl::DataLossError("/proc stat: no \"(comm)\" field");
  }
  std::vector<absl::string_view> f = absl::StrSplit(stat.substr(close + 2), ' ');
  uint64_t utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &utime) || !absl::SimpleAtoi(f[12], &stime)) {
    return absl::DataLossError("/proc stat: utime and stime are not numbers");
  }
  std::vector<absl::string_view> m = absl::StrSplit(statm, ' ');
  uint64_t resident_pages = 0;
  if (m.size() < 2 || !absl::SimpleAtoi(m[1], &resident_pages)) {
    return absl::DataLossError("/proc statm: resident is not a number");
  }
  ProcessSample s;
  s.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks_per_second);
  s.resident_bytes = resident_pages * static_cast<uint64_t>(page_bytes);
  return s;
}

absl::StatusOr<ProcessSample> PosixProcessSampler::Sample(int64_t pid) {
  if (pid <= 0) return absl::NotFoundError("no process id");
  const std::string base = absl::StrCat("/proc/", pid);
  absl::StatusOr<std::string> stat = ReadSmall(base + "/stat");
  if (!stat.ok()) return stat.status();
  absl::StatusOr<std::string> statm = ReadSmall(base + "/statm");
  if (!statm.ok()) return statm.status();
  return ParseProcStat(*stat, *statm, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE));
}

}  // namespace bulwark
