// A small SQL lexer (quotes, dollar quotes, comments) shared by the splitter and the expander.
#include "examples/postgres/sql_template.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace bulwark::examples::postgres {
namespace {

enum class Token { kChar, kSingle, kDouble, kDollar, kComment, kPlaceholder };

struct Lexeme {
  Token token = Token::kChar;
  size_t end = 0;        // One past the lexeme.
  size_t tag_size = 0;   // kDollar: the size of "$tag$".
  bool escapes = false;  // kSingle: an E'...' string (backslash escapes); `begin` is at the E.
};

bool IsIdentChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == '$'; }

// The size of the "$tag$" starting at text[pos], or 0 when no dollar quote starts there.
size_t DollarTagSize(absl::string_view text, size_t pos) {
  if (text[pos] != '$' || (pos > 0 && IsIdentChar(text[pos - 1]))) return 0;
  size_t j = pos + 1;
  if (j < text.size() && absl::ascii_isdigit(text[j])) return 0;  // A parameter ($1).
  while (j < text.size() && (absl::ascii_isalnum(text[j]) || text[j] == '_')) ++j;
  return j < text.size() && text[j] == '$' ? j - pos + 1 : 0;
}

absl::Status Unterminated(absl::string_view what, size_t pos) {
  return absl::InvalidArgumentError(
      absl::StrCat("statement has an unterminated ", what, " starting at byte ", pos));
}

// The lexeme starting at text[pos].
absl::StatusOr<Lexeme> Next(absl::string_view text, size_t pos) {
  Lexeme lx;
  const char c = text[pos];
  const bool e_string = (c == 'E' || c == 'e') && pos + 1 < text.size() && text[pos + 1] == '\'' &&
                        (pos == 0 || !IsIdentChar(text[pos - 1]));
  if (c == '\'' || e_string) {
    lx.token = Token::kSingle;
    lx.escapes = e_string;
    for (size_t j = pos + (e_string ? 2 : 1); j < text.size(); ++j) {
      if (e_string && text[j] == '\\') {
        ++j;
      } else if (text[j] == '\'') {
        if (j + 1 < text.size() && text[j + 1] == '\'') {
          ++j;
        } else {
          lx.end = j + 1;
          return lx;
        }
      }
    }
    return Unterminated("quoted string", pos);
  }
  if (c == '"') {
    lx.token = Token::kDouble;
    for (size_t j = pos + 1; j < text.size(); ++j) {
      if (text[j] != '"') continue;
      if (j + 1 < text.size() && text[j + 1] == '"') {
        ++j;
      } else {
        lx.end = j + 1;
        return lx;
      }
    }
    return Unterminated("quoted identifier", pos);
  }
  if (c == '$') {
    if (const size_t tag = DollarTagSize(text, pos); tag > 0) {
      const size_t close = text.find(text.substr(pos, tag), pos + tag);
      if (close == absl::string_view::npos) return Unterminated("dollar-quoted string", pos);
      lx.token = Token::kDollar;
      lx.tag_size = tag;
      lx.end = close + tag;
      return lx;
    }
  }
  if (c == '-' && pos + 1 < text.size() && text[pos + 1] == '-') {
    const size_t eol = text.find('\n', pos);
    lx.token = Token::kComment;
    lx.end = eol == absl::string_view::npos ? text.size() : eol + 1;
    return lx;
  }
  if (c == '/' && pos + 1 < text.size() && text[pos + 1] == '*') {
    const size_t close = text.find("*/", pos + 2);
    if (close == absl::string_view::npos) return Unterminated("comment", pos);
    lx.token = Token::kComment;
    lx.end = close + 2;
    return lx;
  }
  if (c == '{' && pos + 1 < text.size() && text[pos + 1] == '{') {
    const size_t close = text.find("}}", pos + 2);
    if (close != absl::string_view::npos) {
      lx.token = Token::kPlaceholder;
      lx.end = close + 2;
      return lx;
    }
  }
  lx.end = pos + 1;
  return lx;
}

std::string KnownKeys(const TemplateVars& vars) {
  std::vector<std::string> keys;
  for (const auto& [key, var] : vars) keys.push_back(absl::StrCat("{{", key, "}}"));
  return keys.empty() ? "none" : absl::StrJoin(keys, ", ");
}

