// The fixture of the whole-loop tests (failure_loop_test.cpp, aggregate_loop_test.cpp): a
// private Postfix instance (postfix-instance.sh) that calls mailreport-milter (smtpd_milters,
// and non_smtpd_milters for its own bounces) and relays reports.test over LMTP to
// mailreport-lmtp; reports are submitted through Postfix's smtpd (report.submit.method =
// "smtp"). The programs share one configuration and one SQLite store, as on a single MX. Our
// reports are DKIM-signed as mx.test with a key made here (signature id "rep").
//
// A test class derives from PostfixLoopTest and gives its DNS records (zone()) and its own
// TOML (extra_toml(), appended after the common tables). Needs root (Postfix's master) and the
// Debian postfix package: skipped otherwise, except under CI=true.
#pragma once

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

class PostfixLoopTest : public ::testing::Test {
 protected:
  static constexpr const char* kPostfix = "/usr/sbin/postfix";
  static constexpr const char* kOurId = "mx.test";
  static constexpr std::chrono::seconds kTimeout{90};

  // The test's DNS records (unbound local-data lines); the reporter's own (mx.test: SPF,
  // DMARC p=none, the DKIM key) are added.
  virtual std::vector<std::string> zone() const = 0;
  // TOML appended to the common configuration ([report], [signature.rep], [store], [lmtp],
  // [dns], [milter] are written already; [report.analysis] addresses too).
  virtual std::string extra_toml() const { return {}; }
  // Keys of the [report] table itself ("suppress-after = 1\n").
  virtual std::string report_keys() const { return {}; }
  // Report mailboxes at reports.test that mailreport-lmtp accepts.
  virtual std::vector<std::string> report_mailboxes() const {
    return {"ruf@reports.test", "rua@reports.test", "bounces@reports.test"};
  }

  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "the test needs root to run a private Postfix instance. Skipping.";
    }
    if (!std::filesystem::exists(kPostfix) || !::getpwnam("postfix") || !::getgrnam("postdrop")) {
      const std::string missing = "Postfix is not installed (scripts/install-deps.sh --test)";
      if (running_in_ci()) FAIL() << missing << "; under CI=true this fails.";
      GTEST_SKIP() << missing << ". Skipping.";
    }
    namespace fs = std::filesystem;
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
    if (milter_) milter_->stop(std::chrono::seconds(30));
    if (lmtp_) lmtp_->stop(std::chrono::seconds(10));
  }

  const std::filesystem::path& dir() const { return tmp_.path(); }
  std::filesystem::path pfdir() const { return dir() / "postfix"; }
  std::filesystem::path config() const { return dir() / "mailreport.toml"; }

  std::string diagnostics() const {
    return "\n  maillog:\n" + slurp(pfdir() / "maillog") + "\n  milter log:\n" +
           slurp(dir() / "milter.log") + "\n  lmtp log:\n" + slurp(dir() / "lmtp.log");
  }

  // `mailreport -c CONFIG args...`
  RunResult mailreport(std::vector<std::string> args) const {
    args.insert(args.begin(), {cli_binary().string(), "-c", config().string()});
    return run_command(args);
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

  // One SMTP transaction from client.sender.test; the reply to the end of data.
  std::string send_mail(const std::string& from, const std::string& to,
                        const std::string& message) {
    Smtp smtp(smtp_port_);
    if (!smtp.ok()) return "no connection";
    if (smtp.reply().substr(0, 3) != "220") return "no greeting";
    if (smtp.command("EHLO client.sender.test").substr(0, 3) != "250") return "EHLO refused";
    std::string r = smtp.send(from, to, message);
    smtp.command("QUIT");
    return r;
  }

  std::uint16_t smtp_port_ = 0;
  std::uint16_t lmtp_port_ = 0;

 private:
  void write_config() {
    signing_key_ = dkim::make_key(false, 2048);
    std::ofstream(dir() / "mx.test.key") << signing_key_.private_pem;
    std::vector<std::string> records = zone();
    // Us, the reporter: the reports we send must pass.
    records.push_back(R"(mx.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all")");
    records.push_back(R"(_dmarc.mx.test. 300 IN TXT "v=DMARC1; p=none")");
    records.push_back(dkim::txt_line("rep._domainkey.mx.test", signing_key_.record()));
    std::ostringstream toml;
    toml << "[report]\ndomain = \"mx.test\"\nsubmitter = \"mx.test\"\n"
         << report_keys() << "[report.analysis]\naddresses = [";
    for (const auto& a : report_mailboxes()) toml << "\"" << a << "\", ";
    toml << "]\n"
         << "[report.submit]\nmethod = \"smtp\"\nsmtp-url = \"smtp://127.0.0.1:" << smtp_port_
         << "\"\n"
         << "[signature.rep]\nprivate-key = \"" << (dir() / "mx.test.key").string() << "\"\n"
         << "domain = \"mx.test\"\nselector = \"rep\"\nalgorithm = \"rsa-sha256\"\n"
         << "[store]\npath = \"" << (dir() / "mailreport.db").string() << "\"\n"
         << "[lmtp]\nunix-socket = \"\"\ntcp = \"127.0.0.1:" << lmtp_port_ << "\"\n"
         << "spool-dir = \"" << dir().string() << "\"\n"
         << "[dns]\nlocal-only = true\n"
         << "local-nxdomain = [\"_dmarc.test.\", \"_dmarc.other.test.\"]\nlocal-data = [\n";
    for (const auto& line : records) toml << "  '" << line << "',\n";
    toml << "]\n[milter]\nsocket = \"unix:" << (dir() / "milter.sock").string() << "\"\n"
         << "socket-group = \"postfix\"\nauthserv-id = \"" << kOurId << "\"\n"
         << "trusted-networks = []\nflush-interval = \"1s\"\n"
         << extra_toml();
    std::ofstream(config()) << toml.str();
  }

  void start_daemons() {
    namespace fs = std::filesystem;
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

  TempDir tmp_;
  dkim::TestKey signing_key_;
  std::optional<ChildProcess> milter_;
  std::optional<ChildProcess> lmtp_;
  bool created_ = false;
};

}  // namespace mailreport::test
