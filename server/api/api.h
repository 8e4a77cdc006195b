// The API layer: Vault's HTTP API (the subset in docs/server.md) over a Node. The transport
// hands it a parsed http::Request on an I/O thread; the API posts the request onto the core's
// event loop, runs it against the node there, and completes the Responder with Vault's JSON
// envelope, status code and `{"errors":[...]}` body.
//
// Order of checks for each request (Vault's): the path and method (404/405/400/415, see
// decode.h), then the node's state (uninitialised or sealed: 503 "Vault is sealed", except for
// the unauthenticated sys/init, sys/seal-status, sys/unseal, sys/health and sys/leader, and
// sys/seal, a 204 no-op), then, on an HA standby (unsealed, not the active node), a 307 to the
// active node for everything but those unauthenticated endpoints (see StandbyAnswer in api.cc),
// then the token (X-Vault-Token or Authorization: Bearer;
// missing or not valid: 403 "permission denied"), then the endpoint. Every valid token may do
// everything: bulwark has no policies. sys/wrapping/unwrap takes a response-wrapping token in
// place of a client token (see WrappingUnwrap in api.cc).
#ifndef BULWARK_SERVER_API_API_H_
#define BULWARK_SERVER_API_API_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/env/env.h"
#include "base/log/log.h"
#include "base/metrics/metrics.h"
#include "core/node/node.h"
#include "server/api/decode.h"
#include "server/http/message.h"

namespace bulwark::api {

// What sys/leader reports on an HA server (ApiOptions::leader).
struct LeaderStatus {
  bool is_self = false;
  std::string leader_address;
  std::string leader_cluster_address;
  std::optional<absl::Time> active_time;  // is_self only.
};

struct ApiOptions {
  // Reported by sys/seal-status and sys/health: the Vault API level the server speaks.
  std::string version = "1.16.0";
  std::string build_date = "";
  std::string cluster_name = "bulwark-cluster";
  // "" leaves cluster_id out of sys/seal-status and sys/health.
  std::string cluster_id;
  // sys/seal-status's storage_type: "file" or "inmem".
  std::string storage_type = "inmem";
  // HA (docs/ha.md); all unset without HA. Run on the loop after an unseal / a seal made through
  // the API completed; `leader` answers sys/leader (ha_enabled true) while unsealed.
  std::function<void()> on_unsealed;
  std::function<void()> on_sealed;
  std::function<absl::StatusOr<LeaderStatus>()> leader;
  // sys/step-down on the active node: runs on the loop after the 204 was sent (Vault's step-down
  // is asynchronous). Unset: the node steps down and becomes active again at once.
  std::function<void()> step_down;
  // Request forwarding (docs/ha.md, "Forwarding"): sends a whole request to the active node's
  // cluster port; `done` runs once, on any thread, with its answer or an error. Called on the
  // loop. Unset (no cluster port, disable_clustering): a standby redirects with 307. An error
  // marked ha::NotSent (core/ha/forwarding.h: the request provably never reached the active
  // node) is answered with a 307; any other error with a 504 saying the outcome is unknown.
  using ForwardDone = absl::AnyInvocable<void(absl::StatusOr<http::Response>) &&>;
  std::function<void(const std::string& cluster_addr, const http::Request& request,
                     ForwardDone done)>
      forward;
  // Runs on the loop after a forward failed (either kind): the server drops its cached view of
  // the active node, so that the next request asks the store again.
  std::function<void()> forward_failed;
};

class Api {
 public:
  // `env.executor` is where requests run; Handle posts to it from the transport's threads, so
  // in production it must be the PosixEventLoop (whose Post is thread-safe). Every reference
  // must outlive the Api; the node's callbacks that arrive after the Api is gone answer 503.
  Api(Env& env, node::Node& node, metrics::Registry& metrics, LogSink& log,
      ApiOptions options = {});
  ~Api();

  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // The transport's Handler: any thread (see above); never blocks. `respond` is called exactly
  // once, on the loop. REQUIRES: the transport has stopped calling before the Api is destroyed.
  void Handle(http::Request request, http::Responder respond);

  // Graceful shutdown, on the loop: from now on new requests are answered 503 "server is
  // shutting down"; `drained` runs on the loop once no request is in flight (at once if none).
  void BeginShutdown(absl::AnyInvocable<void()> drained);

  // Requests handed to the node and not yet answered. Loop thread.
  size_t in_flight() const { return in_flight_; }

  // Runs `then` on the loop once every request in flight now has been answered (requests that
  // arrive later do not delay it), or once `limit` has passed, whichever is first; at once when
  // none is in flight. A step-down by request waits on it (docs/ha.md). Loop thread.
  void WhenDrained(absl::Duration limit, absl::AnyInvocable<void()> then);

 private:
  struct Call;
  using CallPtr = std::shared_ptr<Call>;

