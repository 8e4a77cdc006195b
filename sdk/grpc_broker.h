// The plugin side of go-plugin's gRPC broker (internal to the SDK's gRPC layer): collects the
// ConnInfo announcements the host sends on plugin.GRPCBroker/StartStream and dials them as
// HostConnections, with the plugin's AutoMTLS identity.
//
// TLS on brokered connections. go-plugin v1.0.1's host serves brokered services with its own
// tls.Config: its AutoMTLS certificate (the one it put in PLUGIN_CLIENT_CERT), no client
// certificate requested. Hosts since go-plugin#193 (and bulwark's) also require and verify the
// plugin's certificate. Its Go plugins dial with RootCAs unset and the server name "unused",
// which is why plugin-to-host broker dials failed under AutoMTLS before #193 (go-plugin#109).
// This dialer does what #193 does: it trusts exactly PLUGIN_CLIENT_CERT, checks the name
// "localhost", and presents the plugin's own certificate, so it works with both kinds of host.
//
// Shared host connection (protocol/wire_names.h, kSharedBrokerNetwork). go-plugin gives every
// broker id its own listener, so each instance dials its own connection: with TLS ~130 KiB of
// the plugin's memory and one descriptor per mount (docs/performance.md, "Multiplexed mounts").
// A host that announces an id with ConnInfo.network = kSharedBrokerNetwork serves all of this
// plugin's ids on one socket: the dialer then keeps one channel per such address, shared by every
// instance dialed to it, and names the broker id in each call's metadata (kBrokerIdMetadataKey).
// A host sends that network only after the plugin declared it (ServeOptions::
// shared_host_connection); go-plugin and Vault hosts never do, and get go-plugin's behaviour.
#ifndef BULWARK_SDK_GRPC_BROKER_H_
#define BULWARK_SDK_GRPC_BROKER_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/log/log.h"
#include "proto/goplugin/grpc_broker.pb.h"
#include "protocol/host_connection.h"

namespace grpc {
class Channel;
class ChannelCredentials;
}  // namespace grpc

namespace bulwark::sdk::internal {

// Largest gRPC message either direction. Vault's own limit is MaxInt32; its HTTP layer caps
// requests at 32 MiB (max_request_size), so 64 MiB leaves room for encoding overhead.
inline constexpr int kGrpcMessageBytesMax = 64 * 1024 * 1024;

// Most ConnInfo announcements kept unclaimed; the oldest is dropped beyond this (go-plugin drops
// unclaimed ones after 5 s). A host that sets up every mount of a multiplexed plugin at once
// (unseal) announces one per mount before the plugin dials any, so this is well above the
// default instance cap.
inline constexpr size_t kPendingConnInfoMax = 16384;

// The plugin's AutoMTLS identity and the host certificate it trusts.
struct BrokerTls {
  std::string host_cert_pem;  // PLUGIN_CLIENT_CERT (legacy TLS: the shared certificate).
  std::string cert_pem;       // The plugin's own certificate...
  std::string key_pem;        // ...and key.
  // The name the host's certificate is checked against: "localhost" under AutoMTLS, the shared
  // certificate's CN under Vault's legacy TLS.
  std::string server_name = "localhost";
};

class GrpcHostConnection;

// Thread-safe.
class GrpcBroker final : public protocol::HostDialer {
 public:
  // `tls` unset: plaintext (the host did not ask for AutoMTLS). `log` must outlive the broker.
  GrpcBroker(std::optional<BrokerTls> tls, absl::Duration dial_timeout, absl::Duration call_timeout,
             LogSink* log);
  ~GrpcBroker() override;

  // Records a ConnInfo from the host (called by the StartStream handler). The first
  // announcement of an id wins, as in go-plugin; knocks (broker multiplexing, which this SDK
  // does not offer) are logged and ignored.
  void OnConnInfo(const plugin::ConnInfo& info);

  // Waits up to the dial timeout for the ConnInfo of `broker_id`, consumes it, and connects
  // (waiting for the connection to be ready, within the same timeout), or reuses the shared
  // channel to a kSharedBrokerNetwork address. Errors as in HostDialer::Dial.
  absl::StatusOr<std::shared_ptr<protocol::HostConnection>> Dial(uint32_t broker_id) override;

  // Channels open to the host (dedicated ones plus shared ones), for tests. Any thread.
  size_t channel_count();

  // Fails waiting and future dials with kUnavailable and cancels host calls in flight on every
  // connection dialed. Idempotent.
  void Close();

 private:
  const std::optional<BrokerTls> tls_;
  const absl::Duration dial_timeout_;
  const absl::Duration call_timeout_;
  LogSink* const log_;

  std::mutex mu_;
  std::condition_variable changed_;
  std::map<uint32_t, plugin::ConnInfo> pending_;                // Guarded by mu_.
  std::deque<uint32_t> pending_order_;                          // Guarded by mu_. Arrival order.
  bool closed_ = false;                                         // Guarded by mu_.
  std::vector<std::weak_ptr<GrpcHostConnection>> connections_;  // Guarded by mu_.
  // Made on the first dial and reused: each SslCredentials object would parse the certificates
  // and key again.
  std::shared_ptr<grpc::ChannelCredentials> credentials_;  // Guarded by mu_.
  // Shared channels by target, alive while an instance's connection holds them.
  std::map<std::string, std::weak_ptr<grpc::Channel>> shared_channels_;  // Guarded by mu_.
};

}  // namespace bulwark::sdk::internal

#endif  // BULWARK_SDK_GRPC_BROKER_H_
