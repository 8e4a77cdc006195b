// The suite's host: launches the plugin under test exactly as a go-plugin/Vault host would (or
// deliberately not, for negative tests), reads its handshake, dials it with mutual TLS, serves
// pb.Storage over the broker, and makes every RPC with a deadline. Tests use it instead of
// talking to gRPC themselves, so every profile gets the same diagnostics.
//
// Ownership of this header: the suite's harness. Tests may rely on everything declared here.
#ifndef BULWARK_CONFORMANCE_SUITE_HARNESS_H_
#define BULWARK_CONFORMANCE_SUITE_HARNESS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/goplugin/grpc_broker.grpc.pb.h"
#include "proto/goplugin/grpc_controller.grpc.pb.h"
#include "proto/goplugin/grpc_stdio.grpc.pb.h"
#include "proto/health/health.grpc.pb.h"
#include "proto/vault/backend.grpc.pb.h"
#include "protocol/handshake.h"
#include "sdk/in_memory_host.h"
#include "sdk/testing/plugin_process.h"

namespace bulwark::conformance {

// How one launch differs from a correct host's. The defaults are a correct Vault host: the
// manifest type's magic cookie, PLUGIN_PROTOCOL_VERSIONS from the manifest, AutoMTLS with a
// fresh P-256 host identity, a fresh short socket directory, VAULT_* variables, manifest env.
struct LaunchOptions {
  bool automtls = true;
  bool omit_cookie = false;                      // Leave the cookie variable out entirely.
  std::optional<std::string> cookie_value;       // Set the cookie variable to this instead.
  std::optional<std::string> protocol_versions;  // PLUGIN_PROTOCOL_VERSIONS value instead.
  std::vector<std::string> extra_env;            // Appended last ("K=V"; later entries win).
  bool via_intermediate = false;                 // See sdk::testing::PluginProcess::Start.
  // The host identity in PLUGIN_CLIENT_CERT is expired (a plugin MUST refuse it when the
  // suite then presents it).
  bool host_identity_expired = false;
  // Use this existing directory as PLUGIN_UNIX_SOCKET_DIR (and TMPDIR) instead of a fresh one;
  // the harness does not remove it. For relaunch tests that reuse a killed plugin's directory.
  std::optional<std::string> socket_dir;
  // Execute this open descriptor (execveat with AT_EMPTY_PATH, >= 3, still the caller's) instead
  // of the plugin's path, which stays argv[0]: how bulwark runs a catalog entry's sealed memfd
  // copy. For the signed-launch check.
  int executable_fd = -1;
};

// A host-side client identity (certificate + key, PEM). Launch uses a fresh P-256 one.
struct TlsIdentity {
  std::string cert_pem;
  std::string key_pem;
};
// A fresh go-plugin-profile P-256 identity valid from now-30s for ~30 years; with `expired`,
// valid for one hour ending a day ago.
absl::StatusOr<TlsIdentity> NewTlsIdentity(bool expired = false);

// Which certificate the suite presents when dialing the plugin.
enum class ClientCert {
  kLaunchIdentity,  // The one passed in PLUGIN_CLIENT_CERT: what a correct host presents.
  kNone,            // No client certificate.
  kOtherCa,         // A self-signed certificate the plugin was never told about.
};

// One launched (or attached) plugin process and the suite's connection to it.
class PluginUnderTest {
 public:
  // Starts the plugin binary (Config().plugin_path, plugin_args) with the environment built
  // from `options`. Does not read the handshake. Errors: kFailedPrecondition in attach mode.
  static absl::StatusOr<std::unique_ptr<PluginUnderTest>> Launch(const LaunchOptions& options = {});
  // Launch(), then ReadHandshake() and Connect(): a ready plugin. In attach mode, connects to
  // the attach target instead. Errors carry the plugin's stderr tail.
  static absl::StatusOr<std::unique_ptr<PluginUnderTest>> Start(const LaunchOptions& options = {});

  // Kills (SIGKILL) and reaps the process if it still runs, shuts the suite's servers down,
  // and calls NotePluginStderr with everything the plugin wrote.
  ~PluginUnderTest();

  // --- Process -------------------------------------------------------------------------------
  bool attached() const;
  pid_t pid() const;                         // -1 in attach mode.
  const std::string& socket_dir() const;     // The PLUGIN_UNIX_SOCKET_DIR given to it.
  const TlsIdentity& host_identity() const;  // What PLUGIN_CLIENT_CERT carried.
  sdk::testing::PluginProcess* process();    // nullptr in attach mode.
  std::string stdout_text() const;
  std::string stderr_text() const;
  // Waits for the process to exit (Config().rpc_timeout unless given).
  absl::StatusOr<sdk::testing::ProcessExitStatus> WaitForExit(
      std::optional<absl::Duration> timeout = std::nullopt);
  int Signal(int signal_number);

  // --- Handshake -----------------------------------------------------------------------------
  // The first stdout line within Config().launch_timeout (kDeadlineExceeded, or kUnavailable
  // when the plugin exited first), and the time from exec to that line.
  absl::StatusOr<std::string> ReadHandshakeLine();
  absl::Duration time_to_handshake() const;
  // Reads (if not yet read) and strictly parses the line, accepting the versions the launch
  // offered. Errors: kInvalidArgument naming the bad field.
  absl::StatusOr<protocol::HandshakeLine> ReadHandshake();
  const protocol::HandshakeLine& handshake() const;  // After a successful ReadHandshake.

