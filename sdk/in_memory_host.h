// An in-memory host for plugin code without any transport: Vault's pb.Storage semantics over a
// map, a HostConnection that serves it from serialized messages, and a HostDialer keyed by
// broker id. For tests of backends and of the dispatcher, and for tools that run a backend
// in-process; the serialization is real, so message handling is exercised too.
#ifndef BULWARK_SDK_IN_MEMORY_HOST_H_
#define BULWARK_SDK_IN_MEMORY_HOST_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/storage/in_memory_storage.h"
#include "protocol/host_connection.h"
#include "protocol/storage_service.h"
#include "sdk/storage_client.h"

namespace bulwark::sdk {

// Most entries an InMemoryHostStorage holds by default; a Put beyond it fails.
inline constexpr size_t kInMemoryStorageEntriesDefaultMax = 1 << 20;

// pb.Storage over a map, answered by the same protocol::StorageService the core's host uses, so
// keys, errors and List replies are exactly the real host's. Thread-safe.
class InMemoryHostStorage {
 public:
  explicit InMemoryHostStorage(size_t entries_max = kInMemoryStorageEntriesDefaultMax);

  // Serves one pb.Storage method ("/pb.Storage/Get", ...) from a serialized request, as a host
  // would: storage failures go into the reply's `err` string. Errors: kUnimplemented for other
  // methods, kInvalidArgument for an unparsable request.
  absl::StatusOr<std::string> Handle(absl::string_view method, absl::string_view request);

  // Makes every Put and Delete fail with `err` in the reply (e.g. kErrReadOnly, as a
  // performance standby does) until called with nullopt.
  void SetWriteError(std::optional<std::string> err);

  // Direct access, for test assertions and seeding. Like the core's host, this one keeps no
  // `seal_wrap` flag (bulwark's Storage has none; Vault's barrier keeps it), so Get returns it
  // false.
  std::optional<StorageEntry> Get(absl::string_view key) const;
  void Put(StorageEntry entry);
  std::vector<std::string> Keys() const;
  size_t size() const;

  // Calls handled so far, by method name.
  size_t calls(absl::string_view method) const;

 private:
  const size_t entries_max_;
  mutable std::mutex mu_;
  mutable InMemoryStorage entries_;                   // Guarded by mu_.
  protocol::StorageService service_;                  // Over entries_; guarded by mu_.
  std::optional<std::string> write_error_;            // Guarded by mu_.
  std::map<std::string, size_t, std::less<>> calls_;  // Guarded by mu_.
};

// A HostConnection whose host serves pb.Storage from an InMemoryHostStorage. Other methods are
// kUnimplemented. After Close(), every call fails with kUnavailable (a dropped connection).
class InMemoryHostConnection final : public protocol::HostConnection {
 public:
  explicit InMemoryHostConnection(std::shared_ptr<InMemoryHostStorage> storage);

  absl::StatusOr<std::string> Call(absl::string_view method, absl::string_view request) override;
  void Close();

 private:
  const std::shared_ptr<InMemoryHostStorage> storage_;
  std::mutex mu_;
  bool closed_ = false;  // Guarded by mu_.
};

// Offers storages under broker ids, as a host does before pb.Backend/Setup. Like go-plugin's
// broker, an offer is consumed by the Dial that takes it. Thread-safe.
class InMemoryHostDialer final : public protocol::HostDialer {
 public:
  void Offer(uint32_t broker_id, std::shared_ptr<InMemoryHostStorage> storage);

  // Errors: kDeadlineExceeded when nothing is offered under `broker_id` (go-plugin's dialer
  // would wait and time out; this one does not wait).
  absl::StatusOr<std::shared_ptr<protocol::HostConnection>> Dial(uint32_t broker_id) override;

  // Connections dialed so far, in order.
  std::vector<std::shared_ptr<InMemoryHostConnection>> connections() const;

 private:
  mutable std::mutex mu_;
  std::map<uint32_t, std::shared_ptr<InMemoryHostStorage>> offers_;   // Guarded by mu_.
  std::vector<std::shared_ptr<InMemoryHostConnection>> connections_;  // Guarded by mu_.
};

}  // namespace bulwark::sdk

#endif  // BULWARK_SDK_IN_MEMORY_HOST_H_
