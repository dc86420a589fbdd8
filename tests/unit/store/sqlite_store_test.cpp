// The store, on SQLite and on PostgreSQL (ReportStore/<backend>): streaming writes read back
// equal to the model, de-duplication, savepoints, lists, statistics and retention. SQLite only
// (SqliteStore): its file's migrations (from an empty file, from migration 2's schema), a file
// from a newer build or not a database at all, the in-memory store.
#include <gtest/gtest.h>

#include "mailreport/store/sha256.hpp"
#include "store_fixtures.hpp"
#include "testsupport.hpp"

namespace mailreport::store {
namespace {

using report::ReportSink;
using test::count_rows;
using test::filter;
using test::open_store;
using test::options_for;
using test::raw_filter;
using test::TempDir;

// Stores one raw message with `fill` writing its reports; returns (message id, stored, dups).
struct Written {
  std::int64_t message_id = 0;
  std::size_t stored = 0;
  std::size_t duplicates = 0;
  std::vector<std::string> notes;
};

template <class Fill>
Written write_message(Store& store, Fill&& fill, std::int64_t received_at = 1700090000,
                      std::string raw = "From: reporter@example.org\r\n\r\nbody\r\n") {
  Written w;
  auto tx = store.begin_write();
  EXPECT_TRUE(tx) << tx.error().describe();
  if (!tx) return w;
  MemorySource src(raw);
  auto info = (*tx)->add_raw_message(
      {received_at, "test", "a@b.example", {"dmarc@ours.example"}, "unit"}, src);
  EXPECT_TRUE(info) << info.error().describe();
  if (!info) return w;
  w.message_id = info->id;
  auto writer = (*tx)->report_writer(info->id, received_at);
  fill(*writer);
  EXPECT_TRUE(writer->finish());
  w.stored = writer->stored();
  w.duplicates = writer->duplicates();
  w.notes = writer->notes();
  auto status = w.stored > 0 ? ParseStatus::Parsed
                             : (w.duplicates > 0 ? ParseStatus::Duplicate : ParseStatus::Unparsed);
  EXPECT_TRUE((*tx)->set_parse_outcome(info->id, status, ""));
  writer.reset();
  auto st = (*tx)->commit();
  EXPECT_TRUE(st) << st.error().describe();
  return w;
}

// DKIM and SPF auth_results entries of every stored DMARC record (JSON arrays in TEXT).
std::int64_t auth_result_rows(const std::filesystem::path& path) {
  return count_rows(path, "dmarc_records r, json_each(r.dkim_results)") +
         count_rows(path, "dmarc_records r, json_each(r.spf_results)");
}
std::int64_t auth_result_rows(const test::TestDatabase& db) {
  if (db.backend() == test::Backend::Sqlite) return auth_result_rows(db.sqlite_path());
  return db.count_rows("dmarc_records r, json_array_elements(r.dkim_results::json)") +
         db.count_rows("dmarc_records r, json_array_elements(r.spf_results::json)");
}

TEST(SqliteStore, MigratesAnEmptyFileAndReopens) {
  TempDir dir;
  auto path = dir / "m.db";
  {
    auto s = open_store(path);
    ASSERT_TRUE(s);
  }
  EXPECT_EQ(count_rows(path, "schema_version"), sqlite_schema_version());
  EXPECT_EQ(count_rows(path, "sqlite_schema",
                       "type = 'table' AND name IN ('raw_messages', 'raw_chunks', 'reports',"
                       " 'dmarc_reports', 'dmarc_records', 'tls_reports',"
                       " 'tls_policies', 'tls_failures', 'arf_reports', 'dsn_reports',"
                       " 'dsn_recipients', 'evaluations', 'evaluation_intervals')"),
            13);
  EXPECT_EQ(count_rows(path, "sqlite_schema", "name = 'dmarc_auth_results'"), 0);
  EXPECT_EQ(count_rows(path, "sqlite_schema",
                       "type = 'index' AND name IN ('reports_type_domain_begin',"
                       " 'dmarc_records_report', 'tls_failures_result_type')"),
            3);
  {
    auto s = open_store(path);  // a second open applies nothing twice
    ASSERT_TRUE(s);
  }
  EXPECT_EQ(count_rows(path, "schema_version"), sqlite_schema_version());
  EXPECT_EQ(count_rows(path, "pragma_journal_mode"), 1);
}

TEST(SqliteStore, RefusesAStoreFromANewerBuild) {
  TempDir dir;
  auto path = dir / "new.db";
  { ASSERT_TRUE(open_store(path)); }
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
    ASSERT_EQ(
        sqlite3_exec(raw, "INSERT INTO schema_version VALUES (999, 0)", nullptr, nullptr, nullptr),
        SQLITE_OK);
  }
  auto s = open_sqlite_store(options_for(path));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::Store);
  EXPECT_NE(s.error().message.find("newer"), std::string::npos) << s.error().message;
}

