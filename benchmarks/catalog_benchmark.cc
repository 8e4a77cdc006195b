// Speed of the plugin catalog: lookups among 10,000 registered entries (goal: Get under 2 us),
// plus what it costs to register one entry and to reload the whole index from storage.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/crypto/sha256.h"
#include "base/env/random.h"
#include "base/env/sim/sim_file_system.h"
#include "base/status/check.h"
#include "base/storage/in_memory_storage.h"
#include "benchmark/benchmark.h"
#include "core/catalog/catalog.h"

namespace bulwark::catalog {
namespace {

constexpr int kEntries = 10000;
constexpr char kArtifact[] = "tiny plugin artifact";

struct Lookup {
  PluginType type;
  std::string name;
  std::string version;
};

// A catalog with kEntries entries: names spread over the three types, every other one
// versioned; all point at one tiny artifact in a simulated plugin directory.
struct Fixture {
  SeededRandom random{1};
  sim::SimFileSystem fs{random};
  InMemoryStorage storage;
  CatalogOptions options;
  std::unique_ptr<Catalog> catalog;
  std::vector<Lookup> lookups;  // Every entry, in a shuffled order.
  std::string sha256 = crypto::HexEncode(crypto::Sha256::Hash(kArtifact));

  Fixture() {
    CHECK_OK(fs.CreateDir("/plugins", 0755));
    CHECK_OK(fs.WriteFileDurably("/plugins/plugin", kArtifact, 0755));
    options.plugin_directory = "/plugins";
    options.builtins = {{PluginType::kSecret, "kv", "v0.20.0+builtin"}};
    catalog = std::move(Catalog::Open(storage, fs, options)).value();
    for (int i = 0; i < kEntries; ++i) {
      RegisterRequest request;
      request.type = kAllPluginTypes[i % 3];
      request.name = absl::StrCat("vault-plugin-", i / 2);
      request.version = i % 2 == 0 ? "" : absl::StrCat("v1.", i % 7, ".", i);
      request.command = "plugin";
      request.args = {"-tls-skip-verify"};
      request.env = {"TOKEN=secret"};
      request.sha256 = sha256;
      CHECK_OK(catalog->Register(request));
      lookups.push_back({request.type, request.name, request.version});
    }
    random.Shuffle(lookups);
  }
};

Fixture& SharedFixture() {
  static Fixture* fixture = new Fixture();
  return *fixture;
}

void BM_CatalogGet(benchmark::State& state) {
  Fixture& f = SharedFixture();
  size_t i = 0;
  for (auto _ : state) {
    const Lookup& lookup = f.lookups[i++ % f.lookups.size()];
    absl::StatusOr<CatalogEntryView> view =
        f.catalog->Get(lookup.type, lookup.name, lookup.version);
    benchmark::DoNotOptimize(view);
  }
  state.counters["entries"] = static_cast<double>(f.catalog->entry_count());
}
BENCHMARK(BM_CatalogGet);

void BM_CatalogGetMissing(benchmark::State& state) {
  Fixture& f = SharedFixture();
  for (auto _ : state) {
    absl::StatusOr<CatalogEntryView> view =
        f.catalog->Get(PluginType::kDatabase, "no-such-plugin", "v9.9.9");
    benchmark::DoNotOptimize(view);
  }
}
BENCHMARK(BM_CatalogGetMissing);

void BM_CatalogGetBuiltin(benchmark::State& state) {
  Fixture& f = SharedFixture();
  for (auto _ : state) {
    absl::StatusOr<CatalogEntryView> view = f.catalog->Get(PluginType::kSecret, "kv");
    benchmark::DoNotOptimize(view);
  }
}
BENCHMARK(BM_CatalogGetBuiltin);

// Register = validation + directory and containment checks + hashing a tiny file + Put.
void BM_CatalogRegister(benchmark::State& state) {
  Fixture& f = SharedFixture();
  RegisterRequest request;
  request.type = PluginType::kSecret;
  request.name = "vault-plugin-0";
  request.version = "v1.0.0";
  request.command = "plugin";
  request.sha256 = f.sha256;
  for (auto _ : state) {
    absl::StatusOr<CatalogEntryView> view = f.catalog->Register(request);
    benchmark::DoNotOptimize(view);
  }
}
BENCHMARK(BM_CatalogRegister);

// Reload rebuilds the index from the 10,000 stored records (decode + validate each).
void BM_CatalogReload(benchmark::State& state) {
  Fixture& f = SharedFixture();
  for (auto _ : state) {
    CHECK_OK(f.catalog->Reload());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(f.catalog->entry_count()));
}
BENCHMARK(BM_CatalogReload)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace bulwark::catalog
