#include "base/json/fast_json.h"

#include <emmintrin.h>
#include <simdjson.h>
#include <string.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

namespace bulwark {
namespace {

// Documents up to this size are parsed by a parser kept per thread (its buffers grow to the
// largest document it has seen); larger ones get a parser of their own that is freed after, so
// a 32 MiB request does not leave 32 MiB-sized buffers behind in every thread that saw one.
constexpr size_t kThreadParserBytesMax = 1 << 20;

// Whether `text` has `first` followed by `second` (memchr is vectorised; memmem is not, for
// short needles).
bool ContainsPair(absl::string_view text, char first, char second) {
  const char* at = text.data();
  const char* const end = text.data() + text.size();
  while (at < end) {
    at = static_cast<const char*>(::memchr(at, first, static_cast<size_t>(end - at)));
    if (at == nullptr || at + 1 >= end) return false;
    if (at[1] == second) return true;
    ++at;
  }
  return false;
}

// Builds nlohmann's value for `element`. False for an element type nlohmann would read
// differently (none today; kept so a future simdjson type falls back instead of guessing).
bool Build(const simdjson::dom::element& element, nlohmann::json* out) {
  switch (element.type()) {
    case simdjson::dom::element_type::OBJECT: {
      *out = nlohmann::json::object();
      simdjson::dom::object object;
      if (element.get(object) != simdjson::SUCCESS) return false;
      for (const simdjson::dom::key_value_pair field : object) {
        // operator[] overwrites: the last of duplicate keys wins, as in nlohmann's parser.
        nlohmann::json& slot = (*out)[std::string(field.key)];
        if (!Build(field.value, &slot)) return false;
      }
      return true;
    }
    case simdjson::dom::element_type::ARRAY: {
      *out = nlohmann::json::array();
      simdjson::dom::array array;
      if (element.get(array) != simdjson::SUCCESS) return false;
      for (const simdjson::dom::element item : array) {
        out->push_back(nullptr);
        if (!Build(item, &out->back())) return false;
      }
      return true;
    }
    case simdjson::dom::element_type::STRING: {
      std::string_view text;
      if (element.get(text) != simdjson::SUCCESS) return false;
      *out = std::string(text);
      return true;
    }
    case simdjson::dom::element_type::INT64: {
      int64_t number = 0;
      if (element.get(number) != simdjson::SUCCESS) return false;
      // nlohmann reads every integer without a sign as unsigned.
      if (number >= 0) {
        *out = static_cast<uint64_t>(number);
      } else {
        *out = number;
      }
      return true;
    }
    case simdjson::dom::element_type::UINT64: {
      uint64_t number = 0;
      if (element.get(number) != simdjson::SUCCESS) return false;
      *out = number;
      return true;
    }
    case simdjson::dom::element_type::DOUBLE: {
      double number = 0;
      if (element.get(number) != simdjson::SUCCESS) return false;
      *out = number;
      return true;
    }
    case simdjson::dom::element_type::BOOL: {
      bool value = false;
      if (element.get(value) != simdjson::SUCCESS) return false;
      *out = value;
      return true;
    }
    case simdjson::dom::element_type::NULL_VALUE:
      *out = nullptr;
      return true;
  }
  return false;
}

// --- Writing -------------------------------------------------------------------------------

// The offset of the first byte in [from, size) that a JSON string must escape ('"', '\' or a
// control character), or `size`. Sixteen bytes at a time (SSE2 is part of x86-64).
size_t NextEscape(const char* data, size_t from, size_t size) {
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i control_max = _mm_set1_epi8(0x1f);
  size_t i = from;
  for (; i + 16 <= size; i += 16) {
    const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i));
    // Unsigned x <= 0x1f  <=>  max(x, 0x1f) == 0x1f.
    const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(chunk, control_max), control_max);
    const __m128i hit = _mm_or_si128(
        control, _mm_or_si128(_mm_cmpeq_epi8(chunk, quote), _mm_cmpeq_epi8(chunk, backslash)));
    const int mask = _mm_movemask_epi8(hit);
    if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
  for (; i < size; ++i) {
    const unsigned char c = static_cast<unsigned char>(data[i]);
    if (c <= 0x1f || c == '"' || c == '\\') return i;
  }
  return size;
}

