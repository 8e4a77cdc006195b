// Host services: pb.Storage confined to the mount's prefix, Vault's one-level List, errors in
// the reply, SystemView answers.
#include "core/lifecycle/host_services.h"

#include "base/storage/in_memory_storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/vault/backend.pb.h"

namespace bulwark::lifecycle {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

template <typename Reply, typename Args>
Reply Call(HostServices& h, absl::string_view method, const Args& args) {
  absl::StatusOr<std::string> bytes = h.Handle(method, args.SerializeAsString());
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  Reply reply;
  EXPECT_TRUE(reply.ParseFromString(bytes.value_or("")));
  return reply;
}

pb::StoragePutArgs Put(absl::string_view key, absl::string_view value) {
  pb::StoragePutArgs a;
  a.mutable_entry()->set_key(std::string(key));
  a.mutable_entry()->set_value(std::string(value));
  return a;
}

TEST(HostServicesTest, StorageIsConfinedToTheMountPrefix) {
  InMemoryStorage storage;
  ASSERT_TRUE(storage.Put("logical/other/secret", "theirs").ok());
  StorageHostServices h(storage, "logical/mine/", SystemViewInfo{});
  EXPECT_TRUE(Call<pb::StoragePutReply>(h, "/pb.Storage/Put", Put("a/b", "1")).err().empty());
  EXPECT_EQ(*storage.Get("logical/mine/a/b"), "1");

  pb::StorageGetArgs get;
  get.set_key("a/b");
  pb::StorageGetReply got = Call<pb::StorageGetReply>(h, "/pb.Storage/Get", get);
  EXPECT_EQ(got.entry().value(), "1");
  EXPECT_EQ(got.entry().key(), "a/b");
  get.set_key("../other/secret");
  got = Call<pb::StorageGetReply>(h, "/pb.Storage/Get", get);
  EXPECT_FALSE(got.has_entry());
  EXPECT_THAT(got.err(), HasSubstr("invalid storage key"));
  get.set_key("missing");
  got = Call<pb::StorageGetReply>(h, "/pb.Storage/Get", get);
  EXPECT_FALSE(got.has_entry());
  EXPECT_TRUE(got.err().empty());

  pb::StorageDeleteArgs del;
  del.set_key("a/b");
  EXPECT_TRUE(Call<pb::StorageDeleteReply>(h, "/pb.Storage/Delete", del).err().empty());
  EXPECT_FALSE(storage.Get("logical/mine/a/b")->has_value());
}

TEST(HostServicesTest, ListReturnsOneLevelWithFolders) {
  InMemoryStorage storage;
  StorageHostServices h(storage, "logical/m/", SystemViewInfo{});
  for (const char* k : {"x", "dir/y", "dir/z/w", "dir2/q"}) {
    Call<pb::StoragePutReply>(h, "/pb.Storage/Put", Put(k, "v"));
  }
  pb::StorageListArgs list;
  EXPECT_THAT(Call<pb::StorageListReply>(h, "/pb.Storage/List", list).keys(),
              ElementsAre("dir/", "dir2/", "x"));
  list.set_prefix("dir/");
  EXPECT_THAT(Call<pb::StorageListReply>(h, "/pb.Storage/List", list).keys(),
              ElementsAre("y", "z/"));
}

TEST(HostServicesTest, SystemViewAndUnknownMethods) {
  InMemoryStorage storage;
  SystemViewInfo info;
  info.mlock = true;
  info.vault_version = "1.16.0";
  StorageHostServices h(storage, "logical/m/", info);
  EXPECT_TRUE(Call<pb::MlockEnabledReply>(h, "/pb.SystemView/MlockEnabled", pb::Empty()).enabled());
  EXPECT_EQ(Call<pb::TTLReply>(h, "/pb.SystemView/MaxLeaseTTL", pb::Empty()).ttl(), 32 * 86400);
  EXPECT_EQ(Call<pb::PluginEnvReply>(h, "/pb.SystemView/PluginEnv", pb::Empty())
                .plugin_environment()
                .vault_version(),
            "1.16.0");
  EXPECT_EQ(h.Handle("/pb.SystemView/EntityInfo", "").status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(h.Handle("/pb.Storage/Get", "\xff\xff").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bulwark::lifecycle
