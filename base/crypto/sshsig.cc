// SSHSIG parsing and verification (OpenSSH PROTOCOL.sshsig) and the allowed-signers file, with
// OpenSSL 3's EVP interface. The parsing follows OpenSSH's sshsig.c and sshbuf rules: strings
// are uint32-length-prefixed, mpints are positive and at most kSshBignumBytesMax bytes.
#include "base/crypto/sshsig.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "base/crypto/sha256.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"

namespace bulwark::crypto {
namespace {

constexpr absl::string_view kArmorBegin = "-----BEGIN SSH SIGNATURE-----";
constexpr absl::string_view kArmorEnd = "-----END SSH SIGNATURE-----";
constexpr absl::string_view kMagic = "SSHSIG";
constexpr uint32_t kSigVersion = 1;

constexpr absl::string_view kEd25519 = "ssh-ed25519";
constexpr absl::string_view kEcdsaP256 = "ecdsa-sha2-nistp256";
constexpr absl::string_view kRsa = "ssh-rsa";
constexpr absl::string_view kRsaSha512 = "rsa-sha2-512";
constexpr absl::string_view kRsaSha256 = "rsa-sha2-256";
constexpr size_t kEd25519KeyBytes = 32;
constexpr size_t kEd25519SigBytes = 64;
constexpr size_t kP256PointBytes = 65;

struct Deleter {
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Deleter>;

absl::Status Refuse(SignatureRefusal refusal, absl::string_view message) {
  const absl::StatusCode code =
      refusal == SignatureRefusal::kMalformed || refusal == SignatureRefusal::kMalformedSigners
          ? absl::StatusCode::kInvalidArgument
      : refusal == SignatureRefusal::kUnsupported ? absl::StatusCode::kUnimplemented
                                                  : absl::StatusCode::kPermissionDenied;
  absl::Status status(code, absl::StrCat(SignatureRefusalName(refusal), ": ", message));
  status.SetPayload(kSignatureRefusalPayloadUrl, absl::Cord(SignatureRefusalName(refusal)));
  return status;
}

absl::Status Malformed(absl::string_view what) {
  return Refuse(SignatureRefusal::kMalformed, absl::StrCat("the signature is malformed: ", what));
}

// OpenSSL failures while building a key from well-formed fields mean the key is not a valid
// key (an off-curve point, say), so they are reported as a bad signature, not an internal error.
absl::Status OpenSslRefusal(absl::string_view what) {
  ERR_clear_error();
  return Refuse(SignatureRefusal::kBadSignature, what);
}

// A cursor over SSH wire data.
class WireReader {
 public:
  explicit WireReader(absl::string_view data) : data_(data) {}

  bool empty() const { return data_.empty(); }
  size_t remaining() const { return data_.size(); }

  bool ReadBytes(size_t n, absl::string_view* out) {
    if (data_.size() < n) return false;
    *out = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }
  bool ReadU32(uint32_t* out) {
    absl::string_view b;
    if (!ReadBytes(4, &b)) return false;
    *out = (uint32_t{static_cast<uint8_t>(b[0])} << 24) |
           (uint32_t{static_cast<uint8_t>(b[1])} << 16) |
           (uint32_t{static_cast<uint8_t>(b[2])} << 8) | uint32_t{static_cast<uint8_t>(b[3])};
    return true;
  }
  bool ReadString(absl::string_view* out) {
    uint32_t n = 0;
    return ReadU32(&n) && ReadBytes(n, out);
  }
  // A positive mpint without its sign byte; false if negative or longer than the bound.
  bool ReadMpint(absl::string_view* out) {
    absl::string_view v;
    if (!ReadString(&v)) return false;
    if (!v.empty() && (static_cast<uint8_t>(v[0]) & 0x80) != 0) return false;
    if (v.size() > kSshBignumBytesMax + 1 || (v.size() == kSshBignumBytesMax + 1 && v[0] != 0)) {
      return false;
    }
    while (!v.empty() && v[0] == 0) v.remove_prefix(1);
    *out = v;
    return true;
  }

