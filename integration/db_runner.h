// For tests: a database plugin "process" that runs the SDK's DatabaseDispatcher over a UserDb on
// the Env's file system, behind the lifecycle manager's runner seam, so a test can kill it or
// cut it off from its database ("down") while everything above is the production code.
#ifndef BULWARK_INTEGRATION_DB_RUNNER_H_
#define BULWARK_INTEGRATION_DB_RUNNER_H_

#include <memory>
#include <string>
#include <utility>

#include "base/env/env.h"
#include "base/status/check.h"
#include "core/lifecycle/runner.h"
#include "examples/userdb/userdb.h"
#include "protocol/wire_names.h"
#include "sdk/database_dispatcher.h"

namespace bulwark::testing_db {

inline constexpr char kDbDir[] = "/db";
inline constexpr char kPlugin[] = "userdb-database-plugin";
inline constexpr char kRootUser[] = "vaultadmin";
inline constexpr char kRootPassword[] = "root-Password-1";

// The database as its administrator sees it, without the engine.
inline examples::userdb::UserDb OpenDb(FileSystem& fs, Random& random) {
  examples::userdb::UserDb db(fs, random, nullptr);
  sdk::InitializeRequest init;
  init.config = {{"connection_url", kDbDir}};
  absl::Status s = db.Initialize(init).status();
  CHECK(s.ok()) << s;
  return db;
}
// The database directory with its root user kRootUser / kRootPassword.
inline void CreateDatabase(FileSystem& fs, Random& random) {
  CHECK_OK(fs.CreateDir(kDbDir, 0755));
  CHECK_OK(fs.SyncDir("/"));
  CHECK_OK(OpenDb(fs, random).CreateUser(kRootUser, kRootPassword));
}
inline bool DbAccepts(FileSystem& fs, Random& random, absl::string_view user,
                      absl::string_view password) {
  absl::StatusOr<bool> ok = OpenDb(fs, random).CheckPassword(user, password);
  return ok.ok() && *ok;
}
inline bool UserExists(FileSystem& fs, Random& random, absl::string_view user) {
  return OpenDb(fs, random).ReadUser(user).ok();
}

// The "database server" as the plugin reaches it: reachable, or not.
struct DbWorld {
  bool down = false;
  int starts = 0;
  int closes = 0;  // dbplugin Close calls (an instance closed).
};

// A plugin process: the SDK's DatabaseDispatcher over UserDb, called on the loop.
class DbRunner final : public lifecycle::PluginRunner, public PluginConnection {
 public:
  DbRunner(Env& env, DbWorld& world)
      : env_(env),
        world_(world),
        dispatcher_(std::make_shared<sdk::DatabaseDispatcher>(
            examples::userdb::UserDbFactory(env.fs, env.random), sdk::DatabaseDispatcherOptions{})),
        dead_(std::make_shared<bool>(false)) {}
  ~DbRunner() override { *dead_ = true; }

  PluginConnection& connection() override { return *this; }
  int64_t pid() const override { return 4242; }
  void SetExitHandler(absl::AnyInvocable<void(std::string)> h) override { exit_ = std::move(h); }
  void Stop(absl::Duration, absl::AnyInvocable<void()> done) override {
    *dead_ = true;
    env_.executor.Post(std::move(done));
  }
  // The process dies by itself.
  void Kill() {
    *dead_ = true;
    if (exit_) env_.executor.Post([h = std::move(exit_)]() mutable { h("killed by signal 9"); });
  }

  void Call(absl::string_view method, std::string request, const CallOptions& options,
            CallDone done) override {
    env_.executor.Post([dead = dead_, d = dispatcher_, world = &world_, m = std::string(method),
                        request = std::move(request), mid = options.multiplex_id,
                        done = std::move(done)]() mutable {
      if (*dead) return done(absl::UnavailableError("connection closed"));
      if (m == protocol::kDatabaseCloseMethod) ++world->closes;
      const bool reaches_db =
          m == protocol::kDatabaseInitializeMethod || m == protocol::kDatabaseNewUserMethod ||
          m == protocol::kDatabaseUpdateUserMethod || m == protocol::kDatabaseDeleteUserMethod;
      if (world->down && reaches_db) {
        return done(absl::InternalError("dial tcp 127.0.0.1:5432: connect: connection refused"));
      }
      done(d->Dispatch(m, request, mid));
    });
  }
  absl::StatusOr<uint32_t> OfferHostServices(HostServices*) override { return 1; }
  void WithdrawHostServices(uint32_t) override {}
  void SetStdioHandler(absl::AnyInvocable<void(int, absl::string_view)>) override {}
  void Close() override { *dead_ = true; }

 private:
  Env& env_;
  DbWorld& world_;
  std::shared_ptr<sdk::DatabaseDispatcher> dispatcher_;
  std::shared_ptr<bool> dead_;
  absl::AnyInvocable<void(std::string)> exit_;
};

class DbRunnerFactory final : public lifecycle::RunnerFactory {
 public:
  DbRunnerFactory(Env& env, DbWorld& world) : env_(env), world_(world) {}
  void Start(catalog::LaunchSpec, const lifecycle::RunnerLimits&,
             absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<lifecycle::PluginRunner>>)>
                 done) override {
    ++world_.starts;
    auto runner = std::make_unique<DbRunner>(env_, world_);
    last = runner.get();
    env_.executor.Post([done = std::move(done), runner = std::move(runner)]() mutable {
      done(std::unique_ptr<lifecycle::PluginRunner>(std::move(runner)));
    });
  }
  DbRunner* last = nullptr;

 private:
  Env& env_;
  DbWorld& world_;
};

}  // namespace bulwark::testing_db

#endif  // BULWARK_INTEGRATION_DB_RUNNER_H_
