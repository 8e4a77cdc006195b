// GrpcPluginTransport: go-plugin's gRPC client side (health, unary calls, GRPCBroker host
// services, GRPCStdio) on gRPC C++ 1.51 callback APIs. gRPC threads never touch core state: they
// Post results to the executor through a Lifeline that stops posting once the transport is gone.
//
// Concurrency rules used throughout this file:
//   * A grpc::Channel is destroyed only on the executor thread (or in the transport's
//     destructor), never on a gRPC thread: see the channel keeper in Lifeline.
//   * No mutex of ours is held while calling into gRPC (StartWrite, Finish, TryCancel, ...):
//     gRPC may run reactions inline on the calling thread at the end of such a call, and those
//     reactions take our mutexes.
//   * Every object a gRPC callback touches is kept alive by a shared_ptr the callback owns (or,
//     for reactors, by the reactor's own reference released in OnDone); nothing captures `this`
//     of an object the core can destroy.
//   * "Exactly once" is enforced by taking the callback (or claiming a flag) under a lock or
//     atomically; whoever takes it is the only one who may complete it.
#include "core/rpc/grpc_transport.h"

#include <errno.h>
#include <grpc/grpc_security_constants.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/client_callback.h>
#include <grpcpp/support/server_callback.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/env/line_splitter.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"
#include "core/rpc/grpc_loop_queue.h"
#include "proto/goplugin/grpc_broker.grpc.pb.h"
#include "proto/goplugin/grpc_stdio.grpc.pb.h"
#include "proto/health/health.grpc.pb.h"
#include "protocol/tls_certs.h"
#include "protocol/wire_names.h"

