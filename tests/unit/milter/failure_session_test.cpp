// The milter Session's failure-report path: a message failing DMARC for a domain with ruf= and
// fo=1 (and no rua=) goes to the queue with the planned request, MAIL FROM, the RCPTs, our A-R
// value and the original header block (CRLF), or the whole message cut at max-original with
// report.failure.include = "message"; reports (multipart/report, Auto-Submitted, report
// mailboxes) and our own report traffic get none; passing mail is not planned at all. Real
// verifiers on the libunbound resolver answering from local data only.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "../auth/dkim_test_keys.hpp"
#include "mailreport/milter/environment.hpp"
#include "mailreport/milter/session.hpp"

namespace mailreport::milter {
namespace {

using test::dkim::TestMessage;

constexpr std::int64_t kNow = 1763719200;
constexpr const char* kOurId = "mx.receiver.example";

class NullActions final : public Actions {
 public:
  Status add_header(std::string_view, std::string_view) override { return {}; }
  Status insert_header(int, std::string_view, std::string_view) override { return {}; }
  Status change_header(std::string_view, int, std::string_view) override { return {}; }
  Status quarantine(std::string_view) override { return {}; }
  Status set_reply(std::string_view, std::string_view, std::string_view) override { return {}; }
};

class FakeQueue final : public EvaluationQueue {
 public:
  bool push(auth::Evaluation e) override {
    pushed.push_back(std::move(e));
    return true;
  }
  std::vector<auth::Evaluation> pushed;
};

class MapMacros final : public Macros {
 public:
  std::optional<std::string> get(std::string_view name) const override {
    if (name == "i") return "QID7";
    return std::nullopt;
  }
};

class FailureSession : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dns::ResolverOptions o;
    o.local_only = true;
    o.local_data = {
        R"(example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all")",
        R"(_dmarc.example.com. 300 IN TXT "v=DMARC1; p=none; fo=1; ruf=mailto:ruf@example.com")",
        R"(passing.example. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all")",
        R"(_dmarc.passing.example. 300 IN TXT "v=DMARC1; p=none; fo=0; ruf=mailto:ruf@passing.example")",
    };
    o.local_nxdomain = {"_dmarc.example.", "_dmarc.com.", "_report._domainkey.example.com."};
    o.timeout = std::chrono::milliseconds(1000);
    auto r = dns::make_unbound_resolver(o, log_);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    resolver_ = *r;
  }
  static void TearDownTestSuite() { resolver_.reset(); }

  void configure(const std::string& extra = "") {
    auto loaded = config::load_string(
        "[report]\ndomain = \"receiver.example\"\n"
        "[report.analysis]\naddresses = [\"dmarc@*\"]\n" +
        extra + "\n[milter]\nauthserv-id = \"" + std::string(kOurId) + "\"\n");
    ASSERT_TRUE(loaded.config) << (loaded.problems.empty() ? "" : loaded.problems[0].describe());
    auto env = std::make_shared<Environment>();
    env->config = loaded.config;
    env->resolver = resolver_;
    env->spf = *auth::SpfVerifier::create(resolver_, kOurId, log_);
    env->dkim = *auth::DkimVerifier::create(resolver_, log_);
    env->dmarc = std::make_shared<const auth::DmarcEvaluator>(resolver_);
    env->failures =
        std::make_shared<const auth::FailurePlanner>(resolver_, loaded.config, nullptr, env->dmarc);
    env->now = [] { return kNow; };
    env_ = env;
  }

  void SetUp() override { configure(); }

  static TestMessage message(const std::string& from_domain = "example.com") {
    TestMessage m = test::dkim::sample_message(from_domain);
    return m;
  }

  // One message from 198.51.100.7 (not in example.com's SPF), MAIL FROM alice@<domain>.
  const std::optional<auth::Evaluation>& deliver(
      const TestMessage& m, const std::string& mail_from = "<alice@example.com>",
      const std::string& ip = "198.51.100.7") {
    session_ = std::make_unique<Session>(env_, actions_, queue_, log_);
    session_->connect("client.example", ip, MapMacros{});
    session_->helo("client.example");
    std::vector<std::string> from = {mail_from};
    session_->envfrom(from, MapMacros{});
    for (const char* rcpt : {"<bob@receiver.example>", "<carol@receiver.example>"}) {
      std::vector<std::string> args = {rcpt};
      session_->envrcpt(args);
    }
    for (const auto& [name, value] : m.headers) {
      std::string v;
      for (char c : value) {
        if (c != '\r') v += c;  // Postfix joins folded lines with "\n"
      }
      session_->header(name, v);
    }
    session_->eoh();
    for (std::size_t i = 0; i < m.body.size(); i += 100) {
      std::string_view part = std::string_view(m.body).substr(i, 100);
      session_->body({part.data(), part.size()});
    }
    session_->eom(MapMacros{});
    return session_->last_evaluation();
  }

  static inline NullLogger log_;
  static inline std::shared_ptr<dns::Resolver> resolver_;
  std::shared_ptr<const Environment> env_;
  NullActions actions_;
  FakeQueue queue_;
  std::unique_ptr<Session> session_;
};