 private:
  absl::string_view data_;
};

const EVP_MD* FetchMd(SshHashAlgorithm algorithm) {
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  static EVP_MD* const sha512 = EVP_MD_fetch(nullptr, "SHA2-512", nullptr);
  const EVP_MD* md = algorithm == SshHashAlgorithm::kSha256 ? sha256 : sha512;
  CHECK(md != nullptr) << "OpenSSL has no " << SshHashAlgorithmName(algorithm);
  return md;
}

// The key type named inside a public key blob, checking the blob's structure for the types
// this library verifies. Other types are returned as named (they can sit in an allowed-signers
// file; a signature by one is refused as unsupported).
absl::StatusOr<std::string> KeyTypeOfBlob(absl::string_view blob, absl::string_view what) {
  WireReader r(blob);
  absl::string_view type;
  if (!r.ReadString(&type) || type.empty()) {
    return Malformed(absl::StrCat(what, " has no key type"));
  }
  absl::string_view a, b;
  bool ok = true;
  if (type == kEd25519) {
    ok = r.ReadString(&a) && a.size() == kEd25519KeyBytes && r.empty();
  } else if (type == kEcdsaP256) {
    ok = r.ReadString(&a) && a == "nistp256" && r.ReadString(&b) && b.size() == kP256PointBytes &&
         b[0] == 0x04 && r.empty();
  } else if (type == kRsa) {
    ok = r.ReadMpint(&a) && r.ReadMpint(&b) && !a.empty() && !b.empty() && r.empty();
  }
  if (!ok) return Malformed(absl::StrCat(what, " is not a well-formed ", type, " key"));
  return std::string(type);
}

absl::StatusOr<Owned<EVP_PKEY>> PkeyFromFromdata(const char* key_type, OSSL_PARAM_BLD* bld) {
  Owned<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld));
  if (params == nullptr) return OpenSslRefusal("the public key cannot be loaded");
  Owned<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, key_type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return OpenSslRefusal("the public key cannot be loaded");
  }
  return Owned<EVP_PKEY>(pkey);
}

absl::StatusOr<Owned<BIGNUM>> Bn(absl::string_view bytes) {
  Owned<BIGNUM> bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                             static_cast<int>(bytes.size()), nullptr));
  if (bn == nullptr) return OpenSslRefusal("a number cannot be loaded");
  return bn;
}

// One-shot EVP_DigestVerify; `md` null for Ed25519.
absl::Status DigestVerify(EVP_PKEY* pkey, const EVP_MD* md, absl::string_view sig,
                          absl::string_view data, absl::string_view fingerprint) {
  Owned<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  CHECK(ctx != nullptr) << "EVP_MD_CTX_new failed";
  if (EVP_DigestVerifyInit_ex(ctx.get(), nullptr, md == nullptr ? nullptr : EVP_MD_get0_name(md),
                              nullptr, nullptr, pkey, nullptr) != 1) {
    return OpenSslRefusal("the verifier cannot be set up for this key");
  }
  const int rc =
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(data.data()), data.size());
  ERR_clear_error();
  if (rc != 1) {
    return Refuse(SignatureRefusal::kBadSignature,
                  absl::StrCat("the signature by key ", fingerprint,
                               " does not verify over these bytes (tampered or truncated)"));
  }
  return absl::OkStatus();
}

