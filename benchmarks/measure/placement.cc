#include "benchmarks/measure/placement.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace bulwark::measure {

absl::StatusOr<std::vector<Placement>> StandardPlacements() {
  cpu_set_t mask;
  if (::sched_getaffinity(0, sizeof(mask), &mask) != 0) {
    return absl::InternalError("sched_getaffinity failed");
  }
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c) {
    if (CPU_ISSET(c, &mask)) cpus.push_back(c);
  }
  if (cpus.size() < 2) {
    return absl::FailedPreconditionError(
        "the split-cpus placement needs two CPUs this process may run on; it has one");
  }
  return std::vector<Placement>{{"same-cpu", cpus[0], cpus[0]}, {"split-cpus", cpus[0], cpus[1]}};
}

absl::Status PinProcess(pid_t pid, int cpu) {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  CPU_SET(cpu, &mask);
  const std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* tasks = ::opendir(dir.c_str());
  if (tasks == nullptr) return absl::NotFoundError(absl::StrCat("no ", dir));
  absl::Status status;
  while (dirent* e = ::readdir(tasks)) {
    pid_t tid = 0;
    if (!absl::SimpleAtoi(e->d_name, &tid)) continue;
    if (::sched_setaffinity(tid, sizeof(mask), &mask) != 0 && errno != ESRCH && status.ok()) {
      status = absl::InternalError(
          absl::StrCat("sched_setaffinity(", tid, ", CPU ", cpu, "): ", strerror(errno)));
    }
  }
  ::closedir(tasks);
  return status;
}

absl::StatusOr<std::string> CpusAllowed(pid_t pid) {
  const std::string file = absl::StrCat("/proc/", pid, "/status");
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "Cpus_allowed_list:")) {
      return std::string(absl::StripAsciiWhitespace(rest));
    }
  }
  return absl::NotFoundError(absl::StrCat("no Cpus_allowed_list in ", file));
}

ScopedThreadCpu::ScopedThreadCpu(int cpu) {
  if (::sched_getaffinity(0, sizeof(saved_), &saved_) != 0) {
    status_ = absl::InternalError("sched_getaffinity failed");
    return;
  }
  cpu_set_t mask;
  CPU_ZERO(&mask);
  CPU_SET(cpu, &mask);
  if (::sched_setaffinity(0, sizeof(mask), &mask) != 0) {
    status_ =
        absl::InternalError(absl::StrCat("sched_setaffinity(CPU ", cpu, "): ", strerror(errno)));
    return;
  }
  restore_ = true;
}

ScopedThreadCpu::~ScopedThreadCpu() {
  if (restore_) ::sched_setaffinity(0, sizeof(saved_), &saved_);
}

}  // namespace bulwark::measure
