// The plugin-side broker: ConnInfo bookkeeping, brokered channels, and synchronous generic
// unary calls to the host's services.
#include "sdk/grpc_broker.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <iterator>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "protocol/handshake.h"
#include "protocol/wire_names.h"
#include "sdk/backend.h"

namespace bulwark::sdk::internal {

// One instance's way to the host's services: its own brokered channel, or (shared host
// connection) the channel it shares with the other instances plus its broker id for the host's
// routing.
class GrpcHostConnection final : public protocol::HostConnection {
 public:
  // `broker_id_tag` empty: a dedicated channel, calls carry no broker id.
  GrpcHostConnection(std::shared_ptr<grpc::Channel> channel, std::string address,
                     absl::Duration call_timeout, std::string broker_id_tag)
      : channel_(std::move(channel)),
        stub_(channel_),
        address_(std::move(address)),
        call_timeout_(call_timeout),
        broker_id_tag_(std::move(broker_id_tag)) {}

  absl::StatusOr<std::string> Call(absl::string_view method, absl::string_view request) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + call_timeout_));
    if (!broker_id_tag_.empty()) {
      context.AddMetadata(std::string(protocol::kBrokerIdMetadataKey), broker_id_tag_);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) {
        return absl::UnavailableError(
            absl::StrCat("host call ", method, ": the plugin is shutting down"));
      }
      active_.insert(&context);
    }
    grpc::Slice slice(request.data(), request.size());
    grpc::ByteBuffer request_buffer(&slice, 1);
    grpc::ByteBuffer response_buffer;
    // Shared with the callback, so the promise outlives its set_value whatever the timing.
    auto done = std::make_shared<std::promise<grpc::Status>>();
    std::future<grpc::Status> finished = done->get_future();
    stub_.UnaryCall(&context, std::string(method), grpc::StubOptions(), &request_buffer,
                    &response_buffer,
                    [done](grpc::Status status) { done->set_value(std::move(status)); });
    const grpc::Status status = finished.get();
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_.erase(&context);
    }
    if (!status.ok()) {
      return absl::Status(
          static_cast<absl::StatusCode>(status.error_code()),
          absl::StrCat("host call ", method, " at ", address_, ": ", status.error_message()));
    }
    std::vector<grpc::Slice> slices;
    if (!response_buffer.Dump(&slices).ok()) {
      return absl::InternalError(absl::StrCat("host call ", method, ": unreadable reply"));
    }
    std::string reply;
    reply.reserve(response_buffer.Length());
    for (const grpc::Slice& s : slices) {
      reply.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    return reply;
  }

  const grpc::Channel* channel() const { return channel_.get(); }

  // Fails calls from now on and cancels those in flight.
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    for (grpc::ClientContext* context : active_) context->TryCancel();
  }

 private:
  const std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub stub_;
  const std::string address_;
  const absl::Duration call_timeout_;
  const std::string broker_id_tag_;
  std::mutex mu_;
  bool closed_ = false;                    // Guarded by mu_.
  std::set<grpc::ClientContext*> active_;  // Guarded by mu_. Alive while listed.
};

GrpcBroker::GrpcBroker(std::optional<BrokerTls> tls, absl::Duration dial_timeout,
                       absl::Duration call_timeout, LogSink* log)
    : tls_(std::move(tls)), dial_timeout_(dial_timeout), call_timeout_(call_timeout), log_(log) {}

GrpcBroker::~GrpcBroker() { Close(); }

void GrpcBroker::OnConnInfo(const plugin::ConnInfo& info) {
  if (info.has_knock() && info.knock().knock()) {
    Log(log_, LogLevel::kWarn,
        "ignoring a broker knock: this plugin does not support gRPC broker multiplexing",
        {{"service_id", absl::StrCat(info.service_id())}});
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    if (pending_.count(info.service_id()) != 0) {
      Log(log_, LogLevel::kWarn, "ignoring a second announcement of a broker id",
          {{"service_id", absl::StrCat(info.service_id())}});
      return;
    }
    if (pending_.size() >= kPendingConnInfoMax) {
      const uint32_t oldest = pending_order_.front();
      pending_order_.pop_front();
      pending_.erase(oldest);
      Log(log_, LogLevel::kWarn, "dropping an unclaimed broker announcement",
          {{"service_id", absl::StrCat(oldest)}});
    }
    pending_.emplace(info.service_id(), info);
    pending_order_.push_back(info.service_id());
  }
  changed_.notify_all();
}