TEST(SqliteStore, RefusesAFileThatIsNotADatabase) {
  TempDir dir;
  auto path = dir / "junk.db";
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::string junk(8192, 'x');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  auto s = open_sqlite_store(options_for(path));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::Store);
}

class ReportStore : public test::StoreTest {};

TEST_P(ReportStore, DmarcReportReadsBackEqualToTheModel) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto model = test::sample_dmarc("r-1", "Example Org", "Example.COM.");
  auto w = write_message(*store, [&](ReportSink& sink) {
    // The parser may see only part of the header before the first record.
    report::DmarcHeader early = model.header;
    early.report_metadata.generator.clear();
    early.report_metadata.error.clear();
    ASSERT_TRUE(sink.dmarc_begin(early));
    for (auto r : model.records) ASSERT_TRUE(sink.dmarc_record(std::move(r)));
    ASSERT_TRUE(sink.dmarc_end(model.header, model.errors));
  });
  EXPECT_EQ(w.stored, 1u);
  EXPECT_EQ(w.duplicates, 0u);

  auto list = store->list_reports({});
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  const auto& s = list->front();
  EXPECT_EQ(s.type, report::ReportType::DmarcAggregate);
  EXPECT_EQ(s.org_name, "Example Org");
  EXPECT_EQ(s.report_id, "r-1");
  EXPECT_EQ(s.policy_domain, "example.com");  // normalised for de-dup and filters
  EXPECT_EQ(s.date_begin, 1700000000);
  EXPECT_EQ(s.date_end, 1700086399);
  EXPECT_EQ(s.received_at, 1700090000);
  EXPECT_EQ(s.message_id, w.message_id);
  EXPECT_EQ(s.messages, 18u);
  EXPECT_EQ(s.pass, 15u);
  EXPECT_EQ(s.fail, 3u);
  EXPECT_EQ(s.error_count, 1u);

  auto got = store->get_report(s.id);
  ASSERT_TRUE(got) << got.error().describe();
  EXPECT_EQ(got->summary.id, s.id);
  ASSERT_TRUE(std::holds_alternative<report::DmarcAggregate>(got->report));
  const auto& back = std::get<report::DmarcAggregate>(got->report);
  EXPECT_EQ(report::to_json(back), report::to_json(model));
  // A few fields checked directly, in case the JSON rendering leaves one out.
  EXPECT_EQ(back.header.policy_published.domain, "Example.COM.");
  EXPECT_EQ(back.header.policy_published.pct, 100);
  EXPECT_EQ(back.header.report_metadata.generator, "gen 1.0");
  ASSERT_EQ(back.records.size(), 3u);
  EXPECT_EQ(back.records[0].auth_results.dkim.size(), 2u);
  EXPECT_EQ(back.records[0].auth_results.dkim[1].human_result, "bad sig");
  EXPECT_EQ(back.records[0].row.policy_evaluated.reason[0].comment, "via list");
  EXPECT_EQ(back.records[1].auth_results.spf[0].scope, "helo");
  EXPECT_EQ(back.errors, model.errors);
}

