// The audit broker: the device table behind the barrier, the entry format, and fail-closed
// writing.
#include "core/audit/audit.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/crypto/hmac.h"
#include "base/crypto/sha256.h"
#include "base/status/status_macros.h"

namespace bulwark::audit {

struct AuditBroker::Device {
  DeviceView view;
  std::string salt;  // kSaltBytes raw bytes.
  std::string file_path;
  std::unique_ptr<WritableFile> file;  // Null until opened (or after a failed write).
};

namespace {

absl::Status Invalid(absl::string_view message) { return absl::InvalidArgumentError(message); }

std::string Rfc3339Nano(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

// A hashed copy of a token-like value; "" stays "" (nothing to hide, and it says "no token").
std::string HashOrEmpty(absl::string_view salt, absl::string_view value) {
  return value.empty() ? std::string() : HashString(salt, value);
}

Json HashedCopy(absl::string_view salt, const Json* value) {
  if (value == nullptr) return nullptr;
  Json copy = *value;
  HashStrings(salt, copy);
  return copy;
}

Json Entry(absl::string_view salt, bool response, const AuditRecord& r) {
  Json auth = {{"client_token", HashOrEmpty(salt, r.client_token)},
               {"accessor", HashOrEmpty(salt, r.accessor)},
               {"display_name", r.display_name},
               {"policies", r.policies},
               {"token_type", r.client_token.empty() ? "" : "service"}};
  Json data = HashedCopy(salt, r.data);
  Json request = {{"id", r.request_id},
                  {"operation", r.operation},
                  {"path", r.path},
                  {"data", std::move(data)},
                  {"remote_address", r.remote_address},
                  {"client_token", auth["client_token"]},
                  {"client_token_accessor", auth["accessor"]}};
  Json entry = {{"time", Rfc3339Nano(r.time)},
                {"type", response ? "response" : "request"},
                {"auth", std::move(auth)},
                {"request", std::move(request)},
                {"error", r.error}};
  if (response) {
    Json out = Json::object();
    out["status_code"] = r.status_code;
    if (r.response != nullptr) {
      Json body = HashedCopy(salt, r.response);
      if (body.is_object() && body.contains("data") && body.contains("request_id")) {
        // Vault's envelope: its parts, already hashed (request_id/lease_id are dropped).
        out["data"] = std::move(body["data"]);
        if (!body["auth"].is_null()) out["auth"] = std::move(body["auth"]);
        if (!body["wrap_info"].is_null()) out["wrap_info"] = std::move(body["wrap_info"]);
        if (!body["warnings"].is_null()) out["warnings"] = std::move(body["warnings"]);
      } else {
        out["data"] = std::move(body);
      }
    } else if (!r.response_text.empty()) {
      out["data"] = HashString(salt, r.response_text);
    } else {
      out["data"] = nullptr;
    }
    entry["response"] = std::move(out);
  }
  return entry;
}

}  // namespace

std::string HashString(absl::string_view salt, absl::string_view value) {
  return absl::StrCat(kHashPrefix, crypto::HexEncode(crypto::HmacSha256(salt, value)));
}

void HashStrings(absl::string_view salt, Json& value) {
  std::vector<Json*> stack = {&value};
  while (!stack.empty()) {
    Json* v = stack.back();
    stack.pop_back();
    if (v->is_string()) {
      *v = HashString(salt, v->get_ref<const std::string&>());
    } else if (v->is_structured()) {
      for (auto& child : *v) stack.push_back(&child);
    }
  }
}

absl::StatusOr<std::string> NormalizeDevicePath(absl::string_view path) {
  std::string p(path);
  while (!p.empty() && p.back() == '/') p.pop_back();
  if (p.empty()) return Invalid("audit device path is empty");
  for (char c : p) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Invalid("audit device path contains control characters");
    }
  }
  for (absl::string_view seg : absl::StrSplit(p, '/')) {
    if (seg.empty() || seg == "." || seg == "..") {
      return Invalid("audit device path has an empty, \".\" or \"..\" segment");
    }
  }
  p.push_back('/');
  return p;
}

AuditBroker::AuditBroker(Env& env, Storage& barrier, LogSink& log)
    : env_(env), barrier_(barrier), log_(log) {}

AuditBroker::~AuditBroker() { Unload(); }

