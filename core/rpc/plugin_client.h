// PluginClient: one launched plugin process and the core's connection to it — launch in a
// private directory, read and check the go-plugin handshake line, connect through the
// PluginTransport, route the plugin's output to a LogSink, report its exit, shut it down.
// Pure core logic on the Env: no gRPC, no OpenSSL, no threads, never blocks.
#ifndef BULWARK_CORE_RPC_PLUGIN_CLIENT_H_
#define BULWARK_CORE_RPC_PLUGIN_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/env/env.h"
#include "base/env/plugin_transport.h"
#include "base/env/process_launcher.h"
#include "base/log/log.h"
#include "protocol/handshake.h"
#include "protocol/plugin_env.h"
#include "protocol/wire_names.h"

namespace bulwark::rpc {

// Defaults and bounds of PluginLaunchOptions.
inline constexpr absl::Duration kDefaultStartTimeout = absl::Minutes(1);  // go-plugin's default.
inline constexpr absl::Duration kDefaultConnectTimeout = absl::Seconds(10);
inline constexpr absl::Duration kDefaultShutdownGrace = absl::Seconds(2);  // go-plugin's Kill().
inline constexpr uint32_t kDefaultOutputLinesPerSecond = 100;
inline constexpr uint32_t kOutputLinesPerSecondMax = 1000000;
inline constexpr size_t kDefaultStderrTailLines = 8;
inline constexpr size_t kStderrTailLinesMax = 64;
// Each line kept in the stderr tail is cut to this many bytes.
inline constexpr size_t kStderrTailLineBytesMax = 512;
inline constexpr size_t kPluginNameBytesMax = 128;
// Room left in a unix socket path after the per-launch directory: '/' plus go-plugin's socket
// file name ("plugin" and up to 10 digits; v1.0.1 prints 9), with margin.
inline constexpr size_t kSocketFileNameBytesReserved = 24;
// Attempts at a fresh per-launch directory name before giving up (a collision of 48 random
// bits means something else is creating names there).
inline constexpr int kLaunchDirAttemptsMax = 4;
// Entries removed from a per-launch directory on cleanup (the plugin may leave temp files in
// its TMPDIR) and how deep cleanup descends; anything beyond is left and logged.
inline constexpr size_t kLaunchDirCleanupEntriesMax = 4096;
inline constexpr int kLaunchDirCleanupDepthMax = 8;

// Everything needed to launch one plugin process. Holds env values: never log it whole.
struct PluginLaunchOptions {
  // For messages and the log source ("plugin:<name>[<pid>]"). 1..kPluginNameBytesMax bytes,
  // no control characters.
  std::string plugin_name;
  // The open, verified artifact (catalog LaunchSpec::executable). Not owned; it is used only
  // during Start (Spawn runs the already-open file), so it need not outlive that call.
  const ExecutableFile* executable = nullptr;
  // argv[0] and arguments. Empty means {executable->path()}. Arguments may be secrets: they
  // never appear in messages.
  std::vector<std::string> argv;

  // Environment layers, as in PluginEnvInput (protocol/plugin_env.h). TMPDIR is removed from
  // host_env, and TMPDIR and PLUGIN_UNIX_SOCKET_DIR are set to the per-launch directory, so
  // that a plugin cannot be told (by the host's environment) to listen elsewhere; an entry env
  // TMPDIR is overridden too.
  std::vector<std::string> host_env;
  bool legacy_env_layering = false;
  std::vector<std::string> entry_env;  // The catalog entry's env: may hold secrets.
  std::vector<std::string> extra_env;
  // Vault's SDK variables. `automtls` and `mlock` below overwrite the fields of the same name.
  std::optional<protocol::VaultPluginEnv> vault;

  // go-plugin handshake configuration.
  std::string magic_cookie_key = std::string(protocol::kVaultBackendCookieKey);
  std::string magic_cookie_value = std::string(protocol::kVaultBackendCookieValue);
  std::vector<int> app_versions = {5};  // Offered in PLUGIN_PROTOCOL_VERSIONS.
  bool multiplex_grpc = false;          // PLUGIN_MULTIPLEX_GRPC; the 7th field is then required.
  std::optional<std::string> unix_socket_group;

