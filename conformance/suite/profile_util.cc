// Helpers the profile files share (see profile_util.h).
#include "conformance/suite/profile_util.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status/status_macros.h"
#include "conformance/suite/conformance.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace bulwark::conformance {
namespace {

// Multiplex ids are 10 base62 characters: kIdSpace = 62^10 of them (< 2^60).
constexpr char kBase62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr int kMuxIdChars = 10;
constexpr uint64_t kIdSpace = 839299365868340224ull;

// FNV-1a of the running test's full name ("" outside a test).
uint64_t TestSalt() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string name =
      info == nullptr ? std::string() : absl::StrCat(info->test_suite_name(), ".", info->name());
  uint64_t h = 1469598103934665603ull;
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// splitmix64's finalizer: a bijection that spreads nearby inputs over the whole range.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

}  // namespace

std::string MuxId(uint32_t n) {
  // The seed and the test pick a point in the id space; `n` is added after mixing, so ids of one
  // test are distinct for every n (n < 2^32 < kIdSpace) and ids of different tests are far apart.
  const uint64_t start = Mix(Config().seed * 0x9E3779B97F4A7C15ull + TestSalt()) % kIdSpace;
  uint64_t v = (start + n) % kIdSpace;
  std::string id(kMuxIdChars, '0');
  for (int i = kMuxIdChars - 1; i >= 0; --i) {
    id[i] = kBase62[v % 62];
    v /= 62;
  }
  return id;
}

std::string Truncate(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  return absl::StrCat(text.substr(0, max_bytes), "...(", text.size(), " bytes)");
}

bool IsDatabase() { return !Config().manifest.is_backend(); }

ScratchDir::ScratchDir() {
  // Short: a database plugin may put unix sockets in it (paths must stay under 107 bytes).
  const char* base = ::getenv("TEST_TMPDIR");
  std::string templ = absl::StrCat(base != nullptr ? base : "/tmp", "/bwdb-XXXXXX");
  if (::mkdtemp(templ.data()) != nullptr) path_ = std::move(templ);
}

ScratchDir::~ScratchDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

bool ReadWholeFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

bool ProcessRunning(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // The state follows the command name, which may itself contain ')'.
  const size_t paren = content.rfind(')');
  if (paren == std::string::npos || paren + 2 >= content.size()) return false;
  const char state = content[paren + 2];
  return state != 'Z' && state != 'X';
}

std::string Describe(const pb::HandleRequestReply& reply) {
  std::string out;
  if (reply.has_err()) {
    absl::StrAppend(&out, "err{type=", reply.err().err_type(), " code=", reply.err().err_code(),
                    " msg=\"", Truncate(reply.err().err_msg()), "\"} ");
  }
  if (reply.has_response()) {
    absl::StrAppend(&out, "response{data=", Truncate(reply.response().data()), "}");
  } else {
    absl::StrAppend(&out, "no response");
  }
  return out;
}

nlohmann::json DataOf(const pb::HandleRequestReply& reply) {
  if (!reply.has_response() || reply.response().data().empty()) return nullptr;
  return nlohmann::json::parse(reply.response().data(), nullptr, /*allow_exceptions=*/false);
}

bool IsNotFound(const pb::HandleRequestReply& reply) {
  if (HasLogicalError(reply)) {
    return reply.err().err_type() == ErrTypeValue(sdk::ErrorType::kUnsupportedPath) ||
           (reply.err().err_type() == ErrTypeValue(sdk::ErrorType::kCoded) &&
            reply.err().err_code() == 404);
  }
  const nlohmann::json data = DataOf(reply);
  return data.is_null() || (data.is_object() && data.empty());
}

const std::string& ProbePath() { return Config().manifest.backend_probe.write_path; }
const std::string& ProbeJson() { return Config().manifest.backend_probe.write_data_json; }

nlohmann::json ProbeReadFields(size_t writes) {
  const std::optional<std::string> fields = Config().manifest.backend_probe.ReadFieldsAfter(writes);
  if (!fields.has_value()) return nullptr;
  return nlohmann::json::parse(*fields, nullptr, /*allow_exceptions=*/false);
}

