// ServeDispatch: the go-plugin plugin server around a dispatch function, and ServeBackend and
// ServeDatabase on top of it. Process-level concerns (cookie, signals, parent death, mlock,
// listener, handshake line) and the gRPC services.
#include "sdk/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "base/memory/malloc_tuning.h"
#include "base/status/status_macros.h"
#include "faultinject/failpoint.h"
#include "proto/goplugin/grpc_broker.grpc.pb.h"
#include "proto/goplugin/grpc_controller.grpc.pb.h"
#include "proto/goplugin/grpc_stdio.grpc.pb.h"
#include "proto/health/health.grpc.pb.h"
#include "protocol/handshake.h"
#include "protocol/tls_certs.h"
#include "protocol/wire_names.h"
#include "sdk/database_dispatcher.h"
#include "sdk/grpc_broker.h"
#include "sdk/hclog_sink.h"
#include "sdk/serve_dispatch.h"
#include "sdk/unwrap.h"

namespace bulwark::sdk {
namespace {

using internal::GrpcBroker;

// The metadata key Vault puts the multiplex id under (pluginutil.MultiplexingCtxKey).
constexpr char kMultiplexIdMetadataKey[] = "multiplex_id";
// The health service name go-plugin hosts ping (go-plugin GRPCServiceName).
constexpr char kHealthServiceName[] = "plugin";
// The signal the kernel sends when the parent goes away (PR_SET_PDEATHSIG). Not SIGTERM: the
// kernel also sends it when only the thread that forked us ends, so it must mean "check
// getppid()", never "stop".
constexpr int kParentDeathSignal = SIGUSR2;
// How often the parent is checked even without a signal (the death signal fires only once).
constexpr int kParentCheckIntervalMs = 1000;

void WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

absl::Status WriteAllOrError(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError(absl::StrCat("write: ", strerror(errno)));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// --- Stopping ----------------------------------------------------------------------------------

// The first reason to stop wins; ServeBackend waits for one.
class StopLatch {
 public:
  void Stop(int exit_code, std::string reason) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      exit_code_ = exit_code;
      reason_ = std::move(reason);
    }
    cv_.notify_all();
  }
  std::pair<int, std::string> Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return stopped_; });
    return {exit_code_, reason_};
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;  // Guarded by mu_.
  int exit_code_ = 0;     // Guarded by mu_.
  std::string reason_;    // Guarded by mu_.
};

// Signal handlers only write the signal number to a pipe; a thread reads it. Set once per
// process (ServeBackend runs once).
std::atomic<int> g_signal_pipe_write{-1};

void OnSignal(int signal_number) {
  const int saved_errno = errno;
  const int fd = g_signal_pipe_write.load();
  if (fd >= 0) {
    const char byte = static_cast<char>(signal_number);
    (void)!::write(fd, &byte, 1);
  }
  errno = saved_errno;
}

// Watches SIGTERM and the parent: SIGTERM stops with 0, a new parent (ours died; we were
// re-parented to init or a subreaper) stops with 1.
class ProcessWatcher {
 public:
  ProcessWatcher(StopLatch* stop, LogSink* log) : stop_(stop), log_(log) {}