void AuditBroker::Log(LogLevel level, std::string message,
                      std::vector<std::pair<std::string, std::string>> fields) {
  LogRecord r;
  r.level = level;
  r.time = env_.clock.WallNow();
  r.source = "audit";
  r.message = std::move(message);
  r.fields = std::move(fields);
  log_.Write(r);
}

absl::Status AuditBroker::Load() {
  load_error_ = LoadTable();
  return load_error_;
}

absl::Status AuditBroker::LoadTable() {
  Unload();
  ASSIGN_OR_RETURN(std::optional<std::string> text, barrier_.Get(kTableKey));
  if (!text.has_value()) return absl::OkStatus();
  const Json table = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  auto corrupt = [](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("audit table at ", kTableKey, " is corrupt: ", why));
  };
  if (!table.is_object() || !table.contains("devices") || !table["devices"].is_array()) {
    return corrupt("not an object with a devices array");
  }
  std::map<std::string, std::unique_ptr<Device>> loaded;
  for (const Json& d : table["devices"]) {
    if (!d.is_object() || !d.value("path", Json()).is_string() ||
        !d.value("type", Json()).is_string() || !d.value("salt", Json()).is_string() ||
        !d.value("options", Json()).is_object()) {
      return corrupt("a device lacks path, type, salt or options");
    }
    auto dev = std::make_unique<Device>();
    dev->view.path = d["path"].get<std::string>();
    dev->view.type = d["type"].get<std::string>();
    dev->view.description = d.value("description", "");
    for (auto it = d["options"].begin(); it != d["options"].end(); ++it) {
      if (!it->is_string()) return corrupt("an option value is not a string");
      dev->view.options[it.key()] = it->get<std::string>();
    }
    absl::StatusOr<std::string> salt = crypto::HexDecode(d["salt"].get<std::string>());
    if (!salt.ok() || salt->size() != kSaltBytes) return corrupt("a salt is malformed");
    dev->salt = *std::move(salt);
    dev->file_path = dev->view.options["file_path"];
    loaded[dev->view.path] = std::move(dev);
  }
  devices_ = std::move(loaded);
  for (auto& [path, dev] : devices_) {
    absl::StatusOr<std::unique_ptr<WritableFile>> f = env_.fs.NewAppendableFile(dev->file_path);
    if (f.ok()) {
      dev->file = *std::move(f);
    } else {
      Log(LogLevel::kError, "audit device could not open its file; requests fail until it can",
          {{"path", path}, {"error", f.status().ToString()}});
    }
  }
  return absl::OkStatus();
}

void AuditBroker::Unload() {
  for (auto& [path, dev] : devices_) {
    if (dev->file != nullptr) (void)dev->file->Close();
    std::fill(dev->salt.begin(), dev->salt.end(), '\0');
  }
  devices_.clear();
  load_error_ = absl::OkStatus();
}

absl::Status AuditBroker::Store() const {
  Json devices = Json::array();
  for (const auto& [path, dev] : devices_) {
    devices.push_back({{"path", dev->view.path},
                       {"type", dev->view.type},
                       {"description", dev->view.description},
                       {"options", dev->view.options},
                       {"salt", crypto::HexEncode(dev->salt)}});
  }
  return barrier_.Put(kTableKey, Json{{"version", 1}, {"devices", devices}}.dump());
}