namespace bulwark::rpc {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

// go-plugin's health service name (grpc_server.go GRPCServiceName).
constexpr char kHealthServiceName[] = "plugin";

// Longest text from a peer or from gRPC that we copy into a Status message.
constexpr size_t kPeerTextBytesMax = 512;
// Longest method name accepted by Call ("/package.Service/Method").
constexpr size_t kMethodBytesMax = 1024;
// Longest multiplex id accepted by Call (Vault's are UUIDs).
constexpr size_t kMultiplexIdBytesMax = 256;
// sun_path holds 108 bytes including the terminating NUL.
constexpr size_t kUnixPathBytesMax = 107;

std::string Truncated(absl::string_view text, size_t max = kPeerTextBytesMax) {
  if (text.size() <= max) return std::string(text);
  return absl::StrCat(text.substr(0, max), "...(truncated)");
}

absl::StatusCode AbslCode(grpc::StatusCode code) {
  const int value = static_cast<int>(code);
  // gRPC's and absl's canonical codes share their numbering (0..16).
  if (value < 0 || value > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::StatusCode::kUnknown;
  }
  return static_cast<absl::StatusCode>(value);
}

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

grpc::ByteBuffer ToByteBuffer(std::string bytes) {
  // Hands the string's storage to gRPC instead of copying it.
  auto* owned = new std::string(std::move(bytes));
  grpc::Slice slice(
      owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromByteBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

std::chrono::system_clock::time_point DeadlineAfter(absl::Duration timeout) {
  return absl::ToChronoTime(absl::Now() + timeout);
}

absl::Status ValidateTimeout(absl::Duration timeout, absl::string_view what) {
  if (timeout == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " timeout must be finite (every RPC path needs a deadline)"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Lifeline: the only path from gRPC threads to the executor.

class Lifeline {
 public:
  explicit Lifeline(Executor& executor) : executor_(executor) {}

  // Posts `task` unless ShutDown ran; otherwise destroys it on the calling thread. Any thread.
  bool Post(Task task) {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return false;
    executor_.Post(std::move(task));
    return true;
  }

  // Counts gRPC operations whose completion callback has not finished yet.
  void BeginOp() {
    std::lock_guard<std::mutex> lock(mu_);
    ++ops_;
  }
  void EndOp() {
    std::lock_guard<std::mutex> lock(mu_);
    CHECK(ops_ > 0) << "gRPC operation count underflow";
    if (--ops_ == 0) idle_.notify_all();
  }

  void ShutDown() {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
  }

  // Runs `task` here and now (the caller is on the executor thread) unless ShutDown ran.
  void RunHere(Task task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shut_down_) return;
    }
    task();
  }

  // Waits until no operation is in flight or `limit` passes. Returns true when idle.
  bool WaitIdle(absl::Duration limit) {
    std::unique_lock<std::mutex> lock(mu_);
    return idle_.wait_for(lock, absl::ToChronoNanoseconds(limit), [this] { return ops_ == 0; });
  }

  size_t ops() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ops_;
  }

  // The channel keeper. Without a background poller (Debian's gRPC 1.51 on epoll1) the C++
  // callback API runs every completion on a shared pool of "nexting" threads, reference-counted
  // by the channels and servers that use it; when the last one is destroyed, the pool is shut
  // down and each pool thread joined. If that last destruction happens on a pool thread (a
  // completion callback dropping the last reference to a channel, directly or through a
  // ClientContext), the thread joins itself and frees the queue it is still polling: a double
  // free that ASan caught here. So the keeper holds a reference to every channel the transport
  // makes and drops it on the executor thread once it is the only holder; gRPC threads then
  // never release the last reference. Executor thread only.
  void KeepChannel(std::shared_ptr<grpc::Channel> channel) {
    channels_.push_back(std::move(channel));
  }
  // Releases channels nobody else uses. Executor thread only.
  void SweepChannels() {
    // use_count() == 1 is stable: only the keeper could hand out another reference.
    channels_.erase(
        std::remove_if(channels_.begin(), channels_.end(),
                       [](const std::shared_ptr<grpc::Channel>& c) { return c.use_count() == 1; }),
        channels_.end());
  }
  // Hands every kept channel to the caller (the transport's destructor).
  std::vector<std::shared_ptr<grpc::Channel>> TakeChannels() { return std::move(channels_); }

 private:
  Executor& executor_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;  // Executor thread only.
  mutable std::mutex mu_;
  std::condition_variable idle_;
  bool shut_down_ = false;  // Guarded by mu_.
  size_t ops_ = 0;          // Guarded by mu_.
};

// ---------------------------------------------------------------------------------------------
// Identity and per-connection configuration.

class GrpcClientIdentity final : public ClientIdentity {
 public:
  GrpcClientIdentity(std::string cert_pem, std::string key_pem)
      : cert_pem_(std::move(cert_pem)), key_pem_(std::move(key_pem)) {}
  const std::string& cert_pem() const override { return cert_pem_; }
  const std::string& key_pem() const { return key_pem_; }

 private:
  std::string cert_pem_;
  std::string key_pem_;
};

struct ConnConfig {
  std::string target;           // gRPC target, e.g. "unix:/tmp/plugin123".
  bool tls = false;             // AutoMTLS on.
  std::string server_cert_pem;  // The plugin's certificate (TLS only).
  std::string client_cert_pem;  // The host identity (TLS only).
  std::string client_key_pem;
  // The name the plugin's certificate must carry: "localhost" under AutoMTLS, the shared
  // certificate's CN under Vault's legacy plugin TLS.
  std::string server_name = "localhost";
  // The plugin declared bulwark's shared host connection in its health answer.
  bool shared_host_services = false;
};

absl::StatusOr<std::string> TargetFor(const PluginEndpoint& endpoint) {
  const std::string address = Truncated(endpoint.address, 200);
  if (endpoint.address.empty()) {
    return absl::InvalidArgumentError("plugin endpoint has an empty address");
  }
  if (endpoint.network == "unix") {
    if (endpoint.address.size() > kUnixPathBytesMax) {
      return absl::InvalidArgumentError(
          absl::StrCat("unix socket path longer than ", kUnixPathBytesMax, " bytes: ", address));
    }
    return absl::StrCat("unix:", endpoint.address);
  }
  if (endpoint.network == "tcp") {
    const size_t colon = endpoint.address.rfind(':');
    uint32_t port = 0;
    if (colon == std::string::npos ||
        !absl::SimpleAtoi(absl::string_view(endpoint.address).substr(colon + 1), &port) ||
        port == 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("tcp plugin address is not host:port: ", address));
    }
    const absl::string_view host = absl::string_view(endpoint.address).substr(0, colon);
    if (absl::StartsWith(host, "[")) return absl::StrCat("ipv6:", endpoint.address);
    const std::vector<absl::string_view> octets = absl::StrSplit(host, '.');
    bool ipv4 = octets.size() == 4;
    for (absl::string_view octet : octets) {
      uint32_t value = 0;
      ipv4 = ipv4 && !octet.empty() && absl::SimpleAtoi(octet, &value) && value <= 255;
    }
    if (ipv4) return absl::StrCat("ipv4:", endpoint.address);
    return absl::StrCat("dns:///", endpoint.address);
  }
  return absl::InvalidArgumentError(absl::StrCat("plugin endpoint network must be \"unix\" or ",
                                                 "\"tcp\", got \"", Truncated(endpoint.network, 32),
                                                 "\""));
}

grpc::ChannelArguments ChannelArgsFor(const ConnConfig& config,
                                      const GrpcTransportOptions& options) {
  grpc::ChannelArguments args;
  // go-plugin certificates name only DNS:localhost, and go-plugin verifies "localhost" in both
  // directions (tls.Config.ServerName); Vault's legacy certificate names a UUID instead.
  if (config.tls) args.SetSslTargetNameOverride(config.server_name);
  // Each connection gets its own subchannels: never share a socket with another plugin's
  // channel that happens to have the same target.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // A plugin is local; an http_proxy in the host's environment must not be used for it.
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  args.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  return args;
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentialsFor(const ConnConfig& config) {
  if (!config.tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = config.server_cert_pem;  // Trust exactly the plugin's certificate.
  ssl.pem_private_key = config.client_key_pem;
  ssl.pem_cert_chain = config.client_cert_pem;
  return grpc::SslCredentials(ssl);
}

// How a failed health check is turned into the contract's codes. gRPC 1.51 reports every
// connection-establishment failure as UNAVAILABLE with the text "failed to connect to all
// addresses; last error: <code>: <address>: <cause>", so the cause is read from the text (pinned
// by grpc_transport_test for each case):
//   * the socket could not be connected at all ("No such file or directory", "Connection
//     refused", "Failed to connect to remote host", ...): nothing listens -> kUnavailable;
//   * "Ssl handshake failed" with "certificate verify failed": the plugin presented a
//     certificate other than the one in its handshake line -> kUnauthenticated;
//   * "Ssl handshake failed" with anything else ("wrong version number", ...): the peer did not
//     answer with TLS, i.e. a plaintext server where TLS was expected -> kUnauthenticated;
//   * "Peer name X is not in peer certificate": the certificate is the trusted one but names
//     another host (a legacy shared certificate checked as "localhost") -> kUnauthenticated;
//   * the peer hung up after the socket connected ("Socket closed", "Connection reset", ...):
//     with TLS this is how an OpenSSL or Go server refuses our client certificate (under TLS 1.3
//     the refusal comes after the client has finished its side of the handshake); without TLS it
//     is how a TLS server treats our plaintext HTTP/2 preface -> kUnauthenticated. A plugin that
//     crashes in exactly that instant looks the same; the message says so.
// DEADLINE_EXCEEDED means the socket connected (or is still connecting) but no health answer
// came: a hung plugin -> kDeadlineExceeded.
absl::Status ClassifyUnavailable(const grpc::Status& status, const ConnConfig& config) {
  const std::string& text = status.error_message();
  const std::string cause = Truncated(text);
  static constexpr absl::string_view kNotListening[] = {
      "No such file or directory",
      "Connection refused",
      "Failed to connect to remote host",
      "Network is unreachable",
      "No route to host",
      "DNS resolution failed",
      "Permission denied",
      "Address family not supported",
  };
  for (absl::string_view marker : kNotListening) {
    if (absl::StrContains(text, marker)) {
      return absl::UnavailableError(absl::StrCat("nothing accepts connections at plugin address ",
                                                 config.target, ": ", cause));
    }
  }
  if (absl::StrContains(text, "andshake failed") || absl::StrContains(text, "SSL_ERROR")) {
    if (!config.tls) {
      return absl::UnauthenticatedError(absl::StrCat(
          "TLS handshake failed on a plaintext connection to ", config.target, ": ", cause));
    }
    if (absl::StrContains(text, "certificate verify failed") ||
        absl::StrContains(text, "CERTIFICATE_VERIFY_FAILED")) {
      return absl::UnauthenticatedError(absl::StrCat(
          "the plugin at ", config.target,
          " presented a TLS certificate other than the one in its handshake line: ", cause));
    }
    return absl::UnauthenticatedError(
        absl::StrCat("the plugin at ", config.target,
                     " does not speak TLS although its handshake line carried a certificate "
                     "(plaintext server where TLS was expected): ",
                     cause));
  }
  if (absl::StrContains(text, "is not in peer certificate")) {
    return absl::UnauthenticatedError(absl::StrCat("the plugin's certificate at ", config.target,
                                                   " does not name \"", config.server_name,
                                                   "\": ", cause));
  }
  static constexpr absl::string_view kHangUp[] = {
      "Socket closed", "Connection reset", "Broken pipe", "End of TCP stream", "EOF",
  };
  for (absl::string_view marker : kHangUp) {
    if (!absl::StrContains(text, marker)) continue;
    if (config.tls) {
      return absl::UnauthenticatedError(absl::StrCat(
          "the plugin at ", config.target,
          " closed the connection during TLS setup: it refused our client certificate (is its "
          "PLUGIN_CLIENT_CERT this identity's certificate?) or it exited: ",
          cause));
    }
    return absl::UnauthenticatedError(
        absl::StrCat("the plugin at ", config.target,
                     " closed the plaintext connection during HTTP/2 setup: it expects TLS "
                     "(TLS server where plaintext was expected: the handshake line had no "
                     "certificate) or it exited: ",
                     cause));
  }
  return absl::UnavailableError(
      absl::StrCat("cannot reach the plugin at ", config.target, ": ", cause));
}

absl::Status ConnectStatus(const grpc::Status& status, const HealthCheckResponse& response,
                           const ConnConfig& config, absl::Duration timeout) {
  if (status.ok()) {
    if (response.status() == HealthCheckResponse::SERVING) return absl::OkStatus();
    return absl::UnavailableError(
        absl::StrCat("the plugin at ", config.target, " reports health ",
                     HealthCheckResponse::ServingStatus_Name(response.status()),
                     " for service \"plugin\" (SERVING required)"));
  }
  const std::string cause = Truncated(status.error_message());
  switch (status.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::DeadlineExceededError(absl::StrCat("the plugin at ", config.target,
                                                      " did not answer the health check within ",
                                                      absl::FormatDuration(timeout)));
    case grpc::StatusCode::UNAVAILABLE:
      return ClassifyUnavailable(status, config);
    case grpc::StatusCode::UNIMPLEMENTED:
      return absl::FailedPreconditionError(
          absl::StrCat("the plugin at ", config.target,
                       " does not implement grpc.health.v1.Health (not a go-plugin plugin?)"));
    case grpc::StatusCode::NOT_FOUND:
      return absl::FailedPreconditionError(absl::StrCat(
          "the plugin at ", config.target, " has no health status for service \"plugin\""));
    default:
      return absl::Status(
          AbslCode(status.error_code()),
          absl::StrCat("health check of the plugin at ", config.target, " failed: ", cause));
  }
}

// Whether a plugin's health answer declares bulwark's shared host connection.
bool DeclaresSharedHostServices(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  auto it = metadata.find(grpc::string_ref(protocol::kSharedBrokerMetadataKey.data(),
                                           protocol::kSharedBrokerMetadataKey.size()));
  return it != metadata.end() &&
         absl::string_view(it->second.data(), it->second.size()) == protocol::kSharedBrokerVersion;
}

absl::Status CallStatus(absl::string_view method, const grpc::Status& status,
                        absl::Duration timeout) {
  const std::string cause = Truncated(status.error_message());
  switch (status.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::DeadlineExceededError(absl::StrCat(
          method, ": no answer within ", absl::FormatDuration(timeout), " (", cause, ")"));
    case grpc::StatusCode::UNAVAILABLE:
      return absl::UnavailableError(
          absl::StrCat(method, ": the connection to the plugin is broken: ", cause));
    default:
      return absl::Status(AbslCode(status.error_code()), absl::StrCat(method, ": ", cause));
  }
}

// ---------------------------------------------------------------------------------------------
// The broker stream: plugin.GRPCBroker/StartStream, kept open for the connection's life. The
// host only sends (ConnInfo for each offer); what the plugin sends is read and dropped, because
// go-plugin v1.0.1 plugins send ConnInfo only for their own Accept, which a Vault host never
// dials, and Dial(id) on the plugin side sends nothing back.

class BrokerStream final : public grpc::ClientBidiReactor<plugin::ConnInfo, plugin::ConnInfo>,
                           public std::enable_shared_from_this<BrokerStream> {
 public:
  static std::shared_ptr<BrokerStream> Start(plugin::GRPCBroker::Stub& stub,
                                             std::shared_ptr<Lifeline> lifeline,
                                             size_t max_queued) {
    auto stream = std::shared_ptr<BrokerStream>(new BrokerStream(std::move(lifeline), max_queued));
    stream->self_ = stream;  // Released in OnDone.
    stream->lifeline_->BeginOp();
    stub.async()->StartStream(&stream->context_, stream.get());
    // Writes are started from the executor, outside any reaction: the hold keeps OnDone from
    // running (and the reactor from going away) until Cancel releases it.
    stream->AddHold();
    stream->StartRead(&stream->incoming_);
    stream->StartCall();
    return stream;
  }

  // Queues `info` for the plugin. Errors: kUnavailable once the stream has ended;
  // kResourceExhausted when the queue is full. Executor thread.
  absl::Status Send(plugin::ConnInfo info) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ended_) {
        return absl::UnavailableError(
            absl::StrCat("the broker stream to the plugin has ended: ", end_reason_));
      }
      if (write_in_flight_) {
        if (queue_.size() >= max_queued_) {
          return absl::ResourceExhaustedError(absl::StrCat(
              "more than ", max_queued_, " broker messages are waiting to be written"));
        }
        queue_.push_back(std::move(info));
        return absl::OkStatus();
      }
      write_in_flight_ = true;
      writing_ = std::move(info);
    }
    StartWrite(&writing_);
    return absl::OkStatus();
  }

