// pb.Storage over a Storage&, with Vault's reply conventions.
#include "protocol/storage_service.h"

#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proto/vault/backend.pb.h"
#include "protocol/handshake.h"
#include "protocol/wire_names.h"

namespace bulwark::protocol {
namespace {

template <typename Message>
absl::StatusOr<Message> Parse(absl::string_view method, absl::string_view bytes) {
  Message m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed request to ", method, " (not a ", m.GetTypeName(), ")"));
  }
  return m;
}

std::string ErrText(const absl::Status& s) { return std::string(s.message()); }

}  // namespace

StorageService::StorageService(Storage& storage, std::string prefix)
    : storage_(storage), prefix_(std::move(prefix)) {}

bool StorageService::Serves(absl::string_view method) {
  return method == kStorageGetMethod || method == kStoragePutMethod ||
         method == kStorageDeleteMethod || method == kStorageListMethod;
}

absl::StatusOr<std::string> StorageService::Key(absl::string_view key) const {
  std::string full = absl::StrCat(prefix_, key);
  absl::Status valid = ValidateStorageKey(full);
  if (!valid.ok() || key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid storage key: ", key.empty() ? "empty" : std::string(valid.message())));
  }
  return full;
}

absl::StatusOr<std::string> StorageService::Handle(absl::string_view method,
                                                   absl::string_view request) {
  if (method == kStorageGetMethod) {
    absl::StatusOr<pb::StorageGetArgs> args = Parse<pb::StorageGetArgs>(method, request);
    if (!args.ok()) return args.status();
    pb::StorageGetReply reply;
    absl::StatusOr<std::string> key = Key(args->key());
    if (!key.ok()) {
      reply.set_err(ErrText(key.status()));
      return reply.SerializeAsString();
    }
    absl::StatusOr<std::optional<std::string>> value = storage_.Get(*key);
    if (!value.ok()) {
      reply.set_err(ErrText(value.status()));
    } else if (value->has_value()) {
      reply.mutable_entry()->set_key(args->key());
      reply.mutable_entry()->set_value(std::move(**value));
    }
    return reply.SerializeAsString();
  }
  if (method == kStoragePutMethod) {
    absl::StatusOr<pb::StoragePutArgs> args = Parse<pb::StoragePutArgs>(method, request);
    if (!args.ok()) return args.status();
    pb::StoragePutReply reply;
    absl::StatusOr<std::string> key = Key(args->entry().key());
    absl::Status s = key.ok() ? storage_.Put(*key, args->entry().value()) : key.status();
    if (!s.ok()) reply.set_err(ErrText(s));
    return reply.SerializeAsString();
  }
  if (method == kStorageDeleteMethod) {
    absl::StatusOr<pb::StorageDeleteArgs> args = Parse<pb::StorageDeleteArgs>(method, request);
    if (!args.ok()) return args.status();
    pb::StorageDeleteReply reply;
    absl::StatusOr<std::string> key = Key(args->key());
    absl::Status s = key.ok() ? storage_.Delete(*key) : key.status();
    if (!s.ok()) reply.set_err(ErrText(s));
    return reply.SerializeAsString();
  }
  if (method == kStorageListMethod) {
    absl::StatusOr<pb::StorageListArgs> args = Parse<pb::StorageListArgs>(method, request);
    if (!args.ok()) return args.status();
    pb::StorageListReply reply;
    const std::string full_prefix = absl::StrCat(prefix_, args->prefix());
    absl::StatusOr<std::vector<std::string>> keys = storage_.List(full_prefix);
    if (!keys.ok()) {
      reply.set_err(ErrText(keys.status()));
      return reply.SerializeAsString();
    }
    std::set<std::string> level;
    for (const std::string& k : *keys) {
      absl::string_view rest = absl::string_view(k).substr(full_prefix.size());
      const size_t slash = rest.find('/');
      if (slash != absl::string_view::npos) rest = rest.substr(0, slash + 1);
      if (!rest.empty()) level.insert(std::string(rest));
    }
    if (level.size() > kListKeysMax) {
      reply.set_err(
          absl::StrCat("list of \"", args->prefix(), "\" has more than ", kListKeysMax, " keys"));
      return reply.SerializeAsString();
    }
    for (const std::string& k : level) reply.add_keys(k);
    return reply.SerializeAsString();
  }
  return absl::UnimplementedError(absl::StrCat("pb.Storage has no method ", QuoteForError(method)));
}

}  // namespace bulwark::protocol
