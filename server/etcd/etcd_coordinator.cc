#include "server/etcd/etcd_coordinator.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "faultinject/failpoint.h"
#include "server/etcd/etcd_storage.h"

namespace bulwark::etcd {
namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

SteadyTime Now() { return std::chrono::steady_clock::now(); }

std::chrono::nanoseconds Chrono(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

absl::Duration Since(SteadyTime from, SteadyTime to) {
  return absl::FromChrono(std::chrono::duration_cast<std::chrono::nanoseconds>(to - from));
}

// How long a stream of one prefix watch lives before it is reopened from the last revision seen.
constexpr absl::Duration kWatchStreamLifetime = absl::Seconds(60);
// Pause before retrying a failed watch or lock check.
constexpr absl::Duration kRetryPause = absl::Milliseconds(200);

}  // namespace

struct EtcdCoordinator::Campaign {
  std::string holder_id;
  // Loop thread only.
  WonCallback won;
  LostCallback lost;
  bool resigned = false;
  bool over = false;

  std::mutex mu;
  std::condition_variable cv;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  WatchStream* waiting ABSL_GUARDED_BY(mu) = nullptr;
  int64_t lease_id ABSL_GUARDED_BY(mu) = 0;
};

EtcdCoordinator::EtcdCoordinator(Client& client, CoordinatorOptions options)
    : client_(client),
      options_(std::move(options)),
      lock_prefix_(absl::StrCat(NormalizePath(options_.path), kLockPrefix)) {}

EtcdCoordinator::~EtcdCoordinator() { (void)Resign(); }

void EtcdCoordinator::PostFor(const std::shared_ptr<struct Campaign>& c,
                              absl::AnyInvocable<void()> task) {
  options_.post([c, task = std::move(task)]() mutable {
    if (!c->resigned) task();
  });
}

void EtcdCoordinator::Campaign(std::string holder_id, WonCallback won, LostCallback lost) {
  if (campaign_ != nullptr && !campaign_->over) {
    options_.post([won = std::move(won)]() mutable {
      won(absl::FailedPreconditionError("an HA campaign is already running on this node"));
    });
    return;
  }
  if (thread_.joinable()) thread_.join();
  auto c = std::make_shared<struct Campaign>();
  c->holder_id = std::move(holder_id);
  c->won = std::move(won);
  c->lost = std::move(lost);
  campaign_ = c;
  thread_ = std::thread([this, c] { Run(c); });
}

absl::Status EtcdCoordinator::Resign() {
  if (campaign_ == nullptr) return absl::OkStatus();
  std::shared_ptr<struct Campaign> c = std::move(campaign_);
  c->resigned = true;
  int64_t lease = 0;
  {
    std::lock_guard<std::mutex> lock(c->mu);
    c->stopping = true;
    if (c->waiting != nullptr) c->waiting->Cancel();
    lease = c->lease_id;
  }
  c->cv.notify_all();
  if (thread_.joinable()) thread_.join();
  window_->Close();  // After the join: the campaign thread can no longer extend it.
  if (lease == 0) return absl::OkStatus();
  absl::Status s = client_.LeaseRevoke(lease);
  // A lease that already expired is as good as revoked.
  if (s.code() == absl::StatusCode::kNotFound) return absl::OkStatus();
  return s;
}

void EtcdCoordinator::Run(std::shared_ptr<struct Campaign> c) {
  auto stopping = [&c] {
    std::lock_guard<std::mutex> lock(c->mu);
    return c->stopping;
  };
  // Sleeps until `until` or until Resign; false when resigning.
  auto sleep_until = [&c](SteadyTime until) {
    std::unique_lock<std::mutex> lock(c->mu);
    c->cv.wait_until(lock, until, [&c]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return c->stopping; });
    return !c->stopping;
  };
  auto fail = [this, &c](absl::Status status) {
    PostFor(c, [c, status]() mutable {
      c->over = true;
      std::move(c->won)(std::move(status));
    });
  };

  SteadyTime sent = Now();
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> lease = client_.LeaseGrant(options_.lock_ttl);
  if (!lease.ok()) return fail(lease.status());
  {
    std::lock_guard<std::mutex> lock(c->mu);
    c->lease_id = lease->id();
    if (c->stopping) return;
  }
  const absl::Duration ttl = absl::Seconds(lease->ttl());
  const absl::Duration loss_after = ha::LossDeadline(ttl);
  const absl::Duration renew_every = ha::RenewInterval(ttl);
  const absl::Duration retry_every = std::min(renew_every, absl::Seconds(1));
  SteadyTime last_ack = sent;  // Send time of the last renewal etcd acknowledged.
  SteadyTime next_renew = last_ack + Chrono(renew_every);

