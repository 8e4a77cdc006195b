// bulwark's own host for the benchmark's multiplexed-scale workload: the node's launch and
// transport (core/rpc: PluginClient over GrpcPluginTransport on a PosixEnv, AutoMTLS, the broker)
// and its host storage (core/lifecycle's StorageHostServices over an InMemoryStorage per mount).
// Unlike the conformance harness (a go-plugin/Vault host: one brokered server per mount), this
// host speaks bulwark's shared host connection (docs/decisions/0006) to a plugin that declares
// it, so the runner's figure per mount is the one a bulwark node pays.
#ifndef BULWARK_CONFORMANCE_BENCHMARK_BULWARK_HOST_H_
#define BULWARK_CONFORMANCE_BENCHMARK_BULWARK_HOST_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/vault/backend.pb.h"

namespace bulwark::conformance {

// How to launch the plugin: as the harness does for the manifest (its env, its protocol
// versions, the backend cookie of its type).
struct BulwarkHostLaunch {
  std::string plugin_path;
  std::vector<std::string> plugin_args;
  std::vector<std::string> env;  // "KEY=VALUE": the manifest's.
  std::vector<int> protocol_versions;
  std::string cookie_key;
  std::string cookie_value;
  absl::Duration timeout = absl::Seconds(60);  // Launch and each call: a hang guard.
};

// One plugin process driven by bulwark's host code. Not thread-safe: one caller at a time (the
// event loop runs inside each call).
class BulwarkHost {
 public:
  // Launches the plugin and waits for a ready connection.
  static absl::StatusOr<std::unique_ptr<BulwarkHost>> Start(const BulwarkHostLaunch& launch);
  // Shuts the plugin down (GRPCController.Shutdown, then a kill) and removes its directory.
  ~BulwarkHost();
  BulwarkHost(const BulwarkHost&) = delete;
  BulwarkHost& operator=(const BulwarkHost&) = delete;

  // One more mount: host storage of its own offered over the broker, then pb.Backend/Setup and
  // Initialize under `multiplex_id`. A SetupReply.err is kFailedPrecondition.
  absl::Status Mount(const std::string& multiplex_id);
  // pb.Backend/HandleRequest under `multiplex_id` (data "null" when empty, as Vault sends).
  absl::StatusOr<pb::HandleRequestReply> HandleRequest(const std::string& multiplex_id,
                                                       const std::string& operation,
                                                       const std::string& path,
                                                       const std::string& data_json);
  pid_t pid() const;
  // Open descriptors of the plugin process (one per brokered connection without sharing).
  int PluginDescriptors() const;

 private:
  struct State;
  explicit BulwarkHost(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace bulwark::conformance

#endif  // BULWARK_CONFORMANCE_BENCHMARK_BULWARK_HOST_H_
