// ECDSA on NIST P-521 with SHA-512, JWS's "ES512" (RFC 7518 §3.4): the signature of Vault's
// response-wrapping JWTs. Keys and signing nonces are made from random bytes the caller passes
// in (the Env's CSPRNG in production, its seeded stream in simulation), so nothing here draws
// from a global generator; verification goes through OpenSSL's EVP interface.
#ifndef BULWARK_BASE_CRYPTO_ES512_H_
#define BULWARK_BASE_CRYPTO_ES512_H_

#include <cstddef>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/crypto/secure_buffer.h"

namespace bulwark::crypto {

// A P-521 scalar (private key, r, s) as fixed-size big-endian bytes.
inline constexpr size_t kP521ScalarBytes = 66;
// An uncompressed P-521 point: 0x04 || X || Y.
inline constexpr size_t kP521PublicKeyBytes = 1 + 2 * kP521ScalarBytes;
// A JWS ES512 signature: r || s, each kP521ScalarBytes (RFC 7518 §3.4).
inline constexpr size_t kEs512SignatureBytes = 2 * kP521ScalarBytes;
// Random bytes consumed to make one private key or one signing nonce: twice the order's size,
// so that reducing them modulo the order leaves a bias below 2^-500.
inline constexpr size_t kP521SeedBytes = 2 * kP521ScalarBytes;

// A P-521 private key and its public point. Move-only; the scalar is wiped on destruction.
// Thread-compatible (const methods may run concurrently).
class P521SigningKey {
 public:
  // A key from kP521SeedBytes random bytes (d = 1 + seed mod (n - 1)). `seed` must come from a
  // CSPRNG in production: whoever knows it knows the key.
  // Errors: InvalidArgument if `seed` is not kP521SeedBytes long; Internal if OpenSSL fails.
  static absl::StatusOr<P521SigningKey> FromSeed(absl::string_view seed);

  // A key from its scalar (kP521ScalarBytes, big-endian), as scalar() returns it.
  // Errors: InvalidArgument if the length is wrong or the value is not in 1..n-1 (messages never
  // show the bytes); Internal if OpenSSL fails.
  static absl::StatusOr<P521SigningKey> FromScalar(absl::string_view scalar);

  P521SigningKey(P521SigningKey&&) = default;
  P521SigningKey& operator=(P521SigningKey&&) = default;

  // The private scalar d, kP521ScalarBytes big-endian. Secret: store it only behind the barrier.
  const SecureBuffer& scalar() const { return scalar_; }
  // The public point, kP521PublicKeyBytes uncompressed.
  const std::string& public_key() const { return public_key_; }

  // Signs SHA-512(`message`) and returns r || s (kEs512SignatureBytes). The nonce k is made from
  // `nonce_seed` (kP521SeedBytes fresh random bytes, never reused: two signatures with one nonce
  // reveal the key). Errors: InvalidArgument for a wrong-sized seed; Internal if OpenSSL fails
  // or the seed gives a degenerate r or s (probability about 2^-520).
  absl::StatusOr<std::string> Sign(absl::string_view message, absl::string_view nonce_seed) const;

 private:
  P521SigningKey(SecureBuffer scalar, std::string public_key)
      : scalar_(std::move(scalar)), public_key_(std::move(public_key)) {}

  SecureBuffer scalar_;
  std::string public_key_;
};

// Checks that `signature` (r || s, kEs512SignatureBytes) is a valid ES512 signature of
// `message` under `public_key` (kP521PublicKeyBytes uncompressed). Thread-safe.
// Errors: InvalidArgument if the key is not a point on P-521 or the signature has the wrong
// size; Unauthenticated ("signature does not verify") if it does not verify; Internal if
// OpenSSL fails.
absl::Status VerifyEs512(absl::string_view public_key, absl::string_view message,
                         absl::string_view signature);

}  // namespace bulwark::crypto

#endif  // BULWARK_BASE_CRYPTO_ES512_H_
