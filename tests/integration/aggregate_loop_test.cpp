// The whole aggregate-report loop (issue 5), with the real programs (fixture:
// postfix_loop.hpp):
//
//   1. Four messages reach Postfix's smtpd and pass through mailreport-milter: three From
//      sender.test, whose DMARC record asks for aggregate reports at rua@reports.test (another
//      organisation, which authorises it with sender.test._report._dmarc.reports.test), two of
//      them passing DMARC by aligned SPF and one failing (its envelope sender is another
//      domain); one From bounce.test, whose rua is a mailbox that does not exist.
//   2. `mailreport send-reports --now` closes the current interval, builds one report per
//      policy domain, DKIM-signs them as mx.test and submits them through Postfix.
//   3. Postfix delivers sender.test's report over LMTP to mailreport-lmtp, which stores it as a
//      DMARC aggregate report with the counts of step 1; the report passed DKIM and DMARC on
//      the way in. bounce.test's report is refused by mailreport-lmtp (550 5.1.1); Postfix
//      bounces it to our envelope sender, a report mailbox too, and the DSN suppresses the
//      destination (report.suppress-after = 1).
//   4. A second `send-reports --now` sends nothing: every message was reported once.
#include <gtest/gtest.h>

#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "postfix_loop.hpp"

namespace mailreport::test {
namespace {

class AggregateLoopTest : public PostfixLoopTest {
 protected:
  std::vector<std::string> zone() const override {
    return {
        R"(sender.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all")",
        R"(_dmarc.sender.test. 300 IN TXT "v=DMARC1; p=none; rua=mailto:rua@reports.test")",
        R"(sender.test._report._dmarc.reports.test. 300 IN TXT "v=DMARC1")",
        R"(bounce.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all")",
        R"(_dmarc.bounce.test. 300 IN TXT "v=DMARC1; p=none; rua=mailto:nobody@reports.test")",
        R"(bounce.test._report._dmarc.reports.test. 300 IN TXT "v=DMARC1")",
        R"(client.sender.test. 300 IN TXT "v=spf1 -all")",
        R"(other.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all")",
    };
  }
  std::string report_keys() const override { return "suppress-after = 1\n"; }
  std::string extra_toml() const override {
    // Our envelope sender is a report mailbox, so that bounces come back to mailreport-lmtp.
    return "[report.dmarc.aggregate]\nfrom-address = \"noreply-dmarc@reports.test\"\n"
           "sign = [\"rep\"]\n";
  }
  std::vector<std::string> report_mailboxes() const override {
    return {"rua@reports.test", "noreply-dmarc@reports.test"};
  }

  std::uint64_t evaluated_messages() const {
    auto s = open_store();
    if (!s) return 0;
    auto rows = (*s)->list_evaluations({});
    if (!rows) return 0;
    std::uint64_t n = 0;
    for (const auto& r : *rows) n += r.record.row.count;
    return n;
  }
};

TEST_F(AggregateLoopTest, ReportsAreBuiltSentDeliveredOverLmtpAndParsedBackOnce) {
  auto mail = [](const std::string& from, int n) {
    return "From: <" + from + ">\r\nTo: user@sender.test\r\nSubject: message " + std::to_string(n) +
           "\r\nMessage-ID: <m" + std::to_string(n) + "@client.sender.test>\r\n\r\nHello.\r\n";
  };
  // 1. Two aligned passes and one failure for sender.test, one message for bounce.test.
  for (int i = 0; i < 2; ++i) {
    std::string r =
        send_mail("alice@sender.test", "user@sender.test", mail("alice@sender.test", i));
    ASSERT_EQ(r.substr(0, 3), "250") << r << diagnostics();
  }
  std::string r = send_mail("mallory@other.test", "user@sender.test", mail("alice@sender.test", 2));
  ASSERT_EQ(r.substr(0, 3), "250") << r << diagnostics();
  r = send_mail("bob@bounce.test", "user@sender.test", mail("bob@bounce.test", 3));
  ASSERT_EQ(r.substr(0, 3), "250") << r << diagnostics();
  ASSERT_TRUE(wait_until(kTimeout, [&] { return evaluated_messages() == 4; }))
      << "the milter recorded " << evaluated_messages() << " of 4 messages" << diagnostics();

  // 2. Build and send now.
  auto sent = mailreport({"send-reports", "--now"});
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err << diagnostics();
  std::vector<store::OutboxEntry> entries = outbox();
  ASSERT_EQ(entries.size(), 2u) << sent.out << sent.err;
  for (const auto& e : entries) {
    EXPECT_EQ(e.kind, "dmarc-aggregate");
    EXPECT_EQ(e.state, store::OutboxState::Sent) << e.recipient << ": " << e.last_error;
  }

  // 3. sender.test's report arrives over LMTP and parses back with the counts of step 1.
  std::string raw;
  std::optional<store::StoredReport> stored =
      wait_for_report(report::ReportType::DmarcAggregate, raw);
  ASSERT_TRUE(stored) << "the aggregate report was not stored by mailreport-lmtp" << diagnostics();
  EXPECT_EQ(stored->summary.org_name, "mx.test");
  EXPECT_EQ(stored->summary.policy_domain, "sender.test");
  EXPECT_EQ(stored->summary.messages, 3u);
  EXPECT_EQ(stored->summary.pass, 2u);
  EXPECT_EQ(stored->summary.fail, 1u);
  const auto* agg = std::get_if<report::DmarcAggregate>(&stored->report);
  ASSERT_NE(agg, nullptr);
  EXPECT_EQ(agg->header.xml_namespace, "urn:ietf:params:xml:ns:dmarc-2.0");
  EXPECT_EQ(agg->header.policy_published.domain, "sender.test");
  const std::string report_id = agg->header.report_metadata.report_id;
  ASSERT_FALSE(report_id.empty());
  // The Subject as RFC 7489 §7.2.1.1 writes it (folded on the wire: unfold first).
  std::string head = raw.substr(0, raw.find("\r\n\r\n"));
  for (std::size_t at; (at = head.find("\r\n ")) != std::string::npos;) head.erase(at, 2);
  EXPECT_NE(head.find("Subject: Report Domain: sender.test Submitter: mx.test Report-ID: <" +
                      report_id + ">"),
            std::string::npos)
      << head;
  EXPECT_NE(raw.find("!sender.test!"), std::string::npos);  // the attachment's filename
  auto ours = our_results(raw, kOurId);
  ASSERT_EQ(ours.size(), 1u) << raw.substr(0, 2000);
  EXPECT_NE(ours[0].find("dkim=pass header.d=mx.test header.s=rep"), std::string::npos) << ours[0];

  // bounce.test's report bounced; the DSN suppressed its destination.
  ASSERT_TRUE(wait_until(kTimeout,
                         [&] {
                           auto s = open_store();
                           if (!s) return false;
                           auto suppressed = (*s)->is_suppressed("nobody@reports.test");
                           return suppressed && *suppressed;
                         }))
      << "the bounce did not suppress nobody@reports.test" << diagnostics();
  auto listed = mailreport({"suppress", "list"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("nobody@reports.test"), std::string::npos) << listed.out;

  // 4. Nothing is reported twice.
  auto again = mailreport({"send-reports", "--now"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(outbox().size(), 2u);
}

}  // namespace
}  // namespace mailreport::test
