// Parsing and formatting of go-plugin's handshake line, and the plugin-side version choice.
// Checks run in go-plugin's host order (core version, app version, network, protocol, cert,
// mux; client.go HEAD L834-945) so a line with several faults reports the one go-plugin would.
#include "protocol/handshake.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status/status_macros.h"
#include "protocol/base64.h"

namespace bulwark::protocol {
namespace {

constexpr const char* kFieldNames[] = {"CORE",     "APP",  "NETWORK", "ADDRESS",
                                       "PROTOCOL", "CERT", "MUX"};
constexpr size_t kFieldsMin = 5;
constexpr size_t kFieldsMax = 7;
// A version field longer than this is not a version (and would overflow an int).
constexpr size_t kVersionDigitsMax = 9;

absl::Status LineError(absl::StatusCode code, absl::string_view what, absl::string_view line) {
  return absl::Status(code,
                      absl::StrCat("plugin handshake: ", what, " in line ", QuoteForError(line)));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Plain decimal as go-plugin prints it with %d: digits only (no sign, no spaces), at most
// kVersionDigitsMax of them.
std::optional<int> ParseVersionField(absl::string_view field) {
  if (field.empty() || field.size() > kVersionDigitsMax) return std::nullopt;
  int value = 0;
  for (char c : field) {
    if (!IsDigit(c)) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// Go's strconv.ParseBool.
std::optional<bool> ParseGoBool(absl::string_view s) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False") {
    return false;
  }
  return std::nullopt;
}

// Go's strconv.Atoi in base 10 on a 64-bit platform: optional sign, then one or more digits,
// within int64.
std::optional<int64_t> ParseGoAtoi(absl::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  // Accumulate as a negative number so that INT64_MIN fits.
  int64_t value = 0;
  for (char c : s) {
    if (!IsDigit(c)) return std::nullopt;
    const int digit = c - '0';
    if (value < (std::numeric_limits<int64_t>::min() + digit) / 10) return std::nullopt;
    value = value * 10 - digit;
  }
  if (!negative) {
    if (value == std::numeric_limits<int64_t>::min()) return std::nullopt;
    value = -value;
  }
  return value;
}

std::string VersionList(const std::vector<int>& versions) {
  return absl::StrCat("[", absl::StrJoin(versions, ", "), "]");
}

absl::Status CheckVersionList(const std::vector<int>& versions, absl::string_view what) {
  if (versions.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  }
  if (versions.size() > kProtocolVersionsMax) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has ", versions.size(),
                                                   " entries; at most ", kProtocolVersionsMax,
                                                   " are allowed"));
  }
  std::set<int> seen;
  for (int v : versions) {
    if (!seen.insert(v).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " ", VersionList(versions), " lists version ", v, " twice"));
    }
  }
  return absl::OkStatus();
}

bool IsHostnameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '.' || c == '-' ||
         c == '_';
}

bool IsBracketedHostChar(char c) {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || IsDigit(c) || c == ':' || c == '.' ||
         c == '%' || IsHostnameChar(c);  // Zone ids ("%eth0") may hold names.
}

// Checks "host:port" as a listener's Addr().String() prints it: an IPv4 address or name, or
// a bracketed IPv6 address, then a port in 1-65535. Returns a description of the fault.
std::optional<std::string> TcpAddressFault(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return "tcp address has no \":port\"";
  const absl::string_view host = address.substr(0, colon);
  const absl::string_view port = address.substr(colon + 1);
  if (host.empty()) return "tcp address has an empty host";
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return "tcp address has an unterminated \"[\"";
    for (char c : host.substr(1, host.size() - 2)) {
      if (!IsBracketedHostChar(c)) return "tcp address has an invalid IPv6 host";
    }
  } else {
    for (char c : host) {
      if (c == ':') return "tcp address has an IPv6 host without brackets";
      if (!IsHostnameChar(c)) return "tcp address has an invalid host";
    }
  }
  if (port.empty() || port.size() > 5) return "tcp address has an invalid port";
  int value = 0;
  for (char c : port) {
    if (!IsDigit(c)) return "tcp address has a non-numeric port";
    value = value * 10 + (c - '0');
  }
  if (value < 1 || value > 65535) return "tcp address has a port outside 1-65535";
  return std::nullopt;
}

}  // namespace

