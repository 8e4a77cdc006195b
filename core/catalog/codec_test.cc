// Tests for the stored JSON form of catalog records: round trips, records as Vault writes them,
// and corrupt records refused as catalog.storage_corrupt without echoing their contents.
#include "core/catalog/codec.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "base/crypto/sshsig_testing.h"
#include "core/catalog/catalog_error.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"

namespace bulwark::catalog {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// SHA-256 of "abc", hex and standard base64.
constexpr char kShaHex[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kShaB64[] = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";

CatalogEntry SampleEntry() {
  CatalogEntry entry;
  entry.type = PluginType::kDatabase;
  entry.name = "my-db";
  entry.version = "v1.2.3-rc.1";
  entry.command = "bin/my-db";
  entry.args = {"-tls", "quote\"back\\slash", "tab\tnew\nline", "caf\xc3\xa9"};
  entry.env = {"A=1", "CTRL=\x01\x1f"};
  entry.sha256_hex = kShaHex;
  return entry;
}

void ExpectSameEntry(const CatalogEntry& a, const CatalogEntry& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.command, b.command);
  EXPECT_EQ(a.args, b.args);
  EXPECT_EQ(a.env, b.env);
  EXPECT_EQ(a.sha256_hex, b.sha256_hex);
  EXPECT_EQ(a.builtin, b.builtin);
  EXPECT_EQ(a.signature, b.signature);
  EXPECT_EQ(a.signer_principal, b.signer_principal);
  EXPECT_EQ(a.signer_fingerprint, b.signer_fingerprint);
}

// An SSHSIG by an ed25519 key (ssh-keygen -Y sign -n bulwark-plugin) and its key's fingerprint.
const std::string kSignature(crypto::testing::kExampleSignature);
const std::string kFingerprint(crypto::testing::kExampleFingerprint);

TEST(CodecTest, UnsignedEntriesEncodeAsBeforeSignaturesAndOldRecordsDecodeUnsigned) {
  CatalogEntry entry;
  entry.name = "kv";
  entry.command = "kv";
  entry.sha256_hex = kShaHex;
  // The exact bytes this codec wrote before signatures existed.
  const std::string old_record = absl::StrCat(
      R"({"name":"kv","type":"secret","version":"","command":"kv","args":[],"env":[],"sha256":")",
      kShaB64, R"(","builtin":false})");
  EXPECT_EQ(EncodeEntry(entry), old_record);
  absl::StatusOr<CatalogEntry> decoded = DecodeEntry(old_record);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->signature, "");
  EXPECT_EQ(decoded->signer_fingerprint, "");
}

TEST(CodecTest, SignedEntriesRoundTrip) {
  CatalogEntry entry = SampleEntry();
  entry.signature = kSignature;
  entry.signer_principal = "*@example.com,ops";
  entry.signer_fingerprint = kFingerprint;
  absl::StatusOr<CatalogEntry> decoded = DecodeEntry(EncodeEntry(entry));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameEntry(*decoded, entry);
  // A signature kept without a verified signer (the "off" policy).
  entry.signer_principal.clear();
  entry.signer_fingerprint.clear();
  const std::string json = EncodeEntry(entry);
  EXPECT_THAT(json, Not(HasSubstr("signer_")));
  decoded = DecodeEntry(json);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameEntry(*decoded, entry);
}

TEST(CodecTest, RefusesInconsistentSignatureFields) {
  const std::string base =
      absl::StrCat(R"({"name":"kv","type":"secret","command":"kv","sha256":")", kShaB64, R"(")");
  const std::string sig =
      absl::StrCat(R"(,"signature":")", absl::StrReplaceAll(kSignature, {{"\n", "\\n"}}), "\"");
  for (const std::string& extra : {
           absl::StrCat(R"(,"signer_principal":"a","signer_fingerprint":")", kFingerprint, "\""),
           absl::StrCat(sig, R"(,"signer_principal":"a")"),
           absl::StrCat(sig, R"(,"signer_principal":"a","signer_fingerprint":"SHA256:x")"),
           std::string(R"(,"signature":"not a signature")"),
       }) {
    absl::StatusOr<CatalogEntry> d = DecodeEntry(absl::StrCat(base, extra, "}"));
    EXPECT_EQ(CatalogErrorOf(d.status()), CatalogError::kStorageCorrupt) << extra;
  }
  absl::StatusOr<CatalogEntry> ok = DecodeEntry(absl::StrCat(
      base, sig, R"(,"signer_principal":"a","signer_fingerprint":")", kFingerprint, "\"}"));
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST(CodecTest, EntryRoundTrips) {
  const CatalogEntry entry = SampleEntry();
  const std::string json = EncodeEntry(entry);
  EXPECT_THAT(json, HasSubstr("\"type\":\"database\""));
  EXPECT_THAT(json, HasSubstr(absl::StrCat("\"sha256\":\"", kShaB64, "\"")));
  absl::StatusOr<CatalogEntry> decoded = DecodeEntry(json);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameEntry(*decoded, entry);
}

