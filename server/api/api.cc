// Vault's endpoints over the node: state checks, tokens, JSON envelopes and status codes.
#include "server/api/api.h"

#include <algorithm>
#include <cstdint>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "base/crypto/sha256.h"
#include "base/json/json_depth.h"
#include "base/status/quote.h"
#include "core/catalog/catalog_error.h"
#include "core/ha/forwarding.h"

namespace bulwark::api {
namespace {

absl::Status ShuttingDown() { return HttpError(503, "server is shutting down"); }

bool AnsweredInHttpLayer(Route route);

// RFC 3339 in UTC, as Go prints a time.Time in JSON.
std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

http::Response ErrorBody(const absl::Status& status) {
  http::Response r;
  r.status = HttpStatusFor(status);
  Json errors = Json::array();
  if (!status.message().empty()) errors.push_back(std::string(status.message()));
  r.body = Dump(Json{{"errors", errors}}) + "\n";
  return r;
}

// Vault answers 400 for everything a catalog registration or deletion refuses, except a
// server-side problem (the plugin directory, storage, the file system), which is 500.
absl::Status CatalogStatusForHttp(const absl::Status& s) {
  std::optional<catalog::CatalogError> e = catalog::CatalogErrorOf(s);
  if (!e.has_value()) return s;
  switch (*e) {
    case catalog::CatalogError::kDirectoryNotConfigured:
    case catalog::CatalogError::kDirectoryIsSymlink:
    case catalog::CatalogError::kDirectoryInvalid:
    case catalog::CatalogError::kStorageCorrupt:
    case catalog::CatalogError::kStorageError:
    case catalog::CatalogError::kFileSystemError:
    case catalog::CatalogError::kAllowedSignersInvalid:
      return HttpError(HttpStatusFor(s) == 503 ? 503 : 500, s.message());
    default:
      return HttpError(400, s.message());
  }
}

// Mount and reload refusals reach Vault's clients as 400 whatever their code (the handler
// returns logical.ErrorResponse); the node's not-serving states stay 503, failures of the
// server itself 500.
absl::Status ClientErrorAs400(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kNotFound:
      return HttpError(400, s.message());
    default:
      return s;
  }
}

Json CatalogEntryJson(const catalog::CatalogEntryView& v) {
  Json j = {{"name", v.name},         {"command", v.command}, {"args", v.args},
            {"sha256", v.sha256_hex}, {"builtin", v.builtin}, {"version", v.version}};
  if (v.builtin) j["deprecation_status"] = "supported";
  if (!v.limits.empty()) {
    Json l = Json::object();
    if (v.limits.memory_bytes) l["memory_bytes"] = *v.limits.memory_bytes;
    if (v.limits.pids) l["pids"] = *v.limits.pids;
    if (v.limits.cpu_weight) l["cpu_weight"] = *v.limits.cpu_weight;
    if (v.limits.open_files) l["open_files"] = *v.limits.open_files;
    j["limits"] = std::move(l);
  }
  // bulwark's: who signed the artifact, for a signed entry (docs/security.md).
  if (!v.signer_fingerprint.empty()) {
    j["signer_principal"] = v.signer_principal;
    j["signer_fingerprint"] = v.signer_fingerprint;
  }
  return j;
}

}  // namespace

struct Api::Call {
  ApiRequest req;
  // Headers and query for the endpoints that read them; the body only when the API may forward.
  http::Request raw;
  http::Responder respond;
  std::string request_id;
  uint64_t sequence = 0;
  absl::Duration started;
  bool finished = false;
  // The token lookup, done at most once per call.
  std::optional<absl::StatusOr<token::TokenEntry>> token_entry;
  // Audit: the request entry was written, so the response entry is owed. The body and error of
  // the answer being finished, when known before it is serialised.
  bool audited = false;
  // HA: counted in bulwark_ha_requests_total already (forwarded, redirected), or re-sent to the
  // active node once after a read-only error on a performance standby.
  bool ha_counted = false;
  bool resent = false;
  const Json* audit_body = nullptr;
  std::string audit_error;
};

Api::Api(Env& env, node::Node& node, metrics::Registry& metrics, LogSink& log, ApiOptions options)
    : env_(env),
      node_(node),
      metrics_(metrics),
      log_(log),
      options_(std::move(options)),
      requests_(metrics.Counter("bulwark_api_requests_total",
                                "HTTP API requests answered, by endpoint and status code.")),
      latency_(metrics.Histogram("bulwark_api_request_duration_seconds",
                                 "Time from a request reaching the core to its answer.",
                                 metrics::LatencyBucketsSeconds())),
      in_flight_gauge_(metrics.Gauge("bulwark_api_requests_in_flight",
                                     "Requests the API has started and not yet answered.")),
      ha_requests_(metrics.Counter(
          "bulwark_ha_requests_total",
          "Requests a node that is not the active one received, by how they were answered: "
          "served (here), forwarded (to the active node over the cluster port), redirected "
          "(307), outcome_unknown (forwarded, no answer: 504).")),
      readonly_resends_(metrics.Counter(
          "bulwark_ha_readonly_resends_total",
          "Requests a performance standby attempted locally, got the read-only error for, and "
          "re-sent to the active node (a write of a kind already known to be refused here is "
          "forwarded at once instead).")) {}

Api::~Api() = default;

void Api::Log(LogLevel level, std::string message,
              std::vector<std::pair<std::string, std::string>> fields) {
  LogRecord r;
  r.level = level;
  r.time = env_.clock.WallNow();
  r.source = "api";
  r.message = std::move(message);
  r.fields = std::move(fields);
  log_.Write(r);
}

std::string Api::NewUuid() {
  uint8_t b[16];
  env_.random.Fill(absl::MakeSpan(b));
  b[6] = (b[6] & 0x0f) | 0x40;  // Version 4.
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant.
  const std::string hex =
      crypto::HexEncode(absl::string_view(reinterpret_cast<const char*>(b), sizeof(b)));
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                      hex.substr(16, 4), "-", hex.substr(20));
}

void Api::Handle(http::Request request, http::Responder respond) {
  std::weak_ptr<bool> alive = alive_;
  env_.executor.Post(
      [this, alive, request = std::move(request), respond = std::move(respond)]() mutable {
        if (alive.expired()) {
          std::move(respond)(ErrorBody(ShuttingDown()));
          return;
        }
        Serve(std::move(request), std::move(respond));
      });
}

void Api::BeginShutdown(absl::AnyInvocable<void()> drained) {
  shutting_down_ = true;
  if (in_flight_ == 0) {
    drained();
    return;
  }
  drained_ = std::move(drained);
}

void Api::WhenDrained(absl::Duration limit, absl::AnyInvocable<void()> then) {
  auto once = std::make_shared<absl::AnyInvocable<void()>>(std::move(then));
  drain_waiters_.push_back({next_sequence_, once});
  std::weak_ptr<bool> alive = alive_;
  env_.executor.PostAfter(limit, [this, alive, once] {
    if (alive.expired() || *once == nullptr) return;
    Log(LogLevel::kWarn, "requests still in flight after the step-down wait; going on",
        {{"in_flight", absl::StrCat(in_flight_)}});
    absl::AnyInvocable<void()> run = std::move(*once);
    *once = nullptr;
    run();
  });
  RunDrainWaiters();
}

