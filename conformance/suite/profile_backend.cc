// The backend profile: pb.Backend as Vault drives it (protocol-facts §4.4 and §7) — Setup over
// the broker, Initialize, Type, SpecialPaths, HandleRequest on the manifest's probe path,
// storage through the host, exact logical error kinds, idempotence and concurrency.
//
// The suite does not know a plugin's paths. It uses only what every Vault backend must answer:
// the manifest's probe path (create/update/read/delete with write_data), a "help" request on
// the mount root and a read of a random path. The last two must be answered in-band (a
// response or a logical error in HandleRequestReply.err), never with a gRPC error: Vault turns
// a gRPC error into a 500 and, for some codes, into a plugin reload.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "conformance/suite/conformance.h"
#include "conformance/suite/harness.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/vault/backend.grpc.pb.h"

namespace bulwark::conformance {
namespace {

// Vault's pb.ErrType values (sdk/plugin/pb/translation.go, protocol-facts §7).
constexpr uint32_t kErrTypeCoded = 3;
constexpr uint32_t kErrTypeUnsupportedOperation = 5;
constexpr uint32_t kErrTypeUnsupportedPath = 6;
constexpr uint32_t kErrTypeMax = 10;
// logical.BackendType: 1 logical (secret), 2 credential (auth).
constexpr uint32_t kBackendTypeLogical = 1;
constexpr uint32_t kBackendTypeCredential = 2;

// Repeats of the idempotence test (csi-sanity's IdempotentCount).
constexpr int kIdempotentRepeats = 10;
// The concurrency test: callers and requests per caller.
constexpr int kConcurrentCallers = 8;
constexpr int kRequestsPerCaller = 16;
// How much of a reply a failure message quotes.
constexpr size_t kQuoteBytesMax = 200;

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

// Vault sends a multiplex id with every pb.Backend call, multiplexing or not
// (pluginClientConn); a non-multiplexed plugin ignores it. 10 base62 characters, as Vault's.
std::string MuxId(int n) {
  static constexpr char kBase62[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  uint64_t x = Config().seed * 0x9E3779B97F4A7C15ull + TestSalt() + static_cast<uint64_t>(n) + 1;
  std::string id;
  for (int i = 0; i < 10; ++i) {
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    id.push_back(kBase62[x % 62]);
  }
  return id;
}

std::string Truncate(absl::string_view s) {
  if (s.size() <= kQuoteBytesMax) return std::string(s);
  return absl::StrCat(s.substr(0, kQuoteBytesMax), "...(", s.size(), " bytes)");
}

std::string Describe(const pb::HandleRequestReply& reply) {
  std::string out;
  if (reply.has_err()) {
    absl::StrAppend(&out, "err{type=", reply.err().err_type(), " code=", reply.err().err_code(),
                    " msg=\"", Truncate(reply.err().err_msg()), "\"} ");
  }
  if (reply.has_response()) {
    absl::StrAppend(&out, "response{data=", Truncate(reply.response().data()), "}");
  } else {
    absl::StrAppend(&out, "no response");
  }
  return out;
}

bool HasLogicalError(const pb::HandleRequestReply& reply) {
  return reply.has_err() && (reply.err().err_type() != 0 || !reply.err().err_msg().empty());
}

// Response.data as a JSON object; null when absent or empty.
nlohmann::json DataOf(const pb::HandleRequestReply& reply) {
  if (!reply.has_response() || reply.response().data().empty()) return nullptr;
  return nlohmann::json::parse(reply.response().data(), nullptr, /*allow_exceptions=*/false);
}

// Vault answers 404 for a read without data, and for UnsupportedPath or a coded 404.
bool IsNotFound(const pb::HandleRequestReply& reply) {
  if (HasLogicalError(reply)) {
    return reply.err().err_type() == kErrTypeUnsupportedPath ||
           (reply.err().err_type() == kErrTypeCoded && reply.err().err_code() == 404);
  }
  const nlohmann::json data = DataOf(reply);
  return data.is_null() || (data.is_object() && data.empty());
}

nlohmann::json ProbeData() {
  return nlohmann::json::parse(Config().manifest.backend_probe.write_data_json, nullptr,
                               /*allow_exceptions=*/false);
}
const std::string& ProbePath() { return Config().manifest.backend_probe.write_path; }

// "" when every field of the probe's write_data is in the reply's data with the same value;
// otherwise what differs.
std::string ProbeFieldsMismatch(const pb::HandleRequestReply& reply) {
  if (HasLogicalError(reply)) return absl::StrCat("a logical error: ", Describe(reply));
  const nlohmann::json data = DataOf(reply);
  if (!data.is_object()) return absl::StrCat("no JSON object in Response.data: ", Describe(reply));
  const nlohmann::json expected = ProbeData();  // Named: items() must not outlive it.
  for (const auto& [key, value] : expected.items()) {
    auto it = data.find(key);
    if (it == data.end()) return absl::StrCat("field \"", key, "\" missing: ", Describe(reply));
    if (*it != value) {
      return absl::StrCat("field \"", key, "\" is ", Truncate(it->dump()), ", expected ",
                          Truncate(value.dump()));
    }
  }
  return "";
}

// A started plugin with one backend instance set up (Setup, then Initialize) under `mux`.
struct Mounted {
  std::unique_ptr<PluginUnderTest> plugin;
  uint32_t broker_id = 0;
  std::string mux;
};

absl::Status Initialize(PluginUnderTest& plugin, const std::string& mux) {
  pb::InitializeArgs args;
  pb::InitializeReply reply;
  auto ctx = plugin.NewContext(mux);
  const grpc::Status status = plugin.backend().Initialize(ctx.get(), args, &reply);
  // Vault tolerates a plugin without Initialize (protocol-facts §4.4).
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) return absl::OkStatus();
  if (!status.ok()) {
    absl::Status s = PluginUnderTest::FromGrpc(status);
    return absl::Status(s.code(), absl::StrCat("pb.Backend/Initialize: ", s.message()));
  }
  if (reply.has_err() && (reply.err().err_type() != 0 || !reply.err().err_msg().empty())) {
    return absl::FailedPreconditionError(
        absl::StrCat("pb.Backend/Initialize returned err{type=", reply.err().err_type(), " msg=\"",
                     Truncate(reply.err().err_msg()), "\"}, expected none"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Mounted> Mount(int mux_index = 0) {
  Mounted m;
  m.mux = MuxId(mux_index);
  auto plugin = PluginUnderTest::Start();
  if (!plugin.ok()) return plugin.status();
  m.plugin = std::move(*plugin);
  auto broker_id = m.plugin->SetupBackend(m.mux);
  if (!broker_id.ok()) {
    return absl::Status(broker_id.status().code(),
                        absl::StrCat("pb.Backend/Setup: ", broker_id.status().message()));
  }
  m.broker_id = *broker_id;
  if (absl::Status s = Initialize(*m.plugin, m.mux); !s.ok()) return s;
  return m;
}

// One HandleRequest through the harness; gRPC failures (timeouts included) go to CheckOk.
std::optional<pb::HandleRequestReply> Request(Mounted& m, const std::string& operation,
                                              const std::string& path,
                                              const std::string& data_json = "") {
  auto reply = m.plugin->HandleRequest(m.mux, operation, path, data_json);
  if (!CheckOk(reply.status(), absl::StrCat("pb.Backend/HandleRequest ", operation, " ", path))) {
    return std::nullopt;
  }
  return *std::move(reply);
}

// Writes the probe with `operation` and expects success without a logical error.
bool WriteProbe(Mounted& m, const std::string& operation) {
  auto reply = Request(m, operation, ProbePath(), Config().manifest.backend_probe.write_data_json);
  if (!reply) return false;
  EXPECT_FALSE(HasLogicalError(*reply)) << operation << " of the probe path \"" << ProbePath()
                                        << "\": expected success, got " << Describe(*reply);
  return !HasLogicalError(*reply);
}

std::string MissingPath() {
  return absl::StrCat("conformance-absent-", MuxId(999), "/", MuxId(998));
}

// ---------------------------------------------------------------------------------------------

CONFORMANCE_TEST(Backend, SetupSucceeds, Must,
                 "plugin-protocol.md §4 (call sequence for one mount)",
                 "pb.Backend/Setup with a broker id the host offers MUST dial the host's "
                 "services and reply with an empty SetupReply.err.") {
  auto plugin = PluginUnderTest::Start();
  if (!CheckOk(plugin.status(), "start the plugin")) return;
  auto broker_id = (*plugin)->SetupBackend(MuxId(0));
  CheckOk(broker_id.status(), "pb.Backend/Setup");
}

CONFORMANCE_TEST(Backend, InitializeSucceeds, Must,
                 "plugin-protocol.md §4 (call sequence for one mount)",
                 "pb.Backend/Initialize after Setup MUST reply without an error (Unimplemented "
                 "is tolerated, as by Vault).") {
  auto plugin = PluginUnderTest::Start();
  if (!CheckOk(plugin.status(), "start the plugin")) return;
  const std::string mux = MuxId(0);
  if (!CheckOk((*plugin)->SetupBackend(mux).status(), "pb.Backend/Setup")) return;
  CheckOk(Initialize(**plugin, mux), "pb.Backend/Initialize");
}

CONFORMANCE_TEST(Backend, TypeMatchesManifest, Must, "plugin-protocol.md §4 (pb.Backend)",
                 "pb.Backend/Type MUST report logical (1) for a secret plugin and credential "
                 "(2) for an auth plugin, as the manifest declares.") {
  auto m = Mount();
  if (!CheckOk(m.status(), "mount the backend")) return;
  pb::Empty args;
  pb::TypeReply reply;
  auto ctx = m->plugin->NewContext(m->mux);
  if (!CheckOk(PluginUnderTest::FromGrpc(m->plugin->backend().Type(ctx.get(), args, &reply)),
               "pb.Backend/Type")) {
    return;
  }
  const uint32_t expected =
      Config().manifest.type == PluginType::kAuth ? kBackendTypeCredential : kBackendTypeLogical;
  EXPECT_EQ(reply.type(), expected)
      << "expected type " << expected << " for a " << PluginTypeName(Config().manifest.type)
      << " plugin, got " << reply.type();
}

CONFORMANCE_TEST(Backend, SpecialPathsStable, Must, "lifecycle.md; Vault's ErrMismatchPaths",
                 "pb.Backend/SpecialPaths MUST succeed and return the same paths on every call, "
                 "because Vault compares them across plugin restarts.") {
  auto m = Mount();
  if (!CheckOk(m.status(), "mount the backend")) return;
  std::vector<std::string> answers;
  for (int i = 0; i < 2; ++i) {
    pb::Empty args;
    pb::SpecialPathsReply reply;
    auto ctx = m->plugin->NewContext(m->mux);
    if (!CheckOk(
            PluginUnderTest::FromGrpc(m->plugin->backend().SpecialPaths(ctx.get(), args, &reply)),
            "pb.Backend/SpecialPaths")) {
      return;
    }
    answers.push_back(reply.paths().ShortDebugString());
  }
  EXPECT_EQ(answers[0], answers[1]) << "expected the same special paths twice";
}

CONFORMANCE_TEST(Backend, HelpOnRootAnsweredInBand, Must, "plugin-protocol.md §4 (pb.Backend)",
                 "A \"help\" request on the mount root MUST be answered with a response or a "
                 "logical error in HandleRequestReply, never a gRPC error.") {
  auto m = Mount();
  if (!CheckOk(m.status(), "mount the backend")) return;
  auto reply = m->plugin->HandleRequest(m->mux, "help", "", "");
  if (reply.status().code() == absl::StatusCode::kDeadlineExceeded) {
    ReportTimeout("pb.Backend/HandleRequest help \"\"");
    return;
  }
  EXPECT_TRUE(reply.ok()) << "expected a reply (response or err), got gRPC error "
                          << reply.status();
  if (reply.ok() && HasLogicalError(*reply)) {
    EXPECT_LE(reply->err().err_type(), kErrTypeMax)
        << "expected a known err_type (0.." << kErrTypeMax << "), got " << Describe(*reply);
  }
}

CONFORMANCE_TEST(Backend, UnknownPathAnsweredInBand, Must, "plugin-protocol.md §4 (pb.Backend)",
                 "A read of a path that does not exist MUST be answered with no data or a "
                 "logical error in HandleRequestReply, never a gRPC error.") {
  auto m = Mount();
  if (!CheckOk(m.status(), "mount the backend")) return;
  const std::string path = MissingPath();
  auto reply = m->plugin->HandleRequest(m->mux, "read", path, "");
  if (reply.status().code() == absl::StatusCode::kDeadlineExceeded) {
    ReportTimeout(absl::StrCat("pb.Backend/HandleRequest read ", path));
    return;
  }
  ASSERT_TRUE(reply.ok()) << "expected a reply (no data or err) for read of \"" << path
                          << "\", got gRPC error " << reply.status();
  if (HasLogicalError(*reply)) {
    EXPECT_LE(reply->err().err_type(), kErrTypeMax)
        << "expected a known err_type (0.." << kErrTypeMax << "), got " << Describe(*reply);
  } else {
    EXPECT_TRUE(IsNotFound(*reply))
        << "expected no data for a path never written, got " << Describe(*reply);
  }
}

CONFORMANCE_TEST(Backend, ProbeCreateThenRead, Must, "conformance.md (manifest: backend probe)",
                 "After \"create\" of the manifest's write_data at write_path, a \"read\" of "
                 "write_path MUST return the same fields in Response.data.") {
  auto m = Mount();
  if (!CheckOk(m.status(), "mount the backend")) return;
  if (!WriteProbe(*m, "create")) return;
  auto reply = Request(*m, "read", ProbePath());
  if (!reply) return;
  EXPECT_EQ(ProbeFieldsMismatch(*reply), "") << "expected the written fields back";
}

CONFORMANCE_TEST(Backend, ProbeUpdateThenRead, Must, "conformance.md (manifest: backend probe)",
                 "After \"create\" then \"update\" of write_data at write_path, the update MUST "
                 "succeed and a \"read\" MUST return the same fields.") {
  auto m = Mount();
  if (!CheckOk(m.status(), "mount the backend")) return;
  if (!WriteProbe(*m, "create") || !WriteProbe(*m, "update")) return;
  auto reply = Request(*m, "read", ProbePath());
  if (!reply) return;
  EXPECT_EQ(ProbeFieldsMismatch(*reply), "") << "expected the written fields back";
}

CONFORMANCE_TEST(Backend, StoresThroughHostStorage, Must,
                 "plugin-protocol.md §4 (call sequence for one mount)",
                 "A backend MUST persist writes through the host's pb.Storage reached over the "
                 "broker (Put calls seen by the host), not only in its own memory.") {
  auto m = Mount();
  if (!CheckOk(m.status(), "mount the backend")) return;
  sdk::InMemoryStorage* storage = m->plugin->storage(m->broker_id);
  ASSERT_NE(storage, nullptr) << "harness: no storage behind broker id " << m->broker_id;
  const size_t puts_before = storage->calls("/pb.Storage/Put");
  if (!WriteProbe(*m, "create")) return;
  EXPECT_GT(storage->calls("/pb.Storage/Put"), puts_before)
      << "expected at least one pb.Storage/Put after create, got none";
  EXPECT_GT(storage->size(), 0u) << "expected the host's storage to hold an entry, got none";
}

CONFORMANCE_TEST(Backend, ProbeDeleteThenReadNotFound, Must,
                 "conformance.md (manifest: backend probe)",
                 "After \"delete\" of write_path succeeds, a \"read\" of it MUST return no data "
                 "or a 404-class logical error.") {
  auto m = Mount();
  if (!CheckOk(m.status(), "mount the backend")) return;
  if (!WriteProbe(*m, "create")) return;
  auto deleted = Request(*m, "delete", ProbePath());
  if (!deleted) return;
  ASSERT_FALSE(HasLogicalError(*deleted))
      << "expected delete to succeed, got " << Describe(*deleted);
  auto reply = Request(*m, "read", ProbePath());
  if (!reply) return;
  EXPECT_TRUE(IsNotFound(*reply)) << "expected no data or UnsupportedPath/404 after delete, got "
                                  << Describe(*reply);
}

CONFORMANCE_TEST(Backend, UnsupportedOperationErrorType, Must,
                 "plugin-protocol.md §4 (error kinds)",
                 "An operation the backend does not implement MUST be refused with "
                 "err_type 5 (logical.ErrUnsupportedOperation), not a gRPC error.") {
  auto m = Mount();
  if (!CheckOk(m.status(), "mount the backend")) return;
  const std::string op = "conformance-unknown-operation";
  auto reply = m->plugin->HandleRequest(m->mux, op, ProbePath(),
                                        Config().manifest.backend_probe.write_data_json);
  if (reply.status().code() == absl::StatusCode::kDeadlineExceeded) {
    ReportTimeout(absl::StrCat("pb.Backend/HandleRequest ", op));
    return;
  }
  ASSERT_TRUE(reply.ok()) << "expected a reply with err_type 5, got gRPC error " << reply.status();
  EXPECT_TRUE(reply->has_err() && reply->err().err_type() == kErrTypeUnsupportedOperation)
      << "expected err_type " << kErrTypeUnsupportedOperation << " (UnsupportedOperation), got "
      << Describe(*reply);
}

CONFORMANCE_TEST(Backend, IdempotentRead, Must, "conformance.md (backend profile: idempotency)",
                 "Reading the probe path 10 times without writes in between MUST give the same "
                 "reply every time.") {
  auto m = Mount();
  if (!CheckOk(m.status(), "mount the backend")) return;
  if (!WriteProbe(*m, "create")) return;
  std::optional<pb::HandleRequestReply> first;
  for (int i = 0; i < kIdempotentRepeats; ++i) {
    auto reply = Request(*m, "read", ProbePath());
    if (!reply) return;
    if (!first) {
      first = *reply;
      ASSERT_EQ(ProbeFieldsMismatch(*first), "") << "expected the written fields back";
      continue;
    }
    // Compared as parsed JSON (field order is free) plus error and warnings.
    EXPECT_EQ(DataOf(*reply), DataOf(*first))
        << "read " << i + 1 << ": expected " << Describe(*first) << ", got " << Describe(*reply);
    EXPECT_EQ(reply->err().ShortDebugString(), first->err().ShortDebugString()) << "read " << i + 1;
    EXPECT_EQ(reply->response().warnings_size(), first->response().warnings_size())
        << "read " << i + 1;
  }
}

CONFORMANCE_TEST(Backend, ConcurrentRequests, Must, "plugin-protocol.md §4 (pb.Backend)",
                 "8 callers each sending 16 interleaved updates and reads of the probe path at "
                 "once MUST all be answered correctly within the deadline.") {
  auto m = Mount();
  if (!CheckOk(m.status(), "mount the backend")) return;
  if (!WriteProbe(*m, "create")) return;
  pb::Backend::Stub& stub = m->plugin->backend();
  const std::string data = Config().manifest.backend_probe.write_data_json;
  std::mutex mu;
  std::vector<std::string> failures;  // Guarded by mu.
  int timeouts = 0;                   // Guarded by mu.
  auto caller = [&](int caller_index) {
    for (int i = 0; i < kRequestsPerCaller; ++i) {
      const bool write = (i + caller_index) % 2 == 0;
      pb::HandleRequestArgs args;
      args.mutable_request()->set_id(absl::StrCat("conformance-", caller_index, "-", i));
      args.mutable_request()->set_operation(write ? "update" : "read");
      args.mutable_request()->set_path(ProbePath());
      if (write) args.mutable_request()->set_data(data);
      pb::HandleRequestReply reply;
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + Config().rpc_timeout));
      ctx.AddMetadata("multiplex_id", m->mux);
      const grpc::Status status = stub.HandleRequest(&ctx, args, &reply);
      std::string failure;
      if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        std::lock_guard<std::mutex> lock(mu);
        ++timeouts;
        continue;
      } else if (!status.ok()) {
        failure = absl::StrCat("gRPC error ", status.error_code(), ": ",
                               Truncate(status.error_message()));
      } else if (write && HasLogicalError(reply)) {
        failure = absl::StrCat("update failed: ", Describe(reply));
      } else if (!write) {
        failure = ProbeFieldsMismatch(reply);
      }
      if (!failure.empty()) {
        std::lock_guard<std::mutex> lock(mu);
        failures.push_back(absl::StrCat("caller ", caller_index, " request ", i, " (",
                                        write ? "update" : "read", "): ", failure));
      }
    }
  };
  std::vector<std::thread> threads;
  for (int c = 0; c < kConcurrentCallers; ++c) threads.emplace_back(caller, c);
  for (std::thread& t : threads) t.join();
  if (timeouts > 0) {
    ReportTimeout(absl::StrCat(timeouts, " concurrent pb.Backend/HandleRequest calls after ",
                               absl::FormatDuration(Config().rpc_timeout)));
  }
  EXPECT_TRUE(failures.empty()) << "expected every concurrent request to succeed, got "
                                << failures.size() << " failures; first: "
                                << (failures.empty() ? "" : failures.front());
}

CONFORMANCE_TEST(Backend, ExistenceCheckReflectsWrites, Must, "plugin-protocol.md §4 (pb.Backend)",
                 "pb.Backend/HandleExistenceCheck on the probe path MUST succeed and, when it "
                 "reports check_found, report exists=false before and exists=true after create.") {
  auto m = Mount();
  if (!CheckOk(m.status(), "mount the backend")) return;
  auto check = [&](bool expect_exists) -> bool {
    pb::HandleExistenceCheckArgs args;
    args.mutable_request()->set_operation("create");
    args.mutable_request()->set_path(ProbePath());
    pb::HandleExistenceCheckReply reply;
    auto ctx = m->plugin->NewContext(m->mux);
    if (!CheckOk(PluginUnderTest::FromGrpc(
                     m->plugin->backend().HandleExistenceCheck(ctx.get(), args, &reply)),
                 "pb.Backend/HandleExistenceCheck")) {
      return false;
    }
    EXPECT_FALSE(reply.has_err() && (reply.err().err_type() != 0 || !reply.err().err_msg().empty()))
        << "expected no error, got err{type=" << reply.err().err_type() << " msg=\""
        << Truncate(reply.err().err_msg()) << "\"}";
    if (reply.check_found()) {
      EXPECT_EQ(reply.exists(), expect_exists)
          << "expected exists=" << expect_exists << (expect_exists ? " after" : " before")
          << " create, got exists=" << reply.exists();
    }
    return true;
  };
  if (!check(false)) return;
  if (!WriteProbe(*m, "create")) return;
  check(true);
}

CONFORMANCE_TEST(Backend, InvalidateKeyKeepsData, Must,
                 "plugin-protocol.md §4 (call sequence for one mount)",
                 "pb.Backend/InvalidateKey MUST succeed, and a read of the probe path afterwards "
                 "MUST still return the written fields.") {
  auto m = Mount();
  if (!CheckOk(m.status(), "mount the backend")) return;
  if (!WriteProbe(*m, "create")) return;
  sdk::InMemoryStorage* storage = m->plugin->storage(m->broker_id);
  ASSERT_NE(storage, nullptr) << "harness: no storage behind broker id " << m->broker_id;
  // Invalidate every key the plugin wrote, and the probe path itself.
  std::vector<std::string> keys = storage->Keys();
  keys.push_back(ProbePath());
  for (const std::string& key : keys) {
    pb::InvalidateKeyArgs args;
    args.set_key(key);
    pb::Empty reply;
    auto ctx = m->plugin->NewContext(m->mux);
    if (!CheckOk(
            PluginUnderTest::FromGrpc(m->plugin->backend().InvalidateKey(ctx.get(), args, &reply)),
            absl::StrCat("pb.Backend/InvalidateKey ", Truncate(key)))) {
      return;
    }
  }
  auto reply = Request(*m, "read", ProbePath());
  if (!reply) return;
  EXPECT_EQ(ProbeFieldsMismatch(*reply), "") << "expected the written fields after invalidation";
}

CONFORMANCE_TEST(Backend, CleanupKeepsServing, Must,
                 "plugin-protocol.md §4 (call sequence); lifecycle.md",
                 "pb.Backend/Cleanup MUST succeed without the process exiting: the host, not "
                 "the plugin, ends the process afterwards (health stays SERVING).") {
  auto m = Mount();
  if (!CheckOk(m.status(), "mount the backend")) return;
  pb::Empty args;
  pb::Empty reply;
  auto ctx = m->plugin->NewContext(m->mux);
  if (!CheckOk(PluginUnderTest::FromGrpc(m->plugin->backend().Cleanup(ctx.get(), args, &reply)),
               "pb.Backend/Cleanup")) {
    return;
  }
  auto health = m->plugin->HealthCheck();
  if (!CheckOk(health.status(), "grpc.health.v1.Health/Check after Cleanup")) return;
  EXPECT_EQ(*health, grpc::health::v1::HealthCheckResponse::SERVING)
      << "expected SERVING after Cleanup, got " << *health;
}

}  // namespace
}  // namespace bulwark::conformance
