// Per-plugin series (see plugin_metrics.h).
#include "core/lifecycle/plugin_metrics.h"

#include <tuple>
#include <vector>

#include "absl/strings/match.h"

namespace bulwark::lifecycle {

PluginMetrics::PluginMetrics(metrics::Registry& r)
    : running_(r.Gauge("bulwark_plugin_processes_running",
                       "Plugin processes running, by catalog entry.")),
      cpu_(r.Gauge("bulwark_plugin_cpu_seconds",
                   "User and system CPU seconds of the entry's running processes (sampled at "
                   "each sys/metrics read).")),
      resident_(r.Gauge("bulwark_plugin_resident_memory_bytes",
                        "Resident memory of the entry's running processes (sampled).")),
      starts_(r.Counter("bulwark_plugin_starts_total",
                        "Plugin processes launched, by the mount that needed them.")),
      exits_(r.Counter("bulwark_plugin_exits_total",
                       "Plugin processes that ended unasked: reason crash, or limit (RLIMIT_CPU's "
                       "SIGXCPU, or a kill its runner reports as at a limit).")),
      restarts_(r.Counter("bulwark_plugin_restarts_total",
                          "Requests retried on a restarted plugin (lazy reloads).")),
      limit_kills_(r.Counter("bulwark_plugin_limit_kills_total",
                             "Plugin processes the kernel killed at a limit of their cgroup, by "
                             "catalog entry and limit (memory).")),
      requests_(r.Counter("bulwark_plugin_requests_total",
                          "Requests to a plugin, by mount and outcome.")),
      duration_(r.Histogram("bulwark_plugin_request_duration_seconds",
                            "Request latency through a plugin, by mount.",
                            metrics::LatencyBucketsSeconds())),
      in_flight_(r.Gauge("bulwark_plugin_requests_in_flight",
                         "Requests a plugin mount has started and not yet answered.")),
      ready_(r.Histogram("bulwark_plugin_ready_seconds",
                         "From the start of a mount's setup (launch included) to ready.",
                         metrics::LatencyBucketsSeconds())) {}

metrics::Labels PluginMetrics::Entry(const PluginId& id) {
  return {{"plugin", id.plugin}, {"version", id.version}};
}

metrics::Labels PluginMetrics::Mount(const PluginId& id, absl::string_view mount) {
  return {{"plugin", id.plugin}, {"version", id.version}, {"mount", std::string(mount)}};
}

bool PluginMetrics::IsLimitKill(absl::string_view reason) {
  // SIGXCPU is RLIMIT_CPU's signal; a runner that knows the kernel killed its process at a
  // limit (an OOM kill in its cgroup) says "limit" in the reason. A bare SIGKILL is a crash:
  // nothing tells who sent it.
  return absl::StrContains(reason, "SIGXCPU") || absl::StrContains(reason, "limit");
}

void PluginMetrics::Started(const PluginId& id, absl::string_view mount) {
  seen_.insert(id);
  starts_->Add(Mount(id, mount), 1);
}

void PluginMetrics::Exited(const PluginId& id, absl::string_view mount, absl::string_view reason) {
  metrics::Labels l = Mount(id, mount);
  l.emplace_back("reason", IsLimitKill(reason) ? "limit" : "crash");
  exits_->Add(l, 1);
}

void PluginMetrics::Restarted(const PluginId& id, absl::string_view mount) {
  restarts_->Add(Mount(id, mount), 1);
}

void PluginMetrics::KilledAtLimit(const PluginId& id, absl::string_view limit) {
  metrics::Labels l = Entry(id);
  l.emplace_back("limit", std::string(limit));
  limit_kills_->Add(l, 1);
}

void PluginMetrics::Ready(const PluginId& id, absl::string_view mount, double seconds) {
  ready_->Observe(Mount(id, mount), seconds);
}

void PluginMetrics::RequestStarted(const PluginId& id, absl::string_view mount) {
  in_flight_->Add(Mount(id, mount), 1);
}

void PluginMetrics::RequestFinished(const PluginId& id, absl::string_view mount,
                                    absl::string_view code, double seconds) {
  const metrics::Labels l = Mount(id, mount);
  in_flight_->Add(l, -1);
  duration_->Observe(l, seconds);
  metrics::Labels with_code = l;
  with_code.emplace_back("code", std::string(code));
  requests_->Add(with_code, 1);
}

void PluginMetrics::SetProcesses(const std::map<PluginId, std::vector<int64_t>>& pids,
                                 ProcessSampler* sampler) {
  for (const PluginId& id : seen_) {
    if (pids.count(id) > 0) continue;
    running_->Set(Entry(id), 0);
    if (sampler != nullptr) {
      cpu_->Set(Entry(id), 0);
      resident_->Set(Entry(id), 0);
    }
  }
  for (const auto& [id, list] : pids) {
    seen_.insert(id);
    running_->Set(Entry(id), static_cast<double>(list.size()));
    if (sampler == nullptr) continue;
    double cpu = 0, resident = 0;
    for (int64_t pid : list) {
      absl::StatusOr<ProcessSample> s = sampler->Sample(pid);
      if (!s.ok()) continue;  // Ended since: its exit is counted elsewhere.
      cpu += s->cpu_seconds;
      resident += static_cast<double>(s->resident_bytes);
    }
    cpu_->Set(Entry(id), cpu);
    resident_->Set(Entry(id), resident);
  }
}

}  // namespace bulwark::lifecycle