  // Ends the stream. Idempotent. Executor thread.
  void Cancel() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cancelled_) return;
      cancelled_ = true;
      if (!ended_) {
        ended_ = true;
        end_reason_ = "connection closed";
      }
    }
    context_.TryCancel();
    RemoveHold();
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      StartRead(&incoming_);
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!ended_) {
      ended_ = true;
      end_reason_ = "the plugin closed it";
    }
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ok) {
        if (!ended_) {
          ended_ = true;
          end_reason_ = "a write failed";
        }
        queue_.clear();
      }
      if (queue_.empty()) {
        write_in_flight_ = false;
        return;
      }
      writing_ = std::move(queue_.front());
      queue_.pop_front();
    }
    StartWrite(&writing_);
  }

  void OnDone(const grpc::Status& status) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ended_ = true;
      if (end_reason_.empty()) end_reason_ = Truncated(status.error_message());
    }
    std::shared_ptr<Lifeline> lifeline = lifeline_;
    std::shared_ptr<BrokerStream> self = std::move(self_);
    self.reset();  // May destroy this reactor; nothing below touches it.
    lifeline->EndOp();
  }

 private:
  BrokerStream(std::shared_ptr<Lifeline> lifeline, size_t max_queued)
      : lifeline_(std::move(lifeline)), max_queued_(max_queued) {}

  const std::shared_ptr<Lifeline> lifeline_;
  const size_t max_queued_;
  grpc::ClientContext context_;
  plugin::ConnInfo incoming_;  // Only touched by the read reactions.
  plugin::ConnInfo writing_;   // Owned by the write in flight.
  std::shared_ptr<BrokerStream> self_;

  std::mutex mu_;
  std::deque<plugin::ConnInfo> queue_;  // Guarded by mu_.
  bool write_in_flight_ = false;        // Guarded by mu_.
  bool ended_ = false;                  // Guarded by mu_.
  bool cancelled_ = false;              // Guarded by mu_.
  std::string end_reason_;              // Guarded by mu_.
};

// ---------------------------------------------------------------------------------------------
// The stdio stream: plugin.GRPCStdio/StreamStdio. Chunks (at most 1 KiB each in go-plugin) are
// cut into lines per channel; each batch of complete lines goes to the sink on the gRPC thread,
// which posts it to the executor. Unimplemented (go-plugin v1.0.1) simply ends the stream.
//
// Backpressure, as go-plugin intends (its plugin side blocks stdout writes until the host reads):
// the next read starts only when the previous batch has been delivered on the executor (or
// dropped), signalled by destroying the batch's ResumeGuard. So at most one batch per connection
// waits in the executor, however chatty the plugin. A hold keeps the reactor alive while a guard
// is outstanding; it is released when the stream ends.

struct StdioLine {
  int stream;  // 1 stdout, 2 stderr.
  std::string text;
};

class StdioStream;

// Starts the stream's next read when destroyed. Move-only; a moved-from guard does nothing.
class ResumeGuard {
 public:
  ResumeGuard() = default;
  explicit ResumeGuard(std::shared_ptr<StdioStream> stream) : stream_(std::move(stream)) {}
  ResumeGuard(ResumeGuard&&) = default;
  ResumeGuard& operator=(ResumeGuard&& other) {
    Release();
    stream_ = std::move(other.stream_);
    return *this;
  }
  ~ResumeGuard() { Release(); }

 private:
  void Release();
  std::shared_ptr<StdioStream> stream_;
};

using StdioSink = std::function<void(std::vector<StdioLine>, ResumeGuard)>;

class StdioStream final : public grpc::ClientReadReactor<plugin::StdioData>,
                          public std::enable_shared_from_this<StdioStream> {
 public:
  static std::shared_ptr<StdioStream> Start(plugin::GRPCStdio::Stub& stub,
                                            std::shared_ptr<Lifeline> lifeline,
                                            size_t max_line_bytes, StdioSink sink) {
    auto stream = std::shared_ptr<StdioStream>(
        new StdioStream(std::move(lifeline), max_line_bytes, std::move(sink)));
    stream->self_ = stream;
    stream->lifeline_->BeginOp();
    stub.async()->StreamStdio(&stream->context_, &stream->request_, stream.get());
    stream->AddHold();  // Released when the read side ends; see the class comment.
    stream->StartRead(&stream->data_);
    stream->StartCall();
    return stream;
  }

  // Any thread; safe after OnDone because the caller holds a reference.
  void Cancel() { context_.TryCancel(); }

  // Starts the next read. Called once per delivered batch (by its ResumeGuard).
  void Resume() { StartRead(&data_); }

  void OnReadDone(bool ok) override {
    // Reads are serialized (one outstanding at a time), so the splitters need no lock.
    std::vector<StdioLine> lines;
    if (!ok) {
      for (int channel = 1; channel <= 2; ++channel) {
        splitters_[channel - 1].Finish([&](absl::string_view line, bool) {
          lines.push_back({channel, std::string(line)});
        });
      }
      if (!lines.empty()) sink_(std::move(lines), ResumeGuard());
      RemoveHold();
      return;
    }
    if (data_.channel() == plugin::StdioData::STDOUT ||
        data_.channel() == plugin::StdioData::STDERR) {
      const int channel = data_.channel() == plugin::StdioData::STDERR ? 2 : 1;
      splitters_[channel - 1].Feed(data_.data(), [&](absl::string_view line, bool) {
        lines.push_back({channel, std::string(line)});
      });
    }
    if (lines.empty()) {
      StartRead(&data_);  // Only a partial line so far: nothing to wait for.
      return;
    }
    sink_(std::move(lines), ResumeGuard(shared_from_this()));
  }

  void OnDone(const grpc::Status&) override {
    // Unimplemented (go-plugin v1.0.1), Unavailable and Cancelled are all normal ends: stdio is
    // best effort and never fails the connection.
    std::shared_ptr<Lifeline> lifeline = lifeline_;
    std::shared_ptr<StdioStream> self = std::move(self_);
    self.reset();
    lifeline->EndOp();
  }

 private:
  StdioStream(std::shared_ptr<Lifeline> lifeline, size_t max_line_bytes, StdioSink sink)
      : lifeline_(std::move(lifeline)),
        sink_(std::move(sink)),
        splitters_{LineSplitter(max_line_bytes), LineSplitter(max_line_bytes)} {}

  const std::shared_ptr<Lifeline> lifeline_;
  const StdioSink sink_;
  grpc::ClientContext context_;
  google::protobuf::Empty request_;
  plugin::StdioData data_;
  LineSplitter splitters_[2];
  std::shared_ptr<StdioStream> self_;
};

