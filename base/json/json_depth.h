// A nesting check over JSON text that runs before any parser sees it: nlohmann's parser (and most
// others) recurse once per level, so hostile nesting must be refused without parsing.
#ifndef BULWARK_BASE_JSON_JSON_DEPTH_H_
#define BULWARK_BASE_JSON_JSON_DEPTH_H_

#include <cstddef>
#include <optional>

#include "absl/strings/string_view.h"

namespace bulwark {

// Scans `text` counting the nesting of '[' and '{' outside string literals (escapes inside
// strings are honoured) and returns the byte offset of the first bracket that opens a level
// deeper than `depth_max`, or nullopt if the text never nests deeper. It validates nothing else
// (unbalanced or malformed text is the parser's business) and stops at the first offender, so it
// is linear in the text and never recurses.
std::optional<size_t> FindJsonNestingBeyond(absl::string_view text, size_t depth_max);

}  // namespace bulwark

#endif  // BULWARK_BASE_JSON_JSON_DEPTH_H_
