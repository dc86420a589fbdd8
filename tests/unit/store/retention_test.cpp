// Retention of what the reports we send keep (Store::purge): evaluation rows and TLS counts of
// hours/days before the cutoff, finished outbox entries, aggregate reports with no delivery
// still queued, bounce counts of destinations that are not suppressed. What is newer, still
// queued or suppressed stays.
#include <gtest/gtest.h>

#include <algorithm>

#include "mailreport/store/sqlite_store.hpp"
#include "sample_evaluation.hpp"
#include "store_fixtures.hpp"
#include "testsupport.hpp"

namespace mailreport::store {
namespace {

using test::count_rows;
using test::TempDir;

constexpr std::int64_t kDay = 86400;

report::TlsrptDatagram tls_datagram(bool success) {
  report::TlsrptDatagram d;
  d.domain = "example.net";
  d.record = "v=TLSRPTv1; rua=mailto:tls@example.net";
  report::TlsrptPolicyResult p;
  p.policy_type = "sts";
  p.policy_domain = "example.net";
  p.policy_string = {"version: STSv1", "mode: enforce"};
  p.mx_host = {"mx.example.net"};
  p.success = success;
  if (!success)
    p.failures.push_back(
        {"certificate-expired", "192.0.2.1", "mx.example.net", "", "198.51.100.1", "", ""});
  d.policies.push_back(p);
  return d;
}

// One aggregate report built at `created_at` with one delivery; returns the outbox entry's id.
std::int64_t queue_report(Store& s, const std::string& report_id, std::int64_t created_at) {
  AggregateBatch b;
  b.kind = std::string(kDmarcAggregateKind);
  AggregateBatch::Item item;
  item.report.kind = b.kind;
  item.report.report_id = report_id;
  item.report.policy_domain = "example.com";
  item.report.date_begin = created_at - kDay;
  item.report.date_end = created_at;
  item.report.created_at = created_at;
  item.report.filename = "f.xml.gz";
  item.report.content = "gz";
  OutboxEntry e;
  e.recipient = "dmarc@example.com";
  e.reported_domain = "example.com";
  e.created_at = created_at;
  e.next_attempt_at = created_at;
  item.deliveries.push_back(e);
  b.reports.push_back(item);
  auto ids = s.commit_aggregate_batch(b);
  EXPECT_TRUE(ids) << ids.error().describe();
  OutboxFilter f;
  f.state = OutboxState::Queued;
  auto queued = s.list_outbox(f);
  EXPECT_TRUE(queued);
  return queued && !queued->empty() ? queued->back().id : 0;
}

class Retention : public test::StoreTest {};

TEST_P(Retention, PurgeRemovesWhatTheReportsWeSendNoLongerNeed) {
  auto opened = open_store();
  ASSERT_TRUE(opened);
  Store& s = *opened;

  // Evaluations on day 0 and day 10; TLS results on day 0 and day 10.
  std::vector<auth::Evaluation> evs = {test::sample_evaluation(1000, "192.0.2.1"),
                                       test::sample_evaluation(10 * kDay, "192.0.2.2")};
  ASSERT_TRUE(s.record_evaluations(evs));
  std::vector<report::TlsrptDatagram> tls = {tls_datagram(false)};
  ASSERT_TRUE(s.record_tls_results(tls, 1000));
  ASSERT_TRUE(s.record_tls_results(tls, 10 * kDay));
  ASSERT_TRUE(s.record_tls_rejected("not json", "invalid", 1000));

  // Two old reports: one sent (and bounced once), one still queued; one new report.
  const std::int64_t sent = queue_report(s, "old-sent", 2000);
  ASSERT_TRUE(s.outbox_sent(sent, 2100, "old-sent@ours.example"));
  queue_report(s, "old-queued", 2000);
  queue_report(s, "new", 10 * kDay);
  auto bounce = s.record_report_bounce("old-sent@ours.example", "5.1.1", 2200, 0);
  ASSERT_TRUE(bounce) << bounce.error().describe();
  ASSERT_TRUE(s.add_suppression("manual@example.org", "asked us to stop", 2200));

  auto r = s.purge(5 * kDay);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->evaluation_rows, 1u);
  EXPECT_EQ(r->tls_counts, 1u);
  EXPECT_EQ(r->outbox_entries, 1u);
  EXPECT_EQ(r->aggregate_reports, 1u);

  auto rows = s.list_evaluations({});
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().record.row.source_ip, "192.0.2.2");
  auto counts = s.list_tls_counts(0, "");
  ASSERT_TRUE(counts);
  ASSERT_EQ(counts->size(), 1u);
  EXPECT_EQ(counts->front().day, 10 * kDay);
  EXPECT_EQ(count_rows("tls_count_failures"), 1);  // the purged row's went with it
  EXPECT_EQ(count_rows("tls_rejected"), 0);

  auto reports = s.list_aggregate_reports({});
  ASSERT_TRUE(reports);
  std::vector<std::string> ids;
  for (const auto& a : *reports) ids.push_back(a.report_id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"new", "old-queued"}));
  auto outbox = s.list_outbox({});
  ASSERT_TRUE(outbox);
  EXPECT_EQ(outbox->size(), 2u);  // both queued ones

  auto sup = s.list_suppressions();
  ASSERT_TRUE(sup);
  ASSERT_EQ(sup->size(), 1u);  // the bounce count went, the admin's suppression stays
  EXPECT_EQ(sup->front().address, "manual@example.org");

  auto again = s.purge(5 * kDay);
  ASSERT_TRUE(again);
  EXPECT_EQ(
      again->evaluation_rows + again->tls_counts + again->outbox_entries + again->aggregate_reports,
      0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, Retention, test::kBothBackends, test::BackendName());

}  // namespace
}  // namespace mailreport::store
