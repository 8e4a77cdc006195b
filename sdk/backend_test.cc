// Tests of the author-facing types: operations, logical errors, request/response conversion,
// and StorageClient against the in-memory host.
#include "sdk/backend.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sdk/in_memory_host.h"
#include "sdk/storage_client.h"

namespace bulwark::sdk {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(OperationTest, NamesRoundTrip) {
  for (Operation op : {Operation::kCreate, Operation::kRead, Operation::kUpdate, Operation::kPatch,
                       Operation::kDelete, Operation::kList, Operation::kHelp,
                       Operation::kAliasLookahead, Operation::kResolveRole, Operation::kHeader,
                       Operation::kRenew, Operation::kRevoke, Operation::kRollback}) {
    EXPECT_EQ(ParseOperation(OperationName(op)), op) << OperationName(op);
  }
  EXPECT_EQ(OperationName(Operation::kAliasLookahead), "alias-lookahead");
  EXPECT_EQ(ParseOperation("READ"), Operation::kUnknown);
  EXPECT_EQ(ParseOperation(""), Operation::kUnknown);
}

struct ErrorCase {
  absl::Status status;
  ErrorType type;
  absl::StatusCode code;
  int64_t http_code;
};

TEST(LogicalErrorTest, HelpersCarryTheVaultTypeAndAFittingCode) {
  const ErrorCase cases[] = {
      {UserError("bad key"), ErrorType::kUser, absl::StatusCode::kInvalidArgument, 0},
      {InternalError("boom"), ErrorType::kInternal, absl::StatusCode::kInternal, 0},
      {CodedError(413, "too big"), ErrorType::kCoded, absl::StatusCode::kResourceExhausted, 413},
      {CodedError(404, "gone"), ErrorType::kCoded, absl::StatusCode::kNotFound, 404},
      {CodedError(418, "teapot"), ErrorType::kCoded, absl::StatusCode::kInvalidArgument, 418},
      {BadRequestError("x"), ErrorType::kBadRequest, absl::StatusCode::kInvalidArgument, 0},
      {UnsupportedOperationError(), ErrorType::kUnsupportedOperation,
       absl::StatusCode::kUnimplemented, 0},
      {UnsupportedPathError(), ErrorType::kUnsupportedPath, absl::StatusCode::kNotFound, 0},
      {InvalidRequestError("x"), ErrorType::kInvalidRequest, absl::StatusCode::kInvalidArgument, 0},
      {PermissionDeniedError(), ErrorType::kPermissionDenied, absl::StatusCode::kPermissionDenied,
       0},
      {MultiAuthzPendingError(), ErrorType::kMultiAuthzPending,
       absl::StatusCode::kFailedPrecondition, 0},
      {UnrecoverableError("x"), ErrorType::kUnrecoverable, absl::StatusCode::kInternal, 0},
  };
  for (const ErrorCase& c : cases) {
    EXPECT_EQ(c.status.code(), c.code) << c.status;
    const LogicalError error = ToLogicalError(c.status);
    EXPECT_EQ(error.type, c.type) << c.status;
    EXPECT_EQ(error.http_code, c.http_code) << c.status;
    EXPECT_EQ(error.message, c.status.message());
    const pb::ProtoError proto = ToProtoError(c.status);
    EXPECT_EQ(proto.err_type(), static_cast<uint32_t>(c.type));
    EXPECT_EQ(proto.err_msg(), c.status.message());
    EXPECT_EQ(proto.err_code(), c.http_code);
  }
}

absl::Status PropagatesThroughMacros() {
  RETURN_IF_ERROR(PermissionDeniedError("no access to that"));
  return absl::OkStatus();
}

TEST(LogicalErrorTest, SurvivesReturnIfErrorButNotAnnotate) {
  EXPECT_EQ(ToLogicalError(PropagatesThroughMacros()).type, ErrorType::kPermissionDenied);
  const LogicalError annotated = ToLogicalError(Annotate(UserError("bad"), "context"));
  EXPECT_EQ(annotated.type, ErrorType::kUnknown);
  EXPECT_EQ(annotated.message, "context: bad");
}

TEST(LogicalErrorTest, PlainStatusIsUnknownWithItsMessageOnly) {
  const LogicalError error = ToLogicalError(absl::FailedPreconditionError(kErrReadOnly));
  EXPECT_EQ(error.type, ErrorType::kUnknown);
  EXPECT_EQ(error.message, kErrReadOnly);  // No "FAILED_PRECONDITION: " prefix.
}

pb::Request ProtoRequest(const std::string& operation, const std::string& path,
                         const std::string& data) {
  pb::Request proto;
  proto.set_operation(operation);
  proto.set_path(path);
  proto.set_data(data);
  proto.set_client_token("s.token");
  return proto;
}

TEST(RequestTest, ParsesObjectData) {
  absl::StatusOr<Request> request =
      Request::FromProto(ProtoRequest("update", "a/b", R"({"x":1,"y":"two"})"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->operation(), Operation::kUpdate);
  EXPECT_EQ(request->operation_name(), "update");
  EXPECT_EQ(request->path(), "a/b");
  EXPECT_EQ(request->data()["x"].get<int>(), 1);
  EXPECT_EQ(request->data()["y"].get<std::string>(), "two");
  EXPECT_EQ(request->proto().client_token(), "s.token");
}

TEST(RequestTest, NullAndEmptyDataAreAnEmptyObject) {
  for (const char* data : {"", "null"}) {
    absl::StatusOr<Request> request = Request::FromProto(ProtoRequest("read", "k", data));
    ASSERT_TRUE(request.ok()) << request.status();
    EXPECT_TRUE(request->data().is_object());
    EXPECT_TRUE(request->data().empty());
  }
}

TEST(RequestTest, RejectsBadDataWithoutQuotingIt) {
  const std::string secret = "hunter2-very-secret";
  for (const std::string& data :
       {absl::StrCat("{\"password\": \"", secret, "\""), absl::StrCat("[\"", secret, "\"]"),
        absl::StrCat("\"", secret, "\""), absl::StrCat("{\"p\": ", secret, "}")}) {
    absl::StatusOr<Request> request = Request::FromProto(ProtoRequest("update", "k", data));
    ASSERT_FALSE(request.ok()) << data;
    EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(request.status().message(), Not(HasSubstr(secret)));
  }
}

TEST(RequestTest, RejectsDeepNestingBeforeParsing) {
  std::string deep = "{\"a\":";
  for (size_t i = 0; i < kRequestDataDepthMax + 10; ++i) deep += "[";
  absl::StatusOr<Request> request = Request::FromProto(ProtoRequest("update", "k", deep));
  ASSERT_FALSE(request.ok());
  EXPECT_THAT(request.status().message(), HasSubstr("nested deeper than"));

  // Brackets inside strings do not count.
  std::string shallow = "{\"a\":\"" + std::string(kRequestDataDepthMax + 10, '[') + "\"}";
  EXPECT_TRUE(Request::FromProto(ProtoRequest("update", "k", shallow)).ok());
}

TEST(RequestTest, MakeBuildsWhatAHostWouldSend) {
  Request request = Request::Make(Operation::kUpdate, "notes/a", {{"value", "x"}});
  EXPECT_EQ(request.operation(), Operation::kUpdate);
  EXPECT_EQ(request.operation_name(), "update");
  EXPECT_EQ(request.path(), "notes/a");
  EXPECT_EQ(request.data(), nlohmann::json({{"value", "x"}}));
  // The proto carries the data as the JSON text a host sends, so FromProto reads it back.
  absl::StatusOr<Request> parsed = Request::FromProto(request.proto());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->data(), request.data());
  EXPECT_EQ(parsed->operation(), Operation::kUpdate);

  Request list = Request::Make(Operation::kList, "");
  EXPECT_EQ(list.operation_name(), "list");
  EXPECT_TRUE(list.data().is_object());
  EXPECT_TRUE(list.data().empty());
}

TEST(RequestDeathTest, MakeRefusesNonObjectDataAndUnknownOperations) {
  EXPECT_DEATH(Request::Make(Operation::kUpdate, "k", nlohmann::json::array({1})),
               "needs a JSON object");
  EXPECT_DEATH(Request::Make(Operation::kUnknown, "k"), "needs a known operation");
}

TEST(ResponseTest, ToProtoAlwaysSendsJson) {
  Response none;
  EXPECT_EQ(none.ToProto().data(), "null");

  Response response = Response::WithData({{"k", "v"}});
  response.warnings = {"careful"};
  response.headers["X-A"] = {"1", "2"};
  const pb::Response proto = response.ToProto();
  EXPECT_EQ(proto.data(), R"({"k":"v"})");
  EXPECT_THAT(proto.warnings(), ElementsAre("careful"));
  EXPECT_THAT(proto.headers().at("X-A").header(), ElementsAre("1", "2"));
  EXPECT_FALSE(proto.has_secret());

  EXPECT_EQ(Response::ErrorResponse("no").ToProto().data(), R"({"error":"no"})");
}

TEST(ResponseTest, RepairsInvalidUtf8InsteadOfThrowing) {
  Response response = Response::WithData({{"k", std::string("a\xff")}});
  EXPECT_EQ(response.ToProto().data(), "{\"k\":\"a\xEF\xBF\xBD\"}");
}

class StorageClientTest : public ::testing::Test {
 protected:
  std::shared_ptr<InMemoryHostStorage> storage_ = std::make_shared<InMemoryHostStorage>();
  std::shared_ptr<InMemoryHostConnection> connection_ =
      std::make_shared<InMemoryHostConnection>(storage_);
  StorageClient client_{connection_};
};

TEST_F(StorageClientTest, PutGetDeleteList) {
  ASSERT_TRUE(client_.Put({"a/b", "v1", false}).ok());
  ASSERT_TRUE(client_.Put({"a/c/d", std::string("\0bin", 4), true}).ok());
  ASSERT_TRUE(client_.Put({"z", "v3", false}).ok());

  absl::StatusOr<std::optional<StorageEntry>> got = client_.Get("a/c/d");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  // bulwark's host keeps no seal_wrap flag (its Storage has none), so it reads back false.
  EXPECT_EQ(**got, (StorageEntry{"a/c/d", std::string("\0bin", 4), false}));

  absl::StatusOr<std::vector<std::string>> root = client_.List("");
  ASSERT_TRUE(root.ok());
  EXPECT_THAT(*root, ElementsAre("a/", "z"));
  absl::StatusOr<std::vector<std::string>> under_a = client_.List("a/");
  ASSERT_TRUE(under_a.ok());
  EXPECT_THAT(*under_a, ElementsAre("b", "c/"));

  ASSERT_TRUE(client_.Delete("a/b").ok());
  ASSERT_TRUE(client_.Delete("never-there").ok());
  got = client_.Get("a/b");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  EXPECT_EQ(storage_->calls(kStoragePutMethod), 3u);
}

TEST_F(StorageClientTest, PutKeyValueStoresAPlainEntry) {
  ASSERT_TRUE(client_.Put("notes/a", "milk").ok());
  EXPECT_EQ(storage_->Get("notes/a"), (StorageEntry{"notes/a", "milk", false}));
  ASSERT_TRUE(client_.Put("notes/a", "eggs").ok());  // Replaces.
  absl::StatusOr<std::optional<StorageEntry>> got = client_.Get("notes/a");
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
  EXPECT_EQ((*got)->value, "eggs");
  storage_->SetWriteError(std::string(kErrReadOnly));
  EXPECT_EQ(client_.Put("notes/a", "x").message(), kErrReadOnly);
}

TEST_F(StorageClientTest, HostErrorTextIsPassedThroughUnchanged) {
  storage_->SetWriteError(std::string(kErrReadOnly));
  absl::Status put = client_.Put({"k", "v", false});
  EXPECT_EQ(put.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(put.message(), kErrReadOnly);
  storage_->SetWriteError("Vault is sealed");
  absl::Status del = client_.Delete("k");
  EXPECT_EQ(del.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(del.message(), "Vault is sealed");
}

TEST_F(StorageClientTest, TransportErrorsNameTheOperationAndKey) {
  connection_->Close();
  absl::StatusOr<std::optional<StorageEntry>> got = client_.Get("some/key");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(got.status().message(), HasSubstr("storage get \"some/key\""));
}

}  // namespace
}  // namespace bulwark::sdk
