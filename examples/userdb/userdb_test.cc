// UserDb on the simulator's file system: connection verification, username template, salted
// hashes (never the password), crash safety of every write, idempotent delete, and the
// errors Vault sees through the SDK's dispatcher.
#include "examples/userdb/userdb.h"

#include <cstdlib>
#include <iostream>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "base/env/sim/sim_file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/vault/database.pb.h"
#include "sdk/database_dispatcher.h"

namespace bulwark::examples::userdb {
namespace {

using ::testing::HasSubstr;

uint64_t Seed() {
  uint64_t seed = 20240611;
  if (const char* text = std::getenv("USERDB_TEST_SEED"); text != nullptr) {
    (void)absl::SimpleAtoi(text, &seed);
  }
  return seed;
}

// Forwards to another FileSystem; Rename fails while `fail_renames` is set (a crash or I/O
// error between writing the temp file and publishing it).
class FlakyFileSystem final : public FileSystem {
 public:
  explicit FlakyFileSystem(FileSystem& base) : base_(base) {}
  bool fail_renames = false;

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(absl::string_view p) override {
    return base_.NewWritableFile(p);
  }
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(absl::string_view p) override {
    return base_.OpenForRead(p);
  }
  absl::StatusOr<std::unique_ptr<ExecutableFile>> OpenForExec(absl::string_view p) override {
    return base_.OpenForExec(p);
  }
  absl::Status Rename(absl::string_view from, absl::string_view to) override {
    if (fail_renames) return absl::DataLossError("injected rename failure");
    return base_.Rename(from, to);
  }
  absl::Status Remove(absl::string_view p) override { return base_.Remove(p); }
  absl::Status CreateDir(absl::string_view p, uint32_t mode) override {
    return base_.CreateDir(p, mode);
  }
  absl::Status RemoveDir(absl::string_view p) override { return base_.RemoveDir(p); }
  absl::StatusOr<std::vector<std::string>> ListDir(absl::string_view p) override {
    return base_.ListDir(p);
  }
  absl::StatusOr<FileInfo> Stat(absl::string_view p) override { return base_.Stat(p); }
  absl::StatusOr<FileInfo> Lstat(absl::string_view p) override { return base_.Lstat(p); }
  absl::Status SyncDir(absl::string_view p) override { return base_.SyncDir(p); }
  absl::StatusOr<std::string> RealPath(absl::string_view p) override { return base_.RealPath(p); }
  absl::Status CreateSymlink(absl::string_view t, absl::string_view l) override {
    return base_.CreateSymlink(t, l);
  }
  absl::Status SetMode(absl::string_view p, uint32_t mode) override {
    return base_.SetMode(p, mode);
  }

 private:
  FileSystem& base_;
};

// "v-<display>-<role>-<suffix>": display and role up to 16 of [a-z0-9_], suffix 10 of [0-9a-z].
bool MatchesTemplate(const std::string& name) {
  std::vector<std::string> parts = absl::StrSplit(name, '-');
  auto only = [](const std::string& text, const char* allowed) {
    return text.find_first_not_of(allowed) == std::string::npos;
  };
  constexpr const char* kPart = "abcdefghijklmnopqrstuvwxyz0123456789_";
  return parts.size() == 4 && parts[0] == "v" && parts[1].size() <= 16 && only(parts[1], kPart) &&
         parts[2].size() <= 16 && only(parts[2], kPart) && parts[3].size() == 10 &&
         only(parts[3], "abcdefghijklmnopqrstuvwxyz0123456789");
}

class UserDbTest : public ::testing::Test {
 protected:
  UserDbTest() : random_(Seed()), crash_random_(Seed() + 1), sim_(crash_random_), fs_(sim_) {
    std::cout << "seed: " << Seed() << " (set USERDB_TEST_SEED to replay)\n";
    EXPECT_TRUE(sim_.CreateDir("/db", 0700).ok());
    EXPECT_TRUE(sim_.SyncDir("/").ok());
    db_ = std::make_unique<UserDb>(fs_, random_, &log_);
  }

  void Init(const std::string& dir = "/db", bool verify = true) {
    sdk::InitializeRequest request;
    request.config = {{"connection_url", dir}};
    request.verify_connection = verify;
    absl::StatusOr<sdk::InitializeResponse> response = db_->Initialize(request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->config, request.config);
  }

