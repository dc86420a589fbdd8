// End-to-end test of mailreport-lmtp behind Postfix's real lmtp(8) client.
//
// A private Postfix instance (tests/integration/postfix-instance.sh: its own config, queue and
// data directories in a temporary directory, smtpd on a free loopback port, no chroot, log
// file written by postlogd) relays the domain reports.test to mailreport-lmtp over
// lmtp:inet:127.0.0.1:PORT. The test speaks SMTP to that instance and sends
//   - a DMARC aggregate report (RFC 7489 App. C) as a gzip attachment,
//   - a TLS report (RFC 8460 §5.3: multipart/report; report-type="tlsrpt",
//     application/tlsrpt+gzip),
//   - a message to a mailbox that is not a report mailbox,
// then checks that Postfix logged status=sent for the two reports (the receiver answered 250
// after DATA, RFC 2033 §4.2), that the third was refused with 550 5.1.1 and bounced, and that
// `mailreport list dmarc|tls --json` shows the reports with the figures that were sent.
//
// Needs root (Postfix's master runs as root and its daemons as "postfix"; skipped otherwise)
// and the Debian postfix package (scripts/install-deps.sh --test; skipped without it, except
// under CI=true, where that is a failure). It never reads or writes /etc/postfix and never
// talks to a system instance.
#include <arpa/inet.h>
#include <fcntl.h>
#include <glib.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mailreport/util/bytes.hpp"
#include "testsupport.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using mailreport::UniqueFd;
using Json = nlohmann::json;

constexpr const char* kPostfix = "/usr/sbin/postfix";
// Generous bounds: CI machines have 2 cores and the ASan build is slow.
constexpr auto kStartTimeout = 60s;
constexpr auto kDeliveryTimeout = 90s;
constexpr auto kCommandTimeout = 120s;

// ---------------------------------------------------------------- small helpers

std::string tail(const fs::path& file, std::size_t lines = 40) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "(" + file.string() + " does not exist)\n";
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    last.push_back(std::move(line));
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += "    " + l + "\n";
  return out.empty() ? "(" + file.string() + " is empty)\n" : out;
}

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& file, std::string_view text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

// Binds two (or more) loopback ports at once so that they differ, then releases them. Another
// process could take one in between; on a test machine that is rare enough.
std::vector<std::uint16_t> free_loopback_ports(std::size_t n) {
  std::vector<UniqueFd> held;
  std::vector<std::uint16_t> ports;
  for (std::size_t i = 0; i < n; ++i) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error(std::string("bind: ") + std::strerror(errno));
    socklen_t len = sizeof addr;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    ports.push_back(ntohs(addr.sin_port));
    held.push_back(std::move(fd));
  }
  return ports;
}

UniqueFd connect_loopback(std::uint16_t port, std::chrono::seconds io_timeout) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(io_timeout.count());
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return {};
  return fd;
}

// Polls `done` every 200 ms until it is true or `timeout` has passed.
bool wait_until(std::chrono::milliseconds timeout, const std::function<bool()>& done) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(200ms);
  }
}

// ---------------------------------------------------------------- processes

// A child process with stdout and stderr sent to files. The destructor stops it (SIGTERM,
// then SIGKILL after 10 s), so a failing test never leaves it behind.
class Child {
 public:
  Child() = default;
  Child(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
    }
  }
  Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)), status_(o.status_) {}
  Child& operator=(Child&& o) noexcept {
    if (this != &o) {
      stop();
      pid_ = std::exchange(o.pid_, -1);
      status_ = o.status_;
    }
    return *this;
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { stop(); }

  bool running() {
    if (pid_ < 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      status_ = status;
      return false;
    }
    return true;
  }

  // The wait status once it has exited within `timeout`, nullopt if it is still running.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    if (!wait_until(timeout, [&] { return !running(); })) return std::nullopt;
    return status_;
  }

  // SIGTERM, then SIGKILL if it has not exited within `grace`.
  void stop(std::chrono::milliseconds grace = 10s) {
    if (!running()) return;
    ::kill(pid_, SIGTERM);
    if (wait(grace)) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    status_ = status;
    pid_ = -1;
  }

  int status() const noexcept { return status_; }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
};

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