// `data` is the SSHSIG signed-data blob; the key and signature fields were checked by parsing.
absl::Status VerifyRaw(const SshSignature& s, absl::string_view data) {
  const std::string fingerprint = SshKeyFingerprint(s.public_key);
  WireReader key(s.public_key);
  absl::string_view type;
  CHECK(key.ReadString(&type));
  if (type == kEd25519) {
    absl::string_view pk;
    CHECK(key.ReadString(&pk));
    Owned<EVP_PKEY> pkey(EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(pk.data()), pk.size()));
    if (pkey == nullptr) return OpenSslRefusal("the ssh-ed25519 key cannot be loaded");
    return DigestVerify(pkey.get(), nullptr, s.signature, data, fingerprint);
  }
  if (type == kEcdsaP256) {
    absl::string_view curve, point;
    CHECK(key.ReadString(&curve) && key.ReadString(&point));
    Owned<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
    CHECK(bld != nullptr);
    if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
            1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                         point.size()) != 1) {
      return OpenSslRefusal("the ecdsa key cannot be loaded");
    }
    ASSIGN_OR_RETURN(Owned<EVP_PKEY> pkey, PkeyFromFromdata("EC", bld.get()));
    // The SSH signature is mpint r, mpint s; OpenSSL wants DER.
    WireReader sig(s.signature);
    absl::string_view r_bytes, s_bytes;
    if (!sig.ReadMpint(&r_bytes) || !sig.ReadMpint(&s_bytes) || !sig.empty()) {
      return Malformed("the ecdsa signature is not two mpints");
    }
    ASSIGN_OR_RETURN(Owned<BIGNUM> r, Bn(r_bytes));
    ASSIGN_OR_RETURN(Owned<BIGNUM> sv, Bn(s_bytes));
    Owned<ECDSA_SIG> ecdsa(ECDSA_SIG_new());
    CHECK(ecdsa != nullptr);
    CHECK(ECDSA_SIG_set0(ecdsa.get(), r.release(), sv.release()) == 1);
    unsigned char* der = nullptr;
    const int der_len = i2d_ECDSA_SIG(ecdsa.get(), &der);
    if (der_len <= 0) return OpenSslRefusal("the ecdsa signature cannot be encoded");
    const std::string der_sig(reinterpret_cast<const char*>(der), static_cast<size_t>(der_len));
    OPENSSL_free(der);
    return DigestVerify(pkey.get(), FetchMd(SshHashAlgorithm::kSha256), der_sig, data, fingerprint);
  }
  if (type == kRsa) {
    absl::string_view e_bytes, n_bytes;
    CHECK(key.ReadMpint(&e_bytes) && key.ReadMpint(&n_bytes));
    ASSIGN_OR_RETURN(Owned<BIGNUM> e, Bn(e_bytes));
    ASSIGN_OR_RETURN(Owned<BIGNUM> n, Bn(n_bytes));
    const int bits = BN_num_bits(n.get());
    if (bits < kSshRsaModulusBitsMin) {
      return Refuse(SignatureRefusal::kUnsupported,
                    absl::StrCat("the ssh-rsa key ", fingerprint, " has ", bits, " bits; at least ",
                                 kSshRsaModulusBitsMin, " are required"));
    }
    Owned<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
    CHECK(bld != nullptr);
    if (OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
      return OpenSslRefusal("the ssh-rsa key cannot be loaded");
    }
    ASSIGN_OR_RETURN(Owned<EVP_PKEY> pkey, PkeyFromFromdata("RSA", bld.get()));
    // OpenSSH accepts a signature shorter than the modulus and pads it on the left.
    const size_t modulus_bytes = static_cast<size_t>((bits + 7) / 8);
    if (s.signature.size() > modulus_bytes) {
      return Malformed("the rsa signature is longer than the key's modulus");
    }
    std::string padded(modulus_bytes - s.signature.size(), '\0');
    padded.append(s.signature);
    const SshHashAlgorithm md =
        s.signature_type == kRsaSha256 ? SshHashAlgorithm::kSha256 : SshHashAlgorithm::kSha512;
    return DigestVerify(pkey.get(), FetchMd(md), padded, data, fingerprint);
  }
  return Refuse(SignatureRefusal::kUnsupported,
                absl::StrCat("keys of type ", type, " are not supported"));
}

// ---- allowed-signers parsing ----

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

void SkipSpace(absl::string_view* s) {
  while (!s->empty() && IsSpace(s->front())) s->remove_prefix(1);
}

