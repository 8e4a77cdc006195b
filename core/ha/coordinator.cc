#include "core/ha/coordinator.h"

#include <algorithm>

namespace bulwark::ha {

absl::Duration LossDeadline(absl::Duration ttl) {
  return ttl - std::max(ttl / 3, absl::Seconds(1));
}

absl::Duration RenewInterval(absl::Duration ttl) { return ttl / 3; }

}  // namespace bulwark::ha
