// Tests for catalog input validation: names, semantic versions (parsing, normalisation,
// precedence), commands, args, env and digests, each refusal with its code and reason.
#include "core/catalog/validation.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/catalog/catalog_error.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"

namespace bulwark::catalog {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

void ExpectRefused(const absl::Status& status, absl::StatusCode code, CatalogError error) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_EQ(CatalogErrorOf(status), error) << status;
  EXPECT_THAT(std::string(status.message()), StartsWith(std::string(CatalogErrorReason(error))));
}

TEST(PluginTypeTest, ParsesVaultNames) {
  EXPECT_EQ(ParsePluginType("auth").value(), PluginType::kAuth);
  EXPECT_EQ(ParsePluginType("database").value(), PluginType::kDatabase);
  EXPECT_EQ(ParsePluginType("secret").value(), PluginType::kSecret);
  ExpectRefused(ParsePluginType("secrets").status(), absl::StatusCode::kInvalidArgument,
                CatalogError::kInvalidType);
  ExpectRefused(ParsePluginType("").status(), absl::StatusCode::kInvalidArgument,
                CatalogError::kInvalidType);
}

TEST(NameTest, AcceptsVaultStyleNames) {
  for (const char* name : {"kv", "my-plugin", "my_plugin.v2", "0plugin", "A.b-C_d"}) {
    EXPECT_TRUE(ValidateName(name).ok()) << name;
  }
  EXPECT_TRUE(ValidateName(std::string(kNameBytesMax, 'a')).ok());
}

TEST(NameTest, RefusesBadNames) {
  for (const std::string& name :
       {std::string(""), std::string("-x"), std::string(".x"), std::string("a..b"),
        std::string("a/b"), std::string("a b"), std::string("a\0b", 3), std::string("caf\xc3\xa9"),
        std::string(kNameBytesMax + 1, 'a')}) {
    ExpectRefused(ValidateName(name), absl::StatusCode::kInvalidArgument,
                  CatalogError::kInvalidName);
  }
  EXPECT_THAT(std::string(ValidateName("a/b").message()), HasSubstr("A-Z a-z 0-9 . _ -"));
}

TEST(VersionTest, NormalisesWithLeadingV) {
  EXPECT_EQ(NormalizeVersion("").value(), "");
  EXPECT_EQ(NormalizeVersion("1.2.3").value(), "v1.2.3");
  EXPECT_EQ(NormalizeVersion("v1.2.3").value(), "v1.2.3");
  EXPECT_EQ(NormalizeVersion("0.0.0").value(), "v0.0.0");
  EXPECT_EQ(NormalizeVersion("1.2.3-rc.1+build.07").value(), "v1.2.3-rc.1+build.07");
  EXPECT_EQ(NormalizeVersion("v10.20.30-alpha-1.x-y").value(), "v10.20.30-alpha-1.x-y");
}

TEST(VersionTest, RefusesWhatIsNotSemver) {
  for (const char* text :
       {"v",         "1",      "1.2",    "1.2.3.4", "V1.2.3",      "vv1.2.3",  "01.2.3",
        "1.02.3",    "1.2.03", "1.2.3-", "1.2.3+",  "1.2.3-rc..1", "1.2.3-01", "1.2.3-r$c",
        "1.2.3+b/c", " 1.2.3", "1.2.3 ", "a.b.c",   "-1.2.3",      "1.2.3-+x"}) {
    ExpectRefused(NormalizeVersion(text).status(), absl::StatusCode::kInvalidArgument,
                  CatalogError::kInvalidVersion);
  }
  ExpectRefused(NormalizeVersion("1.2.3-" + std::string(kVersionBytesMax, 'a')).status(),
                absl::StatusCode::kInvalidArgument, CatalogError::kInvalidVersion);
}

TEST(VersionTest, BuiltinMetadataIsDetected) {
  EXPECT_TRUE(IsBuiltinVersion("v1.0.0+builtin"));
  EXPECT_TRUE(IsBuiltinVersion("v1.0.0+builtin.vault"));
  EXPECT_TRUE(IsBuiltinVersion("v1.0.0-rc1+x.builtin"));
  EXPECT_FALSE(IsBuiltinVersion("v1.0.0"));
  EXPECT_FALSE(IsBuiltinVersion("v1.0.0-builtin"));
  EXPECT_FALSE(IsBuiltinVersion("v1.0.0+builtins"));
  EXPECT_FALSE(IsBuiltinVersion(""));
}

