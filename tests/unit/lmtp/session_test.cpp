// The LMTP protocol engine driven directly (no sockets), with a fake ingestor: the RFC 2033
// dialogue, pipelining, per-recipient replies, limits, store failures.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "mailreport/lmtp/session.hpp"
#include "mailreport/lmtp/spool.hpp"
#include "testsupport.hpp"

namespace mailreport::lmtp {
namespace {

struct Delivery {
  ingest::Envelope envelope;
  std::string data;
  bool in_memory = true;
};

class FakeIngestor final : public ingest::Ingestor {
 public:
  Result<ingest::Outcome> ingest(const ingest::Envelope& env, const Input& message) override {
    auto src = message.open();
    if (!src) return std::move(src).error();
    auto all = read_all(**src, 1u << 30);
    if (!all) return std::move(all).error();
    EXPECT_EQ(all->size(), message.size());
    deliveries.push_back({env, *all, message.in_memory()});
    if (fail) return make_error(ErrorCode::Store, "database is locked");
    ingest::Outcome o;
    o.message_id = static_cast<std::int64_t>(deliveries.size());
    o.reports_stored = 1;
    if (parse_error) o.parse_error = "no report found";
    return o;
  }

  std::vector<Delivery> deliveries;
  bool fail = false;
  bool parse_error = false;
};

class CapturingLogger final : public Logger {
 public:
  void log(LogLevel, std::string_view context, std::string_view message) override {
    lines.push_back(std::string(context) + " " + std::string(message));
  }
  std::vector<std::string> lines;
};

SessionOptions small_options() {
  SessionOptions o;
  o.hostname = "mx.test";
  o.message_size = 1000;
  o.line_length = 100;
  o.command_line_length = 80;
  o.max_recipients = 3;
  o.client = "test";
  o.id = "T1";
  return o;
}

// Splits the output into reply lines (without CRLF).
std::vector<std::string> lines_of(const std::string& out) {
  std::vector<std::string> v;
  std::size_t pos = 0;
  while (pos < out.size()) {
    std::size_t e = out.find("\r\n", pos);
    if (e == std::string::npos) {
      v.push_back(out.substr(pos) + "<no CRLF>");
      break;
    }
    v.push_back(out.substr(pos, e - pos));
    pos = e + 2;
  }
  return v;
}

bool starts_with(const std::string& s, std::string_view p) {
  return s.rfind(p, 0) == 0;
}

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() { reset(small_options()); }

  void reset(SessionOptions o) {
    session = std::make_unique<Session>(
        std::move(o),
        [](std::string_view a) {
          return a.size() > 6 && a.substr(0, 6) == "dmarc@";  // "report mailboxes"
        },
        ingestor, logger);
  }

  // Feeds one chunk and returns the reply lines it produced.
  std::vector<std::string> send(std::string_view bytes) {
    session->feed(bytes);
    return lines_of(session->take_output());
  }
  std::string reply(std::string_view line) {
    auto v = send(std::string(line) + "\r\n");
    EXPECT_EQ(v.size(), 1u) << line;
    return v.empty() ? "" : v.front();
  }
  void lhlo() { send("LHLO client.test\r\n"); }