void Api::RunDrainWaiters() {
  std::vector<std::shared_ptr<absl::AnyInvocable<void()>>> ready;
  for (auto it = drain_waiters_.begin(); it != drain_waiters_.end();) {
    if (*it->then == nullptr) {
      it = drain_waiters_.erase(it);
    } else if (open_.empty() || *open_.begin() >= it->before) {
      ready.push_back(it->then);
      it = drain_waiters_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& once : ready) {
    absl::AnyInvocable<void()> run = std::move(*once);
    *once = nullptr;
    run();
  }
}

void Api::Serve(http::Request request, http::Responder respond) {
  auto c = std::make_shared<Call>();
  c->respond = std::move(respond);
  c->started = env_.clock.MonotonicNow();
  c->request_id = NewUuid();
  c->sequence = next_sequence_++;
  open_.insert(c->sequence);
  ++in_flight_;
  in_flight_gauge_->Set({}, static_cast<double>(in_flight_));
  absl::StatusOr<ApiRequest> decoded = DecodeRequest(request);
  if (!options_.forward) request.body.clear();
  c->raw = std::move(request);
  if (!decoded.ok()) return FinishError(c, decoded.status());
  c->req = *std::move(decoded);
  if (shutting_down_) return FinishError(c, ShuttingDown());
  if (node_.audit().enabled() && !AuditRequest(c)) return;
  Dispatch(c);
}

void Api::Dispatch(const CallPtr& c) {
  if (StandbyAnswer(c)) return;
  switch (c->req.route) {
    case Route::kSysInit:
      return Init(c);
    case Route::kSysSealStatus:
      return FinishJson(c, 200, SealStatusJson());
    case Route::kSysUnseal:
      return Unseal(c);
    case Route::kSysSeal:
      return Seal(c);
    case Route::kSysHealth:
      return Health(c);
    case Route::kSysLeader:
      return Leader(c);
    case Route::kSysStepDown:
      return StepDown(c);
    case Route::kSysRotate:
      return Rotate(c);
    case Route::kSysMounts:
      return Mounts(c);
    case Route::kSysMount:
      return Mount(c);
    case Route::kSysMountTune:
      return MountTune(c);
    case Route::kSysCatalog:
      return Catalog(c);
    case Route::kSysCatalogType:
      return CatalogType(c);
    case Route::kSysCatalogEntry:
      return CatalogEntry(c);
    case Route::kSysCatalogLegacy:
      return CatalogLegacy(c);
    case Route::kSysPluginsReload:
      return Reload(c);
    case Route::kSysMetrics:
      return Metrics(c);
    case Route::kSysWrappingUnwrap:
      return WrappingUnwrap(c);
    case Route::kSysLeasesRenew:
      return LeasesRenew(c);
    case Route::kSysLeasesRevoke:
      return LeasesRevoke(c, /*prefix=*/false);
    case Route::kSysLeasesRevokePrefix:
      return LeasesRevoke(c, /*prefix=*/true);
    case Route::kSysLeasesLookup:
      return LeasesLookup(c);
    case Route::kSysAudit:
      return AuditList(c);
    case Route::kSysAuditDevice:
      return AuditDevice(c);
    case Route::kSysAuditHash:
      return AuditHash(c);
    case Route::kTokenLookupSelf:
      if (std::optional<token::TokenEntry> e = Authorize(c)) LookupSelf(c, *e);
      return;
    case Route::kTokenCreate:
      return CreateToken(c);
    case Route::kTokenRevokeSelf:
      if (Authorize(c)) {
        absl::Status revoked = node_.RevokeToken(c->req.token);
        if (!revoked.ok()) return FinishError(c, revoked);
        FinishEmpty(c, 204);
      }
      return;
    case Route::kSysUnknown:
    case Route::kTokenUnknown:
      if (Authorize(c)) FinishError(c, HttpError(404, "unsupported path"));
      return;
    case Route::kLogical:
      return Logical(c);
  }
}

// ---- Answers ----------------------------------------------------------------------------------

void Api::Finish(const CallPtr& c, http::Response r) {
  if (c->finished) return;
  if (node_.role() == node::Role::kPerfStandby && !AnsweredInHttpLayer(c->req.route) &&
      !c->ha_counted) {
    // A write failed on the read-only storage: the full original request goes to the active
    // node, transparently to the client (Vault's performance standby).
    if (r.status >= 400 && options_.forward && options_.leader && !c->resent &&
        ha::ShouldResendToActive(r.body, c->raw.Header(ha::kForwardedHeader).has_value())) {
      c->resent = true;
      readonly_resends_->Add({}, 1);
      if (std::string key = KnownWriteKey(*c); !key.empty()) {
        if (known_writes_.size() >= kKnownWritesMax) known_writes_.clear();
        known_writes_.insert(std::move(key));
      }
      absl::StatusOr<LeaderStatus> leader = options_.leader();
      if (leader.ok() && !leader->is_self && !leader->leader_cluster_address.empty()) {
        return Forward(c, leader->leader_cluster_address, leader->leader_address);
      }
    }
    ha_requests_->Add({{"served", "local"}}, 1);
    c->ha_counted = true;
  }
  if (c->audited && !AuditResponse(c, r)) {
    r = ErrorBody(HttpError(500, "audit: no audit device could record the response"));
  }
  c->finished = true;
  r.headers.emplace_back("Cache-Control", "no-store");
  if (std::optional<absl::string_view> ns = c->raw.Header("x-vault-namespace");
      ns.has_value() && !ns->empty()) {
    r.headers.emplace_back("X-Vault-Namespace", std::string(*ns));
  }
  const metrics::Labels labels = {{"route", std::string(RouteName(c->req.route))},
                                  {"code", absl::StrCat(r.status)}};
  requests_->Add(labels, 1);
  latency_->Observe({{"route", std::string(RouteName(c->req.route))}},
                    absl::ToDoubleSeconds(env_.clock.MonotonicNow() - c->started));
  std::move(c->respond)(std::move(r));
  --in_flight_;
  in_flight_gauge_->Set({}, static_cast<double>(in_flight_));
  open_.erase(c->sequence);
  if (!drain_waiters_.empty()) RunDrainWaiters();
  if (shutting_down_ && in_flight_ == 0 && drained_) {
    absl::AnyInvocable<void()> drained = std::move(drained_);
    drained_ = nullptr;
    drained();
  }
}

void Api::FinishError(const CallPtr& c, const absl::Status& status) {
  http::Response r = ErrorBody(status);
  if (c->audited) c->audit_error = std::string(status.message());
  if (r.status >= 500) {
    Log(LogLevel::kWarn, "request failed",
        {{"route", std::string(RouteName(c->req.route))},
         {"status", absl::StrCat(r.status)},
         {"error", std::string(status.message())}});
  }
  Finish(c, std::move(r));
}

void Api::FinishJson(const CallPtr& c, int status, const Json& body) {
  http::Response r;
  r.status = status;
  r.body = Dump(body) + "\n";  // Go's encoder ends with a newline.
  c->audit_body = &body;       // Valid until Finish returns.
  Finish(c, std::move(r));
  c->audit_body = nullptr;
}

void Api::FinishEmpty(const CallPtr& c, int status) {
  http::Response r;
  r.status = status;
  Finish(c, std::move(r));
}

Json Api::Envelope(const Call& c, Json data, std::vector<std::string> warnings, Json auth) const {
  return Json{{"request_id", c.request_id},
              {"lease_id", ""},
              {"renewable", false},
              {"lease_duration", 0},
              {"data", std::move(data)},
              {"wrap_info", nullptr},
              {"warnings", warnings.empty() ? Json(nullptr) : Json(warnings)},
              {"auth", std::move(auth)}};
}

template <typename F>
auto Api::Guarded(const CallPtr& c, F f) {
  return [this, alive = std::weak_ptr<bool>(alive_), c, f = std::move(f)](auto&&... args) mutable {
    if (alive.expired()) {
      if (!c->finished) {
        c->finished = true;
        std::move(c->respond)(ErrorBody(ShuttingDown()));
      }
      return;
    }
    f(std::forward<decltype(args)>(args)...);
  };
}

bool Api::RequireUnsealed(const CallPtr& c) {
  if (!node_.seal_status().initialized || node_.sealed()) {
    FinishError(c, HttpError(503, "Vault is sealed"));
    return false;
  }
  return true;
}

std::optional<token::TokenEntry> Api::Authorize(const CallPtr& c) {
  if (!RequireUnsealed(c)) return std::nullopt;
  if (c->req.token.empty()) {
    FinishError(c, HttpError(403, "permission denied"));
    return std::nullopt;
  }
  const absl::StatusOr<token::TokenEntry>& entry = TokenEntryOf(c);
  if (!entry.ok()) {
    FinishError(c, entry.status().code() == absl::StatusCode::kPermissionDenied
                       ? HttpError(403, "permission denied")
                       : entry.status());
    return std::nullopt;
  }
  return *entry;
}

const absl::StatusOr<token::TokenEntry>& Api::TokenEntryOf(const CallPtr& c) {
  if (!c->token_entry.has_value()) c->token_entry = node_.LookupToken(c->req.token);
  return *c->token_entry;
}

// ---- Seal state -------------------------------------------------------------------------------

Json Api::SealStatusJson() const {
  const SealStatus s = node_.seal_status();
  Json j = {{"type", "shamir"},
            {"initialized", s.initialized},
            {"sealed", node_.sealed()},
            {"t", s.threshold},
            {"n", s.shares},
            {"progress", s.progress},
            {"nonce", s.progress > 0 ? unseal_nonce_ : ""},
            {"version", options_.version},
            {"build_date", options_.build_date},
            {"migration", false},
            {"recovery_seal", false},
            {"storage_type", options_.storage_type}};
  if (!node_.sealed()) {
    j["cluster_name"] = options_.cluster_name;
    if (!options_.cluster_id.empty()) j["cluster_id"] = options_.cluster_id;
  }
  return j;
}

void Api::Init(const CallPtr& c) {
  if (c->req.operation == Operation::kRead) {
    return FinishJson(c, 200, Json{{"initialized", node_.seal_status().initialized}});
  }
  absl::StatusOr<InitBody> body = DecodeInit(c->req.data);
  if (!body.ok()) return FinishError(c, body.status());
  if (node_.seal_status().initialized) {
    return FinishError(c, HttpError(400, "Vault is already initialized"));
  }
  absl::StatusOr<node::InitResult> init =
      node_.InitializeWithRootToken(body->secret_shares, body->secret_threshold);
  if (!init.ok()) {
    return FinishError(c, init.status().code() == absl::StatusCode::kAlreadyExists
                              ? HttpError(400, "Vault is already initialized")
                              : init.status());
  }
  Json keys = Json::array(), keys_b64 = Json::array();
  for (const crypto::SecureBuffer& share : init->shares) {
    keys.push_back(crypto::HexEncode(share.view()));
    keys_b64.push_back(absl::Base64Escape(share.view()));
  }
  Log(LogLevel::kInfo, "initialized",
      {{"shares", absl::StrCat(body->secret_shares)},
       {"threshold", absl::StrCat(body->secret_threshold)}});
  FinishJson(c, 200,
             Json{{"keys", keys}, {"keys_base64", keys_b64}, {"root_token", init->root_token}});
}

void Api::Unseal(const CallPtr& c) {
  absl::StatusOr<UnsealBody> body = DecodeUnseal(c->req.data);
  if (!body.ok()) return FinishError(c, body.status());
  if (body->reset) {
    if (!node_.sealed()) return FinishError(c, HttpError(400, "vault is unsealed"));
    node_.ResetUnsealProgress();
    unseal_nonce_.clear();
    return FinishJson(c, 200, SealStatusJson());
  }
  if (!node_.seal_status().initialized) {
    return FinishError(c, HttpError(400, "Vault is not initialized"));
  }
  if (!node_.sealed()) return FinishJson(c, 200, SealStatusJson());
  if (node_.seal_status().progress == 0) unseal_nonce_ = NewUuid();
  node_.Unseal(body->key, Guarded(c, [this, c](absl::StatusOr<SealStatus> s) {
                 if (!s.ok()) {
                   // A share the barrier refuses (wrong length, wrong key) is the caller's: 400.
                   return FinishError(c, s.status().code() == absl::StatusCode::kInvalidArgument
                                             ? HttpError(400, s.status().message())
                                             : s.status());
                 }
                 if (!s->sealed) {
                   unseal_nonce_.clear();
                   Log(LogLevel::kInfo, "unsealed by API request");
                   if (options_.on_unsealed) options_.on_unsealed();
                 }
                 FinishJson(c, 200, SealStatusJson());
               }));
}

void Api::Seal(const CallPtr& c) {
  // Vault: sealing a sealed (or uninitialised) server is a no-op.
  if (!node_.seal_status().initialized || node_.sealed()) return FinishEmpty(c, 204);
  if (!Authorize(c)) return;
  Log(LogLevel::kInfo, "sealing by API request");
  node_.Seal(Guarded(c, [this, c]() {
    if (options_.on_sealed) options_.on_sealed();
    FinishEmpty(c, 204);
  }));
}

// Vault's sys/rotate: a new barrier key term seals every later write (root token only here:
// bulwark has no policies). On a performance standby the keyring write fails read-only and the
// request is re-sent to the active node.
void Api::Rotate(const CallPtr& c) {
  if (!Authorize(c)) return;
  absl::StatusOr<uint32_t> term = node_.RotateBarrierKey();
  if (!term.ok()) return FinishError(c, term.status());
  Log(LogLevel::kInfo, "rotated the barrier key", {{"term", absl::StrCat(*term)}});
  FinishEmpty(c, 204);
}

void Api::StepDown(const CallPtr& c) {
  if (!Authorize(c)) return;
  Log(LogLevel::kInfo, "stepping down by API request");
  if (options_.step_down) {
    // HA: 204 at once; the node gives up the lock and steps down after (Vault's order).
    FinishEmpty(c, 204);
    std::weak_ptr<bool> alive = alive_;
    env_.executor.Post([this, alive] {
      if (!alive.expired()) options_.step_down();
    });
    return;
  }
  // Without HA the node steps down (every plugin stops: the step-down termination event) and,
  // being the only node, takes the active role again at once, as a lone HA node wins the next
  // election.
  node_.StepDown(Guarded(c, [this, c]() {
    node_.BecomeActive(Guarded(c, [this, c](absl::Status s) {
      if (!s.ok()) return FinishError(c, s);
      FinishEmpty(c, 204);
    }));
  }));
}

namespace {

// Percent-encodes a decoded path or query part for a Location header ('/' kept in paths).
std::string Escape(absl::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (absl::ascii_isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
        (keep_slash && ch == '/')) {
      out.push_back(static_cast<char>(ch));
    } else {
      out.push_back('%');
      out.push_back(kHex[ch >> 4]);
      out.push_back(kHex[ch & 15]);
    }
  }
  return out;
}

// The unauthenticated endpoints Vault answers in its HTTP layer, before the core: a standby
// answers them itself (everything else goes to the active node; docs/ha.md), and they are not
// audited.
bool AnsweredInHttpLayer(Route route) {
  switch (route) {
    case Route::kSysInit:
    case Route::kSysSealStatus:
    case Route::kSysUnseal:
    case Route::kSysHealth:
    case Route::kSysLeader:
      return true;
    default:
      return false;
  }
}

}  // namespace

