// The notes engine without a process: the SDK's in-memory host stands in for Vault's storage,
// and requests are made in code the way a host sends them.
#include "notes_backend.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "sdk/in_memory_host.h"

namespace notes {
namespace {

using sdk::ErrorType;
using sdk::Operation;

class NotesTest : public ::testing::Test {
 protected:
  NotesTest() {
    sdk::BackendConfig config;
    config.storage =
        std::make_shared<sdk::StorageClient>(std::make_shared<sdk::InMemoryHostConnection>(host_));
    config.log = &log_;
    backend_ = std::make_unique<NotesBackend>(config);
  }

  sdk::HandleResult Handle(Operation operation, const std::string& path,
                           nlohmann::json data = nlohmann::json::object()) {
    return backend_->HandleRequest(sdk::Request::Make(operation, path, std::move(data)));
  }

  // The data of a request that must succeed with a response.
  nlohmann::json Data(Operation operation, const std::string& path) {
    sdk::HandleResult result = Handle(operation, path);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok() || !result->has_value()) return nullptr;
    return (*result)->data;
  }

  // The Vault error type a request that must fail was refused with.
  ErrorType Refusal(Operation operation, const std::string& path,
                    nlohmann::json data = nlohmann::json::object()) {
    sdk::HandleResult result = Handle(operation, path, std::move(data));
    EXPECT_FALSE(result.ok()) << "expected an error for " << path;
    return result.ok() ? ErrorType::kUnknown : sdk::ToLogicalError(result.status()).type;
  }

  std::shared_ptr<sdk::InMemoryHostStorage> host_ = std::make_shared<sdk::InMemoryHostStorage>();
  bulwark::MemoryLogSink log_;
  std::unique_ptr<NotesBackend> backend_;
};

TEST_F(NotesTest, AWrittenNoteIsStoredInTheHostAndReadBack) {
  sdk::HandleResult written = Handle(Operation::kUpdate, "shopping", {{"value", "milk"}});
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_FALSE(written->has_value());  // Vault: 204.
  ASSERT_TRUE(host_->Get("shopping").has_value());
  EXPECT_EQ(host_->Get("shopping")->value, "milk");
  EXPECT_EQ(Data(Operation::kRead, "shopping"), nlohmann::json({{"value", "milk"}}));

  ASSERT_TRUE(Handle(Operation::kCreate, "shopping", {{"value", "eggs"}}).ok());
  EXPECT_EQ(Data(Operation::kRead, "shopping"), nlohmann::json({{"value", "eggs"}}));
}

TEST_F(NotesTest, ANoteNeverWrittenIsNoResponse) {
  sdk::HandleResult read = Handle(Operation::kRead, "nothing");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_FALSE(read->has_value());  // Vault: 404.
}

TEST_F(NotesTest, DeleteRemovesTheNote) {
  ASSERT_TRUE(Handle(Operation::kUpdate, "a", {{"value", "x"}}).ok());
  ASSERT_TRUE(Handle(Operation::kDelete, "a").ok());
  EXPECT_FALSE(host_->Get("a").has_value());
  sdk::HandleResult read = Handle(Operation::kRead, "a");
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read->has_value());
  EXPECT_TRUE(Handle(Operation::kDelete, "a").ok());  // Again: still fine.
}

TEST_F(NotesTest, ListGivesNamesAndFoldersDirectlyUnderTheFolder) {
  for (const char* name : {"work/todo", "work/done", "work/old/2023", "home"}) {
    ASSERT_TRUE(Handle(Operation::kUpdate, name, {{"value", "x"}}).ok()) << name;
  }
  EXPECT_EQ(Data(Operation::kList, ""), nlohmann::json({{"keys", {"home", "work/"}}}));
  EXPECT_EQ(Data(Operation::kList, "work/"), nlohmann::json({{"keys", {"done", "old/", "todo"}}}));
  EXPECT_EQ(Data(Operation::kList, "work"), Data(Operation::kList, "work/"));
  EXPECT_EQ(Data(Operation::kList, "none/"), nlohmann::json({{"keys", nlohmann::json::array()}}));
}

TEST_F(NotesTest, AWriteMustBeOneStringFieldNamedValue) {
  EXPECT_EQ(Refusal(Operation::kUpdate, "a"), ErrorType::kInvalidRequest);
  EXPECT_EQ(Refusal(Operation::kUpdate, "a", {{"value", 3}}), ErrorType::kInvalidRequest);
  EXPECT_EQ(Refusal(Operation::kUpdate, "a", {{"value", "x"}, {"other", "y"}}),
            ErrorType::kInvalidRequest);
  EXPECT_EQ(Refusal(Operation::kUpdate, "a", {{"note", "x"}}), ErrorType::kInvalidRequest);
  EXPECT_EQ(host_->size(), 0u);
}

TEST_F(NotesTest, ANoteLongerThanTheLimitIs413) {
  sdk::HandleResult big =
      Handle(Operation::kUpdate, "big", {{"value", std::string(kNoteBytesMax + 1, 'x')}});
  ASSERT_FALSE(big.ok());
  const sdk::LogicalError error = sdk::ToLogicalError(big.status());
  EXPECT_EQ(error.type, ErrorType::kCoded);
  EXPECT_EQ(error.http_code, 413);
  EXPECT_TRUE(Handle(Operation::kUpdate, "big", {{"value", std::string(kNoteBytesMax, 'x')}}).ok());
}

TEST_F(NotesTest, TheRootAndFoldersHoldNoNote) {
  EXPECT_EQ(Refusal(Operation::kRead, ""), ErrorType::kUnsupportedPath);
  EXPECT_EQ(Refusal(Operation::kRead, "work/"), ErrorType::kUnsupportedPath);
  EXPECT_EQ(Refusal(Operation::kUpdate, "work/", {{"value", "x"}}), ErrorType::kUnsupportedPath);
}

TEST_F(NotesTest, OtherOperationsAreUnsupported) {
  for (Operation operation : {Operation::kPatch, Operation::kHelp, Operation::kRenew}) {
    EXPECT_EQ(Refusal(operation, "a"), ErrorType::kUnsupportedOperation)
        << sdk::OperationName(operation);
  }
}

TEST_F(NotesTest, StorageErrorsReachTheHostUnchanged) {
  host_->SetWriteError(std::string(sdk::kErrReadOnly));  // As on a performance standby.
  sdk::HandleResult written = Handle(Operation::kUpdate, "a", {{"value", "x"}});
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.status().message(), sdk::kErrReadOnly);
}

}  // namespace
}  // namespace notes