  absl::Status Start() {
    original_parent_ = ::getppid();
    if (::pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
      return absl::InternalError(absl::StrCat("pipe2: ", strerror(errno)));
    }
    g_signal_pipe_write.store(pipe_[1]);
    struct sigaction action {};
    action.sa_handler = OnSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (::sigaction(SIGTERM, &action, nullptr) != 0 ||
        ::sigaction(kParentDeathSignal, &action, nullptr) != 0) {
      return absl::InternalError(absl::StrCat("sigaction: ", strerror(errno)));
    }
    if (::prctl(PR_SET_PDEATHSIG, kParentDeathSignal) != 0) {
      return absl::InternalError(absl::StrCat("prctl(PR_SET_PDEATHSIG): ", strerror(errno)));
    }
    // The parent may have died before the death signal was armed.
    if (::getppid() != original_parent_) {
      return absl::FailedPreconditionError("the parent process exited during startup");
    }
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  void Stop() {
    if (thread_.joinable()) {
      quit_.store(true);
      const char byte = 0;
      (void)!::write(pipe_[1], &byte, 1);
      thread_.join();
    }
    // Later signals must not write to a closed (and maybe reused) descriptor.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    ::sigaction(SIGTERM, &ignore, nullptr);
    ::sigaction(kParentDeathSignal, &ignore, nullptr);
    g_signal_pipe_write.store(-1);
    for (int& fd : pipe_) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }

  ~ProcessWatcher() { Stop(); }

 private:
  void Run() {
    while (!quit_.load()) {
      pollfd pfd{pipe_[0], POLLIN, 0};
      const int ready = ::poll(&pfd, 1, kParentCheckIntervalMs);
      if (ready > 0) {
        char bytes[64];
        const ssize_t n = ::read(pipe_[0], bytes, sizeof(bytes));
        for (ssize_t i = 0; i < n; ++i) {
          if (bytes[i] == SIGTERM) {
            Log(log_, LogLevel::kInfo, "received SIGTERM; shutting down");
            stop_->Stop(0, "SIGTERM");
          }
        }
      }
      if (::getppid() != original_parent_ && !BW_PLANTED_BUG("bug.sdk.serve.ignore_parent_death")) {
        Log(log_, LogLevel::kError, "the parent process exited; shutting down",
            {{"original_parent_pid", absl::StrCat(original_parent_)}});
        stop_->Stop(1, "parent exited");
      }
    }
  }

  StopLatch* const stop_;
  LogSink* const log_;
  pid_t original_parent_ = 0;
  int pipe_[2] = {-1, -1};
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

// --- Long-lived streams ------------------------------------------------------------------------

// A server stream that stays open until the client or the plugin ends it (broker, stdio). The
// plugin finishes them itself at shutdown, so a graceful stop need not wait for the host.
class LongStream {
 public:
  virtual ~LongStream() = default;
  // Finishes the stream unless already finished. gRPC may run OnDone, which deletes the
  // stream, before this returns: callers must not touch it afterwards.
  virtual void FinishNow(const grpc::Status& status) = 0;
};

class StreamRegistry {
 public:
  // False once FinishAll ran: the stream must finish at once.
  bool Add(LongStream* stream) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (closed_) return false;
    streams_.insert(stream);
    return true;
  }
  // From OnDone, before the stream deletes itself.
  void Remove(LongStream* stream) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    streams_.erase(stream);
  }
  void FinishAll(const grpc::Status& status) {
    // Recursive: FinishNow may run OnDone (and so Remove) on this thread. A stream's OnDone on
    // another thread blocks in Remove until the loop is over, so every listed stream is alive.
    std::lock_guard<std::recursive_mutex> lock(mu_);
    closed_ = true;
    const std::vector<LongStream*> streams(streams_.begin(), streams_.end());
    for (LongStream* stream : streams) stream->FinishNow(status);
  }

 private:
  std::recursive_mutex mu_;
  bool closed_ = false;            // Guarded by mu_.
  std::set<LongStream*> streams_;  // Guarded by mu_.
};

const grpc::Status& ShuttingDown() {
  static const grpc::Status* status =
      new grpc::Status(grpc::StatusCode::UNAVAILABLE, "the plugin is shutting down");
  return *status;
}

// --- Services ----------------------------------------------------------------------------------

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  // `shared_host_connection`: declare bulwark's shared host connection in the answer's initial
  // metadata (protocol/wire_names.h); go-plugin hosts ignore it.
  explicit HealthService(bool shared_host_connection)
      : shared_host_connection_(shared_host_connection) {}

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (shared_host_connection_) {
      context->AddInitialMetadata(std::string(protocol::kSharedBrokerMetadataKey),
                                  std::string(protocol::kSharedBrokerVersion));
    }
    if (request->service().empty() || request->service() == kHealthServiceName) {
      response->set_status(BW_PLANTED_BUG("bug.sdk.serve.health_not_serving")
                               ? grpc::health::v1::HealthCheckResponse::NOT_SERVING
                               : grpc::health::v1::HealthCheckResponse::SERVING);
      reactor->Finish(grpc::Status::OK);
    } else {
      reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service"));
    }
    return reactor;
  }

 private:
  const bool shared_host_connection_;
};

class ControllerService final : public plugin::GRPCController::CallbackService {
 public:
  explicit ControllerService(StopLatch* stop) : stop_(stop) {}

  grpc::ServerUnaryReactor* Shutdown(grpc::CallbackServerContext* context, const plugin::Empty*,
                                     plugin::Empty*) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    if (BW_PLANTED_BUG("bug.sdk.serve.ignore_shutdown")) return reactor;  // Planted bug: no stop.
    stop_->Stop(0, "GRPCController.Shutdown");
    return reactor;
  }

 private:
  StopLatch* const stop_;
};

// go-plugin forwards a Go plugin's redirected stdout/stderr over this stream. This SDK leaves
// the real descriptors alone (hosts read stderr directly), so the stream stays open and empty:
// hosts since go-plugin#135 call it at once and warn only if it is missing.
class StdioReactor final : public grpc::ServerWriteReactor<plugin::StdioData>, public LongStream {
 public:
  explicit StdioReactor(StreamRegistry* registry) : registry_(registry) {
    if (!registry_->Add(this)) FinishNow(ShuttingDown());
  }
  void FinishNow(const grpc::Status& status) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(status);
  }
  void OnCancel() override { FinishNow(grpc::Status::CANCELLED); }
  void OnDone() override {
    registry_->Remove(this);
    delete this;
  }

 private:
  StreamRegistry* const registry_;
  std::mutex mu_;
  bool finished_ = false;  // Guarded by mu_.
};

