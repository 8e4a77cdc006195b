#include "protocol/storage_service.h"

#include <string>
#include <vector>

#include "base/storage/in_memory_storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/vault/backend.pb.h"
#include "protocol/wire_names.h"

namespace bulwark::protocol {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class StorageServiceTest : public ::testing::Test {
 protected:
  std::string Put(StorageService& service, const std::string& key, const std::string& value) {
    pb::StoragePutArgs args;
    args.mutable_entry()->set_key(key);
    args.mutable_entry()->set_value(value);
    pb::StoragePutReply reply;
    EXPECT_TRUE(
        reply.ParseFromString(*service.Handle(kStoragePutMethod, args.SerializeAsString())));
    return reply.err();
  }
  pb::StorageGetReply Get(StorageService& service, const std::string& key) {
    pb::StorageGetArgs args;
    args.set_key(key);
    pb::StorageGetReply reply;
    EXPECT_TRUE(
        reply.ParseFromString(*service.Handle(kStorageGetMethod, args.SerializeAsString())));
    return reply;
  }
  std::vector<std::string> List(StorageService& service, const std::string& prefix) {
    pb::StorageListArgs args;
    args.set_prefix(prefix);
    pb::StorageListReply reply;
    EXPECT_TRUE(
        reply.ParseFromString(*service.Handle(kStorageListMethod, args.SerializeAsString())));
    EXPECT_EQ(reply.err(), "");
    return {reply.keys().begin(), reply.keys().end()};
  }

  InMemoryStorage storage_;
};

TEST_F(StorageServiceTest, KeysLiveBeneathThePrefixAndReadBackWithoutIt) {
  StorageService service(storage_, "logical/mount-a/");
  EXPECT_EQ(Put(service, "config", "v1"), "");
  EXPECT_TRUE(storage_.Get("logical/mount-a/config")->has_value());
  pb::StorageGetReply got = Get(service, "config");
  EXPECT_EQ(got.err(), "");
  EXPECT_EQ(got.entry().key(), "config");
  EXPECT_EQ(got.entry().value(), "v1");

  pb::StorageDeleteArgs del;
  del.set_key("config");
  pb::StorageDeleteReply reply;
  ASSERT_TRUE(
      reply.ParseFromString(*service.Handle(kStorageDeleteMethod, del.SerializeAsString())));
  EXPECT_EQ(reply.err(), "");
  EXPECT_FALSE(Get(service, "config").has_entry());
}

TEST_F(StorageServiceTest, TwoPrefixesNeverSeeEachOther) {
  StorageService a(storage_, "logical/a/");
  StorageService b(storage_, "logical/b/");
  EXPECT_EQ(Put(a, "k", "from a"), "");
  EXPECT_FALSE(Get(b, "k").has_entry());
  EXPECT_EQ(Put(b, "k", "from b"), "");
  EXPECT_EQ(Get(a, "k").entry().value(), "from a");
}

TEST_F(StorageServiceTest, KeysThatCouldEscapeThePrefixAreRefusedInTheReply) {
  StorageService service(storage_, "logical/a/");
  EXPECT_THAT(Put(service, "../b/k", "x"), HasSubstr("invalid storage key"));
  EXPECT_THAT(Put(service, "", "x"), HasSubstr("invalid storage key: empty"));
  EXPECT_THAT(Get(service, "x//y").err(), HasSubstr("invalid storage key"));
  EXPECT_EQ(storage_.size(), 0u);
}

TEST_F(StorageServiceTest, ListHasVaultsOneLevelSemantics) {
  StorageService service(storage_, "");
  for (const char* key : {"a-b", "a/x", "a/y/z", "a/y/zz", "ab", "b"}) {
    ASSERT_EQ(Put(service, key, "v"), "");
  }
  EXPECT_THAT(List(service, ""), ElementsAre("a-b", "a/", "ab", "b"));
  EXPECT_THAT(List(service, "a/"), ElementsAre("x", "y/"));
  EXPECT_THAT(List(service, "a/y/"), ElementsAre("z", "zz"));
  EXPECT_THAT(List(service, "a"), ElementsAre("-b", "/", "b"));
  EXPECT_THAT(List(service, "q/"), IsEmpty());
}

TEST_F(StorageServiceTest, MalformedRequestsAndOtherMethodsAreCallErrors) {
  StorageService service(storage_, "");
  absl::StatusOr<std::string> bad = service.Handle(kStorageGetMethod, std::string("\xff\xff", 2));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("/pb.Storage/Get"));
  absl::StatusOr<std::string> other = service.Handle(kSystemViewTaintedMethod, "");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_TRUE(StorageService::Serves(kStorageListMethod));
  EXPECT_FALSE(StorageService::Serves(kSystemViewTaintedMethod));
}

}  // namespace
}  // namespace bulwark::protocol
