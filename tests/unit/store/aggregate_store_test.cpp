// The store's side of aggregate reports we send (issue 5), on SQLite and PostgreSQL: unreported
// counts read from a snapshot and marked reported compare-and-set with the reports and their outbox
// entries (exactly once: nothing twice, late messages in the next report, racing builders refused),
// the watermark, the TLS collector's counts per day, policy and failure detail, rejected
// datagrams, bounces and suppressions. SQLite only (AggregateStoreSqlite): the in-memory store's
// walks, and migration 5 on a migration-4 store.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <vector>

#include "mailreport/store/aggregate_payload.hpp"
#include "sample_evaluation.hpp"
#include "store_fixtures.hpp"
#include "testsupport.hpp"

namespace mailreport::store {
namespace {

using test::count_rows;
using test::open_store;
using test::sample_evaluation;
using test::TempDir;

constexpr std::int64_t kHour = 1699999200;  // 2023-11-14 22:00:00 UTC, an hour boundary
constexpr std::int64_t kDay = 1699920000;   // 2023-11-14 00:00:00 UTC
const std::string kDmarc(kDmarcAggregateKind);
const std::string kTls(kTlsAggregateKind);

void record(Store& s, std::vector<auth::Evaluation> batch) {
  auto st = s.record_evaluations(batch);
  ASSERT_TRUE(st) << st.error().describe();
}

std::vector<EvaluationRow> unreported(Store& s, std::int64_t end = kHour + 3600,
                                      std::string_view domain = "") {
  std::vector<EvaluationRow> rows;
  auto st = s.for_each_unreported_evaluation(end, domain, [&rows](const EvaluationRow& r) {
    rows.push_back(r);
    return true;
  });
  EXPECT_TRUE(st) << st.error().describe();
  return rows;
}

std::vector<TlsPolicyCount> unreported_tls(Store& s, std::int64_t end = kDay + 86400,
                                           std::string_view domain = "") {
  std::vector<TlsPolicyCount> rows;
  auto st = s.for_each_unreported_tls(end, domain, [&rows](const TlsPolicyCount& r) {
    rows.push_back(r);
    return true;
  });
  EXPECT_TRUE(st) << st.error().describe();
  return rows;
}

// What a builder marks for the rows it read: the counts it read, over the values it read.
ReportedCount mark(const EvaluationRow& r) {
  ReportedCount c;
  c.table = ReportedCount::Table::Evaluation;
  c.id = r.id;
  c.count = r.reported + r.record.row.count;
  c.was = r.reported;
  return c;
}

AggregateReport report(std::string report_id, std::string domain = "example.com",
                       std::string kind = kDmarc) {
  AggregateReport r;
  r.kind = std::move(kind);
  r.report_id = std::move(report_id);
  r.policy_domain = std::move(domain);
  r.date_begin = kHour;
  r.date_end = kHour + 3600;
  r.created_at = kHour + 3900;
  r.filename = "ours.example!" + r.policy_domain + "!" + std::to_string(r.date_begin) + "!" +
               std::to_string(r.date_end) + "!" + r.report_id + ".xml.gz";
  r.records = 1;
  r.messages = 2;
  r.content = std::string("\x1f\x8b\x08\0gzip bytes\0\xff", 17);
  return r;
}

OutboxEntry delivery(std::string recipient, std::string payload = "") {
  OutboxEntry e;
  e.recipient = std::move(recipient);
  e.reported_domain = "Example.COM";
  e.payload = std::move(payload);
  return e;
}

// A batch reporting `rows` in one report.
AggregateBatch batch_of(const std::vector<EvaluationRow>& rows, std::string report_id) {
  AggregateBatch b;
  b.kind = kDmarc;
  AggregateBatch::Item item;
  item.report = report(std::move(report_id));
  item.deliveries.push_back(delivery("dmarc@example.com"));
  b.reports.push_back(std::move(item));
  for (const auto& r : rows) b.reported.push_back(mark(r));
  return b;
}

std::vector<OutboxEntry> outbox(Store& s) {
  OutboxFilter f;
  f.with_payload = true;
  auto all = s.list_outbox(f);
  EXPECT_TRUE(all) << all.error().describe();
  return all ? std::move(*all) : std::vector<OutboxEntry>{};
}

std::vector<AggregateReport> reports(Store& s, AggregateReportFilter f = {}) {
  auto all = s.list_aggregate_reports(f);
  EXPECT_TRUE(all) << all.error().describe();
  return all ? std::move(*all) : std::vector<AggregateReport>{};
}

// ---------------------------------------------------------------- evaluations, exactly once

class AggregateStore : public test::StoreTest {};

TEST_P(AggregateStore, UnreportedRowsAreReportedOnceAndLateMessagesGoToTheNextReport) {
  auto s = open_store();
  ASSERT_TRUE(s);
  record(*s, {sample_evaluation(kHour + 10), sample_evaluation(kHour + 20),
              sample_evaluation(kHour + 30, "192.0.2.2")});
  auto rows = unreported(*s);
  ASSERT_EQ(rows.size(), 2u);
  // Same domain, policy and hour: in id order, and which row got the lower id is the
  // backend's business (PostgreSQL upserts a batch in key order, against deadlocks).
  std::sort(rows.begin(), rows.end(), [](const EvaluationRow& a, const EvaluationRow& b) {
    return a.record.row.source_ip < b.record.row.source_ip;
  });
  EXPECT_EQ(rows[0].record.row.source_ip, "192.0.2.1");
  EXPECT_EQ(rows[0].record.row.count, 2u);
  EXPECT_EQ(rows[0].reported, 0u);
  EXPECT_EQ(rows[0].rua, std::vector<std::string>{"mailto:dmarc@example.com"});
  EXPECT_EQ(rows[1].record.row.count, 1u);

  auto ids = s->commit_aggregate_batch(batch_of(rows, "r1"));
  ASSERT_TRUE(ids) << ids.error().describe();
  ASSERT_EQ(ids->size(), 1u);
  EXPECT_TRUE(unreported(*s).empty());
  auto listed = s->list_evaluations({});
  ASSERT_TRUE(listed);
  for (const auto& r : *listed) EXPECT_EQ(r.reported, r.record.row.count);

  // Three more messages of the first row: only they are unreported.
  record(*s, {sample_evaluation(kHour + 40), sample_evaluation(kHour + 50),
              sample_evaluation(kHour + 60)});
  rows = unreported(*s);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].record.row.source_ip, "192.0.2.1");
  EXPECT_EQ(rows[0].record.row.count, 3u);
  EXPECT_EQ(rows[0].reported, 2u);
  ASSERT_TRUE(s->commit_aggregate_batch(batch_of(rows, "r2")));
  EXPECT_TRUE(unreported(*s).empty());
  EXPECT_EQ(count_rows("evaluations", "reported = 5"), 1);
  EXPECT_EQ(reports(*s).size(), 2u);
}