void ResumeGuard::Release() {
  if (stream_ == nullptr) return;
  std::shared_ptr<StdioStream> stream = std::move(stream_);
  stream->Resume();
}

// ---------------------------------------------------------------------------------------------
// Host services: a gRPC server per offer, or one per connection for all its offers when the
// plugin declared bulwark's shared host connection; each on a unix socket in a private directory.

class HostCallReactor;

// One host-service call. Whoever sets `claimed` first (the executor task, OnCancel, a refusal,
// or the offer shutting down) is the only one who calls Finish on `reactor`, which stays valid
// until then (gRPC runs OnDone only after Finish).
struct HostCallSlot {
  std::atomic<bool> claimed{false};
  HostCallReactor* reactor = nullptr;
};

struct OfferShared {
  OfferShared(std::shared_ptr<Lifeline> lifeline_in, HostServices* services_in,
              const GrpcTransportOptions& options)
      : lifeline(std::move(lifeline_in)),
        services(services_in),
        max_in_flight(options.max_host_calls_in_flight),
        max_message_bytes(options.max_message_bytes) {}

  const std::shared_ptr<Lifeline> lifeline;
  HostServices* services;  // Executor thread only; null once withdrawn.
  const size_t max_in_flight;
  const size_t max_message_bytes;

  std::mutex mu;
  bool closed = false;                                      // Guarded by mu.
  uint64_t next_call_id = 1;                                // Guarded by mu.
  std::map<uint64_t, std::shared_ptr<HostCallSlot>> calls;  // Guarded by mu.
};

bool IsHostServiceMethod(absl::string_view method) {
  return absl::StartsWith(method, "/pb.Storage/") || absl::StartsWith(method, "/pb.SystemView/");
}

class HostCallReactor final : public grpc::ServerGenericBidiReactor {
 public:
  HostCallReactor(std::shared_ptr<OfferShared> offer, std::string method,
                  std::chrono::system_clock::time_point deadline)
      : offer_(std::move(offer)), method_(std::move(method)), deadline_(deadline) {
    slot_ = std::make_shared<HostCallSlot>();
    slot_->reactor = this;
  }

  // Registers the call with the offer and starts reading its request, or refuses it.
  void Begin() {
    offer_->lifeline->BeginOp();
    grpc::Status refusal;
    {
      std::lock_guard<std::mutex> lock(offer_->mu);
      if (offer_->closed) {
        refusal = grpc::Status(grpc::StatusCode::UNAVAILABLE, "host services were withdrawn");
      } else if (offer_->calls.size() >= offer_->max_in_flight) {
        refusal = grpc::Status(
            grpc::StatusCode::RESOURCE_EXHAUSTED,
            absl::StrCat("more than ", offer_->max_in_flight, " host-service calls in flight"));
      } else {
        id_ = offer_->next_call_id++;
        offer_->calls.emplace(id_, slot_);
      }
    }
    if (!refusal.ok()) {
      TryFinish(refusal);
    } else if (!IsHostServiceMethod(method_)) {
      TryFinish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                             absl::StrCat("the host serves only pb.Storage and pb.SystemView, not ",
                                          Truncated(method_, 128))));
    } else {
      StartRead(&request_);
    }
  }

  // Answers with `result` (response bytes or error). Only the claimer calls it.
  void Reply(absl::StatusOr<std::string> result) {
    if (!result.ok()) {
      Finish(ToGrpc(result.status()));
      return;
    }
    if (result->size() > offer_->max_message_bytes) {
      Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          absl::StrCat("response of ", result->size(), " bytes exceeds the ",
                                       offer_->max_message_bytes, "-byte message limit")));
      return;
    }
    response_ = ToByteBuffer(*std::move(result));
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }

  // Claims the call and finishes it with `status`, unless someone else already claimed it.
  void TryFinish(const grpc::Status& status) {
    if (!slot_->claimed.exchange(true)) Finish(status);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      TryFinish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "the call ended before its request message arrived"));
      return;
    }
    // Unary: the first message is the request. Handling happens on the executor; the call's
    // deadline is enforced by gRPC, which cancels the call (OnCancel below claims it) if the
    // executor does not get to it in time, so no gRPC thread ever waits for the executor.
    std::string request = FromByteBuffer(request_);
    request_.Clear();
    std::shared_ptr<OfferShared> offer = offer_;
    std::shared_ptr<HostCallSlot> slot = slot_;
    const bool posted = offer_->lifeline->Post([offer, slot, method = method_, deadline = deadline_,
                                                request = std::move(request)]() mutable {
      if (slot->claimed.exchange(true)) return;  // Cancelled, timed out or withdrawn.
      absl::StatusOr<std::string> result;
      if (offer->services == nullptr) {
        result = absl::UnavailableError("host services were withdrawn");
      } else if (std::chrono::system_clock::now() >= deadline) {
        // gRPC's cancellation may still be on its way; nobody would read the answer.
        result = absl::DeadlineExceededError(
            "the call's deadline passed before the host "
            "got to it");
      } else {
        result = offer->services->Handle(method, request);
      }
      slot->reactor->Reply(std::move(result));
    });
    if (!posted) {
      TryFinish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the host is shutting down"));
    }
  }

  void OnCancel() override {
    TryFinish(grpc::Status(grpc::StatusCode::CANCELLED,
                           "cancelled by the plugin, or its deadline passed"));
  }

  void OnDone() override {
    std::shared_ptr<OfferShared> offer = std::move(offer_);
    if (id_ != 0) {
      std::lock_guard<std::mutex> lock(offer->mu);
      offer->calls.erase(id_);
    }
    delete this;
    offer->lifeline->EndOp();
  }

 private:
  std::shared_ptr<OfferShared> offer_;
  const std::string method_;
  const std::chrono::system_clock::time_point deadline_;  // time_point::max() when none.
  std::shared_ptr<HostCallSlot> slot_;
  uint64_t id_ = 0;  // 0 until registered.
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

// Withdraws an offer: refuses new calls, answers the waiting ones with UNAVAILABLE, and never
// calls its HostServices again. Idempotent. Executor thread.
void CloseOffer(OfferShared& offer) {
  std::vector<std::shared_ptr<HostCallSlot>> waiting;
  {
    std::lock_guard<std::mutex> lock(offer.mu);
    offer.closed = true;
    for (auto& [id, slot] : offer.calls) waiting.push_back(slot);
  }
  offer.services = nullptr;
  for (const std::shared_ptr<HostCallSlot>& slot : waiting) {
    if (!slot->claimed.exchange(true)) {
      slot->reactor->Finish(
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "host services were withdrawn"));
    }
  }
}

