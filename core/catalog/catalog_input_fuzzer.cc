// libFuzzer target for the catalog's input handling: fuzz bytes become a registration (type, name,
// version, command, sha256, args, env, limits, signature under a signature policy and an
// allowed-signers file) or a stored record, and go through validation, the artifact check, the
// signature check and storage against an InMemoryStorage and a SimFileSystem plugin directory.
// Invariants (a violation aborts): every refusal carries a catalog reason that prefixes its
// message; no message contains an env value or the signing key; what is accepted reads back
// identically (limits and signature included), survives a reload, and every stored record
// decodes and validates; under "required" nothing is accepted or launched without a signer.
//
// Built two ways: by tools/fuzz with clang -fsanitize=fuzzer (sources: this file and the
// //core/catalog library with its deps), and as //core/catalog:catalog_input_fuzzer_test, where
// fuzz_corpus_driver.cc runs the seeds below and seeded mutations of them.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/crypto/sha256.h"
#include "base/crypto/sshsig_testing.h"
#include "base/env/file_system.h"
#include "base/env/random.h"
#include "base/env/sim/sim_event_loop.h"
#include "base/env/sim/sim_file_system.h"
#include "base/status/check.h"
#include "base/storage/in_memory_storage.h"
#include "core/catalog/catalog.h"
#include "core/catalog/catalog_error.h"
#include "core/catalog/codec.h"
#include "core/catalog/fuzz_reader.h"
#include "core/catalog/validation.h"

namespace bulwark::fuzz {
// Well-formed inputs for the corpus driver (and an initial libFuzzer corpus).
std::vector<std::string> SeedInputs();
}  // namespace bulwark::fuzz

namespace bulwark::catalog {
namespace {

// Inserted into every env value, so a leak is recognisable whatever the fuzzer put there.
constexpr absl::string_view kMarker = "zq9ENVVALUEzq9";
// The signing key's private seed (32 bytes) and where the allowed-signers file lives.
constexpr absl::string_view kSigningSeed = "catalog-fuzzer-signing-seed-32by";
constexpr absl::string_view kSignersPath = "/etc/allowed_signers";

enum Op : uint8_t {
  kRegister = 0,
  kRegisterThenOperate = 1,
  kDecodeEntry = 2,
  kDecodePin = 3,
  kOperateOnly = 4,
  kRegisterTwiceAndReload = 5,
  kOpCount = 6,
};

using fuzz::Reader;

void AppendField(std::string* out, absl::string_view field) {
  out->push_back(static_cast<char>(field.size() & 0xff));
  out->push_back(static_cast<char>(field.size() >> 8));
  out->append(field.data(), field.size());
}

struct World {
  SeededRandom random{7};
  sim::SimFileSystem fs{random};
  InMemoryStorage storage;
  sim::SimClock clock;