  FakeIngestor ingestor;
  CapturingLogger logger;
  std::unique_ptr<Session> session;
};

TEST_F(SessionTest, FullDialogue) {
  session->greet();
  EXPECT_EQ(lines_of(session->take_output()),
            std::vector<std::string>{"220 mx.test LMTP mailreport ready"});
  EXPECT_EQ(send("LHLO client.test\r\n"),
            (std::vector<std::string>{"250-mx.test", "250-PIPELINING", "250-ENHANCEDSTATUSCODES",
                                      "250-8BITMIME", "250-SIZE 1000", "250 SMTPUTF8"}));
  EXPECT_TRUE(
      starts_with(reply("MAIL FROM:<sender@example.org> SIZE=120 BODY=8BITMIME"), "250 2.1.0"));
  EXPECT_TRUE(starts_with(reply("RCPT TO:<dmarc@reports.test>"), "250 2.1.5"));
  EXPECT_TRUE(starts_with(reply("DATA"), "354 "));
  EXPECT_TRUE(session->in_data());
  auto r = send(
      "Return-Path: <sender@example.org>\r\n"
      "Delivered-To: dmarc@reports.test\r\n"
      "Subject: Report\r\n"
      "\r\n"
      "body\r\n"
      ".\r\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(starts_with(r[0], "250 2.0.0 <dmarc@reports.test>")) << r[0];
  EXPECT_FALSE(session->in_data());
  ASSERT_EQ(ingestor.deliveries.size(), 1u);
  const auto& d = ingestor.deliveries[0];
  // Stored exactly as received: nothing added, Return-Path/Delivered-To kept.
  EXPECT_EQ(d.data,
            "Return-Path: <sender@example.org>\r\n"
            "Delivered-To: dmarc@reports.test\r\n"
            "Subject: Report\r\n"
            "\r\n"
            "body\r\n");
  EXPECT_EQ(d.envelope.source, "lmtp");
  EXPECT_EQ(d.envelope.mail_from, "sender@example.org");
  EXPECT_EQ(d.envelope.rcpt_to, std::vector<std::string>{"dmarc@reports.test"});
  EXPECT_EQ(d.envelope.client, "test");
  EXPECT_TRUE(starts_with(reply("QUIT"), "221 2.0.0"));
  EXPECT_TRUE(session->closed());
  EXPECT_TRUE(send("NOOP\r\n").empty());  // nothing after QUIT
  // One log line for the message, with sender, recipients, size and outcome.
  ASSERT_FALSE(logger.lines.empty());
  const auto& line = logger.lines.back();
  EXPECT_NE(line.find("T1.1"), std::string::npos) << line;
  EXPECT_NE(line.find("from=<sender@example.org>"), std::string::npos) << line;
  EXPECT_NE(line.find("to=<dmarc@reports.test>"), std::string::npos) << line;
  EXPECT_NE(line.find("size=94"), std::string::npos) << line;
  EXPECT_NE(line.find("outcome=reports stored"), std::string::npos) << line;
}

TEST_F(SessionTest, PipelinedInputInOneChunk) {
  auto r = send(
      "LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<dmarc@a.test>\r\nRCPT TO:<nobody@a.test>\r\n"
      "RCPT TO:<dmarc@b.test>\r\nDATA\r\nHello\r\n.\r\nNOOP\r\nQUIT\r\nNOOP\r\n");
  std::vector<std::string> codes;
  for (const auto& l : r) codes.push_back(l.substr(0, 4));
  EXPECT_EQ(codes, (std::vector<std::string>{"250-", "250-", "250-", "250-", "250-", "250 ", "250 ",
                                             "250 ", "550 ", "250 ", "354 ", "250 ", "250 ", "250 ",
                                             "221 "}));
  ASSERT_EQ(ingestor.deliveries.size(), 1u);
  EXPECT_EQ(ingestor.deliveries[0].data, "Hello\r\n");
  EXPECT_EQ(ingestor.deliveries[0].envelope.mail_from, "");
  EXPECT_EQ(ingestor.deliveries[0].envelope.rcpt_to,
            (std::vector<std::string>{"dmarc@a.test", "dmarc@b.test"}));
}

TEST_F(SessionTest, ByteByByteInput) {
  std::string all =
      "LHLO c\r\nMAIL FROM:<s@x>\r\nRCPT TO:<dmarc@a.test>\r\nDATA\r\n..dot\r\nx\r\n.\r\n";
  std::string out;
  for (char c : all) {
    session->feed(std::string_view(&c, 1));
    out += session->take_output();
  }
  ASSERT_EQ(ingestor.deliveries.size(), 1u);
  EXPECT_EQ(ingestor.deliveries[0].data, ".dot\r\nx\r\n");
  EXPECT_TRUE(starts_with(lines_of(out).back(), "250 2.0.0")) << out;
}

TEST_F(SessionTest, HeloAndEhloAreRefused) {
  EXPECT_EQ(reply("HELO client.test").substr(0, 10), "500 5.5.1 ");
  EXPECT_EQ(reply("EHLO client.test").substr(0, 10), "500 5.5.1 ");
  // And they do not count as a greeting.
  EXPECT_EQ(reply("MAIL FROM:<a@b>").substr(0, 10), "503 5.5.1 ");
}

TEST_F(SessionTest, RecipientNotAReportMailbox) {
  lhlo();
  reply("MAIL FROM:<a@b>");
  EXPECT_EQ(reply("RCPT TO:<postmaster@reports.test>"),
            "550 5.1.1 <postmaster@reports.test> not a report mailbox");
  // RFC 2033 §4.2: no successful RCPT, DATA fails with 503.
  EXPECT_EQ(reply("DATA").substr(0, 10), "503 5.5.1 ");
  EXPECT_FALSE(session->in_data());
}

TEST_F(SessionTest, BadSequence) {
  EXPECT_EQ(reply("DATA").substr(0, 10), "503 5.5.1 ");
  lhlo();
  EXPECT_EQ(reply("RCPT TO:<dmarc@a.test>").substr(0, 10), "503 5.5.1 ");
  EXPECT_EQ(reply("DATA").substr(0, 10), "503 5.5.1 ");
  reply("MAIL FROM:<a@b>");
  EXPECT_EQ(reply("MAIL FROM:<a@b>").substr(0, 10), "503 5.5.1 ");
}

TEST_F(SessionTest, PerRecipientRepliesInOrderWithDuplicates) {
  lhlo();
  reply("MAIL FROM:<a@b>");
  EXPECT_TRUE(starts_with(reply("RCPT TO:<dmarc@one.test>"), "250"));
  EXPECT_TRUE(starts_with(reply("RCPT TO:<other@one.test>"), "550"));
  EXPECT_TRUE(starts_with(reply("RCPT TO:<dmarc@two.test>"), "250"));
  EXPECT_TRUE(starts_with(reply("RCPT TO:<dmarc@one.test>"), "250"));
  reply("DATA");
  auto r = send("x\r\n.\r\n");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_TRUE(starts_with(r[0], "250 2.0.0 <dmarc@one.test>"));
  EXPECT_TRUE(starts_with(r[1], "250 2.0.0 <dmarc@two.test>"));
  EXPECT_TRUE(starts_with(r[2], "250 2.0.0 <dmarc@one.test>"));
  ASSERT_EQ(ingestor.deliveries.size(), 1u);  // stored once
  EXPECT_EQ(ingestor.deliveries[0].envelope.rcpt_to,
            (std::vector<std::string>{"dmarc@one.test", "dmarc@two.test"}));
}

TEST_F(SessionTest, TooManyRecipients) {
  lhlo();
  reply("MAIL FROM:<a@b>");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(starts_with(reply("RCPT TO:<dmarc@x.test>"), "250"));
  EXPECT_EQ(reply("RCPT TO:<dmarc@x.test>").substr(0, 10), "452 4.5.3 ");
  reply("DATA");
  EXPECT_EQ(send("m\r\n.\r\n").size(), 3u);
}

TEST_F(SessionTest, DotStuffingAndTerminator) {
  lhlo();
  reply("MAIL FROM:<a@b>");
  reply("RCPT TO:<dmarc@x.test>");
  reply("DATA");
  auto r = send("..\r\n...leading\r\n.x\r\n. \r\nend\r\n.\r\n");
  ASSERT_EQ(r.size(), 1u);
  ASSERT_EQ(ingestor.deliveries.size(), 1u);
  EXPECT_EQ(ingestor.deliveries[0].data, ".\r\n..leading\r\nx\r\n \r\nend\r\n");
}

TEST_F(SessionTest, EmptyMessage) {
  lhlo();
  reply("MAIL FROM:<a@b>");
  reply("RCPT TO:<dmarc@x.test>");
  reply("DATA");
  EXPECT_TRUE(starts_with(reply("."), "250 2.0.0"));
  ASSERT_EQ(ingestor.deliveries.size(), 1u);
  EXPECT_EQ(ingestor.deliveries[0].data, "");
}

TEST_F(SessionTest, SizeParameterOverLimit) {
  lhlo();
  EXPECT_EQ(reply("MAIL FROM:<a@b> SIZE=1001").substr(0, 10), "552 5.3.4 ");
  EXPECT_EQ(reply("MAIL FROM:<a@b> SIZE=99999999999999999999").substr(0, 10), "552 5.3.4 ");
  EXPECT_EQ(reply("MAIL FROM:<a@b> SIZE=abc").substr(0, 10), "501 5.5.4 ");
  EXPECT_TRUE(starts_with(reply("MAIL FROM:<a@b> SIZE=1000"), "250"));
}

TEST_F(SessionTest, MessageOverSizeLimitIsConsumedAndRefused) {
  lhlo();
  reply("MAIL FROM:<a@b>");
  reply("RCPT TO:<dmarc@x.test>");
  reply("RCPT TO:<dmarc@y.test>");
  reply("DATA");
  std::string line(60, 'a');
  line += "\r\n";
  for (int i = 0; i < 40; ++i) EXPECT_TRUE(send(line).empty());  // 2480 bytes > 1000
  auto r = send(".\r\n");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(starts_with(r[0], "552 5.3.4 <dmarc@x.test>")) << r[0];
  EXPECT_TRUE(starts_with(r[1], "552 5.3.4 <dmarc@y.test>")) << r[1];
  EXPECT_TRUE(ingestor.deliveries.empty());
  // The session goes on.
  EXPECT_TRUE(starts_with(reply("MAIL FROM:<a@b>"), "250"));
}

TEST_F(SessionTest, MessageExactlyAtSizeLimit) {
  lhlo();
  reply("MAIL FROM:<a@b>");
  reply("RCPT TO:<dmarc@x.test>");
  reply("DATA");
  std::string body;
  while (body.size() < 1000) body += std::string(48, 'b') + "\r\n";  // 20 x 50 = 1000
  ASSERT_EQ(body.size(), 1000u);
  EXPECT_TRUE(starts_with(send(body + ".\r\n").at(0), "250 2.0.0"));
  ASSERT_EQ(ingestor.deliveries.size(), 1u);
  EXPECT_EQ(ingestor.deliveries[0].data, body);
}

TEST_F(SessionTest, OverlongCommandLine) {
  lhlo();
  // Complete over-long line.
  EXPECT_EQ(reply("NOOP " + std::string(100, 'x')), "500 5.5.2 line too long");
  // Over-long line arriving in pieces: one reply, bounded buffering, then back in sync.
  EXPECT_EQ(send("NOOP " + std::string(200, 'y')),
            std::vector<std::string>{"500 5.5.2 line too long"});
  EXPECT_TRUE(send(std::string(10000, 'z')).empty());
  EXPECT_TRUE(send("zzz\r\n").empty());
  EXPECT_TRUE(starts_with(reply("NOOP"), "250 2.0.0"));
  // Exactly at the limit is fine.
  EXPECT_TRUE(starts_with(reply("NOOP " + std::string(75, 'k')), "250"));
}

TEST_F(SessionTest, OverlongDataLine) {
  lhlo();
  reply("MAIL FROM:<a@b>");
  reply("RCPT TO:<dmarc@x.test>");
  reply("DATA");
  EXPECT_TRUE(send("short\r\n" + std::string(101, 'L') + "\r\nmore\r\n").empty());
  auto r = send(".\r\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].substr(0, 10), "552 5.3.4 ");
  EXPECT_NE(r[0].find("line too long"), std::string::npos);
  EXPECT_TRUE(ingestor.deliveries.empty());

  // A long line arriving in pieces, whose tail looks like the terminator, does not end DATA.
  reply("MAIL FROM:<a@b>");
  reply("RCPT TO:<dmarc@x.test>");
  reply("DATA");
  EXPECT_TRUE(send(std::string(300, 'M')).empty());
  EXPECT_TRUE(send(".").empty());
  EXPECT_TRUE(send("\r\n").empty());  // the end of the long line, not a "." line
  r = send(".\r\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].substr(0, 10), "552 5.3.4 ");
  // Exactly line_length is accepted.
  reply("MAIL FROM:<a@b>");
  reply("RCPT TO:<dmarc@x.test>");
  reply("DATA");
  EXPECT_TRUE(starts_with(send(std::string(100, 'K') + "\r\n.\r\n").at(0), "250"));
}

TEST_F(SessionTest, StoreFailureIsTemporaryForEachRecipient) {
  ingestor.fail = true;
  lhlo();
  reply("MAIL FROM:<a@b>");
  reply("RCPT TO:<dmarc@x.test>");
  reply("RCPT TO:<dmarc@y.test>");
  reply("DATA");
  auto r = send("m\r\n.\r\n");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(starts_with(r[0], "451 4.3.0 <dmarc@x.test>"));
  EXPECT_TRUE(starts_with(r[1], "451 4.3.0 <dmarc@y.test>"));
  EXPECT_NE(logger.lines.back().find("outcome=store error"), std::string::npos);
}

TEST_F(SessionTest, ParseFailureIsStillDelivered) {
  ingestor.parse_error = true;
  lhlo();
  reply("MAIL FROM:<a@b>");
  reply("RCPT TO:<dmarc@x.test>");
  reply("DATA");
  EXPECT_TRUE(starts_with(send("m\r\n.\r\n").at(0), "250 2.0.0"));
  EXPECT_NE(logger.lines.back().find("outcome=parse error"), std::string::npos);
}

TEST_F(SessionTest, Rset) {
  lhlo();
  reply("MAIL FROM:<a@b>");
  reply("RCPT TO:<dmarc@x.test>");
  EXPECT_EQ(reply("RSET"), "250 2.0.0 OK");
  EXPECT_EQ(reply("DATA").substr(0, 10), "503 5.5.1 ");
  EXPECT_TRUE(starts_with(reply("MAIL FROM:<c@d>"), "250"));
  EXPECT_EQ(reply("RSET extra").substr(0, 10), "501 5.5.4 ");
}

TEST_F(SessionTest, SimpleReplies) {
  EXPECT_EQ(reply("NOOP"), "250 2.0.0 OK");
  EXPECT_EQ(reply("noop with argument"), "250 2.0.0 OK");
  EXPECT_EQ(reply("VRFY dmarc").substr(0, 10), "252 2.5.0 ");
  EXPECT_EQ(reply("VRFY").substr(0, 10), "501 5.5.4 ");
  EXPECT_EQ(reply("EXPN list").substr(0, 10), "500 5.5.2 ");
  EXPECT_EQ(reply("BDAT 10 LAST").substr(0, 10), "500 5.5.2 ");
  EXPECT_EQ(reply("").substr(0, 10), "500 5.5.2 ");
  EXPECT_EQ(reply("LHLO").substr(0, 10), "501 5.5.4 ");
}

TEST_F(SessionTest, MailAndRcptSyntax) {
  lhlo();
  EXPECT_EQ(reply("MAIL TO:<a@b>").substr(0, 10), "501 5.5.4 ");
  EXPECT_EQ(reply("MAIL FROM:<a@b").substr(0, 10), "501 5.1.7 ");
  EXPECT_EQ(reply("MAIL FROM:<a@b> FOO=1").substr(0, 10), "555 5.5.4 ");
  EXPECT_EQ(reply("MAIL FROM:<a@b> BODY=BINARYMIME").substr(0, 10), "501 5.5.4 ");
  EXPECT_TRUE(starts_with(
      reply("mail from: <a@b> SMTPUTF8 AUTH=<> ENVID=QQ314159 RET=HDRS BODY=7bit"), "250 2.1.0"));
  EXPECT_EQ(reply("RCPT TO:<>").substr(0, 10), "501 5.1.3 ");
  EXPECT_EQ(reply("RCPT TO:<dmarc@x.test> BOGUS").substr(0, 10), "555 5.5.4 ");
  EXPECT_TRUE(starts_with(
      reply("RCPT TO:<dmarc@x.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;dmarc@x.test"), "250"));
  // Source route ignored, quoted local part kept.
  EXPECT_TRUE(starts_with(reply("RCPT TO:<@relay.test:dmarc@y.test>"), "250 2.1.5 <dmarc@y.test>"));
  EXPECT_TRUE(starts_with(reply("RCPT TO:<\"no>body\"@x.test>"), "550 5.1.1"));
  // Brackets missing: tolerated.
  EXPECT_TRUE(starts_with(reply("RCPT TO:dmarc@z.test"), "250"));
  reply("DATA");
  send(".\r\n");
  ASSERT_EQ(ingestor.deliveries.size(), 1u);
  EXPECT_EQ(ingestor.deliveries[0].envelope.rcpt_to,
            (std::vector<std::string>{"dmarc@x.test", "dmarc@y.test", "dmarc@z.test"}));
}

TEST_F(SessionTest, LhloResetsTransaction) {
  lhlo();
  reply("MAIL FROM:<a@b>");
  reply("RCPT TO:<dmarc@x.test>");
  lhlo();
  EXPECT_EQ(reply("DATA").substr(0, 10), "503 5.5.1 ");
}

TEST_F(SessionTest, IdleTimeoutAndShutdown) {
  EXPECT_TRUE(session->idle());
  send("NOO");
  EXPECT_FALSE(session->idle());  // a partial command is pending
  send("P\r\n");
  EXPECT_TRUE(session->idle());
  session->timeout();
  EXPECT_EQ(lines_of(session->take_output()),
            std::vector<std::string>{"421 4.4.2 mx.test timeout, closing connection"});
  EXPECT_TRUE(session->closed());

  reset(small_options());
  session->shutdown();
  EXPECT_EQ(lines_of(session->take_output()).at(0).substr(0, 10), "421 4.3.2 ");
}

TEST_F(SessionTest, TimeoutDuringDataAcknowledgesNothing) {
  lhlo();
  reply("MAIL FROM:<a@b>");
  reply("RCPT TO:<dmarc@x.test>");
  reply("DATA");
  send("partial\r\n");
  EXPECT_FALSE(session->idle());
  session->timeout();
  EXPECT_EQ(lines_of(session->take_output()).at(0).substr(0, 10), "421 4.4.2 ");
  EXPECT_TRUE(ingestor.deliveries.empty());
}

TEST_F(SessionTest, LargeMessageSpillsToFile) {
  mailreport::test::TempDir dir;
  auto o = small_options();
  o.message_size = 10u << 20;
  o.line_length = 1000;
  o.memory_spool = 4096;
  o.spool_dir = dir.path();
  reset(o);
  lhlo();
  reply("MAIL FROM:<a@b>");
  reply("RCPT TO:<dmarc@x.test>");
  reply("DATA");
  std::string expected;
  for (int i = 0; i < 2000; ++i) {
    std::string l = (i % 10 == 0 ? "." : "") + std::to_string(i) + std::string(90, 'q') + "\r\n";
    expected += l;
    send((l.front() == '.' ? "." : "") + l);  // dot-stuffed on the wire
  }
  EXPECT_TRUE(starts_with(send(".\r\n").at(0), "250 2.0.0"));
  ASSERT_EQ(ingestor.deliveries.size(), 1u);
  EXPECT_FALSE(ingestor.deliveries[0].in_memory);
  EXPECT_EQ(ingestor.deliveries[0].data, expected);
  // The spool file was never linked into the directory.
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(SpoolTest, MemoryThenFile) {
  mailreport::test::TempDir dir;
  Spool spool(dir.path(), 10);
  spool.append("12345");
  EXPECT_FALSE(spool.spilled());
  spool.append("678901");
  EXPECT_TRUE(spool.spilled());
  spool.append("abc");
  auto in = spool.finish("m");
  ASSERT_TRUE(in.ok()) << in.error().describe();
  EXPECT_EQ(in->size(), 14u);
  EXPECT_FALSE(in->in_memory());
  // Readable twice.
  for (int i = 0; i < 2; ++i) {
    auto src = in->open();
    ASSERT_TRUE(src.ok());
    EXPECT_EQ(*read_all(**src, 100), "12345678901abc");
  }
  EXPECT_EQ(spool.size(), 0u);
}

TEST(SpoolTest, UnwritableDirectoryFails) {
  Spool spool("/nonexistent/spool/dir", 4);
  spool.append("0123456789");
  EXPECT_TRUE(spool.failed());
  auto in = spool.finish("m");
  EXPECT_FALSE(in.ok());
}

TEST_F(SessionTest, SpoolFailureIsTemporary) {
  auto o = small_options();
  o.memory_spool = 4;
  o.spool_dir = "/nonexistent/spool/dir";
  reset(o);
  lhlo();
  reply("MAIL FROM:<a@b>");
  reply("RCPT TO:<dmarc@x.test>");
  reply("DATA");
  EXPECT_TRUE(starts_with(send("0123456789\r\n.\r\n").at(0), "451 4.3.0"));
  EXPECT_TRUE(ingestor.deliveries.empty());
}

// Random bytes (and random mutations of a valid dialogue) never crash the engine and never
// make it produce anything but CRLF-terminated replies.
TEST(SessionFuzzTest, RandomInput) {
  std::mt19937 rng(12345);
  const std::string valid =
      "LHLO c\r\nMAIL FROM:<a@b> SIZE=10\r\nRCPT TO:<dmarc@x>\r\nRCPT TO:<x@y>\r\nDATA\r\n"
      "..a\r\nb\r\n.\r\nRSET\r\nVRFY x\r\nQUIT\r\n";
  for (int iter = 0; iter < 3000; ++iter) {
    std::string in;
    if (iter % 2 == 0) {
      std::size_t n = rng() % 400;
      for (std::size_t i = 0; i < n; ++i) in += static_cast<char>(rng() % 256);
    } else {
      in = valid;
      for (int m = 0; m < 5; ++m) in[rng() % in.size()] = static_cast<char>(rng() % 256);
    }
    fuzz_session(in);
  }
}

}  // namespace
}  // namespace mailreport::lmtp