// A call on the shared server that names no offer it can reach: answered at once, never read.
class RefusedHostCall final : public grpc::ServerGenericBidiReactor {
 public:
  RefusedHostCall(std::shared_ptr<Lifeline> lifeline, const grpc::Status& status)
      : lifeline_(std::move(lifeline)) {
    lifeline_->BeginOp();
    Finish(status);
  }
  void OnDone() override {
    std::shared_ptr<Lifeline> lifeline = std::move(lifeline_);
    delete this;
    lifeline->EndOp();
  }

 private:
  std::shared_ptr<Lifeline> lifeline_;
};

// One gRPC server for host services, on a unix socket in a private directory. Dedicated (go-
// plugin's way): every call goes to the one offer it was started for. Shared (the plugin
// declared bulwark's shared host connection, protocol/wire_names.h): every offer of the
// connection is routed here (Route), and each call goes to the offer its kBrokerIdMetadataKey
// metadata names, so the plugin needs one connection for all its mounts.
class HostServer final : public grpc::CallbackGenericService {
 public:
  // `dedicated` null: a shared server.
  static absl::StatusOr<std::unique_ptr<HostServer>> Start(std::shared_ptr<OfferShared> dedicated,
                                                           const ConnConfig& config,
                                                           const GrpcTransportOptions& options,
                                                           std::shared_ptr<Lifeline> lifeline) {
    std::string parent = options.socket_dir_parent;
    if (parent.empty()) {
      const char* tmpdir = getenv("TMPDIR");
      parent = tmpdir != nullptr && tmpdir[0] != '\0' ? tmpdir : "/tmp";
    }
    std::string dir_template = absl::StrCat(parent, "/bwb-XXXXXX");
    // The socket is "<dir>/s"; mkdtemp keeps the template's length.
    if (dir_template.size() + 2 > kUnixPathBytesMax) {
      return absl::InvalidArgumentError(
          absl::StrCat("socket directory parent is too long for a unix socket path (",
                       kUnixPathBytesMax, " bytes max): ", Truncated(parent, 200)));
    }
    std::vector<char> buffer(dir_template.begin(), dir_template.end());
    buffer.push_back('\0');
    if (mkdtemp(buffer.data()) == nullptr) {
      const int error = errno;
      return absl::Status(absl::ErrnoToStatusCode(error),
                          absl::StrCat("cannot create a broker socket directory under ",
                                       Truncated(parent, 200), ": ", strerror(error)));
    }
    const bool shared = dedicated == nullptr;
    auto server = std::unique_ptr<HostServer>(
        new HostServer(std::move(lifeline), std::move(dedicated), buffer.data()));

    std::shared_ptr<grpc::ServerCredentials> credentials;
    if (config.tls) {
      // go-plugin (#193 and later) serves brokered connections with the host's tls.Config:
      // the host's certificate, the plugin's certificate as the only client CA, and client
      // certificates required and verified.
      grpc::SslServerCredentialsOptions ssl(
          GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
      ssl.pem_root_certs = config.server_cert_pem;
      ssl.pem_key_cert_pairs.push_back({config.client_key_pem, config.client_cert_pem});
      credentials = grpc::SslServerCredentials(ssl);
    } else {
      credentials = grpc::InsecureServerCredentials();
    }
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("unix:", server->socket_), credentials);
    builder.RegisterCallbackGenericService(server.get());
    builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
    builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
    if (shared) {
      // All mounts' calls share a connection: bound its concurrent calls as one offer's.
      builder.AddChannelArgument(
          GRPC_ARG_MAX_CONCURRENT_STREAMS,
          static_cast<int>(std::min<size_t>(options.max_host_calls_in_flight,
                                            static_cast<size_t>(std::numeric_limits<int>::max()))));
    }
    server->server_ = builder.BuildAndStart();
    if (server->server_ == nullptr) {
      return absl::InternalError(
          absl::StrCat("gRPC could not serve host services on ", server->socket_));
    }
    return server;
  }

  ~HostServer() override { Stop(); }

  const std::string& socket_path() const { return socket_; }

  // Shared server: calls naming `id` go to `offer` from now on. Executor thread.
  void Route(uint32_t id, std::shared_ptr<OfferShared> offer) {
    std::lock_guard<std::mutex> lock(routes_mu_);
    routes_[id] = std::move(offer);
  }
  // Shared server: calls naming `id` are refused from now on. Executor thread.
  void Unroute(uint32_t id) {
    std::lock_guard<std::mutex> lock(routes_mu_);
    routes_.erase(id);
  }

  // Withdraws every offer this server reaches, shuts the server down and removes the socket
  // and its directory. After it returns, no HostServices is called through it again. Executor
  // thread. Blocks only while gRPC tears the server down: every call has been finished before
  // Shutdown, so none is left for it to wait on.
  void Stop() {
    std::map<uint32_t, std::shared_ptr<OfferShared>> routes;
    {
      std::lock_guard<std::mutex> lock(routes_mu_);
      routes.swap(routes_);
    }
    for (auto& [id, offer] : routes) CloseOffer(*offer);
    if (dedicated_ != nullptr) CloseOffer(*dedicated_);
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now());
      server_.reset();
    }
    if (!socket_.empty()) {
      unlink(socket_.c_str());
      rmdir(dir_.c_str());
      socket_.clear();
    }
  }

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    std::shared_ptr<OfferShared> offer = dedicated_;
    if (offer == nullptr) {
      absl::StatusOr<std::shared_ptr<OfferShared>> routed = RouteFor(*context);
      if (!routed.ok()) return new RefusedHostCall(lifeline_, ToGrpc(routed.status()));
      offer = *std::move(routed);
    }
    auto* reactor = new HostCallReactor(std::move(offer), context->method(), context->deadline());
    reactor->Begin();
    return reactor;
  }

 private:
  HostServer(std::shared_ptr<Lifeline> lifeline, std::shared_ptr<OfferShared> dedicated,
             std::string dir)
      : lifeline_(std::move(lifeline)),
        dedicated_(std::move(dedicated)),
        dir_(std::move(dir)),
        socket_(absl::StrCat(dir_, "/s")) {}

  // The offer a call on the shared server names. gRPC thread.
  absl::StatusOr<std::shared_ptr<OfferShared>> RouteFor(
      const grpc::GenericCallbackServerContext& context) {
    const grpc::string_ref key(protocol::kBrokerIdMetadataKey.data(),
                               protocol::kBrokerIdMetadataKey.size());
    auto range = context.client_metadata().equal_range(key);
    const auto count = std::distance(range.first, range.second);
    if (count != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a call on the shared host-service connection must name exactly one broker id in \"",
          protocol::kBrokerIdMetadataKey, "\" metadata; this one names ", count));
    }
    const absl::string_view text(range.first->second.data(), range.first->second.size());
    uint32_t id = 0;
    if (!absl::SimpleAtoi(text, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("\"", protocol::kBrokerIdMetadataKey,
                                                     "\" is not a broker id: \"",
                                                     Truncated(text, 32), "\""));
    }
    std::lock_guard<std::mutex> lock(routes_mu_);
    auto it = routes_.find(id);
    if (it == routes_.end()) {
      return absl::NotFoundError(absl::StrCat("no host services are offered under broker id ", id,
                                              " on this connection (never offered, or withdrawn)"));
    }
    return it->second;
  }

  const std::shared_ptr<Lifeline> lifeline_;
  const std::shared_ptr<OfferShared> dedicated_;  // Null for the shared server.
  const std::string dir_;
  std::string socket_;  // Cleared once removed.
  std::unique_ptr<grpc::Server> server_;
  std::mutex routes_mu_;
  std::map<uint32_t, std::shared_ptr<OfferShared>> routes_;  // Guarded by routes_mu_.
};

