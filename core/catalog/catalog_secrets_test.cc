// Env values may hold secrets: no read of the catalog (Get, List, the view Register returns, pins)
// and no error message, for any refusal, may contain one. Only GetForLaunch returns them, and even
// its DebugString redacts them.
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/catalog/catalog.h"
#include "core/catalog/catalog_error.h"
#include "core/catalog/catalog_test_util.h"
#include "core/catalog/codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::catalog {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::MakeRequest;
using ::testing::Not;
using testing::SimWorld;

// Distinctive enough that any leak, whole or in part, is found.
constexpr char kSecret[] = "s3cr3t-Pa55w0rd-7f3a9c";
constexpr char kSecretPart[] = "Pa55w0rd";

// Every string a view carries, and its DebugString.
std::string Everything(const CatalogEntryView& view) {
  return absl::StrCat(view.DebugString(), "|", view.name, "|", view.version, "|", view.command, "|",
                      absl::StrJoin(view.args, "|"), "|", absl::StrJoin(view.env_keys, "|"), "|",
                      view.sha256_hex);
}

std::string Everything(const absl::Status& status) {
  std::string out = status.ToString();
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    absl::StrAppend(&out, "|", url, "=", std::string(payload));
  });
  return out;
}

class CatalogSecretsTest : public ::testing::Test {
 protected:
  CatalogSecretsTest() {
    sha_ = world_.AddPlugin("db-plugin", "database plugin");
    catalog_ = world_.OpenCatalog(world_.Options());
  }

  std::vector<std::string> SecretEnv() const {
    return {absl::StrCat("DB_PASSWORD=", kSecret), absl::StrCat("API_TOKEN=x", kSecret, "y")};
  }

  void ExpectNoSecret(const std::string& text) {
    EXPECT_THAT(text, Not(HasSubstr(kSecretPart))) << "env value leaked: " << text;
    ++checked_;
  }

  SimWorld world_;
  std::string sha_;
  std::unique_ptr<Catalog> catalog_;
  int checked_ = 0;
};

TEST_F(CatalogSecretsTest, ReadsReturnKeysOnly) {
  absl::StatusOr<CatalogEntryView> registered = catalog_->Register(
      MakeRequest(PluginType::kDatabase, "db", "v1.0.0", "db-plugin", sha_, {"-x"}, SecretEnv()));
  ASSERT_TRUE(registered.ok()) << registered.status();
  ExpectNoSecret(Everything(*registered));
  EXPECT_THAT(registered->env_keys, ElementsAre("DB_PASSWORD", "API_TOKEN"));

  absl::StatusOr<CatalogEntryView> got = catalog_->Get(PluginType::kDatabase, "db", "v1.0.0");
  ASSERT_TRUE(got.ok());
  ExpectNoSecret(Everything(*got));
  for (const CatalogEntryView& view : catalog_->List(PluginType::kDatabase)) {
    ExpectNoSecret(Everything(view));
  }
  ASSERT_TRUE(catalog_->Pin(PluginType::kDatabase, "db", "v1.0.0").ok());
  ExpectNoSecret(catalog_->GetPinned(PluginType::kDatabase, "db")->value_or(""));
  ExpectNoSecret(Everything(catalog_->Delete(PluginType::kDatabase, "db", "v1.0.0")));

  // The launch path gets the values, but its DebugString does not show them.
  absl::StatusOr<LaunchSpec> spec = catalog_->GetForLaunch(PluginType::kDatabase, "db", "v1.0.0");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->entry.env, ElementsAre(absl::StrCat("DB_PASSWORD=", kSecret),
                                           absl::StrCat("API_TOKEN=x", kSecret, "y")));
  ExpectNoSecret(spec->entry.DebugString());
  EXPECT_THAT(spec->entry.DebugString(), HasSubstr("DB_PASSWORD=<redacted>"));

  // After a reload, the same.
  std::unique_ptr<Catalog> reopened = world_.OpenCatalog(world_.Options());
  ExpectNoSecret(Everything(reopened->Get(PluginType::kDatabase, "db", "v1.0.0").value()));
}

