// HMAC-SHA256 (RFC 2104 over SHA-256, OpenSSL 3), for the audit device's hashed values.
#ifndef BULWARK_BASE_CRYPTO_HMAC_H_
#define BULWARK_BASE_CRYPTO_HMAC_H_

#include <string>

#include "absl/strings/string_view.h"

namespace bulwark::crypto {

// The 32-byte raw HMAC-SHA256 of `data` under `key` (any length). OpenSSL failures can only be
// allocation failures or a broken install, so they abort (CHECK). Thread-safe.
std::string HmacSha256(absl::string_view key, absl::string_view data);

}  // namespace bulwark::crypto

#endif  // BULWARK_BASE_CRYPTO_HMAC_H_