bool Api::StandbyAnswer(const CallPtr& c) {
  if (!options_.leader || AnsweredInHttpLayer(c->req.route)) return false;
  // Sealed or uninitialised: the endpoints' own 503 / 204 answers.
  if (!node_.seal_status().initialized || node_.sealed()) return false;
  const node::Role role = node_.role();
  if (role == node::Role::kActive) return false;
  // A performance standby serves everything locally but step-down (the active node's) and seal,
  // and a write of a kind whose local attempt got the read-only error before: that one goes to
  // the active node at once (it would only be refused here, then re-sent), exactly once.
  if (role == node::Role::kPerfStandby && c->req.route != Route::kSysStepDown &&
      c->req.route != Route::kSysSeal) {
    if (!options_.forward || c->resent || c->raw.Header(ha::kForwardedHeader).has_value()) {
      return false;
    }
    const std::string key = KnownWriteKey(*c);
    if (key.empty() || known_writes_.count(key) == 0) return false;
    absl::StatusOr<LeaderStatus> leader = options_.leader();
    if (!leader.ok() || leader->is_self || leader->leader_cluster_address.empty()) return false;
    c->resent = true;
    Forward(c, leader->leader_cluster_address, leader->leader_address);
    return true;
  }
  if (c->req.route == Route::kSysSeal) {
    FinishError(c,
                HttpError(500, "vault cannot seal when in standby mode; please restart instead"));
    return true;
  }
  absl::StatusOr<LeaderStatus> leader = options_.leader();
  if (!leader.ok()) {
    FinishError(c, leader.status());
    return true;
  }
  if (leader->is_self) return false;  // Won the lock, becoming active: the node answers.
  if (leader->leader_address.empty()) {
    FinishError(c, HttpError(500, "local node not active but active cluster node not found"));
    return true;
  }
  ha::StandbyRequest decide;
  decide.forwarding_enabled = static_cast<bool>(options_.forward);
  decide.active_cluster_addr_known = !leader->leader_cluster_address.empty();
  decide.client_asked_no_forwarding = c->raw.Header(ha::kNoForwardingHeader).has_value();
  decide.already_forwarded = c->raw.Header(ha::kForwardedHeader).has_value();
  if (ha::DecideStandby(decide) == ha::StandbyDisposition::kForward) {
    Forward(c, leader->leader_cluster_address, leader->leader_address);
  } else {
    Redirect(c, leader->leader_address);
  }
  return true;
}

