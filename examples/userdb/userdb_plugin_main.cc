// The userdb plugin executable: Vault (or any go-plugin host) launches it as a database plugin;
// run by hand it prints go-plugin's "This binary is a plugin" notice.
//
// One operator command, for the root user the database engine logs in as (a real database has
// its own tools for this): `userdb_plugin create-user DIR USERNAME` reads the password from the
// first line of stdin (never from the command line, where other users could see it).
#include <iostream>
#include <string>
#include <utility>

#include "base/env/posix/posix_file_system.h"
#include "base/env/posix/posix_random.h"
#include "examples/userdb/userdb.h"
#include "sdk/serve.h"

namespace {

int CreateUser(bulwark::FileSystem& fs, bulwark::Random& random, const std::string& dir,
               const std::string& username) {
  std::string password;
  std::getline(std::cin, password);
  bulwark::examples::userdb::UserDb db(fs, random, nullptr);
  bulwark::sdk::InitializeRequest init;
  init.config = {{"connection_url", dir}};
  init.verify_connection = true;
  absl::Status s = db.Initialize(init).status();
  if (s.ok()) s = db.CreateUser(username, password);
  if (!s.ok()) {
    std::cerr << "userdb_plugin create-user: " << s.message() << "\n";
    return 1;
  }
  std::cout << "created user " << username << " in " << dir << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  static bulwark::PosixFileSystem fs;
  static bulwark::PosixRandom random;
  if (argc >= 2 && std::string(argv[1]) == "create-user") {
    if (argc != 4) {
      std::cerr << "usage: userdb_plugin create-user DIR USERNAME  (password on stdin)\n";
      return 2;
    }
    return CreateUser(fs, random, argv[2], argv[3]);
  }
  bulwark::sdk::ServeOptions options = bulwark::sdk::DatabaseServeOptions();
  options.plugin_name = "userdb";
  options.plugin_version = "v0.1.0";
  return bulwark::sdk::ServeDatabase(bulwark::examples::userdb::UserDbFactory(fs, random),
                                     std::move(options));
}