TEST_P(AggregateStore, TheWalkIsOrderedByPolicyDomainPolicyHourAndStopsWhenAsked) {
  auto s = open_store();
  ASSERT_TRUE(s);
  record(*s, {sample_evaluation(kHour + 7200, "192.0.2.1", "b.example"),  // a later hour
              sample_evaluation(kHour + 10, "192.0.2.1", "b.example", auth::Policy::None),
              sample_evaluation(kHour + 10, "192.0.2.2", "b.example", auth::Policy::Reject),
              sample_evaluation(kHour - 3600, "192.0.2.3", "b.example", auth::Policy::None),
              sample_evaluation(kHour + 10, "192.0.2.1", "a.example")});
  auto rows = unreported(*s, kHour + 3600);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].policy.domain, "a.example");
  EXPECT_EQ(rows[1].policy.domain, "b.example");
  EXPECT_EQ(rows[1].policy.p, "none");
  EXPECT_EQ(rows[1].interval_begin, kHour - 3600);
  EXPECT_EQ(rows[2].policy.p, "none");
  EXPECT_EQ(rows[2].interval_begin, kHour);
  EXPECT_EQ(rows[3].policy.p, "reject");

  EXPECT_EQ(unreported(*s, kHour + 3 * 3600).size(), 5u);
  auto only_b = unreported(*s, kHour + 3600, "B.Example.");
  ASSERT_EQ(only_b.size(), 3u);
  EXPECT_EQ(only_b[0].policy.domain, "b.example");

  int seen = 0;
  ASSERT_TRUE(s->for_each_unreported_evaluation(
      kHour + 3600, "", [&seen](const EvaluationRow&) { return ++seen < 2; }));
  EXPECT_EQ(seen, 2);

  // A store opened read-only walks the same rows (`send-reports --dry-run` on a copy).
  auto ro = open_store({.read_only = true});
  ASSERT_TRUE(ro);
  EXPECT_EQ(unreported(*ro, kHour + 3600).size(), 4u);
}

TEST_P(AggregateStore, TwoBuildersReadingTheSameRowsReportThemOnce) {
  auto s = open_store();
  ASSERT_TRUE(s);
  record(*s, {sample_evaluation(kHour + 10), sample_evaluation(kHour + 20, "192.0.2.2")});
  auto first = unreported(*s);
  auto second = unreported(*s);
  ASSERT_EQ(first.size(), 2u);
  ASSERT_TRUE(s->commit_aggregate_batch(batch_of(first, "r1")));
  auto late = s->commit_aggregate_batch(batch_of(second, "r2"));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, ErrorCode::Conflict) << late.error().describe();
  auto all = reports(*s);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].report_id, "r1");
  EXPECT_EQ(outbox(*s).size(), 1u);
  EXPECT_EQ(count_rows("evaluations", "reported = count"), 2);
}