  World() {
    CHECK_OK(fs.CreateDir("/plugins", 0755));
    CHECK_OK(fs.WriteFileDurably("/plugins/alpha", "alpha bytes", 0755));
    CHECK_OK(fs.WriteFileDurably("/plugins/writable", "writable bytes", 0777));
    CHECK_OK(fs.CreateDir("/plugins/sub", 0755));
    CHECK_OK(fs.WriteFileDurably("/plugins/sub/gamma", "gamma bytes", 0755));
    CHECK_OK(fs.CreateDir("/plugins/dir", 0755));
    CHECK_OK(fs.CreateSymlink("alpha", "/plugins/link"));
    CHECK_OK(fs.CreateDir("/outside", 0755));
    CHECK_OK(fs.WriteFileDurably("/outside/evil", "alpha bytes", 0755));
    CHECK_OK(fs.CreateSymlink("/outside/evil", "/plugins/escape"));
    CHECK_OK(fs.CreateDir("/etc", 0755));
  }
};

struct Input {
  Op op = kRegister;
  RegisterRequest request;
  bool correct_sha = false;
  bool check_permissions = false;
  bool builtins = false;
  bool sign = false;  // Replace the signature with a genuine one of the artifact.
  SignaturePolicy policy = SignaturePolicy::kOff;
  std::string signers;  // The allowed-signers file; "" puts the signing key's line there.
  std::string raw;      // For the decode ops: the name field.
};

Input Parse(const uint8_t* data, size_t size) {
  Reader reader(data, size);
  Input input;
  input.op = static_cast<Op>(reader.Byte() % kOpCount);
  const uint8_t flags = reader.Byte();
  input.request.type = kAllPluginTypes[(flags & 3) % 3];
  input.correct_sha = (flags >> 2) & 1;
  input.check_permissions = (flags >> 3) & 1;
  input.builtins = (flags >> 4) & 1;
  input.request.name = reader.Field();
  input.raw = input.request.name;
  input.request.version = reader.Field();
  input.request.command = reader.Field();
  input.request.sha256 = reader.Field();
  for (size_t n = reader.Byte(); n > 0; --n) input.request.args.push_back(reader.Field());
  for (size_t n = reader.Byte(); n > 0; --n) {
    std::string entry = reader.Field();
    const size_t eq = entry.find('=');
    entry.insert(eq == std::string::npos ? 0 : eq + 1, kMarker.data(), kMarker.size());
    input.request.env.push_back(std::move(entry));
  }
  // Signatures: flags bit 5 signs the artifact, bits 6-7 pick the policy.
  input.sign = (flags >> 5) & 1;
  constexpr SignaturePolicy kPolicies[] = {SignaturePolicy::kOff, SignaturePolicy::kWarn,
                                           SignaturePolicy::kRequired};
  input.policy = kPolicies[(flags >> 6) % 3];
  input.request.signature = reader.Field();
  input.signers = reader.Field();
  // Limits: a mask byte, then 8 big-endian bytes per limit set.
  const uint8_t mask = reader.Byte();
  std::optional<uint64_t>* slots[] = {&input.request.limits.memory_bytes,
                                      &input.request.limits.pids, &input.request.limits.cpu_weight,
                                      &input.request.limits.open_files};
  for (int i = 0; i < 4; ++i) {
    if (((mask >> i) & 1) == 0) continue;
    uint64_t v = 0;
    for (int b = 0; b < 8; ++b) v = v << 8 | reader.Byte();
    *slots[i] = v;
  }
  return input;
}

// The marker may legitimately show up if the fuzzer also put it in a field that messages quote.
bool MarkerOutsideEnv(const RegisterRequest& r) {
  if (absl::StrContains(r.name, kMarker) || absl::StrContains(r.version, kMarker) ||
      absl::StrContains(r.command, kMarker) || absl::StrContains(r.sha256, kMarker)) {
    return true;
  }
  for (const std::string& arg : r.args) {
    if (absl::StrContains(arg, kMarker)) return true;
  }
  for (const std::string& entry : r.env) {
    // A marker in a key (before the first '=') is a key, which messages may show.
    const size_t eq = entry.find('=');
    if (eq != std::string::npos && absl::StrContains(entry.substr(0, eq), kMarker)) return true;
  }
  return false;
}

// Every error has a reason that prefixes its message, and shows no env value or key material.
void CheckError(const absl::Status& status, const RegisterRequest& request) {
  if (status.ok()) return;
  static const std::string* key_line =
      new std::string(crypto::testing::Ed25519PublicKeyLine(kSigningSeed));
  CHECK(!absl::StrContains(status.message(), key_line->substr(key_line->find(' ') + 1)))
      << "key material in a message: " << status;
  const std::optional<CatalogError> error = CatalogErrorOf(status);
  CHECK(error.has_value()) << "an error without a catalog reason: " << status;
  CHECK(absl::StartsWith(status.message(), CatalogErrorReason(*error))) << status;
  if (!MarkerOutsideEnv(request)) {
    CHECK(!absl::StrContains(status.ToString(), kMarker)) << "env value in a message: " << status;
  }
}

// Every stored record decodes and validates; the index matches a fresh load.
void CheckStorage(World& world, Catalog& catalog, const CatalogOptions& options) {
  const std::vector<std::string> keys = world.storage.List("").value();
  for (const std::string& key : keys) {
    const std::string value = world.storage.Get(key).value().value();
    if (absl::StartsWith(key, "core/plugin-catalog/pinned/")) {
      CHECK_OK(DecodePin(value));
    } else {
      CHECK_OK(DecodeEntry(value));
    }
  }
  absl::StatusOr<std::unique_ptr<Catalog>> reopened =
      Catalog::Open(world.storage, world.fs, options);
  CHECK_OK(reopened);
  for (PluginType type : kAllPluginTypes) {
    CHECK((*reopened)->List(type) == catalog.List(type)) << "reload changed the catalog";
  }
}

std::string ArtifactBytes(World& world, absl::string_view command) {
  if (command.empty() || command.front() == '/') return "";
  absl::StatusOr<std::string> contents = world.fs.ReadFile(JoinPath("/plugins", command), 1 << 20);
  return contents.ok() ? *contents : "";
}

std::string ShaOfCommand(World& world, absl::string_view command) {
  if (command.empty() || command.front() == '/') return std::string(64, '0');
  absl::StatusOr<std::string> contents = world.fs.ReadFile(JoinPath("/plugins", command), 1 << 20);
  // Not a readable file: a well-formed digest, so the artifact check itself refuses.
  if (!contents.ok()) return std::string(64, '0');
  return crypto::HexEncode(crypto::Sha256::Hash(*contents));
}

void Operate(Catalog& catalog, const Input& input) {
  const RegisterRequest& r = input.request;
  CheckError(catalog.Get(r.type, r.name, r.version).status(), r);
  CheckError(catalog.Pin(r.type, r.name, r.version), r);
  CheckError(catalog.GetPinned(r.type, r.name).status(), r);
  CheckError(catalog.EffectiveVersion(r.type, r.name, r.version).status(), r);
  CheckError(catalog.GetForLaunch(r.type, r.name, r.version).status(), r);
  CheckError(catalog.Delete(r.type, r.name, r.version), r);
  CheckError(catalog.Unpin(r.type, r.name), r);
  CheckError(catalog.Delete(r.type, r.name, r.version), r);
}

void RunOne(const uint8_t* data, size_t size) {
  Input input = Parse(data, size);
  if (input.op == kDecodeEntry) {
    absl::StatusOr<CatalogEntry> entry = DecodeEntry(input.raw);
    if (entry.ok()) {
      // A decoded entry re-encodes to something that decodes to the same entry.
      absl::StatusOr<CatalogEntry> again = DecodeEntry(EncodeEntry(*entry));
      CHECK_OK(again);
      CHECK(ViewOf(*again) == ViewOf(*entry) && again->env == entry->env);
    } else {
      CHECK(CatalogErrorOf(entry.status()) == CatalogError::kStorageCorrupt) << entry.status();
    }
    return;
  }
  if (input.op == kDecodePin) {
    absl::StatusOr<PinRecord> pin = DecodePin(input.raw);
    if (pin.ok()) {
      CHECK(DecodePin(EncodePin(*pin)).value() == *pin);
    } else {
      CHECK(CatalogErrorOf(pin.status()) == CatalogError::kStorageCorrupt) << pin.status();
    }
    return;
  }

  World world;
  CatalogOptions options;
  options.plugin_directory = "/plugins";
  options.check_permissions = input.check_permissions;
  // One entry only when registering twice, so the second version finds the catalog full.
  options.entries_max = input.op == kRegisterTwiceAndReload ? 1 : 4;
  if (input.builtins) {
    options.builtins = {{PluginType::kSecret, "kv", "v1.0.0+builtin"},
                        {PluginType::kAuth, "alpha", "v0.1.0+builtin"}};
  }
  if (input.correct_sha) input.request.sha256 = ShaOfCommand(world, input.request.command);
  options.signature_policy = input.policy;
  options.allowed_signers_file = std::string(kSignersPath);
  options.clock = &world.clock;
  CHECK_OK(world.fs.WriteFileDurably(
      std::string(kSignersPath),
      input.signers.empty()
          ? absl::StrCat("ops@example.com namespaces=\"bulwark-plugin\" ",
                         crypto::testing::Ed25519PublicKeyLine(kSigningSeed), "\n")
          : input.signers,
      0644));
  if (input.sign) {
    input.request.signature = crypto::testing::SignSshsigEd25519(
        kSigningSeed, "bulwark-plugin", ArtifactBytes(world, input.request.command));
  }
  std::unique_ptr<Catalog> catalog =
      std::move(Catalog::Open(world.storage, world.fs, options)).value();
  const RegisterRequest& r = input.request;

  if (input.op != kOperateOnly) {
    absl::StatusOr<CatalogEntryView> view = catalog->Register(r);
    CheckError(view.status(), r);
    // Validation alone must agree with the catalog on what is malformed.
    absl::StatusOr<RegisterRequest> validated = ValidateRegisterRequest(r);
    if (view.ok()) {
      CHECK_OK(validated);
      absl::StatusOr<CatalogEntryView> got = catalog->Get(r.type, r.name, r.version);
      CHECK_OK(got);
      CHECK(*got == *view) << got->DebugString() << " vs " << view->DebugString();
      CHECK(view->version == validated->version && view->sha256_hex == validated->sha256);
      absl::StatusOr<LaunchSpec> spec = catalog->GetForLaunch(r.type, r.name, r.version);
      CHECK_OK(spec);
      CHECK(spec->entry.env == r.env);
      CHECK(spec->entry.limits == r.limits) << "limits changed on the way through";
      if (!spec->entry.builtin) {
        // Kept as given (off keeps it unverified); a signer only when verified.
        CHECK(spec->entry.signature == r.signature);
        if (input.policy == SignaturePolicy::kOff) CHECK(spec->entry.signer_principal.empty());
        if (input.policy == SignaturePolicy::kRequired) {
          CHECK(!spec->entry.signer_principal.empty() &&
                absl::StartsWith(spec->entry.signer_fingerprint, "SHA256:"))
              << "accepted and launched without a verified signer under required";
        }
      }
    } else if (!validated.ok()) {
      CHECK(CatalogErrorOf(validated.status()) == CatalogErrorOf(view.status()))
          << validated.status() << " vs " << view.status();
    }
    if (input.op == kRegisterTwiceAndReload) {
      CheckError(catalog->Register(r).status(), r);
      RegisterRequest other = r;
      other.version = "v9.9.9";
      CheckError(catalog->Register(other).status(), other);
    }
  }
  if (input.op == kRegisterThenOperate || input.op == kOperateOnly) Operate(*catalog, input);
  CheckStorage(world, *catalog, options);
}

}  // namespace
}  // namespace bulwark::catalog

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bulwark::catalog::RunOne(data, size);
  return 0;
}