// The next whitespace-delimited token; a token starting with '"' runs to the next '"'.
// False on an unterminated quote.
bool NextToken(absl::string_view* s, std::string* token) {
  SkipSpace(s);
  if (!s->empty() && s->front() == '"') {
    const size_t close = s->find('"', 1);
    if (close == absl::string_view::npos) return false;
    *token = std::string(s->substr(1, close - 1));
    s->remove_prefix(close + 1);
    return s->empty() || IsSpace(s->front());
  }
  size_t end = 0;
  while (end < s->size() && !IsSpace((*s)[end])) ++end;
  *token = std::string(s->substr(0, end));
  s->remove_prefix(end);
  return true;
}

// The options token: up to the first whitespace outside double quotes.
bool NextOptionsToken(absl::string_view* s, std::string* token) {
  SkipSpace(s);
  bool quoted = false;
  size_t end = 0;
  for (; end < s->size(); ++end) {
    const char c = (*s)[end];
    if (c == '"') quoted = !quoted;
    if (!quoted && IsSpace(c)) break;
  }
  if (quoted) return false;
  *token = std::string(s->substr(0, end));
  s->remove_prefix(end);
  return true;
}

bool IsKeyTypeName(absl::string_view t) {
  return t == kEd25519 || t == kEcdsaP256 || t == kRsa || absl::StartsWith(t, "ecdsa-sha2-") ||
         absl::StartsWith(t, "sk-") || absl::StartsWith(t, "ssh-");
}

absl::StatusOr<absl::Time> ParseSshTime(absl::string_view text) {
  bool utc_suffix = false;
  if (!text.empty() && (text.back() == 'Z' || text.back() == 'z')) {
    text.remove_suffix(1);
    utc_suffix = true;
  }
  (void)utc_suffix;  // Both read as UTC; see the header.
  if (text.size() != 8 && text.size() != 12 && text.size() != 14) {
    return absl::InvalidArgumentError("a time is not YYYYMMDD[HHMM[SS]][Z]");
  }
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError("a time is not YYYYMMDD[HHMM[SS]][Z]");
    }
  }
  auto num = [&](size_t pos, size_t len) {
    int v = 0;
    CHECK(absl::SimpleAtoi(text.substr(pos, len), &v));
    return v;
  };
  const int year = num(0, 4), month = num(4, 2), day = num(6, 2);
  const int hour = text.size() >= 12 ? num(8, 2) : 0;
  const int minute = text.size() >= 12 ? num(10, 2) : 0;
  const int second = text.size() == 14 ? num(12, 2) : 0;
  const absl::CivilSecond cs(year, month, day, hour, minute, second);
  if (cs.year() != year || cs.month() != month || cs.day() != day || cs.hour() != hour ||
      cs.minute() != minute || cs.second() != second) {
    return absl::InvalidArgumentError("a time names a day or hour that does not exist");
  }
  return absl::FromCivil(cs, absl::UTCTimeZone());
}

// A value of the form "..." from an option; false when it is not quoted.
bool Dequote(absl::string_view value, std::string* out) {
  if (value.size() < 2 || value.front() != '"' || value.back() != '"') return false;
  value = value.substr(1, value.size() - 2);
  if (absl::StrContains(value, '"')) return false;
  *out = std::string(value);
  return true;
}

