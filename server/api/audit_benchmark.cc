// The audit device's cost on the request path: a built-in kv write (PUT secret/bench, a 45-byte
// body, answered 204) through the API handler over a real Node, with no audit device, with a
// device enabled and then disabled (the disabled path: one check), and with a file device
// writing to a real file ($TEST_TMPDIR or /tmp) through PosixFileSystem. Interleaved in one
// run. The node's storage is in memory and the loop simulated, so the figure is the CPU the
// API, node, barrier and kv engine spend per write, with no HTTP and no disk flush: the
// smallest base, so the audit share is the largest it can be.
//   bazel run -c opt //server/api:audit_benchmark
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/env/posix/posix_file_system.h"
#include "base/env/sim/sim_env.h"
#include "base/log/log.h"
#include "base/status/check.h"
#include "base/storage/in_memory_storage.h"
#include "benchmark/benchmark.h"
#include "core/lifecycle/builtin_runner.h"
#include "examples/kv/kv_backend.h"
#include "sdk/dispatcher.h"
#include "server/api/api.h"

namespace bulwark::api {
namespace {

enum Mode { kNever = 0, kDisabled = 1, kFile = 2 };

struct Fixture {
  explicit Fixture(Mode mode)
      : sim(7),
        env{sim.clock(), sim.loop(), sim.random(), posix_fs, sim.launcher(), nullptr},
        log(LogLevel::kError, stderr) {
    lifecycle::BuiltinBackend kv;
    kv.factory = sdk::InProcessBackend(examples::kv::KvBackendFactory());
    builtins = std::make_unique<lifecycle::BuiltinRunnerFactory>(
        sim.loop(), std::map<std::string, lifecycle::BuiltinBackend>{{"kv", kv}});
    node::NodeOptions options;
    options.catalog.builtins = {
        catalog::BuiltinPlugin{catalog::PluginType::kSecret, "kv", "v0.1.0+builtin"}};
    node = *node::Node::Open(env, physical, *builtins, metrics, log, options);
    api = std::make_unique<Api>(env, *node, metrics, log);
    const Json init =
        Json::parse(Do("PUT", "/v1/sys/init", R"({"secret_shares":1,"secret_threshold":1})", 200));
    token = init["root_token"].get<std::string>();
    Do("PUT", "/v1/sys/unseal",
       absl::StrCat(R"({"key":")", init["keys"][0].get<std::string>(), "\"}"), 200);
    Do("POST", "/v1/sys/mounts/secret", R"({"type":"kv"})", 204);
    const char* tmp = std::getenv("TEST_TMPDIR");
    path =
        absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/bulwark-audit-benchmark-", getpid(), ".log");
    if (mode != kNever) {
      Do("PUT", "/v1/sys/audit/file",
         absl::StrCat(R"({"type":"file","options":{"file_path":")", path, "\"}}"), 204);
    }
    if (mode == kDisabled) Do("DELETE", "/v1/sys/audit/file", "", 204);
  }
  ~Fixture() { (void)posix_fs.Remove(path); }

  std::string Do(const std::string& method, const std::string& target, const std::string& body,
                 int want) {
    http::Request r;
    r.method = method;
    r.path = target;
    r.body = body;
    r.remote_address = "127.0.0.1:40000";
    r.headers.emplace_back("x-vault-token", token);
    std::optional<http::Response> out;
    api->Handle(std::move(r), [&out](http::Response resp) { out = std::move(resp); });
    sim.loop().RunUntil([&] { return out.has_value(); }, absl::Seconds(10));
    CHECK(out.has_value() && out->status == want)
        << target << " " << (out.has_value() ? out->status : 0) << " " << (out ? out->body : "");
    return out->body;
  }

  sim::SimEnv sim;
  PosixFileSystem posix_fs;
  Env env;
  InMemoryStorage physical;
  std::unique_ptr<lifecycle::BuiltinRunnerFactory> builtins;
  metrics::Registry metrics;
  StderrLogSink log;
  std::unique_ptr<node::Node> node;
  std::unique_ptr<Api> api;
  std::string token;
  std::string path;
};

void BM_KvWrite(benchmark::State& state) {
  Fixture f(static_cast<Mode>(state.range(0)));
  const std::string body = R"({"value":"bench-value-0123456789","n":"42"})";
  for (auto _ : state) f.Do("PUT", "/v1/secret/bench", body, 204);
  state.SetLabel(state.range(0) == kNever      ? "no audit device"
                 : state.range(0) == kDisabled ? "audit device enabled, then disabled"
                                               : "file audit device");
}
// Interleaved: never, file, disabled, file, never, ... so that drift in machine load hits all.
BENCHMARK(BM_KvWrite)
    ->Arg(kNever)
    ->Arg(kFile)
    ->Arg(kDisabled)
    ->Arg(kFile)
    ->Arg(kNever)
    ->Arg(kDisabled);

}  // namespace
}  // namespace bulwark::api
