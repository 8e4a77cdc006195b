// The notes engine: one storage call per request, after checking what the client sent.
#include "notes_backend.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace notes {

NotesBackend::NotesBackend(const sdk::BackendConfig& config) : storage_(config.storage) {}

sdk::HandleResult NotesBackend::HandleRequest(const sdk::Request& request) {
  // The path is relative to the mount: "shopping" for a request to notes/shopping.
  const std::string& path = request.path();
  const sdk::Operation operation = request.operation();
  if (operation == sdk::Operation::kList) return List(path);
  if (operation != sdk::Operation::kRead && operation != sdk::Operation::kCreate &&
      operation != sdk::Operation::kUpdate && operation != sdk::Operation::kDelete) {
    // Vault answers 405.
    return sdk::UnsupportedOperationError("notes supports read, create, update, delete and list");
  }
  if (path.empty() || absl::EndsWith(path, "/")) {
    // Vault answers 404 with this text.
    return sdk::UnsupportedPathError("a note lives at <mount>/<name>; a folder can only be listed");
  }
  if (operation == sdk::Operation::kRead) return Read(path);
  if (operation == sdk::Operation::kDelete) return Delete(path);
  return Write(path, request.data());
}

sdk::HandleResult NotesBackend::Read(const std::string& name) {
  ASSIGN_OR_RETURN(std::optional<sdk::StorageEntry> entry, storage_->Get(name));
  if (!entry.has_value()) return std::optional<sdk::Response>();  // No response: Vault's 404.
  return sdk::Response::WithData({{"value", entry->value}});
}

sdk::HandleResult NotesBackend::Write(const std::string& name, const nlohmann::json& data) {
  const auto value = data.find("value");
  if (data.size() != 1 || value == data.end() || !value->is_string()) {
    // A logical error: the client gets a 400 with this text. Never quote the data: it is secret.
    return sdk::InvalidRequestError("write one field, \"value\", holding a string");
  }
  const std::string& note = value->get_ref<const std::string&>();
  if (note.size() > kNoteBytesMax) {
    return sdk::CodedError(413, absl::StrCat("a note holds at most ", kNoteBytesMax, " bytes"));
  }
  // A storage error goes back unchanged: Vault forwards a write refused by a standby's storage.
  RETURN_IF_ERROR(storage_->Put(name, note));
  return std::optional<sdk::Response>();  // No response: Vault's 204.
}

sdk::HandleResult NotesBackend::Delete(const std::string& name) {
  RETURN_IF_ERROR(storage_->Delete(name));  // Deleting a note that is not there is fine.
  return std::optional<sdk::Response>();
}

sdk::HandleResult NotesBackend::List(const std::string& folder) {
  // "" is the mount's root; Vault sends a folder with its trailing '/' ("work/").
  std::string prefix = folder;
  if (!prefix.empty() && !absl::EndsWith(prefix, "/")) prefix += "/";
  ASSIGN_OR_RETURN(std::vector<std::string> keys, storage_->List(prefix));
  // Vault's list reply: the names directly under the folder, sub-folders with a trailing '/'.
  return sdk::Response::WithData({{"keys", std::move(keys)}});
}

sdk::BackendFactory NotesFactory() {
  return [](const sdk::BackendConfig& config) -> absl::StatusOr<std::unique_ptr<sdk::Backend>> {
    return std::make_unique<NotesBackend>(config);
  };
}

}  // namespace notes
