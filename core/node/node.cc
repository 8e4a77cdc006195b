// Node wiring and the order of events around seal, unseal, role changes and shutdown.
#include "core/node/node.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/status/status_macros.h"
#include "faultinject/failpoint.h"

namespace bulwark::node {

Node::Node(Env& env, Storage& physical, lifecycle::RunnerFactory& runners,
           metrics::Registry& metrics, LogSink& log, NodeOptions options)
    : env_(env),
      physical_(physical),
      runners_(runners),
      metrics_(metrics),
      log_(log),
      options_(std::move(options)),
      role_(options_.role) {}

Node::~Node() { *alive_ = false; }

absl::StatusOr<std::unique_ptr<Node>> Node::Open(Env& env, Storage& physical,
                                                 lifecycle::RunnerFactory& runners,
                                                 metrics::Registry& metrics, LogSink& log,
                                                 NodeOptions options) {
  // The catalog's failpoint sites belong to this node, like the barrier's.
  options.catalog.failpoints = env.failpoints;
  // The database engine is built in, as Vault's is.
  bool has_database = false;
  for (const catalog::BuiltinPlugin& b : options.catalog.builtins) {
    has_database |=
        b.type == catalog::PluginType::kSecret && b.name == database::kDatabaseEngineName;
  }
  if (!has_database) {
    options.catalog.builtins.push_back(
        {catalog::PluginType::kSecret, database::kDatabaseEngineName, kDatabaseEngineVersion});
  }
  // Signature validity windows are wall time; "warn" policy warnings go to the node's log.
  options.catalog.clock = &env.clock;
  options.catalog.log = &log;
  std::unique_ptr<Node> node(new Node(env, physical, runners, metrics, log, std::move(options)));
  ASSIGN_OR_RETURN(node->barrier_, Barrier::Open(physical, env.random, env.failpoints));
  node->tokens_ = std::make_unique<token::TokenStore>(*node->barrier_, env.clock, env.random);
  node->wrapping_ = std::make_unique<wrapping::WrappingStore>(*node->barrier_, env.clock,
                                                              env.random, env.executor);
  Node* n = node.get();
  node->leases_ = std::make_unique<lease::LeaseManager>(
      env, *node->barrier_,
      [n](absl::string_view mount) -> lease::LeaseBackend* { return n->DatabaseEngineAt(mount); },
      log, node->options_.leases);
  node->rollback_ = std::make_unique<rollback::RollbackManager>(
      env, [n](absl::AnyInvocable<void()> done) { n->RunRollback(std::move(done)); },
      node->options_.rollback_period);
  node->audit_ = std::make_unique<audit::AuditBroker>(env, *node->barrier_, log);
  return node;
}

void Node::Log(LogLevel level, std::string message,
               std::vector<std::pair<std::string, std::string>> fields) {
  LogRecord r;
  r.level = level;
  r.time = env_.clock.WallNow();
  r.source = "node";
  r.message = std::move(message);
  r.fields = std::move(fields);
  log_.Write(r);
}

absl::Status Node::CheckServing() const {
  if (shut_down_) return absl::FailedPreconditionError("node is shut down");
  if ((barrier_->sealed() || sealing_) &&
      !BW_PLANTED_BUG_IN(env_.failpoints, "bug.node.admit_while_sealed")) {
    return absl::FailedPreconditionError("Vault is sealed");
  }
  if (role_ == Role::kStandby) {
    return absl::FailedPreconditionError("node is a standby; send requests to the active node");
  }
  if (lifecycle_ == nullptr || mounts_ == nullptr) {
    return absl::FailedPreconditionError("node is still loading its mounts");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<crypto::SecureBuffer>> Node::Initialize(int shares, int threshold) {
  if (shut_down_) return absl::FailedPreconditionError("node is shut down");
  return barrier_->Initialize(shares, threshold);
}

absl::StatusOr<InitResult> Node::InitializeWithRootToken(int shares, int threshold,
                                                         absl::string_view root_token_id) {
  if (!root_token_id.empty()) RETURN_IF_ERROR(token::ValidateCustomId(root_token_id));
  InitResult result;
  ASSIGN_OR_RETURN(result.shares, Initialize(shares, threshold));
  // Vault creates the root token with the barrier open and seals it again before replying.
  absl::Status opened = absl::OkStatus();
  for (int i = 0; i < threshold && opened.ok() && barrier_->sealed(); ++i) {
    opened = barrier_->Unseal(result.shares[i].view()).status();
  }
  absl::StatusOr<token::CreatedToken> root =
      opened.ok() ? tokens_->CreateRoot(root_token_id) : opened;
  barrier_->Seal();
  if (!root.ok()) {
    Log(LogLevel::kError, "initialized, but the root token could not be stored",
        {{"error", root.status().ToString()}});
    return root.status();
  }
  result.root_token = std::move(root->token);
  return result;
}

void Node::Unseal(absl::string_view share,
                  absl::AnyInvocable<void(absl::StatusOr<SealStatus>)> done) {
  if (shut_down_ || sealing_) {
    env_.executor.Post([done = std::move(done), shut = shut_down_]() mutable {
      done(absl::FailedPreconditionError(shut ? "node is shut down" : "node is sealing"));
    });
    return;
  }
  const bool was_sealed = barrier_->sealed();
  absl::StatusOr<SealStatus> status = barrier_->Unseal(share);
  if (!status.ok() || status->sealed || !was_sealed) {
    env_.executor.Post([done = std::move(done), status]() mutable { done(status); });
    return;
  }
  Log(LogLevel::kInfo, "unsealed");
  // The audit devices come back before any request can be served, so none goes unaudited.
  if (absl::Status a = audit_->Load(); !a.ok()) {
    Log(LogLevel::kError, "could not load the audit table", {{"error", a.ToString()}});
  }
  // Responses wrapped before the last seal whose expiry passed meanwhile: their timers died
  // with the seal (or the process).
  if (absl::StatusOr<size_t> swept = wrapping_->SweepExpired(); !swept.ok()) {
    Log(LogLevel::kWarn, "could not remove expired wrapped responses",
        {{"error", swept.status().ToString()}});
  } else if (*swept > 0) {
    Log(LogLevel::kInfo, "removed expired wrapped responses", {{"count", absl::StrCat(*swept)}});
  }
  std::weak_ptr<bool> alive = alive_;
  LoadAndMountAll([this, alive, done = std::move(done)]() mutable {
    if (alive.expired()) return;
    done(barrier_->seal_status());
  });
}

void Node::LoadAndMountAll(absl::AnyInvocable<void()> done) {
  absl::Status loaded = absl::OkStatus();
  if (catalog_ == nullptr) {
    absl::StatusOr<std::unique_ptr<catalog::Catalog>> c =
        catalog::Catalog::Open(*barrier_, env_.fs, options_.catalog);
    if (c.ok()) {
      catalog_ = std::move(*c);
    } else {
      loaded = c.status();
    }
  } else {
    loaded = catalog_->Reload();
  }
  if (loaded.ok()) {
    if (mounts_ == nullptr) {
      absl::StatusOr<std::unique_ptr<mount::MountTable>> t =
          mount::MountTable::Open(*barrier_, env_.random, {.failpoints = env_.failpoints});
      if (t.ok()) {
        mounts_ = std::move(*t);
      } else {
        loaded = t.status();
      }
    } else {
      loaded = mounts_->Reload();
    }
  }
  if (!loaded.ok()) {
    // Storage behind the barrier is unreadable: stay unsealed but serve nothing from plugins;
    // the error is in the log and every request reports "still loading".
    Log(LogLevel::kError, "could not load the catalog or the mount table",
        {{"error", loaded.ToString()}});
    env_.executor.Post(std::move(done));
    return;
  }
  if (lifecycle_ == nullptr) {
    lifecycle::SystemViewInfo info = options_.system_view;
    lifecycle_ = std::make_unique<lifecycle::LifecycleManager>(
        env_, *catalog_, runners_,
        [this, info](const mount::MountEntry& e) {
          return std::make_unique<lifecycle::StorageHostServices>(
              *barrier_,
              BW_PLANTED_BUG_IN(env_.failpoints, "bug.node.shared_host_storage_prefix")
                  ? std::string("logical/shared/")
                  : absl::StrCat("logical/", e.uuid, "/"),
              info);
        },
        metrics_, log_, options_.lifecycle);
  }
  lifecycle_->Resume();
  if (role_ == Role::kStandby) {
    env_.executor.Post(std::move(done));
    return;
  }
  const std::vector<mount::MountEntry> entries = mounts_->List();
  auto left = std::make_shared<size_t>(entries.size() + 1);
  // Each mount's callback can run from a task posted before the node was destroyed (the
  // simulator drains a stopped node's posted work; a posix loop may outlive the node), so it
  // checks liveness before it touches the node.
  std::weak_ptr<bool> alive = alive_;
  auto shared_done =
      std::make_shared<absl::AnyInvocable<void()>>([this, alive, done = std::move(done)]() mutable {
        if (alive.expired()) return;
        if (role_ == Role::kActive && !barrier_->sealed() && !sealing_) StartActiveServices();
        done();
      });
  auto one = [this, alive, left, shared_done](const std::string& path, absl::Status s) {
    if (alive.expired()) return;
    if (!s.ok()) {
      Log(LogLevel::kWarn, "mount did not come up", {{"mount", path}, {"error", s.ToString()}});
    }
    if (--*left == 0) (*shared_done)();
  };
  for (const mount::MountEntry& e : entries) {
    if (IsDatabaseMount(e)) {
      StartEngine(e);
      one(e.path, absl::OkStatus());
      continue;
    }
    lifecycle_->Mount(e, [one, path = e.path](absl::Status s) mutable { one(path, s); });
  }
  one("", absl::OkStatus());
}

bool Node::IsDatabaseMount(const mount::MountEntry& e) {
  return e.type == catalog::PluginType::kSecret && e.plugin_name == database::kDatabaseEngineName;
}

void Node::StartEngine(const mount::MountEntry& e) {
  if (engines_.count(e.path) > 0) return;
  Engine engine;
  // The same slice of the barrier a plugin's host storage gets.
  engine.view =
      std::make_unique<database::PrefixStorage>(*barrier_, absl::StrCat("logical/", e.uuid, "/"));
  engine.engine = std::make_unique<database::DatabaseEngine>(env_, *engine.view, e, *lifecycle_,
                                                             *leases_, log_);
  engines_.emplace(e.path, std::move(engine));
  // The rollback ticker runs while some mount keeps WALs (an idle node schedules nothing).
  if (leases_->running()) rollback_->Start();
}

database::DatabaseEngine* Node::DatabaseEngineAt(absl::string_view path) {
  auto it = engines_.find(path);
  return it == engines_.end() ? nullptr : it->second.engine.get();
}

void Node::StartActiveServices() {
  // Leases come back (and those that expired meanwhile are revoked), and the rollback manager
  // starts: both on the active node only, between unseal and seal (Vault's postUnseal).
  if (absl::Status s = leases_->Restore(); !s.ok()) {
    Log(LogLevel::kError, "could not restore every lease", {{"error", s.ToString()}});
  }
  if (!engines_.empty()) rollback_->Start();
}

void Node::StopActiveServices() {
  rollback_->Stop();
  leases_->Stop();
}

void Node::RunRollback(absl::AnyInvocable<void()> done) {
  std::vector<std::string> paths;
  for (const auto& [path, e] : engines_) paths.push_back(path);
  auto left = std::make_shared<size_t>(paths.size() + 1);
  auto shared_done = std::make_shared<absl::AnyInvocable<void()>>(std::move(done));
  std::weak_ptr<bool> alive = alive_;
  auto one = [left, shared_done]() {
    if (--*left == 0) (*shared_done)();
  };
  for (const std::string& path : paths) {
    engines_.at(path).engine->Rollback(
        /*immediate=*/false, [this, alive, path, one](absl::Status s) mutable {
          if (alive.expired()) return;
          if (!s.ok()) {
            Log(LogLevel::kWarn, "rollback failed; retried at the next pass",
                {{"mount", path}, {"error", s.ToString()}});
          }
          one();
        });
  }
  one();
}

void Node::StopPlugins(lifecycle::TerminationEvent why, absl::AnyInvocable<void()> done) {
  StopActiveServices();
  if (lifecycle_ == nullptr) {
    engines_.clear();
    env_.executor.Post(std::move(done));
    return;
  }
  // Every database engine's connections are plugin instances: they stop with the rest.
  std::weak_ptr<bool> alive = alive_;
  lifecycle_->TerminateAll(why, [this, alive, done = std::move(done)]() mutable {
    if (!alive.expired()) engines_.clear();
    done();
  });
}

void Node::Seal(absl::AnyInvocable<void()> done) {
  if (barrier_->sealed() || sealing_) {
    env_.executor.Post(std::move(done));
    return;
  }
  sealing_ = true;
  Log(LogLevel::kInfo, "sealing: stopping every plugin");
  std::weak_ptr<bool> alive = alive_;
  StopPlugins(lifecycle::TerminationEvent::kSeal, [this, alive, done = std::move(done)]() mutable {
    if (alive.expired()) return;
    barrier_->Seal();
    sealing_ = false;
    Log(LogLevel::kInfo, "sealed");
    done();
    // After `done`, so that the seal request's own response entry is written; then the salts go.
    if (!alive.expired()) audit_->Unload();
  });
}

void Node::StepDown(absl::AnyInvocable<void()> done) {
  ++role_change_;  // Also overtakes a BecomeActive still stopping a perf standby's plugins.
  if (role_ == Role::kStandby) {
    env_.executor.Post(std::move(done));
    return;
  }
  role_ = Role::kStandby;
  Log(LogLevel::kInfo, "stepping down: stopping every plugin");
  StopPlugins(lifecycle::TerminationEvent::kStepDown, std::move(done));
}

void Node::BecomeActive(absl::AnyInvocable<void(absl::Status)> done) {
  if (role_ == Role::kActive) {
    env_.executor.Post([done = std::move(done)]() mutable { done(absl::OkStatus()); });
    return;
  }
  if (role_ == Role::kPerfStandby) {
    // Its plugins ran over read-only storage: stop them, then bring them up as the active's.
    role_ = Role::kStandby;
    Log(LogLevel::kInfo, "performance standby becoming active: restarting every plugin");
    std::weak_ptr<bool> alive = alive_;
    const uint64_t change = ++role_change_;
    StopPlugins(lifecycle::TerminationEvent::kStepDown, [this, alive, change,
                                                         done = std::move(done)]() mutable {
      if (alive.expired()) return;
      // A step-down or another role change came while the plugins stopped (the lock
      // was lost): becoming active now would run plugins without the lock.
      if (change != role_change_) {
        done(absl::AbortedError("becoming active was overtaken by a later role change"));
        return;
      }
      BecomeActive(std::move(done));
    });
    return;
  }
  role_ = Role::kActive;
  // Sealed, sealing or shut down: plugins come up at the next unseal, not now (starting them
  // during a seal would leave them running after it).
  if (barrier_->sealed() || sealing_ || shut_down_) {
    env_.executor.Post([done = std::move(done)]() mutable { done(absl::OkStatus()); });
    return;
  }
  // Another node may have rotated the barrier key while this one stood by (a plain standby does
  // not watch the keyring): new entries are sealed under the newest term. RotateBarrierKey reads
  // it again too, so a failure here only delays the new term.
  if (absl::Status s = barrier_->ReloadKeyring(); !s.ok()) {
    Log(LogLevel::kWarn, "becoming active: could not reload the keyring",
        {{"error", s.ToString()}});
  }
  LoadAndMountAll([done = std::move(done)]() mutable { done(absl::OkStatus()); });
}

void Node::BecomePerfStandby(absl::AnyInvocable<void()> done) {
  if (role_ != Role::kStandby || barrier_->sealed() || sealing_ || shut_down_) {
    env_.executor.Post(std::move(done));
    return;
  }
  ++role_change_;
  role_ = Role::kPerfStandby;
  Log(LogLevel::kInfo, "performance standby: loading mounts and starting plugins");
  LoadAndMountAll(std::move(done));
}

void Node::Invalidate(absl::string_view key) {
  if (role_ != Role::kPerfStandby || catalog_ == nullptr || mounts_ == nullptr ||
      lifecycle_ == nullptr) {
    return;
  }
  if (key == mount::MountTableOptions{}.storage_key) {
    const std::vector<mount::MountEntry> before = mounts_->List();
    if (absl::Status s = mounts_->Reload(); !s.ok()) {
      Log(LogLevel::kWarn, "invalidation: could not reload the mount table",
          {{"error", s.ToString()}});
      return;
    }
    const std::vector<mount::MountEntry> after = mounts_->List();
    auto has = [](const std::vector<mount::MountEntry>& in, const mount::MountEntry& e) {
      return std::any_of(in.begin(), in.end(), [&](const mount::MountEntry& x) {
        return x.path == e.path && x.uuid == e.uuid;
      });
    };
    std::weak_ptr<bool> alive = alive_;
    for (const mount::MountEntry& e : before) {
      if (has(after, e)) continue;
      engines_.erase(e.path);
      if (!IsDatabaseMount(e)) {
        lifecycle_->Unmount(e.path, lifecycle::TerminationEvent::kUnmount, [](absl::Status) {});
      }
    }
    for (const mount::MountEntry& e : after) {
      if (has(before, e)) continue;
      if (IsDatabaseMount(e)) {
        StartEngine(e);
        continue;
      }
      lifecycle_->Mount(e, [this, alive, path = e.path](absl::Status s) {
        if (alive.expired() || s.ok()) return;
        Log(LogLevel::kWarn, "invalidation: mount did not come up",
            {{"mount", path}, {"error", s.ToString()}});
      });
    }
    Log(LogLevel::kInfo, "invalidation: reloaded the mount table",
        {{"mounts", absl::StrCat(after.size())}});
    return;
  }
  if (absl::StartsWith(key, options_.catalog.storage_prefix)) {
    if (absl::Status s = catalog_->Reload(); !s.ok()) {
      Log(LogLevel::kWarn, "invalidation: could not reload the catalog", {{"error", s.ToString()}});
      return;
    }
    Log(LogLevel::kInfo, "invalidation: reloaded the plugin catalog");
    return;
  }
  // A mount's own data, "logical/<uuid>/<key>": InvalidateKey to the plugin that owns it, with
  // the key as the plugin sees it (Vault's invalidation of a backend's storage view).
  absl::string_view rest = key;
  if (!absl::ConsumePrefix(&rest, "logical/")) return;
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) return;
  const absl::string_view uuid = rest.substr(0, slash);
  for (const mount::MountEntry& e : mounts_->List()) {
    if (e.uuid != uuid) continue;
    if (!IsDatabaseMount(e)) lifecycle_->InvalidateKey(e.path, rest.substr(slash + 1));
    return;
  }
}

void Node::ReloadKeyring() {
  if (role_ != Role::kPerfStandby || barrier_->sealed()) return;
  if (absl::Status s = barrier_->ReloadKeyring(); !s.ok()) {
    Log(LogLevel::kWarn, "invalidation: could not reload the keyring", {{"error", s.ToString()}});
    return;
  }
  Log(LogLevel::kInfo, "invalidation: reloaded the keyring",
      {{"term", absl::StrCat(barrier_->active_term())}});
}

void Node::Shutdown(absl::AnyInvocable<void()> done) {
  shut_down_ = true;
  StopPlugins(lifecycle::TerminationEvent::kShutdown, std::move(done));
}

absl::StatusOr<uint32_t> Node::RotateBarrierKey() {
  RETURN_IF_ERROR(CheckServing());
  // The new keyring is built from the stored one, never from what this node read at its unseal:
  // on a cluster another node may have rotated since, and a keyring written over its term would
  // leave every entry sealed under that term unreadable. (The active node is the only writer,
  // and its keyring write is fenced, so nothing can slip in between.)
  RETURN_IF_ERROR(barrier_->ReloadKeyring());
  return barrier_->Rotate();
}

absl::StatusOr<catalog::CatalogEntryView> Node::RegisterPlugin(const catalog::RegisterRequest& r) {
  RETURN_IF_ERROR(CheckServing());
  return catalog_->Register(r);
}

absl::Status Node::DeregisterPlugin(catalog::PluginType type, absl::string_view name,
                                    absl::string_view version) {
  RETURN_IF_ERROR(CheckServing());
  return catalog_->Delete(type, name, version);
}

void Node::EnableMount(const mount::EnableRequest& request,
                       absl::AnyInvocable<void(absl::StatusOr<mount::MountEntry>)> done) {
  absl::Status serving = CheckServing();
  absl::StatusOr<mount::MountEntry> entry =
      serving.ok() ? mounts_->Enable(request, *catalog_) : serving;
  if (!entry.ok()) {
    env_.executor.Post([done = std::move(done), entry]() mutable { done(entry.status()); });
    return;
  }
  if (IsDatabaseMount(*entry)) {
    StartEngine(*entry);
    env_.executor.Post([done = std::move(done), entry]() mutable { done(entry); });
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  lifecycle_->Mount(*entry, [this, alive, entry = *entry,
                             done = std::move(done)](absl::Status s) mutable {
    if (alive.expired()) return;
    if (s.ok()) return done(entry);
    // Roll back: unload what started and remove the mount from the table.
    lifecycle_->Unmount(entry.path, lifecycle::TerminationEvent::kUnmount,
                        [this, alive, entry, s, done = std::move(done)](absl::Status) mutable {
                          if (alive.expired()) return;
                          absl::StatusOr<mount::MountEntry> removed = mounts_->Disable(entry.path);
                          if (!removed.ok()) {
                            Log(LogLevel::kError, "could not remove a mount that failed to start",
                                {{"mount", entry.path}, {"error", removed.status().ToString()}});
                          }
                          done(s);
                        });
  });
}

void Node::DisableMount(absl::string_view path, absl::AnyInvocable<void(absl::Status)> done) {
  absl::Status serving = CheckServing();
  const mount::MountEntry* entry = serving.ok() ? mounts_->Find(path) : nullptr;
  if (!serving.ok() || entry == nullptr) {
    env_.executor.Post([done = std::move(done), serving, p = std::string(path)]() mutable {
      done(serving.ok() ? absl::NotFoundError(absl::StrCat("no mount at \"", p, "\"")) : serving);
    });
    return;
  }
  // Vault unloads the backend (Cleanup, stop) before it removes the mount table entry, so a
  // crash in between leaves the mount listed rather than a plugin running for nothing.
  const std::string normalized = entry->path;
  std::weak_ptr<bool> alive = alive_;
  auto shared_done = std::make_shared<absl::AnyInvocable<void(absl::Status)>>(std::move(done));
  auto remove = [this, alive, normalized, shared_done](absl::Status) {
    if (alive.expired()) return;
    (*shared_done)(mounts_->Disable(normalized).status());
  };
  auto unload = [this, alive, normalized, remove]() {
    if (alive.expired()) return;
    if (database::DatabaseEngine* engine = DatabaseEngineAt(normalized)) {
      // Vault runs one more rollback pass (the age rule kept), then Cleanup closes every
      // connection.
      engine->Rollback(/*immediate=*/false, [this, alive, normalized, engine,
                                             remove](absl::Status) {
        if (alive.expired()) return;
        engine->Cleanup(lifecycle::TerminationEvent::kUnmount, [this, alive, normalized, remove]() {
          if (alive.expired()) return;
          engines_.erase(normalized);
          if (engines_.empty()) rollback_->Stop();
          remove(absl::OkStatus());
        });
      });
      return;
    }
    if (lifecycle_->IsMounted(normalized)) {
      lifecycle_->Unmount(normalized, lifecycle::TerminationEvent::kUnmount, remove);
    } else {
      remove(absl::OkStatus());
    }
  };
  // Every lease of the mount is revoked first; if one cannot be, the unmount fails and the mount
  // stays (Vault alike); the lease keeps being retried.
  leases_->RevokePrefix(normalized, [this, alive, normalized, unload, shared_done](absl::Status s) {
    if (alive.expired()) return;
    if (s.ok()) return unload();
    Log(LogLevel::kWarn, "unmount refused: a lease could not be revoked",
        {{"mount", normalized}, {"error", s.ToString()}});
    (*shared_done)(Annotate(s, absl::StrCat("failed to revoke leases of \"", normalized, "\"")));
  });
}

void Node::TuneMount(absl::string_view path, const mount::TuneRequest& request,
                     absl::AnyInvocable<void(absl::StatusOr<mount::MountEntry>)> done) {
  absl::Status serving = CheckServing();
  absl::StatusOr<mount::MountEntry> before =
      serving.ok() ? (mounts_->Find(path) != nullptr
                          ? absl::StatusOr<mount::MountEntry>(*mounts_->Find(path))
                          : absl::NotFoundError(absl::StrCat("no mount at \"", path, "\"")))
                   : serving;
  absl::StatusOr<mount::MountEntry> after =
      before.ok() ? mounts_->Tune(path, request, *catalog_) : before;
  if (!after.ok() || after->plugin_version == before->plugin_version) {
    env_.executor.Post([done = std::move(done), after]() mutable { done(after); });
    return;
  }
  // A new version: unload the old instance and bring the mount up on the new one.
  std::weak_ptr<bool> alive = alive_;
  lifecycle_->Unmount(after->path, lifecycle::TerminationEvent::kReload,
                      [this, alive, entry = *after, done = std::move(done)](absl::Status) mutable {
                        if (alive.expired()) return;
                        lifecycle_->Mount(entry,
                                          [entry, done = std::move(done)](absl::Status s) mutable {
                                            if (s.ok()) return done(entry);
                                            done(s);
                                          });
                      });
}

void Node::ReloadPlugins(std::optional<std::string> plugin, std::vector<std::string> mounts,
                         absl::AnyInvocable<void(absl::Status)> done) {
  absl::Status serving = CheckServing();
  if (!serving.ok()) {
    env_.executor.Post([done = std::move(done), serving]() mutable { done(serving); });
    return;
  }
  lifecycle_->Reload(std::move(plugin), std::move(mounts), std::move(done));
}

std::vector<mount::MountEntry> Node::ListMounts() const {
  return mounts_ == nullptr ? std::vector<mount::MountEntry>() : mounts_->List();
}

absl::StatusOr<token::TokenEntry> Node::LookupToken(absl::string_view token) {
  RETURN_IF_ERROR(CheckServing());
  return tokens_->Lookup(token);
}

absl::StatusOr<token::CreatedToken> Node::CreateToken(absl::string_view parent,
                                                      const token::CreateRequest& request) {
  RETURN_IF_ERROR(CheckServing());
  return tokens_->CreateChild(parent, request);
}

absl::Status Node::RevokeToken(absl::string_view token) {
  RETURN_IF_ERROR(CheckServing());
  return tokens_->Revoke(token);
}

absl::StatusOr<wrapping::WrapResult> Node::WrapResponse(wrapping::WrapRequest request) {
  RETURN_IF_ERROR(CheckServing());
  return wrapping_->Wrap(std::move(request));
}

absl::StatusOr<std::string> Node::UnwrapResponse(absl::string_view token) {
  RETURN_IF_ERROR(CheckServing());
  return wrapping_->Unwrap(token);
}

void Node::Handle(absl::string_view path, absl::string_view operation, std::string data_json,
                  absl::AnyInvocable<void(absl::StatusOr<lifecycle::Reply>)> done) {
  absl::Status serving = CheckServing();
  std::optional<mount::Route> route;
  if (serving.ok()) {
    route = mounts_->Match(path);
    if (!route.has_value()) {
      serving = absl::NotFoundError(absl::StrCat("no handler for route \"",
                                                 path.substr(0, mount::kMountPathBytesMax),
                                                 "\": no mount serves this path"));
    }
  }
  if (!serving.ok()) {
    env_.executor.Post([done = std::move(done), serving]() mutable { done(serving); });
    return;
  }
  pb::Request request;
  request.set_id(absl::StrCat("req-", ++request_seq_));
  request.set_operation(std::string(operation));
  request.set_path(route->remaining);
  request.set_data(std::move(data_json));
  request.set_mount_point(route->entry->path);
  request.set_mount_type(route->entry->plugin_name);
  request.set_mount_accessor(route->entry->accessor);
  if (database::DatabaseEngine* engine = DatabaseEngineAt(route->entry->path)) {
    engine->HandleRequest(request, std::move(done));
    return;
  }
  lifecycle_->HandleRequest(route->entry->path, std::move(request), std::move(done));
}

void Node::RenewLease(absl::string_view lease_id, absl::Duration increment,
                      absl::AnyInvocable<void(absl::StatusOr<lease::LeaseView>)> done) {
  absl::Status serving = CheckServing();
  if (!serving.ok()) {
    env_.executor.Post([done = std::move(done), serving]() mutable { done(serving); });
    return;
  }
  leases_->Renew(lease_id, increment, std::move(done));
}

void Node::RevokeLease(absl::string_view lease_id, absl::AnyInvocable<void(absl::Status)> done) {
  absl::Status serving = CheckServing();
  if (!serving.ok()) {
    env_.executor.Post([done = std::move(done), serving]() mutable { done(serving); });
    return;
  }
  leases_->Revoke(lease_id, std::move(done));
}

void Node::RevokeLeasePrefix(absl::string_view prefix,
                             absl::AnyInvocable<void(absl::Status)> done) {
  absl::Status serving = CheckServing();
  if (!serving.ok()) {
    env_.executor.Post([done = std::move(done), serving]() mutable { done(serving); });
    return;
  }
  leases_->RevokePrefix(prefix, std::move(done));
}

absl::StatusOr<lease::LeaseView> Node::LookupLease(absl::string_view lease_id) {
  RETURN_IF_ERROR(CheckServing());
  return leases_->Lookup(lease_id);
}

absl::StatusOr<std::vector<std::string>> Node::ListLeases(absl::string_view prefix) {
  RETURN_IF_ERROR(CheckServing());
  return leases_->List(prefix);
}

}  // namespace bulwark::node
