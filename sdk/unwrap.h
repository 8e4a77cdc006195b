// The plugin side of Vault's legacy TLS bootstrap (AutoMTLS off): VAULT_UNWRAP_TOKEN holds a
// response-wrapping JWT; the plugin reads the host's address from its `addr` claim (without
// verifying it: the plugin has no key), unwraps it once at `addr`/v1/sys/wrapping/unwrap, and
// serves TLS with the certificate and key it receives (Vault's api/plugin_helpers.go
// VaultPluginTLSProviderContext; protocol-facts §4.5).
//
// The request is Vault's Go client's: PUT with the JWT as X-Vault-Token and a JSON null body.
// The connection follows Vault's client environment: VAULT_CACERT / VAULT_CAPATH (TLS is
// verified against them, else the system's store), VAULT_CLIENT_CERT + VAULT_CLIENT_KEY,
// VAULT_SKIP_VERIFY. No redirects are followed. Blocking, with a deadline: call it before
// serving.
#ifndef BULWARK_SDK_UNWRAP_H_
#define BULWARK_SDK_UNWRAP_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sdk/serve_config.h"

namespace bulwark::sdk {

// The whole unwrap, connection included, and the connection alone.
inline constexpr absl::Duration kUnwrapTimeout = absl::Seconds(30);
inline constexpr absl::Duration kUnwrapConnectTimeout = absl::Seconds(10);
// Largest reply read (the TLS material is about 1 KiB).
inline constexpr size_t kUnwrapReplyBytesMax = 1 << 20;

// What the plugin serves with: one certificate and key, shared with the host, which is also
// the only client certificate it accepts, checked under `server_name` both ways.
struct PluginTls {
  std::string cert_pem;
  std::string key_pem;      // A secret: never logged.
  std::string server_name;  // The certificate's CN.
  std::string addr;         // Where it was unwrapped (the JWT's addr claim).
};

// Errors (messages never contain the token or key material):
//   kInvalidArgument    the token is not a JWT with alg ES512, has no addr ("no vault api_addr
//                       found"), the addr is not an http:// or https:// URL ("could not
//                       validate addr claim"), or the reply holds no usable certificate and key
//   kUnavailable        the host could not be reached (libcurl's reason, and the addr)
//   kDeadlineExceeded   no answer within `timeout`
//   kPermissionDenied   the host refused the token (HTTP 400/403: Vault's text, e.g. "wrapping
//                       token is not valid or does not exist": spent, expired or not its own)
//   kInternal           any other HTTP status, or libcurl failing to start
absl::StatusOr<PluginTls> UnwrapPluginTls(absl::string_view token, const EnvLookup& env,
                                          absl::Duration timeout = kUnwrapTimeout);

}  // namespace bulwark::sdk

#endif  // BULWARK_SDK_UNWRAP_H_