// The variable a whole quoted token names ("'{{password}}'" -> password), if any.
const TemplateVar* WholeTokenVar(absl::string_view token, const TemplateVars& vars) {
  if (token.size() < 6 || token.substr(1, 2) != "{{" || token.substr(token.size() - 3, 2) != "}}") {
    return nullptr;
  }
  auto it = vars.find(std::string(token.substr(3, token.size() - 6)));
  return it == vars.end() ? nullptr : &it->second;
}

// An error when a known placeholder sits inside a quoted token with other text.
absl::Status CheckNoEmbedded(absl::string_view token, const TemplateVars& vars) {
  for (const auto& [key, var] : vars) {
    if (absl::StrContains(token, absl::StrCat("{{", key, "}}"))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "statement has {{", key,
          "}} inside a quoted string with other text; quote the placeholder alone ('{{", key,
          "}}' or \"{{", key, "}}\") so its value can be escaped"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitStatement(absl::string_view statement) {
  std::vector<std::string> queries;
  size_t start = 0;
  size_t pos = 0;
  auto cut = [&](size_t end) {
    absl::string_view query = absl::StripAsciiWhitespace(statement.substr(start, end - start));
    if (!query.empty()) queries.emplace_back(query);
  };
  while (pos < statement.size()) {
    if (statement[pos] == ';') {
      cut(pos);
      start = ++pos;
      continue;
    }
    absl::StatusOr<Lexeme> lx = Next(statement, pos);
    if (!lx.ok()) return lx.status();
    pos = lx->end;
  }
  cut(statement.size());
  return queries;
}

absl::StatusOr<std::string> ExpandQuery(absl::string_view query, const TemplateVars& vars,
                                        const Quoter& quote) {
  std::string out;
  size_t pos = 0;
  while (pos < query.size()) {
    absl::StatusOr<Lexeme> lx = Next(query, pos);
    if (!lx.ok()) return lx.status();
    const absl::string_view token = query.substr(pos, lx->end - pos);
    switch (lx->token) {
      case Token::kChar:
      case Token::kComment:
        absl::StrAppend(&out, token);
        break;
      case Token::kSingle:
      case Token::kDouble: {
        const TemplateVar* var = lx->escapes ? nullptr : WholeTokenVar(token, vars);
        if (var == nullptr) {
          if (absl::Status embedded = CheckNoEmbedded(token, vars); !embedded.ok()) {
            return embedded;
          }
          absl::StrAppend(&out, token);
          break;
        }
        absl::StatusOr<std::string> quoted = quote(
            var->value, lx->token == Token::kSingle ? QuoteAs::kLiteral : QuoteAs::kIdentifier);
        if (!quoted.ok()) return quoted.status();
        absl::StrAppend(&out, *quoted);
        break;
      }
      case Token::kDollar: {
        const absl::string_view tag = token.substr(0, lx->tag_size);
        absl::StatusOr<std::string> body =
            ExpandQuery(token.substr(tag.size(), token.size() - 2 * tag.size()), vars, quote);
        if (!body.ok()) return body.status();
        if (absl::StrContains(*body, tag)) {
          return absl::InvalidArgumentError(
              absl::StrCat("a value would end the dollar-quoted body (", tag,
                           ") it is expanded into; use another tag, e.g. $bulwark$"));
        }
        absl::StrAppend(&out, tag, *body, tag);
        break;
      }
      case Token::kPlaceholder: {
        const std::string key(token.substr(2, token.size() - 4));
        auto it = vars.find(key);
        if (it == vars.end()) {
          return absl::InvalidArgumentError(absl::StrCat("statement uses {{", key.substr(0, 64),
                                                         "}}, which this call does not provide (",
                                                         KnownKeys(vars), ")"));
        }
        absl::StatusOr<std::string> quoted = quote(it->second.value, it->second.bare_as);
        if (!quoted.ok()) return quoted.status();
        absl::StrAppend(&out, *quoted);
        break;
      }
    }
    pos = lx->end;
  }
  return out;
}

absl::StatusOr<std::string> StandardQuote(absl::string_view value, QuoteAs quote_as) {
  if (value.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("a value contains a NUL byte");
  }
  const char q = quote_as == QuoteAs::kIdentifier ? '"' : '\'';
  const bool backslash = quote_as == QuoteAs::kLiteral && absl::StrContains(value, '\\');
  std::string out = backslash ? " E'" : std::string(1, q);
  for (char c : value) {
    if (c == q || (backslash && c == '\\')) out += c;
    out += c;
  }
  out += q;
  return out;
}

}  // namespace bulwark::examples::postgres
