// EtcdStorage: bulwark's physical Storage on etcd, with fenced writes (core/ha/fenced_storage.h).
//
// Vault's layout: storage key `k` is etcd key `<path>k`, where path is the configured `path`
// with a leading and a trailing "/" ("/vault/" by default). The lock entries of the HA
// coordinator live at `<path>core/lock/...`: List never returns them and writes there are
// refused, so no barrier operation can touch the lock.
//
// Synchronous like every Storage: each call is one etcd round trip bounded by the client's
// request timeout. Errors beyond storage.h's: the client's (kUnavailable, kDeadlineExceeded, ...
// naming the endpoint and operation), FencedError and ReadOnlyError.
#ifndef BULWARK_SERVER_ETCD_ETCD_STORAGE_H_
#define BULWARK_SERVER_ETCD_ETCD_STORAGE_H_

#include <optional>
#include <string>
#include <vector>

#include "core/ha/fenced_storage.h"
#include "server/etcd/etcd_client.h"

namespace bulwark::etcd {

// "/vault/" for "vault", "/vault" or "/vault/"; "/" for "" or "/".
std::string NormalizePath(absl::string_view path);

// The storage-relative prefix of the HA lock entries.
inline constexpr absl::string_view kLockPrefix = "core/lock/";

class EtcdStorage final : public ha::FencedStorage {
 public:
  // `client` must outlive the storage. `path` as in the configuration (normalized here).
  EtcdStorage(Client& client, absl::string_view path);

  const std::string& path() const { return path_; }

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) override;
  absl::Status Put(absl::string_view key, absl::string_view value) override;
  absl::Status Delete(absl::string_view key) override;
  absl::StatusOr<std::vector<std::string>> List(absl::string_view prefix) override;

  void Unfence() override;
  void MakeReadOnly() override;
  void FenceOn(const ha::LockGrant& grant) override;

 private:
  enum class Mode { kUnfenced, kReadOnly, kFenced };
  absl::Status CheckWritable(absl::string_view key) const;
  // Runs `op` unconditionally, or as a Txn fenced on the grant.
  absl::Status Write(absl::string_view operation, etcdserverpb::RequestOp op);

  Client& client_;
  const std::string path_;
  Mode mode_ = Mode::kUnfenced;
  ha::LockGrant fence_;
};

}  // namespace bulwark::etcd

#endif  // BULWARK_SERVER_ETCD_ETCD_STORAGE_H_