TEST_P(ReportStore, TlsArfAndDsnReadBackEqualToTheModel) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto tls = test::sample_tls();
  auto arf = test::sample_arf();
  auto dsn = test::sample_dsn();
  auto w = write_message(*store, [&](ReportSink& sink) {
    ASSERT_TRUE(sink.tls(report::TlsReport(tls)));
    ASSERT_TRUE(sink.arf(report::ArfReport(arf)));
    ASSERT_TRUE(sink.dsn(report::DsnReport(dsn)));
  });
  EXPECT_EQ(w.stored, 3u);

  auto tls_list = store->list_reports(filter(report::ReportType::TlsAggregate));
  ASSERT_TRUE(tls_list);
  ASSERT_EQ(tls_list->size(), 1u);
  EXPECT_EQ(tls_list->front().sessions_ok, 5336u);
  EXPECT_EQ(tls_list->front().sessions_failed, 303u);
  EXPECT_EQ(tls_list->front().policy_domain, "example.com");
  auto t = store->get_report(tls_list->front().id);
  ASSERT_TRUE(t);
  EXPECT_EQ(report::to_json(std::get<report::TlsReport>(t->report)), report::to_json(tls));
  EXPECT_EQ(
      std::get<report::TlsReport>(t->report).policies[0].failure_details[1].failure_reason_code,
      "X509_V_ERR");

  auto arf_list = store->list_reports(filter(report::ReportType::Arf));
  ASSERT_TRUE(arf_list);
  ASSERT_EQ(arf_list->size(), 1u);
  const auto& as = arf_list->front();
  EXPECT_EQ(as.org_name, "reporter.example");  // From domain
  EXPECT_EQ(as.report_id, "<arf-1@reporter.example>");
  EXPECT_EQ(as.policy_domain, "example.com");  // Reported-Domain
  EXPECT_EQ(as.date_begin, 1700001234);        // Arrival-Date
  EXPECT_EQ(as.feedback_type, "auth-failure");
  EXPECT_EQ(as.source_ip, "192.0.2.9");
  auto a = store->get_report(as.id);
  ASSERT_TRUE(a);
  const auto& aback = std::get<report::ArfReport>(a->report);
  EXPECT_EQ(report::to_json(aback), report::to_json(arf));
  EXPECT_EQ(aback.human_readable, arf.human_readable);

  auto dsn_list = store->list_reports(filter(report::ReportType::Dsn));
  ASSERT_TRUE(dsn_list);
  ASSERT_EQ(dsn_list->size(), 1u);
  const auto& ds = dsn_list->front();
  EXPECT_EQ(ds.org_name, "mx.remote.example");  // Reporting-MTA
  EXPECT_EQ(ds.policy_domain, "ours.example");  // the returned message's From
  EXPECT_EQ(ds.action, "failed");
  EXPECT_EQ(ds.status, "5.1.1");
  EXPECT_EQ(ds.recipient, "rfc822; dmarc@remote.example");
  auto d = store->get_report(ds.id);
  ASSERT_TRUE(d);
  EXPECT_EQ(report::to_json(std::get<report::DsnReport>(d->report)), report::to_json(dsn));
}

TEST_P(ReportStore, GetReportOfAnUnknownIdIsNotFound) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto r = store->get_report(42);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::NotFound);
}

