// Unpadded standard base64 (RFC 4648 §4 alphabet, no '='), the encoding go-plugin uses for the
// AutoMTLS certificate in its handshake line (Go's base64.RawStdEncoding). Pure; no OpenSSL.
#ifndef BULWARK_PROTOCOL_BASE64_H_
#define BULWARK_PROTOCOL_BASE64_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bulwark::protocol {

// Encodes `bytes` with the standard alphabet (A-Z a-z 0-9 + /) and no padding, exactly as Go's
// base64.RawStdEncoding.EncodeToString. (absl::Base64Escape pads with '=', which go-plugin's
// host rejects.) Never fails.
std::string Base64RawStdEncode(absl::string_view bytes);

// Decodes unpadded standard base64 as Go's base64.RawStdEncoding.DecodeString does for any input
// that go-plugin can put on a handshake line:
//   - only the 64 alphabet characters are accepted; '=' padding, whitespace, line breaks and the
//     URL-safe characters '-' and '_' are errors (Go skips '\r' and '\n', but a handshake line
//     cannot contain them);
//   - a length of 4n+1 characters is an error (it cannot encode whole bytes);
//   - non-zero unused bits in the last character are accepted, as Go's non-strict decoder does.
// Errors: InvalidArgument naming the first offending character and its offset.
absl::StatusOr<std::string> Base64RawStdDecode(absl::string_view text);

}  // namespace bulwark::protocol

#endif  // BULWARK_PROTOCOL_BASE64_H_