TEST_P(AggregateStore, ReportingMoreThanRecordedIsInvalidAndChangesNothing) {
  auto s = open_store();
  ASSERT_TRUE(s);
  record(*s, {sample_evaluation(kHour + 10), sample_evaluation(kHour + 20, "192.0.2.2")});
  auto rows = unreported(*s);
  ASSERT_EQ(rows.size(), 2u);
  auto b = batch_of(rows, "r1");
  b.reported[1].count = 2;  // one message recorded
  auto r = s->commit_aggregate_batch(b);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::Invalid) << r.error().describe();
  EXPECT_EQ(unreported(*s).size(), 2u);
  EXPECT_TRUE(reports(*s).empty());
  EXPECT_TRUE(outbox(*s).empty());

  b = batch_of(rows, "r1");
  b.reported[0].id = 9999;
  r = s->commit_aggregate_batch(b);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::NotFound);
  EXPECT_EQ(unreported(*s).size(), 2u);
}

TEST_P(AggregateStore, TheWatermarkMovesWithItsBatchAndAStaleExpectationRollsEverythingBack) {
  auto s = open_store();
  ASSERT_TRUE(s);
  auto none = s->aggregate_watermark(kDmarc);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);

  record(*s, {sample_evaluation(kHour + 10)});
  auto b = batch_of(unreported(*s), "r1");
  b.watermark = kHour + 3600;
  b.expect_watermark = std::optional<std::int64_t>{};
  ASSERT_TRUE(s->commit_aggregate_batch(b));
  auto wm = s->aggregate_watermark(kDmarc);
  ASSERT_TRUE(wm);
  EXPECT_EQ(*wm, kHour + 3600);
  auto tls_wm = s->aggregate_watermark(kTls);
  ASSERT_TRUE(tls_wm);
  EXPECT_FALSE(*tls_wm);

  // A builder that still thinks no interval was built: nothing of its batch stays.
  record(*s, {sample_evaluation(kHour + 20, "192.0.2.9")});
  auto rows = unreported(*s);
  ASSERT_EQ(rows.size(), 1u);
  b = batch_of(rows, "r2");
  b.watermark = kHour + 7200;
  b.expect_watermark = std::optional<std::int64_t>{};
  auto r = s->commit_aggregate_batch(b);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::Conflict);
  EXPECT_EQ(*s->aggregate_watermark(kDmarc), kHour + 3600);
  EXPECT_EQ(unreported(*s).size(), 1u);
  EXPECT_EQ(reports(*s).size(), 1u);
  EXPECT_EQ(outbox(*s).size(), 1u);

  // With the right expectation it goes through.
  b.expect_watermark = std::optional<std::int64_t>{kHour + 3600};
  ASSERT_TRUE(s->commit_aggregate_batch(b));
  EXPECT_EQ(*s->aggregate_watermark(kDmarc), kHour + 7200);
  EXPECT_TRUE(unreported(*s).empty());
}

// The builder commits from inside the walk: the walk must neither deadlock nor hand over rows
// changed by the commit (a snapshot), on a file store and on ":memory:".
void commit_while_walking(Store& s) {
  record(s, {sample_evaluation(kHour + 10, "192.0.2.1", "a.example"),
             sample_evaluation(kHour + 10, "192.0.2.1", "b.example"),
             sample_evaluation(kHour + 10, "192.0.2.2", "b.example"),
             sample_evaluation(kHour + 10, "192.0.2.1", "c.example")});
  std::vector<std::string> committed;
  std::vector<EvaluationRow> pending;
  Status failure;
  auto flush = [&]() {
    if (pending.empty()) return;
    auto b = batch_of(pending, "r-" + pending[0].policy.domain);
    b.reports[0].report.policy_domain = pending[0].policy.domain;
    auto ids = s.commit_aggregate_batch(b);
    if (!ids) failure = ids.error();
    committed.push_back(pending[0].policy.domain);
    pending.clear();
  };
  auto st = s.for_each_unreported_evaluation(kHour + 3600, "", [&](const EvaluationRow& r) {
    if (!pending.empty() && pending[0].policy.domain != r.policy.domain) flush();
    pending.push_back(r);
    return true;
  });
  ASSERT_TRUE(st) << st.error().describe();
  flush();
  ASSERT_TRUE(failure) << failure.error().describe();
  EXPECT_EQ(committed, (std::vector<std::string>{"a.example", "b.example", "c.example"}));
  EXPECT_TRUE(unreported(s).empty());
  auto all = reports(s);
  ASSERT_EQ(all.size(), 3u);
}

