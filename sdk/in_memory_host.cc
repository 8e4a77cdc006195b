// The in-memory host: pb.Storage over an InMemoryStorage through protocol::StorageService.
#include "sdk/in_memory_host.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status/check.h"
#include "proto/vault/backend.pb.h"
#include "protocol/handshake.h"

namespace bulwark::sdk {
InMemoryHostStorage::InMemoryHostStorage(size_t entries_max)
    : entries_max_(entries_max), service_(entries_, "") {}

absl::StatusOr<std::string> InMemoryHostStorage::Handle(absl::string_view method,
                                                        absl::string_view request) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!protocol::StorageService::Serves(method)) {
    return absl::UnimplementedError(
        absl::StrCat("the in-memory host does not serve ", protocol::QuoteForError(method)));
  }
  const bool write = method == kStoragePutMethod || method == kStorageDeleteMethod;
  if (write && write_error_.has_value()) {
    ++calls_[std::string(method)];
    pb::StoragePutReply reply;  // Put and Delete replies are the same message shape: err only.
    reply.set_err(*write_error_);
    return reply.SerializeAsString();
  }
  if (method == kStoragePutMethod && entries_.size() >= entries_max_) {
    pb::StoragePutArgs args;
    if (args.ParseFromArray(request.data(), static_cast<int>(request.size())) &&
        !entries_.Get(args.entry().key()).value_or(std::nullopt).has_value()) {
      ++calls_[std::string(method)];
      pb::StoragePutReply reply;
      reply.set_err(absl::StrCat("storage is full (", entries_max_, " entries)"));
      return reply.SerializeAsString();
    }
  }
  absl::StatusOr<std::string> reply = service_.Handle(method, request);
  if (reply.ok()) ++calls_[std::string(method)];
  return reply;
}

void InMemoryHostStorage::SetWriteError(std::optional<std::string> err) {
  std::lock_guard<std::mutex> lock(mu_);
  write_error_ = std::move(err);
}

std::optional<StorageEntry> InMemoryHostStorage::Get(absl::string_view key) const {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::optional<std::string>> value = entries_.Get(key);
  if (!value.ok() || !value->has_value()) return std::nullopt;
  return StorageEntry{std::string(key), std::move(**value), false};
}

void InMemoryHostStorage::Put(StorageEntry entry) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::Status status = entries_.Put(entry.key, entry.value);
  CHECK(status.ok()) << "seeding the in-memory host with " << entry.key << ": " << status;
}

std::vector<std::string> InMemoryHostStorage::Keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.List("").value_or(std::vector<std::string>{});
}

size_t InMemoryHostStorage::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

size_t InMemoryHostStorage::calls(absl::string_view method) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = calls_.find(method);
  return it == calls_.end() ? 0 : it->second;
}

InMemoryHostConnection::InMemoryHostConnection(std::shared_ptr<InMemoryHostStorage> storage)
    : storage_(std::move(storage)) {
  CHECK(storage_ != nullptr);
}

absl::StatusOr<std::string> InMemoryHostConnection::Call(absl::string_view method,
                                                         absl::string_view request) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return absl::UnavailableError("the host connection is closed");
  }
  return storage_->Handle(method, request);
}

void InMemoryHostConnection::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
}

void InMemoryHostDialer::Offer(uint32_t broker_id, std::shared_ptr<InMemoryHostStorage> storage) {
  CHECK(storage != nullptr);
  std::lock_guard<std::mutex> lock(mu_);
  offers_[broker_id] = std::move(storage);
}

absl::StatusOr<std::shared_ptr<protocol::HostConnection>> InMemoryHostDialer::Dial(
    uint32_t broker_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = offers_.find(broker_id);
  if (it == offers_.end()) {
    return absl::DeadlineExceededError(absl::StrCat(
        "timeout waiting for connection info: nothing offered under broker id ", broker_id));
  }
  auto connection = std::make_shared<InMemoryHostConnection>(std::move(it->second));
  offers_.erase(it);
  connections_.push_back(connection);
  return std::shared_ptr<protocol::HostConnection>(connection);
}

std::vector<std::shared_ptr<InMemoryHostConnection>> InMemoryHostDialer::connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connections_;
}

}  // namespace bulwark::sdk
