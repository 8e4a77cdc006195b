// Signed plugin artifacts (see signature.h): the policy names and the verification against the
// allowed-signers file, with crypto refusals wrapped as catalog errors.
#include "core/catalog/signature.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/catalog/catalog_error.h"

namespace bulwark::catalog {
namespace {

absl::Status Refused(const absl::Status& status, absl::string_view what) {
  return CatalogStatus(status.code(), CatalogError::kSignatureRefused,
                       absl::StrCat("the signature of ", what, " is refused: ", status.message()));
}

}  // namespace

absl::string_view SignaturePolicyName(SignaturePolicy policy) {
  switch (policy) {
    case SignaturePolicy::kOff:
      return "off";
    case SignaturePolicy::kWarn:
      return "warn";
    case SignaturePolicy::kRequired:
      return "required";
  }
  return "unknown";
}

absl::StatusOr<SignaturePolicy> ParseSignaturePolicy(absl::string_view text) {
  for (SignaturePolicy p :
       {SignaturePolicy::kOff, SignaturePolicy::kWarn, SignaturePolicy::kRequired}) {
    if (text == SignaturePolicyName(p)) return p;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("signature policy \"", absl::CHexEscape(text.substr(0, 64)),
                   "\" is not one of \"off\", \"warn\", \"required\""));
}

absl::StatusOr<crypto::SshSignature> ParseEntrySignature(absl::string_view armored) {
  absl::StatusOr<crypto::SshSignature> sig = crypto::ParseArmoredSshSignature(armored);
  if (!sig.ok()) {
    return CatalogStatus(sig.status().code(), CatalogError::kSignatureRefused,
                         absl::StrCat("field signature: ", sig.status().message(),
                                      "; give the file ssh-keygen -Y sign wrote (ARTIFACT.sig)"));
  }
  return sig;
}

absl::StatusOr<crypto::VerifiedSigner> VerifyEntrySignature(
    FileSystem& fs, absl::string_view allowed_signers_file, const crypto::SshSignature& signature,
    absl::string_view digest, absl::Time now, absl::string_view what) {
  absl::StatusOr<std::string> text =
      fs.ReadFile(allowed_signers_file, crypto::kAllowedSignersBytesMax);
  if (!text.ok()) {
    return CatalogStatus(
        absl::StatusCode::kFailedPrecondition, CatalogError::kAllowedSignersInvalid,
        absl::StrCat("the allowed signers file ", allowed_signers_file, " cannot be read (",
                     text.status().message(), "); fix plugin_allowed_signers_file"));
  }
  absl::StatusOr<crypto::AllowedSigners> allowed = crypto::ParseAllowedSigners(*text);
  if (!allowed.ok()) {
    return CatalogStatus(absl::StatusCode::kFailedPrecondition,
                         CatalogError::kAllowedSignersInvalid,
                         absl::StrCat(allowed_signers_file, ": ", allowed.status().message()));
  }
  absl::StatusOr<crypto::VerifiedSigner> signer =
      crypto::VerifySshSignature(*allowed, signature, kPluginSignatureNamespace, digest, now);
  if (!signer.ok()) return Refused(signer.status(), what);
  return signer;
}

}  // namespace bulwark::catalog
