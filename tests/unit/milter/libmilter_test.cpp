// The libmilter wrapper in this process (libmilter is a process singleton: one instance for
// the whole suite), spoken to over loopback TCP by the test milter client: what it negotiates,
// the Authentication-Results it inserts (with the leading space kept) and the forged ones it
// deletes, a 550 under enforcement, an exception turned into 451 4.3.0 and the connection
// still usable, parallel connections, the delayed-ACK trap at end of message, and a prompt
// stop().
#include "mailreport/milter/libmilter.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>

#include "mailreport/milter/environment.hpp"
#include "milter_client.hpp"

namespace mailreport::milter {
namespace {

using namespace std::chrono_literals;

constexpr const char* kOurId = "mx.receiver.example";

// Records what the sessions queue; throws once when told to (an unexpected failure inside a
// callback).
class TestQueue final : public EvaluationQueue {
 public:
  bool push(auth::Evaluation) override {
    if (throw_next.exchange(false)) throw std::runtime_error("test: the queue blew up");
    ++pushed;
    return true;
  }
  std::atomic<bool> throw_next{false};
  std::atomic<int> pushed{0};
};

unsigned free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("no free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

std::shared_ptr<const Environment> environment(bool enforce, Logger& log) {
  auto loaded = config::load_string(std::string(R"toml(
[dns]
local-only = true
local-data = [
  "example.com. 300 IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"",
  "_dmarc.example.com. 300 IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@example.com\"",
]
local-nxdomain = ["_dmarc.com."]
[milter]
authserv-id = "mx.receiver.example"
)toml") + (enforce ? "dmarc-enforce = true\n" : ""));
  if (!loaded.config) throw std::runtime_error(loaded.problems.at(0).describe());
  auto env = make_environment(loaded.config, log);
  if (!env) throw std::runtime_error(env.error().describe());
  return *env;
}

class LibmilterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    observe_ = environment(false, log_);
    enforce_ = environment(true, log_);
    sessions_ = std::make_unique<Sessions>(observe_, queue_, log_);
    milter_ = std::make_unique<Libmilter>(*sessions_, log_);
    address_ = "inet:" + std::to_string(free_loopback_port()) + "@127.0.0.1";
    ListenOptions o;
    o.socket = address_;
    o.timeout = 30s;
    Status st = milter_->open(o);
    ASSERT_TRUE(st.ok()) << st.error().describe();
    serving_ = std::thread([] { (void)milter_->run(); });
  }

  static void TearDownTestSuite() {
    if (serving_.joinable()) {
      milter_->stop();
      serving_.join();
    }
    // Sessions end with their connections; the objects they use go after them.
    EXPECT_TRUE(milter_->wait_idle(10s));
    milter_.reset();
    sessions_.reset();
  }

  void SetUp() override { sessions_->set_environment(observe_); }

  static test::MilterClient connect() {
    auto c = test::MilterClient::connect(address_);
    EXPECT_TRUE(c.ok()) << c.error().describe();
    return std::move(c).value();
  }

  static test::MilterSession client(const std::string& ip) {
    test::MilterSession s;
    s.client_addr = ip;
    s.helo = "mail.example.com";
    s.connect_macros = {{"j", "mx.receiver.example"}, {"{daemon_name}", "smtpd"}};
    return s;
  }

  static test::MilterMessage message() {
    test::MilterMessage m;
    m.mail_from = "<alice@example.com>";
    m.rcpt_to = {"<bob@receiver.example>"};
    m.headers = {{"Authentication-Results", "mx.receiver.example; dmarc=pass"},
                 {"From", "Alice <alice@example.com>"},
                 {"Subject", "hello"},
                 {"Message-ID", "<1@example.com>"}};
    m.body = "Hello Bob.\r\n";
    m.eom_macros = {{"i", "4AbCdE"}};
    return m;
  }

  static inline NullLogger log_;
  static inline TestQueue queue_;
  static inline std::shared_ptr<const Environment> observe_, enforce_;
  static inline std::unique_ptr<Sessions> sessions_;
  static inline std::unique_ptr<Libmilter> milter_;
  static inline std::string address_;
  static inline std::thread serving_;
};

TEST_F(LibmilterTest, NegotiatesOnlyWhatItUses) {
  auto c = connect();
  ASSERT_TRUE(c.negotiate().ok());
  EXPECT_EQ(c.filter_actions(), static_cast<std::uint32_t>(SMFIF_ADDHDRS | SMFIF_CHGHDRS |
                                                           SMFIF_QUARANTINE | SMFIF_SETSYMLIST));
  const std::uint32_t p = c.filter_protocol();
  for (unsigned long bit :
       {SMFIP_NR_CONN, SMFIP_NR_HELO, SMFIP_NR_MAIL, SMFIP_NR_RCPT, SMFIP_NR_HDR, SMFIP_NR_EOH,
        SMFIP_NR_BODY, SMFIP_NODATA, SMFIP_NOEOH, SMFIP_NOUNKNOWN, SMFIP_HDR_LEADSPC}) {
    EXPECT_NE(p & bit, 0u) << std::hex << bit;
  }
  // Every step the session needs is still sent (end of headers is not one: the first body
  // chunk or the end of message starts DKIM).
  for (unsigned long bit :
       {SMFIP_NOCONNECT, SMFIP_NOHELO, SMFIP_NOMAIL, SMFIP_NORCPT, SMFIP_NOHDRS, SMFIP_NOBODY}) {
    EXPECT_EQ(p & bit, 0u) << std::hex << bit;
  }
  (void)c.quit();

  // An MTA without SMFIP_HDR_LEADSPC is not asked for it.
  auto d = connect();
  ASSERT_TRUE(d.negotiate(0x1FF, 0x1FFFFF & ~static_cast<std::uint32_t>(SMFIP_HDR_LEADSPC)).ok());
  EXPECT_EQ(d.filter_protocol() & SMFIP_HDR_LEADSPC, 0u);
  (void)d.quit();
}

TEST_F(LibmilterTest, InsertsOurHeaderAndDeletesTheForgedOne) {
  for (bool leading_space : {true, false}) {
    auto c = connect();
    const std::uint32_t steps =
        leading_space ? 0x1FFFFF : 0x1FFFFF & ~static_cast<std::uint32_t>(SMFIP_HDR_LEADSPC);
    ASSERT_TRUE(c.negotiate(0x1FF, steps).ok());
    auto open = c.open_session(client("192.0.2.10"));
    ASSERT_TRUE(open.ok()) << open.error().describe();
    const int before = queue_.pushed.load();
    auto r = c.send_message(message());
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->reply.action, test::MilterAction::Continue);
    ASSERT_EQ(r->modifications.size(), 2u);
    const auto& del = r->modifications[0];
    EXPECT_EQ(del.kind, test::MilterModification::Kind::ChangeHeader);
    EXPECT_EQ(del.index, 1u);
    EXPECT_EQ(del.name, "Authentication-Results");
    EXPECT_EQ(del.value, "");
    const auto& ins = r->modifications[1];
    EXPECT_EQ(ins.kind, test::MilterModification::Kind::InsertHeader);
    EXPECT_EQ(ins.index, 0u);
    EXPECT_EQ(ins.name, "Authentication-Results");
    // With SMFIP_HDR_LEADSPC the MTA writes the value as given: the space is ours.
    EXPECT_TRUE(ins.value.starts_with(leading_space ? std::string(" ") + kOurId : kOurId))
        << ins.value;
    EXPECT_NE(ins.value.find("spf=pass"), std::string::npos) << ins.value;
    EXPECT_NE(ins.value.find("dmarc=pass"), std::string::npos) << ins.value;
    EXPECT_EQ(queue_.pushed.load(), before + 1);
    (void)c.quit();
  }
}

TEST_F(LibmilterTest, EnforcedRejectIsA550) {
  sessions_->set_environment(enforce_);
  auto c = connect();
  ASSERT_TRUE(c.negotiate().ok());
  ASSERT_TRUE(c.open_session(client("203.0.113.5")).ok());
  auto r = c.send_message(message());
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->reply.action, test::MilterAction::ReplyCode);
  EXPECT_EQ(r->reply.text, "550 5.7.1 Email rejected per DMARC policy for example.com");
  (void)c.quit();
}

