// InMemoryStorage: a Storage kept in a std::map, for tests, benchmarks and the simulator. Nothing
// survives the object; "durable" in the Storage contract means "visible to later calls" here.
#ifndef BULWARK_BASE_STORAGE_IN_MEMORY_STORAGE_H_
#define BULWARK_BASE_STORAGE_IN_MEMORY_STORAGE_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/storage/storage.h"

namespace bulwark {

// Single-threaded, like every Storage. Never fails except with kInvalidArgument for a key or
// value that breaks the rules in storage.h.
class InMemoryStorage final : public Storage {
 public:
  InMemoryStorage() = default;
  InMemoryStorage(const InMemoryStorage&) = delete;
  InMemoryStorage& operator=(const InMemoryStorage&) = delete;

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) override;
  absl::Status Put(absl::string_view key, absl::string_view value) override;
  absl::Status Delete(absl::string_view key) override;
  // Any prefix is accepted (an empty one lists every key).
  absl::StatusOr<std::vector<std::string>> List(absl::string_view prefix) override;

  // Number of keys stored.
  size_t size() const { return entries_.size(); }

 private:
  std::map<std::string, std::string, std::less<>> entries_;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_STORAGE_IN_MEMORY_STORAGE_H_
