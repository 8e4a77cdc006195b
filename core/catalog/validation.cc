// Input validation for the plugin catalog (see validation.h).
#include "core/catalog/validation.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status/status_macros.h"
#include "core/catalog/catalog_error.h"

namespace bulwark::catalog {
namespace {

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

absl::Status InvalidVersion(absl::string_view text, absl::string_view why) {
  return CatalogStatus(
      absl::StatusCode::kInvalidArgument, CatalogError::kInvalidVersion,
      absl::StrCat("version ", QuoteForMessage(text), ": ", why,
                   "; give a semantic version such as \"v1.2.3\", \"v1.2.3-rc.1\" or "
                   "\"v1.2.3+build.5\", or leave it empty for the unversioned entry"));
}

// Dot-separated identifiers of [0-9A-Za-z-]; numeric ones without leading zeros when
// `numeric_no_leading_zero` (prerelease) is set.
absl::StatusOr<std::vector<std::string>> ParseIdentifiers(absl::string_view full,
                                                          absl::string_view part,
                                                          absl::string_view what,
                                                          bool numeric_no_leading_zero) {
  std::vector<std::string> out;
  for (absl::string_view id : absl::StrSplit(part, '.')) {
    if (id.empty()) {
      return InvalidVersion(full, absl::StrCat("an empty ", what, " identifier"));
    }
    bool numeric = true;
    for (char c : id) {
      if (!IsAsciiAlnum(c) && c != '-') {
        return InvalidVersion(full, absl::StrCat(what, " identifiers may hold only 0-9 A-Z a-z -"));
      }
      if (!IsDigit(c)) numeric = false;
    }
    if (numeric_no_leading_zero && numeric && id.size() > 1 && id[0] == '0') {
      return InvalidVersion(full,
                            absl::StrCat("a numeric ", what, " identifier has a leading zero"));
    }
    out.emplace_back(id);
  }
  return out;
}

// Compares decimal strings without leading zeros.
int CompareNumeric(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
}

bool AllDigits(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsDigit);
}

// semver.org rule 11: a version with a prerelease has lower precedence; identifiers compare
// numerically when both are numeric, numeric below alphanumeric, else ASCII; a shorter list of
// equal prefix is lower.
int ComparePrecedence(const SemVer& a, const SemVer& b) {
  if (int c = CompareNumeric(a.major, b.major)) return c;
  if (int c = CompareNumeric(a.minor, b.minor)) return c;
  if (int c = CompareNumeric(a.patch, b.patch)) return c;
  if (a.prerelease.empty() != b.prerelease.empty()) return a.prerelease.empty() ? 1 : -1;
  for (size_t i = 0; i < std::min(a.prerelease.size(), b.prerelease.size()); ++i) {
    const std::string& x = a.prerelease[i];
    const std::string& y = b.prerelease[i];
    const bool xn = AllDigits(x), yn = AllDigits(y);
    int c;
    if (xn && yn) {
      c = CompareNumeric(x, y);
    } else if (xn != yn) {
      c = xn ? -1 : 1;
    } else {
      c = x.compare(y) < 0 ? -1 : (x == y ? 0 : 1);
    }
    if (c != 0) return c;
  }
  if (a.prerelease.size() != b.prerelease.size()) {
    return a.prerelease.size() < b.prerelease.size() ? -1 : 1;
  }
  return 0;
}

int Bytewise(absl::string_view a, absl::string_view b) {
  const int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

absl::Status InvalidCommand(CatalogError error, absl::string_view command, absl::string_view why) {
  return CatalogStatus(absl::StatusCode::kInvalidArgument, error,
                       absl::StrCat("command ", QuoteForMessage(command), ": ", why));
}

bool IsEnvKeyChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && IsDigit(c));
}

}  // namespace

absl::string_view PluginTypeName(PluginType type) {
  switch (type) {
    case PluginType::kAuth:
      return "auth";
    case PluginType::kDatabase:
      return "database";
    case PluginType::kSecret:
      return "secret";
  }
  return "unknown";
}

absl::StatusOr<PluginType> ParsePluginType(absl::string_view text) {
  for (PluginType type : kAllPluginTypes) {
    if (PluginTypeName(type) == text) return type;
  }
  return CatalogStatus(absl::StatusCode::kInvalidArgument, CatalogError::kInvalidType,
                       absl::StrCat("type ", QuoteForMessage(text),
                                    ": must be \"auth\", \"database\" or \"secret\""));
}