std::string Api::KnownWriteKey(const Call& c) const {
  const Operation op = c.req.operation;
  if (c.req.route != Route::kLogical ||
      (op != Operation::kUpdate && op != Operation::kPatch && op != Operation::kDelete)) {
    return "";
  }
  const mount::MountTable* mounts = node_.mounts();
  if (mounts == nullptr) return "";
  std::optional<mount::Route> route = mounts->Match(c.req.path);
  if (!route.has_value() || route->entry == nullptr) return "";
  return absl::StrCat(route->entry->uuid, " ", OperationName(op));
}

void Api::Redirect(const CallPtr& c, absl::string_view leader_address) {
  ha_requests_->Add({{"served", "redirected"}}, 1);
  c->ha_counted = true;
  // Vault's respondStandby: the active node's scheme and host, this request's path and query.
  absl::string_view address = leader_address;
  std::string scheme = "https";
  if (size_t at = address.find("://"); at != absl::string_view::npos) {
    scheme = std::string(address.substr(0, at));
    address.remove_prefix(at + 3);
  }
  address = address.substr(0, address.find('/'));
  std::string location = absl::StrCat(scheme, "://", address, Escape(c->raw.path, true));
  for (size_t i = 0; i < c->raw.query.size(); ++i) {
    absl::StrAppend(&location, i == 0 ? "?" : "&", Escape(c->raw.query[i].first, false), "=",
                    Escape(c->raw.query[i].second, false));
  }
  http::Response r;
  r.status = 307;
  r.content_type = "";
  r.headers.emplace_back("Location", std::move(location));
  Finish(c, std::move(r));
}

void Api::Forward(const CallPtr& c, const std::string& cluster_addr,
                  const std::string& leader_address) {
  std::weak_ptr<bool> alive = alive_;
  options_.forward(
      cluster_addr, c->raw,
      [this, alive, c, leader_address](absl::StatusOr<http::Response> answer) mutable {
        env_.executor.Post([this, alive, c, leader_address, answer = std::move(answer)]() mutable {
          if (alive.expired()) {
            if (!c->finished) std::move(c->respond)(ErrorBody(ShuttingDown()));
            return;
          }
          if (!answer.ok()) {
            // The error names the peer, the method and the path; never a header.
            if (ha::ProvablyNotSent(answer.status())) {
              Log(LogLevel::kWarn, "request forwarding failed; redirecting the client instead",
                  {{"error", std::string(answer.status().message())}});
              if (options_.forward_failed) options_.forward_failed();
              return Redirect(c, leader_address);
            }
            // Sent, and no answer: the active node may have applied it. A redirect would make
            // the client send it again; say so instead (Vault redirects here).
            Log(LogLevel::kWarn, "forwarded request outcome unknown",
                {{"error", std::string(answer.status().message())}});
            if (options_.forward_failed) options_.forward_failed();
            ha_requests_->Add({{"served", "outcome_unknown"}}, 1);
            c->ha_counted = true;
            return FinishError(c, HttpError(504, ha::kOutcomeUnknownText));
          }
          ha_requests_->Add({{"served", "forwarded"}}, 1);
          c->ha_counted = true;
          // Finish adds this node's own.
          auto& headers = answer->headers;
          headers.erase(std::remove_if(headers.begin(), headers.end(),
                                       [](const auto& h) {
                                         return absl::EqualsIgnoreCase(h.first, "cache-control") ||
                                                absl::EqualsIgnoreCase(h.first,
                                                                       "x-vault-namespace");
                                       }),
                        headers.end());
          Finish(c, *std::move(answer));
        });
      });
}

void Api::Health(const CallPtr& c) {
  absl::StatusOr<HealthQuery> q = DecodeHealthQuery(c->req.data);
  if (!q.ok()) return FinishError(c, q.status());
  const bool initialized = node_.seal_status().initialized;
  const bool sealed = node_.sealed();
  const bool perf_standby = node_.role() == node::Role::kPerfStandby;
  const bool standby = node_.role() == node::Role::kStandby || perf_standby;
  // Vault's order: a performance standby is checked before a standby.
  const int code = !initialized   ? q->uninit_code
                   : sealed       ? q->sealed_code
                   : perf_standby ? (q->perf_standby_ok ? q->active_code : q->perf_standby_code)
                   : standby      ? (q->standby_ok ? q->active_code : q->standby_code)
                                  : q->active_code;
  Json j = {{"initialized", initialized},
            {"sealed", sealed},
            {"standby", standby},
            {"performance_standby", perf_standby},
            {"replication_performance_mode", "disabled"},
            {"replication_dr_mode", "disabled"},
            {"server_time_utc", absl::ToUnixSeconds(env_.clock.WallNow())},
            {"version", options_.version}};
  if (!sealed) {
    j["cluster_name"] = options_.cluster_name;
    if (!options_.cluster_id.empty()) j["cluster_id"] = options_.cluster_id;
  }
  if (c->req.operation == Operation::kHead) return FinishEmpty(c, code);
  FinishJson(c, code, j);
}

