// Tests for the go-plugin handshake line (parse, format, multiplexing check), the plugin-side
// version negotiation, and unpadded base64. Includes a line printed by a real go-plugin.
#include "protocol/handshake.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/base64.h"
#include "rapidcheck/gtest.h"

namespace bulwark::protocol {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

const std::vector<int> kOffered = {5};

// A DER-looking blob: only the first byte (ASN.1 SEQUENCE) is checked by the parser.
std::string FakeDer(size_t n) {
  std::string der(n, '\0');
  der[0] = 0x30;
  for (size_t i = 1; i < n; ++i) der[i] = static_cast<char>(i * 7);
  return der;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Expects `line` to be rejected with `code`, a message starting with "plugin handshake: " and
// containing `fragment`.
void ExpectRejected(absl::string_view line, absl::StatusCode code, absl::string_view fragment,
                    const std::vector<int>& offered = kOffered) {
  absl::StatusOr<HandshakeLine> hs = ParseHandshakeLine(line, offered);
  ASSERT_FALSE(hs.ok()) << "accepted: " << line;
  EXPECT_EQ(hs.status().code(), code) << hs.status();
  EXPECT_THAT(std::string(hs.status().message()), StartsWith("plugin handshake: "));
  EXPECT_THAT(hs.status().message(), HasSubstr(fragment));
}

TEST(ParseHandshakeLineTest, UnixWithoutCert) {
  absl::StatusOr<HandshakeLine> hs = ParseHandshakeLine("1|5|unix|/tmp/plugin123|grpc|", {5});
  ASSERT_TRUE(hs.ok()) << hs.status();
  EXPECT_EQ(hs->core_version, 1);
  EXPECT_EQ(hs->app_version, 5);
  EXPECT_EQ(hs->network, "unix");
  EXPECT_EQ(hs->address, "/tmp/plugin123");
  EXPECT_EQ(hs->protocol, "grpc");
  EXPECT_THAT(hs->server_cert_der, IsEmpty());
  EXPECT_FALSE(hs->multiplex_supported.has_value());
}

TEST(ParseHandshakeLineTest, FiveFieldsMeansNoCert) {
  absl::StatusOr<HandshakeLine> hs = ParseHandshakeLine("1|5|unix|/tmp/p|grpc", {5});
  ASSERT_TRUE(hs.ok()) << hs.status();
  EXPECT_THAT(hs->server_cert_der, IsEmpty());
}

TEST(ParseHandshakeLineTest, TcpAddresses) {
  for (const char* address : {"127.0.0.1:10000", "localhost:65535", "[::1]:1234",
                              "[fe80::1%eth0]:80", "plugin-host.example:1"}) {
    absl::StatusOr<HandshakeLine> hs =
        ParseHandshakeLine(absl::StrCat("1|5|tcp|", address, "|grpc|"), {5});
    ASSERT_TRUE(hs.ok()) << address << ": " << hs.status();
    EXPECT_EQ(hs->network, "tcp");
    EXPECT_EQ(hs->address, address);
  }
}

TEST(ParseHandshakeLineTest, StripsOneLineBreak) {
  for (const char* line :
       {"1|5|unix|/tmp/p|grpc|\n", "1|5|unix|/tmp/p|grpc|\r\n", "1|5|unix|/tmp/p|grpc|\r"}) {
    absl::StatusOr<HandshakeLine> hs = ParseHandshakeLine(line, {5});
    ASSERT_TRUE(hs.ok()) << absl::CEscape(line) << ": " << hs.status();
    EXPECT_EQ(hs->address, "/tmp/p");
  }
  ExpectRejected("1|5|unix|/tmp/p|grpc|\n\n", absl::StatusCode::kInvalidArgument,
                 "control character 0x0a");
}

TEST(ParseHandshakeLineTest, AppVersionMustBeOffered) {
  absl::StatusOr<HandshakeLine> hs = ParseHandshakeLine("1|6|unix|/tmp/p|grpc|", {5, 6});
  ASSERT_TRUE(hs.ok()) << hs.status();
  EXPECT_EQ(hs->app_version, 6);
  ExpectRejected("1|4|unix|/tmp/p|grpc|", absl::StatusCode::kFailedPrecondition,
                 "the plugin chose app protocol version 4, but the host offered only [5, 6]",
                 {5, 6});
}

TEST(ParseHandshakeLineTest, CoreVersionMessageMatchesTheDocumentedForm) {
  absl::StatusOr<HandshakeLine> hs = ParseHandshakeLine("2|5|unix|/tmp/x|grpc", {5});
  ASSERT_FALSE(hs.ok());
  EXPECT_EQ(hs.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(hs.status().message(),
            "plugin handshake: expected core protocol version 1, got \"2\" in line "
            "\"2|5|unix|/tmp/x|grpc\"");
}

TEST(ParseHandshakeLineTest, RejectsBadVersions) {
  ExpectRejected("x|5|unix|/tmp/p|grpc|", absl::StatusCode::kInvalidArgument,
                 "core protocol version \"x\" is not a decimal integer");
  ExpectRejected("+1|5|unix|/tmp/p|grpc|", absl::StatusCode::kInvalidArgument,
                 "is not a decimal integer");
  ExpectRejected("|5|unix|/tmp/p|grpc|", absl::StatusCode::kInvalidArgument,
                 "is not a decimal integer");
  ExpectRejected("1|-5|unix|/tmp/p|grpc|", absl::StatusCode::kInvalidArgument,
                 "app protocol version \"-5\" is not a decimal integer");
  ExpectRejected("1|99999999999|unix|/tmp/p|grpc|", absl::StatusCode::kInvalidArgument,
                 "is not a decimal integer");
}

TEST(ParseHandshakeLineTest, RejectsWrongFieldCounts) {
  ExpectRejected("1|5|unix", absl::StatusCode::kInvalidArgument, "expected 5 to 7");
  ExpectRejected("hello world", absl::StatusCode::kInvalidArgument, "got 1");
  ExpectRejected("1|5|unix|/tmp/p|grpc||true|extra", absl::StatusCode::kInvalidArgument, "got 8");
  ExpectRejected("", absl::StatusCode::kInvalidArgument, "first stdout line is empty");
  ExpectRejected("\n", absl::StatusCode::kInvalidArgument, "first stdout line is empty");
}

TEST(ParseHandshakeLineTest, RejectsNetRpcClearly) {
  ExpectRejected("1|5|unix|/tmp/p|netrpc|", absl::StatusCode::kUnimplemented,
                 "protocol \"netrpc\" (Go net/rpc) is not supported");
  // go-plugin reads a missing PROTOCOL as netrpc.
  ExpectRejected("1|5|unix|/tmp/p", absl::StatusCode::kUnimplemented, "no PROTOCOL field");
  ExpectRejected("1|5|unix|/tmp/p|http|", absl::StatusCode::kUnimplemented,
                 "unsupported protocol \"http\"");
  ExpectRejected("1|5|unix|/tmp/p||", absl::StatusCode::kUnimplemented,
                 "unsupported protocol \"\"");
}

TEST(ParseHandshakeLineTest, RejectsBadNetworksAndAddresses) {
  ExpectRejected("1|5|udp|/tmp/p|grpc|", absl::StatusCode::kInvalidArgument,
                 "unknown network type \"udp\"");
  ExpectRejected("1|5|unix||grpc|", absl::StatusCode::kInvalidArgument, "not an absolute path");
  ExpectRejected("1|5|unix|plugin.sock|grpc|", absl::StatusCode::kInvalidArgument,
                 "not an absolute path");
  ExpectRejected(absl::StrCat("1|5|unix|/", std::string(kUnixSocketPathBytesMax, 'a'), "|grpc|"),
                 absl::StatusCode::kInvalidArgument, "longer than the 107-byte limit");
  ExpectRejected("1|5|tcp|127.0.0.1|grpc|", absl::StatusCode::kInvalidArgument, "no \":port\"");
  ExpectRejected("1|5|tcp|:1234|grpc|", absl::StatusCode::kInvalidArgument, "empty host");
  ExpectRejected("1|5|tcp|127.0.0.1:0|grpc|", absl::StatusCode::kInvalidArgument, "1-65535");
  ExpectRejected("1|5|tcp|127.0.0.1:65536|grpc|", absl::StatusCode::kInvalidArgument, "1-65535");
  ExpectRejected("1|5|tcp|127.0.0.1:12a|grpc|", absl::StatusCode::kInvalidArgument,
                 "non-numeric port");
  ExpectRejected("1|5|tcp|::1:80|grpc|", absl::StatusCode::kInvalidArgument, "without brackets");
  ExpectRejected("1|5|tcp|[::1:80|grpc|", absl::StatusCode::kInvalidArgument, "unterminated");
  ExpectRejected("1|5|tcp|a/b:80|grpc|", absl::StatusCode::kInvalidArgument, "invalid host");
}

TEST(ParseHandshakeLineTest, UnixPathAtTheLimitAndWithInteriorSpaces) {
  const std::string path = absl::StrCat("/", std::string(kUnixSocketPathBytesMax - 1, 'a'));
  absl::StatusOr<HandshakeLine> hs =
      ParseHandshakeLine(absl::StrCat("1|5|unix|", path, "|grpc|"), {5});
  ASSERT_TRUE(hs.ok()) << hs.status();
  EXPECT_EQ(hs->address, path);
  // TMPDIR may contain spaces; go-plugin puts the socket there.
  hs = ParseHandshakeLine("1|5|unix|/tmp/my dir/plugin1|grpc|", {5});
  ASSERT_TRUE(hs.ok()) << hs.status();
  EXPECT_EQ(hs->address, "/tmp/my dir/plugin1");
}

TEST(ParseHandshakeLineTest, RejectsStrayWhitespaceAndControlCharacters) {
  ExpectRejected(" 1|5|unix|/tmp/p|grpc|", absl::StatusCode::kInvalidArgument,
                 "field 1 (CORE) has leading or trailing whitespace");
  ExpectRejected("1|5 |unix|/tmp/p|grpc|", absl::StatusCode::kInvalidArgument,
                 "field 2 (APP) has leading or trailing whitespace");
  ExpectRejected("1|5|unix|/tmp/p |grpc|", absl::StatusCode::kInvalidArgument, "field 4 (ADDRESS)");
  ExpectRejected("1|5|unix|/tmp/p|grpc| ", absl::StatusCode::kInvalidArgument, "field 6 (CERT)");
  ExpectRejected("1|5|unix|/tmp/p|grpc|\t", absl::StatusCode::kInvalidArgument,
                 "control character 0x09 at offset 21");
  ExpectRejected(absl::string_view("1|5|unix|/tmp/\0p|grpc|", 22),
                 absl::StatusCode::kInvalidArgument, "control character 0x00 at offset 14");
  ExpectRejected("1|5|unix|/tmp/p|grpc|\x7f", absl::StatusCode::kInvalidArgument,
                 "control character 0x7f");
}

TEST(ParseHandshakeLineTest, LengthCap) {
  // A cert field that fills the line exactly to the cap is accepted (base64 of fake DER).
  const std::string prefix = "1|5|unix|/tmp/p|grpc|";
  size_t cert_chars = kHandshakeLineBytesMax - prefix.size();
  while (cert_chars % 4 == 1) --cert_chars;
  std::string cert = Base64RawStdEncode(FakeDer(cert_chars * 3 / 4));
  ASSERT_LE(prefix.size() + cert.size(), kHandshakeLineBytesMax);
  EXPECT_TRUE(ParseHandshakeLine(prefix + cert, {5}).ok());

  const std::string too_long = prefix + std::string(kHandshakeLineBytesMax, 'A');
  absl::StatusOr<HandshakeLine> hs = ParseHandshakeLine(too_long, {5});
  ASSERT_FALSE(hs.ok());
  EXPECT_EQ(hs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(hs.status().message(), HasSubstr("bytes, longer than the 4096-byte limit"));
  // The echoed line is cut, and says how long it was.
  EXPECT_THAT(hs.status().message(), HasSubstr(absl::StrCat("\"...(", too_long.size(), " bytes)")));
  EXPECT_LT(hs.status().message().size(), 300u);
}

TEST(ParseHandshakeLineTest, CertField) {
  const std::string der = FakeDer(700);
  const std::string b64 = Base64RawStdEncode(der);
  absl::StatusOr<HandshakeLine> hs =
      ParseHandshakeLine(absl::StrCat("1|5|unix|/tmp/p|grpc|", b64), {5});
  ASSERT_TRUE(hs.ok()) << hs.status();
  EXPECT_EQ(hs->server_cert_der, der);

  // Padded (StdEncoding) base64 is what go-plugin's host would reject too.
  const std::string der2 = FakeDer(701);  // 701 % 3 == 2: one '=' when padded.
  ExpectRejected(absl::StrCat("1|5|unix|/tmp/p|grpc|", Base64RawStdEncode(der2), "="),
                 absl::StatusCode::kInvalidArgument, "padding is not allowed");
  ExpectRejected(absl::StrCat("1|5|unix|/tmp/p|grpc|", std::string(60, '-')),
                 absl::StatusCode::kInvalidArgument, "invalid character '-' at offset 0");
  std::string not_der = der;
  not_der[0] = 0x04;
  ExpectRejected(absl::StrCat("1|5|unix|/tmp/p|grpc|", Base64RawStdEncode(not_der)),
                 absl::StatusCode::kInvalidArgument, "does not decode to DER");
}

TEST(ParseHandshakeLineTest, ShortCertFieldIsIgnoredLikeGoPlugin) {
  // go-plugin < v1.0.0 printed padded base64 "extra" data here; its host ignores <= 50 bytes.
  absl::StatusOr<HandshakeLine> hs =
      ParseHandshakeLine(absl::StrCat("1|5|unix|/tmp/p|grpc|", std::string(50, '=')), {5});
  ASSERT_TRUE(hs.ok()) << hs.status();
  EXPECT_THAT(hs->server_cert_der, IsEmpty());
  ExpectRejected(absl::StrCat("1|5|unix|/tmp/p|grpc|", std::string(51, '=')),
                 absl::StatusCode::kInvalidArgument, "padding is not allowed");
}

TEST(ParseHandshakeLineTest, MultiplexField) {
  absl::StatusOr<HandshakeLine> hs = ParseHandshakeLine("1|5|unix|/tmp/p|grpc||true", {5});
  ASSERT_TRUE(hs.ok()) << hs.status();
  EXPECT_EQ(hs->multiplex_supported, true);
  hs = ParseHandshakeLine("1|5|unix|/tmp/p|grpc||False", {5});
  ASSERT_TRUE(hs.ok()) << hs.status();
  EXPECT_EQ(hs->multiplex_supported, false);
  for (const char* v : {"1", "t", "T", "TRUE", "True"}) {
    hs = ParseHandshakeLine(absl::StrCat("1|5|unix|/tmp/p|grpc||", v), {5});
    ASSERT_TRUE(hs.ok()) << v;
    EXPECT_EQ(hs->multiplex_supported, true) << v;
  }
  ExpectRejected("1|5|unix|/tmp/p|grpc||yes", absl::StatusCode::kInvalidArgument,
                 "multiplexing field \"yes\" is not a boolean");
  ExpectRejected("1|5|unix|/tmp/p|grpc||", absl::StatusCode::kInvalidArgument,
                 "multiplexing field \"\" is not a boolean");
}

TEST(ParseHandshakeLineTest, ChecksRunInGoPluginOrder) {
  // Bad core version and bad protocol: the core version is reported, as go-plugin does.
  ExpectRejected("3|5|unix|/tmp/p|netrpc|", absl::StatusCode::kFailedPrecondition,
                 "core protocol version");
  // Unoffered app version and netrpc: the version is reported.
  ExpectRejected("1|4|unix|/tmp/p|netrpc|", absl::StatusCode::kFailedPrecondition,
                 "app protocol version 4");
}

TEST(ParseHandshakeLineTest, RejectsBadOfferedVersions) {
  absl::StatusOr<HandshakeLine> hs = ParseHandshakeLine("1|5|unix|/tmp/p|grpc|", {});
  EXPECT_EQ(hs.status().code(), absl::StatusCode::kInvalidArgument);
  hs = ParseHandshakeLine("1|5|unix|/tmp/p|grpc|", {5, 5});
  EXPECT_EQ(hs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(hs.status().message(), HasSubstr("twice"));
}

TEST(ParseHandshakeLineTest, ErrorEchoIsSanitized) {
  absl::StatusOr<HandshakeLine> hs =
      ParseHandshakeLine("1|5|unix|/tmp/p|grpc|\x1b[31mred\x1b[0m", {5});
  ASSERT_FALSE(hs.ok());
  EXPECT_THAT(hs.status().message(), HasSubstr("\\x1b[31mred"));
  for (char c : hs.status().message()) {
    EXPECT_GE(static_cast<unsigned char>(c), 0x20) << hs.status().message();
  }
}

TEST(ParseHandshakeLineTest, ReadsTheLineARealGoPluginPrinted) {
  // Printed by Go 1.19 with go-plugin v1.0.1's Serve format and generateCert (testdata/).
  const std::string line = ReadFile("protocol/testdata/goplugin_handshake_line.txt");
  ASSERT_FALSE(line.empty());
  ASSERT_EQ(line.back(), '\n');
  absl::StatusOr<HandshakeLine> hs = ParseHandshakeLine(line, {5});
  ASSERT_TRUE(hs.ok()) << hs.status();
  EXPECT_EQ(hs->address, "/tmp/plugin123");
  EXPECT_GT(hs->server_cert_der.size(), 500u);
  EXPECT_EQ(FormatHandshakeLine(*hs) + "\n", line);
}

TEST(FormatHandshakeLineTest, GoPluginLayout) {
  HandshakeLine hs;
  hs.app_version = 5;
  hs.network = "unix";
  hs.address = "/tmp/plugin42";
  hs.protocol = "grpc";
  EXPECT_EQ(FormatHandshakeLine(hs), "1|5|unix|/tmp/plugin42|grpc|");
  hs.server_cert_der = std::string("\x30\x82\x01", 3);
  EXPECT_EQ(FormatHandshakeLine(hs), "1|5|unix|/tmp/plugin42|grpc|MIIB");
  hs.multiplex_supported = true;
  EXPECT_EQ(FormatHandshakeLine(hs), "1|5|unix|/tmp/plugin42|grpc|MIIB|true");
  hs.server_cert_der.clear();
  hs.multiplex_supported = false;
  EXPECT_EQ(FormatHandshakeLine(hs), "1|5|unix|/tmp/plugin42|grpc||false");
}

RC_GTEST_PROP(HandshakeRoundTrip, FormatThenParseIsIdentity,
              (uint16_t port, bool tcp, bool with_cert, uint8_t mux, uint8_t app)) {
  HandshakeLine hs;
  hs.app_version = app;
  hs.protocol = "grpc";
  if (tcp) {
    hs.network = "tcp";
    hs.address = absl::StrCat("127.0.0.1:", port == 0 ? 1 : port);
  } else {
    hs.network = "unix";
    hs.address = absl::StrCat("/tmp/plugin", port);
  }
  if (with_cert) {
    const size_t n = *rc::gen::inRange<size_t>(38, 1500);
    const auto body = *rc::gen::container<std::string>(n, rc::gen::arbitrary<char>());
    hs.server_cert_der = "\x30" + body;
  }
  if (mux % 3 != 0) hs.multiplex_supported = (mux % 3 == 1);
  const std::string line = FormatHandshakeLine(hs);
  absl::StatusOr<HandshakeLine> parsed = ParseHandshakeLine(line + "\n", {app});
  RC_ASSERT(parsed.ok());
  RC_ASSERT(*parsed == hs);
  RC_ASSERT(FormatHandshakeLine(*parsed) == line);
}

RC_GTEST_PROP(HandshakeFuzz, ArbitraryBytesNeverCrashAndErrorsArePrintable, (std::string line)) {
  absl::StatusOr<HandshakeLine> hs = ParseHandshakeLine(line, {5});
  if (!hs.ok()) {
    RC_ASSERT(hs.status().message().substr(0, 18) == "plugin handshake: ");
    RC_ASSERT(hs.status().message().size() < 1500u);
    for (char c : hs.status().message()) RC_ASSERT(static_cast<unsigned char>(c) >= 0x20);
  }
}

TEST(CheckMultiplexSupportTest, MirrorsGoPluginHost) {
  HandshakeLine hs;
  EXPECT_TRUE(CheckMultiplexSupport(hs, false).ok());
  absl::Status s = CheckMultiplexSupport(hs, true);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("sent no 7th field"));
  hs.multiplex_supported = false;
  s = CheckMultiplexSupport(hs, true);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("answered false"));
  hs.multiplex_supported = true;
  EXPECT_TRUE(CheckMultiplexSupport(hs, true).ok());
  EXPECT_TRUE(CheckMultiplexSupport(hs, false).ok());
}

TEST(NegotiateProtocolVersionTest, HighestCommonVersion) {
  absl::StatusOr<NegotiatedVersion> v = NegotiateProtocolVersion("5", {3, 4, 5});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->version, 5);
  EXPECT_TRUE(v->matched);
  // Vault's database host offers {5, 6} (in Go's random map order); a multiplexing plugin
  // supports both and picks 6.
  v = NegotiateProtocolVersion("6,5", {5, 6});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->version, 6);
  v = NegotiateProtocolVersion("5,6", {6, 5});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->version, 6);
  v = NegotiateProtocolVersion("3,4", {3, 4, 5});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->version, 4);
  EXPECT_TRUE(v->matched);
  EXPECT_THAT(v->invalid_entries, IsEmpty());
}

