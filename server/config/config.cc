// Parsing and validation of the server's JSON configuration.
#include "server/config/config.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/json/json_depth.h"
#include "base/status/quote.h"

namespace bulwark::config {
namespace {

using Json = nlohmann::json;

constexpr size_t kConfigDepthMax = 16;

absl::Status Error(absl::string_view path, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", problem));
}

// A key as it appears in an error: plain when it is a simple name, else quoted and escaped so
// that a hostile key cannot forge the message.
std::string QuoteKey(absl::string_view key) {
  bool plain = !key.empty() && key.size() <= 64;
  for (char c : key) {
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-');
  }
  return plain ? std::string(key) : QuoteForError(key, 64);
}

std::string Join(absl::string_view path, absl::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}

// Each key of `object` must be one of `known`; `path` names the object.
absl::Status CheckKeys(const Json& object, absl::string_view path,
                       std::initializer_list<absl::string_view> known) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    bool ok = false;
    for (absl::string_view k : known) ok = ok || it.key() == k;
    if (!ok) return Error(Join(path, QuoteKey(it.key())), "unknown key");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> String(const Json& v, absl::string_view path) {
  if (!v.is_string()) return Error(path, "expected a string");
  return v.get<std::string>();
}

// Vault reads booleans with parseutil.ParseBool: true/false or a string strconv.ParseBool takes.
absl::StatusOr<bool> Bool(const Json& v, absl::string_view path) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    for (absl::string_view t : {"1", "t", "T", "TRUE", "true", "True"}) {
      if (s == t) return true;
    }
    for (absl::string_view f : {"0", "f", "F", "FALSE", "false", "False"}) {
      if (s == f) return false;
    }
  }
  return Error(path, "expected a boolean");
}

absl::StatusOr<size_t> RequestSize(const Json& v, absl::string_view path) {
  int64_t n = 0;
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > kMaxRequestBytesMax)
      n = INT64_MAX;
    else
      n = static_cast<int64_t>(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    n = v.get<int64_t>();
  } else if (!(v.is_string() && absl::SimpleAtoi(v.get<std::string>(), &n))) {
    return Error(path, "expected an integer number of bytes");
  }
  if (n < 0) return Error(path, "must not be negative (0 means the default, 32 MiB)");
  if (static_cast<uint64_t>(n) > kMaxRequestBytesMax) {
    return Error(path, absl::StrCat("at most ", kMaxRequestBytesMax, " bytes"));
  }
  return n == 0 ? kDefaultMaxRequestBytes : static_cast<size_t>(n);
}

// A duration as Vault's parseutil reads one: "15s", "1m30s", or a whole number of seconds.
absl::StatusOr<absl::Duration> Duration(const Json& v, absl::string_view path) {
  if (v.is_number_integer()) return absl::Seconds(v.get<int64_t>());
  absl::Duration d;
  int64_t seconds = 0;
  if (v.is_string() && absl::SimpleAtoi(v.get<std::string>(), &seconds)) {
    return absl::Seconds(seconds);
  }
  if (v.is_string() && absl::ParseDuration(v.get<std::string>(), &d)) return d;
  return Error(path, "expected a duration such as \"15s\"");
}

