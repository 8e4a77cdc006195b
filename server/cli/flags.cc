// Go-style flag parsing for the CLI (see flags.h).
#include "server/cli/flags.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status/check.h"

namespace bulwark::cli {
namespace {

// strconv.ParseBool's spellings.
std::optional<bool> ParseGoBool(absl::string_view text) {
  if (text == "1" || text == "t" || text == "T" || text == "true" || text == "TRUE" ||
      text == "True") {
    return true;
  }
  if (text == "0" || text == "f" || text == "F" || text == "false" || text == "FALSE" ||
      text == "False") {
    return false;
  }
  return std::nullopt;
}

}  // namespace

std::optional<absl::Duration> ParseCliDuration(absl::string_view text) {
  int64_t seconds = 0;
  if (!text.empty() && std::all_of(text.begin(), text.end(), absl::ascii_isdigit) &&
      absl::SimpleAtoi(text, &seconds)) {
    return absl::Seconds(seconds);
  }
  absl::Duration d;
  // absl also accepts "inf", which no Vault TTL means.
  if (text.find("inf") == absl::string_view::npos && absl::ParseDuration(text, &d)) return d;
  return std::nullopt;
}

void FlagSet::Add(const std::string& name, Kind kind, void* target, bool split_commas,
                  std::string usage) {
  CHECK(flags_.find(name) == flags_.end()) << "flag -" << name << " registered twice";
  flags_.emplace(name, Flag{kind, target, split_commas, std::move(usage)});
}

void FlagSet::String(const std::string& name, std::string* target, std::string usage) {
  Add(name, Kind::kString, target, false, std::move(usage));
}
void FlagSet::Bool(const std::string& name, bool* target, std::string usage) {
  Add(name, Kind::kBool, target, false, std::move(usage));
}
void FlagSet::Int(const std::string& name, int* target, std::string usage) {
  Add(name, Kind::kInt, target, false, std::move(usage));
}
void FlagSet::Duration(const std::string& name, absl::Duration* target, std::string usage) {
  Add(name, Kind::kDuration, target, false, std::move(usage));
}
void FlagSet::List(const std::string& name, std::vector<std::string>* target, bool split_commas,
                   std::string usage) {
  Add(name, Kind::kList, target, split_commas, std::move(usage));
}

absl::Status FlagSet::Set(const std::string& name, const Flag& flag, const std::string& value) {
  switch (flag.kind) {
    case Kind::kString:
      *static_cast<std::string*>(flag.target) = value;
      break;
    case Kind::kBool: {
      std::optional<bool> b = ParseGoBool(value);
      if (!b.has_value()) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid boolean value \"", value, "\" for -", name, ": parse error"));
      }
      *static_cast<bool*>(flag.target) = *b;
      break;
    }
    case Kind::kInt: {
      int i = 0;
      if (!absl::SimpleAtoi(value, &i)) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid value \"", value, "\" for flag -", name, ": parse error"));
      }
      *static_cast<int*>(flag.target) = i;
      break;
    }
    case Kind::kDuration: {
      std::optional<absl::Duration> d = ParseCliDuration(value);
      if (!d.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat("invalid value \"", value, "\" for flag -",
                                                       name, ": not a duration (e.g. 90s, 1h)"));
      }
      *static_cast<absl::Duration*>(flag.target) = *d;
      break;
    }
    case Kind::kList: {
      auto* list = static_cast<std::vector<std::string>*>(flag.target);
      if (flag.split_commas) {
        for (absl::string_view part : absl::StrSplit(value, ',', absl::SkipEmpty())) {
          list->emplace_back(absl::StripAsciiWhitespace(part));
        }
      } else {
        list->push_back(value);
      }
      break;
    }
  }
  set_.push_back(name);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(const std::vector<std::string>& args) {
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') break;  // An argument, "-" included.
    if (arg == "--") {
      ++i;
      break;
    }
    absl::string_view body = absl::string_view(arg).substr(arg[1] == '-' ? 2 : 1);
    if (body.empty() || body[0] == '-' || body[0] == '=') {
      return absl::InvalidArgumentError(absl::StrCat("bad flag syntax: ", arg));
    }
    std::string name(body.substr(0, body.find('=')));
    std::optional<std::string> value;
    if (body.find('=') != absl::string_view::npos) {
      value = std::string(body.substr(body.find('=') + 1));
    }
    auto it = flags_.find(name);
    if (it == flags_.end()) {
      if (name == "h" || name == "help") {
        help_requested_ = true;
        continue;
      }
      return absl::InvalidArgumentError(absl::StrCat("flag provided but not defined: -", name));
    }
    if (!value.has_value()) {
      if (it->second.kind == Kind::kBool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag needs an argument: -", name));
      }
    }
    if (absl::Status s = Set(name, it->second, *value); !s.ok()) return s;
  }
  return std::vector<std::string>(args.begin() + i, args.end());
}

bool FlagSet::WasSet(const std::string& name) const {
  return std::find(set_.begin(), set_.end(), name) != set_.end();
}

std::string FlagSet::Usage() const {
  std::string out;
  for (const auto& [name, flag] : flags_) {
    const char* type = "";
    switch (flag.kind) {
      case Kind::kString:
      case Kind::kList:
        type = "=<string>";
        break;
      case Kind::kInt:
        type = "=<int>";
        break;
      case Kind::kDuration:
        type = "=<duration>";
        break;
      case Kind::kBool:
        break;
    }
    absl::StrAppend(&out, "  -", name, type, "\n      ", flag.usage, "\n\n");
  }
  return out;
}

}  // namespace bulwark::cli
