// In-process cost of the SDK's dispatch path (no gRPC): HandleRequest through
// BackendDispatcher into the kv backend and an in-memory pb.Storage, with every message
// serialized and parsed as on the wire. Run: bazel run -c opt //examples/kv:kv_dispatch_benchmark
#include <memory>
#include <string>

#include "benchmark/benchmark.h"
#include "examples/kv/kv_backend.h"
#include "proto/vault/backend.pb.h"
#include "sdk/dispatcher.h"
#include "sdk/in_memory_host.h"

namespace bulwark::examples::kv {
namespace {

struct Fixture {
  Fixture() : dispatcher(KvBackendFactory(), dialer, sdk::DispatcherOptions()) {
    dialer.Offer(1, std::make_shared<sdk::InMemoryHostStorage>());
    pb::SetupArgs setup;
    setup.set_broker_id(1);
    (void)dispatcher.Dispatch(sdk::kSetupMethod, setup.SerializeAsString(), "m1");
  }
  std::string Request(const std::string& op, const std::string& path, const std::string& data) {
    pb::HandleRequestArgs args;
    args.mutable_request()->set_operation(op);
    args.mutable_request()->set_path(path);
    args.mutable_request()->set_data(data);
    return args.SerializeAsString();
  }
  sdk::InMemoryHostDialer dialer;
  sdk::BackendDispatcher dispatcher;
};

void BM_Write(benchmark::State& state) {
  Fixture f;
  const std::string request = f.Request("update", "app/db", R"({"user":"u","password":"p"})");
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.dispatcher.Dispatch(sdk::kHandleRequestMethod, request, "m1"));
  }
}
BENCHMARK(BM_Write);

void BM_Read(benchmark::State& state) {
  Fixture f;
  (void)f.dispatcher.Dispatch(sdk::kHandleRequestMethod,
                              f.Request("update", "app/db", R"({"user":"u","password":"p"})"),
                              "m1");
  const std::string request = f.Request("read", "app/db", "null");
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.dispatcher.Dispatch(sdk::kHandleRequestMethod, request, "m1"));
  }
}
BENCHMARK(BM_Read);

// The pure-RPC benchmark path (kEchoPath) with request data of state.range(0) bytes, as
// //benchmarks:plugin_protocol_benchmark sends it: the in-process share of that round trip
// (JSON parse of the request data, dump of the response data, protobuf both ways).
void BM_Echo(benchmark::State& state) {
  Fixture f;
  const size_t n = static_cast<size_t>(state.range(0));
  const std::string data = R"({"value":")" + std::string(n - 12, 'x') + R"("})";
  const std::string request = f.Request("update", "echo", data);
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.dispatcher.Dispatch(sdk::kHandleRequestMethod, request, "m1"));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_Echo)->Arg(64)->Arg(65536);

void BM_Version(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.dispatcher.Dispatch(sdk::kVersionMethod, "", ""));
  }
}
BENCHMARK(BM_Version);

}  // namespace
}  // namespace bulwark::examples::kv
