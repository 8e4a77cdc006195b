#include "sim/etcd/sim_etcd_client.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "base/storage/storage_errors.h"
#include "faultinject/failpoint.h"

namespace bulwark::sim::etcd {

std::string NormalizePath(absl::string_view path) {
  std::string out = absl::StrCat("/", absl::StripPrefix(path, "/"));
  if (!absl::EndsWith(out, "/")) out += "/";
  return out;
}

// ---- Link -------------------------------------------------------------------------------------

Link::Link(SimEtcd& store, SimEventLoop& loop, uint64_t seed, LinkOptions options)
    : store_(store), loop_(loop), random_(seed), options_(options) {}

absl::Status Link::Check(absl::string_view operation) const {
  if (!up_) {
    return absl::UnavailableError(
        absl::StrCat("etcd (simulated): ", operation, ": no route to the store (partitioned)"));
  }
  return store_.CheckAvailable(operation);
}

absl::Duration Link::Latency() {
  const int64_t lo = absl::ToInt64Microseconds(options_.latency_min);
  const int64_t hi = absl::ToInt64Microseconds(options_.latency_max);
  const int64_t us =
      lo + static_cast<int64_t>(random_.Next64() % static_cast<uint64_t>(hi - lo + 1));
  return absl::Microseconds(us) + extra_;
}

void Link::RoundTrip(Executor& executor, std::weak_ptr<void> alive, std::string operation,
                     std::function<absl::Status()> at_store,
                     std::function<void(absl::Status)> reply) {
  const absl::Duration sent = loop_.clock().MonotonicNow();
  const absl::Duration timeout = options_.request_timeout;
  auto lost = [this, &executor, alive, sent, timeout, operation, reply]() {
    if (alive.expired()) return;
    const absl::Duration wait =
        std::max(absl::ZeroDuration(), sent + timeout - loop_.clock().MonotonicNow());
    executor.PostAfter(wait, [alive, operation, reply] {
      if (alive.expired()) return;
      reply(absl::UnavailableError(
          absl::StrCat("etcd (simulated): ", operation, ": no answer within the request timeout")));
    });
  };
  if (!up_) {
    lost();
    return;
  }
  const absl::Duration there = Latency();
  const absl::Duration back = Latency();
  loop_.PostAfter(there, [this, &executor, alive, operation, at_store, reply, back, lost] {
    if (alive.expired()) return;
    if (!up_) {
      lost();
      return;
    }
    absl::Status result = at_store();
    if (back >= options_.request_timeout) {  // A store this slow answers too late.
      lost();
      return;
    }
    executor.PostAfter(back, [this, alive, result, reply, lost] {
      if (alive.expired()) return;
      if (!up_) {
        lost();
        return;
      }
      reply(result);
    });
  });
}

// ---- SimEtcdStorage ---------------------------------------------------------------------------

SimEtcdStorage::SimEtcdStorage(Link& link, absl::string_view path)
    : link_(link), path_(NormalizePath(path)) {}

absl::StatusOr<std::optional<std::string>> SimEtcdStorage::Get(absl::string_view key) {
  if (absl::Status s = ValidateStorageKey(key); !s.ok()) return s;
  // The planted bug answers a read-only node's reads from its own copy of what it read before,
  // never refreshed: a performance standby then serves values an acknowledged write replaced,
  // which ha_fresh_reads must catch.
  const bool stale = mode_ == Mode::kReadOnly && BW_PLANTED_BUG("bug.sim_etcd.stale_standby_reads");
  if (stale) {
    auto it = standby_copy_.find(key);
    if (it != standby_copy_.end()) return it->second;
  }
  const bool usable = CacheUsable();
  if (usable) {
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      ++cached_reads_;
      return it->second;
    }
  }
  if (absl::Status s = link_.Check("Get"); !s.ok()) return s;
  std::optional<KeyValue> kv = link_.store().Get(absl::StrCat(path_, key));
  std::optional<std::string> value;
  if (kv.has_value()) value = std::move(kv->value);
  if (stale) standby_copy_[std::string(key)] = value;
  // Remembered while watched: a change after this read is reported by the watch (or the watch
  // breaks, which forgets everything).
  if (mode_ == Mode::kReadOnly && watched_ && live_) cache_[std::string(key)] = value;
  return value;
}

