// The counter engine without a process: the SDK's in-memory host stands in for the host's
// storage, and requests are made in code the way a host sends them.
#include "examples/counter/counter_backend.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/log/log.h"
#include "gtest/gtest.h"
#include "sdk/in_memory_host.h"

namespace bulwark::examples::counter {
namespace {

using sdk::ErrorType;
using sdk::Operation;

class CounterTest : public ::testing::Test {
 protected:
  CounterTest() {
    sdk::BackendConfig config;
    config.storage =
        std::make_shared<sdk::StorageClient>(std::make_shared<sdk::InMemoryHostConnection>(host_));
    config.log = &log_;
    backend_ = std::make_unique<CounterBackend>(config);
  }

  sdk::HandleResult Handle(Operation operation, const std::string& path,
                           nlohmann::json data = nlohmann::json::object()) {
    return backend_->HandleRequest(sdk::Request::Make(operation, path, std::move(data)));
  }

  nlohmann::json Value(const std::string& path) {
    sdk::HandleResult result = Handle(Operation::kRead, path);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok() || !result->has_value()) return nullptr;
    return (*result)->data;
  }

  ErrorType Refusal(Operation operation, const std::string& path,
                    nlohmann::json data = nlohmann::json::object()) {
    sdk::HandleResult result = Handle(operation, path, std::move(data));
    EXPECT_FALSE(result.ok()) << "expected an error for " << path;
    return result.ok() ? ErrorType::kUnknown : sdk::ToLogicalError(result.status()).type;
  }

  std::shared_ptr<sdk::InMemoryHostStorage> host_ = std::make_shared<sdk::InMemoryHostStorage>();
  MemoryLogSink log_;
  std::unique_ptr<CounterBackend> backend_;
};

TEST_F(CounterTest, WritesAddAndAReadAnswersTheSum) {
  EXPECT_TRUE(Value("x").is_null());  // Never written: no response, Vault's 404.
  sdk::HandleResult first = Handle(Operation::kCreate, "x", {{"by", 3}});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)->data, nlohmann::json({{"value", 3}}));
  ASSERT_TRUE(Handle(Operation::kUpdate, "x", {{"by", 3}}).ok());
  EXPECT_EQ(Value("x"), nlohmann::json({{"value", 6}}));
  ASSERT_TRUE(Handle(Operation::kUpdate, "x", {{"by", -10}}).ok());
  EXPECT_EQ(Value("x"), nlohmann::json({{"value", -4}}));
  EXPECT_EQ(host_->Get("x")->value, "-4");  // Stored through the host.
  EXPECT_TRUE(Value("y").is_null());        // Counters are independent.
}

TEST_F(CounterTest, ExistenceCheckTellsCreateFromUpdate) {
  auto before = backend_->HandleExistenceCheck(
      sdk::Request::Make(Operation::kCreate, "x", nlohmann::json::object()));
  ASSERT_TRUE(before.ok());
  EXPECT_TRUE(before->check_found);
  EXPECT_FALSE(before->exists);
  ASSERT_TRUE(Handle(Operation::kCreate, "x", {{"by", 1}}).ok());
  auto after = backend_->HandleExistenceCheck(
      sdk::Request::Make(Operation::kUpdate, "x", nlohmann::json::object()));
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->exists);
}

TEST_F(CounterTest, BadWritesAreRefusedAndChangeNothing) {
  ASSERT_TRUE(Handle(Operation::kUpdate, "x", {{"by", 2}}).ok());
  EXPECT_EQ(Refusal(Operation::kUpdate, "x", {{"by", "3"}}), ErrorType::kInvalidRequest);
  EXPECT_EQ(Refusal(Operation::kUpdate, "x", {{"by", 1.5}}), ErrorType::kInvalidRequest);
  EXPECT_EQ(Refusal(Operation::kUpdate, "x", {{"value", 3}}), ErrorType::kInvalidRequest);
  EXPECT_EQ(Refusal(Operation::kUpdate, "x", {{"by", 1}, {"extra", 1}}),
            ErrorType::kInvalidRequest);
  EXPECT_EQ(Refusal(Operation::kUpdate, "x", {{"by", kStepMax + 1}}), ErrorType::kInvalidRequest);
  EXPECT_EQ(Value("x"), nlohmann::json({{"value", 2}}));
}

TEST_F(CounterTest, ACounterNeverPassesItsLimit) {
  for (int i = 0; i < 4096; ++i) {
    ASSERT_TRUE(Handle(Operation::kUpdate, "x", {{"by", kStepMax}}).ok());
  }
  EXPECT_EQ(Value("x"), nlohmann::json({{"value", kValueMax}}));
  EXPECT_EQ(Refusal(Operation::kUpdate, "x", {{"by", 1}}), ErrorType::kInvalidRequest);
  EXPECT_EQ(Value("x"), nlohmann::json({{"value", kValueMax}}));
}

TEST_F(CounterTest, DeleteAndUnknownOperationsAreUnsupported) {
  ASSERT_TRUE(Handle(Operation::kUpdate, "x", {{"by", 2}}).ok());
  EXPECT_EQ(Refusal(Operation::kDelete, "x"), ErrorType::kUnsupportedOperation);
  EXPECT_EQ(Value("x"), nlohmann::json({{"value", 2}}));
  EXPECT_EQ(Refusal(Operation::kUpdate, "", {{"by", 1}}), ErrorType::kUnsupportedPath);
  EXPECT_EQ(Refusal(Operation::kUpdate, "folder/", {{"by", 1}}), ErrorType::kUnsupportedPath);
}

TEST_F(CounterTest, ListShowsCounters) {
  ASSERT_TRUE(Handle(Operation::kUpdate, "a", {{"by", 1}}).ok());
  ASSERT_TRUE(Handle(Operation::kUpdate, "team/b", {{"by", 1}}).ok());
  sdk::HandleResult listed = Handle(Operation::kList, "");
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ((*listed)->data, nlohmann::json({{"keys", {"a", "team/"}}}));
}

TEST_F(CounterTest, ConcurrentWritesLoseNothing) {
  constexpr int kThreads = 8;
  constexpr int kWrites = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kWrites; ++i)
        EXPECT_TRUE(Handle(Operation::kUpdate, "x", {{"by", 1}}).ok());
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(Value("x"), nlohmann::json({{"value", kThreads * kWrites}}));
}

}  // namespace
}  // namespace bulwark::examples::counter
