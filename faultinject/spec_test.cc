// The failpoint grammar: what parses, what it means, and the messages for what does not.
#include "faultinject/spec.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::faultinject {
namespace {

using ::testing::HasSubstr;

Term Only(absl::string_view text) {
  absl::StatusOr<std::vector<Term>> terms = ParseActions(text);
  EXPECT_TRUE(terms.ok()) << text << ": " << terms.status();
  if (!terms.ok() || terms->size() != 1) return Term();
  return (*terms)[0];
}

std::string ErrorOf(absl::string_view actions) {
  absl::StatusOr<std::vector<Term>> terms = ParseActions(actions);
  EXPECT_FALSE(terms.ok()) << actions << " parsed";
  EXPECT_EQ(terms.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(terms.status().message());
}

TEST(SpecTest, ParsesEachTask) {
  EXPECT_EQ(Only("off").action.kind, ActionKind::kNone);
  EXPECT_EQ(Only("return").action, Action::Return(absl::StatusCode::kUnavailable));
  EXPECT_EQ(Only("return(data_loss)").action, Action::Return(absl::StatusCode::kDataLoss));
  EXPECT_EQ(Only("return(DEADLINE_EXCEEDED)").action,
            Action::Return(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(Only("return(kPermissionDenied)").action,
            Action::Return(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(Only("return(13)").action, Action::Return(absl::StatusCode::kInternal));
  EXPECT_EQ(Only("delay(10)").action, Action::Delay(absl::Milliseconds(10)));
  EXPECT_EQ(Only("sleep(0)").action, Action::Delay(absl::ZeroDuration()));
  EXPECT_EQ(Only("hang").action, Action::Hang());
  EXPECT_EQ(Only("pause").action, Action::Hang());
  EXPECT_EQ(Only("crash").action, Action::Crash());
  EXPECT_EQ(Only("panic").action, Action::Crash());
}

TEST(SpecTest, ParsesPercentagesAndCounts) {
  Term t = Only("25%3*return(unavailable)");
  EXPECT_EQ(t.probability_millionths, 250000u);
  EXPECT_EQ(t.count, 3u);
  EXPECT_EQ(t.action, Action::Return(absl::StatusCode::kUnavailable));

  EXPECT_EQ(Only("0.5%crash").probability_millionths, 5000u);
  EXPECT_EQ(Only("0.0001%crash").probability_millionths, 1u);
  EXPECT_EQ(Only("100%crash").probability_millionths, kProbabilityScale);
  EXPECT_EQ(Only("0%crash").probability_millionths, 0u);
  EXPECT_EQ(Only("7*hang").count, 7u);
  EXPECT_FALSE(Only("hang").count.has_value());
  // Whitespace around tokens is ignored.
  t = Only("  50% 2* return( internal ) ");
  EXPECT_EQ(t.probability_millionths, 500000u);
  EXPECT_EQ(t.count, 2u);
  EXPECT_EQ(t.action, Action::Return(absl::StatusCode::kInternal));
}

TEST(SpecTest, ParsesChains) {
  absl::StatusOr<std::vector<Term>> terms = ParseActions("6*off->1*return(internal)->delay(5)");
  ASSERT_TRUE(terms.ok()) << terms.status();
  ASSERT_EQ(terms->size(), 3u);
  EXPECT_EQ((*terms)[0].count, 6u);
  EXPECT_EQ((*terms)[0].action.kind, ActionKind::kNone);
  EXPECT_EQ((*terms)[1].action, Action::Return(absl::StatusCode::kInternal));
  EXPECT_EQ((*terms)[2].action, Action::Delay(absl::Milliseconds(5)));
}

TEST(SpecTest, FormatRoundTrips) {
  for (absl::string_view text :
       {"off", "return(unavailable)", "25%3*return(data_loss)", "0.5%crash", "12.3456%hang",
        "6*off->1*return(internal)->delay(5)", "100*delay(86400000)"}) {
    absl::StatusOr<std::vector<Term>> terms = ParseActions(text);
    ASSERT_TRUE(terms.ok()) << text << ": " << terms.status();
    EXPECT_EQ(FormatActions(*terms), text);
    absl::StatusOr<std::vector<Term>> again = ParseActions(FormatActions(*terms));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *terms);
  }
  // Aliases and defaults print in their canonical spelling.
  EXPECT_EQ(FormatActions(*ParseActions("sleep(3)->panic->pause->return")),
            "delay(3)->crash->hang->return(unavailable)");
}

TEST(SpecTest, RejectsBadTermsNamingThem) {
  EXPECT_THAT(ErrorOf("retrun(unavailable)"),
              AllOf(HasSubstr("\"retrun(unavailable)\""), HasSubstr("unknown action \"retrun\"")));
  EXPECT_THAT(ErrorOf("101%crash"), AllOf(HasSubstr("\"101%crash\""), HasSubstr("above 100")));
  EXPECT_THAT(ErrorOf("1.23456%crash"), HasSubstr("at most 4 decimals"));
  EXPECT_THAT(ErrorOf("0*crash"), HasSubstr("count \"0\" must be an integer in [1,"));
  EXPECT_THAT(ErrorOf("3crash"), HasSubstr("must be followed by '%' (percentage) or '*' (count)"));
  EXPECT_THAT(ErrorOf("2.5*crash"), HasSubstr("decimal number must be followed by '%'"));
  EXPECT_THAT(ErrorOf("return(sometimes)"), HasSubstr("unknown status code \"sometimes\""));
  EXPECT_THAT(ErrorOf("return(ok)"), HasSubstr("unknown status code \"ok\""));
  EXPECT_THAT(ErrorOf("return(0)"), HasSubstr("not a canonical error code"));
  EXPECT_THAT(ErrorOf("delay"), HasSubstr("delay needs whole milliseconds"));
  EXPECT_THAT(ErrorOf("delay(1.5)"), HasSubstr("delay needs whole milliseconds"));
  EXPECT_THAT(ErrorOf("delay(-1)"), HasSubstr("delay needs whole milliseconds"));
  EXPECT_THAT(ErrorOf("sleep(86400001)"), HasSubstr("sleep needs whole milliseconds"));
  EXPECT_THAT(ErrorOf("crash(now)"), HasSubstr("crash takes no argument"));
  EXPECT_THAT(ErrorOf("hang("), HasSubstr("without a closing ')'"));
  EXPECT_THAT(ErrorOf("crash->"), HasSubstr("empty term"));
  EXPECT_THAT(ErrorOf("->crash"), HasSubstr("empty term"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("empty"));
  EXPECT_THAT(ErrorOf("off->25%bogus"), HasSubstr("\"25%bogus\""));
}

TEST(SpecTest, RejectsTooManyTerms) {
  std::string text = "off";
  for (size_t i = 0; i < kTermsPerFailpointMax; ++i) text += "->off";
  EXPECT_THAT(ErrorOf(text), HasSubstr("more than 256 terms"));
}

TEST(SpecTest, ParsesConfigurations) {
  absl::StatusOr<std::vector<FailpointConfig>> config = ParseConfig(
      " storage.file.put.before_sync=25%3*return(unavailable) ;; barrier.unseal=crash;");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->size(), 2u);
  EXPECT_EQ((*config)[0].name, "storage.file.put.before_sync");
  EXPECT_EQ(FormatActions((*config)[0].terms), "25%3*return(unavailable)");
  EXPECT_EQ((*config)[1].name, "barrier.unseal");
  EXPECT_TRUE(ParseConfig("")->empty());
}

TEST(SpecTest, RejectsBadConfigurationsNamingTheEntry) {
  auto error = [](absl::string_view text) {
    absl::StatusOr<std::vector<FailpointConfig>> config = ParseConfig(text);
    EXPECT_FALSE(config.ok()) << text;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(config.status().message());
  };
  EXPECT_THAT(error("a=crash;b"), HasSubstr("entry \"b\" has no '='"));
  EXPECT_THAT(error("Bad.Name=crash"), AllOf(HasSubstr("\"Bad.Name\""), HasSubstr("a-z")));
  EXPECT_THAT(error("=crash"), HasSubstr("must be 1 to 128 bytes"));
  EXPECT_THAT(error("a=crash;b=25%bogus"),
              AllOf(HasSubstr("failpoint b"), HasSubstr("unknown action \"bogus\"")));
  EXPECT_THAT(error("a=crash;a=off"), HasSubstr("failpoint a is configured twice"));
  EXPECT_THAT(error("a="), HasSubstr("failpoint a: failpoint actions are empty"));
  EXPECT_THAT(error(std::string(kConfigBytesMax + 1, 'a')), HasSubstr("the limit is 65536"));
}

TEST(SpecTest, StatusCodeNames) {
  EXPECT_EQ(StatusCodeName(absl::StatusCode::kUnavailable), "unavailable");
  EXPECT_EQ(StatusCodeName(absl::StatusCode::kDataLoss), "data_loss");
  for (int code = 1; code <= 16; ++code) {
    const auto c = static_cast<absl::StatusCode>(code);
    absl::StatusOr<absl::StatusCode> parsed = ParseStatusCodeName(StatusCodeName(c));
    ASSERT_TRUE(parsed.ok()) << code;
    EXPECT_EQ(*parsed, c);
  }
}

}  // namespace
}  // namespace bulwark::faultinject
