// PluginClient (see plugin_client.h): the launch, handshake, connect and shutdown state machine
// of one plugin process, driven by process and transport callbacks on the Env's executor.
#include "core/rpc/plugin_client.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/log/hclog_line.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"
#include "faultinject/failpoint.h"

namespace bulwark::rpc {

namespace {

// The per-launch directory's name is this prefix and 12 hex digits (48 random bits).
constexpr absl::string_view kLaunchDirPrefix = "plugin-";
constexpr size_t kLaunchDirNameBytes = 7 + 12;
// Longest runtime_dir: the per-launch directory and a socket file name must fit a socket path.
constexpr size_t kRuntimeDirBytesMax =
    protocol::kUnixSocketPathBytesMax - kSocketFileNameBytesReserved - 1 - kLaunchDirNameBytes;

// What go-plugin's plugin side prints to stderr, then exits 1, when the magic cookie is missing
// or wrong (server.go, v1.0.1 and HEAD).
constexpr absl::string_view kGoPluginCookieMessage = "This binary is a plugin.";

// Go runtime crash output: what follows is the panic's stack, worth logging as errors.
constexpr absl::string_view kGoPanicPrefixes[] = {"panic: ", "fatal error: "};

std::string PluginLabel(absl::string_view name) { return absl::StrCat("plugin '", name, "'"); }

// "exited with code 1" or "was killed by signal 9 (SIGKILL)".
std::string DescribeExit(const ProcessExit& exit) {
  if (!exit.signaled) return absl::StrCat("exited with code ", exit.code);
  return absl::StrCat("was ", exit.ToString());
}

bool IsLoopbackHost(absl::string_view host) {
  if (absl::ConsumePrefix(&host, "[")) {
    if (!absl::ConsumeSuffix(&host, "]")) return false;
  }
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

}  // namespace

std::unique_ptr<PluginClient> PluginClient::Start(Env& env, PluginTransport& transport,
                                                  PluginLaunchOptions options, StartDone done) {
  CHECK(done != nullptr) << "PluginClient::Start needs a done callback";
  std::unique_ptr<PluginClient> client(
      new PluginClient(env, transport, std::move(options), std::move(done)));
  absl::Status status = client->Launch();
  if (!status.ok()) {
    // Launch fails only before or at Spawn, so there is no process to wait for.
    CHECK(client->process_ == nullptr);
    client->start_error_ = std::move(status);
    client->state_ = State::kStopping;
    client->Finish();
  }
  return client;
}

PluginClient::PluginClient(Env& env, PluginTransport& transport, PluginLaunchOptions options,
                           StartDone done)
    : env_(env),
      transport_(transport),
      options_(std::move(options)),
      start_done_(std::move(done)) {}

PluginClient::~PluginClient() {
  life_.reset();  // Nothing posted earlier runs from now on.
  CancelTimer(start_timer_);
  CancelTimer(grace_timer_);
  FlushDroppedLines();
  if (process_ != nullptr && !exit_.has_value()) {
    Log(LogLevel::kDebug, "killing the plugin process: its client is being destroyed");
  }
  // The handle kills a running process and reaps it before it returns; no callback follows.
  process_.reset();
  ReleaseResources();
}

absl::Status PluginClient::ValidateOptions() const {
  const std::string& name = options_.plugin_name;
  if (name.empty() || name.size() > kPluginNameBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("plugin launch: plugin_name ", protocol::QuoteForError(name),
                     " must have 1 to ", kPluginNameBytesMax, " bytes"));
  }
  for (char c : name) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat("plugin launch: plugin_name ",
                                                     protocol::QuoteForError(name),
                                                     " contains a control character"));
    }
  }
  const std::string label = PluginLabel(name);
  auto invalid = [&label](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": ", what));
  };
  if (options_.executable == nullptr) return invalid("no executable given");
  const std::string& dir = options_.runtime_dir;
  if (dir.empty() || dir.front() != '/' || (dir.size() > 1 && dir.back() == '/')) {
    return invalid(absl::StrCat("runtime_dir ", protocol::QuoteForError(dir),
                                " must be an absolute path without a trailing '/'"));
  }
  if (dir.size() > kRuntimeDirBytesMax) {
    return invalid(absl::StrCat("runtime_dir ", protocol::QuoteForError(dir), " is ", dir.size(),
                                " bytes long; at most ", kRuntimeDirBytesMax,
                                " leave room for unix socket paths (",
                                protocol::kUnixSocketPathBytesMax, " bytes)"));
  }
  if (options_.app_versions.empty()) return invalid("no app protocol version offered");
  if (options_.start_timeout <= absl::ZeroDuration()) return invalid("start_timeout must be > 0");
  if (options_.connect_timeout <= absl::ZeroDuration()) {
    return invalid("connect_timeout must be > 0");
  }
  if (options_.line_bytes_max < protocol::kHandshakeLineBytesMax ||
      options_.line_bytes_max > kLineBytesMax) {
    return invalid(absl::StrCat("line_bytes_max ", options_.line_bytes_max, " is outside ",
                                protocol::kHandshakeLineBytesMax, "..", kLineBytesMax,
                                " (it must hold a whole handshake line)"));
  }
  if (options_.output_lines_per_second == 0 ||
      options_.output_lines_per_second > kOutputLinesPerSecondMax) {
    return invalid(absl::StrCat("output_lines_per_second ", options_.output_lines_per_second,
                                " is outside 1..", kOutputLinesPerSecondMax));
  }
  if (options_.stderr_tail_lines > kStderrTailLinesMax) {
    return invalid(absl::StrCat("stderr_tail_lines ", options_.stderr_tail_lines,
                                " exceeds the limit of ", kStderrTailLinesMax));
  }
  return absl::OkStatus();
}

