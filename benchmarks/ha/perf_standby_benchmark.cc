// A kv write through a performance standby against a kv write on the active node plus one
// loopback round trip, interleaved in rounds in one run, on one etcd (issue 14's goal: <= 1.5x).
// Two `bulwark server`s with cluster ports and performance_standby; one writer, one request at a
// time on a kept-alive connection per server. The write through the perf standby runs the kv
// plugin there, gets the read-only error from its storage, and is re-sent whole to the active
// node over the cluster port (mutual TLS gRPC), which writes it. The round trip is one HTTP GET of
// sys/health on the active node over loopback (the HTTP layer answers it: no storage). Also
// shown: a read on each (the perf standby serves it locally, from etcd).
//
//   bazel run -c opt //benchmarks/ha:perf_standby_benchmark [-- --writes=500 --rounds=5]
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

void Die(const std::string& what) {
  std::fprintf(stderr, "perf_standby_benchmark: %s\n", what.c_str());
  std::exit(1);
}

int Port(server_testing::ServerProcess& server) {
  std::optional<std::string> line = server.WaitForLine("Api Address: http://");
  if (!line || !server.WaitForLine("server started")) Die("server did not start");
  int port = 0;
  (void)absl::SimpleAtoi(line->substr(line->rfind(':') + 1), &port);
  return port;
}

int Main(int argc, char** argv) {
  ha_bench::Args defaults;
  defaults.writes = 500;
  const ha_bench::Args args = ha_bench::ParseArgs(argc, argv, "perf_standby_benchmark", defaults);
  const std::string& bulwark = args.bulwark;
  const std::string& dir = args.dir;
  const int writes = args.writes, rounds = args.rounds;
  int status = 0;
  {
    server_testing::EtcdProcess etcd("bench");
    const std::string config = dir + "/config.json";
    std::ofstream(config) << json{
        {"storage",
         {{"etcd", {{"address", etcd.client_url()}, {"path", "/bench/"}, {"ha_enabled", true}}}}},
        {"listener",
         {{"tcp",
           {{"address", "127.0.0.1:0"},
            {"tls_disable", true},
            {"cluster_address", "127.0.0.1:0"}}}}},
        {"performance_standby", true},
        {"log_level", "warn"},
    }.dump();
    const std::vector<std::string> env = {"PATH=/usr/bin:/bin", "TMPDIR=" + dir};
    server_testing::ServerProcess active_process({bulwark, "server", "-config=" + config}, env);
    const int active_port = Port(active_process);
    Connection active(active_port);
    std::string body;
    if (active.Do("PUT", "/v1/sys/init", "", R"({"secret_shares":1,"secret_threshold":1})",
                  &body) != 200) {
      Die("init: " + body);
    }
    const json init = json::parse(body);
    const std::string root = init["root_token"].get<std::string>();
    const std::string unseal = json{{"key", init["keys"][0].get<std::string>()}}.dump();
    active.Do("PUT", "/v1/sys/unseal", "", unseal);
    for (int i = 0;; ++i) {
      active.Do("GET", "/v1/sys/leader", "", "", &body);
      if (json::parse(body, nullptr, false).value("is_self", false)) break;
      if (i > 600) Die("the first server never became active");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (active.Do("POST", "/v1/sys/mounts/d", root, R"({"type":"kv"})") != 204) Die("mount kv");
    server_testing::ServerProcess perf_process({bulwark, "server", "-config=" + config}, env);
    Connection perf(Port(perf_process));
    perf.Do("PUT", "/v1/sys/unseal", "", unseal);
    for (int i = 0; perf.Do("GET", "/v1/sys/health", "", "") != 473; ++i) {
      if (i > 600) Die("the second server never became a performance standby");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
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
    auto perf_write = write_on(perf, "perf standby");
    auto active_read = read_on(active, "active");
    auto perf_read = read_on(perf, "perf standby");
    Time(100, active_write);  // Warm-up (and every key exists for the reads).
    Time(100, perf_write);
    Time(100, round_trip);

    std::printf("writes per workload per round: %d; kv body %zu bytes\n", writes, kv_body.size());
    std::printf("%-6s %-34s %12s %12s\n", "round", "workload", "median_us", "mean_us");
    std::vector<double> ratios;
    for (int r = 1; r <= rounds; ++r) {
      const Stats rtt = Summarize(Time(writes, round_trip));
      const Stats aw = Summarize(Time(writes, active_write));
      const Stats pw = Summarize(Time(writes, perf_write));
      const Stats ar = Summarize(Time(writes, active_read));
      const Stats pr = Summarize(Time(writes, perf_read));
      auto row = [r](const char* what, const Stats& s) {
        std::printf("%-6d %-34s %12.1f %12.1f\n", r, what, s.median_us, s.mean_us);
      };
      row("loopback round trip (sys/health)", rtt);
      row("kv write on the active", aw);
      row("kv write through the perf standby", pw);
      row("kv read on the active", ar);
      row("kv read on the perf standby (local)", pr);
      const double ratio = pw.median_us / (aw.median_us + rtt.median_us);
      std::printf("%-6d perf-standby write / (active write + round trip) = %.2fx\n", r, ratio);
      ratios.push_back(ratio);
    }
    std::sort(ratios.begin(), ratios.end());
    const double ratio = ratios[ratios.size() / 2];
    std::printf("median over rounds: %.2fx (goal <= 1.50x): %s\n", ratio,
                ratio <= 1.5 ? "met" : "NOT met");
    status = perf_process.Stop(SIGTERM) == 0 && active_process.Stop(SIGTERM) == 0 ? 0 : 1;
  }
  std::filesystem::remove_all(dir);
  return status;
}

}  // namespace
}  // namespace bulwark

int main(int argc, char** argv) { return bulwark::Main(argc, argv); }
