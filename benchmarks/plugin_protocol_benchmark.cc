// P1 side by side, in one run on one machine: bulwark's host (PluginClient + GrpcPluginTransport
// on a PosixEventLoop) driving the C++ SDK kv plugin, and go-plugin v1.0.1's host driving the Go
// plugin (examples/goplugin's `-bench`, run as a subprocess). Prints Google Benchmark rows for
// both pairs, then a comparison table (medians over --rounds) against the issue's goals.
//
//   bazel run -c opt //benchmarks:plugin_protocol_benchmark [-- --rounds=3 --samples=2000 ...]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/env/posix/posix_env.h"
#include "base/status/status_macros.h"
#include "base/storage/in_memory_storage.h"
#include "benchmark/benchmark.h"
#include "core/catalog/artifact.h"
#include "core/lifecycle/host_services.h"
#include "core/rpc/grpc_transport.h"
#include "core/rpc/plugin_client.h"
#include "proto/vault/backend.pb.h"

namespace bulwark::bench {
namespace {

// --- Options -------------------------------------------------------------------------------

// Named bounds for the command-line knobs (a typo must not run for an hour).
constexpr int kRoundsMax = 9;
constexpr int kLaunchesMax = 100;
constexpr int kSamplesMax = 100000;
constexpr int kDurationSecondsMax = 60;
// How long the plugin sits idle before the "after a few calls, then idle" RSS reading.
constexpr absl::Duration kIdleSettle = absl::Seconds(1);
// Calls made before that reading ("a few calls").
constexpr int kFewCalls = 20;
// Deadline of one benchmark call and of one launch.
constexpr absl::Duration kCallTimeout = absl::Seconds(10);
constexpr absl::Duration kLaunchTimeout = absl::Seconds(30);
// Largest JSON report accepted from the Go host.
constexpr size_t kGoReportBytesMax = 1 << 20;

struct Options {
  std::string kv_plugin;  // The C++ SDK plugin artifact.
  std::string go_host;    // examples/goplugin:host.
  std::string go_plugin;  // examples/goplugin:plugin.
  int rounds = 3;
  int launches = 10;
  int warmup = 200;
  int samples = 2000;
  int duration_s = 3;
  // Extra environment for every plugin bulwark's host launches here (--plugin_env=K=V,
  // repeatable), for experiments such as MALLOC_ARENA_MAX or GRPC_POLL_STRATEGY;
  // docs/performance.md records what they changed.
  std::vector<std::string> plugin_env;
};

Options g_options;

// The request data of the Go host's -bench: a JSON document of exactly n bytes.
std::string PayloadData(size_t n) {
  constexpr absl::string_view kEmpty = R"({"value":""})";
  return absl::StrCat(R"({"value":")", std::string(n - kEmpty.size(), 'x'), R"("})");
}

// --- Results -------------------------------------------------------------------------------

constexpr char kBulwark[] = "bulwark";
constexpr char kGo[] = "go-plugin";

// results[metric][pair] = one value per round.
std::map<std::string, std::map<std::string, std::vector<double>>> g_results;

void Record(const std::string& pair, const std::string& metric, double value) {
  g_results[metric][pair].push_back(value);
}

double Median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Summary {
  double min_us = 0, p50_us = 0, p99_us = 0, max_us = 0;
};

// Same percentile rule as the Go host (sorted[ceil(p*n)-1]).
Summary Summarize(std::vector<double> us) {
  Summary s;
  if (us.empty()) return s;
  std::sort(us.begin(), us.end());
  auto at = [&](double p) {
    int64_t i = static_cast<int64_t>(std::ceil(p * static_cast<double>(us.size()))) - 1;
    return us[static_cast<size_t>(std::max<int64_t>(i, 0))];
  };
  s.min_us = us.front();
  s.p50_us = at(0.5);
  s.p99_us = at(0.99);
  s.max_us = us.back();
  return s;
}

double MicrosSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
      .count();
}

// One "Key:  N kB" line of a /proc file, in KiB.
absl::StatusOr<int64_t> ProcKiB(const std::string& file, absl::string_view key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, key) && line.size() > key.size() && line[key.size()] == ':') {
      std::istringstream fields(line.substr(key.size() + 1));
      int64_t kib = 0;
      if (fields >> kib) return kib;
    }
  }
  return absl::NotFoundError(absl::StrCat("no ", key, " in ", file));
}

