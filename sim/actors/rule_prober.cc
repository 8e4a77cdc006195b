// The rule prober (see rule_prober.h).
#include "sim/actors/rule_prober.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status/check.h"
#include "sim/actors/operator.h"
#include "sim/cluster.h"
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

// The catalog and plugin steps (after the seal's).
constexpr int kCatalogSteps = 17;
constexpr int kInvalidPerCycle = 2;
// The probes that ask for a mount, one per cycle in turn.
constexpr int kLaunchThroughSymlink = 0;
constexpr int kLaunchInSymlinkedDirectory = 1;
constexpr int kLaunchEnvAndArgs = 2;
constexpr int kLaunchBadHandshake = 3;
constexpr int kLaunchProbes = 4;
constexpr int kBadHandshakesPerTurn = 2;
constexpr absl::string_view kEscapingName = "probe-escape";
constexpr absl::string_view kHopName = "probe-hop";
constexpr absl::string_view kDirName = "probe-dirlink";
constexpr absl::string_view kEnvName = "probe-env";
constexpr absl::string_view kBadHandshakeName = "probe-badhs";
constexpr absl::string_view kEnvMounts[] = {"e/a/", "e/b/"};
constexpr absl::string_view kPluginDir = "/bulwark/plugins";
constexpr absl::string_view kRealPluginDir = "/bulwark/plugins.real";

// Registrations that are valid but for their name or version: {name, version}.
struct Invalid {
  absl::string_view name;
  absl::string_view version;
};
constexpr Invalid kInvalid[] = {
    {"", ""},
    {"-lead", ""},
    {".dot", ""},
    {"a..b", ""},
    {"has space", ""},
    {"slash/name", ""},
    {"\xc3\xbcnicode", ""},
    {"probe-badver", "1.2"},
    {"probe-badver", "v1.2.3.4"},
    {"probe-badver", "01.2.3"},
    {"probe-badver", "1.2.3-"},
    {"probe-badver", "1.2.3+"},
    {"probe-badver", "1.2.3-01"},
    {"probe-badver", "1.2.3-rc..1"},
    {"probe-badver", "latest"},
    {"probe-badver", "V1.2.3"},
    {"probe-badver", "1.2.3 "},
    {"probe-badver", "v1.2.3+builtin"},
    {"probe-badver", "1.0.0+a.builtin"},
    {kBuiltinPlugin, ""},  // A built-in's name needs a version.
};
constexpr size_t kInvalidCount = sizeof(kInvalid) / sizeof(kInvalid[0]);

bool NoRoute(const absl::Status& status) {
  return absl::IsNotFound(status) && absl::StrContains(status.message(), "no handler for route");
}

}  // namespace

RuleProber::RuleProber(World& world) : world_(world), random_(world.root_random.Derive("rules")) {}

void RuleProber::OnReady() { Loop(); }

void RuleProber::OnQuiet() {
  if (dir_symlinked_) SymlinkPluginDirectory(false);
  if (hop_outside_) RepointHop(false);
}

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

void RuleProber::SendProbe(const Request& request, Probe probe, Then then) {
  Send(request, [this, request, probe, then = std::move(then)](
                    const Response& response, bool answered, uint64_t sent, uint64_t at) {
    Reply reply{Source::kRules, 0, request, response, answered, sent, at};
    reply.probe = probe;
    world_.invariants->OnReply(reply);
    then(response, answered, sent, at);
  });
}

Request RuleProber::Registration(absl::string_view name, absl::string_view command,
                                 const std::string& sha256) const {
  Request request;
  request.kind = OpKind::kRegister;
  request.name = std::string(name);
  catalog::RegisterRequest& r = request.registration;
  r.type = catalog::PluginType::kSecret;
  r.name = std::string(name);
  r.command = std::string(command);
  r.sha256 = sha256;
  return request;
}

