// The store's outbox (SQLite and PostgreSQL): failure reports queued with their evaluations
// after the per-recipient rate limit (fixed windows, kept across reopening), claims with
// leases, the retry / sent / failed transitions, list filters. SQLite only (OutboxSqlite):
// migration 4 on a migration-3 store.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "mailreport/store/failure_payload.hpp"
#include "store_fixtures.hpp"
#include "testsupport.hpp"

namespace mailreport::store {
namespace {

using test::count_rows;
using test::open_store;
using test::TempDir;

constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kT0 = 1700006400;  // 2023-11-15 00:00:00 UTC, a day boundary

auth::FailureReportRequest dmarc_request(std::string recipient = "ruf@example.com",
                                         std::uint32_t count = 1, std::int64_t period = kDay) {
  auth::FailureReportRequest r;
  r.kind = auth::FailureKind::Dmarc;
  r.recipient = std::move(recipient);
  r.reported_domain = "Example.COM";
  r.auth_failure = "dmarc";
  r.identity_alignment = "none";
  r.delivery_result = "reject";
  r.limit_count = count;
  r.limit_period = period;
  return r;
}

// A failing evaluation with a DMARC record; `rua` false: the record has no rua=.
auth::Evaluation failing(std::int64_t time, std::vector<auth::FailureReportRequest> reports,
                         bool rua = true) {
  auth::Evaluation ev;
  ev.time = time;
  ev.source_ip = "192.0.2.1";
  ev.envelope_from = "example.com";
  ev.envelope_to = "ours.example";
  ev.header_from = "example.com";
  ev.message_id = "<m@example.com>";
  ev.spf = {{auth::SpfScope::MailFrom, auth::SpfResult::Fail, "example.com", "a@example.com", ""}};
  ev.dmarc.result = auth::DmarcResult::Fail;
  ev.dmarc.header_from = "example.com";
  ev.dmarc.policy_domain = "example.com";
  auth::DmarcRecord r;
  r.p = auth::Policy::Reject;
  r.fo = "1";
  if (rua) r.rua = {"mailto:rua@example.com"};
  r.ruf = {"mailto:ruf@example.com"};
  ev.dmarc.record = r;
  ev.dmarc.disposition = auth::Disposition::Reject;
  ev.failure_reports = std::move(reports);
  ev.mail_from = "a@example.com";
  ev.rcpt_to = {"user@ours.example"};
  ev.original = "From: a@example.com\r\nSubject: hi\r\n\r\n";
  return ev;
}

RecordStats record(Store& s, std::vector<auth::Evaluation> batch) {
  auto r = s.record_evaluations_counted(batch);
  EXPECT_TRUE(r) << r.error().describe();
  return r ? *r : RecordStats{};
}

OutboxFilter filter(std::optional<OutboxState> state = std::nullopt, std::string kind = "",
                    std::int64_t after_id = 0, std::size_t limit = 0, bool with_payload = false) {
  OutboxFilter f;
  f.state = state;
  f.kind = std::move(kind);
  f.after_id = after_id;
  f.limit = limit;
  f.with_payload = with_payload;
  return f;
}

std::vector<OutboxEntry> list(Store& s, OutboxFilter f = {}) {
  auto r = s.list_outbox(f);
  EXPECT_TRUE(r) << r.error().describe();
  return r ? std::move(*r) : std::vector<OutboxEntry>{};
}

class Outbox : public test::StoreTest {};

TEST_P(Outbox, RateLimitOnePerDayQueuesOneOfThreeAndTheNextWindowAnother) {
  auto s = open_store();
  ASSERT_TRUE(s);
  // Three failures in the same day: send = "1/1d" gives one report.
  auto st =
      record(*s, {failing(kT0 + 10, {dmarc_request()}), failing(kT0 + 20, {dmarc_request()})});
  EXPECT_EQ(st.reports_queued, 1u);
  EXPECT_EQ(st.reports_limited, 1u);
  EXPECT_EQ(st.rows, 2u);
  st = record(*s, {failing(kT0 + kDay - 1, {dmarc_request()})});
  EXPECT_EQ(st.reports_queued, 0u);
  EXPECT_EQ(st.reports_limited, 1u);
  ASSERT_EQ(list(*s).size(), 1u);
  // The next window (the next UTC day) allows another.
  st = record(*s, {failing(kT0 + kDay, {dmarc_request()})});
  EXPECT_EQ(st.reports_queued, 1u);
  auto all = list(*s);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].created_at, kT0 + 10);
  EXPECT_EQ(all[1].created_at, kT0 + kDay);
  // Another recipient, or another kind to the same one, has its own counter.
  auto dkim = dmarc_request();
  dkim.kind = auth::FailureKind::Dkim;
  st = record(*s, {failing(kT0 + 30, {dmarc_request("other@example.net"), dkim})});
  EXPECT_EQ(st.reports_queued, 2u);
  EXPECT_EQ(st.reports_limited, 0u);
}