  // One renewal. OK when renewed or when it failed in a way that may pass (next_renew is then
  // a short retry); an error when the lock must be given up.
  auto renew = [&]() -> absl::Status {
    const SteadyTime send = Now();
    const absl::Duration left = loss_after - Since(last_ack, send);
    if (left <= absl::ZeroDuration()) {
      return absl::UnavailableError(absl::StrCat("no lease renewal confirmed by etcd ",
                                                 client_.endpoint(), " within ",
                                                 absl::FormatDuration(loss_after)));
    }
    absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> r =
        client_.LeaseKeepAliveOnce(lease->id(), std::min(left, absl::Seconds(5)));
    if (r.ok() && r->ttl() <= 0) {
      return absl::UnavailableError(
          absl::StrCat("the lease ", absl::Hex(lease->id()), " expired or was revoked"));
    }
    if (r.ok()) {
      last_ack = send;
      next_renew = last_ack + Chrono(renew_every);
    } else {
      next_renew = Now() + Chrono(retry_every);
    }
    return absl::OkStatus();
  };

  // The lock entry, created with our holder id in one step.
  const std::string key = absl::StrCat(lock_prefix_, absl::Hex(lease->id()));
  etcdserverpb::TxnRequest create;
  etcdserverpb::Compare* absent = create.add_compare();
  absent->set_key(key);
  absent->set_target(etcdserverpb::Compare::CREATE);
  absent->set_result(etcdserverpb::Compare::EQUAL);
  absent->set_create_revision(0);
  etcdserverpb::PutRequest* put = create.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(c->holder_id);
  put->set_lease(lease->id());
  absl::StatusOr<etcdserverpb::TxnResponse> created = client_.Txn(create);
  if (!created.ok()) return fail(created.status());
  if (!created->succeeded()) {
    return fail(absl::InternalError(absl::StrCat("lock entry ", key, " already exists")));
  }
  const int64_t my_revision = created->header().revision();

  // Wait until ours is the first entry.
  for (;;) {
    if (stopping()) return;
    if (Now() >= next_renew) {
      if (absl::Status s = renew(); !s.ok()) return fail(s);
    }
    etcdserverpb::RangeRequest range;
    range.set_key(lock_prefix_);
    range.set_range_end(PrefixEnd(lock_prefix_));
    range.set_sort_target(etcdserverpb::RangeRequest::CREATE);
    range.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
    range.set_keys_only(true);
    absl::StatusOr<etcdserverpb::RangeResponse> entries = client_.Range(range);
    if (!entries.ok()) {
      if (!sleep_until(std::min(next_renew, Now() + Chrono(kRetryPause)))) return;
      continue;
    }
    const mvccpb::KeyValue* predecessor = nullptr;
    bool mine_exists = false;
    for (const mvccpb::KeyValue& kv : entries->kvs()) {
      if (kv.key() == key) {
        mine_exists = kv.create_revision() == my_revision;
        break;
      }
      predecessor = &kv;
    }
    if (!mine_exists) {
      return fail(absl::UnavailableError(
          absl::StrCat("lock entry ", key, " disappeared while waiting (its lease ended)")));
    }
    if (predecessor == nullptr) break;  // Ours is the oldest: the lock is held.
    etcdserverpb::WatchCreateRequest watch;
    watch.set_key(predecessor->key());
    watch.set_start_revision(entries->header().revision() + 1);
    watch.add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
    const absl::Duration wait = std::max(Since(Now(), next_renew), absl::Milliseconds(50));
    absl::StatusOr<std::unique_ptr<WatchStream>> stream = client_.Watch(watch, wait);
    if (!stream.ok()) {
      if (!sleep_until(std::min(next_renew, Now() + Chrono(kRetryPause)))) return;
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(c->mu);
      if (c->stopping) return;
      c->waiting = stream->get();
    }
    for (;;) {
      absl::StatusOr<std::optional<etcdserverpb::WatchResponse>> next = (*stream)->Next();
      if (!next.ok() || !next->has_value() || (*next)->events_size() > 0 || (*next)->canceled()) {
        break;
      }
    }
    std::lock_guard<std::mutex> lock(c->mu);
    c->waiting = nullptr;
  }

  window_->ExtendTo(last_ack + Chrono(loss_after));
  ha::LockGrant grant;
  grant.holder_id = c->holder_id;
  grant.lock_key = key;
  grant.revision = my_revision;
  grant.lease_id = lease->id();
  grant.ttl = ttl;
  PostFor(c, [c, grant]() mutable { std::move(c->won)(std::move(grant)); });

