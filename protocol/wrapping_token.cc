// Compact JWS (RFC 7515) for Vault's wrapping claims: strict base64url, JSON through nlohmann
// (depth-checked first), ES512 through base/crypto.
#include "protocol/wrapping_token.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/json/json_depth.h"
#include "base/status/status_macros.h"

namespace bulwark::protocol {
namespace {

using Json = nlohmann::json;

constexpr absl::string_view kAlgorithm = "ES512";
// The header and claims of a wrapping token are flat objects.
constexpr size_t kJsonDepthMax = 4;

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("wrapping token: ", what));
}

std::string Base64Url(absl::string_view bytes) {
  std::string out;
  absl::WebSafeBase64Escape(bytes, &out);  // Unpadded.
  return out;
}

// Unpadded base64url only: no '=', no standard-alphabet '+' or '/', no whitespace.
std::optional<std::string> FromBase64Url(absl::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  for (char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return std::nullopt;
  }
  std::string out;
  if (!absl::WebSafeBase64Unescape(text, &out)) return std::nullopt;
  return out;
}

absl::StatusOr<Json> ParseObject(absl::string_view text, absl::string_view part) {
  if (FindJsonNestingBeyond(text, kJsonDepthMax).has_value()) {
    return Invalid(absl::StrCat("the ", part, " is nested too deeply"));
  }
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Invalid(absl::StrCat("the ", part, " is not a JSON object"));
  return j;
}

struct Parts {
  Json header;
  Json claims;
  absl::string_view signing_input;  // header "." claims, as sent.
  std::string signature;
};

absl::StatusOr<Parts> Split(absl::string_view token) {
  if (token.size() > kWrappingTokenBytesMax) {
    return Invalid(absl::StrCat("longer than ", kWrappingTokenBytesMax, " bytes"));
  }
  if (!LooksLikeJwt(token)) return Invalid("not a JWT (three dot-separated parts)");
  std::vector<absl::string_view> segments = absl::StrSplit(token, '.');
  Parts parts;
  std::optional<std::string> header = FromBase64Url(segments[0]);
  std::optional<std::string> claims = FromBase64Url(segments[1]);
  std::optional<std::string> signature = FromBase64Url(segments[2]);
  if (!header.has_value() || !claims.has_value() || !signature.has_value()) {
    return Invalid("a part is not unpadded base64url");
  }
  ASSIGN_OR_RETURN(parts.header, ParseObject(*header, "header"));
  ASSIGN_OR_RETURN(parts.claims, ParseObject(*claims, "claims"));
  auto alg = parts.header.find("alg");
  if (alg == parts.header.end() || !alg->is_string() || alg->get<std::string>() != kAlgorithm) {
    return Invalid("the header's alg is not ES512");
  }
  parts.signing_input = token.substr(0, segments[0].size() + 1 + segments[1].size());
  parts.signature = *std::move(signature);
  return parts;
}

std::optional<std::string> StringClaim(const Json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::optional<absl::Time> TimeClaim(const Json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_number_integer()) return std::nullopt;
  return absl::FromUnixSeconds(it->get<int64_t>());
}

// Reads every claim; `strict` (the host) requires each registered claim with its type.
absl::StatusOr<WrappingClaims> ReadClaims(const Json& j, bool strict) {
  WrappingClaims c;
  c.id = StringClaim(j, "jti").value_or("");
  c.accessor = StringClaim(j, "accessor").value_or("");
  c.type = StringClaim(j, "type").value_or("");
  c.addr = StringClaim(j, "addr").value_or("");
  std::optional<absl::Time> iat = TimeClaim(j, "iat");
  std::optional<absl::Time> exp = TimeClaim(j, "exp");
  std::optional<absl::Time> nbf = TimeClaim(j, "nbf");
  c.issued_at = iat.value_or(absl::InfinitePast());
  c.expires_at = exp.value_or(absl::InfiniteFuture());
  c.not_before = nbf.value_or(absl::InfinitePast());
  if (!strict) return c;
  if (c.id.empty()) return Invalid("the jti claim is missing or empty");
  if (c.type != kWrappingTokenType) return Invalid("the type claim is not \"wrapping\"");
  if (!iat.has_value() || !exp.has_value() || !nbf.has_value()) {
    return Invalid("an iat, exp or nbf claim is missing or not an integer");
  }
  return c;
}

// Overwrites a temporary copy of key material before it is freed (volatile: not elided).
void Wipe(std::string& s) {
  volatile char* p = s.data();
  for (size_t i = 0; i < s.size(); ++i) p[i] = 0;
}

}  // namespace

