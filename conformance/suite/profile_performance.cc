// The performance profile (every plugin): start-up time, request latency p50/p99 and idle RSS,
// recorded with RecordMetric. These are reports, not benchmarks: samples are few so the profile
// runs in well under 5 s, and a test fails only when the manifest sets a limit and the
// measurement exceeds it (the message shows limit and measurement).
//
// Requests measured: backend plugins read the manifest's probe path (one brokered Storage Get
// per call in a storage-backed plugin); database plugins answer dbplugin.v5.Database/Type.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/status/status_macros.h"
#include "conformance/suite/conformance.h"
#include "conformance/suite/harness.h"
#include "conformance/suite/profile_util.h"
#include "gtest/gtest.h"
#include "proto/vault/backend.grpc.pb.h"
#include "proto/vault/database.grpc.pb.h"

namespace bulwark::conformance {
namespace {

// Requests timed for the latency percentiles, after kWarmupRequests untimed ones (the first
// calls pay for lazy connection and TLS session setup).
constexpr int kLatencySamples = 200;
constexpr int kWarmupRequests = 10;

// A plugin ready for requests: a backend mounted with the probe written, or a database
// initialized with the manifest's config. A backend whose Initialize reports an error is still
// measured (Backend.InitializeSucceeds reports the error).
absl::StatusOr<Mounted> StartReady() {
  auto r = StartMounted(0, InitializeErrors::kIgnore);
  if (!r.ok() || IsDatabase()) return r;
  auto written = r->plugin->HandleRequest(r->mux, "create", ProbePath(), ProbeJson());
  if (!written.ok()) return Annotate(written.status(), "pb.Backend/HandleRequest create");
  if (HasLogicalError(*written)) {
    return absl::FailedPreconditionError(
        absl::StrCat("create of the probe path failed: err_type ", written->err().err_type()));
  }
  return r;
}

// One measured request; a logical error counts as a failure (the probe path must work).
absl::Status OneRequest(Mounted& r) {
  if (IsDatabase()) {
    dbplugin::v5::Empty request;
    dbplugin::v5::TypeResponse response;
    auto ctx = r.plugin->NewContext(r.mux);
    return Annotate(PluginUnderTest::FromGrpc(r.database->Type(ctx.get(), request, &response)),
                    "dbplugin.v5.Database/Type");
  }
  auto reply = r.plugin->HandleRequest(r.mux, "read", ProbePath(), "");
  if (!reply.ok()) return Annotate(reply.status(), "pb.Backend/HandleRequest read");
  if (HasLogicalError(*reply)) {
    return absl::FailedPreconditionError(
        absl::StrCat("read of the probe path failed: err_type ", reply->err().err_type()));
  }
  return absl::OkStatus();
}

// Sorted latencies in microseconds, or the first failure.
absl::StatusOr<std::vector<double>> MeasureLatencies() {
  auto r = StartReady();
  if (!r.ok()) return r.status();
  for (int i = 0; i < kWarmupRequests; ++i) {
    if (absl::Status s = OneRequest(*r); !s.ok()) return s;
  }
  std::vector<double> us;
  us.reserve(kLatencySamples);
  for (int i = 0; i < kLatencySamples; ++i) {
    const absl::Time start = absl::Now();
    if (absl::Status s = OneRequest(*r); !s.ok()) return s;
    us.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
  }
  std::sort(us.begin(), us.end());
  return us;
}

// Nearest-rank percentile of sorted samples, q in (0, 1].
double Percentile(const std::vector<double>& sorted, double q) {
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size(), std::max<size_t>(rank, 1)) - 1];
}

// ---------------------------------------------------------------------------------------------