absl::Status ParseEtcd(const Json& body, absl::string_view path, EtcdStorageConfig& out) {
  if (absl::Status s = CheckKeys(
          body, path, {"address", "path", "ha_enabled", "lock_ttl", "request_timeout", "etcd_api"});
      !s.ok()) {
    return s;
  }
  for (const auto& [key, field] : {std::pair<const char*, std::string*>{"address", &out.address},
                                   std::pair<const char*, std::string*>{"path", &out.path}}) {
    const auto it = body.find(key);
    if (it == body.end()) continue;
    absl::StatusOr<std::string> value = String(*it, Join(path, key));
    if (!value.ok()) return value.status();
    if (value->empty()) return Error(Join(path, key), "must not be empty");
    *field = *std::move(value);
  }
  if (!absl::StartsWith(out.address, "http://")) {
    return Error(Join(path, "address"),
                 "expected http://host:port (TLS to etcd is not supported yet)");
  }
  if (const auto it = body.find("etcd_api"); it != body.end()) {
    absl::StatusOr<std::string> api = String(*it, Join(path, "etcd_api"));
    if (!api.ok()) return api.status();
    if (*api != "v3") return Error(Join(path, "etcd_api"), "only \"v3\" is supported");
  }
  if (const auto it = body.find("ha_enabled"); it != body.end()) {
    absl::StatusOr<bool> ha = Bool(*it, Join(path, "ha_enabled"));
    if (!ha.ok()) return ha.status();
    out.ha_enabled = *ha;
  }
  if (const auto it = body.find("lock_ttl"); it != body.end()) {
    absl::StatusOr<absl::Duration> ttl = Duration(*it, Join(path, "lock_ttl"));
    if (!ttl.ok()) return ttl.status();
    if (*ttl < kLockTtlMin || *ttl > kLockTtlMax || *ttl != absl::Trunc(*ttl, absl::Seconds(1))) {
      return Error(Join(path, "lock_ttl"), "must be a whole number of seconds from 2s to 1h");
    }
    out.lock_ttl = *ttl;
  }
  if (const auto it = body.find("request_timeout"); it != body.end()) {
    absl::StatusOr<absl::Duration> timeout = Duration(*it, Join(path, "request_timeout"));
    if (!timeout.ok()) return timeout.status();
    if (*timeout <= absl::ZeroDuration() || *timeout > absl::Minutes(5)) {
      return Error(Join(path, "request_timeout"), "must be more than 0s and at most 5m");
    }
    out.request_timeout = *timeout;
  }
  return absl::OkStatus();
}

absl::Status ParseStorage(const Json& v, StorageConfig& out) {
  if (!v.is_object()) return Error("storage", "expected an object such as {\"file\": {...}}");
  if (v.size() != 1) {
    return Error("storage", "exactly one storage type is required: file, etcd or inmem");
  }
  const std::string type = v.begin().key();
  const Json& body = v.begin().value();
  const std::string path = Join("storage", QuoteKey(type));
  if (type != "file" && type != "inmem" && type != "etcd") {
    return Error(path, "unsupported storage type (bulwark has file, etcd and inmem)");
  }
  if (!body.is_object()) return Error(path, "expected an object");
  if (type == "etcd") {
    out.kind = StorageConfig::Kind::kEtcd;
    return ParseEtcd(body, path, out.etcd);
  }
  if (type == "inmem") {
    out.kind = StorageConfig::Kind::kInmem;
    return CheckKeys(body, path, {});
  }
  out.kind = StorageConfig::Kind::kFile;
  if (absl::Status s = CheckKeys(body, path, {"path"}); !s.ok()) return s;
  const auto it = body.find("path");
  if (it == body.end()) return Error(Join(path, "path"), "required");
  absl::StatusOr<std::string> dir = String(*it, Join(path, "path"));
  if (!dir.ok()) return dir.status();
  if (dir->empty()) return Error(Join(path, "path"), "must not be empty");
  out.path = *std::move(dir);
  return absl::OkStatus();
}