struct CommandResult {
  bool finished = false;  // false: killed after the timeout
  int exit_code = -1;     // -1 unless it exited normally
  std::string out;
  std::string err;
  std::string describe(const std::string& what) const {
    std::string s = what + ": " +
                    (finished ? (exit_code >= 0 ? "exit code " + std::to_string(exit_code)
                                                : "killed by a signal")
                              : "timed out") +
                    "\n";
    s += "  stdout:\n" + (out.empty() ? std::string("    (empty)\n") : out);
    s += "  stderr:\n" + (err.empty() ? std::string("    (empty)\n") : err);
    return s;
  }
};

// Runs a command to completion (bounded), capturing its output through files in `dir`.
CommandResult run(const std::vector<std::string>& argv, const fs::path& dir,
                  std::chrono::milliseconds timeout = kCommandTimeout) {
  static int counter = 0;
  const auto base = dir / ("cmd-" + std::to_string(++counter));
  const fs::path out = base.string() + ".out", err = base.string() + ".err";
  CommandResult r;
  {
    Child child(argv, out, err);
    if (auto status = child.wait(timeout)) {
      r.finished = true;
      if (WIFEXITED(*status)) r.exit_code = WEXITSTATUS(*status);
    }
  }  // ~Child stops it if it is still running
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// ---------------------------------------------------------------- report bytes

// gzip (RFC 1952) through zlib: windowBits 15 + 16 selects the gzip wrapper.
std::string gzip(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  std::unique_ptr<z_stream, decltype(&deflateEnd)> guard(&zs, &deflateEnd);
  std::string out(deflateBound(&zs, data.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate failed");
  out.resize(zs.total_out);
  return out;
}

// Base64 (GLib's encoder) in lines of 76 characters (RFC 2045 §6.8), CRLF-terminated.
std::string base64_lines(std::string_view data) {
  std::unique_ptr<gchar, decltype(&g_free)> encoded(
      g_base64_encode(reinterpret_cast<const guchar*>(data.data()), data.size()), &g_free);
  const std::string_view all(encoded.get());
  std::string out;
  for (std::size_t i = 0; i < all.size(); i += 76) {
    out += all.substr(i, 76);
    out += "\r\n";
  }
  return out;
}

// Joins lines with CRLF (SMTP's line ending).
std::string crlf(std::initializer_list<std::string_view> lines) {
  std::string out;
  for (auto l : lines) {
    out += l;
    out += "\r\n";
  }
  return out;
}

struct SentDmarc {
  static constexpr const char* org = "Postfix Integration Org";
  static constexpr const char* report_id = "pf-dmarc-20231115-1";
  static constexpr const char* domain = "example.com";
  static constexpr std::uint64_t messages = 5;  // 3 + 2
  static constexpr std::uint64_t pass = 3;      // the first row: DKIM and SPF pass, aligned
  static constexpr std::uint64_t fail = 2;
};

std::string dmarc_xml() {
  return R"(<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>Postfix Integration Org</org_name>
    <email>noreply-dmarc@sender.test</email>
    <report_id>pf-dmarc-20231115-1</report_id>
    <date_range>
      <begin>1700006400</begin>
      <end>1700092799</end>
    </date_range>
  </report_metadata>
  <policy_published>
    <domain>example.com</domain>
    <adkim>r</adkim>
    <aspf>r</aspf>
    <p>none</p>
    <sp>none</sp>
    <pct>100</pct>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.10</source_ip>
      <count>3</count>
      <policy_evaluated>
        <disposition>none</disposition>
        <dkim>pass</dkim>
        <spf>pass</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>example.com</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>example.com</domain>
        <selector>s1</selector>
        <result>pass</result>
      </dkim>
      <spf>
        <domain>example.com</domain>
        <result>pass</result>
      </spf>
    </auth_results>
  </record>
  <record>
    <row>
      <source_ip>198.51.100.77</source_ip>
      <count>2</count>
      <policy_evaluated>
        <disposition>none</disposition>
        <dkim>fail</dkim>
        <spf>fail</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>example.com</header_from>
    </identifiers>
    <auth_results>
      <spf>
        <domain>spammer.example</domain>
        <result>fail</result>
      </spf>
    </auth_results>
  </record>
</feedback>
)";
}

// An aggregate report as Google and others send it: multipart/mixed with a text part and the
// gzip-compressed XML as a base64 attachment (RFC 7489 §7.2.1.1 file name).
std::string dmarc_message() {
  const std::string name = "sender.test!example.com!1700006400!1700092799.xml.gz";
  return crlf({
             "From: DMARC Reporter <noreply-dmarc@sender.test>",
             "To: dmarc@reports.test",
             "Subject: Report Domain: example.com Submitter: sender.test Report-ID: "
             "<pf-dmarc-20231115-1>",
             "Date: Thu, 16 Nov 2023 00:10:00 +0000",
             "Message-ID: <pf-dmarc-20231115-1@sender.test>",
             "MIME-Version: 1.0",
             "Content-Type: multipart/mixed; boundary=\"=_pf_dmarc\"",
             "",
             "--=_pf_dmarc",
             "Content-Type: text/plain; charset=us-ascii",
             "",
             "This is a DMARC aggregate report for example.com.",
             "",
             "--=_pf_dmarc",
         }) +
         crlf({
             "Content-Type: application/gzip; name=\"" + name + "\"",
             "Content-Transfer-Encoding: base64",
             "Content-Disposition: attachment; filename=\"" + name + "\"",
             "",
         }) +
         base64_lines(gzip(dmarc_xml())) + crlf({"--=_pf_dmarc--"});
}

struct SentTls {
  static constexpr const char* org = "Postfix Integration TLS Org";
  static constexpr const char* report_id = "pf-tls-20231115-1";
  static constexpr const char* domain = "example.com";
  static constexpr std::uint64_t sessions_ok = 10;
  static constexpr std::uint64_t sessions_failed = 2;
};

std::string tls_json() {
  return R"({
  "organization-name": "Postfix Integration TLS Org",
  "date-range": {
    "start-datetime": "2023-11-15T00:00:00Z",
    "end-datetime": "2023-11-15T23:59:59Z"
  },
  "contact-info": "tlsrpt@sender.test",
  "report-id": "pf-tls-20231115-1",
  "policies": [
    {
      "policy": {
        "policy-type": "sts",
        "policy-string": ["version: STSv1", "mode: testing", "mx: mx.example.com", "max_age: 86400"],
        "policy-domain": "example.com",
        "mx-host": ["mx.example.com"]
      },
      "summary": {
        "total-successful-session-count": 10,
        "total-failure-session-count": 2
      },
      "failure-details": [
        {
          "result-type": "certificate-expired",
          "sending-mta-ip": "192.0.2.25",
          "receiving-mx-hostname": "mx.example.com",
          "receiving-ip": "203.0.113.25",
          "failed-session-count": 2
        }
      ]
    }
  ]
}
)";
}