// ---------------------------------------------------------------------------------------------
// A connection's state, shared by the PluginConnection object, gRPC callbacks and posted tasks.

struct PendingCall {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  std::string method;  // Outlives the call: gRPC may keep a pointer to it.
  absl::Duration timeout;
  CallDone done;  // Taken exactly once, under ConnState::mu_.
  // The async path (GrpcTransportOptions::loop_queue) only.
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
};

using StdioHandler = absl::AnyInvocable<void(int, absl::string_view)>;

class ConnState : public std::enable_shared_from_this<ConnState> {
 public:
  ConnState(std::shared_ptr<Lifeline> lifeline, GrpcTransportOptions options,
            std::shared_ptr<grpc::Channel> channel, ConnConfig config)
      : lifeline_(std::move(lifeline)),
        options_(std::move(options)),
        config_(std::move(config)),
        channel_(std::move(channel)),
        generic_(channel_),
        broker_stub_(plugin::GRPCBroker::NewStub(channel_)),
        stdio_stub_(plugin::GRPCStdio::NewStub(channel_)) {}

  ~ConnState() {
    // Normally Close ran already (the connection object calls it); these are idempotent.
    stdio_resume_ = ResumeGuard();
    if (broker_ != nullptr) broker_->Cancel();
    if (stdio_ != nullptr) stdio_->Cancel();
  }

  // Opens the broker and stdio streams. Executor thread, once.
  void Start() {
    broker_ = BrokerStream::Start(*broker_stub_, lifeline_, options_.max_broker_messages_queued);
    std::weak_ptr<ConnState> weak = weak_from_this();
    stdio_ = StdioStream::Start(*stdio_stub_, lifeline_, options_.max_stdio_line_bytes,
                                [weak](std::vector<StdioLine> lines, ResumeGuard resume) {
                                  if (std::shared_ptr<ConnState> self = weak.lock()) {
                                    self->PostStdio(std::move(lines), std::move(resume));
                                  }
                                });
  }

