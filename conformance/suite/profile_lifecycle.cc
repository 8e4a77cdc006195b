// The lifecycle profile (protocol-facts §1.4-1.5, §6): what a host's plugin manager relies on
// across a plugin's life: relaunch after a kill, Cleanup then Shutdown, exit when the host dies,
// and nothing left behind (socket files, child processes).
#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "conformance/suite/conformance.h"
#include "conformance/suite/harness.h"
#include "gtest/gtest.h"
#include "proto/vault/backend.grpc.pb.h"

namespace bulwark::conformance {
namespace {

// Names in `dir` (without "." and ".."), sorted.
std::vector<std::string> ListDirectory(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* entry = ::readdir(d)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::unique_ptr<PluginUnderTest> Started(LaunchOptions options = {}) {
  absl::StatusOr<std::unique_ptr<PluginUnderTest>> put = PluginUnderTest::Start(options);
  if (!CheckOk(put.status(), "starting the plugin")) return nullptr;
  return *std::move(put);
}

// Brings a started plugin into use as a host would: for a backend, Setup over the broker and
// one write to the probe path. Returns false after reporting a failure.
bool UseIt(PluginUnderTest& put, const std::string& mux) {
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> health = put.HealthCheck();
  if (!CheckOk(health.status(), "grpc.health.v1.Health/Check")) return false;
  EXPECT_EQ(*health, grpc::health::v1::HealthCheckResponse::SERVING);
  if (!Config().manifest.is_backend()) return true;
  absl::StatusOr<uint32_t> broker_id = put.SetupBackend(mux, {});
  if (!CheckOk(broker_id.status(), "pb.Backend/Setup")) return false;
  const BackendProbe& probe = Config().manifest.backend_probe;
  absl::StatusOr<pb::HandleRequestReply> reply =
      put.HandleRequest(mux, "create", probe.write_path, probe.write_data_json);
  if (!CheckOk(reply.status(), "pb.Backend/HandleRequest create on the probe path")) return false;
  EXPECT_FALSE(reply->has_err()) << "expected the probe write to succeed, got \""
                                 << reply->err().err_msg() << "\"";
  return !reply->has_err();
}

// Shutdown as go-plugin's Kill does it, then the exit within the grace period. Returns false
// after reporting a failure.
bool ShutDown(PluginUnderTest& put) {
  (void)put.Shutdown();  // go-plugin's host ignores the reply.
  absl::StatusOr<sdk::testing::ProcessExitStatus> exit = put.WaitForExit(Config().shutdown_grace);
  if (absl::IsDeadlineExceeded(exit.status())) {
    ADD_FAILURE() << "expected an exit within " << absl::FormatDuration(Config().shutdown_grace)
                  << " of GRPCController/Shutdown, the plugin still ran";
    return false;
  }
  if (!exit.ok()) {
    ADD_FAILURE() << exit.status();
    return false;
  }
  EXPECT_FALSE(exit->signaled) << "expected exit code 0, got signal " << exit->signal;
  EXPECT_EQ(exit->code, 0) << "expected exit code 0 after Shutdown, got " << exit->code;
  return true;
}

CONFORMANCE_TEST(Lifecycle, RelaunchAfterKill, Must, "lifecycle.md (lazy reload)",
                 "After a SIGKILL, a plugin relaunched with the same socket directory (the killed "
                 "one's socket file may still be there) MUST start and serve again.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  std::unique_ptr<PluginUnderTest> first = Started();
  if (first == nullptr) return;
  if (!UseIt(*first, "conformance-first")) return;
  ASSERT_EQ(first->Signal(SIGKILL), 0);
  absl::StatusOr<sdk::testing::ProcessExitStatus> killed = first->WaitForExit();
  if (!CheckOk(killed.status(), "reaping the killed plugin")) return;

  LaunchOptions options;
  options.socket_dir = first->socket_dir();  // Kept alive by `first`.
  std::unique_ptr<PluginUnderTest> second = Started(options);
  if (second == nullptr) return;
  UseIt(*second, "conformance-second");
}

CONFORMANCE_TEST(Lifecycle, CleanupThenShutdown, Must,
                 "plugin-protocol.md §4 (call sequence: Cleanup, Shutdown)",
                 "A backend plugin MUST answer pb.Backend/Cleanup and then, on "
                 "GRPCController/Shutdown, exit 0 within the grace period (a database plugin: "
                 "Shutdown after use).") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  std::unique_ptr<PluginUnderTest> put = Started();
  if (put == nullptr) return;
  const std::string mux = "conformance-cleanup";
  if (!UseIt(*put, mux)) return;
  if (Config().manifest.is_backend()) {
    std::unique_ptr<grpc::ClientContext> context = put->NewContext(mux);
    pb::Empty reply;
    const absl::Status cleanup =
        PluginUnderTest::FromGrpc(put->backend().Cleanup(context.get(), pb::Empty(), &reply));
    if (!CheckOk(cleanup, "pb.Backend/Cleanup")) return;
  }
  ShutDown(*put);
}

CONFORMANCE_TEST(Lifecycle, ExitsWhenHostDies, Should,
                 "plugin-protocol.md §1 (launch: parent death)",
                 "A plugin SHOULD exit on its own within the RPC timeout when the host process "
                 "that started it dies (go-plugin itself has no parent-death detection).") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  // The orphaned plugin is reparented to this process, which can then reap it.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  LaunchOptions options;
  options.via_intermediate = true;
  absl::StatusOr<std::unique_ptr<PluginUnderTest>> put = PluginUnderTest::Launch(options);
  ASSERT_TRUE(CheckOk(put.status(), "launching the plugin"));
  absl::StatusOr<protocol::HandshakeLine> hs = (*put)->ReadHandshake();
  if (!CheckOk(hs.status(), "reading the handshake")) return;
  (*put)->process()->ReleaseIntermediate();  // The plugin's parent ("the host") exits.
  absl::StatusOr<sdk::testing::ProcessExitStatus> exit = (*put)->WaitForExit();
  if (absl::IsDeadlineExceeded(exit.status())) {
    ADD_FAILURE() << "expected the plugin to exit within "
                  << absl::FormatDuration(Config().rpc_timeout)
                  << " of its parent's death, it still ran";
    return;
  }
  EXPECT_TRUE(exit.ok()) << exit.status();
}

CONFORMANCE_TEST(Lifecycle, NoSocketFilesLeft, Must, "plugin-protocol.md §2 (version negotiation)",
                 "After GRPCController/Shutdown a plugin MUST leave no files in "
                 "PLUGIN_UNIX_SOCKET_DIR (its listener socket removed).") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  std::unique_ptr<PluginUnderTest> put = Started();
  if (put == nullptr) return;
  if (!UseIt(*put, "conformance-sockets")) return;
  if (!ShutDown(*put)) return;
  const std::string dir = put->socket_dir();
  const std::vector<std::string> left = ListDirectory(dir);
  EXPECT_TRUE(left.empty()) << "expected " << dir << " empty after exit, got ["
                            << absl::StrJoin(left, ", ") << "]";
}

CONFORMANCE_TEST(Lifecycle, NoChildProcessesLeft, Must,
                 "plugin-protocol.md §1 (launch); go-plugin#136",
                 "No process started by a plugin MAY outlive it: children it has while serving "
                 "MUST be gone within the grace period after it exits on Shutdown.") {
  if (Config().attach) GTEST_SKIP() << "needs launch mode";
  std::unique_ptr<PluginUnderTest> put = Started();
  if (put == nullptr) return;
  if (!UseIt(*put, "conformance-children")) return;
  ChildProcessWatch children = ChildProcessWatch::Of(put->pid());
  RecordMetric("child_processes", static_cast<double>(children.pids().size()), "count");
  if (!ShutDown(*put)) return;
  const std::vector<pid_t> survivors = children.StillRunningAfter(Config().shutdown_grace);
  EXPECT_TRUE(survivors.empty()) << "expected no surviving children of the plugin, got pids ["
                                 << absl::StrJoin(survivors, ", ") << "]";
  for (pid_t pid : survivors) ::kill(pid, SIGKILL);  // Do not leave them to the next test.
}

}  // namespace
}  // namespace bulwark::conformance