TEST_P(ReportStore, SameReportTwiceIsStoredOnceAndRawKeptTwice) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto model = test::sample_dmarc();
  auto w1 = write_message(*store, [&](ReportSink& s) { test::write_dmarc(s, model); });
  auto w2 = write_message(*store, [&](ReportSink& s) { test::write_dmarc(s, model); });
  EXPECT_EQ(w1.stored, 1u);
  EXPECT_EQ(w2.stored, 0u);
  EXPECT_EQ(w2.duplicates, 1u);
  EXPECT_EQ(count_rows("reports"), 1);
  EXPECT_EQ(count_rows("dmarc_records"), 3);  // the duplicate's records were ignored
  EXPECT_EQ(count_rows("raw_messages"), 2);
  auto raw = store->get_raw_message(w2.message_id);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->parse_status, ParseStatus::Duplicate);

  // Twice inside one message: the second copy is a duplicate too.
  auto other = test::sample_dmarc("r-2");
  auto w3 = write_message(*store, [&](ReportSink& s) {
    test::write_dmarc(s, other);
    test::write_dmarc(s, other);
  });
  EXPECT_EQ(w3.stored, 1u);
  EXPECT_EQ(w3.duplicates, 1u);
  EXPECT_EQ(count_rows("dmarc_records"), 6);

  // Another domain or another org is another report.
  auto w4 = write_message(*store, [&](ReportSink& s) {
    test::write_dmarc(s, test::sample_dmarc("r-1", "Example Org", "example.net"));
    test::write_dmarc(s, test::sample_dmarc("r-1", "Other Org", "example.com"));
  });
  EXPECT_EQ(w4.stored, 2u);
}

// Writes `a` as the parser does for an input that ends early: no dmarc_end... but a final
// header with complete = false (the parser always ends a report it began).
void write_truncated(ReportSink& sink, report::DmarcAggregate a, std::size_t keep) {
  a.records.resize(keep);
  a.header.complete = false;
  test::write_dmarc(sink, a);
}

TEST_P(ReportStore, ACompleteCopyReplacesAnIncompleteOne) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto model = test::sample_dmarc();  // 3 records
  ASSERT_EQ(model.records.size(), 3u);

  auto cut = write_message(*store, [&](ReportSink& s) { write_truncated(s, model, 2); });
  EXPECT_EQ(cut.stored, 1u);
  EXPECT_EQ(count_rows("dmarc_records"), 2);
  EXPECT_EQ(count_rows("reports", "complete = 0"), 1);

  // A shorter incomplete copy does not replace a longer one.
  auto shorter = write_message(*store, [&](ReportSink& s) { write_truncated(s, model, 1); });
  EXPECT_EQ(shorter.stored, 0u);
  EXPECT_EQ(shorter.duplicates, 1u);
  EXPECT_EQ(count_rows("dmarc_records"), 2);

  // The whole report, re-sent: it replaces the cut copy, records and all.
  auto whole = write_message(*store, [&](ReportSink& s) { test::write_dmarc(s, model); });
  EXPECT_EQ(whole.stored, 1u);
  EXPECT_EQ(whole.duplicates, 0u);
  EXPECT_EQ(count_rows("reports"), 1);
  EXPECT_EQ(count_rows("reports", "complete = 1"), 1);
  EXPECT_EQ(count_rows("dmarc_records"), 3);
  EXPECT_EQ(auth_result_rows(db()), 5);
  auto list = store->list_reports({});
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->front().message_id, whole.message_id);
  EXPECT_EQ(list->front().messages, 18u);
  auto got = store->get_report(list->front().id);
  ASSERT_TRUE(got);
  const auto& errors = std::get<report::DmarcAggregate>(got->report).errors;
  EXPECT_NE(std::find(errors.begin(), errors.end(),
                      "replaces an incomplete copy of this report received earlier"),
            errors.end());

  // Once complete, a further copy is a plain duplicate again.
  auto again = write_message(*store, [&](ReportSink& s) { test::write_dmarc(s, model); });
  EXPECT_EQ(again.stored, 0u);
  EXPECT_EQ(again.duplicates, 1u);
  EXPECT_EQ(count_rows("dmarc_records"), 3);
}

