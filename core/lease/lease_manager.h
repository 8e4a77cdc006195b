// Leases: every secret an engine hands out with a TTL is registered here, stored behind the
// barrier, revoked when its TTL runs out (on the Env's timers), and can be renewed, looked up
// and revoked early (Vault's expiration manager, vault/expiration.go, and sys/leases/*).
//
// Storage: one JSON record per lease at "<storage_prefix><lease_id>" (default "sys/expire/id/",
// Vault's layout). Lease ids are "<mount path><request path>/<24 base62>", e.g.
// "database/creds/ro/AbC...". The record holds the secret's internal data (what the engine needs
// to revoke it), never the secret handed to the client.
//
// Revocation failures (the plugin or the database is down) are never dropped: the lease stays
// stored and is retried with exponential backoff, revoke_retry_base * 2^attempt, capped at
// revoke_retry_max, forever. After `irrevocable_after` attempts the lease is reported as
// irrevocable (Vault stops there; this manager keeps trying at the cap).
//
// Single-threaded: call it from the Env's event loop; callbacks run there, never inline.
#ifndef BULWARK_CORE_LEASE_LEASE_MANAGER_H_
#define BULWARK_CORE_LEASE_LEASE_MANAGER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/env/env.h"
#include "base/log/log.h"
#include "base/storage/storage.h"

namespace bulwark::lease {

// Vault's defaults: 32 days for both the default and the maximum TTL (vault/expiration.go).
inline constexpr absl::Duration kDefaultLeaseTtl = absl::Hours(768);
inline constexpr absl::Duration kDefaultMaxLeaseTtl = absl::Hours(768);
// Characters of the random suffix of a lease id (Vault's base62.Random(24)).
inline constexpr size_t kLeaseIdSuffixChars = 24;
// Most leases held at once; Register refuses more (kResourceExhausted).
inline constexpr size_t kLeasesDefaultMax = 1 << 20;
// Largest internal data stored with a lease.
inline constexpr size_t kInternalDataBytesMax = 64 * 1024;

struct LeaseEntry {
  std::string lease_id;
  std::string mount_path;  // Normalised: "database/".
  std::string path;        // The request path below the mount: "creds/ro".
  std::string internal_data_json;
  absl::Time issue_time = absl::UnixEpoch();
  absl::Time expire_time = absl::UnixEpoch();
  absl::Time last_renewal_time = absl::InfinitePast();  // InfinitePast: never renewed.
  // The secret's own terms as the engine gave them (0: the manager's defaults).
  absl::Duration ttl = absl::ZeroDuration();
  absl::Duration max_ttl = absl::ZeroDuration();
  bool renewable = true;
  int revoke_attempts = 0;  // Failed revocations so far.
};

// An engine that issued leases: the manager calls it to revoke and renew them. Calls come from
// the event loop; `done` may run later, on the loop.
class LeaseBackend {
 public:
  virtual ~LeaseBackend() = default;
  // Revokes the secret (e.g. drops the database user). OK when it is gone (already gone too).
  virtual void RevokeLease(const LeaseEntry& lease,
                           absl::AnyInvocable<void(absl::Status)> done) = 0;
  // Extends the secret to `ttl` from now; `ttl` already respects the lease's maximum.
  virtual void RenewLease(const LeaseEntry& lease, absl::Duration ttl,
                          absl::AnyInvocable<void(absl::Status)> done) = 0;
};

// Finds the backend serving `mount_path`, or null (unmounted, not loaded yet).
using BackendResolver = std::function<LeaseBackend*(absl::string_view mount_path)>;

struct LeaseOptions {
  absl::Duration default_ttl = kDefaultLeaseTtl;
  absl::Duration max_ttl = kDefaultMaxLeaseTtl;
  // Vault's revokeRetryBase and maxRevokeAttempts.
  absl::Duration revoke_retry_base = absl::Seconds(10);
  absl::Duration revoke_retry_max = absl::Minutes(10);
  int irrevocable_after = 6;
  size_t leases_max = kLeasesDefaultMax;
  std::string storage_prefix = "sys/expire/id/";
};

// What sys/leases/lookup shows.
struct LeaseView {
  std::string lease_id;
  absl::Time issue_time;
  absl::Time expire_time;
  absl::Time last_renewal_time;  // InfinitePast: never renewed.
  absl::Duration ttl;            // Left until expiry, at least zero.
  bool renewable = false;
  bool irrevocable = false;  // Revocation failed irrevocable_after times (still retried).
};

class LeaseManager {
 public:
  // `storage` is the barrier (the manager writes under options.storage_prefix). The references
  // must outlive the manager. The manager holds no leases until Restore.
  LeaseManager(Env& env, Storage& storage, BackendResolver resolver, LogSink& log,
               LeaseOptions options = {});
  ~LeaseManager();
  LeaseManager(const LeaseManager&) = delete;
  LeaseManager& operator=(const LeaseManager&) = delete;

