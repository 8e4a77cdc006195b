#include "conformance/benchmark/bulwark_host.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/env/posix/posix_env.h"
#include "base/status/status_macros.h"
#include "base/storage/in_memory_storage.h"
#include "core/lifecycle/host_services.h"
#include "core/rpc/grpc_transport.h"
#include "core/rpc/plugin_client.h"

namespace bulwark::conformance {

struct BulwarkHost::State {
  // One mount: its id and the storage it reaches over the broker.
  struct Mounted {
    CallOptions options;
    std::unique_ptr<InMemoryStorage> storage;
    std::unique_ptr<lifecycle::StorageHostServices> services;
  };

  PosixEnv posix;
  rpc::GrpcPluginTransport transport{posix.loop()};  // Default options: sharing on.
  std::string runtime_dir;
  absl::Duration timeout;
  std::vector<Mounted> mounts;
  std::unique_ptr<rpc::PluginClient> client;
  uint64_t next_id = 1;

  // `method` on the plugin, waited for on the event loop.
  absl::StatusOr<std::string> Call(absl::string_view method, std::string request,
                                   const CallOptions& options) {
    std::optional<absl::StatusOr<std::string>> result;
    client->connection().Call(method, std::move(request), options,
                              [&](absl::StatusOr<std::string> r) { result = std::move(r); });
    if (!posix.loop().RunUntil([&] { return result.has_value(); }, timeout * 2)) {
      return absl::DeadlineExceededError(absl::StrCat(method, " did not complete"));
    }
    return *std::move(result);
  }
};

BulwarkHost::BulwarkHost(std::unique_ptr<State> state) : state_(std::move(state)) {}

absl::StatusOr<std::unique_ptr<BulwarkHost>> BulwarkHost::Start(const BulwarkHostLaunch& launch) {
  auto state = std::make_unique<State>();
  state->timeout = launch.timeout;
  char dir[] = "/tmp/bwbhXXXXXX";
  if (::mkdtemp(dir) == nullptr) return absl::InternalError("mkdtemp for the host's runtime dir");
  state->runtime_dir = dir;
  std::unique_ptr<BulwarkHost> host(new BulwarkHost(std::move(state)));
  State& s = *host->state_;
  char real[PATH_MAX];
  if (::realpath(launch.plugin_path.c_str(), real) == nullptr) {
    return absl::NotFoundError(absl::StrCat("no plugin at ", launch.plugin_path));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ExecutableFile> exe, s.posix.fs().OpenForExec(real));
  rpc::PluginLaunchOptions o;
  o.plugin_name = "bench";
  o.executable = exe.get();
  o.argv = {real};
  o.argv.insert(o.argv.end(), launch.plugin_args.begin(), launch.plugin_args.end());
  o.host_env = {"PATH=/usr/bin:/bin"};
  o.entry_env = launch.env;
  protocol::VaultPluginEnv vault;
  vault.vault_version = "1.16.0";
  o.vault = vault;
  o.automtls = true;
  o.magic_cookie_key = launch.cookie_key;
  o.magic_cookie_value = launch.cookie_value;
  o.app_versions = launch.protocol_versions;
  o.runtime_dir = s.runtime_dir;
  o.start_timeout = launch.timeout;
  o.connect_timeout = launch.timeout;
  std::optional<absl::Status> started;
  s.client = rpc::PluginClient::Start(s.posix.env(), s.transport, std::move(o),
                                      [&](absl::Status st) { started = st; });
  if (!s.posix.loop().RunUntil([&] { return started.has_value(); }, launch.timeout * 2)) {
    return absl::DeadlineExceededError("the plugin's launch did not finish");
  }
  RETURN_IF_ERROR(*started);
  return host;
}

BulwarkHost::~BulwarkHost() {
  State& s = *state_;
  if (s.client != nullptr) {
    bool stopped = false;
    s.client->Shutdown(absl::Seconds(2), [&] { stopped = true; });
    s.posix.loop().RunUntil([&] { return stopped; }, absl::Seconds(10));
    s.client.reset();
  }
  s.mounts.clear();
  ::rmdir(s.runtime_dir.c_str());  // PluginClient removed the launch's own directory.
}

absl::Status BulwarkHost::Mount(const std::string& multiplex_id) {
  State& s = *state_;
  const size_t index = s.mounts.size();
  State::Mounted& m = s.mounts.emplace_back();
  m.options.multiplex_id = multiplex_id;
  m.options.timeout = s.timeout;
  m.storage = std::make_unique<InMemoryStorage>();
  m.services = std::make_unique<lifecycle::StorageHostServices>(
      *m.storage, absl::StrCat("logical/bench", index, "/"), lifecycle::SystemViewInfo{});
  ASSIGN_OR_RETURN(uint32_t broker_id, s.client->connection().OfferHostServices(m.services.get()));
  pb::SetupArgs setup;
  setup.set_broker_id(broker_id);
  setup.set_backenduuid(absl::StrFormat("0b1a2c3d-0000-4000-8000-%012d", index + 1));
  ASSIGN_OR_RETURN(std::string bytes,
                   s.Call("/pb.Backend/Setup", setup.SerializeAsString(), m.options));
  pb::SetupReply reply;
  if (!reply.ParseFromString(bytes)) return absl::InternalError("unparsable pb.SetupReply");
  if (!reply.err().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("pb.Backend/Setup replied err ", reply.err()));
  }
  return s.Call("/pb.Backend/Initialize", pb::InitializeArgs().SerializeAsString(), m.options)
      .status();
}

absl::StatusOr<pb::HandleRequestReply> BulwarkHost::HandleRequest(const std::string& multiplex_id,
                                                                  const std::string& operation,
                                                                  const std::string& path,
                                                                  const std::string& data_json) {
  State& s = *state_;
  pb::HandleRequestArgs args;
  pb::Request* r = args.mutable_request();
  r->set_id(absl::StrFormat("00000000-0000-4000-8000-%012x", s.next_id++));
  r->set_operation(operation);
  r->set_path(path);
  r->set_data(data_json.empty() ? "null" : data_json);
  CallOptions options;
  options.multiplex_id = multiplex_id;
  options.timeout = s.timeout;
  ASSIGN_OR_RETURN(std::string bytes,
                   s.Call("/pb.Backend/HandleRequest", args.SerializeAsString(), options));
  pb::HandleRequestReply reply;
  if (!reply.ParseFromString(bytes)) return absl::InternalError("unparsable HandleRequestReply");
  return reply;
}

pid_t BulwarkHost::pid() const { return static_cast<pid_t>(state_->client->pid()); }

int BulwarkHost::PluginDescriptors() const {
  DIR* dir = ::opendir(absl::StrCat("/proc/", pid(), "/fd").c_str());
  if (dir == nullptr) return -1;
  int n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n;
}

}  // namespace bulwark::conformance
