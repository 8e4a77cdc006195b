// Metrics: Prometheus text rendering, histogram buckets, the series cap.
#include "base/metrics/metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::metrics {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, RendersCountersGaugesAndHistograms) {
  Registry r;
  Family* launches = r.Counter("bulwark_plugin_launches_total", "Plugin processes started.");
  Family* running = r.Gauge("bulwark_plugin_processes", "Plugin processes running.");
  Family* latency = r.Histogram("bulwark_request_seconds", "Request latency.", {0.1, 1});
  launches->Add({{"plugin", "kv"}}, 1);
  launches->Add({{"plugin", "kv"}}, 2);
  running->Set({}, 4);
  latency->Observe({{"mount", "a\"b/"}}, 0.05);
  latency->Observe({{"mount", "a\"b/"}}, 0.5);
  latency->Observe({{"mount", "a\"b/"}}, 7);
  EXPECT_EQ(launches->Value({{"plugin", "kv"}}), 3);
  EXPECT_EQ(latency->Value({{"mount", "a\"b/"}}), 3);

  const std::string text = r.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("# TYPE bulwark_plugin_launches_total counter\n"
                              "bulwark_plugin_launches_total{plugin=\"kv\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("bulwark_plugin_processes 4\n"));
  EXPECT_THAT(text, HasSubstr("bulwark_request_seconds_bucket{mount=\"a\\\"b/\",le=\"0.1\"} 1\n"
                              "bulwark_request_seconds_bucket{mount=\"a\\\"b/\",le=\"1\"} 2\n"
                              "bulwark_request_seconds_bucket{mount=\"a\\\"b/\",le=\"+Inf\"} 3\n"
                              "bulwark_request_seconds_sum{mount=\"a\\\"b/\"} 7.55\n"
                              "bulwark_request_seconds_count{mount=\"a\\\"b/\"} 3\n"));
  // Families come out sorted by name.
  EXPECT_LT(text.find("bulwark_plugin_launches_total"), text.find("bulwark_request_seconds"));
}

TEST(MetricsTest, SnapshotListsEverySeriesInOrder) {
  Registry r;
  r.Gauge("b_gauge", "g")->Set({{"k", "v"}}, 2);
  Family* h = r.Histogram("c_hist", "h", {1});
  h->Observe({}, 0.5);
  h->Observe({}, 3);
  r.Counter("a_total", "c")->Add({}, 5);
  const std::vector<SeriesSnapshot> s = r.Snapshot();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].name, "a_total");
  EXPECT_EQ(s[0].type, Family::Type::kCounter);
  EXPECT_EQ(s[0].value, 5);
  EXPECT_EQ(s[1].name, "b_gauge");
  EXPECT_EQ(s[1].labels, (Labels{{"k", "v"}}));
  EXPECT_EQ(s[2].type, Family::Type::kHistogram);
  EXPECT_EQ(s[2].count, 2u);
  EXPECT_EQ(s[2].value, 3.5);
}

TEST(MetricsTest, SeriesBeyondTheCapFoldIntoOverflow) {
  Registry r;
  Family* c = r.Counter("c", "h");
  for (size_t i = 0; i < kSeriesPerFamilyMax + 10; ++i) {
    c->Add({{"plugin", std::to_string(i)}}, 1);
  }
  EXPECT_EQ(c->Total(), kSeriesPerFamilyMax + 10);
  EXPECT_EQ(c->Value({{"plugin", "overflow"}}), 10);
}

TEST(MetricsDeathTest, CounterCannotGoDown) {
  Registry r;
  Family* c = r.Counter("c", "h");
  EXPECT_DEATH(c->Add({}, -1), "only goes up");
}

}  // namespace
}  // namespace bulwark::metrics
