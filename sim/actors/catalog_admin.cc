// The catalog administrator (see catalog_admin.h).
#include "sim/actors/catalog_admin.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/catalog/catalog_error.h"
#include "sim/invariants/invariant.h"
#include "sim/network.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

constexpr int kCatalogNames = 3;
constexpr absl::string_view kVersions[] = {"", "v1.0.0", "v1.1.0"};

}  // namespace

CatalogAdmin::CatalogAdmin(World& world)
    : world_(world), random_(world.root_random.Derive("admin")) {}

void CatalogAdmin::OnReady() {
  if (world_.scenario.catalog_ops_per_min > 0) Loop();
}

void CatalogAdmin::Loop() {
  if (world_.quiet) return;
  world_.loop.PostAfter(NextGap(random_, world_.scenario.catalog_ops_per_min), [this] { Op(); });
}

void CatalogAdmin::Op() {
  if (world_.quiet) return;
  Random& random = random_;
  const uint64_t pick = random.Uniform(100);
  const int name_index = static_cast<int>(random.Uniform(kCatalogNames));
  const std::string version(kVersions[random.Uniform(std::size(kVersions))]);
  const int artifact = static_cast<int>(random.Uniform(kArtifactCount));
  const bool wrong_sha = random.Bernoulli(world_.scenario.wrong_sha_probability);
  const std::string token = DrawSecret(random);
  // Drawn only where the scenario asks for it, so other scenarios' streams stay as they were.
  const bool mis_signed = world_.scenario.swapped_signature_probability > 0 &&
                          random.Bernoulli(world_.scenario.swapped_signature_probability);
  const std::string name = absl::StrCat("plug-", name_index);
  const std::string key = absl::StrCat(name, "@", version);

  Request request;
  request.type = catalog::PluginType::kSecret;
  request.name = name;
  request.version = version;
  Network::SendOptions options;
  options.client = true;
  auto reply = [this](const Request& request, const Response& response, bool answered,
                      uint64_t sent, uint64_t at, bool expect_refusal) {
    Reply r{Source::kAdmin, 0, request, response, answered, sent, at};
    r.expect_refusal = expect_refusal;
    world_.invariants->OnReply(r);
  };
  if (pick < 35) {
    world_.scanner.Add(token);
    request.kind = OpKind::kRegister;
    catalog::RegisterRequest& r = request.registration;
    r.type = catalog::PluginType::kSecret;
    r.name = name;
    r.version = version;
    r.command = std::string(kArtifacts[artifact]);
    r.args = {"--serve"};
    r.env = {absl::StrCat("PLUGIN_TOKEN=", token)};
    r.sha256 = world_.artifact_sha[static_cast<size_t>(wrong_sha ? (artifact + 1) % kArtifactCount
                                                                 : artifact)];
    if (mis_signed) {
      // The other artifact's genuine signature: the catalog must refuse it (bad signature).
      r.signature = world_.signature_by_sha[world_.artifact_sha[static_cast<size_t>(
          (artifact + 1) % kArtifactCount)]];
    }
    const bool refused = wrong_sha || mis_signed;
    std::optional<uint64_t> version_number;
    const uint64_t sent = world_.PeekSeq();
    if (!refused) version_number = world_.catalog_history.BeginWrite(key, r.sha256, sent);
    world_.network->Send(
        0, request,
        [this, reply, request, key, wrong_sha, refused, version_number, sent](
            const Response& response, bool answered) {
          const uint64_t at = world_.NextSeq();
          if (!refused) {
            KvModel::Outcome outcome = KvModel::Outcome::kUnknown;
            if (answered && response.status.ok()) {
              outcome = KvModel::Outcome::kAcked;
            } else if (answered) {
              const std::optional<catalog::CatalogError> reason =
                  catalog::CatalogErrorOf(response.status);
              // Refusals decided before the storage write leave nothing behind.
              if ((reason.has_value() && *reason != catalog::CatalogError::kStorageError) ||
                  RefusedBeforeAnyEffect(response.status)) {
                outcome = KvModel::Outcome::kFailed;
              }
            }
            world_.catalog_history.EndWrite(key, *version_number, outcome, at);
          }
          reply(request, response, answered, sent, at, wrong_sha);
          world_.WorkloadOpFinished();
          Loop();
        },
        options);
    return;
  }
  if (pick < 45) {
    request.kind = OpKind::kUnregister;
    const uint64_t sent = world_.PeekSeq();
    const uint64_t number = world_.catalog_history.BeginWrite(key, std::nullopt, sent);
    world_.network->Send(
        0, request,
        [this, reply, request, key, number, sent](const Response& response, bool answered) {
          const uint64_t at = world_.NextSeq();
          KvModel::Outcome outcome = KvModel::Outcome::kUnknown;
          if (answered && response.status.ok()) {
            outcome = KvModel::Outcome::kAcked;
          } else if (answered && RefusedBeforeAnyEffect(response.status)) {
            outcome = KvModel::Outcome::kFailed;
          }
          world_.catalog_history.EndWrite(key, number, outcome, at);
          reply(request, response, answered, sent, at, false);
          world_.WorkloadOpFinished();
          Loop();
        },
        options);
    return;
  }
  if (pick < 60) {
    request.kind = OpKind::kCatalogGet;
  } else if (pick < 80) {
    // Mounting, unmounting and reloading start and stop plugin processes: every start is checked
    // at the launcher against the artifacts' real hashes.
    request.kind = OpKind::kEnableMount;
    request.mount_path = absl::StrCat("x", name_index);
  } else if (pick < 90) {
    request.kind = OpKind::kDisableMount;
    request.mount_path = absl::StrCat("x", name_index);
  } else {
    request.kind = OpKind::kReload;
  }
  const uint64_t sent = world_.PeekSeq();
  world_.network->Send(
      0, request,
      [this, reply, request, sent](const Response& response, bool answered) {
        // Only catalog reads take a history number: the rest change nothing the history holds.
        const uint64_t at = request.kind == OpKind::kCatalogGet ? world_.NextSeq() : 0;
        reply(request, response, answered, sent, at, false);
        world_.WorkloadOpFinished();
        Loop();
      },
      options);
}

}  // namespace bulwark::sim
