// The Metrics registry (util/metrics.hpp): counter deltas, gauges, restore after a failed
// flush, and increments from many threads while deltas are taken.
#include "mailreport/util/metrics.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace mailreport {
namespace {

using Delta = Metrics::Delta;

const Delta* find(const std::vector<Delta>& deltas, std::string_view name,
                  std::string_view labels = {}) {
  auto it = std::find_if(deltas.begin(), deltas.end(),
                         [&](const Delta& d) { return d.name == name && d.labels == labels; });
  return it == deltas.end() ? nullptr : &*it;
}

TEST(Metrics, CountersGiveTheirIncreaseSinceTheLastTake) {
  Metrics m;
  auto& a = m.counter("a_total");
  auto& b = m.counter("b_total", "kind=\"x\"");
  EXPECT_EQ(&a, &m.counter("a_total"));  // the same series, the same atomic
  a.fetch_add(3);
  b.fetch_add(1);
  auto d1 = m.take_deltas();
  ASSERT_EQ(d1.size(), 2u);
  ASSERT_NE(find(d1, "a_total"), nullptr);
  EXPECT_EQ(find(d1, "a_total")->value, 3);
  EXPECT_FALSE(find(d1, "a_total")->gauge);
  ASSERT_NE(find(d1, "b_total", "kind=\"x\""), nullptr);
  EXPECT_EQ(find(d1, "b_total", "kind=\"x\"")->value, 1);

  EXPECT_TRUE(m.take_deltas().empty());  // nothing changed
  a.fetch_add(2);
  auto d2 = m.take_deltas();
  ASSERT_EQ(d2.size(), 1u);
  EXPECT_EQ(d2[0].name, "a_total");
  EXPECT_EQ(d2[0].value, 2);
}

TEST(Metrics, GaugesGiveTheirLatestValueWhenChanged) {
  Metrics m;
  m.set_gauge("depth", "", 5);
  m.set_gauge("depth", "", 7);
  auto d1 = m.take_deltas();
  ASSERT_EQ(d1.size(), 1u);
  EXPECT_TRUE(d1[0].gauge);
  EXPECT_EQ(d1[0].value, 7);
  m.set_gauge("depth", "", 7);  // unchanged: left out
  EXPECT_TRUE(m.take_deltas().empty());
  m.set_gauge("depth", "", 0);
  auto d2 = m.take_deltas();
  ASSERT_EQ(d2.size(), 1u);
  EXPECT_EQ(d2[0].value, 0);
  m.set_gauge("fresh", "q=\"1\"", 0);  // a new gauge is sent even at 0
  auto d3 = m.take_deltas();
  ASSERT_EQ(d3.size(), 1u);
  EXPECT_EQ(d3[0].name, "fresh");
}

TEST(Metrics, RestoreGivesAFailedFlushBackToTheNextTake) {
  Metrics m;
  auto& c = m.counter("c_total");
  c.fetch_add(4);
  m.set_gauge("g", "", 9);
  auto lost = m.take_deltas();
  ASSERT_EQ(lost.size(), 2u);
  c.fetch_add(1);  // counted while the flush was failing
  m.restore(lost);
  auto again = m.take_deltas();
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(find(again, "c_total")->value, 5);
  EXPECT_EQ(find(again, "g")->value, 9);

  // A gauge set after the failed take is sent with its newer value.
  m.set_gauge("g", "", 10);
  auto lost2 = m.take_deltas();
  m.set_gauge("g", "", 11);
  m.restore(lost2);
  auto d = m.take_deltas();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].value, 11);
}

TEST(Metrics, NoIncrementIsLostWhileThreadsCountAndDeltasAreTaken) {
  Metrics m;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::atomic<bool> done{false};
  std::int64_t seen = 0;
  std::thread taker([&] {
    while (!done.load()) {
      for (const auto& d : m.take_deltas()) {
        if (d.name == "hits_total") seen += d.value;
      }
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      // Half look the counter up each time (the registry's lock), half keep the reference.
      auto& kept = m.counter("hits_total");
      for (int i = 0; i < kPerThread; ++i) {
        if (t % 2 == 0) {
          kept.fetch_add(1, std::memory_order_relaxed);
        } else {
          m.counter("hits_total").fetch_add(1, std::memory_order_relaxed);
        }
        if (i % 1000 == 0) m.set_gauge("g", "", i);
      }
    });
  }
  for (auto& w : workers) w.join();
  done = true;
  taker.join();
  for (const auto& d : m.take_deltas()) {
    if (d.name == "hits_total") seen += d.value;
  }
  EXPECT_EQ(seen, std::int64_t{kThreads} * kPerThread);
}

TEST(Metrics, OneLabelIsWrittenAndEscapedForTheTextFormat) {
  EXPECT_EQ(Metrics::label("kind", "dmarc-failure"), "kind=\"dmarc-failure\"");
  EXPECT_EQ(Metrics::label("webhook", "a\\b\"c\nd"), "webhook=\"a\\\\b\\\"c\\nd\"");
  Metrics m;
  m.counter("x_total", "kind", "a\"b").fetch_add(2);
  const auto deltas = m.take_deltas();
  ASSERT_EQ(deltas.size(), 1U);
  EXPECT_EQ(deltas[0].labels, "kind=\"a\\\"b\"");
  EXPECT_EQ(deltas[0].value, 2);
}

TEST(Metrics, ProcessRegistryAndNodeName) {
  EXPECT_EQ(&Metrics::process(), &Metrics::process());
  EXPECT_FALSE(metrics_node_name().empty());
}

}  // namespace
}  // namespace mailreport
