// counter: a secrets engine that is not a key/value store, written with bulwark's C++ SDK. Each
// path below the mount is a counter: `write counter/x by=3` adds 3 to it, `read counter/x`
// answers {"value": V}. A write is therefore not idempotent (writing twice adds twice), and a
// counter cannot be deleted. It is certified with a manifest that says so (conformance.json;
// docs/conformance.md, "The backend probe").
#ifndef BULWARK_EXAMPLES_COUNTER_COUNTER_BACKEND_H_
#define BULWARK_EXAMPLES_COUNTER_COUNTER_BACKEND_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "sdk/backend.h"

namespace bulwark::examples::counter {

// The largest step a write may add (or subtract), and the largest magnitude a counter may reach:
// a write that would pass it is refused, so a counter never overflows.
inline constexpr int64_t kStepMax = int64_t{1} << 40;
inline constexpr int64_t kValueMax = int64_t{1} << 52;  // Exact in a JSON double.
// Longest counter name (the path below the mount).
inline constexpr size_t kNameBytesMax = 256;

// One object per mount. Requests arrive on several threads at once; a write is a read-modify-
// write of one storage entry, so writes to this mount are serialised by mu_ (reads need no lock:
// each Get sees a whole entry).
class CounterBackend final : public sdk::Backend {
 public:
  explicit CounterBackend(const sdk::BackendConfig& config);

  sdk::HandleResult HandleRequest(const sdk::Request& request) override;
  absl::StatusOr<sdk::ExistenceCheck> HandleExistenceCheck(const sdk::Request& request) override;

 private:
  // The counter's value, or nullopt when it was never written.
  absl::StatusOr<std::optional<int64_t>> Load(const std::string& name) const;
  sdk::HandleResult Add(const std::string& name, const nlohmann::json& data);
  sdk::HandleResult List(const std::string& folder) const;

  const std::shared_ptr<sdk::StorageClient> storage_;
  std::mutex mu_;  // Held across every write's Get and Put.
};

// What ServeBackend (or the simulator) calls for every new mount.
sdk::BackendFactory CounterFactory();

}  // namespace bulwark::examples::counter

#endif  // BULWARK_EXAMPLES_COUNTER_COUNTER_BACKEND_H_
