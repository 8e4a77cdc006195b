// The go-plugin handshake line (what a plugin prints so its host can connect) and app-protocol
// version negotiation: pure string handling for host and SDK, no gRPC or OpenSSL.
//
// Wire format (hashicorp/go-plugin server.go `Serve`; v1.0.1 and HEAD dd3617ad):
//
//   CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT[|MUX]\n
//
//   CORE      always 1 (CoreProtocolVersion)
//   APP       the negotiated app-protocol version, e.g. 5 for Vault backends
//   NETWORK   "unix" or "tcp"
//   ADDRESS   socket path, or host:port
//   PROTOCOL  "grpc" or "netrpc"
//   CERT      "" or the plugin's AutoMTLS leaf certificate: DER in base64.RawStdEncoding
//   MUX       only when the host set PLUGIN_MULTIPLEX_GRPC (go-plugin >= v1.6.0): "true"
#ifndef BULWARK_PROTOCOL_HANDSHAKE_H_
#define BULWARK_PROTOCOL_HANDSHAKE_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/status/quote.h"

namespace bulwark::protocol {

// go-plugin's CoreProtocolVersion (server.go: `const CoreProtocolVersion = 1`).
inline constexpr int kCoreProtocolVersion = 1;

// Longest handshake line bulwark accepts, not counting the line break. A go-plugin line with a
// P-521 AutoMTLS certificate is about 830 bytes (an RSA-4096 leaf would be about 2 KiB), so
// 4 KiB leaves room without letting a broken plugin make the host buffer much. go-plugin's own
// host reads the line with a default bufio.Scanner and so allows up to 65535 bytes
// (bufio.MaxScanTokenSize = 64 KiB, including the '\n').
inline constexpr size_t kHandshakeLineBytesMax = 4 * 1024;

// Longest unix socket path: sockaddr_un.sun_path is 108 bytes on Linux and gRPC's "unix:" target
// needs a terminating NUL ("Path name should not have more than 107 characters").
inline constexpr size_t kUnixSocketPathBytesMax = 107;

// go-plugin's host decodes the CERT field only when it is longer than this; shorter values are
// the padded base64 "extra" data that go-plugin before v1.0.0 printed in that position
// (client.go: `if len(parts) >= 6 && len(parts[5]) > 50`). bulwark does the same.
inline constexpr size_t kCertFieldBytesIgnoredMax = 50;

// Most entries accepted in an offered or supported version list, and the longest
// PLUGIN_PROTOCOL_VERSIONS value a plugin parses.
inline constexpr size_t kProtocolVersionsMax = 64;
inline constexpr size_t kProtocolVersionsEnvBytesMax = 4 * 1024;

// One parsed handshake line.
struct HandshakeLine {
  int core_version = kCoreProtocolVersion;
  int app_version = 0;
  std::string network;   // "unix" or "tcp".
  std::string address;   // An absolute socket path, or "host:port" / "[v6]:port".
  std::string protocol;  // "grpc" after parsing (the only protocol bulwark speaks).
  // The plugin's AutoMTLS leaf certificate, DER; empty when the plugin runs without AutoMTLS.
  std::string server_cert_der;
  // The 7th field, present only when the host asked for gRPC broker multiplexing
  // (PLUGIN_MULTIPLEX_GRPC): whether the plugin supports it. go-plugin plugins always print
  // "true" there (server.go HEAD L425-446: `const grpcBrokerMultiplexingSupported = true`), and
  // they print it whenever PLUGIN_MULTIPLEX_GRPC is non-empty, even "false".
  std::optional<bool> multiplex_supported;

