// Tests of BackendDispatcher with a scripted backend and the in-memory host: routing, the
// instance table, multiplexing, error placement (gRPC status vs. reply fields), metadata mode.
#include "sdk/dispatcher.h"

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/log/log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/vault/backend.pb.h"
#include "proto/vault/multiplexing.pb.h"
#include "proto/vault/version.pb.h"
#include "sdk/in_memory_host.h"

namespace bulwark::sdk {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Echoes what it was built with; misbehaves on request.
class ScriptedBackend : public Backend {
 public:
  explicit ScriptedBackend(const BackendConfig& config, std::atomic<int>* cleanups)
      : config_(config), cleanups_(cleanups) {}

  absl::Status Initialize() override {
    if (config_.config.count("fail_initialize") != 0) return UserError("initialize failed");
    return config_.storage->Put({"initialized", "yes", false});
  }

  HandleResult HandleRequest(const Request& request) override {
    if (request.path() == "throw") throw std::runtime_error("secret-in-exception");
    if (request.path() == "forbidden") return PermissionDeniedError("you may not see this");
    if (request.path() == "plain-error") return absl::UnavailableError("backend unavailable");
    if (request.path() == "nothing") return std::optional<Response>();
    nlohmann::json data = {{"multiplex_id", config_.multiplex_id},
                           {"uuid", config_.backend_uuid},
                           {"operation", request.operation_name()},
                           {"echo", request.data()}};
    return Response::WithData(std::move(data));
  }

  absl::StatusOr<ExistenceCheck> HandleExistenceCheck(const Request& request) override {
    return ExistenceCheck{true, request.path() == "exists"};
  }

  SpecialPaths special_paths() const override {
    SpecialPaths paths;
    paths.root = {"root/*"};
    paths.unauthenticated = {"login"};
    return paths;
  }

  BackendType type() const override { return BackendType::kCredential; }
  void Cleanup() override { ++*cleanups_; }
  void InvalidateKey(absl::string_view key) override {
    config_.storage->Put({absl::StrCat("invalidated/", key), "", false}).IgnoreError();
  }

 private:
  const BackendConfig config_;
  std::atomic<int>* const cleanups_;
};

class DispatcherTest : public ::testing::Test {
 protected:
  void Build(DispatcherOptions options) {
    options.log = &log_;
    dispatcher_ = std::make_unique<BackendDispatcher>(
        [this](const BackendConfig& config) -> absl::StatusOr<std::unique_ptr<Backend>> {
          if (config.config.count("fail_factory") != 0) {
            return absl::InvalidArgumentError("bad mount config: fail_factory is set");
          }
          if (config.config.count("null_factory") != 0) return std::unique_ptr<Backend>();
          return std::make_unique<ScriptedBackend>(config, &cleanups_);
        },
        dialer_, std::move(options));
  }

  template <typename Reply>
  absl::StatusOr<Reply> Call(absl::string_view method, const google::protobuf::Message& request,
                             absl::string_view id) {
    absl::StatusOr<std::string> bytes =
        dispatcher_->Dispatch(method, request.SerializeAsString(), id);
    if (!bytes.ok()) return bytes.status();
    Reply reply;
    if (!reply.ParseFromString(*bytes)) return absl::InternalError("bad reply");
    return reply;
  }

  // Offers fresh storage under a new broker id and calls Setup; returns the storage.
  std::shared_ptr<InMemoryHostStorage> Setup(absl::string_view id,
                                             std::map<std::string, std::string> config = {}) {
    auto storage = std::make_shared<InMemoryHostStorage>();
    const uint32_t broker_id = next_broker_id_++;
    dialer_.Offer(broker_id, storage);
    pb::SetupArgs args;
    args.set_broker_id(broker_id);
    args.set_backenduuid(absl::StrCat("uuid-", id));
    args.mutable_config()->insert(config.begin(), config.end());
    absl::StatusOr<pb::SetupReply> reply = Call<pb::SetupReply>(kSetupMethod, args, id);
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (reply.ok()) {
      EXPECT_EQ(reply->err(), "");
    }
    return storage;
  }

