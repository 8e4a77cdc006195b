// go-plugin-compatible AutoMTLS certificates with OpenSSL 3 (EVP keys, X509 builder), and a
// certificate parser. Only non-deprecated OpenSSL 3.0 APIs, so -Werror builds stay clean.
#include "protocol/tls_certs.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status/status_macros.h"

namespace bulwark::protocol {
namespace {

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_NAME* p) const { X509_NAME_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(ASN1_INTEGER* p) const { ASN1_INTEGER_free(p); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
  void operator()(EXTENDED_KEY_USAGE* p) const { EXTENDED_KEY_USAGE_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Deleter>;

constexpr size_t kSerialBytes = 16;  // Go: rand.Int below 2^128.
// Vault's certutil.GenerateSerialNumber: rand.Int below 2^159.
constexpr size_t kVaultSerialBytes = 20;

// Never prompt on a terminal for a passphrase (OpenSSL's default callback would): an encrypted
// key simply fails to load.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return 0; }

absl::Status CheckInputSize(absl::string_view input, absl::string_view what) {
  if (input.size() <= kCertInputBytesMax) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("tls certs: ", what, " is ", input.size(),
                                                 " bytes, longer than the ", kCertInputBytesMax,
                                                 "-byte limit"));
}
constexpr char kHost[] = "localhost";
constexpr char kOrganization[] = "HashiCorp";

// Drains this thread's OpenSSL error queue into a status with `code`.
absl::Status OpenSslError(absl::StatusCode code, absl::string_view what) {
  const unsigned long err = ERR_get_error();
  char reason[256] = "no OpenSSL error recorded";
  if (err != 0) ERR_error_string_n(err, reason, sizeof(reason));
  ERR_clear_error();
  return absl::Status(code, absl::StrCat(what, ": ", reason));
}

absl::Status Internal(absl::string_view what) {
  return OpenSslError(absl::StatusCode::kInternal, absl::StrCat("tls certs: OpenSSL ", what));
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, size > 0 ? static_cast<size_t>(size) : 0);
}

absl::StatusOr<Owned<BIO>> MemBio() {
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr) return Internal("BIO_new");
  return bio;
}

absl::StatusOr<std::string> CertToDer(X509* cert) {
  const int size = i2d_X509(cert, nullptr);
  if (size <= 0) return Internal("i2d_X509");
  std::string der(static_cast<size_t>(size), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(&der[0]);
  if (i2d_X509(cert, &p) != size) return Internal("i2d_X509");
  return der;
}

absl::StatusOr<std::string> CertToPem(X509* cert) {
  ASSIGN_OR_RETURN(Owned<BIO> bio, MemBio());
  if (PEM_write_bio_X509(bio.get(), cert) != 1) return Internal("PEM_write_bio_X509");
  return BioContents(bio.get());
}

// Parses exactly one DER certificate.
absl::StatusOr<Owned<X509>> DerToX509(absl::string_view der) {
  RETURN_IF_ERROR(CheckInputSize(der, "DER certificate"));
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* const end = p + der.size();
  Owned<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (cert == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "tls certs: not a DER X.509 certificate");
  }
  if (p != end) {
    return absl::InvalidArgumentError(absl::StrCat("tls certs: ", end - p,
                                                   " bytes of trailing data after the DER "
                                                   "certificate"));
  }
  return cert;
}

absl::StatusOr<Owned<X509>> PemToX509(absl::string_view pem) {
  RETURN_IF_ERROR(CheckInputSize(pem, "PEM certificate"));
  Owned<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return Internal("BIO_new_mem_buf");
  Owned<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  if (cert == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "tls certs: no parsable CERTIFICATE block in PEM");
  }
  return cert;
}

absl::Status AddExtension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  Owned<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  if (ext == nullptr) return Internal(absl::StrCat("X509V3_EXT_nconf_nid(", OBJ_nid2sn(nid), ")"));
  if (X509_add_ext(cert, ext.get(), -1) != 1) return Internal("X509_add_ext");
  return absl::OkStatus();
}

