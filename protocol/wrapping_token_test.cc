// Vault's wrapping JWT: the exact header and claims, the host's verification (signature, alg,
// type, expiry, tampering) and the plugin's unverified reading, plus the wrapped TLS data.
#include "protocol/wrapping_token.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/crypto/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::protocol {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

std::string Seed(absl::string_view label) {
  std::string out;
  for (int i = 0; out.size() < crypto::kP521SeedBytes; ++i) {
    out += crypto::Sha256::Hash(absl::StrCat(label, "/", i));
  }
  out.resize(crypto::kP521SeedBytes);
  return out;
}

crypto::P521SigningKey Key(absl::string_view label) {
  return *crypto::P521SigningKey::FromSeed(Seed(label));
}

WrappingClaims Claims() {
  WrappingClaims c;
  c.id = "hvs.wrapped-token-id";
  c.issued_at = kNow;
  c.expires_at = kNow + kPluginWrapTtl;
  c.not_before = kNow - kWrappingNotBeforeSkew;
  c.addr = "http://127.0.0.1:8200";
  return c;
}

std::string Url(absl::string_view text) {
  std::string out;
  absl::WebSafeBase64Escape(text, &out);
  return out;
}

std::string FromUrl(absl::string_view text) {
  std::string out;
  EXPECT_TRUE(absl::WebSafeBase64Unescape(text, &out));
  return out;
}

std::vector<std::string> Parts(const std::string& token) { return absl::StrSplit(token, '.'); }

// A token with `header` and `claims` as given, signed correctly by `key`.
std::string SignRaw(const crypto::P521SigningKey& key, const std::string& header,
                    const std::string& claims) {
  const std::string input = absl::StrCat(Url(header), ".", Url(claims));
  return absl::StrCat(input, ".", Url(*key.Sign(input, Seed("raw"))));
}

TEST(WrappingJwtTest, HeaderAndClaimsAreVaults) {
  const crypto::P521SigningKey key = Key("host");
  absl::StatusOr<std::string> token = EncodeWrappingJwt(Claims(), key, Seed("n"));
  ASSERT_TRUE(token.ok()) << token.status();
  const std::vector<std::string> parts = Parts(*token);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(FromUrl(parts[0]), R"({"alg":"ES512","typ":"JWT"})");
  EXPECT_EQ(FromUrl(parts[1]), R"({"accessor":"","addr":"http://127.0.0.1:8200","exp":1700000060,)"
                               R"("iat":1700000000,"jti":"hvs.wrapped-token-id","nbf":1699999995,)"
                               R"("type":"wrapping"})");
  EXPECT_EQ(FromUrl(parts[2]).size(), crypto::kEs512SignatureBytes);
  EXPECT_THAT(*token, Not(HasSubstr("=")));  // Unpadded base64url.
  EXPECT_TRUE(LooksLikeJwt(*token));
}

TEST(WrappingJwtTest, VerifiesAndReturnsTheClaims) {
  const crypto::P521SigningKey key = Key("host");
  const std::string token = *EncodeWrappingJwt(Claims(), key, Seed("n"));
  absl::StatusOr<WrappingClaims> claims = VerifyWrappingJwt(token, key.public_key(), kNow);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->id, "hvs.wrapped-token-id");
  EXPECT_EQ(claims->addr, "http://127.0.0.1:8200");
  EXPECT_EQ(claims->type, "wrapping");
  EXPECT_EQ(claims->expires_at, kNow + absl::Seconds(60));
  EXPECT_EQ(claims->not_before, kNow - absl::Seconds(5));
}

