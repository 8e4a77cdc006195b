// The PostgreSQL plugin's statement templates: splitting a configured statement into queries on
// ';' (as Vault does, but never inside quotes, dollar-quoted bodies or comments), and expanding
// {{name}}, {{username}}, {{password}} and {{expiration}} so that no value can change the shape
// of the SQL: every value is quoted by the Quoter (libpq's PQescapeIdentifier /
// PQescapeLiteral), never pasted.
//
// What a placeholder becomes, by where it stands (Vault's documented statements work as is):
//   "{{name}}"     the whole double-quoted token is replaced by the quoted identifier
//   '{{password}}' the whole single-quoted token is replaced by the quoted literal
//   {{name}}       bare: the variable's own kind (name/username: identifier; password and
//                  expiration: literal)
// A placeholder sharing a quoted string with other text ('x-{{name}}'), or in a dollar-quoted
// body whose closing tag a value contains, is an error, since quoting could not keep the value
// in place. Inside a dollar-quoted body ($$ ... $$, e.g. a DO block) the same rules apply to the
// body's own quotes. Placeholders in comments are left alone. An unknown placeholder is an
// error that lists the known ones.
#ifndef BULWARK_EXAMPLES_POSTGRES_SQL_TEMPLATE_H_
#define BULWARK_EXAMPLES_POSTGRES_SQL_TEMPLATE_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bulwark::examples::postgres {

enum class QuoteAs { kIdentifier, kLiteral };

// Quotes `value` as a complete SQL identifier ("...") or literal ('...' or E'...').
using Quoter =
    std::function<absl::StatusOr<std::string>(absl::string_view value, QuoteAs quote_as)>;

struct TemplateVar {
  std::string value;
  QuoteAs bare_as = QuoteAs::kLiteral;  // What a bare {{key}} becomes.
};

// Keyed by the name between the braces ("name", "password", ...).
using TemplateVars = std::map<std::string, TemplateVar>;

// Splits `statement` on ';' outside quotes ('...', "..."), dollar quotes ($tag$...$tag$) and
// comments; trims each query and drops empty ones. An unterminated quote or comment is an error.
absl::StatusOr<std::vector<std::string>> SplitStatement(absl::string_view statement);

// Expands the placeholders of one query (see above). Errors name the placeholder and the rule
// it breaks, never a value.
absl::StatusOr<std::string> ExpandQuery(absl::string_view query, const TemplateVars& vars,
                                        const Quoter& quote);

// A Quoter that does what libpq does with standard_conforming_strings on: identifiers in "..."
// with '"' doubled; literals in '...' with '\'' doubled, as E'...' with '\\' doubled when the
// value has a backslash. Values with a NUL byte are refused. For tests and tools without a
// connection; the plugin uses libpq's own.
absl::StatusOr<std::string> StandardQuote(absl::string_view value, QuoteAs quote_as);

}  // namespace bulwark::examples::postgres

#endif  // BULWARK_EXAMPLES_POSTGRES_SQL_TEMPLATE_H_
