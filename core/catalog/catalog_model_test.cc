// Stateful property test: random sequences of register (valid and invalid inputs), get, list,
// delete, pin, unpin and reload run against the real catalog over a simulated plugin directory
// and against a simple model that predicts every outcome: success or the exact refusal reason and
// code, and every returned entry. Reload opens a new catalog over the same storage and must see
// what the old one saw.
#include <algorithm>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "base/status/check.h"
#include "core/catalog/catalog.h"
#include "core/catalog/catalog_error.h"
#include "core/catalog/catalog_test_util.h"
#include "core/catalog/validation.h"
#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"
#include "rapidcheck/state.h"

namespace bulwark::catalog {
namespace {

// ---- The fixed world the commands draw from. ----

constexpr size_t kEntriesMax = 6;

struct NameCase {
  const char* text;
  bool valid;
};
const std::vector<NameCase>& Names() {
  static const auto* names = new std::vector<NameCase>{
      {"a", true},       {"b", true},     {"kv", true},           {"userpass", true},
      {"x.y_z-1", true}, {"", false},     {"../a", false},        {"a/b", false},
      {"-a", false},     {"a..b", false}, {"caf\xc3\xa9", false},
  };
  return *names;
}
constexpr size_t kValidNames = 5;

struct VersionCase {
  const char* text;
  std::optional<std::string> normalized;  // nullopt: not a semantic version.
};
const std::vector<VersionCase>& Versions() {
  static const auto* versions = new std::vector<VersionCase>{
      {"", ""},
      {"1.0.0", "v1.0.0"},
      {"v1.0.0", "v1.0.0"},
      {"v2.0.0-rc.1", "v2.0.0-rc.1"},
      {"v1.0.0+meta", "v1.0.0+meta"},
      {"0.20.0+builtin", "v0.20.0+builtin"},  // The built-in kv's version: reserved.
      {"v1.0.0+builtin", "v1.0.0+builtin"},   // Reserved.
      {"1.0", std::nullopt},
      {"v01.0.0", std::nullopt},
      {"1.0.0-", std::nullopt},
  };
  return *versions;
}
constexpr size_t kValidVersions = 7;

bool Reserved(const std::string& normalized) {
  return normalized.find("+builtin") != std::string::npos;
}

const std::string& ShaOf(absl::string_view contents) {
  static auto* cache = new std::map<std::string, std::string>();
  auto it = cache->find(std::string(contents));
  if (it == cache->end()) {
    it = cache->emplace(std::string(contents), testing::Sha256Hex(contents)).first;
  }
  return it->second;
}

struct CommandCase {
  const char* text;
  std::optional<CatalogError> syntax;  // Refused before any file is looked at.
  std::optional<CatalogError> file;    // Refused by the artifact check.
  const char* contents;                // For the good ones: what the file holds.
};
const std::vector<CommandCase>& Commands() {
  static const auto* commands = new std::vector<CommandCase>{
      {"alpha", std::nullopt, std::nullopt, "alpha bytes"},
      {"beta", std::nullopt, std::nullopt, "beta bytes"},
      {"sub/gamma", std::nullopt, std::nullopt, "gamma bytes"},
      {"link", std::nullopt, std::nullopt, "alpha bytes"},  // A symlink to alpha, inside.
      {"dir", std::nullopt, CatalogError::kCommandNotRegularFile, "alpha bytes"},
      {"missing", std::nullopt, CatalogError::kCommandNotFound, "alpha bytes"},
      {"escape", std::nullopt, CatalogError::kCommandOutsideDirectory, "alpha bytes"},
      {"../alpha", CatalogError::kCommandParentReference, std::nullopt, "alpha bytes"},
      {"/plugins/alpha", CatalogError::kCommandAbsolute, std::nullopt, "alpha bytes"},
      {"al pha", CatalogError::kInvalidCommand, std::nullopt, "alpha bytes"},
  };
  return *commands;
}

enum class ShaChoice { kCorrect, kUpperCase, kOtherFile, kMalformed };
enum class EnvChoice { kNone, kSecret, kTwo, kMalformed };
enum class ArgsChoice { kNone, kTwo, kTooMany };

std::vector<std::string> EnvFor(EnvChoice choice) {
  switch (choice) {
    case EnvChoice::kNone:
      return {};
    case EnvChoice::kSecret:
      return {"TOKEN=s3cret-value"};
    case EnvChoice::kTwo:
      return {"TOKEN=a", "B=c"};
    case EnvChoice::kMalformed:
      return {"no-equals"};
  }
  return {};
}

std::vector<std::string> ArgsFor(ArgsChoice choice) {
  switch (choice) {
    case ArgsChoice::kNone:
      return {};
    case ArgsChoice::kTwo:
      return {"-v", "--x=1"};
    case ArgsChoice::kTooMany:
      return std::vector<std::string>(kArgsMax + 1, "-v");
  }
  return {};
}

std::string ShaFor(ShaChoice choice, const CommandCase& command) {
  switch (choice) {
    case ShaChoice::kCorrect:
      return ShaOf(command.contents);
    case ShaChoice::kUpperCase:
      return absl::AsciiStrToUpper(ShaOf(command.contents));
    case ShaChoice::kOtherFile:
      return ShaOf("some other build");
    case ShaChoice::kMalformed:
      return "not-a-digest";
  }
  return "";
}

absl::StatusCode CodeOf(CatalogError error) {
  switch (error) {
    case CatalogError::kBuiltinNameRequiresVersion:
      return absl::StatusCode::kAlreadyExists;
    case CatalogError::kCatalogFull:
      return absl::StatusCode::kResourceExhausted;
    case CatalogError::kNotFound:
    case CatalogError::kCommandNotFound:
      return absl::StatusCode::kNotFound;
    case CatalogError::kVersionPinned:
    case CatalogError::kBuiltinImmutable:
    case CatalogError::kCommandNotRegularFile:
    case CatalogError::kSha256Mismatch:
      return absl::StatusCode::kFailedPrecondition;
    case CatalogError::kCommandOutsideDirectory:
      return absl::StatusCode::kPermissionDenied;
    default:
      return absl::StatusCode::kInvalidArgument;
  }
}

const std::vector<BuiltinPlugin>& Builtins() {
  static const auto* builtins = new std::vector<BuiltinPlugin>{
      {PluginType::kSecret, "kv", "v0.20.0+builtin"},
      {PluginType::kAuth, "userpass", "v1.0.0+builtin"},
  };
  return *builtins;
}

const BuiltinPlugin* FindBuiltin(PluginType type, const std::string& name) {
  for (const BuiltinPlugin& b : Builtins()) {
    if (b.type == type && b.name == name) return &b;
  }
  return nullptr;
}

// ---- The model. ----

using EntryKey = std::tuple<PluginType, std::string, std::string>;
using PinKey = std::pair<PluginType, std::string>;

struct Model {
  std::map<EntryKey, CatalogEntryView> entries;
  std::map<PinKey, std::string> pins;

