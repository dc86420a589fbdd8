// The outbox pass for aggregate reports (issue 5), on a SQLite store in memory with reports
// committed as the builder commits them, DNS from local data only, the clock in the test's
// hands: external destination verification (same organization; external with and without a
// record; a replacement rua= on the same host and on another host; a DNS error retried),
// suppressed destinations, !size and max-size limits, TLS reports by mail and by HTTPS POST to
// a loopback server (500 then 200: retried, then sent; retries end 24 h after queueing), and
// submission through a fake sendmail.
#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <fstream>

#include "aggregate_test_support.hpp"
#include "https_test_server.hpp"

#include "mailreport/outbound/outbox_runner.hpp"
#include "mailreport/store/aggregate_payload.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "testsupport.hpp"

namespace mailreport::outbound {
namespace {

using namespace aggregate_test;

constexpr std::int64_t kNow = kEnd + 600;

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

class FakePoster final : public HttpsPoster {
 public:
  SubmitOutcome post(std::string_view url, std::string_view, std::string_view) override {
    urls.emplace_back(url);
    return {SubmitStatus::TempFail, "HTTP 503"};
  }
  std::vector<std::string> urls;
};

std::string header_of(const std::string& message, const std::string& name) {
  const auto at = message.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  const auto start = at + name.size() + 4;
  return message.substr(start, message.find("\r\n", start) - start);
}

class AggregateRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteOptions o;
    o.path = ":memory:";
    auto s = store::open_sqlite_store(o);
    ASSERT_TRUE(s) << s.error().describe();
    store_ = std::move(*s);
    config_ = std::make_shared<config::Config>(*config::Config::defaults());
    configure(*config_);
    config_->report.submit.max_age = std::chrono::hours(24 * 3);
    config_->report.dmarc_aggregate.sign.clear();
    config_->report.tls_aggregate.sign.clear();
  }

  // DNS: local data only; Organizational Domains from the public suffix list (no DNS).
  void dns(std::vector<std::string> local_data, std::vector<std::string> nxdomain = {}) {
    dns::ResolverOptions o;
    o.local_only = true;
    o.local_data = std::move(local_data);
    o.local_nxdomain = std::move(nxdomain);
    o.timeout = std::chrono::milliseconds(2000);
    auto r = dns::make_unbound_resolver(o, log_);
    ASSERT_TRUE(r) << r.error().describe();
    resolver_ = *r;
    auth::DmarcOptions d;
    d.discovery = auth::Discovery::Psl;
    dmarc_ = std::make_shared<const auth::DmarcEvaluator>(resolver_, d);
  }

  // Commits `report` with one delivery per URI (as the builder does); returns the outbox ids.
  std::vector<std::int64_t> queue(store::AggregateReport report,
                                  const std::vector<std::string>& uris,
                                  std::int64_t created = kEnd + 300) {
    store::AggregateBatch batch;
    batch.kind = report.kind;
    report.created_at = created;
    store::AggregateBatch::Item item;
    item.report = report;
    for (const auto& uri : uris) {
      store::OutboxEntry e;
      e.kind = report.kind;
      const bool https = uri.rfind("https:", 0) == 0;
      std::string address = https ? uri : uri.substr(7);
      std::uint64_t max_size = 0;
      if (auto bang = address.find('!'); bang != std::string::npos && !https) {
        max_size = std::stoull(address.substr(bang + 1));
        address = address.substr(0, bang);
      }
      e.recipient = address;
      e.reported_domain = report.policy_domain;
      e.created_at = created;
      e.next_attempt_at = created;
      store::AggregatePayload p;
      p.uri = uri;
      p.max_size = max_size;
      e.payload = store::to_json(p);
      item.deliveries.push_back(e);
    }
    batch.reports.push_back(item);
    auto ids = store_->commit_aggregate_batch(batch);
    EXPECT_TRUE(ids) << ids.error().describe();
    auto all = store_->list_outbox({});
    std::vector<std::int64_t> out;
    if (all) {
      for (const auto& e : *all) out.push_back(e.id);
    }
    return out;
  }

  std::unique_ptr<OutboxRunner> runner(Submitter& submitter) {
    auto r = std::make_unique<OutboxRunner>(config_, *store_, signers_, submitter, log_);
    AggregateSending a;
    a.resolver = resolver_;
    a.dmarc = dmarc_;
    a.https = poster_;
    r->set_aggregate_sending(std::move(a));
    return r;
  }

  OutboxPassStats pass(std::int64_t now) { return runner(submitter_)->run_once(now, 10); }

