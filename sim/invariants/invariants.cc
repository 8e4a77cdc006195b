// Dispatching observations to the invariants that subscribed (see invariant.h).
#include <utility>

#include "sim/invariants/invariant.h"

namespace bulwark::sim {

Invariants::Invariants(World& world, std::vector<std::unique_ptr<Invariant>> all)
    : world_(world), all_(std::move(all)) {
  for (const std::unique_ptr<Invariant>& invariant : all_) {
    const uint32_t hooks = invariant->hooks();
    if (hooks & Invariant::kText) text_.push_back(invariant.get());
    if (hooks & Invariant::kSpawn) spawn_.push_back(invariant.get());
    if (hooks & Invariant::kNodeAnswer) node_answer_.push_back(invariant.get());
    if (hooks & Invariant::kReply) reply_.push_back(invariant.get());
    if (hooks & Invariant::kSteppedDown) stepped_down_.push_back(invariant.get());
    if (hooks & Invariant::kRestart) restart_.push_back(invariant.get());
  }
}

void Invariants::OnText(absl::string_view where, absl::string_view text) {
  for (Invariant* invariant : text_) invariant->OnText(world_, where, text);
}

void Invariants::OnSpawn(int node, absl::string_view path, absl::string_view sha256) {
  for (Invariant* invariant : spawn_) invariant->OnSpawn(world_, node, path, sha256);
}

void Invariants::OnNodeAnswer(int node, const Request& request, const Response& response) {
  for (Invariant* invariant : node_answer_)
    invariant->OnNodeAnswer(world_, node, request, response);
}

void Invariants::OnReply(const Reply& reply) {
  for (Invariant* invariant : reply_) invariant->OnReply(world_, reply);
}

void Invariants::OnSteppedDown(int node) {
  for (Invariant* invariant : stepped_down_) invariant->OnSteppedDown(world_, node);
}

void Invariants::OnRestart(int node, const absl::Status& started, bool died) {
  for (Invariant* invariant : restart_) invariant->OnRestart(world_, node, started, died);
}

}  // namespace bulwark::sim
