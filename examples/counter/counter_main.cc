// The counter plugin executable: serves the counter engine over go-plugin's protocol.
#include <utility>

#include "examples/counter/counter_backend.h"
#include "sdk/serve.h"

int main() {
  bulwark::sdk::ServeOptions options;
  options.plugin_name = "counter";
  options.plugin_version = "v0.1.0";
  options.multiplexing = true;
  return bulwark::sdk::ServeBackend(bulwark::examples::counter::CounterFactory(),
                                    std::move(options));
}