  // AutoMTLS: a fresh ClientIdentity from the transport, its certificate in
  // PLUGIN_CLIENT_CERT, and the plugin's certificate from the handshake line required.
  bool automtls = true;
  // Vault's legacy plugin TLS, used when `automtls` is false and `vault` is set without
  // metadata_mode (Vault's VAULT_UNWRAP_TOKEN rule): the transport makes a shared identity
  // (NewSharedIdentity), `wrap_tls` wraps its certificate and key and returns the
  // response-wrapping token, which goes to the plugin in VAULT_UNWRAP_TOKEN; the host then
  // connects with TLS, trusting exactly the shared certificate under its CN, and the plugin's
  // handshake line must carry no certificate. Runs inside Start, on the executor; its error
  // fails the start. The token is never logged. Null in that configuration: BuildPluginEnv
  // refuses the missing token (kInvalidArgument).
  std::function<absl::StatusOr<std::string>(const SharedTlsMaterial& material)> wrap_tls;
  bool mlock = false;  // VAULT_PLUGIN_MLOCK_ENABLED (only with `vault`).

  // From Spawn to the handshake line (go-plugin's StartTimeout).
  absl::Duration start_timeout = kDefaultStartTimeout;
  // From the handshake line to a ready connection (passed to PluginTransport::Connect).
  absl::Duration connect_timeout = kDefaultConnectTimeout;
  size_t line_bytes_max = kLineBytesDefault;  // Output line cap, 1..kLineBytesMax.
  ResourceLimits limits;
  // The process's resource group (ProcessOptions::group_label, group_limits).
  std::string group_label;
  GroupLimits group_limits;

  // An existing absolute directory, private to the host, under which each launch makes its own
  // directory "plugin-<12 hex digits>" (mode 0700). Must be short enough for unix socket paths:
  // at most kUnixSocketPathBytesMax - kSocketFileNameBytesReserved - 20 bytes.
  std::string runtime_dir;

  // Where plugin output and this client's own records go; null discards them. Not owned; must
  // outlive the client.
  LogSink* log_sink = nullptr;
  // Plugin output lines logged per second (stderr, stdout after the handshake and GRPCStdio
  // together), 1..kOutputLinesPerSecondMax. Excess lines are counted and reported as one
  // "N lines of plugin output dropped" record per second.
  uint32_t output_lines_per_second = kDefaultOutputLinesPerSecond;
  // Last stderr lines kept for error messages, 0..kStderrTailLinesMax.
  size_t stderr_tail_lines = kDefaultStderrTailLines;
};

// One launched plugin process plus its connection. Single-threaded: every method must be called
// on the Env's executor thread, and every callback runs there, never inline from the call that
// caused it, so a callback may destroy the client.
//
// Lifecycle: Start -> (handshake, connect) -> running -> exited. Destroying the client at any
// point kills the process if it is still running, reaps it (the Process handle does that
// synchronously), closes the connection and removes the per-launch directory; callbacks that
// have not run by then never run.
//
// Shape note: Start returns the client at once and reports the outcome through `done` (rather
// than handing the client over in `done`), so that the caller owns it from the start and can
// cancel a launch by destroying it — no self-owned object that would leak, or leave a process
// behind, if the event loop stopped before the launch finished.
class PluginClient {
 public:
  using StartDone = absl::AnyInvocable<void(absl::Status status)>;

