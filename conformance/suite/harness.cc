// The suite's host (see harness.h): process launch with deliberate deviations, the handshake,
// mutual-TLS dialing, go-plugin's broker and stdio streams, pb.Storage served back over the
// broker, and the pb.Backend calls the profiles share. Every RPC carries a deadline.
#include "conformance/suite/harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <grpc/grpc_security_constants.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/status/check.h"
#include "conformance/suite/conformance.h"
#include "protocol/plugin_env.h"
#include "protocol/tls_certs.h"

namespace bulwark::conformance {
namespace {

using sdk::testing::PluginProcess;
using sdk::testing::ProcessExitStatus;
using sdk::testing::ShortTempDir;

// The Vault version the suite claims to be in VAULT_VERSION (any non-empty value keeps old
// Vault SDK plugins on gRPC).
constexpr char kVaultVersion[] = "1.16.0";
// Deadline of the two long-lived streams go-plugin's client opens (broker, stdio): longer than
// any test, so they never expire mid-test, but still bounded.
constexpr absl::Duration kStreamDeadline = absl::Hours(1);
// How long the destructor waits for a killed plugin to be reaped and its pipes to close.
constexpr absl::Duration kReapTimeout = absl::Seconds(10);
// How much of the plugin's stderr an error message carries.
constexpr size_t kStderrInErrorBytes = 600;
// Most bytes of GRPCStdio data kept (older data is dropped first).
constexpr size_t kStdioBytesMax = 1 << 20;

std::chrono::system_clock::time_point ChronoDeadline(absl::Duration timeout) {
  return absl::ToChronoTime(absl::Now() + timeout);
}

std::string Tail(const std::string& text, size_t bytes) {
  return text.size() <= bytes ? text : text.substr(text.size() - bytes);
}

// pb.Storage as a host serves it to one plugin instance, over an InMemoryHostStorage.
class HostStorageService final : public pb::Storage::Service {
 public:
  explicit HostStorageService(std::shared_ptr<sdk::InMemoryHostStorage> storage)
      : storage_(std::move(storage)) {}

  grpc::Status Get(grpc::ServerContext*, const pb::StorageGetArgs* request,
                   pb::StorageGetReply* reply) override {
    return Serve(sdk::kStorageGetMethod, *request, reply);
  }
  grpc::Status Put(grpc::ServerContext*, const pb::StoragePutArgs* request,
                   pb::StoragePutReply* reply) override {
    return Serve(sdk::kStoragePutMethod, *request, reply);
  }
  grpc::Status Delete(grpc::ServerContext*, const pb::StorageDeleteArgs* request,
                      pb::StorageDeleteReply* reply) override {
    return Serve(sdk::kStorageDeleteMethod, *request, reply);
  }
  grpc::Status List(grpc::ServerContext*, const pb::StorageListArgs* request,
                    pb::StorageListReply* reply) override {
    return Serve(sdk::kStorageListMethod, *request, reply);
  }

 private:
  grpc::Status Serve(absl::string_view method, const google::protobuf::Message& request,
                     google::protobuf::Message* reply) {
    absl::StatusOr<std::string> bytes = storage_->Handle(method, request.SerializeAsString());
    if (!bytes.ok()) {
      return grpc::Status(static_cast<grpc::StatusCode>(bytes.status().code()),
                          std::string(bytes.status().message()));
    }
    if (!reply->ParseFromString(*bytes)) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "storage reply did not serialize");
    }
    return grpc::Status::OK;
  }

  const std::shared_ptr<sdk::InMemoryHostStorage> storage_;
};

struct StorageEndpoint {
  std::shared_ptr<sdk::InMemoryHostStorage> storage;
  std::unique_ptr<HostStorageService> service;
  std::unique_ptr<grpc::Server> server;
};

// The integers of a comma-separated version list; other entries are skipped (the plugin is
// told about them anyway, which is the point of offering them).
std::vector<int> ParseVersionList(absl::string_view list) {
  std::vector<int> versions;
  for (absl::string_view entry : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    int version = 0;
    if (absl::SimpleAtoi(entry, &version) && version > 0 &&
        std::find(versions.begin(), versions.end(), version) == versions.end()) {
      versions.push_back(version);
    }
  }
  return versions;
}

}  // namespace

