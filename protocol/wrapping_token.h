// Vault's response-wrapping JWT and the legacy plugin TLS bootstrap it carries: what the host
// signs (vault/wrapping.go `wrapInCubbyhole`, format "jwt"), what the plugin reads from it
// before it unwraps (api/plugin_helpers.go `VaultPluginTLSProviderContext`), and the wrapped
// data itself (sdk/helper/pluginutil/tls.go `wrapServerConfig`). See protocol-facts §4.5.
//
//   header   {"alg":"ES512","typ":"JWT"}
//   claims   {"accessor":"","addr":"<api_addr>","exp":<unix>,"iat":<unix>,"jti":"<token id>",
//             "nbf":<unix>,"type":"wrapping"}            (keys sorted, as Go's encoder writes a
//             map)
//   token    base64url(header) "." base64url(claims) "." base64url(r || s), no padding
//
// The plugin does not verify the signature (it has no key to verify with): it takes `addr` from
// the claims and sends the whole JWT to `addr`/v1/sys/wrapping/unwrap, where the host verifies
// it. The address therefore travels inside the token, not in a variable of its own.
//
// Pure apart from OpenSSL in base/crypto: the clock and the randomness come from the caller.
#ifndef BULWARK_PROTOCOL_WRAPPING_TOKEN_H_
#define BULWARK_PROTOCOL_WRAPPING_TOKEN_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/crypto/es512.h"
#include "base/crypto/secure_buffer.h"

namespace bulwark::protocol {

// The `type` claim of every wrapping token.
inline constexpr absl::string_view kWrappingTokenType = "wrapping";
// The TTL Vault gives the plugin's wrapped TLS material (wrapServerConfig: time.Second*60).
inline constexpr absl::Duration kPluginWrapTtl = absl::Seconds(60);
// nbf is set this far before the creation time (wrapping.go: time.Now().Add(-5 * time.Second)).
inline constexpr absl::Duration kWrappingNotBeforeSkew = absl::Seconds(5);
// Longest token accepted for parsing (a Vault wrapping JWT is about 500 bytes).
inline constexpr size_t kWrappingTokenBytesMax = 8192;
// The keys of the wrapped data (Go's field names, so a Go plugin's decoder finds them).
inline constexpr absl::string_view kPluginTlsCertKey = "ServerCert";
inline constexpr absl::string_view kPluginTlsKeyKey = "ServerKey";

struct WrappingClaims {
  std::string id;         // jti: the wrapping token's id. A secret, like any token.
  absl::Time issued_at;   // iat
  absl::Time expires_at;  // exp
  absl::Time not_before;  // nbf
  std::string accessor;   // "" for wrapped data that holds no token.
  std::string type = std::string(kWrappingTokenType);
  std::string addr;  // The host's api_addr: where the plugin unwraps.
};

// Vault's test for "this token is a JWT" (ValidateWrappingToken): exactly two dots, and not a
// namespaced token ("s.xxx.ns", whose second character is the dot).
bool LooksLikeJwt(absl::string_view token);

// Signs `claims` with `key` (ES512; the nonce from `nonce_seed`, crypto::kP521SeedBytes fresh
// random bytes) and returns the compact JWT. Times are written as whole Unix seconds.
// Errors: InvalidArgument for an empty id or a wrong-sized seed; Internal if signing fails.
absl::StatusOr<std::string> EncodeWrappingJwt(const WrappingClaims& claims,
                                              const crypto::P521SigningKey& key,
                                              absl::string_view nonce_seed);

// The host's check of a token a client presents: three unpadded base64url parts, a header whose
// alg is ES512, a signature that verifies under `public_key`, claims with a non-empty string
// jti, type "wrapping", and integer exp, iat and nbf with nbf <= now < exp.
// Errors: InvalidArgument (malformed, oversized, wrong alg or claims), Unauthenticated (the
// signature does not verify), DeadlineExceeded (expired), FailedPrecondition (not yet valid).
// Messages say what was wrong and never contain the token or its claims.
absl::StatusOr<WrappingClaims> VerifyWrappingJwt(absl::string_view token,
                                                 absl::string_view public_key, absl::Time now);

// The plugin's reading of VAULT_UNWRAP_TOKEN (Vault's plugin helper): the header's alg must be
// ES512; the claims are decoded WITHOUT checking the signature; `addr` must be present and
// non-empty ("no vault api_addr found"). Errors: InvalidArgument, never echoing the token.
absl::StatusOr<WrappingClaims> ParseWrappingJwtUnverified(absl::string_view token);

// The wrapped data of the legacy plugin TLS bootstrap: one certificate and its key, used by both
// the host and the plugin (Vault's createClientTLSConfig on both ends).
struct PluginTlsMaterial {
  std::string cert_der;
  crypto::SecureBuffer key_der;  // SEC1 ECPrivateKey (Go's x509.MarshalECPrivateKey).
};

// {"ServerCert":"<standard padded base64 of the DER>","ServerKey":"<... of the SEC1 DER>"}: the
// JSON object Vault wraps (Go encodes []byte as padded standard base64). Holds the key: wipe it.
crypto::SecureBuffer EncodePluginTlsData(const PluginTlsMaterial& material);

// Reads the certificate and key from an unwrap reply: Vault's envelope, whose "data" holds
// ServerCert and ServerKey as standard base64. Errors: InvalidArgument naming the missing or
// malformed field (never its value).
absl::StatusOr<PluginTlsMaterial> DecodePluginTlsReply(absl::string_view reply_json);

}  // namespace bulwark::protocol

#endif  // BULWARK_PROTOCOL_WRAPPING_TOKEN_H_
