// A client for etcd's v3 gRPC API (the subset in proto/etcd/rpc.proto): KV, Lease and Watch.
// Plain TCP (etcd's "http://" client URLs); TLS is not supported yet.
//
// Every call has a deadline (ClientOptions::request_timeout unless the call takes its own), and
// every error names the endpoint and the operation: `etcd 127.0.0.1:2379: Txn: <gRPC message>`,
// with the gRPC code mapped to the absl code of the same name. Thread-safe: the calls may be
// made from any thread (the storage calls from the event loop, the coordinator from its own
// thread).
#ifndef BULWARK_SERVER_ETCD_ETCD_CLIENT_H_
#define BULWARK_SERVER_ETCD_ETCD_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/etcd/rpc.grpc.pb.h"

namespace bulwark::etcd {

struct ClientOptions {
  // One endpoint: "http://127.0.0.1:2379" or "127.0.0.1:2379". (Vault accepts a comma-separated
  // list; bulwark speaks to the first for now.)
  std::string address = "http://127.0.0.1:2379";
  // Deadline of each unary call (Vault's etcd request_timeout).
  absl::Duration request_timeout = absl::Seconds(5);
};

// gRPC keepalive on the channel to etcd: a ping every kKeepaliveTime; the connection is dropped
// when one is not answered within kKeepaliveTimeout.
inline constexpr absl::Duration kKeepaliveTime = absl::Seconds(10);
inline constexpr absl::Duration kKeepaliveTimeout = absl::Seconds(5);

// The exclusive end of the range of keys that start with `prefix` (etcd's "prefix + 1"); "\0"
// (every key) for an empty prefix or one made only of 0xff bytes.
std::string PrefixEnd(absl::string_view prefix);

class Client;

// One Watch stream with one watcher, created by Client::Watch. Not thread-safe except Cancel.
class WatchStream {
 public:
  ~WatchStream();
  // The next response after creation (events, or a cancellation by the server), or nullopt when
  // the stream's deadline passed first (then the stream is finished; open a new one). An error
  // (kUnavailable, ...) when the stream broke.
  absl::StatusOr<std::optional<etcdserverpb::WatchResponse>> Next();
  // The store revision at which the watcher was created: events after it are reported.
  int64_t created_revision() const { return created_revision_; }
  // Makes a blocked Next return (with an error). Any thread.
  void Cancel();

 private:
  friend class Client;
  WatchStream() = default;
  std::string endpoint_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>>
      stream_;
  int64_t created_revision_ = 0;
  bool done_ = false;
};

class Client {
 public:
  // Parses the address and makes the channel (it connects lazily; the first call reports an
  // unreachable etcd). kInvalidArgument for an address that is not http://host:port.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(ClientOptions options);

  const std::string& endpoint() const { return endpoint_; }

  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& request);
  absl::StatusOr<etcdserverpb::PutResponse> Put(const etcdserverpb::PutRequest& request);
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteRange(
      const etcdserverpb::DeleteRangeRequest& request);
  absl::StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& request);

  // A lease of `ttl` (whole seconds, rounded up); the response's TTL is what etcd granted.
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> LeaseGrant(absl::Duration ttl);
  absl::Status LeaseRevoke(int64_t lease_id);
  // One renewal over a LeaseKeepAlive stream opened for it, bounded by `timeout` (the request
  // timeout when nullopt). The response's TTL is the lease's new time to live in seconds; <= 0
  // when the lease is gone.
  absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> LeaseKeepAliveOnce(
      int64_t lease_id, std::optional<absl::Duration> timeout = std::nullopt);

  // Opens a Watch stream and creates one watcher; returns once etcd confirmed it. The stream
  // ends at `deadline` (from now): Next then returns nullopt. kOutOfRange when etcd has
  // compacted past the request's start_revision (a stream already open learns it from a
  // cancelled response with compact_revision set).
  absl::StatusOr<std::unique_ptr<WatchStream>> Watch(
      const etcdserverpb::WatchCreateRequest& request, absl::Duration deadline);

 private:
  Client(std::string endpoint, std::shared_ptr<grpc::Channel> channel, absl::Duration timeout);
  void SetDeadline(grpc::ClientContext& context, absl::Duration timeout) const;
  absl::Status Error(absl::string_view operation, const grpc::Status& status) const;
  // One unary call under the request timeout: `call(context, response)` returns its status.
  template <typename Response, typename Call>
  absl::StatusOr<Response> Unary(absl::string_view operation, Call call) const {
    grpc::ClientContext context;
    SetDeadline(context, request_timeout_);
    Response response;
    grpc::Status s = call(&context, &response);
    if (!s.ok()) return Error(operation, s);
    return response;
  }

  std::string endpoint_;
  std::shared_ptr<grpc::Channel> channel_;
  absl::Duration request_timeout_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch_;
};

}  // namespace bulwark::etcd

#endif  // BULWARK_SERVER_ETCD_ETCD_CLIENT_H_