absl::StatusOr<TlsIdentity> NewTlsIdentity(bool expired) {
  const absl::Time now = absl::Now();
  absl::StatusOr<protocol::SelfSignedCert> cert =
      expired ? protocol::GenerateSelfSignedCert(protocol::KeyType::kP256, absl::Hours(1),
                                                 now - absl::Hours(25))
              : protocol::GenerateSelfSignedCert(protocol::KeyType::kP256,
                                                 protocol::kGoPluginCertValidity, now);
  if (!cert.ok()) return cert.status();
  return TlsIdentity{cert->cert_pem, cert->key_pem};
}

struct PluginUnderTest::State {
  LaunchOptions options;
  std::vector<int> offered_versions;
  std::unique_ptr<ShortTempDir> own_socket_dir;
  std::string socket_dir;
  std::unique_ptr<ShortTempDir> host_dir;  // The host's broker sockets, apart from the plugin's.
  TlsIdentity host_identity;
  std::unique_ptr<PluginProcess> process;

  std::optional<std::string> line;
  absl::Duration time_to_handshake = absl::ZeroDuration();
  std::optional<protocol::HandshakeLine> handshake;
  std::string plugin_cert_pem;

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<plugin::GRPCBroker::Stub> broker;
  std::unique_ptr<grpc::ClientContext> broker_context;
  std::unique_ptr<grpc::ClientReaderWriter<plugin::ConnInfo, plugin::ConnInfo>> broker_stream;
  std::unique_ptr<grpc::ClientContext> stdio_context;
  std::thread stdio_reader;
  std::unique_ptr<pb::Backend::Stub> backend;

  mutable std::mutex mu;
  std::string stdio_text;                 // Guarded by mu.
  std::optional<absl::Status> stdio_end;  // Guarded by mu.

  std::map<uint32_t, StorageEndpoint> storages;
  uint32_t next_broker_id = 1;
  uint64_t uuid_counter = 0;

  // Notes the plugin's stderr for the report and returns `status` with its tail appended.
  absl::Status Report(const absl::Status& status) const {
    if (status.ok() || process == nullptr) return status;
    const std::string err = process->stderr_text();
    NotePluginStderr(err);
    if (err.empty()) return status;
    return absl::Status(
        status.code(),
        absl::StrCat(status.message(), "; plugin stderr ends: ",
                     protocol::QuoteForError(Tail(err, kStderrInErrorBytes), kStderrInErrorBytes)));
  }
};

absl::StatusOr<std::unique_ptr<PluginUnderTest>> PluginUnderTest::Launch(
    const LaunchOptions& options) {
  const SuiteConfig& config = Config();
  if (config.attach.has_value()) {
    return absl::FailedPreconditionError("cannot launch the plugin in attach mode");
  }
  auto put = std::unique_ptr<PluginUnderTest>(new PluginUnderTest());
  put->state_ = std::make_unique<State>();
  State& s = *put->state_;
  s.options = options;
  if (options.socket_dir.has_value()) {
    s.socket_dir = *options.socket_dir;
  } else {
    s.own_socket_dir = std::make_unique<ShortTempDir>();
    s.socket_dir = s.own_socket_dir->path();
    if (s.socket_dir.empty()) return absl::InternalError("could not create a socket directory");
  }
  if (options.automtls) {
    absl::StatusOr<TlsIdentity> identity = NewTlsIdentity(options.host_identity_expired);
    if (!identity.ok()) return identity.status();
    s.host_identity = *std::move(identity);
  }

  const Manifest& manifest = config.manifest;
  const std::string versions = options.protocol_versions.has_value()
                                   ? *options.protocol_versions
                                   : absl::StrJoin(manifest.protocol_versions, ",");
  s.offered_versions = ParseVersionList(versions);

  // Layered as Vault does (protocol/plugin_env.h): host env, catalog env, Vault's variables,
  // go-plugin's variables; then the test's deviations. TMPDIR is the socket directory too, so
  // plugins that ignore PLUGIN_UNIX_SOCKET_DIR (go-plugin < v1.5) still put their socket where
  // the suite cleans up.
  std::vector<std::string> env = {"PATH=/usr/bin:/bin", absl::StrCat("TMPDIR=", s.socket_dir)};
  env.insert(env.end(), manifest.env.begin(), manifest.env.end());
  env.push_back(absl::StrCat(protocol::kEnvVaultVersion, "=", kVaultVersion));
  env.push_back(absl::StrCat(protocol::kEnvVaultMetadataMode, "=false"));
  env.push_back(
      absl::StrCat(protocol::kEnvVaultAutoMtlsEnabled, "=", options.automtls ? "true" : "false"));
  if (!options.omit_cookie) {
    env.push_back(absl::StrCat(manifest.cookie_key(), "=",
                               options.cookie_value.value_or(manifest.cookie_value())));
  }
  env.push_back(absl::StrCat(protocol::kEnvPluginMinPort, "=", protocol::kDefaultMinPort));
  env.push_back(absl::StrCat(protocol::kEnvPluginMaxPort, "=", protocol::kDefaultMaxPort));
  env.push_back(absl::StrCat(protocol::kEnvPluginProtocolVersions, "=", versions));
  if (options.automtls) {
    env.push_back(absl::StrCat(protocol::kEnvPluginClientCert, "=", s.host_identity.cert_pem));
  }
  env.push_back(absl::StrCat(protocol::kEnvPluginUnixSocketDir, "=", s.socket_dir));
  env.insert(env.end(), options.extra_env.begin(), options.extra_env.end());
  env = protocol::DedupEnvLastWins(env);  // As Go's exec does: later entries win.

  absl::StatusOr<std::unique_ptr<PluginProcess>> process = PluginProcess::Start(
      config.plugin_path, env, options.via_intermediate, config.plugin_args, options.executable_fd);
  if (!process.ok()) {
    return absl::Status(process.status().code(), absl::StrCat("starting ", config.plugin_path, ": ",
                                                              process.status().message()));
  }
  s.process = *std::move(process);
  return put;
}

