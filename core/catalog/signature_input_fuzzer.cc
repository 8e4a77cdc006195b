// libFuzzer target for the signature inputs the catalog takes: an armored SSHSIG signature
// (`ssh-keygen -Y sign`), its decoded blob, an allowed-signers file, and the three together with a
// message through full verification. Invariants (a violation aborts): every refusal carries a
// SignatureRefusal that prefixes its message; no refusal names a key of the allowed-signers file
// by its base64; whatever verifies stops verifying when one byte of the message changes; and
// (kVerifyAt, at a fuzzed time and namespace) the allowed-signers line that admitted a signature
// holds its key, its principals, a namespaces= pattern list that matches the namespace, and a
// valid-after/valid-before window around the time.
//
// Built two ways, as catalog_input_fuzzer.cc is: by tools/fuzz (`tools/fuzz signature`), and as
// //core/catalog:signature_input_fuzzer_test over the seeds below and seeded mutations of them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "base/crypto/sshsig.h"
#include "base/crypto/sshsig_testing.h"
#include "base/status/check.h"
#include "core/catalog/fuzz_reader.h"

namespace bulwark::fuzz {
std::vector<std::string> SeedInputs();
}  // namespace bulwark::fuzz

namespace bulwark::crypto {
namespace {

constexpr absl::string_view kNamespace = "bulwark-plugin";

enum Op : uint8_t {
  kParseArmored = 0,
  kParseBlob = 1,
  kParseSigners = 2,
  kVerify = 3,
  kVerifyAt = 4,
  kOpCount = 5,
};

// Namespaces kVerifyAt checks against (the catalog only ever asks for the first).
constexpr absl::string_view kNamespaces[] = {kNamespace, "git", "bulwark-other", "file"};

using fuzz::Reader;

void CheckRefusal(const absl::Status& status, const AllowedSigners* signers) {
  if (status.ok()) return;
  const std::optional<SignatureRefusal> refusal = SignatureRefusalOf(status);
  CHECK(refusal.has_value()) << "refusal without a reason: " << status;
  CHECK(absl::StartsWith(status.message(), absl::StrCat(SignatureRefusalName(*refusal), ": ")))
      << status;
  if (signers == nullptr) return;
  for (const AllowedSigner& s : signers->signers) {
    CHECK(!absl::StrContains(status.message(), absl::Base64Escape(s.public_key)))
        << "a refusal shows key material: " << status;
  }
}

// The line that admitted the signature: it holds the signing key, and its options admit
// `name_space` and `now`.
void CheckAdmittingLine(const AllowedSigners& signers, const VerifiedSigner& v,
                        const SshSignature& sig, absl::string_view name_space, absl::Time now) {
  const AllowedSigner* line = nullptr;
  for (const AllowedSigner& s : signers.signers) {
    if (s.line_number == v.line_number) line = &s;
  }
  CHECK(line != nullptr) << "verified by line " << v.line_number << ", which does not exist";
  CHECK(line->public_key == sig.public_key) << "line " << v.line_number << " holds another key";
  CHECK(line->principals == v.principals);
  CHECK(!line->namespaces.has_value() || SshPatternListMatches(name_space, *line->namespaces))
      << "line " << v.line_number << " admitted namespace " << name_space << " outside "
      << *line->namespaces;
  CHECK(!line->valid_after.has_value() || now >= *line->valid_after)
      << "line " << v.line_number << " admitted a time before its valid-after";
  CHECK(!line->valid_before.has_value() || now <= *line->valid_before)
      << "line " << v.line_number << " admitted a time after its valid-before";
}

void RunOne(const uint8_t* data, size_t size) {
  Reader in(data, size);
  const uint8_t op = in.Byte() % kOpCount;
  const std::string a = in.Field();
  switch (op) {
    case kParseArmored:
      CheckRefusal(ParseArmoredSshSignature(a).status(), nullptr);
      return;
    case kParseBlob:
      CheckRefusal(ParseSshSignatureBlob(a).status(), nullptr);
      return;
    case kParseSigners:
      CheckRefusal(ParseAllowedSigners(a).status(), nullptr);
      return;
    default:
      break;
  }
  const std::string sig_text = in.Field();
  std::string message = in.Field();
  absl::Time now = absl::FromCivil(absl::CivilDay(2026, 6, 1), absl::UTCTimeZone());
  absl::string_view name_space = kNamespace;
  if (op == kVerifyAt) {
    // Any second from 1970 to about 2106, and one of the namespaces.
    uint32_t seconds = 0;
    for (int i = 0; i < 4; ++i) seconds = seconds << 8 | in.Byte();
    now = absl::FromUnixSeconds(seconds);
    name_space = kNamespaces[in.Byte() % (sizeof(kNamespaces) / sizeof(kNamespaces[0]))];
  }
  absl::StatusOr<AllowedSigners> signers = ParseAllowedSigners(a);
  CheckRefusal(signers.status(), nullptr);
  absl::StatusOr<SshSignature> sig = ParseArmoredSshSignature(sig_text);
  CheckRefusal(sig.status(), nullptr);
  if (!signers.ok() || !sig.ok()) return;
  absl::StatusOr<VerifiedSigner> v = VerifySshSignature(
      *signers, *sig, name_space, SshMessageHasher::Hash(sig->hash_algorithm, message), now);
  CheckRefusal(v.status(), &*signers);
  if (!v.ok()) return;
  CHECK(absl::StartsWith(v->fingerprint, "SHA256:"));
  CHECK(sig->signature_namespace == name_space)
      << "verified for namespace " << name_space << " a signature made for "
      << sig->signature_namespace;
  CheckAdmittingLine(*signers, *v, *sig, name_space, now);
  message.push_back('\0');
  message[0] ^= 1;
  absl::StatusOr<VerifiedSigner> tampered = VerifySshSignature(
      *signers, *sig, kNamespace, SshMessageHasher::Hash(sig->hash_algorithm, message), now);
  CHECK(SignatureRefusalOf(tampered.status()) == SignatureRefusal::kBadSignature)
      << "a changed message still verifies: " << tampered.status();
}

}  // namespace
}  // namespace bulwark::crypto

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bulwark::crypto::RunOne(data, size);
  return 0;
}

