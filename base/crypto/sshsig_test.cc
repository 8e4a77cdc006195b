// SSHSIG verification against the real ssh-keygen: keys made and files signed by
// `ssh-keygen -Y sign`, every verdict cross-checked with `ssh-keygen -Y verify` on the same
// files, for ssh-ed25519, ecdsa-sha2-nistp256 and ssh-rsa keys.
#include "base/crypto/sshsig.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "base/crypto/sshsig_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::crypto {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::string_view kNamespace = "bulwark-plugin";
// Verification time for both verifiers: ssh-keygen's -O verify-time and our `now`.
constexpr absl::string_view kVerifyTime = "20260601Z";
const absl::Time kNow = absl::FromCivil(absl::CivilDay(2026, 6, 1), absl::UTCTimeZone());

std::string Dir() { return absl::StrCat(std::getenv("TEST_TMPDIR"), "/sshsig"); }

int Shell(const std::string& command) {
  const int rc = std::system(absl::StrCat("set -e; cd ", Dir(), "; ", command).c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string ReadFile(const std::string& name) {
  std::ifstream in(absl::StrCat(Dir(), "/", name), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& name, absl::string_view data) {
  std::ofstream out(absl::StrCat(Dir(), "/", name), std::ios::binary | std::ios::trunc);
  out << data;
}

struct KeyKind {
  std::string name;    // File stem.
  std::string keygen;  // ssh-keygen -t/-b arguments.
  std::string type;    // SSH key type.
};

class SshsigTest : public ::testing::TestWithParam<KeyKind> {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(std::system(absl::StrCat("rm -rf ", Dir(), " && mkdir -p ", Dir()).c_str()), 0);
    for (const KeyKind& k : Kinds()) {
      ASSERT_EQ(Shell(absl::StrCat("ssh-keygen -q -N '' -C ", k.name, " ", k.keygen, " -f ", k.name,
                                   " </dev/null >/dev/null")),
                0);
    }
    ASSERT_EQ(Shell("ssh-keygen -q -N '' -t ed25519 -C stranger -f stranger >/dev/null"), 0);
    WriteFile("artifact", "#!/bin/sh\necho plugin bytes\n");
  }

 public:
  static std::vector<KeyKind> Kinds() {
    return {{"ed", "-t ed25519", "ssh-ed25519"},
            {"ec", "-t ecdsa -b 256", "ecdsa-sha2-nistp256"},
            {"rsa", "-t rsa -b 2048", "ssh-rsa"}};
  }

 protected:
  const KeyKind& kind() const { return GetParam(); }
  std::string PublicKey(const std::string& stem) {
    std::vector<std::string> f = absl::StrSplit(ReadFile(stem + ".pub"), ' ');
    return absl::StrCat(f[0], " ", f[1]);
  }

  // Signs `message_file` into `sig_file` with the key, namespace and extra options.
  void Sign(const std::string& message_file, const std::string& sig_file, absl::string_view ns,
            absl::string_view extra = "") {
    ASSERT_EQ(Shell(absl::StrCat("rm -f ", message_file, ".sig; ssh-keygen -q -Y sign -f ",
                                 kind().name, " -n ", ns, " ", extra, " ", message_file,
                                 " 2>/dev/null; mv ", message_file, ".sig ", sig_file)),
              0);
  }

  // Verdict of ssh-keygen -Y verify (true: accepted).
  bool KeygenAccepts(const std::string& allowed_file, const std::string& principal,
                     const std::string& sig_file, const std::string& message_file) {
    return Shell(absl::StrCat("ssh-keygen -Y verify -f ", allowed_file, " -I '", principal, "' -n ",
                              kNamespace, " -O verify-time=", kVerifyTime, " -s ", sig_file, " < ",
                              message_file, " >/dev/null 2>&1")) == 0;
  }

  absl::StatusOr<VerifiedSigner> OursVerify(const std::string& allowed_file,
                                            const std::string& sig_file,
                                            const std::string& message_file) {
    absl::StatusOr<AllowedSigners> allowed = ParseAllowedSigners(ReadFile(allowed_file));
    if (!allowed.ok()) return allowed.status();
    absl::StatusOr<SshSignature> sig = ParseArmoredSshSignature(ReadFile(sig_file));
    if (!sig.ok()) return sig.status();
    const std::string digest = SshMessageHasher::Hash(sig->hash_algorithm, ReadFile(message_file));
    return VerifySshSignature(*allowed, *sig, kNamespace, digest, kNow);
  }

  // Runs both verifiers; they must agree. Returns ours.
  absl::StatusOr<VerifiedSigner> Both(const std::string& allowed_file, const std::string& principal,
                                      const std::string& sig_file,
                                      const std::string& message_file) {
    absl::StatusOr<VerifiedSigner> ours = OursVerify(allowed_file, sig_file, message_file);
    EXPECT_EQ(ours.ok(), KeygenAccepts(allowed_file, principal, sig_file, message_file))
        << "bulwark and ssh-keygen disagree: " << ours.status();
    if (!ours.ok()) {
      // Never key material in a refusal.
      const std::vector<std::string> pub = absl::StrSplit(PublicKey(kind().name), ' ');
      EXPECT_THAT(std::string(ours.status().message()), Not(HasSubstr(pub[1].substr(0, 24))));
    }
    return ours;
  }

  std::string Stem(absl::string_view what) { return absl::StrCat(kind().name, "_", what); }
};

std::optional<SignatureRefusal> RefusalOf(const absl::StatusOr<VerifiedSigner>& r) {
  return SignatureRefusalOf(r.status());
}

TEST_P(SshsigTest, AcceptsWhatSshKeygenSignsAndNamesTheSignerAsSshKeygenDoes) {
  Sign("artifact", Stem("sig"), kNamespace);
  WriteFile(Stem("allowed"),
            absl::StrCat("# team\n\nalice@example.com ", PublicKey(kind().name), " laptop\n"));
  absl::StatusOr<VerifiedSigner> v =
      Both(Stem("allowed"), "alice@example.com", Stem("sig"), "artifact");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->principals, "alice@example.com");
  EXPECT_EQ(v->key_type, kind().type);
  EXPECT_EQ(v->line_number, 3);
  // The fingerprint is the one `ssh-keygen -l` prints.
  ASSERT_EQ(
      Shell(absl::StrCat("ssh-keygen -l -f ", kind().name, ".pub | cut -d' ' -f2 > ", Stem("fp"))),
      0);
  EXPECT_EQ(absl::StrCat(v->fingerprint, "\n"), ReadFile(Stem("fp")));
  // find-principals agrees on who signed.
  ASSERT_EQ(Shell(absl::StrCat("ssh-keygen -Y find-principals -f ", Stem("allowed"), " -s ",
                               Stem("sig"), " > ", Stem("who"))),
            0);
  EXPECT_EQ(ReadFile(Stem("who")), absl::StrCat(v->principals, "\n"));
}

TEST_P(SshsigTest, AcceptsSha256Signatures) {
  Sign("artifact", Stem("sig256"), kNamespace, "-O hashalg=sha256");
  WriteFile(Stem("allowed"), absl::StrCat("alice@example.com ", PublicKey(kind().name), "\n"));
  absl::StatusOr<SshSignature> sig = ParseArmoredSshSignature(ReadFile(Stem("sig256")));
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(sig->hash_algorithm, SshHashAlgorithm::kSha256);
  EXPECT_TRUE(Both(Stem("allowed"), "alice@example.com", Stem("sig256"), "artifact").ok());
}

TEST_P(SshsigTest, RefusesATamperedArtifact) {
  Sign("artifact", Stem("sig"), kNamespace);
  WriteFile(Stem("allowed"), absl::StrCat("alice@example.com ", PublicKey(kind().name), "\n"));
  std::string bytes = ReadFile("artifact");
  bytes[bytes.size() / 2] ^= 1;
  WriteFile(Stem("tampered"), bytes);
  absl::StatusOr<VerifiedSigner> v =
      Both(Stem("allowed"), "alice@example.com", Stem("sig"), Stem("tampered"));
  EXPECT_EQ(RefusalOf(v), SignatureRefusal::kBadSignature) << v.status();
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("does not verify"));
}