namespace {

// What ProbeFieldsMismatch and ProbeFieldsMissing share; `expected` is a JSON object.
std::string FieldsDiffer(const pb::HandleRequestReply& reply, const nlohmann::json& expected,
                         bool compare_values) {
  if (HasLogicalError(reply)) return absl::StrCat("a logical error: ", Describe(reply));
  const nlohmann::json data = DataOf(reply);
  if (!data.is_object()) return absl::StrCat("no JSON object in Response.data: ", Describe(reply));
  for (const auto& [key, value] : expected.items()) {
    auto it = data.find(key);
    if (it == data.end()) return absl::StrCat("field \"", key, "\" missing: ", Describe(reply));
    if (compare_values && *it != value) {
      return absl::StrCat("field \"", key, "\" is ", Truncate(it->dump()), ", expected ",
                          Truncate(value.dump()));
    }
  }
  return "";
}

}  // namespace

std::string ProbeFieldsMismatch(const pb::HandleRequestReply& reply, size_t writes) {
  // Named: items() must not outlive it.
  const nlohmann::json expected = ProbeReadFields(writes);
  if (!expected.is_object()) {
    // A suite bug: tests ask only for counts the manifest describes.
    return absl::StrCat("(suite: the manifest says nothing about a read after ", writes,
                        " writes)");
  }
  return FieldsDiffer(reply, expected, /*compare_values=*/true);
}

std::string ProbeFieldsMissing(const pb::HandleRequestReply& reply) {
  const nlohmann::json expected = ProbeReadFields(1);
  return FieldsDiffer(reply, expected.is_object() ? expected : nlohmann::json::object(),
                      /*compare_values=*/false);
}

absl::Status InitializeBackend(PluginUnderTest& plugin, const std::string& mux,
                               InitializeErrors errors) {
  pb::InitializeArgs args;
  pb::InitializeReply reply;
  auto ctx = plugin.NewContext(mux);
  const grpc::Status status = plugin.backend().Initialize(ctx.get(), args, &reply);
  // Vault tolerates a plugin without Initialize (protocol-facts §4.4).
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) return absl::OkStatus();
  if (!status.ok()) return Annotate(PluginUnderTest::FromGrpc(status), "pb.Backend/Initialize");
  if (errors == InitializeErrors::kFail && HasLogicalError(reply)) {
    return absl::FailedPreconditionError(
        absl::StrCat("pb.Backend/Initialize returned err{type=", reply.err().err_type(), " msg=\"",
                     Truncate(reply.err().err_msg()), "\"}, expected none"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> MountBackend(PluginUnderTest& plugin, const std::string& mux,
                                      InitializeErrors errors) {
  const std::string context = absl::StrCat("multiplex id ", mux);
  absl::StatusOr<uint32_t> broker_id = plugin.SetupBackend(mux);
  if (!broker_id.ok()) {
    return Annotate(broker_id.status(), absl::StrCat(context, ": pb.Backend/Setup"));
  }
  if (absl::Status s = InitializeBackend(plugin, mux, errors); !s.ok()) return Annotate(s, context);
  return *broker_id;
}

absl::StatusOr<Mounted> StartMounted(uint32_t mux_index, InitializeErrors errors) {
  Mounted m;
  m.mux = MuxId(mux_index);
  absl::StatusOr<std::unique_ptr<PluginUnderTest>> plugin = PluginUnderTest::Start();
  if (!plugin.ok()) return plugin.status();
  m.plugin = *std::move(plugin);
  if (!IsDatabase()) {
    absl::StatusOr<uint32_t> broker_id = MountBackend(*m.plugin, m.mux, errors);
    if (!broker_id.ok()) return broker_id.status();
    m.broker_id = *broker_id;
    return m;
  }
  m.scratch = std::make_unique<ScratchDir>();
  if (m.scratch->path().empty()) return absl::InternalError("mkdtemp for {{scratch_dir}} failed");
  m.database = dbplugin::v5::Database::NewStub(m.plugin->channel());
  dbplugin::v5::InitializeRequest request;
  const std::string config = ExpandDatabaseConfig(Config().manifest, m.scratch->path());
  if (!google::protobuf::util::JsonStringToMessage(config.empty() ? std::string("{}") : config,
                                                   request.mutable_config_data())
           .ok()) {
    return absl::InvalidArgumentError("the manifest's database config is not a JSON object");
  }
  request.set_verify_connection(true);
  dbplugin::v5::InitializeResponse response;
  auto ctx = m.plugin->NewContext(m.mux);
  if (absl::Status s =
          PluginUnderTest::FromGrpc(m.database->Initialize(ctx.get(), request, &response));
      !s.ok()) {
    return Annotate(s, "dbplugin.v5.Database/Initialize");
  }
  return m;
}

}  // namespace bulwark::conformance