TEST_P(Outbox, LimitCountZeroIsUnlimitedAndNToAPeriodAllowsN) {
  auto s = open_store();
  ASSERT_TRUE(s);
  std::vector<auth::Evaluation> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(failing(kT0 + i, {dmarc_request("a@x.example", 0)}));
  for (int i = 0; i < 5; ++i) {
    batch.push_back(failing(kT0 + i, {dmarc_request("b@x.example", 3, 3600)}));
  }
  auto st = record(*s, batch);
  EXPECT_EQ(st.reports_queued, 8u);
  EXPECT_EQ(st.reports_limited, 2u);
  OutboxFilter f;
  f.kind = "dmarc-failure";
  EXPECT_EQ(list(*s, f).size(), 8u);
}

TEST_P(Outbox, CountersSurviveReopeningTheStore) {
  {
    auto s = open_store();
    ASSERT_TRUE(s);
    EXPECT_EQ(record(*s, {failing(kT0 + 5, {dmarc_request()})}).reports_queued, 1u);
  }
  auto s = open_store();
  ASSERT_TRUE(s);
  auto st = record(*s, {failing(kT0 + 50, {dmarc_request()})});
  EXPECT_EQ(st.reports_queued, 0u);
  EXPECT_EQ(st.reports_limited, 1u);
  EXPECT_EQ(count_rows("outbox_rate"), 1);
}

TEST_P(Outbox, ReportsAreQueuedAlsoWithoutRuaButRowsAreNot) {
  auto s = open_store();
  ASSERT_TRUE(s);
  auto st = record(*s, {failing(kT0, {dmarc_request()}, /*rua=*/false)});
  EXPECT_EQ(st.rows, 0u);
  EXPECT_EQ(st.reports_queued, 1u);
  EXPECT_EQ(count_rows("evaluations"), 0);
  auto all = list(*s, filter(std::nullopt, "", 0, 0, true));
  ASSERT_EQ(all.size(), 1u);
  const auto& e = all[0];
  EXPECT_EQ(e.kind, "dmarc-failure");
  EXPECT_EQ(e.recipient, "ruf@example.com");
  EXPECT_EQ(e.reported_domain, "example.com");
  EXPECT_EQ(e.state, OutboxState::Queued);
  EXPECT_EQ(e.attempts, 0u);
  EXPECT_EQ(e.next_attempt_at, kT0);
  auto p = failure_payload_from_json(e.payload);
  ASSERT_TRUE(p) << p.error().describe();
  EXPECT_EQ(p->request.recipient, "ruf@example.com");
  EXPECT_EQ(p->evaluation.original, "From: a@example.com\r\nSubject: hi\r\n\r\n");
  EXPECT_TRUE(p->evaluation.failure_reports.empty());
}

