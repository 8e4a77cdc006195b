// Test fixtures for the plugin catalog: a plugin directory in a SimFileSystem, an in-memory
// Storage, and helpers to write artifacts and build registration requests.
#ifndef BULWARK_CORE_CATALOG_CATALOG_TEST_UTIL_H_
#define BULWARK_CORE_CATALOG_CATALOG_TEST_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/env/random.h"
#include "base/env/sim/sim_file_system.h"
#include "base/storage/in_memory_storage.h"
#include "core/catalog/catalog.h"

namespace bulwark::catalog::testing {

inline constexpr absl::string_view kPluginDir = "/plugins";

// The lower-case hex SHA-256 of `contents`.
std::string Sha256Hex(absl::string_view contents);

// A simulated world for one catalog: /plugins (mode 0755) in a SimFileSystem and an empty
// InMemoryStorage.
class SimWorld {
 public:
  explicit SimWorld(uint64_t seed = 1);

  // Writes /plugins/<relative> (mode `mode`) with `contents`; returns its SHA-256 hex.
  // Aborts on failure (test setup).
  std::string AddPlugin(absl::string_view relative, absl::string_view contents,
                        uint32_t mode = 0755);

  // Options with plugin_directory /plugins and the given built-ins.
  CatalogOptions Options(std::vector<BuiltinPlugin> builtins = {}) const;

  // Opens a catalog over this world's storage and file system. Aborts on failure.
  std::unique_ptr<Catalog> OpenCatalog(CatalogOptions options);

  SeededRandom& random() { return random_; }
  sim::SimFileSystem& fs() { return fs_; }
  InMemoryStorage& storage() { return storage_; }

 private:
  SeededRandom random_;
  sim::SimFileSystem fs_;
  InMemoryStorage storage_;
};

RegisterRequest MakeRequest(PluginType type, absl::string_view name, absl::string_view version,
                            absl::string_view command, absl::string_view sha256,
                            std::vector<std::string> args = {}, std::vector<std::string> env = {});

}  // namespace bulwark::catalog::testing

#endif  // BULWARK_CORE_CATALOG_CATALOG_TEST_UTIL_H_
