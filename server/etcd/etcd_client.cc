#include "server/etcd/etcd_client.h"

#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "grpcpp/grpcpp.h"

namespace bulwark::etcd {
namespace {

// etcd's values may be up to its --max-request-bytes; bulwark's Storage allows 4 MiB values, so
// a response carrying one must fit.
constexpr int kMaxMessageBytes = 16 << 20;

absl::StatusCode ToAbsl(grpc::StatusCode code) {
  // gRPC's and absl's codes have the same numbers and meanings.
  return static_cast<absl::StatusCode>(static_cast<int>(code));
}

}  // namespace

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  absl::string_view address = options.address;
  if (absl::StrContains(address, ',')) address = address.substr(0, address.find(','));
  if (absl::StartsWith(address, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd address \"", address, "\": TLS (https) is not supported yet"));
  }
  absl::ConsumePrefix(&address, "http://");
  absl::ConsumeSuffix(&address, "/");
  const size_t colon = address.rfind(':');
  uint32_t port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port == 0 || port > 65535 ||
      absl::StrContains(address, '/')) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd address \"", options.address, "\" is not of the form http://host:port"));
  }
  if (options.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("etcd request timeout must be positive");
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // A connection that dies silently fails its calls, watches included, within keepalive time +
  // timeout (a perf standby's watched reads stop at the break; docs/ha.md). etcd refuses pings
  // more often than every 5 s (--grpc-keepalive-min-time); the watch streams keep a call open.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(kKeepaliveTime)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
              static_cast<int>(absl::ToInt64Milliseconds(kKeepaliveTimeout)));
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  std::string endpoint(address);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
  return std::unique_ptr<Client>(
      new Client(std::move(endpoint), std::move(channel), options.request_timeout));
}

Client::Client(std::string endpoint, std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : endpoint_(std::move(endpoint)),
      channel_(std::move(channel)),
      request_timeout_(timeout),
      kv_(etcdserverpb::KV::NewStub(channel_)),
      lease_(etcdserverpb::Lease::NewStub(channel_)),
      watch_(etcdserverpb::Watch::NewStub(channel_)) {}

void Client::SetDeadline(grpc::ClientContext& context, absl::Duration timeout) const {
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout));
}

absl::Status Client::Error(absl::string_view operation, const grpc::Status& status) const {
  return absl::Status(ToAbsl(status.error_code()), absl::StrCat("etcd ", endpoint_, ": ", operation,
                                                                ": ", status.error_message()));
}

absl::StatusOr<etcdserverpb::RangeResponse> Client::Range(
    const etcdserverpb::RangeRequest& request) {
  return Unary<etcdserverpb::RangeResponse>(
      "Range", [&](grpc::ClientContext* context, etcdserverpb::RangeResponse* response) {
        return kv_->Range(context, request, response);
      });
}

absl::StatusOr<etcdserverpb::PutResponse> Client::Put(const etcdserverpb::PutRequest& request) {
  return Unary<etcdserverpb::PutResponse>(
      "Put", [&](grpc::ClientContext* context, etcdserverpb::PutResponse* response) {
        return kv_->Put(context, request, response);
      });
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> Client::DeleteRange(
    const etcdserverpb::DeleteRangeRequest& request) {
  return Unary<etcdserverpb::DeleteRangeResponse>(
      "DeleteRange",
      [&](grpc::ClientContext* context, etcdserverpb::DeleteRangeResponse* response) {
        return kv_->DeleteRange(context, request, response);
      });
}

absl::StatusOr<etcdserverpb::TxnResponse> Client::Txn(const etcdserverpb::TxnRequest& request) {
  return Unary<etcdserverpb::TxnResponse>(
      "Txn", [&](grpc::ClientContext* context, etcdserverpb::TxnResponse* response) {
        return kv_->Txn(context, request, response);
      });
}

absl::StatusOr<etcdserverpb::LeaseGrantResponse> Client::LeaseGrant(absl::Duration ttl) {
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(absl::ToInt64Seconds(absl::Ceil(ttl, absl::Seconds(1))));
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> response =
      Unary<etcdserverpb::LeaseGrantResponse>(
          "LeaseGrant", [&](grpc::ClientContext* context, etcdserverpb::LeaseGrantResponse* out) {
            return lease_->LeaseGrant(context, request, out);
          });
  if (response.ok() && !response->error().empty()) {
    return absl::UnavailableError(
        absl::StrCat("etcd ", endpoint_, ": LeaseGrant: ", response->error()));
  }
  return response;
}

absl::Status Client::LeaseRevoke(int64_t lease_id) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease_id);
  return Unary<etcdserverpb::LeaseRevokeResponse>(
             "LeaseRevoke",
             [&](grpc::ClientContext* context, etcdserverpb::LeaseRevokeResponse* response) {
               return lease_->LeaseRevoke(context, request, response);
             })
      .status();
}

absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> Client::LeaseKeepAliveOnce(
    int64_t lease_id, std::optional<absl::Duration> timeout) {
  grpc::ClientContext context;
  SetDeadline(context, timeout.value_or(request_timeout_));
  auto stream = lease_->LeaseKeepAlive(&context);
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(lease_id);
  etcdserverpb::LeaseKeepAliveResponse response;
  const bool ok = stream->Write(request) && stream->Read(&response);
  stream->WritesDone();
  if (!ok) {
    context.TryCancel();
    grpc::Status s = stream->Finish();
    if (s.ok() || s.error_code() == grpc::StatusCode::CANCELLED) {
      s = grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream ended without a response");
    }
    return Error("LeaseKeepAlive", s);
  }
  context.TryCancel();  // One renewal per stream; the server ends its side on cancel.
  stream->Finish();
  return response;
}

absl::StatusOr<std::unique_ptr<WatchStream>> Client::Watch(
    const etcdserverpb::WatchCreateRequest& request, absl::Duration deadline) {
  std::unique_ptr<WatchStream> watch(new WatchStream());
  watch->endpoint_ = endpoint_;
  watch->context_ = std::make_unique<grpc::ClientContext>();
  SetDeadline(*watch->context_, deadline);
  watch->stream_ = watch_->Watch(watch->context_.get());
  etcdserverpb::WatchRequest create;
  *create.mutable_create_request() = request;
  etcdserverpb::WatchResponse created;
  if (!watch->stream_->Write(create) || !watch->stream_->Read(&created)) {
    watch->done_ = true;
    grpc::Status s = watch->stream_->Finish();
    if (s.ok()) s = grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream ended");
    return Error("Watch", s);
  }
  if (created.compact_revision() > 0) {
    watch->done_ = true;
    watch->context_->TryCancel();
    watch->stream_->Finish();
    return absl::OutOfRangeError(
        absl::StrCat("etcd ", endpoint_, ": Watch: revision ", request.start_revision(),
                     " is compacted (compacted up to ", created.compact_revision(), ")"));
  }
  if (!created.created() || created.canceled()) {
    watch->done_ = true;
    watch->context_->TryCancel();
    watch->stream_->Finish();
    return absl::FailedPreconditionError(
        absl::StrCat("etcd ", endpoint_, ": Watch: not created: ", created.cancel_reason()));
  }
  watch->created_revision_ = created.header().revision();
  return watch;
}

WatchStream::~WatchStream() {
  if (!done_ && stream_ != nullptr) {
    context_->TryCancel();
    stream_->Finish();
  }
}

void WatchStream::Cancel() { context_->TryCancel(); }

absl::StatusOr<std::optional<etcdserverpb::WatchResponse>> WatchStream::Next() {
  if (done_) return std::optional<etcdserverpb::WatchResponse>();
  etcdserverpb::WatchResponse response;
  if (stream_->Read(&response)) return std::optional<etcdserverpb::WatchResponse>(response);
  done_ = true;
  grpc::Status s = stream_->Finish();
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return std::optional<etcdserverpb::WatchResponse>();
  }
  if (s.ok()) s = grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream ended");
  return absl::Status(ToAbsl(s.error_code()),
                      absl::StrCat("etcd ", endpoint_, ": Watch: ", s.error_message()));
}

}  // namespace bulwark::etcd
