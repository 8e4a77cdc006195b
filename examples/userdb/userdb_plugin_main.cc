// The userdb plugin executable: Vault (or any go-plugin host) launches it as a database plugin;
// run by hand it prints go-plugin's "This binary is a plugin" notice.
#include <utility>

#include "base/env/posix/posix_file_system.h"
#include "base/env/posix/posix_random.h"
#include "examples/userdb/userdb.h"
#include "sdk/serve.h"

int main() {
  static bulwark::PosixFileSystem fs;
  static bulwark::PosixRandom random;
  bulwark::sdk::ServeOptions options = bulwark::sdk::DatabaseServeOptions();
  options.plugin_name = "userdb";
  options.plugin_version = "v0.1.0";
  return bulwark::sdk::ServeDatabase(bulwark::examples::userdb::UserDbFactory(fs, random),
                                     std::move(options));
}
