// Node wiring and the order of events around seal, unseal, role changes and shutdown.
#include "core/node/node.h"

#include <utility>

#include "absl/strings/str_cat.h"
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
  // Signature validity windows are wall time; "warn" policy warnings go to the node's log.
  options.catalog.clock = &env.clock;
  options.catalog.log = &log;
  std::unique_ptr<Node> node(new Node(env, physical, runners, metrics, log, std::move(options)));
  ASSIGN_OR_RETURN(node->barrier_, Barrier::Open(physical, env.random, env.failpoints));
  node->tokens_ = std::make_unique<token::TokenStore>(*node->barrier_, env.clock, env.random);
  node->wrapping_ = std::make_unique<wrapping::WrappingStore>(*node->barrier_, env.clock,
                                                              env.random, env.executor);
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
  if (role_ != Role::kActive) {
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
  if (role_ != Role::kActive) {
    env_.executor.Post(std::move(done));
    return;
  }
  const std::vector<mount::MountEntry> entries = mounts_->List();
  auto left = std::make_shared<size_t>(entries.size() + 1);
  auto shared_done = std::make_shared<absl::AnyInvocable<void()>>(std::move(done));
  // Each mount's callback can run from a task posted before the node was destroyed (the
  // simulator drains a stopped node's posted work; a posix loop may outlive the node), so it
  // checks liveness before it touches the node.
  std::weak_ptr<bool> alive = alive_;
  auto one = [this, alive, left, shared_done](const std::string& path, absl::Status s) {
    if (alive.expired()) return;
    if (!s.ok()) {
      Log(LogLevel::kWarn, "mount did not come up", {{"mount", path}, {"error", s.ToString()}});
    }
    if (--*left == 0) (*shared_done)();
  };
  for (const mount::MountEntry& e : entries) {
    lifecycle_->Mount(e, [one, path = e.path](absl::Status s) mutable { one(path, s); });
  }
  one("", absl::OkStatus());
}

void Node::StopPlugins(lifecycle::TerminationEvent why, absl::AnyInvocable<void()> done) {
  if (lifecycle_ == nullptr) {
    env_.executor.Post(std::move(done));
    return;
  }
  lifecycle_->TerminateAll(why, std::move(done));
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
  });
}

void Node::StepDown(absl::AnyInvocable<void()> done) {
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
  role_ = Role::kActive;
  // Sealed, sealing or shut down: plugins come up at the next unseal, not now (starting them
  // during a seal would leave them running after it).
  if (barrier_->sealed() || sealing_ || shut_down_) {
    env_.executor.Post([done = std::move(done)]() mutable { done(absl::OkStatus()); });
    return;
  }
  LoadAndMountAll([done = std::move(done)]() mutable { done(absl::OkStatus()); });
}

void Node::Shutdown(absl::AnyInvocable<void()> done) {
  shut_down_ = true;
  StopPlugins(lifecycle::TerminationEvent::kShutdown, std::move(done));
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
  auto remove = [this, alive, normalized, done = std::move(done)](absl::Status) mutable {
    if (alive.expired()) return;
    done(mounts_->Disable(normalized).status());
  };
  if (lifecycle_->IsMounted(normalized)) {
    lifecycle_->Unmount(normalized, lifecycle::TerminationEvent::kUnmount, std::move(remove));
  } else {
    remove(absl::OkStatus());
  }
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
  lifecycle_->HandleRequest(route->entry->path, std::move(request), std::move(done));
}

}  // namespace bulwark::node