absl::StatusOr<std::unique_ptr<PluginUnderTest>> PluginUnderTest::Start(
    const LaunchOptions& options) {
  const SuiteConfig& config = Config();
  if (config.attach.has_value()) {
    auto put = std::unique_ptr<PluginUnderTest>(new PluginUnderTest());
    put->state_ = std::make_unique<State>();
    State& s = *put->state_;
    s.offered_versions = config.manifest.protocol_versions;
    s.host_identity = {config.attach->client_cert_pem, config.attach->client_key_pem};
    absl::StatusOr<protocol::HandshakeLine> hs = put->ReadHandshake();
    if (!hs.ok()) return hs.status();
    if (absl::Status connected = put->Connect(); !connected.ok()) return connected;
    return put;
  }
  absl::StatusOr<std::unique_ptr<PluginUnderTest>> put = Launch(std::move(options));
  if (!put.ok()) return put.status();
  absl::StatusOr<protocol::HandshakeLine> hs = (*put)->ReadHandshake();
  if (!hs.ok()) return (*put)->state_->Report(hs.status());
  if (absl::Status connected = (*put)->Connect(); !connected.ok()) {
    return (*put)->state_->Report(connected);
  }
  return put;
}

PluginUnderTest::~PluginUnderTest() {
  if (state_ == nullptr) return;
  State& s = *state_;
  if (s.broker_context != nullptr) s.broker_context->TryCancel();
  if (s.stdio_context != nullptr) s.stdio_context->TryCancel();
  if (s.process != nullptr) {
    s.process->Signal(SIGKILL);  // Harmless (ESRCH) when it has exited.
    (void)s.process->WaitForExit(kReapTimeout);
    NotePluginStderr(s.process->stderr_text());
  }
  if (s.stdio_reader.joinable()) s.stdio_reader.join();
  s.broker_stream.reset();
  for (auto& [id, endpoint] : s.storages) {
    if (endpoint.server != nullptr) endpoint.server->Shutdown(ChronoDeadline(absl::ZeroDuration()));
  }
  s.storages.clear();
  s.process.reset();
}

bool PluginUnderTest::attached() const { return state_->process == nullptr; }

pid_t PluginUnderTest::pid() const {
  return state_->process == nullptr ? -1 : state_->process->pid();
}

const std::string& PluginUnderTest::socket_dir() const { return state_->socket_dir; }

const TlsIdentity& PluginUnderTest::host_identity() const { return state_->host_identity; }

sdk::testing::PluginProcess* PluginUnderTest::process() { return state_->process.get(); }

std::string PluginUnderTest::stdout_text() const {
  return state_->process == nullptr ? "" : state_->process->stdout_text();
}

std::string PluginUnderTest::stderr_text() const {
  return state_->process == nullptr ? "" : state_->process->stderr_text();
}