absl::StatusOr<SemVer> ParseSemVer(absl::string_view text) {
  if (text.size() > kVersionBytesMax) {
    return InvalidVersion(text, absl::StrCat("longer than ", kVersionBytesMax, " bytes"));
  }
  absl::string_view rest = text;
  if (!rest.empty() && rest.front() == 'v') rest.remove_prefix(1);
  SemVer out;
  absl::string_view core = rest;
  absl::string_view build;
  absl::string_view prerelease;
  bool has_build = false, has_prerelease = false;
  if (size_t plus = core.find('+'); plus != absl::string_view::npos) {
    build = core.substr(plus + 1);
    core = core.substr(0, plus);
    has_build = true;
  }
  if (size_t dash = core.find('-'); dash != absl::string_view::npos) {
    prerelease = core.substr(dash + 1);
    core = core.substr(0, dash);
    has_prerelease = true;
  }
  std::vector<absl::string_view> numbers = absl::StrSplit(core, '.');
  if (numbers.size() != 3) {
    return InvalidVersion(text, "needs exactly MAJOR.MINOR.PATCH");
  }
  for (absl::string_view n : numbers) {
    if (!AllDigits(n))
      return InvalidVersion(text, "MAJOR, MINOR and PATCH must be decimal numbers");
    if (n.size() > 1 && n[0] == '0') {
      return InvalidVersion(text, "MAJOR, MINOR and PATCH must not have leading zeros");
    }
  }
  out.major = std::string(numbers[0]);
  out.minor = std::string(numbers[1]);
  out.patch = std::string(numbers[2]);
  if (has_prerelease) {
    ASSIGN_OR_RETURN(out.prerelease, ParseIdentifiers(text, prerelease, "prerelease", true));
  }
  if (has_build) {
    ASSIGN_OR_RETURN(out.build, ParseIdentifiers(text, build, "build metadata", false));
  }
  return out;
}

std::string FormatSemVer(const SemVer& version) {
  std::string out = absl::StrCat("v", version.major, ".", version.minor, ".", version.patch);
  if (!version.prerelease.empty())
    absl::StrAppend(&out, "-", absl::StrJoin(version.prerelease, "."));
  if (!version.build.empty()) absl::StrAppend(&out, "+", absl::StrJoin(version.build, "."));
  return out;
}

absl::StatusOr<std::string> NormalizeVersion(absl::string_view text) {
  if (text.empty()) return std::string();
  ASSIGN_OR_RETURN(SemVer version, ParseSemVer(text));
  return FormatSemVer(version);
}

bool IsBuiltinVersion(absl::string_view version) {
  if (version.empty()) return false;
  absl::StatusOr<SemVer> parsed = ParseSemVer(version);
  if (!parsed.ok()) return false;
  return std::find(parsed->build.begin(), parsed->build.end(), "builtin") != parsed->build.end();
}

int CompareVersions(absl::string_view a, absl::string_view b) {
  if (a.empty() || b.empty()) return a.empty() == b.empty() ? 0 : (a.empty() ? -1 : 1);
  absl::StatusOr<SemVer> va = ParseSemVer(a);
  absl::StatusOr<SemVer> vb = ParseSemVer(b);
  if (va.ok() != vb.ok()) return va.ok() ? -1 : 1;
  if (va.ok()) {
    if (int c = ComparePrecedence(*va, *vb)) return c;
  }
  return Bytewise(a, b);
}

absl::Status ValidateName(absl::string_view name) {
  auto refuse = [&](absl::string_view why) {
    return CatalogStatus(
        absl::StatusCode::kInvalidArgument, CatalogError::kInvalidName,
        absl::StrCat("name ", QuoteForMessage(name), ": ", why, "; use 1-", kNameBytesMax,
                     " characters of A-Z a-z 0-9 . _ - starting with a letter or digit"));
  };
  if (name.empty()) return refuse("is empty");
  if (name.size() > kNameBytesMax) {
    return refuse(absl::StrCat("is ", name.size(), " bytes long"));
  }
  if (!IsAsciiAlnum(name[0])) return refuse("must start with a letter or digit");
  for (char c : name) {
    if (!IsAsciiAlnum(c) && c != '.' && c != '_' && c != '-') {
      return refuse("contains a character outside A-Z a-z 0-9 . _ -");
    }
  }
  if (name.find("..") != absl::string_view::npos) return refuse("contains \"..\"");
  return absl::OkStatus();
}

