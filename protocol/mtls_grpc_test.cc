// Proves that Debian's gRPC C++ 1.51 on OpenSSL 3 does go-plugin AutoMTLS (P-256 and P-521, TCP
// and unix sockets, a Go-written cert) and refuses untrusted or plaintext peers fast.
//
// Each side presents a self-signed certificate and trusts exactly the peer's, hostname
// "localhost", as go-plugin configures both ends. Refusals (untrusted client certificate, none,
// plaintext client, untrusted server, wrong hostname) must be UNAVAILABLE well before the
// deadline, never a hang.
#include <grpc/grpc_security_constants.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/health/health.grpc.pb.h"
#include "protocol/tls_certs.h"

namespace bulwark::protocol {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

// Every call gets this deadline; a failure must come back well before it.
constexpr auto kCallDeadline = std::chrono::seconds(5);
constexpr absl::Duration kFailFastBound = absl::Seconds(4);

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Identity {
  std::string cert_pem;
  std::string key_pem;
};

Identity Generate(KeyType type) {
  absl::StatusOr<SelfSignedCert> cert =
      GenerateSelfSignedCert(type, kGoPluginCertValidity, absl::Now());
  EXPECT_TRUE(cert.ok()) << cert.status();
  if (!cert.ok()) return {};
  return {cert->cert_pem, cert->key_pem};
}

// A P-521 identity written by Go with go-plugin's generateCert settings (testdata/README.md).
Identity GoPluginIdentity() {
  return {ReadFile("protocol/testdata/goplugin_p521_cert.pem"),
          ReadFile("protocol/testdata/goplugin_p521_key.pem")};
}

// grpc.health.v1.Health as go-plugin registers it: "plugin" (and "") are SERVING. Records the
// certificate each caller presented, so the test can see that mutual TLS really happened.
class HealthService final : public Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext* context, const HealthCheckRequest* request,
                     HealthCheckResponse* response) override {
    {
      absl::MutexLock lock(&mu_);
      ++calls_;
      peer_cert_pem_.clear();
      for (const grpc::string_ref& v :
           context->auth_context()->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME)) {
        peer_cert_pem_.assign(v.data(), v.size());
      }
    }
    if (request->service() != "" && request->service() != "plugin") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service");
    }
    response->set_status(HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }

  int calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  std::string peer_cert_pem() const {
    absl::MutexLock lock(&mu_);
    return peer_cert_pem_;
  }

 private:
  mutable absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::string peer_cert_pem_ ABSL_GUARDED_BY(mu_);
};

enum class Transport { kTcp, kUnix };

// A directory for unix sockets: $TEST_TMPDIR when the socket path fits in sun_path (107
// bytes), otherwise a fresh directory under /tmp, removed at the end.
class SocketDir {
 public:
  SocketDir() {
    const char* test_tmpdir = getenv("TEST_TMPDIR");
    if (test_tmpdir != nullptr && strlen(test_tmpdir) + 16 < 107) {
      path_ = test_tmpdir;
      return;
    }
    char tmpl[] = "/tmp/bw_mtls_XXXXXX";
    const char* dir = mkdtemp(tmpl);
    EXPECT_NE(dir, nullptr);
    if (dir != nullptr) {
      path_ = dir;
      owned_ = true;
    }
  }
  ~SocketDir() {
    for (const std::string& socket : sockets_) unlink(socket.c_str());
    if (owned_) rmdir(path_.c_str());
  }
  std::string NewSocket() {
    sockets_.push_back(absl::StrCat(path_, "/s", sockets_.size(), ".sock"));
    return sockets_.back();
  }

 private:
  std::string path_;
  bool owned_ = false;
  std::vector<std::string> sockets_;
};

// A gRPC server configured like a go-plugin plugin under AutoMTLS: its own certificate, the
// host's certificate as the only client CA, client certificates required and verified.
class TlsServer {
 public:
  TlsServer(const Identity& server, const std::string& trusted_client_cert_pem, Transport transport,
            SocketDir& sockets) {
    grpc::SslServerCredentialsOptions options(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = trusted_client_cert_pem;
    options.pem_key_cert_pairs.push_back({server.key_pem, server.cert_pem});
    grpc::ServerBuilder builder;
    int port = 0;
    std::string unix_target;
    if (transport == Transport::kTcp) {
      builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(options), &port);
    } else {
      unix_target = absl::StrCat("unix:", sockets.NewSocket());
      builder.AddListeningPort(unix_target, grpc::SslServerCredentials(options));
    }
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    if (server_ == nullptr) return;  // target() stays empty.
    if (transport == Transport::kTcp) {
      EXPECT_GT(port, 0);
      target_ = absl::StrCat("127.0.0.1:", port);
    } else {
      target_ = unix_target;
    }
  }