absl::StatusOr<ProcessExitStatus> PluginUnderTest::WaitForExit(
    std::optional<absl::Duration> timeout) {
  if (state_->process == nullptr) {
    return absl::FailedPreconditionError("attach mode: the suite did not start the plugin");
  }
  absl::StatusOr<ProcessExitStatus> exit =
      state_->process->WaitForExit(timeout.value_or(Config().rpc_timeout));
  NotePluginStderr(state_->process->stderr_text());
  if (!exit.ok()) {
    return absl::Status(exit.status().code(),
                        absl::StrCat("waiting for the plugin (pid ", pid(), ") to exit within ",
                                     absl::FormatDuration(timeout.value_or(Config().rpc_timeout)),
                                     ": ", exit.status().message()));
  }
  return exit;
}

int PluginUnderTest::Signal(int signal_number) {
  if (state_->process == nullptr) return -1;
  return state_->process->Signal(signal_number);
}

absl::StatusOr<std::string> PluginUnderTest::ReadHandshakeLine() {
  State& s = *state_;
  if (s.line.has_value()) return *s.line;
  if (Config().attach.has_value() && s.process == nullptr) {
    s.line = Config().attach->handshake_line;
    return *s.line;
  }
  absl::StatusOr<std::string> line = s.process->ReadFirstLine(Config().launch_timeout);
  if (!line.ok()) {
    if (absl::IsDeadlineExceeded(line.status())) {
      return s.Report(absl::DeadlineExceededError(absl::StrCat(
          "no handshake line on stdout within ", absl::FormatDuration(Config().launch_timeout),
          "; stdout so far: ", protocol::QuoteForError(s.process->stdout_text()))));
    }
    return s.Report(line.status());
  }
  s.line = *line;
  if (std::optional<absl::Time> at = s.process->first_line_time(); at.has_value()) {
    s.time_to_handshake = *at - s.process->start_time();
  }
  return *s.line;
}

absl::Duration PluginUnderTest::time_to_handshake() const { return state_->time_to_handshake; }

absl::StatusOr<protocol::HandshakeLine> PluginUnderTest::ReadHandshake() {
  State& s = *state_;
  if (s.handshake.has_value()) return *s.handshake;
  absl::StatusOr<std::string> line = ReadHandshakeLine();
  if (!line.ok()) return line.status();
  if (s.offered_versions.empty()) {
    return absl::FailedPreconditionError(
        "the launch offered no valid protocol version, so no handshake line can be accepted");
  }
  absl::StatusOr<protocol::HandshakeLine> parsed =
      protocol::ParseHandshakeLine(*line, s.offered_versions);
  if (!parsed.ok()) return s.Report(parsed.status());
  if (!parsed->server_cert_der.empty()) {
    absl::StatusOr<std::string> pem = protocol::CertDerToPem(parsed->server_cert_der);
    if (!pem.ok()) {
      return s.Report(absl::InvalidArgumentError(
          absl::StrCat("plugin handshake: the certificate field is not a DER certificate: ",
                       pem.status().message())));
    }
    s.plugin_cert_pem = *pem;
  }
  s.handshake = *parsed;
  return *s.handshake;
}

const protocol::HandshakeLine& PluginUnderTest::handshake() const {
  CHECK(state_->handshake.has_value()) << "handshake() before a successful ReadHandshake()";
  return *state_->handshake;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> PluginUnderTest::Dial(ClientCert cert) {
  State& s = *state_;
  if (!s.handshake.has_value()) {
    return absl::FailedPreconditionError("Dial before a successful ReadHandshake");
  }
  const protocol::HandshakeLine& hs = *s.handshake;
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // A connection of its own per Dial.
  args.SetMaxReceiveMessageSize(-1);                   // go-plugin: math.MaxInt32.
  args.SetMaxSendMessageSize(-1);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!hs.server_cert_der.empty()) {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = s.plugin_cert_pem;
    switch (cert) {
      case ClientCert::kLaunchIdentity:
        tls.pem_private_key = s.host_identity.key_pem;
        tls.pem_cert_chain = s.host_identity.cert_pem;
        break;
      case ClientCert::kNone:
        break;
      case ClientCert::kOtherCa: {
        absl::StatusOr<TlsIdentity> other = NewTlsIdentity();
        if (!other.ok()) return other.status();
        tls.pem_private_key = other->key_pem;
        tls.pem_cert_chain = other->cert_pem;
        break;
      }
    }
    credentials = grpc::SslCredentials(tls);
    args.SetSslTargetNameOverride("localhost");
  }
  const std::string target =
      hs.network == "unix" ? absl::StrCat("unix:", hs.address) : std::string(hs.address);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(target, credentials, args);

  // Wait for READY, or for the first failure: a refused TLS handshake shows as
  // TRANSIENT_FAILURE at once, and waiting for retries would only delay the verdict.
  const absl::Time deadline = absl::Now() + Config().rpc_timeout;
  while (true) {
    const grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_READY) return channel;
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      // A fail-fast RPC carries gRPC's explanation of the last connection failure.
      absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> probe =
          HealthCheckOn(channel);
      const absl::Status why = probe.ok()
                                   ? absl::UnavailableError("the connection failed, then recovered")
                                   : probe.status();
      return s.Report(absl::Status(
          absl::IsDeadlineExceeded(why) ? absl::StatusCode::kUnavailable : why.code(),
          absl::StrCat("connecting to ", hs.network, " ", hs.address, ": ", why.message())));
    }
    if (!channel->WaitForStateChange(state, absl::ToChronoTime(deadline))) {
      return s.Report(absl::DeadlineExceededError(
          absl::StrCat("connecting to ", hs.network, " ", hs.address, ": not ready within ",
                       absl::FormatDuration(Config().rpc_timeout))));
    }
  }
}