TEST_P(AggregateStore, ABuilderCommitsWhileWalking) {
  auto s = open_store();
  ASSERT_TRUE(s);
  commit_while_walking(*s);
}

TEST(AggregateStoreSqlite, ABuilderCommitsWhileWalkingAMemoryStore) {
  auto s = open_sqlite_store({.path = ":memory:"});
  ASSERT_TRUE(s) << s.error().describe();
  commit_while_walking(**s);
}

TEST_P(AggregateStore, TheWalkReadsOneSnapshot) {
  auto s = open_store();
  ASSERT_TRUE(s);
  record(*s, {sample_evaluation(kHour + 10, "192.0.2.1", "a.example"),
              sample_evaluation(kHour + 10, "192.0.2.1", "b.example")});
  std::vector<std::uint64_t> counts;
  bool recorded = false;
  ASSERT_TRUE(s->for_each_unreported_evaluation(kHour + 3600, "", [&](const EvaluationRow& r) {
    if (!recorded) {
      // Recorded after the walk began: not in it (the next build takes it).
      EXPECT_TRUE(s->record_evaluations(
          std::vector<auth::Evaluation>{sample_evaluation(kHour + 20, "192.0.2.1", "b.example"),
                                        sample_evaluation(kHour + 20, "192.0.2.1", "c.example")}));
      recorded = true;
    }
    counts.push_back(r.record.row.count);
    return true;
  }));
  EXPECT_EQ(counts, (std::vector<std::uint64_t>{1, 1}));
  EXPECT_EQ(unreported(*s).size(), 3u);
}

// ---------------------------------------------------------------- reports and deliveries

TEST_P(AggregateStore, DeliveriesAreQueuedWithPayloadsNamingTheirReport) {
  auto s = open_store();
  ASSERT_TRUE(s);
  AggregateBatch b;
  b.kind = kDmarc;
  for (std::string id : {"r1", "r2"}) {
    AggregateBatch::Item item;
    item.report = report(id, id == "r1" ? "example.com" : "Other.Example");
    item.report.kind.clear();  // the batch's
    AggregatePayload p;
    p.uri = "mailto:dmarc@example.com!10m";
    p.max_size = 10 * 1024 * 1024;
    item.deliveries.push_back(delivery("dmarc@example.com", to_json(p)));
    item.deliveries.push_back(delivery("https://reports.example/dmarc"));
    item.deliveries.back().reported_domain.clear();
    item.deliveries.back().next_attempt_at = kHour + 5000;
    b.reports.push_back(std::move(item));
  }
  auto ids = s->commit_aggregate_batch(b);
  ASSERT_TRUE(ids) << ids.error().describe();
  ASSERT_EQ(ids->size(), 2u);
  EXPECT_NE((*ids)[0], (*ids)[1]);

  auto entries = outbox(*s);
  ASSERT_EQ(entries.size(), 4u);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const OutboxEntry& e = entries[i];
    const std::int64_t report_id = (*ids)[i / 2];
    EXPECT_EQ(e.kind, kDmarc);
    EXPECT_EQ(e.state, OutboxState::Queued);
    EXPECT_EQ(e.created_at, kHour + 3900);
    auto p = aggregate_payload_from_json(e.payload);
    ASSERT_TRUE(p) << e.payload;
    EXPECT_EQ(p->report, report_id);
    if (i % 2 == 0) {
      EXPECT_EQ(e.recipient, "dmarc@example.com");
      EXPECT_EQ(e.reported_domain, "example.com");
      EXPECT_EQ(e.next_attempt_at, kHour + 3900);
      EXPECT_EQ(p->uri, "mailto:dmarc@example.com!10m");
      EXPECT_EQ(p->max_size, 10u * 1024 * 1024);
    } else {
      EXPECT_EQ(e.recipient, "https://reports.example/dmarc");
      EXPECT_EQ(e.reported_domain, i == 1 ? "example.com" : "other.example");
      EXPECT_EQ(e.next_attempt_at, kHour + 5000);
      EXPECT_EQ(p->uri, "https://reports.example/dmarc");
      EXPECT_EQ(p->max_size, 0u);
    }
  }

  auto got = s->get_aggregate_report((*ids)[1]);
  ASSERT_TRUE(got) << got.error().describe();
  EXPECT_EQ(got->kind, kDmarc);
  EXPECT_EQ(got->report_id, "r2");
  EXPECT_EQ(got->policy_domain, "other.example");
  EXPECT_EQ(got->date_begin, kHour);
  EXPECT_EQ(got->date_end, kHour + 3600);
  EXPECT_EQ(got->created_at, kHour + 3900);
  EXPECT_EQ(got->records, 1u);
  EXPECT_EQ(got->messages, 2u);
  EXPECT_EQ(got->filename, b.reports[1].report.filename);
  EXPECT_EQ(got->content, b.reports[1].report.content);
  auto missing = s->get_aggregate_report(9999);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::NotFound);

  // A report id is ours and unique: the same again is refused, and nothing of the batch stays.
  auto again = s->commit_aggregate_batch(b);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::Conflict);
  EXPECT_EQ(outbox(*s).size(), 4u);

  // A payload that is not JSON is refused.
  b.reports.resize(1);
  b.reports[0].report.report_id = "r3";
  b.reports[0].deliveries[0].payload = "not json";
  auto bad = s->commit_aggregate_batch(b);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::Invalid);
  EXPECT_EQ(reports(*s).size(), 2u);
}

