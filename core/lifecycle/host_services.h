// What the core serves to one mount's plugin instance over the broker: Vault's pb.Storage on
// the mount's own slice of the barrier (keys are confined under a per-mount prefix, so one
// plugin can never read another mount's data), and the read-only parts of pb.SystemView.
#ifndef BULWARK_CORE_LIFECYCLE_HOST_SERVICES_H_
#define BULWARK_CORE_LIFECYCLE_HOST_SERVICES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/env/plugin_transport.h"
#include "base/storage/storage.h"
#include "protocol/storage_service.h"

namespace bulwark::lifecycle {

struct SystemViewInfo {
  absl::Duration default_lease_ttl = absl::Hours(24 * 32);  // Vault's defaults.
  absl::Duration max_lease_ttl = absl::Hours(24 * 32);
  bool mlock = false;
  bool local_mount = false;
  std::string vault_version;
};

class StorageHostServices final : public HostServices {
 public:
  // `storage` is the unsealed barrier view; `prefix` ("logical/<mount uuid>/") ends in '/'.
  StorageHostServices(Storage& storage, std::string prefix, SystemViewInfo info);

  // pb.Storage Get/Put/Delete/List through protocol::StorageService (storage errors travel in
  // the reply's `err` field, as Vault's GRPCStorageServer does).
  // pb.SystemView DefaultLeaseTTL, MaxLeaseTTL, Tainted, CachingDisabled, ReplicationState,
  // MlockEnabled, LocalMount, PluginEnv. Anything else: kUnimplemented.
  absl::StatusOr<std::string> Handle(absl::string_view method, absl::string_view request) override;

  // Calls served so far (for tests and metrics).
  uint64_t calls() const { return calls_; }

 private:
  protocol::StorageService storage_;
  const SystemViewInfo info_;
  uint64_t calls_ = 0;
};

}  // namespace bulwark::lifecycle

#endif  // BULWARK_CORE_LIFECYCLE_HOST_SERVICES_H_
