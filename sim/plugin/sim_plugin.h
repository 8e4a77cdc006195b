// Simulated plugin processes and the simulated plugin transport. A plugin here is a simulated
// process (base/env/sim SimProcessLauncher) running the real SDK plugin logic
// (sdk::BackendDispatcher over the author's Backend class): it checks its magic cookie and protocol
// versions from its environment, prints a real go-plugin handshake line, and answers the same
// serialized protobuf calls a gRPC plugin does, with simulated latency. So core/rpc's PluginClient,
// the lifecycle manager and the node run unchanged on top of it.
//
// Faults come from the process model: a crashed process fails its calls in flight
// (kUnavailable), a hung one answers nothing (the caller's deadline fires), a slow one answers
// late (per-plugin latency).
#ifndef BULWARK_SIM_PLUGIN_SIM_PLUGIN_H_
#define BULWARK_SIM_PLUGIN_SIM_PLUGIN_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "base/env/executor.h"
#include "base/env/plugin_transport.h"
#include "base/env/random.h"
#include "base/env/sim/sim_file_system.h"
#include "base/env/sim/sim_process_launcher.h"
#include "sdk/backend.h"
#include "sdk/database.h"
#include "sdk/dispatcher.h"

namespace bulwark::sim {

struct SimPluginSpec {
  sdk::BackendFactory factory;
  // Set: a database plugin (dbplugin v5, VAULT_DATABASE_PLUGIN cookie, protocol 6 when
  // multiplexing, else 5) served by the SDK's DatabaseDispatcher over the factory this makes for
  // each process (from the process's context: its own random stream); `factory` is then unused.
  std::function<sdk::DatabaseFactory(SimProcessContext&)> database;
  bool multiplexing = true;
  std::string plugin_version;
  // Ignore GRPCController/Shutdown (the host must kill it after the grace period).
  bool ignore_shutdown = false;
  // When set, rewrites the handshake line (without its '\n') before the plugin prints it, given
  // the process's argv: a plugin that serves but announces itself wrongly.
  std::function<std::string(const std::string& line, const std::vector<std::string>& argv)>
      handshake_filter;
};

struct SimNetworkOptions {
  // One-way latency of a call, uniformly drawn per message.
  absl::Duration latency_min = absl::Microseconds(50);
  absl::Duration latency_max = absl::Microseconds(400);
};

class SimPluginNetwork final : public PluginTransport {
 public:
  // References must outlive the network. `random` should be a stream of its own. Processes
  // still running when the network is destroyed stop being reachable.
  SimPluginNetwork(Executor& executor, Random& random, SimFileSystem& fs,
                   SimNetworkOptions options = {});
  ~SimPluginNetwork() override;

  // Makes executables whose contents are SimProcessLauncher::ExecutableContents(name) start a
  // plugin serving `spec`.
  void RegisterPlugin(SimProcessLauncher& launcher, const std::string& name, SimPluginSpec spec);

  // Extra one-way latency for every message to and from processes running plugin `name`
  // (slowness fault); zero to clear.
  void SetSlowdown(const std::string& name, absl::Duration extra);

  // PluginTransport. The identity is a deterministic fake certificate; a connection is refused
  // (kUnauthenticated) when the endpoint's certificate is not the one the plugin announced, or
  // when the plugin expects TLS and the host offers none (and the other way round).
  absl::StatusOr<std::unique_ptr<ClientIdentity>> NewClientIdentity() override;
  void Connect(
      const PluginEndpoint& endpoint, const ClientIdentity* identity, absl::Duration timeout,
      absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<PluginConnection>>)> done) override;

  // Counters for reports.
  uint64_t calls() const { return calls_; }
  uint64_t listening() const { return servers_.size(); }

  struct Server;  // One listening plugin process (internal).

 private:
  friend class SimPluginProgram;
  friend class SimPluginConnection;
  absl::Duration Latency(const std::string& plugin);

  Executor& executor_;
  Random& random_;
  SimFileSystem& fs_;
  const SimNetworkOptions options_;
  std::map<std::string, std::shared_ptr<Server>> servers_;  // By socket address.
  std::map<std::string, absl::Duration> slowdown_;
  uint64_t next_identity_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  uint64_t calls_ = 0;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_PLUGIN_SIM_PLUGIN_H_
