// The failpoint registry: which failpoints are configured and how, the BUGGIFY-style random mode
// of the simulator, and per-site counters. An explicit object: randomness comes from an injected
// Random, never from a hidden global; a process installs one with InstallRegistry (failpoint.h).
#ifndef BULWARK_FAULTINJECT_REGISTRY_H_
#define BULWARK_FAULTINJECT_REGISTRY_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "base/env/failpoint_source.h"
#include "base/env/random.h"
#include "faultinject/failpoint.h"
#include "faultinject/spec.h"

namespace bulwark::faultinject {

// Most distinct site names a registry tracks (configured or merely evaluated). Site names are
// string literals, so this is only reached by a programming error; evaluations of further
// unconfigured names are then not counted (untracked_evaluations()).
inline constexpr size_t kSitesMax = 4096;

// The environment variable read by ConfigureFromEnvironment.
inline constexpr char kEnvironmentVariable[] = "BULWARK_FAILPOINTS";

// Carries out kDelay, kHang and kCrash for sites that use FailpointStatus (synchronous sites), and
// kCrash for asynchronous ones (FailpointAsync). Called on the thread that evaluated the
// failpoint, without the registry's lock held.
class Effects {
 public:
  virtual ~Effects() = default;
  // Returns the status the site returns: OK to carry on.
  virtual absl::Status Apply(absl::string_view name, const Action& action) = 0;
};

// One failpoint that fired, as reported to the observer.
struct FireEvent {
  absl::string_view name;  // Valid during the callback only.
  uint64_t hit = 0;        // 1-based: which evaluation of this name fired.
  Action action;
  bool buggify = false;  // Chosen by buggify mode rather than by a configuration.
};

// BUGGIFY (FoundationDB): each eligible site is switched on for the whole run with probability
// `activation_probability`, decided once, from a stream derived from `seed` and the site's name
// (so the decision does not depend on which sites ran first); an active site then fires with
// probability `fire_probability` on each hit, from the same per-site stream. A site is eligible
// when its name starts with one of the rules' prefixes (the first matching rule gives the action)
// and does not start with "bug.": planted bugs are never chosen at random. A configured failpoint
// (even "off") takes precedence over buggify.
struct BuggifyOptions {
  struct Rule {
    std::string prefix;
    Action action;
  };
  uint64_t seed = 0;
  double activation_probability = 0.25;
  double fire_probability = 0.25;
  std::vector<Rule> rules;
};

struct SiteStats {
  std::string name;
  uint64_t hits = 0;   // Evaluations while the registry was installed.
  uint64_t fires = 0;  // Evaluations that returned an action.
  bool configured = false;
  std::optional<bool> buggify_active;  // Set once buggify decided for this site.
};

// Thread-safe (a std::mutex guards the state; the fast path in failpoint.h takes no lock). A
// registry is also a FailpointSource: put it in a node's Env (Env::failpoints) to give that node
// failpoint state of its own, without installing it.
class Registry final : public FailpointSource {
 public:
  // `random` draws the percentages of configured terms; it must outlive the registry and is used
  // under the registry's lock only.
  explicit Registry(Random& random);
  // REQUIRES: not installed (InstalledRegistry() != this).
  ~Registry() override;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Configures one failpoint from its actions ("25%3*return(unavailable)"), replacing any earlier
  // configuration and its counts. InvalidArgument (naming the bad term) leaves it unchanged.
  absl::Status Set(absl::string_view name, absl::string_view actions);

  // Applies a whole configuration ("a=...;b=..."): all entries or, on a parse error, none.
  absl::Status Configure(absl::string_view config);

  // Removes the configuration of `name` (buggify may choose it again); a no-op if none.
  void Clear(absl::string_view name);
  // Removes every configuration. Counters and buggify decisions stay.
  void ClearAll();

  // The configured actions of `name` in the grammar, as they stand: remaining counts, used-up terms
  // left out ("off" when none is left). nullopt when it is not configured.
  std::optional<std::string> Get(absl::string_view name) const;

