// The auditor (see auditor.h).
#include "sim/actors/auditor.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sim/actors/data_client.h"
#include "sim/invariants/invariant.h"
#include "sim/network.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

constexpr absl::Duration kProbeInterval = absl::Seconds(1);
// Final checks retry a refused request (a plugin in crash-loop backoff) for this long.
constexpr int kFinalAttemptsMax = 12;
constexpr absl::Duration kFinalRetry = absl::Seconds(10);

}  // namespace

Auditor::Auditor(World& world) : world_(world), random_(world.root_random.Derive("probe")) {}

void Auditor::OnQuiet() {
  live_deadline_ = world_.Now() + world_.scenario.liveness_bound;
  ProbeTick();
}

void Auditor::OnWorkloadOpFinished() {
  if (world_.quiet) MaybeFinish();
}

void Auditor::ProbeTick() {
  if (live_ || world_.done) return;
  if (world_.Now() > live_deadline_) {
    world_.Count("liveness");
    world_.Violate("liveness",
                   absl::StrCat("the node did not serve a write and a read within ",
                                absl::FormatDuration(world_.scenario.liveness_bound),
                                " after faults stopped; last probe: ",
                                last_probe_error_.empty() ? "none answered" : last_probe_error_));
    world_.done = true;
    return;
  }
  if (!probe_busy_ && world_.config.plugin) {
    probe_busy_ = true;
    ProbeLiveness();
  } else if (!probe_busy_) {
    probe_busy_ = true;
    const std::string key = absl::StrCat("m0/probe/p", probes_++);
    const std::string value = world_.NewSecret(random_);
    Request put;
    put.kind = OpKind::kPut;
    put.key = key;
    put.value = value;
    world_.network->Send(
        0, put,
        [this, key, value](const Response& response, bool) {
          if (!response.status.ok()) {
            probe_busy_ = false;
            last_probe_error_ = response.status.ToString();
            return;
          }
          ReadBack(key, [value](const Response& r) -> std::string {
            return r.value == value ? "" : "read back a different value";
          });
        },
        Network::SendOptions());
  }
  world_.loop.PostAfter(kProbeInterval, [this] { ProbeTick(); });
}

void Auditor::ProbeLiveness() {
  // A plugin under test: its probe, written and read back on mount m0 (the write is in the
  // probe history, so the reads the invariants judge account for it).
  const PluginUnderTest& plugin = *world_.config.plugin;
  const std::string path = absl::StrCat("m0/", plugin.probe.write_path);
  Request put;
  put.kind = OpKind::kPut;
  put.key = path;
  put.operation = world_.probe_history.MayExist(path) ? "update" : "create";
  put.data_json = plugin.probe.write_data_json;
  const size_t index = world_.probe_history.Begin(path, ProbeOp::Kind::kWrite, world_.PeekSeq());
  world_.network->Send(
      0, put,
      [this, path, index](const Response& response, bool answered) {
        world_.probe_history.End(path, index, WriteOutcome(answered, response.status),
                                 world_.NextSeq());
        if (!response.status.ok()) {
          probe_busy_ = false;
          last_probe_error_ = response.status.ToString();
          return;
        }
        ReadBack(path, [](const Response& r) -> std::string {
          return r.value.has_value() ? "" : "read of the probe path found nothing";
        });
      },
      Network::SendOptions());
}

void Auditor::ReadBack(const std::string& key, std::function<std::string(const Response&)> wrong) {
  Request get;
  get.kind = OpKind::kGet;
  get.key = key;
  world_.network->Send(
      0, get,
      [this, wrong = std::move(wrong)](const Response& r, bool) {
        probe_busy_ = false;
        const std::string why = r.status.ok() ? wrong(r) : r.status.ToString();
        if (!why.empty()) {
          last_probe_error_ = why;
          return;
        }
        world_.Count("liveness");
        live_ = true;
        world_.trace.Add(world_.Now(), 0, "live", "");
        MaybeFinish();
      },
      Network::SendOptions());
}

void Auditor::MaybeFinish() {
  if (!live_ || finishing_ || world_.network->client_ops_in_flight() > 0 || world_.end_holds > 0) {
    return;
  }
  finishing_ = true;
  BuildFinalChecks();
  world_.loop.Post([this] { RunFinalCheck(0); });
}