// RFC 8460 §5.3: multipart/report; report-type="tlsrpt", the report as application/tlsrpt+gzip.
std::string tls_message() {
  const std::string name = "sender.test!example.com!1700006400!1700092799!001.json.gz";
  return crlf({
             "From: TLS Reporter <tlsrpt-noreply@sender.test>",
             "To: tlsrpt@reports.test",
             "Subject: Report Domain: example.com Submitter: sender.test Report-ID: "
             "<pf-tls-20231115-1>",
             "Date: Thu, 16 Nov 2023 00:20:00 +0000",
             "Message-ID: <pf-tls-20231115-1@sender.test>",
             "TLS-Report-Domain: example.com",
             "TLS-Report-Submitter: sender.test",
             "MIME-Version: 1.0",
             "Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"=_pf_tls\"",
             "",
             "--=_pf_tls",
             "Content-Type: text/plain; charset=us-ascii",
             "",
             "This is an aggregate TLS report from sender.test.",
             "",
             "--=_pf_tls",
         }) +
         crlf({
             "Content-Type: application/tlsrpt+gzip",
             "Content-Transfer-Encoding: base64",
             "Content-Disposition: attachment; filename=\"" + name + "\"",
             "",
         }) +
         base64_lines(gzip(tls_json())) + crlf({"--=_pf_tls--"});
}