bool SimEtcdStorage::CacheUsable() const {
  return mode_ == Mode::kReadOnly && watched_ && live_ && delivered_ >= link_.store().revision();
}

void SimEtcdStorage::BeginWatchedReads() {
  Forget();
  // The planted bug keeps what it remembered across a break: after a reload that found the
  // watch's revision compacted, values changed in the gap are answered from memory, which
  // ha_fresh_reads must catch. Evaluated here, where every performance standby passes.
  keep_across_breaks_ =
      static_cast<bool>(BW_PLANTED_BUG("bug.sim_etcd.keep_cache_across_watch_break"));
  watched_ = true;
  live_ = true;
  // The watch reports every change after the revision it was created at, which is now.
  delivered_ = link_.store().revision();
}

void SimEtcdStorage::EndWatchedReads() {
  Forget();
  watched_ = false;
  live_ = false;
}

void SimEtcdStorage::Changed(const std::vector<ha::WatchEvent>& events) {
  for (const ha::WatchEvent& e : events) {
    cache_.erase(e.key);
    delivered_ = std::max(delivered_, e.revision);
  }
}

void SimEtcdStorage::OnWatch(WatchSignal signal, int64_t revision) {
  if (!watched_) return;
  const bool keep = keep_across_breaks_;
  switch (signal) {
    case WatchSignal::kBroken:
      live_ = false;
      if (!keep) Forget();
      return;
    case WatchSignal::kResumed:
      live_ = true;
      return;
    case WatchSignal::kReloaded:
      live_ = true;
      if (!keep) Forget();
      delivered_ = std::max(delivered_, revision);
      return;
  }
}

absl::StatusOr<std::vector<std::string>> SimEtcdStorage::List(absl::string_view prefix) {
  if (absl::Status s = link_.Check("List"); !s.ok()) return s;
  const std::string lock = absl::StrCat(path_, kLockPrefix);
  std::vector<std::string> keys;
  for (const auto& [key, kv] : link_.store().Range(absl::StrCat(path_, prefix))) {
    if (absl::StartsWith(key, lock)) continue;
    keys.push_back(key.substr(path_.size()));
  }
  return keys;
}

absl::Status SimEtcdStorage::Put(absl::string_view key, absl::string_view value) {
  if (value.size() > kStorageValueBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("storage value is ", value.size(),
                                                   " bytes; the limit is ", kStorageValueBytesMax));
  }
  Op op;
  op.type = Op::Type::kPut;
  op.key = std::string(key);
  op.value = std::string(value);
  return Write(std::move(op));
}

absl::Status SimEtcdStorage::Delete(absl::string_view key) {
  Op op;
  op.type = Op::Type::kDelete;
  op.key = std::string(key);
  return Write(std::move(op));
}

