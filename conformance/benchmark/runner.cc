// plugin_benchmark's runner: plays the host as Vault does (the conformance harness's launch,
// AutoMTLS, broker and host storage; no second host) and measures one plugin, or two with their
// rounds interleaved (ABBA...), each round on fresh plugin processes. Writes a raw benchmark
// record per plugin (format bulwark-benchmark-record/1: every observation of every round). With
// two plugins, both run side by side in each round and their series alternate (paired);
// report.py adds the summaries, the verdicts against a baseline, the report and the plots.
//
//   runner --plugin=PATH --manifest=FILE --out=RAW.json [--plugin_arg=ARG]...
//          [--baseline_plugin=PATH --baseline_manifest=FILE --baseline_out=RAW.json
//           [--baseline_arg=ARG]...] [--workloads=startup,memory,probe,storage,mux,database]
//          [--quick] [--rounds=N] [--calls=N] [--min_calls=N] [--median_ci=PCT]
//          [--compilation_mode=M] [--target_cpu=C] [--one_process]
//
// Each round runs in a fresh runner process (this binary again with --only_round=K, writing a
// record of that round that the first process merges), so the host side is as fresh per round as
// the plugin; --one_process keeps every round in this process.
// Backend plugins: launch to first call; idle and loaded memory (USS, PSS, VmRSS); per size
// (64 B, 4 KiB, 64 KiB) and caller count (1, 8, 32) the latency of every call and calls/s of a
// read of the manifest's probe path (probe) and of a write to it (storage: the plugin stores
// through the broker); multiplexed scale (1, 100, 1000 mounts on one process: memory and read
// latency), when the manifest claims multiplexing. Database plugins: NewUser, UpdateUser and
// DeleteUser latency against the database the manifest configures. Sizes are reached by
// lengthening the first string field of the probe's write_data (or, without one, adding a
// "bench_padding" field); a probe that refuses it is an error that names it. --quick: one round of
// few calls at 64 B, mounts 1 and 10 (a CI smoke run, not a measurement). A series takes at
// least --min_calls (300) calls, then more until its median's 95% interval is within --median_ci
// (6%, relative width) or it reaches --calls (2000). Progress goes to stderr.
// Exit status 0, 1 when a plugin failed under measurement, 2 for bad usage.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/crypto/sha256.h"
#include "base/memory/malloc_tuning.h"
#include "base/status/status_macros.h"
#include "benchmarks/measure/proc_memory.h"
#include "benchmarks/measure/record.h"
#include "conformance/benchmark/bulwark_host.h"
#include "conformance/suite/conformance.h"
#include "conformance/suite/harness.h"
#include "conformance/suite/manifest.h"
#include "conformance/suite/profile_util.h"
#include "nlohmann/json.hpp"
#include "proto/vault/backend.grpc.pb.h"
#include "proto/vault/database.grpc.pb.h"

namespace bulwark::conformance {
namespace {

using nlohmann::json;

constexpr char kRecordFormat[] = "bulwark-benchmark-record/1";
constexpr char kPaddingField[] = "bench_padding";
const std::vector<std::string>& AllWorkloads() {
  static const auto* all =
      new std::vector<std::string>{"startup", "memory", "probe", "storage", "mux", "database"};
  return *all;
}

// The plan of a run: how many rounds and calls, which sizes, callers and mount counts.
struct Plan {
  int rounds = 5;
  int launches = 3;  // Start-up samples per round.
  // Calls per (size, callers) series per round, split among callers: at least min_calls, then
  // more until the 95% interval of the round's median is within median_ci of it (relative
  // width, both sides together), at most `calls`. The verdicts rest on the spread between
  // rounds (benchlib.py), so a round's median needs no more precision than that spread.
  int calls = 2000;
  int min_calls = 300;
  double median_ci = 0.06;
  int warmup = 20;          // Untimed calls before each series.
  int mux_reads = 300;      // Timed reads at each mount count.
  int db_iterations = 100;  // NewUser/UpdateUser/DeleteUser triples per round.
  std::vector<size_t> sizes = {64, 4096, 65536};
  std::vector<int> callers = {1, 8, 32};
  std::vector<int> mounts = {1, 100, 1000};
  std::set<std::string> workloads;
  bool quick = false;
};

// The memory figures a record keeps for a process, in KiB: USS (private clean + private dirty
// pages of /proc/PID/smaps_rollup), PSS and VmRSS, as benchmarks/measure reads them.
struct ProcessMemory {
  int64_t uss_kib = 0;
  int64_t pss_kib = 0;
  int64_t rss_kib = 0;
};

absl::StatusOr<ProcessMemory> ReadProcessMemory(pid_t pid) {
  absl::StatusOr<measure::ProcessMemory> m = measure::ReadProcessMemory(pid);
  if (!m.ok()) return m.status();
  return ProcessMemory{m->uss_kib(), m->pss_kib, m->vm_rss_kib};
}

// One metric: its observations per round (report.py summarises them).
struct Metric {
  json attrs;  // name, kind, unit, workload and its parameters.
  std::vector<std::vector<double>> rounds;
};

// One plugin under measurement: its configuration and what was measured.
struct Side {
  std::string label;
  SuiteConfig config;
  std::string out_path;
  std::vector<std::string> order;  // Metric names in first-measured order.
  std::map<std::string, Metric> metrics;
  std::vector<std::string> notes;
  std::string failure;