  ~TlsServer() {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
  }

  const std::string& target() const { return target_; }
  HealthService& service() { return service_; }

 private:
  HealthService service_;
  std::unique_ptr<grpc::Server> server_;
  std::string target_;
};

grpc::ChannelArguments ChannelArgs(bool override_target_name = true) {
  grpc::ChannelArguments args;
  // go-plugin verifies the peer as "localhost" (tls.Config.ServerName) in both directions.
  if (override_target_name) args.SetSslTargetNameOverride("localhost");
  // A private subchannel pool: no connection is shared with another test's channel.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return args;
}

std::shared_ptr<grpc::ChannelCredentials> ClientTls(const std::string& trusted_server_cert_pem,
                                                    const Identity* client) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = trusted_server_cert_pem;
  if (client != nullptr) {
    options.pem_private_key = client->key_pem;
    options.pem_cert_chain = client->cert_pem;
  }
  return grpc::SslCredentials(options);
}

struct CallResult {
  grpc::Status status;
  HealthCheckResponse response;
  absl::Duration elapsed;
  std::string server_cert_pem;  // From the client's view of the connection.
  std::string security_type;
};

CallResult CallHealth(const std::string& target,
                      std::shared_ptr<grpc::ChannelCredentials> credentials,
                      grpc::ChannelArguments args = ChannelArgs()) {
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(target, credentials, args);
  std::unique_ptr<Health::Stub> stub = Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
  HealthCheckRequest request;
  request.set_service("plugin");  // go-plugin's Ping: Check{service: "plugin"}.
  CallResult result;
  const absl::Time start = absl::Now();
  result.status = stub->Check(&context, request, &result.response);
  result.elapsed = absl::Now() - start;
  if (std::shared_ptr<const grpc::AuthContext> auth = context.auth_context(); auth != nullptr) {
    for (const grpc::string_ref& v : auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME)) {
      result.server_cert_pem.assign(v.data(), v.size());
    }
    for (const grpc::string_ref& v :
         auth->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME)) {
      result.security_type.assign(v.data(), v.size());
    }
  }
  return result;
}

std::string Der(const std::string& pem) {
  absl::StatusOr<std::string> der = CertPemToDer(pem);
  EXPECT_TRUE(der.ok()) << der.status();
  return der.value_or("");
}

// --- Successful mutual TLS -------------------------------------------------------------------

struct MtlsCase {
  const char* name;
  std::optional<KeyType> server;  // nullopt: the Go-generated P-521 identity.
  KeyType client;
  Transport transport;
};

class MutualTlsTest : public ::testing::TestWithParam<MtlsCase> {};

TEST_P(MutualTlsTest, HealthCheckSucceedsAndBothSidesSeeThePeerCertificate) {
  const MtlsCase& c = GetParam();
  const Identity server = c.server.has_value() ? Generate(*c.server) : GoPluginIdentity();
  const Identity client = Generate(c.client);
  ASSERT_FALSE(server.cert_pem.empty());
  ASSERT_FALSE(client.cert_pem.empty());
  SocketDir sockets;
  TlsServer tls_server(server, client.cert_pem, c.transport, sockets);
  ASSERT_FALSE(tls_server.target().empty());

  CallResult r = CallHealth(tls_server.target(), ClientTls(server.cert_pem, &client));
  ASSERT_TRUE(r.status.ok()) << r.status.error_code() << ": " << r.status.error_message();
  EXPECT_EQ(r.response.status(), HealthCheckResponse::SERVING);
  EXPECT_EQ(r.security_type, "ssl");
  EXPECT_EQ(Der(r.server_cert_pem), Der(server.cert_pem));
  EXPECT_EQ(tls_server.service().calls(), 1);
  EXPECT_EQ(Der(tls_server.service().peer_cert_pem()), Der(client.cert_pem));
}

INSTANTIATE_TEST_SUITE_P(
    Curves, MutualTlsTest,
    ::testing::Values(
        MtlsCase{"P256_P256_Tcp", KeyType::kP256, KeyType::kP256, Transport::kTcp},
        MtlsCase{"P521Server_P256Client_Tcp", KeyType::kP521, KeyType::kP256, Transport::kTcp},
        MtlsCase{"P256Server_P521Client_Tcp", KeyType::kP256, KeyType::kP521, Transport::kTcp},
        MtlsCase{"P521_P521_Tcp", KeyType::kP521, KeyType::kP521, Transport::kTcp},
        MtlsCase{"P256_P256_Unix", KeyType::kP256, KeyType::kP256, Transport::kUnix},
        MtlsCase{"P521_P521_Unix", KeyType::kP521, KeyType::kP521, Transport::kUnix},
        MtlsCase{"GoPluginP521Server_P521Client_Unix", std::nullopt, KeyType::kP521,
                 Transport::kUnix}),
    [](const ::testing::TestParamInfo<MtlsCase>& info) { return std::string(info.param.name); });

