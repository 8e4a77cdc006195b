// The PostgreSQL plugin's cost over the database's own: a bare libpq round trip vs the same
// change through the real plugin process (go-plugin's protocol, AutoMTLS gRPC over a unix
// socket, the SDK's dispatcher, the plugin's transaction), side by side in one run against one
// real PostgreSQL 15, interleaved round by round so both sides see the same machine load.
//
//   CREATE ROLE "<u>" WITH LOGIN PASSWORD '<p>' VALID UNTIL '<t>'   (libpq, autocommit)
//   dbplugin.v5.Database/NewUser with that statement                (plugin)
//   ALTER ROLE "<u>" WITH PASSWORD '<p>'                            (libpq, autocommit)
//   dbplugin.v5.Database/UpdateUser (new password, default statement) (plugin)
//
//   bazel run -c opt //examples/postgres:postgres_benchmark -- [--rounds=N]
//
// Prints p50/p90/p99 per operation and the plugin/libpq ratios of the p50s. Not a test: it
// asserts nothing about speed.
#include <grpcpp/grpcpp.h>
#include <postgresql/libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "examples/postgres/testing/benchmark_support.h"
#include "examples/postgres/testing/postgres_server.h"
#include "proto/vault/database.grpc.pb.h"
#include "protocol/handshake.h"
#include "protocol/tls_certs.h"
#include "sdk/serve_config.h"
#include "sdk/testing/plugin_process.h"

namespace bulwark::examples::postgres {
namespace {

using testing::BareConnection;
using testing::PostgresServer;
using testing::PrintReport;
using testing::RoundsFlag;
using testing::Samples;
using testing::TimeUs;

constexpr int kRoundsDefault = 1000;
constexpr int kWarmupRounds = 50;
constexpr absl::Duration kStartTimeout = absl::Seconds(60);
constexpr auto kCallTimeout = std::chrono::seconds(60);
constexpr char kCreation[] =
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "postgres_benchmark: %s\n", what.c_str());
  std::exit(1);
}

std::string PluginBinary() {
  for (const char* var : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    if (const char* root = std::getenv(var); root != nullptr) {
      return absl::StrCat(root, "/bulwark/examples/postgres/postgres_plugin");
    }
  }
  char self[4096];
  const ssize_t len = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0) Die("cannot find the plugin binary");
  return absl::StrCat(std::string(self, len),
                      ".runfiles/bulwark/examples/postgres/postgres_plugin");
}

// The real plugin process, as a Vault host starts it (protocol 6, AutoMTLS).
class PluginHost {
 public:
  void Start(const PostgresServer& pg) {
    absl::StatusOr<protocol::SelfSignedCert> identity = protocol::GenerateSelfSignedCert(
        protocol::KeyType::kP256, protocol::kGoPluginCertValidity, absl::Now());
    if (!identity.ok()) Die(identity.status().ToString());
    const std::vector<std::string> env = {
        absl::StrCat(sdk::kVaultDatabaseCookieKey, "=", sdk::kVaultDatabaseCookieValue),
        "PLUGIN_PROTOCOL_VERSIONS=5,6", absl::StrCat("PLUGIN_UNIX_SOCKET_DIR=", dir_.path()),
        "VAULT_PLUGIN_AUTOMTLS_ENABLED=true",
        absl::StrCat("PLUGIN_CLIENT_CERT=", identity->cert_pem)};
    absl::StatusOr<std::unique_ptr<sdk::testing::PluginProcess>> process =
        sdk::testing::PluginProcess::Start(PluginBinary(), env);
    if (!process.ok()) Die(process.status().ToString());
    process_ = *std::move(process);
    absl::StatusOr<std::string> line = process_->ReadFirstLine(kStartTimeout);
    if (!line.ok()) Die(absl::StrCat(line.status().ToString(), " ", process_->stderr_text()));
    absl::StatusOr<protocol::HandshakeLine> handshake = protocol::ParseHandshakeLine(*line, {5, 6});
    if (!handshake.ok()) Die(handshake.status().ToString());
    absl::StatusOr<std::string> plugin_pem = protocol::CertDerToPem(handshake->server_cert_der);
    if (!plugin_pem.ok()) Die(plugin_pem.status().ToString());
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = *plugin_pem;
    tls.pem_private_key = identity->key_pem;
    tls.pem_cert_chain = identity->cert_pem;
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    stub_ = dbplugin::v5::Database::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("unix:", handshake->address), grpc::SslCredentials(tls), args));

    dbplugin::v5::InitializeRequest init;
    init.set_verify_connection(true);
    auto& fields = *init.mutable_config_data()->mutable_fields();
    fields["connection_url"].set_string_value(pg.TemplatedUrl());
    fields["username"].set_string_value(pg.superuser());
    fields["password"].set_string_value(pg.superuser_password());
    dbplugin::v5::InitializeResponse reply;
    Check(stub_->Initialize(Context().get(), init, &reply), "Initialize");
  }

  std::string NewUser(const std::string& password) {
    dbplugin::v5::NewUserRequest request;
    request.mutable_username_config()->set_display_name("bench");
    request.mutable_username_config()->set_role_name("ro");
    request.set_password(password);
    request.mutable_expiration()->set_seconds(absl::ToUnixSeconds(absl::Now() + absl::Hours(1)));
    request.mutable_statements()->add_commands(kCreation);
    dbplugin::v5::NewUserResponse reply;
    Check(stub_->NewUser(Context().get(), request, &reply), "NewUser");
    return reply.username();
  }

  void ChangePassword(const std::string& username, const std::string& password) {
    dbplugin::v5::UpdateUserRequest request;
    request.set_username(username);
    request.mutable_password()->set_new_password(password);
    dbplugin::v5::UpdateUserResponse reply;
    Check(stub_->UpdateUser(Context().get(), request, &reply), "UpdateUser");
  }

 private:
  std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    context->AddMetadata("multiplex_id", "bench");
    return context;
  }
  static void Check(const grpc::Status& status, const char* what) {
    if (!status.ok()) Die(absl::StrCat(what, ": ", status.error_message()));
  }

  sdk::testing::ShortTempDir dir_;
  std::unique_ptr<sdk::testing::PluginProcess> process_;
  std::unique_ptr<dbplugin::v5::Database::Stub> stub_;
};