absl::Status PluginUnderTest::Connect() {
  State& s = *state_;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Dial(ClientCert::kLaunchIdentity);
  if (!channel.ok()) return channel.status();
  s.channel = *channel;

  // What go-plugin's client does right after dialing: the broker stream, then stdio.
  s.broker = plugin::GRPCBroker::NewStub(s.channel);
  s.broker_context = std::make_unique<grpc::ClientContext>();
  s.broker_context->set_deadline(ChronoDeadline(kStreamDeadline));
  s.broker_stream = s.broker->StartStream(s.broker_context.get());

  s.stdio_context = std::make_unique<grpc::ClientContext>();
  s.stdio_context->set_deadline(ChronoDeadline(kStreamDeadline));
  s.stdio_reader = std::thread([&s, channel = s.channel] {
    std::unique_ptr<grpc::ClientReader<plugin::StdioData>> stream =
        plugin::GRPCStdio::NewStub(channel)->StreamStdio(s.stdio_context.get(),
                                                         google::protobuf::Empty());
    plugin::StdioData data;
    while (stream->Read(&data)) {
      std::lock_guard<std::mutex> lock(s.mu);
      s.stdio_text.append(data.data());
      if (s.stdio_text.size() > kStdioBytesMax) {
        s.stdio_text.erase(0, s.stdio_text.size() - kStdioBytesMax);
      }
    }
    const grpc::Status status = stream->Finish();
    std::lock_guard<std::mutex> lock(s.mu);
    s.stdio_end = FromGrpc(status);
  });
  s.backend = pb::Backend::NewStub(s.channel);
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> PluginUnderTest::channel() const { return state_->channel; }

std::unique_ptr<grpc::ClientContext> PluginUnderTest::NewContext(
    const std::string& multiplex_id, std::optional<absl::Duration> timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(ChronoDeadline(timeout.value_or(Config().rpc_timeout)));
  if (!multiplex_id.empty()) context->AddMetadata("multiplex_id", multiplex_id);
  return context;
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> PluginUnderTest::HealthCheck(
    const std::string& service) {
  if (state_->channel == nullptr)
    return absl::FailedPreconditionError("HealthCheck before Connect");
  return HealthCheckOn(state_->channel, service);
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> PluginUnderTest::HealthCheckOn(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  std::unique_ptr<grpc::ClientContext> context = NewContext();
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status =
      grpc::health::v1::Health::NewStub(channel)->Check(context.get(), request, &response);
  if (!status.ok()) return FromGrpc(status);
  return response.status();
}

absl::Status PluginUnderTest::Shutdown() {
  if (state_->channel == nullptr) return absl::FailedPreconditionError("Shutdown before Connect");
  std::unique_ptr<grpc::ClientContext> context = NewContext();
  plugin::Empty reply;
  return FromGrpc(plugin::GRPCController::NewStub(state_->channel)
                      ->Shutdown(context.get(), plugin::Empty(), &reply));
}

std::vector<std::string> PluginUnderTest::StdioLines() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return absl::StrSplit(state_->stdio_text, '\n', absl::SkipEmpty());
}

std::optional<absl::Status> PluginUnderTest::StdioStreamEnd() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->stdio_end;
}

absl::Status PluginUnderTest::ProbeStdio(absl::Duration hold) {
  if (state_->channel == nullptr) return absl::FailedPreconditionError("ProbeStdio before Connect");
  std::unique_ptr<grpc::ClientContext> context = NewContext("", hold);
  std::unique_ptr<grpc::ClientReader<plugin::StdioData>> stream =
      plugin::GRPCStdio::NewStub(state_->channel)
          ->StreamStdio(context.get(), google::protobuf::Empty());
  plugin::StdioData data;
  if (stream->Read(&data)) {
    context->TryCancel();
    (void)stream->Finish();
    return absl::OkStatus();  // It delivered data: the stream is open.
  }
  const grpc::Status status = stream->Finish();
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) return absl::OkStatus();
  if (status.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the plugin ended plugin.GRPCStdio/StreamStdio with OK before ",
                     absl::FormatDuration(hold), " instead of keeping it open"));
  }
  return FromGrpc(status);
}

