// The dashboard's queries (issue 6) on SQLite and PostgreSQL (Dashboard/<backend>): incoming
// DMARC, TLS, ARF and DSN reports stored through the normal write path, then listed, filtered
// and paged (query_reports), summed per day (dmarc_daily, tls_daily), ranked
// (top_failing_sources, tls_failures_by_type), asked about (dmarc_source_known); the outbox by
// kind and state; the milter's evaluations per policy domain. Exact figures throughout, and
// empty answers on an empty store.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "sample_evaluation.hpp"
#include "store_fixtures.hpp"
#include "testsupport.hpp"

namespace mailreport::store {
namespace {

constexpr std::int64_t kDay0 = 1699920000;  // 2023-11-14 00:00:00 UTC
constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kDay1 = kDay0 + kDay;
constexpr std::int64_t kDay2 = kDay0 + 2 * kDay;

struct Rec {
  std::string ip;
  std::uint64_t count;
  std::string disposition;
  std::string dkim;  // aligned results
  std::string spf;
  std::string header_from;
};

report::DmarcAggregate dmarc(const std::string& id, const std::string& org,
                             const std::string& domain, std::int64_t begin,
                             const std::vector<Rec>& recs) {
  auto a = test::sample_dmarc(id, org, domain, begin);
  a.records.clear();
  for (const auto& r : recs) {
    report::DmarcRecord rec;
    rec.row.source_ip = r.ip;
    rec.row.count = r.count;
    rec.row.policy_evaluated = {r.disposition, r.dkim, r.spf, {}};
    rec.identifiers.header_from = r.header_from;
    a.records.push_back(std::move(rec));
  }
  return a;
}

struct Failure {
  std::string type;
  std::uint64_t sessions;
};
struct Policy {
  std::uint64_t ok;
  std::uint64_t failed;
  std::vector<Failure> failures;
};

report::TlsReport tls(const std::string& id, const std::string& org, const std::string& domain,
                      std::int64_t begin, const std::vector<Policy>& policies) {
  auto t = test::sample_tls(id);
  t.organization_name = org;
  t.date_range = {begin, begin + 86399};
  t.policies.clear();
  for (const auto& p : policies) {
    report::TlsPolicy tp;
    tp.policy_type = "sts";
    tp.policy_domain = domain;
    tp.total_successful_session_count = p.ok;
    tp.total_failure_session_count = p.failed;
    for (const auto& f : p.failures) {
      report::TlsFailureDetail d;
      d.result_type = f.type;
      d.failed_session_count = f.sessions;
      tp.failure_details.push_back(d);
    }
    t.policies.push_back(std::move(tp));
  }
  return t;
}

// Stores one raw message whose reports `fill` writes, through WriteTransaction + ReportWriter.
template <class Fill>
void write_message(Store& store, Fill&& fill, std::int64_t received_at = kDay0 + 5 * kDay) {
  auto tx = store.begin_write();
  ASSERT_TRUE(tx) << tx.error().describe();
  MemorySource src("From: reporter@example.org\r\n\r\nbody\r\n");
  auto info = (*tx)->add_raw_message(
      {received_at, "test", "a@b.example", {"dmarc@ours.example"}, "unit"}, src);
  ASSERT_TRUE(info) << info.error().describe();
  auto writer = (*tx)->report_writer(info->id, received_at);
  fill(*writer);
  ASSERT_TRUE(writer->finish());
  ASSERT_EQ(writer->stored(), 1u) << ::testing::PrintToString(writer->notes());
  ASSERT_TRUE((*tx)->set_parse_outcome(info->id, ParseStatus::Parsed, ""));
  writer.reset();
  auto st = (*tx)->commit();
  ASSERT_TRUE(st) << st.error().describe();
}

// The reports every test below reads (report ids of the models in brackets):
//   [R1] DMARC Google, example.com, day 0: 192.0.2.1 ×10 pass (none), 198.51.100.7 ×4 fail
//        (quarantine)
//   [R2] DMARC "Yahoo! Inc.", example.com, day 1: 192.0.2.1 ×5 pass by SPF (none)
//   [R3] DMARC Google, example.org, day 1: 198.51.100.7 ×2 fail (reject), 203.0.113.5 ×1 pass
//   [R4] DMARC "100%_Mail", example.com, day 2: 203.0.113.5 ×3 fail (reject)
//   [T1] TLS Company-X, example.com, day 0: 100+10 ok, 7 failed (certificate-expired 5,
//        starttls-not-supported 2)
//   [T2] TLS Microsoft, example.com, day 1: 50 ok, 3 failed (certificate-expired 3)
//   [T3] TLS Company-X, example.org, day 1: 20 ok
//   ARF auth-failure about example.com (day 0), ARF abuse about example.org (day 1)
//   DSN (ours.example) first recipient failed (day 0), DSN first recipient delayed (day 2)
void populate(Store& s) {
  auto put_dmarc = [&s](const report::DmarcAggregate& a) {
    write_message(s, [&](ReportWriter& w) { test::write_dmarc(w, a); });
  };
  put_dmarc(dmarc("R1", "Google", "example.com", kDay0 + 3600,
                  {{"192.0.2.1", 10, "none", "pass", "fail", "example.com"},
                   {"198.51.100.7", 4, "quarantine", "fail", "fail", "example.com"}}));
  put_dmarc(dmarc("R2", "Yahoo! Inc.", "example.com", kDay1 + 100,
                  {{"192.0.2.1", 5, "none", "fail", "pass", "Example.com"}}));
  put_dmarc(dmarc("R3", "Google", "example.org", kDay1 + 7200,
                  {{"198.51.100.7", 2, "reject", "fail", "fail", "example.org"},
                   {"203.0.113.5", 1, "none", "pass", "pass", "example.org"}}));
  put_dmarc(dmarc("R4", "100%_Mail", "example.com", kDay2,
                  {{"203.0.113.5", 3, "reject", "fail", "fail", "mail.example.com"}}));
  auto put_tls = [&s](report::TlsReport t) {
    write_message(s, [&](ReportWriter& w) { ASSERT_TRUE(w.tls(std::move(t))); });
  };
  put_tls(
      tls("T1", "Company-X", "example.com", kDay0 + 10,
          {{100, 7, {{"certificate-expired", 5}, {"starttls-not-supported", 2}}}, {10, 0, {}}}));
  put_tls(tls("T2", "Microsoft", "example.com", kDay1, {{50, 3, {{"certificate-expired", 3}}}}));
  put_tls(tls("T3", "Company-X", "example.org", kDay1 + 50, {{20, 0, {}}}));

  auto arf1 = test::sample_arf("<arf-1@reporter.example>");  // auth-failure, example.com, day 0
  write_message(s, [&](ReportWriter& w) { ASSERT_TRUE(w.arf(std::move(arf1))); });
  auto arf2 = test::sample_arf("<arf-2@reporter.example>");
  arf2.feedback_type = "abuse";
  arf2.reported_domain = {"example.org"};
  arf2.arrival_date = kDay1 + 300;
  write_message(s, [&](ReportWriter& w) { ASSERT_TRUE(w.arf(std::move(arf2))); });

  auto dsn1 = test::sample_dsn();  // failed, then delayed; day 0
  write_message(s, [&](ReportWriter& w) { ASSERT_TRUE(w.dsn(std::move(dsn1))); });
  auto dsn2 = test::sample_dsn();
  dsn2.message_id = "<dsn-2@mx.remote.example>";
  std::swap(dsn2.recipients[0], dsn2.recipients[1]);
  dsn2.arrival_date = kDay2 + 10;
  write_message(s, [&](ReportWriter& w) { ASSERT_TRUE(w.dsn(std::move(dsn2))); });
}

constexpr std::uint64_t kAllReports = 11;

class Dashboard : public test::StoreTest {
 protected:
  void SetUp() override {
    test::StoreTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    store_ = open_store();
    ASSERT_TRUE(store_);
  }

