// Tests for AutoMTLS certificates: the go-plugin profile field by field, checked against a cert
// Go generated with go-plugin's settings (testdata/), PEM/DER conversion, the handshake field.
#include "protocol/tls_certs.h"

#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/base64.h"
#include "protocol/handshake.h"

namespace bulwark::protocol {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// 2023-11-14T22:13:20Z: a whole second, so ASN.1 times round-trip exactly.
const absl::Time kNow = absl::FromUnixSeconds(1700000000);

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

SelfSignedCert MustGenerate(KeyType type, absl::Duration validity = kGoPluginCertValidity) {
  absl::StatusOr<SelfSignedCert> cert = GenerateSelfSignedCert(type, validity, kNow);
  EXPECT_TRUE(cert.ok()) << cert.status();
  return cert.value_or(SelfSignedCert{});
}

// The go-plugin profile, checked the same way for ours and for Go's.
void ExpectGoPluginProfile(const CertInfo& info) {
  EXPECT_EQ(info.key_algorithm, "EC");
  EXPECT_EQ(info.subject, "CN=localhost,O=HashiCorp");
  EXPECT_EQ(info.issuer, info.subject);
  EXPECT_EQ(info.common_name, "localhost");
  EXPECT_THAT(info.dns_names, ElementsAre("localhost"));
  EXPECT_TRUE(info.ip_addresses.empty());
  EXPECT_TRUE(info.is_ca);
  EXPECT_TRUE(info.self_signed);
  EXPECT_THAT(info.key_usage,
              ElementsAre("digitalSignature", "keyEncipherment", "keyAgreement", "keyCertSign"));
  EXPECT_THAT(info.ext_key_usage, ElementsAre("clientAuth", "serverAuth"));
  EXPECT_THAT(info.extensions,
              ElementsAre("keyUsage(critical)", "extendedKeyUsage", "basicConstraints(critical)",
                          "subjectKeyIdentifier", "subjectAltName"));
  EXPECT_FALSE(info.serial_hex.empty());
  EXPECT_LE(info.serial_hex.size(), 32u);  // Below 2^128.
}

TEST(GenerateSelfSignedCertTest, P521MatchesGoPluginProfile) {
  const SelfSignedCert cert = MustGenerate(KeyType::kP521);
  EXPECT_THAT(cert.cert_pem, StartsWith("-----BEGIN CERTIFICATE-----\n"));
  EXPECT_THAT(cert.key_pem, StartsWith("-----BEGIN EC PRIVATE KEY-----\n"));
  absl::StatusOr<CertInfo> info = ParseCertPem(cert.cert_pem);
  ASSERT_TRUE(info.ok()) << info.status();
  ExpectGoPluginProfile(*info);
  EXPECT_EQ(info->curve, "P-521");
  EXPECT_EQ(info->key_type, KeyType::kP521);
  EXPECT_EQ(info->signature_algorithm, "ecdsa-with-SHA512");
  EXPECT_EQ(info->not_before, kNow - absl::Seconds(30));
  EXPECT_EQ(info->not_after, kNow + absl::Hours(262980));
  EXPECT_TRUE(CheckKeyMatchesCert(cert.cert_pem, cert.key_pem).ok());
}

TEST(GenerateSelfSignedCertTest, P256) {
  const SelfSignedCert cert = MustGenerate(KeyType::kP256, absl::Hours(1));
  absl::StatusOr<CertInfo> info = ParseCertDer(cert.cert_der);
  ASSERT_TRUE(info.ok()) << info.status();
  ExpectGoPluginProfile(*info);
  EXPECT_EQ(info->curve, "P-256");
  EXPECT_EQ(info->key_type, KeyType::kP256);
  EXPECT_EQ(info->signature_algorithm, "ecdsa-with-SHA256");
  EXPECT_EQ(info->not_after, kNow + absl::Hours(1));
  EXPECT_TRUE(CheckKeyMatchesCert(cert.cert_pem, cert.key_pem).ok());
}

TEST(GenerateSelfSignedCertTest, TimesComeFromTheCaller) {
  // A time after 2049 is encoded as GeneralizedTime, before as UTCTime; both parse back.
  const absl::Time later =
      absl::FromCivil(absl::CivilSecond(2070, 6, 1, 12, 0, 0), absl::UTCTimeZone());
  absl::StatusOr<SelfSignedCert> cert =
      GenerateSelfSignedCert(KeyType::kP256, absl::Hours(24), later);
  ASSERT_TRUE(cert.ok()) << cert.status();
  absl::StatusOr<CertInfo> info = ParseCertPem(cert->cert_pem);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->not_before, later - absl::Seconds(30));
  EXPECT_EQ(info->not_after, later + absl::Hours(24));
}

