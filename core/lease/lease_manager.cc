// The lease store, its timers and the revocation retry loop.
#include "core/lease/lease_manager.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status/status_macros.h"
#include "faultinject/failpoint.h"

namespace bulwark::lease {
namespace {

using Json = nlohmann::json;

constexpr char kBase62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int64_t Nanos(absl::Time t) { return t == absl::InfinitePast() ? INT64_MIN : absl::ToUnixNanos(t); }
absl::Time FromNanos(int64_t n) {
  return n == INT64_MIN ? absl::InfinitePast() : absl::FromUnixNanos(n);
}

absl::Status NotFound(absl::string_view id) {
  // Vault answers an unknown lease with a 400 "lease not found".
  return absl::InvalidArgumentError(absl::StrCat("lease not found: \"", id, "\""));
}

}  // namespace

std::string EncodeLease(const LeaseEntry& e) {
  Json j = {{"lease_id", e.lease_id},
            {"mount", e.mount_path},
            {"path", e.path},
            {"internal_data", e.internal_data_json},
            {"issue_time_ns", Nanos(e.issue_time)},
            {"expire_time_ns", Nanos(e.expire_time)},
            {"last_renewal_time_ns", Nanos(e.last_renewal_time)},
            {"ttl_ns", absl::ToInt64Nanoseconds(e.ttl)},
            {"max_ttl_ns", absl::ToInt64Nanoseconds(e.max_ttl)},
            {"renewable", e.renewable},
            {"revoke_attempts", e.revoke_attempts}};
  return j.dump();
}

absl::StatusOr<LeaseEntry> DecodeLease(absl::string_view json) {
  Json j = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::DataLossError("lease record is not a JSON object");
  LeaseEntry e;
  try {
    e.lease_id = j.at("lease_id").get<std::string>();
    e.mount_path = j.at("mount").get<std::string>();
    e.path = j.at("path").get<std::string>();
    e.internal_data_json = j.at("internal_data").get<std::string>();
    e.issue_time = FromNanos(j.at("issue_time_ns").get<int64_t>());
    e.expire_time = FromNanos(j.at("expire_time_ns").get<int64_t>());
    e.last_renewal_time = FromNanos(j.at("last_renewal_time_ns").get<int64_t>());
    e.ttl = absl::Nanoseconds(j.at("ttl_ns").get<int64_t>());
    e.max_ttl = absl::Nanoseconds(j.at("max_ttl_ns").get<int64_t>());
    e.renewable = j.at("renewable").get<bool>();
    e.revoke_attempts = j.at("revoke_attempts").get<int>();
  } catch (const Json::exception& ex) {
    return absl::DataLossError(absl::StrCat("lease record is malformed: ", ex.what()));
  }
  if (e.lease_id.empty() || !absl::StartsWith(e.lease_id, e.mount_path)) {
    return absl::DataLossError("lease record has an id outside its mount");
  }
  return e;
}

LeaseManager::LeaseManager(Env& env, Storage& storage, BackendResolver resolver, LogSink& log,
                           LeaseOptions options)
    : env_(env),
      storage_(storage),
      resolver_(std::move(resolver)),
      log_(log),
      options_(std::move(options)) {}

LeaseManager::~LeaseManager() {
  *alive_ = false;
  Stop();
}

void LeaseManager::Log(LogLevel level, std::string message,
                       std::vector<std::pair<std::string, std::string>> fields) {
  LogRecord r;
  r.level = level;
  r.time = env_.clock.WallNow();
  r.source = "lease";
  r.message = std::move(message);
  r.fields = std::move(fields);
  log_.Write(r);
}

absl::Status LeaseManager::Restore() {
  Stop();
  ++epoch_;
  ASSIGN_OR_RETURN(std::vector<std::string> keys, storage_.List(options_.storage_prefix));
  absl::Status first = absl::OkStatus();
  const absl::Time now = env_.clock.WallNow();
  for (const std::string& key : keys) {
    ASSIGN_OR_RETURN(std::optional<std::string> raw, storage_.Get(key));
    if (!raw.has_value()) continue;
    absl::StatusOr<LeaseEntry> e = DecodeLease(*raw);
    if (!e.ok()) {
      Log(LogLevel::kError, "stored lease does not decode; skipped",
          {{"key", key}, {"error", e.status().ToString()}});
      if (first.ok()) first = Annotate(e.status(), key);
      continue;
    }
    Held& h = leases_[e->lease_id];
    h.entry = std::move(*e);
    Schedule(h, std::max(absl::ZeroDuration(), h.entry.expire_time - now));
  }
  running_ = true;
  Log(LogLevel::kInfo, "leases restored", {{"count", absl::StrCat(leases_.size())}});
  return first;
}

void LeaseManager::Stop() {
  for (auto& [id, h] : leases_) {
    if (h.timer != 0) env_.executor.Cancel(h.timer);
    for (auto& w : h.waiters) {
      env_.executor.Post([w = std::move(w)]() mutable {
        w(absl::UnavailableError("leases are not served now (sealed or standby)"));
      });
    }
  }
  leases_.clear();
  running_ = false;
  ++epoch_;
}

absl::Duration LeaseManager::MaxTtlFor(const LeaseEntry& e) const {
  return e.max_ttl > absl::ZeroDuration() ? std::min(e.max_ttl, options_.max_ttl)
                                          : options_.max_ttl;
}

LeaseView LeaseManager::ViewOf(const LeaseEntry& e) const {
  LeaseView v;
  v.lease_id = e.lease_id;
  v.issue_time = e.issue_time;
  v.expire_time = e.expire_time;
  v.last_renewal_time = e.last_renewal_time;
  v.ttl = std::max(absl::ZeroDuration(), e.expire_time - env_.clock.WallNow());
  v.renewable = e.renewable;
  v.irrevocable = e.revoke_attempts >= options_.irrevocable_after;
  return v;
}

absl::Status LeaseManager::Persist(const LeaseEntry& e) {
  return storage_.Put(absl::StrCat(options_.storage_prefix, e.lease_id), EncodeLease(e));
}

void LeaseManager::Schedule(Held& h, absl::Duration delay) {
  if (h.timer != 0) env_.executor.Cancel(h.timer);
  // A planted bug for the simulator's drill: leases end at half their time.
  if (BW_PLANTED_BUG_IN(env_.failpoints, "bug.lease.expire_early")) delay /= 2;
  std::weak_ptr<bool> alive = alive_;
  h.timer = env_.executor.PostAfter(delay, [this, alive, id = h.entry.lease_id, e = epoch_]() {
    if (alive.expired() || e != epoch_) return;
    auto it = leases_.find(id);
    if (it == leases_.end()) return;
    it->second.timer = 0;
    StartRevoke(id);
  });
}

absl::StatusOr<LeaseEntry> LeaseManager::Register(absl::string_view mount_path,
                                                  absl::string_view path,
                                                  std::string internal_data_json,
                                                  absl::Duration ttl, absl::Duration max_ttl,
                                                  bool renewable) {
  if (!running_) return absl::FailedPreconditionError("leases are not served now");
  if (internal_data_json.size() > kInternalDataBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("lease internal data is over ", kInternalDataBytesMax, " bytes"));
  }
  if (leases_.size() >= options_.leases_max) {
    return absl::ResourceExhaustedError(
        absl::StrCat("at most ", options_.leases_max, " leases may exist at once"));
  }
  LeaseEntry e;
  std::string suffix;
  for (size_t i = 0; i < kLeaseIdSuffixChars; ++i) suffix += kBase62[env_.random.Uniform(62)];
  e.mount_path = std::string(mount_path);
  e.path = std::string(path);
  e.lease_id = absl::StrCat(mount_path, path, "/", suffix);
  e.internal_data_json = std::move(internal_data_json);
  e.ttl = ttl;
  e.max_ttl = max_ttl;
  e.renewable = renewable;
  e.issue_time = env_.clock.WallNow();
  const absl::Duration effective =
      std::min(ttl > absl::ZeroDuration() ? ttl : options_.default_ttl, MaxTtlFor(e));
  e.expire_time = e.issue_time + effective;
  RETURN_IF_ERROR(Persist(e));
  Held& h = leases_[e.lease_id];
  h.entry = e;
  Schedule(h, effective);
  return e;
}