  Store& store() { return *store_; }

  ReportPage page(const ReportQuery& q) {
    auto p = store_->query_reports(q);
    EXPECT_TRUE(p) << p.error().describe();
    return p ? std::move(*p) : ReportPage{};
  }
  // The report ids (ReportSummary::report_id, the models' ids) of a page, in order.
  std::vector<std::string> ids(const ReportQuery& q) {
    std::vector<std::string> out;
    for (const auto& s : page(q).items) out.push_back(s.report_id);
    return out;
  }
  // The store's id of the report whose report_id is `report_id`.
  std::int64_t id_of(const std::string& report_id) {
    ReportQuery q;
    q.limit = 0;
    for (const auto& s : page(q).items) {
      if (s.report_id == report_id) return s.id;
    }
    ADD_FAILURE() << "no report " << report_id;
    return 0;
  }

 private:
  std::unique_ptr<Store> store_;
};

ReportQuery of_type(report::ReportType t, std::string result = "") {
  ReportQuery q;
  q.type = t;
  q.result = std::move(result);
  return q;
}

using report::ReportType;
using V = std::vector<std::string>;

TEST_P(Dashboard, AnEmptyStoreAnswersEverythingWithNothing) {
  auto p = page({});
  EXPECT_TRUE(p.items.empty());
  EXPECT_EQ(p.total, 0u);
  ReportQuery paged;
  paged.offset = 10;
  paged.limit = 5;
  EXPECT_EQ(page(paged).total, 0u);
  SeriesQuery all;
  auto dd = store().dmarc_daily(all);
  ASSERT_TRUE(dd) << dd.error().describe();
  EXPECT_TRUE(dd->empty());
  auto src = store().top_failing_sources(all, 10);
  ASSERT_TRUE(src) << src.error().describe();
  EXPECT_TRUE(src->empty());
  auto known = store().dmarc_source_known("example.com", "192.0.2.1", 1000);
  ASSERT_TRUE(known) << known.error().describe();
  EXPECT_FALSE(*known);
  auto td = store().tls_daily(all);
  ASSERT_TRUE(td) << td.error().describe();
  EXPECT_TRUE(td->empty());
  auto tf = store().tls_failures_by_type(all);
  ASSERT_TRUE(tf) << tf.error().describe();
  EXPECT_TRUE(tf->empty());
  auto ob = store().outbox_stats();
  ASSERT_TRUE(ob) << ob.error().describe();
  EXPECT_TRUE(ob->empty());
  auto ev = store().evaluation_summary(all);
  ASSERT_TRUE(ev) << ev.error().describe();
  EXPECT_TRUE(ev->empty());
}

TEST_P(Dashboard, ListsEveryReportNewestFirstWithItsFigures) {
  populate(store());
  auto p = page({});
  EXPECT_EQ(p.total, kAllReports);
  ASSERT_EQ(p.items.size(), kAllReports);
  // By date_begin, descending (ARF and DSN: their arrival dates, day 0 + 81234 and + 82000).
  EXPECT_EQ(ids({}),
            V({"<dsn-2@mx.remote.example>", "R4", "R3", "<arf-2@reporter.example>", "R2", "T3",
               "T2", "<dsn-1@mx.remote.example>", "<arf-1@reporter.example>", "R1", "T1"}));
  for (std::size_t i = 1; i < p.items.size(); ++i) {
    EXPECT_GE(p.items[i - 1].date_begin, p.items[i].date_begin);
  }
  auto find = [&](const std::string& id) {
    auto it = std::find_if(p.items.begin(), p.items.end(),
                           [&](const ReportSummary& s) { return s.report_id == id; });
    return it == p.items.end() ? ReportSummary{} : *it;
  };
  auto r1 = find("R1");
  EXPECT_EQ(r1.type, ReportType::DmarcAggregate);
  EXPECT_EQ(r1.org_name, "Google");
  EXPECT_EQ(r1.policy_domain, "example.com");
  EXPECT_EQ(r1.messages, 14u);
  EXPECT_EQ(r1.pass, 10u);
  EXPECT_EQ(r1.fail, 4u);
  auto t1 = find("T1");
  EXPECT_EQ(t1.sessions_ok, 110u);
  EXPECT_EQ(t1.sessions_failed, 7u);
  auto arf = find("<arf-2@reporter.example>");
  EXPECT_EQ(arf.feedback_type, "abuse");
  EXPECT_EQ(arf.policy_domain, "example.org");
  auto dsn = find("<dsn-2@mx.remote.example>");
  EXPECT_EQ(dsn.action, "delayed");
  EXPECT_EQ(dsn.policy_domain, "ours.example");
}

TEST_P(Dashboard, FiltersReportsByTypeAndResult) {
  populate(store());
  EXPECT_EQ(ids(of_type(ReportType::DmarcAggregate)), V({"R4", "R3", "R2", "R1"}));
  EXPECT_EQ(page(of_type(ReportType::DmarcAggregate)).total, 4u);
  // DMARC: pass = every message passed; fail = one at least failed.
  EXPECT_EQ(ids(of_type(ReportType::DmarcAggregate, "pass")), V({"R2"}));
  EXPECT_EQ(ids(of_type(ReportType::DmarcAggregate, "fail")), V({"R4", "R3", "R1"}));
  EXPECT_EQ(page(of_type(ReportType::DmarcAggregate, "fail")).total, 3u);
  // TLS: pass = no failed session.
  EXPECT_EQ(ids(of_type(ReportType::TlsAggregate, "pass")), V({"T3"}));
  EXPECT_EQ(ids(of_type(ReportType::TlsAggregate, "FAIL")), V({"T2", "T1"}));
  // ARF: the feedback type (case-insensitive); DSN: the first recipient's action.
  EXPECT_EQ(ids(of_type(ReportType::Arf, "abuse")), V({"<arf-2@reporter.example>"}));
  EXPECT_EQ(ids(of_type(ReportType::Arf, "Auth-Failure")), V({"<arf-1@reporter.example>"}));
  EXPECT_EQ(ids(of_type(ReportType::Arf, "fraud")), V{});
  EXPECT_EQ(ids(of_type(ReportType::Dsn, "failed")), V({"<dsn-1@mx.remote.example>"}));
  EXPECT_EQ(ids(of_type(ReportType::Dsn, "delayed")), V({"<dsn-2@mx.remote.example>"}));
  EXPECT_EQ(ids(of_type(ReportType::Dsn)).size(), 2u);
  // Without a type, each type's meaning of the result.
  ReportQuery any;
  any.result = "pass";
  EXPECT_EQ(ids(any), V({"R2", "T3"}));
  EXPECT_EQ(page(any).total, 2u);
  any.result = "abuse";
  EXPECT_EQ(ids(any), V({"<arf-2@reporter.example>"}));
  any.result = "delayed";
  EXPECT_EQ(ids(any), V({"<dsn-2@mx.remote.example>"}));
  any.result = "nothing-like-it";
  EXPECT_EQ(page(any).total, 0u);
}

TEST_P(Dashboard, FiltersReportsByDomainReporterAndPeriod) {
  populate(store());
  ReportQuery q;
  q.domain = "EXAMPLE.org.";
  EXPECT_EQ(ids(q), V({"R3", "<arf-2@reporter.example>", "T3"}));
  EXPECT_EQ(page(q).total, 3u);
  q.domain = "example.co";  // exact, not a prefix
  EXPECT_EQ(page(q).total, 0u);

  ReportQuery r;
  r.reporter = "gOOgle";
  EXPECT_EQ(ids(r), V({"R3", "R1"}));
  r.reporter = "inc.";  // a substring
  EXPECT_EQ(ids(r), V({"R2"}));
  // LIKE's wildcards are literal characters in a reporter filter.
  r.reporter = "_";
  EXPECT_EQ(ids(r), V({"R4"}));
  r.reporter = "%";
  EXPECT_EQ(ids(r), V({"R4"}));
  r.reporter = "0%_m";
  EXPECT_EQ(ids(r), V({"R4"}));
  r.reporter = "\\";
  EXPECT_EQ(page(r).total, 0u);
  r.reporter = "company-x";
  r.type = ReportType::TlsAggregate;
  r.domain = "example.com";
  EXPECT_EQ(ids(r), V({"T1"}));

  ReportQuery period;
  period.from = kDay1;
  period.to = kDay2;  // [from, to)
  EXPECT_EQ(ids(period), V({"R3", "<arf-2@reporter.example>", "R2", "T3", "T2"}));
  period.type = ReportType::DmarcAggregate;
  period.result = "fail";
  EXPECT_EQ(ids(period), V({"R3"}));
  ReportQuery since;
  since.from = kDay2;
  EXPECT_EQ(ids(since), V({"<dsn-2@mx.remote.example>", "R4"}));
  ReportQuery until;
  until.to = kDay1;
  EXPECT_EQ(ids(until), V({"<dsn-1@mx.remote.example>", "<arf-1@reporter.example>", "R1", "T1"}));
}

TEST_P(Dashboard, PagesWithATotalAndFollowsByIdAfterAnId) {
  populate(store());
  auto all = ids({});
  ASSERT_EQ(all.size(), kAllReports);
  ReportQuery q;
  q.limit = 3;
  auto p1 = page(q);
  EXPECT_EQ(p1.total, kAllReports);
  ASSERT_EQ(p1.items.size(), 3u);
  q.offset = 3;
  auto p2 = page(q);
  EXPECT_EQ(p2.total, kAllReports);
  ASSERT_EQ(p2.items.size(), 3u);
  EXPECT_EQ(p2.items[0].report_id, all[3]);
  EXPECT_EQ(p2.items[2].report_id, all[5]);
  q.offset = 9;
  auto last = page(q);
  EXPECT_EQ(last.total, kAllReports);
  ASSERT_EQ(last.items.size(), 2u);
  EXPECT_EQ(last.items[1].report_id, all[10]);
  q.offset = 20;
  auto beyond = page(q);
  EXPECT_TRUE(beyond.items.empty());
  EXPECT_EQ(beyond.total, kAllReports);
  // A filtered page's total counts the filter's matches.
  ReportQuery dmarc_page = of_type(ReportType::DmarcAggregate, "fail");
  dmarc_page.limit = 1;
  auto dp = page(dmarc_page);
  EXPECT_EQ(dp.total, 3u);
  EXPECT_EQ(dp.items.size(), 1u);

  // Oldest first by id, after an id (the alert scanner's keyset paging), in write order.
  ReportQuery follow;
  follow.oldest_first = true;
  follow.limit = 0;
  auto in_order = ids(follow);
  EXPECT_EQ(in_order, V({"R1", "R2", "R3", "R4", "T1", "T2", "T3", "<arf-1@reporter.example>",
                         "<arf-2@reporter.example>", "<dsn-1@mx.remote.example>",
                         "<dsn-2@mx.remote.example>"}));
  follow.after_id = id_of("R4");
  follow.limit = 2;
  auto next = page(follow);
  EXPECT_EQ(next.total, 7u);  // everything after R4
  ASSERT_EQ(next.items.size(), 2u);
  EXPECT_EQ(next.items[0].report_id, "T1");
  EXPECT_EQ(next.items[1].report_id, "T2");
  follow.after_id = next.items[1].id;
  follow.type = ReportType::Arf;
  EXPECT_EQ(ids(follow), V({"<arf-1@reporter.example>", "<arf-2@reporter.example>"}));
  follow.type.reset();
  follow.after_id = id_of("<dsn-2@mx.remote.example>");
  auto done = page(follow);
  EXPECT_TRUE(done.items.empty());
  EXPECT_EQ(done.total, 0u);
}

TEST_P(Dashboard, CountsDmarcMessagesPerDayByResultAndDisposition) {
  populate(store());
  auto all = store().dmarc_daily({});
  ASSERT_TRUE(all) << all.error().describe();
  ASSERT_EQ(all->size(), 3u);
  auto expect = [](const DmarcDayPoint& p, std::int64_t day, std::uint64_t messages,
                   std::uint64_t pass, std::uint64_t none, std::uint64_t quarantine,
                   std::uint64_t reject) {
    EXPECT_EQ(p.day, day);
    EXPECT_EQ(p.messages, messages) << day;
    EXPECT_EQ(p.pass, pass) << day;
    EXPECT_EQ(p.fail, messages - pass) << day;
    EXPECT_EQ(p.none, none) << day;
    EXPECT_EQ(p.quarantine, quarantine) << day;
    EXPECT_EQ(p.reject, reject) << day;
  };
  expect((*all)[0], kDay0, 14, 10, 10, 4, 0);
  expect((*all)[1], kDay1, 8, 6, 6, 0, 2);
  expect((*all)[2], kDay2, 3, 0, 0, 0, 3);

  SeriesQuery com;
  com.domain = "Example.COM";
  auto c = store().dmarc_daily(com);
  ASSERT_TRUE(c) << c.error().describe();
  ASSERT_EQ(c->size(), 3u);
  expect((*c)[0], kDay0, 14, 10, 10, 4, 0);
  expect((*c)[1], kDay1, 5, 5, 5, 0, 0);
  expect((*c)[2], kDay2, 3, 0, 0, 0, 3);

  SeriesQuery ip;
  ip.source_ip = "198.51.100.7";
  auto i = store().dmarc_daily(ip);
  ASSERT_TRUE(i) << i.error().describe();
  ASSERT_EQ(i->size(), 2u);  // days without data are left out
  expect((*i)[0], kDay0, 4, 0, 0, 4, 0);
  expect((*i)[1], kDay1, 2, 0, 0, 0, 2);

  SeriesQuery period;
  period.from = kDay1;
  period.to = kDay2;
  auto d = store().dmarc_daily(period);
  ASSERT_TRUE(d) << d.error().describe();
  ASSERT_EQ(d->size(), 1u);
  expect((*d)[0], kDay1, 8, 6, 6, 0, 2);

  SeriesQuery none;
  none.domain = "example.net";
  auto n = store().dmarc_daily(none);
  ASSERT_TRUE(n) << n.error().describe();
  EXPECT_TRUE(n->empty());
}

TEST_P(Dashboard, RanksSourcesByFailures) {
  populate(store());
  auto all = store().top_failing_sources({}, 10);
  ASSERT_TRUE(all) << all.error().describe();
  ASSERT_EQ(all->size(), 3u);
  const SourceStat& a = (*all)[0];
  EXPECT_EQ(a.source_ip, "198.51.100.7");
  EXPECT_EQ(a.messages, 6u);
  EXPECT_EQ(a.pass, 0u);
  EXPECT_EQ(a.fail, 6u);
  EXPECT_EQ(a.reports, 2u);
  EXPECT_EQ(a.last_seen, kDay1 + 7200 + 86399);  // R3's date_end
  EXPECT_EQ(a.header_from, V({"example.com", "example.org"}));
  EXPECT_EQ(a.policy_domains, V({"example.com", "example.org"}));
  const SourceStat& b = (*all)[1];
  EXPECT_EQ(b.source_ip, "203.0.113.5");
  EXPECT_EQ(b.messages, 4u);
  EXPECT_EQ(b.pass, 1u);
  EXPECT_EQ(b.fail, 3u);
  EXPECT_EQ(b.reports, 2u);
  EXPECT_EQ(b.last_seen, kDay2 + 86399);
  EXPECT_EQ(b.header_from, V({"example.org", "mail.example.com"}));
  EXPECT_EQ(b.policy_domains, V({"example.com", "example.org"}));
  const SourceStat& c = (*all)[2];
  EXPECT_EQ(c.source_ip, "192.0.2.1");
  EXPECT_EQ(c.messages, 15u);
  EXPECT_EQ(c.pass, 15u);
  EXPECT_EQ(c.fail, 0u);
  EXPECT_EQ(c.reports, 2u);
  EXPECT_EQ(c.header_from, V({"example.com"}));  // "Example.com" is the same domain
  EXPECT_EQ(c.policy_domains, V({"example.com"}));

  auto top = store().top_failing_sources({}, 1);
  ASSERT_TRUE(top) << top.error().describe();
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0].source_ip, "198.51.100.7");