namespace bulwark::fuzz {
namespace {

// Made with ssh-keygen -Y sign -n bulwark-plugin over kMessage (RSA: a 1024-bit key, the
// smallest accepted, to keep the seeds short).
constexpr absl::string_view kMessage = crypto::testing::kExampleMessage;
constexpr absl::string_view kEd25519Signature = crypto::testing::kExampleSignature;
constexpr absl::string_view kEd25519Key = crypto::testing::kExampleKey;
constexpr absl::string_view kEcdsaSignature =
    "-----BEGIN SSH SIGNATURE-----\n"
    "U1NIU0lHAAAAAQAAAGgAAAATZWNkc2Etc2hhMi1uaXN0cDI1NgAAAAhuaXN0cDI1NgAAAE\n"
    "EEF3dclg0X7ObslA62IbaQEZrliKTVe4k1fnDz3pmduTEMpJJmE/in3WWnxkZvdCtNBgUk\n"
    "6WXabf0ilbXn/VyBZQAAAA5idWx3YXJrLXBsdWdpbgAAAAAAAAAGc2hhNTEyAAAAYwAAAB\n"
    "NlY2RzYS1zaGEyLW5pc3RwMjU2AAAASAAAACAK5JPQ2Ow0t0cMyzb9bpKV44WZbSyW4HNS\n"
    "FuQlB7VLMgAAACAkW1FPh20zM2IVruCKqZwbA6t2ZYfzgvlosuaRD+Eq3A==\n"
    "-----END SSH SIGNATURE-----\n";
constexpr absl::string_view kEcdsaKey =
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBd3XJYN"
    "F+zm7JQOtiG2kBGa5Yik1XuJNX5w896ZnbkxDKSSZhP4p91lp8ZGb3QrTQYFJOll2m39IpW15/1cgWU=";
constexpr absl::string_view kRsaSignature =
    "-----BEGIN SSH SIGNATURE-----\n"
    "U1NIU0lHAAAAAQAAAJcAAAAHc3NoLXJzYQAAAAMBAAEAAACBANaXBawIvZy19frCdcrZb3\n"
    "ioFqyK1Mq75GR9qGJbASb9nPHGO/vPWXrES5HqA8ZpkH0W/xIgl5EVIrSyYGwKtSHeGt0Z\n"
    "muHkYSUiJ3019wY3393FmldRMOcdVeqnj1bQHo3wNFNMa4hUg3PBW+naIA8CyPI6jLmwgr\n"
    "uE/PJWMsHlAAAADmJ1bHdhcmstcGx1Z2luAAAAAAAAAAZzaGE1MTIAAACUAAAADHJzYS1z\n"
    "aGEyLTUxMgAAAIA49TPz1x7Otk+gvQ7q1ShM7Fwp975U4NyDvGG/cF0KRPnYuXxyZYGuHa\n"
    "aGcbuLXA4HA+7BvImpV1wz3V+voszgfMNBAyfJJyT0gg7ihlbl+pheNxW9WXHMbCZ9fgD1\n"
    "COn1Vo5r7ctVH3ZA7alyL4tMvUeG4cRzJ6Sgv7joy51EEA==\n"
    "-----END SSH SIGNATURE-----\n";
constexpr absl::string_view kRsaKey =
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDWlwWsCL2ctfX6wnXK2W94qBasitTKu+RkfahiWwEm"
    "/Zzxxjv7z1l6xEuR6gPGaZB9Fv8SIJeRFSK0smBsCrUh3hrdGZrh5GElIid9NfcGN9/dxZpXUTDnHVXq"
    "p49W0B6N8DRTTGuIVINzwVvp2iAPAsjyOoy5sIK7hPzyVjLB5Q==";

void AppendField(std::string* out, absl::string_view field) {
  out->push_back(static_cast<char>(field.size() & 0xff));
  out->push_back(static_cast<char>(field.size() >> 8));
  out->append(field.data(), field.size());
}

std::string Make(uint8_t op, std::vector<absl::string_view> fields) {
  std::string out(1, static_cast<char>(op));
  for (absl::string_view f : fields) AppendField(&out, f);
  return out;
}

}  // namespace

std::vector<std::string> SeedInputs() {
  const std::string signers = absl::StrCat(
      "# seed\nalice@example.com ", kEd25519Key, "\n\"*@ops,bob\" namespaces=\"bulwark-*\" ",
      kEcdsaKey, " c\ncarol valid-after=\"20250101Z\",valid-before=\"20300101120000Z\" ", kRsaKey,
      "\n");
  std::vector<std::string> seeds;
  for (absl::string_view sig : {kEd25519Signature, kEcdsaSignature, kRsaSignature}) {
    seeds.push_back(Make(crypto::kVerify, {signers, sig, kMessage}));
    seeds.push_back(Make(crypto::kParseArmored, {sig}));
  }
  seeds.push_back(Make(crypto::kParseSigners, {signers}));
  // kVerifyAt: the time (4 bytes, big-endian Unix seconds) and namespace index follow the
  // fields. carol's RSA line is valid 2025-01-01 to 2030-01-01 12:00; bob's ECDSA line admits
  // only bulwark-* namespaces.
  auto at = [](std::string seed, uint32_t seconds, uint8_t name_space) {
    for (int shift = 24; shift >= 0; shift -= 8)
      seed.push_back(static_cast<char>(seconds >> shift));
    seed.push_back(static_cast<char>(name_space));
    return seed;
  };
  for (uint32_t seconds : {1700000000u, 1780000000u, 1893499200u, 1893499201u, 4000000000u}) {
    seeds.push_back(at(Make(crypto::kVerifyAt, {signers, kRsaSignature, kMessage}), seconds, 0));
  }
  for (uint8_t name_space = 0; name_space < 4; ++name_space) {
    seeds.push_back(
        at(Make(crypto::kVerifyAt, {signers, kEcdsaSignature, kMessage}), 1780000000u, name_space));
  }
  seeds.push_back(Make(crypto::kVerify, {absl::StrCat("x ", kEd25519Key), kEcdsaSignature, "m"}));
  std::string blob;
  CHECK(absl::Base64Unescape(
      "U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgwRaxvLOuLgHE2DFoRlZKa8Vdoyj6iG0bVe52qI4YH/IAAAA"
      "OYnVsd2Fyay1wbHVnaW4AAAAAAAAABnNoYTUxMgAAAFMAAAALc3NoLWVkMjU1MTkAAABAqvTt+wKsWJC+LkeKg18xLUy"
      "LIZfIPHRniGveRXGA6MC70Mr07tKRtxleMSMQZFaZquIxMcakIlqbHOT+70HHDg==",
      &blob));
  seeds.push_back(Make(crypto::kParseBlob, {blob}));
  return seeds;
}

}  // namespace bulwark::fuzz