  absl::StatusOr<pb::HandleRequestReply> Handle(absl::string_view id, const std::string& op,
                                                const std::string& path,
                                                const std::string& data = "null") {
    pb::HandleRequestArgs args;
    args.mutable_request()->set_operation(op);
    args.mutable_request()->set_path(path);
    args.mutable_request()->set_data(data);
    return Call<pb::HandleRequestReply>(kHandleRequestMethod, args, id);
  }

  MemoryLogSink log_;
  InMemoryHostDialer dialer_;
  std::atomic<int> cleanups_{0};
  uint32_t next_broker_id_ = 1;
  std::unique_ptr<BackendDispatcher> dispatcher_;
};

TEST_F(DispatcherTest, SetupDialsTheBrokerAndPassesTheConfig) {
  Build({});
  std::shared_ptr<InMemoryHostStorage> storage = Setup("m1", {{"plugin_name", "scripted"}});
  EXPECT_EQ(dispatcher_->instance_count(), 1u);
  EXPECT_EQ(dialer_.connections().size(), 1u);

  absl::StatusOr<pb::InitializeReply> init =
      Call<pb::InitializeReply>(kInitializeMethod, pb::InitializeArgs(), "m1");
  ASSERT_TRUE(init.ok()) << init.status();
  EXPECT_FALSE(init->has_err());
  EXPECT_TRUE(storage->Get("initialized").has_value());

  absl::StatusOr<pb::HandleRequestReply> reply = Handle("m1", "update", "p", R"({"a":[1,2]})");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_FALSE(reply->has_err());
  nlohmann::json data = nlohmann::json::parse(reply->response().data());
  EXPECT_EQ(data["multiplex_id"], "m1");
  EXPECT_EQ(data["uuid"], "uuid-m1");
  EXPECT_EQ(data["operation"], "update");
  EXPECT_EQ(data["echo"], nlohmann::json::parse(R"({"a":[1,2]})"));
}

TEST_F(DispatcherTest, TypeSpecialPathsExistenceAndInvalidate) {
  Build({});
  std::shared_ptr<InMemoryHostStorage> storage = Setup("m1");
  absl::StatusOr<pb::TypeReply> type = Call<pb::TypeReply>(kTypeMethod, pb::Empty(), "m1");
  ASSERT_TRUE(type.ok());
  EXPECT_EQ(type->type(), 2u);

  absl::StatusOr<pb::SpecialPathsReply> paths =
      Call<pb::SpecialPathsReply>(kSpecialPathsMethod, pb::Empty(), "m1");
  ASSERT_TRUE(paths.ok());
  EXPECT_THAT(paths->paths().root(), ElementsAre("root/*"));
  EXPECT_THAT(paths->paths().unauthenticated(), ElementsAre("login"));

  pb::HandleExistenceCheckArgs check;
  check.mutable_request()->set_operation("create");
  check.mutable_request()->set_path("exists");
  absl::StatusOr<pb::HandleExistenceCheckReply> exists =
      Call<pb::HandleExistenceCheckReply>(kHandleExistenceCheckMethod, check, "m1");
  ASSERT_TRUE(exists.ok());
  EXPECT_TRUE(exists->check_found());
  EXPECT_TRUE(exists->exists());

  pb::InvalidateKeyArgs invalidate;
  invalidate.set_key("cfg");
  ASSERT_TRUE(Call<pb::Empty>(kInvalidateKeyMethod, invalidate, "m1").ok());
  EXPECT_TRUE(storage->Get("invalidated/cfg").has_value());
}

TEST_F(DispatcherTest, VersionAndMultiplexingSupportNeedNoInstance) {
  DispatcherOptions options;
  options.plugin_version = "v1.2.3";
  Build(options);
  absl::StatusOr<logical::VersionReply> version =
      Call<logical::VersionReply>(kVersionMethod, logical::Empty(), "");
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->plugin_version(), "v1.2.3");
  absl::StatusOr<pluginutil::multiplexing::MultiplexingSupportResponse> mux =
      Call<pluginutil::multiplexing::MultiplexingSupportResponse>(
          kMultiplexingSupportMethod, pluginutil::multiplexing::MultiplexingSupportRequest(), "");
  ASSERT_TRUE(mux.ok());
  EXPECT_TRUE(mux->supported());
}

