// A simulated node: one bulwark server process running the real core composition root
// (core/node: barrier, plugin catalog, mount table, lifecycle manager, PluginClient) on a
// simulated Env — FileStorage over the node's own simulated disk, simulated plugin processes
// running the real SDK and kv plugin logic behind the simulated plugin transport (sim/plugin).
// The node serves the simulator's requests the way an HTTP layer would. It can be stopped
// (process killed) and started again, which rebuilds every core object from what is on disk.
//
// Extension points: NodeComponent gets the node's lifecycle events, may serve requests, and may
// carry out fault kinds for pieces that are not built yet (partitions, credential rotation).
#ifndef BULWARK_SIM_NODE_H_
#define BULWARK_SIM_NODE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "base/env/env.h"
#include "base/env/random.h"
#include "base/env/sim/sim_event_loop.h"
#include "base/env/sim/sim_file_system.h"
#include "base/env/sim/sim_process_launcher.h"
#include "base/log/log.h"
#include "base/metrics/metrics.h"
#include "core/barrier/barrier.h"
#include "core/catalog/catalog.h"
#include "core/lifecycle/builtin_runner.h"
#include "core/lifecycle/external_runner.h"
#include "core/node/node.h"
#include "core/storage/file_storage.h"
#include "sim/node_env.h"
#include "sim/plugin/sim_plugin.h"
#include "sim/plugin_under_test.h"
#include "sim/schedule.h"

