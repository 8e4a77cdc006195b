// The cluster port on loopback: mutual TLS from the cluster CA, the forwarding RPC's round trip,
// and its bounds (docs/ha.md, "The cluster port").
#include "server/cluster/forwarding.h"

#include <mutex>
#include <optional>
#include <vector>

#include "absl/synchronization/notification.h"
#include "base/storage/in_memory_storage.h"
#include "core/ha/cluster_ca.h"
#include "core/ha/forwarding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::cluster {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

constexpr absl::Duration kHangGuard = absl::Seconds(60);

ha::ClusterTls TlsFrom(const ha::ClusterCa& ca) {
  absl::StatusOr<ha::ClusterTls> tls = ha::IssueClusterTls(ca, absl::Now());
  EXPECT_TRUE(tls.ok()) << tls.status();
  return *tls;
}

ha::ClusterCa NewCa() {
  InMemoryStorage barrier;
  absl::StatusOr<ha::ClusterCa> ca = ha::EnsureClusterCa(barrier, absl::Now());
  EXPECT_TRUE(ca.ok()) << ca.status();
  return *ca;
}

// Forwards one request and waits for its answer.
absl::StatusOr<http::Response> ForwardAndWait(ForwardingClient& client, const std::string& addr,
                                              const http::Request& request) {
  absl::Notification done;
  std::optional<absl::StatusOr<http::Response>> result;
  client.Forward(addr, request, [&](absl::StatusOr<http::Response> r) {
    result = std::move(r);
    done.Notify();
  });
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(kHangGuard));
  return result.value_or(absl::DeadlineExceededError("hang guard"));
}

http::Request AWrite() {
  http::Request r;
  r.method = "PUT";
  r.path = "/v1/secret/a b";
  r.query = {{"list", "true"}, {"x", "1&2"}};
  r.headers = {{"x-vault-token", "hvs.secret-token"}, {"content-type", "application/json"}};
  r.body = "{\"value\":\"v\"}";
  r.remote_address = "127.0.0.1:5555";
  return r;
}

TEST(ForwardingTest, CarriesTheWholeRequestAndTheAnswer) {
  const ha::ClusterCa ca = NewCa();
  std::mutex mu;
  std::vector<http::Request> seen;
  absl::StatusOr<std::unique_ptr<ForwardingServer>> server = ForwardingServer::Start(
      "127.0.0.1:0", TlsFrom(ca), {}, [&](http::Request r, http::Responder respond) {
        {
          std::lock_guard<std::mutex> lock(mu);
          seen.push_back(r);
        }
        http::Response answer;
        answer.status = 201;
        answer.content_type = "text/plain";
        answer.headers = {{"Location", "/there"}};
        answer.body = absl::StrCat("got ", r.method, " ", r.path, " ", r.body);
        std::move(respond)(std::move(answer));
      });
  ASSERT_TRUE(server.ok()) << server.status();
  ForwardingClient client(TlsFrom(ca), {});
  absl::StatusOr<http::Response> answer =
      ForwardAndWait(client, absl::StrCat("https://", (*server)->address()), AWrite());
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->status, 201);
  EXPECT_EQ(answer->content_type, "text/plain");
  EXPECT_THAT(answer->headers, Contains(Pair("Location", "/there")));
  EXPECT_EQ(answer->body, "got PUT /v1/secret/a b {\"value\":\"v\"}");
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(seen.size(), 1u);
  const http::Request& r = seen[0];
  EXPECT_EQ(r.query, AWrite().query);
  EXPECT_EQ(r.remote_address, "127.0.0.1:5555");
  EXPECT_THAT(r.headers, Contains(Pair("x-vault-token", "hvs.secret-token")));
  // Marked, so the receiving node never forwards it again.
  EXPECT_THAT(r.headers, Contains(Pair(ha::kForwardedHeader, "true")));
}

