// The test milter client (tests/support/milter_client.hpp) against a real libmilter filter,
// noop-milter (tests/bench/noop_milter.cpp), over a unix socket and loopback TCP: negotiation,
// what the filter receives (echoed back in headers), modifications, refusals, several messages
// per connection, large bodies in chunks, and both the no-reply and reply-per-step dialects.
#include <gtest/gtest.h>

#include <libmilter/mfdef.h>

#include <string>
#include <vector>

#include "child_process.hpp"
#include "milter_client.hpp"
#include "process_util.hpp"
#include "testsupport.hpp"

namespace mailreport::test {
namespace {

using Kind = MilterModification::Kind;

std::filesystem::path noop_milter_binary() {
  return binary_dir() / "tests" / "noop-milter";
}

// noop-milter with `args`, listening on a unix socket (or TCP when `tcp`).
class Filter {
 public:
  explicit Filter(std::vector<std::string> args, bool tcp = false) {
    address_ = tcp ? "inet:" + std::to_string(free_loopback_port()) + "@127.0.0.1"
                   : "unix:" + (dir_ / "milter.sock").string();
    std::vector<std::string> argv{noop_milter_binary().string(), "-p", address_};
    argv.insert(argv.end(), args.begin(), args.end());
    auto child = ChildProcess::start(argv, dir_ / "milter.log");
    if (!child) {
      ADD_FAILURE() << child.error().describe();
      return;
    }
    child_.emplace(std::move(*child));
    auto st = wait_for_listener(address_, *child_);
    if (!st) ADD_FAILURE() << st.error().describe();
  }

  // libmilter checks for SIGTERM only every 5 s; a test filter has nothing to flush.
  ~Filter() {
    if (child_) child_->stop(std::chrono::milliseconds(0));
  }

  const std::string& address() const { return address_; }

  // A negotiated client with its session opened (nullopt after a failure, reported).
  std::optional<MilterClient> session() {
    auto c = MilterClient::connect(address_);
    EXPECT_TRUE(c) << c.error().describe();
    if (!c) return std::nullopt;
    auto st = c->negotiate();
    EXPECT_TRUE(st) << st.error().describe();
    if (!st) return std::nullopt;
    MilterSession s;
    s.client_name = "mail.sender.example";
    s.client_addr = "192.0.2.25";
    s.helo = "helo.sender.example";
    s.connect_macros = {{"j", "mx.ours.example"}, {"{daemon_name}", "smtpd"}};
    auto r = c->open_session(s);
    EXPECT_TRUE(r) << r.error().describe();
    if (!r || r->action != MilterAction::Continue) return std::nullopt;
    return std::move(*c);
  }

 private:
  TempDir dir_;
  std::string address_;
  std::optional<ChildProcess> child_;
};

MilterMessage sample_message() {
  auto m = MilterMessage::from_rfc5322(
      "From: Sender <sender@example.com>\r\n"
      "To: rcpt@example.net\r\n"
      "Subject: a folded\r\n"
      "\tsubject line\r\n"
      "Message-ID: <1@example.com>\r\n"
      "\r\n"
      "Hello,\r\nthis is the body.\r\n");
  m.mail_from = "<sender@example.com>";
  m.rcpt_to = {"<rcpt@example.net>", "<other@example.net>"};
  m.mail_macros = {{"{auth_authen}", "alice"}};
  m.eom_macros = {{"i", "QUEUE123"}};
  return m;
}

std::string header(const MilterResult& r, const std::string& name) {
  for (const auto& [n, v] : r.added_headers()) {
    if (n == name) return v;
  }
  return "(missing " + name + ")";
}

TEST(MilterMessage, SplitsAMessageAsAnMtaHandsItToAMilter) {
  auto m = MilterMessage::from_rfc5322(
      "Subject:  two spaces\nX-Folded: a\n  b\n\tc\nEmpty:\n\nline1\nline2\r\n");
  ASSERT_EQ(m.headers.size(), 3u);
  EXPECT_EQ(m.headers[0], (std::pair<std::string, std::string>{"Subject", "two spaces"}));
  EXPECT_EQ(m.headers[1].second, "a\n  b\n\tc");
  EXPECT_EQ(m.headers[2], (std::pair<std::string, std::string>{"Empty", ""}));
  EXPECT_EQ(m.body, "line1\r\nline2\r\n");
}

void expect_echo(const MilterResult& r, std::size_t body_bytes) {
  EXPECT_EQ(r.reply.action, MilterAction::Accept);
  EXPECT_EQ(r.reply.command, SMFIC_BODYEOB);
  EXPECT_EQ(header(r, "X-Seen-Connect"), "mail.sender.example");
  EXPECT_EQ(header(r, "X-Seen-Helo"), "helo.sender.example");
  EXPECT_EQ(header(r, "X-Seen-From"), "<sender@example.com>");
  EXPECT_EQ(header(r, "X-Seen-Rcpt"), "<rcpt@example.net>,<other@example.net>");
  EXPECT_EQ(header(r, "X-Seen-Macros"), "j=mx.ours.example daemon=smtpd auth=alice i=QUEUE123");
  EXPECT_EQ(header(r, "X-Seen-Headers"), "4");
  EXPECT_EQ(header(r, "X-Seen-Subject"), "a folded\n\tsubject line");
  EXPECT_EQ(header(r, "X-Seen-Body"), std::to_string(body_bytes) + " crlf");
}

TEST(MilterClient, NegotiatesNoRepliesWithTheNoopFilter) {
  Filter f({});
  auto c = MilterClient::connect(f.address());
  ASSERT_TRUE(c) << c.error().describe();
  ASSERT_TRUE(c->negotiate());
  EXPECT_EQ(c->filter_version(), 6u);
  EXPECT_TRUE(c->filter_protocol() & SMFIP_NR_HDR);
  EXPECT_TRUE(c->filter_protocol() & SMFIP_NR_BODY);
  EXPECT_TRUE(c->filter_actions() & 0x01);  // SMFIF_ADDHDRS
  ASSERT_TRUE(c->open_session({}));
  auto r = c->send_message(sample_message());
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->reply.action, MilterAction::Accept);
  EXPECT_TRUE(r->modifications.empty());
  EXPECT_TRUE(c->quit());
}

TEST(MilterClient, TheFilterReceivesEverythingOverAUnixSocket) {
  Filter f({"--echo"});
  auto c = f.session();
  ASSERT_TRUE(c);
  auto m = sample_message();
  auto r = c->send_message(m);
  ASSERT_TRUE(r) << r.error().describe();
  expect_echo(*r, m.body.size());
  EXPECT_TRUE(c->quit());
}

TEST(MilterClient, TheFilterReceivesEverythingOverTcpWithARepliesAtEveryStep) {
  Filter f({"--echo", "--replies"}, /*tcp=*/true);
  auto c = f.session();
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->filter_protocol() & SMFIP_NR_HDR);
  auto m = sample_message();
  auto r = c->send_message(m);
  ASSERT_TRUE(r) << r.error().describe();
  expect_echo(*r, m.body.size());
}

