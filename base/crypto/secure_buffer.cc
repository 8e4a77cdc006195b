// SecureBuffer: wiping happens here, through OPENSSL_cleanse.
#include "base/crypto/secure_buffer.h"

#include <openssl/crypto.h>

#include <cstring>
#include <utility>

namespace bulwark::crypto {

SecureBuffer::SecureBuffer(size_t size)
    : bytes_(size == 0 ? nullptr : new uint8_t[size]()), size_(size) {}

SecureBuffer::SecureBuffer(absl::string_view bytes) : SecureBuffer(bytes.size()) {
  if (!bytes.empty()) std::memcpy(bytes_.get(), bytes.data(), bytes.size());
}

SecureBuffer::SecureBuffer(SecureBuffer&& other) noexcept
    : bytes_(std::move(other.bytes_)), size_(std::exchange(other.size_, 0)) {}

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& other) noexcept {
  if (this != &other) {
    Wipe();
    bytes_ = std::move(other.bytes_);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecureBuffer::~SecureBuffer() { Wipe(); }

void SecureBuffer::Clear() { Wipe(); }

bool SecureBuffer::IsZero() const {
  uint8_t accumulated = 0;
  for (size_t i = 0; i < size_; ++i) accumulated = static_cast<uint8_t>(accumulated | bytes_[i]);
  return accumulated == 0;
}

void SecureBuffer::Wipe() {
  if (bytes_ != nullptr) OPENSSL_cleanse(bytes_.get(), size_);
}

}  // namespace bulwark::crypto