void Api::Leader(const CallPtr& c) {
  // No HA: Vault's ha_enabled=false answer, sealed or not. HA: 503 while sealed.
  LeaderStatus leader;
  if (options_.leader) {
    if (node_.sealed()) return FinishError(c, HttpError(503, "Vault is sealed"));
    absl::StatusOr<LeaderStatus> status = options_.leader();
    if (!status.ok()) return FinishError(c, status.status());
    leader = *std::move(status);
  }
  FinishJson(c, 200,
             Json{{"ha_enabled", options_.leader != nullptr},
                  {"is_self", leader.is_self},
                  {"active_time", leader.active_time.has_value()
                                      ? absl::FormatTime(absl::RFC3339_full, *leader.active_time,
                                                         absl::UTCTimeZone())
                                      : "0001-01-01T00:00:00Z"},
                  {"leader_address", leader.leader_address},
                  {"leader_cluster_address", leader.leader_cluster_address},
                  {"performance_standby", node_.role() == node::Role::kPerfStandby},
                  {"performance_standby_last_remote_wal", 0}});
}

// ---- Mounts -----------------------------------------------------------------------------------

Json Api::MountJson(const mount::MountEntry& e) const {
  std::string running_version = e.plugin_version, running_sha;
  if (catalog::Catalog* cat = node_.catalog()) {
    absl::StatusOr<catalog::CatalogEntryView> v = cat->Get(e.type, e.plugin_name, e.plugin_version);
    if (v.ok()) {
      running_version = v->version;
      running_sha = v->sha256_hex;
    }
  }
  return Json{
      {"type", e.plugin_name},
      {"description", e.description},
      {"accessor", e.accessor},
      {"uuid", e.uuid},
      {"local", false},
      {"seal_wrap", false},
      {"external_entropy_access", false},
      {"options", nullptr},
      {"plugin_version", e.plugin_version},
      {"running_plugin_version", running_version},
      {"running_sha256", running_sha},
      {"config", {{"default_lease_ttl", 0}, {"max_lease_ttl", 0}, {"force_no_cache", false}}}};
}

void Api::Mounts(const CallPtr& c) {
  if (!Authorize(c)) return;
  Json data = Json::object();
  // The system backend is always mounted at sys/ in Vault, and clients look for it.
  data["sys/"] = {
      {"type", "system"},
      {"description", "system endpoints used for control, policy and debugging"},
      {"accessor", "system"},
      {"uuid", ""},
      {"local", false},
      {"seal_wrap", true},
      {"external_entropy_access", false},
      {"options", nullptr},
      {"plugin_version", ""},
      {"running_plugin_version", ""},
      {"running_sha256", ""},
      {"config", {{"default_lease_ttl", 0}, {"max_lease_ttl", 0}, {"force_no_cache", false}}}};
  for (const mount::MountEntry& e : node_.ListMounts()) data[e.path] = MountJson(e);
  Json body = Envelope(*c, data);
  for (auto it = data.begin(); it != data.end(); ++it) body[it.key()] = it.value();
  FinishJson(c, 200, body);
}

void Api::Mount(const CallPtr& c) {
  if (!Authorize(c)) return;
  switch (c->req.operation) {
    case Operation::kRead: {
      absl::StatusOr<std::string> path = mount::NormalizeMountPath(c->req.param);
      if (!path.ok()) return FinishError(c, HttpError(400, path.status().message()));
      for (const mount::MountEntry& e : node_.ListMounts()) {
        if (e.path != *path) continue;
        const Json data = MountJson(e);
        Json body = Envelope(*c, data);
        for (auto it = data.begin(); it != data.end(); ++it) body[it.key()] = it.value();
        return FinishJson(c, 200, body);
      }
      return FinishError(c, HttpError(400, absl::StrCat("No secret engine mount at ", *path)));
    }
    case Operation::kUpdate: {
      absl::StatusOr<mount::EnableRequest> r = DecodeMountEnable(c->req.param, c->req.data);
      if (!r.ok()) return FinishError(c, r.status());
      node_.EnableMount(*r, Guarded(c, [this, c](absl::StatusOr<mount::MountEntry> e) {
        if (!e.ok()) return FinishError(c, ClientErrorAs400(e.status()));
        Log(LogLevel::kInfo, "mount enabled", {{"path", e->path}, {"plugin", e->plugin_name}});
        FinishEmpty(c, 204);
      }));
      return;
    }
    default:  // kDelete: 204 even when nothing is mounted there (Vault's behaviour).
      node_.DisableMount(c->req.param, Guarded(c, [this, c](absl::Status s) {
                           if (!s.ok() && s.code() != absl::StatusCode::kNotFound &&
                               s.code() != absl::StatusCode::kInvalidArgument) {
                             return FinishError(c, s);
                           }
                           FinishEmpty(c, 204);
                         }));
  }
}

void Api::MountTune(const CallPtr& c) {
  if (!Authorize(c)) return;
  if (c->req.operation == Operation::kRead) {
    absl::StatusOr<std::string> path = mount::NormalizeMountPath(c->req.param);
    if (!path.ok()) return FinishError(c, HttpError(400, path.status().message()));
    for (const mount::MountEntry& e : node_.ListMounts()) {
      if (e.path != *path) continue;
      const Json data = {{"default_lease_ttl", 0},
                         {"max_lease_ttl", 0},
                         {"force_no_cache", false},
                         {"description", e.description},
                         {"plugin_version", e.plugin_version},
                         {"options", nullptr}};
      Json body = Envelope(*c, data);
      for (auto it = data.begin(); it != data.end(); ++it) body[it.key()] = it.value();
      return FinishJson(c, 200, body);
    }
    return FinishError(c, HttpError(400, absl::StrCat("No secret engine mount at ", *path)));
  }
  absl::StatusOr<mount::TuneRequest> r = DecodeMountTune(c->req.data);
  if (!r.ok()) return FinishError(c, r.status());
  node_.TuneMount(c->req.param, *r, Guarded(c, [this, c](absl::StatusOr<mount::MountEntry> e) {
                    if (!e.ok()) return FinishError(c, ClientErrorAs400(e.status()));
                    FinishEmpty(c, 204);
                  }));
}

// ---- Plugin catalog ---------------------------------------------------------------------------

void Api::Catalog(const CallPtr& c) {
  if (!Authorize(c)) return;
  Json data = Json::object();
  Json detailed = Json::array();
  for (catalog::PluginType type : catalog::kAllPluginTypes) {
    std::vector<std::string> names;
    for (const catalog::CatalogEntryView& v : node_.catalog()->List(type)) {
      if (names.empty() || names.back() != v.name) names.push_back(v.name);
      Json d = {{"type", catalog::PluginTypeName(type)},
                {"name", v.name},
                {"version", v.version},
                {"builtin", v.builtin}};
      if (v.builtin) {
        d["deprecation_status"] = "supported";
      } else {
        d["sha256"] = v.sha256_hex;
      }
      detailed.push_back(std::move(d));
    }
    if (!names.empty()) data[std::string(catalog::PluginTypeName(type))] = names;
  }
  data["detailed"] = std::move(detailed);
  FinishJson(c, 200, Envelope(*c, data));
}

void Api::CatalogType(const CallPtr& c) {
  if (c->req.operation == Operation::kRead) {
    c->req.param = std::string(catalog::PluginTypeName(c->req.plugin_type));
    return CatalogLegacy(c);
  }
  if (!Authorize(c)) return;
  std::vector<std::string> names;
  for (const catalog::CatalogEntryView& v : node_.catalog()->List(c->req.plugin_type)) {
    if (names.empty() || names.back() != v.name) names.push_back(v.name);
  }
  if (names.empty()) return FinishError(c, HttpError(404, ""));
  FinishJson(c, 200, Envelope(*c, Json{{"keys", names}}));
}

