// ES512: RFC 7515's published P-521 example (key derivation and signature), round trips with
// seeded nonces, and refusal of tampered signatures, messages and keys.
#include "base/crypto/es512.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/crypto/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::crypto {
namespace {

using ::testing::HasSubstr;

std::string Url(absl::string_view b64url) {
  std::string out;
  EXPECT_TRUE(absl::WebSafeBase64Unescape(b64url, &out));
  return out;
}

// RFC 7515 Appendix A.4 (the JWK of A.3.1 for P-521 and the ES512 signature of "Payload").
constexpr char kRfcD[] =
    "AY5pb7A0UFiB3RELSD64fTLOSV_jazdF7fLYyuTw8lOfRhWg6Y6rUrPAxerEzgdRhajnu0ferB0d53vM9mE15j2C";
constexpr char kRfcX[] =
    "AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk";
constexpr char kRfcY[] =
    "ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2";
constexpr char kRfcSigningInput[] = "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA";
constexpr char kRfcSignature[] =
    "AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_"
    "7XdtAG8GaSw"
    "FKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn";

std::string RfcPublicKey() { return absl::StrCat("\x04", Url(kRfcX), Url(kRfcY)); }

// Deterministic seed bytes for tests: SHA-256 of a label, repeated.
std::string Seed(absl::string_view label) {
  std::string out;
  for (int i = 0; out.size() < kP521SeedBytes; ++i) {
    out += Sha256::Hash(absl::StrCat(label, "/", i));
  }
  out.resize(kP521SeedBytes);
  return out;
}

TEST(Es512Test, RfcKeyGivesTheRfcPublicKey) {
  absl::StatusOr<P521SigningKey> key = P521SigningKey::FromScalar(Url(kRfcD));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->public_key(), RfcPublicKey());
  EXPECT_EQ(key->scalar().view(), Url(kRfcD));
}

TEST(Es512Test, VerifiesTheRfcSignature) {
  EXPECT_TRUE(VerifyEs512(RfcPublicKey(), kRfcSigningInput, Url(kRfcSignature)).ok());
  EXPECT_EQ(
      VerifyEs512(RfcPublicKey(), "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZB", Url(kRfcSignature)).code(),
      absl::StatusCode::kUnauthenticated);
}

TEST(Es512Test, SignThenVerify) {
  absl::StatusOr<P521SigningKey> key = P521SigningKey::FromScalar(Url(kRfcD));
  ASSERT_TRUE(key.ok()) << key.status();
  absl::StatusOr<std::string> sig = key->Sign(kRfcSigningInput, Seed("nonce-1"));
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(sig->size(), kEs512SignatureBytes);
  EXPECT_TRUE(VerifyEs512(key->public_key(), kRfcSigningInput, *sig).ok());
  // The nonce comes from the seed: the same seed signs identically, another differently.
  EXPECT_EQ(*key->Sign(kRfcSigningInput, Seed("nonce-1")), *sig);
  absl::StatusOr<std::string> other = key->Sign(kRfcSigningInput, Seed("nonce-2"));
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, *sig);
  EXPECT_TRUE(VerifyEs512(key->public_key(), kRfcSigningInput, *other).ok());
}

TEST(Es512Test, KeysFromSeedsRoundTripThroughTheScalar) {
  for (int i = 0; i < 8; ++i) {
    absl::StatusOr<P521SigningKey> key = P521SigningKey::FromSeed(Seed(absl::StrCat("key", i)));
    ASSERT_TRUE(key.ok()) << key.status();
    absl::StatusOr<P521SigningKey> again = P521SigningKey::FromScalar(key->scalar().view());
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->public_key(), key->public_key());
    absl::StatusOr<std::string> sig = key->Sign("message", Seed(absl::StrCat("k", i)));
    ASSERT_TRUE(sig.ok());
    EXPECT_TRUE(VerifyEs512(again->public_key(), "message", *sig).ok());
  }
  EXPECT_NE(P521SigningKey::FromSeed(Seed("a"))->public_key(),
            P521SigningKey::FromSeed(Seed("b"))->public_key());
}

TEST(Es512Test, EveryTamperedByteFailsToVerify) {
  absl::StatusOr<P521SigningKey> key = P521SigningKey::FromSeed(Seed("tamper"));
  ASSERT_TRUE(key.ok());
  const std::string sig = *key->Sign("hello", Seed("nonce"));
  for (size_t i = 0; i < sig.size(); i += 7) {
    std::string bad = sig;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(VerifyEs512(key->public_key(), "hello", bad).ok()) << "byte " << i;
  }
  EXPECT_FALSE(VerifyEs512(key->public_key(), "hellO", sig).ok());
  const std::string other = P521SigningKey::FromSeed(Seed("other"))->public_key();
  EXPECT_EQ(VerifyEs512(other, "hello", sig).code(), absl::StatusCode::kUnauthenticated);
}

TEST(Es512Test, MalformedInputsAreInvalidArguments) {
  absl::StatusOr<P521SigningKey> key = P521SigningKey::FromSeed(Seed("malformed"));
  ASSERT_TRUE(key.ok());
  const std::string sig = *key->Sign("m", Seed("n"));
  EXPECT_EQ(VerifyEs512(key->public_key(), "m", sig.substr(1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyEs512(key->public_key().substr(1), "m", sig).code(),
            absl::StatusCode::kInvalidArgument);
  std::string off_curve = key->public_key();
  off_curve.back() = static_cast<char>(off_curve.back() ^ 0x01);
  absl::Status status = VerifyEs512(off_curve, "m", sig);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("not a point on P-521"));

  EXPECT_EQ(P521SigningKey::FromSeed("short").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(key->Sign("m", "short").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(P521SigningKey::FromScalar(std::string(kP521ScalarBytes, '\0')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(P521SigningKey::FromScalar(std::string(kP521ScalarBytes, '\xff')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(P521SigningKey::FromScalar("x").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bulwark::crypto
