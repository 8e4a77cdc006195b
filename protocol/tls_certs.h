// AutoMTLS certificates for the RPC adapter: go-plugin-style self-signed ECDSA certificates,
// PEM/DER conversion and a certificate parser (OpenSSL 3 stays in the .cc).
#ifndef BULWARK_PROTOCOL_TLS_CERTS_H_
#define BULWARK_PROTOCOL_TLS_CERTS_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace bulwark::protocol {

// The ECDSA curves bulwark generates. go-plugin always uses P-521 (mtls.go generateCert:
// `ecdsa.GenerateKey(elliptic.P521(), rand.Reader)`); P-256 is what every TLS stack supports.
enum class KeyType { kP256, kP521 };

// "P-256" or "P-521".
absl::string_view KeyTypeName(KeyType key_type);

// go-plugin's certificate lifetime (mtls.go: `NotAfter: time.Now().Add(262980 * time.Hour)`,
// about 30 years) and backdating (`NotBefore: time.Now().Add(-30 * time.Second)`).
inline constexpr absl::Duration kGoPluginCertValidity = absl::Hours(262980);
inline constexpr absl::Duration kCertBackdate = absl::Seconds(30);

// Longest PEM or DER input the parsers accept (a go-plugin certificate is under 1 KiB).
inline constexpr size_t kCertInputBytesMax = 64 * 1024;

struct SelfSignedCert {
  std::string cert_pem;     // "-----BEGIN CERTIFICATE-----" ...
  std::string key_pem;      // "-----BEGIN EC PRIVATE KEY-----" (SEC1), as go-plugin writes it.
  std::string cert_der;     // The certificate's DER: what the handshake line carries.
  std::string common_name;  // The subject CN, also the only DNS name: what peers verify.
};

// Generates a fresh key on `key_type` and a self-signed certificate for it with go-plugin's
// profile (mtls.go generateCert, v1.0.1 and HEAD):
//   subject = issuer = O=HashiCorp, CN=localhost (PrintableString, Go's order)
//   serial: 128 random bits from OpenSSL's CSPRNG (never 0)
//   notBefore = now - kCertBackdate, notAfter = now + validity (UTCTime before 2050, then
//   GeneralizedTime, as RFC 5280 and Go do)
//   extensions, in Go's order: keyUsage (critical) digitalSignature, keyEncipherment,
//   keyAgreement, keyCertSign; extendedKeyUsage clientAuth, serverAuth; basicConstraints
//   (critical) CA:TRUE; subjectKeyIdentifier (SHA-1 of the public key, Go's default for CAs);
//   subjectAltName DNS:localhost
//   signature: ecdsa-with-SHA256 for P-256, ecdsa-with-SHA512 for P-521 (Go's choice per curve)
// `now` comes from the caller's Clock (WallNow), so tests and the simulator control it. The
// key and serial come from OpenSSL's RNG: this is production-only adapter code.
// Thread-safe.
// Errors: InvalidArgument if `validity` is not positive or the validity period falls outside
// what X.509 can encode (years 0-9999); Internal if OpenSSL fails.
absl::StatusOr<SelfSignedCert> GenerateSelfSignedCert(KeyType key_type, absl::Duration validity,
                                                      absl::Time now);

// Vault's legacy plugin TLS certificate (sdk/helper/pluginutil/tls.go generateCert), which host
// and plugin share when AutoMTLS is off (protocol-facts §2, "Legacy Vault TLS"):
//   key P-521; subject = issuer = CN=<random UUID> (no O); subjectAltName DNS:<the same UUID>
//   serial: 159 random bits (certutil.GenerateSerialNumber)
//   notBefore = now - kCertBackdate, notAfter = now + kGoPluginCertValidity
//   extensions: keyUsage (critical) digitalSignature, keyEncipherment, keyAgreement (no
//   keyCertSign); extendedKeyUsage clientAuth, serverAuth; no basicConstraints (Go's IsCA
//   without BasicConstraintsValid); subjectKeyIdentifier; signed ecdsa-with-SHA512.
// Both ends trust exactly this certificate and verify the name common_name. The key and the
// UUID come from OpenSSL's RNG: production-only adapter code. Thread-safe.
// Errors: Internal if OpenSSL fails.
absl::StatusOr<SelfSignedCert> GenerateVaultPluginCert(absl::Time now);

// A certificate authority for bulwark's cluster port (docs/ha.md): a fresh P-256 key and a
// self-signed certificate, subject CN=<common_name>, CA:TRUE (critical), keyUsage
// digitalSignature, keyCertSign, cRLSign, signed ecdsa-with-SHA256. Key and serial from
// OpenSSL's RNG: production-only adapter code. Thread-safe.
// Errors: InvalidArgument for a validity that is not positive; Internal if OpenSSL fails.
absl::StatusOr<SelfSignedCert> GenerateCaCert(absl::string_view common_name,
                                              absl::Duration validity, absl::Time now);