std::string plain_message() {
  return crlf({
      "From: Someone <someone@sender.test>",
      "To: someone@reports.test",
      "Subject: not a report",
      "Date: Thu, 16 Nov 2023 00:30:00 +0000",
      "Message-ID: <not-a-report@sender.test>",
      "",
      "Hello. This mailbox is not a report mailbox, so mailreport-lmtp refuses it.",
      ".A line that starts with a dot (dot-stuffed on the wire).",
  });
}

// ---------------------------------------------------------------- SMTP client

// Just enough SMTP (RFC 5321) to hand messages to Postfix's smtpd: one command at a time,
// multi-line replies, dot-stuffed DATA. Each step returns the reply or a description of what
// went wrong.
class SmtpClient {
 public:
  struct Reply {
    int code = 0;
    std::string text;  // all lines, as received
  };

  bool connect(std::uint16_t port, std::string& error) {
    fd_ = connect_loopback(port, 60s);
    if (!fd_) {
      error = "cannot connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno);
      return false;
    }
    return expect(read_reply(), 220, "greeting", error);
  }

  bool ehlo(std::string_view name, std::string& error) {
    return command("EHLO " + std::string(name), 250, error);
  }

  // Sends one message; on success `queue_id` is Postfix's queue id ("250 2.0.0 Ok: queued as
  // 4ABC123").
  bool send(std::string_view from, std::string_view to, std::string_view message,
            std::string& queue_id, std::string& error) {
    if (!command("MAIL FROM:<" + std::string(from) + ">", 250, error)) return false;
    if (!command("RCPT TO:<" + std::string(to) + ">", 250, error)) return false;
    if (!command("DATA", 354, error)) return false;
    std::string body;
    std::size_t pos = 0;
    while (pos < message.size()) {
      auto end = message.find("\r\n", pos);
      if (end == std::string_view::npos) end = message.size();
      const auto line = message.substr(pos, end - pos);
      if (!line.empty() && line.front() == '.') body += '.';  // RFC 5321 §4.5.2
      body += line;
      body += "\r\n";
      pos = end + 2;
    }
    body += ".\r\n";
    if (!write_all(body, error)) return false;
    Reply r = read_reply();
    if (!expect(r, 250, "end of DATA", error)) return false;
    const auto at = r.text.find("queued as ");
    if (at != std::string::npos) {
      queue_id = r.text.substr(at + 10);
      while (!queue_id.empty() && std::isspace(static_cast<unsigned char>(queue_id.back())))
        queue_id.pop_back();
    }
    if (queue_id.empty()) {
      error = "no queue id in the reply to DATA: " + r.text;
      return false;
    }
    return true;
  }

  bool quit(std::string& error) { return command("QUIT", 221, error); }

 private:
  bool command(const std::string& line, int want, std::string& error) {
    if (!write_all(line + "\r\n", error)) return false;
    return expect(read_reply(), want, line, error);
  }

  static bool expect(const Reply& r, int want, const std::string& what, std::string& error) {
    if (r.code == want) return true;
    error = "after " + what + ": expected " + std::to_string(want) + ", got " +
            (r.code ? r.text : "no reply (" + r.text + ")");
    return false;
  }

  bool write_all(std::string_view bytes, std::string& error) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        error = std::string("send: ") + std::strerror(errno);
        return false;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads lines until one of the form "NNN text" (the last line of a reply; RFC 5321 §4.2.1).
  Reply read_reply() {
    Reply r;
    for (;;) {
      auto eol = buf_.find("\r\n");
      while (eol == std::string::npos) {
        char chunk[4096];
        const ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
        if (n <= 0) {
          r.code = 0;
          r.text += n == 0 ? "connection closed" : std::string("recv: ") + std::strerror(errno);
          return r;
        }
        buf_.append(chunk, static_cast<std::size_t>(n));
        eol = buf_.find("\r\n");
      }
      std::string line = buf_.substr(0, eol);
      buf_.erase(0, eol + 2);
      r.text += line + "\n";
      if (line.size() < 3) continue;
      if (line.size() == 3 || line[3] == ' ') {
        r.code = std::atoi(line.substr(0, 3).c_str());
        return r;
      }
    }
  }

  UniqueFd fd_;
  std::string buf_;
};

// ---------------------------------------------------------------- the fixture