bool LooksLikeJwt(absl::string_view token) {
  size_t dots = 0;
  for (char c : token) dots += c == '.' ? 1 : 0;
  return dots == 2 && token.size() > 1 && token[1] != '.';
}

absl::StatusOr<std::string> EncodeWrappingJwt(const WrappingClaims& claims,
                                              const crypto::P521SigningKey& key,
                                              absl::string_view nonce_seed) {
  if (claims.id.empty()) return Invalid("the id (jti) must not be empty");
  // nlohmann's object is a std::map: keys come out sorted, as Go's encoder writes a map.
  const Json header = {{"alg", kAlgorithm}, {"typ", "JWT"}};
  const Json body = {
      {"accessor", claims.accessor},
      {"addr", claims.addr},
      {"exp", absl::ToUnixSeconds(claims.expires_at)},
      {"iat", absl::ToUnixSeconds(claims.issued_at)},
      {"jti", claims.id},
      {"nbf", absl::ToUnixSeconds(claims.not_before)},
      {"type", claims.type},
  };
  const std::string signing_input =
      absl::StrCat(Base64Url(header.dump()), ".",
                   Base64Url(body.dump(-1, ' ', false, Json::error_handler_t::replace)));
  ASSIGN_OR_RETURN(std::string signature, key.Sign(signing_input, nonce_seed));
  return absl::StrCat(signing_input, ".", Base64Url(signature));
}

absl::StatusOr<WrappingClaims> VerifyWrappingJwt(absl::string_view token,
                                                 absl::string_view public_key, absl::Time now) {
  ASSIGN_OR_RETURN(Parts parts, Split(token));
  if (absl::Status verified = crypto::VerifyEs512(public_key, parts.signing_input, parts.signature);
      !verified.ok()) {
    if (verified.code() == absl::StatusCode::kUnauthenticated) {
      return absl::UnauthenticatedError("wrapping token: the signature does not verify");
    }
    return Invalid("the signature is malformed");
  }
  ASSIGN_OR_RETURN(WrappingClaims claims, ReadClaims(parts.claims, /*strict=*/true));
  if (now >= claims.expires_at) return absl::DeadlineExceededError("wrapping token: expired");
  if (now < claims.not_before) {
    return absl::FailedPreconditionError("wrapping token: not valid yet (nbf)");
  }
  return claims;
}

absl::StatusOr<WrappingClaims> ParseWrappingJwtUnverified(absl::string_view token) {
  ASSIGN_OR_RETURN(Parts parts, Split(token));
  ASSIGN_OR_RETURN(WrappingClaims claims, ReadClaims(parts.claims, /*strict=*/false));
  // Vault's plugin helper: `addr` must be a non-empty string.
  if (claims.addr.empty()) return Invalid("no vault api_addr found (the addr claim is empty)");
  return claims;
}

crypto::SecureBuffer EncodePluginTlsData(const PluginTlsMaterial& material) {
  std::string key_b64 = absl::Base64Escape(material.key_der.view());
  std::string json =
      absl::StrCat("{\"", kPluginTlsCertKey, "\":\"", absl::Base64Escape(material.cert_der),
                   "\",\"", kPluginTlsKeyKey, "\":\"", key_b64, "\"}");
  crypto::SecureBuffer out(json);
  Wipe(key_b64);
  Wipe(json);
  return out;
}

absl::StatusOr<PluginTlsMaterial> DecodePluginTlsReply(absl::string_view reply_json) {
  if (FindJsonNestingBeyond(reply_json, 16).has_value()) {
    return absl::InvalidArgumentError("unwrap reply: nested too deeply");
  }
  const Json j = Json::parse(reply_json.begin(), reply_json.end(), nullptr, false);
  if (!j.is_object()) return absl::InvalidArgumentError("unwrap reply: not a JSON object");
  auto data = j.find("data");
  if (data == j.end() || !data->is_object()) {
    return absl::InvalidArgumentError("unwrap reply: no data object (secret is nil)");
  }
  PluginTlsMaterial out;
  auto field = [&](absl::string_view name) -> absl::StatusOr<std::string> {
    auto it = data->find(std::string(name));
    std::string decoded;
    if (it == data->end() || !it->is_string() ||
        !absl::Base64Unescape(it->get_ref<const std::string&>(), &decoded) || decoded.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unwrap reply: data.", name, " is missing or not base64"));
    }
    return decoded;
  };
  ASSIGN_OR_RETURN(out.cert_der, field(kPluginTlsCertKey));
  ASSIGN_OR_RETURN(std::string key, field(kPluginTlsKeyKey));
  out.key_der = crypto::SecureBuffer(key);
  Wipe(key);
  return out;
}

}  // namespace bulwark::protocol