absl::Status PluginClient::MakeLaunchDir() {
  for (int attempt = 0; attempt < kLaunchDirAttemptsMax; ++attempt) {
    const std::string path = JoinPath(
        options_.runtime_dir,
        absl::StrFormat("%s%012x", kLaunchDirPrefix, env_.random.Next64() & 0xffffffffffffULL));
    absl::Status status = env_.fs.CreateDir(path, 0700);
    if (status.ok()) {
      launch_dir_ = path;
      return absl::OkStatus();
    }
    if (!absl::IsAlreadyExists(status)) {
      return Annotate(status, absl::StrCat(PluginLabel(options_.plugin_name),
                                           ": create the per-launch directory"));
    }
  }
  return absl::AlreadyExistsError(absl::StrCat(
      PluginLabel(options_.plugin_name), ": ", kLaunchDirAttemptsMax,
      " random per-launch directory names under ", options_.runtime_dir, " all existed already"));
}

absl::Status PluginClient::Launch() {
  RETURN_IF_ERROR(ValidateOptions());
  const std::string label = PluginLabel(options_.plugin_name);
  RETURN_IF_ERROR(MakeLaunchDir());

  protocol::PluginEnvInput input;
  for (const std::string& entry : options_.host_env) {
    if (!absl::StartsWith(entry, "TMPDIR=")) input.host_env.push_back(entry);
  }
  input.legacy_env_layering = options_.legacy_env_layering;
  input.entry_env = options_.entry_env;
  input.extra_env = options_.extra_env;
  // go-plugin v1.0.1 plugins make their socket in $TMPDIR; later ones in PLUGIN_UNIX_SOCKET_DIR.
  // Layer 3 comes after the entry's env, so this TMPDIR wins over one given there.
  input.extra_env.push_back(absl::StrCat("TMPDIR=", launch_dir_));
  input.vault = options_.vault;
  if (input.vault.has_value()) {
    input.vault->automtls = options_.automtls;
    input.vault->mlock = options_.mlock;
  }
  input.magic_cookie_key = options_.magic_cookie_key;
  input.magic_cookie_value = options_.magic_cookie_value;
  input.offered_versions = options_.app_versions;
  input.multiplex_grpc = options_.multiplex_grpc;
  input.unix_socket_group = options_.unix_socket_group;
  input.unix_socket_dir = launch_dir_;
  if (options_.automtls) {
    absl::StatusOr<std::unique_ptr<ClientIdentity>> identity = transport_.NewClientIdentity();
    if (!identity.ok()) {
      return Annotate(identity.status(), absl::StrCat(label, ": make the AutoMTLS identity"));
    }
    identity_ = std::move(*identity);
    input.client_cert_pem = identity_->cert_pem();
  } else if (input.vault.has_value() && !input.vault->metadata_mode &&
             options_.wrap_tls != nullptr) {
    SharedTlsMaterial material;
    absl::StatusOr<std::unique_ptr<ClientIdentity>> identity =
        transport_.NewSharedIdentity(&material);
    if (!identity.ok()) {
      return Annotate(identity.status(), absl::StrCat(label, ": make the legacy TLS identity"));
    }
    identity_ = std::move(*identity);
    absl::StatusOr<std::string> token = options_.wrap_tls(material);
    if (!token.ok()) {
      return Annotate(token.status(),
                      absl::StrCat(label, ": wrap the plugin's TLS certificate and key"));
    }
    input.vault->unwrap_token = *std::move(token);
    shared_cert_der_ = std::move(material.cert_der);
    shared_server_name_ = std::move(material.server_name);
    Log(LogLevel::kInfo,
        "no AutoMTLS: the plugin's TLS certificate and key are wrapped for it (VAULT_UNWRAP_TOKEN)",
        {{"tls_server_name", shared_server_name_}});
  }
  absl::StatusOr<std::vector<std::string>> child_env = protocol::BuildPluginEnv(input);
  if (!child_env.ok()) return Annotate(child_env.status(), label);

  ProcessOptions process_options;
  process_options.argv =
      options_.argv.empty() ? std::vector<std::string>{options_.executable->path()} : options_.argv;
  process_options.env = std::move(*child_env);
  process_options.line_bytes_max = options_.line_bytes_max;
  process_options.limits = options_.limits;
  process_options.group_label = options_.group_label;
  process_options.group_limits = options_.group_limits;
  // The Process is owned by this client and runs no callback once destroyed, so `this` is safe.
  process_options.on_line = [this](OutputStream stream, absl::string_view line, bool truncated) {
    OnLine(stream, line, truncated);
  };
  process_options.on_exit = [this](const ProcessExit& exit) { OnExit(exit); };
  absl::StatusOr<std::unique_ptr<Process>> process =
      env_.launcher.Spawn(*options_.executable, std::move(process_options));
  if (!process.ok()) return Annotate(process.status(), label);
  process_ = std::move(*process);
  pid_ = process_->pid();
  start_timer_ = env_.executor.PostAfter(options_.start_timeout, [this] {
    start_timer_ = kNoTimer;
    OnStartTimeout();
  });
  Log(LogLevel::kDebug, "plugin process started", {{"path", options_.executable->path()}});
  return absl::OkStatus();
}