absl::StatusOr<uint32_t> PluginUnderTest::OfferStorage(
    std::shared_ptr<sdk::InMemoryHostStorage> storage) {
  State& s = *state_;
  if (s.broker_stream == nullptr)
    return absl::FailedPreconditionError("OfferStorage before Connect");
  if (s.host_dir == nullptr) {
    s.host_dir = std::make_unique<ShortTempDir>();
    if (s.host_dir->path().empty())
      return absl::InternalError("could not create a host socket dir");
  }
  const uint32_t id = s.next_broker_id++;
  StorageEndpoint endpoint;
  endpoint.storage =
      storage != nullptr ? std::move(storage) : std::make_shared<sdk::InMemoryHostStorage>();
  endpoint.service = std::make_unique<HostStorageService>(endpoint.storage);
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!s.plugin_cert_pem.empty()) {
    // go-plugin since #193 and bulwark: the plugin must present its handshake certificate.
    grpc::SslServerCredentialsOptions tls(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    tls.pem_root_certs = s.plugin_cert_pem;
    tls.pem_key_cert_pairs.push_back({s.host_identity.key_pem, s.host_identity.cert_pem});
    credentials = grpc::SslServerCredentials(tls);
  }
  const std::string socket = absl::StrCat(s.host_dir->path(), "/h", id);
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort(absl::StrCat("unix:", socket), credentials, &bound);
  builder.RegisterService(endpoint.service.get());
  endpoint.server = builder.BuildAndStart();
  if (endpoint.server == nullptr || bound == 0) {
    return absl::InternalError(absl::StrCat("could not serve pb.Storage on unix ", socket));
  }
  plugin::ConnInfo info;
  info.set_service_id(id);
  info.set_network("unix");
  info.set_address(socket);
  s.storages.emplace(id, std::move(endpoint));
  if (!s.broker_stream->Write(info)) {
    return s.Report(absl::UnavailableError(
        "the plugin closed the plugin.GRPCBroker/StartStream stream; cannot announce storage"));
  }
  return id;
}

sdk::InMemoryHostStorage* PluginUnderTest::storage(uint32_t broker_id) {
  auto it = state_->storages.find(broker_id);
  return it == state_->storages.end() ? nullptr : it->second.storage.get();
}

pb::Backend::Stub& PluginUnderTest::backend() {
  CHECK(state_->backend != nullptr) << "backend() before Connect";
  return *state_->backend;
}

absl::StatusOr<uint32_t> PluginUnderTest::SetupBackend(
    const std::string& multiplex_id, std::map<std::string, std::string> config,
    std::shared_ptr<sdk::InMemoryHostStorage> storage) {
  State& s = *state_;
  absl::StatusOr<uint32_t> id = OfferStorage(std::move(storage));
  if (!id.ok()) return id.status();
  pb::SetupArgs args;
  args.set_broker_id(*id);
  // Deterministic given the seed, unique per call.
  const uint64_t n = Config().seed * 1000003u + (++s.uuid_counter);
  args.set_backenduuid(
      absl::StrCat("00000000-0000-4000-8000-", absl::Hex(n % 1000000000000ull, absl::kZeroPad12)));
  for (const auto& [key, value] : config) (*args.mutable_config())[key] = value;
  std::unique_ptr<grpc::ClientContext> context = NewContext(multiplex_id);
  pb::SetupReply reply;
  const grpc::Status status = s.backend->Setup(context.get(), args, &reply);
  if (!status.ok()) {
    const absl::Status failed = FromGrpc(status);
    return s.Report(
        absl::Status(failed.code(), absl::StrCat("pb.Backend/Setup: ", failed.message())));
  }
  if (!reply.err().empty()) {
    return s.Report(absl::FailedPreconditionError(
        absl::StrCat("pb.Backend/Setup replied err ", protocol::QuoteForError(reply.err()))));
  }
  return *id;
}

