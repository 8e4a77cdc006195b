// DatabaseDispatcher without gRPC: Vault's validation errors and codes, the instance table
// (lazy creation, Close, multiplex ids), single-instance mode, and per-instance serialization.
#include "sdk/database_dispatcher.h"

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/vault/database.pb.h"
#include "proto/vault/multiplexing.pb.h"
#include "proto/vault/version.pb.h"
#include "protocol/wire_names.h"

namespace bulwark::sdk {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// What every FakeDatabase saw, shared with the test.
struct Journal {
  std::atomic<int> created{0};
  std::atomic<int> closed{0};
  std::atomic<int> in_flight{0};
  std::atomic<int> overlaps{0};
  std::mutex mu;
  std::vector<std::string> calls;  // "<multiplex id>:<method>", guarded by mu.
  InitializeRequest last_initialize;
  NewUserRequest last_new_user;
  UpdateUserRequest last_update;
};

class FakeDatabase final : public Database {
 public:
  FakeDatabase(std::string id, Journal* journal) : id_(std::move(id)), journal_(journal) {
    journal_->created++;
  }

  absl::StatusOr<InitializeResponse> Initialize(const InitializeRequest& request) override {
    Enter e(this, "Initialize");
    {
      std::lock_guard<std::mutex> lock(journal_->mu);
      journal_->last_initialize = request;
    }
    if (request.config.value("fail", false)) return absl::UnavailableError("cannot connect");
    if (request.config.value("throw", false)) throw std::runtime_error("secret-in-exception");
    if (request.config.value("return_array", false)) {
      return InitializeResponse{nlohmann::json::array({1, 2})};
    }
    InitializeResponse response;
    response.config = request.config;
    response.config["rewritten"] = true;
    initialized_ = true;
    return response;
  }
  absl::StatusOr<NewUserResponse> NewUser(const NewUserRequest& request) override {
    Enter e(this, "NewUser");
    {
      std::lock_guard<std::mutex> lock(journal_->mu);
      journal_->last_new_user = request;
    }
    if (!initialized_) return absl::FailedPreconditionError("not initialized");
    return NewUserResponse{"v-" + request.username_config.role_name + "-" + std::to_string(++n_)};
  }
  absl::Status UpdateUser(const UpdateUserRequest& request) override {
    Enter e(this, "UpdateUser");
    std::lock_guard<std::mutex> lock(journal_->mu);
    journal_->last_update = request;
    return absl::OkStatus();
  }
  absl::Status DeleteUser(const DeleteUserRequest& request) override {
    Enter e(this, "DeleteUser");
    if (request.username == "busy") return absl::FailedPreconditionError("user has sessions");
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Type() override {
    Enter e(this, "Type");
    return std::string("fake");
  }
  absl::Status Close() override {
    Enter e(this, "Close");
    if (fail_close_once_) {
      fail_close_once_ = false;
      return absl::InternalError("close failed");
    }
    journal_->closed++;
    return absl::OkStatus();
  }

  static bool fail_next_close;

 private:
  // Records the call and counts calls that overlap on this object.
  struct Enter {
    Enter(FakeDatabase* db, const char* method) : db(db) {
      if (db->busy_.exchange(true)) db->journal_->overlaps++;
      std::lock_guard<std::mutex> lock(db->journal_->mu);
      db->journal_->calls.push_back(db->id_ + ":" + method);
    }
    ~Enter() { db->busy_.store(false); }
    FakeDatabase* db;
  };

  const std::string id_;
  Journal* const journal_;
  std::atomic<bool> busy_{false};
  bool initialized_ = false;
  int n_ = 0;

 public:
  bool fail_close_once_ = FakeDatabase::fail_next_close;
};
bool FakeDatabase::fail_next_close = false;

class DatabaseDispatcherTest : public ::testing::Test {
 protected:
  void Make(bool multiplexing, size_t max_instances = kDatabaseInstancesDefaultMax) {
    DatabaseDispatcherOptions options;
    options.multiplexing = multiplexing;
    options.max_instances = max_instances;
    options.plugin_version = "v1.2.3";
    options.log = &log_;
    dispatcher_ = std::make_unique<DatabaseDispatcher>(
        [this](const DatabaseContext& context) -> absl::StatusOr<std::unique_ptr<Database>> {
          if (context.multiplex_id == "broken") return absl::UnavailableError("factory says no");
          return std::make_unique<FakeDatabase>(context.multiplex_id, &journal_);
        },
        options);
  }