// Where a plugin's resident memory is: private anonymous pages, file pages (its own binary and
// shared libraries, the latter shared with the host and other plugins), and the proportional
// set size (shared pages divided among the processes mapping them).
absl::Status RecordRssComposition(benchmark::State& state, const std::string& pair, int64_t pid) {
  const std::string status = absl::StrCat("/proc/", pid, "/status");
  ASSIGN_OR_RETURN(int64_t rss, ProcKiB(status, "VmRSS"));
  ASSIGN_OR_RETURN(int64_t anon, ProcKiB(status, "RssAnon"));
  ASSIGN_OR_RETURN(int64_t file, ProcKiB(status, "RssFile"));
  ASSIGN_OR_RETURN(int64_t pss, ProcKiB(absl::StrCat("/proc/", pid, "/smaps_rollup"), "Pss"));
  state.counters["rss_KiB"] = static_cast<double>(rss);
  state.counters["rss_anon_KiB"] = static_cast<double>(anon);
  state.counters["rss_file_KiB"] = static_cast<double>(file);
  state.counters["pss_KiB"] = static_cast<double>(pss);
  Record(pair, "started_rss_kib", static_cast<double>(rss));
  Record(pair, "started_rss_anon_kib", static_cast<double>(anon));
  Record(pair, "started_rss_file_kib", static_cast<double>(file));
  Record(pair, "started_pss_kib", static_cast<double>(pss));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> VmRssKiB(int64_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "VmRSS:")) {
      std::istringstream fields(line.substr(6));
      int64_t kib = 0;
      if (fields >> kib) return kib;
    }
  }
  return absl::NotFoundError(absl::StrCat("no VmRSS in /proc/", pid, "/status"));
}

// CPU time (user + system) of process `pid` so far, in microseconds; 0 if unreadable.
double ProcessCpuMicros(int64_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) * 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// --- The bulwark pair ----------------------------------------------------------------------

// The production host path: the catalog's artifact check (SHA-256 of the opened file), then
// PluginClient over GrpcPluginTransport on the PosixEventLoop, host storage served over the
// broker by lifecycle::StorageHostServices.
class BulwarkHost {
 public:
  static absl::StatusOr<std::unique_ptr<BulwarkHost>> Create(const std::string& plugin_path) {
    auto host = std::unique_ptr<BulwarkHost>(new BulwarkHost());
    RETURN_IF_ERROR(host->Init(plugin_path));
    return host;
  }

  ~BulwarkHost() {
    client_.reset();
    RemoveDir(runtime_dir_);
    if (!plugin_dir_.empty()) {
      ::unlink(absl::StrCat(plugin_dir_, "/", kArtifactName).c_str());
      ::rmdir(plugin_dir_.c_str());
    }
  }

  // Launches the plugin and waits for a ready connection (its health check answered). With
  // `verify_sha256` the artifact is opened and hashed as the catalog does before every launch.
  absl::Status Launch(bool verify_sha256) {
    std::unique_ptr<ExecutableFile> exe;
    std::string path = absl::StrCat(plugin_dir_, "/", kArtifactName);
    if (verify_sha256) {
      ASSIGN_OR_RETURN(catalog::OpenedArtifact artifact,
                       catalog::OpenArtifact(posix_.fs(), policy_, kArtifactName, sha256_hex_));
      exe = std::move(artifact.file);
      path = artifact.path;
    } else {
      ASSIGN_OR_RETURN(exe, posix_.fs().OpenForExec(path));
    }
    rpc::PluginLaunchOptions o;
    o.plugin_name = "kv";
    o.executable = exe.get();
    o.argv = {path};
    protocol::VaultPluginEnv vault;
    vault.vault_version = "1.16.0";
    o.vault = vault;
    o.automtls = true;
    o.extra_env = g_options.plugin_env;
    o.runtime_dir = runtime_dir_;
    std::optional<absl::Status> started;
    client_ = rpc::PluginClient::Start(posix_.env(), transport_, std::move(o),
                                       [&](absl::Status s) { started = s; });
    if (!posix_.loop().RunUntil([&] { return started.has_value(); }, kLaunchTimeout)) {
      return absl::DeadlineExceededError("launch did not finish");
    }
    return *started;
  }

  // Offers storage over the broker, then Setup and Initialize for one multiplexed instance.
  absl::Status SetupInstance() {
    storage_ = std::make_unique<InMemoryStorage>();
    services_ = std::make_unique<lifecycle::StorageHostServices>(*storage_, "logical/bench/",
                                                                 lifecycle::SystemViewInfo{});
    ASSIGN_OR_RETURN(uint32_t broker_id, client_->connection().OfferHostServices(services_.get()));
    pb::SetupArgs setup;
    setup.set_broker_id(broker_id);
    setup.set_backenduuid("0b1a2c3d-0000-4000-8000-00000000bench");
    (*setup.mutable_config())["plugin_name"] = "bench";
    (*setup.mutable_config())["plugin_type"] = "secret";
    ASSIGN_OR_RETURN(std::string reply, CallSync("/pb.Backend/Setup", setup.SerializeAsString()));
    pb::SetupReply setup_reply;
    if (!setup_reply.ParseFromString(reply) || !setup_reply.err().empty()) {
      return absl::InternalError(absl::StrCat("Setup failed: ", setup_reply.err()));
    }
    return CallSync("/pb.Backend/Initialize", pb::InitializeArgs().SerializeAsString()).status();
  }

  // Shuts the plugin down the go-plugin way (GRPCController.Shutdown, grace, kill).
  void Stop() {
    if (client_ == nullptr) return;
    bool stopped = false;
    client_->Shutdown(absl::Seconds(2), [&] { stopped = true; });
    posix_.loop().RunUntil([&] { return stopped; }, absl::Seconds(10));
    client_.reset();
    services_.reset();
    storage_.reset();
  }