  // Launches the plugin described by `options`:
  //   1. makes the per-launch directory under options.runtime_dir (name from env.random);
  //   2. with automtls, gets a ClientIdentity from `transport` (with Vault's legacy TLS, a
  //      shared identity, whose material options.wrap_tls wraps into VAULT_UNWRAP_TOKEN);
  //   3. builds the environment with BuildPluginEnv (Vault's layering, TMPDIR and
  //      PLUGIN_UNIX_SOCKET_DIR set to the per-launch directory) and spawns through env.launcher;
  //   4. waits for the first stdout line and parses it with ParseHandshakeLine;
  //   5. connects through `transport` to the endpoint it announced.
  // `done` runs exactly once on the executor (never inside Start): OK when the connection is
  // ready (the process may have exited since; SetExitHandler reports that), or the error after
  // the process has been killed and reaped, the connection closed and the per-launch directory
  // (socket file included) removed. Destroying the client before then cancels the launch and
  // `done` never runs. `env`, `transport` and options.log_sink must outlive the client.
  //
  // Errors (messages name the plugin as 'name', quote plugin output with QuoteForError, and
  // never contain env values or arguments):
  //   kInvalidArgument     bad options (named), or what BuildPluginEnv or Spawn reject; a
  //                        first stdout line longer than options.line_bytes_max
  //   kFailedPrecondition  the first stdout line has no '|': "plugin 'kv' printed "hello" before
  //                        its handshake line"; the process exited with a code before its
  //                        handshake line ("exited with code 1 before its handshake line", plus
  //                        its last stderr lines; when it printed go-plugin's "This binary is a
  //                        plugin" message the error says the magic cookie did not match);
  //                        the handshake is incompatible (see ParseHandshakeLine), lacks the
  //                        multiplexing confirmation that was asked for, or has a certificate
  //                        exactly when AutoMTLS was not offered (or none when it was); the
  //                        process exited while the host was connecting
  //   kInvalidArgument / kUnimplemented  a malformed or non-gRPC handshake line (the parse
  //                        error, prefixed "plugin 'kv': ")
  //   kPermissionDenied    the handshake names a unix socket outside the per-launch directory
  //                        (or a symlink or directory there), or a TCP address not on loopback;
  //                        also Spawn's own kPermissionDenied
  //   kUnavailable         the process was killed by a signal before its handshake line or
  //                        while the host was connecting; the transport could not connect
  //   kDeadlineExceeded    "plugin 'kv' did not print its handshake line within 1m"; the
  //                        transport's connect timeout
  //   kUnauthenticated     the transport's TLS failure
  //   kCancelled           Shutdown was called before the start finished
  //   others               the file system's (creating the directory), the transport's
  //                        (NewClientIdentity), Spawn's
  // A failed start's message ends with the plugin's last stderr lines when it wrote any.
  static std::unique_ptr<PluginClient> Start(Env& env, PluginTransport& transport,
                                             PluginLaunchOptions options, StartDone done);

  ~PluginClient();
  PluginClient(const PluginClient&) = delete;
  PluginClient& operator=(const PluginClient&) = delete;

  // True once Start reported OK (until destruction, even after the process exited).
  bool started() const { return connection_ != nullptr; }

  // The connection. REQUIRES (CHECK): started(). After the process exited it is closed: calls
  // fail with kCancelled or kUnavailable.
  PluginConnection& connection();

  // The process id; 0 if no process was spawned.
  int64_t pid() const { return pid_; }
  // True once the process has ended (and was reaped).
  bool exited() const { return exit_.has_value(); }
  // How it ended, once exited().
  const std::optional<ProcessExit>& exit_status() const { return exit_; }
  // The handshake line as parsed, once received: app_version is the negotiated app protocol
  // version, multiplex_supported the 7th field, network/address where the plugin listens.
  const std::optional<protocol::HandshakeLine>& handshake() const { return handshake_; }
  int app_version() const { return handshake_.has_value() ? handshake_->app_version : 0; }
  const std::string& plugin_name() const { return options_.plugin_name; }
  // The per-launch directory ("" before it was made, and after it was removed).
  const std::string& launch_dir() const { return launch_dir_; }
  // The last stderr lines (each cut to kStderrTailLineBytesMax), oldest first.
  std::vector<std::string> stderr_tail() const;
  // Plugin output lines not logged because of the rate limit, in total.
  uint64_t dropped_output_lines() const { return dropped_total_; }

  // Sets the callback run once, on the executor, when the process ends after a successful
  // start — whatever the cause (crash, its own exit, Shutdown, a signal from outside). If it has
  // already ended, the callback is posted at once. Replaces an earlier handler; nullptr clears
  // it (do that before Shutdown if the end should not count as a termination event). The
  // connection is already closed and the directory removed when it runs.
  void SetExitHandler(absl::AnyInvocable<void(const ProcessExit& exit)> handler);

  // Stops the plugin: calls kGrpcControllerShutdown with `grace` as the call deadline, and
  // SIGKILLs the process if it has not exited `grace` after this call (at once for a zero or
  // negative grace, or when there is no connection). `done` runs on the executor after the
  // process is reaped, the connection closed and the per-launch directory removed. Idempotent:
  // later calls add their `done` (and cannot extend the first grace period); after the end
  // `done` is posted at once. During Start it cancels the launch (Start's done gets kCancelled).
  void Shutdown(absl::Duration grace = kDefaultShutdownGrace,
                absl::AnyInvocable<void()> done = nullptr);