TEST_P(AggregateStore, ReportsAreListedNewestFirstWithoutContentAndFiltered) {
  auto s = open_store();
  ASSERT_TRUE(s);
  AggregateBatch dmarc;
  dmarc.kind = kDmarc;
  for (int i = 0; i < 3; ++i) {
    AggregateBatch::Item item;
    item.report = report("d" + std::to_string(i), i == 1 ? "b.example" : "a.example");
    item.report.date_begin = kHour + i * 3600;
    dmarc.reports.push_back(std::move(item));
  }
  ASSERT_TRUE(s->commit_aggregate_batch(dmarc));
  AggregateBatch tls;
  tls.kind = kTls;
  AggregateBatch::Item item;
  item.report = report("t0", "a.example", kTls);
  item.report.date_begin = kDay;
  tls.reports.push_back(std::move(item));
  ASSERT_TRUE(s->commit_aggregate_batch(tls));

  auto ids = [](const std::vector<AggregateReport>& v) {
    std::vector<std::string> out;
    for (const auto& r : v) {
      out.push_back(r.report_id);
      EXPECT_TRUE(r.content.empty());
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(reports(*s)), (V{"d2", "d1", "d0", "t0"}));
  AggregateReportFilter f;
  f.kind = kDmarc;
  f.domain = "A.Example";
  EXPECT_EQ(ids(reports(*s, f)), (V{"d2", "d0"}));
  f = {};
  f.since = kHour + 3600;
  EXPECT_EQ(ids(reports(*s, f)), (V{"d2", "d1"}));
  f = {};
  f.kind = kTls;
  EXPECT_EQ(ids(reports(*s, f)), (V{"t0"}));
  f = {};
  f.limit = 1;
  EXPECT_EQ(ids(reports(*s, f)), (V{"d2"}));
}

TEST(AggregatePayload, RoundTripsAndToleratesUnknownAndMissingMembers) {
  AggregatePayload p;
  p.report = 12;
  p.uri = "mailto:a@b.example!10m";
  p.max_size = 10485760;
  auto back = aggregate_payload_from_json(to_json(p));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->report, 12);
  EXPECT_EQ(back->uri, p.uri);
  EXPECT_EQ(back->max_size, p.max_size);
  auto partial = aggregate_payload_from_json(R"({"uri": "https://x.example/", "later": [1]})");
  ASSERT_TRUE(partial);
  EXPECT_EQ(partial->report, 0);
  EXPECT_EQ(partial->uri, "https://x.example/");
  EXPECT_FALSE(aggregate_payload_from_json("[1]"));
  EXPECT_FALSE(aggregate_payload_from_json("{"));
}

// ---------------------------------------------------------------- TLS counts

report::TlsrptPolicyResult sts_result(bool success, std::vector<report::TlsrptFailure> f = {}) {
  report::TlsrptPolicyResult p;
  p.policy_type = "sts";
  p.policy_domain = "Example.com";
  p.policy_string = {"version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 86400"};
  p.mx_host = {"mx.example.com"};
  p.failures = std::move(f);
  p.success = success;
  return p;
}

report::TlsrptFailure expired() {
  return {"certificate-expired", "192.0.2.10", "mx.example.com", "", "203.0.113.5", "", "301"};
}
report::TlsrptFailure no_starttls() {
  return {"starttls-not-supported", "192.0.2.10", "mx.example.com", "", "203.0.113.5", "", "201"};
}

report::TlsrptDatagram datagram(std::vector<report::TlsrptPolicyResult> policies,
                                std::string domain = "example.com") {
  report::TlsrptDatagram d;
  d.domain = std::move(domain);
  d.record = "v=TLSRPTv1; rua=mailto:tlsrpt@example.com";
  d.policies = std::move(policies);
  return d;
}

void record_tls(Store& s, std::vector<report::TlsrptDatagram> batch, std::int64_t at) {
  auto st = s.record_tls_results(batch, at);
  ASSERT_TRUE(st) << st.error().describe();
}

const TlsFailureCount* find(const TlsPolicyCount& c, std::string_view result_type) {
  for (const auto& f : c.failures) {
    if (f.detail.result_type == result_type) return &f;
  }
  return nullptr;
}

TEST_P(AggregateStore, TlsResultsAreCountedPerDayPolicyAndFailureDetail) {
  auto s = open_store();
  ASSERT_TRUE(s);
  record_tls(*s,
             {datagram({sts_result(true)}), datagram({sts_result(true)}),
              datagram({sts_result(false, {expired(), no_starttls()})}),
              datagram({sts_result(false, {expired()})}), datagram({sts_result(false)})},
             kDay + 100);
  record_tls(*s, {datagram({sts_result(true)}, "other.example")}, kDay + 86399);
  record_tls(*s, {datagram({sts_result(true)})}, kDay + 86400);  // the next day

  auto all = s->list_tls_counts(kDay, "");
  ASSERT_TRUE(all) << all.error().describe();
  ASSERT_EQ(all->size(), 3u);
  const TlsPolicyCount& c = (*all)[0];
  EXPECT_EQ(c.day, kDay);
  EXPECT_EQ(c.domain, "example.com");
  EXPECT_EQ(c.record, "v=TLSRPTv1; rua=mailto:tlsrpt@example.com");
  EXPECT_EQ(c.policy.policy_type, "sts");
  EXPECT_EQ(c.policy.policy_domain, "example.com");
  EXPECT_EQ(c.policy.policy_string.size(), 4u);
  EXPECT_EQ(c.policy.mx_host, std::vector<std::string>{"mx.example.com"});
  EXPECT_EQ(c.policy.total_successful_session_count, 2u);
  EXPECT_EQ(c.policy.total_failure_session_count, 3u);  // one without details
  ASSERT_EQ(c.failures.size(), 2u);
  ASSERT_TRUE(find(c, "certificate-expired"));
  EXPECT_EQ(find(c, "certificate-expired")->detail.failed_session_count, 2u);
  EXPECT_EQ(find(c, "certificate-expired")->detail.receiving_ip, "203.0.113.5");
  EXPECT_EQ(find(c, "certificate-expired")->detail.failure_reason_code, "301");
  EXPECT_EQ(find(c, "starttls-not-supported")->detail.failed_session_count, 1u);
  EXPECT_EQ((*all)[1].domain, "other.example");
  EXPECT_EQ((*all)[2].day, kDay + 86400);
  auto one = s->list_tls_counts(kDay + 86400, "");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->size(), 1u);
  auto other = s->list_tls_counts(0, "Other.Example");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->size(), 1u);

  // Another policy of the same domain is another row.
  auto tlsa = sts_result(true);
  tlsa.policy_type = "tlsa";
  record_tls(*s, {datagram({tlsa})}, kDay + 200);
  EXPECT_EQ(count_rows("tls_counts"), 4);
  EXPECT_EQ(count_rows("tls_count_failures"), 2);
}

