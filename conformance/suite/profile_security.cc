// The security profile (every plugin): hostile input is answered without a crash or a hang,
// secrets in requests never reach the plugin's stdout/stderr, and SIGINT does not stop it
// (go-plugin plugins ignore SIGINT: the host's terminal sends it to the whole process group).
//
// Backend plugins get the hostile input in pb.Backend/HandleRequest (Request.data, path,
// operation) on the manifest's probe path. Database plugins get it where they read free-form
// text: NewUser statements (Vault's MongoDB and Elasticsearch plugins parse them as JSON),
// passwords and usernames.
#include <signal.h>

#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "conformance/suite/conformance.h"
#include "conformance/suite/harness.h"
#include "conformance/suite/profile_util.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/vault/backend.grpc.pb.h"
#include "proto/vault/database.grpc.pb.h"

namespace bulwark::conformance {
namespace {

// Request data larger than gRPC's default 4 MiB message limit and any sane plugin limit.
constexpr size_t kOversizedBytes = size_t{4} << 20;
// Nesting depth of the deep JSON: far beyond Go's encoding/json limit (10000) and enough to
// overflow the stack of a naive recursive parser.
constexpr int kNestingDepth = 100000;
// How long a plugin that was sent SIGINT gets to (wrongly) die before the suite decides it
// survived. Death by signal takes microseconds; this only has to beat scheduling noise.
constexpr absl::Duration kSigintWindow = absl::Milliseconds(500);

// A unary call with raw bytes as the request (gRPC 1.51's generic stub is callback-only); the
// context's deadline bounds the wait.
grpc::Status GenericUnary(Mounted& t, const std::string& method, const grpc::ByteBuffer& request) {
  grpc::GenericStub generic(t.plugin->channel());
  grpc::ByteBuffer response;
  auto ctx = t.plugin->NewContext(t.mux);
  std::promise<grpc::Status> done;
  generic.UnaryCall(ctx.get(), method, grpc::StubOptions(), &request, &response,
                    [&done](grpc::Status status) { done.set_value(std::move(status)); });
  return done.get_future().get();
}

// The plugin under test, set up as Vault would before sending requests: a backend mounted
// (Setup + Initialize), or a database initialized with the manifest's config. A backend whose
// Initialize reports an error is still mounted: hostile input must not crash it either.
absl::StatusOr<Mounted> StartTarget() { return StartMounted(0, InitializeErrors::kIgnore); }

// What became of one hostile request.
struct Outcome {
  absl::Status rpc;            // The gRPC status, as absl.
  bool logical_error = false;  // A backend's HandleRequestReply.err was set.
  std::string description;
  bool refused() const { return !rpc.ok() || logical_error; }
};

Outcome FromBackendCall(const grpc::Status& status, const pb::HandleRequestReply& reply) {
  Outcome o;
  o.rpc = PluginUnderTest::FromGrpc(status);
  if (!status.ok()) {
    o.description = absl::StrCat("gRPC error ", o.rpc.ToString());
    return o;
  }
  o.logical_error = HasLogicalError(reply);
  o.description = o.logical_error ? absl::StrCat("logical error type ", reply.err().err_type())
                                  : std::string("a successful reply");
  return o;
}

Outcome BackendRequest(Mounted& t, pb::Request request) {
  pb::HandleRequestArgs args;
  *args.mutable_request() = std::move(request);
  pb::HandleRequestReply reply;
  auto ctx = t.plugin->NewContext(t.mux);
  const grpc::Status status = t.plugin->backend().HandleRequest(ctx.get(), args, &reply);
  return FromBackendCall(status, reply);
}

pb::Request ProbeRequest(const std::string& operation, std::string data) {
  pb::Request request;
  request.set_id("conformance-security");
  request.set_operation(operation);
  request.set_path(ProbePath());
  request.set_data(std::move(data));
  return request;
}

Outcome DatabaseNewUser(Mounted& t, const std::string& password,
                        const std::vector<std::string>& statements) {
  dbplugin::v5::NewUserRequest request;
  request.mutable_username_config()->set_display_name("conformance");
  request.mutable_username_config()->set_role_name("security");
  request.set_password(password);
  for (const std::string& s : statements) request.mutable_statements()->add_commands(s);
  dbplugin::v5::NewUserResponse response;
  auto ctx = t.plugin->NewContext(t.mux);
  Outcome o;
  o.rpc = PluginUnderTest::FromGrpc(t.database->NewUser(ctx.get(), request, &response));
  o.description = o.rpc.ok() ? "a successful reply" : absl::StrCat("gRPC error ", o.rpc.ToString());
  return o;
}

// Sends hostile JSON where each plugin type reads JSON (backend: create on the probe path;
// database: NewUser statements).
Outcome SendJson(Mounted& t, const std::string& json) {
  if (IsDatabase()) return DatabaseNewUser(t, "Conformance-1-password", {json});
  return BackendRequest(t, ProbeRequest("create", json));
}

// The request must have been answered (a timeout is reported as such), and the plugin must
// still be serving: health SERVING and, in launch mode, the process running.
void ExpectAnsweredAndAlive(Mounted& t, const Outcome& outcome, absl::string_view what) {
  if (outcome.rpc.code() == absl::StatusCode::kDeadlineExceeded) {
    ReportTimeout(absl::StrCat(what, " after ", absl::FormatDuration(Config().rpc_timeout)));
    return;
  }
  auto health = t.plugin->HealthCheck();
  if (health.status().code() == absl::StatusCode::kDeadlineExceeded) {
    ReportTimeout(absl::StrCat("grpc.health.v1.Health/Check after ", what));
    return;
  }
  EXPECT_TRUE(health.ok() && *health == grpc::health::v1::HealthCheckResponse::SERVING)
      << "after " << what << " (answered with " << outcome.description
      << "): expected health SERVING, got "
      << (health.ok() ? absl::StrCat("status ", *health) : health.status().ToString());
  if (!t.plugin->attached()) {
    EXPECT_TRUE(ProcessRunning(t.plugin->pid()))
        << "after " << what << ": expected the plugin process running, it has exited";
  }
}

// ---------------------------------------------------------------------------------------------

CONFORMANCE_TEST(Security, OversizedRequestSurvived, Must,
                 "conformance.md \"The security profile\"",
                 "A request carrying 4 MiB of data MUST be answered (accepted or refused) "
                 "within the deadline and the plugin MUST keep serving.") {
  auto t = StartTarget();
  if (!CheckOk(t.status(), "start and set up the plugin")) return;
  Outcome outcome;
  if (IsDatabase()) {
    outcome = DatabaseNewUser(*t, std::string(kOversizedBytes, 'p'), {});
  } else {
    std::string data = absl::StrCat("{\"value\":\"", std::string(kOversizedBytes, 'x'), "\"}");
    outcome = BackendRequest(*t, ProbeRequest("create", std::move(data)));
  }
  ExpectAnsweredAndAlive(*t, outcome, "a 4 MiB request");
}

CONFORMANCE_TEST(Security, MalformedJsonRefused, Must,
                 "plugin-protocol.md §4 (pb.Backend: Request.data)",
                 "Request data that is not valid JSON MUST be answered without a crash, and a "
                 "backend MUST refuse it (gRPC error or logical error); the plugin keeps "
                 "serving.") {
  auto t = StartTarget();
  if (!CheckOk(t.status(), "start and set up the plugin")) return;
  const Outcome outcome = SendJson(*t, "{\"value\": \"unterminated, \"x\": [1, 2,");
  if (!IsDatabase() && outcome.rpc.code() != absl::StatusCode::kDeadlineExceeded) {
    EXPECT_TRUE(outcome.refused())
        << "expected malformed JSON data to be refused, got " << outcome.description;
  }
  ExpectAnsweredAndAlive(*t, outcome, "malformed JSON data");
}

CONFORMANCE_TEST(Security, NonObjectJsonRefused, Must,
                 "plugin-protocol.md §4 (pb.Backend: Request.data)",
                 "Request data that is valid JSON but not an object (an array, a string, a "
                 "number) MUST be answered without a crash, and a backend MUST refuse it.") {
  auto t = StartTarget();
  if (!CheckOk(t.status(), "start and set up the plugin")) return;
  for (const char* json : {"[\"not\", \"an\", \"object\"]", "\"just a string\"", "42"}) {
    const Outcome outcome = SendJson(*t, json);
    if (!IsDatabase() && outcome.rpc.code() != absl::StatusCode::kDeadlineExceeded) {
      EXPECT_TRUE(outcome.refused())
          << "expected data " << json << " to be refused, got " << outcome.description;
    }
    ExpectAnsweredAndAlive(*t, outcome, absl::StrCat("data ", json));
    if (HasFailure()) return;
  }
}

CONFORMANCE_TEST(Security, DeeplyNestedJsonSurvived, Must,
                 "conformance.md \"The security profile\"",
                 "JSON nested 100000 levels deep MUST be answered (accepted or refused) within "
                 "the deadline and the plugin MUST keep serving.") {
  auto t = StartTarget();
  if (!CheckOk(t.status(), "start and set up the plugin")) return;
  std::string json = "{\"value\":";
  json.append(kNestingDepth, '[');
  json.append(kNestingDepth, ']');
  json.append("}");
  ExpectAnsweredAndAlive(*t, SendJson(*t, json), "JSON nested 100000 deep");
}

CONFORMANCE_TEST(Security, InvalidUtf8Survived, Must, "conformance.md \"The security profile\"",
                 "A request whose path (database: username) is not valid UTF-8 MUST be answered "
                 "within the deadline and the plugin MUST keep serving.") {
  auto t = StartTarget();
  if (!CheckOk(t.status(), "start and set up the plugin")) return;
  const std::string bad = "conformance-\xff\xfe\xc0\x80-\xed\xa0\x80";
  // C++ protobuf only logs when it serializes invalid UTF-8 in a proto3 string; the bytes go
  // out unchanged, as they would from a hostile or buggy host.
  Outcome outcome;
  if (IsDatabase()) {
    dbplugin::v5::DeleteUserRequest request;
    request.set_username(bad);
    dbplugin::v5::DeleteUserResponse response;
    auto ctx = t->plugin->NewContext(t->mux);
    outcome.rpc = PluginUnderTest::FromGrpc(t->database->DeleteUser(ctx.get(), request, &response));
    outcome.description = outcome.rpc.ok() ? "a successful reply" : outcome.rpc.ToString();
  } else {
    pb::Request request = ProbeRequest("read", "");
    request.set_path(absl::StrCat(ProbePath(), "/", bad));
    outcome = BackendRequest(*t, std::move(request));
  }
  ExpectAnsweredAndAlive(*t, outcome, "an invalid UTF-8 path");
}

CONFORMANCE_TEST(Security, UnknownOperationSurvived, Must, "plugin-protocol.md §4 (pb.Backend)",
                 "An unknown operation (backend: a 10 KiB operation name with control "
                 "characters; database: an unknown RPC method) MUST be answered and the plugin "
                 "MUST keep serving.") {
  auto t = StartTarget();
  if (!CheckOk(t.status(), "start and set up the plugin")) return;
  Outcome outcome;
  if (IsDatabase()) {
    // An empty message (a default ByteBuffer is invalid, not empty).
    grpc::Slice empty{std::string()};
    const grpc::ByteBuffer request(&empty, 1);
    outcome.rpc = PluginUnderTest::FromGrpc(
        GenericUnary(*t, "/dbplugin.v5.Database/ConformanceUnknown", request));
    outcome.description = outcome.rpc.ToString();
  } else {
    std::string op = "\x01\x1b[2Jconformance\n";
    op.append(10 * 1024, 'o');
    outcome = BackendRequest(*t, ProbeRequest(op, ProbeJson()));
  }
  ExpectAnsweredAndAlive(*t, outcome, "an unknown operation");
}

CONFORMANCE_TEST(Security, MalformedMessageRefused, Must, "plugin-protocol.md §4 (pb.Backend)",
                 "A request message that is not a valid protobuf encoding MUST be refused with a "
                 "gRPC error and the plugin MUST keep serving.") {
  auto t = StartTarget();
  if (!CheckOk(t.status(), "start and set up the plugin")) return;
  // Field 1 with the reserved wire type 7: no protobuf parser may accept it.
  static constexpr unsigned char kGarbage[] = {0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  grpc::Slice slice(kGarbage, sizeof(kGarbage));
  const grpc::ByteBuffer request(&slice, 1);
  const char* method =
      IsDatabase() ? "/dbplugin.v5.Database/Initialize" : "/pb.Backend/HandleRequest";
  Outcome outcome;
  outcome.rpc = PluginUnderTest::FromGrpc(GenericUnary(*t, method, request));
  outcome.description = outcome.rpc.ok() ? "a successful reply" : outcome.rpc.ToString();
  if (outcome.rpc.code() != absl::StatusCode::kDeadlineExceeded) {
    EXPECT_FALSE(outcome.rpc.ok()) << "expected a gRPC error for an unparsable " << method
                                   << " request, got a successful reply";
  }
  ExpectAnsweredAndAlive(*t, outcome, "an unparsable request message");
}

CONFORMANCE_TEST(Security, SecretsNotLogged, Must, "conformance.md \"The security profile\"",
                 "Secrets sent in requests (data, client token, header values, passwords) MUST "
                 "NOT appear on the plugin's stdout, stderr or GRPCStdio stream, during "
                 "requests or after shutdown.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  auto t = StartTarget();
  if (!CheckOk(t.status(), "start and set up the plugin")) return;
  const std::vector<std::string> canaries = {CanarySecret("security-data"),
                                             CanarySecret("security-token"),
                                             CanarySecret("security-header")};
  if (IsDatabase()) {
    // Success and failure paths both: a NewUser that works, an UpdateUser of an unknown user.
    DatabaseNewUser(*t, canaries[0], {absl::StrCat("{\"password\":\"", canaries[1], "\"}")});
    dbplugin::v5::UpdateUserRequest update;
    update.set_username(absl::StrCat("conformance-absent-", Config().seed));
    update.mutable_password()->set_new_password(canaries[2]);
    dbplugin::v5::UpdateUserResponse response;
    auto ctx = t->plugin->NewContext(t->mux);
    t->database->UpdateUser(ctx.get(), update, &response);
  } else {
    nlohmann::json data = nlohmann::json::parse(ProbeJson(), nullptr, /*allow_exceptions=*/false);
    if (!data.is_object()) data = nlohmann::json::object();
    data["conformance_secret"] = canaries[0];
    auto decorate = [&](pb::Request request) {
      request.set_client_token(canaries[1]);
      request.set_client_token_accessor(canaries[1]);
      (*request.mutable_headers())["X-Conformance-Secret"].add_header(canaries[2]);
      (*request.mutable_headers())["Authorization"].add_header(
          absl::StrCat("Bearer ", canaries[2]));
      return request;
    };
    // Success paths, an error path with the secret in the data, and malformed data around it.
    BackendRequest(*t, decorate(ProbeRequest("create", data.dump())));
    BackendRequest(*t, decorate(ProbeRequest("read", "")));
    BackendRequest(*t, decorate(ProbeRequest("conformance-unknown-operation", data.dump())));
    BackendRequest(*t, decorate(ProbeRequest(
                           "create", absl::StrCat("{\"v\": \"", canaries[0], "\", \"bad\": ["))));
  }
  auto scan = [&](absl::string_view when) {
    std::vector<std::pair<std::string, std::string>> outputs = {
        {"stdout", t->plugin->stdout_text()}, {"stderr", t->plugin->stderr_text()}};
    for (const std::string& line : t->plugin->StdioLines()) outputs.push_back({"stdio", line});
    for (const auto& [stream, text] : outputs) {
      for (size_t i = 0; i < canaries.size(); ++i) {
        EXPECT_FALSE(absl::StrContains(text, canaries[i]))
            << when << ": expected no request secret on " << stream << ", found secret #" << i
            << " ("
            << (i == 0   ? "data/password"
                : i == 1 ? "token"
                         : "header/new password")
            << ")";
      }
    }
  };
  // Best effort: output the reader threads have not consumed yet is caught by the scan after
  // the exit, which sees everything (WaitForExit waits for end of file on both pipes).
  (void)t->plugin->HealthCheck();
  scan("after the requests");
  if (HasFailure()) return;
  // go-plugin hosts ignore Shutdown's status (v1.0.1 plugins stop the server before replying,
  // so the host sees UNAVAILABLE); whether Shutdown works is the services profile's business.
  // Here only the output up to the exit matters, so a plugin that stays up is killed.
  (void)t->plugin->Shutdown();
  auto exit = t->plugin->WaitForExit(Config().shutdown_grace);
  if (!exit.ok()) {
    t->plugin->Signal(SIGKILL);
    exit = t->plugin->WaitForExit();
    if (!CheckOk(exit.status(), "the plugin's exit after Shutdown and SIGKILL")) return;
  }
  scan("after shutdown");
}

CONFORMANCE_TEST(Security, IgnoresSigint, Must,
                 "plugin-protocol.md §1 (launch); go-plugin server.go",
                 "A plugin MUST ignore SIGINT (the host's terminal sends it to the whole process "
                 "group): after SIGINT it keeps running and health stays SERVING.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  auto t = StartTarget();
  if (!CheckOk(t.status(), "start and set up the plugin")) return;
  ASSERT_EQ(t->plugin->Signal(SIGINT), 0) << "kill(SIGINT) failed";
  // The one bounded wait in this profile: for an exit that must not happen.
  auto exit = t->plugin->WaitForExit(kSigintWindow);
  if (exit.ok()) {
    ADD_FAILURE() << "expected the plugin to survive SIGINT, it exited with "
                  << (exit->signaled ? absl::StrCat("signal ", exit->signal)
                                     : absl::StrCat("code ", exit->code));
    return;
  }
  Outcome sent;
  sent.description = "SIGINT";
  ExpectAnsweredAndAlive(*t, sent, "SIGINT");
}

}  // namespace
}  // namespace bulwark::conformance