TEST_F(FailureSession, DmarcFailureWithRufIsQueuedWithItsRequest) {
  const auto& ev = deliver(message());
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->dmarc.result, auth::DmarcResult::Fail);
  // No rua=: recorded for the failure report alone.
  ASSERT_EQ(queue_.pushed.size(), 1u);
  const auth::Evaluation& q = queue_.pushed.front();
  ASSERT_EQ(q.failure_reports.size(), 1u);
  const auth::FailureReportRequest& r = q.failure_reports.front();
  EXPECT_EQ(r.kind, auth::FailureKind::Dmarc);
  EXPECT_EQ(r.recipient, "ruf@example.com");
  EXPECT_EQ(r.reported_domain, "example.com");
  EXPECT_EQ(r.auth_failure, "dmarc");
  EXPECT_EQ(r.identity_alignment, "dkim, spf");
  EXPECT_EQ(r.delivery_result, "delivered");  // p=none
  EXPECT_EQ(r.spf_record, "v=spf1 ip4:192.0.2.0/24 -all");
  EXPECT_EQ(r.limit_count, 1u);  // report.dmarc.send default "1/1d"
  EXPECT_EQ(r.limit_period, 86400);

  EXPECT_EQ(q.mail_from, "alice@example.com");
  EXPECT_EQ(q.rcpt_to,
            (std::vector<std::string>{"bob@receiver.example", "carol@receiver.example"}));
  EXPECT_NE(q.authentication_results.find("dmarc=fail"), std::string::npos)
      << q.authentication_results;
  EXPECT_EQ(q.authentication_results.rfind(kOurId, 0), 0u) << q.authentication_results;
  // The header block as received, CRLF, folds kept; no body by default (include = headers).
  EXPECT_EQ(q.original,
            "From: Alice <alice@example.com>\r\nTo: bob@receiver.example\r\n"
            "Subject: A folded\r\n\tsubject line\r\nDate: Fri, 21 Nov 2025 10:00:00 +0000\r\n"
            "Message-ID: <1234@example.com>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n");
  EXPECT_FALSE(q.original_truncated);
}

TEST_F(FailureSession, WholeMessageCutAtMaxOriginal) {
  configure("[report.failure]\ninclude = \"message\"\nmax-original = \"1KB\"");
  TestMessage m = message();
  deliver(m);
  ASSERT_EQ(queue_.pushed.size(), 1u);
  const auth::Evaluation& q = queue_.pushed.front();
  EXPECT_FALSE(q.original_truncated);
  EXPECT_EQ(q.original.substr(q.original.size() - m.body.size() - 4), "\r\n\r\n" + m.body);

  m.body = std::string(3000, 'x') + "\r\n";
  deliver(m);
  ASSERT_EQ(queue_.pushed.size(), 2u);
  EXPECT_EQ(queue_.pushed.back().original.size(), 1024u);
  EXPECT_TRUE(queue_.pushed.back().original_truncated);
}

TEST_F(FailureSession, ReportsGetNoReports) {
  TestMessage report = message();
  report.headers.back() = {"Content-Type",
                           "multipart/report; report-type=feedback-report;\r\n\tboundary=\"b\""};
  auto ev = deliver(report);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->dmarc.result, auth::DmarcResult::Fail);
  EXPECT_TRUE(ev->failure_reports.empty());
  EXPECT_TRUE(queue_.pushed.empty());  // no rua= and nothing to report

  TestMessage autoreply = message();
  autoreply.headers.emplace_back("Auto-Submitted", "auto-replied (vacation)");
  EXPECT_TRUE(deliver(autoreply)->failure_reports.empty());
  TestMessage not_auto = message();
  not_auto.headers.emplace_back("Auto-Submitted", "no");
  EXPECT_EQ(deliver(not_auto)->failure_reports.size(), 1u);
}

TEST_F(FailureSession, NothingAboutOurOwnReportTraffic) {
  // report.dmarc.from-address defaults to noreply-dmarc@ + report.domain.
  EXPECT_TRUE(deliver(message(), "<noreply-dmarc@receiver.example>")->failure_reports.empty());
  TestMessage ours = message();
  ours.headers.front() = {"From", "Report Subsystem <NoReply-DMARC@receiver.example>"};
  EXPECT_TRUE(deliver(ours)->failure_reports.empty());
}

TEST_F(FailureSession, SendFalseMeansNoRequestAndNoRecord) {
  configure("[report.dmarc]\nsend = false");
  const auto& ev = deliver(message());
  ASSERT_TRUE(ev);
  EXPECT_TRUE(ev->failure_reports.empty());
  EXPECT_TRUE(queue_.pushed.empty());
}

TEST_F(FailureSession, PassingMailIsNotPlanned) {
  // SPF passes aligned: DMARC passes, fo=0 asks for nothing.
  const auto& ev = deliver(message("passing.example"), "<a@passing.example>", "192.0.2.10");
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->dmarc.result, auth::DmarcResult::Pass);
  EXPECT_TRUE(ev->failure_reports.empty());
  EXPECT_TRUE(ev->original.empty());
  EXPECT_TRUE(queue_.pushed.empty());
}

TEST_F(FailureSession, TheEnvironmentHoldsAPlanner) {
  auto loaded = config::load_string("[dns]\nlocal-only = true\n");
  ASSERT_TRUE(loaded.config);
  auto made = make_environment(loaded.config, log_);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  EXPECT_TRUE((*made)->failures);
}

}  // namespace
}  // namespace mailreport::milter
