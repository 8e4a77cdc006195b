// Quoting text inside error messages: every floor's messages echo paths, names and configuration,
// and none of them may let that text flood a log or smuggle control characters into it.
#ifndef BULWARK_BASE_STATUS_QUOTE_H_
#define BULWARK_BASE_STATUS_QUOTE_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace bulwark {

// Default for QuoteForError's `max_bytes`.
inline constexpr size_t kQuotedBytesMax = 120;

// Quotes `text` for an error message: in double quotes, C-escaped (control characters, quotes,
// backslashes and non-ASCII bytes become escapes), cut to at most `max_bytes` input bytes, with
// `...(<n> bytes)` appended when cut.
std::string QuoteForError(absl::string_view text, size_t max_bytes = kQuotedBytesMax);

}  // namespace bulwark

#endif  // BULWARK_BASE_STATUS_QUOTE_H_