  int64_t pid() const { return client_ != nullptr ? client_->pid() : 0; }

  // Launches and sets up an instance unless one is running (a --benchmark_filter may have left
  // out the benchmark that normally does it).
  absl::Status EnsureInstance() {
    if (client_ != nullptr && services_ != nullptr) return absl::OkStatus();
    Stop();
    RETURN_IF_ERROR(Launch(true));
    return SetupInstance();
  }

  absl::StatusOr<std::string> CallSync(absl::string_view method, std::string request) {
    std::optional<absl::StatusOr<std::string>> result;
    client_->connection().Call(method, std::move(request), call_options_,
                               [&](absl::StatusOr<std::string> r) { result = std::move(r); });
    if (!posix_.loop().RunUntil([&] { return result.has_value(); }, kCallTimeout * 2)) {
      return absl::DeadlineExceededError(absl::StrCat(method, " did not complete"));
    }
    return *std::move(result);
  }

  // One HandleRequest as the Go host sends it (a fresh request id each time).
  std::string RequestBytes(absl::string_view op, absl::string_view path, absl::string_view data) {
    pb::HandleRequestArgs args;
    pb::Request* r = args.mutable_request();
    r->set_id(absl::StrFormat("%08x-0000-4000-8000-%012x", static_cast<uint32_t>(next_id_ >> 32),
                              next_id_ & 0xffffffffffffULL));
    ++next_id_;
    r->set_operation(std::string(op));
    r->set_path(std::string(path));
    r->set_data(std::string(data));
    return args.SerializeAsString();
  }

  // Checks a HandleRequest reply: no transport error, no logical error, and for reads and echo
  // at least `min_data` bytes of response data.
  static absl::Status CheckReply(const absl::StatusOr<std::string>& bytes, size_t min_data) {
    if (!bytes.ok()) return bytes.status();
    pb::HandleRequestReply reply;
    if (!reply.ParseFromString(*bytes)) return absl::InternalError("unparsable reply");
    if (reply.has_err()) return absl::InternalError(reply.err().err_msg());
    if (reply.response().data().size() < min_data) {
      return absl::InternalError("response shorter than the payload");
    }
    return absl::OkStatus();
  }

  // Times `samples` sequential calls after `warmup` untimed ones, in microseconds.
  absl::StatusOr<std::vector<double>> TimeCalls(absl::string_view op, absl::string_view path,
                                                const std::string& data, size_t min_data,
                                                int warmup, int samples) {
    std::vector<double> out;
    out.reserve(static_cast<size_t>(samples));
    for (int i = 0; i < warmup + samples; ++i) {
      const auto start = std::chrono::steady_clock::now();
      absl::StatusOr<std::string> bytes =
          CallSync("/pb.Backend/HandleRequest", RequestBytes(op, path, data));
      const double us = MicrosSince(start);
      RETURN_IF_ERROR(CheckReply(bytes, min_data));
      if (i >= warmup) out.push_back(us);
    }
    return out;
  }