namespace bulwark::fuzz {

std::vector<std::string> SeedInputs() {
  using catalog::AppendField;
  auto make = [](uint8_t op, uint8_t flags, std::vector<std::string> fields,
                 std::vector<std::string> args, std::vector<std::string> env) {
    std::string out;
    out.push_back(static_cast<char>(op));
    out.push_back(static_cast<char>(flags));
    for (const std::string& f : fields) AppendField(&out, f);
    out.push_back(static_cast<char>(args.size()));
    for (const std::string& a : args) AppendField(&out, a);
    out.push_back(static_cast<char>(env.size()));
    for (const std::string& e : env) AppendField(&out, e);
    return out;
  };
  const std::string sha(64, 'a');
  constexpr uint8_t kCorrectSha = 1 << 2, kCheckPerms = 1 << 3, kBuiltins = 1 << 4;
  std::vector<std::string> seeds = {
      make(0, kCorrectSha, {"p", "1.0.0", "alpha", ""}, {"-v"}, {"TOKEN=x"}),
      make(1, kCorrectSha | 2, {"p", "", "sub/gamma", ""}, {}, {"A=1", "B=2"}),
      make(5, kCorrectSha, {"p", "v2.0.0-rc.1+b", "link", ""}, {}, {}),
      make(0, kCorrectSha, {"p", "1.0.0", "escape", ""}, {}, {}),
      make(0, kCorrectSha, {"p", "1.0.0", "dir", ""}, {}, {}),
      make(0, kCorrectSha, {"p", "1.0.0", "missing", ""}, {}, {}),
      make(0, kCorrectSha | kCheckPerms, {"p", "1.0.0", "writable", ""}, {}, {}),
      make(0, kCorrectSha | kBuiltins | 2, {"kv", "", "alpha", ""}, {}, {}),
      make(1, kCorrectSha | kBuiltins | 2, {"kv", "1.0.0+builtin", "alpha", ""}, {}, {}),
      make(0, 0, {"p", "1.0.0", "alpha", sha}, {}, {}),
      make(0, 0, {"p", "1.0.0", "../alpha", sha}, {}, {}),
      make(0, 0, {"p", "1.0", "/abs", "xyz"}, {}, {"noequals"}),
      make(4, kBuiltins, {"kv", "v1.0.0+builtin", "", ""}, {}, {}),
      make(2, 0,
           {R"({"name":"x","type":3,"version":"v1.0.0","command":"x","args":null,"env":["A=1"],)"
            R"("sha256":"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=","builtin":false})"},
           {}, {}),
      make(3, 0, {R"({"name":"x","type":"auth","version":"v1.0.0"})"}, {}, {}),
      // A stored record with limits and a signature (the fields signatures and limits added).
      make(2, 0,
           {R"({"name":"x","type":"secret","version":"v1.0.0","command":"x","args":[],)"
            R"("env":[],"sha256":"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=","builtin":false,)"
            R"("limits":{"memory_bytes":67108864,"pids":32},"signature":"-----BEGIN SSH )"
            R"(SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n","signer_principal":"ops",)"
            R"("signer_fingerprint":"SHA256:x"})"},
           {}, {}),
  };
  // Signatures and limits: flags bit 5 signs the artifact with the key of the default
  // allowed-signers file, bits 6-7 pick the policy; then the signature and allowed-signers
  // fields, a limits mask and 8 bytes per limit.
  constexpr uint8_t kSign = 1 << 5, kWarn = 1 << 6, kRequired = 2 << 6;
  auto extra = [](std::string signature, std::string signers, uint8_t mask,
                  std::vector<uint64_t> values) {
    std::string out;
    AppendField(&out, signature);
    AppendField(&out, signers);
    out.push_back(static_cast<char>(mask));
    for (uint64_t v : values) {
      for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
    }
    return out;
  };
  const std::string signed_alpha =
      make(1, kCorrectSha | kSign | kRequired, {"p", "1.0.0", "alpha", ""}, {}, {});
  seeds.push_back(signed_alpha + extra("", "", 0, {}));
  seeds.push_back(make(0, kCorrectSha | kRequired, {"p", "1.0.0", "alpha", ""}, {}, {}) +
                  extra("", "", 0, {}));
  seeds.push_back(make(0, kCorrectSha | kSign | kWarn, {"p", "1.0.0", "alpha", ""}, {}, {}) +
                  extra("", "bob ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==\n", 0, {}));
  seeds.push_back(make(0, kCorrectSha, {"p", "1.0.0", "alpha", ""}, {}, {}) +
                  extra("-----BEGIN SSH SIGNATURE-----\nnot base64\n", "", 0, {}));
  seeds.push_back(make(1, kCorrectSha | kSign | kRequired, {"p", "1.0.0", "alpha", ""}, {}, {}) +
                  extra("", "ops valid-before=\"20200101Z\" x\n", 0, {}));
  seeds.push_back(make(5, kCorrectSha, {"p", "1.0.0", "alpha", ""}, {}, {}) +
                  extra("", "", 0xf, {64u << 20, 32, 50, 256}));
  seeds.push_back(make(0, kCorrectSha, {"p", "1.0.0", "alpha", ""}, {}, {}) +
                  extra("", "", 0x5, {1, 0}));
  return seeds;
}

}  // namespace bulwark::fuzz