TEST_F(CatalogSecretsTest, NoRefusalEchoesAnEnvValue) {
  // Every kind of refusal, each with the secret in env (and in malformed env entries).
  std::vector<RegisterRequest> requests;
  auto add = [&](RegisterRequest r) { requests.push_back(std::move(r)); };
  auto base = [&] {
    return MakeRequest(PluginType::kDatabase, "db", "v1.0.0", "db-plugin", sha_, {}, SecretEnv());
  };
  RegisterRequest r = base();
  r.name = "bad/name";
  add(r);
  r = base();
  r.version = "1.0";
  add(r);
  r = base();
  r.version = "1.0.0+builtin";
  add(r);
  r = base();
  r.command = "../x";
  add(r);
  r = base();
  r.command = "missing";
  add(r);
  r = base();
  r.sha256 = testing::Sha256Hex("other");
  add(r);
  r = base();
  r.sha256 = "short";
  add(r);
  r = base();
  r.args = std::vector<std::string>(kArgsMax + 1, "a");
  add(r);
  for (std::vector<std::string> env : std::vector<std::vector<std::string>>{
           {kSecret},
           {absl::StrCat("=", kSecret)},
           {absl::StrCat("BAD-KEY=", kSecret)},
           {absl::StrCat(kSecret, "=value")},  // The secret where the key should be, malformed.
           {absl::StrCat("A=", kSecret), absl::StrCat("A=", kSecret)},
           {absl::StrCat("A=", std::string("\0", 1), kSecret)},
           {absl::StrCat("A=\xff", kSecret)},
           {absl::StrCat("A=", std::string(kEnvEntryBytesMax, 'x'), kSecret)},
           std::vector<std::string>(kEnvMax + 1, absl::StrCat("A=", kSecret)),
       }) {
    r = base();
    r.env = env;
    add(r);
  }
  for (const RegisterRequest& request : requests) {
    absl::StatusOr<CatalogEntryView> result = catalog_->Register(request);
    ASSERT_FALSE(result.ok());
    ExpectNoSecret(Everything(result.status()));
  }
  // A configuration without a plugin directory, and one that checks permissions.
  CatalogOptions options = world_.Options();
  options.plugin_directory = "";
  std::unique_ptr<Catalog> no_dir = world_.OpenCatalog(options);
  ExpectNoSecret(Everything(no_dir->Register(base()).status()));
  EXPECT_EQ(checked_, static_cast<int>(requests.size()) + 1);
}

TEST_F(CatalogSecretsTest, CorruptStoredEnvIsNotEchoed) {
  ASSERT_TRUE(catalog_
                  ->Register(MakeRequest(PluginType::kDatabase, "db", "", "db-plugin", sha_, {},
                                         SecretEnv()))
                  .ok());
  // Damage the stored record so that its env no longer validates, in several ways.
  const std::string key = "core/plugin-catalog/database/db";
  const std::string good = world_.storage().Get(key).value().value();
  for (const std::string& damaged :
       {absl::StrCat(good.substr(0, good.find("DB_PASSWORD")), kSecret, "\"],\"sha256\":\"x\"}"),
        absl::StrCat(good.substr(0, good.find("DB_PASSWORD")), "DB_PASSWORD=", kSecret,
                     "\",\"DB_PASSWORD=", kSecret, "\"]}"),
        absl::StrCat(good.substr(0, good.size() - 1), ",\"extra\":\"", kSecret, "\\q\"}")}) {
    ASSERT_TRUE(world_.storage().Put(key, damaged).ok());
    const absl::Status status = catalog_->Reload();
    EXPECT_EQ(CatalogErrorOf(status), CatalogError::kStorageCorrupt) << status;
    ExpectNoSecret(Everything(status));
    ExpectNoSecret(Everything(DecodeEntry(damaged).status()));
  }
}

}  // namespace
}  // namespace bulwark::catalog