absl::Status ParseOptions(absl::string_view options, AllowedSigner* signer) {
  // Split on commas outside quotes.
  std::vector<std::string> parts;
  std::string current;
  bool quoted = false;
  for (char c : options) {
    if (c == '"') quoted = !quoted;
    if (c == ',' && !quoted) {
      parts.push_back(std::move(current));
      current.clear();
      continue;
    }
    current.push_back(c);
  }
  parts.push_back(std::move(current));
  for (const std::string& part : parts) {
    const size_t eq = part.find('=');
    const std::string name = absl::AsciiStrToLower(part.substr(0, eq));
    const absl::string_view value =
        eq == std::string::npos ? absl::string_view() : absl::string_view(part).substr(eq + 1);
    std::string text;
    if (name == "cert-authority") {
      return absl::InvalidArgumentError(
          "cert-authority is not supported (bulwark verifies plain keys, not certificates)");
    }
    if (name != "namespaces" && name != "valid-after" && name != "valid-before") {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option \"", absl::CHexEscape(name), "\""));
    }
    if (eq == std::string::npos || !Dequote(value, &text)) {
      return absl::InvalidArgumentError(
          absl::StrCat("option ", name, " needs a value in double quotes"));
    }
    if (name == "namespaces") {
      if (signer->namespaces.has_value()) {
        return absl::InvalidArgumentError("option namespaces is given twice");
      }
      signer->namespaces = text;
      continue;
    }
    std::optional<absl::Time>& slot =
        name == "valid-after" ? signer->valid_after : signer->valid_before;
    if (slot.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("option ", name, " is given twice"));
    }
    absl::StatusOr<absl::Time> t = ParseSshTime(text);
    if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", t.status().message()));
    slot = *t;
  }
  if (signer->valid_after.has_value() && signer->valid_before.has_value() &&
      *signer->valid_before <= *signer->valid_after) {
    return absl::InvalidArgumentError("valid-before is not after valid-after");
  }
  return absl::OkStatus();
}

absl::StatusOr<AllowedSigner> ParseSignerLine(absl::string_view line) {
  AllowedSigner signer;
  std::string principals;
  if (!NextToken(&line, &principals)) {
    return absl::InvalidArgumentError("the principals' opening quote is not closed");
  }
  if (principals.empty()) return absl::InvalidArgumentError("the principals are empty");
  signer.principals = std::move(principals);
  std::string token;
  absl::string_view rest = line;
  if (!NextToken(&rest, &token)) return absl::InvalidArgumentError("unbalanced quote");
  if (token.empty()) return absl::InvalidArgumentError("the key is missing");
  if (!IsKeyTypeName(token)) {
    std::string options;
    if (!NextOptionsToken(&line, &options)) {
      return absl::InvalidArgumentError("the options' quotes are not balanced");
    }
    RETURN_IF_ERROR(ParseOptions(options, &signer));
    rest = line;
    if (!NextToken(&rest, &token) || token.empty()) {
      return absl::InvalidArgumentError("the key is missing");
    }
    if (!IsKeyTypeName(token)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", absl::CHexEscape(token.substr(0, 40)), "\" is not a key type"));
    }
  }
  signer.key_type = token;
  std::string encoded;
  if (!NextToken(&rest, &encoded) || encoded.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("the ", signer.key_type, " key is missing"));
  }
  std::string blob;
  if (!absl::Base64Unescape(encoded, &blob) || blob.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ", signer.key_type, " key is not valid base64"));
  }
  absl::StatusOr<std::string> blob_type = KeyTypeOfBlob(blob, "the key");
  if (!blob_type.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ", signer.key_type, " key is not a well-formed key"));
  }
  if (*blob_type != signer.key_type) {
    return absl::InvalidArgumentError(
        absl::StrCat("the key is labelled ", signer.key_type, " but is a ", *blob_type, " key"));
  }
  signer.public_key = std::move(blob);
  return signer;  // The rest of the line is a comment.
}

// OpenSSH's match_pattern: '*' any run, '?' any one character.
bool PatternMatches(absl::string_view s, absl::string_view p) {
  size_t si = 0, pi = 0, star_p = absl::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      ++si;
      ++pi;
    } else if (pi < p.size() && p[pi] == '*') {
      star_p = pi++;
      star_s = si;
    } else if (star_p != absl::string_view::npos) {
      pi = star_p + 1;
      si = ++star_s;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

std::string UtcText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace

absl::string_view SignatureRefusalName(SignatureRefusal refusal) {
  switch (refusal) {
    case SignatureRefusal::kMalformed:
      return "signature.malformed";
    case SignatureRefusal::kUnsupported:
      return "signature.unsupported";
    case SignatureRefusal::kWrongNamespace:
      return "signature.wrong_namespace";
    case SignatureRefusal::kBadSignature:
      return "signature.bad_signature";
    case SignatureRefusal::kUnknownSigner:
      return "signature.unknown_signer";
    case SignatureRefusal::kNamespaceNotAllowed:
      return "signature.namespace_not_allowed";
    case SignatureRefusal::kNotYetValid:
      return "signature.not_yet_valid";
    case SignatureRefusal::kExpired:
      return "signature.expired";
    case SignatureRefusal::kMalformedSigners:
      return "signature.malformed_allowed_signers";
  }
  return "signature.unknown";
}

std::optional<SignatureRefusal> SignatureRefusalOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kSignatureRefusalPayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  for (SignatureRefusal r : {SignatureRefusal::kMalformed, SignatureRefusal::kUnsupported,
                             SignatureRefusal::kWrongNamespace, SignatureRefusal::kBadSignature,
                             SignatureRefusal::kUnknownSigner,
                             SignatureRefusal::kNamespaceNotAllowed, SignatureRefusal::kNotYetValid,
                             SignatureRefusal::kExpired, SignatureRefusal::kMalformedSigners}) {
    if (*payload == SignatureRefusalName(r)) return r;
  }
  return std::nullopt;
}

