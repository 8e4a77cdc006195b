// The kv plugin with the SDK's largest instance cap (sdk::kInstancesMax instead of the default
// 64), for the multiplexing run of plugin_protocol_benchmark (--mounts=1,100,1000): one plugin
// process serving a thousand mounts. Otherwise the same as //examples/kv:kv_plugin.
#include <utility>

#include "examples/kv/kv_backend.h"
#include "sdk/dispatcher.h"
#include "sdk/serve.h"

int main() {
  bulwark::sdk::ServeOptions options;
  options.plugin_name = "kv";
  options.plugin_version = "v0.1.0";
  options.multiplexing = true;
  options.max_instances = bulwark::sdk::kInstancesMax;
  return bulwark::sdk::ServeBackend(bulwark::examples::kv::KvBackendFactory(), std::move(options));
}