absl::Status AuditBroker::Enable(absl::string_view path, absl::string_view type,
                                 absl::string_view description,
                                 const std::map<std::string, std::string>& options) {
  ASSIGN_OR_RETURN(std::string p, NormalizeDevicePath(path));
  if (devices_.count(p) > 0) return Invalid("path already in use");
  if (type != "file") {
    return Invalid(absl::StrCat("unknown audit device type \"", type.substr(0, 32),
                                "\": this server offers \"file\""));
  }
  for (const auto& [k, v] : options) {
    if (k == "log_raw") {
      return Invalid("log_raw is refused: it would write tokens and secrets in the clear");
    }
    if (k != "file_path") {
      return Invalid(absl::StrCat("unknown option \"", absl::string_view(k).substr(0, 64),
                                  "\" for a file audit device (it takes file_path)"));
    }
    if (v.size() > kOptionBytesMax) return Invalid("file_path is too long");
  }
  const auto fp = options.find("file_path");
  if (fp == options.end() || fp->second.empty()) {
    return Invalid("file_path is required for a file audit device");
  }
  if (fp->second.front() != '/') return Invalid("file_path must be an absolute path");
  if (devices_.size() >= kDevicesMax) {
    return absl::ResourceExhaustedError(
        absl::StrCat("at most ", kDevicesMax, " audit devices may be enabled"));
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> file = env_.fs.NewAppendableFile(fp->second);
  if (!file.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sanity check failed; unable to open ", fp->second, " for writing: ",
        file.status().message()));
  }
  auto dev = std::make_unique<Device>();
  dev->view = {p, std::string(type), std::string(description), options};
  dev->salt.resize(kSaltBytes);
  env_.random.Fill(absl::MakeSpan(reinterpret_cast<uint8_t*>(dev->salt.data()), kSaltBytes));
  dev->file_path = fp->second;
  dev->file = *std::move(file);
  Device* raw = dev.get();
  devices_[p] = std::move(dev);
  if (absl::Status s = Store(); !s.ok()) {
    (void)raw->file->Close();
    devices_.erase(p);
    return s;
  }
  Log(LogLevel::kInfo, "audit device enabled", {{"path", p}, {"type", std::string(type)}});
  return absl::OkStatus();
}

absl::Status AuditBroker::Disable(absl::string_view path) {
  ASSIGN_OR_RETURN(std::string p, NormalizeDevicePath(path));
  auto it = devices_.find(p);
  if (it == devices_.end()) return absl::NotFoundError(absl::StrCat("no audit device at ", p));
  std::unique_ptr<Device> dev = std::move(it->second);
  devices_.erase(it);
  if (absl::Status s = Store(); !s.ok()) {
    devices_[p] = std::move(dev);
    return s;
  }
  if (dev->file != nullptr) (void)dev->file->Close();
  Log(LogLevel::kInfo, "audit device disabled", {{"path", p}});
  return absl::OkStatus();
}

std::vector<DeviceView> AuditBroker::List() const {
  std::vector<DeviceView> out;
  for (const auto& [path, dev] : devices_) out.push_back(dev->view);
  return out;
}

absl::StatusOr<std::string> AuditBroker::Hash(absl::string_view path,
                                              absl::string_view input) const {
  ASSIGN_OR_RETURN(std::string p, NormalizeDevicePath(path));
  auto it = devices_.find(p);
  if (it == devices_.end()) return absl::NotFoundError(absl::StrCat("no audit device at ", p));
  return HashString(it->second->salt, input);
}

absl::Status AuditBroker::LogRequest(const AuditRecord& record) { return Write(false, record); }
absl::Status AuditBroker::LogResponse(const AuditRecord& record) { return Write(true, record); }

absl::Status AuditBroker::Write(bool response, const AuditRecord& record) {
  if (!load_error_.ok()) {
    return absl::InternalError(
        absl::StrCat("the audit table did not load at unseal, so nothing can be audited: ",
                     load_error_.message()));
  }
  if (devices_.empty()) return absl::OkStatus();
  bool any = false;
  std::vector<std::string> failures;
  for (auto& [path, dev] : devices_) {
    std::string line = Entry(dev->salt, response, record).dump();
    line.push_back('\n');
    absl::Status s = absl::OkStatus();
    // One retry with a fresh open: the file may have been removed or replaced (log rotation).
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (dev->file == nullptr) {
        absl::StatusOr<std::unique_ptr<WritableFile>> f =
            env_.fs.NewAppendableFile(dev->file_path);
        if (!f.ok()) {
          s = f.status();
          continue;
        }
        dev->file = *std::move(f);
      }
      s = dev->file->Append(line);
      if (s.ok()) break;
      (void)dev->file->Close();
      dev->file = nullptr;
    }
    if (s.ok()) {
      any = true;
    } else {
      failures.push_back(absl::StrCat(path, ": ", s.message()));
    }
  }
  if (!failures.empty()) {
    Log(any ? LogLevel::kWarn : LogLevel::kError, "audit device failed to write an entry",
        {{"failures", absl::StrJoin(failures, "; ")}});
  }
  if (any) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("no audit device could record the ",
                                          response ? "response" : "request", " (",
                                          absl::StrJoin(failures, "; "), ")"));
}

}  // namespace bulwark::audit