TEST_P(AggregateStore, TlsCountsAreReportedOnceWithOnlyTheirDeltasUnreported) {
  auto s = open_store();
  ASSERT_TRUE(s);
  record_tls(*s,
             {datagram({sts_result(true)}), datagram({sts_result(false, {expired()})}),
              datagram({sts_result(false, {no_starttls()})})},
             kDay + 100);
  record_tls(*s, {datagram({sts_result(true)})}, kDay + 86400);  // a day not yet due

  auto rows = unreported_tls(*s);
  ASSERT_EQ(rows.size(), 1u);
  const TlsPolicyCount c = rows[0];
  EXPECT_EQ(c.policy.total_successful_session_count, 1u);
  EXPECT_EQ(c.policy.total_failure_session_count, 2u);
  ASSERT_EQ(c.failures.size(), 2u);

  AggregateBatch b;
  b.kind = kTls;
  AggregateBatch::Item item;
  item.report = report("t1", "example.com", kTls);
  b.reports.push_back(std::move(item));
  b.reported.push_back({ReportedCount::Table::TlsPolicy, c.id, 1, 2, 0, 0});
  for (const auto& f : c.failures) {
    b.reported.push_back(
        {ReportedCount::Table::TlsFailure, f.id, f.detail.failed_session_count, 0, f.reported, 0});
  }
  auto ids = s->commit_aggregate_batch(b);
  ASSERT_TRUE(ids) << ids.error().describe();
  EXPECT_TRUE(unreported_tls(*s).empty());

  // The same builder again: Conflict, on the policy's failed sessions too.
  b.reports[0].report.report_id = "t2";
  auto twice = s->commit_aggregate_batch(b);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, ErrorCode::Conflict);

  // More of the same day: only the new sessions and details are unreported.
  record_tls(*s, {datagram({sts_result(false, {expired()})})}, kDay + 500);
  rows = unreported_tls(*s);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].id, c.id);
  EXPECT_EQ(rows[0].policy.total_successful_session_count, 0u);
  EXPECT_EQ(rows[0].policy.total_failure_session_count, 1u);
  EXPECT_EQ(rows[0].reported_successful, 1u);
  EXPECT_EQ(rows[0].reported_failed, 2u);
  ASSERT_EQ(rows[0].failures.size(), 1u);
  EXPECT_EQ(rows[0].failures[0].detail.result_type, "certificate-expired");
  EXPECT_EQ(rows[0].failures[0].detail.failed_session_count, 1u);
  EXPECT_EQ(rows[0].failures[0].reported, 1u);

  // Reporting more failed sessions than recorded is Invalid.
  AggregateBatch over;
  over.kind = kTls;
  over.reported.push_back({ReportedCount::Table::TlsPolicy, c.id, 1, 4, 1, 2});
  auto r = s->commit_aggregate_batch(over);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::Invalid);

  // The next day, when due; the full counts stay listed.
  EXPECT_EQ(unreported_tls(*s, kDay + 2 * 86400).size(), 2u);
  EXPECT_EQ(unreported_tls(*s, kDay + 2 * 86400, "nowhere.example").size(), 0u);
  auto all = s->list_tls_counts(0, "");
  ASSERT_TRUE(all);
  EXPECT_EQ((*all)[0].policy.total_failure_session_count, 3u);
  EXPECT_EQ((*all)[0].reported_failed, 2u);
}

