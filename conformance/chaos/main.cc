// The chaos run on real processes: for plugins in any language, the simulator's fault vocabulary
// applied to a real plugin process that the conformance harness launches and mounts as Vault
// does. A seed fixes the schedule of faults and probe traffic; the timing is the machine's, so a
// run is NOT deterministic, and says so. See docs/conformance.md "Chaos runs on real processes".
//
//   chaos --plugin=PATH --manifest=FILE [--plugin_arg=ARG]... [--seeds=1,2,5..8] [--steps=N]
//         [--expect_violation=restart|request|read|secret]
//
// Faults: crash (SIGKILL, between requests or during a write), hang (SIGSTOP for a while, then
// SIGCONT), slowness (short SIGSTOP/SIGCONT bursts during a write), reload (Cleanup, then
// GRPCController/Shutdown, a kill after the grace period, a relaunch). The host restarts a crashed
// plugin as the lifecycle does, on the same host storage. Checks (each a violation):
//   restart   the plugin cannot be relaunched and mounted after a fault;
//   request   a write or delete sent to a running (not stopped, not killed) plugin fails;
//   read      a probe read answers something the probe contract does not allow after the writes
//             acknowledged (or possibly applied) so far, or fails while the plugin runs;
//   secret    a secret the host handed the plugin (its client token) shows in its stderr/stdout.
// Exit status: 0 when no seed violated anything (with --expect_violation=CHECK: when some seed
// violated CHECK),
// 1 otherwise, 2 for bad usage.
#include <signal.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "conformance/suite/conformance.h"
#include "conformance/suite/harness.h"
#include "conformance/suite/manifest.h"
#include "conformance/suite/profile_util.h"
#include "sdk/in_memory_host.h"

namespace bulwark::conformance {
namespace {

// Most seeds and steps per run; a schedule's hang and slowness lengths.
constexpr uint64_t kSeedsMax = 1000;
constexpr int kStepsMax = 1000;
constexpr int kHangMsMin = 100;
constexpr int kHangMsMax = 800;
constexpr int kSlowBurstsMax = 8;
constexpr int kSlowBurstMs = 20;
// The mount's multiplex id (10 base62 characters, as Vault's).
constexpr char kMux[] = "chaosMount";

enum class Op { kWrite, kRead, kDelete, kCrash, kCrashDuringWrite, kHang, kSlow, kReload };

const char* OpName(Op op) {
  switch (op) {
    case Op::kWrite:
      return "write";
    case Op::kRead:
      return "read";
    case Op::kDelete:
      return "delete";
    case Op::kCrash:
      return "crash";
    case Op::kCrashDuringWrite:
      return "crash-during-write";
    case Op::kHang:
      return "hang";
    case Op::kSlow:
      return "slow";
    case Op::kReload:
      return "reload";
  }
  return "?";
}

struct Step {
  Op op;
  int amount = 0;  // hang: milliseconds stopped; slow: bursts.
};

// The seed's schedule: a write first; `steps` random steps; then a write, a reload and a read, so
// every schedule checks that acknowledged data survives a reload.
std::vector<Step> Schedule(uint64_t seed, int steps, bool deletable) {
  std::mt19937_64 random(seed);
  const std::vector<std::pair<Op, int>> weights = {{Op::kWrite, 6},
                                                   {Op::kRead, 4},
                                                   {Op::kDelete, deletable ? 1 : 0},
                                                   {Op::kCrash, 2},
                                                   {Op::kCrashDuringWrite, 2},
                                                   {Op::kHang, 2},
                                                   {Op::kSlow, 2},
                                                   {Op::kReload, 2}};
  int total = 0;
  for (const auto& [op, weight] : weights) total += weight;
  std::vector<Step> schedule = {{Op::kWrite}};
  for (int i = 0; i < steps; ++i) {
    int pick = static_cast<int>(random() % static_cast<uint64_t>(total));
    Op chosen = Op::kRead;
    for (const auto& [op, weight] : weights) {
      if (pick < weight) {
        chosen = op;
        break;
      }
      pick -= weight;
    }
    Step step{chosen};
    if (chosen == Op::kHang) {
      step.amount = kHangMsMin + static_cast<int>(random() % (kHangMsMax - kHangMsMin + 1));
    }
    if (chosen == Op::kSlow) step.amount = 1 + static_cast<int>(random() % kSlowBurstsMax);
    schedule.push_back(step);
  }
  schedule.push_back({Op::kWrite});
  schedule.push_back({Op::kReload});
  schedule.push_back({Op::kRead});
  return schedule;
}

std::string ScheduleText(const std::vector<Step>& schedule) {
  std::vector<std::string> parts;
  for (const Step& step : schedule) {
    parts.push_back(step.op == Op::kHang   ? absl::StrCat("hang(", step.amount, "ms)")
                    : step.op == Op::kSlow ? absl::StrCat("slow(", step.amount, ")")
                                           : OpName(step.op));
  }
  return absl::StrJoin(parts, " ");
}

// One seed's run: the plugin, the host storage that outlives it, and what may be stored.
class ChaosRun {
 public:
  explicit ChaosRun(uint64_t seed) : seed_(seed) {}

