// Fault schedules: the text form round-trips, and malformed events are refused by name.
#include "sim/schedule.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::sim {
namespace {

using ::testing::HasSubstr;

TEST(ScheduleTest, RoundTripsEveryKind) {
  const std::string text =
      "1000:crash:drop:2500,1500@2:midcrash:tear:3:800,2000:kill:100,3000:seal:5000,"
      "4000:jump:-3600000,5000:swap:1:20000,6000:plugin-crash:0,7000:plugin-hang:3,"
      "8000:plugin-slow:1:250:3000,9000:step-down:1500,10000:partition:4000,11000:rotate-"
      "credentials:2:1:0,"
      "fp:storage.file.put.before_sync#7=return(unavailable),fp:catalog.launch.verify#1=crash";
  absl::StatusOr<std::vector<FaultEvent>> events = ParseSchedule(text);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 14u);
  EXPECT_EQ((*events)[1].node, 2);
  EXPECT_EQ((*events)[1].mode, CrashMode::kTearUnsynced);
  EXPECT_EQ((*events)[1].a, 3);
  EXPECT_EQ((*events)[1].b, 800);
  EXPECT_EQ((*events)[4].a, -3600000);
  EXPECT_EQ((*events)[12].site, "storage.file.put.before_sync");
  EXPECT_EQ((*events)[12].hit, 7u);
  EXPECT_EQ((*events)[12].action, faultinject::Action::Return(absl::StatusCode::kUnavailable));
  EXPECT_EQ(FormatSchedule(*events), text);
  EXPECT_TRUE(ParseSchedule("")->empty());
  EXPECT_TRUE(ParseSchedule(" , ")->empty());
}

TEST(ScheduleTest, SortsTimedFaultsThenFires) {
  std::vector<FaultEvent> events =
      *ParseSchedule("fp:b#2=hang,5000:kill:1,fp:a#9=crash,fp:b#1=hang,100:seal:1");
  SortSchedule(events);
  EXPECT_EQ(FormatSchedule(events), "100:seal:1,5000:kill:1,fp:a#9=crash,fp:b#1=hang,fp:b#2=hang");
}

TEST(ScheduleTest, RefusesMalformedEventsNamingThem) {
  auto error = [](absl::string_view text) {
    absl::StatusOr<std::vector<FaultEvent>> events = ParseSchedule(text);
    EXPECT_FALSE(events.ok()) << text;
    EXPECT_EQ(events.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(events.status().message());
  };
  EXPECT_THAT(error("1000:explode"),
              AllOf(HasSubstr("\"1000:explode\""), HasSubstr("unknown fault kind \"explode\"")));
  EXPECT_THAT(error("abc:crash:drop:1"), HasSubstr("simulated time in whole milliseconds"));
  EXPECT_THAT(error("1000:crash:melt:1"), HasSubstr("drop or tear"));
  EXPECT_THAT(error("1000:crash:drop"), HasSubstr("crash takes 2 arguments"));
  EXPECT_THAT(error("1000:midcrash:drop:0:5"), HasSubstr("argument 1 must be an integer in [1,"));
  EXPECT_THAT(error("1000:seal:-5"), HasSubstr("argument 1 must be an integer in [0,"));
  EXPECT_THAT(error("1000@x:kill:1"), HasSubstr("node after '@'"));
  EXPECT_THAT(error("1000"), HasSubstr("fault kind is missing"));
  EXPECT_THAT(error("fp:storage.x=crash"), HasSubstr("fp:<name>#<hit>=<action>"));
  EXPECT_THAT(error("fp:storage.x#0=crash"), HasSubstr("hit number"));
  EXPECT_THAT(error("fp:Storage#1=crash"), HasSubstr("may only contain"));
  EXPECT_THAT(error("fp:storage.x#1=25%crash"), HasSubstr("the action must be one of"));
  EXPECT_THAT(error("fp:storage.x#1=off"), HasSubstr("the action must be one of"));
  EXPECT_THAT(error("fp:storage.x#1=retrun"), HasSubstr("unknown action"));
}

}  // namespace
}  // namespace bulwark::sim
