// Invariants: each an object with a name and the rule it checks, registered in one list
// (invariants/registry.cc) that the report reads. An invariant subscribes to the observations it
// needs (hooks()) and is called with each, in registration order; it counts its checks and
// reports violations through the World. A few rules are checked by the run itself rather than
// on an observation (liveness and reload by the auditor's end checks, caps by the run loop, lost
// requests by the network); they are registered all the same, so the report names them.
//
// Adding an invariant: a class in its own file here, and one line in invariants/registry.cc.
#ifndef BULWARK_SIM_INVARIANTS_INVARIANT_H_
#define BULWARK_SIM_INVARIANTS_INVARIANT_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "sim/node.h"

namespace bulwark::sim {

class World;

// Who sent a request.
enum class Source {
  kOperator,
  kClient,  // A data client.
  kAdmin,   // The catalog administrator.
  kProbe,   // The auditor's liveness probe.
  kFinal,   // The auditor's end-of-run reads (dispatched only for reads the history settles).
  kRules,   // The rule prober's catalog and plugin steps (actors/rule_prober.h).
};

// What a rule prober request probes, for the invariant that judges its answer.
enum class Probe {
  kNone,
  kInvalidRegistration,  // A registration whose name or version is invalid (catalog_validation).
  kCommandEscapes,       // A command that resolves outside the plugin directory (confinement).
  kDirectorySymlink,     // Sent while the plugin directory is a symlink (confinement).
  kBadHandshake,         // A mount of a plugin whose handshake line is malformed (bad_handshake).
  kAfterBadHandshake,    // A read through another mount right after one (bad_handshake).
};

// One request as its sender saw it end.
struct Reply {
  Source source = Source::kClient;
  int node = 0;
  const Request& request;
  const Response& response;
  bool answered = false;  // False: the connection broke first (the outcome is unknown).
  uint64_t sent = 0;      // History sequence numbers of the send and of the answer.
  uint64_t at = 0;
  bool expect_refusal = false;  // The sender made the request invalid on purpose.
  Probe probe = Probe::kNone;   // Source::kRules: what the request probes.
};

class Invariant {
 public:
  enum Hook : uint32_t {
    kText = 1 << 0,         // OnText
    kSpawn = 1 << 1,        // OnSpawn
    kNodeAnswer = 1 << 2,   // OnNodeAnswer
    kReply = 1 << 3,        // OnReply
    kSteppedDown = 1 << 4,  // OnSteppedDown
    kRestart = 1 << 5,      // OnRestart
  };

  virtual ~Invariant() = default;
  virtual absl::string_view name() const = 0;
  // What must hold, in one line.
  virtual absl::string_view rule() const = 0;
  // The observations this invariant wants (a mask of Hook).
  virtual uint32_t hooks() const { return 0; }

  // A text leaving the core: an error message, a log line, a trace payload, a catalog view.
  virtual void OnText(World& /*world*/, absl::string_view /*where*/, absl::string_view /*text*/) {}
  // A plugin process is about to start from `path`, whose bytes hash to `sha256`.
  virtual void OnSpawn(World& /*world*/, int /*node*/, absl::string_view /*path*/,
                       absl::string_view /*sha256*/) {}
  // A node answered a request (white box: the node is as it is when it answers).
  virtual void OnNodeAnswer(World& /*world*/, int /*node*/, const Request& /*request*/,
                            const Response& /*response*/) {}
  // A data client's, the administrator's or an end-of-run request ended.
  virtual void OnReply(World& /*world*/, const Reply& /*reply*/) {}
  // A node finished stepping down.
  virtual void OnSteppedDown(World& /*world*/, int /*node*/) {}
  // A node's process was started again; `died`: it crashed again while starting.
  virtual void OnRestart(World& /*world*/, int /*node*/, const absl::Status& /*started*/,
                         bool /*died*/) {}
};

// The invariants of a run, in registration order (invariants/registry.cc).
std::vector<std::unique_ptr<Invariant>> MakeInvariants();

// The registered invariants and, per hook, those that subscribed.
// A rule its owner checks itself (the auditor, the run loop, the network, an actor), through
// World::Count and World::Violate: registered with its name and rule so that reports, shrinking
// and the drill know it, and subscribed to no hook.
std::unique_ptr<Invariant> MakeNamedInvariant(absl::string_view name, absl::string_view rule);

class Invariants {
 public:
  Invariants(World& world, std::vector<std::unique_ptr<Invariant>> all);

  const std::vector<std::unique_ptr<Invariant>>& all() const { return all_; }

  void OnText(absl::string_view where, absl::string_view text);
  void OnSpawn(int node, absl::string_view path, absl::string_view sha256);
  void OnNodeAnswer(int node, const Request& request, const Response& response);
  void OnReply(const Reply& reply);
  void OnSteppedDown(int node);
  void OnRestart(int node, const absl::Status& started, bool died);

 private:
  World& world_;
  std::vector<std::unique_ptr<Invariant>> all_;
  std::vector<Invariant*> text_, spawn_, node_answer_, reply_, stepped_down_, restart_;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_INVARIANTS_INVARIANT_H_
