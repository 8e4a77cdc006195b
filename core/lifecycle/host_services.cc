// pb.Storage and pb.SystemView for one plugin instance, over serialized messages.
#include "core/lifecycle/host_services.h"

#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proto/vault/backend.pb.h"

namespace bulwark::lifecycle {
namespace {

template <typename Message>
absl::StatusOr<Message> Parse(absl::string_view method, absl::string_view bytes) {
  Message m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(absl::StrCat("malformed request to ", method));
  }
  return m;
}

std::string ErrText(const absl::Status& s) { return std::string(s.message()); }

}  // namespace

StorageHostServices::StorageHostServices(Storage& storage, std::string prefix, SystemViewInfo info)
    : storage_(storage), prefix_(std::move(prefix)), info_(std::move(info)) {}

absl::StatusOr<std::string> StorageHostServices::Key(absl::string_view key) const {
  // The plugin's key goes below the mount prefix; the storage rules (no "..", no empty
  // segments) make escaping the prefix impossible, and are checked here with a plugin-facing
  // message.
  std::string full = absl::StrCat(prefix_, key);
  absl::Status valid = ValidateStorageKey(full);
  if (!valid.ok() || key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid storage key: ", key.empty() ? "empty" : std::string(valid.message())));
  }
  return full;
}

absl::StatusOr<std::string> StorageHostServices::Handle(absl::string_view method,
                                                        absl::string_view request) {
  ++calls_;
  if (method == "/pb.Storage/Get") {
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
  if (method == "/pb.Storage/Put") {
    absl::StatusOr<pb::StoragePutArgs> args = Parse<pb::StoragePutArgs>(method, request);
    if (!args.ok()) return args.status();
    pb::StoragePutReply reply;
    absl::StatusOr<std::string> key = Key(args->entry().key());
    absl::Status s = key.ok() ? storage_.Put(*key, args->entry().value()) : key.status();
    if (!s.ok()) reply.set_err(ErrText(s));
    return reply.SerializeAsString();
  }
  if (method == "/pb.Storage/Delete") {
    absl::StatusOr<pb::StorageDeleteArgs> args = Parse<pb::StorageDeleteArgs>(method, request);
    if (!args.ok()) return args.status();
    pb::StorageDeleteReply reply;
    absl::StatusOr<std::string> key = Key(args->key());
    absl::Status s = key.ok() ? storage_.Delete(*key) : key.status();
    if (!s.ok()) reply.set_err(ErrText(s));
    return reply.SerializeAsString();
  }
  if (method == "/pb.Storage/List") {
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
      level.insert(
          std::string(slash == absl::string_view::npos ? rest : rest.substr(0, slash + 1)));
    }
    if (level.size() > kListKeysMax) {
      reply.set_err(
          absl::StrCat("list of \"", args->prefix(), "\" has more than ", kListKeysMax, " keys"));
      return reply.SerializeAsString();
    }
    for (const std::string& k : level) reply.add_keys(k);
    return reply.SerializeAsString();
  }
  if (method == "/pb.SystemView/DefaultLeaseTTL" || method == "/pb.SystemView/MaxLeaseTTL") {
    pb::TTLReply reply;
    reply.set_ttl(absl::ToInt64Seconds(method == "/pb.SystemView/DefaultLeaseTTL"
                                           ? info_.default_lease_ttl
                                           : info_.max_lease_ttl));
    return reply.SerializeAsString();
  }
  if (method == "/pb.SystemView/Tainted") return pb::TaintedReply().SerializeAsString();
  if (method == "/pb.SystemView/CachingDisabled") {
    return pb::CachingDisabledReply().SerializeAsString();
  }
  if (method == "/pb.SystemView/ReplicationState") {
    return pb::ReplicationStateReply().SerializeAsString();
  }
  if (method == "/pb.SystemView/MlockEnabled") {
    pb::MlockEnabledReply reply;
    reply.set_enabled(info_.mlock);
    return reply.SerializeAsString();
  }
  if (method == "/pb.SystemView/LocalMount") {
    pb::LocalMountReply reply;
    reply.set_local(info_.local_mount);
    return reply.SerializeAsString();
  }
  if (method == "/pb.SystemView/PluginEnv") {
    pb::PluginEnvReply reply;
    reply.mutable_plugin_environment()->set_vault_version(info_.vault_version);
    return reply.SerializeAsString();
  }
  return absl::UnimplementedError(absl::StrCat("host does not serve ", method));
}

}  // namespace bulwark::lifecycle
