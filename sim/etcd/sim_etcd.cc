#include "sim/etcd/sim_etcd.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace bulwark::sim::etcd {

SimEtcd::SimEtcd(SimEventLoop& loop) : loop_(loop) {}

SimEtcd::~SimEtcd() {
  for (auto& [id, lease] : leases_) {
    if (lease.timer != kNoTimer) loop_.Cancel(lease.timer);
  }
}

absl::Duration SimEtcd::Now() const { return loop_.clock().MonotonicNow(); }

void SimEtcd::SetAvailable(bool available) {
  if (available == available_) return;
  available_ = available;
  if (!available) {
    down_since_ = Now();
    return;
  }
  // Leases do not run out while the store cannot take renewals.
  const absl::Duration down = Now() - down_since_;
  for (auto& [id, lease] : leases_) {
    lease.expires += down;
    ArmExpiry(id);
  }
}

absl::Status SimEtcd::CheckAvailable(absl::string_view operation) const {
  if (available_) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("etcd (simulated): ", operation, ": the store is unavailable (no leader)"));
}

std::optional<KeyValue> SimEtcd::Get(absl::string_view key) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::pair<std::string, KeyValue>> SimEtcd::Range(absl::string_view prefix) const {
  std::vector<std::pair<std::string, KeyValue>> out;
  for (auto it = keys_.lower_bound(prefix); it != keys_.end(); ++it) {
    if (!absl::StartsWith(it->first, prefix)) break;
    out.emplace_back(it->first, it->second);
  }
  return out;
}

std::optional<std::pair<std::string, KeyValue>> SimEtcd::FirstCreated(
    absl::string_view prefix) const {
  std::optional<std::pair<std::string, KeyValue>> first;
  for (auto it = keys_.lower_bound(prefix); it != keys_.end(); ++it) {
    if (!absl::StartsWith(it->first, prefix)) break;
    if (!first.has_value() || it->second.create_revision < first->second.create_revision) {
      first.emplace(it->first, it->second);
    }
  }
  return first;
}

absl::StatusOr<int64_t> SimEtcd::Put(absl::string_view key, absl::string_view value,
                                     int64_t lease) {
  Op op;
  op.type = Op::Type::kPut;
  op.key = std::string(key);
  op.value = std::string(value);
  op.lease = lease;
  if (absl::Status s = Apply({op}); !s.ok()) return s;
  return revision_;
}

absl::StatusOr<int64_t> SimEtcd::Delete(absl::string_view key) {
  Op op;
  op.type = Op::Type::kDelete;
  op.key = std::string(key);
  if (absl::Status s = Apply({op}); !s.ok()) return s;
  return revision_;
}

absl::StatusOr<bool> SimEtcd::Txn(const std::vector<Compare>& compares,
                                  const std::vector<Op>& success, const std::vector<Op>& failure) {
  if (absl::Status s = CheckAvailable("txn"); !s.ok()) return s;
  bool held = true;
  for (const Compare& c : compares) {
    auto it = keys_.find(c.key);
    int64_t actual = 0;
    if (it != keys_.end()) {
      actual = c.target == Compare::Target::kCreateRevision ? it->second.create_revision
                                                            : it->second.mod_revision;
    }
    if (actual != c.revision) {
      held = false;
      break;
    }
  }
  if (absl::Status s = Apply(held ? success : failure); !s.ok()) return s;
  return held;
}

absl::Status SimEtcd::Apply(const std::vector<Op>& ops) {
  if (absl::Status s = CheckAvailable("write"); !s.ok()) return s;
  if (ops.empty()) return absl::OkStatus();
  // Check everything first: a transaction lands whole or not at all.
  size_t new_keys = 0;
  for (const Op& op : ops) {
    if (op.key.empty()) return absl::InvalidArgumentError("etcd (simulated): empty key");
    if (op.type == Op::Type::kPut && op.lease != 0 && leases_.count(op.lease) == 0) {
      return absl::NotFoundError(
          absl::StrCat("etcd (simulated): requested lease ", op.lease, " not found"));
    }
    if (op.type == Op::Type::kPut && keys_.count(op.key) == 0) ++new_keys;
  }
  if (keys_.size() + new_keys > kKeysMax) {
    return absl::ResourceExhaustedError(
        absl::StrCat("etcd (simulated): more than ", kKeysMax, " keys"));
  }
  ++revision_;
  std::vector<Event> events;
  for (const Op& op : ops) {
    if (op.type == Op::Type::kDelete) {
      DeleteKey(op.key, events);
      continue;
    }
    auto [it, inserted] = keys_.try_emplace(op.key);
    KeyValue& kv = it->second;
    if (inserted) kv.create_revision = revision_;
    if (kv.lease != 0 && kv.lease != op.lease) {
      if (auto l = leases_.find(kv.lease); l != leases_.end()) l->second.keys.erase(op.key);
    }
    kv.value = op.value;
    kv.mod_revision = revision_;
    kv.lease = op.lease;
    if (op.lease != 0) leases_[op.lease].keys.insert(op.key);
    events.push_back(Event{Event::Type::kPut, op.key, revision_});
  }
  Notify(events);
  return absl::OkStatus();
}

