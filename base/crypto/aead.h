// AES-256-GCM authenticated encryption (OpenSSL 3 EVP), the cipher of the storage barrier:
// ciphertext is the encrypted bytes followed by a 16-byte tag.
#ifndef BULWARK_BASE_CRYPTO_AEAD_H_
#define BULWARK_BASE_CRYPTO_AEAD_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// OpenSSL types stay out of core interfaces: the context is only forward-declared here.
struct evp_cipher_ctx_st;

namespace bulwark::crypto {

inline constexpr size_t kAesGcmKeyBytes = 32;
inline constexpr size_t kAesGcmNonceBytes = 12;
inline constexpr size_t kAesGcmTagBytes = 16;

// Encrypts `plaintext` under `key32` (32 bytes) and `nonce12` (12 bytes), authenticating it
// together with `aad`, and returns ciphertext || 16-byte tag (plaintext.size() + 16 bytes).
// A (key, nonce) pair must never be used for two different messages: that breaks both
// confidentiality and authenticity. Thread-safe.
//
// Errors: InvalidArgument if the key is not 32 bytes or the nonce is not 12 bytes; Internal if
// OpenSSL fails (e.g. out of memory).
absl::StatusOr<std::string> Seal(absl::string_view key32, absl::string_view nonce12,
                                 absl::string_view plaintext, absl::string_view aad);

// Verifies and decrypts `ciphertext_and_tag` as produced by Seal() with the same key, nonce and
// aad. Returns the plaintext only if the tag verifies; no unauthenticated plaintext escapes (the
// output buffer is wiped on failure). Thread-safe.
//
// Errors: InvalidArgument if the key is not 32 bytes, the nonce is not 12 bytes, or the input is
// shorter than the 16-byte tag; DataLoss ("... failed to authenticate ...") if the tag does not
// verify, i.e. wrong key, nonce or aad, or modified or truncated data; Internal if OpenSSL fails.
absl::StatusOr<std::string> Open(absl::string_view key32, absl::string_view nonce12,
                                 absl::string_view ciphertext_and_tag, absl::string_view aad);

// AES-256-GCM with one key, for many messages: the key schedule is computed once by Create()
// instead of on every call, which matters for small (4 KiB) records. Seal() and Open() behave
// and fail exactly as the free functions above.
//
// Thread-compatible, not thread-safe: Seal() and Open() mutate the one OpenSSL context inside,
// so concurrent calls on one object need external synchronisation; use one object per thread.
// The context, which holds the expanded key, is wiped by OpenSSL when the object is destroyed.
class AesGcm {
 public:
  // Errors: InvalidArgument if `key32` is not 32 bytes; Internal if OpenSSL fails.
  static absl::StatusOr<AesGcm> Create(absl::string_view key32);

  AesGcm(AesGcm&& other) noexcept;
  AesGcm& operator=(AesGcm&& other) noexcept;
  AesGcm(const AesGcm&) = delete;
  AesGcm& operator=(const AesGcm&) = delete;
  ~AesGcm();

  absl::StatusOr<std::string> Seal(absl::string_view nonce12, absl::string_view plaintext,
                                   absl::string_view aad);
  absl::StatusOr<std::string> Open(absl::string_view nonce12, absl::string_view ciphertext_and_tag,
                                   absl::string_view aad);

 private:
  explicit AesGcm(evp_cipher_ctx_st* ctx) : ctx_(ctx) {}

  evp_cipher_ctx_st* ctx_;  // Owned; null only after a move.
};

}  // namespace bulwark::crypto

#endif  // BULWARK_BASE_CRYPTO_AEAD_H_
