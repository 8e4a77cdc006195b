// Signed plugin artifacts in the catalog: the signature policy, the namespace bulwark signs in,
// and the check of an entry's OpenSSH signature against the allowed-signers file (read through
// the Env's FileSystem at every check, so an edit of the file applies to the next launch).
#ifndef BULWARK_CORE_CATALOG_SIGNATURE_H_
#define BULWARK_CORE_CATALOG_SIGNATURE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/crypto/sshsig.h"
#include "base/env/file_system.h"

namespace bulwark::catalog {

// The SSHSIG namespace of plugin signatures: `ssh-keygen -Y sign -n bulwark-plugin`. A signature
// made for another namespace (git's "git", "file") is refused, so a signed commit or file cannot
// be replayed as a plugin signature.
inline constexpr absl::string_view kPluginSignatureNamespace = "bulwark-plugin";

// What the catalog does with signatures:
//   kOff       nothing is verified; a signature given at registration is checked for form and
//              kept (unverified, without a signer) so that turning the policy on later needs no
//              re-registration.
//   kWarn      a signature given is verified at registration (refused if it fails) and at every
//              launch; an unsigned entry, or one whose signature no longer verifies at launch,
//              runs with a warning in the log.
//   kRequired  registration needs a signature that verifies; every launch verifies it again
//              over the bytes it executes and refuses the launch if it does not.
enum class SignaturePolicy { kOff, kWarn, kRequired };

// "off", "warn", "required".
absl::string_view SignaturePolicyName(SignaturePolicy policy);

// Parses "off", "warn" or "required". InvalidArgument naming the choices otherwise.
absl::StatusOr<SignaturePolicy> ParseSignaturePolicy(absl::string_view text);

// Parses the armored signature of a registration. Refusal: catalog.signature_refused carrying the
// crypto reason (signature.malformed, signature.unsupported).
absl::StatusOr<crypto::SshSignature> ParseEntrySignature(absl::string_view armored);

// Verifies `signature` over an artifact whose digest (with the signature's hash algorithm) is
// `digest`, against the allowed-signers file at `allowed_signers_file`, at `now`. `what` names
// the entry in messages ("secret plugin \"kv\" version v1.0.0"). Refusals:
//   catalog.allowed_signers_invalid (kFailedPrecondition): the file is missing, unreadable, too
//       large or malformed (the line and the problem are named, never a key)
//   catalog.signature_refused: the crypto reason (signature.wrong_namespace, bad_signature,
//       unknown_signer, namespace_not_allowed, not_yet_valid, expired) and its code
absl::StatusOr<crypto::VerifiedSigner> VerifyEntrySignature(FileSystem& fs,
                                                            absl::string_view allowed_signers_file,
                                                            const crypto::SshSignature& signature,
                                                            absl::string_view digest,
                                                            absl::Time now, absl::string_view what);

}  // namespace bulwark::catalog

#endif  // BULWARK_CORE_CATALOG_SIGNATURE_H_