  // `callers` calls kept in flight for `duration` on the host's single event loop (each
  // completion issues the next one); returns calls per second.
  struct ThroughputResult {
    double calls_per_s = 0;
    double plugin_cpu_us_per_call = 0;  // The plugin process, all threads.
    double host_cpu_us_per_call = 0;    // This process, all threads (loop and gRPC).
  };
  absl::StatusOr<ThroughputResult> Throughput(int callers, absl::Duration duration,
                                              const std::string& data) {
    int64_t done = 0;
    int outstanding = 0;
    bool stopping = false;
    absl::Status error;
    std::function<void()> issue = [&] {
      ++outstanding;
      client_->connection().Call("/pb.Backend/HandleRequest", RequestBytes("update", "echo", data),
                                 call_options_, [&](absl::StatusOr<std::string> bytes) {
                                   --outstanding;
                                   absl::Status s = CheckReply(bytes, data.size());
                                   if (!s.ok()) {
                                     if (error.ok()) error = s;
                                     stopping = true;
                                     return;
                                   }
                                   ++done;
                                   if (!stopping) issue();
                                 });
    };
    const double plugin_cpu0 = ProcessCpuMicros(pid());
    const double host_cpu0 = ProcessCpuMicros(::getpid());
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < callers; ++i) issue();
    posix_.loop().RunUntil([&] { return stopping; }, duration);
    stopping = true;
    const int64_t counted = done;
    const double seconds = MicrosSince(start) / 1e6;
    ThroughputResult result;
    result.plugin_cpu_us_per_call = (ProcessCpuMicros(pid()) - plugin_cpu0) /
                                    static_cast<double>(std::max<int64_t>(counted, 1));
    result.host_cpu_us_per_call = (ProcessCpuMicros(::getpid()) - host_cpu0) /
                                  static_cast<double>(std::max<int64_t>(counted, 1));
    posix_.loop().RunUntil([&] { return outstanding == 0; }, kCallTimeout * 2);
    RETURN_IF_ERROR(error);
    result.calls_per_s = static_cast<double>(counted) / seconds;
    return result;
  }

  // Lets the plugin sit idle (the host's loop keeps running, as in production).
  void Idle(absl::Duration d) {
    posix_.loop().RunUntil([] { return false; }, d);
  }

 private:
  static constexpr char kArtifactName[] = "kv_plugin";

  BulwarkHost() {
    call_options_.multiplex_id = "bench00001";
    call_options_.timeout = kCallTimeout;
  }

  // Copies the artifact into a private plugin directory (runfiles are symlinks, which the
  // catalog refuses) and pins its SHA-256, as registering it in the catalog would.
  absl::Status Init(const std::string& plugin_path) {
    char plugin_tmpl[] = "/tmp/bwbpXXXXXX";
    char runtime_tmpl[] = "/tmp/bwbrXXXXXX";
    if (::mkdtemp(plugin_tmpl) == nullptr || ::mkdtemp(runtime_tmpl) == nullptr) {
      return absl::InternalError("mkdtemp failed");
    }
    plugin_dir_ = plugin_tmpl;
    runtime_dir_ = runtime_tmpl;
    const std::string dest = absl::StrCat(plugin_dir_, "/", kArtifactName);
    {
      std::ifstream in(plugin_path, std::ios::binary);
      std::ofstream out(dest, std::ios::binary);
      out << in.rdbuf();
      if (!in || !out) return absl::NotFoundError(absl::StrCat("cannot copy ", plugin_path));
    }
    if (::chmod(dest.c_str(), 0755) != 0) return absl::InternalError("chmod failed");
    policy_.plugin_directory = plugin_dir_;
    policy_.artifact_bytes_max = uint64_t{1} << 30;
    ASSIGN_OR_RETURN(std::unique_ptr<ExecutableFile> exe, posix_.fs().OpenForExec(dest));
    ASSIGN_OR_RETURN(sha256_hex_, catalog::HashFile(*exe, dest, policy_.artifact_bytes_max));
    return absl::OkStatus();
  }

  static void RemoveDir(const std::string& dir) {
    if (!dir.empty()) ::rmdir(dir.c_str());  // PluginClient removed each launch's directory.
  }

  PosixEnv posix_;
  rpc::GrpcPluginTransport transport_{posix_.loop()};
  CallOptions call_options_;
  std::string plugin_dir_;
  std::string runtime_dir_;
  catalog::ArtifactPolicy policy_;
  std::string sha256_hex_;
  uint64_t next_id_ = 1;
  std::unique_ptr<InMemoryStorage> storage_;
  std::unique_ptr<lifecycle::StorageHostServices> services_;
  std::unique_ptr<rpc::PluginClient> client_;
};

// Made by the first bulwark benchmark, kept for the whole run (one event loop, one transport).
std::unique_ptr<BulwarkHost> g_bulwark;

