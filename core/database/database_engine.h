// The database secrets engine, built into the core as Vault's is (builtin/logical/database):
// connection configs, roles, dynamic credentials under leases, and root rotation with its WAL
// and rollback. It drives dbplugin v5 plugins from the catalog through the lifecycle manager:
// one plugin instance per connection config (multiplexed in one process when the plugin
// supports it). Facts and sources: docs/database.md and the reference it cites.
//
// Storage (the mount's view of the barrier): "config/<name>", "role/<name>", "wal/<id>".
//
// Every place Vault closes a plugin instance closes one here, as a lifecycle termination event:
//   config write (the replaced instance, or the new one when Initialize failed),
//   config delete, reset, reload             -> kConnectionChange
//   rotate-root (the instance used, always)  -> kRootRotation
//   WAL rollback (ClearConnection, and the instance opened with the WAL's new password)
//                                            -> kWalRollback
//   a call that finds the plugin dead        -> kPluginShutdown (CloseIfShutdown)
//   Cleanup (unmount)                        -> the caller's event
//
// Single-threaded: call it from the Env's event loop. Callbacks run there.
#ifndef BULWARK_CORE_DATABASE_DATABASE_ENGINE_H_
#define BULWARK_CORE_DATABASE_DATABASE_ENGINE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/env/env.h"
#include "base/log/log.h"
#include "base/storage/storage.h"
#include "core/lease/lease_manager.h"
#include "core/lifecycle/lifecycle.h"
#include "core/mount/mount_table.h"
#include "proto/vault/backend.pb.h"

namespace bulwark::database {

// The built-in mount type ("plugin" name of the mount) that is this engine.
inline constexpr char kDatabaseEngineName[] = "database";
// Vault's minRootCredRollbackAge: a rotate-root WAL is rolled back once it is this old.
inline constexpr absl::Duration kRootRollbackMinAge = absl::Minutes(1);
// Added to a credential's TTL for the database's own expiry (VALID UNTIL), as Vault does.
inline constexpr absl::Duration kExpirationSlack = absl::Seconds(5);
// Vault's default password: 20 characters of [a-zA-Z0-9-], at least one of each class.
inline constexpr size_t kPasswordChars = 20;
// Longest config or role name.
inline constexpr size_t kNameBytesMax = 256;
// The WAL kind of a root rotation (Vault's rotateRootWALKey).
inline constexpr char kRotateRootWalKind[] = "rotateRootWALKey";

struct DatabaseEngineOptions {
  absl::Duration rollback_min_age = kRootRollbackMinAge;
  // After a successful rotate-root has closed its instance (Vault's rule), open the next one at
  // once in the background (logging in with the new password), so the next request finds it
  // ready. Off: the next request opens it, as Vault does.
  bool reopen_after_rotation = true;
};

class DatabaseEngine final : public lease::LeaseBackend {
 public:
  // `storage` is the mount's view (keys "config/...", ...). All references must outlive the
  // engine.
  DatabaseEngine(Env& env, Storage& storage, mount::MountEntry mount,
                 lifecycle::LifecycleManager& lifecycle, lease::LeaseManager& leases, LogSink& log,
                 DatabaseEngineOptions options = {});
  ~DatabaseEngine() override;
  DatabaseEngine(const DatabaseEngine&) = delete;
  DatabaseEngine& operator=(const DatabaseEngine&) = delete;

  // Serves one logical request below the mount (request.path() like "config/pg", operation
  // "read", "list", "update"/"create", "delete"). Errors carry Vault's codes: a logical error
  // response is kInvalidArgument (400), a bare error kInternal (500) with Vault's multierror
  // text; kNotFound for an unknown path, kUnimplemented for an operation a path lacks. A read
  // of something missing and a write with nothing to say answer no response (404 / 204).
  void HandleRequest(const pb::Request& request, lifecycle::ResponseCallback done);

  // One rollback pass over "wal/" (the rollback manager's RollbackOperation): every entry older
  // than rollback_min_age (every entry with `immediate`) is rolled back per Vault's rules and
  // deleted when that succeeds; the first error is returned and failed entries stay. A pass
  // asked for while one runs reports OK at once. "Older" is by the entry's wall-clock
  // created_at, as in Vault, or by how long this engine has known the entry on its monotonic
  // clock, whichever is more: a wall clock set back (or a node whose clock is behind) cannot
  // hold a half-done rotation's WAL "too young" for longer than rollback_min_age.
  void Rollback(bool immediate, absl::AnyInvocable<void(absl::Status)> done);

  // Closes every connection (Vault's Cleanup), each as termination event `why`, then stops the
  // database plugin processes the lifecycle manager kept idle (LifecycleManager::KeepIdle).
  void Cleanup(lifecycle::TerminationEvent why, absl::AnyInvocable<void()> done);

  // lease::LeaseBackend: DeleteUser and UpdateUser(expiration) for leased credentials.
  void RevokeLease(const lease::LeaseEntry& lease,
                   absl::AnyInvocable<void(absl::Status)> done) override;
  void RenewLease(const lease::LeaseEntry& lease, absl::Duration ttl,
                  absl::AnyInvocable<void(absl::Status)> done) override;