TEST(WrappingJwtTest, ExpiredAndNotYetValidAreRefused) {
  const crypto::P521SigningKey key = Key("host");
  const std::string token = *EncodeWrappingJwt(Claims(), key, Seed("n"));
  EXPECT_TRUE(VerifyWrappingJwt(token, key.public_key(), kNow + absl::Seconds(59)).ok());
  EXPECT_EQ(VerifyWrappingJwt(token, key.public_key(), kNow + absl::Seconds(60)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(VerifyWrappingJwt(token, key.public_key(), kNow + absl::Hours(1)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(VerifyWrappingJwt(token, key.public_key(), kNow - absl::Seconds(5)).ok());
  EXPECT_EQ(VerifyWrappingJwt(token, key.public_key(), kNow - absl::Seconds(6)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(WrappingJwtTest, TamperedSignatureOrClaimsAreRefused) {
  const crypto::P521SigningKey key = Key("host");
  const std::string token = *EncodeWrappingJwt(Claims(), key, Seed("n"));
  std::vector<std::string> parts = Parts(token);

  std::string signature = FromUrl(parts[2]);
  signature[10] = static_cast<char>(signature[10] ^ 0x20);
  absl::Status bad_sig =
      VerifyWrappingJwt(absl::StrCat(parts[0], ".", parts[1], ".", Url(signature)),
                        key.public_key(), kNow)
          .status();
  EXPECT_EQ(bad_sig.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(bad_sig.message(), HasSubstr("signature does not verify"));

  // Claims changed after signing (another jti): the signature no longer covers them.
  std::string claims = FromUrl(parts[1]);
  claims.replace(claims.find("wrapped-token-id"), 7, "WRAPPED");
  EXPECT_EQ(VerifyWrappingJwt(absl::StrCat(parts[0], ".", Url(claims), ".", parts[2]),
                              key.public_key(), kNow)
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);

  // Signed by another key.
  const std::string forged = *EncodeWrappingJwt(Claims(), Key("attacker"), Seed("n"));
  EXPECT_EQ(VerifyWrappingJwt(forged, key.public_key(), kNow).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(WrappingJwtTest, WrongAlgorithmIsRefusedBeforeAnySignatureCheck) {
  const crypto::P521SigningKey key = Key("host");
  const std::string claims = nlohmann::json{
      {"jti", "x"},
      {"type", "wrapping"},
      {"iat", 1700000000},
      {"exp", 1700000060},
      {"nbf", 1699999995}}.dump();
  for (const char* header : {R"({"alg":"none","typ":"JWT"})", R"({"alg":"HS512"})",
                             R"({"alg":"ES256"})", R"({"typ":"JWT"})", R"({"alg":5})"}) {
    const std::string token = SignRaw(key, header, claims);
    absl::Status status = VerifyWrappingJwt(token, key.public_key(), kNow).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << header;
    EXPECT_THAT(status.message(), HasSubstr("alg is not ES512")) << header;
    EXPECT_FALSE(ParseWrappingJwtUnverified(token).ok()) << header;
  }
  // "alg":"none" with an empty signature, the classic forgery.
  const std::string none = absl::StrCat(Url(R"({"alg":"none"})"), ".", Url(claims), ".");
  EXPECT_FALSE(VerifyWrappingJwt(none, key.public_key(), kNow).ok());
}

TEST(WrappingJwtTest, ClaimsMustBeAWrappingTokensClaims) {
  const crypto::P521SigningKey key = Key("host");
  const std::string header = R"({"alg":"ES512","typ":"JWT"})";
  nlohmann::json good = {{"jti", "x"},
                         {"type", "wrapping"},
                         {"iat", 1700000000},
                         {"exp", 1700000060},
                         {"nbf", 1699999995}};
  EXPECT_TRUE(VerifyWrappingJwt(SignRaw(key, header, good.dump()), key.public_key(), kNow).ok());
  struct Case {
    const char* name;
    nlohmann::json claims;
  };
  std::vector<Case> cases;
  nlohmann::json c = good;
  c["type"] = "batch";
  cases.push_back({"type", c});
  c = good;
  c.erase("jti");
  cases.push_back({"no jti", c});
  c = good;
  c["jti"] = "";
  cases.push_back({"empty jti", c});
  c = good;
  c["exp"] = "1700000060";
  cases.push_back({"exp as a string", c});
  c = good;
  c.erase("nbf");
  cases.push_back({"no nbf", c});
  for (const Case& k : cases) {
    EXPECT_EQ(VerifyWrappingJwt(SignRaw(key, header, k.claims.dump()), key.public_key(), kNow)
                  .status()
                  .code(),
              absl::StatusCode::kInvalidArgument)
        << k.name;
  }
  EXPECT_FALSE(VerifyWrappingJwt(SignRaw(key, header, "[1,2]"), key.public_key(), kNow).ok());
}

TEST(WrappingJwtTest, MalformedTokensAreRefusedWithoutEchoingThem) {
  const crypto::P521SigningKey key = Key("host");
  const std::string token = *EncodeWrappingJwt(Claims(), key, Seed("n"));
  const std::vector<std::string> parts = Parts(token);
  const std::string padded = absl::StrCat(parts[0], "=.", parts[1], ".", parts[2]);
  for (const std::string& bad :
       {std::string(""), std::string("hvs.abc"), std::string("a.b.c.d"), padded,
        absl::StrCat(parts[0], ".", parts[1], ".", parts[2], "+"),
        absl::StrCat(parts[0], " .", parts[1], ".", parts[2]),
        std::string(kWrappingTokenBytesMax + 1, 'a') + "..", token + "x"}) {
    absl::Status status = VerifyWrappingJwt(bad, key.public_key(), kNow).status();
    EXPECT_FALSE(status.ok()) << bad;
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr(parts[1])));
  }
  EXPECT_FALSE(LooksLikeJwt("s..x"));  // A namespaced token shape, not a JWT.
  EXPECT_FALSE(LooksLikeJwt("hvs.abcdef"));
}

TEST(WrappingJwtTest, PluginReadsTheAddressWithoutTheKey) {
  const std::string token = *EncodeWrappingJwt(Claims(), Key("host"), Seed("n"));
  absl::StatusOr<WrappingClaims> claims = ParseWrappingJwtUnverified(token);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->addr, "http://127.0.0.1:8200");
  EXPECT_EQ(claims->id, "hvs.wrapped-token-id");

  WrappingClaims no_addr = Claims();
  no_addr.addr = "";
  absl::Status status =
      ParseWrappingJwtUnverified(*EncodeWrappingJwt(no_addr, Key("host"), Seed("n"))).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("no vault api_addr found"));
}

TEST(PluginTlsDataTest, EncodesAsGoAndDecodesAnUnwrapReply) {
  PluginTlsMaterial material;
  material.cert_der = std::string("\x30\x82\x01\x02 cert", 9);
  material.key_der = crypto::SecureBuffer(std::string("\x30\x77 key bytes", 12));
  crypto::SecureBuffer data = EncodePluginTlsData(material);
  const nlohmann::json j = nlohmann::json::parse(std::string(data.view()));
  EXPECT_EQ(j["ServerCert"], absl::Base64Escape(material.cert_der));  // Padded standard base64.
  EXPECT_EQ(j["ServerKey"], absl::Base64Escape(material.key_der.view()));

  const std::string reply =
      nlohmann::json{{"request_id", "r"}, {"data", j}, {"wrap_info", nullptr}}.dump();
  absl::StatusOr<PluginTlsMaterial> decoded = DecodePluginTlsReply(reply);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->cert_der, material.cert_der);
  EXPECT_EQ(decoded->key_der.view(), material.key_der.view());
}

TEST(PluginTlsDataTest, MissingOrMalformedFieldsAreNamed) {
  EXPECT_THAT(DecodePluginTlsReply(R"({"data":null})").status().message(),
              HasSubstr("secret is nil"));
  EXPECT_THAT(DecodePluginTlsReply(R"({"data":{"ServerCert":"AAAA"}})").status().message(),
              HasSubstr("data.ServerKey"));
  absl::Status bad =
      DecodePluginTlsReply(R"({"data":{"ServerCert":"!!","ServerKey":"c2VjcmV0"}})").status();
  EXPECT_THAT(bad.message(), HasSubstr("data.ServerCert"));
  EXPECT_THAT(bad.message(), Not(HasSubstr("c2VjcmV0")));
  EXPECT_FALSE(DecodePluginTlsReply("not json").ok());
  EXPECT_FALSE(DecodePluginTlsReply(std::string(100, '[')).ok());
}

}  // namespace
}  // namespace bulwark::protocol
