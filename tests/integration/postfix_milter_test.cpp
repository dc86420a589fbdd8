// End to end: Postfix's smtpd calls mailreport-milter (smtpd_milters) for mail received over
// SMTP, the message arrives with our Authentication-Results, and the milter's store holds the
// evaluation.
//
// A private Postfix instance (postfix-instance.sh: its own configuration, queue and log in a
// temporary directory, smtpd on a free loopback port) relays reports.test over LMTP to a sink
// run in this process (lmtp::Server with an ingestor that keeps the messages), and calls
// mailreport-milter on a unix socket (group postfix, mode 0660). The milter's DNS answers come
// from dns.local-data (local-only): SPF, DMARC (p=reject, rua=) and the DKIM key of
// sender.test, a key made by this test. Two messages are sent:
//   - DKIM-signed by sender.test, carrying a forged Authentication-Results with our
//     authserv-id: delivered with one Authentication-Results of ours, spf/dkim/dmarc=pass;
//   - From: sender.test, unsigned, from an envelope sender in another domain: dmarc=fail
//     (observe mode: delivered all the same).
// Then `list_evaluations` of the milter's store shows both, one row each, with the results.
//
// Needs root (Postfix's master) and the Debian postfix package; skipped otherwise, except under
// CI=true. About 8 s (Postfix and libmilter take seconds to stop), so not labelled slow.
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../unit/auth/dkim_test_keys.hpp"
#include "child_process.hpp"
#include "mailreport/config/config.hpp"
#include "mailreport/ingest/ingest.hpp"
#include "mailreport/lmtp/server.hpp"
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
constexpr auto kTimeout = 90s;  // CI machines have 2 cores; the ASan build is slow