absl::Status SetTime(ASN1_TIME* field, absl::Time t) {
  // X.509 times are years 0000-9999; ASN1_TIME_set picks UTCTime or GeneralizedTime.
  static const absl::Time kMin =
      absl::FromCivil(absl::CivilSecond(1, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  static const absl::Time kMax =
      absl::FromCivil(absl::CivilSecond(9999, 12, 31, 23, 59, 59), absl::UTCTimeZone());
  if (t < kMin || t > kMax) {
    return absl::InvalidArgumentError(absl::StrCat("tls certs: validity bound ",
                                                   absl::FormatTime(t, absl::UTCTimeZone()),
                                                   " is outside the years X.509 can encode"));
  }
  if (ASN1_TIME_set(field, absl::ToTimeT(t)) == nullptr) return Internal("ASN1_TIME_set");
  return absl::OkStatus();
}

absl::StatusOr<absl::Time> AsnTimeToTime(const ASN1_TIME* t) {
  struct tm tm = {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "tls certs: bad validity time");
  }
  return absl::FromCivil(absl::CivilSecond(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                           tm.tm_min, tm.tm_sec),
                         absl::UTCTimeZone());
}

absl::StatusOr<std::string> NameToString(const X509_NAME* name) {
  ASSIGN_OR_RETURN(Owned<BIO> bio, MemBio());
  if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    return Internal("X509_NAME_print_ex");
  }
  return BioContents(bio.get());
}

std::string AsnStringToString(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

std::string IpToString(const ASN1_OCTET_STRING* ip) {
  const int len = ASN1_STRING_length(ip);
  const unsigned char* data = ASN1_STRING_get0_data(ip);
  char buf[INET6_ADDRSTRLEN] = {};
  if (len == 4 && inet_ntop(AF_INET, data, buf, sizeof(buf)) != nullptr) return buf;
  if (len == 16 && inet_ntop(AF_INET6, data, buf, sizeof(buf)) != nullptr) return buf;
  return absl::StrCat("<", len, "-byte address>");
}

std::string CurveDisplayName(absl::string_view group) {
  if (group == "prime256v1" || group == "P-256") return "P-256";
  if (group == "secp384r1" || group == "P-384") return "P-384";
  if (group == "secp521r1" || group == "P-521") return "P-521";
  return std::string(group);
}

absl::Status FillKeyInfo(X509* cert, CertInfo& info) {
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "tls certs: certificate public key does not parse");
  }
  const char* type_name = EVP_PKEY_get0_type_name(key);
  info.key_algorithm = type_name != nullptr ? type_name : "";
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[80] = {};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) == 1) {
      info.curve = CurveDisplayName(absl::string_view(group, len));
    }
    if (info.curve == "P-256") info.key_type = KeyType::kP256;
    if (info.curve == "P-521") info.key_type = KeyType::kP521;
  }
  return absl::OkStatus();
}

void FillKeyUsage(X509* cert, CertInfo& info) {
  // RFC 5280 §4.2.1.3 bit order, with OpenSSL's KU_* masks.
  static constexpr struct {
    uint32_t mask;
    const char* name;
  } kBits[] = {
      {KU_DIGITAL_SIGNATURE, "digitalSignature"},
      {KU_NON_REPUDIATION, "nonRepudiation"},
      {KU_KEY_ENCIPHERMENT, "keyEncipherment"},
      {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
      {KU_KEY_AGREEMENT, "keyAgreement"},
      {KU_KEY_CERT_SIGN, "keyCertSign"},
      {KU_CRL_SIGN, "cRLSign"},
      {KU_ENCIPHER_ONLY, "encipherOnly"},
      {KU_DECIPHER_ONLY, "decipherOnly"},
  };
  if ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) == 0) return;
  const uint32_t usage = X509_get_key_usage(cert);
  for (const auto& bit : kBits) {
    if (usage & bit.mask) info.key_usage.push_back(bit.name);
  }
}