absl::StatusOr<pb::HandleRequestReply> PluginUnderTest::HandleRequest(
    const std::string& multiplex_id, const std::string& operation, const std::string& path,
    const std::string& data_json) {
  if (state_->backend == nullptr)
    return absl::FailedPreconditionError("HandleRequest before Connect");
  pb::HandleRequestArgs args;
  args.mutable_request()->set_operation(operation);
  args.mutable_request()->set_path(path);
  // Vault sends json.Marshal(nil map) = "null" when a request has no data.
  args.mutable_request()->set_data(data_json.empty() ? "null" : data_json);
  std::unique_ptr<grpc::ClientContext> context = NewContext(multiplex_id);
  pb::HandleRequestReply reply;
  const grpc::Status status = state_->backend->HandleRequest(context.get(), args, &reply);
  if (!status.ok()) return FromGrpc(status);
  return reply;
}

absl::Status PluginUnderTest::FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::StatusOr<uint64_t> ResidentKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  if (!in) return absl::NotFoundError(absl::StrCat("no /proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "VmRSS:")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    absl::ConsumeSuffix(&rest, "kB");
    rest = absl::StripAsciiWhitespace(rest);
    uint64_t kib = 0;
    if (!absl::SimpleAtoi(rest, &kib)) {
      return absl::InternalError(absl::StrCat("unparsable VmRSS line: ", line));
    }
    return kib;
  }
  return absl::NotFoundError(absl::StrCat("no VmRSS in /proc/", pid, "/status"));
}

// --- TryTlsHandshake ---------------------------------------------------------------------------

namespace {

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(e, buffer, sizeof(buffer));
    if (!out.empty()) out += "; ";
    out += buffer;
  }
  return out.empty() ? "no OpenSSL error" : out;
}

absl::StatusOr<int> ConnectSocket(const protocol::HandshakeLine& hs, absl::Duration timeout) {
  int fd = -1;
  if (hs.network == "unix") {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (hs.address.size() >= sizeof(addr.sun_path)) {
      return absl::InvalidArgumentError("socket path too long");
    }
    memcpy(addr.sun_path, hs.address.data(), hs.address.size());
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      const int err = errno;
      ::close(fd);
      return absl::UnavailableError(absl::StrCat("connect ", hs.address, ": ", strerror(err)));
    }
  } else {
    const size_t colon = hs.address.rfind(':');
    std::string host = hs.address.substr(0, colon);
    int port = 0;
    if (colon == std::string::npos || !absl::SimpleAtoi(hs.address.substr(colon + 1), &port)) {
      return absl::InvalidArgumentError(absl::StrCat("bad tcp address ", hs.address));
    }
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
    sockaddr_storage storage{};
    socklen_t length = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(static_cast<uint16_t>(port));
      length = sizeof(*v4);
    } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(static_cast<uint16_t>(port));
      length = sizeof(*v6);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("tcp host is not an IP address: ", host));
    }
    fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0) {
      const int err = errno;
      ::close(fd);
      return absl::UnavailableError(absl::StrCat("connect ", hs.address, ": ", strerror(err)));
    }
  }
  // Blocking I/O bounded by socket timeouts: a silent server ends the handshake with EAGAIN.
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(absl::ToInt64Seconds(timeout));
  tv.tv_usec = static_cast<suseconds_t>(absl::ToInt64Microseconds(timeout) % 1000000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

}  // namespace

