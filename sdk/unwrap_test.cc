// The plugin's unwrap against a one-shot HTTP responder on 127.0.0.1:0: the request it sends
// (Vault's Go client's), the certificate and key it returns, and each refusal.
#include "sdk/unwrap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/crypto/es512.h"
#include "base/crypto/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/tls_certs.h"
#include "protocol/wrapping_token.h"

namespace bulwark::sdk {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Accepts one connection, reads one request (headers and a Content-Length body), answers
// `status` with `body`, and records the request.
class OneShotHttp {
 public:
  OneShotHttp(int status, std::string body) : status_(status), body_(std::move(body)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(fd_, 1), 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~OneShotHttp() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string addr() const { return absl::StrCat("http://127.0.0.1:", port_); }
  // Valid once the client has its answer (the thread has read the whole request by then).
  const std::string& request() const { return request_; }

 private:
  void Serve() {
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    char buf[4096];
    while (true) {
      const size_t end = request_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        const size_t at = absl::AsciiStrToLower(request_).find("content-length: ");
        if (at != std::string::npos) length = std::stoul(request_.substr(at + 16));
        if (request_.size() >= end + 4 + length) break;
      }
      const ssize_t n = ::read(c, buf, sizeof(buf));
      if (n <= 0) break;
      request_.append(buf, static_cast<size_t>(n));
    }
    const std::string reply =
        absl::StrCat("HTTP/1.1 ", status_, " X\r\nContent-Type: application/json\r\n",
                     "Content-Length: ", body_.size(), "\r\nConnection: close\r\n\r\n", body_);
    (void)!::write(c, reply.data(), reply.size());
    ::close(c);
  }

  int status_;
  std::string body_;
  int fd_ = -1;
  int port_ = 0;
  std::string request_;
  std::thread thread_;
};

std::string Seed(absl::string_view label) {
  std::string out;
  for (int i = 0; out.size() < crypto::kP521SeedBytes; ++i) {
    out += crypto::Sha256::Hash(absl::StrCat(label, i));
  }
  out.resize(crypto::kP521SeedBytes);
  return out;
}

std::string Token(const std::string& addr) {
  protocol::WrappingClaims c;
  c.id = "hvs.id";
  c.issued_at = absl::Now();
  c.expires_at = c.issued_at + absl::Seconds(60);
  c.not_before = c.issued_at;
  c.addr = addr;
  return *protocol::EncodeWrappingJwt(c, *crypto::P521SigningKey::FromSeed(Seed("k")), Seed("n"));
}

EnvLookup NoEnv() {
  return [](absl::string_view) -> std::optional<std::string> { return std::nullopt; };
}

TEST(UnwrapPluginTlsTest, SendsVaultsRequestAndReturnsTheSharedCertificate) {
  absl::StatusOr<protocol::SelfSignedCert> cert = protocol::GenerateVaultPluginCert(absl::Now());
  ASSERT_TRUE(cert.ok());
  const std::string key_der = *protocol::EcPrivateKeyPemToDer(cert->key_pem);
  const nlohmann::json reply = {{"request_id", "r"},
                                {"data",
                                 {{"ServerCert", absl::Base64Escape(cert->cert_der)},
                                  {"ServerKey", absl::Base64Escape(key_der)}}}};
  OneShotHttp host(200, reply.dump());
  const std::string token = Token(host.addr() + "/");  // A trailing slash is tolerated.
  absl::StatusOr<PluginTls> tls = UnwrapPluginTls(token, NoEnv());
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(*protocol::CertPemToDer(tls->cert_pem), cert->cert_der);
  EXPECT_TRUE(protocol::CheckKeyMatchesCert(tls->cert_pem, tls->key_pem).ok());
  EXPECT_EQ(tls->server_name, cert->common_name);
  EXPECT_EQ(tls->addr, host.addr());

  const std::string& request = host.request();
  EXPECT_TRUE(absl::StartsWith(request, "PUT /v1/sys/wrapping/unwrap HTTP/1.1\r\n")) << request;
  EXPECT_THAT(request, HasSubstr(absl::StrCat("\r\nX-Vault-Token: ", token, "\r\n")));
  EXPECT_THAT(request, HasSubstr("\r\nX-Vault-Request: true\r\n"));
  EXPECT_TRUE(absl::EndsWith(request, "\r\n\r\nnull")) << request;
}

TEST(UnwrapPluginTlsTest, ARefusalCarriesVaultsTextNotTheToken) {
  OneShotHttp host(400, R"({"errors":["wrapping token is not valid or does not exist"]})");
  const std::string token = Token(host.addr());
  absl::StatusOr<PluginTls> tls = UnwrapPluginTls(token, NoEnv());
  EXPECT_EQ(tls.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(tls.status().message(), HasSubstr("wrapping token is not valid or does not exist"));
  EXPECT_THAT(tls.status().message(), HasSubstr("HTTP 400"));
  EXPECT_THAT(std::string(tls.status().message()), Not(HasSubstr(token)));
}

TEST(UnwrapPluginTlsTest, AReplyWithoutTheMaterialIsRefused) {
  OneShotHttp host(200, R"({"data":{"ServerCert":"bm90IGEgY2VydA==","ServerKey":"eA=="}})");
  absl::StatusOr<PluginTls> tls = UnwrapPluginTls(Token(host.addr()), NoEnv());
  EXPECT_EQ(tls.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tls.status().message(), HasSubstr("not a certificate"));
}

TEST(UnwrapPluginTlsTest, TheTokenMustNameAnHttpAddress) {
  EXPECT_EQ(UnwrapPluginTls("not-a-jwt", NoEnv()).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status no_addr = UnwrapPluginTls(Token(""), NoEnv()).status();
  EXPECT_THAT(no_addr.message(), HasSubstr("no vault api_addr found"));
  absl::Status bad = UnwrapPluginTls(Token("ftp://host:1"), NoEnv()).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr("could not validate addr claim"));
}

TEST(UnwrapPluginTlsTest, NothingListeningIsUnavailable) {
  // A port that was just free: bind, note it, close.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  absl::Status status =
      UnwrapPluginTls(Token(absl::StrCat("http://127.0.0.1:", ntohs(a.sin_port))), NoEnv())
          .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("api_addr reachable"));
}

}  // namespace
}  // namespace bulwark::sdk
