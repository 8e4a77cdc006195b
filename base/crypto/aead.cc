// AES-256-GCM through OpenSSL 3's EVP interface. One EVP_CIPHER_CTX per key; each message only
// re-initialises the nonce, so the AES key schedule is not recomputed.
#include "base/crypto/aead.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"

namespace bulwark::crypto {
namespace {

// EVP_CipherUpdate takes an int length; larger inputs are fed in chunks of this size.
constexpr size_t kMaxUpdateChunkBytes = size_t{1} << 30;

// Fetched once and kept for the life of the process: EVP_aes_256_gcm() would make OpenSSL 3
// look the implementation up in its provider store on every initialisation. Thread-safe (C++
// static initialisation; EVP_CIPHER objects are immutable and shareable once fetched).
const EVP_CIPHER* Aes256GcmCipher() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  CHECK(cipher != nullptr) << "OpenSSL has no AES-256-GCM implementation in its default provider";
  return cipher;
}

const uint8_t* Bytes(absl::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }
uint8_t* MutableBytes(std::string& s) { return reinterpret_cast<uint8_t*>(&s[0]); }

// Drains this thread's OpenSSL error queue into an Internal status. OpenSSL's messages name the
// failing function and reason, never key bytes.
absl::Status OpenSslError(absl::string_view operation) {
  const unsigned long code = ERR_get_error();
  char reason[256] = "no OpenSSL error recorded";
  if (code != 0) ERR_error_string_n(code, reason, sizeof(reason));
  ERR_clear_error();
  return absl::InternalError(absl::StrCat("AES-256-GCM: OpenSSL ", operation, " failed: ", reason));
}

absl::Status CheckKeySize(absl::string_view key) {
  if (key.size() == kAesGcmKeyBytes) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("AES-256-GCM: key is ", key.size(), " bytes; it must be ", kAesGcmKeyBytes));
}

absl::Status CheckNonceSize(absl::string_view nonce) {
  if (nonce.size() == kAesGcmNonceBytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("AES-256-GCM: nonce is ", nonce.size(),
                                                 " bytes; it must be ", kAesGcmNonceBytes));
}

// Runs `size` bytes from `in` through the cipher, writing the same number of bytes to `out`
// (GCM is a stream mode), or authenticates them as AAD when `out` is null.
bool Update(EVP_CIPHER_CTX* ctx, uint8_t* out, const uint8_t* in, size_t size) {
  while (size > 0) {
    const size_t chunk = std::min(size, kMaxUpdateChunkBytes);
    int written = 0;
    if (EVP_CipherUpdate(ctx, out, &written, in, static_cast<int>(chunk)) != 1) return false;
    if (out != nullptr) {
      CHECK(static_cast<size_t>(written) == chunk)
          << "GCM update wrote " << written << " of " << chunk << " bytes";
      out += chunk;
    }
    in += chunk;
    size -= chunk;
  }
  return true;
}

}  // namespace

absl::StatusOr<AesGcm> AesGcm::Create(absl::string_view key32) {
  RETURN_IF_ERROR(CheckKeySize(key32));
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return OpenSslError("EVP_CIPHER_CTX_new");
  AesGcm aead(ctx);  // Owns ctx from here on, also on the error path below.
  // OpenSSL copies the expanded key into the context; no temporary of ours holds it.
  if (EVP_CipherInit_ex(ctx, Aes256GcmCipher(), nullptr, Bytes(key32), nullptr, /*enc=*/1) != 1) {
    return OpenSslError("key setup");
  }
  return aead;
}

AesGcm::AesGcm(AesGcm&& other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)) {}

AesGcm& AesGcm::operator=(AesGcm&& other) noexcept {
  if (this != &other) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
  }
  return *this;
}

// EVP_CIPHER_CTX_free wipes the provider context, expanded key included, before freeing it.
AesGcm::~AesGcm() { EVP_CIPHER_CTX_free(ctx_); }