absl::string_view SshHashAlgorithmName(SshHashAlgorithm algorithm) {
  return algorithm == SshHashAlgorithm::kSha256 ? "sha256" : "sha512";
}

absl::StatusOr<SshSignature> ParseArmoredSshSignature(absl::string_view text) {
  if (text.size() > kSshSignatureTextBytesMax) {
    return Malformed(absl::StrCat("it is longer than ", kSshSignatureTextBytesMax, " bytes"));
  }
  text = absl::StripAsciiWhitespace(text);
  if (!absl::ConsumePrefix(&text, kArmorBegin)) {
    return Malformed(absl::StrCat("it does not start with \"", kArmorBegin, "\""));
  }
  if (!absl::ConsumeSuffix(&text, kArmorEnd)) {
    return Malformed(absl::StrCat("it does not end with \"", kArmorEnd, "\" (truncated?)"));
  }
  std::string base64;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    base64.push_back(c);
  }
  std::string blob;
  if (base64.empty() || !absl::Base64Unescape(base64, &blob)) {
    return Malformed("the armored body is not valid base64");
  }
  return ParseSshSignatureBlob(blob);
}

absl::StatusOr<SshSignature> ParseSshSignatureBlob(absl::string_view blob) {
  WireReader r(blob);
  absl::string_view magic, key, ns, reserved, hash, sig_blob;
  uint32_t version = 0;
  if (!r.ReadBytes(kMagic.size(), &magic) || magic != kMagic) {
    return Malformed("the blob does not start with \"SSHSIG\"");
  }
  if (!r.ReadU32(&version)) return Malformed("the version is truncated");
  if (version != kSigVersion) {
    return Malformed(absl::StrCat("version ", version, " is not 1"));
  }
  if (!r.ReadString(&key)) return Malformed("the public key field is truncated");
  if (!r.ReadString(&ns)) return Malformed("the namespace field is truncated");
  if (!r.ReadString(&reserved)) return Malformed("the reserved field is truncated");
  if (!r.ReadString(&hash)) return Malformed("the hash algorithm field is truncated");
  if (!r.ReadString(&sig_blob)) return Malformed("the signature field is truncated");
  if (!r.empty()) return Malformed(absl::StrCat(r.remaining(), " bytes follow the signature"));
  if (ns.empty()) return Malformed("the namespace is empty");

  SshSignature out;
  if (hash == "sha256") {
    out.hash_algorithm = SshHashAlgorithm::kSha256;
  } else if (hash == "sha512") {
    out.hash_algorithm = SshHashAlgorithm::kSha512;
  } else {
    return Refuse(SignatureRefusal::kUnsupported,
                  absl::StrCat("hash algorithm \"", absl::CHexEscape(hash.substr(0, 32)),
                               "\" is not sha256 or sha512"));
  }
  ASSIGN_OR_RETURN(out.key_type, KeyTypeOfBlob(key, "the public key field"));
  if (out.key_type != kEd25519 && out.key_type != kEcdsaP256 && out.key_type != kRsa) {
    return Refuse(SignatureRefusal::kUnsupported,
                  absl::StrCat("keys of type ", absl::CHexEscape(out.key_type.substr(0, 64)),
                               " are not supported (ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa)"));
  }
  WireReader s(sig_blob);
  absl::string_view sig_type, sig;
  if (!s.ReadString(&sig_type) || !s.ReadString(&sig) || !s.empty()) {
    return Malformed("the signature field is not a signature type and a signature");
  }
  const bool type_ok = out.key_type == kRsa ? (sig_type == kRsaSha512 || sig_type == kRsaSha256)
                                            : sig_type == out.key_type;
  if (!type_ok) {
    return Refuse(SignatureRefusal::kUnsupported,
                  absl::StrCat("a ", out.key_type, " key with signature type \"",
                               absl::CHexEscape(sig_type.substr(0, 32)), "\""));
  }
  if (sig_type == kEd25519 && sig.size() != kEd25519SigBytes) {
    return Malformed("the ssh-ed25519 signature is not 64 bytes");
  }
  out.public_key = std::string(key);
  out.signature_namespace = std::string(ns);
  out.signature_type = std::string(sig_type);
  out.signature = std::string(sig);
  return out;
}