  // What Get returns for a normalised version, or nullopt.
  std::optional<CatalogEntryView> Find(PluginType type, const std::string& name,
                                       const std::string& version) const {
    const BuiltinPlugin* builtin = FindBuiltin(type, name);
    std::optional<CatalogEntryView> builtin_view;
    if (builtin != nullptr) {
      CatalogEntryView view;
      view.type = type;
      view.name = name;
      view.version = builtin->version;
      view.builtin = true;
      builtin_view = view;
    }
    if (version.empty()) {
      auto it = entries.find({type, name, ""});
      if (it != entries.end()) return it->second;
      return builtin_view;
    }
    if (builtin_view && builtin_view->version == version) return builtin_view;
    auto it = entries.find({type, name, version});
    if (it != entries.end()) return it->second;
    return std::nullopt;
  }

  std::vector<CatalogEntryView> List(PluginType type) const {
    std::vector<CatalogEntryView> out;
    for (const auto& [key, view] : entries) {
      if (std::get<0>(key) == type) out.push_back(view);
    }
    for (const BuiltinPlugin& b : Builtins()) {
      if (b.type != type || entries.count({type, b.name, ""}) > 0) continue;
      out.push_back(*Find(type, b.name, b.version));
    }
    std::sort(out.begin(), out.end(), [](const CatalogEntryView& a, const CatalogEntryView& b) {
      if (a.name != b.name) return a.name < b.name;
      return CompareVersions(a.version, b.version) < 0;
    });
    return out;
  }
};

struct Sut {
  testing::SimWorld world;
  CatalogOptions options;
  std::unique_ptr<Catalog> catalog;