  int launches() const { return launches_; }

  // Runs `schedule`; returns the violations (empty: none).
  std::vector<std::string> Run(const std::vector<Step>& schedule) {
    // The first violation ends the schedule; the plugin's output is scanned either way.
    const bool started = Restart("start");
    for (size_t i = 0; started && i < schedule.size() && violations_.empty(); ++i) {
      step_ = absl::StrCat("step ", i + 1, " (", OpName(schedule[i].op), ")");
      Do(schedule[i]);
    }
    StopPlugin();
    const std::string secret = Token();
    if (absl::StrContains(logs_, secret)) {
      violations_.push_back(
          "secret: the client token the host sent with every request shows in the plugin's "
          "stderr/stdout");
    }
    return violations_;
  }

 private:
  // A secret unique to the seed, sent as every request's client token.
  std::string Token() const { return absl::StrCat(CanarySecret("chaos-token"), "-", seed_); }

  void Do(const Step& step) {
    switch (step.op) {
      case Op::kWrite:
        Write();
        return;
      case Op::kRead:
        Read(/*after=*/"a read");
        return;
      case Op::kDelete:
        Delete();
        return;
      case Op::kCrash:
        plugin_->Signal(SIGKILL);
        (void)plugin_->WaitForExit();
        if (Restart("crash")) Read("the restart after a crash");
        return;
      case Op::kCrashDuringWrite: {
        // The write's outcome is unknown: the kill may land before or after the plugin stores.
        std::thread writer([this] { Write(/*may_fail=*/true); });
        plugin_->Signal(SIGKILL);
        writer.join();
        (void)plugin_->WaitForExit();
        if (Restart("crash during a write")) Read("the restart after a crash during a write");
        return;
      }
      case Op::kHang: {
        // A read sent to the stopped process must be answered once it continues.
        plugin_->Signal(SIGSTOP);
        std::thread reader([this] { Read("a hang (sent while the plugin was stopped)"); });
        absl::SleepFor(absl::Milliseconds(step.amount));
        plugin_->Signal(SIGCONT);
        reader.join();
        return;
      }
      case Op::kSlow: {
        std::thread writer([this] { Write(/*may_fail=*/true); });
        for (int i = 0; i < step.amount; ++i) {
          plugin_->Signal(SIGSTOP);
          absl::SleepFor(absl::Milliseconds(kSlowBurstMs));
          plugin_->Signal(SIGCONT);
          absl::SleepFor(absl::Milliseconds(kSlowBurstMs));
        }
        writer.join();
        Read("a slow write");
        return;
      }
      case Op::kReload:
        // As the lifecycle's reload: Cleanup, Shutdown, a kill after the grace period, relaunch.
        {
          pb::Empty empty;
          auto context = plugin_->NewContext(kMux);
          (void)plugin_->backend().Cleanup(context.get(), empty, &empty);
        }
        StopPlugin();
        if (Restart("reload")) Read("a reload");
        return;
    }
  }

  // Launches the plugin and mounts it on the run's host storage (Setup, Initialize).
  bool Restart(absl::string_view why) {
    StopPlugin();
    ++launches_;
    absl::StatusOr<std::unique_ptr<PluginUnderTest>> started = PluginUnderTest::Start();
    absl::Status mounted = started.status();
    if (started.ok()) {
      plugin_ = std::move(*started);
      absl::StatusOr<uint32_t> id = plugin_->SetupBackend(kMux, {}, storage_);
      mounted = id.ok() ? InitializeBackend(*plugin_, kMux) : id.status();
    }
    if (!mounted.ok()) {
      violations_.push_back(absl::StrCat(
          "restart: ", step_.empty() ? "before step 1" : step_, ": the plugin could not be ",
          why == "start" ? "started and mounted"
                         : absl::StrCat("relaunched and mounted after ", why),
          ": ", mounted.ToString()));
      return false;
    }
    return true;
  }

  // Shuts the plugin down as a host does (GRPCController/Shutdown, a kill after the grace
  // period) and keeps its output.
  void StopPlugin() {
    if (plugin_ == nullptr) return;
    (void)plugin_->Shutdown();
    if (!plugin_->WaitForExit(Config().shutdown_grace).ok()) {
      plugin_->Signal(SIGKILL);
      (void)plugin_->WaitForExit();
    }
    logs_ += plugin_->stderr_text();
    logs_ += plugin_->stdout_text();
    for (const std::string& line : plugin_->StdioLines()) logs_ += line;
    plugin_.reset();
  }

