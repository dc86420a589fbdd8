// /metrics (web/metrics_text.hpp): the exact Prometheus text for stored values (HELP and TYPE
// per name, node label first, escaping), and the outbox gauge read at scrape time.
#include "mailreport/web/metrics_text.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mailreport/store/sqlite_store.hpp"

namespace mailreport::web {
namespace {

std::unique_ptr<store::Store> memory_store() {
  store::SqliteOptions o;
  o.path = ":memory:";
  auto s = store::open_sqlite_store(o);
  if (!s) ADD_FAILURE() << s.error().describe();
  return s ? std::move(s).value() : nullptr;
}

store::MetricValue value(std::string node, std::string name, std::string labels, bool gauge,
                         std::int64_t v) {
  return store::MetricValue{std::move(node), std::move(name), std::move(labels), gauge, v, 0};
}

TEST(MetricsText, EmptyStoreGivesEmptyText) {
  auto s = memory_store();
  ASSERT_TRUE(s);
  auto text = render_metrics(*s);
  ASSERT_TRUE(text) << text.error().describe();
  EXPECT_EQ(*text, "");
}

TEST(MetricsText, ExactTextForStoredValues) {
  auto s = memory_store();
  ASSERT_TRUE(s);
  std::vector<store::MetricValue> values = {
      value("mx1", "mailreport_lmtp_sessions_total", "", false, 12),
      value("mx2", "mailreport_lmtp_sessions_total", "", false, 3),
      value("mx1", "mailreport_reports_received_total", "type=\"dmarc-aggregate\"", false, 5),
      value("mx1", "mailreport_reports_received_total", "type=\"tls-aggregate\"", false, 2),
      value("mx1", "mailreport_milter_queue_depth", "", true, -1),
      // A host name that needs every escape of the format.
      value("we\"ird\\host\nx", "mailreport_parse_failures_total", "", false, 1),
      value("mx1", "custom_thing", "a=\"b\"", true, 4),
  };
  ASSERT_TRUE(s->add_metrics(values, 100));
  auto text = render_metrics(*s);
  ASSERT_TRUE(text) << text.error().describe();
  EXPECT_EQ(*text,
            "# HELP custom_thing mailreport metric.\n"
            "# TYPE custom_thing gauge\n"
            "custom_thing{node=\"mx1\",a=\"b\"} 4\n"
            "# HELP mailreport_lmtp_sessions_total LMTP sessions accepted by mailreport-lmtp.\n"
            "# TYPE mailreport_lmtp_sessions_total counter\n"
            "mailreport_lmtp_sessions_total{node=\"mx1\"} 12\n"
            "mailreport_lmtp_sessions_total{node=\"mx2\"} 3\n"
            "# HELP mailreport_milter_queue_depth Records waiting in the milter's background "
            "writer queue.\n"
            "# TYPE mailreport_milter_queue_depth gauge\n"
            "mailreport_milter_queue_depth{node=\"mx1\"} -1\n"
            "# HELP mailreport_parse_failures_total Received messages from which no report "
            "could be parsed.\n"
            "# TYPE mailreport_parse_failures_total counter\n"
            "mailreport_parse_failures_total{node=\"we\\\"ird\\\\host\\nx\"} 1\n"
            "# HELP mailreport_reports_received_total Reports stored, by type.\n"
            "# TYPE mailreport_reports_received_total counter\n"
            "mailreport_reports_received_total{node=\"mx1\",type=\"dmarc-aggregate\"} 5\n"
            "mailreport_reports_received_total{node=\"mx1\",type=\"tls-aggregate\"} 2\n");
}

// Read at scrape time from the outbox; left out (not an error) while the store cannot say.
TEST(MetricsText, OutboxEntriesByKindAndState) {
  auto s = memory_store();
  ASSERT_TRUE(s);
  store::OutboxEntry e;
  e.kind = "dmarc-failure";
  e.recipient = "ruf@example.net";
  e.reported_domain = "example.com";
  e.created_at = 1000;
  e.payload = "{}";
  ASSERT_TRUE(s->enqueue_outbox(e));
  ASSERT_TRUE(s->enqueue_outbox(e));
  auto text = render_metrics(*s);
  ASSERT_TRUE(text) << text.error().describe();
  if (auto stats = s->outbox_stats(); !stats) {
    EXPECT_EQ(text->find("mailreport_outbox_entries"), std::string::npos);
    GTEST_SKIP() << "outbox_stats: " << stats.error().describe();
  }
  EXPECT_NE(text->find("# TYPE mailreport_outbox_entries gauge\n"
                       "mailreport_outbox_entries{kind=\"dmarc-failure\",state=\"queued\"} 2\n"),
            std::string::npos)
      << *text;
}

}  // namespace
}  // namespace mailreport::web
