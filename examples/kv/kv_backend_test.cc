// The kv backend under the SDK's dispatcher with an in-memory host: CRUD and list through the
// host's storage, validation errors with their exact Vault error types, multiplexing isolation,
// unknown ids, and concurrent requests on several instances.
#include "examples/kv/kv_backend.h"

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/vault/backend.pb.h"
#include "sdk/dispatcher.h"
#include "sdk/in_memory_host.h"

namespace bulwark::examples::kv {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class KvTest : public ::testing::Test {
 protected:
  KvTest() { Build(sdk::DispatcherOptions()); }

  void Build(sdk::DispatcherOptions options) {
    options.log = &log_;
    dispatcher_ = std::make_unique<sdk::BackendDispatcher>(KvBackendFactory(), dialer_, options);
  }

  std::shared_ptr<sdk::InMemoryHostStorage> Setup(const std::string& id) {
    auto storage = std::make_shared<sdk::InMemoryHostStorage>();
    const uint32_t broker_id = next_broker_id_++;
    dialer_.Offer(broker_id, storage);
    pb::SetupArgs args;
    args.set_broker_id(broker_id);
    absl::StatusOr<std::string> reply =
        dispatcher_->Dispatch(sdk::kSetupMethod, args.SerializeAsString(), id);
    EXPECT_TRUE(reply.ok()) << reply.status();
    return storage;
  }

  absl::StatusOr<pb::HandleRequestReply> Handle(const std::string& id, const std::string& op,
                                                const std::string& path,
                                                const std::string& data = "null") {
    pb::HandleRequestArgs args;
    args.mutable_request()->set_operation(op);
    args.mutable_request()->set_path(path);
    args.mutable_request()->set_data(data);
    absl::StatusOr<std::string> bytes =
        dispatcher_->Dispatch(sdk::kHandleRequestMethod, args.SerializeAsString(), id);
    if (!bytes.ok()) return bytes.status();
    pb::HandleRequestReply reply;
    if (!reply.ParseFromString(*bytes)) return absl::InternalError("bad reply");
    return reply;
  }

  // Runs a request that must succeed without a logical error; returns its data (null if none).
  nlohmann::json Ok(const std::string& id, const std::string& op, const std::string& path,
                    const std::string& data = "null") {
    absl::StatusOr<pb::HandleRequestReply> reply = Handle(id, op, path, data);
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return nullptr;
    EXPECT_FALSE(reply->has_err()) << op << " " << path << ": " << reply->err().err_msg();
    if (!reply->has_response()) return nullptr;
    return nlohmann::json::parse(reply->response().data());
  }

  // Runs a request that must fail with a logical error; returns it.
  pb::ProtoError Err(const std::string& id, const std::string& op, const std::string& path,
                     const std::string& data = "null") {
    absl::StatusOr<pb::HandleRequestReply> reply = Handle(id, op, path, data);
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return {};
    EXPECT_TRUE(reply->has_err()) << op << " " << path;
    return reply->err();
  }

