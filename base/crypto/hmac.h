// HMAC-SHA256 (RFC 2104 over SHA-256, OpenSSL 3), for the audit device's hashed values.
#ifndef BULWARK_BASE_CRYPTO_HMAC_H_
#define BULWARK_BASE_CRYPTO_HMAC_H_

#include <string>

#include "absl/strings/string_view.h"

// OpenSSL types stay out of core interfaces: the context is only forward-declared here.
struct evp_md_ctx_st;

namespace bulwark::crypto {

// HMAC-SHA256 under one key, many messages: the key's inner and outer SHA-256 states are
// computed once, so each Sign costs two SHA-256 finishes over the message and a digest (not
// OpenSSL's per-call algorithm fetch and key schedule). OpenSSL failures can only be allocation
// failures or a broken install, so they abort (CHECK). Thread-compatible; not copyable. The
// key's pads are wiped at destruction (the states derived from them are OpenSSL's).
class HmacSha256Key {
 public:
  explicit HmacSha256Key(absl::string_view key);
  ~HmacSha256Key();
  HmacSha256Key(const HmacSha256Key&) = delete;
  HmacSha256Key& operator=(const HmacSha256Key&) = delete;

  // The 32-byte raw HMAC-SHA256 of `data`.
  std::string Sign(absl::string_view data) const;

 private:
  evp_md_ctx_st* inner_;  // SHA-256 state after (key ^ ipad); owned.
  evp_md_ctx_st* outer_;  // SHA-256 state after (key ^ opad); owned.
  evp_md_ctx_st* work_;   // Scratch for Sign; owned.
};

// One-shot: the 32-byte raw HMAC-SHA256 of `data` under `key` (any length). Thread-safe.
std::string HmacSha256(absl::string_view key, absl::string_view data);

}  // namespace bulwark::crypto

#endif  // BULWARK_BASE_CRYPTO_HMAC_H_
