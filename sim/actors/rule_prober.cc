// The rule prober (see rule_prober.h).
#include "sim/actors/rule_prober.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sim/actors/operator.h"
#include "sim/invariants/invariant.h"
#include "sim/network.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

constexpr absl::string_view kMountB = "n/b/";
constexpr absl::string_view kMountC = "n/c/";
constexpr absl::string_view kKeyB = "n/b/p";
constexpr absl::string_view kKeyC = "n/c/p";
constexpr absl::string_view kCrashingName = "probe-crash";
// The operator's threshold (operator.cc): the prober gives one share fewer.
constexpr int kThreshold = 3;
constexpr int kCrashingMounts = 3;
constexpr absl::Duration kSealFor = absl::Seconds(4);
constexpr absl::Duration kSealPoll = absl::Milliseconds(250);
constexpr int kSealPolls = 12;

bool NoRoute(const absl::Status& status) {
  return absl::IsNotFound(status) && absl::StrContains(status.message(), "no handler for route");
}

}  // namespace

RuleProber::RuleProber(World& world) : world_(world), random_(world.root_random.Derive("rules")) {}

void RuleProber::OnReady() { Loop(); }

void RuleProber::Loop() {
  if (world_.quiet || cycle_running_) return;
  world_.loop.PostAfter(DrawMillis(random_, absl::Seconds(20), absl::Seconds(40)), [this] {
    if (world_.quiet || world_.done) return;
    cycle_running_ = true;
    Step(0);
  });
}

void RuleProber::Send(const Request& request, Then then) {
  const uint64_t sent = world_.PeekSeq();
  world_.network->Send(
      0, request,
      [this, sent, then = std::move(then)](const Response& response, bool answered) {
        const uint64_t at = world_.NextSeq();
        if (world_.done) return;
        then(response, answered, sent, at);
      },
      Network::SendOptions());
}

void RuleProber::Step(int step) {
  if (world_.quiet || world_.done) {
    cycle_running_ = false;
    return;
  }
  Request request;
  switch (step) {
    case 0: {  // The plugin that crashes at every start, in the catalog.
      if (crashing_registered_) return Step(1);
      request.kind = OpKind::kRegister;
      catalog::RegisterRequest& r = request.registration;
      r.type = catalog::PluginType::kSecret;
      r.name = std::string(kCrashingName);
      r.command = std::string(kCrashingPlugin);
      r.sha256 = world_.crashing_sha;
      Send(request, [this](const Response& response, bool answered, uint64_t, uint64_t) {
        if (answered && response.status.ok()) crashing_registered_ = true;
        Step(1);
      });
      return;
    }
    case 1:
      return EnableNested(kMountB, 2);
    case 2:
      return EnableNested(kMountC, 3);
    case 3:
      return EnableNested("n/", 4);
    case 4:
      return EnableNested("n/b/x/", 5);
    case 5:
    case 6: {  // The same relative key "p" through both mounts.
      const std::string path(step == 5 ? kKeyB : kKeyC);
      request.kind = OpKind::kPut;
      request.key = path;
      request.value = world_.NewSecret(random_);
      written_[path].insert(request.value);
      Send(request, [this, step](const Response&, bool, uint64_t, uint64_t) { Step(step + 1); });
      return;
    }
    case 7:
    case 8: {
      const std::string path(step == 7 ? kKeyB : kKeyC);
      const std::string other(step == 7 ? kKeyC : kKeyB);
      request.kind = OpKind::kGet;
      request.key = path;
      Send(request,
           [this, step, path, other](const Response& response, bool answered, uint64_t, uint64_t) {
             CheckRead(path, other, response, answered);
             Step(step + 1);
           });
      return;
    }
    case 9:
      if (!crashing_registered_) return Step(10);
      return CrashingMount(kCrashingMounts, 10);
    case 10:  // A seal, and admin requests inside it.
      if (world_.operator_actor == nullptr || !world_.initialized) return Step(17);
      world_.operator_actor->SealFor(0, kSealFor);
      return WaitForSeal(kSealPolls, 11);
    case 11: {
      request.kind = OpKind::kUnseal;
      std::vector<std::string> shares = world_.unseal_shares;
      random_.Shuffle(shares);
      shares.resize(std::min<size_t>(shares.size(), kThreshold - 1));
      if (shares.size() < kThreshold - 1) return Step(12);
      shares.push_back(shares[0]);  // Given twice: counts once.
      request.unseal_shares = shares;
      Send(request, [this](const Response& response, bool answered, uint64_t sent, uint64_t at) {
        if (answered && InSeal(sent, at)) {
          world_.Count("unseal_threshold");
          const std::string progress = absl::StrCat(kThreshold - 1, " of ", kThreshold);
          if (!response.sealed || !absl::IsFailedPrecondition(response.status) ||
              !absl::StrContains(response.status.message(), progress)) {
            world_.Violate("unseal_threshold",
                           absl::StrCat("an unseal with ", kThreshold - 1,
                                        " distinct shares (one given twice) of threshold ",
                                        kThreshold, " answered sealed=", response.sealed, " ",
                                        absl::StatusCodeToString(response.status.code()), ": ",
                                        response.status.message().substr(0, 160)));
          }
        }
        Step(12);
      });
      return;
    }
    case 12:
      request.kind = OpKind::kEnableMount;
      request.mount_path = "n/d/";
      request.name = std::string(kPluginMultiplexed);
      return SealedAdmin(request, 13);
    case 13:
      request.kind = OpKind::kReload;
      request.name = std::string(kPluginMultiplexed);
      return SealedAdmin(request, 14);
    case 14:
      request.kind = OpKind::kDisableMount;
      request.mount_path = std::string(kMountC);
      return SealedAdmin(request, 15);
    case 15:
      request.kind = OpKind::kRegister;
      request.registration.type = catalog::PluginType::kSecret;
      request.registration.name = "probe-sealed";
      request.registration.command = std::string(kPluginMultiplexed);
      request.registration.sha256 = world_.artifact_sha[0];
      return SealedAdmin(request, 16);
    case 16:  // After the seal: what the refused enable asked for is not there.
      world_.loop.PostAfter(kSealFor + absl::Seconds(2), [this] {
        Request get;
        get.kind = OpKind::kGet;
        get.key = "n/d/p";
        Send(get, [this](const Response& response, bool answered, uint64_t, uint64_t) {
          if (answered && !absl::IsFailedPrecondition(response.status)) {
            world_.Count("sealed_admin");
            if (!NoRoute(response.status)) {
              world_.Violate("sealed_admin",
                             absl::StrCat("the mount \"n/d/\", asked for only during a seal, "
                                          "answers after it: ",
                                          absl::StatusCodeToString(response.status.code())));
            }
          }
          Step(17);
        });
      });
      return;
    default:
      cycle_running_ = false;
      Loop();
      return;
  }
}

