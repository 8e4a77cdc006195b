// Tests for the catalog's behaviour: Vault's storage layout, lookup with and without versions,
// built-ins, listing order, pins, deletes, reload, and corrupt storage.
#include "core/catalog/catalog.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "base/env/sim/sim_event_loop.h"
#include "core/catalog/catalog_error.h"
#include "core/catalog/catalog_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::catalog {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::MakeRequest;
using testing::SimWorld;

std::vector<std::string> Versions(const std::vector<CatalogEntryView>& views) {
  std::vector<std::string> out;
  for (const CatalogEntryView& v : views) out.push_back(v.name + "@" + v.version);
  return out;
}

class CatalogTest : public ::testing::Test {
 protected:
  CatalogTest() {
    sha_ = world_.AddPlugin("kv-ext", "kv external");
    catalog_ = world_.OpenCatalog(
        world_.Options({BuiltinPlugin{PluginType::kSecret, "kv", "v0.20.0+builtin"},
                        BuiltinPlugin{PluginType::kAuth, "userpass", "v1.0.0+builtin"}}));
  }

  absl::StatusOr<CatalogEntryView> Register(PluginType type, absl::string_view name,
                                            absl::string_view version,
                                            std::vector<std::string> env = {}) {
    return catalog_->Register(MakeRequest(type, name, version, "kv-ext", sha_, {"-a"}, env));
  }