void FillExtKeyUsage(X509* cert, CertInfo& info) {
  Owned<EXTENDED_KEY_USAGE> eku(static_cast<EXTENDED_KEY_USAGE*>(
      X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr)));
  if (eku == nullptr) return;
  for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
    const ASN1_OBJECT* obj = sk_ASN1_OBJECT_value(eku.get(), i);
    const int nid = OBJ_obj2nid(obj);
    if (nid != NID_undef) {
      info.ext_key_usage.push_back(OBJ_nid2sn(nid));
    } else {
      char oid[80] = {};
      OBJ_obj2txt(oid, sizeof(oid), obj, 1);
      info.ext_key_usage.push_back(oid);
    }
  }
}

void FillSubjectAltNames(X509* cert, CertInfo& info) {
  Owned<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names == nullptr) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) info.dns_names.push_back(AsnStringToString(name->d.dNSName));
    if (name->type == GEN_IPADD) info.ip_addresses.push_back(IpToString(name->d.iPAddress));
  }
}

void FillExtensionList(X509* cert, CertInfo& info) {
  for (int i = 0; i < X509_get_ext_count(cert); ++i) {
    X509_EXTENSION* ext = X509_get_ext(cert, i);
    const ASN1_OBJECT* obj = X509_EXTENSION_get_object(ext);
    const int nid = OBJ_obj2nid(obj);
    std::string name;
    if (nid != NID_undef) {
      name = OBJ_nid2sn(nid);
    } else {
      char oid[80] = {};
      OBJ_obj2txt(oid, sizeof(oid), obj, 1);
      name = oid;
    }
    if (X509_EXTENSION_get_critical(ext)) name += "(critical)";
    info.extensions.push_back(std::move(name));
  }
}

absl::StatusOr<CertInfo> Describe(X509* cert) {
  CertInfo info;
  RETURN_IF_ERROR(FillKeyInfo(cert, info));
  ASSIGN_OR_RETURN(info.subject, NameToString(X509_get_subject_name(cert)));
  ASSIGN_OR_RETURN(info.issuer, NameToString(X509_get_issuer_name(cert)));
  const X509_NAME* subject = X509_get_subject_name(cert);
  for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
    info.common_name = AsnStringToString(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
  }
  FillSubjectAltNames(cert, info);
  // X509_get_extension_flags also caches the parsed extensions (and checks them).
  const uint32_t flags = X509_get_extension_flags(cert);
  if (flags & EXFLAG_INVALID) {
    return absl::InvalidArgumentError("tls certs: certificate has malformed extensions");
  }
  info.is_ca = (flags & EXFLAG_CA) != 0;
  info.self_signed = X509_self_signed(cert, /*verify_signature=*/1) == 1;
  ERR_clear_error();  // A failed self-signature check leaves errors behind.

  Owned<BIGNUM> serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (serial == nullptr) return Internal("ASN1_INTEGER_to_BN");
  char* hex = BN_bn2hex(serial.get());
  if (hex == nullptr) return Internal("BN_bn2hex");
  info.serial_hex = hex;
  OPENSSL_free(hex);

  const int sig_nid = X509_get_signature_nid(cert);
  info.signature_algorithm = sig_nid != NID_undef ? OBJ_nid2ln(sig_nid) : "";
  ASSIGN_OR_RETURN(info.not_before, AsnTimeToTime(X509_get0_notBefore(cert)));
  ASSIGN_OR_RETURN(info.not_after, AsnTimeToTime(X509_get0_notAfter(cert)));
  FillKeyUsage(cert, info);
  FillExtKeyUsage(cert, info);
  FillExtensionList(cert, info);
  return info;
}