absl::Status SimEtcdStorage::Write(Op op) {
  if (absl::Status s = ValidateStorageKey(op.key); !s.ok()) return s;
  if (absl::StartsWith(op.key, kLockPrefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat("storage keys under \"", kLockPrefix, "\" are reserved for the HA lock"));
  }
  if (mode_ == Mode::kReadOnly) return ReadOnlyError();
  const absl::string_view operation = op.type == Op::Type::kPut ? "Put" : "Delete";
  if (absl::Status s = link_.Check(operation); !s.ok()) return s;
  LandedWrite landed;
  landed.key = op.key;
  landed.deleted = op.type == Op::Type::kDelete;
  op.key = absl::StrCat(path_, op.key);
  // The planted bug writes unconditionally even when fenced (as server/etcd's
  // bug.etcd.unfenced_write): a deposed active's writes land, which ha_one_writer must catch.
  const bool fence = mode_ == Mode::kFenced && !BW_PLANTED_BUG("bug.sim_etcd.unfenced_write");
  std::vector<Compare> compares;
  if (fence) {
    compares.push_back(Compare{fence_.lock_key, Compare::Target::kCreateRevision, fence_.revision});
  }
  // The planted bug acknowledges a fenced write that did not land: a deposed active's client
  // is told its write succeeded, and the write is lost across the failover (durability).
  // Evaluated for every fenced write, so the drill sees the site in runs where none is refused.
  const bool ack_refused = fence && BW_PLANTED_BUG("bug.sim_etcd.ack_fenced_write");
  absl::StatusOr<bool> held = link_.store().Txn(compares, {op});
  if (!held.ok()) return held.status();
  if (!*held) {
    if (ack_refused) return absl::OkStatus();
    const ha::LockGrant fenced = fence_;  // The listener may change the mode.
    NotifyFenced(fenced);
    return FencedError(absl::StrCat(operation, " refused: the lock entry created at revision ",
                                    fenced.revision, " is gone"));
  }
  landed.revision = link_.store().revision();
  landed.fenced_on = mode_ == Mode::kFenced ? fence_.revision : 0;
  if (landed_) landed_(landed);
  return absl::OkStatus();
}

// ---- SimEtcdCoordinator -----------------------------------------------------------------------

struct SimEtcdCoordinator::State {
  std::string holder;
  WonCallback won;
  LostCallback lost;
  int64_t lease = 0;
  std::string key;
  int64_t revision = 0;
  bool granted = false;
  absl::Duration confirmed_send;  // Node clock: when the last acknowledged renewal was sent.
  TimerId renew_timer = kNoTimer;
  TimerId loss_timer = kNoTimer;
  absl::Duration renew_due;  // Node clock, while renew_timer is armed.
  absl::Duration loss_due;   // Node clock, while loss_timer is armed.
  int64_t watch = 0;
  bool checking = false;
};

SimEtcdCoordinator::SimEtcdCoordinator(Link& link, Executor& executor, Clock& clock,
                                       SimCoordinatorOptions options)
    : link_(link),
      executor_(executor),
      clock_(clock),
      options_(std::move(options)),
      lock_prefix_(absl::StrCat(NormalizePath(options_.path), kLockPrefix)) {
  options_.path = NormalizePath(options_.path);
}

SimEtcdCoordinator::~SimEtcdCoordinator() { (void)Resign(); }

absl::Duration SimEtcdCoordinator::Real(absl::Duration d) const {
  return d / std::max(options_.clock_rate, 0.01);
}

int64_t SimEtcdCoordinator::held_revision() const {
  return campaign_ && campaign_->granted ? campaign_->revision : 0;
}

void SimEtcdCoordinator::Campaign(std::string holder_id, WonCallback won, LostCallback lost) {
  if (campaign_) {
    auto shared = std::make_shared<WonCallback>(std::move(won));
    executor_.Post([shared] {
      (*shared)(absl::FailedPreconditionError("a campaign is already running; Resign first"));
    });
    return;
  }
  auto c = std::make_shared<State>();
  c->holder = std::move(holder_id);
  c->won = std::move(won);
  c->lost = std::move(lost);
  campaign_ = c;
  Start(c);
}