class StdioService final : public plugin::GRPCStdio::CallbackService {
 public:
  explicit StdioService(StreamRegistry* registry) : registry_(registry) {}
  grpc::ServerWriteReactor<plugin::StdioData>* StreamStdio(
      grpc::CallbackServerContext*, const google::protobuf::Empty*) override {
    auto* reactor = new StdioReactor(registry_);
    if (BW_PLANTED_BUG("bug.sdk.serve.broken_stdio")) {  // Planted bug: an error hosts reject.
      reactor->FinishNow(grpc::Status(grpc::StatusCode::INTERNAL, "stdio is broken"));
    }
    return reactor;
  }

 private:
  StreamRegistry* const registry_;
};

// The host's side of the broker: it sends a ConnInfo for every set of services it offers.
class BrokerReactor final : public grpc::ServerBidiReactor<plugin::ConnInfo, plugin::ConnInfo>,
                            public LongStream {
 public:
  BrokerReactor(grpc::CallbackServerContext* context, GrpcBroker* broker, StreamRegistry* registry)
      : context_(context), broker_(broker), registry_(registry) {
    if (!registry_->Add(this)) {
      FinishNow(ShuttingDown());
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!finished_) StartRead(&info_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {  // The host closed its side (go-plugin's broker Close).
      FinishNow(grpc::Status::OK);
      return;
    }
    broker_->OnConnInfo(info_);
    std::lock_guard<std::mutex> lock(mu_);
    if (!finished_) StartRead(&info_);
  }
  void FinishNow(const grpc::Status& status) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      finished_ = true;
    }
    // Our read stays outstanding until the host closes its side, which a host stopping us may
    // never do: cancel the call so the read completes and the server's shutdown does not wait
    // out its whole grace period for this stream. Before Finish, since OnDone (which deletes
    // this) cannot run until Finish is called.
    if (&status == &ShuttingDown()) context_->TryCancel();
    Finish(status);
  }
  void OnCancel() override { FinishNow(grpc::Status::CANCELLED); }
  void OnDone() override {
    registry_->Remove(this);
    delete this;
  }

 private:
  grpc::CallbackServerContext* const context_;
  GrpcBroker* const broker_;
  StreamRegistry* const registry_;
  plugin::ConnInfo info_;
  std::mutex mu_;
  bool finished_ = false;  // Guarded by mu_.
};

class BrokerService final : public plugin::GRPCBroker::CallbackService {
 public:
  BrokerService(GrpcBroker* broker, StreamRegistry* registry)
      : broker_(broker), registry_(registry) {}
  grpc::ServerBidiReactor<plugin::ConnInfo, plugin::ConnInfo>* StartStream(
      grpc::CallbackServerContext* context) override {
    return new BrokerReactor(context, broker_, registry_);
  }

 private:
  GrpcBroker* const broker_;
  StreamRegistry* const registry_;
};

// Everything not registered above (pb.Backend or dbplugin.v5.Database, PluginMultiplexing,
// PluginVersion, and unknown methods) goes to the dispatcher, as raw bytes, served with gRPC's
// completion-queue API: each of `threads` threads waits on the queue, and the one that wakes
// with a call's request runs the backend and writes the reply itself. (The callback API of gRPC
// 1.51 handed every call between two polling threads and to its executor for OnDone; a pool
// behind it added one more wake-up per concurrent call: docs/performance.md, "Transport:
// completion queues and opaque payloads (issue 16)".) Health, the controller, stdio and the
// broker stay on gRPC's callback threads, so they answer while backend calls block.
//
// At most threads - 1 backend calls run at once, so one thread always takes new calls; a call
// that finds them all busy waits in a bounded queue (beyond it RESOURCE_EXHAUSTED) that the
// threads drain as their calls finish.
class CqDispatcher {
 public:
  CqDispatcher(const internal::DispatchFn* dispatch, bool multiplexing, size_t threads,
               size_t queue_max, grpc::AsyncGenericService* service,
               std::unique_ptr<grpc::ServerCompletionQueue> cq)
      : dispatch_(dispatch),
        multiplexing_(multiplexing),
        threads_max_(threads),
        queue_max_(queue_max),
        service_(service),
        cq_(std::move(cq)) {}

  // After the server started: asks for calls and starts the threads.
  void Start() {
    for (size_t i = 0; i < threads_max_; ++i) Accept();
    for (size_t i = 0; i < threads_max_; ++i) threads_.emplace_back([this] { Run(); });
  }

