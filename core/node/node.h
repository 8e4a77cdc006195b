// A node: the composition root that wires the barrier, the plugin catalog, the mount table and
// the lifecycle manager on one Env, and reacts to seal, unseal, role changes and shutdown. The
// HTTP server and the simulator drive a Node; neither reaches its parts another way.
//
// Single-threaded: call it from the Env's event loop. Callbacks run there too.
#ifndef BULWARK_CORE_NODE_NODE_H_
#define BULWARK_CORE_NODE_NODE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/crypto/secure_buffer.h"
#include "base/env/env.h"
#include "base/log/log.h"
#include "base/metrics/metrics.h"
#include "base/storage/storage.h"
#include "core/audit/audit.h"
#include "core/barrier/barrier.h"
#include "core/catalog/catalog.h"
#include "core/database/database_engine.h"
#include "core/database/prefix_storage.h"
#include "core/lease/lease_manager.h"
#include "core/lifecycle/host_services.h"
#include "core/lifecycle/lifecycle.h"
#include "core/lifecycle/runner.h"
#include "core/mount/mount_table.h"
#include "core/rollback/rollback_manager.h"
#include "core/token/token_store.h"
#include "core/wrapping/wrapping_store.h"

namespace bulwark::node {

// HA role (docs/ha.md): the active node serves everything and runs plugins; a standby serves
// nothing and runs none (the server forwards or redirects); a performance standby runs its own
// plugins and serves requests over read-only storage (a write fails with ReadOnlyError, and the
// server re-sends the request to the active node), with no lease expiry or rollback of its own.
enum class Role { kActive, kStandby, kPerfStandby };

struct NodeOptions {
  catalog::CatalogOptions catalog;
  lifecycle::LifecycleOptions lifecycle;
  lifecycle::SystemViewInfo system_view;
  Role role = Role::kActive;
  lease::LeaseOptions leases;
  absl::Duration rollback_period = rollback::kRollbackPeriod;
};

// The built-in secrets engine "database" (core/database) is in every node's catalog at this
// version; mounts of it are served by the core, not by a plugin process.
inline constexpr char kDatabaseEngineVersion[] = "v1.0.0+builtin";

// What InitializeWithRootToken returns: the key shares and the root token, each shown once.
struct InitResult {
  std::vector<crypto::SecureBuffer> shares;
  std::string root_token;
};

class Node {
 public:
  // `physical` is the node's storage under the barrier (FileStorage in production, on a
  // SimFileSystem in the simulator). Every reference must outlive the node.
  static absl::StatusOr<std::unique_ptr<Node>> Open(Env& env, Storage& physical,
                                                    lifecycle::RunnerFactory& runners,
                                                    metrics::Registry& metrics, LogSink& log,
                                                    NodeOptions options);
  ~Node();

  // ---- Seal state ---------------------------------------------------------------------------
  // Creates the root key and returns the key shares (see Barrier::Initialize). The node stays
  // sealed.
  absl::StatusOr<std::vector<crypto::SecureBuffer>> Initialize(int shares, int threshold);
  // Initialize plus Vault's root token: with the barrier opened briefly by the new shares, a
  // root token (random, or `root_token_id` if given) is stored, and the barrier sealed again.
  // Errors: as Initialize; kInvalidArgument for a bad root_token_id (checked first, before
  // anything is written); if storing the token fails the barrier stays initialized without a
  // root token (the storage must then be wiped; Vault alike) and the error is returned.
  absl::StatusOr<InitResult> InitializeWithRootToken(int shares, int threshold,
                                                     absl::string_view root_token_id = "");
  // Adds one key share. When the threshold is reached the barrier opens, the catalog and the
  // mount table load, and every mount is brought up (plugins start); `done` runs after that,
  // with the seal status. A mount whose plugin fails to start is logged and stays loaded: its
  // requests fail until the plugin works (Vault unseals anyway).
  void Unseal(absl::string_view share, absl::AnyInvocable<void(absl::StatusOr<SealStatus>)> done);
  // Stops every plugin (Cleanup, Shutdown, grace, kill), then seals. Requests fail from the
  // moment Seal is called.
  void Seal(absl::AnyInvocable<void()> done);
  // Discards the unseal shares collected so far (sys/unseal with reset).
  void ResetUnsealProgress() { barrier_->ResetUnsealProgress(); }
  bool sealed() const { return barrier_->sealed() || sealing_; }
  SealStatus seal_status() const { return barrier_->seal_status(); }

