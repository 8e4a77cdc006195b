// Streaming SHA-256 (OpenSSL 3 EVP) and hex encoding, for pinning plugin artifacts by digest and
// for printing and parsing digests and keys.
#ifndef BULWARK_BASE_CRYPTO_SHA256_H_
#define BULWARK_BASE_CRYPTO_SHA256_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// OpenSSL types stay out of core interfaces: the context is only forward-declared here.
struct evp_md_ctx_st;

namespace bulwark::crypto {

inline constexpr size_t kSha256DigestBytes = 32;

// Incremental SHA-256: Update() any number of times, then Finish(). Finish() also resets the
// hasher, so one object can hash several messages in turn. OpenSSL failures here can only be
// allocation failures or a broken OpenSSL install, so they abort (CHECK) rather than return.
// Thread-compatible; movable, not copyable.
class Sha256 {
 public:
  Sha256();
  Sha256(Sha256&& other) noexcept;
  Sha256& operator=(Sha256&& other) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  ~Sha256();

  // Appends `data` to the message. Precondition: not moved from.
  void Update(absl::string_view data);

  // Returns the 32-byte raw digest of everything passed to Update() since construction or the
  // last Finish(), and starts a new, empty message.
  std::string Finish();

  // One-shot convenience: the 32-byte raw digest of `data`.
  static std::string Hash(absl::string_view data);

 private:
  evp_md_ctx_st* ctx_;  // Owned; null only after a move.
};

// Returns `bytes` as lower-case hex, two characters per byte.
std::string HexEncode(absl::string_view bytes);

// Parses hex in upper, lower or mixed case into bytes. The per-character work does not branch on
// the character's value, so decoding a hex key does not leak it through timing.
//
// Errors: InvalidArgument if the length is odd or a character is not a hex digit (the message
// gives the position, not the character, since the input may be key material).
absl::StatusOr<std::string> HexDecode(absl::string_view hex);

}  // namespace bulwark::crypto

#endif  // BULWARK_BASE_CRYPTO_SHA256_H_