  std::vector<double>& Series(const json& attrs, int round) {
    const std::string name = attrs.at("name").get<std::string>();
    auto [it, inserted] = metrics.try_emplace(name);
    if (inserted) {
      it->second.attrs = attrs;
      order.push_back(name);
    }
    if (it->second.rounds.size() <= static_cast<size_t>(round)) it->second.rounds.resize(round + 1);
    return it->second.rounds[round];
  }
};

std::string SizeText(size_t size) {
  return size >= 1024 && size % 1024 == 0 ? absl::StrCat(size / 1024, " KiB")
                                          : absl::StrCat(size, " B");
}

void Progress(const std::string& text) { std::cerr << "bench: " << text << std::endl; }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[(v.size() - 1) / 2];
}

// The relative width of a distribution-free 95% interval of the median of `v`: the order
// statistics n/2 -+ 1.96 sqrt(n)/2, their distance over the median.
double MedianIntervalWidth(std::vector<double> v) {
  if (v.size() < 2) return INFINITY;
  std::sort(v.begin(), v.end());
  const double n = static_cast<double>(v.size());
  const double half = 1.96 * std::sqrt(n) / 2;
  const size_t lo = static_cast<size_t>(std::max(0.0, std::floor(n / 2 - half)));
  const size_t hi = std::min(v.size() - 1, static_cast<size_t>(std::ceil(n / 2 + half)));
  const double median = v[(v.size() - 1) / 2];
  return median > 0 ? (v[hi] - v[lo]) / median : INFINITY;
}

// The probe's write_data made `size` bytes long (as JSON): its first string field lengthened
// with 'x's, so an engine that accepts only its own fields still takes it; without a string
// field, a "bench_padding" field added. Unchanged when write_data is already that long.
std::string PaddedProbe(size_t size) {
  json data = json::parse(ProbeJson());
  const size_t bare = data.dump().size();
  if (size <= bare) return data.dump();
  for (auto& [key, value] : data.items()) {
    if (value.is_string()) {
      value = value.get<std::string>() + std::string(size - bare, 'x');
      return data.dump();
    }
  }
  const size_t overhead = std::string(kPaddingField).size() + 6;
  if (size > bare + overhead) data[kPaddingField] = std::string(size - bare - overhead, 'x');
  return data.dump();
}

// A plugin started and mounted for a round.
absl::StatusOr<Mounted> Ready() {
  absl::StatusOr<Mounted> r = StartMounted(0, InitializeErrors::kFail);
  if (!r.ok()) return r.status();
  if (!IsDatabase()) {
    auto written = r->plugin->HandleRequest(r->mux, "create", ProbePath(), ProbeJson());
    if (!written.ok()) return written.status();
    if (HasLogicalError(*written)) {
      return absl::FailedPreconditionError(
          absl::StrCat("the probe's create failed: ", Describe(*written)));
    }
  }
  return r;
}

// `op` of the probe path on the harness's host (PluginUnderTest) or bulwark's (BulwarkHost).
template <typename Host>
absl::Status Call(Host& plugin, const std::string& mux, const std::string& op,
                  const std::string& data) {
  auto reply = plugin.HandleRequest(mux, op, ProbePath(), data);
  if (!reply.ok()) return reply.status();
  if (HasLogicalError(*reply)) {
    return absl::FailedPreconditionError(absl::StrCat(
        op, " of the probe path ", ProbePath(), " failed: ", Describe(*reply),
        op == "update"
            ? absl::StrCat(
                  " (the benchmark lengthens write_data's first string field, or adds a \"",
                  kPaddingField, "\" field, to reach each size)")
            : ""));
  }
  return absl::OkStatus();
}

class Runner {
 public:
  explicit Runner(Plan plan) : plan_(std::move(plan)) {}

  // One round over `order` (the plugins in this round's order), each on fresh processes. With
  // two plugins the backend series are paired: both processes run side by side and every
  // (size, callers) series is measured on one, then at once on the other (the first of each
  // pair alternating), so a change in the machine's load within seconds falls on both alike.
  void Round(const std::vector<Side*>& order, int round) {
    for (Side* side : order) {
      if (!side->failure.empty()) continue;
      Use(*side);
      const std::string where = Where(*side, round);
      absl::Status s = Wants("startup") ? Startup(*side, round, where) : absl::OkStatus();
      if (s.ok() && IsDatabase()) s = Database(*side, round, where);
      Fail(*side, where, s);
    }
    Backend(order, round);
    for (Side* side : order) {
      if (!side->failure.empty()) continue;
      Use(*side);
      if (!IsDatabase() && Wants("mux"))
        Fail(*side, Where(*side, round), Mux(*side, round, Where(*side, round)));
    }
  }

 private:
  bool Wants(const std::string& w) const { return plan_.workloads.count(w) > 0; }

  static void Use(const Side& side) { SetConfig(side.config); }

  std::string Where(const Side& side, int round) const {
    return absl::StrCat("round ", round + 1, "/", plan_.rounds, " ", side.label);
  }

  // Records the first failure of a plugin; a failed plugin is measured no further.
  static void Fail(Side& side, const std::string& where, const absl::Status& s) {
    if (s.ok() || !side.failure.empty()) return;
    side.failure = absl::StrCat(where, ": ", s.ToString());
    Progress(absl::StrCat("FAILED: ", side.failure));
  }