  // Turns buggify mode on (replacing earlier options and forgetting earlier decisions) or off.
  void EnableBuggify(BuggifyOptions options);
  void DisableBuggify();

  // Who carries out delay, hang and crash for FailpointStatus sites. nullptr (the default): a
  // real process's behaviour — sleep for a delay; block a hang until this failpoint is
  // reconfigured or cleared; print the name to stderr and abort() for a crash. Not owned; must
  // outlive its use.
  void SetEffects(Effects* effects);

  // Called (without the lock) for every fire, for traces and fault schedules. Empty: none.
  void SetObserver(std::function<void(const FireEvent&)> observer);

  // The slow paths behind Failpoint / FailpointStatus (failpoint.h). Counts the hit, then asks
  // the configuration, else buggify.
  Action Evaluate(absl::string_view name);
  absl::Status EvaluateStatus(absl::string_view name);
  // The slow path behind FailpointAsync (failpoint.h): delay and hang go through `executor`,
  // never the Effects, and never block.
  void EvaluateAsync(Executor& executor, absl::string_view name, Continuation next);

  // Every site seen or configured, sorted by name.
  std::vector<SiteStats> Stats() const;
  uint64_t untracked_evaluations() const;

 private:
  struct Site {
    uint64_t hits = 0;
    uint64_t fires = 0;
    std::vector<Term> terms;  // Empty: not configured. Counts go down as terms are chosen.
    uint64_t generation = 0;  // Bumped by every Set/Clear, to end hangs.
    int buggify_state = 0;    // 0 undecided, 1 active, 2 inactive, 3 not eligible.
    std::optional<SeededRandom> buggify_random;
    Action buggify_action;
  };

  Site* FindOrAdd(absl::string_view name);
  // Evaluate; on a fire also reports the site's configuration generation.
  Action EvaluateInternal(absl::string_view name, uint64_t* generation);
  Action EvaluateTerms(Site& site);
  Action EvaluateBuggify(absl::string_view name, Site& site);
  absl::Status ApplyDefault(absl::string_view name, const Action& action, uint64_t generation);

  Random& random_;
  mutable std::mutex mu_;
  std::condition_variable changed_;  // Notified on every configuration change.
  std::map<std::string, Site, std::less<>> sites_;
  std::optional<BuggifyOptions> buggify_;
  Effects* effects_ = nullptr;
  std::function<void(const FireEvent&)> observer_;
  uint64_t untracked_ = 0;
};

// Configures `registry` from the environment variable `variable` (BULWARK_FAILPOINTS unless
// given), if it is set and not empty; OK and nothing happens otherwise. Call it explicitly at
// startup. InvalidArgument naming the variable and the bad entry.
absl::Status ConfigureFromEnvironment(Registry& registry,
                                      const char* variable = kEnvironmentVariable);

// Installs a registry for a scope, restoring the previous one on exit (tests, simulator runs).
class ScopedInstall {
 public:
  explicit ScopedInstall(Registry& registry);
  ~ScopedInstall();
  ScopedInstall(const ScopedInstall&) = delete;
  ScopedInstall& operator=(const ScopedInstall&) = delete;

 private:
  Registry* previous_;
};

// Configures one failpoint for a scope and restores its previous configuration (or none) on exit.
// For tests: an invalid `actions` is a programming error and CHECK-fails.
class ScopedFailpoint {
 public:
  ScopedFailpoint(Registry& registry, absl::string_view name, absl::string_view actions);
  ~ScopedFailpoint();
  ScopedFailpoint(const ScopedFailpoint&) = delete;
  ScopedFailpoint& operator=(const ScopedFailpoint&) = delete;

 private:
  Registry& registry_;
  std::string name_;
  std::optional<std::string> previous_;
};

}  // namespace bulwark::faultinject

#endif  // BULWARK_FAULTINJECT_REGISTRY_H_