TEST(GenerateSelfSignedCertTest, FreshKeyAndSerialEachTime) {
  const SelfSignedCert a = MustGenerate(KeyType::kP256);
  const SelfSignedCert b = MustGenerate(KeyType::kP256);
  EXPECT_NE(a.key_pem, b.key_pem);
  EXPECT_NE(ParseCertPem(a.cert_pem)->serial_hex, ParseCertPem(b.cert_pem)->serial_hex);
  absl::Status mismatch = CheckKeyMatchesCert(a.cert_pem, b.key_pem);
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kFailedPrecondition) << mismatch;
}

TEST(GenerateSelfSignedCertTest, RejectsBadValidity) {
  EXPECT_EQ(GenerateSelfSignedCert(KeyType::kP256, absl::ZeroDuration(), kNow).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GenerateSelfSignedCert(KeyType::kP256, -absl::Hours(1), kNow).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<SelfSignedCert> cert =
      GenerateSelfSignedCert(KeyType::kP256, absl::Hours(24 * 365 * 9000), kNow);
  EXPECT_EQ(cert.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(cert.status().message()), HasSubstr("outside the years"));
}

TEST(GoPluginFixtureTest, GoGeneratedCertHasTheSameProfileAsOurs) {
  const std::string pem = ReadFile("protocol/testdata/goplugin_p521_cert.pem");
  const std::string key = ReadFile("protocol/testdata/goplugin_p521_key.pem");
  ASSERT_FALSE(pem.empty());
  absl::StatusOr<CertInfo> go = ParseCertPem(pem);
  ASSERT_TRUE(go.ok()) << go.status();
  ExpectGoPluginProfile(*go);
  EXPECT_EQ(go->curve, "P-521");
  EXPECT_EQ(go->signature_algorithm, "ecdsa-with-SHA512");
  EXPECT_EQ(go->not_after - go->not_before, absl::Hours(262980) + absl::Seconds(30));
  EXPECT_THAT(key, StartsWith("-----BEGIN EC PRIVATE KEY-----\n"));
  EXPECT_TRUE(CheckKeyMatchesCert(pem, key).ok());

  // Ours differs only in key, serial, times and SKI.
  absl::StatusOr<CertInfo> ours = ParseCertPem(MustGenerate(KeyType::kP521).cert_pem);
  ASSERT_TRUE(ours.ok());
  EXPECT_EQ(ours->subject, go->subject);
  EXPECT_EQ(ours->extensions, go->extensions);
  EXPECT_EQ(ours->key_usage, go->key_usage);
  EXPECT_EQ(ours->ext_key_usage, go->ext_key_usage);
  EXPECT_EQ(ours->dns_names, go->dns_names);
  EXPECT_EQ(ours->signature_algorithm, go->signature_algorithm);
}

TEST(GoPluginFixtureTest, HandshakeCertFieldIsTheCertificateDer) {
  const std::string line = ReadFile("protocol/testdata/goplugin_handshake_line.txt");
  absl::StatusOr<HandshakeLine> hs = ParseHandshakeLine(line, {5});
  ASSERT_TRUE(hs.ok()) << hs.status();
  absl::StatusOr<std::string> der =
      CertPemToDer(ReadFile("protocol/testdata/goplugin_p521_cert.pem"));
  ASSERT_TRUE(der.ok()) << der.status();
  EXPECT_EQ(hs->server_cert_der, *der);
  absl::StatusOr<CertInfo> info = ParseCertDer(hs->server_cert_der);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->key_type, KeyType::kP521);
}

TEST(GoPluginFixtureTest, OurCertRoundTripsThroughAHandshakeLine) {
  const SelfSignedCert cert = MustGenerate(KeyType::kP521);
  HandshakeLine hs;
  hs.app_version = 5;
  hs.network = "unix";
  hs.address = "/tmp/plugin1";
  hs.protocol = "grpc";
  hs.server_cert_der = cert.cert_der;
  const std::string line = FormatHandshakeLine(hs);
  EXPECT_EQ(line.find('='), std::string::npos);
  absl::StatusOr<HandshakeLine> parsed = ParseHandshakeLine(line, {5});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<std::string> pem = CertDerToPem(parsed->server_cert_der);
  ASSERT_TRUE(pem.ok()) << pem.status();
  EXPECT_EQ(*pem, cert.cert_pem);
}

TEST(CertConversionTest, DerPemRoundTrip) {
  const SelfSignedCert cert = MustGenerate(KeyType::kP256);
  EXPECT_EQ(*CertDerToPem(cert.cert_der), cert.cert_pem);
  EXPECT_EQ(*CertPemToDer(cert.cert_pem), cert.cert_der);
  // Other PEM blocks before the certificate are skipped.
  EXPECT_EQ(*CertPemToDer(cert.key_pem + cert.cert_pem), cert.cert_der);
  // PEM line breaks are 64 columns, as Go's pem.Encode writes them.
  size_t start = cert.cert_pem.find('\n') + 1;
  EXPECT_EQ(cert.cert_pem.find('\n', start) - start, 64u);
}

