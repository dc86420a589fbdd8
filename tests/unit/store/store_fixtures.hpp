// Synthetic report models and helpers shared by the store and ingest tests. The models are
// written by hand (not parsed), so that the store tests do not depend on the parsers.
//
// The store suite runs against both backends (issue 8): a test suite derives from StoreTest,
// a value-parameterised fixture over Backend, and is instantiated with
// INSTANTIATE_TEST_SUITE_P(Backends, Suite, kBothBackends, BackendName()); each test gets a
// fresh database of its backend (a file in a temporary directory, or a new database on the
// tests' PostgreSQL server, tests/support/pg_server.hpp), opens stores on it and counts its
// rows from outside. The PostgreSQL tests skip when no server can be had (fail under CI=true).
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "mailreport/report/json.hpp"
#include "mailreport/report/model.hpp"
#include "mailreport/store/pg_store.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "mailreport/store/store.hpp"
#include "pg_server.hpp"
#include "testsupport.hpp"

namespace mailreport::test {

inline report::DmarcAggregate sample_dmarc(std::string report_id = "r-1",
                                           std::string org = "Example Org",
                                           std::string domain = "example.com",
                                           std::int64_t begin = 1700000000) {
  report::DmarcAggregate a;
  a.header.version = "1.0";
  a.header.xml_namespace = "urn:ietf:params:xml:ns:dmarc-2.0";
  auto& md = a.header.report_metadata;
  md.org_name = std::move(org);
  md.email = "noreply@org.example";
  md.extra_contact_info = "https://org.example/dmarc";
  md.report_id = std::move(report_id);
  md.date_range = {begin, begin + 86399};
  md.error = {"reporter-side error"};
  md.generator = "gen 1.0";
  auto& pp = a.header.policy_published;
  pp.domain = std::move(domain);
  pp.discovery_method = "psl";
  pp.adkim = "r";
  pp.aspf = "s";
  pp.p = "reject";
  pp.sp = "quarantine";
  pp.np = "none";
  pp.pct = 100;
  pp.fo = "1";
  pp.testing = "n";

  report::DmarcRecord r1;
  r1.row = {"192.0.2.1", 10, {"none", "pass", "fail", {{"forwarded", "via list"}}}};
  r1.identifiers = {"example.com", "bounce.example.com", "example.com"};
  r1.auth_results.dkim = {{"example.com", "s1", "pass", ""},
                          {"other.example", "s2", "fail", "bad sig"}};
  r1.auth_results.spf = {{"bounce.example.com", "mfrom", "fail", ""}};
  report::DmarcRecord r2;
  r2.row = {"2001:db8::1", 3, {"reject", "fail", "fail", {}}};
  r2.identifiers = {"", "", "example.com"};
  r2.auth_results.spf = {{"example.com", "helo", "softfail", "soft"}};
  report::DmarcRecord r3;
  r3.row = {"198.51.100.7", 5, {"none", "fail", "pass", {}}};
  r3.identifiers = {"", "example.com", "example.com"};
  r3.auth_results.spf = {{"example.com", "mfrom", "pass", ""}};
  a.records = {r1, r2, r3};
  a.errors = {"line 3: salvaged something"};
  return a;  // 18 messages: 15 pass (aligned DKIM or SPF pass), 3 fail
}

inline report::TlsReport sample_tls(std::string report_id = "tls-1") {
  report::TlsReport t;
  t.organization_name = "Company-X";
  t.date_range = {1700000000, 1700086399};
  t.contact_info = "sts-reporting@company-x.example";
  t.report_id = std::move(report_id);
  report::TlsPolicy p;
  p.policy_type = "sts";
  p.policy_string = {"version: STSv1", "mode: enforce", "mx: mx.example.com"};
  p.policy_domain = "example.com";
  p.mx_host = {"mx.example.com"};
  p.total_successful_session_count = 5326;
  p.total_failure_session_count = 303;
  p.failure_details = {
      {"certificate-expired", "2001:db8:abcd:0012::1", "mx2.example.com", "", "203.0.113.56", 100,
       "", ""},
      {"starttls-not-supported", "2001:db8:abcd:0013::1", "mx.example.com", "mx.example.com",
       "203.0.113.57", 203, "https://reports.example/why", "X509_V_ERR"}};
  report::TlsPolicy p2;
  p2.policy_type = "no-policy-found";
  p2.policy_domain = "example.com";
  p2.total_successful_session_count = 10;
  t.policies = {p, p2};
  t.errors = {"date without zone"};
  return t;
}

inline report::ArfReport sample_arf(std::string message_id = "<arf-1@reporter.example>") {
  report::ArfReport a;
  a.feedback_type = "auth-failure";
  a.user_agent = "SomeGenerator/1.0";
  a.version = "1";
  a.original_mail_from = "<sender@example.com>";
  a.original_rcpt_to = {"<user@reporter.example>"};
  a.arrival_date = 1700001234;
  a.arrival_date_raw = "Tue, 14 Nov 2023 22:33:54 +0000";
  a.source_ip = "192.0.2.9";
  a.reporting_mta = "dns; mx.reporter.example";
  a.reported_domain = {"Example.com"};
  a.auth_failure = "dmarc";
  a.delivery_result = "reject";
  a.authentication_results = "mx.reporter.example; dmarc=fail header.from=example.com";
  a.dkim_domain = "example.com";
  a.spf_dns = "txt : example.com : v=spf1 -all";
  a.identity_alignment = "none";
  a.incidents = 2;
  a.fields = {
      {"Feedback-Type", "auth-failure"}, {"Auth-Failure", "dmarc"}, {"Source-IP", "192.0.2.9"}};
  a.original_headers = {{"From", "Sender <sender@example.com>"}, {"Subject", "hello"}};
  a.original_message_type = "text/rfc822-headers";
  a.human_readable = "This is an authentication failure report.";
  a.subject = "FW: hello";
  a.from = "DMARC reports <dmarc@reporter.example>";
  a.message_id = std::move(message_id);
  return a;
}

inline report::DsnReport sample_dsn() {
  report::DsnReport d;
  d.original_envelope_id = "ENV123";
  d.reporting_mta = "dns; mx.remote.example";
  d.arrival_date = 1700002000;
  d.fields = {{"Reporting-MTA", "dns; mx.remote.example"}, {"Original-Envelope-Id", "ENV123"}};
  report::DsnRecipient r;
  r.original_recipient = "rfc822; dmarc@remote.example";
  r.final_recipient = "rfc822; dmarc@remote.example";
  r.action = "failed";
  r.status = "5.1.1";
  r.remote_mta = "dns; mx.remote.example";
  r.diagnostic_code = "smtp; 550 5.1.1 no such user";
  r.last_attempt_date = 1700002000;
  r.fields = {{"Final-Recipient", "rfc822; dmarc@remote.example"}, {"Action", "failed"}};
  report::DsnRecipient r2;
  r2.final_recipient = "rfc822; other@remote.example";
  r2.action = "delayed";
  r2.status = "4.4.1";
  r2.will_retry_until = 1700100000;
  d.recipients = {r, r2};
  d.original_headers = {{"From", "noreply-dmarc@ours.example"}, {"Subject", "Report Domain: x"}};
  d.subject = "Undelivered Mail Returned to Sender";
  d.from = "MAILER-DAEMON@mx.remote.example";
  d.message_id = "<dsn-1@mx.remote.example>";
  return d;
}

using report::ReportSink;

inline store::ReportFilter filter(std::optional<report::ReportType> type, std::string domain = "",
                                  std::optional<std::int64_t> since = std::nullopt,
                                  std::size_t limit = 0) {
  store::ReportFilter f;
  f.type = type;
  f.domain = std::move(domain);
  f.since = since;
  f.limit = limit;
  return f;
}

inline store::RawFilter raw_filter(std::optional<store::ParseStatus> status,
                                   std::int64_t after_id = 0, std::size_t limit = 0) {
  store::RawFilter f;
  f.status = status;
  f.after_id = after_id;
  f.limit = limit;
  return f;
}

inline store::SqliteOptions options_for(const std::filesystem::path& path, bool read_only = false) {
  store::SqliteOptions o;
  o.path = path;
  o.read_only = read_only;
  return o;
}

// Streams a DMARC report into a sink the way the parser does.
inline void write_dmarc(report::ReportSink& sink, const report::DmarcAggregate& a) {
  ASSERT_TRUE(sink.dmarc_begin(a.header));
  for (auto r : a.records) ASSERT_TRUE(sink.dmarc_record(std::move(r)));
  ASSERT_TRUE(sink.dmarc_end(a.header, a.errors));
}

inline std::unique_ptr<store::Store> open_store(const std::filesystem::path& path,
                                                store::SqliteOptions options = {}) {
  options.path = path;
  auto s = store::open_sqlite_store(options);
  if (!s) ADD_FAILURE() << s.error().describe();
  return s ? std::move(*s) : nullptr;
}

// SQL that turns a store back from the newest migration to 4 (for tests of older migrations,
// which undo the newest ones first so that reopening applies them again): migration 6, then 5.
inline constexpr const char* kUndoMigration5 =
    "DROP TABLE webhook_events; DROP TABLE alert_watermarks; DROP TABLE metrics;"
    " DROP INDEX reports_begin;"
    " DELETE FROM schema_version WHERE version = 6;"
    " DROP INDEX evaluations_unreported;"
    " ALTER TABLE evaluations DROP COLUMN reported;"
    " DROP TABLE aggregate_watermarks; DROP TABLE aggregate_reports;"
    " DROP TABLE tls_count_failures; DROP TABLE tls_counts;"
    " DROP TABLE tls_rejected; DROP TABLE suppressions;"
    " DROP INDEX outbox_message_id;"
    " DELETE FROM schema_version WHERE version = 5;";

// Counts rows of a table through a separate sqlite3 connection.
inline std::int64_t count_rows(const std::filesystem::path& db, const std::string& table,
                               const std::string& where = "") {
  sqlite3* raw = nullptr;
  sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> conn(raw, &sqlite3_close);
  std::string sql = "SELECT count(*) FROM " + table + (where.empty() ? "" : " WHERE " + where);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(raw, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sqlite3_errmsg(raw);
    return -1;
  }
  std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(st, &sqlite3_finalize);
  if (sqlite3_step(st) != SQLITE_ROW) return -1;
  return sqlite3_column_int64(st, 0);
}

enum class Backend { Sqlite, Postgres };

inline const char* backend_name(Backend b) {
  return b == Backend::Sqlite ? "Sqlite" : "Postgres";
}
// For gtest's messages ("where GetParam() = Postgres").
inline void PrintTo(Backend b, std::ostream* os) {
  *os << backend_name(b);
}

// Names the instances of a parameterised store test after their backend (Backends/Suite.Test/
// Sqlite rather than .../0), for --gtest_filter=*/Postgres.
struct BackendName {
  std::string operator()(const ::testing::TestParamInfo<Backend>& info) const {
    return backend_name(info.param);
  }
};

inline const auto kBothBackends = ::testing::Values(Backend::Sqlite, Backend::Postgres);

// What a test may set of a store's options, whatever its backend.
struct TestStoreOptions {
  int compression_level = 1;
  std::size_t chunk_size = 1 << 20;
  bool read_only = false;
  std::size_t pool_size = 8;  // PostgreSQL's connections
};

// A fresh, empty database of one backend: `store.db` in a temporary directory (synchronous
// NORMAL: the tests are not about fsync), or a new database on the tests' PostgreSQL server.
class TestDatabase {
 public:
  // nullptr, with the reason in *why_not, when there is no PostgreSQL server to be had.
  static std::unique_ptr<TestDatabase> create(Backend backend, std::string* why_not = nullptr) {
    std::unique_ptr<TestDatabase> db(new TestDatabase(backend));
    if (backend == Backend::Sqlite) {
      db->dir_.emplace();
      db->path_ = db->dir_->path() / "store.db";
      db->location_ = db->path_.string();
    } else {
      auto url = fresh_pg_database(why_not);
      if (!url) return nullptr;
      db->location_ = std::move(*url);
    }
    return db;
  }