  // After the server's Shutdown returned: drains the queue and joins the threads.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      cq_->Shutdown();  // Under mu_: no Accept can race it.
    }
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
    void* tag = nullptr;
    bool ok = false;
    while (cq_->Next(&tag, &ok)) static_cast<Call*>(tag)->Proceed(ok);  // No threads: none left.
  }

 private:
  class Call {
   public:
    explicit Call(CqDispatcher* owner) : owner_(owner), stream_(&context_) {}

    void Request() {
      owner_->service_->RequestCall(&context_, &stream_, owner_->cq_.get(), owner_->cq_.get(),
                                    this);
    }

    // One completion of this call's latest operation.
    void Proceed(bool ok) {
      switch (state_) {
        case State::kAccepting:
          if (!ok) {  // The server is shutting down.
            delete this;
            return;
          }
          owner_->Accept();
          Start();
          return;
        case State::kReading:
          if (!ok) {
            Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the call carried no request"));
            return;
          }
          owner_->Admit(this);
          return;
        case State::kFinishing:
          delete this;
          return;
      }
    }

    // Runs the backend and writes the reply. The call may be deleted (on another thread)
    // before this returns.
    void Serve() {
      absl::StatusOr<std::string> reply = absl::InternalError("unreadable request");
      std::vector<grpc::Slice> slices;
      if (request_.Dump(&slices).ok()) {
        std::string request;
        request.reserve(request_.Length());
        for (const grpc::Slice& s : slices) {
          request.append(reinterpret_cast<const char*>(s.begin()), s.size());
        }
        request_.Clear();
        try {
          reply = (*owner_->dispatch_)(context_.method(), request, multiplex_id_);
        } catch (...) {
          reply = absl::InternalError("the plugin failed while handling the call");
        }
      }
      if (!reply.ok()) {
        Finish(ToGrpcStatus(reply.status()));
        return;
      }
      grpc::Slice slice(std::move(*reply));
      response_ = grpc::ByteBuffer(&slice, 1);
      state_ = State::kFinishing;
      stream_.WriteAndFinish(response_, grpc::WriteOptions(), grpc::Status::OK, this);
    }

    void Finish(const grpc::Status& status) {
      state_ = State::kFinishing;
      stream_.Finish(status, this);
    }

   private:
    enum class State { kAccepting, kReading, kFinishing };

    void Start() {
      size_t ids = 0;
      auto range = context_.client_metadata().equal_range(kMultiplexIdMetadataKey);
      for (auto it = range.first; it != range.second; ++it, ++ids) {
        if (ids == 0) multiplex_id_.assign(it->second.data(), it->second.size());
      }
      if (ids > 1 && owner_->multiplexing_) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("unexpected number of IDs in metadata: (", ids, ")")));
        return;
      }
      state_ = State::kReading;
      stream_.Read(&request_, this);
    }

    CqDispatcher* const owner_;
    grpc::GenericServerContext context_;
    grpc::GenericServerAsyncReaderWriter stream_;
    State state_ = State::kAccepting;
    std::string multiplex_id_;
    grpc::ByteBuffer request_;
    grpc::ByteBuffer response_;
  };

  // Keeps a request for a new call outstanding (one per accepted call).
  void Accept() {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    (new Call(this))->Request();
  }

  // A call whose request has arrived: served on this thread if a backend slot is free, else
  // queued for the next thread that finishes one.
  void Admit(Call* call) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (running_ + 1 >= threads_max_) {
        if (queue_.size() >= queue_max_) {
          call->Finish(grpc::Status(
              grpc::StatusCode::RESOURCE_EXHAUSTED,
              absl::StrCat("the plugin is busy: ", queue_max_, " calls are already waiting")));
          return;
        }
        queue_.push_back(call);
        return;
      }
      ++running_;
    }
    while (call != nullptr) {
      call->Serve();
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) {
        --running_;
        call = nullptr;
      } else {
        call = queue_.front();
        queue_.pop_front();
      }
    }
  }

  void Run() {
    void* tag = nullptr;
    bool ok = false;
    while (cq_->Next(&tag, &ok)) static_cast<Call*>(tag)->Proceed(ok);
  }

  const internal::DispatchFn* const dispatch_;
  const bool multiplexing_;
  const size_t threads_max_;  // >= 2.
  const size_t queue_max_;
  grpc::AsyncGenericService* const service_;
  const std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  bool stopped_ = false;     // Guarded by mu_.
  size_t running_ = 0;       // Backend calls being served. Guarded by mu_.
  std::deque<Call*> queue_;  // Calls waiting for a slot. Guarded by mu_.
};

// --- Listener ----------------------------------------------------------------------------------

// Reserves a fresh socket path "<dir>/plugin<random>" as go-plugin does (create a temp file,
// remove it, listen there). Errors: the directory is unusable or the path too long for a socket.
absl::StatusOr<std::string> ReserveUnixSocketPath(std::string dir) {
  if (dir.empty() || dir[0] != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof(cwd)) == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat("getcwd: ", strerror(errno)));
    }
    dir = absl::StrCat(cwd, "/", dir);
  }
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::string path = absl::StrCat(dir == "/" ? "" : dir, "/pluginXXXXXX");
  if (path.size() > protocol::kUnixSocketPathBytesMax) {
    return absl::FailedPreconditionError(absl::StrCat(
        "socket path ", protocol::QuoteForError(path), " would be ", path.size(),
        " bytes, more than a unix socket allows (", protocol::kUnixSocketPathBytesMax, ")"));
  }
  const int fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create a socket in ", protocol::QuoteForError(dir), ": ", strerror(errno)));
  }
  ::close(fd);
  ::unlink(path.c_str());
  return path;
}

