// The failpoint registry (see registry.h) and the out-of-line paths of failpoint.h.
#include "faultinject/registry.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"

namespace bulwark::faultinject {

namespace internal {

std::atomic<Registry*> g_installed_registry{nullptr};

// The fast path's acquire load pairs with the release store in InstallRegistry, so the registry's
// construction is visible to the thread that saw the pointer. (An acquire load rather than a
// relaxed load plus a fence: ThreadSanitizer does not model standalone fences, and GCC rejects
// atomic_thread_fence under -fsanitize=thread with -Werror. On x86 the acquire load is a plain
// load either way.)
Action EvaluateInstalled(Registry* registry, absl::string_view name) {
  return registry->Evaluate(name);
}

absl::Status EvaluateStatusInstalled(Registry* registry, absl::string_view name) {
  return registry->EvaluateStatus(name);
}

void EvaluateAsyncInstalled(Registry* registry, Executor& executor, absl::string_view name,
                            Continuation next) {
  registry->EvaluateAsync(executor, name, std::move(next));
}

Registry* RegistryOf(FailpointSource* source) {
  Registry* registry = dynamic_cast<Registry*>(source);
  CHECK(registry != nullptr) << "an Env's failpoints must be a faultinject::Registry";
  return registry;
}

}  // namespace internal

void InstallRegistry(Registry* registry) {
  internal::g_installed_registry.store(registry, std::memory_order_release);
}

Registry* InstalledRegistry() {
  return internal::g_installed_registry.load(std::memory_order_acquire);
}

absl::Status Action::ToStatus(absl::string_view name) const {
  if (kind != ActionKind::kReturn) return absl::OkStatus();
  return absl::Status(code, absl::StrCat("failpoint ", name, " injected ", StatusCodeName(code)));
}

std::string Action::ToString() const {
  switch (kind) {
    case ActionKind::kNone:
      return "off";
    case ActionKind::kReturn:
      return absl::StrCat("return(", StatusCodeName(code), ")");
    case ActionKind::kDelay:
      return absl::StrCat("delay(", absl::ToInt64Milliseconds(delay), ")");
    case ActionKind::kHang:
      return "hang";
    case ActionKind::kCrash:
      return "crash";
  }
  return "off";
}

Registry::Registry(Random& random) : random_(random) {}

Registry::~Registry() {
  CHECK(InstalledRegistry() != this) << "failpoint registry destroyed while installed";
}

Registry::Site* Registry::FindOrAdd(absl::string_view name) {
  auto it = sites_.find(name);
  if (it != sites_.end()) return &it->second;
  if (sites_.size() >= kSitesMax) return nullptr;
  return &sites_.emplace(std::string(name), Site()).first->second;
}

absl::Status Registry::Set(absl::string_view name, absl::string_view actions) {
  RETURN_IF_ERROR(ValidateFailpointName(name));
  absl::StatusOr<std::vector<Term>> terms = ParseActions(actions);
  if (!terms.ok()) return Annotate(terms.status(), absl::StrCat("failpoint ", name));
  {
    std::lock_guard<std::mutex> lock(mu_);
    Site* site = FindOrAdd(name);
    if (site == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "failpoint registry already tracks ", kSitesMax, " sites; cannot configure ", name));
    }
    site->terms = *std::move(terms);
    ++site->generation;
  }
  changed_.notify_all();
  return absl::OkStatus();
}

absl::Status Registry::Configure(absl::string_view config) {
  ASSIGN_OR_RETURN(std::vector<FailpointConfig> entries, ParseConfig(config));
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t new_sites = 0;
    for (const FailpointConfig& entry : entries) {
      if (sites_.find(entry.name) == sites_.end()) ++new_sites;
    }
    if (sites_.size() + new_sites > kSitesMax) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "failpoint configuration would make the registry track more than ", kSitesMax, " sites"));
    }
    for (FailpointConfig& entry : entries) {
      Site* site = FindOrAdd(entry.name);
      site->terms = std::move(entry.terms);
      ++site->generation;
    }
  }
  changed_.notify_all();
  return absl::OkStatus();
}