  Backend backend() const noexcept { return backend_; }
  // The SQLite file or the PostgreSQL URL.
  const std::string& location() const noexcept { return location_; }
  const std::filesystem::path& sqlite_path() const noexcept { return path_; }

  // Opens a(nother) store on this database.
  Result<std::unique_ptr<store::Store>> try_open(const TestStoreOptions& o = {}) const {
    if (backend_ == Backend::Sqlite) {
      store::SqliteOptions so;
      so.path = path_;
      so.synchronous_full = false;
      so.compression_level = o.compression_level;
      so.chunk_size = o.chunk_size;
      so.read_only = o.read_only;
      return store::open_sqlite_store(so);
    }
    store::PgOptions po;
    po.url = location_;
    po.compression_level = o.compression_level;
    po.chunk_size = o.chunk_size;
    po.read_only = o.read_only;
    po.pool_size = o.pool_size;
    return store::open_postgres_store(po);
  }
  // The same, with a test failure (and nullptr) when it cannot be opened.
  std::unique_ptr<store::Store> open(const TestStoreOptions& o = {}) const {
    auto s = try_open(o);
    if (!s)
      ADD_FAILURE() << "cannot open the " << backend_name(backend_) << " store at " << location_
                    << ": " << s.error().describe();
    return s ? std::move(*s) : nullptr;
  }