TEST(SqliteStore, MigrationThreeMovesAuthResultsIntoTheirRecords) {
  // Build a store as migration 2 left it: write a report with today's code, then turn the
  // schema back by hand (the auth_results table of migration 1, no complete column), and let
  // reopening run migrations 3, 4 and 5 again (4 and 5 are undone too: the outbox tables, the
  // aggregate report tables).
  TempDir dir;
  auto path = dir / "s.db";
  auto model = test::sample_dmarc("r-1", "Example Org", "example.com");
  {
    auto store = open_store(path);
    ASSERT_TRUE(store);
    write_message(*store, [&](ReportSink& s) { test::write_dmarc(s, model); });
  }
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
    const char* downgrade = R"sql(
CREATE TABLE dmarc_auth_results (
  record_id INTEGER NOT NULL REFERENCES dmarc_records (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL, kind TEXT NOT NULL, domain TEXT NOT NULL, selector TEXT NOT NULL,
  scope TEXT NOT NULL, result TEXT NOT NULL, human_result TEXT NOT NULL,
  PRIMARY KEY (record_id, seq)) STRICT, WITHOUT ROWID;
INSERT INTO dmarc_auth_results
  SELECT r.id, j.key, 'dkim', coalesce(j.value->>'domain', ''), coalesce(j.value->>'selector', ''),
         '', coalesce(j.value->>'result', ''), coalesce(j.value->>'human_result', '')
  FROM dmarc_records r, json_each(r.dkim_results) j;
INSERT INTO dmarc_auth_results
  SELECT r.id, 100 + j.key, 'spf', coalesce(j.value->>'domain', ''), '',
         coalesce(j.value->>'scope', ''), coalesce(j.value->>'result', ''),
         coalesce(j.value->>'human_result', '')
  FROM dmarc_records r, json_each(r.spf_results) j;
ALTER TABLE dmarc_records DROP COLUMN dkim_results;
ALTER TABLE dmarc_records DROP COLUMN spf_results;
ALTER TABLE reports DROP COLUMN complete;
CREATE INDEX dmarc_records_source_ip ON dmarc_records (source_ip);
DELETE FROM schema_version WHERE version = 3;
DROP TABLE outbox;
DROP TABLE outbox_rate;
DELETE FROM schema_version WHERE version = 4;
)sql";
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(raw, test::kUndoMigration5, nullptr, nullptr, &err), SQLITE_OK) << err;
    ASSERT_EQ(sqlite3_exec(raw, downgrade, nullptr, nullptr, &err), SQLITE_OK) << err;
  }
  EXPECT_EQ(count_rows(path, "dmarc_auth_results"), 5);
  auto store = open_store(path);
  ASSERT_TRUE(store);
  EXPECT_EQ(count_rows(path, "sqlite_schema", "name = 'dmarc_auth_results'"), 0);
  EXPECT_EQ(auth_result_rows(path), 5);
  auto list = store->list_reports({});
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  auto got = store->get_report(list->front().id);
  ASSERT_TRUE(got);
  const auto& back = std::get<report::DmarcAggregate>(got->report);
  ASSERT_EQ(back.records.size(), model.records.size());
  for (std::size_t i = 0; i < back.records.size(); ++i) {
    EXPECT_EQ(report::to_json(back.records[i]), report::to_json(model.records[i]))
        << "record " << i;
  }
}

TEST_P(ReportStore, ArfWithoutMessageIdIsDeduplicatedByItsFields) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto arf = test::sample_arf("");
  auto changed = arf;
  changed.fields.push_back({"Incidents", "3"});
  auto w = write_message(*store, [&](ReportSink& s) {
    ASSERT_TRUE(s.arf(report::ArfReport(arf)));
    ASSERT_TRUE(s.arf(report::ArfReport(arf)));
    ASSERT_TRUE(s.arf(report::ArfReport(changed)));
  });
  EXPECT_EQ(w.stored, 2u);
  EXPECT_EQ(w.duplicates, 1u);
  auto list = store->list_reports(filter(report::ReportType::Arf));
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ(list->front().report_id.rfind("sha256:", 0), 0u);
}