TEST_P(SshsigTest, RefusesATamperedSignatureByte) {
  Sign("artifact", Stem("sig"), kNamespace);
  WriteFile(Stem("allowed"), absl::StrCat("alice@example.com ", PublicKey(kind().name), "\n"));
  absl::StatusOr<SshSignature> sig = ParseArmoredSshSignature(ReadFile(Stem("sig")));
  ASSERT_TRUE(sig.ok());
  sig->signature[sig->signature.size() - 5] ^= 0x10;
  absl::StatusOr<AllowedSigners> allowed = ParseAllowedSigners(ReadFile(Stem("allowed")));
  ASSERT_TRUE(allowed.ok());
  absl::StatusOr<VerifiedSigner> v =
      VerifySshSignature(*allowed, *sig, kNamespace,
                         SshMessageHasher::Hash(sig->hash_algorithm, ReadFile("artifact")), kNow);
  ASSERT_FALSE(v.ok());
  // An ECDSA signature with a flipped byte may no longer be a valid mpint pair; either way it is
  // refused, and never as a trusted signer.
  EXPECT_THAT(RefusalOf(v),
              ::testing::AnyOf(SignatureRefusal::kBadSignature, SignatureRefusal::kMalformed));
}

TEST_P(SshsigTest, RefusesATruncatedSignature) {
  Sign("artifact", Stem("sig"), kNamespace);
  WriteFile(Stem("allowed"), absl::StrCat("alice@example.com ", PublicKey(kind().name), "\n"));
  const std::string text = ReadFile(Stem("sig"));
  // Cut in the middle: the armor's end is gone.
  WriteFile(Stem("cut"), text.substr(0, text.size() / 2));
  absl::StatusOr<VerifiedSigner> v =
      Both(Stem("allowed"), "alice@example.com", Stem("cut"), "artifact");
  EXPECT_EQ(RefusalOf(v), SignatureRefusal::kMalformed) << v.status();
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("END SSH SIGNATURE"));
  // Body lines dropped, armor intact: a field is truncated.
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  ASSERT_GE(lines.size(), 5u);
  lines.erase(lines.end() - 3);  // The last body line before "-----END", "".
  WriteFile(Stem("short"), absl::StrJoin(lines, "\n"));
  v = Both(Stem("allowed"), "alice@example.com", Stem("short"), "artifact");
  EXPECT_EQ(RefusalOf(v), SignatureRefusal::kMalformed) << v.status();
}

