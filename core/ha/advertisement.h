// The active node's advertisement: where standbys find it. Like Vault, a barrier entry at
// "core/leader/<holder id>" (so it is encrypted, and only unsealed nodes can read it), written
// by the active node through its fenced barrier view once it holds the lock.
#ifndef BULWARK_CORE_HA_ADVERTISEMENT_H_
#define BULWARK_CORE_HA_ADVERTISEMENT_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/storage/storage.h"

namespace bulwark::ha {

struct Advertisement {
  std::string api_addr;      // Vault's "redirect_addr".
  std::string cluster_addr;  // "" when the node has no cluster port.
};

// "core/leader/<holder_id>"; InvalidArgument when holder_id is not a valid key segment.
absl::StatusOr<std::string> AdvertisementKey(absl::string_view holder_id);

// Vault's JSON shape, {"redirect_addr": ..., "cluster_addr": ...}; a value that is not a JSON
// object is Vault's old format, the bare redirect address.
std::string EncodeAdvertisement(const Advertisement& ad);
absl::StatusOr<Advertisement> DecodeAdvertisement(absl::string_view value);

// Writes / reads the advertisement through `barrier` (the caller's encrypted view).
absl::Status PublishAdvertisement(Storage& barrier, absl::string_view holder_id,
                                  const Advertisement& ad);
absl::StatusOr<std::optional<Advertisement>> ReadAdvertisement(Storage& barrier,
                                                               absl::string_view holder_id);
absl::Status ClearAdvertisement(Storage& barrier, absl::string_view holder_id);

}  // namespace bulwark::ha

#endif  // BULWARK_CORE_HA_ADVERTISEMENT_H_
