// The secret scanner: remembers every secret the workload handed to the core (values written,
// unseal shares, plugin env values) and finds any fragment of one in text the run produced
// (error messages, trace payloads, plugin output, catalog views). A fragment is any
// kSecretWindowBytes consecutive bytes of a secret, so a truncated or embedded leak is caught.
#ifndef BULWARK_SIM_SECRETS_H_
#define BULWARK_SIM_SECRETS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace bulwark::sim {

inline constexpr size_t kSecretWindowBytes = 12;
// Distinct secret windows remembered at most (about 16 MiB of hashes).
inline constexpr size_t kSecretWindowsMax = size_t{1} << 21;

class SecretScanner {
 public:
  // Remembers `secret`. Secrets shorter than kSecretWindowBytes cannot be told from ordinary text
  // and are refused (returns false); so is any secret once kSecretWindowsMax is reached.
  bool Add(absl::string_view secret);

  // True if `text` contains kSecretWindowBytes consecutive bytes of a remembered secret.
  bool Leaks(absl::string_view text);

  uint64_t scans() const { return scans_; }
  size_t windows() const { return windows_.size(); }

 private:
  // Rolling hash of a window -> the window, to confirm a hit byte by byte. Lookups only: the
  // map's (salted, per-process) iteration order is never observed.
  absl::flat_hash_map<uint64_t, std::string> windows_;
  uint64_t scans_ = 0;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_SECRETS_H_
