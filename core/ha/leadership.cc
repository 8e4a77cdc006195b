#include "core/ha/leadership.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/crypto/uuid.h"
#include "core/barrier/barrier.h"
#include "faultinject/failpoint.h"

namespace bulwark::ha {

Leadership::Leadership(Env& env, node::Node& node, Coordinator& coordinator, FencedStorage& storage,
                       LogSink& log, LeadershipOptions options)
    : env_(env),
      node_(node),
      coordinator_(coordinator),
      storage_(storage),
      log_(log),
      options_(std::move(options)),
      advertise_(options_.advertise) {
  storage_.Unfence();  // Sealed: only sys/init writes.
  storage_.SetFencedListener([this](const LockGrant& fenced) {
    // The store says the lock is gone before our renewals noticed. Act after the write has
    // returned (the listener runs inside a storage call, perhaps a plugin's).
    std::weak_ptr<bool> alive = alive_;
    env_.executor.Post([this, alive, revision = fenced.revision] {
      if (alive.expired() || !grant_.has_value() || grant_->revision != revision) return;
      (void)coordinator_.Resign();  // Ends the campaign; revokes what is left of its lease.
      Lost(absl::UnavailableError(
          absl::StrCat("a write was fenced: the lock entry of revision ", revision, " is gone")));
    });
  });
}

Leadership::~Leadership() {
  storage_.SetFencedListener(nullptr);
  if (retry_ != kNoTimer) env_.executor.Cancel(retry_);
  (void)coordinator_.Resign();
}

void Leadership::Log(LogLevel level, std::string message, std::string error) {
  LogRecord r;
  r.level = level;
  r.time = env_.clock.WallNow();
  r.source = "ha";
  r.message = std::move(message);
  if (!error.empty()) r.fields.emplace_back("error", std::move(error));
  log_.Write(r);
}

void Leadership::OnUnsealed() {
  unsealed_ = true;
  storage_.MakeReadOnly();
  if (!options_.performance_standby) return Contend();
  std::weak_ptr<bool> alive = alive_;
  BecomePerfStandby([this, alive] {
    if (!alive.expired()) Contend();
  });
}

void Leadership::BecomePerfStandby(absl::AnyInvocable<void()> then) {
  if (watch_ == nullptr) {
    // Every key: the storage's watched reads need them all; barrier entries (physical
    // "logical/<key>") become invalidations.
    std::weak_ptr<bool> alive = alive_;
    absl::StatusOr<std::unique_ptr<WatchHandle>> w =
        coordinator_.Watch("", [this, alive](std::vector<WatchEvent> events) {
          if (!alive.expired()) OnStoreEvents(events);
        });
    if (w.ok()) {
      watch_ = *std::move(w);
      storage_.BeginWatchedReads();
    } else {
      Log(LogLevel::kWarn, "performance standby: cannot watch the store; no invalidations",
          w.status().ToString());
    }
  }
  node_.BecomePerfStandby([then = std::move(then)]() mutable { then(); });
}

void Leadership::OnStoreEvents(const std::vector<WatchEvent>& events) {
  // First the storage, so that what the node reloads below is read fresh.
  storage_.Changed(events);
  if (node_.role() != node::Role::kPerfStandby) return;
  // One invalidation per key in the batch, in store order (a mount table written twice in one
  // batch is reloaded once).
  std::vector<std::string> keys;
  for (const WatchEvent& e : events) {
    absl::string_view key = e.key;
    if (key == kBarrierKeyringPath) {
      // Before the entries sealed under the new term (store order): the rotation wrote it first.
      node_.ReloadKeyring();
      continue;
    }
    if (!absl::ConsumePrefix(&key, "logical/")) continue;
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.emplace_back(key);
  }
  for (const std::string& key : keys) node_.Invalidate(key);
}

void Leadership::OnSealed() {
  unsealed_ = false;
  if (watch_ != nullptr) storage_.EndWatchedReads();
  watch_.reset();
  if (retry_ != kNoTimer) env_.executor.Cancel(retry_);
  retry_ = kNoTimer;
  grant_.reset();
  serving_ = false;
  storage_.MakeReadOnly();
  if (absl::Status s = coordinator_.Resign(); !s.ok()) {
    Log(LogLevel::kWarn, "could not release the HA lock at seal", s.ToString());
  }
  // The core leaves the active role too: otherwise the next unseal brings every mount up (and
  // starts plugins) on a node that does not hold the lock. Found by the simulated cluster
  // (ha_plugins, `--scenario cluster --seed 12`).
  node_.StepDown([] {});
}

void Leadership::Contend() {
  retry_ = kNoTimer;
  if (!unsealed_) return;
  const std::string id = crypto::RandomUuid(env_.random);
  Log(LogLevel::kInfo, "contending for the HA lock");
  std::weak_ptr<bool> alive = alive_;
  coordinator_.Campaign(
      id,
      [this, alive](absl::StatusOr<LockGrant> grant) {
        if (!alive.expired()) Won(std::move(grant));
      },
      [this, alive](absl::Status why) {
        if (!alive.expired()) Lost(std::move(why));
      });
}

void Leadership::Won(absl::StatusOr<LockGrant> grant) {
  if (!grant.ok()) {
    Log(LogLevel::kWarn, "HA campaign failed; retrying", grant.status().ToString());
    // The planted bug gives up after a failed campaign: once every node's campaign failed (the
    // store was down), nobody leads again, which the simulator's ha_liveness must catch.
    if (BW_PLANTED_BUG("bug.ha.give_up_after_failed_campaign")) return;
    std::weak_ptr<bool> alive = alive_;
    retry_ = env_.executor.PostAfter(options_.retry_after, [this, alive] {
      if (!alive.expired()) Contend();
    });
    return;
  }
  grant_ = *grant;
  active_since_ = env_.clock.WallNow();
  storage_.FenceOn(*grant);
  Log(LogLevel::kInfo, absl::StrCat("acquired the HA lock (revision ", grant->revision,
                                    "): becoming the active node"));
  std::weak_ptr<bool> alive = alive_;
  const std::string holder = grant->holder_id;
  node_.BecomeActive([this, alive, holder](absl::Status s) {
    if (alive.expired() || !grant_.has_value() || grant_->holder_id != holder) return;
    if (!s.ok()) Log(LogLevel::kError, "could not become active", s.ToString());
    if (options_.prepare_active) {
      if (absl::Status p = options_.prepare_active(); !p.ok()) {
        Log(LogLevel::kWarn, "could not set up the cluster port; standbys will redirect",
            p.ToString());
      }
    }
    if (absl::Status p = PublishAdvertisement(node_.barrier(), holder, advertise_); !p.ok()) {
      Log(LogLevel::kWarn, "could not write the leader advertisement", p.ToString());
    }
    serving_ = true;
    Log(LogLevel::kInfo, "active: serving requests");
  });
}

void Leadership::Lost(absl::Status why) {
  Log(LogLevel::kWarn, "lost the HA lock: stepping down", why.ToString());
  StandDown(options_.retry_after, "standby after losing the HA lock; contending again in ");
}

void Leadership::StepDown() {
  if (!grant_.has_value()) {
    Log(LogLevel::kInfo, "step-down requested, but this node does not hold the HA lock");
    return;
  }
  if (draining_) return;
  if (options_.drain_requests) {
    Log(LogLevel::kInfo, "stepping down by request: waiting for requests in flight");
    draining_ = true;
    std::weak_ptr<bool> alive = alive_;
    options_.drain_requests([this, alive, holder = grant_->holder_id] {
      if (alive.expired()) return;
      draining_ = false;
      // The lock may have been lost meanwhile (then the node has stood down already).
      if (!grant_.has_value() || grant_->holder_id != holder) return;
      FinishStepDown();
    });
    return;
  }
  FinishStepDown();
}

void Leadership::FinishStepDown() {
  Log(LogLevel::kInfo, "stepping down by request: releasing the HA lock");
  // Standbys must not find a stale address; the entry is ours while the lock is (a fenced write).
  if (serving_) {
    if (absl::Status s = ClearAdvertisement(node_.barrier(), grant_->holder_id); !s.ok()) {
      Log(LogLevel::kWarn, "could not clear the leader advertisement", s.ToString());
    }
  }
  if (absl::Status s = coordinator_.Resign(); !s.ok()) {
    // The lease then expires by itself; our writes are fenced either way.
    Log(LogLevel::kWarn, "could not release the HA lock at step-down", s.ToString());
  }
  StandDown(options_.step_down_wait, "stepped down by request; contending again in ");
}

void Leadership::StandDown(absl::Duration wait, std::string done_message) {
  grant_.reset();
  serving_ = false;
  storage_.MakeReadOnly();
  if (retry_ != kNoTimer) env_.executor.Cancel(retry_);
  retry_ = kNoTimer;
  std::weak_ptr<bool> alive = alive_;
  auto contend_later = [this, alive, wait, done_message = std::move(done_message)]() mutable {
    if (alive.expired() || !unsealed_) return;
    Log(LogLevel::kInfo, absl::StrCat(done_message, absl::FormatDuration(wait)));
    retry_ = env_.executor.PostAfter(wait, [this, alive] {
      if (!alive.expired()) Contend();
    });
    if (options_.performance_standby) BecomePerfStandby([] {});
  };
  // The planted bug leaves the node's plugins running after it lost the role, which the
  // simulator's ha_plugins must catch.
  if (BW_PLANTED_BUG("bug.ha.keep_plugins_after_step_down")) {
    env_.executor.Post(std::move(contend_later));
    return;
  }
  node_.StepDown(std::move(contend_later));
}

absl::StatusOr<LeaderView> Leadership::Leader() {
  LeaderView view;
  if (serving_) {
    view.is_self = true;
    view.leader_address = advertise_.api_addr;
    view.leader_cluster_address = advertise_.cluster_addr;
    view.active_since = active_since_;
    return view;
  }
  absl::StatusOr<std::optional<std::string>> holder = coordinator_.Holder();
  if (!holder.ok()) return holder.status();
  if (!holder->has_value() || (*holder)->empty()) return view;
  if (**holder != cached_holder_) {
    ++advertisement_reads_;
    absl::StatusOr<std::optional<Advertisement>> ad = ReadAdvertisement(node_.barrier(), **holder);
    if (!ad.ok()) return ad.status();
    // A holder that has not advertised itself yet is asked again next time.
    if (!ad->has_value()) return view;
    cached_holder_ = **holder;
    cached_ad_ = **ad;
  }
  view.leader_address = cached_ad_.api_addr;
  view.leader_cluster_address = cached_ad_.cluster_addr;
  return view;
}

}  // namespace bulwark::ha