void Api::CatalogEntry(const CallPtr& c) {
  if (!Authorize(c)) return;
  const catalog::PluginType type = c->req.plugin_type;
  std::string version;
  if (const auto it = c->req.data.find("version");
      it != c->req.data.end() && it->is_string() && c->req.operation != Operation::kUpdate) {
    version = it->get<std::string>();
  }
  switch (c->req.operation) {
    case Operation::kRead: {
      absl::StatusOr<catalog::CatalogEntryView> v =
          node_.catalog()->Get(type, c->req.param, version);
      if (v.status().code() == absl::StatusCode::kNotFound) {
        return FinishError(c, HttpError(404, ""));
      }
      if (!v.ok()) return FinishError(c, CatalogStatusForHttp(v.status()));
      return FinishJson(c, 200, Envelope(*c, CatalogEntryJson(*v)));
    }
    case Operation::kUpdate: {
      absl::StatusOr<catalog::RegisterRequest> r =
          DecodePluginRegister(type, c->req.param, c->req.data);
      if (!r.ok()) return FinishError(c, r.status());
      absl::StatusOr<catalog::CatalogEntryView> v = node_.RegisterPlugin(*r);
      if (!v.ok()) return FinishError(c, CatalogStatusForHttp(v.status()));
      Log(LogLevel::kInfo, "plugin registered",
          {{"type", std::string(catalog::PluginTypeName(type))},
           {"name", v->name},
           {"version", v->version}});
      return FinishEmpty(c, 204);
    }
    default: {
      absl::Status s = node_.DeregisterPlugin(type, c->req.param, version);
      if (!s.ok()) return FinishError(c, CatalogStatusForHttp(s));
      return FinishEmpty(c, 204);
    }
  }
}

void Api::CatalogLegacy(const CallPtr& c) {
  if (!Authorize(c)) return;
  if (c->req.operation != Operation::kRead) {
    return FinishError(c, HttpError(400,
                                    "a plugin type is required: use "
                                    "sys/plugins/catalog/<auth|database|secret>/<name>"));
  }
  FinishJson(c, 200,
             Envelope(*c, nullptr,
                      {absl::StrCat("Deprecated API endpoint, cannot read plugin information "
                                    "from catalog for ",
                                    QuoteForError(c->req.param))}));
}

void Api::Reload(const CallPtr& c) {
  if (!Authorize(c)) return;
  absl::StatusOr<ReloadBody> body = DecodeReload(c->req.data);
  if (!body.ok()) return FinishError(c, body.status());
  const bool global = body->global;
  node_.ReloadPlugins(
      body->plugin, body->mounts, Guarded(c, [this, c, global](absl::Status s) {
        if (!s.ok()) return FinishError(c, ClientErrorAs400(s));
        FinishJson(c, global ? 202 : 200, Envelope(*c, Json{{"reload_id", c->request_id}}));
      }));
}

// ---- Response wrapping --------------------------------------------------------------------------

// Vault's sys/wrapping/unwrap (handleWrappingUnwrap, ValidateWrappingToken): the wrapping token
// is X-Vault-Token when the body has no "token" (the plugin bootstrap's way); with a body
// "token", the caller's own X-Vault-Token must be a valid token (a third party unwraps for
// someone). Every token that cannot be unwrapped (malformed, forged, expired, already used,
// unknown) gets the same 400 "wrapping token is not valid or does not exist", so an answer
// tells nothing about why; the log line says why, never which token.
void Api::WrappingUnwrap(const CallPtr& c) {
  if (!RequireUnsealed(c)) return;
  std::string token;
  const auto body_token = c->req.data.find("token");
  if (body_token != c->req.data.end() && !body_token->is_null()) {
    if (!body_token->is_string() || body_token->get_ref<const std::string&>().empty()) {
      return FinishError(c, HttpError(400, "empty or non-string token in request body"));
    }
    if (!Authorize(c)) return;
    token = body_token->get<std::string>();
  } else {
    token = c->req.token;
  }
  absl::StatusOr<std::string> reply = node_.UnwrapResponse(token);
  if (!reply.ok()) {
    if (!wrapping::IsInvalidWrappingToken(reply.status())) return FinishError(c, reply.status());
    absl::string_view reason = reply.status().message();
    absl::ConsumePrefix(&reason, wrapping::kInvalidWrappingToken);
    absl::ConsumePrefix(&reason, ": ");
    Log(LogLevel::kWarn, "refused to unwrap a response-wrapping token",
        {{"reason", std::string(reason)}});
    return FinishError(c, HttpError(400, wrapping::kInvalidWrappingToken));
  }
  Log(LogLevel::kInfo, "unwrapped a response-wrapping token; it is now spent");
  // The stored envelope, as it was when wrapped (Vault re-emits it raw).
  http::Response r;
  r.body = *std::move(reply);
  r.body.push_back('\n');
  Finish(c, std::move(r));
}

// ---- Audit -------------------------------------------------------------------------------------

namespace {

audit::AuditRecord RecordOf(const ApiRequest& req, const http::Request& raw,
                            const std::string& request_id, absl::Time now,
                            const absl::StatusOr<token::TokenEntry>* entry) {
  audit::AuditRecord rec;
  rec.time = now;
  rec.request_id = request_id;
  rec.operation = std::string(OperationName(req.operation));
  rec.path = req.path;
  rec.remote_address = raw.remote_address;
  rec.data = req.data.empty() ? nullptr : &req.data;
  rec.client_token = req.token;
  if (entry != nullptr && entry->ok()) {
    rec.accessor = (*entry)->accessor;
    rec.display_name = (*entry)->display_name;
    rec.policies = (*entry)->policies;
  }
  return rec;
}

}  // namespace

bool Api::AuditRequest(const CallPtr& c) {
  if (AnsweredInHttpLayer(c->req.route)) return true;
  const absl::StatusOr<token::TokenEntry>* entry = nullptr;
  if (!c->req.token.empty() && !node_.sealed()) entry = &TokenEntryOf(c);
  const audit::AuditRecord rec =
      RecordOf(c->req, c->raw, c->request_id, env_.clock.WallNow(), entry);
  const absl::Status s = node_.audit().LogRequest(rec);
  if (!s.ok()) {
    FinishError(
        c, HttpError(500, absl::StrCat("audit: ", s.message(), "; the request was not executed")));
    return false;
  }
  c->audited = true;
  return true;
}

bool Api::AuditResponse(const CallPtr& c, const http::Response& r) {
  c->audited = false;
  const absl::StatusOr<token::TokenEntry>* entry =
      c->token_entry.has_value() ? &*c->token_entry : nullptr;
  audit::AuditRecord rec = RecordOf(c->req, c->raw, c->request_id, env_.clock.WallNow(), entry);
  rec.status_code = r.status;
  rec.error = c->audit_error;
  Json parsed;
  if (c->audit_body != nullptr) {
    rec.response = c->audit_body;
  } else if (!r.body.empty() && (r.body.front() == '{' || r.body.front() == '[') &&
             !FindJsonNestingBeyond(r.body, kJsonDepthMax).has_value()) {
    parsed = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) rec.response = &parsed;
  }
  if (rec.response == nullptr) rec.response_text = r.body;
  const absl::Status s = node_.audit().LogResponse(rec);
  if (!s.ok()) {
    Log(LogLevel::kError, "audit: the response could not be recorded; answering 500",
        {{"route", std::string(RouteName(c->req.route))}, {"error", std::string(s.message())}});
    return false;
  }
  return true;
}