  const mount::MountEntry& mount() const { return mount_; }
  // The lifecycle key of the cached instance of connection `name`, or "" (tests).
  std::string CachedInstance(const std::string& name) const;

 private:
  struct Config;
  struct Role;
  struct Connection {
    std::string key;  // The lifecycle's database instance key.
    bool rotating = false;
    std::vector<absl::AnyInvocable<void()>> after_rotation;
  };
  using KeyCallback = absl::AnyInvocable<void(absl::StatusOr<std::string>)>;

  // Paths.
  void WriteConfig(const std::string& name, const std::string& data_json, bool create,
                   lifecycle::ResponseCallback done);
  void ReadConfig(const std::string& name, lifecycle::ResponseCallback done);
  void DeleteConfig(const std::string& name, lifecycle::ResponseCallback done);
  void Reset(const std::string& name, lifecycle::ResponseCallback done);
  void ReloadPlugin(const std::string& plugin_name, lifecycle::ResponseCallback done);
  void WriteRole(const std::string& name, const std::string& data_json,
                 lifecycle::ResponseCallback done);
  void ReadRole(const std::string& name, lifecycle::ResponseCallback done);
  void Creds(const std::string& role, const pb::Request& request, lifecycle::ResponseCallback done);
  void RotateRoot(const std::string& name, lifecycle::ResponseCallback done);
  void List(const std::string& prefix, lifecycle::ResponseCallback done);

  // The connection cache (Vault's GetConnection, ClearConnection, ClearConnectionId,
  // CloseIfShutdown).
  void GetConnection(const std::string& name, KeyCallback done);
  // Starts an instance for `config` with `details` and sends Initialize; `done` gets the key
  // and the details the plugin returned. A failed Initialize closes the new instance (`why`).
  void OpenInstance(
      const Config& config, const std::string& details_json, bool verify,
      lifecycle::TerminationEvent why,
      absl::AnyInvocable<void(absl::StatusOr<std::pair<std::string, std::string>>)> done);
  void ClearConnection(const std::string& name, lifecycle::TerminationEvent why,
                       absl::AnyInvocable<void()> done);
  void CloseInstance(const std::string& key, lifecycle::TerminationEvent why,
                     absl::AnyInvocable<void()> done);
  // Vault's CloseIfShutdown: a call that found the plugin gone closes and uncaches it.
  void CloseIfShutdown(const std::string& name, const std::string& key, const absl::Status& s);
  void Call(const std::string& key, absl::string_view method, std::string request,
            absl::AnyInvocable<void(absl::StatusOr<std::string>)> done);

  // Rollback of one rotate-root WAL (Vault's walRollback).
  void RollbackRootWal(const std::string& wal_json, absl::AnyInvocable<void(absl::Status)> done);
  void RollbackNext(std::vector<std::string> keys, size_t i, bool immediate, absl::Status first,
                    absl::AnyInvocable<void(absl::Status)> done);

  absl::StatusOr<std::optional<Config>> LoadConfig(const std::string& name);
  absl::Status StoreConfig(const std::string& name, const Config& config);
  absl::StatusOr<std::optional<Role>> LoadRole(const std::string& name);
  std::string NewPassword();
  std::string NewId();
  // Microseconds from `start` to now, by the Env's monotonic clock (for debug timings).
  std::string MicrosSince(absl::Duration start) const;
  void Log(LogLevel level, std::string message,
           std::vector<std::pair<std::string, std::string>> fields = {});

  Env& env_;
  Storage& storage_;
  const mount::MountEntry mount_;
  lifecycle::LifecycleManager& lifecycle_;
  lease::LeaseManager& leases_;
  LogSink& log_;
  const DatabaseEngineOptions options_;
  std::map<std::string, Connection> connections_;               // By config name.
  std::map<std::string, std::vector<KeyCallback>> connecting_;  // By config name.
  // By config name: bumped whenever the connection's cached instance is cleared or replaced
  // (with the event that did it), so that an open in flight at that moment is known to be stale
  // when it completes: it is closed, and its waiters look again.
  struct Changes {
    uint64_t generation = 0;
    lifecycle::TerminationEvent last = lifecycle::TerminationEvent::kConnectionChange;
  };
  std::map<std::string, Changes> changes_;
  void Changed(const std::string& name, lifecycle::TerminationEvent why);
  bool rolling_back_ = false;
  // The caller of the pass in flight (Rollback). It is answered when the pass ends, or by the
  // destructor when the engine goes away first (a seal or step-down in the middle of a pass
  // drops the pass's callbacks): a pass that never answers would stop the node's rollback
  // manager from ever starting another, and a half-done rotation's WAL would never be rolled
  // back.
  absl::AnyInvocable<void(absl::Status)> rollback_done_;
  // When a rollback pass first saw each WAL entry (monotonic clock), by storage key.
  std::map<std::string, absl::Duration> wal_first_seen_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Whether `name` is Vault's GenericNameRegex: \w(([\w-.]+)?\w)?, at most kNameBytesMax bytes.
bool IsValidName(absl::string_view name);

}  // namespace bulwark::database

#endif  // BULWARK_CORE_DATABASE_DATABASE_ENGINE_H_
