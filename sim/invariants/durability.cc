// durability: an acknowledged write (or delete) is never lost — no read or listing returns a
// state that a later acknowledged write replaced. phantom_read: no read or listing returns a
// value (or key) that was never written. Both are judged by one check against the history of
// writes (sim/model.h), which names the rule a bad answer breaks; writes whose outcome is unknown
// may land at any later time, as linearizability allows.
#include "sim/invariants/invariant.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class DurabilityInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "durability"; }
  absl::string_view rule() const override {
    return "an acknowledged write or delete is never lost";
  }
  uint32_t hooks() const override { return kReply; }

  void OnReply(World& world, const Reply& reply) override {
    const OpKind kind = reply.request.kind;
    const absl::Status& status = reply.response.status;
    if (!reply.answered) return;
    const bool data_read = kind == OpKind::kGet || kind == OpKind::kRawGet ||
                           kind == OpKind::kList || kind == OpKind::kRawList;
    Verdict verdict;
    const char* prefix = "";
    if (kind == OpKind::kCatalogGet &&
        (reply.source == Source::kAdmin || reply.source == Source::kFinal)) {
      if (!status.ok() && !absl::IsNotFound(status)) return;
      world.Count(name());
      KvModel::Value seen;
      if (status.ok()) seen = reply.response.view->sha256_hex;
      verdict = world.catalog_history.CheckRead(
          absl::StrCat(reply.request.name, "@", reply.request.version), seen, reply.sent, reply.at);
      prefix = reply.source == Source::kFinal ? "final " : "catalog ";
    } else if (data_read && (reply.source == Source::kClient || reply.source == Source::kFinal)) {
      if (!status.ok()) return;
      // A plugin under test's mount data is judged by its probe contract (probe_read).
      if (world.config.plugin && (kind == OpKind::kGet || kind == OpKind::kList)) return;
      world.Count(name());
      const bool get = kind == OpKind::kGet || kind == OpKind::kRawGet;
      verdict = get ? world.data_history.CheckRead(reply.request.key, reply.response.value,
                                                   reply.sent, reply.at)
                    : world.data_history.CheckList(reply.request.key, reply.response.keys,
                                                   reply.sent, reply.at);
      if (reply.source == Source::kFinal) prefix = "final ";
    } else {
      return;
    }
    if (verdict.ok) return;
    // A performance standby served the read from its own plugins and storage view: a stale
    // answer breaks the cluster's fresh-reads rule (docs/simulation.md: nothing of a read's
    // data may lag on a performance standby).
    if (reply.response.perf_standby_local && verdict.invariant == "durability") {
      world.Violate("ha_fresh_reads",
                    absl::StrCat("performance standby read: ", prefix, verdict.detail));
      return;
    }
    world.Violate(verdict.invariant, absl::StrCat(prefix, verdict.detail));
  }
};

// Checked with durability (above); registered so that reports and shrinking know the name.
class PhantomReadInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "phantom_read"; }
  absl::string_view rule() const override {
    return "no read or listing returns a value or key that was never written";
  }
};

}  // namespace

std::unique_ptr<Invariant> MakeDurabilityInvariant() {
  return std::make_unique<DurabilityInvariant>();
}
std::unique_ptr<Invariant> MakePhantomReadInvariant() {
  return std::make_unique<PhantomReadInvariant>();
}

}  // namespace bulwark::sim