TEST(ForwardingTest, ANodeWithACertificateFromAnotherCaIsRefused) {
  const ha::ClusterCa ca = NewCa();
  bool called = false;
  absl::StatusOr<std::unique_ptr<ForwardingServer>> server = ForwardingServer::Start(
      "127.0.0.1:0", TlsFrom(ca), {}, [&](http::Request, http::Responder respond) {
        called = true;
        std::move(respond)(http::Response{});
      });
  ASSERT_TRUE(server.ok()) << server.status();
  // Another cluster's node (or anyone who never unsealed this one): its certificate does not
  // chain to this cluster's CA, and it does not trust this server's either.
  ForwardingClient stranger(TlsFrom(NewCa()), {});
  absl::StatusOr<http::Response> answer = ForwardAndWait(stranger, (*server)->address(), AWrite());
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable) << answer.status();
  // The error names the peer and the request, never a header value.
  EXPECT_THAT(std::string(answer.status().message()), HasSubstr("forwarding PUT /v1/secret/a b"));
  EXPECT_THAT(std::string(answer.status().message()), Not(HasSubstr("hvs.secret-token")));
  EXPECT_FALSE(called);
}

TEST(ForwardingTest, CallsInFlightAreBounded) {
  const ha::ClusterCa ca = NewCa();
  std::mutex mu;
  std::vector<http::Responder> held;
  absl::Notification first_arrived;
  ForwardingLimits limits;
  limits.max_in_flight = 1;
  absl::StatusOr<std::unique_ptr<ForwardingServer>> server = ForwardingServer::Start(
      "127.0.0.1:0", TlsFrom(ca), limits, [&](http::Request, http::Responder respond) {
        std::lock_guard<std::mutex> lock(mu);
        held.push_back(std::move(respond));
        if (held.size() == 1) first_arrived.Notify();
      });
  ASSERT_TRUE(server.ok()) << server.status();
  ForwardingClient client(TlsFrom(ca), {});  // The client's own bound is the default (64).
  absl::Notification first_done;
  std::optional<absl::StatusOr<http::Response>> first;
  client.Forward((*server)->address(), AWrite(), [&](absl::StatusOr<http::Response> r) {
    first = std::move(r);
    first_done.Notify();
  });
  ASSERT_TRUE(first_arrived.WaitForNotificationWithTimeout(kHangGuard));
  // The server already runs one: the second is refused, not queued.
  absl::StatusOr<http::Response> second = ForwardAndWait(client, (*server)->address(), AWrite());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted) << second.status();
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(held.size(), 1u);
    http::Response ok;
    ok.status = 204;
    std::move(held[0])(std::move(ok));
  }
  ASSERT_TRUE(first_done.WaitForNotificationWithTimeout(kHangGuard));
  ASSERT_TRUE(first->ok()) << first->status();
  EXPECT_EQ((*first)->status, 204);

  // The client's bound: with one call held, a client limited to one refuses the next itself.
  ForwardingLimits one;
  one.max_in_flight = 1;
  ForwardingClient small(TlsFrom(ca), one);
  absl::Notification held_again;
  small.Forward((*server)->address(), AWrite(),
                [&](absl::StatusOr<http::Response>) { held_again.Notify(); });
  absl::StatusOr<http::Response> refused = ForwardAndWait(small, (*server)->address(), AWrite());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  // Let the held call finish so that the server can shut down.
  for (;;) {
    std::lock_guard<std::mutex> lock(mu);
    if (held.size() == 2) {
      std::move(held[1])(http::Response{});
      break;
    }
  }
  ASSERT_TRUE(held_again.WaitForNotificationWithTimeout(kHangGuard));
}