namespace bulwark::sim {

// Most components one node carries.
inline constexpr size_t kNodeComponentsMax = 16;

// The plugin programs every node can run. kSwappedPlugin is what an artifact swap writes: a
// working plugin, but not the one the catalog pinned.
inline constexpr absl::string_view kPluginMultiplexed = "kv";
inline constexpr absl::string_view kPluginSolo = "kv-solo";
inline constexpr absl::string_view kSwappedPlugin = "kv-swapped";
// A plugin that crashes at every start, before its handshake line (the rule prober's).
inline constexpr absl::string_view kCrashingPlugin = "kv-crash";
// A working kv plugin whose handshake line is malformed in one of kHandshakeMangles ways, chosen
// by its argument "--mangle=<k>" (the rule prober's; MangleHandshakeLine below).
inline constexpr absl::string_view kBadHandshakePlugin = "kv-badhs";
inline constexpr int kHandshakeMangles = 12;
// Outside the plugin directory: a copy of the kv artifact, and what symlinks inside lead to.
inline constexpr absl::string_view kOutsideDir = "/bulwark/outside";
// In the plugin directory: a symlink to the outside copy (through "..") and one to "kv" that the
// rule prober re-points outside for a while.
inline constexpr absl::string_view kEscapingLink = "kv-link";
inline constexpr absl::string_view kHopLink = "kv-hop";
inline constexpr absl::string_view kBuiltinPlugin = "kv-builtin";
inline constexpr absl::string_view kBuiltinVersion = "v1.0.0+builtin";

enum class OpKind {
  kInit,    // Initialize the barrier: shares, threshold.
  kUnseal,  // Give unseal shares until unsealed (mounts come up).
  kSeal,    // Stop every plugin, then seal.
  kRotate,  // Add a data-key term.
  kStatus,  // Seal status.
  kPut,     // Mount traffic: the kv plugin at `key` (a path under a mount).
  kGet,
  kList,  // `key` is a folder ("m0/c1/").
  kDelete,
  kRawPut,  // Raw storage straight through the barrier, as Vault's sys/raw.
  kRawGet,
  kRawList,
  kRawDelete,
  kRegister,    // Catalog registration.
  kUnregister,  // Catalog deletion.
  kCatalogGet,
  kEnableMount,  // Mount `mount_path` on catalog entry `name` (starts its plugin).
  kDisableMount,
  kReload,  // Restart every process of plugin `name`.
  // A logical request as the HTTP layer hands it on: `key` the path ("db/creds/r0"),
  // `operation` ("read", "update", ...), `data_json` the body; answers the reply's data JSON in
  // `value` and its lease in `lease_id` / `lease_ttl`. (The database engine's workload.)
  kLogical,
  kRevokeLease,  // sys/leases/revoke of lease `key`.
};

absl::string_view OpKindName(OpKind kind);

// `line` (a well-formed handshake line) made malformed in way `mangle` (0..kHandshakeMangles-1):
// a wrong core or app version, an unknown protocol or network, stray whitespace, too few or too
// many fields, a bad MUX or CERT field, a control character, or text instead of the line.
std::string MangleHandshakeLine(const std::string& line, int mangle);

struct Request {
  OpKind kind = OpKind::kStatus;
  std::string key;    // Data requests: the path (or raw key, or folder to list).
  std::string value;  // kPut, kRawPut. A secret: never logged.
  // With a plugin under test (NodeOptions::plugin), kPut's operation ("create" or "update") and
  // data (the probe's write_data), sent as they are; kGet then answers Response.data unparsed.
  std::string operation;
  std::string data_json;
  int shares = 0;                          // kInit.
  int threshold = 0;                       // kInit.
  std::vector<std::string> unseal_shares;  // kUnseal. Secrets.
  catalog::RegisterRequest registration;   // kRegister. Its env values are secrets.
  catalog::PluginType type = catalog::PluginType::kSecret;  // Catalog and mount requests.
  std::string name;                                         // Catalog entry / plugin name.
  std::string version;
  std::string mount_path;  // kEnableMount, kDisableMount.
  // HA clusters: the network's number for the sender's request (it stays the same through
  // redirects and forwarding: "forwarded at most once" counts it), and whether a node forwarded
  // it here (Vault's X-Vault-Internal-No-Request-Forwarding: it is never forwarded again).
  uint64_t op = 0;
  bool forwarded = false;
};

struct Response {
  absl::Status status;
  std::optional<std::string> value;               // kGet, kRawGet (plugin under test: JSON).
  std::vector<std::string> keys;                  // kList, kRawList: full keys.
  std::vector<std::string> shares;                // kInit. Secrets.
  bool sealed = true;                             // kStatus, kUnseal.
  bool initialized = false;                       // kStatus.
  std::optional<catalog::CatalogEntryView> view;  // kRegister, kCatalogGet.
  // An HA standby's redirect (Vault's 307): the node the request should go to; -1: none.
  int redirect_to = -1;
  std::string lease_id;  // kLogical: the secret's lease, if any.
  absl::Duration lease_ttl;
  // HA clusters: a performance standby answered it from its own plugins and storage view (what
  // ha_fresh_reads judges).
  bool perf_standby_local = false;
};

class Node;

// A component living on a node beside the core. Every hook runs on the simulation thread.
class NodeComponent {
 public:
  virtual ~NodeComponent() = default;
  virtual absl::string_view name() const = 0;
  // The process started: the core node is open (sealed).
  virtual absl::Status OnStart(Node& node);
  // The node was unsealed and its mounts brought up.
  virtual void OnUnsealed(Node& node);
  // The node is about to seal.
  virtual void OnSealing(Node& node);
  // The process is going away: drop every reference into the node's core objects.
  virtual void OnStop(Node& node);
  // Requests this component serves; nullopt: not this component's.
  virtual std::optional<Response> Handle(Node& node, const Request& request);
  // Requests this component answers later (an HA standby forwarding to the active node): it
  // takes `done` and returns true; false leaves `done` untouched. Asked after Handle.
  virtual bool HandleLater(Node& node, const Request& request,
                           absl::AnyInvocable<void(Response)>& done);
  // Fault kinds this component can inject, and injecting one.
  virtual bool HandlesFault(FaultKind kind) const;
  virtual absl::Status ApplyFault(Node& node, const FaultEvent& event);
};

struct NodeOptions {
  int id = 0;
  uint64_t seed = 0;  // The node's random streams (core, disk tearing, processes) derive from it.
  std::string data_dir = "/bulwark/data";
  std::string plugin_dir = "/bulwark/plugins";
  std::string run_dir = "/bulwark/run";
  // Under "required" the catalog verifies signatures against this file on the node's disk.
  bool signatures_required = false;
  std::string allowed_signers_file = "/bulwark/allowed_signers";
  lifecycle::LifecycleOptions lifecycle;
  // The node's own failpoint state (its Env's failpoints); nullptr: the installed registry.
  FailpointSource* failpoints = nullptr;
  // A plugin author's backend for every data mount's plugin (processes and built-in) in place of
  // the kv example; mount data requests then carry the probe's operation and data.
  std::shared_ptr<const PluginUnderTest> plugin;
  // An HA cluster (sim/ha): the physical storage under the barrier in place of FileStorage on the
  // node's disk (the node's view of the simulated etcd; outlives the node), and the role its core
  // opens in. Null: FileStorage, active (one node).
  Storage* physical = nullptr;
  node::Role role = node::Role::kActive;
};

// How a plugin process was started, as the node's launcher saw it: what the invariants compare
// with the catalog entries its mounts resolved to. `env` holds entry env values (secrets).
struct LaunchRecord {
  std::string path;    // The executable, every symlink resolved.
  std::string sha256;  // Of its contents, read through the handle that was executed.
  std::vector<std::string> argv;
  std::vector<std::string> env;
};

// The simulator's callbacks into its own bookkeeping.
struct NodeHooks {
  // A trace event on behalf of the node. Payloads carry no secrets.
  std::function<void(int node, absl::string_view kind, absl::string_view payload)> trace;
  // Every log record the node's core wrote, formatted.
  std::function<void(int node, absl::string_view line)> log;
  // Around every task of the node's executor.
  std::function<void(int node)> before_task;
  std::function<void(int node)> after_task;
  // The node's disk lost power in the middle of a call (an armed crash struck). The simulator
  // finishes the crash once the node's code has unwound.
  std::function<void(int node, CrashMode mode)> power_lost;
  // A process is about to be started from `path`, whose contents hash (SHA-256, hex) to `sha256`
  // as read through the very handle that is executed.
  std::function<void(int node, absl::string_view path, absl::string_view sha256)> spawning;
};

// A Random whose stream can be replaced, so that each crash tears the disk from its own stream
// (derived from the seed and the fault) rather than from a position that earlier faults moved.
class ReseedableRandom final : public Random {
 public:
  explicit ReseedableRandom(uint64_t seed) : inner_(seed) {}
  uint64_t Next64() override { return inner_.Next64(); }
  void Reseed(uint64_t seed) { inner_ = SeededRandom(seed); }