  SeriesQuery com;
  com.domain = "example.com";
  auto c2 = store().top_failing_sources(com, 10);
  ASSERT_TRUE(c2) << c2.error().describe();
  ASSERT_EQ(c2->size(), 3u);
  EXPECT_EQ((*c2)[0].source_ip, "198.51.100.7");
  EXPECT_EQ((*c2)[0].fail, 4u);
  EXPECT_EQ((*c2)[0].reports, 1u);
  EXPECT_EQ((*c2)[0].policy_domains, V({"example.com"}));
  EXPECT_EQ((*c2)[1].source_ip, "203.0.113.5");
  EXPECT_EQ((*c2)[1].fail, 3u);
  EXPECT_EQ((*c2)[1].header_from, V({"mail.example.com"}));  // example.org's record left out

  SeriesQuery later;
  later.from = kDay1;
  later.source_ip = "192.0.2.1";
  auto l = store().top_failing_sources(later, 0);
  ASSERT_TRUE(l) << l.error().describe();
  ASSERT_EQ(l->size(), 1u);
  EXPECT_EQ((*l)[0].messages, 5u);
  EXPECT_EQ((*l)[0].reports, 1u);
  EXPECT_EQ((*l)[0].last_seen, kDay1 + 100 + 86399);
}

TEST_P(Dashboard, ASourceListsAtMostFiveNamesSorted) {
  std::vector<Rec> recs;
  for (std::string d : {"f.example", "b.example", "e.example", "a.example", "g.example",
                        "c.example", "d.example"}) {
    recs.push_back({"192.0.2.99", 1, "none", "fail", "fail", d});
  }
  for (int i = 0; i < 6; ++i) {
    auto a = dmarc("N" + std::to_string(i), "Org", "d" + std::to_string(i) + ".example", kDay0 + i,
                   i == 0 ? recs : std::vector<Rec>{recs[0]});
    write_message(store(), [&](ReportWriter& w) { test::write_dmarc(w, a); });
  }
  auto s = store().top_failing_sources({}, 5);
  ASSERT_TRUE(s) << s.error().describe();
  ASSERT_EQ(s->size(), 1u);
  EXPECT_EQ((*s)[0].messages, 12u);
  EXPECT_EQ((*s)[0].reports, 6u);
  EXPECT_EQ((*s)[0].header_from,
            V({"a.example", "b.example", "c.example", "d.example", "e.example"}));
  EXPECT_EQ((*s)[0].policy_domains,
            V({"d0.example", "d1.example", "d2.example", "d3.example", "d4.example"}));
}

