// The whole failure-report loop (issue 4), with the real programs: a private Postfix instance
// (postfix-instance.sh) calls mailreport-milter (smtpd_milters) and relays reports.test over
// LMTP to mailreport-lmtp; `mailreport serve --once` drains the outbox and submits through
// Postfix's smtpd (report.submit.method = "smtp", libcurl). The three programs share one
// configuration and one SQLite store, as they do on a single MX.
//
//   1. Mail From: sender.test, unsigned, with an envelope sender in another domain (SPF passes
//      for other.test — libspf2 passes loopback clients — but is not aligned): DMARC fails, and
//      _dmarc.sender.test asks for failure reports (ruf=mailto:ruf@reports.test; fo=1). The
//      report mailbox is in another organisation, which authorises it with
//      sender.test._report._dmarc.reports.test (RFC 7489 §7.1). The milter queues one report.
//      (The message itself goes to a sender.test mailbox, which the instance discards.)
//   2. `mailreport serve --once` builds it, DKIM-signs it as mx.test (a key this test makes)
//      and submits it to Postfix, which delivers it over LMTP to mailreport-lmtp.
//   3. The store holds it as an ARF auth-failure report with the fields of the message in 1;
//      the copy Postfix delivered carries our Authentication-Results with dkim=pass for mx.test
//      (the signature on the report verifies); the outbox entry is marked sent. The report
//      itself raised no failure report of its own (our own report traffic).
//
// The fixture is postfix_loop.hpp. About 15 s (Postfix and libmilter take seconds to stop).
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "postfix_loop.hpp"

namespace mailreport::test {
namespace {

class FailureLoopTest : public PostfixLoopTest {
 protected:
  std::vector<std::string> zone() const override {
    return {
        // The sender: SPF allows a host that is not us, DMARC asks for failure reports.
        R"(sender.test. 300 IN TXT "v=spf1 ip4:192.0.2.1 -all")",
        R"(_dmarc.sender.test. 300 IN TXT "v=DMARC1; p=reject; ruf=mailto:ruf@reports.test; fo=1")",
        R"(sender.test._report._dmarc.reports.test. 300 IN TXT "v=DMARC1")",
        R"(client.sender.test. 300 IN TXT "v=spf1 -all")",
        R"(other.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all")",
    };
  }
  std::string extra_toml() const override {
    return "[report.dsn]\nfrom-name = \"Mail Delivery System\"\n"
           "from-address = \"postmaster@mx.test\"\nsign = [\"rep\"]\n"
           "[report.dmarc]\nsign = [\"rep\"]\nsend = \"10/1d\"\n";
  }
  std::vector<std::string> report_mailboxes() const override {
    return {"ruf@reports.test", "bounces@reports.test"};
  }
};

TEST_F(FailureLoopTest, DmarcFailureBecomesASignedReportDeliveredOverLmtpAndStored) {
  Smtp smtp(smtp_port_);
  ASSERT_TRUE(smtp.ok());
  ASSERT_EQ(smtp.reply().substr(0, 3), "220");
  ASSERT_EQ(smtp.command("EHLO client.sender.test").substr(0, 3), "250");
  const std::string message =
      "From: Mallory <mallory@sender.test>\r\nTo: user@sender.test\r\n"
      "Subject: pretending to be sender.test\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
      "Message-ID: <forged-1@sender.test>\r\n\r\nNot really from sender.test.\r\n";
  std::string r = smtp.send("mallory@other.test", "user@sender.test", message);
  ASSERT_EQ(r.substr(0, 3), "250") << r << diagnostics();
  smtp.command("QUIT");

  // 1. The milter queued exactly one DMARC failure report, to the ruf address.
  std::vector<store::OutboxEntry> queued;
  ASSERT_TRUE(wait_until(kTimeout,
                         [&] {
                           queued = outbox();
                           return !queued.empty();
                         }))
      << "no failure report was queued" << diagnostics();
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(queued[0].kind, "dmarc-failure");
  EXPECT_EQ(queued[0].recipient, "ruf@reports.test");
  EXPECT_EQ(queued[0].reported_domain, "sender.test");
  EXPECT_EQ(queued[0].state, store::OutboxState::Queued);

  // 2. One outbox pass sends it through Postfix.
  auto served = mailreport({"serve", "--once"});
  ASSERT_EQ(served.exit_code, 0) << served.out << served.err << diagnostics();
  auto after = outbox();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].state, store::OutboxState::Sent) << after[0].last_error;
  EXPECT_FALSE(after[0].message_id.empty());

  // 3. mailreport-lmtp stored it as an ARF auth-failure report about the forged message.
  std::string raw;
  std::optional<store::StoredReport> stored = wait_for_report(report::ReportType::Arf, raw);
  ASSERT_TRUE(stored) << "the failure report was not stored by mailreport-lmtp" << diagnostics();
  const auto* arf = std::get_if<report::ArfReport>(&stored->report);
  ASSERT_NE(arf, nullptr);
  EXPECT_EQ(arf->feedback_type, "auth-failure");
  EXPECT_EQ(arf->auth_failure, "dmarc");
  EXPECT_EQ(arf->version, "1");
  EXPECT_EQ(arf->source_ip, "127.0.0.1");
  // RFC 5965 §3.2: reverse-path and forward-path, angle brackets included.
  EXPECT_EQ(arf->original_mail_from, "<mallory@other.test>");
  EXPECT_EQ(arf->original_rcpt_to, std::vector<std::string>{"<user@sender.test>"});
  EXPECT_EQ(arf->reported_domain, std::vector<std::string>{"sender.test"});
  EXPECT_EQ(arf->reporting_mta.find("mx.test") != std::string::npos, true) << arf->reporting_mta;
  // RFC 9991: the mechanisms that failed to authenticate an aligned identity.
  EXPECT_EQ(arf->identity_alignment, "dkim, spf");
  EXPECT_NE(arf->authentication_results.find("dmarc=fail"), std::string::npos)
      << arf->authentication_results;
  EXPECT_EQ(arf->original_message_type, "text/rfc822-headers");
  bool subject_seen = false;
  for (const auto& h : arf->original_headers) {
    if (h.name == "Subject") subject_seen = h.value.find("pretending") != std::string::npos;
  }
  EXPECT_TRUE(subject_seen);
  EXPECT_NE(arf->from.find("noreply-dmarc@mx.test"), std::string::npos) << arf->from;
  EXPECT_EQ(arf->message_id, "<" + after[0].message_id + ">");

  // The report's DKIM signature verified when it came back in through the milter.
  auto ours = our_results(raw, kOurId);
  ASSERT_EQ(ours.size(), 1u) << raw;
  EXPECT_NE(ours[0].find("dkim=pass header.d=mx.test header.s=rep"), std::string::npos) << ours[0];
  EXPECT_NE(ours[0].find("dmarc=pass"), std::string::npos) << ours[0];
  EXPECT_NE(raw.find("Auto-Submitted: auto-generated"), std::string::npos);

  // Our own report raised no report about itself.
  EXPECT_EQ(outbox().size(), 1u);
}

