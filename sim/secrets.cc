// Rolling-hash search for secret fragments (see secrets.h).
#include "sim/secrets.h"

namespace bulwark::sim {
namespace {

// Polynomial rolling hash over a window, mod 2^64 (Rabin-Karp): O(1) per byte, so scanning costs
// one pass over the text whatever the number of secrets.
constexpr uint64_t kBase = 0x100000001b3ULL;

uint64_t PowerOfBase(size_t n) {
  uint64_t p = 1;
  for (size_t i = 0; i < n; ++i) p *= kBase;
  return p;
}

const uint64_t kTopPower = PowerOfBase(kSecretWindowBytes - 1);

// Calls f(hash, start) for each window of `text` until f returns true.
template <typename F>
void ForEachWindow(absl::string_view text, F&& f) {
  if (text.size() < kSecretWindowBytes) return;
  uint64_t h = 0;
  for (size_t i = 0; i < kSecretWindowBytes; ++i) h = h * kBase + static_cast<uint8_t>(text[i]);
  if (f(h, size_t{0})) return;
  for (size_t i = kSecretWindowBytes; i < text.size(); ++i) {
    h -= static_cast<uint8_t>(text[i - kSecretWindowBytes]) * kTopPower;
    h = h * kBase + static_cast<uint8_t>(text[i]);
    if (f(h, i + 1 - kSecretWindowBytes)) return;
  }
}

}  // namespace

bool SecretScanner::Add(absl::string_view secret) {
  if (secret.size() < kSecretWindowBytes) return false;
  if (windows_.size() + secret.size() > kSecretWindowsMax) return false;
  ForEachWindow(secret, [&](uint64_t h, size_t start) {
    windows_.emplace(h, std::string(secret.substr(start, kSecretWindowBytes)));
    return false;
  });
  return true;
}

bool SecretScanner::Leaks(absl::string_view text) {
  ++scans_;
  bool found = false;
  ForEachWindow(text, [&](uint64_t h, size_t start) {
    auto it = windows_.find(h);
    found = it != windows_.end() && it->second == text.substr(start, kSecretWindowBytes);
    return found;
  });
  return found;
}

}  // namespace bulwark::sim