absl::StatusOr<HandshakeLine> ParseHandshakeLine(absl::string_view line,
                                                 const std::vector<int>& offered_app_versions) {
  RETURN_IF_ERROR(CheckVersionList(offered_app_versions, "plugin handshake: offered versions"));

  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) {
    return absl::InvalidArgumentError(
        "plugin handshake: the plugin's first stdout line is empty; a go-plugin plugin prints "
        "CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT before anything else");
  }
  if (line.size() > kHandshakeLineBytesMax) {
    return LineError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("line is ", line.size(), " bytes, longer than the ",
                                  kHandshakeLineBytesMax, "-byte limit"),
                     line);
  }
  for (size_t i = 0; i < line.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (c < 0x20 || c == 0x7f) {
      return LineError(
          absl::StatusCode::kInvalidArgument,
          absl::StrCat("control character 0x", absl::Hex(c, absl::kZeroPad2), " at offset ", i),
          line);
    }
  }

  const std::vector<absl::string_view> fields = absl::StrSplit(line, '|');
  if (fields.size() < kFieldsMin - 1 || fields.size() > kFieldsMax) {
    return LineError(
        absl::StatusCode::kInvalidArgument,
        absl::StrCat("unrecognized message: expected 5 to 7 '|'-separated fields "
                     "CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT[|MUX], got ",
                     fields.size(), " (is the executable a go-plugin plugin, and is it printing ",
                     "something else to stdout first?)"),
        line);
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    const absl::string_view f = fields[i];
    if (!f.empty() && (f.front() == ' ' || f.back() == ' ')) {
      return LineError(absl::StatusCode::kInvalidArgument,
                       absl::StrCat("field ", i + 1, " (", kFieldNames[i],
                                    ") has leading or trailing whitespace"),
                       line);
    }
  }

  HandshakeLine hs;
  const std::optional<int> core = ParseVersionField(fields[0]);
  if (!core.has_value()) {
    return LineError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("core protocol version ", QuoteForError(fields[0]),
                                  " is not a decimal integer"),
                     line);
  }
  if (*core != kCoreProtocolVersion) {
    return LineError(absl::StatusCode::kFailedPrecondition,
                     absl::StrCat("expected core protocol version ", kCoreProtocolVersion, ", got ",
                                  QuoteForError(fields[0])),
                     line);
  }
  hs.core_version = *core;

  const std::optional<int> app = ParseVersionField(fields[1]);
  if (!app.has_value()) {
    return LineError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("app protocol version ", QuoteForError(fields[1]),
                                  " is not a decimal integer"),
                     line);
  }
  if (std::find(offered_app_versions.begin(), offered_app_versions.end(), *app) ==
      offered_app_versions.end()) {
    return LineError(absl::StatusCode::kFailedPrecondition,
                     absl::StrCat("the plugin chose app protocol version ", *app,
                                  ", but the host offered only ", VersionList(offered_app_versions),
                                  " (the plugin was built for another protocol version)"),
                     line);
  }
  hs.app_version = *app;

  const absl::string_view network = fields[2];
  const absl::string_view address = fields[3];
  if (network == "unix") {
    if (address.empty() || address.front() != '/') {
      return LineError(absl::StatusCode::kInvalidArgument,
                       "unix socket address is not an absolute path", line);
    }
    if (address.size() > kUnixSocketPathBytesMax) {
      return LineError(absl::StatusCode::kInvalidArgument,
                       absl::StrCat("unix socket path is ", address.size(),
                                    " bytes, longer than the ", kUnixSocketPathBytesMax,
                                    "-byte limit of sockaddr_un (set a shorter TMPDIR)"),
                       line);
    }
  } else if (network == "tcp") {
    if (std::optional<std::string> fault = TcpAddressFault(address); fault.has_value()) {
      return LineError(absl::StatusCode::kInvalidArgument, *fault, line);
    }
  } else {
    return LineError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("unknown network type ", QuoteForError(network),
                                  " (expected \"unix\" or \"tcp\")"),
                     line);
  }
  hs.network = std::string(network);
  hs.address = std::string(address);

  if (fields.size() == kFieldsMin - 1) {
    return LineError(absl::StatusCode::kUnimplemented,
                     "no PROTOCOL field, which go-plugin reads as \"netrpc\"; bulwark speaks only "
                     "\"grpc\" (serve the plugin with a GRPCServer)",
                     line);
  }
  const absl::string_view protocol = fields[4];
  if (protocol == "netrpc") {
    return LineError(absl::StatusCode::kUnimplemented,
                     "protocol \"netrpc\" (Go net/rpc) is not supported; bulwark speaks only "
                     "\"grpc\" (serve the plugin with a GRPCServer)",
                     line);
  }
  if (protocol != "grpc") {
    return LineError(absl::StatusCode::kUnimplemented,
                     absl::StrCat("unsupported protocol ", QuoteForError(protocol),
                                  " (bulwark speaks only \"grpc\")"),
                     line);
  }
  hs.protocol = std::string(protocol);

  if (fields.size() >= 6 && fields[5].size() > kCertFieldBytesIgnoredMax) {
    absl::StatusOr<std::string> der = Base64RawStdDecode(fields[5]);
    if (!der.ok()) {
      return LineError(absl::StatusCode::kInvalidArgument,
                       absl::StrCat("AutoMTLS certificate field is not unpadded standard base64 ",
                                    "(base64.RawStdEncoding): ", der.status().message()),
                       line);
    }
    if (static_cast<unsigned char>((*der)[0]) != 0x30) {
      return LineError(absl::StatusCode::kInvalidArgument,
                       "AutoMTLS certificate field does not decode to DER (no ASN.1 SEQUENCE)",
                       line);
    }
    hs.server_cert_der = *std::move(der);
  }

  if (fields.size() == 7) {
    const std::optional<bool> mux = ParseGoBool(fields[6]);
    if (!mux.has_value()) {
      return LineError(
          absl::StatusCode::kInvalidArgument,
          absl::StrCat("multiplexing field ", QuoteForError(fields[6]), " is not a boolean"), line);
    }
    hs.multiplex_supported = *mux;
  }
  return hs;
}