// The LMTP sink: keeps every message Postfix delivers.
class KeepingIngestor final : public ingest::Ingestor {
 public:
  Result<ingest::Outcome> ingest(const ingest::Envelope& envelope, const Input& message) override {
    auto src = message.open();
    if (!src) return std::move(src).error();
    auto text = read_all(**src, 16u << 20);
    if (!text) return std::move(text).error();
    std::lock_guard lock(mu_);
    messages_.push_back({envelope.rcpt_to, std::move(*text)});
    return ingest::Outcome{static_cast<std::int64_t>(messages_.size()), 0, 0, std::nullopt};
  }
  // The delivered message whose text contains `needle`.
  std::optional<std::string> find(const std::string& needle) {
    std::lock_guard lock(mu_);
    for (const auto& [rcpts, text] : messages_) {
      if (text.find(needle) != std::string::npos) return text;
    }
    return std::nullopt;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::vector<std::string>, std::string>> messages_;
};

class PostfixMilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "the test needs root to run a private Postfix instance. Skipping.";
    }
    std::string missing;
    if (!fs::exists(kPostfix) || !::getpwnam("postfix") || !::getgrnam("postdrop")) {
      missing = "Postfix is not installed (scripts/install-deps.sh --test)";
    }
    if (!missing.empty()) {
      if (running_in_ci()) FAIL() << missing << "; under CI=true this fails.";
      GTEST_SKIP() << missing << ". Skipping.";
    }
    // Postfix's daemons run as "postfix": they must reach the instance and the milter socket.
    fs::permissions(dir(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
    start_sink();
    if (HasFatalFailure()) return;
    start_milter();
    if (HasFatalFailure()) return;
    start_postfix();
  }

  void TearDown() override {
    stop_postfix();
    if (milter_) milter_->stop(30s);
    if (sink_) sink_->stop(5s);
  }

  const fs::path& dir() const { return tmp_.path(); }
  fs::path pfdir() const { return dir() / "postfix"; }
  fs::path milter_store() const { return dir() / "milter.db"; }

  std::string diagnostics() const {
    return "\n  maillog:\n" + slurp(pfdir() / "maillog") + "\n  milter log:\n" +
           slurp(dir() / "milter.log");
  }

  void start_sink() {
    auto loaded = config::load_string(
        "[report.analysis]\naddresses = [\"*@reports.test\"]\n[store]\npath = \"" +
        (dir() / "sink.db").string() + "\"\n[lmtp]\nunix-socket = \"\"\ntcp = \"127.0.0.1:0\"\n" +
        "spool-dir = \"" + dir().string() + "\"\n");
    ASSERT_TRUE(loaded.problems.empty()) << loaded.problems.front().describe();
    sink_ = std::make_unique<lmtp::Server>(loaded.config, ingestor_, log_);
    auto st = sink_->start();
    ASSERT_TRUE(st) << st.error().describe();
  }

  void start_milter() {
    key_ = dkim::make_key(false, 2048);
    const std::vector<std::string> zone = {
        R"(sender.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all")",
        R"(client.sender.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all")",
        R"(other.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all")",
        R"(_dmarc.sender.test. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@sender.test")",
        dkim::txt_line("sel._domainkey.sender.test", key_.record()),
    };
    std::ostringstream toml;
    toml
        << "[store]\npath = \"" << milter_store().string() << "\"\n"
        << "[dns]\nlocal-only = true\nlocal-nxdomain = [\"_dmarc.test.\", \"_dmarc.other.test.\"]\n"
        << "local-data = [\n";
    for (const auto& line : zone) toml << "  '" << line << "',\n";
    toml << "]\n[milter]\nsocket = \"unix:" << (dir() / "milter.sock").string() << "\"\n"
         << "socket-group = \"postfix\"\nauthserv-id = \"" << kOurId << "\"\n"
         << "trusted-networks = []\nflush-interval = \"1s\"\n";
    std::ofstream(dir() / "milter.toml") << toml.str();
    const auto binary = binary_dir() / "milter" / "mailreport-milter";
    ASSERT_TRUE(fs::exists(binary)) << binary << " is missing (build mailreport-milter)";
    auto child = ChildProcess::start({binary.string(), "-c", (dir() / "milter.toml").string()},
                                     dir() / "milter.log");
    ASSERT_TRUE(child) << child.error().describe();
    milter_.emplace(std::move(*child));
    auto st = wait_for_listener("unix:" + (dir() / "milter.sock").string(), *milter_);
    ASSERT_TRUE(st) << st.error().describe();
  }

  std::vector<std::string> script(std::vector<std::string> args) const {
    args.insert(args.begin(),
                {"/bin/bash", (source_dir() / "tests/integration/postfix-instance.sh").string()});
    return args;
  }

  void start_postfix() {
    smtp_port_ = free_loopback_port();
    auto created = run_command(script({"create", pfdir().string(), std::to_string(smtp_port_),
                                       std::to_string(sink_->bound_port())}));
    ASSERT_EQ(created.exit_code, 0) << created.out << created.err;
    created_ = true;
    // smtpd calls the milter; a milter failure defers the mail rather than passing it unseen.
    auto set = run_command({"/usr/sbin/postconf", "-c", (pfdir() / "etc").string(), "-e",
                            "smtpd_milters = unix:" + (dir() / "milter.sock").string(),
                            "milter_default_action = tempfail", "milter_protocol = 6"});
    ASSERT_EQ(set.exit_code, 0) << set.out << set.err;
    auto started = run_command(script({"start", pfdir().string()}));
    ASSERT_EQ(started.exit_code, 0) << started.out << started.err << diagnostics();
    ASSERT_TRUE(wait_until(kTimeout, [&] { return Smtp(smtp_port_).ok(); }))
        << "smtpd does not accept connections" << diagnostics();
  }

  void stop_postfix() {
    if (!created_) return;
    created_ = false;
    auto stopped = run_command(script({"stop", pfdir().string()}));
    EXPECT_EQ(stopped.exit_code, 0) << stopped.out << stopped.err;
  }

  // The milter's evaluations once `n` messages are counted in them.
  std::vector<store::EvaluationRow> wait_for_evaluations(std::uint64_t n) {
    std::vector<store::EvaluationRow> rows;
    wait_until(kTimeout, [&] {
      store::SqliteOptions o;
      o.path = milter_store();
      o.read_only = true;
      auto s = store::open_sqlite_store(o);
      if (!s) return false;
      auto r = (*s)->list_evaluations({});
      if (!r) return false;
      rows = std::move(*r);
      std::uint64_t total = 0;
      for (const auto& e : rows) total += e.record.row.count;
      return total >= n;
    });
    return rows;
  }

  TempDir tmp_;
  NullLogger log_;
  KeepingIngestor ingestor_;
  std::unique_ptr<lmtp::Server> sink_;
  std::optional<ChildProcess> milter_;
  dkim::TestKey key_;
  std::uint16_t smtp_port_ = 0;
  bool created_ = false;
};

std::string signed_message(const dkim::TestKey& key) {
  dkim::TestMessage m;
  m.headers = {
      {"From", "Alice <alice@sender.test>"},    {"To", "user@reports.test"},
      {"Subject", "signed through Postfix"},    {"Date", "Fri, 21 Nov 2025 10:00:00 +0000"},
      {"Message-ID", "<signed-1@sender.test>"},
  };
  m.body = "Hello,\r\n\r\nthis message is signed by sender.test.\r\n";
  dkim::SignOptions o;
  o.selector = "sel";
  o.domain = "sender.test";
  m.prepend("DKIM-Signature", dkim::sign(m, key, o));
  // RFC 8601 §5: a field claiming our authserv-id that arrives from outside is forged.
  m.prepend("Authentication-Results", std::string(kOurId) + "; dmarc=pass header.from=evil.test");
  return m.raw();
}