TEST(ForwardingTest, AMessageOverTheLimitIsRefused) {
  const ha::ClusterCa ca = NewCa();
  ForwardingLimits limits;
  limits.max_message_bytes = 4096;
  bool called = false;
  absl::StatusOr<std::unique_ptr<ForwardingServer>> server = ForwardingServer::Start(
      "127.0.0.1:0", TlsFrom(ca), limits, [&](http::Request, http::Responder respond) {
        called = true;
        std::move(respond)(http::Response{});
      });
  ASSERT_TRUE(server.ok()) << server.status();
  ForwardingClient client(TlsFrom(ca), {});  // The client would send it; the server refuses.
  http::Request big = AWrite();
  big.body = std::string(8192, 'x');
  absl::StatusOr<http::Response> answer = ForwardAndWait(client, (*server)->address(), big);
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kResourceExhausted) << answer.status();
  EXPECT_FALSE(called);
}

TEST(ForwardingTest, NoNodeListeningIsUnavailable) {
  const ha::ClusterCa ca = NewCa();
  ForwardingClient client(TlsFrom(ca), {});
  // A port nothing listens on: bind one and close it.
  absl::StatusOr<std::unique_ptr<ForwardingServer>> gone = ForwardingServer::Start(
      "127.0.0.1:0", TlsFrom(ca), {},
      [](http::Request, http::Responder respond) { std::move(respond)(http::Response{}); });
  ASSERT_TRUE(gone.ok());
  const std::string addr = (*gone)->address();
  gone->reset();
  absl::Status refused = ForwardAndWait(client, addr, AWrite()).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  // Nothing was sent: the API may redirect the client.
  EXPECT_TRUE(ha::ProvablyNotSent(refused)) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("not sent"));
  absl::Status bad = ForwardAndWait(client, "no-port", AWrite()).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ha::ProvablyNotSent(bad));
}

// The active node stalls (its handler holds the request and does not answer): the call's deadline
// passes after the request was sent, so its outcome is unknown, never "not sent" (the API then
// answers 504 instead of redirecting the client to send it again). The test does not race the
// deadline: the result is "unknown" whether the deadline passed before or after the handler got
// the request.
TEST(ForwardingTest, ADeadlineAfterSendingIsOfUnknownOutcome) {
  const ha::ClusterCa ca = NewCa();
  std::mutex mu;
  std::vector<http::Responder> held;
  absl::StatusOr<std::unique_ptr<ForwardingServer>> server = ForwardingServer::Start(
      "127.0.0.1:0", TlsFrom(ca), {}, [&](http::Request, http::Responder respond) {
        std::lock_guard<std::mutex> lock(mu);
        held.push_back(std::move(respond));
      });
  ASSERT_TRUE(server.ok()) << server.status();
  ForwardingLimits limits;
  limits.deadline = absl::Milliseconds(200);
  ForwardingClient client(TlsFrom(ca), limits);
  absl::Status stalled = ForwardAndWait(client, (*server)->address(), AWrite()).status();
  EXPECT_EQ(stalled.code(), absl::StatusCode::kDeadlineExceeded) << stalled;
  EXPECT_FALSE(ha::ProvablyNotSent(stalled));
  EXPECT_THAT(stalled.message(), HasSubstr(ha::kOutcomeUnknownText));
  EXPECT_THAT(stalled.message(), Not(HasSubstr("hvs.secret-token")));
  // Let the held call finish so that the server can shut down.
  std::lock_guard<std::mutex> lock(mu);
  for (http::Responder& respond : held) std::move(respond)(http::Response{});
}

TEST(ForwardingTest, ClusterHostPort) {
  EXPECT_EQ(*ClusterHostPort("https://10.0.0.1:8201"), "10.0.0.1:8201");
  EXPECT_EQ(*ClusterHostPort("127.0.0.1:9"), "127.0.0.1:9");
  EXPECT_EQ(*ClusterHostPort("https://[::1]:8201/"), "[::1]:8201");
  EXPECT_FALSE(ClusterHostPort("https://host").ok());
  EXPECT_FALSE(ClusterHostPort("https://host:99999").ok());
}

}  // namespace
}  // namespace bulwark::cluster