TEST(CodecTest, DecodesVaultRecords) {
  // As Vault's json.Marshal(PluginRunner) writes it: a numeric type, nil slices, OCI fields,
  // HTML-safe escapes.
  const std::string json = absl::StrCat(
      R"({"name":"vault-plugin-secrets-kv","type":3,"version":"v0.16.1","oci_image":"",)",
      R"("runtime":"","command":"kv\u003cx\u003e","args":null,"env":null,"sha256":")", kShaB64,
      R"(","builtin":false,"unknown_future_field":{"a":[1,2.5e3,-3,true,null,"x"]}})");
  absl::StatusOr<CatalogEntry> decoded = DecodeEntry(json);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->type, PluginType::kSecret);
  EXPECT_EQ(decoded->command, "kv<x>");
  EXPECT_TRUE(decoded->args.empty());
  EXPECT_EQ(decoded->sha256_hex, kShaHex);
}

TEST(CodecTest, PinRoundTripsAndDecodesNumericType) {
  const PinRecord pin{PluginType::kAuth, "jwt", "v1.0.0"};
  EXPECT_EQ(EncodePin(pin), R"({"name":"jwt","type":"auth","version":"v1.0.0"})");
  EXPECT_EQ(DecodePin(EncodePin(pin)).value(), pin);
  EXPECT_EQ(DecodePin(R"({"name":"jwt","type":1,"version":"v1.0.0"})").value(), pin);
}

TEST(CodecTest, CorruptRecordsAreDataLossWithoutContents) {
  const std::string secret = "hunter2-SECRET";
  const std::string good_tail = absl::StrCat(R"(,"sha256":")", kShaB64, R"("})");
  const std::vector<std::string> corrupt = {
      "",
      "{",
      "[]",
      "null",
      R"({"name":"x","type":"secret","command":"x"})",  // No sha256.
      absl::StrCat(R"({"name":"x","type":"secrets","command":"x")", good_tail),
      absl::StrCat(R"({"name":"x","type":0,"command":"x")", good_tail),
      absl::StrCat(R"({"name":"x","type":"secret","command":"/abs")", good_tail),
      absl::StrCat(R"({"name":"x","type":"secret","command":"x","version":"1.0.0")",
                   good_tail),  // Not canonical.
      absl::StrCat(R"({"name":"x","type":"secret","command":"x","version":"v1.0.0+builtin")",
                   good_tail),
      absl::StrCat(R"({"name":"x","type":"secret","command":"x","builtin":true)", good_tail),
      absl::StrCat(R"({"name":"x","type":"secret","command":"x","oci_image":"img")", good_tail),
      absl::StrCat(R"({"name":"x","type":"secret","command":"x","env":[")", secret, R"("])",
                   good_tail),  // Env entry without '='.
      absl::StrCat(R"({"name":"x","type":"secret","command":"x","env":["A=)", secret, R"(","A=)",
                   secret, R"("])", good_tail),  // Repeated key.
      absl::StrCat(R"({"name":"x","type":"secret","command":"x","env":["A=\ud800)", secret, R"("])",
                   good_tail),  // Lone surrogate.
      absl::StrCat(R"({"name":"x","type":"secret","command":"x","sha256":"AAAA"})"),
      absl::StrCat(R"({"name":"x","type":"secret","command":"x")", good_tail, "x"),
      absl::StrCat(R"({"name":"x","type":"secret","command":"x","deep":)", std::string(100, '['),
                   std::string(100, ']'), good_tail),
  };
  for (const std::string& json : corrupt) {
    absl::StatusOr<CatalogEntry> decoded = DecodeEntry(json);
    ASSERT_FALSE(decoded.ok()) << json;
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << decoded.status();
    EXPECT_EQ(CatalogErrorOf(decoded.status()), CatalogError::kStorageCorrupt);
    EXPECT_THAT(decoded.status().ToString(), Not(HasSubstr("hunter2"))) << json;
  }
}