 private:
  enum class State {
    kLaunching,   // Spawned; waiting for the handshake line.
    kConnecting,  // Handshake parsed; waiting for the transport.
    kRunning,     // Connected; Start reported OK.
    kStopping,    // Start failed or Shutdown was called: killing or waiting for the exit.
    kEnded,       // Process reaped, connection closed, directory removed.
  };

  PluginClient(Env& env, PluginTransport& transport, PluginLaunchOptions options, StartDone done);

  // Steps 1-3 of Start; the first error stops it.
  absl::Status Launch();
  absl::Status ValidateOptions() const;
  absl::Status MakeLaunchDir();

  void OnLine(OutputStream stream, absl::string_view line, bool truncated);
  void OnHandshakeLine(absl::string_view line, bool truncated);
  absl::Status CheckEndpoint(const protocol::HandshakeLine& hs);
  void OnConnected(absl::StatusOr<std::unique_ptr<PluginConnection>> connection);
  void OnStartTimeout();
  void OnExit(const ProcessExit& exit);

  // Start failed (or was cancelled): remember why, then kill and wait for the exit.
  void FailStart(absl::Status status);
  // The error for an exit before the handshake line.
  absl::Status ExitBeforeHandshakeError(const ProcessExit& exit) const;
  // `status` with the stderr tail appended to its message.
  absl::Status WithStderrTail(const absl::Status& status) const;
  // Closes the connection and removes the socket file and the per-launch directory.
  void ReleaseResources();
  void RemoveTree(const std::string& path, int depth, size_t& budget);
  // After the exit (or a failure before any spawn): release everything and run the callbacks
  // that are due. Leaves state kEnded.
  void Finish();

  // Output logging.
  void LogOutput(OutputStream stream, absl::string_view line, bool truncated);
  void Log(LogLevel level, std::string message,
           std::vector<std::pair<std::string, std::string>> fields = {});
  void FlushDroppedLines();
  std::string Source() const;

  // Posts `task` to run on the executor only if this client still exists then.
  void PostGuarded(absl::AnyInvocable<void()> task);
  void CancelTimer(TimerId& id);

  Env& env_;
  PluginTransport& transport_;
  PluginLaunchOptions options_;
  State state_ = State::kLaunching;

  std::string launch_dir_;
  std::unique_ptr<ClientIdentity> identity_;
  // Vault's legacy TLS: the shared certificate the host trusts and the name it checks.
  std::string shared_cert_der_;
  std::string shared_server_name_;
  std::unique_ptr<Process> process_;
  int64_t pid_ = 0;
  std::optional<protocol::HandshakeLine> handshake_;
  std::unique_ptr<PluginConnection> connection_;
  std::optional<ProcessExit> exit_;

  StartDone start_done_;
  absl::Status start_error_;  // Set when the start failed; reported by Finish.
  absl::AnyInvocable<void(const ProcessExit&)> exit_handler_;
  bool exit_handler_due_ = false;  // The process ended after a successful start.
  std::vector<absl::AnyInvocable<void()>> shutdown_done_;
  bool shutdown_requested_ = false;

  TimerId start_timer_ = kNoTimer;
  TimerId grace_timer_ = kNoTimer;
  TimerId flush_timer_ = kNoTimer;

  // Output rate limiting: fixed one-second windows on the monotonic clock.
  absl::Duration window_start_ = absl::InfiniteDuration() * -1;
  uint32_t window_lines_ = 0;
  uint64_t window_dropped_ = 0;
  uint64_t dropped_total_ = 0;
  // After a Go "panic: " or "fatal error: " line, unstructured stderr is logged as errors.
  bool stderr_panicking_ = false;
  bool saw_cookie_message_ = false;
  std::deque<std::string> stderr_tail_;

  // Expires with the client; posted tasks and transport callbacks check it first.
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
};

}  // namespace bulwark::rpc

#endif  // BULWARK_CORE_RPC_PLUGIN_CLIENT_H_