std::string SshKeyFingerprint(absl::string_view public_key_blob) {
  std::string b64 = absl::Base64Escape(Sha256::Hash(public_key_blob));
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  return absl::StrCat("SHA256:", b64);
}

SshMessageHasher::SshMessageHasher(SshHashAlgorithm algorithm) : ctx_(EVP_MD_CTX_new()) {
  CHECK(ctx_ != nullptr) << "EVP_MD_CTX_new failed";
  CHECK(EVP_DigestInit_ex(ctx_, FetchMd(algorithm), nullptr) == 1);
}
SshMessageHasher::SshMessageHasher(SshMessageHasher&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)) {}
SshMessageHasher& SshMessageHasher::operator=(SshMessageHasher&& other) noexcept {
  if (this != &other) {
    EVP_MD_CTX_free(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
  }
  return *this;
}
SshMessageHasher::~SshMessageHasher() { EVP_MD_CTX_free(ctx_); }

void SshMessageHasher::Update(absl::string_view data) {
  CHECK(EVP_DigestUpdate(ctx_, data.data(), data.size()) == 1);
}

std::string SshMessageHasher::Finish() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  CHECK(EVP_DigestFinal_ex(ctx_, digest, &len) == 1);
  CHECK(EVP_DigestInit_ex(ctx_, nullptr, nullptr) == 1);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string SshMessageHasher::Hash(SshHashAlgorithm algorithm, absl::string_view message) {
  SshMessageHasher h(algorithm);
  h.Update(message);
  return h.Finish();
}

absl::Status VerifySshSignatureDigest(const SshSignature& signature,
                                      absl::string_view expected_namespace,
                                      absl::string_view message_digest) {
  if (signature.signature_namespace != expected_namespace) {
    return Refuse(SignatureRefusal::kWrongNamespace,
                  absl::StrCat("the signature was made for namespace \"",
                               absl::CHexEscape(signature.signature_namespace.substr(0, 64)),
                               "\", not \"", expected_namespace,
                               "\" (sign with ssh-keygen -Y sign -n ", expected_namespace, ")"));
  }
  const size_t digest_bytes = signature.hash_algorithm == SshHashAlgorithm::kSha256 ? 32 : 64;
  CHECK(message_digest.size() == digest_bytes)
      << "digest of " << message_digest.size() << " bytes for "
      << SshHashAlgorithmName(signature.hash_algorithm);
  // PROTOCOL.sshsig's signed data; the reserved field is signed empty, as OpenSSH does.
  std::string data(kMagic);
  AppendSshString(&data, expected_namespace);
  AppendSshString(&data, "");
  AppendSshString(&data, SshHashAlgorithmName(signature.hash_algorithm));
  AppendSshString(&data, message_digest);
  return VerifyRaw(signature, data);
}

absl::StatusOr<AllowedSigners> ParseAllowedSigners(absl::string_view text) {
  if (text.size() > kAllowedSignersBytesMax) {
    return Refuse(SignatureRefusal::kMalformedSigners,
                  absl::StrCat("the allowed signers file is larger than ", kAllowedSignersBytesMax,
                               " bytes"));
  }
  AllowedSigners out;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.size() > kAllowedSignersLineBytesMax) {
      return Refuse(SignatureRefusal::kMalformedSigners,
                    absl::StrCat("allowed signers line ", line_number, " is longer than ",
                                 kAllowedSignersLineBytesMax, " bytes"));
    }
    absl::ConsumeSuffix(&line, "\r");
    SkipSpace(&line);
    if (line.empty() || line.front() == '#') continue;
    if (out.signers.size() == kAllowedSignersEntriesMax) {
      return Refuse(SignatureRefusal::kMalformedSigners,
                    absl::StrCat("the allowed signers file has more than ",
                                 kAllowedSignersEntriesMax, " entries"));
    }
    absl::StatusOr<AllowedSigner> signer = ParseSignerLine(line);
    if (!signer.ok()) {
      return Refuse(
          SignatureRefusal::kMalformedSigners,
          absl::StrCat("allowed signers line ", line_number, ": ", signer.status().message()));
    }
    signer->line_number = line_number;
    out.signers.push_back(*std::move(signer));
  }
  return out;
}

