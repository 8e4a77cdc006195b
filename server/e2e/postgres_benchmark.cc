// The goal end to end: `database/creds/:role` and `database/rotate-root/:name` over
// HTTP on a real `bulwark server -dev` with the PostgreSQL plugin, against a bare libpq round
// trip doing the same change, in one run against one real PostgreSQL 15, each pair interleaved
// round by round so both sides see the same machine load:
//
//   CREATE ROLE "<u>" WITH LOGIN PASSWORD '<p>' VALID UNTIL '<t>'  (libpq, autocommit)
//   GET /v1/database/creds/role  (the engine: role + config reads, NewUser through the plugin,
//                                 the lease written behind the barrier)
//   ALTER ROLE "<u>" WITH PASSWORD '<p>'                           (libpq, autocommit)
//   PUT /v1/database/rotate-root/pg  (WAL put, UpdateUser, config write, WAL delete, and the
//                                     connection closed, so the next call reconnects)
//
// rotate-root runs on two servers side by side: one as shipped (the plugin process outlives the
// closed instance by the lifecycle's idle grace period, so the next instance reuses it) and one
// started with BULWARK_DATABASE_IDLE_GRACE=0s (Vault's behaviour: the process stops with its
// last instance and the next rotation relaunches it), each with its own root role.
//
//   bazel run -c opt //server/e2e:postgres_benchmark -- [--rounds=N]
//
// Prints p50/p90/p99 per operation and the engine/libpq ratios of the p50s (the goal: <= 1.5),
// and, to show where the time goes: a role read over HTTP (no plugin call), and rotate-root
// split into reset/pg (close + open the connection) and a rotate-root that finds it open.
// Not a test: it asserts nothing about speed.
#include <postgresql/libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "examples/postgres/testing/benchmark_support.h"
#include "examples/postgres/testing/postgres_server.h"
#include "nlohmann/json.hpp"
#include "server/cli/client.h"
#include "server/e2e/bulwark_server.h"

namespace bulwark::e2e {
namespace {

using examples::postgres::testing::BareConnection;
using examples::postgres::testing::Percentile;
using examples::postgres::testing::PostgresServer;
using examples::postgres::testing::PrintReport;
using examples::postgres::testing::RoundsFlag;
using examples::postgres::testing::Samples;
using examples::postgres::testing::TimeUs;

constexpr int kRoundsDefault = 300;
constexpr int kWarmupRounds = 20;
constexpr char kRootToken[] = "postgres-benchmark-root-token";
constexpr char kPlugin[] = "postgresql-database-plugin";
constexpr char kCreation[] =
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "postgres_benchmark: %s\n", what.c_str());
  std::exit(1);
}

void Expect(const cli::Client& client, const cli::ApiRequest& request) {
  absl::StatusOr<cli::ApiReply> reply = client.Send(request);
  if (!reply.ok()) Die(absl::StrCat(request.path, ": ", reply.status().ToString()));
  if (reply->status >= 300) Die(absl::StrCat(request.path, ": ", reply->status, " ", reply->body));
}

// Statics, so that Die (std::exit) still stops the bulwark servers, then PostgreSQL.
std::unique_ptr<PostgresServer> g_pg;
RunningServer g_server;
RunningServer g_vault_server;  // BULWARK_DATABASE_IDLE_GRACE=0s.
RunningServer g_debug_server;  // As shipped, -log-level=debug: the per-step timings.
constexpr char kVaultRootUser[] = "bench_vault_root";
constexpr char kVaultRootPassword[] = "bench-Vault-root-0";

// Starts a dev server under `dir` with the plugin registered, `database/` mounted, connection
// "pg" (logging in as `user`) and role "role"; returns its client.
cli::Client StartConfigured(RunningServer& server, const std::string& dir, PostgresServer& pg,
                            const std::string& user, const std::string& password,
                            const std::vector<std::string>& env,
                            const std::string& log_level = "warn") {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/plugins");
  server = StartServer(
      {"-dev", absl::StrCat("-dev-root-token-id=", kRootToken), "-dev-listen-address=127.0.0.1:0",
       "-dev-plugin-dir=" + dir + "/plugins", "-log-level=" + log_level},
      env);
  if (server.address.empty()) Die(server.process->output());
  const std::string sha256 =
      InstallPlugin("bulwark/examples/postgres/postgres_plugin", dir + "/plugins", kPlugin);
  cli::ClientOptions options;
  options.address = server.address;
  options.token = kRootToken;
  absl::StatusOr<cli::Client> client = cli::Client::Create(options);
  if (!client.ok()) Die(client.status().ToString());
  Expect(*client, {"PUT",
                   absl::StrCat("sys/plugins/catalog/database/", kPlugin),
                   {},
                   nlohmann::json{{"sha256", sha256}, {"command", kPlugin}}});
  Expect(*client, {"POST", "sys/mounts/database", {}, nlohmann::json{{"type", "database"}}});
  Expect(*client, {"PUT",
                   "database/config/pg",
                   {},
                   nlohmann::json{{"plugin_name", kPlugin},
                                  {"connection_url", pg.TemplatedUrl()},
                                  {"username", user},
                                  {"password", password},
                                  {"allowed_roles", "role"}}});
  Expect(*client,
         {"PUT",
          "database/roles/role",
          {},
          nlohmann::json{
              {"db_name", "pg"}, {"creation_statements", kCreation}, {"default_ttl", "1h"}}});
  return *std::move(client);
}

