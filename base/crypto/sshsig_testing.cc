// Test-only SSHSIG signing (see sshsig_testing.h), following PROTOCOL.sshsig.
#include "base/crypto/sshsig_testing.h"

#include <openssl/evp.h>

#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/crypto/sshsig.h"
#include "base/status/check.h"

namespace bulwark::crypto::testing {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};

std::unique_ptr<EVP_PKEY, PkeyFree> Key(absl::string_view seed32) {
  CHECK(seed32.size() == 32) << "an Ed25519 seed is 32 bytes";
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed32.data()), 32));
  CHECK(key != nullptr);
  return key;
}

std::string PublicBlob(EVP_PKEY* key) {
  unsigned char raw[32];
  size_t len = sizeof(raw);
  CHECK(EVP_PKEY_get_raw_public_key(key, raw, &len) == 1 && len == 32);
  std::string blob;
  AppendSshString(&blob, "ssh-ed25519");
  AppendSshString(&blob, absl::string_view(reinterpret_cast<const char*>(raw), len));
  return blob;
}

}  // namespace

std::string Ed25519PublicKeyLine(absl::string_view seed32) {
  return absl::StrCat("ssh-ed25519 ", absl::Base64Escape(PublicBlob(Key(seed32).get())));
}

std::string SignSshsigEd25519(absl::string_view seed32, absl::string_view ns,
                              absl::string_view message) {
  std::unique_ptr<EVP_PKEY, PkeyFree> key = Key(seed32);
  std::string signed_data = "SSHSIG";
  AppendSshString(&signed_data, ns);
  AppendSshString(&signed_data, "");
  AppendSshString(&signed_data, "sha512");
  AppendSshString(&signed_data, SshMessageHasher::Hash(SshHashAlgorithm::kSha512, message));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  CHECK(EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1);
  unsigned char sig[64];
  size_t sig_len = sizeof(sig);
  CHECK(EVP_DigestSign(ctx.get(), sig, &sig_len,
                       reinterpret_cast<const unsigned char*>(signed_data.data()),
                       signed_data.size()) == 1);
  std::string sig_blob;
  AppendSshString(&sig_blob, "ssh-ed25519");
  AppendSshString(&sig_blob, absl::string_view(reinterpret_cast<const char*>(sig), sig_len));
  std::string blob = "SSHSIG";
  blob.append("\0\0\0\1", 4);
  AppendSshString(&blob, PublicBlob(key.get()));
  AppendSshString(&blob, ns);
  AppendSshString(&blob, "");
  AppendSshString(&blob, "sha512");
  AppendSshString(&blob, sig_blob);
  const std::string b64 = absl::Base64Escape(blob);
  std::string out = "-----BEGIN SSH SIGNATURE-----\n";
  for (size_t i = 0; i < b64.size(); i += 70) absl::StrAppend(&out, b64.substr(i, 70), "\n");
  absl::StrAppend(&out, "-----END SSH SIGNATURE-----\n");
  return out;
}

}  // namespace bulwark::crypto::testing
