// Signed artifacts in the catalog: registration and launch under the off, warn and required
// policies, with signatures made by the real ssh-keygen over the artifact's bytes and the
// allowed-signers file in the simulated file system.
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/crypto/sshsig.h"
#include "base/env/sim/sim_event_loop.h"
#include "base/log/log.h"
#include "core/catalog/catalog.h"
#include "core/catalog/catalog_error.h"
#include "core/catalog/catalog_test_util.h"
#include "core/catalog/codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::catalog {
namespace {

using ::testing::HasSubstr;
using testing::MakeRequest;
using ::testing::Not;
using testing::SimWorld;

constexpr absl::string_view kAllowed = "/etc/allowed_signers";
constexpr absl::string_view kArtifact = "#!/bin/sh\necho a signed plugin\n";

std::string Tmp() { return absl::StrCat(std::getenv("TEST_TMPDIR"), "/catalog_signature"); }

int Shell(const std::string& command) {
  return std::system(absl::StrCat("set -e; cd ", Tmp(), "; ", command).c_str());
}

std::string ReadTmp(const std::string& name) {
  std::ifstream in(absl::StrCat(Tmp(), "/", name), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteTmp(const std::string& name, absl::string_view data) {
  std::ofstream out(absl::StrCat(Tmp(), "/", name), std::ios::binary | std::ios::trunc);
  out << data;
}

// "ssh-ed25519 AAAA..." of a key made in SetUpTestSuite.
std::string PublicKey(const std::string& key) {
  const std::vector<std::string> f = absl::StrSplit(ReadTmp(key + ".pub"), ' ');
  return absl::StrCat(f[0], " ", f[1]);
}

// The armored signature of `bytes` by `key` in namespace `ns`, made by ssh-keygen.
std::string Sign(absl::string_view bytes, const std::string& key = "alice",
                 absl::string_view ns = kPluginSignatureNamespace, absl::string_view extra = "") {
  WriteTmp("message", bytes);
  EXPECT_EQ(Shell(absl::StrCat("rm -f message.sig; ssh-keygen -q -Y sign -f ", key, " -n ", ns, " ",
                               extra, " message 2>/dev/null")),
            0);
  return ReadTmp("message.sig");
}

class RecordingLog final : public LogSink {
 public:
  void Write(const LogRecord& record) override { records.push_back(record); }
  std::vector<LogRecord> records;
};

class CatalogSignatureTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(std::system(absl::StrCat("rm -rf ", Tmp(), " && mkdir -p ", Tmp()).c_str()), 0);
    ASSERT_EQ(Shell("ssh-keygen -q -N '' -t ed25519 -C alice -f alice >/dev/null"), 0);
    ASSERT_EQ(Shell("ssh-keygen -q -N '' -t ecdsa -b 256 -C bob -f bob >/dev/null"), 0);
    ASSERT_EQ(Shell("ssh-keygen -q -N '' -t ed25519 -C mallory -f mallory >/dev/null"), 0);
  }

  CatalogSignatureTest() {
    sha_ = world_.AddPlugin("kv-ext", kArtifact);
    EXPECT_TRUE(world_.fs().CreateDir("/etc", 0755).ok());
    SetAllowed(absl::StrCat("alice@example.com ", PublicKey("alice"), "\nbob@example.com ",
                            PublicKey("bob"), "\n"));
  }

  void SetAllowed(absl::string_view text) {
    ASSERT_TRUE(world_.fs().WriteFileDurably(kAllowed, text, 0644).ok());
  }

  std::unique_ptr<Catalog> Open(SignaturePolicy policy) {
    CatalogOptions options = world_.Options();
    options.signature_policy = policy;
    options.allowed_signers_file = std::string(kAllowed);
    options.clock = &clock_;
    options.log = &log_;
    return world_.OpenCatalog(std::move(options));
  }

  RegisterRequest Request(std::string signature) {
    RegisterRequest r = MakeRequest(PluginType::kSecret, "kv-ext", "1.0.0", "kv-ext", sha_);
    r.signature = std::move(signature);
    return r;
  }

  absl::Status Launch(Catalog& catalog) {
    return catalog.GetForLaunch(PluginType::kSecret, "kv-ext", "1.0.0").status();
  }

  // The refusal carries the catalog reason and, for signature refusals, the crypto reason, and
  // never the signer's key.
  void ExpectRefusal(const absl::Status& status, CatalogError reason,
                     absl::string_view crypto_reason = "") {
    EXPECT_EQ(CatalogErrorOf(status), reason) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(crypto_reason)) << status;
    for (const char* key : {"alice", "bob", "mallory"}) {
      const std::vector<std::string> f = absl::StrSplit(PublicKey(key), ' ');
      EXPECT_THAT(std::string(status.message()), Not(HasSubstr(f[1].substr(0, 30))));
    }
  }