  Sut() {
    world.AddPlugin("alpha", "alpha bytes");
    world.AddPlugin("beta", "beta bytes");
    CHECK_OK(world.fs().CreateDir("/plugins/sub", 0755));
    world.AddPlugin("sub/gamma", "gamma bytes");
    CHECK_OK(world.fs().CreateDir("/plugins/dir", 0755));
    CHECK_OK(world.fs().CreateSymlink("alpha", "/plugins/link"));
    CHECK_OK(world.fs().CreateDir("/outside", 0755));
    CHECK_OK(world.fs().WriteFileDurably("/outside/evil", "alpha bytes", 0755));
    CHECK_OK(world.fs().CreateSymlink("/outside/evil", "/plugins/escape"));
    options = world.Options(Builtins());
    options.entries_max = kEntriesMax;
    catalog = world.OpenCatalog(options);
  }
};

using CatalogCommand = rc::state::Command<Model, Sut>;

void AssertOutcome(const absl::Status& status, const std::optional<CatalogError>& expected) {
  if (!expected.has_value()) {
    if (!status.ok()) RC_FAIL("expected success, got " + status.ToString());
    return;
  }
  if (CatalogErrorOf(status) != expected || status.code() != CodeOf(*expected)) {
    RC_FAIL(std::string("expected ") + std::string(CatalogErrorReason(*expected)) + ", got " +
            status.ToString());
  }
}

void AssertView(const CatalogEntryView& actual, const CatalogEntryView& expected) {
  if (actual != expected) {
    RC_FAIL("entry " + actual.DebugString() + " != model " + expected.DebugString());
  }
}

void AssertViews(const std::vector<CatalogEntryView>& actual,
                 const std::vector<CatalogEntryView>& expected) {
  RC_ASSERT(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i) AssertView(actual[i], expected[i]);
}

size_t PickName() {
  return *rc::gen::weightedOneOf<size_t>({{8, rc::gen::inRange<size_t>(0, kValidNames)},
                                          {1, rc::gen::inRange(kValidNames, Names().size())}});
}
size_t PickVersion() {
  return *rc::gen::weightedOneOf<size_t>(
      {{8, rc::gen::inRange<size_t>(0, kValidVersions)},
       {1, rc::gen::inRange(kValidVersions, Versions().size())}});
}
PluginType PickType() {
  return *rc::gen::elementOf(
      std::vector<PluginType>(std::begin(kAllPluginTypes), std::end(kAllPluginTypes)));
}

// The outcome of validating a name and a version the way Get/Delete/Pin do.
std::optional<CatalogError> NameVersionError(size_t name, size_t version) {
  if (!Names()[name].valid) return CatalogError::kInvalidName;
  if (!Versions()[version].normalized.has_value()) return CatalogError::kInvalidVersion;
  return std::nullopt;
}

struct Register : CatalogCommand {
  PluginType type = PickType();
  size_t name = PickName();
  size_t version = PickVersion();
  size_t command = *rc::gen::weightedOneOf<size_t>(
      {{6, rc::gen::inRange<size_t>(0, 4)}, {2, rc::gen::inRange<size_t>(4, Commands().size())}});
  ShaChoice sha = *rc::gen::weightedElement<ShaChoice>({{6, ShaChoice::kCorrect},
                                                        {1, ShaChoice::kUpperCase},
                                                        {1, ShaChoice::kOtherFile},
                                                        {1, ShaChoice::kMalformed}});
  EnvChoice env = *rc::gen::weightedElement<EnvChoice>({{4, EnvChoice::kNone},
                                                        {2, EnvChoice::kSecret},
                                                        {2, EnvChoice::kTwo},
                                                        {1, EnvChoice::kMalformed}});
  ArgsChoice args = *rc::gen::weightedElement<ArgsChoice>(
      {{4, ArgsChoice::kNone}, {3, ArgsChoice::kTwo}, {1, ArgsChoice::kTooMany}});

  RegisterRequest Request() const {
    return testing::MakeRequest(type, Names()[name].text, Versions()[version].text,
                                Commands()[command].text, ShaFor(sha, Commands()[command]),
                                ArgsFor(args), EnvFor(env));
  }

