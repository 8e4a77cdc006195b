// HMAC-SHA256 as RFC 2104 defines it, over OpenSSL's SHA-256 with the key's pad states kept.
#include "base/crypto/hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdint>

#include "base/crypto/sha256.h"
#include "base/status/check.h"

namespace bulwark::crypto {
namespace {

constexpr size_t kBlockBytes = 64;

const EVP_MD* Md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  CHECK(md != nullptr) << "OpenSSL has no SHA-256 implementation in its default provider";
  return md;
}

EVP_MD_CTX* NewCtx() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  CHECK(ctx != nullptr) << "OpenSSL could not allocate a digest context";
  return ctx;
}

void PadState(EVP_MD_CTX* ctx, const unsigned char* block, unsigned char pad) {
  unsigned char padded[kBlockBytes];
  for (size_t i = 0; i < kBlockBytes; ++i) padded[i] = block[i] ^ pad;
  CHECK(EVP_DigestInit_ex(ctx, Md(), nullptr) == 1);
  CHECK(EVP_DigestUpdate(ctx, padded, kBlockBytes) == 1);
  OPENSSL_cleanse(padded, sizeof(padded));
}

}  // namespace

HmacSha256Key::HmacSha256Key(absl::string_view key)
    : inner_(NewCtx()), outer_(NewCtx()), work_(NewCtx()) {
  unsigned char block[kBlockBytes] = {};
  if (key.size() > kBlockBytes) {
    const std::string digest = Sha256::Hash(key);
    std::copy(digest.begin(), digest.end(), block);
  } else {
    std::copy(key.begin(), key.end(), block);
  }
  PadState(inner_, block, 0x36);
  PadState(outer_, block, 0x5c);
  OPENSSL_cleanse(block, sizeof(block));
}

HmacSha256Key::~HmacSha256Key() {
  EVP_MD_CTX_free(inner_);
  EVP_MD_CTX_free(outer_);
  EVP_MD_CTX_free(work_);
}

std::string HmacSha256Key::Sign(absl::string_view data) const {
  unsigned char digest[kSha256DigestBytes];
  unsigned int len = 0;
  CHECK(EVP_MD_CTX_copy_ex(work_, inner_) == 1);
  CHECK(EVP_DigestUpdate(work_, data.data(), data.size()) == 1);
  CHECK(EVP_DigestFinal_ex(work_, digest, &len) == 1 && len == kSha256DigestBytes);
  CHECK(EVP_MD_CTX_copy_ex(work_, outer_) == 1);
  CHECK(EVP_DigestUpdate(work_, digest, len) == 1);
  CHECK(EVP_DigestFinal_ex(work_, digest, &len) == 1 && len == kSha256DigestBytes);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  return HmacSha256Key(key).Sign(data);
}

}  // namespace bulwark::crypto
