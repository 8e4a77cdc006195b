// The counter engine: a write adds to a stored integer, a read answers it.
#include "examples/counter/counter_backend.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/status/status_macros.h"

namespace bulwark::examples::counter {

CounterBackend::CounterBackend(const sdk::BackendConfig& config) : storage_(config.storage) {}

sdk::HandleResult CounterBackend::HandleRequest(const sdk::Request& request) {
  const std::string& path = request.path();
  const sdk::Operation operation = request.operation();
  if (operation == sdk::Operation::kList) return List(path);
  if (operation != sdk::Operation::kRead && operation != sdk::Operation::kCreate &&
      operation != sdk::Operation::kUpdate) {
    // Vault answers 405. A counter only grows or shrinks by writes; it is never deleted.
    return sdk::UnsupportedOperationError("counter supports read, create, update and list");
  }
  if (path.empty() || absl::EndsWith(path, "/") || path.size() > kNameBytesMax) {
    return sdk::UnsupportedPathError(absl::StrCat(
        "a counter lives at <mount>/<name>, a name of 1 to ", kNameBytesMax, " bytes"));
  }
  if (operation == sdk::Operation::kRead) {
    ASSIGN_OR_RETURN(std::optional<int64_t> value, Load(path));
    if (!value.has_value()) return std::optional<sdk::Response>();  // Vault's 404.
    return sdk::Response::WithData({{"value", *value}});
  }
  return Add(path, request.data());
}

absl::StatusOr<sdk::ExistenceCheck> CounterBackend::HandleExistenceCheck(
    const sdk::Request& request) {
  ASSIGN_OR_RETURN(std::optional<int64_t> value, Load(request.path()));
  return sdk::ExistenceCheck{/*check_found=*/true, /*exists=*/value.has_value()};
}

absl::StatusOr<std::optional<int64_t>> CounterBackend::Load(const std::string& name) const {
  ASSIGN_OR_RETURN(std::optional<sdk::StorageEntry> entry, storage_->Get(name));
  if (!entry.has_value()) return std::optional<int64_t>();
  int64_t value = 0;
  if (!absl::SimpleAtoi(entry->value, &value)) {
    // The entry is not quoted: errors carry no stored data.
    return sdk::InternalError(absl::StrCat("counter \"", name, "\" holds no integer"));
  }
  return std::optional<int64_t>(value);
}

sdk::HandleResult CounterBackend::Add(const std::string& name, const nlohmann::json& data) {
  const auto by = data.find("by");
  if (data.size() != 1 || by == data.end() || !by->is_number_integer()) {
    return sdk::InvalidRequestError("write one field, \"by\", holding an integer");
  }
  const int64_t step = by->get<int64_t>();
  if (step > kStepMax || step < -kStepMax) {
    return sdk::InvalidRequestError(absl::StrCat("\"by\" must be within +-", kStepMax));
  }
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(std::optional<int64_t> value, Load(name));
  const int64_t next = value.value_or(0) + step;  // |value| <= kValueMax: no overflow.
  if (next > kValueMax || next < -kValueMax) {
    return sdk::InvalidRequestError(absl::StrCat("a counter stays within +-", kValueMax));
  }
  RETURN_IF_ERROR(storage_->Put(name, absl::StrCat(next)));
  return sdk::Response::WithData({{"value", next}});
}

sdk::HandleResult CounterBackend::List(const std::string& folder) const {
  std::string prefix = folder;
  if (!prefix.empty() && !absl::EndsWith(prefix, "/")) prefix += "/";
  ASSIGN_OR_RETURN(std::vector<std::string> keys, storage_->List(prefix));
  return sdk::Response::WithData({{"keys", std::move(keys)}});
}

sdk::BackendFactory CounterFactory() {
  return [](const sdk::BackendConfig& config) -> absl::StatusOr<std::unique_ptr<sdk::Backend>> {
    return std::make_unique<CounterBackend>(config);
  };
}

}  // namespace bulwark::examples::counter