  std::vector<store::OutboxEntry> entries() {
    auto all = store_->list_outbox({});
    EXPECT_TRUE(all);
    return all ? *all : std::vector<store::OutboxEntry>{};
  }
  store::OutboxEntry only_entry() {
    auto all = entries();
    EXPECT_EQ(all.size(), 1u);
    return all.empty() ? store::OutboxEntry{} : all.front();
  }

  std::unique_ptr<store::Store> store_;
  std::shared_ptr<config::Config> config_;
  std::shared_ptr<dns::Resolver> resolver_;
  std::shared_ptr<const auth::DmarcEvaluator> dmarc_;
  std::shared_ptr<HttpsPoster> poster_;
  Signers signers_;
  FakeSubmitter submitter_;
  NullLogger log_;
};

TEST_F(AggregateRunnerTest, SameOrganizationIsSentWithoutVerificationRecord) {
  dns({});
  queue(dmarc_report(sample_dmarc()), {"mailto:dmarc-rua@mail.example.com"});
  auto st = pass(kNow);
  EXPECT_EQ(st.sent, 1u);
  ASSERT_EQ(submitter_.got.size(), 1u);
  const auto& got = submitter_.got[0];
  EXPECT_EQ(got.from, "noreply-dmarc@ours.example");
  EXPECT_EQ(got.recipient, "dmarc-rua@mail.example.com");
  EXPECT_EQ(header_of(got.message, "To"), "dmarc-rua@mail.example.com");
  auto e = only_entry();
  EXPECT_EQ(e.state, store::OutboxState::Sent);
  EXPECT_EQ(e.finished_at, kNow);
  ASSERT_FALSE(e.message_id.empty());
  EXPECT_EQ(header_of(got.message, "Message-Id"), "<" + e.message_id + ">");
  // Bounces find it by that Message-ID.
  auto found = store_->find_outbox_by_message_id(e.message_id);
  ASSERT_TRUE(found) << found.error().describe();
  EXPECT_EQ(found->id, e.id);
  EXPECT_EQ(pass(kNow + 60).sent, 0u);
}

TEST_F(AggregateRunnerTest, ExternalDestinationWithARecordIsSent) {
  dns({"example.com._report._dmarc.reports.example.net. 300 IN TXT \"v=DMARC1\""});
  queue(dmarc_report(sample_dmarc()), {"mailto:agg@reports.example.net"});
  EXPECT_EQ(pass(kNow).sent, 1u);
  ASSERT_EQ(submitter_.got.size(), 1u);
  EXPECT_EQ(submitter_.got[0].recipient, "agg@reports.example.net");
}

TEST_F(AggregateRunnerTest, ExternalDestinationWithoutARecordFailsAndIsNotSent) {
  dns({}, {"example.com._report._dmarc.spam-collector.example.org."});
  queue(dmarc_report(sample_dmarc()), {"mailto:x@spam-collector.example.org"});
  auto st = pass(kNow);
  EXPECT_EQ(st.failed, 1u);
  EXPECT_TRUE(submitter_.got.empty());
  auto e = only_entry();
  EXPECT_EQ(e.state, store::OutboxState::Failed);
  EXPECT_NE(e.last_error.find("not verified"), std::string::npos) << e.last_error;
}

TEST_F(AggregateRunnerTest, AReplacementOnTheSameHostIsUsed) {
  dns(
      {"example.com._report._dmarc.reports.example.net. 300 IN TXT \"v=DMARC1; "
       "rua=mailto:a@reports.example.net,mailto:b@reports.example.net\""});
  queue(dmarc_report(sample_dmarc()), {"mailto:agg@reports.example.net"});
  EXPECT_EQ(pass(kNow).sent, 1u);
  ASSERT_EQ(submitter_.got.size(), 1u);
  EXPECT_EQ(submitter_.got[0].recipient, "a@reports.example.net");
  // The replacement's second URI got an entry of its own, sent next (to itself: no chain).
  auto all = entries();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].recipient, "b@reports.example.net");
  EXPECT_EQ(all[1].created_at, all[0].created_at);
  EXPECT_EQ(pass(kNow).sent, 1u);
  ASSERT_EQ(submitter_.got.size(), 2u);
  EXPECT_EQ(submitter_.got[1].recipient, "b@reports.example.net");
  EXPECT_EQ(entries().size(), 2u);
}

TEST_F(AggregateRunnerTest, ASuppressedReplacementIsNotSent) {
  dns({"example.com._report._dmarc.reports.example.net. 300 IN TXT \"v=DMARC1; "
       "rua=mailto:a@reports.example.net\""});
  ASSERT_TRUE(store_->add_suppression("a@reports.example.net", "bounced", kEnd));
  queue(dmarc_report(sample_dmarc()), {"mailto:agg@reports.example.net"});
  EXPECT_EQ(pass(kNow).failed, 1u);
  EXPECT_TRUE(submitter_.got.empty());
  EXPECT_NE(only_entry().last_error.find("suppressed"), std::string::npos);
}