TEST_P(ReportStore, AnAbandonedDmarcReportIsRolledBackAlone) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto model = test::sample_dmarc("broken");
  auto w = write_message(*store, [&](ReportSink& s) {
    ASSERT_TRUE(s.dmarc_begin(model.header));
    ASSERT_TRUE(s.dmarc_record(report::DmarcRecord(model.records[0])));
    // No dmarc_end: the parser gave up. The next report must still be stored.
    ASSERT_TRUE(s.tls(test::sample_tls()));
    test::write_dmarc(s, test::sample_dmarc("good"));
    ASSERT_TRUE(s.dmarc_begin(test::sample_dmarc("broken-at-end").header));  // left open
  });
  EXPECT_EQ(w.stored, 2u);
  ASSERT_EQ(w.notes.size(), 2u);
  EXPECT_NE(w.notes[0].find("broken"), std::string::npos);
  EXPECT_EQ(count_rows("reports"), 2);
  EXPECT_EQ(count_rows("reports", "report_id LIKE 'broken%'"), 0);
  EXPECT_EQ(count_rows("dmarc_records"), 3);  // only "good"'s
}

TEST_P(ReportStore, AFinalHeaderThatNamesAStoredReportMakesADuplicate) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto model = test::sample_dmarc("r-1");
  write_message(*store, [&](ReportSink& s) { test::write_dmarc(s, model); });
  auto w = write_message(*store, [&](ReportSink& s) {
    auto early = model.header;
    early.report_metadata.report_id = "";  // report_id came after the first record
    ASSERT_TRUE(s.dmarc_begin(early));
    for (auto r : model.records) ASSERT_TRUE(s.dmarc_record(std::move(r)));
    ASSERT_TRUE(s.dmarc_end(model.header, model.errors));
  });
  EXPECT_EQ(w.stored, 0u);
  EXPECT_EQ(w.duplicates, 1u);
  EXPECT_EQ(count_rows("reports"), 1);
  EXPECT_EQ(count_rows("dmarc_records"), 3);
}

TEST_P(ReportStore, AWriterDroppedMidReportLeavesNothingOfIt) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto tx = store->begin_write();
  ASSERT_TRUE(tx);
  MemorySource src("x");
  auto info = (*tx)->add_raw_message({1, "test", "", {}, ""}, src);
  ASSERT_TRUE(info);
  {
    auto writer = (*tx)->report_writer(info->id, 1);
    auto model = test::sample_dmarc();
    ASSERT_TRUE(writer->dmarc_begin(model.header));
    ASSERT_TRUE(writer->dmarc_record(report::DmarcRecord(model.records[0])));
  }
  ASSERT_TRUE((*tx)->set_parse_outcome(info->id, ParseStatus::Unparsed, "gave up"));
  ASSERT_TRUE((*tx)->commit());
  EXPECT_EQ(count_rows("raw_messages"), 1);
  EXPECT_EQ(count_rows("reports"), 0);
  EXPECT_EQ(count_rows("dmarc_records"), 0);
}

TEST_P(ReportStore, AnUncommittedTransactionLeavesNothing) {
  auto store = open_store();
  ASSERT_TRUE(store);
  {
    auto tx = store->begin_write();
    ASSERT_TRUE(tx);
    MemorySource src("raw");
    auto info = (*tx)->add_raw_message({1, "test", "", {}, ""}, src);
    ASSERT_TRUE(info);
    auto writer = (*tx)->report_writer(info->id, 1);
    test::write_dmarc(*writer, test::sample_dmarc());
    ASSERT_TRUE(writer->finish());
  }
  EXPECT_EQ(count_rows("raw_messages"), 0);
  EXPECT_EQ(count_rows("raw_chunks"), 0);
  EXPECT_EQ(count_rows("reports"), 0);
  // The store is usable afterwards.
  auto w = write_message(*store, [](ReportSink& s) { test::write_dmarc(s, test::sample_dmarc()); });
  EXPECT_EQ(w.stored, 1u);
}