// What differs between go-plugin's AutoMTLS certificate and Vault's legacy plugin one.
struct CertProfile {
  KeyType key_type = KeyType::kP256;
  absl::Duration validity;
  std::string organization;  // "" leaves O out of the subject.
  std::string common_name;   // Also the only DNS subjectAltName.
  size_t serial_bytes = kSerialBytes;
  std::string key_usage;
  bool basic_constraints_ca = false;
  // Set to issue from a CA instead of self-signing: its certificate names the issuer, its key
  // signs.
  X509* issuer_cert = nullptr;
  EVP_PKEY* issuer_key = nullptr;
};

absl::StatusOr<SelfSignedCert> Generate(const CertProfile& profile, absl::Time now) {
  if (profile.validity <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls certs: certificate validity must be positive, got ",
                     absl::FormatDuration(profile.validity)));
  }
  const char* const group = profile.key_type == KeyType::kP256 ? "prime256v1" : "secp521r1";
  const EVP_MD* const digest = profile.key_type == KeyType::kP256 ? EVP_sha256() : EVP_sha512();

  Owned<X509> cert(X509_new());
  if (cert == nullptr) return Internal("X509_new");
  RETURN_IF_ERROR(SetTime(X509_getm_notBefore(cert.get()), now - kCertBackdate));
  RETURN_IF_ERROR(SetTime(X509_getm_notAfter(cert.get()), now + profile.validity));

  Owned<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", group));
  if (key == nullptr) return Internal(absl::StrCat("EC key generation on ", group));
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) return Internal("X509_set_version");

  unsigned char serial_bytes[32];
  const size_t serial_size = std::min(profile.serial_bytes, sizeof(serial_bytes));
  if (RAND_bytes(serial_bytes, static_cast<int>(serial_size)) != 1) return Internal("RAND_bytes");
  serial_bytes[0] &= 0x7f;             // Positive, as Go's rand.Int below a power of two.
  serial_bytes[serial_size - 1] |= 1;  // Never zero: RFC 5280 wants a positive serial.
  Owned<BIGNUM> serial_bn(BN_bin2bn(serial_bytes, static_cast<int>(serial_size), nullptr));
  if (serial_bn == nullptr) return Internal("BN_bin2bn");
  Owned<ASN1_INTEGER> serial(BN_to_ASN1_INTEGER(serial_bn.get(), nullptr));
  if (serial == nullptr) return Internal("BN_to_ASN1_INTEGER");
  if (X509_set_serialNumber(cert.get(), serial.get()) != 1) {
    return Internal("X509_set_serialNumber");
  }

  // Go's pkix.Name puts O before CN and uses PrintableString for printable ASCII values.
  Owned<X509_NAME> name(X509_NAME_new());
  if (name == nullptr) return Internal("X509_NAME_new");
  if (!profile.organization.empty() &&
      X509_NAME_add_entry_by_txt(
          name.get(), "O", V_ASN1_PRINTABLESTRING,
          reinterpret_cast<const unsigned char*>(profile.organization.c_str()), -1, -1, 0) != 1) {
    return Internal("X509_NAME_add_entry_by_txt");
  }
  if (X509_NAME_add_entry_by_txt(
          name.get(), "CN", V_ASN1_PRINTABLESTRING,
          reinterpret_cast<const unsigned char*>(profile.common_name.c_str()), -1, -1, 0) != 1) {
    return Internal("X509_NAME_add_entry_by_txt");
  }
  const X509_NAME* issuer_name =
      profile.issuer_cert != nullptr ? X509_get_subject_name(profile.issuer_cert) : name.get();
  if (X509_set_subject_name(cert.get(), name.get()) != 1 ||
      X509_set_issuer_name(cert.get(), issuer_name) != 1) {
    return Internal("X509_set_subject_name");
  }
  if (X509_set_pubkey(cert.get(), key.get()) != 1) return Internal("X509_set_pubkey");

  // Go's buildCertExtensions order: keyUsage, extKeyUsage, basicConstraints, SKI, SAN.
  RETURN_IF_ERROR(AddExtension(cert.get(), NID_key_usage, profile.key_usage.c_str()));
  RETURN_IF_ERROR(AddExtension(cert.get(), NID_ext_key_usage, "clientAuth,serverAuth"));
  if (profile.basic_constraints_ca) {
    RETURN_IF_ERROR(AddExtension(cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  }
  RETURN_IF_ERROR(AddExtension(cert.get(), NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExtension(cert.get(), NID_subject_alt_name,
                               absl::StrCat("DNS:", profile.common_name).c_str()));

  EVP_PKEY* signer = profile.issuer_key != nullptr ? profile.issuer_key : key.get();
  const EVP_MD* sign_digest =
      profile.issuer_key != nullptr && EVP_PKEY_get_bits(profile.issuer_key) > 256 ? EVP_sha512()
      : profile.issuer_key != nullptr                                              ? EVP_sha256()
                                                                                   : digest;
  if (X509_sign(cert.get(), signer, sign_digest) <= 0) return Internal("X509_sign");

  SelfSignedCert out;
  out.common_name = profile.common_name;
  ASSIGN_OR_RETURN(out.cert_der, CertToDer(cert.get()));
  ASSIGN_OR_RETURN(out.cert_pem, CertToPem(cert.get()));
  ASSIGN_OR_RETURN(Owned<BIO> key_bio, MemBio());
  // "Traditional" is SEC1 for EC keys: "-----BEGIN EC PRIVATE KEY-----", like Go's
  // x509.MarshalECPrivateKey (named curve parameters and public key included).
  if (PEM_write_bio_PrivateKey_traditional(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                           nullptr) != 1) {
    return Internal("PEM_write_bio_PrivateKey_traditional");
  }
  out.key_pem = BioContents(key_bio.get());
  return out;
}

absl::StatusOr<Owned<EVP_PKEY>> PemToKey(absl::string_view key_pem) {
  RETURN_IF_ERROR(CheckInputSize(key_pem, "PEM private key"));
  Owned<BIO> bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  if (bio == nullptr) return Internal("BIO_new_mem_buf");
  Owned<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "tls certs: no parsable private key in PEM");
  }
  return key;
}

}  // namespace

