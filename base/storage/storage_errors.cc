#include "base/storage/storage_errors.h"

#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace bulwark {
namespace {

constexpr absl::string_view kPayloadUrl = "bulwark.dev/storage-error";
constexpr absl::string_view kFenced = "fenced";
constexpr absl::string_view kReadOnly = "read-only";

bool HasPayload(const absl::Status& status, absl::string_view kind) {
  if (status.code() != absl::StatusCode::kFailedPrecondition) return false;
  auto payload = status.GetPayload(kPayloadUrl);
  return payload.has_value() && *payload == kind;
}

}  // namespace

absl::Status FencedError(absl::string_view detail) {
  absl::Status s = absl::FailedPreconditionError(absl::StrCat(
      "fenced: this node no longer holds the lock", detail.empty() ? "" : ": ", detail));
  s.SetPayload(kPayloadUrl, absl::Cord(kFenced));
  return s;
}

bool IsFenced(const absl::Status& status) { return HasPayload(status, kFenced); }

absl::Status ReadOnlyError() {
  absl::Status s = absl::FailedPreconditionError("cannot write to readonly storage");
  s.SetPayload(kPayloadUrl, absl::Cord(kReadOnly));
  return s;
}

bool IsReadOnly(const absl::Status& status) { return HasPayload(status, kReadOnly); }

}  // namespace bulwark
