// Test fixtures for the plugin catalog (see catalog_test_util.h).
#include "core/catalog/catalog_test_util.h"

#include <utility>

#include "base/crypto/sha256.h"
#include "base/env/file_system.h"
#include "base/status/check.h"

namespace bulwark::catalog::testing {

std::string Sha256Hex(absl::string_view contents) {
  return crypto::HexEncode(crypto::Sha256::Hash(contents));
}

SimWorld::SimWorld(uint64_t seed) : random_(seed), fs_(random_) {
  CHECK_OK(fs_.CreateDir(kPluginDir, 0755));
  CHECK_OK(fs_.SyncDir("/"));
}

std::string SimWorld::AddPlugin(absl::string_view relative, absl::string_view contents,
                                uint32_t mode) {
  CHECK_OK(fs_.WriteFileDurably(JoinPath(kPluginDir, relative), contents, mode));
  return Sha256Hex(contents);
}

CatalogOptions SimWorld::Options(std::vector<BuiltinPlugin> builtins) const {
  CatalogOptions options;
  options.plugin_directory = std::string(kPluginDir);
  options.builtins = std::move(builtins);
  return options;
}

std::unique_ptr<Catalog> SimWorld::OpenCatalog(CatalogOptions options) {
  absl::StatusOr<std::unique_ptr<Catalog>> catalog =
      Catalog::Open(storage_, fs_, std::move(options));
  CHECK_OK(catalog);
  return std::move(*catalog);
}

RegisterRequest MakeRequest(PluginType type, absl::string_view name, absl::string_view version,
                            absl::string_view command, absl::string_view sha256,
                            std::vector<std::string> args, std::vector<std::string> env) {
  RegisterRequest request;
  request.type = type;
  request.name = std::string(name);
  request.version = std::string(version);
  request.command = std::string(command);
  request.sha256 = std::string(sha256);
  request.args = std::move(args);
  request.env = std::move(env);
  return request;
}

}  // namespace bulwark::catalog::testing