void PluginClient::OnLine(OutputStream stream, absl::string_view line, bool truncated) {
  if (stream == OutputStream::kStdout && state_ == State::kLaunching && !handshake_.has_value()) {
    OnHandshakeLine(line, truncated);
    return;
  }
  if (stream == OutputStream::kStderr) {
    if (absl::StartsWith(line, kGoPluginCookieMessage)) saw_cookie_message_ = true;
    if (options_.stderr_tail_lines > 0) {
      if (stderr_tail_.size() >= options_.stderr_tail_lines) stderr_tail_.pop_front();
      stderr_tail_.emplace_back(line.substr(0, kStderrTailLineBytesMax));
    }
  }
  LogOutput(stream, line, truncated);
}

void PluginClient::OnHandshakeLine(absl::string_view line, bool truncated) {
  const std::string label = PluginLabel(options_.plugin_name);
  if (truncated) {
    FailStart(absl::InvalidArgumentError(
        absl::StrCat(label, " printed a first stdout line longer than ", options_.line_bytes_max,
                     " bytes instead of a handshake line: ", protocol::QuoteForError(line))));
    return;
  }
  if (line.find('|') == absl::string_view::npos) {
    FailStart(absl::FailedPreconditionError(absl::StrCat(
        label, " printed ", protocol::QuoteForError(line), " before its handshake line")));
    return;
  }
  absl::StatusOr<protocol::HandshakeLine> hs =
      protocol::ParseHandshakeLine(line, options_.app_versions);
  // A planted bug for the simulator's drill (testonly builds only): the version fields go
  // unchecked, as if the line had announced core version 1 and an app version the host offered.
  if (!hs.ok() && BW_PLANTED_BUG_IN(env_.failpoints, "bug.rpc.accept_malformed_handshake")) {
    std::vector<std::string> fields = absl::StrSplit(line, '|');
    if (fields.size() > 2) {
      fields[0] = absl::StrCat(protocol::kCoreProtocolVersion);
      fields[1] = absl::StrCat(options_.app_versions.front());
      hs = protocol::ParseHandshakeLine(absl::StrJoin(fields, "|"), options_.app_versions);
    }
  }
  if (!hs.ok()) {
    FailStart(Annotate(hs.status(), label));
    return;
  }
  absl::Status status = protocol::CheckMultiplexSupport(*hs, options_.multiplex_grpc);
  if (status.ok()) status = CheckEndpoint(*hs);
  if (status.ok() && options_.automtls && hs->server_cert_der.empty()) {
    status = absl::FailedPreconditionError(
        absl::StrCat(label,
                     " sent no AutoMTLS certificate in its handshake line although the "
                     "host offered AutoMTLS (PLUGIN_CLIENT_CERT): ",
                     protocol::QuoteForError(line)));
  }
  if (status.ok() && !options_.automtls && !hs->server_cert_der.empty()) {
    status = absl::FailedPreconditionError(absl::StrCat(
        label,
        " sent an AutoMTLS certificate in its handshake line although the host did not "
        "offer AutoMTLS"));
  }
  if (!status.ok()) {
    FailStart(absl::Status(status.code(), absl::StartsWith(status.message(), label)
                                              ? status.message()
                                              : absl::StrCat(label, ": ", status.message())));
    return;
  }
  CancelTimer(start_timer_);
  handshake_ = *std::move(hs);
  state_ = State::kConnecting;
  Log(LogLevel::kDebug, "plugin handshake received",
      {{"network", handshake_->network},
       {"address", handshake_->address},
       {"app_version", absl::StrCat(handshake_->app_version)}});

  PluginEndpoint endpoint;
  endpoint.network = handshake_->network;
  endpoint.address = handshake_->address;
  endpoint.server_cert_der =
      shared_cert_der_.empty() ? handshake_->server_cert_der : shared_cert_der_;
  endpoint.tls_server_name = shared_server_name_;
  transport_.Connect(endpoint, identity_.get(), options_.connect_timeout,
                     [this, life = std::weak_ptr<int>(life_)](
                         absl::StatusOr<std::unique_ptr<PluginConnection>> connection) mutable {
                       if (life.expired()) {
                         if (connection.ok()) (*connection)->Close();
                         return;
                       }
                       OnConnected(std::move(connection));
                     });
}