  SimWorld world_;
  sim::SimClock clock_;  // 2026-01-01T00:00:00Z.
  RecordingLog log_;
  std::string sha_;
};

TEST_F(CatalogSignatureTest, RequiredRegistersASignedPluginAndRecordsTheSigner) {
  std::unique_ptr<Catalog> catalog = Open(SignaturePolicy::kRequired);
  const std::string sig = Sign(kArtifact);
  absl::StatusOr<CatalogEntryView> view = catalog->Register(Request(sig));
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->signer_principal, "alice@example.com");
  ASSERT_EQ(Shell("ssh-keygen -l -f alice.pub | cut -d' ' -f2 > fp"), 0);
  EXPECT_EQ(absl::StrCat(view->signer_fingerprint, "\n"), ReadTmp("fp"));
  // Stored with the signature, and read back after a reload.
  const std::string stored =
      world_.storage().Get("core/plugin-catalog/secret/kv-ext/v1.0.0").value().value();
  absl::StatusOr<CatalogEntry> decoded = DecodeEntry(stored);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->signature, sig);
  EXPECT_EQ(decoded->signer_fingerprint, view->signer_fingerprint);
  ASSERT_TRUE(catalog->Reload().ok());
  EXPECT_EQ(catalog->Get(PluginType::kSecret, "kv-ext", "1.0.0").value(), *view);
  absl::StatusOr<LaunchSpec> spec = catalog->GetForLaunch(PluginType::kSecret, "kv-ext", "1.0.0");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->entry.signature, sig);
  // A sha256 signature (verified with the SHA-256 the catalog pins, no second hash).
  view = catalog->Register(
      Request(Sign(kArtifact, "alice", kPluginSignatureNamespace, "-O hashalg=sha256")));
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_TRUE(Launch(*catalog).ok());
  ExpectRefusal(catalog
                    ->Register(Request(
                        Sign("other", "alice", kPluginSignatureNamespace, "-O hashalg=sha256")))
                    .status(),
                CatalogError::kSignatureRefused, "signature.bad_signature");
  // An ECDSA signer on another line is found too.
  view = catalog->Register(Request(Sign(kArtifact, "bob")));
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->signer_principal, "bob@example.com");
}

TEST_F(CatalogSignatureTest, RequiredRefusesEachBadSignatureWithItsReason) {
  std::unique_ptr<Catalog> catalog = Open(SignaturePolicy::kRequired);
  absl::Status s = catalog->Register(Request("")).status();
  ExpectRefusal(s, CatalogError::kSignatureRequired, "has no signature");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("ssh-keygen -Y sign -n bulwark-plugin"));

  ExpectRefusal(catalog->Register(Request(Sign("other bytes"))).status(),
                CatalogError::kSignatureRefused, "signature.bad_signature");
  ExpectRefusal(catalog->Register(Request(Sign(kArtifact, "alice", "git"))).status(),
                CatalogError::kSignatureRefused, "signature.wrong_namespace");
  ExpectRefusal(catalog->Register(Request(Sign(kArtifact, "mallory"))).status(),
                CatalogError::kSignatureRefused, "signature.unknown_signer");
  const std::string sig = Sign(kArtifact);
  s = catalog->Register(Request(sig.substr(0, sig.size() / 2))).status();
  ExpectRefusal(s, CatalogError::kSignatureRefused, "signature.malformed");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);

  SetAllowed(absl::StrCat("alice@example.com valid-before=\"20251231Z\" ", PublicKey("alice")));
  ExpectRefusal(catalog->Register(Request(sig)).status(), CatalogError::kSignatureRefused,
                "signature.expired");
  SetAllowed(absl::StrCat("alice@example.com valid-after=\"20260102Z\" ", PublicKey("alice")));
  ExpectRefusal(catalog->Register(Request(sig)).status(), CatalogError::kSignatureRefused,
                "signature.not_yet_valid");
  SetAllowed(absl::StrCat("alice@example.com namespaces=\"git\" ", PublicKey("alice")));
  ExpectRefusal(catalog->Register(Request(sig)).status(), CatalogError::kSignatureRefused,
                "signature.namespace_not_allowed");
  SetAllowed(absl::StrCat("alice@example.com cert-authority ", PublicKey("alice")));
  s = catalog->Register(Request(sig)).status();
  ExpectRefusal(s, CatalogError::kAllowedSignersInvalid, "line 1: cert-authority");
  ASSERT_TRUE(world_.fs().Remove(kAllowed).ok());
  ExpectRefusal(catalog->Register(Request(sig)).status(), CatalogError::kAllowedSignersInvalid,
                "cannot be read");
  EXPECT_EQ(catalog->entry_count(), 0u);
}