void LeaseManager::Renew(absl::string_view lease_id, absl::Duration increment,
                         absl::AnyInvocable<void(absl::StatusOr<LeaseView>)> done) {
  auto fail = [this, &done](absl::Status s) {
    env_.executor.Post([done = std::move(done), s]() mutable { done(s); });
  };
  if (!running_) return fail(absl::FailedPreconditionError("leases are not served now"));
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return fail(NotFound(lease_id));
  const LeaseEntry& e = it->second.entry;
  if (!e.renewable) return fail(absl::InvalidArgumentError("lease is not renewable"));
  if (it->second.revoking) return fail(absl::InvalidArgumentError("lease is being revoked"));
  const absl::Time now = env_.clock.WallNow();
  const absl::Time max_expire = e.issue_time + MaxTtlFor(e);
  if (now >= max_expire) {
    return fail(absl::InvalidArgumentError("past the max TTL, cannot renew"));
  }
  absl::Duration ttl = increment > absl::ZeroDuration()
                           ? increment
                           : (e.ttl > absl::ZeroDuration() ? e.ttl : options_.default_ttl);
  ttl = std::min(ttl, max_expire - now);
  LeaseBackend* backend = resolver_(e.mount_path);
  if (backend == nullptr) {
    return fail(absl::UnavailableError(
        absl::StrCat("no engine serves mount \"", e.mount_path, "\" to renew the lease")));
  }
  std::weak_ptr<bool> alive = alive_;
  backend->RenewLease(e, ttl,
                      [this, alive, id = std::string(lease_id), ttl, epoch = epoch_,
                       done = std::move(done)](absl::Status s) mutable {
                        if (alive.expired()) return;
                        if (epoch != epoch_) {
                          return done(absl::UnavailableError("leases were stopped meanwhile"));
                        }
                        if (!s.ok()) return done(s);
                        auto it = leases_.find(id);
                        if (it == leases_.end()) return done(NotFound(id));
                        LeaseEntry updated = it->second.entry;
                        const absl::Time now = env_.clock.WallNow();
                        updated.last_renewal_time = now;
                        updated.expire_time = now + ttl;
                        if (absl::Status p = Persist(updated); !p.ok()) return done(p);
                        it->second.entry = updated;
                        if (!it->second.revoking) Schedule(it->second, ttl);
                        LeaseView view = ViewOf(updated);
                        view.ttl = ttl;  // What was granted (the clock may have moved on).
                        done(view);
                      });
}

