// migrate_sqlite_to_postgres (`mailreport migrate`): a SQLite store filled through the Store
// API (reports of every type with their raw messages, evaluations, outbox entries, an aggregate
// report, TLS counts and a rejected datagram, suppressions) copied into a fresh PostgreSQL
// database: every table's row count equal, values equal as the PostgreSQL store reads them
// back (reports, raw bytes, outbox payloads, aggregate report content), new rows inserted
// without id clashes, and a second migrate into the same database refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "mailreport/report/json.hpp"
#include "mailreport/store/migrate.hpp"
#include "mailreport/store/pg_store.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "pg_server.hpp"
#include "sample_evaluation.hpp"
#include "store_fixtures.hpp"
#include "testsupport.hpp"

namespace mailreport::store {
namespace {

using test::count_rows;
using test::TempDir;

constexpr std::int64_t kHour = 1699999200;  // 2023-11-14 22:00:00 UTC
constexpr std::int64_t kDay = 1699920000;   // 2023-11-14 00:00:00 UTC

// Bytes that COPY's text format must escape, and bytes that are not UTF-8 (raw messages and
// aggregate report content are BLOBs).
const std::string kAwkward = std::string("tab\there\\back\\slash\nnew line\r\nCR ") + "\xc3\xa9";

std::int64_t write_message(Store& s, const std::string& raw, std::int64_t at,
                           const std::function<void(report::ReportSink&)>& fill) {
  auto tx = s.begin_write();
  EXPECT_TRUE(tx) << tx.error().describe();
  if (!tx) return 0;
  MemorySource src(raw);
  auto info =
      (*tx)->add_raw_message({at, "test", "a@b.example", {"dmarc@ours.example"}, "unit"}, src);
  EXPECT_TRUE(info) << info.error().describe();
  if (!info) return 0;
  auto writer = (*tx)->report_writer(info->id, at);
  fill(*writer);
  EXPECT_TRUE(writer->finish());
  EXPECT_TRUE((*tx)->set_parse_outcome(
      info->id, writer->stored() > 0 ? ParseStatus::Parsed : ParseStatus::Unparsed, ""));
  writer.reset();
  EXPECT_TRUE((*tx)->commit());
  return info->id;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

report::TlsrptDatagram tls_datagram() {
  report::TlsrptPolicyResult p;
  p.policy_type = "sts";
  p.policy_domain = "example.com";
  p.policy_string = {"version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 86400"};
  p.mx_host = {"mx.example.com"};
  p.failures = {
      {"certificate-expired", "192.0.2.10", "mx.example.com", "", "203.0.113.5", "", "301"}};
  p.success = false;
  report::TlsrptDatagram d;
  d.domain = "example.com";
  d.record = "v=TLSRPTv1; rua=mailto:tlsrpt@example.com";
  d.policies = {p};
  return d;
}

OutboxEntry delivery(std::string recipient, std::string payload) {
  OutboxEntry e;
  e.kind = "dmarc-failure";
  e.recipient = std::move(recipient);
  e.reported_domain = "example.com";
  e.created_at = kHour;
  e.next_attempt_at = kHour;
  e.payload = std::move(payload);
  return e;
}

// Everything a store holds, through the Store API; returns the raw messages' bytes by id.
std::map<std::int64_t, std::string> fill(Store& s) {
  std::map<std::int64_t, std::string> raws;
  const std::string raw1 = "From: reporter@example.org\r\nSubject: " + kAwkward + "\r\n\r\n" +
                           random_bytes(20000, 1);  // several chunks (chunk_size 4096)
  raws[write_message(s, raw1, kHour, [](report::ReportSink& sink) {
    test::write_dmarc(sink, test::sample_dmarc("r-1"));
  })] = raw1;
  const std::string raw2 = "From: tls@example.net\r\n\r\n" + kAwkward;
  raws[write_message(s, raw2, kHour + 60, [](report::ReportSink& sink) {
    EXPECT_TRUE(sink.tls(test::sample_tls()));
    EXPECT_TRUE(sink.arf(test::sample_arf()));
  })] = raw2;
  const std::string raw3 = "From: MAILER-DAEMON@example.net\r\n\r\nbounce\r\n";
  raws[write_message(s, raw3, kHour + 120, [](report::ReportSink& sink) {
    EXPECT_TRUE(sink.dsn(test::sample_dsn()));
  })] = raw3;
  const std::string raw4 = "not a report\r\n";  // kept raw, unparsed
  raws[write_message(s, raw4, kHour + 180, [](report::ReportSink&) {})] = raw4;

  std::vector<auth::Evaluation> evals = {test::sample_evaluation(kHour + 10),
                                         test::sample_evaluation(kHour + 20),
                                         test::sample_evaluation(kHour + 30, "192.0.2.2"),
                                         test::sample_evaluation(kHour + 40, "2001:db8::1")};
  EXPECT_TRUE(s.record_evaluations(evals));

  EXPECT_TRUE(s.enqueue_outbox(delivery("ruf@example.com", "{\"x\": \"" + kAwkward + "\"}")));
  auto sent = s.enqueue_outbox(delivery("ruf2@example.com", "payload 2"));
  EXPECT_TRUE(sent);
  if (sent) {
    EXPECT_TRUE(s.outbox_sent(*sent, kHour + 100, "<sent-1@ours.example>"));
  }

  // An aggregate report over the rows of the first address, with its delivery.
  std::vector<EvaluationRow> rows;
  EXPECT_TRUE(s.for_each_unreported_evaluation(kHour + 3600, "", [&rows](const EvaluationRow& r) {
    rows.push_back(r);
    return true;
  }));
  AggregateBatch b;
  b.kind = std::string(kDmarcAggregateKind);
  b.watermark = kHour + 3600;
  AggregateBatch::Item item;
  item.report.kind = b.kind;
  item.report.report_id = "agg-1";
  item.report.policy_domain = "example.com";
  item.report.date_begin = kHour;
  item.report.date_end = kHour + 3600;
  item.report.created_at = kHour + 3900;
  item.report.filename = "ours.example!example.com!1699999200!1700002800!agg-1.xml.gz";
  item.report.records = 1;
  item.report.messages = 2;
  // Bytes COPY's text format must escape (tab, backslash, newline) and NULs: 18 of them.
  static constexpr char kContent[] = "\x1f\x8b\x08\0gzip\t\\bytes\n\0\xff";
  item.report.content = std::string(kContent, sizeof kContent - 1);
  item.deliveries.push_back(delivery("dmarc@example.com", ""));
  b.reports.push_back(std::move(item));
  for (const auto& r : rows) {
    if (r.record.row.source_ip != "192.0.2.1") continue;
    ReportedCount c;
    c.table = ReportedCount::Table::Evaluation;
    c.id = r.id;
    c.count = r.reported + r.record.row.count;
    c.was = r.reported;
    b.reported.push_back(c);
  }
  auto committed = s.commit_aggregate_batch(b);
  EXPECT_TRUE(committed) << committed.error().describe();

  std::vector<report::TlsrptDatagram> tls = {tls_datagram()};
  EXPECT_TRUE(s.record_tls_results(tls, kDay + 100));
  EXPECT_TRUE(
      s.record_tls_rejected(std::string("\x01\x02 bad\tdatagram\\\n", 17), "not JSON", kDay + 200));
  EXPECT_TRUE(s.add_suppression("bounced@example.net", "5.1.1 " + kAwkward, kHour + 300));
  auto bounce =
      s.record_report_bounce("<sent-1@ours.example>", "5.2.2 mailbox full", kHour + 400, 5);
  EXPECT_TRUE(bounce) << bounce.error().describe();
  return raws;
}

std::string read_raw(Store& s, std::int64_t id) {
  std::string out;
  auto st = s.read_raw(id, [&out](std::span<const char> part) {
    out.append(part.data(), part.size());
    return Status{};
  });
  EXPECT_TRUE(st) << st.error().describe();
  return out;
}

std::vector<OutboxEntry> all_outbox(Store& s) {
  OutboxFilter f;
  f.with_payload = true;
  auto r = s.list_outbox(f);
  EXPECT_TRUE(r) << r.error().describe();
  return r ? std::move(*r) : std::vector<OutboxEntry>{};
}

class Migrate : public ::testing::Test {
 protected:
  void SetUp() override {
    MAILREPORT_REQUIRE_PG(url_);
    SqliteOptions o;
    o.path = dir_ / "source.db";
    o.chunk_size = 4096;
    auto s = open_sqlite_store(o);
    ASSERT_TRUE(s) << s.error().describe();
    source_ = std::move(*s);
    raws_ = fill(*source_);
    ASSERT_FALSE(HasFailure());
  }

  Result<MigrateResult> migrate() {
    MigrateOptions o;
    o.sqlite_path = dir_ / "source.db";
    o.postgres_url = url_;
    o.progress = [this](std::string_view table, std::uint64_t rows) {
      progress_.emplace_back(table, rows);
    };
    return migrate_sqlite_to_postgres(o);
  }

  std::unique_ptr<Store> open_target() {
    PgOptions o;
    o.url = url_;
    auto s = open_postgres_store(o);
    EXPECT_TRUE(s) << s.error().describe();
    return s ? std::move(*s) : nullptr;
  }

  TempDir dir_;
  std::string url_;
  std::unique_ptr<Store> source_;
  std::map<std::int64_t, std::string> raws_;
  std::vector<std::pair<std::string, std::uint64_t>> progress_;
};

TEST_F(Migrate, CopiesEveryTableAndThePostgresStoreReadsItBack) {
  auto r = migrate();
  ASSERT_TRUE(r) << r.error().describe();
  // Every table of the copy order but schema_version, with the SQLite row counts.
  EXPECT_EQ(r->tables.size(), 24u);  // the PostgreSQL schema's tables but schema_version
  EXPECT_EQ(progress_, r->tables);
  std::uint64_t total = 0;
  for (const auto& [table, rows] : r->tables) {
    const auto in_sqlite = count_rows(dir_ / "source.db", table);
    EXPECT_EQ(static_cast<std::int64_t>(rows), in_sqlite) << table;
    EXPECT_EQ(test::pg_count_rows(url_, table), in_sqlite) << table;
    total += rows;
  }
  EXPECT_EQ(r->rows, total);
  for (const char* table :
       {"raw_messages", "raw_chunks", "reports", "dmarc_reports", "dmarc_records", "tls_reports",
        "arf_reports", "dsn_reports", "evaluations", "evaluation_intervals", "outbox",
        "aggregate_reports", "aggregate_watermarks", "tls_counts", "tls_count_failures",
        "tls_rejected", "suppressions"}) {
    EXPECT_GT(test::pg_count_rows(url_, table), 0) << table << " was not exercised";
  }

  auto pg = open_target();
  ASSERT_TRUE(pg);
  // Reports: the same content under the same ids, and the same list.
  auto before = source_->list_reports(test::filter(std::nullopt));
  ASSERT_TRUE(before) << before.error().describe();
  ASSERT_EQ(before->size(), 4u);  // DMARC, TLS, ARF, DSN
  for (const auto& a : *before) {
    auto ra = source_->get_report(a.id);
    auto rb = pg->get_report(a.id);
    ASSERT_TRUE(ra) << ra.error().describe();
    ASSERT_TRUE(rb) << rb.error().describe();
    EXPECT_EQ(report::to_json(ra->report), report::to_json(rb->report)) << a.id;
    EXPECT_EQ(ra->summary.message_id, rb->summary.message_id);
    EXPECT_EQ(ra->summary.received_at, rb->summary.received_at);
  }
  auto after = pg->list_reports(test::filter(std::nullopt));
  EXPECT_TRUE(after) << after.error().describe();
  if (after) {
    ASSERT_EQ(after->size(), before->size());
    for (std::size_t i = 0; i < before->size(); ++i) {
      const auto& a = (*before)[i];
      const auto& b = (*after)[i];
      EXPECT_EQ(a.id, b.id);
      EXPECT_EQ(a.message_id, b.message_id);
      EXPECT_EQ(a.type, b.type);
      EXPECT_EQ(a.org_name, b.org_name);
      EXPECT_EQ(a.report_id, b.report_id);
      EXPECT_EQ(a.messages, b.messages);
    }
  }
  // Raw messages: byte for byte, with their metadata.
  for (const auto& [id, bytes] : raws_) {
    EXPECT_EQ(read_raw(*pg, id), bytes) << id;
    auto a = source_->get_raw_message(id);
    auto b = pg->get_raw_message(id);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->sha256, b->sha256);
    EXPECT_EQ(a->size, b->size);
    EXPECT_EQ(a->parse_status, b->parse_status);
    EXPECT_EQ(a->meta.received_at, b->meta.received_at);
  }
  // The outbox, payloads with tabs, backslashes and new lines included.
  auto oa = all_outbox(*source_);
  auto ob = all_outbox(*pg);
  ASSERT_EQ(oa.size(), ob.size());
  ASSERT_EQ(oa.size(), 3u);
  for (std::size_t i = 0; i < oa.size(); ++i) {
    EXPECT_EQ(oa[i].id, ob[i].id);
    EXPECT_EQ(oa[i].payload, ob[i].payload);
    EXPECT_EQ(oa[i].state, ob[i].state);
    EXPECT_EQ(oa[i].message_id, ob[i].message_id);
    EXPECT_EQ(oa[i].recipient, ob[i].recipient);
  }
  // Aggregate reports: the gzip content (bytea) equal.
  auto aa = source_->list_aggregate_reports({});
  auto ab = pg->list_aggregate_reports({});
  ASSERT_TRUE(aa && ab);
  ASSERT_EQ(ab->size(), 1u);
  auto ca = source_->get_aggregate_report(aa->front().id);
  auto cb = pg->get_aggregate_report(ab->front().id);
  ASSERT_TRUE(ca && cb);
  EXPECT_EQ(ca->id, cb->id);
  EXPECT_EQ(ca->content, cb->content);
  EXPECT_EQ(ca->filename, cb->filename);
  // Evaluations, TLS counts, suppressions.
  auto ea = source_->list_evaluations({});
  auto eb = pg->list_evaluations({});
  ASSERT_TRUE(ea && eb);
  ASSERT_EQ(ea->size(), eb->size());
  for (std::size_t i = 0; i < ea->size(); ++i) {
    EXPECT_EQ((*ea)[i].id, (*eb)[i].id);
    EXPECT_EQ((*ea)[i].record.row.count, (*eb)[i].record.row.count);
    EXPECT_EQ((*ea)[i].record.row.source_ip, (*eb)[i].record.row.source_ip);
    EXPECT_EQ((*ea)[i].rua, (*eb)[i].rua);
  }
  auto ta = source_->list_tls_counts(kDay, "");
  auto tb = pg->list_tls_counts(kDay, "");
  ASSERT_TRUE(ta && tb);
  ASSERT_EQ(tb->size(), 1u);
  EXPECT_EQ(ta->front().policy.total_failure_session_count,
            tb->front().policy.total_failure_session_count);
  EXPECT_EQ(ta->front().failures.size(), tb->front().failures.size());
  auto sa = source_->list_suppressions();
  auto sb = pg->list_suppressions();
  ASSERT_TRUE(sa && sb);
  ASSERT_EQ(sa->size(), sb->size());
  for (std::size_t i = 0; i < sa->size(); ++i) {
    EXPECT_EQ((*sa)[i].address, (*sb)[i].address);
    EXPECT_EQ((*sa)[i].reason, (*sb)[i].reason);
    EXPECT_EQ((*sa)[i].failures, (*sb)[i].failures);
    EXPECT_EQ((*sa)[i].suppressed, (*sb)[i].suppressed);
  }
}

TEST_F(Migrate, TheTargetTakesNewRowsAfterTheCopiedIds) {
  ASSERT_TRUE(migrate());
  auto pg = open_target();
  ASSERT_TRUE(pg);
  const std::int64_t last_raw = raws_.rbegin()->first;
  auto reports = source_->list_reports(test::filter(std::nullopt));
  ASSERT_TRUE(reports) << reports.error().describe();
  std::int64_t last_report = 0;
  for (const auto& r : *reports) last_report = std::max(last_report, r.id);

  const std::int64_t id = write_message(
      *pg, "From: x@example.org\r\n\r\nnew\r\n", kHour + 500,
      [](report::ReportSink& sink) { test::write_dmarc(sink, test::sample_dmarc("r-new")); });
  EXPECT_GT(id, last_raw);
  // The new report's id follows the copied ones (the old ids still read the old reports).
  auto fresh = pg->get_report(last_report + 1);
  ASSERT_TRUE(fresh) << fresh.error().describe();
  EXPECT_EQ(fresh->summary.message_id, id);
  EXPECT_EQ(fresh->summary.report_id, "r-new");
  auto outbox_before = all_outbox(*source_);
  auto entry = pg->enqueue_outbox(delivery("new@example.com", "p"));
  ASSERT_TRUE(entry) << entry.error().describe();
  for (const auto& e : outbox_before) EXPECT_GT(*entry, e.id);
  std::vector<auth::Evaluation> evals = {test::sample_evaluation(kHour + 7200, "192.0.2.9")};
  EXPECT_TRUE(pg->record_evaluations(evals));
  std::vector<report::TlsrptDatagram> tls = {tls_datagram()};
  EXPECT_TRUE(pg->record_tls_results(tls, kDay + 86400 + 5));
  EXPECT_TRUE(pg->record_tls_rejected("junk", "not JSON", kDay + 300));
  EXPECT_TRUE(pg->add_suppression("new@example.net", "admin", kHour + 600));
}

TEST_F(Migrate, ASecondMigrateIntoTheSameDatabaseIsRefused) {
  ASSERT_TRUE(migrate());
  const auto reports = test::pg_count_rows(url_, "reports");
  auto again = migrate();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::Invalid);
  EXPECT_NE(again.error().message.find("already holds data"), std::string::npos)
      << again.error().message;
  EXPECT_EQ(test::pg_count_rows(url_, "reports"), reports);
}

TEST_F(Migrate, AMissingSourceIsNotCreated) {
  MigrateOptions o;
  o.sqlite_path = dir_ / "nothing.db";
  o.postgres_url = url_;
  auto r = migrate_sqlite_to_postgres(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::NotFound);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "nothing.db"));
}

TEST_F(Migrate, AnUnreachableTargetIsNamedWithoutItsPassword) {
  MigrateOptions o;
  o.sqlite_path = dir_ / "source.db";
  o.postgres_url = "postgresql://u:s3cret@127.0.0.1:1/none?connect_timeout=2";
  auto r = migrate_sqlite_to_postgres(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find("s3cret"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("u:***@127.0.0.1:1"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace mailreport::store