// A leaf certificate issued by the CA (`ca_cert_pem`, `ca_key_pem`): a fresh P-256 key, subject
// CN=<common_name> and subjectAltName DNS:<common_name>, issuer the CA's subject,
// extendedKeyUsage clientAuth and serverAuth (the same certificate serves and dials), no
// basicConstraints, signed by the CA's key. (The struct's name is historical: the result is not
// self-signed.) Thread-safe.
// Errors: InvalidArgument if the CA certificate or key does not parse or do not match;
// Internal if OpenSSL fails.
absl::StatusOr<SelfSignedCert> IssueCert(absl::string_view ca_cert_pem,
                                         absl::string_view ca_key_pem,
                                         absl::string_view common_name, absl::Duration validity,
                                         absl::Time now);

// Converts one DER certificate to PEM ("-----BEGIN CERTIFICATE-----\n", 64-column base64,
// "-----END CERTIFICATE-----\n").
// Errors: InvalidArgument if `der` is not exactly one DER X.509 certificate (trailing bytes are
// an error) or is longer than kCertInputBytesMax.
absl::StatusOr<std::string> CertDerToPem(absl::string_view der);

// Returns the DER of the first CERTIFICATE block in `pem`; other PEM blocks before it are
// skipped. Errors: InvalidArgument if there is no parsable CERTIFICATE block or `pem` is longer
// than kCertInputBytesMax.
absl::StatusOr<std::string> CertPemToDer(absl::string_view pem);

// What a certificate says, as far as AutoMTLS and conformance checks care.
struct CertInfo {
  std::string key_algorithm;        // OpenSSL's key type name: "EC", "RSA", "ED25519", ...
  std::string curve;                // "P-256", "P-384", "P-521", another group name, or "".
  std::optional<KeyType> key_type;  // Set for P-256 and P-521 EC keys.
  std::string subject;              // RFC 2253 form, e.g. "CN=localhost,O=HashiCorp".
  std::string issuer;
  std::string common_name;                // The (last) CN of the subject, or "".
  std::vector<std::string> dns_names;     // subjectAltName dNSName entries, in order.
  std::vector<std::string> ip_addresses;  // subjectAltName iPAddress entries ("127.0.0.1").
  bool is_ca = false;                     // basicConstraints CA:TRUE.
  bool self_signed = false;               // Issuer == subject and its own key verifies it.
  std::string serial_hex;                 // Upper-case hex, no leading zeros.
  std::string signature_algorithm;        // OpenSSL's long name, e.g. "ecdsa-with-SHA512".
  absl::Time not_before;
  absl::Time not_after;
  // keyUsage bits by RFC 5280 name ("digitalSignature", "keyEncipherment", "keyAgreement",
  // "keyCertSign", ...), in bit order; empty when the extension is absent.
  std::vector<std::string> key_usage;
  // extendedKeyUsage purposes by short name ("clientAuth", "serverAuth", ...), in order.
  std::vector<std::string> ext_key_usage;
  // Every extension's short name, in certificate order, with "(critical)" appended when
  // critical, e.g. "keyUsage(critical)".
  std::vector<std::string> extensions;
};

// Parses one DER certificate. Thread-safe.
// Errors: InvalidArgument if `der` is not exactly one DER X.509 certificate, has malformed
// extensions, or is longer than kCertInputBytesMax.
absl::StatusOr<CertInfo> ParseCertDer(absl::string_view der);

// Parses the first CERTIFICATE block of `pem` (CertPemToDer, then ParseCertDer).
absl::StatusOr<CertInfo> ParseCertPem(absl::string_view pem);

// Checks that `key_pem` (any PEM private key OpenSSL reads: "EC PRIVATE KEY", "PRIVATE KEY")
// is the private key of the first certificate in `cert_pem`. Encrypted keys are not supported
// (no passphrase prompt).
// Errors: InvalidArgument if either does not parse or is longer than kCertInputBytesMax;
// FailedPrecondition if they do not match.
absl::Status CheckKeyMatchesCert(absl::string_view cert_pem, absl::string_view key_pem);

// The DER (SEC1 ECPrivateKey, Go's x509.MarshalECPrivateKey) of a PEM EC private key, and back
// ("-----BEGIN EC PRIVATE KEY-----"), for the key the legacy plugin bootstrap wraps. Both hold
// key material: the caller wipes what it no longer needs.
// Errors: InvalidArgument if the input does not parse, is not EC, or is longer than
// kCertInputBytesMax; Internal if OpenSSL fails.
absl::StatusOr<std::string> EcPrivateKeyPemToDer(absl::string_view key_pem);
absl::StatusOr<std::string> EcPrivateKeyDerToPem(absl::string_view key_der);

}  // namespace bulwark::protocol

#endif  // BULWARK_PROTOCOL_TLS_CERTS_H_
