// Every name that crosses the plugin wire, defined once: the full gRPC method paths of
// go-plugin's services, gRPC health, Vault's backend and database plugin APIs, and the magic
// cookies and protocol versions of Vault's handshakes. protocol/wire_names_test pins each one to
// the generated protos (themselves pinned to upstream's field numbers and method shapes) and to
// upstream's cookie values, so a typo here fails a test instead of a peer.
#ifndef BULWARK_PROTOCOL_WIRE_NAMES_H_
#define BULWARK_PROTOCOL_WIRE_NAMES_H_

#include "absl/strings/string_view.h"

namespace bulwark::protocol {

// go-plugin (plugin/grpc_*.proto) and gRPC health.
inline constexpr absl::string_view kBrokerStartStreamMethod = "/plugin.GRPCBroker/StartStream";
inline constexpr absl::string_view kControllerShutdownMethod = "/plugin.GRPCController/Shutdown";
inline constexpr absl::string_view kStdioStreamMethod = "/plugin.GRPCStdio/StreamStdio";
inline constexpr absl::string_view kHealthCheckMethod = "/grpc.health.v1.Health/Check";

// Vault's pb.Backend, served by a backend plugin.
inline constexpr absl::string_view kSetupMethod = "/pb.Backend/Setup";
inline constexpr absl::string_view kInitializeMethod = "/pb.Backend/Initialize";
inline constexpr absl::string_view kHandleRequestMethod = "/pb.Backend/HandleRequest";
inline constexpr absl::string_view kHandleExistenceCheckMethod = "/pb.Backend/HandleExistenceCheck";
inline constexpr absl::string_view kSpecialPathsMethod = "/pb.Backend/SpecialPaths";
inline constexpr absl::string_view kCleanupMethod = "/pb.Backend/Cleanup";
inline constexpr absl::string_view kInvalidateKeyMethod = "/pb.Backend/InvalidateKey";
inline constexpr absl::string_view kTypeMethod = "/pb.Backend/Type";

// Vault's pb.Storage and pb.SystemView, served by the host on the brokered connection.
inline constexpr absl::string_view kStorageGetMethod = "/pb.Storage/Get";
inline constexpr absl::string_view kStoragePutMethod = "/pb.Storage/Put";
inline constexpr absl::string_view kStorageDeleteMethod = "/pb.Storage/Delete";
inline constexpr absl::string_view kStorageListMethod = "/pb.Storage/List";
inline constexpr absl::string_view kSystemViewDefaultLeaseTtlMethod =
    "/pb.SystemView/DefaultLeaseTTL";
inline constexpr absl::string_view kSystemViewMaxLeaseTtlMethod = "/pb.SystemView/MaxLeaseTTL";
inline constexpr absl::string_view kSystemViewTaintedMethod = "/pb.SystemView/Tainted";
inline constexpr absl::string_view kSystemViewCachingDisabledMethod =
    "/pb.SystemView/CachingDisabled";
inline constexpr absl::string_view kSystemViewReplicationStateMethod =
    "/pb.SystemView/ReplicationState";
inline constexpr absl::string_view kSystemViewMlockEnabledMethod = "/pb.SystemView/MlockEnabled";
inline constexpr absl::string_view kSystemViewLocalMountMethod = "/pb.SystemView/LocalMount";
inline constexpr absl::string_view kSystemViewPluginEnvMethod = "/pb.SystemView/PluginEnv";

// Vault's dbplugin.v5.Database, served by a database plugin.
inline constexpr absl::string_view kDatabaseInitializeMethod = "/dbplugin.v5.Database/Initialize";
inline constexpr absl::string_view kDatabaseNewUserMethod = "/dbplugin.v5.Database/NewUser";
inline constexpr absl::string_view kDatabaseUpdateUserMethod = "/dbplugin.v5.Database/UpdateUser";
inline constexpr absl::string_view kDatabaseDeleteUserMethod = "/dbplugin.v5.Database/DeleteUser";
inline constexpr absl::string_view kDatabaseTypeMethod = "/dbplugin.v5.Database/Type";
inline constexpr absl::string_view kDatabaseCloseMethod = "/dbplugin.v5.Database/Close";

// Served by both kinds of plugin.
inline constexpr absl::string_view kMultiplexingSupportMethod =
    "/pluginutil.multiplexing.PluginMultiplexing/MultiplexingSupport";
inline constexpr absl::string_view kVersionMethod = "/logical.PluginVersion/Version";

// Vault's backend-plugin handshake (sdk/plugin/serve.go) and protocol version (plugin_v5.go).
inline constexpr absl::string_view kVaultBackendCookieKey = "VAULT_BACKEND_PLUGIN";
inline constexpr absl::string_view kVaultBackendCookieValue =
    "6669da05-b1c8-4f49-97d9-c8e5bed98e20";
inline constexpr int kVaultBackendProtocolVersion = 5;

// Vault's database-plugin handshake (sdk/database/dbplugin/v5/plugin_server.go): version 5 is
// one database per process, 6 the multiplexed server (one database per multiplex_id).
inline constexpr absl::string_view kVaultDatabaseCookieKey = "VAULT_DATABASE_PLUGIN";
inline constexpr absl::string_view kVaultDatabaseCookieValue =
    "926a0820-aea2-be28-51d6-83cdf00e8edb";
inline constexpr int kVaultDatabaseProtocolVersion = 5;
inline constexpr int kVaultDatabaseMultiplexedProtocolVersion = 6;

// bulwark's shared host-service connection: one brokered connection for all of a multiplexed
// plugin's instances instead of one per instance (docs/decisions/shared-host-services.md). Both
// sides opt in, so a go-plugin or Vault peer never sees anything but go-plugin's protocol:
//  - the plugin (bulwark's SDK) adds kSharedBrokerMetadataKey = kSharedBrokerVersion to the
//    initial metadata of its grpc.health.v1.Health/Check answers (go-plugin hosts ignore it);
//  - a host that saw it may announce a broker id with ConnInfo.network = kSharedBrokerNetwork
//    and the unix socket of one server for all of that plugin's offers (it sends this only to a
//    plugin that declared it, so a go-plugin plugin is never asked to dial it);
//  - the plugin then sends every pb.Storage / pb.SystemView call for that broker id over one
//    connection to that socket, with the id in kBrokerIdMetadataKey (decimal).
inline constexpr absl::string_view kSharedBrokerMetadataKey = "bulwark-shared-broker";
inline constexpr absl::string_view kSharedBrokerVersion = "1";
inline constexpr absl::string_view kSharedBrokerNetwork = "bulwark-shared-unix";
inline constexpr absl::string_view kBrokerIdMetadataKey = "bulwark-broker-id";

}  // namespace bulwark::protocol

#endif  // BULWARK_PROTOCOL_WIRE_NAMES_H_
