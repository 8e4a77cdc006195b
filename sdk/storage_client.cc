// pb.Storage calls over a HostConnection, with Vault's string errors turned into absl::Status.
#include "sdk/storage_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"
#include "proto/vault/backend.pb.h"
#include "protocol/handshake.h"

namespace bulwark::sdk {
namespace {

// The host's `err` string as a status. The text is kept as it is (see the header).
absl::Status HostError(const std::string& err) {
  if (err == kErrReadOnly || err == kErrSetupReadOnly) {
    return absl::FailedPreconditionError(err);
  }
  return absl::UnknownError(err);
}

template <typename Reply>
absl::StatusOr<Reply> CallStorage(protocol::HostConnection& connection, absl::string_view method,
                                  const google::protobuf::MessageLite& request,
                                  absl::string_view what) {
  std::string bytes;
  if (!request.SerializeToString(&bytes)) {
    return absl::InternalError(absl::StrCat(what, ": cannot serialize the request"));
  }
  absl::StatusOr<std::string> reply_bytes = connection.Call(method, bytes);
  if (!reply_bytes.ok()) return Annotate(reply_bytes.status(), what);
  Reply reply;
  if (!reply.ParseFromString(*reply_bytes)) {
    return absl::InternalError(
        absl::StrCat(what, ": the host's reply is not a valid ", reply.GetTypeName()));
  }
  return reply;
}

std::string What(absl::string_view operation, absl::string_view key) {
  return absl::StrCat("storage ", operation, " ", protocol::QuoteForError(key));
}

}  // namespace

StorageClient::StorageClient(std::shared_ptr<protocol::HostConnection> connection)
    : connection_(std::move(connection)) {
  CHECK(connection_ != nullptr) << "StorageClient needs a connection";
}

absl::StatusOr<std::optional<StorageEntry>> StorageClient::Get(absl::string_view key) const {
  pb::StorageGetArgs args;
  args.set_key(std::string(key));
  ASSIGN_OR_RETURN(
      pb::StorageGetReply reply,
      CallStorage<pb::StorageGetReply>(*connection_, kStorageGetMethod, args, What("get", key)));
  if (!reply.err().empty()) return HostError(reply.err());
  if (!reply.has_entry()) return std::optional<StorageEntry>();
  StorageEntry entry;
  entry.key = reply.entry().key();
  entry.value = reply.entry().value();
  entry.seal_wrap = reply.entry().seal_wrap();
  return std::optional<StorageEntry>(std::move(entry));
}

absl::Status StorageClient::Put(const StorageEntry& entry) const {
  pb::StoragePutArgs args;
  args.mutable_entry()->set_key(entry.key);
  args.mutable_entry()->set_value(entry.value);
  args.mutable_entry()->set_seal_wrap(entry.seal_wrap);
  ASSIGN_OR_RETURN(pb::StoragePutReply reply,
                   CallStorage<pb::StoragePutReply>(*connection_, kStoragePutMethod, args,
                                                    What("put", entry.key)));
  if (!reply.err().empty()) return HostError(reply.err());
  return absl::OkStatus();
}

absl::Status StorageClient::Put(absl::string_view key, absl::string_view value) const {
  return Put(StorageEntry{std::string(key), std::string(value), false});
}

absl::Status StorageClient::Delete(absl::string_view key) const {
  pb::StorageDeleteArgs args;
  args.set_key(std::string(key));
  ASSIGN_OR_RETURN(pb::StorageDeleteReply reply,
                   CallStorage<pb::StorageDeleteReply>(*connection_, kStorageDeleteMethod, args,
                                                       What("delete", key)));
  if (!reply.err().empty()) return HostError(reply.err());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> StorageClient::List(absl::string_view prefix) const {
  pb::StorageListArgs args;
  args.set_prefix(std::string(prefix));
  ASSIGN_OR_RETURN(pb::StorageListReply reply,
                   CallStorage<pb::StorageListReply>(*connection_, kStorageListMethod, args,
                                                     What("list", prefix)));
  if (!reply.err().empty()) return HostError(reply.err());
  return std::vector<std::string>(reply.keys().begin(), reply.keys().end());
}

}  // namespace bulwark::sdk
