// The kv plugin executable: a host (Vault, a go-plugin host, bulwark) launches it with the
// go-plugin environment; run by hand it prints go-plugin's "This binary is a plugin" notice.
#include <utility>

#include "examples/kv/kv_backend.h"
#include "sdk/serve.h"

int main() {
  bulwark::sdk::ServeOptions options;
  options.plugin_name = "kv";
  options.plugin_version = "v0.1.0";
  options.multiplexing = true;
  return bulwark::sdk::ServeBackend(bulwark::examples::kv::KvBackendFactory(), std::move(options));
}