  MemoryLogSink log_;
  sdk::InMemoryHostDialer dialer_;
  uint32_t next_broker_id_ = 1;
  std::unique_ptr<sdk::BackendDispatcher> dispatcher_;
};

TEST_F(KvTest, WriteReadListDeleteGoThroughHostStorage) {
  std::shared_ptr<sdk::InMemoryHostStorage> storage = Setup("m1");
  EXPECT_TRUE(Ok("m1", "create", "app/db", R"({"user":"u","port":5432})").is_null());
  EXPECT_TRUE(Ok("m1", "update", "app/api/key", R"({"token":"t"})").is_null());
  EXPECT_TRUE(Ok("m1", "update", "top", R"({"x":true})").is_null());

  // The values live in the host's storage, keyed by path, as JSON.
  ASSERT_TRUE(storage->Get("app/db").has_value());
  EXPECT_EQ(nlohmann::json::parse(storage->Get("app/db")->value),
            nlohmann::json::parse(R"({"user":"u","port":5432})"));
  EXPECT_EQ(storage->calls(sdk::kStoragePutMethod), 3u);

  EXPECT_EQ(Ok("m1", "read", "app/db"), nlohmann::json::parse(R"({"user":"u","port":5432})"));
  EXPECT_EQ(Ok("m1", "list", "")["keys"], nlohmann::json::parse(R"(["app/","top"])"));
  EXPECT_EQ(Ok("m1", "list", "app/")["keys"], nlohmann::json::parse(R"(["api/","db"])"));
  EXPECT_EQ(Ok("m1", "list", "app")["keys"], nlohmann::json::parse(R"(["api/","db"])"));
  EXPECT_EQ(Ok("m1", "list", "nothing/")["keys"], nlohmann::json::array());

  // Overwrite replaces the whole object.
  Ok("m1", "update", "app/db", R"({"user":"v"})");
  EXPECT_EQ(Ok("m1", "read", "app/db"), nlohmann::json::parse(R"({"user":"v"})"));

  EXPECT_TRUE(Ok("m1", "delete", "app/db").is_null());
  EXPECT_FALSE(storage->Get("app/db").has_value());
  absl::StatusOr<pb::HandleRequestReply> missing = Handle("m1", "read", "app/db");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_err());
  EXPECT_FALSE(missing->has_response());                // Vault answers 404.
  EXPECT_TRUE(Ok("m1", "delete", "app/db").is_null());  // Idempotent.
}

TEST_F(KvTest, ExistenceCheckReflectsStorage) {
  Setup("m1");
  Ok("m1", "create", "k", R"({"a":1})");
  for (const auto& [path, exists] : std::vector<std::pair<std::string, bool>>{
           {"k", true}, {"other", false}, {"bad key", false}}) {
    pb::HandleExistenceCheckArgs args;
    args.mutable_request()->set_operation("create");
    args.mutable_request()->set_path(path);
    absl::StatusOr<std::string> bytes =
        dispatcher_->Dispatch(sdk::kHandleExistenceCheckMethod, args.SerializeAsString(), "m1");
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    pb::HandleExistenceCheckReply reply;
    ASSERT_TRUE(reply.ParseFromString(*bytes));
    EXPECT_TRUE(reply.check_found());
    EXPECT_EQ(reply.exists(), exists) << path;
    EXPECT_FALSE(reply.has_err());
  }
}

TEST_F(KvTest, EchoReturnsTheDataAndTouchesNoStorage) {
  std::shared_ptr<sdk::InMemoryHostStorage> storage = Setup("m1");
  const std::string data = R"({"value":"xxxxxxxx","n":[1,2,{"k":null}]})";
  EXPECT_EQ(Ok("m1", "update", "echo", data), nlohmann::json::parse(data));
  EXPECT_EQ(Ok("m1", "create", "echo", data), nlohmann::json::parse(data));
  EXPECT_EQ(storage->calls(sdk::kStoragePutMethod), 0u);
  EXPECT_EQ(storage->calls(sdk::kStorageGetMethod), 0u);
  EXPECT_EQ(storage->size(), 0u);

  // Only create and update: a read does not fall through to a key named "echo".
  for (const std::string op : {"read", "delete", "patch"}) {
    const pb::ProtoError err = Err("m1", op, "echo");
    EXPECT_EQ(err.err_type(), static_cast<uint32_t>(sdk::ErrorType::kUnsupportedOperation)) << op;
  }
  EXPECT_EQ(storage->calls(sdk::kStorageGetMethod), 0u);

  // Nothing is stored there, so there is no existence to check.
  pb::HandleExistenceCheckArgs args;
  args.mutable_request()->set_operation("update");
  args.mutable_request()->set_path("echo");
  absl::StatusOr<std::string> bytes =
      dispatcher_->Dispatch(sdk::kHandleExistenceCheckMethod, args.SerializeAsString(), "m1");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  pb::HandleExistenceCheckReply reply;
  ASSERT_TRUE(reply.ParseFromString(*bytes));
  EXPECT_FALSE(reply.check_found());
  EXPECT_EQ(storage->calls(sdk::kStorageGetMethod), 0u);
}

