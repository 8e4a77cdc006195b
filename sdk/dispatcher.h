// The plugin side of Vault's backend protocol without a transport: answers every method a host
// calls on a backend plugin (pb.Backend, pluginutil.multiplexing.PluginMultiplexing,
// logical.PluginVersion) from serialized requests, and keeps the table of plugin instances.
// ServeBackend (serve.h) feeds it from gRPC; the simulator calls it directly.
#ifndef BULWARK_SDK_DISPATCHER_H_
#define BULWARK_SDK_DISPATCHER_H_

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/log/log.h"
#include "protocol/host_connection.h"
#include "protocol/in_process_plugin.h"
#include "protocol/wire_names.h"
#include "sdk/backend.h"

namespace bulwark::sdk {

// Full method names the dispatcher serves, defined in protocol/wire_names.h.
using protocol::kCleanupMethod;
using protocol::kHandleExistenceCheckMethod;
using protocol::kHandleRequestMethod;
using protocol::kInitializeMethod;
using protocol::kInvalidateKeyMethod;
using protocol::kMultiplexingSupportMethod;
using protocol::kSetupMethod;
using protocol::kSpecialPathsMethod;
using protocol::kTypeMethod;
using protocol::kVersionMethod;

// Default and largest instance count (mounts served by one multiplexed process). An instance
// costs ~1 KiB of the plugin's memory plus the backend's own state when the host shares one
// connection for all of them, ~130 KiB and a descriptor when it does not (Vault):
// docs/performance.md, "Multiplexed mounts".
inline constexpr size_t kInstancesDefaultMax = 4096;
inline constexpr size_t kInstancesMax = 65536;
// Longest multiplex id accepted (Vault sends 10 base62 characters).
inline constexpr size_t kMultiplexIdBytesMax = 256;

// Vault's error text for calls refused in metadata mode (sdk/plugin/grpc_backend_server.go).
inline constexpr absl::string_view kMetadataModeError =
    "plugin server can not perform action while in metadata mode";

struct DispatcherOptions {
  // Serve several instances keyed by the multiplex id the host sends with every call. When
  // false there is at most one instance and the id is ignored.
  bool multiplexing = true;
  // At most this many instances (set up or being set up) at once; 1..kInstancesMax.
  size_t max_instances = kInstancesDefaultMax;
  // What logical.PluginVersion/Version reports ("v1.2.3", or "" when unversioned).
  std::string plugin_version;
  // VAULT_PLUGIN_METADATA_MODE=true: refuse HandleRequest, Initialize, HandleExistenceCheck and
  // InvalidateKey as Vault's SDK does.
  bool metadata_mode = false;
  // Where the dispatcher and the backends log; null discards. Must outlive the dispatcher.
  LogSink* log = nullptr;
};

// One per plugin process. Thread-safe: Dispatch may be called from many threads at once.
//
// Instances: Setup creates one (dialing the host with SetupArgs.broker_id through the
// HostDialer, then calling the factory), Cleanup removes it; every other pb.Backend method
// needs one. With multiplexing the instance is the one named by `multiplex_id`; without, the
// single instance. Version and MultiplexingSupport need none (the version belongs to the
// binary, so a host may ask before Setup).
class BackendDispatcher final : public protocol::InProcessPlugin {
 public:
  // `dialer` must outlive the dispatcher. CHECK-fails on a null factory or max_instances out of
  // range (programming errors).
  BackendDispatcher(BackendFactory factory, protocol::HostDialer& dialer,
                    DispatcherOptions options);
  ~BackendDispatcher() override;

  BackendDispatcher(const BackendDispatcher&) = delete;
  BackendDispatcher& operator=(const BackendDispatcher&) = delete;

  // Serves `method` (one of the k*Method names above) with the serialized `request` and returns
  // the serialized reply. `multiplex_id` is the caller's multiplex id ("" when it sent none).
  //
  // A non-OK status is the call's (gRPC) status; logical errors of the backend travel inside
  // the reply (HandleRequestReply.err and friends), and a factory error in SetupReply.err, as
  // in Vault. Errors:
  //   kUnimplemented       unknown method
  //   kInvalidArgument     the request does not parse, or its data is not a JSON object;
  //                        multiplexing is on and `multiplex_id` is empty or longer than
  //                        kMultiplexIdBytesMax
  //   kFailedPrecondition  no instance for `multiplex_id` (message names the id), or refused in
  //                        metadata mode
  //   kAlreadyExists       Setup for an id that already has an instance (Cleanup first)
  //   kResourceExhausted   Setup beyond max_instances
  //   what HostDialer::Dial returned, when Setup cannot reach the host's services
  absl::StatusOr<std::string> Dispatch(absl::string_view method, absl::string_view request,
                                       absl::string_view multiplex_id) override;

  // Instances set up and not yet cleaned up.
  size_t instance_count() const;

  // Calls Cleanup on every instance and removes them all, e.g. before the process exits.
  void CleanupAll() override;

 private:
  struct Instance;

  // The instance key for `multiplex_id`: the id itself, or "" without multiplexing.
  absl::StatusOr<std::string> InstanceKey(absl::string_view multiplex_id) const;
  absl::StatusOr<std::shared_ptr<Instance>> FindInstance(absl::string_view multiplex_id) const;
  absl::Status CheckNotMetadataMode() const;

  absl::StatusOr<std::string> Setup(absl::string_view request, absl::string_view multiplex_id);
  absl::StatusOr<std::string> Cleanup(absl::string_view multiplex_id);
  absl::StatusOr<std::string> Initialize(absl::string_view multiplex_id);
  absl::StatusOr<std::string> HandleRequest(absl::string_view request,
                                            absl::string_view multiplex_id);
  absl::StatusOr<std::string> HandleExistenceCheck(absl::string_view request,
                                                   absl::string_view multiplex_id);
  absl::StatusOr<std::string> InvalidateKey(absl::string_view request,
                                            absl::string_view multiplex_id);
  absl::StatusOr<std::string> SpecialPathsReply(absl::string_view multiplex_id);
  absl::StatusOr<std::string> Type(absl::string_view multiplex_id);

  const BackendFactory factory_;
  protocol::HostDialer& dialer_;
  const DispatcherOptions options_;
  LogSink* const log_;  // Never null.
  std::unique_ptr<LogSink> discard_log_;

  mutable std::mutex mu_;
  // Keyed by instance key. shared_ptr: a request keeps its instance alive across a concurrent
  // Cleanup.
  std::map<std::string, std::shared_ptr<Instance>> instances_;  // Guarded by mu_.
  std::set<std::string> setting_up_;                            // Guarded by mu_.
};

// The options a built-in is served with: Vault's built-ins are one backend instance per mount,
// never multiplexed.
DispatcherOptions BuiltinDispatcherOptions();

// What the core's built-in runner takes: makes a BackendDispatcher over `factory` for each
// in-process plugin it starts.
protocol::InProcessPluginFactory InProcessBackend(
    BackendFactory factory, DispatcherOptions options = BuiltinDispatcherOptions());

}  // namespace bulwark::sdk

#endif  // BULWARK_SDK_DISPATCHER_H_