absl::Status PluginClient::CheckEndpoint(const protocol::HandshakeLine& hs) {
  const std::string label = PluginLabel(options_.plugin_name);
  if (hs.network == "unix") {
    absl::string_view name = hs.address;
    const std::string prefix = absl::StrCat(launch_dir_, "/");
    if (!absl::ConsumePrefix(&name, prefix) || name.empty() ||
        name.find('/') != absl::string_view::npos || name == "." || name == "..") {
      return absl::PermissionDeniedError(
          absl::StrCat(label, " announced unix socket ", protocol::QuoteForError(hs.address),
                       " outside its launch directory ", launch_dir_,
                       "; a plugin must listen in the directory it is given in TMPDIR and "
                       "PLUGIN_UNIX_SOCKET_DIR"));
    }
    absl::StatusOr<FileInfo> info = env_.fs.Lstat(hs.address);
    if (info.ok() && (info->type == FileType::kSymlink || info->type == FileType::kDirectory)) {
      return absl::PermissionDeniedError(absl::StrCat(label, " announced unix socket ",
                                                      protocol::QuoteForError(hs.address),
                                                      ", which is a ", FileTypeName(info->type)));
    }
    return absl::OkStatus();
  }
  // "tcp": ParseHandshakeLine checked host:port; the host must be this machine.
  const size_t colon = hs.address.rfind(':');
  const absl::string_view host = absl::string_view(hs.address).substr(0, colon);
  if (!IsLoopbackHost(host)) {
    return absl::PermissionDeniedError(absl::StrCat(label, " announced TCP address ",
                                                    protocol::QuoteForError(hs.address),
                                                    ", which is not on the loopback interface"));
  }
  return absl::OkStatus();
}