// Issue 4, "DSNs the MTA generates": a bounce Postfix makes (cleanup calls the milter through
// non_smtpd_milters) leaves with report.dsn's From and a DKIM signature of mx.test, so that it
// is not dropped as unauthenticated mail. The undeliverable recipient is refused by
// mailreport-lmtp (not a report mailbox); the bounce goes back to bounces@reports.test, which
// is one, and is stored there as a DSN.
TEST_F(FailureLoopTest, BounceFromPostfixGetsOurFromAndSignature) {
  Smtp smtp(smtp_port_);
  ASSERT_TRUE(smtp.ok());
  ASSERT_EQ(smtp.reply().substr(0, 3), "220");
  ASSERT_EQ(smtp.command("EHLO client.sender.test").substr(0, 3), "250");
  const std::string message =
      "From: <bounces@reports.test>\r\nTo: nobody@reports.test\r\nSubject: undeliverable\r\n"
      "Message-ID: <bounce-me@reports.test>\r\n\r\nNobody reads this.\r\n";
  std::string r = smtp.send("bounces@reports.test", "nobody@reports.test", message);
  ASSERT_EQ(r.substr(0, 3), "250") << r << diagnostics();
  smtp.command("QUIT");

  std::string raw;
  std::optional<store::StoredReport> stored = wait_for_report(report::ReportType::Dsn, raw);
  ASSERT_TRUE(stored) << "no DSN was stored" << diagnostics();
  const auto* dsn = std::get_if<report::DsnReport>(&stored->report);
  ASSERT_NE(dsn, nullptr);
  ASSERT_FALSE(dsn->recipients.empty());
  EXPECT_NE(dsn->recipients[0].final_recipient.find("nobody@reports.test"), std::string::npos);
  EXPECT_EQ(dsn->recipients[0].action, "failed");

  const std::string head = raw.substr(0, raw.find("\r\n\r\n"));
  EXPECT_NE(head.find("From: Mail Delivery System <postmaster@mx.test>"), std::string::npos)
      << head;
  const auto sig = head.find("DKIM-Signature:");
  ASSERT_NE(sig, std::string::npos) << head;
  std::string flat;  // the signature's tags without folding white space
  for (std::size_t i = sig; i < head.size() && flat.size() < 4000; ++i) {
    if (head[i] == '\r' && (i + 2 >= head.size() || (head[i + 2] != ' ' && head[i + 2] != '\t'))) {
      break;
    }
    if (head[i] != '\r' && head[i] != '\n' && head[i] != ' ' && head[i] != '\t') flat += head[i];
  }
  EXPECT_NE(flat.find("d=mx.test;"), std::string::npos) << flat;
  EXPECT_NE(flat.find("s=rep;"), std::string::npos) << flat;
  EXPECT_NE(flat.find("From"), std::string::npos) << flat;  // h= covers the new From
}

}  // namespace
}  // namespace mailreport::test
