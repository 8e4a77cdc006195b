// Parsing and printing of the failpoint grammar (see spec.h).
#include "faultinject/spec.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status/quote.h"
#include "base/status/status_macros.h"

namespace bulwark::faultinject {
namespace {

// Configuration text is not secret, but it can be long: messages carry a bounded quote of it.
constexpr size_t kQuotedBytesMax = 80;

std::string Quote(absl::string_view text) { return QuoteForError(text, kQuotedBytesMax); }

struct CodeName {
  absl::StatusCode code;
  absl::string_view name;
};

constexpr CodeName kCodeNames[] = {
    {absl::StatusCode::kCancelled, "cancelled"},
    {absl::StatusCode::kUnknown, "unknown"},
    {absl::StatusCode::kInvalidArgument, "invalid_argument"},
    {absl::StatusCode::kDeadlineExceeded, "deadline_exceeded"},
    {absl::StatusCode::kNotFound, "not_found"},
    {absl::StatusCode::kAlreadyExists, "already_exists"},
    {absl::StatusCode::kPermissionDenied, "permission_denied"},
    {absl::StatusCode::kResourceExhausted, "resource_exhausted"},
    {absl::StatusCode::kFailedPrecondition, "failed_precondition"},
    {absl::StatusCode::kAborted, "aborted"},
    {absl::StatusCode::kOutOfRange, "out_of_range"},
    {absl::StatusCode::kUnimplemented, "unimplemented"},
    {absl::StatusCode::kInternal, "internal"},
    {absl::StatusCode::kUnavailable, "unavailable"},
    {absl::StatusCode::kDataLoss, "data_loss"},
    {absl::StatusCode::kUnauthenticated, "unauthenticated"},
};

// "DataLoss" / "kDataLoss" / "DATA_LOSS" / "data_loss" -> "dataloss", for comparison.
std::string FoldCodeName(absl::string_view text) {
  if (text.size() > 1 && text[0] == 'k' && absl::ascii_isupper(static_cast<unsigned char>(text[1])))
    text.remove_prefix(1);
  std::string out;
  for (char c : text) {
    if (c != '_') out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

absl::Status TermError(absl::string_view term, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("failpoint term ", Quote(term), ": ", why));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Parses "<int>[.<frac>]" percent into millionths of one.
absl::StatusOr<uint32_t> ParsePercent(absl::string_view term, absl::string_view text) {
  const size_t dot = text.find('.');
  absl::string_view whole = text.substr(0, dot);
  absl::string_view fraction = dot == absl::string_view::npos ? "" : text.substr(dot + 1);
  if (whole.empty() || whole.size() > 3 || fraction.size() > 4 ||
      (dot != absl::string_view::npos && fraction.empty())) {
    return TermError(term, absl::StrCat("percentage ", Quote(text),
                                        " is not a number in [0, 100] with at most 4 decimals"));
  }
  uint64_t value = 0;
  for (char c : whole) value = value * 10 + static_cast<uint64_t>(c - '0');
  uint64_t frac = 0;
  for (size_t i = 0; i < 4; ++i) {
    frac = frac * 10 + (i < fraction.size() ? static_cast<uint64_t>(fraction[i] - '0') : 0);
  }
  for (char c : fraction) {
    if (!IsDigit(c)) {
      return TermError(term, absl::StrCat("percentage ", Quote(text), " is not a number"));
    }
  }
  const uint64_t millionths = value * 10000 + frac;
  if (millionths > kProbabilityScale) {
    return TermError(term, absl::StrCat("percentage ", Quote(text), " is above 100"));
  }
  return static_cast<uint32_t>(millionths);
}

absl::StatusOr<Term> ParseTerm(absl::string_view raw) {
  const absl::string_view term = absl::StripAsciiWhitespace(raw);
  if (term.empty()) {
    return absl::InvalidArgumentError(
        "failpoint actions contain an empty term (\"->\" at an end, or twice in a row)");
  }
  Term out;
  absl::string_view rest = term;

  // [percent '%']
  size_t n = 0;
  while (n < rest.size() && (IsDigit(rest[n]) || rest[n] == '.')) ++n;
  if (n < rest.size() && rest[n] == '%') {
    ASSIGN_OR_RETURN(out.probability_millionths, ParsePercent(term, rest.substr(0, n)));
    rest.remove_prefix(n + 1);
    rest = absl::StripLeadingAsciiWhitespace(rest);
    n = 0;
    while (n < rest.size() && IsDigit(rest[n])) ++n;
  } else if (n > 0 && rest.substr(0, n).find('.') != absl::string_view::npos) {
    return TermError(term, "a decimal number must be followed by '%'");
  }
  // [count '*']
  if (n > 0) {
    if (n >= rest.size() || rest[n] != '*') {
      return TermError(term, "a number must be followed by '%' (percentage) or '*' (count)");
    }
    uint64_t count = 0;
    if (!absl::SimpleAtoi(rest.substr(0, n), &count) || count == 0 || count > kTermCountMax) {
      return TermError(term, absl::StrCat("count ", Quote(rest.substr(0, n)),
                                          " must be an integer in [1, ", kTermCountMax, "]"));
    }
    out.count = count;
    rest.remove_prefix(n + 1);
    rest = absl::StripLeadingAsciiWhitespace(rest);
  }
  // task ['(' argument ')']
  size_t open = rest.find('(');
  absl::string_view task = absl::StripTrailingAsciiWhitespace(rest.substr(0, open));
  std::optional<absl::string_view> argument;
  if (open != absl::string_view::npos) {
    if (rest.back() != ')') return TermError(term, "'(' without a closing ')' at the end");
    argument = absl::StripAsciiWhitespace(rest.substr(open + 1, rest.size() - open - 2));
    if (argument->find_first_of("()") != absl::string_view::npos) {
      return TermError(term, "the argument contains a parenthesis");
    }
  }
  auto no_argument = [&](absl::string_view name) -> absl::Status {
    if (argument.has_value()) {
      return TermError(term, absl::StrCat(name, " takes no argument"));
    }
    return absl::OkStatus();
  };
  if (task == "off") {
    RETURN_IF_ERROR(no_argument("off"));
  } else if (task == "return") {
    absl::StatusCode code = absl::StatusCode::kUnavailable;
    if (argument.has_value()) {
      absl::StatusOr<absl::StatusCode> parsed = ParseStatusCodeName(*argument);
      if (!parsed.ok()) return TermError(term, parsed.status().message());
      code = *parsed;
    }
    out.action = Action::Return(code);
  } else if (task == "delay" || task == "sleep") {
    int64_t millis = 0;
    if (!argument.has_value() || !absl::SimpleAtoi(*argument, &millis) || millis < 0 ||
        millis > kDelayMillisMax) {
      return TermError(term, absl::StrCat(task, " needs whole milliseconds in [0, ",
                                          kDelayMillisMax, "], e.g. delay(10)"));
    }
    out.action = Action::Delay(absl::Milliseconds(millis));
  } else if (task == "hang" || task == "pause") {
    RETURN_IF_ERROR(no_argument(task));
    out.action = Action::Hang();
  } else if (task == "crash" || task == "panic") {
    RETURN_IF_ERROR(no_argument(task));
    out.action = Action::Crash();
  } else {
    return TermError(term,
                     absl::StrCat("unknown action ", Quote(task),
                                  "; expected off, return, delay (sleep), hang (pause) or crash "
                                  "(panic), optionally after \"<percent>%\" and \"<count>*\""));
  }
  return out;
}

}  // namespace

std::string StatusCodeName(absl::StatusCode code) {
  for (const CodeName& entry : kCodeNames) {
    if (entry.code == code) return std::string(entry.name);
  }
  if (code == absl::StatusCode::kOk) return "ok";
  return absl::StrCat(static_cast<int>(code));
}

absl::StatusOr<absl::StatusCode> ParseStatusCodeName(absl::string_view text) {
  int number = 0;
  if (absl::SimpleAtoi(text, &number)) {
    for (const CodeName& entry : kCodeNames) {
      if (static_cast<int>(entry.code) == number) return entry.code;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("status code ", Quote(text), " is not a canonical error code (1..16)"));
  }
  const std::string folded = FoldCodeName(text);
  for (const CodeName& entry : kCodeNames) {
    if (FoldCodeName(entry.name) == folded) return entry.code;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown status code ", Quote(text),
                   "; expected a canonical name such as unavailable, internal, data_loss, "
                   "deadline_exceeded, resource_exhausted, permission_denied or not_found"));
}

std::string Term::ToString() const {
  std::string out;
  if (probability_millionths != kProbabilityScale) {
    const uint32_t whole = probability_millionths / 10000;
    const uint32_t frac = probability_millionths % 10000;
    if (frac == 0) {
      absl::StrAppend(&out, whole, "%");
    } else {
      std::string digits = absl::StrCat(frac + 10000).substr(1);  // 4 digits, leading zeros.
      while (!digits.empty() && digits.back() == '0') digits.pop_back();
      absl::StrAppend(&out, whole, ".", digits, "%");
    }
  }
  if (count.has_value()) absl::StrAppend(&out, *count, "*");
  absl::StrAppend(&out, action.ToString());
  return out;
}

absl::Status ValidateFailpointName(absl::string_view name) {
  if (name.empty() || name.size() > kFailpointNameBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("failpoint name ", Quote(name), " must be 1 to ",
                                                   kFailpointNameBytesMax, " bytes"));
  }
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || IsDigit(c) || c == '.' || c == '_' || c == '-' || c == '/';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "failpoint name ", Quote(name), " may only contain a-z, 0-9, '.', '_', '-' and '/'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Term>> ParseActions(absl::string_view text) {
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError("failpoint actions are empty; use \"off\" to disable");
  }
  std::vector<Term> terms;
  for (absl::string_view raw : absl::StrSplit(text, "->")) {
    if (terms.size() == kTermsPerFailpointMax) {
      return absl::InvalidArgumentError(absl::StrCat(
          "failpoint actions ", Quote(text), " have more than ", kTermsPerFailpointMax, " terms"));
    }
    ASSIGN_OR_RETURN(Term term, ParseTerm(raw));
    terms.push_back(std::move(term));
  }
  return terms;
}

