// Making SSHSIG signatures without ssh-keygen, for the simulator (which cannot run a process) and
// fuzz seeds: an Ed25519 key from a fixed 32-byte seed, signatures as `ssh-keygen -Y sign` makes
// them. Test-only: nothing that ships signs.
#ifndef BULWARK_BASE_CRYPTO_SSHSIG_TESTING_H_
#define BULWARK_BASE_CRYPTO_SSHSIG_TESTING_H_

#include <string>

#include "absl/strings/string_view.h"

namespace bulwark::crypto::testing {

// A fixed example made with the real `ssh-keygen -Y sign -n bulwark-plugin` (sha512) over
// kExampleMessage by the ssh-ed25519 key kExampleKey, whose fingerprint is kExampleFingerprint:
// for fuzz seeds, codec tests and benchmarks.
inline constexpr absl::string_view kExampleMessage = "bulwark fuzz seed";
inline constexpr absl::string_view kExampleSignature =
    "-----BEGIN SSH SIGNATURE-----\n"
    "U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgwRaxvLOuLgHE2DFoRlZKa8Vdoy\n"
    "j6iG0bVe52qI4YH/IAAAAOYnVsd2Fyay1wbHVnaW4AAAAAAAAABnNoYTUxMgAAAFMAAAAL\n"
    "c3NoLWVkMjU1MTkAAABAqvTt+wKsWJC+LkeKg18xLUyLIZfIPHRniGveRXGA6MC70Mr07t\n"
    "KRtxleMSMQZFaZquIxMcakIlqbHOT+70HHDg==\n"
    "-----END SSH SIGNATURE-----\n";
inline constexpr absl::string_view kExampleKey =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMEWsbyzri4BxNgxaEZWSmvFXaMo+ohtG1XudqiOGB/y";
inline constexpr absl::string_view kExampleFingerprint =
    "SHA256:5atOLIg35hvSbbXyxFLXawymkjlqclvcyGt5AnH/8Hc";

// "ssh-ed25519 <base64 key blob>" of the key whose private seed is `seed32` (32 bytes).
std::string Ed25519PublicKeyLine(absl::string_view seed32);

// The armored SSHSIG (version 1, sha512) of `message` in namespace `ns` by that key.
std::string SignSshsigEd25519(absl::string_view seed32, absl::string_view ns,
                              absl::string_view message);

}  // namespace bulwark::crypto::testing

#endif  // BULWARK_BASE_CRYPTO_SSHSIG_TESTING_H_
