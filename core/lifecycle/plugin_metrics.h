// Per-plugin monitoring: series by catalog entry (plugin name and version) and by mount, for
// sys/metrics. Labels come only from catalog entries and mount paths, which operators create
// through authenticated sys/ calls and whose counts are bounded (the catalog's entry limit, the
// mount table's); past that, metrics::kSeriesPerFamilyMax folds any further label set into one
// "overflow" series. No label ever holds request data.
//
//   bulwark_plugin_processes_running{plugin,version}            gauge
//   bulwark_plugin_cpu_seconds{plugin,version}                  gauge, sampled (running processes)
//   bulwark_plugin_resident_memory_bytes{plugin,version}        gauge, sampled
//   bulwark_plugin_starts_total{plugin,version,mount}           counter (the mount that started it)
//   bulwark_plugin_exits_total{plugin,version,mount,reason}     counter: reason "crash" (ended or
//                                                               lost unasked) or "limit" (SIGXCPU
//                                                               from RLIMIT_CPU, or an exit its
//                                                               runner reports as at a limit)
//   bulwark_plugin_limit_kills_total{plugin,version,limit}      counter: processes the kernel
//                                                               killed at a limit of their
//                                                               cgroup (limit "memory")
//   bulwark_plugin_restarts_total{plugin,version,mount}         counter (lazy reloads)
//   bulwark_plugin_requests_total{plugin,version,mount,code}    counter
//   bulwark_plugin_request_duration_seconds{plugin,version,mount}   histogram
//   bulwark_plugin_requests_in_flight{plugin,version,mount}     gauge
//   bulwark_plugin_ready_seconds{plugin,version,mount}          histogram: setup start to ready
#ifndef BULWARK_CORE_LIFECYCLE_PLUGIN_METRICS_H_
#define BULWARK_CORE_LIFECYCLE_PLUGIN_METRICS_H_

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "base/env/process_sampler.h"
#include "base/metrics/metrics.h"

namespace bulwark::lifecycle {

struct PluginId {
  std::string plugin;
  std::string version;
  bool operator<(const PluginId& o) const {
    return std::tie(plugin, version) < std::tie(o.plugin, o.version);
  }
};

class PluginMetrics {
 public:
  explicit PluginMetrics(metrics::Registry& registry);

  void Started(const PluginId& id, absl::string_view mount);
  // `reason` is the exit description ("killed by signal 9 (SIGKILL)", "connection lost: ...").
  void Exited(const PluginId& id, absl::string_view mount, absl::string_view reason);
  void Restarted(const PluginId& id, absl::string_view mount);
  // The kernel killed a process of the entry at `limit` ("memory").
  void KilledAtLimit(const PluginId& id, absl::string_view limit);
  void Ready(const PluginId& id, absl::string_view mount, double seconds);
  void RequestStarted(const PluginId& id, absl::string_view mount);
  void RequestFinished(const PluginId& id, absl::string_view mount, absl::string_view code,
                       double seconds);
  // Running processes per entry, and (with a sampler) their CPU and resident memory, summed.
  // Entries seen before and absent now are set to 0.
  void SetProcesses(const std::map<PluginId, std::vector<int64_t>>& pids, ProcessSampler* sampler);

  // True when `reason` says the process was killed by a limit rather than crashing by itself.
  static bool IsLimitKill(absl::string_view reason);

 private:
  static metrics::Labels Entry(const PluginId& id);
  static metrics::Labels Mount(const PluginId& id, absl::string_view mount);

  metrics::Family* running_;
  metrics::Family* cpu_;
  metrics::Family* resident_;
  metrics::Family* starts_;
  metrics::Family* exits_;
  metrics::Family* restarts_;
  metrics::Family* limit_kills_;
  metrics::Family* requests_;
  metrics::Family* duration_;
  metrics::Family* in_flight_;
  metrics::Family* ready_;
  std::set<PluginId> seen_;
};

}  // namespace bulwark::lifecycle

#endif  // BULWARK_CORE_LIFECYCLE_PLUGIN_METRICS_H_
