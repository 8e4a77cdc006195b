// The multiplexing profile (optional; run only when the manifest claims "multiplexing"): one
// process serves several backend instances keyed by the "multiplex_id" gRPC metadata, each with
// its own brokered connection back to the host (protocol-facts §4.4 and §5).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "conformance/suite/conformance.h"
#include "conformance/suite/harness.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/vault/backend.grpc.pb.h"
#include "proto/vault/multiplexing.grpc.pb.h"

namespace bulwark::conformance {
namespace {

constexpr uint32_t kErrTypeCoded = 3;
constexpr uint32_t kErrTypeUnsupportedPath = 6;
constexpr size_t kQuoteBytesMax = 200;
constexpr absl::string_view kPutMethod = "/pb.Storage/Put";

// FNV-1a of the running test's name: ids differ between tests (in attach mode one plugin
// process serves every test, and a multiplexing plugin refuses a second Setup for an id) and
// stay deterministic given the seed.
uint64_t TestSalt() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string name =
      info == nullptr ? std::string() : absl::StrCat(info->test_suite_name(), ".", info->name());
  uint64_t h = 1469598103934665603ull;
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// Distinct 10-character base62 ids derived from the seed, like Vault's base62.Random(10).
std::string MuxId(int n) {
  static constexpr char kBase62[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  uint64_t x = Config().seed * 0xD1B54A32D192ED03ull + TestSalt() + static_cast<uint64_t>(n) + 7;
  std::string id;
  for (int i = 0; i < 10; ++i) {
    x ^= x >> 29;
    x *= 0x94D049BB133111EBull;
    id.push_back(kBase62[x % 62]);
  }
  return id;
}

std::string Truncate(absl::string_view s) {
  if (s.size() <= kQuoteBytesMax) return std::string(s);
  return absl::StrCat(s.substr(0, kQuoteBytesMax), "...(", s.size(), " bytes)");
}

bool HasLogicalError(const pb::HandleRequestReply& reply) {
  return reply.has_err() && (reply.err().err_type() != 0 || !reply.err().err_msg().empty());
}

std::string Describe(const pb::HandleRequestReply& reply) {
  std::string out;
  if (HasLogicalError(reply)) {
    absl::StrAppend(&out, "err{type=", reply.err().err_type(), " code=", reply.err().err_code(),
                    " msg=\"", Truncate(reply.err().err_msg()), "\"} ");
  }
  absl::StrAppend(&out, reply.has_response()
                            ? absl::StrCat("response{data=", Truncate(reply.response().data()), "}")
                            : std::string("no response"));
  return out;
}

nlohmann::json DataOf(const pb::HandleRequestReply& reply) {
  if (!reply.has_response() || reply.response().data().empty()) return nullptr;
  return nlohmann::json::parse(reply.response().data(), nullptr, /*allow_exceptions=*/false);
}

bool IsNotFound(const pb::HandleRequestReply& reply) {
  if (HasLogicalError(reply)) {
    return reply.err().err_type() == kErrTypeUnsupportedPath ||
           (reply.err().err_type() == kErrTypeCoded && reply.err().err_code() == 404);
  }
  const nlohmann::json data = DataOf(reply);
  return data.is_null() || (data.is_object() && data.empty());
}

const std::string& ProbePath() { return Config().manifest.backend_probe.write_path; }
const std::string& ProbeJson() { return Config().manifest.backend_probe.write_data_json; }

std::string ProbeFieldsMismatch(const pb::HandleRequestReply& reply) {
  if (HasLogicalError(reply)) return absl::StrCat("a logical error: ", Describe(reply));
  const nlohmann::json data = DataOf(reply);
  if (!data.is_object()) return absl::StrCat("no JSON object in Response.data: ", Describe(reply));
  const nlohmann::json expected =
      nlohmann::json::parse(ProbeJson(), nullptr, /*allow_exceptions=*/false);
  for (const auto& [key, value] : expected.items()) {
    auto it = data.find(key);
    if (it == data.end() || *it != value) {
      return absl::StrCat("field \"", key, "\" missing or different: ", Describe(reply));
    }
  }
  return "";
}

// A started plugin; instances are added with AddInstance.
class MuxFixture {
 public:
  absl::Status Start() {
    auto plugin = PluginUnderTest::Start();
    if (!plugin.ok()) return plugin.status();
    plugin_ = std::move(*plugin);
    return absl::OkStatus();
  }
  PluginUnderTest& plugin() { return *plugin_; }

  // Setup + Initialize under `mux`; returns the instance's broker id.
  absl::StatusOr<uint32_t> AddInstance(const std::string& mux) {
    auto broker_id = plugin_->SetupBackend(mux);
    if (!broker_id.ok()) {
      return absl::Status(broker_id.status().code(),
                          absl::StrCat("pb.Backend/Setup for multiplex id ", mux, ": ",
                                       broker_id.status().message()));
    }
    pb::InitializeArgs args;
    pb::InitializeReply reply;
    auto ctx = plugin_->NewContext(mux);
    const grpc::Status status = plugin_->backend().Initialize(ctx.get(), args, &reply);
    if (!status.ok() && status.error_code() != grpc::StatusCode::UNIMPLEMENTED) {
      absl::Status s = PluginUnderTest::FromGrpc(status);
      return absl::Status(s.code(), absl::StrCat("pb.Backend/Initialize for multiplex id ", mux,
                                                 ": ", s.message()));
    }
    if (reply.has_err() && (reply.err().err_type() != 0 || !reply.err().err_msg().empty())) {
      return absl::FailedPreconditionError(
          absl::StrCat("pb.Backend/Initialize for multiplex id ", mux, " returned err \"",
                       Truncate(reply.err().err_msg()), "\", expected none"));
    }
    return *broker_id;
  }

  std::optional<pb::HandleRequestReply> Request(const std::string& mux,
                                                const std::string& operation,
                                                const std::string& data_json = "") {
    auto reply = plugin_->HandleRequest(mux, operation, ProbePath(), data_json);
    if (!CheckOk(reply.status(), absl::StrCat("pb.Backend/HandleRequest ", operation,
                                              " under multiplex id ", mux))) {
      return std::nullopt;
    }
    return *std::move(reply);
  }

  bool Write(const std::string& mux) {
    auto reply = Request(mux, "create", ProbeJson());
    if (!reply) return false;
    EXPECT_FALSE(HasLogicalError(*reply)) << "create of the probe path under multiplex id " << mux
                                          << ": expected success, got " << Describe(*reply);
    return !HasLogicalError(*reply);
  }

 private:
  std::unique_ptr<PluginUnderTest> plugin_;
};

CONFORMANCE_TEST(Multiplexing, SupportReported, Must, "plugin-protocol.md §4 (multiplexing)",
                 "pluginutil.multiplexing.PluginMultiplexing/MultiplexingSupport MUST answer "
                 "supported=true for a plugin that claims multiplexing.") {
  MuxFixture f;
  if (!CheckOk(f.Start(), "start the plugin")) return;
  auto stub = pluginutil::multiplexing::PluginMultiplexing::NewStub(f.plugin().channel());
  pluginutil::multiplexing::MultiplexingSupportRequest request;
  pluginutil::multiplexing::MultiplexingSupportResponse response;
  // Vault asks on the raw connection, without a multiplex id.
  auto ctx = f.plugin().NewContext();
  if (!CheckOk(PluginUnderTest::FromGrpc(stub->MultiplexingSupport(ctx.get(), request, &response)),
               "PluginMultiplexing/MultiplexingSupport")) {
    return;
  }
  EXPECT_TRUE(response.supported()) << "expected supported=true, got false";
}

CONFORMANCE_TEST(Multiplexing, InstancesIsolated, Must, "plugin-protocol.md §4 (multiplexing)",
                 "A write under one multiplex_id MUST NOT be visible to a read under another "
                 "multiplex_id of the same process.") {
  MuxFixture f;
  if (!CheckOk(f.Start(), "start the plugin")) return;
  const std::string a = MuxId(1), b = MuxId(2);
  if (!CheckOk(f.AddInstance(a).status(), "set up instance A")) return;
  if (!CheckOk(f.AddInstance(b).status(), "set up instance B")) return;
  if (!f.Write(a)) return;
  auto in_a = f.Request(a, "read");
  if (!in_a) return;
  ASSERT_EQ(ProbeFieldsMismatch(*in_a), "") << "expected the write to be readable in A";
  auto in_b = f.Request(b, "read");
  if (!in_b) return;
  EXPECT_TRUE(IsNotFound(*in_b)) << "expected no data under multiplex id " << b
                                 << " for a write made under " << a << ", got " << Describe(*in_b);
}

CONFORMANCE_TEST(Multiplexing, InstanceUsesOwnStorage, Must,
                 "plugin-protocol.md §4 (call sequence for one mount)",
                 "Each multiplexed instance MUST store through the broker connection offered in "
                 "its own Setup, never through another instance's.") {
  MuxFixture f;
  if (!CheckOk(f.Start(), "start the plugin")) return;
  const std::string a = MuxId(3), b = MuxId(4);
  auto broker_a = f.AddInstance(a);
  if (!CheckOk(broker_a.status(), "set up instance A")) return;
  auto broker_b = f.AddInstance(b);
  if (!CheckOk(broker_b.status(), "set up instance B")) return;
  sdk::InMemoryStorage* storage_a = f.plugin().storage(*broker_a);
  sdk::InMemoryStorage* storage_b = f.plugin().storage(*broker_b);
  ASSERT_TRUE(storage_a != nullptr && storage_b != nullptr) << "harness: storage missing";
  const size_t a_before = storage_a->calls(kPutMethod);
  const size_t b_before = storage_b->calls(kPutMethod);
  if (!f.Write(a)) return;
  EXPECT_GT(storage_a->calls(kPutMethod), a_before)
      << "expected pb.Storage/Put on A's broker connection after a write under A, got none";
  EXPECT_EQ(storage_b->calls(kPutMethod), b_before)
      << "expected no pb.Storage/Put on B's broker connection after a write under A, got "
      << storage_b->calls(kPutMethod) - b_before;
}

CONFORMANCE_TEST(Multiplexing, CleanupIsolated, Must, "plugin-protocol.md §4 (multiplexing)",
                 "pb.Backend/Cleanup under one multiplex_id MUST leave the other instances "
                 "serving their data.") {
  MuxFixture f;
  if (!CheckOk(f.Start(), "start the plugin")) return;
  const std::string a = MuxId(5), b = MuxId(6);
  if (!CheckOk(f.AddInstance(a).status(), "set up instance A")) return;
  if (!CheckOk(f.AddInstance(b).status(), "set up instance B")) return;
  if (!f.Write(a) || !f.Write(b)) return;
  pb::Empty args, reply;
  auto ctx = f.plugin().NewContext(a);
  if (!CheckOk(PluginUnderTest::FromGrpc(f.plugin().backend().Cleanup(ctx.get(), args, &reply)),
               "pb.Backend/Cleanup of instance A")) {
    return;
  }
  auto in_b = f.Request(b, "read");
  if (!in_b) return;
  EXPECT_EQ(ProbeFieldsMismatch(*in_b), "")
      << "expected instance B to keep serving its data after A's Cleanup";
}

CONFORMANCE_TEST(Multiplexing, CallWithoutIdRefused, Must, "plugin-protocol.md §4 (multiplexing)",
                 "A pb.Backend call without multiplex_id metadata to a multiplexing plugin MUST "
                 "fail with a gRPC error, as Vault's ServeMultiplex does.") {
  MuxFixture f;
  if (!CheckOk(f.Start(), "start the plugin")) return;
  const std::string a = MuxId(7);
  if (!CheckOk(f.AddInstance(a).status(), "set up instance A")) return;
  if (!f.Write(a)) return;
  // Vault's GetMultiplexIDFromContext fails ("missing plugin multiplexing metadata", "no
  // multiplexing ID found", ...) and the plain Go error becomes a gRPC status (UNKNOWN). Any
  // failing code is accepted; serving some instance is not.
  auto reply = f.plugin().HandleRequest("", "read", ProbePath(), "");
  if (reply.status().code() == absl::StatusCode::kDeadlineExceeded) {
    ReportTimeout("pb.Backend/HandleRequest without multiplex_id");
    return;
  }
  EXPECT_FALSE(reply.ok()) << "expected a gRPC error for a call without multiplex_id, got a "
                              "reply: "
                           << (reply.ok() ? Describe(*reply) : "");
}

}  // namespace
}  // namespace bulwark::conformance