TEST_F(PostfixMilterTest, MailThroughPostfixGetsOurAuthenticationResultsAndIsRecorded) {
  Smtp smtp(smtp_port_);
  ASSERT_TRUE(smtp.ok());
  ASSERT_EQ(smtp.reply().substr(0, 3), "220");
  ASSERT_EQ(smtp.command("EHLO client.sender.test").substr(0, 3), "250");
  std::string r = smtp.send("bounce@sender.test", "user@reports.test", signed_message(key_));
  ASSERT_EQ(r.substr(0, 3), "250") << r << diagnostics();
  const std::string unsigned_message =
      "From: Mallory <mallory@sender.test>\r\nTo: user@reports.test\r\n"
      "Subject: not signed\r\nMessage-ID: <unsigned-1@other.test>\r\n\r\nNo signature.\r\n";
  r = smtp.send("mallory@other.test", "user@reports.test", unsigned_message);
  ASSERT_EQ(r.substr(0, 3), "250") << r << diagnostics();
  smtp.command("QUIT");

  // Delivered over LMTP with one Authentication-Results of ours, the forged one removed.
  std::optional<std::string> signed_copy, unsigned_copy;
  ASSERT_TRUE(wait_until(kTimeout,
                         [&] {
                           signed_copy = ingestor_.find("<signed-1@sender.test>");
                           unsigned_copy = ingestor_.find("<unsigned-1@other.test>");
                           return signed_copy && unsigned_copy;
                         }))
      << "the messages did not arrive at the LMTP sink" << diagnostics();
  auto ours = our_results(*signed_copy, kOurId);
  ASSERT_EQ(ours.size(), 1u) << *signed_copy;
  EXPECT_NE(ours[0].find("spf=pass smtp.mailfrom=bounce@sender.test"), std::string::npos)
      << ours[0];
  EXPECT_NE(ours[0].find("dkim=pass header.d=sender.test header.s=sel"), std::string::npos)
      << ours[0];
  EXPECT_NE(ours[0].find("dmarc=pass"), std::string::npos) << ours[0];
  EXPECT_NE(ours[0].find("header.from=sender.test policy.dmarc=reject"), std::string::npos)
      << ours[0];
  EXPECT_EQ(ours[0].find("evil.test"), std::string::npos) << ours[0];
  auto failed = our_results(*unsigned_copy, kOurId);
  ASSERT_EQ(failed.size(), 1u) << *unsigned_copy;
  EXPECT_NE(failed[0].find("dkim=none; dmarc=fail"), std::string::npos) << failed[0];

  // The milter's store holds both evaluations, aggregated for sender.test's aggregate report.
  auto rows = wait_for_evaluations(2);
  ASSERT_EQ(rows.size(), 2u) << diagnostics();
  const store::EvaluationRow* pass = nullptr;
  const store::EvaluationRow* fail = nullptr;
  for (const auto& e : rows) {
    (e.record.row.policy_evaluated.dkim == "pass" ? pass : fail) = &e;
  }
  ASSERT_TRUE(pass && fail);
  for (const auto* e : {pass, fail}) {
    EXPECT_EQ(e->policy.domain, "sender.test");
    EXPECT_EQ(e->policy.p, "reject");
    EXPECT_EQ(e->rua, std::vector<std::string>{"mailto:dmarc@sender.test"});
    EXPECT_EQ(e->record.row.source_ip, "127.0.0.1");
    EXPECT_EQ(e->record.row.count, 1u);
    EXPECT_EQ(e->record.identifiers.header_from, "sender.test");
    EXPECT_EQ(e->record.identifiers.envelope_to, "reports.test");
  }
  EXPECT_EQ(pass->record.row.policy_evaluated.spf, "pass");
  ASSERT_EQ(pass->record.auth_results.dkim.size(), 1u);
  EXPECT_EQ(pass->record.auth_results.dkim[0].selector, "sel");
  EXPECT_EQ(pass->record.identifiers.envelope_from, "sender.test");
  // Observe mode: p=reject is recorded, the message was delivered.
  EXPECT_EQ(fail->record.row.policy_evaluated.spf, "fail");  // other.test is not aligned
  EXPECT_TRUE(fail->record.auth_results.dkim.empty());
  EXPECT_EQ(fail->record.identifiers.envelope_from, "other.test");
}

}  // namespace
}  // namespace mailreport::test