TEST_F(DispatcherTest, UnknownMethodIsUnimplemented) {
  Build({});
  absl::StatusOr<std::string> reply = dispatcher_->Dispatch("/pb.Backend/Nope", "", "m1");
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(reply.status().message(), HasSubstr("/pb.Backend/Nope"));
}

TEST_F(DispatcherTest, MalformedRequestIsInvalidArgument) {
  Build({});
  Setup("m1");
  absl::StatusOr<std::string> reply =
      dispatcher_->Dispatch(kHandleRequestMethod, std::string("\xff\xff\xff", 3), "m1");
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<pb::HandleRequestReply> array_data = Handle("m1", "update", "p", "[1]");
  EXPECT_EQ(array_data.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DispatcherTest, LogicalErrorsGoInTheReplyWithTheirType) {
  Build({});
  Setup("m1");
  absl::StatusOr<pb::HandleRequestReply> denied = Handle("m1", "read", "forbidden");
  ASSERT_TRUE(denied.ok()) << denied.status();
  EXPECT_EQ(denied->err().err_type(), 8u);
  EXPECT_EQ(denied->err().err_msg(), "you may not see this");
  // A sentinel's message also travels as an error response, since Vault drops it.
  EXPECT_EQ(denied->response().data(), R"({"error":"you may not see this"})");

  absl::StatusOr<pb::HandleRequestReply> plain = Handle("m1", "read", "plain-error");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->err().err_type(), 0u);
  EXPECT_EQ(plain->err().err_msg(), "backend unavailable");
  EXPECT_FALSE(plain->has_response());

  absl::StatusOr<pb::HandleRequestReply> nothing = Handle("m1", "read", "nothing");
  ASSERT_TRUE(nothing.ok());
  EXPECT_FALSE(nothing->has_err());
  EXPECT_FALSE(nothing->has_response());
}

TEST_F(DispatcherTest, ExceptionsBecomeInternalErrorsWithoutTheirText) {
  Build({});
  Setup("m1");
  absl::StatusOr<pb::HandleRequestReply> reply = Handle("m1", "read", "throw");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->err().err_type(), 2u);
  EXPECT_THAT(reply->err().err_msg(), ::testing::Not(HasSubstr("secret-in-exception")));
  for (const LogRecord& record : log_.records()) {
    EXPECT_THAT(record.message, ::testing::Not(HasSubstr("secret-in-exception")));
    for (const auto& [key, value] : record.fields) {
      EXPECT_THAT(value, ::testing::Not(HasSubstr("secret-in-exception")));
    }
  }
}

TEST_F(DispatcherTest, InitializeErrorGoesInTheReply) {
  Build({});
  Setup("m1", {{"fail_initialize", "1"}});
  absl::StatusOr<pb::InitializeReply> init =
      Call<pb::InitializeReply>(kInitializeMethod, pb::InitializeArgs(), "m1");
  ASSERT_TRUE(init.ok());
  EXPECT_EQ(init->err().err_type(), 1u);
  EXPECT_EQ(init->err().err_msg(), "initialize failed");
}

