// When an HA node serves a request itself, forwards it to the active node over the cluster port,
// or redirects the client (docs/ha.md, "Forwarding"). Pure decisions, no I/O: the server's API
// layer asks them for every request, and the simulator's cluster can ask the same ones.
#ifndef BULWARK_CORE_HA_FORWARDING_H_
#define BULWARK_CORE_HA_FORWARDING_H_

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "base/storage/storage_errors.h"

namespace bulwark::ha {

// Vault's headers: a client asks for a redirect instead of forwarding; a forwarded request is
// marked so that it is never forwarded again (the receiving node answers it, or redirects).
inline constexpr char kNoForwardingHeader[] = "x-vault-no-request-forwarding";
inline constexpr char kForwardedHeader[] = "x-vault-internal-no-request-forwarding";
// Vault's logical.ErrReadOnly, the text of base/storage's ReadOnlyError.
inline constexpr char kReadOnlyErrorText[] = "cannot write to readonly storage";

enum class StandbyDisposition {
  kServe,     // Answer here.
  kForward,   // Send the whole request to the active node over the cluster port.
  kRedirect,  // 307 to the active node's api_addr.
};

struct StandbyRequest {
  bool answered_in_http_layer = false;  // sys/health, sys/leader, sys/init, seal-status, unseal.
  bool forwarding_enabled = false;      // This node has the cluster port (not disable_clustering).
  bool active_cluster_addr_known = false;
  bool client_asked_no_forwarding = false;  // kNoForwardingHeader.
  bool already_forwarded = false;           // kForwardedHeader.
};

// What a plain standby does with a request (Vault's http/handler.go handleRequestForwarding):
// endpoints of the HTTP layer are served; a request that was forwarded once, or whose client
// asked not to be, is redirected; otherwise it is forwarded when this node can (its cluster port
// is on and the active node advertised one), else redirected.
inline StandbyDisposition DecideStandby(const StandbyRequest& r) {
  if (r.answered_in_http_layer) return StandbyDisposition::kServe;
  if (r.already_forwarded || r.client_asked_no_forwarding) return StandbyDisposition::kRedirect;
  if (r.forwarding_enabled && r.active_cluster_addr_known) return StandbyDisposition::kForward;
  return StandbyDisposition::kRedirect;
}

// A performance standby served a request locally and its answer failed with `status`: re-send
// the full original request to the active node (Vault's: a plugin's storage write got
// logical.ErrReadOnly), unless it was itself forwarded to this node (forwarded at most once).
inline bool ShouldResendToActive(const absl::Status& status, bool already_forwarded) {
  return !already_forwarded && IsReadOnly(status);
}

// The same decision on an answer's error text, as Vault's SDK matches logical.ErrReadOnly: a
// plugin's storage error reaches the node as text across the plugin protocol.
inline bool ShouldResendToActive(absl::string_view error_text, bool already_forwarded) {
  return !already_forwarded && absl::StrContains(error_text, kReadOnlyErrorText);
}

// A forwarding failure either provably never reached the active node (no connection to it could
// be made, a local bound refused it before anything was sent, no active node is known) or has an
// unknown outcome (the request was sent: the deadline passed or the stream broke before the
// answer came, and the active node may have applied it). The sender marks the first kind with
// NotSent; everything else is of unknown outcome. Only a request that was not sent may be
// answered with a redirect (the client then sends it again); one of unknown outcome is answered
// with an error that says so (Api::Forward: 504), so that a write is never applied twice behind
// the client's back.
inline constexpr char kNotSentPayload[] = "bulwark.dev/ha/forward-not-sent";
inline absl::Status NotSent(absl::Status status) {
  if (!status.ok()) status.SetPayload(kNotSentPayload, absl::Cord("1"));
  return status;
}
inline bool ProvablyNotSent(const absl::Status& status) {
  return !status.ok() && status.GetPayload(kNotSentPayload).has_value();
}

// The error text of a forwarded request whose outcome is unknown.
inline constexpr char kOutcomeUnknownText[] =
    "forwarded request outcome unknown; the active node may have applied it";

}  // namespace bulwark::ha

#endif  // BULWARK_CORE_HA_FORWARDING_H_