// The first port in `range` that 127.0.0.1 can bind (0 lets the kernel choose).
absl::StatusOr<int> PickTcpPort(const PortRange& range) {
  for (int port = range.min; port <= range.max; ++port) {
    if (port == 0) return 0;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", strerror(errno)));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool bound =
        ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
    ::close(fd);
    if (bound) return port;
  }
  return absl::UnavailableError(absl::StrCat("couldn't bind plugin TCP listener: no free port in ",
                                             range.min, "..", range.max));
}

// chgrp and chmod 0660 for PLUGIN_UNIX_SOCKET_GROUP (a group name or a numeric gid).
absl::Status ApplySocketGroup(const std::string& path, const std::string& group_name) {
  gid_t gid = 0;
  unsigned long numeric = 0;
  if (absl::SimpleAtoi(group_name, &numeric)) {
    gid = static_cast<gid_t>(numeric);
  } else {
    struct group entry {};
    struct group* found = nullptr;
    std::vector<char> buffer(16 * 1024);
    if (::getgrnam_r(group_name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
        found == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("PLUGIN_UNIX_SOCKET_GROUP: no group ", protocol::QuoteForError(group_name)));
    }
    gid = found->gr_gid;
  }
  if (::chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("chgrp ", gid, " on the plugin socket: ", strerror(errno)));
  }
  if (::chmod(path.c_str(), 0660) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("chmod 0660 on the plugin socket: ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status ValidateOptions(const ServeOptions& options) {
  if (options.dispatch_threads < 1 || options.dispatch_threads > kDispatchThreadsMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("ServeOptions.dispatch_threads must be 1..", kDispatchThreadsMax));
  }
  if (options.dispatch_queue_max < 1 || options.dispatch_queue_max > kDispatchQueueMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("ServeOptions.dispatch_queue_max must be 1..", kDispatchQueueMax));
  }
  if (options.max_instances < 1 || options.max_instances > kInstancesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("ServeOptions.max_instances must be 1..", kInstancesMax));
  }
  if (options.broker_dial_timeout <= absl::ZeroDuration() ||
      options.host_call_timeout <= absl::ZeroDuration() ||
      options.shutdown_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ServeOptions timeouts must be positive");
  }
  return absl::OkStatus();
}

// Removes the socket file when serving ends, however it ends.
struct SocketFile {
  std::string path;
  ~SocketFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

// For the planted bug bug.sdk.serve.keep_socket: gRPC removes its socket file when the server
// goes, so a stale (unlistened) socket file is bound at the same path and left there.
void LeaveSocketFileBehind(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() < sizeof(address.sun_path)) {
    memcpy(address.sun_path, path.data(), path.size());
    (void)::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  }
  ::close(fd);
}

int Fail(LogSink* log, absl::string_view what, const absl::Status& status) {
  Log(log, LogLevel::kError, "plugin init error",
      {{"step", std::string(what)}, {"error", std::string(status.message())}});
  return 1;
}

}  // namespace

