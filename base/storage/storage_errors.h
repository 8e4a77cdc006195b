// The two errors a Storage write can return on an HA node besides the common ones (storage.h):
// "fenced" (this node no longer holds the lock revision its writes are conditioned on; the write
// did not land) and "read-only" (this node is not the active one and may not write at all).
// Both are kFailedPrecondition with a payload that tells them apart from each other and from a
// sealed barrier, so that they survive being passed up through the barrier and the node.
#ifndef BULWARK_BASE_STORAGE_STORAGE_ERRORS_H_
#define BULWARK_BASE_STORAGE_STORAGE_ERRORS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace bulwark {

// The message starts with "fenced: this node no longer holds the lock"; `detail` (never a
// secret: a key name or a revision) follows.
absl::Status FencedError(absl::string_view detail);
bool IsFenced(const absl::Status& status);

// Vault's logical.ErrReadOnly text, "cannot write to readonly storage", which a plugin's SDK
// recognises; a performance standby forwards the original request when a write fails with it.
absl::Status ReadOnlyError();
bool IsReadOnly(const absl::Status& status);

}  // namespace bulwark

#endif  // BULWARK_BASE_STORAGE_STORAGE_ERRORS_H_