  // The predicted refusal, or nullopt and the view the catalog will hold.
  std::pair<std::optional<CatalogError>, CatalogEntryView> Predict(const Model& m) const {
    CatalogEntryView view;
    const CommandCase& cmd = Commands()[command];
    if (!Names()[name].valid) return {CatalogError::kInvalidName, view};
    const std::optional<std::string>& v = Versions()[version].normalized;
    if (!v.has_value()) return {CatalogError::kInvalidVersion, view};
    if (Reserved(*v)) return {CatalogError::kReservedVersion, view};
    if (cmd.syntax.has_value()) return {cmd.syntax, view};
    if (args == ArgsChoice::kTooMany) return {CatalogError::kInvalidArgs, view};
    if (env == EnvChoice::kMalformed) return {CatalogError::kInvalidEnv, view};
    if (sha == ShaChoice::kMalformed) return {CatalogError::kInvalidSha256, view};
    if (v->empty() && FindBuiltin(type, Names()[name].text) != nullptr) {
      return {CatalogError::kBuiltinNameRequiresVersion, view};
    }
    const EntryKey key{type, Names()[name].text, *v};
    if (m.entries.count(key) == 0 && m.entries.size() >= kEntriesMax) {
      return {CatalogError::kCatalogFull, view};
    }
    if (cmd.file.has_value()) return {cmd.file, view};
    if (sha == ShaChoice::kOtherFile) return {CatalogError::kSha256Mismatch, view};
    view.type = type;
    view.name = Names()[name].text;
    view.version = *v;
    view.command = cmd.text;
    view.args = ArgsFor(args);
    for (const std::string& e : EnvFor(env)) view.env_keys.emplace_back(EnvKey(e));
    view.sha256_hex = ShaOf(cmd.contents);
    return {std::nullopt, view};
  }

  void apply(Model& m) const override {
    auto [error, view] = Predict(m);
    if (!error.has_value()) {
      m.entries[{view.type, view.name, view.version}] = view;
    }
  }

  void run(const Model& m, Sut& sut) const override {
    auto [error, view] = Predict(m);
    absl::StatusOr<CatalogEntryView> result = sut.catalog->Register(Request());
    AssertOutcome(result.status(), error);
    if (result.ok()) AssertView(*result, view);
  }

  void show(std::ostream& os) const override {
    os << "Register(" << PluginTypeName(type) << ", \"" << Names()[name].text << "\", \""
       << Versions()[version].text << "\", \"" << Commands()[command].text << "\", sha "
       << static_cast<int>(sha) << ", env " << static_cast<int>(env) << ", args "
       << static_cast<int>(args) << ")";
  }
};

struct Get : CatalogCommand {
  PluginType type = PickType();
  size_t name = PickName();
  size_t version = PickVersion();

  void run(const Model& m, Sut& sut) const override {
    absl::StatusOr<CatalogEntryView> result =
        sut.catalog->Get(type, Names()[name].text, Versions()[version].text);
    std::optional<CatalogError> error = NameVersionError(name, version);
    std::optional<CatalogEntryView> expected;
    if (!error.has_value()) {
      expected = m.Find(type, Names()[name].text, *Versions()[version].normalized);
      if (!expected.has_value()) error = CatalogError::kNotFound;
    }
    AssertOutcome(result.status(), error);
    if (result.ok()) AssertView(*result, *expected);
  }

  void show(std::ostream& os) const override {
    os << "Get(" << PluginTypeName(type) << ", \"" << Names()[name].text << "\", \""
       << Versions()[version].text << "\")";
  }
};

struct List : CatalogCommand {
  PluginType type = PickType();

  void run(const Model& m, Sut& sut) const override {
    AssertViews(sut.catalog->List(type), m.List(type));
  }

  void show(std::ostream& os) const override { os << "List(" << PluginTypeName(type) << ")"; }
};

struct Delete : CatalogCommand {
  PluginType type = PickType();
  size_t name = PickName();
  size_t version = PickVersion();

  std::optional<CatalogError> Predict(const Model& m) const {
    if (std::optional<CatalogError> e = NameVersionError(name, version)) return e;
    const std::string& v = *Versions()[version].normalized;
    if (Reserved(v)) return CatalogError::kBuiltinImmutable;
    auto pin = m.pins.find({type, Names()[name].text});
    if (!v.empty() && pin != m.pins.end() && pin->second == v) return CatalogError::kVersionPinned;
    return std::nullopt;
  }