TEST(NegotiateProtocolVersionTest, NoCommonVersionFallsBackToTheLowest) {
  absl::StatusOr<NegotiatedVersion> v = NegotiateProtocolVersion("7,8", {5, 3, 4});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->version, 3);
  EXPECT_FALSE(v->matched);
  // Unset or empty: a legacy host; go-plugin serves its lowest version.
  v = NegotiateProtocolVersion("", {6, 5});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->version, 5);
  EXPECT_FALSE(v->matched);
}

TEST(NegotiateProtocolVersionTest, InvalidEntriesAreSkippedLikeGoAtoi) {
  absl::StatusOr<NegotiatedVersion> v = NegotiateProtocolVersion("x, 5,,+4,-1,6 ", {4, 5, 6});
  ASSERT_TRUE(v.ok());
  // " 5" and "6 " are not integers to Go's Atoi; "+4" is.
  EXPECT_EQ(v->version, 4);
  EXPECT_TRUE(v->matched);
  EXPECT_THAT(v->invalid_entries, ElementsAre("x", " 5", "", "6 "));
  v = NegotiateProtocolVersion("99999999999999999999,5", {5});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->version, 5);
  EXPECT_THAT(v->invalid_entries, ElementsAre("99999999999999999999"));
  v = NegotiateProtocolVersion("-9223372036854775808,+,-", {1});
  ASSERT_TRUE(v.ok());
  EXPECT_THAT(v->invalid_entries, ElementsAre("+", "-"));
}