void Api::AuditList(const CallPtr& c) {
  if (!Authorize(c)) return;
  Json data = Json::object();
  for (const audit::DeviceView& d : node_.audit().List()) {
    data[d.path] = {{"type", d.type},
                    {"description", d.description},
                    {"options", d.options},
                    {"local", false},
                    {"path", d.path}};
  }
  Json body = Envelope(*c, data);
  for (auto it = data.begin(); it != data.end(); ++it) body[it.key()] = it.value();
  FinishJson(c, 200, body);
}

void Api::AuditDevice(const CallPtr& c) {
  if (!Authorize(c)) return;
  if (c->req.operation == Operation::kDelete) {
    // Vault: 204 whether or not a device was there.
    const absl::Status s = node_.audit().Disable(c->req.param);
    if (!s.ok() && s.code() != absl::StatusCode::kNotFound &&
        s.code() != absl::StatusCode::kInvalidArgument) {
      return FinishError(c, s);
    }
    return FinishEmpty(c, 204);
  }
  absl::StatusOr<AuditEnableBody> body = DecodeAuditEnable(c->req.data);
  if (!body.ok()) return FinishError(c, body.status());
  const absl::Status s =
      node_.audit().Enable(c->req.param, body->type, body->description, body->options);
  if (!s.ok()) {
    switch (s.code()) {
      case absl::StatusCode::kInvalidArgument:
      case absl::StatusCode::kFailedPrecondition:
      case absl::StatusCode::kResourceExhausted:
        return FinishError(c, HttpError(400, s.message()));
      default:
        return FinishError(c, s);
    }
  }
  FinishEmpty(c, 204);
}

void Api::AuditHash(const CallPtr& c) {
  if (!Authorize(c)) return;
  const auto input = c->req.data.find("input");
  if (input == c->req.data.end() || !input->is_string()) {
    return FinishError(c, HttpError(400, "input is required and must be a string"));
  }
  absl::StatusOr<std::string> hash =
      node_.audit().Hash(c->req.param, input->get_ref<const std::string&>());
  if (!hash.ok()) {
    return FinishError(c, HttpError(400, hash.status().code() == absl::StatusCode::kNotFound
                                             ? "unknown audit backend"
                                             : hash.status().message()));
  }
  FinishJson(c, 200, Envelope(*c, Json{{"hash", *hash}}));
}

// ---- Metrics ----------------------------------------------------------------------------------

void Api::Metrics(const CallPtr& c) {
  if (!Authorize(c)) return;
  std::string format;
  if (const auto it = c->req.data.find("format"); it != c->req.data.end()) {
    const Json& v = it->is_array() && !it->empty() ? it->front() : *it;
    format = v.is_string() ? v.get<std::string>() : Dump(v);
  }
  const std::string accept(c->raw.Header("accept").value_or(""));
  const bool prometheus = format == "prometheus" ||
                          absl::StartsWith(accept, "application/openmetrics-text") ||
                          absl::StrContains(accept, "prometheus/telemetry");
  if (!prometheus && !format.empty()) {
    http::Response r;
    r.status = 400;
    r.content_type = "text/plain";
    r.body = absl::StrCat("metric response format ", QuoteForError(format), " unknown");
    return Finish(c, std::move(r));
  }
  // Per-plugin CPU and memory are sampled when read, not on a timer.
  if (lifecycle::LifecycleManager* lm = node_.lifecycle()) lm->SampleResources();
  if (prometheus) {
    http::Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_.RenderPrometheus();
    return Finish(c, std::move(r));
  }
  // go-metrics' in-memory sink shape (Vault's JSON): gauges, counters and samples by name.
  // bulwark keeps totals, not intervals, so counters carry their Sum and samples Count/Sum/Mean.
  Json gauges = Json::array(), counters = Json::array(), samples = Json::array();
  for (const metrics::SeriesSnapshot& s : metrics_.Snapshot()) {
    Json labels = Json::object();
    for (const auto& [k, v] : s.labels) labels[k] = v;
    switch (s.type) {
      case metrics::Family::Type::kGauge:
        gauges.push_back({{"Name", s.name}, {"Value", s.value}, {"Labels", labels}});
        break;
      case metrics::Family::Type::kCounter:
        counters.push_back({{"Name", s.name}, {"Sum", s.value}, {"Labels", labels}});
        break;
      case metrics::Family::Type::kHistogram:
        samples.push_back({{"Name", s.name},
                           {"Count", s.count},
                           {"Sum", s.value},
                           {"Mean", s.count > 0 ? s.value / static_cast<double>(s.count) : 0.0},
                           {"Labels", labels}});
        break;
    }
  }
  FinishJson(c, 200,
             Json{{"Timestamp", Rfc3339(env_.clock.WallNow())},
                  {"Gauges", gauges},
                  {"Points", Json::array()},
                  {"Counters", counters},
                  {"Samples", samples}});
}

// ---- Tokens -----------------------------------------------------------------------------------

void Api::LookupSelf(const CallPtr& c, const token::TokenEntry& e) {
  const absl::Time now = env_.clock.WallNow();
  const int64_t ttl = e.expire_time.has_value()
                          ? std::max<int64_t>(0, absl::ToInt64Seconds(*e.expire_time - now))
                          : 0;
  Json meta = nullptr;
  if (!e.meta.empty()) meta = e.meta;
  const Json data = {
      {"accessor", e.accessor},
      {"creation_time", absl::ToUnixSeconds(e.creation_time)},
      {"creation_ttl", absl::ToInt64Seconds(e.ttl)},
      {"display_name", e.display_name},
      {"entity_id", ""},
      {"expire_time", e.expire_time.has_value() ? Json(Rfc3339(*e.expire_time)) : Json(nullptr)},
      {"explicit_max_ttl", 0},
      {"id", c->req.token},  // The caller's own token, as Vault answers.
      {"issue_time", Rfc3339(e.creation_time)},
      {"meta", meta},
      {"num_uses", 0},
      {"orphan", e.orphan()},
      {"path", e.path},
      {"policies", e.policies},
      {"renewable", false},
      {"ttl", ttl},
      {"type", "service"}};
  FinishJson(c, 200, Envelope(*c, data));
}

void Api::CreateToken(const CallPtr& c) {
  if (!Authorize(c)) return;
  absl::StatusOr<TokenCreateBody> body = DecodeTokenCreate(c->req.data);
  if (!body.ok()) return FinishError(c, body.status());
  absl::StatusOr<token::CreatedToken> created = node_.CreateToken(c->req.token, body->request);
  if (!created.ok()) return FinishError(c, created.status());
  std::vector<std::string> warnings = created->warnings;
  if (!body->ignored.empty()) {
    std::vector<std::string> quoted;
    for (const std::string& k : body->ignored) quoted.push_back(QuoteForError(k, 64));
    warnings.push_back(absl::StrCat("Endpoint ignored these unrecognized parameters: [",
                                    absl::StrJoin(quoted, " "), "]"));
  }
  const token::TokenEntry& e = created->entry;
  Json meta = nullptr;
  if (!e.meta.empty()) meta = e.meta;
  const Json auth = {{"client_token", created->token},
                     {"accessor", e.accessor},
                     {"policies", e.policies},
                     {"token_policies", e.policies},
                     {"metadata", meta},
                     {"lease_duration", absl::ToInt64Seconds(e.ttl)},
                     {"renewable", false},
                     {"entity_id", ""},
                     {"token_type", "service"},
                     {"orphan", e.orphan()},
                     {"mfa_requirement", nullptr},
                     {"num_uses", 0}};
  FinishJson(c, 200, Envelope(*c, nullptr, std::move(warnings), auth));
}

