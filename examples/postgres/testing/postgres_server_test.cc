// The test PostgreSQL really checks passwords, listens only on its socket, and is gone after
// the handle is destroyed.
#include "examples/postgres/testing/postgres_server.h"

#include <sys/stat.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::examples::postgres::testing {
namespace {

// The query's scalar, or a description of what went wrong.
std::string Scalar(const PostgresServer& pg, absl::string_view sql) {
  absl::StatusOr<std::optional<std::string>> value = pg.QueryAsSuperuser(sql);
  if (!value.ok()) return "error: " + value.status().ToString();
  return value->value_or("NULL");
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

TEST(PostgresServerTest, ChecksPasswordsAndCleansUp) {
  std::string dir;
  {
    absl::StatusOr<std::unique_ptr<PostgresServer>> server = PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    PostgresServer& pg = **server;
    dir = pg.dir();
    EXPECT_LT(pg.socket_dir().size() + sizeof("/.s.PGSQL.65535"), 108u);
    EXPECT_TRUE(Exists(pg.socket_dir() + "/.s.PGSQL." + std::to_string(pg.port())));
    EXPECT_TRUE(pg.TryLogin(pg.superuser(), pg.superuser_password()).ok());
    absl::Status wrong = pg.TryLogin(pg.superuser(), "not-the-password");
    EXPECT_EQ(wrong.code(), absl::StatusCode::kPermissionDenied) << wrong;
    EXPECT_EQ(Scalar(pg, "SELECT current_user"), pg.superuser());
    // No TCP listener: the server was told listen_addresses=''.
    EXPECT_EQ(Scalar(pg, "SHOW listen_addresses"), "");
    EXPECT_EQ(Scalar(pg, "SHOW password_encryption"), "scram-sha-256");
  }
  EXPECT_FALSE(Exists(dir)) << dir << " still exists after the server was stopped";
}

}  // namespace
}  // namespace bulwark::examples::postgres::testing