TEST_P(ReportStore, DeleteReportsOfAMessageRemovesTheirRows) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto w1 = write_message(*store, [](ReportSink& s) {
    test::write_dmarc(s, test::sample_dmarc("a"));
    ASSERT_TRUE(s.tls(test::sample_tls()));
  });
  auto w2 =
      write_message(*store, [](ReportSink& s) { test::write_dmarc(s, test::sample_dmarc("b")); });
  auto tx = store->begin_write();
  ASSERT_TRUE(tx);
  auto n = (*tx)->delete_reports_of(w1.message_id);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u);
  ASSERT_TRUE((*tx)->commit());
  EXPECT_EQ(count_rows("reports"), 1);
  EXPECT_EQ(count_rows("dmarc_records"), 3);
  EXPECT_EQ(auth_result_rows(db()), 5);
  EXPECT_EQ(count_rows("tls_policies"), 0);
  EXPECT_EQ(count_rows("tls_failures"), 0);
  auto left = store->list_reports({});
  ASSERT_TRUE(left);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().message_id, w2.message_id);
}

TEST_P(ReportStore, ListFiltersByTypeDomainSinceAndLimit) {
  auto store = open_store();
  ASSERT_TRUE(store);
  write_message(*store, [](ReportSink& s) {
    test::write_dmarc(s, test::sample_dmarc("d1", "Org A", "example.com", 1700000000));
    test::write_dmarc(s, test::sample_dmarc("d2", "Org A", "example.com", 1700086400));
    test::write_dmarc(s, test::sample_dmarc("d3", "Org B", "example.net", 1700172800));
    ASSERT_TRUE(s.tls(test::sample_tls()));
  });
  auto all = store->list_reports({});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 4u);
  auto dmarc = store->list_reports(filter(report::ReportType::DmarcAggregate));
  ASSERT_TRUE(dmarc);
  ASSERT_EQ(dmarc->size(), 3u);
  EXPECT_EQ((*dmarc)[0].report_id, "d3");  // newest period first
  EXPECT_EQ((*dmarc)[2].report_id, "d1");
  auto com = store->list_reports(filter(report::ReportType::DmarcAggregate, "EXAMPLE.com"));
  ASSERT_TRUE(com);
  EXPECT_EQ(com->size(), 2u);
  auto since = store->list_reports(filter(report::ReportType::DmarcAggregate, "", 1700086400));
  ASSERT_TRUE(since);
  EXPECT_EQ(since->size(), 2u);
  auto limited = store->list_reports(filter(std::nullopt, "", std::nullopt, 1));
  ASSERT_TRUE(limited);
  ASSERT_EQ(limited->size(), 1u);
  EXPECT_EQ(limited->front().report_id, "d3");
}

TEST_P(ReportStore, SummaryCountsTypesOrgsAndDmarcPassFail) {
  auto store = open_store();
  ASSERT_TRUE(store);
  write_message(*store, [](ReportSink& s) {
    test::write_dmarc(s, test::sample_dmarc("d1", "Org A"));
    test::write_dmarc(s, test::sample_dmarc("d2", "Org A"));
    test::write_dmarc(s, test::sample_dmarc("d3", "Org B"));
    ASSERT_TRUE(s.tls(test::sample_tls()));
    ASSERT_TRUE(s.arf(test::sample_arf()));
  });
  write_message(*store, [](ReportSink&) {});  // nothing parsed
  auto sum = store->summary(2);
  ASSERT_TRUE(sum) << sum.error().describe();
  ASSERT_EQ(sum->reports_by_type.size(), 4u);
  EXPECT_EQ(sum->reports_by_type[0].first, report::ReportType::DmarcAggregate);
  EXPECT_EQ(sum->reports_by_type[0].second, 3u);
  EXPECT_EQ(sum->reports_by_type[1].second, 1u);
  EXPECT_EQ(sum->reports_by_type[2].second, 1u);
  EXPECT_EQ(sum->reports_by_type[3].second, 0u);
  ASSERT_EQ(sum->top_orgs.size(), 2u);
  EXPECT_EQ(sum->top_orgs[0], (std::pair<std::string, std::uint64_t>{"Org A", 2}));
  EXPECT_EQ(sum->top_orgs[1].second, 1u);
  EXPECT_EQ(sum->dmarc_messages, 54u);
  EXPECT_EQ(sum->dmarc_pass, 45u);
  EXPECT_EQ(sum->dmarc_fail, 9u);
  EXPECT_EQ(sum->tls_sessions_ok, 5336u);
  EXPECT_EQ(sum->tls_sessions_failed, 303u);
  EXPECT_EQ(sum->raw_messages, 2u);
  EXPECT_EQ(sum->unparsed_messages, 1u);
}