absl::StatusOr<std::shared_ptr<protocol::HostConnection>> GrpcBroker::Dial(uint32_t broker_id) {
  const absl::Time deadline = absl::Now() + dial_timeout_;
  plugin::ConnInfo info;
  {
    std::unique_lock<std::mutex> lock(mu_);
    const bool ready = changed_.wait_until(lock, absl::ToChronoTime(deadline), [&] {
      return closed_ || pending_.count(broker_id) != 0;
    });
    if (closed_) {
      return absl::UnavailableError("broker closed: the plugin is shutting down");
    }
    if (!ready) {
      return absl::DeadlineExceededError(absl::StrCat(
          "timeout waiting for connection info: the host announced nothing under broker id ",
          broker_id, " within ", absl::FormatDuration(dial_timeout_)));
    }
    info = std::move(pending_[broker_id]);
    pending_.erase(broker_id);
    pending_order_.erase(std::find(pending_order_.begin(), pending_order_.end(), broker_id));
  }

  const bool shared = info.network() == protocol::kSharedBrokerNetwork;
  std::string target;
  if (info.network() == "unix" || shared) {
    target = absl::StrCat("unix:", info.address());
  } else if (info.network() == "tcp") {
    target = info.address();
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown address type ",
                                                   protocol::QuoteForError(info.network()),
                                                   " for broker id ", broker_id));
  }
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shared) {
      auto it = shared_channels_.find(target);
      if (it != shared_channels_.end()) channel = it->second.lock();
    }
    if (credentials_ == nullptr) {
      if (tls_.has_value()) {
        grpc::SslCredentialsOptions options;
        options.pem_root_certs = tls_->host_cert_pem;
        options.pem_private_key = tls_->key_pem;
        options.pem_cert_chain = tls_->cert_pem;
        credentials_ = grpc::SslCredentials(options);
      } else {
        credentials_ = grpc::InsecureChannelCredentials();
      }
    }
    credentials = credentials_;
  }
  if (channel == nullptr) {
    grpc::ChannelArguments args;
    // Every dedicated channel gets its own connection, as in go-plugin, so closing one leaves
    // the others.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(kGrpcMessageBytesMax);
    args.SetMaxSendMessageSize(kGrpcMessageBytesMax);
    if (tls_.has_value()) args.SetSslTargetNameOverride(tls_->server_name);
    channel = grpc::CreateCustomChannel(target, credentials, args);
    if (!channel->WaitForConnected(absl::ToChronoTime(deadline))) {
      return absl::UnavailableError(absl::StrCat(
          "cannot connect to the host's services for broker id ", broker_id, " at ", target,
          tls_.has_value() ? " (mutual TLS: the host must present the PLUGIN_CLIENT_CERT or "
                             "shared certificate)"
                           : " (plaintext)"));
    }
  }
  auto connection = std::make_shared<GrpcHostConnection>(
      channel, target, call_timeout_, shared ? absl::StrCat(broker_id) : std::string());
  bool closed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed = closed_;
    connections_.erase(
        std::remove_if(connections_.begin(), connections_.end(),
                       [](const std::weak_ptr<GrpcHostConnection>& c) { return c.expired(); }),
        connections_.end());
    connections_.push_back(connection);
    if (shared) {
      for (auto it = shared_channels_.begin(); it != shared_channels_.end();) {
        it = it->second.expired() ? shared_channels_.erase(it) : std::next(it);
      }
      // A concurrent first dial may have made one too; the later one is kept for new dials.
      shared_channels_[target] = channel;
    }
  }
  if (closed) connection->Close();
  return std::shared_ptr<protocol::HostConnection>(std::move(connection));
}

size_t GrpcBroker::channel_count() {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<const grpc::Channel*> channels;
  for (const std::weak_ptr<GrpcHostConnection>& weak : connections_) {
    if (std::shared_ptr<GrpcHostConnection> c = weak.lock()) channels.insert(c->channel());
  }
  return channels.size();
}

void GrpcBroker::Close() {
  std::vector<std::shared_ptr<GrpcHostConnection>> connections;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    pending_.clear();
    pending_order_.clear();
    for (const std::weak_ptr<GrpcHostConnection>& weak : connections_) {
      if (std::shared_ptr<GrpcHostConnection> c = weak.lock()) connections.push_back(std::move(c));
    }
  }
  changed_.notify_all();
  for (const std::shared_ptr<GrpcHostConnection>& c : connections) c->Close();
}

}  // namespace bulwark::sdk::internal