TEST(AggregateStoreSqlite, TheTlsWalkLetsTheBuilderCommitOnAMemoryStore) {
  auto s = open_sqlite_store({.path = ":memory:"});
  ASSERT_TRUE(s);
  Store& store = **s;
  record_tls(store, {datagram({sts_result(true)}), datagram({sts_result(true)}, "b.example")},
             kDay);
  int committed = 0;
  ASSERT_TRUE(store.for_each_unreported_tls(kDay + 86400, "", [&](const TlsPolicyCount& c) {
    AggregateBatch b;
    b.kind = kTls;
    b.reported.push_back({ReportedCount::Table::TlsPolicy, c.id,
                          c.reported_successful + c.policy.total_successful_session_count,
                          c.reported_failed + c.policy.total_failure_session_count,
                          c.reported_successful, c.reported_failed});
    committed += store.commit_aggregate_batch(b) ? 1 : 0;
    return true;
  }));
  EXPECT_EQ(committed, 2);
  EXPECT_TRUE(unreported_tls(store).empty());
}

TEST_P(AggregateStore, OnlyTheNewestThousandRejectedDatagramsAreKept) {
  auto s = open_store();
  ASSERT_TRUE(s);
  for (int i = 0; i < 1005; ++i) {
    std::string datagram = "{\"d\": " + std::to_string(i) + "}\xff";
    ASSERT_TRUE(s->record_tls_rejected(datagram, "bad", kDay + i));
  }
  EXPECT_EQ(count_rows("tls_rejected"), 1000);
  EXPECT_EQ(count_rows("tls_rejected", "received_at < " + std::to_string(kDay + 5)), 0);
  EXPECT_EQ(count_rows("tls_rejected",
                       "received_at = " + std::to_string(kDay + 1004) + " AND reason = 'bad'"),
            1);
}

// ---------------------------------------------------------------- bounces and suppressions

std::int64_t sent_entry(Store& s, std::string recipient, std::string message_id) {
  OutboxEntry e;
  e.kind = kDmarc;
  e.recipient = std::move(recipient);
  e.reported_domain = "example.com";
  e.created_at = kHour;
  e.payload = "{}";
  auto id = s.enqueue_outbox(e);
  EXPECT_TRUE(id);
  EXPECT_TRUE(s.outbox_sent(*id, kHour + 10, message_id));
  return *id;
}

