// A Storage view that puts every key under a fixed prefix of another Storage: one mount's
// slice of the barrier ("logical/<uuid>/"), as the host services give a plugin.
#ifndef BULWARK_CORE_DATABASE_PREFIX_STORAGE_H_
#define BULWARK_CORE_DATABASE_PREFIX_STORAGE_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/storage/storage.h"

namespace bulwark::database {

class PrefixStorage final : public Storage {
 public:
  // `prefix` ends in '/'. `inner` must outlive the view.
  PrefixStorage(Storage& inner, std::string prefix) : inner_(inner), prefix_(std::move(prefix)) {}
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) override {
    return inner_.Get(absl::StrCat(prefix_, key));
  }
  absl::Status Put(absl::string_view key, absl::string_view value) override {
    return inner_.Put(absl::StrCat(prefix_, key), value);
  }
  absl::Status Delete(absl::string_view key) override {
    return inner_.Delete(absl::StrCat(prefix_, key));
  }
  // Keys below the view, without the view's prefix.
  absl::StatusOr<std::vector<std::string>> List(absl::string_view prefix) override {
    absl::StatusOr<std::vector<std::string>> keys = inner_.List(absl::StrCat(prefix_, prefix));
    if (!keys.ok()) return keys.status();
    for (std::string& k : *keys) k = k.substr(prefix_.size());
    return keys;
  }

 private:
  Storage& inner_;
  const std::string prefix_;
};

}  // namespace bulwark::database

#endif  // BULWARK_CORE_DATABASE_PREFIX_STORAGE_H_
