// Serves a backend plugin over go-plugin's gRPC protocol, so that Vault, any go-plugin host
// (v1.0.1 and later) and bulwark's host can launch it. A plugin's main() is:
//
//   int main() {
//     bulwark::sdk::ServeOptions options;
//     options.plugin_name = "kv";
//     options.plugin_version = "v0.1.0";
//     return bulwark::sdk::ServeBackend(MyBackendFactory(), std::move(options));
//   }
//
// What ServeBackend does, in order (go-plugin server.go `Serve`, Vault sdk/plugin/serve.go):
//   1. Checks the magic cookie (VAULT_BACKEND_PLUGIN by default). A mismatch prints go-plugin's
//      "This binary is a plugin. These are not meant to be executed directly..." to stderr and
//      returns 1. Nothing is ever printed to stdout before the handshake line.
//   2. Reads the environment (serve_config.h): PLUGIN_PROTOCOL_VERSIONS (highest common
//      version; none: error, returns 1), PLUGIN_CLIENT_CERT (AutoMTLS), socket directory,
//      VAULT_PLUGIN_MLOCK_ENABLED=true (mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT); failure
//      returns 1), VAULT_PLUGIN_METADATA_MODE.
//   3. Raises its soft open-file limit to the hard one (as Go does), ignores SIGINT and SIGPIPE;
//   exits when the parent dies (PR_SET_PDEATHSIG plus a getppid
//      check, since the death signal also fires when only the forking thread ends); treats
//      SIGTERM as a request to shut down.
//   4. Listens on a unix socket "plugin<random>" in PLUGIN_UNIX_SOCKET_DIR, else $TMPDIR, else
//      /tmp (group and mode 0660 from PLUGIN_UNIX_SOCKET_GROUP). Only if that fails (path too
//      long, directory missing), on TCP 127.0.0.1 in PLUGIN_MIN_PORT..PLUGIN_MAX_PORT.
//   5. With AutoMTLS: a fresh P-256 self-signed certificate (CN/SAN localhost); clients must
//      present a certificate signed by exactly PLUGIN_CLIENT_CERT. Without it, when
//      VAULT_UNWRAP_TOKEN is set and not in metadata mode (Vault's legacy TLS): the certificate
//      and key are unwrapped once from the host (sdk/unwrap.h; failure returns 1) and serve
//      TLS; the host, presenting the same certificate, is the only client accepted.
//   6. Serves grpc.health.v1.Health ("plugin" and "" SERVING), plugin.GRPCBroker (the host's
//      ConnInfo announcements, dialed on Setup), plugin.GRPCController/Shutdown (graceful stop,
//      then ServeBackend returns 0), plugin.GRPCStdio/StreamStdio (kept open, sends nothing:
//      the plugin's stdout/stderr stay the real descriptors, which go-plugin hosts read
//      directly), and pb.Backend, pluginutil.multiplexing.PluginMultiplexing and
//      logical.PluginVersion through a BackendDispatcher (multiplex id from the "multiplex_id"
//      call metadata). Backend calls are served with gRPC's completion-queue API: the thread
//      that wakes with a call's request runs the backend and writes the reply; backend code
//      never runs on gRPC's callback threads, which keep serving health, the controller and
//      the broker while backend calls block. Health answers carry bulwark's shared-host-
//      connection declaration (ServeOptions::shared_host_connection), which go-plugin ignores.
//   7. Prints exactly one handshake line to stdout and flushes:
//      "1|5|unix|/tmp/plugin123|grpc|<base64 DER or empty>" plus "|false" when the host set
//      PLUGIN_MULTIPLEX_GRPC (broker multiplexing is not supported; a host that requires it
//      then refuses the plugin clearly).
//   8. Logs hclog JSON lines to stderr ("@module" = plugin_name); never request data.
//   9. On shutdown: stops accepting calls, lets calls in flight finish for `shutdown_grace`,
//      then cancels the rest (including host calls and broker waits), removes the socket file,
//      and returns the exit code: 0 after GRPCController.Shutdown or SIGTERM, 1 when the parent
//      died or anything failed before serving.
//
// Call it from main() before starting threads of your own. It returns only at process end
// (once per process).
#ifndef BULWARK_SDK_SERVE_H_
#define BULWARK_SDK_SERVE_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "base/log/log.h"
#include "protocol/tls_certs.h"
#include "sdk/backend.h"
#include "sdk/database.h"
#include "sdk/dispatcher.h"
#include "sdk/serve_config.h"

