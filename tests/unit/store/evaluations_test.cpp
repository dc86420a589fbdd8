// The milter's evaluations in the store (SQLite and PostgreSQL): aggregated per (UTC hour,
// policy domain, identity) with a count, the published rua/ruf kept, batches atomic, writers
// from several threads serialised. SQLite only (EvaluationsSqlite): the in-memory store, and
// the aggregate report's query served by an index (its query plan).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <thread>
#include <vector>

#include "store_fixtures.hpp"
#include "testsupport.hpp"

namespace mailreport::store {
namespace {

using test::count_rows;
using test::open_store;
using test::TempDir;

constexpr std::int64_t kHour = 1699999200;  // 2023-11-14 22:00:00 UTC, an hour boundary

auth::Evaluation sample_evaluation(std::int64_t time = kHour + 800,
                                   std::string source_ip = "192.0.2.1") {
  auth::Evaluation ev;
  ev.time = time;
  ev.source_ip = std::move(source_ip);
  ev.helo = "mail.sender.example";
  ev.envelope_from = "Bounce.Example.com";
  ev.envelope_to = "ours.example";
  ev.header_from = "example.com";
  ev.message_id = "<m1@example.com>";
  ev.spf = {{auth::SpfScope::MailFrom, auth::SpfResult::Pass, "bounce.example.com",
             "a@bounce.example.com", "matched ip4"},
            {auth::SpfScope::Helo, auth::SpfResult::None, "mail.sender.example",
             "mail.sender.example", ""}};
  ev.dkim = {{auth::DkimResult::Pass, "Example.com", "s1", "@example.com", "rsa-sha256", "", false,
              "abcdefgh", false, "", "", ""},
             {auth::DkimResult::Fail, "other.example", "s2", "@other.example", "ed25519-sha256",
              "body hash mismatch", false, "ijklmnop", false, "bodyhash", "", ""}};
  auto& d = ev.dmarc;
  d.result = auth::DmarcResult::Pass;
  d.header_from = "example.com";
  d.policy_domain = "Example.COM";
  d.org_domain = "example.com";
  d.discovery = auth::Discovery::TreeWalk;
  auth::DmarcRecord r;
  r.p = auth::Policy::Reject;
  r.sp = auth::Policy::Quarantine;
  r.adkim = auth::Alignment::Strict;
  r.pct = 50;
  r.fo = "1:d";
  r.psd = 'n';
  r.rua = {"mailto:dmarc@example.com!10m"};
  r.ruf = {"mailto:ruf@example.com"};
  r.text = "v=DMARC1; p=reject; sp=quarantine; adkim=s; pct=50; fo=1:d; psd=n; rua=...";
  d.record = r;
  d.applied_policy = auth::Policy::Reject;
  d.dkim_aligned = true;
  d.spf_aligned = false;
  d.disposition = auth::Disposition::None;
  d.overrides = {{auth::OverrideReason::SampledOut, "pct=50"}};
  return ev;
}

std::vector<EvaluationRow> list_all(Store& s, EvaluationFilter f = {}) {
  auto rows = s.list_evaluations(f);
  EXPECT_TRUE(rows) << rows.error().describe();
  return rows ? std::move(*rows) : std::vector<EvaluationRow>{};
}

Status record(Store& s, std::vector<auth::Evaluation> batch) {
  return s.record_evaluations(batch);
}

class Evaluations : public test::StoreTest {};

TEST_P(Evaluations, TheSameEvaluationTwiceIsOneRowCountedTwice) {
  auto s = open_store();
  ASSERT_TRUE(s);
  ASSERT_TRUE(record(*s, {sample_evaluation(kHour + 800)}));
  ASSERT_TRUE(record(*s, {sample_evaluation(kHour + 1200)}));
  auto rows = list_all(*s);
  ASSERT_EQ(rows.size(), 1u);
  const EvaluationRow& r = rows[0];
  EXPECT_EQ(r.interval_begin, kHour);
  EXPECT_EQ(r.first_seen, kHour + 800);
  EXPECT_EQ(r.last_seen, kHour + 1200);
  EXPECT_EQ(r.policy.domain, "example.com");
  EXPECT_EQ(r.policy.discovery_method, "treewalk");
  EXPECT_EQ(r.policy.p, "reject");
  EXPECT_EQ(r.policy.sp, "quarantine");
  EXPECT_EQ(r.policy.np, "");
  EXPECT_EQ(r.policy.adkim, "s");
  EXPECT_EQ(r.policy.aspf, "r");
  EXPECT_EQ(r.policy.pct, 50);
  EXPECT_EQ(r.policy.fo, "1:d");
  EXPECT_EQ(r.policy.testing, "n");
  EXPECT_EQ(r.psd, 'n');
  EXPECT_EQ(r.record.row.source_ip, "192.0.2.1");
  EXPECT_EQ(r.record.row.count, 2u);
  EXPECT_EQ(r.record.row.policy_evaluated.disposition, "none");
  EXPECT_EQ(r.record.row.policy_evaluated.dkim, "pass");
  EXPECT_EQ(r.record.row.policy_evaluated.spf, "fail");
  ASSERT_EQ(r.record.row.policy_evaluated.reason.size(), 1u);
  EXPECT_EQ(r.record.row.policy_evaluated.reason[0].type, "sampled_out");
  EXPECT_EQ(r.record.row.policy_evaluated.reason[0].comment, "pct=50");
  EXPECT_EQ(r.record.identifiers.header_from, "example.com");
  EXPECT_EQ(r.record.identifiers.envelope_from, "bounce.example.com");
  EXPECT_EQ(r.record.identifiers.envelope_to, "ours.example");
  ASSERT_EQ(r.record.auth_results.dkim.size(), 2u);
  EXPECT_EQ(r.record.auth_results.dkim[0].domain, "example.com");
  EXPECT_EQ(r.record.auth_results.dkim[0].selector, "s1");
  EXPECT_EQ(r.record.auth_results.dkim[0].result, "pass");
  EXPECT_EQ(r.record.auth_results.dkim[1].domain, "other.example");
  EXPECT_EQ(r.record.auth_results.dkim[1].result, "fail");
  EXPECT_EQ(r.record.auth_results.dkim[1].human_result, "body hash mismatch");
  ASSERT_EQ(r.record.auth_results.spf.size(), 2u);
  EXPECT_EQ(r.record.auth_results.spf[0].domain, "bounce.example.com");
  EXPECT_EQ(r.record.auth_results.spf[0].scope, "mfrom");
  EXPECT_EQ(r.record.auth_results.spf[0].result, "pass");
  EXPECT_EQ(r.record.auth_results.spf[1].scope, "helo");
  EXPECT_EQ(r.record.auth_results.spf[1].result, "none");
  EXPECT_EQ(count_rows("evaluations"), 1);
}

TEST_P(Evaluations, RepeatsInsideOneBatchAreSummed) {
  auto s = open_store();
  ASSERT_TRUE(s);
  std::vector<auth::Evaluation> batch(5, sample_evaluation());
  ASSERT_TRUE(record(*s, batch));
  auto rows = list_all(*s);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].record.row.count, 5u);
}