// ---- Logical requests -------------------------------------------------------------------------

void Api::Logical(const CallPtr& c) {
  if (!Authorize(c)) return;
  std::string data = c->req.data.empty() ? std::string() : Dump(c->req.data);
  node_.Handle(c->req.path, OperationName(c->req.operation), std::move(data),
               Guarded(c, [this, c](absl::StatusOr<lifecycle::Reply> reply) {
                 if (!reply.ok()) return FinishError(c, reply.status());
                 if (!reply->has_value()) {
                   // Vault: a nil response is 404 to a read or list, 204 to anything else.
                   const Operation op = c->req.operation;
                   if (op == Operation::kRead || op == Operation::kList) {
                     return FinishError(c, HttpError(404, ""));
                   }
                   return FinishEmpty(c, 204);
                 }
                 LogicalReply(c, **reply);
               }));
}

void Api::LogicalReply(const CallPtr& c, const pb::Response& resp) {
  Json data = nullptr;
  if (!resp.data().empty()) {
    data = Json::parse(resp.data(), nullptr, /*allow_exceptions=*/false);
    if (data.is_discarded()) {
      return FinishError(c, absl::InternalError("the plugin's response data is not valid JSON"));
    }
  }
  if (!resp.redirect().empty()) {
    http::Response r;
    r.status = 307;
    r.headers.emplace_back("Location", resp.redirect());
    return Finish(c, std::move(r));
  }
  // A raw reply: the plugin chose status, content type and body itself.
  if (data.is_object() && data.contains("http_status_code") && data.contains("http_raw_body")) {
    const Json& code = data["http_status_code"];
    http::Response r;
    r.status = code.is_number_integer() ? code.get<int>() : 200;
    if (r.status < 100 || r.status > 599) r.status = 500;
    if (const auto it = data.find("http_content_type"); it != data.end() && it->is_string()) {
      r.content_type = it->get<std::string>();
    }
    const Json& raw = data["http_raw_body"];
    if (raw.is_string()) {
      // Go's []byte arrives base64-encoded; a plain string is used as it is (Vault alike).
      if (!absl::Base64Unescape(raw.get<std::string>(), &r.body)) r.body = raw.get<std::string>();
    }
    return Finish(c, std::move(r));
  }
  std::vector<std::string> warnings(resp.warnings().begin(), resp.warnings().end());
  if (c->req.operation == Operation::kList && warnings.empty()) {
    const bool has_keys = data.is_object() && data.contains("keys") && data["keys"].is_array() &&
                          !data["keys"].empty();
    if (!has_keys) return FinishError(c, HttpError(404, ""));
  }
  if (resp.has_auth()) {
    warnings.push_back("the plugin returned auth, which this server does not turn into a token");
  }
  Json body = Envelope(*c, std::move(data), std::move(warnings));
  if (resp.has_secret()) {
    // A leased secret (the database engine's credentials) carries its lease id; a plugin's
    // secret without one reports only its terms (docs/server.md).
    body["lease_id"] = resp.secret().lease_id();
    body["lease_duration"] = resp.secret().lease_options().ttl() / 1000000000;
    body["renewable"] = resp.secret().lease_options().renewable();
  }
  FinishJson(c, 200, body);
}

// ---- sys/leases (vault/logical_system.go handleRenew, handleRevoke, handleRevokePrefix,
// handleLeaseLookup, handleLeaseLookupList) ----------------------------------------------------

namespace {

// RFC 3339 in UTC with the fraction Go prints for a time.Time.
std::string Rfc3339Nanos(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

// The lease id: from the path (sys/leases/renew/<id>) or the body's "lease_id" (the legacy
// sys/renew also takes "lease_id"). "" when neither gives one.
std::string LeaseIdOf(const ApiRequest& req) {
  if (!req.param.empty()) return req.param;
  const auto it = req.data.find("lease_id");
  return it != req.data.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

void Api::LeasesRenew(const CallPtr& c) {
  if (!Authorize(c)) return;
  const std::string id = LeaseIdOf(c->req);
  if (id.empty()) return FinishError(c, HttpError(400, "lease_id must be specified"));
  absl::Duration increment = absl::ZeroDuration();
  if (const auto it = c->req.data.find("increment"); it != c->req.data.end() && !it->is_null()) {
    absl::StatusOr<absl::Duration> d = ParseDurationSecond(*it, "increment");
    if (!d.ok()) return FinishError(c, d.status());
    increment = *d;
  }
  node_.RenewLease(id, increment, Guarded(c, [this, c, id](absl::StatusOr<lease::LeaseView> v) {
                     if (!v.ok()) return FinishError(c, v.status());
                     Json body = Envelope(*c, nullptr);
                     body["lease_id"] = id;
                     body["renewable"] = v->renewable;
                     body["lease_duration"] = absl::ToInt64Seconds(v->ttl);
                     FinishJson(c, 200, body);
                   }));
}

void Api::LeasesRevoke(const CallPtr& c, bool prefix) {
  if (!Authorize(c)) return;
  const std::string id = LeaseIdOf(c->req);
  if (id.empty()) {
    return FinishError(
        c, HttpError(400, prefix ? "prefix must be specified" : "lease_id must be specified"));
  }
  auto done = Guarded(c, [this, c](absl::Status s) {
    if (!s.ok()) return FinishError(c, s);
    FinishEmpty(c, 204);
  });
  if (prefix) return node_.RevokeLeasePrefix(id, std::move(done));
  node_.RevokeLease(id, std::move(done));
}

void Api::LeasesLookup(const CallPtr& c) {
  if (!Authorize(c)) return;
  if (c->req.operation == Operation::kList) {
    // The next path segment of every lease under the prefix, as Vault's storage listing.
    std::string prefix = c->req.param;
    if (!prefix.empty() && !absl::EndsWith(prefix, "/")) prefix += "/";
    absl::StatusOr<std::vector<std::string>> ids = node_.ListLeases(prefix);
    if (!ids.ok()) return FinishError(c, ids.status());
    std::set<std::string> keys;
    for (const std::string& id : *ids) {
      const std::string rest = id.substr(prefix.size());
      const size_t slash = rest.find('/');
      keys.insert(slash == std::string::npos ? rest : rest.substr(0, slash + 1));
    }
    if (keys.empty()) return FinishError(c, HttpError(404, ""));
    return FinishJson(c, 200, Envelope(*c, Json{{"keys", keys}}));
  }
  const std::string id = LeaseIdOf(c->req);
  if (id.empty()) return FinishError(c, HttpError(400, "missing lease id"));
  absl::StatusOr<lease::LeaseView> v = node_.LookupLease(id);
  if (!v.ok()) return FinishError(c, v.status());
  Json data = {{"id", v->lease_id},
               {"issue_time", Rfc3339Nanos(v->issue_time)},
               {"expire_time", Rfc3339Nanos(v->expire_time)},
               {"last_renewal", v->last_renewal_time == absl::InfinitePast()
                                    ? Json(nullptr)
                                    : Json(Rfc3339Nanos(v->last_renewal_time))},
               {"renewable", v->renewable},
               {"ttl", absl::ToInt64Seconds(v->ttl)}};
  FinishJson(c, 200, Envelope(*c, std::move(data)));
}

}  // namespace bulwark::api
