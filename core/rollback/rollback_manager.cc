// The rollback ticker.
#include "core/rollback/rollback_manager.h"

#include <utility>

namespace bulwark::rollback {

RollbackManager::RollbackManager(Env& env, Pass pass, absl::Duration period)
    : env_(env), pass_(std::move(pass)), period_(period) {}

RollbackManager::~RollbackManager() {
  *alive_ = false;
  Stop();
}

void RollbackManager::Start() {
  if (timer_ == 0) Schedule();
}

void RollbackManager::Stop() {
  if (timer_ != 0) env_.executor.Cancel(timer_);
  timer_ = 0;
}

void RollbackManager::Schedule() {
  std::weak_ptr<bool> alive = alive_;
  timer_ = env_.executor.PostAfter(period_, [this, alive]() {
    if (alive.expired()) return;
    Schedule();
    if (in_pass_) return;
    in_pass_ = true;
    ++passes_;
    pass_([this, alive]() {
      if (alive.expired()) return;
      in_pass_ = false;
    });
  });
}

}  // namespace bulwark::rollback
