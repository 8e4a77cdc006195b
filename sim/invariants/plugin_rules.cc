// Invariants over the catalog's and the plugin launcher's rules that the rule prober's catalog
// steps reach (actors/rule_prober.h), each judged here from the prober's answers (tagged with a
// Probe) and from what the node's launcher saw:
//   plugin_confinement  no plugin process starts from a file outside the plugin directory; a
//                       command that resolves outside it through a symlink is refused at
//                       registration and at launch, and so is everything while the plugin
//                       directory itself is a symlink (refused for that reason)
//   runner_config       a plugin process serves only mounts whose catalog entry it was launched
//                       with (args and env): entries that differ only in env or args never share
//                       a process (checked after every successful mount of the prober and the
//                       catalog administrator)
//   bad_handshake       a plugin that prints a malformed handshake line is refused with an error,
//                       its process is stopped, and the failure stays with it
//   catalog_validation  a registration with an invalid name or version (not semver, the reserved
//                       "+builtin" metadata, a built-in's name without a version) is refused for
//                       that reason, and nothing of it is stored
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/catalog/catalog_error.h"
#include "sim/cluster.h"
#include "sim/invariants/invariant.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

// A name or version as the workload sent it, for a violation's detail (never a secret).
std::string Quoted(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text.substr(0, 40)),
                      text.size() > 40 ? "...\"" : "\"");
}

std::string MountKey(absl::string_view path) {
  return absl::EndsWith(path, "/") ? std::string(path) : absl::StrCat(path, "/");
}

class PluginConfinementInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "plugin_confinement"; }
  absl::string_view rule() const override {
    return "no plugin starts from outside the plugin directory: a command that resolves outside "
           "it, or a symlinked plugin directory, is refused at registration and at launch";
  }
  uint32_t hooks() const override { return kSpawn | kReply; }

  void OnSpawn(World& world, int node, absl::string_view path,
               absl::string_view /*sha256*/) override {
    world.Count(name());
    const std::string& dir = world.cluster->machine(node).node->options().plugin_dir;
    if (!absl::StartsWith(path, absl::StrCat(dir, "/"))) {
      world.Violate(name(), absl::StrCat("a plugin process was started from ", path,
                                         ", outside the plugin directory ", dir));
    }
  }

  void OnReply(World& world, const Reply& reply) override {
    if (reply.source != Source::kRules || !reply.answered) return;
    const bool escapes = reply.probe == Probe::kCommandEscapes;
    if (!escapes && reply.probe != Probe::kDirectorySymlink) return;
    const OpKind kind = reply.request.kind;
    world.Count(name());
    const std::string what =
        escapes ? "whose command resolves outside the plugin directory through a symlink"
                : "while the plugin directory was a symlink";
    if (reply.response.status.ok()) {
      world.Violate(name(), absl::StrCat(OpKindName(kind), " of ", reply.request.name, " ", what,
                                         " succeeded"));
      return;
    }
    const absl::Status& status = reply.response.status;
    // A registration is refused for this reason before anything else is looked at; a launch
    // reports it annotated (the directory is checked before the command).
    const std::optional<catalog::CatalogError> reason = catalog::CatalogErrorOf(status);
    const catalog::CatalogError expected = escapes ? catalog::CatalogError::kCommandOutsideDirectory
                                                   : catalog::CatalogError::kDirectoryIsSymlink;
    if (kind == OpKind::kRegister && reason.has_value() && *reason != expected) {
      world.Violate(name(), absl::StrCat("register of ", reply.request.name, " ", what,
                                         " was refused as ", catalog::CatalogErrorReason(*reason),
                                         ", not as ", catalog::CatalogErrorReason(expected)));
    } else if (kind == OpKind::kEnableMount && !escapes &&
               absl::StrContains(status.message(), "outside the plugin directory")) {
      world.Violate(name(), absl::StrCat("a launch ", what,
                                         " was refused only because its command then resolved "
                                         "outside the directory: the directory was followed"));
    }
  }
};

class RunnerConfigInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "runner_config"; }
  absl::string_view rule() const override {
    return "a plugin process serves only mounts whose catalog entry has the args and env it was "
           "launched with: entries differing only in env or args never share a process";
  }
  uint32_t hooks() const override { return kReply; }

  void OnReply(World& world, const Reply& reply) override {
    if (reply.source != Source::kAdmin && reply.source != Source::kRules) return;
    if (reply.probe != Probe::kNone) return;
    const Request& request = reply.request;
    switch (request.kind) {
      case OpKind::kRegister: {
        const catalog::RegisterRequest& r = request.registration;
        registrations_[absl::StrCat(r.name, "@", r.version)].push_back(Registration{
            r.args, r.env, reply.sent, reply.at, reply.answered && reply.response.status.ok()});
        return;
      }
      case OpKind::kEnableMount:
        if (!reply.answered || !reply.response.status.ok()) return;
        mounts_[MountKey(request.mount_path)] =
            Mount{absl::StrCat(request.name, "@", request.version), reply.sent, reply.source};
        Check(world, reply);
        return;
      case OpKind::kDisableMount:
        if (reply.answered && reply.response.status.ok()) {
          mounts_.erase(MountKey(request.mount_path));
        }
        return;
      default:
        return;
    }
  }

 private:
  struct Registration {
    std::vector<std::string> args;
    std::vector<std::string> env;
    uint64_t sent = 0;
    uint64_t end = 0;  // History number of its answer (or of the broken connection).
    bool acked = false;
  };
  struct Mount {
    std::string entry;  // name@version as the mount asked for it.
    uint64_t sent = 0;  // When the mount was asked for.
    Source source = Source::kAdmin;
  };

  static bool LaunchedWith(const LaunchRecord& launch, const Registration& r) {
    if (launch.argv.size() != r.args.size() + 1 ||
        !std::equal(r.args.begin(), r.args.end(), launch.argv.begin() + 1)) {
      return false;
    }
    for (const std::string& entry : r.env) {
      if (std::find(launch.env.begin(), launch.env.end(), entry) == launch.env.end()) return false;
    }
    return true;
  }

  // Whether `launch` matches a registration `mount` may have resolved to: the last one
  // acknowledged before the mount was asked for, and any that did not end before that one was
  // sent (a reload or restart resolves again, to whatever the catalog holds then).
  bool Allowed(const Mount& mount, const LaunchRecord& launch) const {
    auto it = registrations_.find(mount.entry);
    if (it == registrations_.end()) return true;  // Registered by no one the invariant hears.
    uint64_t superseded_before = 0;
    for (const Registration& r : it->second) {
      if (r.acked && r.end < mount.sent) superseded_before = std::max(superseded_before, r.sent);
    }
    for (const Registration& r : it->second) {
      if (r.end >= superseded_before && LaunchedWith(launch, r)) return true;
    }
    return false;
  }

  // Every mount of the replying actor (which has no registration in flight now) against the
  // process serving it.
  void Check(World& world, const Reply& reply) {
    Node& node = *world.cluster->machine(reply.node).node;
    if (!node.running() || node.core() == nullptr || node.core()->lifecycle() == nullptr) return;
    for (const lifecycle::ProcessInfo& p : node.core()->lifecycle()->Processes()) {
      if (p.pid == 0) continue;  // A built-in.
      const LaunchRecord* launch = node.launched(p.pid);
      if (launch == nullptr) continue;
      for (const std::string& path : p.mounts) {
        auto mount = mounts_.find(MountKey(path));
        if (mount == mounts_.end() || mount->second.source != reply.source) continue;
        world.Count(name());
        if (!Allowed(mount->second, *launch)) {
          world.Violate(name(),
                        absl::StrCat("mount ", path, " of ", mount->second.entry,
                                     " is served by process ", p.pid, " (", p.mounts.size(),
                                     " mounts), launched with args and env of no registration "
                                     "the mount may have resolved to: entries that differ only "
                                     "in env or args share a process"));
          return;
        }
      }
    }
  }

  std::map<std::string, std::vector<Registration>> registrations_;  // By name@version.
  std::map<std::string, Mount> mounts_;                             // By path ("e/a/").
};

class BadHandshakeInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "bad_handshake"; }
  absl::string_view rule() const override {
    return "a plugin that prints a malformed handshake line is refused with an error, its "
           "process is stopped, and other mounts keep serving";
  }
  uint32_t hooks() const override { return kReply; }

  void OnReply(World& world, const Reply& reply) override {
    if (reply.source != Source::kRules || !reply.answered) return;
    if (reply.probe == Probe::kBadHandshake) {
      world.Count(name());
      if (reply.response.status.ok()) {
        world.Violate(name(), absl::StrCat("mounting ", reply.request.name,
                                           ", whose handshake line is malformed, succeeded"));
        return;
      }
      Node& node = *world.cluster->machine(reply.node).node;
      for (int64_t pid : node.launcher().LivePids()) {
        const LaunchRecord* launch = node.launched(pid);
        if (launch != nullptr && launch->sha256 == world.bad_handshake_sha) {
          world.Violate(name(), absl::StrCat("process ", pid, " of ", reply.request.name,
                                             ", whose handshake line was refused, still runs"));
          return;
        }
      }
    } else if (reply.probe == Probe::kAfterBadHandshake) {
      world.Count(name());
      const absl::Status& status = reply.response.status;
      if (!status.ok() && (absl::StrContains(status.message(), kBadHandshakePlugin) ||
                           absl::StrContains(status.message(), "handshake"))) {
        world.Violate(name(), absl::StrCat("a read of ", reply.request.key,
                                           " right after a refused handshake failed with that "
                                           "plugin's error: ",
                                           absl::StatusCodeToString(status.code())));
      }
    }
  }
};

class CatalogValidationInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "catalog_validation"; }
  absl::string_view rule() const override {
    return "a registration with an invalid name or version (not semver, reserved +builtin "
           "metadata, a built-in's name unversioned) is refused for it, and nothing is stored";
  }
  uint32_t hooks() const override { return kReply; }

  void OnReply(World& world, const Reply& reply) override {
    if (reply.source != Source::kRules || reply.probe != Probe::kInvalidRegistration) return;
    if (!reply.answered) return;
    const catalog::RegisterRequest& r = reply.request.registration;
    const std::string what = absl::StrCat("registering ", Quoted(r.name), "@", Quoted(r.version));
    world.Count(name());
    if (reply.response.status.ok()) {
      world.Violate(name(), absl::StrCat(what, " succeeded"));
      return;
    }
    using catalog::CatalogError;
    // Everything else in the request is valid: a catalog refusal can only be about these.
    const std::optional<CatalogError> reason = catalog::CatalogErrorOf(reply.response.status);
    if (reason.has_value() && *reason != CatalogError::kInvalidName &&
        *reason != CatalogError::kInvalidVersion && *reason != CatalogError::kReservedVersion &&
        *reason != CatalogError::kBuiltinNameRequiresVersion) {
      world.Violate(name(),
                    absl::StrCat(what, " was refused as ", catalog::CatalogErrorReason(*reason),
                                 ", not for its name or version"));
      return;
    }
    Node& node = *world.cluster->machine(reply.node).node;
    if (!node.running() || node.core() == nullptr || node.core()->catalog() == nullptr) return;
    for (const catalog::CatalogEntryView& view : node.core()->catalog()->List(r.type)) {
      if (!view.builtin && view.name == r.name) {
        world.Violate(name(), absl::StrCat(what, " was refused, but the catalog holds ",
                                           Quoted(view.name), "@", Quoted(view.version)));
        return;
      }
    }
  }
};

}  // namespace

std::unique_ptr<Invariant> MakePluginConfinementInvariant() {
  return std::make_unique<PluginConfinementInvariant>();
}
std::unique_ptr<Invariant> MakeRunnerConfigInvariant() {
  return std::make_unique<RunnerConfigInvariant>();
}
std::unique_ptr<Invariant> MakeBadHandshakeInvariant() {
  return std::make_unique<BadHandshakeInvariant>();
}
std::unique_ptr<Invariant> MakeCatalogValidationInvariant() {
  return std::make_unique<CatalogValidationInvariant>();
}

}  // namespace bulwark::sim
