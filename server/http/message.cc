#include "server/http/message.h"

#include "absl/strings/match.h"

namespace bulwark::http {

std::optional<absl::string_view> Request::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return absl::string_view(value);
  }
  return std::nullopt;
}

std::optional<absl::string_view> Request::Query(absl::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) return absl::string_view(value);
  }
  return std::nullopt;
}

}  // namespace bulwark::http