TEST(MilterClient, SendsLargeBodiesInChunksAndSeveralMessagesPerConnection) {
  Filter f({"--echo"});
  auto c = f.session();
  ASSERT_TRUE(c);
  for (std::size_t size : {std::size_t{10}, std::size_t{200000}, std::size_t{65535 * 2}}) {
    auto m = sample_message();
    m.body.clear();
    while (m.body.size() + 8 <= size) m.body += "012345\r\n";
    auto r = c->send_message(m);
    ASSERT_TRUE(r) << r.error().describe();
    expect_echo(*r, m.body.size());
  }
}

TEST(MilterClient, ReturnsHeaderChangesAndQuarantineWithTheFinalReply) {
  Filter f({"--add-header", "Authentication-Results: mx.ours.example; spf=pass", "--insert-header",
            "X-Top: first", "--change-header", "Subject: replaced", "--change-header",
            "Message-ID:", "--quarantine", "held for review"});
  auto c = f.session();
  ASSERT_TRUE(c);
  auto r = c->send_message(sample_message());
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->reply.action, MilterAction::Accept);
  ASSERT_EQ(r->modifications.size(), 5u);
  const auto& m = r->modifications;
  EXPECT_EQ(m[0].kind, Kind::AddHeader);
  EXPECT_EQ(m[0].name, "Authentication-Results");
  EXPECT_EQ(m[0].value, "mx.ours.example; spf=pass");
  EXPECT_EQ(m[1].kind, Kind::InsertHeader);
  EXPECT_EQ(m[1].index, 0u);
  EXPECT_EQ(m[1].name, "X-Top");
  EXPECT_EQ(m[2].kind, Kind::ChangeHeader);
  EXPECT_EQ(m[2].index, 1u);
  EXPECT_EQ(m[2].value, "replaced");
  EXPECT_EQ(m[3].kind, Kind::ChangeHeader);
  EXPECT_EQ(m[3].name, "Message-ID");
  EXPECT_EQ(m[3].value, "");  // deleted
  EXPECT_EQ(m[4].kind, Kind::Quarantine);
  EXPECT_EQ(m[4].value, "held for review");
}

TEST(MilterClient, ReturnsAReplyCodeAndTheRefusedRecipients) {
  Filter f({"--reject-rcpt", "<other@example.net>", "--eom-reply",
            "550 5.7.1 Email rejected per DMARC policy for example.com"});
  auto c = f.session();
  ASSERT_TRUE(c);
  auto r = c->send_message(sample_message());
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->rejected_rcpts, std::vector<std::string>{"<other@example.net>"});
  EXPECT_EQ(r->reply.action, MilterAction::ReplyCode);
  EXPECT_EQ(r->reply.text, "550 5.7.1 Email rejected per DMARC policy for example.com");

  // Every recipient refused: the message ends at RCPT; the session carries on.
  auto only = sample_message();
  only.rcpt_to = {"<other@example.net>"};
  r = c->send_message(only);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->reply.command, SMFIC_RCPT);
  EXPECT_EQ(r->reply.action, MilterAction::ReplyCode);
  EXPECT_EQ(r->reply.text.substr(0, 9), "550 5.1.1");
  r = c->send_message(sample_message());
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->reply.command, SMFIC_BODYEOB);
}

TEST(MilterClient, ReportsAClosedConnectionAsAnError) {
  auto bad = MilterClient::connect("unix:/nonexistent/milter.sock");
  EXPECT_FALSE(bad);
  Filter f({});
  auto c = f.session();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->quit());
  auto r = c->send_message(sample_message());  // the filter has closed the connection
  EXPECT_FALSE(r);
}

}  // namespace
}  // namespace mailreport::test