TEST_P(Evaluations, EachDifferenceInIdentityIsAnotherRow) {
  auto s = open_store();
  ASSERT_TRUE(s);
  auto other_ip = sample_evaluation(kHour + 800, "2001:db8::1");
  auto other_selector = sample_evaluation();
  other_selector.dkim[0].selector = "s9";
  auto other_result = sample_evaluation();
  other_result.dkim[1].reason = "key revoked";
  auto other_policy = sample_evaluation();
  other_policy.dmarc.record->p = auth::Policy::Quarantine;
  auto other_disposition = sample_evaluation();
  other_disposition.dmarc.disposition = auth::Disposition::Reject;
  ASSERT_TRUE(record(*s, {sample_evaluation(), other_ip, other_selector, other_result, other_policy,
                          other_disposition, sample_evaluation()}));
  auto rows = list_all(*s);
  ASSERT_EQ(rows.size(), 6u);
  std::uint64_t total = 0;
  for (const auto& r : rows) total += r.record.row.count;
  EXPECT_EQ(total, 7u);
  int ipv6 = 0;
  for (const auto& r : rows) ipv6 += r.record.row.source_ip == "2001:db8::1";
  EXPECT_EQ(ipv6, 1);
}

TEST_P(Evaluations, AnHourBoundarySplitsRows) {
  auto s = open_store();
  ASSERT_TRUE(s);
  ASSERT_TRUE(record(*s, {sample_evaluation(kHour + 3599), sample_evaluation(kHour + 3600),
                          sample_evaluation(kHour), sample_evaluation(kHour + 7199)}));
  auto rows = list_all(*s);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].interval_begin, kHour + 3600);  // newest hour first
  EXPECT_EQ(rows[0].record.row.count, 2u);
  EXPECT_EQ(rows[0].first_seen, kHour + 3600);
  EXPECT_EQ(rows[0].last_seen, kHour + 7199);
  EXPECT_EQ(rows[1].interval_begin, kHour);
  EXPECT_EQ(rows[1].record.row.count, 2u);
}

TEST_P(Evaluations, KeepsTheLatestPublishedRuaAndRufPerDomainAndHour) {
  auto s = open_store();
  ASSERT_TRUE(s);
  ASSERT_TRUE(record(*s, {sample_evaluation(kHour + 10)}));
  auto rows = list_all(*s);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].rua, std::vector<std::string>{"mailto:dmarc@example.com!10m"});
  EXPECT_EQ(rows[0].ruf, std::vector<std::string>{"mailto:ruf@example.com"});

  // The domain changes its rua during the hour: the newer one is kept, an older arrival (a
  // late batch) does not overwrite it; the next hour has its own.
  auto changed = sample_evaluation(kHour + 20);
  changed.dmarc.record->rua = {"mailto:a@example.com", "mailto:b@reports.example"};
  changed.dmarc.record->ruf = {};
  ASSERT_TRUE(record(*s, {changed}));
  ASSERT_TRUE(record(*s, {sample_evaluation(kHour + 15)}));
  ASSERT_TRUE(record(*s, {sample_evaluation(kHour + 3600)}));
  rows = list_all(*s);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].rua, std::vector<std::string>{"mailto:dmarc@example.com!10m"});
  EXPECT_EQ(rows[1].interval_begin, kHour);
  EXPECT_EQ(rows[1].record.row.count, 3u);
  EXPECT_EQ(rows[1].rua,
            (std::vector<std::string>{"mailto:a@example.com", "mailto:b@reports.example"}));
  EXPECT_TRUE(rows[1].ruf.empty());
}