  // Hold: renew until the lease is lost or the node resigns. After each confirmed renewal the
  // lock entry is checked too (someone may have deleted it by hand while the lease lives); only
  // then is the lease window extended.
  for (;;) {
    if (!sleep_until(next_renew)) return;
    const SteadyTime acked_before = last_ack;
    absl::Status s = renew();
    if (s.ok() && last_ack != acked_before) {
      etcdserverpb::RangeRequest range;
      range.set_key(key);
      absl::StatusOr<etcdserverpb::RangeResponse> entry = client_.Range(range);
      if (entry.ok() &&
          (entry->kvs_size() == 0 || entry->kvs(0).create_revision() != my_revision)) {
        s = absl::UnavailableError(absl::StrCat("the lock entry ", key, " was deleted"));
      } else if (entry.ok()) {
        window_->ExtendTo(last_ack + Chrono(loss_after));
      }
    }
    if (!s.ok()) {
      window_->Close();
      // Give the lock up at once if etcd still has it, so a successor need not wait for expiry.
      (void)client_.LeaseRevoke(lease->id());
      PostFor(c, [c, s]() mutable {
        c->over = true;
        std::move(c->lost)(absl::UnavailableError(absl::StrCat("HA lock lost: ", s.message())));
      });
      return;
    }
  }
}

absl::StatusOr<std::optional<std::string>> EtcdCoordinator::Holder() {
  WatchHealth& health = *holder_health_;
  if (holder_.has_value() && health.Live() && health.epoch() == holder_epoch_) return *holder_;
  holder_.reset();
  if (holder_watch_ == nullptr && options_.cache_holder && options_.post) {
    // Opened before the read below, so that no change after the read goes unseen. Any event on
    // a lock entry (a contender's put, a holder's delete) drops the cache. Its own health: a
    // break of the performance standby's watch must not look mended when this one opens.
    absl::StatusOr<std::unique_ptr<ha::WatchHandle>> w = OpenWatch(
        std::string(kLockPrefix), [this](std::vector<ha::WatchEvent>) { holder_.reset(); },
        holder_health_);
    if (w.ok()) holder_watch_ = *std::move(w);
  }
  const uint64_t epoch = health.epoch();
  const bool live = health.Live();
  ++holder_reads_;
  etcdserverpb::RangeRequest range;
  range.set_key(lock_prefix_);
  range.set_range_end(PrefixEnd(lock_prefix_));
  range.set_sort_target(etcdserverpb::RangeRequest::CREATE);
  range.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  range.set_limit(1);
  absl::StatusOr<etcdserverpb::RangeResponse> r = client_.Range(range);
  if (!r.ok()) return r.status();
  std::optional<std::string> holder;
  if (r->kvs_size() > 0) holder = r->kvs(0).value();
  if (holder_watch_ != nullptr && live && health.epoch() == epoch) {
    holder_ = holder;
    holder_epoch_ = epoch;
  }
  return holder;
}

namespace {

// A prefix watch: a reader thread that reopens its stream (from the revision after the last
// event) when the stream's lifetime ends or it breaks, and posts events to the loop. When etcd
// compacted past that revision, it reports every key under the prefix as changed (a full
// reload) and watches on from the revision it read them at.
class EtcdWatch final : public ha::WatchHandle {
 public:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool stopping ABSL_GUARDED_BY(mu) = false;
    WatchStream* current ABSL_GUARDED_BY(mu) = nullptr;
    // Loop thread only.
    bool alive = true;
    ha::Coordinator::EventsCallback on_events;
  };

  EtcdWatch(Client& client, std::string path, etcdserverpb::WatchCreateRequest request,
            std::unique_ptr<WatchStream> first,
            std::function<void(absl::AnyInvocable<void()>)> post,
            ha::Coordinator::EventsCallback on_events, std::shared_ptr<WatchHealth> health)
      : state_(std::make_shared<State>()), health_(std::move(health)) {
    health_->Opened();
    state_->on_events = std::move(on_events);
    thread_ = std::thread([this, &client, path = std::move(path), request = std::move(request),
                           first = std::move(first), post = std::move(post)]() mutable {
      Read(client, path, std::move(request), std::move(first), post);
    });
  }