void Auditor::BuildFinalChecks() {
  // A request whose plugin crashes under it must still succeed: lazy reload and one retry. One
  // warm-up read first, so the check starts from a working plugin, not from a crash-loop backoff.
  for (int m = 0; m < world_.scenario.mounts && m < 2; ++m) {
    FinalCheck warm;
    warm.request.kind = OpKind::kGet;
    warm.request.key = world_.config.plugin
                           ? absl::StrCat("m", m, "/", world_.config.plugin->probe.write_path)
                           : absl::StrCat("m", m, "/reload-check");
    final_checks_.push_back(warm);
    FinalCheck check = warm;
    check.crash_under_request = true;
    final_checks_.push_back(check);
  }
  for (const std::string& key : world_.data_history.Keys()) {
    FinalCheck check;
    check.request.kind = absl::StartsWith(key, "raw/") ? OpKind::kRawGet : OpKind::kGet;
    check.request.key = key;
    check.model_key = key;
    final_checks_.push_back(check);
  }
  for (int c = 1; c <= world_.scenario.clients; ++c) {
    for (bool raw : {false, true}) {
      if (!raw && world_.config.plugin) continue;  // A plugin under test is only probed.
      FinalCheck check;
      check.request.kind = raw ? OpKind::kRawList : OpKind::kList;
      check.request.key = DataClient::Folder(world_, c, raw);
      check.model_key = check.request.key;
      final_checks_.push_back(check);
    }
  }
  for (const std::string& key : world_.catalog_history.Keys()) {
    FinalCheck check;
    check.catalog = true;
    check.model_key = key;
    const size_t at = key.find('@');
    check.request.kind = OpKind::kCatalogGet;
    check.request.type = catalog::PluginType::kSecret;
    check.request.name = key.substr(0, at);
    check.request.version = key.substr(at + 1);
    final_checks_.push_back(check);
    // A settled entry must launch again now that every artifact is back (checked at spawn).
    KvModel::Value settled;
    if (world_.catalog_history.Settled(key, &settled) && settled.has_value()) {
      FinalCheck launch = check;
      launch.catalog = false;
      launch.model_key.clear();
      launch.request.kind = OpKind::kEnableMount;
      launch.request.mount_path = absl::StrCat("final/", final_checks_.size());
      final_checks_.push_back(launch);
    }
  }
}

void Auditor::RunFinalCheck(size_t index) {
  if (world_.done) return;
  if (index >= final_checks_.size()) {
    world_.trace.Add(world_.Now(), -1, "done", "");
    world_.done = true;
    return;
  }
  FinalCheck& check = final_checks_[index];
  ++check.attempts;
  const uint64_t sent = world_.PeekSeq();
  Network::SendOptions options;
  options.crash_plugins_after_delivery = check.crash_under_request;
  world_.network->Send(
      0, check.request,
      [this, index, sent](const Response& response, bool answered) {
        const uint64_t at = world_.NextSeq();
        FinalCheck& c = final_checks_[index];
        const bool refused_for_now = !response.status.ok() && !c.crash_under_request &&
                                     !(c.catalog && absl::IsNotFound(response.status));
        if (refused_for_now && c.attempts < kFinalAttemptsMax) {
          // A plugin in crash-loop backoff, a mount still coming up: try again shortly.
          world_.loop.PostAfter(kFinalRetry, [this, index] { RunFinalCheck(index); });
          return;
        }
        const std::string what = absl::StrCat("final ", OpKindName(c.request.kind), " of \"",
                                              c.request.key, c.request.name, "\"");
        if (c.crash_under_request) {
          world_.Count("reload");
          if (!answered || !response.status.ok()) {
            world_.Violate("reload", absl::StrCat(what,
                                                  " failed when its plugin process crashed "
                                                  "under it, with no other fault active: ",
                                                  response.status.ToString()));
          }
        } else if (refused_for_now) {
          world_.Count("liveness");
          world_.Violate("liveness", absl::StrCat(what, " still failed after ", c.attempts,
                                                  " attempts: ", response.status.ToString()));
        } else if (!c.model_key.empty()) {
          // A read the history settles: the invariants judge it.
          world_.invariants->OnReply(
              Reply{Source::kFinal, 0, c.request, response, answered, sent, at});
        }
        world_.loop.Post([this, index] { RunFinalCheck(index + 1); });
      },
      options);
}

}  // namespace bulwark::sim
