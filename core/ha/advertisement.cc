#include "core/ha/advertisement.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace bulwark::ha {

absl::StatusOr<std::string> AdvertisementKey(absl::string_view holder_id) {
  if (holder_id.empty() || absl::StrContains(holder_id, '/')) {
    return absl::InvalidArgumentError("HA holder id must be a non-empty key segment");
  }
  std::string key = absl::StrCat("core/leader/", holder_id);
  if (absl::Status s = ValidateStorageKey(key); !s.ok()) return s;
  return key;
}

std::string EncodeAdvertisement(const Advertisement& ad) {
  nlohmann::json j = {{"redirect_addr", ad.api_addr}, {"cluster_addr", ad.cluster_addr}};
  return j.dump();
}

absl::StatusOr<Advertisement> DecodeAdvertisement(absl::string_view value) {
  nlohmann::json j = nlohmann::json::parse(value.begin(), value.end(), nullptr,
                                           /*allow_exceptions=*/false);
  Advertisement ad;
  if (!j.is_object()) {
    ad.api_addr = std::string(value);  // Vault's old format.
    return ad;
  }
  for (const auto& [name, field] :
       {std::pair<const char*, std::string*>{"redirect_addr", &ad.api_addr},
        std::pair<const char*, std::string*>{"cluster_addr", &ad.cluster_addr}}) {
    auto it = j.find(name);
    if (it == j.end()) continue;
    if (!it->is_string()) {
      return absl::DataLossError(absl::StrCat("HA advertisement: ", name, " is not a string"));
    }
    *field = it->get<std::string>();
  }
  return ad;
}

absl::Status PublishAdvertisement(Storage& barrier, absl::string_view holder_id,
                                  const Advertisement& ad) {
  ASSIGN_OR_RETURN(std::string key, AdvertisementKey(holder_id));
  return barrier.Put(key, EncodeAdvertisement(ad));
}

absl::StatusOr<std::optional<Advertisement>> ReadAdvertisement(Storage& barrier,
                                                               absl::string_view holder_id) {
  ASSIGN_OR_RETURN(std::string key, AdvertisementKey(holder_id));
  ASSIGN_OR_RETURN(std::optional<std::string> value, barrier.Get(key));
  if (!value.has_value()) return std::optional<Advertisement>();
  ASSIGN_OR_RETURN(Advertisement ad, DecodeAdvertisement(*value));
  return std::optional<Advertisement>(std::move(ad));
}

absl::Status ClearAdvertisement(Storage& barrier, absl::string_view holder_id) {
  ASSIGN_OR_RETURN(std::string key, AdvertisementKey(holder_id));
  return barrier.Delete(key);
}

}  // namespace bulwark::ha
