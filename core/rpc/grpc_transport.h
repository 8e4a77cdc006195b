// GrpcPluginTransport: the production PluginTransport (base/env/plugin_transport.h). It speaks
// go-plugin's gRPC protocol (health, GRPCBroker, GRPCStdio) over AutoMTLS or plaintext; gRPC and
// OpenSSL stay inside the .cc.
#ifndef BULWARK_CORE_RPC_GRPC_TRANSPORT_H_
#define BULWARK_CORE_RPC_GRPC_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/env/executor.h"
#include "base/env/plugin_transport.h"

namespace bulwark::rpc {

class GrpcLoopQueue;

// Named limits and knobs. The defaults suit one Vault-style host with a few hundred mounts.
struct GrpcTransportOptions {
  // Unary calls one connection may have in flight; Call past it fails with kResourceExhausted.
  size_t max_outstanding_calls = 1024;
  // Host-service offers (one per mount) one connection may have open at once;
  // OfferHostServices past it fails with kResourceExhausted.
  size_t max_offered_host_services = 4096;
  // Of those, how many may each have a gRPC server on its own unix socket, as every offer to a
  // plugin that does not declare bulwark's shared host connection has (go-plugin's way: Go and
  // Vault SDK plugins; a connection and ~130 KiB in the plugin per mount); OfferHostServices past
  // it fails with kResourceExhausted.
  size_t max_dedicated_host_servers = 256;
  // Serve every offer to a plugin that declared bulwark's shared host connection (in its health
  // answer, protocol/wire_names.h) on one server per connection, routed by the broker id in each
  // call's metadata. false: one server per offer for every plugin.
  bool share_host_services = true;
  // Broker ids one connection may ever allocate (go-plugin ids are a uint32 counter from 1 that
  // is never reused); OfferHostServices past it fails with kResourceExhausted.
  uint32_t max_broker_ids = 1u << 20;
  // Largest request or response message, in either direction, on every channel and server the
  // transport makes. Vault's own plugin clients allow MaxInt32; 16 MiB bounds our memory.
  size_t max_message_bytes = size_t{16} << 20;
  // Host-service calls one offer may have waiting for or running on the executor; more are
  // refused with RESOURCE_EXHAUSTED. Also the concurrent calls (HTTP/2 streams) on each
  // connection to a shared server; the plugin queues calls beyond it.
  size_t max_host_calls_in_flight = 256;
  // ConnInfo messages queued for the broker stream while an earlier one is being written.
  size_t max_broker_messages_queued = 1024;
  // Longest stdio line delivered to the stdio handler; longer lines arrive truncated.
  size_t max_stdio_line_bytes = 64 * 1024;
  // Directory under which each offer gets a private 0700 directory (mkdtemp) for its socket.
  // Empty: $TMPDIR, else /tmp. The socket path must fit in sun_path (107 bytes).
  std::string socket_dir_parent;
  // How long the transport's destructor waits for gRPC to report the end of every call it
  // started (they are all cancelled first, so this is normally milliseconds).
  absl::Duration shutdown_grace = absl::Seconds(5);
  // Non-null: unary calls (PluginConnection::Call) are made with gRPC's async API on this
  // queue, which the executor's own loop drains (core/rpc/grpc_loop_queue.h), and their `done`
  // runs as the loop takes the completion, without a post from a gRPC thread. The queue must be
  // attached to the PosixEventLoop that is `executor` and outlive the transport. Null: calls
  // complete on gRPC's threads and are posted to the executor.
  GrpcLoopQueue* loop_queue = nullptr;
};

// Thread model: every PluginTransport / PluginConnection method must be called on the executor's
// thread, and every callback runs there. gRPC's own threads only Post to the executor, so
// `executor.Post` must be thread-safe (PosixEventLoop's is; the simulator uses its own
// transport). The executor must outlive the transport, which must outlive its connections.
//
// Connect: "unix" endpoints dial "unix:<address>"; "tcp" endpoints dial "ipv4:<address>" for an
// IPv4 literal, "ipv6:<address>" for "[v6]:port", otherwise "dns:///<address>". Readiness is
// grpc.health.v1.Health/Check{service: "plugin"} answering SERVING within the timeout. Errors:
//   kInvalidArgument    malformed endpoint, non-positive or infinite timeout, TLS without an
//                       identity from this transport, a certificate that does not parse
//   kUnavailable        nothing accepts connections at the address, or health is not SERVING
//   kUnauthenticated    the TLS handshake failed; the message says which way (wrong server
//                       certificate, plaintext server while TLS was expected, TLS server while
//                       plaintext was expected, our client certificate refused)
//   kDeadlineExceeded   no health answer within the timeout
//   kFailedPrecondition the plugin answers but does not serve health for "plugin"
// After success the transport opens plugin.GRPCBroker/StartStream and plugin.GRPCStdio/
// StreamStdio and keeps them open until Close (a plugin without GRPCStdio, such as go-plugin
// v1.0.1, answers Unimplemented, which is ignored). Both streams start in the same executor task
// that runs `done`, so a stdio handler set inside `done` sees every line; lines that arrive with
// no handler set are dropped. Stdio has backpressure, as in go-plugin: the next chunk is read
// only after the previous batch of lines was delivered on the executor.
//
// OfferHostServices serves pb.Storage/* and pb.SystemView/* (anything else is UNIMPLEMENTED)
// on a fresh unix socket, with the same TLS as the connection: the host's identity as server
// certificate, the plugin's certificate as the only trusted client CA, client certificate
// required (go-plugin >= #193 semantics). When the plugin declared bulwark's shared host
// connection (and share_host_services), every offer of the connection is served on one socket
// instead, announced with ConnInfo.network = protocol::kSharedBrokerNetwork, and each call goes
// to the offer named by its protocol::kBrokerIdMetadataKey metadata; a call naming none, several,
// or one not offered (or withdrawn) is refused (INVALID_ARGUMENT, NOT_FOUND) and never reaches
// any HostServices. Each call is posted to the executor and answered from
// HostServices::Handle there; a call whose deadline passes or that the plugin cancels before
// the executor reaches it is answered by gRPC and never reaches Handle (no gRPC thread ever
// waits for the executor). The caller should pass the broker id to the plugin (pb.SetupArgs)
// promptly: a go-plugin plugin forgets a ConnInfo it has not dialed within 5 s
// (grpc_broker.go timeoutWait). go-plugin v1.0.1 plugins under AutoMTLS cannot dial back at all
// (their TLS config has no RootCAs/ServerName, go-plugin #109, fixed by #193); without AutoMTLS
// they can.
class GrpcPluginTransport final : public PluginTransport {
 public:
  explicit GrpcPluginTransport(Executor& executor, GrpcTransportOptions options = {});
  // Cancels pending Connects (their `done` never runs), stops posting to the executor, and
  // waits up to options.shutdown_grace for gRPC to finish every call it started.
  ~GrpcPluginTransport() override;

