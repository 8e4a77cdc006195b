// The failpoint registry: counts and percentages with a seeded Random, configuration through the
// API and the environment, scoped guards, buggify determinism, effects and observers.
#include "faultinject/registry.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/env/executor.h"
#include "base/env/random.h"
#include "base/status/check.h"
#include "faultinject/failpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::faultinject {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kSeed = 20260101;

// Which of the first `n` evaluations of `name` fired, as a string of '0'/'1'.
std::string Pattern(absl::string_view name, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out.push_back(Failpoint(name) ? '1' : '0');
  return out;
}

TEST(FailpointTest, NothingFiresWithoutARegistry) {
  ASSERT_EQ(InstalledRegistry(), nullptr);
  EXPECT_FALSE(BW_FAILPOINT("storage.file.put.before_sync"));
  EXPECT_TRUE(BW_FAILPOINT_STATUS("storage.file.put.before_sync").ok());
}

TEST(RegistryTest, ReturnGivesTheStatusNamingTheFailpoint) {
  SeededRandom random(kSeed);
  Registry registry(random);
  ScopedInstall install(registry);
  ASSERT_TRUE(registry.Set("storage.x", "return(data_loss)").ok());
  const absl::Status status = BW_FAILPOINT_STATUS("storage.x");
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(status.message(), "failpoint storage.x injected data_loss");
  EXPECT_TRUE(BW_FAILPOINT_STATUS("storage.y").ok());
}

TEST(RegistryTest, CountsAreUsedUpInOrder) {
  SeededRandom random(kSeed);
  Registry registry(random);
  ScopedInstall install(registry);
  ASSERT_TRUE(registry.Set("a", "2*return(internal)->1*delay(7)").ok());
  EXPECT_EQ(Failpoint("a"), Action::Return(absl::StatusCode::kInternal));
  EXPECT_EQ(registry.Get("a"), "1*return(internal)->1*delay(7)");
  EXPECT_EQ(Failpoint("a"), Action::Return(absl::StatusCode::kInternal));
  EXPECT_EQ(Failpoint("a"), Action::Delay(absl::Milliseconds(7)));
  EXPECT_FALSE(Failpoint("a"));
  EXPECT_FALSE(Failpoint("a"));
  EXPECT_EQ(registry.Get("a"), "off");
}

TEST(RegistryTest, OffWithACountSelectsTheNthHit) {
  SeededRandom random(kSeed);
  Registry registry(random);
  ScopedInstall install(registry);
  ASSERT_TRUE(registry.Set("a", "6*off->1*crash->2*off->1*hang").ok());
  std::string kinds;
  for (int i = 0; i < 12; ++i) kinds += Failpoint("a").ToString() + " ";
  EXPECT_EQ(kinds, "off off off off off off crash off off hang off off ");
}

TEST(RegistryTest, PercentagesDrawFromTheInjectedRandom) {
  std::printf("seed %llu\n", static_cast<unsigned long long>(kSeed));
  std::string first;
  for (int run = 0; run < 2; ++run) {
    SeededRandom random(kSeed);
    Registry registry(random);
    ScopedInstall install(registry);
    ASSERT_TRUE(registry.Set("a", "25%return").ok());
    const std::string pattern = Pattern("a", 20000);
    const auto fired = std::count(pattern.begin(), pattern.end(), '1');
    EXPECT_GT(fired, 4600);  // 5000 expected; sd ~61.
    EXPECT_LT(fired, 5400);
    if (run == 0) first = pattern;
    EXPECT_EQ(pattern, first) << "same seed, different draws";
  }
  SeededRandom other(kSeed + 1);
  Registry registry(other);
  ScopedInstall install(registry);
  ASSERT_TRUE(registry.Set("a", "25%return").ok());
  EXPECT_NE(Pattern("a", 20000), first);
}

