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

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/ha/fenced_storage.h"
#include "server/etcd/etcd_client.h"
#include "server/etcd/lease_window.h"
#include "server/etcd/watch_health.h"

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

  // Watched reads of a performance standby (docs/ha.md, "Reads on a performance standby"):
  // after EnableWatchedReads, while read-only, between BeginWatchedReads and EndWatchedReads,
  // while `health` says the watch is live and since its last break, and once the watch has
  // delivered every revision passed to AwaitRevision, Get answers from the values it read since,
  // dropping each key Changed reports. Loop thread, but AwaitRevision.
  void EnableWatchedReads(std::shared_ptr<const WatchHealth> health) {
    health_ = std::move(health);
  }
  void BeginWatchedReads() override;
  void Changed(const std::vector<ha::WatchEvent>& events) override;
  void EndWatchedReads() override;
  // Reads from memory only once the watch has delivered store revision `revision` (the active
  // node's answer to a request this node re-sent carries it: a client reads its own writes).
  // Any thread.
  void AwaitRevision(int64_t revision);
  // The store revision of this storage's latest write that succeeded (0 before any): every
  // earlier write of this node is at or below it. Any thread.
  int64_t last_write_revision() const { return last_write_revision_.load(); }
  // Get calls answered from memory (tests, metrics).
  int64_t cached_reads() const { return cached_reads_; }

  // Reads of the active node from memory (docs/ha.md, "Reads on the active node"): while fenced
  // and `window` is open, Get answers from the values this storage read or wrote since FenceOn.
  // The active node is then the only writer, so these are the values etcd holds. Every mode
  // change, fenced write and write of unknown outcome drops what it could have made stale.
  void EnableReadCache(std::shared_ptr<const LeaseWindow> window) { window_ = std::move(window); }

  // Bytes of values the cache holds at most; beyond, it starts over empty.
  static constexpr size_t kReadCacheBytesMax = size_t{64} << 20;

 private:
  enum class Mode { kUnfenced, kReadOnly, kFenced };
  absl::Status CheckWritable(absl::string_view key) const;
  // Runs `op` unconditionally, or as a Txn fenced on the grant.
  absl::Status Write(absl::string_view operation, etcdserverpb::RequestOp op);
  absl::Status WriteThrough(absl::string_view operation, etcdserverpb::RequestOp op);

  Client& client_;
  const std::string path_;
  Mode mode_ = Mode::kUnfenced;
  ha::LockGrant fence_;
  bool CacheUsable();
  void NoteRevision(int64_t revision);
  void Remember(absl::string_view key, std::optional<std::string> value);
  void Drop(absl::string_view key);
  void Forget();
  std::shared_ptr<const LeaseWindow> window_;
  std::map<std::string, std::optional<std::string>, std::less<>> cache_;
  size_t cache_bytes_ = 0;
  int64_t cached_reads_ = 0;
  // Watched reads.
  std::shared_ptr<const WatchHealth> health_;
  bool watched_ = false;
  uint64_t cache_epoch_ = 0;
  int64_t watched_revision_ = 0;  // The highest revision the watch delivered.
  std::atomic<int64_t> awaited_revision_{0};
  std::atomic<int64_t> last_write_revision_{0};
};

}  // namespace bulwark::etcd

#endif  // BULWARK_SERVER_ETCD_ETCD_STORAGE_H_
