// The kv plugin with the SDK's largest instance cap (sdk::kInstancesMax instead of the default
// 4096), for the multiplexing run of plugin_protocol_benchmark (--mounts=1,100,1000), and a
// broker dial deadline long enough for a plugin and a host that both run under callgrind or
// massif on a busy machine (plugin_callgrind.sh). Otherwise the same as //examples/kv:kv_plugin.
#include <utility>

#include "absl/time/time.h"
#include "examples/kv/kv_backend.h"
#include "sdk/dispatcher.h"
#include "sdk/serve.h"

int main() {
  bulwark::sdk::ServeOptions options;
  options.plugin_name = "kv";
  options.plugin_version = "v0.1.0";
  options.multiplexing = true;
  options.max_instances = bulwark::sdk::kInstancesMax;
  options.broker_dial_timeout = absl::Minutes(2);
  return bulwark::sdk::ServeBackend(bulwark::examples::kv::KvBackendFactory(), std::move(options));
}
