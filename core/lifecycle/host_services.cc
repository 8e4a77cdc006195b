// pb.Storage and pb.SystemView for one plugin instance, over serialized messages.
#include "core/lifecycle/host_services.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "proto/vault/backend.pb.h"
#include "protocol/wire_names.h"

namespace bulwark::lifecycle {

StorageHostServices::StorageHostServices(Storage& storage, std::string prefix, SystemViewInfo info)
    : storage_(storage, std::move(prefix)), info_(std::move(info)) {}

absl::StatusOr<std::string> StorageHostServices::Handle(absl::string_view method,
                                                        absl::string_view request) {
  ++calls_;
  if (protocol::StorageService::Serves(method)) return storage_.Handle(method, request);
  if (method == protocol::kSystemViewDefaultLeaseTtlMethod ||
      method == protocol::kSystemViewMaxLeaseTtlMethod) {
    pb::TTLReply reply;
    reply.set_ttl(absl::ToInt64Seconds(method == protocol::kSystemViewDefaultLeaseTtlMethod
                                           ? info_.default_lease_ttl
                                           : info_.max_lease_ttl));
    return reply.SerializeAsString();
  }
  if (method == protocol::kSystemViewTaintedMethod) return pb::TaintedReply().SerializeAsString();
  if (method == protocol::kSystemViewCachingDisabledMethod) {
    return pb::CachingDisabledReply().SerializeAsString();
  }
  if (method == protocol::kSystemViewReplicationStateMethod) {
    return pb::ReplicationStateReply().SerializeAsString();
  }
  if (method == protocol::kSystemViewMlockEnabledMethod) {
    pb::MlockEnabledReply reply;
    reply.set_enabled(info_.mlock);
    return reply.SerializeAsString();
  }
  if (method == protocol::kSystemViewLocalMountMethod) {
    pb::LocalMountReply reply;
    reply.set_local(info_.local_mount);
    return reply.SerializeAsString();
  }
  if (method == protocol::kSystemViewPluginEnvMethod) {
    pb::PluginEnvReply reply;
    reply.mutable_plugin_environment()->set_vault_version(info_.vault_version);
    return reply.SerializeAsString();
  }
  return absl::UnimplementedError(absl::StrCat("host does not serve ", method));
}

}  // namespace bulwark::lifecycle