void SimEtcd::DeleteKey(const std::string& key, std::vector<Event>& events) {
  auto it = keys_.find(key);
  if (it == keys_.end()) return;
  if (it->second.lease != 0) {
    if (auto l = leases_.find(it->second.lease); l != leases_.end()) l->second.keys.erase(key);
  }
  keys_.erase(it);
  events.push_back(Event{Event::Type::kDelete, key, revision_});
}

void SimEtcd::Notify(const std::vector<Event>& events) {
  if (events.empty()) return;
  history_.insert(history_.end(), events.begin(), events.end());
  if (history_.size() > kHistoryMax) Compact(history_[history_.size() - kHistoryMax / 2].revision);
  // A callback may cancel watches (its own included): walk a snapshot of the ids.
  std::vector<int64_t> ids;
  for (const auto& [id, w] : watchers_) ids.push_back(id);
  for (int64_t id : ids) {
    auto w = watchers_.find(id);
    if (w == watchers_.end()) continue;
    std::vector<Event> mine;
    for (const Event& e : events) {
      if (absl::StartsWith(e.key, w->second.prefix)) mine.push_back(e);
    }
    if (mine.empty()) continue;
    WatchCallback callback = w->second.callback;  // The watch may be cancelled inside.
    callback(mine);
  }
}

absl::StatusOr<int64_t> SimEtcd::Grant(absl::Duration ttl) {
  if (absl::Status s = CheckAvailable("lease grant"); !s.ok()) return s;
  if (leases_.size() >= kLeasesMax) {
    return absl::ResourceExhaustedError(
        absl::StrCat("etcd (simulated): more than ", kLeasesMax, " leases"));
  }
  const int64_t id = next_lease_++;
  Lease& lease = leases_[id];
  lease.ttl = std::max(ttl, kLeaseTtlMin);
  lease.expires = Now() + lease.ttl;
  ArmExpiry(id);
  return id;
}

absl::Status SimEtcd::KeepAlive(int64_t id) {
  if (absl::Status s = CheckAvailable("lease keep-alive"); !s.ok()) return s;
  auto it = leases_.find(id);
  if (it == leases_.end()) {
    return absl::NotFoundError(absl::StrCat("etcd (simulated): lease ", id, " not found"));
  }
  it->second.expires = Now() + it->second.ttl;
  return absl::OkStatus();
}

absl::Status SimEtcd::Revoke(int64_t id) {
  if (absl::Status s = CheckAvailable("lease revoke"); !s.ok()) return s;
  if (leases_.count(id) == 0) {
    return absl::NotFoundError(absl::StrCat("etcd (simulated): lease ", id, " not found"));
  }
  Expire(id);
  return absl::OkStatus();
}

void SimEtcd::ArmExpiry(int64_t id) {
  Lease& lease = leases_.at(id);
  if (lease.timer != kNoTimer) loop_.Cancel(lease.timer);
  lease.timer = loop_.PostAfter(lease.expires - Now(), [this, id] {
    auto it = leases_.find(id);
    if (it == leases_.end()) return;
    it->second.timer = kNoTimer;
    if (!available_) return;  // Re-armed when the store comes back.
    if (Now() < it->second.expires) {
      ArmExpiry(id);  // Renewed since: wait for the new expiry.
      return;
    }
    Expire(id);
  });
}

void SimEtcd::Expire(int64_t id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  if (it->second.timer != kNoTimer) loop_.Cancel(it->second.timer);
  const std::set<std::string> keys = std::move(it->second.keys);
  leases_.erase(it);
  ++leases_expired_;
  if (keys.empty()) return;
  ++revision_;
  std::vector<Event> events;
  for (const std::string& key : keys) DeleteKey(key, events);
  Notify(events);
}

absl::StatusOr<int64_t> SimEtcd::Watch(std::string prefix, WatchCallback callback) {
  if (absl::Status s = CheckAvailable("watch"); !s.ok()) return s;
  if (watchers_.size() >= kWatchesMax) {
    return absl::ResourceExhaustedError(
        absl::StrCat("etcd (simulated): more than ", kWatchesMax, " watches"));
  }
  const int64_t id = next_watch_++;
  watchers_[id] = Watcher{std::move(prefix), std::move(callback)};
  return id;
}

void SimEtcd::CancelWatch(int64_t watch) { watchers_.erase(watch); }

absl::StatusOr<std::vector<Event>> SimEtcd::History(absl::string_view prefix, int64_t from) const {
  if (from <= compacted_) {
    return absl::OutOfRangeError(absl::StrCat("etcd (simulated): required revision ", from,
                                              " has been compacted (compaction revision ",
                                              compacted_, ")"));
  }
  std::vector<Event> out;
  auto it = std::lower_bound(history_.begin(), history_.end(), from,
                             [](const Event& e, int64_t r) { return e.revision < r; });
  for (; it != history_.end(); ++it) {
    if (absl::StartsWith(it->key, prefix)) out.push_back(*it);
  }
  return out;
}

void SimEtcd::Compact(int64_t revision) {
  revision = std::min(revision, revision_);
  if (revision <= compacted_) return;
  compacted_ = revision;
  auto it = std::upper_bound(history_.begin(), history_.end(), revision,
                             [](int64_t r, const Event& e) { return r < e.revision; });
  history_.erase(history_.begin(), it);
}

}  // namespace bulwark::sim::etcd