void SimEtcdCoordinator::Start(const std::shared_ptr<State>& c) {
  const absl::Duration sent = clock_.MonotonicNow();
  auto grant = std::make_shared<std::pair<int64_t, int64_t>>(0, 0);  // lease, create revision
  const absl::Duration ttl = options_.lock_ttl;
  const std::string prefix = lock_prefix_;
  const std::string holder = c->holder;
  SimEtcd& store = link_.store();
  link_.RoundTrip(
      executor_, c, "campaign",
      [&store, grant, ttl, prefix, holder]() -> absl::Status {
        absl::StatusOr<int64_t> lease = store.Grant(ttl);
        if (!lease.ok()) return lease.status();
        const std::string key = absl::StrCat(prefix, absl::Hex(*lease));
        Op put{Op::Type::kPut, key, holder, *lease};
        absl::StatusOr<bool> created =
            store.Txn({Compare{key, Compare::Target::kCreateRevision, 0}}, {put});
        if (!created.ok()) return created.status();
        grant->first = *lease;
        grant->second = store.Get(key)->create_revision;
        return absl::OkStatus();
      },
      [this, weak = std::weak_ptr<State>(c), grant, sent](absl::Status s) {
        std::shared_ptr<State> c = weak.lock();
        if (!c || campaign_ != c) return;
        if (!s.ok()) {
          // The lease may have been granted: it runs out by itself.
          End(c, s);
          return;
        }
        c->lease = grant->first;
        c->revision = grant->second;
        c->key = absl::StrCat(lock_prefix_, absl::Hex(c->lease));
        c->confirmed_send = sent;
        ArmLoss(c);
        ArmRenew(c, Real(ha::RenewInterval(options_.lock_ttl)));
        // Hear of deletions of other entries; the renewals re-check too, in case an event
        // was lost on the link.
        auto alive = std::make_shared<bool>(true);
        absl::StatusOr<int64_t> watch =
            link_.store().Watch(lock_prefix_, [this, weak](const std::vector<Event>& events) {
              bool deleted = false;
              for (const Event& e : events) deleted |= e.type == Event::Type::kDelete;
              if (!deleted || !link_.up()) return;
              executor_.PostAfter(link_.Latency(), [this, weak] {
                if (auto c = weak.lock(); c && campaign_ == c && !c->granted) Check(c);
              });
            });
        if (watch.ok()) c->watch = *watch;
        Check(c);
      });
}

void SimEtcdCoordinator::Check(const std::shared_ptr<State>& c) {
  if (c->checking || c->granted) return;
  c->checking = true;
  // What the store says: whether our entry exists, and whether it is the first.
  auto seen = std::make_shared<std::pair<bool, bool>>(false, false);
  SimEtcd& store = link_.store();
  const std::string prefix = lock_prefix_;
  const std::string key = c->key;
  link_.RoundTrip(
      executor_, c, "lock check",
      [&store, seen, prefix, key]() -> absl::Status {
        if (absl::Status s = store.CheckAvailable("range"); !s.ok()) return s;
        std::optional<std::pair<std::string, KeyValue>> first = store.FirstCreated(prefix);
        seen->first = store.Get(key).has_value();
        seen->second = first.has_value() && first->first == key;
        return absl::OkStatus();
      },
      [this, weak = std::weak_ptr<State>(c), seen](absl::Status s) {
        std::shared_ptr<State> c = weak.lock();
        if (!c) return;
        c->checking = false;
        if (campaign_ != c || c->granted || !s.ok()) return;  // The next renewal re-checks.
        if (!seen->first) {
          // Our entry is gone (its lease ran out while we waited): the campaign failed.
          End(c,
              absl::UnavailableError(
                  "etcd (simulated): the lock entry's lease expired while waiting for the lock"));
          return;
        }
        if (!seen->second) return;  // Someone else holds it: wait for a deletion.
        c->granted = true;
        ha::LockGrant grant;
        grant.holder_id = c->holder;
        grant.lock_key = c->key;
        grant.revision = c->revision;
        grant.lease_id = c->lease;
        grant.ttl = options_.lock_ttl;
        c->won(std::move(grant));
      });
}

void SimEtcdCoordinator::Renew(const std::shared_ptr<State>& c) {
  c->renew_timer = kNoTimer;
  if (campaign_ != c) return;
  ArmRenew(c, Real(ha::RenewInterval(options_.lock_ttl)));
  const absl::Duration sent = clock_.MonotonicNow();
  SimEtcd& store = link_.store();
  const int64_t lease = c->lease;
  link_.RoundTrip(
      executor_, c, "lease keep-alive", [&store, lease] { return store.KeepAlive(lease); },
      [this, weak = std::weak_ptr<State>(c), sent](absl::Status s) {
        std::shared_ptr<State> c = weak.lock();
        if (!c || campaign_ != c) return;
        if (absl::IsNotFound(s)) {
          End(c, absl::UnavailableError(
                     absl::StrCat("etcd (simulated): the lock's lease ran out: ", s.message())));
          return;
        }
        if (!s.ok()) return;  // The loss deadline decides.
        if (sent > c->confirmed_send) {
          c->confirmed_send = sent;
          ArmLoss(c);
        }
        if (!c->granted) Check(c);
      });
}

