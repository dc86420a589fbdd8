// The store's metrics table (issue 6), on SQLite and PostgreSQL: add_metrics adds counter
// deltas and sets gauges per (node, name, labels), list_metrics reads them back; and the
// MetricsFlusher that writes a registry's deltas there (periodically and when stopped).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "mailreport/store/metrics_flusher.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/metrics.hpp"
#include "store_fixtures.hpp"

namespace mailreport::store {
namespace {

MetricValue value(std::string node, std::string name, std::string labels, bool gauge,
                  std::int64_t v) {
  return MetricValue{std::move(node), std::move(name), std::move(labels), gauge, v, 0};
}

const MetricValue* find(const std::vector<MetricValue>& all, std::string_view node,
                        std::string_view name, std::string_view labels = {}) {
  for (const auto& v : all) {
    if (v.node == node && v.name == name && v.labels == labels) return &v;
  }
  return nullptr;
}

class MetricsStore : public test::StoreTest {};

TEST_P(MetricsStore, CountersAddGaugesSet) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto empty = store->list_metrics();
  ASSERT_TRUE(empty) << empty.error().describe();
  EXPECT_TRUE(empty->empty());

  std::vector<MetricValue> first = {
      value("mx1", "mailreport_lmtp_sessions_total", "", false, 3),
      value("mx1", "mailreport_reports_received_total", "type=\"arf\"", false, 2),
      value("mx1", "mailreport_milter_queue_depth", "", true, 40),
      value("mx2", "mailreport_lmtp_sessions_total", "", false, 1),
  };
  ASSERT_TRUE(store->add_metrics(first, 1000));
  std::vector<MetricValue> second = {
      value("mx1", "mailreport_lmtp_sessions_total", "", false, 4),
      value("mx1", "mailreport_reports_received_total", "type=\"dsn\"", false, 1),
      value("mx1", "mailreport_milter_queue_depth", "", true, 7),
  };
  ASSERT_TRUE(store->add_metrics(second, 2000));
  ASSERT_TRUE(store->add_metrics({}, 3000));  // nothing: no change

  auto all = store->list_metrics();
  ASSERT_TRUE(all) << all.error().describe();
  ASSERT_EQ(all->size(), 5u);
  const auto* s1 = find(*all, "mx1", "mailreport_lmtp_sessions_total");
  ASSERT_NE(s1, nullptr);
  EXPECT_EQ(s1->value, 7);
  EXPECT_FALSE(s1->gauge);
  EXPECT_EQ(s1->updated_at, 2000);
  const auto* s2 = find(*all, "mx2", "mailreport_lmtp_sessions_total");
  ASSERT_NE(s2, nullptr);
  EXPECT_EQ(s2->value, 1);
  EXPECT_EQ(s2->updated_at, 1000);
  const auto* depth = find(*all, "mx1", "mailreport_milter_queue_depth");
  ASSERT_NE(depth, nullptr);
  EXPECT_TRUE(depth->gauge);
  EXPECT_EQ(depth->value, 7);
  EXPECT_EQ(find(*all, "mx1", "mailreport_reports_received_total", "type=\"arf\"")->value, 2);
  EXPECT_EQ(find(*all, "mx1", "mailreport_reports_received_total", "type=\"dsn\"")->value, 1);
  EXPECT_EQ(count_rows("metrics"), 5);

  // Another process on another connection adds to the same rows.
  auto other = open_store();
  ASSERT_TRUE(other);
  ASSERT_TRUE(other->add_metrics(
      std::vector<MetricValue>{value("mx1", "mailreport_lmtp_sessions_total", "", false, 10)},
      4000));
  auto again = store->list_metrics();
  ASSERT_TRUE(again);
  EXPECT_EQ(find(*again, "mx1", "mailreport_lmtp_sessions_total")->value, 17);
}

TEST_P(MetricsStore, ListIsOrderedByNameLabelsNode) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->add_metrics(
      std::vector<MetricValue>{
          value("b", "z_total", "", false, 1), value("a", "z_total", "", false, 1),
          value("a", "a_total", "k=\"2\"", false, 1), value("a", "a_total", "k=\"1\"", false, 1)},
      1));
  auto all = store->list_metrics();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].labels, "k=\"1\"");
  EXPECT_EQ((*all)[1].labels, "k=\"2\"");
  EXPECT_EQ((*all)[2].node, "a");
  EXPECT_EQ((*all)[3].node, "b");
}

TEST_P(MetricsStore, FlusherWritesDeltasPeriodicallyAndWhenStopped) {
  auto store = open_store();
  ASSERT_TRUE(store);
  Metrics metrics;
  NullLogger log;
  auto& sessions = metrics.counter("mailreport_lmtp_sessions_total");
  {
    MetricsFlusher flusher(*store, metrics, log, std::chrono::milliseconds(50), "node-a");
    sessions.fetch_add(2);
    metrics.set_gauge("mailreport_milter_queue_depth", "", 3);
    // The thread writes within a few intervals.
    std::int64_t seen = 0;
    for (int i = 0; i < 200 && seen != 2; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      auto all = store->list_metrics();
      ASSERT_TRUE(all) << all.error().describe();
      if (const auto* v = find(*all, "node-a", "mailreport_lmtp_sessions_total")) seen = v->value;
    }
    EXPECT_EQ(seen, 2);
    // Counted just before the stop: in the last write.
    sessions.fetch_add(5);
    ASSERT_TRUE(flusher.flush());
    sessions.fetch_add(1);
    flusher.stop();
    flusher.stop();  // idempotent
  }
  auto all = store->list_metrics();
  ASSERT_TRUE(all);
  EXPECT_EQ(find(*all, "node-a", "mailreport_lmtp_sessions_total")->value, 8);
  const auto* depth = find(*all, "node-a", "mailreport_milter_queue_depth");
  ASSERT_NE(depth, nullptr);
  EXPECT_EQ(depth->value, 3);
  EXPECT_TRUE(depth->gauge);
  EXPECT_TRUE(metrics.take_deltas().empty());  // everything was handed over
}

// A write that fails keeps the deltas in the registry for the next one.
TEST(MetricsFlusher, AFailedWriteKeepsTheDeltas) {
  test::TempDir dir;
  SqliteOptions rw;
  rw.path = dir / "store.db";
  auto writable = open_sqlite_store(rw);
  ASSERT_TRUE(writable) << writable.error().describe();
  SqliteOptions ro = rw;
  ro.read_only = true;
  auto read_only = open_sqlite_store(ro);
  ASSERT_TRUE(read_only) << read_only.error().describe();

  Metrics metrics;
  NullLogger log;
  metrics.counter("x_total").fetch_add(3);
  {
    MetricsFlusher failing(**read_only, metrics, log, std::chrono::hours(1), "n");
    EXPECT_FALSE(failing.flush());
  }  // the stop's write fails too
  metrics.counter("x_total").fetch_add(1);
  {
    MetricsFlusher flusher(**writable, metrics, log, std::chrono::hours(1), "n");
    EXPECT_TRUE(flusher.flush());
  }
  auto all = (*writable)->list_metrics();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].value, 4);
}

INSTANTIATE_TEST_SUITE_P(Backends, MetricsStore, test::kBothBackends, test::BackendName());

}  // namespace
}  // namespace mailreport::store