TEST_F(LibmilterTest, AnExceptionBecomes451AndTheConnectionGoesOn) {
  auto c = connect();
  ASSERT_TRUE(c.negotiate().ok());
  ASSERT_TRUE(c.open_session(client("192.0.2.10")).ok());
  queue_.throw_next = true;
  auto r = c.send_message(message());
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->reply.action, test::MilterAction::ReplyCode);
  EXPECT_EQ(r->reply.text, "451 4.3.0 Temporary failure in the mail filter");
  auto again = c.send_message(message());
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ(again->reply.action, test::MilterAction::Continue);
  (void)c.quit();
}

TEST_F(LibmilterTest, AuthenticatedMailIsOnlyCleaned) {
  auto c = connect();
  ASSERT_TRUE(c.negotiate().ok());
  ASSERT_TRUE(c.open_session(client("203.0.113.5")).ok());
  auto m = message();
  m.mail_macros = {{"i", "4AbCdE"}, {"{auth_authen}", "alice"}};
  const int before = queue_.pushed.load();
  auto r = c.send_message(m);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->reply.action, test::MilterAction::Continue);
  ASSERT_EQ(r->modifications.size(), 1u);
  EXPECT_EQ(r->modifications[0].kind, test::MilterModification::Kind::ChangeHeader);
  EXPECT_EQ(queue_.pushed.load(), before);
  (void)c.quit();
}