  template <typename Reply>
  absl::StatusOr<Reply> Call(absl::string_view method, const google::protobuf::MessageLite& request,
                             absl::string_view id) {
    absl::StatusOr<std::string> bytes =
        dispatcher_->Dispatch(method, request.SerializeAsString(), id);
    if (!bytes.ok()) return bytes.status();
    Reply reply;
    if (!reply.ParseFromString(*bytes)) return absl::InternalError("unparsable reply");
    return reply;
  }

  absl::StatusOr<dbplugin::v5::InitializeResponse> Initialize(absl::string_view id,
                                                              const std::string& config_json,
                                                              bool verify = true) {
    dbplugin::v5::InitializeRequest request;
    request.set_verify_connection(verify);
    auto* fields = request.mutable_config_data()->mutable_fields();
    const nlohmann::json config = nlohmann::json::parse(config_json);
    for (const auto& [key, value] : config.items()) {
      if (value.is_boolean()) (*fields)[key].set_bool_value(value.get<bool>());
      if (value.is_string()) (*fields)[key].set_string_value(value.get<std::string>());
      if (value.is_number()) (*fields)[key].set_number_value(value.get<double>());
    }
    return Call<dbplugin::v5::InitializeResponse>(kDatabaseInitializeMethod, request, id);
  }

  absl::StatusOr<dbplugin::v5::NewUserResponse> NewUser(absl::string_view id,
                                                        const std::string& role = "r") {
    dbplugin::v5::NewUserRequest request;
    request.mutable_username_config()->set_display_name("token");
    request.mutable_username_config()->set_role_name(role);
    request.set_password("pw-secret");
    return Call<dbplugin::v5::NewUserResponse>(kDatabaseNewUserMethod, request, id);
  }

  absl::Status Close(absl::string_view id) {
    return Call<dbplugin::v5::Empty>(kDatabaseCloseMethod, dbplugin::v5::Empty(), id).status();
  }