void Registry::Clear(absl::string_view name) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sites_.find(name);
    if (it == sites_.end()) return;
    it->second.terms.clear();
    ++it->second.generation;
  }
  changed_.notify_all();
}

void Registry::ClearAll() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, site] : sites_) {
      if (site.terms.empty()) continue;
      site.terms.clear();
      ++site.generation;
    }
  }
  changed_.notify_all();
}

std::optional<std::string> Registry::Get(absl::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sites_.find(name);
  if (it == sites_.end() || it->second.terms.empty()) return std::nullopt;
  // Used-up terms can never be chosen again, and "0*" does not parse: leave them out.
  std::vector<Term> remaining;
  for (const Term& term : it->second.terms) {
    if (!term.count.has_value() || *term.count > 0) remaining.push_back(term);
  }
  if (remaining.empty()) return std::string("off");
  return FormatActions(remaining);
}

void Registry::EnableBuggify(BuggifyOptions options) {
  std::lock_guard<std::mutex> lock(mu_);
  buggify_ = std::move(options);
  for (auto& [name, site] : sites_) {
    site.buggify_state = 0;
    site.buggify_random.reset();
  }
}

void Registry::DisableBuggify() {
  std::lock_guard<std::mutex> lock(mu_);
  buggify_.reset();
}

void Registry::SetEffects(Effects* effects) {
  std::lock_guard<std::mutex> lock(mu_);
  effects_ = effects;
}

void Registry::SetObserver(std::function<void(const FireEvent&)> observer) {
  std::lock_guard<std::mutex> lock(mu_);
  observer_ = std::move(observer);
}

Action Registry::EvaluateTerms(Site& site) {
  for (Term& term : site.terms) {
    if (term.count.has_value() && *term.count == 0) continue;
    if (term.probability_millionths < kProbabilityScale &&
        random_.Uniform(kProbabilityScale) >= term.probability_millionths) {
      continue;
    }
    if (term.count.has_value()) --*term.count;
    return term.action;  // kNone for "off".
  }
  return Action();
}

Action Registry::EvaluateBuggify(absl::string_view name, Site& site) {
  if (site.buggify_state == 0) {
    site.buggify_state = 3;
    if (!absl::StartsWith(name, "bug.")) {
      for (const BuggifyOptions::Rule& rule : buggify_->rules) {
        if (!absl::StartsWith(name, rule.prefix)) continue;
        site.buggify_action = rule.action;
        site.buggify_random.emplace(StableHash64(name, buggify_->seed));
        site.buggify_state =
            site.buggify_random->Bernoulli(buggify_->activation_probability) ? 1 : 2;
        break;
      }
    }
  }
  if (site.buggify_state != 1) return Action();
  if (!site.buggify_random->Bernoulli(buggify_->fire_probability)) return Action();
  return site.buggify_action;
}

Action Registry::Evaluate(absl::string_view name) { return EvaluateInternal(name, nullptr); }

Action Registry::EvaluateInternal(absl::string_view name, uint64_t* generation) {
  Action action;
  uint64_t hit = 0;
  bool by_buggify = false;
  std::function<void(const FireEvent&)> observer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Site* site = FindOrAdd(name);
    if (site == nullptr) {
      ++untracked_;
      return Action();
    }
    hit = ++site->hits;
    if (!site->terms.empty()) {
      action = EvaluateTerms(*site);
    } else if (buggify_.has_value()) {
      action = EvaluateBuggify(name, *site);
      by_buggify = static_cast<bool>(action);
    }
    if (!action) return action;
    ++site->fires;
    if (generation != nullptr) *generation = site->generation;
    observer = observer_;
  }
  if (observer) observer(FireEvent{name, hit, action, by_buggify});
  return action;
}