  // --- Connection ----------------------------------------------------------------------------
  // Dials the handshake's address presenting `cert`, trusting exactly the handshake's
  // certificate (server name "localhost"); plaintext when the handshake carries none. Waits for
  // the channel to be ready within Config().rpc_timeout. Errors: kUnavailable /
  // kUnauthenticated / kDeadlineExceeded with gRPC's explanation.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(
      ClientCert cert = ClientCert::kLaunchIdentity);
  // Dial() with the launch identity, then what go-plugin's client does right after: opens the
  // broker stream (plugin.GRPCBroker/StartStream) and the stdio stream.
  absl::Status Connect();
  std::shared_ptr<grpc::Channel> channel() const;  // After Connect.

  // A client context with the RPC deadline (Config().rpc_timeout unless given) and, when not
  // empty, the "multiplex_id" metadata.
  std::unique_ptr<grpc::ClientContext> NewContext(
      const std::string& multiplex_id = "", std::optional<absl::Duration> timeout = std::nullopt);

  // grpc.health.v1.Health/Check for `service`; returns the serving status.
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> HealthCheck(
      const std::string& service = "plugin");
  // The same on another channel (e.g. one from Dial with a deviating client certificate).
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> HealthCheckOn(
      const std::shared_ptr<grpc::Channel>& channel, const std::string& service = "plugin");
  // plugin.GRPCController/Shutdown.
  absl::Status Shutdown();
  // Lines received so far on the GRPCStdio stream (stdout and stderr channels; a final line
  // without '\n' included).
  std::vector<std::string> StdioLines() const;
  // How the plugin ended Connect's GRPCStdio stream (nullopt while it is open), e.g.
  // kUnimplemented from go-plugin v1.0.1 plugins.
  std::optional<absl::Status> StdioStreamEnd() const;
  // Opens one more GRPCStdio stream and holds it for `hold`: OK if the plugin kept it open (or
  // sent data) for that long, else the status with which the plugin ended it.
  absl::Status ProbeStdio(absl::Duration hold);

  // --- Broker and host storage ---------------------------------------------------------------
  // Starts a pb.Storage server over a fresh InMemoryHostStorage (TLS: the host identity as server
  // certificate, the plugin's certificate as the only client CA, client certificate required),
  // announces it on the broker stream under a new broker id, and returns the id. With `storage`,
  // serves that one instead: a host whose storage outlives plugin restarts (the chaos run).
  absl::StatusOr<uint32_t> OfferStorage(
      std::shared_ptr<sdk::InMemoryHostStorage> storage = nullptr);
  // The storage behind broker id `broker_id` (nullptr if none).
  sdk::InMemoryHostStorage* storage(uint32_t broker_id);

  // --- pb.Backend ----------------------------------------------------------------------------
  pb::Backend::Stub& backend();  // After Connect.
  // OfferStorage, then pb.Backend/Setup{broker_id, backenduuid, config} under `multiplex_id`.
  // Returns the broker id. A non-empty SetupReply.err becomes kFailedPrecondition.
  // `storage` as for OfferStorage.
  absl::StatusOr<uint32_t> SetupBackend(
      const std::string& multiplex_id = "", std::map<std::string, std::string> config = {},
      std::shared_ptr<sdk::InMemoryHostStorage> storage = nullptr);
  // pb.Backend/HandleRequest with operation/path and `data_json` (a JSON object) as
  // Request.data, under `multiplex_id`. The reply as received (its err field unexamined).
  absl::StatusOr<pb::HandleRequestReply> HandleRequest(const std::string& multiplex_id,
                                                       const std::string& operation,
                                                       const std::string& path,
                                                       const std::string& data_json = "");

  // Converts a gRPC status to absl::Status with the same code and message.
  static absl::Status FromGrpc(const grpc::Status& status);

 private:
  PluginUnderTest() = default;
  struct State;
  std::unique_ptr<State> state_;
};

// Resident set size of `pid` in KiB (VmRSS from /proc/<pid>/status).
absl::StatusOr<uint64_t> ResidentKib(pid_t pid);

// Connects to `handshake`'s address with a raw socket and tries a TLS handshake with OpenSSL
// allowing at most `max_tls_version` (TLS1_VERSION, TLS1_1_VERSION, ...; security level 0 so the
// client really offers old versions), presenting `client` (if non-empty) and not verifying the
// server. Returns the negotiated version name ("TLSv1.1") when the plugin accepted the handshake;
// kUnavailable / kPermissionDenied with OpenSSL's reason when it refused; kDeadlineExceeded when
// it neither accepted nor refused within `timeout`.
absl::StatusOr<std::string> TryTlsHandshake(const protocol::HandshakeLine& handshake,
                                            int max_tls_version, const TlsIdentity& client,
                                            absl::Duration timeout);

// Watches the child processes a process has right now (by pidfd, so a recycled pid is never
// mistaken for a survivor). For "no child outlives the plugin" checks.
class ChildProcessWatch {
 public:
  // Every process whose parent is `parent` now (from /proc/<pid>/stat).
  static ChildProcessWatch Of(pid_t parent);
  ~ChildProcessWatch();
  ChildProcessWatch(ChildProcessWatch&& other) noexcept;
  ChildProcessWatch& operator=(ChildProcessWatch&&) = delete;
  ChildProcessWatch(const ChildProcessWatch&) = delete;

  const std::vector<pid_t>& pids() const { return pids_; }
  // Waits up to `timeout` for every watched child to exit; returns those still running (reaping
  // the ones that became this process's zombies as a child subreaper).
  std::vector<pid_t> StillRunningAfter(absl::Duration timeout);

 private:
  ChildProcessWatch() = default;
  std::vector<pid_t> pids_;
  std::vector<int> pidfds_;
};

}  // namespace bulwark::conformance

#endif  // BULWARK_CONFORMANCE_SUITE_HARNESS_H_