  SimWorld world_;
  std::string sha_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(CatalogTest, StorageLayoutFollowsVault) {
  ASSERT_TRUE(Register(PluginType::kSecret, "kv-ext", "").ok());
  ASSERT_TRUE(Register(PluginType::kSecret, "kv-ext", "1.2.3").ok());
  ASSERT_TRUE(Register(PluginType::kDatabase, "db", "v0.1.0").ok());
  ASSERT_TRUE(catalog_->Pin(PluginType::kSecret, "kv-ext", "1.2.3").ok());
  EXPECT_THAT(
      world_.storage().List("").value(),
      ElementsAre("core/plugin-catalog/database/db/v0.1.0",
                  "core/plugin-catalog/pinned/secret/kv-ext", "core/plugin-catalog/secret/kv-ext",
                  "core/plugin-catalog/secret/kv-ext/v1.2.3"));
  EXPECT_EQ(world_.storage().Get("core/plugin-catalog/pinned/secret/kv-ext").value(),
            R"({"name":"kv-ext","type":"secret","version":"v1.2.3"})");
}

TEST_F(CatalogTest, GetWithAndWithoutVersion) {
  ASSERT_TRUE(Register(PluginType::kSecret, "kv-ext", "").ok());
  ASSERT_TRUE(Register(PluginType::kSecret, "kv-ext", "v2.0.0").ok());
  absl::StatusOr<CatalogEntryView> unversioned = catalog_->Get(PluginType::kSecret, "kv-ext");
  ASSERT_TRUE(unversioned.ok());
  EXPECT_EQ(unversioned->version, "");
  EXPECT_EQ(unversioned->command, "kv-ext");
  EXPECT_THAT(unversioned->args, ElementsAre("-a"));
  EXPECT_EQ(catalog_->Get(PluginType::kSecret, "kv-ext", "2.0.0")->version, "v2.0.0");
  const absl::Status missing = catalog_->Get(PluginType::kSecret, "kv-ext", "v3.0.0").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(CatalogErrorOf(missing), CatalogError::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("secret plugin \"kv-ext\" version v3.0.0"));
  // Types are separate namespaces.
  EXPECT_EQ(catalog_->Get(PluginType::kAuth, "kv-ext").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(CatalogErrorOf(catalog_->Get(PluginType::kAuth, "../x").status()),
            CatalogError::kInvalidName);
  EXPECT_EQ(CatalogErrorOf(catalog_->Get(PluginType::kAuth, "x", "1").status()),
            CatalogError::kInvalidVersion);
}

TEST_F(CatalogTest, BuiltinsAreFoundWithoutOrWithTheirVersion) {
  absl::StatusOr<CatalogEntryView> kv = catalog_->Get(PluginType::kSecret, "kv");
  ASSERT_TRUE(kv.ok());
  EXPECT_TRUE(kv->builtin);
  EXPECT_EQ(kv->version, "v0.20.0+builtin");
  EXPECT_EQ(kv->command, "");
  EXPECT_EQ(kv->sha256_hex, "");
  EXPECT_TRUE(catalog_->Get(PluginType::kSecret, "kv", "v0.20.0+builtin").ok());
  EXPECT_FALSE(catalog_->Get(PluginType::kSecret, "kv", "v0.19.0+builtin").ok());
  // A versioned user entry with the built-in's name does not hide it.
  ASSERT_TRUE(Register(PluginType::kSecret, "kv", "v1.0.0").ok());
  EXPECT_TRUE(catalog_->Get(PluginType::kSecret, "kv")->builtin);
  EXPECT_FALSE(catalog_->Get(PluginType::kSecret, "kv", "v1.0.0")->builtin);
  // Built-ins cannot be deleted; built-in launches need no artifact.
  EXPECT_EQ(CatalogErrorOf(catalog_->Delete(PluginType::kSecret, "kv", "v0.20.0+builtin")),
            CatalogError::kBuiltinImmutable);
  absl::StatusOr<LaunchSpec> spec = catalog_->GetForLaunch(PluginType::kSecret, "kv");
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE(spec->entry.builtin);
  EXPECT_EQ(spec->executable, nullptr);
}

TEST_F(CatalogTest, ListIsSortedByNameThenSemver) {
  for (const char* version : {"v1.10.0", "", "v1.2.0", "v1.2.0-rc.1", "v0.9.0"}) {
    ASSERT_TRUE(Register(PluginType::kSecret, "kv-ext", version).ok()) << version;
  }
  ASSERT_TRUE(Register(PluginType::kSecret, "a-first", "").ok());
  ASSERT_TRUE(Register(PluginType::kAuth, "other-type", "").ok());
  EXPECT_THAT(Versions(catalog_->List(PluginType::kSecret)),
              ElementsAre("a-first@", "kv@v0.20.0+builtin", "kv-ext@", "kv-ext@v0.9.0",
                          "kv-ext@v1.2.0-rc.1", "kv-ext@v1.2.0", "kv-ext@v1.10.0"));
  EXPECT_THAT(Versions(catalog_->List(PluginType::kAuth)),
              ElementsAre("other-type@", "userpass@v1.0.0+builtin"));
  EXPECT_TRUE(catalog_->List(PluginType::kDatabase).empty());
}

TEST_F(CatalogTest, ReRegisteringReplaces) {
  ASSERT_TRUE(Register(PluginType::kSecret, "kv-ext", "v1.0.0").ok());
  const std::string other = world_.AddPlugin("kv-ext2", "another build");
  absl::StatusOr<CatalogEntryView> replaced =
      catalog_->Register(MakeRequest(PluginType::kSecret, "kv-ext", "1.0.0", "kv-ext2", other));
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(catalog_->entry_count(), 1u);
  EXPECT_EQ(catalog_->Get(PluginType::kSecret, "kv-ext", "v1.0.0")->command, "kv-ext2");
}

TEST_F(CatalogTest, PinsAndDeletes) {
  ASSERT_TRUE(Register(PluginType::kSecret, "kv-ext", "v1.0.0").ok());
  ASSERT_TRUE(Register(PluginType::kSecret, "kv-ext", "v2.0.0").ok());
  EXPECT_EQ(catalog_->GetPinned(PluginType::kSecret, "kv-ext").value(), std::nullopt);
  EXPECT_EQ(catalog_->EffectiveVersion(PluginType::kSecret, "kv-ext", "").value(), "");

  const absl::Status missing = catalog_->Pin(PluginType::kSecret, "kv-ext", "v3.0.0");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(CatalogErrorOf(catalog_->Pin(PluginType::kSecret, "kv-ext", "")),
            CatalogError::kInvalidVersion);

  ASSERT_TRUE(catalog_->Pin(PluginType::kSecret, "kv-ext", "1.0.0").ok());
  EXPECT_EQ(catalog_->GetPinned(PluginType::kSecret, "kv-ext").value(), "v1.0.0");
  EXPECT_EQ(catalog_->EffectiveVersion(PluginType::kSecret, "kv-ext", "").value(), "v1.0.0");
  EXPECT_EQ(catalog_->EffectiveVersion(PluginType::kSecret, "kv-ext", "2.0.0").value(), "v2.0.0");

  const absl::Status pinned = catalog_->Delete(PluginType::kSecret, "kv-ext", "v1.0.0");
  EXPECT_EQ(pinned.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CatalogErrorOf(pinned), CatalogError::kVersionPinned);
  ASSERT_TRUE(catalog_->Delete(PluginType::kSecret, "kv-ext", "v2.0.0").ok());
  ASSERT_TRUE(catalog_->Delete(PluginType::kSecret, "kv-ext", "v2.0.0").ok());  // Idempotent.
  ASSERT_TRUE(catalog_->Unpin(PluginType::kSecret, "kv-ext").ok());
  ASSERT_TRUE(catalog_->Unpin(PluginType::kSecret, "kv-ext").ok());
  ASSERT_TRUE(catalog_->Delete(PluginType::kSecret, "kv-ext", "v1.0.0").ok());
  EXPECT_EQ(catalog_->entry_count(), 0u);
  EXPECT_TRUE(world_.storage().List("").value().empty());

  // A built-in's version can be pinned too.
  ASSERT_TRUE(catalog_->Pin(PluginType::kSecret, "kv", "v0.20.0+builtin").ok());
}

TEST_F(CatalogTest, ReloadSeesTheSameCatalog) {
  ASSERT_TRUE(Register(PluginType::kSecret, "kv-ext", "", {"TOKEN=s3cr3t"}).ok());
  ASSERT_TRUE(Register(PluginType::kSecret, "kv-ext", "v1.0.0").ok());
  ASSERT_TRUE(catalog_->Pin(PluginType::kSecret, "kv-ext", "v1.0.0").ok());
  std::unique_ptr<Catalog> reopened = world_.OpenCatalog(catalog_->options());
  for (PluginType type : kAllPluginTypes) {
    EXPECT_EQ(reopened->List(type), catalog_->List(type));
  }
  EXPECT_EQ(reopened->GetPinned(PluginType::kSecret, "kv-ext").value(), "v1.0.0");
  absl::StatusOr<LaunchSpec> spec = reopened->GetForLaunch(PluginType::kSecret, "kv-ext");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->entry.env, ElementsAre("TOKEN=s3cr3t"));
}

TEST_F(CatalogTest, CorruptStorageIsRefusedAndTheOldIndexKept) {
  ASSERT_TRUE(Register(PluginType::kSecret, "kv-ext", "").ok());
  const std::vector<std::pair<std::string, std::string>> corrupt = {
      {"core/plugin-catalog/secret/kv-ext", "{not json"},
      {"core/plugin-catalog/secret/other", world_.storage()
                                               .Get("core/plugin-catalog/secret/kv-ext")
                                               ->value()},  // Entry under another name.
      {"core/plugin-catalog/legacy-untyped", "{}"},
      {"core/plugin-catalog/secrets/x", "{}"},
      {"core/plugin-catalog/pinned/secret/kv-ext",
       R"({"name":"zz","type":"secret","version":"v1.0.0"})"},
  };
  for (const auto& [key, value] : corrupt) {
    SimWorld fresh;
    fresh.AddPlugin("kv-ext", "kv external");
    std::unique_ptr<Catalog> catalog = fresh.OpenCatalog(fresh.Options());
    ASSERT_TRUE(
        catalog->Register(MakeRequest(PluginType::kSecret, "kv-ext", "", "kv-ext", sha_)).ok());
    ASSERT_TRUE(fresh.storage().Put(key, value).ok());
    const absl::Status status = catalog->Reload();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << key;
    EXPECT_EQ(CatalogErrorOf(status), CatalogError::kStorageCorrupt) << status;
    EXPECT_TRUE(catalog->Get(PluginType::kSecret, "kv-ext").ok()) << "the old index is kept";
    EXPECT_FALSE(Catalog::Open(fresh.storage(), fresh.fs(), fresh.Options()).ok());
  }
}

TEST_F(CatalogTest, AnotherStoragePrefix) {
  CatalogOptions options = world_.Options();
  options.storage_prefix = "";
  std::unique_ptr<Catalog> bare = world_.OpenCatalog(options);
  ASSERT_TRUE(bare->Register(MakeRequest(PluginType::kAuth, "a", "", "kv-ext", sha_)).ok());
  EXPECT_THAT(world_.storage().List("").value(), ElementsAre("auth/a"));
}

// GetForReuse finds the entry a launch would use (env included) without opening the artifact,
// so a file swapped since does not stop an instance joining the process already running the
// verified one; GetForLaunch still refuses it. Under a signature policy it declines.
TEST_F(CatalogTest, GetForReuseNeitherOpensTheArtifactNorSkipsASignaturePolicy) {
  ASSERT_TRUE(Register(PluginType::kDatabase, "kv-ext", "", {"SECRET_ENV=1"}).ok());
  world_.AddPlugin("kv-ext", "swapped bytes");
  absl::StatusOr<CatalogEntry> entry = catalog_->GetForReuse(PluginType::kDatabase, "kv-ext");
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_EQ(entry->sha256_hex, sha_);
  EXPECT_THAT(entry->env, ElementsAre("SECRET_ENV=1"));
  EXPECT_EQ(CatalogErrorOf(catalog_->GetForLaunch(PluginType::kDatabase, "kv-ext").status()),
            CatalogError::kSha256Mismatch);
  EXPECT_EQ(catalog_->GetForReuse(PluginType::kDatabase, "nope").status().code(),
            absl::StatusCode::kNotFound);
  CatalogOptions options = world_.Options();
  options.signature_policy = SignaturePolicy::kWarn;
  options.allowed_signers_file = "/etc/bulwark/allowed_signers";
  sim::SimClock clock;
  options.clock = &clock;
  std::unique_ptr<Catalog> signed_catalog = world_.OpenCatalog(options);
  EXPECT_EQ(signed_catalog->GetForReuse(PluginType::kDatabase, "kv-ext").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace bulwark::catalog