TEST_P(ReportStore, PurgeRemovesWhatWasReceivedBeforeTheCutoff) {
  auto store = open_store();
  ASSERT_TRUE(store);
  write_message(
      *store, [](ReportSink& s) { test::write_dmarc(s, test::sample_dmarc("old")); }, 1000);
  write_message(
      *store, [](ReportSink&) {}, 1500);
  auto keep = write_message(
      *store, [](ReportSink& s) { test::write_dmarc(s, test::sample_dmarc("new")); }, 5000);
  auto r = store->purge(2000);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->reports, 1u);
  EXPECT_EQ(r->raw_messages, 2u);
  EXPECT_EQ(count_rows("raw_messages"), 1);
  EXPECT_EQ(count_rows("raw_chunks", "message_id <> " + std::to_string(keep.message_id)), 0);
  EXPECT_EQ(count_rows("reports"), 1);
  EXPECT_EQ(count_rows("dmarc_records"), 3);
  EXPECT_EQ(auth_result_rows(db()), 5);
  auto list = store->list_reports({});
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->front().report_id, "new");
  auto again = store->purge(2000);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->reports + again->raw_messages, 0u);
}

TEST_P(ReportStore, RawMessagesAreListedByStatus) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto a = write_message(*store, [](ReportSink& s) { test::write_dmarc(s, test::sample_dmarc()); });
  auto b = write_message(*store, [](ReportSink&) {});
  auto c = write_message(*store, [](ReportSink&) {});
  auto unparsed = store->list_raw_messages(raw_filter(ParseStatus::Unparsed));
  ASSERT_TRUE(unparsed);
  ASSERT_EQ(unparsed->size(), 2u);
  EXPECT_EQ((*unparsed)[0].id, b.message_id);
  EXPECT_EQ((*unparsed)[1].id, c.message_id);
  EXPECT_EQ((*unparsed)[0].meta.rcpt_to, std::vector<std::string>{"dmarc@ours.example"});
  auto page = store->list_raw_messages(raw_filter(std::nullopt, a.message_id, 1));
  ASSERT_TRUE(page);
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ(page->front().id, b.message_id);
}

INSTANTIATE_TEST_SUITE_P(Backends, ReportStore, test::kBothBackends, test::BackendName());

}  // namespace
}  // namespace mailreport::store

namespace mailreport::store {
namespace {

TEST(SqliteStore, AnInMemoryStoreWorksOnOneConnection) {
  auto s = open_sqlite_store(test::options_for(":memory:"));
  ASSERT_TRUE(s) << s.error().describe();
  auto w = write_message(
      **s, [](test::ReportSink& sink) { test::write_dmarc(sink, test::sample_dmarc()); });
  EXPECT_EQ(w.stored, 1u);
  auto list = (*s)->list_reports({});
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  auto sum = (*s)->summary(5);
  ASSERT_TRUE(sum);
  EXPECT_EQ(sum->dmarc_messages, 18u);
}

}  // namespace
}  // namespace mailreport::store
