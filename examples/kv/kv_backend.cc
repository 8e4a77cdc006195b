// The key/value backend: validation, then one storage call per request.
#include "examples/kv/kv_backend.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/json/fast_json.h"
#include "base/status/status_macros.h"
#include "protocol/handshake.h"

namespace bulwark::examples::kv {
namespace {

bool IsKeyChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

std::string Quote(absl::string_view text) { return protocol::QuoteForError(text); }

// The key a read, write or delete names, or an UnsupportedPath error for the mount root and
// folders (paths ending '/'), which hold no value.
absl::StatusOr<std::string> KeyOf(absl::string_view path) {
  if (path.empty()) {
    return sdk::UnsupportedPathError(
        "the mount root is not a key: read, write or delete <mount>/<key>, or list <mount>/");
  }
  if (absl::EndsWith(path, "/")) {
    return sdk::UnsupportedPathError(absl::StrCat(
        "path ", Quote(path), " names a folder, not a key: only list works on folders"));
  }
  RETURN_IF_ERROR(ValidateKey(path));
  return std::string(path);
}

}  // namespace

absl::Status ValidateKey(absl::string_view key) {
  if (key.empty()) return sdk::UserError("invalid key \"\": a key must not be empty");
  if (key.size() > kKeyBytesMax) {
    return sdk::UserError(absl::StrCat("invalid key ", Quote(key), ": it is ", key.size(),
                                       " bytes, more than the limit of ", kKeyBytesMax));
  }
  std::vector<absl::string_view> segments = absl::StrSplit(key, '/');
  if (segments.size() > kKeySegmentsMax) {
    return sdk::UserError(absl::StrCat("invalid key ", Quote(key), ": it has ", segments.size(),
                                       " segments, more than the limit of ", kKeySegmentsMax));
  }
  size_t offset = 0;
  for (absl::string_view segment : segments) {
    if (segment.empty()) {
      return sdk::UserError(absl::StrCat("invalid key ", Quote(key), ": empty segment at byte ",
                                         offset, " (no leading, trailing or double '/')"));
    }
    if (segment == "." || segment == "..") {
      return sdk::UserError(absl::StrCat("invalid key ", Quote(key), ": segment ", Quote(segment),
                                         " at byte ", offset, " is not allowed"));
    }
    for (size_t i = 0; i < segment.size(); ++i) {
      if (!IsKeyChar(segment[i])) {
        return sdk::UserError(absl::StrCat(
            "invalid key ", Quote(key), ": character ", Quote(segment.substr(i, 1)), " at byte ",
            offset + i, " is not allowed (use A-Z a-z 0-9 . _ - and '/' between segments)"));
      }
    }
    offset += segment.size() + 1;
  }
  return absl::OkStatus();
}

KvBackend::KvBackend(const sdk::BackendConfig& config)
    : storage_(config.storage), log_(config.log) {}

sdk::HandleResult KvBackend::HandleRequest(const sdk::Request& request) {
  if (request.path() == kEchoPath) return Echo(request);
  switch (request.operation()) {
    case sdk::Operation::kRead: {
      ASSIGN_OR_RETURN(std::string key, KeyOf(request.path()));
      return Read(key);
    }
    case sdk::Operation::kCreate:
    case sdk::Operation::kUpdate: {
      ASSIGN_OR_RETURN(std::string key, KeyOf(request.path()));
      return Write(key, request.data());
    }
    case sdk::Operation::kDelete: {
      ASSIGN_OR_RETURN(std::string key, KeyOf(request.path()));
      return Delete(key);
    }
    case sdk::Operation::kList:
      return List(request.path());
    default:
      return sdk::UnsupportedOperationError(
          absl::StrCat("operation ", Quote(request.operation_name()),
                       " is not supported: use create, read, update, delete or list"));
  }
}

absl::StatusOr<sdk::ExistenceCheck> KvBackend::HandleExistenceCheck(const sdk::Request& request) {
  // The echo path stores nothing, so there is nothing to check.
  if (request.path() == kEchoPath) return sdk::ExistenceCheck{false, false};
  // An invalid path cannot exist; HandleRequest reports why.
  absl::StatusOr<std::string> key = KeyOf(request.path());
  if (!key.ok()) return sdk::ExistenceCheck{true, false};
  ASSIGN_OR_RETURN(std::optional<sdk::StorageEntry> entry, storage_->Get(*key));
  return sdk::ExistenceCheck{true, entry.has_value()};
}

void KvBackend::Cleanup() { sdk::Log(log_, LogLevel::kDebug, "kv backend cleaned up"); }

sdk::HandleResult KvBackend::Read(absl::string_view key) {
  ASSIGN_OR_RETURN(std::optional<sdk::StorageEntry> entry, storage_->Get(key));
  if (!entry.has_value()) return std::optional<sdk::Response>();
  // simdjson first (nlohmann parses a byte at a time); what it declines, nlohmann reads
  // (its discarded value on bad input is not an object, reported below). The stored value came
  // from a request no deeper than the SDK's limit.
  std::optional<nlohmann::json> fast = ParseJsonFast(entry->value, sdk::kRequestDataDepthMax);
  nlohmann::json data =
      fast.has_value() ? *std::move(fast)
                       : nlohmann::json::parse(entry->value, nullptr, /*allow_exceptions=*/false);
  if (!data.is_object()) {
    return sdk::InternalError(
        absl::StrCat("the stored entry for key ", Quote(key), " is not a JSON object"));
  }
  return sdk::Response::WithData(std::move(data));
}

sdk::HandleResult KvBackend::Write(absl::string_view key, const nlohmann::json& data) {
  if (data.empty()) {
    return sdk::InvalidRequestError(
        "no data provided: write a JSON object with at least one field");
  }
  if (data.size() > kFieldsMax) {
    return sdk::InvalidRequestError(
        absl::StrCat("the data has ", data.size(), " fields, more than the limit of ", kFieldsMax));
  }
  for (const auto& [name, value] : data.items()) {
    (void)value;
    if (name.empty() || name.size() > kFieldNameBytesMax) {
      return sdk::InvalidRequestError(
          absl::StrCat("field name ", Quote(name), " must be 1 to ", kFieldNameBytesMax, " bytes"));
    }
  }
  // Byte for byte what nlohmann's dump(-1, ' ', false, replace) writes, without escaping one
  // byte at a time.
  std::string value = DumpJsonCompact(data);
  if (value.size() > kValueBytesMax) {
    return sdk::CodedError(
        413, absl::StrCat("the value is ", value.size(), " bytes of JSON, more than the limit of ",
                          kValueBytesMax));
  }
  RETURN_IF_ERROR(storage_->Put(sdk::StorageEntry{std::string(key), std::move(value), false}));
  return std::optional<sdk::Response>();
}

sdk::HandleResult KvBackend::Delete(absl::string_view key) {
  RETURN_IF_ERROR(storage_->Delete(key));
  return std::optional<sdk::Response>();
}

sdk::HandleResult KvBackend::List(absl::string_view path) {
  std::string prefix;
  if (!path.empty()) {
    absl::string_view folder = path;
    if (absl::EndsWith(folder, "/")) folder.remove_suffix(1);
    RETURN_IF_ERROR(ValidateKey(folder));
    prefix = absl::StrCat(folder, "/");
  }
  ASSIGN_OR_RETURN(std::vector<std::string> keys, storage_->List(prefix));
  nlohmann::json data = nlohmann::json::object();
  data["keys"] = keys;
  return sdk::Response::WithData(std::move(data));
}

sdk::HandleResult KvBackend::Echo(const sdk::Request& request) {
  if (request.operation() != sdk::Operation::kCreate &&
      request.operation() != sdk::Operation::kUpdate) {
    return sdk::UnsupportedOperationError(
        absl::StrCat("operation ", Quote(request.operation_name()), " is not supported on ",
                     Quote(kEchoPath), ": use create or update"));
  }
  return sdk::Response::WithData(request.data());
}

sdk::BackendFactory KvBackendFactory() {
  return [](const sdk::BackendConfig& config) -> absl::StatusOr<std::unique_ptr<sdk::Backend>> {
    return std::make_unique<KvBackend>(config);
  };
}

}  // namespace bulwark::examples::kv
