// The outbox pass with a fake Submitter and the clock in the test's hands: a queued failure
// report is built and sent (its Message-ID recorded), temporary failures back off 1 min
// doubling to 1 h and then succeed, permanent failures and unbuildable payloads fail at once,
// and report.submit.max-age ends the retries.
#include "mailreport/outbound/outbox_runner.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <fstream>
#include <vector>

#include "../auth/dkim_test_keys.hpp"

#include "mailreport/store/failure_payload.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "testsupport.hpp"

namespace mailreport::outbound {
namespace {

constexpr std::int64_t kT0 = 1700006400;

struct Submission {
  std::string from, recipient, message;
};

class FakeSubmitter final : public Submitter {
 public:
  SubmitOutcome submit(std::string_view from, std::string_view recipient,
                       std::string_view message) override {
    got.push_back({std::string(from), std::string(recipient), std::string(message)});
    if (outcomes.empty()) return {SubmitStatus::Sent, "250 ok"};
    auto o = outcomes.front();
    outcomes.pop_front();
    return o;
  }
  std::deque<SubmitOutcome> outcomes;  // then Sent
  std::vector<Submission> got;
};

auth::Evaluation failing_evaluation(std::int64_t time) {
  auth::Evaluation ev;
  ev.time = time;
  ev.source_ip = "192.0.2.1";
  ev.helo = "mail.example.com";
  ev.envelope_from = "example.com";
  ev.envelope_to = "ours.example";
  ev.header_from = "example.com";
  ev.message_id = "<m1@example.com>";
  ev.spf = {{auth::SpfScope::MailFrom, auth::SpfResult::Fail, "example.com", "a@example.com", ""}};
  ev.dmarc.result = auth::DmarcResult::Fail;
  ev.dmarc.header_from = "example.com";
  ev.dmarc.policy_domain = "example.com";
  ev.dmarc.org_domain = "example.com";
  auth::DmarcRecord r;
  r.p = auth::Policy::Reject;
  r.fo = "1";
  r.ruf = {"mailto:ruf@example.com"};
  r.text = "v=DMARC1; p=reject; fo=1; ruf=mailto:ruf@example.com";
  ev.dmarc.record = r;
  ev.dmarc.applied_policy = auth::Policy::Reject;
  ev.dmarc.disposition = auth::Disposition::Reject;
  ev.mail_from = "a@example.com";
  ev.rcpt_to = {"user@ours.example"};
  ev.authentication_results = "mx.ours.example; dmarc=fail header.from=example.com";
  ev.original =
      "From: A <a@example.com>\r\nTo: user@ours.example\r\nSubject: hello\r\n"
      "Date: Wed, 15 Nov 2023 00:00:00 +0000\r\nMessage-ID: <m1@example.com>\r\n\r\n";
  auth::FailureReportRequest q;
  q.kind = auth::FailureKind::Dmarc;
  q.recipient = "ruf@example.com";
  q.reported_domain = "example.com";
  q.auth_failure = "dmarc";
  q.identity_alignment = "none";
  q.delivery_result = "reject";
  ev.failure_reports = {q};
  return ev;
}

class OutboxRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteOptions o;
    o.path = ":memory:";
    auto s = store::open_sqlite_store(o);
    ASSERT_TRUE(s) << s.error().describe();
    store_ = std::move(*s);
    auto loaded = config::load_string(R"(
[report]
domain = "ours.example"
submitter = "mx.ours.example"
submit.max-age = "1d"
)");
    ASSERT_TRUE(loaded.config) << (loaded.problems.empty() ? "" : loaded.problems[0].message);
    config_ = std::make_shared<config::Config>(*loaded.config);
  }

  void queue(std::int64_t time) {
    std::vector<auth::Evaluation> batch{failing_evaluation(time)};
    auto r = store_->record_evaluations_counted(batch);
    ASSERT_TRUE(r) << r.error().describe();
    ASSERT_EQ(r->reports_queued, 1u);
  }

  std::int64_t enqueue(std::string kind, std::string payload, std::int64_t created = kT0) {
    store::OutboxEntry e;
    e.kind = std::move(kind);
    e.recipient = "ruf@example.com";
    e.reported_domain = "example.com";
    e.created_at = created;
    e.payload = std::move(payload);
    auto id = store_->enqueue_outbox(e);
    EXPECT_TRUE(id) << id.error().describe();
    return id ? *id : 0;
  }

  OutboxPassStats pass(std::int64_t now) {
    OutboxRunner runner(config_, *store_, signers_, submitter_, log_);
    return runner.run_once(now, 10);
  }

  store::OutboxEntry only_entry() {
    auto all = store_->list_outbox({});
    EXPECT_TRUE(all);
    EXPECT_EQ(all->size(), 1u);
    return all->empty() ? store::OutboxEntry{} : all->front();
  }

  std::unique_ptr<store::Store> store_;
  std::shared_ptr<config::Config> config_;
  Signers signers_;
  FakeSubmitter submitter_;
  NullLogger log_;
};