void PluginClient::OnConnected(absl::StatusOr<std::unique_ptr<PluginConnection>> connection) {
  if (state_ != State::kConnecting) {
    // The start failed or was cancelled meanwhile.
    if (connection.ok()) (*connection)->Close();
    return;
  }
  if (!connection.ok()) {
    FailStart(Annotate(connection.status(),
                       absl::StrCat(PluginLabel(options_.plugin_name), ": connect to ",
                                    handshake_->network, ":", handshake_->address)));
    return;
  }
  connection_ = std::move(*connection);
  connection_->SetStdioHandler(
      [this, life = std::weak_ptr<int>(life_)](int stream, absl::string_view line) {
        if (life.expired()) return;
        LogOutput(stream == 2 ? OutputStream::kStderr : OutputStream::kStdout, line, false);
      });
  state_ = State::kRunning;
  Log(LogLevel::kDebug, "plugin connected");
  StartDone done = std::move(start_done_);
  start_done_ = nullptr;
  PostGuarded([done = std::move(done)]() mutable { done(absl::OkStatus()); });
}

void PluginClient::OnStartTimeout() {
  if (state_ != State::kLaunching) return;
  FailStart(absl::DeadlineExceededError(
      absl::StrCat(PluginLabel(options_.plugin_name), " did not print its handshake line within ",
                   absl::FormatDuration(options_.start_timeout))));
}

void PluginClient::FailStart(absl::Status status) {
  if (state_ != State::kLaunching && state_ != State::kConnecting) return;  // First one wins.
  start_error_ = std::move(status);
  state_ = State::kStopping;
  CancelTimer(start_timer_);
  // The exit arrives through OnExit, which finishes the cleanup.
  absl::Status killed = process_->Kill();
  if (!killed.ok()) {
    Log(LogLevel::kError, "could not kill the plugin process", {{"error", killed.ToString()}});
  }
}

absl::Status PluginClient::ExitBeforeHandshakeError(const ProcessExit& exit) const {
  const std::string label = PluginLabel(options_.plugin_name);
  if (!exit.signaled && exit.code == 1 && saw_cookie_message_) {
    return absl::FailedPreconditionError(absl::StrCat(
        label,
        " exited with code 1 before its handshake line, saying it was not started by a "
        "plugin host: the magic cookie ",
        options_.magic_cookie_key,
        " it expects is not the value the host sent, so it is a plugin of another kind (or "
        "for another host) than the catalog entry says"));
  }
  const std::string text =
      absl::StrCat(label, " ", DescribeExit(exit), " before its handshake line");
  return exit.signaled ? absl::UnavailableError(text) : absl::FailedPreconditionError(text);
}

absl::Status PluginClient::WithStderrTail(const absl::Status& status) const {
  if (stderr_tail_.empty() || status.ok()) return status;
  std::string message = absl::StrCat(status.message(), "; its last stderr lines: ");
  bool first = true;
  for (const std::string& line : stderr_tail_) {
    absl::StrAppend(&message, first ? "" : " | ", protocol::QuoteForError(line));
    first = false;
  }
  return absl::Status(status.code(), message);
}

void PluginClient::OnExit(const ProcessExit& exit) {
  exit_ = exit;
  const std::string label = PluginLabel(options_.plugin_name);
  switch (state_) {
    case State::kLaunching:
      start_error_ = ExitBeforeHandshakeError(exit);
      break;
    case State::kConnecting: {
      const std::string text =
          absl::StrCat(label, " ", DescribeExit(exit), " while the host was connecting to it");
      start_error_ =
          exit.signaled ? absl::UnavailableError(text) : absl::FailedPreconditionError(text);
      break;
    }
    case State::kRunning:
    case State::kStopping:
      break;
    case State::kEnded:
      CHECK(false) << "plugin process exit reported twice";
  }
  const bool expected = shutdown_requested_ || state_ == State::kStopping;
  Log(expected || exit.success() ? LogLevel::kInfo : LogLevel::kWarn, "plugin process exited",
      {{"status", exit.ToString()}});
  exit_handler_due_ = connection_ != nullptr;
  Finish();
}