  ~EtcdWatch() override {
    state_->alive = false;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->stopping = true;
      if (state_->current != nullptr) state_->current->Cancel();
    }
    state_->cv.notify_all();
    thread_.join();
  }

 private:
  void Read(Client& client, const std::string& path, etcdserverpb::WatchCreateRequest request,
            std::unique_ptr<WatchStream> stream,
            const std::function<void(absl::AnyInvocable<void()>)>& post) {
    int64_t next_revision = stream->created_revision() + 1;
    auto deliver = [&](std::vector<ha::WatchEvent> events) {
      post([state = state_, events = std::move(events)]() mutable {
        if (state->alive) state->on_events(std::move(events));
      });
    };
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(state_->mu);
        if (state_->stopping) return;
        state_->current = stream.get();
      }
      // Whether etcd cancelled the watcher because it compacted past the revision asked for:
      // the changes in between are gone and resuming cannot replay them.
      bool compacted = false;
      for (;;) {
        absl::StatusOr<std::optional<etcdserverpb::WatchResponse>> next = stream->Next();
        if (!next.ok() || !next->has_value()) break;
        if ((*next)->canceled()) {
          compacted = (*next)->compact_revision() > 0;
          break;
        }
        std::vector<ha::WatchEvent> events;
        for (const mvccpb::Event& e : (*next)->events()) {
          ha::WatchEvent event;
          event.type = e.type() == mvccpb::Event::DELETE ? ha::WatchEvent::Type::kDelete
                                                         : ha::WatchEvent::Type::kPut;
          event.key = e.kv().key().substr(std::min(path.size(), e.kv().key().size()));
          event.revision = e.kv().mod_revision();
          next_revision = std::max(next_revision, event.revision + 1);
          events.push_back(std::move(event));
        }
        if (!events.empty()) deliver(std::move(events));
        // A test's way to break the stream after a delivery, as a dropped connection would.
        if (BW_FAILPOINT("etcd.watch.break")) break;
      }
      {
        std::unique_lock<std::mutex> lock(state_->mu);
        state_->current = nullptr;
        if (state_->stopping) return;
      }
      // Until the new stream is open, changes reach this node late.
      health_->Broke();
      stream.reset();
      while (stream == nullptr) {
        if (!BW_FAILPOINT("etcd.watch.hold_reopen")) {
          if (compacted) {
            // A full reload: every key under the prefix is reported changed at the revision read,
            // so that whoever watches reads each again (a perf standby reloads its keyring and
            // mount table and tells plugins of their keys; its watched reads were dropped by the
            // break above). Keys deleted in the gap are not reported.
            std::vector<ha::WatchEvent> all;
            absl::StatusOr<int64_t> at = ReadAll(client, path, request, all);
            if (at.ok()) {
              next_revision = *at + 1;
              compacted = false;
              if (!all.empty()) deliver(std::move(all));
            }
          }
          if (!compacted) {
            request.set_start_revision(next_revision);
            absl::StatusOr<std::unique_ptr<WatchStream>> reopened =
                client.Watch(request, kWatchStreamLifetime);
            if (reopened.ok()) {
              stream = *std::move(reopened);
              health_->Opened();
              break;
            }
            compacted = absl::IsOutOfRange(reopened.status());
          }
        }
        std::unique_lock<std::mutex> lock(state_->mu);
        state_->cv.wait_for(lock, Chrono(kRetryPause),
                            [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return state_->stopping; });
        if (state_->stopping) return;
      }
    }
  }

  // Every key under the watched prefix as a put into `events`, at the store revision of one
  // Range (keys only), which it returns.
  static absl::StatusOr<int64_t> ReadAll(Client& client, const std::string& path,
                                         const etcdserverpb::WatchCreateRequest& request,
                                         std::vector<ha::WatchEvent>& events) {
    etcdserverpb::RangeRequest range;
    range.set_key(request.key());
    range.set_range_end(request.range_end());
    range.set_keys_only(true);
    absl::StatusOr<etcdserverpb::RangeResponse> r = client.Range(range);
    if (!r.ok()) return r.status();
    for (const mvccpb::KeyValue& kv : r->kvs()) {
      ha::WatchEvent event;
      event.type = ha::WatchEvent::Type::kPut;
      event.key = kv.key().substr(std::min(path.size(), kv.key().size()));
      event.revision = r->header().revision();
      events.push_back(std::move(event));
    }
    return r->header().revision();
  }

  std::shared_ptr<State> state_;
  const std::shared_ptr<WatchHealth> health_;
  std::thread thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ha::WatchHandle>> EtcdCoordinator::Watch(std::string prefix,
                                                                        EventsCallback on_events) {
  return OpenWatch(std::move(prefix), std::move(on_events), watch_health_);
}

absl::StatusOr<std::unique_ptr<ha::WatchHandle>> EtcdCoordinator::OpenWatch(
    std::string prefix, EventsCallback on_events, std::shared_ptr<WatchHealth> health) {
  const std::string path = NormalizePath(options_.path);
  etcdserverpb::WatchCreateRequest request;
  request.set_key(absl::StrCat(path, prefix));
  request.set_range_end(PrefixEnd(request.key()));
  absl::StatusOr<std::unique_ptr<WatchStream>> first = client_.Watch(request, kWatchStreamLifetime);
  if (!first.ok()) return first.status();
  return std::unique_ptr<ha::WatchHandle>(new EtcdWatch(client_, path, std::move(request),
                                                        *std::move(first), options_.post,
                                                        std::move(on_events), std::move(health)));
}

}  // namespace bulwark::etcd