namespace bulwark::sdk {

// Most dispatch threads and queued calls ServeOptions accepts.
inline constexpr size_t kDispatchThreadsMax = 256;
inline constexpr size_t kDispatchQueueMax = 1 << 16;

struct ServeOptions {
  // The hclog "@module" of every log line; Vault shows plugin logs under the binary's name.
  std::string plugin_name = "plugin";
  // Reported by logical.PluginVersion ("v1.2.3"; "" = unversioned).
  std::string plugin_version;
  // Serve one instance per multiplex id (Vault's ServeMultiplex) or a single one (Serve).
  bool multiplexing = true;
  // At most this many instances (mounts) at once, 1..kInstancesMax; Setup beyond it fails with
  // RESOURCE_EXHAUSTED naming the limit.
  size_t max_instances = kInstancesDefaultMax;
  // Declare bulwark's shared host connection (protocol/wire_names.h) in health answers: a
  // bulwark host then serves every instance's storage over one connection instead of one per
  // instance (~1 KiB per mount instead of ~130 KiB; docs/performance.md, "Multiplexed mounts").
  // go-plugin and Vault hosts ignore it. Off: one brokered connection per instance always.
  bool shared_host_connection = true;
  // The app-protocol versions this plugin speaks; Vault backends use 5.
  std::vector<int> protocol_versions = {kVaultBackendProtocolVersion};
  std::string magic_cookie_key = std::string(kVaultBackendCookieKey);
  std::string magic_cookie_value = std::string(kVaultBackendCookieValue);

  // Backend calls that may run at once (each on the thread that received it), and how many
  // calls may wait for one to finish (beyond it a call fails with RESOURCE_EXHAUSTED). Setup
  // can hold a thread for up to broker_dial_timeout.
  size_t dispatch_threads = 8;
  size_t dispatch_queue_max = 1024;
  // How long Setup waits for the host's broker announcement and connection (go-plugin: 5 s).
  absl::Duration broker_dial_timeout = absl::Seconds(5);
  // Deadline of each call to the host's services (storage).
  absl::Duration host_call_timeout = absl::Seconds(30);
  // How long calls in flight may finish after a shutdown request. go-plugin hosts kill the
  // plugin 2 s after asking it to stop, so keep this well below that.
  absl::Duration shutdown_grace = absl::Seconds(1);
  // Records below this level are not written.
  LogLevel log_level = LogLevel::kDebug;
  // Where the environment comes from; null means the process environment.
  EnvLookup env;
  // Makes the AutoMTLS certificate (and key) the plugin serves with, given the current time.
  // Null, as every plugin should leave it: a fresh go-plugin-profile certificate on P-256 per
  // start. Tests set it to serve a deliberately different one (the conformance fixtures).
  std::function<absl::StatusOr<protocol::SelfSignedCert>(absl::Time now)> automtls_certificate;
};

// Serves `factory`'s backends until the host shuts the plugin down; returns the process exit
// code (see the top of this file). Invalid options (empty protocol_versions, thread or queue
// counts out of range) are reported like any startup error: a log line, then 1.
int ServeBackend(BackendFactory factory, ServeOptions options);

// --- Database plugins --------------------------------------------------------------------------
//
//   int main() {
//     bulwark::sdk::ServeOptions options = bulwark::sdk::DatabaseServeOptions();
//     options.plugin_name = "userdb";
//     return bulwark::sdk::ServeDatabase(MyDatabaseFactory(), std::move(options));
//   }

// ServeOptions for a database plugin: Vault's VAULT_DATABASE_PLUGIN cookie and protocol
// versions {5, 6} (Vault's dbplugin ServeMultiplex: 5 = one database per process, 6 = one per
// multiplex id). Everything else as ServeOptions' defaults.
ServeOptions DatabaseServeOptions();

// Serves `factory`'s databases (dbplugin.v5.Database, logical.PluginVersion and, under
// protocol 6, pluginutil.multiplexing.PluginMultiplexing) with exactly ServeBackend's process
// behaviour (steps 1-9 above). Multiplexing is on when options.multiplexing and the host
// negotiated version 6; with options.multiplexing false, version 6 is not offered. The broker
// is served as go-plugin always does, but databases do not use it. Returns the exit code.
int ServeDatabase(DatabaseFactory factory, ServeOptions options);

}  // namespace bulwark::sdk

#endif  // BULWARK_SDK_SERVE_H_