absl::Status ParseTcp(const Json& v, absl::string_view path, ListenerConfig& out,
                      std::optional<size_t>& max_request) {
  if (!v.is_object()) return Error(path, "expected an object");
  if (absl::Status s = CheckKeys(v, path,
                                 {"address", "cluster_address", "tls_cert_file", "tls_key_file",
                                  "tls_disable", "max_request_size"});
      !s.ok()) {
    return s;
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string key_path = Join(path, it.key());
    if (it.key() == "tls_disable") {
      absl::StatusOr<bool> b = Bool(*it, key_path);
      if (!b.ok()) return b.status();
      out.tls_disable = *b;
    } else if (it.key() == "max_request_size") {
      absl::StatusOr<size_t> n = RequestSize(*it, key_path);
      if (!n.ok()) return n.status();
      max_request = *n;
    } else {
      absl::StatusOr<std::string> s = String(*it, key_path);
      if (!s.ok()) return s.status();
      if (it.key() == "address") out.address = *s;
      if (it.key() == "cluster_address") out.cluster_address = *s;
      if (it.key() == "tls_cert_file") out.tls_cert_file = *s;
      if (it.key() == "tls_key_file") out.tls_key_file = *s;
    }
  }
  const size_t colon = out.address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(out.address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return Error(Join(path, "address"), "expected host:port, e.g. 127.0.0.1:8200");
  }
  if (!out.cluster_address.empty()) {
    const size_t c = out.cluster_address.rfind(':');
    if (c == std::string::npos || c == 0 ||
        !absl::SimpleAtoi(out.cluster_address.substr(c + 1), &port) || port < 0 || port > 65535) {
      return Error(Join(path, "cluster_address"), "expected host:port, e.g. 127.0.0.1:8201");
    }
  }
  if (!out.tls_disable && (out.tls_cert_file.empty() || out.tls_key_file.empty())) {
    return Error(Join(path, out.tls_cert_file.empty() ? "tls_cert_file" : "tls_key_file"),
                 "required unless tls_disable is true");
  }
  return absl::OkStatus();
}

absl::Status ParseListener(const Json& v, ListenerConfig& out, std::optional<size_t>& max_request) {
  const Json* listener = &v;
  if (v.is_array()) {
    if (v.size() != 1) return Error("listener", "exactly one listener is supported");
    listener = &v.front();
  }
  if (!listener->is_object() || listener->size() != 1) {
    return Error("listener", "expected {\"tcp\": {...}}");
  }
  const std::string type = listener->begin().key();
  if (type != "tcp") {
    return Error(Join("listener", QuoteKey(type)), "unsupported listener type (bulwark has tcp)");
  }
  return ParseTcp(listener->begin().value(), "listener.tcp", out, max_request);
}

}  // namespace

