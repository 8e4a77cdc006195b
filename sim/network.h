// The links between actors and nodes. Requests and answers travel with a random latency. A
// sender waits as long as its connection lives: when the node dies or hangs, every connection to
// it breaks and the sender learns that its request's outcome is unknown; a request sent to a node
// that is down is refused. The node's own deadlines answer everything else, so a request still
// unanswered after lost_request_timeout on a live node is a liveness failure.
#ifndef BULWARK_SIM_NETWORK_H_
#define BULWARK_SIM_NETWORK_H_

#include <cstdint>
#include <functional>
#include <map>

#include "absl/strings/string_view.h"
#include "base/env/random.h"
#include "base/env/sim/sim_event_loop.h"
#include "sim/node.h"

namespace bulwark::sim {

class World;

// Redirects a request follows before it fails (a cluster whose active keeps moving).
inline constexpr int kRedirectsMax = 4;

class Network {
 public:
  // `answered` is false when the connection broke (the node died) before an answer came.
  using Callback = std::function<void(const Response& response, bool answered)>;
  struct SendOptions {
    bool client = false;  // A workload request: the run waits for these to end.
    // Crash every plugin process of the node right after the request reached it (the final
    // lazy-reload check).
    bool crash_plugins_after_delivery = false;
  };

  explicit Network(World& world);

  // Sends `request` to `node`; `done` runs once. Returns the send's history sequence number.
  uint64_t Send(int node, Request request, Callback done, SendOptions options);
  // Every connection to `node` breaks (it died or hung).
  void ConnectionsBroke(int node);

  uint64_t client_ops_in_flight() const { return client_ops_in_flight_; }

 private:
  struct PendingOp {
    Callback done;
    TimerId lost_timer = kNoTimer;
    OpKind kind = OpKind::kStatus;
    int node = 0;
    bool client = false;
    // HA clusters: what a standby's redirect re-sends.
    int redirects = 0;
    Request request;
    SendOptions options;
  };

  absl::Duration Latency();
  void Deliver(uint64_t op, int node, uint64_t epoch, const Request& request, SendOptions options);
  void OnNodeDone(uint64_t op, int node, uint64_t epoch, const Request& request, Response response);
  // A standby redirected `op` to node `to`: send it there.
  void Redirect(uint64_t op, int to, absl::Duration delay);
  void Complete(uint64_t op, Response response);
  void Abort(uint64_t op, absl::string_view why);
  void LostRequest(uint64_t op);

  World& world_;
  SeededRandom random_;
  std::map<uint64_t, PendingOp> pending_;
  uint64_t next_op_ = 1;
  uint64_t client_ops_in_flight_ = 0;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_NETWORK_H_
