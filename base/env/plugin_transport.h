// The plugin transport seam: how the core talks to a plugin process once that process has
// printed its handshake line. Production speaks gRPC over (m)TLS (core/rpc/grpc_transport);
// the simulator carries the same serialized protobuf messages over a simulated network
// (sim/plugin). Nothing here names gRPC or OpenSSL.
//
// Vocabulary: a *connection* is the core's link to one plugin process; a plugin *instance* is
// one backend inside that process, named by its multiplex id ("" when not multiplexed); *host
// services* are what the core serves back to an instance (Vault's pb.Storage and
// pb.SystemView), reached by the plugin through go-plugin's broker under a *broker id*.
#ifndef BULWARK_BASE_ENV_PLUGIN_TRANSPORT_H_
#define BULWARK_BASE_ENV_PLUGIN_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/crypto/secure_buffer.h"

namespace bulwark {

// Where and how to reach a plugin: the parts of its handshake line the transport needs.
struct PluginEndpoint {
  std::string network;          // "unix" or "tcp".
  std::string address;          // Socket path, or host:port.
  std::string server_cert_der;  // The certificate to trust (AutoMTLS: the plugin's; legacy: the
                                // shared one); empty means no TLS.
  // The name the plugin's certificate is verified against; empty means "localhost" (AutoMTLS).
  std::string tls_server_name;
};

// Vault's legacy plugin TLS (AutoMTLS off): one certificate and key that host and plugin share
// (protocol-facts §2, "Legacy Vault TLS"). The plugin receives them through a response-wrapped
// token (VAULT_UNWRAP_TOKEN); the host presents the same certificate and trusts only it.
struct SharedTlsMaterial {
  std::string cert_der;
  crypto::SecureBuffer key_der;  // SEC1 ECPrivateKey: a secret, wrapped for the plugin only.
  std::string server_name;       // The certificate's CN (and only DNS name).
};

// The host's AutoMTLS identity for one launch. `cert_pem` goes to the plugin in
// PLUGIN_CLIENT_CERT; the private key never leaves the transport.
class ClientIdentity {
 public:
  virtual ~ClientIdentity() = default;
  virtual const std::string& cert_pem() const = 0;
};

// gRPC metadata key go-plugin and Vault use to pick a multiplexed instance
// (sdk/helper/pluginutil/multiplexing.go: `MultiplexingCtxKey = "multiplex_id"`).
inline constexpr absl::string_view kMultiplexIdMetadataKey = "multiplex_id";

// Default per-call deadline when a caller gives none.
inline constexpr absl::Duration kDefaultCallTimeout = absl::Seconds(30);

struct CallOptions {
  std::string multiplex_id;  // Sent as kMultiplexIdMetadataKey when non-empty.
  absl::Duration timeout = kDefaultCallTimeout;
};

// Completion of a unary call: the serialized response message, or the call's status. A
// deadline that expires is kDeadlineExceeded; a connection that broke is kUnavailable; the
// plugin's own gRPC status code is passed through otherwise.
using CallDone = absl::AnyInvocable<void(absl::StatusOr<std::string> response)>;

// What the core serves to one plugin instance over the broker (pb.Storage, pb.SystemView).
// Called on the core executor's thread, synchronously: an implementation answers from core
// state without waiting. `method` is the full gRPC method name, e.g. "/pb.Storage/Get".
class HostServices {
 public:
  virtual ~HostServices() = default;
  // Returns the serialized response, or kUnimplemented for a method it does not serve.
  virtual absl::StatusOr<std::string> Handle(absl::string_view method,
                                             absl::string_view request) = 0;
};

// The core's link to one plugin process. All methods are called on the core executor's thread;
// every callback runs there too, never inline from the call that started it.
class PluginConnection {
 public:
  virtual ~PluginConnection() = default;

  // Starts a unary call of `method` (a full gRPC method name such as "/pb.Backend/HandleRequest")
  // with `request` serialized. `done` runs exactly once, even if the connection is closed first
  // (then with kUnavailable or kCancelled).
  virtual void Call(absl::string_view method, std::string request, const CallOptions& options,
                    CallDone done) = 0;

  // Offers `services` to the plugin through the broker and returns the broker id to pass in
  // pb.SetupArgs.broker_id. `services` must stay alive until WithdrawHostServices(id) or Close().
  // Errors: kResourceExhausted when too many are offered; kFailedPrecondition after Close().
  virtual absl::StatusOr<uint32_t> OfferHostServices(HostServices* services) = 0;
  virtual void WithdrawHostServices(uint32_t broker_id) = 0;

  // Lines the plugin sends over go-plugin's GRPCStdio stream (stream is 1 for stdout, 2 for
  // stderr). Set before the first call; runs on the executor.
  virtual void SetStdioHandler(absl::AnyInvocable<void(int stream, absl::string_view line)>) = 0;

  // Cancels outstanding calls (their `done` runs with kCancelled), stops serving host services,
  // and releases the connection. Idempotent. Does not stop the process: that is the caller's
  // job (GRPCController.Shutdown through Call, then a signal).
  virtual void Close() = 0;
};

// Makes connections. One per Env; it must outlive every connection it made.
class PluginTransport {
 public:
  virtual ~PluginTransport() = default;

  // A fresh AutoMTLS identity for one launch (production: an ECDSA P-256 self-signed
  // certificate, CN and SAN "localhost").
  virtual absl::StatusOr<std::unique_ptr<ClientIdentity>> NewClientIdentity() = 0;

  // A fresh shared identity for Vault's legacy plugin TLS: returns the host's identity (pass it
  // to Connect with an endpoint whose server_cert_der and tls_server_name are `material`'s) and
  // fills `material` with what the plugin must be given. Default: kUnimplemented, for
  // transports that speak only AutoMTLS or plaintext (the simulator's).
  virtual absl::StatusOr<std::unique_ptr<ClientIdentity>> NewSharedIdentity(
      SharedTlsMaterial* material) {
    (void)material;
    return absl::UnimplementedError(
        "this plugin transport does not offer Vault's legacy (non-AutoMTLS) plugin TLS");
  }

  // Connects to a plugin that printed `endpoint`. With a certificate in the endpoint, TLS is
  // mutual: the transport trusts exactly that certificate (server name endpoint.tls_server_name,
  // "localhost" when empty) and presents `identity`, which must then be non-null. `done` runs on
  // the executor once the connection is ready (the plugin answered the health check for service
  // "plugin") or failed: kUnavailable when nothing answers at the address, kUnauthenticated when
  // TLS fails (wrong certificate, plaintext where TLS was expected), kDeadlineExceeded after
  // `timeout`.
  virtual void Connect(
      const PluginEndpoint& endpoint, const ClientIdentity* identity, absl::Duration timeout,
      absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<PluginConnection>>)> done) = 0;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_PLUGIN_TRANSPORT_H_