TEST_F(LibmilterTest, ParallelConnections) {
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      auto c = test::MilterClient::connect(address_);
      if (!c.ok() || !c->negotiate().ok() || !c->open_session(client("192.0.2.10")).ok()) return;
      for (int i = 0; i < 10; ++i) {
        auto r = c->send_message(message());
        if (r.ok() && r->reply.action == test::MilterAction::Continue &&
            r->modifications.size() == 2) {
          ++ok;
        }
      }
      (void)c->quit();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 40);
  EXPECT_TRUE(milter_->wait_idle(5s));
  EXPECT_EQ(milter_->open_sessions(), 0u);
}

// libmilter writes the header change and the final reply as two packets. Without TCP_NODELAY
// on the filter's socket the second waits for the MTA's delayed ACK of the first: about 40 ms
// per message on Linux. The client buffers like Postfix, so each message costs one write.
TEST_F(LibmilterTest, EndOfMessageDoesNotWaitForADelayedAck) {
  auto c = connect();
  ASSERT_TRUE(c.negotiate().ok());
  ASSERT_TRUE(c.open_session(client("192.0.2.10")).ok());
  std::vector<double> ms;
  for (int i = 0; i < 25; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = c.send_message(message());
    ASSERT_TRUE(r.ok()) << r.error().describe();
    ASSERT_EQ(r->modifications.size(), 2u);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  EXPECT_LT(ms[ms.size() / 2], 20.0) << "median end-of-message round trip in ms";
  (void)c.quit();
}

TEST_F(LibmilterTest, StopsPromptly) {
  const auto t0 = std::chrono::steady_clock::now();
  milter_->stop();  // libmilter alone would wait up to 5 s in select()
  serving_.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_FALSE(test::MilterClient::connect(address_, 1s).ok());
}

TEST(LibmilterSingleton, ASecondInstanceIsRefused) {
  NullLogger log;
  struct NoSessions final : SessionFactory {
    std::unique_ptr<Session> create(Actions&, SessionOptions) override { return nullptr; }
  } factory;
  Libmilter first(factory, log);
  EXPECT_THROW(Libmilter second(factory, log), std::logic_error);
}

}  // namespace
}  // namespace mailreport::milter