absl::Status EnsureBulwarkHost() {
  if (g_bulwark != nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(g_bulwark, BulwarkHost::Create(g_options.kv_plugin));
  return absl::OkStatus();
}

// Each bulwark benchmark body; an error skips the benchmark with the message.
using Body = std::function<absl::Status(benchmark::State&)>;

void RunOnce(benchmark::State& state, const Body& body) {
  for (auto _ : state) {
    absl::Status s = EnsureBulwarkHost();
    if (s.ok()) s = body(state);
    if (!s.ok()) {
      state.SkipWithError(std::string(s.ToString()).c_str());
      return;
    }
  }
}

void SetLatency(benchmark::State& state, const std::string& pair, const std::string& metric,
                const Summary& s) {
  state.SetIterationTime(s.p50_us / 1e6);
  state.counters["p50_us"] = s.p50_us;
  state.counters["p99_us"] = s.p99_us;
  state.counters["min_us"] = s.min_us;
  state.counters["max_us"] = s.max_us;
  Record(pair, metric + "_p50_us", s.p50_us);
  Record(pair, metric + "_p99_us", s.p99_us);
}

std::string MetricName(absl::string_view op, int payload) {
  return absl::StrCat(op,
                      payload >= 1024 ? absl::StrCat(payload / 1024, "k") : absl::StrCat(payload));
}

void RegisterBulwark(int round) {
  const std::string suffix = absl::StrCat("/round:", round);
  auto reg = [&](const std::string& name, Body body) {
    benchmark::RegisterBenchmark(absl::StrCat("bulwark/", name, suffix).c_str(),
                                 [body](benchmark::State& state) { RunOnce(state, body); })
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  };
  // Both plugins under the same (bulwark) host, started and idle, no instance set up (go-plugin
  // v1.0.1 plugins cannot dial the broker back under AutoMTLS): where the memory is.
  for (const bool go : {false, true}) {
    reg(go ? "rss_composition_started_idle/go_plugin" : "rss_composition_started_idle/kv_plugin",
        [go](benchmark::State& state) -> absl::Status {
          BulwarkHost* host = g_bulwark.get();
          std::unique_ptr<BulwarkHost> go_host;
          if (go) {
            ASSIGN_OR_RETURN(go_host, BulwarkHost::Create(g_options.go_plugin));
            host = go_host.get();
          }
          RETURN_IF_ERROR(host->Launch(true));
          host->Idle(kIdleSettle);
          state.SetIterationTime(1e-6);
          absl::Status s = RecordRssComposition(state, go ? kGo : kBulwark, host->pid());
          host->Stop();
          return s;
        });
  }
  for (bool hash : {true, false}) {
    reg(hash ? "launch_to_first_call" : "launch_to_first_call_no_sha256",
        [hash](benchmark::State& state) -> absl::Status {
          std::vector<double> us;
          for (int i = 0; i < g_options.launches; ++i) {
            const auto start = std::chrono::steady_clock::now();
            absl::Status s = g_bulwark->Launch(hash);
            us.push_back(MicrosSince(start));
            g_bulwark->Stop();
            RETURN_IF_ERROR(s);
          }
          const Summary sum = Summarize(us);
          state.SetIterationTime(sum.p50_us / 1e6);
          state.counters["p50_ms"] = sum.p50_us / 1e3;
          state.counters["p99_ms"] = sum.p99_us / 1e3;
          state.counters["min_ms"] = sum.min_us / 1e3;
          Record(kBulwark, hash ? "launch_ms" : "launch_no_sha256_ms", sum.p50_us / 1e3);
          return absl::OkStatus();
        });
  }
  reg("idle_rss_after_initialize", [](benchmark::State& state) -> absl::Status {
    RETURN_IF_ERROR(g_bulwark->Launch(true));
    RETURN_IF_ERROR(g_bulwark->SetupInstance());
    ASSIGN_OR_RETURN(int64_t kib, VmRssKiB(g_bulwark->pid()));
    state.SetIterationTime(1e-6);
    state.counters["rss_KiB"] = static_cast<double>(kib);
    Record(kBulwark, "idle_rss_kib", static_cast<double>(kib));
    // A few calls, then idle: what a mounted but quiet plugin holds.
    const std::string data = PayloadData(64);
    for (int i = 0; i < kFewCalls; ++i) {
      RETURN_IF_ERROR(BulwarkHost::CheckReply(
          g_bulwark->CallSync("/pb.Backend/HandleRequest",
                              g_bulwark->RequestBytes("update", "echo", data)),
          data.size()));
    }
    g_bulwark->Idle(kIdleSettle);
    ASSIGN_OR_RETURN(int64_t after, VmRssKiB(g_bulwark->pid()));
    state.counters["rss_after_few_calls_idle_KiB"] = static_cast<double>(after);
    Record(kBulwark, "idle_rss_after_calls_kib", static_cast<double>(after));
    return absl::OkStatus();
  });
  for (int payload : {64, 65536}) {
    for (const char* op : {"echo", "write", "read"}) {
      const std::string op_s = op;
      reg(absl::StrCat("HandleRequest/", op, "/", payload),
          [op_s, payload](benchmark::State& state) -> absl::Status {
            RETURN_IF_ERROR(g_bulwark->EnsureInstance());
            const std::string data = PayloadData(static_cast<size_t>(payload));
            const std::string key = absl::StrCat("bench/p", payload);
            std::vector<double> us;
            if (op_s == "echo") {
              ASSIGN_OR_RETURN(us, g_bulwark->TimeCalls("update", "echo", data, data.size(),
                                                        g_options.warmup, g_options.samples));
            } else if (op_s == "write") {
              ASSIGN_OR_RETURN(us, g_bulwark->TimeCalls("update", key, data, 0, g_options.warmup,
                                                        g_options.samples));
            } else {
              RETURN_IF_ERROR(BulwarkHost::CheckReply(
                  g_bulwark->CallSync("/pb.Backend/HandleRequest",
                                      g_bulwark->RequestBytes("update", key, data)),
                  0));
              ASSIGN_OR_RETURN(us, g_bulwark->TimeCalls("read", key, "", data.size(),
                                                        g_options.warmup, g_options.samples));
            }
            SetLatency(state, kBulwark, MetricName(op_s, payload), Summarize(us));
            return absl::OkStatus();
          });
    }
  }
  for (int callers : {1, 8}) {
    reg(absl::StrCat("throughput/echo/64/callers:", callers),
        [callers](benchmark::State& state) -> absl::Status {
          RETURN_IF_ERROR(g_bulwark->EnsureInstance());
          ASSIGN_OR_RETURN(
              BulwarkHost::ThroughputResult r,
              g_bulwark->Throughput(callers, absl::Seconds(g_options.duration_s), PayloadData(64)));
          const double rate = r.calls_per_s;
          state.SetIterationTime(1.0 / rate);
          state.counters["calls_per_s"] = rate;
          state.counters["plugin_cpu_us_per_call"] = r.plugin_cpu_us_per_call;
          state.counters["host_cpu_us_per_call"] = r.host_cpu_us_per_call;
          Record(kBulwark, absl::StrCat("plugin_cpu_us_per_call_", callers),
                 r.plugin_cpu_us_per_call);
          Record(kBulwark, absl::StrCat("host_cpu_us_per_call_", callers), r.host_cpu_us_per_call);
          Record(kBulwark, absl::StrCat("calls_per_s_", callers), rate);
          return absl::OkStatus();
        });
  }
  reg("rss_after_load", [](benchmark::State& state) -> absl::Status {
    RETURN_IF_ERROR(g_bulwark->EnsureInstance());
    ASSIGN_OR_RETURN(int64_t kib, VmRssKiB(g_bulwark->pid()));
    state.SetIterationTime(1e-6);
    state.counters["rss_KiB"] = static_cast<double>(kib);
    Record(kBulwark, "loaded_rss_kib", static_cast<double>(kib));
    g_bulwark->Stop();
    return absl::OkStatus();
  });
}

// --- The go-plugin pair --------------------------------------------------------------------

// Runs `command` through /bin/sh and returns its stdout (stderr passes through).
absl::StatusOr<std::string> RunCommand(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError("popen failed");
  std::string out;
  char buffer[8192];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    if (out.size() + n > kGoReportBytesMax) {
      ::pclose(pipe);
      return absl::ResourceExhaustedError("the Go host printed more than 1 MiB");
    }
    out.append(buffer, n);
  }
  const int status = ::pclose(pipe);
  if (status != 0) {
    return absl::InternalError(
        absl::StrCat("the Go host failed (wait status ", status, "); its stderr is above"));
  }
  return out;
}