TEST_F(KvTest, ValidationErrorsHaveExactVaultTypes) {
  std::shared_ptr<sdk::InMemoryHostStorage> storage = Setup("m1");
  struct Case {
    std::string op, path, data;
    sdk::ErrorType type;
    std::string message_part;
  };
  const std::string big_value(kValueBytesMax, 'x');
  std::string many_fields = "{";
  for (size_t i = 0; i <= kFieldsMax; ++i) {
    absl::StrAppend(&many_fields, i == 0 ? "" : ",", "\"f", i, "\":1");
  }
  many_fields += "}";
  const Case cases[] = {
      {"update", "a b", R"({"x":1})", sdk::ErrorType::kUser, "character \" \" at byte 1"},
      {"update", "a//b", R"({"x":1})", sdk::ErrorType::kUser, "empty segment"},
      {"update", "/a", R"({"x":1})", sdk::ErrorType::kUser, "empty segment at byte 0"},
      {"update", "a/../b", R"({"x":1})", sdk::ErrorType::kUser, "segment \"..\""},
      {"read", "x%y", "null", sdk::ErrorType::kUser, "character \"%\""},
      {"update", std::string(kKeyBytesMax + 1, 'k'), R"({"x":1})", sdk::ErrorType::kUser,
       "more than the limit of 512"},
      {"list", "a b/", "null", sdk::ErrorType::kUser, "invalid key"},
      {"update", "k", "null", sdk::ErrorType::kInvalidRequest, "no data provided"},
      {"update", "k", "{}", sdk::ErrorType::kInvalidRequest, "no data provided"},
      {"update", "k", many_fields, sdk::ErrorType::kInvalidRequest, "fields, more than"},
      {"update", "k", R"({"":1})", sdk::ErrorType::kInvalidRequest, "field name \"\""},
      {"update", "k", absl::StrCat(R"({"v":")", big_value, R"("})"), sdk::ErrorType::kCoded,
       "bytes of JSON, more than the limit"},
      {"update", "", R"({"x":1})", sdk::ErrorType::kUnsupportedPath, "mount root"},
      {"read", "folder/", "null", sdk::ErrorType::kUnsupportedPath, "names a folder"},
      {"patch", "k", R"({"x":1})", sdk::ErrorType::kUnsupportedOperation, "\"patch\""},
      {"help", "k", "null", sdk::ErrorType::kUnsupportedOperation, "not supported"},
  };
  for (const Case& c : cases) {
    const pb::ProtoError err = Err("m1", c.op, c.path, c.data);
    EXPECT_EQ(err.err_type(), static_cast<uint32_t>(c.type)) << c.op << " " << c.path;
    EXPECT_THAT(err.err_msg(), HasSubstr(c.message_part)) << c.op << " " << c.path;
    if (c.type == sdk::ErrorType::kCoded) {
      EXPECT_EQ(err.err_code(), 413);
    }
  }
  EXPECT_EQ(storage->size(), 0u);  // Nothing invalid was stored.
}

TEST_F(KvTest, StorageErrorsKeepTheHostText) {
  std::shared_ptr<sdk::InMemoryHostStorage> storage = Setup("m1");
  storage->SetWriteError(std::string(sdk::kErrReadOnly));
  const pb::ProtoError err = Err("m1", "update", "k", R"({"x":1})");
  EXPECT_EQ(err.err_type(), 0u);
  EXPECT_EQ(err.err_msg(), sdk::kErrReadOnly);  // Vault forwards to the active node on this.
}