  // count(*) of a table (with an optional WHERE condition, in SQL both dialects read alike),
  // through a connection of its own.
  std::int64_t count_rows(const std::string& table, const std::string& where = "") const;

 private:
  explicit TestDatabase(Backend backend) : backend_(backend) {}

  Backend backend_;
  std::optional<TempDir> dir_;
  std::filesystem::path path_;
  std::string location_;
};

// A fresh store of `backend` with its database (the database first: it outlives the store).
struct TestStore {
  std::unique_ptr<TestDatabase> db;
  std::unique_ptr<store::Store> store;
  explicit operator bool() const noexcept { return store != nullptr; }
};

// A fresh database of `backend` and a store opened on it; empty (and the reason in *why_not)
// when there is no PostgreSQL server, or (with a test failure) when the store does not open.
inline TestStore open_test_store(Backend backend, const TestStoreOptions& options = {},
                                 std::string* why_not = nullptr) {
  TestStore t;
  t.db = TestDatabase::create(backend, why_not);
  if (t.db) t.store = t.db->open(options);
  return t;
}

// The fixture of the store tests that run on both backends: a fresh database per test (the
// PostgreSQL instances skip, or fail under CI=true, without a server).
class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    std::string why_not;
    db_ = TestDatabase::create(GetParam(), &why_not);
    if (!db_) {
      if (running_in_ci()) {
        FAIL() << pg_missing_message(why_not);
      } else {
        GTEST_SKIP() << pg_missing_message(why_not);
      }
    }
  }

  Backend backend() const { return GetParam(); }
  TestDatabase& db() { return *db_; }
  // A(nother) store on the test's database.
  std::unique_ptr<store::Store> open_store(const TestStoreOptions& o = {}) { return db_->open(o); }
  std::int64_t count_rows(const std::string& table, const std::string& where = "") const {
    return db_->count_rows(table, where);
  }
  // A temporary directory of the test's own (for files besides the store).
  const std::filesystem::path& scratch_dir() const noexcept { return scratch_.path(); }

 private:
  std::unique_ptr<TestDatabase> db_;
  TempDir scratch_;
};

inline std::int64_t TestDatabase::count_rows(const std::string& table,
                                             const std::string& where) const {
  if (backend_ == Backend::Postgres) return pg_count_rows(location_, table, where);
  return test::count_rows(path_, table, where);
}

}  // namespace mailreport::test
