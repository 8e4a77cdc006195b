// What placing a plugin process in a cgroup of its own costs per launch (issue 17 item 3):
//   - BM_CgroupCreateRemove: the host's side alone, CgroupManager::Create (a directory in each
//     hierarchy, the limit files written, cgroup.procs opened) then Remove (rmdir), with the
//     limits a catalog entry carries (memory, pids, CPU weight);
//   - spawn_to_exit/{cgroup,plain}: PosixProcessLauncher spawning /bin/true until its exit is
//     seen, with and without a group label, in interleaved rounds. With the label the child also
//     writes its pid to each cgroup.procs before it executes, and the cgroup is removed at exit.
// Needs root and a writable cgroup hierarchy (v2 with memory, pids and cpu, or the v1 ones);
// otherwise every benchmark is skipped with the reason.
//
//   bazel run -c opt //benchmarks:cgroup_placement_benchmark
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/env/posix/posix_cgroups.h"
#include "base/env/posix/posix_env.h"
#include "base/status/check.h"
#include "benchmark/benchmark.h"

namespace bulwark::bench {
namespace {

constexpr char kParent[] = "bulwark-bench";

GroupLimits EntryLimits() {
  GroupLimits limits;
  limits.memory_bytes = uint64_t{256} << 20;
  limits.pids = 64;
  limits.cpu_weight = 100;
  return limits;
}

// The manager, or why there is none.
struct Cgroups {
  std::unique_ptr<CgroupManager> manager;
  std::string why_not;
};

Cgroups& Shared() {
  static Cgroups* cgroups = [] {
    auto* c = new Cgroups();
    if (geteuid() != 0) {
      c->why_not = absl::StrCat("cgroups need root (euid ", geteuid(), ")");
      return c;
    }
    CgroupOptions options;
    options.parent = kParent;
    absl::StatusOr<std::unique_ptr<CgroupManager>> m = CgroupManager::Open(options);
    if (!m.ok()) {
      c->why_not = absl::StrCat("no writable cgroup hierarchy: ", m.status().message());
    } else {
      c->manager = *std::move(m);
    }
    return c;
  }();
  return *cgroups;
}

void BM_CgroupCreateRemove(benchmark::State& state) {
  Cgroups& c = Shared();
  if (c.manager == nullptr) {
    state.SkipWithError(c.why_not.c_str());
    return;
  }
  state.SetLabel(c.manager->mechanism());
  const GroupLimits limits = EntryLimits();
  std::vector<double> seconds;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::unique_ptr<PosixCgroup>> group = c.manager->Create("bench", limits);
    CHECK(group.ok()) << group.status();
    c.manager->Remove(*std::move(group));
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  if (!seconds.empty()) state.counters["p50_us"] = seconds[seconds.size() / 2] * 1e6;
  CHECK(c.manager->pending() == 0) << "cgroups left to retry: " << c.manager->pending();
}
BENCHMARK(BM_CgroupCreateRemove)->Unit(benchmark::kMicrosecond);

double ChildrenCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_CHILDREN, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void SpawnToExit(benchmark::State& state, bool in_cgroup) {
  Cgroups& c = Shared();
  if (c.manager == nullptr) {
    state.SkipWithError(c.why_not.c_str());
    return;
  }
  static PosixEnv* posix = [&c] {
    auto* p = new PosixEnv();
    p->launcher().UseCgroups(c.manager.get());
    return p;
  }();
  absl::StatusOr<std::unique_ptr<ExecutableFile>> exe = posix->fs().OpenForExec("/bin/true");
  CHECK(exe.ok()) << exe.status();
  const double children_before = ChildrenCpuSeconds();
  std::vector<double> seconds;
  for (auto _ : state) {
    std::optional<ProcessExit> exit;
    ProcessOptions options;
    options.argv = {"/bin/true"};
    if (in_cgroup) {
      options.group_label = "bench";
      options.group_limits = EntryLimits();
    }
    options.on_exit = [&exit](const ProcessExit& e) { exit = e; };
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::unique_ptr<Process>> process =
        posix->launcher().Spawn(**exe, std::move(options));
    CHECK(process.ok()) << process.status();
    // A hang guard only.
    CHECK(posix->loop().RunUntil([&exit] { return exit.has_value(); }, absl::Seconds(60)));
    CHECK(exit->success());
    process->reset();
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    state.SetIterationTime(seconds.back());
  }
  // The mean (the Time column) is dominated by rare stalls of many milliseconds (a cgroup.procs
  // write waits for an RCU grace period); the median and the 90th percentile say more.
  std::sort(seconds.begin(), seconds.end());
  if (!seconds.empty()) {
    state.counters["p50_us"] = seconds[seconds.size() / 2] * 1e6;
    state.counters["p90_us"] = seconds[seconds.size() * 9 / 10] * 1e6;
  }
  // The children's CPU (fork side, the cgroup.procs writes, exec of /bin/true) per launch.
  state.counters["child_cpu_us"] = benchmark::Counter(
      (ChildrenCpuSeconds() - children_before) * 1e6 / static_cast<double>(state.iterations()));
  CHECK(c.manager->pending() == 0) << "cgroups left to retry: " << c.manager->pending();
}

// Three interleaved rounds, alternating which mode goes first, so that a change of load on the
// shared machine does not fall on one side only.
void RegisterSpawnRounds() {
  for (int round = 1; round <= 3; ++round) {
    for (int i = 0; i < 2; ++i) {
      const bool cgroup = (round + i) % 2 == 1;
      benchmark::RegisterBenchmark(
          absl::StrCat("spawn_to_exit/", cgroup ? "cgroup" : "plain", "/round", round).c_str(),
          [cgroup](benchmark::State& state) { SpawnToExit(state, cgroup); })
          ->UseManualTime()
          ->Iterations(200)
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

const int kRegistered = (RegisterSpawnRounds(), 0);

}  // namespace
}  // namespace bulwark::bench