TEST_P(SshsigTest, RefusesAnotherNamespace) {
  Sign("artifact", Stem("gitsig"), "git");
  WriteFile(Stem("allowed"), absl::StrCat("alice@example.com ", PublicKey(kind().name), "\n"));
  absl::StatusOr<VerifiedSigner> v =
      Both(Stem("allowed"), "alice@example.com", Stem("gitsig"), "artifact");
  EXPECT_EQ(RefusalOf(v), SignatureRefusal::kWrongNamespace) << v.status();
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("\"git\""));
}

TEST_P(SshsigTest, HonoursTheNamespacesOption) {
  Sign("artifact", Stem("sig"), kNamespace);
  WriteFile(Stem("allowed_git"), absl::StrCat("alice@example.com namespaces=\"git,file\" ",
                                              PublicKey(kind().name), "\n"));
  absl::StatusOr<VerifiedSigner> v =
      Both(Stem("allowed_git"), "alice@example.com", Stem("sig"), "artifact");
  EXPECT_EQ(RefusalOf(v), SignatureRefusal::kNamespaceNotAllowed) << v.status();
  WriteFile(Stem("allowed_ok"), absl::StrCat("alice@example.com namespaces=\"git,bulwark-*\" ",
                                             PublicKey(kind().name), "\n"));
  EXPECT_TRUE(Both(Stem("allowed_ok"), "alice@example.com", Stem("sig"), "artifact").ok());
}

TEST_P(SshsigTest, HonoursValidity) {
  Sign("artifact", Stem("sig"), kNamespace);
  const std::string key = PublicKey(kind().name);
  WriteFile(Stem("expired"),
            absl::StrCat("alice@example.com valid-before=\"20260101Z\" ", key, "\n"));
  absl::StatusOr<VerifiedSigner> v =
      Both(Stem("expired"), "alice@example.com", Stem("sig"), "artifact");
  EXPECT_EQ(RefusalOf(v), SignatureRefusal::kExpired) << v.status();
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("expired at 2026-01-01T00:00:00Z"));
  WriteFile(Stem("future"),
            absl::StrCat("alice@example.com valid-after=\"202607011200Z\" ", key, "\n"));
  v = Both(Stem("future"), "alice@example.com", Stem("sig"), "artifact");
  EXPECT_EQ(RefusalOf(v), SignatureRefusal::kNotYetValid) << v.status();
  WriteFile(
      Stem("window"),
      absl::StrCat("alice@example.com valid-after=\"20260101Z\",valid-before=\"20270101000000Z\" ",
                   key, "\n"));
  EXPECT_TRUE(Both(Stem("window"), "alice@example.com", Stem("sig"), "artifact").ok());
}

