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
#include "faultinject/failpoint.h"

namespace bulwark::audit {

struct AuditBroker::Device {
  DeviceView view;
  std::string salt;                            // kSaltBytes raw bytes.
  std::unique_ptr<crypto::HmacSha256Key> key;  // HMAC under `salt`.
  std::string file_path;
  std::unique_ptr<WritableFile> file;  // Null until opened (or after a failed write).
};

namespace {

absl::Status Invalid(absl::string_view message) { return absl::InvalidArgumentError(message); }

std::string Rfc3339Nano(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

// A hashed token-like value; "" stays "" (nothing to hide, and it says "no token").
std::string HashOrEmpty(const crypto::HmacSha256Key& salt, absl::string_view value) {
  return value.empty() ? std::string() : HashString(salt, value);
}

// Deepest nesting written member by member; a deeper subtree is written as one hashed string.
constexpr int kWriteDepthMax = 128;

// The entry is written by hand, not built as a Json and dumped: it is on the request path of
// every audited request, and a built tree costs allocations per node twice over.
class EntryWriter {
 public:
  explicit EntryWriter(const crypto::HmacSha256Key& salt) : salt_(salt) {
    out_.reserve(1024);
    out_.push_back('{');
  }

  void Field(absl::string_view k, absl::string_view v) {
    Key(k);
    Str(v);
  }
  void Literal(absl::string_view k, absl::string_view literal) {
    Key(k);
    out_.append(literal.data(), literal.size());
  }
  void Strings(absl::string_view k, const std::vector<std::string>& list) {
    Key(k);
    out_.push_back('[');
    for (size_t i = 0; i < list.size(); ++i) {
      if (i > 0) out_.push_back(',');
      Str(list[i]);
    }
    out_.push_back(']');
  }
  // `v` with every string hashed.
  void Hashed(absl::string_view k, const Json& v) {
    Key(k);
    Value(v, 0);
  }
  void Open(absl::string_view k) {
    Key(k);
    out_.push_back('{');
    first_ = true;
  }
  void Close() {
    out_.push_back('}');
    first_ = false;
  }
  std::string Finish() {
    Close();
    return std::move(out_);
  }

 private:
  // A JSON string. Bytes >= 0x7f are written as \u00XX so that the line is ASCII and valid JSON
  // whatever the input (a non-UTF-8 path stays readable, byte for byte).
  void Str(absl::string_view v) {
    static constexpr char kHex[] = "0123456789abcdef";
    out_.push_back('"');
    for (unsigned char c : v) {
      if (c == '"' || c == '\\') {
        out_.push_back('\\');
        out_.push_back(static_cast<char>(c));
      } else if (c < 0x20 || c >= 0x7f) {
        out_.append("\\u00");
        out_.push_back(kHex[c >> 4]);
        out_.push_back(kHex[c & 15]);
      } else {
        out_.push_back(static_cast<char>(c));
      }
    }
    out_.push_back('"');
  }
  void Key(absl::string_view k) {
    if (!first_) out_.push_back(',');
    first_ = false;
    Str(k);
    out_.push_back(':');
  }
  void Value(const Json& v, int depth) {
    switch (v.type()) {
      case Json::value_t::string:
        Str(HashString(salt_, v.get_ref<const std::string&>()));
        return;
      case Json::value_t::object:
      case Json::value_t::array: {
        if (depth >= kWriteDepthMax) {
          Str(HashString(salt_, v.dump(-1, ' ', false, Json::error_handler_t::replace)));
          return;
        }
        const bool object = v.is_object();
        out_.push_back(object ? '{' : '[');
        bool first = true;
        for (auto it = v.begin(); it != v.end(); ++it) {
          if (!first) out_.push_back(',');
          first = false;
          if (object) {
            Str(it.key());
            out_.push_back(':');
          }
          Value(*it, depth + 1);
        }
        out_.push_back(object ? '}' : ']');
        return;
      }
      default:  // Numbers, booleans, null: nothing to hide.
        out_.append(v.dump());
        return;
    }
  }

  const crypto::HmacSha256Key& salt_;
  std::string out_;
  bool first_ = true;
};

// `clear_data` is the planted bug "bug.audit.data_in_clear" (testonly builds only): request data
// written as it came, the leak the secret scan exists to catch.
std::string Entry(const crypto::HmacSha256Key& salt, bool response, const AuditRecord& r,
                  bool clear_data) {
  const std::string token = HashOrEmpty(salt, r.client_token);
  const std::string accessor = HashOrEmpty(salt, r.accessor);
  EntryWriter w(salt);
  w.Field("time", Rfc3339Nano(r.time));
  w.Field("type", response ? "response" : "request");
  w.Open("auth");
  w.Field("client_token", token);
  w.Field("accessor", accessor);
  w.Field("display_name", r.display_name);
  w.Strings("policies", r.policies);  // Policy names are not secret (Vault alike).
  w.Field("token_type", r.client_token.empty() ? "" : "service");
  w.Close();
  w.Open("request");
  w.Field("id", r.request_id);
  w.Field("operation", r.operation);
  w.Field("path", r.path);
  if (r.data != nullptr && clear_data) {
    w.Literal("data", r.data->dump(-1, ' ', false, Json::error_handler_t::replace));
  } else if (r.data != nullptr) {
    w.Hashed("data", *r.data);
  } else {
    w.Literal("data", "null");
  }
  w.Field("remote_address", r.remote_address);
  w.Field("client_token", token);
  w.Field("client_token_accessor", accessor);
  w.Close();
  w.Field("error", r.error);
  if (response) {
    w.Open("response");
    w.Literal("status_code", absl::StrCat(r.status_code));
    const Json* body = r.response;
    if (body != nullptr && body->is_object() && body->contains("data") &&
        body->contains("request_id")) {
      // Vault's envelope: its parts, hashed (request_id and lease_id are left out).
      w.Hashed("data", (*body)["data"]);
      for (const char* part : {"auth", "wrap_info", "warnings"}) {
        const auto it = body->find(part);
        if (it != body->end() && !it->is_null()) w.Hashed(part, *it);
      }
    } else if (body != nullptr) {
      w.Hashed("data", *body);
    } else if (!r.response_text.empty()) {
      w.Field("data", HashString(salt, r.response_text));
    } else {
      w.Literal("data", "null");
    }
    w.Close();
  }
  return w.Finish();
}

}  // namespace

std::string HashString(const crypto::HmacSha256Key& salt, absl::string_view value) {
  return absl::StrCat(kHashPrefix, crypto::HexEncode(salt.Sign(value)));
}

std::string HashString(absl::string_view salt, absl::string_view value) {
  return HashString(crypto::HmacSha256Key(salt), value);
}

void HashStrings(absl::string_view salt, Json& value) {
  HashStrings(crypto::HmacSha256Key(salt), value);
}

void HashStrings(const crypto::HmacSha256Key& salt, Json& value) {
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
    dev->key = std::make_unique<crypto::HmacSha256Key>(dev->salt);
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
    return absl::FailedPreconditionError(absl::StrCat("sanity check failed; unable to open ",
                                                      fp->second,
                                                      " for writing: ", file.status().message()));
  }
  auto dev = std::make_unique<Device>();
  dev->view = {p, std::string(type), std::string(description), options};
  dev->salt.resize(kSaltBytes);
  env_.random.Fill(absl::MakeSpan(reinterpret_cast<uint8_t*>(dev->salt.data()), kSaltBytes));
  dev->key = std::make_unique<crypto::HmacSha256Key>(dev->salt);
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
  return HashString(*it->second->key, input);
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
  const bool clear_data =
      static_cast<bool>(BW_PLANTED_BUG_IN(env_.failpoints, "bug.audit.data_in_clear"));
  for (auto& [path, dev] : devices_) {
    std::string line = Entry(*dev->key, response, record, clear_data);
    line.push_back('\n');
    absl::Status s = absl::OkStatus();
    // One retry with a fresh open: the file may have been removed or replaced (log rotation).
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (dev->file == nullptr) {
        absl::StatusOr<std::unique_ptr<WritableFile>> f = env_.fs.NewAppendableFile(dev->file_path);
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