TEST_F(AggregateRunnerTest, AReplacementOnAnotherHostIsRefused) {
  dns(
      {"example.com._report._dmarc.reports.example.net. 300 IN TXT \"v=DMARC1; "
       "rua=mailto:grab@elsewhere.example.org\""});
  queue(dmarc_report(sample_dmarc()), {"mailto:agg@reports.example.net"});
  EXPECT_EQ(pass(kNow).failed, 1u);
  EXPECT_TRUE(submitter_.got.empty());
  EXPECT_NE(only_entry().last_error.find("another host"), std::string::npos)
      << only_entry().last_error;
}

TEST_F(AggregateRunnerTest, ADnsErrorDuringVerificationIsRetried) {
  dns({});  // local only: the verification name has no local answer → temporary error
  queue(dmarc_report(sample_dmarc()), {"mailto:agg@reports.example.net"});
  auto st = pass(kNow);
  EXPECT_EQ(st.retried, 1u);
  EXPECT_TRUE(submitter_.got.empty());
  auto e = only_entry();
  EXPECT_EQ(e.state, store::OutboxState::Queued);
  EXPECT_EQ(e.attempts, 1u);
  EXPECT_EQ(e.next_attempt_at, kNow + 60);
  EXPECT_NE(e.last_error.find("DNS"), std::string::npos) << e.last_error;
}

TEST_F(AggregateRunnerTest, ASuppressedDestinationIsSkipped) {
  dns({});
  ASSERT_TRUE(store_->add_suppression("rua@example.com", "bounced", kEnd));
  queue(dmarc_report(sample_dmarc()), {"mailto:rua@example.com", "mailto:other@example.com"});
  auto st = pass(kNow);
  EXPECT_EQ(st.failed, 1u);
  EXPECT_EQ(st.sent, 1u);
  ASSERT_EQ(submitter_.got.size(), 1u);
  EXPECT_EQ(submitter_.got[0].recipient, "other@example.com");
  auto all = entries();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].state, store::OutboxState::Failed);
  EXPECT_NE(all[0].last_error.find("suppressed"), std::string::npos) << all[0].last_error;
}

TEST_F(AggregateRunnerTest, SizeLimitsFromTheUriAndTheConfiguration) {
  dns({});
  // !size smaller than the report: not sent to that URI; the other URI gets it.
  queue(dmarc_report(sample_dmarc()), {"mailto:small@example.com!1000", "mailto:big@example.com"});
  auto st = pass(kNow);
  EXPECT_EQ(st.failed, 1u);
  EXPECT_EQ(st.sent, 1u);
  ASSERT_EQ(submitter_.got.size(), 1u);
  EXPECT_EQ(submitter_.got[0].recipient, "big@example.com");
  auto all = entries();
  EXPECT_NE(all[0].last_error.find("too large for small@example.com"), std::string::npos)
      << all[0].last_error;
  EXPECT_NE(all[0].last_error.find("!size 1000"), std::string::npos) << all[0].last_error;
  // report.dmarc.aggregate.max-size applies to every destination.
  config_->report.dmarc_aggregate.max_size = 1500;
  auto report = dmarc_report(sample_dmarc());
  report.report_id = "20251121.second";
  queue(report, {"mailto:big@example.com"});
  EXPECT_EQ(pass(kNow).failed, 1u);
  EXPECT_EQ(submitter_.got.size(), 1u);
  all = entries();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_NE(all[2].last_error.find("too large for report.dmarc.aggregate.max-size"),
            std::string::npos)
      << all[2].last_error;
}

TEST_F(AggregateRunnerTest, TlsReportsByMailCarryTheirHeaders) {
  dns({});
  queue(tls_report(sample_tls()), {"mailto:tlsrpt@example.com"});
  EXPECT_EQ(pass(kNow).sent, 1u);
  ASSERT_EQ(submitter_.got.size(), 1u);
  EXPECT_EQ(submitter_.got[0].from, "noreply-tls@ours.example");
  EXPECT_EQ(header_of(submitter_.got[0].message, "TLS-Report-Domain"), "example.com");
  EXPECT_EQ(only_entry().state, store::OutboxState::Sent);
}