  void apply(Model& m) const override {
    if (!Predict(m).has_value()) {
      m.entries.erase({type, Names()[name].text, *Versions()[version].normalized});
    }
  }

  void run(const Model& m, Sut& sut) const override {
    AssertOutcome(sut.catalog->Delete(type, Names()[name].text, Versions()[version].text),
                  Predict(m));
  }

  void show(std::ostream& os) const override {
    os << "Delete(" << PluginTypeName(type) << ", \"" << Names()[name].text << "\", \""
       << Versions()[version].text << "\")";
  }
};

struct Pin : CatalogCommand {
  PluginType type = PickType();
  size_t name = PickName();
  size_t version = PickVersion();

  std::optional<CatalogError> Predict(const Model& m) const {
    if (std::optional<CatalogError> e = NameVersionError(name, version)) return e;
    const std::string& v = *Versions()[version].normalized;
    if (v.empty()) return CatalogError::kInvalidVersion;
    if (!m.Find(type, Names()[name].text, v).has_value()) return CatalogError::kNotFound;
    return std::nullopt;
  }

  void apply(Model& m) const override {
    if (!Predict(m).has_value()) {
      m.pins[{type, Names()[name].text}] = *Versions()[version].normalized;
    }
  }

  void run(const Model& m, Sut& sut) const override {
    AssertOutcome(sut.catalog->Pin(type, Names()[name].text, Versions()[version].text), Predict(m));
  }

  void show(std::ostream& os) const override {
    os << "Pin(" << PluginTypeName(type) << ", \"" << Names()[name].text << "\", \""
       << Versions()[version].text << "\")";
  }
};

struct Unpin : CatalogCommand {
  PluginType type = PickType();
  size_t name = PickName();

  void apply(Model& m) const override {
    if (Names()[name].valid) m.pins.erase({type, Names()[name].text});
  }

  void run(const Model& m, Sut& sut) const override {
    // First the pin as it is now, then the unpin.
    absl::StatusOr<std::optional<std::string>> pinned =
        sut.catalog->GetPinned(type, Names()[name].text);
    const std::optional<CatalogError> error =
        Names()[name].valid ? std::nullopt
                            : std::optional<CatalogError>(CatalogError::kInvalidName);
    AssertOutcome(pinned.status(), error);
    if (pinned.ok()) {
      auto it = m.pins.find({type, Names()[name].text});
      RC_ASSERT(*pinned ==
                (it == m.pins.end() ? std::nullopt : std::optional<std::string>(it->second)));
    }
    AssertOutcome(sut.catalog->Unpin(type, Names()[name].text), error);
  }

  void show(std::ostream& os) const override {
    os << "Unpin(" << PluginTypeName(type) << ", \"" << Names()[name].text << "\")";
  }
};

// A new catalog over the same storage sees exactly what the old one did; it then replaces it.
struct Reload : CatalogCommand {
  void run(const Model& m, Sut& sut) const override {
    absl::StatusOr<std::unique_ptr<Catalog>> reopened =
        Catalog::Open(sut.world.storage(), sut.world.fs(), sut.options);
    if (!reopened.ok()) RC_FAIL("reopen: " + reopened.status().ToString());
    for (PluginType type : kAllPluginTypes) {
      AssertViews((*reopened)->List(type), m.List(type));
      AssertViews((*reopened)->List(type), sut.catalog->List(type));
      for (size_t n = 0; n < kValidNames; ++n) {
        absl::StatusOr<std::optional<std::string>> pinned =
            (*reopened)->GetPinned(type, Names()[n].text);
        RC_ASSERT(pinned.ok());
        auto it = m.pins.find({type, Names()[n].text});
        RC_ASSERT(*pinned ==
                  (it == m.pins.end() ? std::nullopt : std::optional<std::string>(it->second)));
      }
    }
    RC_ASSERT((*reopened)->entry_count() == m.entries.size());
    sut.catalog = std::move(*reopened);
  }

  void show(std::ostream& os) const override { os << "Reload()"; }
};

RC_GTEST_PROP(CatalogModelTest, CatalogBehavesLikeTheModel, ()) {
  Model model;
  Sut sut;
  rc::state::check(model, sut,
                   rc::state::gen::execOneOfWithArgs<Register, Register, Register, Get, List,
                                                     Delete, Pin, Unpin, Reload>());
}

}  // namespace
}  // namespace bulwark::catalog