Request RuleProber::Mount(absl::string_view path, absl::string_view name) const {
  Request request;
  request.kind = OpKind::kEnableMount;
  request.mount_path = std::string(path);
  request.name = std::string(name);
  return request;
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
      if (world_.operator_actor == nullptr || !world_.initialized) return Step(kCatalogSteps);
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
          Step(kCatalogSteps);
        });
      });
      return;
    // The catalog and plugin steps. The registrations (refused before they touch the disk) come
    // every cycle; of the four probes that ask for a mount, each written to the mount table (and,
    // refused, taken out again) and most starting a plugin process, one per cycle, in turn.
    case kCatalogSteps:  // Invalid names and versions.
      if (cycles_ == 0) launch_probe_ = static_cast<int>(random_.Uniform(kLaunchProbes));
      return InvalidRegistrations(kInvalidPerCycle, kCatalogSteps + 1);
    case kCatalogSteps + 1:  // A command that is a symlink to a file outside the directory.
      return SendProbe(Registration(kEscapingName, kEscapingLink, world_.artifact_sha[0]),
                       Probe::kCommandEscapes,
                       [this, step](const Response&, bool, uint64_t, uint64_t) { Step(step + 1); });
    case kCatalogSteps + 2:  // An entry whose symlink leads inside, for now.
      if (launch_probe_ != kLaunchThroughSymlink) return Step(step + 2);
      if (hop_registered_) return Step(step + 1);
      return SendProbe(Registration(kHopName, kHopLink, world_.artifact_sha[0]), Probe::kNone,
                       [this, step](const Response& response, bool answered, uint64_t, uint64_t) {
                         if (answered && response.status.ok()) hop_registered_ = true;
                         Step(step + 1);
                       });
    case kCatalogSteps + 3: {  // Its symlink re-pointed outside, then a launch.
      if (!hop_registered_) return Step(step + 1);
      RepointHop(true);
      const uint64_t generation = disk_generation_;
      const Request mount = Mount("l/", kHopName);
      return Send(mount, [this, step, mount, generation](const Response& response, bool answered,
                                                         uint64_t sent, uint64_t at) {
        const bool window = generation == disk_generation_;
        RepointHop(false);
        if (window) {
          Reply reply{Source::kRules, 0, mount, response, answered, sent, at};
          reply.probe = Probe::kCommandEscapes;
          world_.invariants->OnReply(reply);
        }
        if (!answered || response.status.ok()) to_unmount_.push_back(mount.mount_path);
        Step(step + 1);
      });
    }
    case kCatalogSteps + 4: {  // The plugin directory a symlink: a registration (and a launch).
      SymlinkPluginDirectory(true);
      const uint64_t generation = disk_generation_;
      const Request registration =
          Registration(kDirName, kPluginMultiplexed, world_.artifact_sha[0]);
      return Send(
          registration, [this, step, registration, generation](
                            const Response& response, bool answered, uint64_t sent, uint64_t at) {
            if (generation != disk_generation_) return Step(step + 1);
            Reply reply{Source::kRules, 0, registration, response, answered, sent, at};
            reply.probe = Probe::kDirectorySymlink;
            world_.invariants->OnReply(reply);
            if (launch_probe_ != kLaunchInSymlinkedDirectory) {
              SymlinkPluginDirectory(false);
              return Step(step + 1);
            }
            const Request mount = Mount("d/", kPluginMultiplexed);
            Send(mount, [this, step, mount, generation](const Response& response, bool answered,
                                                        uint64_t sent, uint64_t at) {
              const bool window = generation == disk_generation_;
              SymlinkPluginDirectory(false);
              if (window) {
                Reply reply{Source::kRules, 0, mount, response, answered, sent, at};
                reply.probe = Probe::kDirectorySymlink;
                world_.invariants->OnReply(reply);
              }
              if (!answered || response.status.ok()) to_unmount_.push_back(mount.mount_path);
              Step(step + 1);
            });
          });
    }
    // One name registered twice, the second entry differing from the first only in env or only
    // in args, and mounted after each registration.
    case kCatalogSteps + 5:
    case kCatalogSteps + 7: {
      const size_t i = static_cast<size_t>(step - kCatalogSteps - 5) / 2;
      if (i == 0) {
        if (launch_probe_ != kLaunchEnvAndArgs) return Step(kCatalogSteps + 9);
        const std::vector<std::string> args = {absl::StrCat("--probe=", random_.Uniform(1u << 30))};
        const std::vector<std::string> env = {
            absl::StrCat("PROBE_TOKEN=", world_.NewSecret(random_))};
        configs_ = {{args, env}, {args, env}};
        if (random_.Bernoulli(0.5)) {
          configs_[1].second = {absl::StrCat("PROBE_TOKEN=", world_.NewSecret(random_))};
        } else {
          configs_[1].first = {absl::StrCat("--probe=", random_.Uniform(1u << 30), "b")};
        }
      }
      Request request = Registration(kEnvName, kPluginMultiplexed, world_.artifact_sha[0]);
      request.registration.args = configs_[i].first;
      request.registration.env = configs_[i].second;
      return SendProbe(request, Probe::kNone,
                       [this, step](const Response&, bool, uint64_t, uint64_t) { Step(step + 1); });
    }
    case kCatalogSteps + 6:
    case kCatalogSteps + 8: {
      const Request mount = Mount(kEnvMounts[(step - kCatalogSteps - 6) / 2], kEnvName);
      to_unmount_.push_back(mount.mount_path);
      const int next = step == kCatalogSteps + 8 ? kCatalogSteps + 12 : step + 1;
      return SendProbe(mount, Probe::kNone,
                       [this, next](const Response&, bool, uint64_t, uint64_t) { Step(next); });
    }
    case kCatalogSteps + 9:  // A plugin whose handshake line is malformed, two ways.
      if (launch_probe_ != kLaunchBadHandshake) return Step(kCatalogSteps + 12);
      return BadHandshakes(kBadHandshakesPerTurn, kCatalogSteps + 11);
    case kCatalogSteps + 11: {  // Another mount keeps serving.
      if (mounted_.count(std::string(kMountB)) == 0) return Step(step + 1);
      request.kind = OpKind::kGet;
      request.key = std::string(kKeyB);
      return SendProbe(request, Probe::kAfterBadHandshake,
                       [this, step](const Response& response, bool answered, uint64_t, uint64_t) {
                         CheckRead(std::string(kKeyB), std::string(kKeyC), response, answered);
                         Step(step + 1);
                       });
    }
    case kCatalogSteps + 12: {
      std::vector<std::string> paths = std::move(to_unmount_);
      to_unmount_.clear();
      launch_probe_ = (launch_probe_ + 1) % kLaunchProbes;
      return Unmount(std::move(paths), step + 1);
    }
    default:
      ++cycles_;
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
  if (polls_left == 0) return Step(kCatalogSteps);
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