TEST(RegistryTest, AFailedDrawFallsThroughToTheNextTerm) {
  SeededRandom random(kSeed);
  Registry registry(random);
  ScopedInstall install(registry);
  ASSERT_TRUE(registry.Set("a", "10%crash->delay(3)").ok());
  int crashes = 0, delays = 0;
  for (int i = 0; i < 5000; ++i) {
    const Action action = Failpoint("a");
    if (action.kind == ActionKind::kCrash) ++crashes;
    if (action.kind == ActionKind::kDelay) ++delays;
  }
  EXPECT_EQ(crashes + delays, 5000);
  EXPECT_GT(crashes, 400);
  EXPECT_LT(crashes, 600);
}

TEST(RegistryTest, PercentageAndCountTogether) {
  SeededRandom random(kSeed);
  Registry registry(random);
  ScopedInstall install(registry);
  ASSERT_TRUE(registry.Set("a", "50%3*return").ok());
  const std::string pattern = Pattern("a", 1000);
  EXPECT_EQ(std::count(pattern.begin(), pattern.end(), '1'), 3);
  // The three fires come early: each hit has an even chance until they are used up.
  EXPECT_LT(pattern.rfind('1'), 40u);
}

TEST(RegistryTest, ConfigureIsAllOrNothing) {
  SeededRandom random(kSeed);
  Registry registry(random);
  const absl::Status status = registry.Configure("a=crash;b=25%bogus");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("unknown action \"bogus\""));
  EXPECT_EQ(registry.Get("a"), std::nullopt);
  ASSERT_TRUE(registry.Configure("a=crash;b=25%hang").ok());
  EXPECT_EQ(registry.Get("a"), "crash");
  EXPECT_EQ(registry.Get("b"), "25%hang");
  registry.Clear("a");
  EXPECT_EQ(registry.Get("a"), std::nullopt);
  registry.ClearAll();
  EXPECT_EQ(registry.Get("b"), std::nullopt);
  EXPECT_THAT(registry.Set("Bad", "crash").message(), HasSubstr("may only contain"));
}

TEST(RegistryTest, ConfiguresFromTheEnvironmentOnlyWhenAsked) {
  constexpr char kVariable[] = "BULWARK_FAILPOINTS_REGISTRY_TEST";
  SeededRandom random(kSeed);
  Registry registry(random);
  ::unsetenv(kVariable);
  EXPECT_TRUE(ConfigureFromEnvironment(registry, kVariable).ok());
  EXPECT_TRUE(registry.Stats().empty());

  ASSERT_EQ(::setenv(kVariable, "storage.file.put.before_sync=25%3*return(unavailable);x=hang", 1),
            0);
  EXPECT_EQ(registry.Get("storage.file.put.before_sync"), std::nullopt);  // Not read by itself.
  ASSERT_TRUE(ConfigureFromEnvironment(registry, kVariable).ok());
  EXPECT_EQ(registry.Get("storage.file.put.before_sync"), "25%3*return(unavailable)");
  EXPECT_EQ(registry.Get("x"), "hang");

  ASSERT_EQ(::setenv(kVariable, "y=retrun", 1), 0);
  const absl::Status bad = ConfigureFromEnvironment(registry, kVariable);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), AllOf(HasSubstr(kVariable), HasSubstr("\"retrun\"")));
  ::unsetenv(kVariable);
}

TEST(RegistryTest, ScopedFailpointRestoresThePreviousConfiguration) {
  SeededRandom random(kSeed);
  Registry registry(random);
  ScopedInstall install(registry);
  {
    ScopedFailpoint outer(registry, "a", "return(internal)");
    {
      ScopedFailpoint inner(registry, "a", "crash");
      EXPECT_EQ(Failpoint("a"), Action::Crash());
    }
    EXPECT_EQ(Failpoint("a"), Action::Return(absl::StatusCode::kInternal));
  }
  EXPECT_FALSE(Failpoint("a"));
  EXPECT_EQ(registry.Get("a"), std::nullopt);
}

TEST(RegistryTest, ScopedInstallRestoresThePreviousRegistry) {
  SeededRandom random(kSeed);
  Registry outer(random), inner(random);
  {
    ScopedInstall a(outer);
    {
      ScopedInstall b(inner);
      EXPECT_EQ(InstalledRegistry(), &inner);
    }
    EXPECT_EQ(InstalledRegistry(), &outer);
  }
  EXPECT_EQ(InstalledRegistry(), nullptr);
}