void PluginClient::Finish() {
  state_ = State::kEnded;
  CancelTimer(start_timer_);
  CancelTimer(grace_timer_);
  FlushDroppedLines();
  ReleaseResources();
  if (start_done_ != nullptr) {
    CHECK(!start_error_.ok());
    StartDone done = std::move(start_done_);
    start_done_ = nullptr;
    PostGuarded([done = std::move(done), status = WithStderrTail(start_error_)]() mutable {
      done(status);
    });
  }
  if (exit_handler_due_) {
    PostGuarded([this] {
      if (exit_handler_ == nullptr) return;
      auto handler = std::move(exit_handler_);
      exit_handler_ = nullptr;
      handler(*exit_);
    });
  }
  for (auto& done : shutdown_done_) PostGuarded(std::move(done));
  shutdown_done_.clear();
}

void PluginClient::ReleaseResources() {
  if (connection_ != nullptr) connection_->Close();
  if (launch_dir_.empty()) return;
  size_t budget = kLaunchDirCleanupEntriesMax;
  RemoveTree(launch_dir_, 0, budget);
  absl::Status status = env_.fs.RemoveDir(launch_dir_);
  if (!status.ok() && !absl::IsNotFound(status)) {
    Log(LogLevel::kWarn, "could not remove the plugin's launch directory",
        {{"error", status.ToString()}});
  }
  launch_dir_.clear();
}

void PluginClient::RemoveTree(const std::string& path, int depth, size_t& budget) {
  absl::StatusOr<std::vector<std::string>> names = env_.fs.ListDir(path);
  if (!names.ok()) {
    if (!absl::IsNotFound(names.status())) {
      Log(LogLevel::kWarn, "could not list the plugin's launch directory",
          {{"error", names.status().ToString()}});
    }
    return;
  }
  for (const std::string& name : *names) {
    if (budget == 0) {
      Log(LogLevel::kWarn, "left files in the plugin's launch directory",
          {{"path", path}, {"limit", absl::StrCat(kLaunchDirCleanupEntriesMax)}});
      return;
    }
    --budget;
    const std::string child = JoinPath(path, name);
    absl::StatusOr<FileInfo> info = env_.fs.Lstat(child);
    absl::Status status;
    if (info.ok() && info->type == FileType::kDirectory) {
      if (depth + 1 < kLaunchDirCleanupDepthMax) RemoveTree(child, depth + 1, budget);
      status = env_.fs.RemoveDir(child);
    } else {
      status = env_.fs.Remove(child);
    }
    if (!status.ok() && !absl::IsNotFound(status)) {
      Log(LogLevel::kWarn, "could not remove a file the plugin left in its launch directory",
          {{"error", status.ToString()}});
    }
  }
}

std::vector<std::string> PluginClient::stderr_tail() const {
  return std::vector<std::string>(stderr_tail_.begin(), stderr_tail_.end());
}

PluginConnection& PluginClient::connection() {
  CHECK(connection_ != nullptr) << "PluginClient::connection() of " << options_.plugin_name
                                << " before a successful start";
  return *connection_;
}

void PluginClient::SetExitHandler(absl::AnyInvocable<void(const ProcessExit& exit)> handler) {
  exit_handler_ = std::move(handler);
  if (exit_handler_due_ && exit_handler_ != nullptr && state_ == State::kEnded) {
    PostGuarded([this] {
      if (exit_handler_ == nullptr) return;
      auto run = std::move(exit_handler_);
      exit_handler_ = nullptr;
      run(*exit_);
    });
  }
}

