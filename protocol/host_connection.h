// The plugin's link back to its host: a synchronous call interface for the host services one
// plugin instance uses (Vault's pb.Storage, pb.SystemView), and the dialer that opens it from a
// go-plugin broker id. The gRPC layer (serve.h) and the simulator each implement both.
#ifndef BULWARK_PROTOCOL_HOST_CONNECTION_H_
#define BULWARK_PROTOCOL_HOST_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bulwark::protocol {

// A synchronous link from plugin code to one host connection: the brokered connection of one
// plugin instance. Implementations are thread-safe: a backend may call from many request threads
// at once.
class HostConnection {
 public:
  virtual ~HostConnection() = default;

  // Calls `method`, a full gRPC method name such as "/pb.Storage/Get", with the serialized
  // request message and returns the serialized reply. Blocks until the reply arrives or the call
  // fails; never longer than the implementation's call timeout.
  // Errors: the host's status as it arrived (the gRPC code mapped to the same absl code);
  // kDeadlineExceeded when the host did not answer in time; kUnavailable when the connection is
  // broken or closed (the plugin is shutting down); kUnimplemented for a method the host does not
  // serve.
  virtual absl::StatusOr<std::string> Call(absl::string_view method, absl::string_view request) = 0;
};

// Opens host connections. One per plugin process; must outlive the BackendDispatcher using it.
class HostDialer {
 public:
  virtual ~HostDialer() = default;

  // Dials the host services offered under `broker_id` (pb.SetupArgs.broker_id). Waits, bounded,
  // for the host to announce them (go-plugin: ConnInfo on the broker stream, at most 5 s). Each
  // announced id can be dialed once. Thread-safe. The connection stays usable after the dialer
  // returns it until the connection is destroyed.
  // Errors: kDeadlineExceeded when the host announced nothing under `broker_id` in time;
  // kUnavailable when the announced address cannot be reached or TLS fails, or the dialer is
  // shutting down; kInvalidArgument when the announcement is malformed (unknown network).
  virtual absl::StatusOr<std::shared_ptr<HostConnection>> Dial(uint32_t broker_id) = 0;
};

}  // namespace bulwark::protocol

#endif  // BULWARK_PROTOCOL_HOST_CONNECTION_H_
