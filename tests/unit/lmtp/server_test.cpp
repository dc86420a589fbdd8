// The LMTP server over real sockets (127.0.0.1 with an ephemeral port, a unix socket in a
// temporary directory): greeting, delivery, connection limit, timeouts, concurrency, stop.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mailreport/lmtp/server.hpp"
#include "testsupport.hpp"

namespace mailreport::lmtp {
namespace {

using namespace std::chrono_literals;

class FakeIngestor final : public ingest::Ingestor {
 public:
  Result<ingest::Outcome> ingest(const ingest::Envelope& env, const Input& message) override {
    auto src = message.open();
    if (!src) return std::move(src).error();
    auto all = read_all(**src, 1u << 30);
    if (!all) return std::move(all).error();
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    std::lock_guard lock(mu);
    messages.push_back(*all);
    envelopes.push_back(env);
    ingest::Outcome o;
    o.message_id = static_cast<std::int64_t>(messages.size());
    return o;
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return messages.size();
  }

  std::mutex mu;
  std::vector<std::string> messages;
  std::vector<ingest::Envelope> envelopes;
  std::chrono::milliseconds delay{0};
};

// A blocking test client with a receive timeout.
class TestClient {
 public:
  static std::optional<TestClient> tcp(std::uint16_t port, const char* host = "127.0.0.1") {
    int family = std::string_view(host).find(':') == std::string_view::npos ? AF_INET : AF_INET6;
    UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return std::nullopt;
    int rc;
    if (family == AF_INET) {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      ::inet_pton(AF_INET, host, &a.sin_addr);
      rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(port);
      ::inet_pton(AF_INET6, host, &a.sin6_addr);
      rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    if (rc != 0) return std::nullopt;
    return TestClient(std::move(fd));
  }
  static std::optional<TestClient> unix_socket(const std::filesystem::path& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return std::nullopt;
    return TestClient(std::move(fd));
  }

  bool send(std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ::send(fd_.get(), s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      s.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // One line without CRLF; nullopt at EOF or after `timeout`.
  std::optional<std::string> line(std::chrono::milliseconds timeout = 5s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto pos = buf_.find("\r\n");
      if (pos != std::string::npos) {
        std::string l = buf_.substr(0, pos);
        buf_.erase(0, pos + 2);
        return l;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char tmp[4096];
      ssize_t n = ::recv(fd_.get(), tmp, sizeof tmp, 0);
      if (n <= 0) return std::nullopt;
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }
  // A whole (possibly multi-line) reply; returns its last line ("" on EOF/timeout).
  std::string reply(std::chrono::milliseconds timeout = 5s) {
    for (;;) {
      auto l = line(timeout);
      if (!l) return "";
      if (l->size() < 4 || (*l)[3] != '-') return *l;
    }
  }
  std::string command(std::string_view cmd) {
    send(std::string(cmd) + "\r\n");
    return reply();
  }
  // True when the server closed the connection (EOF) within `timeout`.
  bool closed_by_server(std::chrono::milliseconds timeout = 5s) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char c;
    return ::recv(fd_.get(), &c, 1, 0) == 0;
  }

  // Delivers one message; returns the per-recipient replies after the dot.
  std::vector<std::string> deliver(const std::string& from, const std::vector<std::string>& rcpts,
                                   const std::string& body) {
    std::vector<std::string> out;
    if (command("MAIL FROM:<" + from + ">").rfind("250", 0) != 0) return out;
    std::size_t accepted = 0;
    for (const auto& r : rcpts) {
      if (command("RCPT TO:<" + r + ">").rfind("250", 0) == 0) ++accepted;
    }
    if (command("DATA").rfind("354", 0) != 0) return out;
    send(body + ".\r\n");
    for (std::size_t i = 0; i < accepted; ++i) out.push_back(reply());
    return out;
  }

 private:
  explicit TestClient(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::string buf_;
};

bool starts_with(const std::string& s, std::string_view p) {
  return s.rfind(p, 0) == 0;
}

class ServerTest : public ::testing::Test {
 protected:
  std::shared_ptr<config::Config> make_config() {
    auto c = std::make_shared<config::Config>();
    c->report.submitter = "mx.test";
    c->report.analysis_addresses = config::AddressPatterns({"dmarc@*", "tlsrpt@*"});
    c->lmtp.hostname = "mx.test";
    c->lmtp.unix_socket = dir / "lmtp.sock";
    c->lmtp.unix_socket_mode = 0600;
    c->lmtp.tcp = "127.0.0.1:0";
    c->lmtp.spool_dir = dir.path();
    c->limits.message_size = 100000;
    return c;
  }

  std::unique_ptr<Server> start(std::shared_ptr<config::Config> c) {
    auto s = std::make_unique<Server>(std::move(c), ingestor, logger);
    auto st = s->start();
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().describe());
    return s;
  }

  mailreport::test::TempDir dir;
  FakeIngestor ingestor;
  NullLogger logger;
};

TEST_F(ServerTest, DeliversOverTcp) {
  auto server = start(make_config());
  ASSERT_NE(server->bound_port(), 0);
  auto c = TestClient::tcp(server->bound_port());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->reply(), "220 mx.test LMTP mailreport ready");
  EXPECT_EQ(c->command("LHLO client.test"), "250 SMTPUTF8");
  auto r = c->deliver("a@sender.test", {"dmarc@reports.test", "nobody@reports.test"},
                      "Subject: x\r\n\r\n..dot\r\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(starts_with(r[0], "250 2.0.0 <dmarc@reports.test>")) << r[0];
  EXPECT_TRUE(starts_with(c->command("QUIT"), "221 2.0.0"));
  EXPECT_TRUE(c->closed_by_server());
  ASSERT_EQ(ingestor.count(), 1u);
  EXPECT_EQ(ingestor.messages[0], "Subject: x\r\n\r\n.dot\r\n");
  EXPECT_EQ(ingestor.envelopes[0].rcpt_to, std::vector<std::string>{"dmarc@reports.test"});
  EXPECT_TRUE(starts_with(ingestor.envelopes[0].client, "127.0.0.1:"));
}

TEST_F(ServerTest, DeliversOverUnixSocket) {
  auto server = start(make_config());
  ASSERT_EQ(server->socket_path(), dir / "lmtp.sock");
  struct stat st {};
  ASSERT_EQ(::stat(server->socket_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  auto c = TestClient::unix_socket(server->socket_path());
  ASSERT_TRUE(c);
  EXPECT_TRUE(starts_with(c->reply(), "220 "));
  c->command("LHLO x");
  auto r = c->deliver("", {"tlsrpt@reports.test"}, "hello\r\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(starts_with(r[0], "250 2.0.0"));
  EXPECT_EQ(ingestor.envelopes.at(0).client, "unix");
  server->stop();
  EXPECT_FALSE(std::filesystem::exists(dir / "lmtp.sock"));  // removed on stop
}

TEST_F(ServerTest, RemovesStaleSocketButNotOtherFiles) {
  // A socket file nobody listens on (left by a crash) is replaced.
  {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", (dir / "lmtp.sock").c_str());
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  ASSERT_TRUE(std::filesystem::exists(dir / "lmtp.sock"));
  {
    auto server = start(make_config());
    auto c = TestClient::unix_socket(dir / "lmtp.sock");
    ASSERT_TRUE(c);
    EXPECT_TRUE(starts_with(c->reply(), "220 "));
    // A second server on the same live socket refuses to start.
    Server second(make_config(), ingestor, logger);
    EXPECT_FALSE(second.listen().ok());
  }
  // A regular file is not removed.
  { std::ofstream(dir / "lmtp.sock") << "not a socket"; }
  Server third(make_config(), ingestor, logger);
  EXPECT_FALSE(third.listen().ok());
  EXPECT_EQ(mailreport::test::read_file(dir / "lmtp.sock"), "not a socket");
}

TEST_F(ServerTest, NothingToListenOn) {
  auto c = make_config();
  c->lmtp.unix_socket.clear();
  c->lmtp.tcp.clear();
  Server s(c, ingestor, logger);
  EXPECT_FALSE(s.start().ok());
}

TEST_F(ServerTest, MaxConnections) {
  auto cfg = make_config();
  cfg->lmtp.max_connections = 2;
  auto server = start(cfg);
  auto a = TestClient::tcp(server->bound_port());
  auto b = TestClient::tcp(server->bound_port());
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(starts_with(a->reply(), "220 "));
  EXPECT_TRUE(starts_with(b->reply(), "220 "));
  auto c = TestClient::unix_socket(server->socket_path());
  ASSERT_TRUE(c);
  EXPECT_TRUE(starts_with(c->reply(), "421 4.3.2 ")) << "third connection";
  EXPECT_TRUE(c->closed_by_server());
  // Once one leaves, a new client gets in.
  a->command("QUIT");
  EXPECT_TRUE(a->closed_by_server());
  bool admitted = false;
  for (int i = 0; i < 50 && !admitted; ++i) {
    auto d = TestClient::tcp(server->bound_port());
    ASSERT_TRUE(d);
    admitted = starts_with(d->reply(), "220 ");
    if (!admitted) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(admitted);
}

TEST_F(ServerTest, IdleTimeout) {
  auto cfg = make_config();
  cfg->lmtp.idle_timeout = 1s;
  auto server = start(cfg);
  auto c = TestClient::tcp(server->bound_port());
  ASSERT_TRUE(c);
  EXPECT_TRUE(starts_with(c->reply(), "220 "));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(starts_with(c->command("LHLO x"), "250 "));
  EXPECT_TRUE(starts_with(c->reply(3s), "421 4.4.2 "));
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 2500ms);
  EXPECT_TRUE(c->closed_by_server());
}

TEST_F(ServerTest, DataTimeout) {
  auto cfg = make_config();
  cfg->lmtp.idle_timeout = 10s;
  cfg->lmtp.data_timeout = 1s;
  auto server = start(cfg);
  auto c = TestClient::tcp(server->bound_port());
  ASSERT_TRUE(c);
  c->reply();
  c->command("LHLO x");
  c->command("MAIL FROM:<a@b>");
  c->command("RCPT TO:<dmarc@x.test>");
  EXPECT_TRUE(starts_with(c->command("DATA"), "354 "));
  // A client that trickles data forever is cut off after the DATA timeout.
  std::string reply;
  for (int i = 0; i < 30 && reply.empty(); ++i) {
    c->send("line\r\n");
    reply = c->reply(200ms);
  }
  EXPECT_TRUE(starts_with(reply, "421 4.4.2 ")) << reply;
  EXPECT_EQ(ingestor.count(), 0u);
}

TEST_F(ServerTest, EightConcurrentClients) {
  auto cfg = make_config();
  ingestor.delay = 5ms;
  auto server = start(cfg);
  constexpr int kClients = 8, kMessages = 5;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      auto c = t % 2 ? TestClient::tcp(server->bound_port())
                     : TestClient::unix_socket(server->socket_path());
      if (!c || !starts_with(c->reply(), "220 ")) return;
      c->command("LHLO client");
      for (int m = 0; m < kMessages; ++m) {
        std::string body = "Subject: " + std::to_string(t) + "/" + std::to_string(m) + "\r\n\r\n";
        for (int l = 0; l < 200; ++l) body += "line " + std::to_string(l) + "\r\n";
        auto r = c->deliver("s@x", {"dmarc@a.test", "dmarc@b.test"}, body);
        if (r.size() == 2 && starts_with(r[0], "250 ") && starts_with(r[1], "250 ")) ++ok;
      }
      c->command("QUIT");
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients * kMessages);
  EXPECT_EQ(ingestor.count(), static_cast<std::size_t>(kClients * kMessages));
}

TEST_F(ServerTest, StopLetsMessageInDataFinish) {
  auto server = start(make_config());
  auto idle = TestClient::tcp(server->bound_port());
  auto busy = TestClient::tcp(server->bound_port());
  ASSERT_TRUE(idle && busy);
  idle->reply();
  busy->reply();
  busy->command("LHLO x");
  busy->command("MAIL FROM:<a@b>");
  busy->command("RCPT TO:<dmarc@x.test>");
  ASSERT_TRUE(starts_with(busy->command("DATA"), "354 "));
  busy->send("first part\r\n");
  std::this_thread::sleep_for(100ms);  // the server has read it

  auto stopped = std::async(std::launch::async, [&] { server->stop(5s); });
  // The idle client is told to come back later.
  EXPECT_TRUE(starts_with(idle->reply(), "421 4.3.2 "));
  // New connections are refused.
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(TestClient::tcp(server->bound_port()).has_value());
  // The message in DATA is finished and acknowledged, then the connection is closed.
  busy->send("second part\r\n.\r\n");
  EXPECT_TRUE(starts_with(busy->reply(), "250 2.0.0 "));
  EXPECT_TRUE(starts_with(busy->reply(), "421 4.3.2 "));
  EXPECT_EQ(stopped.wait_for(5s), std::future_status::ready);
  ASSERT_EQ(ingestor.count(), 1u);
  EXPECT_EQ(ingestor.messages[0], "first part\r\nsecond part\r\n");
}

TEST_F(ServerTest, StopGraceIsBounded) {
  auto server = start(make_config());
  auto busy = TestClient::tcp(server->bound_port());
  ASSERT_TRUE(busy);
  busy->reply();
  busy->command("LHLO x");
  busy->command("MAIL FROM:<a@b>");
  busy->command("RCPT TO:<dmarc@x.test>");
  ASSERT_TRUE(starts_with(busy->command("DATA"), "354 "));
  busy->send("never finished\r\n");
  auto t0 = std::chrono::steady_clock::now();
  server->stop(300ms);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_TRUE(busy->closed_by_server());
  EXPECT_EQ(ingestor.count(), 0u);  // nothing acknowledged, nothing stored
}

TEST_F(ServerTest, Ipv6Loopback) {
  auto cfg = make_config();
  cfg->lmtp.unix_socket.clear();
  cfg->lmtp.tcp = "[::1]:0";
  Server server(cfg, ingestor, logger);
  auto st = server.start();
  if (!st.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << st.error().describe();
  auto c = TestClient::tcp(server.bound_port(), "::1");
  ASSERT_TRUE(c);
  EXPECT_TRUE(starts_with(c->reply(), "220 mx.test "));
  c->command("LHLO x");
  auto r = c->deliver("a@b", {"dmarc@x.test"}, "m\r\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(starts_with(r[0], "250 "));
  EXPECT_TRUE(starts_with(ingestor.envelopes.at(0).client, "[::1]:"));
}

TEST(SessionOptionsTest, FromConfig) {
  config::Config c;
  c.report.submitter = "sub.test";
  c.store.path = "/var/lib/x/db.sqlite";
  c.limits.message_size = 1234;
  c.limits.line_length = 99;
  c.limits.command_line_length = 77;
  auto o = session_options(c);
  EXPECT_EQ(o.hostname, "sub.test");
  EXPECT_EQ(o.message_size, 1234u);
  EXPECT_EQ(o.line_length, 99u);
  EXPECT_EQ(o.command_line_length, 77u);
  EXPECT_EQ(o.spool_dir, "/var/lib/x");
  c.lmtp.hostname = "lmtp.test";
  c.lmtp.spool_dir = "/spool";
  o = session_options(c);
  EXPECT_EQ(o.hostname, "lmtp.test");
  EXPECT_EQ(o.spool_dir, "/spool");
}

}  // namespace
}  // namespace mailreport::lmtp