std::string FormatHandshakeLine(const HandshakeLine& hs) {
  std::string line =
      absl::StrCat(hs.core_version, "|", hs.app_version, "|", hs.network, "|", hs.address, "|",
                   hs.protocol, "|", Base64RawStdEncode(hs.server_cert_der));
  if (hs.multiplex_supported.has_value()) {
    absl::StrAppend(&line, "|", *hs.multiplex_supported ? "true" : "false");
  }
  return line;
}

absl::Status CheckMultiplexSupport(const HandshakeLine& hs, bool multiplex_requested) {
  if (!multiplex_requested || hs.multiplex_supported == true) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "plugin handshake: the host asked for gRPC broker multiplexing (PLUGIN_MULTIPLEX_GRPC) but "
      "the plugin ",
      hs.multiplex_supported.has_value() ? "answered false" : "sent no 7th field",
      "; for Go plugins, update the github.com/hashicorp/go-plugin dependency to v1.6.0 or "
      "later and rebuild"));
}

absl::StatusOr<NegotiatedVersion> NegotiateProtocolVersion(
    absl::string_view env_value, const std::vector<int>& supported_versions) {
  RETURN_IF_ERROR(CheckVersionList(supported_versions, "plugin supported versions"));
  if (env_value.size() > kProtocolVersionsEnvBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("PLUGIN_PROTOCOL_VERSIONS is ", env_value.size(), " bytes, longer than the ",
                     kProtocolVersionsEnvBytesMax, "-byte limit: ", QuoteForError(env_value)));
  }
  NegotiatedVersion result;
  std::set<int64_t> host_versions;
  if (!env_value.empty()) {
    for (absl::string_view entry : absl::StrSplit(env_value, ',')) {
      if (std::optional<int64_t> v = ParseGoAtoi(entry); v.has_value()) {
        host_versions.insert(*v);
      } else {
        result.invalid_entries.emplace_back(entry);
      }
    }
  }
  std::vector<int> sorted = supported_versions;
  std::sort(sorted.begin(), sorted.end(), [](int a, int b) { return a > b; });
  for (int v : sorted) {
    if (host_versions.count(v) != 0) {
      result.version = v;
      result.matched = true;
      return result;
    }
  }
  result.version = sorted.back();
  result.matched = false;
  return result;
}

}  // namespace bulwark::protocol
