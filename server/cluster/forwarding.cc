#include "server/cluster/forwarding.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/ha/forwarding.h"
#include "faultinject/failpoint.h"
#include "proto/cluster/forwarding.grpc.pb.h"

namespace bulwark::cluster {
namespace {

int ClampToInt(size_t n) { return n > size_t{1} << 30 ? 1 << 30 : static_cast<int>(n); }

void ToProto(const http::Request& in, Request& out) {
  out.set_method(in.method);
  out.set_path(in.path);
  for (const auto& [name, value] : in.query) {
    Field* f = out.add_query();
    f->set_name(name);
    f->set_value(value);
  }
  for (const auto& [name, value] : in.headers) {
    Field* f = out.add_headers();
    f->set_name(name);
    f->set_value(value);
  }
  out.set_body(in.body);
  out.set_remote_address(in.remote_address);
}

http::Request FromProto(const Request& in) {
  http::Request out;
  out.method = in.method();
  out.path = in.path();
  for (const Field& f : in.query()) out.query.emplace_back(f.name(), f.value());
  for (const Field& f : in.headers()) {
    out.headers.emplace_back(absl::AsciiStrToLower(f.name()), f.value());
  }
  out.body = in.body();
  out.remote_address = in.remote_address();
  return out;
}

void ToProto(http::Response in, Response& out) {
  out.set_status_code(in.status);
  out.set_content_type(std::move(in.content_type));
  for (auto& [name, value] : in.headers) {
    Field* f = out.add_headers();
    f->set_name(std::move(name));
    f->set_value(std::move(value));
  }
  out.set_body(std::move(in.body));
}

http::Response FromProto(Response in) {
  http::Response out;
  out.status = in.status_code();
  out.content_type = std::move(*in.mutable_content_type());
  for (Field& f : *in.mutable_headers()) {
    out.headers.emplace_back(std::move(*f.mutable_name()), std::move(*f.mutable_value()));
  }
  out.body = std::move(*in.mutable_body());
  return out;
}

}  // namespace

absl::StatusOr<std::string> ClusterHostPort(absl::string_view cluster_addr) {
  absl::string_view a = cluster_addr;
  if (!absl::ConsumePrefix(&a, "https://")) absl::ConsumePrefix(&a, "http://");
  a = a.substr(0, a.find('/'));
  const size_t colon = a.rfind(':');
  uint32_t port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(a.substr(colon + 1), &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cluster address \"", cluster_addr, "\": expected host:port, e.g. https://10.0.0.1:8201"));
  }
  return std::string(a);
}

// ---- Server -----------------------------------------------------------------------------------

struct ForwardingServer::Impl final : public RequestForwarding::CallbackService {
  ForwardingLimits limits;
  Handler handler;
  std::atomic<int> in_flight{0};
  std::unique_ptr<grpc::Server> server;
  std::once_flag shutdown_once;

  grpc::ServerUnaryReactor* ForwardRequest(grpc::CallbackServerContext* context,
                                           const Request* request, Response* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (in_flight.fetch_add(1) >= limits.max_in_flight) {
      in_flight.fetch_sub(1);
      reactor->Finish(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat("more than ", limits.max_in_flight, " forwarded requests in flight")));
      return reactor;
    }
    http::Request r = FromProto(*request);
    // Never forwarded again: the receiving node answers it, or redirects.
    r.headers.emplace_back(ha::kForwardedHeader, "true");
    handler(std::move(r), [this, reactor, response](http::Response answer) {
      ToProto(std::move(answer), *response);
      in_flight.fetch_sub(1);
      // Testing (BULWARK_FAILPOINTS): the answer is lost after the request was applied, as when
      // the stream breaks late; the sender must report an unknown outcome, not redirect.
      if (faultinject::Action lost = BW_FAILPOINT("cluster.forward.lose_answer");
          lost.kind == faultinject::ActionKind::kReturn) {
        reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(lost.code),
                                     "failpoint cluster.forward.lose_answer"));
        return;
      }
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }
};

absl::StatusOr<std::unique_ptr<ForwardingServer>> ForwardingServer::Start(std::string address,
                                                                          const ha::ClusterTls& tls,
                                                                          ForwardingLimits limits,
                                                                          Handler handler) {
  if (tls.ca_pem.empty() || tls.cert_pem.empty() || tls.key_pem.empty()) {
    return absl::InvalidArgumentError("cluster port: TLS material missing");
  }
  auto impl = std::make_unique<Impl>();
  impl->limits = limits;
  impl->handler = std::move(handler);
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = tls.ca_pem;
  ssl.pem_key_cert_pairs.push_back({tls.key_pem, tls.cert_pem});
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::SslServerCredentials(ssl), &port);
  builder.SetMaxReceiveMessageSize(ClampToInt(limits.max_message_bytes));
  builder.SetMaxSendMessageSize(ClampToInt(limits.max_message_bytes));
  builder.RegisterService(impl.get());
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cluster port: cannot listen on ", address, " (in use, or not an address)"));
  }
  std::unique_ptr<ForwardingServer> s(new ForwardingServer());
  s->address_ = absl::StrCat(address.substr(0, address.rfind(':')), ":", port);
  s->impl_ = std::move(impl);
  return s;
}

void ForwardingServer::Shutdown(absl::Duration grace) {
  std::call_once(impl_->shutdown_once, [&] {
    impl_->server->Shutdown(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(grace));
    impl_->server->Wait();
  });
}

ForwardingServer::~ForwardingServer() { Shutdown(absl::ZeroDuration()); }

// ---- Client -----------------------------------------------------------------------------------

struct ForwardingClient::Impl {
  std::string endpoint;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<RequestForwarding::Stub> stub;
};

