// The shared parts of every CLI command (see command.h).
#include "server/cli/command.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/cli/output.h"

namespace bulwark::cli {
namespace {

using nlohmann::json;

std::string Env(const Io& io, const std::string& name) {
  std::optional<std::string> value = io.getenv ? io.getenv(name) : std::nullopt;
  return value.value_or("");
}

bool Truthy(absl::string_view v) {
  return v == "1" || absl::EqualsIgnoreCase(v, "t") || absl::EqualsIgnoreCase(v, "true");
}

}  // namespace

absl::StatusOr<std::string> ResolveToken(const Io& io) {
  if (std::string token = Env(io, "VAULT_TOKEN"); !token.empty()) return token;
  const std::string home = Env(io, "HOME");
  if (home.empty()) return std::string();
  const std::string path = absl::StrCat(home, "/.vault-token");
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    if (errno == ENOENT) return std::string();
    return absl::PermissionDeniedError(
        absl::StrCat("cannot read the token file ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(contents.str()));
}

Invocation::Invocation(const Io& io, std::string usage) : io_(io), usage_(std::move(usage)) {
  address_ = Env(io, "VAULT_ADDR");
  if (address_.empty()) address_ = kDefaultAddress;
  ca_cert_ = Env(io, "VAULT_CACERT");
  ca_path_ = Env(io, "VAULT_CAPATH");
  tls_skip_verify_ = Truthy(Env(io, "VAULT_SKIP_VERIFY"));
  format_ = Env(io, "VAULT_FORMAT");
  if (format_.empty()) format_ = "table";
  flags_.String("address", &address_,
                "Address of the server (VAULT_ADDR; default https://127.0.0.1:8200).");
  flags_.String("ca-cert", &ca_cert_,
                "PEM file of CA certificates to verify the server's TLS certificate with "
                "(VAULT_CACERT).");
  flags_.String("ca-path", &ca_path_,
                "Directory of PEM CA certificates to verify the server with (VAULT_CAPATH).");
  flags_.Bool("tls-skip-verify", &tls_skip_verify_,
              "Do not verify the server's TLS certificate; unsafe (VAULT_SKIP_VERIFY).");
  flags_.String("format", &format_, "Output format: \"table\" or \"json\" (VAULT_FORMAT).");
}

std::optional<int> Invocation::Parse(const std::vector<std::string>& args) {
  absl::StatusOr<std::vector<std::string>> rest = flags_.Parse(args);
  if (!rest.ok()) return LocalError(rest.status().message());
  if (flags_.help_requested()) {
    out() << usage_ << "\n\nFlags:\n\n" << flags_.Usage();
    return kExitOk;
  }
  format_ = absl::AsciiStrToLower(format_);
  if (format_ != "table" && format_ != "json") {
    return LocalError(absl::StrCat("Invalid output format: ", format_,
                                   " (this CLI prints \"table\" or \"json\")"));
  }
  args_ = *std::move(rest);
  return std::nullopt;
}

std::optional<int> Invocation::CheckArgCount(size_t min, size_t max) {
  const size_t n = args_.size();
  if (n >= min && n <= max) return std::nullopt;
  const std::string expected = min == max        ? absl::StrCat(min)
                               : max == SIZE_MAX ? absl::StrCat("at least ", min)
                                                 : absl::StrCat(min, " or ", max);
  return LocalError(absl::StrCat(n < min ? "Not enough" : "Too many", " arguments (expected ",
                                 expected, ", got ", n, ")"));
}

const Client* Invocation::client() {
  if (client_.has_value()) return &*client_;
  absl::StatusOr<std::string> token = ResolveToken(io_);
  if (!token.ok()) {
    RemoteError("Error initializing client", token.status());
    return nullptr;
  }
  ClientOptions options;
  options.address = address_;
  options.token = *std::move(token);
  options.ca_cert = ca_cert_;
  options.ca_path = ca_path_;
  options.tls_skip_verify = tls_skip_verify_;
  options.no_proxy = Env(io_, "NO_PROXY");
  if (options.no_proxy.empty()) options.no_proxy = Env(io_, "no_proxy");
  absl::StatusOr<Client> client = Client::Create(std::move(options));
  if (!client.ok()) {
    RemoteError("Error initializing client", client.status());
    return nullptr;
  }
  client_ = *std::move(client);
  return &*client_;
}

int Invocation::RemoteError(absl::string_view context, const absl::Status& status) {
  err() << context << ": " << status.message() << "\n";
  return kExitRemoteError;
}

int Invocation::LocalError(absl::string_view message) {
  err() << message << "\n";
  return kExitLocalError;
}

void Invocation::Print(absl::string_view text) {
  if (!text.empty()) out() << text << "\n";
}

void Invocation::PrintJson(const json& value) { out() << PrettyJson(value) << "\n"; }

std::string SanitizePath(absl::string_view path) {
  path = absl::StripAsciiWhitespace(path);
  while (absl::ConsumePrefix(&path, "/")) {
  }
  while (absl::ConsumeSuffix(&path, "/")) {
  }
  return std::string(path);
}

std::string WithTrailingSlash(absl::string_view path) {
  std::string p(absl::StripAsciiWhitespace(path));
  if (!p.empty() && p.back() != '/') p += '/';
  return p;
}

std::string DurationForApi(absl::Duration d) {
  if (d == absl::ZeroDuration()) return "";
  if (d < absl::ZeroDuration()) return "system";
  return absl::FormatDuration(d);
}

int PrintSealStatus(Invocation& inv, const json& seal) {
  const bool sealed = BoolField(seal, "sealed", true);
  json leader = json::object();
  if (const Client* client = inv.client(); client != nullptr) {
    absl::StatusOr<std::optional<json>> reply = client->Call({"GET", "sys/leader", {}, {}});
    if (reply.ok() && reply->has_value() && (*reply)->is_object()) {
      leader = **reply;
    } else if (!reply.ok() && absl::StrContains(reply.status().message(), "Vault is sealed")) {
      leader["ha_enabled"] = true;  // A sealed HA node cannot say who leads.
    } else if (!reply.ok()) {
      inv.RemoteError("Error checking leader status", reply.status());
      return kExitLocalError;
    }
  } else {
    return kExitLocalError;
  }
  const bool ha = BoolField(leader, "ha_enabled");
  const bool is_self = BoolField(leader, "is_self");
  const std::string active_time = StringField(leader, "active_time");
  const bool active_time_set = !active_time.empty() && !absl::StartsWith(active_time, "0001-");

  if (inv.json_format()) {
    json out = seal;
    out["ha_enabled"] = ha;
    if (is_self) out["is_self"] = true;
    if (active_time_set) out["active_time"] = active_time;
    for (const char* key : {"leader_address", "leader_cluster_address"}) {
      if (std::string v = StringField(leader, key); !v.empty()) out[key] = v;
    }
    if (BoolField(leader, "performance_standby")) out["performance_standby"] = true;
    inv.PrintJson(out);
    return sealed ? kExitRemoteError : kExitOk;
  }

  auto field = [&](const char* key) {
    auto it = seal.find(key);
    return it == seal.end() ? std::string() : GoValue(*it);
  };
  const std::string prefix = BoolField(seal, "recovery_seal") ? "Recovery " : "";
  std::vector<std::vector<std::string>> rows = {
      {prefix + "Seal Type", field("type")},
      {"Initialized", field("initialized")},
      {"Sealed", field("sealed")},
      {"Total " + prefix + "Shares", field("n")},
      {"Threshold", field("t")},
  };
  if (sealed) {
    rows.push_back({"Unseal Progress", absl::StrCat(field("progress"), "/", field("t"))});
    rows.push_back({"Unseal Nonce", field("nonce")});
  }
  if (BoolField(seal, "migration")) rows.push_back({"Seal Migration in Progress", "true"});
  rows.push_back({"Version", field("version")});
  rows.push_back({"Build Date", field("build_date")});
  rows.push_back({"Storage Type", field("storage_type")});
  if (!field("cluster_name").empty() && !field("cluster_id").empty()) {
    rows.push_back({"Cluster Name", field("cluster_name")});
    rows.push_back({"Cluster ID", field("cluster_id")});
  }
  rows.push_back({"HA Enabled", ha ? "true" : "false"});
  if (ha && !sealed) {
    rows.push_back({"HA Cluster", StringField(leader, "leader_cluster_address")});
    rows.push_back({"HA Mode", is_self ? "active" : "standby"});
    if (is_self && active_time_set) rows.push_back({"Active Since", active_time});
    if (!is_self) {
      std::string addr = StringField(leader, "leader_address");
      rows.push_back({"Active Node Address", addr.empty() ? "<none>" : addr});
    }
  }
  if (auto w = seal.find("warnings"); w != seal.end() && w->is_array() && !w->empty()) {
    rows.push_back({"Warnings", GoValue(*w)});
  }
  inv.Print(Table({"Key", "Value"}, rows));
  return sealed ? kExitRemoteError : kExitOk;
}

}  // namespace bulwark::cli
