// SecureBuffer: an owning, fixed-size byte buffer for key material that is wiped with
// OPENSSL_cleanse when cleared, overwritten by a move, or destroyed.
#ifndef BULWARK_BASE_CRYPTO_SECURE_BUFFER_H_
#define BULWARK_BASE_CRYPTO_SECURE_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace bulwark::crypto {

// Holds secret bytes. Move-only, so that a copy of a key is always an explicit Clone(). The
// size is fixed at construction; Clear() zeroes the bytes but keeps the size, so a test can
// check through view() or IsZero() that the wipe happened. Thread-compatible.
//
// It does not lock pages into memory (no mlock) and cannot wipe copies that callers make with
// view() (e.g. into a std::string); keep such copies short-lived.
class SecureBuffer {
 public:
  // An empty buffer.
  SecureBuffer() = default;
  // `size` zero bytes.
  explicit SecureBuffer(size_t size);
  // A copy of `bytes`.
  explicit SecureBuffer(absl::string_view bytes);

  SecureBuffer(SecureBuffer&& other) noexcept;
  // Wipes this buffer's old contents before taking over `other`'s.
  SecureBuffer& operator=(SecureBuffer&& other) noexcept;
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;

  // Wipes the contents.
  ~SecureBuffer();

  // Returns an independent copy.
  SecureBuffer Clone() const { return SecureBuffer(view()); }

  // Overwrites every byte with zero (OPENSSL_cleanse, which the compiler may not elide). The
  // size is unchanged.
  void Clear();

  // True when every byte is zero (also for an empty buffer). Reads all bytes regardless of
  // their values. Meant for tests and for asserting that a wipe happened.
  bool IsZero() const;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uint8_t* data() { return bytes_.get(); }
  const uint8_t* data() const { return bytes_.get(); }
  absl::Span<uint8_t> span() { return absl::Span<uint8_t>(bytes_.get(), size_); }
  absl::Span<const uint8_t> span() const { return absl::Span<const uint8_t>(bytes_.get(), size_); }
  // The bytes as a string_view; valid until this buffer is moved from or destroyed.
  absl::string_view view() const {
    return absl::string_view(reinterpret_cast<const char*>(bytes_.get()), size_);
  }

 private:
  void Wipe();

  std::unique_ptr<uint8_t[]> bytes_;
  size_t size_ = 0;
};

}  // namespace bulwark::crypto

#endif  // BULWARK_BASE_CRYPTO_SECURE_BUFFER_H_