// --- Vault's legacy plugin TLS (without AutoMTLS) ------------------------------------------

// Host and plugin share one certificate and key (CN = SAN = a UUID, no basicConstraints, no
// keyCertSign) that each side trusts as the only CA, and verify its CN as the server name.
TEST(LegacyVaultTlsTest, OneSharedCertificateServesAndAuthenticatesBothWays) {
  absl::StatusOr<SelfSignedCert> shared = GenerateVaultPluginCert(absl::Now());
  ASSERT_TRUE(shared.ok()) << shared.status();
  const Identity identity{shared->cert_pem, shared->key_pem};
  for (Transport transport : {Transport::kTcp, Transport::kUnix}) {
    SocketDir sockets;
    TlsServer server(identity, identity.cert_pem, transport, sockets);
    ASSERT_FALSE(server.target().empty());
    grpc::ChannelArguments args = ChannelArgs(/*override_target_name=*/false);
    args.SetSslTargetNameOverride(shared->common_name);
    CallResult r = CallHealth(server.target(), ClientTls(identity.cert_pem, &identity), args);
    ASSERT_TRUE(r.status.ok()) << r.status.error_code() << ": " << r.status.error_message();
    EXPECT_EQ(Der(server.service().peer_cert_pem()), shared->cert_der);

    // Another name, another certificate, or none at all is refused.
    CallResult wrong_name = CallHealth(server.target(), ClientTls(identity.cert_pem, &identity));
    EXPECT_EQ(wrong_name.status.error_code(), grpc::StatusCode::UNAVAILABLE);
    const Identity stranger = Generate(KeyType::kP521);
    CallResult wrong_client =
        CallHealth(server.target(), ClientTls(identity.cert_pem, &stranger), args);
    EXPECT_EQ(wrong_client.status.error_code(), grpc::StatusCode::UNAVAILABLE);
    CallResult no_client = CallHealth(server.target(), ClientTls(identity.cert_pem, nullptr), args);
    EXPECT_EQ(no_client.status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(server.service().calls(), 1);
  }
}

// --- Refusals --------------------------------------------------------------------------------

class MtlsRefusalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_identity_ = Generate(KeyType::kP521);
    client_identity_ = Generate(KeyType::kP521);
    server_ = std::make_unique<TlsServer>(server_identity_, client_identity_.cert_pem,
                                          Transport::kTcp, sockets_);
    ASSERT_FALSE(server_->target().empty());
    // The correctly configured client works, so each refusal below is down to one change.
    CallResult ok =
        CallHealth(server_->target(), ClientTls(server_identity_.cert_pem, &client_identity_));
    ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  }

  void ExpectRefused(const CallResult& r) {
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE) << r.status.error_message();
    EXPECT_LT(r.elapsed, kFailFastBound);
    EXPECT_EQ(server_->service().calls(), 1) << "the refused call reached the service";
  }

  SocketDir sockets_;
  Identity server_identity_;
  Identity client_identity_;
  std::unique_ptr<TlsServer> server_;
};

TEST_F(MtlsRefusalTest, UntrustedClientCertificate) {
  const Identity stranger = Generate(KeyType::kP521);
  ExpectRefused(CallHealth(server_->target(), ClientTls(server_identity_.cert_pem, &stranger)));
}

TEST_F(MtlsRefusalTest, UntrustedP256ClientCertificate) {
  const Identity stranger = Generate(KeyType::kP256);
  ExpectRefused(CallHealth(server_->target(), ClientTls(server_identity_.cert_pem, &stranger)));
}

TEST_F(MtlsRefusalTest, NoClientCertificate) {
  ExpectRefused(CallHealth(server_->target(), ClientTls(server_identity_.cert_pem, nullptr)));
}

TEST_F(MtlsRefusalTest, PlaintextClient) {
  ExpectRefused(CallHealth(server_->target(), grpc::InsecureChannelCredentials()));
}

TEST_F(MtlsRefusalTest, ClientDoesNotTrustTheServer) {
  const Identity other = Generate(KeyType::kP521);
  ExpectRefused(CallHealth(server_->target(), ClientTls(other.cert_pem, &client_identity_)));
}

TEST_F(MtlsRefusalTest, HostnameMustBeLocalhost) {
  // Without the "localhost" override the client checks "127.0.0.1", which the certificate
  // does not name (go-plugin certificates carry DNS:localhost only, no IP SAN).
  ExpectRefused(CallHealth(server_->target(),
                           ClientTls(server_identity_.cert_pem, &client_identity_),
                           ChannelArgs(/*override_target_name=*/false)));
}

}  // namespace
}  // namespace bulwark::protocol
