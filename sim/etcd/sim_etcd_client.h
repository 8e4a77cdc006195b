// What one node has of the simulated etcd: its link to the store, the fenced Storage under its
// barrier (SimEtcdStorage, the simulator's EtcdStorage) and its HA coordinator
// (SimEtcdCoordinator, the simulator's EtcdCoordinator). Both implement the core/ha contracts,
// so the same Leadership and barrier code runs on them as on the real etcd.
//
// The link: a storage call (synchronous, like every Storage) reaches the store at once when the
// link is up and fails with kUnavailable when it is cut; the coordinator's calls (lease grant,
// keep-alive, the lock check, watch events) are messages that take a random latency each way on
// the node's executor, and are lost when the link is cut at either end of the trip (the caller
// then hears kUnavailable after its request timeout). A slow store adds to every latency.
#ifndef BULWARK_SIM_ETCD_SIM_ETCD_CLIENT_H_
#define BULWARK_SIM_ETCD_SIM_ETCD_CLIENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/env/clock.h"
#include "base/env/executor.h"
#include "base/env/random.h"
#include "base/env/sim/sim_event_loop.h"
#include "core/ha/coordinator.h"
#include "core/ha/fenced_storage.h"
#include "sim/etcd/sim_etcd.h"

namespace bulwark::sim::etcd {

// The storage-relative prefix of the HA lock entries (as server/etcd's kLockPrefix).
inline constexpr absl::string_view kLockPrefix = "core/lock/";

struct LinkOptions {
  absl::Duration latency_min = absl::Milliseconds(1);
  absl::Duration latency_max = absl::Milliseconds(5);
  // A coordinator call unanswered this long fails with kUnavailable.
  absl::Duration request_timeout = absl::Seconds(2);
};

// One node's link to the store.
class Link {
 public:
  Link(SimEtcd& store, SimEventLoop& loop, uint64_t seed, LinkOptions options = {});

  SimEtcd& store() { return store_; }
  SimEventLoop& loop() { return loop_; }
  const LinkOptions& options() const { return options_; }

  // Cut (partition) or mend the link.
  void SetUp(bool up) { up_ = up; }
  bool up() const { return up_; }
  // A slow store: added to every message's latency.
  void SetExtraLatency(absl::Duration extra) { extra_ = extra; }

  // OK when a call can reach the store now; kUnavailable naming `operation` and the cause.
  absl::Status Check(absl::string_view operation) const;
  absl::Duration Latency();

  // A round trip from a node: `at_store` runs at the store after one latency (if the link is
  // still up), `reply` on `executor` one latency later with its result — or kUnavailable after
  // the request timeout when a message was lost. `reply` does not run once `alive` expired.
  void RoundTrip(Executor& executor, std::weak_ptr<void> alive, std::string operation,
                 std::function<absl::Status()> at_store, std::function<void(absl::Status)> reply);

 private:
  SimEtcd& store_;
  SimEventLoop& loop_;
  SeededRandom random_;
  const LinkOptions options_;
  bool up_ = true;
  absl::Duration extra_ = absl::ZeroDuration();
};

// What a node's watch tells its storage (SimEtcdStorage's watched reads) besides the events.
enum class WatchSignal {
  kBroken,   // The stream broke (link cut, the watch fault): events are held back until it resumes.
  kResumed,  // Resumed from the next revision; every missed change follows, in order.
  kReloaded,  // The next revision was compacted away: a full reload at the given revision.
};

// What the invariants hear of every write that landed through a SimEtcdStorage.
struct LandedWrite {
  std::string key;  // Storage key.
  bool deleted = false;
  int64_t revision = 0;   // The store revision it landed at.
  int64_t fenced_on = 0;  // The lock revision it was conditioned on; 0: unconditional.
};

class SimEtcdStorage final : public ha::FencedStorage {
 public:
  // `path` as the configuration's (normalized like server/etcd: "/vault/").
  SimEtcdStorage(Link& link, absl::string_view path);

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) override;
  absl::Status Put(absl::string_view key, absl::string_view value) override;
  absl::Status Delete(absl::string_view key) override;
  absl::StatusOr<std::vector<std::string>> List(absl::string_view prefix) override;

  void Unfence() override {
    mode_ = Mode::kUnfenced;
    Forget();
  }
  void MakeReadOnly() override {
    mode_ = Mode::kReadOnly;
    Forget();
  }
  void FenceOn(const ha::LockGrant& grant) override {
    mode_ = Mode::kFenced;
    fence_ = grant;
    Forget();
  }

  // Watched reads of a performance standby (server/etcd's EtcdStorage, docs/ha.md): while
  // read-only, watched and the watch live, Get answers from the values it read since, dropping
  // each key the watch reports changed; any break of the watch forgets them all. Unlike the real
  // server (which may lag by the watch's delivery, docs/ha.md), it answers from memory only once
  // the watch has delivered every revision the store has committed — what a round trip for the
  // store's revision would confirm — so that reads stay linearizable and ha_fresh_reads holds
  // as stated.
  void BeginWatchedReads() override;
  void Changed(const std::vector<ha::WatchEvent>& events) override;
  void EndWatchedReads() override;
  // From the node's watch (SimCoordinatorOptions::on_watch).
  void OnWatch(WatchSignal signal, int64_t revision);
  // Get calls answered from memory.
  int64_t cached_reads() const { return cached_reads_; }
  bool fenced() const { return mode_ == Mode::kFenced; }
  bool read_only() const { return mode_ == Mode::kReadOnly; }

