// "Nothing acknowledged is lost": several clients deliver distinct DMARC aggregate reports to
// the real mailreport-lmtp binary while it is killed with SIGKILL mid-way. Every message that
// got a 250 after DATA (RFC 2033 §4.2: the receiver took responsibility) must then be in the
// SQLite store, raw message and parsed report. The receiver is restarted on the same store
// afterwards, accepts mail again and exits 0 on SIGTERM.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mailreport/store/sqlite_store.hpp"
#include "mailreport/store/store.hpp"
#include "mailreport/util/bytes.hpp"
#include "testsupport.hpp"

extern char** environ;

namespace mailreport {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::vector<std::string> kRecipients = {"dmarc@reports.test", "dmarc+agg@reports.test"};

// A free loopback port (the kernel's choice, released again for the receiver to bind).
std::uint16_t free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 0;
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// A DMARC aggregate report (RFC 7489 Appendix C) as a message with an XML attachment.
std::string dmarc_message(const std::string& report_id, int count) {
  std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<feedback>\n"
      "  <report_metadata>\n"
      "    <org_name>kill.test</org_name>\n"
      "    <email>noreply-dmarc@kill.test</email>\n"
      "    <report_id>" +
      report_id +
      "</report_id>\n"
      "    <date_range><begin>1700000000</begin><end>1700086399</end></date_range>\n"
      "  </report_metadata>\n"
      "  <policy_published>\n"
      "    <domain>example.com</domain><adkim>r</adkim><aspf>r</aspf>\n"
      "    <p>none</p><sp>none</sp><pct>100</pct>\n"
      "  </policy_published>\n"
      "  <record>\n"
      "    <row>\n"
      "      <source_ip>192.0.2.10</source_ip><count>" +
      std::to_string(count) +
      "</count>\n"
      "      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim>"
      "<spf>pass</spf></policy_evaluated>\n"
      "    </row>\n"
      "    <identifiers><header_from>example.com</header_from></identifiers>\n"
      "    <auth_results>\n"
      "      <dkim><domain>example.com</domain><result>pass</result></dkim>\n"
      "      <spf><domain>example.com</domain><result>pass</result></spf>\n"
      "    </auth_results>\n"
      "  </record>\n"
      "</feedback>\n";
  std::string m =
      "Return-Path: <noreply-dmarc@kill.test>\r\n"
      "Delivered-To: dmarc@reports.test\r\n"
      "From: noreply-dmarc@kill.test\r\n"
      "To: dmarc@reports.test\r\n"
      "Subject: Report Domain: example.com Submitter: kill.test Report-ID: <" +
      report_id +
      ">\r\n"
      "Date: Wed, 15 Nov 2023 00:00:00 +0000\r\n"
      "Message-ID: <" +
      report_id +
      "@kill.test>\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: text/xml; charset=utf-8\r\n"
      "Content-Disposition: attachment; filename=\"kill.test!example.com!1700000000!"
      "1700086399.xml\"\r\n"
      "\r\n";
  for (std::size_t pos = 0; pos < xml.size();) {
    std::size_t nl = xml.find('\n', pos);
    std::string line = xml.substr(pos, nl - pos);
    if (!line.empty() && line.front() == '.') m += '.';  // RFC 5321 §4.5.2
    m += line + "\r\n";
    pos = nl + 1;
  }
  return m;
}

// The receiver process.
class Receiver {
 public:
  Receiver(const fs::path& config, const fs::path& log) {
    const auto binary = test::binary_dir() / "lmtp" / "mailreport-lmtp";
    std::vector<std::string> args{binary.string(), "--config", config.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (posix_spawn(&pid_, binary.c_str(), &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Receiver() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  bool started() const { return pid_ > 0; }
  bool running() {
    if (pid_ <= 0) return false;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      status_ = st;
      pid_ = -1;
      return false;
    }
    return true;
  }
  void signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  // Waits for the exit; returns the wait status.
  int wait() {
    if (pid_ > 0) {
      int st = 0;
      ::waitpid(pid_, &st, 0);
      status_ = st;
      pid_ = -1;
    }
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
};

UniqueFd connect_to(std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// A minimal LMTP client that reports every reply line as it is read, so that an
// acknowledgement is recorded even when the connection dies right after it.
class Conn {
 public:
  explicit Conn(UniqueFd fd) : fd_(std::move(fd)) {}
  bool send(std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ::send(fd_.get(), s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      s.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // The last line of the next reply; nullopt when the connection is gone.
  std::optional<std::string> reply() {
    for (;;) {
      auto eol = buf_.find("\r\n");
      if (eol != std::string::npos) {
        std::string line = buf_.substr(0, eol);
        buf_.erase(0, eol + 2);
        if (line.size() >= 4 && line[3] == '-') continue;
        return line;
      }
      char tmp[4096];
      ssize_t n = ::recv(fd_.get(), tmp, sizeof tmp, 0);
      if (n <= 0) return std::nullopt;
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }
  bool expect(std::string_view code) {
    auto r = reply();
    return r && r->rfind(code, 0) == 0;
  }

 private:
  UniqueFd fd_;
  std::string buf_;
};

struct Ledger {
  std::mutex mu;
  std::map<std::string, std::set<std::string>> acked;  // report id -> recipients with 250
  std::size_t attempted = 0;
  void ack(const std::string& id, const std::string& rcpt) {
    std::lock_guard lock(mu);
    acked[id].insert(rcpt);
  }
};

// Delivers messages, reconnecting after each failure, until `stop`.
void client_loop(std::uint16_t port, int thread, std::atomic<bool>& stop, Ledger& ledger,
                 std::atomic<int>& serial) {
  while (!stop) {
    UniqueFd fd = connect_to(port);
    if (!fd) {
      std::this_thread::sleep_for(20ms);
      continue;
    }
    Conn c(std::move(fd));
    if (!c.expect("220") || !c.send("LHLO client.test\r\n") || !c.expect("250")) continue;
    while (!stop) {
      std::string id = "kill-" + std::to_string(thread) + "-" + std::to_string(serial++);
      {
        std::lock_guard lock(ledger.mu);
        ++ledger.attempted;
      }
      // RFC 2920 pipelining: MAIL, RCPTs and DATA in one write.
      std::string cmds = "MAIL FROM:<noreply-dmarc@kill.test>\r\n";
      for (const auto& r : kRecipients) cmds += "RCPT TO:<" + r + ">\r\n";
      cmds += "DATA\r\n";
      if (!c.send(cmds) || !c.expect("250")) break;
      bool ok = true;
      for (std::size_t i = 0; i < kRecipients.size() && ok; ++i) ok = c.expect("250");
      if (!ok || !c.expect("354")) break;
      if (!c.send(dmarc_message(id, 1 + thread) + ".\r\n")) break;
      bool alive = true;
      for (const auto& r : kRecipients) {
        auto reply = c.reply();
        if (!reply) {
          alive = false;
          break;
        }
        if (reply->rfind("250", 0) == 0) ledger.ack(id, r);
      }
      if (!alive) break;
    }
  }
}

TEST(LmtpKillTest, NothingAcknowledgedIsLost) {
  const auto binary = test::binary_dir() / "lmtp" / "mailreport-lmtp";
  ASSERT_TRUE(fs::exists(binary)) << binary << " is missing (build the mailreport-lmtp target)";
  test::TempDir dir;
  const std::uint16_t port = free_port();
  ASSERT_NE(port, 0);
  const fs::path db = dir / "mailreport.db";
  const fs::path config = dir / "mailreport.toml";
  const fs::path log = dir / "mailreport-lmtp.log";
  fs::create_directories(dir / "spool");
  std::ofstream(config) << "[report]\n"
                           "domain = \"reports.test\"\n"
                           "submitter = \"mx.test\"\n"
                           "[report.analysis]\n"
                           "addresses = [\"dmarc@*\"]\n"
                           "[store]\n"
                           "type = \"sqlite\"\n"
                           "path = \""
                        << db.string()
                        << "\"\n"
                           "[lmtp]\n"
                           "unix-socket = \"\"\n"
                           "tcp = \"127.0.0.1:"
                        << port
                        << "\"\n"
                           "spool-dir = \""
                        << (dir / "spool").string() << "\"\n";
  auto log_tail = [&] { return "\nreceiver log:\n" + test::read_file(log); };

  auto wait_ready = [&](Receiver& r) {
    for (int i = 0; i < 200; ++i) {
      if (!r.running()) return false;
      UniqueFd fd = connect_to(port);
      if (fd) {
        Conn c(std::move(fd));
        if (c.expect("220")) return true;
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  };

  Ledger ledger;
  {
    Receiver receiver(config, log);
    ASSERT_TRUE(receiver.started());
    ASSERT_TRUE(wait_ready(receiver)) << "mailreport-lmtp did not start" << log_tail();

    std::atomic<bool> stop{false};
    std::atomic<int> serial{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 4; ++t) {
      clients.emplace_back([&, t] { client_loop(port, t, stop, ledger, serial); });
    }
    // Kill once deliveries are well under way (or after a few seconds at most).
    for (int i = 0; i < 100; ++i) {
      {
        std::lock_guard lock(ledger.mu);
        if (ledger.acked.size() >= 40) break;
      }
      std::this_thread::sleep_for(50ms);
    }
    receiver.signal(SIGKILL);
    int st = receiver.wait();
    EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    stop = true;
    for (auto& t : clients) t.join();
  }
  std::size_t acked_before_kill = 0;
  {
    std::lock_guard lock(ledger.mu);
    acked_before_kill = ledger.acked.size();
    ASSERT_GT(acked_before_kill, 0u) << "nothing was delivered before the kill" << log_tail();
    std::cout << "[ info     ] " << acked_before_kill << " of " << ledger.attempted
              << " messages acknowledged before SIGKILL\n";
    // Every 250 was given for every recipient of its message (one store commit per message).
    for (const auto& [id, rcpts] : ledger.acked) EXPECT_LE(rcpts.size(), kRecipients.size());
  }

  // Open the store the receiver left behind (WAL recovery happens here) and look for every
  // acknowledged message.
  auto check_store = [&](const std::set<std::string>& must_have) {
    store::SqliteOptions so;
    so.path = db;
    auto opened = store::open_sqlite_store(so);
    ASSERT_TRUE(opened.ok()) << opened.error().describe();
    store::Store& s = **opened;
    store::ReportFilter f;
    f.type = report::ReportType::DmarcAggregate;
    auto reports = s.list_reports(f);
    ASSERT_TRUE(reports.ok()) << reports.error().describe();
    std::map<std::string, store::ReportSummary> by_id;
    for (const auto& r : *reports) by_id[r.report_id] = r;
    std::size_t missing = 0;
    for (const auto& id : must_have) {
      auto it = by_id.find(id);
      if (it == by_id.end()) {
        ADD_FAILURE() << "acknowledged report " << id << " is not in the store";
        ++missing;
        continue;
      }
      EXPECT_EQ(it->second.org_name, "kill.test");
      EXPECT_EQ(it->second.policy_domain, "example.com");
      ASSERT_NE(it->second.message_id, 0) << id;
      auto raw = s.get_raw_message(it->second.message_id);
      ASSERT_TRUE(raw.ok()) << id << ": " << raw.error().describe();
      EXPECT_EQ(raw->parse_status, store::ParseStatus::Parsed) << id;
      EXPECT_EQ(raw->meta.source, "lmtp");
      EXPECT_EQ(raw->meta.mail_from, "noreply-dmarc@kill.test");
      std::string bytes;
      auto st = s.read_raw(it->second.message_id, [&](std::span<const char> piece) -> Status {
        bytes.append(piece.data(), piece.size());
        return {};
      });
      ASSERT_TRUE(st.ok()) << st.error().describe();
      EXPECT_EQ(bytes.size(), raw->size);
      EXPECT_NE(bytes.find("<report_id>" + id + "</report_id>"), std::string::npos) << id;
      // Stored as received: the MTA's trace headers first, nothing added.
      EXPECT_EQ(bytes.rfind("Return-Path: <noreply-dmarc@kill.test>\r\n", 0), 0u) << id;
    }
    EXPECT_EQ(missing, 0u) << missing << " of " << must_have.size()
                           << " acknowledged messages lost";
  };
  std::set<std::string> acked_ids;
  for (const auto& [id, rcpts] : ledger.acked) acked_ids.insert(id);
  check_store(acked_ids);

  // Restarted on the same store, the receiver takes mail again and stops cleanly on SIGTERM.
  {
    Receiver receiver(config, log);
    ASSERT_TRUE(wait_ready(receiver)) << "mailreport-lmtp did not restart" << log_tail();
    UniqueFd fd = connect_to(port);
    ASSERT_TRUE(fd);
    Conn c(std::move(fd));
    ASSERT_TRUE(c.expect("220"));
    ASSERT_TRUE(
        c.send("LHLO client.test\r\nMAIL FROM:<noreply-dmarc@kill.test>\r\n"
               "RCPT TO:<dmarc@reports.test>\r\nDATA\r\n"));
    ASSERT_TRUE(c.expect("250") && c.expect("250") && c.expect("250") && c.expect("354"));
    ASSERT_TRUE(c.send(dmarc_message("after-restart", 7) + ".\r\n"));
    auto r = c.reply();
    ASSERT_TRUE(r && r->rfind("250 2.0.0", 0) == 0) << (r ? *r : "no reply") << log_tail();
    ASSERT_TRUE(c.send("QUIT\r\n") && c.expect("221"));
    receiver.signal(SIGTERM);
    int st = receiver.wait();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "exit status " << st << log_tail();
  }
  acked_ids.insert("after-restart");
  check_store(acked_ids);
}

}  // namespace
}  // namespace mailreport
