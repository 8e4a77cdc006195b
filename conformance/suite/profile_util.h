// Helpers the profile files share: per-test multiplex ids, quoting for failure messages, scratch
// directories, process liveness, pb.Backend reply helpers, and the plugin under test started and
// set up (mounted) as Vault would before it sends requests.
#ifndef BULWARK_CONFORMANCE_SUITE_PROFILE_UTIL_H_
#define BULWARK_CONFORMANCE_SUITE_PROFILE_UTIL_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "conformance/suite/harness.h"
#include "nlohmann/json.hpp"
#include "proto/vault/backend.grpc.pb.h"
#include "proto/vault/database.grpc.pb.h"
#include "sdk/backend.h"

namespace bulwark::conformance {

// --- Identifiers and messages ------------------------------------------------------------------

// Vault sends a multiplex id with every pb.Backend and dbplugin call, multiplexing or not
// (pluginClientConn); a non-multiplexed plugin ignores it. Returns 10 base62 characters, like
// Vault's base62.Random(10), derived from Config().seed, the running test's full name and `n`:
// ids differ between tests (in attach mode one plugin process serves every test, and a
// multiplexing plugin refuses a second Setup for an id), are distinct for distinct `n` within a
// test, and are the same in every run with the same seed.
std::string MuxId(uint32_t n = 0);

// How much of a plugin's text (a reply, an error message, a username) a failure message quotes.
inline constexpr size_t kQuoteBytesMax = 200;

// `text` unchanged when it has at most `max_bytes` bytes, else its first `max_bytes` bytes and
// "...(<size> bytes)": for failure messages that echo what the plugin sent.
std::string Truncate(absl::string_view text, size_t max_bytes = kQuoteBytesMax);

// True when the manifest describes a database plugin (dbplugin.v5), not a backend (pb.Backend).
bool IsDatabase();

// --- Processes and files -------------------------------------------------------------------

// A fresh empty directory under $TEST_TMPDIR (else /tmp), removed with its contents on
// destruction; path() is empty when mkdtemp failed. For a database plugin's {{scratch_dir}}.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Reads the whole file at `path` into `out` (binary); false when it cannot be opened. For the
// tools built on the harness (chaos, the benchmark runner) reading manifests and binaries.
bool ReadWholeFile(const std::string& path, std::string* out);

// True while /proc says `pid` exists and is not a zombie (the harness reaps only on
// WaitForExit, so a dead child stays a zombie until then).
bool ProcessRunning(pid_t pid);

// --- pb.Backend replies --------------------------------------------------------------------

// The wire value of a logical error type (pb.ProtoError.err_type).
constexpr uint32_t ErrTypeValue(sdk::ErrorType type) { return static_cast<uint32_t>(type); }

// True when a reply (HandleRequestReply, InitializeReply, HandleExistenceCheckReply) carries a
// logical error: Vault treats an err with type 0 and an empty message as none.
template <typename Reply>
bool HasLogicalError(const Reply& reply) {
  return reply.has_err() && (reply.err().err_type() != 0 || !reply.err().err_msg().empty());
}

// The reply's err and Response.data, quoted (Truncate), for failure messages.
std::string Describe(const pb::HandleRequestReply& reply);

// Response.data as JSON; null when absent, empty or not JSON.
nlohmann::json DataOf(const pb::HandleRequestReply& reply);

// What Vault answers 404 for: a read without data, UnsupportedPath, or a coded 404.
bool IsNotFound(const pb::HandleRequestReply& reply);

// The manifest's backend probe: the path, and the write_data (a JSON object) written to it.
const std::string& ProbePath();
const std::string& ProbeJson();

// The probe's fields a read answers after `writes` writes (BackendProbe::ReadFieldsAfter), as
// JSON; null when the manifest does not say (writes not idempotent, beyond its read_fields).
nlohmann::json ProbeReadFields(size_t writes);

// "" when the reply's data carries every field of ProbeReadFields(writes) with the same value
// (by default, after one write: write_data's fields for a key/value probe); otherwise what
// differs. A logical error or no JSON object is a mismatch.
std::string ProbeFieldsMismatch(const pb::HandleRequestReply& reply, size_t writes = 1);

// Like ProbeFieldsMismatch(reply, 1) but compares only that each field is present, not its
// value: for reads whose count of writes before them is unknown (concurrent, not idempotent).
std::string ProbeFieldsMissing(const pb::HandleRequestReply& reply);

// --- The plugin, set up for requests -------------------------------------------------------

// What a backend's logical error in InitializeReply.err does to a mount (a gRPC error other than
// UNIMPLEMENTED always fails it).
enum class InitializeErrors {
  kFail,  // The mount fails with kFailedPrecondition: for profiles that check Initialize.
  // The mount goes on. For profiles that check something else (security, performance), so a
  // plugin whose Initialize fails is not failed again for what Backend.InitializeSucceeds
  // already reports, and its robustness is still measured.
  kIgnore,
};

// pb.Backend/Initialize under `mux`. Vault tolerates a plugin without Initialize, so
// UNIMPLEMENTED is OK. Errors: the gRPC status (code kept, "pb.Backend/Initialize: " before the
// message); kFailedPrecondition for a logical error when `errors` is kFail.
absl::Status InitializeBackend(PluginUnderTest& plugin, const std::string& mux,
                               InitializeErrors errors = InitializeErrors::kFail);

// One backend instance set up as Vault mounts it: SetupBackend (host storage offered over the
// broker, pb.Backend/Setup) then InitializeBackend, under `mux`. A multiplexing plugin takes any
// number of them. Returns the instance's broker id. Errors: Setup's or Initialize's, with the
// RPC and the multiplex id named.
absl::StatusOr<uint32_t> MountBackend(PluginUnderTest& plugin, const std::string& mux,
                                      InitializeErrors errors = InitializeErrors::kFail);

// A started plugin ready for requests, as StartMounted leaves it.
struct Mounted {
  std::unique_ptr<PluginUnderTest> plugin;
  std::string mux;         // The multiplex id of the instance; send it with every call.
  uint32_t broker_id = 0;  // Backend: the broker id of the instance's host storage.
  std::unique_ptr<ScratchDir> scratch;                     // Database: its {{scratch_dir}}.
  std::unique_ptr<dbplugin::v5::Database::Stub> database;  // Database: a stub on plugin.
};

// PluginUnderTest::Start, then, under MuxId(mux_index): for a backend MountBackend; for a
// database a dbplugin.v5.Database/Initialize with verify_connection and the manifest's config,
// its {{scratch_dir}} a fresh ScratchDir. Errors: the start's; the mount's; kInternal when no
// scratch directory can be made; kInvalidArgument when the database config is not a JSON object;
// Initialize's gRPC status with the RPC named.
absl::StatusOr<Mounted> StartMounted(uint32_t mux_index = 0,
                                     InitializeErrors errors = InitializeErrors::kFail);

}  // namespace bulwark::conformance

#endif  // BULWARK_CONFORMANCE_SUITE_PROFILE_UTIL_H_