  void SetLandedListener(std::function<void(const LandedWrite&)> listener) {
    landed_ = std::move(listener);
  }

 private:
  enum class Mode { kUnfenced, kReadOnly, kFenced };
  absl::Status Write(Op op);
  bool CacheUsable() const;
  void Forget() { cache_.clear(); }

  Link& link_;
  const std::string path_;
  Mode mode_ = Mode::kUnfenced;
  ha::LockGrant fence_;
  std::function<void(const LandedWrite&)> landed_;
  // Only under the planted bug bug.sim_etcd.stale_standby_reads: what it read while read-only.
  std::map<std::string, std::optional<std::string>, std::less<>> standby_copy_;
  // Watched reads.
  bool watched_ = false;
  bool live_ = false;
  int64_t delivered_ = 0;  // The highest store revision the watch delivered.
  std::map<std::string, std::optional<std::string>, std::less<>> cache_;
  int64_t cached_reads_ = 0;
  bool keep_across_breaks_ = false;  // Only under bug.sim_etcd.keep_cache_across_watch_break.
};

// How often a broken watch tries to resume (server/etcd's kRetryPause).
inline constexpr absl::Duration kWatchRetry = absl::Seconds(1);

struct SimCoordinatorOptions {
  std::string path = "/vault/";
  absl::Duration lock_ttl = absl::Seconds(15);
  // This node's clock runs at `clock_rate` times real time (clock skew): every duration it
  // measures (renewals, the loss deadline) lasts 1/clock_rate of real time... inverted: a slow
  // clock (rate < 1) makes them last longer. 1: no skew.
  double clock_rate = 1.0;
  // Runs on the node's executor, in order with the watch's events: kBroken as the stream breaks,
  // kResumed before the first replayed batch, kReloaded (with the store revision it reloaded at)
  // before the reload's batch.
  std::function<void(WatchSignal, int64_t revision)> on_watch;
};

class SimEtcdCoordinator final : public ha::Coordinator {
 public:
  // `executor` is the node's (its tasks die with the process); the link must outlive this.
  SimEtcdCoordinator(Link& link, Executor& executor, Clock& clock, SimCoordinatorOptions options);
  ~SimEtcdCoordinator() override;

  void Campaign(std::string holder_id, WonCallback won, LostCallback lost) override;
  absl::Status Resign() override;
  absl::StatusOr<std::optional<std::string>> Holder() override;
  absl::StatusOr<std::unique_ptr<ha::WatchHandle>> Watch(std::string prefix,
                                                         EventsCallback on_events) override;

  const std::string& lock_prefix() const { return lock_prefix_; }
  // The node's process died: the campaign ends without a word to the store (its lease runs out
  // by itself) and without a callback.
  void Abandon();
  // The node stops for `d` (SIGSTOP, a long GC pause): none of its HA timers fires during it;
  // afterwards each fires `d` later than it would have.
  void Pause(absl::Duration d);
  // Changes the skew of this node's clock from now on.
  void SetClockRate(double rate) { options_.clock_rate = rate; }
  // The lock revision this node holds, 0 when none.
  int64_t held_revision() const;
  // The watch fault: every watch of this node breaks now and stays broken for at least `d`;
  // then (once the link is up) it resumes from the revision after the last one it sent, or, when
  // the store compacted past that revision meanwhile, falls back to a full reload. False when
  // the node has no watch.
  bool BreakWatches(absl::Duration d);
  // Forced breaks end now (faults stopped); broken watches resume at their next retry.
  void EndForcedBreaks();

 private:
  struct State;
  struct WatchState;
  void BreakWatch(const std::shared_ptr<WatchState>& w);
  void ArmResume(const std::shared_ptr<WatchState>& w);
  void Resume(const std::shared_ptr<WatchState>& w);
  // Posts `out` (events) to the watcher after a link latency, never ahead of an earlier batch;
  // `signal` first when set.
  void Deliver(const std::shared_ptr<WatchState>& w, std::vector<ha::WatchEvent> out,
               std::optional<std::pair<WatchSignal, int64_t>> signal = std::nullopt);
  // `d` of this node's clock, in real (simulated) time.
  absl::Duration Real(absl::Duration d) const;
  void Start(const std::shared_ptr<State>& c);
  void Check(const std::shared_ptr<State>& c);
  void Renew(const std::shared_ptr<State>& c);
  void ArmLoss(const std::shared_ptr<State>& c);
  void ArmRenew(const std::shared_ptr<State>& c, absl::Duration after);
  // Ends the campaign with `why`: through `won` before a grant, `lost` after.
  void End(const std::shared_ptr<State>& c, absl::Status why);
  void Drop(const std::shared_ptr<State>& c);

  Link& link_;
  Executor& executor_;
  Clock& clock_;
  SimCoordinatorOptions options_;
  const std::string lock_prefix_;
  std::shared_ptr<State> campaign_;
  std::vector<std::weak_ptr<WatchState>> watches_;
};

// "/vault/" for "vault", "/vault" or "/vault/"; "/" for "" or "/" (as server/etcd).
std::string NormalizePath(absl::string_view path);

}  // namespace bulwark::sim::etcd

#endif  // BULWARK_SIM_ETCD_SIM_ETCD_CLIENT_H_
