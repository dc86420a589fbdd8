// Submission to the MTA: a fake sendmail written by the test (records its argv and stdin, says
// something on stderr, exits with a chosen code) for the sysexits mapping, timeouts and signals;
// a loopback SMTP server in the test for libcurl's MAIL/RCPT/DATA and the 4yz/5yz mapping.
#include "mailreport/outbound/submit.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "mailreport/util/bytes.hpp"
#include "testsupport.hpp"

namespace mailreport::outbound {
namespace {

using test::TempDir;

const std::string kMessage =
    "From: Report <noreply@ours.example>\r\nTo: ruf@example.com\r\nSubject: x\r\n\r\n"
    "line one\r\n.\r\nline after a lone dot\r\n";

// Writes an executable shell script `body` as the fake sendmail.
std::filesystem::path fake_sendmail(const TempDir& dir, const std::string& body) {
  auto path = dir / "sendmail";
  {
    std::ofstream f(path);
    f << "#!/bin/sh\n" << body << "\n";
  }
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path;
}

config::SubmitConfig sendmail_config(const std::filesystem::path& path, int timeout = 10) {
  config::SubmitConfig c;
  c.method = config::SubmitMethod::Sendmail;
  c.sendmail_path = path;
  c.timeout = std::chrono::seconds(timeout);
  return c;
}

std::string recording(const TempDir& dir, int code) {
  return "printf '%s\\n' \"$@\" > '" + (dir / "argv").string() + "'\ncat > '" +
         (dir / "stdin").string() + "'\necho 'said something' >&2\nexit " + std::to_string(code);
}

TEST(SendmailSubmitter, PassesTheEnvelopeAndTheMessageWithLfLineEnds) {
  TempDir dir;
  auto s = make_submitter(sendmail_config(fake_sendmail(dir, recording(dir, 0))));
  auto out = s->submit("noreply-dmarc@ours.example", "ruf@example.com", kMessage);
  EXPECT_EQ(out.status, SubmitStatus::Sent) << out.detail;
  EXPECT_EQ(test::read_file(dir / "argv"),
            "-i\n-f\nnoreply-dmarc@ours.example\n--\nruf@example.com\n");
  EXPECT_EQ(test::read_file(dir / "stdin"),
            "From: Report <noreply@ours.example>\nTo: ruf@example.com\nSubject: x\n\n"
            "line one\n.\nline after a lone dot\n");
}

TEST(SendmailSubmitter, ALargeMessageIsWrittenWhole) {
  TempDir dir;
  auto s = make_submitter(sendmail_config(fake_sendmail(dir, recording(dir, 0))));
  std::string big = "Subject: big\r\n\r\n";
  for (int i = 0; i < 40000; ++i) big += "0123456789012345678901234567890123456789\r\n";
  auto out = s->submit("a@ours.example", "b@example.com", big);
  EXPECT_EQ(out.status, SubmitStatus::Sent) << out.detail;
  EXPECT_EQ(std::filesystem::file_size(dir / "stdin"), big.size() - 40002);
}

TEST(SendmailSubmitter, ExTempFailIsTemporaryOtherCodesPermanent) {
  TempDir dir;
  auto temp = make_submitter(sendmail_config(fake_sendmail(dir, recording(dir, 75))));
  auto out = temp->submit("a@ours.example", "b@example.com", kMessage);
  EXPECT_EQ(out.status, SubmitStatus::TempFail);
  EXPECT_NE(out.detail.find("exited 75"), std::string::npos) << out.detail;
  EXPECT_NE(out.detail.find("said something"), std::string::npos) << out.detail;

  TempDir dir2;
  auto perm = make_submitter(sendmail_config(fake_sendmail(dir2, recording(dir2, 67))));
  out = perm->submit("a@ours.example", "nobody@example.com", kMessage);
  EXPECT_EQ(out.status, SubmitStatus::PermFail);
  EXPECT_NE(out.detail.find("exited 67"), std::string::npos) << out.detail;
}

TEST(SendmailSubmitter, AnExitBeforeReadingTheMessageDoesNotKillUs) {
  TempDir dir;
  auto s = make_submitter(sendmail_config(fake_sendmail(dir, "echo 'bad option' >&2; exit 64")));
  std::string big(4 << 20, 'x');  // more than any socket buffer
  auto out = s->submit("a@ours.example", "b@example.com", big);
  EXPECT_EQ(out.status, SubmitStatus::PermFail);
  EXPECT_NE(out.detail.find("bad option"), std::string::npos) << out.detail;
}

TEST(SendmailSubmitter, ClosingItsOutputBeforeReadingStillGetsTheWholeMessage) {
  TempDir dir;
  auto s = make_submitter(sendmail_config(
      fake_sendmail(dir, "exec >/dev/null 2>&1\ncat > '" + (dir / "stdin").string() + "'"), 20));
  std::string big(4 << 20, 'x');
  auto out = s->submit("a@ours.example", "b@example.com", big);
  EXPECT_EQ(out.status, SubmitStatus::Sent) << out.detail;
  EXPECT_EQ(std::filesystem::file_size(dir / "stdin"), big.size());
}

TEST(SendmailSubmitter, ASignalIsTemporary) {
  TempDir dir;
  auto s = make_submitter(sendmail_config(fake_sendmail(dir, "cat >/dev/null; kill -KILL $$")));
  auto out = s->submit("a@ours.example", "b@example.com", kMessage);
  EXPECT_EQ(out.status, SubmitStatus::TempFail);
  EXPECT_NE(out.detail.find("signal 9"), std::string::npos) << out.detail;
}

TEST(SendmailSubmitter, ATimeoutKillsItAndIsTemporary) {
  TempDir dir;
  auto s = make_submitter(sendmail_config(fake_sendmail(dir, "exec sleep 30"), 1));
  auto start = std::chrono::steady_clock::now();
  auto out = s->submit("a@ours.example", "b@example.com", kMessage);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(out.status, SubmitStatus::TempFail);
  EXPECT_NE(out.detail.find("timed out"), std::string::npos) << out.detail;
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(SendmailSubmitter, AMissingProgramIsTemporary) {
  TempDir dir;
  auto s = make_submitter(sendmail_config(dir / "no-such-sendmail"));
  auto out = s->submit("a@ours.example", "b@example.com", kMessage);
  EXPECT_EQ(out.status, SubmitStatus::TempFail);
  EXPECT_NE(out.detail.find("no-such-sendmail"), std::string::npos) << out.detail;
}

// ---------------------------------------------------------------- SMTP

// A one-connection-at-a-time SMTP server on 127.0.0.1 that answers MAIL, RCPT and the end of
// DATA with chosen replies and records what it got.
class FakeSmtp {
 public:
  FakeSmtp(std::string mail_reply, std::string rcpt_reply, std::string data_reply)
      : mail_(std::move(mail_reply)), rcpt_(std::move(rcpt_reply)), data_(std::move(data_reply)) {
    listener_ = UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    EXPECT_EQ(listen(listener_.get(), 4), 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeSmtp() { join(); }
  // Waits for the session to end (the client quit or closed); then the records can be read.
  void join() {
    shutdown(listener_.get(), SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
  }
  std::string url() const { return "smtp://127.0.0.1:" + std::to_string(port_); }
  const std::string& transcript() const { return transcript_; }
  const std::string& data() const { return data_got_; }

 private:
  void serve() {
    UniqueFd c(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) return;
    auto say = [&](const std::string& s) {
      std::string line = s + "\r\n";
      (void)!write(c.get(), line.data(), line.size());
    };
    std::string buf;
    auto line = [&]() -> std::optional<std::string> {
      for (;;) {
        auto pos = buf.find("\r\n");
        if (pos != std::string::npos) {
          std::string l = buf.substr(0, pos);
          buf.erase(0, pos + 2);
          return l;
        }
        char tmp[4096];
        ssize_t n = read(c.get(), tmp, sizeof tmp);
        if (n <= 0) return std::nullopt;
        buf.append(tmp, static_cast<std::size_t>(n));
      }
    };
    say("220 fake.test ESMTP");
    while (auto l = line()) {
      transcript_ += *l + "\n";
      std::string verb = l->substr(0, 4);
      for (auto& ch : verb) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (verb == "EHLO" || verb == "HELO") {
        say("250 fake.test");
      } else if (verb == "MAIL") {
        say(mail_);
      } else if (verb == "RCPT") {
        say(rcpt_);
      } else if (verb == "DATA") {
        say("354 go ahead");
        while (auto d = line()) {
          if (*d == ".") break;
          data_got_ += *d + "\r\n";
        }
        say(data_);
      } else if (verb == "QUIT") {
        say("221 bye");
        return;
      } else {
        say("250 ok");
      }
    }
  }

  std::string mail_, rcpt_, data_;
  UniqueFd listener_;
  int port_ = 0;
  std::thread thread_;
  std::string transcript_;
  std::string data_got_;
};

config::SubmitConfig smtp_config(const std::string& url) {
  config::SubmitConfig c;
  c.method = config::SubmitMethod::Smtp;
  c.smtp_url = url;
  c.timeout = std::chrono::seconds(10);
  return c;
}

TEST(SmtpSubmitter, RecordsWhatTheServerGot) {
  FakeSmtp server("250 sender ok", "250 rcpt ok", "250 2.0.0 queued as ABC");
  auto s = make_submitter(smtp_config(server.url()));
  auto out = s->submit("noreply-dmarc@ours.example", "ruf@example.com", kMessage);
  ASSERT_EQ(out.status, SubmitStatus::Sent) << out.detail;
  server.join();  // libcurl closed the connection when submit() returned
  EXPECT_NE(server.transcript().find("MAIL FROM:<noreply-dmarc@ours.example>"), std::string::npos)
      << server.transcript();
  EXPECT_NE(server.transcript().find("RCPT TO:<ruf@example.com>"), std::string::npos)
      << server.transcript();
  // libcurl dot-stuffs the lone "." line (RFC 5321 §4.5.2); the server sees it doubled.
  EXPECT_EQ(server.data(),
            "From: Report <noreply@ours.example>\r\nTo: ruf@example.com\r\nSubject: x\r\n\r\n"
            "line one\r\n..\r\nline after a lone dot\r\n");
}

TEST(SmtpSubmitter, FourYzIsTemporaryFiveYzPermanent) {
  {
    FakeSmtp server("250 ok", "450 4.2.0 mailbox busy", "250 ok");
    auto out =
        make_submitter(smtp_config(server.url()))->submit("a@o.example", "b@e.example", kMessage);
    EXPECT_EQ(out.status, SubmitStatus::TempFail) << out.detail;
  }
  {
    FakeSmtp server("250 ok", "550 5.1.1 no such user", "250 ok");
    auto out =
        make_submitter(smtp_config(server.url()))->submit("a@o.example", "b@e.example", kMessage);
    EXPECT_EQ(out.status, SubmitStatus::PermFail) << out.detail;
    EXPECT_NE(out.detail.find("550"), std::string::npos) << out.detail;
  }
  {
    FakeSmtp server("250 ok", "250 ok", "554 5.7.1 rejected");
    auto out =
        make_submitter(smtp_config(server.url()))->submit("a@o.example", "b@e.example", kMessage);
    EXPECT_EQ(out.status, SubmitStatus::PermFail) << out.detail;
  }
  {
    FakeSmtp server("451 4.3.0 try later", "250 ok", "250 ok");
    auto out =
        make_submitter(smtp_config(server.url()))->submit("a@o.example", "b@e.example", kMessage);
    EXPECT_EQ(out.status, SubmitStatus::TempFail) << out.detail;
  }
}

TEST(SmtpSubmitter, NoServerIsTemporary) {
  int port = 0;
  {
    // A port that was just free: nothing listens there now.
    UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  auto out = make_submitter(smtp_config("smtp://127.0.0.1:" + std::to_string(port)))
                 ->submit("a@o.example", "b@e.example", kMessage);
  EXPECT_EQ(out.status, SubmitStatus::TempFail) << out.detail;
}

}  // namespace
}  // namespace mailreport::outbound
