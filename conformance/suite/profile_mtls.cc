// The mtls profile (protocol-facts §2): the plugin's AutoMTLS certificate, client-certificate
// enforcement (missing, wrong CA, expired host identity), TLS >= 1.2, and plaintext without
// AutoMTLS.
#include <openssl/ssl.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "conformance/suite/conformance.h"
#include "conformance/suite/harness.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/handshake.h"
#include "protocol/tls_certs.h"

namespace bulwark::conformance {
namespace {

using ::testing::Contains;

// A plugin (launched, or the attach target) whose handshake has been read; nullptr after
// reporting a failure.
std::unique_ptr<PluginUnderTest> WithHandshake() {
  if (Config().attach) {
    absl::StatusOr<std::unique_ptr<PluginUnderTest>> put = PluginUnderTest::Start();
    if (!CheckOk(put.status(), "attaching")) return nullptr;
    return *std::move(put);
  }
  absl::StatusOr<std::unique_ptr<PluginUnderTest>> put = PluginUnderTest::Launch();
  if (!CheckOk(put.status(), "launching the plugin")) return nullptr;
  absl::StatusOr<protocol::HandshakeLine> hs = (*put)->ReadHandshake();
  if (!CheckOk(hs.status(), "reading the handshake")) return nullptr;
  return *std::move(put);
}

// The plugin's AutoMTLS certificate, parsed; nullopt after reporting a failure.
std::optional<protocol::CertInfo> PluginCert(PluginUnderTest& put) {
  if (put.handshake().server_cert_der.empty()) {
    ADD_FAILURE() << "expected an AutoMTLS certificate in the handshake line, got none";
    return std::nullopt;
  }
  absl::StatusOr<protocol::CertInfo> info = protocol::ParseCertDer(put.handshake().server_cert_der);
  if (!info.ok()) {
    ADD_FAILURE() << "expected a DER X.509 certificate, got: " << info.status();
    return std::nullopt;
  }
  return *info;
}

// Expects that a client presenting `cert` cannot make an RPC: the TLS handshake or the first
// call fails.
void ExpectRefused(PluginUnderTest& put, ClientCert cert, absl::string_view what) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = put.Dial(cert);
  if (!channel.ok()) {
    EXPECT_FALSE(absl::IsDeadlineExceeded(channel.status()))
        << what << ": expected a refused connection, got no verdict: " << channel.status();
    return;  // Refused while connecting.
  }
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> health =
      put.HealthCheckOn(*channel);
  EXPECT_FALSE(health.ok()) << what
                            << ": expected the plugin to refuse the connection, got a "
                               "grpc.health.v1.Health/Check reply (status "
                            << (health.ok() ? static_cast<int>(*health) : -1) << ")";
}

CONFORMANCE_TEST(Mtls, CertificateNamesLocalhost, Must, "plugin-protocol.md §3 (AutoMTLS)",
                 "The plugin's AutoMTLS certificate MUST carry the DNS subjectAltName 'localhost' "
                 "(hosts verify the server name 'localhost') and CN=localhost.") {
  std::unique_ptr<PluginUnderTest> put = WithHandshake();
  if (put == nullptr) return;
  std::optional<protocol::CertInfo> cert = PluginCert(*put);
  if (!cert) return;
  EXPECT_THAT(cert->dns_names, Contains("localhost"))
      << "expected DNS:localhost in subjectAltName, got [" << absl::StrJoin(cert->dns_names, ", ")
      << "]";
  EXPECT_EQ(cert->common_name, "localhost") << "subject " << cert->subject;
}

CONFORMANCE_TEST(Mtls, CertificateIsCa, Should, "plugin-protocol.md §3 (AutoMTLS)",
                 "The plugin's AutoMTLS certificate SHOULD be a CA (basicConstraints CA:TRUE, "
                 "keyUsage keyCertSign), as go-plugin's, because hosts use it as the trust anchor "
                 "for itself.") {
  std::unique_ptr<PluginUnderTest> put = WithHandshake();
  if (put == nullptr) return;
  std::optional<protocol::CertInfo> cert = PluginCert(*put);
  if (!cert) return;
  EXPECT_TRUE(cert->is_ca) << "expected basicConstraints CA:TRUE, got extensions ["
                           << absl::StrJoin(cert->extensions, ", ") << "]";
  EXPECT_THAT(cert->key_usage, Contains("keyCertSign"))
      << "expected keyUsage keyCertSign, got [" << absl::StrJoin(cert->key_usage, ", ") << "]";
}

CONFORMANCE_TEST(Mtls, CertificateUsages, Must, "plugin-protocol.md §3 (AutoMTLS)",
                 "The plugin's AutoMTLS certificate MUST allow both serverAuth (the host's "
                 "connection) and clientAuth (the plugin's broker dials to the host) and, when "
                 "keyUsage is present, digitalSignature.") {
  std::unique_ptr<PluginUnderTest> put = WithHandshake();
  if (put == nullptr) return;
  std::optional<protocol::CertInfo> cert = PluginCert(*put);
  if (!cert) return;
  const std::string ekus = absl::StrJoin(cert->ext_key_usage, ", ");
  if (!cert->ext_key_usage.empty()) {  // No EKU extension means any usage.
    EXPECT_THAT(cert->ext_key_usage, Contains("serverAuth")) << "extendedKeyUsage: " << ekus;
    EXPECT_THAT(cert->ext_key_usage, Contains("clientAuth")) << "extendedKeyUsage: " << ekus;
  }
  if (!cert->key_usage.empty()) {
    EXPECT_THAT(cert->key_usage, Contains("digitalSignature"))
        << "keyUsage: " << absl::StrJoin(cert->key_usage, ", ");
  }
}

CONFORMANCE_TEST(Mtls, CertificateValidNow, Must, "plugin-protocol.md §3 (AutoMTLS)",
                 "The plugin's AutoMTLS certificate MUST be valid now (notBefore <= now <= "
                 "notAfter).") {
  std::unique_ptr<PluginUnderTest> put = WithHandshake();
  if (put == nullptr) return;
  std::optional<protocol::CertInfo> cert = PluginCert(*put);
  if (!cert) return;
  const absl::Time now = absl::Now();
  EXPECT_LE(cert->not_before, now) << "expected notBefore <= now (" << absl::FormatTime(now)
                                   << "), got " << absl::FormatTime(cert->not_before);
  EXPECT_GE(cert->not_after, now) << "expected notAfter >= now (" << absl::FormatTime(now)
                                  << "), got " << absl::FormatTime(cert->not_after);
}

CONFORMANCE_TEST(Mtls, CertificateEcKey, Should, "plugin-protocol.md §3 (AutoMTLS)",
                 "The plugin's AutoMTLS certificate SHOULD have an ECDSA key on P-256, P-384 or "
                 "P-521 (go-plugin uses P-521).") {
  std::unique_ptr<PluginUnderTest> put = WithHandshake();
  if (put == nullptr) return;
  std::optional<protocol::CertInfo> cert = PluginCert(*put);
  if (!cert) return;
  EXPECT_EQ(cert->key_algorithm, "EC");
  const std::vector<std::string> curves = {"P-256", "P-384", "P-521"};
  EXPECT_THAT(curves, Contains(cert->curve)) << "expected an EC key on P-256/P-384/P-521, got "
                                             << cert->key_algorithm << " " << cert->curve;
}

CONFORMANCE_TEST(Mtls, RequiresClientCertificate, Must, "plugin-protocol.md §3 (AutoMTLS)",
                 "Under AutoMTLS a plugin MUST refuse a client that presents no certificate.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  std::unique_ptr<PluginUnderTest> put = WithHandshake();
  if (put == nullptr) return;
  ASSERT_FALSE(put->handshake().server_cert_der.empty()) << "expected AutoMTLS, got plaintext";
  ExpectRefused(*put, ClientCert::kNone, "no client certificate");
}

CONFORMANCE_TEST(Mtls, RefusesOtherCa, Must, "plugin-protocol.md §3 (AutoMTLS)",
                 "Under AutoMTLS a plugin MUST refuse a client certificate other than the one "
                 "the host passed in PLUGIN_CLIENT_CERT.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  std::unique_ptr<PluginUnderTest> put = WithHandshake();
  if (put == nullptr) return;
  ASSERT_FALSE(put->handshake().server_cert_der.empty()) << "expected AutoMTLS, got plaintext";
  ExpectRefused(*put, ClientCert::kOtherCa, "a self-signed certificate from another CA");
}

CONFORMANCE_TEST(Mtls, RefusesExpiredHostCertificate, Must, "plugin-protocol.md §3 (AutoMTLS)",
                 "A plugin MUST NOT accept a connection authenticated by an expired host "
                 "certificate: given one in PLUGIN_CLIENT_CERT it either exits non-zero or "
                 "refuses the host that presents it.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  LaunchOptions options;
  options.host_identity_expired = true;
  absl::StatusOr<std::unique_ptr<PluginUnderTest>> put = PluginUnderTest::Launch(options);
  ASSERT_TRUE(CheckOk(put.status(), "launching the plugin"));
  absl::StatusOr<protocol::HandshakeLine> hs = (*put)->ReadHandshake();
  if (absl::IsUnavailable(hs.status())) {  // Refused at start-up: must exit non-zero.
    absl::StatusOr<sdk::testing::ProcessExitStatus> exit = (*put)->WaitForExit();
    if (!CheckOk(exit.status(), "waiting for the refusing plugin to exit")) return;
    EXPECT_TRUE(exit->signaled || exit->code != 0) << "expected a non-zero exit, got 0";
    return;
  }
  if (!CheckOk(hs.status(), "reading the handshake")) return;
  ExpectRefused(**put, ClientCert::kLaunchIdentity, "the expired host certificate");
}

CONFORMANCE_TEST(Mtls, RefusesTlsBelow12, Must, "plugin-protocol.md §3 (AutoMTLS)",
                 "Under AutoMTLS a plugin MUST refuse TLS 1.0 and 1.1 (MinVersion TLS 1.2) even "
                 "from a client presenting the host certificate.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  std::unique_ptr<PluginUnderTest> put = WithHandshake();
  if (put == nullptr) return;
  ASSERT_FALSE(put->handshake().server_cert_der.empty()) << "expected AutoMTLS, got plaintext";
  // The probe must be able to complete a modern handshake, or its refusals would mean nothing.
  absl::StatusOr<std::string> modern =
      TryTlsHandshake(put->handshake(), TLS1_3_VERSION, put->host_identity(), Config().rpc_timeout);
  ASSERT_TRUE(modern.ok()) << "the suite's TLS probe could not complete a TLS 1.2/1.3 handshake "
                              "with the host certificate: "
                           << modern.status();
  for (int version : {TLS1_VERSION, TLS1_1_VERSION}) {
    absl::StatusOr<std::string> legacy =
        TryTlsHandshake(put->handshake(), version, put->host_identity(), Config().rpc_timeout);
    if (absl::IsDeadlineExceeded(legacy.status())) {
      ReportTimeout("a TLS 1.0/1.1 handshake got neither an answer nor a refusal");
      return;
    }
    // OpenSSL says "no protocols available" when the suite's own client could not offer the
    // version; then nothing was tested.
    ASSERT_FALSE(!legacy.ok() &&
                 absl::StrContains(legacy.status().message(), "no protocols available"))
        << "the suite's TLS probe could not offer the old version: " << legacy.status();
    EXPECT_FALSE(legacy.ok()) << "expected TLS <= " << (version == TLS1_VERSION ? "1.0" : "1.1")
                              << " to be refused, got a completed " << legacy.value_or("")
                              << " handshake";
  }
}

CONFORMANCE_TEST(Mtls, WorksWithoutAutoMtls, Must,
                 "plugin-protocol.md §2-3 (certificate field, AutoMTLS)",
                 "Launched without PLUGIN_CLIENT_CERT, a plugin MUST serve plaintext gRPC (empty "
                 "certificate field) and answer the health check.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  LaunchOptions options;
  options.automtls = false;
  absl::StatusOr<std::unique_ptr<PluginUnderTest>> put = PluginUnderTest::Start(options);
  ASSERT_TRUE(CheckOk(put.status(), "starting the plugin without AutoMTLS"));
  EXPECT_EQ((*put)->handshake().server_cert_der, "") << "expected no certificate without AutoMTLS";
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> health =
      (*put)->HealthCheck();
  if (!CheckOk(health.status(), "grpc.health.v1.Health/Check over plaintext")) return;
  EXPECT_EQ(*health, grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace bulwark::conformance