void RuleProber::EnableNested(absl::string_view path, int next) {
  Request request;
  request.kind = OpKind::kEnableMount;
  request.mount_path = std::string(path);
  request.name = std::string(kPluginMultiplexed);
  const bool nested = path != kMountB && path != kMountC;
  if (!nested && mounted_.count(request.mount_path) > 0) return Step(next);
  // Try a nested mount only beside an acknowledged one (otherwise it is legitimate).
  if (nested && mounted_.count(std::string(kMountB)) == 0) return Step(next);
  Send(request, [this, path = request.mount_path, nested, next](const Response& response,
                                                                bool answered, uint64_t, uint64_t) {
    if (!nested) {
      if (answered && (response.status.ok() ||
                       (absl::IsAlreadyExists(response.status) &&
                        absl::StrContains(response.status.message(), "is already in use")))) {
        mounted_.insert(path);
      }
      return Step(next);
    }
    // A mount nested with an acknowledged one must be refused.
    if (answered) {
      world_.Count("mount_isolation");
      if (response.status.ok()) {
        world_.Violate("mount_isolation", absl::StrCat("mounting \"", path,
                                                       "\" nested with the mount \"n/b/\" "
                                                       "succeeded"));
      }
    }
    Step(next);
  });
}

void RuleProber::CheckRead(const std::string& path, const std::string& other,
                           const Response& response, bool answered) {
  if (!answered) return;
  const std::string mount = path.substr(0, 4);
  if (mounted_.count(mount) == 0) return;
  world_.Count("mount_isolation");
  if (NoRoute(response.status)) {
    world_.Violate("mount_isolation", absl::StrCat("a read of \"", path, "\" under the mount \"",
                                                   mount, "\" found no mount"));
    return;
  }
  if (!response.status.ok() || !response.value.has_value()) return;
  const std::set<std::string>& mine = written_[path];
  const std::set<std::string>& theirs = written_[other];
  if (mine.count(*response.value) == 0 && theirs.count(*response.value) > 0) {
    world_.Violate("mount_isolation",
                   absl::StrCat("a read of \"", path, "\" returned what was written to \"", other,
                                "\" (same relative key, another mount)"));
  }
}

void RuleProber::CrashingMount(int left, int next) {
  if (left == 0) return Step(next);
  Request request;
  request.kind = OpKind::kEnableMount;
  request.mount_path = "z/";
  request.name = std::string(kCrashingName);
  Send(request, [this, left, next](const Response& response, bool answered, uint64_t, uint64_t) {
    if (answered) {
      world_.Count("restart_backoff");
      if (response.status.ok()) {
        world_.Violate("restart_backoff",
                       "a mount of a plugin that crashes at every start was enabled");
      }
    }
    CrashingMount(left - 1, next);
  });
}

bool RuleProber::InSeal(uint64_t sent, uint64_t at) const {
  for (const SealWindow& window : world_.seal_windows[0]) {
    if (window.start < sent && at < window.end) return true;
  }
  return false;
}

void RuleProber::WaitForSeal(int polls_left, int next) {
  const std::vector<SealWindow>& windows = world_.seal_windows[0];
  if (!windows.empty() && windows.back().end == UINT64_MAX) return Step(next);
  if (polls_left == 0) return Step(17);
  world_.loop.PostAfter(kSealPoll, [this, polls_left, next] {
    if (world_.quiet || world_.done) {
      cycle_running_ = false;
      return;
    }
    WaitForSeal(polls_left - 1, next);
  });
}

void RuleProber::SealedAdmin(const Request& request, int next) {
  Send(request, [this, next, kind = request.kind](const Response& response, bool answered,
                                                  uint64_t sent, uint64_t at) {
    // Judged only when sent after the seal was acknowledged and answered before the unseal.
    if (answered && InSeal(sent, at)) {
      world_.Count("sealed_admin");
      if (response.status.ok()) {
        world_.Violate("sealed_admin", absl::StrCat(OpKindName(kind), " succeeded inside a seal"));
      }
    }
    Step(next);
  });
}

}  // namespace bulwark::sim