// A static, so that Die (std::exit) still stops PostgreSQL.
std::unique_ptr<PostgresServer> g_pg;

int Main(int argc, char** argv) {
  const int rounds = RoundsFlag(argc, argv, kRoundsDefault, "postgres_benchmark");
  absl::StatusOr<std::unique_ptr<PostgresServer>> server = PostgresServer::Start();
  if (!server.ok()) Die(server.status().ToString());
  g_pg = *std::move(server);
  PostgresServer& pg = *g_pg;
  PluginHost plugin;
  plugin.Start(pg);
  BareConnection bare(pg);
  const std::string expiration =
      absl::FormatTime("%Y-%m-%d %H:%M:%S%z", absl::Now() + absl::Hours(1), absl::UTCTimeZone());
  Samples us;
  for (int round = -kWarmupRounds; round < rounds; ++round) {
    const std::string id = absl::StrCat(round + kWarmupRounds);
    const std::string bare_user = absl::StrCat("bare-", id);
    const double create = TimeUs([&] {
      bare.Exec(absl::StrCat("CREATE ROLE \"", bare_user, "\" WITH LOGIN PASSWORD 'pw-A-", id,
                             "' VALID UNTIL '", expiration, "'"));
    });
    std::string plugin_user;
    const double new_user =
        TimeUs([&] { plugin_user = plugin.NewUser(absl::StrCat("pw-B-", id)); });
    const double alter = TimeUs([&] {
      bare.Exec(absl::StrCat("ALTER ROLE \"", bare_user, "\" WITH PASSWORD 'pw-C-", id, "'"));
    });
    const double update =
        TimeUs([&] { plugin.ChangePassword(plugin_user, absl::StrCat("pw-D-", id)); });
    if (round < 0) continue;
    us["libpq CREATE ROLE"].push_back(create);
    us["plugin NewUser"].push_back(new_user);
    us["libpq ALTER ROLE"].push_back(alter);
    us["plugin UpdateUser"].push_back(update);
  }
  std::printf("rounds: %d (after %d warm-up rounds), interleaved\n", rounds, kWarmupRounds);
  PrintReport(us, {"libpq CREATE ROLE", "plugin NewUser", "libpq ALTER ROLE", "plugin UpdateUser"},
              {{"NewUser / CREATE ROLE", "plugin NewUser", "libpq CREATE ROLE"},
               {"UpdateUser / ALTER ROLE", "plugin UpdateUser", "libpq ALTER ROLE"}});
  return 0;
}

}  // namespace
}  // namespace bulwark::examples::postgres

int main(int argc, char** argv) { return bulwark::examples::postgres::Main(argc, argv); }
