// The simulated network between actors and nodes (see network.h).
#include "sim/network.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sim/cluster.h"
#include "sim/invariants/invariant.h"
#include "sim/world.h"

namespace bulwark::sim {

Network::Network(World& world) : world_(world), random_(world.root_random.Derive("net")) {}

absl::Duration Network::Latency() {
  return DrawMillis(random_, world_.scenario.latency_min, world_.scenario.latency_max);
}

uint64_t Network::Send(int node, Request request, Callback done, SendOptions options) {
  // Under signatures_required every client signs what it registers with the release key, as an
  // operator's tooling would; a registration that carries a signature already keeps it (the
  // administrator's swapped signatures).
  if (request.kind == OpKind::kRegister && world_.scenario.signatures_required &&
      request.registration.signature.empty()) {
    auto it = world_.signature_by_sha.find(request.registration.sha256);
    if (it != world_.signature_by_sha.end()) request.registration.signature = it->second;
  }
  // An HA cluster: a client's request enters at any node (a standby redirects it).
  if (options.client && world_.scenario.nodes > 1) {
    node = static_cast<int>(random_.Uniform(static_cast<uint64_t>(world_.cluster->size())));
  }
  const uint64_t op = next_op_++;
  request.op = op;
  PendingOp& pending = pending_[op];
  pending.done = std::move(done);
  pending.kind = request.kind;
  pending.node = node;
  pending.client = options.client;
  if (world_.scenario.nodes > 1) {  // Kept to follow a standby's redirect.
    pending.request = request;
    pending.options = options;
  }
  if (options.client) ++client_ops_in_flight_;
  const uint64_t sent = world_.NextSeq();
  world_.trace.Add(world_.Now(), node, "send",
                   absl::StrCat(OpKindName(request.kind), " ", request.key, request.name,
                                request.mount_path, " #", op));
  const uint64_t epoch = world_.cluster->machine(node).epoch;
  world_.loop.PostAfter(Latency(), [this, op, node, epoch, request = std::move(request), options] {
    Deliver(op, node, epoch, request, options);
  });
  pending.lost_timer =
      world_.loop.PostAfter(world_.scenario.lost_request_timeout, [this, op] { LostRequest(op); });
  return sent;
}

void Network::Deliver(uint64_t op, int node, uint64_t epoch, const Request& request,
                      SendOptions options) {
  if (pending_.find(op) == pending_.end()) return;  // Its connection already broke.
  Cluster& cluster = *world_.cluster;
  Machine& m = cluster.machine(node);
  if (m.epoch != epoch) return;  // Aborted when the node died.
  if (!m.up()) {
    Abort(op, "connection refused: the node is down");
    return;
  }
  world_.trace.Add(world_.Now(), node, "deliver", absl::StrCat("#", op));
  cluster.EnterNode(node);
  m.node->Execute(request, [this, op, node, epoch, request](Response response) {
    OnNodeDone(op, node, epoch, request, std::move(response));
  });
  cluster.LeaveNode();
  if (!cluster.AfterNodeCode(node)) return;
  if (options.crash_plugins_after_delivery) {
    for (int64_t pid : m.node->launcher().LivePids()) {
      m.node->launcher().Crash(pid).IgnoreError();
      world_.trace.Add(world_.Now(), node, "plugin-crashed-under-request", absl::StrCat(pid));
    }
  }
}

void Network::OnNodeDone(uint64_t op, int node, uint64_t epoch, const Request& request,
                         Response response) {
  if (world_.cluster->machine(node).epoch != epoch) return;
  world_.invariants->OnNodeAnswer(node, request, response);
  // The answer leaves after the node's code has unwound: a crash found then drops it.
  world_.loop.Post(
      [this, op, node, epoch, kind = request.kind, response = std::move(response)]() mutable {
        Machine& m = world_.cluster->machine(node);
        if (m.epoch != epoch) return;
        if (!response.status.ok()) {
          world_.ScanText(absl::StrCat(OpKindName(kind), " error"), response.status.message());
        }
        if (response.view.has_value())
          world_.ScanText("catalog view", response.view->DebugString());
        const absl::Duration delay = Latency() + m.delay_debt;
        m.delay_debt = absl::ZeroDuration();
        if (response.redirect_to >= 0) {
          Redirect(op, response.redirect_to, delay);
          return;
        }
        world_.loop.PostAfter(delay, [this, op, response = std::move(response)]() mutable {
          Complete(op, std::move(response));
        });
      });
}

void Network::Redirect(uint64_t op, int to, absl::Duration delay) {
  auto it = pending_.find(op);
  if (it == pending_.end()) return;
  PendingOp& pending = it->second;
  if (++pending.redirects > kRedirectsMax || to >= world_.cluster->size()) {
    Response response;
    response.status = absl::UnavailableError(
        absl::StrCat("too many redirects (", kRedirectsMax, "): no stable active node"));
    world_.loop.PostAfter(delay, [this, op, response = std::move(response)]() mutable {
      Complete(op, std::move(response));
    });
    return;
  }
  // The client follows the 307: the same request, to the node named, once the answer arrived.
  pending.node = to;
  world_.trace.Add(world_.Now(), to, "redirect", absl::StrCat("#", op));
  const uint64_t epoch = world_.cluster->machine(to).epoch;
  world_.loop.PostAfter(delay + Latency(),
                        [this, op, to, epoch, request = pending.request,
                         options = pending.options] { Deliver(op, to, epoch, request, options); });
}

void Network::Complete(uint64_t op, Response response) {
  auto it = pending_.find(op);
  if (it == pending_.end()) return;  // The connection broke first.
  PendingOp pending = std::move(it->second);
  pending_.erase(it);
  world_.loop.Cancel(pending.lost_timer);
  if (pending.client) --client_ops_in_flight_;
  world_.trace.Add(world_.Now(), -1, "reply",
                   absl::StrCat("#", op, " ", absl::StatusCodeToString(response.status.code())));
  ++(response.status.ok() ? world_.result.ops_ok
                          : world_.result.ops_failed)[std::string(OpKindName(pending.kind))];
  pending.done(response, true);
}

void Network::Abort(uint64_t op, absl::string_view why) {
  auto it = pending_.find(op);
  if (it == pending_.end()) return;
  PendingOp pending = std::move(it->second);
  pending_.erase(it);
  world_.loop.Cancel(pending.lost_timer);
  if (pending.client) --client_ops_in_flight_;
  world_.trace.Add(world_.Now(), -1, "aborted", absl::StrCat("#", op, " ", why));
  ++world_.result.ops_failed[std::string(OpKindName(pending.kind))];
  Response response;
  response.status = absl::UnavailableError(why);
  pending.done(response, false);
}

void Network::LostRequest(uint64_t op) {
  auto it = pending_.find(op);
  if (it == pending_.end()) return;
  world_.Violate("liveness",
                 absl::StrCat(OpKindName(it->second.kind), " request #", op,
                              " to a live node had no answer after ",
                              absl::FormatDuration(world_.scenario.lost_request_timeout)));
  Abort(op, "no answer");
}

void Network::ConnectionsBroke(int node) {
  ++world_.cluster->machine(node).epoch;
  std::vector<uint64_t> broken;
  for (const auto& [op, pending] : pending_) {
    if (pending.node == node) broken.push_back(op);
  }
  // Each sender learns of it in its own task, after the node's teardown is over.
  for (uint64_t op : broken) {
    world_.loop.Post([this, op] { Abort(op, "connection reset: the node went away"); });
  }
}

}  // namespace bulwark::sim
