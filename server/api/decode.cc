// Routing, method mapping and body decoding for the API layer.
#include "server/api/decode.h"

#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/crypto/sha256.h"
#include "base/json/json_depth.h"
#include "base/status/quote.h"

namespace bulwark::api {
namespace {

constexpr absl::string_view kHttpStatusPayload = "type.bulwark.dev/http-status";

absl::Status BadRequest(absl::string_view message) { return HttpError(400, message); }

absl::Status TypeError(absl::string_view field, absl::string_view expected) {
  return BadRequest(
      absl::StrCat("invalid type for ", QuoteForError(field), ": expected ", expected));
}

// The field's value, or null when it is absent or JSON null (Go decodes both to zero values).
const Json* Field(const Json& data, absl::string_view name) {
  auto it = data.find(std::string(name));
  return it == data.end() || it->is_null() ? nullptr : &*it;
}

absl::StatusOr<std::string> StringField(const Json& data, absl::string_view name) {
  const Json* v = Field(data, name);
  if (v == nullptr) return std::string();
  if (!v->is_string()) return TypeError(name, "a string");
  return v->get<std::string>();
}

absl::StatusOr<int64_t> IntField(const Json& data, absl::string_view name) {
  const Json* v = Field(data, name);
  if (v == nullptr) return 0;
  if (v->is_number_integer() && v->is_number_unsigned()) {
    if (v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
      return BadRequest(absl::StrCat(QuoteForError(name), " is out of range"));
    }
    return static_cast<int64_t>(v->get<uint64_t>());
  }
  if (v->is_number_integer()) {
    const int64_t n = v->get<int64_t>();
    if (n < std::numeric_limits<int32_t>::min() || n > std::numeric_limits<int32_t>::max()) {
      return BadRequest(absl::StrCat(QuoteForError(name), " is out of range"));
    }
    return n;
  }
  return TypeError(name, "an integer");
}

// Vault's framework reads booleans weakly: true/false, or a string strconv.ParseBool takes.
absl::StatusOr<bool> BoolField(const Json& data, absl::string_view name) {
  const Json* v = Field(data, name);
  if (v == nullptr) return false;
  if (v->is_boolean()) return v->get<bool>();
  if (v->is_string()) {
    if (std::optional<bool> b = ParseGoBool(v->get<std::string>())) return *b;
  }
  return TypeError(name, "a boolean");
}

absl::StatusOr<std::vector<std::string>> StringListField(const Json& data, absl::string_view name,
                                                         bool comma_string) {
  const Json* v = Field(data, name);
  std::vector<std::string> out;
  if (v == nullptr) return out;
  if (comma_string && v->is_string()) {
    for (absl::string_view part : absl::StrSplit(v->get<std::string>(), ',', absl::SkipEmpty())) {
      part = absl::StripAsciiWhitespace(part);
      if (!part.empty()) out.emplace_back(part);
    }
    return out;
  }
  if (!v->is_array()) return TypeError(name, "an array of strings");
  for (const Json& item : *v) {
    if (!item.is_string()) return TypeError(name, "an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

// "a=b&c=d" with '+' for space and %XX escapes; a malformed escape is kept as it is.
std::string FormUnescape(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && absl::ascii_isxdigit(s[i + 1]) &&
               absl::ascii_isxdigit(s[i + 2])) {
      auto nibble = [](char c) { return absl::ascii_isdigit(c) ? c - '0' : (c | 0x20) - 'a' + 10; };
      out.push_back(static_cast<char>(nibble(s[i + 1]) * 16 + nibble(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Adds key=value the way Vault turns query and form values into data: one value is a string,
// repeated keys make an array.
void AddValue(Json& data, const std::string& key, const std::string& value) {
  auto it = data.find(key);
  if (it == data.end()) {
    data[key] = value;
  } else if (it->is_array()) {
    it->push_back(value);
  } else {
    Json array = Json::array({*it, value});
    *it = std::move(array);
  }
}

absl::StatusOr<Json> DecodeJsonBody(absl::string_view body) {
  if (absl::StripAsciiWhitespace(body).empty()) return Json::object();
  if (std::optional<size_t> at = FindJsonNestingBeyond(body, kJsonDepthMax)) {
    return BadRequest(absl::StrCat("error parsing JSON: nested deeper than ", kJsonDepthMax,
                                   " levels at byte ", *at));
  }
  Json parsed;
  try {
    parsed = Json::parse(body.begin(), body.end());
  } catch (const Json::exception& e) {
    // nlohmann's text ends with "; last read: '<input>'", which would echo body bytes (perhaps
    // a secret) into the error: keep only the position and the reason.
    absl::string_view what = e.what();
    what = what.substr(0, what.find("; last read"));
    if (size_t bracket = what.find("] "); bracket != absl::string_view::npos) {
      what.remove_prefix(bracket + 2);
    }
    return BadRequest(absl::StrCat("error parsing JSON: ", what));
  }
  if (parsed.is_null()) return Json::object();
  if (!parsed.is_object()) return BadRequest("error parsing JSON: the body must be a JSON object");
  return parsed;
}

absl::StatusOr<Json> DecodeBody(const http::Request& request) {
  absl::string_view type = request.Header("content-type").value_or("");
  type = absl::StripAsciiWhitespace(type.substr(0, type.find(';')));
  const absl::string_view body = absl::StripLeadingAsciiWhitespace(request.body);
  if (absl::EqualsIgnoreCase(type, "application/x-www-form-urlencoded") && !body.empty() &&
      body[0] != '{' && body[0] != '[') {
    Json data = Json::object();
    for (absl::string_view pair : absl::StrSplit(request.body, '&', absl::SkipEmpty())) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(pair, '=');
      AddValue(data, FormUnescape(kv.first), FormUnescape(kv.second));
    }
    return data;
  }
  return DecodeJsonBody(request.body);
}

absl::Status CheckPath(absl::string_view rel) {
  for (char c : rel) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return BadRequest("invalid request path: it contains control characters");
    }
  }
  std::vector<absl::string_view> segments = absl::StrSplit(rel, '/');
  for (size_t i = 0; i < segments.size(); ++i) {
    if (segments[i].empty() && i + 1 < segments.size()) {
      return BadRequest("invalid request path: it has an empty segment");
    }
    if (segments[i] == "." || segments[i] == "..") {
      return BadRequest("invalid request path: \".\" and \"..\" segments are not allowed");
    }
  }
  return absl::OkStatus();
}

void MatchRoute(absl::string_view rel, ApiRequest& r) {
  const absl::string_view p = absl::StripSuffix(rel, "/");
  static constexpr std::pair<absl::string_view, Route> kExact[] = {
      {"sys/init", Route::kSysInit},
      {"sys/seal-status", Route::kSysSealStatus},
      {"sys/unseal", Route::kSysUnseal},
      {"sys/seal", Route::kSysSeal},
      {"sys/health", Route::kSysHealth},
      {"sys/leader", Route::kSysLeader},
      {"sys/step-down", Route::kSysStepDown},
      {"sys/rotate", Route::kSysRotate},
      {"sys/mounts", Route::kSysMounts},
      {"sys/plugins/catalog", Route::kSysCatalog},
      {"sys/plugins/reload/backend", Route::kSysPluginsReload},
      {"sys/metrics", Route::kSysMetrics},
      {"sys/wrapping/unwrap", Route::kSysWrappingUnwrap},
      {"sys/audit", Route::kSysAudit},
      {"auth/token/lookup-self", Route::kTokenLookupSelf},
      {"auth/token/create", Route::kTokenCreate},
      {"auth/token/revoke-self", Route::kTokenRevokeSelf},
  };
  for (const auto& [path, route] : kExact) {
    if (p == path) {
      r.route = route;
      return;
    }
  }
  absl::string_view rest = p;
  if (absl::ConsumePrefix(&rest, "sys/mounts/")) {
    // Vault's pattern is "mounts/(?P<path>.+?)/tune$".
    absl::string_view mount = rest;
    const bool tune = rest.size() > 5 && absl::ConsumeSuffix(&mount, "/tune");
    r.route = tune ? Route::kSysMountTune : Route::kSysMount;
    r.param = std::string(mount);
    return;
  }
  // Vault's lease endpoints take the lease id (or prefix) in the body or after the path.
  static constexpr std::pair<absl::string_view, Route> kLeases[] = {
      {"sys/leases/renew", Route::kSysLeasesRenew},
      {"sys/renew", Route::kSysLeasesRenew},
      {"sys/leases/revoke-prefix", Route::kSysLeasesRevokePrefix},
      {"sys/revoke-prefix", Route::kSysLeasesRevokePrefix},
      {"sys/leases/revoke", Route::kSysLeasesRevoke},
      {"sys/revoke", Route::kSysLeasesRevoke},
      {"sys/leases/lookup", Route::kSysLeasesLookup},
  };
  for (const auto& [path, route] : kLeases) {
    absl::string_view tail = p;
    if (!absl::ConsumePrefix(&tail, path)) continue;
    if (!tail.empty() && !absl::ConsumePrefix(&tail, "/")) continue;
    r.route = route;
    r.param = std::string(tail);
    // A prefix keeps the trailing '/' the caller gave ("database/creds/").
    if (!tail.empty() && absl::EndsWith(rel, "/")) r.param += "/";
    return;
  }
  if (absl::ConsumePrefix(&rest, "sys/audit/")) {
    r.route = Route::kSysAuditDevice;
    r.param = std::string(rest);
    return;
  }
  if (absl::ConsumePrefix(&rest, "sys/audit-hash/")) {
    r.route = Route::kSysAuditHash;
    r.param = std::string(rest);
    return;
  }
  if (absl::ConsumePrefix(&rest, "sys/plugins/catalog/")) {
    const size_t slash = rest.find('/');
    absl::StatusOr<catalog::PluginType> type = catalog::ParsePluginType(rest.substr(0, slash));
    if (!type.ok()) {
      r.route = Route::kSysCatalogLegacy;
      r.param = std::string(rest);
    } else if (slash == absl::string_view::npos) {
      r.route = Route::kSysCatalogType;
      r.plugin_type = *type;
    } else {
      r.route = Route::kSysCatalogEntry;
      r.plugin_type = *type;
      r.param = std::string(rest.substr(slash + 1));
    }
    return;
  }
  if (p == "sys" || absl::StartsWith(p, "sys/")) {
    r.route = Route::kSysUnknown;
  } else if (p == "auth/token" || absl::StartsWith(p, "auth/token/")) {
    r.route = Route::kTokenUnknown;
  } else {
    r.route = Route::kLogical;
  }
}

bool Allowed(Route route, Operation op) {
  using O = Operation;
  auto any_of = [op](std::initializer_list<O> ops) {
    for (O o : ops) {
      if (o == op) return true;
    }
    return false;
  };
  switch (route) {
    case Route::kSysInit:
      return any_of({O::kRead, O::kUpdate});
    case Route::kSysSealStatus:
    case Route::kSysLeader:
    case Route::kSysMounts:
    case Route::kSysCatalog:
    case Route::kSysMetrics:
    case Route::kSysAudit:
      return op == O::kRead;
    case Route::kSysAuditDevice:
      return any_of({O::kUpdate, O::kDelete});
    case Route::kSysAuditHash:
      return op == O::kUpdate;
    case Route::kSysUnseal:
    case Route::kSysSeal:
    case Route::kSysStepDown:
    case Route::kSysRotate:
    case Route::kSysPluginsReload:
    case Route::kSysWrappingUnwrap:
    case Route::kSysLeasesRenew:
    case Route::kSysLeasesRevoke:
    case Route::kSysLeasesRevokePrefix:
    case Route::kTokenCreate:
    case Route::kTokenRevokeSelf:
      return op == O::kUpdate;
    case Route::kSysHealth:
      return any_of({O::kRead, O::kHead});
    case Route::kSysMount:
    case Route::kSysCatalogEntry:
    case Route::kSysCatalogLegacy:
      return any_of({O::kRead, O::kUpdate, O::kDelete});
    case Route::kSysMountTune:
    case Route::kTokenLookupSelf:
      return any_of({O::kRead, O::kUpdate});
    case Route::kSysCatalogType:
      return any_of({O::kRead, O::kList});
    case Route::kSysLeasesLookup:
      return any_of({O::kUpdate, O::kList});
    case Route::kSysUnknown:
    case Route::kTokenUnknown:
    case Route::kLogical:
      return op != O::kHead;
  }
  return false;
}

std::string TokenOf(const http::Request& request) {
  if (std::optional<absl::string_view> t = request.Header("x-vault-token")) {
    return std::string(*t);
  }
  if (std::optional<absl::string_view> a = request.Header("authorization")) {
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(*a, absl::MaxSplits(' ', 1));
    if (absl::EqualsIgnoreCase(parts.first, "bearer")) {
      return std::string(absl::StripAsciiWhitespace(parts.second));
    }
  }
  return "";
}

std::optional<const Json*> FindCaseInsensitive(const Json& data, absl::string_view name) {
  for (auto it = data.begin(); it != data.end(); ++it) {
    if (absl::EqualsIgnoreCase(it.key(), name)) return &*it;
  }
  return std::nullopt;
}

}  // namespace

absl::string_view RouteName(Route route) {
  switch (route) {
    case Route::kSysInit:
      return "sys/init";
    case Route::kSysSealStatus:
      return "sys/seal-status";
    case Route::kSysUnseal:
      return "sys/unseal";
    case Route::kSysSeal:
      return "sys/seal";
    case Route::kSysHealth:
      return "sys/health";
    case Route::kSysLeader:
      return "sys/leader";
    case Route::kSysStepDown:
      return "sys/step-down";
    case Route::kSysRotate:
      return "sys/rotate";
    case Route::kSysMounts:
      return "sys/mounts";
    case Route::kSysMount:
      return "sys/mounts/:path";
    case Route::kSysMountTune:
      return "sys/mounts/:path/tune";
    case Route::kSysCatalog:
      return "sys/plugins/catalog";
    case Route::kSysCatalogType:
      return "sys/plugins/catalog/:type";
    case Route::kSysCatalogEntry:
      return "sys/plugins/catalog/:type/:name";
    case Route::kSysCatalogLegacy:
      return "sys/plugins/catalog/:name";
    case Route::kSysPluginsReload:
      return "sys/plugins/reload/backend";
    case Route::kSysMetrics:
      return "sys/metrics";
    case Route::kSysWrappingUnwrap:
      return "sys/wrapping/unwrap";
    case Route::kSysLeasesRenew:
      return "sys/leases/renew";
    case Route::kSysLeasesRevoke:
      return "sys/leases/revoke";
    case Route::kSysLeasesRevokePrefix:
      return "sys/leases/revoke-prefix";
    case Route::kSysLeasesLookup:
      return "sys/leases/lookup";
    case Route::kSysAudit:
      return "sys/audit";
    case Route::kSysAuditDevice:
      return "sys/audit/:path";
    case Route::kSysAuditHash:
      return "sys/audit-hash/:path";
    case Route::kSysUnknown:
      return "sys/unknown";
    case Route::kTokenLookupSelf:
      return "auth/token/lookup-self";
    case Route::kTokenCreate:
      return "auth/token/create";
    case Route::kTokenRevokeSelf:
      return "auth/token/revoke-self";
    case Route::kTokenUnknown:
      return "auth/token/unknown";
    case Route::kLogical:
      return "logical";
  }
  return "unknown";
}

absl::string_view OperationName(Operation op) {
  switch (op) {
    case Operation::kRead:
      return "read";
    case Operation::kList:
      return "list";
    case Operation::kUpdate:
      return "update";
    case Operation::kPatch:
      return "patch";
    case Operation::kDelete:
      return "delete";
    case Operation::kHead:
      return "head";
  }
  return "unknown";
}

absl::StatusOr<ApiRequest> DecodeRequest(const http::Request& request) {
  absl::string_view rel = request.path;
  if (!absl::ConsumePrefix(&rel, "/v1/") || rel.empty()) return HttpError(404, "");
  if (absl::Status s = CheckPath(rel); !s.ok()) return s;
  if (request.Header("x-vault-wrap-ttl").has_value()) {
    return BadRequest("response wrapping (X-Vault-Wrap-TTL) is not supported by this server");
  }
  ApiRequest r;
  const absl::string_view m = request.method;
  if (m == "GET") {
    r.operation = Operation::kRead;
  } else if (m == "HEAD") {
    r.operation = Operation::kHead;
  } else if (m == "LIST") {
    r.operation = Operation::kList;
  } else if (m == "PUT" || m == "POST") {
    r.operation = Operation::kUpdate;
  } else if (m == "PATCH") {
    r.operation = Operation::kPatch;
  } else if (m == "DELETE") {
    r.operation = Operation::kDelete;
  } else {
    return HttpError(405, absl::StrCat("unsupported method ", QuoteForError(m, 16)));
  }
  if (std::optional<absl::string_view> list = request.Query("list");
      list.has_value() && r.operation == Operation::kRead) {
    std::optional<bool> b = ParseGoBool(*list);
    if (!b.has_value()) return BadRequest("invalid value for \"list\": expected a boolean");
    if (*b) r.operation = Operation::kList;
  }
  MatchRoute(rel, r);
  if (!Allowed(r.route, r.operation)) {
    return HttpError(405, absl::StrCat("unsupported operation: ", m, " on ", RouteName(r.route)));
  }
  r.path = std::string(rel);
  if (r.operation == Operation::kList && !absl::EndsWith(r.path, "/")) r.path.push_back('/');
  r.token = TokenOf(request);
  if (r.operation == Operation::kUpdate || r.operation == Operation::kPatch) {
    if (r.operation == Operation::kPatch) {
      absl::string_view type = request.Header("content-type").value_or("");
      type = absl::StripAsciiWhitespace(type.substr(0, type.find(';')));
      if (!absl::EqualsIgnoreCase(type, "application/merge-patch+json")) {
        return HttpError(415, "PATCH requires Content-Type: application/merge-patch+json");
      }
    }
    absl::StatusOr<Json> body = DecodeBody(request);
    if (!body.ok()) return body.status();
    r.data = *std::move(body);
  } else {
    for (const auto& [key, value] : request.query) {
      if (key != "list") AddValue(r.data, key, value);
    }
  }
  return r;
}

absl::Status HttpError(int http_status, absl::string_view message) {
  absl::Status s(http_status == 404   ? absl::StatusCode::kNotFound
                 : http_status == 405 ? absl::StatusCode::kUnimplemented
                 : http_status == 503 ? absl::StatusCode::kUnavailable
                 : http_status >= 500 ? absl::StatusCode::kInternal
                                      : absl::StatusCode::kInvalidArgument,
                 message);
  s.SetPayload(kHttpStatusPayload, absl::Cord(absl::StrCat(http_status)));
  return s;
}

int HttpStatusFor(const absl::Status& status) {
  if (absl::optional<absl::Cord> p = status.GetPayload(kHttpStatusPayload)) {
    int code = 0;
    if (absl::SimpleAtoi(std::string(*p), &code)) return code;
  }
  const absl::string_view m = status.message();
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnimplemented:
      return 405;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kFailedPrecondition:
      // The node's not-serving states (core/node CheckServing, the barrier's sealed error) are
      // Vault's 503; other preconditions are the caller's (400).
      for (absl::string_view s :
           {"Vault is sealed", "node is shut down", "node is a standby", "node is still loading",
            "node is sealing", "barrier is sealed"}) {
        if (absl::StartsWith(m, s)) return 503;
      }
      return 400;
    default:
      return 500;
  }
}

std::optional<bool> ParseGoBool(absl::string_view t) {
  for (absl::string_view yes : {"1", "t", "T", "TRUE", "true", "True"}) {
    if (t == yes) return true;
  }
  for (absl::string_view no : {"0", "f", "F", "FALSE", "false", "False"}) {
    if (t == no) return false;
  }
  return std::nullopt;
}

absl::StatusOr<absl::Duration> ParseDurationSecond(const Json& value, absl::string_view field) {
  const absl::Status bad =
      BadRequest(absl::StrCat("invalid duration for ", QuoteForError(field),
                              ": expected seconds or a duration such as \"90s\" or \"1h\""));
  if (value.is_null()) return absl::ZeroDuration();
  if (value.is_number_integer()) {
    if (value.is_number_unsigned()) {
      if (value.get<uint64_t>() > (uint64_t{1} << 40)) return bad;
      return absl::Seconds(static_cast<int64_t>(value.get<uint64_t>()));
    }
    const int64_t n = value.get<int64_t>();
    if (n < -(int64_t{1} << 40) || n > (int64_t{1} << 40)) return bad;
    return absl::Seconds(n);
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (!(d > -1e12 && d < 1e12)) return bad;
    return absl::Seconds(d);
  }
  if (!value.is_string()) return bad;
  const std::string s = value.get<std::string>();
  if (s.empty()) return absl::ZeroDuration();
  int64_t n = 0;
  if (absl::SimpleAtoi(s, &n)) {
    if (n < -(int64_t{1} << 40) || n > (int64_t{1} << 40)) return bad;
    return absl::Seconds(n);
  }
  absl::string_view days = s;
  if (absl::ConsumeSuffix(&days, "d") && absl::SimpleAtoi(days, &n)) {
    if (n < -(int64_t{1} << 24) || n > (int64_t{1} << 24)) return bad;
    return absl::Hours(24 * n);
  }
  absl::Duration d;
  if (!absl::ParseDuration(s, &d) || d == absl::InfiniteDuration() ||
      d == -absl::InfiniteDuration() || absl::AbsDuration(d) > absl::Hours(int64_t{1} << 24))
    return bad;
  return d;
}

absl::StatusOr<InitBody> DecodeInit(const Json& data) {
  InitBody b;
  absl::StatusOr<int64_t> shares = IntField(data, "secret_shares");
  if (!shares.ok()) return shares.status();
  absl::StatusOr<int64_t> threshold = IntField(data, "secret_threshold");
  if (!threshold.ok()) return threshold.status();
  for (const char* unsupported : {"pgp_keys", "root_token_pgp_key"}) {
    const Json* v = Field(data, unsupported);
    if (v != nullptr && !(v->is_string() && v->get<std::string>().empty()) &&
        !(v->is_array() && v->empty())) {
      return BadRequest(absl::StrCat(unsupported, " is not supported by this server"));
    }
  }
  for (const char* recovery : {"recovery_shares", "recovery_threshold", "recovery_pgp_keys"}) {
    const Json* v = Field(data, recovery);
    if (v != nullptr && !(v->is_number() && v->get<double>() == 0) &&
        !(v->is_array() && v->empty())) {
      return BadRequest(
          "parameters recovery_shares,recovery_threshold,recovery_pgp_keys not applicable to "
          "seal type shamir");
    }
  }
  const int64_t n = *shares, t = *threshold;
  const char* reason = nullptr;
  if (n < 1) {
    reason = "shares must be at least one";
  } else if (t < 1) {
    reason = "threshold must be at least one";
  } else if (n > 1 && t == 1) {
    reason = "threshold must be greater than one for multiple shares";
  } else if (n > 255) {
    reason = "shares must be less than 256";
  } else if (t > 255) {
    reason = "threshold must be less than 256";
  } else if (t > n) {
    reason = "threshold cannot be larger than shares";
  }
  if (reason != nullptr) return BadRequest(absl::StrCat("invalid seal configuration: ", reason));
  b.secret_shares = static_cast<int>(n);
  b.secret_threshold = static_cast<int>(t);
  return b;
}

absl::StatusOr<UnsealBody> DecodeUnseal(const Json& data) {
  UnsealBody b;
  std::string key_text;
  if (std::optional<const Json*> v = FindCaseInsensitive(data, "key"); v && !(*v)->is_null()) {
    if (!(*v)->is_string()) return TypeError("key", "a string");
    key_text = (*v)->get<std::string>();
  }
  if (std::optional<const Json*> v = FindCaseInsensitive(data, "reset"); v && !(*v)->is_null()) {
    if (!(*v)->is_boolean()) return TypeError("reset", "a boolean");
    b.reset = (*v)->get<bool>();
  }
  if (std::optional<const Json*> v = FindCaseInsensitive(data, "migrate"); v && !(*v)->is_null()) {
    if (!(*v)->is_boolean()) return TypeError("migrate", "a boolean");
    if ((*v)->get<bool>()) return BadRequest("seal migration is not supported by this server");
  }
  if (b.reset) return b;
  if (key_text.empty()) {
    return BadRequest("'key' must be specified in request body as JSON, or 'reset' set to true");
  }
  // Hex first; a share is 16..33 bytes (an AES key plus Shamir's byte), else base64.
  absl::StatusOr<std::string> hex = crypto::HexDecode(key_text);
  if (hex.ok() && hex->size() >= 16 && hex->size() <= 33) {
    b.key = *std::move(hex);
    return b;
  }
  if (!absl::Base64Unescape(key_text, &b.key) || b.key.empty()) {
    return BadRequest("'key' must be a valid hex or base64 string");
  }
  return b;
}

absl::StatusOr<mount::EnableRequest> DecodeMountEnable(absl::string_view path, const Json& data) {
  mount::EnableRequest r;
  r.path = std::string(path);
  r.type = catalog::PluginType::kSecret;
  const Json* type = Field(data, "type");
  if (type == nullptr || !type->is_string() || type->get<std::string>().empty()) {
    return BadRequest("backend type must be specified as a string");
  }
  std::string plugin = type->get<std::string>();
  if (plugin == "plugin") {
    absl::StatusOr<std::string> name = StringField(data, "plugin_name");
    if (!name.ok()) return name.status();
    if (name->empty()) return BadRequest("plugin_name must be given with type \"plugin\"");
    plugin = *name;
  }
  if (plugin == "kv-v2") {
    return BadRequest("kv version 2 is not supported: the built-in kv engine is version 1");
  }
  if (plugin == "kv-v1") plugin = "kv";
  if (const Json* options = Field(data, "options")) {
    if (!options->is_object()) return TypeError("options", "an object");
    if (const Json* v = Field(*options, "version"); v != nullptr && plugin == "kv") {
      const std::string version = v->is_string() ? v->get<std::string>() : Dump(*v);
      if (version != "1" && !version.empty()) {
        return BadRequest("kv version 2 is not supported: the built-in kv engine is version 1");
      }
    }
  }
  r.plugin_name = std::move(plugin);
  absl::StatusOr<std::string> description = StringField(data, "description");
  if (!description.ok()) return description.status();
  r.description = *std::move(description);
  // Vault 1.14 reads the version only from config.plugin_version; newer clients also send it at
  // the top level. Both are accepted; config wins.
  absl::StatusOr<std::string> version = StringField(data, "plugin_version");
  if (!version.ok()) return version.status();
  r.plugin_version = *std::move(version);
  if (const Json* config = Field(data, "config")) {
    if (!config->is_object()) return TypeError("config", "an object");
    absl::StatusOr<std::string> v = StringField(*config, "plugin_version");
    if (!v.ok()) return v.status();
    if (!v->empty()) r.plugin_version = *std::move(v);
  }
  for (const char* flag : {"local", "seal_wrap", "external_entropy_access"}) {
    absl::StatusOr<bool> b = BoolField(data, flag);
    if (!b.ok()) return b.status();
  }
  return r;
}

absl::StatusOr<mount::TuneRequest> DecodeMountTune(const Json& data) {
  mount::TuneRequest r;
  if (const Json* d = Field(data, "description")) {
    if (!d->is_string()) return TypeError("description", "a string");
    r.description = d->get<std::string>();
  }
  if (const Json* v = Field(data, "plugin_version")) {
    if (!v->is_string()) return TypeError("plugin_version", "a string");
    r.plugin_version = v->get<std::string>();
  }
  for (const char* ttl : {"default_lease_ttl", "max_lease_ttl"}) {
    if (const Json* v = Field(data, ttl)) {
      if (!(v->is_string() && v->get<std::string>() == "system")) {
        absl::StatusOr<absl::Duration> d = ParseDurationSecond(*v, ttl);
        if (!d.ok()) return d.status();
      }
    }
  }
  return r;
}

absl::StatusOr<catalog::RegisterRequest> DecodePluginRegister(catalog::PluginType type,
                                                              absl::string_view name,
                                                              const Json& data) {
  catalog::RegisterRequest r;
  r.type = type;
  r.name = std::string(name);
  if (r.name.empty()) return BadRequest("missing plugin name");
  absl::StatusOr<std::string> sha = StringField(data, "sha256");
  if (!sha.ok()) return sha.status();
  if (sha->empty()) {
    sha = StringField(data, "sha_256");
    if (!sha.ok()) return sha.status();
  }
  if (sha->empty()) return BadRequest("missing SHA-256 value");
  r.sha256 = *std::move(sha);
  absl::StatusOr<std::string> command = StringField(data, "command");
  if (!command.ok()) return command.status();
  if (command->empty()) return BadRequest("missing command value");
  absl::StatusOr<std::vector<std::string>> args = StringListField(data, "args", false);
  if (!args.ok()) return args.status();
  std::vector<std::string> parts = absl::StrSplit(*command, ' ', absl::SkipEmpty());
  if (parts.empty()) return BadRequest("missing command value");
  if (parts.size() > 1 && !args->empty()) {
    return BadRequest("must not specify args in command and args field");
  }
  r.command = parts[0];
  r.args = parts.size() > 1 ? std::vector<std::string>(parts.begin() + 1, parts.end()) : *args;
  absl::StatusOr<std::vector<std::string>> env = StringListField(data, "env", false);
  if (!env.ok()) return env.status();
  r.env = *std::move(env);
  absl::StatusOr<std::string> version = StringField(data, "version");
  if (!version.ok()) return version.status();
  r.version = *std::move(version);
  // bulwark's extension (issue 17): {"limits":{"memory_bytes":N,"pids":N,"cpu_weight":N,
  // "open_files":N}}, each optional; numbers or numeric strings. Ranges are the catalog's.
  if (const auto l = data.find("limits"); l != data.end() && !l->is_null()) {
    if (!l->is_object()) return BadRequest("limits must be an object");
    for (auto it = l->begin(); it != l->end(); ++it) {
      std::optional<uint64_t>* slot = it.key() == "memory_bytes" ? &r.limits.memory_bytes
                                      : it.key() == "pids"       ? &r.limits.pids
                                      : it.key() == "cpu_weight" ? &r.limits.cpu_weight
                                      : it.key() == "open_files" ? &r.limits.open_files
                                                                 : nullptr;
      if (slot == nullptr) {
        return BadRequest(absl::StrCat("unknown limit ", QuoteForError(it.key(), 32),
                                       " (memory_bytes, pids, cpu_weight, open_files)"));
      }
      uint64_t v = 0;
      if (it->is_number_unsigned() || (it->is_number_integer() && it->get<int64_t>() >= 0)) {
        v = it->get<uint64_t>();
      } else if (!it->is_string() || !absl::SimpleAtoi(it->get<std::string>(), &v)) {
        return BadRequest(absl::StrCat("limits.", it.key(), " must be a non-negative integer"));
      }
      *slot = v;
    }
    if (absl::Status s = catalog::ValidateLimits(r.limits); !s.ok()) return BadRequest(s.message());
  }
  // bulwark's: the artifact's armored OpenSSH signature (docs/security.md).
  absl::StatusOr<std::string> signature = StringField(data, "signature");
  if (!signature.ok()) return signature.status();
  r.signature = *std::move(signature);
  return r;
}

absl::StatusOr<ReloadBody> DecodeReload(const Json& data) {
  ReloadBody b;
  absl::StatusOr<std::string> plugin = StringField(data, "plugin");
  if (!plugin.ok()) return plugin.status();
  absl::StatusOr<std::vector<std::string>> mounts = StringListField(data, "mounts", true);
  if (!mounts.ok()) return mounts.status();
  absl::StatusOr<std::string> scope = StringField(data, "scope");
  if (!scope.ok()) return scope.status();
  if (!plugin->empty() && !mounts->empty()) {
    return BadRequest("plugin and mounts cannot be set at the same time");
  }
  if (plugin->empty() && mounts->empty()) return BadRequest("plugin or mounts must be provided");
  if (!scope->empty() && *scope != "global") {
    return BadRequest("reload scope must be omitted or 'global'");
  }
  if (!plugin->empty()) b.plugin = *std::move(plugin);
  for (std::string& m : *mounts) {
    absl::string_view v = m;
    absl::ConsumePrefix(&v, "sys/");  // "sys/auth/x" names the auth mount "auth/x".
    b.mounts.emplace_back(v);
  }
  b.global = *scope == "global";
  return b;
}

absl::StatusOr<TokenCreateBody> DecodeTokenCreate(const Json& data) {
  TokenCreateBody b;
  absl::StatusOr<std::string> id = StringField(data, "id");
  if (!id.ok()) return id.status();
  b.request.id = *std::move(id);
  if (const Json* ttl = Field(data, "ttl")) {
    absl::StatusOr<absl::Duration> d = ParseDurationSecond(*ttl, "ttl");
    if (!d.ok()) return d.status();
    if (*d < absl::ZeroDuration()) return BadRequest("\"ttl\" must not be negative");
    b.request.ttl = *d;
  }
  absl::StatusOr<std::string> name = StringField(data, "display_name");
  if (!name.ok()) return name.status();
  b.request.display_name = *std::move(name);
  if (const Json* meta = Field(data, "meta")) {
    if (!meta->is_object()) return TypeError("meta", "an object of strings");
    for (auto it = meta->begin(); it != meta->end(); ++it) {
      if (!it->is_string()) return TypeError("meta", "an object of strings");
      b.request.meta[it.key()] = it->get<std::string>();
    }
  }
  // Parameters that would restrict a token: refused, because bulwark has no policies and every
  // token it issues is all-powerful; silently dropping them would hand out more than was asked.
  if (const Json* p = Field(data, "policies")) {
    bool root_only = p->is_array();
    for (const Json& item : p->is_array() ? *p : Json::array()) {
      root_only = root_only && item.is_string() && item.get<std::string>() == "root";
    }
    if (!(root_only ||
          (p->is_string() && (p->get<std::string>().empty() || p->get<std::string>() == "root")))) {
      return BadRequest(
          "policies are not supported: every token of this server is all-powerful, as a root "
          "token is");
    }
  }
  for (const char* restricting : {"num_uses", "period", "explicit_max_ttl"}) {
    if (const Json* v = Field(data, restricting);
        v != nullptr && !(v->is_number() && v->get<double>() == 0) &&
        !(v->is_string() && (v->get<std::string>().empty() || v->get<std::string>() == "0"))) {
      return BadRequest(absl::StrCat(restricting, " is not supported by this server"));
    }
  }
  if (const Json* type = Field(data, "type");
      type != nullptr && !(type->is_string() && (type->get<std::string>() == "service" ||
                                                 type->get<std::string>() == "default" ||
                                                 type->get<std::string>().empty()))) {
    return BadRequest("only service tokens are supported");
  }
  for (auto it = data.begin(); it != data.end(); ++it) {
    static constexpr absl::string_view kApplied[] = {
        "id",       "ttl",    "display_name",     "meta", "policies",
        "num_uses", "period", "explicit_max_ttl", "type"};
    bool applied = false;
    for (absl::string_view k : kApplied) applied = applied || it.key() == k;
    if (!applied) b.ignored.push_back(it.key());
  }
  return b;
}

absl::StatusOr<HealthQuery> DecodeHealthQuery(const Json& data) {
  HealthQuery q;
  auto text = [&](const char* name) -> std::optional<std::string> {
    const Json* v = Field(data, name);
    if (v == nullptr) return std::nullopt;
    const Json& first = v->is_array() && !v->empty() ? v->front() : *v;
    return first.is_string() ? first.get<std::string>() : Dump(first);
  };
  for (auto [name, out] : {std::pair<const char*, bool*>{"standbyok", &q.standby_ok},
                           {"perfstandbyok", &q.perf_standby_ok}}) {
    if (std::optional<std::string> t = text(name)) {
      std::optional<bool> b = ParseGoBool(*t);
      if (!b.has_value()) return HttpError(400, "");
      *out = *b;
    }
  }
  for (auto [name, out] : {std::pair<const char*, int*>{"activecode", &q.active_code},
                           {"standbycode", &q.standby_code},
                           {"drsecondarycode", &q.dr_secondary_code},
                           {"performancestandbycode", &q.perf_standby_code},
                           {"sealedcode", &q.sealed_code},
                           {"uninitcode", &q.uninit_code}}) {
    if (std::optional<std::string> t = text(name)) {
      int code = 0;
      // Any integer Go's strconv.Atoi takes; a status line needs three digits, so beyond
      // 100..599 is refused rather than written.
      if (!absl::SimpleAtoi(*t, &code) || code < 100 || code > 599) return HttpError(400, "");
      *out = code;
    }
  }
  return q;
}

std::string Dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::StatusOr<AuditEnableBody> DecodeAuditEnable(const Json& data) {
  AuditEnableBody b;
  const auto type = data.find("type");
  if (type == data.end() || !type->is_string() || type->get_ref<const std::string&>().empty()) {
    return BadRequest("type is required: the audit device type (\"file\")");
  }
  b.type = type->get<std::string>();
  if (const auto d = data.find("description"); d != data.end() && !d->is_null()) {
    if (!d->is_string()) return BadRequest("description must be a string");
    b.description = d->get<std::string>();
  }
  if (const auto o = data.find("options"); o != data.end() && !o->is_null()) {
    if (!o->is_object()) return BadRequest("options must be an object of strings");
    for (auto it = o->begin(); it != o->end(); ++it) {
      if (it->is_string()) {
        b.options[it.key()] = it->get<std::string>();
      } else if (it->is_number() || it->is_boolean()) {
        b.options[it.key()] = it->dump();
      } else {
        return BadRequest(
            absl::StrCat("option ", QuoteForError(it.key(), 64), " must be a string"));
      }
    }
  }
  return b;
}

}  // namespace bulwark::api