TEST_F(AggregateRunnerTest, TlsReportsToHttpsAreRetriedThenPosted) {
  https_test::Server server({500, 200});
  if (!server.why_not.empty()) {
    if (test::running_in_ci()) FAIL() << server.why_not;
    GTEST_SKIP() << server.why_not;
  }
  HttpsPostOptions o;
  o.ca_file = server.ca_file();
  o.timeout = std::chrono::seconds(10);
  poster_ = make_https_poster(o);
  dns({});
  const auto report = tls_report(sample_tls());
  queue(report, {server.url()});
  auto st = pass(kNow);
  EXPECT_EQ(st.retried, 1u);
  auto e = only_entry();
  EXPECT_EQ(e.state, store::OutboxState::Queued);
  EXPECT_EQ(e.next_attempt_at, kNow + 60);
  EXPECT_NE(e.last_error.find("HTTP 500"), std::string::npos) << e.last_error;
  EXPECT_EQ(pass(kNow + 60).sent, 1u);
  e = only_entry();
  EXPECT_EQ(e.state, store::OutboxState::Sent);
  EXPECT_EQ(e.attempts, 2u);
  for (int i = 0; i < 2; ++i) {
    auto req = server.request(i);
    ASSERT_TRUE(req) << i;
    EXPECT_EQ(req->body, report.content);
    EXPECT_NE(req->head.find("Content-Type: application/tlsrpt+gzip"), std::string::npos);
  }
  EXPECT_FALSE(server.request(2));
  EXPECT_TRUE(submitter_.got.empty());
}

TEST_F(AggregateRunnerTest, HttpsRetriesEndADayAfterQueueing) {
  auto fake = std::make_shared<FakePoster>();
  poster_ = fake;
  dns({});
  const std::int64_t created = kEnd + 300;
  queue(tls_report(sample_tls()), {"https://tlsrpt.example.com/v1"}, created);
  std::int64_t now = created;
  for (int i = 0; i < 100; ++i) {
    pass(now);
    auto e = only_entry();
    if (e.state != store::OutboxState::Queued) {
      EXPECT_EQ(e.state, store::OutboxState::Failed);
      EXPECT_EQ(now, created + 86400);  // RFC 8460 §5.5: 24 h, the last attempt at the deadline
      EXPECT_NE(e.last_error.find("gave up"), std::string::npos) << e.last_error;
      break;
    }
    EXPECT_LE(e.next_attempt_at, created + 86400);
    now = e.next_attempt_at;
  }
  EXPECT_EQ(only_entry().state, store::OutboxState::Failed);
  EXPECT_GT(fake->urls.size(), 20u);
}

TEST_F(AggregateRunnerTest, DmarcReportsAreNotPostedToHttps) {
  poster_ = std::make_shared<FakePoster>();
  dns({});
  queue(dmarc_report(sample_dmarc()), {"https://collector.example.com/dmarc"});
  EXPECT_EQ(pass(kNow).failed, 1u);
  EXPECT_NE(only_entry().last_error.find("not a mailto URI"), std::string::npos);
}

TEST_F(AggregateRunnerTest, WithoutAggregateSendingEntriesWait) {
  queue(dmarc_report(sample_dmarc()), {"mailto:rua@example.com"});
  OutboxRunner plain(config_, *store_, signers_, submitter_, log_);
  EXPECT_EQ(plain.run_once(kNow, 10).retried, 1u);
  EXPECT_TRUE(submitter_.got.empty());
  auto e = only_entry();
  EXPECT_EQ(e.state, store::OutboxState::Queued);
  EXPECT_EQ(e.next_attempt_at, kNow + 3600);
}

TEST_F(AggregateRunnerTest, SubmittedThroughSendmail) {
  test::TempDir dir;
  const auto script = dir / "sendmail";
  {
    std::ofstream f(script);
    f << "#!/bin/sh\nprintf '%s\\n' \"$@\" > '" << (dir / "argv").string() << "'\ncat > '"
      << (dir / "stdin").string() << "'\nexit 0\n";
  }
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  config::SubmitConfig sc;
  sc.method = config::SubmitMethod::Sendmail;
  sc.sendmail_path = script;
  sc.timeout = std::chrono::seconds(10);
  auto submitter = make_submitter(sc);
  dns({});
  queue(dmarc_report(sample_dmarc()), {"mailto:rua@example.com"});
  EXPECT_EQ(runner(*submitter)->run_once(kNow, 10).sent, 1u);
  EXPECT_EQ(test::read_file(dir / "argv"),
            "-i\n-f\nnoreply-dmarc@ours.example\n--\nrua@example.com\n");
  const std::string in = test::read_file(dir / "stdin");
  EXPECT_NE(in.find("Subject: Report Domain: example.com Submitter: mx.ours.example"),
            std::string::npos)
      << in.substr(0, 600);
  EXPECT_EQ(in.find('\r'), std::string::npos);  // LF line ends for sendmail
  EXPECT_EQ(only_entry().state, store::OutboxState::Sent);
}

}  // namespace
}  // namespace mailreport::outbound
