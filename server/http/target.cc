#include "server/http/target.h"

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace bulwark::http {
namespace {

absl::Status Invalid(absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("invalid request target: ", problem));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

// Decodes `text`, which starts at byte `offset` of the target (for messages). In the query,
// "+" stands for a space (application/x-www-form-urlencoded, as Go's url.ParseQuery reads it).
absl::StatusOr<std::string> Decode(absl::string_view text, size_t offset, bool plus_is_space,
                                   absl::string_view part) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      const int high = i + 1 < text.size() ? HexValue(text[i + 1]) : -1;
      const int low = i + 2 < text.size() ? HexValue(text[i + 2]) : -1;
      if (high < 0 || low < 0) {
        return Invalid(absl::StrCat("bad percent-encoding at byte ", offset + i,
                                    " (\"%\" must be followed by two hex digits)"));
      }
      const unsigned char decoded = static_cast<unsigned char>(high << 4 | low);
      if (decoded == 0) {
        return Invalid(absl::StrCat("the ", part, " has a NUL byte (%00) at byte ", offset + i));
      }
      if (IsControl(decoded)) {
        return Invalid(absl::StrFormat("the %s has a control character (%%%02X) at byte %d", part,
                                       decoded, offset + i));
      }
      out.push_back(static_cast<char>(decoded));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<Target> ParseTarget(absl::string_view target) {
  if (target.empty()) return Invalid("empty");
  for (size_t i = 0; i < target.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(target[i]);
    if (c == 0) return Invalid(absl::StrCat("NUL byte at byte ", i));
    if (IsControl(c)) return Invalid(absl::StrCat("control character at byte ", i));
    if (c == ' ') return Invalid(absl::StrCat("space at byte ", i, " (percent-encode it)"));
    if (c >= 0x80)
      return Invalid(absl::StrCat("non-ASCII byte at byte ", i, " (percent-encode it)"));
    if (c == '#') return Invalid(absl::StrCat("fragment (\"#\") at byte ", i));
  }
  if (target[0] != '/') {
    return Invalid("not an absolute path (it must start with \"/\")");
  }

  const size_t question = target.find('?');
  const absl::string_view raw_path = target.substr(0, question);
  Target out;
  auto path = Decode(raw_path, 0, /*plus_is_space=*/false, "path");
  if (!path.ok()) return path.status();
  out.path = *std::move(path);
  for (absl::string_view segment : absl::StrSplit(out.path, '/')) {
    if (segment == "." || segment == "..") {
      return Invalid(absl::StrCat("the path has a \"", segment, "\" segment"));
    }
  }

  if (question == absl::string_view::npos) return out;
  size_t offset = question + 1;
  for (absl::string_view piece : absl::StrSplit(target.substr(offset), '&')) {
    if (!piece.empty()) {
      const size_t equals = piece.find('=');
      const absl::string_view raw_key = piece.substr(0, equals);
      const absl::string_view raw_value =
          equals == absl::string_view::npos ? absl::string_view() : piece.substr(equals + 1);
      auto key = Decode(raw_key, offset, /*plus_is_space=*/true, "query");
      if (!key.ok()) return key.status();
      auto value = Decode(raw_value, offset + raw_key.size() + 1, /*plus_is_space=*/true, "query");
      if (!value.ok()) return value.status();
      out.query.emplace_back(*std::move(key), *std::move(value));
    }
    offset += piece.size() + 1;
  }
  return out;
}

}  // namespace bulwark::http