TEST_P(AggregateStore, BouncesCountAgainstTheRecipientUntilItIsSuppressed) {
  auto s = open_store();
  ASSERT_TRUE(s);
  auto a = sent_entry(*s, "Dmarc@Example.COM", "r1.abc@ours.example");
  auto b = sent_entry(*s, "dmarc@example.com", "<r2.abc@ours.example>");

  auto found = s->find_outbox_by_message_id("<r1.abc@ours.example>");
  ASSERT_TRUE(found) << found.error().describe();
  EXPECT_EQ(found->id, a);
  found = s->find_outbox_by_message_id("r2.abc@ours.example");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, b);
  EXPECT_EQ(s->find_outbox_by_message_id("R1.abc@ours.example").error().code, ErrorCode::NotFound);

  auto first = s->record_report_bounce("<r1.abc@ours.example>", "5.1.1 no such user", kDay, 2);
  ASSERT_TRUE(first) << first.error().describe();
  EXPECT_EQ(first->outbox_id, a);
  EXPECT_EQ(first->recipient, "dmarc@example.com");
  EXPECT_EQ(first->failures, 1u);
  EXPECT_FALSE(first->suppressed);
  EXPECT_FALSE(*s->is_suppressed("dmarc@example.com"));

  auto second = s->record_report_bounce("r2.abc@ours.example", "5.2.2 mailbox full", kDay + 9, 2);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->outbox_id, b);
  EXPECT_EQ(second->failures, 2u);
  EXPECT_TRUE(second->suppressed);
  EXPECT_TRUE(*s->is_suppressed("DMARC@example.com"));
  EXPECT_FALSE(*s->is_suppressed("other@example.com"));

  auto list = s->list_suppressions();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].address, "dmarc@example.com");
  EXPECT_EQ((*list)[0].created_at, kDay);
  EXPECT_EQ((*list)[0].failures, 2u);
  EXPECT_EQ((*list)[0].last_failure_at, kDay + 9);
  EXPECT_TRUE((*list)[0].suppressed);
  EXPECT_FALSE((*list)[0].manual);
  EXPECT_EQ((*list)[0].reason, "5.2.2 mailbox full");

  auto unknown = s->record_report_bounce("<nobody@ours.example>", "x", kDay, 2);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::NotFound);

  // Threshold 0: counted, never suppressed.
  sent_entry(*s, "rua@other.example", "r3@ours.example");
  for (int i = 0; i < 3; ++i) {
    auto r = s->record_report_bounce("r3@ours.example", "5.1.1", kDay, 0);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->suppressed);
  }
  EXPECT_FALSE(*s->is_suppressed("rua@other.example"));
}

TEST_P(AggregateStore, SuppressionsAreAddedListedAndRemoved) {
  auto s = open_store();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->add_suppression("B@Example.com", "asked us to stop", kDay));
  ASSERT_TRUE(s->add_suppression("https://reports.example/tls", "gone", kDay + 1));
  EXPECT_TRUE(*s->is_suppressed("b@example.com"));
  auto list = s->list_suppressions();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].address, "b@example.com");
  EXPECT_TRUE((*list)[0].manual);
  EXPECT_TRUE((*list)[0].suppressed);
  EXPECT_EQ((*list)[0].failures, 0u);
  EXPECT_EQ((*list)[0].reason, "asked us to stop");
  EXPECT_EQ((*list)[1].address, "https://reports.example/tls");

  ASSERT_TRUE(s->remove_suppression("b@EXAMPLE.com"));
  EXPECT_FALSE(*s->is_suppressed("b@example.com"));
  auto again = s->remove_suppression("b@example.com");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::NotFound);
  list = s->list_suppressions();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 1u);
}

// ---------------------------------------------------------------- migration

TEST(AggregateStoreSqlite, MigrationFiveOnAMigrationFourStoreKeepsTheRowsUnreported) {
  TempDir dir;
  auto path = dir / "s.db";
  {
    auto s = open_store(path);
    ASSERT_TRUE(s);
    record(*s, {sample_evaluation(kHour + 10), sample_evaluation(kHour + 20),
                sample_evaluation(kHour + 30, "192.0.2.2")});
  }
  {
    // Turn the store back to migration 4.
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(raw, test::kUndoMigration5, nullptr, nullptr, &err), SQLITE_OK) << err;
  }
  EXPECT_EQ(count_rows(path, "sqlite_schema", "name = 'aggregate_reports'"), 0);
  auto s = open_store(path);
  ASSERT_TRUE(s);
  EXPECT_EQ(count_rows(path, "schema_version"), sqlite_schema_version());
  EXPECT_EQ(count_rows(path, "sqlite_schema",
                       "name IN ('aggregate_watermarks', 'aggregate_reports', 'tls_counts',"
                       " 'tls_count_failures', 'tls_rejected', 'suppressions',"
                       " 'evaluations_unreported', 'outbox_message_id')"),
            8);
  auto rows = unreported(*s);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].record.row.count, 2u);
  EXPECT_EQ(rows[0].reported, 0u);
  EXPECT_EQ(rows[1].record.row.count, 1u);
  ASSERT_TRUE(s->commit_aggregate_batch(batch_of(rows, "r1")));
  EXPECT_TRUE(unreported(*s).empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, AggregateStore, test::kBothBackends, test::BackendName());

}  // namespace
}  // namespace mailreport::store
