// What signed plugins and the immutable launch cost per launch:
//   - verifying an Ed25519 SSHSIG over a digest (the goal: <= 0.2 ms), and the whole check a
//     launch makes (read nothing, parse the allowed-signers text, verify);
//   - SHA-512 of the kv plugin (the extra digest a launch computes for a sha512 signature);
//   - launch to first call of the kv plugin with the sealed memfd copy and with the original
//     descriptor, side by side in one run, in interleaved rounds (the goal: memfd adds <= 10%).
//
//   bazel run -c opt //benchmarks:signed_launch_benchmark
// (the kv plugin is found at examples/kv/kv_plugin in the runfiles, or at $BULWARK_KV_PLUGIN).
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "base/crypto/sha256.h"
#include "base/crypto/sshsig.h"
#include "base/crypto/sshsig_testing.h"
#include "base/env/posix/posix_env.h"
#include "base/env/posix/posix_file_system.h"
#include "base/status/check.h"
#include "base/status/status_macros.h"
#include "benchmark/benchmark.h"
#include "core/catalog/artifact.h"
#include "core/catalog/signature.h"
#include "core/rpc/grpc_transport.h"
#include "core/rpc/plugin_client.h"

namespace bulwark::bench {
namespace {

// Made with ssh-keygen -Y sign -n bulwark-plugin over kMessage (as in the signature fuzzer).
constexpr absl::string_view kMessage = crypto::testing::kExampleMessage;
constexpr absl::string_view kSignature = crypto::testing::kExampleSignature;
const std::string kAllowed =
    absl::StrCat("# ops team\nalice@example.com ", crypto::testing::kExampleKey, "\n");

const absl::Time kNow = absl::FromCivil(absl::CivilDay(2026, 6, 1), absl::UTCTimeZone());

void BM_VerifyEd25519OverDigest(benchmark::State& state) {
  const crypto::SshSignature sig = crypto::ParseArmoredSshSignature(kSignature).value();
  const std::string digest = crypto::SshMessageHasher::Hash(sig.hash_algorithm, kMessage);
  for (auto _ : state) {
    absl::Status s =
        crypto::VerifySshSignatureDigest(sig, catalog::kPluginSignatureNamespace, digest);
    CHECK(s.ok()) << s;
  }
}
BENCHMARK(BM_VerifyEd25519OverDigest);

// Everything a launch does for the signature except reading the file and hashing the artifact:
// parse the stored signature, parse the allowed-signers text, verify, match the signer.
void BM_LaunchSignatureCheck(benchmark::State& state) {
  const crypto::SshSignature first = crypto::ParseArmoredSshSignature(kSignature).value();
  const std::string digest = crypto::SshMessageHasher::Hash(first.hash_algorithm, kMessage);
  for (auto _ : state) {
    const crypto::SshSignature sig = crypto::ParseArmoredSshSignature(kSignature).value();
    const crypto::AllowedSigners allowed = crypto::ParseAllowedSigners(kAllowed).value();
    absl::StatusOr<crypto::VerifiedSigner> v =
        crypto::VerifySshSignature(allowed, sig, catalog::kPluginSignatureNamespace, digest, kNow);
    CHECK(v.ok()) << v.status();
  }
}
BENCHMARK(BM_LaunchSignatureCheck);

std::string KvPluginPath() {
  const char* env = getenv("BULWARK_KV_PLUGIN");
  return env != nullptr ? env : "examples/kv/kv_plugin";
}

void BM_Sha512OfKvPlugin(benchmark::State& state) {
  std::ifstream in(KvPluginPath(), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  CHECK(!bytes.empty()) << "cannot read " << KvPluginPath();
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        crypto::SshMessageHasher::Hash(crypto::SshHashAlgorithm::kSha512, bytes));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
}
BENCHMARK(BM_Sha512OfKvPlugin);

// The kv plugin copied into a private plugin directory, launched through the catalog's artifact
// check (open, SHA-256 over ReadAt) and PluginClient, as a launch under the lifecycle does.
class KvLauncher {
 public:
  KvLauncher() {
    char plugin_tmpl[] = "/tmp/bwslpXXXXXX";
    char runtime_tmpl[] = "/tmp/bwslrXXXXXX";
    CHECK(mkdtemp(plugin_tmpl) != nullptr && mkdtemp(runtime_tmpl) != nullptr);
    dir_ = plugin_tmpl;
    runtime_dir_ = runtime_tmpl;
    const std::string dest = absl::StrCat(dir_, "/kv");
    {
      std::ifstream in(KvPluginPath(), std::ios::binary);
      std::ofstream out(dest, std::ios::binary);
      out << in.rdbuf();
      CHECK(in && out) << "cannot copy " << KvPluginPath();
    }
    CHECK(chmod(dest.c_str(), 0755) == 0);
    policy_.plugin_directory = dir_;
    policy_.artifact_bytes_max = uint64_t{1} << 30;
    auto exe = posix_.fs().OpenForExec(dest);
    CHECK_OK(exe.status());
    sha256_hex_ = catalog::HashFile(**exe, dest, policy_.artifact_bytes_max).value();
  }
  ~KvLauncher() {
    unlink(absl::StrCat(dir_, "/kv").c_str());
    rmdir(dir_.c_str());
    rmdir(runtime_dir_.c_str());
  }

