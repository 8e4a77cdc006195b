// Mount table: path rules, overlap, routing, persistence and failure atomicity.
#include "core/mount/mount_table.h"

#include <map>
#include <string>

#include "base/status/check.h"
#include "base/storage/in_memory_storage.h"
#include "core/catalog/catalog_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"

namespace bulwark::mount {
namespace {

using catalog::PluginType;
using ::testing::HasSubstr;

// Storage that fails every Put once armed, to prove a failed write leaves the table unchanged.
class FailingStorage : public Storage {
 public:
  explicit FailingStorage(Storage& base) : base_(base) {}
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) override {
    return base_.Get(key);
  }
  absl::Status Put(absl::string_view key, absl::string_view value) override {
    if (fail_puts) return absl::UnavailableError("disk on fire");
    return base_.Put(key, value);
  }
  absl::Status Delete(absl::string_view key) override { return base_.Delete(key); }
  absl::StatusOr<std::vector<std::string>> List(absl::string_view prefix) override {
    return base_.List(prefix);
  }
  bool fail_puts = false;

 private:
  Storage& base_;
};

class MountTableTest : public ::testing::Test {
 protected:
  MountTableTest() {
    const std::string sha = world_.AddPlugin("kv-ext", "#!bulwark-sim kv\n");
    catalog_ = world_.OpenCatalog(
        world_.Options({catalog::BuiltinPlugin{PluginType::kSecret, "kv", "v1.0.0+builtin"},
                        catalog::BuiltinPlugin{PluginType::kAuth, "userpass", "v1.0.0+builtin"}}));
    CHECK_OK(catalog_
                 ->Register(catalog::testing::MakeRequest(PluginType::kSecret, "kv-ext", "",
                                                          "kv-ext", sha))
                 .status());
    CHECK_OK(catalog_
                 ->Register(catalog::testing::MakeRequest(PluginType::kSecret, "kv-ext", "v2.0.0",
                                                          "kv-ext", sha))
                 .status());
    CHECK_OK(catalog_
                 ->Register(
                     catalog::testing::MakeRequest(PluginType::kDatabase, "pg", "", "kv-ext", sha))
                 .status());
    table_ = *MountTable::Open(storage_, world_.random());
  }

  absl::StatusOr<MountEntry> Enable(absl::string_view path, absl::string_view plugin = "kv-ext",
                                    PluginType type = PluginType::kSecret,
                                    absl::string_view ns = "") {
    EnableRequest r;
    r.path = std::string(path);
    r.namespace_path = std::string(ns);
    r.type = type;
    r.plugin_name = std::string(plugin);
    return table_->Enable(r, *catalog_);
  }

  catalog::testing::SimWorld world_;
  std::unique_ptr<catalog::Catalog> catalog_;
  InMemoryStorage backing_;
  FailingStorage storage_{backing_};
  std::unique_ptr<MountTable> table_;
};

TEST_F(MountTableTest, EnableNormalisesAndPersists) {
  absl::StatusOr<MountEntry> e = Enable("/secret/team");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->path, "secret/team/");
  EXPECT_EQ(e->plugin_version, "");
  EXPECT_THAT(e->accessor, ::testing::StartsWith("kv-ext_"));
  EXPECT_EQ(e->uuid.size(), 36u);

  std::unique_ptr<MountTable> reopened = *MountTable::Open(storage_, world_.random());
  ASSERT_NE(reopened->Find("secret/team"), nullptr);
  EXPECT_EQ(*reopened->Find("secret/team/"), *e);
}

TEST_F(MountTableTest, VersionComesFromRequestThenPinThenUnversioned) {
  EXPECT_EQ(Enable("a")->plugin_version, "");
  ASSERT_TRUE(catalog_->Pin(PluginType::kSecret, "kv-ext", "v2.0.0").ok());
  EXPECT_EQ(Enable("b")->plugin_version, "v2.0.0");
  EnableRequest r{"c", "", PluginType::kSecret, "kv-ext", "9.9.9", ""};
  absl::StatusOr<MountEntry> missing = table_->Enable(r, *catalog_);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_EQ(table_->Find("c"), nullptr);
}