TEST_F(OutboxRunnerTest, SendsAQueuedFailureReportAndRecordsItsMessageId) {
  queue(kT0);
  auto st = pass(kT0 + 5);
  EXPECT_EQ(st.sent, 1u);
  ASSERT_EQ(submitter_.got.size(), 1u);
  EXPECT_EQ(submitter_.got[0].recipient, "ruf@example.com");
  EXPECT_EQ(submitter_.got[0].from, "noreply-dmarc@ours.example");
  EXPECT_NE(submitter_.got[0].message.find("feedback-report"), std::string::npos);
  auto e = only_entry();
  EXPECT_EQ(e.state, store::OutboxState::Sent);
  EXPECT_EQ(e.finished_at, kT0 + 5);
  EXPECT_EQ(e.attempts, 1u);
  EXPECT_FALSE(e.message_id.empty());
  EXPECT_NE(submitter_.got[0].message.find(e.message_id), std::string::npos);
  // Nothing left to do.
  EXPECT_EQ(pass(kT0 + 10).sent, 0u);
  EXPECT_EQ(submitter_.got.size(), 1u);
}

TEST_F(OutboxRunnerTest, SignsWithTheKindsSignatures) {
  test::TempDir dir;
  auto key = test::dkim::make_key(true);  // ed25519: quick to make
  std::ofstream(dir / "ed.pem") << key.private_pem;
  auto loaded = config::load_string(R"(
[report]
domain = "ours.example"
submitter = "mx.ours.example"
dmarc.sign = ["ed"]

[signature.ed]
private-key = ")" + (dir / "ed.pem").string() +
                                    R"("
domain = "ours.example"
selector = "mr"
algorithm = "ed25519-sha256"
)");
  ASSERT_TRUE(loaded.config) << (loaded.problems.empty() ? "" : loaded.problems[0].message);
  auto signers = Signers::load(*loaded.config);
  ASSERT_TRUE(signers) << signers.error().describe();
  queue(kT0);
  OutboxRunner runner(loaded.config, *store_, *signers, submitter_, log_);
  EXPECT_EQ(runner.run_once(kT0, 10).sent, 1u);
  ASSERT_EQ(submitter_.got.size(), 1u);
  const std::string& m = submitter_.got[0].message;
  EXPECT_EQ(m.rfind("DKIM-Signature:", 0), 0u) << m.substr(0, 200);
  auto sig_end = m.find("\r\n", m.find("b="));
  std::string sig = m.substr(0, sig_end);
  EXPECT_NE(sig.find("d=ours.example"), std::string::npos) << sig;
  EXPECT_NE(sig.find("s=mr"), std::string::npos) << sig;
  EXPECT_NE(m.find("Feedback-Type: auth-failure"), std::string::npos);
}

TEST_F(OutboxRunnerTest, TemporaryFailuresBackOffThenSend) {
  queue(kT0);
  submitter_.outcomes = {{SubmitStatus::TempFail, "exit 75: queue full"},
                         {SubmitStatus::TempFail, "exit 75: queue full"}};
  EXPECT_EQ(pass(kT0).retried, 1u);
  auto e = only_entry();
  EXPECT_EQ(e.state, store::OutboxState::Queued);
  EXPECT_EQ(e.attempts, 1u);
  EXPECT_EQ(e.next_attempt_at, kT0 + 60);  // 1 min
  EXPECT_EQ(e.last_error, "exit 75: queue full");
  EXPECT_EQ(pass(kT0 + 59).retried + pass(kT0 + 59).sent, 0u);  // not due yet
  EXPECT_EQ(pass(kT0 + 60).retried, 1u);
  EXPECT_EQ(only_entry().next_attempt_at, kT0 + 60 + 120);  // then 2 min
  EXPECT_EQ(pass(kT0 + 180).sent, 1u);
  e = only_entry();
  EXPECT_EQ(e.state, store::OutboxState::Sent);
  EXPECT_EQ(e.attempts, 3u);
  EXPECT_EQ(submitter_.got.size(), 3u);
}

TEST_F(OutboxRunnerTest, BackoffDoublesUpToAnHour) {
  queue(kT0);
  std::int64_t now = kT0;
  std::vector<std::int64_t> delays;
  for (int i = 0; i < 8; ++i) {
    submitter_.outcomes = {{SubmitStatus::TempFail, "busy"}};
    ASSERT_EQ(pass(now).retried, 1u) << i;
    std::int64_t next = only_entry().next_attempt_at;
    delays.push_back(next - now);
    now = next;
  }
  EXPECT_EQ(delays, (std::vector<std::int64_t>{60, 120, 240, 480, 960, 1920, 3600, 3600}));
}