int internal::ServeDispatch(DispatchMaker make_dispatch, ServeOptions options) {
  const EnvLookup env = options.env ? options.env : ProcessEnvLookup();

  // 1. The cookie, before anything else can print.
  if (absl::Status cookie =
          CheckMagicCookie(env, options.magic_cookie_key, options.magic_cookie_value);
      !cookie.ok()) {
    WriteAll(STDERR_FILENO, cookie.message());
    return 1;
  }
  HclogJsonSink log(STDERR_FILENO, options.plugin_name, options.log_level);
  if (absl::Status valid = ValidateOptions(options); !valid.ok()) {
    return Fail(&log, "options", valid);
  }
  // Request and response messages of tens of KiB, allocated and freed per call: keep the freed
  // memory instead of giving it back to the kernel after every call (malloc_tuning.h).
  TuneMallocForMessages();
  // A multiplexed plugin under a host without the shared host connection (Vault) holds one
  // descriptor per mount; the usual soft limit of 1024 would end it near 1000 mounts. Go
  // programs raise their soft limit to the hard one at start (Go 1.19), so Go plugins have that
  // headroom: do the same.
  if (struct rlimit files{};
      ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &files) != 0) {
      Log(&log, LogLevel::kWarn, "cannot raise the open-file limit to its hard limit",
          {{"error", strerror(errno)}});
    }
  }
  // go-plugin plugins ignore interrupts; the host decides. (The failpoint is a planted bug.)
  ::signal(SIGINT, BW_PLANTED_BUG("bug.sdk.serve.default_sigint") ? SIG_DFL : SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);  // A closed host pipe is an error return, not a death.
  // Debian builds abseil without NDEBUG, so every absl::Mutex lock (gRPC takes many per call)
  // also updates a process-wide deadlock graph under a global lock. It is a debugging aid, not
  // a check this process relies on. (docs/performance.md, "Plugin protocol (P1)".)
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // 2. The environment.
  absl::StatusOr<ServeEnv> serve_env = ReadServeEnv(env, options.protocol_versions);
  if (!serve_env.ok()) return Fail(&log, "protocol version", serve_env.status());
  for (const std::string& entry : serve_env->invalid_version_entries) {
    Log(&log, LogLevel::kWarn, "server sent invalid plugin version",
        {{"entry", protocol::QuoteForError(entry)}});
  }
  if (serve_env->mlock) {
    // MCL_ONFAULT locks each page when it is first touched instead of faulting in every mapping
    // now and every future one at once: data is kept out of swap all the same, but the 8 MiB
    // stacks of gRPC's and our threads, almost all untouched, no longer become ~150 MB of
    // resident memory (docs/performance.md, "Plugin protocol (P1)"). Kernels before 4.4 lack
    // the flag (EINVAL): lock everything as before.
    if (::mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 &&
        (errno != EINVAL || ::mlockall(MCL_CURRENT | MCL_FUTURE) != 0)) {
      return Fail(&log, "mlock",
                  absl::FailedPreconditionError(absl::StrCat(
                      "VAULT_PLUGIN_MLOCK_ENABLED=true but mlockall failed: ", strerror(errno),
                      "; raise RLIMIT_MEMLOCK or grant CAP_IPC_LOCK, or turn mlock off in the "
                      "host")));
    }
    Log(&log, LogLevel::kDebug, "memory locked (mlockall)");
  }

  // 3. Signals and the parent.
  StopLatch stop;
  ProcessWatcher watcher(&stop, &log);
  if (absl::Status watching = watcher.Start(); !watching.ok()) {
    return Fail(&log, "process watch", watching);
  }

  // 4. AutoMTLS, or Vault's legacy TLS from VAULT_UNWRAP_TOKEN.
  std::shared_ptr<grpc::ServerCredentials> server_credentials = grpc::InsecureServerCredentials();
  std::optional<internal::BrokerTls> broker_tls;
  std::string server_cert_der;
  if (serve_env->client_cert_pem.has_value() &&
      !BW_PLANTED_BUG("bug.sdk.serve.plaintext_with_automtls")) {
    if (absl::StatusOr<std::string> der = protocol::CertPemToDer(*serve_env->client_cert_pem);
        !der.ok()) {
      return Fail(&log, "automtls",
                  Annotate(der.status(), "PLUGIN_CLIENT_CERT is not a PEM certificate"));
    }
    // The failpoint (a planted bug) backdates the certificate so that it expired a day ago.
    const absl::Time cert_now =
        BW_PLANTED_BUG("bug.sdk.serve.expired_certificate")
            ? absl::Now() - protocol::kGoPluginCertValidity - absl::Hours(24)
            : absl::Now();
    absl::StatusOr<protocol::SelfSignedCert> cert =
        options.automtls_certificate != nullptr
            ? options.automtls_certificate(cert_now)
            : protocol::GenerateSelfSignedCert(protocol::KeyType::kP256,
                                               protocol::kGoPluginCertValidity, cert_now);
    if (!cert.ok()) return Fail(&log, "automtls", cert.status());
    grpc_ssl_client_certificate_request_type client_cert =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    // Planted bugs: no client certificate asked for, or any certificate accepted.
    if (BW_PLANTED_BUG("bug.sdk.serve.skip_client_cert_check")) {
      client_cert = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
    } else if (BW_PLANTED_BUG("bug.sdk.serve.accept_any_client_cert")) {
      client_cert = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY;
    }
    grpc::SslServerCredentialsOptions tls(client_cert);
    tls.pem_root_certs = *serve_env->client_cert_pem;
    tls.pem_key_cert_pairs.push_back({cert->key_pem, cert->cert_pem});
    server_credentials = grpc::SslServerCredentials(tls);
    broker_tls = internal::BrokerTls{*serve_env->client_cert_pem, cert->cert_pem, cert->key_pem,
                                     "localhost"};
    server_cert_der = cert->cert_der;
    Log(&log, LogLevel::kInfo, "configuring server automatic mTLS");
  } else if (serve_env->unwrap_token.has_value() && !serve_env->metadata_mode) {
    // Vault's legacy TLS: the certificate and key come from the host, unwrapped once. The
    // handshake line then carries no certificate; the host trusts the shared one.
    absl::StatusOr<PluginTls> tls = UnwrapPluginTls(*serve_env->unwrap_token, env);
    serve_env->unwrap_token.reset();
    if (!tls.ok()) return Fail(&log, "unwrap", tls.status());
    grpc::SslServerCredentialsOptions options(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = tls->cert_pem;
    options.pem_key_cert_pairs.push_back({tls->key_pem, tls->cert_pem});
    server_credentials = grpc::SslServerCredentials(options);
    broker_tls = internal::BrokerTls{tls->cert_pem, tls->cert_pem, tls->key_pem, tls->server_name};
    Log(&log, LogLevel::kInfo,
        "configuring server TLS with the unwrapped certificate (no AutoMTLS)",
        {{"addr", tls->addr}, {"tls_server_name", tls->server_name}});
  }

  // 5. Where to listen.
  SocketFile socket_file;
  std::string listen_target;
  protocol::HandshakeLine handshake;
  handshake.app_version = serve_env->app_version;
  handshake.protocol = "grpc";
  handshake.server_cert_der = server_cert_der;
  if (serve_env->multiplex_grpc) handshake.multiplex_supported = false;
  absl::StatusOr<std::string> socket_path = ReserveUnixSocketPath(serve_env->socket_dir);
  if (socket_path.ok()) {
    socket_file.path = *socket_path;
    listen_target = absl::StrCat("unix:", *socket_path);
    handshake.network = "unix";
    handshake.address = *socket_path;
  } else {
    Log(&log, LogLevel::kWarn, "cannot use a unix socket; falling back to TCP",
        {{"error", std::string(socket_path.status().message())}});
    absl::StatusOr<PortRange> range = ReadPortRange(env);
    if (!range.ok()) return Fail(&log, "listener", range.status());
    absl::StatusOr<int> port = PickTcpPort(*range);
    if (!port.ok()) return Fail(&log, "listener", port.status());
    listen_target = absl::StrCat("127.0.0.1:", *port);
    handshake.network = "tcp";
  }

  // 6. The services and the server.
  GrpcBroker broker(broker_tls, options.broker_dial_timeout, options.host_call_timeout, &log);
  absl::StatusOr<internal::DispatchTarget> target =
      make_dispatch(internal::DispatchSetup{*serve_env, broker, &log});
  if (!target.ok()) return Fail(&log, "plugin setup", target.status());
  StreamRegistry streams;
  HealthService health(options.shared_host_connection);
  BrokerService broker_service(&broker, &streams);
  ControllerService controller(&stop);
  StdioService stdio(&streams);
  grpc::AsyncGenericService dispatch_service;

  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(listen_target, server_credentials, &selected_port);
  builder.SetMaxReceiveMessageSize(internal::kGrpcMessageBytesMax);
  builder.SetMaxSendMessageSize(internal::kGrpcMessageBytesMax);
  // The port was probed free; another process must not share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&health);
  builder.RegisterService(&broker_service);
  builder.RegisterService(&controller);
  // Planted bug: without the stdio service, StreamStdio falls to the dispatcher (UNIMPLEMENTED).
  if (!BW_PLANTED_BUG("bug.sdk.serve.no_stdio")) builder.RegisterService(&stdio);
  builder.RegisterAsyncGenericService(&dispatch_service);
  // One thread more than dispatch_threads: that one always takes new calls.
  CqDispatcher dispatcher(&target->dispatch, target->multiplexing, options.dispatch_threads + 1,
                          options.dispatch_queue_max, &dispatch_service,
                          builder.AddCompletionQueue());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || (handshake.network == "tcp" && selected_port <= 0)) {
    if (server != nullptr) server->Shutdown(std::chrono::system_clock::now());
    dispatcher.Stop();
    return Fail(&log, "listener",
                absl::UnavailableError(absl::StrCat("cannot listen on ", listen_target)));
  }
  dispatcher.Start();
  if (handshake.network == "tcp") {
    handshake.address = absl::StrCat("127.0.0.1:", selected_port);
  } else if (serve_env->socket_group.has_value()) {
    if (absl::Status group = ApplySocketGroup(socket_file.path, *serve_env->socket_group);
        !group.ok()) {
      server->Shutdown(std::chrono::system_clock::now());
      dispatcher.Stop();
      return Fail(&log, "listener", group);
    }
  }

  // 7. The handshake line: the first and only thing this process writes to stdout.
  Log(&log, LogLevel::kDebug, "plugin address",
      {{"network", handshake.network}, {"address", handshake.address}});
  int exit_code = 0;
  std::string reason;
  // Planted bug: a trailing space, which go-plugin's lenient host trims but the grammar forbids.
  const absl::string_view handshake_suffix =
      BW_PLANTED_BUG("bug.sdk.serve.malformed_handshake") ? " \n" : "\n";
  if (absl::Status printed = WriteAllOrError(
          STDOUT_FILENO, absl::StrCat(protocol::FormatHandshakeLine(handshake), handshake_suffix));
      !printed.ok()) {
    exit_code = Fail(&log, "handshake", printed);
    reason = "handshake failed";
  } else {
    // 8. Serve until asked to stop.
    std::tie(exit_code, reason) = stop.Wait();
  }

  // 9. Teardown: finish the long-lived streams, give calls in flight the grace period, then
  // cancel host calls and broker waits so that stuck backend calls return.
  Log(&log, LogLevel::kInfo, "plugin shutting down", {{"reason", reason}});
  streams.FinishAll(ShuttingDown());
  std::mutex shutdown_mu;
  std::condition_variable shutdown_cv;
  bool shutdown_done = false;
  std::thread canceller([&] {
    std::unique_lock<std::mutex> lock(shutdown_mu);
    if (!shutdown_cv.wait_for(lock, absl::ToChronoMilliseconds(options.shutdown_grace),
                              [&] { return shutdown_done; })) {
      lock.unlock();
      broker.Close();
    }
  });
  server->Shutdown(absl::ToChronoTime(absl::Now() + options.shutdown_grace));
  {
    std::lock_guard<std::mutex> lock(shutdown_mu);
    shutdown_done = true;
  }
  shutdown_cv.notify_all();
  canceller.join();
  broker.Close();
  dispatcher.Stop();
  server.reset();
  target->dispatch = nullptr;  // Backends (and their host connections) or databases go here.
  watcher.Stop();
  if (!socket_file.path.empty() && BW_PLANTED_BUG("bug.sdk.serve.keep_socket")) {
    LeaveSocketFileBehind(socket_file.path);  // Planted bug.
    socket_file.path.clear();
  }
  return exit_code;
}