TEST_F(MountTableTest, RejectsBadPaths) {
  for (const char* bad : {"", "/", "a//b", "a/../b", "./a", "a b", "a\nb", "kv?"}) {
    absl::StatusOr<MountEntry> e = Enable(bad);
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(e.status().message(), HasSubstr("mount.invalid_path")) << bad;
  }
  EXPECT_EQ(Enable(std::string(kMountPathBytesMax + 1, 'a')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Enable("sys/x").status().message(), HasSubstr("mount.reserved_path"));
  EXPECT_THAT(Enable("sys").status().message(), HasSubstr("mount.reserved_path"));
  EXPECT_THAT(Enable("auth/x").status().message(), HasSubstr("auth plugins only"));
  EXPECT_THAT(Enable("userpass", "userpass", PluginType::kAuth).status().message(),
              HasSubstr("mount.auth_path"));
  EXPECT_TRUE(Enable("auth/userpass", "userpass", PluginType::kAuth).ok());
  EXPECT_THAT(Enable("db", "pg", PluginType::kDatabase).status().message(),
              HasSubstr("mount.database_not_mountable"));
  EXPECT_EQ(Enable("kv", "nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(table_->size(), 1u);
}

TEST_F(MountTableTest, RejectsOverlapEitherWay) {
  ASSERT_TRUE(Enable("team/kv").ok());
  absl::StatusOr<MountEntry> same = Enable("team/kv/");
  EXPECT_EQ(same.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(same.status().message(), HasSubstr("already in use"));
  EXPECT_THAT(Enable("team").status().message(), HasSubstr("would contain the existing mount"));
  EXPECT_THAT(Enable("team/kv/inner").status().message(),
              HasSubstr("inside the existing mount \"team/kv/\""));
  // Sharing a prefix that is not a whole segment is fine.
  EXPECT_TRUE(Enable("team/kv2").ok());
  EXPECT_TRUE(Enable("team/k").ok());
}

TEST_F(MountTableTest, RoutesToLongestSegmentPrefix) {
  ASSERT_TRUE(Enable("a").ok());
  ASSERT_TRUE(Enable("b/c").ok());
  ASSERT_TRUE(Enable("kv", "kv-ext", PluginType::kSecret, "ns1").ok());

  std::optional<Route> r = table_->Match("a/x/y");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->entry->path, "a/");
  EXPECT_EQ(r->remaining, "x/y");
  EXPECT_EQ(table_->Match("/a")->remaining, "");
  EXPECT_EQ(table_->Match("b/c/d")->entry->path, "b/c/");
  EXPECT_FALSE(table_->Match("b/x").has_value());
  EXPECT_FALSE(table_->Match("ab/x").has_value());
  EXPECT_FALSE(table_->Match("").has_value());
  EXPECT_EQ(table_->Match("ns1/kv/secret")->entry->namespace_path, "ns1/");
  EXPECT_FALSE(table_->Match("kv/secret").has_value());
  EXPECT_EQ(table_->ListNamespace("ns1").size(), 1u);
  EXPECT_EQ(table_->ListNamespace("").size(), 2u);
}

TEST_F(MountTableTest, DisableAndTune) {
  ASSERT_TRUE(Enable("kv").ok());
  TuneRequest t;
  t.description = "team secrets";
  t.plugin_version = "v2.0.0";
  absl::StatusOr<MountEntry> tuned = table_->Tune("kv", t, *catalog_);
  ASSERT_TRUE(tuned.ok()) << tuned.status();
  EXPECT_EQ(tuned->plugin_version, "v2.0.0");
  EXPECT_EQ(tuned->description, "team secrets");
  t.plugin_version = "v3.0.0";
  EXPECT_EQ(table_->Tune("kv", t, *catalog_).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(table_->Find("kv")->plugin_version, "v2.0.0");

  EXPECT_EQ(table_->Disable("kv")->path, "kv/");
  EXPECT_EQ(table_->Disable("kv").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*MountTable::Open(storage_, world_.random()))->size(), 0u);
}

TEST_F(MountTableTest, FailedWriteLeavesTableUnchanged) {
  ASSERT_TRUE(Enable("kv").ok());
  storage_.fail_puts = true;
  EXPECT_EQ(Enable("other").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(table_->Disable("kv").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(table_->size(), 1u);
  EXPECT_NE(table_->Find("kv"), nullptr);
  EXPECT_EQ(table_->Find("other"), nullptr);
}

TEST_F(MountTableTest, CorruptRecordIsRefusedAndNamed) {
  ASSERT_TRUE(backing_.Put("core/mounts", "{not json").ok());
  absl::StatusOr<std::unique_ptr<MountTable>> t = MountTable::Open(storage_, world_.random());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(t.status().message(), HasSubstr("mount.storage_corrupt"));
  MountEntry bad;
  bad.path = "sys/evil/";
  bad.plugin_name = "kv";
  ASSERT_TRUE(backing_.Put("core/mounts", EncodeMountTable({bad})).ok());
  EXPECT_EQ(MountTable::Open(storage_, world_.random()).status().code(),
            absl::StatusCode::kDataLoss);
}

// Model check: after random enables and disables, Match agrees with a brute-force search over
// the listed mounts, and the table survives a reload unchanged.
RC_GTEST_FIXTURE_PROP(MountTableTest, MatchAgreesWithBruteForce, ()) {
  const std::vector<std::string> segments = {"a", "b", "kv", "x"};
  const int ops = *rc::gen::inRange(1, 30);
  for (int i = 0; i < ops; ++i) {
    const int depth = *rc::gen::inRange(1, 4);
    std::string path;
    for (int d = 0; d < depth; ++d) {
      path += *rc::gen::elementOf(segments) + "/";
    }
    if (*rc::gen::arbitrary<bool>()) {
      (void)Enable(path);
    } else {
      (void)table_->Disable(path);
    }
  }
  const std::vector<MountEntry> all = table_->List();
  for (int i = 0; i < 20; ++i) {
    std::string request;
    const int depth = *rc::gen::inRange(0, 5);
    for (int d = 0; d < depth; ++d) request += *rc::gen::elementOf(segments) + "/";
    const MountEntry* best = nullptr;
    for (const MountEntry& e : all) {
      if (request.compare(0, e.path.size(), e.path) == 0 &&
          (best == nullptr || e.path.size() > best->path.size())) {
        best = &e;
      }
    }
    std::optional<Route> r = table_->Match(request);
    RC_ASSERT(r.has_value() == (best != nullptr));
    if (best != nullptr) RC_ASSERT(r->entry->path == best->path);
  }
  std::unique_ptr<MountTable> reopened = *MountTable::Open(storage_, world_.random());
  RC_ASSERT(reopened->List() == all);
  CHECK_OK(backing_.Delete("core/mounts"));
  table_ = *MountTable::Open(storage_, world_.random());
}

}  // namespace
}  // namespace bulwark::mount
