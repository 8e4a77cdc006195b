// Vault's RollbackManager (vault/rollback.go): on the active node, between unseal and seal, it
// asks every mount that keeps write-ahead log entries to roll back the ones old enough, once
// every period (1 minute), on the Env's timers. A pass still running when the next tick comes
// makes that tick a no-op, so passes never overlap.
#ifndef BULWARK_CORE_ROLLBACK_ROLLBACK_MANAGER_H_
#define BULWARK_CORE_ROLLBACK_ROLLBACK_MANAGER_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "base/env/env.h"

namespace bulwark::rollback {

// Vault's rollbackPeriod.
inline constexpr absl::Duration kRollbackPeriod = absl::Minutes(1);

class RollbackManager {
 public:
  // One pass over every mount; it calls `done` when every mount answered (errors are the pass's
  // to log).
  using Pass = std::function<void(absl::AnyInvocable<void()> done)>;

  RollbackManager(Env& env, Pass pass, absl::Duration period = kRollbackPeriod);
  ~RollbackManager();
  RollbackManager(const RollbackManager&) = delete;
  RollbackManager& operator=(const RollbackManager&) = delete;

  // Starts ticking (the first pass one period from now). Idempotent.
  void Start();
  // Stops ticking; a pass in flight finishes, but no new one starts. Idempotent.
  void Stop();
  bool running() const { return timer_ != 0; }
  uint64_t passes() const { return passes_; }

 private:
  void Schedule();

  Env& env_;
  Pass pass_;
  const absl::Duration period_;
  uint64_t timer_ = 0;
  bool in_pass_ = false;
  uint64_t passes_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bulwark::rollback

#endif  // BULWARK_CORE_ROLLBACK_ROLLBACK_MANAGER_H_
