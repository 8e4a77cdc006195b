// OpenSSH signatures (the SSHSIG format of `ssh-keygen -Y sign`, OpenSSH's PROTOCOL.sshsig) and
// the allowed-signers file that `ssh-keygen -Y verify` and git read, verified with OpenSSL for
// ssh-ed25519, ecdsa-sha2-nistp256 and ssh-rsa (rsa-sha2-512 / rsa-sha2-256) keys.
//
// Pure functions over bytes: no files, no clock (the caller passes "now"). Every refusal carries
// a SignatureRefusal (as a payload and as the message prefix "signature.<reason>: ") and never
// contains key material: keys are named by their fingerprint ("SHA256:<base64>", as ssh-keygen
// prints it) and allowed-signers lines by their number.
#ifndef BULWARK_BASE_CRYPTO_SSHSIG_H_
#define BULWARK_BASE_CRYPTO_SSHSIG_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct evp_md_ctx_st;

namespace bulwark::crypto {

// Limits on inputs that can grow. An armored signature of a 16384-bit RSA key is about 6 KiB.
inline constexpr size_t kSshSignatureTextBytesMax = 64 * 1024;
inline constexpr size_t kAllowedSignersBytesMax = 1024 * 1024;
inline constexpr size_t kAllowedSignersLineBytesMax = 16 * 1024;
inline constexpr size_t kAllowedSignersEntriesMax = 4096;
// OpenSSH's own bounds: SSHBUF_MAX_BIGNUM (16384 bits) and SSH_RSA_MINIMUM_MODULUS_SIZE.
inline constexpr size_t kSshBignumBytesMax = 2048;
inline constexpr int kSshRsaModulusBitsMin = 1024;

// Why a signature was refused. Stable names ("signature.unknown_signer"), never renumbered.
enum class SignatureRefusal {
  kMalformed,            // signature.malformed: the armored text or the blob does not parse.
  kUnsupported,          // signature.unsupported: a key, signature or hash algorithm not handled.
  kWrongNamespace,       // signature.wrong_namespace: made for another namespace.
  kBadSignature,         // signature.bad_signature: does not verify over these bytes.
  kUnknownSigner,        // signature.unknown_signer: the key is on no allowed-signers line.
  kNamespaceNotAllowed,  // signature.namespace_not_allowed: the line's namespaces= excludes it.
  kNotYetValid,          // signature.not_yet_valid: before the line's valid-after.
  kExpired,              // signature.expired: after the line's valid-before.
  kMalformedSigners,     // signature.malformed_allowed_signers: the file does not parse.
};

// "signature.unknown_signer" etc.
absl::string_view SignatureRefusalName(SignatureRefusal refusal);

inline constexpr absl::string_view kSignatureRefusalPayloadUrl =
    "type.bulwark.dev/crypto.SignatureRefusal";

// The refusal attached to `status` by this library, or nullopt.
std::optional<SignatureRefusal> SignatureRefusalOf(const absl::Status& status);

enum class SshHashAlgorithm { kSha256, kSha512 };

// "sha256" or "sha512", as SSHSIG spells them.
absl::string_view SshHashAlgorithmName(SshHashAlgorithm algorithm);

// A parsed SSHSIG blob (version 1).
struct SshSignature {
  std::string public_key;  // The signer's public key, SSH wire encoding.
  std::string key_type;    // The key's type name: "ssh-ed25519", "ecdsa-sha2-nistp256", ...
  std::string signature_namespace;
  SshHashAlgorithm hash_algorithm = SshHashAlgorithm::kSha512;
  std::string signature_type;  // "ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", ...
  std::string signature;       // The signature proper (inside the SSH signature blob).
};

// Parses "-----BEGIN SSH SIGNATURE-----\n<base64>\n-----END SSH SIGNATURE-----" (whitespace and
// CRLF around and inside the base64 are accepted). Refusals: signature.malformed naming what is
// malformed (armor, base64, magic, version, which field is truncated, trailing bytes);
// signature.unsupported for a key or hash algorithm this library does not verify.
absl::StatusOr<SshSignature> ParseArmoredSshSignature(absl::string_view text);

// The same for the decoded blob.
absl::StatusOr<SshSignature> ParseSshSignatureBlob(absl::string_view blob);

// "SHA256:<unpadded base64 of SHA-256(key blob)>", as `ssh-keygen -l` prints it.
std::string SshKeyFingerprint(absl::string_view public_key_blob);

// Hashes a message with the algorithm a signature names, in pieces (an artifact is read in
// chunks). Finish() returns the raw digest. Movable, not copyable.
class SshMessageHasher {
 public:
  explicit SshMessageHasher(SshHashAlgorithm algorithm);
  SshMessageHasher(SshMessageHasher&& other) noexcept;
  SshMessageHasher& operator=(SshMessageHasher&& other) noexcept;
  SshMessageHasher(const SshMessageHasher&) = delete;
  SshMessageHasher& operator=(const SshMessageHasher&) = delete;
  ~SshMessageHasher();