absl::Status Registry::EvaluateStatus(absl::string_view name) {
  uint64_t generation = 0;
  const Action action = EvaluateInternal(name, &generation);
  switch (action.kind) {
    case ActionKind::kNone:
      return absl::OkStatus();
    case ActionKind::kReturn:
      return action.ToStatus(name);
    default:
      break;
  }
  Effects* effects;
  {
    std::lock_guard<std::mutex> lock(mu_);
    effects = effects_;
  }
  if (effects != nullptr) return effects->Apply(name, action);
  return ApplyDefault(name, action, generation);
}

void Registry::EvaluateAsync(Executor& executor, absl::string_view name, Continuation next) {
  uint64_t generation = 0;
  const Action action = EvaluateInternal(name, &generation);
  switch (action.kind) {
    case ActionKind::kNone:
      next(absl::OkStatus());
      return;
    case ActionKind::kReturn:
      next(action.ToStatus(name));
      return;
    case ActionKind::kDelay:
      // The continuation waits on the executor's clock (simulated time in the simulator); the
      // thread that evaluated the failpoint goes on with its other work.
      executor.PostAfter(action.delay,
                         [next = std::move(next)]() mutable { next(absl::OkStatus()); });
      return;
    case ActionKind::kHang:
      return;  // `next` is destroyed here, never run.
    case ActionKind::kCrash:
      break;
  }
  Effects* effects;
  {
    std::lock_guard<std::mutex> lock(mu_);
    effects = effects_;
  }
  if (effects != nullptr) {
    next(effects->Apply(name, action));
    return;
  }
  next(ApplyDefault(name, action, generation));  // Aborts.
}

absl::Status Registry::ApplyDefault(absl::string_view name, const Action& action,
                                    uint64_t generation) {
  switch (action.kind) {
    case ActionKind::kDelay:
      // A real process at a synchronous site: the delay is real time spent in the call.
      std::this_thread::sleep_for(absl::ToChronoNanoseconds(action.delay));
      return absl::OkStatus();
    case ActionKind::kHang: {
      // Blocks until someone reconfigures or clears this failpoint (fail-rs's "pause"), counting
      // from the configuration that fired, so a change made meanwhile is not missed.
      std::unique_lock<std::mutex> lock(mu_);
      Site* site = FindOrAdd(name);
      if (site == nullptr) return absl::OkStatus();
      changed_.wait(lock, [&] { return site->generation != generation; });
      return absl::OkStatus();
    }
    case ActionKind::kCrash:
      std::fprintf(stderr, "failpoint %.*s: crash\n", static_cast<int>(name.size()), name.data());
      std::fflush(stderr);
      std::abort();
    default:
      return absl::OkStatus();
  }
}

std::vector<SiteStats> Registry::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SiteStats> out;
  out.reserve(sites_.size());
  for (const auto& [name, site] : sites_) {
    SiteStats stats;
    stats.name = name;
    stats.hits = site.hits;
    stats.fires = site.fires;
    stats.configured = !site.terms.empty();
    if (site.buggify_state == 1 || site.buggify_state == 2) {
      stats.buggify_active = site.buggify_state == 1;
    }
    out.push_back(std::move(stats));
  }
  return out;
}

uint64_t Registry::untracked_evaluations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return untracked_;
}

absl::Status ConfigureFromEnvironment(Registry& registry, const char* variable) {
  const char* value = std::getenv(variable);
  if (value == nullptr || *value == '\0') return absl::OkStatus();
  return Annotate(registry.Configure(value), absl::StrCat("environment variable ", variable));
}

ScopedInstall::ScopedInstall(Registry& registry) : previous_(InstalledRegistry()) {
  InstallRegistry(&registry);
}

ScopedInstall::~ScopedInstall() { InstallRegistry(previous_); }

ScopedFailpoint::ScopedFailpoint(Registry& registry, absl::string_view name,
                                 absl::string_view actions)
    : registry_(registry), name_(name), previous_(registry.Get(name)) {
  CHECK_OK(registry_.Set(name, actions)) << "ScopedFailpoint " << name_;
}

ScopedFailpoint::~ScopedFailpoint() {
  if (previous_.has_value()) {
    CHECK_OK(registry_.Set(name_, *previous_));
  } else {
    registry_.Clear(name_);
  }
}

}  // namespace bulwark::faultinject
