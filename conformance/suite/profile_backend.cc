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
#include "conformance/suite/profile_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/vault/backend.grpc.pb.h"
#include "sdk/backend.h"

namespace bulwark::conformance {
namespace {

// Repeats of the idempotence test (csi-sanity's IdempotentCount).
constexpr int kIdempotentRepeats = 10;
// The concurrency test: callers and requests per caller.
constexpr int kConcurrentCallers = 8;
constexpr int kRequestsPerCaller = 16;
// The highest err_type Vault knows (sdk/plugin/pb/translation.go, protocol-facts §7).
constexpr uint32_t kErrTypeMax = ErrTypeValue(sdk::ErrorType::kUnrecoverable);

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
  auto reply = Request(m, operation, ProbePath(), ProbeJson());
  if (!reply) return false;
  EXPECT_FALSE(HasLogicalError(*reply)) << operation << " of the probe path \"" << ProbePath()
                                        << "\": expected success, got " << Describe(*reply);
  return !HasLogicalError(*reply);
}

// What a read of the probe concurrent with writes may answer: with idempotent writes, the fields
// after some number of writes the manifest describes (every count is possible); otherwise the
// values depend on how many writes came first, so only the fields' presence is checked
// (BackendProbe::Adaptations). "" when the reply is acceptable.
std::string ConcurrentReadMismatch(const pb::HandleRequestReply& reply) {
  const BackendProbe& probe = Config().manifest.backend_probe;
  if (!probe.idempotent_writes) return ProbeFieldsMissing(reply);
  std::string first;
  for (size_t writes = 1; writes <= probe.read_fields_json.size(); ++writes) {
    std::string mismatch = ProbeFieldsMismatch(reply, writes);
    if (mismatch.empty()) return "";
    if (first.empty()) first = std::move(mismatch);
  }
  return first;
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
  CheckOk(InitializeBackend(**plugin, mux), "pb.Backend/Initialize");
}

CONFORMANCE_TEST(Backend, TypeMatchesManifest, Must, "plugin-protocol.md §4 (pb.Backend)",
                 "pb.Backend/Type MUST report logical (1) for a secret plugin and credential "
                 "(2) for an auth plugin, as the manifest declares.") {
  auto m = StartMounted();
  if (!CheckOk(m.status(), "mount the backend")) return;
  pb::Empty args;
  pb::TypeReply reply;
  auto ctx = m->plugin->NewContext(m->mux);
  if (!CheckOk(PluginUnderTest::FromGrpc(m->plugin->backend().Type(ctx.get(), args, &reply)),
               "pb.Backend/Type")) {
    return;
  }
  const uint32_t expected = static_cast<uint32_t>(Config().manifest.type == PluginType::kAuth
                                                      ? sdk::BackendType::kCredential
                                                      : sdk::BackendType::kLogical);
  EXPECT_EQ(reply.type(), expected)
      << "expected type " << expected << " for a " << PluginTypeName(Config().manifest.type)
      << " plugin, got " << reply.type();
}

CONFORMANCE_TEST(Backend, SpecialPathsStable, Must, "lifecycle.md; Vault's ErrMismatchPaths",
                 "pb.Backend/SpecialPaths MUST succeed and return the same paths on every call, "
                 "because Vault compares them across plugin restarts.") {
  auto m = StartMounted();
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
  auto m = StartMounted();
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
  auto m = StartMounted();
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

CONFORMANCE_TEST(Backend, ProbeCreateThenRead, Must, "conformance.md \"The backend probe\"",
                 "After \"create\" of the manifest's write_data at write_path, a \"read\" of "
                 "write_path MUST return the probe's read_fields for one write in Response.data "
                 "(by default write_data's fields).") {
  auto m = StartMounted();
  if (!CheckOk(m.status(), "mount the backend")) return;
  if (!WriteProbe(*m, "create")) return;
  auto reply = Request(*m, "read", ProbePath());
  if (!reply) return;
  EXPECT_EQ(ProbeFieldsMismatch(*reply), "") << "expected the written fields back";
}

CONFORMANCE_TEST(Backend, ProbeUpdateThenRead, Must, "conformance.md \"The backend probe\"",
                 "After \"create\" then \"update\" of write_data at write_path, the update MUST "
                 "succeed and a \"read\" MUST return the probe's read_fields for two writes.") {
  auto m = StartMounted();
  if (!CheckOk(m.status(), "mount the backend")) return;
  if (!WriteProbe(*m, "create") || !WriteProbe(*m, "update")) return;
  auto reply = Request(*m, "read", ProbePath());
  if (!reply) return;
  EXPECT_EQ(ProbeFieldsMismatch(*reply, 2), "") << "expected the fields after two writes";
}

CONFORMANCE_TEST(Backend, StoresThroughHostStorage, Must,
                 "plugin-protocol.md §4 (call sequence for one mount)",
                 "A backend MUST persist writes through the host's pb.Storage reached over the "
                 "broker (Put calls seen by the host), not only in its own memory.") {
  auto m = StartMounted();
  if (!CheckOk(m.status(), "mount the backend")) return;
  sdk::InMemoryHostStorage* storage = m->plugin->storage(m->broker_id);
  ASSERT_NE(storage, nullptr) << "harness: no storage behind broker id " << m->broker_id;
  const size_t puts_before = storage->calls("/pb.Storage/Put");
  if (!WriteProbe(*m, "create")) return;
  EXPECT_GT(storage->calls("/pb.Storage/Put"), puts_before)
      << "expected at least one pb.Storage/Put after create, got none";
  EXPECT_GT(storage->size(), 0u) << "expected the host's storage to hold an entry, got none";
}

CONFORMANCE_TEST(Backend, ProbeDeleteThenReadNotFound, Must, "conformance.md \"The backend probe\"",
                 "After \"delete\" of write_path succeeds, a \"read\" of it MUST return no data "
                 "or a 404-class logical error; a probe without delete MUST instead refuse it "
                 "with err_type 5 (UnsupportedOperation) and keep its fields.") {
  auto m = StartMounted();
  if (!CheckOk(m.status(), "mount the backend")) return;
  if (!WriteProbe(*m, "create")) return;
  auto deleted = Request(*m, "delete", ProbePath());
  if (!deleted) return;
  if (!Config().manifest.backend_probe.deletable) {
    // Adapted (BackendProbe::Adaptations): the manifest says the probe has no delete.
    EXPECT_TRUE(HasLogicalError(*deleted) &&
                deleted->err().err_type() == ErrTypeValue(sdk::ErrorType::kUnsupportedOperation))
        << "the manifest says the probe has no delete: expected err_type "
        << ErrTypeValue(sdk::ErrorType::kUnsupportedOperation) << " (UnsupportedOperation), got "
        << Describe(*deleted);
    auto reply = Request(*m, "read", ProbePath());
    if (!reply) return;
    EXPECT_EQ(ProbeFieldsMismatch(*reply), "") << "expected the refused delete to change nothing";
    return;
  }
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
  auto m = StartMounted();
  if (!CheckOk(m.status(), "mount the backend")) return;
  const std::string op = "conformance-unknown-operation";
  auto reply = m->plugin->HandleRequest(m->mux, op, ProbePath(), ProbeJson());
  if (reply.status().code() == absl::StatusCode::kDeadlineExceeded) {
    ReportTimeout(absl::StrCat("pb.Backend/HandleRequest ", op));
    return;
  }
  ASSERT_TRUE(reply.ok()) << "expected a reply with err_type 5, got gRPC error " << reply.status();
  EXPECT_TRUE(reply->has_err() &&
              reply->err().err_type() == ErrTypeValue(sdk::ErrorType::kUnsupportedOperation))
      << "expected err_type " << ErrTypeValue(sdk::ErrorType::kUnsupportedOperation)
      << " (UnsupportedOperation), got " << Describe(*reply);
}

CONFORMANCE_TEST(Backend, IdempotentRead, Must, "conformance.md \"The backend probe\"",
                 "Reading the probe path 10 times without writes in between MUST give the same "
                 "reply every time.") {
  auto m = StartMounted();
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
                 "once MUST all be answered correctly within the deadline (reads: the fields of "
                 "read_fields; their values too when writes are idempotent).") {
  auto m = StartMounted();
  if (!CheckOk(m.status(), "mount the backend")) return;
  if (!WriteProbe(*m, "create")) return;
  pb::Backend::Stub& stub = m->plugin->backend();
  const std::string data = ProbeJson();
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
        failure = ConcurrentReadMismatch(reply);
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
  auto m = StartMounted();
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
    EXPECT_FALSE(HasLogicalError(reply))
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
  auto m = StartMounted();
  if (!CheckOk(m.status(), "mount the backend")) return;
  if (!WriteProbe(*m, "create")) return;
  sdk::InMemoryHostStorage* storage = m->plugin->storage(m->broker_id);
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
  auto m = StartMounted();
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