// The Go host's -bench report, with sockets in a short private TMPDIR.
absl::StatusOr<nlohmann::json> RunGoBench(const std::string& extra_flags) {
  char tmpl[] = "/tmp/bwbgXXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  const std::string command =
      absl::StrCat("TMPDIR=", tmpl, " '", g_options.go_host, "' -plugin '", g_options.go_plugin,
                   "' -bench", " -bench-launches ", g_options.launches, " -bench-warmup ",
                   g_options.warmup, " -bench-samples ", g_options.samples, " -bench-duration ",
                   g_options.duration_s, "s ", extra_flags);
  absl::StatusOr<std::string> out = RunCommand(command);
  ::rmdir(tmpl);
  RETURN_IF_ERROR(out.status());
  nlohmann::json report = nlohmann::json::parse(*out, nullptr, /*allow_exceptions=*/false);
  if (!report.is_object()) return absl::InternalError("the Go host's report is not JSON");
  return report;
}

// The current round's Go reports (full; launch-only without the SHA-256 check).
nlohmann::json g_go_report;
nlohmann::json g_go_launch_no_sha;

void RegisterGo(int round) {
  const std::string suffix = absl::StrCat("/round:", round);
  auto reg = [&](const std::string& name, std::function<absl::Status(benchmark::State&)> body) {
    benchmark::RegisterBenchmark(absl::StrCat("goplugin/", name, suffix).c_str(),
                                 [body](benchmark::State& state) {
                                   for (auto _ : state) {
                                     absl::Status s = body(state);
                                     if (!s.ok()) {
                                       state.SkipWithError(std::string(s.ToString()).c_str());
                                       return;
                                     }
                                   }
                                 })
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  };
  // The subprocess itself: its wall time is the row's time.
  reg("host_bench_subprocess", [](benchmark::State& state) -> absl::Status {
    const auto start = std::chrono::steady_clock::now();
    g_go_report = nullptr;
    ASSIGN_OR_RETURN(g_go_report, RunGoBench(""));
    ASSIGN_OR_RETURN(g_go_launch_no_sha,
                     RunGoBench("-sha256-check=false -bench-samples 1 -bench-warmup 0 "
                                "-bench-duration 10ms -bench-payloads 64 -bench-callers 1"));
    state.SetIterationTime(MicrosSince(start) / 1e6);
    return absl::OkStatus();
  });
  auto need = [](const nlohmann::json& j) -> absl::Status {
    return j.is_object() ? absl::OkStatus()
                         : absl::FailedPreconditionError("the Go host's bench did not run");
  };
  for (bool hash : {true, false}) {
    reg(hash ? "launch_to_first_call" : "launch_to_first_call_no_sha256",
        [hash, need](benchmark::State& state) -> absl::Status {
          const nlohmann::json& report = hash ? g_go_report : g_go_launch_no_sha;
          RETURN_IF_ERROR(need(report));
          const nlohmann::json& l = report["launch_to_first_call"];
          const double p50 = l.value("p50_us", 0.0);
          state.SetIterationTime(p50 / 1e6);
          state.counters["p50_ms"] = p50 / 1e3;
          state.counters["p99_ms"] = l.value("p99_us", 0.0) / 1e3;
          state.counters["min_ms"] = l.value("min_us", 0.0) / 1e3;
          Record(kGo, hash ? "launch_ms" : "launch_no_sha256_ms", p50 / 1e3);
          return absl::OkStatus();
        });
  }
  reg("idle_rss_after_initialize", [need](benchmark::State& state) -> absl::Status {
    RETURN_IF_ERROR(need(g_go_report));
    const double kib = g_go_report.value("plugin_idle_rss_kib", 0.0);
    state.SetIterationTime(1e-6);
    state.counters["rss_KiB"] = kib;
    Record(kGo, "idle_rss_kib", kib);
    return absl::OkStatus();
  });
  for (int payload : {64, 65536}) {
    for (const char* op : {"echo", "write", "read"}) {
      const std::string op_s = op;
      reg(absl::StrCat("HandleRequest/", op, "/", payload),
          [op_s, payload, need](benchmark::State& state) -> absl::Status {
            RETURN_IF_ERROR(need(g_go_report));
            for (const nlohmann::json& l : g_go_report["latency"]) {
              if (l.value("op", "") == op_s && l.value("payload_bytes", 0) == payload) {
                Summary s;
                s.min_us = l.value("min_us", 0.0);
                s.p50_us = l.value("p50_us", 0.0);
                s.p99_us = l.value("p99_us", 0.0);
                s.max_us = l.value("max_us", 0.0);
                SetLatency(state, kGo, MetricName(op_s, payload), s);
                return absl::OkStatus();
              }
            }
            return absl::NotFoundError("no such series in the Go report");
          });
    }
  }
  for (int callers : {1, 8}) {
    reg(absl::StrCat("throughput/echo/64/callers:", callers),
        [callers, need](benchmark::State& state) -> absl::Status {
          RETURN_IF_ERROR(need(g_go_report));
          for (const nlohmann::json& t : g_go_report["throughput"]) {
            if (t.value("callers", 0) == callers) {
              const double rate = t.value("calls_per_sec", 0.0);
              state.SetIterationTime(1.0 / rate);
              state.counters["calls_per_s"] = rate;
              Record(kGo, absl::StrCat("calls_per_s_", callers), rate);
              return absl::OkStatus();
            }
          }
          return absl::NotFoundError("no such throughput run in the Go report");
        });
  }
  reg("rss_after_load", [need](benchmark::State& state) -> absl::Status {
    RETURN_IF_ERROR(need(g_go_report));
    const double kib = g_go_report.value("plugin_rss_after_load_kib", 0.0);
    state.SetIterationTime(1e-6);
    state.counters["rss_KiB"] = kib;
    Record(kGo, "loaded_rss_kib", kib);
    return absl::OkStatus();
  });
}