  // Launches until the plugin answers its health check, and stops it; returns the time to ready.
  absl::StatusOr<double> LaunchSeconds(FileSystem& fs) {
    const auto start = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(catalog::OpenedArtifact artifact,
                     catalog::OpenArtifact(fs, policy_, "kv", sha256_hex_));
    rpc::PluginLaunchOptions o;
    o.plugin_name = "kv";
    o.executable = artifact.file.get();
    o.argv = {artifact.path};
    protocol::VaultPluginEnv vault;
    vault.vault_version = "1.16.0";
    o.vault = vault;
    o.automtls = true;
    o.runtime_dir = runtime_dir_;
    std::optional<absl::Status> started;
    std::unique_ptr<rpc::PluginClient> client = rpc::PluginClient::Start(
        posix_.env(), transport_, std::move(o), [&](absl::Status s) { started = s; });
    if (!posix_.loop().RunUntil([&] { return started.has_value(); }, absl::Seconds(30))) {
      return absl::DeadlineExceededError("launch did not finish");
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    RETURN_IF_ERROR(*started);
    bool stopped = false;
    client->Shutdown(absl::Seconds(2), [&] { stopped = true; });
    posix_.loop().RunUntil([&] { return stopped; }, absl::Seconds(10));
    return seconds;
  }

  PosixEnv& posix() { return posix_; }

 private:
  PosixEnv posix_;
  rpc::GrpcPluginTransport transport_{posix_.loop()};
  std::string dir_, runtime_dir_, sha256_hex_;
  catalog::ArtifactPolicy policy_;
};

KvLauncher& Launcher() {
  static KvLauncher* launcher = new KvLauncher();
  return *launcher;
}

double CpuSeconds(int who) {
  rusage usage{};
  getrusage(who, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void LaunchToFirstCall(benchmark::State& state, ExecSnapshot mode) {
  PosixFileSystem original(ExecSnapshot::kOriginal);
  FileSystem& fs = mode == ExecSnapshot::kSealedMemfd
                       ? static_cast<FileSystem&>(Launcher().posix().fs())
                       : original;
  const double self_before = CpuSeconds(RUSAGE_SELF);
  const double children_before = CpuSeconds(RUSAGE_CHILDREN);
  for (auto _ : state) {
    absl::StatusOr<double> s = Launcher().LaunchSeconds(fs);
    CHECK(s.ok()) << s.status();
    state.SetIterationTime(*s);
  }
  // CPU per launch, every thread: the host's (copy, hash, spawn, TLS, gRPC) and the plugin's
  // (counted when it is reaped after its Shutdown). Under load these move far less than wall time.
  const double n = static_cast<double>(state.iterations());
  state.counters["host_cpu_ms"] = (CpuSeconds(RUSAGE_SELF) - self_before) * 1e3 / n;
  state.counters["plugin_cpu_ms"] = (CpuSeconds(RUSAGE_CHILDREN) - children_before) * 1e3 / n;
}

// Three interleaved rounds, alternating which mode goes first, so that a change of load on the
// shared machine does not fall on one side only.
void RegisterLaunchRounds() {
  for (int round = 1; round <= 3; ++round) {
    for (int i = 0; i < 2; ++i) {
      const bool memfd = (round + i) % 2 == 1;
      benchmark::RegisterBenchmark(
          absl::StrCat("launch_to_first_call/", memfd ? "sealed_memfd" : "original_fd", "/round",
                       round)
              .c_str(),
          [memfd](benchmark::State& state) {
            LaunchToFirstCall(state, memfd ? ExecSnapshot::kSealedMemfd : ExecSnapshot::kOriginal);
          })
          ->UseManualTime()
          ->Iterations(20)
          ->Unit(benchmark::kMillisecond);
    }
  }
}

const int kRegistered = (RegisterLaunchRounds(), 0);

}  // namespace
}  // namespace bulwark::bench