int ServeBackend(BackendFactory factory, ServeOptions options) {
  return internal::ServeDispatch(
      [&factory,
       &options](const internal::DispatchSetup& setup) -> absl::StatusOr<internal::DispatchTarget> {
        DispatcherOptions dispatcher_options;
        dispatcher_options.multiplexing = options.multiplexing;
        dispatcher_options.max_instances = options.max_instances;
        dispatcher_options.plugin_version = options.plugin_version;
        dispatcher_options.metadata_mode = setup.env.metadata_mode;
        dispatcher_options.log = setup.log;
        auto dispatcher = std::make_shared<BackendDispatcher>(std::move(factory), setup.dialer,
                                                              dispatcher_options);
        internal::DispatchTarget target;
        target.multiplexing = options.multiplexing;
        target.dispatch = [dispatcher](absl::string_view method, absl::string_view request,
                                       absl::string_view multiplex_id) {
          return dispatcher->Dispatch(method, request, multiplex_id);
        };
        return target;
      },
      options);
}

ServeOptions DatabaseServeOptions() {
  ServeOptions options;
  options.protocol_versions = {kVaultDatabaseProtocolVersion,
                               kVaultDatabaseMultiplexedProtocolVersion};
  options.magic_cookie_key = std::string(kVaultDatabaseCookieKey);
  options.magic_cookie_value = std::string(kVaultDatabaseCookieValue);
  return options;
}