TEST_P(Dashboard, KnowsTheSourcesOfEarlierReports) {
  populate(store());
  auto known = [&](const char* domain, const char* ip, std::int64_t before) {
    auto k = store().dmarc_source_known(domain, ip, before);
    EXPECT_TRUE(k) << k.error().describe();
    return k && *k;
  };
  std::int64_t r1 = id_of("R1"), r2 = id_of("R2"), r4 = id_of("R4");
  EXPECT_FALSE(known("example.com", "192.0.2.1", r1));  // R1 is the first
  EXPECT_TRUE(known("example.com", "192.0.2.1", r2));
  EXPECT_TRUE(known("EXAMPLE.COM", "192.0.2.1", r2));
  // 203.0.113.5 sent as example.org (R3) before R4, not as example.com.
  EXPECT_FALSE(known("example.com", "203.0.113.5", r4));
  EXPECT_TRUE(known("example.com", "203.0.113.5", r4 + 1));
  EXPECT_TRUE(known("example.org", "203.0.113.5", r4));
  EXPECT_FALSE(known("example.org", "192.0.2.1", 1'000'000));
  // Only DMARC reports: the ARF about example.com names 192.0.2.9.
  EXPECT_FALSE(known("example.com", "192.0.2.9", 1'000'000));
}

TEST_P(Dashboard, CountsTlsSessionsPerDayAndFailuresByType) {
  populate(store());
  auto days = store().tls_daily({});
  ASSERT_TRUE(days) << days.error().describe();
  ASSERT_EQ(days->size(), 2u);
  EXPECT_EQ((*days)[0].day, kDay0);
  EXPECT_EQ((*days)[0].successful, 110u);
  EXPECT_EQ((*days)[0].failed, 7u);
  EXPECT_EQ((*days)[1].day, kDay1);
  EXPECT_EQ((*days)[1].successful, 70u);
  EXPECT_EQ((*days)[1].failed, 3u);

  SeriesQuery org;
  org.domain = "example.org";
  auto o = store().tls_daily(org);
  ASSERT_TRUE(o) << o.error().describe();
  ASSERT_EQ(o->size(), 1u);
  EXPECT_EQ((*o)[0].day, kDay1);
  EXPECT_EQ((*o)[0].successful, 20u);
  EXPECT_EQ((*o)[0].failed, 0u);

  auto types = store().tls_failures_by_type({});
  ASSERT_TRUE(types) << types.error().describe();
  ASSERT_EQ(types->size(), 2u);
  EXPECT_EQ((*types)[0].result_type, "certificate-expired");
  EXPECT_EQ((*types)[0].sessions, 8u);
  EXPECT_EQ((*types)[0].reports, 2u);
  EXPECT_EQ((*types)[1].result_type, "starttls-not-supported");
  EXPECT_EQ((*types)[1].sessions, 2u);
  EXPECT_EQ((*types)[1].reports, 1u);

  SeriesQuery later;
  later.from = kDay1;
  auto l = store().tls_failures_by_type(later);
  ASSERT_TRUE(l) << l.error().describe();
  ASSERT_EQ(l->size(), 1u);
  EXPECT_EQ((*l)[0].result_type, "certificate-expired");
  EXPECT_EQ((*l)[0].sessions, 3u);
  EXPECT_EQ((*l)[0].reports, 1u);

  auto none = store().tls_failures_by_type(org);
  ASSERT_TRUE(none) << none.error().describe();
  EXPECT_TRUE(none->empty());
}