 private:
  SeededRandom inner_;
};

class Node {
 public:
  using Done = absl::AnyInvocable<void(Response)>;

  // `loop` and `clock` are shared by every node and must outlive this one.
  Node(NodeOptions options, SimEventLoop& loop, SimClock& clock, NodeHooks hooks);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  int id() const { return options_.id; }
  const NodeOptions& options() const { return options_; }

  // Starts the server process: opens FileStorage on the data directory and the core node
  // (sealed), then the components. On error the node stays stopped; the error says what failed.
  absl::Status Start();
  // The process dies: plugins are killed, components and core objects dropped, pending tasks
  // discarded, and the disk view refuses every call until the next Start. The disk keeps
  // everything (a power loss is Stop plus SimFileSystem::Crash, done by the simulator).
  void Stop();
  bool running() const { return core_ != nullptr; }

  // Serves one request. `done` runs once, inline or from a later task of this node — or never,
  // if the process dies first. REQUIRES: running().
  void Execute(const Request& request, Done done);
  // Execute without asking the components: the node's own answer (a performance standby serving
  // a request locally). REQUIRES: running().
  void Serve(const Request& request, Done done);

  // REQUIRES: fewer than kNodeComponentsMax components.
  void AddComponent(std::unique_ptr<NodeComponent> component);
  // The components that handle fault `kind` (for the simulator's fault hooks).
  std::vector<NodeComponent*> ComponentsHandling(FaultKind kind) const;

  Env& env() { return env_; }
  SimFileSystem& disk() { return disk_; }
  NodeFileSystem& fs() { return fs_; }
  NodeClock& clock() { return clock_; }
  NodeExecutor& executor() { return executor_; }
  SimProcessLauncher& launcher() { return launcher_; }
  SimPluginNetwork& plugin_network() { return network_; }
  // How process `pid` (of this node's launcher) was started; null if it was not.
  const LaunchRecord* launched(int64_t pid) const;
  ReseedableRandom& disk_random() { return disk_random_; }
  // Where the node's core logs (every record reaches NodeHooks::log).
  LogSink& log_sink();

  // The core of the running process; null while stopped.
  node::Node* core() { return core_.get(); }

 private:
  class HookLogSink;
  class CheckingLauncher;

  void Trace(absl::string_view kind, absl::string_view payload);
  void UnsealNext(std::vector<std::string> shares, size_t next, Done done);
  void ExecuteData(const Request& request, Done done);
  // ExecuteData with a plugin under test: the request's operation and data as they are.
  void ExecuteProbe(const Request& request, Done done);
  void ExecuteRaw(const Request& request, Done done);

  NodeOptions options_;
  NodeHooks hooks_;
  SeededRandom root_random_;
  SeededRandom core_random_;
  SeededRandom process_random_;
  SeededRandom network_random_;
  ReseedableRandom disk_random_;
  NodeClock clock_;
  NodeExecutor executor_;
  SimFileSystem disk_;
  NodeFileSystem fs_;
  SimProcessLauncher launcher_;
  std::unique_ptr<CheckingLauncher> checking_launcher_;
  SimPluginNetwork network_;
  std::unique_ptr<HookLogSink> log_;
  Env env_;

  // One incarnation of the server process.
  std::unique_ptr<FileStorage> storage_;
  std::unique_ptr<metrics::Registry> metrics_;
  std::unique_ptr<lifecycle::ExternalRunnerFactory> external_;
  std::unique_ptr<lifecycle::BuiltinRunnerFactory> builtin_;
  std::unique_ptr<lifecycle::SplitRunnerFactory> runners_;
  std::unique_ptr<node::Node> core_;
  std::vector<std::unique_ptr<NodeComponent>> components_;
  // Every process the launcher started, by pid (pids are never reused).
  std::map<int64_t, LaunchRecord> launches_;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_NODE_H_
