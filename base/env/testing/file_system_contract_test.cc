// The FileSystem contract, run against the real file system and the simulated one.
#include <memory>
#include <string>
#include <vector>

#include "base/env/testing/contract_test_util.h"

namespace bulwark::testing {
namespace {

class FileSystemContractTest : public EnvContractTest {
 protected:
  void SetUp() override {
    EnvContractTest::SetUp();
    dir_ = harness_->ScratchDir();
  }
  FileSystem& fs() { return env().fs; }
  std::string Path(const std::string& name) { return JoinPath(dir_, name); }

  void Write(const std::string& name, const std::string& data) {
    auto file = fs().NewWritableFile(Path(name));
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Append(data).ok());
    ASSERT_TRUE((*file)->Sync().ok());
    ASSERT_TRUE((*file)->Close().ok());
  }

  std::string dir_;
};

TEST_P(FileSystemContractTest, WriteSyncReadBack) {
  auto file = fs().NewWritableFile(Path("a"));
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Append("hello ").ok());
  ASSERT_TRUE((*file)->Append("world").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ((*file)->Append("x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*fs().ReadFile(Path("a")), "hello world");
  ASSERT_TRUE(fs().SyncDir(dir_).ok());

  auto reader = fs().OpenForRead(Path("a"));
  ASSERT_TRUE(reader.ok());
  char buf[5];
  EXPECT_EQ(*(*reader)->ReadAt(6, absl::MakeSpan(buf, 5)), 5u);
  EXPECT_EQ(std::string(buf, 5), "world");
  EXPECT_EQ(*(*reader)->ReadAt(9, absl::MakeSpan(buf, 5)), 2u);
  EXPECT_EQ(*(*reader)->ReadAt(100, absl::MakeSpan(buf, 5)), 0u);
  EXPECT_EQ((*reader)->Stat()->size, 11u);
}

TEST_P(FileSystemContractTest, NewWritableFileTruncates) {
  Write("a", "long contents");
  Write("a", "short");
  EXPECT_EQ(*fs().ReadFile(Path("a")), "short");
  FileInfo info = *fs().Stat(Path("a"));
  EXPECT_EQ(info.type, FileType::kRegular);
  EXPECT_EQ(info.mode, 0600u);
  EXPECT_EQ(info.size, 5u);
}

TEST_P(FileSystemContractTest, NewAppendableFileCreatesThenAppends) {
  for (const char* piece : {"one\n", "two\n"}) {
    auto file = fs().NewAppendableFile(Path("log"));
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Append(piece).ok());
    ASSERT_TRUE((*file)->Close().ok());
  }
  EXPECT_EQ(*fs().ReadFile(Path("log")), "one\ntwo\n");
  EXPECT_EQ(fs().Stat(Path("log"))->mode, 0600u);
  ASSERT_TRUE(fs().CreateDir(Path("d")).ok());
  EXPECT_EQ(fs().NewAppendableFile(Path("d")).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_P(FileSystemContractTest, ReadFileEnforcesItsLimit) {
  Write("big", std::string(1000, 'x'));
  EXPECT_EQ(fs().ReadFile(Path("big"), 999).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(fs().ReadFile(Path("big"), 1000)->size(), 1000u);
}

TEST_P(FileSystemContractTest, RenameReplacesAtomically) {
  Write("target", "old");
  Write("tmp", "new");
  ASSERT_TRUE(fs().Rename(Path("tmp"), Path("target")).ok());
  EXPECT_EQ(*fs().ReadFile(Path("target")), "new");
  EXPECT_EQ(fs().Stat(Path("tmp")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs().Rename(Path("missing"), Path("x")).code(), absl::StatusCode::kNotFound);
}

TEST_P(FileSystemContractTest, ErrorsHaveTheirCodes) {
  EXPECT_EQ(fs().OpenForRead(Path("missing")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs().Remove(Path("missing")).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs().NewWritableFile(Path("no/such/dir")).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(fs().CreateDir(Path("d")).ok());
  EXPECT_EQ(fs().CreateDir(Path("d")).code(), absl::StatusCode::kAlreadyExists);
  Write("d/f", "x");
  EXPECT_EQ(fs().RemoveDir(Path("d")).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fs().Remove(Path("d")).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fs().ListDir(Path("d/f")).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fs().OpenForExec(Path("d")).status().code(), absl::StatusCode::kFailedPrecondition);
  absl::Status missing = fs().OpenForRead(Path("nope")).status();
  EXPECT_NE(missing.message().find(Path("nope")), absl::string_view::npos) << missing;
  ASSERT_TRUE(fs().Remove(Path("d/f")).ok());
  ASSERT_TRUE(fs().RemoveDir(Path("d")).ok());
  EXPECT_EQ(fs().Stat(Path("d")).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(FileSystemContractTest, ListDirIsSorted) {
  for (const char* name : {"b", "a", "c", "B"}) Write(name, name);
  ASSERT_TRUE(fs().CreateDir(Path("sub")).ok());
  EXPECT_EQ(*fs().ListDir(dir_), (std::vector<std::string>{"B", "a", "b", "c", "sub"}));
  EXPECT_EQ(fs().Stat(Path("sub"))->type, FileType::kDirectory);
}

TEST_P(FileSystemContractTest, SymlinksStatLstatAndRealPath) {
  Write("real", "data");
  ASSERT_TRUE(fs().CreateDir(Path("sub")).ok());
  ASSERT_TRUE(fs().CreateSymlink(Path("real"), Path("abs-link")).ok());
  ASSERT_TRUE(fs().CreateSymlink("../real", Path("sub/rel-link")).ok());
  EXPECT_EQ(fs().Lstat(Path("abs-link"))->type, FileType::kSymlink);
  EXPECT_EQ(fs().Stat(Path("abs-link"))->type, FileType::kRegular);
  EXPECT_EQ(*fs().ReadFile(Path("sub/rel-link")), "data");
  std::string real = *fs().RealPath(dir_);
  EXPECT_EQ(*fs().RealPath(Path("sub/rel-link")), JoinPath(real, "real"));
  EXPECT_EQ(*fs().RealPath(Path("sub/../real")), JoinPath(real, "real"));
  EXPECT_EQ(fs().RealPath(Path("missing")).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(fs().CreateSymlink(Path("loop2"), Path("loop1")).ok());
  ASSERT_TRUE(fs().CreateSymlink(Path("loop1"), Path("loop2")).ok());
  EXPECT_EQ(fs().Stat(Path("loop1")).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fs().CreateSymlink("x", Path("real")).code(), absl::StatusCode::kAlreadyExists);
}

TEST_P(FileSystemContractTest, SetModeChangesPermissionBits) {
  Write("f", "x");
  ASSERT_TRUE(fs().SetMode(Path("f"), 0755).ok());
  EXPECT_EQ(fs().Stat(Path("f"))->mode, 0755u);
  ASSERT_TRUE(fs().SetMode(Path("f"), 0602).ok());
  EXPECT_EQ(fs().Stat(Path("f"))->mode, 0602u);
}

// The descriptor keeps naming the file that was opened even after the path is replaced: this is
// what lets the lifecycle manager hash and execute the same artifact.
TEST_P(FileSystemContractTest, OpenExecutableSurvivesReplacementOfItsPath) {
  Write("plugin", "original artifact");
  auto exe = fs().OpenForExec(Path("plugin"));
  ASSERT_TRUE(exe.ok()) << exe.status();
  EXPECT_EQ((*exe)->path(), Path("plugin"));
  Write("swapped", "malicious replacement");
  ASSERT_TRUE(fs().Rename(Path("swapped"), Path("plugin")).ok());
  char buf[64];
  size_t n = *(*exe)->ReadAt(0, absl::MakeSpan(buf, sizeof(buf)));
  EXPECT_EQ(std::string(buf, n), "original artifact");
  EXPECT_EQ((*exe)->Stat()->type, FileType::kRegular);
}

INSTANTIATE_TEST_SUITE_P(Env, FileSystemContractTest, AllHarnesses(), HarnessName);

}  // namespace
}  // namespace bulwark::testing
