// What the PostgreSQL benchmarks share (examples/postgres:postgres_benchmark,
// server/e2e:postgres_benchmark): a kept libpq connection as the superuser for the bare side, a
// microsecond timer and percentiles. Benchmarks only; errors end the process with a message.
#ifndef BULWARK_EXAMPLES_POSTGRES_TESTING_BENCHMARK_SUPPORT_H_
#define BULWARK_EXAMPLES_POSTGRES_TESTING_BENCHMARK_SUPPORT_H_

#include <postgresql/libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "examples/postgres/testing/postgres_server.h"

namespace bulwark::examples::postgres::testing {

[[noreturn]] inline void BenchmarkDie(const char* benchmark, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", benchmark, what.c_str());
  std::exit(1);
}

// The benchmark's one flag, --rounds=N (N >= 1); anything else ends the process with the usage.
inline int RoundsFlag(int argc, char** argv, int default_rounds, const char* benchmark) {
  int rounds = default_rounds;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (!absl::ConsumePrefix(&arg, "--rounds=") || !absl::SimpleAtoi(arg, &rounds) || rounds < 1) {
      BenchmarkDie(benchmark, absl::StrCat("unknown argument ", argv[i], " (usage: [--rounds=N])"));
    }
  }
  return rounds;
}

// A kept libpq connection as the superuser, with the password it has when constructed.
class BareConnection {
 public:
  explicit BareConnection(const PostgresServer& pg) {
    const std::string port = absl::StrCat(pg.port());
    const char* keys[] = {"host", "port", "dbname", "user", "password", nullptr};
    const char* values[] = {pg.socket_dir().c_str(),         port.c_str(),
                            pg.database().c_str(),           pg.superuser().c_str(),
                            pg.superuser_password().c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, 0);
    if (PQstatus(conn_) != CONNECTION_OK) BenchmarkDie("libpq", PQerrorMessage(conn_));
  }
  ~BareConnection() { PQfinish(conn_); }
  BareConnection(const BareConnection&) = delete;
  BareConnection& operator=(const BareConnection&) = delete;

  // Runs one statement (autocommit); a failure ends the process.
  void Exec(const std::string& sql) {
    PGresult* result = PQexec(conn_, sql.c_str());
    if (PQresultStatus(result) != PGRES_COMMAND_OK) {
      BenchmarkDie("libpq", PQresultErrorMessage(result));
    }
    PQclear(result);
  }

 private:
  PGconn* conn_ = nullptr;
};

// The p-quantile (0..1) of `samples`.
inline double Percentile(std::vector<double> samples, double p) {
  std::sort(samples.begin(), samples.end());
  return samples[std::min(samples.size() - 1, static_cast<size_t>(p * samples.size()))];
}

// How long f() takes, in microseconds.
template <typename F>
double TimeUs(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  std::forward<F>(f)();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
      .count();
}

using Samples = std::map<std::string, std::vector<double>>;

// Prints p50/p90/p99 of each named operation, then each ratio's p50s ("label: x.xx").
struct Ratio {
  const char* label;
  const char* over;
  const char* under;
};
inline void PrintReport(Samples& us, const std::vector<const char*>& names,
                        const std::vector<Ratio>& ratios) {
  std::printf("%-20s %10s %10s %10s\n", "operation", "p50 us", "p90 us", "p99 us");
  for (const char* name : names) {
    const std::vector<double>& s = us[name];
    std::printf("%-20s %10.0f %10.0f %10.0f\n", name, Percentile(s, 0.5), Percentile(s, 0.9),
                Percentile(s, 0.99));
  }
  for (const Ratio& r : ratios) {
    std::printf("p50 ratio %s: %.2f\n", r.label,
                Percentile(us[r.over], 0.5) / Percentile(us[r.under], 0.5));
  }
}

}  // namespace bulwark::examples::postgres::testing

#endif  // BULWARK_EXAMPLES_POSTGRES_TESTING_BENCHMARK_SUPPORT_H_