void LeaseManager::Revoke(absl::string_view lease_id, absl::AnyInvocable<void(absl::Status)> done) {
  if (!running_) {
    env_.executor.Post([done = std::move(done)]() mutable {
      done(absl::FailedPreconditionError("leases are not served now"));
    });
    return;
  }
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) {
    env_.executor.Post([done = std::move(done), s = NotFound(lease_id)]() mutable { done(s); });
    return;
  }
  it->second.waiters.push_back(std::move(done));
  if (it->second.timer != 0) {
    env_.executor.Cancel(it->second.timer);
    it->second.timer = 0;
  }
  if (!it->second.revoking) StartRevoke(it->first);
}

void LeaseManager::StartRevoke(const std::string& lease_id) {
  Held& h = leases_.at(lease_id);
  h.revoking = true;
  LeaseBackend* backend = resolver_(h.entry.mount_path);
  const uint64_t epoch = epoch_;
  if (backend == nullptr) {
    env_.executor.Post(
        [this, alive = std::weak_ptr<bool>(alive_), lease_id, epoch, mount = h.entry.mount_path]() {
          if (alive.expired()) return;
          FinishRevoke(lease_id, epoch,
                       absl::UnavailableError(absl::StrCat("no engine serves mount \"", mount,
                                                           "\" to revoke the lease")));
        });
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  backend->RevokeLease(h.entry, [this, alive, lease_id, epoch](absl::Status s) {
    if (alive.expired()) return;
    FinishRevoke(lease_id, epoch, s);
  });
}

void LeaseManager::FinishRevoke(const std::string& lease_id, uint64_t epoch, absl::Status status) {
  if (epoch != epoch_) return;  // Stopped meanwhile: the stored lease is retried after Restore.
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return;
  Held& h = it->second;
  h.revoking = false;
  if (status.ok()) {
    // A planted bug for the drills: the lease is forgotten in memory but stays stored.
    if (!BW_PLANTED_BUG_IN(env_.failpoints, "bug.lease.keep_revoked_record")) {
      status = storage_.Delete(absl::StrCat(options_.storage_prefix, lease_id));
    }
  }
  if (status.ok()) {
    std::vector<absl::AnyInvocable<void(absl::Status)>> waiters = std::move(h.waiters);
    if (h.timer != 0) env_.executor.Cancel(h.timer);
    leases_.erase(it);
    Log(LogLevel::kInfo, "lease revoked", {{"lease_id", lease_id}});
    for (auto& w : waiters) w(absl::OkStatus());
    return;
  }
  // A planted bug for the simulator's drill: a failed revocation is dropped instead of retried,
  // so its user stays in the database for good.
  if (BW_PLANTED_BUG_IN(env_.failpoints, "bug.lease.drop_failed_revocation")) {
    (void)storage_.Delete(absl::StrCat(options_.storage_prefix, lease_id));
    std::vector<absl::AnyInvocable<void(absl::Status)>> waiters = std::move(h.waiters);
    if (h.timer != 0) env_.executor.Cancel(h.timer);
    leases_.erase(it);
    for (auto& w : waiters) w(Annotate(status, "failed to revoke lease"));
    return;
  }
  ++h.entry.revoke_attempts;
  absl::Duration delay = options_.revoke_retry_base;
  for (int i = 1; i < h.entry.revoke_attempts && delay < options_.revoke_retry_max; ++i) delay *= 2;
  delay = std::min(delay, options_.revoke_retry_max);
  if (absl::Status p = Persist(h.entry); !p.ok()) {
    Log(LogLevel::kWarn, "could not record a failed revocation",
        {{"lease_id", lease_id}, {"error", p.ToString()}});
  }
  Log(h.entry.revoke_attempts >= options_.irrevocable_after ? LogLevel::kError : LogLevel::kWarn,
      "lease revocation failed; retrying",
      {{"lease_id", lease_id},
       {"attempts", absl::StrCat(h.entry.revoke_attempts)},
       {"retry_in", absl::FormatDuration(delay)},
       {"error", status.ToString()}});
  Schedule(h, delay);
  std::vector<absl::AnyInvocable<void(absl::Status)>> waiters = std::move(h.waiters);
  h.waiters.clear();
  for (auto& w : waiters) w(Annotate(status, "failed to revoke lease"));
}

void LeaseManager::RevokePrefix(absl::string_view prefix,
                                absl::AnyInvocable<void(absl::Status)> done) {
  std::vector<std::string> ids = List(prefix);
  if (!running_) {
    env_.executor.Post([done = std::move(done)]() mutable {
      done(absl::FailedPreconditionError("leases are not served now"));
    });
    return;
  }
  env_.executor.Post([this, alive = std::weak_ptr<bool>(alive_), ids = std::move(ids),
                      done = std::move(done)]() mutable {
    if (alive.expired()) return;
    RevokeNext(std::move(ids), 0, absl::OkStatus(), std::move(done));
  });
}

void LeaseManager::RevokeNext(std::vector<std::string> ids, size_t i, absl::Status first,
                              absl::AnyInvocable<void(absl::Status)> done) {
  while (i < ids.size() && leases_.count(ids[i]) == 0) ++i;  // Revoked meanwhile.
  if (i == ids.size()) return done(first);
  const std::string id = ids[i];
  std::weak_ptr<bool> alive = alive_;
  Revoke(id, [this, alive, ids = std::move(ids), i, first,
              done = std::move(done)](absl::Status s) mutable {
    if (alive.expired()) return;
    if (!s.ok() && first.ok()) first = s;
    RevokeNext(std::move(ids), i + 1, first, std::move(done));
  });
}

absl::StatusOr<LeaseView> LeaseManager::Lookup(absl::string_view lease_id) const {
  if (!running_) return absl::FailedPreconditionError("leases are not served now");
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return NotFound(lease_id);
  return ViewOf(it->second.entry);
}

std::vector<std::string> LeaseManager::List(absl::string_view prefix) const {
  std::vector<std::string> out;
  for (auto it = leases_.lower_bound(prefix);
       it != leases_.end() && absl::StartsWith(it->first, prefix); ++it) {
    out.push_back(it->first);
  }
  return out;
}

}  // namespace bulwark::lease
