// The cluster port (docs/ha.md, "The cluster port"): gRPC with mutual TLS between the nodes of
// one cluster, each presenting a certificate issued by the cluster CA (core/ha/cluster_ca.h), and
// one RPC, bulwark.cluster.RequestForwarding.ForwardRequest (proto/cluster/forwarding.proto),
// that carries a client's HTTP request (method, path, query, headers, body) to the active node
// and its answer back.
//
// Bounded: a message is at most `max_message_bytes` (the HTTP listener's max_request_size plus
// room for headers); at most `max_in_flight` calls run at once on each side (more are refused
// with RESOURCE_EXHAUSTED on the server, kResourceExhausted on the client, before anything is
// sent); every call has a deadline. Headers, the client's token among them, are carried but never
// logged: errors name the peer, the method and the path only.
#ifndef BULWARK_SERVER_CLUSTER_FORWARDING_H_
#define BULWARK_SERVER_CLUSTER_FORWARDING_H_

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/ha/cluster_ca.h"
#include "server/http/message.h"

namespace bulwark::cluster {

struct ForwardingLimits {
  size_t max_message_bytes = (size_t{32} << 20) + (size_t{1} << 20);
  int max_in_flight = 64;
  absl::Duration deadline = absl::Seconds(60);  // Of each forwarded call (client side).
  // How long the client waits for a connection to the active node before it gives up on a call
  // without having sent it (client side).
  absl::Duration connect_timeout = absl::Seconds(10);
};

// The active node's answer to a forwarded request carries its storage's latest write revision
// in this header; the standby that forwarded it strips it and reads from memory again only once
// its watch delivered that revision (docs/ha.md, "Reads on a performance standby"), so a client
// reads its own writes there. Never shown to clients.
inline constexpr char kStoreRevisionHeader[] = "X-Bulwark-Internal-Store-Revision";

// "https://host:port" or "host:port" -> "host:port"; InvalidArgument without a port.
absl::StatusOr<std::string> ClusterHostPort(absl::string_view cluster_addr);

// The receiving side. `handler` is the node's HTTP API (api::Api::Handle): any thread, never
// blocks, completes the responder exactly once. The request it gets carries
// ha::kForwardedHeader, so it is never forwarded again.
class ForwardingServer {
 public:
  using Handler = std::function<void(http::Request, http::Responder)>;

  // Listens on `address` ("host:port"; port 0 picks one). Errors: kInvalidArgument for bad TLS
  // material, kUnavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<ForwardingServer>> Start(std::string address,
                                                                 const ha::ClusterTls& tls,
                                                                 ForwardingLimits limits,
                                                                 Handler handler);
  ~ForwardingServer();

  // "host:port" it listens on.
  const std::string& address() const { return address_; }
  // Stops accepting and waits for the calls in flight to be answered (the handler must keep
  // answering: the event loop must run) or `grace` to pass, then cancels the rest. Idempotent.
  void Shutdown(absl::Duration grace);

  struct Impl;

 private:
  ForwardingServer() = default;
  std::string address_;
  std::unique_ptr<Impl> impl_;
};

// The sending side: one channel to the active node's cluster port, redialled when the address
// changes. Thread-safe.
class ForwardingClient {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<http::Response>) &&>;

  ForwardingClient(ha::ClusterTls tls, ForwardingLimits limits);
  ~ForwardingClient();

  // Sends `request` to the node at `cluster_addr`; `done` runs once, on a gRPC thread (or
  // inside the call, for an error found before anything is sent), with the active node's answer
  // or an error. A request is sent only over a connection that is up (the client connects
  // first); errors marked ha::NotSent were never sent (kUnavailable: the node cannot be reached
  // or refused the TLS handshake; kResourceExhausted: too many calls in flight;
  // kInvalidArgument: a bad address); every other error (the gRPC call's status:
  // kDeadlineExceeded, kUnavailable when the stream broke, ...) has an unknown outcome, and its
  // text says so.
  void Forward(absl::string_view cluster_addr, const http::Request& request, Done done);

  int in_flight() const { return in_flight_.load(); }

  struct Impl;

 private:
  ha::ClusterTls tls_;
  ForwardingLimits limits_;
  std::atomic<int> in_flight_{0};
  std::mutex mu_;
  std::string channel_address_;  // Guarded by mu_.
  std::shared_ptr<Impl> impl_;   // Guarded by mu_.
};

}  // namespace bulwark::cluster

#endif  // BULWARK_SERVER_CLUSTER_FORWARDING_H_