void SimEtcdCoordinator::ArmRenew(const std::shared_ptr<State>& c, absl::Duration after) {
  if (c->renew_timer != kNoTimer) executor_.Cancel(c->renew_timer);
  c->renew_due = clock_.MonotonicNow() + after;
  std::weak_ptr<State> weak = c;
  c->renew_timer = executor_.PostAfter(after, [this, weak] {
    if (auto c = weak.lock()) Renew(c);
  });
}

void SimEtcdCoordinator::Pause(absl::Duration d) {
  if (!campaign_) return;
  std::shared_ptr<State> c = campaign_;
  const absl::Duration now = clock_.MonotonicNow();
  if (c->renew_timer != kNoTimer) ArmRenew(c, c->renew_due - now + d);
  if (c->loss_timer != kNoTimer) {
    c->confirmed_send += d;  // As if its clock had stood still for d.
    ArmLoss(c);
  }
}

void SimEtcdCoordinator::Abandon() {
  if (campaign_) Drop(campaign_);
}

void SimEtcdCoordinator::ArmLoss(const std::shared_ptr<State>& c) {
  if (c->loss_timer != kNoTimer) executor_.Cancel(c->loss_timer);
  const absl::Duration deadline = ha::LossDeadline(options_.lock_ttl);
  const absl::Duration left =
      std::max(absl::ZeroDuration(), c->confirmed_send + Real(deadline) - clock_.MonotonicNow());
  c->loss_due = clock_.MonotonicNow() + left;
  std::weak_ptr<State> weak = c;
  c->loss_timer = executor_.PostAfter(left, [this, weak, deadline] {
    auto c = weak.lock();
    if (!c || campaign_ != c) return;
    c->loss_timer = kNoTimer;
    End(c, absl::UnavailableError(absl::StrCat("etcd (simulated): no lease renewal confirmed for ",
                                               absl::FormatDuration(deadline),
                                               " (the loss deadline)")));
  });
}

void SimEtcdCoordinator::Drop(const std::shared_ptr<State>& c) {
  if (c->renew_timer != kNoTimer) executor_.Cancel(c->renew_timer);
  if (c->loss_timer != kNoTimer) executor_.Cancel(c->loss_timer);
  c->renew_timer = c->loss_timer = kNoTimer;
  if (c->watch != 0) link_.store().CancelWatch(c->watch);
  c->watch = 0;
  if (campaign_ == c) campaign_.reset();
}

void SimEtcdCoordinator::End(const std::shared_ptr<State>& c, absl::Status why) {
  Drop(c);
  // Best effort: give the lease back so the next contender need not wait for it to run out.
  if (c->lease != 0 && link_.Check("lease revoke").ok()) (void)link_.store().Revoke(c->lease);
  if (c->granted) {
    c->lost(std::move(why));
  } else {
    c->won(std::move(why));
  }
}