absl::StatusOr<std::vector<FailpointConfig>> ParseConfig(absl::string_view text) {
  if (text.size() > kConfigBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("failpoint configuration is ", text.size(),
                                                   " bytes; the limit is ", kConfigBytesMax));
  }
  std::vector<FailpointConfig> out;
  std::set<std::string> seen;
  for (absl::string_view raw : absl::StrSplit(text, ';')) {
    const absl::string_view entry = absl::StripAsciiWhitespace(raw);
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("failpoint entry ", Quote(entry), " has no '=': write name=actions"));
    }
    FailpointConfig config;
    config.name = std::string(absl::StripAsciiWhitespace(entry.substr(0, eq)));
    RETURN_IF_ERROR(Annotate(ValidateFailpointName(config.name),
                             absl::StrCat("failpoint entry ", Quote(entry))));
    absl::StatusOr<std::vector<Term>> terms = ParseActions(entry.substr(eq + 1));
    if (!terms.ok()) {
      return Annotate(terms.status(), absl::StrCat("failpoint ", config.name));
    }
    config.terms = *std::move(terms);
    if (!seen.insert(config.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("failpoint ", config.name, " is configured twice"));
    }
    if (out.size() == kConfigEntriesMax) {
      return absl::InvalidArgumentError(
          absl::StrCat("failpoint configuration has more than ", kConfigEntriesMax, " entries"));
    }
    out.push_back(std::move(config));
  }
  return out;
}

std::string FormatActions(const std::vector<Term>& terms) {
  return absl::StrJoin(terms, "->",
                       [](std::string* out, const Term& term) { out->append(term.ToString()); });
}

}  // namespace bulwark::faultinject