TEST_F(DispatcherTest, FactoryErrorGoesInSetupReplyAndFreesTheId) {
  Build({});
  auto storage = std::make_shared<InMemoryHostStorage>();
  dialer_.Offer(7, storage);
  pb::SetupArgs args;
  args.set_broker_id(7);
  (*args.mutable_config())["fail_factory"] = "1";
  absl::StatusOr<pb::SetupReply> reply = Call<pb::SetupReply>(kSetupMethod, args, "m1");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->err(), "bad mount config: fail_factory is set");
  EXPECT_EQ(dispatcher_->instance_count(), 0u);

  dialer_.Offer(8, storage);
  args.set_broker_id(8);
  args.mutable_config()->clear();
  (*args.mutable_config())["null_factory"] = "1";
  reply = Call<pb::SetupReply>(kSetupMethod, args, "m1");
  ASSERT_TRUE(reply.ok());
  EXPECT_THAT(reply->err(), HasSubstr("returned no backend"));

  Setup("m1");  // The id is free again.
  EXPECT_EQ(dispatcher_->instance_count(), 1u);
}

TEST_F(DispatcherTest, SetupWithoutBrokerOfferFailsWithTheDialError) {
  Build({});
  pb::SetupArgs args;
  args.set_broker_id(99);
  absl::StatusOr<pb::SetupReply> reply = Call<pb::SetupReply>(kSetupMethod, args, "m1");
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(reply.status().message(), HasSubstr("broker id 99"));
  EXPECT_EQ(dispatcher_->instance_count(), 0u);
}