int ServeDatabase(DatabaseFactory factory, ServeOptions options) {
  // Version 6 means "multiplexed" (Vault's ServeMultiplex); a plugin that does not multiplex
  // must not offer it, or Vault would send it several connections.
  if (!options.multiplexing) {
    options.protocol_versions.erase(
        std::remove(options.protocol_versions.begin(), options.protocol_versions.end(),
                    kVaultDatabaseMultiplexedProtocolVersion),
        options.protocol_versions.end());
  }
  const bool multiplexing_allowed = options.multiplexing;
  const size_t max_instances = options.max_instances;
  const std::string plugin_version = options.plugin_version;
  return internal::ServeDispatch(
      [&](const internal::DispatchSetup& setup) -> absl::StatusOr<internal::DispatchTarget> {
        DatabaseDispatcherOptions dispatcher_options;
        dispatcher_options.multiplexing =
            multiplexing_allowed &&
            setup.env.app_version == kVaultDatabaseMultiplexedProtocolVersion;
        dispatcher_options.max_instances = max_instances;
        dispatcher_options.plugin_version = plugin_version;
        dispatcher_options.log = setup.log;
        if (max_instances > kDatabaseInstancesMax) {
          return absl::InvalidArgumentError(
              absl::StrCat("ServeOptions.max_instances must be 1..", kDatabaseInstancesMax));
        }
        auto dispatcher =
            std::make_shared<DatabaseDispatcher>(std::move(factory), dispatcher_options);
        Log(setup.log, LogLevel::kDebug, "serving a database",
            {{"protocol_version", absl::StrCat(setup.env.app_version)},
             {"multiplexing", dispatcher_options.multiplexing ? "true" : "false"}});
        internal::DispatchTarget target;
        target.multiplexing = dispatcher_options.multiplexing;
        target.dispatch = [dispatcher](absl::string_view method, absl::string_view request,
                                       absl::string_view multiplex_id) {
          return dispatcher->Dispatch(method, request, multiplex_id);
        };
        return target;
      },
      std::move(options));
}

}  // namespace bulwark::sdk