  GrpcPluginTransport(const GrpcPluginTransport&) = delete;
  GrpcPluginTransport& operator=(const GrpcPluginTransport&) = delete;

  // An ECDSA P-256 self-signed certificate with go-plugin's profile (CN and SAN "localhost",
  // CA, client and server auth), valid for kGoPluginCertValidity from the wall clock.
  // Errors: kInternal if OpenSSL fails.
  absl::StatusOr<std::unique_ptr<ClientIdentity>> NewClientIdentity() override;

  // Vault's legacy plugin certificate (protocol::GenerateVaultPluginCert: P-521, CN = SAN = a
  // UUID), valid from the wall clock; the identity presents it and `material` carries it, its
  // SEC1 key and its CN. Errors: kInternal if OpenSSL fails.
  absl::StatusOr<std::unique_ptr<ClientIdentity>> NewSharedIdentity(
      SharedTlsMaterial* material) override;

  void Connect(
      const PluginEndpoint& endpoint, const ClientIdentity* identity, absl::Duration timeout,
      absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<PluginConnection>>)> done) override;

  // For tests and diagnostics: gRPC operations (calls, streams, server reactors) started by this
  // transport that have not reported completion yet. Any thread.
  size_t operations_in_flight() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace bulwark::rpc

#endif  // BULWARK_CORE_RPC_GRPC_TRANSPORT_H_