  void Call(absl::string_view method, std::string request, const CallOptions& options,
            CallDone done) {
    absl::Status refusal = CheckCall(method, request, options);
    auto call = std::make_shared<PendingCall>();
    uint64_t id = 0;
    if (refusal.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) {
        refusal = absl::CancelledError(
            absl::StrCat(Truncated(method, 128), ": the plugin connection is closed"));
      } else if (calls_.size() >= options_.max_outstanding_calls) {
        refusal = absl::ResourceExhaustedError(
            absl::StrCat(Truncated(method, 128), ": more than ", options_.max_outstanding_calls,
                         " calls outstanding on this plugin connection"));
      } else {
        id = next_call_id_++;
        call->done = std::move(done);
        calls_.emplace(id, call);
      }
    }
    if (!refusal.ok()) {
      // Never inline: the contract promises `done` runs from the executor later.
      lifeline_->Post([done = std::move(done), refusal]() mutable { done(refusal); });
      return;
    }
    call->method = std::string(method);
    call->timeout = options.timeout;
    call->request = ToByteBuffer(std::move(request));
    call->context.set_deadline(DeadlineAfter(options.timeout));
    if (!options.multiplex_id.empty()) {
      call->context.AddMetadata(std::string(kMultiplexIdMetadataKey), options.multiplex_id);
    }
    lifeline_->BeginOp();
    std::shared_ptr<ConnState> self = shared_from_this();
    if (options_.loop_queue != nullptr) {
      // The loop thread takes the completion off its own queue (LoopCallTag::Run).
      grpc::CompletionQueue* cq = options_.loop_queue->cq();
      call->reader = generic_.PrepareUnaryCall(&call->context, call->method, call->request, cq);
      call->reader->StartCall();
      auto* tag = new LoopCallTag(std::move(self), call, id);
      call->reader->Finish(&call->response, &call->status, tag);
      return;
    }
    generic_.UnaryCall(&call->context, call->method, grpc::StubOptions(), &call->request,
                       &call->response, [self, call, id](grpc::Status status) mutable {
                         self->CompleteCall(id, *call, status);
                         // Let go of everything before EndOp: once the transport sees no
                         // operation in flight it may drop its last channel references.
                         std::shared_ptr<Lifeline> lifeline = self->lifeline_;
                         call.reset();
                         self.reset();
                         lifeline->EndOp();
                       });
  }

  absl::StatusOr<uint32_t> Offer(HostServices* services) {
    if (services == nullptr) {
      return absl::InvalidArgumentError("OfferHostServices needs non-null services");
    }
    if (IsClosed()) {
      return absl::FailedPreconditionError("the plugin connection is closed");
    }
    if (offers_.size() >= options_.max_offered_host_services) {
      return absl::ResourceExhaustedError(
          absl::StrCat("more than ", options_.max_offered_host_services,
                       " host-service offers open on this plugin connection"));
    }
    const bool shared = config_.shared_host_services && options_.share_host_services;
    if (!shared && dedicated_servers_ >= options_.max_dedicated_host_servers) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "more than ", options_.max_dedicated_host_servers,
          " host-service servers open on this plugin connection (a plugin that does not declare "
          "bulwark's shared host connection needs one per mount)"));
    }
    if (last_broker_id_ >= options_.max_broker_ids) {
      return absl::ResourceExhaustedError(absl::StrCat("this plugin connection has used all ",
                                                       options_.max_broker_ids, " broker ids"));
    }
    const uint32_t id = ++last_broker_id_;
    Offered offered{std::make_shared<OfferShared>(lifeline_, services, options_), nullptr};
    plugin::ConnInfo info;
    info.set_service_id(id);
    if (shared) {
      if (shared_server_ == nullptr) {
        ASSIGN_OR_RETURN(shared_server_, HostServer::Start(nullptr, config_, options_, lifeline_));
      }
      shared_server_->Route(id, offered.offer);
      info.set_network(std::string(protocol::kSharedBrokerNetwork));
      info.set_address(shared_server_->socket_path());
    } else {
      ASSIGN_OR_RETURN(offered.server,
                       HostServer::Start(offered.offer, config_, options_, lifeline_));
      info.set_network("unix");
      info.set_address(offered.server->socket_path());
    }
    absl::Status sent = broker_->Send(std::move(info));
    if (!sent.ok()) {
      Unoffer(id, offered);
      return Annotate(sent, absl::StrCat("offering broker id ", id));
    }
    if (offered.server != nullptr) ++dedicated_servers_;
    offers_.emplace(id, std::move(offered));
    return id;
  }

  void Withdraw(uint32_t broker_id) {
    auto it = offers_.find(broker_id);
    if (it == offers_.end()) return;
    Offered offered = std::move(it->second);
    offers_.erase(it);
    if (offered.server != nullptr) --dedicated_servers_;
    Unoffer(broker_id, offered);
  }

  void SetStdioHandler(absl::AnyInvocable<void(int, absl::string_view)> handler) {
    stdio_handler_ = std::make_shared<StdioHandler>(std::move(handler));
  }

  void Close() {
    std::map<uint64_t, std::shared_ptr<PendingCall>> calls;
    ResumeGuard stdio_resume;  // Released last, after the stream is cancelled.
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;
      closed_ = true;
      calls.swap(calls_);
      stdio_resume = std::move(stdio_resume_);
    }
    for (auto& [id, call] : calls) {
      lifeline_->Post([done = std::move(call->done), method = call->method]() mutable {
        done(absl::CancelledError(
            absl::StrCat(Truncated(method, 128), ": the plugin connection was closed")));
      });
      call->context.TryCancel();
    }
    // Offers first: their servers must stop before the broker stream that announced them.
    std::map<uint32_t, Offered> offers;
    offers.swap(offers_);
    for (auto& [id, offered] : offers) Unoffer(id, offered);
    offers.clear();
    dedicated_servers_ = 0;
    if (shared_server_ != nullptr) {
      shared_server_->Stop();
      shared_server_.reset();
    }
    if (broker_ != nullptr) broker_->Cancel();
    if (stdio_ != nullptr) stdio_->Cancel();
    // The streams stay referenced until this state is destroyed: their reactors release
    // themselves in OnDone, and Cancel must not run on a destroyed context.
    //
    // The handler is core code: release it on the executor (this state itself may be destroyed
    // by a gRPC thread), and not here, since Close may run inside it. Then let the keeper drop
    // this connection's channel once the last completion has let go of it.
    std::shared_ptr<Lifeline> lifeline = lifeline_;
    lifeline_->Post([handler = std::move(stdio_handler_), lifeline]() mutable {
      handler.reset();
      lifeline->SweepChannels();
    });
  }

 private:
  absl::Status CheckCall(absl::string_view method, const std::string& request,
                         const CallOptions& options) const {
    if (method.size() < 4 || method.size() > kMethodBytesMax || method[0] != '/' ||
        method.find('/', 1) == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "method must be \"/package.Service/Method\", got \"", Truncated(method, 128), "\""));
    }
    RETURN_IF_ERROR(ValidateTimeout(options.timeout, "call"));
    if (options.timeout <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(Truncated(method, 128), ": timeout ",
                                                      absl::FormatDuration(options.timeout),
                                                      " already passed"));
    }
    if (options.multiplex_id.size() > kMultiplexIdBytesMax) {
      return absl::InvalidArgumentError(
          absl::StrCat("multiplex id longer than ", kMultiplexIdBytesMax, " bytes"));
    }
    for (char c : options.multiplex_id) {
      // gRPC rejects non-printable ASCII in text metadata.
      if (c < 0x20 || c > 0x7e) {
        return absl::InvalidArgumentError("multiplex id must be printable ASCII");
      }
    }
    if (request.size() > options_.max_message_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat(Truncated(method, 128), ": request of ", request.size(),
                       " bytes exceeds the ", options_.max_message_bytes, "-byte message limit"));
    }
    return absl::OkStatus();
  }

  bool IsClosed() {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

  // One offer: its state, and its own server unless it is routed through the shared one.
  struct Offered {
    std::shared_ptr<OfferShared> offer;
    std::unique_ptr<HostServer> server;
  };

  // Withdraws `offered` (id `id`) from whichever server reaches it. Executor thread.
  void Unoffer(uint32_t id, Offered& offered) {
    if (shared_server_ != nullptr) shared_server_->Unroute(id);
    CloseOffer(*offered.offer);
    if (offered.server != nullptr) offered.server->Stop();
  }

  // The completion of an async call on the loop's queue: runs on the executor's thread.
  class LoopCallTag final : public LoopQueueTag {
   public:
    LoopCallTag(std::shared_ptr<ConnState> self, std::shared_ptr<PendingCall> call, uint64_t id)
        : self_(std::move(self)), call_(std::move(call)), id_(id) {}
    void Run(bool /*ok*/) override {
      // Finish always completes with ok; the outcome is in the call's status.
      std::shared_ptr<Lifeline> lifeline = self_->lifeline_;
      std::optional<CallDone> done;
      absl::StatusOr<std::string> result = self_->TakeResult(id_, *call_, call_->status, &done);
      if (done.has_value()) {
        lifeline->RunHere([&done, &result] { (*done)(std::move(result)); });
      }
      delete this;  // Lets go of the call and the connection before EndOp, as below.
      lifeline->EndOp();
    }

   private:
    std::shared_ptr<ConnState> self_;
    std::shared_ptr<PendingCall> call_;
    const uint64_t id_;
  };

  // The call's result, and its `done` unless Close already answered it. Any thread.
  absl::StatusOr<std::string> TakeResult(uint64_t id, PendingCall& call, const grpc::Status& status,
                                         std::optional<CallDone>* done) {
    absl::StatusOr<std::string> result =
        status.ok() ? absl::StatusOr<std::string>(FromByteBuffer(call.response))
                    : CallStatus(call.method, status, call.timeout);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(id);
    if (it == calls_.end()) return result;  // Close already answered it.
    done->emplace(std::move(it->second->done));
    calls_.erase(it);
    return result;
  }

  // gRPC thread.
  void CompleteCall(uint64_t id, PendingCall& call, const grpc::Status& status) {
    std::optional<CallDone> done;
    absl::StatusOr<std::string> result = TakeResult(id, call, status, &done);
    if (!done.has_value()) return;
    lifeline_->Post([done = *std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }

  // gRPC thread. `resume` is parked here until the lines are delivered (or the connection
  // closes), then destroyed outside our lock: destroying it starts the stream's next read.
  void PostStdio(std::vector<StdioLine> lines, ResumeGuard resume) {
    ResumeGuard previous;  // Empty by construction (one batch at a time); released unlocked.
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;  // `resume` is released on return, after the lock.
      previous = std::move(stdio_resume_);
      stdio_resume_ = std::move(resume);
      lifeline_->Post([self = shared_from_this(), lines = std::move(lines)] {
        // A local reference: the handler may close the connection (which releases the member).
        std::shared_ptr<StdioHandler> handler = self->stdio_handler_;
        for (const StdioLine& line : lines) {
          if (self->IsClosed() || handler == nullptr || !*handler) break;
          (*handler)(line.stream, line.text);
        }
        ResumeGuard resume;
        {
          std::lock_guard<std::mutex> lock(self->mu_);
          resume = std::move(self->stdio_resume_);
        }
      });
    }
  }

  const std::shared_ptr<Lifeline> lifeline_;
  const GrpcTransportOptions options_;
  const ConnConfig config_;
  const std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub generic_;
  const std::unique_ptr<plugin::GRPCBroker::Stub> broker_stub_;
  const std::unique_ptr<plugin::GRPCStdio::Stub> stdio_stub_;

  std::mutex mu_;
  bool closed_ = false;                                     // Guarded by mu_.
  uint64_t next_call_id_ = 1;                               // Guarded by mu_.
  std::map<uint64_t, std::shared_ptr<PendingCall>> calls_;  // Guarded by mu_.
  ResumeGuard stdio_resume_;  // Guarded by mu_; destroy only outside mu_.

  // Executor thread only.
  std::shared_ptr<BrokerStream> broker_;
  std::shared_ptr<StdioStream> stdio_;
  uint32_t last_broker_id_ = 0;
  std::map<uint32_t, Offered> offers_;
  size_t dedicated_servers_ = 0;               // Offers with their own server.
  std::unique_ptr<HostServer> shared_server_;  // Made on the first shared offer.
  std::shared_ptr<StdioHandler> stdio_handler_;
};

class GrpcPluginConnection final : public PluginConnection {
 public:
  explicit GrpcPluginConnection(std::shared_ptr<ConnState> state) : state_(std::move(state)) {}
  ~GrpcPluginConnection() override { state_->Close(); }

  void Call(absl::string_view method, std::string request, const CallOptions& options,
            CallDone done) override {
    state_->Call(method, std::move(request), options, std::move(done));
  }
  absl::StatusOr<uint32_t> OfferHostServices(HostServices* services) override {
    return state_->Offer(services);
  }
  void WithdrawHostServices(uint32_t broker_id) override { state_->Withdraw(broker_id); }
  void SetStdioHandler(absl::AnyInvocable<void(int, absl::string_view)> handler) override {
    state_->SetStdioHandler(std::move(handler));
  }
  void Close() override { state_->Close(); }

 private:
  const std::shared_ptr<ConnState> state_;
};

using ConnectDone = absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<PluginConnection>>)>;

struct PendingConnect {
  grpc::ClientContext context;
  HealthCheckRequest request;
  HealthCheckResponse response;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<Health::Stub> stub;
  ConnConfig config;
  absl::Duration timeout;
  ConnectDone done;
};

}  // namespace

// ---------------------------------------------------------------------------------------------