absl::string_view KeyTypeName(KeyType key_type) {
  switch (key_type) {
    case KeyType::kP256:
      return "P-256";
    case KeyType::kP521:
      return "P-521";
  }
  return "unknown";
}

absl::StatusOr<SelfSignedCert> GenerateSelfSignedCert(KeyType key_type, absl::Duration validity,
                                                      absl::Time now) {
  CertProfile profile;
  profile.key_type = key_type;
  profile.validity = validity;
  profile.organization = kOrganization;
  profile.common_name = kHost;
  profile.serial_bytes = kSerialBytes;
  // Go's buildCertExtensions order: keyUsage, extKeyUsage, basicConstraints, SKI, SAN.
  profile.key_usage = "critical,digitalSignature,keyEncipherment,keyAgreement,keyCertSign";
  profile.basic_constraints_ca = true;
  return Generate(profile, now);
}

absl::StatusOr<SelfSignedCert> GenerateVaultPluginCert(absl::Time now) {
  unsigned char random[16];
  if (RAND_bytes(random, sizeof(random)) != 1) return Internal("RAND_bytes");
  const std::string hex = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(random), sizeof(random)));
  CertProfile profile;
  profile.key_type = KeyType::kP521;
  profile.validity = kGoPluginCertValidity;
  // hashicorp/go-uuid's GenerateUUID: 16 random bytes as 8-4-4-4-12 hex digits.
  profile.common_name =
      absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                   hex.substr(16, 4), "-", hex.substr(20));
  profile.serial_bytes = kVaultSerialBytes;
  // IsCA without BasicConstraintsValid: Go writes no basicConstraints, but still a SKI.
  profile.key_usage = "critical,digitalSignature,keyEncipherment,keyAgreement";
  profile.basic_constraints_ca = false;
  return Generate(profile, now);
}

