// Splitting and expansion without a server (StandardQuote stands in for libpq's quoting).
#include "examples/postgres/sql_template.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::examples::postgres {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const TemplateVars& Vars() {
  static const auto* vars = new TemplateVars{
      {"name", {"v-root-ro-AbC", QuoteAs::kIdentifier}},
      {"password", {"pa'ss\"; DROP ROLE x; --", QuoteAs::kLiteral}},
      {"expiration", {"2026-08-21 14:03:05+0000", QuoteAs::kLiteral}},
  };
  return *vars;
}

std::string Expand(absl::string_view query) {
  absl::StatusOr<std::string> out = ExpandQuery(query, Vars(), StandardQuote);
  return out.ok() ? *out : "error: " + std::string(out.status().message());
}

TEST(SplitStatementTest, SplitsOnSemicolonsOutsideQuotesAndComments) {
  absl::StatusOr<std::vector<std::string>> parts = SplitStatement(
      "CREATE ROLE \"a;b\" PASSWORD 'x;y';  GRANT x TO \"a;b\" ; -- c;d\n"
      "DO $$ BEGIN PERFORM 1; END $$;; /* e;f */ SELECT E'\\';'");
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_THAT(*parts,
              ElementsAre("CREATE ROLE \"a;b\" PASSWORD 'x;y'", "GRANT x TO \"a;b\"",
                          "-- c;d\nDO $$ BEGIN PERFORM 1; END $$", "/* e;f */ SELECT E'\\';'"));
}

TEST(SplitStatementTest, UnterminatedQuoteIsAnError) {
  EXPECT_THAT(SplitStatement("SELECT 'x").status().message(), HasSubstr("unterminated"));
  EXPECT_THAT(SplitStatement("DO $a$ x").status().message(), HasSubstr("dollar-quoted"));
}

TEST(ExpandQueryTest, VaultStyleQuotedPlaceholdersAreReplacedWhole) {
  EXPECT_EQ(Expand("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL "
                   "'{{expiration}}'"),
            "CREATE ROLE \"v-root-ro-AbC\" WITH LOGIN PASSWORD 'pa''ss\"; DROP ROLE x; --' VALID "
            "UNTIL '2026-08-21 14:03:05+0000'");
}

TEST(ExpandQueryTest, BarePlaceholdersTakeTheirOwnKind) {
  EXPECT_EQ(Expand("ALTER ROLE {{name}} PASSWORD {{password}}"),
            "ALTER ROLE \"v-root-ro-AbC\" PASSWORD 'pa''ss\"; DROP ROLE x; --'");
  // Quoted the other way round: the quote decides.
  EXPECT_EQ(Expand("SELECT '{{name}}'"), "SELECT 'v-root-ro-AbC'");
}

TEST(ExpandQueryTest, RefusesEmbeddedAndUnknownPlaceholders) {
  EXPECT_THAT(Expand("SELECT 'x-{{name}}'"), HasSubstr("inside a quoted string"));
  EXPECT_THAT(Expand("SELECT \"{{password}}x\""), HasSubstr("inside a quoted string"));
  EXPECT_THAT(Expand("SELECT E'{{password}}'"), HasSubstr("inside a quoted string"));
  EXPECT_THAT(Expand("SELECT {{nope}}"), HasSubstr("{{nope}}, which this call does not provide"));
  // The error never shows a value.
  EXPECT_THAT(Expand("SELECT 'x-{{password}}'"), ::testing::Not(HasSubstr("DROP ROLE")));
}

TEST(ExpandQueryTest, DollarBodiesAreExpandedAndGuarded) {
  EXPECT_EQ(Expand("DO $$ BEGIN CREATE ROLE \"{{name}}\"; END $$"),
            "DO $$ BEGIN CREATE ROLE \"v-root-ro-AbC\"; END $$");
  TemplateVars vars = Vars();
  vars["password"].value = "a$$b";
  absl::StatusOr<std::string> out =
      ExpandQuery("DO $$ BEGIN ALTER ROLE x PASSWORD '{{password}}'; END $$", vars, StandardQuote);
  EXPECT_THAT(out.status().message(), HasSubstr("would end the dollar-quoted body"));
  EXPECT_TRUE(
      ExpandQuery("DO $q$ BEGIN ALTER ROLE x PASSWORD '{{password}}'; END $q$", vars, StandardQuote)
          .ok());
}

TEST(ExpandQueryTest, CommentsAreLeftAlone) {
  EXPECT_EQ(Expand("SELECT 1 -- {{password}}"), "SELECT 1 -- {{password}}");
}

TEST(StandardQuoteTest, QuotesLikeLibpq) {
  EXPECT_EQ(*StandardQuote("a\"b", QuoteAs::kIdentifier), "\"a\"\"b\"");
  EXPECT_EQ(*StandardQuote("a'b", QuoteAs::kLiteral), "'a''b'");
  EXPECT_EQ(*StandardQuote("a\\'b", QuoteAs::kLiteral), " E'a\\\\''b'");
  EXPECT_FALSE(StandardQuote(absl::string_view("a\0b", 3), QuoteAs::kLiteral).ok());
}

}  // namespace
}  // namespace bulwark::examples::postgres