struct GrpcPluginTransport::Impl {
  Impl(Executor& executor_in, GrpcTransportOptions options_in)
      : options(std::move(options_in)), lifeline(std::make_shared<Lifeline>(executor_in)) {}

  const GrpcTransportOptions options;
  const std::shared_ptr<Lifeline> lifeline;

  std::mutex mu;
  uint64_t next_connect_id = 1;                                  // Guarded by mu.
  std::map<uint64_t, std::shared_ptr<PendingConnect>> connects;  // Guarded by mu.
};

GrpcPluginTransport::GrpcPluginTransport(Executor& executor, GrpcTransportOptions options)
    : impl_(std::make_shared<Impl>(executor, std::move(options))) {
  CHECK(impl_->options.max_message_bytes > 0 &&
        impl_->options.max_message_bytes <= static_cast<size_t>(std::numeric_limits<int>::max()))
      << "max_message_bytes must be in (0, 2^31): " << impl_->options.max_message_bytes;
  CHECK(impl_->options.max_stdio_line_bytes > 0) << "max_stdio_line_bytes must be positive";
}

GrpcPluginTransport::~GrpcPluginTransport() {
  impl_->lifeline->ShutDown();
  std::vector<std::shared_ptr<PendingConnect>> connects;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (auto& [id, connect] : impl_->connects) connects.push_back(connect);
  }
  for (const std::shared_ptr<PendingConnect>& connect : connects) connect->context.TryCancel();
  // Calls on the loop's queue complete only as this (the executor's) thread takes them off it.
  GrpcLoopQueue* const queue = impl_->options.loop_queue;
  // A gRPC completion still missing after the grace period can no longer reach the executor
  // (the lifeline is shut) and owns everything it touches, except that it must not drop the last
  // reference to a channel (see the channel keeper): then the kept channels are leaked on purpose.
  std::vector<std::shared_ptr<grpc::Channel>> channels = impl_->lifeline->TakeChannels();
  bool idle;
  if (queue == nullptr) {
    idle = impl_->lifeline->WaitIdle(impl_->options.shutdown_grace);
  } else {
    const absl::Time end = absl::Now() + impl_->options.shutdown_grace;
    idle = impl_->lifeline->WaitIdle(absl::ZeroDuration());
    while (!idle && absl::Now() < end) {
      queue->Drain(absl::Milliseconds(5));
      idle = impl_->lifeline->WaitIdle(absl::ZeroDuration());
    }
  }
  if (!idle) {
    new std::vector<std::shared_ptr<grpc::Channel>>(std::move(channels));  // Deliberate leak.
  }
}

size_t GrpcPluginTransport::operations_in_flight() const { return impl_->lifeline->ops(); }

absl::StatusOr<std::unique_ptr<ClientIdentity>> GrpcPluginTransport::NewClientIdentity() {
  // Production adapter code: the certificate's validity is anchored to the real wall clock, as
  // the plugin that verifies it uses the real clock too.
  ASSIGN_OR_RETURN(protocol::SelfSignedCert cert,
                   protocol::GenerateSelfSignedCert(protocol::KeyType::kP256,
                                                    protocol::kGoPluginCertValidity, absl::Now()));
  return std::unique_ptr<ClientIdentity>(
      new GrpcClientIdentity(std::move(cert.cert_pem), std::move(cert.key_pem)));
}

absl::StatusOr<std::unique_ptr<ClientIdentity>> GrpcPluginTransport::NewSharedIdentity(
    SharedTlsMaterial* material) {
  // Real wall clock, as for NewClientIdentity: the plugin verifies with its real clock.
  ASSIGN_OR_RETURN(protocol::SelfSignedCert cert, protocol::GenerateVaultPluginCert(absl::Now()));
  ASSIGN_OR_RETURN(std::string key_der, protocol::EcPrivateKeyPemToDer(cert.key_pem));
  material->cert_der = cert.cert_der;
  material->key_der = crypto::SecureBuffer(key_der);
  material->server_name = cert.common_name;
  volatile char* wipe = key_der.data();
  for (size_t i = 0; i < key_der.size(); ++i) wipe[i] = 0;
  return std::unique_ptr<ClientIdentity>(
      new GrpcClientIdentity(std::move(cert.cert_pem), std::move(cert.key_pem)));
}

void GrpcPluginTransport::Connect(const PluginEndpoint& endpoint, const ClientIdentity* identity,
                                  absl::Duration timeout, ConnectDone done) {
  auto pending = std::make_shared<PendingConnect>();
  absl::Status invalid = [&]() -> absl::Status {
    RETURN_IF_ERROR(ValidateTimeout(timeout, "connect"));
    if (timeout <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("connect timeout must be positive, got ", absl::FormatDuration(timeout)));
    }
    ASSIGN_OR_RETURN(pending->config.target, TargetFor(endpoint));
    if (endpoint.server_cert_der.empty()) return absl::OkStatus();
    pending->config.tls = true;
    const auto* ours = dynamic_cast<const GrpcClientIdentity*>(identity);
    if (ours == nullptr) {
      return absl::InvalidArgumentError(
          identity == nullptr
              ? "the plugin uses TLS but no client identity was given"
              : "the client identity was not made by GrpcPluginTransport::NewClientIdentity");
    }
    absl::StatusOr<std::string> server_cert_pem = protocol::CertDerToPem(endpoint.server_cert_der);
    if (!server_cert_pem.ok()) {
      return Annotate(server_cert_pem.status(), "the plugin's certificate from its handshake line");
    }
    pending->config.server_cert_pem = *std::move(server_cert_pem);
    if (!endpoint.tls_server_name.empty()) pending->config.server_name = endpoint.tls_server_name;
    pending->config.client_cert_pem = ours->cert_pem();
    pending->config.client_key_pem = ours->key_pem();
    return absl::OkStatus();
  }();
  if (!invalid.ok()) {
    impl_->lifeline->Post([done = std::move(done), invalid]() mutable { done(invalid); });
    return;
  }

  pending->timeout = timeout;
  pending->done = std::move(done);
  pending->channel =
      grpc::CreateCustomChannel(pending->config.target, ChannelCredentialsFor(pending->config),
                                ChannelArgsFor(pending->config, impl_->options));
  impl_->lifeline->SweepChannels();
  impl_->lifeline->KeepChannel(pending->channel);
  pending->stub = Health::NewStub(pending->channel);
  pending->request.set_service(kHealthServiceName);
  // Not wait_for_ready: a connection attempt that fails (refused, TLS error) fails the check at
  // once instead of retrying until the deadline, so the cause reaches the caller.
  pending->context.set_deadline(DeadlineAfter(timeout));

  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    id = impl_->next_connect_id++;
    impl_->connects.emplace(id, pending);
  }
  std::shared_ptr<Impl> impl = impl_;
  impl->lifeline->BeginOp();
  pending->stub->async()->Check(
      &pending->context, &pending->request, &pending->response,
      [impl, pending, id](grpc::Status status) mutable {
        absl::Status result =
            ConnectStatus(status, pending->response, pending->config, pending->timeout);
        if (result.ok()) {
          pending->config.shared_host_services =
              DeclaresSharedHostServices(pending->context.GetServerInitialMetadata());
        }
        {
          std::lock_guard<std::mutex> lock(impl->mu);
          impl->connects.erase(id);
        }
        std::shared_ptr<Lifeline> lifeline = impl->lifeline;
        lifeline->Post([impl = std::move(impl), pending = std::move(pending), result]() mutable {
          if (!result.ok()) {
            pending->done(result);
            return;
          }
          auto state = std::make_shared<ConnState>(impl->lifeline, impl->options, pending->channel,
                                                   pending->config);
          state->Start();
          pending->done(std::unique_ptr<PluginConnection>(new GrpcPluginConnection(state)));
        });
        // The captures were moved into the task (or destroyed with it if the transport is
        // going away) before EndOp; see the channel keeper in Lifeline.
        lifeline->EndOp();
      });
}

}  // namespace bulwark::rpc