TEST_F(DispatcherTest, MultiplexedInstancesAreKeyedById) {
  Build({});
  Setup("m1");
  Setup("m2");
  EXPECT_EQ(dispatcher_->instance_count(), 2u);
  absl::StatusOr<pb::HandleRequestReply> r1 = Handle("m1", "read", "p");
  absl::StatusOr<pb::HandleRequestReply> r2 = Handle("m2", "read", "p");
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(nlohmann::json::parse(r1->response().data())["multiplex_id"], "m1");
  EXPECT_EQ(nlohmann::json::parse(r2->response().data())["multiplex_id"], "m2");

  // Setup again for a live id is refused; a missing or unknown id names the problem.
  auto storage = std::make_shared<InMemoryHostStorage>();
  dialer_.Offer(50, storage);
  pb::SetupArgs args;
  args.set_broker_id(50);
  EXPECT_EQ(Call<pb::SetupReply>(kSetupMethod, args, "m1").status().code(),
            absl::StatusCode::kAlreadyExists);
  absl::StatusOr<pb::HandleRequestReply> missing = Handle("", "read", "p");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("multiplex_id"));
  absl::StatusOr<pb::HandleRequestReply> unknown = Handle("m3", "read", "p");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(unknown.status().message(), HasSubstr("\"m3\""));
  EXPECT_EQ(Handle(std::string(kMultiplexIdBytesMax + 1, 'x'), "read", "p").status().code(),
            absl::StatusCode::kInvalidArgument);

  // Cleanup of one leaves the other.
  ASSERT_TRUE(Call<pb::Empty>(kCleanupMethod, pb::Empty(), "m1").ok());
  EXPECT_EQ(cleanups_.load(), 1);
  EXPECT_EQ(dispatcher_->instance_count(), 1u);
  EXPECT_EQ(Handle("m1", "read", "p").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Handle("m2", "read", "p").ok());
  EXPECT_EQ(Call<pb::Empty>(kCleanupMethod, pb::Empty(), "m1").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(DispatcherTest, InstanceLimit) {
  DispatcherOptions options;
  options.max_instances = 2;
  Build(options);
  Setup("a");
  Setup("b");
  auto storage = std::make_shared<InMemoryHostStorage>();
  dialer_.Offer(100, storage);
  pb::SetupArgs args;
  args.set_broker_id(100);
  absl::StatusOr<pb::SetupReply> third = Call<pb::SetupReply>(kSetupMethod, args, "c");
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(Call<pb::Empty>(kCleanupMethod, pb::Empty(), "a").ok());
  EXPECT_TRUE(Call<pb::SetupReply>(kSetupMethod, args, "c").ok());
}

TEST_F(DispatcherTest, WithoutMultiplexingTheIdIsIgnored) {
  DispatcherOptions options;
  options.multiplexing = false;
  Build(options);
  EXPECT_EQ(Handle("", "read", "p").status().code(), absl::StatusCode::kFailedPrecondition);
  Setup("");
  absl::StatusOr<pb::HandleRequestReply> any = Handle("whatever", "read", "p");
  ASSERT_TRUE(any.ok()) << any.status();
  EXPECT_EQ(nlohmann::json::parse(any->response().data())["multiplex_id"], "");
  EXPECT_TRUE(Handle("", "read", "p").ok());
  absl::StatusOr<pluginutil::multiplexing::MultiplexingSupportResponse> mux =
      Call<pluginutil::multiplexing::MultiplexingSupportResponse>(
          kMultiplexingSupportMethod, pluginutil::multiplexing::MultiplexingSupportRequest(), "");
  ASSERT_TRUE(mux.ok());
  EXPECT_FALSE(mux->supported());
  // A second Setup needs a Cleanup first.
  auto storage = std::make_shared<InMemoryHostStorage>();
  dialer_.Offer(60, storage);
  pb::SetupArgs args;
  args.set_broker_id(60);
  EXPECT_EQ(Call<pb::SetupReply>(kSetupMethod, args, "x").status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(DispatcherTest, MetadataModeRefusesWhatVaultRefuses) {
  DispatcherOptions options;
  options.metadata_mode = true;
  Build(options);
  Setup("m1");
  EXPECT_EQ(Handle("m1", "read", "p").status().message(), kMetadataModeError);
  EXPECT_EQ(
      Call<pb::InitializeReply>(kInitializeMethod, pb::InitializeArgs(), "m1").status().code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Call<pb::TypeReply>(kTypeMethod, pb::Empty(), "m1").ok());
  EXPECT_TRUE(Call<pb::SpecialPathsReply>(kSpecialPathsMethod, pb::Empty(), "m1").ok());
}

TEST_F(DispatcherTest, ConcurrentSetupsRespectIdsAndTheLimit) {
  DispatcherOptions options;
  options.max_instances = 4;
  Build(options);
  constexpr int kThreads = 8;
  for (int i = 0; i < kThreads; ++i)
    dialer_.Offer(200 + i, std::make_shared<InMemoryHostStorage>());
  std::atomic<int> ok{0}, exists{0}, exhausted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      pb::SetupArgs args;
      args.set_broker_id(200 + i);
      // Two threads per id: one of each pair must lose with kAlreadyExists.
      absl::StatusOr<pb::SetupReply> reply =
          Call<pb::SetupReply>(kSetupMethod, args, absl::StrCat("id", i / 2));
      if (reply.ok()) {
        ++ok;
      } else if (reply.status().code() == absl::StatusCode::kAlreadyExists) {
        ++exists;
      } else if (reply.status().code() == absl::StatusCode::kResourceExhausted) {
        ++exhausted;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(exists.load() + exhausted.load(), 4);
  EXPECT_EQ(dispatcher_->instance_count(), 4u);
}

TEST_F(DispatcherTest, CleanupAllCleansEveryInstance) {
  Build({});
  Setup("a");
  Setup("b");
  dispatcher_->CleanupAll();
  EXPECT_EQ(cleanups_.load(), 2);
  EXPECT_EQ(dispatcher_->instance_count(), 0u);
}

TEST_F(DispatcherTest, LogsNeverContainRequestData) {
  Build({});
  Setup("m1");
  ASSERT_TRUE(Handle("m1", "update", "p", R"({"password":"hunter2"})").ok());
  ASSERT_TRUE(Call<pb::Empty>(kCleanupMethod, pb::Empty(), "m1").ok());
  ASSERT_FALSE(log_.records().empty());
  for (const LogRecord& record : log_.records()) {
    EXPECT_THAT(FormatLogRecord(record), ::testing::Not(HasSubstr("hunter2")));
  }
}

}  // namespace
}  // namespace bulwark::sdk