  void Update(absl::string_view data);
  std::string Finish();

  static std::string Hash(SshHashAlgorithm algorithm, absl::string_view message);

 private:
  evp_md_ctx_st* ctx_;
};

// Checks `signature` over a message whose digest (with signature.hash_algorithm) is
// `message_digest`, for `expected_namespace`, as `ssh-keygen -Y check-novalidate` does: the
// namespace first (signature.wrong_namespace), then the cryptography (signature.bad_signature,
// signature.unsupported). Says nothing about whether the key is trusted.
absl::Status VerifySshSignatureDigest(const SshSignature& signature,
                                      absl::string_view expected_namespace,
                                      absl::string_view message_digest);

// One line of an allowed-signers file:
//   principals [options] keytype base64-key [comment]
// principals: a comma-separated pattern list, optionally in double quotes.
// options: comma-separated, `namespaces="p1,p2"`, `valid-after="T"`, `valid-before="T"` with T
// as YYYYMMDD[HHMM[SS]][Z]; `cert-authority` is refused (certificates are not supported).
struct AllowedSigner {
  int line_number = 0;
  std::string principals;  // As written (quotes removed): what `find-principals` prints.
  std::string key_type;
  std::string public_key;                 // SSH wire encoding.
  std::optional<std::string> namespaces;  // The pattern list, or nullopt: every namespace.
  std::optional<absl::Time> valid_after;
  std::optional<absl::Time> valid_before;
};

struct AllowedSigners {
  std::vector<AllowedSigner> signers;  // In file order.
};

// Parses an allowed-signers file. Blank lines and lines starting with '#' are skipped.
// Refusals: signature.malformed_allowed_signers naming the line number and what is wrong (never
// the key). Times without a trailing Z are read as UTC (ssh-keygen reads them in the local time
// zone; the two agree on a host that runs in UTC).
absl::StatusOr<AllowedSigners> ParseAllowedSigners(absl::string_view text);

// Who signed: the first allowed-signers line whose key made the signature and whose options
// admit the namespace and `now`.
struct VerifiedSigner {
  std::string principals;   // The line's principals field.
  std::string fingerprint;  // SshKeyFingerprint of the key.
  std::string key_type;
  int line_number = 0;
};

// VerifySshSignatureDigest, then the allowed-signers check of `ssh-keygen -Y verify`:
// signature.unknown_signer when no line holds the key; otherwise, when no line holding it
// admits the signature, the refusal of the first such line (signature.namespace_not_allowed,
// signature.not_yet_valid, signature.expired).
absl::StatusOr<VerifiedSigner> VerifySshSignature(const AllowedSigners& allowed,
                                                  const SshSignature& signature,
                                                  absl::string_view expected_namespace,
                                                  absl::string_view message_digest, absl::Time now);

// Appends `s` as an SSH wire string (uint32 big-endian length, then the bytes).
void AppendSshString(std::string* out, absl::string_view s);

// OpenSSH's match_pattern_list without case folding: `text` against a comma-separated list of
// patterns with '*' and '?'; a matching "!pattern" vetoes. True when some positive pattern
// matches and no negated one does.
bool SshPatternListMatches(absl::string_view text, absl::string_view pattern_list);

}  // namespace bulwark::crypto

#endif  // BULWARK_BASE_CRYPTO_SSHSIG_H_