absl::StatusOr<std::string> TryTlsHandshake(const protocol::HandshakeLine& handshake,
                                            int max_tls_version, const TlsIdentity& client,
                                            absl::Duration timeout) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  if (ctx == nullptr) return absl::InternalError(OpenSslErrors());
  // Security level 0, or OpenSSL 3 would not even offer TLS 1.0/1.1 (SHA-1 signatures).
  SSL_CTX_set_security_level(ctx.get(), 0);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), max_tls_version);
  SSL_CTX_set_cipher_list(ctx.get(), "DEFAULT:@SECLEVEL=0");
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  static const unsigned char kAlpnH2[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpnH2, sizeof(kAlpnH2));
  if (!client.cert_pem.empty()) {
    std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
        BIO_new_mem_buf(client.cert_pem.data(), static_cast<int>(client.cert_pem.size())),
        &BIO_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
        BIO_new_mem_buf(client.key_pem.data(), static_cast<int>(client.key_pem.size())), &BIO_free);
    X509* cert = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr);
    EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
    const bool ok = cert != nullptr && key != nullptr &&
                    SSL_CTX_use_certificate(ctx.get(), cert) == 1 &&
                    SSL_CTX_use_PrivateKey(ctx.get(), key) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    if (!ok) return absl::InternalError(absl::StrCat("client identity: ", OpenSslErrors()));
  }
  absl::StatusOr<int> fd = ConnectSocket(handshake, timeout);
  if (!fd.ok()) return fd.status();
  // OpenSSL writes with write(2): a plugin that drops the connection would raise SIGPIPE and
  // kill the suite. Block it on this thread for the probe and discard any that arrived.
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
  SSL_set_fd(ssl.get(), *fd);
  SSL_set_tlsext_host_name(ssl.get(), "localhost");
  const int result = SSL_connect(ssl.get());
  absl::StatusOr<std::string> outcome;
  if (result == 1) {
    // TLS 1.3 servers judge the client certificate after the client's Finished; TLS <= 1.2 (what
    // this probe is for) has judged it inside the handshake. Read once so a refusal alert that is
    // already on its way is seen.
    outcome = std::string(SSL_get_version(ssl.get()));
  } else {
    const int error = SSL_get_error(ssl.get(), result);
    const int saved_errno = errno;
    if ((error == SSL_ERROR_SYSCALL || error == SSL_ERROR_WANT_READ) &&
        (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
      outcome = absl::DeadlineExceededError(absl::StrCat(
          "TLS handshake neither accepted nor refused within ", absl::FormatDuration(timeout)));
    } else {
      std::string reason = OpenSslErrors();
      if (error == SSL_ERROR_SYSCALL) {
        reason = absl::StrCat(reason, " (",
                              saved_errno == 0 ? "connection closed" : strerror(saved_errno), ")");
      }
      outcome = absl::UnavailableError(absl::StrCat("TLS handshake refused: ", reason));
    }
  }
  SSL_shutdown(ssl.get());
  ::close(*fd);
  const timespec zero{0, 0};
  while (sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  return outcome;
}

// --- ChildProcessWatch -------------------------------------------------------------------------

ChildProcessWatch ChildProcessWatch::Of(pid_t parent) {
  ChildProcessWatch watch;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return watch;
  while (dirent* entry = ::readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid) || pid <= 0) continue;
    std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the
    // last ')'.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::vector<std::string> fields =
        absl::StrSplit(stat.substr(close + 1), ' ', absl::SkipEmpty());
    pid_t ppid = 0;
    if (fields.size() < 2 || !absl::SimpleAtoi(fields[1], &ppid) || ppid != parent) continue;
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) continue;  // Gone already.
    watch.pids_.push_back(pid);
    watch.pidfds_.push_back(pidfd);
  }
  ::closedir(proc);
  return watch;
}

ChildProcessWatch::ChildProcessWatch(ChildProcessWatch&& other) noexcept
    : pids_(std::move(other.pids_)), pidfds_(std::move(other.pidfds_)) {
  other.pids_.clear();
  other.pidfds_.clear();
}

ChildProcessWatch::~ChildProcessWatch() {
  for (int fd : pidfds_) ::close(fd);
}

std::vector<pid_t> ChildProcessWatch::StillRunningAfter(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<bool> gone(pids_.size(), false);
  while (true) {
    std::vector<pollfd> fds;
    std::vector<size_t> index;
    for (size_t i = 0; i < pids_.size(); ++i) {
      if (gone[i]) continue;
      fds.push_back({pidfds_[i], POLLIN, 0});
      index.push_back(i);
    }
    if (fds.empty()) break;
    const absl::Duration left = deadline - absl::Now();
    const int millis =
        left <= absl::ZeroDuration() ? 0 : static_cast<int>(absl::ToInt64Milliseconds(left) + 1);
    const int ready = ::poll(fds.data(), fds.size(), millis);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    for (size_t k = 0; k < fds.size(); ++k) {
      if ((fds[k].revents & POLLIN) != 0) {
        gone[index[k]] = true;
        // If it was reparented to this process (a child subreaper), reap the zombie.
        ::waitpid(pids_[index[k]], nullptr, WNOHANG);
      }
    }
  }
  std::vector<pid_t> running;
  for (size_t i = 0; i < pids_.size(); ++i) {
    if (!gone[i]) running.push_back(pids_[i]);
  }
  return running;
}

}  // namespace bulwark::conformance
