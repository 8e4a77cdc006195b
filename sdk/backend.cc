// Vault's logical model in C++: operation names, error types carried as status payloads, and
// the conversions between pb.Request / pb.Response and the author-facing types.
#include "sdk/backend.h"

#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/json/fast_json.h"
#include "base/json/json_depth.h"
#include "base/status/check.h"

namespace bulwark::sdk {
namespace {

struct OperationEntry {
  Operation operation;
  absl::string_view name;
};

constexpr OperationEntry kOperations[] = {
    {Operation::kCreate, "create"},
    {Operation::kRead, "read"},
    {Operation::kUpdate, "update"},
    {Operation::kPatch, "patch"},
    {Operation::kDelete, "delete"},
    {Operation::kList, "list"},
    {Operation::kHelp, "help"},
    {Operation::kAliasLookahead, "alias-lookahead"},
    {Operation::kResolveRole, "resolve-role"},
    {Operation::kHeader, "header"},
    {Operation::kRenew, "renew"},
    {Operation::kRevoke, "revoke"},
    {Operation::kRollback, "rollback"},
};

// The payload that marks a status as a logical error: "<err_type>:<http_code>".
constexpr absl::string_view kLogicalErrorPayloadUrl = "type.bulwark.dev/bulwark.sdk.LogicalError";

absl::Status MakeLogicalError(absl::StatusCode code, ErrorType type, absl::string_view message,
                              int64_t http_code = 0) {
  absl::Status status(code, message);
  status.SetPayload(kLogicalErrorPayloadUrl,
                    absl::Cord(absl::StrCat(static_cast<uint32_t>(type), ":", http_code)));
  return status;
}

// The absl code closest to an HTTP status (google.rpc's mapping where it has one).
absl::StatusCode CodeForHttp(int http_code) {
  switch (http_code) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 405:
    case 501:
      return absl::StatusCode::kUnimplemented;
    case 409:
      return absl::StatusCode::kAborted;
    case 412:
      return absl::StatusCode::kFailedPrecondition;
    case 413:
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 503:
      return absl::StatusCode::kUnavailable;
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    default:
      break;
  }
  if (http_code >= 400 && http_code < 500) return absl::StatusCode::kInvalidArgument;
  if (http_code >= 500 && http_code < 600) return absl::StatusCode::kInternal;
  return absl::StatusCode::kUnknown;
}

// Rejects JSON nested deeper than `depth_max` without parsing it (nlohmann's parser recurses
// once per level); the parser validates everything else.
absl::Status CheckJsonDepth(absl::string_view text, size_t depth_max) {
  if (std::optional<size_t> at = FindJsonNestingBeyond(text, depth_max); at.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("request data is nested deeper than ", depth_max,
                                                   " levels (at byte ", *at, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view OperationName(Operation operation) {
  for (const OperationEntry& entry : kOperations) {
    if (entry.operation == operation) return entry.name;
  }
  return "";
}

Operation ParseOperation(absl::string_view name) {
  for (const OperationEntry& entry : kOperations) {
    if (entry.name == name) return entry.operation;
  }
  return Operation::kUnknown;
}

absl::Status UserError(absl::string_view message) {
  return MakeLogicalError(absl::StatusCode::kInvalidArgument, ErrorType::kUser, message);
}
absl::Status InternalError(absl::string_view message) {
  return MakeLogicalError(absl::StatusCode::kInternal, ErrorType::kInternal, message);
}
absl::Status CodedError(int http_code, absl::string_view message) {
  return MakeLogicalError(CodeForHttp(http_code), ErrorType::kCoded, message, http_code);
}
absl::Status BadRequestError(absl::string_view message) {
  return MakeLogicalError(absl::StatusCode::kInvalidArgument, ErrorType::kBadRequest, message);
}
absl::Status UnsupportedOperationError(absl::string_view message) {
  return MakeLogicalError(absl::StatusCode::kUnimplemented, ErrorType::kUnsupportedOperation,
                          message);
}
absl::Status UnsupportedPathError(absl::string_view message) {
  return MakeLogicalError(absl::StatusCode::kNotFound, ErrorType::kUnsupportedPath, message);
}
absl::Status InvalidRequestError(absl::string_view message) {
  return MakeLogicalError(absl::StatusCode::kInvalidArgument, ErrorType::kInvalidRequest, message);
}
absl::Status PermissionDeniedError(absl::string_view message) {
  return MakeLogicalError(absl::StatusCode::kPermissionDenied, ErrorType::kPermissionDenied,
                          message);
}
absl::Status MultiAuthzPendingError(absl::string_view message) {
  return MakeLogicalError(absl::StatusCode::kFailedPrecondition, ErrorType::kMultiAuthzPending,
                          message);
}
absl::Status UnrecoverableError(absl::string_view message) {
  return MakeLogicalError(absl::StatusCode::kInternal, ErrorType::kUnrecoverable, message);
}

LogicalError ToLogicalError(const absl::Status& status) {
  LogicalError error;
  error.message = std::string(status.message());
  if (auto payload = status.GetPayload(kLogicalErrorPayloadUrl)) {
    std::vector<std::string> parts = absl::StrSplit(std::string(*payload), ':');
    uint32_t type = 0;
    int64_t http_code = 0;
    if (parts.size() == 2 && absl::SimpleAtoi(parts[0], &type) &&
        absl::SimpleAtoi(parts[1], &http_code) &&
        type <= static_cast<uint32_t>(ErrorType::kUnrecoverable)) {
      error.type = static_cast<ErrorType>(type);
      error.http_code = http_code;
    }
  }
  return error;
}

pb::ProtoError ToProtoError(const absl::Status& status) {
  const LogicalError error = ToLogicalError(status);
  pb::ProtoError proto;
  proto.set_err_type(static_cast<uint32_t>(error.type));
  proto.set_err_msg(error.message);
  proto.set_err_code(error.http_code);
  return proto;
}

Request::Request(pb::Request proto, nlohmann::json data)
    : proto_(std::move(proto)),
      data_(std::move(data)),
      operation_(ParseOperation(proto_.operation())) {}

Request Request::Make(Operation operation, absl::string_view path, nlohmann::json data) {
  CHECK(operation != Operation::kUnknown) << "Request::Make needs a known operation";
  CHECK(data.is_object()) << "Request::Make needs a JSON object as data, got " << data.type_name();
  pb::Request proto;
  proto.set_operation(std::string(OperationName(operation)));
  proto.set_path(std::string(path));
  proto.set_data(DumpJsonCompact(data));
  return Request(std::move(proto), std::move(data));
}

absl::StatusOr<Request> Request::FromProto(pb::Request proto) {
  const std::string& text = proto.data();
  if (text.size() > kRequestDataBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request data is ", text.size(), " bytes, more than the limit of ", kRequestDataBytesMax));
  }
  nlohmann::json data = nlohmann::json::object();
  if (!text.empty() && text != "null") {
    // simdjson first (long strings at memory speed, nesting bounded); what it leaves gets the
    // nesting check and nlohmann's parser, which name the problem and its position.
    if (std::optional<nlohmann::json> fast = ParseJsonFast(text, kRequestDataDepthMax);
        fast.has_value()) {
      data = std::move(*fast);
    } else {
      if (absl::Status depth = CheckJsonDepth(text, kRequestDataDepthMax); !depth.ok()) {
        return depth;
      }
      try {
        data = nlohmann::json::parse(text);
      } catch (const nlohmann::json::parse_error& e) {
        // e.what() quotes the data around the error; the data may be secret.
        return absl::InvalidArgumentError(
            absl::StrCat("request data is not valid JSON (error at byte ", e.byte, ")"));
      }
    }
    if (data.is_null()) {
      data = nlohmann::json::object();
    } else if (!data.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("request data must be a JSON object, got a JSON ", data.type_name()));
    }
  }
  return Request(std::move(proto), std::move(data));
}

Response Response::WithData(nlohmann::json data) {
  Response response;
  response.data = std::move(data);
  return response;
}

Response Response::ErrorResponse(absl::string_view message) {
  Response response;
  response.data = nlohmann::json::object();
  response.data["error"] = std::string(message);
  return response;
}

pb::Response Response::ToProto() const {
  pb::Response proto;
  // Vault's host unmarshals this text unconditionally, so it must always be JSON.
  proto.set_data(DumpJsonCompact(data));
  for (const std::string& warning : warnings) proto.add_warnings(warning);
  proto.set_redirect(redirect);
  for (const auto& [name, values] : headers) {
    pb::Header& header = (*proto.mutable_headers())[name];
    for (const std::string& value : values) header.add_header(value);
  }
  if (secret.has_value()) *proto.mutable_secret() = *secret;
  if (auth.has_value()) *proto.mutable_auth() = *auth;
  return proto;
}

void Log(LogSink* sink, LogLevel level, absl::string_view message,
         std::vector<std::pair<std::string, std::string>> fields) {
  if (sink == nullptr) return;
  LogRecord record;
  record.level = level;
  record.message = std::string(message);
  record.fields = std::move(fields);
  // record.time stays unset: the sink stamps it (the simulator's with simulated time).
  sink->Write(record);
}

}  // namespace bulwark::sdk