TEST_P(SshsigTest, RefusesAnUnknownSigner) {
  Sign("artifact", Stem("sig"), kNamespace);
  WriteFile(Stem("others"), absl::StrCat("mallory@example.com ", PublicKey("stranger"), "\n"));
  absl::StatusOr<VerifiedSigner> v =
      Both(Stem("others"), "mallory@example.com", Stem("sig"), "artifact");
  EXPECT_EQ(RefusalOf(v), SignatureRefusal::kUnknownSigner) << v.status();
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("SHA256:"));
}

TEST_P(SshsigTest, MatchesQuotedAndWildcardPrincipals) {
  Sign("artifact", Stem("sig"), kNamespace);
  WriteFile(Stem("wild"),
            absl::StrCat("\"*@example.com,ops team\" ", PublicKey(kind().name), " comment here\n"));
  absl::StatusOr<VerifiedSigner> v =
      Both(Stem("wild"), "alice@example.com", Stem("sig"), "artifact");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->principals, "*@example.com,ops team");
}

// The test-only signer (the simulator's) makes what ssh-keygen accepts.
TEST(SshsigTestingTest, SignaturesVerifyWithSshKeygenAndHere) {
  ASSERT_EQ(std::system(absl::StrCat("mkdir -p ", Dir()).c_str()), 0);
  const std::string seed(32, '\x07');
  const std::string sig = testing::SignSshsigEd25519(seed, kNamespace, "sim artifact");
  WriteFile("sim_message", "sim artifact");
  WriteFile("sim_message.sig", sig);
  WriteFile("sim_allowed", absl::StrCat("sim@bulwark ", testing::Ed25519PublicKeyLine(seed), "\n"));
  EXPECT_EQ(Shell(absl::StrCat("ssh-keygen -Y verify -f sim_allowed -I sim@bulwark -n ", kNamespace,
                               " -s sim_message.sig < sim_message >/dev/null 2>&1")),
            0);
  absl::StatusOr<SshSignature> parsed = ParseArmoredSshSignature(sig);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<VerifiedSigner> v =
      VerifySshSignature(ParseAllowedSigners(ReadFile("sim_allowed")).value(), *parsed, kNamespace,
                         SshMessageHasher::Hash(parsed->hash_algorithm, "sim artifact"), kNow);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->principals, "sim@bulwark");
}

INSTANTIATE_TEST_SUITE_P(Keys, SshsigTest, ::testing::ValuesIn(SshsigTest::Kinds()),
                         [](const auto& info) { return info.param.name; });

// ---- parsing without ssh-keygen ----

constexpr absl::string_view kEdKey =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMEWsbyzri4BxNgxaEZWSmvFXaMo+ohtG1Xudqi"
    "OGB/y";

absl::Status ParseLine(absl::string_view line) { return ParseAllowedSigners(line).status(); }

TEST(AllowedSignersTest, ParsesOptionsAndComments) {
  absl::StatusOr<AllowedSigners> a = ParseAllowedSigners(absl::StrCat(
      "  # comment\r\n", "a@b,c@d NAMESPACES=\"bulwark-plugin\",valid-after=\"20250101\" ", kEdKey,
      " trailing comment\r\n"));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->signers.size(), 1u);
  EXPECT_EQ(a->signers[0].line_number, 2);
  EXPECT_EQ(a->signers[0].principals, "a@b,c@d");
  EXPECT_EQ(a->signers[0].key_type, "ssh-ed25519");
  EXPECT_EQ(a->signers[0].namespaces, "bulwark-plugin");
  EXPECT_EQ(a->signers[0].valid_after,
            absl::FromCivil(absl::CivilDay(2025, 1, 1), absl::UTCTimeZone()));
  EXPECT_FALSE(a->signers[0].valid_before.has_value());
}

