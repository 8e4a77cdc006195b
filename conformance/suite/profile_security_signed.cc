// The security profile's signed launch: the plugin under test as bulwark runs it under the
// `required` signature policy (docs/security.md "Signed plugins", "The immutable launch").
//
// The check copies the plugin into a plugin directory of its own, signs it with the real
// `ssh-keygen -Y sign -n bulwark-plugin`, and registers it in bulwark's catalog (the production
// core/catalog over the POSIX file system). The catalog must refuse it unsigned
// (catalog.signature_required), signed by a key the allowed-signers file does not hold
// (signature.unknown_signer) and with a signature over other bytes (signature.bad_signature);
// these show the policy is in force over this plugin's bytes. Correctly signed it is accepted,
// verified again for launch, and executed from the sealed memfd copy the catalog hashed: the
// plugin then sees /proc/self/exe as "/memfd:<name> (deleted)", not a path on disk, and MUST
// still start and serve. A plugin that re-executes itself by path, or finds its files next to
// its own executable, fails here (fixture mode needs_own_path).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/crypto/sha256.h"
#include "base/crypto/sshsig.h"
#include "base/env/posix/posix_clock.h"
#include "base/env/posix/posix_file_system.h"
#include "base/storage/in_memory_storage.h"
#include "conformance/suite/conformance.h"
#include "conformance/suite/harness.h"
#include "conformance/suite/profile_util.h"
#include "core/catalog/catalog.h"
#include "core/catalog/catalog_error.h"
#include "gtest/gtest.h"