  friend bool operator==(const HandshakeLine& a, const HandshakeLine& b) {
    return a.core_version == b.core_version && a.app_version == b.app_version &&
           a.network == b.network && a.address == b.address && a.protocol == b.protocol &&
           a.server_cert_der == b.server_cert_der && a.multiplex_supported == b.multiplex_supported;
  }
  friend bool operator!=(const HandshakeLine& a, const HandshakeLine& b) { return !(a == b); }
};

// Parses the first stdout line of a plugin (host side). One trailing line break ("\n", "\r\n",
// or the "\r" a line splitter leaves of "\r\n") is removed first. Stricter than go-plugin's host,
// which trims all surrounding whitespace and accepts 4 fields (meaning net/rpc): every deviation
// from what go-plugin's `Serve` prints is an error, so a broken plugin is reported at once instead
// of failing later.
//
// Accepted: 5, 6 or 7 '|'-separated fields, at most kHandshakeLineBytesMax bytes; no control
// characters anywhere, no whitespace at either end of any field (a unix socket path may contain
// interior spaces, e.g. from TMPDIR); CORE == 1; APP one of `offered_app_versions`, in plain
// decimal; NETWORK "unix" with an absolute path of at most kUnixSocketPathBytesMax bytes, or
// "tcp" with host:port (port 1-65535); PROTOCOL "grpc"; CERT empty, at most
// kCertFieldBytesIgnoredMax bytes (ignored, as go-plugin does), or unpadded standard base64 of
// DER that starts with an ASN.1 SEQUENCE (full certificate checks belong to the TLS adapter:
// tls_certs.h ParseCertDer); MUX, if present, a Go strconv.ParseBool spelling ("true", "1",
// "t", "T", "TRUE", "True" and the matching false forms), as go-plugin's host accepts.
//
// Every error message starts with "plugin handshake: ", says what was wrong, and quotes the line
// (control characters escaped, cut to about 120 bytes), e.g.
//   plugin handshake: expected core protocol version 1, got "2" in line "2|5|unix|/tmp/x|grpc"
// Errors:
//   InvalidArgument     malformed: too long, wrong number of fields, control characters or
//                       stray whitespace, a non-numeric version, an unknown network, a bad
//                       address, a CERT that is not unpadded base64 of DER, a bad MUX value;
//                       also an empty or oversized `offered_app_versions` (a caller error)
//   FailedPrecondition  well formed but incompatible: CORE is not 1, or APP was not offered
//   Unimplemented       PROTOCOL is "netrpc" (or absent: 4 fields), or any protocol but "grpc"
absl::StatusOr<HandshakeLine> ParseHandshakeLine(absl::string_view line,
                                                 const std::vector<int>& offered_app_versions);

// Formats `hs` as the plugin prints it (SDK side), without the trailing '\n': the plugin writes
// this, then '\n', to its real stdout as its first output and flushes. The CERT field is
// Base64RawStdEncode(server_cert_der) (empty without AutoMTLS); the 7th field is appended only
// when `multiplex_supported` is set, which a plugin must do exactly when its environment has
// PLUGIN_MULTIPLEX_GRPC (older hosts split the line into at most 6 fields and would read
// "CERT|true" as the certificate). For every line ParseHandshakeLine accepts in canonical form
// (decimal without leading zeros, MUX "true"/"false", CERT empty or decoded), Format(Parse(l))
// == l. Does not validate `hs`.
std::string FormatHandshakeLine(const HandshakeLine& hs);

// What the host must check when it asked for broker multiplexing: mirrors go-plugin's host
// (client.go HEAD L933-943), which fails if a gRPC plugin sent no 7th field or "false".
// Errors: FailedPrecondition when `multiplex_requested` and the plugin did not confirm it
// ("update the plugin's go-plugin dependency to v1.6.0 or later"). OK when not requested.
absl::Status CheckMultiplexSupport(const HandshakeLine& hs, bool multiplex_requested);

// The plugin side of version negotiation, as go-plugin's `protocolVersion()` (server.go: v1.0.1
// L93, HEAD L148-221, same logic) does it.
struct NegotiatedVersion {
  // The highest of `supported_versions` that also appears in the host's list; or, when there is
  // none, the lowest supported version, which the plugin still announces so that the host can
  // report the mismatch (go-plugin: "Return the lowest version as the fallback").
  int version = 0;
  // False when `version` is that fallback: the host will reject it.
  bool matched = false;
  // Entries of PLUGIN_PROTOCOL_VERSIONS that are not integers. go-plugin skips them after
  // printing `server sent invalid plugin version "<entry>"` to stderr; the caller should log them.
  std::vector<std::string> invalid_entries;
};

// Chooses the app-protocol version from the value of PLUGIN_PROTOCOL_VERSIONS (comma-separated
// decimal integers with no spaces, e.g. "5" or "5,6"; go-plugin's host writes the keys of its
// VersionedPlugins map, in Go's random map order) and the plugin's `supported_versions` (any
// order). An empty value (unset; hosts that predate versioned plugins) counts as an empty list,
// as in go-plugin (`if vs := os.Getenv(...); vs != ""`). Entries are parsed like Go's strconv.Atoi
// (optional sign, decimal digits); anything else, including " 5" and "", is skipped and reported in
// invalid_entries. Never fails because of the host's value. Errors: InvalidArgument if
// `supported_versions` is empty, has more than kProtocolVersionsMax entries, or contains a
// duplicate (a programming error in the plugin), or if `env_value` is longer than
// kProtocolVersionsEnvBytesMax.
absl::StatusOr<NegotiatedVersion> NegotiateProtocolVersion(
    absl::string_view env_value, const std::vector<int>& supported_versions);

// Every message that echoes plugin output quotes it with the ground floor's QuoteForError
// (base/status/quote.h): C-escaped, cut to kQuotedBytesMax bytes.
using ::bulwark::QuoteForError;

}  // namespace bulwark::protocol

#endif  // BULWARK_PROTOCOL_HANDSHAKE_H_