TEST(AllowedSignersTest, RefusalsNameTheLineAndTheProblemNotTheKey) {
  struct Case {
    std::string line;
    std::string message;
  };
  const std::string key(kEdKey);
  const std::vector<Case> cases = {
      {absl::StrCat("a@b cert-authority ", key), "cert-authority is not supported"},
      {absl::StrCat("a@b namespaces=git ", key), "namespaces needs a value in double quotes"},
      {absl::StrCat("a@b frob=\"x\" ", key), "unknown option \"frob\""},
      {absl::StrCat("a@b valid-after=\"2025\" ", key), "YYYYMMDD"},
      {absl::StrCat("a@b valid-after=\"20250230\" ", key), "does not exist"},
      {absl::StrCat("a@b valid-after=\"20260101\",valid-before=\"20250101\" ", key),
       "valid-before is not after valid-after"},
      {"a@b", "key is missing"},
      {"a@b ssh-ed25519", "ssh-ed25519 key is missing"},
      {"a@b ssh-ed25519 !!!notbase64", "not valid base64"},
      {absl::StrCat("a@b ecdsa-sha2-nistp256 ", key.substr(12)), "labelled ecdsa-sha2-nistp256"},
      {absl::StrCat("\"a@b ", key), "quote"},
      {absl::StrCat("a@b namespaces=\"git ", key), "quotes are not balanced"},
  };
  for (const Case& c : cases) {
    absl::Status s = ParseLine(absl::StrCat("\n", c.line, "\n"));
    EXPECT_EQ(SignatureRefusalOf(s), SignatureRefusal::kMalformedSigners) << c.line << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("line 2: ")) << c.line;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message)) << c.line;
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr("AAAAC3NzaC1l"))) << c.line;
  }
}

TEST(AllowedSignersTest, EnforcesItsLimits) {
  EXPECT_EQ(SignatureRefusalOf(ParseLine(std::string(kAllowedSignersBytesMax + 1, '#'))),
            SignatureRefusal::kMalformedSigners);
  EXPECT_THAT(std::string(ParseLine(std::string(kAllowedSignersLineBytesMax + 1, '#')).message()),
              HasSubstr("line 1 is longer than"));
}

TEST(SshPatternTest, FollowsOpenSshMatchPatternList) {
  EXPECT_TRUE(SshPatternListMatches("alice@example.com", "*@example.com"));
  EXPECT_TRUE(SshPatternListMatches("bulwark-plugin", "git,bulwark-*"));
  EXPECT_TRUE(SshPatternListMatches("abc", "a?c"));
  EXPECT_FALSE(SshPatternListMatches("abc", "a?"));
  EXPECT_FALSE(SshPatternListMatches("bob@example.com", "*@example.com,!bob@*"));
  EXPECT_FALSE(SshPatternListMatches("x", "!y"));  // Only negations: no positive match.
  EXPECT_TRUE(SshPatternListMatches("", "*"));
}

TEST(SshSignatureParseTest, NamesWhatIsMalformed) {
  EXPECT_THAT(std::string(ParseArmoredSshSignature("hello").status().message()),
              HasSubstr("does not start with"));
  EXPECT_THAT(std::string(ParseArmoredSshSignature(
                              "-----BEGIN SSH SIGNATURE-----\n%%%\n-----END SSH SIGNATURE-----")
                              .status()
                              .message()),
              HasSubstr("not valid base64"));
  EXPECT_THAT(std::string(ParseSshSignatureBlob("SSHSIX").status().message()), HasSubstr("SSHSIG"));
  EXPECT_THAT(
      std::string(ParseSshSignatureBlob(std::string("SSHSIG\0\0\0\2", 10)).status().message()),
      HasSubstr("version 2 is not 1"));
  EXPECT_THAT(
      std::string(
          ParseSshSignatureBlob(std::string("SSHSIG\0\0\0\1\0\0\0\5ab", 16)).status().message()),
      HasSubstr("public key field is truncated"));
  EXPECT_EQ(SignatureRefusalOf(
                ParseArmoredSshSignature(std::string(kSshSignatureTextBytesMax + 1, 'x')).status()),
            SignatureRefusal::kMalformed);
}

}  // namespace
}  // namespace bulwark::crypto
