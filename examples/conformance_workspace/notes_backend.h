// notes: a small secrets engine written with bulwark's C++ SDK. Each path below the mount holds
// one note, a string: write {"value": "..."} to it, read it back, list a folder, delete it.
#ifndef NOTES_BACKEND_H_
#define NOTES_BACKEND_H_

#include <cstddef>
#include <memory>
#include <string>

#include "sdk/backend.h"

namespace notes {

namespace sdk = bulwark::sdk;

// The longest note accepted. Everything a request can make grow has a named limit.
inline constexpr size_t kNoteBytesMax = 64 * 1024;

// One object per mount. Requests arrive on several threads at once: the only state is the
// storage client, which is thread-safe, so nothing here needs a lock.
class NotesBackend final : public sdk::Backend {
 public:
  explicit NotesBackend(const sdk::BackendConfig& config);

  sdk::HandleResult HandleRequest(const sdk::Request& request) override;

 private:
  sdk::HandleResult Read(const std::string& name);
  sdk::HandleResult Write(const std::string& name, const nlohmann::json& data);
  sdk::HandleResult Delete(const std::string& name);
  sdk::HandleResult List(const std::string& folder);

  // The host's storage for this mount: encrypted behind its barrier, confined to this mount.
  const std::shared_ptr<sdk::StorageClient> storage_;
};

// What ServeBackend calls for every new mount (pb.Backend/Setup).
sdk::BackendFactory NotesFactory();

}  // namespace notes

#endif  // NOTES_BACKEND_H_