// Any valid entry survives encode + decode unchanged.
RC_GTEST_PROP(CodecProperty, EncodeDecodeIsIdentity,
              (const std::vector<std::string>& raw_args, const std::string& raw_value)) {
  CatalogEntry entry = SampleEntry();
  entry.args.clear();
  for (const std::string& arg : raw_args) {
    // Keep the ASCII without NUL: any of it is a valid argument.
    std::string clean;
    for (char c : arg) {
      if (c != '\0' && static_cast<unsigned char>(c) < 0x80) clean.push_back(c);
    }
    if (entry.args.size() < kArgsMax && clean.size() <= kArgBytesMax) entry.args.push_back(clean);
  }
  std::string value;
  for (char c : raw_value) {
    if (c != '\0' && static_cast<unsigned char>(c) < 0x80) value.push_back(c);
  }
  entry.env = {"KEY=" + value.substr(0, 1000)};
  absl::StatusOr<CatalogEntry> decoded = DecodeEntry(EncodeEntry(entry));
  RC_ASSERT(decoded.ok());
  RC_ASSERT(decoded->args == entry.args);
  RC_ASSERT(decoded->env == entry.env);
}

// Arbitrary bytes never crash the decoder and never decode into something invalid.
RC_GTEST_PROP(CodecProperty, ArbitraryBytesAreRefusedOrValid, (const std::string& bytes)) {
  absl::StatusOr<CatalogEntry> decoded = DecodeEntry(bytes);
  if (!decoded.ok()) RC_ASSERT(decoded.status().code() == absl::StatusCode::kDataLoss);
  absl::StatusOr<PinRecord> pin = DecodePin(bytes);
  if (!pin.ok()) RC_ASSERT(pin.status().code() == absl::StatusCode::kDataLoss);
}

// Limits (issue 17): optional, written only when set, so records without them are unchanged
// and old records decode with none.
TEST(CodecTest, LimitsRoundTripAndOldRecordsHaveNone) {
  CatalogEntry entry = SampleEntry();
  const std::string without = EncodeEntry(entry);
  EXPECT_THAT(without, Not(HasSubstr("limits")));
  absl::StatusOr<CatalogEntry> old = DecodeEntry(without);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_TRUE(old->limits.empty());

  entry.limits.memory_bytes = uint64_t{64} << 20;
  entry.limits.open_files = 256;
  const std::string with = EncodeEntry(entry);
  EXPECT_THAT(with, HasSubstr(R"("limits":{"memory_bytes":67108864,"open_files":256})"));
  absl::StatusOr<CatalogEntry> decoded = DecodeEntry(with);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameEntry(*decoded, entry);
  EXPECT_TRUE(decoded->limits == entry.limits);
  EXPECT_FALSE(decoded->limits.pids.has_value());

  // Unknown limit names (a later version's) are skipped; bad values are corrupt records.
  std::string later = with;
  later.replace(later.find("\"open_files\""), 0, "\"gpu\":{\"x\":1},");
  EXPECT_TRUE(DecodeEntry(later).ok()) << later;
  std::string small = with;
  small.replace(small.find("67108864"), 8, "12");
  absl::Status s = DecodeEntry(small).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("limits"));
  std::string text = with;
  text.replace(text.find("256"), 3, "\"x\"");
  EXPECT_EQ(DecodeEntry(text).status().code(), absl::StatusCode::kDataLoss);
}

TEST(CodecTest, ValidateLimitsNamesTheFieldAndRange) {
  PluginLimits l;
  EXPECT_TRUE(ValidateLimits(l).ok());
  l.cpu_weight = 0;
  EXPECT_THAT(ValidateLimits(l).message(),
              HasSubstr("limits.cpu_weight must be between 1 and 10000"));
  l.cpu_weight = 100;
  l.pids = 0;
  EXPECT_THAT(ValidateLimits(l).message(), HasSubstr("limits.pids"));
  l.pids = 64;
  l.open_files = 3;
  EXPECT_THAT(ValidateLimits(l).message(), HasSubstr("limits.open_files"));
  l.open_files = 64;
  EXPECT_TRUE(ValidateLimits(l).ok());
}

}  // namespace
}  // namespace bulwark::catalog