  void Serve(http::Request request, http::Responder respond);
  void Dispatch(const CallPtr& c);
  void Finish(const CallPtr& c, http::Response response);
  void FinishError(const CallPtr& c, const absl::Status& status);
  void FinishJson(const CallPtr& c, int status, const Json& body);
  void FinishEmpty(const CallPtr& c, int status);
  Json Envelope(const Call& c, Json data, std::vector<std::string> warnings = {},
                Json auth = nullptr) const;
  // Answers 503 and returns false unless the node is initialised and unsealed.
  bool RequireUnsealed(const CallPtr& c);
  // RequireUnsealed, then the token: the entry, or nullopt after answering 403 (or 503/500).
  std::optional<token::TokenEntry> Authorize(const CallPtr& c);
  // Wraps a node callback so that it does nothing to a destroyed Api but answer 503.
  template <typename F>
  auto Guarded(const CallPtr& c, F f);

  // Endpoints.
  void Init(const CallPtr& c);
  void SealStatusEndpoint(const CallPtr& c);
  void Unseal(const CallPtr& c);
  void Seal(const CallPtr& c);
  void StepDown(const CallPtr& c);
  void Rotate(const CallPtr& c);
  // On an HA standby: answers a request the standby does not serve (307 to the active node,
  // 500 for sys/seal or when no active node is known) and returns true.
  bool StandbyAnswer(const CallPtr& c);
  // The standby's 307 to the active node at `leader_address`.
  void Redirect(const CallPtr& c, absl::string_view leader_address);
  // Sends the call to the active node over the cluster port and answers with its answer; a 307
  // when forwarding failed before the request was sent (Vault's fallback), a 504 when it was
  // sent and no answer came (the outcome is unknown: the client must not blindly re-send).
  void Forward(const CallPtr& c, const std::string& cluster_addr,
               const std::string& leader_address);
  void Health(const CallPtr& c);
  void Leader(const CallPtr& c);
  void Mounts(const CallPtr& c);
  void Mount(const CallPtr& c);
  void MountTune(const CallPtr& c);
  void Catalog(const CallPtr& c);
  void CatalogType(const CallPtr& c);
  void CatalogEntry(const CallPtr& c);
  void CatalogLegacy(const CallPtr& c);
  void Reload(const CallPtr& c);
  void Metrics(const CallPtr& c);
  void WrappingUnwrap(const CallPtr& c);
  // sys/leases/* (api_leases.cc).
  void LeasesRenew(const CallPtr& c);
  void LeasesRevoke(const CallPtr& c, bool prefix);
  void LeasesLookup(const CallPtr& c);
  void AuditList(const CallPtr& c);
  void AuditDevice(const CallPtr& c);
  void AuditHash(const CallPtr& c);
  // Writes the request's audit entry when a device is enabled; false (after answering 500) when
  // none could record it: the request must not run.
  bool AuditRequest(const CallPtr& c);
  // Writes the response's audit entry for an audited call; false when none could record it.
  bool AuditResponse(const CallPtr& c, const http::Response& r);
  // The caller's token entry, looked up once per call (Authorize and the audit entry share it).
  const absl::StatusOr<token::TokenEntry>& TokenEntryOf(const CallPtr& c);
  void LookupSelf(const CallPtr& c, const token::TokenEntry& entry);
  void CreateToken(const CallPtr& c);
  void Logical(const CallPtr& c);
  void LogicalReply(const CallPtr& c, const pb::Response& response);

  Json SealStatusJson() const;
  Json MountJson(const mount::MountEntry& entry) const;
  std::string NewUuid();
  void Log(LogLevel level, std::string message,
           std::vector<std::pair<std::string, std::string>> fields = {});

  Env& env_;
  node::Node& node_;
  metrics::Registry& metrics_;
  LogSink& log_;
  const ApiOptions options_;
  metrics::Family* requests_;
  metrics::Family* latency_;
  metrics::Family* in_flight_gauge_;
  // On HA nodes that are not active: requests served here, forwarded, or redirected.
  metrics::Family* ha_requests_;
  metrics::Family* readonly_resends_;
  // A performance standby's writes known to be refused locally (docs/ha.md, "Performance
  // standbys"): "<mount uuid> <operation>" for each logical write whose local attempt got the
  // read-only error; the next such write is forwarded at once, without the doomed local attempt.
  // Loop thread; cleared when it reaches kKnownWritesMax entries.
  std::set<std::string, std::less<>> known_writes_;
  static constexpr size_t kKnownWritesMax = 4096;
  // The key of known_writes_ for the call, or "" when it is not a logical write on a mount.
  std::string KnownWriteKey(const Call& c) const;
  std::string unseal_nonce_;  // The current unseal attempt's id; "" when none is under way.
  size_t in_flight_ = 0;
  // The sequence numbers of the requests in flight, and the WhenDrained waiters.
  uint64_t next_sequence_ = 0;
  std::set<uint64_t> open_;
  struct DrainWaiter {
    uint64_t before = 0;  // Waits for every request numbered below it.
    std::shared_ptr<absl::AnyInvocable<void()>> then;
  };
  std::vector<DrainWaiter> drain_waiters_;
  void RunDrainWaiters();
  bool shutting_down_ = false;
  absl::AnyInvocable<void()> drained_;
  const std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bulwark::api

#endif  // BULWARK_SERVER_API_API_H_
