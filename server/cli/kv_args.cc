// key=value data arguments (see kv_args.h).
#include "server/cli/kv_args.h"

#include <fstream>
#include <iterator>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status/quote.h"

namespace bulwark::cli {
namespace {

using nlohmann::json;

absl::StatusOr<std::string> ReadAll(std::istream& in, const std::string& what) {
  std::string out;
  char buf[64 << 10];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, in.gcount());
    if (out.size() > kDataBytesMax) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " holds more than ", kDataBytesMax >> 20, " MiB"));
    }
  }
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat("cannot read ", what));
  return out;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot open file ", QuoteForError(path)));
  }
  return ReadAll(in, absl::StrCat("file ", QuoteForError(path)));
}

// Merges the JSON object in `text` into `out`.
absl::Status MergeObject(const std::string& text, const std::string& what, json& out) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " does not hold a JSON object"));
  }
  for (auto it = parsed.begin(); it != parsed.end(); ++it) out[it.key()] = it.value();
  return absl::OkStatus();
}

void AddValue(json& out, const std::string& key, std::string value) {
  auto it = out.find(key);
  if (it == out.end()) {
    out[key] = std::move(value);
  } else if (it->is_array()) {
    it->push_back(std::move(value));
  } else {
    *it = json::array({*it, std::move(value)});
  }
}

}  // namespace

absl::StatusOr<json> ParseKeyValueArgs(const std::vector<std::string>& args,
                                       std::istream& stdin_stream) {
  json out = json::object();
  bool stdin_used = false;
  auto read_stdin = [&]() -> absl::StatusOr<std::string> {
    if (stdin_used) return absl::InvalidArgumentError("stdin (\"-\") may be used only once");
    stdin_used = true;
    return ReadAll(stdin_stream, "stdin");
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.empty()) continue;
    const size_t eq = arg.find('=');
    if (eq == std::string::npos) {
      if (arg == "-") {
        absl::StatusOr<std::string> text = read_stdin();
        if (!text.ok()) return text.status();
        if (absl::Status s = MergeObject(*text, "stdin", out); !s.ok()) return s;
        continue;
      }
      if (arg[0] == '@') {
        absl::StatusOr<std::string> text = ReadFile(arg.substr(1));
        if (!text.ok()) return text.status();
        if (absl::Status s =
                MergeObject(*text, absl::StrCat("file ", QuoteForError(arg.substr(1))), out);
            !s.ok()) {
          return s;
        }
        continue;
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "data argument ", i + 1, " is not key=value (its text is not shown: it may be secret)"));
    }
    const std::string key = arg.substr(0, eq);
    std::string value = arg.substr(eq + 1);
    if (key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("data argument ", i + 1, " has an empty key"));
    }
    if (value == "-") {
      absl::StatusOr<std::string> text = read_stdin();
      if (!text.ok()) return text.status();
      value = *std::move(text);
    } else if (!value.empty() && value[0] == '@') {
      absl::StatusOr<std::string> text = ReadFile(value.substr(1));
      if (!text.ok()) return text.status();
      value = *std::move(text);
    } else if (value.size() >= 2 && value[0] == '\\' && value[1] == '@') {
      value.erase(0, 1);
    }
    AddValue(out, key, std::move(value));
  }
  return out;
}

}  // namespace bulwark::cli