TEST_P(Dashboard, CountsTheOutboxByKindAndState) {
  constexpr std::int64_t kT0 = 1700000000;
  // A failure report queued by the milter (failing_evaluation: no rua=, one ruf= report).
  ASSERT_TRUE(store().record_evaluations(std::vector<auth::Evaluation>{
      test::failing_evaluation(kT0, "ruf@reporter.example", "example.net")}));
  auto enqueue = [&](const std::string& kind, std::int64_t created) {
    OutboxEntry e;
    e.kind = kind;
    e.recipient = "dmarc@reporter.example";
    e.reported_domain = "example.com";
    e.created_at = created;
    e.payload = "{}";
    auto id = store().enqueue_outbox(e);
    EXPECT_TRUE(id) << id.error().describe();
    return id ? *id : 0;
  };
  std::int64_t sent = enqueue("dmarc-failure", kT0 - 500);
  std::int64_t failed = enqueue("dmarc-failure", kT0 - 400);
  enqueue("dmarc-failure", kT0 + 100);
  enqueue("spf-failure", kT0 + 7);
  ASSERT_TRUE(store().outbox_sent(sent, kT0 + 10, "<r1@ours.example>"));
  ASSERT_TRUE(store().outbox_failed(failed, kT0 + 11, "550 5.1.1 no such user"));

  auto stats = store().outbox_stats();
  ASSERT_TRUE(stats) << stats.error().describe();
  ASSERT_EQ(stats->size(), 4u);
  auto expect = [](const OutboxStat& s, const char* kind, OutboxState state, std::uint64_t count,
                   std::int64_t oldest) {
    EXPECT_EQ(s.kind, kind);
    EXPECT_EQ(s.state, state) << kind;
    EXPECT_EQ(s.count, count) << kind << " " << to_string(state);
    EXPECT_EQ(s.oldest_created_at, oldest) << kind << " " << to_string(state);
  };
  // The milter's report (created at kT0) and the one of kT0 + 100 are queued.
  expect((*stats)[0], "dmarc-failure", OutboxState::Queued, 2, kT0);
  expect((*stats)[1], "dmarc-failure", OutboxState::Sent, 1, kT0 - 500);
  expect((*stats)[2], "dmarc-failure", OutboxState::Failed, 1, kT0 - 400);
  expect((*stats)[3], "spf-failure", OutboxState::Queued, 1, kT0 + 7);
}