// The debug timings the engine and the lifecycle log (fields named *_us) of every line whose
// message is `message`, into `us` as "<prefix><field without _us>".
void CollectTimings(const std::string& output, const std::string& message,
                    const std::string& prefix, Samples& us) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    if (!absl::StrContains(line, absl::StrCat(": ", message, " "))) continue;
    for (absl::string_view token : absl::StrSplit(line, ' ')) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(token, '=');
      double value = 0;
      if (!absl::ConsumeSuffix(&kv.first, "_us") || !absl::SimpleAtod(kv.second, &value)) continue;
      us[absl::StrCat(prefix, kv.first)].push_back(value);
    }
  }
}

int Main(int argc, char** argv) {
  const int rounds = RoundsFlag(argc, argv, kRoundsDefault, "postgres_benchmark");
  // Under `bazel run` the runfiles helpers (server/testing) look in TEST_SRCDIR.
  if (std::getenv("TEST_SRCDIR") == nullptr) {
    if (const char* runfiles = std::getenv("RUNFILES_DIR"); runfiles != nullptr) {
      ::setenv("TEST_SRCDIR", runfiles, 1);
    } else {
      char self[4096];
      const ssize_t len = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
      if (len <= 0) Die("cannot find the runfiles");
      ::setenv("TEST_SRCDIR", absl::StrCat(std::string(self, len), ".runfiles").c_str(), 1);
    }
  }
  absl::StatusOr<std::unique_ptr<PostgresServer>> started = PostgresServer::Start();
  if (!started.ok()) Die(started.status().ToString());
  g_pg = *std::move(started);
  PostgresServer& pg = *g_pg;
  BareConnection bare(pg);

  bare.Exec(absl::StrCat("CREATE ROLE \"", kVaultRootUser, "\" WITH LOGIN SUPERUSER PASSWORD '",
                         kVaultRootPassword, "'"));
  std::optional<cli::Client> client;
  client.emplace(StartConfigured(g_server, TestTmpDir() + "/postgres_benchmark", pg, pg.superuser(),
                                 pg.superuser_password(), {}));
  std::optional<cli::Client> vault_client;
  vault_client.emplace(StartConfigured(g_vault_server, TestTmpDir() + "/postgres_benchmark_vault",
                                       pg, kVaultRootUser, kVaultRootPassword,
                                       {"BULWARK_DATABASE_IDLE_GRACE=0s"}));
  // The breakdown server: as shipped, logging at debug level, so that the engine's per-step
  // timings of each rotation (and of each instance open) can be read from its output.
  constexpr char kDebugRootUser[] = "bench_debug_root";
  bare.Exec(absl::StrCat("CREATE ROLE \"", kDebugRootUser,
                         "\" WITH LOGIN SUPERUSER PASSWORD 'bench-Debug-root-0'"));
  std::optional<cli::Client> debug_client;
  debug_client.emplace(StartConfigured(g_debug_server, TestTmpDir() + "/postgres_benchmark_debug",
                                       pg, kDebugRootUser, "bench-Debug-root-0", {}, "debug"));
  const cli::ApiRequest creds = {"GET", "database/creds/role", {}, std::nullopt};
  const cli::ApiRequest rotate = {"PUT", "database/rotate-root/pg", {}, std::nullopt};
  const cli::ApiRequest reset = {"PUT", "database/reset/pg", {}, std::nullopt};
  const cli::ApiRequest read_role = {"GET", "database/roles/role", {}, std::nullopt};
  bare.Exec("CREATE ROLE \"bare-root\" WITH LOGIN PASSWORD 'bare-root-0'");

  const std::string expiration =
      absl::FormatTime("%Y-%m-%d %H:%M:%S%z", absl::Now() + absl::Hours(1), absl::UTCTimeZone());
  Samples us;
  // Creds first (rotate-root closes the connection, so the next creds would reconnect).
  for (int round = -kWarmupRounds; round < rounds; ++round) {
    const std::string id = absl::StrCat(round + kWarmupRounds);
    const double bare_us = TimeUs([&] {
      bare.Exec(absl::StrCat("CREATE ROLE \"bare-", id, "\" WITH LOGIN PASSWORD 'pw-A-", id,
                             "' VALID UNTIL '", expiration, "'"));
    });
    const double http_us = TimeUs([&] { Expect(*client, creds); });
    const double read_us = TimeUs([&] { Expect(*client, read_role); });
    if (round < 0) continue;
    us["libpq CREATE ROLE"].push_back(bare_us);
    us["HTTP creds/role"].push_back(http_us);
    us["HTTP read roles/"].push_back(read_us);
  }
  // rotate-root, each round starting from a settled server: a creds/role request (untimed)
  // first, which needs the connection and so joins the open that the previous rotation started
  // in the background; without it a rotation would meet the reopen of the one before (timed
  // apart below as "rotate, no gap"), and the bare ALTER ROLE would share the CPU with that
  // login. The servers run in loops of their own, so that no server's background work (the
  // reopen's login, the grace-0s server's process exit) overlaps another's timed request.
  for (int round = -kWarmupRounds; round < rounds; ++round) {
    const std::string id = absl::StrCat(round + kWarmupRounds);
    Expect(*client, creds);
    const double bare_us = TimeUs(
        [&] { bare.Exec(absl::StrCat("ALTER ROLE \"bare-root\" WITH PASSWORD 'pw-C-", id, "'")); });
    const double http_us = TimeUs([&] { Expect(*client, rotate); });
    if (round < 0) continue;
    us["libpq ALTER ROLE"].push_back(bare_us);
    us["HTTP rotate-root"].push_back(http_us);
  }
  for (int round = -kWarmupRounds; round < rounds; ++round) {
    Expect(*debug_client, creds);
    // Vault's behaviour: the process stopped with the instance, so this relaunches it.
    const double vault_us = TimeUs([&] { Expect(*vault_client, rotate); });
    const double debug_us = TimeUs([&] { Expect(*debug_client, rotate); });
    if (round < 0) continue;
    us["rotate-root, debug log"].push_back(debug_us);
    us["rotate-root, grace 0s"].push_back(vault_us);
  }
  // The breakdown of rotate-root: reset/pg opens the connection (a new plugin instance, its
  // Initialize logging in), after which rotate-root finds it open.
  for (int round = -kWarmupRounds; round < rounds; ++round) {
    const double reset_us = TimeUs([&] { Expect(*client, reset); });
    const double open_us = TimeUs([&] { Expect(*client, rotate); });
    // Straight after the rotation above, with no gap: the connection it closed is being
    // reopened in the background, so this one waits for that open.
    const double next_us = TimeUs([&] { Expect(*client, rotate); });
    if (round < 0) continue;
    us["rotate, no gap"].push_back(next_us);
    us["HTTP reset/pg"].push_back(reset_us);
    us["rotate (conn open)"].push_back(open_us);
  }
  g_server.process->Stop(SIGTERM);
  g_vault_server.process->Stop(SIGTERM);
  g_debug_server.process->Stop(SIGTERM);
  // Warm-up rounds included: the split is per step, not per round.
  Samples steps;
  const std::string debug_output = g_debug_server.process->output();
  CollectTimings(debug_output, "rotate-root timing", "rotate: ", steps);
  CollectTimings(debug_output, "database instance opened", "open: ", steps);
  CollectTimings(debug_output, "plugin artifact checked for launch", "open: artifact ", steps);
  std::printf("rounds: %d per pair (after %d warm-up rounds), interleaved\n", rounds,
              kWarmupRounds);
  PrintReport(
      us,
      {"libpq CREATE ROLE", "HTTP creds/role", "HTTP read roles/", "libpq ALTER ROLE",
       "HTTP rotate-root", "rotate-root, grace 0s", "rotate-root, debug log", "HTTP reset/pg",
       "rotate (conn open)", "rotate, no gap"},
      {{"creds/role / CREATE ROLE", "HTTP creds/role", "libpq CREATE ROLE"},
       {"rotate-root / ALTER ROLE", "HTTP rotate-root", "libpq ALTER ROLE"},
       {"rotate-root grace 0s / ALTER ROLE", "rotate-root, grace 0s", "libpq ALTER ROLE"},
       {"rotate-root debug log / ALTER ROLE", "rotate-root, debug log", "libpq ALTER ROLE"}});
  // Where a rotation's time goes, by the engine's own clock, on the debug-logging server (each
  // step's p50 and its share of the sum of the rotation steps' p50s).
  std::printf("\nrotate-root steps on the debug server (samples, p50 us, share of the sum):\n");
  double sum = 0;
  for (const auto& [name, samples] : steps) {
    if (absl::StartsWith(name, "rotate: ")) sum += Percentile(samples, 0.5);
  }
  for (const auto& [name, samples] : steps) {
    const double p50 = Percentile(samples, 0.5);
    std::printf("%-36s %5zu %10.0f", name.c_str(), samples.size(), p50);
    if (absl::StartsWith(name, "rotate: ")) std::printf("  %5.1f%%", 100 * p50 / sum);
    std::printf("\n");
  }
  return 0;
}

}  // namespace
}  // namespace bulwark::e2e

int main(int argc, char** argv) { return bulwark::e2e::Main(argc, argv); }