TEST_F(OutboxRunnerTest, APermanentFailureIsFinal) {
  queue(kT0);
  submitter_.outcomes = {{SubmitStatus::PermFail, "550 5.1.1 no such user"}};
  auto st = pass(kT0);
  EXPECT_EQ(st.failed, 1u);
  auto e = only_entry();
  EXPECT_EQ(e.state, store::OutboxState::Failed);
  EXPECT_EQ(e.last_error, "550 5.1.1 no such user");
  EXPECT_EQ(e.finished_at, kT0);
  EXPECT_EQ(pass(kT0 + 7200).failed + pass(kT0 + 7200).sent, 0u);
  EXPECT_EQ(submitter_.got.size(), 1u);
}

TEST_F(OutboxRunnerTest, RetriesEndAtMaxAge) {
  queue(kT0);
  const std::int64_t day = 86400;
  std::int64_t now = kT0;
  int attempts = 0;
  for (;;) {
    submitter_.outcomes = {{SubmitStatus::TempFail, "busy"}};
    auto st = pass(now);
    ++attempts;
    auto e = only_entry();
    if (e.state != store::OutboxState::Queued) {
      EXPECT_EQ(st.failed, 1u);
      EXPECT_EQ(e.state, store::OutboxState::Failed);
      EXPECT_NE(e.last_error.find("gave up"), std::string::npos) << e.last_error;
      EXPECT_EQ(now, kT0 + day);  // the last attempt is at the deadline
      break;
    }
    EXPECT_LE(e.next_attempt_at, kT0 + day);
    now = e.next_attempt_at;
    ASSERT_LT(attempts, 100);
  }
  EXPECT_EQ(static_cast<int>(submitter_.got.size()), attempts);
}

TEST_F(OutboxRunnerTest, AnEntryOlderThanMaxAgeExpiresWithoutAnAttempt) {
  queue(kT0);
  auto st = pass(kT0 + 86400 + 1);
  EXPECT_EQ(st.failed, 1u);
  EXPECT_TRUE(submitter_.got.empty());
  auto e = only_entry();
  EXPECT_EQ(e.state, store::OutboxState::Failed);
  EXPECT_NE(e.last_error.find("expired"), std::string::npos) << e.last_error;
}

TEST_F(OutboxRunnerTest, AnUnreadablePayloadFailsAtOnce) {
  enqueue("dmarc-failure", "this is not JSON");
  auto st = pass(kT0);
  EXPECT_EQ(st.failed, 1u);
  EXPECT_TRUE(submitter_.got.empty());
  auto e = only_entry();
  EXPECT_EQ(e.state, store::OutboxState::Failed);
  EXPECT_NE(e.last_error.find("payload"), std::string::npos) << e.last_error;
}

TEST_F(OutboxRunnerTest, AReportLargerThanTheRecipientsSizeLimitIsNotSent) {
  auto ev = failing_evaluation(kT0);
  auto req = ev.failure_reports[0];
  req.max_size = 100;  // ruf=mailto:ruf@example.com!100
  ev.failure_reports.clear();
  enqueue("dmarc-failure", store::failure_payload_to_json(ev, req));
  EXPECT_EQ(pass(kT0).failed, 1u);
  EXPECT_TRUE(submitter_.got.empty());
  EXPECT_NE(only_entry().last_error.find("100"), std::string::npos);
}

TEST_F(OutboxRunnerTest, SendFalseSinceQueuedFailsTheEntry) {
  queue(kT0);
  config_->report.dmarc.send.reset();
  EXPECT_EQ(pass(kT0).failed, 1u);
  EXPECT_TRUE(submitter_.got.empty());
  EXPECT_NE(only_entry().last_error.find("send"), std::string::npos);
}

TEST_F(OutboxRunnerTest, AnUnknownKindIsPutBackUntouched) {
  enqueue("future-kind", "{}");
  auto st = pass(kT0);
  EXPECT_EQ(st.retried, 1u);
  EXPECT_TRUE(submitter_.got.empty());
  auto e = only_entry();
  EXPECT_EQ(e.state, store::OutboxState::Queued);
  EXPECT_EQ(e.next_attempt_at, kT0 + 3600);
}

TEST_F(OutboxRunnerTest, AStopFlagEndsThePassAfterTheCurrentEntry) {
  queue(kT0);
  queue(kT0 + 1);
  std::atomic<bool> stop{false};
  class StoppingSubmitter final : public Submitter {
   public:
    explicit StoppingSubmitter(std::atomic<bool>& s) : stop_(s) {}
    SubmitOutcome submit(std::string_view, std::string_view, std::string_view) override {
      ++calls;
      stop_ = true;  // SIGTERM arrives while the first report is being submitted
      return {SubmitStatus::Sent, "250"};
    }
    int calls = 0;

   private:
    std::atomic<bool>& stop_;
  } submitter(stop);
  OutboxRunner runner(config_, *store_, signers_, submitter, log_);
  runner.set_stop_flag(&stop);
  auto st = runner.run_once(kT0 + 5, 10);
  EXPECT_EQ(st.sent, 1u);
  EXPECT_EQ(submitter.calls, 1);
}

}  // namespace
}  // namespace mailreport::outbound