TEST(VersionTest, PrecedenceFollowsSemver) {
  // semver.org's example chain, with the unversioned entry first.
  const std::vector<std::string> ordered = {
      "",
      "v1.0.0-alpha",
      "v1.0.0-alpha.1",
      "v1.0.0-alpha.beta",
      "v1.0.0-beta",
      "v1.0.0-beta.2",
      "v1.0.0-beta.11",
      "v1.0.0-rc.1",
      "v1.0.0",
      "v1.0.0+a",  // Equal precedence, ordered bytewise by metadata.
      "v1.0.0+b",
      "v2.0.0",
      "v2.1.0",
      "v2.1.1",
      "v10.0.0",
  };
  for (size_t i = 0; i < ordered.size(); ++i) {
    for (size_t j = 0; j < ordered.size(); ++j) {
      const int c = CompareVersions(ordered[i], ordered[j]);
      EXPECT_EQ(c < 0, i < j) << ordered[i] << " vs " << ordered[j];
      EXPECT_EQ(c == 0, i == j) << ordered[i] << " vs " << ordered[j];
    }
  }
}

RC_GTEST_PROP(VersionProperty, NormalisingIsIdempotent,
              (unsigned major, unsigned minor, unsigned patch, bool v)) {
  const std::string text = absl::StrCat(v ? "v" : "", major, ".", minor, ".", patch);
  const std::string once = NormalizeVersion(text).value();
  RC_ASSERT(NormalizeVersion(once).value() == once);
  RC_ASSERT(once.front() == 'v');
}

TEST(CommandTest, AcceptsCleanRelativePaths) {
  for (const char* command : {"plugin", "sub/plugin", "my-plugin_1.0", "caf\xc3\xa9"}) {
    EXPECT_TRUE(ValidateCommand(command).ok()) << command;
  }
}

TEST(CommandTest, RefusesEachWayOut) {
  ExpectRefused(ValidateCommand("/usr/bin/plugin"), absl::StatusCode::kInvalidArgument,
                CatalogError::kCommandAbsolute);
  ExpectRefused(ValidateCommand("../x"), absl::StatusCode::kInvalidArgument,
                CatalogError::kCommandParentReference);
  ExpectRefused(ValidateCommand("a/../../x"), absl::StatusCode::kInvalidArgument,
                CatalogError::kCommandParentReference);
  ExpectRefused(ValidateCommand("my..plugin"), absl::StatusCode::kInvalidArgument,
                CatalogError::kCommandParentReference);
  for (const std::string& command :
       {std::string(""), std::string("a b"), std::string("a\tb"), std::string("a\0b", 3),
        std::string("a//b"), std::string("./a"), std::string("a/"), std::string("\xff"),
        std::string(kCommandBytesMax + 1, 'a')}) {
    ExpectRefused(ValidateCommand(command), absl::StatusCode::kInvalidArgument,
                  CatalogError::kInvalidCommand);
  }
  EXPECT_THAT(std::string(ValidateCommand("../x").message()),
              HasSubstr("command \"../x\": must be a path inside the plugin directory without "
                        "\"..\"; copy the plugin into the plugin directory"));
}

TEST(ArgsTest, Limits) {
  EXPECT_TRUE(ValidateArgs({}).ok());
  EXPECT_TRUE(ValidateArgs(std::vector<std::string>(kArgsMax, "-v")).ok());
  ExpectRefused(ValidateArgs(std::vector<std::string>(kArgsMax + 1, "-v")),
                absl::StatusCode::kInvalidArgument, CatalogError::kInvalidArgs);
  ExpectRefused(ValidateArgs({std::string(kArgBytesMax + 1, 'a')}),
                absl::StatusCode::kInvalidArgument, CatalogError::kInvalidArgs);
  ExpectRefused(ValidateArgs(std::vector<std::string>(kArgsTotalBytesMax / kArgBytesMax + 1,
                                                      std::string(kArgBytesMax, 'a'))),
                absl::StatusCode::kInvalidArgument, CatalogError::kInvalidArgs);
  ExpectRefused(ValidateArgs({std::string("a\0b", 3)}), absl::StatusCode::kInvalidArgument,
                CatalogError::kInvalidArgs);
  ExpectRefused(ValidateArgs({"\xc0\xaf"}), absl::StatusCode::kInvalidArgument,
                CatalogError::kInvalidArgs);
}