void PluginClient::Shutdown(absl::Duration grace, absl::AnyInvocable<void()> done) {
  if (state_ == State::kEnded) {
    if (done != nullptr) PostGuarded(std::move(done));
    return;
  }
  if (done != nullptr) shutdown_done_.push_back(std::move(done));
  if (shutdown_requested_) return;
  shutdown_requested_ = true;
  switch (state_) {
    case State::kLaunching:
    case State::kConnecting:
      FailStart(absl::CancelledError(
          absl::StrCat(PluginLabel(options_.plugin_name), ": start cancelled by Shutdown")));
      return;
    case State::kStopping:  // Already being killed; Finish runs the callbacks.
    case State::kEnded:
      return;
    case State::kRunning:
      break;
  }
  state_ = State::kStopping;
  if (grace > absl::ZeroDuration()) {
    CallOptions call_options;
    call_options.timeout = grace;
    connection_->Call(protocol::kControllerShutdownMethod, std::string(), call_options,
                      [this, life = std::weak_ptr<int>(life_)](absl::StatusOr<std::string> reply) {
                        if (life.expired() || state_ == State::kEnded || reply.ok()) return;
                        Log(LogLevel::kDebug, "GRPCController.Shutdown failed",
                            {{"error", reply.status().ToString()}});
                      });
    grace_timer_ = env_.executor.PostAfter(grace, [this, grace] {
      grace_timer_ = kNoTimer;
      if (exit_.has_value()) return;
      Log(LogLevel::kWarn, "plugin did not exit within its shutdown grace period; killing it",
          {{"grace", absl::FormatDuration(grace)}});
      absl::Status killed = process_->Kill();
      if (!killed.ok()) {
        Log(LogLevel::kError, "could not kill the plugin process", {{"error", killed.ToString()}});
      }
    });
    return;
  }
  absl::Status killed = process_->Kill();
  if (!killed.ok()) {
    Log(LogLevel::kError, "could not kill the plugin process", {{"error", killed.ToString()}});
  }
}

void PluginClient::LogOutput(OutputStream stream, absl::string_view line, bool truncated) {
  LogLevel raw_level = LogLevel::kInfo;
  if (stream == OutputStream::kStderr) {
    for (absl::string_view prefix : kGoPanicPrefixes) {
      if (absl::StartsWith(line, prefix)) stderr_panicking_ = true;
    }
    if (stderr_panicking_) raw_level = LogLevel::kError;
  }
  const absl::Duration now = env_.clock.MonotonicNow();
  if (now - window_start_ >= absl::Seconds(1)) {
    FlushDroppedLines();
    window_start_ = now;
    window_lines_ = 0;
  }
  if (window_lines_ >= options_.output_lines_per_second) {
    ++window_dropped_;
    ++dropped_total_;
    if (flush_timer_ == kNoTimer) {
      flush_timer_ = env_.executor.PostAfter(window_start_ + absl::Seconds(1) - now, [this] {
        flush_timer_ = kNoTimer;
        FlushDroppedLines();
      });
    }
    return;
  }
  ++window_lines_;
  HclogLine parsed = ParseHclogLine(line, raw_level);
  if (truncated) parsed.fields.emplace_back("truncated", "true");
  Log(parsed.level, std::move(parsed.message), std::move(parsed.fields));
}

void PluginClient::FlushDroppedLines() {
  CancelTimer(flush_timer_);
  if (window_dropped_ == 0) return;
  Log(LogLevel::kWarn,
      absl::StrCat(window_dropped_, " lines of plugin output dropped (more than ",
                   options_.output_lines_per_second, " lines per second)"),
      {{"dropped", absl::StrCat(window_dropped_)}});
  window_dropped_ = 0;
}

void PluginClient::Log(LogLevel level, std::string message,
                       std::vector<std::pair<std::string, std::string>> fields) {
  if (options_.log_sink == nullptr) return;
  LogRecord record;
  record.level = level;
  record.time = env_.clock.WallNow();
  record.source = Source();
  record.message = std::move(message);
  record.fields = std::move(fields);
  options_.log_sink->Write(record);
}

std::string PluginClient::Source() const {
  if (pid_ == 0) return absl::StrCat("plugin:", options_.plugin_name);
  return absl::StrCat("plugin:", options_.plugin_name, "[", pid_, "]");
}

void PluginClient::PostGuarded(absl::AnyInvocable<void()> task) {
  env_.executor.Post([life = std::weak_ptr<int>(life_), task = std::move(task)]() mutable {
    if (!life.expired()) task();
  });
}

void PluginClient::CancelTimer(TimerId& id) {
  if (id == kNoTimer) return;
  env_.executor.Cancel(id);
  id = kNoTimer;
}

}  // namespace bulwark::rpc