  // ---- Roles and shutdown -------------------------------------------------------------------
  // Leaving the active role is a termination event: every plugin stops. Becoming active brings
  // the mounts up again.
  void StepDown(absl::AnyInvocable<void()> done);
  // From a performance standby, its plugins stop first (an unload), then come up as the
  // active node's. The keyring is read again first (another node may have rotated it).
  void BecomeActive(absl::AnyInvocable<void(absl::Status)> done);
  // A standby that is unsealed becomes a performance standby: catalog and mount table loaded
  // from (read-only) storage, its mounts and plugins up. Does nothing in any other state.
  void BecomePerfStandby(absl::AnyInvocable<void()> done);
  // A performance standby saw `key` change in storage (an etcd watch; docs/ha.md,
  // "Invalidation"): reloads the catalog, the mount table (mounting new mounts, unmounting
  // removed ones) or forwards InvalidateKey to the plugin that owns a key under logical/<uuid>/.
  void Invalidate(absl::string_view key);
  // A performance standby saw the keyring change (another node rotated the barrier key): reads
  // it again. Logs "invalidation: reloaded the keyring".
  void ReloadKeyring();
  Role role() const { return role_; }
  // Graceful shutdown: stops every plugin; the node refuses everything afterwards.
  void Shutdown(absl::AnyInvocable<void()> done);

  // ---- sys/ operations (require unsealed and active) ----------------------------------------
  // sys/rotate: a new barrier key term (Barrier::Rotate), added to the keyring read again from
  // storage first (another node may have rotated it). On a performance standby the keyring
  // write fails with the read-only error.
  absl::StatusOr<uint32_t> RotateBarrierKey();
  absl::StatusOr<catalog::CatalogEntryView> RegisterPlugin(const catalog::RegisterRequest& r);
  absl::Status DeregisterPlugin(catalog::PluginType type, absl::string_view name,
                                absl::string_view version);
  // Persists the mount, then brings its plugin up; if that fails the mount is removed again and
  // the error returned (Vault refuses to enable a mount whose plugin does not start).
  void EnableMount(const mount::EnableRequest& request,
                   absl::AnyInvocable<void(absl::StatusOr<mount::MountEntry>)> done);
  void DisableMount(absl::string_view path, absl::AnyInvocable<void(absl::Status)> done);
  // A new plugin version restarts the mount's plugin.
  void TuneMount(absl::string_view path, const mount::TuneRequest& request,
                 absl::AnyInvocable<void(absl::StatusOr<mount::MountEntry>)> done);
  void ReloadPlugins(std::optional<std::string> plugin, std::vector<std::string> mounts,
                     absl::AnyInvocable<void(absl::Status)> done);
  std::vector<mount::MountEntry> ListMounts() const;

  // ---- Tokens (require unsealed and active, like every sys/ operation) ----------------------
  // See token::TokenStore. Every valid token may do everything: there are no policies.
  absl::StatusOr<token::TokenEntry> LookupToken(absl::string_view token);
  absl::StatusOr<token::CreatedToken> CreateToken(absl::string_view parent,
                                                  const token::CreateRequest& request);
  absl::Status RevokeToken(absl::string_view token);

  // ---- Response wrapping (require unsealed and active) ---------------------------------------
  // See wrapping::WrappingStore: a JWT-formatted, single-use token for `request`'s data, and
  // the stored reply it unlocks once. Unwrap refusals satisfy wrapping::IsInvalidWrappingToken.
  absl::StatusOr<wrapping::WrapResult> WrapResponse(wrapping::WrapRequest request);
  absl::StatusOr<std::string> UnwrapResponse(absl::string_view token);