absl::Status SimEtcdCoordinator::Resign() {
  if (!campaign_) return absl::OkStatus();
  std::shared_ptr<State> c = campaign_;
  Drop(c);
  if (c->lease == 0) return absl::OkStatus();
  if (absl::Status s = link_.Check("lease revoke"); !s.ok()) return s;
  absl::Status s = link_.store().Revoke(c->lease);
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

absl::StatusOr<std::optional<std::string>> SimEtcdCoordinator::Holder() {
  if (absl::Status s = link_.Check("lock holder"); !s.ok()) return s;
  std::optional<std::pair<std::string, KeyValue>> first = link_.store().FirstCreated(lock_prefix_);
  if (!first.has_value()) return std::optional<std::string>();
  return std::optional<std::string>(first->second.value);
}

// A watch of the node's: the etcd watch stream and where it stands.
struct SimEtcdCoordinator::WatchState {
  std::string prefix;  // Store namespace.
  std::shared_ptr<EventsCallback> callback;
  std::shared_ptr<bool> alive;
  bool broken = false;
  absl::Duration broken_until;  // Loop clock: a forced break lasts until then.
  int64_t next = 0;             // The next revision to send (etcd's start_revision on resume).
  absl::Duration last_due;      // Loop clock: when the last batch sent is due at the node.
  TimerId retry = kNoTimer;
};

absl::StatusOr<std::unique_ptr<ha::WatchHandle>> SimEtcdCoordinator::Watch(
    std::string prefix, EventsCallback on_events) {
  if (absl::Status s = link_.Check("watch"); !s.ok()) return s;
  auto w = std::make_shared<WatchState>();
  w->prefix = absl::StrCat(options_.path, prefix);
  w->callback = std::make_shared<EventsCallback>(std::move(on_events));
  w->alive = std::make_shared<bool>(true);
  w->next = link_.store().revision() + 1;
  std::weak_ptr<WatchState> weak = w;
  absl::StatusOr<int64_t> id =
      link_.store().Watch(w->prefix, [this, weak](const std::vector<Event>& events) {
        std::shared_ptr<WatchState> w = weak.lock();
        if (!w || !*w->alive) return;
        if (w->broken) return;  // The resume replays them.
        // A cut link breaks the stream; it resumes from w->next once the link is up again.
        if (!link_.up()) return BreakWatch(w);
        std::vector<ha::WatchEvent> out;
        for (const Event& e : events) {
          ha::WatchEvent we;
          we.type = e.type == Event::Type::kPut ? ha::WatchEvent::Type::kPut
                                                : ha::WatchEvent::Type::kDelete;
          we.key = e.key.substr(options_.path.size());
          we.revision = e.revision;
          w->next = std::max(w->next, e.revision + 1);
          out.push_back(std::move(we));
        }
        Deliver(w, std::move(out));
      });
  if (!id.ok()) return id.status();
  watches_.erase(std::remove_if(watches_.begin(), watches_.end(),
                                [](const std::weak_ptr<WatchState>& x) { return x.expired(); }),
                 watches_.end());
  watches_.push_back(w);
  // The handle owns the state: the store's callback and the timers hold it weakly.
  class Handle final : public ha::WatchHandle {
   public:
    Handle(SimEtcd& store, int64_t id, std::shared_ptr<WatchState> w, Executor& executor)
        : store_(store), id_(id), w_(std::move(w)), executor_(executor) {}
    ~Handle() override {
      *w_->alive = false;
      if (w_->retry != kNoTimer) executor_.Cancel(w_->retry);
      store_.CancelWatch(id_);
    }

   private:
    SimEtcd& store_;
    int64_t id_;
    std::shared_ptr<WatchState> w_;
    Executor& executor_;
  };
  return std::unique_ptr<ha::WatchHandle>(
      std::make_unique<Handle>(link_.store(), *id, std::move(w), executor_));
}

void SimEtcdCoordinator::Deliver(const std::shared_ptr<WatchState>& w,
                                 std::vector<ha::WatchEvent> out,
                                 std::optional<std::pair<WatchSignal, int64_t>> signal) {
  // Batches keep store order: none is due before the one sent ahead of it.
  const absl::Duration now = link_.loop().clock().MonotonicNow();
  w->last_due = std::max(w->last_due, now + link_.Latency());
  executor_.PostAfter(w->last_due - now, [this, alive = w->alive, callback = w->callback, signal,
                                          out = std::move(out)]() mutable {
    if (!*alive) return;
    if (signal.has_value() && options_.on_watch) options_.on_watch(signal->first, signal->second);
    if (out.empty()) return;
    // One batch per store revision, as etcd sends them.
    size_t begin = 0;
    while (begin < out.size() && *alive) {
      size_t end = begin + 1;
      while (end < out.size() && out[end].revision == out[begin].revision) ++end;
      (*callback)(std::vector<ha::WatchEvent>(std::make_move_iterator(out.begin() + begin),
                                              std::make_move_iterator(out.begin() + end)));
      begin = end;
    }
  });
}

void SimEtcdCoordinator::BreakWatch(const std::shared_ptr<WatchState>& w) {
  if (w->broken) return;
  w->broken = true;
  // Told at once (not after a latency): the node's own end of the stream failed.
  if (options_.on_watch) {
    executor_.Post([this, alive = w->alive] {
      if (*alive && options_.on_watch) options_.on_watch(WatchSignal::kBroken, 0);
    });
  }
  ArmResume(w);
}

void SimEtcdCoordinator::ArmResume(const std::shared_ptr<WatchState>& w) {
  std::weak_ptr<WatchState> weak = w;
  w->retry = executor_.PostAfter(Real(kWatchRetry), [this, weak] {
    if (std::shared_ptr<WatchState> w = weak.lock()) {
      w->retry = kNoTimer;
      Resume(w);
    }
  });
}

void SimEtcdCoordinator::Resume(const std::shared_ptr<WatchState>& w) {
  if (!*w->alive || !w->broken) return;
  if (link_.loop().clock().MonotonicNow() < w->broken_until || !link_.Check("watch").ok()) {
    return ArmResume(w);
  }
  w->broken = false;
  SimEtcd& store = link_.store();
  absl::StatusOr<std::vector<Event>> missed = store.History(w->prefix, w->next);
  std::vector<ha::WatchEvent> out;
  auto convert = [this](const std::string& key, Event::Type type, int64_t revision) {
    ha::WatchEvent we;
    we.type =
        type == Event::Type::kPut ? ha::WatchEvent::Type::kPut : ha::WatchEvent::Type::kDelete;
    we.key = key.substr(options_.path.size());
    we.revision = revision;
    return we;
  };
  if (missed.ok()) {
    for (const Event& e : *missed) out.push_back(convert(e.key, e.type, e.revision));
    w->next = store.revision() + 1;
    Deliver(w, std::move(out), std::make_pair(WatchSignal::kResumed, store.revision()));
    return;
  }
  // Compacted past w->next: what changed in the gap is unknown. A full reload at the current
  // revision: the storage forgets every value it remembered (kReloaded), and the node hears of
  // the core's own entries (the keyring, the mount table, the catalog, everything outside a
  // mount's data "logical/<uuid>/") as changed, so that it reads each of them again. Plugins
  // are not told of the data keys that changed in the gap.
  const int64_t at = store.revision();
  for (const auto& [key, kv] : store.Range(w->prefix)) {
    const absl::string_view rel = absl::string_view(key).substr(options_.path.size());
    if (absl::StartsWith(rel, kLockPrefix)) continue;
    if (absl::StartsWith(rel, "logical/") && !absl::StartsWith(rel, "logical/core/")) continue;
    out.push_back(convert(key, Event::Type::kPut, at));
  }
  w->next = at + 1;
  Deliver(w, std::move(out), std::make_pair(WatchSignal::kReloaded, at));
}

bool SimEtcdCoordinator::BreakWatches(absl::Duration d) {
  bool any = false;
  const absl::Duration until = link_.loop().clock().MonotonicNow() + d;
  for (const std::weak_ptr<WatchState>& weak : watches_) {
    std::shared_ptr<WatchState> w = weak.lock();
    if (!w || !*w->alive) continue;
    any = true;
    w->broken_until = std::max(w->broken_until, until);
    BreakWatch(w);
  }
  return any;
}

void SimEtcdCoordinator::EndForcedBreaks() {
  const absl::Duration now = link_.loop().clock().MonotonicNow();
  for (const std::weak_ptr<WatchState>& weak : watches_) {
    if (std::shared_ptr<WatchState> w = weak.lock())
      w->broken_until = std::min(w->broken_until, now);
  }
}

}  // namespace bulwark::sim::etcd
