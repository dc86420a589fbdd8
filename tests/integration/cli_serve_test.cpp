// `mailreport serve`, run as a real process against a store the test fills (as the milter's
// writer does) and a fake sendmail the test writes (records its argv and the message): --once
// sends what is due and records it; a temporary failure leaves the report queued for a retry;
// the long-running loop sends reports queued after it started, reloads its configuration on
// SIGHUP (a broken file keeps the running one), and exits 0 on SIGTERM.
#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "process_util.hpp"
#include "sample_evaluation.hpp"
#include "testsupport.hpp"

namespace mailreport {
namespace {

namespace fs = std::filesystem;

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class CliServe : public ::testing::Test {
 protected:
  void SetUp() override {
    write_sendmail("sendmail", 0);
    write_config("sendmail");
  }

  // A fake sendmail that appends its argv to <name>.argv, keeps each message in
  // <name>.msg.<n>, and exits with `code`.
  void write_sendmail(const std::string& name, int code) {
    auto path = dir_ / name;
    std::ofstream(path) << "#!/bin/sh\n"
                        << "printf '%s ' \"$@\" >> '" << (dir_ / (name + ".argv")).string()
                        << "'\necho >> '" << (dir_ / (name + ".argv")).string() << "'\n"
                        << "cat > '" << (dir_ / name).string() << ".msg.$$'\n"
                        << "echo 'fake sendmail says hi' >&2\nexit " << code << "\n";
    fs::permissions(path, fs::perms::owner_all);
  }

  void write_config(const std::string& sendmail, const std::string& extra = "") {
    std::ofstream(dir_ / "mailreport.toml")
        << "[report]\ndomain = \"ours.example\"\nsubmitter = \"mx.ours.example\"\n"
        << "submit.sendmail-path = \"" << (dir_ / sendmail).string() << "\"\n"
        << extra << "\n[store]\npath = \"" << (dir_ / "mailreport.db").string() << "\"\n"
        << "[serve]\noutbox-interval = \"1s\"\n"
        // The TLS result collector listens in the test's directory, not in /run/mailreport.
        << "[tlsrpt]\nlisten = \"" << (dir_ / "tlsrpt.sock").string() << "\"\n";
  }

  std::unique_ptr<store::Store> open() {
    store::SqliteOptions o;
    o.path = dir_ / "mailreport.db";
    auto s = store::open_sqlite_store(o);
    EXPECT_TRUE(s) << s.error().describe();
    return s ? std::move(*s) : nullptr;
  }

  void queue(const std::string& recipient) {
    auto s = open();
    ASSERT_TRUE(s);
    std::vector<auth::Evaluation> batch{test::failing_evaluation(now_seconds(), recipient)};
    auto r = s->record_evaluations_counted(batch);
    ASSERT_TRUE(r) << r.error().describe();
    ASSERT_EQ(r->reports_queued, 1u);
  }

  std::vector<store::OutboxEntry> entries() {
    auto s = open();
    if (!s) return {};
    auto l = s->list_outbox({});
    EXPECT_TRUE(l);
    return l ? *l : std::vector<store::OutboxEntry>{};
  }

  // Waits until `pred` holds for the outbox, up to 20 s.
  template <class Pred>
  bool wait_for(Pred pred) {
    for (int i = 0; i < 200; ++i) {
      if (pred(entries())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::vector<std::string> argv_lines(const std::string& name) {
    if (!fs::exists(dir_ / (name + ".argv"))) return {};
    return test::lines_of(test::read_file(dir_ / (name + ".argv")));
  }

  test::RunResult mr(std::vector<std::string> args) {
    std::vector<std::string> argv{test::cli_binary().string(), "-c",
                                  (dir_ / "mailreport.toml").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = test::run_command(argv, "/dev/null", std::chrono::seconds(60));
    EXPECT_FALSE(r.timed_out);
    return r;
  }

  test::TempDir dir_;
};

TEST_F(CliServe, OnceSendsWhatIsDueThroughSendmailAndRecordsIt) {
  queue("ruf@example.com");
  auto r = mr({"serve", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(argv_lines("sendmail"),
            std::vector<std::string>{"-i -f noreply-dmarc@ours.example -- ruf@example.com "});
  auto e = entries();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].state, store::OutboxState::Sent);
  EXPECT_FALSE(e[0].message_id.empty());
  // The message as sendmail got it: LF line ends, the ARF fields, its Message-ID.
  std::string message;
  for (const auto& f : fs::directory_iterator(dir_.path())) {
    if (f.path().filename().string().rfind("sendmail.msg.", 0) == 0) {
      message = test::read_file(f.path());
    }
  }
  EXPECT_EQ(message.find('\r'), std::string::npos);
  EXPECT_NE(message.find("Feedback-Type: auth-failure"), std::string::npos) << message;
  EXPECT_NE(message.find(e[0].message_id), std::string::npos);
  // Nothing is sent twice.
  r = mr({"serve", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(argv_lines("sendmail").size(), 1u);
}

TEST_F(CliServe, ATemporaryFailureLeavesTheReportQueued) {
  write_sendmail("sendmail", 75);
  queue("ruf@example.com");
  auto r = mr({"serve", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto e = entries();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].state, store::OutboxState::Queued);
  EXPECT_EQ(e[0].attempts, 1u);
  EXPECT_NE(e[0].last_error.find("exited 75"), std::string::npos) << e[0].last_error;
  EXPECT_NE(e[0].last_error.find("fake sendmail says hi"), std::string::npos) << e[0].last_error;
  EXPECT_GT(e[0].next_attempt_at, now_seconds() + 30);
}

TEST_F(CliServe, AnUnknownSignatureIdIsAConfigurationError) {
  write_config("sendmail", "dmarc.sign = [\"missing\"]");
  auto r = mr({"serve", "--once"});
  EXPECT_EQ(r.exit_code, 78) << r.err;
}

TEST_F(CliServe, RunsUntilSigtermSendingWhatArrivesAndReloadsOnSighup) {
  auto child = test::ChildProcess::start(
      {test::cli_binary().string(), "-c", (dir_ / "mailreport.toml").string(), "serve"},
      dir_ / "serve.log");
  ASSERT_TRUE(child) << child.error().describe();
  queue("first@example.com");
  EXPECT_TRUE(wait_for([](const std::vector<store::OutboxEntry>& e) {
    return e.size() == 1 && e[0].state == store::OutboxState::Sent;
  })) << test::read_file(dir_ / "serve.log");
  EXPECT_EQ(argv_lines("sendmail").size(), 1u);

  // SIGHUP with another sendmail: the next report goes through it.
  write_sendmail("other-sendmail", 0);
  write_config("other-sendmail");
  ASSERT_EQ(::kill(child->pid(), SIGHUP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  queue("second@example.com");
  EXPECT_TRUE(wait_for([](const std::vector<store::OutboxEntry>& e) {
    return e.size() == 2 && e[1].state == store::OutboxState::Sent;
  })) << test::read_file(dir_ / "serve.log");
  EXPECT_EQ(argv_lines("other-sendmail"),
            std::vector<std::string>{"-i -f noreply-dmarc@ours.example -- second@example.com "});

  // A broken file on SIGHUP: it goes on with the running configuration.
  std::ofstream(dir_ / "mailreport.toml") << "[serve]\nno-such-key = 1\n";
  ASSERT_EQ(::kill(child->pid(), SIGHUP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(child->running());
  queue("third@example.com");
  EXPECT_TRUE(wait_for([](const std::vector<store::OutboxEntry>& e) {
    return e.size() == 3 && e[2].state == store::OutboxState::Sent;
  })) << test::read_file(dir_ / "serve.log");
  EXPECT_EQ(argv_lines("other-sendmail").size(), 2u);

  EXPECT_EQ(child->stop(), 0) << test::read_file(dir_ / "serve.log");
  std::string log = test::read_file(dir_ / "serve.log");
  EXPECT_NE(log.find("configuration reloaded"), std::string::npos) << log;
  EXPECT_NE(log.find("keeping the running configuration"), std::string::npos) << log;
}

}  // namespace
}  // namespace mailreport