  std::string NewUser(const std::string& password, const std::string& display = "token",
                      const std::string& role = "readonly") {
    sdk::NewUserRequest request;
    request.username_config = {display, role};
    request.password = password;
    absl::StatusOr<sdk::NewUserResponse> response = db_->NewUser(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->username : "";
  }

  absl::Status ChangePassword(const std::string& username, const std::string& password) {
    sdk::UpdateUserRequest request;
    request.username = username;
    request.password = sdk::ChangePassword{password, {}};
    return db_->UpdateUser(request);
  }

  std::string FileText(const std::string& username) {
    absl::StatusOr<std::string> text = sim_.ReadFile("/db/" + username + ".user");
    return text.ok() ? *text : "";
  }

  SeededRandom random_;
  SeededRandom crash_random_;
  sim::SimFileSystem sim_;
  FlakyFileSystem fs_;
  MemoryLogSink log_;
  std::unique_ptr<UserDb> db_;
};

TEST_F(UserDbTest, InitializeRequiresConnectionUrl) {
  sdk::InitializeRequest request;
  request.config = {{"username", "x"}};
  EXPECT_EQ(db_->Initialize(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.config = {{"connection_url", 7}};
  EXPECT_EQ(db_->Initialize(request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(UserDbTest, VerificationChecksTheDirectoryOnlyWhenAsked) {
  sdk::InitializeRequest request;
  request.config = {{"connection_url", "/missing"}};
  request.verify_connection = true;
  absl::Status missing = db_->Initialize(request).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("/missing"));

  ASSERT_TRUE(sim_.WriteFileDurably("/plain", "x").ok());
  request.config = {{"connection_url", "/plain"}};
  absl::Status file = db_->Initialize(request).status();
  EXPECT_EQ(file.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(file.message()), HasSubstr("not a directory"));

  request.config = {{"connection_url", "/missing"}};
  request.verify_connection = false;
  EXPECT_TRUE(db_->Initialize(request).ok()) << "without verification nothing is checked";
}

TEST_F(UserDbTest, VerificationLogsInAsTheConfiguredRootUser) {
  Init();
  ASSERT_TRUE(db_->CreateUser("vaultadmin", "root-pw").ok());
  auto connect = [&](const std::string& password, bool verify) {
    UserDb other(fs_, random_, &log_);
    sdk::InitializeRequest request;
    request.config = {
        {"connection_url", "/db"}, {"username", "vaultadmin"}, {"password", password}};
    request.verify_connection = verify;
    return other.Initialize(request).status();
  };
  EXPECT_TRUE(connect("root-pw", true).ok());
  absl::Status wrong = connect("wrong", true);
  EXPECT_EQ(wrong.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(wrong.message(),
            "cannot verify connection: password authentication failed for user \"vaultadmin\"");
  EXPECT_TRUE(connect("wrong", false).ok()) << "without verification nothing is checked";
  EXPECT_FALSE(db_->CreateUser("Bad Name", "pw").ok());
}

TEST_F(UserDbTest, VerificationLeavesNoProbeBehind) {
  Init();
  absl::StatusOr<std::vector<std::string>> entries = sim_.ListDir("/db");
  ASSERT_TRUE(entries.ok());
  EXPECT_THAT(*entries, ::testing::IsEmpty());
}

TEST_F(UserDbTest, CallsBeforeInitializeOrAfterCloseFail) {
  sdk::NewUserRequest request;
  request.password = "pw";
  EXPECT_EQ(db_->NewUser(request).status().code(), absl::StatusCode::kFailedPrecondition);
  Init();
  ASSERT_TRUE(db_->Close().ok());
  EXPECT_EQ(db_->NewUser(request).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(db_->DeleteUser({"v-x", {}}).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(UserDbTest, UsernamesFollowTheTemplateAreCappedAndUnique) {
  Init();
  std::set<std::string> names;
  for (int i = 0; i < 50; ++i) {
    const std::string name =
        NewUser("pw", "Token With Spaces & Symbols!", "a-very-long-role-name-beyond-sixteen");
    EXPECT_TRUE(MatchesTemplate(name)) << name;
    EXPECT_LE(name.size(), kUsernameBytesMax);
    EXPECT_TRUE(IsValidUsername(name)) << name;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), 50u);
}

TEST_F(UserDbTest, PasswordsAreSaltedHashesNeverStoredOrLogged) {
  Init();
  const std::string a = NewUser("correct horse battery");
  const std::string b = NewUser("correct horse battery");
  EXPECT_THAT(FileText(a), ::testing::Not(HasSubstr("correct horse")));
  absl::StatusOr<UserRecord> ra = db_->ReadUser(a);
  absl::StatusOr<UserRecord> rb = db_->ReadUser(b);
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_NE(ra->password_sha256_hex, rb->password_sha256_hex) << "the salt must differ";
  EXPECT_EQ(db_->CheckPassword(a, "correct horse battery").value_or(false), true);
  EXPECT_EQ(db_->CheckPassword(a, "wrong").value_or(true), false);
  for (const LogRecord& record : log_.records()) {
    EXPECT_THAT(record.message, ::testing::Not(HasSubstr("correct horse")));
    for (const auto& [key, value] : record.fields) {
      EXPECT_THAT(value, ::testing::Not(HasSubstr("correct horse")));
    }
  }
}

TEST_F(UserDbTest, NewUserRejectsOtherCredentialsAndEmptyPasswords) {
  Init();
  sdk::NewUserRequest request;
  request.credential_type = sdk::CredentialType::kRsaPrivateKey;
  request.public_key = "PEM";
  EXPECT_EQ(db_->NewUser(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.credential_type = sdk::CredentialType::kPassword;
  request.password = "";
  EXPECT_EQ(db_->NewUser(request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(UserDbTest, ANewUserSurvivesACrashRightAfterwards) {
  Init();
  const std::string name = NewUser("pw1");
  sim_.Crash(sim::CrashMode::kTearUnsynced);
  EXPECT_EQ(db_->CheckPassword(name, "pw1").value_or(false), true);
}

TEST_F(UserDbTest, UpdatesAreAtomicAndDurable) {
  Init();
  const std::string name = NewUser("old");
  ASSERT_TRUE(ChangePassword(name, "new").ok());
  sim_.Crash(sim::CrashMode::kTearUnsynced);
  EXPECT_EQ(db_->CheckPassword(name, "new").value_or(false), true);

  // A failure between writing the new record and publishing it leaves the old one whole.
  fs_.fail_renames = true;
  EXPECT_FALSE(ChangePassword(name, "newer").ok());
  fs_.fail_renames = false;
  sim_.Crash(sim::CrashMode::kTearUnsynced);
  EXPECT_EQ(db_->CheckPassword(name, "new").value_or(false), true);
  EXPECT_TRUE(ChangePassword(name, "newest").ok()) << "a leftover temp file does not block";
  EXPECT_EQ(db_->CheckPassword(name, "newest").value_or(false), true);
}

TEST_F(UserDbTest, ExpirationChangesKeepThePassword) {
  Init();
  const std::string name = NewUser("pw");
  sdk::UpdateUserRequest request;
  request.username = name;
  request.expiration = sdk::ChangeExpiration{absl::FromUnixSeconds(2000000000), {}};
  ASSERT_TRUE(db_->UpdateUser(request).ok());
  absl::StatusOr<UserRecord> record = db_->ReadUser(name);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->expiration, absl::FromUnixSeconds(2000000000));
  EXPECT_EQ(db_->CheckPassword(name, "pw").value_or(false), true);
}

TEST_F(UserDbTest, UpdateOfAMissingUserIsNotFound) {
  Init();
  EXPECT_EQ(ChangePassword("v-nobody", "x").code(), absl::StatusCode::kNotFound);
}

TEST_F(UserDbTest, DeleteIsIdempotentAndDurable) {
  Init();
  const std::string name = NewUser("pw");
  ASSERT_TRUE(db_->DeleteUser({name, {}}).ok());
  EXPECT_TRUE(db_->DeleteUser({name, {}}).ok()) << "deleting twice must succeed";
  sim_.Crash(sim::CrashMode::kTearUnsynced);
  EXPECT_EQ(db_->ReadUser(name).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(UserDbTest, UsernamesCannotEscapeTheDirectory) {
  Init();
  ASSERT_TRUE(sim_.WriteFileDurably("/victim.user", "{}").ok());
  EXPECT_EQ(db_->DeleteUser({"../victim", {}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChangePassword("../victim", "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(sim_.Stat("/victim.user").ok());
}

// Through the SDK dispatcher: the codes and texts Vault would see.
TEST_F(UserDbTest, DispatcherReportsVaultStyleErrors) {
  sdk::DatabaseDispatcherOptions options;
  options.multiplexing = true;
  sdk::DatabaseDispatcher dispatcher(UserDbFactory(fs_, random_), options);
  dbplugin::v5::InitializeRequest init;
  init.set_verify_connection(true);
  (*init.mutable_config_data()->mutable_fields())["connection_url"].set_string_value("/nope");
  absl::StatusOr<std::string> reply =
      dispatcher.Dispatch(sdk::kDatabaseInitializeMethod, init.SerializeAsString(), "m1");
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(
      absl::StartsWith(reply.status().message(), "failed to initialize: cannot verify connection"))
      << reply.status();
}

}  // namespace
}  // namespace bulwark::examples::userdb