  MemoryLogSink log_;
  Journal journal_;
  std::unique_ptr<DatabaseDispatcher> dispatcher_;
};

TEST_F(DatabaseDispatcherTest, TypeCreatesTheInstanceLazily) {
  Make(/*multiplexing=*/true);
  EXPECT_EQ(dispatcher_->instance_count(), 0u);
  auto type = Call<dbplugin::v5::TypeResponse>(kDatabaseTypeMethod, dbplugin::v5::Empty(), "a");
  ASSERT_TRUE(type.ok()) << type.status();
  EXPECT_EQ(type->type(), "fake");
  EXPECT_EQ(dispatcher_->instance_count(), 1u);
}

TEST_F(DatabaseDispatcherTest, MultiplexedCallWithoutIdIsUnknownAsInVault) {
  Make(true);
  auto type = Call<dbplugin::v5::TypeResponse>(kDatabaseTypeMethod, dbplugin::v5::Empty(), "");
  EXPECT_EQ(type.status().code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(type.status().message(), kNoMultiplexIdError);
}

TEST_F(DatabaseDispatcherTest, NewUserBeforeInitializeFindsNoInstance) {
  Make(true);
  auto user = NewUser("a");
  EXPECT_EQ(user.status().code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(user.status().message(), kNoDatabaseInstanceError);
  EXPECT_EQ(journal_.created.load(), 0);
}

TEST_F(DatabaseDispatcherTest, InitializePassesConfigAndReturnsTheRewrittenOne) {
  Make(true);
  auto reply = Initialize("a", R"({"connection_url":"/x","max":5})", /*verify=*/true);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(journal_.last_initialize.config["connection_url"], "/x");
  EXPECT_EQ(journal_.last_initialize.config["max"], 5);
  EXPECT_TRUE(journal_.last_initialize.verify_connection);
  EXPECT_TRUE(reply->config_data().fields().at("rewritten").bool_value());
  EXPECT_EQ(reply->config_data().fields().at("connection_url").string_value(), "/x");
}

TEST_F(DatabaseDispatcherTest, InitializeErrorsCarryVaultsPrefixAndInternal) {
  Make(true);
  auto failed = Initialize("a", R"({"fail":true})");
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(failed.status().message(), "failed to initialize: cannot connect");

  auto array = Initialize("b", R"({"return_array":true})");
  EXPECT_EQ(array.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(array.status().message()),
              StartsWith("failed to marshal new config to JSON: "));
}

TEST_F(DatabaseDispatcherTest, ExceptionsBecomeInternalWithoutTheirText) {
  Make(true);
  auto thrown = Initialize("a", R"({"throw":true})");
  EXPECT_EQ(thrown.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(thrown.status().message()), StartsWith("failed to initialize: "));
  EXPECT_THAT(std::string(thrown.status().message()), ::testing::Not(HasSubstr("secret")));
}

TEST_F(DatabaseDispatcherTest, NewUserValidatesLikeVault) {
  Make(true);
  ASSERT_TRUE(Initialize("a", "{}").ok());
  dbplugin::v5::NewUserRequest no_config;
  no_config.set_password("p");
  auto missing = Call<dbplugin::v5::NewUserResponse>(kDatabaseNewUserMethod, no_config, "a");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message(), "missing username config");

  dbplugin::v5::NewUserRequest bad_time;
  bad_time.mutable_username_config();
  bad_time.mutable_expiration()->set_seconds(253402300800);  // 10000-01-01
  auto bad = Call<dbplugin::v5::NewUserResponse>(kDatabaseNewUserMethod, bad_time, "a");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              StartsWith("unable to parse expiration date: timestamp"));
}

TEST_F(DatabaseDispatcherTest, NewUserPassesEveryField) {
  Make(true);
  ASSERT_TRUE(Initialize("a", "{}").ok());
  dbplugin::v5::NewUserRequest request;
  request.mutable_username_config()->set_display_name("tok");
  request.mutable_username_config()->set_role_name("ro");
  request.set_password("pw");
  request.mutable_expiration()->set_seconds(1700000000);
  request.mutable_statements()->add_commands("CREATE");
  request.set_credential_type(1);
  request.set_public_key("PEM");
  auto reply = Call<dbplugin::v5::NewUserResponse>(kDatabaseNewUserMethod, request, "a");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->username(), "v-ro-1");
  const NewUserRequest& seen = journal_.last_new_user;
  EXPECT_EQ(seen.username_config.display_name, "tok");
  EXPECT_EQ(seen.password, "pw");
  ASSERT_TRUE(seen.expiration.has_value());
  EXPECT_EQ(*seen.expiration, absl::FromUnixSeconds(1700000000));
  EXPECT_EQ(seen.statements.commands, std::vector<std::string>{"CREATE"});
  EXPECT_EQ(seen.credential_type, CredentialType::kRsaPrivateKey);
  EXPECT_EQ(seen.public_key, "PEM");
}

TEST_F(DatabaseDispatcherTest, NewUserErrorIsInternalWithPrefix) {
  Make(/*multiplexing=*/false);  // Single instance: NewUser reaches the uninitialized database.
  auto user = NewUser("");
  EXPECT_EQ(user.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(user.status().message(), "unable to create new user: not initialized");
}

TEST_F(DatabaseDispatcherTest, UpdateUserValidatesLikeVault) {
  Make(true);
  ASSERT_TRUE(Initialize("a", "{}").ok());
  dbplugin::v5::UpdateUserRequest no_name;
  no_name.mutable_password()->set_new_password("x");
  auto r1 = Call<dbplugin::v5::UpdateUserResponse>(kDatabaseUpdateUserMethod, no_name, "a");
  EXPECT_EQ(r1.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r1.status().message(), "no username provided");

  // An empty password, an empty key and Go's zero time are all "no change".
  dbplugin::v5::UpdateUserRequest nothing;
  nothing.set_username("u");
  nothing.mutable_password();
  nothing.mutable_public_key();
  nothing.mutable_expiration()->mutable_new_expiration()->set_seconds(-62135596800);
  auto r2 = Call<dbplugin::v5::UpdateUserResponse>(kDatabaseUpdateUserMethod, nothing, "a");
  EXPECT_EQ(r2.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r2.status().message(), "update user request has no changes");

  dbplugin::v5::UpdateUserRequest bad_time;
  bad_time.set_username("u");
  bad_time.mutable_expiration()->mutable_new_expiration()->set_nanos(-1);
  auto r3 = Call<dbplugin::v5::UpdateUserResponse>(kDatabaseUpdateUserMethod, bad_time, "a");
  EXPECT_EQ(r3.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r3.status().message()), StartsWith("unable to parse new expiration: "));
}

TEST_F(DatabaseDispatcherTest, UpdateUserPassesOnlyRealChanges) {
  Make(true);
  ASSERT_TRUE(Initialize("a", "{}").ok());
  dbplugin::v5::UpdateUserRequest request;
  request.set_username("u");
  request.mutable_password()->set_new_password("new");
  request.mutable_public_key();  // Empty: not a change.
  request.mutable_expiration()->mutable_new_expiration()->set_seconds(100);
  auto reply = Call<dbplugin::v5::UpdateUserResponse>(kDatabaseUpdateUserMethod, request, "a");
  ASSERT_TRUE(reply.ok()) << reply.status();
  const UpdateUserRequest& seen = journal_.last_update;
  EXPECT_EQ(seen.username, "u");
  ASSERT_TRUE(seen.password.has_value());
  EXPECT_EQ(seen.password->new_password, "new");
  EXPECT_FALSE(seen.public_key.has_value());
  ASSERT_TRUE(seen.expiration.has_value());
  EXPECT_EQ(seen.expiration->new_expiration, absl::FromUnixSeconds(100));
}

TEST_F(DatabaseDispatcherTest, DeleteUserValidatesAndPrefixesErrors) {
  Make(true);
  ASSERT_TRUE(Initialize("a", "{}").ok());
  dbplugin::v5::DeleteUserRequest none;
  auto r1 = Call<dbplugin::v5::DeleteUserResponse>(kDatabaseDeleteUserMethod, none, "a");
  EXPECT_EQ(r1.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r1.status().message(), "no username provided");
  dbplugin::v5::DeleteUserRequest busy;
  busy.set_username("busy");
  auto r2 = Call<dbplugin::v5::DeleteUserResponse>(kDatabaseDeleteUserMethod, busy, "a");
  EXPECT_EQ(r2.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(r2.status().message(), "unable to delete user: user has sessions");
}

TEST_F(DatabaseDispatcherTest, InstancesAreIsolatedByMultiplexId) {
  Make(true);
  ASSERT_TRUE(Initialize("a", "{}").ok());
  EXPECT_TRUE(NewUser("a").ok());
  EXPECT_EQ(NewUser("b").status().code(), absl::StatusCode::kUnknown);
  ASSERT_TRUE(Initialize("b", "{}").ok());
  EXPECT_EQ(dispatcher_->instance_count(), 2u);
  ASSERT_TRUE(Close("a").ok());
  EXPECT_EQ(NewUser("a").status().message(), kNoDatabaseInstanceError);
  EXPECT_TRUE(NewUser("b").ok()) << "closing a must not disturb b";
}

TEST_F(DatabaseDispatcherTest, CloseRemovesAndASecondCloseFindsNothing) {
  Make(true);
  ASSERT_TRUE(Initialize("a", "{}").ok());
  ASSERT_TRUE(Close("a").ok());
  EXPECT_EQ(journal_.closed.load(), 1);
  EXPECT_EQ(dispatcher_->instance_count(), 0u);
  absl::Status again = Close("a");
  EXPECT_EQ(again.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(again.message(), kNoDatabaseInstanceError);
}

TEST_F(DatabaseDispatcherTest, FailedCloseKeepsTheInstanceForARetry) {
  Make(true);
  FakeDatabase::fail_next_close = true;
  ASSERT_TRUE(Initialize("a", "{}").ok());
  FakeDatabase::fail_next_close = false;
  absl::Status failed = Close("a");
  EXPECT_EQ(failed.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(failed.message(), "unable to close database plugin: close failed");
  EXPECT_EQ(dispatcher_->instance_count(), 1u);
  EXPECT_TRUE(NewUser("a").ok()) << "the instance is still usable after a failed Close";
  EXPECT_TRUE(Close("a").ok());
}

TEST_F(DatabaseDispatcherTest, FactoryErrorIsUnknownWithItsMessage) {
  Make(true);
  auto type =
      Call<dbplugin::v5::TypeResponse>(kDatabaseTypeMethod, dbplugin::v5::Empty(), "broken");
  EXPECT_EQ(type.status().code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(type.status().message(), "factory says no");
  EXPECT_EQ(dispatcher_->instance_count(), 0u);
}

TEST_F(DatabaseDispatcherTest, InstanceLimitIsResourceExhausted) {
  Make(true, /*max_instances=*/2);
  ASSERT_TRUE(Initialize("a", "{}").ok());
  ASSERT_TRUE(Initialize("b", "{}").ok());
  EXPECT_EQ(Initialize("c", "{}").status().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(Close("a").ok());
  EXPECT_TRUE(Initialize("c", "{}").ok());
}

TEST_F(DatabaseDispatcherTest, SingleInstanceIgnoresIdsAndIsRecreatedAfterClose) {
  Make(/*multiplexing=*/false);
  ASSERT_TRUE(Initialize("a", "{}").ok());
  EXPECT_TRUE(NewUser("b").ok()) << "without multiplexing every id reaches the one instance";
  EXPECT_TRUE(NewUser("").ok());
  EXPECT_EQ(dispatcher_->instance_count(), 1u);
  ASSERT_TRUE(Close("").ok());
  EXPECT_TRUE(Close("").ok()) << "nothing left to close is fine";
  EXPECT_EQ(NewUser("").status().message(), "unable to create new user: not initialized");
  EXPECT_EQ(journal_.created.load(), 2);
}

TEST_F(DatabaseDispatcherTest, MultiplexingSupportOnlyWhenMultiplexing) {
  Make(true);
  auto yes = Call<pluginutil::multiplexing::MultiplexingSupportResponse>(
      protocol::kMultiplexingSupportMethod, pluginutil::multiplexing::MultiplexingSupportRequest(),
      "");
  ASSERT_TRUE(yes.ok()) << yes.status();
  EXPECT_TRUE(yes->supported());
  Make(false);
  auto no = Call<pluginutil::multiplexing::MultiplexingSupportResponse>(
      protocol::kMultiplexingSupportMethod, pluginutil::multiplexing::MultiplexingSupportRequest(),
      "");
  EXPECT_EQ(no.status().code(), absl::StatusCode::kUnimplemented);
}

TEST_F(DatabaseDispatcherTest, VersionNeedsNoInstance) {
  Make(true);
  auto version = Call<logical::VersionReply>(protocol::kVersionMethod, logical::Empty(), "");
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->plugin_version(), "v1.2.3");
  EXPECT_EQ(dispatcher_->instance_count(), 0u);
}

TEST_F(DatabaseDispatcherTest, UnknownMethodAndGarbageRequest) {
  Make(true);
  EXPECT_EQ(dispatcher_->Dispatch("/dbplugin.v5.Database/Nope", "", "a").status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(dispatcher_->Dispatch(kDatabaseNewUserMethod, "\xff\xff\xff", "a").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(DatabaseDispatcherTest, CallsOnOneInstanceNeverOverlap) {
  Make(true);
  ASSERT_TRUE(Initialize("a", "{}").ok());
  ASSERT_TRUE(Initialize("b", "{}").ok());
  constexpr int kThreads = 6;
  constexpr int kCalls = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        if (!NewUser(t % 2 == 0 ? "a" : "b").ok()) failures++;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(journal_.overlaps.load(), 0);
}

}  // namespace
}  // namespace bulwark::sdk