BuggifyOptions Buggify(uint64_t seed) {
  BuggifyOptions options;
  options.seed = seed;
  options.activation_probability = 0.25;
  options.fire_probability = 0.25;
  options.rules = {{"storage.", Action::Return(absl::StatusCode::kUnavailable)},
                   {"bug.", Action::Crash()}};
  return options;
}

// The activation decision and fire pattern of each of `sites`, evaluated in the given order.
std::map<std::string, std::string> BuggifyRun(uint64_t seed, std::vector<std::string> sites) {
  SeededRandom random(1);
  Registry registry(random);
  ScopedInstall install(registry);
  registry.EnableBuggify(Buggify(seed));
  std::map<std::string, std::string> out;
  for (int round = 0; round < 64; ++round) {
    for (const std::string& site : sites) out[site].push_back(Failpoint(site) ? '1' : '0');
  }
  for (const SiteStats& stats : registry.Stats()) {
    out[stats.name] += stats.buggify_active.has_value()
                           ? (*stats.buggify_active ? " active" : " inactive")
                           : " ineligible";
  }
  return out;
}

TEST(BuggifyTest, DecisionsDependOnSeedAndSiteNotOnOrder) {
  std::printf("seed %llu\n", static_cast<unsigned long long>(kSeed));
  std::vector<std::string> sites;
  for (int i = 0; i < 64; ++i) sites.push_back(absl::StrCat("storage.site", i));
  sites.push_back("bug.storage.ack_before_sync");
  sites.push_back("catalog.launch.verify");
  std::vector<std::string> reversed(sites.rbegin(), sites.rend());

  const auto a = BuggifyRun(kSeed, sites);
  EXPECT_EQ(a, BuggifyRun(kSeed, reversed));
  EXPECT_NE(a, BuggifyRun(kSeed + 1, sites));

  int active = 0;
  for (int i = 0; i < 64; ++i) {
    const std::string& result = a.at(absl::StrCat("storage.site", i));
    const bool is_active = absl::EndsWith(result, " active");
    active += is_active;
    const int fires = static_cast<int>(std::count(result.begin(), result.begin() + 64, '1'));
    if (!is_active) {
      EXPECT_EQ(fires, 0) << i;
    }
  }
  EXPECT_GE(active, 6);  // 16 expected of 64.
  EXPECT_LE(active, 28);
  // Planted bugs are never chosen, and sites without a rule are not eligible.
  EXPECT_EQ(a.at("bug.storage.ack_before_sync"), std::string(64, '0') + " ineligible");
  EXPECT_EQ(a.at("catalog.launch.verify"), std::string(64, '0') + " ineligible");
}

TEST(BuggifyTest, ActiveSitesFireAtTheGivenRateAndConfigurationWins) {
  SeededRandom random(1);
  Registry registry(random);
  ScopedInstall install(registry);
  BuggifyOptions options = Buggify(kSeed);
  options.activation_probability = 1.0;
  options.fire_probability = 0.5;
  registry.EnableBuggify(options);
  const std::string pattern = Pattern("storage.a", 4000);
  const auto fired = std::count(pattern.begin(), pattern.end(), '1');
  EXPECT_GT(fired, 1800);
  EXPECT_LT(fired, 2200);
  ASSERT_TRUE(registry.Set("storage.a", "off").ok());
  EXPECT_EQ(Pattern("storage.a", 100), std::string(100, '0'));
  registry.Clear("storage.a");
  registry.DisableBuggify();
  EXPECT_EQ(Pattern("storage.a", 100), std::string(100, '0'));
}

class RecordingEffects final : public Effects {
 public:
  absl::Status Apply(absl::string_view name, const Action& action) override {
    applied.push_back(absl::StrCat(name, ":", action.ToString()));
    return action.kind == ActionKind::kDelay ? absl::OkStatus()
                                             : absl::UnavailableError("simulated");
  }
  std::vector<std::string> applied;
};