CONFORMANCE_TEST(Performance, StartupTime, Must, "conformance.md \"The performance profile\"",
                 "The time from exec to the first successful health check MUST NOT exceed the "
                 "manifest's max_startup_ms when it sets one (always reported).") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  auto plugin = PluginUnderTest::Launch();
  if (!CheckOk(plugin.status(), "launch the plugin")) return;
  if (!CheckOk((*plugin)->ReadHandshake().status(), "read the handshake")) return;
  const absl::Time handshake_read = absl::Now();
  const absl::Duration to_handshake = (*plugin)->time_to_handshake();
  if (!CheckOk((*plugin)->Connect(), "connect")) return;
  auto health = (*plugin)->HealthCheck();
  if (!CheckOk(health.status(), "grpc.health.v1.Health/Check")) return;
  ASSERT_EQ(*health, grpc::health::v1::HealthCheckResponse::SERVING)
      << "expected the first health check SERVING, got " << *health;
  const double handshake_ms = absl::ToDoubleMilliseconds(to_handshake);
  const double ready_ms = absl::ToDoubleMilliseconds(to_handshake + (absl::Now() - handshake_read));
  RecordMetric("startup_to_handshake_ms", handshake_ms, "ms");
  RecordMetric("startup_to_first_health_ms", ready_ms, "ms");
  if (const auto& limit = Config().manifest.performance.max_startup_ms) {
    EXPECT_LE(ready_ms, *limit) << "expected start-up (exec to first SERVING health check) "
                                   "within the manifest's max_startup_ms "
                                << *limit << " ms, measured " << ready_ms << " ms (handshake "
                                << handshake_ms << " ms)";
  }
}

CONFORMANCE_TEST(Performance, RequestLatencyP50, Must, "conformance.md \"The performance profile\"",
                 "The median latency of 200 sequential requests MUST NOT exceed the manifest's "
                 "max_p50_us when it sets one (always reported).") {
  auto us = MeasureLatencies();
  if (!CheckOk(us.status(), "measure request latency")) return;
  const double p50 = Percentile(*us, 0.5);
  RecordMetric("request_p50_us", p50, "us");
  if (const auto& limit = Config().manifest.performance.max_p50_us) {
    EXPECT_LE(p50, *limit) << "expected p50 latency within the manifest's max_p50_us " << *limit
                           << " us, measured " << p50 << " us over " << kLatencySamples
                           << " requests";
  }
}

CONFORMANCE_TEST(Performance, RequestLatencyP99, Must, "conformance.md \"The performance profile\"",
                 "The 99th-percentile latency of 200 sequential requests MUST NOT exceed the "
                 "manifest's max_p99_us when it sets one (always reported).") {
  auto us = MeasureLatencies();
  if (!CheckOk(us.status(), "measure request latency")) return;
  const double p99 = Percentile(*us, 0.99);
  RecordMetric("request_p99_us", p99, "us");
  if (const auto& limit = Config().manifest.performance.max_p99_us) {
    EXPECT_LE(p99, *limit) << "expected p99 latency within the manifest's max_p99_us " << *limit
                           << " us, measured " << p99 << " us over " << kLatencySamples
                           << " requests";
  }
}

CONFORMANCE_TEST(Performance, IdleRss, Must, "conformance.md \"The performance profile\"",
                 "The resident set of the idle plugin after set-up and one request MUST NOT "
                 "exceed the manifest's max_idle_rss_kib when it sets one (always reported).") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  auto r = StartReady();
  if (!CheckOk(r.status(), "start and set up the plugin")) return;
  if (!CheckOk(OneRequest(*r), "one request before measuring")) return;
  auto kib = ResidentKib(r->plugin->pid());
  if (!CheckOk(kib.status(), "read the plugin's VmRSS")) return;
  RecordMetric("idle_rss_kib", static_cast<double>(*kib), "KiB");
  if (const auto& limit = Config().manifest.performance.max_idle_rss_kib) {
    EXPECT_LE(*kib, *limit) << "expected idle RSS within the manifest's max_idle_rss_kib " << *limit
                            << " KiB, measured " << *kib << " KiB";
  }
}

}  // namespace
}  // namespace bulwark::conformance