absl::StatusOr<ServerConfig> ParseConfig(absl::string_view text) {
  if (text.size() > kConfigBytesMax) {
    return Error("config", absl::StrCat("the file is larger than ", kConfigBytesMax, " bytes"));
  }
  if (FindJsonNestingBeyond(text, kConfigDepthMax).has_value()) {
    return Error("config", absl::StrCat("nested deeper than ", kConfigDepthMax, " levels"));
  }
  Json root;
  try {
    root = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    absl::string_view what = e.what();
    what = what.substr(0, what.find("; last read"));
    if (size_t b = what.find("] "); b != absl::string_view::npos) what.remove_prefix(b + 2);
    return Error("config", absl::StrCat("not valid JSON (HCL is not read: write JSON): ", what));
  }
  if (!root.is_object()) return Error("config", "expected a JSON object");
  if (absl::Status s = CheckKeys(
          root, "",
          {"storage", "listener", "plugin_directory", "api_addr", "cluster_addr", "disable_mlock",
           "disable_plugin_automtls", "log_level", "max_request_size", "ui",
           "plugin_signature_policy", "plugin_allowed_signers_file", "disable_clustering",
           "performance_standby", "performance_standby_cached_reads"});
      !s.ok()) {
    return s;
  }
  ServerConfig c;
  std::optional<size_t> top_size, listener_size;
  const auto storage = root.find("storage");
  if (storage == root.end()) return Error("storage", "required, e.g. {\"file\": {\"path\": ...}}");
  if (absl::Status s = ParseStorage(*storage, c.storage); !s.ok()) return s;
  const auto listener = root.find("listener");
  if (listener == root.end()) return Error("listener", "required, e.g. {\"tcp\": {...}}");
  if (absl::Status s = ParseListener(*listener, c.listener, listener_size); !s.ok()) return s;
  for (const char* key : {"plugin_directory", "api_addr", "cluster_addr", "log_level"}) {
    const auto it = root.find(key);
    if (it == root.end()) continue;
    absl::StatusOr<std::string> s = String(*it, key);
    if (!s.ok()) return s.status();
    if (absl::string_view(key) == "plugin_directory") {
      if (!s->empty() && (*s)[0] != '/') return Error(key, "must be an absolute path");
      while (s->size() > 1 && s->back() == '/') s->pop_back();
      c.plugin_directory = *s;
    } else if (absl::string_view(key) == "log_level") {
      std::optional<LogLevel> level = ParseLogLevel(*s);
      if (!level.has_value()) {
        return Error(key, absl::StrCat("unknown level ", QuoteForError(*s, 32),
                                       " (trace, debug, info, warn, error)"));
      }
      c.log_level = *level;
    } else {
      if (!s->empty() && !absl::StartsWith(*s, "http://") && !absl::StartsWith(*s, "https://")) {
        return Error(key, "expected a URL such as https://bulwark.example:8200");
      }
      (absl::string_view(key) == "api_addr" ? c.api_addr : c.cluster_addr) = *s;
    }
  }
  if (const auto it = root.find("disable_mlock"); it != root.end()) {
    absl::StatusOr<bool> b = Bool(*it, "disable_mlock");
    if (!b.ok()) return b.status();
    c.disable_mlock = *b;
  }
  for (const char* key :
       {"disable_clustering", "performance_standby", "performance_standby_cached_reads"}) {
    const auto it = root.find(key);
    if (it == root.end()) continue;
    absl::StatusOr<bool> b = Bool(*it, key);
    if (!b.ok()) return b.status();
    const absl::string_view k = key;
    (k == "disable_clustering"    ? c.disable_clustering
     : k == "performance_standby" ? c.performance_standby
                                  : c.performance_standby_cached_reads) = *b;
  }
  if (c.performance_standby &&
      (c.storage.kind != StorageConfig::Kind::kEtcd || !c.storage.etcd.ha_enabled ||
       c.disable_clustering || (c.cluster_addr.empty() && c.listener.cluster_address.empty()))) {
    return Error("performance_standby",
                 "needs storage \"etcd\" with ha_enabled and a cluster port (cluster_addr or "
                 "listener cluster_address, without disable_clustering)");
  }
  if (const auto it = root.find("disable_plugin_automtls"); it != root.end()) {
    absl::StatusOr<bool> b = Bool(*it, "disable_plugin_automtls");
    if (!b.ok()) return b.status();
    c.disable_plugin_automtls = *b;
  }
  if (const auto it = root.find("max_request_size"); it != root.end()) {
    absl::StatusOr<size_t> n = RequestSize(*it, "max_request_size");
    if (!n.ok()) return n.status();
    top_size = *n;
  }
  // Vault reads max_request_size in the listener; bulwark also takes it at the top level, and the
  // listener's wins.
  c.max_request_bytes = listener_size.value_or(top_size.value_or(kDefaultMaxRequestBytes));
  for (const char* key : {"plugin_signature_policy", "plugin_allowed_signers_file"}) {
    const auto it = root.find(key);
    if (it == root.end()) continue;
    absl::StatusOr<std::string> s = String(*it, key);
    if (!s.ok()) return s.status();
    if (absl::string_view(key) == "plugin_signature_policy") {
      if (*s != "off" && *s != "warn" && *s != "required") {
        return Error(
            key, absl::StrCat("unknown policy ", QuoteForError(*s, 32), " (off, warn, required)"));
      }
      c.plugin_signature_policy = *s;
    } else {
      if (s->empty() || (*s)[0] != '/') return Error(key, "must be an absolute path");
      c.plugin_allowed_signers_file = *s;
    }
  }
  if (c.plugin_signature_policy != "off" && c.plugin_allowed_signers_file.empty()) {
    return Error(
        "plugin_allowed_signers_file",
        absl::StrCat("required when plugin_signature_policy is \"", c.plugin_signature_policy,
                     "\": the allowed-signers file (ssh-keygen -Y verify's format)"));
  }
  if (const auto it = root.find("ui"); it != root.end()) {
    absl::StatusOr<bool> ui = Bool(*it, "ui");
    if (!ui.ok()) return ui.status();
    if (*ui) return Error("ui", "the web UI is not supported: remove the key or set it to false");
  }
  return c;
}

}  // namespace bulwark::config