namespace bulwark::conformance {
namespace {

constexpr absl::string_view kCommand = "plugin-under-test";
constexpr absl::string_view kPrincipal = "release@conformance.invalid";

// Runs `command` with sh in `dir`; the exit status (127: the shell or a command not found).
int ShellIn(const std::string& dir, const std::string& command) {
  const int status = std::system(absl::StrCat("set -e; cd '", dir, "'; ", command).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string ReadOrEmpty(const std::string& path) {
  std::string out;
  return ReadWholeFile(path, &out) ? out : std::string();
}

// Signs `file` (a path relative to `dir`) with `key` in bulwark's namespace; the armored
// signature, or "".
std::string Sign(const std::string& dir, const std::string& key, const std::string& file) {
  const std::string sig = absl::StrCat(file, ".sig");
  if (ShellIn(dir, absl::StrCat("rm -f '", sig, "'; ssh-keygen -q -Y sign -n ",
                                catalog::kPluginSignatureNamespace, " -f ", key, " '", file,
                                "' 2>/dev/null")) != 0) {
    return "";
  }
  std::string text = ReadOrEmpty(absl::StrCat(dir, "/", sig));
  ::unlink(absl::StrCat(dir, "/", sig).c_str());
  return text;
}

catalog::PluginType CatalogType() {
  switch (Config().manifest.type) {
    case PluginType::kAuth:
      return catalog::PluginType::kAuth;
    case PluginType::kDatabase:
      return catalog::PluginType::kDatabase;
    case PluginType::kSecret:
      break;
  }
  return catalog::PluginType::kSecret;
}

// The refusal must be `reason` (and, for a refused signature, `signature_reason`), and its
// message must not carry the public keys (the catalog names keys by fingerprint only).
void ExpectRefused(const absl::StatusOr<catalog::CatalogEntryView>& registered,
                   catalog::CatalogError reason, absl::string_view signature_reason,
                   absl::string_view what, const std::string& dir) {
  if (registered.ok()) {
    ADD_FAILURE() << "expected bulwark's catalog under the required policy to refuse " << what
                  << " with " << catalog::CatalogErrorReason(reason) << ", it accepted it";
    return;
  }
  const std::string message(registered.status().message());
  EXPECT_EQ(catalog::CatalogErrorOf(registered.status()), reason)
      << what << ": expected " << catalog::CatalogErrorReason(reason) << ", got "
      << registered.status();
  if (!signature_reason.empty()) {
    EXPECT_TRUE(absl::StrContains(message, signature_reason))
        << what << ": expected the refusal to name " << signature_reason << ", got "
        << registered.status();
  }
  for (const char* key : {"release.pub", "stranger.pub"}) {
    const std::string pub = ReadOrEmpty(absl::StrCat(dir, "/", key));
    const size_t space = pub.find(' ');
    if (space == std::string::npos) continue;
    const std::string base64 = pub.substr(space + 1, 40);
    EXPECT_FALSE(absl::StrContains(message, base64))
        << what << ": the refusal prints key material of " << key;
  }
}

CONFORMANCE_TEST(Security, RunsSignedFromSealedCopy, Must,
                 "conformance.md \"The security profile\"",
                 "Signed with ssh-keygen and registered in bulwark's catalog under the required "
                 "signature policy (which refuses it unsigned, signed by an unknown key and signed "
                 "over other bytes), a plugin MUST start and serve when executed from the sealed "
                 "memfd copy that was verified, where /proc/self/exe is not a path on disk.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  ScratchDir scratch;
  ASSERT_FALSE(scratch.path().empty()) << "could not create a scratch directory";
  char* real = ::realpath(scratch.path().c_str(), nullptr);
  ASSERT_NE(real, nullptr) << "realpath " << scratch.path() << ": " << std::strerror(errno);
  const std::string dir = real;
  std::free(real);
  if (ShellIn(dir, "command -v ssh-keygen >/dev/null") != 0) {
    GTEST_SKIP() << "needs ssh-keygen on PATH (Debian package openssh-client) to sign the plugin";
  }

  // The plugin directory holds a copy: the catalog pins these bytes, not the build output.
  const std::string plugins = absl::StrCat(dir, "/plugins");
  const std::string artifact = absl::StrCat(plugins, "/", kCommand);
  std::string bytes;
  ASSERT_TRUE(ReadWholeFile(Config().plugin_path, &bytes))
      << "cannot read the plugin " << Config().plugin_path;
  ASSERT_EQ(::mkdir(plugins.c_str(), 0755), 0)
      << "mkdir " << plugins << ": " << std::strerror(errno);
  {
    std::ofstream out(artifact, std::ios::binary);
    out << bytes;
    ASSERT_TRUE(out.good()) << "cannot write " << artifact;
  }
  ASSERT_EQ(::chmod(artifact.c_str(), 0755), 0);

  // A release key on the allowed list (for bulwark's namespace only) and a stranger's key.
  ASSERT_EQ(
      ShellIn(dir, absl::StrCat("ssh-keygen -q -N '' -t ed25519 -C release -f release >/dev/null;"
                                " ssh-keygen -q -N '' -t ed25519 -C stranger -f stranger "
                                ">/dev/null; printf '%s namespaces=\"%s\" %s\\n' ",
                                kPrincipal, " ", catalog::kPluginSignatureNamespace,
                                " \"$(cut -d' ' -f1,2 release.pub)\" > allowed_signers;"
                                " printf 'not the plugin under test\\n' > other")),
      0)
      << "ssh-keygen could not make the keys";
  const std::string relative = absl::StrCat("plugins/", kCommand);
  const std::string good = Sign(dir, "release", relative);
  const std::string stranger = Sign(dir, "stranger", relative);
  const std::string other_bytes = Sign(dir, "release", "other");
  ASSERT_FALSE(good.empty() || stranger.empty() || other_bytes.empty())
      << "ssh-keygen -Y sign failed";

  PosixClock clock;
  PosixFileSystem fs;  // The production file system: exec through a sealed memfd copy.
  InMemoryStorage storage;
  catalog::CatalogOptions options;
  options.plugin_directory = plugins;
  options.signature_policy = catalog::SignaturePolicy::kRequired;
  options.allowed_signers_file = absl::StrCat(dir, "/allowed_signers");
  options.clock = &clock;
  absl::StatusOr<std::unique_ptr<catalog::Catalog>> opened =
      catalog::Catalog::Open(storage, fs, std::move(options));
  ASSERT_TRUE(opened.ok()) << "opening bulwark's catalog: " << opened.status();
  catalog::Catalog& cat = **opened;

  catalog::RegisterRequest request;
  request.type = CatalogType();
  request.name = "conformance-signed";
  request.command = std::string(kCommand);
  request.args = Config().plugin_args;
  request.sha256 = crypto::HexEncode(crypto::Sha256::Hash(bytes));
  auto register_with = [&](const std::string& signature) {
    catalog::RegisterRequest r = request;
    r.signature = signature;
    return cat.Register(r);
  };
  ExpectRefused(register_with(""), catalog::CatalogError::kSignatureRequired, "",
                "the unsigned plugin", dir);
  ExpectRefused(register_with(stranger), catalog::CatalogError::kSignatureRefused,
                crypto::SignatureRefusalName(crypto::SignatureRefusal::kUnknownSigner),
                "the plugin signed by a key not on the allowed list", dir);
  ExpectRefused(register_with(other_bytes), catalog::CatalogError::kSignatureRefused,
                crypto::SignatureRefusalName(crypto::SignatureRefusal::kBadSignature),
                "the plugin with a signature over other bytes", dir);
  if (HasFailure()) return;

  absl::StatusOr<catalog::CatalogEntryView> accepted = register_with(good);
  ASSERT_TRUE(accepted.ok()) << "registering the correctly signed plugin: " << accepted.status();
  EXPECT_EQ(accepted->signer_principal, kPrincipal);
  absl::StatusOr<catalog::LaunchSpec> spec = cat.GetForLaunch(request.type, request.name);
  ASSERT_TRUE(spec.ok()) << "verifying the signed plugin for launch: " << spec.status();
  auto* executable = dynamic_cast<PosixExecutableFile*>(spec->executable.get());
  ASSERT_NE(executable, nullptr) << "the catalog's executable is not a POSIX file";
  absl::StatusOr<int> exec_fd = executable->ExecFd();
  ASSERT_TRUE(exec_fd.ok()) << "the sealed memfd copy: " << exec_fd.status();

  LaunchOptions launch;
  launch.executable_fd = *exec_fd;
  absl::StatusOr<std::unique_ptr<PluginUnderTest>> plugin = PluginUnderTest::Start(launch);
  const std::string exe_name =
      absl::StrCat("/memfd:", PosixExecutableFile::MemfdName(artifact), " (deleted)");
  if (!CheckOk(plugin.status(), absl::StrCat("start the plugin from the sealed memfd copy (its "
                                             "/proc/self/exe reads \"",
                                             exe_name, "\")"))) {
    return;
  }
  // The harness really executed the copy: otherwise this check would prove nothing.
  char link[4096];
  const ssize_t n =
      ::readlink(absl::StrCat("/proc/", (*plugin)->pid(), "/exe").c_str(), link, sizeof(link) - 1);
  if (n > 0) {
    EXPECT_EQ(std::string(link, static_cast<size_t>(n)), exe_name)
        << "the suite did not execute the sealed copy";
  }
  auto health = (*plugin)->HealthCheck();
  if (health.status().code() == absl::StatusCode::kDeadlineExceeded) {
    ReportTimeout("grpc.health.v1.Health/Check of the plugin run from the sealed copy");
    return;
  }
  EXPECT_TRUE(health.ok() && *health == grpc::health::v1::HealthCheckResponse::SERVING)
      << "run from the sealed memfd copy: expected health SERVING, got "
      << (health.ok() ? absl::StrCat("status ", *health) : health.status().ToString());
}

}  // namespace
}  // namespace bulwark::conformance
