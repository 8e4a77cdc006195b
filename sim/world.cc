// The state a run's parts share (see world.h).
#include "sim/world.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/crypto/sha256.h"
#include "base/crypto/sshsig_testing.h"
#include "base/env/sim/sim_process_launcher.h"
#include "base/status/check.h"
#include "core/catalog/signature.h"
#include "sim/actors/actor.h"
#include "sim/cluster.h"
#include "sim/faults/fault.h"
#include "sim/ha/ha_cluster.h"
#include "sim/invariants/invariant.h"
#include "sim/network.h"

namespace bulwark::sim {
namespace {

constexpr uint64_t kPruneEvery = 256;
constexpr size_t kSecretBytes = 12;  // 24 hex digits.

}  // namespace

int64_t Ms(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

absl::Duration DrawMillis(Random& random, absl::Duration lo, absl::Duration hi) {
  const int64_t a = std::max<int64_t>(0, Ms(lo));
  const int64_t b = std::max(a, Ms(hi));
  return absl::Milliseconds(static_cast<int64_t>(
      random.UniformInRange(static_cast<uint64_t>(a), static_cast<uint64_t>(b))));
}

absl::Duration NextGap(Random& random, double per_min) {
  const double mean_ms = 60000.0 / per_min;
  const uint64_t hi = static_cast<uint64_t>(2 * mean_ms);
  return absl::Milliseconds(
      static_cast<int64_t>(random.UniformInRange(1, std::max<uint64_t>(1, hi))));
}

std::string DrawSecret(Random& random) {
  return absl::StrCat("s", absl::BytesToHexString(random.Bytes(kSecretBytes)));
}

bool RefusedBeforeAnyEffect(const absl::Status& status) {
  const absl::string_view m = status.message();
  return absl::StartsWith(m, "barrier is sealed") || absl::StartsWith(m, "Vault is sealed") ||
         absl::StartsWith(m, "node is a standby") || absl::StartsWith(m, "node is still loading") ||
         absl::StartsWith(m, "node is shut down") || absl::StartsWith(m, "no handler for route");
}

KvModel::Outcome WriteOutcome(bool answered, const absl::Status& status) {
  if (answered && status.ok()) return KvModel::Outcome::kAcked;
  if (answered && RefusedBeforeAnyEffect(status)) return KvModel::Outcome::kFailed;
  return KvModel::Outcome::kUnknown;
}

bool IsDataOp(OpKind kind) {
  switch (kind) {
    case OpKind::kPut:
    case OpKind::kGet:
    case OpKind::kList:
    case OpKind::kDelete:
    case OpKind::kRawPut:
    case OpKind::kRawGet:
    case OpKind::kRawList:
    case OpKind::kRawDelete:
      return true;
    default:
      return false;
  }
}

World::World(const RunConfig& run_config)
    : config(run_config),
      scenario(run_config.scenario),
      trace(run_config.record_trace),
      root_random(run_config.seed),
      failpoint_random(root_random.Derive("failpoints")) {
  for (absl::string_view artifact : kArtifacts) {
    artifact_sha.push_back(
        crypto::HexEncode(crypto::Sha256::Hash(SimProcessLauncher::ExecutableContents(artifact))));
    genuine_sha.insert(artifact_sha.back());
  }
  crashing_sha = crypto::HexEncode(
      crypto::Sha256::Hash(SimProcessLauncher::ExecutableContents(kCrashingPlugin)));
  genuine_sha.insert(crashing_sha);
  bad_handshake_sha = crypto::HexEncode(
      crypto::Sha256::Hash(SimProcessLauncher::ExecutableContents(kBadHandshakePlugin)));
  genuine_sha.insert(bad_handshake_sha);
  genuine_sha.insert(crypto::HexEncode(
      crypto::Sha256::Hash(SimProcessLauncher::ExecutableContents(kDatabasePlugin))));
  if (scenario.signatures_required) {
    // The release key: a fixed seed, so every run signs alike.
    const std::string seed = "bulwark-sim-release-key-seed-32b";
    for (absl::string_view program :
         {kArtifacts[0], kArtifacts[1], kCrashingPlugin, kBadHandshakePlugin, kDatabasePlugin}) {
      const std::string contents = SimProcessLauncher::ExecutableContents(program);
      signature_by_sha[crypto::HexEncode(crypto::Sha256::Hash(contents))] =
          crypto::testing::SignSshsigEd25519(seed, catalog::kPluginSignatureNamespace, contents);
    }
    allowed_signers_text =
        absl::StrCat("release@bulwark.sim ", crypto::testing::Ed25519PublicKeyLine(seed), "\n");
  }
}

World::~World() = default;

void World::Violate(absl::string_view invariant, std::string detail) {
  if (result.violations.size() < kViolationsMax) {
    result.violations.push_back(Violation{std::string(invariant), std::move(detail), Ms(Now())});
  }
  trace.Add(Now(), -1, "violation", invariant);
}

void World::ScanText(absl::string_view where, absl::string_view text) {
  invariants->OnText(where, text);
}

std::string World::NewSecret(Random& random) {
  std::string secret = DrawSecret(random);
  scanner.Add(secret);
  return secret;
}

void World::BeginWorkload() {
  ready = true;
  trace.Add(Now(), -1, "ready", "");
  faults->EnableBuggify();
  for (const std::unique_ptr<Actor>& actor : actors) actor->OnReady();
}

void World::BeginQuiet() {
  quiet = true;
  trace.Add(Now(), -1, "quiet", "");
  registry.ClearAll();
  registry.DisableBuggify();
  if (!config.failpoints.empty()) CHECK_OK(registry.Configure(config.failpoints));
  faults->OnQuiet();
  for (const std::unique_ptr<Actor>& actor : actors) actor->OnQuiet();
}

void World::NodeRestarted(int node) {
  for (const std::unique_ptr<Actor>& actor : actors) actor->OnNodeRestarted(node);
}

void World::WorkloadOpFinished() {
  if (++completions % kPruneEvery == 0) {
    data_history.Prune(reads_in_flight.empty() ? seq + 1 : *reads_in_flight.begin());
  }
  for (const std::unique_ptr<Actor>& actor : actors) actor->OnWorkloadOpFinished();
}

}  // namespace bulwark::sim
