// SHA-256 through OpenSSL 3's EVP_MD interface, and constant-time hex encoding and decoding.
#include "base/crypto/sha256.h"

#include <openssl/evp.h>

#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status/check.h"

namespace bulwark::crypto {
namespace {

// Fetched once (as for the cipher in aead.cc) so that each Init does not search the provider
// store. Thread-safe static initialisation; fetched EVP_MD objects are immutable.
const EVP_MD* Sha256Md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  CHECK(md != nullptr) << "OpenSSL has no SHA-256 implementation in its default provider";
  return md;
}

// Maps 0..15 to '0'..'9', 'a'..'f' without a branch or table: 39 = 'a' - '0' - 10 is added
// exactly when nibble > 9, which is when 9 - nibble wraps around and sets the high bits.
char HexDigit(unsigned nibble) {
  return static_cast<char>(nibble + '0' + (((9u - nibble) >> 8) & 39u));
}

// Maps a hex digit to 0..15 and any other byte to 0x100 (an out-of-range flag), without
// branching on the byte: `(v - bound) >> 8` has an all-ones low byte exactly when v < bound,
// because the unsigned subtraction wraps.
unsigned HexValue(unsigned char c) {
  const unsigned digit = c ^ 0x30u;                        // '0'..'9' -> 0..9
  const unsigned is_digit = ((digit - 10u) >> 8) & 0xffu;  // 0xff iff digit < 10
  const unsigned letter = (c & ~0x20u) - 55u;              // 'A'..'F', 'a'..'f' -> 10..15
  const unsigned is_letter = (((letter - 10u) ^ (letter - 16u)) >> 8) & 0xffu;  // 10 <= l < 16
  const unsigned valid = is_digit | is_letter;
  return (digit & is_digit) | (letter & is_letter) | (((~valid & 0xffu) << 1) & 0x100u);
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  CHECK(ctx_ != nullptr) << "EVP_MD_CTX_new failed";
  CHECK(EVP_DigestInit_ex(ctx_, Sha256Md(), nullptr) == 1) << "SHA-256 init failed";
}

Sha256::Sha256(Sha256&& other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)) {}

Sha256& Sha256::operator=(Sha256&& other) noexcept {
  if (this != &other) {
    EVP_MD_CTX_free(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
  }
  return *this;
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::Update(absl::string_view data) {
  CHECK(ctx_ != nullptr) << "Sha256 used after move";
  if (data.empty()) return;
  CHECK(EVP_DigestUpdate(ctx_, data.data(), data.size()) == 1) << "SHA-256 update failed";
}

std::string Sha256::Finish() {
  CHECK(ctx_ != nullptr) << "Sha256 used after move";
  std::string digest(kSha256DigestBytes, '\0');
  unsigned int size = 0;
  CHECK(EVP_DigestFinal_ex(ctx_, reinterpret_cast<unsigned char*>(&digest[0]), &size) == 1)
      << "SHA-256 final failed";
  CHECK(size == kSha256DigestBytes) << "SHA-256 produced " << size << " bytes";
  CHECK(EVP_DigestInit_ex(ctx_, Sha256Md(), nullptr) == 1) << "SHA-256 re-init failed";
  return digest;
}

std::string Sha256::Hash(absl::string_view data) {
  Sha256 hasher;
  hasher.Update(data);
  return hasher.Finish();
}

std::string HexEncode(absl::string_view bytes) {
  std::string hex(bytes.size() * 2, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    const unsigned byte = static_cast<unsigned char>(bytes[i]);
    hex[2 * i] = HexDigit(byte >> 4);
    hex[2 * i + 1] = HexDigit(byte & 0xfu);
  }
  return hex;
}

absl::StatusOr<std::string> HexDecode(absl::string_view hex) {
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("hex decode: input is ", hex.size(), " characters; it must be even"));
  }
  std::string bytes(hex.size() / 2, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    const unsigned high = HexValue(static_cast<unsigned char>(hex[2 * i]));
    const unsigned low = HexValue(static_cast<unsigned char>(hex[2 * i + 1]));
    if (((high | low) & 0x100u) != 0) {
      const size_t position = 2 * i + ((high & 0x100u) != 0 ? 0 : 1);
      return absl::InvalidArgumentError(absl::StrCat("hex decode: character at position ", position,
                                                     " is not a hex digit [0-9a-fA-F]"));
    }
    bytes[i] = static_cast<char>((high << 4) | low);
  }
  return bytes;
}

}  // namespace bulwark::crypto