TEST_F(CatalogSignatureTest, EveryLaunchVerifiesAgainstTheAllowedSignersAsTheyAreNow) {
  std::unique_ptr<Catalog> catalog = Open(SignaturePolicy::kRequired);
  ASSERT_TRUE(catalog->Register(Request(Sign(kArtifact))).ok());
  ASSERT_TRUE(Launch(*catalog).ok());
  // The signer is removed from the file: the next launch is refused.
  SetAllowed(absl::StrCat("bob@example.com ", PublicKey("bob"), "\n"));
  ExpectRefusal(Launch(*catalog), CatalogError::kSignatureRefused, "signature.unknown_signer");
  // Time passes the line's valid-before.
  SetAllowed(absl::StrCat("alice@example.com valid-before=\"20260201Z\" ", PublicKey("alice")));
  ASSERT_TRUE(Launch(*catalog).ok());
  clock_.JumpWall(absl::Hours(24 * 40));
  ExpectRefusal(Launch(*catalog), CatalogError::kSignatureRefused, "signature.expired");
}

TEST_F(CatalogSignatureTest, WarnLaunchesWithAWarningAndRefusesOnlyBadSignaturesAtRegistration) {
  std::unique_ptr<Catalog> catalog = Open(SignaturePolicy::kWarn);
  ExpectRefusal(catalog->Register(Request(Sign("other bytes"))).status(),
                CatalogError::kSignatureRefused, "signature.bad_signature");
  absl::StatusOr<CatalogEntryView> view = catalog->Register(Request(""));
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->signer_fingerprint, "");
  ASSERT_EQ(log_.records.size(), 1u);
  EXPECT_EQ(log_.records[0].level, LogLevel::kWarn);
  EXPECT_THAT(log_.records[0].message, HasSubstr("without a signature"));
  ASSERT_TRUE(Launch(*catalog).ok());
  ASSERT_EQ(log_.records.size(), 2u);
  EXPECT_THAT(log_.records[1].message, HasSubstr("catalog.signature_required"));
  // Signed, then the signer is removed: still launched, with a warning naming the reason.
  ASSERT_TRUE(catalog->Register(Request(Sign(kArtifact))).ok());
  SetAllowed("");
  ASSERT_TRUE(Launch(*catalog).ok());
  EXPECT_THAT(log_.records.back().message, HasSubstr("signature.unknown_signer"));
}

TEST_F(CatalogSignatureTest, OffKeepsASignatureUnverifiedForALaterRequiredPolicy) {
  {
    std::unique_ptr<Catalog> off = Open(SignaturePolicy::kOff);
    // Not verified (mallory is not allowed), but its form is.
    ExpectRefusal(off->Register(Request("garbage")).status(), CatalogError::kSignatureRefused,
                  "signature.malformed");
    absl::StatusOr<CatalogEntryView> view = off->Register(Request(Sign(kArtifact, "mallory")));
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_EQ(view->signer_fingerprint, "");
    ASSERT_TRUE(Launch(*off).ok());
  }
  std::unique_ptr<Catalog> required = Open(SignaturePolicy::kRequired);
  ExpectRefusal(Launch(*required), CatalogError::kSignatureRefused, "signature.unknown_signer");
  {
    std::unique_ptr<Catalog> off = Open(SignaturePolicy::kOff);
    ASSERT_TRUE(off->Register(Request(Sign(kArtifact))).ok());
  }
  required = Open(SignaturePolicy::kRequired);
  EXPECT_TRUE(Launch(*required).ok());
  {
    std::unique_ptr<Catalog> off = Open(SignaturePolicy::kOff);
    ASSERT_TRUE(off->Register(Request("")).ok());
  }
  required = Open(SignaturePolicy::kRequired);
  ExpectRefusal(Launch(*required), CatalogError::kSignatureRequired, "is unsigned");
}

TEST_F(CatalogSignatureTest, OptionsNeedAnAllowedSignersFileAndAClock) {
  CatalogOptions options = world_.Options();
  options.signature_policy = SignaturePolicy::kRequired;
  absl::StatusOr<std::unique_ptr<Catalog>> c =
      Catalog::Open(world_.storage(), world_.fs(), options);
  EXPECT_EQ(CatalogErrorOf(c.status()), CatalogError::kInvalidOptions);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("allowed_signers_file"));
  options.allowed_signers_file = "relative/file";
  EXPECT_EQ(CatalogErrorOf(Catalog::Open(world_.storage(), world_.fs(), options).status()),
            CatalogError::kInvalidOptions);
  options.allowed_signers_file = std::string(kAllowed);
  c = Catalog::Open(world_.storage(), world_.fs(), options);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("clock"));
  EXPECT_EQ(ParseSignaturePolicy("required").value(), SignaturePolicy::kRequired);
  EXPECT_THAT(std::string(ParseSignaturePolicy("on").status().message()),
              HasSubstr("\"off\", \"warn\", \"required\""));
}

}  // namespace
}  // namespace bulwark::catalog