TEST_P(Outbox, ClaimLeasesDueEntriesOnce) {
  auto s = open_store();
  ASSERT_TRUE(s);
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 3; ++i) {
    OutboxEntry e;
    e.kind = "dmarc-failure";
    e.recipient = "r" + std::to_string(i) + "@example.com";
    e.reported_domain = "example.com";
    e.created_at = kT0 + i;
    e.payload = "{}";
    auto id = s->enqueue_outbox(e);
    ASSERT_TRUE(id) << id.error().describe();
    ids.push_back(*id);
  }
  // Not yet due.
  auto none = s->claim_outbox(kT0 - 1, 10, 300);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  auto first = s->claim_outbox(kT0 + 100, 2, 300);
  ASSERT_TRUE(first) << first.error().describe();
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].id, ids[0]);
  EXPECT_EQ((*first)[1].id, ids[1]);
  EXPECT_EQ((*first)[0].payload, "{}");
  EXPECT_EQ((*first)[0].next_attempt_at, kT0 + 400);
  // The leased ones are not claimed again until the lease runs out.
  auto second = s->claim_outbox(kT0 + 100, 10, 300);
  ASSERT_TRUE(second);
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].id, ids[2]);
  auto after_lease = s->claim_outbox(kT0 + 400, 10, 300);
  ASSERT_TRUE(after_lease);
  EXPECT_EQ(after_lease->size(), 3u);
}

TEST_P(Outbox, ClaimsFromTwoStoresOnOneDatabaseNeverOverlap) {
  auto a = open_store();
  auto b = open_store();
  ASSERT_TRUE(a && b);
  for (int i = 0; i < 40; ++i) {
    OutboxEntry e;
    e.kind = "spf-failure";
    e.recipient = "r@example.com";
    e.created_at = kT0;
    e.payload = "{}";
    ASSERT_TRUE(a->enqueue_outbox(e));
  }
  std::vector<std::int64_t> got_a, got_b;
  std::thread ta([&] {
    for (int i = 0; i < 20; ++i) {
      auto c = a->claim_outbox(kT0, 3, 600);
      ASSERT_TRUE(c) << c.error().describe();
      for (auto& e : *c) got_a.push_back(e.id);
    }
  });
  std::thread tb([&] {
    for (int i = 0; i < 20; ++i) {
      auto c = b->claim_outbox(kT0, 3, 600);
      ASSERT_TRUE(c) << c.error().describe();
      for (auto& e : *c) got_b.push_back(e.id);
    }
  });
  ta.join();
  tb.join();
  std::vector<std::int64_t> all = got_a;
  all.insert(all.end(), got_b.begin(), got_b.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all.size(), 40u);
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "an entry claimed twice";
}

TEST_P(Outbox, RetrySentAndFailedTransitions) {
  auto s = open_store();
  ASSERT_TRUE(s);
  record(*s, {failing(kT0, {dmarc_request("a@x.example", 0), dmarc_request("b@x.example", 0),
                            dmarc_request("c@x.example", 0)})});
  auto claimed = s->claim_outbox(kT0, 10, 300);
  ASSERT_TRUE(claimed);
  ASSERT_EQ(claimed->size(), 3u);
  std::int64_t a = (*claimed)[0].id, b = (*claimed)[1].id, c = (*claimed)[2].id;

  ASSERT_TRUE(s->outbox_retry(a, kT0 + 60, "451 4.3.0 try later"));
  ASSERT_TRUE(s->outbox_sent(b, kT0 + 1, "r1@ours.example"));
  ASSERT_TRUE(s->outbox_failed(c, kT0 + 2, "550 5.1.1 no such user"));
  // Finished entries take no further outcome.
  auto again = s->outbox_sent(b, kT0 + 3, "r2@ours.example");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::NotFound);
  EXPECT_FALSE(s->outbox_retry(c, kT0 + 60, "x"));

  auto queued = list(*s, filter(OutboxState::Queued));
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(queued[0].id, a);
  EXPECT_EQ(queued[0].attempts, 1u);
  EXPECT_EQ(queued[0].next_attempt_at, kT0 + 60);
  EXPECT_EQ(queued[0].last_error, "451 4.3.0 try later");
  EXPECT_TRUE(queued[0].payload.empty());  // not asked for

  auto sent = list(*s, filter(OutboxState::Sent));
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].id, b);
  EXPECT_EQ(sent[0].finished_at, kT0 + 1);
  EXPECT_EQ(sent[0].message_id, "r1@ours.example");
  EXPECT_EQ(sent[0].attempts, 1u);

  auto failed = list(*s, filter(OutboxState::Failed));
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].id, c);
  EXPECT_EQ(failed[0].last_error, "550 5.1.1 no such user");

  // The retried entry is due again at its time, not before.
  auto early = s->claim_outbox(kT0 + 59, 10, 300);
  ASSERT_TRUE(early);
  EXPECT_TRUE(early->empty());
  auto due = s->claim_outbox(kT0 + 60, 10, 300);
  ASSERT_TRUE(due);
  ASSERT_EQ(due->size(), 1u);
  ASSERT_TRUE(s->outbox_sent(a, kT0 + 61, "r3@ours.example"));
  sent = list(*s, filter(OutboxState::Sent));
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].id, a);
  EXPECT_EQ(sent[0].attempts, 2u);  // one retry, then sent
}