// --- The comparison table ------------------------------------------------------------------

struct Row {
  const char* metric;
  const char* label;
  const char* unit;
  // Goal on bulwark/go-plugin: "<= x" or ">= x"; empty for none.
  bool has_goal;
  bool at_most;
  double goal;
};

void PrintTable() {
  const std::vector<Row> rows = {
      {"launch_ms", "launch to first call, AutoMTLS, SHA-256 check", "ms", true, true, 0.25},
      {"launch_no_sha256_ms", "launch to first call, AutoMTLS, no SHA-256", "ms", false, true, 0},
      {"echo64_p50_us", "echo 64 B p50", "us", true, true, 0.7},
      {"echo64_p99_us", "echo 64 B p99", "us", false, true, 0},
      {"echo64k_p50_us", "echo 64 KiB p50", "us", false, true, 0},
      {"echo64k_p99_us", "echo 64 KiB p99", "us", false, true, 0},
      {"write64_p50_us", "write (storage round trip) 64 B p50", "us", false, true, 0},
      {"write64_p99_us", "write (storage round trip) 64 B p99", "us", false, true, 0},
      {"write64k_p50_us", "write (storage round trip) 64 KiB p50", "us", false, true, 0},
      {"write64k_p99_us", "write (storage round trip) 64 KiB p99", "us", false, true, 0},
      {"read64_p50_us", "read (storage round trip) 64 B p50", "us", false, true, 0},
      {"read64k_p50_us", "read (storage round trip) 64 KiB p50", "us", false, true, 0},
      {"calls_per_s_1", "echo 64 B calls/s, 1 caller", "1/s", false, false, 0},
      {"calls_per_s_8", "echo 64 B calls/s, 8 callers", "1/s", true, false, 1.5},
      {"idle_rss_kib", "plugin RSS after Setup+Initialize", "KiB", true, true, 0.5},
      {"idle_rss_after_calls_kib", "plugin RSS after 20 calls + 1 s idle", "KiB", false, true, 0},
      {"loaded_rss_kib", "plugin RSS after the whole load", "KiB", false, true, 0},
      {"started_rss_kib", "started+idle, same host: VmRSS", "KiB", false, true, 0},
      {"started_rss_anon_kib", "started+idle, same host: RssAnon (private)", "KiB", false, true, 0},
      {"started_rss_file_kib", "started+idle, same host: RssFile", "KiB", false, true, 0},
      {"started_pss_kib", "started+idle, same host: PSS", "KiB", false, true, 0},
      {"plugin_cpu_us_per_call_1", "plugin CPU per call, 1 caller (bulwark only)", "us", false,
       true, 0},
      {"plugin_cpu_us_per_call_8", "plugin CPU per call, 8 callers (bulwark only)", "us", false,
       true, 0},
      {"host_cpu_us_per_call_1", "host CPU per call, 1 caller (bulwark only)", "us", false, true,
       0},
      {"host_cpu_us_per_call_8", "host CPU per call, 8 callers (bulwark only)", "us", false, true,
       0},
  };
  printf("\nP1 plugin protocol: bulwark host <-> C++ kv plugin vs go-plugin host <-> Go plugin\n");
  printf("medians over %d round(s); ratio = bulwark / go-plugin\n\n", g_options.rounds);
  printf("| %-50s | %12s | %12s | %7s | %7s | %-7s |\n", "metric", "bulwark", "go-plugin", "ratio",
         "goal", "met");
  printf("|%s|%s|%s|%s|%s|%s|\n", std::string(52, '-').c_str(), std::string(14, '-').c_str(),
         std::string(14, '-').c_str(), std::string(9, '-').c_str(), std::string(9, '-').c_str(),
         std::string(9, '-').c_str());
  for (const Row& row : rows) {
    const auto& pairs = g_results[row.metric];
    const double b = pairs.count(kBulwark) ? Median(pairs.at(kBulwark)) : NAN;
    const double g = pairs.count(kGo) ? Median(pairs.at(kGo)) : NAN;
    const double ratio = b / g;
    std::string goal = "", met = "";
    if (row.has_goal) {
      goal = absl::StrFormat("%s%.2fx", row.at_most ? "<=" : ">=", row.goal);
      if (std::isnan(ratio)) {
        met = "n/a";
      } else {
        met = (row.at_most ? ratio <= row.goal : ratio >= row.goal) ? "met" : "NOT met";
      }
    }
    const std::string label = absl::StrCat(row.label, " (", row.unit, ")");
    auto fmt = [](double v) {
      return std::isnan(v) ? std::string("-") : absl::StrFormat("%.1f", v);
    };
    printf("| %-50s | %12s | %12s | %7s | %7s | %-7s |\n", label.c_str(), fmt(b).c_str(),
           fmt(g).c_str(), std::isnan(ratio) ? "-" : absl::StrFormat("%.2fx", ratio).c_str(),
           goal.c_str(), met.c_str());
  }
  if (g_results.count("calls_per_s_8") == 0 || g_results.count("echo64_p50_us") == 0) {
    printf("\nsome rows are missing: a benchmark was filtered out or failed (see above)\n");
  }
  fflush(stdout);
}