  absl::StatusOr<pb::HandleRequestReply> Request(const std::string& operation,
                                                 const std::string& data_json) {
    pb::HandleRequestArgs args;
    args.mutable_request()->set_operation(operation);
    args.mutable_request()->set_path(ProbePath());
    args.mutable_request()->set_data(data_json.empty() ? "null" : data_json);
    args.mutable_request()->set_client_token(Token());
    auto context = plugin_->NewContext(kMux);
    pb::HandleRequestReply reply;
    const grpc::Status status = plugin_->backend().HandleRequest(context.get(), args, &reply);
    if (!status.ok()) return PluginUnderTest::FromGrpc(status);
    return reply;
  }

  // The counts of writes the stored value may reflect: each acknowledged write adds one to every
  // count, an unknown outcome keeps the old counts as well.
  void Applied(bool acknowledged, bool is_delete) {
    std::set<size_t> next;
    for (size_t count : possible_) next.insert(is_delete ? 0 : count + 1);
    if (!acknowledged) next.insert(possible_.begin(), possible_.end());
    possible_ = std::move(next);
  }

  void Write(bool may_fail = false) {
    const bool create = possible_ == std::set<size_t>{0};
    absl::StatusOr<pb::HandleRequestReply> reply =
        Request(create ? "create" : "update", ProbeJson());
    const bool acknowledged = reply.ok() && !HasLogicalError(*reply);
    if (!may_fail && !acknowledged) {
      violations_.push_back(
          absl::StrCat("request: ", step_, ": a write to a running plugin failed: ",
                       reply.ok() ? Describe(*reply) : reply.status().ToString()));
      return;
    }
    Applied(acknowledged, /*is_delete=*/false);
  }

  void Delete() {
    absl::StatusOr<pb::HandleRequestReply> reply = Request("delete", "");
    if (!reply.ok()) {
      violations_.push_back(
          absl::StrCat("request: ", step_, ": a delete failed: ", reply.status().ToString()));
      return;
    }
    if (!HasLogicalError(*reply)) Applied(/*acknowledged=*/true, /*is_delete=*/true);
  }

  // A read must succeed and answer what some possible count of writes allows.
  void Read(absl::string_view after) {
    absl::StatusOr<pb::HandleRequestReply> reply = Request("read", "");
    if (!reply.ok()) {
      violations_.push_back(absl::StrCat("read: ", step_, ": a read after ", after,
                                         " failed: ", reply.status().ToString()));
      return;
    }
    std::vector<std::string> why;
    for (size_t count : possible_) {
      if (count == 0) {
        if (IsNotFound(*reply)) return;
        why.push_back("not found (0 writes)");
        continue;
      }
      const std::string mismatch = ProbeReadFields(count).is_object()
                                       ? ProbeFieldsMismatch(*reply, count)
                                       : ProbeFieldsMissing(*reply);
      if (mismatch.empty()) return;
      why.push_back(absl::StrCat("after ", count, " writes: ", mismatch));
    }
    violations_.push_back(absl::StrCat(
        "read: ", step_, ": after ", after, " (launch ", launches_, ") the read answered ",
        Describe(*reply), ", which no possible state allows: ", absl::StrJoin(why, "; ")));
  }