  // ---- Leases (require unsealed and active): sys/leases/* ----------------------------------
  // See lease::LeaseManager for the rules and errors.
  void RenewLease(absl::string_view lease_id, absl::Duration increment,
                  absl::AnyInvocable<void(absl::StatusOr<lease::LeaseView>)> done);
  void RevokeLease(absl::string_view lease_id, absl::AnyInvocable<void(absl::Status)> done);
  void RevokeLeasePrefix(absl::string_view prefix, absl::AnyInvocable<void(absl::Status)> done);
  absl::StatusOr<lease::LeaseView> LookupLease(absl::string_view lease_id);
  absl::StatusOr<std::vector<std::string>> ListLeases(absl::string_view prefix);

  // One rollback pass over every mount now, as the rollback manager's minute tick runs it.
  void RunRollback(absl::AnyInvocable<void()> done);

  // ---- Data path ----------------------------------------------------------------------------
  // Routes `path` (e.g. "secret/foo") to the mount with the longest matching prefix and runs the
  // logical request there. Errors: kFailedPrecondition while sealed, sealing, standby or shut
  // down; kNotFound for a path no mount serves; the plugin's errors otherwise.
  void Handle(absl::string_view path, absl::string_view operation, std::string data_json,
              absl::AnyInvocable<void(absl::StatusOr<lifecycle::Reply>)> done);

  lifecycle::LifecycleManager* lifecycle() { return lifecycle_.get(); }
  catalog::Catalog* catalog() { return catalog_.get(); }
  mount::MountTable* mounts() { return mounts_.get(); }
  Barrier& barrier() { return *barrier_; }
  lease::LeaseManager& leases() { return *leases_; }
  rollback::RollbackManager& rollback() { return *rollback_; }
  // The database engine serving the mount at `path` (normalised), or null.
  database::DatabaseEngine* DatabaseEngineAt(absl::string_view path);
  // The audit devices: loaded at unseal, forgotten at seal (core/audit/audit.h).
  audit::AuditBroker& audit() { return *audit_; }

 private:
  Node(Env& env, Storage& physical, lifecycle::RunnerFactory& runners, metrics::Registry& metrics,
       LogSink& log, NodeOptions options);
  absl::Status CheckServing() const;
  // After unseal / becoming active: load catalog and mounts, bring every mount up.
  void LoadAndMountAll(absl::AnyInvocable<void()> done);
  void StopPlugins(lifecycle::TerminationEvent why, absl::AnyInvocable<void()> done);
  // Built-in engines: mounts of "database" are served here instead of by a plugin.
  static bool IsDatabaseMount(const mount::MountEntry& e);
  void StartEngine(const mount::MountEntry& e);
  // After the mounts are up on the active node: leases and the rollback ticker start.
  void StartActiveServices();
  void StopActiveServices();
  void Log(LogLevel level, std::string message,
           std::vector<std::pair<std::string, std::string>> fields = {});

  Env& env_;
  Storage& physical_;
  lifecycle::RunnerFactory& runners_;
  metrics::Registry& metrics_;
  LogSink& log_;
  NodeOptions options_;
  std::unique_ptr<Barrier> barrier_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<mount::MountTable> mounts_;
  std::unique_ptr<lifecycle::LifecycleManager> lifecycle_;
  std::unique_ptr<token::TokenStore> tokens_;
  std::unique_ptr<wrapping::WrappingStore> wrapping_;
  std::unique_ptr<lease::LeaseManager> leases_;
  std::unique_ptr<rollback::RollbackManager> rollback_;
  struct Engine {
    std::unique_ptr<database::PrefixStorage> view;
    std::unique_ptr<database::DatabaseEngine> engine;
  };
  std::map<std::string, Engine, std::less<>> engines_;  // By mount path.
  std::unique_ptr<audit::AuditBroker> audit_;
  Role role_;
  // Counts role changes, so that a transition finishing asynchronously can tell it was overtaken.
  uint64_t role_change_ = 0;
  bool sealing_ = false;
  bool shut_down_ = false;
  uint64_t request_seq_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bulwark::node

#endif  // BULWARK_CORE_NODE_NODE_H_