absl::StatusOr<VerifiedSigner> VerifySshSignature(const AllowedSigners& allowed,
                                                  const SshSignature& signature,
                                                  absl::string_view expected_namespace,
                                                  absl::string_view message_digest,
                                                  absl::Time now) {
  RETURN_IF_ERROR(VerifySshSignatureDigest(signature, expected_namespace, message_digest));
  const std::string fingerprint = SshKeyFingerprint(signature.public_key);
  absl::Status first_refusal;
  for (const AllowedSigner& line : allowed.signers) {
    if (line.public_key != signature.public_key) continue;
    absl::Status refusal;
    const std::string where =
        absl::StrCat("allowed signers line ", line.line_number, " (", line.principals, ")");
    if (line.namespaces.has_value() &&
        !SshPatternListMatches(expected_namespace, *line.namespaces)) {
      refusal = Refuse(SignatureRefusal::kNamespaceNotAllowed,
                       absl::StrCat(where, " does not allow namespace \"", expected_namespace,
                                    "\" for key ", fingerprint));
    } else if (line.valid_after.has_value() && now < *line.valid_after) {
      refusal =
          Refuse(SignatureRefusal::kNotYetValid,
                 absl::StrCat("key ", fingerprint, " is not valid before ",
                              UtcText(*line.valid_after), " (", where, "); now is ", UtcText(now)));
    } else if (line.valid_before.has_value() && now > *line.valid_before) {
      refusal = Refuse(SignatureRefusal::kExpired, absl::StrCat("key ", fingerprint, " expired at ",
                                                                UtcText(*line.valid_before), " (",
                                                                where, "); now is ", UtcText(now)));
    }
    if (refusal.ok()) {
      return VerifiedSigner{line.principals, fingerprint, signature.key_type, line.line_number};
    }
    if (first_refusal.ok()) first_refusal = refusal;
  }
  if (!first_refusal.ok()) return first_refusal;
  return Refuse(SignatureRefusal::kUnknownSigner,
                absl::StrCat("key ", fingerprint, " (", signature.key_type,
                             ") is not in the allowed signers file"));
}

void AppendSshString(std::string* out, absl::string_view s) {
  const uint32_t n = static_cast<uint32_t>(s.size());
  const char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)};
  out->append(len, 4);
  out->append(s.data(), s.size());
}

bool SshPatternListMatches(absl::string_view text, absl::string_view pattern_list) {
  bool positive = false;
  for (absl::string_view pattern : absl::StrSplit(pattern_list, ',')) {
    const bool negated = absl::ConsumePrefix(&pattern, "!");
    if (PatternMatches(text, pattern)) {
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

}  // namespace bulwark::crypto
