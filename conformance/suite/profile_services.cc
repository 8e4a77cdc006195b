// The services profile (protocol-facts §1.4, §3): go-plugin's own gRPC services every plugin
// serves besides its Vault API: health, GRPCController/Shutdown, GRPCStdio, and the broker.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "conformance/suite/conformance.h"
#include "conformance/suite/harness.h"
#include "gtest/gtest.h"
#include "proto/vault/backend.grpc.pb.h"

namespace bulwark::conformance {
namespace {

// How long the stdio probe holds its stream: a plugin that answers Unimplemented does so at
// once; a plugin that serves stdio keeps the stream open at least this long.
constexpr absl::Duration kStdioHold = absl::Milliseconds(300);

std::unique_ptr<PluginUnderTest> Started() {
  absl::StatusOr<std::unique_ptr<PluginUnderTest>> put = PluginUnderTest::Start();
  if (!CheckOk(put.status(), "starting the plugin")) return nullptr;
  return *std::move(put);
}

CONFORMANCE_TEST(Services, HealthServing, Must, "plugin-protocol.md §4 (health)",
                 "A plugin MUST answer grpc.health.v1.Health/Check for service \"plugin\" with "
                 "SERVING (go-plugin's Ping).") {
  std::unique_ptr<PluginUnderTest> put = Started();
  if (put == nullptr) return;
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> health =
      put->HealthCheck("plugin");
  if (!CheckOk(health.status(), "grpc.health.v1.Health/Check{service: \"plugin\"}")) return;
  EXPECT_EQ(*health, grpc::health::v1::HealthCheckResponse::SERVING)
      << "expected SERVING (1), got " << static_cast<int>(*health);
}

CONFORMANCE_TEST(Services, ShutdownExitsWithinGrace, Must,
                 "plugin-protocol.md §4 (GRPCController.Shutdown)",
                 "After plugin.GRPCController/Shutdown a plugin MUST exit with code 0 within the "
                 "host's grace period (go-plugin: 2 s, then SIGKILL).") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  std::unique_ptr<PluginUnderTest> put = Started();
  if (put == nullptr) return;
  const absl::Time sent = absl::Now();
  // go-plugin v1.0.1 stops its server inside the handler, so the reply may be lost
  // (Unavailable); its host ignores the result and only waits for the exit, and so does this.
  (void)put->Shutdown();
  absl::StatusOr<sdk::testing::ProcessExitStatus> exit = put->WaitForExit(Config().shutdown_grace);
  if (absl::IsDeadlineExceeded(exit.status())) {
    // The grace period is the requirement: overrunning it is a failure, not an undecided run.
    ADD_FAILURE() << "expected an exit within " << absl::FormatDuration(Config().shutdown_grace)
                  << " of GRPCController/Shutdown, the plugin still ran";
    return;
  }
  ASSERT_TRUE(exit.ok()) << exit.status();
  RecordMetric("shutdown_ms", absl::ToDoubleMilliseconds(absl::Now() - sent), "ms");
  EXPECT_FALSE(exit->signaled) << "expected exit code 0, got signal " << exit->signal;
  EXPECT_EQ(exit->code, 0) << "expected exit code 0, got " << exit->code;
}

CONFORMANCE_TEST(Services, StdioStreamOpens, Should,
                 "plugin-protocol.md §4 (GRPCStdio); go-plugin#135",
                 "A plugin SHOULD serve plugin.GRPCStdio/StreamStdio and keep the stream open "
                 "(go-plugin >= v1.2; v1.0.1 plugins answer Unimplemented, which hosts "
                 "tolerate).") {
  std::unique_ptr<PluginUnderTest> put = Started();
  if (put == nullptr) return;
  const absl::Status probe = put->ProbeStdio(kStdioHold);
  EXPECT_TRUE(probe.ok()) << "expected StreamStdio to stay open for "
                          << absl::FormatDuration(kStdioHold) << ", got " << probe;
}

CONFORMANCE_TEST(Services, StdioStreamNeverFailsTheHost, Must,
                 "plugin-protocol.md §4 (go-plugin services)",
                 "plugin.GRPCStdio/StreamStdio MUST either stay open or end with Unimplemented "
                 "(the only answers go-plugin's host tolerates besides Unavailable).") {
  std::unique_ptr<PluginUnderTest> put = Started();
  if (put == nullptr) return;
  const absl::Status probe = put->ProbeStdio(kStdioHold);
  EXPECT_TRUE(probe.ok() || absl::IsUnimplemented(probe))
      << "expected the stream open or Unimplemented, got " << probe;
}

CONFORMANCE_TEST(Services, BrokerRoundTrip, Must, "plugin-protocol.md §4 (broker, call sequence)",
                 "A plugin MUST keep go-plugin's broker stream open and, for a backend, dial the "
                 "pb.Storage endpoint the host announces on it (with the AutoMTLS "
                 "certificates): after Setup, a write to the manifest's probe path reaches the "
                 "host's storage.") {
  std::unique_ptr<PluginUnderTest> put = Started();
  if (put == nullptr) return;
  if (!Config().manifest.is_backend()) {
    // Database plugins never dial the host; what is left to check is that the broker stream
    // stays open for announcements (a plugin without plugin.GRPCBroker ends it at once).
    absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> health =
        put->HealthCheck();
    if (!CheckOk(health.status(), "grpc.health.v1.Health/Check")) return;
    for (int i = 0; i < 2; ++i) {
      absl::StatusOr<uint32_t> id = put->OfferStorage();
      EXPECT_TRUE(id.ok()) << "expected the broker stream to accept announcement " << i + 1
                           << ", got " << id.status();
    }
    return;
  }
  const std::string mux = "conformance-broker";
  absl::StatusOr<uint32_t> broker_id = put->SetupBackend(mux, {});
  if (!CheckOk(broker_id.status(), "pb.Backend/Setup with a brokered pb.Storage")) return;
  const BackendProbe& probe = Config().manifest.backend_probe;
  absl::StatusOr<pb::HandleRequestReply> reply =
      put->HandleRequest(mux, "create", probe.write_path, probe.write_data_json);
  if (!CheckOk(reply.status(), "pb.Backend/HandleRequest create on the probe path")) return;
  EXPECT_FALSE(reply->has_err()) << "expected the write to succeed, got error \""
                                 << reply->err().err_msg() << "\"";
  sdk::InMemoryHostStorage* storage = put->storage(*broker_id);
  ASSERT_NE(storage, nullptr);
  const size_t calls = storage->calls(sdk::kStoragePutMethod) +
                       storage->calls(sdk::kStorageGetMethod) +
                       storage->calls(sdk::kStorageListMethod);
  EXPECT_GT(calls, 0u) << "expected the plugin to call the host's pb.Storage over the broker "
                          "while writing "
                       << probe.write_path << ", got no storage calls";
}

}  // namespace
}  // namespace bulwark::conformance