TEST(EnvTest, AcceptsKeyValue) {
  EXPECT_TRUE(ValidateEnv({"A=1", "_B=", "C_2=x=y", "D=multi\nline"}).ok());
}

TEST(EnvTest, RefusesMalformedAndNeverShowsValues) {
  const std::string secret = "hunter2-SECRET";
  const std::vector<std::vector<std::string>> bad = {
      {secret},                                  // No '='.
      {"=" + secret},                            // Empty key.
      {"1A=" + secret},                          // Key starts with a digit.
      {"A-B=" + secret},                         // Bad key character.
      {"A=" + secret, "A=" + secret},            // Repeated key.
      {"A=" + std::string("x\0y", 3) + secret},  // NUL.
      {"A=\xff" + secret},                       // Not UTF-8.
      {"A=" + std::string(kEnvEntryBytesMax, 'x') + secret},
      {std::string(kEnvKeyBytesMax + 1, 'K') + "=" + secret},
      std::vector<std::string>(kEnvMax + 1, "A=" + secret),
      std::vector<std::string>(kEnvTotalBytesMax / kEnvEntryBytesMax + 1,
                               "A=" + std::string(kEnvEntryBytesMax - 2, 'x')),
  };
  for (const std::vector<std::string>& env : bad) {
    const absl::Status status = ValidateEnv(env);
    ExpectRefused(status, absl::StatusCode::kInvalidArgument, CatalogError::kInvalidEnv);
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr("hunter2")));
    EXPECT_THAT(status.ToString(), Not(HasSubstr("hunter2")));
  }
}

TEST(Sha256Test, NormalisesToLowerCase) {
  const std::string upper(64, 'A');
  EXPECT_EQ(NormalizeSha256(upper).value(), std::string(64, 'a'));
  ExpectRefused(NormalizeSha256(std::string(63, 'a')).status(), absl::StatusCode::kInvalidArgument,
                CatalogError::kInvalidSha256);
  ExpectRefused(NormalizeSha256(std::string(65, 'a')).status(), absl::StatusCode::kInvalidArgument,
                CatalogError::kInvalidSha256);
  ExpectRefused(NormalizeSha256(std::string(63, 'a') + "g").status(),
                absl::StatusCode::kInvalidArgument, CatalogError::kInvalidSha256);
}

TEST(RegisterRequestTest, ReservedBuiltinVersion) {
  RegisterRequest request;
  request.name = "kv";
  request.version = "1.0.0+builtin";
  request.command = "kv";
  request.sha256 = std::string(64, 'a');
  ExpectRefused(ValidateRegisterRequest(request).status(), absl::StatusCode::kInvalidArgument,
                CatalogError::kReservedVersion);
  request.version = "1.0.0+build";
  absl::StatusOr<RegisterRequest> ok = ValidateRegisterRequest(request);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->version, "v1.0.0+build");
}

TEST(Utf8Test, ValidAndInvalid) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("ascii"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));          // Overlong NUL.
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // Surrogate.
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // Above U+10FFFF.
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // Truncated.
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

TEST(CatalogErrorTest, PayloadRoundTrips) {
  const absl::Status status = CatalogStatus(absl::StatusCode::kPermissionDenied,
                                            CatalogError::kCommandOutsideDirectory, "why");
  EXPECT_EQ(status.message(), "catalog.command_outside_dir: why");
  EXPECT_EQ(CatalogErrorOf(status), CatalogError::kCommandOutsideDirectory);
  EXPECT_EQ(CatalogErrorOf(absl::OkStatus()), std::nullopt);
  EXPECT_EQ(CatalogErrorOf(absl::InternalError("x")), std::nullopt);
}

}  // namespace
}  // namespace bulwark::catalog