TEST(CertConversionTest, RejectsGarbage) {
  const SelfSignedCert cert = MustGenerate(KeyType::kP256);
  EXPECT_EQ(CertDerToPem("not der").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CertDerToPem("").status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::string> trailing = CertDerToPem(cert.cert_der + "x");
  EXPECT_EQ(trailing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(trailing.status().message()), HasSubstr("1 bytes of trailing data"));
  EXPECT_EQ(CertDerToPem(cert.cert_der.substr(0, 100)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CertPemToDer(cert.key_pem).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CertPemToDer("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCertPem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CertDerToPem(std::string(kCertInputBytesMax + 1, '\x30')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckKeyMatchesCert(cert.cert_pem, "nope").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckKeyMatchesCert("nope", cert.key_pem).code(), absl::StatusCode::kInvalidArgument);
}

TEST(GenerateVaultPluginCertTest, MatchesVaultsLegacyPluginProfile) {
  absl::StatusOr<SelfSignedCert> cert = GenerateVaultPluginCert(kNow);
  ASSERT_TRUE(cert.ok()) << cert.status();
  absl::StatusOr<CertInfo> info = ParseCertDer(cert->cert_der);
  ASSERT_TRUE(info.ok()) << info.status();
  // CN = the only DNS SAN = a UUID (8-4-4-4-12 hex digits).
  EXPECT_THAT(cert->common_name,
              ::testing::MatchesRegex("[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}"));
  EXPECT_EQ(info->subject, absl::StrCat("CN=", cert->common_name));
  EXPECT_EQ(info->issuer, info->subject);
  EXPECT_EQ(info->common_name, cert->common_name);
  EXPECT_THAT(info->dns_names, ElementsAre(cert->common_name));
  EXPECT_EQ(info->curve, "P-521");
  EXPECT_EQ(info->signature_algorithm, "ecdsa-with-SHA512");
  EXPECT_FALSE(info->is_ca);  // Go's IsCA without BasicConstraintsValid writes no extension.
  EXPECT_TRUE(info->self_signed);
  EXPECT_THAT(info->key_usage, ElementsAre("digitalSignature", "keyEncipherment", "keyAgreement"));
  EXPECT_THAT(info->ext_key_usage, ElementsAre("clientAuth", "serverAuth"));
  EXPECT_THAT(info->extensions, ElementsAre("keyUsage(critical)", "extendedKeyUsage",
                                            "subjectKeyIdentifier", "subjectAltName"));
  EXPECT_LE(info->serial_hex.size(), 40u);  // Below 2^159.
  EXPECT_EQ(info->not_before, kNow - absl::Seconds(30));
  EXPECT_EQ(info->not_after, kNow + absl::Hours(262980));
  EXPECT_TRUE(CheckKeyMatchesCert(cert->cert_pem, cert->key_pem).ok());
  // Each call is a fresh name and key.
  absl::StatusOr<SelfSignedCert> other = GenerateVaultPluginCert(kNow);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->common_name, cert->common_name);
  EXPECT_NE(other->key_pem, cert->key_pem);
}

TEST(EcPrivateKeyConversionTest, PemDerRoundTrip) {
  absl::StatusOr<SelfSignedCert> cert = GenerateVaultPluginCert(kNow);
  ASSERT_TRUE(cert.ok());
  absl::StatusOr<std::string> der = EcPrivateKeyPemToDer(cert->key_pem);
  ASSERT_TRUE(der.ok()) << der.status();
  EXPECT_EQ(static_cast<unsigned char>((*der)[0]), 0x30);  // A DER SEQUENCE (ECPrivateKey).
  absl::StatusOr<std::string> pem = EcPrivateKeyDerToPem(*der);
  ASSERT_TRUE(pem.ok()) << pem.status();
  EXPECT_THAT(*pem, StartsWith("-----BEGIN EC PRIVATE KEY-----\n"));
  EXPECT_TRUE(CheckKeyMatchesCert(cert->cert_pem, *pem).ok());
  EXPECT_EQ(*EcPrivateKeyPemToDer(*pem), *der);
  // The Go-written key (x509.MarshalECPrivateKey) reads too.
  EXPECT_TRUE(EcPrivateKeyPemToDer(ReadFile("protocol/testdata/goplugin_p521_key.pem")).ok());
}

TEST(EcPrivateKeyConversionTest, RejectsGarbage) {
  EXPECT_EQ(EcPrivateKeyDerToPem("not a key").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EcPrivateKeyPemToDer("-----BEGIN EC PRIVATE KEY-----\nAAAA\n").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(KeyTypeNameTest, Names) {
  EXPECT_EQ(KeyTypeName(KeyType::kP256), "P-256");
  EXPECT_EQ(KeyTypeName(KeyType::kP521), "P-521");
}

}  // namespace
}  // namespace bulwark::protocol