TEST_P(Dashboard, SumsTheMilterEvaluationsPerPolicyDomain) {
  constexpr std::int64_t kHour = 1699999200;  // an hour boundary
  auto failing = [](std::int64_t t, const char* ip, auth::Disposition d) {
    auto ev = test::sample_evaluation(t, ip, "example.com");
    ev.dmarc.result = auth::DmarcResult::Fail;
    ev.dmarc.dkim_aligned = false;
    ev.dmarc.spf_aligned = false;
    ev.dmarc.disposition = d;
    return ev;
  };
  auto spf_only = test::sample_evaluation(kHour + 30, "192.0.2.1", "example.com");
  spf_only.dmarc.dkim_aligned = false;  // passes on aligned SPF alone
  std::vector<auth::Evaluation> batch = {
      test::sample_evaluation(kHour + 100, "192.0.2.1", "example.com"),
      test::sample_evaluation(kHour + 200, "192.0.2.1", "example.com"), spf_only,
      failing(kHour + 3600 + 5, "192.0.2.2", auth::Disposition::Quarantine),
      failing(kHour + 7200 + 5, "192.0.2.3", auth::Disposition::Reject),
      test::sample_evaluation(kHour + 10, "198.51.100.1", "example.org"),
      // No rua=: queues a failure report, adds no row.
      test::failing_evaluation(kHour + 20, "ruf@reporter.example", "example.net")};
  ASSERT_TRUE(store().record_evaluations(batch));

  // Two of the example.com messages of the first hour are already in a report we queued.
  EvaluationFilter first_hour;
  first_hour.domain = "example.com";
  first_hour.until = kHour + 3600;
  auto rows = store().list_evaluations(first_hour);
  ASSERT_TRUE(rows) << rows.error().describe();
  auto row = std::find_if(rows->begin(), rows->end(),
                          [](const EvaluationRow& r) { return r.record.row.count == 2; });
  ASSERT_NE(row, rows->end());
  AggregateBatch reported;
  reported.kind = std::string(kDmarcAggregateKind);
  reported.reported.push_back({ReportedCount::Table::Evaluation, row->id, 2, 0, 0, 0});
  ASSERT_TRUE(store().commit_aggregate_batch(reported));

  auto all = store().evaluation_summary({});
  ASSERT_TRUE(all) << all.error().describe();
  ASSERT_EQ(all->size(), 2u);
  const EvaluationStat& com = (*all)[0];  // busiest first
  EXPECT_EQ(com.policy_domain, "example.com");
  EXPECT_EQ(com.messages, 5u);
  EXPECT_EQ(com.pass, 3u);
  EXPECT_EQ(com.fail, 2u);
  EXPECT_EQ(com.quarantine, 1u);
  EXPECT_EQ(com.reject, 1u);
  EXPECT_EQ(com.reported, 2u);
  EXPECT_EQ(com.sources, 3u);
  EXPECT_EQ(com.first_seen, kHour + 30);
  EXPECT_EQ(com.last_seen, kHour + 7205);
  const EvaluationStat& org = (*all)[1];
  EXPECT_EQ(org.policy_domain, "example.org");
  EXPECT_EQ(org.messages, 1u);
  EXPECT_EQ(org.pass, 1u);
  EXPECT_EQ(org.fail, 0u);
  EXPECT_EQ(org.reported, 0u);
  EXPECT_EQ(org.sources, 1u);
  EXPECT_EQ(org.first_seen, kHour + 10);
  EXPECT_EQ(org.last_seen, kHour + 10);

  SeriesQuery later;  // hours in [from, to)
  later.from = kHour + 3600;
  later.to = kHour + 7200;
  auto l = store().evaluation_summary(later);
  ASSERT_TRUE(l) << l.error().describe();
  ASSERT_EQ(l->size(), 1u);
  EXPECT_EQ((*l)[0].policy_domain, "example.com");
  EXPECT_EQ((*l)[0].messages, 1u);
  EXPECT_EQ((*l)[0].quarantine, 1u);
  EXPECT_EQ((*l)[0].reject, 0u);
  EXPECT_EQ((*l)[0].sources, 1u);

  SeriesQuery org_only;
  org_only.domain = "Example.ORG";
  auto o = store().evaluation_summary(org_only);
  ASSERT_TRUE(o) << o.error().describe();
  ASSERT_EQ(o->size(), 1u);
  EXPECT_EQ((*o)[0].policy_domain, "example.org");

  SeriesQuery ip;
  ip.source_ip = "192.0.2.1";
  auto i = store().evaluation_summary(ip);
  ASSERT_TRUE(i) << i.error().describe();
  ASSERT_EQ(i->size(), 1u);
  EXPECT_EQ((*i)[0].messages, 3u);
  EXPECT_EQ((*i)[0].pass, 3u);

  SeriesQuery net;
  net.domain = "example.net";
  auto n = store().evaluation_summary(net);
  ASSERT_TRUE(n) << n.error().describe();
  EXPECT_TRUE(n->empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, Dashboard, test::kBothBackends, test::BackendName());

}  // namespace
}  // namespace mailreport::store
