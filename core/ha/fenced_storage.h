// The fenced-storage contract: the physical Storage of an HA node, whose writes are allowed,
// refused or conditioned on the lock according to the node's role. The etcd implementation is
// //server/etcd:etcd_storage; the simulator will supply its own.
#ifndef BULWARK_CORE_HA_FENCED_STORAGE_H_
#define BULWARK_CORE_HA_FENCED_STORAGE_H_

#include <functional>
#include <utility>
#include <vector>

#include "base/storage/storage.h"
#include "core/ha/coordinator.h"

namespace bulwark::ha {

// Reads are never fenced. Writes (Put, Delete), by mode:
//   Unfence()       unconditional (HA disabled: the only node). The initial mode.
//   MakeReadOnly()  every write fails with ReadOnlyError() and changes nothing (a standby).
//   FenceOn(grant)  every write is one atomic store operation conditioned on the grant's lock
//                   entry still existing with create revision grant.revision; when it does not,
//                   the write fails with FencedError() (base/storage/storage_errors.h) and
//                   changes nothing. The active node.
// A fenced error means the node has lost the lock whether or not it has noticed yet: the node
// treats it as lost (Coordinator's `lost`).
class FencedStorage : public Storage {
 public:
  virtual void Unfence() = 0;
  virtual void MakeReadOnly() = 0;
  virtual void FenceOn(const LockGrant& grant) = 0;

  // Called for every fenced write, on the thread that made it and before the write returns its
  // FencedError, with the grant the write was fenced on. The node's Leadership uses it to step
  // down at once instead of at its next renewal; it must not call back into the storage.
  void SetFencedListener(std::function<void(const LockGrant&)> listener) {
    fenced_listener_ = std::move(listener);
  }

  // Watched reads (docs/ha.md, "Reads on a performance standby"): a performance standby's
  // Leadership watches every key of the store from its unseal to its seal. It calls
  // BeginWatchedReads once that watch is established, Changed with every batch the watch
  // delivers (in store order, before the node invalidates anything, so reloads read the new
  // values), and EndWatchedReads when the watch ends. While read-only and watched, a storage may
  // answer Get from memory, dropping each key the watch reports changed. The defaults do nothing
  // (every read goes to the store).
  virtual void BeginWatchedReads() {}
  virtual void Changed(const std::vector<WatchEvent>& events) { (void)events; }
  virtual void EndWatchedReads() {}

 protected:
  void NotifyFenced(const LockGrant& grant) {
    if (fenced_listener_) fenced_listener_(grant);
  }

 private:
  std::function<void(const LockGrant&)> fenced_listener_;
};

}  // namespace bulwark::ha

#endif  // BULWARK_CORE_HA_FENCED_STORAGE_H_