// Whether `line` contains every needle; the failure message names the missing ones.
::testing::AssertionResult contains_all(const std::string& line,
                                        const std::vector<std::string>& needles) {
  std::string missing;
  for (const auto& n : needles) {
    if (line.find(n) == std::string::npos) missing += " \"" + n + "\"";
  }
  if (missing.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the log line\n    " << line << "\n  lacks" << missing;
}

// The entries of the CLI's --json output: a JSON array of objects, an object holding such an
// array, or one object per line.
std::vector<Json> entries(const std::string& output) {
  std::vector<Json> out;
  auto collect = [&](const Json& j) {
    if (j.is_array()) {
      for (const auto& e : j) out.push_back(e);
    } else if (j.is_object()) {
      bool nested = false;
      for (const auto& [k, v] : j.items()) {
        if (v.is_array() && !v.empty() && v.front().is_object()) {
          for (const auto& e : v) out.push_back(e);
          nested = true;
        }
      }
      if (!nested) out.push_back(j);
    }
  };
  Json whole = Json::parse(output, nullptr, /*allow_exceptions=*/false);
  if (!whole.is_discarded()) {
    collect(whole);
  } else {
    std::istringstream in(output);
    for (std::string line; std::getline(in, line);) {
      Json j = Json::parse(line, nullptr, false);
      if (!j.is_discarded()) collect(j);
    }
  }
  return out;
}

// The entry whose string field `key` equals `value`.
std::optional<Json> find_entry(const std::string& output, const std::string& key,
                               const std::string& value) {
  for (const auto& e : entries(output)) {
    if (e.is_object() && e.contains(key) && e[key].is_string() && e[key] == value) return e;
  }
  return std::nullopt;
}

std::uint64_t number(const Json& entry, const std::string& key) {
  if (!entry.contains(key) || !entry[key].is_number()) return ~std::uint64_t{0};
  return entry[key].get<std::uint64_t>();
}

class PostfixLmtpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "the test needs root to run a private Postfix instance (its master runs "
                      "as root, its daemons as \"postfix\"). Skipping.";
    }
    std::string missing;
    if (!fs::exists(kPostfix)) {
      missing = std::string(kPostfix) +
                " is missing (install the postfix package: scripts/install-deps.sh --test)";
    } else if (!::getpwnam("postfix") || !::getgrnam("postdrop")) {
      missing = "the postfix user or the postdrop group is missing (install the postfix package)";
    }
    if (!missing.empty()) {
      if (mailreport::test::running_in_ci()) FAIL() << missing << "; under CI=true this fails.";
      GTEST_SKIP() << missing << ". Skipping; under CI=true this is a failure.";
    }

    // Postfix's daemons run as "postfix" and must reach the configuration and queue.
    for (fs::path p = dir(); p != p.root_path(); p = p.parent_path()) {
      if ((fs::status(p).permissions() & fs::perms::others_exec) == fs::perms::none && p != dir()) {
        FAIL() << p << " is not searchable by the postfix user; set TMPDIR to a directory "
               << "such as /tmp";
      }
    }
    fs::permissions(dir(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);

    const auto ports = free_loopback_ports(2);
    smtp_port_ = ports[0];
    lmtp_port_ = ports[1];

    start_receiver();
    if (HasFatalFailure()) return;
    start_postfix();
  }

  void TearDown() override {
    // Postfix first (its lmtp client may hold a connection), then the receiver; both also
    // happen in the destructors when SetUp failed half-way.
    stop_postfix();
    receiver_.stop();
  }

  ~PostfixLmtpTest() override { stop_postfix(/*check=*/false); }

  const fs::path& dir() const { return tmp_.path(); }
  fs::path pfdir() const { return dir() / "postfix"; }
  fs::path maillog() const { return pfdir() / "maillog"; }
  fs::path receiver_err() const { return dir() / "mailreport-lmtp.stderr"; }
  fs::path config() const { return dir() / "mailreport.toml"; }

  std::string diagnostics() const {
    return "\n  Postfix maillog (" + maillog().string() + "), last lines:\n" + tail(maillog()) +
           "  mailreport-lmtp stderr (" + receiver_err().string() + "), last lines:\n" +
           tail(receiver_err());
  }

  void start_receiver() {
    fs::create_directories(dir() / "spool");
    // Keys as documented in conf/mailreport.toml. No unix socket: Postfix uses TCP here.
    std::ostringstream toml;
    toml << "# mailreport configuration of the Postfix integration test\n"
         << "[report]\n"
         << "domain = \"reports.test\"\n"
         << "submitter = \"mx.test\"\n\n"
         << "[report.analysis]\n"
         << "addresses = [\"dmarc@*\", \"tlsrpt@*\"]\n\n"
         << "[store]\n"
         << "type = \"sqlite\"\n"
         << "path = " << (dir() / "mailreport.db") << "\n\n"
         << "[lmtp]\n"
         << "unix-socket = \"\"\n"
         << "tcp = \"127.0.0.1:" << lmtp_port_ << "\"\n"
         << "spool-dir = " << (dir() / "spool") << "\n\n"
         << "[log]\n"
         << "level = \"debug\"\n";
    write_file(config(), toml.str());
    const auto binary = mailreport::test::binary_dir() / "lmtp" / "mailreport-lmtp";
    ASSERT_TRUE(fs::exists(binary)) << binary << " is missing (build the mailreport-lmtp target)";
    receiver_ = Child({binary.string(), "--config", config().string()},
                      dir() / "mailreport-lmtp.stdout", receiver_err());
    // Ready once it accepts connections on its TCP port (and answers the LMTP greeting).
    const bool ready = wait_until(kStartTimeout, [&] {
      if (!receiver_.running()) return true;
      UniqueFd fd = connect_loopback(lmtp_port_, 5s);
      if (!fd) return false;
      char greeting[512];
      const ssize_t n = ::recv(fd.get(), greeting, sizeof greeting, 0);
      return n >= 3 && std::string_view(greeting, 3) == "220";
    });
    ASSERT_TRUE(receiver_.running()) << "mailreport-lmtp exited at start-up ("
                                     << describe_status(receiver_.status()) << ")\n  stderr:\n"
                                     << tail(receiver_err());
    ASSERT_TRUE(ready) << "mailreport-lmtp did not greet on 127.0.0.1:" << lmtp_port_ << " within "
                       << kStartTimeout.count() << " s\n  stderr:\n"
                       << tail(receiver_err());
  }

  std::vector<std::string> script(std::vector<std::string> args) const {
    args.insert(
        args.begin(),
        {"/bin/bash",
         (mailreport::test::source_dir() / "tests/integration/postfix-instance.sh").string()});
    return args;
  }

  void start_postfix() {
    auto created = run(script({"create", pfdir().string(), std::to_string(smtp_port_),
                               std::to_string(lmtp_port_)}),
                       dir());
    ASSERT_EQ(created.exit_code, 0) << created.describe("postfix-instance.sh create");
    postfix_created_ = true;
    auto started = run(script({"start", pfdir().string()}), dir());
    ASSERT_EQ(started.exit_code, 0) << started.describe(
                                           "postfix-instance.sh start (postfix "
                                           "check + postfix start)")
                                    << diagnostics();
    const bool listening = wait_until(
        kStartTimeout, [&] { return static_cast<bool>(connect_loopback(smtp_port_, 5s)); });
    ASSERT_TRUE(listening) << "Postfix's smtpd does not accept on 127.0.0.1:" << smtp_port_
                           << diagnostics();
  }

  void stop_postfix(bool check = true) {
    if (!postfix_created_) return;
    postfix_created_ = false;
    auto stopped = run(script({"stop", pfdir().string()}), dir());
    if (check) {
      EXPECT_EQ(stopped.exit_code, 0) << stopped.describe("postfix-instance.sh stop");
    }
  }

  // Waits until the maillog has a line with every one of `needles`; returns that line.
  std::optional<std::string> wait_for_log(const std::vector<std::string>& needles) {
    std::string found;
    wait_until(kDeliveryTimeout, [&] {
      std::ifstream in(maillog());
      for (std::string line; std::getline(in, line);) {
        bool all = true;
        for (const auto& n : needles) all = all && line.find(n) != std::string::npos;
        if (all) {
          found = line;
          return true;
        }
      }
      return false;
    });
    if (found.empty()) return std::nullopt;
    return found;
  }

  CommandResult cli(const std::vector<std::string>& args) {
    std::vector<std::string> argv{(mailreport::test::binary_dir() / "cli" / "mailreport").string(),
                                  "-c", config().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, dir());
  }

  // Polls `mailreport list TYPE --json` until an entry has report_id == id.
  std::optional<Json> wait_for_report(const std::string& type, const std::string& id,
                                      CommandResult& last) {
    std::optional<Json> entry;
    wait_until(kDeliveryTimeout, [&] {
      last = cli({"list", type, "--json"});
      if (last.exit_code != 0) return false;
      entry = find_entry(last.out, "report_id", id);
      return entry.has_value();
    });
    return entry;
  }

  // `mailreport show ID --json` of a listed entry; an empty object (and a failure) when the
  // command fails or prints no JSON object.
  Json show(const Json& listed) {
    if (!listed.contains("id") || !listed["id"].is_number()) {
      ADD_FAILURE() << "the listed report has no numeric id: " << listed.dump(2);
      return Json::object();
    }
    const auto id = std::to_string(listed["id"].get<std::int64_t>());
    auto r = cli({"show", id, "--json"});
    Json j = Json::parse(r.out, nullptr, false);
    if (r.exit_code != 0 || !j.is_object()) {
      ADD_FAILURE() << r.describe("mailreport show " + id + " --json");
      return Json::object();
    }
    return j;
  }

  mailreport::test::TempDir tmp_;  // destroyed last: after both processes are gone
  Child receiver_;
  bool postfix_created_ = false;
  std::uint16_t smtp_port_ = 0;
  std::uint16_t lmtp_port_ = 0;
};