absl::StatusOr<std::string> AesGcm::Seal(absl::string_view nonce12, absl::string_view plaintext,
                                         absl::string_view aad) {
  CHECK(ctx_ != nullptr) << "AesGcm used after move";
  RETURN_IF_ERROR(CheckNonceSize(nonce12));
  // Key null: keep the key schedule from Create() and only start a new message.
  if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, Bytes(nonce12), /*enc=*/1) != 1) {
    return OpenSslError("encrypt init");
  }
  if (!Update(ctx_, nullptr, Bytes(aad), aad.size())) return OpenSslError("aad update");

  std::string sealed(plaintext.size() + kAesGcmTagBytes, '\0');
  uint8_t* out = MutableBytes(sealed);
  if (!Update(ctx_, out, Bytes(plaintext), plaintext.size())) return OpenSslError("encrypt");
  uint8_t* tag = out + plaintext.size();
  int final_bytes = 0;
  if (EVP_CipherFinal_ex(ctx_, tag, &final_bytes) != 1) return OpenSslError("encrypt final");
  CHECK(final_bytes == 0) << "GCM final wrote " << final_bytes << " bytes";
  if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kAesGcmTagBytes), tag) !=
      1) {
    return OpenSslError("get tag");
  }
  return sealed;
}

absl::StatusOr<std::string> AesGcm::Open(absl::string_view nonce12,
                                         absl::string_view ciphertext_and_tag,
                                         absl::string_view aad) {
  CHECK(ctx_ != nullptr) << "AesGcm used after move";
  RETURN_IF_ERROR(CheckNonceSize(nonce12));
  if (ciphertext_and_tag.size() < kAesGcmTagBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-256-GCM: sealed input is ", ciphertext_and_tag.size(),
                     " bytes, shorter than the ", kAesGcmTagBytes, "-byte tag"));
  }
  const size_t ciphertext_size = ciphertext_and_tag.size() - kAesGcmTagBytes;
  if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, Bytes(nonce12), /*enc=*/0) != 1) {
    return OpenSslError("decrypt init");
  }
  // The ctrl takes a non-const pointer, so hand it a copy rather than cast away const.
  uint8_t expected_tag[kAesGcmTagBytes];
  std::memcpy(expected_tag, ciphertext_and_tag.data() + ciphertext_size, kAesGcmTagBytes);
  if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kAesGcmTagBytes),
                          expected_tag) != 1) {
    return OpenSslError("set tag");
  }
  if (!Update(ctx_, nullptr, Bytes(aad), aad.size())) return OpenSslError("aad update");

  std::string plaintext(ciphertext_size, '\0');
  if (!Update(ctx_, MutableBytes(plaintext), Bytes(ciphertext_and_tag), ciphertext_size)) {
    OPENSSL_cleanse(MutableBytes(plaintext), plaintext.size());
    return OpenSslError("decrypt");
  }
  // GCM writes nothing at Final; the buffer only satisfies the interface.
  uint8_t final_out[16];
  int final_bytes = 0;
  // A tag mismatch is an expected outcome, not an OpenSSL fault: drop whatever it records in
  // this thread's error queue (and only that) so unrelated code does not trip over it later.
  ERR_set_mark();
  const bool authentic = EVP_CipherFinal_ex(ctx_, final_out, &final_bytes) == 1;
  ERR_pop_to_mark();
  if (!authentic) {
    // Do not let unauthenticated plaintext outlive this call.
    OPENSSL_cleanse(MutableBytes(plaintext), plaintext.size());
    return absl::DataLossError(
        "AES-256-GCM: ciphertext failed to authenticate (wrong key, nonce or associated data, "
        "or the data was modified or truncated)");
  }
  CHECK(final_bytes == 0) << "GCM final wrote " << final_bytes << " bytes";
  return plaintext;
}

absl::StatusOr<std::string> Seal(absl::string_view key32, absl::string_view nonce12,
                                 absl::string_view plaintext, absl::string_view aad) {
  // Validate cheap arguments before paying for a key schedule.
  RETURN_IF_ERROR(CheckNonceSize(nonce12));
  ASSIGN_OR_RETURN(AesGcm aead, AesGcm::Create(key32));
  return aead.Seal(nonce12, plaintext, aad);
}

absl::StatusOr<std::string> Open(absl::string_view key32, absl::string_view nonce12,
                                 absl::string_view ciphertext_and_tag, absl::string_view aad) {
  RETURN_IF_ERROR(CheckNonceSize(nonce12));
  ASSIGN_OR_RETURN(AesGcm aead, AesGcm::Create(key32));
  return aead.Open(nonce12, ciphertext_and_tag, aad);
}

}  // namespace bulwark::crypto