  const uint64_t seed_;
  std::string step_;
  std::unique_ptr<PluginUnderTest> plugin_;
  const std::shared_ptr<sdk::InMemoryHostStorage> storage_ =
      std::make_shared<sdk::InMemoryHostStorage>();
  std::set<size_t> possible_ = {0};
  std::vector<std::string> violations_;
  std::string logs_;
  int launches_ = 0;
};

int Usage(absl::string_view error) {
  std::cerr << "chaos: " << error << "\n"
            << "usage: chaos --plugin=PATH --manifest=FILE [--plugin_arg=ARG]... "
               "[--seeds=1,2,5..8] [--steps=N] [--expect_violation=CHECK]\n";
  return 2;
}

// "1,2,5..8" -> {1, 2, 5, 6, 7, 8}.
bool ParseSeeds(absl::string_view text, std::vector<uint64_t>* seeds) {
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::vector<absl::string_view> range = absl::StrSplit(part, "..");
    uint64_t first = 0, last = 0;
    if (range.size() > 2 || !absl::SimpleAtoi(range[0], &first) ||
        !absl::SimpleAtoi(range.back(), &last) || last < first || last - first >= kSeedsMax) {
      return false;
    }
    for (uint64_t s = first; s <= last; ++s) seeds->push_back(s);
  }
  return !seeds->empty() && seeds->size() <= kSeedsMax;
}

int Main(int argc, char** argv) {
  SuiteConfig config;
  std::string manifest_path;
  std::vector<uint64_t> seeds;
  int steps = 12;
  // With --expect_violation=CHECK: the run passes only when some seed violates CHECK.
  std::string expect_violation;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--plugin=")) {
      config.plugin_path = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--plugin_arg=")) {
      config.plugin_args.emplace_back(arg);
    } else if (absl::ConsumePrefix(&arg, "--manifest=")) {
      manifest_path = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--seeds=")) {
      if (!ParseSeeds(arg, &seeds)) {
        return Usage(absl::StrCat("--seeds=", arg, ": expected N, N..M or a comma list, at most ",
                                  kSeedsMax, " seeds"));
      }
    } else if (absl::ConsumePrefix(&arg, "--steps=")) {
      if (!absl::SimpleAtoi(arg, &steps) || steps < 0 || steps > kStepsMax) {
        return Usage(absl::StrCat("--steps=", arg, ": expected 0..", kStepsMax));
      }
    } else if (absl::ConsumePrefix(&arg, "--expect_violation=")) {
      if (arg != "restart" && arg != "request" && arg != "read" && arg != "secret") {
        return Usage(absl::StrCat("--expect_violation=", arg,
                                  ": expected one of the checks restart, request, read, secret"));
      }
      expect_violation = std::string(arg);
    } else {
      return Usage(absl::StrCat("unknown argument ", arg));
    }
  }
  if (config.plugin_path.empty()) return Usage("--plugin is required");
  if (manifest_path.empty()) return Usage("--manifest is required");
  if (!ReadWholeFile(manifest_path, &config.manifest_text)) {
    return Usage(absl::StrCat("cannot read the manifest ", manifest_path));
  }
  absl::StatusOr<Manifest> manifest = ParseManifest(config.manifest_text);
  if (!manifest.ok()) return Usage(absl::StrCat(manifest_path, ": ", manifest.status().message()));
  if (manifest->backend_probe.write_path.empty()) {
    return Usage(absl::StrCat(manifest_path,
                              ": no backend probe; chaos runs drive secret and auth plugins"));
  }
  config.manifest = *manifest;
  if (seeds.empty()) seeds = {1, 2, 3};
  // A plugin stopped by a hang answers after SIGCONT; these are hang guards, not timing checks.
  config.rpc_timeout = absl::Seconds(30);
  config.launch_timeout = absl::Seconds(60);
  config.seed = seeds.front();
  SetConfig(config);
  // A killed plugin's broken pipes must not end the host.
  signal(SIGPIPE, SIG_IGN);

  std::cout << "chaos: NOT deterministic: real processes; the seed fixes the schedule, not the "
               "timing\n"
            << "chaos: plugin " << config.plugin_path << ", manifest " << manifest_path << ", "
            << seeds.size() << " seed(s), " << steps << " random steps each\n";
  int failed_seeds = 0;
  int expected_found = 0;
  for (uint64_t seed : seeds) {
    const std::vector<Step> schedule = Schedule(seed, steps, manifest->backend_probe.deletable);
    std::cout << "chaos: seed " << seed << " schedule: " << ScheduleText(schedule) << "\n";
    std::cout.flush();
    ChaosRun run(seed);
    const std::vector<std::string> violations = run.Run(schedule);
    if (violations.empty()) {
      std::cout << "chaos: seed " << seed << " PASSED (" << run.launches()
                << " launches of the plugin)\n";
    } else {
      ++failed_seeds;
      for (const std::string& v : violations) {
        if (!expect_violation.empty() && absl::StartsWith(v, expect_violation + ":")) {
          ++expected_found;
        }
        std::cout << "chaos: seed " << seed << " VIOLATION " << v << "\n";
      }
      std::cout << "chaos: seed " << seed << " FAILED (replay: --seeds=" << seed
                << "; the timing may differ)\n";
    }
    std::cout.flush();
  }
  std::cout << "chaos: " << failed_seeds << " of " << seeds.size() << " seed(s) violated\n";
  if (!expect_violation.empty()) {
    std::cout << "chaos: --expect_violation=" << expect_violation << ": "
              << (expected_found > 0 ? "found, as expected\n" : "expected, but none found\n");
    return expected_found > 0 ? 0 : 1;
  }
  return failed_seeds == 0 ? 0 : 1;
}

}  // namespace
}  // namespace bulwark::conformance

int main(int argc, char** argv) { return bulwark::conformance::Main(argc, argv); }