absl::StatusOr<SelfSignedCert> GenerateCaCert(absl::string_view common_name,
                                              absl::Duration validity, absl::Time now) {
  CertProfile profile;
  profile.key_type = KeyType::kP256;
  profile.validity = validity;
  profile.common_name = std::string(common_name);
  profile.key_usage = "critical,digitalSignature,keyCertSign,cRLSign";
  profile.basic_constraints_ca = true;
  return Generate(profile, now);
}

absl::StatusOr<SelfSignedCert> IssueCert(absl::string_view ca_cert_pem,
                                         absl::string_view ca_key_pem,
                                         absl::string_view common_name, absl::Duration validity,
                                         absl::Time now) {
  ASSIGN_OR_RETURN(Owned<X509> ca, PemToX509(ca_cert_pem));
  ASSIGN_OR_RETURN(Owned<EVP_PKEY> ca_key, PemToKey(ca_key_pem));
  if (X509_check_private_key(ca.get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("tls certs: the CA key is not the CA certificate's key");
  }
  CertProfile profile;
  profile.key_type = KeyType::kP256;
  profile.validity = validity;
  profile.common_name = std::string(common_name);
  profile.key_usage = "critical,digitalSignature,keyAgreement";
  profile.issuer_cert = ca.get();
  profile.issuer_key = ca_key.get();
  return Generate(profile, now);
}

absl::StatusOr<std::string> CertDerToPem(absl::string_view der) {
  ASSIGN_OR_RETURN(Owned<X509> cert, DerToX509(der));
  return CertToPem(cert.get());
}

absl::StatusOr<std::string> CertPemToDer(absl::string_view pem) {
  ASSIGN_OR_RETURN(Owned<X509> cert, PemToX509(pem));
  return CertToDer(cert.get());
}

absl::StatusOr<CertInfo> ParseCertDer(absl::string_view der) {
  ASSIGN_OR_RETURN(Owned<X509> cert, DerToX509(der));
  return Describe(cert.get());
}

absl::StatusOr<CertInfo> ParseCertPem(absl::string_view pem) {
  ASSIGN_OR_RETURN(Owned<X509> cert, PemToX509(pem));
  return Describe(cert.get());
}

absl::Status CheckKeyMatchesCert(absl::string_view cert_pem, absl::string_view key_pem) {
  ASSIGN_OR_RETURN(Owned<X509> cert, PemToX509(cert_pem));
  ASSIGN_OR_RETURN(Owned<EVP_PKEY> key, PemToKey(key_pem));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        "tls certs: the private key does not belong to the certificate");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> EcPrivateKeyPemToDer(absl::string_view key_pem) {
  ASSIGN_OR_RETURN(Owned<EVP_PKEY> key, PemToKey(key_pem));
  if (!EVP_PKEY_is_a(key.get(), "EC")) {
    return absl::InvalidArgumentError("tls certs: the private key is not an EC key");
  }
  // For an EC key i2d_PrivateKey writes the type-specific form: SEC1 ECPrivateKey.
  const int size = i2d_PrivateKey(key.get(), nullptr);
  if (size <= 0) return Internal("i2d_PrivateKey");
  std::string der(static_cast<size_t>(size), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_PrivateKey(key.get(), &p) != size) return Internal("i2d_PrivateKey");
  return der;
}

absl::StatusOr<std::string> EcPrivateKeyDerToPem(absl::string_view key_der) {
  RETURN_IF_ERROR(CheckInputSize(key_der, "DER private key"));
  const unsigned char* p = reinterpret_cast<const unsigned char*>(key_der.data());
  Owned<EVP_PKEY> key(d2i_PrivateKey(EVP_PKEY_EC, nullptr, &p, static_cast<long>(key_der.size())));
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "tls certs: not a DER SEC1 EC private key");
  }
  ASSIGN_OR_RETURN(Owned<BIO> bio, MemBio());
  if (PEM_write_bio_PrivateKey_traditional(bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                           nullptr) != 1) {
    return Internal("PEM_write_bio_PrivateKey_traditional");
  }
  return BioContents(bio.get());
}

}  // namespace bulwark::protocol