TEST_P(Outbox, ListFiltersPagesAndLimits) {
  auto s = open_store();
  ASSERT_TRUE(s);
  auto spf = dmarc_request("s@x.example", 0);
  spf.kind = auth::FailureKind::Spf;
  record(*s,
         {failing(kT0, {dmarc_request("a@x.example", 0), spf, dmarc_request("b@x.example", 0)})});
  EXPECT_EQ(list(*s).size(), 3u);
  auto spf_only = list(*s, filter(std::nullopt, "spf-failure"));
  ASSERT_EQ(spf_only.size(), 1u);
  EXPECT_EQ(spf_only[0].recipient, "s@x.example");
  EXPECT_EQ(list(*s, filter(OutboxState::Failed)).size(), 0u);
  auto page = list(*s, filter(std::nullopt, "", 0, 2));
  ASSERT_EQ(page.size(), 2u);
  auto rest = list(*s, filter(std::nullopt, "", page.back().id));
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].recipient, "b@x.example");
}

TEST(OutboxSqlite, MigrationFourOnAMigrationThreeStore) {
  TempDir dir;
  auto path = dir / "s.db";
  {
    auto s = open_store(path);
    ASSERT_TRUE(s);
    record(*s, {failing(kT0, {})});
  }
  {
    // Turn the store back to migration 3 (undoing 5 first).
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(raw,
                           (std::string(test::kUndoMigration5) +
                            "DROP TABLE outbox; DROP TABLE outbox_rate;"
                            " DELETE FROM schema_version WHERE version = 4")
                               .c_str(),
                           nullptr, nullptr, &err),
              SQLITE_OK)
        << err;
  }
  EXPECT_EQ(count_rows(path, "sqlite_schema", "name IN ('outbox', 'outbox_rate')"), 0);
  auto s = open_store(path);
  ASSERT_TRUE(s);
  EXPECT_EQ(count_rows(path, "schema_version"), sqlite_schema_version());
  EXPECT_EQ(count_rows(path, "sqlite_schema",
                       "name IN ('outbox', 'outbox_rate', 'outbox_due', 'outbox_rate_end')"),
            4);
  EXPECT_EQ(count_rows(path, "evaluations"), 1);
  EXPECT_EQ(record(*s, {failing(kT0, {dmarc_request()})}).reports_queued, 1u);
  EXPECT_EQ(count_rows(path, "evaluations", "count = 2"), 1);
}

TEST_P(Outbox, AnEvaluationWithoutATimeIsQueuedAsOfNow) {
  auto s = open_store();
  ASSERT_TRUE(s);
  auto before = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  record(*s, {failing(0, {dmarc_request()})});
  auto all = list(*s);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_GE(all[0].created_at, before);
  EXPECT_EQ(all[0].next_attempt_at, all[0].created_at);
}

TEST(OutboxStates, NamesRoundTrip) {
  for (auto st : {OutboxState::Queued, OutboxState::Sent, OutboxState::Failed}) {
    EXPECT_EQ(outbox_state_from_string(to_string(st)), st);
  }
  EXPECT_FALSE(outbox_state_from_string("bogus"));
}

INSTANTIATE_TEST_SUITE_P(Backends, Outbox, test::kBothBackends, test::BackendName());

}  // namespace
}  // namespace mailreport::store
