// An author's plugin executable: whatever backend the author wrote, served with bulwark's SDK.
#include <utility>

#include "examples/kv/kv_backend.h"
#include "sdk/serve.h"

int main() {
  bulwark::sdk::ServeOptions options;
  options.plugin_name = "my-plugin";
  options.plugin_version = "v1.0.0";
  return bulwark::sdk::ServeBackend(bulwark::examples::kv::KvBackendFactory(), std::move(options));
}