TEST(RegistryTest, EffectsCarryOutDelayHangAndCrashForStatusSites) {
  SeededRandom random(kSeed);
  Registry registry(random);
  ScopedInstall install(registry);
  RecordingEffects effects;
  registry.SetEffects(&effects);
  ASSERT_TRUE(registry.Set("a", "1*delay(5)->1*hang->1*crash->1*return(internal)").ok());
  EXPECT_TRUE(FailpointStatus("a").ok());
  EXPECT_EQ(FailpointStatus("a").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(FailpointStatus("a").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(FailpointStatus("a").code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(FailpointStatus("a").ok());
  EXPECT_THAT(effects.applied, ::testing::ElementsAre("a:delay(5)", "a:hang", "a:crash"));
  // The action form hands everything to the site.
  ASSERT_TRUE(registry.Set("b", "crash").ok());
  EXPECT_EQ(Failpoint("b"), Action::Crash());
  EXPECT_EQ(effects.applied.size(), 3u);
}

TEST(RegistryTest, ObserverSeesEachFireWithItsHitNumber) {
  SeededRandom random(kSeed);
  Registry registry(random);
  ScopedInstall install(registry);
  std::vector<std::string> fires;
  registry.SetObserver([&](const FireEvent& event) {
    fires.push_back(absl::StrCat(event.name, "#", event.hit, "=", event.action.ToString(),
                                 event.buggify ? " buggify" : ""));
  });
  ASSERT_TRUE(registry.Set("a", "2*off->1*return(internal)").ok());
  for (int i = 0; i < 5; ++i) Failpoint("a");
  Failpoint("b");
  EXPECT_THAT(fires, ::testing::ElementsAre("a#3=return(internal)"));
  const std::vector<SiteStats> stats = registry.Stats();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].name, "a");
  EXPECT_EQ(stats[0].hits, 5u);
  EXPECT_EQ(stats[0].fires, 1u);
  EXPECT_TRUE(stats[0].configured);
  EXPECT_EQ(stats[1].name, "b");
  EXPECT_EQ(stats[1].hits, 1u);
  EXPECT_FALSE(stats[1].configured);
}

TEST(RegistryTest, DefaultHangBlocksUntilTheFailpointIsCleared) {
  SeededRandom random(kSeed);
  Registry registry(random);
  ScopedInstall install(registry);
  ASSERT_TRUE(registry.Set("a", "hang").ok());
  std::atomic<bool> returned{false};
  std::thread hung([&] {
    EXPECT_TRUE(FailpointStatus("a").ok());
    returned = true;
  });
  // Wait (with a bound, no sleeps) until the thread has evaluated the failpoint and is blocked.
  for (int i = 0; i < 100000000 && registry.Stats().empty(); ++i) std::this_thread::yield();
  for (int i = 0; i < 100000000 && registry.Stats()[0].fires == 0; ++i) {
    std::this_thread::yield();
  }
  EXPECT_FALSE(returned.load());
  registry.Clear("a");
  hung.join();
  EXPECT_TRUE(returned.load());
}

TEST(RegistryTest, DefaultDelayReturnsOk) {
  SeededRandom random(kSeed);
  Registry registry(random);
  ScopedInstall install(registry);
  ASSERT_TRUE(registry.Set("a", "delay(1)").ok());
  EXPECT_TRUE(FailpointStatus("a").ok());
}

// Records what an asynchronous site scheduled; tasks run only when the test says so.
class ManualExecutor final : public Executor {
 public:
  void Post(Task task) override { PostAfter(absl::ZeroDuration(), std::move(task)); }
  TimerId PostAfter(absl::Duration delay, Task task) override {
    delays.push_back(delay);
    tasks.push_back(std::move(task));
    return tasks.size();
  }
  bool Cancel(TimerId) override { return false; }
  void RunAll() {
    std::vector<Task> due = std::move(tasks);
    tasks.clear();
    for (Task& task : due) task();
  }
  std::vector<absl::Duration> delays;
  std::vector<Task> tasks;
};

// A continuation that records its status, and whether it was destroyed without running.
struct Outcome {
  std::optional<absl::Status> status;
  bool destroyed = false;
};
Continuation Record(std::shared_ptr<Outcome> outcome) {
  struct OnDestroy {
    std::shared_ptr<Outcome> outcome;
    ~OnDestroy() {
      if (outcome != nullptr) outcome->destroyed = true;
    }
  };
  auto guard = std::make_shared<OnDestroy>(OnDestroy{outcome});
  return [outcome, guard](absl::Status status) { outcome->status = std::move(status); };
}

TEST(FailpointAsyncTest, WithoutARegistryTheContinuationRunsAtOnce) {
  ASSERT_EQ(InstalledRegistry(), nullptr);
  ManualExecutor executor;
  auto outcome = std::make_shared<Outcome>();
  BW_FAILPOINT_ASYNC(executor, "plugin.launch", Record(outcome));
  ASSERT_TRUE(outcome->status.has_value());
  EXPECT_TRUE(outcome->status->ok());
  EXPECT_TRUE(executor.tasks.empty());
}

TEST(FailpointAsyncTest, DelayIsPostedOnTheExecutorAndNeverBlocks) {
  SeededRandom random(kSeed);
  Registry registry(random);
  ScopedInstall install(registry);
  // Effects are for synchronous sites: an asynchronous delay or hang never reaches them.
  RecordingEffects effects;
  registry.SetEffects(&effects);
  ASSERT_TRUE(registry.Set("plugin.launch", "1*delay(86400000)->1*return(data_loss)").ok());
  ManualExecutor executor;

  auto delayed = std::make_shared<Outcome>();
  // A day's delay: were it slept, the test would not end.
  BW_FAILPOINT_ASYNC(executor, "plugin.launch", Record(delayed));
  EXPECT_FALSE(delayed->status.has_value());
  ASSERT_EQ(executor.delays.size(), 1u);
  EXPECT_EQ(executor.delays[0], absl::Hours(24));

  auto failed = std::make_shared<Outcome>();
  BW_FAILPOINT_ASYNC(executor, "plugin.launch", Record(failed));
  ASSERT_TRUE(failed->status.has_value());
  EXPECT_EQ(failed->status->code(), absl::StatusCode::kDataLoss);

  executor.RunAll();
  ASSERT_TRUE(delayed->status.has_value());
  EXPECT_TRUE(delayed->status->ok());
  EXPECT_TRUE(effects.applied.empty());
}

TEST(FailpointAsyncTest, HangDropsTheContinuationWithoutRunningIt) {
  SeededRandom random(kSeed);
  Registry registry(random);
  ScopedInstall install(registry);
  ASSERT_TRUE(registry.Set("plugin.launch", "1*hang").ok());
  ManualExecutor executor;
  auto hung = std::make_shared<Outcome>();
  BW_FAILPOINT_ASYNC(executor, "plugin.launch", Record(hung));
  EXPECT_FALSE(hung->status.has_value());
  EXPECT_TRUE(hung->destroyed);
  EXPECT_TRUE(executor.tasks.empty());
  // The count is used up: the next operation goes through.
  auto next = std::make_shared<Outcome>();
  BW_FAILPOINT_ASYNC(executor, "plugin.launch", Record(next));
  ASSERT_TRUE(next->status.has_value());
  EXPECT_TRUE(next->status->ok());
}

TEST(FailpointAsyncTest, CrashGoesToTheEffects) {
  SeededRandom random(kSeed);
  Registry registry(random);
  ScopedInstall install(registry);
  RecordingEffects effects;
  registry.SetEffects(&effects);
  ASSERT_TRUE(registry.Set("plugin.launch", "crash").ok());
  ManualExecutor executor;
  auto crashed = std::make_shared<Outcome>();
  BW_FAILPOINT_ASYNC(executor, "plugin.launch", Record(crashed));
  ASSERT_TRUE(crashed->status.has_value());
  EXPECT_EQ(crashed->status->code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(effects.applied, ::testing::ElementsAre("plugin.launch:crash"));
}

TEST(RegistryDeathTest, DefaultCrashAborts) {
  EXPECT_DEATH(
      {
        SeededRandom random(kSeed);
        Registry registry(random);
        InstallRegistry(&registry);
        CHECK_OK(registry.Set("storage.crash.here", "crash"));
        FailpointStatus("storage.crash.here").IgnoreError();
      },
      "failpoint storage.crash.here: crash");
}

}  // namespace
}  // namespace bulwark::faultinject
