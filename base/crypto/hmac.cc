// HMAC-SHA256 through OpenSSL's one-shot HMAC().
#include "base/crypto/hmac.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/crypto/sha256.h"
#include "base/status/check.h"

namespace bulwark::crypto {

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char out[kSha256DigestBytes];
  unsigned int out_len = 0;
  // HMAC() takes a null key pointer as "no key" only with length 0; pass a valid one always.
  static const unsigned char kEmpty = 0;
  const unsigned char* k = key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
  CHECK(HMAC(EVP_sha256(), k, static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
             &out_len) != nullptr)
      << "OpenSSL HMAC-SHA256 failed";
  CHECK(out_len == kSha256DigestBytes);
  return std::string(reinterpret_cast<const char*>(out), out_len);
}

}  // namespace bulwark::crypto
