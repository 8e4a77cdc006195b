// A plugin served inside the host's own process: the seam between the core's built-in runner
// (core/lifecycle) and the SDK's dispatchers, which implement it. Calls carry serialized
// messages under their full gRPC method names, exactly as on the wire, so a built-in behaves
// like the same plugin served as an external process.
#ifndef BULWARK_PROTOCOL_IN_PROCESS_PLUGIN_H_
#define BULWARK_PROTOCOL_IN_PROCESS_PLUGIN_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "protocol/host_connection.h"

namespace bulwark::protocol {

class InProcessPlugin {
 public:
  virtual ~InProcessPlugin() = default;

  // Serves `method` (e.g. "/pb.Backend/HandleRequest") with the serialized `request` for the
  // instance named by `multiplex_id` ("" when the host sends none) and returns the serialized
  // reply, on the caller's thread. A non-OK status is the call's gRPC-level status; the
  // plugin's logical errors travel inside the reply, as over the wire.
  virtual absl::StatusOr<std::string> Dispatch(absl::string_view method, absl::string_view request,
                                               absl::string_view multiplex_id) = 0;

  // Cleans up every instance: what the controller's Shutdown does to an external plugin.
  virtual void CleanupAll() = 0;
};

// Makes one in-process plugin whose host services are reached through `dialer`; the dialer
// outlives the plugin.
using InProcessPluginFactory = std::function<std::unique_ptr<InProcessPlugin>(HostDialer& dialer)>;

}  // namespace bulwark::protocol

#endif  // BULWARK_PROTOCOL_IN_PROCESS_PLUGIN_H_
