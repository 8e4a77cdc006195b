// The in-memory host: pb.Storage over a map, with Vault's reply conventions (errors as strings,
// a missing entry as an unset field).
#include "sdk/in_memory_host.h"

#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/rpc/handshake.h"
#include "core/status/check.h"
#include "proto/vault/backend.pb.h"

namespace bulwark::sdk {
namespace {

template <typename Message>
absl::StatusOr<Message> Parse(absl::string_view bytes) {
  Message message;
  if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a valid ", message.GetTypeName(), " (", bytes.size(), " bytes)"));
  }
  return message;
}

std::string Serialize(const google::protobuf::MessageLite& message) {
  std::string bytes;
  CHECK(message.SerializeToString(&bytes)) << "cannot serialize " << message.GetTypeName();
  return bytes;
}

}  // namespace

std::vector<std::string> ListDirectChildren(const std::vector<std::string>& sorted_keys,
                                            absl::string_view prefix) {
  std::set<std::string> children;
  for (const std::string& key : sorted_keys) {
    if (!absl::StartsWith(key, prefix)) continue;
    absl::string_view rest = absl::string_view(key).substr(prefix.size());
    const size_t slash = rest.find('/');
    if (slash != absl::string_view::npos) rest = rest.substr(0, slash + 1);
    if (!rest.empty()) children.insert(std::string(rest));
  }
  return std::vector<std::string>(children.begin(), children.end());
}

InMemoryStorage::InMemoryStorage(size_t entries_max) : entries_max_(entries_max) {}

absl::StatusOr<std::string> InMemoryStorage::Handle(absl::string_view method,
                                                    absl::string_view request) {
  std::lock_guard<std::mutex> lock(mu_);
  if (method == kStorageGetMethod) {
    absl::StatusOr<pb::StorageGetArgs> args = Parse<pb::StorageGetArgs>(request);
    if (!args.ok()) return args.status();
    ++calls_[std::string(method)];
    pb::StorageGetReply reply;
    auto it = entries_.find(args->key());
    if (it != entries_.end()) {
      reply.mutable_entry()->set_key(it->second.key);
      reply.mutable_entry()->set_value(it->second.value);
      reply.mutable_entry()->set_seal_wrap(it->second.seal_wrap);
    }
    return Serialize(reply);
  }
  if (method == kStoragePutMethod) {
    absl::StatusOr<pb::StoragePutArgs> args = Parse<pb::StoragePutArgs>(request);
    if (!args.ok()) return args.status();
    ++calls_[std::string(method)];
    pb::StoragePutReply reply;
    if (write_error_.has_value()) {
      reply.set_err(*write_error_);
    } else if (args->entry().key().empty()) {
      reply.set_err("missing key");
    } else if (entries_.size() >= entries_max_ && entries_.count(args->entry().key()) == 0) {
      reply.set_err(absl::StrCat("storage is full (", entries_max_, " entries)"));
    } else {
      entries_[args->entry().key()] =
          StorageEntry{args->entry().key(), args->entry().value(), args->entry().seal_wrap()};
    }
    return Serialize(reply);
  }
  if (method == kStorageDeleteMethod) {
    absl::StatusOr<pb::StorageDeleteArgs> args = Parse<pb::StorageDeleteArgs>(request);
    if (!args.ok()) return args.status();
    ++calls_[std::string(method)];
    pb::StorageDeleteReply reply;
    if (write_error_.has_value()) {
      reply.set_err(*write_error_);
    } else {
      entries_.erase(args->key());
    }
    return Serialize(reply);
  }
  if (method == kStorageListMethod) {
    absl::StatusOr<pb::StorageListArgs> args = Parse<pb::StorageListArgs>(request);
    if (!args.ok()) return args.status();
    ++calls_[std::string(method)];
    std::vector<std::string> keys;
    keys.reserve(entries_.size());
    for (const auto& [key, entry] : entries_) keys.push_back(key);
    pb::StorageListReply reply;
    for (std::string& child : ListDirectChildren(keys, args->prefix())) {
      reply.add_keys(std::move(child));
    }
    return Serialize(reply);
  }
  return absl::UnimplementedError(
      absl::StrCat("the in-memory host does not serve ", rpc::QuoteForError(method)));
}

void InMemoryStorage::SetWriteError(std::optional<std::string> err) {
  std::lock_guard<std::mutex> lock(mu_);
  write_error_ = std::move(err);
}

std::optional<StorageEntry> InMemoryStorage::Get(absl::string_view key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(std::string(key));
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

void InMemoryStorage::Put(StorageEntry entry) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = entry.key;
  entries_[std::move(key)] = std::move(entry);
}

std::vector<std::string> InMemoryStorage::Keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> keys;
  for (const auto& [key, entry] : entries_) keys.push_back(key);
  return keys;
}

size_t InMemoryStorage::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

size_t InMemoryStorage::calls(absl::string_view method) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = calls_.find(method);
  return it == calls_.end() ? 0 : it->second;
}

InMemoryHostConnection::InMemoryHostConnection(std::shared_ptr<InMemoryStorage> storage)
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

void InMemoryHostDialer::Offer(uint32_t broker_id, std::shared_ptr<InMemoryStorage> storage) {
  CHECK(storage != nullptr);
  std::lock_guard<std::mutex> lock(mu_);
  offers_[broker_id] = std::move(storage);
}

absl::StatusOr<std::shared_ptr<HostConnection>> InMemoryHostDialer::Dial(uint32_t broker_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = offers_.find(broker_id);
  if (it == offers_.end()) {
    return absl::DeadlineExceededError(absl::StrCat(
        "timeout waiting for connection info: nothing offered under broker id ", broker_id));
  }
  auto connection = std::make_shared<InMemoryHostConnection>(std::move(it->second));
  offers_.erase(it);
  connections_.push_back(connection);
  return std::shared_ptr<HostConnection>(connection);
}

std::vector<std::shared_ptr<InMemoryHostConnection>> InMemoryHostDialer::connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connections_;
}

}  // namespace bulwark::sdk