ForwardingClient::ForwardingClient(ha::ClusterTls tls, ForwardingLimits limits)
    : tls_(std::move(tls)), limits_(limits) {}

ForwardingClient::~ForwardingClient() {
  // Calls hold no pointer to the client but the counter below; wait for them (each has a
  // deadline) so that none completes into a torn-down server.
  const absl::Time give_up = absl::Now() + limits_.connect_timeout + limits_.deadline;
  while (in_flight_.load() > 0 && absl::Now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

namespace {

struct CallState {
  grpc::ClientContext context;
  Request request;
  Response response;
  ForwardingClient::Done done;
  std::shared_ptr<ForwardingClient::Impl> impl;  // The channel lives while the call does.
  std::string what;                              // "METHOD path" for errors; never headers.
  std::atomic<int>* in_flight = nullptr;
  absl::Duration deadline;
};

void Complete(std::unique_ptr<CallState> call, absl::StatusOr<http::Response> result) {
  ForwardingClient::Done done = std::move(call->done);
  std::atomic<int>* in_flight = call->in_flight;
  call.reset();
  in_flight->fetch_sub(1);
  std::move(done)(std::move(result));
}

// Sends the call on a connection that is up. From here on the request may reach the active node:
// every failure is of unknown outcome (never ha::NotSent), whatever its gRPC code (even a
// RESOURCE_EXHAUSTED may be the answer's size, after the active node applied the request).
void StartCall(std::unique_ptr<CallState> owned) {
  CallState* call = owned.release();
  call->context.set_deadline(std::chrono::system_clock::now() +
                             absl::ToChronoNanoseconds(call->deadline));
  call->impl->stub->async()->ForwardRequest(
      &call->context, &call->request, &call->response, [call](grpc::Status status) {
        std::unique_ptr<CallState> owned(call);
        if (status.ok()) {
          http::Response answer = FromProto(std::move(owned->response));
          return Complete(std::move(owned), std::move(answer));
        }
        absl::Status error(
            static_cast<absl::StatusCode>(status.error_code()),
            absl::StrCat("cluster port ", owned->impl->endpoint, ": forwarding ", owned->what, ": ",
                         status.error_message(), " (", ha::kOutcomeUnknownText, ")"));
        Complete(std::move(owned), std::move(error));
      });
}

// Waits (on a thread of its own: the caller is the event loop) until the channel is connected,
// then sends; a channel that fails to connect, or is not connected within `connect_timeout`,
// fails the call before anything was sent.
void ConnectThenStart(std::unique_ptr<CallState> call, absl::Duration connect_timeout) {
  std::thread([call = std::move(call), connect_timeout]() mutable {
    grpc::Channel& channel = *call->impl->channel;
    const auto give_up =
        std::chrono::system_clock::now() + absl::ToChronoNanoseconds(connect_timeout);
    for (grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);;) {
      if (state == GRPC_CHANNEL_READY) return StartCall(std::move(call));
      const bool failed = state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN;
      if (failed || !channel.WaitForStateChange(state, give_up)) {
        absl::Status error = absl::UnavailableError(absl::StrCat(
            "cluster port ", call->impl->endpoint, ": forwarding ", call->what, ": ",
            failed ? "cannot connect" : "not connected in time", " (the request was not sent)"));
        return Complete(std::move(call), ha::NotSent(std::move(error)));
      }
      state = channel.GetState(/*try_to_connect=*/true);
    }
  }).detach();
}

}  // namespace

void ForwardingClient::Forward(absl::string_view cluster_addr, const http::Request& request,
                               Done done) {
  absl::StatusOr<std::string> endpoint = ClusterHostPort(cluster_addr);
  if (!endpoint.ok()) {
    std::move(done)(ha::NotSent(endpoint.status()));
    return;
  }
  if (in_flight_.fetch_add(1) >= limits_.max_in_flight) {
    in_flight_.fetch_sub(1);
    std::move(done)(ha::NotSent(absl::ResourceExhaustedError(absl::StrCat(
        "cluster port: more than ", limits_.max_in_flight, " forwarded requests in flight"))));
    return;
  }
  std::shared_ptr<Impl> impl;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (impl_ == nullptr || channel_address_ != *endpoint) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = tls_.ca_pem;
      ssl.pem_private_key = tls_.key_pem;
      ssl.pem_cert_chain = tls_.cert_pem;
      grpc::ChannelArguments args;
      args.SetSslTargetNameOverride(ha::kClusterServerName);
      args.SetMaxReceiveMessageSize(ClampToInt(limits_.max_message_bytes));
      args.SetMaxSendMessageSize(ClampToInt(limits_.max_message_bytes));
      auto fresh = std::make_shared<Impl>();
      fresh->endpoint = *endpoint;
      fresh->channel = grpc::CreateCustomChannel(*endpoint, grpc::SslCredentials(ssl), args);
      fresh->stub = RequestForwarding::NewStub(fresh->channel);
      impl_ = std::move(fresh);
      channel_address_ = *endpoint;
    }
    impl = impl_;
  }
  auto call = std::make_unique<CallState>();
  ToProto(request, call->request);
  call->done = std::move(done);
  call->impl = std::move(impl);
  call->what = absl::StrCat(request.method, " ", request.path);
  call->in_flight = &in_flight_;
  call->deadline = limits_.deadline;
  // A connected channel sends at once (the common case: no thread); otherwise the connection is
  // made first, so that a node that cannot be reached is known not to have got the request.
  if (call->impl->channel->GetState(/*try_to_connect=*/true) == GRPC_CHANNEL_READY) {
    return StartCall(std::move(call));
  }
  ConnectThenStart(std::move(call), limits_.connect_timeout);
}

}  // namespace bulwark::cluster