absl::Status ValidateCommand(absl::string_view command) {
  constexpr absl::string_view kFix =
      "; give the artifact's path relative to the plugin directory, e.g. \"my-plugin\", and pass "
      "arguments in args";
  if (command.empty()) {
    return InvalidCommand(CatalogError::kInvalidCommand, command, absl::StrCat("is empty", kFix));
  }
  if (command.size() > kCommandBytesMax) {
    return InvalidCommand(CatalogError::kInvalidCommand, command,
                          absl::StrCat("is longer than ", kCommandBytesMax, " bytes", kFix));
  }
  if (command.front() == '/') {
    return InvalidCommand(CatalogError::kCommandAbsolute, command,
                          "must be relative to the plugin directory, not an absolute path; copy "
                          "the plugin into the plugin directory and give its name there");
  }
  if (command.find("..") != absl::string_view::npos) {
    return InvalidCommand(CatalogError::kCommandParentReference, command,
                          "must be a path inside the plugin directory without \"..\"; copy the "
                          "plugin into the plugin directory");
  }
  for (char c : command) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return InvalidCommand(CatalogError::kInvalidCommand, command,
                            absl::StrCat("contains a space or control character", kFix));
    }
  }
  if (!IsValidUtf8(command)) {
    return InvalidCommand(CatalogError::kInvalidCommand, command,
                          absl::StrCat("is not valid UTF-8", kFix));
  }
  for (absl::string_view segment : absl::StrSplit(command, '/')) {
    if (segment.empty() || segment == ".") {
      return InvalidCommand(
          CatalogError::kInvalidCommand, command,
          absl::StrCat("has an empty or \".\" path segment (or a trailing '/')", kFix));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateArgs(const std::vector<std::string>& args) {
  auto refuse = [](std::string why) {
    return CatalogStatus(absl::StatusCode::kInvalidArgument, CatalogError::kInvalidArgs, why);
  };
  if (args.size() > kArgsMax) {
    return refuse(absl::StrCat("args: ", args.size(), " arguments exceed the limit of ", kArgsMax,
                               "; pass fewer arguments or use a configuration file"));
  }
  size_t total = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() > kArgBytesMax) {
      return refuse(absl::StrCat("args[", i, "]: ", arg.size(), " bytes exceed the limit of ",
                                 kArgBytesMax, "; shorten the argument"));
    }
    total += arg.size();
    if (total > kArgsTotalBytesMax) {
      return refuse(absl::StrCat("args: together more than ", kArgsTotalBytesMax,
                                 " bytes; shorten the arguments"));
    }
    if (arg.find('\0') != std::string::npos) {
      return refuse(absl::StrCat("args[", i, "]: contains a NUL byte; remove it"));
    }
    if (!IsValidUtf8(arg)) {
      return refuse(absl::StrCat("args[", i, "]: is not valid UTF-8; fix its encoding"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateEnv(const std::vector<std::string>& env) {
  auto refuse = [](std::string why) {
    return CatalogStatus(absl::StatusCode::kInvalidArgument, CatalogError::kInvalidEnv, why);
  };
  if (env.size() > kEnvMax) {
    return refuse(absl::StrCat("env: ", env.size(), " entries exceed the limit of ", kEnvMax,
                               "; pass fewer variables"));
  }
  std::set<absl::string_view> keys;
  size_t total = 0;
  for (size_t i = 0; i < env.size(); ++i) {
    const std::string& entry = env[i];
    const size_t eq = entry.find('=');
    // Only a key that is well-formed is ever shown: a malformed entry may be a value.
    if (eq == std::string::npos || eq == 0) {
      return refuse(absl::StrCat("env[", i, "]: must have the form KEY=value"));
    }
    const absl::string_view key(entry.data(), eq);
    if (key.size() > kEnvKeyBytesMax) {
      return refuse(absl::StrCat("env[", i, "]: the key is longer than ", kEnvKeyBytesMax,
                                 " bytes; use a shorter variable name"));
    }
    for (size_t k = 0; k < key.size(); ++k) {
      if (!IsEnvKeyChar(key[k], k == 0)) {
        return refuse(absl::StrCat("env[", i,
                                   "]: the key must match [A-Za-z_][A-Za-z0-9_]*; rename the "
                                   "variable"));
      }
    }
    if (entry.size() > kEnvEntryBytesMax) {
      return refuse(absl::StrCat("env[", i, "] (", key, "): ", entry.size(),
                                 " bytes exceed the limit of ", kEnvEntryBytesMax,
                                 "; pass large values through a file"));
    }
    total += entry.size();
    if (total > kEnvTotalBytesMax) {
      return refuse(absl::StrCat("env: together more than ", kEnvTotalBytesMax,
                                 " bytes; pass large values through a file"));
    }
    if (entry.find('\0') != std::string::npos) {
      return refuse(absl::StrCat("env[", i, "] (", key, "): the value contains a NUL byte"));
    }
    if (!IsValidUtf8(entry)) {
      return refuse(absl::StrCat("env[", i, "] (", key, "): the value is not valid UTF-8"));
    }
    if (!keys.insert(key).second) {
      return refuse(absl::StrCat("env[", i, "] (", key,
                                 "): the key appears more than once; keep one entry per key"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> NormalizeSha256(absl::string_view hex) {
  auto refuse = [&](absl::string_view why) {
    return CatalogStatus(
        absl::StatusCode::kInvalidArgument, CatalogError::kInvalidSha256,
        absl::StrCat("sha256: ", why, "; give the artifact's SHA-256 as ", kSha256HexChars,
                     " hexadecimal characters (the output of \"sha256sum <file>\")"));
  };
  if (hex.size() != kSha256HexChars) {
    return refuse(absl::StrCat("has ", hex.size(), " characters"));
  }
  std::string out(hex);
  for (char& c : out) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!IsDigit(c) && !(c >= 'a' && c <= 'f'))
      return refuse("contains a non-hexadecimal character");
  }
  return out;
}

absl::StatusOr<RegisterRequest> ValidateRegisterRequest(const RegisterRequest& request) {
  RegisterRequest out;
  out.type = request.type;
  if (PluginTypeName(request.type) == "unknown") {
    return CatalogStatus(absl::StatusCode::kInvalidArgument, CatalogError::kInvalidType,
                         "type: must be auth, database or secret");
  }
  RETURN_IF_ERROR(ValidateName(request.name));
  out.name = request.name;
  ASSIGN_OR_RETURN(out.version, NormalizeVersion(request.version));
  if (IsBuiltinVersion(out.version)) {
    return CatalogStatus(absl::StatusCode::kInvalidArgument, CatalogError::kReservedVersion,
                         absl::StrCat("version ", QuoteForMessage(request.version),
                                      ": \"builtin\" build metadata is reserved for plugins "
                                      "compiled into the server; drop the \"+builtin\" part"));
  }
  RETURN_IF_ERROR(ValidateCommand(request.command));
  out.command = request.command;
  RETURN_IF_ERROR(ValidateArgs(request.args));
  out.args = request.args;
  RETURN_IF_ERROR(ValidateEnv(request.env));
  out.env = request.env;
  ASSIGN_OR_RETURN(out.sha256, NormalizeSha256(request.sha256));
  // Issue 17: per-entry limits. Found by catalog_input_fuzzer once it fuzzed limits: the range
  // error had no catalog reason.
  if (absl::Status limits = ValidateLimits(request.limits); !limits.ok()) {
    return CatalogStatus(absl::StatusCode::kInvalidArgument, CatalogError::kInvalidLimits,
                         limits.message());
  }
  out.limits = request.limits;
  out.signature = request.signature;  // Parsed and checked by the catalog (signature.h).
  return out;
}

absl::string_view EnvKey(absl::string_view entry) {
  const size_t eq = entry.find('=');
  return eq == absl::string_view::npos ? entry : entry.substr(0, eq);
}

bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

std::string QuoteForMessage(absl::string_view text, size_t max_bytes) {
  const bool cut = text.size() > max_bytes;
  std::string out = absl::StrCat("\"", absl::CHexEscape(text.substr(0, max_bytes)), "\"");
  if (cut) out += "...";
  return out;
}

}  // namespace bulwark::catalog
