// The PostgreSQL plugin executable: Vault (or any go-plugin host) launches it as a database
// plugin, multiplexed (protocol 6) like Vault's builtin; run by hand it prints go-plugin's
// "This binary is a plugin" notice.
#include <utility>

#include "base/env/posix/posix_clock.h"
#include "base/env/posix/posix_random.h"
#include "examples/postgres/postgres.h"
#include "sdk/serve.h"

int main() {
  static bulwark::PosixClock clock;
  static bulwark::PosixRandom random;
  bulwark::sdk::ServeOptions options = bulwark::sdk::DatabaseServeOptions();
  options.plugin_name = "postgres";
  options.plugin_version = "v0.1.0";
  return bulwark::sdk::ServeDatabase(bulwark::examples::postgres::PostgresFactory(clock, random),
                                     std::move(options));
}
