// `mailreport outbox`, run as a real process against a store that the test fills the way the
// milter's writer and mailreport serve do (record_evaluations with failure reports, then
// claims and outcomes): the table, the JSON shape, and the --state and --kind filters.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mailreport/store/sqlite_store.hpp"
#include "process_util.hpp"
#include "testsupport.hpp"

namespace mailreport {
namespace {

using nlohmann::json;

constexpr std::int64_t kT0 = 1767268800;  // 2026-01-01 12:00:00 UTC

auth::Evaluation failing(std::int64_t time,
                         std::vector<std::pair<auth::FailureKind, std::string>> reports) {
  auth::Evaluation ev;
  ev.time = time;
  ev.source_ip = "192.0.2.1";
  ev.envelope_from = "example.com";
  ev.header_from = "example.com";
  ev.dmarc.result = auth::DmarcResult::Fail;
  ev.dmarc.policy_domain = "example.com";
  auth::DmarcRecord r;
  r.p = auth::Policy::Reject;
  r.ruf = {"mailto:ruf@example.com"};
  ev.dmarc.record = r;
  for (auto& [kind, rcpt] : reports) {
    auth::FailureReportRequest q;
    q.kind = kind;
    q.recipient = rcpt;
    q.reported_domain = "example.com";
    ev.failure_reports.push_back(q);
  }
  ev.original = "From: a@example.com\r\n\r\n";
  return ev;
}

class CliOutbox : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_ / "mailreport.toml")
        << "[store]\npath = \"" << (dir_ / "mailreport.db").string() << "\"\n";
  }

  std::unique_ptr<store::Store> open() {
    store::SqliteOptions o;
    o.path = dir_ / "mailreport.db";
    auto s = store::open_sqlite_store(o);
    EXPECT_TRUE(s) << s.error().describe();
    return s ? std::move(*s) : nullptr;
  }

  // Three reports: one sent, one failed, one queued after a temporary failure.
  void fill() {
    auto s = open();
    ASSERT_TRUE(s);
    std::vector<auth::Evaluation> batch{
        failing(kT0, {{auth::FailureKind::Dmarc, "ruf@example.com"},
                      {auth::FailureKind::Dkim, "ra@example.com"},
                      {auth::FailureKind::Spf, "spf-ra@example.com"}})};
    auto r = s->record_evaluations_counted(batch);
    ASSERT_TRUE(r) << r.error().describe();
    ASSERT_EQ(r->reports_queued, 3u);
    auto claimed = s->claim_outbox(kT0, 10, 60);
    ASSERT_TRUE(claimed);
    ASSERT_EQ(claimed->size(), 3u);
    ASSERT_TRUE(s->outbox_sent((*claimed)[0].id, kT0 + 5, "r1@ours.example"));
    ASSERT_TRUE(s->outbox_failed((*claimed)[1].id, kT0 + 6, "550 5.1.1 no such user"));
    ASSERT_TRUE(s->outbox_retry((*claimed)[2].id, kT0 + 65, "exit 75: try later"));
  }

  test::RunResult mr(std::vector<std::string> args) {
    std::vector<std::string> argv{test::cli_binary().string(), "-c",
                                  (dir_ / "mailreport.toml").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = test::run_command(argv);
    EXPECT_FALSE(r.timed_out);
    return r;
  }

  json mr_json(std::vector<std::string> args) {
    args.push_back("--json");
    auto r = mr(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_array()) << r.out;
    return j;
  }

  test::TempDir dir_;
};

TEST_F(CliOutbox, ListsEveryEntryNewestFirstAsATable) {
  fill();
  auto r = mr({"outbox"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = test::lines_of(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0].rfind("ID", 0), 0u) << lines[0];
  for (const char* col :
       {"KIND", "RECIPIENT", "DOMAIN", "STATE", "ATTEMPTS", "LAST ERROR", "MESSAGE-ID"}) {
    EXPECT_NE(lines[0].find(col), std::string::npos) << col;
  }
  EXPECT_NE(lines[1].find("spf-failure"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("queued"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("next 2026-01-01 12:01"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("exit 75: try later"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("dkim-failure"), std::string::npos) << lines[2];
  EXPECT_NE(lines[2].find("failed"), std::string::npos) << lines[2];
  EXPECT_NE(lines[2].find("550 5.1.1 no such user"), std::string::npos) << lines[2];
  EXPECT_NE(lines[3].find("dmarc-failure"), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find("ruf@example.com"), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find("sent"), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find("r1@ours.example"), std::string::npos) << lines[3];
}

TEST_F(CliOutbox, JsonHoldsEveryField) {
  fill();
  auto j = mr_json({"outbox"});
  ASSERT_EQ(j.size(), 3u) << j.dump();
  const json& sent = j[2];
  EXPECT_EQ(sent["kind"], "dmarc-failure");
  EXPECT_EQ(sent["recipient"], "ruf@example.com");
  EXPECT_EQ(sent["reported_domain"], "example.com");
  EXPECT_EQ(sent["state"], "sent");
  EXPECT_EQ(sent["attempts"], 1);
  EXPECT_EQ(sent["created_at"], kT0);
  EXPECT_EQ(sent["finished_at"], kT0 + 5);
  EXPECT_EQ(sent["message_id"], "r1@ours.example");
  EXPECT_FALSE(sent.contains("payload"));
  const json& queued = j[0];
  EXPECT_EQ(queued["state"], "queued");
  EXPECT_EQ(queued["next_attempt_at"], kT0 + 65);
  EXPECT_EQ(queued["last_error"], "exit 75: try later");
}

TEST_F(CliOutbox, FiltersByStateAndKind) {
  fill();
  auto sent = mr_json({"outbox", "--state", "sent"});
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["state"], "sent");
  auto failed = mr_json({"outbox", "--state", "failed"});
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]["kind"], "dkim-failure");
  auto spf = mr_json({"outbox", "--kind", "spf-failure"});
  ASSERT_EQ(spf.size(), 1u);
  EXPECT_EQ(spf[0]["recipient"], "spf-ra@example.com");
  EXPECT_EQ(mr_json({"outbox", "--limit", "2"}).size(), 2u);
}

TEST_F(CliOutbox, SaysSoWhenEmptyAndRefusesABadState) {
  { ASSERT_TRUE(open()); }
  auto r = mr({"outbox"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "no reports in the outbox\n");
  r = mr({"outbox", "--state", "lost"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_NE(r.err.find("queued, sent or failed"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace mailreport