TEST_F(KvTest, MultiplexedInstancesAreIsolated) {
  std::shared_ptr<sdk::InMemoryHostStorage> s1 = Setup("m1");
  std::shared_ptr<sdk::InMemoryHostStorage> s2 = Setup("m2");
  Ok("m1", "update", "shared/name", R"({"owner":"one"})");
  Ok("m2", "update", "shared/name", R"({"owner":"two"})");
  Ok("m2", "update", "only-two", R"({"x":2})");

  EXPECT_EQ(Ok("m1", "read", "shared/name")["owner"], "one");
  EXPECT_EQ(Ok("m2", "read", "shared/name")["owner"], "two");
  EXPECT_TRUE(Ok("m1", "read", "only-two").is_null());
  EXPECT_THAT(s1->Keys(), ElementsAre("shared/name"));
  EXPECT_THAT(s2->Keys(), ElementsAre("only-two", "shared/name"));

  ASSERT_TRUE(
      dispatcher_->Dispatch(sdk::kCleanupMethod, pb::Empty().SerializeAsString(), "m1").ok());
  absl::StatusOr<pb::HandleRequestReply> gone = Handle("m1", "read", "shared/name");
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(gone.status().message(), HasSubstr("\"m1\""));
  EXPECT_EQ(Ok("m2", "read", "shared/name")["owner"], "two");
  // The host's data outlives the instance (a remount would see it again).
  EXPECT_TRUE(s1->Get("shared/name").has_value());
}

TEST_F(KvTest, UnknownOrMissingIdIsAnError) {
  Setup("m1");
  absl::StatusOr<pb::HandleRequestReply> unknown = Handle("zz", "read", "k");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(unknown.status().message(), HasSubstr("\"zz\""));
  EXPECT_EQ(Handle("", "read", "k").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(KvTest, ConcurrentRequestsOnSeveralInstances) {
  constexpr int kInstances = 4;
  constexpr int kThreadsPerInstance = 4;
  constexpr int kOpsPerThread = 200;
  const unsigned seed = std::random_device{}();
  std::cout << "seed=" << seed << std::endl;
  std::vector<std::shared_ptr<sdk::InMemoryHostStorage>> storages;
  for (int i = 0; i < kInstances; ++i) storages.push_back(Setup(absl::StrCat("m", i)));

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kInstances; ++i) {
    for (int t = 0; t < kThreadsPerInstance; ++t) {
      threads.emplace_back([&, i, t] {
        std::mt19937 rng(seed + i * 100 + t);
        const std::string id = absl::StrCat("m", i);
        for (int op = 0; op < kOpsPerThread; ++op) {
          // Each thread owns its keys, so what it reads back must be what it wrote last.
          const std::string key = absl::StrCat("t", t, "/k", rng() % 8);
          const std::string value = absl::StrCat(R"({"i":)", i, R"(,"op":)", op, "}");
          absl::StatusOr<pb::HandleRequestReply> w = Handle(id, "update", key, value);
          absl::StatusOr<pb::HandleRequestReply> r = Handle(id, "read", key);
          if (!w.ok() || w->has_err() || !r.ok() || r->has_err() ||
              nlohmann::json::parse(r->response().data()) != nlohmann::json::parse(value)) {
            ++failures;
          }
          if (op % 10 == 0 && !Handle(id, "list", absl::StrCat("t", t, "/")).ok()) ++failures;
        }
      });
    }
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  for (int i = 0; i < kInstances; ++i) {
    for (const std::string& key : storages[i]->Keys()) {
      EXPECT_EQ(nlohmann::json::parse(storages[i]->Get(key)->value)["i"], i) << key;
    }
  }
}

TEST(ValidateKeyTest, AcceptsOrdinaryKeys) {
  const std::vector<std::string> keys = {"a", "a/b/c", "A-Z_0.9", "x.y",
                                         std::string(kKeyBytesMax, 'k')};
  for (const std::string& key : keys) {
    EXPECT_TRUE(ValidateKey(key).ok()) << key;
  }
  std::string deep;
  for (size_t i = 0; i < kKeySegmentsMax + 1; ++i) absl::StrAppend(&deep, i ? "/" : "", "s");
  EXPECT_EQ(sdk::ToLogicalError(ValidateKey(deep)).type, sdk::ErrorType::kUser);
}

}  // namespace
}  // namespace bulwark::examples::kv
