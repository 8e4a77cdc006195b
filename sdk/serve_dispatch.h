// The one go-plugin server behind ServeBackend and ServeDatabase: everything but the plugin's
// own services (cookie, versions, socket, AutoMTLS, health, broker, controller, stdio, hclog,
// signals, shutdown) is here once; the caller supplies a dispatch function for the rest.
// Plugin authors use serve.h; this layer is for the SDK itself and for conformance fixtures
// that must misbehave at the wire level.
#ifndef BULWARK_SDK_SERVE_DISPATCH_H_
#define BULWARK_SDK_SERVE_DISPATCH_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/log/log.h"
#include "protocol/host_connection.h"
#include "sdk/serve.h"
#include "sdk/serve_config.h"

namespace bulwark::sdk::internal {

// Serves one call: the full gRPC method name, the serialized request, the caller's
// "multiplex_id" metadata ("" if none). Returns the serialized reply or the call's status.
// Called on the dispatch threads, concurrently.
using DispatchFn = std::function<absl::StatusOr<std::string>(
    absl::string_view method, absl::string_view request, absl::string_view multiplex_id)>;

// What the server knows when it builds the dispatcher (after the environment was read).
struct DispatchSetup {
  const ServeEnv& env;           // Negotiated version, metadata mode, ...
  protocol::HostDialer& dialer;  // The broker: dials host services. Outlives the DispatchFn.
  LogSink* log;                  // hclog on stderr. Outlives the DispatchFn.
};

struct DispatchTarget {
  // Owns whatever it needs (capture a shared_ptr); destroyed after the server stopped.
  DispatchFn dispatch;
  // Whether calls carry a multiplex id: more than one "multiplex_id" entry is then refused.
  bool multiplexing = false;
};

// Builds the dispatcher. An error is a startup failure (logged; the process exits 1).
using DispatchMaker = std::function<absl::StatusOr<DispatchTarget>(const DispatchSetup& setup)>;

// ServeBackend's and ServeDatabase's body: see serve.h for the steps and the exit code.
// options.multiplexing is only validated here; `make` decides.
int ServeDispatch(DispatchMaker make, ServeOptions options);

}  // namespace bulwark::sdk::internal

#endif  // BULWARK_SDK_SERVE_DISPATCH_H_
