// The plugin executable: serves the notes engine over go-plugin's protocol, so Vault, bulwark
// or any go-plugin host can launch it.
#include <utility>

#include "notes_backend.h"
#include "sdk/serve.h"

int main() {
  bulwark::sdk::ServeOptions options;
  options.plugin_name = "notes";
  options.plugin_version = "v1.0.0";
  options.multiplexing = true;  // One process may serve many mounts.
  return bulwark::sdk::ServeBackend(notes::NotesFactory(), std::move(options));
}