void RuleProber::InvalidRegistrations(int left, int next) {
  if (left == 0) return Step(next);
  const Invalid& invalid = kInvalid[random_.Uniform(kInvalidCount)];
  Request request = Registration(invalid.name, kPluginMultiplexed, world_.artifact_sha[0]);
  request.registration.version = std::string(invalid.version);
  request.version = request.registration.version;
  SendProbe(request, Probe::kInvalidRegistration,
            [this, left, next](const Response&, bool, uint64_t, uint64_t) {
              InvalidRegistrations(left - 1, next);
            });
}

void RuleProber::BadHandshakes(int left, int next) {
  if (left == 0) return Step(next);
  if (next_mangle_ < 0) next_mangle_ = static_cast<int>(random_.Uniform(kHandshakeMangles));
  Request request = Registration(kBadHandshakeName, kBadHandshakePlugin, world_.bad_handshake_sha);
  // The mangles in turn; the attempt number makes a new runner config every time, so no
  // backoff carries over from the last one.
  request.registration.args = {absl::StrCat("--mangle=", next_mangle_),
                               absl::StrCat("--attempt=", bad_handshakes_++)};
  next_mangle_ = (next_mangle_ + 1) % kHandshakeMangles;
  SendProbe(request, Probe::kNone,
            [this, left, next](const Response& response, bool answered, uint64_t, uint64_t) {
              if (!answered || !response.status.ok()) return BadHandshakes(left - 1, next);
              const Request mount = Mount("h/", kBadHandshakeName);
              SendProbe(mount, Probe::kBadHandshake,
                        [this, left, next, mount](const Response& response, bool answered, uint64_t,
                                                  uint64_t) {
                          if (!answered || response.status.ok()) {
                            to_unmount_.push_back(mount.mount_path);
                          }
                          BadHandshakes(left - 1, next);
                        });
            });
}

void RuleProber::RepointHop(bool outside) {
  if (outside == hop_outside_) return;
  SimFileSystem& disk = world_.cluster->machine(0).node->disk();
  const std::string link = absl::StrCat(kPluginDir, "/", kHopLink);
  CHECK_OK(disk.Remove(link));
  CHECK_OK(disk.CreateSymlink(outside ? absl::StrCat(kOutsideDir, "/", kPluginMultiplexed)
                                      : std::string(kPluginMultiplexed),
                              link));
  CHECK_OK(disk.SyncDir(kPluginDir));
  hop_outside_ = outside;
  if (!outside) ++disk_generation_;
  world_.trace.Add(world_.Now(), 0, "rules-disk",
                   outside ? "kv-hop leads outside" : "kv-hop leads to kv");
}

void RuleProber::SymlinkPluginDirectory(bool symlinked) {
  if (symlinked == dir_symlinked_) return;
  SimFileSystem& disk = world_.cluster->machine(0).node->disk();
  if (symlinked) {
    CHECK_OK(disk.Rename(kPluginDir, kRealPluginDir));
    CHECK_OK(disk.CreateSymlink("plugins.real", kPluginDir));
  } else {
    CHECK_OK(disk.Remove(kPluginDir));
    CHECK_OK(disk.Rename(kRealPluginDir, kPluginDir));
    ++disk_generation_;
  }
  CHECK_OK(disk.SyncDir("/bulwark"));
  dir_symlinked_ = symlinked;
  world_.trace.Add(world_.Now(), 0, "rules-disk",
                   symlinked ? "plugin directory is a symlink" : "plugin directory is real");
}

void RuleProber::Unmount(std::vector<std::string> paths, int next) {
  if (paths.empty()) return Step(next);
  Request request;
  request.kind = OpKind::kDisableMount;
  request.mount_path = paths.back();
  paths.pop_back();
  SendProbe(
      request, Probe::kNone,
      [this, paths = std::move(paths), next](const Response&, bool, uint64_t, uint64_t) mutable {
        Unmount(std::move(paths), next);
      });
}

}  // namespace bulwark::sim