TEST_F(PostfixLmtpTest, PostfixDeliversReportsOverLmtpAndBouncesOtherMailboxes) {
  SmtpClient smtp;
  std::string error, dmarc_qid, tls_qid, plain_qid;
  ASSERT_TRUE(smtp.connect(smtp_port_, error)) << error << diagnostics();
  ASSERT_TRUE(smtp.ehlo("client.sender.test", error)) << error << diagnostics();
  ASSERT_TRUE(smtp.send("noreply-dmarc@sender.test", "dmarc@reports.test", dmarc_message(),
                        dmarc_qid, error))
      << "DMARC report: " << error << diagnostics();
  ASSERT_TRUE(
      smtp.send("tlsrpt-noreply@sender.test", "tlsrpt@reports.test", tls_message(), tls_qid, error))
      << "TLS report: " << error << diagnostics();
  ASSERT_TRUE(
      smtp.send("someone@sender.test", "someone@reports.test", plain_message(), plain_qid, error))
      << "plain message: " << error << diagnostics();
  EXPECT_TRUE(smtp.quit(error)) << error;

  // Postfix's lmtp client delivered both reports to the receiver: RFC 2033 §4.2, the 250
  // after DATA is the receiver's promise that the message is committed.
  const std::string relay = "relay=127.0.0.1[127.0.0.1]:" + std::to_string(lmtp_port_);
  for (const auto& [qid, rcpt] : {std::pair{dmarc_qid, std::string("dmarc@reports.test")},
                                  std::pair{tls_qid, std::string("tlsrpt@reports.test")}}) {
    auto line = wait_for_log({"postfix/lmtp[", qid + ": to=<" + rcpt + ">", "status="});
    ASSERT_TRUE(line) << "no delivery attempt of " << qid << " to " << rcpt << " logged within "
                      << kDeliveryTimeout.count() << " s" << diagnostics();
    EXPECT_TRUE(contains_all(*line, {relay, "dsn=2.0.0, status=sent"}))
        << "the report was not delivered to mailreport-lmtp" << diagnostics();
  }

  // The receiver refused the other mailbox at RCPT (550 5.1.1); Postfix bounced the message
  // and sent a non-delivery notification to the sender.
  auto bounced =
      wait_for_log({"postfix/lmtp[", plain_qid + ": to=<someone@reports.test>", "status="});
  ASSERT_TRUE(bounced) << "no delivery attempt of " << plain_qid << " logged" << diagnostics();
  EXPECT_TRUE(contains_all(*bounced, {relay, "dsn=5.1.1, status=bounced", "said: 550 5.1.1",
                                      "(in reply to RCPT TO command)"}))
      << "mailreport-lmtp did not refuse someone@reports.test with 550 5.1.1" << diagnostics();
  if (bounced->find("status=bounced") != std::string::npos) {
    EXPECT_TRUE(wait_for_log({plain_qid + ": sender non-delivery notification"}))
        << "Postfix sent no bounce for " << plain_qid << diagnostics();
  }

  // What the receiver stored, as the CLI shows it.
  CommandResult last;
  auto dmarc = wait_for_report("dmarc", SentDmarc::report_id, last);
  ASSERT_TRUE(dmarc) << "the DMARC report is not listed within " << kDeliveryTimeout.count()
                     << " s\n"
                     << last.describe("mailreport list dmarc --json") << diagnostics();
  EXPECT_EQ((*dmarc)["org_name"], SentDmarc::org) << dmarc->dump(2);
  EXPECT_EQ((*dmarc)["policy_domain"], SentDmarc::domain) << dmarc->dump(2);
  EXPECT_EQ(number(*dmarc, "messages"), SentDmarc::messages) << dmarc->dump(2);
  EXPECT_EQ(number(*dmarc, "pass"), SentDmarc::pass) << dmarc->dump(2);
  EXPECT_EQ(number(*dmarc, "fail"), SentDmarc::fail) << dmarc->dump(2);
  EXPECT_EQ(number(*dmarc, "errors"), 0u) << dmarc->dump(2);

  // The records themselves, as `mailreport show ID --json` gives them.
  auto shown = show(*dmarc);
  ASSERT_TRUE(shown.contains("records") && shown["records"].is_array()) << shown.dump(2);
  std::map<std::string, std::uint64_t> rows;
  for (const auto& rec : shown["records"]) {
    rows[rec["row"]["source_ip"].get<std::string>()] += rec["row"]["count"].get<std::uint64_t>();
  }
  const std::map<std::string, std::uint64_t> sent_rows{{"192.0.2.10", 3}, {"198.51.100.77", 2}};
  EXPECT_EQ(shown["records"].size(), 2u) << shown.dump(2);
  EXPECT_EQ(rows, sent_rows) << shown.dump(2);

  auto tls = wait_for_report("tls", SentTls::report_id, last);
  ASSERT_TRUE(tls) << "the TLS report is not listed within " << kDeliveryTimeout.count() << " s\n"
                   << last.describe("mailreport list tls --json") << diagnostics();
  EXPECT_EQ((*tls)["org_name"], SentTls::org) << tls->dump(2);
  EXPECT_EQ((*tls)["policy_domain"], SentTls::domain) << tls->dump(2);
  EXPECT_EQ(number(*tls, "sessions_ok"), SentTls::sessions_ok) << tls->dump(2);
  EXPECT_EQ(number(*tls, "sessions_failed"), SentTls::sessions_failed) << tls->dump(2);
  EXPECT_EQ(number(*tls, "errors"), 0u) << tls->dump(2);

  shown = show(*tls);
  ASSERT_TRUE(shown.contains("policies") && shown["policies"].size() == 1) << shown.dump(2);
  const auto& policy = shown["policies"][0];
  ASSERT_TRUE(policy.contains("failure-details") && policy["failure-details"].size() == 1)
      << shown.dump(2);
  EXPECT_EQ(policy["failure-details"][0]["result-type"], "certificate-expired") << shown.dump(2);
  EXPECT_EQ(policy["failure-details"][0]["failed-session-count"], 2) << shown.dump(2);

  // mailreport-lmtp stops gracefully on SIGTERM and exits 0 (under ASan this also says that
  // LeakSanitizer found nothing).
  stop_postfix();
  receiver_.stop(60s);
  EXPECT_TRUE(WIFEXITED(receiver_.status()) && WEXITSTATUS(receiver_.status()) == 0)
      << "mailreport-lmtp did not exit 0 on SIGTERM: " << describe_status(receiver_.status())
      << diagnostics();

  // Nothing else was stored: one report of each type (the refused message never reached
  // the store).
  EXPECT_EQ(entries(cli({"list", "dmarc", "--json"}).out).size(), 1u);
  EXPECT_EQ(entries(cli({"list", "tls", "--json"}).out).size(), 1u);
}

}  // namespace