void AppendEscapedUtf8(absl::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t done = 0;
  while (done < text.size()) {
    const size_t next = NextEscape(text.data(), done, text.size());
    out->append(text.data() + done, next - done);
    if (next == text.size()) break;
    const unsigned char c = static_cast<unsigned char>(text[next]);
    // The two-character escapes nlohmann writes; other control characters get \u00XX in
    // lower-case hex, as nlohmann writes them.
    static constexpr char kShortEscapes[][2] = {{'"', '"'},  {'\\', '\\'}, {'\b', 'b'}, {'\f', 'f'},
                                                {'\n', 'n'}, {'\r', 'r'},  {'\t', 't'}};
    const char* letter = nullptr;
    for (const auto& [raw, escaped] : kShortEscapes) {
      if (static_cast<unsigned char>(raw) == c) letter = &escaped;
    }
    if (letter != nullptr) {
      out->push_back('\\');
      out->push_back(*letter);
    } else {
      const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
      out->append(escape, sizeof(escape));
    }
    done = next + 1;
  }
  out->push_back('"');
}

void AppendString(const std::string& text, std::string* out) {
  if (!simdjson::validate_utf8(text.data(), text.size())) {
    // nlohmann's replacement of bad sequences (how many U+FFFD per sequence) is its own:
    // leave such strings to it.
    out->append(
        nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  AppendEscapedUtf8(text, out);
}

template <typename Integer>
void AppendInteger(Integer number, std::string* out) {
  char buffer[24];
  const std::to_chars_result end = std::to_chars(buffer, buffer + sizeof(buffer), number);
  out->append(buffer, static_cast<size_t>(end.ptr - buffer));
}

}  // namespace

std::optional<nlohmann::json> ParseJsonFast(absl::string_view text, size_t depth_max) {
  // nlohmann's handling of lone surrogates and of "-0" (a signed zero integer) is its own, and
  // such input is rare: let it read those itself.
  if (ContainsPair(text, '\\', 'u') || ContainsPair(text, '-', '0')) return std::nullopt;
  thread_local simdjson::dom::parser thread_parser;
  std::unique_ptr<simdjson::dom::parser> own_parser;
  simdjson::dom::parser* parser = &thread_parser;
  if (text.size() > kThreadParserBytesMax) {
    own_parser = std::make_unique<simdjson::dom::parser>();
    parser = own_parser.get();
  }
  // simdjson counts the document's own level too: depth_max nested levels need depth_max + 1.
  if (parser->max_depth() != depth_max + 1 &&
      parser->allocate(std::max(text.size(), parser->capacity()), depth_max + 1) !=
          simdjson::SUCCESS) {
    return std::nullopt;
  }
  simdjson::dom::element root;
  if (parser->parse(text.data(), text.size()).get(root) != simdjson::SUCCESS) return std::nullopt;
  nlohmann::json value;
  if (!Build(root, &value)) return std::nullopt;
  return value;
}

void AppendJsonCompact(const nlohmann::json& value, std::string* out) {
  switch (value.type()) {
    case nlohmann::json::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& [key, item] : value.items()) {
        if (!first) out->push_back(',');
        first = false;
        AppendString(key, out);
        out->push_back(':');
        AppendJsonCompact(item, out);
      }
      out->push_back('}');
      return;
    }
    case nlohmann::json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const nlohmann::json& item : value) {
        if (!first) out->push_back(',');
        first = false;
        AppendJsonCompact(item, out);
      }
      out->push_back(']');
      return;
    }
    case nlohmann::json::value_t::string:
      AppendString(value.get_ref<const std::string&>(), out);
      return;
    case nlohmann::json::value_t::null:
      out->append("null");
      return;
    case nlohmann::json::value_t::boolean:
      out->append(value.get<bool>() ? "true" : "false");
      return;
    case nlohmann::json::value_t::number_integer:
      AppendInteger(value.get<int64_t>(), out);
      return;
    case nlohmann::json::value_t::number_unsigned:
      AppendInteger(value.get<uint64_t>(), out);
      return;
    case nlohmann::json::value_t::number_float:  // nlohmann's shortest round-trip form.
    case nlohmann::json::value_t::binary:
    case nlohmann::json::value_t::discarded:
      out->append(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      return;
  }
}

std::string DumpJsonCompact(const nlohmann::json& value) {
  std::string out;
  AppendJsonCompact(value, &out);
  return out;
}

}  // namespace bulwark
