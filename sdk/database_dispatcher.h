// The plugin side of Vault's database protocol without a transport: answers
// dbplugin.v5.Database, logical.PluginVersion and (when multiplexed)
// pluginutil.multiplexing.PluginMultiplexing from serialized requests, with the status codes and
// messages of Vault's gRPCServer (sdk/database/dbplugin/v5/grpc_server.go), and keeps the table
// of database instances. ServeDatabase (serve.h) feeds it from gRPC; tests call it directly.
#ifndef BULWARK_SDK_DATABASE_DISPATCHER_H_
#define BULWARK_SDK_DATABASE_DISPATCHER_H_

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/log/log.h"
#include "protocol/wire_names.h"
#include "sdk/database.h"

namespace bulwark::sdk {

// Full method names the dispatcher serves, defined in protocol/wire_names.h with the
// MultiplexingSupport and Version methods it also serves.
using protocol::kDatabaseCloseMethod;
using protocol::kDatabaseDeleteUserMethod;
using protocol::kDatabaseInitializeMethod;
using protocol::kDatabaseNewUserMethod;
using protocol::kDatabaseTypeMethod;
using protocol::kDatabaseUpdateUserMethod;

// Vault's error texts (grpc_server.go, pluginutil.GetMultiplexIDFromContext), sent with gRPC
// UNKNOWN because Vault returns them as plain Go errors.
inline constexpr absl::string_view kNoDatabaseInstanceError = "no database instance found";
inline constexpr absl::string_view kNoMultiplexIdError = "no multiplexing ID found";

// Most database instances by default and at all; longest multiplex id.
inline constexpr size_t kDatabaseInstancesDefaultMax = 64;
inline constexpr size_t kDatabaseInstancesMax = 4096;
inline constexpr size_t kDatabaseMultiplexIdBytesMax = 256;
// Largest InitializeRequest config, as JSON text.
inline constexpr size_t kDatabaseConfigBytesMax = 1 << 20;

struct DatabaseDispatcherOptions {
  // One instance per multiplex id (Vault's ServeMultiplex, protocol 6), or a single instance
  // that ignores the id (Vault's Serve, protocol 5).
  bool multiplexing = true;
  // At most this many instances at once; 1..kDatabaseInstancesMax.
  size_t max_instances = kDatabaseInstancesDefaultMax;
  // What logical.PluginVersion/Version reports ("v1.2.3", or "").
  std::string plugin_version;
  // Where the dispatcher and the databases log; null discards. Must outlive the dispatcher.
  LogSink* log = nullptr;
};

// One per plugin process. Thread-safe: Dispatch may be called from many threads at once; calls
// for one instance are serialized (Database objects need no locking), calls for different
// instances run in parallel.
//
// Instances (as Vault's gRPCServer): Initialize and Type create the instance for the caller's
// multiplex id when there is none (the factory runs then); NewUser, UpdateUser and DeleteUser
// need it to exist; Close removes it (and puts it back if the database's Close fails, unless a
// new one took its place). Without multiplexing there is one instance, created by whichever
// call comes first and recreated after a Close.
class DatabaseDispatcher {
 public:
  // CHECK-fails on a null factory or max_instances out of range (programming errors).
  DatabaseDispatcher(DatabaseFactory factory, DatabaseDispatcherOptions options);
  // Destroys the instances without calling Close (the host did not ask for it).
  ~DatabaseDispatcher();

  DatabaseDispatcher(const DatabaseDispatcher&) = delete;
  DatabaseDispatcher& operator=(const DatabaseDispatcher&) = delete;

  // Serves `method` (a k*Method name above) with the serialized `request`; returns the
  // serialized reply. `multiplex_id` is the caller's "multiplex_id" metadata ("" if none).
  // Errors, as Vault's gRPCServer returns them:
  //   kInvalidArgument  "missing username config" (NewUser), "no username provided"
  //                     (UpdateUser, DeleteUser), "update user request has no changes",
  //                     "unable to parse expiration date: ..." / "unable to parse new
  //                     expiration: ..." (a Timestamp out of range); also a request that does
  //                     not parse, a config over kDatabaseConfigBytesMax, an id over
  //                     kDatabaseMultiplexIdBytesMax
  //   kInternal         the database failed: "failed to initialize: <msg>", "failed to marshal
  //                     new config to JSON: <msg>", "unable to create new user: <msg>",
  //                     "unable to update user: <msg>", "unable to delete user: <msg>",
  //                     "unable to retrieve type: <msg>", "unable to close database plugin:
  //                     <msg>"
  //   kUnknown          multiplexed and no id: kNoMultiplexIdError; no instance for the id:
  //                     kNoDatabaseInstanceError; the factory failed: its message
  //   kResourceExhausted  creating an instance beyond max_instances
  //   kUnimplemented    an unknown method, or MultiplexingSupport when not multiplexing (a
  //                     Vault plugin served with Serve does not register that service)
  absl::StatusOr<std::string> Dispatch(absl::string_view method, absl::string_view request,
                                       absl::string_view multiplex_id);

  bool multiplexing() const { return options_.multiplexing; }
  // Instances that exist now.
  size_t instance_count() const;

 private:
  struct Instance;

  absl::StatusOr<std::string> InstanceKey(absl::string_view multiplex_id) const;
  // The instance for `multiplex_id`, created with the factory when missing (Initialize, Type,
  // and every call without multiplexing).
  absl::StatusOr<std::shared_ptr<Instance>> GetOrCreate(absl::string_view multiplex_id);
  // The existing instance, or kUnknown kNoDatabaseInstanceError.
  absl::StatusOr<std::shared_ptr<Instance>> Get(absl::string_view multiplex_id);

  absl::StatusOr<std::string> Initialize(absl::string_view request, absl::string_view multiplex_id);
  absl::StatusOr<std::string> NewUser(absl::string_view request, absl::string_view multiplex_id);
  absl::StatusOr<std::string> UpdateUser(absl::string_view request, absl::string_view multiplex_id);
  absl::StatusOr<std::string> DeleteUser(absl::string_view request, absl::string_view multiplex_id);
  absl::StatusOr<std::string> Type(absl::string_view multiplex_id);
  absl::StatusOr<std::string> Close(absl::string_view multiplex_id);

  const DatabaseFactory factory_;
  const DatabaseDispatcherOptions options_;
  LogSink* const log_;  // Never null.
  std::unique_ptr<LogSink> discard_log_;

  mutable std::mutex mu_;
  // Keyed by multiplex id ("" without multiplexing). shared_ptr: a call keeps its instance
  // alive across a concurrent Close.
  std::map<std::string, std::shared_ptr<Instance>> instances_;  // Guarded by mu_.
};

}  // namespace bulwark::sdk

#endif  // BULWARK_SDK_DATABASE_DISPATCHER_H_