  // Loads every stored lease and schedules its expiry (a lease already past it is revoked at
  // once). Call after unseal and on becoming active. Replaces whatever was held. Errors: the
  // storage's; kDataLoss for a record that does not decode (it is skipped and logged, the
  // others load; the first such error is returned).
  absl::Status Restore();
  // Cancels every timer and forgets the leases held in memory (they stay stored): seal and
  // step-down. Revocations in flight finish but their results are not acted upon.
  void Stop();
  bool running() const { return running_; }

  // Registers a secret issued by the mount at `mount_path` for request path `path` (below the
  // mount). `ttl` / `max_ttl` 0 mean the defaults; the effective TTL is capped by the maximum.
  // Durable when it returns. Errors: kFailedPrecondition when not running; kInvalidArgument for
  // oversized internal data; kResourceExhausted at leases_max; the storage's.
  absl::StatusOr<LeaseEntry> Register(absl::string_view mount_path, absl::string_view path,
                                      std::string internal_data_json, absl::Duration ttl,
                                      absl::Duration max_ttl, bool renewable = true);

  // Extends the lease by `increment` from now (0: its own TTL), capped at issue + max TTL.
  // Errors: kInvalidArgument "lease not found" / "lease is not renewable" / "past the max TTL,
  // cannot renew"; the backend's error (the lease is unchanged).
  void Renew(absl::string_view lease_id, absl::Duration increment,
             absl::AnyInvocable<void(absl::StatusOr<LeaseView>)> done);

  // Revokes the lease now through its backend. On failure the lease stays and is retried with
  // backoff, and the error is returned. kInvalidArgument for an unknown lease.
  void Revoke(absl::string_view lease_id, absl::AnyInvocable<void(absl::Status)> done);

  // Revokes every lease whose id starts with `prefix` (one at a time, in id order). Returns the
  // first error; the failed leases stay and are retried.
  void RevokePrefix(absl::string_view prefix, absl::AnyInvocable<void(absl::Status)> done);

  // kInvalidArgument "lease not found" for an unknown id.
  absl::StatusOr<LeaseView> Lookup(absl::string_view lease_id) const;
  // Lease ids starting with `prefix`, sorted.
  std::vector<std::string> List(absl::string_view prefix) const;
  size_t size() const { return leases_.size(); }
  const LeaseOptions& options() const { return options_; }

 private:
  struct Held {
    LeaseEntry entry;
    uint64_t timer = 0;  // 0: none.
    bool revoking = false;
    std::vector<absl::AnyInvocable<void(absl::Status)>> waiters;
  };

  absl::Duration MaxTtlFor(const LeaseEntry& e) const;
  LeaseView ViewOf(const LeaseEntry& e) const;
  absl::Status Persist(const LeaseEntry& e);
  void Schedule(Held& h, absl::Duration delay);
  void StartRevoke(const std::string& lease_id);
  void FinishRevoke(const std::string& lease_id, uint64_t epoch, absl::Status status);
  void RevokeNext(std::vector<std::string> ids, size_t i, absl::Status first,
                  absl::AnyInvocable<void(absl::Status)> done);
  void Log(LogLevel level, std::string message,
           std::vector<std::pair<std::string, std::string>> fields = {});

  Env& env_;
  Storage& storage_;
  BackendResolver resolver_;
  LogSink& log_;
  const LeaseOptions options_;
  bool running_ = false;
  uint64_t epoch_ = 0;  // Bumped by Stop and Restore: older callbacks are ignored.
  std::map<std::string, Held, std::less<>> leases_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Encoding of a stored lease, exposed for tests.
std::string EncodeLease(const LeaseEntry& e);
absl::StatusOr<LeaseEntry> DecodeLease(absl::string_view json);

}  // namespace bulwark::lease

#endif  // BULWARK_CORE_LEASE_LEASE_MANAGER_H_