// Takes our own flags out of argv; returns false (with a message) on a bad one.
bool ParseFlags(int* argc, char** argv) {
  std::vector<std::string> positional;
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    absl::string_view arg = argv[i];
    auto int_flag = [&](absl::string_view name, int* value, int max) -> std::optional<bool> {
      const std::string prefix = absl::StrCat("--", name, "=");
      if (!absl::StartsWith(arg, prefix)) return std::nullopt;
      int v = 0;
      if (!absl::SimpleAtoi(arg.substr(prefix.size()), &v) || v < 1 || v > max) {
        fprintf(stderr, "%s must be 1..%d\n", prefix.c_str(), max);
        return false;
      }
      *value = v;
      return true;
    };
    std::optional<bool> r;
    if (!(r = int_flag("rounds", &g_options.rounds, kRoundsMax)) &&
        !(r = int_flag("launches", &g_options.launches, kLaunchesMax)) &&
        !(r = int_flag("samples", &g_options.samples, kSamplesMax)) &&
        !(r = int_flag("warmup", &g_options.warmup, kSamplesMax)) &&
        !(r = int_flag("duration_s", &g_options.duration_s, kDurationSecondsMax))) {
      if (absl::StartsWith(arg, "--plugin_env=")) {
        g_options.plugin_env.emplace_back(arg.substr(strlen("--plugin_env=")));
      } else if (!absl::StartsWith(arg, "--")) {
        positional.emplace_back(arg);
      } else {
        argv[out++] = argv[i];  // Google Benchmark's.
      }
    } else if (!*r) {
      return false;
    }
  }
  *argc = out;
  if (positional.size() != 3) {
    fprintf(stderr,
            "usage: plugin_protocol_benchmark KV_PLUGIN GO_HOST GO_PLUGIN [--rounds=N] "
            "[--launches=N] [--warmup=N] [--samples=N] [--duration_s=N] [benchmark flags]\n"
            "(bazel run -c opt //benchmarks:plugin_protocol_benchmark passes the paths)\n");
    return false;
  }
  auto absolute = [](const std::string& p) {
    char* real = ::realpath(p.c_str(), nullptr);
    std::string r = real != nullptr ? real : p;
    ::free(real);
    return r;
  };
  g_options.kv_plugin = absolute(positional[0]);
  g_options.go_host = absolute(positional[1]);
  g_options.go_plugin = absolute(positional[2]);
  return true;
}

}  // namespace
}  // namespace bulwark::bench

int main(int argc, char** argv) {
  using namespace bulwark::bench;  // NOLINT: main only.
  if (!ParseFlags(&argc, argv)) return 2;
  // Rounds alternate which pair goes first, so a load change on the shared machine does not
  // always fall on the same side.
  for (int round = 1; round <= g_options.rounds; ++round) {
    if (round % 2 == 1) {
      RegisterBulwark(round);
      RegisterGo(round);
    } else {
      RegisterGo(round);
      RegisterBulwark(round);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_bulwark.reset();
  PrintTable();
  return 0;
}
