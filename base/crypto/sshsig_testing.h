// Making SSHSIG signatures without ssh-keygen, for the simulator (which cannot run a process) and
// fuzz seeds: an Ed25519 key from a fixed 32-byte seed, signatures as `ssh-keygen -Y sign` makes
// them. Test-only: nothing that ships signs.
#ifndef BULWARK_BASE_CRYPTO_SSHSIG_TESTING_H_
#define BULWARK_BASE_CRYPTO_SSHSIG_TESTING_H_

#include <string>

#include "absl/strings/string_view.h"

namespace bulwark::crypto::testing {

// "ssh-ed25519 <base64 key blob>" of the key whose private seed is `seed32` (32 bytes).
std::string Ed25519PublicKeyLine(absl::string_view seed32);

// The armored SSHSIG (version 1, sha512) of `message` in namespace `ns` by that key.
std::string SignSshsigEd25519(absl::string_view seed32, absl::string_view ns,
                              absl::string_view message);

}  // namespace bulwark::crypto::testing

#endif  // BULWARK_BASE_CRYPTO_SSHSIG_TESTING_H_
