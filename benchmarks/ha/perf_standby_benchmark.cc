// A kv write through a performance standby against a kv write on the active node plus one
// loopback round trip, interleaved in rounds in one run, on one etcd (issue 14's goal: <= 1.5x).
// Three `bulwark server`s with cluster ports: the active node and two performance standbys, one
// with watched reads (the default: storage reads from memory, kept fresh by its etcd watch) and
// one with `performance_standby_cached_reads: false` (every read from etcd: the figure before
// watched reads). One writer, one request at a time on a kept-alive connection per server. A
// write through a perf standby runs the kv plugin there, gets the read-only error from its
// storage, and is re-sent whole to the active node over the cluster port (mutual TLS gRPC), which
// writes it. The round trip is one HTTP GET of sys/health on the active node over loopback (the
// HTTP layer answers it: no storage). Also shown: a read on each (served locally on the perf
// standbys).
//
//   bazel run -c opt //benchmarks/ha:perf_standby_benchmark [-- --writes=500 --rounds=5]
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "benchmarks/ha/http_bench.h"
#include "server/testing/etcd.h"
#include "server/testing/process.h"

namespace bulwark {
namespace {

using ha_bench::Connection;
using ha_bench::Stats;
using ha_bench::Summarize;
using ha_bench::Time;
using nlohmann::json;

constexpr char kName[] = "perf_standby_benchmark";

void Die(const std::string& what) { ha_bench::Die(kName, what); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Main(int argc, char** argv) {
  ha_bench::Args defaults;
  defaults.writes = 500;
  const ha_bench::Args args = ha_bench::ParseArgs(argc, argv, kName, defaults);
  const int writes = args.writes, rounds = args.rounds;
  int status = 0;
  {
    server_testing::EtcdProcess etcd("bench");
    json config = ha_bench::EtcdServerConfig(etcd.client_url(), true);
    config["performance_standby"] = true;
    ha_bench::Server active_server = ha_bench::StartServer(args, kName, "active", config);
    Connection active(active_server.port);
    const ha_bench::Keys keys = ha_bench::InitAndActivate(active, kName);
    const std::string& root = keys.root;
    if (active.Do("POST", "/v1/sys/mounts/d", root, R"({"type":"kv"})") != 204) Die("mount kv");
    // Started after the first is active, so that they stay performance standbys.
    ha_bench::Server watched_server = ha_bench::StartServer(args, kName, "watched", config);
    config["performance_standby_cached_reads"] = false;
    ha_bench::Server uncached_server = ha_bench::StartServer(args, kName, "uncached", config);
    Connection watched(watched_server.port);
    Connection uncached(uncached_server.port);
    for (Connection* perf : {&watched, &uncached}) {
      perf->Do("PUT", "/v1/sys/unseal", "", keys.unseal);
      ha_bench::WaitFor(*perf, kName, "/v1/sys/health",
                        "a server never became a performance standby",
                        [](int s, const std::string&) { return s == 473; });
    }

    const std::string kv_body = json{{"v", std::string(100, 'x')}}.dump();
    auto write_on = [&](Connection& c, const char* what) {
      return [&c, what, &root, &kv_body](int i) {
        if (c.Do("PUT", absl::StrCat("/v1/d/k", i % 100), root, kv_body) != 204) {
          Die(absl::StrCat(what, " write failed"));
        }
      };
    };
    auto read_on = [&](Connection& c, const char* what) {
      return [&c, what, &root](int i) {
        if (c.Do("GET", absl::StrCat("/v1/d/k", i % 100), root, "") != 200) {
          Die(absl::StrCat(what, " read failed"));
        }
      };
    };
    auto round_trip = [&](int) {
      if (active.Do("GET", "/v1/sys/health", "", "") != 200) Die("health");
    };
    auto active_write = write_on(active, "active");
    auto watched_write = write_on(watched, "perf standby (watched reads)");
    auto uncached_write = write_on(uncached, "perf standby (uncached)");
    auto active_read = read_on(active, "active");
    auto watched_read = read_on(watched, "perf standby (watched reads)");
    auto uncached_read = read_on(uncached, "perf standby (uncached)");
    Time(100, active_write);  // Warm-up (and every key exists for the reads).
    Time(100, watched_write);
    Time(100, uncached_write);
    Time(100, round_trip);

    std::printf("writes per workload per round: %d; kv body %zu bytes\n", writes, kv_body.size());
    std::printf("%-6s %-44s %12s %12s\n", "round", "workload", "median_us", "mean_us");
    std::vector<double> after, before;
    std::vector<std::vector<std::string>> recorded;  // --record
    for (int r = 1; r <= rounds; ++r) {
      const Stats rtt = Summarize(Time(writes, round_trip));
      const Stats aw = Summarize(Time(writes, active_write));
      const Stats ww = Summarize(Time(writes, watched_write));
      const Stats uw = Summarize(Time(writes, uncached_write));
      const Stats ar = Summarize(Time(writes, active_read));
      const Stats wr = Summarize(Time(writes, watched_read));
      const Stats ur = Summarize(Time(writes, uncached_read));
      auto row = [r, &recorded](const char* what, const Stats& s) {
        std::printf("%-6d %-44s %12.1f %12.1f\n", r, what, s.median_us, s.mean_us);
        recorded.push_back(ha_bench::RecordRow(r, what, s.median_us, s.mean_us));
      };
      row("loopback round trip (sys/health)", rtt);
      row("kv write on the active", aw);
      row("kv write through perf standby, watched reads", ww);
      row("kv write through perf standby, uncached", uw);
      row("kv read on the active", ar);
      row("kv read on perf standby, watched reads", wr);
      row("kv read on perf standby, uncached", ur);
      after.push_back(ww.median_us / (aw.median_us + rtt.median_us));
      before.push_back(uw.median_us / (aw.median_us + rtt.median_us));
      std::printf(
          "%-6d perf-standby write / (active write + round trip) = %.2fx watched reads, "
          "%.2fx uncached\n",
          r, after.back(), before.back());
    }
    // Counts, which load does not blur: on each perf standby, the writes forwarded to the active
    // node and the local attempts that got the read-only error first (a write of a kind already
    // refused once is forwarded without one).
    for (auto [c, what] : {std::pair<Connection*, const char*>{&watched, "watched reads"},
                           {&uncached, "uncached"}}) {
      std::string text;
      if (c->Do("GET", "/v1/sys/metrics?format=prometheus", root, "", &text) != 200) {
        Die("metrics");
      }
      auto value = [&text](absl::string_view series) {
        for (absl::string_view line : absl::StrSplit(text, '\n')) {
          if (absl::ConsumePrefix(&line, series) && absl::ConsumePrefix(&line, " ")) {
            double v = 0;
            return absl::SimpleAtod(line, &v) ? v : 0.0;
          }
        }
        return 0.0;
      };
      std::printf("perf standby (%s): %.0f requests forwarded, %.0f local attempts re-sent\n", what,
                  value("bulwark_ha_requests_total{served=\"forwarded\"}"),
                  value("bulwark_ha_readonly_resends_total"));
    }
    const double ratio = Median(after);
    std::printf(
        "median over rounds: %.2fx with watched reads (goal <= 1.50x): %s; %.2fx uncached\n", ratio,
        ratio <= 1.5 ? "met" : "NOT met", Median(before));
    const bool recorded_ok = ha_bench::WriteRecord(
        args, "perf_standby_benchmark", recorded,
        {absl::StrFormat("median over rounds: perf-standby write / (active write + round trip) = "
                         "%.2fx with watched reads (goal <= 1.50x); %.2fx uncached",
                         ratio, Median(before))});
    status = uncached_server.process->Stop(SIGTERM) == 0 &&
                     watched_server.process->Stop(SIGTERM) == 0 &&
                     active_server.process->Stop(SIGTERM) == 0 && recorded_ok
                 ? 0
                 : 1;
  }
  std::filesystem::remove_all(args.dir);
  return status;
}

}  // namespace
}  // namespace bulwark

int main(int argc, char** argv) { return bulwark::Main(argc, argv); }