  absl::Status Startup(Side& side, int round, const std::string& where) {
    std::vector<double>& ms = side.Series({{"name", "startup/launch to first call"},
                                           {"kind", "duration"},
                                           {"unit", "ms"},
                                           {"workload", "startup"}},
                                          round);
    for (int i = 0; i < plan_.launches; ++i) {
      const absl::Time start = absl::Now();
      absl::StatusOr<Mounted> r = StartMounted(0, InitializeErrors::kFail);
      if (!r.ok()) return r.status();
      if (!IsDatabase()) {
        // The first call a host makes after mounting: a request on the probe path.
        auto reply = r->plugin->HandleRequest(r->mux, "read", ProbePath(), "");
        if (!reply.ok()) return reply.status();
      }
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    }
    Progress(absl::StrCat(where, ": startup: launch to first call ", Median(ms), " ms (median of ",
                          ms.size(), ")"));
    return absl::OkStatus();
  }

  void Memory(Side& side, int round, pid_t pid, const std::string& phase,
              const std::string& where) {
    absl::StatusOr<ProcessMemory> m = ReadProcessMemory(pid);
    if (!m.ok()) {
      side.notes.push_back(absl::StrCat("memory not measured: ", m.status().message()));
      return;
    }
    for (auto [kind, kib] : {std::pair{"uss", m->uss_kib}, std::pair{"pss", m->pss_kib},
                             std::pair{"rss", m->rss_kib}}) {
      side.Series({{"name", absl::StrCat("memory/", phase, "/", absl::AsciiStrToUpper(kind))},
                   {"kind", "memory"},
                   {"unit", "KiB"},
                   {"workload", "memory"},
                   {"phase", phase},
                   {"memory", kind}},
                  round)
          .push_back(static_cast<double>(kib));
    }
    Progress(absl::StrCat(where, ": memory ", phase, ": USS ", m->uss_kib, " KiB, PSS ", m->pss_kib,
                          " KiB, VmRSS ", m->rss_kib, " KiB"));
  }

