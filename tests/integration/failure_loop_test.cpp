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
// Needs root (Postfix's master) and the Debian postfix package; skipped otherwise, except under
// CI=true. About 15 s (Postfix and libmilter take seconds to stop).
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "../unit/auth/dkim_test_keys.hpp"
#include "child_process.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "postfix_support.hpp"
#include "process_util.hpp"
#include "testsupport.hpp"

namespace mailreport::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kPostfix = "/usr/sbin/postfix";
constexpr const char* kOurId = "mx.test";
constexpr auto kTimeout = 90s;

class FailureLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "the test needs root to run a private Postfix instance. Skipping.";
    }
    if (!fs::exists(kPostfix) || !::getpwnam("postfix") || !::getgrnam("postdrop")) {
      const std::string missing = "Postfix is not installed (scripts/install-deps.sh --test)";
      if (running_in_ci()) FAIL() << missing << "; under CI=true this fails.";
      GTEST_SKIP() << missing << ". Skipping.";
    }
    fs::permissions(dir(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
    smtp_port_ = free_loopback_port();
    lmtp_port_ = free_loopback_port();
    write_config();
    start_daemons();
    if (HasFatalFailure()) return;
    start_postfix();
  }

  void TearDown() override {
    if (created_) {
      auto stopped = run_command(script({"stop", pfdir().string()}));
      EXPECT_EQ(stopped.exit_code, 0) << stopped.out << stopped.err;
    }
    if (milter_) milter_->stop(30s);
    if (lmtp_) lmtp_->stop(10s);
  }

  const fs::path& dir() const { return tmp_.path(); }
  fs::path pfdir() const { return dir() / "postfix"; }
  fs::path config() const { return dir() / "mailreport.toml"; }

  std::string diagnostics() const {
    return "\n  maillog:\n" + slurp(pfdir() / "maillog") + "\n  milter log:\n" +
           slurp(dir() / "milter.log") + "\n  lmtp log:\n" + slurp(dir() / "lmtp.log");
  }

  void write_config() {
    signing_key_ = dkim::make_key(false, 2048);
    std::ofstream(dir() / "mx.test.key") << signing_key_.private_pem;
    const std::vector<std::string> zone = {
        // The sender: SPF allows a host that is not us, DMARC asks for failure reports.
        R"(sender.test. 300 IN TXT "v=spf1 ip4:192.0.2.1 -all")",
        R"(_dmarc.sender.test. 300 IN TXT "v=DMARC1; p=reject; ruf=mailto:ruf@reports.test; fo=1")",
        R"(sender.test._report._dmarc.reports.test. 300 IN TXT "v=DMARC1")",
        R"(client.sender.test. 300 IN TXT "v=spf1 -all")",
        R"(other.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all")",
        // Us, the reporter: the report we send must pass.
        R"(mx.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all")",
        R"(_dmarc.mx.test. 300 IN TXT "v=DMARC1; p=none")",
        dkim::txt_line("rep._domainkey.mx.test", signing_key_.record()),
    };
    std::ostringstream toml;
    toml << "[report]\ndomain = \"mx.test\"\nsubmitter = \"mx.test\"\n"
         << "[report.analysis]\naddresses = [\"ruf@reports.test\", \"bounces@reports.test\"]\n"
         << "[report.dsn]\nfrom-name = \"Mail Delivery System\"\n"
         << "from-address = \"postmaster@mx.test\"\nsign = [\"rep\"]\n"
         << "[report.dmarc]\nsign = [\"rep\"]\nsend = \"10/1d\"\n"
         << "[report.submit]\nmethod = \"smtp\"\nsmtp-url = \"smtp://127.0.0.1:" << smtp_port_
         << "\"\n"
         << "[signature.rep]\nprivate-key = \"" << (dir() / "mx.test.key").string() << "\"\n"
         << "domain = \"mx.test\"\nselector = \"rep\"\nalgorithm = \"rsa-sha256\"\n"
         << "[store]\npath = \"" << (dir() / "mailreport.db").string() << "\"\n"
         << "[lmtp]\nunix-socket = \"\"\ntcp = \"127.0.0.1:" << lmtp_port_ << "\"\n"
         << "spool-dir = \"" << dir().string() << "\"\n"
         << "[dns]\nlocal-only = true\n"
         << "local-nxdomain = [\"_dmarc.test.\", \"_dmarc.other.test.\"]\nlocal-data = [\n";
    for (const auto& line : zone) toml << "  '" << line << "',\n";
    toml << "]\n[milter]\nsocket = \"unix:" << (dir() / "milter.sock").string() << "\"\n"
         << "socket-group = \"postfix\"\nauthserv-id = \"" << kOurId << "\"\n"
         << "trusted-networks = []\nflush-interval = \"1s\"\n";
    std::ofstream(config()) << toml.str();
  }

  void start_daemons() {
    const auto milter_bin = binary_dir() / "milter" / "mailreport-milter";
    ASSERT_TRUE(fs::exists(milter_bin)) << milter_bin << " is missing (build mailreport-milter)";
    ASSERT_TRUE(fs::exists(lmtp_binary())) << lmtp_binary() << " is missing";
    auto lmtp =
        ChildProcess::start({lmtp_binary().string(), "-c", config().string()}, dir() / "lmtp.log");
    ASSERT_TRUE(lmtp) << lmtp.error().describe();
    lmtp_.emplace(std::move(*lmtp));
    auto st = wait_for_listener("inet:" + std::to_string(lmtp_port_) + "@127.0.0.1", *lmtp_);
    ASSERT_TRUE(st) << st.error().describe();
    auto milter =
        ChildProcess::start({milter_bin.string(), "-c", config().string()}, dir() / "milter.log");
    ASSERT_TRUE(milter) << milter.error().describe();
    milter_.emplace(std::move(*milter));
    st = wait_for_listener("unix:" + (dir() / "milter.sock").string(), *milter_);
    ASSERT_TRUE(st) << st.error().describe();
  }

  std::vector<std::string> script(std::vector<std::string> args) const {
    args.insert(args.begin(),
                {"/bin/bash", (source_dir() / "tests/integration/postfix-instance.sh").string()});
    return args;
  }

  void start_postfix() {
    auto created = run_command(script(
        {"create", pfdir().string(), std::to_string(smtp_port_), std::to_string(lmtp_port_)}));
    ASSERT_EQ(created.exit_code, 0) << created.out << created.err;
    created_ = true;
    auto set = run_command({"/usr/sbin/postconf", "-c", (pfdir() / "etc").string(), "-e",
                            "smtpd_milters = unix:" + (dir() / "milter.sock").string(),
                            "non_smtpd_milters = unix:" + (dir() / "milter.sock").string(),
                            // Postfix filters its own bounces only when asked to.
                            "internal_mail_filter_classes = bounce",
                            "milter_default_action = tempfail", "milter_protocol = 6"});
    ASSERT_EQ(set.exit_code, 0) << set.out << set.err;
    auto started = run_command(script({"start", pfdir().string()}));
    ASSERT_EQ(started.exit_code, 0) << started.out << started.err << diagnostics();
    ASSERT_TRUE(wait_until(kTimeout, [&] { return Smtp(smtp_port_).ok(); }))
        << "smtpd does not accept connections" << diagnostics();
  }

  Result<std::unique_ptr<store::Store>> open_store() const {
    store::SqliteOptions o;
    o.path = dir() / "mailreport.db";
    o.read_only = true;
    return store::open_sqlite_store(o);
  }

  std::vector<store::OutboxEntry> outbox() const {
    auto s = open_store();
    if (!s) return {};
    auto entries = (*s)->list_outbox({});
    return entries ? std::move(*entries) : std::vector<store::OutboxEntry>{};
  }

  // The first stored report of `type` and its raw message, once mailreport-lmtp has it.
  std::optional<store::StoredReport> wait_for_report(report::ReportType type, std::string& raw) {
    std::optional<store::StoredReport> stored;
    wait_until(kTimeout, [&] {
      auto s = open_store();
      if (!s) return false;
      store::ReportFilter f;
      f.type = type;
      auto list = (*s)->list_reports(f);
      if (!list || list->empty()) return false;
      auto got = (*s)->get_report(list->front().id);
      if (!got) return false;
      raw.clear();
      auto st = (*s)->read_raw(got->summary.message_id, [&](std::span<const char> piece) {
        raw.append(piece.data(), piece.size());
        return Status{};
      });
      if (!st) return false;
      stored = std::move(*got);
      return true;
    });
    return stored;
  }

  TempDir tmp_;
  dkim::TestKey signing_key_;
  std::optional<ChildProcess> milter_;
  std::optional<ChildProcess> lmtp_;
  std::uint16_t smtp_port_ = 0;
  std::uint16_t lmtp_port_ = 0;
  bool created_ = false;
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
  auto served = run_command({cli_binary().string(), "-c", config().string(), "serve", "--once"});
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