TEST_P(Evaluations, WithoutRuaOrWithoutRecordNothingIsKept) {
  auto s = open_store();
  ASSERT_TRUE(s);
  auto no_rua = sample_evaluation();
  no_rua.dmarc.record->rua.clear();
  auto no_record = sample_evaluation();
  no_record.dmarc.record.reset();
  no_record.dmarc.result = auth::DmarcResult::None;
  ASSERT_TRUE(record(*s, {no_rua, no_record}));
  ASSERT_TRUE(record(*s, {}));
  EXPECT_TRUE(list_all(*s).empty());
  EXPECT_EQ(count_rows("evaluation_intervals"), 0);
}

TEST_P(Evaluations, FiltersByDomainTimeAndLimit) {
  auto s = open_store();
  ASSERT_TRUE(s);
  auto other = sample_evaluation(kHour + 5);
  other.dmarc.policy_domain = "other.example";
  ASSERT_TRUE(record(*s, {sample_evaluation(kHour + 1), sample_evaluation(kHour + 3601),
                          sample_evaluation(kHour + 7201), other}));
  EvaluationFilter f;
  f.domain = "EXAMPLE.com.";
  EXPECT_EQ(list_all(*s, f).size(), 3u);
  f.domain = "other.example";
  auto o = list_all(*s, f);
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].policy.domain, "other.example");
  f = {};
  f.since = kHour + 3600;
  EXPECT_EQ(list_all(*s, f).size(), 2u);
  f.until = kHour + 7200;
  auto mid = list_all(*s, f);
  ASSERT_EQ(mid.size(), 1u);
  EXPECT_EQ(mid[0].interval_begin, kHour + 3600);
  f = {};
  f.limit = 2;
  auto newest = list_all(*s, f);
  ASSERT_EQ(newest.size(), 2u);
  EXPECT_EQ(newest[0].interval_begin, kHour + 7200);
  EXPECT_EQ(newest[1].interval_begin, kHour + 3600);
}

TEST_P(Evaluations, ConcurrentBatchesFromThreadsAreAllCounted) {
  auto s = open_store();
  ASSERT_TRUE(s);
  constexpr int kThreads = 8;
  constexpr int kBatches = 25;
  constexpr int kPerBatch = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<auth::Evaluation> batch;
        for (int i = 0; i < kPerBatch; ++i) {
          // Five source addresses shared by every thread: the same rows are upserted at once.
          batch.push_back(
              sample_evaluation(kHour + b, "192.0.2." + std::to_string((t + i) % 5 + 1)));
        }
        if (!s->record_evaluations(batch)) ++failures;
        if (b % 5 == 0) (void)s->list_evaluations({});  // readers meanwhile
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto rows = list_all(*s);
  ASSERT_EQ(rows.size(), 5u);
  std::uint64_t total = 0;
  for (const auto& r : rows) total += r.record.row.count;
  EXPECT_EQ(total, static_cast<std::uint64_t>(kThreads * kBatches * kPerBatch));
}

TEST(EvaluationsSqlite, AnInMemoryStoreRecordsToo) {
  auto s = open_sqlite_store(test::options_for(":memory:"));
  ASSERT_TRUE(s) << s.error().describe();
  ASSERT_TRUE(record(**s, {sample_evaluation(), sample_evaluation()}));
  auto rows = list_all(**s);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].record.row.count, 2u);
}

// The aggregate report reads the summed rows of one policy domain over one UTC day: that must
// be a search of evaluations_identity, not a scan of the table.
TEST(EvaluationsSqlite, TheDailySumOfOneDomainUsesTheIdentityIndex) {
  TempDir dir;
  auto path = dir / "s.db";
  {
    auto s = open_store(path);
    ASSERT_TRUE(s);
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
  const char* sql =
      "EXPLAIN QUERY PLAN SELECT key, sum(count), min(first_seen), max(last_seen)"
      " FROM evaluations WHERE policy_domain = ?1 AND interval_begin >= ?2"
      " AND interval_begin < ?3 GROUP BY key";
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, sql, -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(raw);
  std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(st, &sqlite3_finalize);
  std::string plan;
  while (sqlite3_step(st) == SQLITE_ROW) {
    plan += reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
    plan += "\n";
  }
  EXPECT_NE(plan.find("USING INDEX evaluations_identity (policy_domain=? AND interval_begin>?"),
            std::string::npos)
      << plan;
  EXPECT_EQ(plan.find("SCAN evaluations"), std::string::npos) << plan;
}

INSTANTIATE_TEST_SUITE_P(Backends, Evaluations, test::kBothBackends, test::BackendName());

}  // namespace
}  // namespace mailreport::store