  // `callers` threads make calls of `op` with `data` until the series has enough (Plan:
  // min_calls, median_ci, calls): the callers keep calling while a check every min_calls / 2
  // calls decides whether to stop, so the load stays constant and calls/s is not diluted by
  // ramps. Every latency and the calls/s of the whole series.
  absl::Status Series(Side& side, int round, Mounted& r, const std::string& workload,
                      const std::string& op, const std::string& data, size_t size, int callers,
                      const std::string& where) {
    for (int i = 0; i < plan_.warmup; ++i) RETURN_IF_ERROR(Call(*r.plugin, r.mux, op, data));
    std::mutex mu;
    std::vector<double> all;  // Guarded by mu.
    all.reserve(plan_.calls);
    size_t next_check = static_cast<size_t>(std::min(plan_.min_calls, plan_.calls));
    const size_t step = static_cast<size_t>(std::max(1, plan_.min_calls / 2));
    double width = INFINITY;  // Guarded by mu: the median's relative interval at the last check.
    std::atomic<int> started{0};
    std::atomic<bool> enough{false};
    std::vector<absl::Status> errors(callers);
    const absl::Time start = absl::Now();
    std::vector<std::thread> threads;
    for (int c = 0; c < callers; ++c) {
      threads.emplace_back([&, c] {
        while (!enough.load() && started.fetch_add(1) < plan_.calls) {
          const absl::Time t = absl::Now();
          absl::Status s = Call(*r.plugin, r.mux, op, data);
          if (!s.ok()) {
            errors[c] = s;
            enough = true;
            return;
          }
          const double us = absl::ToDoubleMicroseconds(absl::Now() - t);
          std::lock_guard<std::mutex> lock(mu);
          all.push_back(us);
          if (all.size() >= next_check) {
            next_check = all.size() + step;
            width = MedianIntervalWidth(all);
            if (width <= plan_.median_ci) enough = true;
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    for (const absl::Status& s : errors) RETURN_IF_ERROR(s);
    width = MedianIntervalWidth(all);
    const std::string base = absl::StrCat(workload, "/", SizeText(size), "/", callers, " caller",
                                          callers == 1 ? "" : "s");
    const json attrs = {{"workload", workload}, {"size_bytes", size}, {"callers", callers}};
    json lat = attrs, tput = attrs;
    lat.update({{"name", base}, {"kind", "latency"}, {"unit", "us"}});
    tput.update({{"name", base + "/calls/s"}, {"kind", "throughput"}, {"unit", "calls/s"}});
    std::vector<double>& samples = side.Series(lat, round);
    samples.insert(samples.end(), all.begin(), all.end());
    const double rate = static_cast<double>(all.size()) / seconds;
    side.Series(tput, round).push_back(rate);
    Progress(absl::StrCat(where, ": ", base, ": p50 ", static_cast<int64_t>(Median(all)), " us, ",
                          static_cast<int64_t>(rate), " calls/s (", all.size(),
                          " calls, median interval ",
                          static_cast<int>(std::round(width * 1000)) / 10.0, "%)"));
    return absl::OkStatus();
  }

  void Backend(const std::vector<Side*>& order, int round) {
    if (!Wants("probe") && !Wants("storage") && !Wants("memory")) return;
    struct Arm {
      Side* side;
      std::optional<Mounted> mounted;
      std::string where;
    };
    std::vector<Arm> arms;
    for (Side* side : order) {
      if (!side->failure.empty()) continue;
      Use(*side);
      if (IsDatabase()) continue;
      Arm arm{side, std::nullopt, Where(*side, round)};
      absl::StatusOr<Mounted> r = Ready();
      absl::Status s = r.status();
      if (s.ok()) s = Call(*r->plugin, r->mux, "read", "");
      Fail(*side, arm.where, s);
      if (!s.ok()) continue;
      arm.mounted = std::move(*r);
      arms.push_back(std::move(arm));
    }
    // Idle memory once every process of the round is up, so that each is measured alike: two
    // processes of one binary share their file pages, and one measured before the other started
    // would count them as private (USS).
    if (Wants("memory")) {
      for (Arm& arm : arms) {
        Use(*arm.side);
        Memory(*arm.side, round, arm.mounted->plugin->pid(), "idle", arm.where);
      }
    }
    int series = 0;
    // Runs `body` on every arm still alive, the first arm alternating from call to call.
    const auto each = [&](auto&& body) {
      for (size_t i = 0; i < arms.size(); ++i) {
        Arm& arm = arms[series % 2 == 0 ? i : arms.size() - 1 - i];
        if (!arm.mounted.has_value()) continue;
        Use(*arm.side);
        absl::Status s = body(arm);
        Fail(*arm.side, arm.where, s);
        if (!s.ok()) arm.mounted.reset();
      }
      ++series;
    };
    for (size_t size : plan_.sizes) {
      if (Wants("probe")) {
        // The stored entry is `size` bytes for a key/value engine, so the read answers as much.
        each([&](Arm& a) {
          return Call(*a.mounted->plugin, a.mounted->mux, "update", PaddedProbe(size));
        });
        for (int callers : plan_.callers) {
          each([&](Arm& a) {
            return Series(*a.side, round, *a.mounted, "probe_read", "read", "", size, callers,
                          a.where);
          });
        }
      }
      if (Wants("storage")) {
        std::map<Side*, size_t> puts_before;
        each([&](Arm& a) {
          sdk::InMemoryHostStorage* storage = a.mounted->plugin->storage(a.mounted->broker_id);
          puts_before[a.side] = storage ? storage->calls("/pb.Storage/Put") : 0;
          return absl::OkStatus();
        });
        for (int callers : plan_.callers) {
          each([&](Arm& a) {
            return Series(*a.side, round, *a.mounted, "storage_write", "update", PaddedProbe(size),
                          size, callers, a.where);
          });
        }
        each([&](Arm& a) {
          sdk::InMemoryHostStorage* storage = a.mounted->plugin->storage(a.mounted->broker_id);
          if (storage != nullptr && storage->calls("/pb.Storage/Put") == puts_before[a.side] &&
              round == 0) {
            a.side->notes.push_back(
                "the probe's writes reached no pb.Storage/Put through the broker: storage_write "
                "measures the plugin's write path without host storage");
          }
          return absl::OkStatus();
        });
      }
    }
    if (Wants("memory")) {
      each([&](Arm& a) {
        Memory(*a.side, round, a.mounted->plugin->pid(), "loaded", a.where);
        return absl::OkStatus();
      });
    }
  }

  absl::Status Mux(Side& side, int round, const std::string& where) {
    if (!Config().manifest.Claims("multiplexing")) {
      if (round == 0) {
        side.notes.push_back("mux not measured: the manifest does not claim multiplexing");
      }
      return absl::OkStatus();
    }
    // bulwark's host (core/rpc), not the harness's: a bulwark SDK plugin then shares one host
    // connection among its mounts (docs/decisions/0006), as it does under a bulwark node.
    const Manifest& manifest = Config().manifest;
    absl::StatusOr<std::unique_ptr<BulwarkHost>> host = BulwarkHost::Start(
        {Config().plugin_path, Config().plugin_args, manifest.env, manifest.protocol_versions,
         manifest.cookie_key(), manifest.cookie_value(), Config().rpc_timeout});
    if (!host.ok()) return host.status();
    BulwarkHost& r = **host;
    last_mux_count_ = 0;
    std::vector<std::string> muxes = {MuxId(0)};
    RETURN_IF_ERROR(r.Mount(muxes[0]));
    RETURN_IF_ERROR(Call(r, muxes[0], "create", ProbeJson()));
    for (int target : plan_.mounts) {
      absl::Status refused = absl::OkStatus();
      while (refused.ok() && static_cast<int>(muxes.size()) < target) {
        const std::string mux = MuxId(static_cast<uint32_t>(muxes.size()));
        refused = r.Mount(mux);
        if (refused.ok()) refused = Call(r, mux, "create", ProbeJson());
        if (refused.ok()) muxes.push_back(mux);
      }
      if (refused.ok()) {
        RETURN_IF_ERROR(MuxAt(side, round, r, muxes, where));
        continue;
      }
      // A plugin may cap its instances (bulwark's SDK serves 64 per process): a finding about
      // the plugin, not a failure of the run. Measured at the most it took; no larger count.
      const absl::string_view why = refused.message();
      if (round == 0) {
        side.notes.push_back(absl::StrCat("mux: mount ", muxes.size() + 1, " of ", target,
                                          " was refused, so the largest count measured is ",
                                          muxes.size(), ": ",
                                          why.substr(0, why.find("; plugin stderr"))));
      }
      Progress(absl::StrCat(where, ": mux: mount ", muxes.size() + 1, " of ", target,
                            " refused; measuring at ", muxes.size(), " and stopping"));
      if (static_cast<int>(muxes.size()) > last_mux_count_) {
        RETURN_IF_ERROR(MuxAt(side, round, r, muxes, where));
      }
      break;
    }
    return absl::OkStatus();
  }

  // Reads spread over `muxes`, and the process's memory, at this mount count.
  absl::Status MuxAt(Side& side, int round, BulwarkHost& r, const std::vector<std::string>& muxes,
                     const std::string& where) {
    const int count = static_cast<int>(muxes.size());
    last_mux_count_ = count;
    const std::string base = absl::StrCat("mux/", count, count == 1 ? " mount" : " mounts");
    std::vector<double>& us = side.Series({{"name", base + "/read"},
                                           {"kind", "latency"},
                                           {"unit", "us"},
                                           {"workload", "mux"},
                                           {"mounts", count}},
                                          round);
    for (int i = 0; i < plan_.mux_reads + plan_.warmup; ++i) {
      const std::string& mux = muxes[static_cast<size_t>(i) % muxes.size()];
      const absl::Time t = absl::Now();
      RETURN_IF_ERROR(Call(r, mux, "read", ""));
      if (i >= plan_.warmup) us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t));
    }
    absl::StatusOr<ProcessMemory> m = ReadProcessMemory(r.pid());
    if (!m.ok()) return m.status();
    if (round == 0 && count == plan_.mounts.back()) {
      side.notes.push_back(
          absl::StrCat("mux: measured on bulwark's host (core/rpc); the plugin had ",
                       r.PluginDescriptors(), " open descriptors at ", count, " mounts"));
    }
    for (auto [kind, kib] : {std::pair{"uss", m->uss_kib}, std::pair{"pss", m->pss_kib},
                             std::pair{"rss", m->rss_kib}}) {
      side.Series({{"name", absl::StrCat(base, "/", absl::AsciiStrToUpper(kind))},
                   {"kind", "memory"},
                   {"unit", "KiB"},
                   {"workload", "mux"},
                   {"mounts", count},
                   {"memory", kind}},
                  round)
          .push_back(static_cast<double>(kib));
    }
    Progress(absl::StrCat(where, ": ", base, ": USS ", m->uss_kib, " KiB, read p50 ",
                          static_cast<int64_t>(Median(us)), " us"));
    return absl::OkStatus();
  }

  absl::Status Database(Side& side, int round, const std::string& where) {
    if (!Wants("database") && !Wants("memory")) return absl::OkStatus();
    absl::StatusOr<Mounted> r = Ready();
    if (!r.ok()) return r.status();
    if (Wants("memory")) Memory(side, round, r->plugin->pid(), "idle", where);
    if (Wants("database")) {
      std::map<std::string, std::vector<double>> us;
      const auto timed = [&](const std::string& op, auto&& rpc) -> absl::Status {
        auto ctx = r->plugin->NewContext(r->mux);
        const absl::Time t = absl::Now();
        const grpc::Status s = rpc(ctx.get());
        us[op].push_back(absl::ToDoubleMicroseconds(absl::Now() - t));
        if (!s.ok()) {
          return Annotate(PluginUnderTest::FromGrpc(s), absl::StrCat("dbplugin.v5.Database/", op));
        }
        return absl::OkStatus();
      };
      for (int i = 0; i < plan_.db_iterations; ++i) {
        const std::string password = absl::StrCat("Bench-", round, "-", i, "-Aa1!");
        dbplugin::v5::NewUserRequest create;
        create.mutable_username_config()->set_display_name("bench");
        create.mutable_username_config()->set_role_name("bench-role");
        create.set_password(password);
        create.mutable_expiration()->set_seconds(absl::ToUnixSeconds(absl::Now() + absl::Hours(1)));
        for (const std::string& statement : Config().manifest.database_creation_statements) {
          create.mutable_statements()->add_commands(statement);
        }
        dbplugin::v5::NewUserResponse created;
        RETURN_IF_ERROR(timed("NewUser", [&](grpc::ClientContext* c) {
          return r->database->NewUser(c, create, &created);
        }));
        dbplugin::v5::UpdateUserRequest update;
        update.set_username(created.username());
        update.mutable_password()->set_new_password(password + "2");
        dbplugin::v5::UpdateUserResponse updated;
        RETURN_IF_ERROR(timed("UpdateUser", [&](grpc::ClientContext* c) {
          return r->database->UpdateUser(c, update, &updated);
        }));
        dbplugin::v5::DeleteUserRequest remove;
        remove.set_username(created.username());
        dbplugin::v5::DeleteUserResponse removed;
        RETURN_IF_ERROR(timed("DeleteUser", [&](grpc::ClientContext* c) {
          return r->database->DeleteUser(c, remove, &removed);
        }));
      }
      for (const std::string op : {"NewUser", "UpdateUser", "DeleteUser"}) {
        std::vector<double>& series = side.Series({{"name", "database/" + op},
                                                   {"kind", "latency"},
                                                   {"unit", "us"},
                                                   {"workload", "database"},
                                                   {"operation", op}},
                                                  round);
        series.insert(series.end(), us[op].begin(), us[op].end());
        Progress(absl::StrCat(where, ": database/", op, ": p50 ",
                              static_cast<int64_t>(Median(us[op])), " us"));
      }
    }
    if (Wants("memory")) Memory(side, round, r->plugin->pid(), "loaded", where);
    return absl::OkStatus();
  }

  Plan plan_;
  int last_mux_count_ = 0;  // The largest mount count measured in this round's Mux.
};

// The plugin's path as a record keeps it: a Bazel output is named by its path under bin/, so a
// record names no directory of the machine that made it.
std::string RecordedPath(const std::string& path) {
  const size_t out = path.find("/bazel-out/");
  if (out == std::string::npos) return path;
  const size_t bin = path.find("/bin/", out);
  return bin == std::string::npos ? path : path.substr(bin + 5);
}

json RecordOf(const Side& side, const Plan& plan, const json& build, const json& machine,
              const std::string& started, double elapsed_s, const std::string& interleaved_with) {
  json metrics = json::array();
  for (const std::string& name : side.order) {
    json m = side.metrics.at(name).attrs;
    m["rounds"] = side.metrics.at(name).rounds;
    metrics.push_back(std::move(m));
  }
  json record = {
      {"format", kRecordFormat},
      {"label", side.label},
      {"plugin",
       {{"path", RecordedPath(side.config.plugin_path)},
        {"sha256", side.config.plugin_sha256},
        {"args", side.config.plugin_args}}},
      {"manifest",
       {{"name", side.config.manifest.name}, {"type", IsDatabase() ? "database" : "backend"}}},
      {"build", build},
      {"machine", machine},
      {"started", started},
      {"elapsed_s", std::round(elapsed_s)},
      {"run_mode", plan.quick ? "quick" : "full"},
      {"rounds", plan.rounds},
      {"plan",
       {{"calls_max", plan.calls},
        {"calls_min", plan.min_calls},
        {"median_ci", plan.median_ci},
        {"launches", plan.launches},
        {"warmup", plan.warmup}}},
      {"workloads", std::vector<std::string>(plan.workloads.begin(), plan.workloads.end())},
      {"notes", side.notes},
      {"metrics", metrics},
  };
  if (!interleaved_with.empty()) record["interleaved_with"] = interleaved_with;
  if (!side.failure.empty()) record["failure"] = side.failure;
  return record;
}

// Adds round `round` of a round process's record (RunRoundsInProcesses) to `side`: that round's
// observations of every metric, the notes not yet kept, and its failure.
void MergeRound(Side& side, const json& record, int round) {
  for (const json& m : record.at("metrics")) {
    const json& rounds = m.at("rounds");
    if (rounds.size() <= static_cast<size_t>(round)) continue;
    json attrs = m;
    attrs.erase("rounds");
    std::vector<double>& series = side.Series(attrs, round);
    for (const json& v : rounds[round]) series.push_back(v.get<double>());
  }
  for (const json& note : record.value("notes", json::array())) {
    if (std::find(side.notes.begin(), side.notes.end(), note.get<std::string>()) ==
        side.notes.end()) {
      side.notes.push_back(note.get<std::string>());
    }
  }
  if (record.contains("failure") && side.failure.empty()) {
    side.failure = record["failure"].get<std::string>();
  }
}

// Runs each round in a fresh runner process (this binary again, with --only_round=K), so that
// the host's own state is per round like the plugin's: the host serves the plugin's storage
// calls and drives up to 32 callers, and its heap, its allocator arenas and its threads' CPUs
// would otherwise be shared by every round of a run while differing between runs (an effect no
// interval from the rounds of one run could cover). A side that failed is skipped in later
// rounds (--skip_side).
void RunRoundsInProcesses(std::vector<Side>& sides, int rounds,
                          const std::vector<std::string>& passed) {
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::string> args = {"/proc/self/exe"};
    args.insert(args.end(), passed.begin(), passed.end());
    args.push_back(absl::StrCat("--only_round=", round));
    std::vector<std::string> outs;
    for (size_t k = 0; k < sides.size(); ++k) {
      outs.push_back(absl::StrCat(sides[k].out_path, ".round", round));
      args.push_back(absl::StrCat(k == 0 ? "--out=" : "--baseline_out=", outs.back()));
      if (!sides[k].failure.empty()) args.push_back(absl::StrCat("--skip_side=", k));
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::cout.flush();
    std::cerr.flush();
    const pid_t pid = fork();
    if (pid == 0) {
      execv("/proc/self/exe", argv.data());
      _exit(127);
    }
    int wstatus = 0;
    const bool waited = pid > 0 && waitpid(pid, &wstatus, 0) == pid;
    const std::string how =
        !waited                ? "could not be started"
        : WIFEXITED(wstatus)   ? absl::StrCat("exited with status ", WEXITSTATUS(wstatus))
        : WIFSIGNALED(wstatus) ? absl::StrCat("was killed by signal ", WTERMSIG(wstatus))
                               : "ended";
    for (size_t k = 0; k < sides.size(); ++k) {
      std::string text;
      json record;
      if (ReadWholeFile(outs[k], &text)) record = json::parse(text, nullptr, false);
      ::unlink(outs[k].c_str());
      if (record.is_object() && record.contains("metrics")) {
        MergeRound(sides[k], record, round);
      } else if (sides[k].failure.empty()) {
        sides[k].failure = absl::StrCat("round ", round + 1, ": the round's runner process ", how,
                                        " without a record");
        Progress(absl::StrCat("FAILED: ", sides[k].failure));
      }
    }
  }
}

int Usage(absl::string_view error) {
  std::cerr << "runner: " << error << "\n"
            << "usage: runner --plugin=PATH --manifest=FILE --out=RAW.json [--plugin_arg=ARG]...\n"
               "       [--baseline_plugin=PATH [--baseline_manifest=FILE] --baseline_out=RAW.json\n"
               "        [--baseline_arg=ARG]...] [--workloads=W,...] [--quick] [--rounds=N]\n"
               "       [--calls=N] [--min_calls=N] [--median_ci=PCT] [--compilation_mode=M]\n"
               "       [--target_cpu=C] [--one_process]\n"
               "  workloads: "
            << absl::StrJoin(AllWorkloads(), ",") << "\n";
  return 2;
}

// Fills `side.config` from a plugin path and manifest file; "" or the problem.
std::string Configure(Side& side, const std::string& plugin, const std::vector<std::string>& args,
                      const std::string& manifest_path) {
  if (access(plugin.c_str(), X_OK) != 0) return absl::StrCat(plugin, " is not an executable file");
  std::string binary;
  if (!ReadWholeFile(plugin, &binary)) return absl::StrCat("cannot read ", plugin);
  if (!ReadWholeFile(manifest_path, &side.config.manifest_text)) {
    return absl::StrCat("cannot read the manifest ", manifest_path);
  }
  absl::StatusOr<Manifest> manifest = ParseManifest(side.config.manifest_text);
  if (!manifest.ok()) return absl::StrCat(manifest_path, ": ", manifest.status().message());
  side.config.manifest = *manifest;
  side.config.plugin_path = plugin;
  side.config.plugin_args = args;
  side.config.plugin_sha256 = crypto::HexEncode(crypto::Sha256::Hash(binary));
  side.config.seed = 1;
  // Hang guards, not timing checks: a call slower than this is a failure of the plugin.
  side.config.rpc_timeout = absl::Seconds(60);
  side.config.launch_timeout = absl::Seconds(60);
  side.label = manifest->name;
  return "";
}

int Main(int argc, char** argv) {
  std::string plugin, manifest, out, base_plugin, base_manifest, base_out;
  std::vector<std::string> plugin_args, base_args;
  json build = {{"compilation_mode", "unknown"}, {"target_cpu", "unknown"}};
  Plan plan;
  std::optional<int> rounds, calls, min_calls;
  std::string workloads;
  // The host's side of every call as in `bulwark server`: freed message memory kept for the
  // next call (base/memory/malloc_tuning.h).
  TuneMallocForMessages();
  int only_round = -1;       // A round process: measure this round only (RunRoundsInProcesses).
  std::set<int> skip_sides;  // A round process: sides that failed in an earlier round.
  bool one_process = false;
  std::vector<std::string> passed;  // The arguments a round process gets again.
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (!absl::StartsWith(arg, "--out=") && !absl::StartsWith(arg, "--baseline_out=") &&
        !absl::StartsWith(arg, "--only_round=") && !absl::StartsWith(arg, "--skip_side=")) {
      passed.emplace_back(arg);
    }
    std::string* target = nullptr;
    if (absl::ConsumePrefix(&arg, "--plugin="))
      target = &plugin;
    else if (absl::ConsumePrefix(&arg, "--manifest="))
      target = &manifest;
    else if (absl::ConsumePrefix(&arg, "--out="))
      target = &out;
    else if (absl::ConsumePrefix(&arg, "--baseline_plugin="))
      target = &base_plugin;
    else if (absl::ConsumePrefix(&arg, "--baseline_manifest="))
      target = &base_manifest;
    else if (absl::ConsumePrefix(&arg, "--baseline_out="))
      target = &base_out;
    else if (absl::ConsumePrefix(&arg, "--workloads="))
      target = &workloads;
    if (target != nullptr) {
      *target = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--plugin_arg=")) {
      plugin_args.emplace_back(arg);
    } else if (absl::ConsumePrefix(&arg, "--baseline_arg=")) {
      base_args.emplace_back(arg);
    } else if (arg == "--quick") {
      plan.quick = true;
    } else if (arg == "--one_process") {
      one_process = true;
    } else if (absl::ConsumePrefix(&arg, "--only_round=")) {
      if (!absl::SimpleAtoi(arg, &only_round) || only_round < 0) {
        return Usage("--only_round: expected a round index");
      }
    } else if (absl::ConsumePrefix(&arg, "--skip_side=")) {
      int k = 0;
      if (!absl::SimpleAtoi(arg, &k) || k < 0 || k > 1)
        return Usage("--skip_side: expected 0 or 1");
      skip_sides.insert(k);
    } else if (absl::ConsumePrefix(&arg, "--rounds=")) {
      int n = 0;
      if (!absl::SimpleAtoi(arg, &n) || n < 1 || n > 100) return Usage("--rounds: expected 1..100");
      rounds = n;
    } else if (absl::ConsumePrefix(&arg, "--calls=")) {
      int n = 0;
      if (!absl::SimpleAtoi(arg, &n) || n < 1 || n > 1000000) {
        return Usage("--calls: expected 1..1000000");
      }
      calls = n;
    } else if (absl::ConsumePrefix(&arg, "--min_calls=")) {
      int n = 0;
      if (!absl::SimpleAtoi(arg, &n) || n < 1 || n > 1000000) {
        return Usage("--min_calls: expected 1..1000000");
      }
      min_calls = n;
    } else if (absl::ConsumePrefix(&arg, "--median_ci=")) {
      double pct = 0;
      if (!absl::SimpleAtod(arg, &pct) || !(pct >= 0 && pct <= 100)) {
        return Usage("--median_ci: expected a percentage, 0..100");
      }
      plan.median_ci = pct / 100;
    } else if (absl::ConsumePrefix(&arg, "--compilation_mode=")) {
      build["compilation_mode"] = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--target_cpu=")) {
      build["target_cpu"] = std::string(arg);
    } else {
      return Usage(absl::StrCat("unknown argument ", arg));
    }
  }
  if (plugin.empty() || manifest.empty() || out.empty()) {
    return Usage("--plugin, --manifest and --out are required");
  }
  if (!base_plugin.empty() && base_out.empty())
    return Usage("--baseline_plugin needs --baseline_out");
  if (plan.quick) {
    plan.rounds = 1;
    plan.launches = 1;
    plan.calls = 64;
    plan.min_calls = 64;
    plan.warmup = 5;
    plan.mux_reads = 50;
    plan.db_iterations = 10;
    plan.sizes = {64};
    plan.mounts = {1, 10};
  }
  if (rounds) plan.rounds = *rounds;
  if (calls) plan.calls = *calls;
  if (min_calls) plan.min_calls = *min_calls;
  if (workloads.empty()) {
    plan.workloads.insert(AllWorkloads().begin(), AllWorkloads().end());
  } else {
    for (absl::string_view w : absl::StrSplit(workloads, ',', absl::SkipEmpty())) {
      if (std::find(AllWorkloads().begin(), AllWorkloads().end(), w) == AllWorkloads().end()) {
        return Usage(absl::StrCat("--workloads: unknown workload '", w, "'"));
      }
      plan.workloads.emplace(w);
    }
  }

  std::vector<Side> sides(base_plugin.empty() ? 1 : 2);
  if (std::string e = Configure(sides[0], plugin, plugin_args, manifest); !e.empty()) {
    return Usage(e);
  }
  sides[0].out_path = out;
  if (!base_plugin.empty()) {
    if (std::string e = Configure(sides[1], base_plugin, base_args,
                                  base_manifest.empty() ? manifest : base_manifest);
        !e.empty()) {
      return Usage(absl::StrCat("baseline: ", e));
    }
    sides[1].out_path = base_out;
    if (sides[1].label == sides[0].label) sides[1].label += " (baseline)";
    if (sides[1].config.manifest.is_backend() != sides[0].config.manifest.is_backend()) {
      return Usage("the baseline plugin is not of the same kind (backend or database)");
    }
  }
  signal(SIGPIPE, SIG_IGN);

  const json machine = measure::MachineDescription();
  const std::string started =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  if (only_round < 0)
    Progress(absl::StrCat(
        "measuring ", sides[0].label,
        sides.size() > 1 ? absl::StrCat(" against ", sides[1].label, ", rounds interleaved") : "",
        ": ", plan.rounds, " round(s), workloads ", absl::StrJoin(plan.workloads, ","),
        plan.quick ? " (quick)" : "", "; build ", build["compilation_mode"].get<std::string>(),
        "; load average ", machine["load_average"].dump()));
  const absl::Time begin = absl::Now();
  if (only_round < 0 && !one_process && plan.rounds > 1) {
    RunRoundsInProcesses(sides, plan.rounds, passed);
  } else {
    for (int k : skip_sides) {
      if (static_cast<size_t>(k) < sides.size()) sides[k].failure = "failed in an earlier round";
    }
    Runner runner(plan);
    for (int round = 0; round < plan.rounds; ++round) {
      if (only_round >= 0 && round != only_round) continue;
      // ABBA: each plugin goes first in every other round (and, within a round, in every other
      // series), so a drift in the machine's load weighs on both alike.
      std::vector<Side*> order;
      for (size_t k = 0; k < sides.size(); ++k) {
        order.push_back(&sides[round % 2 == 0 ? k : sides.size() - 1 - k]);
      }
      runner.Round(order, round);
    }
  }
  int status = 0;
  for (size_t k = 0; k < sides.size(); ++k) {
    SetConfig(sides[k].config);
    const json record = RecordOf(sides[k], plan, build, machine, started,
                                 absl::ToDoubleSeconds(absl::Now() - begin),
                                 sides.size() > 1 ? sides[1 - k].label : "");
    std::ofstream(sides[k].out_path) << record.dump() << "\n";
    if (!sides[k].failure.empty()) status = 1;
  }
  if (only_round < 0)
    Progress(absl::StrCat("done in ",
                          static_cast<int64_t>(absl::ToDoubleSeconds(absl::Now() - begin)), " s",
                          status ? " with a failure (in the record)" : ""));
  return status;
}

}  // namespace
}  // namespace bulwark::conformance

int main(int argc, char** argv) { return bulwark::conformance::Main(argc, argv); }