TEST(NegotiateProtocolVersionTest, RejectsBadSupportedLists) {
  EXPECT_EQ(NegotiateProtocolVersion("5", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NegotiateProtocolVersion("5", {5, 5}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NegotiateProtocolVersion(std::string(kProtocolVersionsEnvBytesMax + 1, '5'), {5})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Base64RawStdTest, KnownAnswers) {
  // RFC 4648 §10 vectors with the padding removed.
  EXPECT_EQ(Base64RawStdEncode(""), "");
  EXPECT_EQ(Base64RawStdEncode("f"), "Zg");
  EXPECT_EQ(Base64RawStdEncode("fo"), "Zm8");
  EXPECT_EQ(Base64RawStdEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64RawStdEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64RawStdEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(Base64RawStdEncode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64RawStdEncode("\xfb\xff"), "+/8");
  EXPECT_EQ(*Base64RawStdDecode("Zm9vYmE"), "fooba");
  EXPECT_EQ(*Base64RawStdDecode("+/8"), "\xfb\xff");
  EXPECT_EQ(*Base64RawStdDecode(""), "");
}

TEST(Base64RawStdTest, DecodeIsAsStrictAsGoRawStdEncoding) {
  EXPECT_FALSE(Base64RawStdDecode("Zg==").ok());   // padding
  EXPECT_FALSE(Base64RawStdDecode("Z").ok());      // 4n+1 characters
  EXPECT_FALSE(Base64RawStdDecode("Zm9vY").ok());  // 4n+1 characters
  EXPECT_FALSE(Base64RawStdDecode("-_8").ok());    // URL alphabet
  EXPECT_FALSE(Base64RawStdDecode("Zm 9v").ok());  // whitespace
  // Go's non-strict decoder ignores unused trailing bits: "Zh" decodes like "Zg".
  EXPECT_EQ(*Base64RawStdDecode("Zh"), "f");
}

RC_GTEST_PROP(Base64RawStdTest, RoundTrip, (std::string bytes)) {
  const std::string text = Base64RawStdEncode(bytes);
  RC_ASSERT(text.find('=') == std::string::npos);
  RC_ASSERT(text.size() == (bytes.size() * 4 + 2) / 3);
  absl::StatusOr<std::string> back = Base64RawStdDecode(text);
  RC_ASSERT(back.ok());
  RC_ASSERT(*back == bytes);
}

}  // namespace
}  // namespace bulwark::protocol
